// vma_tree_test.cc — unit and differential tests of VmaTree (core/mm/vma_tree.h).
//
// The unit tests draw small layouts and check each API against hand-derived
// answers: the find_vma family, the gap bookkeeping, Validate() catching
// broken trees, and both gap searches (limits, alignment, stack guard gaps,
// overflow). The differential test applies hundreds of thousands of random
// operations to the tree and to a naive reference (std::map plus linear
// scans), validates the tree after every mutation and checks every query
// result, both against the reference and against the properties the search
// must have (free, inside the limits, aligned, clear of guard gaps). On a
// mismatch it prints the seed and the last operations. Set VMASHADOW_SEED to
// add one more seed.
#include <algorithm>
#include <array>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/mm/dcheck.h"
#include "core/mm/mm_types.h"
#include "core/mm/vma_tree.h"

namespace vmashadow {
namespace {

constexpr uint64_t P = kPageSize;
constexpr uint64_t kMax = ~uint64_t{0};
#define H "%#" PRIx64

// Owns the Vma nodes of one test tree.
class TreeFixture {
 public:
  ~TreeFixture() {
    while (!tree_.empty()) tree_.Erase(tree_.First());
  }
  Vma* Add(uint64_t start, uint64_t end, uint64_t flags = 0) {
    nodes_.push_back(std::make_unique<Vma>());
    Vma* v = nodes_.back().get();
    v->start = start;
    v->end = end;
    v->flags = flags;
    tree_.Insert(v);
    return v;
  }
  VmaTree& tree() { return tree_; }

 private:
  VmaTree tree_;
  std::vector<std::unique_ptr<Vma>> nodes_;
};

// ---------------------------------------------------------------------------
// Basics.

TEST(VmaTreeTest, EmptyTree) {
  VmaTree t;
  EXPECT_EQ(t.Validate(), nullptr);
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.First(), nullptr);
  EXPECT_EQ(t.Last(), nullptr);
  EXPECT_EQ(t.FindVma(0), nullptr);
  EXPECT_EQ(t.FindVma(kMax), nullptr);
  Vma* prev = reinterpret_cast<Vma*>(1);
  EXPECT_EQ(t.FindVmaPrev(123 * P, &prev), nullptr);
  EXPECT_EQ(prev, nullptr);
  EXPECT_EQ(t.FindVmaIntersection(0, kMax), nullptr);
  // The whole space is one free interval [0, inf).
  UnmappedAreaInfo info;
  info.length = 4 * P;
  info.low_limit = 16 * P;
  info.high_limit = 100 * P;
  EXPECT_EQ(t.UnmappedAreaTopdown(info), 96 * P);
  EXPECT_EQ(t.UnmappedArea(info), 16 * P);
}

TEST(VmaTreeTest, InsertKeepsOrderListAndGaps) {
  TreeFixture f;
  VmaTree& t = f.tree();
  Vma* c = f.Add(50 * P, 60 * P);
  Vma* a = f.Add(10 * P, 20 * P);
  Vma* d = f.Add(80 * P, 81 * P);
  Vma* b = f.Add(20 * P, 30 * P);  // touches a: zero gap
  ASSERT_EQ(t.Validate(), nullptr);
  EXPECT_EQ(t.size(), 4u);
  EXPECT_EQ(t.First(), a);
  EXPECT_EQ(t.Last(), d);
  EXPECT_EQ(a->prev, nullptr);
  EXPECT_EQ(a->next, b);
  EXPECT_EQ(b->next, c);
  EXPECT_EQ(c->next, d);
  EXPECT_EQ(d->next, nullptr);
  EXPECT_EQ(d->prev, c);
  EXPECT_EQ(VmaTree::Gap(a), 10 * P);  // from 0
  EXPECT_EQ(VmaTree::Gap(b), 0u);
  EXPECT_EQ(VmaTree::Gap(c), 20 * P);
  EXPECT_EQ(VmaTree::Gap(d), 20 * P);
}

TEST(VmaTreeTest, EraseRelinksNeighbours) {
  TreeFixture f;
  VmaTree& t = f.tree();
  Vma* a = f.Add(10 * P, 20 * P);
  Vma* b = f.Add(30 * P, 40 * P);
  Vma* c = f.Add(50 * P, 60 * P);
  t.Erase(b);
  ASSERT_EQ(t.Validate(), nullptr);
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(a->next, c);
  EXPECT_EQ(c->prev, a);
  EXPECT_EQ(VmaTree::Gap(c), 30 * P);
  EXPECT_EQ(t.FindVma(35 * P), c);
  t.Erase(a);
  ASSERT_EQ(t.Validate(), nullptr);
  EXPECT_EQ(t.First(), c);
  EXPECT_EQ(VmaTree::Gap(c), 50 * P);
  t.Erase(c);
  ASSERT_EQ(t.Validate(), nullptr);
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(t.First(), nullptr);
  EXPECT_EQ(t.Last(), nullptr);
  // Nodes can be reinserted after erasure.
  t.Insert(b);
  ASSERT_EQ(t.Validate(), nullptr);
  EXPECT_EQ(t.First(), b);
  EXPECT_EQ(t.Last(), b);
}

TEST(VmaTreeTest, SetBoundsUpdatesOwnAndNextGap) {
  TreeFixture f;
  VmaTree& t = f.tree();
  Vma* a = f.Add(10 * P, 20 * P);
  Vma* b = f.Add(30 * P, 40 * P);
  Vma* c = f.Add(100 * P, 110 * P);
  t.SetBounds(b, 25 * P, 90 * P);  // grow both ways
  ASSERT_EQ(t.Validate(), nullptr);
  EXPECT_EQ(VmaTree::Gap(b), 5 * P);
  EXPECT_EQ(VmaTree::Gap(c), 10 * P);
  EXPECT_EQ(t.FindVma(24 * P), b);
  EXPECT_EQ(t.FindVma(89 * P), b);
  t.SetBounds(b, 39 * P, 40 * P);  // shrink both ways
  ASSERT_EQ(t.Validate(), nullptr);
  EXPECT_EQ(VmaTree::Gap(c), 60 * P);
  // The largest gap is now found by the gap search.
  UnmappedAreaInfo info;
  info.length = 50 * P;
  info.low_limit = P;
  info.high_limit = 100 * P;
  EXPECT_EQ(t.UnmappedAreaTopdown(info), 50 * P);
  EXPECT_EQ(t.UnmappedArea(info), 40 * P);
  t.SetBounds(a, 0, 20 * P);  // first VMA down to 0: Gap 0
  ASSERT_EQ(t.Validate(), nullptr);
  EXPECT_EQ(VmaTree::Gap(a), 0u);
}

#if VMASHADOW_DCHECK_IS_ON
// VMASHADOW_DCHECK (on in test builds): bounds that overlap a neighbour, or
// an empty or unaligned range, abort instead of corrupting the tree.
TEST(VmaTreeDeathTest, SetBoundsChecksItsPreconditions) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  TreeFixture f;
  Vma* a = f.Add(10 * P, 20 * P);
  f.Add(30 * P, 40 * P);
  EXPECT_DEATH(f.tree().SetBounds(a, 10 * P, 31 * P), "");
  EXPECT_DEATH(f.tree().SetBounds(a, 10 * P, 10 * P), "");
  EXPECT_DEATH(f.tree().SetBounds(a, 10 * P + 1, 20 * P), "");
}
#endif

