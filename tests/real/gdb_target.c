// gdb_target.c — a small program for the real-program matrix: gdb breaks in
// work() and prints a backtrace; Valgrind runs it; its output is fixed.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) int work(int n) {
  char* p = malloc((size_t)n);
  memset(p, 1, (size_t)n);
  const int s = p[n / 2];
  free(p);
  return s;
}

int main(void) {
  int s = 0;
  for (int i = 0; i < 100; ++i) s += work(1000 + i * 4096);
  printf("sum %d\n", s);
  return 0;
}
