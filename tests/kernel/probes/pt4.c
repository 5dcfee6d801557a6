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
int main(int argc, char**argv){
  unsigned long G = 0x300000000000UL;
  int anchor = argc > 1;
  if (anchor) { char *anc = mmap((void*)(G+64*MB), 4096, RW, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE, -1, 0); anc[0]=1; }
  S("start");
  for (int i=0;i<3;i++){
    int fd = open("/tmp/pt4file", O_RDWR|O_CREAT|O_TRUNC, 0600); ftruncate(fd, 4*MB);
    char *f = mmap((void*)G, 4*MB, PROT_READ, MAP_PRIVATE|MAP_FIXED_NOREPLACE, fd, 0);
    madvise(f, 4*MB, MADV_HUGEPAGE);
    (void)*(volatile char*)f; S("read fault (file THP)");
    (void)*(volatile char*)(f+2*MB+4096); S("read fault slot 1");
    munmap(f, 4*MB); S("munmap");
    close(fd); unlink("/tmp/pt4file");
  }
  return 0;
}
