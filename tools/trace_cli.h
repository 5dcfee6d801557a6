// trace_cli.h — what the trace subcommands (replay, maps, report, plot,
// export) share: their abseil flags (each subcommand lists the ones it
// accepts as CliFlag, see cli_flags.h), the start of every command (options,
// --help, one TRACE), and a progress line on a terminal.
//
// Tools-only code.
#ifndef VMASHADOW_TOOLS_TRACE_CLI_H_
#define VMASHADOW_TOOLS_TRACE_CLI_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "tools/cli_flags.h"

ABSL_DECLARE_FLAG(std::string, kernel_profile);
ABSL_DECLARE_FLAG(int64_t, at);
ABSL_DECLARE_FLAG(bool, smaps);
ABSL_DECLARE_FLAG(bool, json);
ABSL_DECLARE_FLAG(std::string, output);
ABSL_DECLARE_FLAG(bool, html);
ABSL_DECLARE_FLAG(std::string, format);
ABSL_DECLARE_FLAG(bool, allow_truncated);
ABSL_DECLARE_FLAG(bool, progress);
ABSL_DECLARE_FLAG(int64_t, top);
ABSL_DECLARE_FLAG(bool, quiet);

namespace vmashadow {

// The start every trace subcommand shares: parses `args` against `flags`
// (positionals anywhere, see ParseCliArgs), prints usage() on --help, and
// reports a usage error for a bad option or for anything but one TRACE.
// Returns TRACE's path; or nullopt when the command is done, with
// *exit_status set (0 after --help, 2 after a usage error).
std::optional<std::string> ParseTraceCommand(absl::string_view command,
                                             const std::vector<std::string>& args,
                                             absl::Span<const CliFlag> flags,
                                             std::string (*usage)(), int* exit_status);

// A progress line on stderr ("\r<what> 45% 450,000 events 1.2M events/s"),
// only when stderr is a terminal and --progress is on; at most 5 updates a
// second; Finish() clears it.
class Progress {
 public:
  explicit Progress(absl::string_view what);
  ~Progress();
  void Update(uint64_t done_bytes, uint64_t total_bytes, uint64_t events);
  void Finish();

 private:
  std::string what_;
  bool enabled_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_;
};

// 1234567 -> "1,234,567".
std::string Thousands(uint64_t v);

// Writes `data` to the -o OUT of report, plot and export without ever
// following a link to someone else's file: a new or regular OUT is replaced
// by a temporary file created beside it (O_CREAT|O_EXCL|O_NOFOLLOW, mode
// 0600) and renamed over it; a character device or FIFO the user names
// (-o /dev/stdout) is written as it is; anything else (a link to a regular
// file, a directory) is refused. Errors name the path.
absl::Status WriteOutputFile(const std::string& path, absl::string_view data);

}  // namespace vmashadow

#endif  // VMASHADOW_TOOLS_TRACE_CLI_H_
