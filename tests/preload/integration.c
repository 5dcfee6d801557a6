// integration.c — one program, one subcommand per area of a process's life
// that libvmashadow.so must follow without changing it: glibc malloc (small,
// large mmap'd chunks, realloc through mremap, several arenas), 64 threads,
// dlopen/dlclose, fork+exec, posix_spawn, signal handlers that map memory
// (and a program's own SIGSYS handler), vfork. `all` runs the first seven in
// sequence; `sigsys_masked` (a SIGSYS the program itself blocks and later
// unblocks) is separate because only a preload that virtualises SIGSYS
// passes it; nor are `handlers` (a timer handler that siglongjmps out of mm
// calls, the handler and flags a program reads back, SA_RESETHAND, siginfo of
// queued signals), `altstack` (sigaltstack and tiny thread stacks), `stw`
// (threads blocked in syscalls suspended by a signal that reads their
// context, as stop-the-world collectors do) and `prof` (SIGPROF samples of
// a syscall loop).
//
// tests/preload/run_under.py runs it natively and under `vmashadow run` and
// requires identical exit status and stdout, so stdout carries only results
// that do not depend on the layout, the scheduler or pids: counts, checksums
// of data the program wrote, exit statuses, yes/no. Every subcommand checks
// what it did (contents survive realloc, children exit with the expected
// status, handlers ran) and exits 1 after printing "FAIL: ..." when something
// is wrong; 0 when everything held.
//
// Usage: integration SUBCOMMAND   (malloc threads dlopen forkexec spawn
//                                  signals vfork all sigsys_masked handlers
//                                  altstack stw prof cancel longjmp)
#define _GNU_SOURCE
#include <alloca.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <link.h>
#include <poll.h>
#include <sys/auxv.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <linux/futex.h>
#include <time.h>
#include <unistd.h>

extern char** environ;

#define PAGE 4096UL

static int failures = 0;

// Writes straight to fd 1 (no stdio buffer a fork child could flush twice).
static void Out(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  if (n > (int)sizeof(buf) - 1) n = (int)sizeof(buf) - 1;
  const char* p = buf;
  while (n > 0) {
    const ssize_t w = write(1, p, (size_t)n);
    if (w <= 0) _exit(3);
    p += w;
    n -= (int)w;
  }
}

// Records a failed expectation: "FAIL: <what>" on stdout and stderr.
static void Check(int ok, const char* fmt, ...) {
  if (ok) return;
  char buf[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  Out("FAIL: %s\n", buf);
  dprintf(2, "integration: FAIL: %s\n", buf);
  ++failures;
}

// A small deterministic generator; each user keeps its own state.
static uint64_t Next(uint64_t* s) {
  *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
  return *s >> 33;
}

static uint64_t Below(uint64_t* s, uint64_t n) { return Next(s) % n; }

static void Fill(unsigned char* p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; ++i) p[i] = (unsigned char)(seed + i * 131);
}

static int Verify(const unsigned char* p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != (unsigned char)(seed + i * 131)) return 0;
  }
  return 1;
}

// Maps, writes, protects and unmaps a few pages; 1 when all of it worked.
static int MapSome(size_t pages, unsigned seed) {
  unsigned char* p =
      mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return 0;
  Fill(p, pages * PAGE, seed);
  int ok = 1;
  if (pages > 2) {
    ok &= mprotect(p + PAGE, PAGE, PROT_READ) == 0;
    ok &= Verify(p, pages * PAGE, seed);
    ok &= mprotect(p + PAGE, PAGE, PROT_READ | PROT_WRITE) == 0;
    ok &= madvise(p, PAGE, MADV_DONTNEED) == 0;
    ok &= p[0] == 0;  // private anonymous memory reads back as zero
  }
  ok &= munmap(p, pages * PAGE) == 0;
  return ok;
}

// 1 when the process's malloc is glibc's (not jemalloc, tcmalloc or mimalloc
// preloaded beside us): the glibc-specific checks only make sense then.
static int GlibcMalloc(void) {
  void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  if (libc == NULL) return 0;
  const int same = dlsym(libc, "malloc") == dlsym(RTLD_DEFAULT, "malloc");
  dlclose(libc);
  return same;
}

// glibc marks a chunk served by its own mmap with bit 1 of the size word
// just before the user pointer (malloc/malloc.c: IS_MMAPPED).
static int GlibcChunkIsMmapped(const void* p) {
  const uintptr_t size_word = (uintptr_t)p - sizeof(size_t);
  return (*(const size_t*)size_word & 2) != 0;
}

// ---------------------------------------------------------------- malloc --

enum { kArenaThreads = 8, kArenaBlocks = 3000 };

struct ArenaWork {
  int index;
  pthread_barrier_t* barrier;
  void* left_for_main[64];  // freed by the main thread: frees across arenas
  size_t left_size[64];
  int ok;
};

static void* ArenaThread(void* arg) {
  struct ArenaWork* w = arg;
  uint64_t rng = 1000 + (uint64_t)w->index;
  void** blocks = malloc(kArenaBlocks * sizeof(*blocks));
  size_t* sizes = malloc(kArenaBlocks * sizeof(*sizes));
  if (blocks == NULL || sizes == NULL) abort();
  w->ok = 1;
  for (int i = 0; i < kArenaBlocks; ++i) {
    // Mostly small; every 100th one large enough for its own mapping.
    sizes[i] = i % 100 == 99 ? 200 * 1024 + Below(&rng, 200 * 1024) : 1 + Below(&rng, 2000);
    blocks[i] = malloc(sizes[i]);
    if (blocks[i] == NULL) abort();  // the others would wait at the barrier forever
    Fill(blocks[i], sizes[i], (unsigned)(w->index * 7 + i));
  }
  // All threads hold their arenas at once here, so glibc gave each its own.
  pthread_barrier_wait(w->barrier);
  for (int i = 0; i < kArenaBlocks; ++i) {
    w->ok &= Verify(blocks[i], sizes[i], (unsigned)(w->index * 7 + i));
    if (i < 64) {
      w->left_for_main[i] = blocks[i];
      w->left_size[i] = sizes[i];
    } else {
      free(blocks[i]);
    }
  }
  free(blocks);
  free(sizes);
  return NULL;
}

