// summary.h — the paragraph `vmashadow run` prints on stderr when the program
// has finished: totals over every report the run produced, the root process's
// final map count, and one line per process with something to look at
// (divergences, an incomplete or malformed report).
//
// Pure formatting: takes reports already read (tools/report.h) and returns
// text, so it is unit-tested without running anything. Tools-only code.
#ifndef VMASHADOW_TOOLS_SUMMARY_H_
#define VMASHADOW_TOOLS_SUMMARY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tools/report.h"

namespace vmashadow {

// One report file and what reading it gave.
struct LoadedReport {
  std::string path;
  absl::StatusOr<ProcessReport> report;
};

struct RunSummaryInput {
  std::vector<LoadedReport> reports;  // in ListReportFiles order
  uint64_t root_pid = 0;              // the pid the launcher forked
  std::string program_end;            // e.g. "exited with status 7", "killed by SIGTERM"
  std::string report_dir;
  bool report_dir_kept = false;  // the user named the directory: say where the reports are
  // Reasons the launcher already knows why nothing may be monitored (e.g. the
  // program is set-user-ID); printed only when no report appeared.
  std::vector<std::string> no_report_hints;
};

// Processes named one per line before the rest are only counted.
inline constexpr int kMaxProcessLines = 20;

// The summary paragraph: lines each starting "vmashadow: ", '\n'-terminated.
// The first line counts the processes monitored and the incomplete reports
// (a malformed report, one with "complete": false and one lacking contract
// keys all count as incomplete) and names the backend and check mode; then
// events (total and the non-zero calls), trapped, checks, divergences,
// unexplained, placement/errno/result hits, the root process's end and final
// map count (the report with pid == root_pid and exit_reason != "execve";
// "unknown" without one), then one line per problem process. With no report
// at all it says "no process was monitored" and why that may be.
std::string FormatRunSummary(const RunSummaryInput& in);

// "python3 -c print(1)": argv joined by spaces, cut to about `max_chars`.
std::string ShortCommandLine(const std::vector<std::string>& argv, size_t max_chars = 60);

}  // namespace vmashadow

#endif  // VMASHADOW_TOOLS_SUMMARY_H_
