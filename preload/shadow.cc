// shadow.cc — the preload's machinery: start-up (configuration, seeding the
// model from /proc/self), the model lock, per-event bookkeeping, the full
// maps comparison with resynchronisation, fork handling and the exit summary.
//
// Nothing here allocates: the model's arena and the text buffers live in one
// private anonymous mapping made with RawSyscall6 before the model is seeded,
// so the model describes its own memory like any other mapping. All file I/O
// and all output are raw syscalls. See shadow.h for the event protocol.
#include "preload/shadow.h"

#include <cpuid.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <valgrind/valgrind.h>

#include <cerrno>
#include <cstring>
#include <new>

#include "core/abi/kernel_profile.h"
#include "core/abi/linux_abi.h"
#include "core/mm/arena.h"
#include "core/procfs/maps_text.h"
#include "core/procfs/system_facts.h"
#include "preload/output.h"
#include "preload/raw_syscall.h"
#include "preload/sud.h"
#include "preload/trace_writer.h"

namespace vmashadow::preload {
namespace {

// ---------------------------------------------------------------------------
// Sizes. One mapping holds [arena | kernel maps | model maps | smaps |
// signal stacks (sud.h)]; it is
// MAP_NORESERVE, so only the pages we touch cost memory.

constexpr size_t kArenaSize = size_t{64} << 20;
constexpr size_t kMapsCap = size_t{8} << 20;
constexpr size_t kSmapsCap = size_t{48} << 20;
constexpr size_t kBuffersSize = kArenaSize + 2 * kMapsCap + kSmapsCap;
constexpr int kMaxRecords = 20;  // detailed divergence/result records printed

enum class CheckMode { kOff, kExit, kEvery, kEveryN };

struct Counters {
  uint64_t events[static_cast<int>(Call::kCount)];
  uint64_t events_total;
  uint64_t trapped;      // of which seen through Syscall User Dispatch
  uint64_t passthrough;  // calls re-entered or made while not ready
  uint64_t checks;       // full compares
  uint64_t range_checks;
  uint64_t divergences;
  uint64_t resyncs;
  uint64_t unexplained;
  uint64_t results;
  uint64_t results_hit;
  uint64_t placement_predicted;
  uint64_t placement_hit;
  uint64_t errno_predicted;
  uint64_t errno_hit;
  uint64_t records;
  uint64_t pagetable_checks;  // VmPTE compared with /proc/self/status
  uint64_t pagetable_hits;
  uint64_t counter_checks;  // VmSize, VmLck, VmData, VmStk, VmExe, VmLib
  uint64_t counter_hits;
  uint64_t vmflags_checks;  // VMAs whose smaps VmFlags were compared
  uint64_t vmflags_hits;
  uint64_t pt_learnt_ranges;  // PAGEMAP_SCAN learning before zapping calls
  uint64_t pt_calibrations;   // page tables reseeded from pagemap
  uint64_t pt_rescans;        // full checks scanned again for a fault in flight (CheckMm)
};

// The first few divergences and unexplained changes, kept for the report.
constexpr int kMaxSamples = 8;
struct Sample {
  uint64_t event;
  Text<200> call;
  Text<48> what;
  Text<400> model;
  Text<400> kernel;
  // For a result miss: the VMAs around the call's address, the model's and
  // the kernel's (maps lines), so the sample says enough to reproduce it.
  Text<1400> context;
};

// ---------------------------------------------------------------------------
// Global state: plain data only (no constructors run at load).

bool g_ready = false;
bool g_dirty = false;
bool g_strict = false;
bool g_quiet = false;
bool g_log_events = false;  // VMASHADOW_LOG_EVENTS=1: one stderr line per event
bool g_follow_children = true;
bool g_use_sud = true;
bool g_sud_armed = false;
bool g_report_written = false;
// Why this process is no longer monitored (nullptr while it is): the
// report's "monitoring" says so.
const char* g_stepped_aside = nullptr;
CheckMode g_check = CheckMode::kExit;
uint64_t g_check_every = 0;
int g_lock = 0;
int g_maps_fd = -1;     // /proc/self/maps, for PROCMAP_QUERY
int g_pagemap_fd = -1;  // /proc/self/pagemap, for PAGEMAP_SCAN
// Page tables and mm counters are followed (and checked at full checks)
// unless the check mode is off or VMASHADOW_PAGETABLES=0.
bool g_pt_enabled = false;
// A learning scan stopped short since the last calibration: a VmPTE
// difference may come from that and is counted as unexplained.
bool g_pt_unsure = false;
bool g_scan_guard = true;             // PAGE_IS_GUARD is known (6.15+)
StatusCounters g_last_kernel_status;  // at the last full check, for the report
StatusCounters g_last_model_status;
int g_lockall_future = 0;
int g_owner_pid = 0;
int g_parent_pid = 0;
Counters g_count;
Sample g_div_samples[kMaxSamples];
Sample g_unexplained_samples[kMaxSamples];
uint32_t g_notes_done = 0;

char g_report_dir[2048];
char g_run_id[40];  // VMASHADOW_RUN_ID: the launcher's name for this run
int g_report_fd = -1;
uint64_t g_report_dev = 0;
uint64_t g_report_ino = 0;
uint64_t g_report_size = 0;  // the bytes the report file holds (text and blanks)
char g_report_path[2200];
char g_cmdline[4096];
size_t g_cmdline_len = 0;
char g_kernel_release[65];
char g_query_name[4096 + 16];
char g_line_model[4096 + 256];
char g_line_kernel[4096 + 256];

char* g_region = nullptr;
char* g_kmaps = nullptr;
char* g_mmaps = nullptr;
char* g_smaps = nullptr;

alignas(Arena) unsigned char g_arena_storage[sizeof(Arena)];
alignas(AddressSpace) unsigned char g_model_storage[sizeof(AddressSpace)];
AddressSpace* g_model = nullptr;
MmParams g_params;

__thread bool t_in_hook __attribute__((tls_model("initial-exec"))) = false;
__thread uint64_t t_fork_mask __attribute__((tls_model("initial-exec"))) = 0;
__thread bool t_fork_locked __attribute__((tls_model("initial-exec"))) = false;
__thread bool t_trapped __attribute__((tls_model("initial-exec"))) = false;

// ---------------------------------------------------------------------------
// Signals and the lock.

// The model lock holds its holder's thread id (0: free), so that a waiter
// can name it and notice when it is gone: a thread that dies holding the
// lock (killed by a signal in our code, say) would otherwise stop every
// other thread for good. Such a lock is taken over, the model marked for a
// resync, and the takeover said once.
__thread int t_tid __attribute__((tls_model("initial-exec"))) = 0;

int MyTid() {
  if (t_tid == 0) t_tid = static_cast<int>(RawSyscall6(kSysGettid));
  return t_tid;
}

// Where the lock was last taken (a return address), for a debugger.
__attribute__((used)) volatile uint64_t g_lock_site = 0;

__attribute__((noinline)) void LockAcquire() {
  const int me = MyTid();
  const uint64_t site = U(__builtin_return_address(0));
  uint64_t yields = 0;
  for (;;) {
    int expected = 0;
    if (__atomic_compare_exchange_n(&g_lock, &expected, me, false, __ATOMIC_ACQUIRE,
                                    __ATOMIC_RELAXED)) {
      g_lock_site = site;
      return;
    }
    for (int spins = 0; spins < 128 && __atomic_load_n(&g_lock, __ATOMIC_RELAXED) != 0; ++spins) {
      __builtin_ia32_pause();
    }
    if (__atomic_load_n(&g_lock, __ATOMIC_RELAXED) == 0) continue;
    RawSyscall6(kSysSchedYield);
    if ((++yields & 4095) != 0) continue;
    // Every few thousand yields: is the holder still alive?
    int holder = __atomic_load_n(&g_lock, __ATOMIC_RELAXED);
    if (holder != 0 && RawSyscall6(kSysTgkill, RawSyscall6(kSysGetpid), U(holder), 0) == -ESRCH &&
        __atomic_compare_exchange_n(&g_lock, &holder, me, false, __ATOMIC_ACQUIRE,
                                    __ATOMIC_RELAXED)) {
      g_dirty = true;
      Writer w;
      w.Str("vmashadow: the model lock's holder (thread ").Dec(holder);
      w.Str(") is gone; taken over and resynchronised\n");
      return;
    }
  }
}

void LockRelease() { __atomic_store_n(&g_lock, 0, __ATOMIC_RELEASE); }

// Every signal blocked and the model lock held, for the scope's lifetime
// (outside an event: the image's end, a step aside, a limits change).
class LockedScope {
 public:
  LockedScope() : mask_(BlockAllSignals()) { LockAcquire(); }
  ~LockedScope() {
    LockRelease();
    RestoreSignals(mask_);
  }
  LockedScope(const LockedScope&) = delete;
  LockedScope& operator=(const LockedScope&) = delete;

 private:
  uint64_t mask_;
};

// ---------------------------------------------------------------------------
// Reading /proc.

// Reads a whole file into buf (NUL-terminated). Returns its length, -E2BIG
// when it does not fit, or -errno.
int64_t ReadWhole(const char* path, char* buf, size_t cap) {
  const int fd = RawOpen(path, kORdonly);
  if (fd < 0) return fd;
  size_t n = 0;
  int64_t r = 0;
  while (n + 1 < cap) {
    r = RawRead(fd, buf + n, cap - 1 - n);
    if (r == -EINTR) continue;
    if (r <= 0) break;
    n += static_cast<size_t>(r);
  }
  RawClose(fd);
  if (r < 0) return r;
  if (n + 1 >= cap) return -E2BIG;
  buf[n] = '\0';
  return static_cast<int64_t>(n);
}

bool ParseDec(const char*& p, const char* end, uint64_t* out) {
  uint64_t v = 0;
  const char* s = p;
  while (p < end && *p >= '0' && *p <= '9') v = v * 10 + static_cast<uint64_t>(*p++ - '0');
  *out = v;
  return p != s;
}

bool ParseHex(const char*& p, const char* end, uint64_t* out) {
  uint64_t v = 0;
  const char* s = p;
  for (; p < end; ++p) {
    const char c = *p;
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else {
      break;
    }
    v = v * 16 + static_cast<uint64_t>(d);
  }
  *out = v;
  return p != s;
}

// The first number in a sysctl file, or -1.
int64_t ReadSysctl(const char* path) {
  char buf[64];
  const int64_t n = ReadWhole(path, buf, sizeof(buf));
  if (n <= 0) return -1;
  const char* p = buf;
  uint64_t v = 0;
  if (!ParseDec(p, buf + n, &v)) return -1;
  return static_cast<int64_t>(v);
}

// /proc/self/stat fields (1-based, as in proc(5)): 28 start_stack,
// 45 start_data, 46 end_data, 47 start_brk. Uses the smaps buffer as scratch.
bool ReadStat(ProcStat* out) {
  const int64_t n = ReadWhole("/proc/self/stat", g_smaps, kSmapsCap);
  return n > 0 && ParseProcStat(g_smaps, static_cast<size_t>(n), out);
}

uint64_t RlimitCur(int resource) {
  uint64_t lim[2] = {~uint64_t{0}, ~uint64_t{0}};
  if (RawSyscall6(kSysPrlimit64, 0, U(resource), 0, U(lim)) != 0) return kUnlimited;
  return lim[0];  // RLIM_INFINITY is ~0, like kUnlimited
}

// Start of the kernel maps line containing addr (0 when none).
uint64_t KernelVmaStart(const char* maps, size_t len, uint64_t addr) {
  const char* p = maps;
  const char* end = maps + len;
  while (p < end) {
    const char* eol = static_cast<const char*>(memchr(p, '\n', static_cast<size_t>(end - p)));
    if (eol == nullptr) eol = end;
    const char* q = p;
    uint64_t s = 0;
    uint64_t e = 0;
    if (ParseHex(q, eol, &s) && q < eol && *q == '-' && (++q, ParseHex(q, eol, &e)) && s <= addr &&
        addr < e) {
      return s;
    }
    p = eol + 1;
  }
  return 0;
}

// prctl(PR_GET_MDWE): memory-deny-write-execute, inherited across fork and
// exec unless PR_MDWE_NO_INHERIT.
void ReadMdwe(MmParams* p) {
  const int64_t md = RawSyscall6(kSysPrctl, 66 /* PR_GET_MDWE */, 0, 0, 0, 0);
  p->mdwe = md > 0 && (md & 1) != 0;             // PR_MDWE_REFUSE_EXEC_GAIN
  p->mdwe_no_inherit = md > 0 && (md & 2) != 0;  // PR_MDWE_NO_INHERIT
}

// MmParams from the running system (core's MmParamsFromFacts decides; this
// only reads). /proc/self/status and stat share the smaps buffer, apart.
int ReadParams(const char* maps, size_t maps_len, MmParams* out) {
  SystemFacts f;
  f.mmap_min_addr = ReadSysctl("/proc/sys/vm/mmap_min_addr");
  f.max_map_count = ReadSysctl("/proc/sys/vm/max_map_count");
  f.overcommit_memory = ReadSysctl("/proc/sys/vm/overcommit_memory");
  f.legacy_va_layout = ReadSysctl("/proc/sys/vm/legacy_va_layout");
  f.personality = RawSyscall6(kSysPersonality, 0xffffffff);
  unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
  f.ospke = __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 4)) != 0;
  f.rlimit_memlock = RlimitCur(8);  // RLIMIT_MEMLOCK
  f.rlimit_data = RlimitCur(2);     // RLIMIT_DATA
  f.rlimit_as = RlimitCur(9);       // RLIMIT_AS
  f.rlimit_stack = RlimitCur(3);    // RLIMIT_STACK
  const size_t half = kSmapsCap / 2;
  const int64_t sn = ReadWhole("/proc/self/status", g_smaps, half);
  if (sn > 0) {
    f.status = g_smaps;
    f.status_len = static_cast<size_t>(sn);
  }
  const int64_t tn = ReadWhole("/proc/self/stat", g_smaps + half, half);
  if (tn <= 0) return -EIO;
  f.stat = g_smaps + half;
  f.stat_len = static_cast<size_t>(tn);
  f.maps = maps;
  f.maps_len = maps_len;
  // Page tables: the THP settings, LA57 (the kernel clears the cpuinfo flag
  // when it does not use 5-level paging), NX, the THP prctl. Read into the
  // model's maps buffer, unused until the model is seeded.
  char* scratch = g_mmaps;
  const size_t part = kMapsCap / 4;
  if (ReadWhole("/sys/kernel/mm/transparent_hugepage/enabled", scratch, part) > 0) {
    f.thp_enabled = scratch;
  }
  if (ReadWhole("/sys/kernel/mm/transparent_hugepage/hugepages-2048kB/enabled", scratch + part,
                part) > 0) {
    f.thp_pmd_enabled = scratch + part;
  }
  f.thp_use_zero_page = ReadSysctl("/sys/kernel/mm/transparent_hugepage/use_zero_page");
  if (ReadWhole("/proc/cpuinfo", scratch + 2 * part, 2 * part) > 0) {
    f.la57 = strstr(scratch + 2 * part, " la57 ") != nullptr ||
             strstr(scratch + 2 * part, " la57\n") != nullptr;
  }
  f.nx = __get_cpuid(0x80000001, &eax, &ebx, &ecx, &edx) && (edx & (1u << 20)) != 0;
  f.thp_disabled = RawSyscall6(kSysPrctl, 42 /* PR_GET_THP_DISABLE */, 0, 0, 0, 0) == 1;
  const int r = MmParamsFromFacts(f, out, nullptr);
  ReadMdwe(out);
  return r;
}

