// kernel_profile.h — the behaviour switches where kernel versions differ.
//
// The model follows one profile at a time (docs/kernel-versions.md). The preload probes the
// running kernel at start-up and picks the matching profile; replay selects one
// by name. Depends on nothing; preload-safe.
#ifndef VMASHADOW_CORE_ABI_KERNEL_PROFILE_H_
#define VMASHADOW_CORE_ABI_KERNEL_PROFILE_H_

#include <cstddef>

namespace vmashadow {

struct KernelProfile {
  const char* name;
  // 6.15 (879bca0a2c4f): an unfaulted target may absorb a faulted source;
  // fork children refuse. Off: the 6.12 "single chain entry" rule.
  bool anon_vma_615_rule;
  // 6.18-stable "fix anon_vma UAF on mremap() faulted, unfaulted merge": a
  // moved VMA copied from a fork child does not merge into an unfaulted target.
  bool copied_from_check;
  // 6.17: mremap(FIXED, old_len == new_len) may move a range spanning VMAs.
  bool multi_vma_mremap;
  // 6.17: mseal skips already sealed VMAs (same errnos as before).
  bool mseal_rework;
  // 6.16: KSM merge-any sets VM_MERGEABLE before the merge attempt.
  bool ksm_flags_before_merge;
  // 6.13+: MADV_GUARD_INSTALL / MADV_GUARD_REMOVE exist.
  bool guard_regions;
  // 6.19 (on the running 6.18-fc build): MADV_GUARD_INSTALL sets the sticky,
  // merge-ignored VM_MAYBE_GUARD on the whole VMA.
  bool guard_sticky_flag;
  // 6.13+: the vDSO block has [vvar], [vvar_vclock], [vdso].
  bool vvar_vclock;
  // 6.18: the anonymous THP aligner also requires !file.
  bool thp_align_requires_no_file;
  // CONFIG_PT_RECLAIM: MADV_DONTNEED frees empty PTE tables.
  bool pt_reclaim;
  // The mremap rework (6.16/6.17; seen on 6.18): MREMAP_DONTUNMAP of part of
  // an mlock()ed VMA no longer splits it first; VM_LOCKED is cleared on the
  // whole old VMA without uncharging locked_vm, and the new range is charged:
  // VmLck drifts above the locked VMAs. Off: 6.12's split-ahead, no drift.
  bool dontunmap_locked_drift;
};

// The profiles we know, by name: "6.12", "6.15", "6.17", "6.18", "6.18-fc"
// (the running vendor build: 6.18 plus the sticky guard flag).
const KernelProfile* FindKernelProfile(const char* name);
// All known profiles, for listing; sets *count.
const KernelProfile* AllKernelProfiles(size_t* count);
// The profile of the kernel the project's checks run on (6.18.44-fc).
const KernelProfile& DefaultKernelProfile();
// The profile for a running kernel: its release string (uname -r, e.g.
// "6.18.44-fc") picks the version row (older than 6.12 gets 6.12, the oldest
// we model; newer than 6.18 gets 6.18), and sticky_guard (MADV_GUARD_INSTALL
// was seen to set VM_MAYBE_GUARD, smaps "gu") selects the 6.18-fc row, the
// one with the 6.19 sticky guard flag. *exact is false when the release is
// outside 6.12..6.18 or does not parse.
const KernelProfile& ProfileForKernel(const char* release, bool sticky_guard, bool* exact);

}  // namespace vmashadow

#endif  // VMASHADOW_CORE_ABI_KERNEL_PROFILE_H_
