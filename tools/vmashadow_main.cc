// vmashadow_main.cc — the `vmashadow` command: picks the subcommand named by
// argv[1] and hands it the rest of the arguments. Each subcommand parses its
// own options; adding one (replay, maps, report, plot, export) means one entry
// in kSubcommands.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "tools/run_command.h"
#include "tools/trace_commands.h"

#ifndef VMASHADOW_VERSION
#define VMASHADOW_VERSION "unknown"
#endif

namespace vmashadow {
namespace {

struct Subcommand {
  absl::string_view name;
  absl::string_view summary;
  int (*run)(const std::vector<std::string>& args);
  std::string (*usage)();  // the subcommand's --help text
};

constexpr Subcommand kSubcommands[] = {
    {"run", "run a program with the preload and summarise what it checked", RunCommand, RunUsage},
    {"replay", "replay a trace offline and re-check every recorded result", ReplayCommand,
     ReplayUsage},
    {"maps", "print the model's maps (and VmFlags) after event N of a trace", MapsCommand,
     MapsUsage},
    {"report", "what a trace says about the program's mapping patterns", ReportCommand,
     ReportUsage},
    {"plot", "draw the address space over time (SVG or HTML)", PlotCommand, PlotUsage},
    {"export", "write a trace as Chrome/Perfetto trace-event JSON", ExportCommand, ExportUsage},
};

const Subcommand* FindSubcommand(absl::string_view name) {
  for (const Subcommand& c : kSubcommands) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

std::string MainUsage() {
  std::string out =
      "Usage: vmashadow COMMAND [OPTIONS] [ARGS...]\n"
      "\n"
      "Checks a user-space replica of the Linux kernel's VMA bookkeeping against the\n"
      "running kernel, inside real programs.\n"
      "\n"
      "Commands:\n";
  for (const Subcommand& c : kSubcommands)
    absl::StrAppendFormat(&out, "  %-8s %s\n", c.name, c.summary);
  out +=
      "  help     show this text, or 'vmashadow help COMMAND' for one command\n"
      "\n"
      "'vmashadow COMMAND --help' describes a command's options.\n";
  return out;
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage("vmashadow COMMAND [OPTIONS] [ARGS...]; see 'vmashadow help'");
  if (argc < 2) {
    std::fputs(MainUsage().c_str(), stderr);
    std::fputs("vmashadow: no command given\n", stderr);
    return 2;
  }
  const absl::string_view cmd = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (cmd == "help" || cmd == "--help" || cmd == "-h") {
    if (!args.empty()) {
      const Subcommand* c = FindSubcommand(args[0]);
      if (c == nullptr) {
        std::fprintf(stderr, "vmashadow: unknown command '%s'; see 'vmashadow help'\n",
                     args[0].c_str());
        return 2;
      }
      std::fputs(c->usage().c_str(), stdout);
      return 0;
    }
    std::fputs(MainUsage().c_str(), stdout);
    return 0;
  }
  if (cmd == "--version" || cmd == "version") {
    std::printf("vmashadow %s\n", VMASHADOW_VERSION);
    return 0;
  }
  const Subcommand* c = FindSubcommand(cmd);
  if (c == nullptr) {
    if (!cmd.empty() && cmd[0] == '-') {
      std::fprintf(stderr,
                   "vmashadow: '%s' before a command; options follow the command, e.g. "
                   "'vmashadow run %s -- PROGRAM'; see 'vmashadow help'\n",
                   argv[1], argv[1]);
    } else {
      std::fprintf(stderr, "vmashadow: unknown command '%s'; see 'vmashadow help'\n", argv[1]);
    }
    return 2;
  }
  return c->run(args);
}

}  // namespace
}  // namespace vmashadow

int main(int argc, char** argv) { return vmashadow::Main(argc, argv); }
