// sud.cc — the Syscall User Dispatch backend (see sud.h for the design).
//
// Runs in a signal handler on the application's stack, possibly inside
// malloc or with the program's locks held: no allocation, no libc calls
// that may take locks, only raw syscalls (which are allowed because they
// are issued from our own text). User memory the program hands to
// rt_sigaction/rt_sigprocmask is copied with process_vm_readv/writev, so a
// bad pointer gives the program EFAULT instead of crashing us.
#include "preload/sud.h"

#include <cpuid.h>
#include <link.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/stat.h>
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

  .p2align 4
  .globl vmashadow_syscall_tramp
  .type vmashadow_syscall_tramp, @function
vmashadow_syscall_tramp:
  .cfi_startproc simple
  .cfi_def_cfa %rsp, 136
  .cfi_offset %rip, -136
  syscall
  ret $128
  .cfi_endproc
  .size vmashadow_syscall_tramp, .-vmashadow_syscall_tramp

  .p2align 4
  .globl vmashadow_mm_tramp
  .type vmashadow_mm_tramp, @function
vmashadow_mm_tramp:
  .cfi_startproc simple
  .cfi_def_cfa %rsp, 152
  .cfi_offset %rip, -136
  pushfq
  .cfi_adjust_cfa_offset 8
  movq %rsp, %r11
  movq 16(%rsp), %rsp
  pushq %r11
  pushq %rbp
  movq %rsp, %rbp
  .cfi_escape 0x0f, 0x06, 0x76, 0x08, 0x06, 0x23, 0xa0, 0x01
  .cfi_escape 0x10, 0x06, 0x02, 0x76, 0x00
  pushq %rbx
  .cfi_escape 0x10, 0x03, 0x02, 0x76, 0x78
  pushq %rax
  pushq %r9
  pushq %r8
  pushq %r10
  pushq %rdx
  pushq %rsi
  pushq %rdi
  movq %rsp, %rbx
  subq vmashadow_xsave_bytes(%rip), %rsp
  andq $-64, %rsp
  xorl %ecx, %ecx
  movq %rcx, 512(%rsp)
  movq %rcx, 520(%rsp)
  movq %rcx, 528(%rsp)
  movq %rcx, 536(%rsp)
  movq %rcx, 544(%rsp)
  movq %rcx, 552(%rsp)
  movq %rcx, 560(%rsp)
  movq %rcx, 568(%rsp)
  movl vmashadow_xsave_mask(%rip), %eax
  movl vmashadow_xsave_mask+4(%rip), %edx
  xsave64 (%rsp)
  cld
  movq 48(%rbx), %rdi
  movq %rbx, %rsi
  call vmashadow_mm_dispatch
vmashadow_mm_tramp_ret:
  movq %rax, 48(%rbx)
  movl vmashadow_xsave_mask(%rip), %eax
  movl vmashadow_xsave_mask+4(%rip), %edx
  xrstor64 (%rsp)
  movq %rbx, %rsp
  popq %rdi
  popq %rsi
  popq %rdx
  popq %r10
  popq %r8
  popq %r9
  popq %rax
  popq %rbx
  .cfi_restore %rbx
  popq %rbp
  .cfi_restore %rbp
  popq %rsp
  .cfi_def_cfa %rsp, 160
  pushq %rax
  .cfi_adjust_cfa_offset 8
  pushq %rdi
  .cfi_adjust_cfa_offset 8
  pushq %rsi
  .cfi_adjust_cfa_offset 8
  pushq %rdx
  .cfi_adjust_cfa_offset 8
  pushq %r10
  .cfi_adjust_cfa_offset 8
  movl $14, %eax
  movl $2, %edi
  leaq 48(%rsp), %rsi
  xorl %edx, %edx
  movl $8, %r10d
  syscall
  popq %r10
  .cfi_adjust_cfa_offset -8
  popq %rdx
  .cfi_adjust_cfa_offset -8
  popq %rsi
  .cfi_adjust_cfa_offset -8
  popq %rdi
  .cfi_adjust_cfa_offset -8
  popq %rax
  .cfi_adjust_cfa_offset -8
  popfq
  .cfi_adjust_cfa_offset -8
  addq $16, %rsp
  .cfi_adjust_cfa_offset -16
  ret $128
  .cfi_endproc
  .size vmashadow_mm_tramp, .-vmashadow_mm_tramp

  .p2align 4
  .globl vmashadow_wrapper_entry
  .type vmashadow_wrapper_entry, @function
