// stress.c — 16 threads making random memory-mapping calls at once for a
// fixed time (--seconds=N, default 5): mmap (fixed, anonymous private and
// shared, and loose ones the kernel places), munmap, mprotect, madvise,
// mremap (shrink, fixed moves, growing loose mappings), mlock/mlock2/munlock,
// plus malloc/realloc/free. Under libvmashadow.so it must finish with 0
// divergences and no deadlock.
//
// Each thread works inside its own reserved region (PROT_NONE, NORESERVE)
// and keeps a page table of what it expects there: protection, and the word
// it last wrote at the start of the page (or zero for fresh memory). It
// checks readable pages against that table, so a wrong syscall result or a
// call the preload mangled shows up as a failure even without the preload's
// own checks. A range a call leaves unmapped (munmap, mremap) is reserved
// again at once with MAP_FIXED_NOREPLACE; if another thread's loose mapping
// or malloc took part of the hole meanwhile, those pages are marked lost and
// never touched again (a MAP_FIXED there would destroy someone else's
// memory).
//
// Seeds are fixed per thread; the interleaving is not, so the totals per
// call (printed to stderr) vary from run to run. stdout carries only
// "stress: ok" (or FAIL lines) so it can be compared byte for byte. Exit
// status 0 when every expectation held.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL

enum {
  kThreads = 16,
  kRegionPages = 512,
  kLoose = 6,
  kBlocks = 48,
};

// What a thread expects of one page of its region.
enum Kind { kReserved, kPrivate, kShared, kLost };
enum { kUnknownProt = -1 };

struct PageState {
  int8_t kind;     // enum Kind
  int8_t prot;     // PROT_* or kUnknownProt (then never touched)
  uint8_t known;   // value is what the first word holds
  uint8_t locked;  // mlock may have succeeded on it (VM_LOCKED)
  uint32_t value;  // the first 32-bit word of the page
};

enum Call {
  kMmap,
  kMunmap,
  kMprotect,
  kMadvise,
  kMremap,
  kMlock,
  kMunlock,
  kMalloc,
  kFree,
  kVerified,
  kLostPages,
  kCallCount
};
static const char* const kCallNames[kCallCount] = {
    "mmap",    "munmap", "mprotect", "madvise",        "mremap",    "mlock",
    "munlock", "malloc", "free",     "pages_verified", "pages_lost"};

struct Worker {
  int index;
  uint64_t rng;
  unsigned char* region;
  struct PageState pages[kRegionPages];
  void* loose[kLoose];
  size_t loose_len[kLoose];
  unsigned char* blocks[kBlocks];
  size_t block_len[kBlocks];
  uint32_t stamp;
  uint64_t counts[kCallCount];
  char failure[256];
};

static struct Worker workers[kThreads];
static atomic_int failed;
static double seconds = 5;

static uint64_t Next(uint64_t* s) {
  *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
  return *s >> 33;
}

static uint64_t Below(struct Worker* w, uint64_t n) { return Next(&w->rng) % n; }

static int Fail(struct Worker* w, const char* what, long rc) {
  if (w->failure[0] == 0) {
    snprintf(w->failure, sizeof(w->failure), "thread %d: %s (rc %ld, errno %d %s)", w->index, what,
             rc, errno, strerror(errno));
  }
  atomic_store(&failed, 1);
  return 0;
}

static unsigned char* PageAddr(struct Worker* w, int page) {
  return w->region + (size_t)page * PAGE;
}

// A random range of up to max_pages pages with no lost page in it; 0 when
// the pick hit a lost page (the caller skips the operation).
static int PickRange(struct Worker* w, int max_pages, int* first, int* n) {
  *n = 1 + (int)Below(w, (uint64_t)max_pages);
  *first = (int)Below(w, (uint64_t)(kRegionPages - *n + 1));
  for (int i = *first; i < *first + *n; ++i) {
    if (w->pages[i].kind == kLost) return 0;
  }
  return 1;
}

