// maps_text_test.cc — tests of core/maps_text: rendering /proc/self/maps lines
// byte for byte, strict parsing, VmFlags, seeding a model from maps/smaps text,
// and round trips against the running kernel (this process, and a forked child
// that first makes file, deleted, shared, memfd, PROT_NONE, guard and brk
// mappings).
#include "core/procfs/maps_text.h"
#include "core/procfs/system_facts.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/ioctl.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/abi/kernel_profile.h"
#include "core/mm/address_space.h"
#include "core/mm/arena.h"
#include "core/mm/mm_types.h"

namespace vmashadow {
namespace {

constexpr uint64_t kRw = kVmRead | kVmWrite | kVmMayRead | kVmMayWrite | kVmMayExec | kVmAccount;
constexpr uint64_t kRo = kVmRead | kVmMayRead | kVmMayWrite | kVmMayExec;
constexpr uint64_t kRx = kVmRead | kVmExec | kVmMayRead | kVmMayWrite | kVmMayExec;

// An AddressSpace over its own arena.
class Model {
 public:
  explicit Model(size_t arena_bytes = 8 << 20)
      : storage_(new (std::align_val_t{16}) char[arena_bytes]),
        arena_(storage_.get(), arena_bytes),
        as_(&arena_, DefaultKernelProfile(), MmParams{}) {}

  AddressSpace& as() { return as_; }

  Vma* Anon(uint64_t start, uint64_t end, uint64_t flags = kRw, uint64_t pgoff = ~uint64_t{0}) {
    VmaSeed s;
    s.start = start;
    s.end = end;
    s.flags = flags;
    s.pgoff = pgoff == ~uint64_t{0} ? start >> kPageShift : pgoff;
    return Seed(s);
  }
  Vma* FileVma(uint64_t start, uint64_t end, uint64_t pgoff, uint64_t flags, const FileDesc& d) {
    VmaSeed s;
    s.start = start;
    s.end = end;
    s.pgoff = pgoff;
    s.flags = flags;
    s.file = &d;
    return Seed(s);
  }
  Vma* Special(uint64_t start, uint64_t end, uint64_t flags, SpecialKind kind,
               const char* name = nullptr) {
    VmaSeed s;
    s.start = start;
    s.end = end;
    s.flags = flags;
    s.special = kind;
    s.special_name = name;
    return Seed(s);
  }

  std::string Line(const Vma* v) {
    char buf[8192];
    const size_t n = RenderVmaLine(as_, *v, buf, sizeof(buf));
    EXPECT_LT(n, sizeof(buf));
    EXPECT_EQ(std::strlen(buf), n);
    return std::string(buf, n);
  }
  std::string Maps() {
    std::vector<char> buf(1 << 20);
    const size_t n = RenderMaps(as_, buf.data(), buf.size());
    EXPECT_LT(n, buf.size());
    return std::string(buf.data(), n);
  }

 private:
  Vma* Seed(const VmaSeed& s) {
    const int err = as_.SeedVma(s);
    EXPECT_EQ(err, 0);
    return err == 0 ? as_.FindVma(s.start) : nullptr;
  }

