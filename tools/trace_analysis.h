// trace_analysis.h — what a trace says about a program's mapping patterns,
// for `vmashadow report` (and the pieces `plot` and `export` share): the
// VMA count over time, the mappings made and how long they lived, churn per
// call site, neighbours that did not merge and why, free-gap fragmentation,
// brk against mmap, and how well the model predicted the kernel.
//
// Computed in one replay (tools/trace_replay.h), looking at the model after
// each event. Tools-only code.
#ifndef VMASHADOW_TOOLS_TRACE_ANALYSIS_H_
#define VMASHADOW_TOOLS_TRACE_ANALYSIS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/mm/address_space.h"
#include "core/mm/vma.h"
#include "core/trace/trace_format.h"
#include "tools/trace_replay.h"

namespace vmashadow {

// How a VMA is drawn and counted: by what backs it and its permissions.
enum class VmaKind : uint8_t {
  kFileExec,  // file, executable (code)
  kFileRo,    // file, read-only data
  kFileRw,    // file, writable (private data or shared)
  kAnonRw,    // private anonymous, writable (malloc arenas, mmap'd blocks)
  kAnonRo,    // private anonymous, read-only
  kAnonExec,  // anonymous and executable (JIT)
  kNoAccess,  // PROT_NONE: guards and reservations
  kShared,    // shared anonymous / shmem
  kHeap,      // [heap] (brk)
  kStack,     // [stack]
  kSpecial,   // [vdso], [vvar], ...
  kCount,
};
VmaKind KindOf(const AddressSpace& as, const Vma& v);
const char* VmaKindName(VmaKind k);
// The kind's colour in plots ("#rrggbb").
const char* VmaKindColor(VmaKind k);

// Why two adjacent VMAs (prev.end == next.start) are separate: core's
// mm::WhyNotMergeable(), with the facts behind it in words (*detail: the
// differing flags, the two anon_vmas, the offsets; empty when none).
mm::MergeRefusal WhyNotMerged(const AddressSpace& as, const Vma& prev, const Vma& next,
                              std::string* detail);

// Log2 histogram buckets: bucket i counts values in [2^i, 2^(i+1)) (i = 0
// also holds 0).
struct Histogram {
  std::vector<uint64_t> buckets = std::vector<uint64_t>(64, 0);
  uint64_t count = 0;
  void Add(uint64_t v);
};

struct CallSite {
  std::string key;   // "path\0offset", or "?" when no frame was usable
  std::string path;  // the file the site's code is in ("" unknown)
  uint64_t file_offset = 0;
  std::string via;  // the innermost frame when the site is further out
  std::string via_path;
  uint64_t via_offset = 0;
  uint64_t calls = 0;
  uint64_t by_call[static_cast<int>(TraceCall::kCount)] = {};
  uint64_t bytes_mapped = 0;
  uint64_t bytes_unmapped = 0;
  std::string name;  // symbolised at the end
};

struct MergePair {
  mm::MergeRefusal reason;
  std::string detail;
  uint64_t prev_start, prev_end, next_start, next_end;
  std::string prev_line, next_line;  // maps lines
};

struct TraceAnalysis {
  std::string path;
  TraceHeader header;  // strings point into the trace (valid while `replayer` lives)
  std::string argv;    // spaces for NULs
  std::string kernel_release;
  std::string profile;  // the profile replayed with
  std::string check;
  ReplayStats stats;
  std::string error;  // a truncated/corrupt tail ("" when clean)
  uint64_t first_time_ns = 0;
  uint64_t last_time_ns = 0;
  uint64_t threads = 0;

  // VMA count after each event: (event, time offset ns, count), every event
  // for traces up to kMaxSeries events, else a subsample keeping extremes.
  struct Point {
    uint64_t event;
    uint64_t time_ns;
    uint64_t count;
  };
  std::vector<Point> series;
  uint64_t start_count = 0;
  uint64_t end_count = 0;
  uint64_t peak_count = 0;
  uint64_t peak_event = 0;
  uint64_t peak_time_ns = 0;

  // Mappings (successful mmaps, MAP_FIXED included).
  uint64_t mappings = 0;
  uint64_t mappings_ended = 0;
  Histogram mapping_sizes;     // bytes
  Histogram lifetimes_events;  // events between the mmap and its last page's unmap
  Histogram lifetimes_ns;      // the same in ns
  uint64_t anon_maps = 0, anon_bytes = 0, file_maps = 0, file_bytes = 0, shared_maps = 0;
  uint64_t unmaps = 0, unmap_bytes = 0;
  uint64_t brk_calls = 0, brk_grow = 0, brk_shrink = 0, brk_grown_bytes = 0, brk_shrunk_bytes = 0,
           heap_peak = 0, heap_end = 0;
  uint64_t remaps = 0, protects = 0, advises = 0, locks = 0, seals = 0;

  std::vector<CallSite> sites;  // sorted by calls, descending

  // Final layout.
  std::vector<MergePair> unmerged;
  uint64_t unmerged_by_reason[static_cast<int>(mm::MergeRefusal::kCount)] = {};
  Histogram gaps;  // free gaps between VMAs (bytes)
  uint64_t gap_count = 0;
  uint64_t largest_gap = 0, largest_gap_start = 0;
  uint64_t largest_gap_below_base = 0, largest_gap_below_base_start = 0;
  uint64_t mapped_bytes = 0;
};

inline constexpr size_t kMaxSeries = 20000;

// Replays `path` and computes everything above; sites are symbolised.
// `on_event` (optional) sees the replayer after each event. A truncated or
// corrupt tail is reported in .error (the analysis covers what came before).
absl::StatusOr<TraceAnalysis> AnalyzeTrace(
    const std::string& path, const ReplayOptions& options,
    const std::function<void(const Replayer&)>& on_event = nullptr);

// The report as text (sections, histograms, the top N call sites) and as
// one JSON object with the same sections (report_command.cc).
std::string TextReport(const TraceAnalysis& a, size_t top);
std::string JsonReport(const TraceAnalysis& a, size_t top);

// "4 KiB", "1.5 MiB".
std::string Bytes(uint64_t v);
// "1.20 ms".
std::string Duration(uint64_t ns);

}  // namespace vmashadow

#endif  // VMASHADOW_TOOLS_TRACE_ANALYSIS_H_
