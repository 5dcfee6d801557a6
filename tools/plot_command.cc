// plot_command.cc — `vmashadow plot` (see trace_commands.h): a picture of the
// address space over time as SVG (or an HTML page around it).
//
// Layout: the VMA count over time on top; below it the timeline, with
// events (in columns) left to right and addresses (high at the top) down,
// each cell coloured by the kind of mapping that covered it during that
// column; on the right the final layout on the same address axis, labelled.
//
// The address axis is compressed so that a 4 KiB guard and a 1 GiB arena are
// both visible: every address where some VMA ever started or ended cuts it
// into segments, each segment gets a height growing with the logarithm of
// its size, and never-mapped gaps get a thin band. Two replays: the first
// collects the boundaries (from the VMAs each event changed), the second
// rasterises at most kColumns columns by kRows rows, run-length encoded per
// row, so the SVG stays small however long the trace is.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/procfs/maps_text.h"
#include "tools/cli_flags.h"
#include "tools/trace_analysis.h"
#include "tools/trace_cli.h"
#include "tools/trace_commands.h"

namespace vmashadow {
namespace {

constexpr CliFlag kPlotFlags[] = {
    {"output", "output", "FILE", 'o'},
    {"html", "html", ""},
    {"kernel_profile", "kernel-profile", "NAME"},
    {"progress", "progress", ""},
};

constexpr int kColumns = 1000;
constexpr int kRows = 600;
constexpr int kKinds = static_cast<int>(VmaKind::kCount);
constexpr double kLeft = 150;    // address labels
constexpr double kTop = 40;      // title
constexpr double kCountH = 110;  // VMA count panel
constexpr double kGapY = 30;
constexpr double kPlotW = 1000;   // timeline width
constexpr double kFinalW = 90;    // final layout strip
constexpr double kLabelsW = 260;  // its labels

std::string Esc(absl::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        if (static_cast<unsigned char>(c) >= 0x20) out += c;
    }
  }
  return out;
}

// The compressed address axis: address -> row (0 = top = highest address).
class Axis {
 public:
  explicit Axis(std::vector<uint64_t> bounds) : bounds_(std::move(bounds)) {
    std::sort(bounds_.begin(), bounds_.end());
    bounds_.erase(std::unique(bounds_.begin(), bounds_.end()), bounds_.end());
    if (bounds_.size() < 2) bounds_ = {0, 4096};
    // Segment weights: log2 of the size in pages, gaps thinner.
    weights_.resize(bounds_.size() - 1);
    double total = 0;
    for (size_t i = 0; i + 1 < bounds_.size(); ++i) {
      const double pages = static_cast<double>((bounds_[i + 1] - bounds_[i]) >> 12);
      weights_[i] = 1.0 + std::log2(1.0 + pages);
      total += weights_[i];
    }
    cum_.resize(bounds_.size());
    cum_[0] = 0;
    for (size_t i = 0; i + 1 < bounds_.size(); ++i) cum_[i + 1] = cum_[i] + weights_[i] / total;
  }
  void MarkGaps(const std::vector<std::pair<uint64_t, uint64_t>>& covered) {
    // Segments never covered by any VMA weigh a fifth.
    std::vector<bool> used(weights_.size(), false);
    for (const auto& [lo, hi] : covered) {
      size_t i = Index(lo);
      while (i < weights_.size() && bounds_[i] < hi) used[i++] = true;
    }
    double total = 0;
    for (size_t i = 0; i < weights_.size(); ++i) {
      if (!used[i]) weights_[i] = std::min(weights_[i] * 0.2, 2.0);
      total += weights_[i];
    }
    for (size_t i = 0; i < weights_.size(); ++i) cum_[i + 1] = cum_[i] + weights_[i] / total;
  }
  // Fraction of the axis from the bottom (lowest address) at addr.
  double Frac(uint64_t addr) const {
    if (addr <= bounds_.front()) return 0;
    if (addr >= bounds_.back()) return 1;
    const size_t i = Index(addr);
    const double span = static_cast<double>(bounds_[i + 1] - bounds_[i]);
    return cum_[i] + (cum_[i + 1] - cum_[i]) * static_cast<double>(addr - bounds_[i]) / span;
  }
  // Rows [top, bottom) (top row = highest address) that [lo, hi) covers.
  double Row(uint64_t addr) const { return (1.0 - Frac(addr)) * kRows; }
  const std::vector<uint64_t>& bounds() const { return bounds_; }

