// trace_commands.h — the subcommands that read traces:
//
//   vmashadow replay FILE [--kernel-profile=NAME] [--allow-truncated] [--quiet]
//   vmashadow maps FILE --at N [--smaps] [--kernel-profile=NAME]
//   vmashadow report FILE [--json] [--top=N] [-o FILE]
//   vmashadow plot FILE -o OUT.svg [--html]
//   vmashadow export FILE --format=perfetto [-o OUT.json]
//
// Each takes the arguments after its name and returns the exit status: 0,
// 1 (replay: a mismatch), 2 (bad usage, unreadable file), 3 (a corrupt or
// truncated trace; the message names the byte offset).
//
// Tools-only code.
#ifndef VMASHADOW_TOOLS_TRACE_COMMANDS_H_
#define VMASHADOW_TOOLS_TRACE_COMMANDS_H_

#include <string>
#include <vector>

namespace vmashadow {

int ReplayCommand(const std::vector<std::string>& args);
std::string ReplayUsage();

int MapsCommand(const std::vector<std::string>& args);
std::string MapsUsage();

int ReportCommand(const std::vector<std::string>& args);
std::string ReportUsage();

int PlotCommand(const std::vector<std::string>& args);
std::string PlotUsage();

int ExportCommand(const std::vector<std::string>& args);
std::string ExportUsage();

}  // namespace vmashadow

#endif  // VMASHADOW_TOOLS_TRACE_COMMANDS_H_
