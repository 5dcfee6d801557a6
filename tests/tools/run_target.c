/* run_target.c — a small dynamically linked program for tests/tools: maps,
 * protects and unmaps some anonymous memory (so its report counts mmap,
 * mprotect and munmap calls), then exits with the status given as argv[1]
 * (default 0). */
#include <stdlib.h>
#include <sys/mman.h>

int main(int argc, char** argv) {
  for (int i = 1; i <= 8; ++i) {
    const size_t len = 4096 * (size_t)i;
    void* p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 100;
    if (mprotect(p, 4096, PROT_READ) != 0) return 101;
    if (munmap(p, len) != 0) return 102;
  }
  return argc > 1 ? atoi(argv[1]) : 0;
}
