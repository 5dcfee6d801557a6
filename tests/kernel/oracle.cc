// oracle.cc — the kernel-oracle harness: seeding the model from /proc/self,
// comparing it with the kernel after every step, reporting and resyncing.
//
// Everything here runs inside the process whose address space is modelled, so
// nothing allocates: buffers are static (bss, faulted in place, never a new
// VMA), output goes through Writer (write(2)), /proc files are read with one
// open/read-loop/close. See oracle.h.
#include "tests/kernel/oracle.h"

#include <cpuid.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>

#include "core/abi/linux_abi.h"
#include "core/procfs/system_facts.h"

namespace vmashadow::oracle {
namespace {

// ---------------------------------------------------------------------------
// Static storage (one Harness per process).

// Sized for a few thousand VMAs (the oracle keeps well below that). They are
// kept small on purpose: mlockall(MCL_CURRENT) populates them, and every smaps
// read then walks their pages.
constexpr size_t kMapsCap = size_t{1} << 20;
constexpr size_t kSmapsCap = size_t{6} << 20;
constexpr size_t kMaxLines = size_t{1} << 13;
constexpr size_t kPathPoolCap = size_t{1} << 19;

char g_kmaps[kMapsCap];
char g_mmaps[kMapsCap];
char g_smaps[kSmapsCap];
char g_misc[size_t{1} << 16];  // /proc/self/stat and status
char g_flag_report[size_t{1} << 14];
size_t g_flag_report_len = 0;

// PAGEMAP_SCAN output, and the runs of mapped pages outside the protected
// ranges (kernel and model) for CheckMm's presence comparison.
struct Run {
  uint64_t lo;
  uint64_t hi;
  bool huge;
};
constexpr size_t kMaxRegions = size_t{1} << 12;
constexpr size_t kMaxRuns = size_t{1} << 14;
abi::PageRegion g_regions[kMaxRegions];
Run g_kruns[kMaxRuns];
Run g_mruns[kMaxRuns];
size_t g_nkruns = 0;
size_t g_nmruns = 0;
bool g_runs_overflow = false;

alignas(Arena) unsigned char g_arena_storage[sizeof(Arena)];
alignas(AddressSpace) unsigned char g_model_storage[sizeof(AddressSpace)];

// One smaps entry.
struct SmapsEntry {
  uint64_t start;
  uint64_t end;
  uint64_t flags;
  uint64_t anon_kb;
  bool has_flags;
  bool flags_complete;
  const char* flags_text;
  size_t flags_len;
};
SmapsEntry g_smaps_entries[kMaxLines];
size_t g_nsmaps = 0;

// What the model knew of one VMA before a resync.
struct SnapVma {
  uint64_t start;
  uint64_t end;
  uint64_t pgoff;
  AnonState anon;
  bool has_file;
  uint64_t file_id;
  uint64_t inode;
  uint32_t dev_major;
  uint32_t dev_minor;
  FileKind kind;
  bool has_close;
  bool fd_readable;
  bool fd_writable;
  bool fd_append;
  bool noexec_mount;
  uint64_t size;
};
// The model when a resync starts, and the model before the step (taken while
// the model still matched the kernel): a step the model got badly wrong can
// lose VMAs whose anon state the earlier copy still knows.
struct Snap {
  SnapVma vmas[kMaxLines];
  size_t n = 0;
};
Snap g_snap;
Snap g_pre_snap;

// Seeding scratch: one FileDesc per line, paths copied NUL-terminated.
FileDesc g_seed_descs[kMaxLines];
char g_path_pool[kPathPoolCap];

// Files seen at seeding (by dev/inode), so reseeding keeps their ids.
struct KnownFile {
  uint64_t inode;
  uint32_t dev_major;
  uint32_t dev_minor;
  uint64_t id;
  FileKind kind;
};
constexpr int kMaxKnownFiles = 4096;
KnownFile g_known_files[kMaxKnownFiles];
int g_nknown_files = 0;

// Line tables for the diff report.
struct LineRef {
  uint32_t off;
  uint32_t len;
};
LineRef g_mlines[kMaxLines];
LineRef g_klines[kMaxLines];

// vm_flags that smaps VmFlags shows (pkey bits are shown elsewhere).
constexpr uint64_t kShownFlags =
    kVmRead | kVmWrite | kVmExec | kVmShared | kVmMayRead | kVmMayWrite | kVmMayExec | kVmMayShare |
    kVmGrowsdown | kVmUffdMissing | kVmPfnmap | kVmUffdWp | kVmLocked | kVmIo | kVmSeqRead |
    kVmRandRead | kVmDontcopy | kVmDontexpand | kVmLockonfault | kVmAccount | kVmNoreserve |
    kVmHugetlb | kVmSync | kVmArch1 | kVmWipeonfork | kVmDontdump | kVmMixedmap | kVmHugepage |
    kVmNohugepage | kVmMergeable | kVmShadowStack | kVmUffdMinor | kVmDroppable | kVmMaybeGuard |
    kVmSealed;

size_t SplitLines(const char* text, size_t len, LineRef* out, size_t cap) {
  size_t n = 0;
  size_t i = 0;
  while (i < len && n < cap) {
    size_t j = i;
    while (j < len && text[j] != '\n') ++j;
    out[n].off = static_cast<uint32_t>(i);
    out[n].len = static_cast<uint32_t>(j - i);
    ++n;
    i = j + 1;
  }
  return n;
}

bool ParseHex(const char*& p, const char* end, uint64_t* out) {
  uint64_t v = 0;
  const char* s = p;
  while (p < end) {
    const char c = *p;
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      d = c - 'A' + 10;
    } else {
      break;
    }
    v = v * 16 + static_cast<uint64_t>(d);
    ++p;
  }
  *out = v;
  return p != s;
}

bool ParseDec(const char*& p, const char* end, uint64_t* out) {
  uint64_t v = 0;
  const char* s = p;
  while (p < end && *p >= '0' && *p <= '9') {
    v = v * 10 + static_cast<uint64_t>(*p - '0');
    ++p;
  }
  *out = v;
  return p != s;
}

bool StartsWith(const char* p, const char* end, const char* prefix) {
  const size_t n = strlen(prefix);
  return static_cast<size_t>(end - p) >= n && memcmp(p, prefix, n) == 0;
}

// Parses smaps text into g_smaps_entries.
void ParseSmaps(const char* text, size_t len) {
  g_nsmaps = 0;
  const char* p = text;
  const char* end = text + len;
  SmapsEntry* cur = nullptr;
  while (p < end) {
    const char* eol = static_cast<const char*>(memchr(p, '\n', static_cast<size_t>(end - p)));
    if (eol == nullptr) eol = end;
    const char c = *p;
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) {
      // A header line: "start-end perms ...".
      const char* q = p;
      uint64_t s = 0;
      uint64_t e = 0;
      if (ParseHex(q, eol, &s) && q < eol && *q == '-' && (++q, ParseHex(q, eol, &e)) &&
          g_nsmaps < kMaxLines) {
        cur = &g_smaps_entries[g_nsmaps++];
        *cur = SmapsEntry{s, e, 0, 0, false, false, nullptr, 0};
      } else {
        cur = nullptr;
      }
    } else if (cur != nullptr && StartsWith(p, eol, "Anonymous:")) {
      const char* q = p + 10;
      while (q < eol && *q == ' ') ++q;
      ParseDec(q, eol, &cur->anon_kb);
    } else if (cur != nullptr && StartsWith(p, eol, "VmFlags:")) {
      const char* q = p + 8;
      while (q < eol && *q == ' ') ++q;
      cur->flags_text = q;
      cur->flags_len = static_cast<size_t>(eol - q);
      cur->flags_complete = ParseVmFlags(q, cur->flags_len, &cur->flags);
      cur->has_flags = true;
    }
    p = eol + 1;
  }
}

bool NameIs(const MapsLine& l, const char* name) {
  const size_t n = strlen(name);
  return l.name_len == n && memcmp(l.name, name, n) == 0;
}

const SmapsEntry* FindSmaps(uint64_t start, size_t* hint) {
  size_t i = *hint;
  while (i < g_nsmaps && g_smaps_entries[i].start < start) ++i;
  *hint = i;
  if (i < g_nsmaps && g_smaps_entries[i].start == start) return &g_smaps_entries[i];
  return nullptr;
}

const SnapVma* FindSnap(const Snap& snap, uint64_t addr) {
  size_t lo = 0;
  size_t hi = snap.n;
  while (lo < hi) {
    const size_t mid = (lo + hi) / 2;
    if (snap.vmas[mid].end <= addr) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo < snap.n && snap.vmas[lo].start <= addr) return &snap.vmas[lo];
  return nullptr;
}