  struct Deleter {
    void operator()(char* p) const { ::operator delete[](p, std::align_val_t{16}); }
  };
  std::unique_ptr<char[], Deleter> storage_;
  Arena arena_;
  AddressSpace as_;
};

FileDesc MakeFile(const char* path, uint32_t major, uint32_t minor, uint64_t inode, uint64_t id,
                  bool deleted = false) {
  FileDesc d;
  d.id = id;
  d.path = path;
  d.dev_major = major;
  d.dev_minor = minor;
  d.inode = inode;
  d.deleted = deleted;
  return d;
}

// Column (0-based) where the name starts, given the rendered line.
size_t NameColumn(const std::string& line, const std::string& name) { return line.rfind(name); }

// ---------------------------------------------------------------------------
// Rendering.

// Expected lines below are copied from this machine's /proc/PID/maps.
TEST(RenderVmaLine, MatchesKernelLinesForEachNameKind) {
  Model m;
  const FileDesc exe = MakeFile("/tmp/mt/n", 0xfe, 0, 10953197, 1);
  const FileDesc libc = MakeFile("/usr/lib/x86_64-linux-gnu/libc.so.6", 0xfe, 0, 332835, 2);
  const FileDesc zero = MakeFile("/dev/zero", 0, 1, 1025, 3, /*deleted=*/true);
  const FileDesc memfd = MakeFile("/memfd:xy", 0, 1, 24, 4, /*deleted=*/true);
  struct Case {
    Vma* v;
    const char* want;
  };
  m.as().SetBrkState(0x562a81fc5000, 0x562a81fe6000);
  m.as().SetStartStack(0x7ffd294a8f70);
  const Case cases[] = {
      {m.FileVma(0x400000, 0x401000, 0, kRo, exe),
       "00400000-00401000 r--p 00000000 fe:00 10953197                           /tmp/mt/n\n"},
      {m.FileVma(0x401000, 0x402000, 1, kRx, exe),
       "00401000-00402000 r-xp 00001000 fe:00 10953197                           /tmp/mt/n\n"},
      {m.FileVma(0x7f135cc97000, 0x7f135ccea000, 0x17c, kRo, libc),
       "7f135cc97000-7f135ccea000 r--p 0017c000 fe:00 332835                     "
       "/usr/lib/x86_64-linux-gnu/libc.so.6\n"},
      {m.Anon(0x562a81fc5000, 0x562a81fe6000),
       "562a81fc5000-562a81fe6000 rw-p 00000000 00:00 0                          [heap]\n"},
      {m.FileVma(0x7fc627eef000, 0x7fc627eff000, 0, (kRw & ~kVmAccount) | kVmShared | kVmMayShare,
                 zero),
       "7fc627eef000-7fc627eff000 rw-s 00000000 00:01 1025                       "
       "/dev/zero (deleted)\n"},
      {m.FileVma(0x7f135cd07000, 0x7f135cd09000, 1, kVmRead | kVmMayRead | kVmMayShare, memfd),
       "7f135cd07000-7f135cd09000 r--s 00001000 00:01 24                         "
       "/memfd:xy (deleted)\n"},
      {m.Anon(0x7fc627fff000, 0x7fc62800f000),
       "7fc627fff000-7fc62800f000 rw-p 00000000 00:00 0 \n"},
      {m.Special(0x7fc628202000, 0x7fc628206000, kVmRead, SpecialKind::kVvar),
       "7fc628202000-7fc628206000 r--p 00000000 00:00 0                          [vvar]\n"},
      {m.Special(0x7fc628206000, 0x7fc628208000, kVmRead, SpecialKind::kVvarVclock),
       "7fc628206000-7fc628208000 r--p 00000000 00:00 0                          [vvar_vclock]\n"},
      {m.Special(0x7fc628208000, 0x7fc62820a000, kVmRead | kVmExec, SpecialKind::kVdso),
       "7fc628208000-7fc62820a000 r-xp 00000000 00:00 0                          [vdso]\n"},
      {m.Anon(0x7ffd29489000, 0x7ffd294aa000, kRw | kVmGrowsdown),
       "7ffd29489000-7ffd294aa000 rw-p 00000000 00:00 0                          [stack]\n"},
  };
  for (const Case& c : cases) {
    ASSERT_NE(c.v, nullptr);
    EXPECT_EQ(m.Line(c.v), c.want);
  }
}

TEST(RenderVmaLine, OffsetOnlyWithFile) {
  Model m;
  // A private anonymous VMA keeps pgoff = start >> 12 internally but prints 0.
  Vma* anon = m.Anon(0x10000000, 0x10002000, kRw, 0x10000);
  EXPECT_EQ(m.Line(anon), "10000000-10002000 rw-p 00000000 00:00 0 \n");
  // A special mapping with a stray pgoff prints 0 too.
  Vma* vdso = m.Special(0x20000000, 0x20002000, kVmRead | kVmExec, SpecialKind::kVdso);
  vdso->pgoff = 7;
  EXPECT_EQ(m.Line(vdso).substr(0, 48), "20000000-20002000 r-xp 00000000 00:00 0         ");
  // A file VMA prints pgoff << 12 with at least 8 digits, more when needed.
  const FileDesc f = MakeFile("/f", 8, 1, 42, 9);
  Vma* small = m.FileVma(0x30000000, 0x30001000, 0x123, kRo, f);
  EXPECT_EQ(m.Line(small).substr(0, 48),
            "30000000-30001000 r--p 00123000 08:01 42" + std::string(8, ' '));
  Vma* big = m.FileVma(0x30001000, 0x30002000, 0x123456789, kRo, f);
  EXPECT_EQ(m.Line(big).substr(0, 45), "30001000-30002000 r--p 123456789000 08:01 42 ");
}

TEST(RenderVmaLine, AddressAndDeviceWidths) {
  Model m;
  const FileDesc f = MakeFile("/x", 0x103, 0xabcde, 7, 1);
  Vma* v = m.FileVma(0x7fffffffe000, 0x7ffffffff000, 0, kRo, f);
  const std::string line = m.Line(v);
  EXPECT_EQ(line.substr(0, 49), "7fffffffe000-7ffffffff000 r--p 00000000 103:abcde");
  Vma* low = m.Anon(0x10000, 0x11000);
  EXPECT_EQ(m.Line(low), "00010000-00011000 rw-p 00000000 00:00 0 \n");
}

TEST(RenderVmaLine, NameColumnPadding) {
  // Fixed part length with 16-digit addresses is 55 + digits(inode).
  struct Case {
    uint64_t inode;
    size_t want_column;
  };
  const Case cases[] = {
      {1, 73},                   // short: padded
      {1234567890123456, 73},    // fixed part 71: one pad space, one separator
      {12345678901234567, 73},   // fixed part exactly 72: no pad, one separator
      {123456789012345678, 74},  // 73: no pad, one separator
      {~uint64_t{0}, 76},        // 20 digits
  };
  for (const Case& c : cases) {
    Model m;
    const FileDesc f = MakeFile("/name", 0xfe, 0, c.inode, 1);
    Vma* v = m.FileVma(0xffff800000000000, 0xffff800000001000, 0, kRo, f);
    const std::string line = m.Line(v);
    const size_t fixed_len = 55 + std::to_string(c.inode).size();
    ASSERT_EQ(line.substr(0, fixed_len), "ffff800000000000-ffff800000001000 r--p 00000000 fe:00 " +
                                             std::to_string(c.inode) + " ");
    EXPECT_EQ(NameColumn(line, "/name\n"), c.want_column) << line;
    // Only spaces between the fixed part and the name.
    EXPECT_EQ(line.find_first_not_of(' ', fixed_len), c.want_column) << line;
  }
}

TEST(RenderVmaLine, DeletedAndEscapedPaths) {
  Model m;
  const FileDesc del = MakeFile("/tmp/gone", 8, 2, 11, 1, true);
  const FileDesc nl = MakeFile("/tmp/a\nb", 8, 2, 12, 2);
  const FileDesc spaces = MakeFile("/tmp/with two  spaces", 8, 2, 13, 3);
  // From the end of a 40-character inode field to column 73.
  const std::string kTo73From40(33, ' ');
  EXPECT_EQ(m.Line(m.FileVma(0x1000000, 0x1001000, 0, kRo, del)),
            "01000000-01001000 r--p 00000000 08:02 11" + kTo73From40 + "/tmp/gone (deleted)\n");
  EXPECT_EQ(m.Line(m.FileVma(0x1001000, 0x1002000, 0, kRo, nl)),
            "01001000-01002000 r--p 00000000 08:02 12" + kTo73From40 + "/tmp/a\\012b\n");
  EXPECT_EQ(m.Line(m.FileVma(0x1002000, 0x1003000, 0, kRo, spaces)),
            "01002000-01003000 r--p 00000000 08:02 13" + kTo73From40 + "/tmp/with two  spaces\n");
  // MarkFileDeleted flips the suffix on every VMA of that file.
  m.as().MarkFileDeleted(8, 2, 13);
  EXPECT_NE(m.Line(m.as().FindVma(0x1002000)).find("spaces (deleted)\n"), std::string::npos);
}

// QueryMatchesVma agrees with comparing the two rendered lines, for each kind
// of name and for a query differing in any one field.
TEST(QueryMatchesVma, AgreesWithRenderedLines) {
  Model m;
  const FileDesc del = MakeFile("/tmp/gone", 8, 2, 11, 1, true);
  const FileDesc nl = MakeFile("/tmp/a\nb", 8, 2, 12, 2);
  const FileDesc plain = MakeFile("/usr/lib/x.so", 254, 0, 13, 3);
  std::vector<Vma*> vmas = {
      m.FileVma(0x1000000, 0x1001000, 0, kRo, del),
      m.FileVma(0x1001000, 0x1002000, 0, kRo, nl),
      m.FileVma(0x1003000, 0x1005000, 7, kRx, plain),
      m.Anon(0x2000000, 0x2004000),
      m.Special(0x7fff0000000, 0x7fff0002000, kRx, SpecialKind::kVdso),
  };
  m.as().SetBrkState(0x2000000, 0x2001000);  // the anon VMA is [heap]
  for (Vma* v : vmas) {
    ASSERT_NE(v, nullptr);
    const std::string line = m.Line(v);
    MapsLine l;
    ASSERT_TRUE(ParseMapsLine(line.data(), line.size(), &l)) << line;
    // The query the kernel would answer, its name with " (deleted)" as d_path
    // writes it and a NUL, newlines raw.
    bool deleted = false;
    std::string name = VmaName(m.as(), *v, &deleted);
    if (deleted) name += " (deleted)";
    abi::ProcmapQuery q{};
    q.vma_start = v->start;
    q.vma_end = v->end;
    q.vma_flags = (l.perms[0] == 'r' ? 1 : 0) | (l.perms[1] == 'w' ? 2 : 0) |
                  (l.perms[2] == 'x' ? 4 : 0) | (l.perms[3] == 's' ? 8 : 0);
    q.vma_offset = l.offset;
    q.dev_major = l.dev_major;
    q.dev_minor = l.dev_minor;
    q.inode = l.inode;
    auto agrees = [&](const abi::ProcmapQuery& x, const std::string& n) {
      char buf[8192];
      const size_t len = RenderQueryLine(x, n.c_str(), n.size() + 1, buf, sizeof(buf));
      return QueryMatchesVma(m.as(), *v, x, n.c_str(), n.size() + 1) ==
             (std::string(buf, len) == line);
    };
    EXPECT_TRUE(QueryMatchesVma(m.as(), *v, q, name.c_str(), name.size() + 1)) << line;
    EXPECT_TRUE(agrees(q, name)) << line;
    const std::vector<std::function<void(abi::ProcmapQuery&)>> edits = {
        [](abi::ProcmapQuery& x) { x.vma_start -= 0x1000; },
        [](abi::ProcmapQuery& x) { x.vma_end += 0x1000; },
        [](abi::ProcmapQuery& x) { x.vma_flags ^= 1; },
        [](abi::ProcmapQuery& x) { x.vma_flags ^= 8; },
        [](abi::ProcmapQuery& x) { x.vma_offset += 0x1000; },
        [](abi::ProcmapQuery& x) { x.dev_minor += 1; },
        [](abi::ProcmapQuery& x) { x.inode += 1; },
    };
    for (const auto& edit : edits) {
      abi::ProcmapQuery x = q;
      edit(x);
      EXPECT_FALSE(QueryMatchesVma(m.as(), *v, x, name.c_str(), name.size() + 1)) << line;
      EXPECT_FALSE(QueryMatchesVma(m.as(), *v, x, "", 0, /*compare_name=*/false)) << line;
      EXPECT_TRUE(agrees(x, name)) << line;
    }
    for (const std::string& other : {name + "x", name.substr(0, name.size() / 2), std::string(),
                                     std::string("[stack]"), name + " (deleted)"}) {
      if (other == name) continue;
      EXPECT_TRUE(agrees(q, other)) << line << " vs name [" << other << "]";
      // Without the name, only the other columns count.
      EXPECT_TRUE(QueryMatchesVma(m.as(), *v, q, other.c_str(), other.size() + 1,
                                  /*compare_name=*/false))
          << line;
    }
  }
}

TEST(RenderVmaLine, PermsUseMayShare) {
  Model m;
  struct Case {
    uint64_t flags;
    const char* perms;
  };
  const Case cases[] = {
      {0, "---p"},
      {kVmRead, "r--p"},
      {kVmWrite, "-w-p"},
      {kVmExec, "--xp"},
      {kVmRead | kVmWrite | kVmExec, "rwxp"},
      {kVmShared, "---p"},  // VM_SHARED alone does not print 's'
      {kVmMayShare, "---s"},
      {kVmRead | kVmMayShare, "r--s"},  // MAP_SHARED of a read-only fd
      {kVmRead | kVmWrite | kVmShared | kVmMayShare, "rw-s"},
  };
  uint64_t addr = 0x40000000;
  for (const Case& c : cases) {
    Vma* v = m.Anon(addr, addr + kPageSize, c.flags);
    addr += 2 * kPageSize;
    EXPECT_EQ(m.Line(v).substr(18, 4), c.perms) << c.flags;
  }
}

TEST(RenderVmaLine, HeapRuleUsesRawBrkEveryRender) {
  Model m;
  const uint64_t base = 0x555555554000;
  Vma* below = m.Anon(base, base + 0x1000);
  Vma* heap1 = m.Anon(base + 0x2000, base + 0x4000);
  Vma* heap2 = m.Anon(base + 0x4000, base + 0x5000, kRo);  // split piece, other perms
  Vma* above = m.Anon(base + 0x6000, base + 0x7000);
  const FileDesc f = MakeFile("/file", 8, 1, 5, 1);
  Vma* file_in_heap = m.FileVma(base + 0x5000, base + 0x6000, 0, kRo, f);
  auto is_heap = [&](Vma* v) { return m.Line(v).ends_with(" [heap]\n"); };

  struct Case {
    uint64_t start_brk, brk;
    bool below, heap1, heap2, above;
  };
  const Case cases[] = {
      // brk == start_brk: nothing is the heap, even a VMA starting there.
      {base + 0x2000, base + 0x2000, false, false, false, false},
      // Raw unaligned brk one byte into heap1.
      {base + 0x2000, base + 0x2001, false, true, false, false},
      // brk exactly at heap2's start: heap2 is not the heap (start < brk fails).
      {base + 0x2000, base + 0x4000, false, true, false, false},
      {base + 0x2000, base + 0x4001, false, true, true, false},
      // start_brk == below's end: below is not the heap (end > start_brk fails).
      {base + 0x1000, base + 0x7000, false, true, true, true},
      // start_brk one byte below below's end.
      {base + 0xfff, base + 0x2001, true, true, false, false},
      // A range strictly inside one VMA (brk == start_brk inside it) labels it.
      {base + 0x3000, base + 0x3000, false, true, false, false},
  };
  for (const Case& c : cases) {
    m.as().SetBrkState(c.start_brk, c.brk);
    EXPECT_EQ(is_heap(below), c.below) << std::hex << c.start_brk << " " << c.brk;
    EXPECT_EQ(is_heap(heap1), c.heap1) << std::hex << c.start_brk << " " << c.brk;
    EXPECT_EQ(is_heap(heap2), c.heap2) << std::hex << c.start_brk << " " << c.brk;
    EXPECT_EQ(is_heap(above), c.above) << std::hex << c.start_brk << " " << c.brk;
    // A file VMA inside the brk range shows its path.
    EXPECT_TRUE(m.Line(file_in_heap).ends_with(" /file\n"));
  }
}

TEST(RenderVmaLine, StackRuleIsInclusiveAtBothEnds) {
  Model m;
  const uint64_t lo = 0x7ffd00000000, hi = 0x7ffd00021000;
  Vma* stack = m.Anon(lo, hi, kRw | kVmGrowsdown);
  Vma* next = m.Anon(hi, hi + 0x1000);
  struct Case {
    uint64_t start_stack;
    bool stack, next;
  };
  const Case cases[] = {
      {0, false, false},        {lo - 1, false, false},     {lo, true, false},
      {lo + 0x10, true, false}, {hi, true, true},  // both touch: the kernel labels both
      {hi + 1, false, true},    {hi + 0x1000, false, true}, {hi + 0x1001, false, false},
  };
  for (const Case& c : cases) {
    m.as().SetStartStack(c.start_stack);
    EXPECT_EQ(m.Line(stack).ends_with(" [stack]\n"), c.stack) << std::hex << c.start_stack;
    EXPECT_EQ(m.Line(next).ends_with(" [stack]\n"), c.next) << std::hex << c.start_stack;
  }
  // [heap] wins over [stack].
  m.as().SetStartStack(lo + 0x10);
  m.as().SetBrkState(lo, lo + 0x1000);
  EXPECT_TRUE(m.Line(stack).ends_with(" [heap]\n"));
}

TEST(RenderVmaLine, SpecialNames) {
  Model m;
  m.as().SetBrkState(0x1000000, 0x9000000);  // specials ignore the heap rule
  struct Case {
    SpecialKind kind;
    const char* name;
    const char* want;
  };
  const Case cases[] = {
      {SpecialKind::kVdso, nullptr, "[vdso]"},
      {SpecialKind::kVvar, nullptr, "[vvar]"},
      {SpecialKind::kVvarVclock, nullptr, "[vvar_vclock]"},
      {SpecialKind::kUprobes, nullptr, "[uprobes]"},
      {SpecialKind::kOtherSpecial, "[sigpage]", "[sigpage]"},
  };
  uint64_t addr = 0x2000000;
  for (const Case& c : cases) {
    Vma* v = m.Special(addr, addr + kPageSize, kVmRead, c.kind, c.name);
    addr += 2 * kPageSize;
    v->pgoff = 5;  // never shown: special mappings have no vm_file
    const std::string line = m.Line(v);
    EXPECT_EQ(NameColumn(line, std::string(c.want) + "\n"), 73u) << line;
    // No offset, device or inode even when a File holds the name.
    EXPECT_EQ(line.substr(18, 22), "r--p 00000000 00:00 0 ") << line;
    bool deleted = true;
    EXPECT_STREQ(VmaName(m.as(), *v, &deleted), c.want);
    EXPECT_FALSE(deleted);
  }
  // kOtherSpecial without a name prints none (and no padding).
  Vma* unnamed = m.Special(addr, addr + kPageSize, kVmRead, SpecialKind::kOtherSpecial);
  EXPECT_TRUE(m.Line(unnamed).ends_with(" 00:00 0 \n"));
}

TEST(VmaName, PrecedenceAndDeleted) {
  Model m;
  m.as().SetBrkState(0x1000000, 0x1100000);
  m.as().SetStartStack(0x1000010);
  const FileDesc f = MakeFile("/lib/x.so", 8, 1, 5, 1, true);
  Vma* file = m.FileVma(0x1000000, 0x1001000, 0, kRo, f);
  Vma* anon = m.Anon(0x1001000, 0x1002000);
  Vma* plain = m.Anon(0x2000000, 0x2001000);
  bool deleted = false;
  EXPECT_STREQ(VmaName(m.as(), *file, &deleted), "/lib/x.so");
  EXPECT_TRUE(deleted);
  EXPECT_STREQ(VmaName(m.as(), *anon, &deleted), "[heap]");
  EXPECT_FALSE(deleted);
  EXPECT_STREQ(VmaName(m.as(), *plain, &deleted), "");
}

TEST(RenderVmaLine, TruncationLikeSnprintf) {
  Model m;
  Vma* v = m.Anon(0x10000, 0x11000);
  const std::string full = "00010000-00011000 rw-p 00000000 00:00 0 \n";
  char buf[64];
  // cap 0: nothing written.
  std::memset(buf, 'Z', sizeof(buf));
  EXPECT_EQ(RenderVmaLine(m.as(), *v, buf, 0), full.size());
  EXPECT_EQ(buf[0], 'Z');
  for (size_t cap :
       {size_t{1}, size_t{5}, full.size() - 1, full.size(), full.size() + 1, sizeof(buf)}) {
    std::memset(buf, 'Z', sizeof(buf));
    const size_t n = RenderVmaLine(m.as(), *v, buf, cap);
    EXPECT_EQ(n, full.size());
    const size_t kept = std::min(cap - 1, full.size());
    EXPECT_EQ(std::string(buf, kept), full.substr(0, kept)) << cap;
    EXPECT_EQ(buf[kept], '\0') << cap;
    if (kept + 1 < sizeof(buf)) {
      EXPECT_EQ(buf[kept + 1], 'Z') << cap;
    }
  }
}

TEST(RenderMaps, OrderGateLineAndTruncation) {
  Model m;
  m.Anon(0x7f0000002000, 0x7f0000003000);
  m.Anon(0x10000, 0x11000, kRo);
  const std::string without_gate =
      "00010000-00011000 r--p 00000000 00:00 0 \n"
      "7f0000002000-7f0000003000 rw-p 00000000 00:00 0 \n";
  EXPECT_EQ(m.Maps(), without_gate);
  m.as().SetHasGateVma(true);
  const std::string gate =
      "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n";
  const std::string want = without_gate + gate;
  EXPECT_EQ(m.Maps(), want);
  for (size_t cap = 0; cap <= want.size() + 1; ++cap) {
    std::vector<char> buf(want.size() + 8, 'Z');
    const size_t n = RenderMaps(m.as(), buf.data(), cap);
    ASSERT_EQ(n, want.size());
    if (cap == 0) {
      EXPECT_EQ(buf[0], 'Z');
      continue;
    }
    const size_t kept = std::min(cap - 1, want.size());
    ASSERT_EQ(std::string(buf.data(), kept), want.substr(0, kept)) << cap;
    ASSERT_EQ(buf[kept], '\0') << cap;
    ASSERT_EQ(buf[kept + 1], 'Z') << cap;
  }
  // An empty model renders nothing but the gate line, or nothing at all.
  Model empty;
  EXPECT_EQ(empty.Maps(), "");
  empty.as().SetHasGateVma(true);
  EXPECT_EQ(empty.Maps(), gate);
}

// ---------------------------------------------------------------------------
// Parsing.

TEST(ParseMapsLine, GoodLines) {
  struct Case {
    std::string line;
    uint64_t start, end;
    const char* perms;
    uint64_t offset;
    uint32_t major, minor;
    uint64_t inode;
    const char* name;  // nullptr: no name
    bool deleted;
  };
  const Case cases[] = {
      {"00400000-00401000 r--p 00000000 fe:00 10953197                           /tmp/mt/n\n",
       0x400000, 0x401000, "r--p", 0, 0xfe, 0, 10953197, "/tmp/mt/n", false},
      {"7f135cd07000-7f135cd09000 r--s 00001000 00:01 24                         "
       "/memfd:xy (deleted)",
       0x7f135cd07000, 0x7f135cd09000, "r--s", 0x1000, 0, 1, 24, "/memfd:xy", true},
      {"7fc627fff000-7fc62800f000 rw-p 00000000 00:00 0 \n", 0x7fc627fff000, 0x7fc62800f000, "rw-p",
       0, 0, 0, 0, nullptr, false},
      {"ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n",
       0xffffffffff600000, 0xffffffffff601000, "--xp", 0, 0, 0, 0, "[vsyscall]", false},
      // Name positions are exact, so leading spaces belong to the name.
      {"01000000-01001000 r--p 00000000 08:02 11" + std::string(35, ' ') + "odd\n", 0x1000000,
       0x1001000, "r--p", 0, 8, 2, 11, "  odd", false},
      // A fixed part longer than 72 characters: one separator, no padding.
      {"ffff800000000000-ffff800000001000 rwxs 123456789000 103:abcde 18446744073709551615  "
       "/long\n",
       0xffff800000000000, 0xffff800000001000, "rwxs", 0x123456789000, 0x103, 0xabcde, ~uint64_t{0},
       "/long", false},
      {"ffff800000000000-ffff800000001000 rwxs 123456789000 103:abcde 18446744073709551615   "
       "/long\n",
       0xffff800000000000, 0xffff800000001000, "rwxs", 0x123456789000, 0x103, 0xabcde, ~uint64_t{0},
       " /long", false},
      // " (deleted)" alone is not stripped to an empty name.
      {"01000000-01001000 r--p 00000000 08:02 11" + std::string(33, ' ') + " (deleted)\n",
       0x1000000, 0x1001000, "r--p", 0, 8, 2, 11, " (deleted)", false},
      {"01000000-01001000 r--p 00000000 08:02 11" + std::string(33, ' ') +
           "/a (deleted) (deleted)\n",
       0x1000000, 0x1001000, "r--p", 0, 8, 2, 11, "/a (deleted)", true},
  };
  for (const Case& c : cases) {
    MapsLine l;
    ASSERT_TRUE(ParseMapsLine(c.line.data(), c.line.size(), &l)) << c.line;
    EXPECT_EQ(l.start, c.start) << c.line;
    EXPECT_EQ(l.end, c.end) << c.line;
    EXPECT_EQ(std::string(l.perms, 4), c.perms) << c.line;
    EXPECT_EQ(l.offset, c.offset) << c.line;
    EXPECT_EQ(l.dev_major, c.major) << c.line;
    EXPECT_EQ(l.dev_minor, c.minor) << c.line;
    EXPECT_EQ(l.inode, c.inode) << c.line;
    if (c.name == nullptr) {
      EXPECT_EQ(l.name_len, 0u) << c.line;
    } else {
      ASSERT_NE(l.name, nullptr);
      EXPECT_EQ(std::string(l.name, l.name_len), c.name) << c.line;
    }
    EXPECT_EQ(l.deleted, c.deleted) << c.line;
  }
}

TEST(ParseMapsLine, RejectsMalformedLines) {
  const std::string bad[] = {
      "", "\n",
      "00400000-00401000 r--p 00000000 fe:00 0\n",    // no space after the inode
      "00400000-00401000 r--p 00000000 fe:00 0  \n",  // two spaces, no name column
      "0040000-00401000 r--p 00000000 fe:00 0 \n",    // 7-digit start
      "000400000-00401000 r--p 00000000 fe:00 0 \n",  // 9 digits with a leading zero
      "00400000-0040100 r--p 00000000 fe:00 0 \n",    // 7-digit end
      "00400000 00401000 r--p 00000000 fe:00 0 \n",   // no dash
      "00400000-00401000  r--p 00000000 fe:00 0 \n",  // double space
      "0040000G-00401000 r--p 00000000 fe:00 0 \n",   // not hex
      "0040A000-00401000 r--p 00000000 fe:00 0 \n",   // uppercase hex
      "00401000-00401000 r--p 00000000 fe:00 0 \n",   // empty range
      "00402000-00401000 r--p 00000000 fe:00 0 \n",   // reversed range
      "10000000000000000-10000000000001000 r--p 00000000 fe:00 0 \n",   // 17 digits
      "00400000-00401000 r--x 00000000 fe:00 0 \n",                     // bad share letter
      "00400000-00401000 w--p 00000000 fe:00 0 \n",                     // letter in the wrong slot
      "00400000-00401000 r-p 00000000 fe:00 0 \n",                      // three perms
      "00400000-00401000 r--pp 00000000 fe:00 0 \n",                    // five perms
      "00400000-00401000 R--p 00000000 fe:00 0 \n",                     // uppercase perm
      "00400000-00401000 r--p 0000000 fe:00 0 \n",                      // 7-digit offset
      "00400000-00401000 r--p 000001000 fe:00 0 \n",                    // padded 9-digit offset
      "00400000-00401000 r--p 00000000 f:00 0 \n",                      // 1-digit major
      "00400000-00401000 r--p 00000000 fe:0 0 \n",                      // 1-digit minor
      "00400000-00401000 r--p 00000000 0fe:00 0 \n",                    // padded major
      "00400000-00401000 r--p 00000000 fe-00 0 \n",                     // no colon
      "00400000-00401000 r--p 00000000 fe:00 01 \n",                    // leading zero inode
      "00400000-00401000 r--p 00000000 fe:00 -1 \n",                    // negative inode
      "00400000-00401000 r--p 00000000 fe:00  \n",                      // empty inode
      "00400000-00401000 r--p 00000000 fe:00 18446744073709551616 \n",  // inode overflow
      "00400000-00401000 r--p 00000000 fe:00 12x \n",                   // junk after inode
      "00400000-00401000 r--p 00000000 fe:00 0 /x\n",                   // name not at column 73
      // Name at column 72 and 71 (the fixed part is 40 characters).
      "00400000-00401000 r--p 00000000 fe:00 0 " + std::string(32, ' ') + "/x\n",
      "00400000-00401000 r--p 00000000 fe:00 0 " + std::string(31, ' ') + "/x\n",
      // A tab in the padding.
      "00400000-00401000 r--p 00000000 fe:00 0 " + std::string(30, ' ') + "\t  /x\n",
      // Long fixed part: the separator space is missing.
      "ffff800000000000-ffff800000001000 rwxs 123456789000 103:abcde 18446744073709551615 /long\n",
      "00400000-00401000 r--p 00000000 fe:00 0 \n\n",  // two newlines
      "00400000-00401000 r--p 00000000 fe:00 0 \nx",   // text after the newline
  };
  for (const std::string& line : bad) {
    MapsLine l;
    EXPECT_FALSE(ParseMapsLine(line.data(), line.size(), &l)) << '"' << line << '"';
  }
  // An embedded NUL.
  const char nul[] = "00400000-00401000 r--p 00000000 fe:00 0\0 \n";
  MapsLine l;
  EXPECT_FALSE(ParseMapsLine(nul, sizeof(nul) - 1, &l));
  // A prefix of a good line is not a good line.
  const std::string good = "00400000-00401000 r--p 00000000 fe:00 10953197 \n";
  ASSERT_TRUE(ParseMapsLine(good.data(), good.size(), &l));
  for (size_t n = 0; n + 2 < good.size(); ++n) {
    EXPECT_FALSE(ParseMapsLine(good.data(), n, &l)) << n;
  }
}

// ---------------------------------------------------------------------------
// VmFlags.

struct FlagName {
  uint64_t flag;
  const char* name;
};
// In the kernel's print order (show_smap_vma_flags, 6.18-fc).
const FlagName kAllFlags[] = {
    {kVmRead, "rd"},      {kVmWrite, "wr"},       {kVmExec, "ex"},       {kVmShared, "sh"},
    {kVmMayRead, "mr"},   {kVmMayWrite, "mw"},    {kVmMayExec, "me"},    {kVmMayShare, "ms"},
    {kVmGrowsdown, "gd"}, {kVmUffdMissing, "um"}, {kVmPfnmap, "pf"},     {kVmMaybeGuard, "gu"},
    {kVmUffdWp, "uw"},    {kVmLocked, "lo"},      {kVmIo, "io"},         {kVmSeqRead, "sr"},
    {kVmRandRead, "rr"},  {kVmDontcopy, "dc"},    {kVmDontexpand, "de"}, {kVmLockonfault, "lf"},
    {kVmAccount, "ac"},   {kVmNoreserve, "nr"},   {kVmHugetlb, "ht"},    {kVmSync, "sf"},
    {kVmArch1, "ar"},     {kVmWipeonfork, "wf"},  {kVmDontdump, "dd"},   {kVmMixedmap, "mm"},
    {kVmHugepage, "hg"},  {kVmNohugepage, "nh"},  {kVmMergeable, "mg"},  {kVmShadowStack, "ss"},
    {kVmUffdMinor, "ui"}, {kVmDroppable, "dp"},   {kVmSealed, "sl"},
};

std::string RenderFlags(uint64_t flags) {
  char buf[256];
  const size_t n = RenderVmFlags(flags, buf, sizeof(buf));
  EXPECT_LT(n, sizeof(buf));
  return std::string(buf, n);
}

TEST(VmFlags, EachMnemonicRoundTrips) {
  for (const FlagName& f : kAllFlags) {
    EXPECT_EQ(RenderFlags(f.flag), std::string(f.name) + " ");
    uint64_t parsed = 0;
    EXPECT_TRUE(ParseVmFlags(f.name, 2, &parsed)) << f.name;
    EXPECT_EQ(parsed, f.flag) << f.name;
  }
}

TEST(VmFlags, AllInKernelOrder) {
  uint64_t all = 0;
  std::string want;
  for (const FlagName& f : kAllFlags) {
    all |= f.flag;
    want += std::string(f.name) + " ";
  }
  EXPECT_EQ(RenderFlags(all), want);
  EXPECT_EQ(RenderFlags(kVmRead | kVmWrite | kVmMayRead | kVmMayWrite | kVmMayExec | kVmGrowsdown |
                        kVmMaybeGuard | kVmLocked | kVmAccount),
            "rd wr mr mw me gd gu lo ac ");  // seen on this machine
  uint64_t parsed = 0;
  EXPECT_TRUE(ParseVmFlags(want.data(), want.size(), &parsed));
  EXPECT_EQ(parsed, all);
  // Pkey bits print nothing; no flags print nothing.
  EXPECT_EQ(RenderFlags(kVmPkeyMask | kVmRead), "rd ");
  EXPECT_EQ(RenderFlags(0), "");
}

TEST(VmFlags, ParseSeparatorsUnknownsAndSoftDirty) {
  uint64_t f = 0;
  EXPECT_TRUE(ParseVmFlags("", 0, &f));
  EXPECT_EQ(f, 0u);
  const std::string text = "  rd\twr  mr mw me sd ac \n";
  EXPECT_TRUE(ParseVmFlags(text.data(), text.size(), &f));
  EXPECT_EQ(f, kRw);
  // Unknown mnemonics fail, but the known ones are still set.
  for (const char* t : {"rd zz wr", "rd ?? wr", "rd r wr", "rd rdx wr", "rd RD wr"}) {
    EXPECT_FALSE(ParseVmFlags(t, std::strlen(t), &f)) << t;
    EXPECT_EQ(f, kVmRead | kVmWrite) << t;
  }
  // Length is honoured: text past len is not read.
  EXPECT_TRUE(ParseVmFlags("rd zz", 3, &f));
  EXPECT_EQ(f, kVmRead);
}

TEST(VmFlags, Truncation) {
  char buf[8];
  std::memset(buf, 'Z', sizeof(buf));
  EXPECT_EQ(RenderVmFlags(kVmRead | kVmWrite | kVmMayRead, buf, 5), 9u);
  EXPECT_STREQ(buf, "rd w");
  EXPECT_EQ(RenderVmFlags(kVmRead, buf, 0), 3u);
}

// ---------------------------------------------------------------------------
// Guesses and special kinds.

TEST(SpecialKindFromName, Names) {
  struct Case {
    const char* name;
    SpecialKind want;
  };
  const Case cases[] = {
      {"[vdso]", SpecialKind::kVdso},
      {"[vvar]", SpecialKind::kVvar},
      {"[vvar_vclock]", SpecialKind::kVvarVclock},
      {"[vsyscall]", SpecialKind::kVsyscall},
      {"[uprobes]", SpecialKind::kUprobes},
      {"[sigpage]", SpecialKind::kOtherSpecial},
      {"[heap]", SpecialKind::kNone},
      {"[stack]", SpecialKind::kNone},
      {"[anon:foo]", SpecialKind::kNone},
      {"[anon_shmem:foo]", SpecialKind::kNone},
      {"/usr/lib/libc.so.6", SpecialKind::kNone},
      {"[vdso", SpecialKind::kNone},
      {"", SpecialKind::kNone},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(SpecialKindFromName(c.name, std::strlen(c.name)), c.want) << c.name;
  }
  EXPECT_EQ(SpecialKindFromName(nullptr, 0), SpecialKind::kNone);
  // Length is honoured.
  EXPECT_EQ(SpecialKindFromName("[vdso]xyz", 6), SpecialKind::kVdso);
}

TEST(GuessFlagsFromMapsLine, KnownKinds) {
  struct Case {
    const char* line;
    const char* want;  // as VmFlags prints it
  };
  // The "want" strings are the VmFlags this machine shows for such lines.
  const Case cases[] = {
      {"7fc628202000-7fc628206000 r--p 00000000 00:00 0                          [vvar]",
       "rd mr pf io de dd "},
      {"7fc628206000-7fc628208000 r--p 00000000 00:00 0                          [vvar_vclock]",
       "rd mr pf io de dd "},
      {"7fc628208000-7fc62820a000 r-xp 00000000 00:00 0                          [vdso]",
       "rd ex mr mw me de "},
      {"7ffd29489000-7ffd294aa000 rw-p 00000000 00:00 0                          [stack]",
       "rd wr mr mw me gd ac "},
      {"562a81fc5000-562a81fe6000 rw-p 00000000 00:00 0                          [heap]",
       "rd wr mr mw me ac "},
      {"7fc62800f000-7fc628012000 rw-p 00000000 00:00 0 ", "rd wr mr mw me ac "},
      {"7fc628012000-7fc628038000 r--p 00000000 fe:00 332835                     /lib/libc.so.6",
       "rd mr mw me "},
      {"7fc628038000-7fc62818e000 r-xp 00026000 fe:00 332835                     /lib/libc.so.6",
       "rd ex mr mw me "},
      {"7fc6281e5000-7fc6281e7000 rw-p 001d3000 fe:00 332835                     /lib/libc.so.6",
       "rd wr mr mw me ac "},
      {"7fc627eef000-7fc627eff000 rw-s 00000000 00:01 1025                       "
       "/dev/zero (deleted)",
       "rd wr sh mr mw me ms "},
      {"7f135cd07000-7f135cd09000 r--s 00001000 00:01 24                         "
       "/memfd:xy (deleted)",
       "rd sh mr mw me ms "},
      {"7f135cd07000-7f135cd09000 r--s 00000000 fe:00 24                         /etc/x",
       "rd mr me ms "},
      {"ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]",
       "ex "},
  };
  for (const Case& c : cases) {
    MapsLine l;
    ASSERT_TRUE(ParseMapsLine(c.line, std::strlen(c.line), &l)) << c.line;
    EXPECT_EQ(RenderFlags(GuessFlagsFromMapsLine(l)), c.want) << c.line;
  }
}

// ---------------------------------------------------------------------------
// SeedFromMaps on synthetic text.

// A maps line from its fixed part (ending in a space) and name, padded as
// show_map_vma pads (checked against real kernel lines above).
std::string KLine(const std::string& fixed, const std::string& name = "") {
  std::string l = fixed;
  if (!name.empty()) {
    l.resize(std::max<size_t>(l.size(), 72), ' ');
    l += ' ';
    l += name;
  }
  return l + "\n";
}

std::string SampleMaps() {
  return KLine("00400000-00401000 r--p 00000000 fe:00 10953197 ", "/tmp/mt/n") +
         KLine("00401000-00402000 r-xp 00001000 fe:00 10953197 ", "/tmp/mt/n") +
         KLine("00404000-00405000 rw-p 00003000 fe:00 10953197 ", "/tmp/mt/n") +
         KLine("01e5e000-01e7f000 rw-p 00000000 00:00 0 ", "[heap]") +
         KLine("7f135cb18000-7f135cb1b000 rw-p 00000000 00:00 0 ") +
         KLine("7f135cd07000-7f135cd09000 r--s 00001000 00:01 24 ", "/memfd:xy (deleted)") +
         KLine("7f135cd09000-7f135cd0a000 rw-s 00000000 00:01 1025 ", "/dev/zero (deleted)") +
         KLine("7f135cd0a000-7f135cd0b000 rw-s 00001000 00:01 1025 ", "/dev/zero (deleted)") +
         KLine("7f135cd0b000-7f135cd0f000 r--p 00000000 00:00 0 ", "[vvar]") +
         KLine("7f135cd0f000-7f135cd11000 r--p 00000000 00:00 0 ", "[vvar_vclock]") +
         KLine("7f135cd11000-7f135cd13000 r-xp 00000000 00:00 0 ", "[vdso]") +
         KLine("7f135cd13000-7f135cd14000 r--s 00000000 00:00 0 ", "[sigpage]") +
         KLine("7f135cd14000-7f135cd15000 r--p 00000000 00:1a 77 ", "/dev/shm/seg") +
         KLine("7f135cd15000-7f135cd16000 rw-s 00000000 00:05 88 ", "/dev/dri/card0") +
         KLine("7f135cd16000-7f135cd17000 rw-s 00000000 00:10 99 ", "/SYSV0000abcd (deleted)") +
         KLine("7ffdb8c85000-7ffdb8ca6000 rw-p 00000000 00:00 0 ", "[stack]") +
         KLine("ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0 ", "[vsyscall]");
}

TEST(SeedFromMaps, SyntheticTextRoundTrips) {
  Model m;
  size_t bad = 99;
  const std::string text = SampleMaps();
  // The helper pads like the kernel: compare one line with a copied one.
  ASSERT_EQ(text.substr(text.rfind("ffffffffff600000")),
            "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  "
            "[vsyscall]\n");
  ASSERT_EQ(SeedFromMaps(&m.as(), text.data(), text.size(), nullptr, 0, &bad), 0);
  EXPECT_EQ(bad, 0u);
  EXPECT_EQ(m.as().map_count(), 16u);  // [vsyscall] is not a VMA
  EXPECT_TRUE(m.as().has_gate_vma());
  EXPECT_EQ(m.as().tree().Validate(), nullptr);
  // brk and start_stack are the caller's: until set, no [heap]/[stack].
  std::string rendered = m.Maps();
  EXPECT_EQ(rendered.find("[heap]"), std::string::npos);
  EXPECT_EQ(rendered.find("[stack]"), std::string::npos);
  m.as().SetBrkState(0x1e5e000, 0x1e7e123);
  m.as().SetStartStack(0x7ffdb8ca5f00);
  EXPECT_EQ(m.Maps(), text);

  // File, pgoff and special details.
  const Vma* exe0 = m.as().FindVma(0x400000);
  const Vma* exe1 = m.as().FindVma(0x401000);
  const Vma* exe2 = m.as().FindVma(0x404000);
  ASSERT_NE(exe0->file, nullptr);
  EXPECT_EQ(exe0->file, exe1->file);  // one File per (dev, inode, path)
  EXPECT_EQ(exe0->file, exe2->file);
  EXPECT_EQ(exe2->pgoff, 3u);
  EXPECT_EQ(exe0->file->kind, FileKind::kRegular);
  EXPECT_STREQ(exe0->file->path, "/tmp/mt/n");
  EXPECT_EQ(exe0->file->inode, 10953197u);
  EXPECT_EQ(exe0->file->dev_major, 0xfeu);
  EXPECT_FALSE(exe0->file->deleted);
  // Flags guessed from the lines.
  EXPECT_EQ(exe1->flags, kRx);
  EXPECT_EQ(exe2->flags, kRw);

  const Vma* heap = m.as().FindVma(0x1e5e000);
  EXPECT_EQ(heap->file, nullptr);
  EXPECT_EQ(heap->special, SpecialKind::kNone);
  EXPECT_EQ(heap->pgoff, 0x1e5eu);
  EXPECT_EQ(m.as().FindVma(0x7f135cb18000)->pgoff, 0x7f135cb18u);

  const Vma* memfd = m.as().FindVma(0x7f135cd07000);
  EXPECT_EQ(memfd->file->kind, FileKind::kShmem);
  EXPECT_TRUE(memfd->file->deleted);
  EXPECT_STREQ(memfd->file->path, "/memfd:xy");
  EXPECT_EQ(memfd->pgoff, 1u);
  const Vma* zero0 = m.as().FindVma(0x7f135cd09000);
  const Vma* zero1 = m.as().FindVma(0x7f135cd0a000);
  EXPECT_EQ(zero0->file, zero1->file);  // two halves of one shared anonymous mapping
  EXPECT_EQ(zero0->file->kind, FileKind::kShmem);
  EXPECT_EQ(zero1->pgoff, 1u);
  EXPECT_NE(zero0->file, memfd->file);
  EXPECT_NE(zero0->file->id, memfd->file->id);

  EXPECT_EQ(m.as().FindVma(0x7f135cd0b000)->special, SpecialKind::kVvar);
  EXPECT_EQ(m.as().FindVma(0x7f135cd0f000)->special, SpecialKind::kVvarVclock);
  const Vma* vdso = m.as().FindVma(0x7f135cd11000);
  EXPECT_EQ(vdso->special, SpecialKind::kVdso);
  EXPECT_EQ(vdso->pgoff, 0u);
  EXPECT_EQ(vdso->flags, kRx | kVmDontexpand);
  EXPECT_EQ(m.as().FindVma(0x7f135cd13000)->special, SpecialKind::kOtherSpecial);
  EXPECT_EQ(m.as().FindVma(0x7f135cd14000)->file->kind, FileKind::kShmem);
  EXPECT_EQ(m.as().FindVma(0x7f135cd15000)->file->kind, FileKind::kDevice);
  EXPECT_EQ(m.as().FindVma(0x7f135cd16000)->file->kind, FileKind::kShmem);
  const Vma* stack = m.as().FindVma(0x7ffdb8c85000);
  EXPECT_EQ(stack->file, nullptr);
  EXPECT_TRUE(stack->flags & kVmGrowsdown);

  // Seeding again replaces everything (Clear first), including the gate.
  const char one[] = "00400000-00401000 r--p 00000000 00:00 0 \n";
  ASSERT_EQ(SeedFromMaps(&m.as(), one, sizeof(one) - 1, nullptr, 0, &bad), 0);
  EXPECT_EQ(m.as().map_count(), 1u);
  EXPECT_FALSE(m.as().has_gate_vma());
}

TEST(SeedFromMaps, LastLineWithoutNewlineAndEmptyText) {
  Model m;
  const char text[] = "00400000-00401000 r--p 00000000 00:00 0 ";
  size_t bad = 0;
  ASSERT_EQ(SeedFromMaps(&m.as(), text, sizeof(text) - 1, nullptr, 0, &bad), 0);
  EXPECT_EQ(m.as().map_count(), 1u);
  ASSERT_EQ(SeedFromMaps(&m.as(), "", 0, nullptr, 0, &bad), 0);
  EXPECT_EQ(m.as().map_count(), 0u);
}

TEST(SeedFromMaps, ReportsTheBadLine) {
  struct Case {
    const char* text;
    size_t bad_line;
  };
  const Case cases[] = {
      // Malformed second line.
      {"00400000-00401000 r--p 00000000 00:00 0 \n"
       "00401000-00402000 r--p 00000000 00:00 0\n",
       2},
      // Empty line in the middle.
      {"00400000-00401000 r--p 00000000 00:00 0 \n\n"
       "00401000-00402000 r--p 00000000 00:00 0 \n",
       2},
      // Overlap.
      {"00400000-00402000 r--p 00000000 00:00 0 \n"
       "00401000-00403000 r--p 00000000 00:00 0 \n",
       2},
      // Unaligned.
      {"00400000-00401000 r--p 00000000 00:00 0 \n"
       "00401000-00401800 r--p 00000000 00:00 0 \n",
       2},
      // An anonymous line cannot have an offset.
      {"00400000-00401000 r--p 00000000 00:00 0 \n"
       "00401000-00402000 r--p 00000000 00:00 0 \n"
       "00402000-00403000 r--p 00001000 00:00 0 \n",
       3},
  };
  for (const Case& c : cases) {
    Model m;
    size_t bad = 0;
    EXPECT_EQ(SeedFromMaps(&m.as(), c.text, std::strlen(c.text), nullptr, 0, &bad), -EINVAL)
        << c.text;
    EXPECT_EQ(bad, c.bad_line) << c.text;
  }
}

TEST(SeedFromMaps, RunsOutOfArena) {
  Model m(1024);  // room for a handful of VMAs at most
  std::string text;
  for (int i = 0; i < 64; ++i) {
    const uint64_t start = 0x10000000 + 2 * i * kPageSize;
    char line[128];
    std::snprintf(line, sizeof(line), "%08llx-%08llx rw-p 00000000 00:00 0 \n",
                  static_cast<unsigned long long>(start),
                  static_cast<unsigned long long>(start + kPageSize));
    text += line;
  }
  size_t bad = 0;
  EXPECT_EQ(SeedFromMaps(&m.as(), text.data(), text.size(), nullptr, 0, &bad), -ENOMEM);
  EXPECT_GT(bad, 0u);
  EXPECT_LT(m.as().map_count(), 64u);
}

TEST(SeedFromMaps, TakesFlagsFromSmaps) {
  const std::string maps = KLine("00400000-00401000 r--p 00000000 fe:00 7 ", "/bin/x") +
                           KLine("00500000-00501000 rw-p 00000000 00:00 0 ") +
                           KLine("00600000-00601000 rw-p 00000000 00:00 0 ");
  // Blocks out of order, with other fields and a ProtectionKey line.
  const char smaps[] =
      "00500000-00501000 rw-p 00000000 00:00 0 \n"
      "Size:                  4 kB\n"
      "ProtectionKey:         3\n"
      "VmFlags: rd wr mr mw me lo dc ac \n"
      "00400000-00401000 r--p 00000000 fe:00 7 /bin/x\n"
      "Size:                  4 kB\n"
      "VmFlags: rd mr mw \n"
      "00600000-00601000 rw-p 00000000 00:00 0 \n"
      "VmFlags: rd wr mr mw me nr gu";
  Model m;
  size_t bad = 0;
  ASSERT_EQ(SeedFromMaps(&m.as(), maps.data(), maps.size(), smaps, sizeof(smaps) - 1, &bad), 0);
  EXPECT_EQ(m.as().FindVma(0x500000)->flags,
            kRw | kVmLocked | kVmDontcopy | (uint64_t{3} << kVmPkeyShift));
  const Vma* file = m.as().FindVma(0x400000);
  EXPECT_EQ(file->flags, kVmRead | kVmMayRead | kVmMayWrite);
  EXPECT_TRUE(file->file->noexec_mount);  // no VM_MAYEXEC
  EXPECT_EQ(m.as().FindVma(0x600000)->flags, (kRw & ~kVmAccount) | kVmNoreserve | kVmMaybeGuard);

  // A VMA with no smaps block, a block with no VmFlags, an unknown mnemonic.
  const char* const bad_smaps[] = {
      "00400000-00401000 r--p 00000000 fe:00 7 /bin/x\nVmFlags: rd\n",
      "00400000-00401000 r--p 00000000 fe:00 7 /bin/x\nVmFlags: rd\n"
      "00500000-00501000 rw-p 00000000 00:00 0 \nSize: 4 kB\n"
      "00600000-00601000 rw-p 00000000 00:00 0 \nVmFlags: rd\n",
      "00400000-00401000 r--p 00000000 fe:00 7 /bin/x\nVmFlags: rd\n"
      "00500000-00501000 rw-p 00000000 00:00 0 \nVmFlags: rd zz\n"
      "00600000-00601000 rw-p 00000000 00:00 0 \nVmFlags: rd\n",
  };
  for (const char* s : bad_smaps) {
    EXPECT_EQ(SeedFromMaps(&m.as(), maps.data(), maps.size(), s, std::strlen(s), &bad), -EINVAL)
        << s;
    EXPECT_EQ(bad, 2u) << s;
  }
}

// ---------------------------------------------------------------------------
// Round trips against the running kernel.

// /proc/self/{stat,maps,smaps} and brk, read back to back with no allocation
// (which could move brk or add a mapping) between the reads.
struct KernelSnapshot {
  std::string stat, maps, smaps;
  uint64_t brk = 0;
};

bool ReadInto(const char* path, std::string* buf, std::string* err) {
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *err = std::string("open ") + path + ": " + std::strerror(errno);
    return false;
  }
  size_t used = 0;
  while (true) {
    if (used == buf->size()) {
      close(fd);
      *err = std::string(path) + " is larger than the buffer";
      return false;
    }
    const ssize_t n = read(fd, buf->data() + used, buf->size() - used);
    if (n < 0) {
      close(fd);
      *err = std::string("read ") + path + ": " + std::strerror(errno);
      return false;
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  close(fd);
  buf->resize(used);  // shrinking never reallocates
  return true;
}

bool TakeSnapshot(KernelSnapshot* s, std::string* err) {
  constexpr size_t kBuf = 8 << 20;
  s->stat.assign(kBuf, '\0');
  s->maps.assign(kBuf, '\0');
  s->smaps.assign(kBuf, '\0');
  err->reserve(4096);
  // Nothing below allocates until the last read returns.
  s->brk = reinterpret_cast<uint64_t>(sbrk(0));
  return ReadInto("/proc/self/stat", &s->stat, err) && ReadInto("/proc/self/maps", &s->maps, err) &&
         ReadInto("/proc/self/smaps", &s->smaps, err);
}

// Field `n` (1-based, as proc(5) numbers them) of /proc/PID/stat.
uint64_t StatField(const std::string& stat, int n) {
  size_t p = stat.rfind(')');
  if (p == std::string::npos) return 0;
  p += 2;  // field 3 starts here
  for (int field = 3; field < n; ++field) {
    p = stat.find(' ', p);
    if (p == std::string::npos) return 0;
    ++p;
  }
  return std::strtoull(stat.c_str() + p, nullptr, 10);
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  size_t p = 0;
  while (p < text.size()) {
    size_t nl = text.find('\n', p);
    if (nl == std::string::npos) nl = text.size();
    out.push_back(text.substr(p, nl - p));
    p = nl + 1;
  }
  return out;
}

// "start-end " of each smaps block → its VmFlags text (without "VmFlags: ").
std::map<std::string, std::string> SmapsFlagsByRange(const std::string& smaps) {
  std::map<std::string, std::string> out;
  std::string range;
  for (const std::string& line : Lines(smaps)) {
    if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) &&
        !std::isupper(static_cast<unsigned char>(line[0]))) {
      range = line.substr(0, line.find(' ') + 1);
    } else if (line.rfind("VmFlags: ", 0) == 0) {
      out[range] = line.substr(9);
    }
  }
  return out;
}

// Seeds a model from a fresh snapshot of this process and compares. Returns
// "" on success, or a description of the first difference.
std::string RoundTripThisProcess(int* vmas_checked) {
  // Every buffer exists before the snapshot is read: memory mapped after it
  // may land beside a snapshot VMA and merge with it (same flags, one side
  // without an anon_vma), which the model, seeded from the snapshot, cannot
  // know. Whether that happens depends on malloc's mmap threshold and on
  // where the kernel places things, so nothing is mapped in between.
  Model m(32 << 20);
  KernelSnapshot snap;
  std::string err;
  if (!TakeSnapshot(&snap, &err)) return err;
  const uint64_t start_stack = StatField(snap.stat, 28);
  const uint64_t start_brk = StatField(snap.stat, 47);
  if (start_stack == 0 || start_brk == 0) return "cannot read /proc/self/stat: " + snap.stat;

  size_t bad = 0;
  const int rc = SeedFromMaps(&m.as(), snap.maps.data(), snap.maps.size(), snap.smaps.data(),
                              snap.smaps.size(), &bad);
  if (rc != 0) {
    return "SeedFromMaps: " + std::to_string(rc) + " at line " + std::to_string(bad) + ": " +
           (bad > 0 && bad <= Lines(snap.maps).size() ? Lines(snap.maps)[bad - 1] : "");
  }
  m.as().SetBrkState(start_brk, snap.brk);
  m.as().SetStartStack(start_stack);

  std::string out;
  const std::string rendered = m.Maps();
  if (rendered != snap.maps) {
    const std::vector<std::string> want = Lines(snap.maps), got = Lines(rendered);
    out = "rendered maps differ from the kernel's:\n";
    for (size_t i = 0; i < std::max(want.size(), got.size()); ++i) {
      const std::string w = i < want.size() ? want[i] : "<none>";
      const std::string g = i < got.size() ? got[i] : "<none>";
      if (w != g) out += "  kernel: [" + w + "]\n  model:  [" + g + "]\n";
    }
    return out;
  }

  // Per-VMA: each rendered line, VmFlags and the guesses we expect to be exact.
  const std::map<std::string, std::string> flags = SmapsFlagsByRange(snap.smaps);
  int checked = 0;
  int queried = 0;
  int skipped = 0;
  const int maps_fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  for (const Vma* v = m.as().tree().First(); v != nullptr; v = v->next) {
    const std::string line = m.Line(v);
    const std::string range = line.substr(0, line.find(' ') + 1);
    if (snap.maps.find(line) == std::string::npos) out += "line not in maps: " + line;
    const auto it = flags.find(range);
    if (it == flags.end()) {
      out += "no smaps block for " + range + "\n";
      continue;
    }
    const std::string rendered_flags = RenderFlags(v->flags);
    if (rendered_flags != it->second) {
      out +=
          "VmFlags of " + range + ": kernel [" + it->second + "] model [" + rendered_flags + "]\n";
    }
    // The range check's comparison: the kernel's PROCMAP_QUERY answer for
    // this VMA matches the model's VMA, and renders as the same line. The
    // heap and the stack move while this test allocates, so they are left out.
    const bool moving =
        line.find("[heap]") != std::string::npos || line.find("[stack]") != std::string::npos;
    skipped += moving ? 1 : 0;
    if (maps_fd >= 0 && !moving) {
      abi::ProcmapQuery q{};
      char qname[4096];
      q.size = sizeof(q);
      q.query_flags = abi::kProcmapQueryCoveringOrNext;
      q.query_addr = v->start;
      q.vma_name_addr = reinterpret_cast<uint64_t>(qname);
      q.vma_name_size = sizeof(qname);
      if (ioctl(maps_fd, abi::kProcmapQueryIoctl, &q) != 0) {
        out += "PROCMAP_QUERY failed for " + range + "\n";
      } else {
        char qline[8192];
        const size_t qn = RenderQueryLine(q, qname, q.vma_name_size, qline, sizeof(qline));
        if (std::string(qline, qn) != line) out += "query line differs: " + std::string(qline, qn);
        if (!QueryMatchesVma(m.as(), *v, q, qname, q.vma_name_size)) {
          out += "QueryMatchesVma false for " + line;
        }
        ++queried;
      }
    }
    bool deleted = false;
    const std::string name = VmaName(m.as(), *v, &deleted);
    if (name == "[vvar]" || name == "[vvar_vclock]" || name == "[vdso]" || name == "[stack]") {
      MapsLine l;
      if (!ParseMapsLine(line.data(), line.size(), &l)) {
        out += "cannot parse own line " + line;
      } else if (RenderFlags(GuessFlagsFromMapsLine(l)) != it->second) {
        out += "guessed VmFlags of " + name + ": [" + RenderFlags(GuessFlagsFromMapsLine(l)) +
               "] kernel [" + it->second + "]\n";
      }
    }
    ++checked;
  }
  if (maps_fd >= 0) {
    close(maps_fd);
    if (queried + skipped != checked) {
      out +=
          "only " + std::to_string(queried) + " of " + std::to_string(checked) + " VMAs queried\n";
    }
  }
  *vmas_checked = checked;
  return out;
}

TEST(KernelRoundTrip, ThisProcess) {
  int checked = 0;
  const std::string diff = RoundTripThisProcess(&checked);
  EXPECT_EQ(diff, "");
  EXPECT_GT(checked, 5);
}

// Every parseable line of the kernel's maps parses, and its parts re-render.
TEST(KernelRoundTrip, EveryKernelLineParses) {
  KernelSnapshot snap;
  std::string err;
  ASSERT_TRUE(TakeSnapshot(&snap, &err)) << err;
  for (const std::string& line : Lines(snap.maps)) {
    MapsLine l;
    ASSERT_TRUE(ParseMapsLine(line.data(), line.size(), &l)) << line;
    char start[32];
    std::snprintf(start, sizeof(start), "%08llx-%08llx ", static_cast<unsigned long long>(l.start),
                  static_cast<unsigned long long>(l.end));
    EXPECT_EQ(line.rfind(start, 0), 0u) << line;
    // The fixed part ends at the fifth space; the name starts at column 73
    // or one past the fixed part, whichever is later.
    size_t fixed_len = 0;
    for (int i = 0; i < 5; ++i) fixed_len = line.find(' ', fixed_len) + 1;
    if (l.name_len > 0) {
      EXPECT_EQ(static_cast<size_t>(l.name - line.data()), std::max<size_t>(73, fixed_len + 1))
          << line;
    } else {
      EXPECT_EQ(fixed_len, line.size()) << line;
    }
  }
}

// Makes a variety of mappings in this (child) process. Returns "" or an error.
std::string MakeVarietyOfMappings(std::string* tmpdir) {
  char dir[] = "/tmp/maps_text_test.XXXXXX";
  if (mkdtemp(dir) == nullptr) return std::string("mkdtemp: ") + std::strerror(errno);
  *tmpdir = dir;
  const long page = sysconf(_SC_PAGESIZE);
  auto fail = [](const char* what) { return std::string(what) + ": " + std::strerror(errno); };

  // A regular file of 4 pages: private mapping at an offset, shared rw, and a
  // shared mapping through a read-only fd (r--s: VM_MAYSHARE without
  // VM_SHARED). Then unlink it: " (deleted)".
  const std::string path = std::string(dir) + "/data file";  // a space in the name
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || ftruncate(fd, 4 * page) != 0) return fail("create data file");
  if (mmap(nullptr, 2 * page, PROT_READ, MAP_PRIVATE, fd, page) == MAP_FAILED) return fail("mmap");
  void* shared_rw = mmap(nullptr, 3 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (shared_rw == MAP_FAILED) return fail("mmap shared");
  // Split it: the middle page becomes read-only, offsets 0x1000 and 0x2000 show.
  if (mprotect(static_cast<char*>(shared_rw) + page, page, PROT_READ) != 0) {
    return fail("mprotect");
  }
  close(fd);
  const int ro_fd = open(path.c_str(), O_RDONLY);
  if (ro_fd < 0) return fail("open ro");
  if (mmap(nullptr, page, PROT_READ, MAP_SHARED, ro_fd, 2 * page) == MAP_FAILED) {
    return fail("mmap ro shared");
  }
  close(ro_fd);
  if (unlink(path.c_str()) != 0) return fail("unlink");

  // A file that stays, mapped executable, with a newline in its name.
  const std::string nl_path = std::string(dir) + "/new\nline";
  fd = open(nl_path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || ftruncate(fd, page) != 0) return fail("create nl file");
  if (mmap(nullptr, page, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0) == MAP_FAILED) {
    return fail("mmap nl");
  }
  close(fd);

  // Shared anonymous memory, split so a non-zero offset shows.
  char* shanon = static_cast<char*>(
      mmap(nullptr, 4 * page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  if (shanon == MAP_FAILED) return fail("mmap shared anon");
  if (mprotect(shanon + 2 * page, page, PROT_NONE) != 0) return fail("mprotect shared anon");

  // memfd.
  fd = memfd_create("maps_text_test", 0);
  if (fd < 0 || ftruncate(fd, 3 * page) != 0) return fail("memfd");
  if (mmap(nullptr, 2 * page, PROT_READ, MAP_SHARED, fd, page) == MAP_FAILED) {
    return fail("mmap memfd");
  }
  close(fd);

  // PROT_NONE, MAP_NORESERVE, MAP_GROWSDOWN, madvise flags, a guard region.
  if (mmap(nullptr, 5 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0) ==
      MAP_FAILED) {
    return fail("mmap none");
  }
  if (mmap(nullptr, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN,
           -1, 0) == MAP_FAILED) {
    return fail("mmap growsdown");
  }
  char* adv = static_cast<char*>(
      mmap(nullptr, 8 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (adv == MAP_FAILED) return fail("mmap adv");
  madvise(adv, page, MADV_DONTFORK);
  madvise(adv + 2 * page, page, MADV_DONTDUMP);
  madvise(adv + 4 * page, page, MADV_WIPEONFORK);
  madvise(adv + 6 * page, page, MADV_RANDOM);
  char* guard = static_cast<char*>(
      mmap(nullptr, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (guard == MAP_FAILED) return fail("mmap guard");
  madvise(guard + page, page, 102 /* MADV_GUARD_INSTALL, may be EINVAL on old kernels */);
  char* locked = static_cast<char*>(
      mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (locked == MAP_FAILED) return fail("mmap locked");
  mlock(locked, page);  // may fail under RLIMIT_MEMLOCK; either way is fine

  // The heap: grow brk by an unaligned amount, so the raw brk is mid-page.
  if (sbrk(3 * page + 123) == reinterpret_cast<void*>(-1)) return fail("sbrk");
  return "";
}

TEST(KernelRoundTrip, ForkedChildWithManyKindsOfMappings) {
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(pipefd[0]);
    std::string tmpdir;
    std::string msg = MakeVarietyOfMappings(&tmpdir);
    int checked = 0;
    if (msg.empty()) msg = RoundTripThisProcess(&checked);
    if (msg.empty() && checked < 20) msg = "only " + std::to_string(checked) + " VMAs checked";
    // Make sure the interesting lines were really there.
    if (msg.empty()) {
      KernelSnapshot snap;
      std::string err;
      if (!TakeSnapshot(&snap, &err)) msg = err;
      for (const char* want :
           {"/data file (deleted)", "/new\\012line", "/dev/zero (deleted)",
            "/memfd:maps_text_test (deleted)", "[heap]", " rw-s 00002000 ", " r--s 00002000 ",
            " ---s 00002000 ", " rw-s 00003000 ", " r--s 00001000 ", " ---p 00000000 "}) {
        if (msg.empty() && snap.maps.find(want) == std::string::npos) {
          msg = std::string("expected to see ") + want + " in\n" + snap.maps;
        }
      }
    }
    if (!tmpdir.empty()) {
      unlink((tmpdir + "/new\nline").c_str());
      rmdir(tmpdir.c_str());
    }
    size_t off = 0;
    while (off < msg.size()) {
      const ssize_t n = write(pipefd[1], msg.data() + off, msg.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    _exit(msg.empty() ? 0 : 1);
  }
  close(pipefd[1]);
  std::string msg;
  char buf[4096];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof(buf))) > 0) msg.append(buf, static_cast<size_t>(n));
  close(pipefd[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << msg;
  EXPECT_EQ(msg, "");
}

}  // namespace
}  // namespace vmashadow

namespace vmashadow {
namespace {

TEST(ProcStat, ParsesTheFieldsAfterTheCommandName) {
  // A command name with spaces and parentheses, as proc(5) allows.
  std::string stat = "4242 (a) (b c)) S 1 4242 4242 0 -1 4194560";
  for (int field = 10; field <= 52; ++field) stat += " " + std::to_string(field * 1000);
  stat += "\n";
  ProcStat st;
  ASSERT_TRUE(ParseProcStat(stat.data(), stat.size(), &st));
  EXPECT_EQ(st.start_code, 26000u);
  EXPECT_EQ(st.end_code, 27000u);
  EXPECT_EQ(st.start_stack, 28000u);
  EXPECT_EQ(st.start_data, 45000u);
  EXPECT_EQ(st.end_data, 46000u);
  EXPECT_EQ(st.start_brk, 47000u);
  const std::string short_stat = "1 (init) S 0 1 1 0 -1 4194560 100\n";
  EXPECT_FALSE(ParseProcStat(short_stat.data(), short_stat.size(), &st));
  EXPECT_FALSE(ParseProcStat("no parens", 9, &st));
}

TEST(ProcStat, InfersMmapBaseBelowTheStack) {
  const std::string maps =
      "555555554000-555555556000 r--p 00000000 fe:00 1                          /bin/x\n"
      "7ffff7fc3000-7ffff7fc5000 r-xp 00000000 00:00 0                          [vdso]\n"
      "7ffff7fc5000-7ffff7fc7000 r--p 00000000 fe:00 2                          /lib/ld.so\n"
      "7ffff7fc7000-7ffff7ff0000 r-xp 00002000 fe:00 2                          /lib/ld.so\n"
      "7ffffffde000-7ffffffff000 rw-p 00000000 00:00 0                          [stack]\n"
      "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n";
  EXPECT_EQ(InferMmapBase(maps.data(), maps.size(), 0x7fffffffe3a0), 0x7ffff7ff0000u);
  EXPECT_EQ(InferMmapBase(maps.data(), maps.size(), 0x7ffff0000000), 0u);  // not in a VMA
}

}  // namespace
}  // namespace vmashadow

namespace vmashadow {
namespace {

TEST(SystemFacts, MmParamsFollowTheKernelsRules) {
  const std::string maps =
      "7ffff7fc5000-7ffff7ff0000 r-xp 00000000 fe:00 2                          /lib/ld.so\n"
      "7ffffffde000-7ffffffff000 rw-p 00000000 00:00 0                          [stack]\n";
  std::string stat = "7 (x) S";
  for (int field = 4; field <= 52; ++field) {
    stat += " " + std::to_string(field == 28 ? 0x7fffffffe000 : field);
  }
  const std::string status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
  SystemFacts f;
  f.mmap_min_addr = 4096;  // below the LSM minimum: 65536 wins
  f.max_map_count = 1000;
  f.legacy_va_layout = 0;
  f.personality = 0;
  f.ospke = false;
  f.rlimit_stack = 8 << 20;
  f.status = status.data();
  f.status_len = status.size();
  f.stat = stat.data();
  f.stat_len = stat.size();
  f.maps = maps.data();
  f.maps_len = maps.size();
  MmParams p;
  ProcStat st;
  ASSERT_EQ(MmParamsFromFacts(f, &p, &st), 0);
  EXPECT_EQ(p.dac_mmap_min_addr, 4096u);
  EXPECT_EQ(p.mmap_min_addr, 65536u);
  EXPECT_EQ(p.max_map_count, 1000u);
  EXPECT_TRUE(p.topdown);
  EXPECT_TRUE(p.cap_ipc_lock);
  EXPECT_TRUE(p.cap_sys_rawio);
  EXPECT_EQ(p.max_pkey, 0);
  EXPECT_EQ(p.rlimit_stack, uint64_t{8} << 20);
  EXPECT_EQ(p.mmap_base, 0x7ffff7ff0000u);
  EXPECT_EQ(st.start_data, 45u);
  // ADDR_COMPAT_LAYOUT or the sysctl select the legacy layout; no CapEff
  // line keeps the defaults; OSPKE allocates pkey 0.
  f.personality = 0x0200000;
  f.ospke = true;
  f.status = "Name:\tx\n";
  f.status_len = 8;
  MmParams q;
  ASSERT_EQ(MmParamsFromFacts(f, &q, nullptr), 0);
  EXPECT_FALSE(q.topdown);
  EXPECT_EQ(q.max_pkey, 1);
  EXPECT_EQ(q.cap_ipc_lock, MmParams{}.cap_ipc_lock);
  f.personality = 0;
  f.legacy_va_layout = 1;
  ASSERT_EQ(MmParamsFromFacts(f, &q, nullptr), 0);
  EXPECT_FALSE(q.topdown);
  // No stack line: mmap_base cannot be inferred.
  f.maps_len = maps.find('\n') + 1;
  EXPECT_EQ(MmParamsFromFacts(f, &q, nullptr), -ENOENT);
  f.stat_len = 5;
  EXPECT_EQ(MmParamsFromFacts(f, &q, nullptr), -EIO);
}

}  // namespace
}  // namespace vmashadow
