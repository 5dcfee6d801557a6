// page_tables.h — the x86-64 page tables of one mm, as far as the kernel's
// bookkeeping can see them: which PUD, PMD and PTE tables exist, which
// entries map something, which PMD entries map a transparent huge page, and
// what that costs in VmPTE.
//
// The model mirrors the kernel's own walk code (mm/memory.c, mm/mremap.c,
// mm/huge_memory.c, 6.12, checked against the running 6.18 kernel): tables
// are allocated when an entry is installed (a fault, GUP/populate, a guard
// marker, mremap moving entries, fork copying them), a table is freed only by
// free_pgd_range()'s floor/ceiling rule or by PT_RECLAIM, and a PMD-mapped THP
// keeps one deposited PTE table. See docs/page-tables.md.
//
// Geometry (4-level; 5-level puts a P4D level under a 9-bit PGD[56:48]):
//
//   63      48 47    39 38    30 29    21 20    12 11       0
//   | sign   | PGD    | PUD    | PMD    | PTE    | offset   |
//              512 GiB  1 GiB    2 MiB    4 KiB      per entry
//
// Each table is one 4 KiB page of 512 entries. VmPTE counts PTE, PMD and PUD
// tables (nr_ptes + nr_pmds + nr_puds, each 4 KiB); P4D and PGD pages are not
// counted. A THP's deposited table counts as a PTE table.
//
// "Mapped" means the entry is not pte_none(): a present page (including the
// zero page and PROT_NONE pages) or a swap entry; a guard marker (6.13+) is
// tracked separately because MADV_DONTNEED keeps it and munmap drops it.
//
// Memory: every table comes from the Arena (a PMD/PUD/P4D/PGD table is a 4 KiB
// array of entries, a PTE table a 128-byte pair of bitmaps). When the arena is
// exhausted the operation is dropped and broken() turns true: the counts are
// then only a lower bound. No syscalls, no exceptions; preload-safe.
#ifndef VMASHADOW_CORE_MM_PAGE_TABLES_H_
#define VMASHADOW_CORE_MM_PAGE_TABLES_H_

#include <cstddef>
#include <cstdint>

#include "core/mm/arena.h"
#include "core/mm/mm_types.h"

