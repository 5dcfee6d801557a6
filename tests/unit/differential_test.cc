// differential_test.cc — random operations applied to the AddressSpace model
// and to a naive page-array reference, compared after every step.
//
// The reference knows nothing about merging or splitting. It keeps one record
// per 4 KiB page of a 4096-page window (mapped?, the full vm_flags word
// including VM_ACCOUNT, the backing object and the page's offset in it) and
// applies each call page by page with the simple rules of docs/merge-split.md
// docs/merge-split.md and docs/errno-order.md (errno order, "not rolled back" prefixes, holes
// skipped by madvise, mseal's all-or-nothing check). After every call:
//   * the return value (address, 0 or -errno) must be the reference's;
//   * every page of the window must match the model (the VMA that contains
//     it: flags, file id, pgoff + (page - vma.start));
//   * every page whose state changed, and every VMA boundary that appeared
//     or vanished, must lie in Outcome's changed range;
//   * AddressSpace::Validate() passes, broken() is false, map_count counts
//     the VMA list;
//   * anon_vma: a page written (or populated for write) as private memory
//     sits in a VMA that has an anon_vma, and a fault that instantiates no
//     private page creates none (the converse is not history-independent:
//     anon_vmas spread by merging);
//   * a new mapping, a single-VMA mremap destination and a VMA grown in place
//     are one VMA;
//   * merges at the two edges of the call's range, where the kernel tries
//     them whatever happened before: a new mapping's edges, and the edges of
//     a flag change whose edge page did change and sat on the old VMA's own
//     boundary. There the edge must be merged iff the anon_vma rule (docs/merge-split.md#anon_vma)
//     of the profile allows it (pages, flags and pgoff must continue too). munmap and failed calls
//     leave pairs the kernel never re-merges, so the interior of ranges and other pairs are not
//     checked.
// Where the kernel decides by VMA rather than by page, the reference takes the
// model's VMAs *before* the call as input: whether a private anonymous VMA has
// an anon_vma (mprotect dropping VM_ACCOUNT on RW -> R,
// docs/merge-split.md#mprotect-and-vm_account; the pgoff a moved block gets,
// docs/merge-split.md#per-call-rules), and for mremap the extent of the VMA at addr (EFAULT past
// its end, growth in place only at its end, the 6.17 multi-VMA path). The edge checks read the anon
// states before the call the same way.
//
// Calls: mmap (MAP_FIXED / MAP_FIXED_NOREPLACE; private, shared and droppable
// anonymous memory, six files: shared, read-only, noexec, write-only,
// append), munmap, mprotect, madvise (flag-changing advices, WILLNEED, COLD,
// PAGEOUT, DONTNEED, FREE, POPULATE_READ/WRITE), mlock, mlock2(ONFAULT),
// munlock, mseal, page faults, mremap (in place, and MREMAP_FIXED moves inside
// the window; no sealed pages, no DONTUNMAP move) and fork (the run goes on in
// the child). Not exercised: placement, brk, stacks, guard regions, mlockall,
// map_count limits.
//
// Seeds are fixed; VMASHADOW_SEED=<n> adds one more run, VMASHADOW_DIFF_OPS=<n>
// sets the operations per seed, VMASHADOW_DIFF_STATS=1 prints calls per kind.
// On failure the seed, the step, the last 40 operations and both states around
// the call are printed. Scripted sequences and reduced model bugs found by the
// random run follow at the end.
#include <gtest/gtest.h>

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/abi/kernel_profile.h"
#include "core/abi/linux_abi.h"
#include "core/mm/address_space.h"
#include "core/mm/arena.h"
#include "core/mm/mm_types.h"

namespace vmashadow {
namespace {

using namespace abi;

constexpr uint64_t kWinPages = 4096;
constexpr uint64_t kBase = 0x100000000;  // 4 GiB; the window is [4 GiB, 4 GiB + 16 MiB)
constexpr uint64_t kMmapBase = 0x7f0000000000;
constexpr size_t kLogDepth = 40;

uint64_t PageAddr(uint64_t page) { return kBase + page * kPageSize; }

// The files mmap may be handed. 1 and 2 are two open() calls of one inode (2
// read-only), 3 another file, 4 a file on a noexec mount, 5 an O_WRONLY fd,
// 6 an O_APPEND file open for writing. None has a close hook.
constexpr int kFiles = 6;
const FileDesc* FileFor(int fd) {
  static const FileDesc* files = [] {
    static FileDesc f[kFiles + 1];
    f[1].id = 1;
    f[1].inode = 11;
    f[1].dev_major = 8;
    f[1].dev_minor = 1;
    f[1].writable = true;
    f[1].path = "/data/f1";
    f[2] = f[1];
    f[2].id = 2;
    f[2].writable = false;
    f[3] = f[1];
    f[3].id = 3;
    f[3].inode = 13;
    f[3].path = "/data/f3";
    f[4] = f[3];
    f[4].id = 4;
    f[4].inode = 14;
    f[4].noexec_mount = true;
    f[4].path = "/noexec/f4";
    f[5] = f[3];
    f[5].id = 5;
    f[5].readable = false;
    f[6] = f[3];
    f[6].id = 6;
    f[6].inode = 16;
    f[6].append = true;
    f[6].path = "/data/log";
    return f;
  }();
  return fd >= 1 && fd <= kFiles ? &files[fd] : nullptr;
}

// The kernel's LEGACY_MAP_MASK (include/linux/mman.h, 6.12): the flags
// MAP_SHARED_VALIDATE accepts on a file without ->mmap_validate.
constexpr int kKernelLegacyMapMask = kMapShared | kMapPrivate | kMapFixed | kMapAnonymous |
                                     kMapDenywrite | kMapExecutable | kMapUninitialized |
                                     kMapGrowsdown | kMapLocked | kMapNoreserve | kMapPopulate |
                                     kMapNonblock | kMapStack | kMapHugetlb | kMap32Bit |
                                     kMapAbove4G | (21 << kMapHugeShift) | (30 << kMapHugeShift);

// ---------------------------------------------------------------------------
// Operations.

enum class OpKind { kMap, kUnmap, kProtect, kAdvise, kLock, kUnlock, kSeal, kTouch, kRemap, kFork };

struct Op {
  OpKind kind = OpKind::kMap;
  uint64_t addr = 0;
  uint64_t len = 0;
  int prot = 0;
  int flags = 0;  // mmap (MAP_ANONYMOUS added when fd == 0), mlock2 or mremap flags
  int advice = 0;
  int fd = 0;  // 0: anonymous; 1..kFiles: FileFor(fd)
  uint64_t offset = 0;
  bool write = false;
  uint64_t seal_flags = 0;
  uint64_t new_len = 0;  // mremap
  uint64_t new_addr = 0;
};

std::string PageRef(uint64_t addr) {
  char buf[64];
  if (addr >= kBase && addr < kBase + kWinPages * kPageSize) {
    const uint64_t off = addr - kBase;
    if (off % kPageSize == 0) {
      std::snprintf(buf, sizeof(buf), "p%" PRIu64, off / kPageSize);
    } else {
      std::snprintf(buf, sizeof(buf), "p%" PRIu64 "+%" PRIu64, off / kPageSize, off % kPageSize);
    }
  } else {
    std::snprintf(buf, sizeof(buf), "0x%" PRIx64, addr);
  }
  return buf;
}

std::string ProtStr(int prot) {
  std::string s;
  s += prot & kProtRead ? 'r' : '-';
  s += prot & kProtWrite ? 'w' : '-';
  s += prot & kProtExec ? 'x' : '-';
  if (prot & ~(kProtRead | kProtWrite | kProtExec)) {
    char buf[16];
    std::snprintf(buf, sizeof(buf), "|%#x", prot & ~(kProtRead | kProtWrite | kProtExec));
    s += buf;
  }
  return s;
}

std::string MapFlagsStr(int flags) {
  static const struct {
    int bit;
    const char* name;
  } kNames[] = {{kMapFixed, "FIXED"},
                {kMapAnonymous, "ANON"},
                {kMapLocked, "LOCKED"},
                {kMapNoreserve, "NORESERVE"},
                {kMapPopulate, "POPULATE"},
                {kMapStack, "STACK"},
                {kMapFixedNoreplace, "NOREPLACE"},
                {kMap32Bit, "32BIT"},
                {kMapGrowsdown, "GROWSDOWN"}};
  std::string s;
  switch (flags & kMapType) {
    case kMapShared:
      s = "SHARED";
      break;
    case kMapPrivate:
      s = "PRIVATE";
      break;
    case kMapSharedValidate:
      s = "SHARED_VALIDATE";
      break;
    case kMapDroppable:
      s = "DROPPABLE";
      break;
    default:
      s = "type" + std::to_string(flags & kMapType);
  }
  int rest = flags & ~kMapType;
  for (const auto& n : kNames) {
    if (rest & n.bit) {
      s += "|";
      s += n.name;
      rest &= ~n.bit;
    }
  }
  if (rest != 0) {
    char buf[24];
    std::snprintf(buf, sizeof(buf), "|%#x", rest);
    s += buf;
  }
  return s;
}

const char* AdviceName(int advice) {
  switch (advice) {
    case kMadvNormal:
      return "NORMAL";
    case kMadvRandom:
      return "RANDOM";
    case kMadvSequential:
      return "SEQUENTIAL";
    case kMadvWillneed:
      return "WILLNEED";
    case kMadvDontneed:
      return "DONTNEED";
    case kMadvFree:
      return "FREE";
    case kMadvDontfork:
      return "DONTFORK";
    case kMadvDofork:
      return "DOFORK";
    case kMadvMergeable:
      return "MERGEABLE";
    case kMadvUnmergeable:
      return "UNMERGEABLE";
    case kMadvHugepage:
      return "HUGEPAGE";
    case kMadvNohugepage:
      return "NOHUGEPAGE";
    case kMadvDontdump:
      return "DONTDUMP";
    case kMadvDodump:
      return "DODUMP";
    case kMadvWipeonfork:
      return "WIPEONFORK";
    case kMadvKeeponfork:
      return "KEEPONFORK";
    case kMadvCold:
      return "COLD";
    case kMadvPageout:
      return "PAGEOUT";
    case kMadvPopulateRead:
      return "POPULATE_READ";
    case kMadvPopulateWrite:
      return "POPULATE_WRITE";
    default:
      return "?";
  }
}

std::string Describe(const Op& op) {
  char buf[256];
  const std::string a = PageRef(op.addr);
  const unsigned long long len = op.len;
  const double pages = static_cast<double>(op.len) / kPageSize;
  switch (op.kind) {
    case OpKind::kMap:
      std::snprintf(
          buf, sizeof(buf), "mmap(%s, %#llx [%.2f pages], %s, %s, fd=%d, off=%#" PRIx64 ")",
          a.c_str(), len, pages, ProtStr(op.prot).c_str(),
          MapFlagsStr(op.flags | (op.fd == 0 ? kMapAnonymous : 0)).c_str(), op.fd, op.offset);
      break;
    case OpKind::kUnmap:
      std::snprintf(buf, sizeof(buf), "munmap(%s, %#llx [%.2f pages])", a.c_str(), len, pages);
      break;
    case OpKind::kProtect:
      std::snprintf(buf, sizeof(buf), "mprotect(%s, %#llx [%.2f pages], %s)", a.c_str(), len, pages,
                    ProtStr(op.prot).c_str());
      break;
    case OpKind::kAdvise:
      std::snprintf(buf, sizeof(buf), "madvise(%s, %#llx [%.2f pages], %s(%d))", a.c_str(), len,
                    pages, AdviceName(op.advice), op.advice);
      break;
    case OpKind::kLock:
      std::snprintf(buf, sizeof(buf), "mlock2(%s, %#llx [%.2f pages], %d)", a.c_str(), len, pages,
                    op.flags);
      break;
    case OpKind::kUnlock:
      std::snprintf(buf, sizeof(buf), "munlock(%s, %#llx [%.2f pages])", a.c_str(), len, pages);
      break;
    case OpKind::kSeal:
      std::snprintf(buf, sizeof(buf), "mseal(%s, %#llx [%.2f pages], %" PRIu64 ")", a.c_str(), len,
                    pages, op.seal_flags);
      break;
    case OpKind::kTouch:
      std::snprintf(buf, sizeof(buf), "touch(%s, %s)", a.c_str(), op.write ? "write" : "read");
      break;
    case OpKind::kFork:
      std::snprintf(buf, sizeof(buf), "fork() and continue in the child");
      break;
    case OpKind::kRemap: {
      std::string f;
      if (op.flags & kMremapMaymove) f += "|MAYMOVE";
      if (op.flags & kMremapFixed) f += "|FIXED";
      if (op.flags & kMremapDontunmap) f += "|DONTUNMAP";
      if (op.flags & ~7) f += "|" + std::to_string(op.flags & ~7);
      f = f.empty() ? "0" : f.substr(1);
      std::snprintf(buf, sizeof(buf),
                    "mremap(%s, %#llx [%.2f pages], %#" PRIx64 " [%.2f pages], %s, %s)", a.c_str(),
                    len, pages, op.new_len, static_cast<double>(op.new_len) / kPageSize, f.c_str(),
                    PageRef(op.new_addr).c_str());
      break;
    }
  }
  return buf;
}

std::string RetStr(int64_t ret) {
  char buf[64];
  if (ret >= 0 && ret < 4096) {
    std::snprintf(buf, sizeof(buf), "%" PRId64, ret);
  } else if (ret >= 0) {
    std::snprintf(buf, sizeof(buf), "%s", PageRef(static_cast<uint64_t>(ret)).c_str());
  } else {
    std::snprintf(buf, sizeof(buf), "-%s", strerrorname_np(static_cast<int>(-ret)));
  }
  return buf;
}

std::string FlagsStr(uint64_t f) {
  static const struct {
    uint64_t bit;
    const char* name;
  } kNames[] = {
      {kVmRead, "rd"},       {kVmWrite, "wr"},      {kVmExec, "ex"},        {kVmShared, "sh"},
      {kVmMayRead, "mr"},    {kVmMayWrite, "mw"},   {kVmMayExec, "me"},     {kVmMayShare, "ms"},
      {kVmGrowsdown, "gd"},  {kVmMaybeGuard, "gu"}, {kVmLocked, "lo"},      {kVmSeqRead, "sr"},
      {kVmRandRead, "rr"},   {kVmDontcopy, "dc"},   {kVmLockonfault, "lf"}, {kVmAccount, "ac"},
      {kVmNoreserve, "nr"},  {kVmWipeonfork, "wf"}, {kVmDontdump, "dd"},    {kVmHugepage, "hg"},
      {kVmNohugepage, "nh"}, {kVmMergeable, "mg"},  {kVmSealed, "sl"},      {kVmDroppable, "dp"}};
  std::string s;
  for (const auto& n : kNames) {
    if (f & n.bit) {
      if (!s.empty()) s += ' ';
      s += n.name;
      f &= ~n.bit;
    }
  }
  if (f != 0) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), " +%#" PRIx64, f);
    s += buf;
  }
  return s;
}

