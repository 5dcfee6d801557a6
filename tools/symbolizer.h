// symbolizer.h — names for code addresses recorded in a trace, offline.
//
// A trace's frames are addresses in the traced process; replay tells which
// file and file offset each falls in (the model's VMA at that moment). This
// turns (file, offset) into "function+0xoff" by reading the ELF file's
// symbol tables: .symtab when present, else .dynsym, or the separate debug
// file named by its build ID under /usr/lib/debug/.build-id. C++ names are
// demangled.
//
// Hand-written rather than abseil's Symbolize: absl::Symbolize resolves
// addresses of the calling process only (it reads /proc/self/maps and the
// objects loaded there), and its ELF reader is internal, so it cannot name
// an address in another process's libraries after the fact.
//
// Tools-only code.
#ifndef VMASHADOW_TOOLS_SYMBOLIZER_H_
#define VMASHADOW_TOOLS_SYMBOLIZER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace vmashadow {

class Symbolizer {
 public:
  Symbolizer();
  ~Symbolizer();

  // The function containing `file_offset` of the ELF file at `path`, as
  // "name+0xoff"; "" when the file cannot be read or no symbol covers it.
  std::string Symbolize(const std::string& path, uint64_t file_offset);

  // "libfoo.so.1!name+0x12", or "libfoo.so.1+0x1234" without a symbol.
  std::string Describe(const std::string& path, uint64_t file_offset);

  struct Elf;  // one loaded file (symbolizer.cc)

 private:
  const Elf* Load(const std::string& path);
  std::map<std::string, std::unique_ptr<Elf>> cache_;
};

// The demangled form of a C++ symbol name (or the name itself).
std::string Demangle(const std::string& name);

}  // namespace vmashadow

#endif  // VMASHADOW_TOOLS_SYMBOLIZER_H_
