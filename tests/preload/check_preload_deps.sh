#!/usr/bin/env bash
# Fails unless libvmashadow.so depends on libc only: NEEDED may list only
# libc.so.6 (and the dynamic loader), and no undefined dynamic symbol may come
# from libstdc++, libgcc_s or abseil (C++ mangled names, __cxa_*, _Unwind_*).
set -eu
lib="$1"
needed=$(readelf -d "$lib" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
[ -n "$needed" ] || { echo "no NEEDED entries read from $lib" >&2; exit 1; }
bad=$(printf '%s\n' "$needed" | grep -vE '^(libc\.so\.6|ld-linux-x86-64\.so\.2)$' || true)
if [ -n "$bad" ]; then
  echo "libvmashadow.so needs more than libc:" >&2
  printf '  %s\n' $bad >&2
  exit 1
fi
# Symbols as name@VERSION; libc's own __cxa_finalize/__cxa_atexit are fine.
undef=$(nm -D --undefined-only "$lib" | awk '{ print $NF }')
cxx=$(printf '%s\n' "$undef" | grep -vE '@GLIBC_[0-9.]+$' |
      grep -E '^(_Z|__cxa_|__gxx_|_Unwind_|__cxx|absl)' || true)
cxx="$cxx$(printf '%s\n' "$undef" | grep -E '@(GLIBCXX|CXXABI|GCC)_' || true)"
if [ -n "$cxx" ]; then
  echo "libvmashadow.so needs C++ runtime or abseil symbols:" >&2
  printf '  %s\n' $cxx >&2
  exit 1
fi
# The wrappers must really be exported.
for s in mmap mmap64 munmap mprotect pkey_mprotect mremap madvise brk sbrk mlock mlock2 \
         munlock mlockall munlockall mseal; do
  nm -D --defined-only "$lib" | awk '{ print $NF }' | grep -qx "$s" ||
    { echo "libvmashadow.so does not export $s" >&2; exit 1; }
done
echo "NEEDED: $(printf '%s ' $needed)"
echo "undefined dynamic symbols: $(printf '%s\n' "$undef" | wc -l), none from C++ runtimes"
