// oracle.h — a small harness that checks the model against the running kernel
// from inside the process being modelled.
//
// The harness seeds an AddressSpace from /proc/self/{maps,smaps,stat} and the
// sysctls, records each real call next to the model's prediction, and after
// every step compares the model's rendering of the whole address space with
// /proc/self/maps (and, when asked, each VMA's smaps VmFlags with the model's
// flags). On a difference it prints the seed, the recent calls and the lines
// that differ, then resynchronises the model from the kernel so the run can go
// on. It is used by the random kernel-oracle test (oracle_main.cc) and is meant
// for scenario tests too.
//
// The process under test must not change its own address space behind the
// model's back, so nothing here allocates after construction: all buffers are
// static, output goes through write(2), /proc files are read with one
// open/read/close. Single-threaded; one Harness per process; up to 8192 VMAs.
//
// Use (see oracle_main.cc):
//   parent:  mmap the model's arena and write to it; Harness::PrepareProcess();
//            fork (the child is modelled; the parent can restore sysctls and
//            read Counters kept in MAP_SHARED memory afterwards).
//   child:   Harness h(arena, size, options); h.SeedFromSelf(true);
//            per step: h.Begin("mmap", {args}); r = real call;
//            o = h.model().Map(...); h.Result(r, o, kind); h.End();
#ifndef VMASHADOW_TESTS_KERNEL_ORACLE_H_
#define VMASHADOW_TESTS_KERNEL_ORACLE_H_

#include <cstddef>
#include <cstdint>
#include <initializer_list>

#include "core/abi/kernel_profile.h"
#include "core/mm/address_space.h"
#include "core/mm/arena.h"
#include "core/mm/mm_types.h"
#include "core/procfs/maps_text.h"

namespace vmashadow::oracle {

// ---------------------------------------------------------------------------
// Allocation-free output.

// Buffers text and writes it to an fd with write(2). Safe after fork and in a
// process whose address space is being watched.
class Writer {
 public:
  explicit Writer(int fd) : fd_(fd) {}
  ~Writer() { Flush(); }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  Writer& Str(const char* s);
  Writer& Mem(const char* s, size_t n);
  Writer& Ch(char c);
  Writer& Dec(int64_t v);
  Writer& Udec(uint64_t v);
  // "0x" and lowercase hex digits.
  Writer& Hex(uint64_t v);
  // Right-aligned in `width` columns.
  Writer& DecW(int64_t v, int width);
  // A call result: "-ENOMEM" for -errno values, else hex (addresses) or
  // decimal (small values).
  Writer& Ret(int64_t v);
  // Writes `n` bytes of `s` up to (not including) the first '\n'.
  Writer& Line(const char* s, size_t n);
  void Flush();

