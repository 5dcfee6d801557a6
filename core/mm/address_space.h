// address_space.h — a replica of one process's mm: its VMAs and the rules the
// kernel applies to them.
//
// Each memory-mapping syscall has one function here that mirrors what the
// running kernel would do with the same arguments: it predicts the return value
// (an address, 0, the new brk, or -errno, checked in the kernel's order) and
// applies the change to the model, merging and splitting exactly as 6.x does
// (docs/merge-split.md, docs/errno-order.md, docs/placement.md). Callers feed it the real calls
// (the preload), a recorded trace (replay) or scripted calls (tests), and compare the result with
// the kernel.
//
// The model is pure: no syscalls, no files, no exceptions, no allocation except
// from the Arena handed to the constructor, nothing from the shared libstdc++.
// Not thread-safe: callers serialise (the preload's model lock).
#ifndef VMASHADOW_CORE_MM_ADDRESS_SPACE_H_
#define VMASHADOW_CORE_MM_ADDRESS_SPACE_H_

#include <cstddef>
#include <cstdint>

#include "core/abi/kernel_profile.h"
#include "core/abi/linux_abi.h"
#include "core/mm/arena.h"
#include "core/mm/mm_types.h"
#include "core/mm/page_tables.h"
#include "core/mm/vma_tree.h"

namespace vmashadow {

class AddressSpace {
 public:
  // The model allocates VMAs and files from `arena` only. `profile` must
  // outlive the AddressSpace.
  AddressSpace(Arena* arena, const KernelProfile& profile, const MmParams& params);
  ~AddressSpace();
  AddressSpace(const AddressSpace&) = delete;
  AddressSpace& operator=(const AddressSpace&) = delete;

  // --- seeding and reconciliation (no kernel semantics: the caller's facts) ---

  // Drops every VMA and file; keeps params, profile and page tables.
  void Clear();
  // Inserts one VMA as is (no merging). Returns 0, -EEXIST when it overlaps,
  // -EINVAL when unaligned or empty, -ENOMEM when the arena is full.
  [[nodiscard]] int SeedVma(const VmaSeed& seed);
  void SetBrkState(uint64_t start_brk, uint64_t brk) {
    start_brk_ = start_brk;
    brk_ = brk;
  }
  void SetStartStack(uint64_t start_stack) { start_stack_ = start_stack; }
  void SetHasGateVma(bool has) { has_gate_vma_ = has; }
  // New parameters (a change of paging_levels clears the page tables).
  void set_params(const MmParams& params) {
    params_ = params;
    pt_.SetLevels(params.paging_levels);
  }
  // A VM_GROWSDOWN VMA containing `addr` was seen to start at `observed_start`
  // (stack growth makes no syscall). Moves its start down (never up) and pgoff
  // with it. Returns 0, or -ENOENT / -EINVAL when that does not fit.
  [[nodiscard]] int ReconcileGrowsdown(uint64_t addr, uint64_t observed_start);
  // The VMA starting at `start` is known (smaps "Anonymous:", pagemap) to
  // hold anonymous pages: unless it has one, it gets a fresh anon_vma, a
  // fork child's when `fork_child`. Returns 0, or -ENOENT.
  [[nodiscard]] int MarkFaulted(uint64_t start, bool fork_child);
  // The same, learnt while the process runs (a write fault we did not see):
  // the VMA gets its anon_vma the way the fault gave it one, reusing a
  // compatible neighbour's (anon_vma_prepare, mm/rmap.c). Returns 0 or -ENOENT.
  [[nodiscard]] int LearnFaulted(uint64_t start);
  // The file (dev, inode) was unlinked: its VMAs now print " (deleted)".
  void MarkFileDeleted(uint32_t dev_major, uint32_t dev_minor, uint64_t inode);
  // True when some VMA maps the file (dev, inode).
  bool MapsFile(uint32_t dev_major, uint32_t dev_minor, uint64_t inode) const;
  // Sets the inode of the shmem object behind the shared anonymous VMA at addr
  // (the kernel picks it; the caller learns it after the call). 0 or -ENOENT.
  [[nodiscard]] int SetShmemInode(uint64_t addr, uint64_t inode, uint32_t dev_major,
                                  uint32_t dev_minor);

  // mm->start_code and mm->end_code (/proc/<pid>/stat fields 26 and 27;
  // ProcStat has them): they split exec_vm into VmExe and VmLib.
  void SetCodeRange(uint64_t start_code, uint64_t end_code) {
    start_code_ = start_code;
    end_code_ = end_code;
  }

