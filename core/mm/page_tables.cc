// page_tables.cc — the x86-64 page-table model (see page_tables.h).
//
// Each function that mirrors kernel code names it; "6.12" is the Debian
// linux-source-6.12 tree, checked on the running 6.18 kernel (docs/page-tables.md and the
// page-table oracle test).
#include "core/mm/page_tables.h"

#include <new>

#include "core/abi/no_syscalls.h"
#include "core/mm/page_tables_internal.h"

namespace vmashadow {

using namespace pt_detail;

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

// mm/memory.c: zap_pmd_range() / zap_pte_range().
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

// mm/memory.c: free_pud_range().
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

// mm/memory.c: free_p4d_range().
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

// mm/memory.c: free_pgd_range().
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

}  // namespace vmashadow
