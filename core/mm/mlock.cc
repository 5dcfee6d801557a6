// mlock.cc — mlock, mlock2, munlock, mlockall, munlockall (mm/mlock.c, 6.12;
// docs/errno-order.md#mlock-mseal-brk).
#include "core/mm/address_space.h"
#include "core/mm/internal.h"

namespace vmashadow {

using Impl = AddressSpace::Impl;

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

// mm/mlock.c: do_mlock() (mlock, mlock2).
// mm/mlock.c: count_mm_mlocked_page_nr(): the pages of [start, start+len)
// already in VM_LOCKED VMAs (the first VMA counted from start).
static uint64_t LockedPagesIn(const AddressSpace& as, uint64_t start, uint64_t len) {
  const uint64_t end = start + len;
  int64_t count = 0;
  Vma* prev = nullptr;
  Vma* v = as.tree().FindVmaPrev(start, &prev);
  for (; v != nullptr && v->start < end; v = v->next) {
    if (!(v->flags & kVmLocked)) continue;
    if (start > v->start) count -= static_cast<int64_t>(start - v->start);
    if (end < v->end) {
      count += static_cast<int64_t>(end - v->start);
      break;
    }
    count += static_cast<int64_t>(v->end - v->start);
  }
  return static_cast<uint64_t>(count) >> kPageShift;
}

Outcome AddressSpace::Lock(uint64_t addr, uint64_t len, int flags) {
  if (flags & ~abi::kMlockOnfault) return Impl::Result(-EINVAL);
  if (!Impl::CanDoMlock(*this)) return Impl::Result(-EPERM);
  len = PageAlign(len + (addr & (kPageSize - 1)));
  const uint64_t start = PageDown(addr);
  // RLIMIT_MEMLOCK without CAP_IPC_LOCK: the pages asked for plus locked_vm,
  // less those of the range already locked when that exceeds the limit.
  if (!params_.cap_ipc_lock && params_.rlimit_memlock != kUnlimited) {
    const uint64_t limit = params_.rlimit_memlock >> kPageShift;
    uint64_t locked = (len >> kPageShift) + mm_counters().locked_vm;
    if (locked > limit) locked -= LockedPagesIn(*this, start, len);
    if (locked > limit) return Impl::Result(-ENOMEM);
  }
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

// mm/mlock.c: SYSCALL_DEFINE2(munlock).
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

// mm/mlock.c: SYSCALL_DEFINE1(mlockall).
Outcome AddressSpace::LockAll(int flags) {
  using namespace abi;
  if (flags == 0 || (flags & ~(kMclCurrent | kMclFuture | kMclOnfault)) || flags == kMclOnfault) {
    return Impl::Result(-EINVAL);
  }
  if (!Impl::CanDoMlock(*this)) return Impl::Result(-EPERM);
  // RLIMIT_MEMLOCK: MCL_CURRENT needs the whole total_vm under it.
  if ((flags & kMclCurrent) && !params_.cap_ipc_lock && params_.rlimit_memlock != kUnlimited &&
      mm_counters().total_vm > (params_.rlimit_memlock >> kPageShift)) {
    return Impl::Result(-ENOMEM);
  }
  ApplyLockAll(*this, &def_flags_, flags);
  if (flags & kMclCurrent) Impl::PopulateRange(*this, 0, params_.task_size);
  return Impl::Result(0, 0, params_.task_size);
}

// mm/mlock.c: SYSCALL_DEFINE0(munlockall).
Outcome AddressSpace::UnlockAll() {
  ApplyLockAll(*this, &def_flags_, 0);
  return Impl::Result(0, 0, params_.task_size);
}

}  // namespace vmashadow
