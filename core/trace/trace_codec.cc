// trace_codec.cc — the trace format's encoder and decoder (see trace_codec.h
// and the format in trace_format.h).
//
// Encoding writes a record's payload behind room for the longest length
// varint, then moves it down once the length is known. Decoding goes through
// a Cursor that refuses to read past the payload and remembers the first
// failure, so each field read is one line and no check can be forgotten.
#include "core/trace/trace_codec.h"

#include <cstring>

#include "core/abi/no_syscalls.h"

namespace vmashadow {
namespace {

// --- CRC-32C, reflected polynomial 0x82F63B78, one table lookup a byte. ---

struct CrcTable {
  uint32_t t[256];
  constexpr CrcTable() : t() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
  }
};
constexpr CrcTable kCrcTable;

constexpr size_t kMaxVarint = 10;

// --- Encoding. ---

// Appends to [buf, buf + cap); remembers when something did not fit.
class Sink {
 public:
  Sink(uint8_t* buf, size_t cap) : buf_(buf), cap_(cap) {}
  void U8(uint8_t v) {
    if (len_ < cap_) {
      buf_[len_++] = v;
    } else {
      full_ = true;
    }
  }
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      U8(static_cast<uint8_t>(v | 0x80));
      v >>= 7;
    }
    U8(static_cast<uint8_t>(v));
  }
  void Svarint(int64_t v) {
    Varint((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
  }
  void Fixed64(uint64_t v) {
    for (int i = 0; i < 8; ++i) U8(static_cast<uint8_t>(v >> (8 * i)));
  }
  void Bytes(const void* p, size_t n) {
    if (n > cap_ - len_ || full_) {
      full_ = true;
      return;
    }
    if (n != 0) memcpy(buf_ + len_, p, n);
    len_ += n;
  }
  void String(TraceBytes b) {
    Varint(b.len);
    Bytes(b.data, b.len);
  }
  size_t len() const { return len_; }
  bool full() const { return full_; }

 private:
  uint8_t* buf_;
  size_t cap_;
  size_t len_ = 0;
  bool full_ = false;
};

size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

void EncodeParams(Sink& s, const MmParams& p) {
  s.Varint(p.task_size);
  s.Varint(p.mmap_min_addr);
  s.Varint(p.dac_mmap_min_addr);
  s.Varint(p.max_map_count);
  s.Varint(p.stack_guard_gap);
  s.Varint(p.mmap_base);
  s.Varint(p.mmap_legacy_base);
  s.U8(p.topdown ? 1 : 0);
  s.U8(p.cap_sys_rawio ? 1 : 0);
  s.U8(p.cap_ipc_lock ? 1 : 0);
  s.Varint(p.rlimit_memlock);
  s.Varint(p.rlimit_data);
  s.Varint(p.rlimit_as);
  s.Varint(p.rlimit_stack);
  s.Svarint(p.max_pkey);
  s.Varint(p.start_data);
  s.Varint(p.end_data);
  s.Svarint(p.overcommit_memory);
  s.U8(static_cast<uint8_t>(p.paging_levels));
  s.U8(p.nx ? 1 : 0);
  s.U8(static_cast<uint8_t>(p.thp));
  s.U8(p.thp_use_zero_page ? 1 : 0);
  s.U8(p.thp_disabled ? 1 : 0);
}
// The header lists MmParams field by field: a new field needs a new format
// version (and a line above and in DecodeParams).
static_assert(sizeof(MmParams) == 136, "MmParams changed: update the trace HEADER encoding");

int64_t TimeDelta(TraceCodecState* st, uint64_t t) {
  const int64_t d = static_cast<int64_t>(t - st->last_time_ns);
  return d;
}

// The payload of rec; *next_time is the state's new time.
void EncodePayload(const TraceCodecState& st, const TraceRecord& rec, Sink& s,
                   uint64_t* next_time) {
  TraceCodecState tmp = st;
  *next_time = st.last_time_ns;
  switch (rec.kind) {
    case TraceRecordKind::kHeader: {
      const TraceHeader& h = rec.header;
      s.U8(static_cast<uint8_t>(h.origin));
      s.Varint(h.pid);
      s.Varint(h.parent_pid);
      s.Varint(h.exec_index);
      s.String(h.kernel_release);
      s.String(h.profile);
      s.String(h.check);
      s.String(h.argv);
      s.Varint(h.arena_size);
      EncodeParams(s, h.params);
      s.Varint(h.realtime_ns);
      s.Varint(h.monotonic_ns);
      s.U8(h.max_frames);
      s.Varint(h.preload_text_lo);
      s.Varint(h.preload_text_hi);
      if (h.origin == TraceOrigin::kForkChild) {
        s.String(h.parent_trace);
        s.Varint(h.parent_fork_point);
      }
      *next_time = h.monotonic_ns;
      break;
    }
    case TraceRecordKind::kSeed:
      s.U8(static_cast<uint8_t>(rec.seed.reason));
      s.Varint(rec.seed.maps.len);
      s.Varint(rec.seed.smaps.len);
      s.Bytes(rec.seed.maps.data, rec.seed.maps.len);
      s.Bytes(rec.seed.smaps.data, rec.seed.smaps.len);
      break;
    case TraceRecordKind::kSeedState:
      s.Varint(rec.seed_state.start_brk);
      s.Varint(rec.seed_state.brk);
      s.Varint(rec.seed_state.start_stack);
      s.U8(rec.seed_state.lockall);
      break;
    case TraceRecordKind::kLearnFaulted:
      s.Varint(rec.learn.start);
      s.U8(static_cast<uint8_t>(rec.learn.context));
      break;
    case TraceRecordKind::kEvent: {
      const TraceEvent& e = rec.event;
      uint32_t flags = e.flags;
      if (e.model_ret != e.kernel_ret) {
        flags |= kEventModelRetDiffers;
      } else {
        flags &= ~kEventModelRetDiffers;
      }
      s.U8(static_cast<uint8_t>(e.call));
      s.Varint(flags);
      for (uint64_t a : e.args) s.Varint(a);
      s.Svarint(e.kernel_ret);
      if (flags & kEventModelRetDiffers) s.Svarint(e.model_ret);
      s.Varint(e.tid);
      s.Svarint(TimeDelta(&tmp, e.time_ns));
      *next_time = e.time_ns;
      if (flags & kEventHasDuration) s.Varint(e.duration_ns);
      const uint8_t n = e.nframes <= kTraceMaxFrames ? e.nframes : kTraceMaxFrames;
      s.U8(n);
      uint64_t prev = 0;
      for (int i = 0; i < n; ++i) {
        s.Svarint(static_cast<int64_t>(e.frames[i] - prev));
        prev = e.frames[i];
      }
      if (flags & kEventHasFile) {
        s.Fixed64(e.file.id);
        s.Varint(e.file.inode);
        s.Varint(e.file.dev_major);
        s.Varint(e.file.dev_minor);
        s.U8(static_cast<uint8_t>(e.file.kind));
        s.U8(e.file.bits);
        s.String(e.file.path);
      }
      if (flags & kEventHasKernelAddr) s.Varint(e.kernel_addr);
      if (flags & kEventHasShmem) {
        s.Varint(e.shmem.addr);
        s.Varint(e.shmem.inode);
        s.Varint(e.shmem.dev_major);
        s.Varint(e.shmem.dev_minor);
      }
      break;
    }
    case TraceRecordKind::kReconcile:
      s.Varint(rec.reconcile.addr);
      s.Varint(rec.reconcile.observed_start);
      break;
    case TraceRecordKind::kCheck: {
      const TraceCheck& c = rec.check;
      s.U8(static_cast<uint8_t>(c.kind));
      s.U8(c.equal ? 1 : 0);
      if (c.kind == TraceCheckKind::kRange) {
        s.Varint(c.first_addr);
        s.Varint(c.lines);
      } else {
        s.Varint(c.kernel_len);
        s.Varint(c.model_len);
      }
      s.Fixed64(c.kernel_hash);
      s.Fixed64(c.model_hash);
      break;
    }
    case TraceRecordKind::kNote:
      s.U8(static_cast<uint8_t>(rec.note.kind));
      s.String(rec.note.what);
      s.String(rec.note.model);
      s.String(rec.note.kernel);
      s.Varint(rec.note.lo);
      s.Varint(rec.note.hi);
      break;
    case TraceRecordKind::kForkPoint:
      s.Varint(rec.fork_point.ordinal);
      s.Varint(rec.fork_point.tid);
      s.Svarint(TimeDelta(&tmp, rec.fork_point.time_ns));
      *next_time = rec.fork_point.time_ns;
      break;
    case TraceRecordKind::kImageEnd:
      s.String(rec.image_end.reason);
      s.Svarint(TimeDelta(&tmp, rec.image_end.time_ns));
      *next_time = rec.image_end.time_ns;
      break;
  }
}

// --- Decoding. ---

// Reads one payload; the first failure sticks (and names its offset).
class Cursor {
 public:
  Cursor(const uint8_t* p, size_t n, uint64_t base) : p_(p), n_(n), base_(base) {}

  uint8_t U8() {
    if (pos_ >= n_) return Bad("field runs past the end of its record");
    return p_[pos_++];
  }
  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= n_) return Bad("field runs past the end of its record");
      const uint8_t b = p_[pos_++];
      if (shift == 63 && (b & 0x7e) != 0) return Bad("varint overflows 64 bits");
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return v;
    }
    return Bad("varint longer than 10 bytes");
  }
  int64_t Svarint() {
    const uint64_t z = Varint();
    return static_cast<int64_t>((z >> 1) ^ (~(z & 1) + 1));
  }
  uint32_t U32Varint() {
    const uint64_t v = Varint();
    if (v > 0xffffffffu) return static_cast<uint32_t>(Bad("value does not fit in 32 bits"));
    return static_cast<uint32_t>(v);
  }
  uint64_t Fixed64() {
    if (n_ - pos_ < 8 || pos_ > n_) return Bad("field runs past the end of its record");
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p_[pos_ + i]) << (8 * i);
    pos_ += 8;
    return v;
  }
  bool Bool() {
    const uint8_t b = U8();
    if (b > 1) Bad("boolean is neither 0 nor 1");
    return b == 1;
  }
  // An enum byte that must be <= max.
  uint8_t Enum(uint8_t max, const char* what) {
    const uint8_t b = U8();
    if (b > max) Bad(what);
    return b;
  }
  TraceBytes Bytes(uint64_t n) {
    TraceBytes b;
    if (n > n_ - pos_) {
      Bad("string runs past the end of its record");
      return b;
    }
    b.data = reinterpret_cast<const char*>(p_ + pos_);
    b.len = static_cast<size_t>(n);
    pos_ += static_cast<size_t>(n);
    return b;
  }
  TraceBytes String() {
    const uint64_t n = Varint();
    if (failed_) return TraceBytes{};
    return Bytes(n);
  }
  bool done() const { return pos_ == n_; }
  bool failed() const { return failed_; }
  const char* what() const { return what_; }
  uint64_t fail_offset() const { return base_ + fail_pos_; }

  uint64_t Bad(const char* what) {
    if (!failed_) {
      failed_ = true;
      what_ = what;
      fail_pos_ = pos_;
    }
    pos_ = n_;  // no further reads succeed
    return 0;
  }

 private:
  const uint8_t* p_;
  size_t n_;
  uint64_t base_;
  size_t pos_ = 0;
  size_t fail_pos_ = 0;
  bool failed_ = false;
  const char* what_ = "";
};

