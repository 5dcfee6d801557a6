// symbolizer.cc — ELF symbol lookup for trace frames (see symbolizer.h).
// Reads the whole file into memory and validates every offset against its
// size before use: a truncated or odd file gives no symbol, never a crash.
#include "tools/symbolizer.h"

#include <cxxabi.h>
#include <elf.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace vmashadow {

struct Symbolizer::Elf {
  struct Load {
    uint64_t offset;
    uint64_t vaddr;
    uint64_t filesz;
  };
  struct Sym {
    uint64_t addr;
    uint64_t size;
    std::string name;
  };
  std::vector<Load> loads;
  std::vector<Sym> syms;  // sorted by addr
};

namespace {

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

template <typename T>
bool At(const std::string& f, uint64_t off, T* out) {
  if (off > f.size() || f.size() - off < sizeof(T)) return false;
  memcpy(out, f.data() + off, sizeof(T));
  return true;
}

bool ValidElf(const std::string& f, Elf64_Ehdr* eh) {
  return At(f, 0, eh) && memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 &&
         eh->e_ident[EI_CLASS] == ELFCLASS64 && eh->e_ident[EI_DATA] == ELFDATA2LSB;
}

// The GNU build ID in hex ("" when none), from the section headers' notes.
std::string BuildId(const std::string& f, const Elf64_Ehdr& eh) {
  for (uint32_t i = 0; i < eh.e_shnum; ++i) {
    Elf64_Shdr sh;
    if (!At(f, eh.e_shoff + uint64_t{i} * eh.e_shentsize, &sh) || sh.sh_type != SHT_NOTE) continue;
    uint64_t p = sh.sh_offset;
    const uint64_t end = sh.sh_offset + sh.sh_size;
    while (p + sizeof(Elf64_Nhdr) <= end) {
      Elf64_Nhdr nh;
      if (!At(f, p, &nh)) break;
      const uint64_t name_at = p + sizeof(nh);
      const uint64_t desc_at = name_at + ((nh.n_namesz + 3) & ~3u);
      if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 && desc_at + nh.n_descsz <= f.size() &&
          memcmp(f.data() + name_at, "GNU", 4) == 0) {
        std::string hex;
        for (uint32_t k = 0; k < nh.n_descsz; ++k) {
          absl::StrAppendFormat(&hex, "%02x", static_cast<unsigned char>(f[desc_at + k]));
        }
        return hex;
      }
      p = desc_at + ((nh.n_descsz + 3) & ~3u);
    }
  }
  return "";
}

// Function symbols of one table (SHT_SYMTAB or SHT_DYNSYM) into *out.
void ReadSymbols(const std::string& f, const Elf64_Ehdr& eh, uint32_t type,
                 std::vector<Symbolizer::Elf::Sym>* out) {
  for (uint32_t i = 0; i < eh.e_shnum; ++i) {
    Elf64_Shdr sh;
    if (!At(f, eh.e_shoff + uint64_t{i} * eh.e_shentsize, &sh) || sh.sh_type != type) continue;
    Elf64_Shdr strtab;
    if (!At(f, eh.e_shoff + uint64_t{sh.sh_link} * eh.e_shentsize, &strtab)) continue;
    if (sh.sh_entsize != sizeof(Elf64_Sym) || sh.sh_offset > f.size()) continue;
    const uint64_t n = std::min<uint64_t>(sh.sh_size, f.size() - sh.sh_offset) / sizeof(Elf64_Sym);
    for (uint64_t k = 0; k < n; ++k) {
      Elf64_Sym s;
      if (!At(f, sh.sh_offset + k * sizeof(Elf64_Sym), &s)) break;
      const int t = ELF64_ST_TYPE(s.st_info);
      if ((t != STT_FUNC && t != STT_GNU_IFUNC) || s.st_value == 0 || s.st_shndx == SHN_UNDEF) {
        continue;
      }
      const uint64_t name_at = strtab.sh_offset + s.st_name;
      if (name_at >= f.size()) continue;
      const char* name = f.data() + name_at;
      const size_t max = f.size() - name_at;
      out->push_back({s.st_value, s.st_size, std::string(name, strnlen(name, max))});
    }
  }
}

}  // namespace

