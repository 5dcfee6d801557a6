// address_space_internal.h — the shared machinery behind AddressSpace's
// syscalls: VMA and file lifetime, split, the two merge primitives of 6.12+
// (mm/vma.c: vma_merge_new_range, vma_merge_existing_range), vma_modify, the
// munmap gather, faults and populate. Only core/mm/*.cc include this.
#ifndef VMASHADOW_CORE_MM_INTERNAL_H_
#define VMASHADOW_CORE_MM_INTERNAL_H_

#include <cstdint>

#include "core/abi/no_syscalls.h"
#include "core/mm/address_space.h"
#include "core/mm/vma.h"

namespace vmashadow {

struct AddressSpace::Impl {
  using AS = AddressSpace;

  // --- lifetime ---
  static Vma* NewVma(AS& as);
  static void FreeVma(AS& as, Vma* v);
  static File* InternFile(AS& as, const FileDesc& d);
  static File* NewShmemFile(AS& as, const FileDesc* d);
  static void RefFile(File* f) {
    if (f) ++f->refs;
  }
  static void UnrefFile(AS& as, File* f);
  static void DropIfUnused(AS& as, File* f);
  // A new VMA exactly as the proposal describes it, linked into the tree
  // (vm_area_alloc + vma_link). nullptr when the arena is full.
  static Vma* InsertNew(AS& as, const MergeProposal& r, SpecialKind special = SpecialKind::kNone);
  // Unlinks and frees v.
  static void RemoveVma(AS& as, Vma* v);

  // --- split ---
  // Mirrors __split_vma() (mm/vma.c, 6.12): v keeps [start, addr), a new VMA
  // takes [addr, end). With check_count, split_vma()'s map_count test first.
  // Returns 0, -ENOMEM or -EINVAL (special mappings refuse); *upper if wanted.
  static int Split(AS& as, Vma* v, uint64_t addr, bool check_count, Vma** upper = nullptr);

  // --- merge rules ---
  static uint64_t IgnoredFlags(const AS& as);
  static bool AnonVmasCompatible(const Vma* a, const Vma* b);
  static bool CanMergeLeft(const AS& as, const Vma* prev, const MergeProposal& r);
  static bool CanMergeRight(const AS& as, const Vma* prev, const Vma* next, const MergeProposal& r,
                            bool can_merge_left);
  static bool HasClose(const Vma* v);
  // dup_anon_vma(): dst takes src's anon_vma when it has none.
  static void DupAnon(Vma* dst, const Vma* src);

  // Mirrors vma_merge_new_range(): merges [r.start, r.end) into prev and/or
  // next. Returns the VMA now covering the range, or nullptr (no merge).
  static Vma* MergeNewRange(AS& as, Vma* prev, Vma* next, const MergeProposal& r, bool just_expand);
  // Mirrors vma_merge_existing_range(): r lies within `middle`.
  static Vma* MergeExistingRange(AS& as, Vma* prev, Vma* middle, const MergeProposal& r);
  // Mirrors vma_modify() + vm_flags_reset(): merge, else split off
  // [start, end) of vma, then set the new flags. Returns the VMA covering
  // [start, end) (possibly larger after a merge) or nullptr with *err set.
  static Vma* ModifyFlags(AS& as, Vma* prev, Vma* vma, uint64_t start, uint64_t end,
                          uint64_t new_flags, int* err);

  // --- mmap ---
  // mmap_region() for a new mapping of [addr, addr + len) with the flags
  // do_mmap() computed (mmap.cc).
  static Outcome MmapRegion(AS& as, File* file, const FileDesc* desc, uint64_t addr, uint64_t len,
                            uint64_t pgoff, uint64_t vm_flags, int flags, Vma* prev, Vma* next);

  // --- unmap ---
  // Mirrors do_vmi_munmap()/vms_gather_munmap_vmas() + completion over an
  // aligned [start, end): splits at the edges (leaving them on failure),
  // refuses sealed VMAs, removes what lies inside. Returns 0 or -errno.
  // Mirrors do_vmi_munmap() with its argument checks (EINVAL), for the
  // unmaps inside other calls (mremap's tail and destination).
  static int DoMunmap(AS& as, uint64_t start, uint64_t len);
  // `vma`, when given, is FindVmaIntersection(start, end) (saves a lookup).
  static int UnmapRange(AS& as, uint64_t start, uint64_t end, Vma* vma = nullptr);
  // The gather phase only: returns 0 or -errno. On success every VMA inside
  // [start, end) is exactly contained in it (splits done) and *first is the
  // first of them (nullptr when none).
  static int GatherUnmap(AS& as, uint64_t start, uint64_t end, Vma* vma, Vma** first);
  // Removes the VMAs from `first` (the first inside the range) up to end.
  static void RemoveFrom(AS& as, Vma* first, uint64_t end);