// SetBounds defers gap propagation; the searches must see the new gaps.
TEST(VmaTreeTest, SearchRightAfterSetBounds) {
  TreeFixture f;
  VmaTree& t = f.tree();
  // v[i] = [100 + 4i, 103 + 4i): three pages, one-page holes.
  std::vector<Vma*> v;
  for (uint64_t i = 0; i < 64; ++i) v.push_back(f.Add((100 + 4 * i) * P, (103 + 4 * i) * P));
  UnmappedAreaInfo info;
  info.length = 5 * P;
  info.low_limit = 100 * P;
  info.high_limit = 355 * P;
  EXPECT_EQ(t.UnmappedAreaTopdown(info), kNoGap);
  EXPECT_EQ(t.UnmappedArea(info), kNoGap);
  t.SetBounds(v[20], 180 * P, 181 * P);
  t.SetBounds(v[21], 186 * P, 187 * P);  // hole [181,186)
  EXPECT_EQ(t.UnmappedAreaTopdown(info), 181 * P);
  t.SetBounds(v[10], 139 * P, 143 * P);  // grows down into its hole
  t.SetBounds(v[5], 120 * P, 121 * P);
  t.SetBounds(v[6], 126 * P, 127 * P);  // hole [121,126)
  EXPECT_EQ(t.UnmappedArea(info), 121 * P);
  // More changes than the pending list holds before the next query.
  for (int i = 50; i < 62; ++i) t.SetBounds(v[i], v[i]->start, v[i]->end);
  t.SetBounds(v[63], 360 * P, 361 * P);  // hole [351,360)
  info.high_limit = 361 * P;
  EXPECT_EQ(t.UnmappedAreaTopdown(info), 355 * P);
  info.high_limit = 351 * P;
  EXPECT_EQ(t.UnmappedAreaTopdown(info), 181 * P);
  EXPECT_EQ(t.Validate(), nullptr);
}

TEST(VmaTreeTest, ManyAscendingDescendingAndInterleaved) {
  TreeFixture f;
  VmaTree& t = f.tree();
  std::vector<Vma*> v;
  for (uint64_t i = 0; i < 500; ++i) v.push_back(f.Add((1000 + 3 * i) * P, (1001 + 3 * i) * P));
  for (uint64_t i = 0; i < 500; ++i) v.push_back(f.Add((999 - 2 * i) * P, (1000 - 2 * i) * P));
  ASSERT_EQ(t.Validate(), nullptr);
  EXPECT_EQ(t.size(), 1000u);
  // Erase every other one, validating as we go.
  for (size_t i = 0; i < v.size(); i += 2) {
    t.Erase(v[i]);
    ASSERT_EQ(t.Validate(), nullptr) << i;
  }
  EXPECT_EQ(t.size(), 500u);
  uint64_t last_end = 0;
  size_t n = 0;
  for (const Vma* x = t.First(); x != nullptr; x = x->next, ++n) {
    EXPECT_GE(x->start, last_end);
    last_end = x->end;
  }
  EXPECT_EQ(n, 500u);
}

// ---------------------------------------------------------------------------
// find_vma family.

TEST(VmaTreeTest, FindVma) {
  TreeFixture f;
  VmaTree& t = f.tree();
  Vma* a = f.Add(10 * P, 20 * P);
  Vma* b = f.Add(30 * P, 40 * P);
  EXPECT_EQ(t.FindVma(0), a);           // below the first: the first
  EXPECT_EQ(t.FindVma(10 * P), a);      // its start
  EXPECT_EQ(t.FindVma(20 * P - 1), a);  // its last byte
  EXPECT_EQ(t.FindVma(20 * P), b);      // end is exclusive: the next
  EXPECT_EQ(t.FindVma(35 * P), b);
  EXPECT_EQ(t.FindVma(40 * P - 1), b);
  EXPECT_EQ(t.FindVma(40 * P), nullptr);  // above the last
  EXPECT_EQ(t.FindVma(kMax), nullptr);
}

TEST(VmaTreeTest, FindVmaPrev) {
  TreeFixture f;
  VmaTree& t = f.tree();
  Vma* a = f.Add(10 * P, 20 * P);
  Vma* b = f.Add(30 * P, 40 * P);
  Vma* prev = nullptr;
  EXPECT_EQ(t.FindVmaPrev(5 * P, &prev), a);
  EXPECT_EQ(prev, nullptr);
  EXPECT_EQ(t.FindVmaPrev(15 * P, &prev), a);
  EXPECT_EQ(prev, nullptr);
  EXPECT_EQ(t.FindVmaPrev(25 * P, &prev), b);
  EXPECT_EQ(prev, a);
  EXPECT_EQ(t.FindVmaPrev(30 * P, &prev), b);
  EXPECT_EQ(prev, a);
  // No VMA at or above: prev is the last VMA.
  EXPECT_EQ(t.FindVmaPrev(40 * P, &prev), nullptr);
  EXPECT_EQ(prev, b);
}

TEST(VmaTreeTest, FindVmaIntersection) {
  TreeFixture f;
  VmaTree& t = f.tree();
  Vma* a = f.Add(10 * P, 20 * P);
  Vma* b = f.Add(30 * P, 40 * P);
  EXPECT_EQ(t.FindVmaIntersection(0, 10 * P), nullptr);  // touches a from below
  EXPECT_EQ(t.FindVmaIntersection(0, 10 * P + 1), a);
  EXPECT_EQ(t.FindVmaIntersection(20 * P, 30 * P), nullptr);  // exactly the hole
  EXPECT_EQ(t.FindVmaIntersection(19 * P, 30 * P), a);
  EXPECT_EQ(t.FindVmaIntersection(20 * P, 31 * P), b);
  EXPECT_EQ(t.FindVmaIntersection(0, kMax), a);  // the first one
  EXPECT_EQ(t.FindVmaIntersection(40 * P, kMax), nullptr);
  // Like the kernel, an empty range inside a VMA still finds it.
  EXPECT_EQ(t.FindVmaIntersection(15 * P, 15 * P), a);
}

