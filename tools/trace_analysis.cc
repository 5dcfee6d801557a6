// trace_analysis.cc — the numbers behind `vmashadow report` (see
// trace_analysis.h).
//
// Mapping lifetimes are tracked per page range: each successful mmap owns
// its range; munmap, MAP_FIXED over it and mremap take pages away (a move
// carries them along), and the mapping ends with its last page.
#include "tools/trace_analysis.h"

#include <algorithm>
#include <map>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/abi/linux_abi.h"
#include "core/procfs/maps_text.h"
#include "tools/symbolizer.h"

namespace vmashadow {

// ---------------------------------------------------------------------------
// Kinds and merge blockers.

VmaKind KindOf(const AddressSpace& as, const Vma& v) {
  if (v.special != SpecialKind::kNone) return VmaKind::kSpecial;
  if ((v.flags & kVmGrowsdown) != 0 ||
      (as.start_stack() >= v.start && as.start_stack() < v.end && v.file == nullptr)) {
    return VmaKind::kStack;
  }
  if (v.file == nullptr && as.start_brk() != 0 && v.start >= as.start_brk() &&
      v.end <= PageAlign(as.brk()) && v.start < PageAlign(as.brk())) {
    return VmaKind::kHeap;
  }
  if ((v.flags & kVmRwx) == 0) return VmaKind::kNoAccess;
  const bool shared = (v.flags & kVmMayShare) != 0;
  if (shared && (v.file == nullptr || v.file->kind == FileKind::kShmem)) return VmaKind::kShared;
  if (v.file != nullptr) {
    if (v.flags & kVmExec) return VmaKind::kFileExec;
    if (v.flags & kVmWrite) return shared ? VmaKind::kShared : VmaKind::kFileRw;
    return VmaKind::kFileRo;
  }
  if (v.flags & kVmExec) return VmaKind::kAnonExec;
  if (v.flags & kVmWrite) return VmaKind::kAnonRw;
  return VmaKind::kAnonRo;
}

const char* VmaKindName(VmaKind k) {
  static const char* const kNames[] = {
      "file code", "file read-only", "file writable", "anon rw", "anon read-only", "anon exec",
      "no access", "shared",         "heap (brk)",    "stack",   "special",
  };
  static_assert(sizeof(kNames) / sizeof(kNames[0]) == static_cast<size_t>(VmaKind::kCount));
  return kNames[static_cast<int>(k)];
}

const char* VmaKindColor(VmaKind k) {
  static const char* const kColors[] = {
      "#d62728",  // file code: red
      "#ff9896",  // file ro: pink
      "#9467bd",  // file rw: purple
      "#1f77b4",  // anon rw: blue
      "#aec7e8",  // anon ro: light blue
      "#ff7f0e",  // anon exec: orange
      "#c7c7c7",  // no access: grey
      "#2ca02c",  // shared: green
      "#17becf",  // heap: cyan
      "#8c564b",  // stack: brown
      "#bcbd22",  // special: olive
  };
  static_assert(sizeof(kColors) / sizeof(kColors[0]) == static_cast<size_t>(VmaKind::kCount));
  return kColors[static_cast<int>(k)];
}

mm::MergeRefusal WhyNotMerged(const AddressSpace& as, const Vma& prev, const Vma& next,
                              std::string* detail) {
  detail->clear();
  uint64_t diff = 0;
  const mm::MergeRefusal why = mm::WhyNotMergeable(as.profile(), prev, next, &diff);
  switch (why) {
    case mm::MergeRefusal::kFlags: {
      char a[256];
      char b[256];
      size_t na = RenderVmFlags(prev.flags & diff, a, sizeof(a));
      size_t nb = RenderVmFlags(next.flags & diff, b, sizeof(b));
      na = na < sizeof(a) ? na : 0;
      nb = nb < sizeof(b) ? nb : 0;
      while (na > 0 && a[na - 1] == ' ') --na;
      while (nb > 0 && b[nb - 1] == ' ') --nb;
      *detail = absl::StrCat("first has [", absl::string_view(a, na), "], second has [",
                             absl::string_view(b, nb), "]");
      break;
    }
    case mm::MergeRefusal::kFile:
      *detail = prev.file == nullptr || next.file == nullptr ? "file and anonymous" : "two files";
      break;
    case mm::MergeRefusal::kAnonVma:
      *detail = absl::StrFormat("anon_vma %u and %u", prev.anon.anon_vma, next.anon.anon_vma);
      break;
    case mm::MergeRefusal::kPgoff:
      *detail =
          absl::StrFormat("pgoff %#x + %u pages != %#x", prev.pgoff, prev.pages(), next.pgoff);
      break;
    default:
      break;
  }
  return why;
}

void Histogram::Add(uint64_t v) {
  int b = 0;
  while (b < 63 && (v >> (b + 1)) != 0) ++b;
  ++buckets[b];
  ++count;
}

std::string Bytes(uint64_t v) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int u = 0;
  double d = static_cast<double>(v);
  while (d >= 1024 && u < 5) {
    d /= 1024;
    ++u;
  }
  if (u == 0) return absl::StrCat(v, " B");
  return d == static_cast<double>(static_cast<uint64_t>(d))
             ? absl::StrFormat("%u %s", static_cast<uint64_t>(d), kUnits[u])
             : absl::StrFormat("%.1f %s", d, kUnits[u]);
}

