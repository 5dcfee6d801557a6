// mmap.h — what mmap's flags alone say about a call, for callers that must
// prepare or judge it (the preload learns the pages a MAP_FIXED replaces,
// and does not count a MAP_32BIT address as a predicted placement).
// Depends on abi/linux_abi.h; preload-safe.
#ifndef VMASHADOW_CORE_MM_MMAP_H_
#define VMASHADOW_CORE_MM_MMAP_H_

#include "core/abi/linux_abi.h"

namespace vmashadow::mm {

// mm/mmap.c: do_mmap(): MAP_FIXED_NOREPLACE implies MAP_FIXED, but only
// MAP_FIXED unmaps what lies in the range (NOREPLACE fails with EEXIST).
constexpr bool MmapReplacesMappings(int flags) {
  return (flags & (abi::kMapFixed | abi::kMapFixedNoreplace)) == abi::kMapFixed;
}

// arch/x86/kernel/sys_x86_64.c: arch_get_unmapped_area*(): a MAP_32BIT
// mapping that is not fixed goes to a window whose start is randomised per
// call, so its address cannot be predicted (the caller passes the kernel's,
// MapArgs::kernel_addr).
constexpr bool MmapPlacementIsRandom(int flags) {
  return (flags & abi::kMap32Bit) != 0 && (flags & (abi::kMapFixed | abi::kMapFixedNoreplace)) == 0;
}

}  // namespace vmashadow::mm

#endif  // VMASHADOW_CORE_MM_MMAP_H_
