// madvise.cc — madvise (mm/madvise.c, 6.12; docs/errno-order.md#madvise): the
// advices that change vm_flags split and merge through vma_modify(); the
// others act on page tables only (the matrix is in madvise.h).
#include "core/mm/madvise.h"
#include "core/mm/address_space.h"
#include "core/mm/internal.h"

namespace vmashadow {

using Impl = AddressSpace::Impl;

// ---------------------------------------------------------------------------
// madvise (do_madvise, madvise_walk_vmas, madvise_vma_behavior; mm/madvise.c).

namespace {

bool AdviceValid(const KernelProfile& profile, int advice) {
  using namespace abi;
  switch (advice) {
    case kMadvNormal:
    case kMadvRandom:
    case kMadvSequential:
    case kMadvWillneed:
    case kMadvDontneed:
    case kMadvFree:
    case kMadvRemove:
    case kMadvDontfork:
    case kMadvDofork:
    case kMadvMergeable:
    case kMadvUnmergeable:
    case kMadvHugepage:
    case kMadvNohugepage:
    case kMadvDontdump:
    case kMadvDodump:
    case kMadvWipeonfork:
    case kMadvKeeponfork:
    case kMadvCold:
    case kMadvPageout:
    case kMadvPopulateRead:
    case kMadvPopulateWrite:
    case kMadvDontneedLocked:
    case kMadvCollapse:
    case kMadvHwpoison:
    case kMadvSoftOffline:
      return true;
    case kMadvGuardInstall:
    case kMadvGuardRemove:
      return profile.guard_regions;
    default:
      return false;
  }
}

bool IsDiscard(int advice) {
  using namespace abi;
  return advice == kMadvFree || advice == kMadvDontneed || advice == kMadvDontneedLocked ||
         advice == kMadvRemove || advice == kMadvDontfork || advice == kMadvWipeonfork ||
         advice == kMadvGuardInstall;
}

// is_ro_anon(): private anonymous memory that is not writable.
bool IsReadOnlyAnon(const Vma* v) {
  if (v->file != nullptr || (v->flags & kVmShared)) return false;
  return !(v->flags & kVmWrite);
}

}  // namespace

// The advice whose AdviseVma() case below changes page table entries:
// MADV_DONTNEED(_LOCKED) and MADV_REMOVE zap, the guard advice installs or
// removes markers. MADV_FREE leaves the entries (lazy free).
bool mm::AdviceZapsPages(int advice) {
  using namespace abi;
  return advice == kMadvDontneed || advice == kMadvDontneedLocked || advice == kMadvRemove ||
         advice == kMadvGuardInstall || advice == kMadvGuardRemove;
}

// One VMA's part [start, end) of a madvise walk (madvise_vma_behavior).
// Updates *prev as the kernel does. Returns 0 or -errno.
static int AdviseVma(AddressSpace& as, Vma* v, Vma** prev, uint64_t start, uint64_t end,
                     int advice) {
  using namespace abi;
  if ((v->flags & kVmSealed) && IsReadOnlyAnon(v) && IsDiscard(advice)) return -EPERM;
  uint64_t nf = v->flags;
  *prev = v;
  switch (advice) {
    case kMadvRemove:
      *prev = nullptr;
      if (v->flags & kVmLocked) return -EINVAL;
      if (v->file == nullptr) return -EINVAL;
      if (!((v->flags & kVmShared) && (v->flags & kVmMayWrite))) return -EACCES;
      // The hole punch unmaps the pages (unmap_mapping_range: no PT reclaim).
      Impl::Pt(as).Zap(start, end, /*drop_markers=*/false, /*reclaim=*/false);
      return 0;
    case kMadvWillneed:
    case kMadvCollapse:
    case kMadvHwpoison:
    case kMadvSoftOffline:
      return 0;
    case kMadvCold:
    case kMadvPageout:
      return (v->flags & (kVmLocked | kVmPfnmap | kVmHugetlb)) ? -EINVAL : 0;
    case kMadvFree:
    case kMadvDontneed:
    case kMadvDontneedLocked: {
      if (!(v->flags & kVmHugetlb)) {
        uint64_t forbidden = kVmPfnmap;
        if (advice != kMadvDontneedLocked) forbidden |= kVmLocked;
        if (v->flags & forbidden) return -EINVAL;
      }
      if (advice == kMadvFree && !v->is_anonymous()) return -EINVAL;
      // madvise_dontneed_single_vma() (6.18): zap_page_range_single_batched
      // with details.reclaim_pt. MADV_FREE only marks pages lazily freeable.
      if (advice != kMadvFree) {
        Impl::Pt(as).Zap(start, end, /*drop_markers=*/false, as.profile().pt_reclaim);
      }
      return 0;
    }
    case kMadvGuardInstall:
    case kMadvGuardRemove: {
      uint64_t disallowed = kVmSpecial | kVmHugetlb;
      if (advice == kMadvGuardInstall) disallowed |= kVmLocked;
      if (v->flags & disallowed) return -EINVAL;
      if (advice == kMadvGuardInstall) {
        // Guard markers live in page tables: anonymous memory gets an
        // anon_vma so fork copies them (file-backed memory does not: seen on
        // the running kernel), and (6.19 / this 6.18-fc build) the whole VMA
        // gets the sticky VM_MAYBE_GUARD, without a split.
        if (v->is_anonymous()) Impl::PrepareAnon(as, v);
        if (as.profile().guard_sticky_flag) v->flags |= kVmMaybeGuard;
        Impl::Pt(as).InstallGuards(start, end);
      } else {
        Impl::Pt(as).RemoveGuards(start, end);
      }
      return 0;
    }
    case kMadvNormal:
      nf &= ~(kVmRandRead | kVmSeqRead);
      break;
    case kMadvSequential:
      nf = (nf & ~kVmRandRead) | kVmSeqRead;
      break;
    case kMadvRandom:
      nf = (nf & ~kVmSeqRead) | kVmRandRead;
      break;
    case kMadvDontfork:
      nf |= kVmDontcopy;
      break;
    case kMadvDofork:
      if (v->flags & kVmIo) return -EINVAL;
      nf &= ~kVmDontcopy;
      break;
    case kMadvWipeonfork:
      if (v->file != nullptr || (v->flags & kVmShared)) return -EINVAL;
      nf |= kVmWipeonfork;
      break;
    case kMadvKeeponfork:
      if (v->flags & kVmDroppable) return -EINVAL;
      nf &= ~kVmWipeonfork;
      break;
    case kMadvDontdump:
      nf |= kVmDontdump;
      break;
    case kMadvDodump:
      if ((!(v->flags & kVmHugetlb) && (nf & kVmSpecial)) || (v->flags & kVmDroppable)) {
        return -EINVAL;
      }
      nf &= ~kVmDontdump;
      break;
    case kMadvMergeable:
      // ksm_madvise(): only on KSM-compatible VMAs; silently nothing else.
      if (!(nf & (kVmShared | kVmMayShare | kVmPfnmap | kVmIo | kVmDontexpand | kVmHugetlb |
                  kVmMixedmap | kVmDroppable))) {
        nf |= kVmMergeable;
      }
      break;
    case kMadvUnmergeable:
      nf &= ~kVmMergeable;
      break;
    case kMadvHugepage:
      nf = (nf & ~kVmNohugepage) | kVmHugepage;
      break;
    case kMadvNohugepage:
      nf = (nf & ~kVmHugepage) | kVmNohugepage;
      break;
    default:
      return -EINVAL;
  }
  // madvise_update_vma()
  if (nf == v->flags) return 0;
  Vma* before = v->prev;
  if (start > v->start) before = v;
  int err = 0;
  Vma* r = Impl::ModifyFlags(as, before, v, start, end, nf, &err);
  if (r == nullptr) return err == -ENOMEM ? -EAGAIN : err;
  *prev = r;
  return 0;
}

// mm/madvise.c: do_madvise() and madvise_walk_vmas().
Outcome AddressSpace::Advise(uint64_t start, uint64_t len_in, int advice) {
  using namespace abi;
  if (!AdviceValid(*profile_, advice)) return Impl::Result(-EINVAL);
  if (!PageAligned(start)) return Impl::Result(-EINVAL);
  const uint64_t len = PageAlign(len_in);
  if (len_in != 0 && len == 0) return Impl::Result(-EINVAL);
  const uint64_t end = start + len;
  if (end < start) return Impl::Result(-EINVAL);
  if (end == start) return Impl::Result(0);
  const uint64_t range_start = start;

  if (advice == kMadvPopulateRead || advice == kMadvPopulateWrite) {
    // madvise_populate(): GUP page by page; a hole is ENOMEM, a VMA that
    // does not allow the access is EINVAL. What came before stays faulted.
    const bool write = advice == kMadvPopulateWrite;
    uint64_t addr = start;
    while (addr < end) {
      Vma* v = tree_.FindVma(addr);
      if (v == nullptr || v->start > addr) return Impl::Result(-ENOMEM, range_start, end);
      if (v->flags & (kVmIo | kVmPfnmap)) return Impl::Result(-EINVAL, range_start, end);
      if (write ? !(v->flags & kVmWrite) : !(v->flags & kVmRead)) {
        return Impl::Result(-EINVAL, range_start, end);
      }
      if (write && !(v->flags & kVmShared)) Impl::PrepareAnon(*this, v);
      const uint64_t piece_end = v->end < end ? v->end : end;
      Impl::FaultPages(*this, v, addr, piece_end);
      addr = piece_end;
    }
    return Impl::Result(0, range_start, end);
  }

  // madvise_walk_vmas()
  Vma* prev = nullptr;
  Vma* v = tree_.FindVmaPrev(start, &prev);
  if (v != nullptr && start > v->start) prev = v;
  int unmapped_error = 0;
  for (;;) {
    if (v == nullptr) return Impl::Result(-ENOMEM, range_start, end);
    if (start < v->start) {
      unmapped_error = -ENOMEM;
      start = v->start;
      if (start >= end) break;
    }
    const uint64_t tmp = v->end < end ? v->end : end;
    const int err = AdviseVma(*this, v, &prev, start, tmp, advice);
    if (err != 0) return Impl::Result(err, range_start, end);
    start = tmp;
    if (prev != nullptr && start < prev->end) start = prev->end;
    if (start >= end) break;
    v = tree_.FindVma(prev != nullptr ? prev->end : start);
  }
  return Impl::Result(unmapped_error, range_start, end);
}

}  // namespace vmashadow
