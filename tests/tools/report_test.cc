// report_test.cc — tests of tools/report: reading the preload's JSON reports.
// A well-formed report fills every field; every truncation of it, malformed
// JSON and wrongly typed values are errors that name the file (never a crash
// or an exception); missing keys are listed; unknown keys are ignored; report
// files are listed and ordered as the contract names them.
#include "tools/report.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace vmashadow {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A report as the contract shows it (every key, samples included).
constexpr char kGoodReport[] = R"json({
  "pid": 1234, "parent_pid": 1200,
  "argv": ["python3", "-c", "print(\"hi\")"],
  "kernel": "6.18.44-fc", "kernel_profile": "6.18-fc",
  "backend": "sud", "check": "7",
  "events": 15,
  "events_by_call": {"mmap": 10, "munmap": 3, "mprotect": 0, "pkey_mprotect": 0, "mremap": 0,
                     "madvise": 0, "brk": 2, "mlock": 0, "mlock2": 0, "munlock": 0,
                     "mlockall": 0, "munlockall": 0, "mseal": 0, "process_madvise": 0,
                     "shmat": 0, "shmdt": 0, "remap_file_pages": 0},
  "trapped": 14,
  "checks": 5, "range_checks": 4,
  "divergences": 1,
  "divergence_samples": [ {"event": 17, "call": "mmap(0x0, 0x1000, ...)", "what": "maps line 12",
                           "model": "7f00-7f01 rw-p", "kernel": "7f00-7f02 rw-p\n"} ],
  "resyncs": 1,
  "unexplained": 2,
  "unexplained_samples": [ {"event": 40, "what": "stack growth 0x7ffd-0x7ffe"},
                           {"event": 41, "what": "vdso"} ],
  "placement_predicted": 9, "placement_hit": 8,
  "errno_predicted": 2, "errno_hit": 2,
  "results": 15, "results_hit": 14,
  "passthrough": 3,
  "final_map_count": 57,
  "exit_reason": "exit_group",
  "complete": true
})json";

TEST(ParseReportTest, WellFormedReportFillsEveryField) {
  absl::StatusOr<ProcessReport> r = ParseReport(kGoodReport, "1234.json");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->pid, 1234u);
  EXPECT_EQ(r->parent_pid, 1200u);
  EXPECT_THAT(r->argv, ElementsAre("python3", "-c", "print(\"hi\")"));
  EXPECT_EQ(r->kernel, "6.18.44-fc");
  EXPECT_EQ(r->kernel_profile, "6.18-fc");
  EXPECT_EQ(r->backend, "sud");
  EXPECT_EQ(r->check, "7");
  EXPECT_EQ(r->events, 15u);
  EXPECT_EQ(r->events_by_call.size(), 17u);
  EXPECT_EQ(r->events_by_call.front().first, "mmap");
  EXPECT_EQ(r->EventsFor("mmap"), 10u);
  EXPECT_EQ(r->EventsFor("munmap"), 3u);
  EXPECT_EQ(r->EventsFor("brk"), 2u);
  EXPECT_EQ(r->EventsFor("mseal"), 0u);
  EXPECT_EQ(r->EventsFor("no_such_call"), 0u);
  EXPECT_EQ(r->trapped, 14u);
  EXPECT_EQ(r->checks, 5u);
  EXPECT_EQ(r->range_checks, 4u);
  EXPECT_EQ(r->divergences, 1u);
  ASSERT_EQ(r->divergence_samples.size(), 1u);
  EXPECT_EQ(r->divergence_samples[0].event, 17u);
  EXPECT_EQ(r->divergence_samples[0].call, "mmap(0x0, 0x1000, ...)");
  EXPECT_EQ(r->divergence_samples[0].what, "maps line 12");
  EXPECT_EQ(r->divergence_samples[0].model, "7f00-7f01 rw-p");
  EXPECT_EQ(r->divergence_samples[0].kernel, "7f00-7f02 rw-p\n");
  EXPECT_EQ(r->resyncs, 1u);
  EXPECT_EQ(r->unexplained, 2u);
  ASSERT_EQ(r->unexplained_samples.size(), 2u);
  EXPECT_EQ(r->unexplained_samples[1].event, 41u);
  EXPECT_EQ(r->unexplained_samples[1].what, "vdso");
  EXPECT_EQ(r->placement_predicted, 9u);
  EXPECT_EQ(r->placement_hit, 8u);
  EXPECT_EQ(r->errno_predicted, 2u);
  EXPECT_EQ(r->errno_hit, 2u);
  EXPECT_EQ(r->results, 15u);
  EXPECT_EQ(r->results_hit, 14u);
  EXPECT_EQ(r->passthrough, 3u);
  EXPECT_EQ(r->final_map_count, 57u);
  EXPECT_EQ(r->exit_reason, "exit_group");
  EXPECT_TRUE(r->complete);
  EXPECT_TRUE(r->missing_keys.empty());
  EXPECT_TRUE(r->IsComplete());
}

