// trace_codec.h — encoding and decoding of the trace format (trace_format.h).
//
// The encoder writes into a caller buffer and never allocates, so the preload
// can use it under its lock and from its malloc-free paths; a SEED record's
// two texts can stay where they are (EncodeSeedPrefix + TraceCrc32c + the
// texts + EncodeTraceCrc, written with one writev). The decoder reads a trace
// held in memory, record by record, without allocating: strings point into
// the input. It never trusts the input: every length, count and enum is
// checked, and a bad record stops decoding with an error naming its byte
// offset (TraceError), never a crash.
//
// Depends on trace_format.h; preload-safe.
#ifndef VMASHADOW_CORE_TRACE_TRACE_CODEC_H_
#define VMASHADOW_CORE_TRACE_TRACE_CODEC_H_

#include <cstddef>
#include <cstdint>

#include "core/trace/trace_format.h"

namespace vmashadow {

// The state both sides carry from record to record: the last absolute time,
// against which EVENT, FORK_POINT and IMAGE_END store deltas. A HEADER sets
// it to its monotonic_ns.
struct TraceCodecState {
  uint64_t last_time_ns = 0;
};

// CRC-32C (Castagnoli) of data, continuing from crc (0 to start).
uint32_t TraceCrc32c(uint32_t crc, const void* data, size_t len);

// The hash CHECK records carry: 64-bit FNV-1a over each line's bytes
// followed by its length, chained from h (kTraceHashInit to start). An empty
// line (no VMA there) is hashed as length 0.
inline constexpr uint64_t kTraceHashInit = 0xcbf29ce484222325;
uint64_t TraceHashLine(uint64_t h, const char* line, size_t len);

// Writes the 16-byte file prefix. Returns 16, or 0 when cap is smaller.
size_t EncodeTracePrefix(uint8_t* buf, size_t cap);

// Encodes rec (rec.offset and rec.size are ignored) into buf. Returns the
// record's size, or 0 when it does not fit in cap; *state advances only on
// success. A HEADER resets *state.
size_t EncodeTraceRecord(TraceCodecState* state, const TraceRecord& rec, uint8_t* buf, size_t cap);

// The bytes of a SEED record that come before its maps text: kind, length,
// reason and both text lengths. The record is then the prefix, maps_len
// bytes of maps, smaps_len bytes of smaps and the 4-byte CRC over all three
// (EncodeTraceCrc). Returns the prefix length (at most 32), 0 when cap is
// too small or the texts are too long for one record.
size_t EncodeSeedPrefix(TraceSeedReason reason, size_t maps_len, size_t smaps_len, uint8_t* buf,
                        size_t cap);
// The CRC trailer of a record.
void EncodeTraceCrc(uint32_t crc, uint8_t out[4]);

enum class TraceStatus {
  kOk = 0,
  kEnd,        // the input ends on a record boundary
  kTruncated,  // the input ends inside a record (the writer was cut short)
  kCorrupt,    // bytes that are not a valid record (or not a trace)
};

// What stopped decoding. `what` is a static description; `detail` carries
// numbers some descriptions name (e.g. the stored and computed CRC).
struct TraceError {
  TraceStatus status = TraceStatus::kOk;
  uint64_t offset = 0;  // byte offset of the bad record (or field)
  const char* what = "";
  uint64_t detail[2] = {0, 0};
  int details = 0;  // how many of detail[] are meaningful
};

class TraceReader {
 public:
  // Reads [data, data + size); the memory must outlive the reader and the
  // records it returns.
  TraceReader(const void* data, size_t size);

  // Checks the prefix and decodes the HEADER record into *rec. kOk, or
  // kTruncated/kCorrupt (see error()).
  TraceStatus Start(TraceRecord* rec);
  // Decodes the next record. kOk, kEnd at a clean end of input, kTruncated
  // when the input ends inside a record, kCorrupt. After anything but kOk
  // it keeps returning the same status.
  TraceStatus Next(TraceRecord* rec);

  const TraceError& error() const { return error_; }
  // Bytes consumed so far (the offset of the next record).
  uint64_t offset() const { return pos_; }
  uint64_t size() const { return size_; }
  uint64_t records() const { return records_; }

 private:
  TraceStatus Fail(TraceStatus status, uint64_t offset, const char* what, int details = 0,
                   uint64_t a = 0, uint64_t b = 0);

  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
  uint64_t records_ = 0;
  bool started_ = false;
  TraceCodecState state_;
  TraceError error_;
};

}  // namespace vmashadow

#endif  // VMASHADOW_CORE_TRACE_TRACE_CODEC_H_