// What a snapshot knew of the VMA now at line l (same kind of backing).
const SnapVma* FindSnapFor(const MapsLine& l, bool is_file) {
  for (const Snap* snap : {&g_snap, &g_pre_snap}) {
    const SnapVma* s = FindSnap(*snap, l.start);
    if (s != nullptr && s->has_file == is_file &&
        (!is_file ||
         (s->inode == l.inode && s->dev_major == l.dev_major && s->dev_minor == l.dev_minor))) {
      return s;
    }
  }
  return nullptr;
}

KnownFile* FindKnownFile(uint32_t maj, uint32_t min, uint64_t inode) {
  for (int i = 0; i < g_nknown_files; ++i) {
    KnownFile& k = g_known_files[i];
    if (k.inode == inode && k.dev_major == maj && k.dev_minor == min) return &k;
  }
  return nullptr;
}

// Fields of /proc/self/stat (1-based field numbers as in proc(5)).
bool ReadStatFields(uint64_t* start_stack, uint64_t* start_data, uint64_t* end_data,
                    uint64_t* start_brk, ProcStat* all = nullptr) {
  const int64_t n = ReadWholeFile("/proc/self/stat", g_misc, sizeof(g_misc));
  ProcStat st;
  if (n <= 0 || !ParseProcStat(g_misc, static_cast<size_t>(n), &st)) return false;
  if (all != nullptr) *all = st;
  *start_stack = st.start_stack;
  *start_data = st.start_data;
  *end_data = st.end_data;
  *start_brk = st.start_brk;
  return true;
}

uint64_t NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000 + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t RlimitBytes(int resource) {
  struct rlimit r;
  if (getrlimit(resource, &r) != 0) return kUnlimited;
  return r.rlim_cur == RLIM_INFINITY ? kUnlimited : static_cast<uint64_t>(r.rlim_cur);
}

}  // namespace

// ---------------------------------------------------------------------------
// Writer.

Writer& Writer::Mem(const char* s, size_t n) {
  while (n > 0) {
    if (len_ == sizeof(buf_)) Flush();
    size_t k = sizeof(buf_) - len_;
    if (k > n) k = n;
    memcpy(buf_ + len_, s, k);
    len_ += k;
    s += k;
    n -= k;
  }
  return *this;
}

Writer& Writer::Str(const char* s) { return Mem(s, s == nullptr ? 0 : strlen(s)); }

Writer& Writer::Ch(char c) { return Mem(&c, 1); }

Writer& Writer::Udec(uint64_t v) {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  char out[24];
  for (int i = 0; i < n; ++i) out[i] = tmp[n - 1 - i];
  return Mem(out, static_cast<size_t>(n));
}

Writer& Writer::Dec(int64_t v) {
  if (v < 0) {
    Ch('-');
    return Udec(static_cast<uint64_t>(0) - static_cast<uint64_t>(v));
  }
  return Udec(static_cast<uint64_t>(v));
}

Writer& Writer::DecW(int64_t v, int width) {
  char tmp[24];
  int n = 0;
  uint64_t u =
      v < 0 ? static_cast<uint64_t>(0) - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  do {
    tmp[n++] = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u != 0);
  if (v < 0) tmp[n++] = '-';
  for (int i = n; i < width; ++i) Ch(' ');
  for (int i = n - 1; i >= 0; --i) Ch(tmp[i]);
  return *this;
}

Writer& Writer::Hex(uint64_t v) {
  char tmp[16];
  int n = 0;
  do {
    tmp[n++] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v != 0);
  Mem("0x", 2);
  for (int i = n - 1; i >= 0; --i) Ch(tmp[i]);
  return *this;
}

Writer& Writer::Ret(int64_t v) {
  if (v < 0 && v >= -4095) {
    Ch('-');
    return Str(ErrnoName(static_cast<int>(-v)));
  }
  if (v >= 0 && v < 65536) return Dec(v);
  return Hex(static_cast<uint64_t>(v));
}

Writer& Writer::Line(const char* s, size_t n) {
  size_t k = 0;
  while (k < n && s[k] != '\n') ++k;
  return Mem(s, k);
}

void Writer::Flush() {
  size_t off = 0;
  while (off < len_) {
    const ssize_t r = write(fd_, buf_ + off, len_ - off);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    off += static_cast<size_t>(r);
  }
  len_ = 0;
}

const char* ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : "E?";
}

// ---------------------------------------------------------------------------
// Files.

int64_t ReadWholeFile(const char* path, char* buf, size_t cap) {
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  size_t n = 0;
  while (true) {
    if (n + 1 >= cap) {
      close(fd);
      return -E2BIG;
    }
    const ssize_t r = read(fd, buf + n, cap - 1 - n);
    if (r < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      close(fd);
      return -e;
    }
    if (r == 0) break;
    n += static_cast<size_t>(r);
  }
  close(fd);
  buf[n] = '\0';
  return static_cast<int64_t>(n);
}

int64_t ReadSysctl(const char* path) {
  char buf[64];
  const int64_t n = ReadWholeFile(path, buf, sizeof(buf));
  if (n < 0) return n;
  const char* p = buf;
  while (*p == ' ' || *p == '\t') ++p;
  uint64_t v = 0;
  if (!ParseDec(p, buf + n, &v)) return -EINVAL;
  return static_cast<int64_t>(v);
}

int WriteSysctl(const char* path, int64_t value) {
  const int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  char buf[32];
  int n = 0;
  char tmp[24];
  uint64_t u = static_cast<uint64_t>(value);
  int k = 0;
  do {
    tmp[k++] = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u != 0);
  while (k > 0) buf[n++] = tmp[--k];
  buf[n++] = '\n';
  const ssize_t r = write(fd, buf, static_cast<size_t>(n));
  const int e = errno;
  close(fd);
  return r == n ? 0 : -(r < 0 ? e : EIO);
}

// ---------------------------------------------------------------------------
// Harness: construction and seeding.

Harness::Harness(void* arena, size_t arena_size, const Options& options) : options_(options) {
  if (options_.profile == nullptr) options_.profile = &DefaultKernelProfile();
  arena_ = new (g_arena_storage) Arena(arena, arena_size);
  model_ = new (g_model_storage) AddressSpace(arena_, *options_.profile, params_);
  kmaps_ = g_kmaps;
  mmaps_ = g_mmaps;
}

__attribute__((noinline)) void Harness::PrepareProcess(size_t stack_bytes) {
  volatile char* p = static_cast<volatile char*>(__builtin_alloca(stack_bytes));
  for (size_t i = 0; i < stack_bytes; i += kPageSize) p[i] = 0;
  // One write gives the bss its anon_vma; the rest is faulted in on use.
  static_cast<volatile char*>(g_kmaps)[0] = 0;
}

int Harness::ReadMmParams(const char* maps, size_t maps_len, MmParams* out) {
  SystemFacts f;
  f.mmap_min_addr = ReadSysctl("/proc/sys/vm/mmap_min_addr");
  f.max_map_count = ReadSysctl("/proc/sys/vm/max_map_count");
  f.overcommit_memory = ReadSysctl("/proc/sys/vm/overcommit_memory");
  f.legacy_va_layout = ReadSysctl("/proc/sys/vm/legacy_va_layout");
  f.personality = personality(0xffffffff);
  unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
  f.ospke = __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 4)) != 0;
  f.rlimit_memlock = RlimitBytes(RLIMIT_MEMLOCK);
  f.rlimit_data = RlimitBytes(RLIMIT_DATA);
  f.rlimit_as = RlimitBytes(RLIMIT_AS);
  f.rlimit_stack = RlimitBytes(RLIMIT_STACK);
  // status and stat share the scratch buffer, one half each.
  const size_t half = sizeof(g_misc) / 2;
  const int64_t sn = ReadWholeFile("/proc/self/status", g_misc, half);
  if (sn > 0) {
    f.status = g_misc;
    f.status_len = static_cast<size_t>(sn);
  }
  const int64_t tn = ReadWholeFile("/proc/self/stat", g_misc + half, half);
  if (tn <= 0) return -EIO;
  f.stat = g_misc + half;
  f.stat_len = static_cast<size_t>(tn);
  f.maps = maps;
  f.maps_len = maps_len;
  // Page tables: THP settings, LA57, NX, the THP prctl.
  static char thp_enabled[128];
  static char thp_pmd_enabled[128];
  if (ReadWholeFile("/sys/kernel/mm/transparent_hugepage/enabled", thp_enabled,
                    sizeof(thp_enabled)) > 0) {
    f.thp_enabled = thp_enabled;
  }
  if (ReadWholeFile("/sys/kernel/mm/transparent_hugepage/hugepages-2048kB/enabled", thp_pmd_enabled,
                    sizeof(thp_pmd_enabled)) > 0) {
    f.thp_pmd_enabled = thp_pmd_enabled;
  }
  f.thp_use_zero_page = ReadSysctl("/sys/kernel/mm/transparent_hugepage/use_zero_page");
  // The kernel clears the la57 CPU flag when it does not use 5-level paging.
  static char cpuinfo[size_t{1} << 18];
  const int64_t cn = ReadWholeFile("/proc/cpuinfo", cpuinfo, sizeof(cpuinfo));
  f.la57 = cn > 0 && (strstr(cpuinfo, " la57 ") != nullptr || strstr(cpuinfo, " la57\n"));
  f.nx = __get_cpuid(0x80000001, &eax, &ebx, &ecx, &edx) && (edx & (1u << 20)) != 0;
  f.thp_disabled = prctl(42 /* PR_GET_THP_DISABLE */, 0, 0, 0, 0) == 1;
  return MmParamsFromFacts(f, out, nullptr);
}

