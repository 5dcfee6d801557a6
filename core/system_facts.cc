// system_facts.cc — MmParams from the running system's facts (see header).
#include "core/system_facts.h"

#include "core/no_syscalls.h"

namespace vmashadow {
namespace {

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

}  // namespace

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
  if (p.mmap_base == 0) return -ENOENT;
  *out = p;
  if (stat != nullptr) *stat = st;
  return 0;
}

}  // namespace vmashadow
