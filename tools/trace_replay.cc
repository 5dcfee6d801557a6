// trace_replay.cc — the replay engine (see trace_replay.h). Each record is
// applied as the preload applied it: a recorded call goes to the model
// through core's mm::ApplyCall(), as the preload's did, and seeding mirrors shadow.cc's
// Seed() (SeedFromMaps, then the recorded LearnFaulted facts, then brk, the
// stack start and an mlockall(MCL_FUTURE) in force).
#include "tools/trace_replay.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/abi/call.h"
#include "core/abi/linux_abi.h"
#include "core/mm/apply.h"
#include "core/procfs/maps_text.h"

namespace vmashadow {
namespace {

constexpr uint64_t kDefaultArena = uint64_t{64} << 20;
constexpr int kMaxParentDepth = 64;

std::string Str(TraceBytes b) { return std::string(b.data, b.len); }

std::string RetText(int64_t v) {
  if (abi::IsErrorReturn(v)) return absl::StrCat(v);
  return absl::StrFormat("%#x", static_cast<uint64_t>(v));
}

std::string EventText(const TraceEvent& e) {
  int nargs = 6;
  while (nargs > 1 && e.args[nargs - 1] == 0) --nargs;
  std::string out = absl::StrCat(TraceCallName(e.call), "(");
  for (int i = 0; i < nargs; ++i) {
    absl::StrAppendFormat(&out, "%s%#x", i > 0 ? ", " : "", e.args[i]);
  }
  return out + ")";
}

}  // namespace

// ---------------------------------------------------------------------------
// TraceData.

absl::StatusOr<std::unique_ptr<TraceData>> TraceData::Open(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", strerror(errno)));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    return absl::InternalError(absl::StrCat("cannot stat ", path, ": ", strerror(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a regular file"));
  }
  std::unique_ptr<TraceData> d(new TraceData());
  d->path_ = path;
  d->size_ = static_cast<size_t>(st.st_size);
  if (d->size_ >= (size_t{1} << 16)) {
    void* p = mmap(nullptr, d->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p != MAP_FAILED) {
      d->data_ = static_cast<const uint8_t*>(p);
      d->mapped_ = true;
    }
  }
  if (!d->mapped_) {
    d->copy_.resize(d->size_);
    size_t got = 0;
    while (got < d->size_) {
      const ssize_t n = read(fd, d->copy_.data() + got, d->size_ - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    d->copy_.resize(got);
    d->size_ = got;
    d->data_ = reinterpret_cast<const uint8_t*>(d->copy_.data());
  }
  close(fd);
  return d;
}

TraceData::~TraceData() {
  if (mapped_) munmap(const_cast<uint8_t*>(data_), size_);
}

std::string FormatTraceError(const std::string& path, const TraceError& e) {
  const char* kind = e.status == TraceStatus::kTruncated ? "truncated" : "corrupt";
  std::string out =
      absl::StrFormat("%s: %s trace at byte offset %u: %s", path, kind, e.offset, e.what);
  if (e.details == 1) absl::StrAppendFormat(&out, " (%u)", e.detail[0]);
  if (e.details == 2) {
    absl::StrAppendFormat(&out, " (%u, %u)", e.detail[0], e.detail[1]);
  }
  return out;
}

const char* ReplayMismatchName(ReplayMismatch::Kind kind) {
  switch (kind) {
    case ReplayMismatch::kReplayResult:
      return "replayed result differs from the recorded model's";
    case ReplayMismatch::kKernelResult:
      return "model result differs from the kernel's";
    case ReplayMismatch::kReplayCheck:
      return "replayed maps lines differ from the recorded model's";
    case ReplayMismatch::kKernelCheck:
      return "model maps lines differ from the kernel's";
    case ReplayMismatch::kSnapshot:
      return "reseeded model does not render as its snapshot";
  }
  return "?";
}

// ---------------------------------------------------------------------------
// Replayer.

Replayer::~Replayer() {
  model_.reset();
  arena_.reset();
  free(arena_memory_);
}

absl::StatusOr<std::unique_ptr<Replayer>> Replayer::Open(const std::string& path,
                                                         const ReplayOptions& options) {
  std::unique_ptr<Replayer> r(new Replayer());
  r->options_ = options;
  absl::Status s = r->OpenInto(path, 0);
  if (!s.ok()) return s;
  return r;
}

absl::Status Replayer::OpenInto(const std::string& path, int depth) {
  path_ = path;
  absl::StatusOr<std::unique_ptr<TraceData>> data = TraceData::Open(path);
  if (!data.ok()) return data.status();
  data_ = std::move(*data);
  reader_ = std::make_unique<TraceReader>(data_->data(), data_->size());
  if (reader_->Start(&header_) != TraceStatus::kOk) {
    return absl::InvalidArgumentError(FormatTraceError(path, reader_->error()));
  }
  const TraceHeader& h = header_.header;
  if (h.origin == TraceOrigin::kForkChild) {
    absl::Status s = ReplayParentPrefix(path, h, depth + 1);
    if (!s.ok()) return s;
  } else {
    const std::string name = options_.profile.empty() ? Str(h.profile) : options_.profile;
    profile_ = FindKernelProfile(name.c_str());
    if (profile_ == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown kernel profile '", name, "'"));
    }
    const uint64_t arena = h.arena_size != 0 ? h.arena_size : kDefaultArena;
    if (arena > (uint64_t{1} << 36) || arena % kPageSize != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": implausible arena size ", arena, " in the trace header"));
    }
    arena_memory_ = aligned_alloc(kPageSize, arena);
    if (arena_memory_ == nullptr) return absl::ResourceExhaustedError("cannot allocate the arena");
    arena_ = std::make_unique<Arena>(arena_memory_, arena);
    model_ = std::make_unique<AddressSpace>(arena_.get(), *profile_, h.params);
  }
  return ReadNext();
}

