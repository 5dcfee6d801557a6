// trace_writer.h — the preload's trace recorder (`vmashadow run --trace`,
// format in core/trace/trace_format.h).
//
// shadow.cc and hooks.cc call the Trace* functions below at the points where
// the model changes or is checked: an event's start, its arguments (mmap's
// file), its end with both results, the facts learnt from the kernel, the
// snapshots the model is reseeded from, every check and its outcome, forks
// and the image's end. Each is an inline test of one flag when tracing is off
// (VMASHADOW_TRACE unset), so the hooks cost a branch.
//
// When on, records are encoded (core/trace/trace_codec.h) into a static buffer and
// written with one write(2) per event (writev for snapshots) to an O_APPEND
// file: a process that dies leaves a trace that is valid up to its last
// event. Everything runs under the model lock (or single-threaded at start-up
// and in a fork child), allocates nothing and uses raw syscalls only.
//
// Files: VMASHADOW_TRACE=FILE; the root process (VMASHADOW_ROOT_PID) writes
// FILE, other processes FILE.<pid>; when that name exists (a later image of
// the same process after execve), FILE[.<pid>].exec<k> with the first free k.
#ifndef VMASHADOW_PRELOAD_TRACE_WRITER_H_
#define VMASHADOW_PRELOAD_TRACE_WRITER_H_

#include <cstddef>
#include <cstdint>

#include "core/mm/address_space.h"
#include "preload/shadow.h"

