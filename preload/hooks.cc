// hooks.cc — the exported wrappers that interpose glibc's memory-mapping
// functions (mmap, mmap64, munmap, mprotect, pkey_mprotect, mremap, madvise,
// brk, sbrk, mlock, mlock2, munlock, mlockall, munlockall, mseal).
//
// Each wrapper behaves like glibc's (same return values, errno on failure,
// sbrk's bookkeeping through glibc's own __curbrk) but issues the syscall
// through RawSyscall6 inside an EventScope and applies the same call to the
// model. They see only calls made through the exported symbols: glibc's
// internal calls (malloc, pthread stacks, ld.so) bypass them (INTERCEPTION.md).
//
// <sys/mman.h> and <unistd.h> are deliberately not included: with
// _FILE_OFFSET_BITS=64 they rename mmap to mmap64, and we define both.
#include <sys/stat.h>
#include <sys/statfs.h>

#include <cerrno>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "core/address_space.h"
#include "core/linux_abi.h"
#include "preload/raw_syscall.h"
#include "preload/shadow.h"

// glibc's record of the current break (exported by libc.so.6); its malloc
// extends the heap from it, so our brk must keep it current as glibc's does.
extern "C" void* __curbrk;

namespace vmashadow::preload {
namespace {

namespace a = abi;

bool IsError(int64_t r) { return r < 0 && r >= -4095; }

void* PtrResult(int64_t r) {
  if (IsError(r)) {
    errno = static_cast<int>(-r);
    return reinterpret_cast<void*>(-1);  // MAP_FAILED
  }
  return reinterpret_cast<void*>(r);
}

int IntResult(int64_t r) {
  if (IsError(r)) {
    errno = static_cast<int>(-r);
    return -1;
  }
  return static_cast<int>(r);
}

// The file behind the fd of the mmap being modelled. Used under the model
// lock only, so one static instance suffices.
FileDesc g_desc;
char g_path[4096 + 16];

// Statfs magic numbers (include/uapi/linux/magic.h).
constexpr int64_t kExt4Magic = 0xEF53;
constexpr int64_t kXfsMagic = 0x58465342;
constexpr int64_t kBtrfsMagic = 0x9123683E;
constexpr int64_t kTmpfsMagic = 0x01021994;
constexpr int64_t kHugetlbfsMagic = 0x958458f6;
constexpr uint64_t kFsIocGetflags = 0x80086601;  // _IOR('f', 1, long)
constexpr int kFsAppendFl = 0x20;
constexpr int kStNoexec = 8;
constexpr int kFGetfl = 3;
constexpr int kOPath = 010000000;

// Fills *d from the fd: fstat, F_GETFL, statfs, the path /proc/self/fd
// shows. False when the fd is not usable (the model then predicts EBADF).
//
// Identity of the open file description (FileDesc::id): the kernel merges
// file VMAs only when they share one struct file, and nothing cheap names
// one without holding a reference (kcmp(KCMP_FILE) needs a second live fd to
// compare with; fdinfo has no identity field). We use (dev, inode, fd
// number, access mode): exact for the usual cases (one open, maps through
// one fd), wrong when a file is reopened under the same fd number (we would
// merge, the kernel not) or mapped through dup()ed fds (the kernel merges,
// we not). Bit 63 keeps these ids apart from the seeded ones.
bool DescribeFd(int fd, FileDesc* d) {
  struct stat st;
  if (fd < 0 || RawSyscall6(kSysFstat, U(fd), U(&st)) != 0) return false;
  const int64_t fl = RawSyscall6(kSysFcntl, U(fd), U(kFGetfl));
  if (fl < 0 || (fl & kOPath) != 0) return false;
  *d = FileDesc{};
  d->inode = st.st_ino;
  d->dev_major = static_cast<uint32_t>(((st.st_dev >> 8) & 0xfff) | ((st.st_dev >> 32) & ~0xfffu));
  d->dev_minor = static_cast<uint32_t>((st.st_dev & 0xff) | ((st.st_dev >> 12) & ~0xffu));
  const int acc = static_cast<int>(fl & 3);
  d->readable = acc == 0 || acc == 2;
  d->writable = acc == 1 || acc == 2;
  uint64_t h = 0xcbf29ce484222325;
  const uint64_t parts[4] = {st.st_dev, st.st_ino, static_cast<uint64_t>(fd),
                             static_cast<uint64_t>(acc)};
  for (uint64_t v : parts) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xff;
      h *= 0x100000001b3;
    }
  }
  d->id = h | (uint64_t{1} << 63);