static void CmdMalloc(void) {
  const int glibc = GlibcMalloc();
  // A fixed threshold keeps chunks above 128 KiB on their own mappings
  // (glibc would otherwise raise it after the first such free).
  if (glibc) Check(mallopt(M_MMAP_THRESHOLD, 128 * 1024) == 1, "mallopt");
  uint64_t rng = 42;

  // Small blocks from the main arena (brk), freed in a shuffled order,
  // half of them reallocated, then all verified and freed.
  enum { kSmall = 20000 };
  unsigned char** blocks = calloc(kSmall, sizeof(*blocks));
  size_t* sizes = calloc(kSmall, sizeof(*sizes));
  Check(blocks != NULL && sizes != NULL, "calloc of the block tables");
  if (blocks == NULL || sizes == NULL) return;
  size_t total = 0;
  for (int i = 0; i < kSmall; ++i) {
    sizes[i] = 1 + Below(&rng, 1024);
    blocks[i] = malloc(sizes[i]);
    Check(blocks[i] != NULL, "malloc(%zu)", sizes[i]);
    if (blocks[i] == NULL) return;
    Fill(blocks[i], sizes[i], (unsigned)i);
    total += sizes[i];
  }
  for (int k = 0; k < kSmall / 2; ++k) {
    const int i = (int)Below(&rng, kSmall);
    free(blocks[i]);
    sizes[i] = 1 + Below(&rng, 4096);
    blocks[i] = malloc(sizes[i]);
    Check(blocks[i] != NULL, "malloc(%zu)", sizes[i]);
    if (blocks[i] == NULL) return;
    Fill(blocks[i], sizes[i], (unsigned)i);
  }
  int intact = 0;
  for (int i = 0; i < kSmall; ++i) intact += Verify(blocks[i], sizes[i], (unsigned)i);
  Check(intact == kSmall, "%d of %d small blocks intact", intact, kSmall);
  for (int i = 0; i < kSmall; ++i) free(blocks[i]);
  Out("malloc small: %d blocks, %zu bytes first round, %d intact\n", kSmall, total, intact);

  // Large blocks: each on its own mapping (checked for glibc), touched at
  // both ends, some from calloc (which must read back as zero).
  enum { kLarge = 40 };
  int mapped = 0, zeroed = 0;
  for (int i = 0; i < kLarge; ++i) {
    sizes[i] = 129 * 1024 + Below(&rng, 4 << 20);
    blocks[i] = i % 4 == 0 ? calloc(1, sizes[i]) : malloc(sizes[i]);
    Check(blocks[i] != NULL, "large malloc(%zu)", sizes[i]);
    if (blocks[i] == NULL) return;
    if (i % 4 == 0) zeroed += blocks[i][0] == 0 && blocks[i][sizes[i] - 1] == 0;
    if (glibc) mapped += GlibcChunkIsMmapped(blocks[i]);
    blocks[i][0] = (unsigned char)i;
    blocks[i][sizes[i] - 1] = (unsigned char)(i + 1);
  }
  int ends = 0;
  for (int k = 0; k < kLarge; ++k) {
    const int i = (k * 17) % kLarge;  // 17 is coprime to 40: every block once
    ends += blocks[i][0] == (unsigned char)i && blocks[i][sizes[i] - 1] == (unsigned char)(i + 1);
    free(blocks[i]);
  }
  Check(ends == kLarge, "%d of %d large blocks kept their ends", ends, kLarge);
  Check(zeroed == kLarge / 4, "%d of %d calloc'd blocks zeroed", zeroed, kLarge / 4);
  if (glibc) Check(mapped == kLarge, "%d of %d large chunks mmapped", mapped, kLarge);
  Out("malloc large: %d blocks, ends kept %d, calloc zeroed %d, own mappings %s\n", kLarge, ends,
      zeroed, glibc ? (mapped == kLarge ? "yes" : "no") : "n/a (not glibc malloc)");

  // realloc growth: glibc grows an mmapped chunk with mremap. The contents
  // written so far must survive every step, then shrink back to the heap.
  size_t cur = 160 * 1024;
  unsigned char* r = malloc(cur);
  Check(r != NULL, "realloc base");
  if (r == NULL) return;
  Fill(r, cur, 9);
  int steps = 0, kept = 0;
  while (cur < (48UL << 20)) {
    const size_t next = cur + cur / 2 + PAGE;
    unsigned char* q = realloc(r, next);
    Check(q != NULL, "realloc to %zu", next);
    if (q == NULL) break;
    kept += Verify(q, cur, 9);
    Fill(q, next, 9);
    r = q;
    cur = next;
    ++steps;
  }
  for (size_t shrink = cur / 3; shrink > 1000; shrink /= 7) {
    r = realloc(r, shrink);
    Check(r != NULL && Verify(r, shrink, 9), "realloc shrink to %zu", shrink);
    if (r == NULL) return;
    ++steps;
    ++kept;
  }
  free(r);
  Check(kept == steps, "contents kept over %d of %d realloc steps", kept, steps);
  Out("malloc realloc: %d steps up to %zu bytes and back, contents kept %d\n", steps, cur, kept);

  // Several threads allocating at once: glibc gives each its own arena.
  pthread_barrier_t barrier;
  pthread_barrier_init(&barrier, NULL, kArenaThreads);
  pthread_t tids[kArenaThreads];
  static struct ArenaWork work[kArenaThreads];
  for (int i = 0; i < kArenaThreads; ++i) {
    work[i].index = i;
    work[i].barrier = &barrier;
    Check(pthread_create(&tids[i], NULL, ArenaThread, &work[i]) == 0, "pthread_create");
  }
  int threads_ok = 0;
  for (int i = 0; i < kArenaThreads; ++i) {
    pthread_join(tids[i], NULL);
    threads_ok += work[i].ok;
  }
  pthread_barrier_destroy(&barrier);
  Check(threads_ok == kArenaThreads, "%d of %d arena threads ok", threads_ok, kArenaThreads);
  int cross_ok = 0;
  for (int i = 0; i < kArenaThreads; ++i) {
    for (int k = 0; k < 64; ++k) {
      cross_ok += Verify(work[i].left_for_main[k], work[i].left_size[k], (unsigned)(i * 7 + k));
      free(work[i].left_for_main[k]);
    }
  }
  Check(cross_ok == kArenaThreads * 64, "%d blocks freed across threads intact", cross_ok);
  const char* arenas = "n/a (not glibc malloc)";
  if (glibc) {
    // malloc_info lists one <heap nr="..."> per arena.
    static char info[1 << 20];
    memset(info, 0, sizeof(info));
    FILE* f = fmemopen(info, sizeof(info) - 1, "w");
    Check(f != NULL, "fmemopen");
    if (f != NULL) {
      malloc_info(0, f);
      fclose(f);
    }
    int heaps = 0;
    for (const char* s = info; (s = strstr(s, "<heap nr=")) != NULL; ++s) ++heaps;
    Check(heaps >= kArenaThreads + 1, "%d arenas, expected at least %d", heaps, kArenaThreads + 1);
    arenas = heaps >= kArenaThreads + 1 ? "yes" : "no";
    Check(malloc_trim(0) >= 0, "malloc_trim");
  }
  Out("malloc threads: %d threads ok, %d cross-thread frees, one arena each: %s\n", threads_ok,
      cross_ok, arenas);
  free(blocks);
  free(sizes);
}

// --------------------------------------------------------------- threads --

enum { kThreads = 64 };

struct ThreadWork {
  int index;
  uint64_t result;
};

static void* WorkerThread(void* arg) {
  struct ThreadWork* w = arg;
  uint64_t rng = 77 + (uint64_t)w->index;
  uint64_t sum = 0;
  int ok = 1;
  for (int round = 0; round < 3; ++round) {
    ok &= MapSome(1 + Below(&rng, 12), (unsigned)w->index);
    // A file-backed read-only mapping of a file every process has.
    const int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      void* p = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
      ok &= p != MAP_FAILED && memcmp(p, "\177ELF", 4) == 0;
      if (p != MAP_FAILED) ok &= munmap(p, PAGE) == 0;
      close(fd);
    } else {
      ok = 0;
    }
    size_t n = 16 + Below(&rng, 300 * 1024);
    unsigned char* b = malloc(n);
    if (b == NULL) {
      ok = 0;
      break;
    }
    Fill(b, n, (unsigned)(round + w->index));
    ok &= Verify(b, n, (unsigned)(round + w->index));
    sum += n;
    free(b);
  }
  w->result = ok ? sum : 0;
  return NULL;
}

static uint64_t ExpectedThreadSum(int index) {
  uint64_t rng = 77 + (uint64_t)index;
  uint64_t sum = 0;
  for (int round = 0; round < 3; ++round) {
    (void)Below(&rng, 12);
    sum += 16 + Below(&rng, 300 * 1024);
  }
  return sum;
}

static void CmdThreads(void) {
  static struct ThreadWork work[kThreads];
  pthread_t tids[kThreads];
  // Round 1: all 64 alive at once, default attributes except: every 8th
  // thread a 64 KiB stack, every 8th (offset 4) a 64 KiB guard, and four
  // threads on stacks the program mapped itself.
  void* own_stacks[kThreads] = {0};
  int created = 0, joined = 0, good = 0;
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < kThreads; ++i) {
      pthread_attr_t attr;
      pthread_attr_init(&attr);
      if (i % 8 == 0) pthread_attr_setstacksize(&attr, 64 * 1024);
      if (i % 8 == 4) pthread_attr_setguardsize(&attr, 64 * 1024);
      if (round == 0 && i % 16 == 6) {
        own_stacks[i] = mmap(NULL, 256 * 1024, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        Check(own_stacks[i] != MAP_FAILED, "mmap of a thread stack");
        if (own_stacks[i] == MAP_FAILED) return;
        pthread_attr_setstack(&attr, own_stacks[i], 256 * 1024);
      }
      work[i].index = i;
      work[i].result = 0;
      const int rc = pthread_create(&tids[i], &attr, WorkerThread, &work[i]);
      pthread_attr_destroy(&attr);
      Check(rc == 0, "pthread_create %d: %s", i, strerror(rc));
      if (rc != 0) return;
      ++created;
      // Round 2 joins in batches of 8, so glibc reuses cached stacks.
      if (round == 1 && i % 8 == 7) {
        for (int k = i - 7; k <= i; ++k) {
          joined += pthread_join(tids[k], NULL) == 0;
          good += work[k].result == ExpectedThreadSum(k);
        }
      }
    }
    if (round == 0) {
      for (int i = 0; i < kThreads; ++i) {
        joined += pthread_join(tids[i], NULL) == 0;
        good += work[i].result == ExpectedThreadSum(i);
      }
      for (int i = 0; i < kThreads; ++i) {
        if (own_stacks[i] != NULL) Check(munmap(own_stacks[i], 256 * 1024) == 0, "munmap stack");
      }
    }
  }
  Check(joined == 2 * kThreads && good == 2 * kThreads, "%d joined, %d good", joined, good);
  Out("threads: %d created, %d joined, %d with the expected result\n", created, joined, good);
}

// ---------------------------------------------------------------- dlopen --

static char plugin_path[PATH_MAX + 32];

// The plugin sits beside this executable (both built in tests/preload).
static void FindPlugin(void) {
  char self[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);  // NOLINT
  if (n <= 0) return;
  self[n] = 0;
  char* slash = strrchr(self, '/');
  if (slash != NULL) *slash = 0;
  snprintf(plugin_path, sizeof(plugin_path), "%s/libitest_plugin.so", self);
}

typedef int (*ValueFn)(int);
typedef int (*CallsFn)(void);
typedef const char* (*NameFn)(int);

// Loads the plugin, calls it `calls` times, unloads it; the sum of values,
// or -1 on any failure.
static long UsePlugin(int mode, int calls) {
  void* h = dlopen(plugin_path, mode);
  if (h == NULL) {
    dprintf(2, "integration: dlopen: %s\n", dlerror());
    return -1;
  }
  ValueFn value = (ValueFn)dlsym(h, "itest_plugin_value");
  CallsFn count = (CallsFn)dlsym(h, "itest_plugin_calls");
  NameFn name = (NameFn)dlsym(h, "itest_plugin_name");
  long sum = -1;
  if (value != NULL && count != NULL && name != NULL) {
    sum = 0;
    for (int i = 0; i < calls; ++i) sum += value(i);
    if (count() != calls || strcmp(name(1), "beta") != 0) sum = -1;
  }
  if (dlclose(h) != 0) sum = -1;
  return sum;
}

static void* PluginThread(void* arg) {
  long* out = arg;
  *out = UsePlugin(RTLD_LAZY, 50);
  return NULL;
}

