// mremap.cc — mremap: shrink, grow in place, move (MAYMOVE, FIXED,
// DONTUNMAP) and the 6.17 multi-VMA move (mm/mremap.c, 6.12 code with the
// 6.18 check order of docs/errno-order.md#mremap and the merge rules of
// docs/merge-split.md#per-call-rules).
#include "core/mm/address_space.h"
#include "core/mm/internal.h"

namespace vmashadow {

using Impl = AddressSpace::Impl;

namespace {

struct RemapCall {
  uint64_t addr;
  uint64_t old_len;
  uint64_t new_len;
  int flags;
  uint64_t new_addr;
};

// vma_to_resize() (mm/mremap.c 6.12): the checks on the source VMA for a
// grow or a move. Returns the VMA or nullptr with *err.
Vma* VmaToResize(AddressSpace& as, const RemapCall& c, int* err) {
  Vma* v = as.FindVma(c.addr);
  if (v == nullptr || v->start > c.addr) {
    *err = -EFAULT;
    return nullptr;
  }
  if (c.old_len == 0 && !(v->flags & (kVmShared | kVmMayShare))) {
    *err = -EINVAL;
    return nullptr;
  }
  if ((c.flags & abi::kMremapDontunmap) && (v->flags & (kVmDontexpand | kVmPfnmap))) {
    *err = -EINVAL;
    return nullptr;
  }
  if (c.old_len > v->end - c.addr) {
    *err = -EFAULT;
    return nullptr;
  }
  if (c.new_len == c.old_len) return v;
  const uint64_t pgoff = v->pgoff + ((c.addr - v->start) >> kPageShift);
  if (pgoff + (c.new_len >> kPageShift) < pgoff) {
    *err = -EINVAL;
    return nullptr;
  }
  if (v->flags & (kVmDontexpand | kVmPfnmap)) {
    *err = -EFAULT;
    return nullptr;
  }
  if (c.new_len > c.old_len &&
      !AddressSpace::Impl::MlockFutureOk(as, v->flags, c.new_len - c.old_len)) {
    *err = -EAGAIN;
    return nullptr;
  }
  return v;
}

}  // namespace

// copy_vma() + move_vma() (mm/vma.c, mm/mremap.c 6.12): the source range
// [old_addr, old_addr+old_len) of `vma` is copied to new_addr with new_len,
// then unmapped unless DONTUNMAP. Returns new_addr or -errno.
static int64_t MoveVma(AddressSpace& as, Vma* vma, uint64_t old_addr, uint64_t old_len,
                       uint64_t new_len, uint64_t new_addr, int flags) {
  const MmParams& p = as.params();
  if (as.map_count() + 3 >= p.max_map_count) return -ENOMEM;
  // Special mappings may not be split by a partial move.
  if (vma->special != SpecialKind::kNone &&
      (vma->start != old_addr || vma->end != old_addr + old_len)) {
    return -EINVAL;
  }
  // 6.12: "To account mlock()'d pages correctly in the MREMAP_DONTUNMAP case
  // perform any split ahead of time": only the moved range loses VM_LOCKED.
  // 6.18 does not split; see dontunmap_locked_drift below.
  if ((flags & abi::kMremapDontunmap) && (vma->flags & kVmLocked) &&
      !as.profile().dontunmap_locked_drift) {
    if (vma->start != old_addr) {
      Vma* upper = nullptr;
      const int err = Impl::Split(as, vma, old_addr, /*check_count=*/true, &upper);
      if (err != 0) return err;
      vma = upper;
    }
    if (vma->end != old_addr + old_len) {
      const int err = Impl::Split(as, vma, old_addr + old_len, /*check_count=*/true);
      if (err != 0) return err;
    }
  }
  uint64_t pgoff = vma->pgoff + ((old_addr - vma->start) >> kPageShift);
  // An anonymous VMA that never faulted takes the pgoff of its new home.
  if (vma->is_anonymous() && vma->anon.anon_vma == 0) pgoff = new_addr >> kPageShift;
  const uint64_t vm_flags = vma->flags;
  const AnonState anon = vma->anon;
  File* file = vma->file;
  const bool whole = vma->start == old_addr && vma->end == old_addr + old_len;
  const uint64_t src_start = vma->start;

  MergeProposal r;
  r.start = new_addr;
  r.end = new_addr + new_len;
  r.pgoff = pgoff;
  r.flags = vm_flags;
  r.file = file;
  r.anon = anon;
  r.copied_from = vma;
  r.policy_id = vma->policy_id;
  r.uffd_id = vma->uffd_id;
  Vma* prev = nullptr;
  Vma* next = as.tree().FindVmaPrev(new_addr, &prev);
  Vma* copy = Impl::MergeNewRange(as, prev, next, r, /*just_expand=*/false);
  if (copy == nullptr) {
    copy = Impl::InsertNew(as, r, vma->special);
    if (copy == nullptr) return -ENOMEM;
  }
  Impl::MovePageTables(as, src_start, old_addr, copy->start, new_addr, old_len);
  if (flags & abi::kMremapDontunmap) {
    // The old VMA stays; it loses VM_LOCKED[ONFAULT] and, when moved whole,
    // its anon_vma links (it is unfaulted again).
    Vma* old = as.FindVma(old_addr);
    if (old != nullptr && old->start <= old_addr) {
      // 6.18: locked_vm is charged for the new range and never uncharged
      // for the old VMA that loses VM_LOCKED (probe pt5: VmLck +8 kB for a
      // 2-page move out of an 8-page mlocked VMA; +32 kB stays after both
      // are unmapped).
      if (as.profile().dontunmap_locked_drift && (old->flags & kVmLocked)) {
        Impl::AddLockedDrift(as, old->pages());
      }
      old->flags &= ~kVmLockedMask;
      if (whole && old != copy) old->anon = AnonState{};
    }
    return static_cast<int64_t>(new_addr);
  }
  if (old_len != 0) {
    // VM_ACCOUNT is concealed for the unmap and restored on the leftovers:
    // the pieces outside the moved range keep it.
    const int err = Impl::UnmapRange(as, old_addr, old_addr + old_len);
    if (err != 0) return err;
  }
  if ((vm_flags & kVmLocked) && new_len > old_len) {
    Impl::PopulateRange(as, new_addr + old_len, new_addr + new_len);
  }
  return static_cast<int64_t>(new_addr);
}

// mremap_to(): FIXED and/or DONTUNMAP.
static int64_t RemapTo(AddressSpace& as, RemapCall c) {
  using namespace abi;
  if (c.flags & kMremapFixed) {
    const int err = Impl::DoMunmap(as, c.new_addr, c.new_len);
    if (err != 0) return err;
  }
  if (c.old_len > c.new_len) {
    const int err = Impl::DoMunmap(as, c.addr + c.new_len, c.old_len - c.new_len);
    if (err != 0) return err;
    c.old_len = c.new_len;
  }
  int err = 0;
  Vma* v = VmaToResize(as, c, &err);
  if (v == nullptr) return err;
  int map_flags = (c.flags & kMremapFixed) ? kMapFixed : 0;
  if (v->flags & kVmMayShare) map_flags |= kMapShared;
  const uint64_t pgoff = v->pgoff + ((c.addr - v->start) >> kPageShift);
  const int64_t placed =
      as.GetUnmappedArea(v->file, nullptr, c.new_addr, c.new_len, pgoff, map_flags);
  if (placed < 0) return placed;
  return MoveVma(as, v, c.addr, c.old_len, c.new_len, static_cast<uint64_t>(placed), c.flags);
}

// mm/mremap.c: SYSCALL_DEFINE5(mremap), in 6.18's check order.
Outcome AddressSpace::Remap(uint64_t addr, uint64_t old_len_in, uint64_t new_len_in, int flags,
                            uint64_t new_addr) {
  using namespace abi;
  const MmParams& p = params_;
  // check_mremap_params() (6.18 order).
  if (flags & ~(kMremapFixed | kMremapMaymove | kMremapDontunmap)) return Impl::Result(-EINVAL);
  if (!PageAligned(addr)) return Impl::Result(-EINVAL);
  const uint64_t old_len = PageAlign(old_len_in);
  const uint64_t new_len = PageAlign(new_len_in);
  if (new_len == 0) return Impl::Result(-EINVAL);
  if (old_len < old_len_in || addr + old_len < addr) {
    return Impl::Result(-EINVAL);
  }
  const bool implies_new_addr = flags & (kMremapFixed | kMremapDontunmap);
  if (implies_new_addr) {
    if (new_len > p.task_size || new_addr > p.task_size - new_len) return Impl::Result(-EINVAL);
    if (!PageAligned(new_addr)) return Impl::Result(-EINVAL);
    if (!(flags & kMremapMaymove)) return Impl::Result(-EINVAL);
    if ((flags & kMremapDontunmap) && old_len != new_len) return Impl::Result(-EINVAL);
    if (addr + old_len > new_addr && new_addr + new_len > addr) return Impl::Result(-EINVAL);
    if (map_count() + 2 >= p.max_map_count - 3) return Impl::Result(-ENOMEM);
  }
  const uint64_t changed_lo = addr < new_addr || !implies_new_addr ? addr : new_addr;
  const uint64_t old_end = addr + (old_len > new_len ? old_len : new_len);
  const uint64_t new_end = new_addr + new_len;
  const uint64_t changed_hi = implies_new_addr && new_end > old_end ? new_end : old_end;
  auto result = [&](int64_t ret) {
    Outcome o = Impl::Result(ret, changed_lo, changed_hi);
    return o;
  };

  Vma* v = tree_.FindVma(addr);
  // The 6.17 move-only path: FIXED, same length, possibly several VMAs.
  if (profile_->multi_vma_mremap && (flags & kMremapFixed) && old_len == new_len &&
      !(flags & kMremapDontunmap) && old_len != 0 &&
      (v == nullptr || v->start > addr || v->end < addr + old_len)) {
    if (v == nullptr || v->start > addr) return result(-EFAULT);
    const uint64_t end = addr + old_len;
    // remap_move(): piece by piece, each to new_addr + its offset (gaps stay
    // gaps); an error stops the walk with the earlier pieces moved.
    uint64_t cursor = addr;
    bool seen = false;
    while (cursor < end) {
      Vma* x = tree_.FindVma(cursor);
      if (x == nullptr || x->start >= end) break;
      if (seen && x->uffd_id != 0) return result(-EFAULT);
      if (x->flags & kVmSealed) return result(-EPERM);
      seen = true;
      const uint64_t piece_start = x->start > cursor ? x->start : cursor;
      const uint64_t piece_end = x->end < end ? x->end : end;
      RemapCall c{piece_start, piece_end - piece_start, piece_end - piece_start, flags,
                  new_addr + (piece_start - addr)};
      const int64_t r = RemapTo(*this, c);
      if (r < 0) return result(r);
      cursor = piece_end;
    }
    Outcome o = result(static_cast<int64_t>(new_addr));
    return o;
  }

  if (v == nullptr || v->start > addr) return result(-EFAULT);
  if (v->flags & kVmSealed) return result(-EPERM);

  RemapCall c{addr, old_len, new_len, flags, new_addr};
  if (implies_new_addr) {
    // Check before unmapping anything at the destination (6.18
    // check_prep_vma() runs before mremap_to()).
    RemapCall probe = c;
    if (probe.old_len > probe.new_len) probe.old_len = probe.new_len;
    int err = 0;
    if (VmaToResize(*this, probe, &err) == nullptr) return result(err);
    const int64_t r = RemapTo(*this, c);
    Outcome o = result(r);
    o.placement_predicted = r >= 0 && !(flags & kMremapFixed);
    return o;
  }
  if (old_len >= new_len) {
    if (old_len == new_len) return result(static_cast<int64_t>(addr));
    const int err = Impl::DoMunmap(*this, addr + new_len, old_len - new_len);
    return result(err != 0 ? err : static_cast<int64_t>(addr));
  }
  int err = 0;
  v = VmaToResize(*this, c, &err);
  if (v == nullptr) return result(err);
  // Grow in place when the range ends at the VMA's end and the extension is
  // free (vma_expandable), merging as a new range with v as prev.
  if (old_len == v->end - addr) {
    const uint64_t delta = new_len - old_len;
    const uint64_t ext_end = v->end + delta;
    const bool expandable = ext_end > v->end &&
                            tree_.FindVmaIntersection(v->end, ext_end) == nullptr &&
                            ext_end <= p.task_size;
    if (expandable) {
      MergeProposal r;
      r.start = v->end;
      r.end = ext_end;
      r.pgoff = v->pgoff + v->pages();
      r.flags = v->flags;
      r.file = v->file;
      r.anon = v->anon;
      r.policy_id = v->policy_id;
      r.uffd_id = v->uffd_id;
      const uint64_t old_vma_end = v->end;
      Vma* merged = Impl::MergeNewRange(*this, v, v->next, r, /*just_expand=*/false);
      if (merged == nullptr) return result(-ENOMEM);
      if (merged->flags & kVmLocked) Impl::PopulateRange(*this, old_vma_end, ext_end);
      return result(static_cast<int64_t>(addr));
    }
  }
  if (!(flags & kMremapMaymove)) return result(-ENOMEM);
  int map_flags = 0;
  if (v->flags & kVmMayShare) map_flags |= kMapShared;
  const uint64_t pgoff = v->pgoff + ((addr - v->start) >> kPageShift);
  const int64_t placed = GetUnmappedArea(v->file, nullptr, 0, new_len, pgoff, map_flags);
  if (placed < 0) return result(placed);
  const int64_t r = MoveVma(*this, v, addr, old_len, new_len, static_cast<uint64_t>(placed), flags);
  Outcome o = Impl::Result(r, changed_lo, old_end);
  o.placement_predicted = r >= 0;
  if (r >= 0) {
    const uint64_t lo = static_cast<uint64_t>(r);
    if (lo < o.changed_start) o.changed_start = lo;
    if (lo + new_len > o.changed_end) o.changed_end = lo + new_len;
  }
  return o;
}

// ---------------------------------------------------------------------------
// Page tables (mm/mremap.c: move_page_tables(), try_realign_addr();
// docs/page-tables.md#mremap-and-move_page_tables).

void Impl::MovePageTables(AS& as, uint64_t src_start, uint64_t old_addr, uint64_t dst_start,
                          uint64_t new_addr, uint64_t len) {
  if (len == 0 || as.pt_.empty()) return;
  const uint64_t old_end = old_addr + len;
  // try_realign_addr(): when the move reaches a PMD boundary and both ends
  // sit at the same offset in their PMD at the start of their VMA, with no
  // VMA below them in that PMD, move whole PTE tables from the boundary.
  const uint64_t off = old_addr & ~kPmdMask;
  if (len >= kPmdSize - off && off != 0 && off == (new_addr & ~kPmdMask)) {
    auto can_align_down = [&as](uint64_t vma_start, uint64_t a) {
      return vma_start == a && as.tree_.FindVmaIntersection(a & kPmdMask, vma_start) == nullptr;
    };
    if (can_align_down(src_start, old_addr) && can_align_down(dst_start, new_addr)) {
      old_addr &= kPmdMask;
      new_addr &= kPmdMask;
    }
  }
  as.pt_.MoveRange(old_addr, new_addr, old_end - old_addr);
}

}  // namespace vmashadow