  if (S_ISCHR(st.st_mode)) {
    d->kind = FileKind::kDevice;
  } else {
    struct statfs sf;
    if (RawSyscall6(kSysFstatfs, U(fd), U(&sf)) == 0) {
      const int64_t type = static_cast<int64_t>(sf.f_type);
      if (type == kExt4Magic || type == kXfsMagic || type == kBtrfsMagic) {
        d->kind = FileKind::kRegularThp;
      } else if (type == kTmpfsMagic) {
        d->kind = FileKind::kShmem;
      } else if (type == kHugetlbfsMagic) {
        d->kind = FileKind::kHugetlb;
      }
      d->noexec_mount = (sf.f_flags & kStNoexec) != 0;
    }
    int attr = 0;
    d->append =
        RawSyscall6(kSysIoctl, U(fd), kFsIocGetflags, U(&attr)) == 0 && (attr & kFsAppendFl) != 0;
  }

  // The path as maps prints it (d_path), " (deleted)" split off.
  char link[32] = "/proc/self/fd/";
  size_t n = strlen(link);
  char digits[12];
  int nd = 0;
  unsigned v = static_cast<unsigned>(fd);
  do {
    digits[nd++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (nd > 0) link[n++] = digits[--nd];
  link[n] = '\0';
  const int64_t len = RawSyscall6(kSysReadlink, U(link), U(g_path), sizeof(g_path) - 1);
  size_t plen = len > 0 ? static_cast<size_t>(len) : 0;
  g_path[plen] = '\0';
  constexpr char kDeleted[] = " (deleted)";
  constexpr size_t kDeletedLen = sizeof(kDeleted) - 1;
  if (plen >= kDeletedLen && memcmp(g_path + plen - kDeletedLen, kDeleted, kDeletedLen) == 0) {
    plen -= kDeletedLen;
    g_path[plen] = '\0';
    d->deleted = true;
  }
  d->path = g_path;
  return true;
}

void* DoMmap(void* addr, size_t len, int prot, int flags, int fd, int64_t off) {
  EventScope ev(Call::kMmap, U(addr), len, U(prot), U(flags), U(fd), U(off));
  const int64_t r = RawSyscall6(kSysMmap, U(addr), len, U(prot), U(flags), U(fd), U(off));
  if (ev.active()) {
    const bool anon = (flags & a::kMapAnonymous) != 0;
    MapArgs m;
    m.addr = U(addr);
    m.len = len;
    m.prot = prot;
    m.flags = flags;
    m.file = !anon && DescribeFd(fd, &g_desc) ? &g_desc : nullptr;
    m.offset = U(off);
    const bool fixed = (flags & (a::kMapFixed | a::kMapFixedNoreplace)) != 0;
    const bool random = (flags & a::kMap32Bit) != 0 && !fixed;
    if (random && !IsError(r)) m.kernel_addr = U(r);
    const Outcome o = ev.model().Map(m);
    const int type = flags & a::kMapType;
    if (!IsError(r) && anon && (type == a::kMapShared || type == a::kMapSharedValidate)) {
      ev.LearnShmemInode(U(r));
    }
    ev.Finish(r, o, /*placement_ok=*/!random);
  }
  return PtrResult(r);
}

int DoProtect(Call call, void* addr, size_t len, int prot, int pkey) {
  EventScope ev(call, U(addr), len, U(prot), U(static_cast<int64_t>(pkey)));
  const int64_t r = pkey == -1 ? RawSyscall6(kSysMprotect, U(addr), len, U(prot))
                               : RawSyscall6(kSysPkeyMprotect, U(addr), len, U(prot), U(pkey));
  if (ev.active()) ev.Finish(r, ev.model().Protect(U(addr), len, prot, pkey));
  return IntResult(r);
}

// glibc's __brk: the kernel returns the new break (the old one on failure).
int DoBrk(void* addr) {
  EventScope ev(Call::kBrk, U(addr));
  const int64_t r = RawSyscall6(kSysBrk, U(addr));
  __curbrk = reinterpret_cast<void*>(r);
  if (ev.active()) ev.Finish(r, ev.model().Brk(U(addr)));
  if (static_cast<uint64_t>(r) < U(addr)) {
    errno = ENOMEM;
    return -1;
  }
  return 0;
}

}  // namespace
}  // namespace vmashadow::preload

// ---------------------------------------------------------------------------
// The exports.

#define VMASHADOW_EXPORT extern "C" __attribute__((visibility("default")))

using vmashadow::preload::Call;
using vmashadow::preload::EventScope;
using vmashadow::preload::IntResult;
using vmashadow::preload::PtrResult;
using vmashadow::preload::RawSyscall6;
using vmashadow::preload::U;
namespace pl = vmashadow::preload;

VMASHADOW_EXPORT void* mmap(void* addr, size_t len, int prot, int flags, int fd, long off) {
  return pl::DoMmap(addr, len, prot, flags, fd, off);
}

VMASHADOW_EXPORT void* mmap64(void* addr, size_t len, int prot, int flags, int fd, long off) {
  return pl::DoMmap(addr, len, prot, flags, fd, off);
}

VMASHADOW_EXPORT int munmap(void* addr, size_t len) {
  EventScope ev(Call::kMunmap, U(addr), len);
  const int64_t r = RawSyscall6(pl::kSysMunmap, U(addr), len);
  if (ev.active()) ev.Finish(r, ev.model().Unmap(U(addr), len));
  return IntResult(r);
}