namespace vmashadow::preload {

namespace trace_internal {
// True while a trace file is being written. Read without the lock: it only
// goes from false to true at start-up and back on a write error.
extern bool g_on;

void Start(const AddressSpace* model, const MmParams& params, uint64_t arena_size,
           const char* kernel_release, const char* cmdline, size_t cmdline_len);
void Seed(const char* maps, size_t maps_len, const char* smaps, size_t smaps_len);
void SeedState(uint64_t start_brk, uint64_t brk, uint64_t start_stack, int lockall);
void LearnFaulted(uint64_t start);
void Reconcile(uint64_t addr, uint64_t observed_start);
void RangeLine(uint64_t addr, const char* kline, size_t klen, const char* mline, size_t mlen);
void FullCheck(const char* kmaps, size_t klen, const char* mmaps, size_t mlen);
void Note(bool divergence, const char* what, const char* model, size_t model_len,
          const char* kernel, size_t kernel_len, uint64_t lo, uint64_t hi);
void ForkPoint();
void ChildStart(bool follow);
// Why tracing stopped before the image's end (nullptr: it did not), and the
// error.
const char* StoppedEarly(int64_t* err);
void ImageEnd(const char* reason);
void BeginEvent();
void EndEvent();
void MapArgsOf(const MapArgs& m);
void ShmemInode(uint64_t addr, uint64_t inode, uint32_t dev_major, uint32_t dev_minor);
void FinishEvent(Call call, const uint64_t* args, int64_t kernel_ret, int64_t model_ret,
                 bool placement_ok, bool trapped, bool unmodelled);
}  // namespace trace_internal

inline bool TraceOn() { return __builtin_expect(trace_internal::g_on, false); }

// Start-up (the preload's constructor), once the model exists and before it
// is first seeded: opens the file from VMASHADOW_TRACE (nothing when unset)
// and writes the prefix and the HEADER. `model` is read to validate stack
// frames; `cmdline` is /proc/self/cmdline.
inline void TraceStart(const AddressSpace* model, const MmParams& params, uint64_t arena_size,
                       const char* kernel_release, const char* cmdline, size_t cmdline_len) {
  trace_internal::Start(model, params, arena_size, kernel_release, cmdline, cmdline_len);
}

// The model was just Clear()ed and seeded from these texts (SEED). The
// LearnFaulted calls that follow until TraceSeedState belong to the seed.
inline void TraceSeed(const char* maps, size_t maps_len, const char* smaps, size_t smaps_len) {
  if (TraceOn()) trace_internal::Seed(maps, maps_len, smaps, smaps_len);
}
// The seed is complete: brk, the stack start and a LockAll(lockall) applied.
inline void TraceSeedState(uint64_t start_brk, uint64_t brk, uint64_t start_stack, int lockall) {
  if (TraceOn()) trace_internal::SeedState(start_brk, brk, start_stack, lockall);
}
// About to call model.LearnFaulted(start).
inline void TraceLearnFaulted(uint64_t start) {
  if (TraceOn()) trace_internal::LearnFaulted(start);
}
// About to call model.ReconcileGrowsdown(addr, observed_start).
inline void TraceReconcile(uint64_t addr, uint64_t observed_start) {
  if (TraceOn()) trace_internal::Reconcile(addr, observed_start);
}
// One step of a range check: the kernel's line for the VMA covering or
// following addr, and the model's (length 0: none). Consecutive lines of one
// check become one CHECK record.
inline void TraceRangeLine(uint64_t addr, const char* kline, size_t klen, const char* mline,
                           size_t mlen) {
  if (TraceOn()) trace_internal::RangeLine(addr, kline, klen, mline, mlen);
}
// A full check: the kernel's /proc/self/maps and the model's rendering.
inline void TraceFullCheck(const char* kmaps, size_t klen, const char* mmaps, size_t mlen) {
  if (TraceOn()) trace_internal::FullCheck(kmaps, klen, mmaps, mlen);
}
// A divergence record (the two differing lines, up to their first '\n').
inline void TraceDivergence(const char* what, const char* model, size_t model_len,
                            const char* kernel, size_t kernel_len) {
  if (TraceOn()) trace_internal::Note(true, what, model, model_len, kernel, kernel_len, 0, 0);
}
// An unexplained change of [lo, hi).
inline void TraceUnexplained(const char* what, uint64_t lo, uint64_t hi) {
  if (TraceOn()) trace_internal::Note(false, what, "", 0, "", 0, lo, hi);
}
// The model is complete for a fork (the anon facts learnt): FORK_POINT.
inline void TraceForkPoint() {
  if (TraceOn()) trace_internal::ForkPoint();
}
// In a fork child: drop the parent's file; when `follow`, start the child's
// trace (origin kForkChild, pointing at the parent's last FORK_POINT).
inline const char* TraceStoppedEarly(int64_t* err) { return trace_internal::StoppedEarly(err); }
inline void TraceChildStart(bool follow) {
  if (TraceOn()) trace_internal::ChildStart(follow);
}
// The image ends ("exit", "exit_group", "execve").
inline void TraceImageEnd(const char* reason) {
  if (TraceOn()) trace_internal::ImageEnd(reason);
}
// An EventScope became active / ends (the event's records are written then).
inline void TraceBeginEvent() {
  if (TraceOn()) trace_internal::BeginEvent();
}
inline void TraceEndEvent() {
  if (TraceOn()) trace_internal::EndEvent();
}
// The MapArgs of the mmap being modelled (its file and MAP_32BIT address).
inline void TraceMapArgs(const MapArgs& m) {
  if (TraceOn()) trace_internal::MapArgsOf(m);
}
// About to call model.SetShmemInode(addr, ...) after the event's call.
inline void TraceShmemInode(uint64_t addr, uint64_t inode, uint32_t dev_major, uint32_t dev_minor) {
  if (TraceOn()) trace_internal::ShmemInode(addr, inode, dev_major, dev_minor);
}
// The event's results (EventScope::Finish), with its caller's stack.
inline void TraceFinishEvent(Call call, const uint64_t* args, int64_t kernel_ret, const Outcome& o,
                             bool placement_ok, bool trapped) {
  if (TraceOn()) {
    trace_internal::FinishEvent(call, args, kernel_ret, o.ret, placement_ok, trapped, false);
  }
}
// A call the model does not replay (EventScope::FinishUnmodelled).
inline void TraceFinishUnmodelled(Call call, const uint64_t* args, int64_t kernel_ret,
                                  bool trapped) {
  if (TraceOn()) trace_internal::FinishEvent(call, args, kernel_ret, 0, false, trapped, true);
}

}  // namespace vmashadow::preload

#endif  // VMASHADOW_PRELOAD_TRACE_WRITER_H_
