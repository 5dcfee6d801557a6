// vma.h — one virtual memory area, as the kernel's vm_area_struct describes it.
//
// A Vma carries everything the kernel consults when it decides to merge, split,
// place or refuse: the range, pgoff, the full vm_flags word, the identity of the
// open file description behind it, its anon_vma state and its special kind.
// It also carries the intrusive hooks of VmaTree (red-black links, the largest
// free gap of its subtree) and of the address-ordered prev/next list.
//
// Depends on nothing but <cstdint>. Preload-safe: no allocation, no syscalls.
#ifndef VMASHADOW_CORE_VMA_H_
#define VMASHADOW_CORE_VMA_H_

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
  kRegularThp,   // ext4, xfs, btrfs...: thp_get_unmapped_area (spec §4.6)
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

// The anon_vma state of a VMA (spec §2.3).
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

}  // namespace vmashadow

#endif  // VMASHADOW_CORE_VMA_H_
