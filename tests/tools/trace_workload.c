// trace_workload.c — a program whose mappings the trace tests know exactly.
//
//   trace_workload pattern   make_mappings() makes exactly 7 mmaps (a PROT_NONE
//                            reservation whose first and last pages stay
//                            PROT_NONE, three rw blocks A, C, B filled in the
//                            order A, B, C so that A+C and B hold different
//                            anon_vmas, a read-only block R after B, a file
//                            mapping F whose second half maps another offset),
//                            prints their addresses, then unmaps nothing. The
//                            file is $TMPDIR/trace_workload.<pid>.dat (kept).
//   trace_workload churn N   N rounds of mmap, mprotect, munmap (3N events).
//   trace_workload crash     the pattern, then dies of SIGKILL.
//
// Built with frame pointers so the traced call sites are this file's
// functions.
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096UL

static inline __attribute__((always_inline)) void* Map(void* addr, size_t len, int prot, int flags,
                                                       int fd, off_t off) {
  void* p = mmap(addr, len, prot, flags, fd, off);
  if (p == MAP_FAILED) {
    perror("mmap");
    exit(1);
  }
  return p;
}

__attribute__((noinline)) static void make_mappings(const char* file) {
  const int anon = MAP_PRIVATE | MAP_ANONYMOUS;
  // The reservation's first page stays PROT_NONE: whatever the kernel put
  // below it (a library's .bss, another rw block) can never merge with A.
  char* res = Map(NULL, 17 * PAGE, PROT_NONE, anon, -1, 0);
  char* a = Map(res + PAGE, 4 * PAGE, PROT_READ | PROT_WRITE, anon | MAP_FIXED, -1, 0);
  memset(a, 1, 4 * PAGE);  // A gets its own anon_vma
  char* b = Map(res + 9 * PAGE, 4 * PAGE, PROT_READ | PROT_WRITE, anon | MAP_FIXED, -1, 0);
  memset(b, 2, 4 * PAGE);  // B gets another
  char* c = Map(res + 5 * PAGE, 4 * PAGE, PROT_READ | PROT_WRITE, anon | MAP_FIXED, -1, 0);
  char* r = Map(res + 13 * PAGE, 2 * PAGE, PROT_READ, anon | MAP_FIXED, -1, 0);
  const int fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || ftruncate(fd, 16 * PAGE) != 0) {
    perror(file);
    exit(1);
  }
  char* f = Map(NULL, 4 * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
  char* f2 = Map(f + 2 * PAGE, 2 * PAGE, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 8 * PAGE);
  close(fd);
  printf("reservation=%p A=%p C=%p B=%p R=%p F=%p F2=%p\n", (void*)res, (void*)a, (void*)c,
         (void*)b, (void*)r, (void*)f, (void*)f2);
  fflush(stdout);
}

__attribute__((noinline)) static void churn(long rounds) {
  for (long i = 0; i < rounds; ++i) {
    const size_t len = (size_t)(1 + i % 4) * PAGE;
    char* p = Map(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mprotect(p, PAGE, PROT_READ) != 0 || munmap(p, len) != 0) {
      perror("churn");
      exit(1);
    }
  }
  printf("churn %ld\n", rounds);
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "pattern";
  char file[4096];
  snprintf(file, sizeof(file), "%s/trace_workload.%d.dat",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
  if (strcmp(mode, "pattern") == 0 || strcmp(mode, "crash") == 0) {
    make_mappings(file);  // the file stays: unlinking it would print " (deleted)"
    if (strcmp(mode, "crash") == 0) kill(getpid(), SIGKILL);
    return 0;
  }
  if (strcmp(mode, "churn") == 0) {
    churn(argc > 2 ? atol(argv[2]) : 1000);
    return 0;
  }
  fprintf(stderr, "usage: trace_workload [pattern|churn N|crash]\n");
  return 2;
}
