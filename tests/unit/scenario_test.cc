// scenario_test.cc — every scenario S1–S35 of docs/scenarios.md, run on
// two backends that must both match the scenario's table.
//
// A scenario is a table of steps (mmap, a page fault, mprotect, munmap,
// mremap, madvise, mlock, mseal, brk, fork, PROCMAP_QUERY ...). Each step has
// an expected result (0, an address, or an errno) and, where the scenario
// cares, an expected layout drawing of the region in the style of the kernel's
// tools/testing/vma tests ("AAB.CC": one character per page, '.' unmapped,
// equal letters one VMA) and per-VMA attribute checks (perms, VmFlags, offset,
// name, dev, inode).
//
// Backends:
//  * kernel: the real syscalls, in a forked child, on a carved-out empty region
//    (mmap PROT_NONE + munmap); drawings and attributes come from
//    /proc/self/maps and /proc/self/smaps.
//  * model: an AddressSpace over an Arena, DefaultKernelProfile() (6.18-fc).
//    Region scenarios run it with a fixed mmap_base and a fixed region, in a
//    child of its own (so a model crash fails one scenario only).
// Scenarios that need the whole address space (placement, hints, brk, the
// vDSO) run both backends in one child: the model is seeded from that child's
// own /proc/self/{maps,smaps,stat} right before the scenario's syscalls, with
// no allocation in between, and its results must also equal the kernel's.
//
// Children report plain structs through a pipe and never call gtest; the
// parent compares. Files live under /tmp (ext4 here). S20 needs map_count
// close to vm.max_map_count: the kernel child fills its own address space with
// filler VMAs instead of lowering the limit, which is global and would make
// every other process on the machine fail its mmaps meanwhile.
// VMASHADOW_SCENARIO_VERBOSE=1 prints every step's result and drawing.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/abi/kernel_profile.h"
#include "core/abi/linux_abi.h"
#include "core/mm/address_space.h"
#include "core/mm/arena.h"
#include "core/mm/mm_types.h"
#include "core/procfs/maps_text.h"

namespace vmashadow {
namespace {

// ---------------------------------------------------------------------------
// Vocabulary of the tables.

constexpr int64_t kPg = 4096;
constexpr int64_t kMiB = int64_t{1} << 20;
constexpr int64_t P(int64_t pages) { return pages * kPg; }

constexpr int kR = abi::kProtRead;
constexpr int kRW = abi::kProtRead | abi::kProtWrite;
constexpr int kRWX = kRW | abi::kProtExec;
constexpr int kPriv = abi::kMapPrivate | abi::kMapAnonymous;
constexpr int kShAnon = abi::kMapShared | abi::kMapAnonymous;
constexpr int kFixed = abi::kMapFixed;
constexpr int kNoRepl = abi::kMapFixedNoreplace;
constexpr int kNR = abi::kMapNoreserve;
constexpr int kMoveFixed = abi::kMremapMaymove | abi::kMremapFixed;

constexpr uint64_t kVsyscall = 0xffffffffff600000ULL;

// An address in a table: relative to the region base B, absolute, or relative
// to the value a previous step saved in a slot (its returned address).
constexpr int kSlotBase = -1;
constexpr int kSlotAbs = -2;
struct Addr {
  int slot = kSlotBase;
  int64_t off = 0;
};
Addr Pg(int64_t page) { return Addr{kSlotBase, P(page)}; }
Addr At(int64_t off) { return Addr{kSlotBase, off}; }
Addr Abs(uint64_t a) { return Addr{kSlotAbs, static_cast<int64_t>(a)}; }
Addr Slot(int slot, int64_t off = 0) { return Addr{slot, off}; }

// What a step must return.
struct Expect {
  enum Kind : uint8_t { kAt, kErr, kAnyAddr, kAligned2M, kNotAligned2M, kCongruent2M, kNotAt };
  Kind kind = kAt;
  Addr at = Abs(0);        // kAt, kNotAt
  int err = 0;             // kErr
  int64_t mod = 0;         // kCongruent2M: ret % 2 MiB
  bool check_end = false;  // PROCMAP_QUERY: vma_end too
  Addr end;
  bool check_qname = false;  // PROCMAP_QUERY: the returned name
  std::string qname;
};
Expect Ret(Addr a) {
  Expect e;
  e.at = a;
  return e;
}
Expect Err(int err) {
  Expect e;
  e.kind = Expect::kErr;
  e.err = err;
  return e;
}
Expect AnyAddr() {
  Expect e;
  e.kind = Expect::kAnyAddr;
  return e;
}
Expect Aligned2M() {
  Expect e;
  e.kind = Expect::kAligned2M;
  return e;
}
Expect NotAligned2M() {
  Expect e;
  e.kind = Expect::kNotAligned2M;
  return e;
}
Expect Congruent2M(int64_t mod) {
  Expect e;
  e.kind = Expect::kCongruent2M;
  e.mod = mod;
  return e;
}
Expect NotAt(Addr a) {
  Expect e;
  e.kind = Expect::kNotAt;
  e.at = a;
  return e;
}
Expect Range(Addr start, Addr end) {
  Expect e = Ret(start);
  e.check_end = true;
  e.end = end;
  return e;
}

// Attributes of the VMA containing `where`. Empty strings / -1 mean "not
// checked". Names may say $f0..$f3 for the scenario's file paths.
struct AttrCheck {
  Addr where;
  std::string perms;
  std::string has;    // VmFlags mnemonics that must be present
  std::string lacks;  // ... and absent
  int64_t offset = -1;
  std::string dev;
  bool check_name = false;
  std::string name;
  bool inode_differs_from_prev = false;  // vs. the previous check of the step

  AttrCheck Perms(std::string p) const {
    AttrCheck c = *this;
    c.perms = std::move(p);
    return c;
  }
  AttrCheck Has(std::string f) const {
    AttrCheck c = *this;
    c.has = std::move(f);
    return c;
  }
  AttrCheck Lacks(std::string f) const {
    AttrCheck c = *this;
    c.lacks = std::move(f);
    return c;
  }
  AttrCheck Off(int64_t o) const {
    AttrCheck c = *this;
    c.offset = o;
    return c;
  }
  AttrCheck Dev(std::string d) const {
    AttrCheck c = *this;
    c.dev = std::move(d);
    return c;
  }
  AttrCheck Name(std::string n) const {
    AttrCheck c = *this;
    c.check_name = true;
    c.name = std::move(n);
    return c;
  }
  AttrCheck InodeDiffersFromPrev() const {
    AttrCheck c = *this;
    c.inode_differs_from_prev = true;
    return c;
  }
};
AttrCheck A(Addr where) {
  AttrCheck c;
  c.where = where;
  return c;
}

enum class Op : uint8_t {
  kMap,
  kTouch,
  kProtect,
  kUnmap,
  kRemap,
  kAdvise,
  kLock,
  kUnlock,
  kSeal,
  kBrk,
  kForkChild,        // fork; the rest of the table runs in the child
  kForkParent,       // fork; the child exits at once, the table goes on in the parent
  kOpen,             // open(files[len], flags) into fd slot `arg`
  kUnlink,           // unlink(files[len])
  kSetHeadroom,      // map_count = max_map_count - len (kernel: filler VMAs)
  kReleaseHeadroom,  // the filler goes again (model: the limit goes back)
  kQuery,            // PROCMAP_QUERY(addr, flags, name buffer of len bytes)
  kCheck,            // nothing: carries drawings and attribute checks
};

struct Step {
  Op op = Op::kCheck;
  Addr addr = Abs(0);
  uint64_t len = 0;
  uint64_t len2 = 0;    // mremap new_len
  Addr addr2 = Abs(0);  // mremap new_addr
  int prot = 0;
  int flags = 0;
  int arg = -1;  // advice, mlock2 flags, fd slot, touch write flag
  uint64_t off = 0;
  Expect expect;
  int save_slot = -1;
  Addr draw_base;
  std::string drawing;
  std::vector<AttrCheck> attrs;

