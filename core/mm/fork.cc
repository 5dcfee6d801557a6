// fork.cc — kernel/fork.c: dup_mmap() as the fork child's view of the model.
#include "core/mm/address_space.h"
#include "core/mm/internal.h"

namespace vmashadow {

using Impl = AddressSpace::Impl;

// ---------------------------------------------------------------------------
// fork (kernel/fork.c: dup_mmap, 6.12).

void AddressSpace::ForkChild() {
  // kernel/fork.c mm_init(): mmf_init_flags() drops MDWE when it was set
  // with PR_MDWE_NO_INHERIT.
  if (params_.mdwe_no_inherit) params_.mdwe = params_.mdwe_no_inherit = false;
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

}  // namespace vmashadow