// Gives every VMA that smaps shows with anonymous pages a fresh anon_vma
// (a private VMA holding anonymous pages must have one).
void ApplyAnonFromSmaps(const char* smaps, size_t len) {
  const char* p = smaps;
  const char* end = smaps + len;
  uint64_t cur = 0;
  bool have = false;
  while (p < end) {
    const char* eol = static_cast<const char*>(memchr(p, '\n', static_cast<size_t>(end - p)));
    if (eol == nullptr) eol = end;
    const char c = *p;
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) {
      const char* q = p;
      have = ParseHex(q, eol, &cur) && q < eol && *q == '-';
    } else if (have && eol - p > 10 && memcmp(p, "Anonymous:", 10) == 0) {
      const char* q = p + 10;
      while (q < eol && *q == ' ') ++q;
      uint64_t kb = 0;
      ParseDec(q, eol, &kb);
      if (kb > 0) TraceLearnFaulted(cur);
      if (kb > 0) (void)g_model->LearnFaulted(cur);
    }
    p = eol + 1;
  }
}

bool NextLine(const char* text, size_t len, size_t* pos, const char** line, size_t* line_len);

// ---------------------------------------------------------------------------
// Page tables and mm counters (docs/page-tables.md). The model allocates and frees
// tables by the kernel's rules; which pages are present it learns from
// PAGEMAP_SCAN: everywhere at seeding and at each full check, and over the
// range of a call that zaps or frees tables (munmap, MAP_FIXED, mremap, brk
// shrinking, MADV_DONTNEED and kin) just before it, since a table a
// surviving neighbour keeps (a "ghost") can only be known while its pages
// are there. Cost bound: a learning scan is at most kLearnCalls ioctls of
// kMaxRegions runs each (a range with more runs leaves the model unsure, and
// a VmPTE difference then counts as unexplained); a full scan at most
// kFullCalls.

constexpr int kMaxRegions = 256;
constexpr int kLearnCalls = 2;
constexpr int kFullCalls = 4096;
abi::PageRegion g_regions[kMaxRegions];

// Calls f(region) for the runs of present, swapped or guard pages in
// [lo, hi), at most max_calls ioctls. False when the scan failed or stopped
// short of hi.
template <typename F>
bool ScanPages(uint64_t lo, uint64_t hi, int max_calls, F&& f) {
  if (g_pagemap_fd < 0) return false;
  for (int call = 0; call < max_calls && lo < hi; ++call) {
    abi::PmScanArg a;
    memset(&a, 0, sizeof(a));
    a.size = sizeof(a);
    a.start = lo;
    a.end = hi;
    a.vec = U(g_regions);
    a.vec_len = kMaxRegions;
    const uint64_t guard = g_scan_guard ? abi::kPageIsGuard : 0;
    a.category_anyof_mask = abi::kPageIsPresent | abi::kPageIsSwapped | guard;
    a.return_mask = abi::kPageIsPresent | abi::kPageIsSwapped | abi::kPageIsHuge | guard;
    const int64_t n = RawSyscall6(kSysIoctl, U(g_pagemap_fd), abi::kPagemapScanIoctl, U(&a));
    if (n == -EINVAL && g_scan_guard) {
      g_scan_guard = false;  // before 6.15: no PAGE_IS_GUARD
      --call;
      continue;
    }
    if (n < 0) return false;
    for (int64_t i = 0; i < n; ++i) f(g_regions[i]);
    if (a.walk_end <= lo) return false;
    lo = a.walk_end;
  }
  return lo >= hi;
}

void LearnRegion(const abi::PageRegion& r) {
  if ((r.categories & abi::kPageIsGuard) != 0) {
    (void)g_model->LearnGuards(r.start, r.end);
  } else {
    (void)g_model->LearnPresent(r.start, r.end, (r.categories & abi::kPageIsHuge) != 0);
  }
}

int ReadStatusCounters(StatusCounters* out) {
  char buf[4096];
  const int64_t n = ReadWhole("/proc/self/status", buf, sizeof(buf));
  if (n <= 0) return n < 0 ? static_cast<int>(n) : -EIO;
  return ParseStatusCounters(buf, static_cast<size_t>(n), out) ? 0 : -EPROTO;
}

// The model's page tables from pagemap everywhere, calibrated against VmPTE
// (tables no present page explains become "unlocated"), and the locked_vm
// drift from VmLck (core's AddressSpace documents both).
// Learns the pages present everywhere (after clearing the model's tables
// when `clear`), between two reads of /proc/self/status that agree (again,
// up to 4 times, when a fault moved them meanwhile); *after is the second.
// Returns 0, 1 when the scan stopped short, or -errno when status is
// unreadable.
int LearnAllPages(bool clear, StatusCounters* after) {
  bool scanned = false;
  for (int attempt = 0; attempt < 4; ++attempt) {
    StatusCounters before;
    if (const int r = ReadStatusCounters(&before); r != 0) return r;
    if (clear) g_model->ClearPageTables();
    scanned = ScanPages(0, g_params.task_size, kFullCalls, LearnRegion);
    if (const int r = ReadStatusCounters(after); r != 0) return r;
    if (SameStatusCounters(before, *after)) break;
  }
  return scanned ? 0 : 1;
}

void SeedPageTables() {
  if (!g_pt_enabled) return;
  ++g_count.pt_calibrations;
  StatusCounters after;
  if (LearnAllPages(/*clear=*/true, &after) != 0) return;
  const uint64_t locked = g_model->mm_counters().locked_vm - g_model->locked_vm_drift();
  const uint64_t klocked = after.vm_lck_kb / 4;
  g_model->set_locked_vm_drift(klocked > locked ? klocked - locked : 0);
  (void)g_model->CalibratePageTables(after.vm_pte_kb);
  g_pt_unsure = false;
}

// Replaces the model with the kernel's current state. 0 or -errno.
int Seed() {
  // maps and smaps are two reads: a VMA may change between them (a stack
  // that grows, another thread's fault-free change): read both again then.
  int64_t mn = 0;
  int64_t sn = 0;
  int r = 0;
  size_t bad_line = 0;
  for (int attempt = 0; attempt < 4; ++attempt) {
    mn = ReadWhole("/proc/self/maps", g_kmaps, kMapsCap);
    sn = ReadWhole("/proc/self/smaps", g_smaps, kSmapsCap);
    if (mn <= 0) return mn < 0 ? static_cast<int>(mn) : -EIO;
    if (sn <= 0) return sn < 0 ? static_cast<int>(sn) : -EIO;
    g_model->Clear();
    r = SeedFromMaps(g_model, g_kmaps, static_cast<size_t>(mn), g_smaps, static_cast<size_t>(sn),
                     &bad_line);
    if (r != -EINVAL) break;
  }
  if (r != 0) {
    Writer w;
    w.Str("vmashadow: cannot seed the model from /proc/self/maps (").Dec(r).Str(", line ");
    w.Udec(bad_line).Str(": ");
    size_t pos = 0;
    const char* line = "";
    size_t len = 0;
    for (size_t i = 0;
         i < bad_line && NextLine(g_kmaps, static_cast<size_t>(mn), &pos, &line, &len); ++i) {
    }
    w.Line(line, len).Str(")\n");
    return r;
  }
  TraceSeed(g_kmaps, static_cast<size_t>(mn), g_smaps, static_cast<size_t>(sn));
  ApplyAnonFromSmaps(g_smaps, static_cast<size_t>(sn));
  ProcStat st;
  if (!ReadStat(&st)) return -EIO;
  const uint64_t brk = static_cast<uint64_t>(RawSyscall6(kSysBrk, 0));
  g_model->SetBrkState(st.start_brk, brk);
  g_model->SetStartStack(st.start_stack);
  g_model->SetCodeRange(st.start_code, st.end_code);
  if (g_lockall_future != 0) {
    (void)g_model->LockAll(g_lockall_future & (abi::kMclFuture | abi::kMclOnfault));
  }
  TraceSeedState(st.start_brk, brk, st.start_stack, g_lockall_future);
  SeedPageTables();
  g_dirty = false;
  return 0;
}

void Resync() {
  ++g_count.resyncs;
  if (Seed() != 0) {
    // Without a model we cannot go on checking.
    g_ready = false;
  }
}

// One line of text at *pos (without '\n'); advances past it.
bool NextLine(const char* text, size_t len, size_t* pos, const char** line, size_t* line_len) {
  if (*pos >= len) return false;
  const char* s = text + *pos;
  const void* nl = memchr(s, '\n', len - *pos);
  const size_t n =
      nl != nullptr ? static_cast<size_t>(static_cast<const char*>(nl) - s) : len - *pos;
  *line = s;
  *line_len = n;
  *pos += n + 1;
  return true;
}

// "mmap(0x0, 0x1000, …)": the event as text, for records and samples.
template <typename Out>
void PutEvent(Out& out, Call call, const uint64_t* args) {
  out.Add(TraceCallName(call)).Add("(");
  int nargs = 6;
  while (nargs > 1 && args[nargs - 1] == 0) --nargs;
  for (int i = 0; i < nargs; ++i) {
    if (i > 0) out.Add(", ");
    out.Hex(args[i]);
  }
  out.Add(")");
}

size_t LineLen(const char* s, size_t n) {
  const void* nl = memchr(s, '\n', n);
  return nl != nullptr ? static_cast<size_t>(static_cast<const char*>(nl) - s) : n;
}