void DecodeParams(Cursor& c, MmParams* p) {
  p->task_size = c.Varint();
  p->mmap_min_addr = c.Varint();
  p->dac_mmap_min_addr = c.Varint();
  p->max_map_count = c.Varint();
  p->stack_guard_gap = c.Varint();
  p->mmap_base = c.Varint();
  p->mmap_legacy_base = c.Varint();
  p->topdown = c.Bool();
  p->cap_sys_rawio = c.Bool();
  p->cap_ipc_lock = c.Bool();
  p->rlimit_memlock = c.Varint();
  p->rlimit_data = c.Varint();
  p->rlimit_as = c.Varint();
  p->rlimit_stack = c.Varint();
  const int64_t pkey = c.Svarint();
  if (pkey < -1 || pkey > 16) c.Bad("max_pkey out of range");
  p->max_pkey = static_cast<int>(pkey);
  p->start_data = c.Varint();
  p->end_data = c.Varint();
  const int64_t oc = c.Svarint();
  if (oc < -1 || oc > 2) c.Bad("overcommit_memory out of range");
  p->overcommit_memory = static_cast<int>(oc);
  const uint8_t levels = c.U8();
  if (levels != 4 && levels != 5) c.Bad("paging_levels is neither 4 nor 5");
  p->paging_levels = levels;
  p->nx = c.Bool();
  const uint8_t thp = c.U8();
  if (thp > static_cast<uint8_t>(ThpMode::kAlways)) c.Bad("thp mode out of range");
  p->thp = static_cast<ThpMode>(thp);
  p->thp_use_zero_page = c.Bool();
  p->thp_disabled = c.Bool();
}

