// page_tables_copy.cc — the page tables' side of mremap and fork:
// move_page_tables() (mm/mremap.c) and copy_page_range() (mm/memory.c),
// 6.12 (see page_tables.h).
#include "core/abi/no_syscalls.h"
#include "core/mm/page_tables.h"
#include "core/mm/page_tables_internal.h"

namespace vmashadow {

using namespace pt_detail;

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

// mm/mremap.c: move_page_tables()'s loop (try_realign_addr() is the caller's).
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

}  // namespace vmashadow