void StrictAbort();
void LearnAnonRange(uint64_t lo, uint64_t hi);
bool QueryKernel(uint64_t addr, abi::ProcmapQuery* q, bool* found, bool with_name = true);
void RecordResultMiss(Call call, const uint64_t* args, int64_t kernel_ret, const Outcome& o,
                      bool placement_ok);

// The model's hidden state (VmFlags, anon_vma, fork child) of the VMA a maps
// line starts at and of its neighbours: what decides merges.
void DescribeModelAt(Writer& w, const char* line, size_t len) {
  const char* p = line;
  uint64_t start = 0;
  if (!ParseHex(p, line + len, &start)) return;
  const Vma* v = g_model->FindVma(start);
  if (v == nullptr) return;
  const Vma* around[3] = {v->prev, v, v->next};
  for (const Vma* x : around) {
    if (x == nullptr) continue;
    char flags[128];
    const size_t n = RenderVmFlags(x->flags, flags, sizeof(flags));
    w.Str("vmashadow:   model vma ").Hex(x->start).Ch('-').Hex(x->end).Str(" VmFlags: ");
    w.Mem(flags, n < sizeof(flags) ? n : sizeof(flags)).Str(" anon_vma=").Udec(x->anon.anon_vma);
    w.Str(x->anon.fork_child ? " fork_child" : "").Ch('\n');
  }
}

// Counts a divergence, keeps a sample, prints a record (the first few), and
// marks the model for resynchronisation. call == nullptr: at exit.
void RecordDivergence(const Call* call, const uint64_t* args, const char* what, const char* model,
                      size_t model_len, const char* kernel, size_t kernel_len,
                      const char* context = nullptr) {
  ++g_count.divergences;
  TraceDivergence(what, model, model_len, kernel, kernel_len);
  Text<200> ev;
  if (call != nullptr) {
    PutEvent(ev, *call, args);
  } else {
    ev.Add("exit");
  }
  if (g_count.divergences <= kMaxSamples) {
    Sample& s = g_div_samples[g_count.divergences - 1];
    s.event = g_count.events_total;
    s.call.Clear();
    s.call.Add(ev.c_str());
    s.what.Clear();
    s.what.Add(what);
    s.model.Clear();
    s.model.Add(model, LineLen(model, model_len));
    s.kernel.Clear();
    s.kernel.Add(kernel, LineLen(kernel, kernel_len));
    s.context.Clear();
    if (context != nullptr) s.context.Add(context);
  }
  if (g_count.records++ < kMaxRecords) {
    Writer w;
    w.Str("vmashadow: divergence #").Udec(g_count.divergences).Str(" after event ");
    w.Udec(g_count.events_total).Ch(' ').Str(ev.c_str()).Str(", ").Str(what);
    w.Str(" (profile ").Str(g_model->profile().name).Str(")\nvmashadow:   model:  ");
    w.Line(model, model_len).Str("\nvmashadow:   kernel: ").Line(kernel, kernel_len).Ch('\n');
    if (context != nullptr) {
      // One "vmashadow:" line per context line.
      for (const char* c = context; *c != '\0';) {
        const size_t n = LineLen(c, strlen(c));
        w.Str("vmashadow:   ").Mem(c, n).Ch('\n');
        c += n;
        if (*c == '\n') ++c;
      }
    } else {
      DescribeModelAt(w, model, model_len);
    }
  }
  g_dirty = true;
  if (g_strict) StrictAbort();
}

void RecordUnexplained(const char* what, uint64_t lo, uint64_t hi) {
  ++g_count.unexplained;
  TraceUnexplained(what, lo, hi);
  if (g_count.unexplained <= kMaxSamples) {
    Sample& s = g_unexplained_samples[g_count.unexplained - 1];
    s.event = g_count.events_total;
    s.what.Clear();
    s.what.Add(what);
    s.model.Clear();
    s.model.Hex(lo).Add("-").Hex(hi);
  }
}

// The main stack grows without a syscall: take its new start from the
// kernel and count the change as unexplained.
void ReconcileStack(uint64_t kernel_start) {
  const uint64_t ss = g_model->start_stack();
  const Vma* v = ss != 0 ? g_model->FindVma(ss) : nullptr;
  if (v == nullptr || kernel_start == 0 || v->start <= kernel_start) return;
  const uint64_t old = v->start;
  TraceReconcile(ss, kernel_start);
  if (g_model->ReconcileGrowsdown(ss, kernel_start) == 0) {
    RecordUnexplained("stack growth", kernel_start, old);
  }
}

// "VmSize 1234 VmLck 0 ... VmPTE 56" (kB), for records.
template <typename Out>
void PutStatus(Out& out, const StatusCounters& c) {
  out.Add("VmSize ").Udec(c.vm_size_kb).Add(" VmLck ").Udec(c.vm_lck_kb);
  out.Add(" VmData ").Udec(c.vm_data_kb).Add(" VmStk ").Udec(c.vm_stk_kb);
  out.Add(" VmExe ").Udec(c.vm_exe_kb).Add(" VmLib ").Udec(c.vm_lib_kb);
  out.Add(" VmPTE ").Udec(c.vm_pte_kb);
}

// Set once a second thread runs: from then on, page faults (which give
// VMAs their anon_vma without a syscall) may race with our calls.
bool g_threaded = false;

// Each VMA's smaps VmFlags against the model's flags. Returns false after
// recording the first difference (the model is then reseeded).
bool CheckVmFlags(const Call* call, const uint64_t* args) {
  const int64_t sn = ReadWhole("/proc/self/smaps", g_smaps, kSmapsCap);
  if (sn <= 0) return true;
  size_t cursor = 0;
  for (const Vma* v = g_model->tree().First(); v != nullptr; v = v->next) {
    uint64_t kflags = 0;
    const int r = SmapsVmFlagsAt(g_smaps, static_cast<size_t>(sn), v->start, &kflags, &cursor);
    ++g_count.vmflags_checks;
    if (r == 0 && kflags == v->flags) {
      ++g_count.vmflags_hits;
      continue;
    }
    if (r == 0 && (kflags ^ v->flags) == kVmAccount && v->is_anonymous() && v->anon.anon_vma == 0) {
      // mprotect keeps VM_ACCOUNT when the VMA has an anon_vma, which one
      // whose pages were all zapped still has: pagemap cannot show it.
      RecordUnexplained("VM_ACCOUNT (an anon_vma without pages)", v->start, v->end);
      return false;
    }
    Text<400> model;
    Text<400> kernel;
    char buf[256];
    size_t n = RenderVmFlags(v->flags, buf, sizeof(buf));
    model.Hex(v->start).Add(" VmFlags: ").Add(buf, n < sizeof(buf) ? n : sizeof(buf) - 1);
    kernel.Hex(v->start).Add(" VmFlags: ");
    if (r == 0) {
      n = RenderVmFlags(kflags, buf, sizeof(buf));
      kernel.Add(buf, n < sizeof(buf) ? n : sizeof(buf) - 1);
    } else {
      kernel.Add(r == -ENOENT ? "(no smaps block)" : "(an unknown mnemonic)");
    }
    RecordDivergence(call, args, "VmFlags", model.c_str(), model.size(), kernel.c_str(),
                     kernel.size());
    return false;
  }
  return true;
}

// At a full check whose maps matched: learn which pages are present
// everywhere, then the counters and VmPTE against /proc/self/status, then
// VmFlags against smaps. A VmPTE difference reseeds the page tables; a
// counter or VmFlags difference the whole model.
void CheckMm(const Call* call, const uint64_t* args) {
  if (!g_pt_enabled) return;
  StatusCounters after;
  int learnt = LearnAllPages(/*clear=*/false, &after);
  if (learnt < 0) return;
  StatusCounters m = g_model->PredictStatus();
  // Another thread's fault allocates its page table (VmPTE counts it) and
  // only then, after allocating and zeroing the page, sets the PTE: a scan
  // in between misses the page while both status reads already count the
  // table, so the model is one table short of a state the kernel is still
  // building. The faulting thread may be preempted in that window (for a
  // time slice or more on a loaded machine). Learning only adds, so scanning
  // again after waiting for it (1, 2, 4 … 32 ms: at most 63 ms in all, only
  // when VmPTE is above the prediction) settles it; a table the model truly
  // lacks stays a difference.
  for (int again = 0; again < 6 && g_threaded && m.vm_pte_kb < after.vm_pte_kb; ++again) {
    const int64_t ts[2] = {0, int64_t{1000000} << again};
    RawSyscall6(kSysNanosleep, U(ts), 0);
    ++g_count.pt_rescans;
    learnt = LearnAllPages(/*clear=*/false, &after);
    if (learnt < 0) return;
    m = g_model->PredictStatus();
  }
  const bool scanned = learnt == 0;
  g_last_kernel_status = after;
  g_last_model_status = m;
  ++g_count.counter_checks;
  ++g_count.pagetable_checks;
  StatusCounters m_counters = m;
  m_counters.vm_pte_kb = after.vm_pte_kb;
  const bool counters_ok = SameStatusCounters(m_counters, after);
  const bool pte_ok = m.vm_pte_kb == after.vm_pte_kb;
  if (counters_ok) ++g_count.counter_hits;
  if (pte_ok) ++g_count.pagetable_hits;
  if (!counters_ok || !pte_ok) {
    Text<400> model;
    Text<400> kernel;
    PutStatus(model, m);
    PutStatus(kernel, after);
    // Tables the model could not place at its last calibration
    // ("unlocated") are freed by the kernel when their region empties,
    // which the model cannot see: VmPTE may then be below its prediction.
    const uint64_t unlocated_kb = g_model->page_tables().counts().unlocated * 4;
    const bool ghosts_freed =
        m.vm_pte_kb > after.vm_pte_kb && m.vm_pte_kb - after.vm_pte_kb <= unlocated_kb;
    if (counters_ok && (g_pt_unsure || !scanned || ghosts_freed)) {
      Text<48> what;
      what.Add(ghosts_freed ? "VmPTE unlocated freed: " : "VmPTE learnt partially: ");
      what.Udec(m.vm_pte_kb).Add(" vs ").Udec(after.vm_pte_kb).Add(" kB");
      RecordUnexplained(what.c_str(), 0, 0);
    } else {
      RecordDivergence(
          call, args, counters_ok ? "VmPTE (/proc/self/status)" : "mm counters (/proc/self/status)",
          model.c_str(), model.size(), kernel.c_str(), kernel.size());
    }
    if (counters_ok) {
      g_dirty = false;  // only the page tables: recalibrate them
      SeedPageTables();
    } else {
      Resync();
      return;
    }
  }
  if (!CheckVmFlags(call, args)) Resync();
}

bool LateAnonBoundaryLines(const char* model, size_t model_len, const char* kernel,
                           size_t kernel_len);

// Compares the model's rendering with /proc/self/maps. On a difference:
// counts a divergence, prints one record, resynchronises. `call` is nullptr
// for the exit check.
void FullCompare(const Call* call, const uint64_t* args) {
  const int64_t kn = ReadWhole("/proc/self/maps", g_kmaps, kMapsCap);
  if (kn <= 0) return;
  ++g_count.checks;
  const size_t klen = static_cast<size_t>(kn);
  const uint64_t ss = g_model->start_stack();
  if (ss != 0) ReconcileStack(KernelVmaStart(g_kmaps, klen, ss));
  const size_t mlen = RenderMaps(*g_model, g_mmaps, kMapsCap);
  TraceFullCheck(g_kmaps, klen, g_mmaps, mlen < kMapsCap ? mlen : kMapsCap - 1);
  if (mlen == klen && memcmp(g_mmaps, g_kmaps, klen) == 0) {
    CheckMm(call, args);
    return;
  }
  size_t mp = 0;
  size_t kp = 0;
  const char* ml = "(end)";
  const char* kl = "(end)";
  size_t mll = 5;
  size_t kll = 5;
  bool mh = false;
  bool kh = false;
  uint64_t line = 0;
  do {
    ++line;
    mh = NextLine(g_mmaps, mlen < kMapsCap ? mlen : kMapsCap - 1, &mp, &ml, &mll);
    kh = NextLine(g_kmaps, klen, &kp, &kl, &kll);
  } while (mh && kh && mll == kll && memcmp(ml, kl, mll) == 0);
  if (!mh) ml = "(end)", mll = 5;
  if (!kh) kl = "(end)", kll = 5;
  if (mh && kh && LateAnonBoundaryLines(ml, mll, kl, kll)) {
    MapsLine k;
    (void)ParseMapsLine(kl, kll, &k);
    RecordUnexplained("merge boundary (anon_vma learnt late)", k.start, k.end);
    Resync();
    return;
  }
  Text<48> what;
  what.Add("maps line ").Udec(line);
  RecordDivergence(call, args, what.c_str(), ml, mll, kl, kll);
  Resync();
}

