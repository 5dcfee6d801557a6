// apply.cc — raw syscall arguments to AddressSpace calls (see apply.h).
#include "core/mm/apply.h"

#include <cerrno>

#include "core/abi/no_syscalls.h"

namespace vmashadow::mm {

namespace {
int Int(uint64_t v) { return static_cast<int>(v); }
}  // namespace

MapArgs MapArgsOf(const uint64_t args[6], const FileDesc* file, uint64_t kernel_addr) {
  MapArgs m;
  m.addr = args[0];
  m.len = args[1];
  m.prot = Int(args[2]);
  m.flags = Int(args[3]);
  m.file = file;  // args[4], the fd, as the caller described it
  m.offset = args[5];
  m.kernel_addr = kernel_addr;
  return m;
}

Outcome ApplyCall(AddressSpace& as, Call call, const uint64_t args[6], const FileDesc* file,
                  uint64_t kernel_addr) {
  const uint64_t* a = args;
  switch (call) {
    case Call::kMmap:  // arch/x86/kernel/sys_x86_64.c: SYSCALL_DEFINE6(mmap)
      return as.Map(MapArgsOf(args, file, kernel_addr));
    case Call::kMunmap:  // mm/mmap.c: SYSCALL_DEFINE2(munmap)
      return as.Unmap(a[0], a[1]);
    case Call::kMprotect:  // mm/mprotect.c: SYSCALL_DEFINE3(mprotect): pkey -1
      return as.Protect(a[0], a[1], Int(a[2]), -1);
    case Call::kPkeyMprotect:  // mm/mprotect.c: SYSCALL_DEFINE4(pkey_mprotect)
      return as.Protect(a[0], a[1], Int(a[2]), Int(a[3]));
    case Call::kMremap:  // mm/mremap.c: SYSCALL_DEFINE5(mremap)
      return as.Remap(a[0], a[1], a[2], Int(a[3]), a[4]);
    case Call::kMadvise:  // mm/madvise.c: SYSCALL_DEFINE3(madvise)
      return as.Advise(a[0], a[1], Int(a[2]));
    case Call::kBrk:  // mm/mmap.c: SYSCALL_DEFINE1(brk)
      return as.Brk(a[0]);
    case Call::kMlock:  // mm/mlock.c: SYSCALL_DEFINE2(mlock): flags 0
      return as.Lock(a[0], a[1], 0);
    case Call::kMlock2:  // mm/mlock.c: SYSCALL_DEFINE3(mlock2)
      return as.Lock(a[0], a[1], Int(a[2]));
    case Call::kMunlock:  // mm/mlock.c: SYSCALL_DEFINE2(munlock)
      return as.Unlock(a[0], a[1]);
    case Call::kMlockall:  // mm/mlock.c: SYSCALL_DEFINE1(mlockall)
      return as.LockAll(Int(a[0]));
    case Call::kMunlockall:  // mm/mlock.c: SYSCALL_DEFINE0(munlockall)
      return as.UnlockAll();
    case Call::kMseal:  // mm/mseal.c: SYSCALL_DEFINE3(mseal)
      return as.Seal(a[0], a[1], a[2]);
    default:
      break;
  }
  Outcome o;
  o.ret = -ENOSYS;
  return o;
}

}  // namespace vmashadow::mm
