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
static long st(const char*k){ int fd=open("/proc/self/status",O_RDONLY); static char b[8192]; int n=read(fd,b,sizeof b-1); close(fd); b[n]=0; char *p=strstr(b,k); return strtol(p+strlen(k),0,10); }
static char sm[1<<20];
static void flags(unsigned long lo, unsigned long hi){ int fd=open("/proc/self/smaps",O_RDONLY); int n=0,r; while((r=read(fd,sm+n,sizeof(sm)-1-n))>0) n+=r; close(fd); sm[n]=0;
 char *l=sm; unsigned long s=0,e=0; int in=0; while(*l){ char *eol=strchr(l,'\n'); *eol=0; if (sscanf(l,"%lx-%lx ",&s,&e)==2 && strchr(l,' ')>strchr(l,'-')) { in = s<hi && e>lo; if(in) P("  %s\n", l);} else if (in && !strncmp(l,"VmFlags",7)) P("     %s\n", l); l=eol+1; } }
int main(){
  unsigned long G = 0x300000000000UL;
  for (int v=0; v<2; v++) {
  char *a = mmap((void*)G, 8*4096, RW, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE, -1, 0);
  if (v) a[6*4096]=1;
  mlock(a, 8*4096);
  P("v%d VmLck=%ld\n", v, st("VmLck:")); flags(G, G+MB);
  void *r = mremap(a+6*4096, 2*4096, 2*4096, MREMAP_MAYMOVE|MREMAP_FIXED|MREMAP_DONTUNMAP, (void*)(G+MB));
  P("mremap -> %p VmLck=%ld\n", r, st("VmLck:")); flags(G, G+2*MB);
  munmap((void*)G, 2*MB); P("after munmap VmLck=%ld\n", st("VmLck:"));
  }
  return 0;
}
