// page_tables_test.cc — the x86-64 page-table model: address split (4 and 5
// levels), protection bits, the page walk, and the allocation and free rules
// drawn as small tables. Layouts are one character per MiB from a 1 GiB
// boundary (two characters per PTE table): equal letters are one VMA, '.' is
// unmapped; every VMA is touched on every page. Expected tables are one
// character per 2 MiB slot: '#' a PTE table, '.' none, 'H' a huge PMD.
// Where a case comes from a probe on the running kernel it says so (the
// VmPTE deltas are the kernel's).
#include "core/mm/page_tables.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/abi/kernel_profile.h"
#include "core/abi/linux_abi.h"
#include "core/mm/address_space.h"
#include "core/procfs/maps_text.h"
#include "core/procfs/system_facts.h"

namespace vmashadow {
namespace {

using namespace abi;

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr uint64_t kBase = 0x200000000000;  // 32 TiB: a 512 GiB region of its own
constexpr int kRw = kProtRead | kProtWrite;
constexpr int kAnon = kMapPrivate | kMapAnonymous | kMapNoreserve;

// ---------------------------------------------------------------------------
// Geometry.

TEST(PageTables, IndexSplitFourLevels) {
  struct Case {
    uint64_t addr;
    PtIndex want;  // pgd, p4d, pud, pmd, pte, offset
  };
  const Case cases[] = {
      {0x0, {0, 0, 0, 0, 0, 0}},
      {0x1234, {0, 0, 0, 0, 1, 0x234}},
      {0x200000, {0, 0, 0, 1, 0, 0}},
      {0x40000000, {0, 0, 1, 0, 0, 0}},
      {0x8000000000, {1, 0, 0, 0, 0, 0}},
      {0x7ffffffff000, {255, 0, 511, 511, 511, 0}},
      {0x7f1234567abc, {254, 0, 72, 418, 359, 0xabc}},
  };
  for (const Case& c : cases) {
    const PtIndex x = SplitVirtualAddress(c.addr, 4);
    EXPECT_EQ(x.pgd, c.want.pgd) << std::hex << c.addr;
    EXPECT_EQ(x.p4d, 0u) << std::hex << c.addr;  // folded
    EXPECT_EQ(x.pud, c.want.pud) << std::hex << c.addr;
    EXPECT_EQ(x.pmd, c.want.pmd) << std::hex << c.addr;
    EXPECT_EQ(x.pte, c.want.pte) << std::hex << c.addr;
    EXPECT_EQ(x.offset, c.want.offset) << std::hex << c.addr;
  }
}

TEST(PageTables, IndexSplitFiveLevels) {
  struct Case {
    uint64_t addr;
    PtIndex want;
  };
  const Case cases[] = {
      {0x7ffffffff000, {0, 255, 511, 511, 511, 0}},
      {0x1000000000000, {1, 0, 0, 0, 0, 0}},             // 256 TiB: PGD 1
      {0xfffffffffff000, {255, 511, 511, 511, 511, 0}},  // top of 56-bit user space
      {0x123456789abcde, {0x12, 0x68, 0x159, 0x1c4, 0x1ab, 0xcde}},
  };
  for (const Case& c : cases) {
    const PtIndex x = SplitVirtualAddress(c.addr, 5);
    EXPECT_EQ(x.pgd, c.want.pgd) << std::hex << c.addr;
    EXPECT_EQ(x.p4d, c.want.p4d) << std::hex << c.addr;
    EXPECT_EQ(x.pud, c.want.pud) << std::hex << c.addr;
    EXPECT_EQ(x.pmd, c.want.pmd) << std::hex << c.addr;
    EXPECT_EQ(x.pte, c.want.pte) << std::hex << c.addr;
    EXPECT_EQ(x.offset, c.want.offset) << std::hex << c.addr;
  }
}

// ---------------------------------------------------------------------------
// Protection bits.

TEST(PageTables, ProtectionMap) {
  const uint64_t p = pte_bits::kPresent, u = pte_bits::kUser, a = pte_bits::kAccessed,
                 rw = pte_bits::kRw, nx = pte_bits::kNx;
  struct Case {
    uint64_t flags;
    uint64_t want;
  };
  const Case cases[] = {
      {0, a | pte_bits::kProtNone},                                // PAGE_NONE
      {kVmRead, p | u | a | nx},                                   // PAGE_READONLY
      {kVmWrite, p | u | a | nx},                                  // PAGE_COPY
      {kVmRead | kVmWrite, p | u | a | nx},                        // PAGE_COPY
      {kVmExec, p | u | a},                                        // PAGE_READONLY_EXEC
      {kVmRead | kVmExec, p | u | a},                              // PAGE_READONLY_EXEC
      {kVmRead | kVmWrite | kVmExec, p | u | a},                   // PAGE_COPY_EXEC
      {kVmShared, a | pte_bits::kProtNone},                        // PAGE_NONE
      {kVmShared | kVmRead, p | u | a | nx},                       // PAGE_READONLY
      {kVmShared | kVmWrite, p | rw | u | a | nx},                 // PAGE_SHARED
      {kVmShared | kVmRead | kVmWrite, p | rw | u | a | nx},       // PAGE_SHARED
      {kVmShared | kVmRead | kVmExec, p | u | a},                  // PAGE_READONLY_EXEC
      {kVmShared | kVmRead | kVmWrite | kVmExec, p | rw | u | a},  // PAGE_SHARED_EXEC
  };
  for (const Case& c : cases) {
    EXPECT_EQ(VmGetPageProt(c.flags | kVmMayRead | kVmMayWrite, true), c.want)
        << std::hex << c.flags;
  }
  // Pkey 5 (VM_PKEY_BIT0|BIT2) lands in PTE bits 59 and 61.
  EXPECT_EQ(VmGetPageProt(kVmRead | kVmPkeyBit0 | kVmPkeyBit2, true),
            p | u | a | nx | (uint64_t{5} << 59));
  // Without NX the bit is masked off present protections only.
  EXPECT_EQ(VmGetPageProt(kVmRead, false), p | u | a);
  EXPECT_EQ(VmGetPageProt(0, false), a | pte_bits::kProtNone);
}

TEST(PageTables, WriteNotifyForSharedWritableFiles) {
  File regular;
  regular.kind = FileKind::kRegularThp;
  File shmem;
  shmem.kind = FileKind::kShmem;
  Vma v;
  v.flags = kVmRead | kVmWrite | kVmShared | kVmMayRead | kVmMayWrite | kVmMayShare;
  v.file = &regular;
  EXPECT_TRUE(VmaWantsWriteNotify(v));
  // Starts read-only: PAGE_COPY, the first write faults (page_mkwrite).
  EXPECT_EQ(VmaPageProt(v, true), VmGetPageProt(kVmRead | kVmWrite, true));
  v.file = &shmem;  // shmem: no dirty tracking, writable from the start
  EXPECT_FALSE(VmaWantsWriteNotify(v));
  EXPECT_TRUE(VmaPageProt(v, true) & pte_bits::kRw);
  v.flags |= kVmUffdWp;  // uffd-wp wants write faults
  EXPECT_TRUE(VmaWantsWriteNotify(v));
  v.flags &= ~(kVmUffdWp | kVmShared);  // private: never
  v.file = &regular;
  EXPECT_FALSE(VmaWantsWriteNotify(v));
}

// ---------------------------------------------------------------------------
// The walk and the counts.

struct Tables {
  explicit Tables(int levels) : buf(4 << 20), arena(buf.data(), buf.size()), pt(&arena, levels) {}
  std::vector<char> buf;
  Arena arena;
  PageTables pt;
};

TEST(PageTables, WalkAfterOneFaultFourLevels) {
  Tables t(4);
  const uint64_t a = 0x7f1234567000;
  PageWalk w = t.pt.Walk(a);
  EXPECT_FALSE(w.pud_table);
  t.pt.MapRange(a, a + kPageSize);
  w = t.pt.Walk(a);
  EXPECT_FALSE(w.p4d_table);
  EXPECT_TRUE(w.pud_table);
  EXPECT_TRUE(w.pmd_table);
  EXPECT_EQ(w.pmd, PmdKind::kTable);
  EXPECT_TRUE(w.pte_table);
  EXPECT_TRUE(w.mapped);
  EXPECT_EQ(w.index.pte, 0x167u);
  // The neighbour shares every table but is not mapped.
  w = t.pt.Walk(a + kPageSize);
  EXPECT_TRUE(w.pte_table);
  EXPECT_FALSE(w.mapped);
  // +12 kB: PUD + PMD + PTE (docs/page-tables.md, t9: "first touch in a new 512 GiB").
  EXPECT_EQ(t.pt.counts().bytes(), 3 * kPageTableBytes);
  // A new 2 MiB slot: +4 kB; a new 1 GiB region: +8 kB.
  t.pt.MapRange(a + kPmdSize, a + kPmdSize + kPageSize);
  EXPECT_EQ(t.pt.counts().bytes(), 4 * kPageTableBytes);
  t.pt.MapRange(a + kGiB, a + kGiB + kPageSize);
  EXPECT_EQ(t.pt.counts().bytes(), 6 * kPageTableBytes);
  EXPECT_EQ(t.pt.CountMapped(a - kGiB, a + 2 * kGiB), 3u);
  EXPECT_EQ(t.pt.Validate(), nullptr);
}

TEST(PageTables, FiveLevelsAddAnUncountedP4d) {
  Tables t(5);
  const uint64_t a = 0x100000000000;
  t.pt.MapRange(a, a + kPageSize);
  const PageWalk w = t.pt.Walk(a);
  EXPECT_TRUE(w.p4d_table);
  EXPECT_TRUE(w.pte_table);
  EXPECT_EQ(t.pt.counts().p4d_tables, 1u);
  EXPECT_EQ(t.pt.counts().bytes(), 3 * kPageTableBytes);  // P4D not in VmPTE
  // At 256 TiB: another PGD entry, another P4D.
  t.pt.MapRange(0x1000000000000, 0x1000000001000);
  EXPECT_EQ(t.pt.counts().p4d_tables, 2u);
  EXPECT_EQ(t.pt.counts().bytes(), 6 * kPageTableBytes);
  t.pt.FreePgdRange(0x1000000000000, 0x1000000001000, a + kPageSize, 0);
  EXPECT_EQ(t.pt.counts().p4d_tables, 1u);
  EXPECT_EQ(t.pt.counts().bytes(), 3 * kPageTableBytes);
  EXPECT_EQ(t.pt.Validate(), nullptr);
}

TEST(PageTables, NextMappedRunStopsAtHugeBoundaries) {
  Tables t(4);
  const uint64_t b = 0x40000000;
  t.pt.MapRange(b + kPmdSize - 2 * kPageSize, b + kPmdSize);
  ASSERT_TRUE(t.pt.MapHuge(b + kPmdSize));
  t.pt.MapRange(b + 2 * kPmdSize, b + 2 * kPmdSize + kPageSize);
  uint64_t lo = 0, hi = 0;
  bool huge = false;
  ASSERT_TRUE(t.pt.NextMappedRun(b, b + kGiB, &lo, &hi, &huge));
  EXPECT_EQ(lo, b + kPmdSize - 2 * kPageSize);
  EXPECT_EQ(hi, b + kPmdSize);
  EXPECT_FALSE(huge);
  ASSERT_TRUE(t.pt.NextMappedRun(hi, b + kGiB, &lo, &hi, &huge));
  EXPECT_EQ(lo, b + kPmdSize);
  EXPECT_EQ(hi, b + 2 * kPmdSize);
  EXPECT_TRUE(huge);
  ASSERT_TRUE(t.pt.NextMappedRun(hi, b + kGiB, &lo, &hi, &huge));
  EXPECT_EQ(lo, b + 2 * kPmdSize);
  EXPECT_EQ(hi, b + 2 * kPmdSize + kPageSize);
  EXPECT_FALSE(t.pt.NextMappedRun(hi, b + kGiB, &lo, &hi, &huge));
}

// ---------------------------------------------------------------------------
// AddressSpace-level rules, drawn.

class Model {
 public:
  explicit Model(const char* profile = "6.18-fc", ThpMode thp = ThpMode::kMadvise)
      : buf_(32 << 20),
        arena_(buf_.data(), buf_.size()),
        as_(&arena_, *Profile(profile), Params(thp)) {}