 private:
  size_t Index(uint64_t addr) const {
    auto it = std::upper_bound(bounds_.begin(), bounds_.end(), addr);
    size_t i = static_cast<size_t>(it - bounds_.begin());
    return i == 0 ? 0 : std::min(i - 1, weights_.size() - 1);
  }
  std::vector<uint64_t> bounds_;
  std::vector<double> weights_;
  std::vector<double> cum_;
};

// Adds v's coverage of each row into cov[row * kKinds + kind].
void Cover(const Axis& axis, uint64_t lo, uint64_t hi, int kind, std::vector<float>* cov) {
  const double top = axis.Row(hi);
  const double bottom = axis.Row(lo);
  int r0 = static_cast<int>(std::floor(top));
  const int r1 = std::min(kRows - 1, static_cast<int>(std::ceil(bottom)) - 1);
  // A sliver thinner than a row still shows.
  const double h = std::max(bottom - top, 0.35);
  for (int r = std::max(r0, 0); r <= std::max(r1, r0) && r < kRows; ++r) {
    const double a = std::max(top, static_cast<double>(r));
    const double b = std::min(top + h, static_cast<double>(r + 1));
    if (b > a)
      (*cov)[static_cast<size_t>(r) * kKinds + static_cast<size_t>(kind)] +=
          static_cast<float>(b - a);
  }
}

// The kind each row shows (-1: nothing).
std::vector<int> Resolve(const std::vector<float>& cov) {
  std::vector<int> out(kRows, -1);
  for (int r = 0; r < kRows; ++r) {
    float best = 0.2f;
    for (int k = 0; k < kKinds; ++k) {
      const float c = cov[static_cast<size_t>(r) * kKinds + static_cast<size_t>(k)];
      if (c > best) {
        best = c;
        out[r] = k;
      }
    }
  }
  return out;
}

std::string VmaLabel(const AddressSpace& m, const Vma& v) {
  bool deleted = false;
  const char* name = VmaName(m, v, &deleted);
  std::string n = name;
  const size_t slash = n.rfind('/');
  if (slash != std::string::npos && n.front() == '/') n = n.substr(slash + 1);
  if (n.empty()) n = VmaKindName(KindOf(m, v));
  return n;
}

struct Run {
  int kind;
  int start_col;
};