void Harness::RegisterFile(const FileDesc* d) {
  for (int i = 0; i < nfiles_; ++i) {
    if (files_[i] == d) return;
  }
  if (nfiles_ < kMaxFiles) files_[nfiles_++] = d;
}

void Harness::SetMaxMapCount(uint64_t value) {
  params_.max_map_count = value;
  model_->set_params(params_);
}

void Harness::ExpectNewShmem(uint64_t addr) {
  if (nshmem_pending_ < kMaxShmemPending) shmem_pending_[nshmem_pending_++] = addr;
}

bool Harness::Protected(uint64_t start, uint64_t end) const {
  if (end <= start) end = start + 1;
  // protected_ is sorted and disjoint.
  int lo = 0;
  int hi = nprotected_;
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    if (protected_[mid][1] <= start) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo < nprotected_ && protected_[lo][0] < end;
}

int Harness::SeedFromSelf(bool fork_child) {
  Writer w(options_.out_fd);
  const int64_t mn = ReadWholeFile("/proc/self/maps", g_kmaps, kMapsCap);
  const int64_t sn = ReadWholeFile("/proc/self/smaps", g_smaps, kSmapsCap);
  if (mn <= 0 || sn <= 0) {
    w.Str("kernel-oracle: cannot read /proc/self/maps or smaps: ").Ret(mn <= 0 ? mn : sn).Ch('\n');
    return mn <= 0 ? static_cast<int>(mn) : static_cast<int>(sn);
  }
  kmaps_len_ = static_cast<size_t>(mn);
  const int pr = ReadMmParams(g_kmaps, kmaps_len_, &params_);
  if (pr != 0) {
    w.Str("kernel-oracle: cannot read the mm parameters: ").Ret(pr).Ch('\n');
    return pr;
  }
  model_->set_params(params_);
  g_snap.n = 0;
  g_pre_snap.n = 0;
  g_nknown_files = 0;
  const int r = SeedFromText(g_kmaps, kmaps_len_, g_smaps, static_cast<size_t>(sn), fork_child,
                             /*use_snapshot=*/false);
  if (r != 0) return r;

  // Protected ranges: every seeded VMA, the stack's growth area and guard
  // gap, and the brk area up to the current break.
  nprotected_ = 0;
  size_t i = 0;
  uint64_t tmp[kMaxProtected][2];
  int n = 0;
  while (i < kmaps_len_ && n < kMaxProtected - 2) {
    size_t j = i;
    while (j < kmaps_len_ && g_kmaps[j] != '\n') ++j;
    MapsLine l;
    if (ParseMapsLine(g_kmaps + i, j - i, &l) && l.end <= params_.task_size) {
      uint64_t s = l.start;
      if (l.start <= start_stack_ && start_stack_ <= l.end) {
        const uint64_t below =
            params_.rlimit_stack == kUnlimited ? (uint64_t{64} << 20) : params_.rlimit_stack;
        const uint64_t span = below + params_.stack_guard_gap + (uint64_t{1} << 20);
        s = l.start > span ? l.start - span : 0;
      }
      tmp[n][0] = s;
      tmp[n][1] = l.end;
      ++n;
    }
    i = j + 1;
  }
  if (model_->brk() > model_->start_brk()) {
    tmp[n][0] = PageDown(model_->start_brk());
    tmp[n][1] = PageAlign(model_->brk());
    ++n;
  }
  // Sort (insertion sort: the maps order is nearly sorted) and merge.
  for (int a = 1; a < n; ++a) {
    uint64_t s = tmp[a][0], e = tmp[a][1];
    int b = a - 1;
    while (b >= 0 && tmp[b][0] > s) {
      tmp[b + 1][0] = tmp[b][0];
      tmp[b + 1][1] = tmp[b][1];
      --b;
    }
    tmp[b + 1][0] = s;
    tmp[b + 1][1] = e;
  }
  for (int a = 0; a < n; ++a) {
    if (nprotected_ > 0 && tmp[a][0] <= protected_[nprotected_ - 1][1]) {
      if (tmp[a][1] > protected_[nprotected_ - 1][1]) protected_[nprotected_ - 1][1] = tmp[a][1];
    } else {
      protected_[nprotected_][0] = tmp[a][0];
      protected_[nprotected_][1] = tmp[a][1];
      ++nprotected_;
    }
  }

  // The model must render exactly what it was seeded from.
  mmaps_len_ = RenderMaps(*model_, mmaps_, kMapsCap);
  if (mmaps_len_ != kmaps_len_ || memcmp(mmaps_, kmaps_, kmaps_len_) != 0) {
    w.Str(
        "kernel-oracle: the seeded model does not render as /proc/self/maps "
        "(RenderMaps/SeedVma problem):\n");
    ReportMapsDiff(w);
    ++counters().mismatches;
    ++counters().maps_mismatches;
    return -EPROTO;
  }
  const char* verr = model_->Validate();
  if (verr != nullptr) {
    w.Str("kernel-oracle: Validate() fails right after seeding: ").Str(verr).Ch('\n');
    ++counters().mismatches;
    ++counters().validate_failures;
    return -EPROTO;
  }
  return 0;
}

void Harness::Snapshot(bool pre_step) {
  Snap& snap = pre_step ? g_pre_snap : g_snap;
  snap.n = 0;
  for (const Vma* v = model_->tree().First(); v != nullptr && snap.n < kMaxLines; v = v->next) {
    SnapVma& s = snap.vmas[snap.n++];
    s = SnapVma{};
    s.start = v->start;
    s.end = v->end;
    s.pgoff = v->pgoff;
    s.anon = v->anon;
    s.has_file = v->file != nullptr;
    if (v->file != nullptr) {
      const File* f = v->file;
      s.file_id = f->id;
      s.inode = f->inode;
      s.dev_major = f->dev_major;
      s.dev_minor = f->dev_minor;
      s.kind = f->kind;
      s.has_close = f->has_close;
      s.fd_readable = f->fd_readable;
      s.fd_writable = f->fd_writable;
      s.fd_append = f->fd_append;
      s.noexec_mount = f->noexec_mount;
      s.size = f->size;
    }
  }
}