static void CmdDlopen(void) {
  FindPlugin();
  long sums[6];
  int unloaded = 0;
  for (int round = 0; round < 6; ++round) {
    sums[round] = UsePlugin(round % 2 ? RTLD_LAZY : RTLD_NOW, 100 + round);
    Check(sums[round] > 0, "plugin round %d", round);
    // dlclose really unloaded it: a no-load open finds nothing.
    void* again = dlopen(plugin_path, RTLD_NOW | RTLD_NOLOAD);
    unloaded += again == NULL;
    if (again != NULL) dlclose(again);
  }
  Check(unloaded == 6, "plugin unloaded after %d of 6 dlclose calls", unloaded);
  // In threads: dynamic TLS for the plugin in each.
  pthread_t t[4];
  long tsum[4];
  for (int i = 0; i < 4; ++i) pthread_create(&t[i], NULL, PluginThread, &tsum[i]);
  for (int i = 0; i < 4; ++i) pthread_join(t[i], NULL);
  // The threads may load and unload it in any interleaving; each saw its own
  // 50 calls in its own TLS.
  for (int i = 0; i < 4; ++i) Check(tsum[i] == tsum[0] && tsum[0] > 0, "plugin in thread %d", i);
  Out("dlopen plugin: sums %ld %ld %ld %ld %ld %ld, unloaded %d/6, threads %ld\n", sums[0], sums[1],
      sums[2], sums[3], sums[4], sums[5], unloaded, tsum[0]);

  // libm: a system library with its own dependencies already loaded.
  int libm_ok = 0;
  char cosine[64] = "?";
  for (int round = 0; round < 3; ++round) {
    void* m = dlopen("libm.so.6", RTLD_NOW);
    Check(m != NULL, "dlopen libm.so.6");
    if (m == NULL) break;
    double (*cosfn)(double) = (double (*)(double))dlsym(m, "cos");
    double (*powfn)(double, double) = (double (*)(double, double))dlsym(m, "pow");
    if (cosfn != NULL && powfn != NULL) {
      snprintf(cosine, sizeof(cosine), "%.9f %.3f", cosfn(0.5), powfn(2.0, 10.0));
      ++libm_ok;
    }
    dlclose(m);
  }
  Check(libm_ok == 3, "libm used %d of 3 times", libm_ok);
  void* missing = dlopen("libvmashadow-no-such-library.so", RTLD_NOW);
  Check(missing == NULL, "a missing library opened");
  Out("dlopen libm: %d/3, cos(0.5) pow(2,10) = %s, missing library: %s\n", libm_ok, cosine,
      missing == NULL ? "NULL" : "opened?");
}

// -------------------------------------------------------------- forkexec --

static int WaitStatus(pid_t pid) {
  int status = 0;
  if (pid < 0) return -1000;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1001;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return -1002;
}

static atomic_int stop_mapper;

static void* MapperThread(void* arg) {
  (void)arg;
  unsigned seed = 0;
  while (!atomic_load(&stop_mapper)) {
    MapSome(4, seed++);
    free(malloc(1000 + seed % 300000));
  }
  return NULL;
}

static void CmdForkexec(void) {
  // The parent has a mapping the children modify in their own copies.
  unsigned char* shared_view =
      mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  Check(shared_view != MAP_FAILED, "parent mmap");
  if (shared_view == MAP_FAILED) return;
  Fill(shared_view, 16 * PAGE, 3);

  // A child that maps and changes memory, then execs /bin/true.
  pid_t a = fork();
  if (a == 0) {
    void* p = mmap(NULL, 32 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) _exit(100);
    memset(p, 1, 32 * PAGE);
    if (mprotect(p, 4 * PAGE, PROT_READ) != 0) _exit(101);
    if (munmap(shared_view, 4 * PAGE) != 0) _exit(102);
    // A page is a multiple of 256 bytes, so Fill's pattern restarts there.
    if (!Verify(shared_view + 4 * PAGE, 12 * PAGE, 3)) _exit(103);
    execl("/bin/true", "true", (char*)NULL);
    _exit(127);
  }
  // A child that execs a shell which exits 3.
  pid_t b = fork();
  if (b == 0) {
    execl("/bin/sh", "sh", "-c", "exit 3", (char*)NULL);
    _exit(127);
  }
  // A child that does not exec: mallocs, maps, exits 5 through exit().
  pid_t c = fork();
  if (c == 0) {
    void* big = malloc(1 << 20);
    int ok = big != NULL && MapSome(8, 1);
    free(big);
    exit(ok ? 5 : 104);
  }
  const int sa = WaitStatus(a), sb = WaitStatus(b), sc = WaitStatus(c);
  Check(sa == 0, "fork+exec /bin/true: status %d", sa);
  Check(sb == 3, "fork+exec sh -c 'exit 3': status %d", sb);
  Check(sc == 5, "fork child without exec: status %d", sc);
  Check(Verify(shared_view, 16 * PAGE, 3), "the parent's mapping changed");

  // Forks while another thread keeps mapping (the fork must not inherit a
  // held lock); half the children exec, half exit.
  pthread_t mapper;
  atomic_store(&stop_mapper, 0);
  pthread_create(&mapper, NULL, MapperThread, NULL);
  int threaded_ok = 0;
  for (int i = 0; i < 8; ++i) {
    pid_t d = fork();
    if (d == 0) {
      if (!MapSome(3, (unsigned)i)) _exit(105);
      if (i % 2 == 0) {
        char code[16];
        snprintf(code, sizeof(code), "exit %d", 10 + i);
        execl("/bin/sh", "sh", "-c", code, (char*)NULL);
        _exit(127);
      }
      exit(10 + i);
    }
    threaded_ok += WaitStatus(d) == 10 + i;
  }
  atomic_store(&stop_mapper, 1);
  pthread_join(mapper, NULL);
  Check(threaded_ok == 8, "%d of 8 forks beside a mapping thread ok", threaded_ok);
  Check(munmap(shared_view, 16 * PAGE) == 0, "parent munmap");
  Out("forkexec: true=%d sh=%d plain=%d threaded=%d/8\n", sa, sb, sc, threaded_ok);
}

// ----------------------------------------------------------------- spawn --

// posix_spawn(p) of argv with stdout captured through a pipe; returns the
// exit status and puts the output in out.
static int SpawnCapture(int use_path, char* const argv[], char* out, size_t cap, int* spawn_rc) {
  int fds[2];
  out[0] = 0;
  if (pipe2(fds, O_CLOEXEC) != 0) return -2000;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  pid_t pid;
  *spawn_rc = use_path ? posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ)
                       : posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  size_t len = 0;
  for (;;) {
    const ssize_t n = read(fds[0], out + len, cap - 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len += (size_t)n;
    if (len == cap - 1) break;
  }
  out[len] = 0;
  close(fds[0]);
  if (*spawn_rc != 0) return -3000;
  return WaitStatus(pid);
}

static void* SpawnThread(void* arg) {
  int* ok = arg;
  char out[128];
  int rc;
  char* argv[] = {"/bin/echo", "from", "a", "thread", NULL};
  *ok = 0;
  for (int i = 0; i < 5; ++i) {
    *ok += SpawnCapture(0, argv, out, sizeof(out), &rc) == 0 && strcmp(out, "from a thread\n") == 0;
  }
  return NULL;
}

static void CmdSpawn(void) {
  char out[256];
  int rc;
  char* echo[] = {"/bin/echo", "hello", "from", "echo", NULL};
  const int s1 = SpawnCapture(0, echo, out, sizeof(out), &rc);
  Check(s1 == 0 && strcmp(out, "hello from echo\n") == 0, "posix_spawn echo: %d '%s'", s1, out);
  char line1[256];
  snprintf(line1, sizeof(line1), "%s", out);
  line1[strcspn(line1, "\n")] = 0;

  char* echop[] = {"echo", "spawnp", "works", NULL};
  const int s2 = SpawnCapture(1, echop, out, sizeof(out), &rc);
  Check(s2 == 0 && strcmp(out, "spawnp works\n") == 0, "posix_spawnp echo: %d '%s'", s2, out);

  char* sh[] = {"/bin/sh", "-c", "echo shell; exit 9", NULL};
  const int s3 = SpawnCapture(0, sh, out, sizeof(out), &rc);
  Check(s3 == 9 && strcmp(out, "shell\n") == 0, "posix_spawn sh: %d '%s'", s3, out);

  char* missing[] = {"/nonexistent/vmashadow-no-such-program", NULL};
  SpawnCapture(0, missing, out, sizeof(out), &rc);
  Check(rc == ENOENT, "posix_spawn of a missing program: %d", rc);

  pthread_t t[4];
  int ok[4];
  for (int i = 0; i < 4; ++i) pthread_create(&t[i], NULL, SpawnThread, &ok[i]);
  int total = 0;
  for (int i = 0; i < 4; ++i) {
    pthread_join(t[i], NULL);
    total += ok[i];
  }
  Check(total == 20, "%d of 20 spawns from threads ok", total);
  Out("spawn: '%s' status %d, spawnp %d, sh %d, missing %s, threads %d/20\n", line1, s1, s2, s3,
      rc == ENOENT ? "ENOENT" : "?", total);
}

// --------------------------------------------------------------- signals --

static atomic_int handled_usr1, handled_alrm, handler_bad;
static atomic_int sigsys_runs, sigsys_code, sigsys_signo;

// Maps, writes, unmaps: what a handler of a real program might do.
static void MappingHandler(int sig) {
  const int saved = errno;
  unsigned char* p =
      mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    atomic_fetch_add(&handler_bad, 1);
  } else {
    p[0] = 1;
    p[PAGE] = 2;
    if (p[0] + p[PAGE] != 3 || munmap(p, 2 * PAGE) != 0) atomic_fetch_add(&handler_bad, 1);
  }
  atomic_fetch_add(sig == SIGUSR1 ? &handled_usr1 : &handled_alrm, 1);
  errno = saved;
}

