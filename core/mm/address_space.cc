// address_space.cc — VMA lifetime, split, the merge primitives, munmap, mmap,
// brk, faults and fork. The flag-changing calls (mprotect, mlock, madvise,
// mseal) live in modify.cc, mremap in remap.cc, placement in placement.cc.
//
// Each function names the kernel function it mirrors; "6.12" means the
// Debian linux-source-6.12 tree, "6.18" the behaviour the running kernel
// shows (docs/README.md). Where they differ, KernelProfile decides.
#include <new>

#include "core/mm/address_space.h"
#include "core/mm/internal.h"

namespace vmashadow {

using Impl = AddressSpace::Impl;

// ---------------------------------------------------------------------------
// Lifetime.

AddressSpace::AddressSpace(Arena* arena, const KernelProfile& profile, const MmParams& params)
    : arena_(arena), profile_(&profile), params_(params), pt_(arena, params.paging_levels) {}

AddressSpace::~AddressSpace() { Clear(); }

void AddressSpace::Clear() {
  while (Vma* v = tree_.First()) Impl::RemoveVma(*this, v);
  while (files_ != nullptr) {
    File* f = files_;
    files_ = f->next_file;
    arena_->Free(f, sizeof(File) + f->path_len);
  }
  def_flags_ = 0;
  broken_ = false;
}

Vma* Impl::NewVma(AS& as) {
  void* p = as.arena_->Allocate(sizeof(Vma));
  if (p == nullptr) {
    as.broken_ = true;
    return nullptr;
  }
  return new (p) Vma();
}

void Impl::FreeVma(AS& as, Vma* v) {
  File* f = v->file;
  v->~Vma();
  as.arena_->Free(v, sizeof(Vma));
  UnrefFile(as, f);
}

Vma* Impl::InsertNew(AS& as, const MergeProposal& r, SpecialKind special) {
  Vma* v = NewVma(as);
  if (v == nullptr) return nullptr;
  v->start = r.start;
  v->end = r.end;
  v->pgoff = r.pgoff;
  v->flags = r.flags;
  v->file = r.file;
  RefFile(v->file);
  v->anon = r.anon;
  v->special = special;
  v->policy_id = r.policy_id;
  v->uffd_id = r.uffd_id;
  as.tree_.Insert(v);
  return v;
}

void Impl::RemoveVma(AS& as, Vma* v) {
  as.tree_.Erase(v);
  FreeVma(as, v);
}

static size_t CStrLen(const char* s) {
  size_t n = 0;
  while (s != nullptr && s[n] != '\0') ++n;
  return n;
}

static File* AllocFile(AddressSpace::Impl::AS& as, Arena* arena, const char* path, size_t len) {
  (void)as;
  if (len > 4095) len = 4095;
  void* p = arena->Allocate(sizeof(File) + len);
  if (p == nullptr) return nullptr;
  File* f = new (p) File();
  for (size_t i = 0; i < len; ++i) f->path[i] = path[i];
  f->path[len] = '\0';
  f->path_len = static_cast<uint16_t>(len);
  return f;
}

File* Impl::InternFile(AS& as, const FileDesc& d) {
  for (File* f = as.files_; f != nullptr; f = f->next_file) {
    if (f->id == d.id) return f;
  }
  File* f = AllocFile(as, as.arena_, d.path, CStrLen(d.path));
  if (f == nullptr) {
    as.broken_ = true;
    return nullptr;
  }
  f->id = d.id;
  f->inode = d.inode;
  f->dev_major = d.dev_major;
  f->dev_minor = d.dev_minor;
  f->kind = d.kind;
  f->deleted = d.deleted;
  f->has_close = d.has_close;
  f->fd_readable = d.readable;
  f->fd_writable = d.writable;
  f->fd_append = d.append;
  f->noexec_mount = d.noexec_mount;
  f->size = d.size;
  f->next_file = as.files_;
  as.files_ = f;
  return f;
}

// shmem_zero_setup(): a fresh shmem file named "/dev/zero", already unlinked.
File* Impl::NewShmemFile(AS& as, const FileDesc* d) {
  static const char kDevZero[] = "/dev/zero";
  File* f = AllocFile(as, as.arena_, kDevZero, sizeof(kDevZero) - 1);
  if (f == nullptr) {
    as.broken_ = true;
    return nullptr;
  }
  f->id = as.next_shmem_id_++;
  f->kind = FileKind::kShmem;
  f->deleted = true;
  f->dev_major = 0;
  f->dev_minor = 1;
  f->fd_writable = true;
  if (d != nullptr) {
    f->inode = d->inode;
    f->dev_major = d->dev_major;
    f->dev_minor = d->dev_minor;
  }
  f->next_file = as.files_;
  as.files_ = f;
  return f;
}

void Impl::UnrefFile(AS& as, File* f) {
  if (f == nullptr) return;
  --f->refs;
  DropIfUnused(as, f);
}

void Impl::DropIfUnused(AS& as, File* f) {
  if (f == nullptr || f->refs != 0) return;
  File** pp = &as.files_;
  while (*pp != nullptr && *pp != f) pp = &(*pp)->next_file;
  if (*pp == f) *pp = f->next_file;
  as.arena_->Free(f, sizeof(File) + f->path_len);
}

// ---------------------------------------------------------------------------
// Seeding and reconciliation.

int AddressSpace::SeedVma(const VmaSeed& s) {
  if (!PageAligned(s.start) || !PageAligned(s.end) || s.end <= s.start) return -EINVAL;
  if (tree_.FindVmaIntersection(s.start, s.end) != nullptr) return -EEXIST;
  File* f = nullptr;
  if (s.file != nullptr) {
    f = Impl::InternFile(*this, *s.file);
    if (f == nullptr) return -ENOMEM;
  } else if (s.special == SpecialKind::kOtherSpecial && s.special_name != nullptr) {
    FileDesc d;
    d.id = next_shmem_id_++;
    d.path = s.special_name;
    f = Impl::InternFile(*this, d);
    if (f == nullptr) return -ENOMEM;
  }
  Vma* v = Impl::NewVma(*this);
  if (v == nullptr) {
    Impl::DropIfUnused(*this, f);
    return -ENOMEM;
  }
  v->start = s.start;
  v->end = s.end;
  v->pgoff = s.pgoff;
  v->flags = s.flags;
  v->file = f;
  Impl::RefFile(f);
  v->anon = s.anon;
  v->special = s.special;
  if (s.anon.anon_vma >= next_anon_vma_) next_anon_vma_ = s.anon.anon_vma + 1;
  tree_.Insert(v);
  return 0;
}

int AddressSpace::ReconcileGrowsdown(uint64_t addr, uint64_t observed_start) {
  Vma* v = tree_.FindVma(addr);
  if (v == nullptr || v->start > addr) return -ENOENT;
  if (!(v->flags & kVmGrowsdown) || !PageAligned(observed_start)) return -EINVAL;
  if (observed_start == v->start) return 0;
  if (observed_start > v->start) return -EINVAL;
  if (v->prev != nullptr && v->prev->end > observed_start) return -EINVAL;
  const uint64_t grown = (v->start - observed_start) >> kPageShift;
  v->pgoff -= grown;
  tree_.SetBounds(v, observed_start, v->end);
  return 0;
}

int AddressSpace::MarkFaulted(uint64_t start, bool fork_child) {
  Vma* v = tree_.FindVma(start);
  if (v == nullptr || v->start != start) return -ENOENT;
  if (v->anon.anon_vma == 0) v->anon = AnonState{next_anon_vma_++, fork_child};
  return 0;
}

int AddressSpace::LearnFaulted(uint64_t start) {
  Vma* v = tree_.FindVma(start);
  if (v == nullptr || v->start != start) return -ENOENT;
  Impl::PrepareAnon(*this, v);
  return 0;
}

void AddressSpace::MarkFileDeleted(uint32_t dev_major, uint32_t dev_minor, uint64_t inode) {
  for (File* f = files_; f != nullptr; f = f->next_file) {
    if (f->inode == inode && f->dev_major == dev_major && f->dev_minor == dev_minor) {
      f->deleted = true;
    }
  }
}

int AddressSpace::SetShmemInode(uint64_t addr, uint64_t inode, uint32_t dev_major,
                                uint32_t dev_minor) {
  Vma* v = tree_.FindVma(addr);
  if (v == nullptr || v->start > addr || v->file == nullptr) return -ENOENT;
  v->file->inode = inode;
  v->file->dev_major = dev_major;
  v->file->dev_minor = dev_minor;
  return 0;
}

// ---------------------------------------------------------------------------
// Split.

int Impl::Split(AS& as, Vma* v, uint64_t addr, bool check_count, Vma** upper) {
  if (check_count && as.tree_.size() >= as.params_.max_map_count) return -ENOMEM;
  // Special mappings' may_split (special_mapping_split) refuses.
  if (v->special != SpecialKind::kNone) return -EINVAL;
  if (v->file != nullptr && v->file->kind == FileKind::kHugetlb && (addr & (kPmdSize - 1))) {
    return -EINVAL;  // hugetlb_vm_op_split
  }
  Vma* n = NewVma(as);
  if (n == nullptr) return -ENOMEM;
  SplitHugeAt(as, addr);
  n->start = addr;
  n->end = v->end;
  n->pgoff = v->pgoff + ((addr - v->start) >> kPageShift);
  n->flags = v->flags;
  n->file = v->file;
  RefFile(n->file);
  n->anon = v->anon;
  n->special = v->special;
  n->policy_id = v->policy_id;
  n->uffd_id = v->uffd_id;
  as.tree_.SetBounds(v, v->start, addr);
  as.tree_.Insert(n);
  if (upper != nullptr) *upper = n;
  return 0;
}

// ---------------------------------------------------------------------------
// Merge rules (mm/vma.c).

// The rules themselves (is_mergeable_vma, is_mergeable_anon_vma, the pgoff
// tests) are mm::WhyNotMergeable() in vma.cc.

uint64_t Impl::IgnoredFlags(const AS& as) { return mm::MergeIgnoredFlags(*as.profile_); }

bool Impl::HasClose(const Vma* v) { return mm::HasVmOpsClose(*v); }

// Mirrors are_anon_vmas_compatible().
bool Impl::AnonVmasCompatible(const Vma* a, const Vma* b) {
  return a->anon.anon_vma == 0 || b->anon.anon_vma == 0 || a->anon.anon_vma == b->anon.anon_vma;
}

// Mirrors can_vma_merge_left() (can_vma_merge_after()).
bool Impl::CanMergeLeft(const AS& as, const Vma* prev, const MergeProposal& r) {
  return prev != nullptr && prev->end == r.start &&
         mm::WhyNotMergeable(*as.profile_, *prev, mm::MergeSide::kPrev, r) ==
             mm::MergeRefusal::kNone;
}

// Mirrors can_vma_merge_right() (can_vma_merge_before()).
bool Impl::CanMergeRight(const AS& as, const Vma* prev, const Vma* next, const MergeProposal& r,
                         bool can_merge_left) {
  if (next == nullptr || next->start != r.end) return false;
  if (mm::WhyNotMergeable(*as.profile_, *next, mm::MergeSide::kNext, r) !=
      mm::MergeRefusal::kNone) {
    return false;
  }
  if (!can_merge_left) return true;
  return AnonVmasCompatible(prev, next);
}

void Impl::DupAnon(Vma* dst, const Vma* src) {
  if (src != nullptr && src->anon.anon_vma != 0 && dst->anon.anon_vma == 0) dst->anon = src->anon;
}

// Mirrors vma_merge_new_range() + vma_expand() (mm/vma.c, 6.12):
//
//   left:   PPPP|RRR          -> PPPPPPP
//   right:       RRR|NNNN     -> RRRNNNN   (next moves down, takes r.pgoff)
//   both:   PPPP|RRR|NNNN     -> PPPPPPPPPPP
Vma* Impl::MergeNewRange(AS& as, Vma* prev, Vma* next, const MergeProposal& r, bool just_expand) {
  if ((r.flags & kVmSpecial) || (prev == nullptr && next == nullptr)) return nullptr;
  const bool left = CanMergeLeft(as, prev, r);
  bool right = !just_expand && CanMergeRight(as, prev, next, r, left);
  if (left) {
    if (right && HasClose(next)) right = false;
    const uint64_t new_end = right ? next->end : r.end;
    if (right) {
      DupAnon(prev, next);
      prev->flags |= next->flags & IgnoredFlags(as);
      RemoveVma(as, next);
    }
    prev->flags |= r.flags & IgnoredFlags(as);
    if (prev->anon.anon_vma == 0) prev->anon = r.anon;  // a moved VMA's pages come along
    as.tree_.SetBounds(prev, prev->start, new_end);
    return prev;
  }
  if (right) {
    if (next->anon.anon_vma == 0) next->anon = r.anon;
    next->pgoff = r.pgoff;
    next->flags |= r.flags & IgnoredFlags(as);
    as.tree_.SetBounds(next, r.start, next->end);
    return next;
  }
  return nullptr;
}

// Mirrors vma_merge_existing_range() (mm/vma.c, 6.12). r is a range of
// `middle` whose flags (or other attributes) change:
//
//   merge_left:  PPPP|MMmm   -> PPPPPP|mm   (or middle removed when r covers it)
//   merge_right: mmMM|NNNN   -> mm|NNNNNN
//   merge_both:  PPPP|MMMM|NNNN -> PPPPPPPPPPPP
Vma* Impl::MergeExistingRange(AS& as, Vma* prev, Vma* middle, const MergeProposal& r) {
  const bool left_side = r.start == middle->start;
  const bool right_side = r.end == middle->end;
  if ((r.flags & kVmSpecial) || (!left_side && !right_side)) return nullptr;
  const bool merge_left = left_side && CanMergeLeft(as, prev, r);
  Vma* next = right_side ? middle->next : nullptr;
  bool merge_right = right_side && CanMergeRight(as, prev, next, r, merge_left);
  if (!merge_left && !merge_right) return nullptr;
  const bool delete_middle = left_side && right_side;
  if (delete_middle && HasClose(middle)) return nullptr;
  // commit_merge() -> vma_adjust_trans_huge(): boundaries moving inside
  // `middle` split a THP there.
  SplitHugeAt(as, r.start);
  SplitHugeAt(as, r.end);
  bool merge_both = merge_left && merge_right;
  if (merge_both && HasClose(next)) {
    merge_right = false;
    merge_both = false;
  }
  const uint64_t ignored = IgnoredFlags(as);
  if (merge_both) {
    DupAnon(prev, next->anon.anon_vma != 0 ? next : middle);
    prev->flags |= (middle->flags | next->flags) & ignored;
    const uint64_t new_end = next->end;
    RemoveVma(as, middle);
    RemoveVma(as, next);
    as.tree_.SetBounds(prev, prev->start, new_end);
    return prev;
  }
  if (merge_left) {
    DupAnon(prev, middle);
    prev->flags |= middle->flags & ignored;
    if (delete_middle) {
      RemoveVma(as, middle);
    } else {
      middle->pgoff += (r.end - middle->start) >> kPageShift;
      as.tree_.SetBounds(middle, r.end, middle->end);
    }
    as.tree_.SetBounds(prev, prev->start, r.end);
    return prev;
  }
  // merge_right
  DupAnon(next, middle);
  next->flags |= middle->flags & ignored;
  if (delete_middle) {
    RemoveVma(as, middle);
  } else {
    as.tree_.SetBounds(middle, middle->start, r.start);
  }
  next->pgoff = r.pgoff;
  as.tree_.SetBounds(next, r.start, next->end);
  return next;
}

// Mirrors vma_modify() followed by vm_flags_reset() (mm/vma.c, 6.12).
Vma* Impl::ModifyFlags(AS& as, Vma* prev, Vma* vma, uint64_t start, uint64_t end,
                       uint64_t new_flags, int* err) {
  *err = 0;
  const MergeProposal r = ProposalFor(vma, start, end, new_flags);
  if (Vma* merged = MergeExistingRange(as, prev, vma, r)) return merged;
  if (vma->start < start) {
    // split_vma(vma, start, new_below=1): the lower part becomes a new VMA.
    Vma* upper = nullptr;
    *err = Split(as, vma, start, /*check_count=*/true, &upper);
    if (*err != 0) return nullptr;
    vma = upper;
  }
  if (vma->end > end) {
    *err = Split(as, vma, end, /*check_count=*/true);
    if (*err != 0) return nullptr;
  }
  vma->flags = new_flags;
  return vma;
}

// ---------------------------------------------------------------------------
// munmap (mm/vma.c: do_vmi_munmap, vms_gather_munmap_vmas, 6.12).

int Impl::GatherUnmap(AS& as, uint64_t start, uint64_t end, Vma* vma, Vma** first) {
  *first = nullptr;
  if (vma == nullptr) vma = as.tree_.FindVmaIntersection(start, end);
  if (vma == nullptr) return 0;
  if (start > vma->start) {
    if (end < vma->end && as.tree_.size() >= as.params_.max_map_count) return -ENOMEM;
    if (vma->flags & kVmSealed) return -EPERM;
    Vma* upper = nullptr;
    const int err = Split(as, vma, start, /*check_count=*/false, &upper);
    if (err != 0) return err;
    vma = upper;
  }
  for (Vma* v = vma; v != nullptr && v->start < end; v = v->next) {
    if (v->flags & kVmSealed) return -EPERM;
    if (v->end > end) {
      const int err = Split(as, v, end, /*check_count=*/false);
      if (err != 0) return err;
    }
  }
  *first = vma;
  return 0;
}

void Impl::RemoveFrom(AS& as, Vma* v, uint64_t end) {
  if (v != nullptr && v->start < end && !as.pt_.empty()) {
    Vma* last = v;
    while (last->next != nullptr && last->next->start < end) last = last->next;
    UnmapPageTables(as, v, last);
  }
  while (v != nullptr && v->start < end) {
    Vma* next = v->next;
    RemoveVma(as, v);
    v = next;
  }
}

int Impl::UnmapRange(AS& as, uint64_t start, uint64_t end, Vma* vma) {
  Vma* first = nullptr;
  const int err = GatherUnmap(as, start, end, vma, &first);
  if (err != 0) return err;
  RemoveFrom(as, first, end);
  return 0;
}

// Mirrors do_vmi_munmap() (mm/vma.c, 6.12).
int Impl::DoMunmap(AS& as, uint64_t start, uint64_t len) {
  const uint64_t task_size = as.params_.task_size;
  if (!PageAligned(start) || start > task_size || len > task_size - start) return -EINVAL;
  const uint64_t end = start + PageAlign(len);
  if (end == start) return -EINVAL;
  Vma* vma = as.tree_.FindVmaIntersection(start, end);
  if (vma == nullptr) return 0;
  return UnmapRange(as, start, end, vma);
}

Outcome AddressSpace::Unmap(uint64_t addr, uint64_t len) {
  const int err = Impl::DoMunmap(*this, addr, len);
  if (err == -EINVAL) return Impl::Result(err);
  return Impl::Result(err, addr, addr + PageAlign(len));
}

// ---------------------------------------------------------------------------
// Faults and populate.

uint64_t Impl::StartGap(const AS& as, const Vma* v) {
  if (!(v->flags & kVmGrowsdown)) return v->start;
  return v->start > as.params_.stack_guard_gap ? v->start - as.params_.stack_guard_gap : 0;
}

// Mirrors anon_vma_prepare() + find_mergeable_anon_vma() (mm/rmap.c, mm/vma.c).
void Impl::PrepareAnon(AS& as, Vma* v) {
  if (v->anon.anon_vma != 0) return;
  // reusable_anon_vma(old, a, b): a directly below b, same policy and file,
  // flags equal but for RWX (and soft-dirty), pgoff linear; old's anon_vma
  // has a singular chain.
  // The flags merging ignores (soft-dirty; the sticky guard flag where the
  // profile has it) are ignored here too.
  const uint64_t ignored = kVmRwx | IgnoredFlags(as);
  auto compatible = [ignored](const Vma* a, const Vma* b) {
    return a->end == b->start && a->policy_id == b->policy_id && a->file == b->file &&
           !((a->flags ^ b->flags) & ~ignored) &&
           b->pgoff == a->pgoff + ((b->start - a->start) >> kPageShift);
  };
  Vma* next = v->next;
  if (next != nullptr && compatible(v, next) && next->anon.anon_vma != 0 &&
      !next->anon.fork_child) {
    v->anon = AnonState{next->anon.anon_vma, false};
    return;
  }
  Vma* prev = v->prev;
  if (prev != nullptr && compatible(prev, v) && prev->anon.anon_vma != 0 &&
      !prev->anon.fork_child) {
    v->anon = AnonState{prev->anon.anon_vma, false};
    return;
  }
  v->anon = AnonState{as.next_anon_vma_++, false};
}

// populate_vma_page_range() (mm/gup.c, 6.12): private writable memory is
// faulted for write (breaking CoW: anon_vma); everything else for read (no
// anon_vma, unless a THP fault prepares one).
int Impl::PopulateVma(AS& as, Vma* v, uint64_t start, uint64_t end) {
  if (v->flags & (kVmIo | kVmPfnmap)) return 0;
  if (v->flags & kVmLockonfault) return 0;
  if (!VmaIsAccessible(v)) return -EFAULT;
  if ((v->flags & (kVmWrite | kVmShared)) == kVmWrite) PrepareAnon(as, v);
  FaultPages(as, v, start > v->start ? start : v->start, end < v->end ? end : v->end);
  return 0;
}

int Impl::PopulateRange(AS& as, uint64_t start, uint64_t end, bool ignore_errors) {
  if (start >= end) return 0;
  for (Vma* v = as.tree_.FindVma(start); v != nullptr && v->start < end; v = v->next) {
    const int err = PopulateVma(as, v, start, end);
    if (err != 0 && !ignore_errors) return err;
  }
  return 0;
}

// ---------------------------------------------------------------------------
// Page tables.

void Impl::SplitHugeAt(AS& as, uint64_t addr) {
  if ((addr & ~kPmdMask) != 0 && !as.pt_.empty()) as.pt_.SplitHuge(addr);
}

bool Impl::ThpFaultAllowed(const AS& as, const Vma* v, uint64_t haddr) {
  // __thp_vma_allowable_orders() with TVA_IN_PF|TVA_ENFORCE_SYSFS for an
  // anonymous VMA (vma_is_anonymous: no vm_ops), then thp_vma_suitable_order().
  if (!v->is_anonymous()) return false;
  const MmParams& p = as.params_;
  if (p.thp == ThpMode::kNever || p.thp_disabled || (v->flags & kVmNohugepage)) return false;
  if (p.thp == ThpMode::kMadvise && !(v->flags & kVmHugepage)) return false;
  return haddr >= v->start && haddr + kPmdSize <= v->end && haddr + kPmdSize > haddr;
}

uint64_t Impl::FileEnd(const Vma* v) {
  if (v->file == nullptr || v->special != SpecialKind::kNone || v->file->size == 0) return v->end;
  const uint64_t file_pages = PageAlign(v->file->size) >> kPageShift;
  if (v->pgoff >= file_pages) return v->start;
  const uint64_t pages = file_pages - v->pgoff;
  return pages >= v->pages() ? v->end : v->start + (pages << kPageShift);
}

void Impl::FaultPages(AS& as, const Vma* v, uint64_t start, uint64_t end) {
  // Pages past the end of the file SIGBUS: GUP stops there, nothing maps.
  const uint64_t eof = FileEnd(v);
  if (end > eof) end = eof;
  for (uint64_t a = start; a < end;) {
    const uint64_t haddr = a & kPmdMask;
    const uint64_t slot_end = haddr + kPmdSize;
    const uint64_t next = slot_end < end && slot_end > a ? slot_end : end;
    if (ThpFaultAllowed(as, v, haddr) && as.pt_.PmdNone(haddr)) {
      // do_huge_pmd_anonymous_page(): vmf_anon_prepare() first, read or
      // write; then a THP, or the huge zero page for a read fault.
      PrepareAnon(as, const_cast<Vma*>(v));
      as.pt_.MapHuge(haddr);
    } else {
      as.pt_.MapRange(a, next);
    }
    a = next;
  }
}

bool Impl::VmaNeedsCopy(const AS& as, const Vma* v) {
  if (v->flags & kVmUffdWp) return true;
  if (v->flags & (kVmPfnmap | kVmMixedmap)) return true;
  if (v->anon.anon_vma != 0) return true;
  // 6.19 / 6.18-fc: guard markers of file-backed VMAs survive fork.
  return as.profile_->guard_sticky_flag && (v->flags & kVmMaybeGuard);
}

void Impl::UnmapPageTables(AS& as, Vma* first, Vma* last) {
  const uint64_t floor = first->prev != nullptr ? first->prev->end : 0;
  const uint64_t ceiling = last->next != nullptr ? last->next->start : 0;
  // unmap_vmas(): ZAP_FLAG_DROP_MARKER, every removed VMA.
  for (Vma* v = first;; v = v->next) {
    as.pt_.Zap(v->start, v->end, /*drop_markers=*/true, /*reclaim=*/false);
    if (v == last) break;
  }
  // free_pgtables(): VMAs closer than PMD_SIZE go down in one call.
  for (Vma* v = first; v != nullptr;) {
    const uint64_t addr = v->start;
    while (v != last && v->next->start <= v->end + kPmdSize) v = v->next;
    Vma* next = v != last ? v->next : nullptr;
    as.pt_.FreePgdRange(addr, v->end, floor, next != nullptr ? next->start : ceiling);
    v = next;
  }
}

void Impl::MovePageTables(AS& as, uint64_t src_start, uint64_t old_addr, uint64_t dst_start,
                          uint64_t new_addr, uint64_t len) {
  if (len == 0 || as.pt_.empty()) return;
  const uint64_t old_end = old_addr + len;
  // try_realign_addr(): when the move reaches a PMD boundary and both ends
  // sit at the same offset in their PMD at the start of their VMA, with no
  // VMA below them in that PMD, move whole PTE tables from the boundary.
  const uint64_t off = old_addr & ~kPmdMask;
  if (len >= kPmdSize - off && off != 0 && off == (new_addr & ~kPmdMask)) {
    auto can_align_down = [&as](uint64_t vma_start, uint64_t a) {
      return vma_start == a && as.tree_.FindVmaIntersection(a & kPmdMask, vma_start) == nullptr;
    };
    if (can_align_down(src_start, old_addr) && can_align_down(dst_start, new_addr)) {
      old_addr &= kPmdMask;
      new_addr &= kPmdMask;
    }
  }
  as.pt_.MoveRange(old_addr, new_addr, old_end - old_addr);
}

int AddressSpace::LearnPresent(uint64_t lo, uint64_t hi, bool huge) {
  if (!PageAligned(lo) || !PageAligned(hi) || hi <= lo) return -EINVAL;
  if (!huge) {
    pt_.LearnMapped(lo, hi, false);
    return pt_.broken() ? -ENOMEM : 0;
  }
  // A PMD leaf of anonymous memory has a deposited table; of a file or shmem
  // mapping, none. Split the run at VMA boundaries to tell.
  for (uint64_t a = lo; a < hi;) {
    const Vma* v = tree_.FindVma(a);
    uint64_t next = hi;
    bool deposit = true;
    if (v != nullptr && v->start <= a) {
      deposit = v->is_anonymous();
      if (v->end < hi) next = v->end;
    } else if (v != nullptr && v->start < hi) {
      next = v->start;
    }
    pt_.LearnMapped(a, next, true, deposit);
    a = next;
  }
  return pt_.broken() ? -ENOMEM : 0;
}

int AddressSpace::LearnNotPresent(uint64_t lo, uint64_t hi) {
  if (!PageAligned(lo) || !PageAligned(hi) || hi <= lo) return -EINVAL;
  pt_.LearnUnmapped(lo, hi);
  return pt_.broken() ? -ENOMEM : 0;
}

int AddressSpace::LearnGuards(uint64_t lo, uint64_t hi) {
  if (!PageAligned(lo) || !PageAligned(hi) || hi <= lo) return -EINVAL;
  pt_.LearnGuards(lo, hi);
  return pt_.broken() ? -ENOMEM : 0;
}

int64_t AddressSpace::CalibratePageTables(uint64_t kernel_vmpte_kb) {
  const uint64_t located = pt_.counts().bytes() / kPageTableBytes;
  const uint64_t kernel = kernel_vmpte_kb * 1024 / kPageTableBytes;
  if (kernel >= located) {
    pt_.set_unlocated(kernel - located);
    return static_cast<int64_t>(kernel - located);
  }
  pt_.set_unlocated(0);
  return -static_cast<int64_t>(located - kernel);
}

PageWalk AddressSpace::WalkPage(uint64_t addr) const {
  PageWalk w = pt_.Walk(addr);
  const Vma* v = tree_.FindVma(addr);
  if (v != nullptr && v->start <= addr) {
    w.in_vma = true;
    w.prot = VmaPageProt(*v, params_.nx);
  }
  return w;
}

// The sums vm_stat_account() (mm/mmap.c, 6.12) and the locked_vm updates keep;
// is_exec_mapping/is_stack_mapping/is_data_mapping are mm/vma.h's.
MmCounters AddressSpace::mm_counters() const {
  MmCounters c;
  for (const Vma* v = tree_.First(); v != nullptr; v = v->next) {
    const uint64_t n = v->pages();
    const uint64_t f = v->flags;
    c.total_vm += n;
    if (f & kVmLocked) c.locked_vm += n;
    if ((f & (kVmExec | kVmWrite | kVmGrowsdown)) == kVmExec) {
      c.exec_vm += n;
    } else if ((f & kVmGrowsdown) || (f & kVmShadowStack)) {
      c.stack_vm += n;
    } else if ((f & (kVmWrite | kVmShared | kVmGrowsdown)) == kVmWrite) {
      c.data_vm += n;
    }
  }
  c.locked_vm += locked_vm_drift_;
  c.pgtables_bytes = pt_.bytes();
  return c;
}

// Mirrors task_mem() (fs/proc/task_mmu.c, 6.12).
StatusCounters AddressSpace::PredictStatus() const {
  const MmCounters c = mm_counters();
  StatusCounters s;
  s.vm_size_kb = c.total_vm << (kPageShift - 10);
  s.vm_lck_kb = c.locked_vm << (kPageShift - 10);
  s.vm_data_kb = c.data_vm << (kPageShift - 10);
  s.vm_stk_kb = c.stack_vm << (kPageShift - 10);
  const uint64_t exec_bytes = c.exec_vm << kPageShift;
  uint64_t text = PageAlign(end_code_) - (start_code_ & kPageMask);
  if (text > exec_bytes) text = exec_bytes;
  s.vm_exe_kb = text >> 10;
  s.vm_lib_kb = (exec_bytes - text) >> 10;
  s.vm_pte_kb = c.pgtables_bytes >> 10;
  return s;
}

// A user page fault (handle_mm_fault via the x86 fault handler), including
// stack expansion (expand_downwards, mm/mmap.c 6.12).
Outcome AddressSpace::Touch(uint64_t addr, bool write) {
  Vma* v = tree_.FindVma(addr);
  if (v == nullptr) return Impl::Result(-EFAULT);
  if (v->start > addr) {
    if (!(v->flags & kVmGrowsdown)) return Impl::Result(-EFAULT);
    const uint64_t new_start = PageDown(addr);
    if (new_start < params_.mmap_min_addr) return Impl::Result(-EFAULT);
    const Vma* prev = v->prev;
    if (prev != nullptr && !(prev->flags & kVmGrowsdown) && Impl::VmaIsAccessible(prev) &&
        new_start - prev->end < params_.stack_guard_gap) {
      return Impl::Result(-EFAULT);
    }
    if (prev != nullptr && prev->end > new_start) return Impl::Result(-EFAULT);
    // The anon_vma comes first: it stays even when acct_stack_growth()
    // refuses the growth (RLIMIT_STACK...) and the fault fails.
    Impl::PrepareAnon(*this, v);
    const uint64_t grown = (v->start - new_start) >> kPageShift;
    if (grown > v->pgoff) return Impl::Result(-EFAULT);
    if (params_.rlimit_stack != kUnlimited && v->end - new_start > params_.rlimit_stack) {
      return Impl::Result(-EFAULT);
    }
    v->pgoff -= grown;
    const uint64_t old_start = v->start;
    tree_.SetBounds(v, new_start, v->end);
    if (write ? !(v->flags & kVmWrite) : !Impl::VmaIsAccessible(v)) {
      return Impl::Result(-EFAULT, new_start, old_start);
    }
    Impl::FaultPages(*this, v, new_start, new_start + kPageSize);
    return Impl::Result(0, new_start, old_start);
  }
  if (write ? !(v->flags & kVmWrite) : !Impl::VmaIsAccessible(v)) return Impl::Result(-EFAULT);
  // A guard marker (MADV_GUARD_INSTALL) raises SIGSEGV; a file page past
  // EOF, SIGBUS.
  if (pt_.Walk(addr).guard) return Impl::Result(-EFAULT);
  if (addr >= Impl::FileEnd(v)) return Impl::Result(-EIO);
  // A write fault on private memory instantiates an anonymous page (CoW for
  // files); a read fault maps the zero page or the page cache: no anon_vma.
  if (write && !(v->flags & kVmShared) && v->special == SpecialKind::kNone) {
    Impl::PrepareAnon(*this, v);
  }
  Impl::FaultPages(*this, v, PageDown(addr), PageDown(addr) + kPageSize);
  return Impl::Result(0);
}

// ---------------------------------------------------------------------------
// fork (kernel/fork.c: dup_mmap, 6.12).

void AddressSpace::ForkChild() {
  // dup_mmap(): copy_page_range() for each copied VMA that needs it (not
  // VM_DONTCOPY, not VM_WIPEONFORK), looking at the parent's state.
  PageTables child(arena_, params_.paging_levels);
  if (!pt_.empty()) {
    for (const Vma* p = tree_.First(); p != nullptr; p = p->next) {
      if (p->flags & (kVmDontcopy | kVmWipeonfork)) continue;
      if (Impl::VmaNeedsCopy(*this, p)) pt_.CopyRangeTo(&child, p->start, p->end);
    }
  }
  pt_.Swap(child);
  Vma* v = tree_.First();
  while (v != nullptr) {
    Vma* next = v->next;
    if (v->flags & kVmDontcopy) {
      Impl::RemoveVma(*this, v);
      v = next;
      continue;
    }
    v->flags &= ~kVmLockedMask;
    if (v->flags & kVmWipeonfork) {
      v->anon = AnonState{};
    } else if (v->anon.anon_vma != 0) {
      // anon_vma_fork(): a new anon_vma per VMA, chained to the parent's.
      v->anon = AnonState{next_anon_vma_++, true};
    }
    v = next;
  }
  // mm_init(): def_flags keeps only VM_NOHUGEPAGE (VM_INIT_DEF_MASK);
  // locked_vm starts at 0.
  def_flags_ &= kVmNohugepage;
  locked_vm_drift_ = 0;
}

// ---------------------------------------------------------------------------
// mmap (arch/x86/kernel/sys_x86_64.c sys_mmap, mm/mmap.c ksys_mmap_pgoff,
// do_mmap, mmap_region; 6.12, with 6.18's behaviour where it differs).

bool Impl::CanDoMlock(const AS& as) {
  return as.params_.rlimit_memlock != 0 || as.params_.cap_ipc_lock;
}

Outcome AddressSpace::Map(const MapArgs& a) {
  using namespace abi;
  if (a.offset & (kPageSize - 1)) return Impl::Result(-EINVAL);
  uint64_t pgoff = a.offset >> kPageShift;
  int flags = a.flags;
  uint64_t len = a.len;
  const FileDesc* fd = nullptr;
  if (!(flags & kMapAnonymous)) {
    if (a.file == nullptr) return Impl::Result(-EBADF);
    fd = a.file;
    if (fd->kind == FileKind::kHugetlb) {
      len = (len + kPmdSize - 1) & ~(kPmdSize - 1);
    } else if (flags & kMapHugetlb) {
      return Impl::Result(-EINVAL);
    }
  } else if (flags & kMapHugetlb) {
    const int log = (flags >> kMapHugeShift) & kMapHugeMask;
    if (log != 0 && log != 21 && log != 30) return Impl::Result(-EINVAL);
    // No huge pages are reserved on the machines we model: the hugetlb file
    // setup cannot reserve them.
    return Impl::Result(-ENOMEM);
  }

  // do_mmap()
  if (len == 0) return Impl::Result(-EINVAL);
  if (flags & kMapFixedNoreplace) flags |= kMapFixed;
  uint64_t addr = a.addr;
  if (!(flags & kMapFixed)) {
    addr = PageDown(addr);
    if (addr != 0 && addr < params_.mmap_min_addr) addr = PageAlign(params_.mmap_min_addr);
  }
  len = PageAlign(len);
  if (len == 0) return Impl::Result(-ENOMEM);
  if (pgoff + (len >> kPageShift) < pgoff) return Impl::Result(-EOVERFLOW);
  if (tree_.size() > params_.max_map_count) return Impl::Result(-ENOMEM);

  uint64_t vm_flags = 0;
  if (a.prot & kProtRead) vm_flags |= kVmRead;
  if (a.prot & kProtWrite) vm_flags |= kVmWrite;
  if (a.prot & kProtExec) vm_flags |= kVmExec;
  if (flags & kMapGrowsdown) vm_flags |= kVmGrowsdown;
  if (flags & kMapLocked) vm_flags |= kVmLocked;
  if (flags & kMapSync) vm_flags |= kVmSync;
  if (flags & kMapStack) vm_flags |= kVmNohugepage;
  vm_flags |= def_flags_ | kVmMayRead | kVmMayWrite | kVmMayExec;

  // The file object is needed for placement (its get_unmapped_area).
  File* file = nullptr;
  if (fd != nullptr) {
    file = Impl::InternFile(*this, *fd);
    if (file == nullptr) return Impl::Result(-ENOMEM);
  }
  // Hold the file while the call runs (a MAP_FIXED may unmap its last VMA);
  // every return drops the hold, freeing the file if nothing uses it.
  Impl::RefFile(file);
  auto fail = [&](int err) {
    Impl::UnrefFile(*this, file);
    return Impl::Result(-err);
  };

  int64_t placed = GetUnmappedArea(file, fd, addr, len, pgoff, flags);
  bool predicted = !(flags & kMapFixed);
  if ((flags & kMap32Bit) && !(flags & kMapFixed)) {
    // The MAP_32BIT window start is randomised per call: take the kernel's.
    predicted = false;
    if (a.kernel_addr != 0) placed = static_cast<int64_t>(a.kernel_addr);
  }
  if (placed < 0) return fail(static_cast<int>(-placed));
  addr = static_cast<uint64_t>(placed);

  const uint64_t end = addr + len;
  Vma* prev = nullptr;
  Vma* next = tree_.FindVmaPrev(addr, &prev);
  if ((flags & kMapFixedNoreplace) && next != nullptr && next->start < end) return fail(EEXIST);
  if ((flags & kMapLocked) && !Impl::CanDoMlock(*this)) return fail(EPERM);

  if (file != nullptr) {
    // file_mmap_ok(): MAX_LFS_FILESIZE for regular files, ULONG_MAX for devices.
    const uint64_t max_size =
        file->kind == FileKind::kDevice ? ~uint64_t{0} : uint64_t{0x7fffffffffffffff};
    if (len > max_size || pgoff > ((max_size - len) >> kPageShift)) return fail(EOVERFLOW);
    switch (flags & kMapType) {
      case kMapShared:
        flags &= kLegacyMapMask;
        [[fallthrough]];
      case kMapSharedValidate:
        // DAX-capable file systems (ext4, xfs) accept MAP_SYNC here
        // (FOP_MMAP_SYNC) and refuse it later, from their mmap hook.
        if (flags & ~(kLegacyMapMask | (file->kind == FileKind::kRegularThp ? kMapSync : 0))) {
          return fail(EOPNOTSUPP);
        }
        if ((a.prot & kProtWrite) && !file->fd_writable) return fail(EACCES);
        if (file->fd_append && file->fd_writable) return fail(EACCES);
        vm_flags |= kVmShared | kVmMayShare;
        if (!file->fd_writable) vm_flags &= ~(kVmMayWrite | kVmShared);
        [[fallthrough]];
      case kMapPrivate:
        if (!file->fd_readable) return fail(EACCES);
        if (file->noexec_mount) {
          if (vm_flags & kVmExec) return fail(EPERM);
          vm_flags &= ~kVmMayExec;
        }
        if (vm_flags & kVmGrowsdown) return fail(EINVAL);
        break;
      default:
        return fail(EINVAL);
    }
  } else {
    switch (flags & kMapType) {
      case kMapShared:
        if (vm_flags & kVmGrowsdown) return fail(EINVAL);
        pgoff = 0;
        vm_flags |= kVmShared | kVmMayShare;
        break;
      case kMapDroppable:
        if (flags & (kMapLocked | kMapHugetlb)) return fail(EINVAL);
        if (vm_flags & kVmGrowsdown) return fail(EINVAL);
        vm_flags |= kVmDroppable | kVmNoreserve | kVmWipeonfork | kVmDontdump;
        [[fallthrough]];
      case kMapPrivate:
        pgoff = addr >> kPageShift;
        break;
      default:
        return fail(EINVAL);
    }
  }
  if ((flags & kMapNoreserve) && params_.overcommit_memory != 2) vm_flags |= kVmNoreserve;
  if (file != nullptr && file->kind == FileKind::kHugetlb && (flags & kMapNoreserve)) {
    vm_flags |= kVmNoreserve;
  }

  // mmap_region()
  if (next != nullptr && next->start < end) {
    Vma* first = nullptr;
    const int err = Impl::GatherUnmap(*this, addr, end, next, &first);
    if (err != 0) {
      Outcome o = fail(-err);  // splits made before the failure stay
      o.changed_start = addr;
      o.changed_end = end;
      return o;
    }
    prev = first->prev;
    Impl::RemoveFrom(*this, first, end);
    next = prev != nullptr ? prev->next : tree_.First();
  }
  // The file's mmap hook runs after the old mappings are gone: ext4/xfs
  // without DAX refuse VM_SYNC (ext4_file_mmap), leaving the range empty.
  if (file != nullptr && file->kind == FileKind::kRegularThp && (vm_flags & kVmSync)) {
    // unmap_region() on the VMA that never got linked (mm/vma.c, 6.12).
    if (!pt_.empty()) {
      Vma* before = nullptr;
      Vma* after = tree_.FindVmaPrev(addr, &before);
      pt_.FreePgdRange(addr, end, before != nullptr ? before->end : 0,
                       after != nullptr ? after->start : 0);
    }
    Outcome o = fail(EOPNOTSUPP);
    o.changed_start = addr;
    o.changed_end = end;
    return o;
  }
  const bool accountable = (file == nullptr || file->kind != FileKind::kHugetlb) &&
                           (vm_flags & (kVmNoreserve | kVmShared | kVmWrite)) == kVmWrite;
  if (accountable) vm_flags |= kVmAccount;
  const bool shared_anon = file == nullptr && (vm_flags & kVmShared);
  MergeProposal r;
  r.start = addr;
  r.end = end;
  r.pgoff = pgoff;
  r.flags = vm_flags;
  r.file = file;
  Vma* vma = nullptr;
  if (!shared_anon) vma = Impl::MergeNewRange(*this, prev, next, r, /*just_expand=*/false);
  if (vma == nullptr) {
    if (shared_anon) {
      // shmem_zero_setup(): the merge ran with no file and VM_SHARED, which
      // nothing matches; the VMA then gets its own shmem file.
      file = Impl::NewShmemFile(*this, a.file);
      if (file == nullptr) return fail(ENOMEM);
      file->size = len;  // shmem_zero_setup(): a file of the mapping's size
      Impl::RefFile(file);
    }
    r.file = file;
    vma = Impl::InsertNew(*this, r);
    if (vma == nullptr) return fail(ENOMEM);
  }
  Impl::UnrefFile(*this, file);
  if (vm_flags & kVmLocked) {
    if ((vm_flags & (kVmSpecial | kVmDroppable)) ||
        (file != nullptr && file->kind == FileKind::kHugetlb)) {
      vma->flags &= ~kVmLockedMask;
    }
  }
  if ((vm_flags & kVmLocked) || (flags & (kMapPopulate | kMapNonblock)) == kMapPopulate) {
    Impl::PopulateRange(*this, addr, end);
  }
  Outcome o = Impl::Result(static_cast<int64_t>(addr), addr, end);
  o.placement_predicted = predicted;
  return o;
}

// ---------------------------------------------------------------------------
// brk (mm/mmap.c SYSCALL_DEFINE1(brk), do_brk_flags; 6.12).

Outcome AddressSpace::Brk(uint64_t new_brk) {
  const uint64_t orig = brk_;
  Outcome out = Impl::Result(static_cast<int64_t>(orig));
  if (new_brk < start_brk_) return out;
  if (params_.rlimit_data != kUnlimited &&
      (new_brk - start_brk_) + (params_.end_data - params_.start_data) > params_.rlimit_data) {
    return out;
  }
  const uint64_t newbrk = PageAlign(new_brk);
  const uint64_t oldbrk = PageAlign(brk_);
  if (oldbrk == newbrk) {
    brk_ = new_brk;
    return Impl::Result(static_cast<int64_t>(new_brk));
  }
  if (new_brk <= brk_) {
    // Shrink: munmap [newbrk, oldbrk) if anything is there.
    Vma* v = tree_.FindVma(newbrk);
    if (v == nullptr || v->start >= oldbrk) return out;
    const int err = Impl::UnmapRange(*this, newbrk, oldbrk);
    if (err != 0) return out;
    brk_ = new_brk;
    return Impl::Result(static_cast<int64_t>(new_brk), newbrk, oldbrk);
  }
  // check_brk_limits(): the MAP_FIXED address check, then mlock_future_ok.
  const uint64_t grow = newbrk - oldbrk;
  if (grow > params_.task_size || oldbrk > params_.task_size - grow) return out;
  // One free page (plus the guard gap below a VM_GROWSDOWN VMA) must stay.
  Vma* next = tree_.FindVma(oldbrk);
  if (next != nullptr && newbrk + kPageSize > Impl::StartGap(*this, next)) return out;
  if (tree_.size() > params_.max_map_count) return out;
  const uint64_t flags =
      kVmRead | kVmWrite | kVmMayRead | kVmMayWrite | kVmMayExec | kVmAccount | def_flags_;
  // vma_prev_limit(vmi, start_brk): the VMA just below oldbrk, if it reaches
  // above start_brk.
  Vma* prev = nullptr;
  tree_.FindVmaPrev(oldbrk, &prev);
  if (prev != nullptr && prev->end <= start_brk_) prev = nullptr;
  MergeProposal r;
  r.start = oldbrk;
  r.end = newbrk;
  r.pgoff = oldbrk >> kPageShift;
  r.flags = flags;
  Vma* vma = nullptr;
  if (prev != nullptr && prev->end == oldbrk) {
    vma = Impl::MergeNewRange(*this, prev, nullptr, r, /*just_expand=*/true);
  }
  if (vma == nullptr && Impl::InsertNew(*this, r) == nullptr) return out;
  brk_ = new_brk;
  if (def_flags_ & kVmLocked) Impl::PopulateRange(*this, oldbrk, newbrk);
  return Impl::Result(static_cast<int64_t>(new_brk), oldbrk, newbrk);
}

// ---------------------------------------------------------------------------
// Validate.

const char* AddressSpace::Validate() const {
  if (const char* err = tree_.Validate()) return err;
  if (const char* err = pt_.Validate()) return err;
  // Listed files are marked (kListed + their VMA count, counted in one pass
  // over the VMAs) and unmarked again at the end, so a VMA whose file is not
  // on the list sees an unmarked file: O(VMAs + files).
  constexpr uint32_t kListed = uint32_t{1} << 31;
  size_t files = 0;
  for (const File* f = files_; f != nullptr; f = f->next_file) {
    if (++files > tree_.size() + 1) return "file list longer than the VMAs (a cycle?)";
    f->validate_refs = kListed;
  }
  const char* err = nullptr;
  size_t count = 0;
  for (const Vma* v = tree_.First(); v != nullptr && err == nullptr; v = v->next) {
    ++count;
    if (!PageAligned(v->start) || !PageAligned(v->end)) {
      err = "vma not page aligned";
    } else if (v->start >= v->end) {
      err = "empty vma";
    } else if (v->end > params_.task_size && v->special == SpecialKind::kNone) {
      err = "vma above TASK_SIZE";
    } else if (v->file != nullptr && v->file->validate_refs < kListed) {
      err = "vma points at a file not in the file list";
    } else if ((v->flags & kVmShared) && !(v->flags & kVmMayShare)) {
      err = "VM_SHARED without MAYSHARE";
    } else if (v->anon.fork_child && v->anon.anon_vma == 0) {
      err = "fork child without anon_vma";
    } else if (v->file != nullptr) {
      ++v->file->validate_refs;
    }
  }
  if (err == nullptr && count != tree_.size()) err = "map_count differs from the list";
  for (const File* f = files_; f != nullptr; f = f->next_file) {
    if (err == nullptr && f->validate_refs == kListed) err = "unreferenced file kept";
    if (err == nullptr && f->validate_refs - kListed != f->refs) err = "file refcount wrong";
    f->validate_refs = 0;
  }
  return err;
}

}  // namespace vmashadow
