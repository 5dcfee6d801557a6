// run_command.cc — the `vmashadow run` launcher (see run_command.h and the
// contract in /tmp/contract.md): options, program and library checks, the
// report directory, the child's environment, fork/exec, waiting with the
// signal conventions of a wrapper like strace or time(1), the summary, and
// passing the program's exit status or death signal on.
#include "tools/run_command.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "tools/cli_flags.h"
#include "tools/program_check.h"
#include "tools/report.h"
#include "tools/summary.h"

ABSL_FLAG(vmashadow::CheckMode, check, vmashadow::CheckMode{},
          "how often the preload compares its whole model with /proc/self/maps: every event "
          "(\"every\"), every N events, only at exit (\"exit\"), or never (\"off\")");
ABSL_FLAG(bool, strict, false,
          "abort the program at the first divergence (after writing its report)");
ABSL_FLAG(std::string, report_dir, "",
          "keep the per-process JSON reports in DIR (created if needed); default: a temporary "
          "directory removed at the end");
ABSL_FLAG(vmashadow::YesNo, follow_children, vmashadow::YesNo{},
          "also monitor the program's child processes and the programs they exec");
ABSL_FLAG(std::string, trace, "",
          "record every event into the trace FILE (children: FILE.<pid>; later images after "
          "execve: .exec<k>); read it with replay, maps, report, plot, export");
ABSL_FLAG(int, error_exitcode, 0,
          "exit with status N (1-255) instead of the program's when anything went wrong: a "
          "divergence, a report that is incomplete or lost, a trace that stopped early "
          "(Valgrind's convention; 0: off)");
ABSL_FLAG(vmashadow::BackendChoice, backend, vmashadow::BackendChoice{},
          "(for benchmarks) interception backend: sud or wrappers");

namespace vmashadow {
namespace {

namespace fs = std::filesystem;

constexpr absl::string_view kPrefix = "vmashadow: ";

// The options `vmashadow run` accepts (abseil's flags are process-global; this
// list keeps other subcommands' flags out of `run`).
constexpr CliFlag kRunFlags[] = {
    {"check", "check", "every|N|exit|off"},
    {"strict", "strict", ""},
    {"report_dir", "report-dir", "DIR"},
    {"follow_children", "follow-children", "yes|no"},
    {"trace", "trace", "FILE"},
    {"error_exitcode", "error-exitcode", "N"},
    {"backend", "backend", "sud|wrappers", /*short_name=*/0, /*hidden=*/true},
};

void PrintErr(absl::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}

// ---------------------------------------------------------------------------
// Signals while the program runs.

// The child's pid once forked (0 before): SIGTERM/SIGHUP are passed to it,
// once (see ForwardSignal).
volatile sig_atomic_t g_child_pid = 0;

// SIGTERM/SIGHUP sent to the launcher go to the program too. The program
// shares the launcher's process group, as it would natively, so a signal
// sent to the group (kill -TERM -PGID, a shell's job control, timeout, a
// terminal) reaches it directly and every member dies together (SIGKILL to
// the group included). A terminal's hangup (SI_KERNEL) is therefore not
// passed on. The launcher cannot tell a signal sent to it alone from one
// sent to its group: a SIGTERM/SIGHUP sent to the whole group reaches a
// program that handles it twice unless the two copies merge while pending
// (README, known limits). A program given a process group of its own would
// see it once, but then killing the group (SIGKILL cannot be passed on)
// would leave the program and its children running.
void ForwardSignal(int sig, siginfo_t* si, void*) {
  const int saved_errno = errno;
  const pid_t child = static_cast<pid_t>(g_child_pid);
  const bool from_terminal = si != nullptr && si->si_code == SI_KERNEL;
  if (child > 0 && !from_terminal) kill(child, sig);
  errno = saved_errno;
}

// The dispositions and mask the launcher started with, restored in the child
// before exec and in the launcher once the program has ended.
struct SavedSignals {
  struct sigaction interrupt, quit, term, hangup, pipe;
  sigset_t mask;
};

constexpr int kForwarded[] = {SIGTERM, SIGHUP};

// Ignores SIGINT/SIGQUIT (the terminal sends them to the whole process group,
// so the program gets its own copy) and forwards SIGTERM/SIGHUP, which are
// blocked until the child's pid is known (UnblockForwarded).
void InstallSignals(SavedSignals* saved) {
  struct sigaction ignore = {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  struct sigaction forward = {};
  forward.sa_sigaction = ForwardSignal;
  forward.sa_flags = SA_SIGINFO;
  sigemptyset(&forward.sa_mask);
  for (int sig : kForwarded) sigaddset(&forward.sa_mask, sig);
  sigaction(SIGINT, &ignore, &saved->interrupt);
  sigaction(SIGQUIT, &ignore, &saved->quit);
  // Our summary on a closed pipe must not kill us: the status is the program's.
  sigaction(SIGPIPE, &ignore, &saved->pipe);

  sigset_t block;
  sigemptyset(&block);
  for (int sig : kForwarded) sigaddset(&block, sig);
  sigprocmask(SIG_BLOCK, &block, &saved->mask);

  sigaction(SIGTERM, &forward, &saved->term);
  sigaction(SIGHUP, &forward, &saved->hangup);
}

void RestoreSignals(const SavedSignals& saved) {
  sigaction(SIGINT, &saved.interrupt, nullptr);
  sigaction(SIGQUIT, &saved.quit, nullptr);
  sigaction(SIGTERM, &saved.term, nullptr);
  sigaction(SIGHUP, &saved.hangup, nullptr);
  sigaction(SIGPIPE, &saved.pipe, nullptr);
  sigprocmask(SIG_SETMASK, &saved.mask, nullptr);
}

void UnblockForwarded() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : kForwarded) sigaddset(&set, sig);
  sigprocmask(SIG_UNBLOCK, &set, nullptr);
}

// Dies of `sig` as the program did, so the shell sees the same status. The
// launcher makes itself non-dumpable first: the program's core dump (if any)
// is the one that matters.
[[noreturn]] void DieOfSignal(int sig) {
  std::fflush(stdout);
  std::fflush(stderr);
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, nullptr);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  sigprocmask(SIG_UNBLOCK, &set, nullptr);
  kill(getpid(), sig);
  // A signal whose default action is to ignore it (the program cannot have
  // died of one, but be safe): exit as shells report signals.
  _exit(128 + sig);
}

