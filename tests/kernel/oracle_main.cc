// oracle_main.cc — the random kernel-oracle test: real memory-mapping syscalls
// in a forked child, each mirrored on the model and compared after every step.
//
// For each seed the parent forks a child. The child carves a 1 GiB window W
// (mmap + munmap), seeds the model from /proc/self (oracle.h), then runs random
// steps: mmap (anonymous, shared anonymous, files through several open file
// descriptions, memfd; fixed, noreplace, hinted and kernel-placed), munmap,
// mprotect, pkey_mprotect (pkey 0), mremap (shrink, grow, move, DONTUNMAP,
// multi-VMA), brk, madvise, mlock/mlock2/munlock, mlockall/munlockall, mseal,
// page touches (including stack-style growth below MAP_GROWSDOWN mappings),
// invalid arguments, a fork in the middle (the grandchild continues with
// ForkChild()), and phases with vm.max_map_count lowered to just above the
// current count. After every step the harness compares the return value and
// /proc/self/maps with the model (and smaps VmFlags regularly).
//
// Destructive calls only touch the window W and mappings the test made itself:
// every range is checked against the harness's protected (seeded) ranges.
// After seeding the child neither allocates nor uses stdio, so its address
// space changes only through the calls under test.
//
// Exit status: 0 when every comparison matched, 1 on any mismatch or crash, 77
// when the kernel or the environment cannot run the test.
#include <fcntl.h>
#include <linux/fs.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <new>

#include "core/abi/kernel_profile.h"
#include "core/abi/linux_abi.h"
#include "core/mm/address_space.h"
#include "core/mm/mm_types.h"
#include "core/procfs/maps_text.h"
#include "tests/kernel/oracle.h"

namespace vmashadow::oracle {
namespace {

namespace a = abi;

constexpr uint64_t kPg = kPageSize;
constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr uint64_t kWindowSize = kGiB;
constexpr size_t kArenaSize = size_t{4} << 20;
constexpr uint64_t kFileBytes = 4 * kMiB;
// map_count phases first raise our own count to this, so that lowering the
// system-wide vm.max_map_count to just above it cannot hurt other processes.
constexpr uint64_t kMapCountFloor = 1000;
constexpr const char* kMaxMapCountPath = "/proc/sys/vm/max_map_count";

// ---------------------------------------------------------------------------
// Options.

struct Options {
  uint64_t seed = 0;
  bool have_seed = false;
  uint64_t seeds = 3;
  uint64_t seed_base = 1000;
  uint64_t ops = 20000;
  bool verbose = false;
  uint64_t max_reports = 20;
  uint64_t flags_every = 32;
  const char* profile = nullptr;
  bool fork = true;
  bool map_count = true;
  uint32_t skip = 0;
  uint64_t watchdog = 60;
  bool selftest = false;  // kSkip* bits: kinds of steps left out (to narrow a failure down)
  bool mm = true;         // compare VmPTE and the status counters after every step
  bool presence = false;  // ... and the mapped pages of the test's memory with pagemap
};

// Kinds of steps --skip can leave out.
struct SkipName {
  const char* name;
  uint32_t bit;
};
constexpr SkipName kSkipNames[] = {
    {"anon", 1u << 0},     {"shmem", 1u << 1},    {"file", 1u << 2},   {"munmap", 1u << 3},
    {"mprotect", 1u << 4}, {"pkey", 1u << 5},     {"mremap", 1u << 6}, {"madvise", 1u << 7},
    {"mlock", 1u << 8},    {"mlockall", 1u << 9}, {"mseal", 1u << 10}, {"brk", 1u << 11},
    {"touch", 1u << 12},   {"invalid", 1u << 13}, {"thp", 1u << 14},
};
constexpr uint32_t kSkipAnon = 1u << 0, kSkipShmem = 1u << 1, kSkipFile = 1u << 2,
                   kSkipMunmap = 1u << 3, kSkipMprotect = 1u << 4, kSkipPkey = 1u << 5,
                   kSkipMremap = 1u << 6, kSkipMadvise = 1u << 7, kSkipMlock = 1u << 8,
                   kSkipMlockall = 1u << 9, kSkipMseal = 1u << 10, kSkipBrk = 1u << 11,
                   kSkipTouch = 1u << 12, kSkipInvalid = 1u << 13, kSkipThp = 1u << 14;

bool ParseSkip(const char* v, uint32_t* out) {
  while (*v) {
    const char* e = v;
    while (*e && *e != ',') ++e;
    bool found = false;
    for (const SkipName& n : kSkipNames) {
      if (strlen(n.name) == static_cast<size_t>(e - v) && strncmp(n.name, v, e - v) == 0) {
        *out |= n.bit;
        found = true;
      }
    }
    if (!found) return false;
    v = *e ? e + 1 : e;
  }
  return true;
}

bool ParseU64(const char* s, uint64_t* out) {
  uint64_t v = 0;
  if (*s == '\0') return false;
  for (; *s; ++s) {
    if (*s < '0' || *s > '9') return false;
    v = v * 10 + static_cast<uint64_t>(*s - '0');
  }
  *out = v;
  return true;
}

bool Flag(const char* arg, const char* name, const char** value) {
  const size_t n = strlen(name);
  if (strncmp(arg, name, n) != 0) return false;
  if (arg[n] == '\0') {
    *value = nullptr;
    return true;
  }
  if (arg[n] != '=') return false;
  *value = arg + n + 1;
  return true;
}

// ---------------------------------------------------------------------------
// Random numbers: xoshiro256** seeded through splitmix64.

class Rng {
 public:
  void Seed(uint64_t seed) {
    for (uint64_t& w : s_) {
      seed += 0x9e3779b97f4a7c15;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
      z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
      w = z ^ (z >> 31);
    }
  }
  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, n); n > 0.
  uint64_t Below(uint64_t n) { return n <= 1 ? 0 : Next() % n; }
  bool Chance(uint64_t percent) { return Below(100) < percent; }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4] = {};
};

// ---------------------------------------------------------------------------
// Page touches that may fault: SIGSEGV/SIGBUS come back as -EFAULT / -EIO.

sigjmp_buf g_touch_jmp;
volatile sig_atomic_t g_in_touch = 0;
Harness* g_harness = nullptr;

void OnFault(int sig, siginfo_t* info, void* uctx) {
  if (g_in_touch) siglongjmp(g_touch_jmp, sig);
  // A fault outside a deliberate touch: a harness bug (or the model made the
  // harness touch memory it should not). Say where, then die with the signal.
  signal(sig, SIG_DFL);
  Writer w(1);
  const auto* uc = static_cast<const ucontext_t*>(uctx);
  w.Str("\nkernel-oracle: the child faulted outside a deliberate touch: signal ").Dec(sig);
  w.Str(" at ").Hex(reinterpret_cast<uint64_t>(info->si_addr));
  w.Flush();
  if (g_harness != nullptr) {
    w.Str(", pc ");
    g_harness->PrintCodeAddress(w, static_cast<uint64_t>(uc->uc_mcontext.gregs[REG_RIP]));
    w.Ch('\n');
    Harness::PrintOp(w, g_harness->current(), "  the step in progress: ");
    w.Str("  last steps:\n");
    g_harness->PrintOpLog(w, 30);
    w.Flush();
    MapsLine l;
    if (g_harness->ReadKernelMaps() > 0 &&
        g_harness->KernelLineAt(reinterpret_cast<uint64_t>(info->si_addr), &l)) {
      w.Str("  the kernel maps it: ").Hex(l.start).Ch('-').Hex(l.end).Ch(' ').Mem(l.perms, 4);
      w.Ch('\n');
    }
  }
}

int64_t KernelTouch(uint64_t addr, bool write) {
  g_in_touch = 1;
  const int sig = sigsetjmp(g_touch_jmp, 1);
  if (sig == 0) {
    volatile uint8_t* p = reinterpret_cast<volatile uint8_t*>(addr);
    if (write) {
      *p = 0x5a;
    } else {
      (void)*p;
    }
    g_in_touch = 0;
    return 0;
  }
  g_in_touch = 0;
  return sig == SIGBUS ? -EIO : -EFAULT;
}

int64_t Sys(long nr, uint64_t a0 = 0, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0,
            uint64_t a4 = 0, uint64_t a5 = 0) {
  const long r = syscall(nr, a0, a1, a2, a3, a4, a5);
  return r == -1 ? -static_cast<int64_t>(errno) : static_cast<int64_t>(r);
}

double Now() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// ---------------------------------------------------------------------------
// The files the test maps.

// A backing object (file, memfd, shmem) and its size, so touches and
// populating calls stay inside it (beyond EOF the kernel raises SIGBUS,
// which the model cannot know).
struct Object {
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;
  uint64_t inode = 0;
  uint64_t size = 0;
};

// An fd the test passes to mmap, with what the model is told about it.
struct FileSlot {
  int fd = -1;
  const FileDesc* desc = nullptr;  // nullptr: a bad fd
  const char* label = "";
};

constexpr int kMaxSlots = 12;
constexpr int kMaxObjects = 512;
constexpr int kMaxGuarded = 256;
constexpr int kMaxOutside = 64;

struct Zone {
  uint64_t start = 0;
  uint64_t pages = 0;
};

// ---------------------------------------------------------------------------
// The driver.

class Driver {
 public:
  Driver(Harness* h, const Options& opt, uint64_t seed) : h_(*h), opt_(opt), seed_(seed) {
    rng_.Seed(seed);
  }

  // Runs the child's part for one seed. Returns the exit status (77: the
  // environment cannot run it).
  int Run();
  // Sets up files, fault handlers, the window and the seeded model. Returns
  // 0 or the exit status.
  int Prepare();
  // Plants known differences between model and kernel and checks that the
  // harness reports each one and recovers. Returns 0 when it did.
  int SelfTest();

 private:
  AddressSpace& model() { return h_.model(); }
  const AddressSpace& model() const { return h_.model(); }
  Counters& counters() { return h_.counters(); }

  // --- setup ---
  int SetupFiles();
  int OpenSlot(const char* path, int flags, FileDesc* desc, const char* label, FileKind kind,
               bool deleted);
  void AddObject(uint32_t maj, uint32_t min, uint64_t inode, uint64_t size);
  const Object* FindObject(const File* f) const;
  void SetupZones();

  // --- choosing ---
  const Vma* PickTestVma();
  bool PickRange(uint64_t* start, uint64_t* len);
  bool ZoneRange(const Zone& z, uint64_t max_pages, uint64_t* start, uint64_t* len);
  const Zone& PickZone();
  uint64_t PickLenPages();
  int PickProt();
  bool Safe(uint64_t start, uint64_t len) const;
  bool Risky(uint64_t start, uint64_t end) const;
  bool Guarded(uint64_t start, uint64_t end) const;
  void AddGuarded(uint64_t start, uint64_t end);
  void TrackOutside(uint64_t start, uint64_t len);
  uint64_t TestBytes() const;

  // --- steps ---
  void Step();
  void OpMmapAnon(bool shared);
  void OpMmapFile();
  void MmapCommon(uint64_t addr, uint64_t len, int prot, int flags, const FileSlot* slot,
                  uint64_t off, bool fixed_ok_check, const char* note);
  void OpMunmap();
  void DoMunmap(uint64_t start, uint64_t len, const char* note);
  void OpMprotect();
  void OpMremap();
  void OpMadvise();
  void OpMlock();
  void OpMlockall();
  void OpMseal();
  void OpBrk();
  void OpTouch();
  void OpThp();
  void OpUnlink();
  void OpCleanup();
  void DoFork();
  void MapCountPhase();

