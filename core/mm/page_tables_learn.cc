// page_tables_learn.cc — learning presence from pagemap, the walk, counts
// and Validate() of the page-table model (see page_tables.h).
#include "core/abi/no_syscalls.h"
#include "core/mm/page_tables.h"
#include "core/mm/page_tables_internal.h"

namespace vmashadow {

using namespace pt_detail;

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