std::string DescribeStatus(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exited with status ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* abbrev = sigabbrev_np(sig);
    const std::string name =
        abbrev != nullptr ? absl::StrCat("SIG", abbrev) : absl::StrCat("signal ", sig);
    return absl::StrFormat("killed by %s (%s)%s", name, strsignal(sig),
                           WCOREDUMP(status) ? ", core dumped" : "");
  }
  return absl::StrCat("ended with wait status ", status);
}

// ---------------------------------------------------------------------------
// The library, the report directory, the environment.

// An absolute, lexically normal path ("tools/../preload" folded), no trailing '/'.
std::string AbsoluteNormal(const fs::path& p) {
  std::error_code ec;
  fs::path abs = fs::absolute(p, ec);
  if (ec) abs = p;
  std::string s = abs.lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

bool IsRegularFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// $VMASHADOW_LIB, else the build tree's, else the installed library.
absl::StatusOr<std::string> FindPreloadLibrary() {
  std::string lib;
  if (const char* env = getenv("VMASHADOW_LIB"); env != nullptr && *env != '\0') {
    lib = AbsoluteNormal(env);
    if (!IsRegularFile(lib)) {
      return absl::FailedPreconditionError(
          absl::StrCat("VMASHADOW_LIB=", env, ": no such library (not a regular file)"));
    }
  } else {
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (ec) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot read /proc/self/exe (", ec.message(),
                       ") to find libvmashadow.so; set VMASHADOW_LIB"));
    }
    const std::string candidates[] = {
        AbsoluteNormal(exe.parent_path() / "../preload/libvmashadow.so"),
        AbsoluteNormal(exe.parent_path() / "../lib/vmashadow/libvmashadow.so"),
    };
    for (const std::string& c : candidates) {
      if (IsRegularFile(c)) {
        lib = c;
        break;
      }
    }
    if (lib.empty()) {
      return absl::FailedPreconditionError(absl::StrCat("cannot find libvmashadow.so (looked for ",
                                                        candidates[0], " and ", candidates[1],
                                                        "); set VMASHADOW_LIB to its path"));
    }
  }
  // ld.so splits LD_PRELOAD at ':' and at white space.
  if (lib.find_first_of(": \t\n") != std::string::npos) {
    return absl::FailedPreconditionError(
        absl::StrCat("the library path \"", lib,
                     "\" contains ':' or white space, which LD_PRELOAD cannot carry"));
  }
  return lib;
}