int Harness::SeedFromText(const char* maps, size_t maps_len, const char* smaps, size_t smaps_len,
                          bool fork_child, bool use_snapshot) {
  Writer w(options_.out_fd);
  ParseSmaps(smaps, smaps_len);
  if (use_snapshot) {
    Snapshot(/*pre_step=*/false);
  } else {
    g_snap.n = 0;
    g_pre_snap.n = 0;
  }
  for (const Snap* snap : {&g_snap, &g_pre_snap}) {
    for (size_t k = 0; k < snap->n; ++k) {
      const uint64_t id = snap->vmas[k].anon.anon_vma;
      if (id >= next_anon_id_) next_anon_id_ = id + 1;
    }
  }
  model_->Clear();
  model_->SetHasGateVma(false);
  size_t path_used = 0;
  size_t ndesc = 0;
  size_t smaps_hint = 0;
  size_t i = 0;
  size_t line_no = 0;
  while (i < maps_len) {
    size_t j = i;
    while (j < maps_len && maps[j] != '\n') ++j;
    ++line_no;
    MapsLine l;
    if (!ParseMapsLine(maps + i, j - i, &l)) {
      w.Str("kernel-oracle: ParseMapsLine rejects line ").Udec(line_no).Str(": ");
      w.Line(maps + i, j - i).Ch('\n');
      return -EINVAL;
    }
    const char* line_ptr = maps + i;
    const size_t line_len = j - i;
    i = j + 1;
    const SpecialKind special = SpecialKindFromName(l.name, l.name_len);
    if (special == SpecialKind::kVsyscall) {
      model_->SetHasGateVma(true);
      continue;
    }
    const SmapsEntry* se = FindSmaps(l.start, &smaps_hint);
    VmaSeed seed;
    seed.start = l.start;
    seed.end = l.end;
    seed.flags = (se != nullptr && se->has_flags && se->end == l.end) ? se->flags
                                                                      : GuessFlagsFromMapsLine(l);
    seed.special = special;
    const bool is_file = special == SpecialKind::kNone && l.inode != 0;
    const SnapVma* snap = use_snapshot ? FindSnapFor(l, is_file) : nullptr;
    const bool bracket_name = l.name_len > 1 && l.name[0] == '[';
    if (special == SpecialKind::kNone && !is_file && bracket_name && !NameIs(l, "[heap]") &&
        !NameIs(l, "[stack]")) {
      seed.special = SpecialKind::kOtherSpecial;
    }
    if (path_used + l.name_len + 1 > kPathPoolCap || ndesc >= kMaxLines) {
      w.Str("kernel-oracle: too many maps lines to seed\n");
      return -E2BIG;
    }
    char* path = g_path_pool + path_used;
    memcpy(path, l.name, l.name_len);
    path[l.name_len] = '\0';
    path_used += l.name_len + 1;
    if (seed.special == SpecialKind::kOtherSpecial) seed.special_name = path;

    if (is_file) {
      FileDesc& d = g_seed_descs[ndesc++];
      d = FileDesc{};
      d.inode = l.inode;
      d.dev_major = l.dev_major;
      d.dev_minor = l.dev_minor;
      d.deleted = l.deleted;
      d.path = path;
      const bool shmem_dev = l.dev_major == 0 && l.dev_minor == 1;
      d.kind = shmem_dev ? FileKind::kShmem : FileKind::kRegular;
      const FileDesc* reg = nullptr;
      for (int k = 0; k < nfiles_ && reg == nullptr; ++k) {
        const FileDesc* f = files_[k];
        if (f->inode == l.inode && f->dev_major == l.dev_major && f->dev_minor == l.dev_minor) {
          reg = f;
        }
      }
      if (snap != nullptr && snap->has_file && snap->inode == l.inode &&
          snap->dev_major == l.dev_major && snap->dev_minor == l.dev_minor) {
        d.id = snap->file_id;
        d.kind = snap->kind;
        d.has_close = snap->has_close;
        d.readable = snap->fd_readable;
        d.writable = snap->fd_writable;
        d.append = snap->fd_append;
        d.noexec_mount = snap->noexec_mount;
        d.size = snap->size;
      } else if (reg != nullptr) {
        d.id = reg->id;
        d.kind = reg->kind;
        d.has_close = reg->has_close;
        d.readable = reg->readable;
        d.writable = reg->writable;
        d.append = reg->append;
        d.noexec_mount = reg->noexec_mount;
        d.size = reg->size;
      } else if (KnownFile* k = FindKnownFile(l.dev_major, l.dev_minor, l.inode)) {
        d.id = k->id;
        d.kind = k->kind;
      } else {
        d.id = next_file_id_++;
        d.writable = l.perms[3] == 's' && l.perms[1] == 'w';
        if (g_nknown_files < kMaxKnownFiles) {
          g_known_files[g_nknown_files++] =
              KnownFile{l.inode, l.dev_major, l.dev_minor, d.id, d.kind};
        }
      }
      seed.file = &d;
      seed.pgoff = l.offset >> kPageShift;
    } else if (seed.special != SpecialKind::kNone) {
      seed.pgoff = l.offset >> kPageShift;
    } else if (snap != nullptr && !snap->has_file) {
      seed.pgoff = snap->pgoff + ((l.start - snap->start) >> kPageShift);
    } else {
      seed.pgoff = l.start >> kPageShift;
    }

    // anon_vma: what the model knew, else one for any VMA with anonymous
    // pages (a private VMA holding anonymous pages must have one).
    const bool kernel_has_anon = se != nullptr && se->anon_kb > 0;
    if (snap != nullptr && snap->anon.anon_vma != 0 && (snap->has_file == is_file) &&
        (!is_file || snap->inode == l.inode)) {
      seed.anon = snap->anon;
    } else if (kernel_has_anon) {
      // When reseeding: the model had this VMA but missed its anon_vma, so
      // the kernel made it in this process (not a fork child), unless it is
      // the harness's own memory (inherited from the parent).
      bool fc = fork_child;
      if (use_snapshot) {
        fc = Protected(l.start, l.end) || (all_fork_children_ && snap == nullptr);
      }
      seed.anon = AnonState{next_anon_id_++, fc};
      // The model missed this anon_vma. Where the kernel would have shared
      // the previous VMA's (find_mergeable_anon_vma(), or a split of one VMA:
      // adjacent, same file, flags equal but for RWX, pgoff contiguous),
      // assume it did.
      const Vma* prev = use_snapshot ? model_->FindVma(l.start - 1) : nullptr;
      if (prev != nullptr && prev->end == l.start && prev->anon.anon_vma != 0 &&
          !prev->anon.fork_child && (prev->file == nullptr) == !is_file &&
          (!is_file || prev->file->inode == l.inode) &&
          ((prev->flags ^ seed.flags) & ~kVmRwx) == 0 &&
          prev->pgoff + prev->pages() == seed.pgoff) {
        seed.anon = prev->anon;
      }
    }
    const int r = model_->SeedVma(seed);
    if (r != 0) {
      w.Str("kernel-oracle: SeedVma fails (").Ret(r).Str(") for line ").Udec(line_no).Str(": ");
      w.Line(line_ptr, line_len).Ch('\n');
      return r;
    }
  }
  uint64_t start_stack = 0, start_data = 0, end_data = 0, start_brk = 0;
  ProcStat st;
  if (!ReadStatFields(&start_stack, &start_data, &end_data, &start_brk, &st)) {
    w.Str("kernel-oracle: cannot parse /proc/self/stat\n");
    return -EIO;
  }
  model_->SetCodeRange(st.start_code, st.end_code);
  start_stack_ = start_stack;
  const uint64_t brk = static_cast<uint64_t>(syscall(SYS_brk, 0));
  model_->SetBrkState(start_brk, brk);
  model_->SetStartStack(start_stack);
  if (lockall_future_ != 0) {
    const Outcome o = model_->LockAll(lockall_future_ & (abi::kMclFuture | abi::kMclOnfault));
    (void)o;
  }
  return 0;
}

void Harness::Resync(const char* why) {
  ++counters().resyncs;
  last_resync_step_ = cur_.index;
  last_flags_step_ = cur_.index;
  Writer w(options_.out_fd);
  const int64_t mn = ReadWholeFile("/proc/self/maps", g_kmaps, kMapsCap);
  const int64_t sn = ReadWholeFile("/proc/self/smaps", g_smaps, kSmapsCap);
  if (mn <= 0 || sn <= 0) {
    w.Str("kernel-oracle: resync: cannot read /proc/self/maps or smaps\n");
    return;
  }
  kmaps_len_ = static_cast<size_t>(mn);
  const int r = SeedFromText(g_kmaps, kmaps_len_, g_smaps, static_cast<size_t>(sn),
                             all_fork_children_, /*use_snapshot=*/true);
  nshmem_pending_ = 0;
  mmaps_len_ = RenderMaps(*model_, mmaps_, kMapsCap);
  const bool same = r == 0 && mmaps_len_ == kmaps_len_ && memcmp(mmaps_, kmaps_, kmaps_len_) == 0;
  if (options_.verbose || !same) {
    w.Str("  resynchronised the model from the kernel (").Str(why).Str(")\n");
  }
  if (!same) {
    w.Str("  the reseeded model still renders differently (seeding/rendering problem):\n");
    ReportMapsDiff(w);
  }
}

// ---------------------------------------------------------------------------
// Steps.

namespace {
Harness* g_watched = nullptr;

void OnWatchdog(int, siginfo_t*, void* uctx) {
  Harness* h = g_watched;
  const auto* uc = static_cast<const ucontext_t*>(uctx);
  Writer w(h != nullptr ? h->options().out_fd : 1);
  w.Str("\nkernel-oracle: HANG: a step did not finish within ");
  w.Udec(h != nullptr ? h->options().watchdog_sec : 0).Str(" s (seed ");
  w.Udec(h != nullptr ? h->options().seed : 0).Str("); interrupted at ");
  if (h != nullptr) {
    h->PrintCodeAddress(w, static_cast<uint64_t>(uc->uc_mcontext.gregs[REG_RIP]));
    w.Str("\n  last steps:\n");
    h->PrintOpLog(w, 30);
    Harness::PrintOp(w, h->current(),
                     "  the step in progress (its model call or the comparison hung): ");
  }
  w.Flush();
  _exit(3);
}
}  // namespace