std::string Duration(uint64_t ns) {
  if (ns < 1000) return absl::StrCat(ns, " ns");
  if (ns < 1000000) return absl::StrFormat("%.1f us", static_cast<double>(ns) / 1e3);
  if (ns < 1000000000) return absl::StrFormat("%.2f ms", static_cast<double>(ns) / 1e6);
  return absl::StrFormat("%.3f s", static_cast<double>(ns) / 1e9);
}

// ---------------------------------------------------------------------------
// Mapping lifetimes.

namespace {

class MappingTracker {
 public:
  struct Owner {
    uint64_t birth_event;
    uint64_t birth_time;
    uint64_t pages;
  };

  explicit MappingTracker(TraceAnalysis* a) : a_(a) {}

  uint64_t New(uint64_t lo, uint64_t hi, uint64_t event, uint64_t time) {
    Remove(lo, hi, event, time);
    const uint64_t id = owners_.size();
    owners_.push_back(Owner{event, time, (hi - lo) >> kPageShift});
    segs_[lo] = Seg{hi, id};
    return id;
  }

  void Remove(uint64_t lo, uint64_t hi, uint64_t event, uint64_t time) {
    Split(lo);
    Split(hi);
    for (auto it = segs_.lower_bound(lo); it != segs_.end() && it->first < hi;) {
      Release(it->second.owner, (it->second.end - it->first) >> kPageShift, event, time);
      it = segs_.erase(it);
    }
  }

  // The pages of [lo, hi) now live at new_lo (same owners); what was at
  // the destination goes. With keep_old (MREMAP_DONTUNMAP) the source stays.
  void Move(uint64_t lo, uint64_t hi, uint64_t new_lo, bool keep_old, uint64_t event,
            uint64_t time) {
    Split(lo);
    Split(hi);
    std::vector<std::pair<uint64_t, Seg>> moved;
    for (auto it = segs_.lower_bound(lo); it != segs_.end() && it->first < hi;) {
      moved.emplace_back(it->first, it->second);
      if (keep_old) {
        owners_[it->second.owner].pages += (it->second.end - it->first) >> kPageShift;
        ++it;
      } else {
        it = segs_.erase(it);
      }
    }
    Remove(new_lo, new_lo + (hi - lo), event, time);
    for (auto& [start, seg] : moved) {
      segs_[start - lo + new_lo] = Seg{seg.end - lo + new_lo, seg.owner};
    }
  }

  // [lo, hi) joins the mapping that owns the page just below lo.
  void Extend(uint64_t lo, uint64_t hi, uint64_t event, uint64_t time) {
    auto it = segs_.upper_bound(lo - 1);
    if (it == segs_.begin()) return;
    --it;
    if (it->second.end != lo) return;
    Remove(lo, hi, event, time);
    owners_[it->second.owner].pages += (hi - lo) >> kPageShift;
    segs_[lo] = Seg{hi, it->second.owner};
  }

 private:
  struct Seg {
    uint64_t end;
    uint64_t owner;
  };

  void Split(uint64_t at) {
    auto it = segs_.upper_bound(at);
    if (it == segs_.begin()) return;
    --it;
    if (it->first < at && at < it->second.end) {
      const Seg tail{it->second.end, it->second.owner};
      it->second.end = at;
      segs_[at] = tail;
    }
  }