Symbolizer::Symbolizer() = default;
Symbolizer::~Symbolizer() = default;

const Symbolizer::Elf* Symbolizer::Load(const std::string& path) {
  auto it = cache_.find(path);
  if (it != cache_.end()) return it->second.get();
  std::unique_ptr<Elf> elf;
  std::string f;
  Elf64_Ehdr eh;
  if (ReadFile(path, &f) && ValidElf(f, &eh)) {
    elf = std::make_unique<Elf>();
    for (uint32_t i = 0; i < eh.e_phnum; ++i) {
      Elf64_Phdr ph;
      if (!At(f, eh.e_phoff + uint64_t{i} * eh.e_phentsize, &ph)) break;
      if (ph.p_type == PT_LOAD) elf->loads.push_back({ph.p_offset, ph.p_vaddr, ph.p_filesz});
    }
    ReadSymbols(f, eh, SHT_SYMTAB, &elf->syms);
    if (elf->syms.empty()) {
      // A stripped file: its debug file first, else its dynamic symbols.
      const std::string id = BuildId(f, eh);
      std::string dbg;
      Elf64_Ehdr deh;
      if (id.size() > 2 &&
          ReadFile(absl::StrCat("/usr/lib/debug/.build-id/", id.substr(0, 2), "/", id.substr(2),
                                ".debug"),
                   &dbg) &&
          ValidElf(dbg, &deh)) {
        ReadSymbols(dbg, deh, SHT_SYMTAB, &elf->syms);
      }
      if (elf->syms.empty()) ReadSymbols(f, eh, SHT_DYNSYM, &elf->syms);
    }
    std::sort(elf->syms.begin(), elf->syms.end(),
              [](const Elf::Sym& a, const Elf::Sym& b) { return a.addr < b.addr; });
  }
  const Elf* out = elf.get();
  cache_[path] = std::move(elf);
  return out;
}

std::string Symbolizer::Symbolize(const std::string& path, uint64_t file_offset) {
  const Elf* elf = Load(path);
  if (elf == nullptr) return "";
  uint64_t vaddr = 0;
  bool found = false;
  for (const Elf::Load& l : elf->loads) {
    if (file_offset >= l.offset && file_offset < l.offset + l.filesz) {
      vaddr = file_offset - l.offset + l.vaddr;
      found = true;
      break;
    }
  }
  if (!found) return "";
  auto it = std::upper_bound(elf->syms.begin(), elf->syms.end(), vaddr,
                             [](uint64_t v, const Elf::Sym& s) { return v < s.addr; });
  // The closest symbols at or below vaddr (several may share an address):
  // one whose size covers vaddr.
  while (it != elf->syms.begin()) {
    --it;
    if (vaddr < it->addr + std::max<uint64_t>(it->size, 1)) {
      return absl::StrFormat("%s+%#x", Demangle(it->name), vaddr - it->addr);
    }
    if (it != elf->syms.begin() && std::prev(it)->addr != it->addr) break;
  }
  return "";
}

std::string Symbolizer::Describe(const std::string& path, uint64_t file_offset) {
  const size_t slash = path.rfind('/');
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  const std::string sym = Symbolize(path, file_offset);
  if (!sym.empty()) return absl::StrCat(base, "!", sym);
  return absl::StrFormat("%s+%#x", base, file_offset);
}

std::string Demangle(const std::string& name) {
  if (name.size() < 2 || name[0] != '_' || name[1] != 'Z') return name;
  int status = 0;
  char* d = abi::__cxa_demangle(name.c_str(), nullptr, nullptr, &status);
  if (d == nullptr || status != 0) {
    free(d);
    return name;
  }
  std::string out = d;
  free(d);
  return out;
}

}  // namespace vmashadow
