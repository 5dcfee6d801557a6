// trace_writer.cc — the preload's trace recorder (see trace_writer.h; the
// format is core/trace/trace_format.h).
//
// State is plain static data, used under the model lock. Records go through
// core's encoder into g_buf; the buffer is written when an event ends, at a
// fork point, at the end of a seed made outside an event and at the image's
// end, so the file always ends with whole events. A SEED's texts are written
// from the preload's own buffers with one writev behind what is buffered.
//
// Caller stacks are walked through frame pointers (the preload is built with
// -fno-omit-frame-pointer): our own frames are skipped; a frame whose return
// address is our SIGSYS restorer is the kernel's signal frame (on our signal
// stack), whose ucontext gives the trapped instruction and the program's
// stack pointer. Frame-pointer reads stay between the current stack pointer
// and the end of the VMA the kernel (PROCMAP_QUERY) says holds it; the
// program's stack window and the code bytes before each candidate return
// address are copied with process_vm_readv, which fails instead of faulting,
// so a model that went stale (a missed munmap) never makes us fault. A
// return address must also fall in an executable VMA of the model.
#include "preload/trace_writer.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "core/abi/kernel_profile.h"
#include "core/trace/trace_codec.h"
#include "preload/output.h"
#include "preload/raw_syscall.h"
#include "preload/sud.h"

