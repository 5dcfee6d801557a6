// trace_cli.h — what the trace subcommands (replay, maps, report, plot,
// export) share: their options (abseil flags, parsed per subcommand from a
// table the way `run` does it, so a bad option is an error message, not
// abseil's exit), the usage text, and a progress line on a terminal.
//
// Tools-only code.
#ifndef VMASHADOW_TOOLS_TRACE_CLI_H_
#define VMASHADOW_TOOLS_TRACE_CLI_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

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

// One option a trace subcommand accepts.
struct TraceFlag {
  absl::string_view name;     // abseil's name, with '_'
  absl::string_view spelled;  // as documented, with '-'
  absl::string_view value;    // placeholder for the help text; empty for booleans
  char short_name = 0;        // e.g. 'o' for -o FILE; 0 when none
};

// The arguments of a subcommand: options (from `flags` only) anywhere, the
// rest positional. "--name=value", "--name value", "-o value", "--noname"
// for booleans, "--" ends options. help is set by -h/--help. Errors: an
// unknown option, a missing or bad value (message without a prefix).
struct ParsedArgs {
  bool help = false;
  std::vector<std::string> positional;
};
absl::StatusOr<ParsedArgs> ParseTraceArgs(absl::string_view command,
                                          const std::vector<std::string>& args,
                                          absl::Span<const TraceFlag> flags);

// "Options:" lines for the flags, from their abseil help texts.
std::string TraceFlagsUsage(absl::Span<const TraceFlag> flags);

// Prints "vmashadow: <message>" and "try 'vmashadow COMMAND --help'";
// returns 2.
int TraceUsageError(absl::string_view command, absl::string_view message);

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

}  // namespace vmashadow

#endif  // VMASHADOW_TOOLS_TRACE_CLI_H_