 private:
  int fd_;
  size_t len_ = 0;
  char buf_[8192];
};

// "ENOMEM" for ENOMEM; "E123" for values without a name.
const char* ErrnoName(int err);

// ---------------------------------------------------------------------------
// Reading and writing small kernel files without allocation.

// Reads the whole file at path into buf and NUL-terminates it. Returns the
// length, -E2BIG when it does not fit in cap-1 bytes, or -errno.
int64_t ReadWholeFile(const char* path, char* buf, size_t cap);
// The first decimal number in a file (a sysctl), or -errno.
int64_t ReadSysctl(const char* path);
// Writes a decimal value to a sysctl file. 0 or -errno.
int WriteSysctl(const char* path, int64_t value);

// ---------------------------------------------------------------------------
// Counters. They may live in memory shared with a parent process so that the
// parent can print totals after the child exits or crashes.

struct Counters {
  uint64_t ops = 0;            // calls checked (syscalls and touches)
  uint64_t maps_compares = 0;  // full /proc/self/maps comparisons
  uint64_t flag_compares = 0;  // full smaps VmFlags comparisons
  uint64_t placements = 0;     // non-fixed placements the model predicted
  uint64_t placements_hit = 0;
  uint64_t errnos = 0;  // calls where kernel or model returned -errno
  uint64_t errnos_hit = 0;
  uint64_t results = 0;  // all return values compared
  uint64_t results_hit = 0;
  uint64_t touches = 0;       // page accesses
  uint64_t touch_faults = 0;  // of which the kernel raised SIGSEGV
  uint64_t mismatches = 0;    // steps with any difference (each counted once)
  uint64_t result_mismatches = 0;
  uint64_t maps_mismatches = 0;
  uint64_t flags_mismatches = 0;
  uint64_t validate_failures = 0;
  uint64_t reports = 0;  // detailed reports printed
  uint64_t resyncs = 0;
  uint64_t forks = 0;
  uint64_t map_count_phases = 0;
  uint64_t max_vmas = 0;
  uint64_t ns_kernel_maps = 0;  // time reading /proc/self/maps
  uint64_t ns_smaps = 0;        // time reading /proc/self/smaps
  uint64_t ns_render = 0;       // time rendering and validating the model
  // Page tables and mm counters (CheckMm, CheckVmFlagsLines).
  uint64_t pagetable_compares = 0;     // VmPTE comparisons
  uint64_t counter_compares = 0;       // VmSize/VmLck/VmData/VmStk/VmExe/VmLib comparisons
  uint64_t presence_compares = 0;      // pagemap comparisons outside the harness's memory
  uint64_t vmflags_line_compares = 0;  // smaps VmFlags lines compared byte for byte
  uint64_t pagetable_mismatches = 0;   // (each also counted in mismatches)
  uint64_t counter_mismatches = 0;
  uint64_t presence_mismatches = 0;
  uint64_t vmflags_line_mismatches = 0;
  uint64_t pt_calibrations = 0;  // page tables reseeded from pagemap + VmPTE
  uint64_t file_thp_learnt = 0;  // PMD-mapped file folios learnt (page cache state)
  uint64_t thp_steps = 0;        // mm checks with a THP (huge PMD) in the model
  uint64_t ns_mm = 0;            // time reading status/pagemap and learning
  uint64_t done = 0;             // the run reached its end
};

// ---------------------------------------------------------------------------
// The harness.

// What a call's successful return value means for the counters.
enum class RetKind {
  kValue,      // 0, a length, the same address: compared exactly
  kPlacement,  // an address the kernel chose: counted as a placement
  kRandom,     // an address the kernel chose at random (MAP_32BIT): handed
               // to the model, not counted as predicted
};

// One logged step.
struct OpRecord {
  uint64_t index = 0;
  const char* name = "";
  int nargs = 0;
  uint64_t args[6] = {};
  int64_t kernel_ret = 0;
  int64_t model_ret = 0;
  bool has_result = false;
  const char* note = nullptr;
};

class Harness {
 public:
  struct Options {
    const KernelProfile* profile = nullptr;  // nullptr: DefaultKernelProfile()
    uint64_t seed = 0;                       // printed in reports
    bool verbose = false;                    // log every step
    uint64_t max_reports = 20;               // detailed reports (then counts only)
    uint64_t flags_every = 0;                // VmFlags check every N steps (0: on request)
    int out_fd = 1;
    Counters* counters = nullptr;  // required; may be shared memory
    unsigned watchdog_sec = 60;    // a step taking longer is a hang (0: off)
    // End() also runs CheckMm() (needs SeedPageTables() after seeding).
    bool check_mm = false;
    bool check_presence = false;  // ... with the presence comparison
  };

  // The model lives in [arena, arena+arena_size), which the caller mapped
  // before seeding (so the arena is part of what the model describes).
  Harness(void* arena, size_t arena_size, const Options& options);
  Harness(const Harness&) = delete;
  Harness& operator=(const Harness&) = delete;

  AddressSpace& model() { return *model_; }
  const AddressSpace& model() const { return *model_; }
  Counters& counters() { return *options_.counters; }
  const Options& options() const { return options_; }
  void set_seed(uint64_t seed) { options_.seed = seed; }

  // --- seeding ---

  // Call in the parent before forking the process to be modelled: faults in
  // `stack_bytes` of stack below the caller and the harness's static buffers
  // (so they have an anon_vma the child inherits and the child's steps never
  // grow the stack).
  static void PrepareProcess(size_t stack_bytes);