TEST(ParseReportTest, PageTableKeysAreOptionalAndRead) {
  absl::StatusOr<ProcessReport> plain = ParseReport(kGoodReport, "x");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_FALSE(plain->pagetables);
  EXPECT_EQ(plain->pagetable_checks, 0u);
  const std::string text = absl::StrReplaceAll(
      kGoodReport,
      {{"\"complete\": true",
        "\"complete\": true, \"pagetables\": true, \"pagetable_checks\": 7, "
        "\"pagetable_hits\": 6, \"counter_checks\": 7, \"counter_hits\": 7, "
        "\"vmflags_checks\": 300, \"vmflags_hits\": 299, \"page_tables\": {\"pte\": 31, "
        "\"pmd\": 5, \"pud\": 3, \"deposited\": 0, \"unlocated\": 1, \"vmpte_kb\": 156}"}});
  absl::StatusOr<ProcessReport> r = ParseReport(text, "x");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->pagetables);
  EXPECT_EQ(r->pagetable_checks, 7u);
  EXPECT_EQ(r->pagetable_hits, 6u);
  EXPECT_EQ(r->counter_hits, 7u);
  EXPECT_EQ(r->vmflags_checks, 300u);
  EXPECT_EQ(r->vmflags_hits, 299u);
  EXPECT_EQ(r->pte_tables, 31u);
  EXPECT_EQ(r->pmd_tables, 5u);
  EXPECT_EQ(r->pud_tables, 3u);
  EXPECT_EQ(r->unlocated_tables, 1u);
  EXPECT_EQ(r->vmpte_kb, 156u);
  EXPECT_TRUE(r->missing_keys.empty());
  // A bad value is an error, as for the required keys.
  const std::string bad =
      absl::StrReplaceAll(text, {{"\"pagetable_checks\": 7", "\"pagetable_checks\": -1"}});
  EXPECT_FALSE(ParseReport(bad, "x").ok());
}

TEST(ParseReportTest, CompleteFalseIsNotComplete) {
  const std::string text =
      absl::StrReplaceAll(kGoodReport, {{"\"complete\": true", "\"complete\": false"}});
  absl::StatusOr<ProcessReport> r = ParseReport(text, "x");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->complete);
  EXPECT_FALSE(r->IsComplete());
}

TEST(ParseReportTest, LargeCountsAndEmptyArrays) {
  absl::StatusOr<ProcessReport> r = ParseReport(
      R"({"pid": 7, "events": 18446744073709551615, "argv": [], "divergence_samples": [],
          "events_by_call": {}, "unexplained_samples": []})",
      "x");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->events, 18446744073709551615u);
  EXPECT_TRUE(r->argv.empty());
  EXPECT_TRUE(r->events_by_call.empty());
}

// Every proper prefix of a good report (a file cut short anywhere) is an error
// naming the file; none throws or crashes.
TEST(ParseReportTest, EveryTruncationIsAnErrorNamingTheFile) {
  const std::string good = kGoodReport;
  for (size_t n = 0; n < good.size(); ++n) {
    // A cut that only drops trailing white space is still the whole report.
    if (good.find_first_not_of(" \n", n) == std::string::npos) continue;
    absl::StatusOr<ProcessReport> r = ParseReport(good.substr(0, n), "/reports/1234.json");
    ASSERT_FALSE(r.ok()) << "prefix of " << n << " bytes parsed";
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr("/reports/1234.json: malformed report"))
        << "prefix of " << n << " bytes";
    if (n > 0) {
      EXPECT_THAT(r.status().message(), HasSubstr("truncated?")) << "prefix of " << n << " bytes";
    }
  }
}

TEST(ParseReportTest, TruncatedFileSaysSo) {
  const std::string good = kGoodReport;
  absl::StatusOr<ProcessReport> r = ParseReport(good.substr(0, good.size() / 2), "f.json");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("(the file ends early: truncated?)"));
  EXPECT_THAT(r.status().message(), HasSubstr("line "));
}

