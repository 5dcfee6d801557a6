// vma.cc — mm/vma.c: the merge predicates (mm::WhyNotMergeable, see vma.h),
// split, the two merge primitives, vma_modify() and the munmap gather.
#include "core/mm/vma.h"

#include "core/mm/address_space.h"
#include "core/mm/dcheck.h"
#include "core/mm/internal.h"

namespace vmashadow::mm {

const char* MergeRefusalName(MergeRefusal r) {
  static const char* const kNames[] = {
      "mergeable now: no call touched the boundary since",
      "special mapping",
      "VM_SPECIAL flags (io/pfnmap/mixedmap/dontexpand)",
      "different mempolicies",
      "different vm_flags",
      "different files (or file and anonymous)",
      "different userfaultfd contexts",
      "fork child (anon_vma chain from a fork)",
      "different anon_vmas (both faulted before they met)",
      "offsets not contiguous (pgoff)",
      "vm_ops->close (a merge may not remove either VMA)",
  };
  static_assert(sizeof(kNames) / sizeof(kNames[0]) == static_cast<size_t>(MergeRefusal::kCount));
  const auto i = static_cast<size_t>(r);
  return i < static_cast<size_t>(MergeRefusal::kCount) ? kNames[i] : "?";
}

uint64_t MergeIgnoredFlags(const KernelProfile& profile) {
  return uint64_t{kVmSoftdirty} | (profile.guard_sticky_flag ? uint64_t{kVmMaybeGuard} : 0);
}

bool HasVmOpsClose(const Vma& v) {
  if (v.special != SpecialKind::kNone) return true;  // special_mapping_close
  return v.file != nullptr && v.file->has_close;
}

namespace {

// A VMA "had uncowed parents": it has an anon_vma whose chain is not singular.
bool HadUncowedParents(const Vma* v) {
  return v != nullptr && v->anon.anon_vma != 0 && v->anon.fork_child;
}

// mm/vma.c: is_mergeable_anon_vma() for tgt (prev or next) against the
// proposal.
bool IsMergeableAnon(const KernelProfile& profile, const Vma& tgt, const MergeProposal& r) {
  const uint64_t tgt_anon = tgt.anon.anon_vma;
  const uint64_t src_anon = r.anon.anon_vma;
  if (profile.anon_vma_615_rule) {
    // 6.15+ (879bca0a2c4f), plus the 6.18.y copied_from check.
    if (tgt_anon == 0 && src_anon != 0) {
      if (HadUncowedParents(r.middle)) return false;
      if (profile.copied_from_check && HadUncowedParents(r.copied_from)) return false;
      return true;
    }
    if (tgt_anon != 0 && src_anon == 0) return !HadUncowedParents(&tgt);
    return src_anon == tgt_anon;
  }
  // 6.12: one side without anon_vma is fine only when tgt's chain is
  // singular (it has its own anon_vma and is no fork child).
  if ((tgt_anon == 0 || src_anon == 0) && tgt_anon != 0 && !tgt.anon.fork_child) return true;
  return tgt_anon == src_anon;
}

}  // namespace

// mm/vma.c: is_mergeable_vma(), is_mergeable_anon_vma(), can_vma_merge_left(),
// can_vma_merge_right().
MergeRefusal WhyNotMergeable(const KernelProfile& profile, const Vma& existing, MergeSide side,
                             const MergeProposal& r, uint64_t* differing_flags) {
  if (existing.special != SpecialKind::kNone) return MergeRefusal::kSpecial;
  if (((existing.flags | r.flags) & kVmSpecial) != 0) return MergeRefusal::kVmSpecial;
  if (existing.policy_id != r.policy_id) return MergeRefusal::kPolicy;
  const uint64_t diff = (existing.flags ^ r.flags) & ~MergeIgnoredFlags(profile);
  if (diff != 0) {
    if (differing_flags != nullptr) *differing_flags = diff;
    return MergeRefusal::kFlags;
  }
  if (existing.file != r.file) return MergeRefusal::kFile;
  if (existing.uffd_id != r.uffd_id) return MergeRefusal::kUffd;
  if (!IsMergeableAnon(profile, existing, r)) {
    const bool fork_child = HadUncowedParents(&existing) ||
                            (r.anon.anon_vma != 0 && r.anon.fork_child) ||
                            HadUncowedParents(r.middle) ||
                            (profile.copied_from_check && HadUncowedParents(r.copied_from));
    return fork_child ? MergeRefusal::kForkChild : MergeRefusal::kAnonVma;
  }
  const bool contiguous = side == MergeSide::kPrev
                              ? existing.pgoff + existing.pages() == r.pgoff
                              : existing.pgoff == r.pgoff + ((r.end - r.start) >> kPageShift);
  if (!contiguous) return MergeRefusal::kPgoff;
  return MergeRefusal::kNone;
}

MergeRefusal WhyNotMergeable(const KernelProfile& profile, const Vma& prev, const Vma& next,
                             uint64_t* differing_flags) {
  if (prev.special != SpecialKind::kNone || next.special != SpecialKind::kNone) {
    return MergeRefusal::kSpecial;
  }
  const MergeProposal r = ProposalFor(next, next.start, next.end, next.flags);
  const MergeRefusal why = WhyNotMergeable(profile, prev, MergeSide::kPrev, r, differing_flags);
  if (why != MergeRefusal::kNone) return why;
  if (HasVmOpsClose(prev) || HasVmOpsClose(next)) return MergeRefusal::kVmOpsClose;
  return MergeRefusal::kNone;
}

MergeProposal ProposalFor(const Vma& v, uint64_t start, uint64_t end, uint64_t flags) {
  MergeProposal r;
  r.start = start;
  r.end = end;
  r.pgoff = v.pgoff + ((start - v.start) >> kPageShift);
  r.flags = flags;
  r.file = v.file;
  r.anon = v.anon;
  r.middle = &v;
  r.policy_id = v.policy_id;
  r.uffd_id = v.uffd_id;
  return r;
}

}  // namespace vmashadow::mm

