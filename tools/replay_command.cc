// replay_command.cc — `vmashadow replay` and `vmashadow maps` (see
// trace_commands.h): replay a trace and say whether the model reproduces
// every recorded result and check, or print the model's maps after event N.
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "core/procfs/maps_text.h"
#include "tools/cli_flags.h"
#include "tools/trace_cli.h"
#include "tools/trace_commands.h"
#include "tools/trace_replay.h"

namespace vmashadow {
namespace {

constexpr CliFlag kReplayFlags[] = {
    {"kernel_profile", "kernel-profile", "NAME"},
    {"allow_truncated", "allow-truncated", ""},
    {"quiet", "quiet", ""},
    {"progress", "progress", ""},
};

constexpr CliFlag kMapsFlags[] = {
    {"at", "at", "N"},
    {"smaps", "smaps", ""},
    {"kernel_profile", "kernel-profile", "NAME"},
    {"allow_truncated", "allow-truncated", ""},
    {"progress", "progress", ""},
};

constexpr int kMaxMismatchLines = 20;

void PrintErr(const std::string& s) {
  std::fputs(s.c_str(), stderr);
  std::fflush(stderr);
}

// 3 for a corrupt or truncated trace, 2 for anything else.
int ExitFor(const absl::Status& s) {
  return absl::IsDataLoss(s) || absl::IsInvalidArgument(s) ? 3 : 2;
}

std::string Origin(const TraceHeader& h) {
  switch (h.origin) {
    case TraceOrigin::kRoot:
      return "root process";
    case TraceOrigin::kExecImage:
      return absl::StrCat("image ", h.exec_index, " after execve");
    case TraceOrigin::kForkChild:
      return absl::StrCat("fork child of pid ", h.parent_pid);
  }
  return "?";
}

}  // namespace

std::string ReplayUsage() {
  return absl::StrCat(
      "Usage: vmashadow replay [OPTIONS] TRACE\n"
      "\n"
      "Feeds a trace recorded with 'vmashadow run --trace' into the model, offline and\n"
      "deterministically, and re-checks what it recorded: every call's result against the\n"
      "recorded model result and the kernel's, every range/full check against the model's\n"
      "maps lines, every snapshot after reseeding. Prints the counts and the speed.\n"
      "\n",
      CliFlagsUsage(kReplayFlags, FlagDefaults::kHide),
      "\n"
      "Exit status: 0 when everything matched, 1 on any mismatch, 2 for bad usage or an\n"
      "unreadable file, 3 for a corrupt or truncated trace (the message names the byte\n"
      "offset).\n");
}

int ReplayCommand(const std::vector<std::string>& args) {
  int exit_status = 0;
  const std::optional<std::string> trace =
      ParseTraceCommand("replay", args, kReplayFlags, ReplayUsage, &exit_status);
  if (!trace) return exit_status;
  const std::string& path = *trace;
  ReplayOptions options;
  options.profile = absl::GetFlag(FLAGS_kernel_profile);
  const bool quiet = absl::GetFlag(FLAGS_quiet);
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::unique_ptr<Replayer>> opened = Replayer::Open(path, options);
  if (!opened.ok()) {
    PrintErr(absl::StrCat("vmashadow: ", opened.status().message(), "\n"));
    return ExitFor(opened.status());
  }
  Replayer& r = **opened;
  const auto replay_start = std::chrono::steady_clock::now();
  Progress progress("replay");
  int printed = 0;
  absl::Status error;
  for (;;) {
    absl::StatusOr<bool> more = r.Step();
    if (!more.ok()) {
      error = more.status();
      break;
    }
    if (!*more) break;
    for (const ReplayMismatch& m : r.last().mismatches) {
      if (printed++ < kMaxMismatchLines) {
        PrintErr(absl::StrFormat("vmashadow: mismatch at byte offset %u: %s\n", m.offset, m.text));
      }
    }
    if ((r.stats().records & 0xfff) == 0) progress.Update(r.offset(), r.size(), r.stats().events);
  }
  progress.Finish();
  const auto end = std::chrono::steady_clock::now();
  const double secs = std::chrono::duration<double>(end - replay_start).count();
  const double total_secs = std::chrono::duration<double>(end - start).count();
  const ReplayStats& s = r.stats();
  const TraceHeader& h = r.header();
  const bool truncated = absl::IsDataLoss(error);
  if (!error.ok()) {
    PrintErr(absl::StrCat("vmashadow: ", error.message(), "\n"));
    if (truncated && absl::GetFlag(FLAGS_allow_truncated)) {
      PrintErr("vmashadow: --allow-truncated: the complete records before it were replayed\n");
    }
  }
  if (printed > kMaxMismatchLines) {
    PrintErr(absl::StrFormat("vmashadow: ... %d more mismatches\n", printed - kMaxMismatchLines));
  }
  // A trace without its IMAGE_END record stopped early: the process was
  // killed, or the preload could not go on writing it (the run's summary
  // says why). What it holds replays; it is not the whole run.
  const bool ended_early = error.ok() && s.image_ends == 0;
  if (ended_early) {
    PrintErr(absl::StrCat("vmashadow: ", path,
                          ": the trace stops before the process's end (no image-end record: the "
                          "process was killed, or tracing stopped early); only what it holds was "
                          "replayed\n"));
  }
  std::string out;
  if (!quiet) {
    absl::StrAppendFormat(
        &out, "trace %s: pid %u (%s), kernel %s, profile %s%s, check %s\n", path, h.pid, Origin(h),
        std::string(h.kernel_release.data, h.kernel_release.len),
        std::string(h.profile.data, h.profile.len),
        options.profile.empty() ? "" : absl::StrCat(" (replayed with ", r.profile().name, ")"),
        std::string(h.check.data, h.check.len));
    std::string calls;
    for (int i = 0; i < static_cast<int>(TraceCall::kCount); ++i) {
      if (s.events_by_call[i] == 0) continue;
      absl::StrAppend(&calls, calls.empty() ? "" : ", ", TraceCallName(static_cast<TraceCall>(i)),
                      " ", Thousands(s.events_by_call[i]));
    }
    absl::StrAppendFormat(&out, "  %s records, %s events (%s)%s\n", Thousands(s.records),
                          Thousands(s.events), calls,
                          s.unmodelled != 0 ? absl::StrCat(", ", s.unmodelled, " unmodelled") : "");
    absl::StrAppendFormat(&out,
                          "  seeds %u, facts learnt %u, stack reconciles %u, checks %s range + %s "
                          "full, fork points %u\n",
                          s.seeds, s.learnt, s.reconciles, Thousands(s.range_checks),
                          Thousands(s.full_checks), s.fork_points);
    absl::StrAppendFormat(&out,
                          "  results hit %s/%s, placement hit %s/%s, errno hit %s/%s; recorded "
                          "divergences %u, unexplained %u\n",
                          Thousands(s.results_hit), Thousands(s.results),
                          Thousands(s.placement_hit), Thousands(s.placement_predicted),
                          Thousands(s.errno_hit), Thousands(s.errno_predicted),
                          s.divergences_recorded, s.unexplained_recorded);
    std::string kinds;
    for (int k = 0; k < 5; ++k) {
      if (s.mismatches[k] == 0) continue;
      absl::StrAppend(&kinds, kinds.empty() ? " (" : "; ", s.mismatches[k], " ",
                      ReplayMismatchName(static_cast<ReplayMismatch::Kind>(k)));
    }
    if (!kinds.empty()) kinds += ")";
    absl::StrAppendFormat(&out, "  mismatches %u%s\n", s.total_mismatches(), kinds);
  }
  absl::StrAppendFormat(
      &out, "replay: %s events in %.3f s (%.0f events/s, %.3f s with loading)%s\n",
      Thousands(s.events), secs, secs > 0 ? static_cast<double>(s.events) / secs : 0, total_secs,
      s.total_mismatches() != 0 || !error.ok() ? ""
      : ended_early                            ? ": INCOMPLETE (the trace stops early)"
                                               : ": OK");
  std::fputs(out.c_str(), stdout);
  std::fflush(stdout);
  if (!error.ok() && !(truncated && absl::GetFlag(FLAGS_allow_truncated))) return 3;
  return s.total_mismatches() == 0 ? 0 : 1;
}

std::string MapsUsage() {
  return absl::StrCat(
      "Usage: vmashadow maps [OPTIONS] TRACE --at N\n"
      "\n"
      "Replays TRACE up to event N and prints the model's /proc/self/maps text then (the\n"
      "state after event N, its checks and any resync they caused; N = 0: after the first\n"
      "seed). With --smaps each line is followed by its VmFlags line.\n"
      "\n",
      CliFlagsUsage(kMapsFlags, FlagDefaults::kHide));
}

int MapsCommand(const std::vector<std::string>& args) {
  int exit_status = 0;
  const std::optional<std::string> trace =
      ParseTraceCommand("maps", args, kMapsFlags, MapsUsage, &exit_status);
  if (!trace) return exit_status;
  const int64_t at = absl::GetFlag(FLAGS_at);
  if (at < 0) return CliUsageError("maps", "--at N is required (N >= 0)");
  ReplayOptions options;
  options.profile = absl::GetFlag(FLAGS_kernel_profile);
  options.verify = false;
  absl::StatusOr<std::unique_ptr<Replayer>> opened = Replayer::Open(*trace, options);
  if (!opened.ok()) {
    PrintErr(absl::StrCat("vmashadow: ", opened.status().message(), "\n"));
    return ExitFor(opened.status());
  }
  Replayer& r = **opened;
  Progress progress("maps");
  const uint64_t target = static_cast<uint64_t>(at);
  absl::Status error;
  // Apply records until `target` events are in and the next record starts
  // the next event.
  while (!(r.stats().events == target && r.AtEventBoundary())) {
    absl::StatusOr<bool> more = r.Step();
    if (!more.ok()) {
      error = more.status();
      break;
    }
    if (!*more) break;
    if ((r.stats().records & 0xfff) == 0) progress.Update(r.offset(), r.size(), r.stats().events);
  }
  progress.Finish();
  if (!error.ok()) {
    PrintErr(absl::StrCat("vmashadow: ", error.message(), "\n"));
    if (!(absl::IsDataLoss(error) && absl::GetFlag(FLAGS_allow_truncated))) return 3;
  }
  if (r.stats().events < target) {
    PrintErr(absl::StrCat("vmashadow: ", *trace, " has only ", r.stats().events, " events (--at ",
                          target, ")\n"));
    return 2;
  }
  const AddressSpace& m = r.model();
  std::string out;
  std::vector<char> buf(1 << 16);
  if (!absl::GetFlag(FLAGS_smaps)) {
    for (;;) {
      const size_t n = RenderMaps(m, buf.data(), buf.size());
      if (n < buf.size()) {
        out.assign(buf.data(), n);
        break;
      }
      buf.resize(n + 1);
    }
  } else {
    // Each maps line, then the VmFlags of its VMA ([vsyscall], last, is "ex").
    std::string maps;
    for (;;) {
      const size_t n = RenderMaps(m, buf.data(), buf.size());
      if (n < buf.size()) {
        maps.assign(buf.data(), n);
        break;
      }
      buf.resize(n + 1);
    }
    const Vma* v = m.tree().First();
    char flags[256];
    for (absl::string_view line : absl::StrSplit(maps, '\n', absl::SkipEmpty())) {
      absl::StrAppend(&out, line, "\n");
      size_t n = 0;
      if (v != nullptr) {
        n = RenderVmFlags(v->flags, flags, sizeof(flags));
        v = v->next;
      } else {
        n = RenderVmFlags(kVmExec, flags, sizeof(flags));
      }
      absl::StrAppend(&out, "VmFlags: ", absl::string_view(flags, n < sizeof(flags) ? n : 0), "\n");
    }
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace vmashadow
