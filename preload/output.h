// output.h — allocation-free text output for the preload: a small buffered
// writer on a file descriptor (stderr, or a report file) with decimal, hex
// and JSON-string formatting. Everything goes out through raw write(2), so a
// Writer may be used under the model lock and in signal handlers (each one
// owns its buffer on the stack). No locale, no printf, no allocation.
#ifndef VMASHADOW_PRELOAD_OUTPUT_H_
#define VMASHADOW_PRELOAD_OUTPUT_H_

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "core/errno_name.h"
#include "preload/raw_syscall.h"

namespace vmashadow::preload {

// v's digits, most significant first, into out (24 bytes suffice); returns
// how many. Hex has no "0x" prefix.
inline size_t FormatUdec(uint64_t v, char* out) {
  char tmp[24];
  size_t n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (size_t i = 0; i < n; ++i) out[i] = tmp[n - 1 - i];
  return n;
}

inline size_t FormatHex(uint64_t v, char* out) {
  char tmp[16];
  size_t n = 0;
  do {
    tmp[n++] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v != 0);
  for (size_t i = 0; i < n; ++i) out[i] = tmp[n - 1 - i];
  return n;
}

class Writer {
 public:
  explicit Writer(int fd = 2) : fd_(fd) {}
  ~Writer() { Flush(); }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  Writer& Mem(const char* s, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      if (len_ == sizeof(buf_)) Flush();
      buf_[len_++] = s[i];
    }
    return *this;
  }
  Writer& Str(const char* s) { return Mem(s, strlen(s)); }
  Writer& Ch(char c) { return Mem(&c, 1); }
  Writer& Udec(uint64_t v) {
    char digits[24];
    return Mem(digits, FormatUdec(v, digits));
  }
  Writer& Dec(int64_t v) {
    if (v < 0) {
      Ch('-');
      return Udec(uint64_t{0} - static_cast<uint64_t>(v));
    }
    return Udec(static_cast<uint64_t>(v));
  }
  Writer& Hex(uint64_t v) {
    char digits[16];
    return Str("0x").Mem(digits, FormatHex(v, digits));
  }
  // A syscall result: "-ENOMEM" (or "-133") for an error, hex otherwise.
  Writer& Ret(int64_t v) {
    if (v >= 0 || v < -4095) return Hex(static_cast<uint64_t>(v));
    const char* name = ErrnoName(static_cast<int>(-v));
    return name != nullptr ? Str("-").Str(name) : Dec(v);
  }
  // The text up to (not including) the first '\n'.
  Writer& Line(const char* s, size_t n) {
    const void* nl = memchr(s, '\n', n);
    return Mem(s, nl != nullptr ? static_cast<size_t>(static_cast<const char*>(nl) - s) : n);
  }
  // A JSON string literal (quotes included) of n bytes of s.
  Writer& Json(const char* s, size_t n) {
    Ch('"');
    for (size_t i = 0; i < n; ++i) {
      const unsigned char c = static_cast<unsigned char>(s[i]);
      if (c == '"' || c == '\\') {
        Ch('\\').Ch(static_cast<char>(c));
      } else if (c == '\n') {
        Str("\\n");
      } else if (c < 0x20 || c == 0x7f) {
        Str("\\u00").Ch("0123456789abcdef"[c >> 4]).Ch("0123456789abcdef"[c & 15]);
      } else {
        Ch(static_cast<char>(c));
      }
    }
    return Ch('"');
  }
  Writer& Json(const char* s) { return Json(s, strlen(s)); }
  // "key": (with a leading comma unless first).
  Writer& Key(const char* key, bool first = false) {
    if (!first) Ch(',');
    return Json(key).Ch(':');
  }
  bool Flush() {
    size_t off = 0;
    while (off < len_) {
      const int64_t r = RawWrite(fd_, buf_ + off, len_ - off);
      if (r == -4) continue;  // EINTR
      if (r <= 0) {
        failed_ = true;
        break;
      }
      off += static_cast<size_t>(r);
    }
    len_ = 0;
    return !failed_;
  }
  bool failed() const { return failed_; }

 private:
  int fd_;
  bool failed_ = false;
  size_t len_ = 0;
  char buf_[1024];
};

// Fixed-capacity string builder (for file names and sample text).
template <size_t N>
class Text {
 public:
  Text& Add(const char* s, size_t n) {
    for (size_t i = 0; i < n && len_ + 1 < N; ++i) buf_[len_++] = s[i];
    buf_[len_] = '\0';
    return *this;
  }
  Text& Add(const char* s) { return Add(s, strlen(s)); }
  Text& Udec(uint64_t v) {
    char digits[24];
    return Add(digits, FormatUdec(v, digits));
  }
  Text& Hex(uint64_t v) {
    char digits[16];
    return Add("0x").Add(digits, FormatHex(v, digits));
  }
  // A syscall result: "-ENOMEM" (or "-133") for an error, hex otherwise.
  Text& Ret(int64_t v) {
    if (v >= 0 || v < -4095) return Hex(static_cast<uint64_t>(v));
    const char* name = ErrnoName(static_cast<int>(-v));
    return name != nullptr ? Add("-").Add(name) : Add("-").Udec(static_cast<uint64_t>(-v));
  }
  void Clear() {
    len_ = 0;
    buf_[0] = '\0';
  }
  const char* c_str() const { return buf_; }
  size_t size() const { return len_; }

 private:
  size_t len_ = 0;
  char buf_[N] = {};
};

}  // namespace vmashadow::preload

#endif  // VMASHADOW_PRELOAD_OUTPUT_H_