// Decodes the payload of a record of `kind` into *rec.
void DecodePayload(TraceCodecState* st, Cursor& c, TraceRecord* rec) {
  switch (rec->kind) {
    case TraceRecordKind::kHeader: {
      TraceHeader& h = rec->header;
      h = TraceHeader{};
      h.origin = static_cast<TraceOrigin>(c.Enum(2, "unknown trace origin"));
      h.pid = c.Varint();
      h.parent_pid = c.Varint();
      h.exec_index = c.Varint();
      h.kernel_release = c.String();
      h.profile = c.String();
      h.check = c.String();
      h.argv = c.String();
      h.arena_size = c.Varint();
      DecodeParams(c, &h.params);
      h.realtime_ns = c.Varint();
      h.monotonic_ns = c.Varint();
      h.max_frames = c.U8();
      if (h.max_frames > kTraceMaxFrames) c.Bad("max_frames above 16");
      h.preload_text_lo = c.Varint();
      h.preload_text_hi = c.Varint();
      if (h.origin == TraceOrigin::kForkChild) {
        h.parent_trace = c.String();
        h.parent_fork_point = c.Varint();
      }
      st->last_time_ns = h.monotonic_ns;
      break;
    }
    case TraceRecordKind::kSeed: {
      rec->seed.reason = static_cast<TraceSeedReason>(c.Enum(3, "unknown seed reason"));
      const uint64_t maps_len = c.Varint();
      const uint64_t smaps_len = c.Varint();
      rec->seed.maps = c.Bytes(maps_len);
      rec->seed.smaps = c.Bytes(smaps_len);
      break;
    }
    case TraceRecordKind::kSeedState:
      rec->seed_state.start_brk = c.Varint();
      rec->seed_state.brk = c.Varint();
      rec->seed_state.start_stack = c.Varint();
      rec->seed_state.lockall = c.U8();
      break;
    case TraceRecordKind::kLearnFaulted:
      rec->learn.start = c.Varint();
      rec->learn.context = static_cast<TraceLearnContext>(c.Enum(2, "unknown learn context"));
      break;
    case TraceRecordKind::kEvent: {
      TraceEvent& e = rec->event;
      e.call = static_cast<TraceCall>(
          c.Enum(static_cast<uint8_t>(TraceCall::kCount) - 1, "unknown call number"));
      const uint64_t flags = c.Varint();
      if ((flags & ~uint64_t{kEventKnownFlags}) != 0) c.Bad("unknown event flags");
      e.flags = static_cast<uint32_t>(flags & kEventKnownFlags);
      for (uint64_t& a : e.args) a = c.Varint();
      e.kernel_ret = c.Svarint();
      e.model_ret = (e.flags & kEventModelRetDiffers) ? c.Svarint() : e.kernel_ret;
      e.tid = c.Varint();
      e.time_ns = st->last_time_ns + static_cast<uint64_t>(c.Svarint());
      e.duration_ns = (e.flags & kEventHasDuration) ? c.Varint() : 0;
      e.nframes = c.U8();
      if (e.nframes > kTraceMaxFrames) {
        c.Bad("more than 16 frames");
        e.nframes = 0;
      }
      uint64_t prev = 0;
      for (int i = 0; i < e.nframes; ++i) {
        prev += static_cast<uint64_t>(c.Svarint());
        e.frames[i] = prev;
      }
      e.file = TraceFile{};
      if (e.flags & kEventHasFile) {
        e.file.id = c.Fixed64();
        e.file.inode = c.Varint();
        e.file.dev_major = c.U32Varint();
        e.file.dev_minor = c.U32Varint();
        e.file.kind = static_cast<FileKind>(
            c.Enum(static_cast<uint8_t>(FileKind::kDevice), "unknown file kind"));
        e.file.bits = c.U8();
        if (e.file.bits > 63) c.Bad("unknown file bits");
        e.file.path = c.String();
      }
      e.kernel_addr = (e.flags & kEventHasKernelAddr) ? c.Varint() : 0;
      e.shmem = TraceShmem{};
      if (e.flags & kEventHasShmem) {
        e.shmem.addr = c.Varint();
        e.shmem.inode = c.Varint();
        e.shmem.dev_major = c.U32Varint();
        e.shmem.dev_minor = c.U32Varint();
      }
      if (!c.failed()) st->last_time_ns = e.time_ns;
      break;
    }
    case TraceRecordKind::kReconcile:
      rec->reconcile.addr = c.Varint();
      rec->reconcile.observed_start = c.Varint();
      break;
    case TraceRecordKind::kCheck: {
      TraceCheck& k = rec->check;
      k = TraceCheck{};
      k.kind = static_cast<TraceCheckKind>(c.Enum(1, "unknown check kind"));
      k.equal = c.Bool();
      if (k.kind == TraceCheckKind::kRange) {
        k.first_addr = c.Varint();
        k.lines = c.Varint();
      } else {
        k.kernel_len = c.Varint();
        k.model_len = c.Varint();
      }
      k.kernel_hash = c.Fixed64();
      k.model_hash = c.Fixed64();
      break;
    }
    case TraceRecordKind::kNote:
      rec->note.kind = static_cast<TraceNoteKind>(c.Enum(1, "unknown note kind"));
      rec->note.what = c.String();
      rec->note.model = c.String();
      rec->note.kernel = c.String();
      rec->note.lo = c.Varint();
      rec->note.hi = c.Varint();
      break;
    case TraceRecordKind::kForkPoint:
      rec->fork_point.ordinal = c.Varint();
      rec->fork_point.tid = c.Varint();
      rec->fork_point.time_ns = st->last_time_ns + static_cast<uint64_t>(c.Svarint());
      if (!c.failed()) st->last_time_ns = rec->fork_point.time_ns;
      break;
    case TraceRecordKind::kImageEnd:
      rec->image_end.reason = c.String();
      rec->image_end.time_ns = st->last_time_ns + static_cast<uint64_t>(c.Svarint());
      if (!c.failed()) st->last_time_ns = rec->image_end.time_ns;
      break;
  }
}

}  // namespace