// Reserves [first, first+n) again after a call unmapped it. Pages someone
// else's mapping took in the meantime become lost.
static void Rereserve(struct Worker* w, int first, int n) {
  void* want = PageAddr(w, first);
  void* p = mmap(want, (size_t)n * PAGE, PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
  if (p == want) {
    for (int i = first; i < first + n; ++i) {
      w->pages[i] = (struct PageState){kReserved, PROT_NONE, 1, 0, 0};
    }
    return;
  }
  if (p != MAP_FAILED) munmap(p, (size_t)n * PAGE);  // a kernel ignoring NOREPLACE
  for (int i = first; i < first + n; ++i) {
    void* want1 = PageAddr(w, i);
    void* q = mmap(want1, PAGE, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    if (q == want1) {
      w->pages[i] = (struct PageState){kReserved, PROT_NONE, 1, 0, 0};
    } else {
      if (q != MAP_FAILED) munmap(q, PAGE);
      w->pages[i] = (struct PageState){kLost, kUnknownProt, 0, 0, 0};
      ++w->counts[kLostPages];
    }
  }
}

// Writes a fresh stamp at the start of each writable page of the range.
static void Stamp(struct Worker* w, int first, int n) {
  for (int i = first; i < first + n; ++i) {
    struct PageState* s = &w->pages[i];
    if (s->prot == kUnknownProt || !(s->prot & PROT_WRITE) || !(s->prot & PROT_READ)) continue;
    const uint32_t v = ((uint32_t)w->index << 24) | (++w->stamp & 0xffffff);
    *(volatile uint32_t*)PageAddr(w, i) = v;
    s->value = v;
    s->known = 1;
  }
}

// Checks each readable page with a known first word.
static int VerifyRange(struct Worker* w, int first, int n) {
  for (int i = first; i < first + n; ++i) {
    const struct PageState* s = &w->pages[i];
    if (s->kind == kLost || s->prot == kUnknownProt || !s->known || !(s->prot & PROT_READ)) {
      continue;
    }
    const uint32_t got = *(volatile uint32_t*)PageAddr(w, i);
    ++w->counts[kVerified];
    if (got != s->value) {
      char what[96];
      snprintf(what, sizeof(what), "page %d holds %#x, expected %#x", i, got, s->value);
      errno = 0;
      return Fail(w, what, 0);
    }
  }
  return 1;
}

static const int kProts[] = {PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE,
                             PROT_READ | PROT_EXEC};

static int OpMmapFixed(struct Worker* w) {
  int first, n;
  if (!PickRange(w, 16, &first, &n)) return 1;
  const int shared = Below(w, 4) == 0;
  const int prot = kProts[Below(w, 5)];
  void* want = PageAddr(w, first);
  ++w->counts[kMmap];
  void* p = mmap(want, (size_t)n * PAGE, prot,
                 (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  if (p != want) return Fail(w, "mmap MAP_FIXED", (long)p);
  for (int i = first; i < first + n; ++i) {
    w->pages[i] = (struct PageState){(int8_t)(shared ? kShared : kPrivate), (int8_t)prot, 1, 0, 0};
  }
  Stamp(w, first, n);
  return VerifyRange(w, first, n);
}

static int OpMunmap(struct Worker* w) {
  int first, n;
  if (!PickRange(w, 12, &first, &n)) return 1;
  if (!VerifyRange(w, first, n)) return 0;
  ++w->counts[kMunmap];
  const int rc = munmap(PageAddr(w, first), (size_t)n * PAGE);
  if (rc != 0) return Fail(w, "munmap", rc);
  Rereserve(w, first, n);
  return 1;
}

static int OpMprotect(struct Worker* w) {
  int first, n;
  if (!PickRange(w, 24, &first, &n)) return 1;
  const int prot = kProts[Below(w, 5)];
  ++w->counts[kMprotect];
  const int rc = mprotect(PageAddr(w, first), (size_t)n * PAGE, prot);
  if (rc != 0) return Fail(w, "mprotect", rc);
  for (int i = first; i < first + n; ++i) w->pages[i].prot = (int8_t)prot;
  if (Below(w, 2) == 0) Stamp(w, first, n);
  return VerifyRange(w, first, n);
}

static const int kAdvice[] = {MADV_DONTNEED, MADV_FREE,       MADV_WILLNEED, MADV_NORMAL,
                              MADV_RANDOM,   MADV_SEQUENTIAL, MADV_HUGEPAGE, MADV_NOHUGEPAGE,
                              MADV_DONTFORK, MADV_DOFORK,     MADV_DONTDUMP, MADV_DODUMP,
                              MADV_COLD,     MADV_PAGEOUT};

static int OpMadvise(struct Worker* w) {
  int first, n;
  if (!PickRange(w, 16, &first, &n)) return 1;
  const int advice = kAdvice[Below(w, sizeof(kAdvice) / sizeof(kAdvice[0]))];
  ++w->counts[kMadvise];
  const int rc = madvise(PageAddr(w, first), (size_t)n * PAGE, advice);
  if (rc != 0) {
    // MADV_FREE refuses shared mappings; FREE, DONTNEED, COLD and PAGEOUT
    // refuse locked ones; all after applying to the VMAs before them.
    // Anything else is unexpected.
    int any_shared = 0, any_locked = 0;
    for (int i = first; i < first + n; ++i) {
      any_shared |= w->pages[i].kind == kShared;
      any_locked |= w->pages[i].locked;
    }
    const int explained = errno == EINVAL && ((advice == MADV_FREE && any_shared) ||
                                              ((advice == MADV_FREE || advice == MADV_DONTNEED ||
                                                advice == MADV_COLD || advice == MADV_PAGEOUT) &&
                                               any_locked));
    if (!explained) {
      char what[64];
      snprintf(what, sizeof(what), "madvise(%d pages, advice %d)", n, advice);
      return Fail(w, what, rc);
    }
    for (int i = first; i < first + n; ++i) {
      if (w->pages[i].kind != kShared) w->pages[i].known = 0;
    }
    return 1;
  }
  for (int i = first; i < first + n; ++i) {
    struct PageState* s = &w->pages[i];
    // Shared memory keeps its contents; reserved pages are private too.
    if (s->kind == kShared || s->kind == kLost) continue;
    if (advice == MADV_DONTNEED) {
      s->value = 0;
      s->known = 1;
    } else if (advice == MADV_FREE) {
      s->known = 0;  // zero or the old value, as the kernel pleases
    }
  }
  return VerifyRange(w, first, n);
}

static int OpMremap(struct Worker* w) {
  const uint64_t k = Below(w, 3);
  if (k == 0) {
    // Shrink in place: the tail is unmapped whatever VMAs it spans.
    int first, n;
    if (!PickRange(w, 12, &first, &n) || n < 2) return 1;
    const int keep = 1 + (int)Below(w, (uint64_t)n - 1);
    ++w->counts[kMremap];
    void* p = mremap(PageAddr(w, first), (size_t)n * PAGE, (size_t)keep * PAGE, 0);
    if (p == MAP_FAILED) {
      // Only a range starting outside a mapping (EFAULT) is refused.
      if (errno == EFAULT) return 1;
      return Fail(w, "mremap shrink", -1);
    }
    Rereserve(w, first + keep, n - keep);
    return VerifyRange(w, first, keep);
  }
  if (k == 1) {
    // A fixed move (possibly resizing) of a freshly mapped source, so the
    // source is one VMA and the move cannot half-succeed.
    int src, n, dst, m;
    if (!PickRange(w, 8, &src, &n)) return 1;
    if (!PickRange(w, 8, &dst, &m)) return 1;
    if (!(dst + m <= src || src + n <= dst)) return 1;  // overlap: EINVAL
    // Shared anonymous memory is a shmem file of the original size: pages a
    // grow adds lie beyond its end (SIGBUS), so shared moves never grow.
    const int shared = Below(w, 3) == 0 && m <= n;
    void* want = PageAddr(w, src);
    ++w->counts[kMmap];
    void* p = mmap(want, (size_t)n * PAGE, PROT_READ | PROT_WRITE,
                   (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (p != want) return Fail(w, "mmap before mremap", (long)p);
    for (int i = src; i < src + n; ++i) {
      w->pages[i] = (struct PageState){(int8_t)(shared ? kShared : kPrivate),
                                       PROT_READ | PROT_WRITE, 1, 0, 0};
    }
    Stamp(w, src, n);
    ++w->counts[kMremap];
    void* to = PageAddr(w, dst);
    void* q = mremap(want, (size_t)n * PAGE, (size_t)m * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, to);
    if (q != to) return Fail(w, "mremap fixed move", (long)q);
    for (int i = 0; i < m; ++i) {
      w->pages[dst + i] = i < n ? w->pages[src + i]
                                : (struct PageState){(int8_t)(shared ? kShared : kPrivate),
                                                     PROT_READ | PROT_WRITE, 1, 0, 0};
    }
    Rereserve(w, src, n);
    return VerifyRange(w, dst, m);
  }
  // Grow a loose mapping, letting the kernel move it.
  const int slot = (int)Below(w, kLoose);
  if (w->loose[slot] == NULL) return 1;
  const size_t new_len = w->loose_len[slot] + (1 + Below(w, 64)) * PAGE;
  ++w->counts[kMremap];
  void* p = mremap(w->loose[slot], w->loose_len[slot], new_len, MREMAP_MAYMOVE);
  if (p == MAP_FAILED) return Fail(w, "mremap grow", -1);
  unsigned char* c = p;
  if (c[0] != (unsigned char)slot || c[w->loose_len[slot] - 1] != (unsigned char)(slot + 1)) {
    errno = 0;
    return Fail(w, "loose mapping lost its contents in mremap", 0);
  }
  c[new_len - 1] = (unsigned char)(slot + 1);
  w->loose[slot] = p;
  w->loose_len[slot] = new_len;
  return 1;
}

static int OpLoose(struct Worker* w) {
  const int slot = (int)Below(w, kLoose);
  if (w->loose[slot] != NULL) {
    ++w->counts[kMunmap];
    const int rc = munmap(w->loose[slot], w->loose_len[slot]);
    if (rc != 0) return Fail(w, "munmap loose", rc);
    w->loose[slot] = NULL;
    return 1;
  }
  const size_t len = (1 + Below(w, 256)) * PAGE;
  ++w->counts[kMmap];
  void* p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return Fail(w, "mmap loose", -1);
  unsigned char* c = p;
  c[0] = (unsigned char)slot;
  c[len - 1] = (unsigned char)(slot + 1);
  w->loose[slot] = p;
  w->loose_len[slot] = len;
  return 1;
}

static int OpMlock(struct Worker* w) {
  int first, n;
  if (!PickRange(w, 8, &first, &n)) return 1;
  void* a = PageAddr(w, first);
  const size_t len = (size_t)n * PAGE;
  const uint64_t k = Below(w, 3);
  if (k == 2) {
    ++w->counts[kMunlock];
    const int rc = munlock(a, len);
    if (rc != 0) return Fail(w, "munlock", rc);
    for (int i = first; i < first + n; ++i) w->pages[i].locked = 0;
    return 1;
  }
  ++w->counts[kMlock];
  const int rc = k == 0 ? mlock(a, len) : mlock2(a, len, MLOCK_ONFAULT);
  // Without CAP_IPC_LOCK the limit may refuse; that is not a failure.
  if (rc != 0 && errno != ENOMEM && errno != EPERM && errno != EAGAIN) {
    return Fail(w, "mlock", rc);
  }
  for (int i = first; i < first + n; ++i) w->pages[i].locked = 1;
  // Unlock again most of the time so that the region stays varied.
  if (Below(w, 4) != 0) {
    ++w->counts[kMunlock];
    if (munlock(a, len) != 0) return Fail(w, "munlock", -1);
    for (int i = first; i < first + n; ++i) w->pages[i].locked = 0;
  }
  return VerifyRange(w, first, n);
}

static int OpMalloc(struct Worker* w) {
  const int slot = (int)Below(w, kBlocks);
  unsigned char* b = w->blocks[slot];
  if (b != NULL) {
    const size_t len = w->block_len[slot];
    for (size_t i = 0; i < len; i += 997) {
      if (b[i] != (unsigned char)(slot + i)) {
        errno = 0;
        return Fail(w, "malloc block corrupted", 0);
      }
    }
    if (Below(w, 3) == 0) {  // realloc, possibly across the mmap threshold
      const size_t new_len = 1 + Below(w, 400 * 1024);
      ++w->counts[kMalloc];
      unsigned char* r = realloc(b, new_len);
      if (r == NULL) return Fail(w, "realloc", 0);
      for (size_t i = 0; i < new_len; i += 997) r[i] = (unsigned char)(slot + i);
      w->blocks[slot] = r;
      w->block_len[slot] = new_len;
      return 1;
    }
    ++w->counts[kFree];
    free(b);
    w->blocks[slot] = NULL;
    return 1;
  }
  // Mostly small, sometimes above the mmap threshold.
  const size_t len = Below(w, 8) == 0 ? 128 * 1024 + Below(w, 1 << 20) : 1 + Below(w, 4096);
  ++w->counts[kMalloc];
  b = malloc(len);
  if (b == NULL) return Fail(w, "malloc", 0);
  for (size_t i = 0; i < len; i += 997) b[i] = (unsigned char)(slot + i);
  w->blocks[slot] = b;
  w->block_len[slot] = len;
  return 1;
}

static double Now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void* WorkerMain(void* arg) {
  struct Worker* w = arg;
  w->rng = 0x5eed0000ULL + (uint64_t)w->index * 7919;
  w->region = mmap(NULL, kRegionPages * PAGE, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (w->region == MAP_FAILED) {
    Fail(w, "mmap of the region", -1);
    return NULL;
  }
  for (int i = 0; i < kRegionPages; ++i) {
    w->pages[i] = (struct PageState){kReserved, PROT_NONE, 1, 0, 0};
  }
  const double end = Now() + seconds;
  for (uint64_t step = 0; !atomic_load(&failed); ++step) {
    if (step % 32 == 0 && Now() >= end) break;
    int ok;
    switch (Below(w, 16)) {
      case 0:
      case 1:
      case 2:
        ok = OpMmapFixed(w);
        break;
      case 3:
      case 4:
        ok = OpMunmap(w);
        break;
      case 5:
      case 6:
        ok = OpMprotect(w);
        break;
      case 7:
      case 8:
        ok = OpMadvise(w);
        break;
      case 9:
      case 10:
        ok = OpMremap(w);
        break;
      case 11:
        ok = OpLoose(w);
        break;
      case 12:
        ok = OpMlock(w);
        break;
      default:
        ok = OpMalloc(w);
        break;
    }
    if (!ok) break;
  }
  // Clean up: everything this thread still holds.
  for (int i = 0; i < kLoose; ++i) {
    if (w->loose[i] != NULL && munmap(w->loose[i], w->loose_len[i]) != 0) {
      Fail(w, "final munmap loose", -1);
    }
  }
  for (int i = 0; i < kBlocks; ++i) free(w->blocks[i]);
  // The region minus lost pages, in runs.
  for (int i = 0; i < kRegionPages;) {
    if (w->pages[i].kind == kLost) {
      ++i;
      continue;
    }
    int j = i;
    while (j < kRegionPages && w->pages[j].kind != kLost) ++j;
    if (!VerifyRange(w, i, j - i)) break;
    if (munmap(PageAddr(w, i), (size_t)(j - i) * PAGE) != 0) Fail(w, "final munmap", -1);
    i = j;
  }
  return NULL;
}

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (strncmp(argv[i], "--seconds=", 10) == 0) {
      seconds = atof(argv[i] + 10);
    } else {
      fprintf(stderr, "usage: %s [--seconds=N]\n", argv[0]);
      return 2;
    }
  }
  if (!(seconds > 0)) {
    fprintf(stderr, "stress: --seconds must be positive\n");
    return 2;
  }
  pthread_t tids[kThreads];
  for (int i = 0; i < kThreads; ++i) {
    workers[i].index = i;
    const int rc = pthread_create(&tids[i], NULL, WorkerMain, &workers[i]);
    if (rc != 0) {
      fprintf(stderr, "stress: pthread_create: %s\n", strerror(rc));
      return 1;
    }
  }
  for (int i = 0; i < kThreads; ++i) pthread_join(tids[i], NULL);

  uint64_t totals[kCallCount] = {0};
  for (int i = 0; i < kThreads; ++i) {
    for (int c = 0; c < kCallCount; ++c) totals[c] += workers[i].counts[c];
  }
  fprintf(stderr, "stress: %d threads, %.1f s:", kThreads, seconds);
  for (int c = 0; c < kCallCount; ++c) {
    fprintf(stderr, " %s=%llu", kCallNames[c], (unsigned long long)totals[c]);
  }
  fprintf(stderr, "\n");
  int bad = 0;
  for (int i = 0; i < kThreads; ++i) {
    if (workers[i].failure[0] != 0) {
      printf("stress: FAIL: %s\n", workers[i].failure);
      fprintf(stderr, "stress: FAIL: %s\n", workers[i].failure);
      bad = 1;
    }
  }
  // Every call kind must have happened (a zero means the test lost its teeth).
  for (int c = 0; c < kVerified; ++c) {
    if (totals[c] == 0 && !bad) {
      printf("stress: FAIL: no %s calls made\n", kCallNames[c]);
      bad = 1;
    }
  }
  if (!bad) printf("stress: ok\n");
  return bad ? 1 : 0;
}