vmashadow_wrapper_entry:
  .cfi_startproc
  movq %rcx, %r10
  subq $8, %rsp
  .cfi_adjust_cfa_offset 8
  pushq %rax
  .cfi_adjust_cfa_offset 8
  pushq %rdi
  .cfi_adjust_cfa_offset 8
  pushq %rsi
  .cfi_adjust_cfa_offset 8
  pushq %rdx
  .cfi_adjust_cfa_offset 8
  pushq %r10
  .cfi_adjust_cfa_offset 8
  movl $14, %eax
  movl $2, %edi
  leaq vmashadow_block_mask(%rip), %rsi
  leaq 40(%rsp), %rdx
  movl $8, %r10d
  syscall
  popq %r10
  .cfi_adjust_cfa_offset -8
  popq %rdx
  .cfi_adjust_cfa_offset -8
  popq %rsi
  .cfi_adjust_cfa_offset -8
  popq %rdi
  .cfi_adjust_cfa_offset -8
  popq %rax
  .cfi_adjust_cfa_offset -8
  movq vmashadow_t_stack_top@gottpoff(%rip), %r11
  movq %fs:(%r11), %r11
  testq %r11, %r11
  jnz 1f
  leaq -64(%rsp), %r11
  andq $-16, %r11
1:
  movq %rsp, %rcx
  movq %r11, %rsp
  pushq %rcx
  pushq %rbp
  movq %rsp, %rbp
  .cfi_escape 0x0f, 0x05, 0x76, 0x08, 0x06, 0x23, 0x10
  .cfi_escape 0x10, 0x06, 0x02, 0x76, 0x00
  pushq %r9
  pushq %r8
  pushq %r10
  pushq %rdx
  pushq %rsi
  pushq %rdi
  movq %rax, %rdi
  movq %rsp, %rsi
  cld
  call vmashadow_wrapper_dispatch
vmashadow_wrapper_ret:
  movq %rbp, %rsp
  popq %rbp
  .cfi_restore %rbp
  popq %rsp
  .cfi_def_cfa %rsp, 16
  movq %rax, %r8
  movl $14, %eax
  movl $2, %edi
  movq %rsp, %rsi
  xorl %edx, %edx
  movl $8, %r10d
  syscall
  movq %r8, %rax
  addq $8, %rsp
  .cfi_def_cfa_offset 8
  ret
  .cfi_endproc
  .size vmashadow_wrapper_entry, .-vmashadow_wrapper_entry
)");

// Every signal but SIGSYS (and SIGKILL/SIGSTOP, which the kernel keeps
// unblocked anyway): the mask an exported wrapper's event runs under.
extern "C" {
__attribute__((visibility("hidden"), used)) extern const uint64_t vmashadow_block_mask =
    ~(uint64_t{1} << (31 - 1));
// The top of this thread's stack of ours (its slot's upper half), 0 when it
// has none: vmashadow_wrapper_entry then runs our code on the program's.
__attribute__((visibility("hidden"),
               tls_model("initial-exec"))) __thread uint64_t vmashadow_t_stack_top = 0;
}

// vmashadow_wrapper_entry: the exported wrappers (hooks.cc) jump here with
// the syscall number in rax and the C arguments in place; [rsp] is the
// program's return address. It blocks every signal but SIGSYS (the old
// mask saved below the return address), switches to this thread's stack of
// ours, calls vmashadow_wrapper_dispatch(nr, args) (the event; errno set on
// failure), switches back and restores the mask with one rt_sigprocmask on
// the program's stack, so a signal that arrived meanwhile is delivered with
// the program's stack pointer and our exported entry as the interrupted
// context: no frame of ours lies under the program's handler. Exported so
// that a program or a profiler can tell it from our code.
extern "C" void vmashadow_wrapper_entry();
// Right after the calls into our code in the two trampolines: the return
// addresses a stack walk meets there (SudTrampolineFrame).
extern "C" void vmashadow_mm_tramp_ret();
extern "C" void vmashadow_wrapper_ret();

