// maps_text.cc — renders the model as /proc/self/maps text and reads maps (and
// smaps VmFlags) text back into a model.
//
// Rendering mirrors fs/proc/task_mmu.c (show_map_vma, show_vma_header_prefix,
// get_vma_name and show_smap_vma_flags, 6.12 and 6.18) byte for byte, with our
// own small hex/decimal writers: the printf family is avoided because it
// consults the locale and may allocate. Parsing is strict: it accepts exactly
// what the kernel prints (lowercase hex, minimum widths with no extra leading
// zeros, the name at its column), so that everything it accepts renders back
// to the same bytes.
//
// Depends on address_space.h and vma.h only; preload-safe: no allocation, no
// syscalls, nothing from the shared libstdc++.
#include "core/procfs/maps_text.h"

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "core/abi/no_syscalls.h"
#include "core/mm/address_space.h"
#include "core/mm/mm_types.h"

namespace vmashadow {
namespace {

// seq_setwidth(m, 25 + sizeof(void *) * 6 - 1) in show_vma_header_prefix: the
// name column is padded to this width, then one more space is written.
constexpr size_t kNameColumnWidth = 72;
constexpr char kDeletedSuffix[] = " (deleted)";
constexpr size_t kDeletedSuffixLen = sizeof(kDeletedSuffix) - 1;

// The gate VMA (arch/x86/entry/vsyscall/vsyscall_64.c).
constexpr uint64_t kGateStart = 0xffffffffff600000;
constexpr uint64_t kGateEnd = 0xffffffffff601000;
constexpr char kGateName[] = "[vsyscall]";

// Longest name SeedFromMaps copies (d_path works within one page).
constexpr size_t kMaxSeedName = 4096;

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

size_t CStrLen(const char* s) {
  size_t n = 0;
  while (s[n] != '\0') ++n;
  return n;
}

bool BytesEqual(const char* a, size_t a_len, const char* b, size_t b_len) {
  return a_len == b_len && (a_len == 0 || std::memcmp(a, b, a_len) == 0);
}

bool StartsWith(const char* s, size_t len, const char* prefix) {
  const size_t n = CStrLen(prefix);
  return len >= n && std::memcmp(s, prefix, n) == 0;
}

// What one line shows; the name is written verbatim unless escape_newline
// (seq_path's mangle_path with "\n": a newline in a path prints as \012).
struct LineFields {
  uint64_t start = 0;
  uint64_t end = 0;
  uint64_t flags = 0;
  uint64_t offset = 0;
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;
  uint64_t inode = 0;
  bool has_name = false;
  const char* name = "";
  size_t name_len = 0;
  bool escape_newline = false;
  bool deleted = false;
};

// Mirrors show_vma_header_prefix() + the naming tail of show_map_vma().
void RenderFields(const LineFields& f, Sink* out) {
  const size_t line_start = out->len();
  out->PutHex(f.start, 8);
  out->Put('-');
  out->PutHex(f.end, 8);
  out->Put(' ');
  out->Put((f.flags & kVmRead) ? 'r' : '-');
  out->Put((f.flags & kVmWrite) ? 'w' : '-');
  out->Put((f.flags & kVmExec) ? 'x' : '-');
  out->Put((f.flags & kVmMayShare) ? 's' : 'p');
  out->Put(' ');
  out->PutHex(f.offset, 8);
  out->Put(' ');
  out->PutHex(f.dev_major, 2);
  out->Put(':');
  out->PutHex(f.dev_minor, 2);
  out->Put(' ');
  out->PutDec(f.inode);
  out->Put(' ');
  if (f.has_name) {
    // seq_pad(m, ' '): spaces up to the width, then the pad character itself.
    while (out->len() - line_start < kNameColumnWidth) out->Put(' ');
    out->Put(' ');
    for (size_t i = 0; i < f.name_len; ++i) {
      if (f.escape_newline && f.name[i] == '\n') {
        out->Put("\\012", 4);
      } else {
        out->Put(f.name[i]);
      }
    }
    if (f.deleted) out->Put(kDeletedSuffix, kDeletedSuffixLen);
  }
  out->Put('\n');
}

// True when v->file is a real vm_file. A kOtherSpecial VMA may carry a File
// only to hold its name (AddressSpace::SeedVma); the kernel's special
// mappings have no vm_file, so no offset, device or inode is shown for them.
bool HasVmFile(const Vma& v) { return v.file != nullptr && v.special == SpecialKind::kNone; }

const char* SpecialName(SpecialKind k) {
  switch (k) {
    case SpecialKind::kVdso:
      return "[vdso]";
    case SpecialKind::kVvar:
      return "[vvar]";
    case SpecialKind::kVvarVclock:
      return "[vvar_vclock]";
    case SpecialKind::kVsyscall:
      return kGateName;
    case SpecialKind::kUprobes:
      return "[uprobes]";
    case SpecialKind::kNone:
    case SpecialKind::kOtherSpecial:
      break;
  }
  return nullptr;
}

void FieldsOf(const AddressSpace& as, const Vma& v, LineFields* f) {
  f->start = v.start;
  f->end = v.end;
  f->flags = v.flags;
  if (HasVmFile(v)) {
    f->offset = v.pgoff << kPageShift;
    f->dev_major = v.file->dev_major;
    f->dev_minor = v.file->dev_minor;
    f->inode = v.file->inode;
    // get_vma_name(): a file always prints its path, even an empty one.
    f->has_name = true;
    f->name = v.file->path;
    f->name_len = v.file->path_len;
    f->escape_newline = true;
    f->deleted = v.file->deleted;
    return;
  }
  bool deleted = false;
  const char* name = VmaName(as, v, &deleted);
  f->name = name;
  f->name_len = CStrLen(name);
  f->has_name = f->name_len > 0;
}

// --- VmFlags ---------------------------------------------------------------

struct Mnemonic {
  uint64_t flag;  // our bit
  char name[3];   // "" when the kernel prints nothing for the bit
};

// show_smap_vma_flags()'s mnemonics[], indexed by the kernel's bit number on
// x86-64 (6.18-fc); our bits are the kernel's (vma.h). "??" marks bits the
// kernel knows no mnemonic for; VM_SOFTDIRTY (27) is compiled out, so it is
// one of them.
constexpr Mnemonic kMnemonics[64] = {
    {uint64_t{1} << 0, "rd"},  {uint64_t{1} << 1, "wr"},  {uint64_t{1} << 2, "ex"},
    {uint64_t{1} << 3, "sh"},  {uint64_t{1} << 4, "mr"},  {uint64_t{1} << 5, "mw"},
    {uint64_t{1} << 6, "me"},  {uint64_t{1} << 7, "ms"},  {uint64_t{1} << 8, "gd"},
    {uint64_t{1} << 9, "um"},  {uint64_t{1} << 10, "pf"}, {kVmMaybeGuard, "gu"},
    {uint64_t{1} << 12, "uw"}, {uint64_t{1} << 13, "lo"}, {uint64_t{1} << 14, "io"},
    {uint64_t{1} << 15, "sr"}, {uint64_t{1} << 16, "rr"}, {uint64_t{1} << 17, "dc"},
    {uint64_t{1} << 18, "de"}, {uint64_t{1} << 19, "lf"}, {uint64_t{1} << 20, "ac"},
    {uint64_t{1} << 21, "nr"}, {uint64_t{1} << 22, "ht"}, {uint64_t{1} << 23, "sf"},
    {uint64_t{1} << 24, "ar"}, {uint64_t{1} << 25, "wf"}, {uint64_t{1} << 26, "dd"},
    {uint64_t{1} << 27, "??"}, {uint64_t{1} << 28, "mm"}, {uint64_t{1} << 29, "hg"},
    {uint64_t{1} << 30, "nh"}, {uint64_t{1} << 31, "mg"}, {uint64_t{1} << 32, ""},
    {uint64_t{1} << 33, ""},   {uint64_t{1} << 34, ""},   {uint64_t{1} << 35, ""},
    {uint64_t{1} << 36, "??"}, {uint64_t{1} << 37, "ss"}, {uint64_t{1} << 38, "ui"},
    {uint64_t{1} << 39, "??"}, {uint64_t{1} << 40, "dp"}, {uint64_t{1} << 41, "??"},
    {uint64_t{1} << 42, "??"}, {uint64_t{1} << 43, "??"}, {uint64_t{1} << 44, "??"},
    {uint64_t{1} << 45, "??"}, {uint64_t{1} << 46, "??"}, {uint64_t{1} << 47, "??"},
    {uint64_t{1} << 48, "??"}, {uint64_t{1} << 49, "??"}, {uint64_t{1} << 50, "??"},
    {uint64_t{1} << 51, "??"}, {uint64_t{1} << 52, "??"}, {uint64_t{1} << 53, "??"},
    {uint64_t{1} << 54, "??"}, {uint64_t{1} << 55, "??"}, {uint64_t{1} << 56, "??"},
    {uint64_t{1} << 57, "??"}, {uint64_t{1} << 58, "??"}, {uint64_t{1} << 59, "??"},
    {uint64_t{1} << 60, "??"}, {uint64_t{1} << 61, "??"}, {uint64_t{1} << 62, "??"},
    {uint64_t{1} << 63, "sl"},
};
static_assert(kVmMaybeGuard == uint64_t{1} << 11, "kMnemonics assumes the kernel's bit 11");
static_assert(kVmShadowStack == uint64_t{1} << 37 && kVmUffdMinor == uint64_t{1} << 38 &&
                  kVmDroppable == uint64_t{1} << 40 && kVmSealed == uint64_t{1} << 63,
              "kMnemonics assumes the kernel's high bits");

bool IsFlagSeparator(char c) { return c == ' ' || c == '\t' || c == '\n'; }

// --- strict number readers for ParseMapsLine -----------------------------

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // uppercase is not what the kernel prints
}

// Reads lowercase hex at s[*pos], as seq_put_hex_ll(.., min_width) prints it:
// at least min_width digits, no leading zero beyond them, at most max_digits.
bool ReadHex(const char* s, size_t len, size_t* pos, int min_width, int max_digits,
             uint64_t* value) {
  size_t p = *pos;
  uint64_t v = 0;
  int n = 0;
  while (p < len && HexDigit(s[p]) >= 0) {
    if (n == max_digits) return false;
    v = (v << 4) | static_cast<uint64_t>(HexDigit(s[p]));
    ++n;
    ++p;
  }
  if (n < min_width) return false;
  if (n > min_width && s[*pos] == '0') return false;
  *pos = p;
  *value = v;
  return true;
}

// Reads an unpadded decimal without leading zeros (seq_put_decimal_ull).
bool ReadDec(const char* s, size_t len, size_t* pos, uint64_t* value) {
  size_t p = *pos;
  uint64_t v = 0;
  int n = 0;
  while (p < len && s[p] >= '0' && s[p] <= '9') {
    const uint64_t d = static_cast<uint64_t>(s[p] - '0');
    if (v > (~uint64_t{0} - d) / 10) return false;  // overflow
    v = v * 10 + d;
    ++n;
    ++p;
  }
  if (n == 0 || (n > 1 && s[*pos] == '0')) return false;
  *pos = p;
  *value = v;
  return true;
}

bool Expect(const char* s, size_t len, size_t* pos, char c) {
  if (*pos >= len || s[*pos] != c) return false;
  ++*pos;
  return true;
}

// --- SeedFromMaps helpers ------------------------------------------------

// FNV-1a, 64 bit.
uint64_t Fnv(uint64_t h, const void* data, size_t n) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3;
  }
  return h;
}

