// run_command.h — `vmashadow run [flags] [--] PROGRAM ARGS...`: starts PROGRAM
// with libvmashadow.so preloaded (the environment of /tmp/contract.md), waits
// for it, prints the summary of the reports its processes wrote, and exits as
// the program did (same status, or dies of the same signal).
//
// Tools-only code (abseil flags, STL, fork/exec).
#ifndef VMASHADOW_TOOLS_RUN_COMMAND_H_
#define VMASHADOW_TOOLS_RUN_COMMAND_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vmashadow {

// The value of --check: "every", "exit", "off" or a positive decimal N (a full
// comparison every N events). Parsed strictly (no sign, no spaces, N >= 1).
struct CheckMode {
  std::string text = "exit";
};
bool AbslParseFlag(absl::string_view text, CheckMode* mode, std::string* error);
std::string AbslUnparseFlag(const CheckMode& mode);

// A "yes" or "no" flag value (--follow-children=yes|no).
struct YesNo {
  bool yes = true;
};
bool AbslParseFlag(absl::string_view text, YesNo* value, std::string* error);
std::string AbslUnparseFlag(const YesNo& value);

// The hidden --backend: "" (leave VMASHADOW_BACKEND as it is), "sud" or "wrappers".
struct BackendChoice {
  std::string name;
};
bool AbslParseFlag(absl::string_view text, BackendChoice* value, std::string* error);
std::string AbslUnparseFlag(const BackendChoice& value);

// What `vmashadow run ...` was asked to do.
struct RunOptions {
  bool help = false;  // --help: print RunUsage() and exit 0
  std::string check = "exit";
  bool strict = false;
  std::string report_dir;  // empty: a private temporary directory
  bool follow_children = true;
  std::string backend;                    // empty: not set by the launcher
  std::string trace;                      // --trace=FILE; empty: no trace
  int error_exitcode = 0;                 // --error-exitcode=N; 0: the program's status
  std::vector<std::string> program_argv;  // PROGRAM ARGS...
};

// Parses the arguments after "run" with ParseCliArgs (tools/cli_flags.h).
// Options come first and end at "--" or at the first argument that does not
// start with '-'. Option names may use '-' or '_' ("--report-dir" =
// "--report_dir"); non-boolean options take their value after '=' or as the
// next argument. A bad option is an InvalidArgument error (message without the
// "vmashadow: " prefix) rather than abseil's exit(1). Errors: unknown option,
// missing or bad value, no PROGRAM.
absl::StatusOr<RunOptions> ParseRunArgs(const std::vector<std::string>& args);

// The text `vmashadow run --help` prints.
std::string RunUsage();

// Runs the subcommand; `args` are the arguments after "run". Returns the exit
// status: the program's, or 2 (usage, static program, unusable report
// directory or library), 126 (cannot execute), 127 (not found). When the
// program died of a signal this does not return: the launcher kills itself
// with the same signal after printing the summary.
int RunCommand(const std::vector<std::string>& args);

}  // namespace vmashadow

#endif  // VMASHADOW_TOOLS_RUN_COMMAND_H_
