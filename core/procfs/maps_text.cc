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
#include "core/procfs/text_internal.h"

namespace vmashadow {
namespace {

using namespace procfs_detail;

// seq_setwidth(m, 25 + sizeof(void *) * 6 - 1) in show_vma_header_prefix: the
// name column is padded to this width, then one more space is written.
constexpr size_t kNameColumnWidth = 72;
constexpr char kDeletedSuffix[] = " (deleted)";
constexpr size_t kDeletedSuffixLen = sizeof(kDeletedSuffix) - 1;

// The gate VMA (arch/x86/entry/vsyscall/vsyscall_64.c).
constexpr uint64_t kGateStart = 0xffffffffff600000;
constexpr uint64_t kGateEnd = 0xffffffffff601000;
constexpr char kGateName[] = "[vsyscall]";

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

}  // namespace

namespace procfs_detail {

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

}  // namespace procfs_detail

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
  f->start = q.vma_start;
  f->end = q.vma_end;
  f->flags = 0;
  if (q.vma_flags & abi::kProcmapQueryVmaReadable) f->flags |= kVmRead;
  if (q.vma_flags & abi::kProcmapQueryVmaWritable) f->flags |= kVmWrite;
  if (q.vma_flags & abi::kProcmapQueryVmaExecutable) f->flags |= kVmExec;
  if (q.vma_flags & abi::kProcmapQueryVmaShared) f->flags |= kVmMayShare;
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

}  // namespace vmashadow
