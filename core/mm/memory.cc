// memory.cc — faults, populate and the page tables' side of the calls:
// handle_mm_fault() and expand_downwards() (Touch), anon_vma_prepare()
// (mm/rmap.c), populate_vma_page_range() (mm/gup.c), unmap_vmas() and
// free_pgtables() (mm/memory.c), THP faults and splits (mm/huge_memory.c).
#include "core/mm/address_space.h"
#include "core/mm/internal.h"

namespace vmashadow {

using Impl = AddressSpace::Impl;

// ---------------------------------------------------------------------------
// Faults and populate.

// include/linux/mm.h: vm_start_gap().
uint64_t Impl::StartGap(const AS& as, const Vma* v) {
  if (!(v->flags & kVmGrowsdown)) return v->start;
  return v->start > as.params_.stack_guard_gap ? v->start - as.params_.stack_guard_gap : 0;
}

// Mirrors anon_vma_prepare() + find_mergeable_anon_vma() (mm/rmap.c, mm/vma.c).
void Impl::PrepareAnon(AS& as, Vma* v) {
  if (v->anon.anon_vma != 0) return;
  // reusable_anon_vma(old, a, b): a directly below b, same policy and file,
  // flags equal but for RWX (and soft-dirty), pgoff linear; old's anon_vma
  // has a singular chain.
  // The flags merging ignores (soft-dirty; the sticky guard flag where the
  // profile has it) are ignored here too.
  const uint64_t ignored = kVmRwx | IgnoredFlags(as);
  auto compatible = [ignored](const Vma* a, const Vma* b) {
    return a->end == b->start && a->policy_id == b->policy_id && a->file == b->file &&
           !((a->flags ^ b->flags) & ~ignored) &&
           b->pgoff == a->pgoff + ((b->start - a->start) >> kPageShift);
  };
  Vma* next = v->next;
  if (next != nullptr && compatible(v, next) && next->anon.anon_vma != 0 &&
      !next->anon.fork_child) {
    v->anon = AnonState{next->anon.anon_vma, false};
    return;
  }
  Vma* prev = v->prev;
  if (prev != nullptr && compatible(prev, v) && prev->anon.anon_vma != 0 &&
      !prev->anon.fork_child) {
    v->anon = AnonState{prev->anon.anon_vma, false};
    return;
  }
  v->anon = AnonState{as.next_anon_vma_++, false};
}

// populate_vma_page_range() (mm/gup.c, 6.12): private writable memory is
// faulted for write (breaking CoW: anon_vma); everything else for read (no
// anon_vma, unless a THP fault prepares one).
int Impl::PopulateVma(AS& as, Vma* v, uint64_t start, uint64_t end) {
  if (v->flags & (kVmIo | kVmPfnmap)) return 0;
  if (v->flags & kVmLockonfault) return 0;
  if (!VmaIsAccessible(v)) return -EFAULT;
  if ((v->flags & (kVmWrite | kVmShared)) == kVmWrite) PrepareAnon(as, v);
  FaultPages(as, v, start > v->start ? start : v->start, end < v->end ? end : v->end);
  return 0;
}

// mm/gup.c: __mm_populate().
int Impl::PopulateRange(AS& as, uint64_t start, uint64_t end, bool ignore_errors) {
  if (start >= end) return 0;
  for (Vma* v = as.tree_.FindVma(start); v != nullptr && v->start < end; v = v->next) {
    const int err = PopulateVma(as, v, start, end);
    if (err != 0 && !ignore_errors) return err;
  }
  return 0;
}

// ---------------------------------------------------------------------------
// Page tables.

// mm/huge_memory.c: vma_adjust_trans_huge() at one boundary.
void Impl::SplitHugeAt(AS& as, uint64_t addr) {
  if ((addr & ~kPmdMask) != 0 && !as.pt_.empty()) as.pt_.SplitHuge(addr);
}

bool Impl::ThpFaultAllowed(const AS& as, const Vma* v, uint64_t haddr) {
  // __thp_vma_allowable_orders() with TVA_IN_PF|TVA_ENFORCE_SYSFS for an
  // anonymous VMA (vma_is_anonymous: no vm_ops), then thp_vma_suitable_order().
  if (!v->is_anonymous()) return false;
  const MmParams& p = as.params_;
  if (p.thp == ThpMode::kNever || p.thp_disabled || (v->flags & kVmNohugepage)) return false;
  if (p.thp == ThpMode::kMadvise && !(v->flags & kVmHugepage)) return false;
  return haddr >= v->start && haddr + kPmdSize <= v->end && haddr + kPmdSize > haddr;
}

uint64_t Impl::FileEnd(const Vma* v) {
  if (v->file == nullptr || v->special != SpecialKind::kNone || v->file->size == 0) return v->end;
  const uint64_t file_pages = PageAlign(v->file->size) >> kPageShift;
  if (v->pgoff >= file_pages) return v->start;
  const uint64_t pages = file_pages - v->pgoff;
  return pages >= v->pages() ? v->end : v->start + (pages << kPageShift);
}

void Impl::FaultPages(AS& as, const Vma* v, uint64_t start, uint64_t end) {
  // Pages past the end of the file SIGBUS: GUP stops there, nothing maps.
  const uint64_t eof = FileEnd(v);
  if (end > eof) end = eof;
  for (uint64_t a = start; a < end;) {
    const uint64_t haddr = a & kPmdMask;
    const uint64_t slot_end = haddr + kPmdSize;
    const uint64_t next = slot_end < end && slot_end > a ? slot_end : end;
    if (ThpFaultAllowed(as, v, haddr) && as.pt_.PmdNone(haddr)) {
      // do_huge_pmd_anonymous_page(): vmf_anon_prepare() first, read or
      // write; then a THP, or the huge zero page for a read fault.
      PrepareAnon(as, const_cast<Vma*>(v));
      as.pt_.MapHuge(haddr);
    } else {
      as.pt_.MapRange(a, next);
    }
    a = next;
  }
}

// mm/memory.c: vma_needs_copy().
bool Impl::VmaNeedsCopy(const AS& as, const Vma* v) {
  if (v->flags & kVmUffdWp) return true;
  if (v->flags & (kVmPfnmap | kVmMixedmap)) return true;
  if (v->anon.anon_vma != 0) return true;
  // 6.19 / 6.18-fc: guard markers of file-backed VMAs survive fork.
  return as.profile_->guard_sticky_flag && (v->flags & kVmMaybeGuard);
}

// mm/memory.c: unmap_vmas() + free_pgtables().
void Impl::UnmapPageTables(AS& as, Vma* first, Vma* last) {
  const uint64_t floor = first->prev != nullptr ? first->prev->end : 0;
  const uint64_t ceiling = last->next != nullptr ? last->next->start : 0;
  // unmap_vmas(): ZAP_FLAG_DROP_MARKER, every removed VMA.
  for (Vma* v = first;; v = v->next) {
    as.pt_.Zap(v->start, v->end, /*drop_markers=*/true, /*reclaim=*/false);
    if (v == last) break;
  }
  // free_pgtables(): VMAs closer than PMD_SIZE go down in one call.
  for (Vma* v = first; v != nullptr;) {
    const uint64_t addr = v->start;
    while (v != last && v->next->start <= v->end + kPmdSize) v = v->next;
    Vma* next = v != last ? v->next : nullptr;
    as.pt_.FreePgdRange(addr, v->end, floor, next != nullptr ? next->start : ceiling);
    v = next;
  }
}

// A user page fault (handle_mm_fault via the x86 fault handler), including
// stack expansion (expand_downwards, mm/mmap.c 6.12).
Outcome AddressSpace::Touch(uint64_t addr, bool write) {
  Vma* v = tree_.FindVma(addr);
  if (v == nullptr) return Impl::Result(-EFAULT);
  if (v->start > addr) {
    if (!(v->flags & kVmGrowsdown)) return Impl::Result(-EFAULT);
    const uint64_t new_start = PageDown(addr);
    if (new_start < params_.mmap_min_addr) return Impl::Result(-EFAULT);
    const Vma* prev = v->prev;
    if (prev != nullptr && !(prev->flags & kVmGrowsdown) && Impl::VmaIsAccessible(prev) &&
        new_start - prev->end < params_.stack_guard_gap) {
      return Impl::Result(-EFAULT);
    }
    if (prev != nullptr && prev->end > new_start) return Impl::Result(-EFAULT);
    // The anon_vma comes first: it stays even when acct_stack_growth()
    // refuses the growth (RLIMIT_STACK...) and the fault fails.
    Impl::PrepareAnon(*this, v);
    const uint64_t grown = (v->start - new_start) >> kPageShift;
    if (grown > v->pgoff) return Impl::Result(-EFAULT);
    if (params_.rlimit_stack != kUnlimited && v->end - new_start > params_.rlimit_stack) {
      return Impl::Result(-EFAULT);
    }
    v->pgoff -= grown;
    const uint64_t old_start = v->start;
    tree_.SetBounds(v, new_start, v->end);
    if (write ? !(v->flags & kVmWrite) : !Impl::VmaIsAccessible(v)) {
      return Impl::Result(-EFAULT, new_start, old_start);
    }
    Impl::FaultPages(*this, v, new_start, new_start + kPageSize);
    return Impl::Result(0, new_start, old_start);
  }
  if (write ? !(v->flags & kVmWrite) : !Impl::VmaIsAccessible(v)) return Impl::Result(-EFAULT);
  // A guard marker (MADV_GUARD_INSTALL) raises SIGSEGV; a file page past
  // EOF, SIGBUS.
  if (pt_.Walk(addr).guard) return Impl::Result(-EFAULT);
  if (addr >= Impl::FileEnd(v)) return Impl::Result(-EIO);
  // A write fault on private memory instantiates an anonymous page (CoW for
  // files); a read fault maps the zero page or the page cache: no anon_vma.
  if (write && !(v->flags & kVmShared) && v->special == SpecialKind::kNone) {
    Impl::PrepareAnon(*this, v);
  }
  Impl::FaultPages(*this, v, PageDown(addr), PageDown(addr) + kPageSize);
  return Impl::Result(0);
}

}  // namespace vmashadow