static void OnSigsys(int sig, siginfo_t* info, void* uc) {
  (void)uc;
  atomic_store(&sigsys_signo, info->si_signo == sig ? sig : -1);
  atomic_store(&sigsys_code, info->si_code);
  atomic_fetch_add(&sigsys_runs, 1);
}

static pthread_t main_thread;
static atomic_int sender_done;

enum { kSent = 100 };

// Sends kSent signals (alternating SIGUSR1, SIGALRM) to the main thread,
// each after the previous one was handled.
static void* SenderThread(void* arg) {
  (void)arg;
  for (int i = 0; i < kSent; ++i) {
    const int before = atomic_load(&handled_usr1) + atomic_load(&handled_alrm);
    pthread_kill(main_thread, i % 2 ? SIGALRM : SIGUSR1);
    while (atomic_load(&handled_usr1) + atomic_load(&handled_alrm) == before) sched_yield();
  }
  atomic_store(&sender_done, 1);
  return NULL;
}

static void InstallHandler(int sig, int flags) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = MappingHandler;
  sa.sa_flags = flags;
  sigemptyset(&sa.sa_mask);
  Check(sigaction(sig, &sa, NULL) == 0, "sigaction %d", sig);
}

static int CountBlocked(const sigset_t* set) {
  int n = 0;
  for (int s = 1; s < NSIG; ++s) n += sigismember(set, s) == 1;
  return n;
}

static void CmdSignals(void) {
  main_thread = pthread_self();
  InstallHandler(SIGUSR1, SA_RESTART);
  InstallHandler(SIGALRM, 0);

  // A: signals from another thread while this one maps.
  atomic_store(&sender_done, 0);
  pthread_t sender;
  pthread_create(&sender, NULL, SenderThread, NULL);
  int loops = 0, ok = 1;
  while (!atomic_load(&sender_done)) {
    ok &= MapSome(1 + (unsigned)loops % 6, (unsigned)loops);
    void* b = malloc(1000 + (size_t)(loops % 7) * 100000);
    ok &= b != NULL;
    free(b);
    ++loops;
  }
  pthread_join(sender, NULL);
  Check(ok, "mm calls interrupted by signals failed");
  const int usr1 = atomic_load(&handled_usr1), alrm = atomic_load(&handled_alrm);
  Check(usr1 == kSent / 2 && alrm == kSent / 2, "handled %d SIGUSR1, %d SIGALRM", usr1, alrm);
  Out("signals from a thread: %d SIGUSR1 + %d SIGALRM handled while mapping\n", usr1, alrm);

  // B: an interval timer firing into mm calls.
  const int alrm_before = atomic_load(&handled_alrm);
  struct itimerval it = {{0, 500}, {0, 500}};
  setitimer(ITIMER_REAL, &it, NULL);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    ok &= MapSome(3, 5);
    if (atomic_load(&handled_alrm) - alrm_before >= 50) break;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (t1.tv_sec - t0.tv_sec > 60) break;
  }
  memset(&it, 0, sizeof(it));
  setitimer(ITIMER_REAL, &it, NULL);
  const int timer_alarms = atomic_load(&handled_alrm) - alrm_before;
  Check(timer_alarms >= 50 && ok, "%d timer alarms, mm calls ok %d", timer_alarms, ok);
  Out("signals from a timer: at least 50 handled: %s\n", timer_alarms >= 50 ? "yes" : "no");

  // C: every signal blocked around mm calls; a raised SIGUSR1 waits.
  sigset_t all, old, cur, pending;
  sigfillset(&all);
  Check(sigprocmask(SIG_BLOCK, &all, &old) == 0, "sigprocmask block");
  const int usr1_before = atomic_load(&handled_usr1);
  raise(SIGUSR1);
  int blocked_ok = MapSome(5, 11);
  void* big = malloc(3 << 20);
  blocked_ok &= big != NULL;
  free(big);
  const int ran_while_blocked = atomic_load(&handled_usr1) - usr1_before;
  sigprocmask(SIG_BLOCK, NULL, &cur);
  sigpending(&pending);
  const int n_blocked = CountBlocked(&cur);
  const int sys_blocked = sigismember(&cur, SIGSYS) == 1;
  const int usr1_pending = sigismember(&pending, SIGUSR1) == 1;
  Check(sigprocmask(SIG_SETMASK, &old, NULL) == 0, "sigprocmask restore");
  const int ran_after = atomic_load(&handled_usr1) - usr1_before;
  Check(blocked_ok && ran_while_blocked == 0 && usr1_pending && ran_after == 1,
        "blocked mm calls %d, ran while blocked %d, pending %d, ran after %d", blocked_ok,
        ran_while_blocked, usr1_pending, ran_after);
  Out("signals blocked: mm calls ok %d, %d signals in the mask, SIGSYS among them %d, "
      "SIGUSR1 pending %d, delivered on unblock %d\n",
      blocked_ok, n_blocked, sys_blocked, usr1_pending, ran_after);

  // D: the program's own SIGSYS handler.
  struct sigaction sa, q;
  memset(&sa, 0, sizeof(sa));
  sa.sa_sigaction = OnSigsys;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGUSR2);
  Check(sigaction(SIGSYS, &sa, NULL) == 0, "sigaction SIGSYS");
  memset(&q, 0, sizeof(q));
  sigaction(SIGSYS, NULL, &q);
  const int seen_installed = q.sa_sigaction == OnSigsys && (q.sa_flags & SA_SIGINFO) != 0 &&
                             sigismember(&q.sa_mask, SIGUSR2) == 1;
  raise(SIGSYS);
  const int runs1 = atomic_load(&sigsys_runs);
  const int code1 = atomic_load(&sigsys_code), signo1 = atomic_load(&sigsys_signo);
  const int mm_after = MapSome(4, 12);
  kill(getpid(), SIGSYS);  // SI_USER, delivered to some thread
  for (int i = 0; i < 1000 && atomic_load(&sigsys_runs) < 2; ++i) sched_yield();
  const int code2 = atomic_load(&sigsys_code);
  sa.sa_handler = SIG_DFL;
  sa.sa_flags = 0;
  Check(sigaction(SIGSYS, &sa, NULL) == 0, "sigaction SIGSYS default");
  memset(&q, 0, sizeof(q));
  sigaction(SIGSYS, NULL, &q);
  const int seen_default = q.sa_handler == SIG_DFL;
  const int runs = atomic_load(&sigsys_runs);
  Check(seen_installed && runs1 == 1 && signo1 == SIGSYS && code1 == SI_TKILL && mm_after &&
            runs == 2 && code2 == SI_USER && seen_default,
        "SIGSYS handler: installed %d, runs %d then %d, signo %d, codes %d %d, mm %d, default %d",
        seen_installed, runs1, runs, signo1, code1, code2, mm_after, seen_default);
  Out("signals SIGSYS: handler seen installed %d, ran %d times (SI_TKILL %d, SI_USER %d), "
      "mm calls after %d, reset to default %d\n",
      seen_installed, runs, code1 == SI_TKILL, code2 == SI_USER, mm_after, seen_default);

  Check(atomic_load(&handler_bad) == 0, "%d handlers failed to map", atomic_load(&handler_bad));
  signal(SIGUSR1, SIG_DFL);
  signal(SIGALRM, SIG_DFL);
}

// E: a thread that blocks every signal for its whole life and maps.
static void* BlockedThread(void* arg) {
  int* ok = arg;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  *ok = 1;
  for (int i = 0; i < 50; ++i) {
    *ok &= MapSome(2 + (unsigned)i % 5, (unsigned)i);
    void* b = malloc(200000 + (size_t)i * 1000);
    *ok &= b != NULL;
    free(b);
  }
  return NULL;
}

static void CmdSignalsBlockedThread(void) {
  pthread_t t;
  int ok = 0;
  pthread_create(&t, NULL, BlockedThread, &ok);
  pthread_join(t, NULL);
  Check(ok, "mm calls in a thread with every signal blocked");
  Out("signals blocked thread: mm calls ok %d\n", ok);
}

// A SIGSYS the program blocks is held pending like any other signal and runs
// its handler once unblocked.
static void CmdSigsysMasked(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_sigaction = OnSigsys;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  Check(sigaction(SIGSYS, &sa, NULL) == 0, "sigaction SIGSYS");
  atomic_store(&sigsys_runs, 0);
  sigset_t sys, old, pending;
  sigemptyset(&sys);
  sigaddset(&sys, SIGSYS);
  Check(sigprocmask(SIG_BLOCK, &sys, &old) == 0, "block SIGSYS");
  const int mm_blocked = MapSome(6, 1);
  raise(SIGSYS);
  const int mm_pending = MapSome(6, 2);
  const int runs_blocked = atomic_load(&sigsys_runs);
  sigpending(&pending);
  const int is_pending = sigismember(&pending, SIGSYS) == 1;
  Check(sigprocmask(SIG_SETMASK, &old, NULL) == 0, "unblock SIGSYS");
  const int runs_after = atomic_load(&sigsys_runs);
  Check(mm_blocked && mm_pending && runs_blocked == 0 && is_pending && runs_after == 1 &&
            atomic_load(&sigsys_code) == SI_TKILL,
        "masked SIGSYS: mm %d %d, runs while blocked %d, pending %d, runs after %d", mm_blocked,
        mm_pending, runs_blocked, is_pending, runs_after);
  Out("sigsys masked: mm calls ok %d, ran while blocked %d, pending %d, ran on unblock %d\n",
      mm_blocked && mm_pending, runs_blocked, is_pending, runs_after);
}