TEST(ParseReportTest, MalformedJsonIsAnError) {
  const char* const kBad[] = {
      "",
      "   \n",
      "not json",
      "{pid: 1}",
      "{\"pid\": 1,}",
      "{\"pid\": 1} trailing",
      "{\"pid\": 1 \"events\": 2}",
      "{\"pid\": \"unterminated}",
      "[1, 2, 3]",
      "42",
      "\"a string\"",
      "{\"pid\": 1, \"argv\": [\"a\", }",
      "\x7f"
      "ELF\x02\x01\x01",
  };
  for (const char* text : kBad) {
    absl::StatusOr<ProcessReport> r = ParseReport(text, "bad.json");
    ASSERT_FALSE(r.ok()) << "parsed: " << text;
    EXPECT_THAT(r.status().message(), HasSubstr("bad.json: malformed report")) << text;
    const bool cut = std::string(text).find("[\"a\", }") != std::string::npos ||
                     std::string(text).find("unterminated") != std::string::npos;
    EXPECT_EQ(r.status().message().find("truncated?") != absl::string_view::npos, cut) << text;
  }
}

TEST(ParseReportTest, WrongTypesAreErrorsNamingTheKey) {
  struct Case {
    const char* text;
    const char* key;
  };
  const Case kCases[] = {
      {R"({"pid": -1})", "\"pid\""},
      {R"({"pid": 1.5})", "\"pid\""},
      {R"({"pid": "12a"})", "\"pid\""},
      {R"({"pid": 99999999999999999999999})", "\"pid\""},
      {R"({"pid": {"x": 1}})", "\"pid\""},
      {R"({"pid": 1, "events": -3})", "\"events\""},
      {R"({"pid": 1, "events": true})", "\"events\""},
      {R"({"pid": 1, "complete": "yes"})", "\"complete\""},
      {R"({"pid": 1, "complete": 1})", "\"complete\""},
      {R"({"pid": 1, "argv": "python3"})", "\"argv\""},
      {R"({"pid": 1, "argv": {"a": "b"}})", "\"argv\""},
      {R"({"pid": 1, "argv": [["nested"]]})", "\"argv\""},
      {R"({"pid": 1, "kernel": [1]})", "\"kernel\""},
      {R"({"pid": 1, "events_by_call": [1, 2]})", "\"events_by_call\""},
      {R"({"pid": 1, "events_by_call": {"mmap": -1}})", "\"events_by_call.mmap\""},
      {R"({"pid": 1, "divergence_samples": [1]})", "\"divergence_samples[0]\""},
      {R"({"pid": 1, "divergence_samples": [{"event": "x"}]})", "\"divergence_samples[0].event\""},
      {R"({"pid": 1, "unexplained_samples": [{"event": 1}, {"what": [1]}]})",
       "\"unexplained_samples[1].what\""},
  };
  for (const Case& c : kCases) {
    absl::StatusOr<ProcessReport> r = ParseReport(c.text, "t.json");
    ASSERT_FALSE(r.ok()) << "parsed: " << c.text;
    EXPECT_THAT(r.status().message(), HasSubstr("t.json: malformed report")) << c.text;
    EXPECT_THAT(r.status().message(), HasSubstr(c.key)) << c.text;
  }
}

TEST(ParseReportTest, MissingPidIsAnError) {
  absl::StatusOr<ProcessReport> r = ParseReport(R"({"events": 3, "complete": true})", "p.json");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("p.json: malformed report: no \"pid\""));
}

TEST(ParseReportTest, MissingKeysAreListedAndMakeTheReportIncomplete) {
  absl::StatusOr<ProcessReport> r =
      ParseReport(R"({"pid": 5, "events": 3, "complete": true, "future_key": [1, {"a": 2}]})", "m");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->pid, 5u);
  EXPECT_EQ(r->events, 3u);
  EXPECT_TRUE(r->complete);
  EXPECT_FALSE(r->IsComplete());
  // Every contract key but the three present, in the contract's order.
  EXPECT_THAT(
      r->missing_keys,
      ElementsAre("parent_pid", "argv", "kernel", "kernel_profile", "backend", "check",
                  "events_by_call", "trapped", "checks", "range_checks", "divergences",
                  "divergence_samples", "resyncs", "unexplained", "unexplained_samples",
                  "placement_predicted", "placement_hit", "errno_predicted", "errno_hit", "results",
                  "results_hit", "passthrough", "final_map_count", "exit_reason"));
}

