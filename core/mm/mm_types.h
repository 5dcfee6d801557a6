// mm_types.h — the model's plain data: one virtual memory area as the kernel's
// vm_area_struct describes it, the process-wide inputs (MmParams), the
// counters, what a caller knows of a file (FileDesc) and a call's Outcome.
//
// A Vma carries everything the kernel consults when it decides to merge, split,
// place or refuse: the range, pgoff, the full vm_flags word, the identity of the
// open file description behind it, its anon_vma state and its special kind.
// It also carries the intrusive hooks of VmaTree (red-black links, the largest
// free gap of its subtree) and of the address-ordered prev/next list.
//
// Depends on nothing but <cstdint>. Preload-safe: no allocation, no syscalls.
#ifndef VMASHADOW_CORE_MM_MM_TYPES_H_
#define VMASHADOW_CORE_MM_MM_TYPES_H_

#include <cstddef>
#include <cstdint>

namespace vmashadow {

inline constexpr uint64_t kPageShift = 12;
inline constexpr uint64_t kPageSize = uint64_t{1} << kPageShift;
inline constexpr uint64_t kPageMask = ~(kPageSize - 1);
inline constexpr uint64_t kPmdSize = uint64_t{2} << 20;

inline constexpr uint64_t PageAlign(uint64_t x) { return (x + kPageSize - 1) & kPageMask; }
inline constexpr uint64_t PageDown(uint64_t x) { return x & kPageMask; }
inline constexpr bool PageAligned(uint64_t x) { return (x & (kPageSize - 1)) == 0; }

// vm_flags bits, with the x86-64 values of include/linux/mm.h (6.12).
enum VmFlag : uint64_t {
  kVmRead = 0x1,
  kVmWrite = 0x2,
  kVmExec = 0x4,
  kVmShared = 0x8,
  kVmMayRead = 0x10,
  kVmMayWrite = 0x20,
  kVmMayExec = 0x40,
  kVmMayShare = 0x80,
  kVmGrowsdown = 0x100,
  kVmUffdMissing = 0x200,
  kVmPfnmap = 0x400,
  kVmUffdWp = 0x1000,
  kVmLocked = 0x2000,
  kVmIo = 0x4000,
  kVmSeqRead = 0x8000,
  kVmRandRead = 0x10000,
  kVmDontcopy = 0x20000,
  kVmDontexpand = 0x40000,
  kVmLockonfault = 0x80000,
  kVmAccount = 0x100000,
  kVmNoreserve = 0x200000,
  kVmHugetlb = 0x400000,
  kVmSync = 0x800000,
  kVmArch1 = 0x1000000,  // VM_PAT on x86
  kVmWipeonfork = 0x2000000,
  kVmDontdump = 0x4000000,
  kVmSoftdirty = 0,  // CONFIG_MEM_SOFT_DIRTY is off on the kernels we model
  kVmMixedmap = 0x10000000,
  kVmHugepage = 0x20000000,
  kVmNohugepage = 0x40000000,
  kVmMergeable = uint64_t{1} << 31,
  kVmPkeyBit0 = uint64_t{1} << 32,
  kVmPkeyBit1 = uint64_t{1} << 33,
  kVmPkeyBit2 = uint64_t{1} << 34,
  kVmPkeyBit3 = uint64_t{1} << 35,
  kVmShadowStack = uint64_t{1} << 37,
  kVmUffdMinor = uint64_t{1} << 38,
  kVmDroppable = uint64_t{1} << 40,
  // VM_MAYBE_GUARD (6.19 mainline, on the running 6.18-fc build): bit 11,
  // which smaps prints as "gu" between "pf" and "uw".
  kVmMaybeGuard = uint64_t{1} << 11,
  kVmSealed = uint64_t{1} << 63,
};

inline constexpr uint64_t kVmPkeyMask = kVmPkeyBit0 | kVmPkeyBit1 | kVmPkeyBit2 | kVmPkeyBit3;
inline constexpr uint64_t kVmPkeyShift = 32;
inline constexpr uint64_t kVmRwx = kVmRead | kVmWrite | kVmExec;
inline constexpr uint64_t kVmSpecial = kVmIo | kVmDontexpand | kVmPfnmap | kVmMixedmap;
inline constexpr uint64_t kVmLockedMask = kVmLocked | kVmLockonfault;
inline constexpr uint64_t kVmUffdFlags = kVmUffdMissing | kVmUffdWp | kVmUffdMinor;

// What vm_ops a VMA has, as far as merging, splitting and naming care.
enum class SpecialKind : uint8_t {
  kNone = 0,      // anonymous memory or a plain file
  kVdso,          // "[vdso]"
  kVvar,          // "[vvar]"
  kVvarVclock,    // "[vvar_vclock]" (6.13+)
  kVsyscall,      // "[vsyscall]": the gate VMA; never in the tree
  kUprobes,       // "[uprobes]"
  kOtherSpecial,  // a special mapping with another name (kept in File::path)
};

// How a file-backed VMA's file behaves for placement and merging.
enum class FileKind : uint8_t {
  kRegular = 0,  // a file system without a THP-aware get_unmapped_area
  kRegularThp,   // ext4, xfs, btrfs...: thp_get_unmapped_area (docs/placement.md#file-thp-aligner)
  kShmem,        // shmem/tmpfs/memfd/SysV shm/shared anonymous: shmem aligner
  kHugetlb,      // hugetlbfs
  kDevice,       // a character device or other driver mapping
};

// One open file description (or shmem object) that VMAs map. Owned by the
// AddressSpace's arena and reference counted by the VMAs that point at it.
struct File {
  uint64_t id = 0;  // identity of the open file description: equal ids may merge
  uint64_t inode = 0;
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;
  FileKind kind = FileKind::kRegular;
  bool deleted = false;                // the path is shown with " (deleted)"
  bool has_close = false;              // vm_ops->close exists: limits some merges
  bool fd_readable = true;             // the fd was opened for reading
  bool fd_writable = false;            // the fd was opened for writing
  bool fd_append = false;              // O_APPEND
  bool noexec_mount = false;           // the file lives on a noexec mount
  uint64_t size = 0;                   // bytes, when known (0: unknown): pages past EOF SIGBUS
  uint32_t refs = 0;                   // VMAs that point here
  mutable uint32_t validate_refs = 0;  // scratch for AddressSpace::Validate()
  File* next_file = nullptr;           // AddressSpace's list of live files
  uint16_t path_len = 0;
  char path[1];  // NUL-terminated, path_len bytes plus NUL (allocated longer)
};

// The anon_vma state of a VMA (docs/merge-split.md#anon_vma).
struct AnonState {
  uint64_t anon_vma : 63 = 0;   // 0: no anon_vma; otherwise its identity
  uint64_t fork_child : 1 = 0;  // its chain has a parent's entries (survives forever)
  bool operator==(const AnonState&) const = default;
};
static_assert(sizeof(AnonState) == 8);

// One VMA. start/end are page aligned, end exclusive.
struct Vma {
  // The first 64 bytes hold what a tree walk reads (FindVma, the gap
  // searches): the child links, the range, the subtree gap, and the list
  // links. Keep them together: at 65k VMAs every node visit is a cache miss.
  Vma* rb_left_ = nullptr;  // VmaTree hooks: owned by VmaTree, do not touch
  Vma* rb_right_ = nullptr;
  uint64_t start = 0;
  uint64_t end = 0;
  uint64_t rb_subtree_gap_ = 0;  // largest Gap() in this subtree
  Vma* rb_parent_ = nullptr;
  Vma* prev = nullptr;  // address-ordered list (kept by VmaTree)
  Vma* next = nullptr;

