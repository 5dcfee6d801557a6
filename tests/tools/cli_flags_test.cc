// cli_flags_test.cc — tests of tools/cli_flags: the option grammar `run` and
// the trace subcommands share, on flags of its own (so it does not depend on
// which subcommands are linked): both positional modes and "--", short flags,
// '-'/'_' and --noname, -h, and the error messages.
#include "tools/cli_flags.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"

namespace {

// A value whose parser gives a reason, as run's --check does.
struct Colour {
  std::string name = "red";
};
bool AbslParseFlag(absl::string_view text, Colour* c, std::string* error) {
  if (text == "red" || text == "blue") {
    c->name = std::string(text);
    return true;
  }
  *error = "expected red or blue";
  return false;
}
std::string AbslUnparseFlag(const Colour& c) { return c.name; }

}  // namespace

ABSL_FLAG(bool, cli_test_loud, false, "be loud");
ABSL_FLAG(int64_t, cli_test_count, 3, "how many");
ABSL_FLAG(std::string, cli_test_out, "", "write to FILE");
ABSL_FLAG(Colour, cli_test_colour, Colour{}, "the colour");

namespace vmashadow {
namespace {

using ::testing::ElementsAre;

constexpr CliFlag kFlags[] = {
    {"cli_test_loud", "cli-test-loud", ""},
    {"cli_test_count", "cli-test-count", "N"},
    {"cli_test_out", "cli-test-out", "FILE", 'o'},
    {"cli_test_colour", "cli-test-colour", "red|blue", 0, /*hidden=*/true},
};

class CliFlagsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::SetFlag(&FLAGS_cli_test_loud, false);
    absl::SetFlag(&FLAGS_cli_test_count, 3);
    absl::SetFlag(&FLAGS_cli_test_out, "");
    absl::SetFlag(&FLAGS_cli_test_colour, Colour{});
  }

  static absl::StatusOr<CliArgs> Parse(std::vector<std::string> args,
                                       Positionals mode = Positionals::kAnywhere) {
    return ParseCliArgs("cmd", args, kFlags, mode);
  }
  static std::string Error(std::vector<std::string> args) {
    absl::StatusOr<CliArgs> parsed = Parse(std::move(args));
    EXPECT_TRUE(absl::IsInvalidArgument(parsed.status())) << parsed.status();
    return std::string(parsed.status().message());
  }
};

TEST_F(CliFlagsTest, EverySpelling) {
  absl::StatusOr<CliArgs> parsed =
      Parse({"--cli-test-count", "7", "a", "-cli_test_loud", "--cli-test-out=x", "b"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_FALSE(parsed->help);
  EXPECT_THAT(parsed->positional, ElementsAre("a", "b"));
  EXPECT_EQ(absl::GetFlag(FLAGS_cli_test_count), 7);
  EXPECT_TRUE(absl::GetFlag(FLAGS_cli_test_loud));
  EXPECT_EQ(absl::GetFlag(FLAGS_cli_test_out), "x");

  ASSERT_TRUE(Parse({"--cli-test-loud", "--nocli_test_loud"}).ok());
  EXPECT_FALSE(absl::GetFlag(FLAGS_cli_test_loud));
  EXPECT_EQ(Error({"--no-cli-test-loud=1"}), "unknown option '--no-cli-test-loud=1' for 'cmd'");
}

TEST_F(CliFlagsTest, ShortFlags) {
  ASSERT_TRUE(Parse({"-o", "f1"}).ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_cli_test_out), "f1");
  ASSERT_TRUE(Parse({"-of2"}).ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_cli_test_out), "f2");
  EXPECT_EQ(Error({"-o"}), "option '--cli-test-out' needs a value (FILE)");
}

TEST_F(CliFlagsTest, EmptyValuesAreErrors) {
  // "--out=" (an unset shell variable) never means "not given".
  EXPECT_EQ(Error({"--cli-test-out="}),
            "bad value '' for '--cli-test-out': expected FILE, not an empty value");
  EXPECT_EQ(Error({"--cli-test-out", ""}),
            "bad value '' for '--cli-test-out': expected FILE, not an empty value");
  EXPECT_EQ(Error({"-o", ""}),
            "bad value '' for '--cli-test-out': expected FILE, not an empty value");
  // A type that refuses '' still gives its own reason.
  EXPECT_EQ(Error({"--cli-test-count="}), "bad value '' for '--cli-test-count'");
}

TEST_F(CliFlagsTest, PositionalsAnywhere) {
  absl::StatusOr<CliArgs> parsed = Parse({"a", "--cli-test-loud", "-", "--", "-h", "--", "b"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_THAT(parsed->positional, ElementsAre("a", "-", "-h", "--", "b"));
  EXPECT_TRUE(absl::GetFlag(FLAGS_cli_test_loud));
}

TEST_F(CliFlagsTest, FirstPositionalEndsOptions) {
  absl::StatusOr<CliArgs> parsed =
      Parse({"--cli-test-count=4", "prog", "--cli-test-loud", "--bogus"}, Positionals::kEndOptions);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_THAT(parsed->positional, ElementsAre("prog", "--cli-test-loud", "--bogus"));
  EXPECT_EQ(absl::GetFlag(FLAGS_cli_test_count), 4);
  EXPECT_FALSE(absl::GetFlag(FLAGS_cli_test_loud));

  parsed = Parse({"--", "--", "x"}, Positionals::kEndOptions);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_THAT(parsed->positional, ElementsAre("--", "x"));
}

TEST_F(CliFlagsTest, HelpStopsParsing) {
  for (const char* h : {"-h", "--help", "-help"}) {
    absl::StatusOr<CliArgs> parsed = Parse({"a", h, "--bogus"});
    ASSERT_TRUE(parsed.ok()) << h << ": " << parsed.status();
    EXPECT_TRUE(parsed->help) << h;
  }
  absl::StatusOr<CliArgs> parsed = Parse({"prog", "-h"}, Positionals::kEndOptions);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_FALSE(parsed->help);
}

TEST_F(CliFlagsTest, Errors) {
  EXPECT_EQ(Error({"--bogus"}), "unknown option '--bogus' for 'cmd'");
  EXPECT_EQ(Error({"-x"}), "unknown option '-x' for 'cmd'");
  EXPECT_EQ(Error({"--nocli-test-count"}), "unknown option '--nocli-test-count' for 'cmd'");
  EXPECT_EQ(Error({"--cli-test-count"}), "option '--cli-test-count' needs a value (N)");
  EXPECT_EQ(Error({"--cli-test-count=x"}), "bad value 'x' for '--cli-test-count'");
  EXPECT_EQ(Error({"--cli-test-loud=maybe"}),
            "bad value 'maybe' for '--cli-test-loud': expected true or false");
  EXPECT_EQ(Error({"--cli-test-colour", "green"}),
            "bad value 'green' for '--cli-test-colour': expected red or blue");
}

TEST_F(CliFlagsTest, Usage) {
  EXPECT_EQ(CliFlagsUsage(kFlags, FlagDefaults::kHide),
            "Options:\n"
            "  --cli-test-loud            be loud\n"
            "  --cli-test-count=N         how many\n"
            "  -o, --cli-test-out=FILE    write to FILE\n");
  EXPECT_EQ(CliFlagsUsage(kFlags, FlagDefaults::kShow),
            "Options:\n"
            "  --cli-test-loud            be loud\n"
            "  --cli-test-count=N         how many (default: 3)\n"
            "  -o, --cli-test-out=FILE    write to FILE\n");
}

}  // namespace
}  // namespace vmashadow
