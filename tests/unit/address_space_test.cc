// address_space_test.cc — focused tests of AddressSpace: placement, brk,
// mremap paths, errno order, profiles. Layouts are drawn one character per
// page from a base: '.' unmapped, equal letters one VMA (the kernel's
// tools/testing/vma style). The spec scenarios S1–S35 are in
// scenario_test.cc; random comparisons in differential_test.cc.
#include "core/mm/address_space.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/abi/kernel_profile.h"
#include "core/abi/linux_abi.h"
#include "core/mm/apply.h"
#include "core/mm/madvise.h"
#include "core/mm/vma.h"

namespace vmashadow {
namespace {

using namespace abi;

constexpr uint64_t kBase = 0x100000000;  // 4 GiB: far from everything
constexpr uint64_t kMmapBase = 0x7f0000000000;
constexpr int kRw = kProtRead | kProtWrite;
constexpr int kAnon = kMapPrivate | kMapAnonymous;

class Model {
 public:
  explicit Model(const char* profile = "6.18-fc")
      : buf_(8 << 20),
        arena_(buf_.data(), buf_.size()),
        as_(&arena_, *Profile(profile), Params()) {}

  static const KernelProfile* Profile(const char* name) {
    const KernelProfile* p = FindKernelProfile(name);
    EXPECT_NE(p, nullptr) << name;
    return p;
  }
  static MmParams Params() {
    MmParams p;
    p.mmap_base = kMmapBase;
    return p;
  }

  AddressSpace& as() { return as_; }
  static uint64_t P(uint64_t n) { return kBase + n * kPageSize; }

  int64_t Fixed(uint64_t page, uint64_t pages, int prot, int flags = kAnon) {
    MapArgs a;
    a.addr = P(page);
    a.len = pages * kPageSize;
    a.prot = prot;
    a.flags = flags | kMapFixedNoreplace;
    return Check(as_.Map(a));
  }
  int64_t Check(const Outcome& o) {
    const char* err = as_.Validate();
    EXPECT_EQ(err, nullptr) << err;
    return o.ret;
  }

  // The layout of pages [0, n) from kBase.
  std::string Draw(uint64_t n) {
    std::string s(n, '.');
    char letter = 'A';
    for (const Vma* v = as_.tree().First(); v != nullptr; v = v->next) {
      if (v->end <= P(0) || v->start >= P(n)) continue;
      for (uint64_t a = v->start; a < v->end; a += kPageSize) {
        if (a >= P(0) && a < P(n)) s[(a - P(0)) / kPageSize] = letter;
      }
      letter = letter == 'Z' ? 'a' : static_cast<char>(letter + 1);
    }
    return s;
  }