  void Release(uint64_t owner, uint64_t pages, uint64_t event, uint64_t time) {
    Owner& o = owners_[owner];
    o.pages = pages > o.pages ? 0 : o.pages - pages;
    if (o.pages == 0) {
      ++a_->mappings_ended;
      a_->lifetimes_events.Add(event - o.birth_event);
      a_->lifetimes_ns.Add(time - o.birth_time);
    }
  }

  TraceAnalysis* a_;
  std::map<uint64_t, Seg> segs_;
  std::vector<Owner> owners_;
};

bool IsRuntimeLibrary(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  return base.rfind("libc.so", 0) == 0 || base.rfind("libc-", 0) == 0 ||
         base.rfind("ld-linux", 0) == 0 || base.rfind("libvmashadow", 0) == 0 ||
         base.rfind("libpthread", 0) == 0;
}

// Where a frame's code is: its file and file offset (or "[anon]" / "").
void Locate(const AddressSpace& m, uint64_t pc, std::string* path, uint64_t* offset) {
  const Vma* v = m.FindVma(pc);
  if (v == nullptr || v->start > pc) {
    *path = "";
    *offset = pc;
    return;
  }
  if (v->file == nullptr || v->special != SpecialKind::kNone) {
    bool deleted = false;
    const char* name = VmaName(m, *v, &deleted);
    *path = name[0] != '\0' ? name : "[anon]";
    *offset = pc;
    return;
  }
  *path = v->file->path;
  *offset = pc - v->start + v->pgoff * kPageSize;
}

}  // namespace