absl::StatusOr<std::string> Plot(const std::string& path, const ReplayOptions& options, bool html,
                                 Progress* progress) {
  // Pass 1: boundaries and the number of events.
  std::vector<uint64_t> bounds;
  std::vector<std::pair<uint64_t, uint64_t>> covered;
  uint64_t events = 0;
  std::string warning;
  constexpr uint64_t kSnapshots = 32;
  uint64_t snapshot = 0;
  {
    absl::StatusOr<std::unique_ptr<Replayer>> r = Replayer::Open(path, options);
    if (!r.ok()) return r.status();
    auto add_all = [&](const AddressSpace& m) {
      for (const Vma* v = m.tree().First(); v != nullptr; v = v->next) {
        bounds.push_back(v->start);
        bounds.push_back(v->end);
        covered.emplace_back(v->start, v->end);
      }
    };
    for (;;) {
      absl::StatusOr<bool> more = (*r)->Step();
      if (!more.ok()) {
        warning = std::string(more.status().message());
        break;
      }
      if (!*more) break;
      const TraceRecord& rec = *(*r)->last().record;
      const AddressSpace& m = (*r)->model();
      if (rec.kind == TraceRecordKind::kSeedState) add_all(m);
      if (rec.kind != TraceRecordKind::kEvent) continue;
      ++events;
      const Outcome& o = (*r)->last().outcome;
      if (o.changed_start < o.changed_end) {
        for (const Vma* v = m.tree().FindVma(o.changed_start > 0 ? o.changed_start - 1 : 0);
             v != nullptr && v->start <= o.changed_end; v = v->next) {
          covered.emplace_back(v->start, v->end);
        }
      }
      // The axis is cut where VMAs begin and end in 32 snapshots spread
      // over the trace (not at every page a region ever grew by, which
      // would give a busy region all the height).
      const uint64_t part = (*r)->offset() * kSnapshots / std::max<uint64_t>((*r)->size(), 1);
      if (part != snapshot) {
        snapshot = part;
        add_all(m);
      }
      if ((events & 0x3ff) == 0) progress->Update((*r)->offset() / 2, (*r)->size(), events);
    }
    add_all((*r)->model());
  }
  if (!warning.empty()) std::fprintf(stderr, "vmashadow: warning: %s\n", warning.c_str());
  Axis axis(std::move(bounds));
  axis.MarkGaps(covered);
  covered.clear();

  // Pass 2: the raster, the count series and the final layout.
  absl::StatusOr<std::unique_ptr<Replayer>> opened = Replayer::Open(path, options);
  if (!opened.ok()) return opened.status();
  Replayer& r = **opened;
  const int columns = static_cast<int>(std::max<uint64_t>(1, std::min<uint64_t>(events, kColumns)));
  const double col_w = kPlotW / columns;
  std::vector<float> cov(static_cast<size_t>(kRows) * kKinds, 0.f);
  std::vector<Run> open(kRows, Run{-1, 0});
  std::string rects;
  int col = 0;
  uint64_t seen = 0;
  uint64_t peak = 1;
  std::vector<std::pair<uint64_t, uint64_t>> counts;  // (event, count), subsampled
  auto flush_rows = [&](const std::vector<int>& kinds, int at_col) {
    for (int row = 0; row < kRows; ++row) {
      Run& run = open[row];
      if (run.kind == kinds[row]) continue;
      if (run.kind >= 0) {
        absl::StrAppendFormat(
            &rects, "<rect x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"1\" fill=\"%s\"/>\n",
            kLeft + run.start_col * col_w, static_cast<int>(kTop + kCountH + kGapY) + row,
            (at_col - run.start_col) * col_w, VmaKindColor(static_cast<VmaKind>(run.kind)));
      }
      run = Run{kinds[row], at_col};
    }
  };
  auto cover_all = [&](const AddressSpace& m) {
    for (const Vma* v = m.tree().First(); v != nullptr; v = v->next) {
      Cover(axis, v->start, v->end, static_cast<int>(KindOf(m, *v)), &cov);
    }
  };
  for (;;) {
    absl::StatusOr<bool> more = r.Step();
    if (!more.ok()) break;
    if (!*more) break;
    const TraceRecord& rec = *r.last().record;
    if (rec.kind != TraceRecordKind::kEvent) continue;
    ++seen;
    const AddressSpace& m = r.model();
    const Outcome& o = r.last().outcome;
    // VMAs the event made or changed count in this column even if a later
    // event of the column removes them.
    if (o.changed_start < o.changed_end) {
      for (const Vma* v = m.tree().FindVma(o.changed_start);
           v != nullptr && v->start < o.changed_end; v = v->next) {
        Cover(axis, v->start, v->end, static_cast<int>(KindOf(m, *v)), &cov);
      }
    }
    peak = std::max<uint64_t>(peak, m.map_count());
    if (counts.empty() || seen % std::max<uint64_t>(1, events / 2000) == 0 || seen == events) {
      counts.emplace_back(seen, m.map_count());
    }
    const int c = static_cast<int>(((seen - 1) * static_cast<uint64_t>(columns)) /
                                   std::max<uint64_t>(events, 1));
    const int next_c =
        static_cast<int>((seen * static_cast<uint64_t>(columns)) / std::max<uint64_t>(events, 1));
    if (next_c != c || seen == events) {
      cover_all(m);
      flush_rows(Resolve(cov), col);
      std::fill(cov.begin(), cov.end(), 0.f);
      col = c + 1;
    }
    if ((seen & 0x3ff) == 0) progress->Update(r.size() / 2 + r.offset() / 2, r.size(), seen);
  }
  flush_rows(std::vector<int>(kRows, -1), col);
  const AddressSpace& m = r.model();

  // The SVG.
  const double timeline_y = kTop + kCountH + kGapY;
  const double width = kLeft + kPlotW + 20 + kFinalW + kLabelsW;
  const double legend_y = timeline_y + kRows + 50;
  const double height = legend_y + 60;
  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
      "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"11\">\n",
      width, height, width, height);
  absl::StrAppendFormat(&svg,
                        "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"#ffffff\"/>\n",
                        width, height);
  const TraceHeader& h = r.header();
  std::string argv(h.argv.data, h.argv.len);
  std::replace(argv.begin(), argv.end(), '\0', ' ');
  absl::StrAppendFormat(
      &svg, "<text x=\"%.0f\" y=\"22\" font-size=\"15\" font-weight=\"bold\">%s</text>\n", kLeft,
      Esc(absl::StrFormat("pid %u: %s — %s events, peak %s VMAs", h.pid, argv.substr(0, 100),
                          Thousands(seen), Thousands(peak))));
  // The count panel.
  absl::StrAppendFormat(
      &svg,
      "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"#f7f7f7\" "
      "stroke=\"#999\"/>\n",
      kLeft, kTop, kPlotW, kCountH);
  absl::StrAppendFormat(&svg, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">%s VMAs</text>\n",
                        kLeft - 6, kTop + 10, Thousands(peak));
  absl::StrAppendFormat(&svg, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">0</text>\n",
                        kLeft - 6, kTop + kCountH);
  std::string points;
  for (const auto& [ev, n] : counts) {
    absl::StrAppendFormat(
        &points, "%.1f,%.1f ",
        kLeft +
            kPlotW * static_cast<double>(ev) / static_cast<double>(std::max<uint64_t>(events, 1)),
        kTop + kCountH - kCountH * static_cast<double>(n) / static_cast<double>(peak));
  }
  absl::StrAppendFormat(
      &svg, "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"%s\"/>\n",
      points);
  // The timeline.
  absl::StrAppendFormat(&svg,
                        "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%d\" fill=\"#fbfbfb\" "
                        "stroke=\"#999\"/>\n",
                        kLeft, timeline_y, kPlotW, kRows);
  absl::StrAppend(&svg, "<g shape-rendering=\"crispEdges\">\n", rects, "</g>\n");
  // Event ticks.
  for (int t = 0; t <= 4; ++t) {
    const double x = kLeft + kPlotW * t / 4;
    absl::StrAppendFormat(&svg,
                          "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"#999\"/>"
                          "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">event %s</text>\n",
                          x, timeline_y + kRows, x, timeline_y + kRows + 5, x,
                          timeline_y + kRows + 18,
                          Thousands(events * static_cast<uint64_t>(t) / 4));
  }
  // Address labels where the axis has room.
  double last_label = -100;
  const std::vector<uint64_t>& b = axis.bounds();
  for (size_t i = b.size(); i-- > 0;) {
    const double y = timeline_y + axis.Row(b[i]);
    if (y - last_label < 14) continue;
    last_label = y;
    absl::StrAppendFormat(
        &svg,
        "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\" font-family=\"monospace\" "
        "font-size=\"10\">%#x</text>\n",
        kLeft - 6, y + 3, b[i]);
  }
  // The final layout, with a tooltip per VMA and labels where there is room.
  const double fx = kLeft + kPlotW + 20;
  absl::StrAppendFormat(&svg, "<text x=\"%.0f\" y=\"%.0f\">final layout (%s VMAs)</text>\n", fx,
                        timeline_y - 8, Thousands(m.map_count()));
  double label_free = -100;
  int titled = 0;
  char line[4096 + 256];
  for (const Vma* v = m.tree().Last(); v != nullptr; v = v->prev) {
    const double y0 = timeline_y + axis.Row(v->end);
    const double y1 = timeline_y + axis.Row(v->start);
    const double hgt = std::max(y1 - y0, 0.5);
    const VmaKind k = KindOf(m, *v);
    std::string title;
    if (titled < 5000) {
      const size_t n = RenderVmaLine(m, *v, line, sizeof(line));
      title = absl::StrCat("<title>", Esc(absl::string_view(line, n < sizeof(line) ? n - 1 : 0)),
                           "</title>");
      ++titled;
    }
    absl::StrAppendFormat(&svg,
                          "<rect x=\"%.0f\" y=\"%.2f\" width=\"%.0f\" height=\"%.2f\" fill=\"%s\" "
                          "stroke=\"#333\" stroke-width=\"0.2\">%s</rect>\n",
                          fx, y0, kFinalW, hgt, VmaKindColor(k), title);
    const double mid = (y0 + y1) / 2;
    if (mid - label_free >= 11) {
      absl::StrAppendFormat(
          &svg, "<text x=\"%.0f\" y=\"%.1f\">%s</text>\n", fx + kFinalW + 6, mid + 4,
          Esc(absl::StrFormat("%#x %s", v->start, VmaLabel(m, *v)).substr(0, 40)));
      label_free = mid;
    }
  }
  // Legend.
  for (int k = 0; k < kKinds; ++k) {
    const double x = kLeft + (k % 6) * 165;
    const double y = legend_y + (k / 6) * 20;
    absl::StrAppendFormat(&svg,
                          "<rect x=\"%.0f\" y=\"%.0f\" width=\"14\" height=\"12\" fill=\"%s\"/>"
                          "<text x=\"%.0f\" y=\"%.0f\">%s</text>\n",
                          x, y, VmaKindColor(static_cast<VmaKind>(k)), x + 20, y + 10,
                          Esc(VmaKindName(static_cast<VmaKind>(k))));
  }
  if (!warning.empty()) {
    absl::StrAppendFormat(&svg, "<text x=\"%.0f\" y=\"%.0f\" fill=\"#b00\">%s</text>\n", kLeft,
                          height - 6, Esc(warning));
  }
  svg += "</svg>\n";
  if (!html) return svg;

  absl::StatusOr<TraceAnalysis> a = AnalyzeTrace(path, options);
  const std::string report = a.ok() ? TextReport(*a, 10) : std::string(a.status().message());
  return absl::StrCat(
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>",
      Esc(absl::StrCat("vmashadow plot: ", path)),
      "</title>\n<style>body{font-family:sans-serif;margin:16px}pre{font-size:12px;"
      "background:#f7f7f7;padding:8px}svg rect:hover{stroke:#000;stroke-width:1}</style>\n"
      "</head><body>\n<h2>",
      Esc(path), "</h2>\n<p>Hover a VMA of the final layout for its maps line.</p>\n", svg,
      "<h3>Report</h3>\n<pre>", Esc(report), "</pre>\n</body></html>\n");
}

}  // namespace