void Harness::InstallWatchdog() {
  g_watched = this;
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_sigaction = OnWatchdog;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGALRM, &sa, nullptr);
}

void Harness::PrintCodeAddress(Writer& w, uint64_t pc) {
  w.Hex(pc);
  MapsLine l;
  if (ReadKernelMaps() > 0 && KernelLineAt(pc, &l) && l.name_len > 0) {
    // The file's load base is start - offset of the VMA holding pc.
    w.Str(" (").Mem(l.name, l.name_len).Ch('+').Hex(pc - (l.start - l.offset)).Ch(')');
  }
}

void Harness::Begin(const char* name, std::initializer_list<uint64_t> args) {
  if (options_.watchdog_sec != 0 && g_watched == this) alarm(options_.watchdog_sec);
  if (!pre_snap_valid_) {
    Snapshot(/*pre_step=*/true);
    pre_snap_valid_ = true;
  }
  cur_ = OpRecord{};
  cur_.index = step_ + 1;
  cur_.name = name;
  int n = 0;
  for (uint64_t a : args) {
    if (n < 6) cur_.args[n++] = a;
  }
  cur_.nargs = n;
  if (options_.verbose) {
    // Before the call, so that a step that kills the process is on record.
    Writer w(options_.out_fd);
    PrintOp(w, cur_, "  > ");
  }
  result_bad_ = false;
  result_what_ = nullptr;
}

void Harness::Result(int64_t kernel_ret, const Outcome& model, RetKind kind) {
  Counters& c = counters();
  cur_.kernel_ret = kernel_ret;
  cur_.model_ret = model.ret;
  cur_.has_result = true;
  ++c.results;
  const bool is_err = kernel_ret < 0 || model.ret < 0;
  const bool placement = kind == RetKind::kPlacement && kernel_ret >= 0 && model.ret >= 0;
  if (is_err) ++c.errnos;
  if (placement) ++c.placements;
  if (kernel_ret == model.ret) {
    ++c.results_hit;
    if (is_err) ++c.errnos_hit;
    if (placement) ++c.placements_hit;
    return;
  }
  result_bad_ = true;
  ++c.result_mismatches;
  if (placement) {
    result_what_ = "placement differs";
  } else if (is_err) {
    result_what_ = "errno differs";
  } else {
    result_what_ = "return value differs";
  }
}

int64_t Harness::ReadKernelMaps() {
  const uint64_t t0 = NowNs();
  const int64_t n = ReadWholeFile("/proc/self/maps", g_kmaps, kMapsCap);
  counters().ns_kernel_maps += NowNs() - t0;
  kmaps_len_ = n > 0 ? static_cast<size_t>(n) : 0;
  return n;
}

bool Harness::KernelLineAt(uint64_t addr, MapsLine* out) const {
  size_t i = 0;
  while (i < kmaps_len_) {
    const char* p = kmaps_ + i;
    const char* end = kmaps_ + kmaps_len_;
    const char* eol = static_cast<const char*>(memchr(p, '\n', static_cast<size_t>(end - p)));
    if (eol == nullptr) eol = end;
    const char* q = p;
    uint64_t s = 0, e = 0;
    if (ParseHex(q, eol, &s) && q < eol && *q == '-' && (++q, ParseHex(q, eol, &e))) {
      if (s > addr) return false;
      if (addr < e) return ParseMapsLine(p, static_cast<size_t>(eol - p), out);
    }
    i = static_cast<size_t>(eol - kmaps_) + 1;
  }
  return false;
}

void Harness::ApplyFixups() {
  // The main stack grows without a syscall: take its start from the kernel.
  MapsLine l;
  if (start_stack_ != 0 && KernelLineAt(start_stack_, &l)) {
    const Vma* v = model_->FindVma(start_stack_);
    if (v != nullptr && v->start > l.start) {
      (void)model_->ReconcileGrowsdown(start_stack_, l.start);
    }
  }
  // Shared anonymous mappings: the kernel picked the shmem inode.
  for (int k = 0; k < nshmem_pending_; ++k) {
    const uint64_t addr = shmem_pending_[k];
    const Vma* v = model_->FindVma(addr);
    if (v != nullptr && v->start <= addr && v->file != nullptr &&
        v->file->kind == FileKind::kShmem && v->file->inode == 0 && KernelLineAt(addr, &l) &&
        l.inode != 0) {
      (void)model_->SetShmemInode(addr, l.inode, l.dev_major, l.dev_minor);
    }
  }
  nshmem_pending_ = 0;
}

bool Harness::CompareFlags() {
  g_flag_report_len = 0;
  const uint64_t t0 = NowNs();
  const int64_t sn = ReadWholeFile("/proc/self/smaps", g_smaps, kSmapsCap);
  counters().ns_smaps += NowNs() - t0;
  if (sn <= 0) return true;
  ParseSmaps(g_smaps, static_cast<size_t>(sn));
  ++counters().flag_compares;
  bool ok = true;
  int shown = 0;
  // Builds the report text in g_flag_report (printed by End()).
  auto add = [&](const char* s, size_t n) {
    if (g_flag_report_len + n < sizeof(g_flag_report)) {
      memcpy(g_flag_report + g_flag_report_len, s, n);
      g_flag_report_len += n;
    }
  };
  auto add_str = [&](const char* s) { add(s, strlen(s)); };
  auto add_hex = [&](uint64_t v) {
    char tmp[17];
    int n = 0;
    do {
      tmp[n++] = "0123456789abcdef"[v & 15];
      v >>= 4;
    } while (v != 0);
    char out[17];
    for (int k = 0; k < n; ++k) out[k] = tmp[n - 1 - k];
    add(out, static_cast<size_t>(n));
  };
  for (size_t k = 0; k < g_nsmaps; ++k) {
    const SmapsEntry& e = g_smaps_entries[k];
    if (!e.has_flags) continue;
    const Vma* v = model_->FindVma(e.start);
    if (v == nullptr || v->start != e.start || v->end != e.end) continue;  // maps differ
    const uint64_t mf = v->flags & kShownFlags;
    const uint64_t kf = e.flags & kShownFlags;
    const bool flags_bad = mf != kf;
    const bool anon_bad = !(v->flags & kVmShared) && e.anon_kb > 0 && v->anon.anon_vma == 0;
    // The whole line, byte for byte, as RenderVmFlagsLine() prints it.
    char line[256];
    const size_t ln = RenderVmFlagsLine(*v, line, sizeof(line));
    ++counters().vmflags_line_compares;
    const bool line_bad = ln != 9 + e.flags_len + 1 || ln >= sizeof(line) ||
                          memcmp(line, "VmFlags: ", 9) != 0 ||
                          memcmp(line + 9, e.flags_text, e.flags_len) != 0 || line[ln - 1] != '\n';
    if (line_bad) ++counters().vmflags_line_mismatches;
    if (!flags_bad && !anon_bad && !line_bad) continue;
    ok = false;
    if (++shown > 8) continue;
    add_str("    ");
    add_hex(e.start);
    add_str("-");
    add_hex(e.end);
    if (flags_bad) {
      char buf[256];
      size_t n = RenderVmFlags(mf, buf, sizeof(buf));
      if (n >= sizeof(buf)) n = sizeof(buf) - 1;
      add_str(" VmFlags differ: model \"");
      add(buf, n);
      add_str("\" kernel \"");
      add(e.flags_text, e.flags_len);
      add_str("\"");
      if (!e.flags_complete) add_str(" (kernel shows a mnemonic ParseVmFlags does not know)");
    } else if (line_bad) {
      add_str(" VmFlags line differs: model \"");
      add(line, ln > 0 && ln < sizeof(line) ? ln - 1 : 0);
      add_str("\" kernel \"VmFlags: ");
      add(e.flags_text, e.flags_len);
      add_str("\"");
    }
    if (anon_bad) {
      add_str(" model has no anon_vma but the kernel shows ");
      char num[24];
      int n = 0;
      uint64_t a = e.anon_kb;
      do {
        num[n++] = static_cast<char>('0' + a % 10);
        a /= 10;
      } while (a != 0);
      for (int q = n - 1; q >= 0; --q) add(&num[q], 1);
      add_str(" kB Anonymous");
    }
    add_str("\n");
  }
  return ok;
}

bool Harness::ReportAllowed() {
  if (counters().reports > options_.max_reports) return false;
  ++counters().reports;
  if (counters().reports > options_.max_reports) {
    if (options_.max_reports == 0) return false;
    Writer w(options_.out_fd);
    w.Str(
        "\nkernel-oracle: report limit (--max-reports) reached; further mismatches in this "
        "seed are only counted\n");
    return false;
  }
  return true;
}