  Step Want(Expect e) const {
    Step s = *this;
    s.expect = std::move(e);
    return s;
  }
  Step Save(int slot) const {
    Step s = *this;
    s.save_slot = slot;
    return s;
  }
  Step Draw(std::string d) const { return DrawAt(Pg(0), std::move(d)); }
  Step DrawAt(Addr base, std::string d) const {
    Step s = *this;
    s.draw_base = base;
    s.drawing = std::move(d);
    return s;
  }
  Step Attr(AttrCheck c) const {
    Step s = *this;
    s.attrs.push_back(std::move(c));
    return s;
  }
  Step QName(std::string n) const {
    Step s = *this;
    s.expect.check_qname = true;
    s.expect.qname = std::move(n);
    return s;
  }
};

Step Map(Addr addr, uint64_t len, int prot, int flags) {
  Step s;
  s.op = Op::kMap;
  s.addr = addr;
  s.len = len;
  s.prot = prot;
  s.flags = flags;
  s.expect = (flags & (kFixed | kNoRepl)) ? Ret(addr) : AnyAddr();
  return s;
}
// Private anonymous, MAP_FIXED_NOREPLACE at page `page` of the region.
Step MapAnon(int64_t page, int64_t npages, int prot, int extra = 0) {
  return Map(Pg(page), P(npages), prot, kPriv | kNoRepl | extra);
}
Step MapShared(int64_t page, int64_t npages, int prot) {
  return Map(Pg(page), P(npages), prot, kShAnon | kNoRepl);
}
Step MapFile(Addr addr, uint64_t len, int prot, int flags, int fd_slot, uint64_t off) {
  Step s = Map(addr, len, prot, flags);
  s.arg = fd_slot;
  s.off = off;
  return s;
}
Step Touch(Addr addr, uint64_t len = 1, bool write = true) {
  Step s;
  s.op = Op::kTouch;
  s.addr = addr;
  s.len = len;
  s.arg = write ? 1 : 0;
  return s;
}
Step ReadTouch(Addr addr, uint64_t len = 1) { return Touch(addr, len, false); }
Step Protect(Addr addr, uint64_t len, int prot) {
  Step s;
  s.op = Op::kProtect;
  s.addr = addr;
  s.len = len;
  s.prot = prot;
  return s;
}
Step Unmap(Addr addr, uint64_t len) {
  Step s;
  s.op = Op::kUnmap;
  s.addr = addr;
  s.len = len;
  return s;
}
Step Remap(Addr addr, uint64_t old_len, uint64_t new_len, int flags, Addr new_addr) {
  Step s;
  s.op = Op::kRemap;
  s.addr = addr;
  s.len = old_len;
  s.len2 = new_len;
  s.flags = flags;
  s.addr2 = new_addr;
  return s;
}
Step Advise(Addr addr, uint64_t len, int advice) {
  Step s;
  s.op = Op::kAdvise;
  s.addr = addr;
  s.len = len;
  s.arg = advice;
  return s;
}
Step Lock(Addr addr, uint64_t len, int flags = 0) {
  Step s;
  s.op = Op::kLock;
  s.addr = addr;
  s.len = len;
  s.arg = flags;
  return s;
}
Step Unlock(Addr addr, uint64_t len) {
  Step s;
  s.op = Op::kUnlock;
  s.addr = addr;
  s.len = len;
  return s;
}
Step Seal(Addr addr, uint64_t len) {
  Step s;
  s.op = Op::kSeal;
  s.addr = addr;
  s.len = len;
  return s;
}
Step Brk(Addr addr) {
  Step s;
  s.op = Op::kBrk;
  s.addr = addr;
  s.expect = Ret(addr);
  return s;
}
Step ForkChild() {
  Step s;
  s.op = Op::kForkChild;
  return s;
}
Step ForkParent() {
  Step s;
  s.op = Op::kForkParent;
  return s;
}
Step Open(int fd_slot, int file, int oflags = O_RDONLY) {
  Step s;
  s.op = Op::kOpen;
  s.arg = fd_slot;
  s.len = file;
  s.flags = oflags;
  return s;
}
Step Unlink(int file) {
  Step s;
  s.op = Op::kUnlink;
  s.len = file;
  return s;
}
Step SetHeadroom(int headroom) {
  Step s;
  s.op = Op::kSetHeadroom;
  s.len = headroom;
  return s;
}
Step ReleaseHeadroom() {
  Step s;
  s.op = Op::kReleaseHeadroom;
  return s;
}
Step Query(Addr addr, uint64_t flags, uint32_t name_size) {
  Step s;
  s.op = Op::kQuery;
  s.addr = addr;
  s.flags = static_cast<int>(flags);
  s.len = name_size;
  return s;
}
Step Check() { return Step{}; }

enum class Mode : uint8_t { kRegion, kWhole };
enum class Setup : uint8_t {
  kCarve,  // base = a carved empty region (aligned to `align`)
  kBrk,    // base = PAGE_ALIGN(brk) - 1 page (brk is set to its aligned value first)
  kVdso,   // base = start of [vvar]
  kNone,   // base = 0
};

struct Scenario {
  std::string name;
  std::string doc;
  Mode mode = Mode::kRegion;
  Setup setup = Setup::kCarve;
  uint64_t carve_len = P(128);  // region size for kCarve
  uint64_t margin = P(64);      // empty pages kept on each side
  uint64_t align = kPg;
  int nfiles = 0;
  uint64_t file_size = P(16);
  std::vector<Step> steps;
};

// ---------------------------------------------------------------------------
// Observations: plain data that a child writes into a pipe.

constexpr int kMaxDraw = 80;
constexpr int kMaxAttrs = 4;
constexpr int kMaxSteps = 320;
constexpr int kMaxSlots = 256;
constexpr int kMaxFiles = 4;
constexpr int kMaxFdSlots = 8;

struct AttrObs {
  bool found;
  char perms[8];
  uint64_t offset;
  uint32_t dev_major;
  uint32_t dev_minor;
  uint64_t inode;
  char name[160];
  char vmflags[192];
};

struct StepObs {
  bool ran;
  int64_t ret;
  int64_t ret2;  // PROCMAP_QUERY vma_end
  char qname[128];
  char drawing[kMaxDraw + 1];
  AttrObs attrs[kMaxAttrs];
  char invalid[160];  // model: Validate()'s complaint after the step
};

struct RunResult {
  bool complete;
  char error[256];
  uint64_t base;
  int64_t slots[kMaxSlots];
  // Whole-address-space runs: the full maps text after the last step
  // (/proc/self/maps for the kernel, RenderMaps for the model).
  char final_maps[1 << 17];
  int nsteps;
  StepObs steps[kMaxSteps];
};

// The files of the current scenario (set by the parent before forking).
struct FileInfo {
  char path[128];
  uint64_t inode;
  uint32_t dev_major;
  uint32_t dev_minor;
};
FileInfo g_files[kMaxFiles];

// Child-side buffers: static, so that no step allocates (a malloc could mmap
// into the carved region, or change the layout the model was seeded from).
RunResult g_results[2];
char g_maps[1 << 20];
char g_smaps[4 << 20];
char g_seed_maps[1 << 20];
char g_seed_smaps[4 << 20];
alignas(16) char g_arena[16 << 20];
char g_small[4096];

void CopyStr(char* dst, size_t cap, const char* src, size_t len) {
  if (cap == 0) return;
  size_t n = std::min(len, cap - 1);
  std::memcpy(dst, src, n);
  dst[n] = '\0';
}
void CopyStr(char* dst, size_t cap, const char* src) { CopyStr(dst, cap, src, std::strlen(src)); }

size_t ReadFileInto(const char* path, char* buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    buf[0] = '\0';
    return 0;
  }
  size_t n = 0;
  while (n + 1 < cap) {
    ssize_t r = read(fd, buf + n, cap - 1 - n);
    if (r <= 0) break;
    n += static_cast<size_t>(r);
  }
  close(fd);
  buf[n] = '\0';
  return n;
}

uint64_t ReadSysctl(const char* path, uint64_t dflt) {
  if (ReadFileInto(path, g_small, sizeof g_small) == 0) return dflt;
  return std::strtoull(g_small, nullptr, 10);
}

int HexVal(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Parses hex at p (at least one digit); advances p.
bool ParseHex(const char** p, const char* end, uint64_t* out) {
  uint64_t v = 0;
  const char* s = *p;
  while (s < end && HexVal(*s) >= 0) v = v * 16 + static_cast<uint64_t>(HexVal(*s++));
  if (s == *p) return false;
  *p = s;
  *out = v;
  return true;
}

// One line of maps text, split into fields.
struct Line {
  uint64_t start = 0;
  uint64_t end = 0;
  const char* text = nullptr;
  size_t len = 0;
};

constexpr int kMaxLines = 16384;
Line g_lines[kMaxLines];

// Splits maps text into lines with their ranges. Returns the count.
int SplitMaps(const char* text, size_t len, Line* lines, int cap) {
  int n = 0;
  const char* p = text;
  const char* end = text + len;
  while (p < end && n < cap) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
    const char* le = nl ? nl : end;
    const char* q = p;
    Line l;
    if (ParseHex(&q, le, &l.start) && q < le && *q == '-' && (++q, ParseHex(&q, le, &l.end))) {
      l.text = p;
      l.len = static_cast<size_t>(le - p);
      lines[n++] = l;
    }
    p = nl ? nl + 1 : end;
  }
  return n;
}

// Fields of a maps line: "START-END PERMS OFFSET MAJ:MIN INODE [NAME]".
bool ParseLineFields(const Line& l, AttrObs* o) {
  const char* p = l.text;
  const char* end = l.text + l.len;
  p = static_cast<const char*>(std::memchr(p, ' ', l.len));
  if (!p || end - p < 6) return false;
  ++p;
  CopyStr(o->perms, sizeof o->perms, p, 4);
  p += 5;
  uint64_t off = 0, maj = 0, min = 0, ino = 0;
  if (!ParseHex(&p, end, &off) || p >= end || *p++ != ' ') return false;
  if (!ParseHex(&p, end, &maj) || p >= end || *p++ != ':') return false;
  if (!ParseHex(&p, end, &min) || p >= end || *p++ != ' ') return false;
  while (p < end && *p >= '0' && *p <= '9') ino = ino * 10 + static_cast<uint64_t>(*p++ - '0');
  while (p < end && *p == ' ') ++p;
  o->offset = off;
  o->dev_major = static_cast<uint32_t>(maj);
  o->dev_minor = static_cast<uint32_t>(min);
  o->inode = ino;
  CopyStr(o->name, sizeof o->name, p, static_cast<size_t>(end - p));
  return true;
}

// The VmFlags text of the smaps block whose VMA starts at `start`.
bool FindVmFlags(const char* smaps, size_t len, uint64_t start, char* out, size_t cap) {
  const char* p = smaps;
  const char* end = smaps + len;
  bool in_block = false;
  while (p < end) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
    const char* le = nl ? nl : end;
    const char* q = p;
    uint64_t s = 0;
    if (ParseHex(&q, le, &s) && q < le && *q == '-') {
      in_block = (s == start);
    } else if (in_block && le - p >= 8 && std::memcmp(p, "VmFlags:", 8) == 0) {
      const char* v = p + 8;
      while (v < le && *v == ' ') ++v;
      CopyStr(out, cap, v, static_cast<size_t>(le - v));
      return true;
    }
    p = nl ? nl + 1 : end;
  }
  return false;
}

char Letter(int k) {
  if (k < 26) return static_cast<char>('A' + k);
  if (k < 52) return static_cast<char>('a' + k - 26);
  return '#';
}

