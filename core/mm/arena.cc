// arena.cc — bump allocator with size-class free lists (see arena.h).
#include "core/mm/arena.h"

namespace vmashadow {

Arena::Arena(void* base, size_t size) : base_(static_cast<char*>(base)), size_(size) {}

int Arena::ClassOf(size_t size) {
  size_t shift = kMinClassShift;
  while ((size_t{1} << shift) < size) ++shift;
  return static_cast<int>(shift - kMinClassShift);
}

void* Arena::Allocate(size_t size) {
  if (size == 0) size = 1;
  if (size > kMaxAlloc) return nullptr;
  const int c = ClassOf(size);
  const size_t bytes = size_t{1} << (c + kMinClassShift);
  if (FreeNode* n = free_[c]) {
    free_[c] = n->next;
    used_ += bytes;
    return n;
  }
  // Fresh blocks are aligned to their size, up to a cache line, so that a
  // Vma never straddles more lines than it must.
  const size_t align = bytes < 64 ? bytes : 64;
  const size_t offset = (align - reinterpret_cast<uintptr_t>(base_ + top_) % align) % align;
  if (size_ - top_ < bytes + offset) return nullptr;
  top_ += offset;
  void* p = base_ + top_;
  top_ += bytes;
  used_ += bytes;
  return p;
}

void Arena::Free(void* p, size_t size) {
  if (p == nullptr) return;
  if (size == 0) size = 1;
  const int c = ClassOf(size);
  auto* n = static_cast<FreeNode*>(p);
  n->next = free_[c];
  free_[c] = n;
  used_ -= size_t{1} << (c + kMinClassShift);
}

}  // namespace vmashadow