// ---------------------------------------------------------------------------
// Validate() must notice broken trees.

TEST(VmaTreeTest, ValidateCatchesCorruption) {
  TreeFixture f;
  VmaTree& t = f.tree();
  std::vector<Vma*> v;
  for (uint64_t i = 0; i < 20; ++i) v.push_back(f.Add((10 + 5 * i) * P, (12 + 5 * i) * P));
  ASSERT_EQ(t.Validate(), nullptr);

  // A stale subtree gap.
  Vma* x = v[7];
  const uint64_t saved_gap = x->rb_subtree_gap_;
  x->rb_subtree_gap_ = saved_gap + P;
  EXPECT_NE(t.Validate(), nullptr);
  x->rb_subtree_gap_ = saved_gap;
  ASSERT_EQ(t.Validate(), nullptr);

  // Overlapping neighbours.
  const uint64_t saved_end = v[3]->end;
  v[3]->end = v[4]->start + P;
  EXPECT_NE(t.Validate(), nullptr);
  v[3]->end = saved_end;
  ASSERT_EQ(t.Validate(), nullptr);

  // A broken prev link.
  Vma* saved_prev = v[10]->prev;
  v[10]->prev = v[2];
  EXPECT_NE(t.Validate(), nullptr);
  v[10]->prev = saved_prev;
  ASSERT_EQ(t.Validate(), nullptr);

  // A recoloured node (the root is black; making it red breaks the rules).
  Vma* root = t.header()->rb_parent_;
  root->rb_color_ ^= 1;
  EXPECT_NE(t.Validate(), nullptr);
  root->rb_color_ ^= 1;
  ASSERT_EQ(t.Validate(), nullptr);

  // A leaf recoloured black changes the black height of one path.
  Vma* leaf = root;
  while (leaf->rb_left_ != nullptr || leaf->rb_right_ != nullptr) {
    leaf = leaf->rb_left_ != nullptr ? leaf->rb_left_ : leaf->rb_right_;
  }
  const int saved_color = leaf->rb_color_;
  leaf->rb_color_ = saved_color == 0 ? 1 : 0;
  EXPECT_NE(t.Validate(), nullptr);
  leaf->rb_color_ = saved_color;
  ASSERT_EQ(t.Validate(), nullptr);
}

// When the log of relinked nodes overflows, every subtree gap is recomputed:
// a stale value far from the insertion path gets fixed too.
TEST(VmaTreeTest, LogOverflowFallsBackToFullRecompute) {
  TreeFixture f;
  VmaTree& t = f.tree();
  std::vector<Vma*> v;
  for (uint64_t i = 0; i < 200; ++i) v.push_back(f.Add((10 + 5 * i) * P, (12 + 5 * i) * P));
  ASSERT_EQ(t.Validate(), nullptr);
  Vma* far = v[3];
  far->rb_subtree_gap_ += 7 * P;
  ASSERT_NE(t.Validate(), nullptr);
  for (int i = 0; i < 200; ++i) t.NoteChanged(v[i % 2]);  // alternate: no dedup
  f.Add(5000 * P, 5001 * P);                              // at the far right end
  EXPECT_EQ(t.Validate(), nullptr);
  // Without overflow, the same stale value survives an unrelated insert.
  far->rb_subtree_gap_ += 7 * P;
  f.Add(6000 * P, 6001 * P);
  EXPECT_NE(t.Validate(), nullptr);
  far->rb_subtree_gap_ -= 7 * P;
  EXPECT_EQ(t.Validate(), nullptr);
}

// ---------------------------------------------------------------------------
// Gap searches. Layout used below (pages):
//
//   0      10   20    30  40        60   70      100  110
//   |      AAAAA|      BBBB|         CCCCC|        DDDDD|....
//   free   10   free  10   free 20        free 30       free to inf

class GapSearchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    a_ = f_.Add(10 * P, 20 * P);
    b_ = f_.Add(30 * P, 40 * P);
    c_ = f_.Add(60 * P, 70 * P);
    d_ = f_.Add(100 * P, 110 * P);
    ASSERT_EQ(t().Validate(), nullptr);
  }
  VmaTree& t() { return f_.tree(); }
  static UnmappedAreaInfo Info(uint64_t len, uint64_t lo, uint64_t hi) {
    UnmappedAreaInfo i;
    i.length = len;
    i.low_limit = lo;
    i.high_limit = hi;
    return i;
  }
  TreeFixture f_;
  Vma *a_, *b_, *c_, *d_;
};

TEST_F(GapSearchTest, TopdownTakesHighestFit) {
  // Everything fits above d.
  EXPECT_EQ(t().UnmappedAreaTopdown(Info(5 * P, P, 200 * P)), 195 * P);
  // Below d: the hole [70,100) is the highest.
  EXPECT_EQ(t().UnmappedAreaTopdown(Info(5 * P, P, 100 * P)), 95 * P);
  // 25 pages: only [70,100) holds it.
  EXPECT_EQ(t().UnmappedAreaTopdown(Info(25 * P, P, 100 * P)), 75 * P);
  // 30 pages exactly fill [70,100).
  EXPECT_EQ(t().UnmappedAreaTopdown(Info(30 * P, P, 100 * P)), 70 * P);
  // 31 pages: nothing below 100.
  EXPECT_EQ(t().UnmappedAreaTopdown(Info(31 * P, P, 100 * P)), kNoGap);
  // Below c, the highest hole [40,60) is used from its top.
  EXPECT_EQ(t().UnmappedAreaTopdown(Info(10 * P, P, 60 * P)), 50 * P);
}