// ---------------------------------------------------------------------------
// The reference: one record per page.

struct Page {
  bool mapped = false;
  uint64_t flags = 0;
  // 0: private anonymous; 1..kFiles: FileFor(); >= kShmemToken: one shared
  // anonymous object (one per successful MAP_SHARED|MAP_ANONYMOUS call).
  uint64_t obj = 0;
  uint64_t off = 0;   // pgoff of this page: addr>>12 for private anonymous
  bool anon = false;  // written (or populated for write) as private memory
  bool SameMapping(const Page& o) const {
    return mapped == o.mapped && (!mapped || (flags == o.flags && obj == o.obj && off == o.off));
  }
};

constexpr uint64_t kShmemToken = 1000;

// The one piece of VMA state the reference asks the model for (before the
// call): does the VMA at addr have an anon_vma?
bool ModelVmaHasAnonVma(const AddressSpace& as, uint64_t addr) {
  const Vma* v = as.FindVma(addr);
  return v != nullptr && v->start <= addr && v->anon.anon_vma != 0;
}

class Reference {
 public:
  Reference() : pages_(kWinPages) {}

  const Page& page(uint64_t i) const { return pages_[i]; }
  uint64_t next_token() const { return next_token_; }

  // Pages changed by the last call: [changed_lo_, changed_hi_).
  void BeginCall() {
    changed_lo_ = kWinPages;
    changed_hi_ = 0;
    one_vma_start_ = one_vma_end_ = 0;
  }
  // A range the last call left inside a single VMA (empty if none): a new
  // mapping, the destination of a single-VMA mremap move, a VMA grown in
  // place.
  uint64_t one_vma_start() const { return one_vma_start_; }
  uint64_t one_vma_end() const { return one_vma_end_; }
  bool changed_any() const { return changed_lo_ < changed_hi_; }
  uint64_t changed_lo() const { return changed_lo_; }
  uint64_t changed_hi() const { return changed_hi_; }
  bool PageChanged(uint64_t i) const { return was_changed_[i]; }

  // Each returns the predicted result (address, 0 or -errno) and applies it.
  int64_t Map(const Op& op);
  int64_t Unmap(const Op& op);
  int64_t Protect(const Op& op, const AddressSpace& model);
  int64_t Advise(const Op& op);
  int64_t Lock(const Op& op, bool lock);
  int64_t Seal(const Op& op);
  int64_t Touch(const Op& op);
  int64_t Remap(const Op& op, const AddressSpace& model);
  void Fork();

  void ClearChangedMarks() {
    for (uint64_t i = changed_lo_; i < changed_hi_; ++i) was_changed_[i] = false;
  }

 private:
  // [first, first+n) as window pages, or false when outside the window.
  static bool Range(uint64_t addr, uint64_t len_aligned, uint64_t* first, uint64_t* n) {
    if (addr < kBase || len_aligned > kWinPages * kPageSize) return false;
    const uint64_t off = addr - kBase;
    if (off + len_aligned > kWinPages * kPageSize) return false;
    *first = off / kPageSize;
    *n = len_aligned / kPageSize;
    return true;
  }
  void Set(uint64_t i, const Page& p) {
    if (!pages_[i].SameMapping(p)) {
      if (i < changed_lo_) changed_lo_ = i;
      if (i + 1 > changed_hi_) changed_hi_ = i + 1;
      was_changed_[i] = true;
    }
    pages_[i] = p;
  }

  std::vector<Page> pages_;
  std::vector<bool> was_changed_ = std::vector<bool>(kWinPages, false);
  uint64_t changed_lo_ = kWinPages;
  uint64_t changed_hi_ = 0;
  uint64_t next_token_ = kShmemToken;
  uint64_t one_vma_start_ = 0;
  uint64_t one_vma_end_ = 0;
};

uint64_t ProtToVm(int prot) {
  uint64_t f = 0;
  if (prot & kProtRead) f |= kVmRead;
  if (prot & kProtWrite) f |= kVmWrite;
  if (prot & kProtExec) f |= kVmExec;
  return f;
}

// mmap with MAP_FIXED or MAP_FIXED_NOREPLACE (docs/merge-split.md#what-a-vma-carries,
// docs/errno-order.md#mmap).
int64_t Reference::Map(const Op& op) {
  const int flags = op.flags | (op.fd == 0 ? kMapAnonymous : 0);
  const FileDesc* file = FileFor(op.fd);
  if (op.offset & (kPageSize - 1)) return -EINVAL;  // 1
  if (op.len == 0) return -EINVAL;                  // 4
  const uint64_t len = PageAlign(op.len);
  if (op.addr & (kPageSize - 1)) return -EINVAL;  // 10: unaligned MAP_FIXED address
  uint64_t first = 0, n = 0;
  if (!Range(op.addr, len, &first, &n)) return -EINVAL;  // the generator never does this
  if (flags & kMapFixedNoreplace) {                      // 11
    for (uint64_t i = first; i < first + n; ++i) {
      if (pages_[i].mapped) return -EEXIST;
    }
  }
  uint64_t vm = ProtToVm(op.prot) | kVmMayRead | kVmMayWrite | kVmMayExec;
  if (flags & kMapLocked) vm |= kVmLocked;
  if (flags & kMapStack) vm |= kVmNohugepage;
  const int type = flags & kMapType;
  if (file != nullptr) {  // 13
    if (type == kMapShared || type == kMapSharedValidate) {
      if (type == kMapSharedValidate && (flags & ~kKernelLegacyMapMask)) return -EOPNOTSUPP;
      if ((op.prot & kProtWrite) && !file->writable) return -EACCES;
      if (file->append && file->writable) return -EACCES;
      vm |= kVmShared | kVmMayShare;
      if (!file->writable) vm &= ~(kVmMayWrite | kVmShared);
    } else if (type != kMapPrivate) {
      return -EINVAL;
    }
    if (!file->readable) return -EACCES;
    if (file->noexec_mount) {
      if (vm & kVmExec) return -EPERM;
      vm &= ~kVmMayExec;
    }
    if (flags & kMapGrowsdown) return -EINVAL;
  } else if (type == kMapShared) {  // 14
    if (flags & kMapGrowsdown) return -EINVAL;
    vm |= kVmShared | kVmMayShare;
  } else if (type == kMapDroppable) {
    if (flags & (kMapLocked | kMapGrowsdown)) return -EINVAL;
    vm |= kVmDroppable | kVmWipeonfork | kVmDontdump | kVmNoreserve;
  } else if (type != kMapPrivate) {
    return -EINVAL;
  }
  if (flags & kMapNoreserve) vm |= kVmNoreserve;
  for (uint64_t i = first; i < first + n; ++i) {  // 15: a sealed VMA in the way
    if (pages_[i].mapped && (pages_[i].flags & kVmSealed)) return -EPERM;
  }
  if ((vm & (kVmNoreserve | kVmShared | kVmWrite)) == kVmWrite) vm |= kVmAccount;
  const bool shared_anon = file == nullptr && type == kMapShared;
  if (flags & kMapGrowsdown) return -EINVAL;  // the generator never asks for a stack
  const uint64_t token = shared_anon ? next_token_++ : 0;
  // MAP_LOCKED / MAP_POPULATE fault private writable memory for write.
  const bool populate_write =
      (flags & (kMapLocked | kMapPopulate)) && (vm & (kVmWrite | kVmShared)) == kVmWrite;
  for (uint64_t i = 0; i < n; ++i) {
    Page p;
    p.mapped = true;
    p.flags = vm;
    if (file != nullptr) {
      p.obj = file->id;
      p.off = (op.offset >> kPageShift) + i;
    } else if (shared_anon) {
      p.obj = token;
      p.off = i;
    } else {
      p.obj = 0;
      p.off = (op.addr >> kPageShift) + i;
    }
    p.anon = populate_write;
    Set(first + i, p);
  }
  one_vma_start_ = op.addr;
  one_vma_end_ = op.addr + len;
  return static_cast<int64_t>(op.addr);
}

