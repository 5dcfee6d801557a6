// vma_tree.h — the VMAs of one address space, ordered by address.
//
// An intrusive red-black tree (Boost.Intrusive rbtree_algorithms over the hooks
// in Vma) augmented with the largest free gap in each subtree, as the kernel's
// mm_rb/rb_subtree_gap did before 6.1 (mm/mmap.c, 4.x): Gap(v) is
// v.start - v.prev.end (v.start for the first VMA). Boost has no augmentation
// callbacks, so custom NodeTraits log every node whose children change during
// a rebalance; before the next gap search (or Validate()) the logged nodes are
// recomputed and the change is propagated upward. A kernel-style prev/next
// list is kept alongside.
//
// Every query is O(log n). The tree never allocates: the caller owns the Vma
// nodes. Depends on Boost.Intrusive (header-only) and vma.h; preload-safe.
#ifndef VMASHADOW_CORE_MM_VMA_TREE_H_
#define VMASHADOW_CORE_MM_VMA_TREE_H_

#include <cstddef>
#include <cstdint>

#include "core/mm/mm_types.h"

namespace vmashadow {

// Returned by the gap searches when nothing fits (the kernel's -ENOMEM).
inline constexpr uint64_t kNoGap = ~uint64_t{0};

// Mirrors struct vm_unmapped_area_info (include/linux/mm.h, 4.x .. 6.12).
struct UnmappedAreaInfo {
  uint64_t length = 0;
  uint64_t low_limit = 0;
  uint64_t high_limit = 0;
  uint64_t align_mask = 0;
  uint64_t align_offset = 0;
  // vm_start_gap() of a VM_GROWSDOWN VMA is its start minus this (clamped at 0).
  uint64_t stack_guard_gap = 256 * kPageSize;
};

class VmaTree {
 public:
  VmaTree();
  VmaTree(const VmaTree&) = delete;
  VmaTree& operator=(const VmaTree&) = delete;

  // Links v (start/end set, not overlapping any VMA in the tree).
  void Insert(Vma* v);
  // Unlinks v. v must be in this tree.
  void Erase(Vma* v);
  // Moves v's bounds to [start, end). The new range must not overlap other VMAs
  // (it keeps its place in the order). Gaps of v and v->next are updated.
  void SetBounds(Vma* v, uint64_t start, uint64_t end);

  // Mirrors find_vma(): the first VMA with end > addr, or nullptr.
  Vma* FindVma(uint64_t addr) const;
  // Mirrors find_vma_prev(): FindVma(addr), and in *prev the VMA before it
  // (the last VMA when FindVma returns nullptr).
  Vma* FindVmaPrev(uint64_t addr, Vma** prev) const;
  // Mirrors find_vma_intersection(): the first VMA intersecting [start, end).
  Vma* FindVmaIntersection(uint64_t start, uint64_t end) const;

  // Mirrors unmapped_area() (bottom-up; mm/mmap.c): the lowest address a with
  // [a, a+length) free, low_limit <= a, a+length <= high_limit, aligned so that
  // (a - align_offset) & align_mask == 0, honouring the stack guard gap below
  // VM_GROWSDOWN VMAs. kNoGap if none.
  uint64_t UnmappedArea(const UnmappedAreaInfo& info) const;
  // Mirrors unmapped_area_topdown(): the highest such address (docs/placement.md#top-down-search).
  uint64_t UnmappedAreaTopdown(const UnmappedAreaInfo& info) const;

  Vma* First() const { return first_; }
  Vma* Last() const { return last_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // Checks red-black and order invariants, the prev/next list, and every
  // subtree gap recomputed from scratch. Returns nullptr when all hold, or a
  // static string naming the first violation.
  const char* Validate() const;

  // Gap before v: v->start - v->prev->end, or v->start for the first VMA.
  static uint64_t Gap(const Vma* v) { return v->start - (v->prev ? v->prev->end : 0); }

  // --- used by the NodeTraits (public so the traits can reach them) ---
  Vma* header() const { return const_cast<Vma*>(&header_); }
  void NoteChanged(Vma* v);

 private:
  // Subtree gaps are brought up to date lazily: Insert/Erase/SetBounds only
  // log the nodes whose inputs changed, and FixGaps() (const: the gap
  // searches and Validate() call it) recomputes them. A split or a merge is
  // several calls whose transient gaps mostly cancel out.
  void FixGaps() const;
  void MakeLogRoom();
  Vma* root() const;

  Vma header_;  // Boost's header node: parent = root, left = leftmost, right = rightmost
  Vma* first_ = nullptr;
  Vma* last_ = nullptr;
  size_t size_ = 0;
  static constexpr int kLogCapacity = 64;
  static constexpr int kLogReserve = 24;  // more than one Insert/Erase logs
  mutable Vma* log_[kLogCapacity];
  mutable int log_len_ = 0;
  mutable bool log_overflow_ = false;
};

}  // namespace vmashadow

#endif  // VMASHADOW_CORE_MM_VMA_TREE_H_
