// summary.cc — formats the end-of-run paragraph of `vmashadow run` (see
// summary.h) from the reports of every monitored process.
#include "tools/summary.h"

#include <string.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "tools/report.h"

namespace vmashadow {
namespace {

constexpr absl::string_view kPrefix = "vmashadow: ";

// "1 process", "2 processes".
std::string Count(uint64_t n, absl::string_view one, absl::string_view many) {
  return absl::StrCat(n, " ", n == 1 ? one : many);
}

// A sample string on one line: control characters shown as spaces, a trailing
// newline dropped, long text cut.
std::string OneLine(absl::string_view s, size_t max_chars = 160) {
  s = absl::StripTrailingAsciiWhitespace(s);
  std::string out;
  for (char c : s.substr(0, max_chars)) {
    out += absl::ascii_iscntrl(static_cast<unsigned char>(c)) ? ' ' : c;
  }
  if (s.size() > max_chars) out += "...";
  return out;
}

// "sud" or "sud (2), wrappers (1)" when processes differ; "unknown" if none.
std::string Distinct(const std::map<std::string, int>& values) {
  if (values.empty()) return "unknown";
  if (values.size() == 1) return values.begin()->first.empty() ? "unknown" : values.begin()->first;
  std::vector<std::string> parts;
  for (const auto& [v, n] : values) {
    parts.push_back(absl::StrCat(v.empty() ? "unknown" : v, " (", n, ")"));
  }
  return absl::StrJoin(parts, ", ");
}

struct Totals {
  uint64_t events = 0;
  std::map<std::string, uint64_t> by_call;
  uint64_t trapped = 0, checks = 0, range_checks = 0, divergences = 0, resyncs = 0;
  uint64_t unexplained = 0, placement_predicted = 0, placement_hit = 0;
  uint64_t errno_predicted = 0, errno_hit = 0, results = 0, results_hit = 0, passthrough = 0;
  uint64_t pagetable_processes = 0, pagetable_checks = 0, pagetable_hits = 0;
  uint64_t counter_checks = 0, counter_hits = 0, vmflags_checks = 0, vmflags_hits = 0;

  void Add(const ProcessReport& r) {
    if (r.pagetables) ++pagetable_processes;
    pagetable_checks += r.pagetable_checks;
    pagetable_hits += r.pagetable_hits;
    counter_checks += r.counter_checks;
    counter_hits += r.counter_hits;
    vmflags_checks += r.vmflags_checks;
    vmflags_hits += r.vmflags_hits;
    events += r.events;
    for (const auto& [call, n] : r.events_by_call) by_call[call] += n;
    trapped += r.trapped;
    checks += r.checks;
    range_checks += r.range_checks;
    divergences += r.divergences;
    resyncs += r.resyncs;
    unexplained += r.unexplained;
    placement_predicted += r.placement_predicted;
    placement_hit += r.placement_hit;
    errno_predicted += r.errno_predicted;
    errno_hit += r.errno_hit;
    results += r.results;
    results_hit += r.results_hit;
    passthrough += r.passthrough;
  }

