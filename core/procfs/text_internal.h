// text_internal.h — what core/procfs/*.cc share: a snprintf-like sink,
// small byte-string helpers and the smaps VmFlags reader. Only
// core/procfs/*.cc include this.
#ifndef VMASHADOW_CORE_PROCFS_TEXT_INTERNAL_H_
#define VMASHADOW_CORE_PROCFS_TEXT_INTERNAL_H_

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace vmashadow::procfs_detail {

// A snprintf-like sink: counts every byte, stores those that fit.
class Sink {
 public:
  Sink(char* buf, size_t cap) : buf_(buf), cap_(cap) {}

  void Put(char c) {
    if (len_ < cap_) buf_[len_] = c;
    ++len_;
  }
  void Put(const char* s, size_t n) {
    for (size_t i = 0; i < n; ++i) Put(s[i]);
  }
  // Lowercase hex, zero-padded to at least min_width digits (seq_put_hex_ll).
  void PutHex(uint64_t v, int min_width) {
    char tmp[16];
    int n = 0;
    do {
      tmp[n++] = "0123456789abcdef"[v & 0xf];
      v >>= 4;
    } while (v != 0);
    for (int i = n; i < min_width; ++i) Put('0');
    while (n > 0) Put(tmp[--n]);
  }
  // Decimal without padding (seq_put_decimal_ull).
  void PutDec(uint64_t v) {
    char tmp[20];
    int n = 0;
    do {
      tmp[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    while (n > 0) Put(tmp[--n]);
  }
  size_t len() const { return len_; }
  // NUL-terminates like snprintf: after the text when it fits, else in the
  // last byte of the buffer. Returns the untruncated length.
  size_t Finish() {
    if (cap_ > 0) buf_[len_ < cap_ ? len_ : cap_ - 1] = '\0';
    return len_;
  }

 private:
  char* buf_;
  size_t cap_;
  size_t len_ = 0;
};

inline size_t CStrLen(const char* s) {
  size_t n = 0;
  while (s[n] != '\0') ++n;
  return n;
}

inline bool BytesEqual(const char* a, size_t a_len, const char* b, size_t b_len) {
  return a_len == b_len && (a_len == 0 || std::memcmp(a, b, a_len) == 0);
}

inline bool StartsWith(const char* s, size_t len, const char* prefix) {
  const size_t n = CStrLen(prefix);
  return len >= n && std::memcmp(s, prefix, n) == 0;
}

// Finds the smaps block whose header starts with `prefix` ("start-end "),
// searching from *cursor and then wrapping around, and reads its VmFlags (and
// ProtectionKey, when printed) into *flags. Moves *cursor past the block.
// Returns 0, -ENOENT when there is no such block or it has no VmFlags line,
// -EINVAL when VmFlags holds a mnemonic we do not know (maps_text.cc).
int SmapsFlags(const char* smaps, size_t smaps_len, size_t* cursor, const char* prefix,
               size_t prefix_len, uint64_t* flags);

}  // namespace vmashadow::procfs_detail

#endif  // VMASHADOW_CORE_PROCFS_TEXT_INTERNAL_H_
