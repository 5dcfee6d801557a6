// apply.h — the one path from a raw memory-mapping syscall to the model.
//
// The preload (live calls), replay (recorded calls) and any other backend
// hand the syscall's six raw arguments to ApplyCall(), which makes the
// AddressSpace call the kernel's entry point would: the argument
// conventions (which argument is which, the int-sized ones, mprotect's
// pkey of -1, mlock's flags of 0) live here only.
//
// Depends on abi/call.h and mm/address_space.h; preload-safe.
#ifndef VMASHADOW_CORE_MM_APPLY_H_
#define VMASHADOW_CORE_MM_APPLY_H_

#include <cstdint>

#include "core/abi/call.h"
#include "core/mm/address_space.h"

namespace vmashadow::mm {

// mmap's arguments (addr, len, prot, flags, fd, off) as MapArgs. file: what
// the caller knows of the fd (nullptr: not a usable fd, EBADF unless
// MAP_ANONYMOUS); kernel_addr: the kernel's random MAP_32BIT choice, or 0.
MapArgs MapArgsOf(const uint64_t args[6], const FileDesc* file, uint64_t kernel_addr);

// Applies `call` with its raw arguments to the model and returns the
// model's outcome. file and kernel_addr matter for mmap only (see
// MapArgsOf). A call the model does not replay (!CallIsModelled) leaves the
// model alone and returns -ENOSYS.
Outcome ApplyCall(AddressSpace& as, Call call, const uint64_t args[6], const FileDesc* file,
                  uint64_t kernel_addr);

}  // namespace vmashadow::mm

#endif  // VMASHADOW_CORE_MM_APPLY_H_
