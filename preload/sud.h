// sud.h — the Syscall User Dispatch backend: sees the mm syscalls the
// exported wrappers cannot (glibc-internal calls, ld.so, raw `syscall`).
//
// Every syscall made outside libvmashadow.so's own text traps into a SIGSYS
// handler (PR_SET_SYSCALL_USER_DISPATCH with our text as the allowed range
// and a per-thread selector set to BLOCK). The handler runs mm calls through
// the model (shadow.h's ModelledSyscall) and re-issues the rest unchanged,
// except those that need care (docs/interception.md): clone3 → ENOSYS so glibc
// falls back to clone; clone with a new stack continues in an allowed stub
// on the application's stack so the child can arm itself; fork and vfork run
// in the handler (vfork without CLONE_VM, so the child owns its stack);
// execve/exit_group write the report first; rt_sigaction and rt_sigprocmask
// keep SIGSYS virtual (never really blocked, the program's own handler kept
// aside and chained to); every handler gets our restorer so rt_sigreturn is
// never trapped. The handler runs on a signal stack of ours in every thread;
// the program's sigaltstack calls are kept virtual (its SA_ONSTACK handlers
// run on our stack, which is at least as large as any it sets, up to 128 KiB).
#ifndef VMASHADOW_PRELOAD_SUD_H_
#define VMASHADOW_PRELOAD_SUD_H_

#include <cstdint>

namespace vmashadow::preload {

// Our own signal stacks: one slot per live thread (a trap pushes >= 3.4 KiB,
// ~11 KiB with AMX, and our handler runs the model on top: a thread with a
// small stack must not pay that). The caller maps slots * kAltSlotSize bytes
// (MAP_NORESERVE: only the pages used cost memory) before seeding the model:
// kAltSlots, or kAltSlotsLimited when RLIMIT_AS is finite (address space the
// program may need).
inline constexpr int kAltSlots = 1024;
inline constexpr int kAltSlotsLimited = 64;
inline constexpr uint64_t kAltSlotSize = uint64_t{128} << 10;

// Installs the SIGSYS handler and arms the calling thread (dispatch and its
// signal stack, a slot of alt_region, which holds alt_slots of them). False
// (and *why) when the kernel refuses (pre-5.11, or disabled).
bool SudStart(const char** why, char* alt_region, int alt_slots);
// libvmashadow.so's executable range [*lo, *hi): the code dispatch lets
// through, and the frames a trace skips. False when it cannot be found.
bool OwnTextRange(uint64_t* lo, uint64_t* hi);

// Arms the calling thread (a new thread, a fork child: the kernel clears
// dispatch in every new task) and gives it a signal stack.
void SudArmThisThread();
// In a fork child, before SudArmThisThread: the parent's other threads are
// gone, so are their signal stack slots; this thread keeps its own.
void SudAfterFork();
// True while the calling thread runs an mm event for the trap path, whose
// handler already blocked every signal (but SIGSYS) for it: the event need
// not block them again.
bool SudSignalsBlocked();
// Re-sends, to this thread, a SIGSYS the program sent it while it was
// inside an event. Called by an event after it released the lock; cheap
// when none.
void SudFlushDeferredSignals();
// How many program-sent SIGSYS were deferred out of events so far in this
// process (the report's "signals_deferred"); SudResetCounts starts a fork
// child from zero.
uint64_t SudDeferredSignals();
void SudResetCounts();
// Every armed thread of this process stops trapping (its selector byte
// allows everything): the process is no longer monitored.
void SudDisarmAll();
// Our rt_sigreturn restorer (inside the allowed range), for handlers we
// install ourselves.
uint64_t SudRestorer();
// We installed a handler of our own for sig (fatal-signal reports): the
// program's queries still see SIG_DFL until it installs its own.
// The program setting SIG_DFL for such a signal gets our handler instead
// (SudSetFatalAction: the action to install).
void SudNoteOwnFatalHandler(int sig);
void SudSetFatalAction(uint64_t handler, uint64_t flags);

}  // namespace vmashadow::preload

#endif  // VMASHADOW_PRELOAD_SUD_H_
