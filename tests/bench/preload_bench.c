// preload_bench.c — one micro-benchmark per run, for preload_bench.py: the
// cost of one operation in ns (median of 7 rounds), printed on stdout.
//   preload_bench OP ITERS
// OP: mmap_libc    mmap+munmap of 4 KiB through glibc (the exported wrappers),
//                  placed by a hint in a hole between PROT_NONE neighbours
//     mmap_libc_merge  the same, in a hole above a read-write anonymous VMA
//                  that the page merges into
//     mmap_raw     the same pair through syscall() (trapped under dispatch)
//     mmap_raw_merge  the merging pair through syscall()
//     getppid_libc getppid() (a plain syscall; trapped under dispatch)
//     getppid_raw  syscall(SYS_getppid)
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double NowNs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int Cmp(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

// Where the mmap+munmap pairs go, so that the kernel does the same work
// natively and under the preload (plain mmap(NULL) lands next to the
// preload's own memory and merges with it, which costs less):
//   hole        one page between two PROT_NONE reservations: every mmap makes
//               a VMA of its own (no merge), every munmap removes it;
//   merge_hole  one page above a written read-write anonymous VMA: every
//               mmap extends that VMA (a merge), every munmap splits it back.
static char* hole;
static char* merge_hole;

static void MakeHoles(void) {
  char* r = mmap(NULL, 128 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (r == MAP_FAILED) abort();
  hole = r + 32 * 4096;
  if (munmap(hole, 4096) != 0) abort();
  merge_hole = r + 96 * 4096;
  char* below = merge_hole - 8 * 4096;
  if (munmap(below, 9 * 4096) != 0) abort();
  if (mmap(below, 8 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
           0) != below) {
    abort();
  }
  below[0] = 1;  // an anon_vma: the new page merges into it
}

static void MapUnmap(char* at) {
  void* p = mmap(at, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p != at || munmap(p, 4096) != 0) abort();
}

static void Op(int op) {
  switch (op) {
    case 0:
      MapUnmap(hole);
      break;
    case 1: {
      long p =
          syscall(SYS_mmap, hole, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p != (long)hole || syscall(SYS_munmap, p, 4096) != 0) abort();
      break;
    }
    case 2:
      (void)getppid();
      break;
    case 3:
      (void)syscall(SYS_getppid);
      break;
    case 4:
      MapUnmap(merge_hole);
      break;
    case 5: {
      long p = syscall(SYS_mmap, merge_hole, 4096, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p != (long)merge_hole || syscall(SYS_munmap, p, 4096) != 0) abort();
      break;
    }
  }
}

int main(int argc, char** argv) {
  static const char* const kOps[] = {"mmap_libc",   "mmap_raw",        "getppid_libc",
                                     "getppid_raw", "mmap_libc_merge", "mmap_raw_merge"};
  if (argc != 3) {
    fprintf(stderr, "usage: preload_bench OP ITERS\n");
    return 2;
  }
  int op = -1;
  for (int i = 0; i < 6; ++i) {
    if (strcmp(argv[1], kOps[i]) == 0) op = i;
  }
  const long iters = atol(argv[2]);
  if (op < 0 || iters <= 0) {
    fprintf(stderr, "preload_bench: bad OP or ITERS\n");
    return 2;
  }
  MakeHoles();
  for (long i = 0; i < iters / 10; ++i) Op(op);  // warm up
  double rounds[7];
  for (int r = 0; r < 7; ++r) {
    const double t0 = NowNs();
    for (long i = 0; i < iters; ++i) Op(op);
    rounds[r] = (NowNs() - t0) / iters;
  }
  qsort(rounds, 7, sizeof(rounds[0]), Cmp);
  printf("%.1f\n", rounds[3]);
  return 0;
}