// munmap (docs/errno-order.md#munmap): all or nothing page-wise (splits may stay behind).
int64_t Reference::Unmap(const Op& op) {
  if (op.addr & (kPageSize - 1)) return -EINVAL;
  const uint64_t len = PageAlign(op.len);
  if (len == 0) return -EINVAL;
  uint64_t first = 0, n = 0;
  if (!Range(op.addr, len, &first, &n)) return -EINVAL;
  bool any = false;
  for (uint64_t i = first; i < first + n; ++i) {
    if (!pages_[i].mapped) continue;
    any = true;
    if (pages_[i].flags & kVmSealed) return -EPERM;
  }
  if (!any) return 0;
  for (uint64_t i = first; i < first + n; ++i) Set(i, Page{});
  return 0;
}

// mprotect (docs/merge-split.md#mprotect-and-vm_account, docs/errno-order.md#mprotect): page by
// page, stopping at the first hole or refused page with what came before left changed.
int64_t Reference::Protect(const Op& op, const AddressSpace& model) {
  if (op.addr & (kPageSize - 1)) return -EINVAL;
  if (op.len == 0) return 0;
  const uint64_t len = PageAlign(op.len);
  if (op.prot & ~(kProtRead | kProtWrite | kProtExec | kProtSem)) return -EINVAL;
  uint64_t first = 0, n = 0;
  if (!Range(op.addr, len, &first, &n)) return -EINVAL;
  if (!pages_[first].mapped) return -ENOMEM;
  for (uint64_t i = first; i < first + n; ++i) {
    Page p = pages_[i];
    if (!p.mapped) return -ENOMEM;
    uint64_t nf = ProtToVm(op.prot) | (p.flags & ~kVmRwx);
    if ((nf & ~(nf >> 4)) & kVmRwx) return -EACCES;  // no VM_MAY* for a requested bit
    if (p.flags & kVmSealed) return -EPERM;
    if (nf == p.flags) continue;
    if (nf & kVmWrite) {
      if (!(p.flags & (kVmAccount | kVmWrite | kVmHugetlb | kVmShared | kVmNoreserve))) {
        nf |= kVmAccount;
      }
    } else if ((p.flags & kVmAccount) && p.obj == 0 && !ModelVmaHasAnonVma(model, PageAddr(i))) {
      nf &= ~kVmAccount;
    }
    p.flags = nf;
    Set(i, p);
  }
  return 0;
}

bool IsDiscardAdvice(int advice) {
  return advice == kMadvFree || advice == kMadvDontneed || advice == kMadvDontfork ||
         advice == kMadvWipeonfork;
}

// madvise (docs/merge-split.md#per-call-rules, docs/errno-order.md#madvise): holes are
// skipped and reported as ENOMEM at the end; a per-VMA error stops the walk.
int64_t Reference::Advise(const Op& op) {
  switch (op.advice) {
    case kMadvNormal:
    case kMadvRandom:
    case kMadvSequential:
    case kMadvWillneed:
    case kMadvDontneed:
    case kMadvFree:
    case kMadvDontfork:
    case kMadvDofork:
    case kMadvMergeable:
    case kMadvUnmergeable:
    case kMadvHugepage:
    case kMadvNohugepage:
    case kMadvDontdump:
    case kMadvDodump:
    case kMadvWipeonfork:
    case kMadvKeeponfork:
    case kMadvCold:
    case kMadvPageout:
    case kMadvPopulateRead:
    case kMadvPopulateWrite:
      break;
    default:
      return -EINVAL;
  }
  if (op.addr & (kPageSize - 1)) return -EINVAL;
  if (op.len == 0) return 0;
  const uint64_t len = PageAlign(op.len);
  uint64_t first = 0, n = 0;
  if (!Range(op.addr, len, &first, &n)) return -EINVAL;

  if (op.advice == kMadvPopulateRead || op.advice == kMadvPopulateWrite) {
    // GUP without FOLL_FORCE: a hole is ENOMEM, a missing permission EINVAL;
    // whatever came before stays faulted.
    const bool write = op.advice == kMadvPopulateWrite;
    for (uint64_t i = first; i < first + n; ++i) {
      Page p = pages_[i];
      if (!p.mapped) return -ENOMEM;
      if (!(p.flags & (write ? kVmWrite : kVmRead))) return -EINVAL;
      if (write && !(p.flags & kVmShared)) {
        p.anon = true;
        Set(i, p);
      }
    }
    return 0;
  }

  bool hole = false;
  for (uint64_t i = first; i < first + n; ++i) {
    Page p = pages_[i];
    if (!p.mapped) {
      hole = true;
      continue;
    }
    uint64_t f = p.flags;
    const bool private_anon = p.obj == 0;  // no file and not VM_SHARED
    if ((f & kVmSealed) && private_anon && !(f & kVmWrite) && IsDiscardAdvice(op.advice)) {
      return -EPERM;
    }
    switch (op.advice) {
      case kMadvWillneed:
        break;
      case kMadvDontneed:
      case kMadvFree:
        if (f & kVmLocked) return -EINVAL;
        if (op.advice == kMadvFree && !private_anon) return -EINVAL;
        break;
      case kMadvCold:
      case kMadvPageout:
        if (f & kVmLocked) return -EINVAL;
        break;
      case kMadvNormal:
        f &= ~(kVmRandRead | kVmSeqRead);
        break;
      case kMadvRandom:
        f = (f & ~kVmSeqRead) | kVmRandRead;
        break;
      case kMadvSequential:
        f = (f & ~kVmRandRead) | kVmSeqRead;
        break;
      case kMadvDontfork:
        f |= kVmDontcopy;
        break;
      case kMadvDofork:
        f &= ~kVmDontcopy;
        break;
      case kMadvWipeonfork:
        if (!private_anon) return -EINVAL;
        f |= kVmWipeonfork;
        break;
      case kMadvKeeponfork:
        if (f & kVmDroppable) return -EINVAL;
        f &= ~kVmWipeonfork;
        break;
      case kMadvDontdump:
        f |= kVmDontdump;
        break;
      case kMadvDodump:
        if (f & kVmDroppable) return -EINVAL;
        f &= ~kVmDontdump;
        break;
      case kMadvMergeable:
        // ksm_madvise() ignores shared and droppable mappings
        // (vma_ksm_compatible).
        if (!(f & (kVmShared | kVmMayShare | kVmDroppable))) f |= kVmMergeable;
        break;
      case kMadvUnmergeable:
        f &= ~kVmMergeable;
        break;
      case kMadvHugepage:
        f = (f & ~kVmNohugepage) | kVmHugepage;
        break;
      case kMadvNohugepage:
        f = (f & ~kVmHugepage) | kVmNohugepage;
        break;
    }
    p.flags = f;
    Set(i, p);
  }
  return hole ? -ENOMEM : 0;
}

// mlock / mlock2 / munlock (docs/merge-split.md#per-call-rules,
// docs/errno-order.md#mlock-mseal-brk).
int64_t Reference::Lock(const Op& op, bool lock) {
  if (lock && (op.flags & ~kMlockOnfault)) return -EINVAL;
  const uint64_t start = PageDown(op.addr);
  const uint64_t len = PageAlign(op.len + (op.addr & (kPageSize - 1)));
  if (len == 0) return 0;
  uint64_t first = 0, n = 0;
  if (!Range(start, len, &first, &n)) return -EINVAL;
  if (!pages_[first].mapped) return -ENOMEM;
  uint64_t set = 0;
  if (lock) set = kVmLocked | ((op.flags & kMlockOnfault) ? uint64_t{kVmLockonfault} : 0);
  for (uint64_t i = first; i < first + n; ++i) {
    Page p = pages_[i];
    if (!p.mapped) return -ENOMEM;
    if (p.flags & kVmDroppable) continue;  // mlock_fixup() leaves it alone
    p.flags = (p.flags & ~kVmLockedMask) | set;
    Set(i, p);
  }
  if (!lock) return 0;
  // __mm_populate() runs with MLOCK_ONFAULT too: VM_LOCKONFAULT pages skip
  // it, droppable ones (left unlocked) do not. PROT_NONE stops it (EFAULT,
  // reported as ENOMEM); private writable memory is faulted for write.
  for (uint64_t i = first; i < first + n; ++i) {
    Page p = pages_[i];
    if (p.flags & kVmLockonfault) continue;
    if (!(p.flags & kVmRwx)) return -ENOMEM;
    if ((p.flags & (kVmWrite | kVmShared)) == kVmWrite) {
      p.anon = true;
      Set(i, p);
    }
  }
  return 0;
}

// mseal (docs/errno-order.md#mlock-mseal-brk): every page must be mapped, or nothing happens.
int64_t Reference::Seal(const Op& op) {
  if (op.seal_flags != 0) return -EINVAL;
  if (op.addr & (kPageSize - 1)) return -EINVAL;
  if (op.len == 0) return 0;
  const uint64_t len = PageAlign(op.len);
  uint64_t first = 0, n = 0;
  if (!Range(op.addr, len, &first, &n)) return -EINVAL;
  for (uint64_t i = first; i < first + n; ++i) {
    if (!pages_[i].mapped) return -ENOMEM;
  }
  for (uint64_t i = first; i < first + n; ++i) {
    Page p = pages_[i];
    p.flags |= kVmSealed;
    Set(i, p);
  }
  return 0;
}

// A user page fault. Reads need any access bit (x86: W and X imply R).
int64_t Reference::Touch(const Op& op) {
  uint64_t first = 0, n = 0;
  if (!Range(PageDown(op.addr), kPageSize, &first, &n)) return -EFAULT;
  Page p = pages_[first];
  if (!p.mapped) return -EFAULT;
  if (op.write ? !(p.flags & kVmWrite) : !(p.flags & kVmRwx)) return -EFAULT;
  if (op.write && !(p.flags & kVmShared)) {
    p.anon = true;
    Set(first, p);
  }
  return 0;
}

