// system_facts.h — MmParams from what the running system says.
//
// The callers that mirror a live process (the preload, the kernel-oracle
// harness) read the same facts in their own way (raw syscalls or libc):
// sysctls, the personality, /proc/self/status, CPUID, rlimits,
// /proc/self/stat and /proc/self/maps. This turns those facts into the
// model's MmParams in one place, so the rules (the effective mmap_min_addr,
// the legacy layout, capabilities, pkeys, mmap_base) are written once.
// Pure: no syscalls, no allocation; preload-safe.
#ifndef VMASHADOW_CORE_PROCFS_SYSTEM_FACTS_H_
#define VMASHADOW_CORE_PROCFS_SYSTEM_FACTS_H_

#include <cstddef>
#include <cstdint>

#include "core/mm/address_space.h"
#include "core/procfs/maps_text.h"

namespace vmashadow {

struct SystemFacts {
  // /proc/sys/vm values; negative when unknown (the MmParams default stays).
  int64_t mmap_min_addr = -1;
  int64_t max_map_count = -1;
  int64_t overcommit_memory = -1;
  int64_t legacy_va_layout = -1;
  int64_t personality = -1;  // personality(0xffffffff); negative when unknown
  bool ospke = false;        // CPUID.7.0:ECX bit 4 (protection keys enabled)
  uint64_t rlimit_memlock = kUnlimited;
  uint64_t rlimit_data = kUnlimited;
  uint64_t rlimit_as = kUnlimited;
  uint64_t rlimit_stack = kUnlimited;
  const char* status = nullptr;  // /proc/self/status text (for CapEff), or nullptr
  size_t status_len = 0;
  const char* stat = nullptr;  // /proc/self/stat text
  size_t stat_len = 0;
  const char* maps = nullptr;  // /proc/self/maps text
  size_t maps_len = 0;
  // Page tables. The sysfs texts are the files' contents ("always [madvise]
  // never"), or nullptr when unreadable (THP is then taken as never).
  const char* thp_enabled = nullptr;      // /sys/kernel/mm/transparent_hugepage/enabled
  const char* thp_pmd_enabled = nullptr;  // .../hugepages-2048kB/enabled ("inherit" ...)
  int64_t thp_use_zero_page = -1;         // .../use_zero_page; negative when unknown
  bool la57 = false;                      // CPUID.7.0:ECX bit 16 (and the kernel uses it)
  bool nx = true;                         // CPUID.80000001:EDX bit 20
  bool thp_disabled = false;              // prctl(PR_GET_THP_DISABLE)
};

// The selected word of a sysfs choice file ("always [madvise] never" ->
// "madvise"): writes it NUL-terminated into out; false when none is marked.
bool SelectedSysfsChoice(const char* text, char* out, size_t cap);

// The THP mode for anonymous PMD-sized faults from the two sysfs files
// (hugepages-2048kB "inherit" defers to the global setting; a missing
// per-size file means the global one decides).
ThpMode ThpModeFromSysfs(const char* enabled, const char* pmd_enabled);

// The VmSize, VmLck, VmData, VmStk, VmExe, VmLib and VmPTE lines of
// /proc/<pid>/status text (kB). False when one is missing.
bool ParseStatusCounters(const char* text, size_t len, StatusCounters* out);
// The hex value after "CapEff:" in /proc/<pid>/status text (the effective
// capabilities); false if absent.
bool ParseCapEff(const char* text, size_t len, uint64_t* caps);
// True when every field of a and b is equal.
bool SameStatusCounters(const StatusCounters& a, const StatusCounters& b);

// Fills *out (and *stat with the parsed /proc/self/stat). Returns 0, -EIO
// when the stat text does not parse, -ENOENT when no maps line holds
// start_stack (mmap_base cannot be inferred).
int MmParamsFromFacts(const SystemFacts& facts, MmParams* out, ProcStat* stat);

}  // namespace vmashadow

#endif  // VMASHADOW_CORE_PROCFS_SYSTEM_FACTS_H_
