// exercise.c — a deterministic program that makes a few hundred memory-mapping
// calls through glibc's exported functions (mmap, munmap, mprotect,
// pkey_mprotect, mremap, madvise, brk, sbrk, mlock, mlock2, munlock, mlockall,
// munlockall), forks once and maps from a signal handler.
//
// Run under libvmashadow.so with VMASHADOW_CHECK=every, every call is checked
// against /proc/self/maps. Its stdout must be identical with and without the
// preload, so it prints only results that do not depend on the address-space
// layout (success or errno, never addresses). It never calls malloc (output
// goes through snprintf into a stack buffer and write(2)), so glibc makes no
// hidden brk/mmap calls the exported wrappers cannot see, and it does not
// touch the memory it maps (page faults give VMAs anon_vmas behind the
// wrappers' back; mlock populates, which the model predicts).
//
// With the argument "hidden" it also makes one raw mmap syscall the wrappers
// cannot see, right after mapping its window: the checker must report exactly
// that one divergence and resynchronise (stdout is the same either way).
// With "hidden-miss" the raw mapping is followed by a wrapper call whose
// result the model cannot predict: that miss is the one divergence.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096UL
#define WINDOW_PAGES 256UL

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t Next(void) {
  rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
  return rng_state >> 33;
}

static uint64_t Below(uint64_t n) { return Next() % n; }

static void Out(const char* fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  if (n > (int)sizeof(buf) - 1) n = (int)sizeof(buf) - 1;
  if (write(1, buf, (size_t)n) < 0) _exit(3);
}

// Prints "step op: ok" or "step op: ENAME".
static void Report(int step, const char* op, int failed) {
  if (failed) {
    Out("%d %s: errno %d\n", step, op, errno);
  } else {
    Out("%d %s: ok\n", step, op);
  }
}

static char* window;
static int file_fd = -1;

static void OnSignal(int sig) {
  (void)sig;
  void* p = mmap(NULL, 3 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p != MAP_FAILED) munmap(p, 3 * PAGE);
}

// A random page range inside the window.
static void Range(char** addr, size_t* len, uint64_t max_pages) {
  const uint64_t pages = 1 + Below(max_pages);
  const uint64_t first = Below(WINDOW_PAGES - pages);
  *addr = window + first * PAGE;
  *len = pages * PAGE;
}

static const int kProts[] = {PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE, PROT_READ | PROT_EXEC};
static const int kAdvice[] = {MADV_NORMAL,   MADV_RANDOM, MADV_SEQUENTIAL, MADV_DONTNEED,
                              MADV_DONTFORK, MADV_DOFORK, MADV_HUGEPAGE,   MADV_NOHUGEPAGE,
                              MADV_DONTDUMP, MADV_DODUMP, MADV_WIPEONFORK, MADV_KEEPONFORK,
                              MADV_WILLNEED, 12345};

