// sud.h — the Syscall User Dispatch backend: sees the mm syscalls the
// exported wrappers cannot (glibc-internal calls, ld.so, raw `syscall`).
//
// Every syscall made outside libvmashadow.so's own text traps into a SIGSYS
// handler (PR_SET_SYSCALL_USER_DISPATCH with our text as the allowed range
// and a per-thread selector set to BLOCK). The handler decides and
// redirects; after it returns, the program's thread issues the call in a
// trampoline of ours on its own stack: plain calls directly, mm calls
// through the model on a stack of ours with signals blocked (sud.cc's file
// comment and README "The trap path"). Calls that need care
// (docs/interception.md): clone3 → ENOSYS so glibc falls back to clone;
// clone with a new stack continues in an allowed stub on the application's
// stack so the child can arm itself; fork and vfork run in the handler (vfork
// without CLONE_VM, so the child owns its stack); execve/exit_group write the
// report first; rt_sigaction and rt_sigprocmask keep SIGSYS virtual (never
// really blocked, the program's own handler kept aside and chained to);
// every handler gets our restorer so rt_sigreturn is never trapped. The
// thread's signal stack is the program's when it set one, ours otherwise.
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
// A slot's lower half is the thread's signal stack (when the program has
// none of its own); its upper half is where the mm trampoline runs our code.
// They must not overlap: both stacks are SS_AUTODISARM, so the kernel never
// thinks a thread is on them, and a signal arriving while our code runs
// (a program-sent SIGSYS, a fault) starts at the signal stack's top.
inline constexpr uint64_t kAltStackSize = kAltSlotSize / 2;

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
// Set by the exported wrappers' entry around their event, whose signals
// vmashadow_wrapper_entry has blocked already.
void SudSetSignalsBlocked(bool blocked);
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
// For a stack walk: ret is the return address of a frame of ours. True when
// it returns into one of our trampolines, whose frame pointer's slot 8
// bytes up holds the program's saved stack pointer S: the program's return
// address (or, *pc0, the instruction after the trapped syscall) is at
// S + *saved_sp_offset_ra and its stack pointer was S + *sp_offset.
bool SudTrampolineFrame(uint64_t ret, uint64_t* saved_sp_offset_ra, uint64_t* sp_offset, bool* pc0);
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
