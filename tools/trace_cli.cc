// trace_cli.cc — options, usage and progress for the trace subcommands (see
// trace_cli.h).
#include "tools/trace_cli.h"

#include <unistd.h>

#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"

ABSL_FLAG(std::string, kernel_profile, "",
          "replay with this kernel profile (6.12, 6.15, 6.17, 6.18, 6.18-fc) instead of the one "
          "the trace was recorded with");
ABSL_FLAG(int64_t, at, -1, "the event after which to show the model (0: after the first seed)");
ABSL_FLAG(bool, smaps, false, "also print each VMA's VmFlags line, as /proc/self/smaps does");
ABSL_FLAG(bool, json, false, "print JSON instead of text");
ABSL_FLAG(std::string, output, "", "write to FILE");
ABSL_FLAG(bool, html, false, "write an HTML page (the picture, the report and tooltips)");
ABSL_FLAG(std::string, format, "perfetto", "the export format (perfetto: Chrome trace-event JSON)");
ABSL_FLAG(bool, allow_truncated, false,
          "accept a trace whose last record was cut short (replay what is complete)");
ABSL_FLAG(bool, progress, true, "show progress on a terminal (--noprogress: never)");
ABSL_FLAG(int64_t, top, 10, "how many entries the top-N tables show");
ABSL_FLAG(bool, quiet, false, "print only the result line (and mismatches)");

namespace vmashadow {

absl::StatusOr<ParsedArgs> ParseTraceArgs(absl::string_view command,
                                          const std::vector<std::string>& args,
                                          absl::Span<const TraceFlag> flags) {
  ParsedArgs out;
  auto find = [&](absl::string_view name) -> const TraceFlag* {
    for (const TraceFlag& f : flags) {
      if (f.name == name) return &f;
    }
    return nullptr;
  };
  bool options_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (options_done || arg.size() < 2 || arg[0] != '-') {
      out.positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    if (arg == "-h" || arg == "--help" || arg == "-help") {
      out.help = true;
      return out;
    }
    const TraceFlag* flag = nullptr;
    std::string value;
    bool has_value = false;
    bool negated = false;
    if (arg[1] != '-' && arg.size() >= 2) {
      // -o FILE, -oFILE
      for (const TraceFlag& f : flags) {
        if (f.short_name != 0 && f.short_name == arg[1]) flag = &f;
      }
      if (flag != nullptr && arg.size() > 2) {
        value = arg.substr(2);
        has_value = true;
      }
    }
    if (flag == nullptr) {
      absl::string_view body = arg;
      body.remove_prefix(absl::StartsWith(body, "--") ? 2 : 1);
      const size_t eq = body.find('=');
      const std::string name = absl::StrReplaceAll(body.substr(0, eq), {{"-", "_"}});
      has_value = eq != absl::string_view::npos;
      if (has_value) value = std::string(body.substr(eq + 1));
      flag = find(name);
      if (flag == nullptr && absl::StartsWith(name, "no")) {
        const TraceFlag* positive = find(name.substr(2));
        if (positive != nullptr && positive->value.empty() && !has_value) {
          flag = positive;
          negated = true;
        }
      }
    }
    if (flag == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown option '", arg, "' for '", command, "'"));
    }
    const bool is_bool = flag->value.empty();
    if (negated) {
      value = "false";
    } else if (!has_value && is_bool) {
      value = "true";
    } else if (!has_value) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("option '--", flag->spelled, "' needs a value (", flag->value, ")"));
      }
      value = args[++i];
    }
    absl::CommandLineFlag* cl = absl::FindCommandLineFlag(flag->name);
    std::string error;
    if (cl == nullptr || !cl->ParseFrom(value, &error)) {
      return absl::InvalidArgumentError(absl::StrCat("bad value '", value, "' for '--",
                                                     flag->spelled, "'",
                                                     is_bool ? ": expected true or false" : ""));
    }
  }
  return out;
}

std::string TraceFlagsUsage(absl::Span<const TraceFlag> flags) {
  constexpr size_t kIndent = 29;
  constexpr size_t kWidth = 80;
  std::string out = "Options:\n";
  for (const TraceFlag& f : flags) {
    const absl::CommandLineFlag* cl = absl::FindCommandLineFlag(f.name);
    std::string left = f.value.empty() ? absl::StrCat("--", f.spelled)
                                       : absl::StrCat("--", f.spelled, "=", f.value);
    if (f.short_name != 0) left = absl::StrCat("-", std::string(1, f.short_name), ", ", left);
    std::string line = absl::StrFormat("  %-*s", static_cast<int>(kIndent - 3), left);
    if (line.size() + 1 > kIndent) line = absl::StrCat(line, "\n", std::string(kIndent - 1, ' '));
    size_t col = kIndent - 1;
    const std::string help = cl != nullptr ? cl->Help() : "";
    for (absl::string_view word : absl::StrSplit(help, ' ', absl::SkipEmpty())) {
      if (col + 1 + word.size() > kWidth && col > kIndent - 1) {
        absl::StrAppend(&line, "\n", std::string(kIndent - 1, ' '));
        col = kIndent - 1;
      }
      absl::StrAppend(&line, " ", word);
      col += 1 + word.size();
    }
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

int TraceUsageError(absl::string_view command, absl::string_view message) {
  std::fprintf(stderr, "vmashadow: %.*s\nvmashadow: try 'vmashadow %.*s --help'\n",
               static_cast<int>(message.size()), message.data(), static_cast<int>(command.size()),
               command.data());
  return 2;
}

Progress::Progress(absl::string_view what)
    : what_(what),
      enabled_(absl::GetFlag(FLAGS_progress) && isatty(2) != 0),
      start_(std::chrono::steady_clock::now()),
      last_(start_) {}

Progress::~Progress() { Finish(); }

void Progress::Update(uint64_t done_bytes, uint64_t total_bytes, uint64_t events) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_ < std::chrono::milliseconds(200)) return;
  last_ = now;
  const double secs = std::chrono::duration<double>(now - start_).count();
  const double pct =
      total_bytes != 0 ? 100.0 * static_cast<double>(done_bytes) / static_cast<double>(total_bytes)
                       : 0;
  std::fprintf(stderr, "\r%s %5.1f%%  %s events  %.0f events/s   ", what_.c_str(), pct,
               Thousands(events).c_str(), secs > 0 ? static_cast<double>(events) / secs : 0.0);
  std::fflush(stderr);
  shown_ = true;
}

void Progress::Finish() {
  if (!shown_) return;
  std::fprintf(stderr, "\r%*s\r", 72, "");
  std::fflush(stderr);
  shown_ = false;
}

std::string Thousands(uint64_t v) {
  std::string digits = absl::StrCat(v);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

}  // namespace vmashadow