// The trampolines a trapped syscall continues in after our handler has
// returned (see the file comment): on the program's stack, 136 (plain) or
// 152 (mm) bytes below its stack pointer, past its red zone.
//
// vmashadow_syscall_tramp: [rsp] = the program's next instruction. Issues
// the syscall as the program would have (its registers, its signal mask; a
// restart rewinds to our syscall instruction) and returns there.
//
// vmashadow_mm_tramp: [rsp] = the program's signal mask (to restore),
// [rsp + 8] = the top of this thread's stack of ours, [rsp + 16] = the
// program's next instruction; entered with every signal but SIGSYS blocked
// (the handler set that mask). Switches to our stack, saves the extended
// register state (xsave: the program's vector registers survive our C
// code, as they survive a syscall), calls vmashadow_mm_dispatch(nr, args),
// restores, switches back, restores the program's signal mask with one
// rt_sigprocmask issued on the program's stack (so a signal pending meanwhile
// finds the program's stack and our trampoline, never our frames) and
// returns with the kernel's result in rax, every other register but rcx and
// r11 as it was.
// Both are exported (default visibility) so that a program, a profiler or a
// test can tell an interrupted trapped syscall (dladdr, dlsym) from our code.
extern "C" void vmashadow_syscall_tramp();
extern "C" void vmashadow_mm_tramp();
extern "C" __attribute__((visibility("hidden"), used)) int64_t vmashadow_mm_dispatch(
    uint64_t nr, const uint64_t* args);
// Bytes reserved below the saved registers for the xsave area: the size
// CPUID leaf 0xD reports for the enabled features, plus alignment slack.
extern "C" {
__attribute__((visibility("hidden"), used)) uint64_t vmashadow_xsave_bytes = 4096;
// The state components saved: XCR0 without AMX's (17, 18: their use needs a
// permission the program asks for, and XRSTOR of an unpermitted one faults).
__attribute__((visibility("hidden"), used)) uint64_t vmashadow_xsave_mask = 7;
}

