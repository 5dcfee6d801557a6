// alloc_workload.c — the same allocation pattern for every allocator:
// 4 threads, each 20,000 rounds of malloc/free of sizes from 16 B to 1 MiB
// (a few large ones), keeping up to 512 blocks alive, plus a realloc chain.
// Run it under glibc malloc, jemalloc, tcmalloc and mimalloc (LD_PRELOAD)
// with `vmashadow run --trace` and compare their reports and plots
// (examples/run_allocators.sh).
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void* Work(void* arg) {
  uint64_t x = 0x9e3779b97f4a7c15ull * (uintptr_t)arg + 1;
  void* live[512] = {0};
  for (int i = 0; i < 20000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const int slot = (int)(x % 512);
    free(live[slot]);
    size_t size = 16u << (x >> 20) % 10;                           // 16 B .. 8 KiB
    if ((x >> 40) % 64 == 0) size = 256u << 10 | (x >> 8) % 4096;  // ~1 in 64: 256 KiB+
    live[slot] = malloc(size);
    memset(live[slot], 1, size < 256 ? size : 256);
  }
  for (int i = 0; i < 512; ++i) free(live[i]);
  char* grow = NULL;
  for (size_t n = 4096; n <= (8u << 20); n *= 2) grow = realloc(grow, n);
  free(grow);
  return NULL;
}

int main(void) {
  pthread_t t[4];
  for (uintptr_t i = 0; i < 4; ++i) pthread_create(&t[i], NULL, Work, (void*)i);
  for (int i = 0; i < 4; ++i) pthread_join(t[i], NULL);
  puts("alloc_workload done");
  return 0;
}
