// maps_text.h — the model as /proc/self/maps prints it, and maps text back
// into a model.
//
// Rendering follows fs/proc/task_mmu.c (show_map_vma, 6.12/6.18) byte for byte:
// hex padding, perms from VM_MAYSHARE, offsets only for file VMAs, the name
// column at 73, "[heap]"/"[stack]" rules evaluated against the model's brk and
// start_stack, " (deleted)", and "[vsyscall]" last. Rendering writes into a
// caller buffer and never allocates. Parsing is allocation-free too: it points
// into the caller's text.
//
// Depends on address_space.h; preload-safe (no abseil: tools wrap these in
// absl::StatusOr where they want messages).
#ifndef VMASHADOW_CORE_PROCFS_MAPS_TEXT_H_
#define VMASHADOW_CORE_PROCFS_MAPS_TEXT_H_

#include <cstddef>
#include <cstdint>

#include "core/abi/linux_abi.h"
#include "core/mm/address_space.h"
#include "core/mm/mm_types.h"

namespace vmashadow {

// Writes v's maps line, including the trailing '\n', into buf (NUL-terminated
// when it fits). Returns the line's length; when that is >= cap the output was
// truncated (like snprintf).
size_t RenderVmaLine(const AddressSpace& as, const Vma& v, char* buf, size_t cap);

// Writes every line of the model (and "[vsyscall]" last when the model has the
// gate VMA). Returns the total length; >= cap means truncated.
size_t RenderMaps(const AddressSpace& as, char* buf, size_t cap);

// Renders what the PROCMAP_QUERY ioctl reported for one VMA (q, with the name
// it copied out: name_len bytes, no NUL needed) as the line /proc/self/maps
// would show for it, so a range check compares like with like. Returns the
// line's length as RenderVmaLine does.
size_t RenderQueryLine(const abi::ProcmapQuery& q, const char* name, size_t name_len, char* buf,
                       size_t cap);

// True when RenderVmaLine(as, v) and RenderQueryLine(q, name, name_len) would
// write the same line, decided without rendering either (the preload's
// per-event range check compares many lines). With compare_name false the
// name column is ignored (the query was made without fetching the name).
bool QueryMatchesVma(const AddressSpace& as, const Vma& v, const abi::ProcmapQuery& q,
                     const char* name, size_t name_len, bool compare_name = true);
// True when v's maps line shows a file path (offset, device and inode too).
bool ShowsFile(const Vma& v);

// The name the kernel shows for v ("" when none), without " (deleted)";
// *deleted tells whether that suffix follows. Points into the model or at a
// static string.
const char* VmaName(const AddressSpace& as, const Vma& v, bool* deleted);

// One parsed maps line. name points into the parsed text (not NUL-terminated),
// without the " (deleted)" suffix, which sets `deleted`.
struct MapsLine {
  uint64_t start = 0;
  uint64_t end = 0;
  char perms[4] = {};
  uint64_t offset = 0;
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;
  uint64_t inode = 0;
  const char* name = nullptr;
  size_t name_len = 0;
  bool deleted = false;
};

// Parses one line (with or without its '\n'). Returns false when the line is
// not in maps format; *out is then unspecified.
bool ParseMapsLine(const char* line, size_t len, MapsLine* out);

// Parses the text after "VmFlags:" in /proc/self/smaps ("rd wr mr mw me ac").
// Returns false on a mnemonic it does not know (the flags it knew are set).
bool ParseVmFlags(const char* text, size_t len, uint64_t* flags);
// Writes the VmFlags mnemonics of `flags` ("rd wr mr mw me ac ", with the
// kernel's trailing space) into buf. Returns the length (>= cap: truncated).
size_t RenderVmFlags(uint64_t flags, char* buf, size_t cap);
// The whole smaps line for v, as show_smap_vma_flags() (fs/proc/task_mmu.c)
// prints it: "VmFlags: rd wr mr mw me ac \n" (every set flag with a
// mnemonic, in bit order, each followed by a space; "??" for bits the kernel
// has no name for; nothing for the pkey bits, which smaps shows as
// ProtectionKey). NUL-terminated when it fits; returns the length (>= cap:
// truncated).
size_t RenderVmFlagsLine(const Vma& v, char* buf, size_t cap);

// The VmFlags (with the ProtectionKey) of the smaps block of the VMA that
// starts at `start`. Returns 0, -ENOENT when there is none, -EINVAL when its
// VmFlags line holds a mnemonic we do not know. With a cursor the search
// starts there (and wraps) and the cursor moves past the block found, so
// looking up the VMAs in address order reads the text once.
int SmapsVmFlagsAt(const char* smaps, size_t len, uint64_t start, uint64_t* flags,
                   size_t* cursor = nullptr);

// The vm_flags a VMA most likely has when only its maps line is known: RWX and
// share bits from perms, MAY bits, VM_ACCOUNT for private writable memory, and
// the flags of special mappings ([vvar], [vdso], [stack]) as 6.18 sets them.
uint64_t GuessFlagsFromMapsLine(const MapsLine& line);

// The special kind a maps name denotes ([vdso], [vvar], [vvar_vclock],
// [vsyscall], [uprobes]); kNone for files, [heap], [stack] and no name.
SpecialKind SpecialKindFromName(const char* name, size_t len);

// Seeds `as` (after Clear()) from maps text. When smaps text is given, each
// VMA's flags come from its VmFlags line, otherwise from
// GuessFlagsFromMapsLine. Files get id = a hash of (dev, inode), kind kRegular
// (kShmem for dev 00:01 and /memfd:), paths as printed. [vsyscall] sets the
// gate VMA. Anonymous state starts empty: the caller refines it.
// Returns 0, or -EINVAL with *bad_line set to the 1-based line that failed,
// or -ENOMEM when the arena is full.
int SeedFromMaps(AddressSpace* as, const char* maps, size_t maps_len, const char* smaps,
                 size_t smaps_len, size_t* bad_line);

// The fields of /proc/<pid>/stat the model needs (proc(5) numbering).
struct ProcStat {
  uint64_t start_code = 0;   // field 26 (mm->start_code: VmExe/VmLib)
  uint64_t end_code = 0;     // field 27
  uint64_t start_stack = 0;  // field 28
  uint64_t start_data = 0;   // field 45
  uint64_t end_data = 0;     // field 46
  uint64_t start_brk = 0;    // field 47
};

// Parses /proc/<pid>/stat text (the command name may hold spaces and
// parentheses: fields are counted after the last ')'). False when it has
// fewer than 47 fields.
bool ParseProcStat(const char* text, size_t len, ProcStat* out);

// docs/placement.md#inferring-mmap_base: mmap_base is the end of the highest VMA below the VMA that
// contains start_stack ([vsyscall] lies above and does not count). Returns 0
// when no line of `maps` contains start_stack.
uint64_t InferMmapBase(const char* maps, size_t len, uint64_t start_stack);

}  // namespace vmashadow

#endif  // VMASHADOW_CORE_PROCFS_MAPS_TEXT_H_