namespace vmashadow {

inline constexpr int kPtrsPerTable = 512;
inline constexpr uint64_t kPageTableBytes = 4096;  // every level's table is one page
inline constexpr int kPmdShift = 21;
inline constexpr int kPudShift = 30;
inline constexpr int kP4dShift = 39;
inline constexpr uint64_t kPmdMask = ~(kPmdSize - 1);
inline constexpr uint64_t kPudSize = uint64_t{1} << kPudShift;
inline constexpr uint64_t kPudMask = ~(kPudSize - 1);
inline constexpr uint64_t kP4dSize = uint64_t{1} << kP4dShift;

// PGDIR_SHIFT: 39 with 4-level paging (P4D folded into the PGD), 48 with 5.
inline constexpr int PgdirShift(int levels) { return levels == 5 ? 48 : 39; }

// The table indices of a virtual address (pgd_index() ... pte_index(),
// arch/x86/include/asm/pgtable_64_types.h). With 4-level paging the P4D is
// folded: p4d is reported as 0.
struct PtIndex {
  uint32_t pgd = 0;
  uint32_t p4d = 0;
  uint32_t pud = 0;
  uint32_t pmd = 0;
  uint32_t pte = 0;
  uint32_t offset = 0;  // byte offset in the 4 KiB page
};
PtIndex SplitVirtualAddress(uint64_t addr, int levels);

// x86 page-table entry bits (arch/x86/include/asm/pgtable_types.h, 6.12).
namespace pte_bits {
inline constexpr uint64_t kPresent = uint64_t{1} << 0;
inline constexpr uint64_t kRw = uint64_t{1} << 1;
inline constexpr uint64_t kUser = uint64_t{1} << 2;
inline constexpr uint64_t kPwt = uint64_t{1} << 3;
inline constexpr uint64_t kPcd = uint64_t{1} << 4;
inline constexpr uint64_t kAccessed = uint64_t{1} << 5;
inline constexpr uint64_t kDirty = uint64_t{1} << 6;
inline constexpr uint64_t kPse = uint64_t{1} << 7;       // a huge PMD/PUD leaf
inline constexpr uint64_t kGlobal = uint64_t{1} << 8;    // in a not-present PTE:
inline constexpr uint64_t kProtNone = uint64_t{1} << 8;  // _PAGE_PROTNONE
inline constexpr uint64_t kSpecial = uint64_t{1} << 9;
inline constexpr uint64_t kPkeyShift = 59;
inline constexpr uint64_t kPkeyMask = uint64_t{0xf} << kPkeyShift;
inline constexpr uint64_t kNx = uint64_t{1} << 63;
}  // namespace pte_bits

// Mirrors vm_get_page_prot() (arch/x86/mm/pgprot.c, 6.12): protection_map[]
// indexed by VM_READ|VM_WRITE|VM_EXEC|VM_SHARED, the pkey bits 59–62 from
// VM_PKEY_BIT0..3, NX dropped when the CPU lacks it (__supported_pte_mask).
//
//   vm_flags            pgprot
//   ---                 PAGE_NONE: ACCESSED|PROTNONE (not present)
//   r--, -w-, rw-       PRESENT|USER|ACCESSED|NX (private writes are CoW)
//   --x, r-x, -wx, rwx  PRESENT|USER|ACCESSED
//   shared -w-, rw-     PRESENT|RW|USER|ACCESSED|NX
//   shared -wx, rwx     PRESENT|RW|USER|ACCESSED
//   shared r--/--x/r-x  as private
uint64_t VmGetPageProt(uint64_t vm_flags, bool nx_supported);

// Mirrors vma_wants_writenotify() (mm/vma.c, 6.12) as far as the model knows
// the backing: a shared writable mapping of a regular file (page_mkwrite or
// dirty accounting) starts read-only; shmem, devices and anonymous memory do
// not. Soft-dirty is compiled out; uffd-wp counts.
bool VmaWantsWriteNotify(const Vma& v);

// Mirrors vma_set_page_prot() (mm/mmap.c, 6.12): vma->vm_page_prot, the bits
// every PTE of the VMA starts from (a write-notify VMA without VM_SHARED).
uint64_t VmaPageProt(const Vma& v, bool nx_supported);

// What the kernel's PMD entry for an address holds.
enum class PmdKind : uint8_t {
  kNone = 0,  // pmd_none()
  kTable,     // points at a PTE table
  kHuge,      // maps a 2 MiB THP or the huge zero page (anonymous memory: with a
              // deposited PTE table), or a PMD-sized file folio (no table)
};

// The result of walking the tables for one address.
struct PageWalk {
  PtIndex index;
  bool p4d_table = false;  // 5-level: the PGD entry points at a P4D table (4-level: false)
  bool pud_table = false;  // a PUD table covers the address
  bool pmd_table = false;  // a PMD table covers the address
  PmdKind pmd = PmdKind::kNone;
  bool pte_table = false;  // a PTE table covers the address (or is deposited: kHuge)
  bool mapped = false;     // the PTE (or huge PMD) is not none: present, PROT_NONE or swap
  bool guard = false;      // a guard marker (MADV_GUARD_INSTALL)
  bool in_vma = false;     // filled by AddressSpace::WalkPage
  uint64_t prot = 0;       // vm_page_prot of the VMA (AddressSpace::WalkPage), 0 outside
};

// Table counts as the kernel keeps them (mm->pgtables_bytes is their sum).
struct PageTableCounts {
  uint64_t pte_tables = 0;  // nr_ptes: PTE tables, deposited ones included
  uint64_t pmd_tables = 0;  // nr_pmds
  uint64_t pud_tables = 0;  // nr_puds
  uint64_t p4d_tables = 0;  // 5-level only; the kernel does not count them
  uint64_t deposited = 0;   // of pte_tables: deposited under huge PMDs
  // Tables the kernel had when the model was calibrated that no mapped page
  // explained (empty "ghost" tables, whose place is unknown). Constant until
  // the next calibration.
  uint64_t unlocated = 0;
  // Lower tables still attached to a table free_pgd_range() freed (the kernel
  // would leak them and never decrement nr_ptes/nr_pmds; not expected).
  uint64_t leaked = 0;
  // mm_pgtables_bytes(): what VmPTE shows (>> 10).
  uint64_t bytes() const { return (pte_tables + pmd_tables + pud_tables) * kPageTableBytes; }
};

class PageTables {
 public:
  // levels: 4 or 5 (anything else is taken as 4).
  PageTables(Arena* arena, int levels);
  ~PageTables();
  PageTables(const PageTables&) = delete;
  PageTables& operator=(const PageTables&) = delete;

