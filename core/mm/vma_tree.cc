// vma_tree.cc — the augmented red-black tree of VMAs (see vma_tree.h).
//
// The tree is Boost.Intrusive's rbtree_algorithms driven through VmaNodeTraits,
// which read and write the rb_* hooks inside Vma. Every rb_subtree_gap_ holds
// the largest Gap() in its subtree, like the kernel's rb_subtree_gap in 4.x
// mm/mmap.c (vma_compute_subtree_gap, vma_gap_callbacks). Boost calls no
// augmentation hook, so set_left()/set_right() note each node whose children
// change in the tree's fixed log, and Insert/Erase/SetBounds add the nodes
// whose own gap changed. The logged nodes are recomputed, and any change
// carried up towards the root, lazily: before a gap search or Validate(), or
// when the log is getting full. So a split (SetBounds + Insert) or a merge
// (Erase + SetBounds), whose transient gaps cancel out, does not walk to the
// root and back. The log is sound whatever Boost does internally (any node
// whose children change goes through set_left or set_right); if it overflows
// the whole tree is recomputed bottom-up.
//
// The gap searches mirror unmapped_area()/unmapped_area_topdown() of 6.x
// (mm/mmap.c, maple tree era): they find the lowest/highest free interval
// whose part inside [low_limit, high_limit) can hold length + align_mask, then
// apply the VM_GROWSDOWN/shadow-stack start-gap retry. The walk prunes with the
// subtree gaps and the limits, so it is O(log n) per attempt.
//
// Depends on Boost.Intrusive (header-only) and vma.h. Preload-safe: no
// allocation, no syscalls, no exceptions.
#include "core/mm/vma_tree.h"

#include <boost/intrusive/rbtree_algorithms.hpp>

#include "core/abi/no_syscalls.h"
#include "core/mm/dcheck.h"

namespace vmashadow {
namespace {

constexpr int kBlack = 0;
constexpr int kRed = 1;

// Boost.Intrusive NodeTraits over the hooks in Vma. The setters of child
// links report the node to its tree so its subtree gap gets recomputed.
// set_parent needs no report: a node's parent changes only together with a
// set_left/set_right on the old and new parents, and the node's own subtree
// is unchanged by it. The header (rb_owner_ == nullptr) is never reported.
struct VmaNodeTraits {
  using node = Vma;
  using node_ptr = Vma*;
  using const_node_ptr = const Vma*;
  using color = int;

