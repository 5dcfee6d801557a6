// sud.cc — the Syscall User Dispatch backend (see sud.h for the design).
//
// Runs in a signal handler on the application's stack, possibly inside
// malloc or with the program's locks held: no allocation, no libc calls
// that may take locks, only raw syscalls (which are allowed because they
// are issued from our own text). User memory the program hands to
// rt_sigaction/rt_sigprocmask is copied with process_vm_readv/writev, so a
// bad pointer gives the program EFAULT instead of crashing us.
#include "preload/sud.h"

#include <link.h>
#include <signal.h>
#include <ucontext.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "preload/raw_syscall.h"
#include "preload/shadow.h"

// The restorer and the clone continuation, in assembly: both run with the
// application's registers and must issue their syscall from our text.
//
// vmashadow_restorer is byte for byte glibc's __restore_rt (mov $15, %rax;
// syscall), which libgcc's unwinder and gdb recognise as a signal frame.
//
// vmashadow_clone_stub is entered (by our sigreturn) with the clone
// arguments in place, rsp 136 bytes below the application's (past its red
// zone) holding the return address; the child's stack argument was lowered
// the same way with the same return address. Parent and child both
// `ret $128`, landing after the application's syscall instruction with its
// stack pointer. The child first arms dispatch for itself (a new task starts
// without it), preserving every register the application may rely on.
extern "C" void vmashadow_restorer();
extern "C" void vmashadow_clone_stub();
extern "C" __attribute__((visibility("hidden"), used)) void vmashadow_clone_child();

__asm__(R"(
  .text
  .p2align 4
  .globl vmashadow_restorer
  .hidden vmashadow_restorer
  .type vmashadow_restorer, @function
vmashadow_restorer:
  movq $15, %rax
  syscall
  hlt
  .size vmashadow_restorer, .-vmashadow_restorer

  .p2align 4
  .globl vmashadow_clone_stub
  .hidden vmashadow_clone_stub
  .type vmashadow_clone_stub, @function
vmashadow_clone_stub:
  syscall
  testq %rax, %rax
  jnz 1f
  pushq %rbp
  movq %rsp, %rbp
  andq $-16, %rsp
  pushq %rdi
  pushq %rsi
  pushq %rdx
  pushq %r10
  pushq %r8
  pushq %r9
  pushq %rcx
  pushq %r11
  call vmashadow_clone_child
  popq %r11
  popq %rcx
  popq %r9
  popq %r8
  popq %r10
  popq %rdx
  popq %rsi
  popq %rdi
  movq %rbp, %rsp
  popq %rbp
  xorl %eax, %eax
1:
  ret $128
  .size vmashadow_clone_stub, .-vmashadow_clone_stub
)");