// ------------------------------------------------- handlers, as the program sees them --

static sigjmp_buf jump_env;
static volatile sig_atomic_t jump_armed;
static atomic_int jumps, stop_jump_mapper;

// Leaves whatever the main thread was doing, as shells do on SIGINT.
static void JumpHandler(int sig) {
  (void)sig;
  atomic_fetch_add(&jumps, 1);
  if (jump_armed) siglongjmp(jump_env, 1);
}

static void* JumpMapper(void* arg) {
  int* ok = arg;
  *ok = 1;
  sigset_t alrm;  // the jumps are the main thread's
  sigemptyset(&alrm);
  sigaddset(&alrm, SIGALRM);
  pthread_sigmask(SIG_BLOCK, &alrm, NULL);
  while (!atomic_load(&stop_jump_mapper)) *ok &= MapSome(2, 3);
  return NULL;
}

static atomic_int info_runs, info_bad, reset_runs;
static atomic_int want_value;

static void InfoHandler(int sig, siginfo_t* si, void* uc) {
  (void)uc;
  if (sig != SIGRTMIN || si->si_signo != sig || si->si_code != SI_QUEUE || si->si_pid != getpid() ||
      si->si_value.sival_int != atomic_load(&want_value)) {
    atomic_fetch_add(&info_bad, 1);
  }
  atomic_fetch_add(&info_runs, 1);
}

static void ResetHandler(int sig) {
  (void)sig;
  atomic_fetch_add(&reset_runs, 1);
}

enum { kQueued = 2000 };

// Queues kQueued real-time signals with values 0.. to the main thread, each
// after the previous one was handled.
static void* QueueThread(void* arg) {
  (void)arg;
  for (int i = 0; i < kQueued; ++i) {
    atomic_store(&want_value, i);
    const union sigval v = {.sival_int = i};
    while (pthread_sigqueue(main_thread, SIGRTMIN, v) != 0) sched_yield();
    while (atomic_load(&info_runs) == i) sched_yield();
  }
  atomic_store(&sender_done, 1);
  return NULL;
}

static void CmdHandlers(void) {
  main_thread = pthread_self();
  // A: a timer whose handler siglongjmps out of mm calls (a handler that
  // never returns must not leave the preload's lock held), while another
  // thread maps too.
  struct sigaction sa, q;
  int mapper_ok = 0;
  pthread_t mapper;
  atomic_store(&stop_jump_mapper, 0);
  sigset_t alrm, old_mask;  // the mapper starts with SIGALRM blocked
  sigemptyset(&alrm);
  sigaddset(&alrm, SIGALRM);
  pthread_sigmask(SIG_BLOCK, &alrm, &old_mask);
  pthread_create(&mapper, NULL, JumpMapper, &mapper_ok);
  pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = JumpHandler;
  sigemptyset(&sa.sa_mask);
  Check(sigaction(SIGALRM, &sa, NULL) == 0, "sigaction SIGALRM");
  struct itimerval it = {{0, 200}, {0, 200}};
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  setitimer(ITIMER_REAL, &it, NULL);
  sigsetjmp(jump_env, 1);
  jump_armed = 1;
  for (;;) {
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (atomic_load(&jumps) >= 300 || t1.tv_sec - t0.tv_sec > 60) break;
    unsigned char* p =
        mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) continue;
    p[0] = 1;
    mprotect(p + PAGE, PAGE, PROT_READ);
    munmap(p, 3 * PAGE);  // a jump may leak the mapping: that is fine
  }
  jump_armed = 0;
  memset(&it, 0, sizeof(it));
  setitimer(ITIMER_REAL, &it, NULL);
  signal(SIGALRM, SIG_IGN);
  atomic_store(&stop_jump_mapper, 1);
  pthread_join(mapper, NULL);
  Check(atomic_load(&jumps) >= 300 && mapper_ok, "%d jumps, mapper ok %d", atomic_load(&jumps),
        mapper_ok);
  Out("handlers longjmp: at least 300 jumps out of mm calls %d, mapper thread ok %d\n",
      atomic_load(&jumps) >= 300, mapper_ok);

  // B: the program reads back the handler and flags it installed.
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = ResetHandler;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGUSR1);
  Check(sigaction(SIGUSR2, &sa, NULL) == 0, "sigaction SIGUSR2");
  memset(&q, 0, sizeof(q));
  sigaction(SIGUSR2, NULL, &q);
  const int view_ok = q.sa_handler == ResetHandler && (q.sa_flags & SA_RESTART) != 0 &&
                      (q.sa_flags & (SA_SIGINFO | SA_RESETHAND)) == 0 &&
                      sigismember(&q.sa_mask, SIGUSR1) == 1;
  // SA_RESETHAND: the handler runs once, then the action reads SIG_DFL.
  sa.sa_flags = SA_RESETHAND;
  Check(sigaction(SIGUSR2, &sa, &q) == 0, "sigaction SIGUSR2 oneshot");
  const int old_ok = q.sa_handler == ResetHandler && (q.sa_flags & SA_RESETHAND) == 0;
  raise(SIGUSR2);
  memset(&q, 0, sizeof(q));
  sigaction(SIGUSR2, NULL, &q);
  const int reset_ok = atomic_load(&reset_runs) == 1 && q.sa_handler == SIG_DFL;
  Check(view_ok && old_ok && reset_ok, "sigaction view %d, old %d, reset %d", view_ok, old_ok,
        reset_ok);
  Out("handlers view: handler and flags read back %d, SA_RESETHAND ran once then default %d\n",
      view_ok && old_ok, reset_ok);

  // C: queued real-time signals keep their siginfo (code, sender, value)
  // while the main thread maps.
  memset(&sa, 0, sizeof(sa));
  sa.sa_sigaction = InfoHandler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  Check(sigaction(SIGRTMIN, &sa, NULL) == 0, "sigaction SIGRTMIN");
  atomic_store(&sender_done, 0);
  pthread_t sender;
  pthread_create(&sender, NULL, QueueThread, NULL);
  int ok = 1;
  while (!atomic_load(&sender_done)) ok &= MapSome(4, 9);
  pthread_join(sender, NULL);
  Check(ok && atomic_load(&info_runs) == kQueued && atomic_load(&info_bad) == 0,
        "queued: mm ok %d, %d handled, %d with wrong siginfo", ok, atomic_load(&info_runs),
        atomic_load(&info_bad));
  Out("handlers siginfo: %d queued signals handled with their value, code and sender %d\n", kQueued,
      atomic_load(&info_runs) == kQueued && atomic_load(&info_bad) == 0);
  signal(SIGRTMIN, SIG_DFL);
}

// -------------------------------------------------------------- altstack --

static atomic_int onstack_runs, onstack_flag_seen, onstack_eperm, onstack_own;
static char* onstack_lo;
static size_t onstack_size;

static void OnstackHandler(int sig) {
  (void)sig;
  // The handler runs on the stack the program set (Go checks this: "signal
  // received but handler not on signal stack").
  char here;
  if (&here >= onstack_lo && &here < onstack_lo + onstack_size) atomic_fetch_add(&onstack_own, 1);
  stack_t cur, try_set;
  memset(&try_set, 0, sizeof(try_set));
  try_set.ss_flags = SS_DISABLE;
  if (sigaltstack(NULL, &cur) == 0 && (cur.ss_flags & SS_ONSTACK)) {
    atomic_fetch_add(&onstack_flag_seen, 1);
  }
  if (sigaltstack(&try_set, NULL) == -1 && errno == EPERM) atomic_fetch_add(&onstack_eperm, 1);
  atomic_fetch_add(&onstack_runs, 1);
}

enum { kTinyThreads = 16, kTinyStack = 32 * 1024 };

// The stack left at the bottom: 3 KiB, or more on CPUs whose register state
// is larger. Natively the first call of syscall() and getppid() goes through
// the lazy-binding resolver, which saves the vector registers on the stack
// (xsave: about AT_MINSIGSTKSZ bytes, 3376 with AVX-512), so the margin
// follows the CPU: the kernel's minimal signal frame plus 1 KiB.
static size_t TinyMargin(void) {
  const size_t min_frame = (size_t)getauxval(AT_MINSIGSTKSZ);
  const size_t cpu = min_frame + 1024;
  return cpu > 3 * 1024 ? cpu : 3 * 1024;
}

// Runs at the bottom of a thread stack with about TinyMargin() bytes left:
// syscalls that trap under dispatch (an mm call through syscall(), and a
// plain one) must not need more stack than they do natively.
static __attribute__((noinline)) int AtStackBottom(void) {
  const long p =
      syscall(SYS_mmap, 0, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == -1) return 0;
  ((volatile char*)p)[0] = 1;
  int ok = syscall(SYS_mprotect, p, PAGE, PROT_READ) == 0;
  ok &= syscall(SYS_munmap, p, 2 * PAGE) == 0;
  ok &= syscall(SYS_getppid) == getppid();
  return ok;
}

static void* TinyStackThread(void* arg) {
  int* ok = arg;
  pthread_attr_t attr;
  void* lo = NULL;
  size_t size = 0;
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return NULL;
  pthread_attr_getstack(&attr, &lo, &size);
  pthread_attr_destroy(&attr);
  char here;
  const size_t used = (size_t)((char*)&here - (char*)lo);
  const size_t margin = TinyMargin();
  if (used <= margin) {
    *ok = 0;
    return NULL;
  }
  // Eat the stack down to the margin, then call.
  volatile char* eat = alloca(used - margin);
  eat[0] = 1;
  int good = 1;
  const int calls = *ok == -1 ? 1 : 20;  // -1: one call (the churn below)
  for (int i = 0; i < calls; ++i) good &= AtStackBottom();
  *ok = good && eat[0] == 1;
  return NULL;
}