absl::Status Replayer::ReplayParentPrefix(const std::string& child_path, const TraceHeader& h,
                                          int depth) {
  if (depth > kMaxParentDepth) {
    return absl::InvalidArgumentError(
        absl::StrCat(child_path, ": more than ", kMaxParentDepth, " parent traces (a cycle?)"));
  }
  // The parent's path as recorded, or the same name beside the child (the
  // traces were moved together).
  namespace fs = std::filesystem;
  const std::string recorded = Str(h.parent_trace);
  std::string parent = recorded;
  std::error_code ec;
  const std::string beside =
      (fs::path(child_path).parent_path() / fs::path(recorded).filename()).string();
  if (!fs::exists(beside, ec) && fs::exists(recorded, ec)) {
    parent = recorded;
  } else {
    parent = beside;
  }
  absl::StatusOr<std::unique_ptr<TraceData>> data = TraceData::Open(parent);
  if (!data.ok()) {
    return absl::NotFoundError(absl::StrCat(child_path, " is a fork child's trace; its parent's (",
                                            recorded,
                                            ") cannot be read: ", data.status().message()));
  }
  TraceReader reader((*data)->data(), (*data)->size());
  TraceRecord rec;
  if (reader.Start(&rec) != TraceStatus::kOk) {
    return absl::InvalidArgumentError(FormatTraceError(parent, reader.error()));
  }
  const TraceHeader ph = rec.header;
  if (ph.origin == TraceOrigin::kForkChild) {
    absl::Status s = ReplayParentPrefix(parent, ph, depth + 1);
    if (!s.ok()) return s;
  } else {
    const std::string name = options_.profile.empty() ? Str(ph.profile) : options_.profile;
    profile_ = FindKernelProfile(name.c_str());
    if (profile_ == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown kernel profile '", name, "'"));
    }
    const uint64_t arena = ph.arena_size != 0 ? ph.arena_size : kDefaultArena;
    if (arena > (uint64_t{1} << 36) || arena % kPageSize != 0) {
      return absl::InvalidArgumentError(absl::StrCat(parent, ": implausible arena size"));
    }
    arena_memory_ = aligned_alloc(kPageSize, arena);
    if (arena_memory_ == nullptr) return absl::ResourceExhaustedError("cannot allocate the arena");
    arena_ = std::make_unique<Arena>(arena_memory_, arena);
    model_ = std::make_unique<AddressSpace>(arena_.get(), *profile_, ph.params);
  }
  for (;;) {
    const TraceStatus s = reader.Next(&rec);
    if (s == TraceStatus::kEnd) break;
    if (s != TraceStatus::kOk) {
      return absl::InvalidArgumentError(FormatTraceError(parent, reader.error()));
    }
    if (rec.kind == TraceRecordKind::kForkPoint && rec.fork_point.ordinal == h.parent_fork_point) {
      model_->ForkChild();
      return absl::OkStatus();
    }
    Apply(rec, /*verify=*/false, nullptr, nullptr);
  }
  return absl::InvalidArgumentError(absl::StrCat(child_path, ": its parent's trace ", parent,
                                                 " has no fork point #", h.parent_fork_point));
}

