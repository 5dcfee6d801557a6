// modify.cc — the calls that change flags on an existing range and so split
// and merge through vma_modify(): mprotect/pkey_mprotect, madvise, the mlock
// family and mseal (mm/mprotect.c, mm/madvise.c, mm/mlock.c, mm/mseal.c,
// 6.12, with 6.18's behaviour; docs/merge-split.md, docs/errno-order.md).
#include "core/mm/address_space.h"
#include "core/mm/internal.h"
#include "core/mm/madvise.h"

namespace vmashadow {

using Impl = AddressSpace::Impl;

namespace {

uint64_t PkeyBits(int pkey) { return (static_cast<uint64_t>(pkey) << kVmPkeyShift) & kVmPkeyMask; }

uint64_t ProtBits(int prot) {
  uint64_t f = 0;
  if (prot & abi::kProtRead) f |= kVmRead;
  if (prot & abi::kProtWrite) f |= kVmWrite;
  if (prot & abi::kProtExec) f |= kVmExec;
  return f;
}

}  // namespace

// ---------------------------------------------------------------------------
// mprotect (do_mprotect_pkey + mprotect_fixup, mm/mprotect.c 6.12).

Outcome AddressSpace::Protect(uint64_t start, uint64_t len, int prot, int pkey) {
  using namespace abi;
  const int grows = prot & (kProtGrowsdown | kProtGrowsup);
  prot &= ~(kProtGrowsdown | kProtGrowsup);
  if (grows == (kProtGrowsdown | kProtGrowsup)) return Impl::Result(-EINVAL);
  if (!PageAligned(start)) return Impl::Result(-EINVAL);
  if (len == 0) return Impl::Result(0);
  len = PageAlign(len);
  uint64_t end = start + len;
  if (end <= start) return Impl::Result(-ENOMEM);
  if (prot & ~(kProtRead | kProtWrite | kProtExec | kProtSem)) return Impl::Result(-EINVAL);
  if (pkey != -1 && (pkey < 0 || pkey >= params_.max_pkey)) return Impl::Result(-EINVAL);

  Vma* vma = tree_.FindVmaIntersection(start, end);
  if (vma == nullptr) return Impl::Result(-ENOMEM);
  if (grows & kProtGrowsdown) {
    start = vma->start;
    if (!(vma->flags & kVmGrowsdown)) return Impl::Result(-EINVAL);
  } else {
    if (vma->start > start) return Impl::Result(-ENOMEM);
    if (grows & kProtGrowsup) return Impl::Result(-EINVAL);  // no VM_GROWSUP on x86
  }
  Vma* prev = start > vma->start ? vma : vma->prev;
  uint64_t nstart = start;
  uint64_t tmp = vma->start;
  int error = 0;
  for (Vma* v = vma; v != nullptr && v->start < end;) {
    if (v->start != tmp) {
      error = -ENOMEM;
      break;
    }
    const uint64_t pkey_bits = pkey == -1 ? (v->flags & kVmPkeyMask) : PkeyBits(pkey);
    uint64_t newflags = ProtBits(prot) | pkey_bits | (v->flags & ~(kVmRwx | kVmPkeyMask));
    if ((newflags & ~(newflags >> 4)) & kVmRwx) {
      error = -EACCES;
      break;
    }
    tmp = v->end < end ? v->end : end;
    // mprotect_fixup()
    if (v->flags & kVmSealed) {
      error = -EPERM;
      break;
    }
    Vma* result = v;
    if (newflags != v->flags) {
      const uint64_t oldflags = v->flags;
      if (newflags & kVmWrite) {
        if (!(oldflags & (kVmAccount | kVmWrite | kVmHugetlb | kVmShared | kVmNoreserve))) {
          newflags |= kVmAccount;
        }
      } else if ((oldflags & kVmAccount) && v->is_anonymous() && v->anon.anon_vma == 0) {
        newflags &= ~kVmAccount;
      }
      result = Impl::ModifyFlags(*this, prev, v, nstart, tmp, newflags, &error);
      if (result == nullptr) break;
      // A private VM_LOCKED VMA becoming writable is populated for write
      // (CoW broken up front), giving it an anon_vma.
      if ((oldflags & (kVmWrite | kVmShared | kVmLocked)) == kVmLocked && (newflags & kVmWrite)) {
        (void)Impl::PopulateVma(*this, result, nstart, tmp);
      }
    }
    prev = result;
    tmp = result->end;
    nstart = tmp;
    v = result->next;
  }
  if (error == 0 && tmp < end) error = -ENOMEM;
  return Impl::Result(error, start, end);
}

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

// ---------------------------------------------------------------------------
// mlock family (mm/mlock.c, 6.12).

namespace {

// mlock_fixup(): special, hugetlb and droppable VMAs are skipped untouched.
Vma* LockFixup(AddressSpace& as, Vma* v, Vma* prev, uint64_t start, uint64_t end, uint64_t newflags,
               int* err) {
  *err = 0;
  const uint64_t old = v->flags;
  if (newflags == old || (old & kVmSpecial) || (old & kVmHugetlb) || (old & kVmDroppable) ||
      v->special != SpecialKind::kNone) {
    return v;
  }
  Vma* r = Impl::ModifyFlags(as, prev, v, start, end, newflags, err);
  return r;
}

}  // namespace

// apply_vma_lock_flags(): [start, start+len) must begin inside a VMA.
static int ApplyLockFlags(AddressSpace& as, uint64_t start, uint64_t len, uint64_t flags) {
  const uint64_t end = start + len;
  if (end < start) return -EINVAL;
  if (end == start) return 0;
  Vma* v = as.FindVma(start);
  if (v == nullptr || v->start > start) return -ENOMEM;
  Vma* prev = start > v->start ? v : v->prev;
  uint64_t nstart = start;
  uint64_t tmp = v->start;
  while (v != nullptr && v->start < end) {
    if (v->start != tmp) return -ENOMEM;
    const uint64_t newflags = (v->flags & ~kVmLockedMask) | flags;
    tmp = v->end < end ? v->end : end;
    int err = 0;
    Vma* r = LockFixup(as, v, prev, nstart, tmp, newflags, &err);
    if (r == nullptr) return err;
    prev = r;
    tmp = r->end;
    nstart = tmp;
    v = r->next;
  }
  return tmp < end ? -ENOMEM : 0;
}

Outcome AddressSpace::Lock(uint64_t addr, uint64_t len, int flags) {
  if (flags & ~abi::kMlockOnfault) return Impl::Result(-EINVAL);
  if (!Impl::CanDoMlock(*this)) return Impl::Result(-EPERM);
  len = PageAlign(len + (addr & (kPageSize - 1)));
  const uint64_t start = PageDown(addr);
  uint64_t vm_flags = kVmLocked;
  if (flags & abi::kMlockOnfault) vm_flags |= kVmLockonfault;
  const int err = ApplyLockFlags(*this, start, len, vm_flags);
  if (err != 0) return Impl::Result(err, start, start + len);
  // __mm_populate() runs with or without MLOCK_ONFAULT: VM_LOCKONFAULT VMAs
  // skip it, the VMAs mlock leaves alone (droppable, special) do not.
  // __mlock_posix_error_return(): a populate EFAULT is reported as ENOMEM.
  const int perr = Impl::PopulateRange(*this, start, start + len, /*ignore_errors=*/false);
  if (perr == -EFAULT) return Impl::Result(-ENOMEM, start, start + len);
  return Impl::Result(0, start, start + len);
}

Outcome AddressSpace::Unlock(uint64_t addr, uint64_t len) {
  len = PageAlign(len + (addr & (kPageSize - 1)));
  const uint64_t start = PageDown(addr);
  const int err = ApplyLockFlags(*this, start, len, 0);
  return Impl::Result(err, start, start + len);
}

// apply_mlockall_flags(): def_flags, then every VMA.
static void ApplyLockAll(AddressSpace& as, uint64_t* def_flags, int flags) {
  using namespace abi;
  *def_flags &= ~kVmLockedMask;
  uint64_t to_add = 0;
  if (flags & kMclFuture) {
    *def_flags |= kVmLocked;
    if (flags & kMclOnfault) *def_flags |= kVmLockonfault;
  }
  if (flags & kMclCurrent) {
    to_add |= kVmLocked;
    if (flags & kMclOnfault) to_add |= kVmLockonfault;
  } else if (flags & kMclFuture) {
    return;
  }
  Vma* prev = nullptr;
  for (Vma* v = as.tree().First(); v != nullptr;) {
    const uint64_t newflags = (v->flags & ~kVmLockedMask) | to_add;
    int err = 0;
    Vma* r = LockFixup(as, v, prev, v->start, v->end, newflags, &err);
    if (r == nullptr) r = v;  // errors are ignored; prev is fixed up
    prev = r;
    v = r->next;
  }
}

Outcome AddressSpace::LockAll(int flags) {
  using namespace abi;
  if (flags == 0 || (flags & ~(kMclCurrent | kMclFuture | kMclOnfault)) || flags == kMclOnfault) {
    return Impl::Result(-EINVAL);
  }
  if (!Impl::CanDoMlock(*this)) return Impl::Result(-EPERM);
  ApplyLockAll(*this, &def_flags_, flags);
  if (flags & kMclCurrent) Impl::PopulateRange(*this, 0, params_.task_size);
  return Impl::Result(0, 0, params_.task_size);
}

Outcome AddressSpace::UnlockAll() {
  ApplyLockAll(*this, &def_flags_, 0);
  return Impl::Result(0, 0, params_.task_size);
}

// ---------------------------------------------------------------------------
// mseal (mm/mseal.c: do_mseal, 6.12; 6.17 skips sealed VMAs, same result).

Outcome AddressSpace::Seal(uint64_t start, uint64_t len_in, uint64_t flags) {
  if (flags != 0) return Impl::Result(-EINVAL);
  if (!PageAligned(start)) return Impl::Result(-EINVAL);
  const uint64_t len = PageAlign(len_in);
  if (len_in != 0 && len == 0) return Impl::Result(-EINVAL);
  const uint64_t end = start + len;
  if (end < start) return Impl::Result(-EINVAL);
  if (end == start) return Impl::Result(0);
  // check_mm_seal(): every byte must be mapped; nothing is applied otherwise.
  uint64_t covered = start;
  for (const Vma* v = tree_.FindVma(start); v != nullptr && v->start < end; v = v->next) {
    if (v->start > covered) break;
    covered = v->end;
  }
  if (covered < end) return Impl::Result(-ENOMEM);
  Vma* v = tree_.FindVma(start);
  Vma* prev = start > v->start ? v : v->prev;
  uint64_t nstart = start;
  while (v != nullptr && v->start < end) {
    const uint64_t tmp = v->end < end ? v->end : end;
    Vma* r = v;
    if (!(v->flags & kVmSealed)) {
      int err = 0;
      r = Impl::ModifyFlags(*this, prev, v, nstart, tmp, v->flags | kVmSealed, &err);
      if (r == nullptr) return Impl::Result(err, start, end);
    }
    prev = r;
    nstart = r->end;
    v = r->next;
  }
  return Impl::Result(0, start, end);
}

}  // namespace vmashadow
