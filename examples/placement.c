// placement.c — where the kernel puts new mappings, and THP alignment.
//
// Maps: a 1-page and a 3-page block (top-down, right below the previous
// mapping); a 2 MiB and a 4 MiB block (anonymous lengths that are multiples
// of 2 MiB are aligned to 2 MiB: the THP aligner); a 3 MiB block (not a
// multiple: not aligned); a hint that is free (taken) and one below
// mmap_min_addr (raised to it). The model predicts every address:
// `vmashadow report` shows "placements N/N".
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/mman.h>

static void* Map(size_t len, void* hint) {
  void* p = mmap(hint, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  printf("%8zu KiB%s -> %p%s\n", len >> 10, hint ? " (hint)" : "", p,
         ((unsigned long)p & ((2UL << 20) - 1)) == 0 ? "  2 MiB aligned" : "");
  return p;
}

int main(void) {
  Map(4096, NULL);
  Map(3 * 4096, NULL);
  Map(2UL << 20, NULL);
  Map(4UL << 20, NULL);
  Map(3UL << 20, NULL);
  void* taken = Map(4096, NULL);
  munmap(taken, 4096);
  Map(4096, taken);          // free: taken as is
  Map(4096, (void*)0x1000);  // below mmap_min_addr: raised to it
  return 0;
}
