// pagetable_oracle.cc — the running kernel as the oracle for the page-table
// model and the mm counters: scripted steps in a forked child, each mirrored
// on the model, and after every step
//   * /proc/self/maps and every VMA's smaps "VmFlags:" line, byte for byte;
//   * VmSize, VmLck, VmData, VmStk, VmExe, VmLib and VmPTE of
//     /proc/self/status against AddressSpace::PredictStatus();
//   * the pages pagemap (PAGEMAP_SCAN) shows mapped in the test's own memory
//     against the model's (huge PMDs included).
// The child's incidental activity (its stack, the harness's buffers, code
// pages it faults in) is learnt from pagemap through AddressSpace's learning
// API, but only inside the harness's own (protected) ranges: every table
// under the test's mappings comes from the model's own allocation and free
// rules. Each step also states the VmPTE change the kernel must show (found
// with probes on 6.18), so the script checks the scenario it means to.
//
// Layout: R = 16 TiB (a 512 GiB region nothing else uses). Steps: touches
// across 2 MiB, 1 GiB and 512 GiB boundaries; unmaps with and without a
// neighbour sharing the table; MADV_DONTNEED partial and whole-table (PT
// reclaim); THP faults, the huge zero page, a split and the zap of a THP;
// MAP_POPULATE, mlock, MADV_POPULATE_WRITE; mremap moves (unaligned, then
// realigned to whole tables) and shrink; MAP_FIXED replacement; brk growth
// and shrink; fork (the grandchild checks the copied tables, ghosts
// included).
//
// Exit status: 0 when everything matched, 1 on a mismatch, 77 when the
// kernel cannot run it (PAGEMAP_SCAN needs 6.7).
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <new>

#include "core/abi/kernel_profile.h"
#include "core/abi/linux_abi.h"
#include "core/mm/address_space.h"
#include "tests/kernel/oracle.h"

namespace vmashadow::oracle {
namespace {

namespace a = abi;

constexpr uint64_t kPg = kPageSize;
constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr uint64_t kR = uint64_t{16} << 40;  // 16 TiB: 512 GiB aligned
constexpr size_t kArenaSize = size_t{16} << 20;
constexpr int kRw = a::kProtRead | a::kProtWrite;
constexpr int kAnon = a::kMapPrivate | a::kMapAnonymous | a::kMapNoreserve;

int64_t Sys(long nr, uint64_t a0 = 0, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0,
            uint64_t a4 = 0, uint64_t a5 = 0) {
  const long r = syscall(nr, a0, a1, a2, a3, a4, a5);
  return r == -1 ? -static_cast<int64_t>(errno) : static_cast<int64_t>(r);
}

class Script {
 public:
  explicit Script(Harness* h) : h_(*h) {}

  // The whole script; returns the exit status.
  int Run();

 private:
  AddressSpace& model() { return h_.model(); }
  Counters& counters() { return h_.counters(); }

  // One step's comparisons: maps and VmFlags (bits and lines), counters,
  // VmPTE and presence. Then the kernel's VmPTE change since the previous
  // step must be `pte_delta_kb` (kUnchecked: any).
  static constexpr int64_t kUnchecked = INT64_MIN;
  void Finish(int64_t pte_delta_kb, const char* what);
  void Expect(bool ok, const char* what);

  // Steps (each mirrors the call on the model; fixed addresses only).
  void Map(uint64_t addr, uint64_t len, int prot, int flags, int64_t delta, const char* what);
  void Unmap(uint64_t addr, uint64_t len, int64_t delta, const char* what);
  void Touch(uint64_t start, uint64_t end, bool write, int64_t delta, const char* what);
  void Advise(uint64_t addr, uint64_t len, int advice, int64_t delta, const char* what);
  void Lock(uint64_t addr, uint64_t len, int64_t delta, const char* what);
  void Unlock(uint64_t addr, uint64_t len, const char* what);
  void Remap(uint64_t addr, uint64_t old_len, uint64_t new_len, int flags, uint64_t new_addr,
             int64_t delta, const char* what);
  void Brk(uint64_t target, int64_t delta, const char* what);