void Harness::ReportHeader(Writer& w, const char* what) {
  w.Str("\n=== MISMATCH ").Udec(counters().mismatches).Str(" (seed ").Udec(options_.seed);
  w.Str(", step ").Udec(cur_.index).Str("): ").Str(what).Ch('\n');
  if (last_resync_step_ != 0 && cur_.index - last_resync_step_ <= 64) {
    w.Str("  (").Udec(cur_.index - last_resync_step_);
    w.Str(
        " steps after a resync: the model may lack what the kernel does not show, such as "
        "shared anon_vmas, so this may follow from the earlier mismatch)\n");
  }
  PrintOp(w, cur_, "  step: ");
}

void Harness::PrintOpLog(Writer& w, int max_entries) const {
  const uint64_t n = log_count_ < static_cast<uint64_t>(kLogSize) ? log_count_ : kLogSize;
  const uint64_t show = n < static_cast<uint64_t>(max_entries) ? n : max_entries;
  for (uint64_t k = log_count_ - show; k < log_count_; ++k) {
    PrintOp(w, log_[k % kLogSize], "    ");
  }
}

void Harness::PrintOp(Writer& w, const OpRecord& r, const char* prefix) {
  w.Str(prefix).Ch('#').Udec(r.index).Ch(' ').Str(r.name).Ch('(');
  for (int a = 0; a < r.nargs; ++a) {
    if (a) w.Str(", ");
    w.Hex(r.args[a]);
  }
  w.Ch(')');
  if (r.has_result) {
    w.Str(" = ").Ret(r.kernel_ret);
    if (r.model_ret != r.kernel_ret) w.Str("  [model ").Ret(r.model_ret).Str("]  <-- differs");
  }
  if (r.note != nullptr) w.Str("  (").Str(r.note).Ch(')');
  w.Ch('\n');
}

void Harness::ReportMapsDiff(Writer& w) const {
  const size_t nm = SplitLines(mmaps_, mmaps_len_, g_mlines, kMaxLines);
  const size_t nk = SplitLines(kmaps_, kmaps_len_, g_klines, kMaxLines);
  auto same = [&](size_t a, size_t b) {
    return g_mlines[a].len == g_klines[b].len &&
           memcmp(mmaps_ + g_mlines[a].off, kmaps_ + g_klines[b].off, g_mlines[a].len) == 0;
  };
  size_t p = 0;
  while (p < nm && p < nk && same(p, p)) ++p;
  size_t s = 0;
  while (s < nm - p && s < nk - p && same(nm - 1 - s, nk - 1 - s)) ++s;
  w.Str("  maps: first difference at line ").Udec(p + 1).Str(" (model ").Udec(nm);
  w.Str(" lines, kernel ").Udec(nk).Str(" lines); '-' model only, '+' kernel only:\n");
  const size_t ctx = 3;
  for (size_t k = p > ctx ? p - ctx : 0; k < p; ++k) {
    w.Str("     ").Line(mmaps_ + g_mlines[k].off, g_mlines[k].len).Ch('\n');
  }
  const size_t kMaxShow = 16;
  for (size_t k = p; k < nm - s && k < p + kMaxShow; ++k) {
    w.Str("   - ").Line(mmaps_ + g_mlines[k].off, g_mlines[k].len).Ch('\n');
  }
  if (nm - s > p + kMaxShow) w.Str("   - ... ").Udec(nm - s - p - kMaxShow).Str(" more\n");
  for (size_t k = p; k < nk - s && k < p + kMaxShow; ++k) {
    w.Str("   + ").Line(kmaps_ + g_klines[k].off, g_klines[k].len).Ch('\n');
  }
  if (nk - s > p + kMaxShow) w.Str("   + ... ").Udec(nk - s - p - kMaxShow).Str(" more\n");
  for (size_t k = nm - s; k < nm && k < nm - s + ctx; ++k) {
    w.Str("     ").Line(mmaps_ + g_mlines[k].off, g_mlines[k].len).Ch('\n');
  }
  // Name the fields that differ in the first differing pair (rr's verify()).
  if (p < nm && p < nk) {
    MapsLine a, b;
    if (ParseMapsLine(mmaps_ + g_mlines[p].off, g_mlines[p].len, &a) &&
        ParseMapsLine(kmaps_ + g_klines[p].off, g_klines[p].len, &b)) {
      w.Str("  first pair:");
      if (a.start != b.start) w.Str(" start");
      if (a.end != b.end) w.Str(" end");
      if (memcmp(a.perms, b.perms, 4) != 0) w.Str(" perms");
      if (a.offset != b.offset) w.Str(" offset");
      if (a.dev_major != b.dev_major || a.dev_minor != b.dev_minor) w.Str(" dev");
      if (a.inode != b.inode) w.Str(" inode");
      if (a.name_len != b.name_len || memcmp(a.name, b.name, a.name_len) != 0 ||
          a.deleted != b.deleted) {
        w.Str(" name");
      }
      w.Str(" differ\n");
    }
  }
  // What maps does not show of the model's side: flags, anon_vma, file id.
  for (size_t k = p; k < nm - s && k < p + 4; ++k) {
    MapsLine a;
    if (!ParseMapsLine(mmaps_ + g_mlines[k].off, g_mlines[k].len, &a)) continue;
    const Vma* v = model_->FindVma(a.start);
    if (v == nullptr || v->start != a.start) continue;
    w.Str("  model ").Hex(v->start).Ch('-').Hex(v->end).Str(" flags=").Hex(v->flags);
    w.Str(" anon_vma=").Udec(v->anon.anon_vma).Str(v->anon.fork_child ? " (fork child)" : "");
    w.Str(" file_id=").Udec(v->file != nullptr ? v->file->id : 0).Ch('\n');
  }
}

bool Harness::Compare(bool check_flags, const char* context) {
  Counters& c = counters();
  ReadKernelMaps();
  ApplyFixups();
  const uint64_t t0 = NowNs();
  mmaps_len_ = RenderMaps(*model_, mmaps_, kMapsCap);
  ++c.maps_compares;
  const bool maps_ok = mmaps_len_ == kmaps_len_ && memcmp(mmaps_, kmaps_, kmaps_len_) == 0;
  const char* verr = model_->Validate();
  c.ns_render += NowNs() - t0;
  bool flags_ok = true;
  g_flag_report_len = 0;
  const uint64_t prev_flags_step = last_flags_step_;
  if (check_flags && maps_ok) {
    flags_ok = CompareFlags();
    last_flags_step_ = cur_.index;
  }
  const bool broken = model_->broken();
  const uint64_t nv = model_->map_count();
  if (nv > c.max_vmas) c.max_vmas = nv;

  pre_snap_valid_ = false;  // the next Begin() takes a new pre-step snapshot
  // Log the step.
  log_[log_count_ % kLogSize] = cur_;
  ++log_count_;
  if (options_.verbose) {
    Writer w(options_.out_fd);
    PrintOpLog(w, 1);
  }
  const bool ok = !result_bad_ && maps_ok && verr == nullptr && flags_ok && !broken;
  if (ok) return true;

  ++c.mismatches;
  if (!maps_ok) ++c.maps_mismatches;
  if (!flags_ok) ++c.flags_mismatches;
  if (verr != nullptr) ++c.validate_failures;
  if (ReportAllowed()) {
    Writer w(options_.out_fd);
    char what[256];
    size_t n = 0;
    auto add = [&](const char* s) {
      if (n) {
        const char* sep = "; ";
        for (; *sep && n + 1 < sizeof(what); ++sep) what[n++] = *sep;
      }
      for (; *s && n + 1 < sizeof(what); ++s) what[n++] = *s;
    };
    if (context != nullptr) add(context);
    if (result_bad_ && result_what_ != nullptr) add(result_what_);
    if (!maps_ok) add("maps differ");
    if (!flags_ok) add("VmFlags/anon state differ");
    if (verr != nullptr) add("Validate() fails");
    if (broken) add("model broken (arena full)");
    what[n] = '\0';
    ReportHeader(w, what);
    w.Str("  last steps (oldest first; values in hex, results as the kernel returned them):\n");
    PrintOpLog(w, 30);
    if (!maps_ok) ReportMapsDiff(w);
    if (!flags_ok) {
      w.Str(
          "  smaps VmFlags / anon state (model vs kernel; the previous smaps check passed at "
          "step ");
      w.Udec(prev_flags_step).Str(", so the cause lies in steps ").Udec(prev_flags_step + 1);
      w.Str("..").Udec(cur_.index).Str("):\n");
      w.Mem(g_flag_report, g_flag_report_len);
    }
    if (verr != nullptr) w.Str("  Validate(): ").Str(verr).Ch('\n');
  }
  if (!maps_ok || verr != nullptr || !flags_ok || broken) {
    Resync(!maps_ok ? "maps differ" : verr != nullptr ? "Validate failed" : "flags differ");
  }
  return false;
}