TEST(ParseReportTest, OneMissingKeyOfAGoodReport) {
  const std::string text = absl::StrReplaceAll(kGoodReport, {{"\"final_map_count\": 57,", ""}});
  absl::StatusOr<ProcessReport> r = ParseReport(text, "x");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->missing_keys, ElementsAre("final_map_count"));
  EXPECT_EQ(r->final_map_count, 0u);
  EXPECT_FALSE(r->IsComplete());
}

// A scratch directory removed at the end of the test.
class ReportDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char templ[] = "/tmp/report_test.XXXXXX";
    ASSERT_NE(mkdtemp(templ), nullptr);
    dir_ = templ;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  std::string dir_;
};

TEST_F(ReportDirTest, ReadReportFileSetsFileAndNamesItInErrors) {
  const std::string good = Write("1234.json", kGoodReport);
  absl::StatusOr<ProcessReport> r = ReadReportFile(good);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->file, good);
  EXPECT_EQ(r->pid, 1234u);

  const std::string cut = Write("99.json", std::string(kGoodReport).substr(0, 100));
  r = ReadReportFile(cut);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr(cut + ": malformed report"));

  r = ReadReportFile(dir_ + "/absent.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(), HasSubstr(dir_ + "/absent.json"));

  r = ReadReportFile(dir_);  // a directory: read() fails with EISDIR
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr(dir_));
}

TEST_F(ReportDirTest, ReadReportFileReadsRegularFilesOnlyNeverThroughALink) {
  const std::string good = Write("1234.json", kGoodReport);
  const std::string link = dir_ + "/55.json";
  ASSERT_EQ(symlink(good.c_str(), link.c_str()), 0);
  absl::StatusOr<ProcessReport> r = ReadReportFile(link);
  EXPECT_FALSE(r.ok());
  const std::string fifo = dir_ + "/56.json";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  r = ReadReportFile(fifo);  // would block without O_NONBLOCK
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("not a regular file"));
}

TEST(ParseReportTest, RunIdReportErrorAndTraceStoppedAreOptionalAndRead) {
  absl::StatusOr<ProcessReport> r = ParseReport(kGoodReport, "r.json");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->run_id, "");
  EXPECT_EQ(r->report_error, "");
  EXPECT_EQ(r->trace_stopped, "");
  // A short report (the whole one could not be written): keys are missing.
  r = ParseReport(R"({"pid":7,"run_id":"0123abcd","exit_reason":"exit","complete":false,)"
                  R"("report_error":-28})",
                  "s.json");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->run_id, "0123abcd");
  EXPECT_EQ(r->report_error, "-28");
  EXPECT_FALSE(r->IsComplete());
  std::string traced = kGoodReport;
  traced.insert(traced.rfind('}'), ", \"trace_stopped\": \"write failed (-28)\"");
  r = ParseReport(traced, "t.json");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->trace_stopped, "write failed (-28)");
}

TEST_F(ReportDirTest, ListsReportsByPidThenExecGeneration) {
  Write("200.json", "{}");
  Write("30.exec2.json", "{}");
  Write("30.json", "{}");
  Write("30.exec1.json", "{}");
  Write("30.exec10.json", "{}");
  Write("200.json.tmp", "{}");  // being written: not a report
  Write("notes.txt", "x");
  std::filesystem::create_directory(dir_ + "/7.json");  // not a regular file
  absl::StatusOr<std::vector<std::string>> files = ListReportFiles(dir_);
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_THAT(*files, ElementsAre(dir_ + "/30.exec1.json", dir_ + "/30.exec2.json",
                                  dir_ + "/30.exec10.json", dir_ + "/30.json", dir_ + "/200.json"));
}

TEST_F(ReportDirTest, ListingAMissingDirectoryIsAnError) {
  absl::StatusOr<std::vector<std::string>> files = ListReportFiles(dir_ + "/nope");
  ASSERT_FALSE(files.ok());
  EXPECT_THAT(files.status().message(), HasSubstr(dir_ + "/nope"));
}

TEST(PidFromReportNameTest, Names) {
  EXPECT_EQ(PidFromReportName("1234.json"), 1234u);
  EXPECT_EQ(PidFromReportName("1234.exec3.json"), 1234u);
  EXPECT_EQ(PidFromReportName("x.json"), 0u);
  EXPECT_EQ(PidFromReportName(""), 0u);
}

}  // namespace
}  // namespace vmashadow
