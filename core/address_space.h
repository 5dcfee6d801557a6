// address_space.h — a replica of one process's mm: its VMAs and the rules the
// kernel applies to them.
//
// Each memory-mapping syscall has one function here that mirrors what the
// running kernel would do with the same arguments: it predicts the return value
// (an address, 0, the new brk, or -errno, checked in the kernel's order) and
// applies the change to the model, merging and splitting exactly as 6.x does
// (spec §2–§5). Callers feed it the real calls (the preload), a recorded trace
// (replay) or scripted calls (tests), and compare the result with the kernel.
//
// The model is pure: no syscalls, no files, no exceptions, no allocation except
// from the Arena handed to the constructor, nothing from the shared libstdc++.
// Not thread-safe: callers serialise (the preload's model lock).
#ifndef VMASHADOW_CORE_ADDRESS_SPACE_H_
#define VMASHADOW_CORE_ADDRESS_SPACE_H_

#include <cstddef>
#include <cstdint>

#include "core/arena.h"
#include "core/kernel_profile.h"
#include "core/linux_abi.h"
#include "core/page_tables.h"
#include "core/vma.h"
#include "core/vma_tree.h"

namespace vmashadow {

inline constexpr uint64_t kUnlimited = ~uint64_t{0};

// When an anonymous fault may map a PMD-sized THP: the effective setting of
// /sys/kernel/mm/transparent_hugepage/enabled combined with
// hugepages-2048kB/enabled ("inherit" takes the global one).
enum class ThpMode : uint8_t {
  kNever = 0,
  kMadvise,  // only VMAs with VM_HUGEPAGE (MADV_HUGEPAGE)
  kAlways,   // every VMA without VM_NOHUGEPAGE
};

// Process-wide inputs the kernel consults. The caller reads them at start-up
// (sysctls, rlimits, capabilities, the initial maps); nothing here is guessed.
struct MmParams {
  uint64_t task_size = 0x7ffffffff000;  // TASK_SIZE (4-level paging)
  uint64_t mmap_min_addr = 65536;       // effective: max(sysctl, LSM's)
  uint64_t dac_mmap_min_addr = 4096;    // the sysctl (EPERM below it w/o CAP_SYS_RAWIO)
  uint64_t max_map_count = 65530;       // vm.max_map_count
  uint64_t stack_guard_gap = 256 * kPageSize;
  uint64_t mmap_base = 0;                      // inferred from the initial maps (spec §4.2)
  uint64_t mmap_legacy_base = 0x2aaaaaaab000;  // bottom-up fallback start (without rnd)
  bool topdown = true;                         // mmap layout
  bool cap_sys_rawio = true;
  bool cap_ipc_lock = true;
  uint64_t rlimit_memlock = kUnlimited;  // bytes
  uint64_t rlimit_data = kUnlimited;     // bytes
  uint64_t rlimit_as = kUnlimited;       // bytes
  uint64_t rlimit_stack = 8 << 20;       // bytes (stack growth limit)
  int max_pkey = 0;         // pkeys [0, max_pkey) count as allocated: 0 without PKU, 1 with
  uint64_t start_data = 0;  // for the brk RLIMIT_DATA rule
  uint64_t end_data = 0;
  int overcommit_memory = 0;
  // Page tables (spec §7).
  int paging_levels = 4;            // 5 with LA57 (then task_size is 0xfffffffffff000)
  bool nx = true;                   // the CPU has NX (__supported_pte_mask)
  ThpMode thp = ThpMode::kMadvise;  // anonymous PMD-sized THP faults
  bool thp_use_zero_page = true;    // transparent_hugepage/use_zero_page
  bool thp_disabled = false;        // prctl(PR_SET_THP_DISABLE): MMF_DISABLE_THP
};

// The mm counters the kernel keeps incrementally (vm_stat_account() and
// friends), in pages, plus mm_pgtables_bytes().
struct MmCounters {
  uint64_t total_vm = 0;   // every VMA
  uint64_t locked_vm = 0;  // VM_LOCKED VMAs
  uint64_t data_vm = 0;    // private writable, not stack (is_data_mapping)
  uint64_t exec_vm = 0;    // executable, not writable, not stack (is_exec_mapping)
  uint64_t stack_vm = 0;   // VM_GROWSDOWN or shadow stack (is_stack_mapping)
  uint64_t pgtables_bytes = 0;
};

// What /proc/<pid>/status shows for them (task_mem(), fs/proc/task_mmu.c),
// in kB: the numbers on the VmSize, VmLck, VmData, VmStk, VmExe, VmLib and
// VmPTE lines.
struct StatusCounters {
  uint64_t vm_size_kb = 0;
  uint64_t vm_lck_kb = 0;
  uint64_t vm_data_kb = 0;
  uint64_t vm_stk_kb = 0;
  uint64_t vm_exe_kb = 0;
  uint64_t vm_lib_kb = 0;
  uint64_t vm_pte_kb = 0;
};

// What the caller knows of the file behind an fd passed to mmap.
struct FileDesc {
  uint64_t id = 0;  // open-file-description identity (equal ids may merge)
  uint64_t inode = 0;
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;
  FileKind kind = FileKind::kRegular;
  bool deleted = false;
  bool has_close = false;
  bool readable = true;
  bool writable = false;
  bool append = false;
  bool noexec_mount = false;
  uint64_t size = 0;      // the file's size when known (0: unknown): faults past EOF
  const char* path = "";  // NUL-terminated (copied into the arena)
};

// The prediction for one call.
struct Outcome {
  int64_t ret = 0;                   // address / 0 / new brk, or -errno
  uint64_t changed_start = 0;        // the range whose VMAs may have changed
  uint64_t changed_end = 0;          // (empty when nothing changed)
  bool placement_predicted = false;  // ret is a predicted (non-fixed) placement
  bool ok() const { return ret >= 0; }
  int error() const { return ret < 0 ? static_cast<int>(-ret) : 0; }
};

// Arguments of mmap. kernel_addr is only used where the kernel's choice is
// random (MAP_32BIT): pass the address the kernel returned, or 0.
struct MapArgs {
  uint64_t addr = 0;
  uint64_t len = 0;
  int prot = 0;
  int flags = 0;
  const FileDesc* file = nullptr;  // nullptr: bad fd (EBADF) unless MAP_ANONYMOUS
  uint64_t offset = 0;
  uint64_t kernel_addr = 0;
};

// One VMA to seed the model with (from /proc/self/maps + smaps VmFlags).
struct VmaSeed {
  uint64_t start = 0;
  uint64_t end = 0;
  uint64_t pgoff = 0;
  uint64_t flags = 0;
  const FileDesc* file = nullptr;  // nullptr: anonymous or special
  AnonState anon;
  SpecialKind special = SpecialKind::kNone;
  const char* special_name = nullptr;  // for SpecialKind::kOtherSpecial
};

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

  // --- the syscalls (each mirrors the 6.x function named in address_space.cc) ---

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
  // alignment, counts, no two neighbours our own merge rule would merge,
  // file refcounts). nullptr when all hold, else the first violation.
  const char* Validate() const;

  // The machinery behind the calls (core/address_space_internal.h); not API.
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

#endif  // VMASHADOW_CORE_ADDRESS_SPACE_H_
