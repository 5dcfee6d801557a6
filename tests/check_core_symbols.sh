#!/usr/bin/env bash
# Fails when the core library needs a symbol from the shared libstdc++ (or
# anything C++-runtime: operator new/delete, __cxa_*, std::), so that the
# preload, which links libc only, can use it.
set -eu
lib="$1"
# Symbols some object needs and no object of the library defines.
defined=$(nm --defined-only --demangle "$lib" | awk 'NF >= 3 { $1=""; $2=""; print substr($0,3) }' | sort -u)
undef=$(nm -u --demangle "$lib" | awk 'NF { $1=""; print substr($0,2) }' | grep -v "^$" | sort -u |
        comm -23 - <(printf '%s\n' "$defined"))
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
# Everything else must be one of these async-signal-safe libc routines.
allowed='^(memcpy|memmove|memset|memcmp|memchr|strlen|strcmp|strncmp|__assert_fail|__stack_chk_fail|abort)$'
other=$(printf '%s\n' "$undef" | grep -vE "$allowed" || true)
if [ -n "$other" ]; then
  echo "core library needs symbols outside its libc allow-list:" >&2
  printf '%s\n' "$other" >&2
  exit 1
fi
echo "core undefined symbols (all libc):"
printf '%s\n' "$undef" | sed 's/^/  /'