 private:
  std::vector<char> buf_;
  Arena arena_;
  AddressSpace as_;
};

TEST(AddressSpace, NewPrivateAnonymousMappingsMergeBothWays) {
  Model m;
  ASSERT_EQ(m.Fixed(1, 1, kRw), static_cast<int64_t>(Model::P(1)));
  ASSERT_EQ(m.Fixed(2, 1, kRw), static_cast<int64_t>(Model::P(2)));
  ASSERT_EQ(m.Fixed(0, 1, kRw), static_cast<int64_t>(Model::P(0)));
  EXPECT_EQ(m.Draw(5), "AAA..");
  ASSERT_GT(m.Fixed(4, 1, kRw), 0);
  EXPECT_EQ(m.Draw(5), "AAA.B");
  ASSERT_GT(m.Fixed(3, 1, kRw), 0);
  EXPECT_EQ(m.Draw(5), "AAAAA");
  EXPECT_EQ(m.as().map_count(), 1u);
}

TEST(AddressSpace, TopDownPlacementTakesTheHighestFit) {
  Model m;
  MapArgs a;
  a.len = kPageSize;
  a.prot = kRw;
  a.flags = kAnon;
  const Outcome first = m.as().Map(a);
  EXPECT_EQ(first.ret, static_cast<int64_t>(kMmapBase - kPageSize));
  EXPECT_TRUE(first.placement_predicted);
  const Outcome second = m.as().Map(a);
  EXPECT_EQ(second.ret, static_cast<int64_t>(kMmapBase - 2 * kPageSize));
  EXPECT_EQ(m.as().map_count(), 1u);  // they merged
  // A hole above is refilled by a request that fits it.
  ASSERT_EQ(m.as().Unmap(kMmapBase - kPageSize, kPageSize).ret, 0);
  ASSERT_EQ(m.as().Map(a).ret, static_cast<int64_t>(kMmapBase - kPageSize));
}

TEST(AddressSpace, AnonymousThpAlignment) {
  Model m;
  MapArgs probe;
  probe.len = kPageSize;
  probe.prot = kRw;
  probe.flags = kAnon;
  const uint64_t top = static_cast<uint64_t>(m.as().Map(probe).ret);
  // 2 MiB: the highest 2 MiB-aligned address with len+2 MiB of room below top.
  MapArgs a = probe;
  a.len = kPmdSize;
  const uint64_t x = static_cast<uint64_t>(m.as().Map(a).ret);
  EXPECT_EQ(x % kPmdSize, 0u);
  EXPECT_EQ(x, (top - kPmdSize) & ~(kPmdSize - 1));
  // 2 MiB + 4 KiB: not aligned, directly below.
  a.len = kPmdSize + kPageSize;
  const uint64_t y = static_cast<uint64_t>(m.as().Map(a).ret);
  EXPECT_EQ(y, x - a.len);
  // With a hint: no alignment.
  a.len = kPmdSize;
  a.addr = 0x200000000;
  EXPECT_EQ(m.as().Map(a).ret, 0x200000000);
}

TEST(AddressSpace, TopDownFailureFallsBackToBottomUpFromTheLegacyBase) {
  // mmap_base so low that nothing fits below it: arch_get_unmapped_area()
  // takes over, searching upwards from mmap_legacy_base.
  std::vector<char> buf(1 << 20);
  Arena arena(buf.data(), buf.size());
  MmParams p;
  p.mmap_base = 0x20000;  // only 0x10000..0x20000 below it
  p.mmap_legacy_base = 0x2aaaaaaab000;
  AddressSpace as(&arena, DefaultKernelProfile(), p);
  MapArgs a;
  a.len = 0x8000;
  a.prot = kRw;
  a.flags = kAnon;
  EXPECT_EQ(as.Map(a).ret, 0x18000);  // still fits top-down
  a.len = 0x10000;
  EXPECT_EQ(as.Map(a).ret, 0x2aaaaaaab000);  // does not: bottom-up
  EXPECT_EQ(as.Map(a).ret, 0x2aaaaaabb000);  // the lowest gap above it
  EXPECT_EQ(as.map_count(), 2u);             // the two bottom-up ones merged
  // MAP_32BIT searches [1 GiB, 2 GiB) bottom-up (the kernel randomises the
  // window start per call; without the kernel's answer the model uses 1 GiB).
  a.flags = kAnon | kMap32Bit;
  EXPECT_EQ(as.Map(a).ret, 0x40000000);
  EXPECT_EQ(as.Validate(), nullptr);
}

TEST(AddressSpace, HintBelowMinAddrIsRaised) {
  Model m;
  MapArgs a;
  a.addr = 0x1000;
  a.len = kPageSize;
  a.prot = kRw;
  a.flags = kAnon;
  EXPECT_EQ(m.as().Map(a).ret, 0x10000);
  // 0x10000 is taken now: the next one goes top-down.
  EXPECT_EQ(m.as().Map(a).ret, static_cast<int64_t>(kMmapBase - kPageSize));
}

TEST(AddressSpace, MmapErrnoOrder) {
  Model m;
  MapArgs a;
  a.len = kPageSize;
  a.prot = kRw;
  a.flags = kAnon;
  a.offset = 1;
  EXPECT_EQ(m.as().Map(a).ret, -EINVAL);  // offset first
  a.offset = 0;
  a.flags = kMapPrivate;  // no fd
  EXPECT_EQ(m.as().Map(a).ret, -EBADF);
  a.flags = kAnon;
  a.len = 0;
  EXPECT_EQ(m.as().Map(a).ret, -EINVAL);
  a.len = ~uint64_t{0} - 100;
  EXPECT_EQ(m.as().Map(a).ret, -ENOMEM);  // PAGE_ALIGN wraps to 0
  a.len = kPageSize;
  a.flags = kMapAnonymous;  // no type
  EXPECT_EQ(m.as().Map(a).ret, -EINVAL);
  a.flags = kMapSharedValidate | kMapAnonymous;
  EXPECT_EQ(m.as().Map(a).ret, -EINVAL);
  a.flags = kAnon | kMapFixed;
  a.addr = Model::P(0) + 1;
  EXPECT_EQ(m.as().Map(a).ret, -EINVAL);
  a.addr = 0x7ffffffff000;
  EXPECT_EQ(m.as().Map(a).ret, -ENOMEM);
}

TEST(AddressSpace, MunmapPunchesAndNeverMerges) {
  Model m;
  ASSERT_GT(m.Fixed(0, 4, kRw), 0);
  EXPECT_EQ(m.Check(m.as().Unmap(Model::P(1), 1)), 0);
  EXPECT_EQ(m.Draw(5), "A.BB.");
  EXPECT_EQ(m.Check(m.as().Unmap(Model::P(1) + 1, kPageSize)), -EINVAL);
  EXPECT_EQ(m.Check(m.as().Unmap(Model::P(1), 0)), -EINVAL);
  EXPECT_EQ(m.Check(m.as().Unmap(Model::P(10), kPageSize)), 0);
  // Mapping the hole again merges all three (new-range merge).
  ASSERT_GT(m.Fixed(1, 1, kRw), 0);
  EXPECT_EQ(m.Draw(5), "AAAA.");
}

TEST(AddressSpace, MprotectAccountEditsDecideMerges) {
  // S6: RW -> R drops VM_ACCOUNT on an unfaulted VMA but not a faulted one.
  Model m;
  ASSERT_GT(m.Fixed(0, 1, kRw), 0);
  ASSERT_EQ(m.Check(m.as().Protect(Model::P(0), kPageSize, kProtRead)), 0);
  ASSERT_GT(m.Fixed(1, 1, kRw), 0);
  ASSERT_EQ(m.Check(m.as().Touch(Model::P(1), true)), 0);
  ASSERT_EQ(m.Check(m.as().Protect(Model::P(1), kPageSize, kProtRead)), 0);
  EXPECT_EQ(m.Draw(2), "AB");
  EXPECT_FALSE(m.as().FindVma(Model::P(0))->flags & kVmAccount);
  EXPECT_TRUE(m.as().FindVma(Model::P(1))->flags & kVmAccount);
}

TEST(AddressSpace, AnonVmaRuleDiffersBetweenProfiles) {
  // S5: NORESERVE, unfaulted R next to faulted RW; mprotect R merges on 6.15+.
  for (const char* name : {"6.12", "6.18"}) {
    Model m(name);
    ASSERT_GT(m.Fixed(0, 1, kRw, kAnon | kMapNoreserve), 0);
    ASSERT_EQ(m.Check(m.as().Protect(Model::P(0), kPageSize, kProtRead)), 0);
    ASSERT_GT(m.Fixed(1, 1, kRw, kAnon | kMapNoreserve), 0);
    ASSERT_EQ(m.Check(m.as().Touch(Model::P(1), true)), 0);
    ASSERT_EQ(m.Check(m.as().Protect(Model::P(1), kPageSize, kProtRead)), 0);
    EXPECT_EQ(m.Draw(2), std::string(name) == "6.12" ? "AB" : "AA") << name;
  }
}

TEST(AddressSpace, ForkChildStopsMerging) {
  Model m;
  ASSERT_GT(m.Fixed(0, 1, kRw), 0);
  ASSERT_EQ(m.Check(m.as().Touch(Model::P(0), true)), 0);
  m.as().ForkChild();
  ASSERT_GT(m.Fixed(1, 1, kRw), 0);
  EXPECT_EQ(m.Draw(2), "AB");
}

// mm::WhyNotMergeable() explains the pairs the merge paths left apart, with
// the same rule they decided by.
TEST(AddressSpace, WhyNotMergeableNamesTheRuleThatKeptNeighboursApart) {
  Model m;
  const KernelProfile& prof = m.as().profile();
  auto why = [&](uint64_t page, uint64_t* diff = nullptr) {
    const Vma* a = m.as().FindVma(Model::P(page));
    EXPECT_TRUE(a != nullptr && a->next != nullptr && a->end == a->next->start);
    return mm::WhyNotMergeable(prof, *a, *a->next, diff);
  };
  // Permissions: the differing bit is reported.
  ASSERT_GT(m.Fixed(0, 1, kRw), 0);
  ASSERT_GT(m.Fixed(1, 1, kProtRead), 0);
  EXPECT_EQ(m.Draw(2), "AB");
  uint64_t diff = 0;
  EXPECT_EQ(why(0, &diff), mm::MergeRefusal::kFlags);
  EXPECT_EQ(diff, uint64_t{kVmWrite | kVmAccount});
  // Two faulted neighbours: two anon_vmas.
  ASSERT_GT(m.Fixed(4, 1, kRw), 0);
  ASSERT_EQ(m.Check(m.as().Touch(Model::P(4), true)), 0);
  ASSERT_GT(m.Fixed(6, 1, kRw), 0);
  ASSERT_EQ(m.Check(m.as().Touch(Model::P(6), true)), 0);
  ASSERT_GT(m.Fixed(5, 1, kRw), 0);  // merges left only
  EXPECT_EQ(m.Draw(7).substr(4), "CCD");
  EXPECT_EQ(why(5), mm::MergeRefusal::kAnonVma);
  // Two whole VMAs of one file whose vm_ops has close(): joining them would
  // remove one, which the kernel refuses.
  FileDesc fd;
  fd.id = 7;
  fd.inode = 12;
  fd.has_close = true;
  fd.path = "/dev/some_driver";
  for (uint64_t page : {20, 21}) {
    VmaSeed seed;
    seed.start = Model::P(page);
    seed.end = Model::P(page + 1);
    seed.pgoff = page;
    seed.flags = kVmRead | kVmMayRead | kVmShared | kVmMayShare;
    seed.file = &fd;
    ASSERT_EQ(m.as().SeedVma(seed), 0);
  }
  EXPECT_EQ(why(20), mm::MergeRefusal::kVmOpsClose);
  // Fork child against an unfaulted neighbour.
  Model f;
  ASSERT_GT(f.Fixed(0, 1, kRw), 0);
  ASSERT_EQ(f.Check(f.as().Touch(Model::P(0), true)), 0);
  f.as().ForkChild();
  ASSERT_GT(f.Fixed(1, 1, kRw), 0);
  const Vma* a = f.as().FindVma(Model::P(0));
  EXPECT_EQ(mm::WhyNotMergeable(f.as().profile(), *a, *a->next), mm::MergeRefusal::kForkChild);
  EXPECT_STREQ(mm::MergeRefusalName(mm::MergeRefusal::kForkChild),
               "fork child (anon_vma chain from a fork)");
}

// mm::ApplyCall() is the one mapping from raw syscall arguments to model
// calls (the preload's and replay's): each call's argument conventions.
TEST(AddressSpace, ApplyCallMapsRawArgumentsAsTheKernelEntryPointsDo) {
  Model m;
  AddressSpace& as = m.as();
  auto apply = [&](Call call, std::vector<uint64_t> v) {
    uint64_t args[6] = {};
    for (size_t i = 0; i < v.size(); ++i) args[i] = v[i];
    return m.Check(mm::ApplyCall(as, call, args, nullptr, 0));
  };
  const uint64_t flags = static_cast<uint64_t>(kAnon | kMapFixedNoreplace);
  // mmap(addr, len, prot, flags, fd, off); fd -1 is not looked at for
  // anonymous memory, and without a FileDesc a file mapping is EBADF.
  EXPECT_EQ(apply(Call::kMmap, {Model::P(0), 4 * kPageSize, kRw, flags, ~uint64_t{0}, 0}),
            static_cast<int64_t>(Model::P(0)));
  EXPECT_EQ(apply(Call::kMmap, {Model::P(8), kPageSize, kRw, kMapPrivate, 3, 0}), -EBADF);
  // mprotect ignores a fourth argument (pkey -1); pkey_mprotect takes it.
  EXPECT_EQ(apply(Call::kMprotect, {Model::P(1), kPageSize, kProtRead, 5}), 0);
  EXPECT_EQ(apply(Call::kPkeyMprotect, {Model::P(1), kPageSize, kProtRead, 5}), -EINVAL);
  EXPECT_EQ(m.Draw(4), "ABCC");
  // mlock ignores flags (mlock2 does not), munlock undoes it.
  EXPECT_EQ(apply(Call::kMlock2, {Model::P(2), kPageSize, 0x10}), -EINVAL);
  EXPECT_EQ(apply(Call::kMlock, {Model::P(2), kPageSize, 0x10}), 0);
  EXPECT_EQ(m.Draw(4), "ABCD");
  EXPECT_EQ(apply(Call::kMunlock, {Model::P(2), kPageSize}), 0);
  EXPECT_EQ(m.Draw(4), "ABCC");
  // madvise, mremap, mseal, munmap.
  EXPECT_EQ(apply(Call::kMadvise, {Model::P(3), kPageSize, kMadvDontfork}), 0);
  EXPECT_EQ(m.Draw(4), "ABCD");
  EXPECT_EQ(apply(Call::kMremap,
                  {Model::P(3), kPageSize, kPageSize, kMremapMaymove | kMremapFixed, Model::P(6)}),
            static_cast<int64_t>(Model::P(6)));
  EXPECT_EQ(apply(Call::kMseal, {Model::P(0), kPageSize, 1}), -EINVAL);
  EXPECT_EQ(apply(Call::kMunmap, {Model::P(0), 3 * kPageSize}), 0);
  EXPECT_EQ(m.Draw(8), "......A.");
  // The calls the model does not replay leave it alone.
  EXPECT_FALSE(CallIsModelled(Call::kShmat));
  EXPECT_EQ(apply(Call::kShmat, {1, 0, 0}), -ENOSYS);
  EXPECT_EQ(m.Draw(8), "......A.");
}

// The madvise matrix (core/mm/madvise.h): the advice whose page-table effect
// the preload learns pages for. MADV_FREE keeps the entries.
TEST(AddressSpace, AdviceZapsPagesFollowsTheModel) {
  for (int advice :
       {kMadvDontneed, kMadvDontneedLocked, kMadvRemove, kMadvGuardInstall, kMadvGuardRemove}) {
    EXPECT_TRUE(mm::AdviceZapsPages(advice)) << advice;
  }
  for (int advice : {kMadvFree, kMadvNormal, kMadvWillneed, kMadvCold, kMadvPageout,
                     kMadvPopulateWrite, kMadvDontfork, kMadvHugepage}) {
    EXPECT_FALSE(mm::AdviceZapsPages(advice)) << advice;
  }
}

TEST(AddressSpace, ReadFaultCreatesNoAnonVma) {
  Model m;
  ASSERT_GT(m.Fixed(0, 1, kRw), 0);
  ASSERT_EQ(m.Check(m.as().Touch(Model::P(0), false)), 0);
  m.as().ForkChild();
  ASSERT_GT(m.Fixed(1, 1, kRw), 0);
  EXPECT_EQ(m.Draw(2), "AA");
}

TEST(AddressSpace, GuardInstallReusesTheNeighboursAnonVmaDespiteTheStickyFlag) {
  // Seen on the running 6.18-fc kernel: the second VMA's anon_vma_prepare()
  // reuses the first one's although only the first carries "gu" yet, so an
  // mprotect that equalises the permissions merges them.
  Model m;
  ASSERT_GT(m.Fixed(0, 1, kRw, kAnon | kMapNoreserve), 0);
  ASSERT_GT(m.Fixed(1, 1, kProtRead, kAnon | kMapNoreserve), 0);
  ASSERT_EQ(m.Check(m.as().Advise(Model::P(0), 2 * kPageSize, kMadvGuardInstall)), 0);
  EXPECT_EQ(m.Draw(2), "AB");
  ASSERT_EQ(m.Check(m.as().Protect(Model::P(1), kPageSize, kRw)), 0);
  EXPECT_EQ(m.Draw(2), "AA");
  EXPECT_TRUE(m.as().FindVma(Model::P(0))->flags & kVmMaybeGuard);
}

TEST(AddressSpace, GuardInstallGivesAnonVmaToAnonymousMemoryOnly) {
  // Seen on the running kernel: after MADV_GUARD_INSTALL and a fork, a
  // guarded private *file* piece still merges with its unfaulted neighbour
  // (no anon_vma), an anonymous one does not (fork-child anon_vma).
  Model m;
  FileDesc d;
  d.id = 3;
  d.path = "/tmp/g";
  d.writable = true;
  MapArgs a;
  a.addr = Model::P(0);
  a.len = 4 * kPageSize;
  a.prot = kRw;
  a.flags = kMapPrivate | kMapFixed;
  a.file = &d;
  ASSERT_GT(m.as().Map(a).ret, 0);
  ASSERT_GT(m.Fixed(8, 4, kRw), 0);
  for (uint64_t base : {0u, 8u}) {
    ASSERT_EQ(m.Check(m.as().Protect(Model::P(base + 2), 2 * kPageSize, kProtRead)), 0);
    ASSERT_EQ(m.Check(m.as().Advise(Model::P(base), kPageSize, kMadvGuardInstall)), 0);
  }
  m.as().ForkChild();
  for (uint64_t base : {0u, 8u}) {
    ASSERT_EQ(m.Check(m.as().Protect(Model::P(base + 2), 2 * kPageSize, kRw)), 0);
  }
  EXPECT_EQ(m.Draw(12), "AAAA....BBCC");
}

TEST(AddressSpace, TouchOutsideOrWithoutPermissionFaults) {
  Model m;
  ASSERT_GT(m.Fixed(0, 1, kProtRead), 0);
  EXPECT_EQ(m.as().Touch(Model::P(0), true).ret, -EFAULT);
  EXPECT_EQ(m.as().Touch(Model::P(1), false).ret, -EFAULT);
  ASSERT_GT(m.Fixed(2, 1, kProtNone), 0);
  EXPECT_EQ(m.as().Touch(Model::P(2), false).ret, -EFAULT);
}

TEST(AddressSpace, GrowsdownGrowsOnTouchAndGuardsHints) {
  Model m;
  const uint64_t g = 0x300000000;
  MapArgs a;
  a.addr = g;
  a.len = 4 * kPageSize;
  a.prot = kRw;
  a.flags = kAnon | kMapGrowsdown | kMapFixedNoreplace;
  ASSERT_EQ(m.as().Map(a).ret, static_cast<int64_t>(g));
  // A hint inside the guard gap is rejected (falls back to top-down)...
  MapArgs h;
  h.addr = g - 512 * 1024;
  h.len = kPageSize;
  h.prot = kRw;
  h.flags = kAnon;
  EXPECT_EQ(m.as().Map(h).ret, static_cast<int64_t>(kMmapBase - kPageSize));
  // ...while NOREPLACE at the same address is fine.
  h.flags |= kMapFixedNoreplace;
  EXPECT_EQ(m.as().Map(h).ret, static_cast<int64_t>(g - 512 * 1024));
  // The accessible mapping now sits inside the guard gap: growth is refused.
  EXPECT_EQ(m.as().Touch(g - 1, true).ret, -EFAULT);
  ASSERT_EQ(m.as().Unmap(g - 512 * 1024, kPageSize).ret, 0);
  EXPECT_EQ(m.as().Touch(g - 1, true).ret, 0);
  EXPECT_EQ(m.as().FindVma(g - 1)->start, g - kPageSize);
}

TEST(AddressSpace, RefusedStackGrowthStillCreatesTheAnonVma) {
  // expand_downwards() prepares the anon_vma before acct_stack_growth()
  // checks RLIMIT_STACK: the fault fails, the anon_vma stays, and a later
  // RW -> R mprotect keeps VM_ACCOUNT (found by the kernel oracle).
  Model m;
  MmParams p = Model::Params();
  p.rlimit_stack = 8 * kPageSize;
  m.as().set_params(p);
  const uint64_t g = 0x300000000;
  MapArgs a;
  a.addr = g;
  a.len = 4 * kPageSize;
  a.prot = kRw;
  a.flags = kAnon | kMapGrowsdown | kMapFixedNoreplace;
  ASSERT_EQ(m.as().Map(a).ret, static_cast<int64_t>(g));
  EXPECT_EQ(m.as().Touch(g - 16 * kPageSize, false).ret, -EFAULT);
  EXPECT_EQ(m.as().FindVma(g)->start, g);
  EXPECT_NE(m.as().FindVma(g)->anon.anon_vma, 0u);
  ASSERT_EQ(m.Check(m.as().Protect(g, kPageSize, kProtRead)), 0);
  EXPECT_TRUE(m.as().FindVma(g)->flags & kVmAccount);
}

TEST(AddressSpace, BrkGrowsMergesAndShrinks) {
  Model m;
  const uint64_t b0 = 0x555555600000;
  m.as().SetBrkState(b0, b0);
  EXPECT_EQ(m.as().Brk(0).ret, static_cast<int64_t>(b0));  // query
  EXPECT_EQ(m.as().Brk(b0 + 1).ret, static_cast<int64_t>(b0 + 1));
  EXPECT_EQ(m.as().FindVma(b0)->end, b0 + kPageSize);
  EXPECT_EQ(m.as().Brk(b0 + 3 * kPageSize + 5).ret, static_cast<int64_t>(b0 + 3 * kPageSize + 5));
  EXPECT_EQ(m.as().FindVma(b0)->end, b0 + 4 * kPageSize);
  EXPECT_EQ(m.as().map_count(), 1u);
  // A blocker at b0+5 pages: growing to b0+5 pages fails (a free page must
  // remain), to b0+4 pages succeeds.
  MapArgs a;
  a.addr = b0 + 5 * kPageSize;
  a.len = kPageSize;
  a.prot = kProtRead;
  a.flags = kAnon | kMapFixedNoreplace;
  ASSERT_GT(m.as().Map(a).ret, 0);
  const int64_t before = m.as().Brk(0).ret;
  EXPECT_EQ(m.as().Brk(b0 + 5 * kPageSize).ret, before);
  EXPECT_EQ(m.as().Brk(b0 + 4 * kPageSize).ret, static_cast<int64_t>(b0 + 4 * kPageSize));
  EXPECT_EQ(m.as().Brk(b0 + kPageSize).ret, static_cast<int64_t>(b0 + kPageSize));
  EXPECT_EQ(m.as().FindVma(b0)->end, b0 + kPageSize);
  EXPECT_EQ(m.as().Brk(b0 - kPageSize).ret, static_cast<int64_t>(b0 + kPageSize));
  EXPECT_EQ(m.as().Validate(), nullptr);
}

TEST(AddressSpace, MremapGrowInPlaceMergesThreeWays) {
  Model m;
  ASSERT_GT(m.Fixed(0, 2, kRw), 0);
  EXPECT_EQ(m.Check(m.as().Remap(Model::P(0), 2 * kPageSize, 4 * kPageSize, 0, 0)),
            static_cast<int64_t>(Model::P(0)));
  EXPECT_EQ(m.Draw(8), "AAAA....");
  ASSERT_GT(m.Fixed(6, 2, kRw), 0);
  EXPECT_EQ(m.Check(m.as().Remap(Model::P(0), 4 * kPageSize, 6 * kPageSize, 0, 0)),
            static_cast<int64_t>(Model::P(0)));
  EXPECT_EQ(m.Draw(8), "AAAAAAAA");
}

TEST(AddressSpace, MremapMoveOfUnfaultedBlockMergesWhereItLands) {
  Model m;
  ASSERT_GT(m.Fixed(0, 2, kRw), 0);
  ASSERT_GT(m.Fixed(10, 2, kRw), 0);
  EXPECT_EQ(m.Check(m.as().Remap(Model::P(10), 2 * kPageSize, 2 * kPageSize,
                                 kMremapMaymove | kMremapFixed, Model::P(2))),
            static_cast<int64_t>(Model::P(2)));
  EXPECT_EQ(m.Draw(12), "AAAA........");
}

TEST(AddressSpace, MremapErrors) {
  Model m;
  ASSERT_GT(m.Fixed(0, 2, kRw), 0);
  EXPECT_EQ(m.as().Remap(Model::P(0), kPageSize, kPageSize, 8, 0).ret, -EINVAL);
  EXPECT_EQ(m.as().Remap(Model::P(0) + 1, kPageSize, kPageSize, 0, 0).ret, -EINVAL);
  EXPECT_EQ(m.as().Remap(Model::P(0), kPageSize, 0, 0, 0).ret, -EINVAL);
  EXPECT_EQ(m.as().Remap(Model::P(0), kPageSize, kPageSize, kMremapFixed, Model::P(8)).ret,
            -EINVAL);  // FIXED without MAYMOVE
  EXPECT_EQ(m.as()
                .Remap(Model::P(0), 2 * kPageSize, 2 * kPageSize, kMremapFixed | kMremapMaymove,
                       Model::P(1))
                .ret,
            -EINVAL);  // overlap
  EXPECT_EQ(m.as().Remap(Model::P(5), kPageSize, 2 * kPageSize, 0, 0).ret, -EFAULT);
  EXPECT_EQ(m.as().Remap(Model::P(0), 3 * kPageSize, 4 * kPageSize, 0, 0).ret, -EFAULT);
  // No room to grow in place and no MAYMOVE.
  ASSERT_GT(m.Fixed(2, 1, kRw), 0);
  EXPECT_EQ(m.Draw(3), "AAA");
  ASSERT_EQ(m.as().Protect(Model::P(2), kPageSize, kProtRead).ret, 0);
  EXPECT_EQ(m.as().Remap(Model::P(0), 2 * kPageSize, 3 * kPageSize, 0, 0).ret, -ENOMEM);
  // The same without NOREPLACE arguments: a no-resize call returns addr.
  EXPECT_EQ(m.as().Remap(Model::P(0), kPageSize, kPageSize, 0, 0).ret,
            static_cast<int64_t>(Model::P(0)));
}

TEST(AddressSpace, SealedRangesRefuseChanges) {
  Model m;
  ASSERT_GT(m.Fixed(0, 4, kRw), 0);
  EXPECT_EQ(m.Check(m.as().Seal(Model::P(1), kPageSize)), 0);
  EXPECT_EQ(m.Draw(4), "ABCC");
  EXPECT_EQ(m.Check(m.as().Seal(Model::P(2), kPageSize)), 0);
  EXPECT_EQ(m.Draw(4), "ABBC");
  EXPECT_EQ(m.Check(m.as().Unmap(Model::P(0), 2 * kPageSize)), -EPERM);
  EXPECT_EQ(m.Check(m.as().Protect(Model::P(0), 4 * kPageSize, kProtRead)), -EPERM);
  EXPECT_EQ(m.Draw(4), "ABBC");
  EXPECT_FALSE(m.as().FindVma(Model::P(0))->flags & kVmWrite);
  EXPECT_EQ(m.Check(m.as().Remap(Model::P(1), kPageSize, 2 * kPageSize, kMremapMaymove, 0)),
            -EPERM);
  EXPECT_EQ(m.Check(m.as().Lock(Model::P(1), kPageSize)), 0);
  EXPECT_EQ(m.Draw(4), "ABCD");
  EXPECT_EQ(m.Check(m.as().Seal(Model::P(3), 2 * kPageSize)), -ENOMEM);
  EXPECT_FALSE(m.as().FindVma(Model::P(3))->flags & kVmSealed);
}

TEST(AddressSpace, MapCountLimits) {
  Model m;
  MmParams p = Model::Params();
  ASSERT_GT(m.Fixed(0, 16, kRw), 0);
  p.max_map_count = 3;
  m.as().set_params(p);
  // A split needs map_count < max; mmap may take the count to max+1.
  EXPECT_EQ(m.Check(m.as().Protect(Model::P(1), kPageSize, kProtRead)), 0);  // 1 -> 3
  EXPECT_EQ(m.Check(m.as().Protect(Model::P(5), kPageSize, kProtRead)), -ENOMEM);
  EXPECT_EQ(m.Check(m.as().Advise(Model::P(10), kPageSize, kMadvDontfork)), -EAGAIN);
  EXPECT_EQ(m.Check(m.as().Unmap(Model::P(8), kPageSize)), -ENOMEM);  // hole punch
  EXPECT_EQ(m.Check(m.as().Unmap(Model::P(15), kPageSize)), 0);       // tail: no check
  EXPECT_GT(m.Fixed(20, 1, kProtRead), 0);                            // 3 -> 4
  EXPECT_EQ(m.Fixed(22, 1, kProtRead), -ENOMEM);                      // 4 > 3
}

TEST(AddressSpace, ValidateCatchesBrokenFileBookkeeping) {
  Model m;
  FileDesc d;
  d.id = 7;
  d.path = "/tmp/f";
  MapArgs a;
  a.addr = Model::P(0);
  a.len = 2 * kPageSize;
  a.prot = kProtRead;
  a.flags = kMapPrivate | kMapFixed;
  a.file = &d;
  ASSERT_GT(m.as().Map(a).ret, 0);
  ASSERT_EQ(m.as().Validate(), nullptr);
  Vma* v = m.as().FindVma(Model::P(0));
  ++v->file->refs;
  EXPECT_STREQ(m.as().Validate(), "file refcount wrong");
  --v->file->refs;
  File stray;
  File* real = v->file;
  v->file = &stray;
  EXPECT_STREQ(m.as().Validate(), "vma points at a file not in the file list");
  v->file = real;
  v->anon.fork_child = 1;
  EXPECT_STREQ(m.as().Validate(), "fork child without anon_vma");
  v->anon.fork_child = 0;
  EXPECT_EQ(m.as().Validate(), nullptr);
}

TEST(AddressSpace, ProfilesAreNamed) {
  size_t n = 0;
  const KernelProfile* all = AllKernelProfiles(&n);
  ASSERT_GE(n, 4u);
  for (size_t i = 0; i < n; ++i) EXPECT_EQ(FindKernelProfile(all[i].name), &all[i]);
  EXPECT_EQ(FindKernelProfile("5.4"), nullptr);
  EXPECT_STREQ(DefaultKernelProfile().name, "6.18-fc");
}

}  // namespace
}  // namespace vmashadow

