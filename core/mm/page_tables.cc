// page_tables.cc — the x86-64 page-table model (see page_tables.h).
//
// Each function that mirrors kernel code names it; "6.12" is the Debian
// linux-source-6.12 tree, checked on the running 6.18 kernel (docs/page-tables.md and the
// page-table oracle test).
#include "core/mm/page_tables.h"

#include <new>

#include "core/abi/no_syscalls.h"

namespace vmashadow {

// A PGD, P4D, PUD or PMD table: 512 entries. A PMD entry is 0 (none),
// kHugeEntry (an anonymous huge PMD with its deposited table), kHugeFileEntry
// (a PMD-mapped file or shmem folio: x86 deposits nothing for those) or a
// Pte*; the others are 0 or a Dir*.
struct PageTables::Dir {
  uintptr_t e[kPtrsPerTable] = {};
};

// A PTE table: which entries are mapped and which hold guard markers.
struct PageTables::Pte {
  uint64_t mapped[kPtrsPerTable / 64] = {};
  uint64_t marker[kPtrsPerTable / 64] = {};
};

namespace {

using Dir = PageTables::Dir;
using Pte = PageTables::Pte;

constexpr uintptr_t kHugeEntry = 1;
constexpr uintptr_t kHugeFileEntry = 2;
constexpr int kWords = kPtrsPerTable / 64;

// Which kind of table an entry points at (for FreeAll/DropSubtree).
enum Level : int { kLevelPte = 0, kLevelPmd = 1, kLevelPud = 2, kLevelP4d = 3 };

inline uint32_t Index(uint64_t addr, int shift) {
  return static_cast<uint32_t>((addr >> shift) & (kPtrsPerTable - 1));
}

// pXd_addr_end(): the next `size` boundary after addr, or end if that comes
// first (the "- 1" comparisons make end 0 mean the top).
inline uint64_t AddrEnd(uint64_t addr, uint64_t end, uint64_t size) {
  const uint64_t boundary = (addr + size) & ~(size - 1);
  return boundary - 1 < end - 1 ? boundary : end;
}

// Bits [from, to) of a 512-bit map.
void SetBits(uint64_t* w, uint32_t from, uint32_t to) {
  for (uint32_t i = from; i < to;) {
    const uint32_t word = i / 64;
    const uint32_t bit = i % 64;
    const uint32_t n = (to - i) < (64 - bit) ? (to - i) : (64 - bit);
    const uint64_t mask = n == 64 ? ~uint64_t{0} : ((uint64_t{1} << n) - 1) << bit;
    w[word] |= mask;
    i += n;
  }
}

void ClearBits(uint64_t* w, uint32_t from, uint32_t to) {
  for (uint32_t i = from; i < to;) {
    const uint32_t word = i / 64;
    const uint32_t bit = i % 64;
    const uint32_t n = (to - i) < (64 - bit) ? (to - i) : (64 - bit);
    const uint64_t mask = n == 64 ? ~uint64_t{0} : ((uint64_t{1} << n) - 1) << bit;
    w[word] &= ~mask;
    i += n;
  }
}

inline bool TestBit(const uint64_t* w, uint32_t i) { return (w[i / 64] >> (i % 64)) & 1; }

// Population count without libgcc's __popcountdi2 (core links libc only).
inline uint32_t PopCount(uint64_t x) {
  x = x - ((x >> 1) & 0x5555555555555555ULL);
  x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
  x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
  return static_cast<uint32_t>((x * 0x0101010101010101ULL) >> 56);
}

uint32_t CountBits(const uint64_t* w, uint32_t from, uint32_t to) {
  uint32_t n = 0;
  for (uint32_t i = from; i < to;) {
    const uint32_t word = i / 64;
    const uint32_t bit = i % 64;
    const uint32_t k = (to - i) < (64 - bit) ? (to - i) : (64 - bit);
    const uint64_t mask = k == 64 ? ~uint64_t{0} : ((uint64_t{1} << k) - 1) << bit;
    n += PopCount(w[word] & mask);
    i += k;
  }
  return n;
}

bool PteEmpty(const Pte* p) {
  for (int i = 0; i < kWords; ++i) {
    if (p->mapped[i] != 0 || p->marker[i] != 0) return false;
  }
  return true;
}

inline bool IsHuge(uintptr_t e) { return e == kHugeEntry || e == kHugeFileEntry; }
inline bool IsTable(uintptr_t e) { return e != 0 && !IsHuge(e); }
inline Pte* AsPte(uintptr_t e) { return reinterpret_cast<Pte*>(e); }
inline Dir* AsDir(uintptr_t e) { return reinterpret_cast<Dir*>(e); }
inline uintptr_t ToEntry(const void* p) { return reinterpret_cast<uintptr_t>(p); }

inline uint32_t PteIndex(uint64_t addr) { return Index(addr, static_cast<int>(kPageShift)); }

// The end of the PTE-index range of [a, next) inside one PMD slot: next may
// be the slot's end, which has index 0 in the next slot.
inline uint32_t PteIndexEnd(uint64_t a, uint64_t next) {
  return PteIndex(a) + static_cast<uint32_t>((next - a) >> kPageShift);
}

}  // namespace

// ---------------------------------------------------------------------------
// Geometry and protections.

PtIndex SplitVirtualAddress(uint64_t addr, int levels) {
  PtIndex x;
  x.pgd = Index(addr, PgdirShift(levels));
  x.p4d = levels == 5 ? Index(addr, kP4dShift) : 0;
  x.pud = Index(addr, kPudShift);
  x.pmd = Index(addr, kPmdShift);
  x.pte = Index(addr, static_cast<int>(kPageShift));
  x.offset = static_cast<uint32_t>(addr & (kPageSize - 1));
  return x;
}

// Mirrors vm_get_page_prot() and protection_map[] (arch/x86/mm/pgprot.c,
// arch/x86/include/asm/pgtable_types.h PAGE_* definitions; 6.12).
uint64_t VmGetPageProt(uint64_t vm_flags, bool nx_supported) {
  using namespace pte_bits;
  constexpr uint64_t kPageNone = kAccessed | kProtNone;
  constexpr uint64_t kPageShared = kPresent | kRw | kUser | kAccessed | kNx;
  constexpr uint64_t kPageSharedExec = kPresent | kRw | kUser | kAccessed;
  constexpr uint64_t kPageCopy = kPresent | kUser | kAccessed | kNx;
  constexpr uint64_t kPageCopyExec = kPresent | kUser | kAccessed;
  constexpr uint64_t kPageReadonly = kPresent | kUser | kAccessed | kNx;
  constexpr uint64_t kPageReadonlyExec = kPresent | kUser | kAccessed;
  // Indexed by VM_READ(1)|VM_WRITE(2)|VM_EXEC(4)|VM_SHARED(8).
  constexpr uint64_t kProtectionMap[16] = {
      kPageNone,         kPageReadonly,     kPageCopy,       kPageCopy,
      kPageReadonlyExec, kPageReadonlyExec, kPageCopyExec,   kPageCopyExec,
      kPageNone,         kPageReadonly,     kPageShared,     kPageShared,
      kPageReadonlyExec, kPageReadonlyExec, kPageSharedExec, kPageSharedExec,
  };
  uint64_t val = kProtectionMap[vm_flags & (kVmRead | kVmWrite | kVmExec | kVmShared)];
  val |= ((vm_flags & kVmPkeyMask) >> kVmPkeyShift) << kPkeyShift;
  if ((val & kPresent) && !nx_supported) val &= ~kNx;
  return val;
}

// Mirrors vma_wants_writenotify() (mm/vma.c, 6.12) with what the model knows
// of the backing (see the header).
bool VmaWantsWriteNotify(const Vma& v) {
  if ((v.flags & (kVmWrite | kVmShared)) != (kVmWrite | kVmShared)) return false;
  if (v.file != nullptr && v.special == SpecialKind::kNone &&
      (v.file->kind == FileKind::kRegular || v.file->kind == FileKind::kRegularThp)) {
    return true;  // page_mkwrite / dirty-tracking writeback
  }
  return (v.flags & kVmUffdWp) != 0;
}

// Mirrors vma_set_page_prot() (mm/mmap.c, 6.12).
uint64_t VmaPageProt(const Vma& v, bool nx_supported) {
  uint64_t flags = v.flags;
  if (VmaWantsWriteNotify(v)) flags &= ~kVmShared;
  return VmGetPageProt(flags, nx_supported);
}

// ---------------------------------------------------------------------------
// Lifetime.

PageTables::PageTables(Arena* arena, int levels) : arena_(arena), levels_(levels == 5 ? 5 : 4) {}

PageTables::~PageTables() { Clear(); }

void PageTables::Clear() {
  if (pgd_ != nullptr) {
    const int top = levels_ == 5 ? kLevelP4d : kLevelPud;
    for (uintptr_t& e : pgd_->e) {
      if (e != 0) FreeAll(e, top);
      e = 0;
    }
    FreeDir(pgd_);
    pgd_ = nullptr;
  }
  counts_ = PageTableCounts{};
  broken_ = false;
}

void PageTables::SetLevels(int levels) {
  levels = levels == 5 ? 5 : 4;
  if (levels == levels_) return;
  Clear();
  levels_ = levels;
}

void PageTables::Swap(PageTables& other) {
  Arena* a = arena_;
  arena_ = other.arena_;
  other.arena_ = a;
  const int l = levels_;
  levels_ = other.levels_;
  other.levels_ = l;
  Dir* p = pgd_;
  pgd_ = other.pgd_;
  other.pgd_ = p;
  const PageTableCounts c = counts_;
  counts_ = other.counts_;
  other.counts_ = c;
  const bool b = broken_;
  broken_ = other.broken_;
  other.broken_ = b;
}

PageTables::Dir* PageTables::NewDir() {
  void* p = arena_->Allocate(sizeof(Dir));
  if (p == nullptr) {
    broken_ = true;
    return nullptr;
  }
  return new (p) Dir();
}

PageTables::Pte* PageTables::NewPte() {
  void* p = arena_->Allocate(sizeof(Pte));
  if (p == nullptr) {
    broken_ = true;
    return nullptr;
  }
  return new (p) Pte();
}

void PageTables::FreeDir(Dir* d) { arena_->Free(d, sizeof(Dir)); }
void PageTables::FreePte(Pte* p) { arena_->Free(p, sizeof(Pte)); }

// Frees the model memory below and including `entry` (a table of `level`),
// without touching the counts.
void PageTables::FreeAll(uintptr_t entry, int level) {
  if (level == kLevelPte) {
    if (IsTable(entry)) FreePte(AsPte(entry));
    return;
  }
  Dir* d = AsDir(entry);
  for (uintptr_t e : d->e) {
    if (e != 0) FreeAll(e, level - 1);
  }
  FreeDir(d);
}

// What still hangs below a freed table: the kernel would lose these tables
// without decrementing its counters, so they stay counted (as leaked).
void PageTables::DropSubtree(uintptr_t entry, int level) {
  if (level == kLevelPte) {
    if (entry == kHugeFileEntry) return;  // no table behind it
    if (entry == kHugeEntry) {
      --counts_.deposited;
    } else {
      FreePte(AsPte(entry));
    }
    ++counts_.leaked;
    return;
  }
  Dir* d = AsDir(entry);
  for (uintptr_t& e : d->e) {
    if (e != 0) DropSubtree(e, level - 1);
    e = 0;
  }
  FreeDir(d);
  if (level == kLevelP4d) {
    --counts_.p4d_tables;  // the kernel does not count P4D tables
  } else {
    ++counts_.leaked;
  }
}

// ---------------------------------------------------------------------------
// Walking and allocating (pgd_offset, p4d_alloc, pud_alloc, pmd_alloc,
// pte_alloc: include/linux/mm.h, mm/memory.c 6.12).

uintptr_t* PageTables::PudSlot(uint64_t addr, bool alloc) {
  if (pgd_ == nullptr) {
    if (!alloc) return nullptr;
    pgd_ = NewDir();
    if (pgd_ == nullptr) return nullptr;
  }
  uintptr_t* slot = &pgd_->e[Index(addr, PgdirShift(levels_))];
  if (levels_ == 4) return slot;  // the P4D is folded into the PGD
  if (*slot == 0) {
    if (!alloc) return nullptr;
    Dir* p4d = NewDir();
    if (p4d == nullptr) return nullptr;
    *slot = ToEntry(p4d);
    ++counts_.p4d_tables;
  }
  return &AsDir(*slot)->e[Index(addr, kP4dShift)];
}

const uintptr_t* PageTables::PudSlotConst(uint64_t addr) const {
  if (pgd_ == nullptr) return nullptr;
  const uintptr_t* slot = &pgd_->e[Index(addr, PgdirShift(levels_))];
  if (levels_ == 4) return slot;
  if (*slot == 0) return nullptr;
  return &AsDir(*slot)->e[Index(addr, kP4dShift)];
}

PageTables::Dir* PageTables::PudTable(uint64_t addr, bool alloc) {
  uintptr_t* slot = PudSlot(addr, alloc);
  if (slot == nullptr) return nullptr;
  if (*slot == 0) {
    if (!alloc) return nullptr;
    Dir* pud = NewDir();
    if (pud == nullptr) return nullptr;
    *slot = ToEntry(pud);
    ++counts_.pud_tables;  // __pud_alloc: mm_inc_nr_puds
  }
  return AsDir(*slot);
}

PageTables::Dir* PageTables::PmdTable(uint64_t addr, bool alloc) {
  Dir* pud = PudTable(addr, alloc);
  if (pud == nullptr) return nullptr;
  uintptr_t& e = pud->e[Index(addr, kPudShift)];
  if (e == 0) {
    if (!alloc) return nullptr;
    Dir* pmd = NewDir();
    if (pmd == nullptr) return nullptr;
    e = ToEntry(pmd);
    ++counts_.pmd_tables;  // __pmd_alloc: mm_inc_nr_pmds
  }
  return AsDir(e);
}

uintptr_t* PageTables::PmdEntry(uint64_t addr, bool alloc) {
  Dir* pmd = PmdTable(addr, alloc);
  if (pmd == nullptr) return nullptr;
  return &pmd->e[Index(addr, kPmdShift)];
}

const uintptr_t* PageTables::PmdEntryConst(uint64_t addr) const {
  const uintptr_t* slot = PudSlotConst(addr);
  if (slot == nullptr || *slot == 0) return nullptr;
  const uintptr_t pmd = AsDir(*slot)->e[Index(addr, kPudShift)];
  if (pmd == 0) return nullptr;
  return &AsDir(pmd)->e[Index(addr, kPmdShift)];
}

PageTables::Pte* PageTables::PteTable(uint64_t addr, bool alloc) {
  uintptr_t* e = PmdEntry(addr, alloc);
  if (e == nullptr || IsHuge(*e)) return nullptr;
  if (*e == 0) {
    if (!alloc) return nullptr;
    Pte* p = NewPte();
    if (p == nullptr) return nullptr;
    *e = ToEntry(p);
    ++counts_.pte_tables;  // __pte_alloc: mm_inc_nr_ptes
  }
  return AsPte(*e);
}

// ---------------------------------------------------------------------------
// Installing and zapping entries.

void PageTables::MapRange(uint64_t start, uint64_t end) {
  for (uint64_t a = start; a < end;) {
    const uint64_t next = AddrEnd(a, end, kPmdSize);
    uintptr_t* e = PmdEntry(a, /*alloc=*/true);
    if (e == nullptr) return;  // arena exhausted (broken_)
    if (!IsHuge(*e)) {
      Pte* p = PteTable(a, /*alloc=*/true);
      if (p == nullptr) return;
      SetBits(p->mapped, PteIndex(a), PteIndexEnd(a, next));
      ClearBits(p->marker, PteIndex(a), PteIndexEnd(a, next));
    }
    a = next;
  }
}

bool PageTables::MapHuge(uint64_t haddr, bool deposit) {
  uintptr_t* e = PmdEntry(haddr & kPmdMask, /*alloc=*/true);
  if (e == nullptr || *e != 0) return false;
  if (!deposit) {
    *e = kHugeFileEntry;  // do_set_pmd(): arch_needs_pgtable_deposit() is false on x86
    return true;
  }
  // pte_alloc_one() + pgtable_trans_huge_deposit(): the deposit counts.
  *e = kHugeEntry;
  ++counts_.pte_tables;
  ++counts_.deposited;
  return true;
}

bool PageTables::PmdNone(uint64_t addr) const {
  const uintptr_t* e = PmdEntryConst(addr);
  return e == nullptr || *e == 0;
}

// Mirrors __split_huge_pmd_locked() (mm/huge_memory.c, 6.12) for anonymous
// memory: the deposited table is withdrawn and filled with 512 PTEs.
void PageTables::SplitHuge(uint64_t addr) {
  uintptr_t* e = PmdEntry(addr, /*alloc=*/false);
  if (e == nullptr || !IsHuge(*e)) return;
  if (*e == kHugeFileEntry) {
    // A file or shmem PMD is just cleared: its pages fault back as PTEs.
    *e = 0;
    return;
  }
  Pte* p = NewPte();
  if (p == nullptr) return;
  SetBits(p->mapped, 0, kPtrsPerTable);
  *e = ToEntry(p);
  --counts_.deposited;  // still counted in pte_tables
}

void PageTables::Zap(uint64_t start, uint64_t end, bool drop_markers, bool reclaim) {
  for (uint64_t a = start; a < end;) {
    uint64_t next = 0;
    uintptr_t* e = LookupPmd(a, end, &next);
    if (e == nullptr || *e == 0) {
      a = next;
      continue;
    }
    if (IsHuge(*e)) {
      if ((a & ~kPmdMask) == 0 && next - a == kPmdSize) {
        // zap_huge_pmd(): the mapping and its deposited table go.
        if (*e == kHugeEntry) {
          --counts_.pte_tables;
          --counts_.deposited;
        }
        *e = 0;
        a = next;
        continue;
      }
      SplitHuge(a);
      if (*e == 0) {
        a = next;
        continue;
      }
      if (IsHuge(*e)) return;  // arena exhausted
    }
    Pte* p = AsPte(*e);
    ClearBits(p->mapped, PteIndex(a), PteIndexEnd(a, next));
    if (drop_markers) ClearBits(p->marker, PteIndex(a), PteIndexEnd(a, next));
    // PT_RECLAIM: reclaim_pt_is_enabled() needs the zap to cover the whole
    // PMD range; try_to_free_pte() then frees a table with no entry left.
    if (reclaim && next - a >= kPmdSize && PteEmpty(p)) {
      FreePte(p);
      *e = 0;
      --counts_.pte_tables;
    }
    a = next;
  }
}

void PageTables::InstallGuards(uint64_t start, uint64_t end) {
  Zap(start, end, /*drop_markers=*/false, /*reclaim=*/false);
  for (uint64_t a = start; a < end;) {
    const uint64_t next = AddrEnd(a, end, kPmdSize);
    Pte* p = PteTable(a, /*alloc=*/true);
    if (p == nullptr) return;
    SetBits(p->marker, PteIndex(a), PteIndexEnd(a, next));
    a = next;
  }
}

void PageTables::RemoveGuards(uint64_t start, uint64_t end) {
  for (uint64_t a = start; a < end;) {
    uint64_t next = 0;
    uintptr_t* e = LookupPmd(a, end, &next);
    if (e != nullptr && IsTable(*e)) {
      ClearBits(AsPte(*e)->marker, PteIndex(a), PteIndexEnd(a, next));
    }
    a = next;
  }
}

// The PMD entry covering a (nullptr when a table above it is missing) and,
// in *next, where a walk towards end continues: the end of a's 2 MiB slot, or
// of the whole region the missing table would have covered.
uintptr_t* PageTables::LookupPmd(uint64_t a, uint64_t end, uint64_t* next) const {
  *next = AddrEnd(a, end, kPmdSize);
  if (pgd_ == nullptr) {
    *next = end;
    return nullptr;
  }
  const uintptr_t g = pgd_->e[Index(a, PgdirShift(levels_))];
  if (g == 0) {
    *next = AddrEnd(a, end, uint64_t{1} << PgdirShift(levels_));
    return nullptr;
  }
  uintptr_t pud = g;
  if (levels_ == 5) {
    pud = AsDir(g)->e[Index(a, kP4dShift)];
    if (pud == 0) {
      *next = AddrEnd(a, end, kP4dSize);
      return nullptr;
    }
  }
  const uintptr_t pmd = AsDir(pud)->e[Index(a, kPudShift)];
  if (pmd == 0) {
    *next = AddrEnd(a, end, kPudSize);
    return nullptr;
  }
  return &AsDir(pmd)->e[Index(a, kPmdShift)];
}

// ---------------------------------------------------------------------------
// free_pgd_range() and its helpers (mm/memory.c, 6.12). The same "- 1"
// arithmetic: addr and floor 0 mean the bottom, end and ceiling 0 the top.

void PageTables::FreePmdRange(uintptr_t* pud_slot, uint64_t addr, uint64_t end, uint64_t floor,
                              uint64_t ceiling) {
  Dir* pmd = AsDir(*pud_slot);
  uint64_t start = addr;
  do {
    const uint64_t next = AddrEnd(addr, end, kPmdSize);
    uintptr_t& e = pmd->e[Index(addr, kPmdShift)];
    if (e != 0) {
      // free_pte_range(): the PTE table goes (mm_dec_nr_ptes). A huge PMD
      // cannot be here (unmap_vmas zapped it); pmd_none_or_clear_bad would
      // drop it, leaking its deposit.
      if (e == kHugeFileEntry) {
        // Nothing behind it.
      } else if (e == kHugeEntry) {
        DropSubtree(e, kLevelPte);
      } else {
        FreePte(AsPte(e));
        --counts_.pte_tables;
      }
      e = 0;
    }
    addr = next;
  } while (addr != end);

  start &= kPudMask;
  if (start < floor) return;
  if (ceiling != 0) {
    ceiling &= kPudMask;
    if (ceiling == 0) return;
  }
  if (end - 1 > ceiling - 1) return;
  // pud_clear() + pmd_free_tlb(): mm_dec_nr_pmds.
  for (uintptr_t& e : pmd->e) {
    if (e != 0) DropSubtree(e, kLevelPte);
    e = 0;
  }
  FreeDir(pmd);
  *pud_slot = 0;
  --counts_.pmd_tables;
}

void PageTables::FreePudRange(uintptr_t* p4d_slot, uint64_t addr, uint64_t end, uint64_t floor,
                              uint64_t ceiling) {
  Dir* pud = AsDir(*p4d_slot);
  uint64_t start = addr;
  do {
    const uint64_t next = AddrEnd(addr, end, kPudSize);
    uintptr_t& e = pud->e[Index(addr, kPudShift)];
    if (e != 0) FreePmdRange(&e, addr, next, floor, ceiling);
    addr = next;
  } while (addr != end);

  const uint64_t p4d_mask = ~(kP4dSize - 1);
  start &= p4d_mask;
  if (start < floor) return;
  if (ceiling != 0) {
    ceiling &= p4d_mask;
    if (ceiling == 0) return;
  }
  if (end - 1 > ceiling - 1) return;
  // p4d_clear() + pud_free_tlb(): mm_dec_nr_puds.
  for (uintptr_t& e : pud->e) {
    if (e != 0) DropSubtree(e, kLevelPmd);
    e = 0;
  }
  FreeDir(pud);
  *p4d_slot = 0;
  --counts_.pud_tables;
}

void PageTables::FreeP4dRange(uintptr_t* pgd_slot, uint64_t addr, uint64_t end, uint64_t floor,
                              uint64_t ceiling) {
  if (levels_ == 4) {
    // Folded P4D: the PGD entry is the P4D entry; pgd_clear() is a no-op.
    FreePudRange(pgd_slot, addr, end, floor, ceiling);
    return;
  }
  Dir* p4d = AsDir(*pgd_slot);
  uint64_t start = addr;
  do {
    const uint64_t next = AddrEnd(addr, end, kP4dSize);
    uintptr_t& e = p4d->e[Index(addr, kP4dShift)];
    if (e != 0) FreePudRange(&e, addr, next, floor, ceiling);
    addr = next;
  } while (addr != end);

  const uint64_t pgdir_mask = ~((uint64_t{1} << PgdirShift(levels_)) - 1);
  start &= pgdir_mask;
  if (start < floor) return;
  if (ceiling != 0) {
    ceiling &= pgdir_mask;
    if (ceiling == 0) return;
  }
  if (end - 1 > ceiling - 1) return;
  // pgd_clear() + p4d_free_tlb(): P4D tables are not counted.
  for (uintptr_t& e : p4d->e) {
    if (e != 0) DropSubtree(e, kLevelPud);
    e = 0;
  }
  FreeDir(p4d);
  *pgd_slot = 0;
  --counts_.p4d_tables;
}

void PageTables::FreePgdRange(uint64_t addr, uint64_t end, uint64_t floor, uint64_t ceiling) {
  addr &= kPmdMask;
  if (addr < floor) {
    addr += kPmdSize;
    if (addr == 0) return;
  }
  if (ceiling != 0) {
    ceiling &= kPmdMask;
    if (ceiling == 0) return;
  }
  if (end - 1 > ceiling - 1) end -= kPmdSize;
  if (addr > end - 1) return;
  if (pgd_ == nullptr) return;
  const uint64_t pgdir_size = uint64_t{1} << PgdirShift(levels_);
  do {
    const uint64_t next = AddrEnd(addr, end, pgdir_size);
    uintptr_t& e = pgd_->e[Index(addr, PgdirShift(levels_))];
    if (e != 0) FreeP4dRange(&e, addr, next, floor, ceiling);
    addr = next;
  } while (addr != end);
}

// ---------------------------------------------------------------------------
// mremap: move_page_tables() (mm/mremap.c, 6.12).

namespace {

// get_extent(): up to the next `size` boundary of both old and new.
uint64_t GetExtent(uint64_t size, uint64_t old_addr, uint64_t old_end, uint64_t new_addr) {
  const uint64_t mask = ~(size - 1);
  uint64_t next = (old_addr + size) & mask;
  uint64_t extent = next - old_addr;
  if (extent > old_end - old_addr) extent = old_end - old_addr;
  next = (new_addr + size) & mask;
  if (extent > next - new_addr) extent = next - new_addr;
  return extent;
}

}  // namespace

void PageTables::MoveRange(uint64_t old_addr, uint64_t new_addr, uint64_t len) {
  const uint64_t old_end = old_addr + len;
  uint64_t extent = 0;
  for (; old_addr < old_end; old_addr += extent, new_addr += extent) {
    extent = GetExtent(kPudSize, old_addr, old_end, new_addr);
    // get_old_pud(): nothing to move without a PMD table at old_addr.
    Dir* old_pud = PudTable(old_addr, /*alloc=*/false);
    if (old_pud == nullptr) continue;
    uintptr_t& old_pud_e = old_pud->e[Index(old_addr, kPudShift)];
    if (old_pud_e == 0) continue;
    // alloc_new_pud(): p4d_alloc + pud_alloc at the destination.
    Dir* new_pud = PudTable(new_addr, /*alloc=*/true);
    if (new_pud == nullptr) return;
    uintptr_t& new_pud_e = new_pud->e[Index(new_addr, kPudShift)];
    if (extent == kPudSize && new_pud_e == 0) {
      // move_normal_pud() (HAVE_MOVE_PUD): the whole PMD table moves.
      new_pud_e = old_pud_e;
      old_pud_e = 0;
      continue;
    }
    extent = GetExtent(kPmdSize, old_addr, old_end, new_addr);
    // get_old_pmd(): nothing without an entry.
    uintptr_t& old_e = AsDir(old_pud_e)->e[Index(old_addr, kPmdShift)];
    if (old_e == 0) continue;
    // alloc_new_pmd(): pmd_alloc at the destination.
    uintptr_t* new_e = PmdEntry(new_addr, /*alloc=*/true);
    if (new_e == nullptr) return;
    if (IsHuge(old_e)) {
      if (extent == kPmdSize && *new_e == 0) {
        // move_huge_pmd(): the mapping and its deposit move.
        *new_e = old_e;
        old_e = 0;
        continue;
      }
      SplitHuge(old_addr);
      if (old_e == 0) continue;  // a file PMD: cleared, nothing to move
      if (IsHuge(old_e)) return;
    } else if (extent == kPmdSize && *new_e == 0) {
      // move_normal_pmd() (HAVE_MOVE_PMD): the whole PTE table moves.
      *new_e = old_e;
      old_e = 0;
      continue;
    }
    // pte_alloc() at the destination, then move_ptes().
    Pte* dst = PteTable(new_addr, /*alloc=*/true);
    if (dst == nullptr) return;
    Pte* src = AsPte(old_e);
    const uint32_t si = PteIndex(old_addr);
    const uint32_t di = PteIndex(new_addr);
    const uint32_t n = static_cast<uint32_t>(extent >> kPageShift);
    for (uint32_t k = 0; k < n; ++k) {
      if (TestBit(src->mapped, si + k)) SetBits(dst->mapped, di + k, di + k + 1);
      if (TestBit(src->marker, si + k)) SetBits(dst->marker, di + k, di + k + 1);
    }
    ClearBits(src->mapped, si, si + n);
    ClearBits(src->marker, si, si + n);
  }
}

// ---------------------------------------------------------------------------
// fork: copy_page_range() (mm/memory.c, 6.12).

void PageTables::CopyRangeTo(PageTables* dst, uint64_t start, uint64_t end) const {
  if (pgd_ == nullptr || start >= end) return;
  const uint64_t pgdir_size = uint64_t{1} << PgdirShift(levels_);
  for (uint64_t addr = start; addr != end;) {
    const uint64_t pgd_next = AddrEnd(addr, end, pgdir_size);
    if (pgd_->e[Index(addr, PgdirShift(levels_))] == 0) {
      addr = pgd_next;
      continue;
    }
    // copy_p4d_range(): p4d_alloc in the child (a no-op when folded).
    for (uint64_t a4 = addr; a4 != pgd_next;) {
      const uint64_t p4d_next = AddrEnd(a4, pgd_next, kP4dSize);
      const uintptr_t* src_p4d = PudSlotConst(a4);
      if (levels_ == 5 && dst->PudSlot(a4, /*alloc=*/true) == nullptr) return;
      if (src_p4d == nullptr || *src_p4d == 0) {
        a4 = p4d_next;
        continue;
      }
      // copy_pud_range(): pud_alloc in the child.
      if (dst->PudTable(a4, /*alloc=*/true) == nullptr) return;
      const Dir* src_pud = AsDir(*src_p4d);
      for (uint64_t a3 = a4; a3 != p4d_next;) {
        const uint64_t pud_next = AddrEnd(a3, p4d_next, kPudSize);
        const uintptr_t src_pmd_e = src_pud->e[Index(a3, kPudShift)];
        if (src_pmd_e == 0) {
          a3 = pud_next;
          continue;
        }
        // copy_pmd_range(): pmd_alloc in the child.
        if (dst->PmdTable(a3, /*alloc=*/true) == nullptr) return;
        const Dir* src_pmd = AsDir(src_pmd_e);
        for (uint64_t a2 = a3; a2 != pud_next;) {
          const uint64_t pmd_next = AddrEnd(a2, pud_next, kPmdSize);
          const uintptr_t e = src_pmd->e[Index(a2, kPmdShift)];
          if (e == kHugeEntry) {
            // copy_huge_pmd(): the child gets the mapping and a deposit.
            if (!dst->MapHuge(a2 & kPmdMask, /*deposit=*/true)) return;
          } else if (e == kHugeFileEntry) {
            // copy_huge_pmd(): "skip if can be re-fill on fault".
          } else if (e != 0) {
            // copy_pte_range(): pte_alloc in the child, then the entries.
            Pte* d = dst->PteTable(a2, /*alloc=*/true);
            if (d == nullptr) return;
            const Pte* s = AsPte(e);
            const uint32_t lo = PteIndex(a2);
            const uint32_t hi = PteIndexEnd(a2, pmd_next);
            for (uint32_t k = lo; k < hi; ++k) {
              if (TestBit(s->mapped, k)) SetBits(d->mapped, k, k + 1);
              if (TestBit(s->marker, k)) SetBits(d->marker, k, k + 1);
            }
          }
          a2 = pmd_next;
        }
        a3 = pud_next;
      }
      a4 = p4d_next;
    }
    addr = pgd_next;
  }
}

// ---------------------------------------------------------------------------
// Learning.

void PageTables::LearnMapped(uint64_t lo, uint64_t hi, bool huge, bool deposit) {
  lo = PageDown(lo);
  hi = PageAlign(hi);
  if (!huge) {
    MapRange(lo, hi);
    return;
  }
  for (uint64_t a = lo; a < hi;) {
    const uint64_t next = AddrEnd(a, hi, kPmdSize);
    if ((a & ~kPmdMask) == 0 && next - a == kPmdSize) {
      uintptr_t* e = PmdEntry(a, /*alloc=*/true);
      if (e == nullptr) return;
      if (!deposit) {
        // A PMD leaf has no table below it (and no deposit on x86).
        if (IsTable(*e)) {
          FreePte(AsPte(*e));
          --counts_.pte_tables;
        } else if (*e == kHugeEntry) {
          --counts_.pte_tables;
          --counts_.deposited;
        }
        *e = kHugeFileEntry;
      } else if (IsTable(*e)) {
        // khugepaged/MADV_COLLAPSE: the PTE table became the deposit.
        FreePte(AsPte(*e));
        *e = kHugeEntry;
        ++counts_.deposited;
      } else if (*e == kHugeFileEntry) {
        *e = 0;
        MapHuge(a, /*deposit=*/true);
      } else if (*e == 0) {
        MapHuge(a, /*deposit=*/true);
      }
    } else {
      MapRange(a, next);
    }
    a = next;
  }
}

void PageTables::LearnUnmapped(uint64_t lo, uint64_t hi) {
  lo = PageDown(lo);
  hi = PageAlign(hi);
  for (uint64_t a = lo; a < hi;) {
    uint64_t next = 0;
    uintptr_t* e = LookupPmd(a, hi, &next);
    if (e != nullptr && IsHuge(*e)) SplitHuge(a);
    if (e != nullptr && IsTable(*e)) {
      ClearBits(AsPte(*e)->mapped, PteIndex(a), PteIndexEnd(a, next));
    }
    a = next;
  }
}

void PageTables::LearnGuards(uint64_t lo, uint64_t hi) {
  lo = PageDown(lo);
  hi = PageAlign(hi);
  for (uint64_t a = lo; a < hi;) {
    const uint64_t next = AddrEnd(a, hi, kPmdSize);
    uintptr_t* e = PmdEntry(a, /*alloc=*/true);
    if (e == nullptr) return;
    if (IsHuge(*e)) SplitHuge(a);
    Pte* p = PteTable(a, /*alloc=*/true);
    if (p == nullptr) return;
    SetBits(p->marker, PteIndex(a), PteIndexEnd(a, next));
    ClearBits(p->mapped, PteIndex(a), PteIndexEnd(a, next));
    a = next;
  }
}

// ---------------------------------------------------------------------------
// Queries.

PageWalk PageTables::Walk(uint64_t addr) const {
  PageWalk w;
  w.index = SplitVirtualAddress(addr, levels_);
  if (pgd_ == nullptr) return w;
  const uintptr_t pgd_e = pgd_->e[w.index.pgd];
  if (levels_ == 5) w.p4d_table = pgd_e != 0;
  const uintptr_t* slot = PudSlotConst(addr);
  if (slot == nullptr || *slot == 0) return w;
  w.pud_table = true;
  const uintptr_t pmd_tbl = AsDir(*slot)->e[w.index.pud];
  if (pmd_tbl == 0) return w;
  w.pmd_table = true;
  const uintptr_t e = AsDir(pmd_tbl)->e[w.index.pmd];
  if (e == 0) return w;
  w.pte_table = e != kHugeFileEntry;
  if (IsHuge(e)) {
    w.pmd = PmdKind::kHuge;
    w.mapped = true;
    return w;
  }
  w.pmd = PmdKind::kTable;
  w.mapped = TestBit(AsPte(e)->mapped, w.index.pte);
  w.guard = TestBit(AsPte(e)->marker, w.index.pte);
  return w;
}

bool PageTables::IsMapped(uint64_t addr) const { return Walk(addr).mapped; }

uint64_t PageTables::CountMapped(uint64_t start, uint64_t end) const {
  uint64_t n = 0;
  for (uint64_t a = PageDown(start); a < end;) {
    uint64_t next = 0;
    const uintptr_t* e = LookupPmd(a, end, &next);
    if (e != nullptr && IsHuge(*e)) {
      n += (next - a) >> kPageShift;
    } else if (e != nullptr && *e != 0) {
      n += CountBits(AsPte(*e)->mapped, PteIndex(a), PteIndexEnd(a, next));
    }
    a = next;
  }
  return n;
}

bool PageTables::NextMappedRun(uint64_t from, uint64_t end, uint64_t* lo, uint64_t* hi,
                               bool* huge) const {
  bool in_run = false;
  for (uint64_t a = PageDown(from); a < end;) {
    uint64_t next = 0;
    const uintptr_t* e = LookupPmd(a, end, &next);
    const uintptr_t v = e != nullptr ? *e : 0;
    if (IsHuge(v)) {
      if (in_run && !*huge) return true;  // a PTE run ends where the THP starts
      if (!in_run) {
        in_run = true;
        *lo = a;
        *huge = true;
      }
      *hi = next;
    } else if (in_run && *huge) {
      return true;
    } else if (v == 0) {
      if (in_run) return true;
    } else {
      const Pte* p = AsPte(v);
      for (uint32_t i = PteIndex(a), last = PteIndexEnd(a, next); i < last; ++i) {
        const uint64_t page = (a & kPmdMask) + (uint64_t{i} << kPageShift);
        if (TestBit(p->mapped, i)) {
          if (!in_run) {
            in_run = true;
            *lo = page;
            *huge = false;
          }
          *hi = page + kPageSize;
        } else if (in_run) {
          return true;
        }
      }
    }
    a = next;
  }
  return in_run;
}

const char* PageTables::Validate() const {
  uint64_t ptes = 0, pmds = 0, puds = 0, p4ds = 0, deposits = 0;
  if (pgd_ != nullptr) {
    for (uint32_t i = 0; i < kPtrsPerTable; ++i) {
      const uintptr_t g = pgd_->e[i];
      if (g == 0) continue;
      const uintptr_t* pud_slots = &pgd_->e[i];
      uint32_t n_pud_slots = 1;
      if (levels_ == 5) {
        ++p4ds;
        pud_slots = AsDir(g)->e;
        n_pud_slots = kPtrsPerTable;
      }
      for (uint32_t j = 0; j < n_pud_slots; ++j) {
        const uintptr_t pud = pud_slots[j];
        if (pud == 0) continue;
        if (IsHuge(pud)) return "huge entry above the PMD level";
        ++puds;
        for (uintptr_t pmd : AsDir(pud)->e) {
          if (pmd == 0) continue;
          if (IsHuge(pmd)) return "huge entry at the PUD level";
          ++pmds;
          for (uintptr_t e : AsDir(pmd)->e) {
            if (e == 0 || e == kHugeFileEntry) continue;
            ++ptes;
            if (e == kHugeEntry) ++deposits;
          }
        }
      }
    }
  }
  if (deposits != counts_.deposited) return "deposited table count differs from the tables";
  if (p4ds != counts_.p4d_tables) return "P4D table count differs from the tables";
  if (ptes + pmds + puds + counts_.leaked !=
      counts_.pte_tables + counts_.pmd_tables + counts_.pud_tables) {
    return "page-table counts differ from the tables";
  }
  if (counts_.leaked == 0 &&
      (ptes != counts_.pte_tables || pmds != counts_.pmd_tables || puds != counts_.pud_tables)) {
    return "page-table counts differ from the tables (per level)";
  }
  return nullptr;
}

}  // namespace vmashadow