  Harness& h_;
  const Options& opt_;
  uint64_t seed_;
  Rng rng_;

  uint64_t w_ = 0;  // the window
  Zone z_small_, z_mid_, z_seal_, z_fill_, z_remap_, z_top_, z_heap_, z_low_;
  bool have_heap_zone_ = false;
  bool have_low_zone_ = false;
  uint64_t initial_brk_ = 0;

  FileSlot slots_[kMaxSlots];
  int nslots_ = 0;
  FileDesc descs_[kMaxSlots];
  char path_a_[64] = {};
  char path_b_[64] = {};
  Object objects_[kMaxObjects];
  int nobjects_ = 0;
  uint64_t inode_a_ = 0;
  uint32_t dev_a_major_ = 0, dev_a_minor_ = 0;
  bool unlinked_ = false;

  uint64_t guarded_[kMaxGuarded][2] = {};
  int nguarded_ = 0;
  uint64_t outside_[kMaxOutside][2] = {};
  int noutside_ = 0;

  uint64_t fork_at_ = 0;
  uint64_t phase_at_[2] = {};
  uint64_t unlink_at_ = 0;
  bool in_phase_ = false;
  int lockall_future_ = 0;

  // Whether to compare smaps VmFlags after a step that succeeded and may
  // have changed flags /proc/self/maps does not show (ac, lo, nr, dc...).
  // A step with invalid arguments, `percent` of the time (unless skipped).
  bool Invalid(uint64_t percent) { return !(opt_.skip & kSkipInvalid) && rng_.Chance(percent); }
  bool FlagsDue(bool changed) const { return changed && !in_phase_; }
  // mlockall(MCL_FUTURE) without ONFAULT is in force: new memory is populated.
  bool PopulatesAll() const {
    return (lockall_future_ & a::kMclFuture) && !(lockall_future_ & a::kMclOnfault);
  }
};

// ---------------------------------------------------------------------------
// Setup.

int Driver::OpenSlot(const char* path, int flags, FileDesc* desc, const char* label, FileKind kind,
                     bool deleted) {
  const int fd = open(path, flags | O_CLOEXEC, 0644);
  if (fd < 0) return -errno;
  struct stat st;
  if (fstat(fd, &st) != 0) return -errno;
  static uint64_t next_id = 1;
  *desc = FileDesc{};
  desc->id = next_id++;
  desc->inode = st.st_ino;
  desc->dev_major = major(st.st_dev);
  desc->dev_minor = minor(st.st_dev);
  desc->kind = kind;
  desc->deleted = deleted;
  const int acc = flags & O_ACCMODE;
  desc->readable = acc == O_RDONLY || acc == O_RDWR;
  desc->writable = acc == O_WRONLY || acc == O_RDWR;
  // mmap refuses writable fds of append-only inodes (IS_APPEND, chattr +a);
  // O_APPEND itself does not matter.
  unsigned int attr = 0;
  desc->append = ioctl(fd, FS_IOC_GETFLAGS, &attr) == 0 && (attr & FS_APPEND_FL) != 0;
  struct statfs sf;
  if (fstatfs(fd, &sf) == 0) desc->noexec_mount = (sf.f_flags & ST_NOEXEC) != 0;
  desc->path = path;
  desc->size = static_cast<uint64_t>(st.st_size);  // the files keep their size
  FileSlot& s = slots_[nslots_++];
  s.fd = fd;
  s.desc = desc;
  s.label = label;
  h_.RegisterFile(desc);
  return fd;
}

void Driver::AddObject(uint32_t maj, uint32_t min, uint64_t inode, uint64_t size) {
  for (int i = 0; i < nobjects_; ++i) {
    Object& o = objects_[i];
    if (o.inode == inode && o.dev_major == maj && o.dev_minor == min) {
      o.size = size;
      return;
    }
  }
  if (nobjects_ == kMaxObjects) {
    // Forget the oldest shmem objects (touches there are skipped).
    for (int i = 1; i < nobjects_; ++i) objects_[i - 1] = objects_[i];
    --nobjects_;
  }
  objects_[nobjects_++] = Object{maj, min, inode, size};
}

const Object* Driver::FindObject(const File* f) const {
  for (int i = 0; i < nobjects_; ++i) {
    const Object& o = objects_[i];
    if (o.inode == f->inode && o.dev_major == f->dev_major && o.dev_minor == f->dev_minor) {
      return &o;
    }
  }
  return nullptr;
}

FileKind KindOfFs(int fd) {
  struct statfs sf;
  if (fstatfs(fd, &sf) != 0) return FileKind::kRegular;
  switch (static_cast<uint64_t>(sf.f_type)) {
    case 0xEF53:      // ext2/3/4
    case 0x58465342:  // xfs
    case 0x9123683E:  // btrfs
      return FileKind::kRegularThp;
    case 0x01021994:  // tmpfs
      return FileKind::kShmem;
    default:
      return FileKind::kRegular;
  }
}

int MakeFile(const char* path) {
  const int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -errno;
  char block[4096];
  memset(block, 'v', sizeof(block));
  // Some real blocks at the start and in the middle; the rest is sparse.
  if (pwrite(fd, block, sizeof(block), 0) != static_cast<ssize_t>(sizeof(block)) ||
      pwrite(fd, block, sizeof(block), 2 * kMiB) != static_cast<ssize_t>(sizeof(block)) ||
      ftruncate(fd, static_cast<off_t>(kFileBytes)) != 0) {
    const int e = errno;
    close(fd);
    return -e;
  }
  const FileKind k = KindOfFs(fd);
  close(fd);
  return static_cast<int>(k);
}

void BuildPath(char* out, size_t cap, const char* dir, const char* stem, uint64_t pid,
               const char* suffix) {
  size_t n = 0;
  auto add = [&](const char* s) {
    while (*s && n + 1 < cap) out[n++] = *s++;
  };
  add(dir);
  add(stem);
  char num[24];
  int k = 0;
  do {
    num[k++] = static_cast<char>('0' + pid % 10);
    pid /= 10;
  } while (pid != 0);
  while (k > 0 && n + 1 < cap) out[n++] = num[--k];
  add(suffix);
  out[n] = '\0';
}

int Driver::SetupFiles() {
  const uint64_t pid = static_cast<uint64_t>(getpid());
  BuildPath(path_a_, sizeof(path_a_), "/tmp/", "vmashadow-oracle-", pid, "-a");
  BuildPath(path_b_, sizeof(path_b_), "/tmp/", "vmashadow-oracle-", pid, "-b");
  const int ka = MakeFile(path_a_);
  const int kb = MakeFile(path_b_);
  if (ka < 0 || kb < 0) return ka < 0 ? ka : kb;
  const FileKind kind_a = static_cast<FileKind>(ka);
  const FileKind kind_b = static_cast<FileKind>(kb);
  int fd;
  // Two open()s of A (separate descriptions: never merge), a dup of the first
  // (same description: merges), read-only, append.
  if ((fd = OpenSlot(path_a_, O_RDWR, &descs_[0], "A rw", kind_a, false)) < 0) return fd;
  const int fd_a1 = fd;
  if ((fd = OpenSlot(path_a_, O_RDWR, &descs_[1], "A rw #2", kind_a, false)) < 0) return fd;
  {
    const int dupfd = fcntl(fd_a1, F_DUPFD_CLOEXEC, 0);
    if (dupfd < 0) return -errno;
    FileSlot& s = slots_[nslots_++];
    s.fd = dupfd;
    s.desc = &descs_[0];
    s.label = "A rw dup";
  }
  if ((fd = OpenSlot(path_a_, O_RDONLY, &descs_[2], "A ro", kind_a, false)) < 0) return fd;
  if ((fd = OpenSlot(path_a_, O_RDWR | O_APPEND, &descs_[3], "A append", kind_a, false)) < 0) {
    return fd;
  }
  if ((fd = OpenSlot(path_b_, O_RDWR, &descs_[4], "B rw", kind_b, false)) < 0) return fd;
  if ((fd = OpenSlot(path_b_, O_WRONLY, &descs_[5], "B wo", kind_b, false)) < 0) return fd;
  // memfd: shmem, shown as "/memfd:NAME (deleted)".
  const int mfd = static_cast<int>(syscall(SYS_memfd_create, "vmashadow-oracle", 1u /*CLOEXEC*/));
  if (mfd < 0) return -errno;
  if (ftruncate(mfd, static_cast<off_t>(kFileBytes)) != 0) return -errno;
  {
    struct stat st;
    if (fstat(mfd, &st) != 0) return -errno;
    FileDesc& d = descs_[6];
    d = FileDesc{};
    d.id = 100000 + static_cast<uint64_t>(mfd);
    d.inode = st.st_ino;
    d.dev_major = major(st.st_dev);
    d.dev_minor = minor(st.st_dev);
    d.kind = FileKind::kShmem;
    d.deleted = true;
    d.readable = true;
    d.writable = true;
    d.size = kFileBytes;
    d.path = "/memfd:vmashadow-oracle";
    FileSlot& s = slots_[nslots_++];
    s.fd = mfd;
    s.desc = &d;
    s.label = "memfd";
    h_.RegisterFile(&d);
  }
  // A bad fd.
  {
    FileSlot& s = slots_[nslots_++];
    s.fd = 1017;
    s.desc = nullptr;
    s.label = "bad fd";
    close(1017);
  }
  inode_a_ = descs_[0].inode;
  dev_a_major_ = descs_[0].dev_major;
  dev_a_minor_ = descs_[0].dev_minor;
  AddObject(descs_[0].dev_major, descs_[0].dev_minor, descs_[0].inode, kFileBytes);
  AddObject(descs_[4].dev_major, descs_[4].dev_minor, descs_[4].inode, kFileBytes);
  AddObject(descs_[6].dev_major, descs_[6].dev_minor, descs_[6].inode, kFileBytes);
  return 0;
}

void Driver::SetupZones() {
  z_small_ = Zone{w_, 1024};
  z_mid_ = Zone{w_ + 8 * kMiB, 4096};
  z_seal_ = Zone{w_ + 32 * kMiB, 512};
  z_fill_ = Zone{w_ + 40 * kMiB, 2 * kMapCountFloor + 64};
  z_remap_ = Zone{w_ + 64 * kMiB, 4096};
  z_top_ = Zone{w_ + kWindowSize - 32 * kMiB, 8192};
  initial_brk_ = model().brk();
  const uint64_t hz = PageAlign(initial_brk_) + 256 * kPg;
  z_heap_ = Zone{hz, 64};
  have_heap_zone_ = !h_.Protected(hz, hz + 64 * kPg) &&
                    model().tree().FindVmaIntersection(hz - 1024 * kPg, hz + 1024 * kPg) == nullptr;
  const uint64_t lz = 0x1000;
  z_low_ = Zone{lz, 31};
  have_low_zone_ = !h_.Protected(lz, lz + 31 * kPg) &&
                   model().tree().FindVmaIntersection(lz, lz + 31 * kPg) == nullptr;
}