// One PROCMAP_QUERY: the kernel's VMA covering addr or the next one, its name
// in g_query_name unless !with_name. Returns false when the ioctl is
// unavailable; *found tells whether there is such a VMA.
bool QueryKernel(uint64_t addr, abi::ProcmapQuery* q, bool* found, bool with_name) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    memset(q, 0, sizeof(*q));
    q->size = sizeof(*q);
    q->query_flags = abi::kProcmapQueryCoveringOrNext;
    q->query_addr = addr;
    q->vma_name_addr = with_name ? U(g_query_name) : 0;
    q->vma_name_size = with_name ? sizeof(g_query_name) : 0;
    const int64_t r = RawSyscall6(kSysIoctl, U(g_maps_fd), abi::kProcmapQueryIoctl, U(q));
    if (r == 0 || r == -ENOENT) {
      *found = r == 0;
      return true;
    }
    if (r != -EBADF && r != -ENOTTY) break;
    // The application may have closed our fd (and may own that number now:
    // never close it): open a fresh one once.
    g_maps_fd = RawOpen("/proc/self/maps", kORdonly);
  }
  return false;
}

// The maps line of a query answer, in g_line_kernel (for records).
size_t KernelLine(const abi::ProcmapQuery& q) {
  return RenderQueryLine(q, g_query_name, q.vma_name_size, g_line_kernel, sizeof(g_line_kernel));
}

// A difference only in where a private anonymous VMA with anonymous pages
// starts or ends. Pages are written without syscalls, so the model learns
// that a VMA has an anon_vma late (PAGEMAP_SCAN before the calls that
// depend on it) and cannot see which anon_vma: the kernel may have reused a
// neighbour's (anon_vma_prepare) where the model gave a fresh one, or, in a
// threaded process, a concurrent fault may land between our scan and the
// call. Such a merge boundary is reconciled and counted as unexplained.
bool LateAnonBoundary(const abi::ProcmapQuery& q, const Vma* mv) {
  if (mv == nullptr || mv->file != nullptr || q.inode != 0) return false;
  if (!g_threaded && mv->anon.anon_vma == 0) return false;
  if ((mv->flags & kVmMayShare) != 0 || (q.vma_flags & 8) != 0) return false;
  uint64_t rwx = 0;
  if (q.vma_flags & 1) rwx |= kVmRead;
  if (q.vma_flags & 2) rwx |= kVmWrite;
  if (q.vma_flags & 4) rwx |= kVmExec;
  if ((mv->flags & kVmRwx) != rwx) return false;
  return q.vma_start == mv->start || q.vma_end == mv->end;
}

// VMAs a range check found equal to the kernel's, kept for the next event's
// check: a neighbour outside the next event's range that the previous event
// verified, and that the model has not changed since (nothing else happened
// in between: no other event, no resync), is not queried again. An mm call
// changes only the VMAs meeting its range and the neighbours it merges
// with, and a merge moves the boundary the in-range queries see, so such a
// neighbour can only have changed without a syscall (a stack grows: never
// skipped) or through a call we do not see, which a later check finds.
struct VerifiedVma {
  uint64_t start;
  uint64_t end;
  uint64_t flags;
  uint64_t pgoff;
  const File* file;
  AnonState anon;
  SpecialKind special;
};
constexpr int kMaxVerified = 16;
VerifiedVma g_verified[kMaxVerified];  // by the check of event g_verified_event
int g_num_verified = 0;
uint64_t g_verified_event = 0;
uint64_t g_verified_resyncs = 0;
VerifiedVma g_verifying[kMaxVerified];  // by the check in progress
int g_num_verifying = 0;

VerifiedVma Snapshot(const Vma& v) {
  return VerifiedVma{v.start, v.end, v.flags, v.pgoff, v.file, v.anon, v.special};
}

bool VerifiedByLastEvent(const Vma& v) {
  if (g_verified_event + 1 != g_count.events_total || g_verified_resyncs != g_count.resyncs) {
    return false;
  }
  const VerifiedVma now = Snapshot(v);
  for (int i = 0; i < g_num_verified; ++i) {
    const VerifiedVma& w = g_verified[i];
    if (w.start == now.start && w.end == now.end && w.flags == now.flags && w.pgoff == now.pgoff &&
        w.file == now.file && w.anon == now.anon && w.special == now.special) {
      return true;
    }
  }
  return false;
}

// The same for the first differing lines of a full compare.
bool LateAnonBoundaryLines(const char* model, size_t model_len, const char* kernel,
                           size_t kernel_len) {
  MapsLine m;
  MapsLine k;
  if (!ParseMapsLine(model, model_len, &m) || !ParseMapsLine(kernel, kernel_len, &k)) return false;
  abi::ProcmapQuery q{};
  q.vma_start = k.start;
  q.vma_end = k.end;
  q.vma_flags = (k.perms[0] == 'r' ? 1 : 0) | (k.perms[1] == 'w' ? 2 : 0) |
                (k.perms[2] == 'x' ? 4 : 0) | (k.perms[3] == 's' ? 8 : 0);
  q.inode = k.inode;
  const Vma* mv = g_model->FindVma(m.start);
  return mv != nullptr && mv->start == m.start && LateAnonBoundary(q, mv);
}

// The range check after one event: the VMAs meeting [lo, hi) plus one on
// each side, model against PROCMAP_QUERY (start, end, perms, offset, dev,
// inode, name: the whole maps line). A neighbour outside the range that maps
// a file is queried without its name: no mm call renames a file, so its
// (dev, inode, offset) say all the event could have changed, and d_path is
// the dearest part of a query. Falls back to a full compare when the ioctl is
// unavailable.
void RangeCheck(uint64_t lo, uint64_t hi, const Call* call, const uint64_t* args) {
  ++g_count.range_checks;
  // Start at the VMA before lo (the model's view of it).
  Vma* prev = nullptr;
  (void)g_model->tree().FindVmaPrev(lo, &prev);
  uint64_t addr = prev != nullptr ? prev->start : 0;
  g_num_verifying = 0;
  for (int guard = 0; guard < 100000; ++guard) {
    const Vma* mv = g_model->FindVma(addr);
    if (mv != nullptr && (mv->end <= lo || mv->start >= hi) && (mv->flags & kVmGrowsdown) == 0 &&
        !TraceOn() && VerifiedByLastEvent(*mv)) {
      if (mv->start >= hi) break;
      addr = mv->end;
      continue;
    }
    const bool with_name =
        mv == nullptr || !ShowsFile(*mv) || (mv->end > lo && mv->start < hi) || TraceOn();
    abi::ProcmapQuery q;
    bool found = false;
    if (!QueryKernel(addr, &q, &found, with_name)) {
      FullCompare(call, args);
      return;
    }
    if (found && mv != nullptr && (mv->flags & kVmGrowsdown) != 0 && q.vma_end == mv->end &&
        q.vma_start < mv->start) {
      ReconcileStack(q.vma_start);
      mv = g_model->FindVma(addr);
    }
    if (TraceOn()) {
      // The trace keeps a hash of both lines of every step.
      const size_t klen = found ? KernelLine(q) : 0;
      const size_t mlen =
          mv != nullptr ? RenderVmaLine(*g_model, *mv, g_line_model, sizeof(g_line_model)) : 0;
      TraceRangeLine(addr, g_line_kernel, klen, g_line_model, mlen);
    }
    if (!found && mv == nullptr) break;
    if (!found || mv == nullptr ||
        !QueryMatchesVma(*g_model, *mv, q, g_query_name, q.vma_name_size, with_name)) {
      if (found && LateAnonBoundary(q, mv)) {
        RecordUnexplained("merge boundary (anon_vma learnt late)", q.vma_start, q.vma_end);
        Resync();
        return;
      }
      // Lines are rendered only to report a difference, with the name.
      if (found && !with_name) (void)QueryKernel(addr, &q, &found);
      const size_t klen = found ? KernelLine(q) : 0;
      const size_t mlen =
          mv != nullptr ? RenderVmaLine(*g_model, *mv, g_line_model, sizeof(g_line_model)) : 0;
      RecordDivergence(call, args, "range check", mlen != 0 ? g_line_model : "(none)",
                       mlen != 0 ? mlen : 6, klen != 0 ? g_line_kernel : "(none)",
                       klen != 0 ? klen : 6);
      Resync();
      return;
    }
    if (g_num_verifying < kMaxVerified) g_verifying[g_num_verifying++] = Snapshot(*mv);
    if (q.vma_start >= hi) break;  // the neighbour after the range: done
    addr = q.vma_end;
  }
  memcpy(g_verified, g_verifying, sizeof(VerifiedVma) * static_cast<size_t>(g_num_verifying));
  g_num_verified = g_num_verifying;
  g_verified_event = g_count.events_total;
  g_verified_resyncs = g_count.resyncs;
}

// ---------------------------------------------------------------------------
// Result misses.

// The address a call's result is about: the kernel's new mapping or break
// when it made one, else the first argument (0 for mlockall/munlockall).
uint64_t CallAddress(Call call, const uint64_t* args, int64_t kernel_ret, int64_t model_ret) {
  const bool kernel_ok = kernel_ret >= 0 || kernel_ret < -4095;
  switch (call) {
    case Call::kMmap:
    case Call::kMremap:
    case Call::kBrk:
      if (kernel_ok && kernel_ret != 0) return U(kernel_ret);
      if (model_ret > 0) return U(model_ret);
      return args[0];
    case Call::kMlockall:
    case Call::kMunlockall:
      return 0;
    default:
      return args[0];
  }
}

// Up to four maps lines of the model's VMAs around addr (the one before it,
// the one covering it or the next, and the one after), then the kernel's
// from the same start (PROCMAP_QUERY), into out.
template <size_t N>
void PutAround(Text<N>& out, uint64_t addr) {
  Vma* prev = nullptr;
  (void)g_model->tree().FindVmaPrev(addr, &prev);
  const uint64_t from = prev != nullptr ? prev->start : (addr > 0 ? addr : 0);
  out.Add("model VMAs from ").Hex(from).Add(":\n");
  const Vma* v = prev != nullptr ? prev : g_model->FindVma(from);
  for (int i = 0; i < 3 && v != nullptr; ++i, v = v->next) {
    const size_t n = RenderVmaLine(*g_model, *v, g_line_model, sizeof(g_line_model));
    out.Add("  ").Add(g_line_model, LineLen(g_line_model, n)).Add("\n");
  }
  out.Add("kernel VMAs from ").Hex(from).Add(":\n");
  uint64_t at = from;
  for (int i = 0; i < 3; ++i) {
    abi::ProcmapQuery q;
    bool found = false;
    if (!QueryKernel(at, &q, &found) || !found) break;
    const size_t n = KernelLine(q);
    out.Add("  ").Add(g_line_kernel, LineLen(g_line_kernel, n)).Add("\n");
    at = q.vma_end;
  }
}

// A result the model did not predict (EventScope::Finish found
// kernel_ret != model's). A divergence with the call, both results and the
// VMAs around the call's address; unexplained when the model could not run
// the call (its arena is exhausted). The model is reseeded either way.
void RecordResultMiss(Call call, const uint64_t* args, int64_t kernel_ret, const Outcome& o,
                      bool placement_ok) {
  const auto is_err = [](int64_t r) { return r < 0 && r >= -4095; };
  const uint64_t addr = CallAddress(call, args, kernel_ret, o.ret);
  if (g_model->broken()) {
    RecordUnexplained("model arena exhausted", addr, addr);
    g_dirty = true;
    return;
  }
  const char* what = "result";
  if (is_err(kernel_ret) && is_err(o.ret)) {
    what = "errno";
  } else if (!is_err(kernel_ret) && !is_err(o.ret) && o.placement_predicted && placement_ok) {
    what = "placement";
  }
  Text<64> model;
  Text<64> kernel;
  model.Add("returns ").Ret(o.ret);
  kernel.Add("returns ").Ret(kernel_ret);
  Text<1400> context;
  if (call != Call::kMlockall && call != Call::kMunlockall) PutAround(context, addr);
  RecordDivergence(&call, args, what, model.c_str(), model.size(), kernel.c_str(), kernel.size(),
                   context.size() != 0 ? context.c_str() : nullptr);
}