namespace vmashadow::preload {
namespace {

constexpr uint64_t kUnblockable = (uint64_t{1} << (9 - 1)) | (uint64_t{1} << (19 - 1));
constexpr int kSysUserDispatch = 2;  // si_code
constexpr uint32_t kAuditArchI386 = 0x40000003;
constexpr long kX32Bit = 0x40000000;
constexpr long kPrSetSyscallUserDispatch = 59;
constexpr long kPrSysDispatchOn = 1;
constexpr long kPrSetVma = 0x53564d41;
constexpr long kPrSetSeccomp = 22;
constexpr long kPrSetMdwe = 65;
constexpr char kSelectorBlock = 1;
constexpr uint64_t kCloneVm = 0x100;
constexpr uint64_t kCloneVfork = 0x4000;
constexpr uint64_t kSigchld = 17;
constexpr uint64_t kRedZoneSkip = 136;  // 128-byte red zone + the return address

uint64_t g_text_lo = 0;
uint64_t g_text_len = 0;
KernelSigaction g_app_sigsys;  // the program's view of SIGSYS
// The kernel runs every program handler with our restorer (glibc's
// __restore_rt would itself trap); the program reads back its own.
struct AppRestorer {
  uint64_t restorer;
  bool flag;  // the program set SA_RESTORER
};
AppRestorer g_app_restorer[65];
uint64_t g_deferred_total = 0;  // SIGSYS deferred out of events (the report's count)
uint64_t g_own_fatal = 0;       // signals whose handler is our report writer
uint64_t g_fatal_wanted = 0;    // signals we put our report writer on when SIG_DFL
KernelSigaction g_fatal_action;

__thread char t_selector __attribute__((tls_model("initial-exec"))) = 0;
__thread bool t_sigsys_blocked __attribute__((tls_model("initial-exec"))) = false;
// A program-sent SIGSYS that arrived while the program had it blocked: held
// here until it unblocks it (the kernel cannot hold it: it is never blocked).
__thread bool t_sigsys_pending __attribute__((tls_model("initial-exec"))) = false;
// A SIGSYS (not a dispatch trap) that arrived inside an event: every other
// signal is blocked there, SIGSYS never is, so it waits here until the
// event ends (SudFlushDeferredSignals).
__thread bool t_sigsys_deferred __attribute__((tls_model("initial-exec"))) = false;
__thread siginfo_t t_sigsys_info __attribute__((tls_model("initial-exec")));
// True while vmashadow_mm_dispatch runs: the handler blocked every signal
// for the trampoline, so the event need not (SudSignalsBlocked).
__thread bool t_signals_blocked __attribute__((tls_model("initial-exec"))) = false;
// A copy of a signal mask the program passes to a call that swaps masks
// (rt_sigsuspend, ppoll, pselect6, epoll_pwait), SIGSYS taken out.
__thread uint64_t t_call_mask __attribute__((tls_model("initial-exec"))) = 0;

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
// Each armed thread's selector byte, by signal-stack slot, so that stepping
// aside can disarm them all (SudDisarmAll). A thread without a slot is
// disarmed by the g_disarmed check when it next arms or traps.
char* g_selectors[kAltSlots];
bool g_disarmed = false;

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
// The kernel keeps one signal stack per thread. It is the program's when the
// program set one that can also take our handler's frame (the kernel's
// minimal signal frame plus kOurHandlerBytes): our SIGSYS frames land there
// and its SA_ONSTACK handlers run where it asked. Otherwise it is ours, with
// SS_AUTODISARM: disarmed while our handler runs on it, so the handler can
// change it for the program (TrapSigaltstack writes the stack the thread is
// to have into the ucontext, which rt_sigreturn installs).
constexpr uint64_t kOurHandlerBytes = 8192;

bool ProgramStackUsable(const KernelStack& app) {
  if ((app.flags & kSsDisable) != 0 || app.size == 0) return false;
  const uint64_t min_frame = getauxval(AT_MINSIGSTKSZ);
  return app.size >= (min_frame > kMinSigstksz ? min_frame : kMinSigstksz) + kOurHandlerBytes;
}

KernelStack ThreadAltStack() {
  // SS_AUTODISARM on the program's too: our handler may run on it when the
  // program changes it, and rt_sigreturn could not install the change while
  // the thread is on an armed stack. The program never sees the flag (its
  // view is t_app_stack), and a signal nested in its handler lands below the
  // handler's frame on that stack either way.
  if (ProgramStackUsable(t_app_stack)) {
    return KernelStack{t_app_stack.sp, kSsFlagBits, 0, t_app_stack.size};
  }
  if (t_alt_slot < 0) return KernelStack{0, kSsDisable, 0, 0};
  return KernelStack{U(g_alt_base) + static_cast<uint64_t>(t_alt_slot) * kAltSlotSize, kSsFlagBits,
                     0, kAltStackSize};
}

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
  g_selectors[t_alt_slot] = &t_selector;
  vmashadow_t_stack_top = U(g_alt_base) + static_cast<uint64_t>(t_alt_slot + 1) * kAltSlotSize;
  const KernelStack ss = ThreadAltStack();
  RawSyscall6(kSysSigaltstack, U(&ss), 0);
}

void ArmThread() {
  if (g_disarmed) return;
  t_selector = kSelectorBlock;
  RawSyscall6(kSysPrctl, kPrSetSyscallUserDispatch, kPrSysDispatchOn, g_text_lo, g_text_len,
              U(&t_selector));
  SetupAltStack();
}

// sigaltstack on the program's view, mirroring do_sigaltstack()
// (kernel/signal.c, 6.18): the old stack first (with SS_ONSTACK when the
// program runs on a signal stack: its own, or ours standing in for none),
// EPERM on a signal stack, EINVAL for a bad mode, ENOMEM below MINSIGSTKSZ.
// The stack the thread is to have (ThreadAltStack) goes into the ucontext:
// rt_sigreturn installs it.
int64_t TrapSigaltstack(ucontext_t* uc, const greg_t* g, const uint64_t* a) {
  KernelStack next{};
  if (a[0] != 0) {
    if (const int64_t r = SafeCopy(false, &next, a[0], sizeof(next)); r != 0) return r;
  }
  const uint64_t sp = static_cast<uint64_t>(g[REG_RSP]);
  const KernelStack cur = t_app_stack;
  const bool on_ours =
      t_alt_slot >= 0 &&
      sp - (U(g_alt_base) + static_cast<uint64_t>(t_alt_slot) * kAltSlotSize) < kAltStackSize;
  const bool on_own = cur.size != 0 && sp - cur.sp < cur.size;
  const bool enabled = (cur.flags & kSsDisable) == 0 && cur.size != 0;
  const bool on_stack = enabled && (on_ours || on_own);
  KernelStack old{cur.sp, 0, 0, cur.size};
  old.flags = (!enabled ? kSsDisable : on_stack ? kSsOnstack : 0) | (cur.flags & kSsFlagBits);
  if (a[0] != 0) {
    if (on_stack) return -EPERM;
    const int32_t mode = next.flags & ~kSsFlagBits;
    if (mode != kSsDisable && mode != kSsOnstack && mode != 0) return -EINVAL;
    if (mode != kSsDisable && next.size < kMinSigstksz) return -ENOMEM;
  }
  if (a[1] != 0) {
    if (const int64_t r = SafeCopy(true, &old, a[1], sizeof(old)); r != 0) return r;
  }
  if (a[0] != 0) {
    const int32_t mode = next.flags & ~kSsFlagBits;
    t_app_stack = mode == kSsDisable ? KernelStack{0, next.flags, 0, 0}
                                     : KernelStack{next.sp, next.flags, 0, next.size};
    if (mode != kSsDisable && !ProgramStackUsable(t_app_stack)) {
      NoteOnce(8,
               "a signal stack the program set is too small to share with our handler; "
               "its SA_ONSTACK handlers run on ours");
    }
    const KernelStack k = ThreadAltStack();
    uc->uc_stack.ss_sp = reinterpret_cast<void*>(k.sp);
    uc->uc_stack.ss_flags = k.flags;
    uc->uc_stack.ss_size = k.size;
  }
  return 0;
}

// ---------------------------------------------------------------------------
// Signals, virtualised.
//
// The program's handlers are installed as it asks (only the restorer is
// ours, and SIGSYS is never in a handler's mask): no wrapper of ours runs
// under them. No program code may run on a thread while it holds the model
// lock, so every event blocks signals instead: the trap path's handler
// returns into vmashadow_mm_tramp with every signal but SIGSYS blocked and
// the trampoline restores the program's mask once the event is over; the
// exported wrappers block and restore it themselves (shadow.cc). A signal
// sent meanwhile stays pending in the kernel, in order, and is delivered
// when the mask is restored: none is lost, none reordered. SIGSYS alone is
// never blocked (a dispatch trap with SIGSYS blocked kills the process); a
// program-sent one that finds the thread in an event waits in
// t_sigsys_deferred until the event ends.

// rt_sigaction: SIGSYS stays ours (the program's action is kept aside);
// every other handler is installed with our restorer and never blocks
// SIGSYS, and the program reads back its own restorer.
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
  const AppRestorer was = bit != 0 ? g_app_restorer[sig] : AppRestorer{};
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
  } else if (act != 0) {
    const AppRestorer mine{k.restorer, (k.flags & kSaRestorer) != 0};
    k.flags |= kSaRestorer;
    k.restorer = U(&vmashadow_restorer);
    k.mask &= ~kSigsysBit;
    r = RawSyscall6(kSysRtSigaction, a[0], U(&k), U(&old), 8);
    if (r == 0 && own) __atomic_fetch_and(&g_own_fatal, ~bit, __ATOMIC_RELAXED);
    if (r == 0 && owner && bit != 0) g_app_restorer[sig] = mine;
  } else {
    r = RawSyscall6(kSysRtSigaction, a[0], 0, oact != 0 ? U(&old) : 0, 8);
  }
  if (r == 0 && oact != 0) {
    if (own) {
      old = KernelSigaction{};
    } else if (old.restorer == U(&vmashadow_restorer)) {
      old.restorer = was.restorer;
      if (!was.flag) old.flags &= ~kSaRestorer;
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
  if (InHook()) {
    memcpy(&t_sigsys_info, si, sizeof(siginfo_t));
    t_sigsys_deferred = true;
    __atomic_fetch_add(&g_deferred_total, 1, __ATOMIC_RELAXED);
    return;
  }
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
    ChildAfterFork(/*vfork_child=*/(a[0] & kCloneVfork) != 0);
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

// Writes n bytes below the program's stack pointer sp (a trampoline's frame,
// below its red zone). Directly when they lie in the page sp points into
// (mapped and writable: the program's stack, which it was using), else
// through SafeCopy, which fails instead of faulting (a stack pointer at the
// very bottom of its stack, or one the program set to something else).
int64_t WriteBelowStack(uint64_t sp, uint64_t at, const void* data, size_t n) {
  if ((sp & ~uint64_t{4095}) == (at & ~uint64_t{4095}) && at + n <= sp) {
    memcpy(reinterpret_cast<void*>(at), data, n);
    return 0;
  }
  return SafeCopy(true, const_cast<void*>(data), at, n);
}

// The program goes on in vmashadow_syscall_tramp, which issues the syscall
// (nr, its registers) on the program's stack with its signal mask once our
// handler has returned. False when the program's stack cannot take the
// return address (the caller then issues the call itself).
bool RedirectPlain(greg_t* g, long nr) {
  const uint64_t ret = static_cast<uint64_t>(g[REG_RIP]);
  const uint64_t sp = static_cast<uint64_t>(g[REG_RSP]) - kRedZoneSkip;
  if (WriteBelowStack(static_cast<uint64_t>(g[REG_RSP]), sp, &ret, sizeof(ret)) != 0) return false;
  g[REG_RSP] = static_cast<greg_t>(sp);
  g[REG_RIP] = static_cast<greg_t>(U(&vmashadow_syscall_tramp));
  g[REG_RAX] = nr;
  return true;
}

// The program goes on in vmashadow_mm_tramp (its layout is described
// there), with every signal but SIGSYS blocked until the event is over.
// False when this thread has no stack of ours (more threads than slots) or
// the program's stack cannot take the frame: the handler runs the event.
bool RedirectMm(ucontext_t* uc, greg_t* g, long nr) {
  if (vmashadow_t_stack_top == 0) return false;
  uint64_t frame[3];
  memcpy(&frame[0], &uc->uc_sigmask, sizeof(frame[0]));
  frame[1] = vmashadow_t_stack_top;
  frame[2] = static_cast<uint64_t>(g[REG_RIP]);
  const uint64_t sp = static_cast<uint64_t>(g[REG_RSP]) - kRedZoneSkip - 16;
  if (WriteBelowStack(static_cast<uint64_t>(g[REG_RSP]), sp, frame, sizeof(frame)) != 0) {
    return false;
  }
  const uint64_t all = ~kSigsysBit;
  memcpy(&uc->uc_sigmask, &all, sizeof(all));
  g[REG_RSP] = static_cast<greg_t>(sp);
  g[REG_RIP] = static_cast<greg_t>(U(&vmashadow_mm_tramp));
  g[REG_RAX] = nr;
  return true;
}

// A call that swaps the signal mask for its duration (rt_sigsuspend,
// ppoll, pselect6, epoll_pwait, epoll_pwait2): a program handler run
// inside it must never have SIGSYS blocked, so the call gets a copy of the
// program's mask without it (in this thread's t_call_mask).
void SanitizeCallMask(greg_t* g, long nr) {
  int reg = -1;
  switch (nr) {
    case kSysRtSigsuspend:
      reg = REG_RDI;
      break;
    case kSysPpoll:
      reg = REG_R10;
      break;
    case kSysEpollPwait:
    case kSysEpollPwait2:
      reg = REG_R8;
      break;
    default:
      return;
  }
  const uint64_t user = static_cast<uint64_t>(g[reg]);
  if (user == 0 || SafeCopy(false, &t_call_mask, user, sizeof(t_call_mask)) != 0) return;
  if ((t_call_mask & kSigsysBit) == 0) return;
  t_call_mask &= ~kSigsysBit;
  g[reg] = static_cast<greg_t>(U(&t_call_mask));
}

// unlink, unlinkat, rename, renameat, renameat2, run here: a file the model
// maps whose last name goes (maps then says " (deleted)") or that is
// renamed (maps shows the new name) makes the model resynchronise before
// the next event. One newfstatat per name beforehand; nothing more unless
// the model maps that file.
int64_t UnlinkOrRename(long nr, const uint64_t* a) {
  int64_t victim_dir = kAtFdcwd;  // the name that may lose its file
  uint64_t victim = 0;
  int64_t source_dir = kAtFdcwd;  // the name that moves (rename)
  uint64_t source = 0;
  switch (nr) {
    case kSysUnlink:
      victim = a[0];
      break;
    case kSysUnlinkat:
      if ((a[2] & 0x200 /* AT_REMOVEDIR */) == 0)
        victim_dir = static_cast<int64_t>(a[0]), victim = a[1];
      break;
    case kSysRename:
      source = a[0];
      victim = a[1];
      break;
    default:  // renameat, renameat2 (RENAME_EXCHANGE swaps: both keep a name)
      source_dir = static_cast<int64_t>(a[0]);
      source = a[1];
      if (nr != kSysRenameat2 || (a[4] & 2 /* RENAME_EXCHANGE */) == 0) {
        victim_dir = static_cast<int64_t>(a[2]);
        victim = a[3];
      }
      break;
  }
  bool changes = false;
  struct stat st;
  if (victim != 0 &&
      RawSyscall6(kSysNewfstatat, U(victim_dir), victim, U(&st), 0x100 /* AT_SYMLINK_NOFOLLOW */) ==
          0 &&
      S_ISREG(st.st_mode) && st.st_nlink == 1) {
    changes = ShadowMapsFile(st.st_dev, st.st_ino);
  }
  if (!changes && source != 0 &&
      RawSyscall6(kSysNewfstatat, U(source_dir), source, U(&st), 0x100) == 0 &&
      S_ISREG(st.st_mode)) {
    changes = ShadowMapsFile(st.st_dev, st.st_ino);
  }
  const int64_t r = RawSyscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
  if (r == 0 && changes) ShadowDirty();
  return r;
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
  if (__atomic_load_n(&g_disarmed, __ATOMIC_RELAXED)) t_selector = 0;  // stepped aside
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
    case kSysPtrace:
      r = RawSyscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
      // PTRACE_TRACEME: from now on every trap would stop this process for
      // its tracer. Step aside for it (its exec'd image sees a tracer too).
      if (r == 0 && a[0] == 0) {
        RawSyscall6(kSysPrctl, kPrSetSyscallUserDispatch, 0 /* OFF */, 0, 0, 0);
        ShadowStepAside("traced (PTRACE_TRACEME)");
      }
      break;
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
      r = g_alt_base != nullptr ? TrapSigaltstack(uc, g, a) : RawSyscall6(nr, a[0], a[1]);
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
      if (static_cast<long>(a[0]) == kPrSetSeccomp) ShadowStepAside("seccomp filter installed");
      r = RawSyscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
      if (static_cast<long>(a[0]) == kPrSetVma && r == 0) ShadowDirty();
      if (static_cast<long>(a[0]) == kPrSetMdwe && r == 0) ShadowLimitsChanged();
      break;
    case kSysUnlink:
    case kSysUnlinkat:
    case kSysRename:
    case kSysRenameat:
    case kSysRenameat2:
      r = UnlinkOrRename(nr, a);
      break;
    case kSysSetrlimit:
    case kSysPrlimit64:
    case kSysCapset:
      // The model's RLIMIT_MEMLOCK and CAP_IPC_LOCK decide mlock's errors.
      r = RawSyscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
      if (r == 0 && (nr != kSysPrlimit64 || a[2] != 0) &&
          (nr != kSysPrlimit64 || a[0] == 0 || static_cast<int64_t>(a[0]) == Getpid())) {
        ShadowLimitsChanged();
      }
      break;
    case kSysSeccomp:
      // A seccomp filter would kill or trap the syscalls we make for the
      // model (process_vm_readv, PAGEMAP_SCAN, PROCMAP_QUERY…): step aside
      // for this process first, while we may still write its report.
      if (a[0] == 0 /* STRICT */ || a[0] == 1 /* FILTER */) {
        ShadowStepAside("seccomp filter installed");
      }
      if (RedirectPlain(g, nr)) return;
      r = RawSyscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
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
      if (IsModelledSyscall(nr) && ShadowReady()) {
        if (RedirectMm(uc, g, nr)) return;
        // No stack of ours for this thread: the event runs here, on our
        // signal stack or the thread's own.
        bool handled = false;
        SetTrapped(true);
        r = ModelledSyscall(nr, a, &handled);
        SetTrapped(false);
        if (!handled) r = RawSyscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
        break;
      }
      // Everything else, blocking calls included, runs after we return.
      SanitizeCallMask(g, nr);
      if (RedirectPlain(g, nr)) return;
      r = RawSyscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
      break;
    }
  }
  g[REG_RAX] = static_cast<greg_t>(r);
}

}  // namespace