// mremap (docs/merge-split.md#per-call-rules, docs/errno-order.md#mremap) restricted to what the
// generator produces: no sealed pages at the source or the destination, no DONTUNMAP move, no
// old_len 0, no placement (a move is always MREMAP_FIXED inside the window).
// Where the kernel decides by VMA (the VMA at addr, its end, its anon_vma)
// the model's VMAs before the call are the input.
int64_t Reference::Remap(const Op& op, const AddressSpace& model) {
  const int flags = op.flags;
  if (flags & ~(kMremapFixed | kMremapMaymove | kMremapDontunmap)) return -EINVAL;
  if (op.addr & (kPageSize - 1)) return -EINVAL;
  const uint64_t old_len = PageAlign(op.len);
  const uint64_t new_len = PageAlign(op.new_len);
  if (new_len == 0) return -EINVAL;
  const bool implies_new_addr = flags & (kMremapFixed | kMremapDontunmap);
  if (implies_new_addr) {
    if (op.new_addr & (kPageSize - 1)) return -EINVAL;
    if (!(flags & kMremapMaymove)) return -EINVAL;
    if ((flags & kMremapDontunmap) && old_len != new_len) return -EINVAL;
    if (op.addr + old_len > op.new_addr && op.new_addr + new_len > op.addr) return -EINVAL;
  }
  uint64_t src = 0, src_n = 0;
  if (!Range(op.addr, old_len, &src, &src_n)) return -EINVAL;
  const Vma* v = model.FindVma(op.addr);
  const bool in_vma = v != nullptr && v->start <= op.addr;

  // The state a page of the source has at `dest` (copy_vma): an anonymous
  // VMA that never faulted takes the pgoff of its new address.
  auto moved = [&](uint64_t from, uint64_t dest) {
    Page p = pages_[from];
    if (p.obj == 0 && !ModelVmaHasAnonVma(model, PageAddr(from))) p.off = PageAddr(dest) >> 12;
    return p;
  };

  if (model.profile().multi_vma_mremap && (flags & kMremapFixed) && old_len == new_len &&
      !(flags & kMremapDontunmap) && (!in_vma || v->end < op.addr + old_len)) {
    // 6.17+: each mapped piece moves to new_addr + its offset; holes stay.
    if (!pages_[src].mapped) return -EFAULT;
    uint64_t dst = 0, dst_n = 0;
    if (!Range(op.new_addr, new_len, &dst, &dst_n)) return -EINVAL;
    std::vector<Page> out(src_n);
    for (uint64_t i = 0; i < src_n; ++i) {
      if (pages_[src + i].mapped) out[i] = moved(src + i, dst + i);
    }
    for (uint64_t i = 0; i < src_n; ++i) {
      if (!pages_[src + i].mapped) continue;
      Set(src + i, Page{});
      Set(dst + i, out[i]);
    }
    return static_cast<int64_t>(op.new_addr);
  }
  if (!in_vma) return -EFAULT;
  const uint64_t vma_end_page = (v->end - kBase) / kPageSize;

  // The part of the source that is kept (a shrink unmaps the tail first).
  const uint64_t keep_n = old_len < new_len ? src_n : new_len / kPageSize;
  const uint64_t grow_n = new_len / kPageSize - keep_n;
  // New pages continue the last kept page (vma_merge_extend / copy_vma).
  auto extension = [&](const Page& last, uint64_t k) {
    Page p = last;
    p.off = last.off + k;
    // A VM_LOCKED VMA is populated where it grew (not with VM_LOCKONFAULT).
    p.anon =
        (p.flags & kVmLockedMask) == kVmLocked && (p.flags & (kVmWrite | kVmShared)) == kVmWrite;
    return p;
  };

  if (implies_new_addr) {
    // check_prep_vma(): the source must lie in the VMA (the new length when
    // the call also shrinks).
    if (PageAddr(src + keep_n) > v->end) return -EFAULT;
    uint64_t dst = 0, dst_n = 0;
    if (!Range(op.new_addr, new_len, &dst, &dst_n)) return -EINVAL;
    std::vector<Page> out(dst_n);
    for (uint64_t i = 0; i < keep_n; ++i) out[i] = moved(src + i, dst + i);
    for (uint64_t k = 1; k <= grow_n; ++k) out[keep_n + k - 1] = extension(out[keep_n - 1], k);
    for (uint64_t i = 0; i < src_n; ++i) Set(src + i, Page{});
    for (uint64_t i = 0; i < dst_n; ++i) Set(dst + i, out[i]);
    one_vma_start_ = op.new_addr;
    one_vma_end_ = op.new_addr + new_len;
    return static_cast<int64_t>(op.new_addr);
  }
  if (old_len >= new_len) {
    for (uint64_t i = keep_n; i < src_n; ++i) Set(src + i, Page{});
    return static_cast<int64_t>(op.addr);
  }
  if (PageAddr(src + src_n) > v->end) return -EFAULT;  // vma_to_resize()
  if (src + src_n == vma_end_page && src + keep_n + grow_n <= kWinPages) {
    bool free = true;
    for (uint64_t i = src + src_n; i < src + src_n + grow_n; ++i) free &= !pages_[i].mapped;
    if (free) {
      const Page last = pages_[src + src_n - 1];
      for (uint64_t k = 1; k <= grow_n; ++k) Set(src + src_n + k - 1, extension(last, k));
      one_vma_start_ = v->start;
      one_vma_end_ = op.addr + new_len;
      return static_cast<int64_t>(op.addr);
    }
  }
  return -ENOMEM;  // the generator never asks to move without MREMAP_FIXED
}

// The child's view after fork (kernel/fork.c dup_mmap): VM_DONTCOPY pages
// are gone, VM_LOCKED/VM_LOCKONFAULT are cleared, VM_WIPEONFORK memory
// starts without anon_vma.
void Reference::Fork() {
  for (uint64_t i = 0; i < kWinPages; ++i) {
    Page p = pages_[i];
    if (!p.mapped) continue;
    if (p.flags & kVmDontcopy) {
      Set(i, Page{});
      continue;
    }
    p.flags &= ~kVmLockedMask;
    if (p.flags & kVmWipeonfork) p.anon = false;
    Set(i, p);
  }
}

// ---------------------------------------------------------------------------
// The harness: one model, one reference, the checks.

class Harness {
 public:
  explicit Harness(const KernelProfile& profile) : profile_(&profile) { Reset(); }

  void Reset() {
    as_.reset();
    arena_.reset();
    buf_.assign(16 << 20, 0);
    arena_ = std::make_unique<Arena>(buf_.data(), buf_.size());
    MmParams params;
    params.mmap_base = kMmapBase;
    params.max_map_count = 1 << 20;
    as_ = std::make_unique<AddressSpace>(arena_.get(), *profile_, params);
    ref_ = Reference();
    shmem_ids_.clear();
    shmem_tokens_.clear();
  }

  AddressSpace& as() { return *as_; }
  const AddressSpace& as() const { return *as_; }
  const Reference& ref() const { return ref_; }
  const std::deque<std::string>& log() const { return log_; }
  int64_t last_ret() const { return last_ret_; }

  // Applies op to both sides and checks everything. Returns "" when all
  // agree, otherwise what differs.
  std::string Step(const Op& op) {
    ref_.ClearChangedMarks();
    ref_.BeginCall();
    Boundaries(&before_);
    SnapshotEdges(op);
    const bool had_anon_vma = op.kind == OpKind::kTouch && ModelVmaHasAnonVma(*as_, op.addr);
    int64_t want = 0;
    // The reference runs first: Protect reads the model's state before the call.
    switch (op.kind) {
      case OpKind::kMap:
        want = ref_.Map(op);
        break;
      case OpKind::kUnmap:
        want = ref_.Unmap(op);
        break;
      case OpKind::kProtect:
        want = ref_.Protect(op, *as_);
        break;
      case OpKind::kAdvise:
        want = ref_.Advise(op);
        break;
      case OpKind::kLock:
        want = ref_.Lock(op, true);
        break;
      case OpKind::kUnlock:
        want = ref_.Lock(op, false);
        break;
      case OpKind::kSeal:
        want = ref_.Seal(op);
        break;
      case OpKind::kTouch:
        want = ref_.Touch(op);
        break;
      case OpKind::kRemap:
        want = ref_.Remap(op, *as_);
        break;
      case OpKind::kFork:
        ref_.Fork();
        break;
    }
    Outcome got;
    switch (op.kind) {
      case OpKind::kMap: {
        MapArgs a;
        a.addr = op.addr;
        a.len = op.len;
        a.prot = op.prot;
        a.flags = op.flags | (op.fd == 0 ? kMapAnonymous : 0);
        a.file = FileFor(op.fd);
        a.offset = op.offset;
        got = as_->Map(a);
        break;
      }
      case OpKind::kUnmap:
        got = as_->Unmap(op.addr, op.len);
        break;
      case OpKind::kProtect:
        got = as_->Protect(op.addr, op.len, op.prot);
        break;
      case OpKind::kAdvise:
        got = as_->Advise(op.addr, op.len, op.advice);
        break;
      case OpKind::kLock:
        got = as_->Lock(op.addr, op.len, op.flags);
        break;
      case OpKind::kUnlock:
        got = as_->Unlock(op.addr, op.len);
        break;
      case OpKind::kSeal:
        got = as_->Seal(op.addr, op.len, op.seal_flags);
        break;
      case OpKind::kTouch:
        got = as_->Touch(op.addr, op.write);
        break;
      case OpKind::kRemap:
        got = as_->Remap(op.addr, op.len, op.new_len, op.flags, op.new_addr);
        break;
      case OpKind::kFork:
        as_->ForkChild();
        got.changed_start = 0;  // fork has no Outcome; everything may change
        got.changed_end = ~uint64_t{0};
        break;
    }
    last_ret_ = got.ret;
    log_.push_back(Describe(op) + " = " + RetStr(got.ret) +
                   (got.ret != want ? " (reference: " + RetStr(want) + ")" : ""));
    if (log_.size() > kLogDepth) log_.pop_front();

    if (got.ret != want) {
      return "return value: model " + RetStr(got.ret) + ", reference " + RetStr(want);
    }
    if (op.kind == OpKind::kMap && got.ok() && (op.flags & kMapType) == kMapShared && op.fd == 0) {
      // Learn which model shmem object stands for the reference's token.
      const Vma* v = as_->FindVma(op.addr);
      if (v == nullptr || v->file == nullptr) return "shared anonymous mmap left no file VMA";
      const uint64_t token = ref_.next_token() - 1;
      if (shmem_tokens_.count(v->file->id)) return "shared anonymous mmap reused a shmem object";
      shmem_ids_[token] = v->file->id;
      shmem_tokens_[v->file->id] = token;
    }
    if (std::string err = CheckStructure(); !err.empty()) return err;
    if (op.kind == OpKind::kTouch && !had_anon_vma && ModelVmaHasAnonVma(*as_, op.addr) &&
        !(got.ok() && op.write && !(as_->FindVma(op.addr)->flags & kVmShared))) {
      return "a fault that instantiates no private page gave the VMA an anon_vma";
    }
    if (std::string err = ComparePages(); !err.empty()) return err;
    if (std::string err = CheckChangedRange(got); !err.empty()) return err;
    if (std::string err = CheckChangedBoundaries(got); !err.empty()) return err;
    if (got.ok()) {
      if (std::string err = CheckEdgeMerges(op); !err.empty()) return err;
      if (ref_.one_vma_start() < ref_.one_vma_end()) {
        const Vma* v = as_->FindVma(ref_.one_vma_start());
        if (v == nullptr || v->start > ref_.one_vma_start() || v->end < ref_.one_vma_end()) {
          return "[" + PageRef(ref_.one_vma_start()) + ", " + PageRef(ref_.one_vma_end()) +
                 ") should be one VMA after the call";
        }
      }
    }
    return "";
  }

  // The model's VMAs overlapping window pages [lo, hi), one per line.
  std::string DumpModel(uint64_t lo, uint64_t hi) const {
    std::string s;
    char buf[256];
    for (const Vma* v = as_->FindVma(PageAddr(lo)); v != nullptr && v->start < PageAddr(hi);
         v = v->next) {
      std::snprintf(buf, sizeof(buf),
                    "  %s-%s pgoff=%#" PRIx64 " file=%" PRIu64 " anon_vma=%" PRIu64 " [%s]\n",
                    PageRef(v->start).c_str(), PageRef(v->end).c_str(), v->pgoff,
                    v->file ? v->file->id : 0, v->anon.anon_vma, FlagsStr(v->flags).c_str());
      s += buf;
    }
    return s;
  }
  std::string DumpRef(uint64_t lo, uint64_t hi) const {
    std::string s;
    char buf[256];
    uint64_t i = lo;
    while (i < hi) {
      uint64_t j = i + 1;
      // Coalesce pages that continue each other (same everything, linear off).
      while (j < hi) {
        const Page& a = ref_.page(j - 1);
        const Page& b = ref_.page(j);
        if (a.mapped != b.mapped || a.anon != b.anon) break;
        if (a.mapped && (a.flags != b.flags || a.obj != b.obj || a.off + 1 != b.off)) break;
        ++j;
      }
      const Page& p = ref_.page(i);
      if (p.mapped) {
        std::snprintf(buf, sizeof(buf),
                      "  p%" PRIu64 "-p%" PRIu64 " obj=%" PRIu64 " off=%#" PRIx64 "%s [%s]\n", i, j,
                      p.obj, p.off, p.anon ? " written" : "", FlagsStr(p.flags).c_str());
      } else {
        std::snprintf(buf, sizeof(buf), "  p%" PRIu64 "-p%" PRIu64 " unmapped\n", i, j);
      }
      s += buf;
      i = j;
    }
    return s;
  }

