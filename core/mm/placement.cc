// placement.cc — where a new mapping goes: get_unmapped_area() and the x86-64
// allocators behind it (mm/mmap.c __get_unmapped_area, mm/huge_memory.c
// __thp_get_unmapped_area, arch/x86/kernel/sys_x86_64.c; 6.12, and 6.18's
// "!file" condition for the anonymous THP aligner). docs/placement.md.
#include "core/mm/address_space.h"
#include "core/mm/internal.h"

namespace vmashadow {

namespace {

// DEFAULT_MAP_WINDOW on x86-64: the 47-bit user window, on 4- and 5-level.
constexpr uint64_t kDefaultMapWindow = 0x7ffffffff000;

// mmap_address_hint_valid() (arch/x86/kernel/sys_x86_64.c).
bool HintValid(const AddressSpace& as, uint64_t addr, uint64_t len) {
  if (as.params().task_size - len < addr) return false;
  return (addr > kDefaultMapWindow) == (addr + len > kDefaultMapWindow);
}

// The hint is free for len bytes: no VMA, or addr+len <= vm_start_gap(next).
bool HintFits(const AddressSpace& as, uint64_t addr, uint64_t len) {
  const Vma* v = as.tree().FindVma(addr);
  if (v == nullptr) return true;
  uint64_t gap = v->start;
  if (v->flags & kVmGrowsdown) {
    gap = v->start > as.params().stack_guard_gap ? v->start - as.params().stack_guard_gap : 0;
  }
  return addr + len <= gap;
}

// arch_get_unmapped_area() (bottom-up), used for MAP_32BIT and as the
// fallback of the top-down allocator.
int64_t BottomUp(const AddressSpace& as, uint64_t addr, uint64_t len, uint64_t pgoff, int flags) {
  uint64_t begin;
  uint64_t end;
  if (flags & abi::kMap32Bit) {
    begin = 0x40000000;  // randomised by up to 32 MiB per call with PF_RANDOMIZE
    end = 0x80000000;
  } else {
    begin = as.params().mmap_legacy_base;
    end = addr > kDefaultMapWindow ? as.params().task_size : kDefaultMapWindow;
  }
  if (len > end) return -ENOMEM;
  if (addr != 0) {
    addr = PageAlign(addr);
    if (HintValid(as, addr, len) && end - len >= addr && HintFits(as, addr, len)) {
      return static_cast<int64_t>(addr);
    }
  }
  UnmappedAreaInfo info;
  info.length = len;
  info.low_limit = begin < as.params().mmap_min_addr ? as.params().mmap_min_addr : begin;
  info.high_limit = end;
  info.align_offset = pgoff << kPageShift;
  info.stack_guard_gap = as.params().stack_guard_gap;
  const uint64_t r = as.tree().UnmappedArea(info);
  return r == kNoGap ? -ENOMEM : static_cast<int64_t>(r);
}

}  // namespace

// arch_get_unmapped_area_topdown() (arch/x86/kernel/sys_x86_64.c, 6.12), or
// the bottom-up allocator when the layout is legacy.
int64_t AddressSpace::Impl::PlainArea(const AS& as, uint64_t addr, uint64_t len, uint64_t pgoff,
                                      int flags) {
  const MmParams& p = as.params();
  if (len > p.task_size) return -ENOMEM;
  if (flags & abi::kMapFixed) return static_cast<int64_t>(addr);
  if (!p.topdown || (flags & abi::kMap32Bit)) return BottomUp(as, addr, len, pgoff, flags);
  if (addr != 0) {
    addr = PageDown(addr);
    if (HintValid(as, addr, len) && HintFits(as, addr, len)) return static_cast<int64_t>(addr);
  }
  UnmappedAreaInfo info;
  info.length = len;
  info.low_limit = (flags & abi::kMapAbove4G) ? (uint64_t{1} << 32) : kPageSize;
  if (info.low_limit < p.mmap_min_addr) info.low_limit = p.mmap_min_addr;
  info.high_limit = p.mmap_base;
  if (addr > kDefaultMapWindow) info.high_limit += p.task_size - kDefaultMapWindow;
  info.stack_guard_gap = p.stack_guard_gap;
  const uint64_t r = as.tree().UnmappedAreaTopdown(info);
  if (r != kNoGap) return static_cast<int64_t>(r);
  return BottomUp(as, addr, len, pgoff, flags);
}

// __thp_get_unmapped_area() (mm/huge_memory.c, 6.12): pads the request by
// 2 MiB and places the mapping so that (addr - off) is 2 MiB aligned. Sets
// *fell_back when the caller must use the plain allocator instead.
int64_t AddressSpace::Impl::ThpArea(const AS& as, uint64_t addr, uint64_t len, uint64_t off,
                                    int flags, bool* fell_back) {
  *fell_back = true;
  const uint64_t size = kPmdSize;
  const uint64_t off_end = off + len;
  const uint64_t off_align = (off + size - 1) & ~(size - 1);
  if (off_end <= off_align || off_end - off_align < size) return 0;
  const uint64_t len_pad = len + size;
  if (len_pad < len || off + len_pad < off) return 0;
  const int64_t r = PlainArea(as, addr, len_pad, off >> kPageShift, flags);
  if (r < 0) return 0;
  *fell_back = false;
  const uint64_t ret = static_cast<uint64_t>(r);
  if (ret == addr) return static_cast<int64_t>(addr);
  const uint64_t off_sub = (off - ret) & (size - 1);
  if (as.params().topdown && off_sub == 0) {
    return static_cast<int64_t>(ret + size);
  }
  return static_cast<int64_t>(ret + off_sub);
}

// __get_unmapped_area() (mm/mmap.c, 6.12/6.18).
int64_t AddressSpace::GetUnmappedArea(const File* file, const FileDesc* desc, uint64_t addr,
                                      uint64_t len, uint64_t pgoff, int flags) const {
  const MmParams& p = params_;
  if (len > p.task_size) return -ENOMEM;
  FileKind kind = FileKind::kRegular;
  if (file != nullptr) {
    kind = file->kind;
  } else if (desc != nullptr && !(flags & abi::kMapAnonymous)) {
    kind = desc->kind;
  }
  const bool has_file = file != nullptr || (desc != nullptr && !(flags & abi::kMapAnonymous));
  if (!has_file) pgoff = 0;
  int64_t r;
  bool fell_back = true;
  if (has_file && kind == FileKind::kRegularThp) {
    // thp_get_unmapped_area(): the file THP aligner, then the plain one.
    r = Impl::ThpArea(*this, addr, len, pgoff << kPageShift, flags, &fell_back);
    if (fell_back) r = Impl::PlainArea(*this, addr, len, pgoff, flags);
  } else if (has_file && kind == FileKind::kHugetlb) {
    // hugetlb_get_unmapped_area(): 2 MiB aligned.
    if (flags & abi::kMapFixed) {
      r = (addr & (kPmdSize - 1)) ? -EINVAL : static_cast<int64_t>(addr);
    } else {
      UnmappedAreaInfo info;
      info.length = len;
      info.low_limit = p.mmap_min_addr > kPageSize ? p.mmap_min_addr : kPageSize;
      info.high_limit = p.mmap_base;
      info.align_mask = kPmdSize - 1;
      info.stack_guard_gap = p.stack_guard_gap;
      const uint64_t x = tree_.UnmappedAreaTopdown(info);
      r = x == kNoGap ? -ENOMEM : static_cast<int64_t>(x);
    }
  } else if (!has_file && addr == 0 && (flags & abi::kMapShared) == 0 &&
             (len & (kPmdSize - 1)) == 0) {
    // The anonymous THP aligner (6.12: !addr && len % PMD == 0; 6.18 adds
    // !file, which the branch condition already implies here).
    r = Impl::ThpArea(*this, addr, len, 0, flags, &fell_back);
    if (fell_back) r = Impl::PlainArea(*this, addr, len, pgoff, flags);
  } else {
    // Plain files, shmem (no shmem THP here) and shared anonymous memory.
    r = Impl::PlainArea(*this, addr, len, pgoff, flags);
  }
  if (r < 0) return r;
  const uint64_t a = static_cast<uint64_t>(r);
  if (a > p.task_size - len) return -ENOMEM;
  if (!PageAligned(a)) return -EINVAL;
  // security_mmap_addr(): cap_mmap_addr() below dac_mmap_min_addr without
  // CAP_SYS_RAWIO; the LSM minimum (CONFIG_LSM_MMAP_MIN_ADDR) is not enforced
  // for root here.
  if (a < p.dac_mmap_min_addr && !p.cap_sys_rawio) return -EPERM;
  return r;
}

}  // namespace vmashadow