// The id SeedFromMaps gives a file. Identity of the open file description is
// not in maps text, so equal (dev, inode, printed path, deleted) share an id;
// the path takes part so that two names of one inode (hard links, bind
// mounts) still render as printed. Bits 62-63 are clear: AddressSpace hands
// out its own shmem ids from 1 << 62.
uint64_t SeedFileId(const MapsLine& l) {
  uint64_t h = 0xcbf29ce484222325;
  h = Fnv(h, &l.dev_major, sizeof(l.dev_major));
  h = Fnv(h, &l.dev_minor, sizeof(l.dev_minor));
  h = Fnv(h, &l.inode, sizeof(l.inode));
  const unsigned char del = l.deleted ? 1 : 0;
  h = Fnv(h, &del, 1);
  h = Fnv(h, l.name, l.name_len);
  h &= (uint64_t{1} << 62) - 1;
  return h == 0 ? 1 : h;
}

FileKind SeedFileKind(const MapsLine& l, uint64_t flags) {
  const char* n = l.name;
  const size_t len = l.name_len;
  if ((flags & kVmHugetlb) || StartsWith(n, len, "/anon_hugepage")) return FileKind::kHugetlb;
  if ((l.dev_major == 0 && l.dev_minor == 1) || StartsWith(n, len, "/memfd:") ||
      StartsWith(n, len, "/SYSV") || BytesEqual(n, len, "/dev/zero", 9) ||
      StartsWith(n, len, "/dev/shm/")) {
    return FileKind::kShmem;
  }
  if (StartsWith(n, len, "/dev/")) return FileKind::kDevice;
  return FileKind::kRegular;
}

