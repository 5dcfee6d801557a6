// seed_from_maps.cc — reading maps, smaps and stat text into a model:
// SeedFromMaps() and what it guesses (GuessFlagsFromMapsLine,
// SpecialKindFromName), ParseProcStat() and InferMmapBase() (see
// maps_text.h and docs/placement.md#inferring-mmap_base).
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "core/abi/no_syscalls.h"
#include "core/mm/address_space.h"
#include "core/mm/mm_types.h"
#include "core/procfs/maps_text.h"
#include "core/procfs/text_internal.h"

namespace vmashadow {
namespace {

using namespace procfs_detail;

// Longest name SeedFromMaps copies (d_path works within one page).
constexpr size_t kMaxSeedName = 4096;

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

}  // namespace

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