// ---------------------------------------------------------------------------
// The JSON report.

// Report files: DIR/<pid>.json, or DIR/<pid>-<runid>.json when a file not
// ours holds that name (an earlier run's, or anybody's planted link). Each is
// created exclusively without following links (0600), at start-up (and in a
// fork child at the fork), with room reserved (fallocate), and rewritten in
// place (pwrite) from then on: writing a report needs no new descriptor, no
// permission on the directory (a process that dropped privileges) and no
// free space. A file is ours when it is a regular file of our effective uid
// that starts with {"pid":<pid>,"run_id":"<run id>" (PutReportHead).
constexpr int kOWronly = 1, kORdwr = 2, kOCreat = 0100, kOExcl = 0200, kONonblock = 04000;
constexpr int kONofollow = 0400000;
constexpr uint64_t kReportReserve = uint64_t{64} << 10;
constexpr long kSysFtruncate = 77;
constexpr long kSysGeteuid = 107;
constexpr long kSysFallocate = 285;

void WriteReport(const char* reason, bool complete);

// DIR/<pid> or DIR/<pid>-<runid> (no suffix).
template <size_t N>
void ReportBase(Text<N>* out, int pid, bool with_run_id) {
  out->Clear();
  out->Add(g_report_dir).Add("/").Udec(static_cast<uint64_t>(pid));
  if (with_run_id) out->Add("-").Add(g_run_id);
}

// The first bytes of every report of this process in this run.
template <typename Out>
void PutReportHead(Out& out, int pid) {
  out.Add("{\"pid\":").Udec(static_cast<uint64_t>(pid)).Add(",\"run_id\":\"").Add(g_run_id);
  out.Add("\"");
}

bool ReportFileIsOurs(const char* path, int pid) {
  const int fd = static_cast<int>(RawSyscall6(kSysOpenat, U(static_cast<int64_t>(kAtFdcwd)),
                                              U(path), U(kONofollow | kONonblock | kOCloexec), 0));
  if (fd < 0) return false;
  Text<128> head;
  PutReportHead(head, pid);
  char buf[128];
  RawStat st;
  bool ours = RawFstat(fd, &st) && (st.mode & kSIfmt) == kSIfreg &&
              st.uid == static_cast<uint32_t>(RawSyscall6(kSysGeteuid));
  size_t n = 0;
  while (ours && n < head.size()) {
    const int64_t r = RawRead(fd, buf + n, head.size() - n);
    if (r == -EINTR) continue;
    if (r <= 0) break;
    n += static_cast<size_t>(r);
  }
  RawClose(fd);
  return ours && n == head.size() && memcmp(buf, head.c_str(), n) == 0;
}

// A new image of a pid that already reported (it called execve): the old
// image's report (ours: checked by the caller) becomes BASE.exec<k>.json.
void KeepEarlierImageReport(const char* base) {
  Text<2200> from;
  from.Add(base).Add(".json");
  for (uint64_t k = 1; k < 100; ++k) {
    Text<2200> to;
    to.Add(base).Add(".exec").Udec(k).Add(".json");
    constexpr int kRenameNoreplace = 1;
    const int64_t r =
        RawSyscall6(kSysRenameat2, U(static_cast<int64_t>(kAtFdcwd)), U(from.c_str()),
                    U(static_cast<int64_t>(kAtFdcwd)), U(to.c_str()), U(kRenameNoreplace));
    if (r != -EEXIST) return;
  }
}

// True when g_report_fd still is the report file we created.
bool ReportFdIsOurs() {
  RawStat st;
  return g_report_fd >= 0 && RawFstat(g_report_fd, &st) && st.dev == g_report_dev &&
         st.ino == g_report_ino;
}

// Creates this process's report file (see above). 0 or -errno.
int CreateReportFile(int pid) {
  g_report_fd = -1;
  g_report_size = 0;
  int64_t err = -EEXIST;
  for (int alt = 0; alt < 2; ++alt) {
    Text<2200> base;
    ReportBase(&base, pid, alt == 1);
    Text<2200> path;
    path.Add(base.c_str()).Add(".json");
    if (path.size() + 1 >= sizeof(g_report_path)) return -ENAMETOOLONG;
    for (int attempt = 0; attempt < 3; ++attempt) {
      const int64_t fd = RawSyscall6(kSysOpenat, U(static_cast<int64_t>(kAtFdcwd)), U(path.c_str()),
                                     U(kORdwr | kOCreat | kOExcl | kONofollow | kOCloexec), 0600);
      if (fd >= 0) {
        int f = static_cast<int>(fd);
        const int64_t high = RawSyscall6(kSysFcntl, U(f), U(kFDupfdCloexecCmd), 700);
        if (high >= 0) {
          RawClose(f);
          f = static_cast<int>(high);
        }
        RawStat st;
        if (!RawFstat(f, &st)) {
          RawClose(f);
          return -EBADF;
        }
        g_report_fd = f;
        g_report_dev = st.dev;
        g_report_ino = st.ino;
        memcpy(g_report_path, path.c_str(), path.size() + 1);
        // Room for the final report, so that a full disk later loses
        // nothing (not every file system can: then we go without).
        constexpr int kFallocKeepSize = 1;
        RawSyscall6(kSysFallocate, U(f), U(kFallocKeepSize), 0, kReportReserve);
        return 0;
      }
      err = fd;
      if (fd != -EEXIST) break;
      if (!ReportFileIsOurs(path.c_str(), pid)) break;  // not ours: left alone
      KeepEarlierImageReport(base.c_str());
    }
    if (g_run_id[0] == '\0') break;
  }
  return static_cast<int>(err);
}

// Starts this process's report: its file and the placeholder.
void StartReport(int pid) {
  if (g_report_dir[0] == '\0') return;
  const int r = CreateReportFile(pid);
  if (r != 0) {
    // Said where the launcher looks: an empty file (mknod needs no
    // descriptor, so EMFILE does not stop it) whose name carries the run id
    // and the error, DIR/<pid>-<runid>.lost<errno>.json.
    Text<2200> lost;
    ReportBase(&lost, pid, true);
    lost.Add(".lost").Udec(static_cast<uint64_t>(-r)).Add(".json");
    constexpr long kSysMknodat = 259;
    RawSyscall6(kSysMknodat, U(static_cast<int64_t>(kAtFdcwd)), U(lost.c_str()), U(kSIfreg | 0600),
                0);
    Writer w;
    w.Str("vmashadow: pid ").Udec(static_cast<uint64_t>(pid));
    w.Str(": cannot create its report in ").Str(g_report_dir).Str(" (").Dec(r);
    w.Str("); this process is not reported\n");
    return;
  }
  WriteReport("running", false);  // a placeholder, in case we never finish
}

// A fork child's inherited descriptor is its parent's report: closed, never
// written.
void DropInheritedReport() {
  if (ReportFdIsOurs()) RawClose(g_report_fd);
  g_report_fd = -1;
}

const char* CheckName() {
  switch (g_check) {
    case CheckMode::kOff:
      return "off";
    case CheckMode::kExit:
      return "exit";
    case CheckMode::kEvery:
      return "every";
    case CheckMode::kEveryN:
      return nullptr;
  }
  return "exit";
}

void WriteSamples(Writer& w, const Sample* samples, uint64_t n, bool divergence) {
  w.Ch('[');
  for (uint64_t i = 0; i < n && i < kMaxSamples; ++i) {
    const Sample& s = samples[i];
    if (i > 0) w.Ch(',');
    w.Ch('{').Key("event", true).Udec(s.event);
    if (divergence) {
      w.Key("call").Json(s.call.c_str()).Key("what").Json(s.what.c_str());
      w.Key("model").Json(s.model.c_str()).Key("kernel").Json(s.kernel.c_str());
      if (s.context.size() != 0) w.Key("context").Json(s.context.c_str());
    } else {
      w.Key("what").Json(s.what.c_str()).Key("range").Json(s.model.c_str());
    }
    w.Ch('}');
  }
  w.Ch(']');
}

// The JSON text of the report (everything but the head, which the caller
// wrote). minimal: only what proves the file ours and says why it is short.
void WriteReportBody(Writer& w, int pid, const char* reason, bool complete) {
  {
    w.Key("parent_pid").Udec(static_cast<uint64_t>(g_parent_pid));
    w.Key("argv").Ch('[');
    size_t p = 0;
    int nargs = 0;
    while (p < g_cmdline_len && nargs < 64) {
      const size_t n = strnlen(g_cmdline + p, g_cmdline_len - p);
      if (nargs++ > 0) w.Ch(',');
      w.Json(g_cmdline + p, n);
      p += n + 1;
    }
    w.Ch(']');
    w.Key("kernel").Json(g_kernel_release);
    w.Key("kernel_profile").Json(g_model->profile().name);
    w.Key("backend").Json(g_sud_armed ? "sud" : "wrappers");
    if (g_stepped_aside != nullptr) {
      Text<120> m;
      m.Add("stepped aside: ").Add(g_stepped_aside);
      w.Key("monitoring").Json(m.c_str());
    } else {
      w.Key("monitoring").Json("monitored");
    }
    w.Key("check");
    if (const char* c = CheckName(); c != nullptr) {
      w.Json(c);
    } else {
      Text<24> n;
      n.Udec(g_check_every);
      w.Json(n.c_str());
    }
    w.Key("events").Udec(g_count.events_total);
    w.Key("events_by_call").Ch('{');
    for (int i = 0; i < static_cast<int>(Call::kCount); ++i) {
      w.Key(TraceCallName(static_cast<Call>(i)), i == 0).Udec(g_count.events[i]);
    }
    w.Ch('}');
    w.Key("trapped").Udec(g_count.trapped);
    w.Key("checks").Udec(g_count.checks);
    w.Key("range_checks").Udec(g_count.range_checks);
    w.Key("divergences").Udec(g_count.divergences);
    w.Key("divergence_samples");
    WriteSamples(w, g_div_samples, g_count.divergences, true);
    w.Key("resyncs").Udec(g_count.resyncs);
    w.Key("unexplained").Udec(g_count.unexplained);
    w.Key("unexplained_samples");
    WriteSamples(w, g_unexplained_samples, g_count.unexplained, false);
    w.Key("placement_predicted").Udec(g_count.placement_predicted);
    w.Key("placement_hit").Udec(g_count.placement_hit);
    w.Key("errno_predicted").Udec(g_count.errno_predicted);
    w.Key("errno_hit").Udec(g_count.errno_hit);
    w.Key("results").Udec(g_count.results);
    w.Key("results_hit").Udec(g_count.results_hit);
    w.Key("passthrough").Udec(g_count.passthrough);
    w.Key("signals_deferred").Udec(SudDeferredSignals());
    w.Key("pagetables").Str(g_pt_enabled ? "true" : "false");
    w.Key("pagetable_checks").Udec(g_count.pagetable_checks);
    w.Key("pagetable_hits").Udec(g_count.pagetable_hits);
    w.Key("counter_checks").Udec(g_count.counter_checks);
    w.Key("counter_hits").Udec(g_count.counter_hits);
    w.Key("vmflags_checks").Udec(g_count.vmflags_checks);
    w.Key("vmflags_hits").Udec(g_count.vmflags_hits);
    w.Key("pt_learnt_ranges").Udec(g_count.pt_learnt_ranges);
    w.Key("pt_calibrations").Udec(g_count.pt_calibrations);
    w.Key("pt_rescans").Udec(g_count.pt_rescans);
    {
      const PageTableCounts pt = g_model->page_tables().counts();
      w.Key("page_tables").Ch('{').Key("pte", true).Udec(pt.pte_tables);
      w.Key("pmd").Udec(pt.pmd_tables).Key("pud").Udec(pt.pud_tables);
      w.Key("deposited").Udec(pt.deposited).Key("unlocated").Udec(pt.unlocated);
      w.Key("vmpte_kb").Udec(pt.bytes() >> 10).Ch('}');
      const StatusCounters& k = g_last_kernel_status;
      const StatusCounters& m = g_last_model_status;
      w.Key("status_last_check").Ch('{');
      w.Key("kernel", true).Ch('{').Key("VmSize", true).Udec(k.vm_size_kb);
      w.Key("VmLck").Udec(k.vm_lck_kb).Key("VmData").Udec(k.vm_data_kb);
      w.Key("VmStk").Udec(k.vm_stk_kb).Key("VmExe").Udec(k.vm_exe_kb);
      w.Key("VmLib").Udec(k.vm_lib_kb).Key("VmPTE").Udec(k.vm_pte_kb).Ch('}');
      w.Key("model").Ch('{').Key("VmSize", true).Udec(m.vm_size_kb);
      w.Key("VmLck").Udec(m.vm_lck_kb).Key("VmData").Udec(m.vm_data_kb);
      w.Key("VmStk").Udec(m.vm_stk_kb).Key("VmExe").Udec(m.vm_exe_kb);
      w.Key("VmLib").Udec(m.vm_lib_kb).Key("VmPTE").Udec(m.vm_pte_kb).Ch('}').Ch('}');
    }
    w.Key("final_map_count").Udec(g_model->map_count());
    w.Key("exit_reason").Json(reason);
    w.Key("complete").Str(complete ? "true" : "false");
    int64_t trace_err = 0;
    if (const char* why = TraceStoppedEarly(&trace_err); why != nullptr) {
      Text<200> t;
      t.Add(why).Add(" (");
      if (trace_err < 0) t.Add("-").Udec(static_cast<uint64_t>(-trace_err));
      t.Add(")");
      w.Key("trace_stopped").Json(t.c_str());
    }
    (void)pid;
  }
}