bool IsSmapsHeader(const char* line, size_t len) { return len > 0 && HexDigit(line[0]) >= 0; }

// Finds the smaps block whose header starts with `prefix` ("start-end "),
// searching from *cursor and then wrapping around, and reads its VmFlags (and
// ProtectionKey, when printed) into *flags. Moves *cursor past the block.
// Returns 0, -ENOENT when there is no such block or it has no VmFlags line,
// -EINVAL when VmFlags holds a mnemonic we do not know.
int SmapsFlags(const char* smaps, size_t smaps_len, size_t* cursor, const char* prefix,
               size_t prefix_len, uint64_t* flags) {
  for (int pass = 0; pass < 2; ++pass) {
    size_t pos = pass == 0 ? *cursor : 0;
    const size_t stop = pass == 0 ? smaps_len : *cursor;
    while (pos < stop) {
      const char* nl = static_cast<const char*>(std::memchr(smaps + pos, '\n', smaps_len - pos));
      const size_t line_end = nl != nullptr ? static_cast<size_t>(nl - smaps) : smaps_len;
      const char* line = smaps + pos;
      const size_t line_len = line_end - pos;
      pos = line_end + 1;
      if (line_len < prefix_len || std::memcmp(line, prefix, prefix_len) != 0) continue;
      // Found the header: scan the block.
      bool have_flags = false;
      uint64_t f = 0;
      uint64_t pkey = 0;
      while (pos < smaps_len) {
        const char* nl2 = static_cast<const char*>(std::memchr(smaps + pos, '\n', smaps_len - pos));
        const size_t end2 = nl2 != nullptr ? static_cast<size_t>(nl2 - smaps) : smaps_len;
        const char* l2 = smaps + pos;
        const size_t len2 = end2 - pos;
        if (IsSmapsHeader(l2, len2)) break;
        pos = end2 + 1;
        if (StartsWith(l2, len2, "VmFlags:")) {
          if (!ParseVmFlags(l2 + 8, len2 - 8, &f)) return -EINVAL;
          have_flags = true;
        } else if (StartsWith(l2, len2, "ProtectionKey:")) {
          size_t p = 14;
          while (p < len2 && l2[p] == ' ') ++p;
          if (!ReadDec(l2, len2, &p, &pkey) || p != len2) return -EINVAL;
        }
      }
      if (!have_flags) return -ENOENT;
      *flags = f | ((pkey << kVmPkeyShift) & kVmPkeyMask);
      *cursor = pos < smaps_len ? pos : smaps_len;
      return 0;
    }
  }
  return -ENOENT;
}

}  // namespace

