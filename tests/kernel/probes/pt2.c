#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/wait.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#define PG 4096UL
/* Output through write(2): no stdio buffers appear in the address space. */
static void P(const char *fmt, ...) { char b[1024]; va_list ap; va_start(ap, fmt); int n = vsnprintf(b, sizeof b, fmt, ap); va_end(ap); write(1, b, n); }
#define RW (PROT_READ|PROT_WRITE)
#define MB (1UL<<20)
static long vmpte(){ int fd=open("/proc/self/status",O_RDONLY); static char b[8192]; int n=read(fd,b,sizeof b-1); close(fd); b[n]=0; char *p=strstr(b,"VmPTE:"); return strtol(p+6,0,10); }
#define S(tag) P("%-60s VmPTE=%ld kB\n", tag, vmpte())
int main(){
  unsigned long G = 0x300000000000UL;
  int fd = open("/tmp/pt2file", O_RDWR|O_CREAT|O_TRUNC, 0600); ftruncate(fd, 8*MB);
  /* anchor so the PMD table stays */
  char *anc = mmap((void*)(G+64*MB), 4096, RW, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE, -1, 0); anc[0]=1;
  S("start (anchor)");
  char *f = mmap((void*)G, 2*MB, RW, MAP_PRIVATE|MAP_FIXED_NOREPLACE, fd, 0);
  for (unsigned long i=0;i<2*MB;i+=4096) (void)*(volatile char*)(f+i);
  S("private file mapping read");
  madvise(f, 2*MB, MADV_DONTNEED); S("DONTNEED whole private file slot");
  munmap(f, 2*MB);
  char *s = mmap((void*)G, 2*MB, RW, MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE, -1, 0);
  memset(s, 1, 2*MB); S("shared anon touched");
  madvise(s, 2*MB, MADV_DONTNEED); S("DONTNEED whole shared anon slot");
  memset(s, 1, 2*MB); madvise(s, 2*MB, MADV_REMOVE); S("retouch, MADV_REMOVE whole slot");
  munmap(s, 2*MB); S("unmapped");
  char *l = mmap((void*)G, 2*MB, RW, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE|MAP_LOCKED, -1, 0); S("MAP_LOCKED 2MB");
  long r = madvise(l, 2*MB, 24); P("dontneed_locked r=%ld\n", r); S("DONTNEED_LOCKED whole");
  munmap(l, 2*MB);
  char *fs = mmap((void*)G, 2*MB, RW, MAP_SHARED|MAP_FIXED_NOREPLACE, fd, 0);
  r = madvise(fs+8192, 8192, 102); P("guard on shared file r=%ld\n", r); S("guard install in shared file VMA");
  pid_t pid=fork(); if(!pid){ S("child after fork (guard table copied?)"); _exit(0);} waitpid(pid,0,0);
  munmap(fs, 2*MB); S("unmapped");
  char *fp = mmap((void*)G, 2*MB, RW, MAP_PRIVATE|MAP_FIXED_NOREPLACE, fd, 0);
  (void)*(volatile char*)fp; S("private file read 1 page");
  pid=fork(); if(!pid){ S("child after fork (private file, no anon_vma: not copied)"); _exit(0);} waitpid(pid,0,0);
  fp[4096]=1; S("private file write 1 page (anon_vma)");
  pid=fork(); if(!pid){ S("child after fork (copied)"); _exit(0);} waitpid(pid,0,0);
  unlink("/tmp/pt2file");
  return 0;
}