// A report file as it was before the run (rewritten files get a new inode).
struct FileStamp {
  ino_t inode;
  int64_t mtime_ns;
  bool operator==(const FileStamp& o) const { return inode == o.inode && mtime_ns == o.mtime_ns; }
};

std::map<std::string, FileStamp> StampReports(const std::string& dir) {
  std::map<std::string, FileStamp> stamps;
  absl::StatusOr<std::vector<std::string>> files = ListReportFiles(dir);
  if (!files.ok()) return stamps;
  for (const std::string& f : *files) {
    struct stat st;
    if (stat(f.c_str(), &st) != 0) continue;
    stamps[f] = {st.st_ino, int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec};
  }
  return stamps;
}

struct ReportDir {
  std::string path;  // absolute
  bool temporary = false;
  std::map<std::string, FileStamp> before;  // reports already there
};

// Creates the directory the user named (with parents) and checks that a file
// can be created in it, or makes a private temporary one.
absl::StatusOr<ReportDir> PrepareReportDir(const std::string& requested) {
  ReportDir dir;
  if (requested.empty()) {
    const char* tmp = getenv("TMPDIR");
    const std::string base = AbsoluteNormal(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp");
    std::string templ = absl::StrCat(base == "/" ? "" : base, "/vmashadow.XXXXXX");
    if (mkdtemp(templ.data()) == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot create a temporary report directory in ", base, ": ",
                       strerror(errno), " (set TMPDIR or use --report-dir)"));
    }
    dir.path = templ;
    dir.temporary = true;
    return dir;
  }
  dir.path = AbsoluteNormal(requested);
  std::error_code ec;
  fs::create_directories(dir.path, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create report directory ", dir.path, ": ", ec.message()));
  }
  if (!fs::is_directory(dir.path, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("report directory ", dir.path, " is not a directory"));
  }
  const std::string probe = absl::StrCat(dir.path, "/.vmashadow-probe-", getpid());
  const int fd = open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot write to report directory ", dir.path, ": ", strerror(errno)));
  }
  close(fd);
  unlink(probe.c_str());
  dir.before = StampReports(dir.path);
  return dir;
}

// A random name for this run (16 hex digits): the preload puts it in every
// report it writes and in report file names when the plain name is taken, so
// that two runs sharing a report directory each count their own processes.
std::string NewRunId() {
  uint64_t v = 0;
  if (getrandom(&v, sizeof(v), 0) != static_cast<ssize_t>(sizeof(v))) {
    v = static_cast<uint64_t>(getpid()) * 0x9e3779b97f4a7c15u ^
        static_cast<uint64_t>(time(nullptr)) ^ reinterpret_cast<uintptr_t>(&v);
  }
  return absl::StrFormat("%016x", v);
}

absl::Status SetEnv(const char* name, const std::string& value) {
  if (setenv(name, value.c_str(), 1) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot set ", name));
  }
  return absl::OkStatus();
}

// The environment of the contract, in the launcher itself (the child inherits
// it; VMASHADOW_ROOT_PID is set in the child).
absl::Status SetPreloadEnv(const RunOptions& opt, const std::string& lib,
                           const std::string& report_dir, const std::string& run_id) {
  const char* old = getenv("LD_PRELOAD");
  absl::Status s =
      SetEnv("LD_PRELOAD", old != nullptr && *old != '\0' ? absl::StrCat(lib, ":", old) : lib);
  s.Update(SetEnv("VMASHADOW_CHECK", opt.check));
  if (opt.strict) {
    s.Update(SetEnv("VMASHADOW_STRICT", "1"));
  } else {
    unsetenv("VMASHADOW_STRICT");
  }
  s.Update(SetEnv("VMASHADOW_REPORT_DIR", report_dir));
  s.Update(SetEnv("VMASHADOW_RUN_ID", run_id));
  s.Update(SetEnv("VMASHADOW_FOLLOW_CHILDREN", opt.follow_children ? "yes" : "no"));
  s.Update(SetEnv("VMASHADOW_QUIET", "1"));
  if (!opt.backend.empty()) s.Update(SetEnv("VMASHADOW_BACKEND", opt.backend));
  if (!opt.trace.empty()) {
    s.Update(SetEnv("VMASHADOW_TRACE", opt.trace));
  } else {
    unsetenv("VMASHADOW_TRACE");
  }
  unsetenv("VMASHADOW_ROOT_PID");
  return s;
}

// ---------------------------------------------------------------------------
// Starting and waiting.

struct Started {
  pid_t pid = -1;
  int exec_errno = 0;  // non-zero: execvp failed in the child (which has exited)
};

