// linux_abi.h — the x86-64 Linux ABI constants the model speaks.
//
// The model is fed recorded calls as well as live ones, so it carries its own
// copy of the uapi values (include/uapi/asm-generic/mman*.h, x86 mman.h) rather
// than the host's <sys/mman.h>. errno values come from <cerrno> (macros only).
// Depends on nothing; preload-safe.
#ifndef VMASHADOW_CORE_ABI_LINUX_ABI_H_
#define VMASHADOW_CORE_ABI_LINUX_ABI_H_

#include <cerrno>
#include <cstdint>

namespace vmashadow::abi {

// prot
inline constexpr int kProtNone = 0x0;
inline constexpr int kProtRead = 0x1;
inline constexpr int kProtWrite = 0x2;
inline constexpr int kProtExec = 0x4;
inline constexpr int kProtSem = 0x8;
inline constexpr int kProtGrowsdown = 0x01000000;
inline constexpr int kProtGrowsup = 0x02000000;

// mmap flags
inline constexpr int kMapShared = 0x01;
inline constexpr int kMapPrivate = 0x02;
inline constexpr int kMapSharedValidate = 0x03;
inline constexpr int kMapDroppable = 0x08;
inline constexpr int kMapType = 0x0f;
inline constexpr int kMapFixed = 0x10;
inline constexpr int kMapAnonymous = 0x20;
inline constexpr int kMap32Bit = 0x40;
inline constexpr int kMapAbove4G = 0x80;
inline constexpr int kMapGrowsdown = 0x0100;
inline constexpr int kMapDenywrite = 0x0800;
inline constexpr int kMapExecutable = 0x1000;
inline constexpr int kMapLocked = 0x2000;
inline constexpr int kMapNoreserve = 0x4000;
inline constexpr int kMapPopulate = 0x8000;
inline constexpr int kMapNonblock = 0x10000;
inline constexpr int kMapStack = 0x20000;
inline constexpr int kMapHugetlb = 0x40000;
inline constexpr int kMapSync = 0x80000;
inline constexpr int kMapFixedNoreplace = 0x100000;
inline constexpr int kMapUninitialized = 0x4000000;
inline constexpr int kMapHugeShift = 26;
inline constexpr int kMapHugeMask = 0x3f;
// LEGACY_MAP_MASK (include/linux/mman.h): what MAP_SHARED keeps and
// MAP_SHARED_VALIDATE accepts. MAP_FIXED_NOREPLACE and MAP_SYNC are not in it.
inline constexpr int kMapHuge2Mb = 21 << kMapHugeShift;
inline constexpr int kMapHuge1Gb = 30 << kMapHugeShift;
inline constexpr int kLegacyMapMask =
    kMapShared | kMapPrivate | kMapFixed | kMapAnonymous | kMapDenywrite | kMapExecutable |
    kMapUninitialized | kMapGrowsdown | kMapLocked | kMapNoreserve | kMapPopulate | kMapNonblock |
    kMapStack | kMapHugetlb | kMap32Bit | kMapAbove4G | kMapHuge2Mb | kMapHuge1Gb;

// mremap flags
inline constexpr int kMremapMaymove = 1;
inline constexpr int kMremapFixed = 2;
inline constexpr int kMremapDontunmap = 4;

// madvise advices
inline constexpr int kMadvNormal = 0;
inline constexpr int kMadvRandom = 1;
inline constexpr int kMadvSequential = 2;
inline constexpr int kMadvWillneed = 3;
inline constexpr int kMadvDontneed = 4;
inline constexpr int kMadvFree = 8;
inline constexpr int kMadvRemove = 9;
inline constexpr int kMadvDontfork = 10;
inline constexpr int kMadvDofork = 11;
inline constexpr int kMadvMergeable = 12;
inline constexpr int kMadvUnmergeable = 13;
inline constexpr int kMadvHugepage = 14;
inline constexpr int kMadvNohugepage = 15;
inline constexpr int kMadvDontdump = 16;
inline constexpr int kMadvDodump = 17;
inline constexpr int kMadvWipeonfork = 18;
inline constexpr int kMadvKeeponfork = 19;
inline constexpr int kMadvCold = 20;
inline constexpr int kMadvPageout = 21;
inline constexpr int kMadvPopulateRead = 22;
inline constexpr int kMadvPopulateWrite = 23;
inline constexpr int kMadvDontneedLocked = 24;
inline constexpr int kMadvCollapse = 25;
inline constexpr int kMadvHwpoison = 100;
inline constexpr int kMadvSoftOffline = 101;
inline constexpr int kMadvGuardInstall = 102;
inline constexpr int kMadvGuardRemove = 103;

// mlock2 / mlockall
inline constexpr int kMlockOnfault = 0x01;
inline constexpr int kMclCurrent = 1;
inline constexpr int kMclFuture = 2;
inline constexpr int kMclOnfault = 4;

// A raw syscall's return value in [-kMaxErrno, -1] is -errno
// (include/linux/err.h: MAX_ERRNO).
inline constexpr int64_t kMaxErrno = 4095;
inline constexpr bool IsErrorReturn(int64_t r) { return r < 0 && r >= -kMaxErrno; }

// What the preload asks of an fd passed to mmap: fcntl(F_GETFL)'s access
// mode and O_PATH (include/uapi/asm-generic/fcntl.h), statfs's f_flags
// ST_NOEXEC and f_type magics (include/uapi/linux/magic.h), and
// FS_IOC_GETFLAGS's FS_APPEND_FL (include/uapi/linux/fs.h).
inline constexpr int kFGetfl = 3;
inline constexpr int kOAccmode = 03;
inline constexpr int kORdonly = 00;
inline constexpr int kOWronly = 01;
inline constexpr int kORdwr = 02;
inline constexpr int kOPath = 010000000;
inline constexpr uint64_t kStNoexec = 8;
inline constexpr int64_t kExt4SuperMagic = 0xEF53;
inline constexpr int64_t kXfsSuperMagic = 0x58465342;
inline constexpr int64_t kBtrfsSuperMagic = 0x9123683E;
inline constexpr int64_t kTmpfsMagic = 0x01021994;
inline constexpr int64_t kHugetlbfsMagic = 0x958458f6;
inline constexpr unsigned long kFsIocGetflags = 0x80086601UL;  // _IOR('f', 1, long)
inline constexpr int kFsAppendFl = 0x20;

// The device number of struct stat's st_dev (glibc's gnu_dev_major/minor).
inline constexpr uint32_t DevMajor(uint64_t dev) {
  return static_cast<uint32_t>(((dev >> 8) & 0xfff) | ((dev >> 32) & ~uint64_t{0xfff}));
}
inline constexpr uint32_t DevMinor(uint64_t dev) {
  return static_cast<uint32_t>((dev & 0xff) | ((dev >> 12) & ~uint64_t{0xff}));
}

// struct procmap_query (include/uapi/linux/fs.h, 6.11+; docs/procmap-query.md) and the
// PROCMAP_QUERY ioctl on a /proc/<pid>/maps fd: _IOWR('f', 17, 104 bytes).
struct ProcmapQuery {
  uint64_t size;
  uint64_t query_flags;
  uint64_t query_addr;
  uint64_t vma_start;  // out
  uint64_t vma_end;
  uint64_t vma_flags;
  uint64_t vma_page_size;
  uint64_t vma_offset;
  uint64_t inode;
  uint32_t dev_major;
  uint32_t dev_minor;
  uint32_t vma_name_size;  // in/out
  uint32_t build_id_size;
  uint64_t vma_name_addr;  // in
  uint64_t build_id_addr;
};
static_assert(sizeof(ProcmapQuery) == 104);
inline constexpr unsigned long kProcmapQueryIoctl = 0xc0686611UL;
// PROCMAP_QUERY_VMA_*: the permission filters of query_flags and the bits of
// the answer's vma_flags (SHARED is VM_MAYSHARE, the 's' of maps).
inline constexpr uint64_t kProcmapQueryVmaReadable = 0x01;
inline constexpr uint64_t kProcmapQueryVmaWritable = 0x02;
inline constexpr uint64_t kProcmapQueryVmaExecutable = 0x04;
inline constexpr uint64_t kProcmapQueryVmaShared = 0x08;
inline constexpr uint64_t kProcmapQueryCoveringOrNext = 0x10;
inline constexpr uint64_t kProcmapQueryFileBacked = 0x20;

// struct pm_scan_arg and the PAGEMAP_SCAN ioctl on /proc/<pid>/pagemap
// (include/uapi/linux/fs.h, 6.7+): _IOWR('f', 16, 96 bytes). Finds pages by
// category; with max_pages = 1 it stops at the first match.
struct PmScanArg {
  uint64_t size;
  uint64_t flags;
  uint64_t start;
  uint64_t end;
  uint64_t walk_end;  // out
  uint64_t vec;
  uint64_t vec_len;
  uint64_t max_pages;
  uint64_t category_inverted;
  uint64_t category_mask;
  uint64_t category_anyof_mask;
  uint64_t return_mask;
};
static_assert(sizeof(PmScanArg) == 96);
struct PageRegion {
  uint64_t start;
  uint64_t end;
  uint64_t categories;
};
inline constexpr unsigned long kPagemapScanIoctl = 0xc0606610UL;
inline constexpr uint64_t kPageIsFile = 1 << 2;
inline constexpr uint64_t kPageIsPresent = 1 << 3;
inline constexpr uint64_t kPageIsSwapped = 1 << 4;
inline constexpr uint64_t kPageIsPfnZero = 1 << 5;
inline constexpr uint64_t kPageIsHuge = 1 << 6;   // a PMD (or hugetlb) leaf
inline constexpr uint64_t kPageIsGuard = 1 << 8;  // a guard marker (6.15+; also "swapped")

}  // namespace vmashadow::abi

#endif  // VMASHADOW_CORE_ABI_LINUX_ABI_H_