// The trap path of an mm call, on this thread's stack of ours with signals
// blocked (vmashadow_mm_tramp): the same event the exported wrappers make.
extern "C" int64_t vmashadow_mm_dispatch(uint64_t nr, const uint64_t* a) {
  t_signals_blocked = true;
  SetTrapped(true);
  bool handled = false;
  int64_t r = ModelledSyscall(static_cast<long>(nr), a, &handled);
  SetTrapped(false);
  if (!handled) r = RawSyscall6(static_cast<long>(nr), a[0], a[1], a[2], a[3], a[4], a[5]);
  t_signals_blocked = false;
  return r;
}

namespace {}  // namespace

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
  // No program handler runs while ours does (it would find our frame under
  // it): every signal but SIGSYS waits until the handler has returned.
  act.mask = ~kSigsysBit;
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
  // The extended register state the mm trampoline saves around our code:
  // the components XCR0 enables (but AMX's) and the size CPUID gives them.
  unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_count(0xd, 0, &eax, &ebx, &ecx, &edx) && ebx >= 576) {
    uint32_t xlo = 0, xhi = 0;
    __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    vmashadow_xsave_mask =
        ((uint64_t{xhi} << 32) | xlo) & ~((uint64_t{1} << 17) | (uint64_t{1} << 18));
    vmashadow_xsave_bytes = ebx + 64;
  }
  // From now on every rt_sigaction traps; the handlers installed before us
  // (other constructors) get our restorer too.
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

