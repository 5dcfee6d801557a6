// vma.h — the merge rules of mm/vma.c as questions anyone may ask: may this
// VMA merge with that proposed range, and if not, why not. The model's merge
// paths (core/mm/vma.cc) decide with them, `vmashadow report`
// explains unmerged neighbours with them: the rule is written once, here.
//
// Depends on abi/kernel_profile.h and mm/mm_types.h; preload-safe.
#ifndef VMASHADOW_CORE_MM_VMA_H_
#define VMASHADOW_CORE_MM_VMA_H_

#include <cstdint>

#include "core/abi/kernel_profile.h"
#include "core/mm/mm_types.h"

namespace vmashadow {

// The proposed range of a merge: what the kernel's vma_merge_struct carries.
struct MergeProposal {
  uint64_t start = 0;
  uint64_t end = 0;
  uint64_t pgoff = 0;  // pgoff at start
  uint64_t flags = 0;
  File* file = nullptr;
  AnonState anon;                    // anon_vma of the source (none for new ranges)
  const Vma* middle = nullptr;       // the existing VMA being modified (existing-range)
  const Vma* copied_from = nullptr;  // mremap's source VMA (6.18.y)
  uint32_t policy_id = 0;
  uint32_t uffd_id = 0;
};

namespace mm {

// Why a VMA and a range (or two adjacent VMAs) do not merge, in the order the
// checks are made: is_mergeable_vma(), is_mergeable_anon_vma(), the pgoff
// test of can_vma_merge_left/right(), and vm_ops->close for a merge that
// would remove a VMA.
enum class MergeRefusal : uint8_t {
  kNone = 0,    // mergeable
  kSpecial,     // a special mapping ([vdso], [vvar], ...)
  kVmSpecial,   // VM_IO / VM_PFNMAP / VM_MIXEDMAP / VM_DONTEXPAND
  kPolicy,      // different mempolicies
  kFlags,       // different vm_flags (the bits: *differing_flags)
  kFile,        // different files, or file against anonymous
  kUffd,        // different userfaultfd contexts
  kForkChild,   // an anon_vma chain from a fork
  kAnonVma,     // two different anon_vmas (both faulted before they met)
  kPgoff,       // offsets not contiguous
  kVmOpsClose,  // the file has vm_ops->close: a merge may not remove a VMA
  kCount,
};
const char* MergeRefusalName(MergeRefusal r);

// The vm_flags bits merging ignores: VM_SOFTDIRTY (0 on the kernels we model)
// and, where the profile has it, the sticky VM_MAYBE_GUARD.
uint64_t MergeIgnoredFlags(const KernelProfile& profile);

// Whether the VMA has vm_ops->close (special mappings do: special_mapping_close).
bool HasVmOpsClose(const Vma& v);

// Which side of the proposed range an existing VMA lies on.
enum class MergeSide : uint8_t { kPrev, kNext };

// mm/vma.c: is_mergeable_vma() + is_mergeable_anon_vma() + the pgoff test of
// can_vma_merge_left() (side kPrev: existing ends where r starts) or
// can_vma_merge_right() (kNext: existing starts where r ends). Adjacency is
// the caller's. For kFlags, *differing_flags (when given) gets the bits that
// differ. vm_ops->close is not asked here: it refuses only a merge that
// removes a VMA, which the merge paths know.
MergeRefusal WhyNotMergeable(const KernelProfile& profile, const Vma& existing, MergeSide side,
                             const MergeProposal& r, uint64_t* differing_flags = nullptr);

// Why two adjacent VMAs (prev.end == next.start) are two: the rules above
// with next as the range, then vm_ops->close (joining two whole VMAs always
// removes one). kNone: they are mergeable, no call touched their boundary.
MergeRefusal WhyNotMergeable(const KernelProfile& profile, const Vma& prev, const Vma& next,
                             uint64_t* differing_flags = nullptr);

// The MergeProposal describing [start, end) of the existing VMA v with new
// flags (what vma_modify() proposes).
MergeProposal ProposalFor(const Vma& v, uint64_t start, uint64_t end, uint64_t flags);

}  // namespace mm
}  // namespace vmashadow

#endif  // VMASHADOW_CORE_MM_VMA_H_