TEST_F(GapSearchTest, TopdownClipsAtLimits) {
  // high inside the hole [70,100): the clipped part [70,85) is 15 pages.
  EXPECT_EQ(t().UnmappedAreaTopdown(Info(10 * P, P, 85 * P)), 75 * P);
  // The raw hole [70,100) holds 20 pages but its clipped part does not:
  // keep searching lower, [40,60) fits.
  EXPECT_EQ(t().UnmappedAreaTopdown(Info(20 * P, P, 85 * P)), 40 * P);
  // low inside the hole [40,60): clipped [45,60) holds 15 but not 16.
  EXPECT_EQ(t().UnmappedAreaTopdown(Info(15 * P, 45 * P, 60 * P)), 45 * P);
  EXPECT_EQ(t().UnmappedAreaTopdown(Info(16 * P, 45 * P, 60 * P)), kNoGap);
  // A window fully inside one hole.
  EXPECT_EQ(t().UnmappedAreaTopdown(Info(2 * P, 42 * P, 50 * P)), 48 * P);
  // A window fully inside a VMA.
  EXPECT_EQ(t().UnmappedAreaTopdown(Info(P, 61 * P, 69 * P)), kNoGap);
  // Window below the first VMA.
  EXPECT_EQ(t().UnmappedAreaTopdown(Info(9 * P, P, 10 * P)), P);
  EXPECT_EQ(t().UnmappedAreaTopdown(Info(10 * P, P, 10 * P)), kNoGap);
  EXPECT_EQ(t().UnmappedAreaTopdown(Info(10 * P, 0, 10 * P)), 0u);
}

TEST_F(GapSearchTest, TopdownAlignment) {
  // L = 4 pages + (8 pages - 1 page) = 11 pages. E = 100: 96 rounded down to
  // a multiple of 8 pages is 96.
  UnmappedAreaInfo i = Info(4 * P, P, 100 * P);
  i.align_mask = 8 * P - P;
  EXPECT_EQ(t().UnmappedAreaTopdown(i), 96 * P);
  // With an offset of 3 pages: the highest x <= 96 with x = 3 (mod 8) is 91.
  i.align_offset = 3 * P;
  EXPECT_EQ(t().UnmappedAreaTopdown(i), 91 * P);
  // The padded length decides the fit: [40,60) is 20 pages. A 10-page request
  // aligned to 16 pages needs L = 25: skipped although an aligned slot exists.
  i = Info(10 * P, P, 60 * P);
  i.align_mask = 16 * P - P;
  EXPECT_EQ(t().UnmappedAreaTopdown(i), kNoGap);
  i.align_mask = 8 * P - P;  // L = 17 fits [40,60): E=60, 50 -> 48
  EXPECT_EQ(t().UnmappedAreaTopdown(i), 48 * P);
}

TEST_F(GapSearchTest, TopdownStackGuardGap) {
  // Make c (60..70) a stack: its guard reaches down to 60 - 16 = 44.
  c_->flags = kVmGrowsdown;
  UnmappedAreaInfo i = Info(5 * P, P, 70 * P);
  i.stack_guard_gap = 16 * P;
  // [40,60) is the highest fit, but its end 60 is above start_gap 44: retry
  // with high = 44, so [40,44) is too small and [20,30) is taken.
  EXPECT_EQ(t().UnmappedAreaTopdown(i), 25 * P);
  // A smaller guard leaves room in [40,60): high = 52, candidate 47.
  i.stack_guard_gap = 8 * P;
  EXPECT_EQ(t().UnmappedAreaTopdown(i), 47 * P);
  // A guard larger than the stack's start clamps at 0: nothing fits below it.
  i.stack_guard_gap = 1000 * P;
  EXPECT_EQ(t().UnmappedAreaTopdown(i), kNoGap);
  // The guard of a VMA that is not right above the chosen interval is ignored.
  i.stack_guard_gap = 16 * P;
  i.high_limit = 200 * P;
  EXPECT_EQ(t().UnmappedAreaTopdown(i), 195 * P);
  // Any overlap of the start gap counts, even by one byte: with a one-byte
  // guard, high drops to 60P - 1 and the result moves down a byte.
  i.stack_guard_gap = 1;
  i.high_limit = 70 * P;
  EXPECT_EQ(t().UnmappedAreaTopdown(i), 55 * P - 1);
  // A shadow stack keeps one page: [40,59) is used.
  c_->flags = kVmShadowStack;
  i.high_limit = 70 * P;
  EXPECT_EQ(t().UnmappedAreaTopdown(i), 54 * P);
}

TEST_F(GapSearchTest, BottomupTakesLowestFit) {
  EXPECT_EQ(t().UnmappedArea(Info(5 * P, P, 200 * P)), P);
  EXPECT_EQ(t().UnmappedArea(Info(10 * P, P, 200 * P)), 20 * P);  // [1,10) too small
  EXPECT_EQ(t().UnmappedArea(Info(11 * P, P, 200 * P)), 40 * P);
  EXPECT_EQ(t().UnmappedArea(Info(25 * P, P, 200 * P)), 70 * P);
  EXPECT_EQ(t().UnmappedArea(Info(31 * P, P, 200 * P)), 110 * P);  // above the last
  EXPECT_EQ(t().UnmappedArea(Info(31 * P, P, 141 * P)), 110 * P);
  EXPECT_EQ(t().UnmappedArea(Info(31 * P, P, 141 * P - 1)), kNoGap);
  // Clipping at low: [45,60) is 15 pages.
  EXPECT_EQ(t().UnmappedArea(Info(15 * P, 45 * P, 200 * P)), 45 * P);
  EXPECT_EQ(t().UnmappedArea(Info(16 * P, 45 * P, 200 * P)), 70 * P);
  // Clipping at high: [70,85) holds 15 pages, not 16.
  EXPECT_EQ(t().UnmappedArea(Info(16 * P, 61 * P, 85 * P)), kNoGap);
  EXPECT_EQ(t().UnmappedArea(Info(15 * P, 61 * P, 85 * P)), 70 * P);
}

