// anon_merge.c — why two adjacent anonymous VMAs do not merge.
//
//   1. A and B are mapped apart and both written (each faults in its own
//      anon_vma); C fills the hole between them: it joins A, but A+C and B
//      stay apart for good (two anon_vmas cannot become one).
//   2. D is mapped and written, then the process forks; in the child, E is
//      mapped right after D: D is a fork child (its anon_vma chain has the
//      parent's), and a new VMA does not merge into it.
// `vmashadow report` lists both pairs under "Adjacent VMAs that did not merge".
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096UL

int main(void) {
  const int anon = MAP_PRIVATE | MAP_ANONYMOUS;
  char* r = mmap(NULL, 12 * PAGE, PROT_NONE, anon, -1, 0);
  char* a = mmap(r, 4 * PAGE, PROT_READ | PROT_WRITE, anon | MAP_FIXED, -1, 0);
  char* b = mmap(r + 8 * PAGE, 4 * PAGE, PROT_READ | PROT_WRITE, anon | MAP_FIXED, -1, 0);
  memset(a, 1, 4 * PAGE);
  memset(b, 2, 4 * PAGE);
  char* c = mmap(r + 4 * PAGE, 4 * PAGE, PROT_READ | PROT_WRITE, anon | MAP_FIXED, -1, 0);
  printf("A+C %p..%p and B %p stay apart (two anon_vmas)\n", (void*)a, (void*)(c + 4 * PAGE),
         (void*)b);

  char* d = mmap(NULL, 8 * PAGE, PROT_NONE, anon, -1, 0);
  mmap(d, 4 * PAGE, PROT_READ | PROT_WRITE, anon | MAP_FIXED, -1, 0);
  memset(d, 3, 4 * PAGE);
  fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) {
    mmap(d + 4 * PAGE, 4 * PAGE, PROT_READ | PROT_WRITE, anon | MAP_FIXED, -1, 0);
    printf("child: D %p (a fork child) and E %p stay apart\n", (void*)d, (void*)(d + 4 * PAGE));
    return 0;
  }
  waitpid(pid, NULL, 0);
  return 0;
}
