// page_tables_internal.h — what page_tables*.cc share: the table layouts
// and the bit and index helpers. Only core/mm/page_tables*.cc include this.
#ifndef VMASHADOW_CORE_MM_PAGE_TABLES_INTERNAL_H_
#define VMASHADOW_CORE_MM_PAGE_TABLES_INTERNAL_H_

#include <cstdint>

#include "core/mm/page_tables.h"

namespace vmashadow {

// A PGD, P4D, PUD or PMD table: 512 entries. A PMD entry is 0 (none),
// kHugeEntry (an anonymous huge PMD with its deposited table), kHugeFileEntry
// (a PMD-mapped file or shmem folio: x86 deposits nothing for those) or a
// Pte*; the others are 0 or a Dir*.
struct PageTables::Dir {
  uintptr_t e[kPtrsPerTable] = {};
};

// A PTE table: which entries are mapped and which hold guard markers.
struct PageTables::Pte {
  uint64_t mapped[kPtrsPerTable / 64] = {};
  uint64_t marker[kPtrsPerTable / 64] = {};
};

namespace pt_detail {

using Dir = PageTables::Dir;
using Pte = PageTables::Pte;

inline constexpr uintptr_t kHugeEntry = 1;
inline constexpr uintptr_t kHugeFileEntry = 2;
inline constexpr int kWords = kPtrsPerTable / 64;

// Which kind of table an entry points at (for FreeAll/DropSubtree).
enum Level : int { kLevelPte = 0, kLevelPmd = 1, kLevelPud = 2, kLevelP4d = 3 };

inline uint32_t Index(uint64_t addr, int shift) {
  return static_cast<uint32_t>((addr >> shift) & (kPtrsPerTable - 1));
}

// pXd_addr_end(): the next `size` boundary after addr, or end if that comes
// first (the "- 1" comparisons make end 0 mean the top).
inline uint64_t AddrEnd(uint64_t addr, uint64_t end, uint64_t size) {
  const uint64_t boundary = (addr + size) & ~(size - 1);
  return boundary - 1 < end - 1 ? boundary : end;
}

// Bits [from, to) of a 512-bit map.
inline void SetBits(uint64_t* w, uint32_t from, uint32_t to) {
  for (uint32_t i = from; i < to;) {
    const uint32_t word = i / 64;
    const uint32_t bit = i % 64;
    const uint32_t n = (to - i) < (64 - bit) ? (to - i) : (64 - bit);
    const uint64_t mask = n == 64 ? ~uint64_t{0} : ((uint64_t{1} << n) - 1) << bit;
    w[word] |= mask;
    i += n;
  }
}

inline void ClearBits(uint64_t* w, uint32_t from, uint32_t to) {
  for (uint32_t i = from; i < to;) {
    const uint32_t word = i / 64;
    const uint32_t bit = i % 64;
    const uint32_t n = (to - i) < (64 - bit) ? (to - i) : (64 - bit);
    const uint64_t mask = n == 64 ? ~uint64_t{0} : ((uint64_t{1} << n) - 1) << bit;
    w[word] &= ~mask;
    i += n;
  }
}

inline bool TestBit(const uint64_t* w, uint32_t i) { return (w[i / 64] >> (i % 64)) & 1; }

// Population count without libgcc's __popcountdi2 (core links libc only).
inline uint32_t PopCount(uint64_t x) {
  x = x - ((x >> 1) & 0x5555555555555555ULL);
  x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
  x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
  return static_cast<uint32_t>((x * 0x0101010101010101ULL) >> 56);
}

inline uint32_t CountBits(const uint64_t* w, uint32_t from, uint32_t to) {
  uint32_t n = 0;
  for (uint32_t i = from; i < to;) {
    const uint32_t word = i / 64;
    const uint32_t bit = i % 64;
    const uint32_t k = (to - i) < (64 - bit) ? (to - i) : (64 - bit);
    const uint64_t mask = k == 64 ? ~uint64_t{0} : ((uint64_t{1} << k) - 1) << bit;
    n += PopCount(w[word] & mask);
    i += k;
  }
  return n;
}

inline bool PteEmpty(const Pte* p) {
  for (int i = 0; i < kWords; ++i) {
    if (p->mapped[i] != 0 || p->marker[i] != 0) return false;
  }
  return true;
}

inline bool IsHuge(uintptr_t e) { return e == kHugeEntry || e == kHugeFileEntry; }
inline bool IsTable(uintptr_t e) { return e != 0 && !IsHuge(e); }
inline Pte* AsPte(uintptr_t e) { return reinterpret_cast<Pte*>(e); }
inline Dir* AsDir(uintptr_t e) { return reinterpret_cast<Dir*>(e); }
inline uintptr_t ToEntry(const void* p) { return reinterpret_cast<uintptr_t>(p); }

inline uint32_t PteIndex(uint64_t addr) { return Index(addr, static_cast<int>(kPageShift)); }

// The end of the PTE-index range of [a, next) inside one PMD slot: next may
// be the slot's end, which has index 0 in the next slot.
inline uint32_t PteIndexEnd(uint64_t a, uint64_t next) {
  return PteIndex(a) + static_cast<uint32_t>((next - a) >> kPageShift);
}

}  // namespace pt_detail

}  // namespace vmashadow

#endif  // VMASHADOW_CORE_MM_PAGE_TABLES_INTERNAL_H_