TEST_F(GapSearchTest, BottomupAlignmentAndGuard) {
  UnmappedAreaInfo i = Info(4 * P, 41 * P, 200 * P);
  i.align_mask = 8 * P - P;  // L = 11: [41,60) fits; 41 rounded up to 48
  EXPECT_EQ(t().UnmappedArea(i), 48 * P);
  i.align_offset = 2 * P;  // x = 2 (mod 8), x >= 41: 42
  EXPECT_EQ(t().UnmappedArea(i), 42 * P);
  // Stack at c with a guard of 8 pages: start_gap 52. The kernel's test is
  // start_gap < addr + L - 1 = 42 + 11 pages - 1: 52 < 53P-1, retry above c.
  c_->flags = kVmGrowsdown;
  i.stack_guard_gap = 8 * P;
  EXPECT_EQ(t().UnmappedArea(i), 74 * P);  // low = 70, x = 2 (mod 8): 74
  // A 7-page guard: start_gap 53P is not below 53P - 1, so [41,60) is kept.
  i.stack_guard_gap = 7 * P;
  EXPECT_EQ(t().UnmappedArea(i), 42 * P);
  // Unaligned: L = 4, addr 41: start_gap 52 vs 45P - 1: fits.
  i = Info(4 * P, 41 * P, 200 * P);
  i.stack_guard_gap = 8 * P;
  EXPECT_EQ(t().UnmappedArea(i), 41 * P);
  // 12 pages: 41 + 12 = 53 > 52: retry at 70.
  i.length = 12 * P;
  EXPECT_EQ(t().UnmappedArea(i), 70 * P);
  // 11 pages end exactly at the start gap: allowed.
  i.length = 11 * P;
  EXPECT_EQ(t().UnmappedArea(i), 41 * P);
}

TEST_F(GapSearchTest, DegenerateInputs) {
  EXPECT_EQ(t().UnmappedAreaTopdown(Info(0, P, 200 * P)), kNoGap);
  EXPECT_EQ(t().UnmappedArea(Info(0, P, 200 * P)), kNoGap);
  EXPECT_EQ(t().UnmappedAreaTopdown(Info(P, 200 * P, 200 * P)), kNoGap);  // high == low
  EXPECT_EQ(t().UnmappedArea(Info(P, 200 * P, 100 * P)), kNoGap);         // high < low
  EXPECT_EQ(t().UnmappedAreaTopdown(Info(P, 200 * P, 100 * P)), kNoGap);
  // length + align_mask overflows.
  UnmappedAreaInfo i = Info(8 * P, 0, kMax);
  i.align_mask = kMax - P;
  EXPECT_EQ(t().UnmappedAreaTopdown(i), kNoGap);
  EXPECT_EQ(t().UnmappedArea(i), kNoGap);
  // Huge lengths near the top of the address space.
  EXPECT_EQ(t().UnmappedAreaTopdown(Info(kMax - 110 * P, 0, kMax)), 110 * P);
  EXPECT_EQ(t().UnmappedArea(Info(kMax - 110 * P, 0, kMax)), 110 * P);
  EXPECT_EQ(t().UnmappedArea(Info(kMax - 110 * P + 1, 0, kMax)), kNoGap);
  EXPECT_EQ(t().UnmappedAreaTopdown(Info(kMax, 0, kMax)), kNoGap);
}

TEST(VmaTreeTest, VmaAtTopOfAddressSpace) {
  TreeFixture f;
  VmaTree& t = f.tree();
  const uint64_t top = kMax - P + 1;  // last page
  f.Add(top - 4 * P, top);
  f.Add(P, 2 * P);
  ASSERT_EQ(t.Validate(), nullptr);
  EXPECT_EQ(t.FindVma(top - 1), t.Last());
  EXPECT_EQ(t.FindVma(top), nullptr);
  EXPECT_EQ(t.FindVma(kMax), nullptr);
  UnmappedAreaInfo i;
  i.length = P;
  i.low_limit = 0;
  i.high_limit = kMax;
  // The interval above the last VMA, [top, inf) clipped to high = kMax, is
  // one byte short of a page; the next one down ends at top - 4P.
  EXPECT_EQ(t.UnmappedAreaTopdown(i), top - 5 * P);
  EXPECT_EQ(t.UnmappedArea(i), 0u);
  i.low_limit = 2 * P;
  EXPECT_EQ(t.UnmappedArea(i), 2 * P);
  i.low_limit = top - 4 * P;
  EXPECT_EQ(t.UnmappedArea(i), kNoGap);
}

// ---------------------------------------------------------------------------
// Differential test against a naive model.

struct RefVma {
  uint64_t end;
  uint64_t flags;
  Vma* node;
};
using RefMap = std::map<uint64_t, RefVma>;  // by start

struct Interval {
  uint64_t start;
  uint64_t end;      // exclusive; kMax stands for "infinity" (above the last VMA)
  const Vma* above;  // the VMA right above, nullptr for the last interval
  uint64_t above_start;
  uint64_t above_end;
  uint64_t above_flags;
};

void FreeIntervals(const RefMap& m, std::vector<Interval>& out) {
  out.clear();
  uint64_t prev_end = 0;
  for (const auto& [start, r] : m) {
    if (start > prev_end) out.push_back({prev_end, start, r.node, start, r.end, r.flags});
    prev_end = r.end;
  }
  out.push_back({prev_end, kMax, nullptr, 0, 0, 0});
}

uint64_t RefStartGap(uint64_t start, uint64_t flags, uint64_t guard) {
  uint64_t g = 0;
  if (flags & kVmGrowsdown) {
    g = guard;
  } else if (flags & kVmShadowStack) {
    g = P;
  }
  return start >= g ? start - g : 0;
}

// Naive unmapped_area_topdown(): scans every free interval, highest first.
uint64_t RefTopdown(const std::vector<Interval>& iv, const UnmappedAreaInfo& info) {
  if (info.length == 0) return kNoGap;
  const uint64_t len = info.length + info.align_mask;
  if (len < info.length) return kNoGap;
  uint64_t hi = info.high_limit;
  for (;;) {
    const Interval* best = nullptr;
    uint64_t e = 0;
    for (auto it = iv.rbegin(); it != iv.rend(); ++it) {
      const uint64_t a = std::max(it->start, info.low_limit);
      const uint64_t b = std::min(it->end, hi);
      if (b > a && b - a >= len) {
        best = &*it;
        e = b;
        break;
      }
    }
    if (best == nullptr) return kNoGap;
    uint64_t addr = e - info.length;
    addr -= (addr - info.align_offset) & info.align_mask;
    if (best->above != nullptr && (best->above_flags & (kVmGrowsdown | kVmShadowStack))) {
      const uint64_t sg = RefStartGap(best->above_start, best->above_flags, info.stack_guard_gap);
      if (sg < e) {
        hi = sg;
        continue;
      }
    }
    return addr;
  }
}

