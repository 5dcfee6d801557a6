// cli_flags.cc — the subcommands' option parser and help lines (see
// cli_flags.h).
#include "tools/cli_flags.h"

#include <cstdio>

#include "absl/flags/reflection.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"

namespace vmashadow {
namespace {

const CliFlag* FindFlag(absl::Span<const CliFlag> flags, absl::string_view name) {
  for (const CliFlag& f : flags) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

const CliFlag* FindShortFlag(absl::Span<const CliFlag> flags, char short_name) {
  for (const CliFlag& f : flags) {
    if (f.short_name != 0 && f.short_name == short_name) return &f;
  }
  return nullptr;
}

// "  --left     text..." with the text wrapped at 80 columns under itself.
std::string Wrap(absl::string_view left, absl::string_view text) {
  constexpr size_t kIndent = 29;
  constexpr size_t kWidth = 80;
  std::string out = absl::StrFormat("  %-*s", static_cast<int>(kIndent - 3), left);
  if (out.size() + 1 > kIndent) out = absl::StrCat(out, "\n", std::string(kIndent - 1, ' '));
  size_t col = kIndent - 1;
  for (absl::string_view word : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    if (col + 1 + word.size() > kWidth && col > kIndent - 1) {
      absl::StrAppend(&out, "\n", std::string(kIndent - 1, ' '));
      col = kIndent - 1;
    }
    absl::StrAppend(&out, " ", word);
    col += 1 + word.size();
  }
  return out + "\n";
}

}  // namespace

absl::StatusOr<CliArgs> ParseCliArgs(absl::string_view command,
                                     const std::vector<std::string>& args,
                                     absl::Span<const CliFlag> flags, Positionals positionals) {
  CliArgs out;
  bool options_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (options_done || arg.size() < 2 || arg[0] != '-') {
      out.positional.push_back(arg);
      if (positionals == Positionals::kEndOptions) options_done = true;
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
    // -o FILE, -oFILE
    const CliFlag* flag = arg[1] != '-' ? FindShortFlag(flags, arg[1]) : nullptr;
    const bool short_value = flag != nullptr && arg.size() > 2;
    std::string value = short_value ? arg.substr(2) : "";
    bool has_value = short_value;
    bool negated = false;
    if (flag == nullptr) {
      absl::string_view body = arg;
      body.remove_prefix(absl::StartsWith(body, "--") ? 2 : 1);
      const size_t eq = body.find('=');
      const std::string name = absl::StrReplaceAll(body.substr(0, eq), {{"-", "_"}});
      has_value = eq != absl::string_view::npos;
      if (has_value) value = std::string(body.substr(eq + 1));
      flag = FindFlag(flags, name);
      if (flag == nullptr && absl::StartsWith(name, "no")) {
        const CliFlag* positive = FindFlag(flags, absl::string_view(name).substr(2));
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
    const bool parsed = cl != nullptr && cl->ParseFrom(value, &error);
    if (parsed && value.empty() && !is_bool) {
      // "--trace=" is a mistake (an unset shell variable), never "no trace".
      return absl::InvalidArgumentError(absl::StrCat("bad value '' for '--", flag->spelled,
                                                     "': expected ", flag->value,
                                                     ", not an empty value"));
    }
    if (!parsed) {
      // abseil says "Illegal value 'x' specified for flag 'y'; <the type's reason>",
      // without "; ..." when the type gives none (bool, integers).
      const size_t semi = error.find("; ");
      error = semi != std::string::npos ? error.substr(semi + 2)
              : is_bool                 ? "expected true or false"
                                        : "";
      return absl::InvalidArgumentError(absl::StrCat(
          "bad value '", value, "' for '--", flag->spelled, "'", error.empty() ? "" : ": ", error));
    }
  }
  return out;
}

std::string CliFlagsUsage(absl::Span<const CliFlag> flags, FlagDefaults defaults) {
  std::string out = "Options:\n";
  for (const CliFlag& f : flags) {
    if (f.hidden) continue;
    const absl::CommandLineFlag* cl = absl::FindCommandLineFlag(f.name);
    std::string left = f.value.empty() ? absl::StrCat("--", f.spelled)
                                       : absl::StrCat("--", f.spelled, "=", f.value);
    if (f.short_name != 0) left = absl::StrCat("-", std::string(1, f.short_name), ", ", left);
    std::string help = cl != nullptr ? cl->Help() : "";
    if (defaults == FlagDefaults::kShow && cl != nullptr && !f.value.empty() &&
        !cl->DefaultValue().empty()) {
      absl::StrAppend(&help, " (default: ", cl->DefaultValue(), ")");
    }
    absl::StrAppend(&out, Wrap(left, help));
  }
  return out;
}

int CliUsageError(absl::string_view command, absl::string_view message) {
  std::fprintf(stderr, "vmashadow: %.*s\nvmashadow: try 'vmashadow %.*s --help'\n",
               static_cast<int>(message.size()), message.data(), static_cast<int>(command.size()),
               command.data());
  return 2;
}

}  // namespace vmashadow
