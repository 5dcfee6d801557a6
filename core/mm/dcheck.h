// dcheck.h — VMASHADOW_DCHECK(cond): a cheap precondition check of the
// model's own bookkeeping (split points, merge ranges, VMA bounds), on when
// NDEBUG is not defined (the test and debug builds; meson's b_ndebug=if-release
// turns it off in release builds) or when VMASHADOW_DCHECKS is defined.
//
// A failed check calls abort() (__builtin_abort, so no header is needed and
// the check may follow core/abi/no_syscalls.h): async-signal-safe and allowed
// in core. No message, since core makes no syscalls; the core dump or the
// debugger shows the place. Depends on nothing; preload-safe.
#ifndef VMASHADOW_CORE_MM_DCHECK_H_
#define VMASHADOW_CORE_MM_DCHECK_H_

#if !defined(NDEBUG) || defined(VMASHADOW_DCHECKS)
#define VMASHADOW_DCHECK_IS_ON 1
#define VMASHADOW_DCHECK(cond)          \
  do {                                  \
    if (__builtin_expect(!(cond), 0)) { \
      __builtin_abort();                \
    }                                   \
  } while (0)
#else
#define VMASHADOW_DCHECK_IS_ON 0
#define VMASHADOW_DCHECK(cond) \
  do {                         \
    if (false && (cond)) {     \
    }                          \
  } while (0)
#endif

#endif  // VMASHADOW_CORE_MM_DCHECK_H_