// ---------------------------------------------------------------------------
// Choosing.

bool Driver::Safe(uint64_t start, uint64_t len) const {
  const uint64_t end = start + PageAlign(len == 0 ? 1 : len);
  if (end < start || end > model().params().task_size) return false;
  return !h_.Protected(PageDown(start), end);
}

bool Driver::Guarded(uint64_t start, uint64_t end) const {
  for (int i = 0; i < nguarded_; ++i) {
    if (guarded_[i][0] < end && start < guarded_[i][1]) return true;
  }
  return false;
}

void Driver::AddGuarded(uint64_t start, uint64_t end) {
  if (nguarded_ < kMaxGuarded) {
    guarded_[nguarded_][0] = start;
    guarded_[nguarded_][1] = end;
    ++nguarded_;
  }
}

void Driver::TrackOutside(uint64_t start, uint64_t len) {
  if (start >= w_ && start < w_ + kWindowSize) return;
  if (noutside_ == kMaxOutside) {
    for (int i = 1; i < noutside_; ++i) {
      outside_[i - 1][0] = outside_[i][0];
      outside_[i - 1][1] = outside_[i][1];
    }
    --noutside_;
  }
  outside_[noutside_][0] = start;
  outside_[noutside_][1] = PageAlign(len);
  ++noutside_;
}

// True when [start, end) holds file pages beyond their object's end, guard
// pages, or VMAs the model marks as maybe guarded: populating calls there fail
// in ways the model cannot know (SIGBUS/guard faults turned into errnos).
bool Driver::Risky(uint64_t start, uint64_t end) const {
  if (Guarded(start, end)) return true;
  for (const Vma* v = model().FindVma(start); v != nullptr && v->start < end; v = v->next) {
    if (v->flags & kVmMaybeGuard) return true;
    if (v->file != nullptr) {
      const Object* o = FindObject(v->file);
      if (o == nullptr) return true;
      const uint64_t last_off = (v->pgoff + v->pages()) * kPg;
      if (last_off > o->size) return true;
    }
  }
  return false;
}

const Vma* Driver::PickTestVma() {
  const Vma* chosen = nullptr;
  uint64_t seen = 0;
  for (const Vma* v = model().tree().First(); v != nullptr; v = v->next) {
    if (h_.Protected(v->start, v->end)) continue;
    ++seen;
    if (rng_.Below(seen) == 0) chosen = v;
  }
  return chosen;
}

const Zone& Driver::PickZone() {
  const uint64_t r = rng_.Below(100);
  if (r < 35) return z_small_;
  if (r < 60) return z_mid_;
  if (r < 72) return z_remap_;
  if (r < 90) return z_top_;
  if (r < 95 && have_heap_zone_) return z_heap_;
  if (r < 97 && have_low_zone_) return z_low_;
  if (r < 99) return z_seal_;
  return z_small_;
}

bool Driver::ZoneRange(const Zone& z, uint64_t max_pages, uint64_t* start, uint64_t* len) {
  const uint64_t first = rng_.Below(z.pages);
  uint64_t n = 1 + rng_.Below(max_pages);
  if (first + n > z.pages) n = z.pages - first;
  *start = z.start + first * kPg;
  *len = n * kPg;
  return Safe(*start, *len);
}

bool Driver::PickRange(uint64_t* start, uint64_t* len) {
  for (int tries = 0; tries < 8; ++tries) {
    const uint64_t r = rng_.Below(100);
    uint64_t s = 0, l = 0;
    if (r < 45) {
      const Vma* v = PickTestVma();
      if (v == nullptr) continue;
      const uint64_t pages = v->pages();
      if (rng_.Chance(25)) {
        s = v->start - rng_.Below(3) * kPg;
      } else {
        s = v->start + rng_.Below(pages) * kPg;
      }
      l = (1 + rng_.Below(pages + 3)) * kPg;
      if (rng_.Chance(30)) l = v->end - s + rng_.Below(3) * kPg;  // to (or past) its end
      if (l == 0 || s + l <= s) continue;
    } else if (r < 60) {
      // Several VMAs, gaps included.
      const Vma* v = PickTestVma();
      if (v == nullptr) continue;
      const Vma* last = v;
      for (uint64_t k = 1 + rng_.Below(4); k > 0 && last->next != nullptr; --k) {
        if (h_.Protected(last->next->start, last->next->end)) break;
        last = last->next;
      }
      s = rng_.Chance(70) ? v->start : v->start + rng_.Below(v->pages()) * kPg;
      uint64_t e =
          rng_.Chance(70) ? last->end : last->start + (1 + rng_.Below(last->pages())) * kPg;
      if (e <= s) e = s + kPg;
      l = e - s;
    } else if (r < 94) {
      const uint64_t max = rng_.Chance(85) ? 32 : 600;
      if (!ZoneRange(PickZone(), max, &s, &l)) continue;
    } else {
      if (noutside_ == 0) continue;
      const int i = static_cast<int>(rng_.Below(static_cast<uint64_t>(noutside_)));
      s = outside_[i][0];
      l = outside_[i][1];
    }
    if (Safe(s, l)) {
      *start = s;
      *len = l;
      return true;
    }
  }
  return ZoneRange(z_small_, 16, start, len);
}

uint64_t Driver::PickLenPages() {
  const uint64_t r = rng_.Below(100);
  if (r < 55) return 1 + rng_.Below(8);
  if (r < 75) return 1 + rng_.Below(32);
  if (r < 85) return 33 + rng_.Below(480);
  if (r < 93) return 512 * (1 + rng_.Below(3));  // 2 MiB multiples: THP aligned
  if (r < 97) return 513;                        // 2 MiB + 4 KiB
  return 768;                                    // 3 MiB
}

int Driver::PickProt() {
  const uint64_t r = rng_.Below(100);
  if (r < 50) return a::kProtRead | a::kProtWrite;
  if (r < 65) return a::kProtRead;
  if (r < 75) return a::kProtNone;
  if (r < 83) return a::kProtRead | a::kProtExec;
  if (r < 90) return a::kProtRead | a::kProtWrite | a::kProtExec;
  if (r < 95) return a::kProtWrite;
  if (r < 98) return a::kProtExec;
  return a::kProtRead | a::kProtWrite | 0x10;  // an unknown bit: ignored by mmap
}

uint64_t Driver::TestBytes() const {
  uint64_t total = 0;
  for (const Vma* v = model().tree().First(); v != nullptr; v = v->next) {
    if (!h_.Protected(v->start, v->end)) total += v->size();
  }
  return total;
}

// ---------------------------------------------------------------------------
// Steps.

void Driver::MmapCommon(uint64_t addr, uint64_t len, int prot, int flags, const FileSlot* slot,
                        uint64_t off, bool check_safe, const char* note) {
  const bool fixed = (flags & (a::kMapFixed | a::kMapFixedNoreplace)) != 0;
  if (check_safe && (flags & a::kMapFixed) && !Safe(addr, len)) return;
  const int fd = slot != nullptr ? slot->fd : -1;
  h_.Begin("mmap", {addr, len, static_cast<uint64_t>(prot), static_cast<uint64_t>(flags),
                    static_cast<uint64_t>(static_cast<int64_t>(fd)), off});
  h_.Note(note);
  const int64_t r =
      Sys(SYS_mmap, addr, len, static_cast<uint64_t>(prot), static_cast<uint64_t>(flags),
          static_cast<uint64_t>(static_cast<int64_t>(fd)), off);
  MapArgs args;
  args.addr = addr;
  args.len = len;
  args.prot = prot;
  args.flags = flags;
  args.file = slot != nullptr ? slot->desc : nullptr;
  args.offset = off;
  const bool random = (flags & a::kMap32Bit) && !fixed;
  if (random && r >= 0) args.kernel_addr = static_cast<uint64_t>(r);
  const Outcome o = model().Map(args);
  const RetKind kind = fixed ? RetKind::kValue : random ? RetKind::kRandom : RetKind::kPlacement;
  h_.Result(r, o, kind);
  const bool shared_anon = (flags & a::kMapAnonymous) && (flags & a::kMapType) == a::kMapShared;
  if (r >= 0 && shared_anon) h_.ExpectNewShmem(static_cast<uint64_t>(r));
  const int plain =
      a::kMapPrivate | a::kMapShared | a::kMapAnonymous | a::kMapFixed | a::kMapFixedNoreplace;
  h_.End(FlagsDue(r >= 0 && ((flags & ~plain) != 0 || lockall_future_ != 0)));
  if (r >= 0) {
    if (!fixed) TrackOutside(static_cast<uint64_t>(r), len);
    if (shared_anon) {
      const Vma* v = model().FindVma(static_cast<uint64_t>(r));
      if (v != nullptr && v->file != nullptr && v->start <= static_cast<uint64_t>(r)) {
        AddObject(v->file->dev_major, v->file->dev_minor, v->file->inode, PageAlign(len));
      }
    }
  }
}

void Driver::OpMmapAnon(bool shared) {
  uint64_t len = PickLenPages() * kPg;
  int prot = PickProt();
  int flags = (shared ? a::kMapShared : a::kMapPrivate) | a::kMapAnonymous;
  uint64_t off = 0;
  const char* note = nullptr;
  if (!shared) {
    if (rng_.Chance(12)) flags |= a::kMapNoreserve;
    if (rng_.Chance(4)) flags |= a::kMapPopulate;
    if (rng_.Chance(2)) flags |= a::kMapLocked;
    if (rng_.Chance(5)) flags |= a::kMapGrowsdown;
    if (rng_.Chance(3)) flags |= a::kMapStack;
    if (rng_.Chance(1)) flags |= a::kMapUninitialized;
    if (rng_.Chance(1)) flags = (flags & ~a::kMapType) | a::kMapDroppable;
  } else if (rng_.Chance(5)) {
    flags |= a::kMapPopulate;
  }
  if (len > 64 * kPg && ((flags & (a::kMapPopulate | a::kMapLocked)) || PopulatesAll())) {
    len = 16 * kPg;
  }
  uint64_t addr = 0;
  const uint64_t mode = rng_.Below(100);
  uint64_t zlen = 0;
  if (mode < 40) {
    // Kernel-placed.
    if (!shared && rng_.Chance(3)) flags |= a::kMap32Bit;
    if (rng_.Chance(2)) flags |= a::kMapAbove4G;
  } else if (mode < 88) {
    flags |= mode < 65 ? a::kMapFixedNoreplace : a::kMapFixed;
    const Zone& z = PickZone();
    uint64_t pages = len / kPg;
    if (pages > z.pages) pages = z.pages;
    if (!ZoneRange(z, 1, &addr, &zlen)) return;
    if (addr + pages * kPg > z.start + z.pages * kPg) addr = z.start + (z.pages - pages) * kPg;
    len = pages * kPg;
  } else {
    // A hint: a zone address (maybe taken), below mmap_min_addr, a seeded
    // VMA (taken), above TASK_SIZE, or unaligned.
    const uint64_t h = rng_.Below(100);
    if (h < 60) {
      ZoneRange(PickZone(), 1, &addr, &zlen);
    } else if (h < 70) {
      addr = 0x1000;
    } else if (h < 80) {
      const Vma* v = model().tree().First();
      addr = v != nullptr ? v->start : 0x400000;
    } else if (h < 88) {
      addr = model().params().task_size + rng_.Below(4) * kPg;
    } else {
      ZoneRange(PickZone(), 1, &addr, &zlen);
      addr += 1 + rng_.Below(kPg - 1);
    }
    note = "hint";
  }
  // Invalid arguments now and then.
  if (Invalid(6)) {
    switch (rng_.Below(10)) {
      case 0:
        len = 0;
        break;
      case 1:
        len = uint64_t{1} << 47;
        break;
      case 2:
        len = ~uint64_t{0} - 100;  // PAGE_ALIGN wraps to 0
        break;
      case 3:
        if (flags & (a::kMapFixed | a::kMapFixedNoreplace)) addr += 1 + rng_.Below(kPg - 1);
        break;
      case 4:
        flags = (flags & ~a::kMapType) | a::kMapSharedValidate;
        break;
      case 5:
        flags &= ~a::kMapType;
        break;
      case 6:
        off = 1 + rng_.Below(kPg - 1);
        break;
      case 7:
        flags |= a::kMapHugetlb | (13 << a::kMapHugeShift);  // no 8 KiB huge pages
        break;
      case 8:
        // Onto the harness's own memory: EEXIST, never a replacement.
        flags = (flags & ~a::kMapFixed) | a::kMapFixedNoreplace;
        addr = model().tree().First() != nullptr ? model().tree().First()->start : 0x400000;
        len = kPg;
        break;
      case 9:
        flags = (flags & ~a::kMapFixedNoreplace) | a::kMapFixed;
        addr = rng_.Chance(50) ? 0 : model().params().task_size;
        len = kPg;
        break;
    }
    note = "invalid args";
  }
  const bool above_task_size = addr >= model().params().task_size && len <= kGiB;
  if ((flags & a::kMapFixed) && !above_task_size && !Safe(addr, len)) return;
  if ((flags & a::kMapFixedNoreplace) && !(flags & a::kMapFixed) && !Safe(addr, len)) {
    // NOREPLACE onto protected memory is harmless (EEXIST) unless part of the
    // range is free: then only allow it onto a single seeded VMA.
    const Vma* v = model().FindVma(addr);
    if (v == nullptr || v->start > addr || addr + len > v->end) return;
  }
  MmapCommon(addr, len, prot, flags, nullptr, off, false, note);
}