// Naive unmapped_area(): lowest interval first.
uint64_t RefBottomup(const std::vector<Interval>& iv, const UnmappedAreaInfo& info) {
  if (info.length == 0) return kNoGap;
  const uint64_t len = info.length + info.align_mask;
  if (len < info.length) return kNoGap;
  uint64_t lo = info.low_limit;
  for (;;) {
    const Interval* best = nullptr;
    uint64_t s = 0;
    for (const Interval& it : iv) {
      const uint64_t a = std::max(it.start, lo);
      const uint64_t b = std::min(it.end, info.high_limit);
      if (b > a && b - a >= len) {
        best = &it;
        s = a;
        break;
      }
    }
    if (best == nullptr) return kNoGap;
    const uint64_t addr = s + ((info.align_offset - s) & info.align_mask);
    if (best->above != nullptr && (best->above_flags & (kVmGrowsdown | kVmShadowStack))) {
      const uint64_t sg = RefStartGap(best->above_start, best->above_flags, info.stack_guard_gap);
      // unsigned __int128 keeps addr + len - 1 exact.
      if (static_cast<unsigned __int128>(sg) + 1 < static_cast<unsigned __int128>(addr) + len) {
        lo = best->above_end;
        continue;
      }
    }
    return addr;
  }
}

class Differential {
 public:
  // The random stream is seed ^ salt: each test salts the same seeds.
  Differential(uint64_t seed, uint64_t salt, uint64_t universe_pages, size_t target_vmas)
      : seed_(seed), rng_(seed ^ salt), universe_(universe_pages), target_(target_vmas) {}

  // Runs n operations; returns false (after reporting) on the first mismatch.
  bool Run(int n) {
    for (int i = 0; i < n; ++i) {
      op_ = i;
      if (!Step()) {
        ADD_FAILURE() << "differential mismatch, seed " << seed_
                      << " (rerun with VMASHADOW_SEED=" << seed_ << "), op " << i << ": "
                      << failure_ << "\nlast operations:\n"
                      << FormatLog();
        return false;
      }
    }
    return true;
  }
  ~Differential() {
    while (!tree_.empty()) tree_.Erase(tree_.First());
  }
  uint64_t queries_found() const { return found_; }
  uint64_t queries_nogap() const { return nogap_; }
  size_t max_size() const { return max_size_; }

