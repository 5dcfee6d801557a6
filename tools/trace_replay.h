// trace_replay.h — feeds a trace (core/trace/trace_format.h) into a fresh model,
// exactly as the preload fed its own: the same seeds, learnt facts, calls
// and reconciliations in the same order, so the replayed model is the
// preload's, record for record. While doing so it re-checks what the trace
// recorded: each call's result against the recorded model result and the
// kernel's, each check's hashes against the model's rendering, and each
// snapshot's rendering after reseeding.
//
// Every trace subcommand (replay, maps, report, plot, export) is built on
// Replayer: they step through the records and look at the model between
// them. A fork child's trace is replayed after its parent's prefix (up to
// the FORK_POINT its header names).
//
// Tools-only code (abseil, STL, mmap of the trace file).
#ifndef VMASHADOW_TOOLS_TRACE_REPLAY_H_
#define VMASHADOW_TOOLS_TRACE_REPLAY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/abi/kernel_profile.h"
#include "core/mm/address_space.h"
#include "core/mm/arena.h"
#include "core/trace/trace_codec.h"
#include "core/trace/trace_format.h"

namespace vmashadow {

// A trace file held in memory (mapped read-only).
class TraceData {
 public:
  // Maps the whole file. Errors: cannot open/stat/map (with the path).
  static absl::StatusOr<std::unique_ptr<TraceData>> Open(const std::string& path);
  ~TraceData();
  TraceData(const TraceData&) = delete;
  TraceData& operator=(const TraceData&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  TraceData() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;
  std::string copy_;  // small or unmappable files
};

// The text of a decoding error: "TRACE: truncated|corrupt ... at byte offset N: ...".
std::string FormatTraceError(const std::string& path, const TraceError& e);

// One difference the replay found.
struct ReplayMismatch {
  enum Kind {
    kReplayResult,  // the replayed result differs from the model result recorded
    kKernelResult,  // the model's result differs from the kernel's
    kReplayCheck,   // the replayed maps lines differ from those the preload's model had
    kKernelCheck,   // the model's maps lines differ from the kernel's (a divergence)
    kSnapshot,      // a reseeded model does not render as its snapshot
  };
  Kind kind;
  uint64_t event = 0;   // events applied so far (the mismatch follows event `event`)
  uint64_t offset = 0;  // byte offset of the record
  std::string text;
};
const char* ReplayMismatchName(ReplayMismatch::Kind kind);

struct ReplayOptions {
  std::string profile;  // empty: the profile the trace names
  bool verify = true;   // compare results and checks (off: only rebuild the model)
};

// Counts over the replay (this trace's records only, not a parent's prefix).
struct ReplayStats {
  uint64_t records = 0;
  uint64_t events = 0;
  uint64_t events_by_call[static_cast<int>(TraceCall::kCount)] = {};
  uint64_t unmodelled = 0;
  uint64_t trapped = 0;
  uint64_t seeds = 0;  // including the initial one
  uint64_t learnt = 0;
  uint64_t reconciles = 0;
  uint64_t range_checks = 0;
  uint64_t full_checks = 0;
  uint64_t fork_points = 0;
  uint64_t image_ends = 0;  // 0: the recording stopped before the image ended
  uint64_t divergences_recorded = 0;
  uint64_t unexplained_recorded = 0;
  uint64_t results = 0;
  uint64_t results_hit = 0;
  uint64_t placement_predicted = 0;
  uint64_t placement_hit = 0;
  uint64_t errno_predicted = 0;
  uint64_t errno_hit = 0;
  uint64_t mismatches[5] = {};       // by ReplayMismatch::Kind
  uint64_t unexplained_checks = 0;   // kernel check differences the preload explained
  uint64_t unexplained_results = 0;  // result misses the preload explained (model could not run)
  uint64_t total_mismatches() const {
    return mismatches[0] + mismatches[1] + mismatches[2] + mismatches[3] + mismatches[4];
  }
};

// What the last Step() applied, for the caller to look at.
struct ReplayStep {
  const TraceRecord* record = nullptr;
  // For an EVENT: the replayed outcome (for unmodelled calls: ret = the
  // kernel's, empty range) and the event's 1-based index.
  Outcome outcome;
  uint64_t event_index = 0;
  // Mismatches this step found (also counted in stats()).
  std::vector<ReplayMismatch> mismatches;
};

class Replayer {
 public:
  // Opens the trace (and, for a fork child, replays its parent chain up to
  // the fork point). Errors: unreadable or corrupt file, unknown profile,
  // missing parent trace.
  static absl::StatusOr<std::unique_ptr<Replayer>> Open(const std::string& path,
                                                        const ReplayOptions& options);
  ~Replayer();

  // Applies the next record. Returns true when one was applied, false at
  // the end of the trace; an error (DataLoss for a truncated last record,
  // InvalidArgument for corruption) names the byte offset. After an error
  // the model holds everything before the bad record.
  absl::StatusOr<bool> Step();
  // The next record, decoded but not applied (nullptr at the end or when the
  // next record is bad).
  const TraceRecord* Peek() const { return have_next_ ? &next_ : nullptr; }
  // True when the next record starts the next event: an EVENT, or a fact or
  // a resync made at the start of the next event. The model then is the
  // model "after" the last event applied.
  bool AtEventBoundary() const;

  const ReplayStep& last() const { return last_; }
  const ReplayStats& stats() const { return stats_; }
  const TraceHeader& header() const { return header_.header; }
  const AddressSpace& model() const { return *model_; }
  const KernelProfile& profile() const { return *profile_; }
  uint64_t offset() const;  // bytes of this trace consumed
  uint64_t size() const;
  const std::string& path() const { return path_; }
  // The pending error (truncated/corrupt) once Peek() is null before the end.
  bool at_clean_end() const { return end_status_ == TraceStatus::kEnd; }

 private:
  Replayer() = default;
  absl::Status OpenInto(const std::string& path, int depth);
  absl::Status ReplayParentPrefix(const std::string& child_path, const TraceHeader& h, int depth);
  absl::Status ReadNext();
  void Apply(const TraceRecord& rec, bool verify, ReplayStep* step, ReplayStats* stats);
  void ApplyEvent(const TraceEvent& e, bool verify, ReplayStep* step, ReplayStats* stats);
  void ApplyCheck(const TraceRecord& rec, bool verify, ReplayStep* step, ReplayStats* stats);
  void AddMismatch(ReplayMismatch::Kind kind, const TraceRecord& rec, std::string text,
                   ReplayStep* step, ReplayStats* stats);

  std::string path_;
  ReplayOptions options_;
  std::unique_ptr<TraceData> data_;
  std::unique_ptr<TraceReader> reader_;
  TraceRecord header_;
  TraceRecord current_;
  TraceRecord next_;
  bool have_next_ = false;
  TraceStatus end_status_ = TraceStatus::kOk;
  absl::Status pending_error_;
  const KernelProfile* profile_ = nullptr;
  void* arena_memory_ = nullptr;
  std::unique_ptr<Arena> arena_;
  std::unique_ptr<AddressSpace> model_;
  std::string render_;  // scratch for maps text
  TraceSeed pending_seed_;
  bool seed_open_ = false;
  uint64_t event_index_ = 0;
  ReplayStep last_;
  ReplayStats stats_;
};

// Replays all of `path` with verification; the replay subcommand's engine
// without output. Used by tests and benchmarks.
absl::StatusOr<ReplayStats> ReplayAll(const std::string& path, const ReplayOptions& options);

}  // namespace vmashadow

#endif  // VMASHADOW_TOOLS_TRACE_REPLAY_H_
