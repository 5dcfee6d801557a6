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
#include <stdlib.h>
#include <sys/auxv.h>

#include <cerrno>
#include <cstring>
#include <new>

#include "core/arena.h"
#include "core/kernel_profile.h"
#include "core/linux_abi.h"
#include "core/maps_text.h"
#include "core/system_facts.h"
#include "preload/raw_syscall.h"

namespace vmashadow::preload {
namespace {

// ---------------------------------------------------------------------------
// Sizes. One mapping holds [arena | kernel maps | model maps | smaps]; it is
// MAP_NORESERVE, so only the pages we touch cost memory.

constexpr size_t kArenaSize = size_t{64} << 20;
constexpr size_t kMapsCap = size_t{8} << 20;
constexpr size_t kSmapsCap = size_t{48} << 20;
constexpr size_t kRegionSize = kArenaSize + 2 * kMapsCap + kSmapsCap;
constexpr int kMaxRecords = 20;  // detailed divergence/result records printed

enum class CheckMode { kOff, kExit, kEvery, kEveryN };

struct Counters {
  uint64_t events[static_cast<int>(Call::kCount)];
  uint64_t events_total;
  uint64_t passthrough;  // calls re-entered or made while not ready
  uint64_t checks;
  uint64_t divergences;
  uint64_t resyncs;
  uint64_t results;
  uint64_t results_hit;
  uint64_t placement_predicted;
  uint64_t placement_hit;
  uint64_t errno_predicted;
  uint64_t errno_hit;
  uint64_t records;
};

// ---------------------------------------------------------------------------
// Global state: plain data only (no constructors run at load).

bool g_ready = false;
bool g_dirty = false;
CheckMode g_check = CheckMode::kExit;
uint64_t g_check_every = 0;
int g_lock = 0;
int g_maps_fd = -1;  // /proc/self/maps, for PROCMAP_QUERY
int g_lockall_future = 0;
Counters g_count;

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

const char* const kCallNames[] = {
    "mmap",  "munmap", "mprotect", "pkey_mprotect", "mremap",     "madvise", "brk",
    "mlock", "mlock2", "munlock",  "mlockall",      "munlockall", "mseal",
};
static_assert(sizeof(kCallNames) / sizeof(kCallNames[0]) == static_cast<size_t>(Call::kCount));

// ---------------------------------------------------------------------------
// Signals and the lock.

constexpr int kSigSetmask = 2;

uint64_t BlockAllSignals() {
  uint64_t all = ~uint64_t{0};
  uint64_t old = 0;
  RawSyscall6(kSysRtSigprocmask, kSigSetmask, U(&all), U(&old), sizeof(uint64_t));
  return old;
}

void RestoreSignals(uint64_t mask) {
  RawSyscall6(kSysRtSigprocmask, kSigSetmask, U(&mask), 0, sizeof(uint64_t));
}

void LockAcquire() {
  while (__atomic_exchange_n(&g_lock, 1, __ATOMIC_ACQUIRE) != 0) {
    int spins = 0;
    while (__atomic_load_n(&g_lock, __ATOMIC_RELAXED) != 0) {
      if (++spins < 128) {
        __builtin_ia32_pause();
      } else {
        RawSyscall6(kSysSchedYield);
        spins = 0;
      }
    }
  }
}

void LockRelease() { __atomic_store_n(&g_lock, 0, __ATOMIC_RELEASE); }

// ---------------------------------------------------------------------------
// Allocation-free output to stderr.

class Writer {
 public:
  ~Writer() { Flush(); }
  Writer& Mem(const char* s, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      if (len_ == sizeof(buf_)) Flush();
      buf_[len_++] = s[i];
    }
    return *this;
  }
  Writer& Str(const char* s) { return Mem(s, strlen(s)); }
  Writer& Ch(char c) { return Mem(&c, 1); }
  Writer& Udec(uint64_t v) {
    char tmp[24];
    int n = 0;
    do {
      tmp[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    while (n > 0) Ch(tmp[--n]);
    return *this;
  }
  Writer& Dec(int64_t v) {
    if (v < 0) {
      Ch('-');
      return Udec(uint64_t{0} - static_cast<uint64_t>(v));
    }
    return Udec(static_cast<uint64_t>(v));
  }
  Writer& Hex(uint64_t v) {
    char tmp[16];
    int n = 0;
    do {
      tmp[n++] = "0123456789abcdef"[v & 15];
      v >>= 4;
    } while (v != 0);
    Str("0x");
    while (n > 0) Ch(tmp[--n]);
    return *this;
  }
  // A syscall result: -errno in decimal, anything else in hex.
  Writer& Ret(int64_t v) { return v < 0 && v >= -4095 ? Dec(v) : Hex(static_cast<uint64_t>(v)); }
  // The text up to (not including) the first '\n'.
  Writer& Line(const char* s, size_t n) {
    const void* nl = memchr(s, '\n', n);
    return Mem(s, nl != nullptr ? static_cast<size_t>(static_cast<const char*>(nl) - s) : n);
  }
  void Flush() {
    size_t off = 0;
    while (off < len_) {
      const int64_t r = RawWrite(2, buf_ + off, len_ - off);
      if (r <= 0) break;
      off += static_cast<size_t>(r);
    }
    len_ = 0;
  }

 private:
  size_t len_ = 0;
  char buf_[1024];
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
  return MmParamsFromFacts(f, out, nullptr);
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
      if (kb > 0) (void)g_model->MarkFaulted(cur, /*fork_child=*/false);
    }
    p = eol + 1;
  }
}

// Replaces the model with the kernel's current state. 0 or -errno.
int Seed() {
  const int64_t mn = ReadWhole("/proc/self/maps", g_kmaps, kMapsCap);
  const int64_t sn = ReadWhole("/proc/self/smaps", g_smaps, kSmapsCap);
  if (mn <= 0) return mn < 0 ? static_cast<int>(mn) : -EIO;
  if (sn <= 0) return sn < 0 ? static_cast<int>(sn) : -EIO;
  g_model->Clear();
  size_t bad_line = 0;
  const int r = SeedFromMaps(g_model, g_kmaps, static_cast<size_t>(mn), g_smaps,
                             static_cast<size_t>(sn), &bad_line);
  if (r != 0) {
    Writer w;
    w.Str("vmashadow: cannot seed the model from /proc/self/maps (").Dec(r).Str(", line ");
    w.Udec(bad_line).Str(")\n");
    return r;
  }
  ApplyAnonFromSmaps(g_smaps, static_cast<size_t>(sn));
  ProcStat st;
  if (!ReadStat(&st)) return -EIO;
  const uint64_t brk = static_cast<uint64_t>(RawSyscall6(kSysBrk, 0));
  g_model->SetBrkState(st.start_brk, brk);
  g_model->SetStartStack(st.start_stack);
  if (g_lockall_future != 0) {
    (void)g_model->LockAll(g_lockall_future & (abi::kMclFuture | abi::kMclOnfault));
  }
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

void PrintEvent(Writer& w, Call call, const uint64_t* args) {
  w.Str(kCallNames[static_cast<int>(call)]).Ch('(');
  int nargs = 6;
  while (nargs > 1 && args[nargs - 1] == 0) --nargs;
  for (int i = 0; i < nargs; ++i) {
    if (i > 0) w.Str(", ");
    w.Hex(args[i]);
  }
  w.Ch(')');
}

// Compares the model's rendering with /proc/self/maps. On a difference:
// counts a divergence, prints one record, resynchronises. `call` is nullptr
// for the exit check.
void FullCompare(const Call* call, const uint64_t* args) {
  const int64_t kn = ReadWhole("/proc/self/maps", g_kmaps, kMapsCap);
  if (kn <= 0) return;
  ++g_count.checks;
  const size_t klen = static_cast<size_t>(kn);
  // The main stack grows without a syscall: take its start from the kernel.
  const uint64_t ss = g_model->start_stack();
  if (ss != 0) {
    const uint64_t kstart = KernelVmaStart(g_kmaps, klen, ss);
    const Vma* v = g_model->FindVma(ss);
    if (kstart != 0 && v != nullptr && v->start > kstart) {
      (void)g_model->ReconcileGrowsdown(ss, kstart);
    }
  }
  const size_t mlen = RenderMaps(*g_model, g_mmaps, kMapsCap);
  if (mlen == klen && memcmp(g_mmaps, g_kmaps, klen) == 0) return;
  ++g_count.divergences;
  if (g_count.records++ < kMaxRecords) {
    size_t mp = 0;
    size_t kp = 0;
    const char* ml = nullptr;
    const char* kl = nullptr;
    size_t mll = 0;
    size_t kll = 0;
    bool mh = false;
    bool kh = false;
    uint64_t line = 0;
    do {
      ++line;
      mh = NextLine(g_mmaps, mlen < kMapsCap ? mlen : kMapsCap - 1, &mp, &ml, &mll);
      kh = NextLine(g_kmaps, klen, &kp, &kl, &kll);
    } while (mh && kh && mll == kll && memcmp(ml, kl, mll) == 0);
    Writer w;
    w.Str("vmashadow: divergence #").Udec(g_count.divergences).Str(" after ");
    if (call != nullptr) {
      w.Str("event ").Udec(g_count.events_total).Ch(' ');
      PrintEvent(w, *call, args);
    } else {
      w.Str("exit");
    }
    w.Str(", line ").Udec(line).Str("\n  model:  ");
    if (mh) {
      w.Mem(ml, mll);
    } else {
      w.Str("(end)");
    }
    w.Str("\n  kernel: ");
    if (kh) {
      w.Mem(kl, kll);
    } else {
      w.Str("(end)");
    }
    w.Ch('\n');
  }
  Resync();
}

void PrintSummary() {
  Writer w;
  w.Str("vmashadow: pid=").Dec(RawSyscall6(kSysGetpid));
  w.Str(" events=").Udec(g_count.events_total).Str(" [");
  bool first = true;
  for (int i = 0; i < static_cast<int>(Call::kCount); ++i) {
    if (g_count.events[i] == 0) continue;
    if (!first) w.Ch(' ');
    first = false;
    w.Str(kCallNames[i]).Ch('=').Udec(g_count.events[i]);
  }
  w.Str("] checks=").Udec(g_count.checks);
  w.Str(" divergences=").Udec(g_count.divergences);
  w.Str(" resyncs=").Udec(g_count.resyncs);
  w.Str(" placement_hit=").Udec(g_count.placement_hit).Ch('/').Udec(g_count.placement_predicted);
  w.Str(" errno_hit=").Udec(g_count.errno_hit).Ch('/').Udec(g_count.errno_predicted);
  w.Str(" results_hit=").Udec(g_count.results_hit).Ch('/').Udec(g_count.results);
  w.Str(" passthrough=").Udec(g_count.passthrough);
  w.Str(" final_map_count=").Udec(g_model->map_count());
  w.Str(" check=");
  switch (g_check) {
    case CheckMode::kOff:
      w.Str("off");
      break;
    case CheckMode::kExit:
      w.Str("exit");
      break;
    case CheckMode::kEvery:
      w.Str("every");
      break;
    case CheckMode::kEveryN:
      w.Udec(g_check_every);
      break;
  }
  w.Str(" (backend: exported wrappers only; glibc-internal calls are not seen)\n");
}

// ---------------------------------------------------------------------------
// fork: the prepare handler takes the lock so that the model is consistent
// in the child; parent and child release it. The child's model becomes the
// fork child's view and its counters start from zero.

void AtforkPrepare() {
  t_fork_mask = BlockAllSignals();
  LockAcquire();
}

void AtforkParent() {
  LockRelease();
  RestoreSignals(t_fork_mask);
}

void AtforkChild() {
  g_lock = 0;
  // The inherited /proc/self/maps fd still describes the parent.
  if (g_maps_fd >= 0) RawClose(g_maps_fd);
  g_maps_fd = RawOpen("/proc/self/maps", kORdonly);
  if (g_ready) {
    g_model->ForkChild();
    g_lockall_future = 0;
    g_count = Counters{};
  }
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

__attribute__((constructor)) void Init() {
  if (getenv("VMASHADOW_DISABLE") != nullptr) return;
  if (getauxval(AT_SECURE) != 0) return;
  g_check = ParseCheck(getenv("VMASHADOW_CHECK"), &g_check_every);

  const int64_t m =
      RawSyscall6(kSysMmap, 0, kRegionSize, abi::kProtRead | abi::kProtWrite,
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

  const int64_t mn = ReadWhole("/proc/self/maps", g_kmaps, kMapsCap);
  if (mn <= 0 || ReadParams(g_kmaps, static_cast<size_t>(mn), &g_params) != 0) {
    Writer w;
    w.Str("vmashadow: cannot read the mm parameters from /proc/self; disabled\n");
    return;
  }
  Arena* arena = new (g_arena_storage) Arena(g_region, kArenaSize);
  g_model = new (g_model_storage) AddressSpace(arena, DefaultKernelProfile(), g_params);
  if (Seed() != 0) return;
  // The seeded model must render exactly what it was seeded from.
  const int64_t kn = ReadWhole("/proc/self/maps", g_kmaps, kMapsCap);
  const size_t mlen = RenderMaps(*g_model, g_mmaps, kMapsCap);
  if (kn < 0 || mlen != static_cast<size_t>(kn) || memcmp(g_mmaps, g_kmaps, mlen) != 0) {
    Writer w;
    w.Str("vmashadow: warning: the seeded model does not render as /proc/self/maps\n");
  }
  pthread_atfork(AtforkPrepare, AtforkParent, AtforkChild);
  g_ready = true;
}

__attribute__((destructor)) void Fini() {
  const uint64_t mask = BlockAllSignals();
  LockAcquire();
  if (g_ready) {
    if (g_dirty) Resync();
    if (g_ready && g_check != CheckMode::kOff) FullCompare(nullptr, nullptr);
    PrintSummary();
    g_ready = false;
  }
  LockRelease();
  RestoreSignals(mask);
}

}  // namespace

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
  saved_mask_ = BlockAllSignals();
  LockAcquire();
  if (!g_ready) {  // the destructor ran meanwhile
    LockRelease();
    RestoreSignals(saved_mask_);
    return;
  }
  t_in_hook = true;
  active_ = true;
  if (g_dirty) Resync();
  if (!g_ready) {
    t_in_hook = false;
    active_ = false;
    LockRelease();
    RestoreSignals(saved_mask_);
  }
}

EventScope::~EventScope() {
  if (!active_) return;
  t_in_hook = false;
  LockRelease();
  RestoreSignals(saved_mask_);
}

AddressSpace& EventScope::model() { return *g_model; }

void EventScope::Finish(int64_t kernel_ret, const Outcome& o, bool placement_ok) {
  ++g_count.events[static_cast<int>(call_)];
  ++g_count.events_total;
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
  if (!hit && g_count.records++ < kMaxRecords) {
    Writer w;
    w.Str("vmashadow: result differs at event ").Udec(g_count.events_total).Ch(' ');
    PrintEvent(w, call_, args_);
    w.Str(": kernel ").Ret(kernel_ret).Str(", model ").Ret(o.ret).Ch('\n');
  }
  if (g_model->broken()) g_dirty = true;
  bool check = false;
  if (g_check == CheckMode::kEvery) {
    check = true;
  } else if (g_check == CheckMode::kEveryN) {
    check = g_count.events_total % g_check_every == 0;
  }
  if (check) {
    if (g_dirty) Resync();
    if (g_ready) FullCompare(&call_, args_);
  } else if (!hit) {
    // The model took another path than the kernel: it no longer mirrors it.
    g_dirty = true;
  }
}

void EventScope::LearnShmemInode(uint64_t addr) {
  using abi::ProcmapQuery;
  constexpr uint64_t kProcmapQuery = abi::kProcmapQueryIoctl;
  for (int attempt = 0; attempt < 2; ++attempt) {
    ProcmapQuery q;
    memset(&q, 0, sizeof(q));
    q.size = sizeof(q);
    q.query_addr = addr;
    const int64_t r = RawSyscall6(kSysIoctl, U(g_maps_fd), kProcmapQuery, U(&q));
    if (r == 0) {
      if (q.vma_start <= addr && addr < q.vma_end && q.inode != 0) {
        (void)g_model->SetShmemInode(addr, q.inode, q.dev_major, q.dev_minor);
      }
      return;
    }
    // The application may have closed our fd (and may own that number now:
    // never close it): open a fresh one once.
    g_maps_fd = RawOpen("/proc/self/maps", kORdonly);
  }
}

}  // namespace vmashadow::preload
