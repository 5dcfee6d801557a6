// no_syscalls.h — makes "core/ never makes a syscall or allocates" mechanical
// (rr's `#define memcpy you_must_use_local_memcpy` idea). Include it last in
// every core/**/*.cc, after all other headers.
#ifndef VMASHADOW_CORE_ABI_NO_SYSCALLS_H_
#define VMASHADOW_CORE_ABI_NO_SYSCALLS_H_

#pragma GCC poison mmap mmap64 munmap mprotect mremap madvise sbrk mlock mlock2 munlock
#pragma GCC poison mlockall munlockall syscall ioctl fopen malloc calloc realloc

#endif  // VMASHADOW_CORE_ABI_NO_SYSCALLS_H_