 private:
  std::string CheckStructure() const {
    if (const char* err = as_->Validate()) return std::string("Validate(): ") + err;
    if (as_->broken()) return "model reports broken()";
    uint64_t count = 0;
    for (const Vma* v = as_->tree().First(); v != nullptr; v = v->next) {
      ++count;
      if (v->start < kBase || v->end > PageAddr(kWinPages)) return "a VMA outside the window";
    }
    if (count != as_->map_count()) return "map_count differs from the VMA list";
    return "";
  }

  std::string ComparePages() const {
    const Vma* v = as_->FindVma(kBase);
    for (uint64_t i = 0; i < kWinPages; ++i) {
      const uint64_t a = PageAddr(i);
      while (v != nullptr && v->end <= a) v = v->next;
      const bool mapped = v != nullptr && v->start <= a;
      const Page& p = ref_.page(i);
      char buf[512];
      if (mapped != p.mapped) {
        std::snprintf(buf, sizeof(buf), "page p%" PRIu64 ": model %s, reference %s", i,
                      mapped ? "mapped" : "unmapped", p.mapped ? "mapped" : "unmapped");
        return buf;
      }
      if (!mapped) continue;
      const uint64_t model_off = v->pgoff + ((a - v->start) >> kPageShift);
      const uint64_t model_file = v->file ? v->file->id : 0;
      uint64_t want_file = p.obj;
      if (p.obj >= kShmemToken) {
        auto it = shmem_ids_.find(p.obj);
        want_file = it == shmem_ids_.end() ? ~uint64_t{0} : it->second;
      }
      if (v->flags != p.flags || model_file != want_file || model_off != p.off) {
        std::snprintf(buf, sizeof(buf),
                      "page p%" PRIu64 ": model [%s] file=%" PRIu64 " pgoff=%#" PRIx64
                      ", reference [%s] file=%" PRIu64 " pgoff=%#" PRIx64,
                      i, FlagsStr(v->flags).c_str(), model_file, model_off,
                      FlagsStr(p.flags).c_str(), want_file, p.off);
        return buf;
      }
      if (v->special != SpecialKind::kNone) return "a special VMA appeared";
      if (p.anon && v->anon.anon_vma == 0) {
        std::snprintf(buf, sizeof(buf),
                      "page p%" PRIu64
                      " was written as private memory, but its VMA has no "
                      "anon_vma",
                      i);
        return buf;
      }
    }
    return "";
  }

  // Every start and end of a model VMA in the window, ascending.
  void Boundaries(std::vector<uint64_t>* out) const {
    out->clear();
    for (const Vma* v = as_->FindVma(kBase); v != nullptr && v->start < PageAddr(kWinPages);
         v = v->next) {
      if (out->empty() || out->back() != v->start) out->push_back(v->start);
      out->push_back(v->end);
    }
  }

  // A VMA boundary that appeared or disappeared (a split, a merge, a new or
  // removed VMA) must lie in Outcome's changed range, ends included: callers
  // re-read only that range (plus a VMA on each side).
  std::string CheckChangedBoundaries(const Outcome& got) {
    Boundaries(&after_);
    std::vector<uint64_t> diff;
    std::set_symmetric_difference(before_.begin(), before_.end(), after_.begin(), after_.end(),
                                  std::back_inserter(diff));
    for (uint64_t b : diff) {
      if (b < got.changed_start || b > got.changed_end) {
        return "a VMA boundary at " + PageRef(b) + " changed outside Outcome's changed range [" +
               PageRef(got.changed_start) + ", " + PageRef(got.changed_end) + ")";
      }
    }
    return "";
  }

  std::string CheckChangedRange(const Outcome& got) const {
    if (!ref_.changed_any()) return "";
    const uint64_t lo = PageAddr(ref_.changed_lo());
    const uint64_t hi = PageAddr(ref_.changed_hi());
    if (got.changed_start <= lo && hi <= got.changed_end) return "";
    return "Outcome's changed range [" + PageRef(got.changed_start) + ", " +
           PageRef(got.changed_end) + ") misses changed pages [" + PageRef(lo) + ", " +
           PageRef(hi) + ")";
  }

  // The page range [start, end) a merging call works on, or false.
  static bool CallRange(const Op& op, uint64_t* start, uint64_t* end) {
    switch (op.kind) {
      case OpKind::kMap:
      case OpKind::kProtect:
      case OpKind::kAdvise:
      case OpKind::kSeal:
        *start = op.addr;
        *end = op.addr + PageAlign(op.len);
        break;
      case OpKind::kLock:
      case OpKind::kUnlock:
        *start = PageDown(op.addr);
        *end = *start + PageAlign(op.len + (op.addr & (kPageSize - 1)));
        break;
      default:
        return false;
    }
    return PageAligned(*start) && *start < *end && *start >= kBase && *end <= PageAddr(kWinPages);
  }

  // The VMA around the page at `addr`, as it was before the call.
  struct Near {
    bool mapped = false;
    uint64_t start = 0;
    uint64_t end = 0;
    AnonState anon;
  };
  Near NearAt(uint64_t addr) const {
    Near n;
    const Vma* v = as_->FindVma(addr);
    if (addr < kBase || v == nullptr || v->start > addr) return n;
    n.mapped = true;
    n.start = v->start;
    n.end = v->end;
    n.anon = v->anon;
    return n;
  }
  void SnapshotEdges(const Op& op) {
    if (op.kind == OpKind::kRemap) {
      // The destination's neighbours and the source VMA.
      const uint64_t dest = op.new_addr & kPageMask;
      near_[0] = NearAt(dest - kPageSize);
      near_[1] = NearAt(op.addr & kPageMask);
      near_[3] = NearAt(dest + PageAlign(op.new_len));
      return;
    }
    uint64_t start = 0, end = 0;
    if (!CallRange(op, &start, &end)) return;
    near_[0] = NearAt(start - kPageSize);
    near_[1] = NearAt(start);
    near_[2] = NearAt(end - kPageSize);
    near_[3] = NearAt(end);
  }

  // docs/merge-split.md#anon_vma: may a VMA whose anon state is `tgt` absorb a range whose
  // anon state is `src` (is_mergeable_anon_vma)? `copy`: the range is
  // mremap's copy of a VMA (copied_from; no middle).
  bool AnonMergeable(const AnonState& tgt, const AnonState& src, bool copy = false) const {
    if (profile_->anon_vma_615_rule) {
      if (tgt.anon_vma == 0 && src.anon_vma == 0) return true;
      if (tgt.anon_vma == 0) return !src.fork_child || (copy && !profile_->copied_from_check);
      if (src.anon_vma == 0) return !tgt.fork_child;
      return tgt.anon_vma == src.anon_vma;
    }
    // 6.12: equal, or one side without and the target's chain singular.
    if (tgt.anon_vma == src.anon_vma) return true;
    return src.anon_vma == 0 && !tgt.fork_child;
  }
  static bool AnonCompatible(const AnonState& a, const AnonState& b) {
    return a.anon_vma == 0 || b.anon_vma == 0 || a.anon_vma == b.anon_vma;
  }

  // Pages on both sides of `edge` could form one VMA: same flags and object,
  // pgoff continuing (reference state, which the model matched).
  bool PagesContinue(uint64_t edge) const {
    if (edge <= kBase || edge >= PageAddr(kWinPages)) return false;
    const uint64_t i = (edge - kBase) / kPageSize;
    const Page& a = ref_.page(i - 1);
    const Page& b = ref_.page(i);
    return a.mapped && b.mapped && a.flags == b.flags && a.obj == b.obj && a.off + 1 == b.off;
  }
  bool OneVmaAcross(uint64_t edge) const {
    const Vma* v = as_->FindVma(edge - kPageSize);
    return v != nullptr && v->start < edge && v->end > edge;
  }

  // At an edge where the call tried a merge: merged iff the anon_vma rule
  // allows it. `sure` false: a merge the rule allows may still be refused
  // for a reason not modelled here (only the refusal is checked).
  std::string CheckEdge(uint64_t edge, bool allowed, bool sure) const {
    if (!PagesContinue(edge)) return "";
    const bool merged = OneVmaAcross(edge);
    const uint64_t page = (edge - kBase) / kPageSize;
    if (allowed && sure && !merged) {
      return "two mergeable VMAs left unmerged at " + PageRef(edge) + ":\n" +
             DumpModel(page - 1, page + 1);
    }
    if (!allowed && merged) {
      return "merged across " + PageRef(edge) + " although the anon_vma rule forbids it";
    }
    return "";
  }

  // The merges that vma_merge_new_range (mmap) and vma_merge_existing_range
  // (mprotect, madvise, mlock, mseal) are bound to make, or to refuse, at
  // the two edges of the call's range, whatever happened before.
  std::string CheckEdgeMerges(const Op& op) const {
    const Near& l = near_[0];
    const Near& m1 = near_[1];
    const Near& m2 = near_[2];
    const Near& r = near_[3];
    // A new range (mmap: no anon_vma; mremap: the source's, copied_from)
    // merges into prev when the rule allows; into next too, unless prev
    // merged and prev and next have different anon_vmas.
    auto new_range = [&](uint64_t start, uint64_t end, const AnonState& src, bool copy) {
      const bool left = l.mapped && AnonMergeable(l.anon, src, copy);
      if (std::string e = CheckEdge(start, left, true); !e.empty()) return e;
      const bool left_merged = left && PagesContinue(start);
      const bool right = r.mapped && AnonMergeable(r.anon, src, copy) &&
                         !(left_merged && !AnonCompatible(l.anon, r.anon));
      return CheckEdge(end, right, true);
    };
    if (op.kind == OpKind::kRemap) {
      // Only a single-VMA move (copy_vma) is a new-range merge.
      if (!(op.flags & kMremapFixed) || ref_.one_vma_start() != op.new_addr) return "";
      return new_range(ref_.one_vma_start(), ref_.one_vma_end(), m1.anon, true);
    }
    uint64_t start = 0, end = 0;
    if (!CallRange(op, &start, &end)) return "";
    if (op.kind == OpKind::kMap) return new_range(start, end, AnonState{}, false);
    // An existing range: only where the edge page changed (vma_modify ran on
    // it) and the edge is the old VMA's own boundary (no split there).
    const uint64_t first = (start - kBase) / kPageSize;
    const uint64_t last = (end - kBase) / kPageSize - 1;
    if (ref_.PageChanged(first) && m1.start == start && l.mapped && l.end == start) {
      if (std::string e = CheckEdge(start, AnonMergeable(l.anon, m1.anon), true); !e.empty()) {
        return e;
      }
    }
    if (ref_.PageChanged(last) && m2.end == end && r.mapped && r.start == end) {
      // When the same middle also merged left, the right merge further needs
      // prev and next compatible; prev's anon_vma then is not known here.
      const Vma* v = as_->FindVma(end - kPageSize);
      const bool merged_left = v != nullptr && v->start < m2.start;
      return CheckEdge(end, AnonMergeable(r.anon, m2.anon), !merged_left);
    }
    return "";
  }