void Driver::OpMmapFile() {
  const FileSlot& slot = slots_[rng_.Below(static_cast<uint64_t>(nslots_))];
  const uint64_t file_pages = kFileBytes / kPg;
  uint64_t off_pages;
  uint64_t pages;
  const uint64_t r = rng_.Below(100);
  if (r < 70) {
    off_pages = rng_.Below(64);
    pages = 1 + rng_.Below(16);
  } else if (r < 85) {
    off_pages = rng_.Below(file_pages - 16);
    pages = 1 + rng_.Below(16);
  } else if (r < 90) {
    off_pages = 0;
    pages = 513;  // THP-aligned file placement
  } else if (r < 95) {
    off_pages = 256;
    pages = rng_.Chance(50) ? 768 : 512;  // ≡ 1 MiB, or plain
  } else {
    off_pages = file_pages - 2;
    pages = 4;  // past EOF
  }
  if (pages > 64 && PopulatesAll()) pages = 16;
  uint64_t off = off_pages * kPg;
  uint64_t len = pages * kPg;
  int prot;
  const uint64_t p = rng_.Below(100);
  if (p < 40) {
    prot = a::kProtRead;
  } else if (p < 75) {
    prot = a::kProtRead | a::kProtWrite;
  } else if (p < 85) {
    prot = a::kProtRead | a::kProtExec;
  } else if (p < 92) {
    prot = a::kProtNone;
  } else {
    prot = a::kProtRead | a::kProtWrite | a::kProtExec;
  }
  int flags = rng_.Chance(55) ? a::kMapPrivate : a::kMapShared;
  if (rng_.Chance(4)) flags |= a::kMapPopulate;
  if (rng_.Chance(2)) flags |= a::kMapLocked;
  if (rng_.Chance(4)) flags |= a::kMapNoreserve;
  const char* note = slot.label;
  if (Invalid(5)) {
    switch (rng_.Below(5)) {
      case 0:
        off += 1 + rng_.Below(kPg - 1);
        break;
      case 1:
        off = ~uint64_t{0} & kPageMask;  // pgoff beyond MAX_LFS_FILESIZE: EOVERFLOW
        break;
      case 2:
        flags = (flags & ~a::kMapType) | a::kMapSharedValidate | 0x80000;  // MAP_SYNC: EOPNOTSUPP
        break;
      case 3:
        flags = (flags & ~a::kMapType) | a::kMapSharedValidate;
        break;
      case 4:
        flags |= a::kMapGrowsdown;  // EINVAL for files
        break;
    }
  }
  uint64_t addr = 0;
  uint64_t zlen = 0;
  const uint64_t mode = rng_.Below(100);
  if (mode < 45) {
    // kernel-placed
  } else if (mode < 90) {
    flags |= mode < 65 ? a::kMapFixedNoreplace : a::kMapFixed;
    const Zone& z = PickZone();
    if (pages > z.pages) return;
    if (!ZoneRange(z, 1, &addr, &zlen)) return;
    if (addr + len > z.start + z.pages * kPg) addr = z.start + (z.pages - pages) * kPg;
    if (!Safe(addr, len)) return;
  } else {
    ZoneRange(PickZone(), 1, &addr, &zlen);
  }
  MmapCommon(addr, len, prot, flags, &slot, off, true, note);
}

void Driver::DoMunmap(uint64_t start, uint64_t len, const char* note) {
  h_.Begin("munmap", {start, len});
  h_.Note(note);
  const int64_t r = Sys(SYS_munmap, start, len);
  const Outcome o = model().Unmap(start, len);
  h_.Result(r, o);
  h_.End();
}

void Driver::OpMunmap() {
  uint64_t s, l;
  if (!PickRange(&s, &l)) return;
  const char* note = nullptr;
  if (rng_.Chance(10)) l += 1 + rng_.Below(kPg - 1);  // rounded up
  if (!Safe(s, l)) return;
  if (Invalid(6)) {
    switch (rng_.Below(3)) {
      case 0:
        s += 1 + rng_.Below(kPg - 1);
        break;
      case 1:
        l = 0;
        break;
      case 2:
        // > TASK_SIZE - start for every start (TASK_SIZE itself is not, at 0).
        l = model().params().task_size + kPg;
        break;
    }
    note = "invalid args";
  }
  DoMunmap(s, l, note);
}

void Driver::OpMprotect() {
  uint64_t s, l;
  if (!PickRange(&s, &l)) return;
  int prot = PickProt() & 7;
  const char* note = nullptr;
  if (rng_.Chance(3)) prot |= a::kProtSem;
  const bool pkey_call = rng_.Chance(15) && !(opt_.skip & kSkipPkey);
  int pkey = -1;
  if (pkey_call)
    pkey = rng_.Chance(80) ? 0 : rng_.Chance(50) || (opt_.skip & kSkipInvalid) ? -1 : 5;
  if (rng_.Chance(4)) {
    // PROT_GROWSDOWN: extends the range down to the VMA's start.
    const Vma* v = model().FindVma(s);
    if (v == nullptr || h_.Protected(v->start, s + l)) return;
    prot |= a::kProtGrowsdown;
    note = "growsdown";
  }
  if (!Safe(s, l)) return;
  if (Invalid(6)) {
    // Invalid arguments (the range itself stays safe for the kernel to use).
    switch (rng_.Below(5)) {
      case 0:
        s += 1 + rng_.Below(kPg - 1);
        break;
      case 1:
        l = 0;
        break;
      case 2:
        l = ~uint64_t{0} - s + 2;  // end wraps: ENOMEM
        if (s < 2 * kPg) return;
        break;
      case 3:
        prot |= 0x10;
        break;
      case 4:
        prot |= a::kProtGrowsdown | a::kProtGrowsup;
        break;
    }
    note = "invalid args";
  }
  if (pkey_call) {
    h_.Begin("pkey_mprotect", {s, l, static_cast<uint64_t>(prot),
                               static_cast<uint64_t>(static_cast<int64_t>(pkey))});
  } else {
    h_.Begin("mprotect", {s, l, static_cast<uint64_t>(prot)});
  }
  h_.Note(note);
  const int64_t r = pkey_call ? Sys(SYS_pkey_mprotect, s, l, static_cast<uint64_t>(prot),
                                    static_cast<uint64_t>(static_cast<int64_t>(pkey)))
                              : Sys(SYS_mprotect, s, l, static_cast<uint64_t>(prot));
  const Outcome o = model().Protect(s, l, prot, pkey);
  h_.Result(r, o);
  h_.End(FlagsDue(r == 0 && l != 0));
}