 private:
  uint64_t Rand(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_); }
  bool Chance(int percent) { return Rand(100) < static_cast<uint64_t>(percent); }

  // Addresses live in two clusters: near 0 and just below 2^64, so the
  // overflow corners get exercised too.
  uint64_t Addr(uint64_t page) const {
    return page < universe_ ? page * P : kMax - (2 * universe_ - page) * P + 1;
  }
  uint64_t RandomAddr() {
    const uint64_t page = Rand(2 * universe_);
    uint64_t a = Addr(page);
    if (Chance(10)) a += Rand(P);  // unaligned query addresses
    return a;
  }
  uint64_t RandomLimit() {
    const int r = static_cast<int>(Rand(20));
    if (r == 0) return 0;
    if (r == 1) return kMax;
    if (r == 2) return universe_ * P;  // the top of the low cluster
    return Addr(Rand(2 * universe_)) + (Chance(10) ? Rand(P) : 0);
  }

  // The op log: the last kLogSize operations, formatted only on failure.
  // fmt takes up to eight uint64_t arguments (use H for each).
  void Log(const char* fmt, std::initializer_list<uint64_t> values) {
    OpRecord& r = ring_[logged_++ % kLogSize];
    r.fmt = fmt;
    r.op = op_;
    size_t i = 0;
    for (uint64_t x : values) r.v[i++] = x;
  }
  std::string FormatLog() const {
    std::string out;
    const size_t first = logged_ > kLogSize ? logged_ - kLogSize : 0;
    for (size_t i = first; i < logged_; ++i) {
      const OpRecord& r = ring_[i % kLogSize];
      char buf[512];
      snprintf(buf, sizeof(buf), r.fmt, r.v[0], r.v[1], r.v[2], r.v[3], r.v[4], r.v[5], r.v[6],
               r.v[7]);
      out += "  op " + std::to_string(r.op) + ": " + buf + "\n";
    }
    return out;
  }
  bool Fail(const std::string& what) {
    failure_ = what;
    return false;
  }
  bool CheckTree() {
    if (const char* err = tree_.Validate()) return Fail(std::string("Validate: ") + err);
    if (tree_.size() != ref_.size()) return Fail("size differs");
    return true;
  }
  static std::string Hex(uint64_t x) {
    char buf[32];
    snprintf(buf, sizeof(buf), "%#" PRIx64, x);
    return buf;
  }
  static uint64_t S(const Vma* v) { return v != nullptr ? v->start : 0; }
  static uint64_t E(const Vma* v) { return v != nullptr ? v->end : 0; }
  static std::string Name(const Vma* v) {
    return v == nullptr ? "null" : "[" + Hex(v->start) + "," + Hex(v->end) + ")";
  }

  // Naive find_vma.
  const RefVma* RefFind(uint64_t addr, uint64_t* start) const {
    for (const auto& [s, r] : ref_) {
      if (r.end > addr) {
        *start = s;
        return &r;
      }
    }
    return nullptr;
  }

  bool Insert() {
    const uint64_t page = Rand(2 * universe_);
    const uint64_t max_pages = Chance(80) ? 8 : 64;
    uint64_t npages = 1 + Rand(max_pages);
    if (page < universe_) {
      npages = std::min(npages, universe_ - page);
    } else {
      npages = std::min(npages, 2 * universe_ - page - 1);  // end stays below 2^64
      if (npages == 0) return true;
    }
    const uint64_t start = Addr(page);
    const uint64_t end = start + npages * P;
    // Skip overlapping ranges (the tree's precondition).
    auto it = ref_.lower_bound(start);
    if (it != ref_.end() && it->first < end) return true;
    if (it != ref_.begin() && std::prev(it)->second.end > start) return true;
    uint64_t flags = 0;
    if (Chance(10)) flags = kVmGrowsdown;
    if (Chance(3)) flags = kVmShadowStack;
    Vma* v;
    if (!free_nodes_.empty()) {
      v = free_nodes_.back();
      free_nodes_.pop_back();
      *v = Vma();
    } else {
      nodes_.push_back(std::make_unique<Vma>());
      v = nodes_.back().get();
    }
    v->start = start;
    v->end = end;
    v->flags = flags;
    Log("Insert [" H "," H ") flags " H, {start, end, flags});
    tree_.Insert(v);
    ref_[start] = RefVma{end, flags, v};
    live_.push_back(v);
    if (flags != 0) ++guarded_count_;
    max_size_ = std::max(max_size_, ref_.size());
    return CheckTree();
  }

  bool Erase() {
    if (live_.empty()) return true;
    const size_t i = Rand(live_.size());
    Vma* v = live_[i];
    live_[i] = live_.back();
    live_.pop_back();
    Log("Erase [" H "," H ")", {v->start, v->end});
    ref_.erase(v->start);
    if (v->flags != 0) --guarded_count_;
    tree_.Erase(v);
    free_nodes_.push_back(v);
    return CheckTree();
  }

  bool SetBounds() {
    if (live_.empty()) return true;
    Vma* v = live_[Rand(live_.size())];
    auto it = ref_.find(v->start);
    if (it == ref_.end()) return Fail("live VMA missing from the reference");
    const uint64_t lo = it == ref_.begin() ? 0 : std::prev(it)->second.end;
    const uint64_t hi = std::next(it) == ref_.end() ? kMax - P + 1 : std::next(it)->first;
    // New start in [lo, end), new end in (new start, hi], page aligned, and
    // mostly small moves so shrink and grow both happen often.
    uint64_t ns = v->start;
    uint64_t ne = v->end;
    const uint64_t move = 1 + Rand(Chance(70) ? 4 : 64);
    if (Chance(50)) {  // start
      if (Chance(50)) {
        ns = v->start - std::min(move, (v->start - lo) / P) * P;
      } else {
        ns = v->start + std::min(move, (v->end - v->start) / P - 1) * P;
      }
    }
    if (Chance(50)) {  // end
      if (Chance(50)) {
        ne = v->end + std::min(move, (hi - v->end) / P) * P;
      } else {
        ne = v->end - std::min(move, (v->end - ns) / P - 1) * P;
      }
    }
    if (!(ns < ne) || ns < lo || ne > hi) return Fail("test bug: bad SetBounds range");
    Log("SetBounds [" H "," H ") -> [" H "," H ")", {v->start, v->end, ns, ne});
    RefVma r = it->second;
    ref_.erase(it);
    r.end = ne;
    ref_[ns] = r;
    tree_.SetBounds(v, ns, ne);
    // SetBounds defers its gap propagation: sometimes query before the
    // Validate() below (which would bring the gaps up to date itself), with
    // a length that just fits one of the two holes that changed.
    if (Chance(30)) {
      UnmappedAreaInfo info = RandomInfo();
      auto it2 = ref_.find(ns);
      const uint64_t before = ns - lo;
      const uint64_t after = (std::next(it2) == ref_.end() ? kMax : std::next(it2)->first) - ne;
      const uint64_t hole = Chance(50) ? before : after;
      if (hole > 0 && Chance(70)) {
        info.length = hole;
        info.align_mask = 0;
        if (Chance(50)) {
          info.low_limit = 0;
          info.high_limit = kMax;
        }
      }
      if (!GapOps(info)) return false;
    }
    return CheckTree();
  }

  bool FindOps() {
    const uint64_t addr = RandomAddr();
    uint64_t rs = 0;
    const RefVma* r = RefFind(addr, &rs);
    const Vma* expect = r != nullptr ? r->node : nullptr;
    Vma* got = tree_.FindVma(addr);
    Log("FindVma " H " -> [" H "," H ")", {addr, S(got), E(got)});
    if (got != expect) return Fail("FindVma: expected " + Name(expect));

    Vma* prev = reinterpret_cast<Vma*>(1);
    got = tree_.FindVmaPrev(addr, &prev);
    const Vma* expect_prev = nullptr;
    for (const auto& [s, rv] : ref_) {
      if (rv.end > addr) break;
      expect_prev = rv.node;
    }
    Log("FindVmaPrev " H " -> [" H "," H ") prev [" H "," H ")",
        {addr, S(got), E(got), S(prev), E(prev)});
    if (got != expect || prev != expect_prev) {
      return Fail("FindVmaPrev: expected " + Name(expect) + " prev " + Name(expect_prev));
    }

    uint64_t end = Chance(70) ? addr + (1 + Rand(32)) * P : RandomAddr();
    if (end < addr && Chance(50)) end = addr;
    got = tree_.FindVmaIntersection(addr, end);
    // Naive: the first VMA with end > addr, unless the range ends at or
    // before its start (find_vma_intersection() as written).
    const Vma* expect_i = (r != nullptr && end > rs) ? r->node : nullptr;
    Log("FindVmaIntersection " H "," H " -> [" H "," H ")", {addr, end, S(got), E(got)});
    if (got != expect_i) return Fail("FindVmaIntersection: expected " + Name(expect_i));
    if (addr < end) {  // and, for real ranges, an independent check
      bool any = false;
      for (const auto& [s, rv] : ref_) any |= s < end && rv.end > addr;
      if (any != (got != nullptr)) return Fail("FindVmaIntersection disagrees with a scan");
    }
    return true;
  }

  UnmappedAreaInfo RandomInfo() {
    UnmappedAreaInfo info;
    const int r = static_cast<int>(Rand(100));
    if (r < 2) {
      info.length = 0;
    } else if (r < 5) {
      info.length = kMax - Rand(4) * P;  // huge
    } else if (r < 8) {
      info.length = 1 + Rand(3 * P);  // unaligned
    } else {
      info.length = (1 + Rand(Chance(80) ? 16 : 256)) * P;
    }
    switch (Rand(5)) {
      case 0:
      case 1:
        info.align_mask = 0;
        break;
      case 2:
        info.align_mask = ((uint64_t{1} << (13 + Rand(8))) - 1) & kPageMask;
        break;
      case 3:
        info.align_mask = (uint64_t{1} << Rand(24)) - 1;  // any low mask
        break;
      default:
        info.align_mask = Chance(5) ? kMax : (2 << 20) - P;
        break;
    }
    info.align_offset = Chance(50) ? 0 : (Chance(80) ? Rand(1024) * P : Rand(kMax));
    info.low_limit = RandomLimit();
    info.high_limit = RandomLimit();
    if (info.low_limit > info.high_limit && Chance(90)) {
      std::swap(info.low_limit, info.high_limit);
    }
    switch (Rand(5)) {
      case 0:
        info.stack_guard_gap = 0;
        break;
      case 4:
        info.stack_guard_gap = Rand(64 * P);  // unaligned
        break;
      case 1:
        info.stack_guard_gap = P;
        break;
      case 2:
        info.stack_guard_gap = (1 + Rand(32)) * P;
        break;
      default:
        info.stack_guard_gap = 256 * P;
        break;
    }
    return info;
  }

  // What every result must satisfy, independently of how it was found.
  bool CheckPlacement(const char* what, bool topdown, const UnmappedAreaInfo& info, uint64_t a) {
    if (a == kNoGap) {
      ++nogap_;
      return true;
    }
    ++found_;
    const std::string name = what;
    if (a < info.low_limit) return Fail(name + ": result below low_limit");
    if (a + info.length < a || a + info.length > info.high_limit) {
      return Fail(name + ": result ends above high_limit");
    }
    // Rounding up by (offset - x) & mask aligns only for masks 2^k - 1 (the
    // kernel's masks are page multiples minus a page, with page-aligned x).
    const bool low_mask = (info.align_mask & (info.align_mask + 1)) == 0;
    if ((topdown || low_mask) && ((a - info.align_offset) & info.align_mask) != 0) {
      return Fail(name + ": misaligned");
    }
    auto it = ref_.lower_bound(a);
    if (it != ref_.end() && it->first < a + info.length) return Fail(name + ": overlaps a VMA");
    if (it != ref_.begin() && std::prev(it)->second.end > a) return Fail(name + ": overlaps");
    if (it != ref_.end() && (it->second.flags & (kVmGrowsdown | kVmShadowStack))) {
      const uint64_t sg = RefStartGap(it->first, it->second.flags, info.stack_guard_gap);
      // Top-down keeps clear of the start gap; bottom-up's test
      // (start_gap < addr + L - 1) allows the last byte to touch it.
      if (a + info.length > sg + (topdown ? 0 : 1)) {
        return Fail(name + ": intrudes on a stack guard gap");
      }
    }
    return true;
  }

  bool GapOps() { return GapOps(RandomInfo()); }

  bool GapOps(const UnmappedAreaInfo& info) {
    // Either search may be the first to see the tree after a mutation.
    const bool bottomup_first = Chance(50);
    uint64_t bu = bottomup_first ? tree_.UnmappedArea(info) : 0;
    const uint64_t td = tree_.UnmappedAreaTopdown(info);
    std::vector<Interval>& intervals = intervals_;
    FreeIntervals(ref_, intervals);
    const uint64_t td_ref = RefTopdown(intervals, info);
    Log("UnmappedAreaTopdown len " H " low " H " high " H " mask " H " off " H " guard " H " -> " H,
        {info.length, info.low_limit, info.high_limit, info.align_mask, info.align_offset,
         info.stack_guard_gap, td});
    if (td != td_ref) return Fail("UnmappedAreaTopdown: expected " + Hex(td_ref));
    if (!CheckPlacement("UnmappedAreaTopdown", true, info, td)) return false;
    if (!bottomup_first) bu = tree_.UnmappedArea(info);
    const uint64_t bu_ref = RefBottomup(intervals, info);
    Log("UnmappedArea (same info) -> " H, {bu});
    if (bu != bu_ref) return Fail("UnmappedArea: expected " + Hex(bu_ref));
    if (!CheckPlacement("UnmappedArea", false, info, bu)) return false;
    // Without alignment and guard gaps the top-down result is the highest
    // address that fits at all, the bottom-up one the lowest: check that
    // against a scan of the holes.
    const bool guarded = guarded_count_ > 0;
    if (!guarded && info.align_mask == 0 && info.length != 0) {
      {
        uint64_t best = kNoGap;
        uint64_t lowest = kNoGap;
        for (const Interval& iv : intervals) {
          const uint64_t x = std::max(iv.start, info.low_limit);
          const uint64_t y = std::min(iv.end, info.high_limit);
          if (y > x && y - x >= info.length) {
            best = y - info.length;
            if (lowest == kNoGap) lowest = x;
          }
        }
        if (best != td) return Fail("UnmappedAreaTopdown is not the highest fit " + Hex(best));
        if (lowest != bu) return Fail("UnmappedArea is not the lowest fit " + Hex(lowest));
      }
    }
    const bool low_mask = (info.align_mask & (info.align_mask + 1)) == 0;
    if (!guarded && low_mask && td != kNoGap && bu != kNoGap && bu > td) {
      return Fail("bottom-up result above top-down");
    }
    return true;
  }

  bool Step() {
    // Keep the tree near its target size: insert more when small.
    const int ins = ref_.size() < target_ ? 30 : 15;
    const int r = static_cast<int>(Rand(100));
    if (r < ins) return Insert();
    if (r < 40) return Erase();
    if (r < 55) return SetBounds();
    if (r < 75) return FindOps();
    return GapOps();
  }

  uint64_t seed_;
  std::mt19937_64 rng_;
  uint64_t universe_;
  size_t target_;
  VmaTree tree_;
  RefMap ref_;
  std::vector<std::unique_ptr<Vma>> nodes_;
  std::vector<Vma*> free_nodes_;
  std::vector<Vma*> live_;
  struct OpRecord {
    const char* fmt = "";
    int op = 0;
    uint64_t v[8] = {};
  };
  static constexpr size_t kLogSize = 50;
  std::array<OpRecord, kLogSize> ring_;
  size_t logged_ = 0;
  int op_ = 0;
  size_t guarded_count_ = 0;
  std::vector<Interval> intervals_;
  std::string failure_;
  uint64_t found_ = 0;
  uint64_t nogap_ = 0;
  size_t max_size_ = 0;
};