namespace vmashadow {
namespace {

TEST(KernelProfile, ForKernelRelease) {
  struct Case {
    const char* release;
    bool sticky;
    const char* want;
    bool exact;
  };
  const Case cases[] = {
      {"6.12.48-1-amd64", false, "6.12", true},
      {"6.14.2", false, "6.12", true},
      {"6.15.0", false, "6.15", true},
      {"6.16.9-arch1", false, "6.15", true},
      {"6.17.1", false, "6.17", true},
      {"6.18.44-fc", false, "6.18", true},
      {"6.18.44-fc", true, "6.18-fc", true},
      {"6.19.0", false, "6.18", false},
      {"6.1.0-18-amd64", false, "6.12", false},
      {"5.15.0", false, "6.12", false},
      {"garbage", false, "6.12", false},
      {"", false, "6.12", false},
      {"7.2", false, "6.18", false},
  };
  for (const Case& c : cases) {
    bool exact = !c.exact;
    const KernelProfile& p = ProfileForKernel(c.release, c.sticky, &exact);
    EXPECT_STREQ(p.name, c.want) << c.release;
    EXPECT_EQ(exact, c.exact) << c.release;
  }
}

}  // namespace
}  // namespace vmashadow

namespace vmashadow {
namespace {

// RLIMIT_MEMLOCK without CAP_IPC_LOCK (mm/mlock.c do_mlock, mlockall;
// mm/mmap.c mlock_future_ok in mmap, brk and mremap): 16 pages allowed.
TEST(AddressSpace, MemlockLimitWithoutCapIpcLock) {
  MmParams p;
  p.mmap_base = 0x7f0000000000;
  p.cap_ipc_lock = false;
  p.rlimit_memlock = 16 * kPageSize;
  std::vector<char> buf(8 << 20);
  Arena arena(buf.data(), buf.size());
  AddressSpace as(&arena, *FindKernelProfile("6.18-fc"), p);
  const uint64_t base = 0x100000000;
  auto map = [&](uint64_t page, uint64_t pages, int extra) {
    MapArgs a;
    a.addr = base + page * kPageSize;
    a.len = pages * kPageSize;
    a.prot = abi::kProtRead | abi::kProtWrite;
    a.flags = abi::kMapPrivate | abi::kMapAnonymous | abi::kMapFixedNoreplace | extra;
    return as.Map(a).ret;
  };
  ASSERT_EQ(map(0, 12, 0), static_cast<int64_t>(base));
  ASSERT_EQ(map(20, 8, 0), static_cast<int64_t>(base + 20 * kPageSize));
  EXPECT_EQ(as.Lock(base, 12 * kPageSize).ret, 0);  // 12 of 16
  EXPECT_EQ(as.mm_counters().locked_vm, 12u);
  EXPECT_EQ(as.Lock(base + 20 * kPageSize, 8 * kPageSize).ret, -ENOMEM);  // 20 > 16
  // Locking again what is locked counts it once: 12 + 12 - 12.
  EXPECT_EQ(as.Lock(base, 12 * kPageSize).ret, 0);
  EXPECT_EQ(as.Lock(base + 20 * kPageSize, 4 * kPageSize).ret, 0);  // exactly 16
  EXPECT_EQ(map(40, 1, abi::kMapLocked), -EAGAIN);                  // 17 > 16
  EXPECT_EQ(as.Unlock(base + 20 * kPageSize, 4 * kPageSize).ret, 0);
  EXPECT_EQ(map(40, 4, abi::kMapLocked), static_cast<int64_t>(base + 40 * kPageSize));
  EXPECT_EQ(as.LockAll(abi::kMclCurrent).ret, -ENOMEM);  // total_vm 24 > 16
  EXPECT_EQ(as.LockAll(abi::kMclFuture).ret, 0);
  EXPECT_EQ(map(60, 1, 0), -EAGAIN);  // def_flags VM_LOCKED: 17 > 16
  EXPECT_EQ(as.Remap(base + 40 * kPageSize, 4 * kPageSize, 5 * kPageSize, 0, 0).ret, -EAGAIN);
  EXPECT_EQ(as.Validate(), nullptr);
  // With CAP_IPC_LOCK the limit does not apply.
  p.cap_ipc_lock = true;
  as.set_params(p);
  EXPECT_EQ(map(60, 8, 0), static_cast<int64_t>(base + 60 * kPageSize));
}

}  // namespace
}  // namespace vmashadow