namespace vmashadow::preload {
namespace {

constexpr uint64_t kUnblockable = (uint64_t{1} << (9 - 1)) | (uint64_t{1} << (19 - 1));
constexpr int kSysUserDispatch = 2;  // si_code
constexpr uint32_t kAuditArchI386 = 0x40000003;
constexpr long kX32Bit = 0x40000000;
constexpr long kPrSetSyscallUserDispatch = 59;
constexpr long kPrSysDispatchOn = 1;
constexpr long kPrSetVma = 0x53564d41;
constexpr char kSelectorBlock = 1;
constexpr uint64_t kCloneVm = 0x100;
constexpr uint64_t kCloneVfork = 0x4000;
constexpr uint64_t kSigchld = 17;
constexpr uint64_t kRedZoneSkip = 136;  // 128-byte red zone + the return address

uint64_t g_text_lo = 0;
uint64_t g_text_len = 0;
KernelSigaction g_app_sigsys;  // the program's view of SIGSYS
// The program's handlers. Every handler the program installs runs through
// DeferringHandler (the kernel's action), which calls the program's from
// this table, so a signal arriving while the thread is inside an event waits
// until the event has released the model lock (a handler that longjmps out
// of an event, as shells do on SIGINT, would otherwise leave it held).
struct AppHandler {
  uint64_t handler;
  uint64_t flags;  // as the program set them
};
AppHandler g_app_handlers[65];
uint64_t g_wrapped = 0;  // bit sig: the kernel's action for sig is DeferringHandler
bool g_defer_signals = false;
uint64_t g_deferred_total = 0;  // signals deferred so far (for the report)
uint64_t g_own_fatal = 0;       // signals whose handler is our report writer
uint64_t g_fatal_wanted = 0;    // signals we put our report writer on when SIG_DFL
KernelSigaction g_fatal_action;

__thread char t_selector __attribute__((tls_model("initial-exec"))) = 0;
__thread bool t_sigsys_blocked __attribute__((tls_model("initial-exec"))) = false;
// A program-sent SIGSYS that arrived while the program had it blocked: held
// here until it unblocks it (the kernel cannot hold it: it is never blocked).
__thread bool t_sigsys_pending __attribute__((tls_model("initial-exec"))) = false;
// Signals that arrived while this thread was inside an event: each was sent
// again to this thread (rt_tgsigqueueinfo, its siginfo kept) and blocked, so
// the kernel holds it pending, in order and without bound, until the event
// ends and SudFlushDeferredSignals unblocks these bits. Written by
// DeferringHandler only, read and cleared by the thread it interrupted.
__thread uint64_t t_deferred_bits __attribute__((tls_model("initial-exec"))) = 0;
// A SIGSYS (not a dispatch trap) that arrived inside an event: SIGSYS is
// never blocked, so it waits here instead.
__thread bool t_sigsys_deferred __attribute__((tls_model("initial-exec"))) = false;
__thread siginfo_t t_sigsys_info __attribute__((tls_model("initial-exec")));

bool IsError(int64_t r) { return r < 0 && r >= -4095; }

int64_t Getpid() { return RawSyscall6(kSysGetpid); }

// Copies between our memory and the program's, EFAULT instead of a fault.
int64_t SafeCopy(bool to_user, void* ours, uint64_t user, size_t n) {
  const int64_t r = RawVmCopy(to_user, ours, user, n);
  if (r == static_cast<int64_t>(n)) return 0;
  return IsError(r) ? (r == -EPERM || r == -ENOSYS ? -EFAULT : r) : -EFAULT;
}

// ---------------------------------------------------------------------------
// Signal stacks: slot i of g_alt_base belongs to the thread g_alt_owner[i]
// names ((tgid << 32) | tid, 0 when free). A thread never gives its slot
// back (it is running on it until its last trapped syscall, exit): a new
// thread takes a free slot, else one whose owner no longer exists.

char* g_alt_base = nullptr;
int g_alt_slots = 0;  // slots in g_alt_base (<= kAltSlots)
uint64_t g_alt_owner[kAltSlots];
__thread int t_alt_slot __attribute__((tls_model("initial-exec"))) = -1;

// The program's view of its own sigaltstack (stack_t as the kernel has it).
struct KernelStack {
  uint64_t sp;
  int32_t flags;
  int32_t pad;
  uint64_t size;
};
static_assert(sizeof(KernelStack) == 24);
constexpr int32_t kSsOnstack = 1;
constexpr int32_t kSsDisable = 2;
constexpr int32_t kSsFlagBits = int32_t(1u << 31);  // SS_AUTODISARM
constexpr uint64_t kMinSigstksz = 2048;
__thread KernelStack t_app_stack __attribute__((tls_model("initial-exec"))) = {0, kSsDisable, 0, 0};

uint64_t AltOwnerId(int64_t tgid, int64_t tid) {
  return (static_cast<uint64_t>(tgid) << 32) | static_cast<uint32_t>(tid);
}

int ClaimAltSlot(uint64_t me) {
  for (int pass = 0; pass < 2; ++pass) {
    for (int i = 0; i < g_alt_slots; ++i) {
      uint64_t cur = __atomic_load_n(&g_alt_owner[i], __ATOMIC_RELAXED);
      if (cur != 0) {
        if (pass == 0) continue;
        const int64_t alive = RawSyscall6(kSysTgkill, cur >> 32, cur & 0xffffffffu, 0);
        if (alive != -ESRCH) continue;
      }
      if (__atomic_compare_exchange_n(&g_alt_owner[i], &cur, me, false, __ATOMIC_ACQ_REL,
                                      __ATOMIC_RELAXED)) {
        return i;
      }
    }
  }
  return -1;
}

// Gives the calling thread its signal stack. A CLONE_VM child of another
// process (posix_spawn's) shares the slots with its parent and keeps what
// the kernel left it (a vfork child: the parent's stack, while the parent
// waits).
void SetupAltStack() {
  if (g_alt_base == nullptr) return;
  const int64_t tgid = Getpid();
  if (tgid != ShadowOwnerPid()) return;
  if (t_alt_slot < 0) {
    t_alt_slot = ClaimAltSlot(AltOwnerId(tgid, RawSyscall6(kSysGettid)));
    if (t_alt_slot < 0) {
      NoteOnce(6, "more live threads than signal stacks: the rest trap on their own stacks");
      return;
    }
  }
  const KernelStack ss{U(g_alt_base) + static_cast<uint64_t>(t_alt_slot) * kAltSlotSize, 0, 0,
                       kAltSlotSize};
  RawSyscall6(kSysSigaltstack, U(&ss), 0);
}

void ArmThread() {
  t_selector = kSelectorBlock;
  RawSyscall6(kSysPrctl, kPrSetSyscallUserDispatch, kPrSysDispatchOn, g_text_lo, g_text_len,
              U(&t_selector));
  SetupAltStack();
}

// sigaltstack, kept virtual: the kernel's is ours. Mirrors do_sigaltstack()
// (kernel/signal.c, 6.18) on the program's view: the old stack first (with
// SS_ONSTACK when the program runs on a signal stack: ours, standing in for
// its own, or its own), EPERM on a signal stack, EINVAL for a bad mode,
// ENOMEM below MINSIGSTKSZ.
int64_t TrapSigaltstack(const greg_t* g, const uint64_t* a) {
  KernelStack next{};
  if (a[0] != 0) {
    if (const int64_t r = SafeCopy(false, &next, a[0], sizeof(next)); r != 0) return r;
  }
  const uint64_t sp = static_cast<uint64_t>(g[REG_RSP]);
  const KernelStack cur = t_app_stack;
  const bool on_ours =
      t_alt_slot >= 0 &&
      sp - (U(g_alt_base) + static_cast<uint64_t>(t_alt_slot) * kAltSlotSize) < kAltSlotSize;
  const bool on_own = cur.size != 0 && sp - cur.sp < cur.size;
  const bool enabled = (cur.flags & kSsDisable) == 0 && cur.size != 0;
  const bool on_stack = enabled && (on_ours || on_own);
  KernelStack old{cur.sp, 0, 0, cur.size};
  old.flags = (!enabled ? kSsDisable : on_stack ? kSsOnstack : 0) | (cur.flags & kSsFlagBits);
  if (a[0] != 0) {
    if (on_stack) return -EPERM;
    const int32_t mode = next.flags & ~kSsFlagBits;
    if (mode != kSsDisable && mode != kSsOnstack && mode != 0) return -EINVAL;
    if (mode == kSsDisable) {
      t_app_stack = KernelStack{0, next.flags, 0, 0};
    } else {
      if (next.size < kMinSigstksz) return -ENOMEM;
      t_app_stack = KernelStack{next.sp, next.flags, 0, next.size};
    }
  }
  if (a[1] != 0) {
    if (const int64_t r = SafeCopy(true, &old, a[1], sizeof(old)); r != 0) return r;
  }
  return 0;
}

// ---------------------------------------------------------------------------
// Signals, virtualised.

// Unblocks the signals deferred on this thread. Safe against a signal that
// arrives meanwhile: the bits are cleared only after the unblock, and
// DeferringHandler unblocks them itself when it finds them set outside an
// event (before the program's handler, which may longjmp, runs).
void UnblockDeferred() {
  const uint64_t bits = t_deferred_bits;
  if (bits == 0) return;
  RawSyscall6(kSysRtSigprocmask, 1 /* SIG_UNBLOCK */, U(&bits), 0, 8);
  __atomic_fetch_and(&t_deferred_bits, ~bits, __ATOMIC_RELAXED);
}

// A signal for the program that finds this thread inside an event: sent
// again to this thread and blocked in the interrupted context, so it runs
// when the event ends (SudFlushDeferredSignals). False: run it now (not in an
// event, or a fault, which would only recur on return).
bool DeferIfInHook(int sig, const siginfo_t* si, ucontext_t* uc) {
  if (!InHook()) {
    // Between an event's end and its unblocking (or a signal sent by that
    // unblocking): let the deferred ones in first.
    if (t_deferred_bits != 0) {
      uint64_t m = 0;
      memcpy(&m, &uc->uc_sigmask, sizeof(m));
      m &= ~t_deferred_bits;
      memcpy(&uc->uc_sigmask, &m, sizeof(m));
      UnblockDeferred();
    }
    return false;
  }
  const bool fault =
      sig == 4 || sig == 5 || sig == 7 || sig == 8 || sig == 11;  // ILL TRAP BUS FPE SEGV
  if (fault && si->si_code > 0) return false;
  __atomic_fetch_add(&g_deferred_total, 1, __ATOMIC_RELAXED);
  if (sig == kSigsys) {
    memcpy(&t_sigsys_info, si, sizeof(siginfo_t));
    t_sigsys_deferred = true;
    return true;
  }
  const uint64_t bit = uint64_t{1} << (sig - 1);
  // Blocked first (an SA_NODEFER handler would get it back at once), then
  // pending again with its siginfo; blocked in the context we return to.
  RawSyscall6(kSysRtSigprocmask, 0 /* SIG_BLOCK */, U(&bit), 0, 8);
  RawSyscall6(kSysRtTgsigqueueinfo, U(Getpid()), U(RawSyscall6(kSysGettid)), U(sig), U(si));
  __atomic_fetch_or(&t_deferred_bits, bit, __ATOMIC_RELAXED);
  uint64_t m = 0;
  memcpy(&m, &uc->uc_sigmask, sizeof(m));
  m |= bit;
  memcpy(&uc->uc_sigmask, &m, sizeof(m));
  return true;
}

// SIGHUP/SIGTERM the launcher passes on (tools/run_command.cc) come with
// rt_sigqueueinfo: SI_QUEUE from our parent, si_value = kForwardMagic << 32
// | the pid that signalled the launcher. A signal sent to the whole process
// group reached the program too: when the program's handler already ran for
// a copy from that sender in the last second, the launcher's copy is the
// same signal twice and is dropped, so the program sees it once.
constexpr uint64_t kForwardMagic = 0x766d73;  // "vms"
constexpr int kSiQueue = -1;
struct SeenSignal {
  int from;        // si_pid of the last copy not passed on by the launcher
  uint64_t at_ns;  // CLOCK_MONOTONIC when it came
  bool unmatched;  // no launcher copy has been dropped for it yet
};
SeenSignal g_seen[2];  // SIGHUP, SIGTERM

uint64_t MonotonicNs() {
  struct {
    int64_t sec;
    int64_t nsec;
  } ts = {0, 0};
  RawSyscall6(228 /* clock_gettime */, 1 /* CLOCK_MONOTONIC */, U(&ts));
  return static_cast<uint64_t>(ts.sec) * 1000000000u + static_cast<uint64_t>(ts.nsec);
}

bool IsForwardedTwice(int sig, const siginfo_t* si) {
  if (sig != 1 && sig != 15) return false;
  SeenSignal& seen = g_seen[sig == 1 ? 0 : 1];
  const uint64_t value = reinterpret_cast<uint64_t>(si->si_value.sival_ptr);
  const bool forwarded = si->si_code == kSiQueue && si->si_pid == RawSyscall6(kSysGetppid) &&
                         (value >> 32) == kForwardMagic;
  const uint64_t now = MonotonicNs();
  if (!forwarded) {
    seen = {si->si_pid, now, true};
    return false;
  }
  if (seen.unmatched && seen.from == static_cast<int>(value & 0xffffffffu) &&
      now - seen.at_ns < 1000000000u) {
    seen.unmatched = false;
    return true;
  }
  return false;
}

// The kernel's action for every program handler (see g_app_handlers).
void DeferringHandler(int sig, siginfo_t* si, void* ctx) {
  if (sig <= 0 || sig > 64 || DeferIfInHook(sig, si, static_cast<ucontext_t*>(ctx))) return;
  if (IsForwardedTwice(sig, si)) return;
  const AppHandler a = g_app_handlers[sig];
  if (a.handler == kSigIgn) return;
  if (a.handler == kSigDfl) {  // changed while this signal was on its way
    ResetAndRaise(sig);
    return;
  }
  if ((a.flags & kSaResethand) != 0) {
    // SA_RESETHAND, done here rather than by the kernel: a deferred signal
    // must still find the program's handler when it is re-sent.
    KernelSigaction dfl{kSigDfl, 0, 0, 0};
    RawSyscall6(kSysRtSigaction, U(sig), U(&dfl), 0, 8);
    g_app_handlers[sig].handler = kSigDfl;
    __atomic_fetch_and(&g_wrapped, ~(uint64_t{1} << sig), __ATOMIC_RELAXED);
  }
  // The kernel passes all three arguments to every x86-64 handler.
  reinterpret_cast<void (*)(int, siginfo_t*, void*)>(a.handler)(sig, si, ctx);
}

// The program's view of an action the kernel holds for sig: the program's
// handler and flags in place of DeferringHandler when `wrapped`.
void ProgramView(int sig, bool wrapped, const AppHandler& app, KernelSigaction* k) {
  if (!wrapped || sig <= 0 || sig > 64) return;
  k->handler = app.handler;
  k->flags = app.flags | kSaRestorer;
}

// rt_sigaction: SIGSYS stays ours (the program's action is kept aside);
// every other handler gets our restorer and never blocks SIGSYS.
int64_t TrapSigaction(const uint64_t* a) {
  const int sig = static_cast<int>(a[0]);
  const uint64_t act = a[1];
  const uint64_t oact = a[2];
  if (a[3] != 8) return RawSyscall6(kSysRtSigaction, a[0], act, oact, a[3]);
  KernelSigaction k{};
  if (act != 0) {
    if (const int64_t r = SafeCopy(false, &k, act, sizeof(k)); r != 0) return r;
  }
  if (sig == kSigsys) {
    if (oact != 0) {
      KernelSigaction old = g_app_sigsys;
      if (const int64_t r = SafeCopy(true, &old, oact, sizeof(old)); r != 0) return r;
    }
    // A CLONE_VM child (posix_spawn's) resetting handlers shares our memory:
    // it must not change the parent's view.
    if (act != 0 && Getpid() == ShadowOwnerPid()) g_app_sigsys = k;
    return 0;
  }
  const uint64_t bit = sig > 0 && sig < 64 ? uint64_t{1} << sig : 0;
  const bool own = (g_own_fatal & bit) != 0;
  const bool was_wrapped = bit != 0 && (g_wrapped & bit) != 0;
  const AppHandler was = bit != 0 ? g_app_handlers[sig] : AppHandler{};
  // A CLONE_VM child (posix_spawn's) shares the table with its parent: its
  // handlers are installed as they are, and the table is left alone.
  const bool owner = Getpid() == ShadowOwnerPid();
  int64_t r;
  KernelSigaction old{};
  if (act != 0 && k.handler == kSigDfl && (g_fatal_wanted & bit) != 0) {
    // Back to the default action: our report writer stands in for it (it
    // ends the process the same way), out of the program's sight.
    r = RawSyscall6(kSysRtSigaction, a[0], U(&g_fatal_action), U(&old), 8);
    if (r == 0) __atomic_fetch_or(&g_own_fatal, bit, __ATOMIC_RELAXED);
    if (r == 0 && owner) __atomic_fetch_and(&g_wrapped, ~bit, __ATOMIC_RELAXED);
  } else if (act != 0) {
    const bool wrap =
        g_defer_signals && owner && bit != 0 && k.handler != kSigDfl && k.handler != kSigIgn;
    if (wrap) {
      g_app_handlers[sig] = AppHandler{k.handler, k.flags};
      k.handler = U(&DeferringHandler);
      k.flags = (k.flags | kSaSiginfo) & ~kSaResethand;
    }
    k.flags |= kSaRestorer;
    k.restorer = U(&vmashadow_restorer);
    k.mask &= ~kSigsysBit;
    r = RawSyscall6(kSysRtSigaction, a[0], U(&k), U(&old), 8);
    if (r == 0 && own) __atomic_fetch_and(&g_own_fatal, ~bit, __ATOMIC_RELAXED);
    if (r == 0 && owner && bit != 0) {
      if (wrap) {
        __atomic_fetch_or(&g_wrapped, bit, __ATOMIC_RELAXED);
      } else {
        __atomic_fetch_and(&g_wrapped, ~bit, __ATOMIC_RELAXED);
      }
    }
  } else {
    r = RawSyscall6(kSysRtSigaction, a[0], 0, oact != 0 ? U(&old) : 0, 8);
  }
  if (r == 0 && oact != 0) {
    if (own) {
      old = KernelSigaction{};
    } else {
      ProgramView(sig, was_wrapped, was, &old);
    }
    r = SafeCopy(true, &old, oact, sizeof(old));
  }
  return r;
}

// rt_sigprocmask from inside the handler would be undone by sigreturn, so
// the new mask is written into the saved context; SIGSYS is never really
// blocked (a trap with it blocked kills the process), only remembered.
int64_t TrapSigprocmask(ucontext_t* uc, const uint64_t* a) {
  const uint64_t how = a[0];
  const uint64_t set = a[1];
  const uint64_t oldset = a[2];
  if (a[3] != 8) return RawSyscall6(kSysRtSigprocmask, a[0], a[1], a[2], a[3]);
  uint64_t cur = 0;
  memcpy(&cur, &uc->uc_sigmask, sizeof(cur));
  if (t_sigsys_blocked) cur |= kSigsysBit;
  uint64_t nset = 0;
  if (set != 0) {
    if (const int64_t r = SafeCopy(false, &nset, set, sizeof(nset)); r != 0) return r;
    if (how > 2) return -EINVAL;
  }
  if (oldset != 0) {
    if (const int64_t r = SafeCopy(true, &cur, oldset, sizeof(cur)); r != 0) return r;
  }
  if (set == 0) return 0;
  uint64_t next = how == 0 ? (cur | nset) : how == 1 ? (cur & ~nset) : nset;
  next &= ~kUnblockable;
  t_sigsys_blocked = (next & kSigsysBit) != 0;
  next &= ~kSigsysBit;
  memcpy(&uc->uc_sigmask, &next, sizeof(next));
  if (!t_sigsys_blocked && t_sigsys_pending) {
    // Delivered before the call returns, as POSIX asks of an unblock.
    t_sigsys_pending = false;
    RawSyscall6(kSysTgkill, U(Getpid()), RawSyscall6(kSysGettid), kSigsys);
  }
  return 0;
}

// A SIGSYS that is not a dispatch trap (seccomp, kill): the program's.
void ChainSigsys(int sig, siginfo_t* si, void* ctx) {
  if (g_defer_signals && DeferIfInHook(sig, si, static_cast<ucontext_t*>(ctx))) return;
  if (t_sigsys_blocked) {
    t_sigsys_pending = true;
    return;
  }
  const KernelSigaction act = g_app_sigsys;
  if (act.handler == kSigIgn) return;
  if (act.handler == kSigDfl) {
    ResetAndRaise(kSigsys);
    return;
  }
  if ((act.flags & kSaSiginfo) != 0) {
    reinterpret_cast<void (*)(int, siginfo_t*, void*)>(act.handler)(sig, si, ctx);
  } else {
    reinterpret_cast<void (*)(int)>(act.handler)(sig);
  }
}

// ---------------------------------------------------------------------------
// Processes and threads.

// fork, vfork (as a fork that waits), clone without a new stack: done here;
// the child returns through the same signal frame, in its own memory.
int64_t ForkHere(long nr, const uint64_t* a) {
  const uint64_t mask = BlockAllSignals();
  ForkLock();
  const int64_t r = RawSyscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
  if (r == 0) {
    ChildAfterFork();
  } else {
    ForkUnlock();
  }
  RestoreSignals(mask);
  return r;
}

// clone with a new stack (threads, posix_spawn): the child cannot return
// through our frame, so the syscall is redone from vmashadow_clone_stub.
// Returns false when the stacks cannot be prepared (the caller fails it).
bool CloneViaStub(greg_t* g) {
  uint64_t ret = static_cast<uint64_t>(g[REG_RIP]);
  const uint64_t sp = static_cast<uint64_t>(g[REG_RSP]) - kRedZoneSkip;
  const uint64_t child_stack = static_cast<uint64_t>(g[REG_RSI]);
  if (SafeCopy(true, &ret, sp, sizeof(ret)) != 0) return false;
  if (child_stack != 0) {
    if (SafeCopy(true, &ret, child_stack - kRedZoneSkip, sizeof(ret)) != 0) return false;
    g[REG_RSI] = static_cast<greg_t>(child_stack - kRedZoneSkip);
  }
  g[REG_RSP] = static_cast<greg_t>(sp);
  g[REG_RIP] = static_cast<greg_t>(U(&vmashadow_clone_stub));
  g[REG_RAX] = kSysClone;
  return true;
}

// int 0x80 from 64-bit code: issued again the same way, from our text.
int64_t Int80(const greg_t* g, long nr) {
  int64_t ret;
  __asm__ volatile("int $0x80"
                   : "=a"(ret)
                   : "a"(nr), "b"(g[REG_RBX]), "c"(g[REG_RCX]), "d"(g[REG_RDX]), "S"(g[REG_RSI]),
                     "D"(g[REG_RDI])
                   : "memory");
  return ret;
}

void Handler(int sig, siginfo_t* si, void* ctx) {
  if (si->si_code != kSysUserDispatch) {
    ChainSigsys(sig, si, ctx);
    return;
  }
  auto* uc = static_cast<ucontext_t*>(ctx);
  greg_t* g = uc->uc_mcontext.gregs;
  const long nr = si->si_syscall;
  if (si->si_arch == kAuditArchI386) {
    NoteOnce(3, "a 32-bit (int 0x80) syscall was passed through unmodelled");
    g[REG_RAX] = Int80(g, nr);
    ShadowDirty();
    return;
  }
  const uint64_t a[6] = {
      static_cast<uint64_t>(g[REG_RDI]), static_cast<uint64_t>(g[REG_RSI]),
      static_cast<uint64_t>(g[REG_RDX]), static_cast<uint64_t>(g[REG_R10]),
      static_cast<uint64_t>(g[REG_R8]),  static_cast<uint64_t>(g[REG_R9]),
  };
  int64_t r;
  switch (nr) {
    case kSysClone3:
      r = -ENOSYS;  // glibc falls back to clone
      break;
    case kSysClone: {
      uint64_t b[6] = {a[0], a[1], a[2], a[3], a[4], a[5]};
      if (a[1] != 0 || ((a[0] & kCloneVm) != 0 && (a[0] & kCloneVfork) == 0)) {
        if (CloneViaStub(g)) return;
        r = -EFAULT;
        break;
      }
      b[0] &= ~kCloneVm;  // a vfork-style clone on our stack: fork and wait
      r = ForkHere(kSysClone, b);
      break;
    }
    case kSysVfork: {
      const uint64_t b[6] = {kCloneVfork | kSigchld, 0, 0, 0, 0, 0};
      r = ForkHere(kSysClone, b);
      break;
    }
    case kSysFork:
      r = ForkHere(kSysFork, a);
      break;
    case kSysExecve:
    case kSysExecveat:
      ImageEnding("execve");
      r = RawSyscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
      break;
    case kSysExitGroup:
      ImageEnding("exit_group");
      r = RawSyscall6(nr, a[0]);
      break;
    case kSysRtSigaction:
      r = TrapSigaction(a);
      break;
    case kSysRtSigprocmask:
      r = TrapSigprocmask(uc, a);
      break;
    case kSysRtSigpending: {
      r = RawSyscall6(nr, a[0], a[1]);
      if (r == 0 && t_sigsys_pending && a[1] == 8) {
        uint64_t set = 0;
        if (SafeCopy(false, &set, a[0], sizeof(set)) == 0) {
          set |= kSigsysBit;
          r = SafeCopy(true, &set, a[0], sizeof(set));
        }
      }
      break;
    }
    case kSysSigaltstack:
      r = g_alt_base != nullptr ? TrapSigaltstack(g, a) : RawSyscall6(nr, a[0], a[1]);
      break;
    case kSysRtSigreturn:
      // A restorer other than ours: run it from our text on its own frame.
      g[REG_RIP] = static_cast<greg_t>(U(&vmashadow_restorer));
      return;
    case kSysPrctl:
      if (static_cast<long>(a[0]) == kPrSetSyscallUserDispatch) {
        NoteOnce(4, "the program's own PR_SET_SYSCALL_USER_DISPATCH was refused (EBUSY)");
        r = -EBUSY;
        break;
      }
      r = RawSyscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
      if (static_cast<long>(a[0]) == kPrSetVma && r == 0) ShadowDirty();
      break;
    case kSysMbind:
    case kSysMapShadowStack:
      r = RawSyscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
      if (!IsError(r)) ShadowDirty();
      break;
    default: {
      if ((nr & kX32Bit) != 0) {
        r = RawSyscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
        ShadowDirty();
        break;
      }
      bool handled = false;
      SetTrapped(true);
      r = ModelledSyscall(nr, a, &handled);
      SetTrapped(false);
      if (!handled) r = RawSyscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
      break;
    }
  }
  g[REG_RAX] = static_cast<greg_t>(r);
}

}  // namespace

namespace {

// The executable PT_LOAD of the object holding this code.
int FindOwnText(struct dl_phdr_info* info, size_t, void* data) {
  const uint64_t here = U(&Handler);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || (ph.p_flags & PF_X) == 0) continue;
    const uint64_t lo = info->dlpi_addr + ph.p_vaddr;
    if (here >= lo && here < lo + ph.p_memsz) {
      auto* range = static_cast<uint64_t*>(data);
      range[0] = lo;
      range[1] = lo + ph.p_memsz;
      return 1;
    }
  }
  return 0;
}

}  // namespace

