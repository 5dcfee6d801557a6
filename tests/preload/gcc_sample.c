// gcc_sample.c — the file the preload's `gcc` integration test compiles
// (gcc, cc1, as, collect2 and ld all run under vmashadow) and then runs. Its
// output is fixed: a sorted table, a checksum and a few primes.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct Entry {
  char name[16];
  unsigned value;
};

static int ByValue(const void* a, const void* b) {
  const struct Entry* x = a;
  const struct Entry* y = b;
  if (x->value != y->value) return x->value < y->value ? -1 : 1;
  return strcmp(x->name, y->name);
}

int main(void) {
  enum { kCount = 5000 };
  struct Entry* entries = malloc(kCount * sizeof(*entries));
  if (entries == NULL) return 1;
  unsigned state = 12345;
  for (int i = 0; i < kCount; ++i) {
    state = state * 1103515245u + 12345u;
    entries[i].value = (state >> 8) % 100000;
    snprintf(entries[i].name, sizeof(entries[i].name), "item%04d", i);
  }
  qsort(entries, kCount, sizeof(*entries), ByValue);
  unsigned long sum = 0;
  for (int i = 0; i < kCount; ++i) sum = sum * 31 + entries[i].value;
  printf("first %s %u, last %s %u, checksum %lu\n", entries[0].name, entries[0].value,
         entries[kCount - 1].name, entries[kCount - 1].value, sum);
  free(entries);
  int found = 0;
  for (int n = 2; found < 10; ++n) {
    int prime = 1;
    for (int d = 2; d * d <= n; ++d) prime &= n % d != 0;
    if (prime) printf("%d%s", n, ++found < 10 ? " " : "\n");
  }
  return 0;
}