// ---------------------------------------------------------------------------

// Mirrors get_vma_name() (fs/proc/task_mmu.c, 6.12): the file path first, then
// the special mapping's name, then [heap] and [stack] against the model's brk,
// start_brk and start_stack. Anonymous VMA names (CONFIG_ANON_VMA_NAME) are
// not modelled. A kOtherSpecial VMA shows the name held in its File, if any.
const char* VmaName(const AddressSpace& as, const Vma& v, bool* deleted) {
  *deleted = false;
  if (HasVmFile(v)) {
    *deleted = v.file->deleted;
    return v.file->path;
  }
  if (v.special == SpecialKind::kOtherSpecial) {
    return v.file != nullptr ? v.file->path : "";
  }
  if (const char* special = SpecialName(v.special)) return special;
  // vma_is_initial_heap(): compares with the raw (unaligned) brk.
  if (v.start < as.brk() && v.end > as.start_brk()) return "[heap]";
  // vma_is_initial_stack()
  if (v.start <= as.start_stack() && v.end >= as.start_stack()) return "[stack]";
  return "";
}

// Mirrors show_map_vma() (fs/proc/task_mmu.c, 6.12/6.18).
size_t RenderVmaLine(const AddressSpace& as, const Vma& v, char* buf, size_t cap) {
  Sink out(buf, cap);
  LineFields f;
  FieldsOf(as, v, &f);
  RenderFields(f, &out);
  return out.Finish();
}

namespace {

// The fields of one PROCMAP_QUERY answer, as its maps line would show them.
void QueryFields(const abi::ProcmapQuery& q, const char* name, size_t name_len, LineFields* f) {
  constexpr uint64_t kQueryRead = 1, kQueryWrite = 2, kQueryExec = 4, kQueryShared = 8;
  f->start = q.vma_start;
  f->end = q.vma_end;
  f->flags = 0;
  if (q.vma_flags & kQueryRead) f->flags |= kVmRead;
  if (q.vma_flags & kQueryWrite) f->flags |= kVmWrite;
  if (q.vma_flags & kQueryExec) f->flags |= kVmExec;
  if (q.vma_flags & kQueryShared) f->flags |= kVmMayShare;
  f->offset = q.vma_offset;
  f->dev_major = q.dev_major;
  f->dev_minor = q.dev_minor;
  f->inode = q.inode;
  // The ioctl copies the name with its NUL; maps escapes newlines in paths.
  while (name_len > 0 && name[name_len - 1] == '\0') --name_len;
  f->has_name = name_len > 0;
  f->name = name;
  f->name_len = name_len;
  f->escape_newline = q.inode != 0 || (name_len > 0 && name[0] == '/');
}

// Walks the name column of a line as RenderFields writes it: the name (with
// newlines escaped when asked) and the " (deleted)" suffix.
class NameCursor {
 public:
  explicit NameCursor(const LineFields& f) : f_(f) {}
  // The next character, or -1 at the end.
  int Next() {
    if (escape_left_ > 0) return kEscape[4 - escape_left_--];
    if (i_ < f_.name_len) {
      const char c = f_.name[i_++];
      if (f_.escape_newline && c == '\n') {
        escape_left_ = 3;
        return kEscape[0];
      }
      return static_cast<unsigned char>(c);
    }
    if (f_.deleted && suffix_ < kDeletedSuffixLen) return kDeletedSuffix[suffix_++];
    return -1;
  }

