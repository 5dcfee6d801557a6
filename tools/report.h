// report.h — the per-process JSON report the preload writes (one file per
// process image, see /tmp/contract.md "The JSON report"), read back into a
// plain struct that every tool (run, report, replay, ...) can share.
//
// Parsing uses Boost.PropertyTree's JSON reader (header-only). A file that is
// empty, truncated, not JSON, or has a value of the wrong type is an error
// naming the file; it never throws past this interface. Keys the contract
// lists but the file lacks are not an error: the value stays zero/empty and the
// key is listed in ProcessReport::missing_keys (callers treat such a report as
// incomplete). Keys the contract does not list are ignored, so newer preloads
// can add fields. Only "pid" is required.
//
// Tools-only code: may use the STL, exceptions inside, abseil.
#ifndef VMASHADOW_TOOLS_REPORT_H_
#define VMASHADOW_TOOLS_REPORT_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vmashadow {

// The mm calls a report counts in "events_by_call", in the contract's order.
inline constexpr absl::string_view kReportCalls[] = {
    "mmap",  "munmap",          "mprotect", "pkey_mprotect", "mremap",           "madvise",
    "brk",   "mlock",           "mlock2",   "munlock",       "mlockall",         "munlockall",
    "mseal", "process_madvise", "shmat",    "shmdt",         "remap_file_pages",
};

// One entry of "divergence_samples": where the model and the kernel disagreed.
struct DivergenceSample {
  uint64_t event = 0;
  std::string call;    // the call as the preload printed it, e.g. "mmap(0x0, 0x1000, ...)"
  std::string what;    // which comparison failed, e.g. "maps line 12"
  std::string model;   // the model's side
  std::string kernel;  // the kernel's side
};

// One entry of "unexplained_samples": a kernel change no modelled call explains.
struct UnexplainedSample {
  uint64_t event = 0;
  std::string what;
};

// One process image's report. Field names follow the JSON keys.
struct ProcessReport {
  std::string file;  // the path it was read from (empty when parsed from text)

  uint64_t pid = 0;
  uint64_t parent_pid = 0;
  std::vector<std::string> argv;
  std::string kernel;
  std::string kernel_profile;
  std::string backend;
  std::string check;

  uint64_t events = 0;
  // In the file's order; the summary orders them by kReportCalls.
  std::vector<std::pair<std::string, uint64_t>> events_by_call;
  uint64_t trapped = 0;
  uint64_t checks = 0;
  uint64_t range_checks = 0;
  uint64_t divergences = 0;
  std::vector<DivergenceSample> divergence_samples;
  uint64_t resyncs = 0;
  uint64_t unexplained = 0;
  std::vector<UnexplainedSample> unexplained_samples;
  uint64_t placement_predicted = 0;
  uint64_t placement_hit = 0;
  uint64_t errno_predicted = 0;
  uint64_t errno_hit = 0;
  uint64_t results = 0;
  uint64_t results_hit = 0;
  uint64_t passthrough = 0;
  uint64_t final_map_count = 0;
  // Page tables and mm counters (optional keys: absent when the preload did
  // not follow them, --check=off).
  bool pagetables = false;
  uint64_t pagetable_checks = 0;
  uint64_t pagetable_hits = 0;
  uint64_t counter_checks = 0;
  uint64_t counter_hits = 0;
  uint64_t vmflags_checks = 0;
  uint64_t vmflags_hits = 0;
  uint64_t vmpte_kb = 0;    // the model's VmPTE at the end
  uint64_t pte_tables = 0;  // page_tables.pte (deposited included)
  uint64_t pmd_tables = 0;  // page_tables.pmd
  uint64_t pud_tables = 0;  // page_tables.pud
  uint64_t unlocated_tables = 0;
  std::string exit_reason;
  bool complete = false;
  std::string run_id;         // the launcher's VMASHADOW_RUN_ID ("" when none)
  std::string report_error;   // "-28": the preload could not write the whole report
  std::string trace_stopped;  // why this process's trace stopped before its end

  // Contract keys absent from the file, in the contract's order.
  std::vector<std::string> missing_keys;

  // The count for one call name in events_by_call (0 when absent).
  uint64_t EventsFor(absl::string_view call) const;

  // True when the preload finished the report normally and it has every key.
  bool IsComplete() const { return complete && missing_keys.empty(); }
};

// Parses one report. `source` names it in error messages (normally the file
// path). Errors (InvalidArgument): empty text, JSON syntax errors (with the
// line), a top level that is not an object, no "pid", or a value of the wrong
// type (e.g. a negative or non-numeric count, "complete" not a boolean).
absl::StatusOr<ProcessReport> ParseReport(absl::string_view text, absl::string_view source);

// Reads and parses the report at `path` (sets ProcessReport::file). Errors name
// the file: NotFound/PermissionDenied/... when it cannot be read,
// InvalidArgument when it is malformed as above.
absl::StatusOr<ProcessReport> ReadReportFile(const std::string& path);

// The report files in `dir`: every regular file whose name ends in ".json"
// (so "<pid>.json" and "<pid>.execK.json", not "<pid>.json.tmp"), as full
// paths ordered by pid, then the exec generation (exec1, exec2, ..., then the
// final "<pid>.json"), then by name. Errors when the directory cannot be read.
absl::StatusOr<std::vector<std::string>> ListReportFiles(const std::string& dir);

// The pid a report file name starts with ("1234.exec1.json" -> 1234), or 0 when
// the name does not start with digits.
uint64_t PidFromReportName(absl::string_view file_name);

}  // namespace vmashadow

#endif  // VMASHADOW_TOOLS_REPORT_H_
