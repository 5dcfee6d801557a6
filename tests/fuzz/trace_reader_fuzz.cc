// trace_reader_fuzz.cc — fuzz target for the trace decoder
// (core/trace/trace_codec.h): any bytes must decode to records or to an error
// naming an offset inside the input, never a crash, an out-of-bounds read
// or a hang.
//
// Each input is decoded as it is, and again after its records' CRCs are
// recomputed, so that mutated payloads reach the field decoders instead of
// stopping at the checksum. Every record that decodes is re-encoded and
// decoded again; the two must agree.
//
// Built two ways (tests/meson.build): with clang's libFuzzer
// (-fsanitize=fuzzer,address,undefined) when clang is installed, and always
// with the project's compiler and the deterministic driver below
// (VMASHADOW_FUZZ_MAIN): seed traces made with the encoder, then random
// mutations (bit flips, byte writes, cuts, splices, duplicated ranges) from a
// fixed seed. --write-seeds=DIR writes the seed traces for libFuzzer.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/trace/trace_codec.h"

namespace {

using vmashadow::TraceCodecState;
using vmashadow::TraceReader;
using vmashadow::TraceRecord;
using vmashadow::TraceRecordKind;
using vmashadow::TraceStatus;

[[noreturn]] void Fail(const char* what, uint64_t offset) {
  std::fprintf(stderr, "trace_reader_fuzz: %s (record at %llu)\n", what,
               static_cast<unsigned long long>(offset));
  std::abort();
}

void CheckRoundTrip(TraceCodecState* st, const TraceRecord& rec) {
  static std::vector<uint8_t> buf(size_t{4} << 20);
  if (rec.size + 64 > buf.size()) return;
  TraceCodecState before = *st;
  const size_t n = vmashadow::EncodeTraceRecord(st, rec, buf.data(), buf.size());
  if (n == 0) Fail("a decoded record does not encode", rec.offset);
  // Decode it again behind a prefix and (unless it is one) a header.
  std::vector<uint8_t> file(vmashadow::kTracePrefixSize);
  vmashadow::EncodeTracePrefix(file.data(), file.size());
  TraceRecord h;
  h.kind = TraceRecordKind::kHeader;
  h.header.monotonic_ns = before.last_time_ns;
  TraceCodecState hs;
  uint8_t hb[256];
  if (rec.kind != TraceRecordKind::kHeader) {
    const size_t hn = vmashadow::EncodeTraceRecord(&hs, h, hb, sizeof(hb));
    file.insert(file.end(), hb, hb + hn);
  }
  file.insert(file.end(), buf.data(), buf.data() + n);
  TraceReader r(file.data(), file.size());
  TraceRecord back;
  if (r.Start(&back) != TraceStatus::kOk) Fail("re-encoded record does not decode", rec.offset);
  if (rec.kind != TraceRecordKind::kHeader && r.Next(&back) != TraceStatus::kOk) {
    Fail("re-encoded record does not decode", rec.offset);
  }
  if (back.kind != rec.kind) Fail("re-encoded record changed kind", rec.offset);
  if (rec.kind == TraceRecordKind::kEvent) {
    const auto& a = rec.event;
    const auto& b = back.event;
    if (a.call != b.call || a.kernel_ret != b.kernel_ret || a.model_ret != b.model_ret ||
        a.nframes != b.nframes || a.time_ns != b.time_ns ||
        memcmp(a.args, b.args, sizeof(a.args)) ||
        memcmp(a.frames, b.frames, sizeof(a.frames[0]) * a.nframes) ||
        a.file.path.len != b.file.path.len) {
      Fail("re-encoded EVENT differs", rec.offset);
    }
  }
}

void DecodeAll(const uint8_t* data, size_t size) {
  TraceReader r(data, size);
  TraceRecord rec;
  TraceCodecState st;
  TraceStatus s = r.Start(&rec);
  uint64_t last = 0;
  while (s == TraceStatus::kOk) {
    if (rec.offset + rec.size > size || rec.offset < last)
      Fail("record outside the input", rec.offset);
    last = rec.offset + rec.size;
    CheckRoundTrip(&st, rec);
    s = r.Next(&rec);
  }
  if (r.error().offset > size) Fail("error offset outside the input", r.error().offset);
  if (s != TraceStatus::kEnd && r.error().what == nullptr) Fail("error without a text", 0);
}

// Recomputes the CRC of every record whose length fits.
void FixCrcs(std::vector<uint8_t>* buf) {
  size_t pos = vmashadow::kTracePrefixSize;
  while (pos < buf->size()) {
    size_t p = pos + 1;
    uint64_t len = 0;
    int shift = 0;
    while (p < buf->size() && shift < 35) {
      const uint8_t b = (*buf)[p++];
      len |= static_cast<uint64_t>(b & 0x7f) << shift;
      shift += 7;
      if ((b & 0x80) == 0) break;
    }
    if (len > buf->size() || p + len + 4 > buf->size()) return;
    const uint32_t crc = vmashadow::TraceCrc32c(0, buf->data() + pos, p + len - pos);
    vmashadow::EncodeTraceCrc(crc, buf->data() + p + len);
    pos = p + len + 4;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  DecodeAll(data, size);
  std::vector<uint8_t> fixed(data, data + size);
  FixCrcs(&fixed);
  DecodeAll(fixed.data(), fixed.size());
  return 0;
}

#ifdef VMASHADOW_FUZZ_MAIN
namespace {

vmashadow::TraceBytes B(const char* s) { return vmashadow::TraceBytes{s, strlen(s)}; }

// Seed traces with every record kind.
std::vector<std::vector<uint8_t>> Seeds() {
  using namespace vmashadow;
  std::vector<std::vector<uint8_t>> out;
  for (int variant = 0; variant < 3; ++variant) {
    std::vector<uint8_t> f(kTracePrefixSize);
    EncodeTracePrefix(f.data(), f.size());
    TraceCodecState st;
    auto add = [&](const TraceRecord& r) {
      uint8_t buf[8192];
      const size_t n = EncodeTraceRecord(&st, r, buf, sizeof(buf));
      f.insert(f.end(), buf, buf + n);
    };
    TraceRecord h;
    h.kind = TraceRecordKind::kHeader;
    h.header.origin = variant == 2 ? TraceOrigin::kForkChild : TraceOrigin::kRoot;
    h.header.pid = 100 + variant;
    h.header.kernel_release = B("6.18.44-fc");
    h.header.profile = B("6.18-fc");
    h.header.check = B("every");
    h.header.argv = B("prog");
    h.header.monotonic_ns = 1000000;
    h.header.max_frames = 8;
    h.header.parent_trace = B("/tmp/parent");
    h.header.parent_fork_point = 1;
    add(h);
    TraceRecord seed;
    seed.kind = TraceRecordKind::kSeed;
    seed.seed.maps = B("00400000-00401000 r-xp 00000000 fe:01 12  /bin/x\n");
    seed.seed.smaps = B("VmFlags: rd ex mr mw me \n");
    add(seed);
    TraceRecord learn;
    learn.kind = TraceRecordKind::kLearnFaulted;
    learn.learn.start = 0x400000;
    add(learn);
    TraceRecord ss;
    ss.kind = TraceRecordKind::kSeedState;
    ss.seed_state.brk = 0x600000;
    add(ss);
    for (int i = 0; i < 4 + variant; ++i) {
      TraceRecord e;
      e.kind = TraceRecordKind::kEvent;
      e.event.call = static_cast<TraceCall>(i % 13);
      e.event.flags = kEventTrapped | (i % 2 ? kEventHasFile | kEventHasShmem : kEventHasDuration);
      e.event.args[0] = 0x7f0000000000 + 0x1000 * i;
      e.event.args[1] = 0x1000;
      e.event.kernel_ret = i % 3 ? 0 : -12;
      e.event.model_ret = i % 4 ? e.event.kernel_ret : 7;
      e.event.time_ns = 1000000 + 500 * i;
      e.event.nframes = static_cast<uint8_t>(i % 5);
      for (int k = 0; k < e.event.nframes; ++k) e.event.frames[k] = 0x555555554000 + 16 * k;
      e.event.file.path = B("/lib/libc.so.6");
      add(e);
    }
    TraceRecord c;
    c.kind = TraceRecordKind::kCheck;
    c.check.lines = 3;
    add(c);
    TraceRecord note;
    note.kind = TraceRecordKind::kNote;
    note.note.what = B("range check");
    add(note);
    TraceRecord fp;
    fp.kind = TraceRecordKind::kForkPoint;
    fp.fork_point.ordinal = 1;
    fp.fork_point.time_ns = 1100000;
    add(fp);
    TraceRecord rc;
    rc.kind = TraceRecordKind::kReconcile;
    add(rc);
    TraceRecord end;
    end.kind = TraceRecordKind::kImageEnd;
    end.image_end.reason = B("exit");
    end.image_end.time_ns = 1200000;
    add(end);
    out.push_back(std::move(f));
  }
  return out;
}

uint64_t g_rng = 0x9e3779b97f4a7c15;
uint64_t Rand() {
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return g_rng;
}

void Mutate(std::vector<uint8_t>* b) {
  const int ops = 1 + static_cast<int>(Rand() % 4);
  for (int i = 0; i < ops && !b->empty(); ++i) {
    const size_t at = Rand() % b->size();
    switch (Rand() % 7) {
      case 0:
        (*b)[at] ^= static_cast<uint8_t>(1 << (Rand() % 8));
        break;
      case 1:
        (*b)[at] = static_cast<uint8_t>(Rand());
        break;
      case 2:
        (*b)[at] = static_cast<uint8_t>(Rand() % 2 ? 0xff : 0x80);
        break;
      case 3:
        b->resize(at);
        break;
      case 4: {
        const size_t n = std::min<size_t>(b->size() - at, 1 + Rand() % 32);
        std::vector<uint8_t> piece(b->begin() + static_cast<long>(at),
                                   b->begin() + static_cast<long>(at + n));
        b->insert(b->begin() + static_cast<long>(Rand() % b->size()), piece.begin(), piece.end());
        break;
      }
      case 5:
        b->erase(b->begin() + static_cast<long>(at),
                 b->begin() + static_cast<long>(std::min(b->size(), at + 1 + Rand() % 16)));
        break;
      default:
        b->insert(b->begin() + static_cast<long>(at), static_cast<uint8_t>(Rand()));
        break;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  long iterations = 20000;
  for (int i = 1; i < argc; ++i) {
    if (strncmp(argv[i], "--iterations=", 13) == 0) {
      iterations = atol(argv[i] + 13);
    } else if (strncmp(argv[i], "--seed=", 7) == 0) {
      g_rng = strtoull(argv[i] + 7, nullptr, 0) | 1;
    } else if (strncmp(argv[i], "--write-seeds=", 14) == 0) {
      int k = 0;
      for (const auto& s : Seeds()) {
        const std::string path = std::string(argv[i] + 14) + "/seed" + std::to_string(k++);
        FILE* f = fopen(path.c_str(), "wb");
        if (f == nullptr) return 1;
        fwrite(s.data(), 1, s.size(), f);
        fclose(f);
      }
      return 0;
    } else {
      std::fprintf(stderr,
                   "usage: trace_reader_fuzz [--iterations=N] [--seed=S] [--write-seeds=DIR]\n");
      return 2;
    }
  }
  const auto seeds = Seeds();
  for (const auto& s : seeds) LLVMFuzzerTestOneInput(s.data(), s.size());
  std::vector<uint8_t> cur;
  for (long i = 0; i < iterations; ++i) {
    if (i % 16 == 0) cur = seeds[Rand() % seeds.size()];
    Mutate(&cur);
    LLVMFuzzerTestOneInput(cur.data(), cur.size());
  }
  std::printf("trace_reader_fuzz: %ld mutated inputs decoded (seeds %zu), no failure\n", iterations,
              seeds.size());
  return 0;
}
#endif  // VMASHADOW_FUZZ_MAIN