// Relabels a drawing so that each run of equal letters gets the next letter:
// the form both backends produce.
std::string Canonical(const std::string& d) {
  std::string out;
  char prev = '.';
  int k = -1;
  for (char c : d) {
    if (c == '.') {
      out += '.';
    } else {
      if (c != prev) ++k;
      out += Letter(k);
    }
    prev = c;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Backends.

class Backend {
 public:
  virtual ~Backend() = default;
  // Runs one step with its addresses resolved; returns the syscall's result
  // (or -errno) and fills the query fields of *o.
  virtual int64_t Do(const Step& s, uint64_t addr, uint64_t addr2, StepObs* o) = 0;
  // Draws npages pages from base into out (NUL-terminated).
  virtual void Draw(uint64_t base, size_t npages, char* out) = 0;
  // Attributes of the VMA containing addr; false when none.
  virtual bool Attr(uint64_t addr, AttrObs* o) = 0;
  virtual void AfterStep(StepObs* /*o*/) {}
};

uint64_t Resolve(const Addr& a, const RunResult& r) {
  if (a.slot == kSlotAbs) return static_cast<uint64_t>(a.off);
  if (a.slot == kSlotBase) return r.base + static_cast<uint64_t>(a.off);
  return static_cast<uint64_t>(r.slots[a.slot] + a.off);
}

void RunSteps(const Scenario& sc, Backend* b, RunResult* r) {
  r->nsteps = 0;
  for (size_t i = 0; i < sc.steps.size() && i < static_cast<size_t>(kMaxSteps); ++i) {
    const Step& s = sc.steps[i];
    StepObs* o = &r->steps[i];
    std::memset(o, 0, sizeof *o);
    o->ret = b->Do(s, Resolve(s.addr, *r), Resolve(s.addr2, *r), o);
    o->ran = true;
    if (s.save_slot >= 0 && s.save_slot < kMaxSlots) r->slots[s.save_slot] = o->ret;
    if (!s.drawing.empty()) {
      b->Draw(Resolve(s.draw_base, *r), std::min<size_t>(s.drawing.size(), kMaxDraw), o->drawing);
    }
    for (size_t k = 0; k < s.attrs.size() && k < static_cast<size_t>(kMaxAttrs); ++k) {
      o->attrs[k].found = b->Attr(Resolve(s.attrs[k].where, *r), &o->attrs[k]);
    }
    b->AfterStep(o);
    r->nsteps = static_cast<int>(i + 1);
  }
  r->complete = true;
}

// --- the kernel ---

sigjmp_buf g_touch_jmp;
volatile sig_atomic_t g_touch_armed = 0;

void TouchFaultHandler(int sig) {
  if (g_touch_armed) {
    g_touch_armed = 0;
    siglongjmp(g_touch_jmp, 1);
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

void InstallTouchHandlers() {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = TouchFaultHandler;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, nullptr);
  sigaction(SIGBUS, &sa, nullptr);
}

// One access; 0, or -EFAULT when it raised SIGSEGV/SIGBUS.
int64_t KernelTouchOne(uint64_t addr, bool write) {
  if (sigsetjmp(g_touch_jmp, 1) != 0) return -EFAULT;
  g_touch_armed = 1;
  volatile char* p = reinterpret_cast<volatile char*>(addr);
  if (write) {
    *p = 1;
  } else {
    (void)*p;
  }
  g_touch_armed = 0;
  return 0;
}

int64_t SysRet(long r) { return r == -1 ? -static_cast<int64_t>(errno) : static_cast<int64_t>(r); }

using abi::kProcmapQueryIoctl;
using abi::ProcmapQuery;

int CountKernelVmas() {
  size_t n = ReadFileInto("/proc/self/maps", g_maps, sizeof g_maps);
  int lines = SplitMaps(g_maps, n, g_lines, kMaxLines);
  int count = 0;
  for (int i = 0; i < lines; ++i) {
    if (g_lines[i].start != kVsyscall) ++count;
  }
  return count;
}

class KernelBackend : public Backend {
 public:
  KernelBackend() {
    for (int& fd : fds_) fd = -1;
  }
  ~KernelBackend() override {
    for (int fd : fds_) {
      if (fd >= 0) close(fd);
    }
    if (maps_fd_ >= 0) close(maps_fd_);
  }

  int64_t Do(const Step& s, uint64_t a, uint64_t a2, StepObs* o) override {
    switch (s.op) {
      case Op::kMap: {
        int fd = s.arg >= 0 ? fds_[s.arg] : -1;
        return SysRet(syscall(SYS_mmap, a, s.len, s.prot, s.flags, fd, s.off));
      }
      case Op::kTouch: {
        uint64_t end = a + std::max<uint64_t>(s.len, 1);
        for (uint64_t p = a; p < end; p = PageDown(p) + kPageSize) {
          int64_t r = KernelTouchOne(p, s.arg != 0);
          if (r != 0) return r;
        }
        return 0;
      }
      case Op::kProtect:
        return SysRet(syscall(SYS_mprotect, a, s.len, s.prot));
      case Op::kUnmap:
        return SysRet(syscall(SYS_munmap, a, s.len));
      case Op::kRemap:
        return SysRet(syscall(SYS_mremap, a, s.len, s.len2, s.flags, a2));
      case Op::kAdvise:
        return SysRet(syscall(SYS_madvise, a, s.len, s.arg));
      case Op::kLock:
        if (s.arg > 0) return SysRet(syscall(SYS_mlock2, a, s.len, s.arg));
        return SysRet(syscall(SYS_mlock, a, s.len));
      case Op::kUnlock:
        return SysRet(syscall(SYS_munlock, a, s.len));
      case Op::kSeal:
        return SysRet(syscall(462 /* mseal */, a, s.len, 0));
      case Op::kBrk:
        return SysRet(syscall(SYS_brk, a));
      case Op::kForkChild: {
        pid_t pid = fork();
        if (pid < 0) return -errno;
        if (pid > 0) {
          int status = 0;
          waitpid(pid, &status, 0);
          _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 99);
        }
        return 0;
      }
      case Op::kForkParent: {
        pid_t pid = fork();
        if (pid < 0) return -errno;
        if (pid == 0) _exit(0);
        int status = 0;
        waitpid(pid, &status, 0);
        return 0;
      }
      case Op::kOpen: {
        int fd = open(g_files[s.len].path, s.flags | O_CLOEXEC);
        if (fd < 0) return -errno;
        fds_[s.arg] = fd;
        return 0;
      }
      case Op::kUnlink:
        return unlink(g_files[s.len].path) == 0 ? 0 : -errno;
      case Op::kSetHeadroom:
        return FillMapCount(s.len);
      case Op::kReleaseHeadroom:
        if (filler_len_ == 0) return -EINVAL;
        return SysRet(syscall(SYS_munmap, filler_, filler_len_));
      case Op::kQuery: {
        if (maps_fd_ < 0) maps_fd_ = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
        ProcmapQuery q;
        std::memset(&q, 0, sizeof q);
        q.size = sizeof q;
        q.query_flags = static_cast<uint64_t>(s.flags);
        q.query_addr = a;
        char name[256] = {};
        if (s.len > 0) {
          q.vma_name_size = static_cast<uint32_t>(std::min<uint64_t>(s.len, sizeof name));
          q.vma_name_addr = reinterpret_cast<uint64_t>(name);
        }
        if (ioctl(maps_fd_, kProcmapQueryIoctl, &q) != 0) return -errno;
        o->ret2 = static_cast<int64_t>(q.vma_end);
        if (q.vma_name_size > 0) CopyStr(o->qname, sizeof o->qname, name);
        return static_cast<int64_t>(q.vma_start);
      }
      case Op::kCheck:
        return 0;
    }
    return -ENOSYS;
  }

  void Draw(uint64_t base, size_t npages, char* out) override {
    size_t n = ReadFileInto("/proc/self/maps", g_maps, sizeof g_maps);
    int lines = SplitMaps(g_maps, n, g_lines, kMaxLines);
    int letter = -1;
    int last_line = -1;
    int li = 0;
    for (size_t i = 0; i < npages; ++i) {
      uint64_t addr = base + i * kPageSize;
      while (li < lines && g_lines[li].end <= addr) ++li;
      if (li < lines && g_lines[li].start <= addr) {
        if (li != last_line) {
          ++letter;
          last_line = li;
        }
        out[i] = Letter(letter);
      } else {
        out[i] = '.';
      }
    }
    out[npages] = '\0';
  }

  bool Attr(uint64_t addr, AttrObs* o) override {
    size_t n = ReadFileInto("/proc/self/maps", g_maps, sizeof g_maps);
    int lines = SplitMaps(g_maps, n, g_lines, kMaxLines);
    for (int i = 0; i < lines; ++i) {
      if (g_lines[i].start <= addr && addr < g_lines[i].end) {
        if (!ParseLineFields(g_lines[i], o)) return false;
        size_t sn = ReadFileInto("/proc/self/smaps", g_smaps, sizeof g_smaps);
        if (!FindVmFlags(g_smaps, sn, g_lines[i].start, o->vmflags, sizeof o->vmflags)) {
          CopyStr(o->vmflags, sizeof o->vmflags, "?");
        }
        return true;
      }
    }
    return false;
  }

 private:
  // Brings map_count to max_map_count - headroom: one PROT_READ block with
  // every other page made PROT_NONE (each such interior page adds two VMAs,
  // the last page of a two-page tail adds one).
  int64_t FillMapCount(uint64_t headroom) {
    uint64_t max = ReadSysctl("/proc/sys/vm/max_map_count", 65530);
    uint64_t cur = static_cast<uint64_t>(CountKernelVmas());
    if (cur + headroom + 1 > max || max - headroom - cur > 1000000) return -ERANGE;
    uint64_t needed = max - headroom - cur;
    uint64_t pairs = (needed - 1) / 2;
    bool extra = (needed - 1) % 2 != 0;
    uint64_t len = (2 * pairs + 1 + (extra ? 1 : 0)) * kPageSize;
    long r = syscall(SYS_mmap, 0, len, PROT_READ, kPriv | kNR, -1, 0);
    if (r == -1) return -errno;
    filler_ = static_cast<uint64_t>(r);
    filler_len_ = len;
    for (uint64_t i = 0; i < pairs; ++i) {
      if (syscall(SYS_mprotect, filler_ + (2 * i + 1) * kPageSize, kPageSize, PROT_NONE) != 0) {
        return -errno;
      }
    }
    if (extra && syscall(SYS_mprotect, filler_ + len - kPageSize, kPageSize, PROT_NONE) != 0) {
      return -errno;
    }
    return 0;
  }

  int fds_[kMaxFdSlots];
  int maps_fd_ = -1;
  uint64_t filler_ = 0;
  uint64_t filler_len_ = 0;
};

// --- the model ---

struct FlagName {
  uint64_t bit;
  const char* name;
};
constexpr FlagName kFlagNames[] = {
    {kVmRead, "rd"},        {kVmWrite, "wr"},    {kVmExec, "ex"},       {kVmShared, "sh"},
    {kVmMayRead, "mr"},     {kVmMayWrite, "mw"}, {kVmMayExec, "me"},    {kVmMayShare, "ms"},
    {kVmGrowsdown, "gd"},   {kVmPfnmap, "pf"},   {kVmLocked, "lo"},     {kVmIo, "io"},
    {kVmSeqRead, "sr"},     {kVmRandRead, "rr"}, {kVmDontcopy, "dc"},   {kVmDontexpand, "de"},
    {kVmLockonfault, "lf"}, {kVmAccount, "ac"},  {kVmNoreserve, "nr"},  {kVmHugetlb, "ht"},
    {kVmSync, "sf"},        {kVmArch1, "ar"},    {kVmWipeonfork, "wf"}, {kVmDontdump, "dd"},
    {kVmMixedmap, "mm"},    {kVmHugepage, "hg"}, {kVmNohugepage, "nh"}, {kVmMergeable, "mg"},
    {kVmUffdMissing, "um"}, {kVmUffdWp, "uw"},   {kVmUffdMinor, "ui"},  {kVmShadowStack, "ss"},
    {kVmDroppable, "dp"},   {kVmSealed, "sl"},   {kVmMaybeGuard, "gu"},
};

void ModelFlagsText(uint64_t flags, char* out, size_t cap) {
  size_t n = 0;
  out[0] = '\0';
  for (const FlagName& f : kFlagNames) {
    if ((flags & f.bit) && n + 4 < cap) {
      out[n++] = f.name[0];
      out[n++] = f.name[1];
      out[n++] = ' ';
      out[n] = '\0';
    }
  }
}

// PROCMAP_QUERY answered from the model (the model has no query call of its
// own: this is the kernel's lookup, procfs_procmap_ioctl/query_matching_vma,
// over the model's tree and names).
int64_t ModelQuery(const AddressSpace& as, uint64_t addr, uint64_t qflags, uint64_t name_cap,
                   StepObs* o) {
  if (qflags & ~uint64_t{0x3f}) return -EINVAL;
  auto matches = [qflags](const Vma* v) {
    if ((qflags & 0x1) && !(v->flags & kVmRead)) return false;
    if ((qflags & 0x2) && !(v->flags & kVmWrite)) return false;
    if ((qflags & 0x4) && !(v->flags & kVmExec)) return false;
    if ((qflags & 0x8) && !(v->flags & kVmMayShare)) return false;
    if ((qflags & 0x20) && v->file == nullptr) return false;
    return true;
  };
  Vma* v = as.FindVma(addr);
  if (!(qflags & 0x10)) {
    if (!v || v->start > addr || !matches(v)) return -ENOENT;
  } else {
    while (v && !matches(v)) v = v->next;
    if (!v) return -ENOENT;
  }
  bool deleted = false;
  const char* name = VmaName(as, *v, &deleted);
  char full[256];
  std::snprintf(full, sizeof full, "%s%s", name, deleted ? " (deleted)" : "");
  size_t need = full[0] ? std::strlen(full) + 1 : 0;
  if (name_cap > 0) {
    if (need > name_cap) return -ENAMETOOLONG;
    CopyStr(o->qname, sizeof o->qname, full);
  }
  o->ret2 = static_cast<int64_t>(v->end);
  return static_cast<int64_t>(v->start);
}

class ModelBackend : public Backend {
 public:
  explicit ModelBackend(AddressSpace* as) : as_(as) {}

  int64_t Do(const Step& s, uint64_t a, uint64_t a2, StepObs* o) override {
    switch (s.op) {
      case Op::kMap: {
        MapArgs m;
        m.addr = a;
        m.len = s.len;
        m.prot = s.prot;
        m.flags = s.flags;
        m.file = s.arg >= 0 ? &descs_[s.arg] : nullptr;
        m.offset = s.off;
        Outcome out = as_->Map(m);
        // The kernel picks the shmem inode of a shared anonymous mapping; the
        // caller tells the model (as the preload does after the call).
        if (out.ok() && (s.flags & abi::kMapShared) && (s.flags & abi::kMapAnonymous)) {
          (void)as_->SetShmemInode(static_cast<uint64_t>(out.ret), next_shmem_ino_++, 0, 1);
        }
        return out.ret;
      }
      case Op::kTouch: {
        uint64_t end = a + std::max<uint64_t>(s.len, 1);
        for (uint64_t p = a; p < end; p = PageDown(p) + kPageSize) {
          int64_t r = as_->Touch(p, s.arg != 0).ret;
          if (r != 0) return r;
        }
        return 0;
      }
      case Op::kProtect:
        return as_->Protect(a, s.len, s.prot).ret;
      case Op::kUnmap:
        return as_->Unmap(a, s.len).ret;
      case Op::kRemap:
        return as_->Remap(a, s.len, s.len2, s.flags, a2).ret;
      case Op::kAdvise:
        return as_->Advise(a, s.len, s.arg).ret;
      case Op::kLock:
        return as_->Lock(a, s.len, std::max(s.arg, 0)).ret;
      case Op::kUnlock:
        return as_->Unlock(a, s.len).ret;
      case Op::kSeal:
        return as_->Seal(a, s.len, 0).ret;
      case Op::kBrk:
        return as_->Brk(a).ret;
      case Op::kForkChild:
        as_->ForkChild();
        return 0;
      case Op::kForkParent:
        return 0;
      case Op::kOpen: {
        const FileInfo& f = g_files[s.len];
        FileDesc d;
        d.id = next_file_id_++;
        d.inode = f.inode;
        d.dev_major = f.dev_major;
        d.dev_minor = f.dev_minor;
        d.kind = FileKind::kRegularThp;  // ext4
        d.readable = (s.flags & O_ACCMODE) != O_WRONLY;
        d.writable = (s.flags & O_ACCMODE) != O_RDONLY;
        d.path = f.path;
        descs_[s.arg] = d;
        return 0;
      }
      case Op::kUnlink: {
        const FileInfo& f = g_files[s.len];
        as_->MarkFileDeleted(f.dev_major, f.dev_minor, f.inode);
        return 0;
      }
      case Op::kSetHeadroom: {
        MmParams p = as_->params();
        saved_max_map_count_ = p.max_map_count;
        p.max_map_count = as_->map_count() + s.len;
        as_->set_params(p);
        return 0;
      }
      case Op::kReleaseHeadroom: {
        MmParams p = as_->params();
        p.max_map_count = saved_max_map_count_;
        as_->set_params(p);
        return 0;
      }
      case Op::kQuery:
        return ModelQuery(*as_, a, static_cast<uint64_t>(s.flags), s.len, o);
      case Op::kCheck:
        return 0;
    }
    return -ENOSYS;
  }

  void Draw(uint64_t base, size_t npages, char* out) override {
    int letter = -1;
    const Vma* last = nullptr;
    for (size_t i = 0; i < npages; ++i) {
      uint64_t addr = base + i * kPageSize;
      const Vma* v = as_->FindVma(addr);
      if (v && v->start <= addr) {
        if (v != last) {
          ++letter;
          last = v;
        }
        out[i] = Letter(letter);
      } else {
        out[i] = '.';
      }
    }
    out[npages] = '\0';
  }

  bool Attr(uint64_t addr, AttrObs* o) override {
    const Vma* v = as_->FindVma(addr);
    if (!v || v->start > addr) return false;
    o->perms[0] = (v->flags & kVmRead) ? 'r' : '-';
    o->perms[1] = (v->flags & kVmWrite) ? 'w' : '-';
    o->perms[2] = (v->flags & kVmExec) ? 'x' : '-';
    o->perms[3] = (v->flags & kVmMayShare) ? 's' : 'p';
    o->perms[4] = '\0';
    o->offset = v->file ? v->pgoff << kPageShift : 0;
    o->dev_major = v->file ? v->file->dev_major : 0;
    o->dev_minor = v->file ? v->file->dev_minor : 0;
    o->inode = v->file ? v->file->inode : 0;
    bool deleted = false;
    const char* name = VmaName(*as_, *v, &deleted);
    std::snprintf(o->name, sizeof o->name, "%s%s", name, deleted ? " (deleted)" : "");
    ModelFlagsText(v->flags, o->vmflags, sizeof o->vmflags);
    return true;
  }

  void AfterStep(StepObs* o) override {
    const char* bad = as_->Validate();
    if (bad) CopyStr(o->invalid, sizeof o->invalid, bad);
    if (as_->broken()) CopyStr(o->invalid, sizeof o->invalid, "model reports broken()");
  }

 private:
  AddressSpace* as_;
  FileDesc descs_[kMaxFdSlots];
  uint64_t next_file_id_ = 1000;
  uint64_t next_shmem_ino_ = 900000;
  uint64_t saved_max_map_count_ = 0;
};

// ---------------------------------------------------------------------------
// The children.

// Carves an empty region: maps it PROT_NONE and unmaps it again.
uint64_t CarveRegion(const Scenario& sc) {
  uint64_t len = sc.carve_len + 2 * sc.margin + sc.align;
  long r = syscall(SYS_mmap, 0, len, PROT_NONE, kPriv | kNR, -1, 0);
  if (r == -1) return 0;
  syscall(SYS_munmap, r, len);
  uint64_t base = static_cast<uint64_t>(r) + sc.margin;
  return (base + sc.align - 1) / sc.align * sc.align;
}

// Region mode, kernel side.
void KernelRegionChild(const Scenario& sc, int* count) {
  *count = 1;
  RunResult* r = &g_results[0];
  std::memset(r, 0, offsetof(RunResult, steps));
  InstallTouchHandlers();
  r->base = CarveRegion(sc);
  if (r->base == 0) {
    CopyStr(r->error, sizeof r->error, "cannot carve a region");
    return;
  }
  KernelBackend kb;
  RunSteps(sc, &kb, r);
}

constexpr uint64_t kModelRegionBase = 0x7e0000000000ULL;
constexpr uint64_t kModelMmapBase = 0x7f0000000000ULL;

// Region mode, model side: a fresh model, fixed mmap_base, fixed region.
void ModelRegionChild(const Scenario& sc, int* count) {
  *count = 1;
  RunResult* r = &g_results[0];
  std::memset(r, 0, offsetof(RunResult, steps));
  std::vector<char> buffer(8 << 20);
  Arena arena(buffer.data(), buffer.size());
  MmParams params;
  params.mmap_base = kModelMmapBase;
  params.max_map_count = 65530;
  AddressSpace as(&arena, DefaultKernelProfile(), params);
  as.SetHasGateVma(true);
  r->base = kModelRegionBase;
  ModelBackend mb(&as);
  RunSteps(sc, &mb, r);
}

// Field `n` (1-based, as in proc(5)) of /proc/self/stat.
uint64_t RlimitCur(int resource) {
  struct rlimit rl;
  if (getrlimit(resource, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return kUnlimited;
  return rl.rlim_cur;
}

// Whole-address-space mode: both backends in this child. The model is seeded
// from this process's maps right before the scenario's syscalls; nothing in
// between allocates.
void WholeChild(const Scenario& sc, int* count) {
  *count = 2;
  RunResult* kr = &g_results[0];
  RunResult* mr = &g_results[1];
  std::memset(kr, 0, offsetof(RunResult, steps));
  std::memset(mr, 0, offsetof(RunResult, steps));
  InstallTouchHandlers();

  uint64_t base = 0;
  switch (sc.setup) {
    case Setup::kCarve:
      base = CarveRegion(sc);
      if (base == 0) {
        CopyStr(kr->error, sizeof kr->error, "cannot carve a region");
        CopyStr(mr->error, sizeof mr->error, "cannot carve a region");
        return;
      }
      break;
    case Setup::kBrk: {
      uint64_t cur = static_cast<uint64_t>(syscall(SYS_brk, 0));
      uint64_t aligned = PageAlign(cur);
      if (aligned != cur) syscall(SYS_brk, aligned);
      base = aligned - kPageSize;
      break;
    }
    case Setup::kVdso: {
      size_t n = ReadFileInto("/proc/self/maps", g_maps, sizeof g_maps);
      int lines = SplitMaps(g_maps, n, g_lines, kMaxLines);
      for (int i = 0; i < lines; ++i) {
        AttrObs a;
        if (ParseLineFields(g_lines[i], &a) && std::strcmp(a.name, "[vvar]") == 0) {
          base = g_lines[i].start;
        }
      }
      if (base == 0) {
        CopyStr(kr->error, sizeof kr->error, "no [vvar] in /proc/self/maps");
        CopyStr(mr->error, sizeof mr->error, "no [vvar] in /proc/self/maps");
        return;
      }
      break;
    }
    case Setup::kNone:
      break;
  }
  kr->base = base;
  mr->base = base;

  // The facts the model starts from.
  size_t maps_len = ReadFileInto("/proc/self/maps", g_seed_maps, sizeof g_seed_maps);
  size_t smaps_len = ReadFileInto("/proc/self/smaps", g_seed_smaps, sizeof g_seed_smaps);
  const size_t stat_len = ReadFileInto("/proc/self/stat", g_small, sizeof g_small);
  ProcStat stat;
  ParseProcStat(g_small, stat_len, &stat);
  const uint64_t start_stack = stat.start_stack;
  const uint64_t start_data = stat.start_data;
  const uint64_t end_data = stat.end_data;
  const uint64_t start_brk = stat.start_brk;
  uint64_t cur_brk = static_cast<uint64_t>(syscall(SYS_brk, 0));

  MmParams params;
  // docs/placement.md#inferring-mmap_base
  params.mmap_base = InferMmapBase(g_seed_maps, maps_len, start_stack);
  params.max_map_count = ReadSysctl("/proc/sys/vm/max_map_count", 65530);
  params.dac_mmap_min_addr = ReadSysctl("/proc/sys/vm/mmap_min_addr", 4096);
  params.mmap_min_addr = std::max<uint64_t>(params.dac_mmap_min_addr, 65536);  // LSM minimum
  params.rlimit_stack = RlimitCur(RLIMIT_STACK);
  params.rlimit_data = RlimitCur(RLIMIT_DATA);
  params.rlimit_as = RlimitCur(RLIMIT_AS);
  params.rlimit_memlock = RlimitCur(RLIMIT_MEMLOCK);
  params.start_data = start_data;
  params.end_data = end_data;

  Arena arena(g_arena, sizeof g_arena);
  AddressSpace as(&arena, DefaultKernelProfile(), params);
  size_t bad_line = 0;
  int seeded = SeedFromMaps(&as, g_seed_maps, maps_len, g_seed_smaps, smaps_len, &bad_line);
  as.SetBrkState(start_brk, cur_brk);
  as.SetStartStack(start_stack);
  // This process is a fork child of the test runner: every private VMA with
  // anonymous pages has an anon_vma inherited from the parent (docs/merge-split.md#anon_vma).
  {
    const char* p = g_seed_smaps;
    const char* end = g_seed_smaps + smaps_len;
    uint64_t cur_start = 0;
    uint64_t next_id = uint64_t{1} << 40;
    while (p < end) {
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
      const char* le = nl ? nl : end;
      const char* q = p;
      uint64_t s = 0;
      if (ParseHex(&q, le, &s) && q < le && *q == '-') {
        cur_start = s;
      } else if (le - p > 10 && std::memcmp(p, "Anonymous:", 10) == 0) {
        uint64_t kb = std::strtoull(p + 10, nullptr, 10);
        Vma* v = as.FindVma(cur_start);
        if (kb > 0 && v && v->start == cur_start && !(v->flags & kVmMayShare)) {
          v->anon.anon_vma = next_id++;
          v->anon.fork_child = true;
        }
      }
      p = nl ? nl + 1 : end;
    }
  }

  KernelBackend kb;
  RunSteps(sc, &kb, kr);
  ReadFileInto("/proc/self/maps", kr->final_maps, sizeof kr->final_maps);
  if (seeded != 0) {
    std::snprintf(mr->error, sizeof mr->error, "SeedFromMaps failed: %d at line %zu", seeded,
                  bad_line);
    return;
  }
  ModelBackend mb(&as);
  RunSteps(sc, &mb, mr);
  if (RenderMaps(as, mr->final_maps, sizeof mr->final_maps) >= sizeof mr->final_maps) {
    CopyStr(mr->error, sizeof mr->error, "RenderMaps: more than 128 KiB");
  }
}

bool WriteAll(int fd, const void* data, size_t len) {
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    ssize_t w = write(fd, p, len);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    len -= static_cast<size_t>(w);
  }
  return true;
}

using ChildBody = void (*)(const Scenario& sc, int* count);

// Runs body in a forked child; returns the RunResults it wrote.
std::vector<std::unique_ptr<RunResult>> RunInChild(const Scenario& sc, ChildBody body,
                                                   std::string* err) {
  std::vector<std::unique_ptr<RunResult>> out;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    *err = "pipe2 failed";
    return out;
  }
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) {
    *err = "fork failed";
    return out;
  }
  if (pid == 0) {
    close(fds[0]);
    int count = 0;
    body(sc, &count);
    for (int i = 0; i < count; ++i) {
      uint64_t n =
          offsetof(RunResult, steps) + static_cast<uint64_t>(g_results[i].nsteps) * sizeof(StepObs);
      if (!WriteAll(fds[1], &n, sizeof n) || !WriteAll(fds[1], &g_results[i], n)) _exit(3);
    }
    _exit(0);
  }
  close(fds[1]);
  std::string data;
  char buf[65536];
  for (;;) {
    ssize_t r = read(fds[0], buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    data.append(buf, static_cast<size_t>(r));
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  size_t pos = 0;
  while (pos + sizeof(uint64_t) <= data.size()) {
    uint64_t n = 0;
    std::memcpy(&n, data.data() + pos, sizeof n);
    pos += sizeof n;
    if (n > sizeof(RunResult) || pos + n > data.size()) break;
    auto r = std::make_unique<RunResult>();
    std::memcpy(r.get(), data.data() + pos, n);
    pos += n;
    out.push_back(std::move(r));
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    char msg[128];
    if (WIFSIGNALED(status)) {
      std::snprintf(msg, sizeof msg, "child killed by signal %d (%s)", WTERMSIG(status),
                    strsignal(WTERMSIG(status)));
    } else {
      std::snprintf(msg, sizeof msg, "child exited with status %d", WEXITSTATUS(status));
    }
    *err = msg;
  }
  return out;
}

// ---------------------------------------------------------------------------
// The scenarios (docs/scenarios.md).

std::vector<Scenario> BuildScenarios();

const std::vector<Scenario>& AllScenarios() {
  static const std::vector<Scenario>* all = new std::vector<Scenario>(BuildScenarios());
  return *all;
}

Scenario Region(std::string name, std::string doc, std::vector<Step> steps) {
  Scenario sc;
  sc.name = std::move(name);
  sc.doc = std::move(doc);
  sc.steps = std::move(steps);
  return sc;
}

Scenario Whole(std::string name, std::string doc, Setup setup, std::vector<Step> steps) {
  Scenario sc = Region(std::move(name), std::move(doc), std::move(steps));
  sc.mode = Mode::kWhole;
  sc.setup = setup;
  return sc;
}

std::string Dots(int n) { return std::string(static_cast<size_t>(n), '.'); }

void AddS12(std::vector<Scenario>* out) {
  struct Split {
    const char* name;
    int advice;
    const char* flag;
  };
  // S12 (docs/merge-split.md#per-call-rules): the advices that change vm_flags split
  // [2,4) out of 0-6.
  const Split splits[] = {
      {"RANDOM", abi::kMadvRandom, "rr"},         {"SEQUENTIAL", abi::kMadvSequential, "sr"},
      {"DONTFORK", abi::kMadvDontfork, "dc"},     {"WIPEONFORK", abi::kMadvWipeonfork, "wf"},
      {"DONTDUMP", abi::kMadvDontdump, "dd"},     {"HUGEPAGE", abi::kMadvHugepage, "hg"},
      {"NOHUGEPAGE", abi::kMadvNohugepage, "nh"}, {"MERGEABLE", abi::kMadvMergeable, "mg"},
  };
  for (const Split& s : splits) {
    out->push_back(Region(std::string("S12_split_") + s.name,
                          std::string("S12: madvise ") + s.name + " on 2..4 splits 0-6 in three",
                          {
                              MapAnon(0, 6, kRW).Draw("AAAAAA."),
                              Advise(Pg(2), P(2), s.advice)
                                  .Draw("AABBCC.")
                                  .Attr(A(Pg(2)).Has(s.flag))
                                  .Attr(A(Pg(0)).Lacks(s.flag))
                                  .Attr(A(Pg(4)).Lacks(s.flag)),
                          }));
  }
  struct NoSplit {
    const char* name;
    int advice;
  };
  // S12: advices that act on pages only never split.
  const NoSplit nosplits[] = {
      {"COLD", abi::kMadvCold},
      {"PAGEOUT", abi::kMadvPageout},
      {"FREE", abi::kMadvFree},
      {"WILLNEED", abi::kMadvWillneed},
      {"POPULATE_WRITE", abi::kMadvPopulateWrite},
  };
  for (const NoSplit& s : nosplits) {
    out->push_back(Region(std::string("S12_nosplit_") + s.name,
                          std::string("S12: madvise ") + s.name + " on 2..4 leaves one VMA",
                          {
                              MapAnon(0, 6, kRW),
                              Advise(Pg(2), P(2), s.advice).Draw("AAAAAA."),
                          }));
  }
  out->push_back(Region(
      "S12_nosplit_GUARD_INSTALL", "S12: GUARD_INSTALL never splits; sticky 'gu' on the whole VMA",
      {
          MapAnon(0, 6, kRW),
          Advise(Pg(2), P(2), abi::kMadvGuardInstall).Draw("AAAAAA.").Attr(A(Pg(0)).Has("gu")),
          Advise(Pg(2), P(2), abi::kMadvGuardRemove).Draw("AAAAAA.").Attr(A(Pg(0)).Has("gu")),
      }));
  out->push_back(
      Region("S12_DONTFORK_DOFORK", "S12: DONTFORK then DOFORK re-merges to 1 VMA",
             {
                 MapAnon(0, 6, kRW),
                 Advise(Pg(2), P(2), abi::kMadvDontfork).Draw("AABBCC."),
                 Advise(Pg(2), P(2), abi::kMadvDofork).Draw("AAAAAA.").Attr(A(Pg(2)).Lacks("dc")),
             }));
  out->push_back(Region("S12_HUGEPAGE_NOHUGEPAGE",
                        "S12: HUGEPAGE then NOHUGEPAGE leaves nh: still 3 VMAs",
                        {
                            MapAnon(0, 6, kRW),
                            Advise(Pg(2), P(2), abi::kMadvHugepage).Draw("AABBCC."),
                            Advise(Pg(2), P(2), abi::kMadvNohugepage)
                                .Draw("AABBCC.")
                                .Attr(A(Pg(2)).Has("nh").Lacks("hg")),
                        }));
}

// S28's addresses: b(k, bytes) is b0 + k pages + bytes, where b0 is the
// page-aligned brk at the start and B = b0 - 1 page (the old heap's last page).
Addr BrkAt(int64_t pages, int64_t bytes = 0) { return At(P(pages + 1) + bytes); }

std::vector<Step> S33Steps() {
  // t18: random placements; a fixed seed so a failure can be replayed.
  std::mt19937_64 rng(0x5eed533);
  std::vector<Step> steps;
  std::vector<uint64_t> lens;
  std::vector<bool> unmapped;
  for (int k = 0; k < 200; ++k) {
    uint64_t r = rng() % 10;
    uint64_t len;
    if (r < 3) {
      len = (1 + rng() % 4) * 2 * kMiB;
    } else if (r < 6) {
      len = P(static_cast<int64_t>(1 + rng() % 16));
    } else {
      len = P(static_cast<int64_t>(1 + rng() % 600));
    }
    int prot = (rng() % 2) ? kR : kRW;
    steps.push_back(Map(Abs(0), len, prot, kPriv).Save(k));
    lens.push_back(len);
    unmapped.push_back(false);
    if (k > 5 && rng() % 3 == 0) {
      size_t j = rng() % static_cast<uint64_t>(k);
      if (!unmapped[j]) {
        steps.push_back(Unmap(Slot(static_cast<int>(j)), lens[j]));
        unmapped[j] = true;
      }
    }
  }
  return steps;
}

std::vector<Scenario> BuildScenarios() {
  std::vector<Scenario> v;

  v.push_back(
      Region("S1", "S1: adjacent private RW anonymous mappings merge",
             {
                 MapAnon(1, 1, kRW).Draw(".A....."),
                 MapAnon(2, 1, kRW).Draw(".AA...."),
                 MapAnon(0, 1, kRW).Draw("AAA....").Attr(
                     A(Pg(0)).Perms("rw-p").Off(0).Dev("00:00").Name("").Has("rd wr mr mw me ac")),
                 MapAnon(4, 1, kRW).Draw("AAA.B.."),
                 MapAnon(3, 1, kRW).Draw("AAAAA.."),
             }));

  v.push_back(Region("S2", "S2: R next to RW, and NORESERVE next to plain RW, stay apart",
                     {
                         MapAnon(0, 1, kR),
                         MapAnon(1, 1, kRW)
                             .Draw("AB....")
                             .Attr(A(Pg(0)).Perms("r--p"))
                             .Attr(A(Pg(1)).Perms("rw-p")),
                         MapAnon(4, 1, kRW, kNR),
                         MapAnon(5, 1, kRW)
                             .Draw("AB..CD")
                             .Attr(A(Pg(4)).Has("nr").Lacks("ac"))
                             .Attr(A(Pg(5)).Has("ac").Lacks("nr")),
                     }));

  v.push_back(
      Region("S3", "S3: two adjacent MAP_SHARED anonymous mappings never merge",
             {
                 MapShared(0, 1, kRW),
                 MapShared(1, 1, kRW)
                     .Draw("AB..")
                     .Attr(A(Pg(0)).Perms("rw-s").Off(0).Dev("00:01").Name("/dev/zero (deleted)"))
                     .Attr(A(Pg(1))
                               .Perms("rw-s")
                               .Off(0)
                               .Dev("00:01")
                               .Name("/dev/zero (deleted)")
                               .InodeDiffersFromPrev()),
             }));

  v.push_back(Whole(
      "S4", "S4: mmap(NULL, 4096) twice: the second lands below and merges", Setup::kNone,
      {
          Map(Abs(0), P(1), kRW, kPriv).Want(AnyAddr()).Save(0),
          Map(Abs(0), P(1), kRW, kPriv).Want(Ret(Slot(0, -P(1)))).DrawAt(Slot(0, -P(1)), "AA"),
      }));

  v.push_back(Region("S5", "S5 (6.15+ detector): unfaulted R NR absorbs faulted NR made R",
                     {
                         MapAnon(0, 1, kRW, kNR),
                         Protect(Pg(0), P(1), kR),
                         MapAnon(1, 1, kRW, kNR).Draw("AB.."),
                         Touch(Pg(1)),
                         Protect(Pg(1), P(1), kR).Draw("AA..").Attr(A(Pg(0)).Perms("r--p")),
                     }));

  v.push_back(Region("S6", "S6: S5 without NORESERVE: mprotect drops ac from unfaulted: 2 VMAs",
                     {
                         MapAnon(0, 1, kRW),
                         Protect(Pg(0), P(1), kR),
                         MapAnon(1, 1, kRW),
                         Touch(Pg(1)),
                         Protect(Pg(1), P(1), kR)
                             .Draw("AB..")
                             .Attr(A(Pg(0)).Perms("r--p").Lacks("ac"))
                             .Attr(A(Pg(1)).Perms("r--p").Has("ac")),
                     }));

  v.push_back(Region("S7", "S7: unfaulted R NR on both sides absorb a faulted middle made R",
                     {
                         MapAnon(0, 1, kR, kNR),
                         MapAnon(2, 1, kR, kNR),
                         MapAnon(1, 1, kRW, kNR).Draw("ABC."),
                         Touch(Pg(1)),
                         Protect(Pg(1), P(1), kR).Draw("AAA.").Attr(A(Pg(1)).Perms("r--p")),
                     }));

  v.push_back(Region("S8", "S8: distinct anon_vmas on both sides: the new middle merges left",
                     {
                         MapAnon(0, 1, kRW),
                         MapAnon(2, 1, kRW),
                         Touch(Pg(0)),
                         Touch(Pg(2)),
                         MapAnon(1, 1, kRW).Draw("AAB."),
                     }));

  v.push_back(Region("S9", "S9: a fault reuses the neighbour's anon_vma, so they merge later",
                     {
                         MapAnon(0, 1, kRW),
                         MapAnon(1, 1, kRWX).Draw("AB."),
                         Touch(Pg(0)),
                         Touch(Pg(1)),
                         Protect(Pg(1), P(1), kRW).Draw("AA."),
                     }));

  v.push_back(Region("S10_child", "S10: in the fork child a faulted VMA does not merge",
                     {
                         MapAnon(0, 1, kRW),
                         Touch(Pg(0)),
                         ForkChild(),
                         MapAnon(1, 1, kRW).Draw("AB.."),
                     }));
  v.push_back(Region("S10_parent", "S10: in the fork parent the same map merges",
                     {
                         MapAnon(0, 1, kRW),
                         Touch(Pg(0)),
                         ForkParent(),
                         MapAnon(1, 1, kRW).Draw("AA.."),
                     }));
  v.push_back(Region("S10b", "S10b (t20): a read fault makes no anon_vma: the child merges",
                     {
                         MapAnon(0, 1, kRW),
                         ReadTouch(Pg(0)),
                         ForkChild(),
                         MapAnon(1, 1, kRW).Draw("AA.."),
                     }));

  v.push_back(Region(
      "S11", "S11: mlock splits out 'lo', munlock merges back",
      {
          MapAnon(0, 8, kRW).Draw("AAAAAAAA."),
          Lock(Pg(2), P(2)).Draw("AABBCCCC.").Attr(A(Pg(2)).Has("lo")).Attr(A(Pg(0)).Lacks("lo")),
          Unlock(Pg(2), P(2)).Draw("AAAAAAAA.").Attr(A(Pg(2)).Lacks("lo")),
      }));

  AddS12(&v);

  v.push_back(Region("S13", "S13: mprotect R over rw/r/rw NORESERVE collapses to one VMA",
                     {
                         MapAnon(0, 2, kRW, kNR),
                         MapAnon(2, 2, kR, kNR),
                         MapAnon(4, 2, kRW, kNR).Draw("AABBCC."),
                         Protect(Pg(0), P(6), kR).Draw("AAAAAA.").Attr(A(Pg(0)).Perms("r--p")),
                     }));

  v.push_back(Region("S14", "S14: mprotect over a hole: ENOMEM, the part before stays changed",
                     {
                         MapAnon(0, 2, kRW),
                         MapAnon(3, 2, kRW).Draw("AA.BB."),
                         Protect(Pg(0), P(5), kR)
                             .Want(Err(ENOMEM))
                             .Draw("AA.BB.")
                             .Attr(A(Pg(0)).Perms("r--p"))
                             .Attr(A(Pg(3)).Perms("rw-p")),
                     }));

  v.push_back(Region("S15", "S15: munmap rounds len up, punches without merging; EINVAL cases",
                     {
                         MapAnon(0, 4, kRW).Draw("AAAA."),
                         Unmap(Pg(1), 1).Draw("A.BB."),
                         Unmap(At(P(2) + 1), P(1)).Want(Err(EINVAL)).Draw("A.BB."),
                         Unmap(Pg(2), 0).Want(Err(EINVAL)).Draw("A.BB."),
                         Unmap(Pg(1), P(1)).Draw("A.BB."),
                     }));

  {
    Scenario sc =
        Region("S16", "S16: file mappings merge only through one open file description",
               {
                   Open(0, 0),
                   MapFile(Pg(0), P(2), kR, abi::kMapPrivate | kNoRepl, 0, 0),
                   MapFile(Pg(2), P(2), kR, abi::kMapPrivate | kNoRepl, 0, P(2))
                       .Draw("AAAA....")
                       .Attr(A(Pg(0)).Perms("r--p").Off(0).Name("$f0")),
                   Open(1, 0),
                   MapFile(Pg(4), P(2), kR, abi::kMapPrivate | kNoRepl, 1, P(4)).Draw("AAAABB.."),
                   MapFile(Pg(6), P(2), kR, abi::kMapPrivate | kNoRepl, 1, P(8))
                       .Draw("AAAABBCC.")
                       .Attr(A(Pg(4)).Off(P(4)).Name("$f0"))
                       .Attr(A(Pg(6)).Off(P(8)).Name("$f0")),
                   Unlink(0)
                       .Draw("AAAABBCC.")
                       .Attr(A(Pg(0)).Name("$f0 (deleted)"))
                       .Attr(A(Pg(6)).Name("$f0 (deleted)")),
               });
    sc.nfiles = 1;
    v.push_back(sc);
  }

  {
    Scenario sc =
        Region("S17", "S17: munmap in a MAP_SHARED file: the upper piece's offset",
               {
                   Open(0, 0),
                   MapFile(Pg(0), P(8), kR, abi::kMapShared | kNoRepl, 0, 0).Draw("AAAAAAAA."),
                   Unmap(Pg(3), P(2))
                       .Draw("AAA..BBB.")
                       .Attr(A(Pg(0)).Perms("r--s").Off(0).Name("$f0"))
                       .Attr(A(Pg(5)).Perms("r--s").Off(P(5)).Name("$f0")),
               });
    sc.nfiles = 1;
    v.push_back(sc);
  }

  v.push_back(
      Region("S18", "S18: NOREPLACE onto a page: EEXIST; unaligned FIXED: EINVAL",
             {
                 MapAnon(0, 2, kRW),
                 MapAnon(1, 1, kRW).Want(Err(EEXIST)).Draw("AA.."),
                 Map(At(P(3) + 5), P(1), kRW, kPriv | kFixed).Want(Err(EINVAL)).Draw("AA.."),
             }));

  v.push_back(Region("S19", "S19: MAP_FIXED RW over a faulted RW middle merges back to one",
                     {
                         MapAnon(0, 6, kRW),
                         Touch(Pg(0), P(6)),
                         Map(Pg(2), P(2), kRW, kPriv | kFixed).Draw("AAAAAA."),
                         Map(Pg(2), P(2), kR, kPriv | kFixed).Draw("AABBCC."),
                     }));

  {
    Scenario sc = Region("S20", "S20 (t6): the map_count limit for splits, munmap, madvise, mmap",
                         {
                             MapAnon(0, 16, kRW),
                             SetHeadroom(4),
                             Protect(Pg(1), P(1), kR),
                             Protect(Pg(3), P(1), kR),
                             Protect(Pg(5), P(1), kR).Want(Err(ENOMEM)),
                             Protect(Pg(14), P(2), kR).Want(Err(ENOMEM)),
                             Unmap(Pg(8), P(1)).Want(Err(ENOMEM)),
                             Advise(Pg(10), P(1), abi::kMadvDontfork).Want(Err(EAGAIN)),
                             Lock(Pg(10), P(1)).Want(Err(ENOMEM)),
                             Map(Pg(40), P(1), kRW, kPriv | kFixed),
                             Map(Pg(42), P(1), kRW, kPriv | kFixed).Want(Err(ENOMEM)),
                             Map(Pg(44), P(1), kRW, kPriv | kFixed).Want(Err(ENOMEM)),
                             ReleaseHeadroom().Draw("ABCDEEEEEEEEEEEE" + Dots(24) + "F" + Dots(5)),
                         });
    v.push_back(sc);
  }

  v.push_back(Region(
      "S21", "S21: mseal splits and merges sealed pieces; the EPERM matrix",
      {
          MapAnon(0, 4, kRW),
          Seal(Pg(1), P(1)).Draw("ABCC.").Attr(A(Pg(1)).Has("sl")).Attr(A(Pg(0)).Lacks("sl")),
          Seal(Pg(2), P(1)).Draw("ABBC.").Attr(A(Pg(2)).Has("sl")),
          Unmap(Pg(0), P(2)).Want(Err(EPERM)).Draw("ABBC."),
          Protect(Pg(0), P(4), kR)
              .Want(Err(EPERM))
              .Draw("ABBC.")
              .Attr(A(Pg(0)).Perms("r--p"))
              .Attr(A(Pg(1)).Perms("rw-p")),
          Remap(Pg(1), P(2), P(2), kMoveFixed, Pg(10)).Want(Err(EPERM)).Draw("ABBC......."),
          Map(Pg(1), P(1), kRW, kPriv | kFixed).Want(Err(EPERM)).Draw("ABBC."),
          Lock(Pg(1), P(1))
              .Draw("ABCD.")
              .Attr(A(Pg(1)).Has("lo sl"))
              .Attr(A(Pg(2)).Has("sl").Lacks("lo")),
      }));

  v.push_back(Region("S22", "S22 (t16): a failed munmap into a sealed VMA leaves its split",
                     {
                         MapAnon(0, 4, kRW),
                         MapAnon(4, 4, kR),
                         Seal(Pg(4), P(4)),
                         Unmap(Pg(2), P(4))
                             .Want(Err(EPERM))
                             .Draw("AABBCCCC.")
                             .Attr(A(Pg(4)).Has("sl"))
                             .Attr(A(Pg(2)).Lacks("sl")),
                     }));

  v.push_back(Region("S23", "S23: mremap grows in place, and three-way merges with next",
                     {
                         MapAnon(0, 2, kRW),
                         Remap(Pg(0), P(2), P(4), 0, Abs(0)).Want(Ret(Pg(0))).Draw("AAAA...."),
                         MapAnon(6, 2, kRW).Draw("AAAA..BB."),
                         Remap(Pg(0), P(4), P(6), 0, Abs(0)).Want(Ret(Pg(0))).Draw("AAAAAAAA."),
                     }));

  v.push_back(
      Region("S24", "S24: an unfaulted move merges where it lands; a faulted one only back home",
             {
                 MapAnon(0, 2, kRW),
                 MapAnon(10, 2, kRW).Draw("AA........BB"),
                 Remap(Pg(10), P(2), P(2), kMoveFixed, Pg(2)).Want(Ret(Pg(2))).Draw("AAAA........"),
                 MapAnon(20, 4, kRW),
                 Touch(Pg(20)),
                 Remap(Pg(20), P(2), P(2), kMoveFixed, Pg(4))
                     .Want(Ret(Pg(4)))
                     .Draw("AAAABB" + Dots(16) + "CC."),
                 Remap(Pg(4), P(2), P(2), kMoveFixed, Pg(20))
                     .Want(Ret(Pg(20)))
                     .Draw("AAAA" + Dots(16) + "BBBB."),
             }));

  v.push_back(Region(
      "S25", "S25 (6.18.y): a faulted VMA moved back beside an unfaulted next",
      {
          MapAnon(0, 2, kRW),
          Touch(Pg(0), P(2)),
          Remap(Pg(0), P(2), P(2), kMoveFixed, Pg(20)).Want(Ret(Pg(20))),
          MapAnon(2, 2, kRW),
          Remap(Pg(20), P(2), P(2), kMoveFixed, Pg(0)).Want(Ret(Pg(0))).Draw("AAAA" + Dots(20)),
      }));
  v.push_back(Region(
      "S25_mirror", "S25 mirrored: moved back beside an unfaulted prev",
      {
          MapAnon(2, 2, kRW),
          Touch(Pg(2), P(2)),
          Remap(Pg(2), P(2), P(2), kMoveFixed, Pg(20)).Want(Ret(Pg(20))),
          MapAnon(0, 2, kRW),
          Remap(Pg(20), P(2), P(2), kMoveFixed, Pg(2)).Want(Ret(Pg(2))).Draw("AAAA" + Dots(20)),
      }));

  v.push_back(Region("S26", "S26 (6.17+): mremap of a range spanning VMAs keeps the gaps",
                     {
                         MapAnon(0, 2, kRW),
                         MapAnon(2, 2, kR),
                         MapAnon(5, 1, kRW).Draw("AABB.C."),
                         Remap(Pg(0), P(6), P(6), kMoveFixed, Pg(20))
                             .Want(Ret(Pg(20)))
                             .Draw(Dots(20) + "AABB.C.")
                             .Attr(A(Pg(22)).Perms("r--p")),
                         Remap(Pg(24), P(2), P(2), kMoveFixed, Pg(0)).Want(Err(EFAULT)),
                     }));

  v.push_back(Region("S27", "S27: DONTUNMAP of a locked faulted VMA: old keeps ac without lo",
                     {
                         MapAnon(0, 2, kRW),
                         Lock(Pg(0), P(2)),
                         Remap(Pg(0), P(2), P(2), kMoveFixed | abi::kMremapDontunmap, Pg(10))
                             .Want(Ret(Pg(10)))
                             .Draw("AA........BB.")
                             .Attr(A(Pg(0)).Has("ac").Lacks("lo"))
                             .Attr(A(Pg(10)).Has("lo ac")),
                     }));

  {
    // Pages of the drawing: 0 = the old heap's last page (b0 - 1), 1.. = b0...
    // This child is a fork child: its heap has an inherited anon_vma, so brk
    // growth does not merge into it (docs/merge-split.md#anon_vma).
    Scenario sc = Whole(
        "S28", "S28 (t7): brk growth, failure, [heap] naming, shrinking across VMAs", Setup::kBrk,
        {
            Brk(BrkAt(0, 1)).Draw("AB.......").Attr(A(BrkAt(0)).Name("[heap]").Perms("rw-p")),
            Brk(BrkAt(3, 5)).Draw("ABBBB...."),
            Brk(BrkAt(1)).Draw("AB......."),
            Brk(BrkAt(0)).Draw("A........"),
            Brk(Abs(0x1000)).Want(Ret(BrkAt(0))),
            Map(BrkAt(4), P(1), kRW, kPriv | kNoRepl),
            Brk(BrkAt(2)).Draw("ABB..C..."),
            Brk(BrkAt(4)).Want(Ret(BrkAt(2))),
            Brk(BrkAt(3)).Draw("ABBB.C..."),
            Unmap(BrkAt(4), P(1)),
            Protect(BrkAt(2), P(1), kR),
            Brk(BrkAt(5))
                .Draw("ABBCDD...")
                .Attr(A(BrkAt(0)).Name("[heap]"))
                .Attr(A(BrkAt(2)).Name("[heap]").Perms("r--p"))
                .Attr(A(BrkAt(3)).Name("[heap]").Perms("rw-p")),
            Brk(BrkAt(1)).Draw("AB......."),
            Unmap(BrkAt(0), P(8)).Draw("A........"),
            Brk(BrkAt(2)).Draw("A.B......").Attr(A(BrkAt(1)).Name("[heap]")),
            Map(BrkAt(2), P(1), kRW, kPriv | kNoRepl)
                .Draw("A.BB.....")
                .Attr(A(BrkAt(2)).Name("[heap]")),
            Brk(BrkAt(1)).Draw("A..B.....").Attr(A(BrkAt(2)).Name("")),
            Brk(BrkAt(4)).Want(Ret(BrkAt(1))),
        });
    v.push_back(sc);
  }

  {
    Scenario sc =
        Whole("S29", "S29: THP alignment of anonymous mmaps (len % 2M == 0, no hint) and hints",
              Setup::kCarve,
              {
                  Map(Abs(0), P(1), kRW, kPriv).Want(AnyAddr()).Save(0),
                  Map(Abs(0), 2 * kMiB, kRW, kPriv).Want(Aligned2M()),
                  Map(Abs(0), 2 * kMiB + P(1), kRW, kPriv).Want(NotAligned2M()),
                  Map(Abs(0), 4 * kMiB, kRW, kPriv).Want(Aligned2M()),
                  Map(Abs(0), 3 * kMiB, kRW, kPriv).Want(NotAligned2M()),
                  Map(Pg(0), 2 * kMiB, kRW, kPriv).Want(Ret(Pg(0))).Draw("AA"),
                  Map(Pg(1), 2 * kMiB, kRW, kPriv).Want(NotAt(Pg(1))),
              });
    sc.carve_len = 64 * kMiB;
    sc.margin = 0;
    sc.align = 2 * kMiB;
    v.push_back(sc);
  }

  v.push_back(Whole(
      "S30", "S30: hints below mmap_min_addr or above TASK_SIZE fall back; FIXED rules",
      Setup::kNone,
      {
          Map(Abs(0x10000), P(1), kRW, kPriv | kNoRepl),
          Map(Abs(0x1000), P(1), kRW, kPriv).Want(NotAt(Abs(0x1000))).Save(0),
          Unmap(Slot(0), P(1)),
          Map(Abs(0), P(1), kRW, kPriv).Want(Ret(Slot(0))),
          Unmap(Slot(0), P(1)),
          Map(Abs(0x1000), P(1), kRW, kPriv | kFixed)
              .DrawAt(Abs(0), "." + std::string("A") + Dots(14) + "B"),
          Unmap(Abs(0x1000), P(1)),
          Unmap(Abs(0x10000), P(1)).DrawAt(Abs(0), Dots(17)),
          Map(Abs(0x7ffffffff000ULL), P(1), kRW, kPriv).Want(NotAt(Abs(0x7ffffffff000ULL))).Save(1),
          Unmap(Slot(1), P(1)),
          Map(Abs(0), P(1), kRW, kPriv).Want(Ret(Slot(1))),
          Unmap(Slot(1), P(1)),
          Map(Abs(uint64_t{1} << 47), P(1), kRW, kPriv).Want(NotAt(Abs(uint64_t{1} << 47))).Save(2),
          Unmap(Slot(2), P(1)),
          Map(Abs(0), P(1), kRW, kPriv).Want(Ret(Slot(2))),
          Unmap(Slot(2), P(1)),
          Map(Abs(0x7ffffffff000ULL), P(1), kRW, kPriv | kFixed).Want(Err(ENOMEM)),
          Map(Abs(uint64_t{1} << 47), P(1), kRW, kPriv | kFixed).Want(Err(ENOMEM)),
      }));

  {
    const int64_t g = 8 * kMiB;
    Scenario sc =
        Whole("S31", "S31 (t11): growsdown guard gap rejects hints; a touch below grows the VMA",
              Setup::kCarve,
              {
                  Map(At(g), P(4), kRW, kPriv | kNoRepl | abi::kMapGrowsdown),
                  Map(At(g - 512 * 1024), P(1), kRW, kPriv).Want(NotAt(At(g - 512 * 1024))).Save(0),
                  Unmap(Slot(0), P(1)),
                  Touch(At(g - 1)).DrawAt(At(g - P(2)), ".AAAAA.").Attr(A(At(g - P(1))).Has("gd")),
                  Map(At(g - 512 * 1024), P(1), kRW, kPriv | kNoRepl),
              });
    sc.carve_len = 16 * kMiB;
    sc.margin = 0;
    v.push_back(sc);
  }

  {
    Scenario sc =
        Whole("S32", "S32 (t8): ext4 file THP alignment by offset", Setup::kNone,
              {
                  Open(0, 0),
                  MapFile(Abs(0), 2 * kMiB + P(1), kR, abi::kMapPrivate, 0, 0).Want(Aligned2M()),
                  MapFile(Abs(0), 3 * kMiB, kR, abi::kMapPrivate, 0, kMiB).Want(Congruent2M(kMiB)),
                  MapFile(Abs(0), 2 * kMiB, kR, abi::kMapPrivate, 0, kMiB).Want(AnyAddr()),
              });
    sc.nfiles = 1;
    sc.file_size = 8 * kMiB;
    v.push_back(sc);
  }

  v.push_back(
      Whole("S33", "S33 (t18): 200 random mmap/munmap placements", Setup::kNone, S33Steps()));

  v.push_back(Whole("S34", "S34: the vDSO refuses splits, writes and growth", Setup::kVdso,
                    {
                        Check()
                            .Draw("AAAABBCC")
                            .Attr(A(Pg(0)).Name("[vvar]").Perms("r--p"))
                            .Attr(A(Pg(4)).Name("[vvar_vclock]").Perms("r--p"))
                            .Attr(A(Pg(6)).Name("[vdso]").Perms("r-xp")),
                        Unmap(Pg(6), P(1)).Want(Err(EINVAL)).Draw("AAAABBCC"),
                        Protect(Pg(0), P(4), kRW).Want(Err(EACCES)).Draw("AAAABBCC"),
                        Remap(Pg(6), P(2), P(3), 0, Abs(0)).Want(Err(EFAULT)).Draw("AAAABBCC"),
                    }));

  v.push_back(
      Region("S35", "S35: PROCMAP_QUERY lookups, filters and errors",
             {
                 MapAnon(0, 1, kRW),
                 MapAnon(2, 1, kR),
                 MapShared(4, 1, kR).Draw("A.B.C."),
                 Query(Pg(1), 0, 256).Want(Err(ENOENT)),
                 Query(Pg(1), 0x10, 256).Want(Range(Pg(2), Pg(3))).QName(""),
                 Query(Pg(1), 0x18, 256).Want(Range(Pg(4), Pg(5))).QName("/dev/zero (deleted)"),
                 Query(Pg(4), 0, 4).Want(Err(ENAMETOOLONG)),
                 Query(Abs(kVsyscall), 0, 256).Want(Err(ENOENT)),
             }));

  return v;
}

// ---------------------------------------------------------------------------
// The parent: runs, caches, compares.

struct Runs {
  std::unique_ptr<RunResult> kernel;
  std::unique_ptr<RunResult> model;
  std::string kernel_err;
  std::string model_err;
  std::vector<std::string> paths;
};

const Runs& GetRuns(size_t index) {
  static std::map<size_t, Runs>* cache = new std::map<size_t, Runs>();
  auto it = cache->find(index);
  if (it != cache->end()) return it->second;
  const Scenario& sc = AllScenarios()[index];
  Runs runs;

  std::memset(g_files, 0, sizeof g_files);
  for (int k = 0; k < sc.nfiles && k < kMaxFiles; ++k) {
    std::snprintf(g_files[k].path, sizeof g_files[k].path, "/tmp/vmashadow_scenario_%d_%s_%d",
                  static_cast<int>(getpid()), sc.name.c_str(), k);
    int fd = open(g_files[k].path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
      if (ftruncate(fd, static_cast<off_t>(sc.file_size)) != 0) {
        runs.kernel_err = "ftruncate failed";
      }
      struct stat st;
      if (fstat(fd, &st) == 0) {
        g_files[k].inode = st.st_ino;
        g_files[k].dev_major = major(st.st_dev);
        g_files[k].dev_minor = minor(st.st_dev);
      }
      close(fd);
    }
    runs.paths.push_back(g_files[k].path);
  }

  if (sc.mode == Mode::kRegion) {
    auto m = RunInChild(sc, ModelRegionChild, &runs.model_err);
    if (!m.empty()) runs.model = std::move(m[0]);
    auto k = RunInChild(sc, KernelRegionChild, &runs.kernel_err);
    if (!k.empty()) runs.kernel = std::move(k[0]);
  } else {
    std::string err;
    auto both = RunInChild(sc, WholeChild, &err);
    runs.kernel_err = err;
    runs.model_err = err;
    if (both.size() >= 1) runs.kernel = std::move(both[0]);
    if (both.size() >= 2) runs.model = std::move(both[1]);
  }
  for (int k = 0; k < sc.nfiles && k < kMaxFiles; ++k) unlink(g_files[k].path);
  return cache->emplace(index, std::move(runs)).first->second;
}

// --- formatting for failure messages ---

std::string Hex(uint64_t v) {
  char b[32];
  std::snprintf(b, sizeof b, "%#llx", static_cast<unsigned long long>(v));
  return b;
}

std::string FmtSize(uint64_t n) {
  std::string s;
  if (n >= static_cast<uint64_t>(kMiB) && n / kMiB > 0) {
    s += std::to_string(n / kMiB) + "M";
    n %= kMiB;
    if (n == 0) return s;
    s += "+";
  }
  if (n >= static_cast<uint64_t>(kPg)) {
    s += std::to_string(n / kPg) + "p";
    n %= kPg;
    if (n == 0) return s;
    s += "+";
  }
  return s + std::to_string(n);
}

std::string FmtOff(int64_t off) {
  if (off == 0) return "";
  if (off < 0) return "-" + FmtSize(static_cast<uint64_t>(-off));
  return "+" + FmtSize(static_cast<uint64_t>(off));
}

std::string FmtAddr(const Addr& a) {
  if (a.slot == kSlotAbs) return Hex(static_cast<uint64_t>(a.off));
  if (a.slot == kSlotBase) return "B" + FmtOff(a.off);
  return "slot" + std::to_string(a.slot) + FmtOff(a.off);
}

std::string FmtProt(int prot) {
  if (prot == 0) return "NONE";
  std::string s;
  if (prot & kR) s += "R";
  if (prot & abi::kProtWrite) s += "W";
  if (prot & abi::kProtExec) s += "X";
  return s;
}

std::string FmtMapFlags(int f) {
  struct {
    int bit;
    const char* name;
  } const names[] = {
      {abi::kMapShared, "SHARED"},
      {abi::kMapPrivate, "PRIVATE"},
      {kFixed, "FIXED"},
      {abi::kMapAnonymous, "ANON"},
      {abi::kMapGrowsdown, "GROWSDOWN"},
      {abi::kMapLocked, "LOCKED"},
      {kNR, "NORESERVE"},
      {kNoRepl, "NOREPLACE"},
  };
  std::string s;
  for (const auto& n : names) {
    if (f & n.bit) s += (s.empty() ? "" : "|") + std::string(n.name);
  }
  return s.empty() ? "0" : s;
}

std::string Describe(const Step& s) {
  switch (s.op) {
    case Op::kMap:
      return "mmap(" + FmtAddr(s.addr) + ", " + FmtSize(s.len) + ", " + FmtProt(s.prot) + ", " +
             FmtMapFlags(s.flags) +
             (s.arg >= 0 ? ", fd" + std::to_string(s.arg) + ", off " + FmtSize(s.off)
                         : std::string()) +
             ")";
    case Op::kTouch:
      return std::string(s.arg ? "write" : "read") + "(" + FmtAddr(s.addr) + ", " + FmtSize(s.len) +
             ")";
    case Op::kProtect:
      return "mprotect(" + FmtAddr(s.addr) + ", " + FmtSize(s.len) + ", " + FmtProt(s.prot) + ")";
    case Op::kUnmap:
      return "munmap(" + FmtAddr(s.addr) + ", " + FmtSize(s.len) + ")";
    case Op::kRemap:
      return "mremap(" + FmtAddr(s.addr) + ", " + FmtSize(s.len) + ", " + FmtSize(s.len2) +
             ", flags " + std::to_string(s.flags) + ", " + FmtAddr(s.addr2) + ")";
    case Op::kAdvise:
      return "madvise(" + FmtAddr(s.addr) + ", " + FmtSize(s.len) + ", " + std::to_string(s.arg) +
             ")";
    case Op::kLock:
      return "mlock(" + FmtAddr(s.addr) + ", " + FmtSize(s.len) + ")";
    case Op::kUnlock:
      return "munlock(" + FmtAddr(s.addr) + ", " + FmtSize(s.len) + ")";
    case Op::kSeal:
      return "mseal(" + FmtAddr(s.addr) + ", " + FmtSize(s.len) + ")";
    case Op::kBrk:
      return "brk(" + FmtAddr(s.addr) + ")";
    case Op::kForkChild:
      return "fork (continue in child)";
    case Op::kForkParent:
      return "fork (continue in parent)";
    case Op::kOpen:
      return "fd" + std::to_string(s.arg) + " = open($f" + std::to_string(s.len) + ")";
    case Op::kUnlink:
      return "unlink($f" + std::to_string(s.len) + ")";
    case Op::kSetHeadroom:
      return "map_count = max_map_count - " + std::to_string(s.len);
    case Op::kReleaseHeadroom:
      return "release the map_count filler";
    case Op::kQuery:
      return "PROCMAP_QUERY(" + FmtAddr(s.addr) + ", flags " + Hex(static_cast<uint64_t>(s.flags)) +
             ", name buffer " + std::to_string(s.len) + ")";
    case Op::kCheck:
      return "check";
  }
  return "?";
}

std::string FmtRet(int64_t ret, const RunResult& r) {
  if (ret == 0) return "0";
  if (ret < 0 && ret > -4096) {
    const char* name = strerrorname_np(static_cast<int>(-ret));
    return std::string("-") + (name ? name : std::to_string(-ret).c_str());
  }
  uint64_t u = static_cast<uint64_t>(ret);
  if (u >= r.base && u - r.base < (uint64_t{1} << 32))
    return "B" + FmtOff(static_cast<int64_t>(u - r.base));
  if (u < r.base && r.base - u < (uint64_t{1} << 32))
    return "B" + FmtOff(-static_cast<int64_t>(r.base - u));
  return Hex(u);
}

std::string FmtExpect(const Expect& e) {
  switch (e.kind) {
    case Expect::kAt:
      return FmtAddr(e.at);
    case Expect::kErr: {
      const char* name = strerrorname_np(e.err);
      return std::string("-") + (name ? name : "?");
    }
    case Expect::kAnyAddr:
      return "any address";
    case Expect::kAligned2M:
      return "a 2 MiB-aligned address";
    case Expect::kNotAligned2M:
      return "an address not 2 MiB-aligned";
    case Expect::kCongruent2M:
      return "an address = " + FmtSize(static_cast<uint64_t>(e.mod)) + " mod 2 MiB";
    case Expect::kNotAt:
      return "an address other than " + FmtAddr(e.at);
  }
  return "?";
}

bool RetOk(const Expect& e, int64_t ret, const RunResult& r) {
  const int64_t k2M = 2 * kMiB;
  switch (e.kind) {
    case Expect::kAt:
      return ret == static_cast<int64_t>(Resolve(e.at, r));
    case Expect::kErr:
      return ret == -e.err;
    case Expect::kAnyAddr:
      return ret >= 0;
    case Expect::kAligned2M:
      return ret >= 0 && ret % k2M == 0;
    case Expect::kNotAligned2M:
      return ret >= 0 && ret % k2M != 0;
    case Expect::kCongruent2M:
      return ret >= 0 && ret % k2M == e.mod;
    case Expect::kNotAt:
      return ret >= 0 && ret != static_cast<int64_t>(Resolve(e.at, r));
  }
  return false;
}

bool HasMnemonic(const std::string& flags, const std::string& m) {
  size_t pos = 0;
  while ((pos = flags.find(m, pos)) != std::string::npos) {
    bool start_ok = pos == 0 || flags[pos - 1] == ' ';
    bool end_ok = pos + m.size() == flags.size() || flags[pos + m.size()] == ' ';
    if (start_ok && end_ok) return true;
    ++pos;
  }
  return false;
}

std::vector<std::string> Words(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    size_t j = i;
    while (j < s.size() && s[j] != ' ') ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

std::string ExpandName(std::string name, const std::vector<std::string>& paths) {
  for (size_t k = 0; k < paths.size(); ++k) {
    std::string key = "$f" + std::to_string(k);
    size_t pos = name.find(key);
    if (pos != std::string::npos) name.replace(pos, key.size(), paths[k]);
  }
  return name;
}

// Compares one backend's run with the table. `kernel` is set when checking the
// model of a whole-address-space scenario: its returns must equal the kernel's.
// Returns the failures, one line each.
std::vector<std::string> Compare(const Scenario& sc, const RunResult& r,
                                 const std::vector<std::string>& paths, const RunResult* kernel) {
  std::vector<std::string> fails;
  if (r.error[0]) fails.push_back(std::string("run error: ") + r.error);
  if (static_cast<size_t>(r.nsteps) != sc.steps.size()) {
    fails.push_back("ran " + std::to_string(r.nsteps) + " of " + std::to_string(sc.steps.size()) +
                    " steps");
  }
  for (int i = 0; i < r.nsteps; ++i) {
    const Step& s = sc.steps[static_cast<size_t>(i)];
    const StepObs& o = r.steps[i];
    std::string where = "step " + std::to_string(i + 1) + " " + Describe(s) + ": ";
    if (!RetOk(s.expect, o.ret, r)) {
      fails.push_back(where + "returned " + FmtRet(o.ret, r) + ", expected " + FmtExpect(s.expect));
    }
    if (kernel && i < kernel->nsteps && o.ret != kernel->steps[i].ret) {
      fails.push_back(where + "returned " + FmtRet(o.ret, r) + " but the kernel returned " +
                      FmtRet(kernel->steps[i].ret, *kernel));
    }
    if (s.expect.check_end && o.ret >= 0 &&
        o.ret2 != static_cast<int64_t>(Resolve(s.expect.end, r))) {
      fails.push_back(where + "vma_end " + FmtRet(o.ret2, r) + ", expected " +
                      FmtAddr(s.expect.end));
    }
    if (s.expect.check_qname && o.ret >= 0 && s.expect.qname != o.qname) {
      fails.push_back(where + "name \"" + o.qname + "\", expected \"" + s.expect.qname + "\"");
    }
    if (!s.drawing.empty()) {
      std::string want = Canonical(s.drawing.substr(0, kMaxDraw));
      if (want != o.drawing) {
        fails.push_back(where + "layout\n      expected \"" + want + "\"\n      got      \"" +
                        o.drawing + "\"  (from " + FmtAddr(s.draw_base) + ")");
      }
    }
    for (size_t k = 0; k < s.attrs.size() && k < static_cast<size_t>(kMaxAttrs); ++k) {
      const AttrCheck& c = s.attrs[k];
      const AttrObs& a = o.attrs[k];
      std::string at = where + "VMA at " + FmtAddr(c.where) + ": ";
      if (!a.found) {
        fails.push_back(at + "no VMA");
        continue;
      }
      if (!c.perms.empty() && c.perms != a.perms) {
        fails.push_back(at + "perms " + a.perms + ", expected " + c.perms);
      }
      if (c.offset >= 0 && static_cast<uint64_t>(c.offset) != a.offset) {
        fails.push_back(at + "offset " + Hex(a.offset) + ", expected " +
                        Hex(static_cast<uint64_t>(c.offset)));
      }
      if (!c.dev.empty()) {
        char dev[32];
        std::snprintf(dev, sizeof dev, "%02x:%02x", a.dev_major, a.dev_minor);
        if (c.dev != dev) fails.push_back(at + "dev " + dev + ", expected " + c.dev);
      }
      if (c.check_name) {
        std::string want = ExpandName(c.name, paths);
        if (want != a.name) {
          fails.push_back(at + "name \"" + a.name + "\", expected \"" + want + "\"");
        }
      }
      for (const std::string& m : Words(c.has)) {
        if (!HasMnemonic(a.vmflags, m)) {
          fails.push_back(at + "VmFlags \"" + a.vmflags + "\" lack " + m);
        }
      }
      for (const std::string& m : Words(c.lacks)) {
        if (HasMnemonic(a.vmflags, m)) {
          fails.push_back(at + "VmFlags \"" + a.vmflags + "\" have " + m);
        }
      }
      if (c.inode_differs_from_prev && k > 0 && o.attrs[k - 1].inode == a.inode) {
        fails.push_back(at + "inode " + std::to_string(a.inode) + " equals the previous VMA's");
      }
    }
    if (o.invalid[0]) fails.push_back(where + "Validate(): " + o.invalid);
  }
  if (kernel && kernel->final_maps[0]) {
    // The whole maps text at the end, line for line. [stack] is left out: the
    // child's own stack may have grown since the model was seeded.
    auto lines = [](const char* text) {
      std::vector<std::string> out;
      std::string all(text);
      size_t pos = 0;
      while (pos < all.size()) {
        size_t nl = all.find('\n', pos);
        if (nl == std::string::npos) nl = all.size();
        std::string l = all.substr(pos, nl - pos);
        if (l.find("[stack]") == std::string::npos) out.push_back(l);
        pos = nl + 1;
      }
      return out;
    };
    std::vector<std::string> want = lines(kernel->final_maps);
    std::vector<std::string> got = lines(r.final_maps);
    std::string diff;
    int shown = 0;
    for (size_t i = 0; i < std::max(want.size(), got.size()) && shown < 8; ++i) {
      const std::string w = i < want.size() ? want[i] : "(none)";
      const std::string g = i < got.size() ? got[i] : "(none)";
      if (w != g) {
        diff += "\n      kernel: " + w + "\n      model:  " + g;
        ++shown;
      }
    }
    if (!diff.empty()) fails.push_back("final maps differ from the kernel's:" + diff);
  }
  return fails;
}

enum class Which { kKernel, kModel };

void PrintTo(const std::tuple<int, Which>& p, std::ostream* os) {
  *os << AllScenarios()[static_cast<size_t>(std::get<0>(p))].name
      << (std::get<1>(p) == Which::kKernel ? " on the kernel" : " on the model");
}

class ScenarioTest : public ::testing::TestWithParam<std::tuple<int, Which>> {};

TEST_P(ScenarioTest, MatchesTable) {
  size_t index = static_cast<size_t>(std::get<0>(GetParam()));
  Which which = std::get<1>(GetParam());
  const Scenario& sc = AllScenarios()[index];
  const Runs& runs = GetRuns(index);
  const RunResult* r = which == Which::kKernel ? runs.kernel.get() : runs.model.get();
  const std::string& err = which == Which::kKernel ? runs.kernel_err : runs.model_err;
  SCOPED_TRACE(sc.name + " — " + sc.doc);
  ASSERT_NE(r, nullptr) << "no result from the child: " << err;
  EXPECT_TRUE(err.empty()) << err;
  const RunResult* kernel_ref =
      (which == Which::kModel && sc.mode == Mode::kWhole) ? runs.kernel.get() : nullptr;
  std::vector<std::string> fails = Compare(sc, *r, runs.paths, kernel_ref);
  if (std::getenv("VMASHADOW_SCENARIO_VERBOSE")) {
    if (r->final_maps[0]) std::printf("%s\n", r->final_maps);
    for (int i = 0; i < r->nsteps; ++i) {
      const StepObs& o = r->steps[i];
      std::printf("  %2d %-60s -> %-14s %s\n", i + 1,
                  Describe(sc.steps[static_cast<size_t>(i)]).c_str(), FmtRet(o.ret, *r).c_str(),
                  o.drawing);
      for (int k = 0; k < kMaxAttrs; ++k) {
        if (o.attrs[k].found) {
          std::printf("       %s %llx %02x:%02x %llu \"%s\" [%s]\n", o.attrs[k].perms,
                      static_cast<unsigned long long>(o.attrs[k].offset), o.attrs[k].dev_major,
                      o.attrs[k].dev_minor, static_cast<unsigned long long>(o.attrs[k].inode),
                      o.attrs[k].name, o.attrs[k].vmflags);
        }
      }
    }
  }
  for (const std::string& f : fails) ADD_FAILURE() << "[" << sc.name << "] " << f;
}

std::string ParamName(const ::testing::TestParamInfo<std::tuple<int, Which>>& info) {
  const Scenario& sc = AllScenarios()[static_cast<size_t>(std::get<0>(info.param))];
  return sc.name + (std::get<1>(info.param) == Which::kKernel ? "_kernel" : "_model");
}

INSTANTIATE_TEST_SUITE_P(
    Spec9, ScenarioTest,
    ::testing::Combine(::testing::Range(0, static_cast<int>(AllScenarios().size())),
                       ::testing::Values(Which::kKernel, Which::kModel)),
    ParamName);

}  // namespace
}  // namespace vmashadow