void Driver::OpMremap() {
  const Vma* v = PickTestVma();
  if (v == nullptr) return;
  uint64_t addr = v->start;
  uint64_t old_len = v->size();
  uint64_t new_len = old_len;
  uint64_t new_addr = 0;
  int flags = 0;
  const char* note = nullptr;
  const uint64_t r = rng_.Below(100);
  uint64_t zs, zl;
  if (r < 18) {
    // Shrink.
    addr = v->start + rng_.Below(v->pages()) * kPg;
    old_len = v->end - addr;
    if (old_len < 2 * kPg) return;
    new_len = (1 + rng_.Below(old_len / kPg - 1)) * kPg;
    flags = rng_.Chance(50) ? a::kMremapMaymove : 0;
    note = "shrink";
  } else if (r < 45) {
    // Grow (in place if possible; MAYMOVE moves it otherwise).
    addr = v->start + (rng_.Chance(70) ? 0 : rng_.Below(v->pages()) * kPg);
    old_len = v->end - addr;
    const uint64_t extra =
        rng_.Chance(85) || PopulatesAll() ? 1 + rng_.Below(16) : 512 - (old_len / kPg) % 512;
    new_len = old_len + extra * kPg;
    flags = rng_.Chance(65) ? a::kMremapMaymove : 0;
    note = "grow";
  } else if (r < 66) {
    // Move to a fixed place.
    addr = v->start + (rng_.Chance(60) ? 0 : rng_.Below(v->pages()) * kPg);
    old_len = v->end - addr;
    new_len = rng_.Chance(60) ? old_len : (1 + rng_.Below(old_len / kPg + 8)) * kPg;
    const Zone& z = rng_.Chance(50) ? z_remap_ : PickZone();
    if (!ZoneRange(z, 1, &zs, &zl)) return;
    new_addr = zs;
    flags = a::kMremapMaymove | a::kMremapFixed;
    if (rng_.Chance(15)) {
      flags |= a::kMremapDontunmap;
      new_len = old_len;
    }
    note = "move";
  } else if (r < 73) {
    // DONTUNMAP, kernel-placed.
    addr = v->start;
    old_len = v->size();
    new_len = old_len;
    flags = a::kMremapMaymove | a::kMremapDontunmap;
    note = "dontunmap";
  } else if (r < 82) {
    // Several VMAs (and the gaps between them) moved together (6.17+).
    const Vma* last = v;
    for (uint64_t k = 1 + rng_.Below(4); k > 0 && last->next != nullptr; --k) {
      if (h_.Protected(last->next->start, last->next->end)) break;
      if (last->next->start - last->end > 64 * kPg) break;
      last = last->next;
    }
    addr = v->start;
    old_len = last->end - v->start;
    new_len = old_len;
    if (!ZoneRange(rng_.Chance(50) ? z_remap_ : z_mid_, 1, &zs, &zl)) return;
    new_addr = zs;
    flags = a::kMremapMaymove | a::kMremapFixed;
    note = "multi-vma move";
  } else if (r < 86) {
    // old_len 0: a second mapping of the same shared pages.
    if (!(v->flags & kVmShared) && !rng_.Chance(20)) return;
    addr = v->start;
    old_len = 0;
    new_len = (1 + rng_.Below(v->pages())) * kPg;
    flags = a::kMremapMaymove;
    if (rng_.Chance(40) && ZoneRange(z_remap_, 1, &zs, &zl)) {
      new_addr = zs;
      flags |= a::kMremapFixed;
    }
    note = "old_len 0";
  } else {
    // Invalid arguments.
    if (opt_.skip & kSkipInvalid) return;
    note = "invalid args";
    switch (rng_.Below(9)) {
      case 0:
        flags = 8;
        break;
      case 1:
        addr += 1 + rng_.Below(kPg - 1);
        break;
      case 2:
        new_len = 0;
        break;
      case 3:
        flags = a::kMremapFixed;  // without MAYMOVE
        ZoneRange(z_remap_, 1, &new_addr, &zl);
        break;
      case 4:
        flags = a::kMremapMaymove | a::kMremapFixed;  // overlapping
        new_addr = addr + kPg;
        break;
      case 5:
        flags = a::kMremapMaymove | a::kMremapDontunmap;
        new_len = old_len + kPg;
        break;
      case 6:
        old_len = uint64_t{1} << 62;
        break;
      case 7:
        flags = a::kMremapMaymove | a::kMremapFixed;
        ZoneRange(z_remap_, 1, &new_addr, &zl);
        new_addr += 1 + rng_.Below(kPg - 1);
        break;
      case 8:
        // Start in a gap: EFAULT.
        addr = v->start - kPg;
        if (v->prev != nullptr && v->prev->end > addr) return;
        flags = a::kMremapMaymove | a::kMremapFixed;
        ZoneRange(z_remap_, 1, &new_addr, &zl);
        break;
    }
  }
  if (note != nullptr && strcmp(note, "invalid args") != 0) {
    if (!Safe(addr, old_len == 0 ? kPg : old_len)) return;
    if ((flags & a::kMremapFixed) && !Safe(new_addr, new_len)) return;
    if ((flags & a::kMremapFixed) && new_addr < addr + old_len && addr < new_addr + new_len) {
      return;  // overlap is an errno case of its own
    }
  } else {
    // Even invalid calls must not reach the harness's memory if the kernel
    // happened to accept them.
    if (!Safe(addr & kPageMask, old_len > model().params().task_size ? kPg : old_len)) return;
    if ((flags & a::kMremapFixed) && !Safe(new_addr & kPageMask, new_len)) return;
  }
  const bool guarded = Guarded(addr, addr + old_len);
  h_.Begin("mremap", {addr, old_len, new_len, static_cast<uint64_t>(flags), new_addr});
  h_.Note(note);
  const int64_t kr =
      Sys(SYS_mremap, addr, old_len, new_len, static_cast<uint64_t>(flags), new_addr);
  const Outcome o = model().Remap(addr, old_len, new_len, flags, new_addr);
  const bool may_place = (flags & a::kMremapMaymove) && !(flags & a::kMremapFixed);
  const bool moved = (kr >= 0 && static_cast<uint64_t>(kr) != addr) ||
                     (o.ret >= 0 && static_cast<uint64_t>(o.ret) != addr);
  h_.Result(kr, o, may_place && moved ? RetKind::kPlacement : RetKind::kValue);
  h_.End(FlagsDue(kr >= 0 && (flags & a::kMremapDontunmap)));
  if (kr >= 0) {
    if (guarded) AddGuarded(static_cast<uint64_t>(kr), static_cast<uint64_t>(kr) + new_len);
    if (may_place) TrackOutside(static_cast<uint64_t>(kr), new_len);
  }
}

void Driver::OpMadvise() {
  static constexpr int kAdvice[] = {
      a::kMadvNormal,
      a::kMadvRandom,
      a::kMadvSequential,
      a::kMadvWillneed,
      a::kMadvDontneed,
      a::kMadvFree,
      a::kMadvRemove,
      a::kMadvDontfork,
      a::kMadvDofork,
      a::kMadvMergeable,
      a::kMadvUnmergeable,
      a::kMadvHugepage,
      a::kMadvNohugepage,
      a::kMadvDontdump,
      a::kMadvDodump,
      a::kMadvWipeonfork,
      a::kMadvKeeponfork,
      a::kMadvCold,
      a::kMadvPageout,
      a::kMadvPopulateRead,
      a::kMadvPopulateWrite,
      a::kMadvDontneedLocked,
      a::kMadvGuardInstall,
      a::kMadvGuardRemove,
      5,
      7,
      26,
      99,
      104,
      -1,
  };
  constexpr uint64_t kCount = sizeof(kAdvice) / sizeof(kAdvice[0]);
  uint64_t s, l;
  if (!PickRange(&s, &l)) return;
  const int advice = kAdvice[rng_.Below((opt_.skip & kSkipInvalid) ? kCount - 6 : kCount)];
  const char* note = nullptr;
  const bool populate = advice == a::kMadvPopulateRead || advice == a::kMadvPopulateWrite;
  if (populate && Risky(s, s + l)) return;
  if (advice == a::kMadvGuardInstall && nguarded_ >= kMaxGuarded) return;
  if (!Safe(s, l)) return;
  if (Invalid(5)) {
    switch (rng_.Below(3)) {
      case 0:
        s += 1 + rng_.Below(kPg - 1);
        break;
      case 1:
        l = 0;
        break;
      case 2:
        l = ~uint64_t{0} - s + 2;  // end wraps: EINVAL
        if (s < 2 * kPg) return;   // (no wrap from the first pages)
        break;
    }
    note = "invalid args";
  }
  if (populate && l > 2048 * kPg) return;
  h_.Begin("madvise", {s, l, static_cast<uint64_t>(static_cast<int64_t>(advice))});
  h_.Note(note);
  const int64_t r = Sys(SYS_madvise, s, l, static_cast<uint64_t>(static_cast<int64_t>(advice)));
  const Outcome o = model().Advise(s, l, advice);
  h_.Result(r, o);
  // Guard markers make later touches fault in ways the model does not track
  // page by page: keep away from them (even after a partial failure).
  if (advice == a::kMadvGuardInstall && note == nullptr) AddGuarded(s, s + PageAlign(l));
  const bool flag_advice =
      advice == a::kMadvNormal || advice == a::kMadvRandom || advice == a::kMadvSequential ||
      advice == a::kMadvDontfork || advice == a::kMadvDofork || advice == a::kMadvMergeable ||
      advice == a::kMadvUnmergeable || advice == a::kMadvHugepage || advice == a::kMadvNohugepage ||
      advice == a::kMadvDontdump || advice == a::kMadvDodump || advice == a::kMadvWipeonfork ||
      advice == a::kMadvKeeponfork || advice == a::kMadvGuardInstall ||
      advice == a::kMadvPopulateWrite;
  h_.End(FlagsDue(r != -EINVAL && flag_advice));
}

void Driver::OpMlock() {
  uint64_t s, l;
  if (!PickRange(&s, &l)) return;
  const uint64_t r = rng_.Below(100);
  const char* note = nullptr;
  if (rng_.Chance(8)) {
    s += rng_.Below(kPg);  // mlock rounds the start down
    note = "unaligned";
  }
  if (!Safe(s & kPageMask, l + kPg)) return;
  if (r < 40) {
    if (Risky(s, s + l) || l > 1024 * kPg) return;
    h_.Begin("mlock", {s, l});
    h_.Note(note);
    const int64_t kr = Sys(SYS_mlock, s, l);
    const Outcome o = model().Lock(s, l, 0);
    h_.Result(kr, o);
  } else if (r < 65) {
    int flags = rng_.Chance(80) ? a::kMlockOnfault : 0;
    if (Invalid(5)) flags = 2;  // unknown: EINVAL
    if (flags == 0 && (Risky(s, s + l) || l > 1024 * kPg)) return;
    h_.Begin("mlock2", {s, l, static_cast<uint64_t>(flags)});
    h_.Note(note);
    const int64_t kr = Sys(SYS_mlock2, s, l, static_cast<uint64_t>(flags));
    const Outcome o = model().Lock(s, l, flags);
    h_.Result(kr, o);
  } else {
    if (Invalid(5)) {
      l = ~uint64_t{0} - s + 2;
      note = "invalid args";
    }
    h_.Begin("munlock", {s, l});
    h_.Note(note);
    const int64_t kr = Sys(SYS_munlock, s, l);
    const Outcome o = model().Unlock(s, l);
    h_.Result(kr, o);
  }
  h_.End(FlagsDue(h_.last_kernel_ret() != -EINVAL));
}

void Driver::OpMlockall() {
  if (rng_.Chance(45)) {
    h_.Begin("munlockall", {});
    const int64_t kr = Sys(SYS_munlockall);
    const Outcome o = model().UnlockAll();
    h_.Result(kr, o);
    if (kr == 0) lockall_future_ = 0;
    h_.SetLockAllFuture(lockall_future_);
    h_.End(FlagsDue(true));
    return;
  }
  static constexpr int kFlags[] = {
      a::kMclCurrent,
      a::kMclFuture,
      a::kMclCurrent | a::kMclFuture,
      a::kMclCurrent | a::kMclOnfault,
      a::kMclFuture | a::kMclOnfault,
      a::kMclCurrent | a::kMclFuture | a::kMclOnfault,
      0,
      a::kMclOnfault,
      8,
  };
  const uint64_t nflags = sizeof(kFlags) / sizeof(kFlags[0]);
  const int flags = kFlags[rng_.Below((opt_.skip & kSkipInvalid) ? nflags - 3 : nflags)];
  // Populating everything makes every later smaps read walk it: only when
  // the test's own memory is small.
  if ((flags & a::kMclCurrent) && !(flags & a::kMclOnfault) && TestBytes() > 64 * kMiB) return;
  h_.Begin("mlockall", {static_cast<uint64_t>(flags)});
  const int64_t kr = Sys(SYS_mlockall, static_cast<uint64_t>(flags));
  const Outcome o = model().LockAll(flags);
  h_.Result(kr, o);
  if (kr == 0)
    lockall_future_ = (flags & a::kMclFuture) ? flags & (a::kMclFuture | a::kMclOnfault) : 0;
  h_.SetLockAllFuture(lockall_future_);
  h_.End(FlagsDue(kr == 0));
}