  // Reads MmParams from the running system: sysctls, rlimits, capabilities,
  // /proc/self/stat, and mmap_base inferred from maps text (docs/placement.md#inferring-mmap_base).
  static int ReadMmParams(const char* maps, size_t maps_len, MmParams* out);
  // Seeds the model from /proc/self: every VMA with maps name, smaps VmFlags,
  // and anon state (a fresh anon_vma for each VMA with anonymous pages,
  // fork_child as given), brk/start_stack from /proc/self/stat, the gate VMA.
  // Also records the seeded ranges as protected (see Protected()).
  // Returns 0, or -errno after printing why.
  int SeedFromSelf(bool fork_child);
  // The test maps this file description; Resync() recognises its VMAs by
  // (dev, inode). `d` must stay valid while the harness lives.
  void RegisterFile(const FileDesc* d);
  // The test lowered or restored vm.max_map_count.
  void SetMaxMapCount(uint64_t value);
  // Tells Resync() that mlockall(MCL_FUTURE[|MCL_ONFAULT]) is in force
  // (flags 0: not), since reseeding cannot read mm->def_flags.
  void SetLockAllFuture(int mcl_flags) { lockall_future_ = mcl_flags; }
  // The process forked and this is the child: VMAs with an anon_vma that
  // Resync() cannot identify are fork children.
  void NoteForkChild() { all_fork_children_ = true; }
  // A MAP_SHARED|MAP_ANONYMOUS mapping was created at addr: the next
  // comparison learns its shmem inode from the kernel (SetShmemInode).
  void ExpectNewShmem(uint64_t addr);

  // Seeded ranges (the harness's own memory, plus the stack guard area):
  // tests must not unmap/protect/advise/remap/lock/seal them.
  bool Protected(uint64_t start, uint64_t end) const;

  // --- one step ---

  // Starts a step: the call and its arguments, for the op log.
  void Begin(const char* name, std::initializer_list<uint64_t> args);
  // A note shown with the step in logs (must be a static string).
  void Note(const char* note) { cur_.note = note; }
  // Compares the kernel's result (value or -errno) with the model's outcome.
  void Result(int64_t kernel_ret, const Outcome& model, RetKind kind = RetKind::kValue);
  // Ends the step: compares the whole maps text (and VmFlags when due or when
  // check_flags), runs Validate(), reports any difference with the step's
  // result, and resynchronises the model when its state differs. Returns true
  // when everything matched.
  bool End(bool check_flags = false);

  // --- page tables and mm counters ---
  //
  // Presence is learnt from pagemap (PAGEMAP_SCAN) only inside the protected
  // ranges (the harness's own memory, the stack area: activity the test does
  // not script); everything else the model must predict itself, so VmPTE
  // checks its allocation and free rules.

  // Seeds the model's page tables: learns every mapped run in the protected
  // ranges (elsewhere too: nothing else exists yet) and calibrates with
  // VmPTE (AddressSpace::CalibratePageTables). Also sets start_code/end_code.
  // Returns the unlocated table count, or -errno.
  int64_t SeedPageTables();
  // After a step: learns presence in the protected ranges, then compares
  // VmSize, VmLck, VmData, VmStk, VmExe, VmLib and VmPTE of
  // /proc/self/status with the model's PredictStatus(), and, when
  // `presence`, the mapped pages outside the protected ranges with pagemap.
  // A difference is reported (step log, both values, the model's tables),
  // counted as a mismatch, and the page tables are reseeded. True when all
  // matched.
  bool CheckMm(bool presence);
  // Every VMA's smaps "VmFlags:" line against RenderVmFlagsLine(), byte for
  // byte (the maps must already match). True when all matched.
  bool CheckVmFlagsLines();
  // After ForkChild() in the child: the unlocated tables of the parent may
  // or may not have been copied, so when there were any the child's baseline
  // is recalibrated from its VmPTE (counted in pt_calibrations).
  void AfterForkChild(uint64_t parent_unlocated);
  // The last values CheckMm() read from /proc/self/status (kB).
  const StatusCounters& kernel_status() const { return kstatus_; }
  // Reads VmSize...VmPTE from /proc/self/status. 0 or -errno.
  static int ReadStatus(StatusCounters* out);

  // The step in progress (or the last one).
  const OpRecord& current() const { return cur_; }
  // The kernel's result recorded by the current step's Result().
  int64_t last_kernel_ret() const { return cur_.kernel_ret; }

  // --- the kernel's view (valid after End() or ReadKernelMaps()) ---

