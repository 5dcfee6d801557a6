// shadow.h — the preload's state, shared by the exported wrappers (hooks.cc)
// and the machinery behind them (shadow.cc).
//
// One process-wide model (core's AddressSpace over an arena we mmap ourselves)
// guarded by one spinlock. A wrapper opens an EventScope: it blocks every
// signal with a raw rt_sigprocmask, takes the lock, and marks this thread as
// inside a hook; the wrapper then issues the real syscall, applies the same
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

#include "core/address_space.h"

namespace vmashadow::preload {

// The calls we see, for the per-call counters.
enum class Call : int {
  kMmap,
  kMunmap,
  kMprotect,
  kPkeyMprotect,
  kMremap,
  kMadvise,
  kBrk,
  kMlock,
  kMlock2,
  kMunlock,
  kMlockall,
  kMunlockall,
  kMseal,
  kCount,
};

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

 private:
  Call call_;
  uint64_t args_[6];
  uint64_t saved_mask_ = 0;
  bool active_ = false;
};

}  // namespace vmashadow::preload

#endif  // VMASHADOW_PRELOAD_SHADOW_H_
