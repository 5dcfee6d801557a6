// kernel_profile.cc — the named profiles (see kernel_profile.h and docs/kernel-versions.md).
#include "core/abi/kernel_profile.h"

#include <cstring>

namespace vmashadow {
namespace {

// clang-format off
// Columns: name, anon_vma_615_rule, copied_from_check, multi_vma_mremap,
// mseal_rework, ksm_flags_before_merge, guard_regions, guard_sticky_flag,
// vvar_vclock, thp_align_requires_no_file, pt_reclaim, dontunmap_locked_drift.
constexpr KernelProfile kProfiles[] = {
    {"6.12",    false, false, false, false, false, false, false, false, false, false, false},
    {"6.15",    true,  false, false, false, false, true,  false, true,  false, true,  false},
    {"6.17",    true,  false, true,  true,  true,  true,  false, true,  false, true,  true},
    {"6.18",    true,  true,  true,  true,  true,  true,  false, true,  true,  true,  true},
    {"6.18-fc", true,  true,  true,  true,  true,  true,  true,  true,  true,  true,  true},
};
// clang-format on

}  // namespace

const KernelProfile* FindKernelProfile(const char* name) {
  for (const KernelProfile& p : kProfiles) {
    if (std::strcmp(p.name, name) == 0) return &p;
  }
  return nullptr;
}

const KernelProfile* AllKernelProfiles(size_t* count) {
  *count = sizeof(kProfiles) / sizeof(kProfiles[0]);
  return kProfiles;
}

const KernelProfile& DefaultKernelProfile() { return kProfiles[4]; }

const KernelProfile& ProfileForKernel(const char* release, bool sticky_guard, bool* exact) {
  // "MAJOR.MINOR[.PATCH][-suffix]"
  int major = 0;
  int minor = 0;
  const char* p = release;
  while (*p >= '0' && *p <= '9') major = major * 10 + (*p++ - '0');
  const bool parsed = p != release && *p == '.' && p[1] >= '0' && p[1] <= '9';
  if (parsed) {
    ++p;
    while (*p >= '0' && *p <= '9') minor = minor * 10 + (*p++ - '0');
  }
  const int version = major * 1000 + minor;
  *exact = parsed && version >= 6012 && version <= 6018;
  if (sticky_guard) return kProfiles[4];
  if (!parsed || version < 6015) return kProfiles[0];
  if (version < 6017) return kProfiles[1];
  if (version < 6018) return kProfiles[2];
  return kProfiles[3];
}

}  // namespace vmashadow