absl::Status Replayer::ReadNext() {
  const TraceStatus s = reader_->Next(&next_);
  have_next_ = s == TraceStatus::kOk;
  if (!have_next_) {
    end_status_ = s;
    if (s == TraceStatus::kTruncated) {
      pending_error_ = absl::DataLossError(FormatTraceError(path_, reader_->error()));
    } else if (s == TraceStatus::kCorrupt) {
      pending_error_ = absl::InvalidArgumentError(FormatTraceError(path_, reader_->error()));
    }
  }
  return absl::OkStatus();
}

uint64_t Replayer::offset() const { return have_next_ ? next_.offset : reader_->offset(); }
uint64_t Replayer::size() const { return data_->size(); }

absl::StatusOr<bool> Replayer::Step() {
  if (!have_next_) {
    if (!pending_error_.ok()) return pending_error_;
    return false;
  }
  current_ = next_;
  absl::Status s = ReadNext();
  if (!s.ok()) return s;
  last_.record = &current_;
  last_.mismatches.clear();
  last_.event_index = 0;
  last_.outcome = Outcome{};
  ++stats_.records;
  Apply(current_, options_.verify, &last_, &stats_);
  return true;
}

bool Replayer::AtEventBoundary() const {
  if (!have_next_) return true;
  switch (next_.kind) {
    case TraceRecordKind::kEvent:
      return true;
    case TraceRecordKind::kLearnFaulted:
      return next_.learn.context == TraceLearnContext::kEvent;
    case TraceRecordKind::kSeed:
      return next_.seed.reason == TraceSeedReason::kBeforeEvent;
    default:
      return false;
  }
}

void Replayer::AddMismatch(ReplayMismatch::Kind kind, const TraceRecord& rec, std::string text,
                           ReplayStep* step, ReplayStats* stats) {
  if (stats != nullptr) ++stats->mismatches[kind];
  if (step != nullptr) {
    step->mismatches.push_back(ReplayMismatch{kind, event_index_, rec.offset, std::move(text)});
  }
}

void Replayer::Apply(const TraceRecord& rec, bool verify, ReplayStep* step, ReplayStats* stats) {
  AddressSpace& m = *model_;
  switch (rec.kind) {
    case TraceRecordKind::kHeader:
      break;
    case TraceRecordKind::kSeed: {
      size_t bad_line = 0;
      const int r = SeedFromMaps(&m, rec.seed.maps.data, rec.seed.maps.len, rec.seed.smaps.data,
                                 rec.seed.smaps.len, &bad_line);
      if (stats != nullptr) ++stats->seeds;
      pending_seed_ = rec.seed;
      seed_open_ = true;
      if (r != 0 && verify) {
        AddMismatch(ReplayMismatch::kSnapshot, rec,
                    absl::StrFormat("SeedFromMaps failed (%d) at maps line %u", r, bad_line), step,
                    stats);
      }
      break;
    }
    case TraceRecordKind::kSeedState: {
      m.SetBrkState(rec.seed_state.start_brk, rec.seed_state.brk);
      m.SetStartStack(rec.seed_state.start_stack);
      if (rec.seed_state.lockall != 0) {
        (void)m.LockAll(rec.seed_state.lockall & (abi::kMclFuture | abi::kMclOnfault));
      }
      if (verify && seed_open_) {
        for (;;) {
          const size_t n = RenderMaps(m, render_.data(), render_.size());
          if (n < render_.size()) {
            render_.resize(n);
            break;
          }
          render_.resize(n + 1);
        }
        if (render_ != Str(pending_seed_.maps)) {
          AddMismatch(ReplayMismatch::kSnapshot, rec,
                      "the model seeded from the snapshot does not render as its maps text", step,
                      stats);
        }
        render_.resize(render_.capacity());
      }
      seed_open_ = false;
      break;
    }
    case TraceRecordKind::kLearnFaulted:
      (void)m.LearnFaulted(rec.learn.start);
      if (stats != nullptr) ++stats->learnt;
      break;
    case TraceRecordKind::kEvent:
      ApplyEvent(rec.event, verify, step, stats);
      break;
    case TraceRecordKind::kReconcile:
      (void)m.ReconcileGrowsdown(rec.reconcile.addr, rec.reconcile.observed_start);
      if (stats != nullptr) ++stats->reconciles;
      break;
    case TraceRecordKind::kCheck:
      ApplyCheck(rec, verify, step, stats);
      break;
    case TraceRecordKind::kNote:
      if (stats != nullptr) {
        if (rec.note.kind == TraceNoteKind::kDivergence) {
          ++stats->divergences_recorded;
        } else {
          ++stats->unexplained_recorded;
        }
      }
      break;
    case TraceRecordKind::kForkPoint:
      if (stats != nullptr) ++stats->fork_points;
      break;
    case TraceRecordKind::kImageEnd:
      if (stats != nullptr) ++stats->image_ends;
      break;
  }
}