// Forks; the child restores the launcher's original signal state, names
// itself in VMASHADOW_ROOT_PID and execs. An execvp failure travels back
// through a close-on-exec pipe.
absl::StatusOr<Started> StartProgram(const std::string& path, const std::vector<std::string>& argv,
                                     const SavedSignals& saved) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, "pipe2");
  std::vector<char*> cargv;
  for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);

  const pid_t pid = fork();
  if (pid < 0) {
    const int err = errno;
    close(fds[0]);
    close(fds[1]);
    return absl::ErrnoToStatus(err, "fork");
  }
  if (pid == 0) {
    close(fds[0]);
    RestoreSignals(saved);
    char buf[32];
    snprintf(buf, sizeof(buf), "%d", static_cast<int>(getpid()));
    setenv("VMASHADOW_ROOT_PID", buf, 1);
    execvp(path.c_str(), cargv.data());
    const int err = errno;
    ssize_t unused = write(fds[1], &err, sizeof(err));
    (void)unused;
    _exit(127);
  }
  g_child_pid = pid;
  UnblockForwarded();
  close(fds[1]);
  Started started;
  started.pid = pid;
  int err = 0;
  ssize_t n;
  do {
    n = read(fds[0], &err, sizeof(err));
  } while (n < 0 && errno == EINTR);
  close(fds[0]);
  if (n == static_cast<ssize_t>(sizeof(err))) started.exec_errno = err;
  return started;
}

int WaitForChild(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      PrintErr(absl::StrCat(kPrefix, "waitpid: ", strerror(errno), "\n"));
      return -1;
    }
  }
  return status;
}

// The summary input from the reports written during this run.
// The run id a report file names in its first bytes ({"pid":N,"run_id":"X"),
// for a file that does not parse (a report being rewritten by another run's
// process as we read it); nullopt when it does not start that way.
std::optional<std::string> RunIdOfText(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return std::nullopt;
  char buf[128];
  const ssize_t n = read(fd, buf, sizeof(buf));
  close(fd);
  if (n <= 0) return std::nullopt;
  absl::string_view text(buf, static_cast<size_t>(n));
  if (!absl::ConsumePrefix(&text, "{\"pid\":")) return std::nullopt;
  while (!text.empty() && text[0] >= '0' && text[0] <= '9') text.remove_prefix(1);
  if (!absl::ConsumePrefix(&text, ",\"run_id\":\"")) return std::nullopt;
  const size_t q = text.find('"');
  if (q == absl::string_view::npos) return std::nullopt;
  return std::string(text.substr(0, q));
}

struct LostReport {
  uint64_t pid = 0;
  std::string run_id;
  int error = 0;
};

// "<pid>-<runid>.lost<errno>.json", else nullopt.
std::optional<LostReport> ParseLostReportName(absl::string_view name) {
  LostReport lost;
  const size_t dash = name.find('-');
  const size_t dot = name.find('.');
  if (dash == absl::string_view::npos || dot == absl::string_view::npos || dot < dash ||
      !absl::SimpleAtoi(name.substr(0, dash), &lost.pid)) {
    return std::nullopt;
  }
  lost.run_id = std::string(name.substr(dash + 1, dot - dash - 1));
  absl::string_view rest = name.substr(dot + 1);
  if (!absl::ConsumePrefix(&rest, "lost") || !absl::ConsumeSuffix(&rest, ".json") ||
      !absl::SimpleAtoi(rest, &lost.error) || lost.error <= 0) {
    return std::nullopt;
  }
  return lost;
}

