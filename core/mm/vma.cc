// vma.cc — the merge predicates of mm/vma.c (see vma.h).
#include "core/mm/vma.h"

#include "core/abi/no_syscalls.h"

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