  static const KernelProfile* Profile(const char* name) { return FindKernelProfile(name); }
  static MmParams Params(ThpMode thp) {
    MmParams p;
    p.mmap_base = 0x7f0000000000;
    p.thp = thp;
    return p;
  }
  AddressSpace& as() { return as_; }

  void Check() {
    const char* err = as_.Validate();
    ASSERT_EQ(err, nullptr) << err;
  }

  // Maps the layout (one char per MiB from base), VMAs alternating rw and
  // r-x so that neighbours never merge, and touches every page.
  void Layout(const std::string& l, uint64_t base = kBase) {
    size_t i = 0;
    bool rw = true;
    while (i < l.size()) {
      if (l[i] == '.') {
        ++i;
        continue;
      }
      size_t j = i;
      while (j < l.size() && l[j] == l[i]) ++j;
      MapArgs a;
      a.addr = base + i * kMiB;
      a.len = (j - i) * kMiB;
      a.prot = rw ? kRw : kProtRead | kProtExec;
      a.flags = kAnon | kMapFixedNoreplace;
      ASSERT_EQ(as_.Map(a).ret, static_cast<int64_t>(a.addr));
      for (uint64_t p = a.addr; p < a.addr + a.len; p += kPageSize) {
        ASSERT_EQ(as_.Touch(p, rw).ret, 0);
      }
      rw = !rw;
      i = j;
    }
    Check();
  }
  // Unmaps every run of 'x' (one char per MiB from base).
  void UnmapMarked(const std::string& x, uint64_t base = kBase) {
    size_t i = 0;
    while (i < x.size()) {
      if (x[i] != 'x') {
        ++i;
        continue;
      }
      size_t j = i;
      while (j < x.size() && x[j] == 'x') ++j;
      ASSERT_EQ(as_.Unmap(base + i * kMiB, (j - i) * kMiB).ret, 0);
      i = j;
    }
    Check();
  }
  // One char per 2 MiB slot from base: '#' PTE table, 'H' huge, '.' none.
  std::string Slots(size_t n, uint64_t base = kBase) const {
    std::string s;
    for (size_t i = 0; i < n; ++i) {
      const PageWalk w = as_.WalkPage(base + i * kPmdSize);
      s += w.pmd == PmdKind::kHuge ? 'H' : w.pte_table ? '#' : '.';
    }
    return s;
  }
  uint64_t Kb() const { return as_.PredictStatus().vm_pte_kb; }
  const PageTableCounts& counts() const { return as_.page_tables().counts(); }