RunSummaryInput CollectReports(const ReportDir& dir, pid_t root_pid, int status,
                               const CheckedProgram& program, const std::string& run_id) {
  RunSummaryInput in;
  in.root_pid = static_cast<uint64_t>(root_pid);
  in.program_end = status >= 0 ? DescribeStatus(status) : "";
  in.report_dir = dir.path;
  in.report_dir_kept = !dir.temporary;
  in.no_report_hints = program.unmonitored_reasons;
  absl::StatusOr<std::vector<std::string>> files = ListReportFiles(dir.path);
  if (!files.ok()) {
    PrintErr(absl::StrCat(kPrefix, files.status().message(), "\n"));
    return in;
  }
  for (const std::string& f : *files) {
    if (auto it = dir.before.find(f); it != dir.before.end()) {
      struct stat st;
      if (stat(f.c_str(), &st) == 0 &&
          it->second ==
              FileStamp{st.st_ino, int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec}) {
        continue;  // left from an earlier run
      }
    }
    // DIR/<pid>-<runid>.lost<errno>.json: a process that could not create
    // its report said so with an empty file (preload/shadow.cc, StartReport).
    if (const std::optional<LostReport> lost = ParseLostReportName(fs::path(f).filename().string());
        lost.has_value()) {
      if (lost->run_id != run_id) continue;
      const char* name = strerrorname_np(lost->error);
      in.reports.push_back(
          {f, absl::DataLossError(absl::StrCat(
                  "pid ", lost->pid, ": its report could not be created: ",
                  name != nullptr ? name : "error", " (", strerror(lost->error), ")"))});
      continue;
    }
    absl::StatusOr<ProcessReport> report = ReadReportFile(f);
    // Another run's report (a directory shared by concurrent runs).
    if (report.ok() && report->run_id != run_id) continue;
    if (!report.ok()) {
      const std::optional<std::string> other = RunIdOfText(f);
      if (other.has_value() && *other != run_id) continue;
    }
    in.reports.push_back({f, std::move(report)});
  }
  return in;
}

// What --error-exitcode counts: divergences, reports that are malformed,
// incomplete or missing their final text, traces that stopped early.
bool RunHadProblems(const RunSummaryInput& in) {
  for (const LoadedReport& lr : in.reports) {
    if (!lr.report.ok()) return true;
    const ProcessReport& r = *lr.report;
    if (!r.IsComplete() || r.divergences != 0 || !r.report_error.empty() ||
        !r.trace_stopped.empty()) {
      return true;
    }
  }
  return false;
}

void RemoveDir(const ReportDir& dir) {
  if (!dir.temporary) return;
  std::error_code ec;
  fs::remove_all(dir.path, ec);
  if (ec) {
    PrintErr(absl::StrCat(kPrefix, "warning: cannot remove ", dir.path, ": ", ec.message(), "\n"));
  }
}

// --trace=FILE. The preload creates FILE, FILE.exec<k>, FILE.<pid> and
// FILE.<pid>.exec<k> exclusively (O_EXCL|O_NOFOLLOW, 0600). At the end of a
// run the launcher lists the ones this run created in a manifest beside them,
// DIR/.FILE.vmashadow-manifest ("<dev> <inode> <name>" lines); the next run
// with the same FILE removes exactly those (still the same file, still
// starting with the trace magic), never anything else that looks like them.

constexpr absl::string_view kManifestMagic = "vmashadow trace manifest 1";
constexpr absl::string_view kTraceMagic = "VMASHTRC";

// Where FILE's manifest lives.
std::string ManifestPath(const std::string& trace) {
  const fs::path p(trace);
  return (p.parent_path() / absl::StrCat(".", p.filename().string(), ".vmashadow-manifest"))
      .string();
}

// FILE, FILE.exec<k>, FILE.<pid>, FILE.<pid>.exec<k>: a name the preload may
// give one of this run's traces.
bool IsTraceName(absl::string_view name, absl::string_view base) {
  auto digits = [](absl::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  absl::string_view rest = name;
  if (!absl::ConsumePrefix(&rest, base)) return false;
  if (rest.empty()) return true;
  if (!absl::ConsumePrefix(&rest, ".")) return false;
  absl::string_view pid = rest.substr(0, rest.find('.'));
  absl::string_view exec = rest.substr(pid.size());
  if (absl::ConsumePrefix(&pid, "exec")) return digits(pid) && exec.empty();
  return digits(pid) && (exec.empty() || (absl::ConsumePrefix(&exec, ".exec") && digits(exec)));
}

// A regular file of ours (our uid, not a link) starting with the trace magic.
bool IsOurTraceFile(const std::string& path, struct stat* st_out) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return false;
  struct stat st;
  char magic[8];
  const bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
                  read(fd, magic, sizeof(magic)) == static_cast<ssize_t>(sizeof(magic)) &&
                  absl::string_view(magic, sizeof(magic)) == kTraceMagic;
  close(fd);
  if (ok && st_out != nullptr) *st_out = st;
  return ok;
}

