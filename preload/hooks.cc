// hooks.cc — the exported wrappers that interpose glibc's memory-mapping
// functions (mmap, mmap64, munmap, mprotect, pkey_mprotect, mremap, madvise,
// brk, sbrk, mlock, mlock2, munlock, mlockall, munlockall, mseal).
//
// Each wrapper behaves like glibc's (same return values, errno on failure,
// sbrk's bookkeeping through glibc's own __curbrk) but issues the syscall
// through RawSyscall6 inside an EventScope and applies the same call to the
// model. They see only calls made through the exported symbols: glibc's
// internal calls (malloc, pthread stacks, ld.so) bypass them (docs/interception.md).
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

#include "core/abi/call.h"
#include "core/abi/linux_abi.h"
#include "core/mm/address_space.h"
#include "core/mm/apply.h"
#include "core/mm/madvise.h"
#include "core/mm/mmap.h"
#include "preload/raw_syscall.h"
#include "preload/shadow.h"
#include "preload/sud.h"
#include "preload/trace_writer.h"

// glibc's record of the current break (exported by libc.so.6); its malloc
// extends the heap from it, so our brk must keep it current as glibc's does.
extern "C" void* __curbrk;

namespace vmashadow::preload {
namespace {

namespace a = abi;

bool IsError(int64_t r) { return a::IsErrorReturn(r); }

// The file behind the fd of the mmap being modelled. Used under the model
// lock only, so one static instance suffices.
FileDesc g_desc;
char g_path[4096 + 16];

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
  const int64_t fl = RawSyscall6(kSysFcntl, U(fd), U(a::kFGetfl));
  if (fl < 0 || (fl & a::kOPath) != 0) return false;
  *d = FileDesc{};
  d->inode = st.st_ino;
  d->dev_major = a::DevMajor(st.st_dev);
  d->dev_minor = a::DevMinor(st.st_dev);
  const int acc = static_cast<int>(fl & a::kOAccmode);
  d->readable = acc == a::kORdonly || acc == a::kORdwr;
  d->writable = acc == a::kOWronly || acc == a::kORdwr;
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
      if (type == a::kExt4SuperMagic || type == a::kXfsSuperMagic || type == a::kBtrfsSuperMagic) {
        d->kind = FileKind::kRegularThp;
      } else if (type == a::kTmpfsMagic) {
        d->kind = FileKind::kShmem;
      } else if (type == a::kHugetlbfsMagic) {
        d->kind = FileKind::kHugetlb;
      }
      d->noexec_mount = (sf.f_flags & a::kStNoexec) != 0;
    }
    int attr = 0;
    d->append = RawSyscall6(kSysIoctl, U(fd), a::kFsIocGetflags, U(&attr)) == 0 &&
                (attr & a::kFsAppendFl) != 0;
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

// Saturating PageAlign(): the last page's start when v + 4095 wraps.
uint64_t PageUp(uint64_t v) { return v + (kPageSize - 1) < v ? kPageMask : PageAlign(v); }

// [addr, addr + len) rounded out to pages (saturating), for range checks.
void SetPagesRange(EventScope& ev, uint64_t addr, uint64_t len) {
  const uint64_t lo = PageDown(addr);
  const uint64_t hi = addr + len < addr ? kPageMask : PageUp(addr + len);
  ev.SetRange(lo, hi);
}

// The model's side of an event: the same call, through core's one path
// from raw arguments to the model.
Outcome Apply(EventScope& ev, Call call, const uint64_t (&args)[6], const FileDesc* file = nullptr,
              uint64_t kernel_addr = 0) {
  return mm::ApplyCall(ev.model(), call, args, file, kernel_addr);
}

// Each Sys* function issues one syscall through RawSyscall6 inside an
// EventScope, applies the same call to the model and returns the kernel's
// raw result (value or -errno). The exports and the dispatch handler share
// them.

int64_t SysMmap(uint64_t addr, uint64_t len, int prot, int flags, int fd, uint64_t off) {
  EventScope ev(Call::kMmap, addr, len, U(prot), U(flags), U(fd), off);
  if (mm::MmapReplacesMappings(flags)) ev.LearnPages(addr, addr + len);
  const int64_t r = RawSyscall6(kSysMmap, addr, len, U(prot), U(flags), U(fd), off);
  if (ev.active()) {
    const bool anon = (flags & a::kMapAnonymous) != 0;
    const uint64_t args[6] = {addr, len, U(prot), U(flags), U(fd), off};
    const FileDesc* file = !anon && DescribeFd(fd, &g_desc) ? &g_desc : nullptr;
    const bool random = mm::MmapPlacementIsRandom(flags);
    const uint64_t kernel_addr = random && !IsError(r) ? U(r) : 0;
    if (!IsError(r)) ev.LearnAnonAround(U(r), U(r) + PageUp(len), prot, anon);
    TraceMapArgs(mm::MapArgsOf(args, file, kernel_addr));
    const Outcome o = Apply(ev, Call::kMmap, args, file, kernel_addr);
    const int type = flags & a::kMapType;
    if (!IsError(r) && anon && (type == a::kMapShared || type == a::kMapSharedValidate)) {
      ev.LearnShmemInode(U(r));
    }
    SetPagesRange(ev, IsError(r) ? addr : U(r), len);
    ev.Finish(r, o, /*placement_ok=*/!random);
  }
  return r;
}

int64_t SysMunmap(uint64_t addr, uint64_t len) {
  EventScope ev(Call::kMunmap, addr, len);
  ev.LearnPages(addr, addr + len);
  const int64_t r = RawSyscall6(kSysMunmap, addr, len);
  if (ev.active()) {
    const Outcome o = Apply(ev, Call::kMunmap, {addr, len});
    SetPagesRange(ev, addr, len);
    ev.Finish(r, o);
  }
  return r;
}

int64_t SysProtect(Call call, uint64_t addr, uint64_t len, int prot, int pkey) {
  EventScope ev(call, addr, len, U(prot), U(static_cast<int64_t>(pkey)));
  ev.LearnAnon(addr, addr + len);
  const int64_t r = call == Call::kMprotect
                        ? RawSyscall6(kSysMprotect, addr, len, U(prot))
                        : RawSyscall6(kSysPkeyMprotect, addr, len, U(prot), U(pkey));
  if (ev.active()) {
    const Outcome o = Apply(ev, call, {addr, len, U(prot), U(static_cast<int64_t>(pkey))});
    // PROT_GROWSDOWN/UP extend the range to the VMA's end: check it whole.
    if ((prot & (a::kProtGrowsdown | a::kProtGrowsup)) == 0) SetPagesRange(ev, addr, len);
    ev.Finish(r, o);
  }
  return r;
}

int64_t SysMremap(uint64_t old_addr, uint64_t old_len, uint64_t new_len, int flags,
                  uint64_t new_addr) {
  EventScope ev(Call::kMremap, old_addr, old_len, new_len, U(flags), new_addr);
  ev.LearnAnon(old_addr, old_addr + (old_len > new_len ? old_len : new_len));
  ev.LearnPages(old_addr, old_addr + old_len);
  if ((flags & a::kMremapFixed) != 0) {
    ev.LearnAnon(new_addr, new_addr + new_len);
    ev.LearnPages(new_addr, new_addr + new_len);
  }
  const int64_t r = RawSyscall6(kSysMremap, old_addr, old_len, new_len, U(flags), new_addr);
  if (ev.active()) {
    const Outcome o = Apply(ev, Call::kMremap, {old_addr, old_len, new_len, U(flags), new_addr});
    // Two ranges (old and new): a range check covers one, so only an
    // in-place resize gets one; a move gets the full compare.
    if (!IsError(r) && U(r) == old_addr) {
      SetPagesRange(ev, old_addr, old_len > new_len ? old_len : new_len);
    }
    ev.Finish(r, o);
  }
  return r;
}

int64_t SysMadvise(uint64_t addr, uint64_t len, int advice) {
  EventScope ev(Call::kMadvise, addr, len, U(advice));
  ev.LearnAnon(addr, addr + len);
  if (mm::AdviceZapsPages(advice)) ev.LearnPages(addr, addr + len);
  const int64_t r = RawSyscall6(kSysMadvise, addr, len, U(advice));
  if (ev.active()) {
    const Outcome o = Apply(ev, Call::kMadvise, {addr, len, U(advice)});
    SetPagesRange(ev, addr, len);
    ev.Finish(r, o);
  }
  return r;
}

// The kernel returns the new break (the old one on failure).
int64_t SysBrk(uint64_t addr) {
  EventScope ev(Call::kBrk, addr);
  const uint64_t before = ev.active() ? ev.model().brk() : 0;
  if (addr != 0 && addr < before) ev.LearnPages(addr, before);  // shrinking
  const int64_t r = RawSyscall6(kSysBrk, addr);
  if (ev.active()) {
    const Outcome o = Apply(ev, Call::kBrk, {addr});
    const uint64_t lo = before < U(r) ? before : U(r);
    const uint64_t hi = before < U(r) ? U(r) : before;
    SetPagesRange(ev, lo, hi - lo);
    ev.Finish(r, o);
  }
  return r;
}

int64_t SysLock(Call call, uint64_t addr, uint64_t len, int flags) {
  EventScope ev(call, addr, len, U(flags));
  ev.LearnAnon(addr, addr + len);
  int64_t r;
  if (call == Call::kMunlock) {
    r = RawSyscall6(kSysMunlock, addr, len);
  } else if (call == Call::kMlock) {
    r = RawSyscall6(kSysMlock, addr, len);
  } else {
    r = RawSyscall6(kSysMlock2, addr, len, U(flags));
  }
  if (ev.active()) {
    const Outcome o = Apply(ev, call, {addr, len, U(flags)});
    SetPagesRange(ev, addr, len);
    ev.Finish(r, o);
  }
  return r;
}

int64_t SysLockAll(int flags) {
  EventScope ev(Call::kMlockall, U(flags));
  const int64_t r = RawSyscall6(kSysMlockall, U(flags));
  if (ev.active()) ev.Finish(r, Apply(ev, Call::kMlockall, {U(flags)}));
  return r;
}

int64_t SysUnlockAll() {
  EventScope ev(Call::kMunlockall, 0);
  const int64_t r = RawSyscall6(kSysMunlockall);
  if (ev.active()) ev.Finish(r, Apply(ev, Call::kMunlockall, {}));
  return r;
}

int64_t SysSeal(uint64_t addr, uint64_t len, uint64_t flags) {
  EventScope ev(Call::kMseal, addr, len, flags);
  ev.LearnAnon(addr, addr + len);
  const int64_t r = RawSyscall6(kSysMseal, addr, len, flags);
  if (ev.active()) {
    const Outcome o = Apply(ev, Call::kMseal, {addr, len, flags});
    SetPagesRange(ev, addr, len);
    ev.Finish(r, o);
  }
  return r;
}

// Calls the model does not replay: counted, then the model is reseeded.
int64_t SysUnmodelled(Call call, long nr, const uint64_t* args) {
  EventScope ev(call, args[0], args[1], args[2], args[3], args[4], args[5]);
  const int64_t r = RawSyscall6(nr, args[0], args[1], args[2], args[3], args[4], args[5]);
  if (ev.active()) ev.FinishUnmodelled(r);
  return r;
}

}  // namespace