namespace vmashadow::preload {
namespace trace_internal {

bool g_on = false;

namespace {

constexpr long kSysWritev = 20;
constexpr long kSysClockGettime = 228;
constexpr int kClockRealtime = 0;
constexpr int kClockMonotonic = 1;
constexpr int kFDupfdCloexec = 1030;
constexpr int kHighFd = 600;  // moved up, away from the numbers programs reuse
constexpr int kDefaultFrames = 8;

enum class Phase { kIdle, kBeforeFinish, kAfterFinish };

// The records of the current event (and whatever came before since the last
// write). 64 KiB holds an event's records many times over.
uint8_t g_buf[64 << 10];
size_t g_len = 0;

int g_fd = -1;
// The trace file's identity: the program may close our fd and open a file of
// its own under that number; we never write to or close a file not ours.
uint64_t g_fd_dev = 0;
uint64_t g_fd_ino = 0;
char g_path[4096];
const AddressSpace* g_model = nullptr;
TraceCodecState g_state;
Phase g_phase = Phase::kIdle;
bool g_in_seed = false;
bool g_init_seed = false;
uint64_t g_fork_points = 0;
int g_max_frames = kDefaultFrames;
uint64_t g_text_lo = 0;
uint64_t g_text_hi = 0;

// A range check being accumulated.
struct PendingCheck {
  bool active = false;
  TraceCheck check;
};
PendingCheck g_check;

// What the current event has told us before its end.
uint64_t g_begin_ns = 0;
bool g_have_begin = false;
bool g_have_file = false;
TraceFile g_file;
char g_file_path[4096 + 16];
uint64_t g_kernel_addr = 0;
bool g_have_shmem = false;
TraceShmem g_shmem;

__thread uint64_t t_tid __attribute__((tls_model("initial-exec"))) = 0;

uint64_t Now(int clock) {
  struct {
    int64_t sec;
    int64_t nsec;
  } ts = {0, 0};
  RawSyscall6(kSysClockGettime, U(clock), U(&ts));
  return static_cast<uint64_t>(ts.sec) * 1000000000u + static_cast<uint64_t>(ts.nsec);
}

uint64_t Tid() {
  if (t_tid == 0) t_tid = static_cast<uint64_t>(RawSyscall6(kSysGettid));
  return t_tid;
}

// True when g_fd still is the file we opened.
bool FdIsOurs() {
  struct stat st;
  return g_fd >= 0 && RawSyscall6(kSysFstat, U(g_fd), U(&st)) == 0 && st.st_dev == g_fd_dev &&
         st.st_ino == g_fd_ino;
}

// Remembers the identity of fd, now g_fd.
void AdoptFd(int fd) {
  g_fd = fd;
  struct stat st;
  if (RawSyscall6(kSysFstat, U(fd), U(&st)) == 0) {
    g_fd_dev = st.st_dev;
    g_fd_ino = st.st_ino;
  }
}

// Closes g_fd if it is still ours.
void ReleaseFd() {
  if (FdIsOurs()) RawClose(g_fd);
  g_fd = -1;
}

const char* g_stopped_why = nullptr;  // set when tracing stopped before the end
int64_t g_stopped_err = 0;

void Stop(const char* why, int64_t err) {
  if (!g_on) return;
  g_on = false;
  g_stopped_why = why;
  g_stopped_err = err;
  Writer w;
  w.Str("vmashadow: trace ").Str(g_path).Str(": ").Str(why).Str(" (").Dec(err);
  w.Str("); tracing stopped\n");
  ReleaseFd();
  g_len = 0;
}

struct Iov {
  const void* base;
  size_t len;
};

// Writes every iovec fully (a regular file takes them in one go; a short
// write is continued). False on an error, after stopping the trace.
bool WriteAll(Iov* iov, int n) {
  if (!FdIsOurs()) {
    Stop("the program closed the trace file's descriptor", -EBADF);
    return false;
  }
  int i = 0;
  while (i < n) {
    if (iov[i].len == 0) {
      ++i;
      continue;
    }
    const int64_t r = RawSyscall6(kSysWritev, U(g_fd), U(iov + i), U(n - i));
    if (r == -EINTR) continue;
    if (r <= 0) {
      Stop("write failed", r);
      return false;
    }
    uint64_t done = static_cast<uint64_t>(r);
    while (i < n && done >= iov[i].len) {
      done -= iov[i].len;
      ++i;
    }
    if (i < n) {
      iov[i].base = static_cast<const char*>(iov[i].base) + done;
      iov[i].len -= done;
    }
  }
  return true;
}

void FlushCheck();

// Writes what is buffered.
void Flush() {
  FlushCheck();
  if (g_len == 0 || g_fd < 0) return;
  Iov iov[1] = {{g_buf, g_len}};
  g_len = 0;
  WriteAll(iov, 1);
}

// Appends one record (a pending range check goes first).
void AppendRaw(const TraceRecord& rec) {
  if (!g_on) return;
  size_t n = EncodeTraceRecord(&g_state, rec, g_buf + g_len, sizeof(g_buf) - g_len);
  if (n == 0) {
    Iov iov[1] = {{g_buf, g_len}};
    g_len = 0;
    if (!WriteAll(iov, 1)) return;
    n = EncodeTraceRecord(&g_state, rec, g_buf, sizeof(g_buf));
    if (n == 0) return;  // longer than the buffer: cannot happen for these kinds
  }
  g_len += n;
}

void FlushCheck() {
  if (!g_check.active) return;
  g_check.active = false;
  TraceRecord rec;
  rec.kind = TraceRecordKind::kCheck;
  rec.check = g_check.check;
  AppendRaw(rec);
}

void Append(const TraceRecord& rec) {
  FlushCheck();
  AppendRaw(rec);
}

TraceBytes Bytes(const char* s, size_t n) { return TraceBytes{s, n}; }
TraceBytes Cstr(const char* s) { return TraceBytes{s, s != nullptr ? strlen(s) : 0}; }

size_t LineLen(const char* s, size_t n) {
  const void* nl = memchr(s, '\n', n);
  return nl != nullptr ? static_cast<size_t>(static_cast<const char*>(nl) - s) : n;
}

// --- Stacks. ---

// Copies [addr, addr + n) of our own process through process_vm_readv,
// which fails instead of faulting. Returns the bytes copied.
size_t SafeRead(uint64_t addr, void* out, size_t n) {
  const int64_t r = RawVmCopy(false, out, addr, n);
  return r > 0 ? static_cast<size_t>(r) : 0;
}

// A readable, executable VMA holds pc (the model's view: only a filter; code
// bytes are always read through SafeRead).
const Vma* CodeVma(uint64_t pc) {
  const Vma* v = g_model->FindVma(pc);
  return v != nullptr && v->start <= pc && (v->flags & kVmExec) != 0 ? v : nullptr;
}

bool IsExecutable(uint64_t pc) { return CodeVma(pc) != nullptr; }

// The 7 bytes before ret are a call (E8 rel32, FF /2 through a register,
// [reg+disp8], [reg+disp32] or [rip+disp32]).
bool EndsWithCall(const uint8_t* b) {  // b[0..6] = ret-7 .. ret-1
  const uint8_t* p = b + 7;
  if (p[-5] == 0xe8) return true;
  if (p[-2] == 0xff && (p[-1] & 0xf8) == 0xd0) return true;                     // call *%reg
  if (p[-3] == 0xff && (p[-2] & 0xf8) == 0x50) return true;                     // call *d8(%reg)
  if (p[-6] == 0xff && ((p[-5] & 0xf8) == 0x90 || p[-5] == 0x15)) return true;  // d32 / rip
  if (p[-3] == 0xff && p[-2] == 0x54) return true;                              // *d8(%rsp,..)
  return false;
}

// Code without frame pointers (glibc, most distribution libraries) leaves
// rbp holding anything: from sp up, the words that are return addresses
// right after a call instruction, at most kScanWords of them looked at. The
// stack window and the code bytes before every candidate are each copied with
// one process_vm_readv, so a stale model never makes us fault.
constexpr int kScanWords = 192;
int ScanFrames(uint64_t sp, uint64_t hi, uint64_t* frames, int n, int max) {
  if (n >= max || sp >= hi || (sp & 7) != 0) return n;
  uint64_t words[kScanWords];
  const uint64_t want = hi - sp < sizeof(words) ? hi - sp : sizeof(words);
  const size_t nwords = SafeRead(sp, words, want) / 8;
  // Candidates: words pointing into the program's code (per the model).
  RawIovec remote[kScanWords];
  uint64_t cand[kScanWords];
  int ncand = 0;
  for (size_t i = 0; i < nwords; ++i) {
    const uint64_t w = words[i];
    if (w < 0x10000 || w >= (uint64_t{1} << 47)) continue;
    if (w >= g_text_lo && w < g_text_hi) continue;
    if (ncand > 0 && w == cand[ncand - 1]) continue;
    const Vma* v = CodeVma(w - 1);
    if (v == nullptr || (v->flags & kVmRead) == 0 || w - 7 < v->start || w > v->end) continue;
    cand[ncand] = w;
    remote[ncand] = RawIovec{w - 7, 7};
    ++ncand;
  }
  if (ncand == 0) return n;
  uint8_t code[kScanWords * 7];
  RawIovec local{U(code), static_cast<uint64_t>(ncand) * 7};
  const int64_t r = RawSyscall6(kSysProcessVmReadv, U(RawSyscall6(kSysGetpid)), U(&local), 1,
                                U(remote), U(ncand), 0);
  // A partial copy stops at the first candidate that could not be read.
  const int got = r > 0 ? static_cast<int>(r / 7) : 0;
  for (int i = 0; i < got && n < max; ++i) {
    if (n > 0 && cand[i] == frames[n - 1]) continue;
    if (EndsWithCall(code + 7 * i)) frames[n++] = cand[i];
  }
  return n;
}

// The program's return addresses, innermost first. *pc0: frames[0] is the
// trapped instruction itself (the SIGSYS path). Frame pointers first, read
// directly only inside the stack VMA we are running on as the kernel reports
// it (PROCMAP_QUERY); where their chain breaks or leaves our signal stack, a
// scan of the program's stack (ScanFrames).
__attribute__((noinline)) int CollectFrames(uint64_t* frames, int max, bool* pc0) {
  *pc0 = false;
  if (max <= 0 || g_model == nullptr) return 0;
  uint64_t sp;
  __asm__ volatile("mov %%rsp, %0" : "=r"(sp));
  uint64_t lo = 0;
  uint64_t hi = 0;
  if (!KernelVmaBounds(sp, &lo, &hi)) return 0;
  lo = sp;
  const uint64_t restorer = SudRestorer();
  uint64_t fp = U(__builtin_frame_address(0));
  uint64_t prog_sp = 0;  // the program's stack pointer at its innermost frame
  bool ours = true;      // still in libvmashadow.so's frames
  int n = 0;
  for (int guard = 0; guard < 256 && n < max; ++guard) {
    if (fp < lo || fp > hi - 16 || (fp & 7) != 0) break;
    const uint64_t next = *reinterpret_cast<const uint64_t*>(fp);
    const uint64_t ret = *reinterpret_cast<const uint64_t*>(fp + 8);
    if (ours && ret == restorer) {
      // fp + 8 is the rt_sigframe's pretcode; its ucontext follows.
      // uc_mcontext.gregs starts 40 bytes in: RSP is greg 15, RIP 16.
      const uint64_t uc = fp + 16;
      if (uc + 40 + 17 * 8 > hi) break;
      const uint64_t rip = *reinterpret_cast<const uint64_t*>(uc + 40 + 16 * 8);
      const uint64_t rsp = *reinterpret_cast<const uint64_t*>(uc + 40 + 15 * 8);
      if (!IsExecutable(rip)) break;
      frames[n++] = rip;
      *pc0 = true;
      // The trapped code (a libc syscall wrapper) keeps no frame pointer,
      // and it ran on the program's stack, not on our signal stack: its
      // callers are found by scanning that stack.
      uint64_t plo = 0;
      uint64_t phi = 0;
      if (KernelVmaBounds(rsp, &plo, &phi)) n = ScanFrames(rsp, phi, frames, n, max);
      return n;
    }
    uint64_t ra_off = 0;
    uint64_t sp_off = 0;
    bool tramp_pc0 = false;
    if (ours && SudTrampolineFrame(ret, &ra_off, &sp_off, &tramp_pc0)) {
      // Our code ran on our own stack, called from a trampoline whose frame
      // (at `next`) keeps the program's stack pointer: continue from there.
      if (next < lo || next > hi - 16) break;
      const uint64_t saved = *reinterpret_cast<const uint64_t*>(next + 8);
      uint64_t pc = 0;
      if (RawVmCopy(false, &pc, saved + ra_off, sizeof(pc)) != sizeof(pc) || !IsExecutable(pc)) {
        break;
      }
      frames[n++] = pc;
      *pc0 = tramp_pc0;
      uint64_t plo = 0;
      uint64_t phi = 0;
      const uint64_t psp = saved + sp_off;
      if (KernelVmaBounds(psp, &plo, &phi)) n = ScanFrames(psp, phi, frames, n, max);
      return n;
    }
    if (ret >= g_text_lo && ret < g_text_hi) {
      if (!ours) break;  // back in our code above the program's frames: done
    } else {
      ours = false;
      if (!IsExecutable(ret)) break;
      frames[n++] = ret;
      prog_sp = fp + 16;
    }
    if (next <= fp) break;
    fp = next;
  }
  // The chain broke inside the program: scan on from its last frame.
  if (n > 0 && n < max && prog_sp >= lo && prog_sp < hi) {
    n = ScanFrames(prog_sp, hi, frames, n, max);
  }
  return n;
}

// --- Files. ---

template <size_t N>
bool AppendStr(char (&buf)[N], size_t* len, const char* s) {
  const size_t n = strlen(s);
  if (*len + n + 1 > N) return false;
  memcpy(buf + *len, s, n + 1);
  *len += n;
  return true;
}

template <size_t N>
bool AppendDec(char (&buf)[N], size_t* len, uint64_t v) {
  char d[24];
  const size_t n = FormatUdec(v, d);
  d[n] = '\0';
  return AppendStr(buf, len, d);
}

// Opens base, base.exec1, base.exec2, ... (the first that does not exist).
// Returns the fd (g_path names it) and sets *exec_index, or -errno.
int OpenTraceFile(const char* base, uint64_t* exec_index) {
  // Created exclusively, never through a link, readable by the owner only
  // (a trace holds argv and the whole layout).
  constexpr int kOWronly = 1, kOCreat = 0100, kOExcl = 0200, kOAppend = 02000;
  constexpr int kONofollow = 0400000;
  for (uint64_t k = 0; k < 1000; ++k) {
    size_t len = 0;
    g_path[0] = '\0';
    if (!AppendStr(g_path, &len, base)) return -ENAMETOOLONG;
    if (k > 0 && (!AppendStr(g_path, &len, ".exec") || !AppendDec(g_path, &len, k))) {
      return -ENAMETOOLONG;
    }
    const int64_t fd =
        RawSyscall6(kSysOpenat, U(static_cast<int64_t>(kAtFdcwd)), U(g_path),
                    U(kOWronly | kOCreat | kOExcl | kOAppend | kONofollow | kOCloexec), 0600);
    if (fd == -EEXIST) continue;
    if (fd < 0) return static_cast<int>(fd);
    *exec_index = k;
    const int64_t high = RawSyscall6(kSysFcntl, U(fd), U(kFDupfdCloexec), U(kHighFd));
    if (high >= 0) {
      RawClose(static_cast<int>(fd));
      return static_cast<int>(high);
    }
    return static_cast<int>(fd);
  }
  return -EEXIST;
}

// The file name of this process: FILE for the root process, else FILE.<pid>.
bool BaseName(char (&out)[4096], const char* file, uint64_t pid, bool root) {
  size_t len = 0;
  out[0] = '\0';
  if (!AppendStr(out, &len, file)) return false;
  if (root) return true;
  return AppendStr(out, &len, ".") && AppendDec(out, &len, pid);
}

bool IsRootProcess(uint64_t pid) {
  const char* root = getenv("VMASHADOW_ROOT_PID");
  if (root == nullptr || *root == '\0') return true;
  uint64_t v = 0;
  for (const char* p = root; *p != '\0'; ++p) {
    if (*p < '0' || *p > '9') return true;
    v = v * 10 + static_cast<uint64_t>(*p - '0');
  }
  return v == pid;
}

char g_base[4096];
const char* g_file_env = nullptr;
TraceHeader g_header;  // kept for a fork child's header

// Writes the prefix and the HEADER (buffered; the caller flushes).
void WriteHeader() {
  uint8_t prefix[kTracePrefixSize];
  EncodeTracePrefix(prefix, sizeof(prefix));
  memcpy(g_buf, prefix, sizeof(prefix));
  g_len = sizeof(prefix);
  TraceRecord rec;
  rec.kind = TraceRecordKind::kHeader;
  rec.header = g_header;
  g_state = TraceCodecState{};
  AppendRaw(rec);
}

void ResetEvent() {
  g_have_begin = false;
  g_have_file = false;
  g_kernel_addr = 0;
  g_have_shmem = false;
}

}  // namespace

void Start(const AddressSpace* model, const MmParams& params, uint64_t arena_size,
           const char* kernel_release, const char* cmdline, size_t cmdline_len) {
  const char* file = getenv("VMASHADOW_TRACE");
  if (file == nullptr || *file == '\0') return;
  g_file_env = file;
  if (const char* f = getenv("VMASHADOW_TRACE_FRAMES"); f != nullptr && *f != '\0') {
    int v = 0;
    for (const char* p = f; *p >= '0' && *p <= '9' && v <= kTraceMaxFrames; ++p) {
      v = v * 10 + (*p - '0');
    }
    g_max_frames = v > kTraceMaxFrames ? kTraceMaxFrames : v;
  }
  (void)OwnTextRange(&g_text_lo, &g_text_hi);  // our frames are skipped
  g_model = model;

  const uint64_t pid = static_cast<uint64_t>(RawSyscall6(kSysGetpid));
  const bool root = IsRootProcess(pid);
  if (!BaseName(g_base, file, pid, root)) {
    Writer w;
    w.Str("vmashadow: VMASHADOW_TRACE is too long; not tracing\n");
    return;
  }
  uint64_t exec_index = 0;
  const int fd = OpenTraceFile(g_base, &exec_index);
  if (fd < 0) {
    Writer w;
    w.Str("vmashadow: cannot create the trace file ").Str(g_path).Str(" (").Dec(fd);
    w.Str("); not tracing\n");
    return;
  }
  AdoptFd(fd);
  g_header = TraceHeader{};
  g_header.origin = root && exec_index == 0 ? TraceOrigin::kRoot : TraceOrigin::kExecImage;
  g_header.pid = pid;
  g_header.parent_pid = static_cast<uint64_t>(RawSyscall6(kSysGetppid));
  g_header.exec_index = exec_index;
  g_header.kernel_release = Cstr(kernel_release);
  g_header.profile = Cstr(model->profile().name);
  const char* check = getenv("VMASHADOW_CHECK");
  g_header.check = Cstr(check != nullptr && *check != '\0' ? check : "exit");
  g_header.argv = Bytes(cmdline, cmdline_len);
  g_header.arena_size = arena_size;
  g_header.params = params;
  g_header.realtime_ns = Now(kClockRealtime);
  g_header.monotonic_ns = Now(kClockMonotonic);
  g_header.max_frames = static_cast<uint8_t>(g_max_frames);
  g_header.preload_text_lo = g_text_lo;
  g_header.preload_text_hi = g_text_hi;
  g_on = true;
  g_init_seed = true;
  WriteHeader();
  Flush();
}

void Seed(const char* maps, size_t maps_len, const char* smaps, size_t smaps_len) {
  TraceSeedReason reason = TraceSeedReason::kOutsideEvent;
  if (g_init_seed) {
    reason = TraceSeedReason::kInit;
    g_init_seed = false;
  } else if (g_phase == Phase::kBeforeFinish) {
    reason = TraceSeedReason::kBeforeEvent;
  } else if (g_phase == Phase::kAfterFinish) {
    reason = TraceSeedReason::kDuringEvent;
  }
  FlushCheck();
  uint8_t prefix[32];
  const size_t p = EncodeSeedPrefix(reason, maps_len, smaps_len, prefix, sizeof(prefix));
  if (p == 0) {
    Stop("snapshot too large for one record", -E2BIG);
    return;
  }
  uint32_t crc = TraceCrc32c(0, prefix, p);
  crc = TraceCrc32c(crc, maps, maps_len);
  crc = TraceCrc32c(crc, smaps, smaps_len);
  uint8_t tail[4];
  EncodeTraceCrc(crc, tail);
  Iov iov[5] = {{g_buf, g_len}, {prefix, p}, {maps, maps_len}, {smaps, smaps_len}, {tail, 4}};
  g_len = 0;
  g_in_seed = true;
  WriteAll(iov, 5);
}

void SeedState(uint64_t start_brk, uint64_t brk, uint64_t start_stack, int lockall) {
  g_in_seed = false;
  TraceRecord rec;
  rec.kind = TraceRecordKind::kSeedState;
  rec.seed_state.start_brk = start_brk;
  rec.seed_state.brk = brk;
  rec.seed_state.start_stack = start_stack;
  rec.seed_state.lockall = static_cast<uint8_t>(lockall);
  Append(rec);
  if (g_phase == Phase::kIdle) Flush();
}

void LearnFaulted(uint64_t start) {
  TraceRecord rec;
  rec.kind = TraceRecordKind::kLearnFaulted;
  rec.learn.start = start;
  rec.learn.context = g_in_seed                 ? TraceLearnContext::kSeed
                      : g_phase == Phase::kIdle ? TraceLearnContext::kFork
                                                : TraceLearnContext::kEvent;
  Append(rec);
}

void Reconcile(uint64_t addr, uint64_t observed_start) {
  TraceRecord rec;
  rec.kind = TraceRecordKind::kReconcile;
  rec.reconcile.addr = addr;
  rec.reconcile.observed_start = observed_start;
  Append(rec);
}

void RangeLine(uint64_t addr, const char* kline, size_t klen, const char* mline, size_t mlen) {
  if (!g_check.active) {
    g_check.active = true;
    g_check.check = TraceCheck{};
    g_check.check.kind = TraceCheckKind::kRange;
    g_check.check.equal = true;
    g_check.check.first_addr = addr;
    g_check.check.kernel_hash = kTraceHashInit;
    g_check.check.model_hash = kTraceHashInit;
  }
  TraceCheck& c = g_check.check;
  ++c.lines;
  c.kernel_hash = TraceHashLine(c.kernel_hash, kline, klen);
  c.model_hash = TraceHashLine(c.model_hash, mline, mlen);
  if (klen != mlen || memcmp(kline, mline, klen) != 0) c.equal = false;
}

void FullCheck(const char* kmaps, size_t klen, const char* mmaps, size_t mlen) {
  TraceRecord rec;
  rec.kind = TraceRecordKind::kCheck;
  rec.check.kind = TraceCheckKind::kFull;
  rec.check.kernel_len = klen;
  rec.check.model_len = mlen;
  rec.check.equal = klen == mlen && memcmp(kmaps, mmaps, klen) == 0;
  rec.check.kernel_hash = TraceHashLine(kTraceHashInit, kmaps, klen);
  rec.check.model_hash = TraceHashLine(kTraceHashInit, mmaps, mlen);
  Append(rec);
}

void Note(bool divergence, const char* what, const char* model, size_t model_len,
          const char* kernel, size_t kernel_len, uint64_t lo, uint64_t hi) {
  TraceRecord rec;
  rec.kind = TraceRecordKind::kNote;
  rec.note.kind = divergence ? TraceNoteKind::kDivergence : TraceNoteKind::kUnexplained;
  rec.note.what = Cstr(what);
  rec.note.model = Bytes(model, LineLen(model, model_len));
  rec.note.kernel = Bytes(kernel, LineLen(kernel, kernel_len));
  rec.note.lo = lo;
  rec.note.hi = hi;
  Append(rec);
}

void ForkPoint() {
  TraceRecord rec;
  rec.kind = TraceRecordKind::kForkPoint;
  rec.fork_point.ordinal = ++g_fork_points;
  rec.fork_point.tid = Tid();
  rec.fork_point.time_ns = Now(kClockMonotonic);
  Append(rec);
  Flush();
}

const char* StoppedEarly(int64_t* err) {
  *err = g_stopped_err;
  return g_stopped_why;
}

void ChildStart(bool follow) {
  g_stopped_why = nullptr;  // the parent's trace is the parent's
  // The parent's file stays the parent's.
  ReleaseFd();
  g_len = 0;
  g_check.active = false;
  t_tid = 0;
  if (!follow) {
    g_on = false;
    return;
  }
  static char parent_path[4096];
  memcpy(parent_path, g_path, sizeof(parent_path));
  const uint64_t pid = static_cast<uint64_t>(RawSyscall6(kSysGetpid));
  uint64_t exec_index = 0;
  int fd = -1;
  if (BaseName(g_base, g_file_env, pid, false)) fd = OpenTraceFile(g_base, &exec_index);
  if (fd < 0) {
    g_on = false;
    Writer w;
    w.Str("vmashadow: cannot create the trace file for pid ").Udec(pid).Str(" (").Dec(fd);
    w.Str("); not tracing it\n");
    return;
  }
  AdoptFd(fd);
  g_header.origin = TraceOrigin::kForkChild;
  g_header.parent_pid = g_header.pid;
  g_header.pid = pid;
  g_header.exec_index = exec_index;
  g_header.parent_trace = Cstr(parent_path);
  g_header.parent_fork_point = g_fork_points;
  g_header.realtime_ns = Now(kClockRealtime);
  g_header.monotonic_ns = Now(kClockMonotonic);
  g_fork_points = 0;
  g_phase = Phase::kIdle;
  g_in_seed = false;
  WriteHeader();
  Flush();
}

void ImageEnd(const char* reason) {
  TraceRecord rec;
  rec.kind = TraceRecordKind::kImageEnd;
  rec.image_end.reason = Cstr(reason);
  rec.image_end.time_ns = Now(kClockMonotonic);
  Append(rec);
  Flush();
}

void BeginEvent() {
  ResetEvent();
  g_phase = Phase::kBeforeFinish;
  g_begin_ns = Now(kClockMonotonic);
  g_have_begin = true;
}

void EndEvent() {
  g_phase = Phase::kIdle;
  ResetEvent();
  Flush();
}

void MapArgsOf(const MapArgs& m) {
  g_have_file = m.file != nullptr;
  if (g_have_file) {
    const FileDesc& d = *m.file;
    g_file = TraceFile{};
    g_file.id = d.id;
    g_file.inode = d.inode;
    g_file.dev_major = d.dev_major;
    g_file.dev_minor = d.dev_minor;
    g_file.kind = d.kind;
    g_file.bits = static_cast<uint8_t>(
        (d.deleted ? kFileDeleted : 0) | (d.has_close ? kFileHasClose : 0) |
        (d.readable ? kFileReadable : 0) | (d.writable ? kFileWritable : 0) |
        (d.append ? kFileAppend : 0) | (d.noexec_mount ? kFileNoexecMount : 0));
    size_t n = d.path != nullptr ? strlen(d.path) : 0;
    if (n >= sizeof(g_file_path)) n = sizeof(g_file_path) - 1;
    if (n != 0) memcpy(g_file_path, d.path, n);
    g_file.path = Bytes(g_file_path, n);
  }
  g_kernel_addr = m.kernel_addr;
}

void ShmemInode(uint64_t addr, uint64_t inode, uint32_t dev_major, uint32_t dev_minor) {
  g_have_shmem = true;
  g_shmem.addr = addr;
  g_shmem.inode = inode;
  g_shmem.dev_major = dev_major;
  g_shmem.dev_minor = dev_minor;
}

void FinishEvent(Call call, const uint64_t* args, int64_t kernel_ret, int64_t model_ret,
                 bool placement_ok, bool trapped, bool unmodelled) {
  TraceRecord rec;
  rec.kind = TraceRecordKind::kEvent;
  TraceEvent& e = rec.event;
  e.call = call;
  for (int i = 0; i < 6; ++i) e.args[i] = args[i];
  e.kernel_ret = kernel_ret;
  e.model_ret = unmodelled ? kernel_ret : model_ret;
  e.tid = Tid();
  e.time_ns = Now(kClockMonotonic);
  uint32_t flags = 0;
  if (trapped) flags |= kEventTrapped;
  if (placement_ok) flags |= kEventPlacementOk;
  if (unmodelled) flags |= kEventUnmodelled;
  if (g_have_begin && e.time_ns >= g_begin_ns) {
    flags |= kEventHasDuration;
    e.duration_ns = e.time_ns - g_begin_ns;
  }
  bool pc0 = false;
  e.nframes = static_cast<uint8_t>(CollectFrames(e.frames, g_max_frames, &pc0));
  if (pc0) flags |= kEventFrame0IsPc;
  if (g_have_file) {
    flags |= kEventHasFile;
    e.file = g_file;
  }
  if (g_kernel_addr != 0) {
    flags |= kEventHasKernelAddr;
    e.kernel_addr = g_kernel_addr;
  }
  if (g_have_shmem) {
    flags |= kEventHasShmem;
    e.shmem = g_shmem;
  }
  e.flags = flags;
  Append(rec);
  g_phase = Phase::kAfterFinish;
}

}  // namespace trace_internal
}  // namespace vmashadow::preload