uint32_t TraceCrc32c(uint32_t crc, const void* data, size_t len) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint32_t c = ~crc;
  for (size_t i = 0; i < len; ++i) c = kCrcTable.t[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return ~c;
}

uint64_t TraceHashLine(uint64_t h, const char* line, size_t len) {
  for (size_t i = 0; i < len; ++i) {
    h ^= static_cast<uint8_t>(line[i]);
    h *= 0x100000001b3;
  }
  uint64_t n = len;
  for (int i = 0; i < 8; ++i) {
    h ^= n & 0xff;
    h *= 0x100000001b3;
    n >>= 8;
  }
  return h;
}

size_t EncodeTracePrefix(uint8_t* buf, size_t cap) {
  if (cap < kTracePrefixSize) return 0;
  memcpy(buf, kTraceMagic, 8);
  for (int i = 0; i < 4; ++i) buf[8 + i] = static_cast<uint8_t>(kTraceVersion >> (8 * i));
  memset(buf + 12, 0, 4);
  return kTracePrefixSize;
}

void EncodeTraceCrc(uint32_t crc, uint8_t out[4]) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<uint8_t>(crc >> (8 * i));
}

size_t EncodeTraceRecord(TraceCodecState* state, const TraceRecord& rec, uint8_t* buf, size_t cap) {
  // Payload first, behind room for the kind and the longest length varint.
  constexpr size_t kHead = 1 + kMaxVarint;
  if (cap < kHead + 4) return 0;
  Sink s(buf + kHead, cap - kHead - 4);
  uint64_t next_time = 0;
  EncodePayload(*state, rec, s, &next_time);
  if (s.full() || s.len() > kTraceMaxPayload) return 0;
  const size_t n = s.len();
  const size_t head = 1 + VarintSize(n);
  buf[0] = static_cast<uint8_t>(rec.kind);
  Sink len_sink(buf + 1, kMaxVarint);
  len_sink.Varint(n);
  memmove(buf + head, buf + kHead, n);
  const uint32_t crc = TraceCrc32c(0, buf, head + n);
  EncodeTraceCrc(crc, buf + head + n);
  state->last_time_ns = next_time;
  return head + n + 4;
}