static void CmdAltstack(void) {
  // A: the program's sigaltstack, as the kernel keeps it.
  stack_t ss, old;
  int ok = sigaltstack(NULL, &old) == 0 && (old.ss_flags & SS_DISABLE) && old.ss_size == 0;
  const size_t size = 64 * 1024;
  char* mine = malloc(size);
  onstack_lo = mine;
  onstack_size = size;
  ss.ss_sp = mine;
  ss.ss_size = size;
  ss.ss_flags = 0;
  ok &= sigaltstack(&ss, NULL) == 0;
  memset(&old, 0, sizeof(old));
  ok &=
      sigaltstack(NULL, &old) == 0 && old.ss_sp == mine && old.ss_size == size && old.ss_flags == 0;
  const int view_ok = ok;

  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = OnstackHandler;
  sa.sa_flags = SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  Check(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction SIGUSR1");
  raise(SIGUSR1);
  const int handler_ok = atomic_load(&onstack_runs) == 1 && atomic_load(&onstack_flag_seen) == 1 &&
                         atomic_load(&onstack_eperm) == 1 && atomic_load(&onstack_own) == 1;
  memset(&old, 0, sizeof(old));
  ok = sigaltstack(NULL, &old) == 0 && old.ss_flags == 0 && old.ss_sp == mine;

  // Errors in the kernel's order.
  ss.ss_flags = 42;
  ok &= sigaltstack(&ss, NULL) == -1 && errno == EINVAL;
  ss.ss_flags = 0;
  ss.ss_size = 1024;
  ok &= sigaltstack(&ss, NULL) == -1 && errno == ENOMEM;
  ok &= sigaltstack((const stack_t*)8, NULL) == -1 && errno == EFAULT;
  ss.ss_flags = SS_DISABLE;
  ok &= sigaltstack(&ss, NULL) == 0;
  memset(&old, 0, sizeof(old));
  ok &= sigaltstack(NULL, &old) == 0 && (old.ss_flags & SS_DISABLE) && old.ss_sp == NULL;
  const int errors_ok = ok;
  signal(SIGUSR1, SIG_DFL);
  free(mine);
  Check(view_ok && handler_ok && errors_ok, "sigaltstack view %d, on-stack handler %d, errors %d",
        view_ok, handler_ok, errors_ok);
  Out("altstack view: set and read back %d, SA_ONSTACK handler on its own stack, sees SS_ONSTACK "
      "and EPERM %d, "
      "EINVAL/ENOMEM/EFAULT/disable %d\n",
      view_ok, handler_ok, errors_ok);

  // B: threads with 32 KiB stacks making trapped syscalls with ~3 KiB left
  // (more on CPUs with a larger register state: TinyMargin()).
  pthread_t t[kTinyThreads];
  int tiny_ok[kTinyThreads];
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < kTinyThreads; ++i) {
      tiny_ok[i] = 0;
      pthread_attr_t attr;
      pthread_attr_init(&attr);
      pthread_attr_setstacksize(&attr, kTinyStack);
      Check(pthread_create(&t[i], &attr, TinyStackThread, &tiny_ok[i]) == 0, "pthread_create");
      pthread_attr_destroy(&attr);
    }
    int all = 1;
    for (int i = 0; i < kTinyThreads; ++i) {
      pthread_join(t[i], NULL);
      all &= tiny_ok[i];
    }
    Check(all, "round %d: a thread with a small stack failed", round);
    if (round == 2) {
      Out("altstack small stacks: %d threads x 3 rounds, 20 trapped mm calls each at the stack "
          "bottom ok %d\n",
          kTinyThreads, all);
    }
  }

  // C: more short-lived small-stack threads, one after another, than the
  // preload has signal stacks: slots of threads that ended are reused.
  int churn_ok = 1;
  for (int i = 0; i < 1100 && churn_ok; ++i) {
    pthread_t c;
    int r = -1;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, kTinyStack);
    churn_ok &= pthread_create(&c, &attr, TinyStackThread, &r) == 0;
    pthread_attr_destroy(&attr);
    if (churn_ok) pthread_join(c, NULL);
    churn_ok &= r == 1;
  }
  Check(churn_ok, "thread churn with small stacks");
  Out("altstack churn: 1100 small-stack threads in sequence, each trapping at its stack bottom, "
      "ok %d\n",
      churn_ok);
}

// ------------------------------------------------------------------- stw --
// A stop-the-world runtime in miniature (issue 20): threads blocked in
// syscalls are suspended with a signal whose handler reads the interrupted
// context, as conservative GCs and Go's preemption do. The context must be
// the program's: its stack pointer inside the thread's own stack, its
// instruction pointer outside libvmashadow.so but for the trampolines a
// trapped syscall runs in. Then every blocked call completes with its
// native result (EINTR or a restart, as SA_RESTART and the call decide).

enum { kStwThreads = 8 };
static const char* const kStwNames[kStwThreads] = {
    "futex", "nanosleep", "pipe read", "epoll_wait", "poll", "wait4", "sigwaitinfo", "mmap populate"};

struct StwThread {
  int index;
  pthread_t tid;
  uintptr_t stack_lo, stack_hi;
  atomic_int ready;      // about to block
  atomic_int suspended;  // its handler ran and parked
  int context_ok;        // what the handler saw
  uintptr_t rip, rsp;    // the interrupted context
  long result;           // the blocking call's return value
  int err;               // and errno
};

static struct StwThread stw[kStwThreads];
static atomic_int stw_resume;
static atomic_int stw_futex;
static int stw_pipe[2];
static int stw_child_pipe[2];
static int stw_epoll;
static pid_t stw_child;
static uintptr_t stw_lib_lo, stw_lib_hi;  // libvmashadow.so's text, when preloaded
static uintptr_t stw_tramp[3];            // its trampolines and the wrappers' entry, allowed
static uintptr_t stw_stub[13];            // its exported mm wrappers (stubs into the entry)

static int StwFindLib(struct dl_phdr_info* info, size_t size, void* data) {
  (void)size;
  (void)data;
  if (info->dlpi_name == NULL || strstr(info->dlpi_name, "libvmashadow") == NULL) return 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)* ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
      stw_lib_lo = info->dlpi_addr + ph->p_vaddr;
      stw_lib_hi = stw_lib_lo + ph->p_memsz;
    }
  }
  return 1;
}

// libvmashadow.so's text and its exported trampolines, when it is preloaded.
static void FindOurText(void) {
  dl_iterate_phdr(StwFindLib, NULL);
  stw_tramp[0] = (uintptr_t)dlsym(RTLD_DEFAULT, "vmashadow_syscall_tramp");
  stw_tramp[1] = (uintptr_t)dlsym(RTLD_DEFAULT, "vmashadow_mm_tramp");
  stw_tramp[2] = (uintptr_t)dlsym(RTLD_DEFAULT, "vmashadow_wrapper_entry");
  static const char* const kStubs[13] = {"mmap",   "mmap64",  "munmap",   "mprotect", "pkey_mprotect",
                                         "mremap", "madvise", "mlock",    "mlock2",   "munlock",
                                         "mlockall", "munlockall", "mseal"};
  for (int i = 0; i < 13; ++i) {
    const uintptr_t a = (uintptr_t)dlsym(RTLD_DEFAULT, kStubs[i]);
    if (a >= stw_lib_lo && a < stw_lib_hi) stw_stub[i] = a;  // ours, when preloaded
  }
}

// The calling thread's stack, [*lo, *hi).
static void ThisThreadStack(uintptr_t* lo, uintptr_t* hi) {
  pthread_attr_t attr;
  void* base = NULL;
  size_t size = 0;
  pthread_getattr_np(pthread_self(), &attr);
  pthread_attr_getstack(&attr, &base, &size);
  pthread_attr_destroy(&attr);
  *lo = (uintptr_t)base;
  *hi = (uintptr_t)base + size;
}

// True when the interrupted context is the program's.
static int ProgramContext(const ucontext_t* uc, uintptr_t lo, uintptr_t hi) {
  const uintptr_t rip = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
  const uintptr_t rsp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
  int ok = rsp >= lo && rsp < hi;
  if (rip >= stw_lib_lo && rip < stw_lib_hi) {
    int in_tramp = 0;
    for (int i = 0; i < 3; ++i) {
      in_tramp |= stw_tramp[i] != 0 && rip >= stw_tramp[i] && rip < stw_tramp[i] + 512;
    }
    for (int i = 0; i < 13; ++i) {
      in_tramp |= stw_stub[i] != 0 && rip >= stw_stub[i] && rip < stw_stub[i] + 16;
    }
    ok &= in_tramp;
  }
  return ok;
}

static __thread int stw_self = -1;

static void StwSuspend(int sig, siginfo_t* si, void* ctx) {
  (void)sig;
  (void)si;
  const int saved = errno;
  struct StwThread* t = &stw[stw_self];
  t->context_ok = ProgramContext(ctx, t->stack_lo, t->stack_hi);
  t->rip = (uintptr_t)((ucontext_t*)ctx)->uc_mcontext.gregs[REG_RIP];
  t->rsp = (uintptr_t)((ucontext_t*)ctx)->uc_mcontext.gregs[REG_RSP];
  sigset_t wait;
  pthread_sigmask(SIG_SETMASK, NULL, &wait);
  sigdelset(&wait, SIGRTMIN + 1);
  atomic_store(&t->suspended, 1);
  while (!atomic_load(&stw_resume)) sigsuspend(&wait);
  errno = saved;
}

