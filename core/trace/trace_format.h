// trace_format.h — the vmashadow trace format (version 1): what
// `vmashadow run --trace=FILE` records and `vmashadow replay` feeds back into
// the model. This comment is the format's specification; README "Traces"
// points here.
//
// A trace holds everything the preload did to its model, in the order it did
// it, so that replay rebuilds the preload's model exactly: the calls with
// their arguments and results, the facts the preload learnt from the kernel
// between calls (anonymous pages found by PAGEMAP_SCAN, shmem inodes, the main
// stack's growth), the snapshots it reseeded from, and the outcome of every
// check, so that replay can check its model against the kernel too.
//
// File layout. All integers are little-endian.
//
//   prefix   16 bytes: "VMASHTRC", u32 version (1), u32 zero
//   records  one after another, until the end of the file:
//              u8      kind (TraceRecordKind)
//              varint  n, the payload length
//              n bytes payload (fields below, in order)
//              u32     CRC-32C of the kind byte, the length bytes and the payload
//
// A varint is unsigned LEB128 (at most 10 bytes); an svarint is a zigzag
// varint; a string is a varint length and that many bytes (no NUL). The
// first record is the HEADER. Writers append whole records with one
// write(2) each (or one per event), so a file cut short by a crash ends on a
// record boundary, or in its last record, which readers report as truncated.
//
// Records (payload fields):
//
//   HEADER (1)      u8 origin (TraceOrigin); varint pid, parent_pid,
//                   exec_index; string kernel_release, profile (the kernel
//                   profile the preload's model used), check (the
//                   --check mode), argv (NUL-separated); varint arena_size
//                   (bytes of the model's arena); MmParams: varint task_size,
//                   mmap_min_addr, dac_mmap_min_addr, max_map_count,
//                   stack_guard_gap, mmap_base, mmap_legacy_base, u8 topdown,
//                   cap_sys_rawio, cap_ipc_lock, varint rlimit_memlock,
//                   rlimit_data, rlimit_as, rlimit_stack, svarint max_pkey,
//                   varint start_data, end_data, svarint overcommit_memory,
//                   u8 paging_levels, nx, thp (ThpMode), thp_use_zero_page,
//                   thp_disabled;
//                   varint realtime_ns, monotonic_ns (clocks at the start);
//                   u8 max_frames; varint preload_text_lo, preload_text_hi
//                   (libvmashadow.so's executable range, whose frames are
//                   skipped); for origin kForkChild: string parent_trace
//                   (path of the parent's trace), varint parent_fork_point
//                   (the ordinal of the parent's FORK_POINT record this
//                   child was forked at).
//   SEED (2)        u8 reason (TraceSeedReason); varint maps_len, smaps_len;
//                   maps_len bytes of /proc/self/maps and smaps_len bytes of
//                   /proc/self/smaps, as read. Replay: Clear() and
//                   SeedFromMaps(maps, smaps). The LEARN_FAULTED records with
//                   context kSeed and one SEED_STATE follow.
//   SEED_STATE (3)  varint start_brk, brk, start_stack; u8 lockall (the
//                   MCL_* flags of an mlockall(MCL_FUTURE) in force, 0 when
//                   none). Replay: SetBrkState, SetStartStack, LockAll(lockall)
//                   when not 0.
//   LEARN_FAULTED (4) varint start; u8 context (TraceLearnContext). Replay:
//                   LearnFaulted(start) (the VMA starting there holds
//                   anonymous pages the kernel reported).
//   EVENT (5)       u8 call (TraceCall); varint flags (kEvent* bits); varint
//                   args[6] (the raw syscall arguments); svarint kernel_ret;
//                   svarint model_ret when kEventModelRetDiffers (else it
//                   equals kernel_ret); varint tid; svarint time delta (ns of
//                   CLOCK_MONOTONIC since the previous EVENT, FORK_POINT or
//                   IMAGE_END, or since HEADER.monotonic_ns); varint
//                   duration_ns when kEventHasDuration; u8 nframes (at most
//                   kTraceMaxFrames) and nframes svarint deltas (frame[i] -
//                   frame[i-1], frame[-1] = 0): return addresses from the
//                   caller outwards, found through frame pointers (frame 0 is
//                   the interrupted instruction itself when kEventFrame0IsPc);
//                   when kEventHasFile: the FileDesc the model was given
//                   (u64 id, varint inode, dev_major, dev_minor, u8 kind,
//                   u8 bits (kFile*), string path); when kEventHasKernelAddr:
//                   varint kernel_addr (MapArgs::kernel_addr, MAP_32BIT);
//                   when kEventHasShmem: varint addr, inode, dev_major,
//                   dev_minor (SetShmemInode after the call). Replay: the
//                   model call the preload made for `call` with these
//                   arguments (none for kEventUnmodelled), then SetShmemInode;
//                   its result must equal model_ret and kernel_ret.
//   RECONCILE (6)   varint addr, observed_start. Replay:
//                   ReconcileGrowsdown(addr, observed_start).
//   CHECK (7)       u8 kind (TraceCheckKind), u8 equal; range: varint
//                   first_addr, lines; full: varint kernel_len, model_len;
//                   u64 kernel_hash, model_hash (TraceHashLine over the lines
//                   compared). A range check compares `lines` maps lines,
//                   starting with the VMA covering or following first_addr and
//                   continuing at each line's end (PROCMAP_QUERY's
//                   COVERING_OR_NEXT walk); a line with no VMA hashes as empty.
//                   A full check hashes the whole maps text. Replay renders its
//                   model the same way and compares with both hashes.
//   NOTE (8)        u8 kind (TraceNoteKind); string what, model, kernel;
//                   varint lo, hi. A divergence the preload recorded (its two
//                   differing lines) or an unexplained change (the range).
//   FORK_POINT (9)  varint ordinal (1, 2, ... in this trace), tid; svarint
//                   time delta. The model as it is here is what a fork child
//                   inherits (its trace starts with origin kForkChild).
//   IMAGE_END (10)  string reason ("exit", "exit_group", "execve"); svarint
//                   time delta. An execve that fails continues the trace.
//
// Per-process files: the root process writes FILE, any other process
// FILE.<pid>; a later image of the same process (after execve) adds
// ".exec<k>" (FILE.exec1, FILE.<pid>.exec2, ...). A fork child's trace does
// not repeat the parent's: replay first replays the parent's trace up to the
// FORK_POINT named in the child's HEADER, then makes the model the child's
// (AddressSpace::ForkChild).
//
// Depends on abi/call.h and mm/mm_types.h only; preload-safe (plain data and constants).
#ifndef VMASHADOW_CORE_TRACE_TRACE_FORMAT_H_
#define VMASHADOW_CORE_TRACE_TRACE_FORMAT_H_