  static node_ptr get_parent(const_node_ptr n) { return n->rb_parent_; }
  static void set_parent(node_ptr n, node_ptr p) { n->rb_parent_ = p; }
  static node_ptr get_left(const_node_ptr n) { return n->rb_left_; }
  static void set_left(node_ptr n, node_ptr l) {
    n->rb_left_ = l;
    if (n->rb_owner_ != nullptr) n->rb_owner_->NoteChanged(n);
  }
  static node_ptr get_right(const_node_ptr n) { return n->rb_right_; }
  static void set_right(node_ptr n, node_ptr r) {
    n->rb_right_ = r;
    if (n->rb_owner_ != nullptr) n->rb_owner_->NoteChanged(n);
  }
  static color get_color(const_node_ptr n) { return n->rb_color_; }
  static void set_color(node_ptr n, color c) { n->rb_color_ = c; }
  static color black() { return kBlack; }
  static color red() { return kRed; }
};

using Algo = boost::intrusive::rbtree_algorithms<VmaNodeTraits>;

// Gap(v), but 0 while v overlaps its predecessor. Callers move bounds one
// VMA at a time (a merge extends prev over next before erasing next), and a
// wrapped-around "gap" would be carried to the root and back for nothing.
// In a valid tree (no overlap; Validate() checks) it equals Gap(v).
uint64_t OwnGap(const Vma* v) {
  const uint64_t prev_end = v->prev != nullptr ? v->prev->end : 0;
  return v->start > prev_end ? v->start - prev_end : 0;
}

// The largest Gap() in v's subtree, from v's own gap and its children's
// values (vma_compute_subtree_gap(), 4.x).
uint64_t ComputeSubtreeGap(const Vma* v) {
  uint64_t g = OwnGap(v);
  if (v->rb_left_ != nullptr && v->rb_left_->rb_subtree_gap_ > g) g = v->rb_left_->rb_subtree_gap_;
  if (v->rb_right_ != nullptr && v->rb_right_->rb_subtree_gap_ > g) {
    g = v->rb_right_->rb_subtree_gap_;
  }
  return g;
}

uint64_t PrevEnd(const Vma* v) { return v->prev != nullptr ? v->prev->end : 0; }

// The free interval before v, [PrevEnd(v), v->start), clipped to [lo, hi):
// does it hold len bytes?
bool ClippedFits(const Vma* v, uint64_t lo, uint64_t hi, uint64_t len) {
  const uint64_t a = PrevEnd(v) > lo ? PrevEnd(v) : lo;
  const uint64_t b = v->start < hi ? v->start : hi;
  return b > a && b - a >= len;
}

// The VMA whose preceding free interval is the highest one (lowest one for
// LowestFit) that, clipped to [lo, hi), holds len bytes; nullptr if none in
// n's subtree. Subtrees are skipped when their largest raw gap is below len
// (clipping only shrinks) or when their addresses cannot reach far enough
// into [lo, hi): intervals in the right subtree start at or above n->end,
// those in the left subtree end at or below n->prev->start.
const Vma* HighestFit(const Vma* n, uint64_t lo, uint64_t hi, uint64_t len) {
  if (n == nullptr || n->rb_subtree_gap_ < len) return nullptr;
  if (n->rb_right_ != nullptr && n->end < hi && hi - n->end >= len) {
    if (const Vma* r = HighestFit(n->rb_right_, lo, hi, len)) return r;
  }
  if (ClippedFits(n, lo, hi, len)) return n;
  if (n->rb_left_ != nullptr && n->prev->start > lo && n->prev->start - lo >= len) {
    return HighestFit(n->rb_left_, lo, hi, len);
  }
  return nullptr;
}

const Vma* LowestFit(const Vma* n, uint64_t lo, uint64_t hi, uint64_t len) {
  if (n == nullptr || n->rb_subtree_gap_ < len) return nullptr;
  if (n->rb_left_ != nullptr && n->prev->start > lo && n->prev->start - lo >= len) {
    if (const Vma* r = LowestFit(n->rb_left_, lo, hi, len)) return r;
  }
  if (ClippedFits(n, lo, hi, len)) return n;
  if (n->rb_right_ != nullptr && n->end < hi && hi - n->end >= len) {
    return LowestFit(n->rb_right_, lo, hi, len);
  }
  return nullptr;
}

// VM_STARTGAP_FLAGS (include/linux/mm.h, 6.x): VMAs with a guard below them.
constexpr uint64_t kStartGapFlags = kVmGrowsdown | kVmShadowStack;

// Mirrors vm_start_gap() (include/linux/mm.h, 6.12): a VM_GROWSDOWN VMA keeps
// stack_guard_gap free below it, a shadow stack one page; clamped at 0.
uint64_t StartGap(const Vma* v, uint64_t stack_guard_gap) {
  uint64_t gap = 0;
  if (v->flags & kVmGrowsdown) {
    gap = stack_guard_gap;
  } else if (v->flags & kVmShadowStack) {
    gap = kPageSize;
  }
  return v->start > gap ? v->start - gap : 0;
}

// Red-black and shape checks of Validate(), on n's subtree. Returns
// the black height, or -1 with *err set. *count gets the number of nodes.
int CheckSubtree(const Vma* n, const VmaTree* owner, int depth, size_t* count, const char** err) {
  if (n == nullptr) return 1;
  if (depth > 128) {
    *err = "tree deeper than a red-black tree can be";
    return -1;
  }
  ++*count;
  if (n->rb_owner_ != owner) {
    *err = "node's rb_owner_ is not this tree";
    return -1;
  }
  if (n->rb_color_ != kBlack && n->rb_color_ != kRed) {
    *err = "node has an invalid color";
    return -1;
  }
  const Vma* const children[2] = {n->rb_left_, n->rb_right_};
  for (const Vma* c : children) {
    if (c == nullptr) continue;
    if (c->rb_parent_ != n) {
      *err = "child's parent link does not point back";
      return -1;
    }
    if (n->rb_color_ == kRed && c->rb_color_ == kRed) {
      *err = "red node has a red child";
      return -1;
    }
  }
  if (n->rb_left_ != nullptr && !(n->rb_left_->start < n->start)) {
    *err = "left child does not start below its parent";
    return -1;
  }
  if (n->rb_right_ != nullptr && !(n->start < n->rb_right_->start)) {
    *err = "right child does not start above its parent";
    return -1;
  }
  const int lh = CheckSubtree(n->rb_left_, owner, depth + 1, count, err);
  if (lh < 0) return -1;
  const int rh = CheckSubtree(n->rb_right_, owner, depth + 1, count, err);
  if (rh < 0) return -1;
  if (lh != rh) {
    *err = "black heights of two subtrees differ";
    return -1;
  }
  return lh + (n->rb_color_ == kBlack ? 1 : 0);
}

// Recomputes v's subtree gap and walks up while the value changes
// (vma_gap_callbacks_propagate(), 4.x).
void PropagateFrom(Vma* v, const Vma* head) {
  while (v != head) {
    const uint64_t g = ComputeSubtreeGap(v);
    if (g == v->rb_subtree_gap_) break;
    v->rb_subtree_gap_ = g;
    v = v->rb_parent_;
  }
}

}  // namespace

VmaTree::VmaTree() { Algo::init_header(&header_); }

Vma* VmaTree::root() const { return header_.rb_parent_; }

void VmaTree::NoteChanged(Vma* v) {
  if (log_len_ > 0 && log_[log_len_ - 1] == v) return;
  if (log_len_ == kLogCapacity) {
    log_overflow_ = true;
    return;
  }
  log_[log_len_++] = v;
}

// Brings every subtree gap up to date: each logged node is recomputed and the
// change carried upward. A node's inputs are its own gap and its children's
// values; each node whose own gap or children changed was logged, and
// propagation recomputes a parent after every change of a child, so every
// node is recomputed after its last input changed, in whatever order the log
// is replayed. Entries of erased nodes were dropped by Erase(). When the log
// overflowed, a post-order pass recomputes the whole tree instead.
void VmaTree::FixGaps() const {
  if (log_overflow_) {
    Vma* n = root();
    if (n != nullptr) {
      auto deepest_first = [](Vma* x) {
        for (;;) {
          if (x->rb_left_ != nullptr) {
            x = x->rb_left_;
          } else if (x->rb_right_ != nullptr) {
            x = x->rb_right_;
          } else {
            return x;
          }
        }
      };
      n = deepest_first(n);
      for (;;) {
        n->rb_subtree_gap_ = ComputeSubtreeGap(n);
        Vma* p = n->rb_parent_;
        if (p == &header_) break;
        n = (p->rb_left_ == n && p->rb_right_ != nullptr) ? deepest_first(p->rb_right_) : p;
      }
    }
  } else {
    for (int i = 0; i < log_len_; ++i) {
      if (log_[i] != nullptr) PropagateFrom(log_[i], &header_);
    }
  }
  log_len_ = 0;
  log_overflow_ = false;
}

// Replays the log early when the next operation might not fit in it, so
// that a long run of splits and merges never falls back to the O(n) pass.
void VmaTree::MakeLogRoom() {
  if (log_len_ > kLogCapacity - kLogReserve) FixGaps();
}

// Links v at its place by start (vma_link()/__vma_link_rb(), 4.x), splicing
// it into the prev/next list first so Gap() is right for the recompute.
void VmaTree::Insert(Vma* v) {
  MakeLogRoom();
  Vma* parent = header();
  Vma* prev = nullptr;
  Vma* next = nullptr;
  bool link_left = true;
  for (Vma* x = root(); x != nullptr;) {
    parent = x;
    link_left = v->start < x->start;
    if (link_left) {
      next = x;
      x = x->rb_left_;
    } else {
      prev = x;
      x = x->rb_right_;
    }
  }
  v->rb_parent_ = v->rb_left_ = v->rb_right_ = nullptr;
  v->rb_subtree_gap_ = 0;
  v->rb_owner_ = this;
  v->prev = prev;
  v->next = next;
  if (prev != nullptr) {
    prev->next = v;
  } else {
    first_ = v;
  }
  if (next != nullptr) {
    next->prev = v;
  } else {
    last_ = v;
  }
  ++size_;

  Algo::insert_commit_data commit;
  commit.node = parent;
  commit.link_left = link_left;
  Algo::insert_unique_commit(header(), v, commit);
  NoteChanged(v);
  if (next != nullptr) NoteChanged(next);  // its prev changed
}

// Unlinks v (vma_rb_erase(), 4.x); v->next's gap grows to cover v.
void VmaTree::Erase(Vma* v) {
  MakeLogRoom();
  Vma* prev = v->prev;
  Vma* next = v->next;
  if (prev != nullptr) {
    prev->next = next;
  } else {
    first_ = next;
  }
  if (next != nullptr) {
    next->prev = prev;
  } else {
    last_ = prev;
  }
  --size_;
  Algo::erase(header(), v);
  v->rb_owner_ = nullptr;
  v->rb_parent_ = v->rb_left_ = v->rb_right_ = nullptr;
  v->prev = v->next = nullptr;
  // v is out of the tree (and may be freed): drop it from the log.
  for (int i = 0; i < log_len_; ++i) {
    if (log_[i] == v) log_[i] = nullptr;
  }
  if (next != nullptr) NoteChanged(next);
}

// Gap(v) and Gap(v->next) change; they are recomputed by the next FixGaps().
void VmaTree::SetBounds(Vma* v, uint64_t start, uint64_t end) {
  // A VMA keeps a page-aligned, non-empty range that overlaps neither
  // neighbour (callers shrink one side before they grow the other).
  VMASHADOW_DCHECK(start < end && PageAligned(start) && PageAligned(end));
  VMASHADOW_DCHECK(v->prev == nullptr || v->prev->end <= start);
  VMASHADOW_DCHECK(v->next == nullptr || end <= v->next->start);
  MakeLogRoom();
  v->start = start;
  v->end = end;
  NoteChanged(v);
  if (v->next != nullptr) NoteChanged(v->next);
}

// Mirrors find_vma() (mm/mmap.c, 4.x rbtree walk; 6.x gives the same answer).
Vma* VmaTree::FindVma(uint64_t addr) const {
  Vma* found = nullptr;
  for (Vma* x = root(); x != nullptr;) {
    if (x->end > addr) {
      found = x;
      if (x->start <= addr) break;
      x = x->rb_left_;
    } else {
      x = x->rb_right_;
    }
  }
  return found;
}

// Mirrors find_vma_prev() (mm/mmap.c, 4.x).
Vma* VmaTree::FindVmaPrev(uint64_t addr, Vma** prev) const {
  Vma* v = FindVma(addr);
  *prev = v != nullptr ? v->prev : last_;
  return v;
}

// Mirrors find_vma_intersection() (include/linux/mm.h, 4.x).
Vma* VmaTree::FindVmaIntersection(uint64_t start, uint64_t end) const {
  Vma* v = FindVma(start);
  if (v != nullptr && end <= v->start) return nullptr;
  return v;
}

// Mirrors unmapped_area() (mm/mmap.c, 6.12): the lowest free interval whose
// part in [low, high) holds length + align_mask; its clipped start rounded up
// to the alignment. If the VMA above it keeps a start gap (VM_GROWSDOWN or a
// shadow stack) that the padded range would reach, search again above that
// VMA. The kernel's vm_end_gap() check of the VMA below is a no-op on x86
// (no VM_GROWSUP) and is left out. The caller applies mmap_min_addr.
uint64_t VmaTree::UnmappedArea(const UnmappedAreaInfo& info) const {
  FixGaps();
  if (info.length == 0) return kNoGap;
  const uint64_t len = info.length + info.align_mask;
  if (len < info.length) return kNoGap;
  uint64_t lo = info.low_limit;
  const uint64_t hi = info.high_limit;
  for (;;) {
    if (hi <= lo || hi - lo < len) return kNoGap;
    const Vma* above = LowestFit(root(), lo, hi, len);
    uint64_t gap_start;
    if (above != nullptr) {
      gap_start = PrevEnd(above);
    } else {
      // The interval above the last VMA, [last.end, inf).
      gap_start = last_ != nullptr ? last_->end : 0;
      if (gap_start < lo) gap_start = lo;
      if (gap_start >= hi || hi - gap_start < len) return kNoGap;
    }
    if (gap_start < lo) gap_start = lo;
    const uint64_t addr = gap_start + ((info.align_offset - gap_start) & info.align_mask);
    if (above != nullptr && (above->flags & kStartGapFlags)) {
      // The kernel's test: vm_start_gap(next) < gap + length - 1.
      const uint64_t sg = StartGap(above, info.stack_guard_gap);
      if (sg < addr || sg - addr < len - 1) {
        lo = above->end;
        continue;
      }
    }
    return addr;
  }
}

// Mirrors unmapped_area_topdown() (mm/mmap.c, 6.12; docs/placement.md#top-down-search): the highest
// free interval whose part in [low, high) holds length + align_mask; with E
// its clipped end, the result is E - length rounded down to the alignment.
// If the VMA right above keeps a start gap below E, search again below that
// start gap. The vm_end_gap() check of the VMA below is a no-op on x86.
uint64_t VmaTree::UnmappedAreaTopdown(const UnmappedAreaInfo& info) const {
  FixGaps();
  if (info.length == 0) return kNoGap;
  const uint64_t len = info.length + info.align_mask;
  if (len < info.length) return kNoGap;
  const uint64_t lo = info.low_limit;
  uint64_t hi = info.high_limit;
  for (;;) {
    if (hi <= lo || hi - lo < len) return kNoGap;
    // The interval above the last VMA, [last.end, inf), is the highest.
    uint64_t top_start = last_ != nullptr ? last_->end : 0;
    if (top_start < lo) top_start = lo;
    const Vma* above = nullptr;
    uint64_t gap_end = hi;
    if (top_start >= hi || hi - top_start < len) {
      above = HighestFit(root(), lo, hi, len);
      if (above == nullptr) return kNoGap;
      gap_end = above->start < hi ? above->start : hi;
    }
    uint64_t addr = gap_end - info.length;
    addr -= (addr - info.align_offset) & info.align_mask;
    if (above != nullptr && (above->flags & kStartGapFlags)) {
      const uint64_t sg = StartGap(above, info.stack_guard_gap);
      if (sg < gap_end) {
        hi = sg;
        continue;
      }
    }
    return addr;
  }
}

const char* VmaTree::Validate() const {
  FixGaps();
  const Vma* head = &header_;
  const Vma* r = root();
  if (r == nullptr) {
    if (size_ != 0) return "size_ is not 0 in an empty tree";
    if (first_ != nullptr || last_ != nullptr) return "first_/last_ set in an empty tree";
    if (header_.rb_left_ != head || header_.rb_right_ != head) {
      return "empty tree's header does not point to itself";
    }
    return nullptr;
  }
  if (r->rb_parent_ != head) return "root's parent is not the header";
  if (r->rb_color_ != kBlack) return "root is not black";
  if (header_.rb_color_ != kRed) return "header is not red";

  // Shape, colors, order of children and every subtree gap.
  size_t count = 0;
  const char* err = nullptr;
  if (CheckSubtree(r, this, 0, &count, &err) < 0) return err;
  if (count != size_) return "size_ differs from the number of nodes";

  // In-order walk against the list: order, overlap, prev/next, first/last.
  const Vma* leftmost = r;
  while (leftmost->rb_left_ != nullptr) leftmost = leftmost->rb_left_;
  const Vma* rightmost = r;
  while (rightmost->rb_right_ != nullptr) rightmost = rightmost->rb_right_;
  if (header_.rb_left_ != leftmost) return "header's left is not the leftmost node";
  if (header_.rb_right_ != rightmost) return "header's right is not the rightmost node";
  if (first_ != leftmost) return "first_ is not the leftmost node";
  if (last_ != rightmost) return "last_ is not the rightmost node";
  const Vma* expected_prev = nullptr;
  size_t walked = 0;
  for (Vma* v = const_cast<Vma*>(leftmost); v != head; v = Algo::next_node(v)) {
    if (++walked > size_) return "in-order walk is longer than size_";
    if (!(v->start < v->end)) return "VMA is empty or inverted";
    if (v->prev != expected_prev) return "prev link differs from the in-order predecessor";
    if (expected_prev != nullptr) {
      if (expected_prev->next != v) return "next link differs from the in-order successor";
      if (expected_prev->end > v->start) return "VMAs overlap or are out of order";
    }
    expected_prev = v;
  }
  if (walked != size_) return "in-order walk is shorter than size_";
  if (expected_prev->next != nullptr) return "last VMA has a next link";

  // With the list known good, every subtree gap from its inputs (which, node
  // by node, is the largest Gap() of each subtree).
  for (const Vma* v = first_; v != nullptr; v = v->next) {
    if (v->rb_subtree_gap_ != ComputeSubtreeGap(v)) {
      return "rb_subtree_gap_ differs from the recomputed value";
    }
  }
  return nullptr;
}

}  // namespace vmashadow