static void StwResume(int sig) { (void)sig; }

static void* StwThreadMain(void* arg) {
  struct StwThread* t = arg;
  stw_self = t->index;
  ThisThreadStack(&t->stack_lo, &t->stack_hi);
  atomic_store(&t->ready, 1);
  long r = -1;
  errno = 0;
  switch (t->index) {
    case 0:  // restarted (no timeout) until woken
      r = syscall(SYS_futex, &stw_futex, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
      if (r == -1 && errno == EAGAIN) r = 0;  // woken before it slept
      break;
    case 1: {  // never restarted after a handler: EINTR
      struct timespec ts = {20, 0};
      r = nanosleep(&ts, &ts);
      break;
    }
    case 2: {  // SA_RESTART: restarted, then reads the byte written at the end
      char c;
      r = read(stw_pipe[0], &c, 1);
      break;
    }
    case 3: {  // EINTR whatever SA_RESTART says
      struct epoll_event ev;
      r = epoll_wait(stw_epoll, &ev, 1, 20000);
      break;
    }
    case 4: {  // EINTR
      struct pollfd p = {stw_pipe[0], 0, 0};
      r = poll(&p, 1, 20000);
      break;
    }
    case 5: {  // SA_RESTART: restarted until the child exits
      int status = 0;
      r = waitpid(stw_child, &status, 0) == stw_child && WIFEXITED(status) ? WEXITSTATUS(status) : -2;
      break;
    }
    case 6: {  // EINTR: the suspend signal is not in the set
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, SIGRTMIN + 2);
      r = sigwaitinfo(&set, NULL);
      break;
    }
    case 7: {  // a trapped mm call that takes long: the signal waits until it ends
      void* p = (void*)syscall(SYS_mmap, NULL, 1UL << 30, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE | MAP_NORESERVE, -1, 0);
      r = p != MAP_FAILED && ((volatile char*)p)[12345] == 0;
      // Through glibc's munmap: the exported wrapper (the signal may come
      // while its event runs, and waits until the wrapper's entry restores
      // the mask on the program's stack).
      if (p != MAP_FAILED) munmap(p, 1UL << 30);
      // Alive until resumed (the signal may come after the call).
      while (!atomic_load(&stw_resume)) sched_yield();
      break;
    }
  }
  t->result = r;
  t->err = r < 0 ? errno : 0;
  return NULL;
}

static void CmdStw(void) {
  FindOurText();
  Check(pipe(stw_pipe) == 0, "pipe");
  stw_epoll = epoll_create1(0);
  Check(stw_epoll >= 0, "epoll_create1");
  struct epoll_event ev = {EPOLLIN, {0}};
  Check(epoll_ctl(stw_epoll, EPOLL_CTL_ADD, stw_pipe[0], &ev) == 0, "epoll_ctl");
  Check(pipe(stw_child_pipe) == 0, "pipe");
  stw_child = fork();
  if (stw_child == 0) {
    // Exits once the parent closes its pipe's write end (all suspended).
    char c;
    close(stw_child_pipe[1]);
    while (read(stw_child_pipe[0], &c, 1) > 0) {
    }
    _exit(5);
  }
  close(stw_child_pipe[0]);
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGRTMIN + 2);
  pthread_sigmask(SIG_BLOCK, &block, NULL);
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_sigaction = StwSuspend;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  Check(sigaction(SIGRTMIN, &sa, NULL) == 0, "sigaction suspend");
  sa.sa_handler = StwResume;
  sa.sa_flags = SA_RESTART;
  Check(sigaction(SIGRTMIN + 1, &sa, NULL) == 0, "sigaction resume");
  for (int i = 0; i < kStwThreads; ++i) {
    stw[i].index = i;
    Check(pthread_create(&stw[i].tid, NULL, StwThreadMain, &stw[i]) == 0, "pthread_create");
  }
  for (int i = 0; i < kStwThreads; ++i) {
    while (!atomic_load(&stw[i].ready)) sched_yield();
  }
  // The populating mmap first, while it most likely still runs.
  usleep(20 * 1000);
  pthread_kill(stw[7].tid, SIGRTMIN);
  // Time for each to enter its call (counts, not timing: a call a signal
  // caught before it began would block for its full 20 s and show).
  struct timespec settle = {0, 500 * 1000 * 1000};
  nanosleep(&settle, NULL);
  for (int i = 0; i < kStwThreads; ++i) {
    if (i != 7) pthread_kill(stw[i].tid, SIGRTMIN);
    for (int spins = 0; !atomic_load(&stw[i].suspended) && spins < 200000; ++spins) usleep(50);
  }
  int all_suspended = 1;
  for (int i = 0; i < kStwThreads; ++i) all_suspended &= atomic_load(&stw[i].suspended);
  atomic_store(&stw_resume, 1);
  for (int i = 0; i < kStwThreads; ++i) pthread_kill(stw[i].tid, SIGRTMIN + 1);
  // Release the calls that wait for something.
  atomic_store(&stw_futex, 1);
  syscall(SYS_futex, &stw_futex, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
  Check(write(stw_pipe[1], "x", 1) == 1, "write");
  close(stw_pipe[1]);
  close(stw_child_pipe[1]);
  pthread_kill(stw[6].tid, SIGRTMIN + 2);
  for (int i = 0; i < kStwThreads; ++i) pthread_join(stw[i].tid, NULL);
  int contexts = 0;
  for (int i = 0; i < kStwThreads; ++i) {
    contexts += stw[i].context_ok;
    if (!stw[i].context_ok) {
      Dl_info info;
      memset(&info, 0, sizeof(info));
      dladdr((void*)stw[i].rip, &info);
      dprintf(2, "stw %s: interrupted at rip %#llx (file offset %#llx; %s+%#llx in %s) rsp %#llx, "
              "stack %#llx-%#llx\n",
              kStwNames[i], (unsigned long long)stw[i].rip,
              (unsigned long long)(stw[i].rip - (uintptr_t)info.dli_fbase),
              info.dli_sname ? info.dli_sname : "?",
              (unsigned long long)(stw[i].rip - (uintptr_t)info.dli_saddr),
              info.dli_fname ? info.dli_fname : "?", (unsigned long long)stw[i].rsp,
              (unsigned long long)stw[i].stack_lo, (unsigned long long)stw[i].stack_hi);
    }
    Out("stw %s: context is the program's %d, result %ld%s%s\n", kStwNames[i], stw[i].context_ok,
        stw[i].result, stw[i].result < 0 ? " " : "",
        stw[i].result < 0 ? strerrorname_np(stw[i].err) : "");
  }
  Check(all_suspended && contexts == kStwThreads, "%d of %d contexts were the program's", contexts,
        kStwThreads);
  Check(stw[0].result == 0 && stw[2].result == 1 && stw[5].result == 5 && stw[7].result == 1,
        "a restarted call did not complete");
  Check(stw[1].result == -1 && stw[1].err == EINTR && stw[3].err == EINTR &&
            stw[4].err == EINTR && stw[6].err == EINTR,
        "an interrupted call did not return EINTR");
  close(stw_pipe[0]);
  close(stw_epoll);
}

// ------------------------------------------------------------------ prof --
// SIGPROF sampling of a syscall-heavy loop (a profiler's view): no sample's
// instruction pointer may fall in our handler (only in the program or in
// the trampolines a trapped syscall runs in).

static atomic_int prof_samples, prof_bad;
static uintptr_t prof_stack_lo, prof_stack_hi;

static void ProfSample(int sig, siginfo_t* si, void* ctx) {
  (void)sig;
  (void)si;
  atomic_fetch_add(&prof_samples, 1);
  if (!ProgramContext(ctx, prof_stack_lo, prof_stack_hi)) atomic_fetch_add(&prof_bad, 1);
}

static void CmdProf(void) {
  FindOurText();
  ThisThreadStack(&prof_stack_lo, &prof_stack_hi);
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_sigaction = ProfSample;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  Check(sigaction(SIGPROF, &sa, NULL) == 0, "sigaction SIGPROF");
  struct itimerval it = {{0, 1000}, {0, 1000}};
  Check(setitimer(ITIMER_PROF, &it, NULL) == 0, "setitimer");
  // Trapped calls (syscall()) and the exported wrappers: time in
  // libvmashadow.so is then our SIGSYS handler or our model code, during
  // both of which every signal waits, or a trampoline, the wrappers' entry
  // or a wrapper stub, where a sample is the program's.
  long sum = 0;
  for (int i = 0; i < 200000 && atomic_load(&prof_samples) < 200; ++i) {
    sum += syscall(SYS_getppid) > 0;
    if (i % 64 == 0) {
      const long p = syscall(SYS_mmap, 0, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p != -1) syscall(SYS_munmap, p, PAGE);
      // And through the exported wrappers.
      void* q = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (q != MAP_FAILED) munmap(q, PAGE);
    }
  }
  memset(&it, 0, sizeof(it));
  setitimer(ITIMER_PROF, &it, NULL);
  signal(SIGPROF, SIG_IGN);
  Check(sum > 0, "getppid");
  Check(atomic_load(&prof_bad) == 0, "%d of %d samples interrupted our code",
        atomic_load(&prof_bad), atomic_load(&prof_samples));
  Out("prof: samples outside the program's context %d\n", atomic_load(&prof_bad));
}

// ---------------------------------------------------------------- cancel --
// pthread_cancel of threads blocked in cancellation points (read, nanosleep,
// pthread_cond_wait) that trapped: glibc cancels them from its SIGCANCEL
// handler by unwinding through the interrupted call (our trampoline, which
// carries CFI), and their cleanup handlers run, as natively.

