// call.h — the memory-mapping syscalls vmashadow sees, numbered once: the
// preload counts them in this order, the trace records them by this number
// (core/trace/trace_format.h: TraceCall), mm::ApplyCall() feeds them to the
// model. Depends on <cstdint> only; preload-safe.
#ifndef VMASHADOW_CORE_ABI_CALL_H_
#define VMASHADOW_CORE_ABI_CALL_H_

#include <cstddef>
#include <cstdint>

namespace vmashadow {

enum class Call : uint8_t {
  kMmap = 0,
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
  // Seen and counted, not modelled: the model is resynchronised after them.
  kProcessMadvise,
  kShmat,
  kShmdt,
  kRemapFilePages,
  kCount,
};

// The syscall name of a call ("mmap", ...); "?" when out of range.
inline const char* CallName(Call call) {
  constexpr const char* kNames[] = {
      "mmap",  "munmap",          "mprotect", "pkey_mprotect", "mremap",           "madvise",
      "brk",   "mlock",           "mlock2",   "munlock",       "mlockall",         "munlockall",
      "mseal", "process_madvise", "shmat",    "shmdt",         "remap_file_pages",
  };
  static_assert(sizeof(kNames) / sizeof(kNames[0]) == static_cast<size_t>(Call::kCount));
  const auto i = static_cast<size_t>(call);
  return i < static_cast<size_t>(Call::kCount) ? kNames[i] : "?";
}

// Whether the model replays the call (mm::ApplyCall); the others are counted
// and the model is resynchronised from the kernel after them.
constexpr bool CallIsModelled(Call call) { return call < Call::kProcessMadvise; }

}  // namespace vmashadow

#endif  // VMASHADOW_CORE_ABI_CALL_H_
