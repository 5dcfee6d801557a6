// trace_codec_test.cc — the trace encoder and decoder (core/trace/trace_codec.h):
// every record kind round-trips field for field; the SEED prefix path
// produces the same bytes as the generic encoder; a trace cut at every byte
// and a trace with every single bit flipped decode to an error naming an
// offset inside the file (never a crash, never a wrong record accepted
// silently past a checksum).
#include "core/trace/trace_codec.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace vmashadow {
namespace {

TraceBytes B(const std::string& s) { return TraceBytes{s.data(), s.size()}; }
std::string S(TraceBytes b) { return std::string(b.data, b.len); }

struct Fixture {
  std::string release = "6.18.44-fc";
  std::string profile = "6.18-fc";
  std::string check = "every";
  std::string argv = std::string("prog\0arg", 8);
  std::string parent = "/tmp/t.trace";
  std::string maps = "55550000-55551000 r--p 00000000 fe:01 12 /bin/x\n";
  std::string smaps = "55550000-55551000 r--p 00000000 fe:01 12 /bin/x\nVmFlags: rd mr mw me \n";
  std::string path = "/lib/libc.so.6";
  std::string what = "range check";
  std::string line_m = "7f00-7f01 rw-p";
  std::string line_k = "7f00-7f02 rw-p";
  std::string reason = "exit";

  std::vector<TraceRecord> Records() {
    std::vector<TraceRecord> out;
    TraceRecord h;
    h.kind = TraceRecordKind::kHeader;
    h.header.origin = TraceOrigin::kForkChild;
    h.header.pid = 1234;
    h.header.parent_pid = 1200;
    h.header.exec_index = 2;
    h.header.kernel_release = B(release);
    h.header.profile = B(profile);
    h.header.check = B(check);
    h.header.argv = B(argv);
    h.header.arena_size = 64 << 20;
    h.header.params.mmap_base = 0x7fff00000000;
    h.header.params.max_pkey = 1;
    h.header.params.overcommit_memory = 2;
    h.header.params.rlimit_as = kUnlimited;
    h.header.realtime_ns = 1700000000000000000;
    h.header.monotonic_ns = 5000000000;
    h.header.max_frames = 8;
    h.header.preload_text_lo = 0x7f0000001000;
    h.header.preload_text_hi = 0x7f0000009000;
    h.header.parent_trace = B(parent);
    h.header.parent_fork_point = 3;
    out.push_back(h);

    TraceRecord seed;
    seed.kind = TraceRecordKind::kSeed;
    seed.seed.reason = TraceSeedReason::kBeforeEvent;
    seed.seed.maps = B(maps);
    seed.seed.smaps = B(smaps);
    out.push_back(seed);

    TraceRecord learn;
    learn.kind = TraceRecordKind::kLearnFaulted;
    learn.learn.start = 0x7f0000000000;
    learn.learn.context = TraceLearnContext::kSeed;
    out.push_back(learn);

    TraceRecord state;
    state.kind = TraceRecordKind::kSeedState;
    state.seed_state.start_brk = 0x555555559000;
    state.seed_state.brk = 0x55555557a000;
    state.seed_state.start_stack = 0x7ffffffde000;
    state.seed_state.lockall = 3;
    out.push_back(state);

    TraceRecord ev;
    ev.kind = TraceRecordKind::kEvent;
    ev.event.call = TraceCall::kMmap;
    ev.event.flags = kEventTrapped | kEventPlacementOk | kEventHasFile | kEventHasKernelAddr |
                     kEventHasShmem | kEventHasDuration | kEventFrame0IsPc;
    ev.event.args[0] = 0;
    ev.event.args[1] = 0x1000;
    ev.event.args[2] = 3;
    ev.event.args[3] = 0x22;
    ev.event.args[4] = ~uint64_t{0};
    ev.event.args[5] = 0;
    ev.event.kernel_ret = 0x7ffff7fc0000;
    ev.event.model_ret = -12;
    ev.event.tid = 1235;
    ev.event.time_ns = 5000001000;
    ev.event.duration_ns = 777;
    ev.event.nframes = 3;
    ev.event.frames[0] = 0x7ffff7e00010;
    ev.event.frames[1] = 0x555555555123;
    ev.event.frames[2] = 0x7ffff7e00000;
    ev.event.file.id = 0x8000000000001234;
    ev.event.file.inode = 99;
    ev.event.file.dev_major = 254;
    ev.event.file.dev_minor = 1;
    ev.event.file.kind = FileKind::kRegularThp;
    ev.event.file.bits = kFileReadable | kFileDeleted;
    ev.event.file.path = B(path);
    ev.event.kernel_addr = 0x40000000;
    ev.event.shmem.addr = 0x7ffff7fc0000;
    ev.event.shmem.inode = 4242;
    ev.event.shmem.dev_minor = 1;
    out.push_back(ev);

    TraceRecord ev2;
    ev2.kind = TraceRecordKind::kEvent;
    ev2.event.call = TraceCall::kMunmap;
    ev2.event.args[0] = 0x7ffff7fc0000;
    ev2.event.args[1] = 0x1000;
    ev2.event.kernel_ret = 0;
    ev2.event.model_ret = 0;
    ev2.event.time_ns = 5000000900;  // clocks may step back: deltas are signed
    out.push_back(ev2);

    TraceRecord rc;
    rc.kind = TraceRecordKind::kReconcile;
    rc.reconcile.addr = 0x7ffffffde000;
    rc.reconcile.observed_start = 0x7ffffffdd000;
    out.push_back(rc);

    TraceRecord ck;
    ck.kind = TraceRecordKind::kCheck;
    ck.check.kind = TraceCheckKind::kRange;
    ck.check.equal = true;
    ck.check.first_addr = 0x7f0000000000;
    ck.check.lines = 3;
    ck.check.kernel_hash = 0x1122334455667788;
    ck.check.model_hash = 0x1122334455667788;
    out.push_back(ck);

    TraceRecord full;
    full.kind = TraceRecordKind::kCheck;
    full.check.kind = TraceCheckKind::kFull;
    full.check.kernel_len = 5000;
    full.check.model_len = 4990;
    full.check.kernel_hash = 1;
    full.check.model_hash = 2;
    out.push_back(full);

    TraceRecord note;
    note.kind = TraceRecordKind::kNote;
    note.note.kind = TraceNoteKind::kDivergence;
    note.note.what = B(what);
    note.note.model = B(line_m);
    note.note.kernel = B(line_k);
    note.note.lo = 1;
    note.note.hi = 2;
    out.push_back(note);

    TraceRecord fork;
    fork.kind = TraceRecordKind::kForkPoint;
    fork.fork_point.ordinal = 1;
    fork.fork_point.tid = 1234;
    fork.fork_point.time_ns = 5000002000;
    out.push_back(fork);

    TraceRecord end;
    end.kind = TraceRecordKind::kImageEnd;
    end.image_end.reason = B(reason);
    end.image_end.time_ns = 5000003000;
    out.push_back(end);
    return out;
  }