static int cancel_fds[2];
static pthread_mutex_t cancel_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cancel_cv = PTHREAD_COND_INITIALIZER;
static int cancel_cleaned[3];

static void CancelCleanup(void* arg) { cancel_cleaned[(intptr_t)arg] = 1; }

static void CancelUnlock(void* arg) {
  (void)arg;
  pthread_mutex_unlock(&cancel_mu);
}

static void* CancelRead(void* arg) {
  pthread_cleanup_push(CancelCleanup, arg);
  char c;
  if (read(cancel_fds[0], &c, 1) < 0) Out("cancel: read failed\n");
  pthread_cleanup_pop(0);
  return NULL;
}

static void* CancelSleep(void* arg) {
  pthread_cleanup_push(CancelCleanup, arg);
  struct timespec ts = {30, 0};
  nanosleep(&ts, NULL);
  pthread_cleanup_pop(0);
  return NULL;
}

static void* CancelCond(void* arg) {
  pthread_mutex_lock(&cancel_mu);
  pthread_cleanup_push(CancelUnlock, NULL);
  pthread_cleanup_push(CancelCleanup, arg);
  pthread_cond_wait(&cancel_cv, &cancel_mu);
  pthread_cleanup_pop(0);
  pthread_cleanup_pop(1);
  return NULL;
}

static void CmdCancel(void) {
  Check(pipe(cancel_fds) == 0, "pipe");
  void* (*fns[3])(void*) = {CancelRead, CancelSleep, CancelCond};
  static const char* const names[3] = {"read", "nanosleep", "pthread_cond_wait"};
  pthread_t t[3];
  for (intptr_t i = 0; i < 3; ++i) Check(pthread_create(&t[i], NULL, fns[i], (void*)i) == 0, "create");
  struct timespec settle = {0, 300 * 1000 * 1000};
  nanosleep(&settle, NULL);
  for (int i = 0; i < 3; ++i) Check(pthread_cancel(t[i]) == 0, "pthread_cancel");
  int all = 1;
  for (int i = 0; i < 3; ++i) {
    void* r = NULL;
    pthread_join(t[i], &r);
    Out("cancel %s: %s, cleanup ran %d\n", names[i], r == PTHREAD_CANCELED ? "canceled" : "returned",
        cancel_cleaned[i]);
    all &= r == PTHREAD_CANCELED && cancel_cleaned[i];
  }
  Check(all, "a blocked thread was not cancelled with its cleanup");
  close(cancel_fds[0]);
  close(cancel_fds[1]);
}

// --------------------------------------------------------------- longjmp --
// 4 threads blocked in a trapped read() are interrupted 2,500 times each by a
// signal whose handler siglongjmps out of the call; then each maps and
// unmaps (trapped and through glibc). No lock may leak, nothing may hang.

enum { kJmpThreads = 4, kJmpRounds = 2500 };
static int jmp_pipe[2];
static __thread sigjmp_buf jmp_env;
static __thread volatile sig_atomic_t jmp_armed;
static atomic_int jmp_waiting[kJmpThreads];
static atomic_int jmp_done[kJmpThreads];

static void JmpHandler(int sig) {
  (void)sig;
  if (jmp_armed) {
    jmp_armed = 0;
    siglongjmp(jmp_env, 1);
  }
}

static void* JmpThread(void* arg) {
  const int me = (int)(intptr_t)arg;
  volatile int jumps = 0;
  for (volatile int i = 0; i < kJmpRounds; ++i) {
    if (sigsetjmp(jmp_env, 1) == 0) {
      jmp_armed = 1;
      atomic_store(&jmp_waiting[me], 1);
      char c;
      if (read(jmp_pipe[0], &c, 1) < 0) break;
    } else {
      ++jumps;
    }
  }
  atomic_store(&jmp_waiting[me], 0);
  int maps = 0;
  for (int i = 0; i < 10; ++i) {
    const long p = syscall(SYS_mmap, 0, 4 * PAGE, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void* q = mmap(NULL, 2 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    maps += p != -1 && q != MAP_FAILED && syscall(SYS_munmap, p, 4 * PAGE) == 0 &&
            munmap(q, 2 * PAGE) == 0;
  }
  atomic_store(&jmp_done[me], jumps == kJmpRounds && maps == 10);
  return NULL;
}

static void CmdLongjmp(void) {
  Check(pipe(jmp_pipe) == 0, "pipe");
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = JmpHandler;
  sigemptyset(&sa.sa_mask);
  Check(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction");
  pthread_t t[kJmpThreads];
  for (intptr_t i = 0; i < kJmpThreads; ++i) {
    Check(pthread_create(&t[i], NULL, JmpThread, (void*)i) == 0, "pthread_create");
  }
  for (int round = 0; round < kJmpRounds; ++round) {
    for (int i = 0; i < kJmpThreads; ++i) {
      while (!atomic_load(&jmp_waiting[i])) sched_yield();
      atomic_store(&jmp_waiting[i], 0);
      pthread_kill(t[i], SIGUSR1);
    }
  }
  int ok = 1;
  for (int i = 0; i < kJmpThreads; ++i) {
    pthread_join(t[i], NULL);
    ok &= atomic_load(&jmp_done[i]);
  }
  signal(SIGUSR1, SIG_DFL);
  Check(ok, "a thread did not longjmp out %d times, or could not map afterwards", kJmpRounds);
  Out("longjmp: %d threads x %d jumps out of a blocked read, then maps ok %d\n", kJmpThreads,
      kJmpRounds, ok);
  close(jmp_pipe[0]);
  close(jmp_pipe[1]);
}

// ----------------------------------------------------------------- vfork --

// vfork; the child execs path (NULL: exits with status 7 at once) or, when
// the exec fails, exits 42 for ENOENT and 43 otherwise. In a function of its
// own so that no local of the caller lives across the shared-stack child.
static __attribute__((noinline)) pid_t VforkExec(const char* path, char* const argv[]) {
  const pid_t p = vfork();
  if (p == 0) {
    if (path == NULL) _exit(7);
    execve(path, argv, environ);
    _exit(errno == ENOENT ? 42 : 43);
  }
  return p;
}

static void CmdVfork(void) {
  unsigned char* mine =
      mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  Check(mine != MAP_FAILED, "mmap");
  if (mine == MAP_FAILED) return;
  Fill(mine, 8 * PAGE, 21);

  const int s_exit = WaitStatus(VforkExec(NULL, NULL));
  int ok = MapSome(3, 1);
  char* true_argv[] = {"true", NULL};
  const int s_true = WaitStatus(VforkExec("/bin/true", true_argv));
  ok &= MapSome(5, 2);
  char* sh_argv[] = {"sh", "-c", "exit 4", NULL};
  const int s_sh = WaitStatus(VforkExec("/bin/sh", sh_argv));
  char* missing_argv[] = {"missing", NULL};
  const int s_missing =
      WaitStatus(VforkExec("/nonexistent/vmashadow-no-such-program", missing_argv));

  // Ten more in a row, the parent mapping between them, reaped at the end.
  pid_t kids[10];
  for (int i = 0; i < 10; ++i) {
    kids[i] = VforkExec("/bin/true", true_argv);
    ok &= MapSome(2, (unsigned)i);
  }
  int many = 0;
  for (int i = 0; i < 10; ++i) many += WaitStatus(kids[i]) == 0;
  ok &= Verify(mine, 8 * PAGE, 21) && munmap(mine, 8 * PAGE) == 0;
  Check(s_exit == 7 && s_true == 0 && s_sh == 4 && s_missing == 42 && many == 10 && ok,
        "vfork: exit %d true %d sh %d missing %d many %d mm %d", s_exit, s_true, s_sh, s_missing,
        many, ok);
  Out("vfork: _exit=%d true=%d sh=%d missing=%d, %d/10 more, mm calls between ok %d\n", s_exit,
      s_true, s_sh, s_missing, many, ok);
}

// ------------------------------------------------------------------ main --

struct Command {
  const char* name;
  void (*run)(void);
};

static void CmdSignalsAll(void) {
  CmdSignals();
  CmdSignalsBlockedThread();
}

static const struct Command kCommands[] = {
    {"malloc", CmdMalloc},     {"threads", CmdThreads},
    {"dlopen", CmdDlopen},     {"forkexec", CmdForkexec},
    {"spawn", CmdSpawn},       {"signals", CmdSignalsAll},
    {"vfork", CmdVfork},       {"sigsys_masked", CmdSigsysMasked},
    {"handlers", CmdHandlers}, {"altstack", CmdAltstack},
    {"stw", CmdStw},           {"prof", CmdProf},
    {"cancel", CmdCancel},     {"longjmp", CmdLongjmp},
};
enum { kInAll = 7 };  // the first seven make up `all`

int main(int argc, char** argv) {
  if (argc != 2) {
    dprintf(2,
            "usage: %s malloc|threads|dlopen|forkexec|spawn|signals|vfork|all|sigsys_masked|"
            "handlers|altstack\n",
            argv[0]);
    return 2;
  }
  int found = 0;
  for (int i = 0; i < (int)(sizeof(kCommands) / sizeof(kCommands[0])); ++i) {
    const int in_all = strcmp(argv[1], "all") == 0 && i < kInAll;
    if (in_all || strcmp(argv[1], kCommands[i].name) == 0) {
      kCommands[i].run();
      found = 1;
    }
  }
  if (!found) {
    dprintf(2, "integration: unknown subcommand '%s'\n", argv[1]);
    return 2;
  }
  Out("%s: %s\n", argv[1], failures == 0 ? "ok" : "FAILED");
  return failures == 0 ? 0 : 1;
}