std::string PlotUsage() {
  return absl::StrCat(
      "Usage: vmashadow plot [OPTIONS] TRACE -o OUT.svg\n"
      "\n"
      "Draws the address space over time: the VMA count on top, then every mapping as\n"
      "coloured cells (events left to right, addresses on a compressed axis, high at the\n"
      "top), and the final layout on the right with each VMA's maps line as a tooltip.\n"
      "With --html, an HTML page holding the picture and the report.\n"
      "\n",
      CliFlagsUsage(kPlotFlags, FlagDefaults::kHide));
}

int PlotCommand(const std::vector<std::string>& args) {
  int exit_status = 0;
  const std::optional<std::string> trace =
      ParseTraceCommand("plot", args, kPlotFlags, PlotUsage, &exit_status);
  if (!trace) return exit_status;
  const std::string out = absl::GetFlag(FLAGS_output);
  if (out.empty()) return CliUsageError("plot", "-o OUT.svg (or OUT.html) is required");
  ReplayOptions options;
  options.profile = absl::GetFlag(FLAGS_kernel_profile);
  options.verify = false;
  Progress progress("plot");
  absl::StatusOr<std::string> svg = Plot(*trace, options, absl::GetFlag(FLAGS_html), &progress);
  progress.Finish();
  if (!svg.ok()) {
    std::fprintf(stderr, "vmashadow: %s\n", std::string(svg.status().message()).c_str());
    return absl::IsInvalidArgument(svg.status()) ? 3 : 2;
  }
  if (const absl::Status w = WriteOutputFile(out, *svg); !w.ok()) {
    std::fprintf(stderr, "vmashadow: %s\n", std::string(w.message()).c_str());
    return 2;
  }
  return 0;
}

}  // namespace vmashadow
