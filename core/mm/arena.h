// arena.h — the only memory the model uses: a region the caller provides.
//
// The preload maps one region through its trampoline and hands it over; tests
// and tools pass any buffer. Allocation is a bump pointer plus one free list per
// power-of-two size class (16 B .. 64 KiB), so freed VMAs and files are reused
// and the arena never grows. Not thread-safe: the AddressSpace lock covers it.
// Depends on nothing; preload-safe.
#ifndef VMASHADOW_CORE_MM_ARENA_H_
#define VMASHADOW_CORE_MM_ARENA_H_

#include <cstddef>
#include <cstdint>

namespace vmashadow {

class Arena {
 public:
  // Uses [base, base+size) for every allocation. base must be 16-byte aligned.
  Arena(void* base, size_t size);
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  // Returns 16-byte aligned storage of at least `size` bytes, or nullptr when
  // the arena is exhausted or size > kMaxAlloc. Never aborts.
  [[nodiscard]] void* Allocate(size_t size);
  // Returns storage obtained from Allocate(size) with the same size.
  void Free(void* p, size_t size);

  size_t bytes_used() const { return used_; }     // live bytes (rounded to class)
  size_t bytes_reserved() const { return top_; }  // high-water mark of the bump pointer
  size_t capacity() const { return size_; }

  static constexpr size_t kMinClassShift = 4;   // 16 B
  static constexpr size_t kMaxClassShift = 16;  // 64 KiB
  static constexpr size_t kMaxAlloc = size_t{1} << kMaxClassShift;

 private:
  struct FreeNode {
    FreeNode* next;
  };
  static int ClassOf(size_t size);

  char* base_;
  size_t size_;
  size_t top_ = 0;
  size_t used_ = 0;
  FreeNode* free_[kMaxClassShift - kMinClassShift + 1] = {};
};

}  // namespace vmashadow

#endif  // VMASHADOW_CORE_MM_ARENA_H_
