// program_check.cc — finds the program `vmashadow run` is to start and looks
// at its ELF header (or its "#!" interpreter's) before anything runs. See
// program_check.h.
//
// The facts used: the kernel reads the first 256 bytes of a file to pick a
// binary format (fs/binfmt_script.c load_script() for "#!", fs/binfmt_elf.c
// load_elf_binary() for ELF); an ELF without PT_INTERP is mapped and entered
// directly, so no dynamic loader ever reads LD_PRELOAD; a set-ID file that
// changes the effective ids (or grants file capabilities) gets AT_SECURE
// (security/commoncap.c cap_bprm_creds_from_file()), and ld.so then ignores
// LD_PRELOAD entries with a '/' in them.
#include "tools/program_check.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace vmashadow {
namespace {

// How many "#!" interpreters deep we follow (the kernel allows a few more;
// beyond this we let execve decide).
constexpr int kMaxScriptDepth = 4;
// The kernel's BINPRM_BUF_SIZE: what it reads to recognise a format.
constexpr size_t kHeadBytes = 256;
// More program headers than any real executable has.
constexpr size_t kMaxPhdrBytes = 64 * 1024;

// Closes a file descriptor on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// The error for a failed stat/exec of `label`, with the shells' exit codes in
// mind: ENOENT is "not found" (127), anything else "cannot execute" (126).
absl::Status FileError(int err, absl::string_view label) {
  const std::string msg = absl::StrCat(label, ": ", strerror(err));
  if (err == ENOENT) return absl::NotFoundError(msg);
  return absl::PermissionDeniedError(msg);
}

bool ReadExact(int fd, void* buf, size_t len, off_t off) {
  size_t done = 0;
  while (done < len) {
    const ssize_t n =
        pread(fd, static_cast<char*>(buf) + done, len - done, off + static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Whether the ELF image has a PT_INTERP header. Returns false in *known when
// the header is too odd to tell (then execve decides).
template <typename Ehdr, typename Phdr>
bool HasInterp(int fd, const Ehdr& eh, bool* known) {
  *known = false;
  if (eh.e_phnum == 0 || eh.e_phnum == PN_XNUM || eh.e_phentsize != sizeof(Phdr)) return false;
  const size_t bytes = size_t{eh.e_phnum} * sizeof(Phdr);
  if (bytes > kMaxPhdrBytes) return false;
  std::vector<Phdr> ph(eh.e_phnum);
  if (!ReadExact(fd, ph.data(), bytes, static_cast<off_t>(eh.e_phoff))) return false;
  *known = true;
  for (const Phdr& p : ph) {
    if (p.p_type == PT_INTERP) return true;
  }
  return false;
}

// Looks at an ELF file whose first bytes are `head`.
absl::Status ExamineElf(int fd, absl::string_view head, absl::string_view label,
                        CheckedProgram* out) {
  if (head.size() < EI_NIDENT) return absl::OkStatus();
  const unsigned char elf_class = static_cast<unsigned char>(head[EI_CLASS]);
  bool known = false;
  bool dynamic = false;
  uint16_t type = 0;
  uint16_t machine = 0;
  if (elf_class == ELFCLASS64 && head.size() >= sizeof(Elf64_Ehdr)) {
    Elf64_Ehdr eh;
    memcpy(&eh, head.data(), sizeof(eh));
    type = eh.e_type;
    machine = eh.e_machine;
    dynamic = HasInterp<Elf64_Ehdr, Elf64_Phdr>(fd, eh, &known);
  } else if (elf_class == ELFCLASS32 && head.size() >= sizeof(Elf32_Ehdr)) {
    Elf32_Ehdr eh;
    memcpy(&eh, head.data(), sizeof(eh));
    type = eh.e_type;
    machine = eh.e_machine;
    dynamic = HasInterp<Elf32_Ehdr, Elf32_Phdr>(fd, eh, &known);
  }
  // Relocatable objects, core files and garbled headers: execve will refuse
  // them with its own error.
  if (!known || (type != ET_EXEC && type != ET_DYN)) return absl::OkStatus();
  if (!dynamic) {
    return absl::FailedPreconditionError(
        absl::StrCat(label, " is statically linked; LD_PRELOAD cannot monitor it"));
  }
  if (elf_class != ELFCLASS64 || machine != EM_X86_64) {
    out->warnings.push_back(
        absl::StrCat("warning: ", label, " is not a 64-bit x86-64 program (ELF class ", elf_class,
                     ", machine ", machine,
                     "); the dynamic loader will not load libvmashadow.so into it, so it will run "
                     "unmonitored"));
    out->unmonitored_reasons.push_back(absl::StrCat(label, " is not an x86-64 program"));
  }
  return absl::OkStatus();
}

// Warns when exec'ing `path` will set AT_SECURE (set-ID bits that change our
// ids on a mount that honours them, or file capabilities for a non-root user).
void CheckSecureExec(const std::string& path, const struct stat& st, absl::string_view label,
                     CheckedProgram* out) {
  std::string why;
  if ((st.st_mode & S_ISUID) != 0 && st.st_uid != getuid()) {
    why = absl::StrCat("set-user-ID (owner uid ", st.st_uid, ")");
  } else if ((st.st_mode & S_ISGID) != 0 && (st.st_mode & S_IXGRP) != 0 && st.st_gid != getgid()) {
    why = absl::StrCat("set-group-ID (group gid ", st.st_gid, ")");
  } else if (getuid() != 0 && getxattr(path.c_str(), "security.capability", nullptr, 0) > 0) {
    why = "given file capabilities";
  }
  if (why.empty()) return;
  struct statvfs vfs;
  if (why[0] == 's' && statvfs(path.c_str(), &vfs) == 0 && (vfs.f_flag & ST_NOSUID) != 0) return;
  out->warnings.push_back(
      absl::StrCat("warning: ", label, " is ", why,
                   "; the kernel runs it with AT_SECURE, so the dynamic loader ignores "
                   "LD_PRELOAD and it will run unmonitored"));
  out->unmonitored_reasons.push_back(absl::StrCat(label, " is ", why, " (AT_SECURE)"));
}

// Looks at the file `path` the kernel will be asked to run (`label` names it
// in messages). depth counts "#!" interpreters followed so far.
absl::Status Examine(const std::string& path, absl::string_view label, int depth,
                     CheckedProgram* out) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return FileError(errno, label);
  if (S_ISDIR(st.st_mode))
    return absl::PermissionDeniedError(absl::StrCat(label, ": Is a directory"));
  if (!S_ISREG(st.st_mode)) {
    return absl::PermissionDeniedError(
        absl::StrCat(label, ": not a regular file; it cannot be executed"));
  }
  if (access(path.c_str(), X_OK) != 0) return FileError(errno, label);

  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    out->warnings.push_back(absl::StrCat("warning: cannot read ", label, " to check it (",
                                         strerror(errno), "); running it unchecked"));
    return absl::OkStatus();
  }
  char buf[kHeadBytes];
  ssize_t n;
  do {
    n = pread(fd.get(), buf, sizeof(buf), 0);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return absl::OkStatus();  // empty: execvp runs it with sh
  const absl::string_view head(buf, static_cast<size_t>(n));

  if (head.substr(0, 4) == ELFMAG) {
    absl::Status s = ExamineElf(fd.get(), head, label, out);
    if (s.ok()) CheckSecureExec(path, st, label, out);
    return s;
  }
  if (head.substr(0, 2) == "#!") {
    if (depth >= kMaxScriptDepth) return absl::OkStatus();
    absl::string_view rest = head.substr(2);
    const size_t begin = rest.find_first_not_of(" \t");
    if (begin == absl::string_view::npos) return absl::OkStatus();
    rest = rest.substr(begin);
    const std::string interp(rest.substr(0, rest.find_first_of(" \t\n")));
    // No end to the name within the kernel's buffer: let execve judge it.
    if (interp.empty() || (interp.size() == rest.size() && head.size() == kHeadBytes)) {
      return absl::OkStatus();
    }
    return Examine(interp, absl::StrCat(label, ": interpreter ", interp), depth + 1, out);
  }
  // Neither ELF nor "#!": execvp decides (it retries with /bin/sh on ENOEXEC).
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CheckedProgram> CheckProgram(absl::string_view program, const char* path_env) {
  CheckedProgram out;
  if (program.empty()) return absl::NotFoundError("'': No such file or directory");
  if (program.find('/') != absl::string_view::npos) {
    out.path = std::string(program);
  } else {
    // execvp(3): every PATH entry in turn; a match that cannot be executed
    // is remembered (EACCES) and the search goes on.
    const absl::string_view dirs = path_env != nullptr ? path_env : "/bin:/usr/bin";
    std::string denied;
    for (absl::string_view dir : absl::StrSplit(dirs, ':')) {
      const std::string candidate = absl::StrCat(dir.empty() ? "." : dir, "/", program);
      struct stat st;
      if (stat(candidate.c_str(), &st) != 0) continue;
      if (S_ISREG(st.st_mode) && access(candidate.c_str(), X_OK) == 0) {
        out.path = candidate;
        break;
      }
      if (denied.empty()) denied = candidate;
    }
    if (out.path.empty()) {
      if (!denied.empty()) {
        return absl::PermissionDeniedError(
            absl::StrCat(program, ": Permission denied (found ", denied, ", not executable)"));
      }
      return absl::NotFoundError(absl::StrCat(program, ": command not found"));
    }
  }
  if (absl::Status s = Examine(out.path, program, 0, &out); !s.ok()) return s;
  return out;
}

int ExitCodeForProgramError(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kNotFound:
      return 127;
    case absl::StatusCode::kPermissionDenied:
      return 126;
    default:
      return 2;
  }
}

}  // namespace vmashadow