  // --- page tables: seeding and learning (the caller reads pagemap) ---
  //
  // The model allocates and frees tables itself as the calls and Touch()
  // dictate. What it cannot see (the kernel's state at seeding, pages faulted
  // by code the caller does not report, fault-around, THP allocation
  // failures, khugepaged) it learns from /proc/self/pagemap or PAGEMAP_SCAN:
  //
  //   1. ClearPageTables() (a fresh model has none).
  //   2. LearnPresent() for every run of pages pagemap shows present or
  //      swapped (bit 63 or 62 without the guard bit 58; PAGEMAP_SCAN
  //      PAGE_IS_PRESENT|PAGE_IS_SWAPPED without PAGE_IS_GUARD), huge=true
  //      for runs PAGEMAP_SCAN reports with PAGE_IS_HUGE; LearnGuards() for
  //      guard runs.
  //   3. CalibratePageTables(VmPTE from /proc/self/status).
  //
  // Later, LearnPresent()/LearnNotPresent() keep presence in step (learning
  // never frees a table: an empty table may exist). Recalibrating (the three
  // steps again) is how a caller resynchronises after a VmPTE mismatch.
  // PAGEMAP_SCAN skips VM_PFNMAP VMAs ([vvar]) and pagemap shows them as
  // holes, so their tables end up unlocated. After ForkChild() in a child
  // whose parent had unlocated tables, CalibratePageTables() alone (no
  // clearing) re-derives the child's baseline.

  // Frees every page table of the model (VMAs stay). Clear() keeps tables.
  void ClearPageTables() { pt_.Clear(); }
  // [lo, hi) (page aligned) holds mapped entries; with huge, [lo, hi) is
  // PMD-mapped and each 2 MiB-aligned slot inside it becomes a huge PMD
  // (with a deposited table in anonymous VMAs, without in file/shmem ones).
  // Missing tables are allocated as a fault would. Returns 0, -EINVAL
  // (unaligned or empty), -ENOMEM (arena exhausted: page_tables().broken()).
  [[nodiscard]] int LearnPresent(uint64_t lo, uint64_t hi, bool huge);
  // No entry of [lo, hi) is mapped (page aligned). Tables stay. 0 or -EINVAL.
  [[nodiscard]] int LearnNotPresent(uint64_t lo, uint64_t hi);
  // [lo, hi) holds guard markers. 0, -EINVAL or -ENOMEM.
  [[nodiscard]] int LearnGuards(uint64_t lo, uint64_t hi);
  // Rule for tables the kernel has that no mapped page explains (empty
  // tables left by an earlier unmap beside a surviving neighbour, by a
  // partial MADV_DONTNEED, by a fork copy...): they cannot be located, so
  // they are kept as a count, "unlocated", which VmPTE includes and which
  // stays constant until the next calibration. Sets
  //   unlocated = kernel_vmpte_kb / 4 - (tables the learnt pages need)
  // and returns it; returns a negative number (minus the excess, unlocated
  // left 0) when the model holds more tables than the kernel reports.
  int64_t CalibratePageTables(uint64_t kernel_vmpte_kb);

  // --- the syscalls (each mirrors the 6.x function named at its definition) ---

  Outcome Map(const MapArgs& args);
  Outcome Unmap(uint64_t addr, uint64_t len);
  // mprotect when pkey == -1, pkey_mprotect otherwise.
  Outcome Protect(uint64_t addr, uint64_t len, int prot, int pkey = -1);
  Outcome Remap(uint64_t old_addr, uint64_t old_len, uint64_t new_len, int flags,
                uint64_t new_addr);
  // Returns (in ret) the new brk, or the old one when the kernel refuses.
  Outcome Brk(uint64_t new_brk);
  Outcome Advise(uint64_t addr, uint64_t len, int advice);
  // mlock (flags 0) and mlock2.
  Outcome Lock(uint64_t addr, uint64_t len, int flags = 0);
  Outcome Unlock(uint64_t addr, uint64_t len);
  Outcome LockAll(int flags);
  Outcome UnlockAll();
  Outcome Seal(uint64_t addr, uint64_t len, uint64_t flags = 0);
  // A page fault at addr (read or write) that the caller knows succeeded or
  // wants predicted: gives the VMA its anon_vma where the kernel would, grows
  // a VM_GROWSDOWN VMA below its start, maps the page (page tables). ret 0,
  // -EFAULT (SIGSEGV: no VMA, no access, a guard marker) or -EIO (SIGBUS: a
  // file page past the file's known size).
  Outcome Touch(uint64_t addr, bool write);
  // Turns this model into the fork child's view: VM_DONTCOPY VMAs dropped,
  // every VMA with an anon_vma becomes a fork child with a fresh anon_vma,
  // VM_LOCKED and VM_LOCKONFAULT cleared, def_flags cleared (mlockall(FUTURE)
  // is not inherited). The child's page tables are copies of the parent's
  // under the VMAs that need copying (vma_needs_copy(): an anon_vma,
  // PFNMAP/MIXEDMAP, uffd-wp, guard markers), empty tables included; the
  // unlocated baseline is not inherited (the caller recalibrates the child).
  void ForkChild();

