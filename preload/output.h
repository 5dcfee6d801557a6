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

#include "core/abi/errno_name.h"
#include "preload/raw_syscall.h"

namespace vmashadow::preload {

// --- Our own stderr. ---
//
// Messages never go to whatever fd 2 is when we print: a program that closed
// its descriptors and opened a data file under 2 would get our text in its
// data. At start-up each image duplicates fd 2 (F_DUPFD_CLOEXEC, high up)
// and remembers its (dev, inode); every write first checks that the
// descriptor still is that file (else, when fd 2 still is, it is used; else
// the message is dropped). A write to a pipe whose reader is gone raises
// SIGPIPE: we block it around the write and take back the one our write
// made, so it never reaches the program; sockets are written with
// MSG_NOSIGNAL. After EPIPE nothing more is written.
struct OwnStderr {
  int fd;
  uint64_t dev;
  uint64_t ino;
  uint32_t mode;
  bool dead;
};
inline OwnStderr g_own_stderr = {-1, 0, 0, 0, false};

// struct stat as the x86-64 kernel's fstat fills it (144 bytes).
struct RawStat {
  uint64_t dev;
  uint64_t ino;
  uint64_t nlink;
  uint32_t mode;
  uint32_t uid;
  uint32_t gid;
  uint32_t pad0;
  uint64_t rdev;
  int64_t size;
  int64_t blksize;
  int64_t blocks;
  uint64_t times[6];
  int64_t unused[3];
};
static_assert(sizeof(RawStat) == 144, "x86-64 struct stat");

inline constexpr uint32_t kSIfmt = 0170000;
inline constexpr uint32_t kSIfifo = 0010000;
inline constexpr uint32_t kSIfsock = 0140000;
inline constexpr uint32_t kSIfreg = 0100000;
inline constexpr int kFDupfdCloexecCmd = 1030;

inline bool RawFstat(int fd, RawStat* st) { return RawSyscall6(kSysFstat, U(fd), U(st)) == 0; }

// Duplicates fd 2 above the numbers programs use (900, else 100, else
// anywhere) and remembers what it is. Called once per image at start-up.
inline void InitOwnStderr() {
  g_own_stderr = {-1, 0, 0, 0, false};
  RawStat st;
  if (!RawFstat(2, &st)) return;
  int64_t fd = -1;
  static constexpr int kAt[] = {900, 100, 3};
  for (int at : kAt) {
    fd = RawSyscall6(kSysFcntl, 2, U(kFDupfdCloexecCmd), U(at));
    if (fd >= 0) break;
  }
  if (fd < 0) return;
  g_own_stderr = {static_cast<int>(fd), st.dev, st.ino, st.mode, false};
}

// The descriptor to write our messages to now, or -1.
inline int OwnStderrFd() {
  const OwnStderr& e = g_own_stderr;
  if (e.fd < 0 || e.dead) return -1;
  RawStat st;
  if (RawFstat(e.fd, &st) && st.dev == e.dev && st.ino == e.ino) return e.fd;
  if (RawFstat(2, &st) && st.dev == e.dev && st.ino == e.ino) return 2;
  return -1;
}

// One write(2) of our messages; the kernel's result (-EBADF when there is
// nowhere to write).
inline int64_t OwnStderrWrite(const char* p, size_t n) {
  const int fd = OwnStderrFd();
  if (fd < 0) return -9;  // EBADF
  const uint32_t type = g_own_stderr.mode & kSIfmt;
  int64_t r;
  if (type == kSIfsock) {
    constexpr long kSysSendto = 44;
    constexpr int kMsgNosignal = 0x4000;
    r = RawSyscall6(kSysSendto, U(fd), U(p), n, U(kMsgNosignal), 0, 0);
  } else if (type == kSIfifo) {
    constexpr uint64_t kPipeBit = uint64_t{1} << (13 - 1);  // SIGPIPE
    uint64_t old_mask = 0;
    uint64_t block = kPipeBit;
    RawSyscall6(kSysRtSigprocmask, 0 /* SIG_BLOCK */, U(&block), U(&old_mask), 8);
    uint64_t pending = 0;
    RawSyscall6(kSysRtSigpending, U(&pending), 8);
    r = RawSyscall6(kSysWrite, U(fd), U(p), n);
    if (r == -32 /* EPIPE */ && (pending & kPipeBit) == 0) {
      constexpr long kSysRtSigtimedwait = 128;
      struct {
        int64_t sec;
        int64_t nsec;
      } zero = {0, 0};
      uint64_t set = kPipeBit;
      RawSyscall6(kSysRtSigtimedwait, U(&set), 0, U(&zero), 8);
    }
    RawSyscall6(kSysRtSigprocmask, 2 /* SIG_SETMASK */, U(&old_mask), 0, 8);
  } else {
    r = RawSyscall6(kSysWrite, U(fd), U(p), n);
  }
  if (r == -32) g_own_stderr.dead = true;
  return r;
}

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

// Writes to our own stderr (above), to a file descriptor, or, with an
// offset, in place into a file (pwrite: reports are rewritten where they are).
class Writer {
 public:
  static constexpr int kOwnStderr = -2;
  explicit Writer(int fd = kOwnStderr) : fd_(fd) {}
  Writer(int fd, uint64_t offset) : fd_(fd), positional_(true), pos_(offset) {}
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
      int64_t r;
      if (fd_ == kOwnStderr) {
        r = OwnStderrWrite(buf_ + off, len_ - off);
      } else if (positional_) {
        constexpr long kSysPwrite64 = 18;
        r = RawSyscall6(kSysPwrite64, U(fd_), U(buf_ + off), len_ - off, pos_);
        if (r > 0) pos_ += static_cast<uint64_t>(r);
      } else {
        r = RawWrite(fd_, buf_ + off, len_ - off);
      }
      if (r == -4) continue;  // EINTR
      if (r <= 0) {
        failed_ = true;
        error_ = r < 0 ? r : -28;  // a write of 0 bytes: no space
        break;
      }
      off += static_cast<size_t>(r);
    }
    len_ = 0;
    return !failed_;
  }
  bool failed() const { return failed_; }
  // With an offset: where the next byte goes (after Flush, the end written).
  uint64_t position() const { return pos_ + len_; }
  int64_t error() const { return error_; }

 private:
  int fd_;
  bool positional_ = false;
  uint64_t pos_ = 0;
  int64_t error_ = 0;
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