  const KernelProfile* profile_;
  std::vector<char> buf_;
  std::unique_ptr<Arena> arena_;
  std::unique_ptr<AddressSpace> as_;
  Reference ref_;
  std::map<uint64_t, uint64_t> shmem_ids_;     // reference token -> model file id
  std::map<uint64_t, uint64_t> shmem_tokens_;  // model file id -> reference token
  std::deque<std::string> log_;
  int64_t last_ret_ = 0;
  Near near_[4];                  // before the call: pages start-1, start, end-1, end
  std::vector<uint64_t> before_;  // VMA boundaries before the call
  std::vector<uint64_t> after_;
};

// ---------------------------------------------------------------------------
// The random generator.

class Generator {
 public:
  explicit Generator(uint64_t seed) : rng_(seed) {}

  uint64_t Below(uint64_t n) { return n == 0 ? 0 : rng_() % n; }
  bool Chance(int percent) { return static_cast<int>(Below(100)) < percent; }

  Op Next(const Harness& h) {
    // Remember the last move that succeeded, to move it back later (a
    // faulted block merges only where its pgoff fits, spec S24/S25).
    if (pending_move_.kind == OpKind::kRemap &&
        h.last_ret() == static_cast<int64_t>(pending_move_.new_addr)) {
      last_move_ = pending_move_;
    }
    pending_move_ = Op();
    Op op;
    const int r = static_cast<int>(Below(1000));
    uint64_t first = 0, n = 0;
    PickRange(h, &first, &n);
    op.addr = PageAddr(first);
    op.len = n * kPageSize;
    if (r < 300) {
      op.kind = OpKind::kMap;
      FillMap(&op, first);
    } else if (r < 430) {
      op.kind = OpKind::kUnmap;
    } else if (r < 600) {
      op.kind = OpKind::kProtect;
      op.prot = Chance(40) ? (kProtRead | kProtWrite) : static_cast<int>(Below(8));
      if (Chance(2)) op.prot |= kProtSem;
      if (Chance(1)) op.prot |= 0x10;  // EINVAL
    } else if (r < 730) {
      op.kind = OpKind::kAdvise;
      static const int kAdvices[] = {
          kMadvNormal,      kMadvRandom,     kMadvSequential,   kMadvDontfork,
          kMadvDofork,      kMadvWipeonfork, kMadvKeeponfork,   kMadvDontdump,
          kMadvDodump,      kMadvHugepage,   kMadvNohugepage,   kMadvMergeable,
          kMadvUnmergeable, kMadvWillneed,   kMadvCold,         kMadvDontneed,
          kMadvFree,        kMadvPageout,    kMadvPopulateRead, kMadvPopulateWrite};
      op.advice = kAdvices[Below(sizeof(kAdvices) / sizeof(kAdvices[0]))];
      if (Chance(1)) op.advice = 77;  // not an advice: EINVAL
    } else if (r < 790) {
      op.kind = Chance(60) ? OpKind::kLock : OpKind::kUnlock;
      if (op.kind == OpKind::kLock && Chance(30)) op.flags = kMlockOnfault;
      if (op.kind == OpKind::kLock && Chance(1)) op.flags = 2;  // EINVAL
      if (Chance(30)) {
        // mlock rounds an unaligned start down and extends len to match.
        const uint64_t d = 1 + Below(kPageSize - 1);
        op.addr += d;
        op.len = op.len > d ? op.len - d : op.len;
      }
    } else if (r < 794) {
      op.kind = OpKind::kSeal;
      if (op.len > 8 * kPageSize) op.len = (1 + Below(8)) * kPageSize;
      if (Chance(2)) op.seal_flags = 1;
    } else if (r < 860 && FillRemap(h, &op, first, n)) {
      if (op.flags == (kMremapMaymove | kMremapFixed)) pending_move_ = op;
      return op;
    } else if (r < 862) {
      op.kind = OpKind::kFork;
      return op;
    } else {
      op.kind = OpKind::kTouch;
      op.len = 0;
      op.addr = PageAddr(first) + Below(kPageSize);
      op.write = Chance(50);
      return op;
    }
    if (op.kind != OpKind::kLock && op.kind != OpKind::kUnlock) {
      if (Chance(2)) op.addr += 1 + Below(kPageSize - 1);  // unaligned: EINVAL
    }
    if (Chance(15) && op.len > 0) op.len -= Below(kPageSize);  // rounded up again
    if (Chance(1)) op.len = 0;
    return op;
  }

 private:
  // A page range in the window: often starting or ending at a VMA boundary
  // of the model or at a state change of the reference, to exercise merges.
  void PickRange(const Harness& h, uint64_t* first, uint64_t* n) {
    uint64_t p = Below(kWinPages);
    const int how = static_cast<int>(Below(100));
    if (how < 35) {
      const Vma* v = h.as().FindVma(PageAddr(p));
      if (v != nullptr) {
        const uint64_t edge = Chance(50) ? v->start : v->end;
        if (edge >= kBase && edge < PageAddr(kWinPages)) p = (edge - kBase) / kPageSize;
      }
    } else if (how < 60) {
      for (uint64_t q = p + 1; q < kWinPages; ++q) {
        if (!h.ref().page(q).SameMapping(h.ref().page(q - 1)) ||
            h.ref().page(q).off != h.ref().page(q - 1).off + 1) {
          p = q;
          break;
        }
      }
    }
    const int size = static_cast<int>(Below(100));
    uint64_t len = size < 65 ? 1 + Below(8) : size < 95 ? 1 + Below(64) : 1 + Below(512);
    if (Chance(20) && p > 0) {
      // End at the chosen boundary instead of starting there.
      const uint64_t back = len < p ? len : p;
      p -= back;
      len = back;
    }
    if (p + len > kWinPages) len = kWinPages - p;
    *first = p;
    *n = len;
  }

  static bool AnySealed(const Harness& h, uint64_t first, uint64_t n) {
    for (uint64_t i = first; i < first + n && i < kWinPages; ++i) {
      if (h.ref().page(i).mapped && (h.ref().page(i).flags & kVmSealed)) return true;
    }
    return false;
  }

  // mremap of [first, first+n): in place (shrink, grow, no-op) or a
  // MREMAP_FIXED move inside the window. False when sealed pages are in the
  // way (the reference does not model those; the scripted tests do).
  bool FillRemap(const Harness& h, Op* op, uint64_t first, uint64_t n) {
    op->kind = OpKind::kRemap;
    if (last_move_.kind == OpKind::kRemap && Chance(30)) {
      // Back to where it came from (a moved-back faulted block merges).
      const uint64_t from = last_move_.new_addr;
      const uint64_t pages = PageAlign(last_move_.new_len) / kPageSize;
      const uint64_t to = PageDown(last_move_.addr);
      last_move_ = Op();
      if ((to - kBase) / kPageSize + pages > kWinPages ||
          AnySealed(h, (from - kBase) / kPageSize, pages) ||
          AnySealed(h, (to - kBase) / kPageSize, pages)) {
        return false;
      }
      op->addr = from;
      op->len = op->new_len = pages * kPageSize;
      op->flags = kMremapMaymove | kMremapFixed;
      op->new_addr = to;
      return true;
    }
    const int how = static_cast<int>(Below(100));
    uint64_t new_n = n;
    if (how < 45) {
      // A move.
      op->flags = kMremapMaymove | kMremapFixed;
      if (Chance(40)) new_n = 1 + Below(n + 8);
      uint64_t dest = Below(kWinPages - new_n + 1);
      if (Chance(40)) {
        // Next to an existing VMA, so that the copy may merge.
        const Vma* v = h.as().FindVma(PageAddr(dest));
        if (v != nullptr && v->end <= PageAddr(kWinPages)) {
          const uint64_t s = (v->start - kBase) / kPageSize;
          const uint64_t e = (v->end - kBase) / kPageSize;
          if (Chance(50) && e + new_n <= kWinPages) {
            dest = e;
          } else if (s >= new_n) {
            dest = s - new_n;
          }
        }
      }
      op->new_addr = PageAddr(dest);
      if (AnySealed(h, dest, new_n)) return false;
      if (Chance(3)) op->flags = kMremapFixed;                  // no MAYMOVE: EINVAL
      if (Chance(2)) op->new_addr += 1 + Below(kPageSize - 1);  // EINVAL
      if (Chance(2)) {
        op->flags |= kMremapDontunmap;  // with a length change: EINVAL
        if (new_n == n) ++new_n;
      }
    } else {
      // In place.
      op->flags = 0;
      if (how < 70) {
        new_n = 1 + Below(n);
      } else {
        new_n = n + 1 + Below(16);
        if (first + new_n > kWinPages) new_n = kWinPages - first;
      }
      if (Chance(2)) op->flags = 8;  // EINVAL
    }
    if (AnySealed(h, first, n)) return false;
    op->len = n * kPageSize;
    op->new_len = new_n * kPageSize;
    if (Chance(15)) op->len -= Below(kPageSize);
    if (Chance(15)) op->new_len -= Below(kPageSize);
    if (Chance(1)) op->new_len = 0;                       // EINVAL
    if (Chance(2)) op->addr += 1 + Below(kPageSize - 1);  // EINVAL
    return true;
  }

  void FillMap(Op* op, uint64_t first) {
    const int kind = static_cast<int>(Below(100));
    const int fix = static_cast<int>(Below(10));
    op->flags = fix < 5 ? kMapFixed : fix < 9 ? kMapFixedNoreplace : kMapFixed | kMapFixedNoreplace;
    if (kind < 52) {
      op->fd = 0;
      op->flags |= kMapPrivate;
    } else if (kind < 55) {
      op->fd = 0;
      op->flags |= kMapDroppable;
    } else if (kind < 65) {
      op->fd = 0;
      op->flags |= kMapShared;
    } else {
      op->fd = Chance(85) ? 1 + static_cast<int>(Below(3)) : 4 + static_cast<int>(Below(3));
      op->flags |= kind < 83 ? kMapPrivate : kMapShared;
      // Mostly offsets that continue across the window, so neighbours merge.
      op->offset = (Chance(70) ? first : Below(8192)) * kPageSize;
      if ((op->flags & kMapType) == kMapShared && Chance(15)) {
        op->flags = (op->flags & ~kMapType) | kMapSharedValidate;
        if (Chance(30)) op->flags |= Chance(50) ? kMap32Bit : (21 << kMapHugeShift);
      }
    }
    if (op->fd == 0 && Chance(1)) op->flags = (op->flags & ~kMapType) | kMapSharedValidate;
    op->prot = Chance(45) ? (kProtRead | kProtWrite) : static_cast<int>(Below(8));
    if (Chance(1)) op->prot |= 0x10;  // ignored by mmap
    if (Chance(25)) op->flags |= kMapNoreserve;
    if (Chance(4)) op->flags |= kMapLocked;
    if (Chance(4)) op->flags |= kMapPopulate;
    if (Chance(3)) op->flags |= kMapStack;
    if (Chance(1) && (op->fd != 0 || (op->flags & kMapType) != kMapPrivate)) {
      op->flags |= kMapGrowsdown;  // EINVAL for files, shared and droppable memory
    }
    if (Chance(1)) op->offset += 1 + Below(kPageSize - 1);  // EINVAL
  }

