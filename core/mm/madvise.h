// madvise.h — what an advice does to the page tables, for callers that must
// learn the pages of a range before the kernel changes it (the preload's
// PAGEMAP_SCAN before a zap). Matrix of the advice (mm/madvise.c):
//
//   advice                      splits VMAs  zaps pages / markers   populates
//   DONTNEED, DONTNEED_LOCKED   no           yes (PT reclaim)       no
//   FREE                        no           no (lazy free)         no
//   REMOVE                      no           yes (no PT reclaim)    no
//   GUARD_INSTALL               no           yes (installs markers) no
//   GUARD_REMOVE                no           yes (removes markers)  no
//   POPULATE_READ/WRITE         no           no                     yes
//   NORMAL/RANDOM/SEQUENTIAL, DONTFORK/DOFORK, WIPEONFORK/KEEPONFORK,
//   DONTDUMP/DODUMP, MERGEABLE/UNMERGEABLE, HUGEPAGE/NOHUGEPAGE
//                               yes (vm_flags) no                   no
//   WILLNEED, COLD, PAGEOUT, COLLAPSE, HWPOISON, SOFT_OFFLINE
//                               no           no (as modelled)       no
//
// Depends on nothing but <cstdint>; preload-safe.
#ifndef VMASHADOW_CORE_MM_MADVISE_H_
#define VMASHADOW_CORE_MM_MADVISE_H_

namespace vmashadow::mm {

// True when AddressSpace::Advise() with this advice changes the range's page
// table entries (zaps pages, installs or removes guard markers) and may free
// page tables: the caller should have told the model which pages are present
// first. MADV_FREE only marks pages lazily freeable: false.
bool AdviceZapsPages(int advice);

}  // namespace vmashadow::mm

#endif  // VMASHADOW_CORE_MM_MADVISE_H_