// Rewrites this process's report in place: the JSON at offset 0, blanks
// over what is left of a longer earlier text, cut to size once the image is
// done. Lock-free and allocation-free, so the fatal-signal path can use it;
// counters may be read mid-update there (the report then says complete:
// false). When the text cannot be written whole, a short report saying why
// takes its place (it fits in what the placeholder already holds).
void WriteReport(const char* reason, bool complete) {
  if (g_report_dir[0] == '\0' || g_model == nullptr || g_report_fd < 0) return;
  const int pid = static_cast<int>(RawSyscall6(kSysGetpid));
  int fd = g_report_fd;
  if (!ReportFdIsOurs()) {
    // The program closed our descriptor: the file again by its name, if it
    // still is ours.
    fd = static_cast<int>(RawSyscall6(kSysOpenat, U(static_cast<int64_t>(kAtFdcwd)),
                                      U(g_report_path), U(kOWronly | kONofollow | kOCloexec), 0));
    RawStat st;
    if (fd >= 0 && (!RawFstat(fd, &st) || st.dev != g_report_dev || st.ino != g_report_ino)) {
      RawClose(fd);
      fd = -EBADF;
    }
    if (fd < 0) {
      Writer m;
      m.Str("vmashadow: pid ").Udec(static_cast<uint64_t>(pid)).Str(": cannot write its report ");
      m.Str(g_report_path).Str(" (").Dec(fd).Str("): the program closed its descriptor\n");
      g_report_fd = -1;
      return;
    }
  }
  uint64_t end = 0;
  int64_t error = 0;
  {
    Writer w(fd, 0);
    Text<128> head;
    PutReportHead(head, pid);
    w.Mem(head.c_str(), head.size());
    WriteReportBody(w, pid, reason, complete);
    w.Str("}\n");
    w.Flush();
    end = w.position();
    error = w.error();
  }
  if (error != 0) {
    Writer w(fd, 0);
    Text<128> head;
    PutReportHead(head, pid);
    w.Mem(head.c_str(), head.size());
    w.Key("exit_reason").Json(reason).Key("complete").Str("false");
    w.Key("report_error").Dec(error).Str("}\n");
    w.Flush();
    end = w.position();
    Writer m;
    m.Str("vmashadow: pid ").Udec(static_cast<uint64_t>(pid)).Str(": cannot write its report ");
    m.Str(g_report_path).Str(" (").Dec(error).Str("); a short one says so\n");
  }
  if (end < g_report_size) {
    static const char kBlanks[64] = {
        ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ',
        ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ',
        ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ',
        ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
    Writer w(fd, end);
    for (uint64_t i = end; i < g_report_size; i += sizeof(kBlanks)) {
      const uint64_t n = g_report_size - i;
      w.Mem(kBlanks, n < sizeof(kBlanks) ? n : sizeof(kBlanks));
    }
    w.Flush();
  }
  if (complete && error == 0 && strcmp(reason, "execve") != 0) {
    RawSyscall6(kSysFtruncate, U(fd), end);
    g_report_size = end;
  } else if (end > g_report_size) {
    g_report_size = end;
  }
  if (fd != g_report_fd) RawClose(fd);
}

constexpr int kSigAbrt = 6;
// --strict: the first divergence ends the program (after its report).
void StrictAbort() {
  WriteReport("strict", true);
  g_report_written = true;
  Writer w;
  w.Str("vmashadow: --strict: aborting the program at its first divergence\n");
  w.Flush();
  ResetAndRaise(kSigAbrt);
}

void PrintSummary() {
  if (g_quiet) return;
  Writer w;
  w.Str("vmashadow: pid=").Dec(RawSyscall6(kSysGetpid));
  w.Str(" events=").Udec(g_count.events_total).Str(" [");
  bool first = true;
  for (int i = 0; i < static_cast<int>(Call::kCount); ++i) {
    if (g_count.events[i] == 0) continue;
    if (!first) w.Ch(' ');
    first = false;
    w.Str(TraceCallName(static_cast<Call>(i))).Ch('=').Udec(g_count.events[i]);
  }
  w.Str("] checks=").Udec(g_count.checks + g_count.range_checks);
  w.Str(" divergences=").Udec(g_count.divergences);
  w.Str(" resyncs=").Udec(g_count.resyncs);
  w.Str(" placement_hit=").Udec(g_count.placement_hit).Ch('/').Udec(g_count.placement_predicted);
  w.Str(" errno_hit=").Udec(g_count.errno_hit).Ch('/').Udec(g_count.errno_predicted);
  w.Str(" results_hit=").Udec(g_count.results_hit).Ch('/').Udec(g_count.results);
  w.Str(" passthrough=").Udec(g_count.passthrough);
  w.Str(" unexplained=").Udec(g_count.unexplained);
  w.Str(" trapped=").Udec(g_count.trapped);
  w.Str(" final_map_count=").Udec(g_model->map_count());
  if (g_pt_enabled) {
    w.Str(" pagetable_hit=").Udec(g_count.pagetable_hits).Ch('/').Udec(g_count.pagetable_checks);
    w.Str(" counter_hit=").Udec(g_count.counter_hits).Ch('/').Udec(g_count.counter_checks);
    w.Str(" vmflags_hit=").Udec(g_count.vmflags_hits).Ch('/').Udec(g_count.vmflags_checks);
    w.Str(" vmpte_kb=").Udec(g_model->page_tables().counts().bytes() >> 10);
  }
  w.Str(" check=");
  if (const char* c = CheckName(); c != nullptr) {
    w.Str(c);
  } else {
    w.Udec(g_check_every);
  }
  w.Str(g_sud_armed ? " backend=sud\n" : " backend=wrappers (glibc-internal calls are not seen)\n");
}

// ---------------------------------------------------------------------------
// Fatal signals: leave a report (complete: false), then die as before.

// Synchronous faults (raised again by returning to the faulting
// instruction) and the signals whose default action ends the process. The
// latter only with Syscall User Dispatch, which keeps our handler out of
// the program's sight (its queries still read SIG_DFL).
constexpr int kFaultSignals[] = {4 /* ILL */, 6 /* ABRT */, 7 /* BUS */, 8 /* FPE */,
                                 11 /* SEGV */};
constexpr int kEndingSignals[] = {1 /* HUP */,   2 /* INT */,   3 /* QUIT */,  10 /* USR1 */,
                                  12 /* USR2 */, 13 /* PIPE */, 14 /* ALRM */, 15 /* TERM */};

// On our signal stack (a stack overflow's SIGSEGV needs one).
constexpr uint64_t kFatalFlags = kSaSiginfo | kSaRestorer | kSaNodefer | kSaResethand | kSaOnstack;

void FatalSignal(int sig, siginfo_t* si, void*) {
  Text<24> reason;
  reason.Add("signal ").Udec(static_cast<uint64_t>(sig));
  EmergencyReport(reason.c_str());
  // Back to the default action: a fault re-faults on return; a signal that
  // was sent (si_code <= 0) or is not a fault is raised again.
  const bool fault = sig != kSigAbrt && si != nullptr && si->si_code > 0 &&
                     (sig == 4 || sig == 7 || sig == 8 || sig == 11);
  if (fault) {
    KernelSigaction dfl{kSigDfl, 0, 0, 0};
    RawSyscall6(kSysRtSigaction, U(sig), U(&dfl), 0, 8);  // re-faults on return
  } else {
    ResetAndRaise(sig);
  }
}

void InstallFatalHandler(int sig) {
  KernelSigaction old{};
  if (RawSyscall6(kSysRtSigaction, U(sig), 0, U(&old), 8) != 0) return;
  if (old.handler != kSigDfl) return;  // the program's (or an inherited SIG_IGN)
  // Every signal but SIGSYS stays blocked while the report is written: a
  // second copy (a group signal the launcher also passed on) waits instead
  // of killing us half way through.
  const KernelSigaction act{U(&FatalSignal), kFatalFlags, SudRestorer(), ~kSigsysBit};
  if (RawSyscall6(kSysRtSigaction, U(sig), U(&act), 0, 8) == 0) SudNoteOwnFatalHandler(sig);
}

void InstallFatalHandlers() {
  SudSetFatalAction(U(&FatalSignal), kFatalFlags);
  for (int sig : kFaultSignals) InstallFatalHandler(sig);
  if (g_sud_armed) {
    for (int sig : kEndingSignals) InstallFatalHandler(sig);
  }
}

// ---------------------------------------------------------------------------
// fork: the prepare handler takes the lock so that the model is consistent
// in the child; parent and child release it. The child's model becomes the
// fork child's view and its counters start from zero.

// Before a fork the model must know every VMA holding anonymous pages: the
// child's copies become fork children (they stop merging).
void LearnAnonBeforeFork() {
  if (g_ready) LearnAnonRange(0, ~uint64_t{0});
  // The child gets copies of the tables of the VMAs that need copying.
  if (g_ready && g_pt_enabled && !ScanPages(0, g_params.task_size, kFullCalls, LearnRegion)) {
    g_pt_unsure = true;
  }
  if (g_ready) TraceForkPoint();
}

// Under dispatch the fork itself traps (ForkHere in sud.cc takes the lock
// there, after glibc's own prepare handlers took malloc's arena locks): the
// lock is never held across other atfork handlers. Holding it from here
// deadlocked chromium — a later prepare handler (malloc's, the program's)
// waited for a lock whose holder was inside malloc's mmap, waiting for ours.
void AtforkPrepare() {
  if (g_sud_armed) return;
  t_fork_mask = BlockAllSignals();
  LockAcquire();
  t_fork_locked = true;
  LearnAnonBeforeFork();
}

void AtforkParent() {
  if (!t_fork_locked) return;
  t_fork_locked = false;
  LockRelease();
  RestoreSignals(t_fork_mask);
}

void AtforkChild() {
  if (!t_fork_locked) {
    ChildAfterFork();  // done already by the trap path: returns at once
    return;
  }
  t_fork_locked = false;
  ChildAfterFork();
  RestoreSignals(t_fork_mask);
}

CheckMode ParseCheck(const char* s, uint64_t* every) {
  if (s == nullptr || *s == '\0' || strcmp(s, "exit") == 0) return CheckMode::kExit;
  if (strcmp(s, "every") == 0) return CheckMode::kEvery;
  if (strcmp(s, "off") == 0) return CheckMode::kOff;
  const char* p = s;
  uint64_t n = 0;
  if (ParseDec(p, s + strlen(s), &n) && *p == '\0' && n > 0) {
    *every = n;
    return n == 1 ? CheckMode::kEvery : CheckMode::kEveryN;
  }
  Writer w;
  w.Str("vmashadow: VMASHADOW_CHECK=").Str(s).Str(" not understood; using exit\n");
  return CheckMode::kExit;
}

bool EnvIs(const char* name, const char* value) {
  const char* v = getenv(name);
  return v != nullptr && strcmp(v, value) == 0;
}

// False: this process is not to be watched (children not followed).
bool ReadConfig() {
  g_check = ParseCheck(getenv("VMASHADOW_CHECK"), &g_check_every);
  g_strict = EnvIs("VMASHADOW_STRICT", "1");
  g_quiet = EnvIs("VMASHADOW_QUIET", "1");
  g_log_events = EnvIs("VMASHADOW_LOG_EVENTS", "1");
  g_follow_children = !EnvIs("VMASHADOW_FOLLOW_CHILDREN", "no");
  g_use_sud = !EnvIs("VMASHADOW_BACKEND", "wrappers");
  g_report_dir[0] = '\0';
  if (const char* d = getenv("VMASHADOW_REPORT_DIR"); d != nullptr && *d != '\0') {
    const size_t n = strlen(d);
    if (n < sizeof(g_report_dir)) memcpy(g_report_dir, d, n + 1);
  }
  // The run id names report files: letters, digits and '-' only.
  g_run_id[0] = '\0';
  if (const char* id = getenv("VMASHADOW_RUN_ID"); id != nullptr) {
    size_t n = 0;
    for (; id[n] != '\0' && n + 1 < sizeof(g_run_id); ++n) {
      const char c = id[n];
      const bool ok =
          (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
      g_run_id[n] = ok ? c : '_';
    }
    g_run_id[n] = '\0';
  }
  if (!g_follow_children) {
    const char* root = getenv("VMASHADOW_ROOT_PID");
    uint64_t pid = 0;
    const char* p = root;
    if (root != nullptr && ParseDec(p, root + strlen(root), &pid) &&
        static_cast<int64_t>(pid) != RawSyscall6(kSysGetpid)) {
      return false;
    }
  }
  return true;
}

// The facts a report names: argv, kernel release, parent pid.
void ReadIdentity() {
  const int64_t n = ReadWhole("/proc/self/cmdline", g_cmdline, sizeof(g_cmdline));
  g_cmdline_len = n > 0 ? static_cast<size_t>(n) : 0;
  struct {
    char sysname[65], nodename[65], release[65], version[65], machine[65], domain[65];
  } uts;
  if (RawSyscall6(kSysUname, U(&uts)) == 0) {
    memcpy(g_kernel_release, uts.release, sizeof(g_kernel_release));
    g_kernel_release[sizeof(g_kernel_release) - 1] = '\0';
  }
  g_parent_pid = static_cast<int>(RawSyscall6(kSysGetppid));
  g_owner_pid = static_cast<int>(RawSyscall6(kSysGetpid));
}

// The kernel profile (core's ProfileForKernel): the release picks the
// version row; on 6.18, whose vendor builds may carry 6.19's sticky guard
// flag, a scratch mapping shows whether MADV_GUARD_INSTALL sets "gu" (one
// extra smaps read at start-up, 6.18 only). The scratch mapping is gone
// before the model is seeded.
const KernelProfile& ProbeKernelProfile() {
  bool sticky = false;
  if (strncmp(g_kernel_release, "6.18.", 5) == 0 || strcmp(g_kernel_release, "6.18") == 0) {
    const int64_t probe = RawSyscall6(kSysMmap, 0, 2 * kPageSize, abi::kProtRead | abi::kProtWrite,
                                      abi::kMapPrivate | abi::kMapAnonymous, U(-1), 0);
    if (probe > 0) {
      uint64_t flags = 0;
      if (RawSyscall6(kSysMadvise, U(probe), kPageSize, abi::kMadvGuardInstall) == 0) {
        const int64_t n = ReadWhole("/proc/self/smaps", g_smaps, kSmapsCap);
        sticky = n > 0 && SmapsVmFlagsAt(g_smaps, static_cast<size_t>(n), U(probe), &flags) == 0 &&
                 (flags & kVmMaybeGuard) != 0;
      }
      RawSyscall6(kSysMunmap, U(probe), 2 * kPageSize);
    }
  }
  bool exact = false;
  const KernelProfile& p = ProfileForKernel(g_kernel_release, sticky, &exact);
  if (!exact) {
    Writer w;
    w.Str("vmashadow: kernel ").Str(g_kernel_release).Str(" is outside 6.12-6.18; modelled as ");
    w.Str(p.name).Ch('\n');
  }
  return p;
}

// A reason this process cannot be monitored, found before anything is set
// up (nullptr: none): a tracer (every trap would stop the process for it),
// a seccomp filter (it may kill the syscalls the checks make), or an
// emulator such as Valgrind that runs the program on a synthetic CPU (it
// passes PR_SET_SYSCALL_USER_DISPATCH through to the kernel, which then
// traps the emulator's own syscalls).
const char* CannotMonitor() {
  if (RUNNING_ON_VALGRIND) return "running under Valgrind";
  char buf[4096];
  const int64_t n = ReadWhole("/proc/self/status", buf, sizeof(buf));
  if (n <= 0) return nullptr;
  const auto field = [&](const char* key) -> int64_t {
    const char* p = strstr(buf, key);
    if (p == nullptr) return 0;
    p += strlen(key);
    while (*p == ' ' || *p == '\t') ++p;
    uint64_t v = 0;
    return ParseDec(p, buf + n, &v) ? static_cast<int64_t>(v) : 0;
  };
  if (field("\nTracerPid:") != 0) return "traced (a debugger or strace is attached)";
  if (field("\nSeccomp:") != 0) return "a seccomp filter is in force";
  return nullptr;
}

__attribute__((constructor)) void Init() {
  if (getenv("VMASHADOW_DISABLE") != nullptr) return;
  if (getauxval(AT_SECURE) != 0) return;
  InitOwnStderr();  // before any message
  if (!ReadConfig()) {
    if (g_own_stderr.fd > 2) RawClose(g_own_stderr.fd);
    g_own_stderr.fd = -1;
    return;
  }
  if (const char* why = CannotMonitor(); why != nullptr) {
    Writer w;
    w.Str("vmashadow: pid ").Dec(RawSyscall6(kSysGetpid)).Str(": not monitored: ").Str(why);
    w.Str("\n");
    return;
  }
  g_pt_enabled = g_check != CheckMode::kOff && !EnvIs("VMASHADOW_PAGETABLES", "0");

  // Under a finite RLIMIT_AS the address space we take is the program's to
  // miss: fewer signal stacks then.
  const uint64_t rlimit_as = RlimitCur(9 /* RLIMIT_AS */);
  const int alt_slots = rlimit_as == kUnlimited ? kAltSlots : kAltSlotsLimited;
  const uint64_t region_size = kBuffersSize + static_cast<uint64_t>(alt_slots) * kAltSlotSize;
  if (rlimit_as != kUnlimited && region_size > rlimit_as / 4) {
    Writer w;
    w.Str("vmashadow: RLIMIT_AS is ").Udec(rlimit_as >> 20).Str(" MiB: the model's ");
    w.Udec(region_size >> 20).Str(" MiB would take too much of it; not monitoring\n");
    return;
  }
  const int64_t m =
      RawSyscall6(kSysMmap, 0, region_size, abi::kProtRead | abi::kProtWrite,
                  abi::kMapPrivate | abi::kMapAnonymous | abi::kMapNoreserve, U(-1), 0);
  if (m < 0 && m >= -4095) {
    Writer w;
    w.Str("vmashadow: cannot map the model's arena (").Dec(m).Str("); disabled\n");
    return;
  }
  g_region = reinterpret_cast<char*>(m);
  g_kmaps = g_region + kArenaSize;
  g_mmaps = g_kmaps + kMapsCap;
  g_smaps = g_mmaps + kMapsCap;
  // One write gives the region its anon_vma before the model is seeded, so
  // later use of the buffers changes nothing the model shows.
  g_region[0] = 0;
  g_maps_fd = RawOpen("/proc/self/maps", kORdonly);
  g_pagemap_fd = RawOpen("/proc/self/pagemap", kORdonly);
  ReadIdentity();

  const int64_t mn = ReadWhole("/proc/self/maps", g_kmaps, kMapsCap);
  if (mn <= 0 || ReadParams(g_kmaps, static_cast<size_t>(mn), &g_params) != 0) {
    Writer w;
    w.Str("vmashadow: cannot read the mm parameters from /proc/self; disabled\n");
    return;
  }
  Arena* arena = new (g_arena_storage) Arena(g_region, kArenaSize);
  g_model = new (g_model_storage) AddressSpace(arena, ProbeKernelProfile(), g_params);
  TraceStart(g_model, g_params, kArenaSize, g_kernel_release, g_cmdline, g_cmdline_len);
  if (Seed() != 0) return;
  // The seeded model must render exactly what it was seeded from.
  const int64_t kn = ReadWhole("/proc/self/maps", g_kmaps, kMapsCap);
  const size_t mlen = RenderMaps(*g_model, g_mmaps, kMapsCap);
  if (kn < 0 || mlen != static_cast<size_t>(kn) || memcmp(g_mmaps, g_kmaps, mlen) != 0) {
    Writer w;
    w.Str("vmashadow: warning: the seeded model does not render as /proc/self/maps\n");
  }
  pthread_atfork(AtforkPrepare, AtforkParent, AtforkChild);
  StartReport(g_owner_pid);
  if (g_use_sud) {
    const char* why = nullptr;
    g_sud_armed = SudStart(&why, g_smaps + kSmapsCap, alt_slots);
    if (!g_sud_armed) {
      Writer w;
      w.Str("vmashadow: Syscall User Dispatch unavailable (").Str(why);
      w.Str("); only the exported wrappers are watched\n");
    }
  }
  InstallFatalHandlers();
  __atomic_store_n(&g_ready, true, __ATOMIC_RELEASE);
}

// The image ends (exit, exit_group, or an execve that may still fail):
// final check, report, and (not for execve) the stderr summary. A failing
// execve loop (execvp over PATH) repeats nothing while no event happened.
uint64_t g_exec_attempt_events = ~uint64_t{0};

void EndImage(const char* reason) {
  if (!g_ready || g_report_written) return;
  const bool exec = strcmp(reason, "execve") == 0;
  if (exec && g_exec_attempt_events == g_count.events_total) return;
  if (g_dirty) Resync();
  if (g_ready && g_check != CheckMode::kOff) FullCompare(nullptr, nullptr);
  TraceImageEnd(reason);
  WriteReport(reason, true);
  if (exec) {
    g_exec_attempt_events = g_count.events_total;
    return;
  }
  PrintSummary();
  g_report_written = true;
}

// Runs on the stack of whichever thread calls exit(), which may be tiny (a
// clone() child's 4 KiB): under dispatch the exit_group that follows traps
// and ImageEnding writes the report on our signal stack instead.
__attribute__((destructor)) void Fini() {
  if (!g_ready || g_sud_armed || RawSyscall6(kSysGetpid) != g_owner_pid) return;
  LockedScope locked;
  EndImage("exit");
  g_ready = false;
}

}  // namespace

// ---------------------------------------------------------------------------
// The backend's entry points.

bool ShadowReady() { return __atomic_load_n(&g_ready, __ATOMIC_ACQUIRE); }

bool InHook() { return t_in_hook; }

void NoteThreadStarted() { __atomic_store_n(&g_threaded, true, __ATOMIC_RELAXED); }

int ShadowOwnerPid() { return g_owner_pid; }

void SetTrapped(bool trapped) { t_trapped = trapped; }

void ForkLock() {
  if (t_fork_locked) return;  // glibc's fork: AtforkPrepare holds it
  LockAcquire();
  LearnAnonBeforeFork();
}

void ForkUnlock() {
  if (t_fork_locked) return;
  LockRelease();
}

void ChildAfterFork(bool vfork_child) {
  const int pid = static_cast<int>(RawSyscall6(kSysGetpid));
  t_tid = 0;  // the parent's, copied
  g_lock = 0;
  if (pid == g_owner_pid) return;  // already done (the trap path ran first)
  if (vfork_child) {
    // Not armed, no report: it runs until its execve (a debugger's child
    // calls PTRACE_TRACEME first, and a trap would then stop it for a
    // tracer that waits for the vfork to end). Its new image is monitored.
    g_owner_pid = pid;
    g_ready = false;
    return;
  }
  g_parent_pid = g_owner_pid;
  g_owner_pid = pid;
  DropInheritedReport();
  // The inherited /proc/self/maps fd still describes the parent.
  if (g_maps_fd >= 0) RawClose(g_maps_fd);
  g_maps_fd = RawOpen("/proc/self/maps", kORdonly);
  if (g_pagemap_fd >= 0) RawClose(g_pagemap_fd);
  g_pagemap_fd = RawOpen("/proc/self/pagemap", kORdonly);
  TraceChildStart(g_ready && g_follow_children);
  if (!g_ready) return;
  if (!g_follow_children) {
    g_ready = false;
    return;
  }
  const uint64_t parent_unlocated = g_model->page_tables().counts().unlocated;
  g_model->ForkChild();
  // Tables the parent had but could not place are not inherited by the
  // model (core: ForkChild): when there were some, count the child's own.
  if (g_pt_enabled && parent_unlocated != 0) {
    StatusCounters st;
    if (ReadStatusCounters(&st) == 0) (void)g_model->CalibratePageTables(st.vm_pte_kb);
  }
  g_lockall_future = 0;
  g_count = Counters{};
  SudResetCounts();
  g_report_written = false;
  StartReport(pid);
  if (g_sud_armed) {
    SudAfterFork();
    SudArmThisThread();
  }
}

void ShadowDirty() {
  if (g_ready) __atomic_store_n(&g_dirty, true, __ATOMIC_RELAXED);
}

void ImageEnding(const char* reason) {
  if (!ShadowReady() || RawSyscall6(kSysGetpid) != g_owner_pid) return;
  LockedScope locked;
  EndImage(reason);
  // After an execve that failed, this image goes on: later events still
  // count, and its exit rewrites the report.
  if (strcmp(reason, "execve") != 0) g_ready = false;
}

void ShadowLimitsChanged() {
  if (!ShadowReady()) return;
  LockedScope locked;
  if (g_model != nullptr) {
    g_params.rlimit_memlock = RlimitCur(8);  // RLIMIT_MEMLOCK
    g_params.rlimit_data = RlimitCur(2);     // RLIMIT_DATA
    g_params.rlimit_as = RlimitCur(9);       // RLIMIT_AS
    g_params.rlimit_stack = RlimitCur(3);    // RLIMIT_STACK
    // Capabilities are per thread: this thread's (the one that changed them).
    char buf[4096];
    const int64_t n = ReadWhole("/proc/thread-self/status", buf, sizeof(buf));
    uint64_t caps = 0;
    if (n > 0 && ParseCapEff(buf, static_cast<size_t>(n), &caps)) {
      g_params.cap_ipc_lock = (caps >> 14) & 1;   // CAP_IPC_LOCK
      g_params.cap_sys_rawio = (caps >> 17) & 1;  // CAP_SYS_RAWIO
    }
    ReadMdwe(&g_params);
    g_model->set_params(g_params);
  }
}

bool ShadowMapsFile(uint64_t st_dev, uint64_t inode) {
  if (!ShadowReady()) return false;
  const uint32_t major =
      static_cast<uint32_t>(((st_dev >> 8) & 0xfff) | ((st_dev >> 32) & ~0xfffu));
  const uint32_t minor = static_cast<uint32_t>((st_dev & 0xff) | ((st_dev >> 12) & ~0xffu));
  LockedScope locked;
  return g_model != nullptr && g_model->MapsFile(major, minor, inode);
}

void ShadowStepAside(const char* why) {
  if (!ShadowReady() || RawSyscall6(kSysGetpid) != g_owner_pid) return;
  LockedScope locked;
  g_stepped_aside = why;
  {
    Writer w;
    w.Str("vmashadow: pid ").Dec(RawSyscall6(kSysGetpid)).Str(": stepped aside (").Str(why);
    w.Str("); the program runs on unmonitored\n");
  }
  SudDisarmAll();
  if (!g_report_written) {
    WriteReport("stepped aside", true);
    g_report_written = true;
  }
  g_ready = false;
}

void EmergencyReport(const char* reason) {
  if (g_model == nullptr || g_report_written) return;
  if (RawSyscall6(kSysGetpid) != g_owner_pid) return;
  WriteReport(reason, false);
  g_report_written = true;
}

bool KernelVmaBounds(uint64_t addr, uint64_t* start, uint64_t* end) {
  abi::ProcmapQuery q;
  bool found = false;
  if (!QueryKernel(addr, &q, &found, /*with_name=*/false) || !found || q.vma_start > addr) {
    return false;
  }
  *start = q.vma_start;
  *end = q.vma_end;
  return true;
}

void NoteOnce(int key, const char* text) {
  const uint32_t bit = uint32_t{1} << (key & 31);
  if ((__atomic_fetch_or(&g_notes_done, bit, __ATOMIC_RELAXED) & bit) != 0) return;
  Writer w;
  w.Str("vmashadow: ").Str(text).Ch('\n');
}

// ---------------------------------------------------------------------------
// EventScope.

EventScope::EventScope(Call call, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                       uint64_t a5)
    : call_(call), args_{a0, a1, a2, a3, a4, a5} {
  if (!__atomic_load_n(&g_ready, __ATOMIC_ACQUIRE)) {
    return;
  }
  if (t_in_hook) {
    // A hook re-entered (our own code faulted into a handler that maps):
    // the kernel changes behind the model's back.
    g_dirty = true;
    __atomic_fetch_add(&g_count.passthrough, 1, __ATOMIC_RELAXED);
    return;
  }
  // No program code may run on this thread while it holds the lock:
  // signals are blocked for the event (the trap path's handler has done so
  // already, sud.cc).
  blocked_ = !SudSignalsBlocked();
  if (blocked_) saved_mask_ = BlockAllSignals();
  t_in_hook = true;
  LockAcquire();
  active_ = true;
  TraceBeginEvent();
  if (g_ready && g_dirty) Resync();
  if (!g_ready) Leave();  // the destructor ran meanwhile, or resync failed
}

void EventScope::Leave() {
  TraceEndEvent();
  active_ = false;
  LockRelease();
  t_in_hook = false;
  if (blocked_) {
    RestoreSignals(saved_mask_);
  } else {
    SudFlushDeferredSignals();
  }
}

EventScope::~EventScope() {
  if (active_) Leave();
}

AddressSpace& EventScope::model() { return *g_model; }

namespace {

void CountEvent(Call call) {
  ++g_count.events[static_cast<int>(call)];
  ++g_count.events_total;
  if (t_trapped) ++g_count.trapped;
}

}  // namespace

void EventScope::Finish(int64_t kernel_ret, const Outcome& o, bool placement_ok) {
  CountEvent(call_);
  TraceFinishEvent(call_, args_, kernel_ret, o, placement_ok, t_trapped);
  ++g_count.results;
  const bool err = kernel_ret < 0 || o.ret < 0;
  const bool hit = kernel_ret == o.ret;
  if (hit) ++g_count.results_hit;
  if (err) {
    ++g_count.errno_predicted;
    if (hit) ++g_count.errno_hit;
  }
  if (o.placement_predicted && placement_ok && kernel_ret >= 0 && o.ret >= 0) {
    ++g_count.placement_predicted;
    if (hit) ++g_count.placement_hit;
  }
  if (call_ == Call::kMlockall && kernel_ret == 0) {
    g_lockall_future = static_cast<int>(args_[0]) & (abi::kMclFuture | abi::kMclOnfault);
    if ((g_lockall_future & abi::kMclFuture) == 0) g_lockall_future = 0;
  } else if (call_ == Call::kMunlockall && kernel_ret == 0) {
    g_lockall_future = 0;
  }
  if (g_log_events) {
    Writer w;
    Text<200> ev;
    PutEvent(ev, call_, args_);
    w.Str("vmashadow: event ").Udec(g_count.events_total).Ch(' ').Str(ev.c_str()).Str(" = ");
    w.Ret(kernel_ret).Str(t_trapped ? " (trapped)\n" : "\n");
  }
  // Every miss counts: a result, errno or placement the model did not
  // predict is a divergence with its sample (or, when the model could not
  // run the call at all, unexplained with that reason); the model is then
  // reseeded from the kernel before anything else is compared.
  if (!hit) RecordResultMiss(call_, args_, kernel_ret, o, placement_ok);
  if (g_model->broken()) g_dirty = true;
  switch (g_check) {
    case CheckMode::kEvery:
      if (g_dirty) Resync();
      if (!g_ready || !hit) break;  // a miss was recorded; the model is the kernel's again
      if (range_lo_ < range_hi_) {
        RangeCheck(range_lo_, range_hi_, &call_, args_);
      } else {
        FullCompare(&call_, args_);
      }
      break;
    case CheckMode::kEveryN:
      if (g_count.events_total % g_check_every == 0) {
        if (g_dirty) Resync();
        if (g_ready) FullCompare(&call_, args_);
      } else if (!hit) {
        g_dirty = true;
      }
      break;
    default:
      // The model took another path than the kernel: it no longer mirrors it.
      if (!hit) g_dirty = true;
      break;
  }
}

void EventScope::FinishUnmodelled(int64_t kernel_ret) {
  CountEvent(call_);
  TraceFinishUnmodelled(call_, args_, kernel_ret, t_trapped);
  if (kernel_ret >= 0 || kernel_ret < -4095) g_dirty = true;
}

namespace {

// A private anonymous page (present, not page cache, not the zero page) or
// a swapped one: the VMA has an anon_vma. One scan: not-file and not-zero
// required, present or swapped enough.
bool KernelHasAnonPages(uint64_t lo, uint64_t hi) {
  abi::PageRegion region;
  abi::PmScanArg arg;
  memset(&arg, 0, sizeof(arg));
  arg.size = sizeof(arg);
  arg.start = lo;
  arg.end = hi;
  arg.vec = U(&region);
  arg.vec_len = 1;
  arg.max_pages = 1;
  arg.category_inverted = abi::kPageIsFile | abi::kPageIsPfnZero;
  arg.category_mask = abi::kPageIsFile | abi::kPageIsPfnZero;
  arg.category_anyof_mask = abi::kPageIsPresent | abi::kPageIsSwapped;
  arg.return_mask = arg.category_anyof_mask;
  return RawSyscall6(kSysIoctl, U(g_pagemap_fd), abi::kPagemapScanIoctl, U(&arg)) > 0;
}

// A private VMA the model thinks has no anon_vma: if the kernel shows
// anonymous pages in it, it gets one (the way a fault gives it).
void LearnVma(Vma* v) {
  if (v->anon.anon_vma == 0 && (v->flags & kVmMayShare) == 0 && v->special == SpecialKind::kNone &&
      KernelHasAnonPages(v->start, v->end)) {
    TraceLearnFaulted(v->start);
    (void)g_model->LearnFaulted(v->start);
  }
}

// The VMAs meeting [lo, hi) and the neighbours touching it (those a merge
// may join). Under the lock.
void LearnAnonRange(uint64_t lo, uint64_t hi) {
  if (g_pagemap_fd < 0) return;
  Vma* prev = nullptr;
  Vma* v = g_model->tree().FindVmaPrev(lo, &prev);
  if (prev != nullptr && prev->end == lo) v = prev;
  for (; v != nullptr && v->start <= hi; v = v->next) LearnVma(v);
}

}  // namespace

void EventScope::LearnPages(uint64_t lo, uint64_t hi) {
  if (!active_ || !g_pt_enabled) return;
  lo = PageDown(lo);
  hi = hi > g_params.task_size ? g_params.task_size : PageAlign(hi);
  if (lo >= hi) return;
  ++g_count.pt_learnt_ranges;
  (void)g_model->LearnNotPresent(lo, hi);
  if (!ScanPages(lo, hi, kLearnCalls, LearnRegion)) g_pt_unsure = true;
}

void EventScope::LearnAnon(uint64_t lo, uint64_t hi) {
  if (active_) LearnAnonRange(lo, hi);
}

void EventScope::LearnAnonAround(uint64_t lo, uint64_t hi, int prot, bool anon) {
  if (!active_ || g_pagemap_fd < 0 || lo == 0) return;
  Vma* left = g_model->FindVma(lo - 1);
  Vma* right = g_model->FindVma(hi);
  if (left == nullptr || left->start > lo - 1 || right == nullptr || right->start > hi) return;
  uint64_t rwx = 0;
  if (prot & abi::kProtRead) rwx |= kVmRead;
  if (prot & abi::kProtWrite) rwx |= kVmWrite;
  if (prot & abi::kProtExec) rwx |= kVmExec;
  // Only a neighbour that could merge with the new VMA matters.
  if (left->is_anonymous() != anon || (left->flags & kVmRwx) != rwx) return;
  if (right->is_anonymous() != anon || (right->flags & kVmRwx) != rwx) return;
  LearnVma(left);
  LearnVma(right);
}

void EventScope::LearnShmemInode(uint64_t addr) {
  abi::ProcmapQuery q;
  bool found = false;
  if (QueryKernel(addr, &q, &found) && found && q.vma_start <= addr && addr < q.vma_end &&
      q.inode != 0) {
    TraceShmemInode(addr, q.inode, q.dev_major, q.dev_minor);
    (void)g_model->SetShmemInode(addr, q.inode, q.dev_major, q.dev_minor);
  }
}

}  // namespace vmashadow::preload