  std::vector<uint8_t> Encode() {
    std::vector<uint8_t> out(kTracePrefixSize);
    EXPECT_EQ(EncodeTracePrefix(out.data(), out.size()), kTracePrefixSize);
    TraceCodecState st;
    for (const TraceRecord& r : Records()) {
      uint8_t buf[4096];
      const size_t n = EncodeTraceRecord(&st, r, buf, sizeof(buf));
      EXPECT_GT(n, 0u);
      out.insert(out.end(), buf, buf + n);
    }
    return out;
  }
};

TEST(TraceCodecTest, Crc32cKnownValue) {
  // The CRC-32C check value (RFC 3720 B.4 uses "123456789").
  EXPECT_EQ(TraceCrc32c(0, "123456789", 9), 0xE3069283u);
  // Chained equals whole.
  EXPECT_EQ(TraceCrc32c(TraceCrc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
}

TEST(TraceCodecTest, RoundTripsEveryKind) {
  Fixture f;
  const std::vector<uint8_t> bytes = f.Encode();
  const std::vector<TraceRecord> want = f.Records();
  TraceReader r(bytes.data(), bytes.size());
  TraceRecord got;
  ASSERT_EQ(r.Start(&got), TraceStatus::kOk) << r.error().what;
  EXPECT_EQ(got.header.origin, TraceOrigin::kForkChild);
  EXPECT_EQ(got.header.pid, 1234u);
  EXPECT_EQ(got.header.exec_index, 2u);
  EXPECT_EQ(S(got.header.argv), f.argv);
  EXPECT_EQ(S(got.header.parent_trace), f.parent);
  EXPECT_EQ(got.header.parent_fork_point, 3u);
  EXPECT_EQ(got.header.params.mmap_base, 0x7fff00000000u);
  EXPECT_EQ(got.header.params.rlimit_as, kUnlimited);
  EXPECT_EQ(got.header.params.max_pkey, 1);
  EXPECT_EQ(got.header.params.overcommit_memory, 2);
  EXPECT_EQ(got.header.max_frames, 8);
  EXPECT_EQ(got.offset, kTracePrefixSize);

  ASSERT_EQ(r.Next(&got), TraceStatus::kOk);
  EXPECT_EQ(got.seed.reason, TraceSeedReason::kBeforeEvent);
  EXPECT_EQ(S(got.seed.maps), f.maps);
  EXPECT_EQ(S(got.seed.smaps), f.smaps);
  ASSERT_EQ(r.Next(&got), TraceStatus::kOk);
  EXPECT_EQ(got.learn.start, 0x7f0000000000u);
  EXPECT_EQ(got.learn.context, TraceLearnContext::kSeed);
  ASSERT_EQ(r.Next(&got), TraceStatus::kOk);
  EXPECT_EQ(got.seed_state.brk, 0x55555557a000u);
  EXPECT_EQ(got.seed_state.lockall, 3);

  ASSERT_EQ(r.Next(&got), TraceStatus::kOk);
  const TraceEvent& e = got.event;
  const TraceEvent& w = want[4].event;
  EXPECT_EQ(e.call, TraceCall::kMmap);
  EXPECT_EQ(e.flags & ~kEventModelRetDiffers, w.flags);
  EXPECT_TRUE(e.flags & kEventModelRetDiffers);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(e.args[i], w.args[i]) << i;
  EXPECT_EQ(e.kernel_ret, w.kernel_ret);
  EXPECT_EQ(e.model_ret, -12);
  EXPECT_EQ(e.tid, 1235u);
  EXPECT_EQ(e.time_ns, 5000001000u);
  EXPECT_EQ(e.duration_ns, 777u);
  ASSERT_EQ(e.nframes, 3);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(e.frames[i], w.frames[i]);
  EXPECT_EQ(e.file.id, w.file.id);
  EXPECT_EQ(e.file.inode, 99u);
  EXPECT_EQ(e.file.dev_major, 254u);
  EXPECT_EQ(e.file.kind, FileKind::kRegularThp);
  EXPECT_EQ(e.file.bits, kFileReadable | kFileDeleted);
  EXPECT_EQ(S(e.file.path), f.path);
  EXPECT_EQ(e.kernel_addr, 0x40000000u);
  EXPECT_EQ(e.shmem.inode, 4242u);

  ASSERT_EQ(r.Next(&got), TraceStatus::kOk);
  EXPECT_EQ(got.event.call, TraceCall::kMunmap);
  EXPECT_EQ(got.event.model_ret, 0);
  EXPECT_EQ(got.event.time_ns, 5000000900u);
  EXPECT_EQ(got.event.nframes, 0);

  ASSERT_EQ(r.Next(&got), TraceStatus::kOk);
  EXPECT_EQ(got.reconcile.observed_start, 0x7ffffffdd000u);
  ASSERT_EQ(r.Next(&got), TraceStatus::kOk);
  EXPECT_EQ(got.check.kind, TraceCheckKind::kRange);
  EXPECT_TRUE(got.check.equal);
  EXPECT_EQ(got.check.lines, 3u);
  EXPECT_EQ(got.check.kernel_hash, 0x1122334455667788u);
  ASSERT_EQ(r.Next(&got), TraceStatus::kOk);
  EXPECT_EQ(got.check.kind, TraceCheckKind::kFull);
  EXPECT_FALSE(got.check.equal);
  EXPECT_EQ(got.check.kernel_len, 5000u);
  EXPECT_EQ(got.check.model_len, 4990u);
  ASSERT_EQ(r.Next(&got), TraceStatus::kOk);
  EXPECT_EQ(S(got.note.what), f.what);
  EXPECT_EQ(S(got.note.kernel), f.line_k);
  ASSERT_EQ(r.Next(&got), TraceStatus::kOk);
  EXPECT_EQ(got.fork_point.ordinal, 1u);
  EXPECT_EQ(got.fork_point.time_ns, 5000002000u);
  ASSERT_EQ(r.Next(&got), TraceStatus::kOk);
  EXPECT_EQ(S(got.image_end.reason), "exit");
  EXPECT_EQ(got.image_end.time_ns, 5000003000u);
  EXPECT_EQ(r.Next(&got), TraceStatus::kEnd);
  EXPECT_EQ(r.Next(&got), TraceStatus::kEnd);
  EXPECT_EQ(r.offset(), bytes.size());
  EXPECT_EQ(r.records(), want.size());
}

TEST(TraceCodecTest, SeedPrefixMatchesGenericEncoder) {
  Fixture f;
  TraceRecord seed = f.Records()[1];
  TraceCodecState st;
  uint8_t whole[4096];
  const size_t n = EncodeTraceRecord(&st, seed, whole, sizeof(whole));
  ASSERT_GT(n, 0u);
  uint8_t prefix[32];
  const size_t p = EncodeSeedPrefix(seed.seed.reason, f.maps.size(), f.smaps.size(), prefix, 32);
  ASSERT_GT(p, 0u);
  uint32_t crc = TraceCrc32c(0, prefix, p);
  crc = TraceCrc32c(crc, f.maps.data(), f.maps.size());
  crc = TraceCrc32c(crc, f.smaps.data(), f.smaps.size());
  std::vector<uint8_t> pieces(prefix, prefix + p);
  pieces.insert(pieces.end(), f.maps.begin(), f.maps.end());
  pieces.insert(pieces.end(), f.smaps.begin(), f.smaps.end());
  uint8_t tail[4];
  EncodeTraceCrc(crc, tail);
  pieces.insert(pieces.end(), tail, tail + 4);
  EXPECT_EQ(pieces, std::vector<uint8_t>(whole, whole + n));
}

TEST(TraceCodecTest, TooSmallBufferWritesNothing) {
  Fixture f;
  TraceCodecState st;
  st.last_time_ns = 42;
  const TraceRecord ev = f.Records()[4];
  uint8_t buf[4096];
  for (size_t cap = 0; cap < 40; ++cap) {
    EXPECT_EQ(EncodeTraceRecord(&st, ev, buf, cap), 0u) << cap;
    EXPECT_EQ(st.last_time_ns, 42u);
  }
}

TEST(TraceCodecTest, EveryTruncationIsReportedWithAnOffset) {
  Fixture f;
  const std::vector<uint8_t> bytes = f.Encode();
  // Record boundaries: a cut there is a clean end.
  std::vector<uint64_t> bounds;
  {
    TraceReader r(bytes.data(), bytes.size());
    TraceRecord rec;
    ASSERT_EQ(r.Start(&rec), TraceStatus::kOk);
    bounds.push_back(r.offset());
    while (r.Next(&rec) == TraceStatus::kOk) bounds.push_back(r.offset());
  }
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    TraceReader r(bytes.data(), cut);
    TraceRecord rec;
    TraceStatus s = r.Start(&rec);
    while (s == TraceStatus::kOk) s = r.Next(&rec);
    const bool boundary = std::find(bounds.begin(), bounds.end(), cut) != bounds.end();
    if (boundary) {
      EXPECT_EQ(s, TraceStatus::kEnd) << "cut at " << cut;
    } else {
      EXPECT_EQ(s, TraceStatus::kTruncated) << "cut at " << cut << ": " << r.error().what;
      EXPECT_LE(r.error().offset, cut);
      // The truncated record starts at the last boundary before the cut.
      if (cut >= kTracePrefixSize) {
        uint64_t last = kTracePrefixSize;
        for (uint64_t b : bounds)
          if (b <= cut) last = b;
        EXPECT_EQ(r.error().offset, last) << "cut at " << cut;
      }
    }
  }
}

TEST(TraceCodecTest, EveryBitFlipIsCaught) {
  Fixture f;
  const std::vector<uint8_t> bytes = f.Encode();
  int caught = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::vector<uint8_t> bad = bytes;
      bad[i] ^= static_cast<uint8_t>(1 << bit);
      TraceReader r(bad.data(), bad.size());
      TraceRecord rec;
      TraceStatus s = r.Start(&rec);
      while (s == TraceStatus::kOk) s = r.Next(&rec);
      // A flipped bit is never accepted: the prefix is checked, and every
      // record byte is under a CRC (a flip in a length byte may read as a
      // truncation instead).
      EXPECT_NE(s, TraceStatus::kEnd) << "byte " << i << " bit " << bit;
      EXPECT_LE(r.error().offset, bad.size());
      ++caught;
    }
  }
  EXPECT_EQ(caught, static_cast<int>(bytes.size() * 8));
}