namespace vmashadow {
namespace {

// prctl(PR_SET_MDWE) (include/linux/mman.h map_deny_write_exec): no new
// W+X mapping, no VMA gaining exec; a PR_MDWE_NO_INHERIT fork child is free.
TEST(AddressSpace, MdweRefusesWriteExecAndExecGain) {
  MmParams p;
  p.mmap_base = 0x7f0000000000;
  p.mdwe = true;
  std::vector<char> buf(8 << 20);
  Arena arena(buf.data(), buf.size());
  AddressSpace as(&arena, *FindKernelProfile("6.18-fc"), p);
  MapArgs a;
  a.addr = 0x100000000;
  a.len = 4 * kPageSize;
  a.flags = abi::kMapPrivate | abi::kMapAnonymous | abi::kMapFixedNoreplace;
  a.prot = abi::kProtRead | abi::kProtWrite | abi::kProtExec;
  EXPECT_EQ(as.Map(a).ret, -EACCES);
  a.prot = abi::kProtRead | abi::kProtExec;
  EXPECT_EQ(as.Map(a).ret, static_cast<int64_t>(a.addr));
  EXPECT_EQ(as.Protect(a.addr, kPageSize, abi::kProtRead | abi::kProtWrite | abi::kProtExec).ret,
            -EACCES);
  EXPECT_EQ(as.Protect(a.addr, kPageSize, abi::kProtRead).ret, 0);
  EXPECT_EQ(as.Protect(a.addr, kPageSize, abi::kProtRead | abi::kProtExec).ret, -EACCES);  // a gain
  EXPECT_EQ(as.Protect(a.addr + kPageSize, kPageSize, abi::kProtRead | abi::kProtExec).ret, 0);
  p.mdwe_no_inherit = true;
  as.set_params(p);
  as.ForkChild();
  EXPECT_FALSE(as.params().mdwe);
  EXPECT_EQ(as.Protect(a.addr, kPageSize, abi::kProtRead | abi::kProtExec).ret, 0);
}

}  // namespace
}  // namespace vmashadow