#include <cstddef>
#include <cstdint>

#include "core/abi/call.h"
#include "core/mm/mm_types.h"

namespace vmashadow {

inline constexpr char kTraceMagic[8] = {'V', 'M', 'A', 'S', 'H', 'T', 'R', 'C'};
inline constexpr uint32_t kTraceVersion = 1;
inline constexpr size_t kTracePrefixSize = 16;
inline constexpr int kTraceMaxFrames = 16;
// No record may be longer (a length above it is corruption, not a record).
inline constexpr uint64_t kTraceMaxPayload = uint64_t{1} << 30;

enum class TraceRecordKind : uint8_t {
  kHeader = 1,
  kSeed = 2,
  kSeedState = 3,
  kLearnFaulted = 4,
  kEvent = 5,
  kReconcile = 6,
  kCheck = 7,
  kNote = 8,
  kForkPoint = 9,
  kImageEnd = 10,
};
inline constexpr uint8_t kTraceMaxKind = 10;

// The calls, as numbered in core/abi/call.h (the preload counts them in
// that order too).
using TraceCall = Call;

// The syscall name of a call ("mmap", ...); "?" when out of range.
inline const char* TraceCallName(TraceCall call) { return CallName(call); }

enum class TraceOrigin : uint8_t {
  kRoot = 0,       // the process vmashadow run started (its first image)
  kExecImage = 1,  // a process image after execve, or a process not forked from a traced one
  kForkChild = 2,  // a fork child: its model starts as the parent's at a FORK_POINT
};

enum class TraceSeedReason : uint8_t {
  kInit = 0,          // the preload's start-up
  kBeforeEvent = 1,   // a resync at the start of an event (the model was marked dirty)
  kDuringEvent = 2,   // a resync inside an event's check (after a divergence)
  kOutsideEvent = 3,  // a resync outside any event (at exit)
};

enum class TraceLearnContext : uint8_t {
  kSeed = 0,   // from smaps' Anonymous: while seeding
  kEvent = 1,  // PAGEMAP_SCAN before the event that follows
  kFork = 2,   // PAGEMAP_SCAN before a fork
};

enum class TraceCheckKind : uint8_t { kRange = 0, kFull = 1 };
enum class TraceNoteKind : uint8_t { kDivergence = 0, kUnexplained = 1 };

// EVENT flags.
inline constexpr uint32_t kEventTrapped = 1 << 0;      // seen through Syscall User Dispatch
inline constexpr uint32_t kEventPlacementOk = 1 << 1;  // the result may count as a placement
inline constexpr uint32_t kEventUnmodelled = 1 << 2;   // not applied to the model (resync follows)
inline constexpr uint32_t kEventModelRetDiffers = 1 << 3;
inline constexpr uint32_t kEventHasFile = 1 << 4;
inline constexpr uint32_t kEventHasKernelAddr = 1 << 5;
inline constexpr uint32_t kEventHasShmem = 1 << 6;
inline constexpr uint32_t kEventHasDuration = 1 << 7;
inline constexpr uint32_t kEventFrame0IsPc = 1 << 8;
inline constexpr uint32_t kEventKnownFlags = (1 << 9) - 1;

// FileDesc bits of an EVENT's file.
inline constexpr uint8_t kFileDeleted = 1 << 0;
inline constexpr uint8_t kFileHasClose = 1 << 1;
inline constexpr uint8_t kFileReadable = 1 << 2;
inline constexpr uint8_t kFileWritable = 1 << 3;
inline constexpr uint8_t kFileAppend = 1 << 4;
inline constexpr uint8_t kFileNoexecMount = 1 << 5;

// Bytes inside the decoded input (not NUL-terminated).
struct TraceBytes {
  const char* data = nullptr;
  size_t len = 0;
};

struct TraceHeader {
  TraceOrigin origin = TraceOrigin::kRoot;
  uint64_t pid = 0;
  uint64_t parent_pid = 0;
  uint64_t exec_index = 0;
  TraceBytes kernel_release;
  TraceBytes profile;
  TraceBytes check;
  TraceBytes argv;  // NUL-separated
  uint64_t arena_size = 0;
  MmParams params;
  uint64_t realtime_ns = 0;
  uint64_t monotonic_ns = 0;
  uint8_t max_frames = 0;
  uint64_t preload_text_lo = 0;
  uint64_t preload_text_hi = 0;
  TraceBytes parent_trace;  // kForkChild only
  uint64_t parent_fork_point = 0;
};

struct TraceSeed {
  TraceSeedReason reason = TraceSeedReason::kInit;
  TraceBytes maps;
  TraceBytes smaps;
};

struct TraceSeedState {
  uint64_t start_brk = 0;
  uint64_t brk = 0;
  uint64_t start_stack = 0;
  uint8_t lockall = 0;
};

struct TraceLearn {
  uint64_t start = 0;
  TraceLearnContext context = TraceLearnContext::kEvent;
};

// The FileDesc of an mmap, with its path as bytes.
struct TraceFile {
  uint64_t id = 0;
  uint64_t inode = 0;
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;
  FileKind kind = FileKind::kRegular;
  uint8_t bits = 0;  // kFile*
  TraceBytes path;
};

struct TraceShmem {
  uint64_t addr = 0;
  uint64_t inode = 0;
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;
};

struct TraceEvent {
  TraceCall call = TraceCall::kMmap;
  uint32_t flags = 0;
  uint64_t args[6] = {};
  int64_t kernel_ret = 0;
  int64_t model_ret = 0;
  uint64_t tid = 0;
  uint64_t time_ns = 0;  // CLOCK_MONOTONIC at the end of the call (absolute)
  uint64_t duration_ns = 0;
  uint8_t nframes = 0;
  uint64_t frames[kTraceMaxFrames] = {};
  TraceFile file;            // kEventHasFile
  uint64_t kernel_addr = 0;  // kEventHasKernelAddr
  TraceShmem shmem;          // kEventHasShmem
};

struct TraceReconcile {
  uint64_t addr = 0;
  uint64_t observed_start = 0;
};

struct TraceCheck {
  TraceCheckKind kind = TraceCheckKind::kRange;
  bool equal = false;
  uint64_t first_addr = 0;  // range
  uint64_t lines = 0;       // range
  uint64_t kernel_len = 0;  // full
  uint64_t model_len = 0;   // full
  uint64_t kernel_hash = 0;
  uint64_t model_hash = 0;
};

struct TraceNote {
  TraceNoteKind kind = TraceNoteKind::kDivergence;
  TraceBytes what;
  TraceBytes model;
  TraceBytes kernel;
  uint64_t lo = 0;
  uint64_t hi = 0;
};

struct TraceForkPoint {
  uint64_t ordinal = 0;
  uint64_t tid = 0;
  uint64_t time_ns = 0;  // absolute
};

struct TraceImageEnd {
  TraceBytes reason;
  uint64_t time_ns = 0;  // absolute
};

// One decoded record: `kind` says which member is valid.
struct TraceRecord {
  TraceRecordKind kind = TraceRecordKind::kHeader;
  uint64_t offset = 0;  // byte offset of the record in the file
  uint64_t size = 0;    // its whole size (kind byte to CRC)
  TraceHeader header;
  TraceSeed seed;
  TraceSeedState seed_state;
  TraceLearn learn;
  TraceEvent event;
  TraceReconcile reconcile;
  TraceCheck check;
  TraceNote note;
  TraceForkPoint fork_point;
  TraceImageEnd image_end;
};

}  // namespace vmashadow

#endif  // VMASHADOW_CORE_TRACE_TRACE_FORMAT_H_