// Removes what an earlier run's manifest names (and the manifest).
void RemoveEarlierTraces(const std::string& trace) {
  const std::string manifest = ManifestPath(trace);
  const int fd = open(manifest.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return;
  struct stat st;
  std::string text;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
      st.st_size < (1 << 20)) {
    char buf[8192];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) text.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  if (lines.empty() || lines[0] != kManifestMagic) return;  // not ours: left alone
  const std::string dir = fs::path(trace).parent_path().string();
  const std::string base = fs::path(trace).filename().string();
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<absl::string_view> f = absl::StrSplit(lines[i], absl::MaxSplits(' ', 2));
    uint64_t dev = 0, ino = 0;
    if (f.size() != 3 || !absl::SimpleAtoi(f[0], &dev) || !absl::SimpleAtoi(f[1], &ino) ||
        absl::StrContains(f[2], '/') || !IsTraceName(f[2], base)) {
      continue;
    }
    const std::string path = absl::StrCat(dir, "/", f[2]);
    struct stat ts;
    if (IsOurTraceFile(path, &ts) && ts.st_dev == dev && ts.st_ino == ino) unlink(path.c_str());
  }
  unlink(manifest.c_str());
}

// The trace files of this run: names the preload may use that did not exist
// before the run, regular files of ours with the trace magic.
std::vector<std::pair<std::string, struct stat>> ListNewTraces(
    const std::string& trace, const std::map<std::string, ino_t>& before) {
  std::vector<std::pair<std::string, struct stat>> out;
  const std::string dir = fs::path(trace).parent_path().string();
  const std::string base = fs::path(trace).filename().string();
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (!IsTraceName(name, base)) continue;
    struct stat st;
    if (!IsOurTraceFile(e.path().string(), &st)) continue;
    if (auto it = before.find(name); it != before.end() && it->second == st.st_ino) continue;
    out.emplace_back(name, st);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

// The names that look like this run's traces before it starts.
std::map<std::string, ino_t> TraceNamesBefore(const std::string& trace) {
  std::map<std::string, ino_t> names;
  const std::string base = fs::path(trace).filename().string();
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(fs::path(trace).parent_path(), ec)) {
    const std::string name = e.path().filename().string();
    struct stat st;
    if (IsTraceName(name, base) && lstat(e.path().c_str(), &st) == 0) names[name] = st.st_ino;
  }
  return names;
}

// Writes the manifest (a temporary file created exclusively, then renamed
// over the old name inside the directory).
void WriteTraceManifest(const std::string& trace, const std::string& run_id,
                        const std::vector<std::pair<std::string, struct stat>>& files) {
  std::string text = absl::StrCat(kManifestMagic, "\nrun ", run_id, "\n");
  for (const auto& [name, st] : files) {
    absl::StrAppend(&text, st.st_dev, " ", st.st_ino, " ", name, "\n");
  }
  const std::string manifest = ManifestPath(trace);
  const std::string tmp = absl::StrCat(manifest, ".", run_id, ".tmp");
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  bool ok = fd >= 0;
  if (ok) {
    ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    ok = close(fd) == 0 && ok;
  }
  if (ok && rename(tmp.c_str(), manifest.c_str()) == 0) return;
  if (fd >= 0) unlink(tmp.c_str());
  PrintErr(absl::StrCat(kPrefix, "warning: cannot write ", manifest, " (", strerror(errno),
                        "): the next run with --trace=", trace,
                        " will not remove this run's "
                        "traces\n"));
}

// What kind of file st is, for messages.
const char* FileKind(const struct stat& st) {
  switch (st.st_mode & S_IFMT) {
    case S_IFCHR:
      return "a character device";
    case S_IFBLK:
      return "a block device";
    case S_IFIFO:
      return "a FIFO";
    case S_IFSOCK:
      return "a socket";
    case S_IFLNK:
      return "a symbolic link";
    case S_IFDIR:
      return "a directory";
    default:
      return "not a regular file";
  }
}