 private:
  static constexpr char kEscape[4] = {'\\', '0', '1', '2'};
  const LineFields& f_;
  size_t i_ = 0;
  int escape_left_ = 0;
  size_t suffix_ = 0;
};

// True when RenderFields would write the same line for a and b.
bool SameLine(const LineFields& a, const LineFields& b) {
  constexpr uint64_t kShown = kVmRead | kVmWrite | kVmExec | kVmMayShare;
  if (a.start != b.start || a.end != b.end || ((a.flags ^ b.flags) & kShown) != 0 ||
      a.offset != b.offset || a.dev_major != b.dev_major || a.dev_minor != b.dev_minor ||
      a.inode != b.inode || a.has_name != b.has_name) {
    return false;
  }
  if (!a.has_name) return true;
  NameCursor x(a);
  NameCursor y(b);
  for (;;) {
    const int c = x.Next();
    if (c != y.Next()) return false;
    if (c < 0) return true;
  }
}

}  // namespace

size_t RenderQueryLine(const abi::ProcmapQuery& q, const char* name, size_t name_len, char* buf,
                       size_t cap) {
  Sink out(buf, cap);
  LineFields f;
  QueryFields(q, name, name_len, &f);
  RenderFields(f, &out);
  return out.Finish();
}

bool QueryMatchesVma(const AddressSpace& as, const Vma& v, const abi::ProcmapQuery& q,
                     const char* name, size_t name_len, bool compare_name) {
  LineFields model;
  FieldsOf(as, v, &model);
  LineFields kernel;
  QueryFields(q, name, name_len, &kernel);
  if (!compare_name) {
    model.has_name = false;
    kernel.has_name = false;
  }
  return SameLine(model, kernel);
}

bool ShowsFile(const Vma& v) { return HasVmFile(v); }

int SmapsVmFlagsAt(const char* smaps, size_t len, uint64_t start, uint64_t* flags, size_t* cursor) {
  char prefix[24];
  Sink s(prefix, sizeof(prefix));
  s.PutHex(start, 8);
  s.Put('-');
  size_t from_start = 0;
  return SmapsFlags(smaps, len, cursor != nullptr ? cursor : &from_start, prefix, s.len(), flags);
}

// Mirrors reading /proc/PID/maps: m_start/m_next over the VMAs, then the gate
// VMA (get_gate_vma) last.
size_t RenderMaps(const AddressSpace& as, char* buf, size_t cap) {
  Sink out(buf, cap);
  for (const Vma* v = as.tree().First(); v != nullptr; v = v->next) {
    LineFields f;
    FieldsOf(as, *v, &f);
    RenderFields(f, &out);
  }
  if (as.has_gate_vma()) {
    LineFields f;
    f.start = kGateStart;
    f.end = kGateEnd;
    f.flags = kVmExec;
    f.has_name = true;
    f.name = kGateName;
    f.name_len = sizeof(kGateName) - 1;
    RenderFields(f, &out);
  }
  return out.Finish();
}

