// export_command.cc — `vmashadow export --format=perfetto` (see
// trace_commands.h): the trace as Chrome trace-event JSON, which the Perfetto
// UI (and chrome://tracing) open: one process, one track per thread with a
// slice per call (its duration, arguments and results), a "VMAs" counter
// track, and instant events for resyncs, divergences and forks.
#include <cstdio>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/abi/linux_abi.h"
#include "tools/cli_flags.h"
#include "tools/trace_cli.h"
#include "tools/trace_commands.h"
#include "tools/trace_replay.h"

namespace vmashadow {
namespace {

constexpr CliFlag kExportFlags[] = {
    {"format", "format", "perfetto"},
    {"output", "output", "FILE", 'o'},
    {"kernel_profile", "kernel-profile", "NAME"},
    {"progress", "progress", ""},
};

std::string J(absl::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      absl::StrAppendFormat(&out, "\\u%04x", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string Ret(int64_t v) {
  if (abi::IsErrorReturn(v)) return absl::StrCat(v);
  return absl::StrFormat("%#x", static_cast<uint64_t>(v));
}

// Microseconds since the trace started, as Chrome's JSON wants them.
std::string Us(uint64_t ns) { return absl::StrFormat("%.3f", static_cast<double>(ns) / 1000.0); }

absl::Status Export(const std::string& path, const ReplayOptions& options, std::string* out,
                    Progress* progress) {
  absl::StatusOr<std::unique_ptr<Replayer>> opened = Replayer::Open(path, options);
  if (!opened.ok()) return opened.status();
  Replayer& r = **opened;
  const TraceHeader& h = r.header();
  const uint64_t pid = h.pid;
  const uint64_t t0 = h.monotonic_ns;
  std::string argv(h.argv.data, h.argv.len);
  for (char& c : argv) {
    if (c == '\0') c = ' ';
  }
  std::string& o = *out;
  o = "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n";
  absl::StrAppendFormat(
      &o, "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%u,\"args\":{\"name\":%s}}", pid,
      J(absl::StrCat("pid ", pid, " ", argv)));
  std::set<uint64_t> tids;
  uint64_t last_count = ~uint64_t{0};
  uint64_t last_time = 0;
  absl::Status error;
  for (;;) {
    absl::StatusOr<bool> more = r.Step();
    if (!more.ok()) {
      error = more.status();
      break;
    }
    if (!*more) break;
    const TraceRecord& rec = *r.last().record;
    switch (rec.kind) {
      case TraceRecordKind::kEvent: {
        const TraceEvent& e = rec.event;
        const uint64_t end = e.time_ns >= t0 ? e.time_ns - t0 : 0;
        const uint64_t start = end >= e.duration_ns ? end - e.duration_ns : 0;
        last_time = end;
        if (tids.insert(e.tid).second) {
          absl::StrAppendFormat(&o,
                                ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%u,\"tid\":%u,"
                                "\"args\":{\"name\":%s}}",
                                pid, e.tid, J(absl::StrCat("tid ", e.tid)));
        }
        std::string args;
        int nargs = 6;
        while (nargs > 1 && e.args[nargs - 1] == 0) --nargs;
        for (int i = 0; i < nargs; ++i)
          absl::StrAppendFormat(&args, "%s%#x", i ? ", " : "", e.args[i]);
        absl::StrAppendFormat(
            &o,
            ",\n{\"name\":%s,\"cat\":\"mm\",\"ph\":\"X\",\"ts\":%s,\"dur\":%s,\"pid\":%u,\"tid\":%"
            "u,"
            "\"args\":{\"event\":%u,\"args\":%s,\"kernel\":%s,\"model\":%s,\"trapped\":%s%s}}",
            J(TraceCallName(e.call)), Us(start), Us(end - start), pid, e.tid, r.last().event_index,
            J(args), J(Ret(e.kernel_ret)), J(Ret(r.last().outcome.ret)),
            (e.flags & kEventTrapped) ? "true" : "false",
            (e.flags & kEventUnmodelled) ? ",\"unmodelled\":true" : "");
        const uint64_t count = r.model().map_count();
        if (count != last_count) {
          absl::StrAppendFormat(&o,
                                ",\n{\"name\":\"VMAs\",\"ph\":\"C\",\"ts\":%s,\"pid\":%u,"
                                "\"args\":{\"vmas\":%u}}",
                                Us(end), pid, count);
          last_count = count;
        }
        if ((r.stats().events & 0x3ff) == 0)
          progress->Update(r.offset(), r.size(), r.stats().events);
        break;
      }
      case TraceRecordKind::kSeed:
        if (rec.seed.reason != TraceSeedReason::kInit) {
          absl::StrAppendFormat(&o,
                                ",\n{\"name\":\"resync\",\"ph\":\"i\",\"s\":\"p\",\"ts\":%s,"
                                "\"pid\":%u,\"tid\":0}",
                                Us(last_time), pid);
        }
        break;
      case TraceRecordKind::kNote:
        absl::StrAppendFormat(
            &o,
            ",\n{\"name\":%s,\"ph\":\"i\",\"s\":\"p\",\"ts\":%s,\"pid\":%u,"
            "\"tid\":0,\"args\":{\"what\":%s,\"model\":%s,\"kernel\":%s}}",
            J(rec.note.kind == TraceNoteKind::kDivergence ? "divergence" : "unexplained"),
            Us(last_time), pid, J(absl::string_view(rec.note.what.data, rec.note.what.len)),
            J(absl::string_view(rec.note.model.data, rec.note.model.len)),
            J(absl::string_view(rec.note.kernel.data, rec.note.kernel.len)));
        break;
      case TraceRecordKind::kForkPoint: {
        const uint64_t t = rec.fork_point.time_ns >= t0 ? rec.fork_point.time_ns - t0 : 0;
        absl::StrAppendFormat(&o,
                              ",\n{\"name\":\"fork\",\"ph\":\"i\",\"s\":\"t\",\"ts\":%s,\"pid\":%u,"
                              "\"tid\":%u}",
                              Us(t), pid, rec.fork_point.tid);
        break;
      }
      default:
        break;
    }
  }
  o += "\n]}\n";
  if (!error.ok()) {
    std::fprintf(stderr, "vmashadow: warning: %s\n", std::string(error.message()).c_str());
  }
  return absl::OkStatus();
}

}  // namespace

std::string ExportUsage() {
  return absl::StrCat(
      "Usage: vmashadow export [OPTIONS] TRACE --format=perfetto [-o OUT.json]\n"
      "\n"
      "Writes the trace as Chrome trace-event JSON for the Perfetto UI (ui.perfetto.dev,\n"
      "'Open trace file') or chrome://tracing: a slice per call on its thread's track, a\n"
      "\"VMAs\" counter track, instant events for resyncs, divergences and forks.\n"
      "\n",
      CliFlagsUsage(kExportFlags, FlagDefaults::kHide));
}

int ExportCommand(const std::vector<std::string>& args) {
  int exit_status = 0;
  const std::optional<std::string> trace =
      ParseTraceCommand("export", args, kExportFlags, ExportUsage, &exit_status);
  if (!trace) return exit_status;
  if (absl::GetFlag(FLAGS_format) != "perfetto") {
    return CliUsageError("export", absl::StrCat("unknown --format '", absl::GetFlag(FLAGS_format),
                                                "' (known: perfetto)"));
  }
  ReplayOptions options;
  options.profile = absl::GetFlag(FLAGS_kernel_profile);
  options.verify = false;
  std::string json;
  Progress progress("export");
  const absl::Status s = Export(*trace, options, &json, &progress);
  progress.Finish();
  if (!s.ok()) {
    std::fprintf(stderr, "vmashadow: %s\n", std::string(s.message()).c_str());
    return absl::IsInvalidArgument(s) ? 3 : 2;
  }
  const std::string out = absl::GetFlag(FLAGS_output);
  if (out.empty() || out == "-") {
    std::fwrite(json.data(), 1, json.size(), stdout);
    return 0;
  }
  if (const absl::Status w = WriteOutputFile(out, json); !w.ok()) {
    std::fprintf(stderr, "vmashadow: %s\n", std::string(w.message()).c_str());
    return 2;
  }
  return 0;
}

}  // namespace vmashadow