void Replayer::ApplyEvent(const TraceEvent& e, bool verify, ReplayStep* step, ReplayStats* stats) {
  AddressSpace& m = *model_;
  ++event_index_;
  Outcome o;
  const bool unmodelled = (e.flags & kEventUnmodelled) != 0;
  if (unmodelled) {
    o.ret = e.kernel_ret;
  } else {
    FileDesc d;
    std::string path;
    if (e.flags & kEventHasFile) {
      d.id = e.file.id;
      d.inode = e.file.inode;
      d.dev_major = e.file.dev_major;
      d.dev_minor = e.file.dev_minor;
      d.kind = e.file.kind;
      d.deleted = (e.file.bits & kFileDeleted) != 0;
      d.has_close = (e.file.bits & kFileHasClose) != 0;
      d.readable = (e.file.bits & kFileReadable) != 0;
      d.writable = (e.file.bits & kFileWritable) != 0;
      d.append = (e.file.bits & kFileAppend) != 0;
      d.noexec_mount = (e.file.bits & kFileNoexecMount) != 0;
      path = Str(e.file.path);
      d.path = path.c_str();
    }
    if (CallIsModelled(e.call)) {
      // The preload's model call for this event, through the same path.
      o = mm::ApplyCall(m, e.call, e.args, (e.flags & kEventHasFile) ? &d : nullptr,
                        (e.flags & kEventHasKernelAddr) ? e.kernel_addr : 0);
    } else {
      o.ret = e.kernel_ret;  // process_madvise, shmat, ...: always unmodelled
    }
    if (e.flags & kEventHasShmem) {
      (void)m.SetShmemInode(e.shmem.addr, e.shmem.inode, e.shmem.dev_major, e.shmem.dev_minor);
    }
  }
  if (step != nullptr) {
    step->outcome = o;
    step->event_index = event_index_;
  }
  if (stats == nullptr) return;
  ++stats->events;
  ++stats->events_by_call[static_cast<int>(e.call)];
  if (e.flags & kEventTrapped) ++stats->trapped;
  if (unmodelled) {
    ++stats->unmodelled;
    return;
  }
  // The preload's counting (EventScope::Finish), with the replayed result.
  ++stats->results;
  const bool err = e.kernel_ret < 0 || o.ret < 0;
  const bool hit = e.kernel_ret == o.ret;
  if (hit) ++stats->results_hit;
  if (err) {
    ++stats->errno_predicted;
    if (hit) ++stats->errno_hit;
  }
  if (o.placement_predicted && (e.flags & kEventPlacementOk) && e.kernel_ret >= 0 && o.ret >= 0) {
    ++stats->placement_predicted;
    if (hit) ++stats->placement_hit;
  }
  if (!verify) return;
  const TraceRecord& rec = current_;
  if (o.ret != e.model_ret) {
    AddMismatch(ReplayMismatch::kReplayResult, rec,
                absl::StrCat("event ", event_index_, " ", EventText(e), ": replayed ",
                             RetText(o.ret), ", recorded model ", RetText(e.model_ret)),
                step, stats);
  }
  if (o.ret != e.kernel_ret) {
    // The preload counts every result it missed and says why in the NOTE
    // that follows the event: one it could not model (unexplained, with its
    // reason) is not a mismatch; a divergence is.
    const TraceRecord* note = Peek();
    if (note != nullptr && note->kind == TraceRecordKind::kNote &&
        note->note.kind == TraceNoteKind::kUnexplained) {
      ++stats->unexplained_results;
      return;
    }
    AddMismatch(ReplayMismatch::kKernelResult, rec,
                absl::StrCat("event ", event_index_, " ", EventText(e), ": model ", RetText(o.ret),
                             ", kernel ", RetText(e.kernel_ret)),
                step, stats);
  }
}