size_t EncodeSeedPrefix(TraceSeedReason reason, size_t maps_len, size_t smaps_len, uint8_t* buf,
                        size_t cap) {
  const uint64_t payload = 1 + VarintSize(maps_len) + VarintSize(smaps_len) +
                           static_cast<uint64_t>(maps_len) + static_cast<uint64_t>(smaps_len);
  if (payload > kTraceMaxPayload) return 0;
  Sink s(buf, cap);
  s.U8(static_cast<uint8_t>(TraceRecordKind::kSeed));
  s.Varint(payload);
  s.U8(static_cast<uint8_t>(reason));
  s.Varint(maps_len);
  s.Varint(smaps_len);
  return s.full() ? 0 : s.len();
}

TraceReader::TraceReader(const void* data, size_t size)
    : data_(static_cast<const uint8_t*>(data)), size_(size) {}

TraceStatus TraceReader::Fail(TraceStatus status, uint64_t offset, const char* what, int details,
                              uint64_t a, uint64_t b) {
  error_.status = status;
  error_.offset = offset;
  error_.what = what;
  error_.details = details;
  error_.detail[0] = a;
  error_.detail[1] = b;
  return status;
}

TraceStatus TraceReader::Start(TraceRecord* rec) {
  if (error_.status != TraceStatus::kOk) return error_.status;
  if (size_ == 0) return Fail(TraceStatus::kTruncated, 0, "the file is empty");
  if (size_ < kTracePrefixSize) {
    if (size_ < 8 ? memcmp(data_, kTraceMagic, static_cast<size_t>(size_)) == 0
                  : memcmp(data_, kTraceMagic, 8) == 0) {
      return Fail(TraceStatus::kTruncated, 0, "file ends inside the 16-byte trace prefix", 1,
                  size_);
    }
    return Fail(TraceStatus::kCorrupt, 0, "not a vmashadow trace (no VMASHTRC magic)");
  }
  if (memcmp(data_, kTraceMagic, 8) != 0) {
    return Fail(TraceStatus::kCorrupt, 0, "not a vmashadow trace (no VMASHTRC magic)");
  }
  uint32_t version = 0;
  for (int i = 0; i < 4; ++i) version |= static_cast<uint32_t>(data_[8 + i]) << (8 * i);
  if (version != kTraceVersion) {
    return Fail(TraceStatus::kCorrupt, 8, "unsupported trace format version (this reader: 1)", 1,
                version);
  }
  if (data_[12] != 0 || data_[13] != 0 || data_[14] != 0 || data_[15] != 0) {
    return Fail(TraceStatus::kCorrupt, 12, "reserved prefix bytes are not zero");
  }
  pos_ = kTracePrefixSize;
  started_ = true;
  const TraceStatus s = Next(rec);
  if (s == TraceStatus::kEnd) {
    return Fail(TraceStatus::kTruncated, kTracePrefixSize, "trace ends before its HEADER record");
  }
  if (s == TraceStatus::kOk && rec->kind != TraceRecordKind::kHeader) {
    return Fail(TraceStatus::kCorrupt, rec->offset, "the first record is not a HEADER", 1,
                static_cast<uint64_t>(rec->kind));
  }
  return s;
}