bool Harness::End(bool check_flags) {
  ++step_;
  ++counters().ops;
  const bool due = check_flags || (options_.flags_every != 0 && step_ % options_.flags_every == 0);
  const bool ok = Compare(due, nullptr);
  if (!options_.check_mm) return ok;
  return CheckMm(options_.check_presence) && ok;
}

// ---------------------------------------------------------------------------
// Page tables and mm counters.

namespace {

// The number after "key" at the start of a line of status text, in kB.
void AddRun(Run* runs, size_t* n, uint64_t lo, uint64_t hi, bool huge) {
  if (*n > 0 && runs[*n - 1].hi == lo && runs[*n - 1].huge == huge) {
    runs[*n - 1].hi = hi;
    return;
  }
  if (*n == kMaxRuns) {
    g_runs_overflow = true;
    return;
  }
  runs[(*n)++] = Run{lo, hi, huge};
}

// Writes every page of a static buffer once, so that later use of it never
// faults in a page (or a page table) behind the comparison's back.
void Prefault(void* p, size_t n) {
  volatile char* c = static_cast<volatile char*>(p);
  for (size_t i = 0; i < n; i += kPageSize) c[i] = c[i];
  if (n > 0) c[n - 1] = c[n - 1];
}

}  // namespace

int Harness::ReadStatus(StatusCounters* out) {
  const int64_t n = ReadWholeFile("/proc/self/status", g_misc, sizeof(g_misc));
  if (n <= 0) return n < 0 ? static_cast<int>(n) : -EIO;
  const size_t len = static_cast<size_t>(n);
  return ParseStatusCounters(g_misc, len, out) ? 0 : -EPROTO;
}

template <typename F>
int Harness::ScanPagemap(uint64_t start, uint64_t end, F&& f) {
  const int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  int err = 0;
  while (start < end) {
    abi::PmScanArg a;
    memset(&a, 0, sizeof(a));
    a.size = sizeof(a);
    a.start = start;
    a.end = end;
    a.vec = reinterpret_cast<uint64_t>(g_regions);
    a.vec_len = kMaxRegions;
    const uint64_t guard = scan_guard_ ? abi::kPageIsGuard : 0;
    a.category_anyof_mask = abi::kPageIsPresent | abi::kPageIsSwapped | guard;
    a.return_mask = abi::kPageIsPresent | abi::kPageIsSwapped | abi::kPageIsHuge | guard;
    const int n = ioctl(fd, abi::kPagemapScanIoctl, &a);
    if (n < 0) {
      if (errno == EINVAL && scan_guard_) {
        scan_guard_ = false;  // before 6.15: no PAGE_IS_GUARD
        continue;
      }
      err = -errno;
      break;
    }
    for (int i = 0; i < n; ++i) f(g_regions[i]);
    if (a.walk_end <= start) break;
    start = a.walk_end;
  }
  close(fd);
  return err;
}

int64_t Harness::SeedPageTables() {
  Prefault(g_regions, sizeof(g_regions));
  Prefault(g_kruns, sizeof(g_kruns));
  Prefault(g_mruns, sizeof(g_mruns));
  Prefault(g_misc, sizeof(g_misc));
  Prefault(g_kmaps, sizeof(g_kmaps));
  Prefault(g_mmaps, sizeof(g_mmaps));
  Prefault(g_smaps, sizeof(g_smaps));
  Prefault(g_flag_report, sizeof(g_flag_report));
  ++counters().pt_calibrations;
  StatusCounters before, after;
  int err = 0;
  for (int attempt = 0; attempt < 4; ++attempt) {
    err = ReadStatus(&before);
    if (err != 0) return err;
    model_->ClearPageTables();
    err = ScanPagemap(0, params_.task_size, [this](const abi::PageRegion& r) {
      if (r.categories & abi::kPageIsGuard) {
        (void)model_->LearnGuards(r.start, r.end);
      } else {
        (void)model_->LearnPresent(r.start, r.end, (r.categories & abi::kPageIsHuge) != 0);
      }
    });
    if (err != 0) return err;
    err = ReadStatus(&after);
    if (err != 0) return err;
    if (SameStatusCounters(before, after)) break;
  }
  kstatus_ = after;
  // locked_vm the kernel holds beyond the VM_LOCKED VMAs (a 6.18
  // MREMAP_DONTUNMAP quirk; see AddressSpace::locked_vm_drift()).
  const uint64_t locked = model_->mm_counters().locked_vm - model_->locked_vm_drift();
  const uint64_t klocked = after.vm_lck_kb / 4;
  model_->set_locked_vm_drift(klocked > locked ? klocked - locked : 0);
  return model_->CalibratePageTables(after.vm_pte_kb);
}

void Harness::AfterForkChild(uint64_t parent_unlocated) {
  if (parent_unlocated != 0) calibrate_next_ = true;
}

bool Harness::ComparePresence() {
  // Model runs over the complement of the protected ranges.
  g_nmruns = 0;
  const uint64_t top = params_.task_size;
  uint64_t from = 0;
  for (int i = 0; i <= nprotected_; ++i) {
    const uint64_t to = i < nprotected_ ? protected_[i][0] : top;
    uint64_t a = from;
    uint64_t lo = 0, hi = 0;
    bool huge = false;
    while (a < to && model_->page_tables().NextMappedRun(a, to, &lo, &hi, &huge)) {
      AddRun(g_mruns, &g_nmruns, lo, hi, huge);
      a = hi;
    }
    if (i < nprotected_) from = protected_[i][1];
  }
  if (g_nmruns != g_nkruns) return false;
  for (size_t i = 0; i < g_nkruns; ++i) {
    if (g_kruns[i].lo != g_mruns[i].lo || g_kruns[i].hi != g_mruns[i].hi ||
        g_kruns[i].huge != g_mruns[i].huge) {
      return false;
    }
  }
  return true;
}

void Harness::LearnProtected() {
  for (int i = 0; i < nprotected_; ++i) {
    const uint64_t s = PageDown(protected_[i][0]);
    uint64_t e = PageAlign(protected_[i][1]);
    if (e > params_.task_size) e = params_.task_size;
    if (s < e) (void)model_->LearnNotPresent(s, e);
  }
}

