// report_command.cc — `vmashadow report` (see trace_commands.h): the
// analysis of tools/trace_analysis.h as text (sections with histograms and
// top-N tables) or, with --json, as one JSON object with the same sections.
#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tools/cli_flags.h"
#include "tools/trace_analysis.h"
#include "tools/trace_cli.h"
#include "tools/trace_commands.h"

namespace vmashadow {
namespace {

constexpr int kRefusals = static_cast<int>(mm::MergeRefusal::kCount);

constexpr CliFlag kReportFlags[] = {
    {"json", "json", ""},
    {"top", "top", "N"},
    {"output", "output", "FILE", 'o'},
    {"kernel_profile", "kernel-profile", "NAME"},
    {"progress", "progress", ""},
};

std::string Pct(uint64_t hit, uint64_t total) {
  if (total == 0) return "n/a";
  return absl::StrFormat("%.1f%%", 100.0 * static_cast<double>(hit) / static_cast<double>(total));
}

// A JSON string literal.
std::string J(absl::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7f) {
      absl::StrAppendFormat(&out, "\\u%04x", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// Text histogram lines: "  [lo, hi)  count  ####".
void TextHistogram(std::string* out, const Histogram& h, bool bytes) {
  uint64_t max = 0;
  int first = -1, last = -1;
  for (int i = 0; i < 64; ++i) {
    if (h.buckets[i] == 0) continue;
    max = std::max(max, h.buckets[i]);
    if (first < 0) first = i;
    last = i;
  }
  if (first < 0) {
    absl::StrAppend(out, "    (none)\n");
    return;
  }
  for (int i = first; i <= last; ++i) {
    const uint64_t lo = i == 0 ? 0 : uint64_t{1} << i;
    const std::string label = bytes ? absl::StrCat(">= ", Bytes(lo)) : absl::StrCat(">= ", lo);
    const int bar = static_cast<int>((h.buckets[i] * 40 + max - 1) / (max == 0 ? 1 : max));
    absl::StrAppendFormat(out, "    %-14s %10s  %s\n", label, Thousands(h.buckets[i]),
                          std::string(static_cast<size_t>(bar), '#'));
  }
}

std::string JsonHistogram(const Histogram& h) {
  std::string out = "[";
  bool first = true;
  for (int i = 0; i < 64; ++i) {
    if (h.buckets[i] == 0) continue;
    absl::StrAppendFormat(&out, "%s{\"ge\":%u,\"lt\":%u,\"count\":%u}", first ? "" : ",",
                          i == 0 ? 0 : uint64_t{1} << i, i == 63 ? ~uint64_t{0} : uint64_t{2} << i,
                          h.buckets[i]);
    first = false;
  }
  return out + "]";
}

// The VMA count over time as one line of ASCII (low to high: " .:-=+*#%@").
std::string Sparkline(const TraceAnalysis& a, int width) {
  if (a.series.empty()) return "";
  const char kLevels[] = " .:-=+*#%@";
  uint64_t lo = ~uint64_t{0}, hi = 0;
  for (const auto& p : a.series) {
    lo = std::min(lo, p.count);
    hi = std::max(hi, p.count);
  }
  std::string out;
  const uint64_t last_event = a.series.back().event;
  size_t k = 0;
  for (int c = 0; c < width; ++c) {
    const uint64_t until = (last_event * static_cast<uint64_t>(c + 1)) / width;
    uint64_t v = 0;
    bool any = false;
    while (k < a.series.size() && a.series[k].event <= until) {
      v = std::max(v, a.series[k].count);
      any = true;
      ++k;
    }
    if (!any) v = k > 0 ? a.series[k - 1].count : lo;
    const int level = hi == lo ? 9 : static_cast<int>(((v - lo) * 9) / (hi - lo));
    out += kLevels[level];
  }
  return out;
}

}  // namespace

std::string TextReport(const TraceAnalysis& a, size_t top) {
  const ReplayStats& s = a.stats;
  std::string o;
  absl::StrAppendFormat(&o, "vmashadow report: %s\n", a.path);
  absl::StrAppendFormat(&o, "  process %u: %s\n", a.header.pid, a.argv);
  absl::StrAppendFormat(&o, "  kernel %s, profile %s, check %s; %s events in %s (%u threads)\n",
                        a.kernel_release, a.profile, a.check, Thousands(s.events),
                        Duration(a.last_time_ns - a.first_time_ns), a.threads);
  if (!a.error.empty()) absl::StrAppendFormat(&o, "  warning: %s\n", a.error);

  absl::StrAppend(&o, "\nVMA count over time\n");
  absl::StrAppendFormat(&o, "  start %s, end %s, peak %s at event %s (+%s)\n",
                        Thousands(a.start_count), Thousands(a.end_count), Thousands(a.peak_count),
                        Thousands(a.peak_event), Duration(a.peak_time_ns));
  absl::StrAppendFormat(&o, "  |%s|\n", Sparkline(a, 64));

  absl::StrAppendFormat(&o, "\nMappings: %s made by mmap, %s ended, %s alive at the end\n",
                        Thousands(a.mappings), Thousands(a.mappings_ended),
                        Thousands(a.mappings - std::min(a.mappings, a.mappings_ended)));
  absl::StrAppend(&o, "  sizes\n");
  TextHistogram(&o, a.mapping_sizes, true);
  absl::StrAppend(&o, "  lifetimes (events from mmap to the unmap of the last page)\n");
  TextHistogram(&o, a.lifetimes_events, false);
  absl::StrAppend(&o, "  lifetimes (ns)\n");
  TextHistogram(&o, a.lifetimes_ns, false);

  absl::StrAppendFormat(&o, "\nChurn per call site (top %u of %u; the first frame outside libc)\n",
                        std::min(top, a.sites.size()), a.sites.size());
  absl::StrAppendFormat(&o, "  %8s %7s %7s %8s %7s %10s %10s  %s\n", "calls", "mmap", "munmap",
                        "mprotect", "other", "mapped", "unmapped", "site");
  for (size_t i = 0; i < a.sites.size() && i < top; ++i) {
    const CallSite& c = a.sites[i];
    const uint64_t mm = c.by_call[static_cast<int>(TraceCall::kMmap)];
    const uint64_t mu = c.by_call[static_cast<int>(TraceCall::kMunmap)];
    const uint64_t mp = c.by_call[static_cast<int>(TraceCall::kMprotect)] +
                        c.by_call[static_cast<int>(TraceCall::kPkeyMprotect)];
    absl::StrAppendFormat(
        &o, "  %8s %7s %7s %8s %7s %10s %10s  %s%s\n", Thousands(c.calls), Thousands(mm),
        Thousands(mu), Thousands(mp), Thousands(c.calls - mm - mu - mp), Bytes(c.bytes_mapped),
        Bytes(c.bytes_unmapped), c.name, c.via.empty() ? "" : absl::StrCat("  (via ", c.via, ")"));
  }

  absl::StrAppendFormat(&o, "\nAdjacent VMAs that did not merge (final layout: %u pairs)\n",
                        a.unmerged.size());
  for (int i = 0; i < kRefusals; ++i) {
    const int r = (i + 1) % kRefusals;  // the refusals first, "mergeable now" last
    if (a.unmerged_by_reason[r] == 0) continue;
    absl::StrAppendFormat(&o, "  %5u  %s\n", a.unmerged_by_reason[r],
                          mm::MergeRefusalName(static_cast<mm::MergeRefusal>(r)));
    int shown = 0;
    for (const MergePair& p : a.unmerged) {
      if (static_cast<int>(p.reason) != r || shown >= 2) continue;
      ++shown;
      absl::StrAppendFormat(&o, "         %s\n         %s\n", p.prev_line, p.next_line);
      if (!p.detail.empty()) absl::StrAppendFormat(&o, "         (%s)\n", p.detail);
    }
  }

  absl::StrAppendFormat(&o, "\nFragmentation (final layout: %s mapped in %u VMAs, %u free gaps)\n",
                        Bytes(a.mapped_bytes), a.end_count, a.gap_count);
  absl::StrAppendFormat(&o, "  largest gap %s at %#x; largest hole in the mmap area %s",
                        Bytes(a.largest_gap), a.largest_gap_start, Bytes(a.largest_gap_below_base));
  if (a.largest_gap_below_base != 0) {
    absl::StrAppendFormat(&o, " at %#x", a.largest_gap_below_base_start);
  }
  absl::StrAppend(&o, "\n  free-gap sizes\n");
  TextHistogram(&o, a.gaps, true);

  absl::StrAppend(&o, "\nbrk vs mmap\n");
  absl::StrAppendFormat(&o,
                        "  brk: %s calls (%s grew the heap by %s, %s shrank it by %s); heap peak "
                        "%s, at the end %s\n",
                        Thousands(a.brk_calls), Thousands(a.brk_grow), Bytes(a.brk_grown_bytes),
                        Thousands(a.brk_shrink), Bytes(a.brk_shrunk_bytes), Bytes(a.heap_peak),
                        Bytes(a.heap_end));
  absl::StrAppendFormat(&o,
                        "  mmap: %s anonymous (%s), %s file-backed (%s), %s shared; munmap: %s "
                        "(%s); mremap %s, mprotect %s, madvise %s, mlock* %s, mseal %s\n",
                        Thousands(a.anon_maps), Bytes(a.anon_bytes), Thousands(a.file_maps),
                        Bytes(a.file_bytes), Thousands(a.shared_maps), Thousands(a.unmaps),
                        Bytes(a.unmap_bytes), Thousands(a.remaps), Thousands(a.protects),
                        Thousands(a.advises), Thousands(a.locks), Thousands(a.seals));

  absl::StrAppend(&o, "\nPrediction accuracy (the model replayed against the kernel's results)\n");
  absl::StrAppendFormat(&o, "  results %s/%s (%s), placements %s/%s (%s), errnos %s/%s (%s)\n",
                        Thousands(s.results_hit), Thousands(s.results),
                        Pct(s.results_hit, s.results), Thousands(s.placement_hit),
                        Thousands(s.placement_predicted),
                        Pct(s.placement_hit, s.placement_predicted), Thousands(s.errno_hit),
                        Thousands(s.errno_predicted), Pct(s.errno_hit, s.errno_predicted));
  absl::StrAppendFormat(&o,
                        "  checks %s range + %s full; divergences recorded %u, unexplained %u; "
                        "replay mismatches %u\n",
                        Thousands(s.range_checks), Thousands(s.full_checks), s.divergences_recorded,
                        s.unexplained_recorded, s.total_mismatches());
  return o;
}

std::string JsonReport(const TraceAnalysis& a, size_t top) {
  const ReplayStats& s = a.stats;
  std::string o = "{";
  absl::StrAppendFormat(&o, "\"trace\":%s,\"pid\":%u,\"argv\":%s,\"kernel\":%s,\"profile\":%s,",
                        J(a.path), a.header.pid, J(a.argv), J(a.kernel_release), J(a.profile));
  absl::StrAppendFormat(&o, "\"check\":%s,\"events\":%u,\"threads\":%u,\"duration_ns\":%u,",
                        J(a.check), s.events, a.threads, a.last_time_ns - a.first_time_ns);
  absl::StrAppendFormat(&o, "\"error\":%s,", a.error.empty() ? "null" : J(a.error));
  o += "\"events_by_call\":{";
  for (int i = 0; i < static_cast<int>(TraceCall::kCount); ++i) {
    absl::StrAppendFormat(&o, "%s%s:%u", i ? "," : "", J(TraceCallName(static_cast<TraceCall>(i))),
                          s.events_by_call[i]);
  }
  o += "},";
  absl::StrAppendFormat(&o,
                        "\"vma_count\":{\"start\":%u,\"end\":%u,\"peak\":%u,\"peak_event\":%u,"
                        "\"peak_time_ns\":%u,\"series\":[",
                        a.start_count, a.end_count, a.peak_count, a.peak_event, a.peak_time_ns);
  for (size_t i = 0; i < a.series.size(); ++i) {
    absl::StrAppendFormat(&o, "%s[%u,%u,%u]", i ? "," : "", a.series[i].event, a.series[i].time_ns,
                          a.series[i].count);
  }
  o += "]},";
  absl::StrAppendFormat(&o,
                        "\"mappings\":{\"made\":%u,\"ended\":%u,\"alive_at_end\":%u,\"sizes\":%s,"
                        "\"lifetimes_events\":%s,\"lifetimes_ns\":%s},",
                        a.mappings, a.mappings_ended,
                        a.mappings - std::min(a.mappings, a.mappings_ended),
                        JsonHistogram(a.mapping_sizes), JsonHistogram(a.lifetimes_events),
                        JsonHistogram(a.lifetimes_ns));
  o += "\"call_sites\":[";
  for (size_t i = 0; i < a.sites.size() && i < top; ++i) {
    const CallSite& c = a.sites[i];
    absl::StrAppendFormat(&o,
                          "%s{\"site\":%s,\"file\":%s,\"file_offset\":%u,\"via\":%s,\"calls\":%u,"
                          "\"bytes_mapped\":%u,\"bytes_unmapped\":%u,\"by_call\":{",
                          i ? "," : "", J(c.name), J(c.path), c.file_offset,
                          c.via.empty() ? "null" : J(c.via), c.calls, c.bytes_mapped,
                          c.bytes_unmapped);
    bool first = true;
    for (int k = 0; k < static_cast<int>(TraceCall::kCount); ++k) {
      if (c.by_call[k] == 0) continue;
      absl::StrAppendFormat(&o, "%s%s:%u", first ? "" : ",",
                            J(TraceCallName(static_cast<TraceCall>(k))), c.by_call[k]);
      first = false;
    }
    o += "}}";
  }
  o += "],\"unmerged\":{\"pairs\":";
  absl::StrAppend(&o, a.unmerged.size(), ",\"by_reason\":{");
  bool first = true;
  for (int i = 0; i < kRefusals; ++i) {
    const int r = (i + 1) % kRefusals;
    if (a.unmerged_by_reason[r] == 0) continue;
    absl::StrAppendFormat(&o, "%s%s:%u", first ? "" : ",",
                          J(mm::MergeRefusalName(static_cast<mm::MergeRefusal>(r))),
                          a.unmerged_by_reason[r]);
    first = false;
  }
  o += "},\"list\":[";
  for (size_t i = 0; i < a.unmerged.size(); ++i) {
    const MergePair& p = a.unmerged[i];
    absl::StrAppendFormat(&o,
                          "%s{\"reason\":%s,\"detail\":%s,\"first\":[%u,%u],\"second\":[%u,%u],"
                          "\"first_line\":%s,\"second_line\":%s}",
                          i ? "," : "", J(mm::MergeRefusalName(p.reason)), J(p.detail),
                          p.prev_start, p.prev_end, p.next_start, p.next_end, J(p.prev_line),
                          J(p.next_line));
  }
  o += "]},";
  absl::StrAppendFormat(&o,
                        "\"fragmentation\":{\"vmas\":%u,\"mapped_bytes\":%u,\"gaps\":%u,"
                        "\"largest_gap\":%u,\"largest_gap_start\":%u,\"largest_mmap_hole\":%u,"
                        "\"largest_mmap_hole_start\":%u,\"gap_sizes\":%s},",
                        a.end_count, a.mapped_bytes, a.gap_count, a.largest_gap,
                        a.largest_gap_start, a.largest_gap_below_base,
                        a.largest_gap_below_base_start, JsonHistogram(a.gaps));
  absl::StrAppendFormat(&o,
                        "\"brk_vs_mmap\":{\"brk_calls\":%u,\"brk_grow\":%u,\"brk_shrink\":%u,"
                        "\"brk_grown_bytes\":%u,\"brk_shrunk_bytes\":%u,\"heap_peak\":%u,"
                        "\"heap_end\":%u,\"mmap_anon\":%u,\"mmap_anon_bytes\":%u,\"mmap_file\":%u,"
                        "\"mmap_file_bytes\":%u,\"mmap_shared\":%u,\"munmap\":%u,"
                        "\"munmap_bytes\":%u,\"mremap\":%u,\"mprotect\":%u,\"madvise\":%u,"
                        "\"mlock\":%u,\"mseal\":%u},",
                        a.brk_calls, a.brk_grow, a.brk_shrink, a.brk_grown_bytes,
                        a.brk_shrunk_bytes, a.heap_peak, a.heap_end, a.anon_maps, a.anon_bytes,
                        a.file_maps, a.file_bytes, a.shared_maps, a.unmaps, a.unmap_bytes, a.remaps,
                        a.protects, a.advises, a.locks, a.seals);
  absl::StrAppendFormat(
      &o,
      "\"accuracy\":{\"results\":%u,\"results_hit\":%u,\"placement_predicted\":%u,"
      "\"placement_hit\":%u,\"errno_predicted\":%u,\"errno_hit\":%u,"
      "\"range_checks\":%u,\"full_checks\":%u,\"divergences_recorded\":%u,"
      "\"unexplained_recorded\":%u,\"replay_mismatches\":%u}",
      s.results, s.results_hit, s.placement_predicted, s.placement_hit, s.errno_predicted,
      s.errno_hit, s.range_checks, s.full_checks, s.divergences_recorded, s.unexplained_recorded,
      s.total_mismatches());
  return o + "}\n";
}

std::string ReportUsage() {
  return absl::StrCat(
      "Usage: vmashadow report [OPTIONS] TRACE\n"
      "\n"
      "What a trace says about the program's mapping patterns: the VMA count over time\n"
      "(peak and when), mapping sizes and lifetimes, churn per call site (symbolised),\n"
      "adjacent VMAs that did not merge and why, free-gap fragmentation, brk against mmap,\n"
      "and how well the model predicted results, placements and errnos.\n"
      "\n",
      CliFlagsUsage(kReportFlags, FlagDefaults::kHide));
}

int ReportCommand(const std::vector<std::string>& args) {
  int exit_status = 0;
  const std::optional<std::string> trace =
      ParseTraceCommand("report", args, kReportFlags, ReportUsage, &exit_status);
  if (!trace) return exit_status;
  const int64_t top = absl::GetFlag(FLAGS_top);
  if (top < 0) return CliUsageError("report", "--top must be >= 0");
  ReplayOptions options;
  options.profile = absl::GetFlag(FLAGS_kernel_profile);
  Progress progress("report");
  absl::StatusOr<TraceAnalysis> a = AnalyzeTrace(*trace, options, [&progress](const Replayer& r) {
    if ((r.stats().events & 0x3ff) == 0) {
      progress.Update(r.offset(), r.size(), r.stats().events);
    }
  });
  progress.Finish();
  if (!a.ok()) {
    std::fprintf(stderr, "vmashadow: %s\n", std::string(a.status().message()).c_str());
    return absl::IsInvalidArgument(a.status()) ? 3 : 2;
  }
  if (!a->error.empty()) std::fprintf(stderr, "vmashadow: warning: %s\n", a->error.c_str());
  const std::string text = absl::GetFlag(FLAGS_json) ? JsonReport(*a, static_cast<size_t>(top))
                                                     : TextReport(*a, static_cast<size_t>(top));
  const std::string out_path = absl::GetFlag(FLAGS_output);
  if (out_path.empty()) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
  }
  if (const absl::Status w = WriteOutputFile(out_path, text); !w.ok()) {
    std::fprintf(stderr, "vmashadow: %s\n", std::string(w.message()).c_str());
    return 2;
  }
  return 0;
}

}  // namespace vmashadow
