// core_bench.cc — benchmarks of the core hot paths at 100, 1,000 and 65,530
// VMAs (the default vm.max_map_count).
//
// VmaTree: FindVma at random addresses (and in address order), and
// UnmappedAreaTopdown where only about 2% of the holes are large enough,
// under a random high limit (a plain ordered set would scan; the augmented
// tree should stay logarithmic).
// AddressSpace: a non-fixed one-page anonymous mmap followed by its munmap,
// and an mprotect of one page in the middle of a RW VMA to R and back (split
// into three, then merge back into one); one iteration is two syscalls, so
// items_per_second counts syscalls. The target: each operation under
// 1 us at 65,530 VMAs, and at most ~2.5x slower than at 1,000.
//
// Run with `meson test -C BUILD --benchmark -v`.
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include <benchmark/benchmark.h>

#include "core/abi/kernel_profile.h"
#include "core/abi/linux_abi.h"
#include "core/mm/address_space.h"
#include "core/mm/arena.h"
#include "core/mm/mm_types.h"
#include "core/mm/vma_tree.h"

namespace vmashadow {
namespace {

constexpr uint64_t P = kPageSize;
constexpr uint64_t kBase = uint64_t{0x10000000000};
constexpr int kQueries = 4096;  // precomputed random inputs, cycled

// A VmaTree over nodes it owns.
struct TreeHolder {
  std::vector<Vma> nodes;
  VmaTree tree;
  explicit TreeHolder(size_t n) : nodes(n) {}
  ~TreeHolder() {
    while (!tree.empty()) tree.Erase(tree.First());
  }
};

// n one-page VMAs separated by one-page holes.
void BM_FindVma(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  TreeHolder h(n);
  for (size_t i = 0; i < n; ++i) {
    h.nodes[i].start = kBase + 2 * i * P;
    h.nodes[i].end = h.nodes[i].start + P;
    h.tree.Insert(&h.nodes[i]);
  }
  std::mt19937_64 rng(1);
  std::vector<uint64_t> addrs(kQueries);
  for (uint64_t& a : addrs) a = kBase + rng() % (2 * n * P);
  size_t i = 0;
  uint64_t hits = 0;
  for (auto _ : state) {
    const Vma* v = h.tree.FindVma(addrs[i++ & (kQueries - 1)]);
    benchmark::DoNotOptimize(v);
    hits += v != nullptr;
  }
  if (const char* err = h.tree.Validate()) state.SkipWithError(err);
  benchmark::DoNotOptimize(hits);
}

// The same tree, looked up in address order (each lookup lands in the next
// VMA): the path stays mostly cached, so this shows the growth of the tree
// depth alone, where BM_FindVma adds the cache misses of random lookups.
void BM_FindVmaSequential(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  TreeHolder h(n);
  for (size_t i = 0; i < n; ++i) {
    h.nodes[i].start = kBase + 2 * i * P;
    h.nodes[i].end = h.nodes[i].start + P;
    h.tree.Insert(&h.nodes[i]);
  }
  size_t i = 0;
  uint64_t hits = 0;
  for (auto _ : state) {
    const Vma* v = h.tree.FindVma(kBase + 2 * i * P);
    if (++i == n) i = 0;
    benchmark::DoNotOptimize(v);
    hits += v != nullptr;
  }
  benchmark::DoNotOptimize(hits);
}

// n one-page VMAs; the hole before each is one page, except for ~2% where it
// is 8 pages. The request is 4 pages under a random high limit, so only the
// large holes fit and the search must skip most of the tree.
void BM_UnmappedAreaTopdown(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  TreeHolder h(n);
  std::mt19937_64 rng(2);
  uint64_t addr = kBase;
  size_t large = 0;
  for (size_t i = 0; i < n; ++i) {
    const bool big = rng() % 100 < 2;
    large += big;
    addr += (big ? 8 : 1) * P;
    h.nodes[i].start = addr;
    h.nodes[i].end = addr + P;
    h.tree.Insert(&h.nodes[i]);
    addr += P;
  }
  const uint64_t top = addr;
  std::vector<UnmappedAreaInfo> infos(kQueries);
  for (UnmappedAreaInfo& info : infos) {
    info.length = 4 * P;
    info.low_limit = P;
    info.high_limit = kBase + rng() % (top - kBase);
  }
  size_t i = 0;
  uint64_t found = 0;
  for (auto _ : state) {
    const uint64_t r = h.tree.UnmappedAreaTopdown(infos[i++ & (kQueries - 1)]);
    benchmark::DoNotOptimize(r);
    found += r != kNoGap;
  }
  state.counters["fitting_holes"] = static_cast<double>(large);
  state.counters["found_ratio"] =
      static_cast<double>(found) / static_cast<double>(state.iterations());
}

// An AddressSpace with n anonymous RW VMAs of three pages each, separated by
// one-page holes, packed just below mmap_base with one free page on top.
struct SpaceHolder {
  static constexpr uint64_t kMmapBase = 0x7f0000000000;
  std::vector<char> buffer;
  std::unique_ptr<Arena> arena;
  std::unique_ptr<AddressSpace> as;
  std::vector<uint64_t> starts;

