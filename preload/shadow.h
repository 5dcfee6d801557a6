// shadow.h — the preload's state, shared by the exported wrappers (hooks.cc)
// and the machinery behind them (shadow.cc).
//
// One process-wide model (core's AddressSpace over an arena we mmap ourselves)
// guarded by one spinlock. A wrapper opens an EventScope: it marks this
// thread as inside a hook and takes the lock. No program code may run on the
// thread while it holds the lock (a handler that longjmps out would leave it
// held): under Syscall User Dispatch every program handler is wrapped and
// defers a signal that finds the thread inside a hook until the event ends;
// with the exported wrappers alone the event blocks every signal with a raw
// rt_sigprocmask instead. The wrapper then issues the real syscall, applies the same
// call to the model and hands both results to Finish(), which counts hits and
// misses and runs the configured check. When the preload is not ready (before
// the constructor, after the destructor, VMASHADOW_DISABLE, AT_SECURE) or the
// thread is already inside a hook, the scope is inactive and the wrapper only
// passes the call through (a re-entered hook also marks the model dirty, so it
// is resynchronised from the kernel at the next event).
#ifndef VMASHADOW_PRELOAD_SHADOW_H_
#define VMASHADOW_PRELOAD_SHADOW_H_

#include <cstddef>
#include <cstdint>

#include "core/mm/address_space.h"
#include "core/trace/trace_format.h"

namespace vmashadow::preload {

// The calls we see, for the per-call counters: the trace format's numbering
// (core/trace/trace_format.h), so events are recorded as they are counted.
using Call = TraceCall;

class EventScope {
 public:
  // args: the raw syscall arguments, for divergence records.
  EventScope(Call call, uint64_t a0, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0,
             uint64_t a4 = 0, uint64_t a5 = 0);
  ~EventScope();
  EventScope(const EventScope&) = delete;
  EventScope& operator=(const EventScope&) = delete;

  // False: pass the call through without touching the model.
  bool active() const { return active_; }
  AddressSpace& model();
  // Compares the kernel's result (value or -errno) with the model's outcome,
  // then runs the configured check. placement_ok: the call's return may be
  // counted as a placement (false for MAP_32BIT, whose address is random).
  void Finish(int64_t kernel_ret, const Outcome& o, bool placement_ok = true);
  // A MAP_SHARED|MAP_ANONYMOUS mapping now starts at addr: learn the shmem
  // inode the kernel gave it (PROCMAP_QUERY) and tell the model.
  void LearnShmemInode(uint64_t addr);
  // Before a call whose outcome depends on anon state (merges, mremap's
  // pgoff): gives every private VMA meeting [lo, hi) (and one neighbour on
  // each side) that the kernel holds anonymous pages in an anon_vma in the
  // model too. Pages are written without syscalls, so only the kernel
  // knows (PAGEMAP_SCAN, stopping at the first such page).
  void LearnAnon(uint64_t lo, uint64_t hi);
  // For a new mapping [lo, hi) with protection `prot` (anonymous or not):
  // when VMAs touch it on both sides, a merge joins all three only if their
  // anon_vmas agree; learn those two (unless one of them cannot merge with
  // it anyway: other permissions, or a file where the new one has none or
  // the other way round).
  void LearnAnonAround(uint64_t lo, uint64_t hi, int prot, bool anon);
  // Before a call that zaps pages or frees page tables in [lo, hi): learns
  // which of its pages are present (PAGEMAP_SCAN, bounded), so the model
  // knows the tables a surviving neighbour will keep.
  void LearnPages(uint64_t lo, uint64_t hi);
  // A call the model does not replay (shmat, shmdt, remap_file_pages, …):
  // counts it and resynchronises the model from the kernel before the next
  // event or check.
  void FinishUnmodelled(int64_t kernel_ret);
  // The range [lo, hi) the event changed (for the `every` range check).
  void SetRange(uint64_t lo, uint64_t hi) {
    range_lo_ = lo;
    range_hi_ = hi;
  }

 private:
  // Releases the lock, then lets deferred signals in (or unblocks them).
  void Leave();

  Call call_;
  uint64_t args_[6];
  uint64_t range_lo_ = 0;
  uint64_t range_hi_ = 0;
  uint64_t saved_mask_ = 0;
  bool active_ = false;
  bool blocked_ = false;  // signals blocked (no dispatch): restore saved_mask_
};

// --- Used by the Syscall User Dispatch backend (sud.cc). ---

// Runs one mm syscall the way the exported wrappers do (kernel call + model
// update under the lock) and returns the kernel's raw result. *handled is
// false when nr is not a memory-mapping call.
int64_t ModelledSyscall(long nr, const uint64_t* a, bool* handled);
// True for the syscalls ModelledSyscall handles (the same list).
bool IsModelledSyscall(long nr);

// True once the preload is seeded and watching this process.
bool ShadowReady();
// True while this thread is inside an event (holding the model lock): a
// signal arriving now is deferred until the event ends (sud.cc).
bool InHook();
// A new thread of this process is running (its anon faults may race ours).
void NoteThreadStarted();
// The process whose model this memory holds (differs from getpid() in a
// CLONE_VM child such as posix_spawn's or vfork's).
int ShadowOwnerPid();
// Marks the events of this thread as trapped (for the per-backend counts).
void SetTrapped(bool trapped);
// Takes / releases the model lock around a fork done by the backend, so the
// child's model is consistent. Signals must already be blocked.
void ForkLock();
void ForkUnlock();
// In a fork child (its own memory): the model becomes the child's view, the
// counters and the report start afresh; steps aside when children are not
// followed, and for a vfork child (vfork_child: it only runs until its
// execve, on its parent's behalf; the image it execs is monitored on its
// own). Idempotent per pid.
void ChildAfterFork(bool vfork_child = false);
// This process can no longer be monitored (why: "traced (PTRACE_TRACEME)"):
// its report says so and the model stops; the program runs on unharmed.
void ShadowStepAside(const char* why);
// True when the model maps the file (dev, inode) (takes the model lock):
// its name in maps changes when it is unlinked or renamed.
bool ShadowMapsFile(uint64_t st_dev, uint64_t inode);
// The program changed a resource limit, its capabilities or MDWE
// (setrlimit, prlimit64 on itself, capset, PR_SET_MDWE): the model's
// RLIMIT_MEMLOCK/DATA/AS/STACK, CAP_IPC_LOCK/CAP_SYS_RAWIO and MDWE are read
// again (takes the model lock).
void ShadowLimitsChanged();
// The process is about to leave this image: final check and the report
// (reason: "exit_group" or "execve"). No-op in a CLONE_VM child.
void ImageEnding(const char* reason);
// A fatal signal: writes what we have (complete: false). Async-signal-safe,
// takes no lock.
void EmergencyReport(const char* reason);
// The kernel changed the address space in a way we did not model (a 32-bit
// call, prctl(PR_SET_VMA), mbind): resynchronise before the next event.
void ShadowDirty();
// The kernel's VMA covering addr (one PROCMAP_QUERY): [*start, *end). False
// when none covers it or the query is unavailable. For reading the
// program's memory only where the kernel says it is mapped.
bool KernelVmaBounds(uint64_t addr, uint64_t* start, uint64_t* end);
// Prints one line "vmashadow: <text>" to stderr, at most once per key.
void NoteOnce(int key, const char* text);

}  // namespace vmashadow::preload

#endif  // VMASHADOW_PRELOAD_SHADOW_H_