bool ParseMapsLine(const char* line, size_t len, MapsLine* out) {
  if (len > 0 && line[len - 1] == '\n') --len;
  for (size_t i = 0; i < len; ++i) {
    if (line[i] == '\n' || line[i] == '\0') return false;
  }
  size_t p = 0;
  if (!ReadHex(line, len, &p, 8, 16, &out->start)) return false;
  if (!Expect(line, len, &p, '-')) return false;
  if (!ReadHex(line, len, &p, 8, 16, &out->end)) return false;
  if (out->end <= out->start) return false;
  if (!Expect(line, len, &p, ' ')) return false;
  if (p + 4 > len) return false;
  static constexpr char kYes[4] = {'r', 'w', 'x', 's'};
  static constexpr char kNo[4] = {'-', '-', '-', 'p'};
  for (int i = 0; i < 4; ++i) {
    const char c = line[p + i];
    if (c != kYes[i] && c != kNo[i]) return false;
    out->perms[i] = c;
  }
  p += 4;
  if (!Expect(line, len, &p, ' ')) return false;
  if (!ReadHex(line, len, &p, 8, 16, &out->offset)) return false;
  if (!Expect(line, len, &p, ' ')) return false;
  uint64_t major = 0;
  uint64_t minor = 0;
  if (!ReadHex(line, len, &p, 2, 8, &major)) return false;
  if (!Expect(line, len, &p, ':')) return false;
  if (!ReadHex(line, len, &p, 2, 8, &minor)) return false;
  out->dev_major = static_cast<uint32_t>(major);
  out->dev_minor = static_cast<uint32_t>(minor);
  if (!Expect(line, len, &p, ' ')) return false;
  if (!ReadDec(line, len, &p, &out->inode)) return false;
  if (!Expect(line, len, &p, ' ')) return false;
  out->name = nullptr;
  out->name_len = 0;
  out->deleted = false;
  if (p == len) return true;  // no name: the line ends with the fixed part's space
  // The name column: spaces up to kNameColumnWidth, then exactly one more.
  while (p < kNameColumnWidth) {
    if (!Expect(line, len, &p, ' ')) return false;
  }
  if (!Expect(line, len, &p, ' ')) return false;
  out->name = line + p;
  out->name_len = len - p;
  if (out->name_len > kDeletedSuffixLen &&
      std::memcmp(out->name + out->name_len - kDeletedSuffixLen, kDeletedSuffix,
                  kDeletedSuffixLen) == 0) {
    out->deleted = true;
    out->name_len -= kDeletedSuffixLen;
  }
  return true;
}

bool ParseVmFlags(const char* text, size_t len, uint64_t* flags) {
  *flags = 0;
  bool ok = true;
  size_t p = 0;
  while (p < len) {
    if (IsFlagSeparator(text[p])) {
      ++p;
      continue;
    }
    size_t q = p;
    while (q < len && !IsFlagSeparator(text[q])) ++q;
    const char* tok = text + p;
    const size_t tok_len = q - p;
    p = q;
    if (BytesEqual(tok, tok_len, "sd", 2)) continue;  // VM_SOFTDIRTY is 0 here
    bool known = false;
    for (const Mnemonic& m : kMnemonics) {
      if (m.name[0] != '\0' && m.name[0] != '?' && BytesEqual(tok, tok_len, m.name, 2)) {
        *flags |= m.flag;
        known = true;
        break;
      }
    }
    if (!known) ok = false;
  }
  return ok;
}

// Mirrors show_smap_vma_flags() (fs/proc/task_mmu.c): mnemonics in the
// kernel's bit order, each followed by a space; pkey bits print nothing.
size_t RenderVmFlags(uint64_t flags, char* buf, size_t cap) {
  Sink out(buf, cap);
  for (const Mnemonic& m : kMnemonics) {
    if (m.name[0] == '\0' || !(flags & m.flag)) continue;
    out.Put(m.name, 2);
    out.Put(' ');
  }
  return out.Finish();
}

size_t RenderVmFlagsLine(const Vma& v, char* buf, size_t cap) {
  Sink out(buf, cap);
  out.Put("VmFlags: ", 9);
  char tmp[3 * 64 + 1];
  const size_t n = RenderVmFlags(v.flags, tmp, sizeof(tmp));
  out.Put(tmp, n);
  out.Put('\n');
  return out.Finish();
}