  // Frees every table; counts (and the unlocated baseline) return to 0.
  void Clear();
  // Switches paging levels; clears the tables when the value changes.
  void SetLevels(int levels);
  int levels() const { return levels_; }
  // Exchanges the whole state with `other` (same arena).
  void Swap(PageTables& other);

  const PageTableCounts& counts() const { return counts_; }
  // mm_pgtables_bytes() plus the unlocated baseline: the predicted VmPTE in
  // bytes.
  uint64_t bytes() const { return counts_.bytes() + counts_.unlocated * kPageTableBytes; }
  bool empty() const { return pgd_ == nullptr; }
  bool broken() const { return broken_; }
  void set_unlocated(uint64_t tables) { counts_.unlocated = tables; }

  // --- what the kernel does (callers decide when; see AddressSpace) ---

  // Entries in [start, end) become mapped, as handle_pte_fault()/GUP install
  // them: missing PUD, PMD and PTE tables are allocated (__pud_alloc,
  // __pmd_alloc, __pte_alloc in mm/memory.c). Pages under a huge PMD are
  // already mapped. Page aligned.
  void MapRange(uint64_t start, uint64_t end);
  // A huge PMD at the 2 MiB-aligned haddr (do_huge_pmd_anonymous_page(),
  // set_huge_zero_folio(), mm/huge_memory.c 6.12): PUD and PMD tables as
  // needed plus one deposited PTE table; without `deposit` a PMD-mapped file
  // or shmem folio (do_set_pmd(), mm/memory.c: x86 deposits nothing). Only
  // when the PMD entry is none; returns false otherwise (the fault falls
  // back to PTEs).
  bool MapHuge(uint64_t haddr, bool deposit = true);
  // True when the PMD entry covering addr is pmd_none() (no PTE table, no THP).
  bool PmdNone(uint64_t addr) const;
  // split_huge_pmd() at addr: an anonymous huge PMD becomes its deposited PTE
  // table with all 512 entries mapped (counts unchanged); a file one is just
  // cleared (__split_huge_pmd_locked). Nothing when not huge.
  void SplitHuge(uint64_t addr);
  // Guard markers in [start, end) (MADV_GUARD_INSTALL): the range is zapped,
  // then every entry holds a marker; tables are allocated as for faults.
  void InstallGuards(uint64_t start, uint64_t end);
  // MADV_GUARD_REMOVE: markers in [start, end) become none; tables stay.
  void RemoveGuards(uint64_t start, uint64_t end);

  // Mirrors zap_pmd_range()/zap_pte_range() (mm/memory.c, 6.12) over one
  // VMA's [start, end): mapped entries become none; a huge PMD wholly inside
  // is zapped with its deposited table (zap_huge_pmd), one partly inside is
  // split first. drop_markers: munmap's ZAP_FLAG_DROP_MARKER (guard markers
  // go too). reclaim: CONFIG_PT_RECLAIM for MADV_DONTNEED (mm/pt_reclaim.c,
  // 6.14+): a PTE table whose whole 2 MiB lies in [start, end) and that is
  // empty afterwards is freed.
  void Zap(uint64_t start, uint64_t end, bool drop_markers, bool reclaim);

  // Mirrors free_pgd_range() (mm/memory.c, 6.12): frees the PTE, PMD, PUD
  // (and P4D) tables under [addr, end) whose whole region lies in
  // [floor, ceiling); ceiling 0 means the top of the address space.
  void FreePgdRange(uint64_t addr, uint64_t end, uint64_t floor, uint64_t ceiling);

  // Mirrors move_page_tables()'s loop (mm/mremap.c, 6.12) after
  // try_realign_addr(): moves the entries of [old_addr, old_addr+len) to
  // new_addr. Destination PUD/PMD tables are allocated for every extent whose
  // source has a table (even an empty one); whole PMD tables move at 1 GiB
  // extents (move_normal_pud), whole PTE tables and huge PMDs at 2 MiB
  // extents (move_normal_pmd, move_huge_pmd) when the destination entry is
  // none; otherwise a destination PTE table is allocated and the entries move.
  void MoveRange(uint64_t old_addr, uint64_t new_addr, uint64_t len);

