// program_check_test.cc — tests of tools/program_check: execvp-style PATH
// search, the exit codes of the failures, and the ELF/"#!" inspection
// (dynamic, static, scripts, nested interpreters, set-user-ID). The static
// program comes from Meson in $VMASHADOW_TEST_STATIC.
#include "tools/program_check.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/status/status.h"

namespace vmashadow {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

class ProgramCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char templ[] = "/tmp/program_check_test.XXXXXX";
    ASSERT_NE(mkdtemp(templ), nullptr);
    dir_ = templ;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text, mode_t mode) {
    const std::string path = dir_ + "/" + name;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path) << text;
    chmod(path.c_str(), mode);
    return path;
  }

  static std::string StaticProgram() {
    const char* p = getenv("VMASHADOW_TEST_STATIC");
    return p != nullptr ? p : "";
  }

  std::string dir_;
};

TEST_F(ProgramCheckTest, DynamicProgramByPath) {
  absl::StatusOr<CheckedProgram> p = CheckProgram("/bin/sh", nullptr);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->path, "/bin/sh");
  EXPECT_THAT(p->warnings, IsEmpty());
}

TEST_F(ProgramCheckTest, PathSearchTakesTheFirstExecutableMatch) {
  Write("a/tool", "#!/bin/sh\n", 0644);  // not executable: skipped
  const std::string b = Write("b/tool", "#!/bin/sh\nexit 0\n", 0755);
  Write("c/tool", "#!/bin/sh\n", 0755);
  const std::string path = dir_ + "/nonexistent:" + dir_ + "/a:" + dir_ + "/b:" + dir_ + "/c";
  absl::StatusOr<CheckedProgram> p = CheckProgram("tool", path.c_str());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->path, b);
}

TEST_F(ProgramCheckTest, EmptyPathEntryIsTheCurrentDirectory) {
  Write("here", "#!/bin/sh\n", 0755);
  const std::string old = std::filesystem::current_path();
  std::filesystem::current_path(dir_);
  absl::StatusOr<CheckedProgram> p = CheckProgram("here", "/nonexistent::");
  std::filesystem::current_path(old);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->path, "./here");
}

TEST_F(ProgramCheckTest, NotFoundIs127) {
  absl::StatusOr<CheckedProgram> p = CheckProgram("vmashadow-no-such", dir_.c_str());
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(p.status().message(), "vmashadow-no-such: command not found");
  EXPECT_EQ(ExitCodeForProgramError(p.status()), 127);

  p = CheckProgram(dir_ + "/missing", nullptr);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(ExitCodeForProgramError(p.status()), 127);
  EXPECT_THAT(p.status().message(), HasSubstr("No such file or directory"));

  p = CheckProgram("", nullptr);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(ExitCodeForProgramError(p.status()), 127);
}

TEST_F(ProgramCheckTest, NotExecutableIs126) {
  const std::string plain = Write("plain", "data", 0644);
  absl::StatusOr<CheckedProgram> p = CheckProgram(plain, nullptr);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(ExitCodeForProgramError(p.status()), 126);
  EXPECT_THAT(p.status().message(), HasSubstr("Permission denied"));

  p = CheckProgram("plain", dir_.c_str());  // found in PATH but not executable
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(ExitCodeForProgramError(p.status()), 126);
  EXPECT_THAT(p.status().message(), HasSubstr(plain));

  p = CheckProgram(dir_, nullptr);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(ExitCodeForProgramError(p.status()), 126);
  EXPECT_THAT(p.status().message(), HasSubstr("Is a directory"));

  p = CheckProgram(plain + "/sub", nullptr);  // ENOTDIR
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(ExitCodeForProgramError(p.status()), 126);
}

TEST_F(ProgramCheckTest, StaticProgramIsRefusedWithExit2) {
  const std::string stat_prog = StaticProgram();
  if (stat_prog.empty()) GTEST_SKIP() << "VMASHADOW_TEST_STATIC not set";
  absl::StatusOr<CheckedProgram> p = CheckProgram(stat_prog, nullptr);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(p.status().message(),
            stat_prog + " is statically linked; LD_PRELOAD cannot monitor it");
  EXPECT_EQ(ExitCodeForProgramError(p.status()), 2);
}

TEST_F(ProgramCheckTest, ScriptsAreJudgedByTheirInterpreter) {
  const std::string ok = Write("ok.sh", "#! /bin/sh -e\necho hi\n", 0755);
  absl::StatusOr<CheckedProgram> p = CheckProgram(ok, nullptr);
  EXPECT_TRUE(p.ok()) << p.status();

  const std::string no_newline = Write("nonl.sh", "#!/bin/sh", 0755);
  EXPECT_TRUE(CheckProgram(no_newline, nullptr).ok());

  const std::string missing = Write("missing.sh", "#!/nonexistent/sh\n", 0755);
  p = CheckProgram(missing, nullptr);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(ExitCodeForProgramError(p.status()), 127);
  EXPECT_THAT(p.status().message(), HasSubstr(missing + ": interpreter /nonexistent/sh"));

  // A script whose interpreter is a script whose interpreter is static.
  const std::string stat_prog = StaticProgram();
  if (stat_prog.empty()) GTEST_SKIP() << "VMASHADOW_TEST_STATIC not set";
  const std::string inner = Write("inner", "#!" + stat_prog + "\n", 0755);
  const std::string outer = Write("outer", "#!" + inner + " arg\n", 0755);
  p = CheckProgram(outer, nullptr);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(ExitCodeForProgramError(p.status()), 2);
  EXPECT_THAT(p.status().message(),
              HasSubstr("interpreter " + stat_prog + " is statically linked"));
}

TEST_F(ProgramCheckTest, UnknownFormatsAreLeftToExecvp) {
  // No "#!" and no ELF magic: execvp runs it with /bin/sh.
  const std::string text = Write("text", "echo hi\n", 0755);
  EXPECT_TRUE(CheckProgram(text, nullptr).ok());
  const std::string empty = Write("empty", "", 0755);
  EXPECT_TRUE(CheckProgram(empty, nullptr).ok());
  // ELF magic with a garbled header: execve decides.
  const std::string garbled = Write("garbled",
                                    std::string("\x7f"
                                                "ELF\x02\x01\x01",
                                                7),
                                    0755);
  EXPECT_TRUE(CheckProgram(garbled, nullptr).ok());
}

TEST_F(ProgramCheckTest, SetUidOfAnotherUserWarns) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  const std::string prog = dir_ + "/suid";
  std::filesystem::copy_file("/bin/true", prog);
  ASSERT_EQ(chown(prog.c_str(), 65534, 65534), 0);
  ASSERT_EQ(chmod(prog.c_str(), 04755), 0);
  absl::StatusOr<CheckedProgram> p = CheckProgram(prog, nullptr);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->warnings.size(), 1u);
  EXPECT_THAT(p->warnings[0], HasSubstr("set-user-ID (owner uid 65534)"));
  EXPECT_THAT(p->warnings[0], HasSubstr("unmonitored"));
  EXPECT_EQ(p->unmonitored_reasons.size(), 1u);

  // Set-user-ID to ourselves changes nothing: no AT_SECURE, no warning.
  ASSERT_EQ(chown(prog.c_str(), getuid(), getgid()), 0);
  ASSERT_EQ(chmod(prog.c_str(), 04755), 0);
  p = CheckProgram(prog, nullptr);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_THAT(p->warnings, IsEmpty());
}

}  // namespace
}  // namespace vmashadow