void Driver::OpMseal() {
  uint64_t s = 0, l = 0, zl = 0;
  // Seals are permanent: confine them to their own zone.
  const Vma* v = model().FindVma(z_seal_.start + rng_.Below(z_seal_.pages) * kPg);
  if (v != nullptr && v->start >= z_seal_.start && v->end <= z_seal_.start + z_seal_.pages * kPg &&
      rng_.Chance(50)) {
    s = v->start;
    l = v->size();
  } else if (!ZoneRange(z_seal_, 8, &s, &l)) {
    return;
  }
  (void)zl;
  uint64_t flags = 0;
  const char* note = nullptr;
  if (Invalid(8)) {
    switch (rng_.Below(4)) {
      case 0:
        flags = 1;
        break;
      case 1:
        s += 1 + rng_.Below(kPg - 1);
        break;
      case 2:
        l = ~uint64_t{0} - s + 2;
        break;
      case 3:
        l = 0;
        break;
    }
    note = "invalid args";
  }
  h_.Begin("mseal", {s, l, flags});
  h_.Note(note);
  const int64_t kr = Sys(462, s, l, flags);
  const Outcome o = model().Seal(s, l, flags);
  h_.Result(kr, o);
  h_.End(FlagsDue(kr == 0));
}

void Driver::OpBrk() {
  const uint64_t cur = model().brk();
  uint64_t target;
  const uint64_t r = rng_.Below(100);
  const char* note = nullptr;
  if (cur > initial_brk_ + 4 * kMiB) {
    target = initial_brk_ + rng_.Below(64) * kPg;
    note = "shrink";
  } else if (r < 30) {
    target = cur + rng_.Below(16) * kPg + rng_.Below(kPg);
    note = "grow";
  } else if (r < 45) {
    target = cur + (64 + rng_.Below(PopulatesAll() ? 16 : 448)) * kPg;
    note = "grow";
  } else if (r < 70) {
    const uint64_t down = (1 + rng_.Below(16)) * kPg + rng_.Below(kPg);
    target = cur > initial_brk_ + down ? cur - down : initial_brk_;
    note = "shrink";
  } else if (r < 80) {
    target = 0;
    note = "query";
  } else if (r < 85) {
    target = model().start_brk() - kPg;
    note = "below start_brk";
  } else if (r < 90) {
    target = model().params().task_size + kPg;  // fails the TASK_SIZE check
    note = "huge";
  } else {
    target = cur;
  }
  if (target != 0 && target < initial_brk_ && target >= model().start_brk()) target = initial_brk_;
  h_.Begin("brk", {target});
  h_.Note(note);
  const int64_t kr = Sys(SYS_brk, target);
  const Outcome o = model().Brk(target);
  h_.Result(kr, o);
  h_.End(FlagsDue(kr != static_cast<int64_t>(cur)));
}

void Driver::OpTouch() {
  const Vma* v = PickTestVma();
  uint64_t addr;
  const char* note = nullptr;
  if (v == nullptr || rng_.Chance(3)) {
    uint64_t zl;
    if (!ZoneRange(PickZone(), 1, &addr, &zl)) return;
    note = "anywhere";
  } else if ((v->flags & kVmGrowsdown) && rng_.Chance(30)) {
    // Below a MAP_GROWSDOWN mapping: the stack-style growth.
    const uint64_t below = rng_.Chance(85) ? 1 + rng_.Below(3) : 1 + rng_.Below(400);
    if (v->start < below * kPg + (uint64_t{1} << 16)) return;
    addr = v->start - below * kPg;
    note = "below growsdown";
  } else {
    addr = v->start + rng_.Below(v->pages()) * kPg;
  }
  addr += rng_.Below(kPg / 8) * 8;
  if (!Safe(addr, 1) || Guarded(addr, addr + 1)) return;
  // The VMA that will take the fault (the growsdown one when below it).
  const Vma* t = model().FindVma(addr);
  if (t != nullptr && t->start <= addr) {
    if (t->flags & kVmMaybeGuard) return;
    if (t->file != nullptr) {
      const Object* obj = FindObject(t->file);
      if (obj == nullptr) return;
      if ((t->pgoff + ((addr - t->start) >> kPageShift)) * kPg >= obj->size) return;
    }
  } else if (t != nullptr && (t->flags & kVmGrowsdown) && h_.Protected(t->start, t->end)) {
    return;  // never grow the harness's stack
  }
  const bool write = rng_.Chance(55);
  h_.Begin(write ? "touch_write" : "touch_read", {addr});
  h_.Note(note);
  const int64_t kr = KernelTouch(addr, write);
  const Outcome o = model().Touch(addr, write);
  ++counters().touches;
  if (kr != 0) ++counters().touch_faults;
  h_.Result(kr, o);
  h_.End(false);
}

// THP: a kernel-placed anonymous mapping of whole 2 MiB units (the THP
// aligner places it aligned), MADV_HUGEPAGE on one unit, a fault in it (a
// huge PMD with a deposited table, or the huge zero page on a read). Later
// steps then split, move, zap, copy and unmap it.
void Driver::OpThp() {
  const uint64_t len = (1 + rng_.Below(3)) * 512 * kPg;
  if (PopulatesAll()) return;
  int flags = a::kMapPrivate | a::kMapAnonymous;
  if (rng_.Chance(30)) flags |= a::kMapNoreserve;
  MmapCommon(0, len, a::kProtRead | a::kProtWrite, flags, nullptr, 0, false, "thp");
  const int64_t r = h_.last_kernel_ret();
  if (r < 0) return;
  const uint64_t base = static_cast<uint64_t>(r);
  const uint64_t unit =
      ((base + kPmdSize - 1) & ~(kPmdSize - 1)) + rng_.Below(len / kPmdSize) * kPmdSize;
  if (unit + kPmdSize > base + len || !Safe(unit, kPmdSize)) return;
  h_.Begin("madvise", {unit, kPmdSize, static_cast<uint64_t>(a::kMadvHugepage)});
  h_.Note("thp");
  const int64_t kr = Sys(SYS_madvise, unit, kPmdSize, static_cast<uint64_t>(a::kMadvHugepage));
  h_.Result(kr, model().Advise(unit, kPmdSize, a::kMadvHugepage));
  h_.End(FlagsDue(kr == 0));
  const uint64_t addr = unit + rng_.Below(512) * kPg;
  const bool write = rng_.Chance(70);
  if (Guarded(addr, addr + 1)) return;
  h_.Begin(write ? "touch_write" : "touch_read", {addr});
  h_.Note("thp");
  const int64_t tr = KernelTouch(addr, write);
  const Outcome o = model().Touch(addr, write);
  ++counters().touches;
  if (tr != 0) ++counters().touch_faults;
  h_.Result(tr, o);
  h_.End(false);
}

void Driver::OpUnlink() {
  h_.Begin("unlink", {inode_a_});
  h_.Note(path_a_);
  const int64_t kr = unlink(path_a_) == 0 ? 0 : -errno;
  if (kr == 0) {
    model().MarkFileDeleted(dev_a_major_, dev_a_minor_, inode_a_);
    for (int i = 0; i < 4; ++i) descs_[i].deleted = true;
    unlinked_ = true;
  }
  Outcome o;
  o.ret = 0;
  h_.Result(kr, o);
  h_.End(false);
}

void Driver::OpCleanup() {
  // Unmap a whole zone, or what lies outside W.
  const uint64_t r = rng_.Below(100);
  if (r < 20 && noutside_ > 0) {
    const int i = static_cast<int>(rng_.Below(static_cast<uint64_t>(noutside_)));
    const uint64_t s = outside_[i][0], l = outside_[i][1];
    outside_[i][0] = outside_[--noutside_][0];
    outside_[i][1] = outside_[noutside_][1];
    if (Safe(s, l)) DoMunmap(s, l, "cleanup");
    return;
  }
  const Zone* zones[] = {&z_small_, &z_mid_, &z_remap_, &z_top_};
  const Zone& z = *zones[rng_.Below(4)];
  if (&z == &z_top_ && rng_.Chance(50)) {
    // The top of W is where the kernel places things: clear a bigger part.
    DoMunmap(w_ + kWindowSize - 256 * kMiB, 256 * kMiB, "cleanup");
    return;
  }
  DoMunmap(z.start, z.pages * kPg, "cleanup");
}

void Driver::DoFork() {
  const uint64_t unlocated = model().page_tables().counts().unlocated;
  h_.Begin("fork", {});
  const pid_t pid = fork();
  if (pid < 0) {
    Outcome o;
    h_.Result(-errno, o);
    h_.End(false);
    return;
  }
  if (pid != 0) {
    // The child waits; the grandchild carries on with the run.
    alarm(0);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
    Writer w(opt_.verbose ? 1 : 1);
    w.Str("kernel-oracle: the forked grandchild died with signal ").Dec(WTERMSIG(status)).Ch('\n');
    _exit(1);
  }
  model().ForkChild();
  h_.NoteForkChild();
  h_.AfterForkChild(unlocated);
  lockall_future_ = 0;
  h_.SetLockAllFuture(0);
  ++counters().forks;
  Outcome o;
  o.ret = 0;
  h_.Result(0, o);
  h_.End(true);
}

void Driver::MapCountPhase() {
  const int64_t orig = ReadSysctl(kMaxMapCountPath);
  if (orig <= 0) return;
  in_phase_ = true;
  // Raise our own count first (see kMapCountFloor).
  uint64_t count = model().map_count();
  if (count < kMapCountFloor) {
    const uint64_t need = (kMapCountFloor - count) / 2 + 1;
    const uint64_t pages = 2 * need + 1;
    if (pages > z_fill_.pages) return;
    const int flags = a::kMapPrivate | a::kMapAnonymous | a::kMapFixed | a::kMapNoreserve;
    h_.Begin("mmap",
             {z_fill_.start, pages * kPg, 3, static_cast<uint64_t>(flags), ~uint64_t{0}, 0});
    h_.Note("map_count filler");
    const int64_t r =
        Sys(SYS_mmap, z_fill_.start, pages * kPg, 3, static_cast<uint64_t>(flags), ~uint64_t{0}, 0);
    MapArgs args;
    args.addr = z_fill_.start;
    args.len = pages * kPg;
    args.prot = 3;
    args.flags = flags;
    h_.Result(r, model().Map(args));
    h_.End(false);
    if (r < 0) {
      in_phase_ = false;
      return;
    }
    for (uint64_t k = 0; k < need; ++k) {
      const uint64_t s = z_fill_.start + (2 * k + 1) * kPg;
      h_.Begin("mprotect", {s, kPg, 1});
      h_.Note("map_count filler");
      const int64_t kr = Sys(SYS_mprotect, s, kPg, 1);
      h_.Result(kr, model().Protect(s, kPg, 1));
      h_.End(false);
    }
    count = model().map_count();
  }
  const uint64_t limit = count + rng_.Below(4);
  if (WriteSysctl(kMaxMapCountPath, static_cast<int64_t>(limit)) != 0) {
    in_phase_ = false;
    return;
  }
  h_.SetMaxMapCount(limit);
  ++counters().map_count_phases;
  {
    Writer w(1);
    if (opt_.verbose) {
      w.Str("kernel-oracle: vm.max_map_count lowered to ").Udec(limit).Str(" (was ");
      w.Dec(orig).Str(")\n");
    }
  }
  const uint64_t steps = 120 + rng_.Below(80);
  const uint64_t end = counters().ops + steps;
  while (counters().ops < end && counters().ops < opt_.ops) Step();
  WriteSysctl(kMaxMapCountPath, orig);
  h_.SetMaxMapCount(static_cast<uint64_t>(orig));
  DoMunmap(z_fill_.start, z_fill_.pages * kPg, "map_count filler");
  in_phase_ = false;
}

