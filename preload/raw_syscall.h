// raw_syscall.h — the preload's only way into the kernel.
//
// Every syscall libvmashadow.so makes goes through RawSyscall6, one inline
// `syscall` instruction: never a glibc wrapper (those may be the very symbols
// we interpose, may set errno, or may be cancellation points). Results are the
// kernel's: a value, or -errno in [-4095, -1]. The small helpers below name
// the calls the preload uses. Depends on nothing but standard headers.
#ifndef VMASHADOW_PRELOAD_RAW_SYSCALL_H_
#define VMASHADOW_PRELOAD_RAW_SYSCALL_H_

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace vmashadow::preload {

// x86-64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl).
enum SysNr : long {
  kSysRead = 0,
  kSysWrite = 1,
  kSysClose = 3,
  kSysFstat = 5,
  kSysMmap = 9,
  kSysMprotect = 10,
  kSysMunmap = 11,
  kSysBrk = 12,
  kSysRtSigaction = 13,
  kSysRtSigprocmask = 14,
  kSysRtSigreturn = 15,
  kSysIoctl = 16,
  kSysSchedYield = 24,
  kSysNanosleep = 35,
  kSysMremap = 25,
  kSysMadvise = 28,
  kSysShmat = 30,
  kSysGetpid = 39,
  kSysClone = 56,
  kSysFork = 57,
  kSysVfork = 58,
  kSysExecve = 59,
  kSysExit = 60,
  kSysUname = 63,
  kSysShmdt = 67,
  kSysFcntl = 72,
  kSysRename = 82,
  kSysUnlink = 87,
  kSysReadlink = 89,
  kSysPtrace = 101,
  kSysCapset = 126,
  kSysSetrlimit = 160,
  kSysGetppid = 110,
  kSysRtSigpending = 127,
  kSysRtSigsuspend = 130,
  kSysSigaltstack = 131,
  kSysPersonality = 135,
  kSysStatfs = 137,
  kSysFstatfs = 138,
  kSysMlock = 149,
  kSysMunlock = 150,
  kSysMlockall = 151,
  kSysMunlockall = 152,
  kSysPrctl = 157,
  kSysGettid = 186,
  kSysRemapFilePages = 216,
  kSysExitGroup = 231,
  kSysTgkill = 234,
  kSysMbind = 237,
  kSysOpenat = 257,
  kSysUnlinkat = 263,
  kSysRenameat = 264,
  kSysNewfstatat = 262,
  kSysPpoll = 271,
  kSysEpollPwait = 281,
  kSysRtTgsigqueueinfo = 297,
  kSysPrlimit64 = 302,
  kSysProcessVmReadv = 310,
  kSysProcessVmWritev = 311,
  kSysSeccomp = 317,
  kSysRenameat2 = 316,
  kSysExecveat = 322,
  kSysMlock2 = 325,
  kSysPkeyMprotect = 329,
  kSysClone3 = 435,
  kSysProcessMadvise = 440,
  kSysEpollPwait2 = 441,
  kSysMapShadowStack = 453,
  kSysMseal = 462,
};

inline int64_t RawSyscall6(long nr, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0,
                           uint64_t a4 = 0, uint64_t a5 = 0, uint64_t a6 = 0) {
  register uint64_t r10 __asm__("r10") = a4;
  register uint64_t r8 __asm__("r8") = a5;
  register uint64_t r9 __asm__("r9") = a6;
  int64_t ret;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}

template <typename T>
inline uint64_t U(T v) {
  if constexpr (std::is_pointer_v<T>) {
    return reinterpret_cast<uint64_t>(v);
  } else {
    return static_cast<uint64_t>(v);
  }
}

inline constexpr int kAtFdcwd = -100;
inline constexpr int kORdonly = 0;
inline constexpr int kOCloexec = 02000000;

inline int RawOpen(const char* path, int flags) {
  return static_cast<int>(
      RawSyscall6(kSysOpenat, U(static_cast<int64_t>(kAtFdcwd)), U(path), U(flags | kOCloexec), 0));
}
inline int64_t RawRead(int fd, void* buf, size_t n) {
  return RawSyscall6(kSysRead, U(fd), U(buf), n);
}
inline int64_t RawWrite(int fd, const void* buf, size_t n) {
  return RawSyscall6(kSysWrite, U(fd), U(buf), n);
}
inline void RawClose(int fd) { RawSyscall6(kSysClose, U(fd)); }

// struct iovec as process_vm_readv/writev take it.
struct RawIovec {
  uint64_t base;
  uint64_t len;
};

// Copies between our memory and [remote, remote + n) of our own process
// with process_vm_readv/writev, which fail (-EFAULT, or a short count at
// the first bad page) instead of faulting. Returns the raw result.
inline int64_t RawVmCopy(bool write_remote, void* local, uint64_t remote, size_t n) {
  const RawIovec l{U(local), n};
  const RawIovec r{remote, n};
  return RawSyscall6(write_remote ? kSysProcessVmWritev : kSysProcessVmReadv,
                     U(RawSyscall6(kSysGetpid)), U(&l), 1, U(&r), 1, 0);
}

// --- Signals, as the raw rt_sigaction/rt_sigprocmask ABI has them. ---

inline constexpr int kSigsys = 31;
inline constexpr uint64_t kSigsysBit = uint64_t{1} << (kSigsys - 1);
inline constexpr uint64_t kSigDfl = 0;
inline constexpr uint64_t kSigIgn = 1;
inline constexpr uint64_t kSaSiginfo = 4;
inline constexpr uint64_t kSaRestorer = 0x04000000;
inline constexpr uint64_t kSaOnstack = 0x08000000;
inline constexpr uint64_t kSaNodefer = 0x40000000;
inline constexpr uint64_t kSaResethand = 0x80000000;

// struct k_sigaction as the x86-64 kernel reads it (sigsetsize 8).
struct KernelSigaction {
  uint64_t handler;
  uint64_t flags;
  uint64_t restorer;
  uint64_t mask;
};

// Blocks every signal but SIGSYS (a trapped syscall with SIGSYS blocked
// kills the process); returns the previous mask.
inline uint64_t BlockAllSignals() {
  uint64_t all = ~kSigsysBit;
  uint64_t old = 0;
  RawSyscall6(kSysRtSigprocmask, 2 /* SIG_SETMASK */, U(&all), U(&old), sizeof(uint64_t));
  return old;
}

inline void RestoreSignals(uint64_t mask) {
  RawSyscall6(kSysRtSigprocmask, 2 /* SIG_SETMASK */, U(&mask), 0, sizeof(uint64_t));
}

// Default action for sig, unblocked, then sent to this thread: the process
// ends (or stops, ignores) as if we had never handled it.
inline void ResetAndRaise(int sig) {
  KernelSigaction dfl{kSigDfl, 0, 0, 0};
  RawSyscall6(kSysRtSigaction, U(sig), U(&dfl), 0, 8);
  uint64_t unblock = uint64_t{1} << (sig - 1);
  RawSyscall6(kSysRtSigprocmask, 1 /* SIG_UNBLOCK */, U(&unblock), 0, 8);
  RawSyscall6(kSysTgkill, U(RawSyscall6(kSysGetpid)), U(RawSyscall6(kSysGettid)), U(sig));
}

}  // namespace vmashadow::preload

#endif  // VMASHADOW_PRELOAD_RAW_SYSCALL_H_