 private:
  std::vector<char> buf_;
  Arena arena_;
  AddressSpace as_;
};

// free_pgtables(): a PTE table goes only when no surviving VMA shares its
// 2 MiB; a PMD table when no VMA is left in its 1 GiB; a PUD table when none
// is left in its 512 GiB.
TEST(PageTables, FreeRuleOnMunmap) {
  struct Case {
    const char* layout;  // one char per MiB
    const char* unmap;   // 'x': MiB to unmap
    const char* slots;   // PTE tables per 2 MiB slot afterwards
  };
  const Case cases[] = {
      // A alone: everything in its slots goes.
      {"AAAA....", "xxxx....", "...."},
      // B shares slot 1 with A's end: slot 1 stays as a ghost.
      {"AAABBBBB", "xxx.....", ".###"},
      // A shares slot 1 with B's start: same the other way round.
      {"AAABBBBB", "...xxxxx", "##.."},
      // A hole inside one slot of a VMA: both survivors share it.
      {"AAAAAAAA", "..x.....", "####"},
      // A hole that is exactly slot 1: floor and ceiling are its edges.
      {"AAAAAAAA", "..xx....", "#.##"},
      // A 3 MiB hole: only the slot wholly inside it goes.
      {"AAAAAAAA", "...xxx..", "##.#"},
      // A whole-slot gap between survivors: freed.
      {"AABBBBCC", "..xxxx..", "#..#"},
      // Unmapping the last VMA of a slot whose neighbour slot is empty.
      {"A...B...", "x.......", "..#."},
  };
  for (const Case& c : cases) {
    Model m;
    m.Layout(c.layout);
    m.UnmapMarked(c.unmap);
    EXPECT_EQ(m.Slots(4), c.slots) << c.layout << " unmap " << c.unmap;
  }
}

TEST(PageTables, UpperLevelsFreedWithTheirLastVma) {
  Model m;
  m.Layout("AA");                    // 512 GiB region of its own: PUD, PMD, PTE
  EXPECT_EQ(m.Kb(), 12u);            // t9: +12 kB
  m.Layout("BB", kBase + 2 * kGiB);  // another 1 GiB: PMD + PTE
  EXPECT_EQ(m.Kb(), 20u);
  m.UnmapMarked("xx", kBase + 2 * kGiB);  // its PMD goes, the PUD stays (A)
  EXPECT_EQ(m.Kb(), 12u);
  m.UnmapMarked("xx");  // the last VMA in the 512 GiB region: all three go
  EXPECT_EQ(m.Kb(), 0u);
  EXPECT_TRUE(m.as().page_tables().empty() || m.counts().bytes() == 0);
}

TEST(PageTables, MapFixedReplacementAndBrkShrinkFreeToo) {
  Model m;
  m.Layout("AAAA");
  ASSERT_EQ(m.Kb(), 16u);
  // MAP_FIXED over all of A: the old tables go (floor/ceiling: nothing), the
  // new mapping is not faulted.
  MapArgs a;
  a.addr = kBase;
  a.len = 4 * kMiB;
  a.prot = kRw;
  a.flags = kAnon | kMapFixed;
  ASSERT_EQ(m.as().Map(a).ret, static_cast<int64_t>(kBase));
  EXPECT_EQ(m.Slots(2), "..");
  EXPECT_EQ(m.Kb(), 0u);
  // With MAP_POPULATE the new VMA is faulted in at once.
  a.flags |= kMapPopulate;
  ASSERT_EQ(m.as().Map(a).ret, static_cast<int64_t>(kBase));
  EXPECT_EQ(m.Slots(2), "##");
  EXPECT_EQ(m.Kb(), 16u);
  m.Check();
}

// PT_RECLAIM (6.14+; probe t9 and pt1 on the running kernel).
TEST(PageTables, DontneedReclaimsOnlyWholeEmptyTables) {
  Model m;
  m.Layout("AAAA");
  ASSERT_EQ(m.Slots(2), "##");
  // Part of slot 1: the table stays (an empty ghost after this).
  ASSERT_EQ(m.as().Advise(kBase + 3 * kMiB, kMiB, kMadvDontneed).ret, 0);
  EXPECT_EQ(m.Slots(2), "##");
  ASSERT_EQ(m.as().Advise(kBase + 2 * kMiB, kMiB, kMadvDontneed).ret, 0);
  EXPECT_EQ(m.Slots(2), "##");
  EXPECT_EQ(m.as().page_tables().CountMapped(kBase, kBase + 4 * kMiB), 512u);
  // The whole of slot 1 in one call: reclaimed.
  ASSERT_EQ(m.as().Advise(kBase + 2 * kMiB, 2 * kMiB, kMadvDontneed).ret, 0);
  EXPECT_EQ(m.Slots(2), "#.");
  // MADV_FREE never frees tables.
  ASSERT_EQ(m.as().Advise(kBase, 2 * kMiB, kMadvFree).ret, 0);
  EXPECT_EQ(m.Slots(2), "#.");
  m.Check();

  // A slot covered by two VMAs: each VMA's zap covers less than PMD_SIZE.
  Model two;
  two.Layout("AB");
  ASSERT_EQ(two.as().Advise(kBase, 2 * kMiB, kMadvDontneed).ret, 0);
  EXPECT_EQ(two.Slots(1), "#");
  EXPECT_EQ(two.as().page_tables().CountMapped(kBase, kBase + 2 * kMiB), 0u);

  // Without CONFIG_PT_RECLAIM (6.12) the table stays.
  Model old("6.12");
  old.Layout("AA");
  ASSERT_EQ(old.as().Advise(kBase, 2 * kMiB, kMadvDontneed).ret, 0);
  EXPECT_EQ(old.Slots(1), "#");
}

// THP (probe pt1): a huge PMD deposits one PTE table; zapping it whole frees
// the deposit; zapping or unmapping part of it splits it.
TEST(PageTables, ThpDepositSplitAndZap) {
  Model m;
  MapArgs a;
  a.addr = kBase;
  a.len = 4 * kMiB;
  a.prot = kRw;
  a.flags = kAnon | kMapFixedNoreplace;
  ASSERT_EQ(m.as().Map(a).ret, static_cast<int64_t>(kBase));
  ASSERT_EQ(m.as().Advise(kBase, 4 * kMiB, kMadvHugepage).ret, 0);
  // A read fault maps the huge zero page: PUD + PMD + deposit, and an
  // anon_vma (vmf_anon_prepare) although nothing was written.
  ASSERT_EQ(m.as().Touch(kBase, false).ret, 0);
  EXPECT_EQ(m.Slots(2), "H.");
  EXPECT_EQ(m.Kb(), 12u);
  EXPECT_NE(m.as().FindVma(kBase)->anon.anon_vma, 0u);
  ASSERT_EQ(m.as().Touch(kBase + 2 * kMiB + 5 * kPageSize, true).ret, 0);
  EXPECT_EQ(m.Slots(2), "HH");
  EXPECT_EQ(m.Kb(), 16u);
  EXPECT_EQ(m.counts().deposited, 2u);
  // munmap of one page inside slot 1: split (the deposit becomes the table).
  ASSERT_EQ(m.as().Unmap(kBase + 2 * kMiB + kPageSize, kPageSize).ret, 0);
  EXPECT_EQ(m.Slots(2), "H#");
  EXPECT_EQ(m.Kb(), 16u);
  EXPECT_EQ(m.as().page_tables().CountMapped(kBase + 2 * kMiB, kBase + 4 * kMiB), 511u);
  // MADV_DONTNEED of the whole of slot 0: the deposit goes.
  ASSERT_EQ(m.as().Advise(kBase, 2 * kMiB, kMadvDontneed).ret, 0);
  EXPECT_EQ(m.Slots(2), ".#");
  EXPECT_EQ(m.Kb(), 12u);
  m.Check();
  // A VMA too small for an aligned 2 MiB gets PTEs; so does a VMA without
  // VM_HUGEPAGE under "madvise", and any with VM_NOHUGEPAGE under "always".
  Model always("6.18-fc", ThpMode::kAlways);
  a.len = 2 * kMiB;
  ASSERT_EQ(always.as().Map(a).ret, static_cast<int64_t>(kBase));
  ASSERT_EQ(always.as().Touch(kBase, true).ret, 0);
  EXPECT_EQ(always.Slots(1), "H");
  a.addr = kBase + 4 * kMiB;
  ASSERT_EQ(always.as().Map(a).ret, static_cast<int64_t>(a.addr));
  ASSERT_EQ(always.as().Advise(a.addr, 2 * kMiB, kMadvNohugepage).ret, 0);
  ASSERT_EQ(always.as().Touch(a.addr, true).ret, 0);
  EXPECT_EQ(always.Slots(3), "H.#");
  always.Check();
}

// Fork copies tables under VMAs with an anon_vma, empty ones included; the
// rest the child faults in itself.
TEST(PageTables, ForkCopiesTablesOfAnonVmasOnly) {
  Model m;
  m.Layout("AAAA");  // rw: written, so it has an anon_vma
  // An empty (ghost) table in slot 1: a partial MADV_DONTNEED.
  ASSERT_EQ(m.as().Advise(kBase + 2 * kMiB, 2 * kMiB - kPageSize, kMadvDontneed).ret, 0);
  ASSERT_EQ(m.as().Advise(kBase + 4 * kMiB - kPageSize, kPageSize, kMadvDontneed).ret, 0);
  EXPECT_EQ(m.Slots(2), "##");
  // A read-only private mapping, only read: no anon_vma, not copied.
  MapArgs a;
  a.addr = kBase + 8 * kMiB;
  a.len = 2 * kMiB;
  a.prot = kProtRead;
  a.flags = kAnon | kMapFixedNoreplace | kMapPopulate;
  ASSERT_EQ(m.as().Map(a).ret, static_cast<int64_t>(a.addr));
  // A VM_DONTCOPY one, written.
  a.addr = kBase + 12 * kMiB;
  a.prot = kRw;
  ASSERT_EQ(m.as().Map(a).ret, static_cast<int64_t>(a.addr));
  ASSERT_EQ(m.as().Advise(a.addr, a.len, kMadvDontfork).ret, 0);
  EXPECT_EQ(m.Slots(7), "##..#.#");
  EXPECT_EQ(m.Kb(), 6 * 4u);
  m.as().ForkChild();
  EXPECT_EQ(m.Slots(7), "##.....");
  EXPECT_EQ(m.Kb(), 4 * 4u);  // PUD + PMD + two PTE tables (one empty)
  EXPECT_EQ(m.as().page_tables().CountMapped(kBase, kBase + 16 * kMiB), 512u);
  m.Check();
}

// mremap (probe pt1 on the running kernel: 68 -> 72 kB and 52 -> 52 kB).
TEST(PageTables, MremapMovesTablesAsMovePageTablesDoes) {
  // Aligned 4 MiB to another 512 GiB region: whole PTE tables move; the
  // destination gets a PUD and a PMD table, the source loses its own.
  Model m;
  m.Layout("AAAA");
  ASSERT_EQ(m.Kb(), 16u);
  const uint64_t dst = kBase + 512 * kGiB;
  ASSERT_EQ(m.as().Remap(kBase, 4 * kMiB, 4 * kMiB, kMremapMaymove | kMremapFixed, dst).ret,
            static_cast<int64_t>(dst));
  EXPECT_EQ(m.Kb(), 16u);
  EXPECT_EQ(m.Slots(2, dst), "##");
  EXPECT_EQ(m.Slots(2), "..");
  EXPECT_EQ(m.as().page_tables().CountMapped(dst, dst + 4 * kMiB), 1024u);
  m.Check();

  // Unaligned: slot 0 holds one page, slot 1 an empty table. Moved to
  // +2 GiB + 8 KiB, each source extent with a table allocates a destination
  // table, so three PTE tables (and a PMD table) appear before the source's
  // two and its PMD table go: +4 kB net.
  Model u;
  MapArgs a;
  a.addr = kBase;
  a.len = 4 * kMiB;
  a.prot = kRw;
  a.flags = kAnon | kMapFixedNoreplace;
  ASSERT_EQ(u.as().Map(a).ret, static_cast<int64_t>(kBase));
  ASSERT_EQ(u.as().Touch(kBase + 2 * kMiB + kPageSize, true).ret, 0);
  ASSERT_EQ(u.as().Advise(kBase + 2 * kMiB + kPageSize, kPageSize, kMadvDontneed).ret, 0);
  ASSERT_EQ(u.as().Touch(kBase + kPageSize, true).ret, 0);
  EXPECT_EQ(u.Kb(), 16u);
  const uint64_t to = kBase + 2 * kGiB + 2 * kPageSize;
  ASSERT_EQ(u.as().Remap(kBase, 4 * kMiB, 4 * kMiB, kMremapMaymove | kMremapFixed, to).ret,
            static_cast<int64_t>(to));
  EXPECT_EQ(u.Kb(), 20u);
  EXPECT_EQ(u.Slots(3, kBase + 2 * kGiB), "###");
  EXPECT_TRUE(u.as().page_tables().IsMapped(to + kPageSize));
  EXPECT_EQ(u.as().page_tables().CountMapped(to - kGiB, to + kGiB), 1u);
  u.Check();
}

TEST(PageTables, GuardMarkersAllocateTablesAndSurviveDontneed) {
  Model m;
  MapArgs a;
  a.addr = kBase;
  a.len = 4 * kMiB;
  a.prot = kRw;
  a.flags = kAnon | kMapFixedNoreplace;
  ASSERT_EQ(m.as().Map(a).ret, static_cast<int64_t>(kBase));
  // Probe pt1: +12 kB for two guard pages in a fresh 512 GiB region.
  ASSERT_EQ(m.as().Advise(kBase + 2 * kMiB, 2 * kPageSize, kMadvGuardInstall).ret, 0);
  EXPECT_EQ(m.Kb(), 12u);
  EXPECT_TRUE(m.as().WalkPage(kBase + 2 * kMiB).guard);
  EXPECT_EQ(m.as().Touch(kBase + 2 * kMiB, true).ret, -EFAULT);
  // MADV_DONTNEED keeps markers, so the table is not empty: not reclaimed.
  ASSERT_EQ(m.as().Advise(kBase + 2 * kMiB, 2 * kMiB, kMadvDontneed).ret, 0);
  EXPECT_EQ(m.Kb(), 12u);
  ASSERT_EQ(m.as().Advise(kBase + 2 * kMiB, 2 * kPageSize, kMadvGuardRemove).ret, 0);
  EXPECT_FALSE(m.as().WalkPage(kBase + 2 * kMiB).guard);
  EXPECT_EQ(m.Kb(), 12u);  // removal leaves the table
  m.Check();
}

// ---------------------------------------------------------------------------
// Learning and calibration.

TEST(PageTables, LearnAndCalibrate) {
  Model m;
  ASSERT_EQ(m.as().LearnPresent(kBase, kBase + 3 * kPageSize, false), 0);
  ASSERT_EQ(m.as().LearnPresent(kBase + 4 * kMiB, kBase + 8 * kMiB, true), 0);
  EXPECT_EQ(m.Slots(4), "#.HH");
  EXPECT_EQ(m.Kb(), 20u);  // PUD, PMD, one table, two deposits
  // The kernel says 28 kB: two tables nothing explains.
  EXPECT_EQ(m.as().CalibratePageTables(28), 2);
  EXPECT_EQ(m.Kb(), 28u);
  EXPECT_EQ(m.counts().unlocated, 2u);
  // Learning absence never frees a table.
  ASSERT_EQ(m.as().LearnNotPresent(kBase, kBase + 8 * kMiB), 0);
  EXPECT_EQ(m.Slots(4), "#.##");
  EXPECT_EQ(m.Kb(), 28u);
  // A kernel that has fewer tables than the model explains.
  EXPECT_EQ(m.as().CalibratePageTables(12), -2);
  EXPECT_EQ(m.counts().unlocated, 0u);
  EXPECT_EQ(m.as().LearnPresent(kBase + 1, kBase + kPageSize, false), -EINVAL);
  m.Check();
}

// A PMD-mapped file folio (do_set_pmd) has no deposited table on x86 (probe
// pt4: +8 kB in a fresh 512 GiB region, PUD and PMD only); splitting it just
// clears it; fork does not copy it.
TEST(PageTables, FileHugePmdHasNoTable) {
  Tables t(4);
  const uint64_t h = 0x40000000;
  ASSERT_TRUE(t.pt.MapHuge(h, /*deposit=*/false));
  EXPECT_EQ(t.pt.counts().bytes(), 2 * kPageTableBytes);
  PageWalk w = t.pt.Walk(h + kPageSize);
  EXPECT_EQ(w.pmd, PmdKind::kHuge);
  EXPECT_FALSE(w.pte_table);
  EXPECT_TRUE(w.mapped);
  Tables child(4);
  t.pt.CopyRangeTo(&child.pt, h, h + kPmdSize);
  EXPECT_EQ(child.pt.counts().bytes(), 2 * kPageTableBytes);  // PUD + PMD, no entry
  EXPECT_FALSE(child.pt.IsMapped(h));
  t.pt.Zap(h, h + kPageSize, /*drop_markers=*/true, /*reclaim=*/false);
  w = t.pt.Walk(h + kPageSize);
  EXPECT_EQ(w.pmd, PmdKind::kNone);
  EXPECT_EQ(t.pt.counts().bytes(), 2 * kPageTableBytes);
  EXPECT_EQ(t.pt.Validate(), nullptr);
  // Learning a PMD-mapped file folio where the model had a PTE table: the
  // table cannot exist.
  t.pt.MapRange(h, h + kPageSize);
  EXPECT_EQ(t.pt.counts().bytes(), 3 * kPageTableBytes);
  t.pt.LearnMapped(h, h + kPmdSize, /*huge=*/true, /*deposit=*/false);
  EXPECT_EQ(t.pt.counts().bytes(), 2 * kPageTableBytes);
  EXPECT_EQ(t.pt.Validate(), nullptr);
}

// 6.18's MREMAP_DONTUNMAP of part of an mlocked VMA (probe pt5): no split,
// VM_LOCKED cleared on the whole old VMA, locked_vm charged for the new range
// and never uncharged for the old one.
TEST(PageTables, DontunmapOfLockedVmaDriftsVmLck) {
  for (const char* profile : {"6.18-fc", "6.12"}) {
    Model m(profile);
    MapArgs a;
    a.addr = kBase;
    a.len = 8 * kPageSize;
    a.prot = kRw;
    a.flags = kAnon | kMapFixedNoreplace;
    ASSERT_EQ(m.as().Map(a).ret, static_cast<int64_t>(kBase));
    ASSERT_EQ(m.as().Lock(kBase, 8 * kPageSize).ret, 0);
    EXPECT_EQ(m.as().PredictStatus().vm_lck_kb, 32u);
    const uint64_t to = kBase + kMiB;
    ASSERT_EQ(m.as()
                  .Remap(kBase + 6 * kPageSize, 2 * kPageSize, 2 * kPageSize,
                         kMremapMaymove | kMremapFixed | kMremapDontunmap, to)
                  .ret,
              static_cast<int64_t>(to));
    const bool drift = std::string(profile) != "6.12";
    // 6.18: one old VMA, unlocked; 6.12: split first, only the tail unlocked.
    EXPECT_EQ(m.as().map_count(), drift ? 2u : 3u) << profile;
    EXPECT_EQ(m.as().PredictStatus().vm_lck_kb, drift ? 40u : 32u) << profile;
    ASSERT_EQ(m.as().Unmap(kBase, 2 * kMiB).ret, 0);
    EXPECT_EQ(m.as().PredictStatus().vm_lck_kb, drift ? 32u : 0u) << profile;
    m.as().ForkChild();
    EXPECT_EQ(m.as().PredictStatus().vm_lck_kb, 0u) << profile;
  }
}

// ---------------------------------------------------------------------------
// Counters.

TEST(PageTables, StatusCountersClassifyEachVma) {
  Model m;
  auto map = [&m](uint64_t addr, uint64_t pages, int prot, int flags) {
    MapArgs a;
    a.addr = addr;
    a.len = pages * kPageSize;
    a.prot = prot;
    a.flags = flags | kMapFixedNoreplace;
    ASSERT_EQ(m.as().Map(a).ret, static_cast<int64_t>(addr));
  };
  map(kBase, 10, kProtRead | kProtExec, kAnon);                // exec
  map(kBase + kMiB, 20, kRw, kAnon);                           // data
  map(kBase + 2 * kMiB, 3, kRw, kAnon | kMapGrowsdown);        // stack
  map(kBase + 3 * kMiB, 4, kRw, kMapShared | kMapAnonymous);   // shared: none
  map(kBase + 4 * kMiB, 5, kProtRead, kAnon);                  // read-only: none
  map(kBase + 5 * kMiB, 6, kRw | kProtExec, kAnon);            // writable exec: data
  ASSERT_EQ(m.as().Lock(kBase + kMiB, 4 * kPageSize).ret, 0);  // locked
  const MmCounters c = m.as().mm_counters();
  EXPECT_EQ(c.total_vm, 48u);
  EXPECT_EQ(c.exec_vm, 10u);
  EXPECT_EQ(c.data_vm, 26u);
  EXPECT_EQ(c.stack_vm, 3u);
  EXPECT_EQ(c.locked_vm, 4u);
  // VmExe is the exec_vm part inside [start_code, end_code), VmLib the rest.
  m.as().SetCodeRange(kBase + 0x123, kBase + 3 * kPageSize + 1);
  StatusCounters s = m.as().PredictStatus();
  EXPECT_EQ(s.vm_size_kb, 48u * 4);
  EXPECT_EQ(s.vm_lck_kb, 16u);
  EXPECT_EQ(s.vm_data_kb, 26u * 4);
  EXPECT_EQ(s.vm_stk_kb, 12u);
  EXPECT_EQ(s.vm_exe_kb, 16u);
  EXPECT_EQ(s.vm_lib_kb, 24u);
  // The text is capped by exec_vm.
  m.as().SetCodeRange(kBase, kBase + 100 * kPageSize);
  s = m.as().PredictStatus();
  EXPECT_EQ(s.vm_exe_kb, 40u);
  EXPECT_EQ(s.vm_lib_kb, 0u);
  // mlock populated the 4 pages: PUD, PMD and one PTE table.
  EXPECT_EQ(s.vm_pte_kb, 12u);
}

TEST(PageTables, ThpModeFromSysfs) {
  char word[16];
  ASSERT_TRUE(SelectedSysfsChoice("always [madvise] never\n", word, sizeof(word)));
  EXPECT_EQ(std::string(word), "madvise");
  EXPECT_FALSE(SelectedSysfsChoice("always madvise never", word, sizeof(word)));
  const char* kGlobalMadvise = "always [madvise] never\n";
  const char* kGlobalAlways = "[always] madvise never\n";
  const char* kGlobalNever = "always madvise [never]\n";
  EXPECT_EQ(ThpModeFromSysfs(kGlobalMadvise, "always [inherit] madvise never\n"),
            ThpMode::kMadvise);
  EXPECT_EQ(ThpModeFromSysfs(kGlobalAlways, "always [inherit] madvise never\n"), ThpMode::kAlways);
  EXPECT_EQ(ThpModeFromSysfs(kGlobalNever, "always [inherit] madvise never\n"), ThpMode::kNever);
  // The per-size setting wins over the global one.
  EXPECT_EQ(ThpModeFromSysfs(kGlobalNever, "[always] inherit madvise never\n"), ThpMode::kAlways);
  EXPECT_EQ(ThpModeFromSysfs(kGlobalAlways, "always inherit [madvise] never\n"), ThpMode::kMadvise);
  EXPECT_EQ(ThpModeFromSysfs(kGlobalAlways, "always inherit madvise [never]\n"), ThpMode::kNever);
  EXPECT_EQ(ThpModeFromSysfs(kGlobalAlways, nullptr), ThpMode::kAlways);
  EXPECT_EQ(ThpModeFromSysfs(nullptr, nullptr), ThpMode::kNever);
}

TEST(PageTables, VmFlagsLine) {
  Vma v;
  v.flags = kVmRead | kVmWrite | kVmMayRead | kVmMayWrite | kVmMayExec | kVmAccount | kVmLocked |
            kVmLockonfault | kVmNoreserve | kVmHugepage | kVmMergeable | kVmSealed | kVmMaybeGuard |
            kVmPkeyBit0;
  char buf[256];
  const size_t n = RenderVmFlagsLine(v, buf, sizeof(buf));
  EXPECT_EQ(std::string(buf, n), "VmFlags: rd wr mr mw me gu lo lf ac nr hg mg sl \n");
  v.flags = kVmRead | kVmMayRead | kVmNohugepage | kVmDontcopy | kVmDontdump | kVmWipeonfork |
            (uint64_t{1} << 45);
  EXPECT_EQ(std::string(buf, RenderVmFlagsLine(v, buf, sizeof(buf))),
            "VmFlags: rd mr dc wf dd nh ?? \n");
  EXPECT_GE(RenderVmFlagsLine(v, buf, 4), 4u);  // truncation reports the length
}

}  // namespace
}  // namespace vmashadow