void Replayer::ApplyCheck(const TraceRecord& rec, bool verify, ReplayStep* step,
                          ReplayStats* stats) {
  const TraceCheck& c = rec.check;
  if (stats != nullptr) {
    if (c.kind == TraceCheckKind::kRange) {
      ++stats->range_checks;
    } else {
      ++stats->full_checks;
    }
  }
  if (!verify) return;
  const AddressSpace& m = *model_;
  uint64_t h = kTraceHashInit;
  std::string first_line;
  if (c.kind == TraceCheckKind::kRange) {
    char line[4096 + 256];
    uint64_t addr = c.first_addr;
    for (uint64_t i = 0; i < c.lines && i < 1000000; ++i) {
      const Vma* v = m.FindVma(addr);
      size_t n = 0;
      if (v != nullptr) {
        n = RenderVmaLine(m, *v, line, sizeof(line));
        if (n >= sizeof(line)) n = sizeof(line) - 1;
        addr = v->end;
      }
      h = TraceHashLine(h, line, n);
      if (i == 0) first_line.assign(line, n);
    }
  } else {
    for (;;) {
      const size_t n = RenderMaps(m, render_.data(), render_.size());
      if (n < render_.size()) {
        h = TraceHashLine(h, render_.data(), n);
        break;
      }
      render_.resize(n + 1);
    }
  }
  const char* what = c.kind == TraceCheckKind::kRange ? "range check" : "full check";
  if (h != c.model_hash) {
    AddMismatch(ReplayMismatch::kReplayCheck, rec,
                absl::StrFormat("after event %u, %s%s: the replayed model's lines differ from "
                                "those the preload's model showed",
                                event_index_, what,
                                c.kind == TraceCheckKind::kRange
                                    ? absl::StrFormat(" from %#x", c.first_addr)
                                    : std::string()),
                step, stats);
  }
  if (h != c.kernel_hash) {
    // The preload saw it too (equal == false) and said why in the NOTE
    // that follows: an unexplained change is not a mismatch.
    const TraceRecord* note = Peek();
    if (!c.equal && note != nullptr && note->kind == TraceRecordKind::kNote &&
        note->note.kind == TraceNoteKind::kUnexplained) {
      if (stats != nullptr) ++stats->unexplained_checks;
      return;
    }
    std::string text = absl::StrFormat("after event %u, %s: the model differs from the kernel",
                                       event_index_, what);
    if (note != nullptr && note->kind == TraceRecordKind::kNote) {
      absl::StrAppend(&text, " (recorded: ", Str(note->note.what),
                      "; model: ", Str(note->note.model), "; kernel: ", Str(note->note.kernel),
                      ")");
    }
    AddMismatch(ReplayMismatch::kKernelCheck, rec, std::move(text), step, stats);
  }
}

absl::StatusOr<ReplayStats> ReplayAll(const std::string& path, const ReplayOptions& options) {
  absl::StatusOr<std::unique_ptr<Replayer>> r = Replayer::Open(path, options);
  if (!r.ok()) return r.status();
  for (;;) {
    absl::StatusOr<bool> more = (*r)->Step();
    if (!more.ok()) return more.status();
    if (!*more) break;
  }
  return (*r)->stats();
}

}  // namespace vmashadow