bool SudSignalsBlocked() { return t_signals_blocked; }

void SudSetSignalsBlocked(bool blocked) { t_signals_blocked = blocked; }

uint64_t SudDeferredSignals() { return __atomic_load_n(&g_deferred_total, __ATOMIC_RELAXED); }

void SudResetCounts() { g_deferred_total = 0; }

void SudFlushDeferredSignals() {
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

void SudDisarmAll() {
  __atomic_store_n(&g_disarmed, true, __ATOMIC_RELAXED);
  t_selector = 0;
  const uint64_t me = AltOwnerId(Getpid(), RawSyscall6(kSysGettid));
  for (int i = 0; i < g_alt_slots; ++i) {
    const uint64_t owner = __atomic_load_n(&g_alt_owner[i], __ATOMIC_RELAXED);
    char* sel = g_selectors[i];
    if (owner == 0 || owner == me || sel == nullptr) continue;
    if (RawSyscall6(kSysTgkill, owner >> 32, owner & 0xffffffffu, 0) == -ESRCH) continue;
    // Its TLS may go away as it exits: a copy that fails, never a fault.
    char allow = 0;
    (void)SafeCopy(true, &allow, U(sel), 1);
  }
}

uint64_t SudRestorer() { return U(&vmashadow_restorer); }

bool SudTrampolineFrame(uint64_t ret, uint64_t* saved_sp_offset_ra, uint64_t* sp_offset,
                        bool* pc0) {
  if (ret == U(&vmashadow_mm_tramp_ret)) {
    // [rbp + 8] holds the program's stack pointer after pushfq (E - 8, see
    // vmashadow_mm_tramp): its return address is at E + 16, its own stack
    // pointer was E + 152.
    *saved_sp_offset_ra = 24;
    *sp_offset = 160;
    *pc0 = true;
    return true;
  }
  if (ret == U(&vmashadow_wrapper_ret)) {
    // [rbp + 8] holds the address of the saved mask, just below the return
    // address into the wrapper's caller.
    *saved_sp_offset_ra = 8;
    *sp_offset = 16;
    *pc0 = false;
    return true;
  }
  return false;
}

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
