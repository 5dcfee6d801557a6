// system_facts.cc — MmParams from the running system's facts (see header).
#include "core/procfs/system_facts.h"

#include <cstring>

#include "core/abi/no_syscalls.h"

namespace vmashadow {
namespace {

bool WordIs(const char* w, const char* lit) {
  size_t i = 0;
  while (lit[i] != '\0' && w[i] == lit[i]) ++i;
  return lit[i] == '\0' && w[i] == '\0';
}

}  // namespace

// The hex value after "CapEff:" in /proc/self/status text; false if absent.
bool ParseCapEff(const char* text, size_t len, uint64_t* caps) {
  static const char kKey[] = "CapEff:";
  const size_t klen = sizeof(kKey) - 1;
  for (size_t i = 0; i + klen <= len; ++i) {
    if ((i != 0 && text[i - 1] != '\n') || text[i] != 'C') continue;
    size_t k = 0;
    while (k < klen && text[i + k] == kKey[k]) ++k;
    if (k != klen) continue;
    size_t j = i + klen;
    while (j < len && (text[j] == '\t' || text[j] == ' ')) ++j;
    uint64_t v = 0;
    size_t digits = 0;
    for (; j < len && digits < 16; ++j, ++digits) {
      const char c = text[j];
      const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (d < 0) break;
      v = v << 4 | static_cast<uint64_t>(d);
    }
    if (digits == 0) return false;
    *caps = v;
    return true;
  }
  return false;
}

bool SelectedSysfsChoice(const char* text, char* out, size_t cap) {
  if (text == nullptr || cap == 0) return false;
  for (const char* p = text; *p != '\0'; ++p) {
    if (*p != '[') continue;
    size_t n = 0;
    for (++p; *p != '\0' && *p != ']' && n + 1 < cap; ++p) out[n++] = *p;
    out[n] = '\0';
    return *p == ']';
  }
  return false;
}

ThpMode ThpModeFromSysfs(const char* enabled, const char* pmd_enabled) {
  char global[16];
  ThpMode mode = ThpMode::kNever;
  if (SelectedSysfsChoice(enabled, global, sizeof(global))) {
    if (WordIs(global, "always")) mode = ThpMode::kAlways;
    if (WordIs(global, "madvise")) mode = ThpMode::kMadvise;
  }
  char per_size[16];
  if (!SelectedSysfsChoice(pmd_enabled, per_size, sizeof(per_size))) return mode;
  // thp_vma_allowable_orders(): the PMD order is allowed by its own
  // "always"/"madvise", or by "inherit" when the global setting allows it.
  if (WordIs(per_size, "always")) return ThpMode::kAlways;
  if (WordIs(per_size, "madvise")) return ThpMode::kMadvise;
  if (WordIs(per_size, "inherit")) return mode;
  return ThpMode::kNever;
}

namespace {

bool StatusField(const char* text, size_t len, const char* key, uint64_t* out) {
  const size_t klen = std::strlen(key);
  for (size_t i = 0; i + klen <= len; ++i) {
    if ((i != 0 && text[i - 1] != '\n') || std::memcmp(text + i, key, klen) != 0) continue;
    size_t p = i + klen;
    while (p < len && (text[p] == ' ' || text[p] == '\t')) ++p;
    const size_t digits = p;
    uint64_t v = 0;
    while (p < len && text[p] >= '0' && text[p] <= '9') {
      v = v * 10 + static_cast<uint64_t>(text[p++] - '0');
    }
    *out = v;
    return p != digits;
  }
  return false;
}

}  // namespace

bool ParseStatusCounters(const char* text, size_t len, StatusCounters* out) {
  StatusCounters s;
  if (!StatusField(text, len, "VmSize:", &s.vm_size_kb) ||
      !StatusField(text, len, "VmLck:", &s.vm_lck_kb) ||
      !StatusField(text, len, "VmData:", &s.vm_data_kb) ||
      !StatusField(text, len, "VmStk:", &s.vm_stk_kb) ||
      !StatusField(text, len, "VmExe:", &s.vm_exe_kb) ||
      !StatusField(text, len, "VmLib:", &s.vm_lib_kb) ||
      !StatusField(text, len, "VmPTE:", &s.vm_pte_kb)) {
    return false;
  }
  *out = s;
  return true;
}

bool SameStatusCounters(const StatusCounters& a, const StatusCounters& b) {
  return a.vm_size_kb == b.vm_size_kb && a.vm_lck_kb == b.vm_lck_kb &&
         a.vm_data_kb == b.vm_data_kb && a.vm_stk_kb == b.vm_stk_kb && a.vm_exe_kb == b.vm_exe_kb &&
         a.vm_lib_kb == b.vm_lib_kb && a.vm_pte_kb == b.vm_pte_kb;
}

int MmParamsFromFacts(const SystemFacts& f, MmParams* out, ProcStat* stat) {
  MmParams p;
  if (f.mmap_min_addr >= 0) {
    p.dac_mmap_min_addr = static_cast<uint64_t>(f.mmap_min_addr);
    // CONFIG_LSM_MMAP_MIN_ADDR is 65536: the kernel enforces the larger.
    p.mmap_min_addr = p.dac_mmap_min_addr > 65536 ? p.dac_mmap_min_addr : 65536;
  }
  if (f.max_map_count > 0) p.max_map_count = static_cast<uint64_t>(f.max_map_count);
  if (f.overcommit_memory >= 0) p.overcommit_memory = static_cast<int>(f.overcommit_memory);
  // mmap_is_legacy() (arch/x86/mm/mmap.c): ADDR_COMPAT_LAYOUT or the sysctl.
  const bool compat = f.personality >= 0 && (f.personality & 0x0200000) != 0;
  p.topdown = !compat && f.legacy_va_layout <= 0;
  uint64_t caps = 0;
  if (f.status != nullptr && ParseCapEff(f.status, f.status_len, &caps)) {
    p.cap_ipc_lock = (caps >> 14) & 1;   // CAP_IPC_LOCK
    p.cap_sys_rawio = (caps >> 17) & 1;  // CAP_SYS_RAWIO
  }
  // Without OSPKE no pkey is allocated, not even 0 (pkey_mprotect: EINVAL);
  // with it pkey 0 is allocated implicitly (others need pkey_alloc).
  p.max_pkey = f.ospke ? 1 : 0;
  p.rlimit_memlock = f.rlimit_memlock;
  p.rlimit_data = f.rlimit_data;
  p.rlimit_as = f.rlimit_as;
  p.rlimit_stack = f.rlimit_stack;
  ProcStat st;
  if (f.stat == nullptr || !ParseProcStat(f.stat, f.stat_len, &st)) return -EIO;
  p.start_data = st.start_data;
  p.end_data = st.end_data;
  p.mmap_base = InferMmapBase(f.maps, f.maps_len, st.start_stack);
  p.paging_levels = f.la57 ? 5 : 4;
  if (f.la57) p.task_size = 0x00fffffffffff000;  // TASK_SIZE_MAX with LA57
  p.nx = f.nx;
  p.thp = ThpModeFromSysfs(f.thp_enabled, f.thp_pmd_enabled);
  if (f.thp_use_zero_page >= 0) p.thp_use_zero_page = f.thp_use_zero_page != 0;
  p.thp_disabled = f.thp_disabled;
  if (p.mmap_base == 0) return -ENOENT;
  *out = p;
  if (stat != nullptr) *stat = st;
  return 0;
}

}  // namespace vmashadow