  // "mmap 10, munmap 3": the non-zero calls, the contract's calls first.
  std::string CallList() const {
    std::vector<std::string> parts;
    for (absl::string_view call : kReportCalls) {
      auto it = by_call.find(std::string(call));
      if (it != by_call.end() && it->second != 0)
        parts.push_back(absl::StrCat(call, " ", it->second));
    }
    for (const auto& [call, n] : by_call) {
      const bool known = std::find(std::begin(kReportCalls), std::end(kReportCalls), call) !=
                         std::end(kReportCalls);
      if (!known && n != 0) parts.push_back(absl::StrCat(call, " ", n));
    }
    return parts.empty() ? "no mm call seen" : absl::StrJoin(parts, ", ");
  }
};

// "pid 1234 [sh -c exit 7]".
std::string Who(const ProcessReport& r) {
  if (r.argv.empty()) return absl::StrCat("pid ", r.pid);
  return absl::StrCat("pid ", r.pid, " [", ShortCommandLine(r.argv), "]");
}

// The root process's final report: pid == root_pid and not an execve hand-over.
// Prefers a complete one and the final "<pid>.json" file (listed last).
const ProcessReport* FindRoot(const std::vector<LoadedReport>& reports, uint64_t root_pid) {
  const ProcessReport* best = nullptr;
  for (const LoadedReport& lr : reports) {
    if (!lr.report.ok()) continue;
    const ProcessReport& r = *lr.report;
    if (r.pid != root_pid || r.exit_reason == "execve") continue;
    if (best == nullptr || r.complete || !best->complete) best = &r;
  }
  return best;
}

// "; root: VmPTE 152 kB (32 PTE, 4 PMD, 2 PUD tables)" from the root's
// report, when it has one.
std::string PageTableLine(const RunSummaryInput& in) {
  const ProcessReport* root = FindRoot(in.reports, in.root_pid);
  if (root == nullptr || !root->pagetables) return "";
  std::string line =
      absl::StrCat("; root process: VmPTE ", root->vmpte_kb, " kB (", root->pte_tables, " PTE, ",
                   root->pmd_tables, " PMD, ", root->pud_tables, " PUD tables");
  if (root->unlocated_tables != 0) {
    absl::StrAppend(&line, ", ", root->unlocated_tables, " of them unlocated");
  }
  return line + ")";
}

std::string RootLine(const RunSummaryInput& in) {
  std::string line = absl::StrCat(kPrefix, "root process ", in.root_pid);
  if (!in.program_end.empty()) absl::StrAppend(&line, " ", in.program_end);
  const ProcessReport* root = FindRoot(in.reports, in.root_pid);
  if (root == nullptr) {
    absl::StrAppend(&line, "; final map count unknown (no report from pid ", in.root_pid,
                    " after its last execve)");
  } else if (root->complete) {
    absl::StrAppend(&line, "; final map count ", root->final_map_count);
  } else if (root->final_map_count != 0) {
    absl::StrAppend(&line, "; final map count ", root->final_map_count, " (report incomplete)");
  } else {
    absl::StrAppend(&line, "; final map count unknown (report incomplete)");
  }
  return line + "\n";
}

// "ENOSPC (No space left on device)" for a report_error of "-28".
std::string ErrnoText(absl::string_view minus_errno) {
  int e = 0;
  if (!absl::SimpleAtoi(minus_errno, &e) || e >= 0) return std::string(minus_errno);
  const char* name = strerrorname_np(-e);
  return absl::StrCat(name != nullptr ? name : absl::StrCat("errno ", -e), " (", strerror(-e), ")");
}

// The lines about one report that needs attention (none when all is well).
std::vector<std::string> ProblemLines(const LoadedReport& lr, const RunSummaryInput& in) {
  std::vector<std::string> lines;
  if (!lr.report.ok()) {
    lines.push_back(
        absl::StrCat(kPrefix, lr.report.status().message(), " (counted as incomplete)"));
    return lines;
  }
  const ProcessReport& r = *lr.report;
  if (!r.report_error.empty()) {
    lines.push_back(absl::StrCat(kPrefix, Who(r),
                                 ": its report could not be written: ", ErrnoText(r.report_error),
                                 "; only a short report saying so is left"));
  } else if (!r.complete) {
    const bool by_signal = absl::StartsWith(r.exit_reason, "signal");
    // The launcher knows how the root process ended: a placeholder left by
    // a root process that exited is a report that was lost.
    const bool root_exited = r.pid == in.root_pid && absl::StartsWith(in.program_end, "exited");
    lines.push_back(absl::StrCat(
        kPrefix, Who(r), ": report incomplete (exit_reason \"", OneLine(r.exit_reason, 40), "\"; ",
        by_signal     ? "written while dying of the signal"
        : root_exited ? "only the start-up placeholder: the process exited but its final "
                        "report was not written"
                      : "only the start-up placeholder: its final report was not written "
                        "(killed by SIGKILL, still running, or the write failed)",
        ")"));
  }
  if (!r.missing_keys.empty() && r.report_error.empty()) {
    lines.push_back(absl::StrCat(kPrefix, Who(r), ": report ",
                                 std::filesystem::path(lr.path).filename().string(), " lacks ",
                                 absl::StrJoin(r.missing_keys, ", "), " (counted as incomplete)"));
  }
  if (!r.trace_stopped.empty()) {
    lines.push_back(absl::StrCat(kPrefix, Who(r),
                                 ": its trace stopped early: ", OneLine(r.trace_stopped),
                                 " (the trace holds only what came before)"));
  }
  if (r.divergences != 0) {
    std::string line =
        absl::StrCat(kPrefix, Who(r), ": ", Count(r.divergences, "divergence", "divergences"));
    if (r.unexplained != 0) absl::StrAppend(&line, ", ", r.unexplained, " unexplained");
    if (!r.divergence_samples.empty()) {
      const DivergenceSample& d = r.divergence_samples.front();
      absl::StrAppend(&line, "; first at event ", d.event, ": ", OneLine(d.call), ": ",
                      OneLine(d.what));
      lines.push_back(line);
      lines.push_back(absl::StrCat(kPrefix, "    model:  ", OneLine(d.model)));
      lines.push_back(absl::StrCat(kPrefix, "    kernel: ", OneLine(d.kernel)));
    } else {
      lines.push_back(line);
    }
  }
  return lines;
}

std::string NoReport(const RunSummaryInput& in) {
  std::string out =
      absl::StrCat(kPrefix, "no process was monitored: no report was written",
                   in.report_dir_kept ? absl::StrCat(" to ", in.report_dir) : "", "\n");
  if (!in.program_end.empty()) {
    absl::StrAppend(&out, kPrefix, "root process ", in.root_pid, " ", in.program_end, "\n");
  }
  for (const std::string& hint : in.no_report_hints) {
    absl::StrAppend(&out, kPrefix, "likely reason: ", hint, "\n");
  }
  absl::StrAppend(&out, kPrefix,
                  "(the dynamic loader ignores LD_PRELOAD for set-user-ID, set-group-ID and "
                  "file-capability programs; a program may also have removed LD_PRELOAD or "
                  "VMASHADOW_* from its environment, exec'd a static binary, or been killed "
                  "before the preload started)\n");
  return out;
}

}  // namespace

std::string ShortCommandLine(const std::vector<std::string>& argv, size_t max_chars) {
  std::string s = OneLine(absl::StrJoin(argv, " "), max_chars);
  return s;
}

std::string FormatRunSummary(const RunSummaryInput& in) {
  if (in.reports.empty()) return NoReport(in);

  std::set<uint64_t> pids;
  int incomplete = 0;
  Totals t;
  std::map<std::string, int> backends;
  std::map<std::string, int> checks;
  for (const LoadedReport& lr : in.reports) {
    if (!lr.report.ok()) {
      ++incomplete;
      pids.insert(PidFromReportName(std::filesystem::path(lr.path).filename().string()));
      continue;
    }
    const ProcessReport& r = *lr.report;
    pids.insert(r.pid);
    if (!r.IsComplete()) ++incomplete;
    t.Add(r);
    ++backends[r.backend];
    ++checks[r.check];
  }

  std::string out;
  absl::StrAppend(&out, kPrefix, Count(pids.size(), "process", "processes"), " monitored (",
                  Count(in.reports.size(), "report", "reports"), ", ", incomplete,
                  " incomplete); backend ", Distinct(backends), "; check ", Distinct(checks), "\n");
  absl::StrAppend(&out, kPrefix, Count(t.events, "event", "events"), ": ", t.CallList(), "\n");
  absl::StrAppend(&out, kPrefix, t.trapped, " trapped; ", Count(t.checks, "check", "checks"), " (",
                  t.range_checks, " range); ", Count(t.divergences, "divergence", "divergences"),
                  " (", t.resyncs, " resyncs); ", t.unexplained, " unexplained\n");
  absl::StrAppend(&out, kPrefix, "placement hit ", t.placement_hit, "/", t.placement_predicted,
                  " predicted; errno hit ", t.errno_hit, "/", t.errno_predicted, "; results hit ",
                  t.results_hit, "/", t.results, "; ", t.passthrough, " passthrough\n");
  if (t.pagetable_processes != 0) {
    absl::StrAppend(&out, kPrefix, "page tables: VmPTE hit ", t.pagetable_hits, "/",
                    t.pagetable_checks, "; VmSize..VmLib hit ", t.counter_hits, "/",
                    t.counter_checks, "; VmFlags hit ", t.vmflags_hits, "/", t.vmflags_checks,
                    " VMAs", PageTableLine(in), "\n");
  }
  out += RootLine(in);

  int shown = 0;
  int hidden = 0;
  for (const LoadedReport& lr : in.reports) {
    std::vector<std::string> lines = ProblemLines(lr, in);
    if (lines.empty()) continue;
    if (shown >= kMaxProcessLines) {
      ++hidden;
      continue;
    }
    ++shown;
    for (const std::string& line : lines) absl::StrAppend(&out, line, "\n");
  }
  if (hidden != 0) {
    absl::StrAppend(&out, kPrefix, "... and ", Count(hidden, "more report", "more reports"),
                    " with problems", in.report_dir_kept ? "" : " (keep them with --report-dir)",
                    "\n");
  }
  if (in.report_dir_kept) absl::StrAppend(&out, kPrefix, "reports in ", in.report_dir, "\n");
  return out;
}

}  // namespace vmashadow