  // --- page tables ---
  static PageTables& Pt(AS& as) { return as.pt_; }
  // locked_vm the kernel charged beyond the VM_LOCKED VMAs (see
  // KernelProfile::dontunmap_locked_drift).
  static void AddLockedDrift(AS& as, uint64_t pages) { as.locked_vm_drift_ += pages; }
  // Mirrors unmap_vmas() + free_pgtables() (mm/memory.c, 6.12) for the VMAs
  // first..last (consecutive in the tree) that an unmap is about to remove:
  // their entries are zapped (guard markers too), then free_pgd_range() runs
  // per batch of VMAs less than PMD_SIZE apart, between floor (the end of the
  // surviving VMA before them, or 0) and ceiling (the start of the next
  // removed batch, else of the surviving VMA after them, else 0 = the top).
  static void UnmapPageTables(AS& as, Vma* first, Vma* last);
  // vma_adjust_trans_huge()/split_huge_leaf() (mm/huge_memory.c, 6.12): a
  // VMA boundary set inside a huge PMD splits it.
  static void SplitHugeAt(AS& as, uint64_t addr);
  // thp_vma_allowable_order() at fault time + thp_vma_suitable_order() for a
  // PMD-sized anonymous THP covering [haddr, haddr + 2 MiB).
  static bool ThpFaultAllowed(const AS& as, const Vma* v, uint64_t haddr);
  // The page tables' side of faulting [start, end) (within v) in, as
  // handle_mm_fault() would for each page: a huge PMD where a THP may be
  // mapped (do_huge_pmd_anonymous_page; a read fault maps the huge zero
  // page, which deposits a table too), else PTEs (zero page on read faults of
  // anonymous memory: present all the same).
  static void FaultPages(AS& as, const Vma* v, uint64_t start, uint64_t end);
  // Where v's file ends (v->end when the size is unknown or v has no file):
  // faults at or above it SIGBUS.
  static uint64_t FileEnd(const Vma* v);
  // vma_needs_copy() (mm/memory.c, 6.12; the sticky guard flag on 6.19 and
  // this 6.18-fc build).
  static bool VmaNeedsCopy(const AS& as, const Vma* v);
  // move_page_tables() (mm/mremap.c, 6.12) including try_realign_addr():
  // src_start is the source VMA's start, dst_start the (possibly merged)
  // destination VMA's start, both as they were when the move began.
  static void MovePageTables(AS& as, uint64_t src_start, uint64_t old_addr, uint64_t dst_start,
                             uint64_t new_addr, uint64_t len);

  // --- faults ---
  // anon_vma_prepare(): gives v an anon_vma, reusing a neighbour's where
  // find_mergeable_anon_vma() would.
  static void PrepareAnon(AS& as, Vma* v);
  // populate_vma_page_range() over [start, end) ∩ v: private writable memory
  // is faulted for write (breaking CoW: anon_vma), the rest for read; every
  // page becomes mapped. Returns -EFAULT for memory GUP cannot fault
  // (PROT_NONE); VM_IO/VM_PFNMAP and VM_LOCKONFAULT VMAs are skipped.
  static int PopulateVma(AS& as, Vma* v, uint64_t start = 0, uint64_t end = ~uint64_t{0});
  // __mm_populate(): stops at the first error unless ignore_errors.
  static int PopulateRange(AS& as, uint64_t start, uint64_t end, bool ignore_errors = true);

  static bool VmaIsAccessible(const Vma* v) { return (v->flags & kVmRwx) != 0; }
  static uint64_t StartGap(const AS& as, const Vma* v);
  static bool CanDoMlock(const AS& as);
  // include/linux/mman.h: map_deny_write_exec(): under MDWE, no VMA becomes
  // writable and executable, nor executable when it was not.
  static bool MapDenyWriteExec(const AS& as, uint64_t old_flags, uint64_t new_flags);
  // mm/mmap.c: mlock_future_ok(): a VM_LOCKED mapping of `bytes` more fits
  // under RLIMIT_MEMLOCK (always without VM_LOCKED or with CAP_IPC_LOCK).
  static bool MlockFutureOk(const AS& as, uint64_t vm_flags, uint64_t bytes);
  static Outcome Result(int64_t ret, uint64_t start = 0, uint64_t end = 0) {
    Outcome o;
    o.ret = ret;
    o.changed_start = start;
    o.changed_end = end;
    return o;
  }
  // The MergeProposal describing [start, end) of an existing VMA v.
  static MergeProposal ProposalFor(const Vma* v, uint64_t start, uint64_t end, uint64_t flags) {
    return mm::ProposalFor(*v, start, end, flags);
  }

  // --- per-call helpers in other files ---
  static int64_t PlainArea(const AS& as, uint64_t addr, uint64_t len, uint64_t pgoff, int flags);
  static int64_t ThpArea(const AS& as, uint64_t addr, uint64_t len, uint64_t off, int flags,
                         bool* fell_back);
};

}  // namespace vmashadow

#endif  // VMASHADOW_CORE_MM_INTERNAL_H_