bool Harness::CheckMm(bool presence) {
  Counters& c = counters();
  const uint64_t t0 = NowNs();
  StatusCounters before, after;
  int err = 0;
  g_runs_overflow = false;
  for (int attempt = 0; attempt < 4; ++attempt) {
    err = ReadStatus(&before);
    if (err != 0) break;
    LearnProtected();
    g_nkruns = 0;
    err = ScanPagemap(0, params_.task_size, [this, presence](const abi::PageRegion& r) {
      const bool guard = (r.categories & abi::kPageIsGuard) != 0;
      const bool huge = (r.categories & abi::kPageIsHuge) != 0;
      // Split the run at the protected ranges: learn inside, collect outside.
      uint64_t a = r.start;
      while (a < r.end) {
        int lo = 0, hi = nprotected_;
        while (lo < hi) {
          const int mid = (lo + hi) / 2;
          if (protected_[mid][1] <= a) {
            lo = mid + 1;
          } else {
            hi = mid;
          }
        }
        if (lo < nprotected_ && protected_[lo][0] <= a) {
          const uint64_t e = protected_[lo][1] < r.end ? protected_[lo][1] : r.end;
          if (guard) {
            (void)model_->LearnGuards(a, e);
          } else {
            (void)model_->LearnPresent(a, e, huge);
          }
          a = e;
        } else {
          const uint64_t next_prot = lo < nprotected_ ? protected_[lo][0] : ~uint64_t{0};
          const uint64_t e = next_prot < r.end ? next_prot : r.end;
          if (presence && !guard) AddRun(g_kruns, &g_nkruns, a, e, huge);
          // Whether a file fault maps a PMD-sized folio depends on the page
          // cache (readahead of VM_HUGEPAGE mappings): learnt, not predicted.
          if (huge && !guard) {
            const Vma* v = model_->FindVma(a);
            if (v != nullptr && v->start <= a && !v->is_anonymous() &&
                model_->WalkPage(a).pmd != PmdKind::kHuge) {
              (void)model_->LearnPresent(a, e, true);
              ++counters().file_thp_learnt;
            }
          }
          a = e;
        }
      }
    });
    if (err != 0) break;
    err = ReadStatus(&after);
    if (err != 0 || SameStatusCounters(before, after)) break;
  }
  c.ns_mm += NowNs() - t0;
  if (err != 0) {
    Writer w(options_.out_fd);
    w.Str("kernel-oracle: cannot read status/pagemap: ").Ret(err).Ch('\n');
    ++c.mismatches;
    return false;
  }
  kstatus_ = after;
  if (calibrate_next_) {
    calibrate_next_ = false;
    ++c.pt_calibrations;
    (void)model_->CalibratePageTables(after.vm_pte_kb);
  }
  const StatusCounters m = model_->PredictStatus();
  if (model_->page_tables().counts().deposited != 0) ++c.thp_steps;
  ++c.pagetable_compares;
  ++c.counter_compares;
  const bool pte_ok = m.vm_pte_kb == after.vm_pte_kb;
  StatusCounters m_no_pte = m;
  m_no_pte.vm_pte_kb = after.vm_pte_kb;
  const bool counters_ok = SameStatusCounters(m_no_pte, after);
  bool presence_ok = true;
  if (presence) {
    ++c.presence_compares;
    presence_ok = !g_runs_overflow && ComparePresence();
  }
  last_mm_step_ = cur_.index;
  if (pte_ok && counters_ok && presence_ok) return true;
  ++c.mismatches;
  if (!pte_ok) ++c.pagetable_mismatches;
  if (!counters_ok) ++c.counter_mismatches;
  if (!presence_ok) ++c.presence_mismatches;
  ReportMm(m, counters_ok && pte_ok, presence_ok);
  if (!pte_ok) {
    // Resynchronise: the page tables from pagemap everywhere, recalibrated
    // (ghost tables the model knew become unlocated).
    const int64_t r = SeedPageTables();
    if (options_.verbose) {
      Writer w(options_.out_fd);
      w.Str("  page tables reseeded from pagemap (unlocated ").Dec(r).Str(")\n");
    }
  } else if (!presence_ok) {
    // Only presence differs (fault-around, say): take the kernel's, keep
    // the tables.
    uint64_t from = 0;
    for (int i = 0; i <= nprotected_; ++i) {
      const uint64_t to = i < nprotected_ ? PageDown(protected_[i][0]) : params_.task_size;
      if (from < to) (void)model_->LearnNotPresent(from, to);
      if (i < nprotected_) from = PageAlign(protected_[i][1]);
    }
    for (size_t i = 0; i < g_nkruns; ++i) {
      (void)model_->LearnPresent(g_kruns[i].lo, g_kruns[i].hi, g_kruns[i].huge);
    }
  }
  return false;
}

void Harness::ReportMm(const StatusCounters& m, bool counters_ok, bool presence_ok) {
  if (!ReportAllowed()) return;
  Writer w(options_.out_fd);
  ReportHeader(w, !counters_ok ? "mm counters differ (/proc/self/status)"
                               : "page presence differs (pagemap)");
  w.Str("  last steps (oldest first):\n");
  PrintOpLog(w, 12);
  const StatusCounters& k = kstatus_;
  struct Line {
    const char* name;
    uint64_t model;
    uint64_t kernel;
  };
  const Line lines[] = {
      {"VmSize", m.vm_size_kb, k.vm_size_kb}, {"VmLck", m.vm_lck_kb, k.vm_lck_kb},
      {"VmData", m.vm_data_kb, k.vm_data_kb}, {"VmStk", m.vm_stk_kb, k.vm_stk_kb},
      {"VmExe", m.vm_exe_kb, k.vm_exe_kb},    {"VmLib", m.vm_lib_kb, k.vm_lib_kb},
      {"VmPTE", m.vm_pte_kb, k.vm_pte_kb},
  };
  for (const Line& l : lines) {
    w.Str("    ").Str(l.name).Str(": model ").Udec(l.model).Str(" kB, kernel ").Udec(l.kernel);
    w.Str(" kB").Str(l.model != l.kernel ? "  <-- differs" : "").Ch('\n');
  }
  const PageTableCounts& pc = model_->page_tables().counts();
  w.Str("    model tables: pte ").Udec(pc.pte_tables).Str(" (deposited ").Udec(pc.deposited);
  w.Str(") pmd ").Udec(pc.pmd_tables).Str(" pud ").Udec(pc.pud_tables);
  w.Str(" unlocated ").Udec(pc.unlocated).Str(" leaked ").Udec(pc.leaked);
  w.Str("; previous mm check passed at step ").Udec(last_mm_step_).Ch('\n');
  if (!presence_ok) {
    size_t i = 0;
    while (i < g_nkruns && i < g_nmruns && g_kruns[i].lo == g_mruns[i].lo &&
           g_kruns[i].hi == g_mruns[i].hi && g_kruns[i].huge == g_mruns[i].huge) {
      ++i;
    }
    w.Str("    mapped runs outside the harness's memory: model ").Udec(g_nmruns);
    w.Str(", kernel ").Udec(g_nkruns).Str(g_runs_overflow ? " (overflow)" : "");
    w.Str("; first difference:\n");
    for (size_t k2 = i; k2 < i + 3; ++k2) {
      if (k2 < g_nmruns) {
        w.Str("      model  ").Hex(g_mruns[k2].lo).Ch('-').Hex(g_mruns[k2].hi);
        w.Str(g_mruns[k2].huge ? " huge\n" : "\n");
      }
      if (k2 < g_nkruns) {
        w.Str("      kernel ").Hex(g_kruns[k2].lo).Ch('-').Hex(g_kruns[k2].hi);
        w.Str(g_kruns[k2].huge ? " huge\n" : "\n");
      }
    }
  }
}

bool Harness::CheckVmFlagsLines() {
  const uint64_t before = counters().vmflags_line_mismatches;
  ReadKernelMaps();
  const bool ok = CompareFlags();
  if (!ok || counters().vmflags_line_mismatches != before) {
    ++counters().mismatches;
    ++counters().flags_mismatches;
    if (ReportAllowed()) {
      Writer w(options_.out_fd);
      ReportHeader(w, "VmFlags lines differ");
      w.Mem(g_flag_report, g_flag_report_len);
    }
    return false;
  }
  return true;
}

void Harness::PrintSummary(Writer& w, const char* label, uint64_t seed, const Counters& c) {
  w.Str(label);
  if (seed != ~uint64_t{0}) w.Str(" seed=").Udec(seed);
  w.Str(" ops=").Udec(c.ops).Str(" maps_compares=").Udec(c.maps_compares);
  w.Str(" flag_compares=").Udec(c.flag_compares);
  w.Str(" placements=").Udec(c.placements_hit).Ch('/').Udec(c.placements);
  w.Str(" errnos=").Udec(c.errnos_hit).Ch('/').Udec(c.errnos);
  w.Str(" results=").Udec(c.results_hit).Ch('/').Udec(c.results);
  w.Str(" touches=").Udec(c.touches).Str(" (faults ").Udec(c.touch_faults).Ch(')');
  w.Str(" max_vmas=").Udec(c.max_vmas);
  w.Str(" forks=").Udec(c.forks).Str(" map_count_phases=").Udec(c.map_count_phases);
  w.Str(" resyncs=").Udec(c.resyncs);
  w.Str(" time_ms(maps/smaps/model)=").Udec(c.ns_kernel_maps / 1000000).Ch('/');
  w.Udec(c.ns_smaps / 1000000).Ch('/').Udec(c.ns_render / 1000000);
  if (c.pagetable_compares != 0 || c.vmflags_line_compares != 0) {
    w.Str(" pagetable_compares=").Udec(c.pagetable_compares);
    w.Str(" counter_compares=").Udec(c.counter_compares);
    w.Str(" presence_compares=").Udec(c.presence_compares);
    w.Str(" vmflags_line_compares=").Udec(c.vmflags_line_compares);
    w.Str(" pt_calibrations=").Udec(c.pt_calibrations);
    w.Str(" thp_steps=").Udec(c.thp_steps);
    if (c.file_thp_learnt != 0) w.Str(" file_thp_learnt=").Udec(c.file_thp_learnt);
    w.Str(" time_ms(mm)=").Udec(c.ns_mm / 1000000);
  }
  w.Str(" mismatches=").Udec(c.mismatches);
  if (c.mismatches != 0) {
    w.Str(" (results ").Udec(c.result_mismatches).Str(", maps ").Udec(c.maps_mismatches);
    w.Str(", flags ").Udec(c.flags_mismatches).Str(", validate ").Udec(c.validate_failures);
    w.Str(", vmpte ").Udec(c.pagetable_mismatches).Str(", counters ");
    w.Udec(c.counter_mismatches).Str(", presence ").Udec(c.presence_mismatches);
    w.Str(", vmflags lines ").Udec(c.vmflags_line_mismatches);
    w.Ch(')');
  }
  w.Ch('\n');
}

}  // namespace vmashadow::oracle
