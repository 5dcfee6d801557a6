// arena_test.cc — tests of Arena (core/mm/arena.h): alignment, size classes,
// reuse through the free lists, exhaustion, the byte counters, and a random
// allocate/free workload checked against a map of live blocks (no overlap,
// contents intact, everything inside the buffer).
#include <cstdint>
#include <cstring>
#include <iterator>
#include <map>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "core/mm/arena.h"

namespace vmashadow {
namespace {

// A cache-line aligned buffer for an arena (the arena aligns fresh blocks
// to min(size, 64) in absolute terms, so this keeps the layout predictable).
class Buffer {
 public:
  explicit Buffer(size_t size) : storage_(size / 64 + 1) {}
  void* data() { return storage_.data(); }
  size_t size() const { return (storage_.size() - 1) * 64; }
  bool Contains(const void* p, size_t n) const {
    const char* b = reinterpret_cast<const char*>(storage_.data());
    const char* c = static_cast<const char*>(p);
    return c >= b && c + n <= b + size();
  }

 private:
  struct alignas(64) Chunk {
    char bytes[64];
  };
  std::vector<Chunk> storage_;
};

size_t ClassBytes(size_t size) {
  size_t b = 16;
  while (b < size) b *= 2;
  return b;
}

TEST(ArenaTest, AllocationsAreAlignedAndDistinct) {
  Buffer buf(1 << 20);
  Arena a(buf.data(), buf.size());
  EXPECT_EQ(a.capacity(), buf.size());
  std::vector<std::pair<char*, size_t>> blocks;
  for (size_t size : {1, 15, 16, 17, 31, 32, 33, 100, 200, 1000, 4096, 5000, 65536}) {
    void* p = a.Allocate(size);
    ASSERT_NE(p, nullptr) << size;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 16, 0u) << size;
    EXPECT_TRUE(buf.Contains(p, size)) << size;
    memset(p, 0xab, size);  // usable in full
    blocks.push_back({static_cast<char*>(p), ClassBytes(size)});
  }
  for (size_t i = 0; i < blocks.size(); ++i) {
    for (size_t j = i + 1; j < blocks.size(); ++j) {
      const bool disjoint = blocks[i].first + blocks[i].second <= blocks[j].first ||
                            blocks[j].first + blocks[j].second <= blocks[i].first;
      EXPECT_TRUE(disjoint) << i << " " << j;
    }
  }
}

TEST(ArenaTest, SizeClassesRoundToPowersOfTwo) {
  Buffer buf(1 << 20);
  Arena a(buf.data(), buf.size());
  EXPECT_EQ(a.bytes_used(), 0u);
  EXPECT_EQ(a.bytes_reserved(), 0u);
  void* p = a.Allocate(17);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(a.bytes_used(), 32u);
  EXPECT_EQ(a.bytes_reserved(), 32u);
  void* q = a.Allocate(100);
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(a.bytes_used(), 32u + 128u);
  // Bump order; the 128-byte block starts on the next cache line.
  EXPECT_EQ(static_cast<char*>(q) - static_cast<char*>(p), 64);
  void* z = a.Allocate(0);  // size 0 still gives a distinct 16-byte block
  ASSERT_NE(z, nullptr);
  EXPECT_EQ(a.bytes_used(), 32u + 128u + 16u);
  a.Free(z, 0);
  a.Free(q, 100);
  a.Free(p, 17);
  EXPECT_EQ(a.bytes_used(), 0u);
  EXPECT_EQ(a.bytes_reserved(), 64u + 128u + 16u);  // high-water mark stays
}

TEST(ArenaTest, FreedBlocksAreReusedWithinTheirClass) {
  Buffer buf(1 << 20);
  Arena a(buf.data(), buf.size());
  void* p = a.Allocate(40);  // 64-byte class
  void* q = a.Allocate(64);  // same class
  ASSERT_NE(p, nullptr);
  ASSERT_NE(q, nullptr);
  const size_t reserved = a.bytes_reserved();
  a.Free(p, 40);
  a.Free(q, 64);
  // LIFO reuse, any size in the same class, no new bump.
  EXPECT_EQ(a.Allocate(33), q);
  EXPECT_EQ(a.Allocate(64), p);
  EXPECT_EQ(a.bytes_reserved(), reserved);
  // A different class does not take them.
  void* r = a.Allocate(40);
  ASSERT_NE(r, nullptr);
  EXPECT_NE(r, p);
  EXPECT_NE(r, q);
  a.Free(r, 40);
  void* s = a.Allocate(65);  // 128-byte class: fresh
  EXPECT_NE(s, r);
  EXPECT_GT(a.bytes_reserved(), reserved);
}

TEST(ArenaTest, TooLargeAndNullFree) {
  Buffer buf(1 << 20);
  Arena a(buf.data(), buf.size());
  EXPECT_EQ(a.Allocate(Arena::kMaxAlloc + 1), nullptr);
  EXPECT_EQ(a.Allocate(SIZE_MAX), nullptr);
  EXPECT_EQ(a.bytes_reserved(), 0u);
  void* p = a.Allocate(Arena::kMaxAlloc);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(a.bytes_used(), Arena::kMaxAlloc);
  a.Free(nullptr, 100);  // no-op
  EXPECT_EQ(a.bytes_used(), Arena::kMaxAlloc);
}

TEST(ArenaTest, ExhaustionReturnsNullAndRecovers) {
  Buffer buf(4096);
  Arena a(buf.data(), buf.size());
  std::vector<void*> blocks;
  for (;;) {
    void* p = a.Allocate(1000);  // 1 KiB class: exactly 4 fit
    if (p == nullptr) break;
    blocks.push_back(p);
    ASSERT_LE(blocks.size(), 4u);
  }
  EXPECT_EQ(blocks.size(), 4u);
  EXPECT_EQ(a.bytes_reserved(), 4096u);
  // Smaller classes fail too once the bump pointer is at the end.
  EXPECT_EQ(a.Allocate(16), nullptr);
  EXPECT_EQ(a.bytes_used(), 4096u);
  // Freeing one lets the same class succeed again (and only that class).
  a.Free(blocks[2], 1000);
  EXPECT_EQ(a.Allocate(16), nullptr);
  EXPECT_EQ(a.Allocate(700), blocks[2]);
  EXPECT_EQ(a.Allocate(700), nullptr);
}

TEST(ArenaTest, FreshBlocksAreAlignedToTheirClassUpToACacheLine) {
  Buffer buf(1 << 16);
  Arena a(buf.data(), buf.size());
  for (size_t size : {16u, 100u, 16u, 120u, 32u, 4000u, 16u, 64u}) {
    void* p = a.Allocate(size);
    ASSERT_NE(p, nullptr);
    const size_t align = ClassBytes(size) < 64 ? ClassBytes(size) : 64;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % align, 0u) << size;
  }
}