  std::mt19937_64 rng_;
  Op pending_move_;  // the move just generated
  Op last_move_;     // the last move that succeeded
};

// ---------------------------------------------------------------------------
// The runs.

uint64_t EnvU64(const char* name, uint64_t fallback) {
  const char* s = std::getenv(name);
  if (s == nullptr || *s == '\0') return fallback;
  return std::strtoull(s, nullptr, 0);
}

// What a run did, for the summary line (and VMASHADOW_DIFF_STATS=1 for a
// table per call).
struct RunStats {
  uint64_t ops = 0;
  uint64_t succeeded = 0;
  uint64_t vma_samples = 0;
  uint64_t vma_sum = 0;
  std::map<std::string, std::pair<uint64_t, uint64_t>> per_call;  // calls, successes

  void Note(const Op& op, int64_t ret, const AddressSpace& as, uint64_t i) {
    ++ops;
    succeeded += ret >= 0;
    std::string name = Describe(op);
    name.resize(name.find('('));
    if (op.kind == OpKind::kAdvise) name = name + " " + AdviceName(op.advice);
    auto& e = per_call[name];
    ++e.first;
    e.second += ret >= 0;
    if (i % 64 == 0) {
      ++vma_samples;
      vma_sum += as.map_count();
    }
  }
  void Print(const char* what) const {
    std::printf("%s: %" PRIu64 " operations, %" PRIu64 " succeeded, %.0f VMAs on average\n", what,
                ops, succeeded, vma_samples ? static_cast<double>(vma_sum) / vma_samples : 0.0);
    if (std::getenv("VMASHADOW_DIFF_STATS") == nullptr) return;
    for (const auto& [name, c] : per_call) {
      std::printf("  %-24s %8" PRIu64 " calls %8" PRIu64 " succeeded\n", name.c_str(), c.first,
                  c.second);
    }
  }
};

// Runs `ops` random operations from `seed`, starting afresh every
// `episode` operations (so sealed pages do not take over the window).
// Fails the test, with the seed and the last operations, on the first
// divergence.
void RunSeed(const char* profile_name, uint64_t seed, uint64_t ops, uint64_t episode,
             RunStats* stats) {
  const KernelProfile* profile = FindKernelProfile(profile_name);
  ASSERT_NE(profile, nullptr) << profile_name;
  Harness h(*profile);
  Generator gen(seed);
  for (uint64_t i = 0; i < ops; ++i) {
    if (i % episode == 0) h.Reset();
    const Op op = gen.Next(h);
    const std::string err = h.Step(op);
    if (!err.empty()) {
      std::string log;
      for (const std::string& line : h.log()) log += "  " + line + "\n";
      std::string around;
      auto dump = [&](uint64_t addr, uint64_t len) {
        if (addr < kBase || addr >= PageAddr(kWinPages)) return;
        const uint64_t p = (addr - kBase) / kPageSize;
        const uint64_t lo = p > 8 ? p - 8 : 0;
        const uint64_t hi = std::min(p + len / kPageSize + 9, kWinPages);
        around += "model VMAs near " + PageRef(addr) + ":\n" + h.DumpModel(lo, hi) +
                  "reference near " + PageRef(addr) + ":\n" + h.DumpRef(lo, hi);
      };
      dump(op.addr, op.len);
      if (op.kind == OpKind::kRemap) dump(op.new_addr, op.new_len);
      FAIL() << "profile " << profile_name << ", seed " << seed << " (VMASHADOW_SEED=" << seed
             << "), step " << i << " (" << i % episode << " into its episode):\n  " << err
             << "\nlast operations:\n"
             << log << around;
    }
    stats->Note(op, h.last_ret(), h.as(), i);
  }
}

// >= 200,000 operations on the profile of the running kernel.
TEST(Differential, RandomOperationsMatchThePageReference) {
  const uint64_t ops = EnvU64("VMASHADOW_DIFF_OPS", 40000);
  std::vector<uint64_t> seeds = {1, 2, 3, 4, 5};
  if (const char* s = std::getenv("VMASHADOW_SEED"); s != nullptr && *s != '\0') {
    seeds.push_back(std::strtoull(s, nullptr, 0));
  }
  RunStats stats;
  for (uint64_t seed : seeds) {
    RunSeed("6.18-fc", seed, ops, 5000, &stats);
    if (HasFailure()) return;
  }
  stats.Print("6.18-fc");
  EXPECT_EQ(stats.ops, seeds.size() * ops);
}

// The other profiles differ in which anon_vmas may merge (the edge check
// adapts) and in mremap across VMAs (6.12, 6.15: EFAULT).
class DifferentialProfiles : public ::testing::TestWithParam<const char*> {};

TEST_P(DifferentialProfiles, RandomOperationsMatchThePageReference) {
  const uint64_t ops = EnvU64("VMASHADOW_DIFF_OPS", 40000) / 2;
  RunStats stats;
  RunSeed(GetParam(), 600 + std::strlen(GetParam()), ops, 5000, &stats);
  if (HasFailure()) return;
  stats.Print(GetParam());
  EXPECT_EQ(stats.ops, ops);
}

INSTANTIATE_TEST_SUITE_P(Profiles, DifferentialProfiles,
                         ::testing::Values("6.12", "6.15", "6.17", "6.18"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           std::string name = std::string("v") + info.param;
                           for (char& c : name) c = c == '.' ? '_' : c;
                           return name;
                         });

// ---------------------------------------------------------------------------
// Scripted sequences through the same harness: each step must agree with the
// reference (return value, pages, invariants) and return what the spec says.

Op MapOp(uint64_t page, uint64_t pages, int prot, int flags, int fd = 0, uint64_t off_pages = 0) {
  Op op;
  op.kind = OpKind::kMap;
  op.addr = PageAddr(page);
  op.len = pages * kPageSize;
  op.prot = prot;
  op.flags = flags;
  op.fd = fd;
  op.offset = off_pages * kPageSize;
  return op;
}
Op RangeOp(OpKind kind, uint64_t page, uint64_t pages) {
  Op op;
  op.kind = kind;
  op.addr = PageAddr(page);
  op.len = pages * kPageSize;
  return op;
}
Op ProtectOp(uint64_t page, uint64_t pages, int prot) {
  Op op = RangeOp(OpKind::kProtect, page, pages);
  op.prot = prot;
  return op;
}
Op AdviseOp(uint64_t page, uint64_t pages, int advice) {
  Op op = RangeOp(OpKind::kAdvise, page, pages);
  op.advice = advice;
  return op;
}
Op TouchOp(uint64_t page, bool write) {
  Op op = RangeOp(OpKind::kTouch, page, 0);
  op.write = write;
  return op;
}
Op RemapOp(uint64_t page, uint64_t pages, uint64_t new_pages, int flags, uint64_t new_page) {
  Op op = RangeOp(OpKind::kRemap, page, pages);
  op.new_len = new_pages * kPageSize;
  op.flags = flags;
  op.new_addr = PageAddr(new_page);
  return op;
}

constexpr int kRw = kProtRead | kProtWrite;
constexpr int kAnonNew = kMapPrivate | kMapFixedNoreplace;  // fd 0 adds MAP_ANONYMOUS

// Runs one step; fails the test when model and reference disagree or the
// result is not `want`.
void Expect(Harness& h, const Op& op, int64_t want) {
  const std::string err = h.Step(op);
  EXPECT_EQ(err, "") << Describe(op);
  EXPECT_EQ(h.last_ret(), want) << Describe(op) << " returned " << RetStr(h.last_ret());
}
int64_t At(uint64_t page) { return static_cast<int64_t>(PageAddr(page)); }

// The model's layout of window pages [0, n): '.' unmapped, equal letters one VMA.
std::string Draw(Harness& h, uint64_t n) {
  std::string s(n, '.');
  char letter = 'A';
  for (const Vma* v = h.as().FindVma(kBase); v != nullptr && v->start < PageAddr(n); v = v->next) {
    for (uint64_t a = v->start; a < v->end && a < PageAddr(n); a += kPageSize) {
      s[(a - kBase) / kPageSize] = letter;
    }
    ++letter;
  }
  return s;
}

class Script : public ::testing::Test {
 protected:
  Script() : h_(DefaultKernelProfile()) {}
  Harness h_;
};

// The harness itself must notice a model that went its own way.
TEST_F(Script, TheHarnessNoticesADivergence) {
  Expect(h_, MapOp(0, 4, kRw, kAnonNew), At(0));
  // Behind the reference's back:
  ASSERT_EQ(h_.as().Protect(PageAddr(1), kPageSize, kProtRead).ret, 0);
  const std::string err = h_.Step(TouchOp(3, false));
  EXPECT_NE(err.find("page p1"), std::string::npos) << err;
}

// S14: mprotect over rw | hole | rw changes the part before the hole and
// returns ENOMEM; nothing is rolled back.
TEST_F(Script, MprotectOverAHoleKeepsWhatCameBefore) {
  Expect(h_, MapOp(0, 2, kRw, kAnonNew), At(0));
  Expect(h_, MapOp(3, 2, kRw, kAnonNew), At(3));
  Expect(h_, ProtectOp(0, 5, kProtRead), -ENOMEM);
  EXPECT_EQ(h_.ref().page(1).flags & kVmRwx, kVmRead);
  EXPECT_EQ(h_.ref().page(3).flags & kVmRwx, kVmRead | kVmWrite);
  EXPECT_EQ(Draw(h_, 6), "AA.BB.");
}

// S22: munmap(0..4) of 0-8 whose 4-8 is sealed fails with EPERM but leaves
// the split at 2 it already made; nothing is unmapped and nothing re-merges.
TEST_F(Script, FailedMunmapIntoASealLeavesTheSplit) {
  Expect(h_, MapOp(0, 8, kRw, kAnonNew), At(0));
  Expect(h_, RangeOp(OpKind::kSeal, 4, 4), 0);
  EXPECT_EQ(Draw(h_, 8), "AAAABBBB");
  Expect(h_, RangeOp(OpKind::kUnmap, 2, 4), -EPERM);
  EXPECT_EQ(Draw(h_, 8), "AABBCCCC");
  Expect(h_, MapOp(2, 4, kRw, kMapPrivate | kMapFixed), -EPERM);  // MAP_FIXED onto it too
  Expect(h_, ProtectOp(0, 8, kProtRead),
         -EPERM);  // 0-4 changed first (docs/errno-order.md#mprotect)
  EXPECT_EQ(Draw(h_, 8), "AAAABBBB");
  Expect(h_, RangeOp(OpKind::kLock, 4, 1), 0);  // mlock is allowed, and splits
  EXPECT_EQ(Draw(h_, 8), "AAAABCCC");
}

// madvise applies to the mapped parts, skipping holes, then reports ENOMEM;
// a refused VMA stops the walk with its own error.
TEST_F(Script, MadviseSkipsHolesThenReportsEnomem) {
  Expect(h_, MapOp(1, 2, kRw, kAnonNew), At(1));
  Expect(h_, MapOp(4, 2, kRw, kAnonNew), At(4));
  Expect(h_, AdviseOp(0, 7, kMadvDontdump), -ENOMEM);
  EXPECT_TRUE(h_.ref().page(1).flags & kVmDontdump);
  EXPECT_TRUE(h_.ref().page(5).flags & kVmDontdump);
  EXPECT_EQ(Draw(h_, 7), ".AA.BB.");
  Expect(h_, MapOp(3, 1, kRw, kMapShared | kMapFixedNoreplace), At(3));
  Expect(h_, AdviseOp(1, 5, kMadvWipeonfork), -EINVAL);  // stops at the shared page
  EXPECT_TRUE(h_.ref().page(2).flags & kVmWipeonfork);
  EXPECT_FALSE(h_.ref().page(4).flags & kVmWipeonfork);
  Expect(h_, AdviseOp(8, 2, kMadvNormal), -ENOMEM);  // no VMA at all
}