// The flags come from how the kernel creates each kind of mapping (6.18):
// mmap's calc_vm_prot_bits + VM_MAY*, MAP_SHARED's VM_SHARED|VM_MAYSHARE (and
// no VM_MAYWRITE/VM_SHARED for a read-only shared file mapping, which is the
// likelier reading of "r--s" outside shmem), VM_ACCOUNT for private writable
// memory; _install_special_mapping's flags for [vvar], [vvar_vclock], [vdso],
// [uprobes]; VM_GROWSDOWN for [stack]. What the line cannot show (mlock,
// madvise bits, VM_ACCOUNT kept after mprotect, noexec mounts) is not guessed.
uint64_t GuessFlagsFromMapsLine(const MapsLine& line) {
  uint64_t flags = 0;
  if (line.perms[0] == 'r') flags |= kVmRead;
  if (line.perms[1] == 'w') flags |= kVmWrite;
  if (line.perms[2] == 'x') flags |= kVmExec;
  const bool shared = line.perms[3] == 's';
  const char* name = line.name != nullptr ? line.name : "";
  const size_t name_len = line.name != nullptr ? line.name_len : 0;
  const bool has_file = line.dev_major != 0 || line.dev_minor != 0 || line.inode != 0;
  if (!has_file) {
    const uint64_t share = shared ? uint64_t{kVmMayShare} : 0;
    switch (SpecialKindFromName(name, name_len)) {
      case SpecialKind::kVvar:
      case SpecialKind::kVvarVclock:
        return flags | share | kVmMayRead | kVmIo | kVmPfnmap | kVmDontexpand | kVmDontdump;
      case SpecialKind::kVdso:
        return flags | share | kVmMayRead | kVmMayWrite | kVmMayExec | kVmDontexpand;
      case SpecialKind::kVsyscall:
        return flags | share;
      case SpecialKind::kUprobes:
        return flags | share | kVmMayExec | kVmDontcopy | kVmIo | kVmDontexpand;
      case SpecialKind::kOtherSpecial:
        return flags | share | kVmMayRead | kVmMayWrite | kVmMayExec | kVmDontexpand;
      case SpecialKind::kNone:
        break;
    }
  }
  flags |= kVmMayRead | kVmMayWrite | kVmMayExec;
  if (shared) {
    flags |= kVmMayShare;
    const bool shmem = line.dev_major == 0 && line.dev_minor == 1;
    if ((flags & kVmWrite) || shmem) {
      flags |= kVmShared;
    } else {
      flags &= ~kVmMayWrite;
    }
  } else if (flags & kVmWrite) {
    flags |= kVmAccount;
  }
  if (!has_file && BytesEqual(name, name_len, "[stack]", 7)) flags |= kVmGrowsdown;
  return flags;
}

// Bracketed names other than [heap], [stack] and the anonymous-name forms
// ([anon:...], [anon_shmem:...]) are taken as some other special mapping.
SpecialKind SpecialKindFromName(const char* name, size_t len) {
  if (name == nullptr || len < 2 || name[0] != '[' || name[len - 1] != ']') {
    return SpecialKind::kNone;
  }
  if (BytesEqual(name, len, "[vdso]", 6)) return SpecialKind::kVdso;
  if (BytesEqual(name, len, "[vvar]", 6)) return SpecialKind::kVvar;
  if (BytesEqual(name, len, "[vvar_vclock]", 13)) return SpecialKind::kVvarVclock;
  if (BytesEqual(name, len, "[vsyscall]", 10)) return SpecialKind::kVsyscall;
  if (BytesEqual(name, len, "[uprobes]", 9)) return SpecialKind::kUprobes;
  if (BytesEqual(name, len, "[heap]", 6) || BytesEqual(name, len, "[stack]", 7) ||
      StartsWith(name, len, "[anon:") || StartsWith(name, len, "[anon_shmem:")) {
    return SpecialKind::kNone;
  }
  return SpecialKind::kOtherSpecial;
}