  // Reads /proc/self/maps into the harness's buffer. Returns its length.
  int64_t ReadKernelMaps();
  const char* kernel_maps() const { return kmaps_; }
  size_t kernel_maps_len() const { return kmaps_len_; }
  // The kernel's maps line containing addr (from the last read).
  bool KernelLineAt(uint64_t addr, MapsLine* out) const;

  // Compares the model with the kernel now (maps text; VmFlags when
  // check_flags). Reports and resynchronises on a difference. Used by End().
  bool Compare(bool check_flags, const char* context);
  // Replaces the model with the kernel's current state, keeping what the
  // model knew that the kernel does not show (anon_vma identities, file
  // descriptions, anonymous pgoffs) where the ranges still line up.
  void Resync(const char* why);

  // Installs the SIGALRM watchdog (armed by Begin()): a step that does not
  // finish in time (a loop in the model, say) is reported with the step log
  // and the code address, then the process exits with status 3.
  void InstallWatchdog();
  // Writes "0xPC (FILE+0xOFFSET)" for a code address, so that
  // `addr2line -f -C -e FILE 0xOFFSET` names the function. Signal-safe.
  void PrintCodeAddress(Writer& w, uint64_t pc);

  // Prints a one-line summary of the counters.
  static void PrintSummary(Writer& w, const char* label, uint64_t seed, const Counters& c);
  // Prints the recent steps (oldest first).
  void PrintOpLog(Writer& w, int max_entries) const;
  // Prints one step: "#index name(args) = result [model ...] (note)".
  static void PrintOp(Writer& w, const OpRecord& r, const char* prefix);

 private:
  static constexpr int kLogSize = 32;
  static constexpr int kMaxProtected = 4096;
  static constexpr int kMaxFiles = 256;
  static constexpr int kMaxShmemPending = 64;

  int SeedFromText(const char* maps, size_t maps_len, const char* smaps, size_t smaps_len,
                   bool fork_child, bool use_snapshot);
  void Snapshot(bool pre_step);
  bool CompareFlags();
  void ApplyFixups();
  void ReportHeader(Writer& w, const char* what);
  void ReportMapsDiff(Writer& w) const;
  bool ReportAllowed();
  // Runs PAGEMAP_SCAN over [start, end): calls back with each run of mapped
  // (present/swapped, huge) or guard pages. -errno on failure.
  template <typename F>
  int ScanPagemap(uint64_t start, uint64_t end, F&& f);
  void LearnProtected();
  void ReportMm(const StatusCounters& model, bool counters_ok, bool presence_ok);
  bool ComparePresence();

  Options options_;
  Arena* arena_ = nullptr;
  AddressSpace* model_ = nullptr;
  MmParams params_;

  OpRecord cur_;
  OpRecord log_[kLogSize];
  uint64_t log_count_ = 0;
  uint64_t step_ = 0;
  bool result_bad_ = false;
  const char* result_what_ = nullptr;

  char* kmaps_ = nullptr;
  size_t kmaps_len_ = 0;
  char* mmaps_ = nullptr;
  size_t mmaps_len_ = 0;

  uint64_t protected_[kMaxProtected][2] = {};
  int nprotected_ = 0;
  const FileDesc* files_[kMaxFiles] = {};
  int nfiles_ = 0;
  uint64_t shmem_pending_[kMaxShmemPending] = {};
  int nshmem_pending_ = 0;
  int lockall_future_ = 0;
  bool all_fork_children_ = false;
  bool seeding_fork_child_ = false;
  uint64_t next_anon_id_ = 1;
  uint64_t next_file_id_ = uint64_t{1} << 60;
  uint64_t start_stack_ = 0;
  uint64_t last_resync_step_ = 0;
  uint64_t last_flags_step_ = 0;
  bool pre_snap_valid_ = false;  // the pre-step snapshot is of the current model
  StatusCounters kstatus_;
  bool scan_guard_ = true;  // PAGEMAP_SCAN knows PAGE_IS_GUARD (6.15+)
  uint64_t last_mm_step_ = 0;
  bool calibrate_next_ = false;
};

}  // namespace vmashadow::oracle

#endif  // VMASHADOW_TESTS_KERNEL_ORACLE_H_