absl::StatusOr<TraceAnalysis> AnalyzeTrace(const std::string& path, const ReplayOptions& options,
                                           const std::function<void(const Replayer&)>& on_event) {
  absl::StatusOr<std::unique_ptr<Replayer>> opened = Replayer::Open(path, options);
  if (!opened.ok()) return opened.status();
  Replayer& r = **opened;
  TraceAnalysis a;
  a.path = path;
  a.header = r.header();
  a.argv = std::string(a.header.argv.data, a.header.argv.len);
  std::replace(a.argv.begin(), a.argv.end(), '\0', ' ');
  while (!a.argv.empty() && a.argv.back() == ' ') a.argv.pop_back();
  a.kernel_release = std::string(a.header.kernel_release.data, a.header.kernel_release.len);
  a.profile = r.profile().name;
  a.check = std::string(a.header.check.data, a.header.check.len);

  MappingTracker tracker(&a);
  std::unordered_set<uint64_t> tids;
  std::unordered_map<std::string, CallSite> sites;
  std::vector<TraceAnalysis::Point> all;
  const uint64_t t0 = a.header.monotonic_ns;
  bool first = true;

  for (;;) {
    absl::StatusOr<bool> more = r.Step();
    if (!more.ok()) {
      a.error = std::string(more.status().message());
      break;
    }
    if (!*more) break;
    const TraceRecord& rec = *r.last().record;
    if (first && rec.kind == TraceRecordKind::kSeedState) {
      a.start_count = r.model().map_count();
    }
    if (rec.kind != TraceRecordKind::kEvent) continue;
    const TraceEvent& e = rec.event;
    const AddressSpace& m = r.model();
    const uint64_t idx = r.last().event_index;
    const uint64_t t = e.time_ns - t0;
    if (first) {
      a.first_time_ns = t;
      first = false;
      if (a.start_count == 0) a.start_count = m.map_count();
    }
    a.last_time_ns = t;
    tids.insert(e.tid);
    const uint64_t count = m.map_count();
    all.push_back({idx, t, count});
    if (count > a.peak_count) {
      a.peak_count = count;
      a.peak_event = idx;
      a.peak_time_ns = t;
    }
    const bool ok = !abi::IsErrorReturn(e.kernel_ret);
    const uint64_t* x = e.args;
    uint64_t mapped = 0;
    uint64_t unmapped = 0;
    if (ok && (e.flags & kEventUnmodelled) == 0) {
      switch (e.call) {
        case TraceCall::kMmap: {
          const uint64_t lo = static_cast<uint64_t>(e.kernel_ret);
          const uint64_t len = PageAlign(x[1]);
          tracker.New(lo, lo + len, idx, t);
          ++a.mappings;
          a.mapping_sizes.Add(len);
          mapped = len;
          const int flags = static_cast<int>(x[3]);
          if ((flags & abi::kMapType) != abi::kMapPrivate) ++a.shared_maps;
          if (flags & abi::kMapAnonymous) {
            ++a.anon_maps;
            a.anon_bytes += len;
          } else {
            ++a.file_maps;
            a.file_bytes += len;
          }
          break;
        }
        case TraceCall::kMunmap: {
          const uint64_t lo = PageDown(x[0]);
          const uint64_t hi = PageAlign(x[0] + x[1]);
          tracker.Remove(lo, hi, idx, t);
          ++a.unmaps;
          unmapped = hi - lo;
          a.unmap_bytes += unmapped;
          break;
        }
        case TraceCall::kMremap: {
          ++a.remaps;
          const uint64_t old = x[0];
          const uint64_t old_len = PageAlign(x[1]);
          const uint64_t new_len = PageAlign(x[2]);
          const uint64_t dst = static_cast<uint64_t>(e.kernel_ret);
          const bool keep = (static_cast<int>(x[3]) & abi::kMremapDontunmap) != 0;
          if (dst == old) {
            if (new_len < old_len) tracker.Remove(old + new_len, old + old_len, idx, t);
            if (new_len > old_len) tracker.Extend(old + old_len, old + new_len, idx, t);
          } else if (old_len == 0) {
            tracker.New(dst, dst + new_len, idx, t);
          } else {
            const uint64_t keep_len = std::min(old_len, new_len);
            tracker.Move(old, old + keep_len, dst, keep, idx, t);
            if (!keep && old_len > new_len) tracker.Remove(old + keep_len, old + old_len, idx, t);
            if (new_len > old_len) tracker.Extend(dst + old_len, dst + new_len, idx, t);
          }
          if (new_len > old_len) mapped = new_len - old_len;
          if (old_len > new_len) unmapped = old_len - new_len;
          break;
        }
        case TraceCall::kBrk: {
          ++a.brk_calls;
          const uint64_t nb = static_cast<uint64_t>(e.kernel_ret);
          const uint64_t size = nb > m.start_brk() ? nb - m.start_brk() : 0;
          if (size > a.heap_end) {
            ++a.brk_grow;
            a.brk_grown_bytes += size - a.heap_end;
            mapped = size - a.heap_end;
          } else if (size < a.heap_end) {
            ++a.brk_shrink;
            a.brk_shrunk_bytes += a.heap_end - size;
            unmapped = a.heap_end - size;
          }
          a.heap_end = size;
          a.heap_peak = std::max(a.heap_peak, size);
          break;
        }
        case TraceCall::kMprotect:
        case TraceCall::kPkeyMprotect:
          ++a.protects;
          break;
        case TraceCall::kMadvise:
          ++a.advises;
          break;
        case TraceCall::kMlock:
        case TraceCall::kMlock2:
        case TraceCall::kMunlock:
        case TraceCall::kMlockall:
        case TraceCall::kMunlockall:
          ++a.locks;
          break;
        case TraceCall::kMseal:
          ++a.seals;
          break;
        default:
          break;
      }
    }

    // The call site: the first frame outside the C runtime (else the
    // innermost one).
    std::string site_path, via_path;
    uint64_t site_off = 0, via_off = 0;
    bool have_site = false;
    bool have_via = false;
    for (int i = 0; i < e.nframes; ++i) {
      const bool exact = i == 0 && (e.flags & kEventFrame0IsPc) != 0;
      const uint64_t pc = exact ? e.frames[i] : e.frames[i] - 1;
      std::string p;
      uint64_t off = 0;
      Locate(m, pc, &p, &off);
      if (i == 0) {
        via_path = p;
        via_off = off;
        have_via = true;
      }
      if (!IsRuntimeLibrary(p) && !p.empty()) {
        site_path = p;
        site_off = off;
        have_site = true;
        break;
      }
    }
    if (!have_site && have_via) {
      site_path = via_path;
      site_off = via_off;
      have_site = true;
    }
    // One entry per (site, innermost frame): the same call (say, to malloc)
    // may end in different syscalls.
    std::string key =
        have_site ? absl::StrCat(site_path, std::string(1, '\0'), site_off, std::string(1, '\0'),
                                 via_path, std::string(1, '\0'), via_off)
                  : "?";
    CallSite& s = sites[key];
    if (s.calls == 0) {
      s.key = key;
      s.path = site_path;
      s.file_offset = site_off;
      if (have_via && (via_path != site_path || via_off != site_off)) {
        s.via_path = via_path;
        s.via_offset = via_off;
        s.via = "x";
      }
    }
    ++s.calls;
    ++s.by_call[static_cast<int>(e.call)];
    s.bytes_mapped += mapped;
    s.bytes_unmapped += unmapped;
    if (on_event) on_event(r);
  }
  a.stats = r.stats();
  a.threads = tids.size();
  a.end_count = r.model().map_count();

  // The VMA count series, subsampled to kMaxSeries points keeping each
  // bucket's extremes.
  if (all.size() <= kMaxSeries) {
    a.series = std::move(all);
  } else {
    const size_t per = (all.size() + kMaxSeries / 2 - 1) / (kMaxSeries / 2);
    for (size_t i = 0; i < all.size(); i += per) {
      size_t lo = i, hi = i;
      for (size_t k = i; k < std::min(all.size(), i + per); ++k) {
        if (all[k].count < all[lo].count) lo = k;
        if (all[k].count > all[hi].count) hi = k;
      }
      a.series.push_back(all[std::min(lo, hi)]);
      if (lo != hi) a.series.push_back(all[std::max(lo, hi)]);
    }
  }

  // Sites, symbolised and merged by function (each return address is its
  // own site until then), busiest first.
  Symbolizer sym;
  auto name_of = [&sym](const std::string& path, uint64_t off, bool function_only) {
    if (path.empty() || path[0] != '/') {
      return absl::StrFormat("%s@%#x", path.empty() ? "?" : path, off);
    }
    std::string d = sym.Describe(path, off);
    if (function_only && d.find('!') != std::string::npos) {
      const size_t plus = d.rfind('+');
      if (plus != std::string::npos) d.resize(plus);
    }
    return d;
  };
  std::unordered_map<std::string, CallSite> by_function;
  for (auto& [k, s] : sites) {
    s.name = s.key == "?" ? "(no usable frame)" : name_of(s.path, s.file_offset, true);
    if (!s.via.empty()) s.via = name_of(s.via_path, s.via_offset, true);
    CallSite& f = by_function[absl::StrCat(s.name, std::string(1, '\0'), s.via)];
    if (f.calls == 0) {
      f = s;
    } else {
      f.calls += s.calls;
      for (int i = 0; i < static_cast<int>(TraceCall::kCount); ++i) f.by_call[i] += s.by_call[i];
      f.bytes_mapped += s.bytes_mapped;
      f.bytes_unmapped += s.bytes_unmapped;
    }
  }
  for (auto& [k, s] : by_function) a.sites.push_back(std::move(s));
  std::sort(a.sites.begin(), a.sites.end(), [](const CallSite& x, const CallSite& y) {
    return x.calls != y.calls ? x.calls > y.calls : x.name < y.name;
  });

  // The final layout: neighbours that did not merge, free gaps.
  const AddressSpace& m = r.model();
  char line[4096 + 256];
  const uint64_t heap_end = PageAlign(m.brk());
  bool first_mmap_gap = true;
  for (const Vma* v = m.tree().First(); v != nullptr; v = v->next) {
    a.mapped_bytes += v->size();
    const Vma* n = v->next;
    if (n == nullptr) break;
    if (v->end == n->start) {
      MergePair p;
      p.reason = WhyNotMerged(m, *v, *n, &p.detail);
      ++a.unmerged_by_reason[static_cast<int>(p.reason)];
      p.prev_start = v->start;
      p.prev_end = v->end;
      p.next_start = n->start;
      p.next_end = n->end;
      size_t len = RenderVmaLine(m, *v, line, sizeof(line));
      p.prev_line.assign(line, len < sizeof(line) ? len - 1 : 0);
      len = RenderVmaLine(m, *n, line, sizeof(line));
      p.next_line.assign(line, len < sizeof(line) ? len - 1 : 0);
      a.unmerged.push_back(std::move(p));
    } else {
      const uint64_t gap = n->start - v->end;
      a.gaps.Add(gap);
      ++a.gap_count;
      if (gap > a.largest_gap) {
        a.largest_gap = gap;
        a.largest_gap_start = v->end;
      }
      if (v->start >= heap_end && n->end <= m.params().mmap_base) {
        if (first_mmap_gap) {
          first_mmap_gap = false;  // from the heap up to the mmap area
        } else if (gap > a.largest_gap_below_base) {
          a.largest_gap_below_base = gap;
          a.largest_gap_below_base_start = v->end;
        }
      }
    }
  }
  return a;
}

}  // namespace vmashadow