std::vector<uint64_t> Seeds() {
  std::vector<uint64_t> seeds = {1, 0x5eed2024, 0xdeadbeefcafe};
  if (const char* env = std::getenv("VMASHADOW_SEED"))
    seeds.push_back(std::strtoull(env, nullptr, 0));
  return seeds;
}

// A dense small space: many zero and one-page gaps, frequent clipping.
TEST(VmaTreeDifferentialTest, DenseSmallSpace) {
  for (uint64_t seed : Seeds()) {
    Differential d(seed, 0, 2048, 200);
    ASSERT_TRUE(d.Run(200000)) << "seed " << seed;
    EXPECT_GT(d.queries_found(), 1000u) << "seed " << seed;
    EXPECT_GT(d.queries_nogap(), 1000u) << "seed " << seed;
    EXPECT_GT(d.max_size(), 100u) << "seed " << seed;
  }
}

// A larger tree (deeper rebalancing paths, more log traffic).
TEST(VmaTreeDifferentialTest, LargerTree) {
  for (uint64_t seed : Seeds()) {
    Differential d(seed, 0x9e3779b97f4a7c15, 32768, 1000);
    ASSERT_TRUE(d.Run(200000)) << "seed " << seed;
    EXPECT_GT(d.max_size(), 700u) << "seed " << seed;
  }
}

#undef H

}  // namespace
}  // namespace vmashadow