// Each maps line becomes one SeedVma():
//  * a line with a device or inode (or a name that is not bracketed) is a
//    file VMA: pgoff = offset >> 12, a FileDesc as described at SeedFileId and
//    SeedFileKind; with smaps flags, a shared mapping with VM_MAYWRITE marks
//    the fd writable and a missing VM_MAYEXEC marks a noexec mount;
//  * [vdso], [vvar], [vvar_vclock], [uprobes] and other bracketed names are
//    special mappings with pgoff 0, as _install_special_mapping() sets it;
//  * [vsyscall] sets the gate VMA and is not a VMA;
//  * everything else ([heap], [stack], no name) is anonymous, pgoff
//    start >> 12.
// brk, start_brk and start_stack are left alone: the caller sets them (from
// /proc/PID/stat and the brk syscall), so "[heap]" and "[stack]" lines only
// render back once it has. An anonymous line with a non-zero offset, a name
// longer than a page, a smaps text without the line's block (the two reads
// disagree) or with an unknown VmFlags mnemonic all fail with -EINVAL.
int SeedFromMaps(AddressSpace* as, const char* maps, size_t maps_len, const char* smaps,
                 size_t smaps_len, size_t* bad_line) {
  as->Clear();
  as->SetHasGateVma(false);
  if (bad_line != nullptr) *bad_line = 0;
  size_t pos = 0;
  size_t line_no = 0;
  size_t smaps_cursor = 0;
  char name_buf[kMaxSeedName + 1];
  while (pos < maps_len) {
    ++line_no;
    const char* line = maps + pos;
    const char* nl = static_cast<const char*>(std::memchr(line, '\n', maps_len - pos));
    const size_t line_len = nl != nullptr ? static_cast<size_t>(nl - line) : maps_len - pos;
    pos += line_len + 1;
    auto fail = [&](int err) {
      if (bad_line != nullptr) *bad_line = line_no;
      return err;
    };

    MapsLine l;
    if (!ParseMapsLine(line, line_len, &l)) return fail(-EINVAL);
    const char* name = l.name != nullptr ? l.name : "";
    const bool has_file =
        l.dev_major != 0 || l.dev_minor != 0 || l.inode != 0 || (l.name_len > 0 && name[0] != '[');
    const SpecialKind special =
        has_file ? SpecialKind::kNone : SpecialKindFromName(name, l.name_len);
    if (special == SpecialKind::kVsyscall) {
      as->SetHasGateVma(true);
      continue;
    }
    if (!has_file && l.offset != 0) return fail(-EINVAL);
    if (l.name_len > kMaxSeedName) return fail(-EINVAL);

    uint64_t flags = 0;
    if (smaps != nullptr) {
      char prefix[40];
      Sink s(prefix, sizeof(prefix));
      s.PutHex(l.start, 8);
      s.Put('-');
      s.PutHex(l.end, 8);
      s.Put(' ');
      const size_t prefix_len = s.len();
      if (SmapsFlags(smaps, smaps_len, &smaps_cursor, prefix, prefix_len, &flags) != 0) {
        return fail(-EINVAL);
      }
    } else {
      flags = GuessFlagsFromMapsLine(l);
    }

    std::memcpy(name_buf, name, l.name_len);
    name_buf[l.name_len] = '\0';

    VmaSeed seed;
    seed.start = l.start;
    seed.end = l.end;
    seed.flags = flags;
    FileDesc desc;
    if (has_file) {
      desc.id = SeedFileId(l);
      desc.inode = l.inode;
      desc.dev_major = l.dev_major;
      desc.dev_minor = l.dev_minor;
      desc.kind = SeedFileKind(l, flags);
      desc.deleted = l.deleted;
      desc.readable = true;
      desc.writable = (flags & kVmShared) != 0 && (flags & kVmMayWrite) != 0;
      desc.noexec_mount = smaps != nullptr && (flags & kVmMayExec) == 0;
      desc.path = name_buf;
      seed.file = &desc;
      seed.pgoff = l.offset >> kPageShift;
    } else if (special != SpecialKind::kNone) {
      seed.special = special;
      if (special == SpecialKind::kOtherSpecial) seed.special_name = name_buf;
      seed.pgoff = 0;
    } else {
      seed.pgoff = l.start >> kPageShift;
    }
    const int err = as->SeedVma(seed);
    if (err != 0) return fail(err == -ENOMEM ? -ENOMEM : -EINVAL);
  }
  return 0;
}

bool ParseProcStat(const char* text, size_t len, ProcStat* out) {
  const char* end = text + len;
  const char* p = end;
  while (p > text && *(p - 1) != ')') --p;  // after the last ')': field 3 on
  if (p == text) return false;
  int field = 2;
  while (p < end && field < 47) {
    while (p < end && *p == ' ') ++p;
    if (p == end || *p == '\n') break;
    ++field;
    uint64_t v = 0;
    bool digits = true;
    for (const char* q = p; q < end && *q != ' ' && *q != '\n'; ++q) {
      if (*q < '0' || *q > '9') digits = false;
      if (digits) v = v * 10 + static_cast<uint64_t>(*q - '0');
    }
    while (p < end && *p != ' ' && *p != '\n') ++p;
    if (!digits) v = 0;
    if (field == 26) out->start_code = v;
    if (field == 27) out->end_code = v;
    if (field == 28) out->start_stack = v;
    if (field == 45) out->start_data = v;
    if (field == 46) out->end_data = v;
    if (field == 47) out->start_brk = v;
  }
  return field == 47;
}

uint64_t InferMmapBase(const char* maps, size_t len, uint64_t start_stack) {
  uint64_t stack_start = 0;
  bool found = false;
  for (int pass = 0; pass < 2; ++pass) {
    uint64_t base = 0;
    for (size_t i = 0; i < len;) {
      size_t j = i;
      while (j < len && maps[j] != '\n') ++j;
      MapsLine l;
      if (ParseMapsLine(maps + i, j - i, &l)) {
        if (pass == 0 && l.start <= start_stack && start_stack <= l.end) {
          stack_start = l.start;
          found = true;
        }
        if (pass == 1 && l.end <= stack_start && l.end > base) base = l.end;
      }
      i = j + 1;
    }
    if (pass == 0 && !found) return 0;
    if (pass == 1) return base;
  }
  return 0;
}

}  // namespace vmashadow
