// mseal.cc — mseal (mm/mseal.c, 6.12 and the 6.17 rework;
// docs/errno-order.md#mlock-mseal-brk).
#include "core/mm/address_space.h"
#include "core/mm/internal.h"

namespace vmashadow {

using Impl = AddressSpace::Impl;

// ---------------------------------------------------------------------------
// mseal (mm/mseal.c: do_mseal, 6.12; 6.17 skips sealed VMAs, same result).

Outcome AddressSpace::Seal(uint64_t start, uint64_t len_in, uint64_t flags) {
  if (flags != 0) return Impl::Result(-EINVAL);
  if (!PageAligned(start)) return Impl::Result(-EINVAL);
  const uint64_t len = PageAlign(len_in);
  if (len_in != 0 && len == 0) return Impl::Result(-EINVAL);
  const uint64_t end = start + len;
  if (end < start) return Impl::Result(-EINVAL);
  if (end == start) return Impl::Result(0);
  // check_mm_seal(): every byte must be mapped; nothing is applied otherwise.
  uint64_t covered = start;
  for (const Vma* v = tree_.FindVma(start); v != nullptr && v->start < end; v = v->next) {
    if (v->start > covered) break;
    covered = v->end;
  }
  if (covered < end) return Impl::Result(-ENOMEM);
  Vma* v = tree_.FindVma(start);
  Vma* prev = start > v->start ? v : v->prev;
  uint64_t nstart = start;
  while (v != nullptr && v->start < end) {
    const uint64_t tmp = v->end < end ? v->end : end;
    Vma* r = v;
    if (!(v->flags & kVmSealed)) {
      int err = 0;
      r = Impl::ModifyFlags(*this, prev, v, nstart, tmp, v->flags | kVmSealed, &err);
      if (r == nullptr) return Impl::Result(err, start, end);
    }
    prev = r;
    nstart = r->end;
    v = r->next;
  }
  return Impl::Result(0, start, end);
}

}  // namespace vmashadow
