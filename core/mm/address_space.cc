// address_space.cc — the AddressSpace itself: VMA and file lifetime, seeding
// and reconciliation, learning page presence, the mm counters and Validate().
// The calls live where the kernel keeps them: vma.cc (merge, split, munmap:
// mm/vma.c), mmap.cc (mmap, brk: mm/mmap.c), mprotect.cc, madvise.cc,
// mlock.cc, mseal.cc, mremap.cc, memory.cc (faults, populate, zap and
// free_pgtables: mm/memory.c, mm/gup.c, mm/rmap.c), fork.cc (kernel/fork.c),
// placement.cc (get_unmapped_area).
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

bool AddressSpace::MapsFile(uint32_t dev_major, uint32_t dev_minor, uint64_t inode) const {
  for (const File* f = files_; f != nullptr; f = f->next_file) {
    if (f->refs != 0 && f->inode == inode && f->dev_major == dev_major &&
        f->dev_minor == dev_minor) {
      return true;
    }
  }
  return false;
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
