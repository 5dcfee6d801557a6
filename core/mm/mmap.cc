// mmap.cc — mm/mmap.c: mmap (do_mmap, mmap_region) and brk (do_brk_flags).
// Placement (get_unmapped_area) is placement.cc.
#include "core/mm/mmap.h"
#include "core/mm/address_space.h"
#include "core/mm/internal.h"

namespace vmashadow {

using Impl = AddressSpace::Impl;

// ---------------------------------------------------------------------------
// mmap (arch/x86/kernel/sys_x86_64.c sys_mmap, mm/mmap.c ksys_mmap_pgoff,
// do_mmap, mmap_region; 6.12, with 6.18's behaviour where it differs).

bool Impl::CanDoMlock(const AS& as) {
  return as.params_.rlimit_memlock != 0 || as.params_.cap_ipc_lock;
}

bool Impl::MapDenyWriteExec(const AS& as, uint64_t old_flags, uint64_t new_flags) {
  if (!as.params_.mdwe || !(new_flags & kVmExec)) return false;
  return (new_flags & kVmWrite) || !(old_flags & kVmExec);
}

bool Impl::MlockFutureOk(const AS& as, uint64_t vm_flags, uint64_t bytes) {
  if (!(vm_flags & kVmLocked) || as.params_.cap_ipc_lock) return true;
  if (as.params_.rlimit_memlock == kUnlimited) return true;
  const uint64_t locked_pages = (bytes >> kPageShift) + as.mm_counters().locked_vm;
  return locked_pages <= (as.params_.rlimit_memlock >> kPageShift);
}

// mm/mmap.c: ksys_mmap_pgoff() and do_mmap(); mmap_region() is MmapRegion().
Outcome AddressSpace::Map(const MapArgs& a) {
  using namespace abi;
  if (a.offset & (kPageSize - 1)) return Impl::Result(-EINVAL);
  uint64_t pgoff = a.offset >> kPageShift;
  int flags = a.flags;
  uint64_t len = a.len;
  const FileDesc* fd = nullptr;
  if (!(flags & kMapAnonymous)) {
    if (a.file == nullptr) return Impl::Result(-EBADF);
    fd = a.file;
    if (fd->kind == FileKind::kHugetlb) {
      len = (len + kPmdSize - 1) & ~(kPmdSize - 1);
    } else if (flags & kMapHugetlb) {
      return Impl::Result(-EINVAL);
    }
  } else if (flags & kMapHugetlb) {
    const int log = (flags >> kMapHugeShift) & kMapHugeMask;
    if (log != 0 && log != 21 && log != 30) return Impl::Result(-EINVAL);
    // No huge pages are reserved on the machines we model: the hugetlb file
    // setup cannot reserve them.
    return Impl::Result(-ENOMEM);
  }

  // do_mmap()
  if (len == 0) return Impl::Result(-EINVAL);
  if (flags & kMapFixedNoreplace) flags |= kMapFixed;
  uint64_t addr = a.addr;
  if (!(flags & kMapFixed)) {
    addr = PageDown(addr);
    if (addr != 0 && addr < params_.mmap_min_addr) addr = PageAlign(params_.mmap_min_addr);
  }
  len = PageAlign(len);
  if (len == 0) return Impl::Result(-ENOMEM);
  if (pgoff + (len >> kPageShift) < pgoff) return Impl::Result(-EOVERFLOW);
  if (tree_.size() > params_.max_map_count) return Impl::Result(-ENOMEM);

  uint64_t vm_flags = 0;
  if (a.prot & kProtRead) vm_flags |= kVmRead;
  if (a.prot & kProtWrite) vm_flags |= kVmWrite;
  if (a.prot & kProtExec) vm_flags |= kVmExec;
  if (flags & kMapGrowsdown) vm_flags |= kVmGrowsdown;
  if (flags & kMapLocked) vm_flags |= kVmLocked;
  if (flags & kMapSync) vm_flags |= kVmSync;
  if (flags & kMapStack) vm_flags |= kVmNohugepage;
  vm_flags |= def_flags_ | kVmMayRead | kVmMayWrite | kVmMayExec;

  // The file object is needed for placement (its get_unmapped_area).
  File* file = nullptr;
  if (fd != nullptr) {
    file = Impl::InternFile(*this, *fd);
    if (file == nullptr) return Impl::Result(-ENOMEM);
  }
  // Hold the file while the call runs (a MAP_FIXED may unmap its last VMA);
  // every return drops the hold, freeing the file if nothing uses it.
  Impl::RefFile(file);
  auto fail = [&](int err) {
    Impl::UnrefFile(*this, file);
    return Impl::Result(-err);
  };

  int64_t placed = GetUnmappedArea(file, fd, addr, len, pgoff, flags);
  bool predicted = !(flags & kMapFixed);
  if (mm::MmapPlacementIsRandom(flags)) {
    // The MAP_32BIT window start is randomised per call: take the kernel's.
    predicted = false;
    if (a.kernel_addr != 0) placed = static_cast<int64_t>(a.kernel_addr);
  }
  if (placed < 0) return fail(static_cast<int>(-placed));
  addr = static_cast<uint64_t>(placed);

  const uint64_t end = addr + len;
  Vma* prev = nullptr;
  Vma* next = tree_.FindVmaPrev(addr, &prev);
  if ((flags & kMapFixedNoreplace) && next != nullptr && next->start < end) return fail(EEXIST);
  if ((flags & kMapLocked) && !Impl::CanDoMlock(*this)) return fail(EPERM);
  if (!Impl::MlockFutureOk(*this, vm_flags, len)) return fail(EAGAIN);

  if (file != nullptr) {
    // file_mmap_ok(): MAX_LFS_FILESIZE for regular files, ULONG_MAX for devices.
    const uint64_t max_size =
        file->kind == FileKind::kDevice ? ~uint64_t{0} : uint64_t{0x7fffffffffffffff};
    if (len > max_size || pgoff > ((max_size - len) >> kPageShift)) return fail(EOVERFLOW);
    switch (flags & kMapType) {
      case kMapShared:
        flags &= kLegacyMapMask;
        [[fallthrough]];
      case kMapSharedValidate:
        // DAX-capable file systems (ext4, xfs) accept MAP_SYNC here
        // (FOP_MMAP_SYNC) and refuse it later, from their mmap hook.
        if (flags & ~(kLegacyMapMask | (file->kind == FileKind::kRegularThp ? kMapSync : 0))) {
          return fail(EOPNOTSUPP);
        }
        if ((a.prot & kProtWrite) && !file->fd_writable) return fail(EACCES);
        if (file->fd_append && file->fd_writable) return fail(EACCES);
        vm_flags |= kVmShared | kVmMayShare;
        if (!file->fd_writable) vm_flags &= ~(kVmMayWrite | kVmShared);
        [[fallthrough]];
      case kMapPrivate:
        if (!file->fd_readable) return fail(EACCES);
        if (file->noexec_mount) {
          if (vm_flags & kVmExec) return fail(EPERM);
          vm_flags &= ~kVmMayExec;
        }
        if (vm_flags & kVmGrowsdown) return fail(EINVAL);
        break;
      default:
        return fail(EINVAL);
    }
  } else {
    switch (flags & kMapType) {
      case kMapShared:
        if (vm_flags & kVmGrowsdown) return fail(EINVAL);
        pgoff = 0;
        vm_flags |= kVmShared | kVmMayShare;
        break;
      case kMapDroppable:
        if (flags & (kMapLocked | kMapHugetlb)) return fail(EINVAL);
        if (vm_flags & kVmGrowsdown) return fail(EINVAL);
        vm_flags |= kVmDroppable | kVmNoreserve | kVmWipeonfork | kVmDontdump;
        [[fallthrough]];
      case kMapPrivate:
        pgoff = addr >> kPageShift;
        break;
      default:
        return fail(EINVAL);
    }
  }
  if ((flags & kMapNoreserve) && params_.overcommit_memory != 2) vm_flags |= kVmNoreserve;
  if (file != nullptr && file->kind == FileKind::kHugetlb && (flags & kMapNoreserve)) {
    vm_flags |= kVmNoreserve;
  }

  // mmap_region()
  Outcome o = Impl::MmapRegion(*this, file, a.file, addr, len, pgoff, vm_flags, flags, prev, next);
  if (o.ok()) o.placement_predicted = predicted;
  return o;
}

// mm/vma.c (6.12; mm/mmap.c before): mmap_region() and __mmap_region(). The
// caller holds a reference on `file` for the call; every return drops it.
// [prev, next] are the VMAs around addr (next may overlap the range).
Outcome Impl::MmapRegion(AS& as, File* file, const FileDesc* desc, uint64_t addr, uint64_t len,
                         uint64_t pgoff, uint64_t vm_flags, int flags, Vma* prev, Vma* next) {
  using namespace abi;
  const uint64_t end = addr + len;
  auto fail = [&](int err) {
    UnrefFile(as, file);
    return Result(-err);
  };
  // mmap_region(): MDWE refuses a writable and executable mapping first.
  if (MapDenyWriteExec(as, vm_flags, vm_flags)) return fail(EACCES);
  if (next != nullptr && next->start < end) {
    Vma* first = nullptr;
    const int err = GatherUnmap(as, addr, end, next, &first);
    if (err != 0) {
      Outcome o = fail(-err);  // splits made before the failure stay
      o.changed_start = addr;
      o.changed_end = end;
      return o;
    }
    prev = first->prev;
    RemoveFrom(as, first, end);
    next = prev != nullptr ? prev->next : as.tree_.First();
  }
  // The file's mmap hook runs after the old mappings are gone: ext4/xfs
  // without DAX refuse VM_SYNC (ext4_file_mmap), leaving the range empty.
  if (file != nullptr && file->kind == FileKind::kRegularThp && (vm_flags & kVmSync)) {
    // unmap_region() on the VMA that never got linked (mm/vma.c, 6.12).
    if (!as.pt_.empty()) {
      Vma* before = nullptr;
      Vma* after = as.tree_.FindVmaPrev(addr, &before);
      as.pt_.FreePgdRange(addr, end, before != nullptr ? before->end : 0,
                          after != nullptr ? after->start : 0);
    }
    Outcome o = fail(EOPNOTSUPP);
    o.changed_start = addr;
    o.changed_end = end;
    return o;
  }
  const bool accountable = (file == nullptr || file->kind != FileKind::kHugetlb) &&
                           (vm_flags & (kVmNoreserve | kVmShared | kVmWrite)) == kVmWrite;
  if (accountable) vm_flags |= kVmAccount;
  const bool shared_anon = file == nullptr && (vm_flags & kVmShared);
  MergeProposal r;
  r.start = addr;
  r.end = end;
  r.pgoff = pgoff;
  r.flags = vm_flags;
  r.file = file;
  Vma* vma = nullptr;
  if (!shared_anon) vma = MergeNewRange(as, prev, next, r, /*just_expand=*/false);
  if (vma == nullptr) {
    if (shared_anon) {
      // shmem_zero_setup(): the merge ran with no file and VM_SHARED, which
      // nothing matches; the VMA then gets its own shmem file.
      file = NewShmemFile(as, desc);
      if (file == nullptr) return fail(ENOMEM);
      file->size = len;  // shmem_zero_setup(): a file of the mapping's size
      RefFile(file);
    }
    r.file = file;
    vma = InsertNew(as, r);
    if (vma == nullptr) return fail(ENOMEM);
  }
  UnrefFile(as, file);
  if (vm_flags & kVmLocked) {
    if ((vm_flags & (kVmSpecial | kVmDroppable)) ||
        (file != nullptr && file->kind == FileKind::kHugetlb)) {
      vma->flags &= ~kVmLockedMask;
    }
  }
  if ((vm_flags & kVmLocked) || (flags & (kMapPopulate | kMapNonblock)) == kMapPopulate) {
    PopulateRange(as, addr, end);
  }
  return Result(static_cast<int64_t>(addr), addr, end);
}

// ---------------------------------------------------------------------------
// brk (mm/mmap.c SYSCALL_DEFINE1(brk), do_brk_flags; 6.12).

Outcome AddressSpace::Brk(uint64_t new_brk) {
  const uint64_t orig = brk_;
  Outcome out = Impl::Result(static_cast<int64_t>(orig));
  if (new_brk < start_brk_) return out;
  if (params_.rlimit_data != kUnlimited &&
      (new_brk - start_brk_) + (params_.end_data - params_.start_data) > params_.rlimit_data) {
    return out;
  }
  const uint64_t newbrk = PageAlign(new_brk);
  const uint64_t oldbrk = PageAlign(brk_);
  if (oldbrk == newbrk) {
    brk_ = new_brk;
    return Impl::Result(static_cast<int64_t>(new_brk));
  }
  if (new_brk <= brk_) {
    // Shrink: munmap [newbrk, oldbrk) if anything is there.
    Vma* v = tree_.FindVma(newbrk);
    if (v == nullptr || v->start >= oldbrk) return out;
    const int err = Impl::UnmapRange(*this, newbrk, oldbrk);
    if (err != 0) return out;
    brk_ = new_brk;
    return Impl::Result(static_cast<int64_t>(new_brk), newbrk, oldbrk);
  }
  // check_brk_limits(): the MAP_FIXED address check, then mlock_future_ok.
  const uint64_t grow = newbrk - oldbrk;
  if (grow > params_.task_size || oldbrk > params_.task_size - grow) return out;
  // One free page (plus the guard gap below a VM_GROWSDOWN VMA) must stay.
  Vma* next = tree_.FindVma(oldbrk);
  if (next != nullptr && newbrk + kPageSize > Impl::StartGap(*this, next)) return out;
  if (!Impl::MlockFutureOk(*this, def_flags_, grow)) return out;
  if (tree_.size() > params_.max_map_count) return out;
  const uint64_t flags =
      kVmRead | kVmWrite | kVmMayRead | kVmMayWrite | kVmMayExec | kVmAccount | def_flags_;
  // vma_prev_limit(vmi, start_brk): the VMA just below oldbrk, if it reaches
  // above start_brk.
  Vma* prev = nullptr;
  tree_.FindVmaPrev(oldbrk, &prev);
  if (prev != nullptr && prev->end <= start_brk_) prev = nullptr;
  MergeProposal r;
  r.start = oldbrk;
  r.end = newbrk;
  r.pgoff = oldbrk >> kPageShift;
  r.flags = flags;
  Vma* vma = nullptr;
  if (prev != nullptr && prev->end == oldbrk) {
    vma = Impl::MergeNewRange(*this, prev, nullptr, r, /*just_expand=*/true);
  }
  if (vma == nullptr && Impl::InsertNew(*this, r) == nullptr) return out;
  brk_ = new_brk;
  if (def_flags_ & kVmLocked) Impl::PopulateRange(*this, oldbrk, newbrk);
  return Impl::Result(static_cast<int64_t>(new_brk), oldbrk, newbrk);
}

}  // namespace vmashadow