TEST(ArenaTest, PartialClassAtTheEndIsNotHandedOut) {
  Buffer buf(4096);
  Arena a(buf.data(), 100);  // not a multiple of the class
  void* p = a.Allocate(64);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(a.Allocate(64), nullptr);  // 36 bytes left: a 64-byte block must not fit
  void* q = a.Allocate(32);
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(static_cast<char*>(q) - static_cast<char*>(p), 64);
  EXPECT_EQ(a.Allocate(16), nullptr);  // 4 bytes left
  EXPECT_EQ(a.bytes_reserved(), 96u);
}

TEST(ArenaTest, RandomWorkloadKeepsBlocksIntact) {
  Buffer buf(8 << 20);
  Arena a(buf.data(), buf.size());
  std::mt19937_64 rng(12345);
  struct Block {
    size_t size;
    uint8_t fill;
  };
  std::map<char*, Block> live;
  size_t expect_used = 0;
  for (int i = 0; i < 100000; ++i) {
    const bool alloc = live.empty() || rng() % 100 < 55;
    if (alloc) {
      size_t size = rng() % 100 < 90 ? 1 + rng() % 300 : 1 + rng() % Arena::kMaxAlloc;
      char* p = static_cast<char*>(a.Allocate(size));
      if (p == nullptr) {
        ASSERT_GT(a.bytes_reserved() + ClassBytes(size), a.capacity()) << "spurious failure";
        continue;
      }
      ASSERT_EQ(reinterpret_cast<uintptr_t>(p) % 16, 0u);
      ASSERT_TRUE(buf.Contains(p, ClassBytes(size)));
      // No overlap with the neighbours (by class size).
      auto next = live.lower_bound(p);
      if (next != live.end()) {
        ASSERT_LE(p + ClassBytes(size), next->first);
      }
      if (next != live.begin()) {
        auto prev = std::prev(next);
        ASSERT_LE(prev->first + ClassBytes(prev->second.size), p);
      }
      const uint8_t fill = static_cast<uint8_t>(rng());
      memset(p, fill, size);
      live[p] = Block{size, fill};
      expect_used += ClassBytes(size);
    } else {
      auto it = live.begin();
      std::advance(it, rng() % std::min<size_t>(live.size(), 64));
      for (size_t k = 0; k < it->second.size; ++k) {
        ASSERT_EQ(static_cast<uint8_t>(it->first[k]), it->second.fill) << "block corrupted";
      }
      a.Free(it->first, it->second.size);
      expect_used -= ClassBytes(it->second.size);
      live.erase(it);
    }
    ASSERT_EQ(a.bytes_used(), expect_used);
    ASSERT_LE(a.bytes_reserved(), a.capacity());
  }
  // Every block still holds its pattern.
  for (const auto& [p, b] : live) {
    for (size_t k = 0; k < b.size; ++k) ASSERT_EQ(static_cast<uint8_t>(p[k]), b.fill);
  }
}

}  // namespace
}  // namespace vmashadow
