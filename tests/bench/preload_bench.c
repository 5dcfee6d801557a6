// preload_bench.c — one micro-benchmark per run, for preload_bench.py: the
// cost of one operation in ns (median of 7 rounds), printed on stdout.
//   preload_bench OP ITERS
// OP: mmap_libc    mmap+munmap of 4 KiB through glibc (the exported wrappers),
//                  placed by a hint in a hole between PROT_NONE neighbours
//     mmap_raw     the same pair through syscall() (trapped under dispatch)
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

// Where the mmap+munmap pairs go: a one-page hole between two PROT_NONE
// reservations (the hint), so the new VMA never merges with a neighbour and
// the kernel does the same work natively and under the preload (a hole next
// to the preload's own anonymous memory would merge and cost less).
static char* hole;

static void MakeHole(void) {
  char* r = mmap(NULL, 64 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (r == MAP_FAILED) abort();
  hole = r + 32 * 4096;
  if (munmap(hole, 4096) != 0) abort();
}

static void Op(int op) {
  switch (op) {
    case 0: {
      void* p = mmap(hole, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p != hole || munmap(p, 4096) != 0) abort();
      break;
    }
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
  }
}

int main(int argc, char** argv) {
  static const char* const kOps[] = {"mmap_libc", "mmap_raw", "getppid_libc", "getppid_raw"};
  if (argc != 3) {
    fprintf(stderr, "usage: preload_bench OP ITERS\n");
    return 2;
  }
  int op = -1;
  for (int i = 0; i < 4; ++i) {
    if (strcmp(argv[1], kOps[i]) == 0) op = i;
  }
  const long iters = atol(argv[2]);
  if (op < 0 || iters <= 0) {
    fprintf(stderr, "preload_bench: bad OP or ITERS\n");
    return 2;
  }
  MakeHole();
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