// mseal needs every page mapped and then applies nothing on failure.
TEST_F(Script, MsealWithAHoleAppliesNothing) {
  Expect(h_, MapOp(0, 2, kRw, kAnonNew), At(0));
  Expect(h_, MapOp(3, 2, kRw, kAnonNew), At(3));
  Expect(h_, RangeOp(OpKind::kSeal, 0, 5), -ENOMEM);
  EXPECT_FALSE(h_.ref().page(0).flags & kVmSealed);
  Expect(h_, RangeOp(OpKind::kSeal, 1, 1), 0);
  EXPECT_EQ(Draw(h_, 5), "AB.CC");
  Expect(h_, RangeOp(OpKind::kSeal, 0, 1), 0);  // sealed neighbours merge (S21)
  EXPECT_EQ(Draw(h_, 5), "AA.BB");
  // A read-only sealed anonymous VMA refuses discards; a writable one not.
  Expect(h_, AdviseOp(0, 2, kMadvDontneed), 0);
  Expect(h_, MapOp(6, 1, kProtRead, kAnonNew), At(6));
  Expect(h_, RangeOp(OpKind::kSeal, 6, 1), 0);
  Expect(h_, AdviseOp(6, 1, kMadvDontneed), -EPERM);
  Expect(h_, AdviseOp(6, 1, kMadvDontdump), 0);
}

// mlock applies the flag to the whole range, then populates until it meets
// a PROT_NONE VMA (EFAULT, reported as ENOMEM); what lies after stays
// unfaulted.
TEST_F(Script, MlockStopsPopulatingAtProtNone) {
  Expect(h_, MapOp(0, 2, kRw, kAnonNew | kMapNoreserve), At(0));
  Expect(h_, MapOp(2, 2, kProtNone, kAnonNew), At(2));
  Expect(h_, MapOp(4, 2, kRw, kAnonNew), At(4));
  Expect(h_, RangeOp(OpKind::kLock, 0, 6), -ENOMEM);
  for (uint64_t i = 0; i < 6; ++i) EXPECT_TRUE(h_.ref().page(i).flags & kVmLocked) << i;
  EXPECT_NE(h_.as().FindVma(PageAddr(0))->anon.anon_vma, 0u);
  EXPECT_EQ(h_.as().FindVma(PageAddr(4))->anon.anon_vma, 0u);
}

// S6 through the reference's ACCOUNT rule: RW -> R drops VM_ACCOUNT only on
// an unfaulted private anonymous VMA; a private file mapping made writable
// gains it and keeps it.
TEST_F(Script, AccountFollowsTheFaultState) {
  Expect(h_, MapOp(0, 1, kRw, kAnonNew), At(0));
  Expect(h_, MapOp(2, 1, kRw, kAnonNew), At(2));
  Expect(h_, TouchOp(2, true), 0);
  Expect(h_, ProtectOp(0, 3, kProtRead), -ENOMEM);
  Expect(h_, ProtectOp(2, 1, kProtRead), 0);
  EXPECT_FALSE(h_.ref().page(0).flags & kVmAccount);
  EXPECT_TRUE(h_.ref().page(2).flags & kVmAccount);
  Expect(h_, MapOp(4, 2, kProtRead, kMapPrivate | kMapFixedNoreplace, 1, 4), At(4));
  EXPECT_FALSE(h_.ref().page(4).flags & kVmAccount);
  Expect(h_, ProtectOp(5, 1, kRw), 0);
  Expect(h_, ProtectOp(5, 1, kProtRead), 0);
  EXPECT_TRUE(h_.ref().page(5).flags & kVmAccount);
  EXPECT_EQ(Draw(h_, 6), "A.B.CD");
}

// S24: an unfaulted block moved next to an unfaulted neighbour takes the
// pgoff of its new home and merges; a faulted one keeps its pgoff and only
// merges back where it came from.
TEST_F(Script, MremapMovesByFaultState) {
  Expect(h_, MapOp(0, 2, kRw, kAnonNew), At(0));
  Expect(h_, MapOp(10, 2, kRw, kAnonNew), At(10));
  Expect(h_, RemapOp(10, 2, 2, kMremapMaymove | kMremapFixed, 2), At(2));
  EXPECT_EQ(Draw(h_, 12), "AAAA........");
  Expect(h_, MapOp(20, 2, kRw, kAnonNew), At(20));
  Expect(h_, TouchOp(20, true), 0);
  Expect(h_, RemapOp(20, 2, 2, kMremapMaymove | kMremapFixed, 4), At(4));
  EXPECT_EQ(Draw(h_, 6), "AAAABB");
  Expect(h_, RemapOp(4, 2, 2, kMremapMaymove | kMremapFixed, 20), At(20));
  Expect(h_, MapOp(22, 1, kRw, kAnonNew), At(22));  // merges with the returned block
  EXPECT_EQ(h_.as().FindVma(PageAddr(20))->end, PageAddr(23));
  // In place: grow into free space, refuse to grow into a mapping.
  Expect(h_, RemapOp(0, 4, 6, 0, 0), At(0));
  EXPECT_EQ(Draw(h_, 8), "AAAAAA..");
  Expect(h_, MapOp(7, 1, kProtRead, kAnonNew), At(7));
  Expect(h_, RemapOp(0, 6, 8, 0, 0), -ENOMEM);
  Expect(h_, RemapOp(0, 6, 3, 0, 0), At(0));
  EXPECT_EQ(Draw(h_, 8), "AAA....B");
}

// ---------------------------------------------------------------------------
// Model bugs the random run found, reduced to a few calls.

// do_mmap() checks MAP_SHARED_VALIDATE against the kernel's LEGACY_MAP_MASK,
// which also holds MAP_32BIT, MAP_ABOVE4G and the MAP_HUGE_* size bits
// (include/linux/mman.h, 6.12; seen on the running 6.18 kernel too).
// MAP_FIXED_NOREPLACE and MAP_SYNC are not in it: EOPNOTSUPP. The model's
// mask lacked the first four.
TEST(FoundBug, MapSharedValidateAcceptsTheKernelsLegacyFlags) {
  const int sv = kMapSharedValidate | kMapFixed;
  const struct {
    int flags;
    int64_t want;
  } kCases[] = {
      {sv | kMap32Bit, At(0)},
      {sv | kMapAbove4G, At(0)},
      {sv | (21 << kMapHugeShift), At(0)},
      {sv | (30 << kMapHugeShift), At(0)},
      {kMapSharedValidate | kMapFixedNoreplace, -EOPNOTSUPP},
      {sv | kMapSync, -EOPNOTSUPP},
  };
  for (const auto& c : kCases) {
    Harness h(DefaultKernelProfile());
    Expect(h, MapOp(0, 1, kRw, c.flags, 1, 0), c.want);
  }
}

// Map() interned the File before mmap_region() unmapped the old range; when
// the replaced VMAs held the last references, the File was freed and the new
// VMA pointed at freed arena memory (Validate: "vma points at a file not in
// the file list").
TEST(FoundBug, FixedMapOverTheLastVmaOfAFileKeepsTheFile) {
  Harness h(DefaultKernelProfile());
  Expect(h, MapOp(0, 1, kRw, kMapPrivate | kMapFixed, 1, 0), At(0));
  Expect(h, MapOp(0, 1, kRw, kMapPrivate | kMapFixed, 1, 0), At(0));
  const Vma* v = h.as().FindVma(PageAddr(0));
  ASSERT_NE(v, nullptr);
  ASSERT_NE(v->file, nullptr);
  EXPECT_EQ(v->file->id, 1u);
}

// mlock(addr, 0) returns 0 (apply_vma_lock_flags does nothing and
// __mm_populate has no page to visit), even on PROT_NONE memory; seen on
// the running kernel. The model's PopulateRange(start, end) visited the VMA
// containing start even when start == end (its loop tested v->start < end,
// true when start lies inside v) and reported EFAULT -> ENOMEM.
// A MAP_FIXED onto a sealed VMA fails with EPERM after the munmap gather
// has split the first VMA at addr (t16); those VMAs changed, so the
// Outcome's changed range must cover the split. The model returns an empty
// range.
TEST(FoundBug, FailedFixedMapReportsTheSplitsItLeaves) {
  Harness h(DefaultKernelProfile());
  Expect(h, MapOp(0, 4, kRw, kAnonNew), At(0));
  Expect(h, RangeOp(OpKind::kSeal, 3, 1), 0);
  EXPECT_EQ(Draw(h, 4), "AAAB");
  MapArgs a;
  a.addr = PageAddr(2);
  a.len = 4 * kPageSize;
  a.prot = kRw;
  a.flags = kMapPrivate | kMapAnonymous | kMapFixed;
  const Outcome o = h.as().Map(a);
  EXPECT_EQ(o.ret, -EPERM);
  EXPECT_EQ(Draw(h, 4), "AABC");  // the split at 2 stays
  EXPECT_LT(o.changed_start, o.changed_end);
  EXPECT_LE(o.changed_start, PageAddr(2));
  EXPECT_GE(o.changed_end, PageAddr(2));
}

// 6.15+: a moved (copy_vma) faulted block may merge into an unfaulted
// neighbour; vma_expand() then takes the anon_vma of the VMA copied from
// (dup_anon_vma from vmg->copied_from), or the moved anonymous pages would
// sit in a VMA without anon_vma. The model's MergeNewRange() drops r.anon
// on both the left and the right merge.
TEST(FoundBug, MremapMergeKeepsTheMovedAnonVma) {
  for (const bool into_next : {false, true}) {
    SCOPED_TRACE(into_next ? "merging into next" : "merging into prev");
    Harness h(DefaultKernelProfile());
    // File 1, pages 0-1 and 4-5 at offsets 0 and 4, unfaulted; pages 10-11
    // at offset 2, written (CoW: anon_vma).
    Expect(h,
           MapOp(into_next ? 4 : 0, 2, kRw, kMapPrivate | kMapFixedNoreplace, 1, into_next ? 4 : 0),
           At(into_next ? 4 : 0));
    Expect(h, MapOp(10, 2, kRw, kMapPrivate | kMapFixedNoreplace, 1, 2), At(10));
    Expect(h, TouchOp(10, true), 0);
    Expect(h, RemapOp(10, 2, 2, kMremapMaymove | kMremapFixed, 2), At(2));
    const Vma* v = h.as().FindVma(PageAddr(2));
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(v->start, PageAddr(into_next ? 2 : 0));
    EXPECT_EQ(v->end, PageAddr(into_next ? 6 : 4));
    EXPECT_NE(v->anon.anon_vma, 0u);
  }
}

TEST(FoundBug, MlockOfZeroLengthPopulatesNothing) {
  Harness h(DefaultKernelProfile());
  Expect(h, MapOp(0, 2, kProtNone, kAnonNew), At(0));
  Expect(h, RangeOp(OpKind::kLock, 1, 0), 0);
}

}  // namespace
}  // namespace vmashadow
