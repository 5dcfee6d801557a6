// program_check.h — before `vmashadow run` starts a program: find it as
// execvp(3) would and look at what the kernel will load, so that programs
// LD_PRELOAD cannot reach are refused (static binaries) or flagged (set-ID,
// 32-bit) with a clear message instead of running silently unmonitored.
//
// Tools-only code (file I/O, abseil).
#ifndef VMASHADOW_TOOLS_PROGRAM_CHECK_H_
#define VMASHADOW_TOOLS_PROGRAM_CHECK_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vmashadow {

struct CheckedProgram {
  // The file to execvp(): the program itself when it names a path, else the
  // first match in PATH. Always contains a '/', so execvp does no second search.
  std::string path;
  // Warnings to print before running ("... will run unmonitored").
  std::vector<std::string> warnings;
  // Short reasons, for the summary, why the preload may not see the program.
  std::vector<std::string> unmonitored_reasons;
};

// Resolves `program` like execvp(3): a name with a '/' is used as is, else
// each entry of `path_env` (":"-separated, an empty entry meaning ".";
// "/bin:/usr/bin" when null) is tried in turn. Then looks at the file:
//  - an ELF executable must have a PT_INTERP program header (dynamic);
//  - a "#!" script: its interpreter is looked at the same way (4 levels deep);
//  - anything else is left for execvp to decide (it runs sh on ENOEXEC);
//  - a set-user-ID/set-group-ID bit that changes the ids, file capabilities
//    (non-root), or a non-x86-64 ELF give a warning, not an error.
// Errors (the message follows "vmashadow: ", see ExitCodeForProgramError):
//  NotFound: no such program / interpreter; PermissionDenied: found but not
//  executable (a directory, no x bit, not a regular file); FailedPrecondition:
//  statically linked (itself or its interpreter).
absl::StatusOr<CheckedProgram> CheckProgram(absl::string_view program, const char* path_env);

// The launcher's exit status for a CheckProgram error, as shells use them:
// 127 not found, 126 cannot execute, 2 otherwise (a usage error).
int ExitCodeForProgramError(const absl::Status& s);

}  // namespace vmashadow

#endif  // VMASHADOW_TOOLS_PROGRAM_CHECK_H_
