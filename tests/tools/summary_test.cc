// summary_test.cc — tests of tools/summary: the paragraph `vmashadow run`
// prints, from fake reports (so it is tested whatever the preload writes):
// totals over processes, non-zero calls only, the root's final map count (and
// "unknown" without a root report), incomplete and malformed reports counted
// and named, divergence lines, the no-report explanation.
#include "tools/summary.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tools/report.h"

namespace vmashadow {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

ProcessReport Report(uint64_t pid, std::vector<std::pair<std::string, uint64_t>> calls) {
  ProcessReport r;
  r.pid = pid;
  r.parent_pid = 1;
  r.argv = {"prog", "arg"};
  r.backend = "sud";
  r.check = "every";
  r.events_by_call = std::move(calls);
  for (const auto& [name, n] : r.events_by_call) r.events += n;
  r.exit_reason = "exit_group";
  r.complete = true;
  return r;
}

LoadedReport Loaded(ProcessReport r, std::string name = "") {
  if (name.empty()) name = absl::StrCat(r.pid, ".json");
  return {"/d/" + name, std::move(r)};
}

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

TEST(FormatRunSummaryTest, EveryLineStartsWithThePrefix) {
  RunSummaryInput in;
  in.root_pid = 10;
  in.reports.push_back(Loaded(Report(10, {{"mmap", 4}})));
  const std::string text = FormatRunSummary(in);
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  for (const std::string& line : Lines(text)) EXPECT_THAT(line, StartsWith("vmashadow: "));
}

TEST(FormatRunSummaryTest, TotalsOverProcesses) {
  RunSummaryInput in;
  in.root_pid = 10;
  in.program_end = "exited with status 3";
  ProcessReport a = Report(10, {{"mmap", 4}, {"munmap", 0}, {"brk", 2}, {"mseal", 0}});
  a.trapped = 5;
  a.checks = 3;
  a.range_checks = 2;
  a.placement_predicted = 4;
  a.placement_hit = 4;
  a.errno_predicted = 1;
  a.errno_hit = 0;
  a.results = 6;
  a.results_hit = 5;
  a.final_map_count = 31;
  ProcessReport b = Report(11, {{"mmap", 1}, {"munmap", 7}, {"brk", 0}, {"newcall", 2}});
  b.trapped = 10;
  b.checks = 1;
  b.unexplained = 2;
  b.placement_predicted = 1;
  b.errno_predicted = 2;
  b.errno_hit = 2;
  b.passthrough = 4;
  b.final_map_count = 99;
  in.reports = {Loaded(a), Loaded(b)};
  const std::vector<std::string> lines = Lines(FormatRunSummary(in));
  ASSERT_GE(lines.size(), 5u);
  EXPECT_EQ(lines[0],
            "vmashadow: 2 processes monitored (2 reports, 0 incomplete); backend sud; check every");
  EXPECT_EQ(lines[1], "vmashadow: 16 events: mmap 5, munmap 7, brk 2, newcall 2");
  EXPECT_EQ(lines[2],
            "vmashadow: 15 trapped; 4 checks (2 range); 0 divergences (0 resyncs); 2 unexplained");
  EXPECT_EQ(lines[3],
            "vmashadow: placement hit 4/5 predicted; errno hit 2/3; results hit 5/6; "
            "4 passthrough");
  EXPECT_EQ(lines[4], "vmashadow: root process 10 exited with status 3; final map count 31");
  EXPECT_EQ(lines.size(), 5u) << "no problem lines expected";
}

TEST(FormatRunSummaryTest, PageTableLineSumsChecksAndNamesTheRootsTables) {
  RunSummaryInput in;
  in.root_pid = 10;
  ProcessReport root = Report(10, {{"mmap", 4}});
  root.pagetables = true;
  root.pagetable_checks = 5;
  root.pagetable_hits = 4;
  root.counter_checks = 5;
  root.counter_hits = 5;
  root.vmflags_checks = 100;
  root.vmflags_hits = 99;
  root.vmpte_kb = 152;
  root.pte_tables = 30;
  root.pmd_tables = 5;
  root.pud_tables = 3;
  root.unlocated_tables = 2;
  ProcessReport child = Report(11, {{"mmap", 1}});
  child.pagetables = true;
  child.pagetable_checks = 1;
  child.pagetable_hits = 1;
  child.counter_checks = 1;
  child.counter_hits = 1;
  child.vmflags_checks = 20;
  child.vmflags_hits = 20;
  in.reports.push_back(Loaded(root));
  in.reports.push_back(Loaded(child));
  EXPECT_THAT(FormatRunSummary(in),
              HasSubstr("vmashadow: page tables: VmPTE hit 5/6; VmSize..VmLib hit 6/6; VmFlags "
                        "hit 119/120 VMAs; root process: VmPTE 152 kB (30 PTE, 5 PMD, 3 PUD "
                        "tables, 2 of them unlocated)\n"));
  // Without page tables (--check=off) there is no such line.
  RunSummaryInput off;
  off.root_pid = 10;
  off.reports.push_back(Loaded(Report(10, {{"mmap", 4}})));
  EXPECT_THAT(FormatRunSummary(off), Not(HasSubstr("page tables")));
}

TEST(FormatRunSummaryTest, NoCallsSeen) {
  RunSummaryInput in;
  in.root_pid = 10;
  in.reports.push_back(Loaded(Report(10, {{"mmap", 0}})));
  EXPECT_THAT(FormatRunSummary(in), HasSubstr("vmashadow: 0 events: no mm call seen\n"));
}

TEST(FormatRunSummaryTest, ExecChainCountsOneProcessAndTheRootIsTheLastImage) {
  RunSummaryInput in;
  in.root_pid = 10;
  ProcessReport before = Report(10, {{"brk", 2}});
  before.exit_reason = "execve";
  before.final_map_count = 5;
  ProcessReport after = Report(10, {{"mmap", 3}});
  after.final_map_count = 40;
  in.reports = {Loaded(before, "10.exec1.json"), Loaded(after)};
  const std::string text = FormatRunSummary(in);
  EXPECT_THAT(text, HasSubstr("vmashadow: 1 process monitored (2 reports, 0 incomplete)"));
  EXPECT_THAT(text, HasSubstr("final map count 40\n"));
}

TEST(FormatRunSummaryTest, RootOnlyBeforeExecveMeansUnknownMapCount) {
  RunSummaryInput in;
  in.root_pid = 10;
  ProcessReport before = Report(10, {{"brk", 2}});
  before.exit_reason = "execve";
  before.final_map_count = 5;
  in.reports = {Loaded(before, "10.exec1.json"), Loaded(Report(12, {}))};
  EXPECT_THAT(FormatRunSummary(in),
              HasSubstr("final map count unknown (no report from pid 10 after its last execve)"));
}

TEST(FormatRunSummaryTest, IncompleteRootReport) {
  RunSummaryInput in;
  in.root_pid = 10;
  ProcessReport r = Report(10, {});
  r.complete = false;
  r.exit_reason = "signal 11";
  r.final_map_count = 33;
  in.reports = {Loaded(r)};
  const std::string text = FormatRunSummary(in);
  EXPECT_THAT(text, HasSubstr("(1 report, 1 incomplete)"));
  EXPECT_THAT(text, HasSubstr("final map count 33 (report incomplete)"));
  EXPECT_THAT(text, HasSubstr("vmashadow: pid 10 [prog arg]: report incomplete (exit_reason "
                              "\"signal 11\"; written while dying of the signal)"));
  r.final_map_count = 0;
  r.exit_reason = "";
  in.reports = {Loaded(r)};
  EXPECT_THAT(FormatRunSummary(in), AllOf(HasSubstr("final map count unknown (report incomplete)"),
                                          HasSubstr("only the start-up placeholder")));
}

TEST(FormatRunSummaryTest, LostReportsAreSaidPlainly) {
  RunSummaryInput in;
  in.root_pid = 10;
  in.program_end = "exited with status 0";
  ProcessReport root = Report(10, {});
  root.complete = false;
  root.exit_reason = "running";
  ProcessReport child = Report(11, {});
  child.complete = false;
  child.exit_reason = "running";
  ProcessReport short_one = Report(12, {});
  short_one.complete = false;
  short_one.exit_reason = "exit";
  short_one.report_error = "-28";
  short_one.missing_keys = {"argv"};
  ProcessReport traced = Report(13, {});
  traced.trace_stopped = "the program closed the trace file's descriptor (-9)";
  in.reports = {Loaded(root), Loaded(child), Loaded(short_one), Loaded(traced)};
  const std::string text = FormatRunSummary(in);
  EXPECT_THAT(text, HasSubstr("pid 10 [prog arg]: report incomplete (exit_reason \"running\"; "
                              "only the start-up placeholder: the process exited but its final "
                              "report was not written)"));
  EXPECT_THAT(text, HasSubstr("pid 11 [prog arg]: report incomplete (exit_reason \"running\"; "
                              "only the start-up placeholder: its final report was not written "
                              "(killed by SIGKILL, still running, or the write failed))"));
  EXPECT_THAT(text, HasSubstr("pid 12 [prog arg]: its report could not be written: ENOSPC (No "
                              "space left on device); only a short report saying so is left"));
  EXPECT_THAT(text, Not(HasSubstr("lacks argv")));
  EXPECT_THAT(text, HasSubstr("pid 13 [prog arg]: its trace stopped early: the program closed the "
                              "trace file's descriptor (-9)"));
  EXPECT_THAT(text, Not(HasSubstr("still running\n")));
}

TEST(FormatRunSummaryTest, MalformedAndKeyLackingReportsCountAsIncomplete) {
  RunSummaryInput in;
  in.root_pid = 10;
  ProcessReport lacking = Report(11, {{"mmap", 1}});
  lacking.missing_keys = {"trapped", "final_map_count"};
  in.reports = {
      Loaded(Report(10, {{"mmap", 2}})),
      Loaded(lacking),
      {"/d/12.json",
       absl::InvalidArgumentError("/d/12.json: malformed report: line 3: unexpected end of "
                                  "input (truncated file?)")},
  };
  const std::string text = FormatRunSummary(in);
  EXPECT_THAT(text, HasSubstr("vmashadow: 3 processes monitored (3 reports, 2 incomplete)"));
  EXPECT_THAT(text, HasSubstr("vmashadow: 3 events: mmap 3\n"));
  EXPECT_THAT(text, HasSubstr("vmashadow: /d/12.json: malformed report: line 3: unexpected end of "
                              "input (truncated file?) (counted as incomplete)\n"));
  EXPECT_THAT(text, HasSubstr("vmashadow: pid 11 [prog arg]: report 11.json lacks trapped, "
                              "final_map_count (counted as incomplete)\n"));
}

TEST(FormatRunSummaryTest, OnlyMalformedReports) {
  RunSummaryInput in;
  in.root_pid = 10;
  in.reports = {{"/d/10.json", absl::InvalidArgumentError("/d/10.json: malformed report: x")}};
  const std::string text = FormatRunSummary(in);
  EXPECT_THAT(text, HasSubstr("vmashadow: 1 process monitored (1 report, 1 incomplete); "
                              "backend unknown; check unknown"));
  EXPECT_THAT(text, HasSubstr("final map count unknown"));
}

TEST(FormatRunSummaryTest, MixedBackendsAndChecksAreCounted) {
  RunSummaryInput in;
  in.root_pid = 10;
  ProcessReport a = Report(10, {});
  ProcessReport b = Report(11, {});
  b.backend = "wrappers";
  b.check = "7";
  ProcessReport c = Report(12, {});
  in.reports = {Loaded(a), Loaded(b), Loaded(c)};
  EXPECT_THAT(FormatRunSummary(in),
              HasSubstr("; backend sud (2), wrappers (1); check 7 (1), every (2)\n"));
}

TEST(FormatRunSummaryTest, DivergenceLinesShowTheFirstSample) {
  RunSummaryInput in;
  in.root_pid = 10;
  ProcessReport r = Report(11, {{"mmap", 20}});
  r.argv = {"python3", "-c", "import mmap\nprint(1)"};
  r.divergences = 2;
  r.resyncs = 2;
  r.unexplained = 1;
  r.divergence_samples = {
      {17, "mmap(0x0, 0x1000, ...)", "maps line 12", "7f00-7f01 rw-p\n", "7f00-7f02 rw-p\n"},
      {30, "munmap(...)", "map count", "3", "4"}};
  in.reports = {Loaded(Report(10, {})), Loaded(r)};
  const std::string text = FormatRunSummary(in);
  EXPECT_THAT(text, HasSubstr("2 divergences (2 resyncs)"));
  EXPECT_THAT(text, HasSubstr("vmashadow: pid 11 [python3 -c import mmap print(1)]: "
                              "2 divergences, 1 unexplained; first at event 17: "
                              "mmap(0x0, 0x1000, ...): maps line 12\n"
                              "vmashadow:     model:  7f00-7f01 rw-p\n"
                              "vmashadow:     kernel: 7f00-7f02 rw-p\n"));
  EXPECT_THAT(text, Not(HasSubstr("munmap(...)")));
  EXPECT_THAT(text, Not(HasSubstr("pid 10 [")));
}

TEST(FormatRunSummaryTest, ProblemLinesAreCapped) {
  RunSummaryInput in;
  in.root_pid = 1;
  for (int i = 0; i < kMaxProcessLines + 5; ++i) {
    ProcessReport r = Report(100 + i, {});
    r.divergences = 1;
    in.reports.push_back(Loaded(r));
  }
  const std::string text = FormatRunSummary(in);
  EXPECT_THAT(text, HasSubstr(absl::StrCat("pid ", 100 + kMaxProcessLines - 1, " [")));
  EXPECT_THAT(text, Not(HasSubstr(absl::StrCat("pid ", 100 + kMaxProcessLines, " ["))));
  EXPECT_THAT(text, HasSubstr("vmashadow: ... and 5 more reports with problems (keep them with "
                              "--report-dir)\n"));
  in.report_dir_kept = true;
  in.report_dir = "/keep";
  EXPECT_THAT(FormatRunSummary(in), AllOf(HasSubstr("5 more reports with problems\n"),
                                          HasSubstr("vmashadow: reports in /keep\n")));
}

TEST(FormatRunSummaryTest, NoReportExplainsWhy) {
  RunSummaryInput in;
  in.root_pid = 42;
  in.program_end = "exited with status 0";
  in.report_dir = "/tmp/vmashadow.x";
  in.no_report_hints = {"/usr/bin/passwd is set-user-ID (owner uid 0) (AT_SECURE)"};
  const std::string text = FormatRunSummary(in);
  const std::vector<std::string> lines = Lines(text);
  ASSERT_GE(lines.size(), 3u);
  EXPECT_EQ(lines[0], "vmashadow: no process was monitored: no report was written");
  EXPECT_EQ(lines[1], "vmashadow: root process 42 exited with status 0");
  EXPECT_EQ(lines[2],
            "vmashadow: likely reason: /usr/bin/passwd is set-user-ID (owner uid 0) (AT_SECURE)");
  EXPECT_THAT(text, HasSubstr("set-user-ID, set-group-ID and file-capability programs"));
  for (const std::string& line : lines) EXPECT_THAT(line, StartsWith("vmashadow: "));
  in.report_dir_kept = true;
  EXPECT_THAT(FormatRunSummary(in), HasSubstr("no report was written to /tmp/vmashadow.x\n"));
}

TEST(ShortCommandLineTest, JoinsAndCuts) {
  EXPECT_EQ(ShortCommandLine({"a", "b c"}), "a b c");
  EXPECT_EQ(ShortCommandLine({"x\ty"}), "x y");
  EXPECT_EQ(ShortCommandLine({std::string(100, 'a')}, 10), "aaaaaaaaaa...");
  EXPECT_EQ(ShortCommandLine({}), "");
}

}  // namespace
}  // namespace vmashadow
