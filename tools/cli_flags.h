// cli_flags.h — the option grammar every `vmashadow` subcommand shares (run,
// replay, maps, report, plot, export). Abseil flags are process-global, so
// each subcommand lists the flags it accepts in a table of CliFlag, and this
// parser checks names and values itself: a bad option is an error message,
// not abseil's exit(1). Values are stored with abseil's ParseFrom; read them
// with absl::GetFlag.
//
// Tools-only code (abseil flags, STL).
#ifndef VMASHADOW_TOOLS_CLI_FLAGS_H_
#define VMASHADOW_TOOLS_CLI_FLAGS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace vmashadow {

// One option a subcommand accepts.
struct CliFlag {
  absl::string_view name;     // abseil's name, with '_'
  absl::string_view spelled;  // as documented, with '-'
  absl::string_view value;    // placeholder for the help text; empty for booleans
  char short_name = 0;        // e.g. 'o' for -o FILE; 0 when none
  bool hidden = false;        // left out of the help text
};

// Where a subcommand's positional arguments (those not starting with '-', and
// "-") may stand.
enum class Positionals {
  kAnywhere,    // among the options: `replay TRACE --quiet`
  kEndOptions,  // the first one ends the options: `run --strict PROGRAM -x`
};

// The arguments of a subcommand once its options are stored.
struct CliArgs {
  bool help = false;  // -h, --help or -help (parsing stopped there)
  std::vector<std::string> positional;
};

// Parses `args` (the arguments after the subcommand's name) against `flags`:
// "--name=value", "--name value", "-name..." like "--name...", '-' or '_' in
// names, "--noname" for booleans, "-o value" and "-ovalue" for a flag with
// short_name 'o'; "--" ends the options (and is dropped). Stores each value in
// its abseil flag. Errors (InvalidArgument, message without a prefix): an
// option not in `flags` ("unknown option '--x' for 'COMMAND'"), a missing
// value, a value abseil refuses ("bad value 'v' for '--x': <why>").
absl::StatusOr<CliArgs> ParseCliArgs(absl::string_view command,
                                     const std::vector<std::string>& args,
                                     absl::Span<const CliFlag> flags, Positionals positionals);

// Whether the help text names a flag's default value (non-booleans only).
enum class FlagDefaults { kHide, kShow };

// "Options:" and a line per flag that is not hidden, with its abseil help
// text wrapped at 80 columns.
std::string CliFlagsUsage(absl::Span<const CliFlag> flags, FlagDefaults defaults);

// Prints "vmashadow: <message>" and "vmashadow: try 'vmashadow COMMAND
// --help'" on stderr; returns 2 (the exit status for bad usage).
int CliUsageError(absl::string_view command, absl::string_view message);

}  // namespace vmashadow

#endif  // VMASHADOW_TOOLS_CLI_FLAGS_H_
