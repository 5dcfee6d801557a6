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
#include <stdlib.h>
struct page_region { uint64_t start, end, categories; };
struct pm_scan_arg { uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages, category_inverted, category_mask, category_anyof_mask, return_mask; };
#define PAGEMAP_SCAN 0xc0606610UL
#define PAGE_IS_PRESENT (1<<3)
#define PAGE_IS_SWAPPED (1<<4)
#include <sys/ioctl.h>
#define RW (PROT_READ|PROT_WRITE)
#define MB (1UL<<20)
#define GB (1UL<<30)
static long vmpte(){ int fd=open("/proc/self/status",O_RDONLY); static char b[8192]; int n=read(fd,b,sizeof b-1); close(fd); b[n]=0; char *p=strstr(b,"VmPTE:"); return strtol(p+6,0,10); }
static unsigned long long pm(unsigned long a){ int fd=open("/proc/self/pagemap",O_RDONLY); unsigned long long e=0; pread(fd,&e,8,(a/PG)*8); close(fd); return e; }
static void scan(const char*tag, unsigned long lo, unsigned long hi){
  struct page_region r[16]; struct pm_scan_arg a; memset(&a,0,sizeof a); a.size=sizeof a; a.start=lo; a.end=hi; a.vec=(unsigned long)r; a.vec_len=16;
  a.category_anyof_mask=PAGE_IS_PRESENT|PAGE_IS_SWAPPED|(1<<8); a.return_mask=0x1ff;
  int fd=open("/proc/self/pagemap",O_RDONLY); long n=ioctl(fd,PAGEMAP_SCAN,&a); close(fd);
  P("  scan %s: n=%ld", tag, n); for(int i=0;i<n;i++) P(" [+%lx,+%lx) cat=%llx", r[i].start-lo, r[i].end-lo, (unsigned long long)r[i].categories); P("\n"); }
static char *M(unsigned long a, unsigned long len, int prot, int fl){ char *p=mmap((void*)a,len,prot,MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE|MAP_FIXED_NOREPLACE|fl,-1,0); if(p==MAP_FAILED) P("mmap fail %lx\n",a); return p; }
#define S(tag) P("%-60s VmPTE=%ld kB\n", tag, vmpte())
int main(){
  unsigned long G = 0x200000000000UL;
  S("start");
  /* 1: dontneed whole slot spread across two VMAs */
  char *a = M(G, 2*MB, RW, 0); a[0]=1; a[MB]=1; mprotect(a+MB, MB, PROT_READ);
  S("two VMAs in one slot, touched");
  madvise(a, 2*MB, MADV_DONTNEED); S("DONTNEED the whole slot over two VMAs (reclaim?)");
  munmap(a, 2*MB); S("munmap all");
  a = M(G, 4*MB, RW, 0); a[2*MB+8192]=1; S("touch slot1 of 4MB");
  madvise(a, 4*MB, MADV_DONTNEED); S("DONTNEED whole 4MB VMA");
  a[2*MB+8192]=1; madvise(a+2*MB, 2*MB, MADV_DONTNEED); S("retouch, DONTNEED exactly slot1");
  a[2*MB+8192]=1; madvise(a+2*MB+8192, 4096, MADV_DONTNEED); S("retouch, DONTNEED that page only (ghost)");
  /* fork copies ghost? */
  pid_t pid = fork();
  if (pid==0) { S("child after fork (ghost table copied?)"); _exit(0);} waitpid(pid,0,0);
  munmap(a, 4*MB); S("munmap");
  /* 3: mremap move aligned */
  a = M(G, 4*MB, RW, 0); memset(a, 1, 4*MB); S("4MB populated at G");
  char *b = mremap(a, 4*MB, 4*MB, MREMAP_MAYMOVE|MREMAP_FIXED, (void*)(G+512*GB)); S("mremap aligned to G+512G");
  /* 4: mremap unaligned move with an empty table */
  char *c = M(G+4*MB, 4*MB, RW, 0); c[2*MB+4096]=1; madvise(c+2*MB+4096,4096,MADV_DONTNEED); c[4096]=1; S("c: slot0 one page, slot1 ghost");
  char *d = mremap(c, 4*MB, 4*MB, MREMAP_MAYMOVE|MREMAP_FIXED, (void*)(G+2*GB+8192)); S("mremap unaligned to G+2G+8K");
  scan("d", (unsigned long)d-8192, (unsigned long)d+6*MB);
  munmap(b, 4*MB); munmap(d, 4*MB); S("unmapped b,d");
  /* 5: THP read fault */
  char *h = M(G+6*MB, 4*MB, RW, 0); madvise(h, 4*MB, MADV_HUGEPAGE); (void)*(volatile char*)h; S("THP read fault (huge zero)");
  scan("h", (unsigned long)h, (unsigned long)h+4*MB);
  h[2*MB]=1; S("THP write fault slot1"); scan("h", (unsigned long)h, (unsigned long)h+4*MB);
  munmap(h+2*MB+4096, 4096); S("munmap 1 page inside THP slot1"); scan("h", (unsigned long)h, (unsigned long)h+4*MB);
  madvise(h, 2*MB, MADV_DONTNEED); S("DONTNEED huge zero slot0");
  h[0]=1; S("write THP slot0"); madvise(h, 2*MB, MADV_DONTNEED); S("DONTNEED THP slot0");
  munmap(h, 4*MB); S("munmap h");
  /* 6: guard install */
  char *g = M(G+16*MB, 4*MB, RW, 0); S("g mapped");
  long r = madvise(g+2*MB, 8192, 102); P("guard install r=%ld\n", r); S("after guard install"); scan("g", (unsigned long)g, (unsigned long)g+4*MB);
  P("pagemap g+2M %llx\n", pm((unsigned long)g+2*MB));
  madvise(g+2*MB, 8192, 103); S("guard remove");
  munmap(g, 4*MB); S("munmap g");
  /* 7: populate PROT_NONE; prot none pagemap */
  char *n = mmap((void*)(G+24*MB), 2*MB, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE|MAP_POPULATE, -1, 0); S("MAP_POPULATE PROT_NONE");
  munmap(n, 2*MB);
  n = M(G+24*MB, 2*MB, RW, 0); n[0]=1; mprotect(n, 2*MB, PROT_NONE); P("pagemap protnone %llx\n", pm((unsigned long)n)); scan("n",(unsigned long)n,(unsigned long)n+8192); munmap(n, 2*MB);
  /* 8: MADV_POPULATE_READ on anon */
  n = M(G+24*MB, 2*MB+8192, RW, 0); madvise(n, 2*MB+8192, MADV_POPULATE_READ); S("POPULATE_READ 2M+8K"); scan("n",(unsigned long)n,(unsigned long)n+3*MB); munmap(n, 2*MB+8192); S("unmap");
  return 0;
}