// Checks --trace=FILE before the program starts: an absolute path (the
// program may change directory) to a new regular file in a writable
// directory that is not /proc, /sys or /dev; an earlier run's traces of the
// same FILE are removed through its manifest. Anything else that holds the
// name is refused, never replaced.
absl::StatusOr<std::string> PrepareTrace(const std::string& file) {
  const std::string path = AbsoluteNormal(file);
  const fs::path p(path);
  const std::string dir = p.parent_path().string();
  auto refuse = [&](absl::string_view why) {
    return absl::FailedPreconditionError(absl::StrCat("cannot write the trace ", path, ": ", why));
  };
  struct stat st;
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return refuse(absl::StrCat(dir, " is not a directory"));
  }
  std::error_code ec;
  const std::string real_dir = fs::canonical(dir, ec).string();
  struct statfs sfs;
  constexpr long kProcMagic = 0x9fa0, kSysfsMagic = 0x62656572, kDevptsMagic = 0x1cd1;
  if (statfs(dir.c_str(), &sfs) == 0 &&
      (sfs.f_type == kProcMagic || sfs.f_type == kSysfsMagic || sfs.f_type == kDevptsMagic)) {
    return refuse(absl::StrCat(dir, " is in /proc, /sys or /dev/pts, not a place for files"));
  }
  if (!ec && (real_dir == "/dev" || absl::StartsWith(real_dir, "/dev/"))) {
    return refuse(absl::StrCat(dir, " is a device directory, not a place for files"));
  }
  if (access(dir.c_str(), W_OK) != 0) return refuse(strerror(errno));
  if (lstat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    return refuse(absl::StrCat("it is ", FileKind(st), "; the trace must be a new regular file"));
  }
  RemoveEarlierTraces(path);
  if (lstat(path.c_str(), &st) == 0) {
    return refuse(
        "the file exists and is not a trace an earlier run recorded there (no manifest names "
        "it); remove it or choose another name");
  }
  return path;
}

}  // namespace

// ---------------------------------------------------------------------------
// Flag types.

bool AbslParseFlag(absl::string_view text, CheckMode* mode, std::string* error) {
  if (text == "every" || text == "exit" || text == "off") {
    mode->text = std::string(text);
    return true;
  }
  const bool digits = !text.empty() && std::all_of(text.begin(), text.end(),
                                                   [](char c) { return c >= '0' && c <= '9'; });
  uint64_t n = 0;
  if (digits && absl::SimpleAtoi(text, &n) && n > 0) {
    mode->text = absl::StrCat(n);
    return true;
  }
  *error = "expected every, exit, off or a positive number of events";
  return false;
}

std::string AbslUnparseFlag(const CheckMode& mode) { return mode.text; }

bool AbslParseFlag(absl::string_view text, YesNo* value, std::string* error) {
  if (text == "yes" || text == "true") {
    value->yes = true;
    return true;
  }
  if (text == "no" || text == "false") {
    value->yes = false;
    return true;
  }
  *error = "expected yes or no";
  return false;
}

std::string AbslUnparseFlag(const YesNo& value) { return value.yes ? "yes" : "no"; }

bool AbslParseFlag(absl::string_view text, BackendChoice* value, std::string* error) {
  if (text == "sud" || text == "wrappers" || text.empty()) {
    value->name = std::string(text);
    return true;
  }
  *error = "expected sud or wrappers";
  return false;
}

std::string AbslUnparseFlag(const BackendChoice& value) { return value.name; }

// ---------------------------------------------------------------------------

absl::StatusOr<RunOptions> ParseRunArgs(const std::vector<std::string>& args) {
  absl::StatusOr<CliArgs> parsed = ParseCliArgs("run", args, kRunFlags, Positionals::kEndOptions);
  if (!parsed.ok()) return parsed.status();
  RunOptions opt;
  if (parsed->help) {
    opt.help = true;
    return opt;
  }
  opt.program_argv = std::move(parsed->positional);
  if (opt.program_argv.empty()) {
    return absl::InvalidArgumentError(
        "no program given: vmashadow run [OPTIONS] -- PROGRAM [ARGS...]");
  }
  opt.check = absl::GetFlag(FLAGS_check).text;
  opt.strict = absl::GetFlag(FLAGS_strict);
  opt.report_dir = absl::GetFlag(FLAGS_report_dir);
  opt.follow_children = absl::GetFlag(FLAGS_follow_children).yes;
  opt.backend = absl::GetFlag(FLAGS_backend).name;
  opt.trace = absl::GetFlag(FLAGS_trace);
  opt.error_exitcode = absl::GetFlag(FLAGS_error_exitcode);
  if (opt.error_exitcode < 0 || opt.error_exitcode > 255) {
    return absl::InvalidArgumentError(absl::StrCat("bad value '", opt.error_exitcode,
                                                   "' for '--error-exitcode': expected 0 to 255"));
  }
  return opt;
}