int64_t ModelledSyscall(long nr, const uint64_t* x, bool* handled) {
  *handled = true;
  switch (nr) {
    case kSysMmap:
      return SysMmap(x[0], x[1], static_cast<int>(x[2]), static_cast<int>(x[3]),
                     static_cast<int>(x[4]), x[5]);
    case kSysMunmap:
      return SysMunmap(x[0], x[1]);
    case kSysMprotect:
      return SysProtect(Call::kMprotect, x[0], x[1], static_cast<int>(x[2]), -1);
    case kSysPkeyMprotect:
      return SysProtect(Call::kPkeyMprotect, x[0], x[1], static_cast<int>(x[2]),
                        static_cast<int>(x[3]));
    case kSysMremap:
      return SysMremap(x[0], x[1], x[2], static_cast<int>(x[3]), x[4]);
    case kSysMadvise:
      return SysMadvise(x[0], x[1], static_cast<int>(x[2]));
    case kSysBrk:
      return SysBrk(x[0]);
    case kSysMlock:
      return SysLock(Call::kMlock, x[0], x[1], 0);
    case kSysMlock2:
      return SysLock(Call::kMlock2, x[0], x[1], static_cast<int>(x[2]));
    case kSysMunlock:
      return SysLock(Call::kMunlock, x[0], x[1], 0);
    case kSysMlockall:
      return SysLockAll(static_cast<int>(x[0]));
    case kSysMunlockall:
      return SysUnlockAll();
    case kSysMseal:
      return SysSeal(x[0], x[1], x[2]);
    case kSysProcessMadvise:
      // MADV_COLD/PAGEOUT/WILLNEED/COLLAPSE: no VMA changes, but counted.
      return SysUnmodelled(Call::kProcessMadvise, nr, x);
    case kSysShmat:
      return SysUnmodelled(Call::kShmat, nr, x);
    case kSysShmdt:
      return SysUnmodelled(Call::kShmdt, nr, x);
    case kSysRemapFilePages:
      return SysUnmodelled(Call::kRemapFilePages, nr, x);
    default:
      *handled = false;
      return -ENOSYS;
  }
}

