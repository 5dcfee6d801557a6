// merge_split.c — mprotect splits a VMA and merges it back.
//
// One 8-page anonymous mapping; mprotect(PROT_READ) on pages 2-3 splits it
// into three VMAs (rw | r | rw); mprotect back to PROT_READ|PROT_WRITE
// merges them into one again (vma_modify's merge of the existing range).
// Each step prints the mapping's lines of /proc/self/maps.
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

static void Show(const char* what, char* base, size_t len) {
  char line[512];
  FILE* f = fopen("/proc/self/maps", "r");
  printf("-- %s\n", what);
  while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
    unsigned long lo = 0, hi = 0;
    if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && hi > (unsigned long)base &&
        lo < (unsigned long)(base + len)) {
      fputs(line, stdout);
    }
  }
  if (f != NULL) fclose(f);
}

int main(void) {
  const size_t page = 4096, len = 8 * page;
  char* p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return 1;
  memset(p, 1, len);
  Show("one mapping", p, len);
  mprotect(p + 2 * page, 2 * page, PROT_READ);
  Show("after mprotect(PROT_READ) of pages 2-3: split in three", p, len);
  mprotect(p + 2 * page, 2 * page, PROT_READ | PROT_WRITE);
  Show("after mprotect back: merged again", p, len);
  munmap(p, len);
  return 0;
}