  void Boundaries();
  void Neighbours();
  void Dontneed();
  void Thp();
  void Populate();
  void Mremap();
  void MapFixed();
  void Heap();
  void Fork();

  Harness& h_;
  uint64_t last_pte_kb_ = 0;
  bool thp_ = false;
};

void Script::Expect(bool ok, const char* what) {
  if (ok) return;
  ++counters().mismatches;
  Writer w(1);
  w.Str("pagetable-oracle: EXPECTATION FAILED at step ").Udec(h_.current().index).Str(": ");
  w.Str(what).Ch('\n');
}

void Script::Finish(int64_t pte_delta_kb, const char* what) {
  h_.End(/*check_flags=*/true);
  h_.CheckMm(/*presence=*/true);
  const uint64_t now = h_.kernel_status().vm_pte_kb;
  if (pte_delta_kb != kUnchecked) {
    const int64_t got = static_cast<int64_t>(now) - static_cast<int64_t>(last_pte_kb_);
    if (got != pte_delta_kb) {
      Writer w(1);
      w.Str("pagetable-oracle: step ").Udec(h_.current().index).Str(" (").Str(what);
      w.Str("): the kernel's VmPTE changed by ").Dec(got).Str(" kB, the script expects ");
      w.Dec(pte_delta_kb).Str(" kB\n");
      ++counters().mismatches;
    }
  }
  last_pte_kb_ = now;
  Writer w(1);
  w.Str("  #").Udec(h_.current().index).Ch(' ').Str(what).Str(": VmPTE ").Udec(now).Str(" kB");
  if (pte_delta_kb != kUnchecked) w.Str(" (").Dec(pte_delta_kb).Str(" kB as expected)");
  w.Ch('\n');
}

void Script::Map(uint64_t addr, uint64_t len, int prot, int flags, int64_t delta,
                 const char* what) {
  flags |= a::kMapFixedNoreplace;
  h_.Begin("mmap", {addr, len, static_cast<uint64_t>(prot), static_cast<uint64_t>(flags)});
  h_.Note(what);
  const int64_t r = Sys(SYS_mmap, addr, len, static_cast<uint64_t>(prot),
                        static_cast<uint64_t>(flags), ~uint64_t{0}, 0);
  MapArgs m;
  m.addr = addr;
  m.len = len;
  m.prot = prot;
  m.flags = flags;
  h_.Result(r, model().Map(m));
  Finish(delta, what);
}

void Script::Unmap(uint64_t addr, uint64_t len, int64_t delta, const char* what) {
  h_.Begin("munmap", {addr, len});
  h_.Note(what);
  const int64_t r = Sys(SYS_munmap, addr, len);
  h_.Result(r, model().Unmap(addr, len));
  Finish(delta, what);
}

void Script::Touch(uint64_t start, uint64_t end, bool write, int64_t delta, const char* what) {
  h_.Begin(write ? "touch_write" : "touch_read", {start, end});
  h_.Note(what);
  Outcome o;
  for (uint64_t p = start; p < end; p += kPg) {
    volatile uint8_t* b = reinterpret_cast<volatile uint8_t*>(p);
    if (write) {
      *b = 0x5a;
    } else {
      (void)*b;
    }
    o = model().Touch(p, write);
    if (!o.ok()) break;
    ++counters().touches;
  }
  h_.Result(0, o);
  Finish(delta, what);
}

void Script::Advise(uint64_t addr, uint64_t len, int advice, int64_t delta, const char* what) {
  h_.Begin("madvise", {addr, len, static_cast<uint64_t>(advice)});
  h_.Note(what);
  const int64_t r = Sys(SYS_madvise, addr, len, static_cast<uint64_t>(advice));
  h_.Result(r, model().Advise(addr, len, advice));
  Finish(delta, what);
}

void Script::Lock(uint64_t addr, uint64_t len, int64_t delta, const char* what) {
  h_.Begin("mlock", {addr, len});
  h_.Note(what);
  const int64_t r = Sys(SYS_mlock, addr, len);
  h_.Result(r, model().Lock(addr, len));
  Finish(delta, what);
}

void Script::Unlock(uint64_t addr, uint64_t len, const char* what) {
  h_.Begin("munlock", {addr, len});
  h_.Note(what);
  const int64_t r = Sys(SYS_munlock, addr, len);
  h_.Result(r, model().Unlock(addr, len));
  Finish(0, what);
}

void Script::Remap(uint64_t addr, uint64_t old_len, uint64_t new_len, int flags, uint64_t new_addr,
                   int64_t delta, const char* what) {
  h_.Begin("mremap", {addr, old_len, new_len, static_cast<uint64_t>(flags), new_addr});
  h_.Note(what);
  const int64_t r = Sys(SYS_mremap, addr, old_len, new_len, static_cast<uint64_t>(flags), new_addr);
  h_.Result(r, model().Remap(addr, old_len, new_len, flags, new_addr));
  Finish(delta, what);
}

void Script::Brk(uint64_t target, int64_t delta, const char* what) {
  h_.Begin("brk", {target});
  h_.Note(what);
  const int64_t r = Sys(SYS_brk, target);
  h_.Result(r, model().Brk(target));
  Finish(delta, what);
}

// ---------------------------------------------------------------------------
// The scenarios. Deltas are the kernel's VmPTE change in kB: 4 per PTE, PMD
// or PUD table (docs/page-tables.md, probes t9 and pt1).

void Script::Boundaries() {
  // Four pages across a 2 MiB boundary in a fresh 512 GiB region: a PUD, a
  // PMD and two PTE tables.
  Map(kR + 2 * kMiB - 2 * kPg, 4 * kPg, kRw, kAnon, 0, "A: 4 pages across 2 MiB");
  Touch(kR + 2 * kMiB - 2 * kPg, kR + 2 * kMiB + 2 * kPg, true, 16, "touch A");
  Expect(
      model().WalkPage(kR + 2 * kMiB - kPg).pte_table && model().WalkPage(kR + 2 * kMiB).pte_table,
      "A's two PTE tables in the model");
  // Across 1 GiB: a PTE table below, a new PMD and PTE table above.
  Map(kR + kGiB - 2 * kPg, 4 * kPg, kRw, kAnon, 0, "B: 4 pages across 1 GiB");
  Touch(kR + kGiB - 2 * kPg, kR + kGiB + 2 * kPg, true, 12, "touch B");
  // Across 512 GiB: PMD + PTE below; PUD + PMD + PTE above.
  Map(kR + 512 * kGiB - 2 * kPg, 4 * kPg, kRw, kAnon, 0, "C: 4 pages across 512 GiB");
  Touch(kR + 512 * kGiB - 2 * kPg, kR + 512 * kGiB + 2 * kPg, true, 20, "touch C");
  const PageWalk w = model().WalkPage(kR + 512 * kGiB);
  Expect(w.pud_table && w.pmd_table && w.pte_table && w.mapped && w.index.pgd == 33 &&
             w.index.pud == 0 && w.index.pmd == 0 && w.index.pte == 0,
         "the walk at 16.5 TiB");
}

void Script::Neighbours() {
  // D and E share the 2 MiB slot [R+4M, R+6M); E is read-only so they stay
  // two VMAs. Unmapping D leaves the table (E still uses the region): a
  // ghost, visible only in VmPTE.
  Map(kR + 4 * kMiB, kMiB, kRw, kAnon, 0, "D");
  Map(kR + 5 * kMiB, kMiB, a::kProtRead, kAnon, 0, "E (read-only, next to D)");
  Touch(kR + 4 * kMiB, kR + 5 * kMiB, true, 4, "touch D");
  Touch(kR + 5 * kMiB, kR + 6 * kMiB, false, 0, "read E (zero pages)");
  Unmap(kR + 4 * kMiB, kMiB, 0, "unmap D: E shares the table (ghost)");
  const PageWalk g = model().WalkPage(kR + 4 * kMiB);
  Expect(g.pte_table && !g.mapped && !g.in_vma, "the model keeps D's table as a ghost");
  // A has no neighbour in its slots (E starts beyond them): both go.
  Unmap(kR + 2 * kMiB - 2 * kPg, 4 * kPg, -8, "unmap A: its slots hold nothing else");
  // E: its slot goes; the PMD table stays for B (same 1 GiB).
  Unmap(kR + 5 * kMiB, kMiB, -4, "unmap E: the ghost slot goes with it");
  // B: its two PTE tables and both PMD tables (nothing else below 2 GiB);
  // the PUD table stays for C.
  Unmap(kR + kGiB - 2 * kPg, 4 * kPg, -16, "unmap B: two PTE and two PMD tables");
}

void Script::Dontneed() {
  Map(kR + 8 * kMiB, 4 * kMiB, kRw, kAnon, 0, "F: 4 MiB");
  Advise(kR + 8 * kMiB, 4 * kMiB, a::kMadvPopulateWrite, 12, "MADV_POPULATE_WRITE F");
  Advise(kR + 8 * kMiB, kMiB, a::kMadvDontneed, 0, "DONTNEED half of slot 0: table stays");
  const int64_t reclaim = model().profile().pt_reclaim ? -4 : 0;
  Advise(kR + 10 * kMiB, 2 * kMiB, a::kMadvDontneed, reclaim, "DONTNEED all of slot 1: reclaimed");
  Advise(kR + 9 * kMiB, kMiB, a::kMadvDontneed, 0, "DONTNEED the rest of slot 0: an empty table");
  Expect(model().WalkPage(kR + 8 * kMiB).pte_table, "slot 0's empty table in the model");
  Advise(kR + 8 * kMiB, 4 * kMiB, a::kMadvDontneed, reclaim, "DONTNEED all of F: slot 0 reclaimed");
  Touch(kR + 8 * kMiB, kR + 8 * kMiB + kPg, true, 4, "touch F again");
}

void Script::Thp() {
  if (!thp_) {
    Writer w(1);
    w.Str("pagetable-oracle: THP steps skipped: anonymous PMD THP is off (");
    w.Str("/sys/kernel/mm/transparent_hugepage/enabled)\n");
    return;
  }
  const uint64_t g = kR + 16 * kMiB;  // 2 MiB aligned
  Map(g, 4 * kMiB, kRw, kAnon, 0, "G: 4 MiB, 2 MiB aligned");
  Advise(g, 2 * kMiB, a::kMadvHugepage, 0, "MADV_HUGEPAGE on G's first 2 MiB");
  Touch(g + kPg, g + 2 * kPg, true, 8, "write fault in G: a PMD table, a THP and its deposit");
  Expect(model().WalkPage(g).pmd == PmdKind::kHuge, "the model maps G's first 2 MiB huge");
  Touch(g + 2 * kMiB, g + 2 * kMiB + kPg, false, 4, "read fault in G's other half: PTEs");
  Unmap(g + 5 * kPg, kPg, 0, "unmap a page inside the THP: split, the deposit is the table");
  Unmap(g, 4 * kMiB, -12, "unmap G: two PTE tables and the PMD table");
  const uint64_t h = kR + 24 * kMiB;
  Map(h, 2 * kMiB, kRw, kAnon, 0, "H: 2 MiB");
  Advise(h, 2 * kMiB, a::kMadvHugepage, 0, "MADV_HUGEPAGE on H");
  Touch(h, h + kPg, false, 8, "read fault in H: the huge zero page, a deposited table");
  Advise(h, 2 * kMiB, a::kMadvDontneed, -4, "DONTNEED all of H: the deposit goes");
  Unmap(h, 2 * kMiB, -4, "unmap H: the PMD table");
}

void Script::Populate() {
  Map(kR + 32 * kMiB, 3 * kMiB, kRw, kAnon | a::kMapPopulate, 12, "I: MAP_POPULATE 3 MiB");
  Map(kR + 40 * kMiB + kPg, 2 * kPg, kRw, kAnon, 0, "J: 2 pages");
  const uint64_t lck = h_.kernel_status().vm_lck_kb;
  Lock(kR + 40 * kMiB + kPg, 2 * kPg, 4, "mlock J: populated");
  Expect(h_.kernel_status().vm_lck_kb == lck + 8, "VmLck grew by 8 kB");
  Map(kR + 44 * kMiB, 2 * kMiB + 2 * kPg, kRw, kAnon, 0, "K: 2 MiB + 8 KiB");
  Advise(kR + 44 * kMiB, 2 * kMiB + 2 * kPg, a::kMadvPopulateWrite, 8, "MADV_POPULATE_WRITE K");
  Unlock(kR + 40 * kMiB + kPg, 2 * kPg, "munlock J");
  Unmap(kR + 32 * kMiB, 16 * kMiB, -24, "unmap I, J, K");
}

void Script::Mremap() {
  const uint64_t l = kR + 64 * kMiB;
  Map(l, 4 * kMiB, kRw, kAnon, 0, "L: 4 MiB");
  Touch(l + kPg, l + 2 * kPg, true, 8, "touch L slot 0");
  Touch(l + 2 * kMiB + 2 * kPg, l + 2 * kMiB + 3 * kPg, true, 4, "touch L slot 1");
  // Unaligned: each source extent with a table allocates a destination
  // table: a new PMD table and three PTE tables; the source's two go, and
  // its PMD table (nothing else is left in that 1 GiB).
  const uint64_t m1 = kR + 2 * kGiB + 2 * kPg;
  Remap(l, 4 * kMiB, 4 * kMiB, a::kMremapMaymove | a::kMremapFixed, m1, 4,
        "mremap L to +2 GiB + 8 KiB (unaligned)");
  // Same offset in its PMD at both ends, nothing below either in that PMD:
  // try_realign_addr() moves whole PTE tables; the old PMD table goes.
  const uint64_t m2 = kR + 3 * kGiB + 2 * kPg;
  Remap(m1, 4 * kMiB, 4 * kMiB, a::kMremapMaymove | a::kMremapFixed, m2, 0,
        "mremap to +3 GiB + 8 KiB (realigned: whole tables move)");
  Remap(m2, 4 * kMiB, kMiB, 0, 0, -8, "mremap shrink to 1 MiB: two slots go");
  Unmap(m2, kMiB, -8, "unmap L: its table and PMD table");
}

void Script::MapFixed() {
  const uint64_t m = kR + 80 * kMiB;
  Map(m, 4 * kMiB, kRw, kAnon | a::kMapPopulate, 12, "M: MAP_POPULATE 4 MiB");
  // MAP_FIXED over [81M, 83M): both slots keep a surviving piece of M.
  h_.Begin("mmap", {m + kMiB, 2 * kMiB});
  h_.Note("MAP_FIXED over M's middle");
  MapArgs ma;
  ma.addr = m + kMiB;
  ma.len = 2 * kMiB;
  ma.prot = a::kProtRead;
  ma.flags = kAnon | a::kMapFixed;
  int64_t r = Sys(SYS_mmap, ma.addr, ma.len, static_cast<uint64_t>(ma.prot),
                  static_cast<uint64_t>(ma.flags), ~uint64_t{0}, 0);
  h_.Result(r, model().Map(ma));
  Finish(0, "MAP_FIXED over M's middle: no table wholly inside");
  // MAP_FIXED over [82M, 84M): slot 1 lies wholly inside it.
  h_.Begin("mmap", {m + 2 * kMiB, 2 * kMiB});
  ma.addr = m + 2 * kMiB;
  ma.prot = kRw;
  r = Sys(SYS_mmap, ma.addr, ma.len, static_cast<uint64_t>(ma.prot),
          static_cast<uint64_t>(ma.flags), ~uint64_t{0}, 0);
  h_.Result(r, model().Map(ma));
  Finish(-4, "MAP_FIXED over M's top slot: freed");
  Unmap(m, 4 * kMiB, -8, "unmap M");
}

void Script::Heap() {
  // brk: its region is not the harness's (beyond the break at seeding), so
  // the model predicts its tables.
  const uint64_t cur = model().brk();
  const uint64_t base = PageAlign(cur);
  if (model().tree().FindVmaIntersection(base, base + 16 * kMiB) != nullptr) {
    Writer w(1);
    w.Str("pagetable-oracle: brk steps skipped: something lies above the break\n");
    return;
  }
  Brk(base + 6 * kMiB, 0, "brk +6 MiB");
  Touch(base, base + 6 * kMiB, true, kUnchecked, "touch the new heap");
  Brk(base + kMiB, kUnchecked, "brk shrink to +1 MiB: the slots above go");
  Brk(cur, kUnchecked, "brk back");
}

void Script::Fork() {
  // N: slot 0 holds a page, slot 1 an empty table (partial DONTNEED). O:
  // read-only, populated by read: zero pages, no anon_vma, not copied.
  const uint64_t n = kR + 96 * kMiB;
  Map(n, 4 * kMiB, kRw, kAnon, 0, "N");
  Touch(n + kPg, n + 2 * kPg, true, 8, "touch N slot 0");
  Touch(n + 2 * kMiB + kPg, n + 2 * kMiB + 2 * kPg, true, 4, "touch N slot 1");
  Advise(n + 2 * kMiB + kPg, kPg, a::kMadvDontneed, 0, "DONTNEED that page: an empty table");
  Map(kR + 104 * kMiB, 2 * kMiB, a::kProtRead, kAnon | a::kMapPopulate, 4, "O: read-only");
  const uint64_t unlocated = model().page_tables().counts().unlocated;
  h_.Begin("fork", {});
  const pid_t pid = fork();
  if (pid < 0) {
    Expect(false, "fork failed");
    return;
  }
  if (pid == 0) {
    // The grandchild: its tables are the copies fork made plus what it
    // faulted since (learnt in the protected ranges).
    model().ForkChild();
    h_.NoteForkChild();
    h_.AfterForkChild(unlocated);
    ++counters().forks;
    Outcome o;
    h_.Result(0, o);
    h_.End(true);
    h_.CheckMm(true);
    const PageWalk w1 = model().WalkPage(n + 2 * kMiB);
    const PageWalk w2 = model().WalkPage(kR + 104 * kMiB);
    Expect(w1.pte_table && !w1.mapped, "the child has N's empty table (copied)");
    Expect(!w2.pte_table, "the child has no table under O");
    Writer w(1);
    w.Str("  fork child: VmPTE ").Udec(h_.kernel_status().vm_pte_kb).Str(" kB (parent ");
    w.Udec(last_pte_kb_).Str(" kB)\n");
    w.Flush();
    _exit(counters().mismatches == 0 ? 0 : 1);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  Expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the fork child's checks");
  Outcome o;
  h_.Result(0, o);
  Finish(0, "fork (parent)");
  Unmap(n, 4 * kMiB, kUnchecked, "unmap N");
  Unmap(kR + 104 * kMiB, 2 * kMiB, kUnchecked, "unmap O");
}

int Script::Run() {
  Writer w(1);
  h_.InstallWatchdog();
  if (h_.SeedFromSelf(/*fork_child=*/true) != 0) return 1;
  if (model().tree().FindVmaIntersection(kR, kR + 1024 * kGiB) != nullptr) {
    w.Str("pagetable-oracle: SKIP: 16 TiB .. 17 TiB is in use\n");
    return 77;
  }
  const int64_t unlocated = h_.SeedPageTables();
  if (unlocated < 0 && unlocated > -4096) {
    w.Str("pagetable-oracle: cannot seed the page tables: ").Ret(unlocated).Ch('\n');
    return 1;
  }
  thp_ = model().params().thp != ThpMode::kNever;
  const PageTableCounts& c = model().page_tables().counts();
  w.Str("pagetable-oracle: seeded ").Udec(model().map_count()).Str(" VMAs; VmPTE ");
  w.Udec(h_.kernel_status().vm_pte_kb).Str(" kB = ").Udec(c.pte_tables).Str(" PTE (");
  w.Udec(c.deposited).Str(" deposited) + ").Udec(c.pmd_tables).Str(" PMD + ");
  w.Udec(c.pud_tables).Str(" PUD tables explained by mapped pages + ").Dec(unlocated);
  w.Str(" unlocated; THP ").Str(thp_ ? "on" : "off").Ch('\n');
  w.Flush();
  h_.Begin("seed", {});
  Outcome o;
  h_.Result(0, o);
  Finish(kUnchecked, "seeded");
  Boundaries();
  Neighbours();
  Dontneed();
  Unmap(kR + 8 * kMiB, 4 * kMiB, -8, "unmap F: its table and the PMD table");
  Thp();
  Populate();
  Mremap();
  MapFixed();
  Heap();
  Fork();
  Unmap(kR + 512 * kGiB - 2 * kPg, 4 * kPg, -24, "unmap C: the last VMA in both regions");
  alarm(0);
  counters().done = 1;
  return counters().mismatches == 0 ? 0 : 1;
}

alignas(Harness) unsigned char g_harness_storage[sizeof(Harness)];

int Main() {
  Writer out(1);
  struct utsname u;
  int major_v = 0, minor_v = 0;
  if (uname(&u) == 0) {
    const char* p = u.release;
    while (*p >= '0' && *p <= '9') major_v = major_v * 10 + (*p++ - '0');
    if (*p == '.') ++p;
    while (*p >= '0' && *p <= '9') minor_v = minor_v * 10 + (*p++ - '0');
  }
  if (major_v < 6 || (major_v == 6 && minor_v < 7)) {
    out.Str("pagetable-oracle: SKIP: needs PAGEMAP_SCAN (Linux >= 6.7)\n");
    return 77;
  }
  if (access("/proc/self/pagemap", R_OK) != 0 || access("/proc/self/smaps", R_OK) != 0) {
    out.Str("pagetable-oracle: SKIP: /proc/self/pagemap or smaps is not readable\n");
    return 77;
  }
  void* shared = mmap(nullptr, kPg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  void* arena = mmap(nullptr, kArenaSize, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (shared == MAP_FAILED || arena == MAP_FAILED) {
    out.Str("pagetable-oracle: cannot map the arena\n");
    return 2;
  }
  static_cast<volatile char*>(arena)[0] = 1;
  Harness::PrepareProcess(256 * 1024);
  static_cast<volatile unsigned char*>(g_harness_storage)[0] = 0;
  Counters* counters = new (shared) Counters();
  out.Str("pagetable-oracle: Linux ").Str(u.release).Ch('\n');
  out.Flush();
  const pid_t pid = fork();
  if (pid < 0) return 2;
  if (pid == 0) {
    Harness::Options ho;
    ho.out_fd = 1;
    ho.counters = counters;
    ho.max_reports = 20;
    Harness* h = new (g_harness_storage) Harness(arena, kArenaSize, ho);
    Script s(h);
    _exit(s.Run());
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 77) return 77;
  const Counters c = *counters;
  Harness::PrintSummary(out, "pagetable-oracle", ~uint64_t{0}, c);
  const bool pass = WIFEXITED(status) && WEXITSTATUS(status) == 0 && c.done && c.mismatches == 0;
  if (!WIFEXITED(status))
    out.Str("pagetable-oracle: the child died with signal ").Dec(WTERMSIG(status)).Ch('\n');
  out.Str(pass ? "pagetable-oracle: PASS\n" : "pagetable-oracle: FAIL\n");
  return pass ? 0 : 1;
}

}  // namespace
}  // namespace vmashadow::oracle

int main() { return vmashadow::oracle::Main(); }