TraceStatus TraceReader::Next(TraceRecord* rec) {
  if (error_.status != TraceStatus::kOk) return error_.status;
  if (!started_) return Fail(TraceStatus::kCorrupt, 0, "Next() before Start()");
  const uint64_t start = pos_;
  if (pos_ == size_) {
    error_.status = TraceStatus::kEnd;
    error_.offset = pos_;
    error_.what = "end of trace";
    return TraceStatus::kEnd;
  }
  const uint8_t kind = data_[pos_];
  if (kind == 0 || kind > kTraceMaxKind) {
    return Fail(TraceStatus::kCorrupt, start, "unknown record kind", 1, kind);
  }
  // The length varint.
  uint64_t len = 0;
  uint64_t p = pos_ + 1;
  int shift = 0;
  for (;;) {
    if (p >= size_) {
      return Fail(TraceStatus::kTruncated, start, "file ends inside a record's length", 1,
                  size_ - start);
    }
    const uint8_t b = data_[p++];
    if (shift >= 35) return Fail(TraceStatus::kCorrupt, start, "record length varint too long");
    len |= static_cast<uint64_t>(b & 0x7f) << shift;
    shift += 7;
    if ((b & 0x80) == 0) break;
  }
  if (len > kTraceMaxPayload) {
    return Fail(TraceStatus::kCorrupt, start, "record length above the 1 GiB limit", 1, len);
  }
  const uint64_t head = p - start;
  const uint64_t total = head + len + 4;
  if (total > size_ - start) {
    return Fail(TraceStatus::kTruncated, start, "file ends inside a record (bytes present, needed)",
                2, size_ - start, total);
  }
  const uint8_t* crc_at = data_ + start + head + len;
  const uint32_t stored = static_cast<uint32_t>(crc_at[0]) | static_cast<uint32_t>(crc_at[1]) << 8 |
                          static_cast<uint32_t>(crc_at[2]) << 16 |
                          static_cast<uint32_t>(crc_at[3]) << 24;
  const uint32_t computed = TraceCrc32c(0, data_ + start, static_cast<size_t>(head + len));
  if (stored != computed) {
    return Fail(TraceStatus::kCorrupt, start, "record checksum mismatch (stored, computed)", 2,
                stored, computed);
  }
  rec->kind = static_cast<TraceRecordKind>(kind);
  rec->offset = start;
  rec->size = total;
  if (rec->kind == TraceRecordKind::kHeader && records_ != 0) {
    return Fail(TraceStatus::kCorrupt, start, "a second HEADER record");
  }
  Cursor c(data_ + start + head, static_cast<size_t>(len), start + head);
  TraceCodecState st = state_;
  DecodePayload(&st, c, rec);
  if (c.failed()) return Fail(TraceStatus::kCorrupt, c.fail_offset(), c.what());
  if (!c.done()) {
    return Fail(TraceStatus::kCorrupt, start, "record has bytes after its last field", 1,
                static_cast<uint64_t>(rec->kind));
  }
  state_ = st;
  pos_ = start + total;
  ++records_;
  return TraceStatus::kOk;
}

}  // namespace vmashadow