  uint64_t pgoff = 0;
  uint64_t flags = 0;
  File* file = nullptr;  // nullptr for private anonymous memory
  AnonState anon;
  class VmaTree* rb_owner_ = nullptr;  // lets the NodeTraits log rebalanced nodes
  int rb_color_ = 0;
  uint32_t policy_id = 0;  // mempolicy identity (0: default)
  uint32_t uffd_id = 0;    // userfaultfd context (0: none)
  SpecialKind special = SpecialKind::kNone;

  uint64_t pages() const { return (end - start) >> kPageShift; }
  uint64_t size() const { return end - start; }
  bool is_anonymous() const { return file == nullptr && special == SpecialKind::kNone; }
};
// One Vma fits the arena's 128-byte size class.
static_assert(sizeof(Vma) <= 128);

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
  uint64_t mmap_base = 0;  // inferred from the initial maps (docs/placement.md#inferring-mmap_base)
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
  // Page tables (docs/page-tables.md).
  int paging_levels = 4;            // 5 with LA57 (then task_size is 0xfffffffffff000)
  bool nx = true;                   // the CPU has NX (__supported_pte_mask)
  ThpMode thp = ThpMode::kMadvise;  // anonymous PMD-sized THP faults
  bool thp_use_zero_page = true;    // transparent_hugepage/use_zero_page
  bool thp_disabled = false;        // prctl(PR_SET_THP_DISABLE): MMF_DISABLE_THP
  // prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN): MMF_HAS_MDWE; with
  // PR_MDWE_NO_INHERIT, MMF_HAS_MDWE_NO_INHERIT (a fork child starts without).
  bool mdwe = false;
  bool mdwe_no_inherit = false;
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

}  // namespace vmashadow

#endif  // VMASHADOW_CORE_MM_MM_TYPES_H_