std::string RunUsage() {
  std::string out =
      "Usage: vmashadow run [OPTIONS] [--] PROGRAM [ARGS...]\n"
      "\n"
      "Runs PROGRAM with libvmashadow.so preloaded: every mm call (mmap, munmap, mprotect,\n"
      "mremap, brk, madvise, mlock, mseal, ...) is replayed on a model of the kernel's VMA\n"
      "bookkeeping and checked against the kernel. At the end a summary of all monitored\n"
      "processes is printed on stderr, and vmashadow exits as PROGRAM did.\n"
      "\n";
  out += CliFlagsUsage(kRunFlags, FlagDefaults::kShow);
  out +=
      "\n"
      "Environment: VMASHADOW_LIB overrides where libvmashadow.so is found.\n"
      "Exit status: PROGRAM's; 2 for bad usage, 126 if PROGRAM cannot be executed,\n"
      "127 if it is not found. If PROGRAM dies of a signal, so does vmashadow.\n";
  return out;
}

int RunCommand(const std::vector<std::string>& args) {
  absl::StatusOr<RunOptions> opt = ParseRunArgs(args);
  if (!opt.ok()) return CliUsageError("run", opt.status().message());
  if (opt->help) {
    std::fputs(RunUsage().c_str(), stdout);
    return 0;
  }

  absl::StatusOr<CheckedProgram> program = CheckProgram(opt->program_argv[0], getenv("PATH"));
  if (!program.ok()) {
    PrintErr(absl::StrCat(kPrefix, program.status().message(), "\n"));
    return ExitCodeForProgramError(program.status());
  }
  for (const std::string& w : program->warnings) PrintErr(absl::StrCat(kPrefix, w, "\n"));

  absl::StatusOr<std::string> lib = FindPreloadLibrary();
  if (!lib.ok()) {
    PrintErr(absl::StrCat(kPrefix, lib.status().message(), "\n"));
    return 2;
  }
  if (!opt->trace.empty()) {
    absl::StatusOr<std::string> trace = PrepareTrace(opt->trace);
    if (!trace.ok()) {
      PrintErr(absl::StrCat(kPrefix, trace.status().message(), "\n"));
      return 2;
    }
    opt->trace = *trace;
  }
  absl::StatusOr<ReportDir> dir = PrepareReportDir(opt->report_dir);
  if (!dir.ok()) {
    PrintErr(absl::StrCat(kPrefix, dir.status().message(), "\n"));
    return 2;
  }
  const std::string run_id = NewRunId();
  const std::map<std::string, ino_t> traces_before =
      opt->trace.empty() ? std::map<std::string, ino_t>{} : TraceNamesBefore(opt->trace);
  if (absl::Status s = SetPreloadEnv(*opt, *lib, dir->path, run_id); !s.ok()) {
    PrintErr(absl::StrCat(kPrefix, s.message(), "\n"));
    RemoveDir(*dir);
    return 2;
  }

  std::fflush(stdout);
  std::fflush(stderr);
  SavedSignals saved;
  InstallSignals(&saved);
  absl::StatusOr<Started> started = StartProgram(program->path, opt->program_argv, saved);
  if (!started.ok()) {
    RestoreSignals(saved);
    PrintErr(absl::StrCat(kPrefix, "cannot start ", opt->program_argv[0], ": ",
                          started.status().message(), "\n"));
    RemoveDir(*dir);
    return 2;
  }
  const int status = WaitForChild(started->pid);
  g_child_pid = 0;
  RestoreSignals(saved);
  // Our summary on a pipe nobody reads (`2>&1 | head`) must not kill us:
  // the exit status is the program's.
  signal(SIGPIPE, SIG_IGN);

  if (!opt->trace.empty()) {
    WriteTraceManifest(opt->trace, run_id, ListNewTraces(opt->trace, traces_before));
  }

  if (started->exec_errno != 0) {
    const int err = started->exec_errno;
    PrintErr(
        absl::StrCat(kPrefix, "cannot execute ", opt->program_argv[0], ": ", strerror(err), "\n"));
    RemoveDir(*dir);
    return err == ENOENT ? 127 : 126;
  }

  const RunSummaryInput summary = CollectReports(*dir, started->pid, status, *program, run_id);
  PrintErr(FormatRunSummary(summary));
  RemoveDir(*dir);

  if (status < 0) return 2;
  if (WIFSIGNALED(status)) DieOfSignal(WTERMSIG(status));
  if (WIFEXITED(status)) {
    // --error-exitcode: anything that went wrong replaces the program's status.
    if (opt->error_exitcode != 0 && RunHadProblems(summary)) {
      PrintErr(absl::StrCat(kPrefix, "exit status ", opt->error_exitcode,
                            " (--error-exitcode) instead of the program's ", WEXITSTATUS(status),
                            "\n"));
      return opt->error_exitcode;
    }
    return WEXITSTATUS(status);
  }
  return 2;
}

}  // namespace vmashadow
