// errno_name_test.cc — core's ErrnoName against glibc's strerrorname_np for
// every errno the kernel defines.
#include "core/abi/errno_name.h"

#include <gtest/gtest.h>

#include <cstring>

namespace vmashadow {
namespace {

TEST(ErrnoName, MatchesGlibcForEveryErrno) {
  int named = 0;
  for (int e = 1; e <= 133; ++e) {
    const char* glibc = strerrorname_np(e);
    const char* ours = ErrnoName(e);
    // glibc names the aliases' numbers (41, 58) nothing; so do we.
    if (glibc == nullptr) {
      EXPECT_EQ(ours, nullptr) << e;
      continue;
    }
    ASSERT_NE(ours, nullptr) << e << " " << glibc;
    EXPECT_STREQ(ours, glibc) << e;
    ++named;
  }
  EXPECT_EQ(named, 131);
}

TEST(ErrnoName, OutOfRange) {
  EXPECT_EQ(ErrnoName(0), nullptr);
  EXPECT_EQ(ErrnoName(-12), nullptr);
  EXPECT_EQ(ErrnoName(134), nullptr);
  EXPECT_EQ(ErrnoName(4095), nullptr);
}

}  // namespace
}  // namespace vmashadow
