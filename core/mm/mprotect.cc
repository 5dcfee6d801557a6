// mprotect.cc — mprotect and pkey_mprotect (mm/mprotect.c, 6.12, with the 6.18
// check order of docs/errno-order.md#mprotect): per VMA through vma_modify(),
// with the hidden VM_ACCOUNT edits of docs/merge-split.md#mprotect-and-vm_account.
#include "core/mm/address_space.h"
#include "core/mm/internal.h"

namespace vmashadow {

using Impl = AddressSpace::Impl;

namespace {

uint64_t PkeyBits(int pkey) { return (static_cast<uint64_t>(pkey) << kVmPkeyShift) & kVmPkeyMask; }

uint64_t ProtBits(int prot) {
  uint64_t f = 0;
  if (prot & abi::kProtRead) f |= kVmRead;
  if (prot & abi::kProtWrite) f |= kVmWrite;
  if (prot & abi::kProtExec) f |= kVmExec;
  return f;
}

}  // namespace

// ---------------------------------------------------------------------------
// mprotect (do_mprotect_pkey + mprotect_fixup, mm/mprotect.c 6.12).

Outcome AddressSpace::Protect(uint64_t start, uint64_t len, int prot, int pkey) {
  using namespace abi;
  const int grows = prot & (kProtGrowsdown | kProtGrowsup);
  prot &= ~(kProtGrowsdown | kProtGrowsup);
  if (grows == (kProtGrowsdown | kProtGrowsup)) return Impl::Result(-EINVAL);
  if (!PageAligned(start)) return Impl::Result(-EINVAL);
  if (len == 0) return Impl::Result(0);
  len = PageAlign(len);
  uint64_t end = start + len;
  if (end <= start) return Impl::Result(-ENOMEM);
  if (prot & ~(kProtRead | kProtWrite | kProtExec | kProtSem)) return Impl::Result(-EINVAL);
  if (pkey != -1 && (pkey < 0 || pkey >= params_.max_pkey)) return Impl::Result(-EINVAL);

  Vma* vma = tree_.FindVmaIntersection(start, end);
  if (vma == nullptr) return Impl::Result(-ENOMEM);
  if (grows & kProtGrowsdown) {
    start = vma->start;
    if (!(vma->flags & kVmGrowsdown)) return Impl::Result(-EINVAL);
  } else {
    if (vma->start > start) return Impl::Result(-ENOMEM);
    if (grows & kProtGrowsup) return Impl::Result(-EINVAL);  // no VM_GROWSUP on x86
  }
  Vma* prev = start > vma->start ? vma : vma->prev;
  uint64_t nstart = start;
  uint64_t tmp = vma->start;
  int error = 0;
  for (Vma* v = vma; v != nullptr && v->start < end;) {
    if (v->start != tmp) {
      error = -ENOMEM;
      break;
    }
    const uint64_t pkey_bits = pkey == -1 ? (v->flags & kVmPkeyMask) : PkeyBits(pkey);
    uint64_t newflags = ProtBits(prot) | pkey_bits | (v->flags & ~(kVmRwx | kVmPkeyMask));
    if ((newflags & ~(newflags >> 4)) & kVmRwx) {
      error = -EACCES;
      break;
    }
    if (Impl::MapDenyWriteExec(*this, v->flags, newflags)) {  // MDWE
      error = -EACCES;
      break;
    }
    tmp = v->end < end ? v->end : end;
    // mprotect_fixup()
    if (v->flags & kVmSealed) {
      error = -EPERM;
      break;
    }
    Vma* result = v;
    if (newflags != v->flags) {
      const uint64_t oldflags = v->flags;
      if (newflags & kVmWrite) {
        if (!(oldflags & (kVmAccount | kVmWrite | kVmHugetlb | kVmShared | kVmNoreserve))) {
          newflags |= kVmAccount;
        }
      } else if ((oldflags & kVmAccount) && v->is_anonymous() && v->anon.anon_vma == 0) {
        newflags &= ~kVmAccount;
      }
      result = Impl::ModifyFlags(*this, prev, v, nstart, tmp, newflags, &error);
      if (result == nullptr) break;
      // A private VM_LOCKED VMA becoming writable is populated for write
      // (CoW broken up front), giving it an anon_vma.
      if ((oldflags & (kVmWrite | kVmShared | kVmLocked)) == kVmLocked && (newflags & kVmWrite)) {
        (void)Impl::PopulateVma(*this, result, nstart, tmp);
      }
    }
    prev = result;
    tmp = result->end;
    nstart = tmp;
    v = result->next;
  }
  if (error == 0 && tmp < end) error = -ENOMEM;
  return Impl::Result(error, start, end);
}

}  // namespace vmashadow