bool OwnTextRange(uint64_t* lo, uint64_t* hi) {
  uint64_t range[2] = {0, 0};
  dl_iterate_phdr(FindOwnText, range);
  *lo = range[0];
  *hi = range[1];
  return range[1] != 0;
}

bool SudStart(const char** why, char* alt_region, int alt_slots) {
  uint64_t text_hi = 0;
  if (!OwnTextRange(&g_text_lo, &text_hi)) {
    *why = "cannot find our own text";
    return false;
  }
  g_text_len = text_hi - g_text_lo;
  // The program's SIGSYS disposition (inherited SIG_IGN survives exec).
  KernelSigaction old{};
  RawSyscall6(kSysRtSigaction, kSigsys, 0, U(&old), 8);
  g_app_sigsys = old;
  KernelSigaction act{};
  act.handler = U(&Handler);
  act.flags = kSaSiginfo | kSaNodefer | kSaRestorer | kSaOnstack;
  act.restorer = U(&vmashadow_restorer);
  act.mask = 0;
  if (RawSyscall6(kSysRtSigaction, kSigsys, U(&act), 0, 8) != 0) {
    *why = "cannot install the SIGSYS handler";
    return false;
  }
  // An inherited mask may block SIGSYS: keep that only in the program's view.
  uint64_t cur = 0;
  RawSyscall6(kSysRtSigprocmask, 0, 0, U(&cur), 8);
  if ((cur & kSigsysBit) != 0) {
    t_sigsys_blocked = true;
    uint64_t bit = kSigsysBit;
    RawSyscall6(kSysRtSigprocmask, 1, U(&bit), 0, 8);
  }
  // The program's own signal stack, if it set one before us, stays its view.
  RawSyscall6(kSysSigaltstack, 0, U(&t_app_stack));
  t_app_stack.flags &= ~kSsOnstack;
  t_selector = kSelectorBlock;
  const int64_t r = RawSyscall6(kSysPrctl, kPrSetSyscallUserDispatch, kPrSysDispatchOn, g_text_lo,
                                g_text_len, U(&t_selector));
  if (r != 0) {
    t_selector = 0;
    RawSyscall6(kSysRtSigaction, kSigsys, U(&old), 0, 8);
    *why = r == -EINVAL ? "PR_SET_SYSCALL_USER_DISPATCH: EINVAL (kernel < 5.11?)"
                        : "PR_SET_SYSCALL_USER_DISPATCH failed";
    return false;
  }
  g_alt_base = alt_region;
  g_alt_slots = alt_slots < kAltSlots ? alt_slots : kAltSlots;
  SetupAltStack();
  // From now on every rt_sigaction traps: handlers go through
  // DeferringHandler. Those installed before us (other constructors) too.
  g_defer_signals = true;
  for (int sig = 1; sig <= 64; ++sig) {
    if (sig == 9 || sig == 19 || sig == kSigsys) continue;
    KernelSigaction cur_act{};
    if (RawSyscall6(kSysRtSigaction, U(sig), 0, U(&cur_act), 8) != 0) continue;
    if (cur_act.handler == kSigDfl || cur_act.handler == kSigIgn) continue;
    const uint64_t args[4] = {U(sig), U(&cur_act), 0, 8};
    (void)TrapSigaction(args);  // our own memory: SafeCopy reads it fine
  }
  return true;
}