void Driver::Step() {
  // Keep the address space bounded.
  const uint64_t nv = model().map_count();
  if (!in_phase_ && (nv > 350 || (counters().ops % 32 == 0 && TestBytes() > 256 * kMiB))) {
    OpCleanup();
    return;
  }
  const uint64_t r = rng_.Below(1000);
  const uint32_t skip = opt_.skip;
  if (r < 170) {
    if (!(skip & kSkipAnon)) OpMmapAnon(false);
  } else if (r < 200) {
    if (!(skip & kSkipShmem)) OpMmapAnon(true);
  } else if (r < 280) {
    if (!(skip & kSkipFile)) OpMmapFile();
  } else if (r < 380) {
    if (!(skip & kSkipMunmap)) OpMunmap();
  } else if (r < 490) {
    if (!(skip & kSkipMprotect)) OpMprotect();
  } else if (r < 580) {
    if (!(skip & kSkipMremap)) OpMremap();
  } else if (r < 670) {
    if (!(skip & kSkipMadvise)) OpMadvise();
  } else if (r < 720) {
    if (!(skip & kSkipMlock)) OpMlock();
  } else if (r < 724) {
    if (!(skip & kSkipMlockall)) OpMlockall();
  } else if (r < 734) {
    if (!(skip & kSkipMseal)) OpMseal();
  } else if (r < 764) {
    if (!(skip & kSkipBrk)) OpBrk();
  } else if (r < 984) {
    if (!(skip & kSkipTouch)) OpTouch();
  } else if (r < 994) {
    if (!(skip & kSkipThp)) OpThp();
  } else {
    OpCleanup();
  }
}

int Driver::Prepare() {
  Writer w(1);
  const int fr = SetupFiles();
  if (fr != 0) {
    w.Str("kernel-oracle: SKIP: cannot create test files in /tmp: ").Ret(fr).Ch('\n');
    return 77;
  }
  // Faults in touches come back to KernelTouch.
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_sigaction = OnFault;
  sa.sa_flags = SA_NODEFER | SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, nullptr);
  sigaction(SIGBUS, &sa, nullptr);

  // The window: an empty 1 GiB region nothing of ours will ever use.
  const int64_t wr = Sys(SYS_mmap, 0, kWindowSize, a::kProtNone,
                         a::kMapPrivate | a::kMapAnonymous | a::kMapNoreserve, ~uint64_t{0}, 0);
  if (wr < 0 || Sys(SYS_munmap, static_cast<uint64_t>(wr), kWindowSize) != 0) {
    w.Str("kernel-oracle: SKIP: cannot carve a 1 GiB window: ").Ret(wr).Ch('\n');
    return 77;
  }
  w_ = static_cast<uint64_t>(wr);

  g_harness = &h_;
  h_.InstallWatchdog();
  if (h_.SeedFromSelf(/*fork_child=*/true) != 0) return 1;
  if (opt_.mm) {
    const int64_t unlocated = h_.SeedPageTables();
    if (unlocated < 0 && unlocated > -4096) {
      w.Str("kernel-oracle: cannot seed the page tables: ").Ret(unlocated).Ch('\n');
      return 1;
    }
    if (opt_.verbose) w.Str("kernel-oracle: unlocated page tables at seeding: ").Dec(unlocated);
  }
  SetupZones();
  if (opt_.verbose) {
    w.Str("kernel-oracle: seed ").Udec(seed_).Str(" window ").Hex(w_).Str(" mmap_base ");
    w.Hex(model().params().mmap_base).Str(" brk ").Hex(model().brk()).Str(" vmas ");
    w.Udec(model().map_count()).Ch('\n');
    w.Flush();
  }
  return 0;
}

int Driver::SelfTest() {
  const int pr = Prepare();
  if (pr != 0) return pr;
  Writer w(1);
  Counters& c = counters();
  int failures = 0;
  auto expect = [&](bool ok, const char* what) {
    w.Str(ok ? "kernel-oracle selftest: ok:     " : "kernel-oracle selftest: FAILED: ").Str(what);
    w.Ch('\n');
    w.Flush();
    if (!ok) ++failures;
  };
  const uint64_t a0 = z_small_.start;
  const int rw = a::kProtRead | a::kProtWrite;
  const int anon_fixed = a::kMapPrivate | a::kMapAnonymous | a::kMapFixed;
  auto honest_mmap = [&](uint64_t addr, uint64_t len, const char* note) {
    h_.Begin("mmap", {addr, len, static_cast<uint64_t>(rw), static_cast<uint64_t>(anon_fixed)});
    h_.Note(note);
    const int64_t r = Sys(SYS_mmap, addr, len, rw, anon_fixed, ~uint64_t{0}, 0);
    MapArgs m;
    m.addr = addr;
    m.len = len;
    m.prot = rw;
    m.flags = anon_fixed;
    h_.Result(r, model().Map(m));
    return h_.End(true);
  };

  // 1. Honest steps match.
  expect(honest_mmap(a0, 4 * kPg, "selftest: honest"), "an honest mmap matches");
  uint64_t before = c.maps_mismatches;

  // 2. The model alone maps a page: a maps difference, then a resync.
  {
    h_.Begin("mmap",
             {a0 + 8 * kPg, kPg, static_cast<uint64_t>(rw), static_cast<uint64_t>(anon_fixed)});
    h_.Note("selftest: planted, model only");
    MapArgs m;
    m.addr = a0 + 8 * kPg;
    m.len = kPg;
    m.prot = rw;
    m.flags = anon_fixed;
    const Outcome o = model().Map(m);
    h_.Result(o.ret, o);  // the kernel "agrees" on the value; only the maps differ
    const bool ok = h_.End(false);
    expect(!ok && c.maps_mismatches == before + 1, "a mapping only the model has is reported");
    expect(model().FindVma(a0 + 8 * kPg) == nullptr ||
               model().FindVma(a0 + 8 * kPg)->start > a0 + 8 * kPg,
           "the resync removed it from the model");
  }
  expect(honest_mmap(a0 + 16 * kPg, kPg, "selftest: honest"), "steps after a resync match again");

  // 3. A wrong return value alone: reported, no resync needed.
  {
    const uint64_t resyncs = c.resyncs;
    const uint64_t results_bad = c.result_mismatches;
    h_.Begin("munmap", {a0 + 40 * kPg, kPg});
    h_.Note("selftest: planted, wrong errno");
    const int64_t r = Sys(SYS_munmap, a0 + 40 * kPg, kPg);
    Outcome o = model().Unmap(a0 + 40 * kPg, kPg);
    o.ret = -EINVAL;
    h_.Result(r, o);
    const bool ok = h_.End(false);
    expect(!ok && c.result_mismatches == results_bad + 1 && c.resyncs == resyncs,
           "a wrong errno is reported without a resync");
  }

  // 4. A flag the maps text does not show (VM_DONTCOPY): the VmFlags check.
  {
    before = c.flags_mismatches;
    const uint64_t b = a0 + 64 * kPg;
    honest_mmap(b, 2 * kPg, "selftest: honest");
    h_.Begin("madvise", {b, 2 * kPg, static_cast<uint64_t>(a::kMadvDontfork)});
    h_.Note("selftest: planted, kernel only (whole VMA: maps look the same)");
    const int64_t r = Sys(SYS_madvise, b, 2 * kPg, a::kMadvDontfork);
    Outcome o;
    o.ret = r;
    h_.Result(r, o);
    const bool ok = h_.End(true);
    expect(!ok && c.flags_mismatches == before + 1, "a VmFlags-only difference is reported");
  }

  // 5. An anon_vma the model does not know of (a write fault it was not told).
  {
    const uint64_t b = a0 + 96 * kPg;
    honest_mmap(b, 2 * kPg, "selftest: honest");
    before = c.flags_mismatches;
    h_.Begin("touch_write", {b});
    h_.Note("selftest: planted, kernel only");
    const int64_t r = KernelTouch(b, true);
    Outcome o;
    o.ret = r;
    h_.Result(r, o);
    const bool ok = h_.End(true);
    expect(!ok && c.flags_mismatches == before + 1,
           "a write fault the model missed (anonymous pages, no anon_vma) is reported");
  }

  // 6. Page tables and counters (when checked): a read fault the model was
  // not told of maps the zero page in a fresh 2 MiB slot, a PTE table only
  // the kernel has; then a wrong start_code/end_code (VmExe/VmLib).
  if (opt_.mm) {
    const uint64_t b = z_top_.start;  // a slot nothing else uses
    honest_mmap(b, 2 * kPg, "selftest: honest");
    before = c.pagetable_mismatches;
    const uint64_t calibrations = c.pt_calibrations;
    h_.Begin("touch_read", {b});
    h_.Note("selftest: planted, kernel only (a zero page: no anon_vma)");
    const int64_t r = KernelTouch(b, false);
    Outcome o;
    o.ret = r;
    h_.Result(r, o);
    const bool ok = h_.End(false);
    expect(!ok && c.pagetable_mismatches == before + 1 && c.pt_calibrations == calibrations + 1,
           "a page table the model missed is reported (VmPTE) and the tables reseeded");
    expect(model().WalkPage(b).mapped, "the reseeded model has the page");
    const uint64_t start_code = model().start_code();
    const uint64_t end_code = model().end_code();
    model().SetCodeRange(0, 0);
    before = c.counter_mismatches;
    expect(!honest_mmap(b + 4 * kPg, kPg, "selftest: planted, wrong start_code/end_code") &&
               c.counter_mismatches == before + 1,
           "a VmExe/VmLib difference is reported");
    model().SetCodeRange(start_code, end_code);
    expect(honest_mmap(b + 8 * kPg, kPg, "selftest: honest"), "the counters match again");
    h_.Begin("munmap", {b, 16 * kPg});
    const int64_t ur = Sys(SYS_munmap, b, 16 * kPg);
    h_.Result(ur, model().Unmap(b, 16 * kPg));
    expect(h_.End(false), "unmapping it matches");
  }

  // 7. Everything is back in step.
  expect(honest_mmap(a0 + 128 * kPg, kPg, "selftest: honest"), "the model is in step again");
  h_.Begin("munmap", {a0, 256 * kPg});
  const int64_t r = Sys(SYS_munmap, a0, 256 * kPg);
  h_.Result(r, model().Unmap(a0, 256 * kPg));
  expect(h_.End(true), "a final honest munmap matches");

  alarm(0);
  c.done = 1;
  unlink(path_a_);
  unlink(path_b_);
  w.Str("kernel-oracle selftest: ").Str(failures == 0 ? "PASS" : "FAIL").Ch('\n');
  return failures == 0 ? 0 : 1;
}