  // Returns nullptr, or what went wrong.
  const char* Build(size_t n) {
    buffer.assign(64 << 20, 0);
    arena = std::make_unique<Arena>(buffer.data(), buffer.size());
    MmParams params;
    params.mmap_base = kMmapBase;
    params.max_map_count = 1 << 20;
    as = std::make_unique<AddressSpace>(arena.get(), DefaultKernelProfile(), params);
    for (size_t i = 0; i < n; ++i) {
      MapArgs m;
      m.addr = kMmapBase - (n - i) * 4 * P;  // the last ends at mmap_base - P
      m.len = 3 * P;
      m.prot = abi::kProtRead | abi::kProtWrite;
      m.flags = abi::kMapPrivate | abi::kMapAnonymous | abi::kMapFixedNoreplace;
      const Outcome o = as->Map(m);
      if (!o.ok() || static_cast<uint64_t>(o.ret) != m.addr) return "setup Map failed";
      starts.push_back(m.addr);
    }
    if (as->map_count() != n) return "setup: VMAs merged or missing";
    return as->Validate();
  }
};

void BM_MapUnmap(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  SpaceHolder s;
  if (const char* err = s.Build(n)) {
    state.SkipWithError(err);
    return;
  }
  MapArgs m;
  m.len = P;
  m.prot = abi::kProtRead | abi::kProtWrite;
  m.flags = abi::kMapPrivate | abi::kMapAnonymous;
  bool ok = true;
  for (auto _ : state) {
    const Outcome o = s.as->Map(m);
    const Outcome u = s.as->Unmap(static_cast<uint64_t>(o.ret), P);
    ok &= o.ok() && u.ok();
  }
  state.SetItemsProcessed(2 * state.iterations());  // syscalls
  if (!ok) {
    state.SkipWithError("Map or Unmap failed");
  } else if (s.as->map_count() != n) {
    state.SkipWithError("map_count changed");
  } else if (const char* err = s.as->Validate()) {
    state.SkipWithError(err);
  }
}

void BM_ProtectSplitMerge(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  SpaceHolder s;
  if (const char* err = s.Build(n)) {
    state.SkipWithError(err);
    return;
  }
  std::mt19937_64 rng(3);
  std::vector<uint64_t> targets(kQueries);
  for (uint64_t& t : targets) t = s.starts[rng() % n] + P;  // the middle page
  size_t i = 0;
  bool ok = true;
  for (auto _ : state) {
    const uint64_t t = targets[i++ & (kQueries - 1)];
    const Outcome a = s.as->Protect(t, P, abi::kProtRead);
    const Outcome b = s.as->Protect(t, P, abi::kProtRead | abi::kProtWrite);
    ok &= a.ok() && b.ok();
  }
  state.SetItemsProcessed(2 * state.iterations());  // syscalls
  if (!ok) {
    state.SkipWithError("Protect failed");
  } else if (s.as->map_count() != n) {
    state.SkipWithError("VMAs did not merge back");
  } else if (const char* err = s.as->Validate()) {
    state.SkipWithError(err);
  }
}

BENCHMARK(BM_FindVma)->Arg(100)->Arg(1000)->Arg(65530);
BENCHMARK(BM_FindVmaSequential)->Arg(100)->Arg(1000)->Arg(65530);
BENCHMARK(BM_UnmappedAreaTopdown)->Arg(100)->Arg(1000)->Arg(65530);
BENCHMARK(BM_MapUnmap)->Arg(100)->Arg(1000)->Arg(65530);
BENCHMARK(BM_ProtectSplitMerge)->Arg(100)->Arg(1000)->Arg(65530);

}  // namespace
}  // namespace vmashadow

BENCHMARK_MAIN();
