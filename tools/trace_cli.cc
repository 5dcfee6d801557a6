// trace_cli.cc — flags, the common start and progress for the trace subcommands (see
// trace_cli.h).
#include "tools/trace_cli.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/abi/kernel_profile.h"

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

std::optional<std::string> ParseTraceCommand(absl::string_view command,
                                             const std::vector<std::string>& args,
                                             absl::Span<const CliFlag> flags,
                                             std::string (*usage)(), int* exit_status) {
  absl::StatusOr<CliArgs> parsed = ParseCliArgs(command, args, flags, Positionals::kAnywhere);
  if (!parsed.ok()) {
    *exit_status = CliUsageError(command, parsed.status().message());
    return std::nullopt;
  }
  if (parsed->help) {
    std::fputs(usage().c_str(), stdout);
    *exit_status = 0;
    return std::nullopt;
  }
  if (parsed->positional.size() != 1) {
    *exit_status =
        CliUsageError(command, parsed->positional.empty() ? "no trace file given"
                                                          : "more than one trace file given");
    return std::nullopt;
  }
  const std::string& trace = parsed->positional[0];
  if (const std::string profile = absl::GetFlag(FLAGS_kernel_profile);
      !profile.empty() && FindKernelProfile(profile.c_str()) == nullptr) {
    size_t n = 0;
    const KernelProfile* all = AllKernelProfiles(&n);
    std::vector<std::string> names;
    for (size_t i = 0; i < n; ++i) names.push_back(all[i].name);
    *exit_status =
        CliUsageError(command, absl::StrCat("unknown kernel profile '", profile,
                                            "' (known: ", absl::StrJoin(names, ", "), ")"));
    return std::nullopt;
  }
  // Only a regular file: a FIFO or device would block or never end.
  struct stat st;
  if (stat(trace.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    std::fprintf(stderr,
                 "vmashadow: %s: not a regular file (a trace is a file recorded by "
                 "'vmashadow run --trace')\n",
                 trace.c_str());
    *exit_status = 2;
    return std::nullopt;
  }
  return trace;
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

absl::Status WriteOutputFile(const std::string& path, absl::string_view data) {
  auto fail = [&](absl::string_view why, int /*err*/) {
    return absl::FailedPreconditionError(absl::StrCat("cannot write ", path, ": ", why));
  };
  auto write_all = [&](int fd) {
    size_t done = 0;
    while (done < data.size()) {
      const ssize_t n = write(fd, data.data() + done, data.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  };
  struct stat st;
  if (lstat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    struct stat target;
    if (stat(path.c_str(), &target) != 0 ||
        !(S_ISCHR(target.st_mode) || S_ISFIFO(target.st_mode))) {
      return fail(S_ISLNK(st.st_mode)   ? "it is a symbolic link (name the file itself)"
                  : S_ISDIR(st.st_mode) ? "it is a directory"
                                        : "not a regular file",
                  EINVAL);
    }
    const int fd = open(path.c_str(), O_WRONLY | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return fail(strerror(errno), errno);
    const bool ok = write_all(fd);
    const int err = errno;
    close(fd);
    return ok ? absl::OkStatus() : fail(strerror(err), err);
  }
  const std::filesystem::path p(path);
  const std::string dir = p.has_parent_path() ? p.parent_path().string() : ".";
  const std::string tmp = absl::StrCat(dir, "/.", p.filename().string(), ".", getpid(), ".tmp");
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return fail(strerror(errno), errno);
  bool ok = write_all(fd);
  int err = errno;
  if (close(fd) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (ok && rename(tmp.c_str(), path.c_str()) != 0) {
    ok = false;
    err = errno;
  }
  if (!ok) {
    unlink(tmp.c_str());
    return fail(strerror(err), err);
  }
  return absl::OkStatus();
}

}  // namespace vmashadow
