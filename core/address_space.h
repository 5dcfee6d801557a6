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
#include "core/vma.h"
#include "core/vma_tree.h"

namespace vmashadow {

inline constexpr uint64_t kUnlimited = ~uint64_t{0};

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

  // Drops every VMA and file; keeps params and profile.
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
  void set_params(const MmParams& params) { params_ = params; }
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
  // Sets the inode of the shmem object behind the shared anonymous VMA at addr
  // (the kernel picks it; the caller learns it after the call). 0 or -ENOENT.
  [[nodiscard]] int SetShmemInode(uint64_t addr, uint64_t inode, uint32_t dev_major,
                                  uint32_t dev_minor);

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
  // a VM_GROWSDOWN VMA below its start. ret 0, or -EFAULT (SIGSEGV).
  Outcome Touch(uint64_t addr, bool write);
  // Turns this model into the fork child's view: VM_DONTCOPY VMAs dropped,
  // every VMA with an anon_vma becomes a fork child with a fresh anon_vma,
  // VM_LOCKED and VM_LOCKONFAULT cleared, def_flags cleared (mlockall(FUTURE)
  // is not inherited).
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
};

}  // namespace vmashadow

#endif  // VMASHADOW_CORE_ADDRESS_SPACE_H_