VMASHADOW_EXPORT int mprotect(void* addr, size_t len, int prot) {
  return pl::DoProtect(Call::kMprotect, addr, len, prot, -1);
}

// glibc: pkey -1 is exactly mprotect.
VMASHADOW_EXPORT int pkey_mprotect(void* addr, size_t len, int prot, int pkey) {
  return pl::DoProtect(Call::kPkeyMprotect, addr, len, prot, pkey);
}

// glibc reads new_address only with MREMAP_FIXED.
VMASHADOW_EXPORT void* mremap(void* old_addr, size_t old_len, size_t new_len, int flags, ...) {
  void* new_addr = nullptr;
  if ((flags & vmashadow::abi::kMremapFixed) != 0) {
    va_list ap;
    va_start(ap, flags);
    new_addr = va_arg(ap, void*);
    va_end(ap);
  }
  EventScope ev(Call::kMremap, U(old_addr), old_len, new_len, U(flags), U(new_addr));
  const int64_t r =
      RawSyscall6(pl::kSysMremap, U(old_addr), old_len, new_len, U(flags), U(new_addr));
  if (ev.active()) {
    ev.Finish(r, ev.model().Remap(U(old_addr), old_len, new_len, flags, U(new_addr)));
  }
  return PtrResult(r);
}

VMASHADOW_EXPORT int madvise(void* addr, size_t len, int advice) {
  EventScope ev(Call::kMadvise, U(addr), len, U(advice));
  const int64_t r = RawSyscall6(pl::kSysMadvise, U(addr), len, U(advice));
  if (ev.active()) ev.Finish(r, ev.model().Advise(U(addr), len, advice));
  return IntResult(r);
}

VMASHADOW_EXPORT int brk(void* addr) { return pl::DoBrk(addr); }

// glibc's __sbrk: relative to __curbrk (read from the kernel the first time),
// refusing increments that wrap.
VMASHADOW_EXPORT void* sbrk(intptr_t increment) {
  if (__curbrk == nullptr && pl::DoBrk(nullptr) < 0) return reinterpret_cast<void*>(-1);
  if (increment == 0) return __curbrk;
  char* old = static_cast<char*>(__curbrk);
  const uintptr_t o = reinterpret_cast<uintptr_t>(old);
  const bool wraps = increment > 0 ? o + static_cast<uintptr_t>(increment) < o
                                   : o < static_cast<uintptr_t>(-increment);
  if (wraps) {
    errno = ENOMEM;
    return reinterpret_cast<void*>(-1);
  }
  if (pl::DoBrk(old + increment) < 0) return reinterpret_cast<void*>(-1);
  return old;
}

VMASHADOW_EXPORT int mlock(const void* addr, size_t len) {
  EventScope ev(Call::kMlock, U(addr), len);
  const int64_t r = RawSyscall6(pl::kSysMlock, U(addr), len);
  if (ev.active()) ev.Finish(r, ev.model().Lock(U(addr), len, 0));
  return IntResult(r);
}

VMASHADOW_EXPORT int mlock2(const void* addr, size_t len, unsigned int flags) {
  EventScope ev(Call::kMlock2, U(addr), len, U(flags));
  const int64_t r = RawSyscall6(pl::kSysMlock2, U(addr), len, U(flags));
  if (ev.active()) ev.Finish(r, ev.model().Lock(U(addr), len, static_cast<int>(flags)));
  return IntResult(r);
}

VMASHADOW_EXPORT int munlock(const void* addr, size_t len) {
  EventScope ev(Call::kMunlock, U(addr), len);
  const int64_t r = RawSyscall6(pl::kSysMunlock, U(addr), len);
  if (ev.active()) ev.Finish(r, ev.model().Unlock(U(addr), len));
  return IntResult(r);
}

VMASHADOW_EXPORT int mlockall(int flags) {
  EventScope ev(Call::kMlockall, U(flags));
  const int64_t r = RawSyscall6(pl::kSysMlockall, U(flags));
  if (ev.active()) ev.Finish(r, ev.model().LockAll(flags));
  return IntResult(r);
}

VMASHADOW_EXPORT int munlockall(void) {
  EventScope ev(Call::kMunlockall, 0);
  const int64_t r = RawSyscall6(pl::kSysMunlockall);
  if (ev.active()) ev.Finish(r, ev.model().UnlockAll());
  return IntResult(r);
}

VMASHADOW_EXPORT int mseal(void* addr, size_t len, unsigned long flags) {
  EventScope ev(Call::kMseal, U(addr), len, U(flags));
  const int64_t r = RawSyscall6(pl::kSysMseal, U(addr), len, U(flags));
  if (ev.active()) ev.Finish(r, ev.model().Seal(U(addr), len, flags));
  return IntResult(r);
}