  // Mirrors copy_page_range() (mm/memory.c, 6.12) for one VMA's [start, end)
  // into `dst` (the fork child): dst gets a table wherever this one has a
  // table under the range (copy_p4d/pud/pmd/pte_range allocate before looking
  // at entries), the same mapped entries and markers, and a deposited table
  // for every huge PMD (copy_huge_pmd).
  void CopyRangeTo(PageTables* dst, uint64_t start, uint64_t end) const;

  // --- learning from the kernel (pagemap / PAGEMAP_SCAN) ---

  // Entries in [lo, hi) are mapped (pagemap bit 63 or 62 without the guard
  // bit). huge: [lo, hi) is PMD-mapped (PAGE_IS_HUGE): each 2 MiB-aligned
  // slot inside it becomes a huge PMD; with `deposit` (anonymous memory) an
  // existing PTE table is taken as its deposit, without (file/shmem) a PTE
  // table there cannot exist and goes. Tables are allocated as a fault would.
  void LearnMapped(uint64_t lo, uint64_t hi, bool huge, bool deposit = true);
  // No entry in [lo, hi) is mapped: clears them (huge PMDs are split first).
  // Tables are never freed by learning: an empty table may well exist.
  void LearnUnmapped(uint64_t lo, uint64_t hi);
  // Entries in [lo, hi) hold guard markers (PAGE_IS_GUARD).
  void LearnGuards(uint64_t lo, uint64_t hi);

  // --- queries ---

  PageWalk Walk(uint64_t addr) const;
  bool IsMapped(uint64_t addr) const;
  // Mapped pages in [start, end) (huge PMDs count 512).
  uint64_t CountMapped(uint64_t start, uint64_t end) const;
  // The first run of mapped pages at or after `from` and below `end`:
  // [*lo, *hi), with *huge when it is a huge PMD's (runs stop at huge/PTE
  // changes). False when there is none.
  bool NextMappedRun(uint64_t from, uint64_t end, uint64_t* lo, uint64_t* hi, bool* huge) const;

  // Counts agree with the structure; nullptr or the first violation.
  const char* Validate() const;

  struct Dir;  // a PGD, P4D, PUD or PMD table (internal)
  struct Pte;  // a PTE table's entries (internal)

 private:
  Dir* NewDir();
  Pte* NewPte();
  void FreeDir(Dir* d);
  void FreePte(Pte* p);
  // The slot that points at the PUD table for addr (the PGD entry with 4
  // levels, the P4D entry with 5), allocating the P4D table when alloc.
  uintptr_t* PudSlot(uint64_t addr, bool alloc);
  const uintptr_t* PudSlotConst(uint64_t addr) const;
  Dir* PudTable(uint64_t addr, bool alloc);
  Dir* PmdTable(uint64_t addr, bool alloc);
  uintptr_t* PmdEntry(uint64_t addr, bool alloc);
  const uintptr_t* PmdEntryConst(uint64_t addr) const;
  uintptr_t* LookupPmd(uint64_t a, uint64_t end, uint64_t* next) const;
  // The PTE table for addr, allocated when alloc; nullptr under a huge PMD.
  Pte* PteTable(uint64_t addr, bool alloc);
  void FreeP4dRange(uintptr_t* pgd_slot, uint64_t addr, uint64_t end, uint64_t floor,
                    uint64_t ceiling);
  void FreePudRange(uintptr_t* p4d_slot, uint64_t addr, uint64_t end, uint64_t floor,
                    uint64_t ceiling);
  void FreePmdRange(uintptr_t* pud_slot, uint64_t addr, uint64_t end, uint64_t floor,
                    uint64_t ceiling);
  // Frees what still hangs below a table free_pgd_range() frees (counted as
  // leaked, not uncounted: the kernel would not decrement its counters).
  void DropSubtree(uintptr_t entry, int level);
  void FreeAll(uintptr_t entry, int level);

  Arena* arena_;
  int levels_;
  Dir* pgd_ = nullptr;
  PageTableCounts counts_;
  bool broken_ = false;
};

}  // namespace vmashadow

#endif  // VMASHADOW_CORE_MM_PAGE_TABLES_H_