int main(int argc, char** argv) {
  // The window has a PROT_NONE guard page on each side that no call touches,
  // so nothing outside can grow into it; loose mappings are larger than the
  // window, so the kernel never places one in a hole inside it. Both keep the
  // output independent of where the kernel put things.
  char* guarded = mmap(NULL, (WINDOW_PAGES + 2) * PAGE, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (guarded == MAP_FAILED) return 2;
  window = guarded + PAGE;
  Out("window: ok\n");
  if (argc > 1 && strcmp(argv[1], "hidden") == 0) {
    if (syscall(SYS_mmap, window, 2 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
                0) != (long)window) {
      return 2;
    }
  }
  if (argc > 1 && strcmp(argv[1], "hidden-miss") == 0) {
    // A raw mapping the wrappers cannot see, then a wrapper call whose
    // result depends on it: the kernel refuses (EEXIST) where the model,
    // which believes the range free, predicts success. That one miss must
    // be one divergence, with its sample; everything after is exact again.
    long raw = syscall(SYS_mmap, 0, 2 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw < 0) return 2;
    void* again =
        mmap((void*)raw, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    Out("hidden-miss: %s\n", again == MAP_FAILED && errno == EEXIST ? "EEXIST" : "other");
    if (munmap((void*)raw, 2 * PAGE) != 0) return 2;
  }

  char path[] = "/tmp/vmashadow-exercise-XXXXXX";
  file_fd = mkstemp(path);
  if (file_fd < 0 || ftruncate(file_fd, 64 * PAGE) != 0) return 2;
  unlink(path);

  void* loose[8] = {0};
  size_t loose_len[8] = {0};
  char* initial_brk = sbrk(0);
  intptr_t brk_pages = 0;

  for (int step = 0; step < 400; ++step) {
    char* addr;
    size_t len;
    const uint64_t op = Below(16);
    switch (op) {
      case 0:
      case 1: {  // fixed anonymous mapping in the window
        Range(&addr, &len, 8);
        const int shared = Below(5) == 0;
        void* p = mmap(addr, len, kProts[Below(4)],
                       (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        Report(step, shared ? "mmap-fixed-shared" : "mmap-fixed", p == MAP_FAILED);
        break;
      }
      case 2: {  // fixed file mapping in the window
        Range(&addr, &len, 8);
        const int shared = Below(2) == 0;
        const uint64_t off = Below(32) * PAGE;
        void* p = mmap(addr, len, kProts[Below(3)], (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED,
                       file_fd, (off_t)off);
        Report(step, "mmap-file", p == MAP_FAILED);
        break;
      }
      case 3:
        Range(&addr, &len, 12);
        Report(step, "munmap", munmap(addr, len) != 0);
        break;
      case 4:
      case 5:
        Range(&addr, &len, 12);
        Report(step, "mprotect", mprotect(addr, len, kProts[Below(4)]) != 0);
        break;
      case 6:
        Range(&addr, &len, 12);
        Report(step, "madvise",
               madvise(addr, len, kAdvice[Below(sizeof(kAdvice) / sizeof(kAdvice[0]))]) != 0);
        break;
      case 7: {  // mlock / mlock2 / munlock
        Range(&addr, &len, 4);
        const uint64_t k = Below(3);
        if (k == 0) {
          Report(step, "mlock", mlock(addr, len) != 0);
        } else if (k == 1) {
          Report(step, "mlock2", mlock2(addr, len, MLOCK_ONFAULT) != 0);
        } else {
          Report(step, "munlock", munlock(addr, len) != 0);
        }
        break;
      }
      case 8: {  // mremap inside the window: shrink, or move to a fixed place
        char* to;
        size_t to_len;
        Range(&addr, &len, 6);
        if (Below(2) == 0) {
          void* p = mremap(addr, len, len / 2 > PAGE ? len / 2 : PAGE, 0);
          Report(step, "mremap-shrink", p == MAP_FAILED);
        } else {
          Range(&to, &to_len, 6);
          if (to + len > window + WINDOW_PAGES * PAGE) to = window + WINDOW_PAGES * PAGE - len;
          void* p = mremap(addr, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
          Report(step, "mremap-fixed", p == MAP_FAILED);
        }
        break;
      }
      case 9:
      case 10: {  // loose (non-fixed) mappings: placement is predicted
        const int slot = (int)Below(8);
        if (loose[slot] != NULL) {
          Report(step, "munmap-loose", munmap(loose[slot], loose_len[slot]) != 0);
          loose[slot] = NULL;
        } else {
          loose_len[slot] = (WINDOW_PAGES + 1 + Below(16)) * PAGE;
          const int file = Below(4) == 0;
          void* p = file ? mmap(NULL, loose_len[slot], PROT_READ, MAP_SHARED, file_fd, 0)
                         : mmap(NULL, loose_len[slot], kProts[Below(4)],
                                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
          Report(step, "mmap-loose", p == MAP_FAILED);
          if (p != MAP_FAILED) loose[slot] = p;
        }
        break;
      }
      case 11: {  // grow a loose mapping, letting the kernel move it
        const int slot = (int)Below(8);
        if (loose[slot] == NULL) break;
        const size_t new_len = loose_len[slot] + (1 + Below(8)) * PAGE;
        void* p = mremap(loose[slot], loose_len[slot], new_len, MREMAP_MAYMOVE);
        Report(step, "mremap-grow", p == MAP_FAILED);
        if (p != MAP_FAILED) {
          loose[slot] = p;
          loose_len[slot] = new_len;
        }
        break;
      }
      case 12: {  // the break
        if (brk_pages > 0 && Below(2) == 0) {
          const intptr_t k = 1 + (intptr_t)Below((uint64_t)brk_pages);
          Report(step, "sbrk-shrink", sbrk(-k * (intptr_t)PAGE) == (void*)-1);
          brk_pages -= k;
        } else if (Below(4) == 0) {
          char* target = initial_brk + (brk_pages + 2) * (intptr_t)PAGE;
          Report(step, "brk", brk(target) != 0);
          brk_pages += 2;
        } else {
          const intptr_t k = 1 + (intptr_t)Below(6);
          Report(step, "sbrk-grow", sbrk(k * (intptr_t)PAGE) == (void*)-1);
          brk_pages += k;
        }
        break;
      }
      case 13: {  // calls the kernel refuses
        const uint64_t k = Below(6);
        if (k == 0) {
          Report(step, "munmap-unaligned", munmap(window + 1, PAGE) != 0);
        } else if (k == 1) {
          Report(step, "mprotect-badprot", mprotect(window, PAGE, 0x100) != 0);
        } else if (k == 2) {
          Report(step, "mremap-badflags", mremap(window, PAGE, 2 * PAGE, 0x40) == MAP_FAILED);
        } else if (k == 3) {
          Report(step, "mmap-badfd",
                 mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, 999, 0) == MAP_FAILED);
        } else if (k == 4) {
          Report(step, "mmap-zero",
                 mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED);
        } else {
          Report(step, "mprotect-unmapped", mprotect((void*)0x10000, PAGE, PROT_READ) != 0);
        }
        break;
      }
      case 14:
        Range(&addr, &len, 8);
        Report(step, "pkey_mprotect",
               pkey_mprotect(addr, len, kProts[Below(4)], Below(2) == 0 ? -1 : 0) != 0);
        break;
      case 15:
        if (Below(4) == 0) {
          Report(step, "mlockall-onfault", mlockall(MCL_CURRENT | MCL_ONFAULT) != 0);
          Report(step, "munlockall", munlockall() != 0);
        } else {
          Range(&addr, &len, 8);
          void* p = mmap(addr, len, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
          Report(step, "mmap-noreplace", p == MAP_FAILED);
        }
        break;
    }
  }

  // A signal handler that maps and unmaps.
  signal(SIGUSR1, OnSignal);
  raise(SIGUSR1);
  Out("signal: ok\n");

  // A fork child makes its own calls and exits normally.
  fflush(NULL);
  const pid_t pid = fork();
  if (pid == 0) {
    void* p = mmap(NULL, 5 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int bad = p == MAP_FAILED;
    bad |= mprotect(p, PAGE, PROT_READ) != 0;
    bad |= munmap(p, 5 * PAGE) != 0;
    bad |= munmap(window, WINDOW_PAGES * PAGE) != 0;
    exit(bad ? 1 : 0);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return 2;
  Out("child: exit %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);

  for (int i = 0; i < 8; ++i) {
    if (loose[i] != NULL) munmap(loose[i], loose_len[i]);
  }
  if (brk_pages > 0) Report(-1, "sbrk-release", sbrk(-brk_pages * (intptr_t)PAGE) == (void*)-1);
  Report(-1, "munmap-window", munmap(guarded, (WINDOW_PAGES + 2) * PAGE) != 0);
  close(file_fd);
  return 0;
}