namespace vmashadow {

using Impl = AddressSpace::Impl;

// ---------------------------------------------------------------------------
// Split.

// mm/vma.c: __split_vma().
int Impl::Split(AS& as, Vma* v, uint64_t addr, bool check_count, Vma** upper) {
  VMASHADOW_DCHECK(v->start < addr && addr < v->end && PageAligned(addr));
  if (check_count && as.tree_.size() >= as.params_.max_map_count) return -ENOMEM;
  // Special mappings' may_split (special_mapping_split) refuses.
  if (v->special != SpecialKind::kNone) return -EINVAL;
  if (v->file != nullptr && v->file->kind == FileKind::kHugetlb && (addr & (kPmdSize - 1))) {
    return -EINVAL;  // hugetlb_vm_op_split
  }
  Vma* n = NewVma(as);
  if (n == nullptr) return -ENOMEM;
  SplitHugeAt(as, addr);
  n->start = addr;
  n->end = v->end;
  n->pgoff = v->pgoff + ((addr - v->start) >> kPageShift);
  n->flags = v->flags;
  n->file = v->file;
  RefFile(n->file);
  n->anon = v->anon;
  n->special = v->special;
  n->policy_id = v->policy_id;
  n->uffd_id = v->uffd_id;
  as.tree_.SetBounds(v, v->start, addr);
  as.tree_.Insert(n);
  if (upper != nullptr) *upper = n;
  return 0;
}

// ---------------------------------------------------------------------------
// Merge rules (mm/vma.c).

// The rules themselves (is_mergeable_vma, is_mergeable_anon_vma, the pgoff
// tests) are mm::WhyNotMergeable() above.

uint64_t Impl::IgnoredFlags(const AS& as) { return mm::MergeIgnoredFlags(*as.profile_); }

bool Impl::HasClose(const Vma* v) { return mm::HasVmOpsClose(*v); }

// Mirrors are_anon_vmas_compatible().
bool Impl::AnonVmasCompatible(const Vma* a, const Vma* b) {
  return a->anon.anon_vma == 0 || b->anon.anon_vma == 0 || a->anon.anon_vma == b->anon.anon_vma;
}

// Mirrors can_vma_merge_left() (can_vma_merge_after()).
bool Impl::CanMergeLeft(const AS& as, const Vma* prev, const MergeProposal& r) {
  return prev != nullptr && prev->end == r.start &&
         mm::WhyNotMergeable(*as.profile_, *prev, mm::MergeSide::kPrev, r) ==
             mm::MergeRefusal::kNone;
}

// Mirrors can_vma_merge_right() (can_vma_merge_before()).
bool Impl::CanMergeRight(const AS& as, const Vma* prev, const Vma* next, const MergeProposal& r,
                         bool can_merge_left) {
  if (next == nullptr || next->start != r.end) return false;
  if (mm::WhyNotMergeable(*as.profile_, *next, mm::MergeSide::kNext, r) !=
      mm::MergeRefusal::kNone) {
    return false;
  }
  if (!can_merge_left) return true;
  return AnonVmasCompatible(prev, next);
}

// mm/vma.c: dup_anon_vma().
void Impl::DupAnon(Vma* dst, const Vma* src) {
  if (src != nullptr && src->anon.anon_vma != 0 && dst->anon.anon_vma == 0) dst->anon = src->anon;
}

// Mirrors vma_merge_new_range() + vma_expand() (mm/vma.c, 6.12):
//
//   left:   PPPP|RRR          -> PPPPPPP
//   right:       RRR|NNNN     -> RRRNNNN   (next moves down, takes r.pgoff)
//   both:   PPPP|RRR|NNNN     -> PPPPPPPPPPP
Vma* Impl::MergeNewRange(AS& as, Vma* prev, Vma* next, const MergeProposal& r, bool just_expand) {
  VMASHADOW_DCHECK(r.start < r.end && PageAligned(r.start) && PageAligned(r.end));
  VMASHADOW_DCHECK(prev == nullptr || prev->end <= r.start);
  VMASHADOW_DCHECK(next == nullptr || r.end <= next->start);
  if ((r.flags & kVmSpecial) || (prev == nullptr && next == nullptr)) return nullptr;
  const bool left = CanMergeLeft(as, prev, r);
  bool right = !just_expand && CanMergeRight(as, prev, next, r, left);
  if (left) {
    if (right && HasClose(next)) right = false;
    const uint64_t new_end = right ? next->end : r.end;
    if (right) {
      DupAnon(prev, next);
      prev->flags |= next->flags & IgnoredFlags(as);
      RemoveVma(as, next);
    }
    prev->flags |= r.flags & IgnoredFlags(as);
    if (prev->anon.anon_vma == 0) prev->anon = r.anon;  // a moved VMA's pages come along
    as.tree_.SetBounds(prev, prev->start, new_end);
    return prev;
  }
  if (right) {
    if (next->anon.anon_vma == 0) next->anon = r.anon;
    next->pgoff = r.pgoff;
    next->flags |= r.flags & IgnoredFlags(as);
    as.tree_.SetBounds(next, r.start, next->end);
    return next;
  }
  return nullptr;
}

// Mirrors vma_merge_existing_range() (mm/vma.c, 6.12). r is a range of
// `middle` whose flags (or other attributes) change:
//
//   merge_left:  PPPP|MMmm   -> PPPPPP|mm   (or middle removed when r covers it)
//   merge_right: mmMM|NNNN   -> mm|NNNNNN
//   merge_both:  PPPP|MMMM|NNNN -> PPPPPPPPPPPP
Vma* Impl::MergeExistingRange(AS& as, Vma* prev, Vma* middle, const MergeProposal& r) {
  VMASHADOW_DCHECK(middle->start <= r.start && r.start < r.end && r.end <= middle->end);
  // prev is middle itself when r starts inside it (the kernel's convention).
  VMASHADOW_DCHECK(prev == nullptr || prev == middle || prev->end <= middle->start);
  const bool left_side = r.start == middle->start;
  const bool right_side = r.end == middle->end;
  if ((r.flags & kVmSpecial) || (!left_side && !right_side)) return nullptr;
  const bool merge_left = left_side && CanMergeLeft(as, prev, r);
  Vma* next = right_side ? middle->next : nullptr;
  bool merge_right = right_side && CanMergeRight(as, prev, next, r, merge_left);
  if (!merge_left && !merge_right) return nullptr;
  const bool delete_middle = left_side && right_side;
  if (delete_middle && HasClose(middle)) return nullptr;
  // commit_merge() -> vma_adjust_trans_huge(): boundaries moving inside
  // `middle` split a THP there.
  SplitHugeAt(as, r.start);
  SplitHugeAt(as, r.end);
  bool merge_both = merge_left && merge_right;
  if (merge_both && HasClose(next)) {
    merge_right = false;
    merge_both = false;
  }
  const uint64_t ignored = IgnoredFlags(as);
  if (merge_both) {
    DupAnon(prev, next->anon.anon_vma != 0 ? next : middle);
    prev->flags |= (middle->flags | next->flags) & ignored;
    const uint64_t new_end = next->end;
    RemoveVma(as, middle);
    RemoveVma(as, next);
    as.tree_.SetBounds(prev, prev->start, new_end);
    return prev;
  }
  if (merge_left) {
    DupAnon(prev, middle);
    prev->flags |= middle->flags & ignored;
    if (delete_middle) {
      RemoveVma(as, middle);
    } else {
      middle->pgoff += (r.end - middle->start) >> kPageShift;
      as.tree_.SetBounds(middle, r.end, middle->end);
    }
    as.tree_.SetBounds(prev, prev->start, r.end);
    return prev;
  }
  // merge_right
  DupAnon(next, middle);
  next->flags |= middle->flags & ignored;
  if (delete_middle) {
    RemoveVma(as, middle);
  } else {
    as.tree_.SetBounds(middle, middle->start, r.start);
  }
  next->pgoff = r.pgoff;
  as.tree_.SetBounds(next, r.start, next->end);
  return next;
}

// Mirrors vma_modify() followed by vm_flags_reset() (mm/vma.c, 6.12).
Vma* Impl::ModifyFlags(AS& as, Vma* prev, Vma* vma, uint64_t start, uint64_t end,
                       uint64_t new_flags, int* err) {
  *err = 0;
  const MergeProposal r = ProposalFor(vma, start, end, new_flags);
  if (Vma* merged = MergeExistingRange(as, prev, vma, r)) return merged;
  if (vma->start < start) {
    // split_vma(vma, start, new_below=1): the lower part becomes a new VMA.
    Vma* upper = nullptr;
    *err = Split(as, vma, start, /*check_count=*/true, &upper);
    if (*err != 0) return nullptr;
    vma = upper;
  }
  if (vma->end > end) {
    *err = Split(as, vma, end, /*check_count=*/true);
    if (*err != 0) return nullptr;
  }
  vma->flags = new_flags;
  return vma;
}

// ---------------------------------------------------------------------------
// munmap (mm/vma.c: do_vmi_munmap, vms_gather_munmap_vmas, 6.12).

int Impl::GatherUnmap(AS& as, uint64_t start, uint64_t end, Vma* vma, Vma** first) {
  *first = nullptr;
  if (vma == nullptr) vma = as.tree_.FindVmaIntersection(start, end);
  if (vma == nullptr) return 0;
  if (start > vma->start) {
    if (end < vma->end && as.tree_.size() >= as.params_.max_map_count) return -ENOMEM;
    if (vma->flags & kVmSealed) return -EPERM;
    Vma* upper = nullptr;
    const int err = Split(as, vma, start, /*check_count=*/false, &upper);
    if (err != 0) return err;
    vma = upper;
  }
  for (Vma* v = vma; v != nullptr && v->start < end; v = v->next) {
    if (v->flags & kVmSealed) return -EPERM;
    if (v->end > end) {
      const int err = Split(as, v, end, /*check_count=*/false);
      if (err != 0) return err;
    }
  }
  *first = vma;
  return 0;
}

// mm/vma.c: vms_complete_munmap_vmas() for the gathered VMAs.
void Impl::RemoveFrom(AS& as, Vma* v, uint64_t end) {
  if (v != nullptr && v->start < end && !as.pt_.empty()) {
    Vma* last = v;
    while (last->next != nullptr && last->next->start < end) last = last->next;
    UnmapPageTables(as, v, last);
  }
  while (v != nullptr && v->start < end) {
    Vma* next = v->next;
    RemoveVma(as, v);
    v = next;
  }
}

int Impl::UnmapRange(AS& as, uint64_t start, uint64_t end, Vma* vma) {
  Vma* first = nullptr;
  const int err = GatherUnmap(as, start, end, vma, &first);
  if (err != 0) return err;
  RemoveFrom(as, first, end);
  return 0;
}

// Mirrors do_vmi_munmap() (mm/vma.c, 6.12).
int Impl::DoMunmap(AS& as, uint64_t start, uint64_t len) {
  const uint64_t task_size = as.params_.task_size;
  if (!PageAligned(start) || start > task_size || len > task_size - start) return -EINVAL;
  const uint64_t end = start + PageAlign(len);
  if (end == start) return -EINVAL;
  Vma* vma = as.tree_.FindVmaIntersection(start, end);
  if (vma == nullptr) return 0;
  return UnmapRange(as, start, end, vma);
}

// mm/mmap.c: SYSCALL_DEFINE2(munmap) -> do_vmi_munmap().
Outcome AddressSpace::Unmap(uint64_t addr, uint64_t len) {
  const int err = Impl::DoMunmap(*this, addr, len);
  if (err == -EINVAL) return Impl::Result(err);
  return Impl::Result(err, addr, addr + PageAlign(len));
}

}  // namespace vmashadow
