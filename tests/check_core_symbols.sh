#!/bin/sh
# Fails when the core library needs a symbol from the shared libstdc++ (or
# anything C++-runtime: operator new/delete, __cxa_*, std::), so that the
# preload, which links libc only, can use it.
set -eu
lib="$1"
undef=$(nm -u --demangle "$lib" | awk '{ $1=""; print substr($0,2) }' | sort -u)
bad=$(printf '%s\n' "$undef" | grep -E '^(std::|operator new|operator delete|__cxa_|__gxx_|_Unwind|__cxx|typeinfo|vtable for)' || true)
if [ -n "$bad" ]; then
  echo "core library needs C++ runtime symbols:" >&2
  printf '%s\n' "$bad" >&2
  exit 1
fi
# Also no syscall wrappers: the core makes no syscalls.
sys=$(printf '%s\n' "$undef" | grep -E '^(mmap|mmap64|munmap|mprotect|mremap|madvise|brk|sbrk|syscall|open|read|write|close|ioctl|malloc|calloc|realloc|free)$' || true)
if [ -n "$sys" ]; then
  echo "core library calls syscalls or malloc:" >&2
  printf '%s\n' "$sys" >&2
  exit 1
fi
echo "core undefined symbols (all libc):"
printf '  %s\n' $undef
