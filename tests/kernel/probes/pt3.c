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
static char smaps_buf[1<<20];
static void thp(const char *tag, unsigned long a){ int fd=open("/proc/self/smaps",O_RDONLY); int n=0,r; while((r=read(fd,smaps_buf+n,sizeof(smaps_buf)-1-n))>0) n+=r; close(fd); smaps_buf[n]=0;
  char hdr[32]; snprintf(hdr,sizeof hdr,"%lx-",a); char *p=strstr(smaps_buf,hdr); if(!p){P("no vma\n");return;} char *q=strstr(p,"FilePmdMapped:"); char *r2=strstr(p,"AnonHugePages:"); P("  %s: %.30s | %.30s\n", tag, r2, q); }
int main(){
  unsigned long G = 0x300000000000UL;
  char *anc = mmap((void*)(G+64*MB), 4096, RW, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE, -1, 0); anc[0]=1;
  for (int variant=0; variant<4; variant++) {
    int fd = open("/tmp/pt3file", O_RDWR|O_CREAT|O_TRUNC, 0600); ftruncate(fd, 4*MB);
    if (variant>=2) { static char buf[1<<20]; memset(buf,1,sizeof buf); for(int i=0;i<4;i++) pwrite(fd, buf, sizeof buf, i*MB); fsync(fd); posix_fadvise(fd,0,0,POSIX_FADV_DONTNEED);}
    int flags = (variant&1) ? MAP_SHARED : MAP_PRIVATE;
    S("start");
    char *f = mmap((void*)G, 4*MB, PROT_READ, flags|MAP_FIXED_NOREPLACE, fd, 0);
    madvise(f, 4*MB, MADV_HUGEPAGE);
    (void)*(volatile char*)f; S(variant==0?"private hg sparse: read fault":variant==1?"shared hg sparse: read":variant==2?"private hg data: read":"shared hg data: read");
    thp("vma", (unsigned long)f);
    munmap(f, 4*MB); close(fd); unlink("/tmp/pt3file");
  }
  return 0;
}