bool IsModelledSyscall(long nr) {
  switch (nr) {
    case kSysMmap:
    case kSysMunmap:
    case kSysMprotect:
    case kSysPkeyMprotect:
    case kSysMremap:
    case kSysMadvise:
    case kSysBrk:
    case kSysMlock:
    case kSysMlock2:
    case kSysMunlock:
    case kSysMlockall:
    case kSysMunlockall:
    case kSysMseal:
    case kSysProcessMadvise:
    case kSysShmat:
    case kSysShmdt:
    case kSysRemapFilePages:
      return true;
    default:
      return false;
  }
}

namespace {

// glibc's __brk: sets __curbrk from the kernel's answer.
int DoBrk(void* addr) {
  const int64_t r = SysBrk(U(addr));
  __curbrk = reinterpret_cast<void*>(r);
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
using vmashadow::preload::U;
namespace pl = vmashadow::preload;

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

// The other exports are stubs that jump to vmashadow_wrapper_entry (sud.cc)
// with the syscall number in eax; it runs the event on our stack with
// signals blocked and calls back here for it.
#define VMASHADOW_STUB(name, nr)         \
  "  .globl " #name                      \
  "\n"                                   \
  "  .type " #name ", @function\n" #name \
  ":\n"                                  \
  "  movl $" #nr                         \
  ", %eax\n"                             \
  "  jmp vmashadow_wrapper_entry\n"      \
  "  .size " #name ", .-" #name "\n"

__asm__("  .text\n" VMASHADOW_STUB(mmap, 9) VMASHADOW_STUB(mmap64, 9) VMASHADOW_STUB(munmap, 11)
            VMASHADOW_STUB(mprotect, 10) VMASHADOW_STUB(pkey_mprotect, 329)
                VMASHADOW_STUB(mremap, 25) VMASHADOW_STUB(madvise, 28) VMASHADOW_STUB(mlock, 149)
                    VMASHADOW_STUB(mlock2, 325) VMASHADOW_STUB(munlock, 150)
                        VMASHADOW_STUB(mlockall, 151) VMASHADOW_STUB(munlockall, 152)
                            VMASHADOW_STUB(mseal, 462));

// The event behind an exported wrapper (vmashadow_wrapper_entry: on our
// stack, signals blocked), with glibc's conventions: pkey -1 is mprotect,
// mremap's new address only counts with MREMAP_FIXED, and -1 with errno on
// failure (MAP_FAILED for the calls that return an address).
extern "C" __attribute__((visibility("hidden"), used)) int64_t vmashadow_wrapper_dispatch(
    uint64_t nr, uint64_t* a) {
  if (nr == pl::kSysPkeyMprotect && static_cast<int>(a[3]) == -1) nr = pl::kSysMprotect;
  if (nr == pl::kSysMremap && (a[3] & vmashadow::abi::kMremapFixed) == 0) a[4] = 0;
  pl::SudSetSignalsBlocked(true);
  bool handled = false;
  int64_t r = pl::ModelledSyscall(static_cast<long>(nr), a, &handled);
  if (!handled) r = pl::RawSyscall6(static_cast<long>(nr), a[0], a[1], a[2], a[3], a[4], a[5]);
  pl::SudSetSignalsBlocked(false);
  if (r < 0 && r >= -4095) {
    errno = static_cast<int>(-r);
    return -1;
  }
  return r;
}