TEST(TraceCodecTest, RejectsWrongMagicAndVersion) {
  Fixture f;
  std::vector<uint8_t> bytes = f.Encode();
  TraceRecord rec;
  {
    std::vector<uint8_t> bad = bytes;
    bad[0] = 'X';
    TraceReader r(bad.data(), bad.size());
    EXPECT_EQ(r.Start(&rec), TraceStatus::kCorrupt);
    EXPECT_EQ(r.error().offset, 0u);
  }
  {
    std::vector<uint8_t> bad = bytes;
    bad[8] = 2;
    TraceReader r(bad.data(), bad.size());
    EXPECT_EQ(r.Start(&rec), TraceStatus::kCorrupt);
    EXPECT_EQ(r.error().offset, 8u);
    EXPECT_EQ(r.error().detail[0], 2u);
  }
  {
    TraceReader r(bytes.data(), 0);
    EXPECT_EQ(r.Start(&rec), TraceStatus::kTruncated);
    EXPECT_STREQ(r.error().what, "the file is empty");
  }
}

// A record whose CRC is right but whose fields are not: the decoder names
// the field's offset.
TEST(TraceCodecTest, ValidChecksumBadFieldsAreCorrupt) {
  auto make = [](std::vector<uint8_t> payload, uint8_t kind) {
    std::vector<uint8_t> out(kTracePrefixSize);
    EncodeTracePrefix(out.data(), out.size());
    // A minimal header first.
    TraceRecord h;
    h.kind = TraceRecordKind::kHeader;
    TraceCodecState st;
    uint8_t buf[512];
    const size_t n = EncodeTraceRecord(&st, h, buf, sizeof(buf));
    out.insert(out.end(), buf, buf + n);
    std::vector<uint8_t> rec = {kind, static_cast<uint8_t>(payload.size())};
    rec.insert(rec.end(), payload.begin(), payload.end());
    uint8_t crc[4];
    EncodeTraceCrc(TraceCrc32c(0, rec.data(), rec.size()), crc);
    rec.insert(rec.end(), crc, crc + 4);
    out.insert(out.end(), rec.begin(), rec.end());
    return out;
  };
  const std::vector<std::vector<uint8_t>> payloads = {
      {99},                                   // EVENT: unknown call
      {0, 0x80, 0x80, 0x04},                  // EVENT: unknown flag bits
      {0, 0, 1, 2, 3, 4, 5, 6, 0, 0, 0, 17},  // EVENT: 17 frames
      {0, 0, 1, 2, 3},                        // EVENT: truncated fields
      {0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},  // long varint
  };
  for (const auto& p : payloads) {
    std::vector<uint8_t> bytes = make(p, static_cast<uint8_t>(TraceRecordKind::kEvent));
    TraceReader r(bytes.data(), bytes.size());
    TraceRecord rec;
    ASSERT_EQ(r.Start(&rec), TraceStatus::kOk);
    EXPECT_EQ(r.Next(&rec), TraceStatus::kCorrupt);
    EXPECT_GT(r.error().offset, kTracePrefixSize);
    EXPECT_LT(r.error().offset, bytes.size());
  }
  // Trailing bytes after a LEARN_FAULTED's fields.
  std::vector<uint8_t> bytes =
      make({1, 0, 7}, static_cast<uint8_t>(TraceRecordKind::kLearnFaulted));
  TraceReader r(bytes.data(), bytes.size());
  TraceRecord rec;
  ASSERT_EQ(r.Start(&rec), TraceStatus::kOk);
  EXPECT_EQ(r.Next(&rec), TraceStatus::kCorrupt);
  EXPECT_STREQ(r.error().what, "record has bytes after its last field");
  // A second HEADER.
  TraceRecord h;
  h.kind = TraceRecordKind::kHeader;
  TraceCodecState st;
  uint8_t buf[512];
  const size_t n = EncodeTraceRecord(&st, h, buf, sizeof(buf));
  std::vector<uint8_t> two = make({1, 0}, static_cast<uint8_t>(TraceRecordKind::kLearnFaulted));
  two.insert(two.end(), buf, buf + n);
  TraceReader r2(two.data(), two.size());
  ASSERT_EQ(r2.Start(&rec), TraceStatus::kOk);
  ASSERT_EQ(r2.Next(&rec), TraceStatus::kOk);
  EXPECT_EQ(r2.Next(&rec), TraceStatus::kCorrupt);
}

TEST(TraceCodecTest, HashLineSeparatesLines) {
  const uint64_t ab_c = TraceHashLine(TraceHashLine(kTraceHashInit, "ab", 2), "c", 1);
  const uint64_t a_bc = TraceHashLine(TraceHashLine(kTraceHashInit, "a", 1), "bc", 2);
  EXPECT_NE(ab_c, a_bc);
  EXPECT_NE(TraceHashLine(kTraceHashInit, "", 0), kTraceHashInit);
}

}  // namespace
}  // namespace vmashadow