bool SudDefersSignals() { return g_defer_signals; }

uint64_t SudDeferredSignals() { return __atomic_load_n(&g_deferred_total, __ATOMIC_RELAXED); }

void SudResetCounts() { g_deferred_total = 0; }

void SudFlushDeferredSignals() {
  UnblockDeferred();
  if (t_sigsys_deferred) {
    t_sigsys_deferred = false;
    RawSyscall6(kSysRtTgsigqueueinfo, U(Getpid()), U(RawSyscall6(kSysGettid)), U(kSigsys),
                U(&t_sigsys_info));
  }
}

void SudArmThisThread() { ArmThread(); }

void SudAfterFork() {
  for (int i = 0; i < kAltSlots; ++i) g_alt_owner[i] = 0;
  if (t_alt_slot >= 0) {
    g_alt_owner[t_alt_slot] = AltOwnerId(Getpid(), RawSyscall6(kSysGettid));
  }
}

uint64_t SudRestorer() { return U(&vmashadow_restorer); }

void SudSetFatalAction(uint64_t handler, uint64_t flags) {
  g_fatal_action.handler = handler;
  g_fatal_action.flags = flags;
  g_fatal_action.restorer = U(&vmashadow_restorer);
  g_fatal_action.mask = ~kSigsysBit;  // a second copy waits for the report (shadow.cc)
}

void SudNoteOwnFatalHandler(int sig) {
  if (sig > 0 && sig < 64) __atomic_fetch_or(&g_fatal_wanted, uint64_t{1} << sig, __ATOMIC_RELAXED);
  if (sig > 0 && sig < 64) __atomic_fetch_or(&g_own_fatal, uint64_t{1} << sig, __ATOMIC_RELAXED);
}

}  // namespace vmashadow::preload

// The clone child (see vmashadow_clone_stub): a new task starts without
// dispatch; arm it when the process is being watched.
extern "C" void vmashadow_clone_child() {
  if (!vmashadow::preload::ShadowReady()) return;
  vmashadow::preload::SudArmThisThread();
  vmashadow::preload::NoteThreadStarted();
}