int Driver::Run() {
  const int pr = Prepare();
  if (pr != 0) return pr;
  const uint64_t n = opt_.ops;
  fork_at_ = opt_.fork ? n / 3 + rng_.Below(n / 3 + 1) : ~uint64_t{0};
  const bool can_sysctl = opt_.map_count && geteuid() == 0 && access(kMaxMapCountPath, W_OK) == 0;
  phase_at_[0] = can_sysctl ? n / 8 + rng_.Below(n / 4 + 1) : ~uint64_t{0};
  phase_at_[1] = can_sysctl && n >= 4000 ? n / 2 + rng_.Below(n / 3 + 1) : ~uint64_t{0};
  unlink_at_ = n / 4 + rng_.Below(n / 2 + 1);
  bool forked = false, phased0 = false, phased1 = false, unlinked = false;
  while (counters().ops < n) {
    const uint64_t i = counters().ops;
    if (!forked && i >= fork_at_) {
      forked = true;
      DoFork();
    } else if (!phased0 && i >= phase_at_[0]) {
      phased0 = true;
      MapCountPhase();
    } else if (!phased1 && i >= phase_at_[1]) {
      phased1 = true;
      MapCountPhase();
    } else if (!unlinked && i >= unlink_at_) {
      unlinked = true;
      OpUnlink();
    } else {
      Step();
    }
  }
  alarm(0);
  counters().done = 1;
  if (!unlinked_) unlink(path_a_);
  unlink(path_b_);
  return counters().mismatches == 0 ? 0 : 1;
}

// ---------------------------------------------------------------------------
// The parent.

volatile sig_atomic_t g_child = 0;
int64_t g_orig_max_map_count = -1;

void RestoreMaxMapCount() {
  if (g_orig_max_map_count <= 0) return;
  if (ReadSysctl(kMaxMapCountPath) != g_orig_max_map_count) {
    WriteSysctl(kMaxMapCountPath, g_orig_max_map_count);
  }
}

void OnTerminate(int sig) {
  if (g_child > 0) kill(-g_child, SIGKILL);
  RestoreMaxMapCount();
  signal(sig, SIG_DFL);
  raise(sig);
}

int KernelAtLeast(int want_major, int want_minor, char* release, size_t cap) {
  struct utsname u;
  if (uname(&u) != 0) return -1;
  size_t n = strlen(u.release);
  if (n >= cap) n = cap - 1;
  memcpy(release, u.release, n);
  release[n] = '\0';
  const char* p = u.release;
  int major_v = 0, minor_v = 0;
  while (*p >= '0' && *p <= '9') major_v = major_v * 10 + (*p++ - '0');
  if (*p == '.') ++p;
  while (*p >= '0' && *p <= '9') minor_v = minor_v * 10 + (*p++ - '0');
  return major_v > want_major || (major_v == want_major && minor_v >= want_minor);
}

void AddCounters(Counters* total, const Counters& c) {
  const uint64_t* src = reinterpret_cast<const uint64_t*>(&c);
  uint64_t* dst = reinterpret_cast<uint64_t*>(total);
  const uint64_t max_vmas = total->max_vmas > c.max_vmas ? total->max_vmas : c.max_vmas;
  for (size_t i = 0; i < sizeof(Counters) / sizeof(uint64_t); ++i) dst[i] += src[i];
  total->max_vmas = max_vmas;
}

alignas(Harness) unsigned char g_harness_storage[sizeof(Harness)];
alignas(Driver) unsigned char g_driver_storage[sizeof(Driver)];

int Main(int argc, char** argv) {
  Options opt;
  Writer out(1);
  for (int i = 1; i < argc; ++i) {
    const char* v = nullptr;
    const char* arg = argv[i];
    bool ok = true;
    if (Flag(arg, "--seed", &v)) {
      ok = v != nullptr && ParseU64(v, &opt.seed);
      opt.have_seed = true;
    } else if (Flag(arg, "--seeds", &v)) {
      ok = v != nullptr && ParseU64(v, &opt.seeds);
    } else if (Flag(arg, "--seed-base", &v)) {
      if (v != nullptr && strcmp(v, "time") == 0) {
        opt.seed_base = static_cast<uint64_t>(time(nullptr));
      } else {
        ok = v != nullptr && ParseU64(v, &opt.seed_base);
      }
    } else if (Flag(arg, "--ops", &v)) {
      ok = v != nullptr && ParseU64(v, &opt.ops);
    } else if (Flag(arg, "--verbose", &v)) {
      opt.verbose = true;
    } else if (Flag(arg, "--long", &v)) {
      opt.seeds = 10;
      opt.ops = 100000;
    } else if (Flag(arg, "--max-reports", &v)) {
      ok = v != nullptr && ParseU64(v, &opt.max_reports);
    } else if (Flag(arg, "--flags-every", &v)) {
      ok = v != nullptr && ParseU64(v, &opt.flags_every);
    } else if (Flag(arg, "--profile", &v)) {
      opt.profile = v;
      ok = v != nullptr && FindKernelProfile(v) != nullptr;
    } else if (Flag(arg, "--no-fork", &v)) {
      opt.fork = false;
    } else if (Flag(arg, "--no-map-count", &v)) {
      opt.map_count = false;
    } else if (Flag(arg, "--no-mm", &v)) {
      opt.mm = false;
    } else if (Flag(arg, "--presence", &v)) {
      opt.presence = true;
    } else if (Flag(arg, "--selftest", &v)) {
      opt.selftest = true;
    } else if (Flag(arg, "--watchdog", &v)) {
      ok = v != nullptr && ParseU64(v, &opt.watchdog);
    } else if (Flag(arg, "--skip", &v)) {
      ok = v != nullptr && ParseSkip(v, &opt.skip);
    } else if (Flag(arg, "--help", &v)) {
      out.Str(
          "usage: kernel_oracle [--seed=N | --seeds=K [--seed-base=N|time]] [--ops=N]\n"
          "       [--long] [--verbose] [--max-reports=N] [--flags-every=N]\n"
          "       [--profile=NAME] [--no-fork] [--no-map-count] [--watchdog=SEC]\n"
          "       [--no-mm]  (no VmPTE/status-counter checks) [--presence] (and pagemap's)\n"
          "       [--selftest]  (plants differences; checks the harness reports them)\n"
          "       [--skip=KIND,...]  KIND: anon shmem file munmap mprotect pkey mremap\n"
          "                          madvise mlock mlockall mseal brk touch invalid thp\n");
      return 0;
    } else {
      ok = false;
    }
    if (!ok) {
      out.Str("kernel-oracle: bad argument: ").Str(arg).Str(" (try --help)\n");
      return 2;
    }
  }
  char release[128];
  if (KernelAtLeast(6, 11, release, sizeof(release)) != 1) {
    out.Str("kernel-oracle: SKIP: needs Linux >= 6.11 (running ").Str(release).Str(")\n");
    return 77;
  }
  if (access("/proc/self/smaps", R_OK) != 0) {
    out.Str("kernel-oracle: SKIP: /proc/self/smaps is not readable\n");
    return 77;
  }
  // mseal (6.10+) must exist: a zero-length seal returns 0.
  if (syscall(462, 0, 0, 0) != 0) {
    out.Str("kernel-oracle: SKIP: mseal is not available\n");
    return 77;
  }
  const bool root = geteuid() == 0;
  if (!root && opt.map_count) {
    out.Str("kernel-oracle: note: not root, so no vm.max_map_count phases\n");
  }
  g_orig_max_map_count = ReadSysctl(kMaxMapCountPath);
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = OnTerminate;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);

  // Made before any child: shared counters, the model's arena (written once so
  // that it has an anon_vma the children inherit), the stack.
  void* shared = mmap(nullptr, kPg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  void* arena = mmap(nullptr, kArenaSize, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (shared == MAP_FAILED || arena == MAP_FAILED) {
    out.Str("kernel-oracle: cannot map the arena\n");
    return 2;
  }
  static_cast<volatile char*>(arena)[0] = 1;
  Harness::PrepareProcess(256 * 1024);
  // The bss gets its anon_vma here, before fork.
  static_cast<volatile unsigned char*>(g_harness_storage)[0] = 0;
  Counters* counters = new (shared) Counters();
  Counters total;

  const uint64_t nseeds = opt.have_seed || opt.selftest ? 1 : opt.seeds;
  bool crashed = false;
  const double t0 = Now();
  out.Str("kernel-oracle: Linux ").Str(release).Str(", profile ");
  out.Str(opt.profile != nullptr ? opt.profile : DefaultKernelProfile().name);
  out.Str(", ").Udec(nseeds).Str(" seed(s) x ").Udec(opt.ops).Str(" steps\n");
  out.Flush();
  for (uint64_t k = 0; k < nseeds; ++k) {
    const uint64_t seed = opt.have_seed ? opt.seed : opt.seed_base + k;
    *counters = Counters();
    const double ts = Now();
    const pid_t pid = fork();
    if (pid < 0) {
      out.Str("kernel-oracle: fork failed\n");
      return 2;
    }
    if (pid == 0) {
      setpgid(0, 0);
      Harness::Options ho;
      ho.profile = opt.profile != nullptr ? FindKernelProfile(opt.profile) : nullptr;
      ho.seed = seed;
      ho.verbose = opt.verbose;
      // The report budget is for the whole run, not per seed.
      ho.max_reports = opt.max_reports > total.reports ? opt.max_reports - total.reports : 0;
      ho.flags_every = opt.flags_every;
      ho.out_fd = 1;
      ho.counters = counters;
      ho.watchdog_sec = static_cast<unsigned>(opt.watchdog);
      ho.check_mm = opt.mm;
      ho.check_presence = opt.mm && opt.presence;
      Harness* h = new (g_harness_storage) Harness(arena, kArenaSize, ho);
      Driver* d = new (g_driver_storage) Driver(h, opt, seed);
      _exit(opt.selftest ? d->SelfTest() : d->Run());
    }
    setpgid(pid, pid);
    g_child = pid;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    g_child = 0;
    kill(-pid, SIGKILL);  // anything left in the child's group
    RestoreMaxMapCount();
    // The child's files, in case it died before removing them.
    for (const char* suffix : {"-a", "-b"}) {
      char path[64];
      BuildPath(path, sizeof(path), "/tmp/", "vmashadow-oracle-", static_cast<uint64_t>(pid),
                suffix);
      unlink(path);
    }
    const Counters c = *counters;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77) return 77;  // said why
    if (opt.selftest) {
      RestoreMaxMapCount();
      return WIFEXITED(status) && WEXITSTATUS(status) == 0 && c.done ? 0 : 1;
    }
    if (!WIFEXITED(status) || (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 1) || !c.done) {
      crashed = true;
      out.Str("kernel-oracle: seed ").Udec(seed).Str(": the child ");
      if (WIFSIGNALED(status)) {
        out.Str("died with signal ").Dec(WTERMSIG(status));
      } else {
        out.Str("exited with status ").Dec(WEXITSTATUS(status));
      }
      out.Str(" after ").Udec(c.ops).Str(" steps\n");
    }
    Harness::PrintSummary(out, "kernel-oracle", seed, c);
    out.Str("  (").Udec(static_cast<uint64_t>((Now() - ts) * 1000)).Str(" ms)\n");
    out.Flush();
    AddCounters(&total, c);
  }
  RestoreMaxMapCount();
  Harness::PrintSummary(out, "kernel-oracle total", ~uint64_t{0}, total);
  out.Str("  (").Udec(static_cast<uint64_t>((Now() - t0) * 1000)).Str(" ms)\n");
  const bool pass = total.mismatches == 0 && !crashed;
  out.Str(pass ? "kernel-oracle: PASS\n" : "kernel-oracle: FAIL\n");
  return pass ? 0 : 1;
}

}  // namespace
}  // namespace vmashadow::oracle

int main(int argc, char** argv) { return vmashadow::oracle::Main(argc, argv); }