  // --- queries ---

  const VmaTree& tree() const { return tree_; }
  Vma* FindVma(uint64_t addr) const { return tree_.FindVma(addr); }
  uint64_t map_count() const { return tree_.size(); }
  uint64_t brk() const { return brk_; }
  uint64_t start_brk() const { return start_brk_; }
  uint64_t start_stack() const { return start_stack_; }
  uint64_t def_flags() const { return def_flags_; }
  bool has_gate_vma() const { return has_gate_vma_; }
  const MmParams& params() const { return params_; }
  const KernelProfile& profile() const { return *profile_; }
  // True when the last call could not be modelled (arena exhausted): the
  // model no longer mirrors the kernel and must be reseeded.
  bool broken() const { return broken_; }

  // --- page tables and counters ---

  const PageTables& page_tables() const { return pt_; }
  // The walk for addr: table indices, which tables exist, whether the page
  // is mapped (or a guard marker), and the VMA's vm_page_prot (VmaPageProt)
  // when addr lies in a VMA.
  PageWalk WalkPage(uint64_t addr) const;
  // The counters as the kernel would hold them now. Computed by iterating
  // the VMAs (O(map_count)): the kernel's incremental accounting calls
  // vm_stat_account()/locked_vm updates with the same classification for
  // every VMA that appears, disappears, grows or changes flags (mmap_region,
  // do_brk_flags, vms_complete_munmap_vmas, mprotect_fixup, mlock_fixup,
  // move_vma, expand_downwards, dup_mmap, special mappings), so the sums are
  // equal (the page-table oracle test checks it against /proc/self/status)
  // with one exception kept as a separate term: 6.18's MREMAP_DONTUNMAP of
  // an mlock()ed VMA leaves locked_vm higher than the VM_LOCKED VMAs
  // (locked_vm_drift(), added to locked_vm; a fork child starts at 0).
  MmCounters mm_counters() const;
  uint64_t locked_vm_drift() const { return locked_vm_drift_; }
  // The caller read VmLck and knows the drift (seeding from a running
  // process: VmLck/4 minus the VM_LOCKED pages).
  void set_locked_vm_drift(uint64_t pages) { locked_vm_drift_ = pages; }
  // task_mem()'s VmSize, VmLck, VmData, VmStk, VmExe, VmLib, VmPTE in kB.
  StatusCounters PredictStatus() const;
  uint64_t start_code() const { return start_code_; }
  uint64_t end_code() const { return end_code_; }

  // Mirrors get_unmapped_area() (mm/mmap.c, 6.18) for a new mapping: the
  // address the kernel would choose, or -ENOMEM/-EINVAL/-EPERM. No change.
  int64_t GetUnmappedArea(const File* file, const FileDesc* desc, uint64_t addr, uint64_t len,
                          uint64_t pgoff, int flags) const;

  // Every invariant of the tree and of the address space (no overlap,
  // alignment, counts, file refcounts, page tables). nullptr when all hold,
  // else the first violation. Mergeable neighbours are not an invariant: the
  // kernel leaves them apart until a call touches their boundary
  // (mm::WhyNotMergeable() says kNone for such a pair).
  const char* Validate() const;

  // The machinery behind the calls (core/mm/internal.h); not API.
  struct Impl;

 private:
  Arena* arena_;
  const KernelProfile* profile_;
  MmParams params_;
  VmaTree tree_;
  File* files_ = nullptr;
  uint64_t start_brk_ = 0;
  uint64_t brk_ = 0;
  uint64_t start_stack_ = 0;
  uint64_t def_flags_ = 0;
  uint64_t next_anon_vma_ = 1;
  uint64_t next_shmem_id_ = uint64_t{1} << 62;
  bool has_gate_vma_ = false;
  bool broken_ = false;
  uint64_t start_code_ = 0;
  uint64_t end_code_ = 0;
  uint64_t locked_vm_drift_ = 0;  // pages (KernelProfile::dontunmap_locked_drift)
  PageTables pt_;
};

}  // namespace vmashadow

#endif  // VMASHADOW_CORE_MM_ADDRESS_SPACE_H_
