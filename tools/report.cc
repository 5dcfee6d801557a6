// report.cc — reads the preload's per-process JSON reports (see report.h).
//
// Boost.PropertyTree keeps every JSON scalar as text and an array as children
// with empty keys, so the type checks here are ours: a count must be decimal
// digits, a boolean "true"/"false", an array must have only unnamed children.
#include "tools/report.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <sstream>
#include <string>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

// property_tree's JSON parser includes <boost/bind.hpp>, which otherwise
// prints a deprecation note about global placeholders.
#define BOOST_BIND_GLOBAL_PLACEHOLDERS
#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>

namespace vmashadow {
namespace {

namespace pt = boost::property_tree;

// Reports are a few KiB; anything far larger is not one of ours.
constexpr size_t kMaxReportBytes = size_t{16} << 20;

bool AllDigits(absl::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A short, printable excerpt of a bad value for an error message.
std::string Excerpt(absl::string_view s) {
  std::string out(s.substr(0, 40));
  for (char& c : out) {
    if (!absl::ascii_isprint(static_cast<unsigned char>(c))) c = '?';
  }
  if (s.size() > 40) out += "...";
  return out;
}

bool IsArray(const pt::ptree& node) {
  return std::all_of(node.begin(), node.end(), [](const auto& kv) { return kv.first.empty(); });
}

bool IsObject(const pt::ptree& node) {
  return std::all_of(node.begin(), node.end(), [](const auto& kv) { return !kv.first.empty(); });
}

// Type-checked access to the members of one JSON object. Errors name the
// source and the key path (e.g. "divergence_samples[2].event").
class ObjectReader {
 public:
  ObjectReader(const pt::ptree& node, absl::string_view source, std::string prefix)
      : node_(node), source_(source), prefix_(std::move(prefix)) {}

  // The member `key`, or nullptr.
  const pt::ptree* Find(absl::string_view key) const {
    auto it = node_.find(std::string(key));
    return it == node_.not_found() ? nullptr : &it->second;
  }

  absl::Status Error(absl::string_view key, absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ": malformed report: \"", prefix_, key, "\" ", what));
  }

  // Reads a non-negative integer. *present tells whether the key was there.
  absl::Status Uint(absl::string_view key, uint64_t* out, bool* present) const {
    const pt::ptree* v = Find(key);
    *present = v != nullptr;
    if (v == nullptr) return absl::OkStatus();
    if (!v->empty()) return Error(key, "is an object or array, not a number");
    const std::string& text = v->data();
    if (!AllDigits(text) || !absl::SimpleAtoi(text, out)) {
      return Error(key, absl::StrCat("is not a non-negative integer (\"", Excerpt(text), "\")"));
    }
    return absl::OkStatus();
  }

  absl::Status String(absl::string_view key, std::string* out, bool* present) const {
    const pt::ptree* v = Find(key);
    *present = v != nullptr;
    if (v == nullptr) return absl::OkStatus();
    if (!v->empty()) return Error(key, "is an object or array, not a string");
    *out = v->data();
    return absl::OkStatus();
  }

  absl::Status Bool(absl::string_view key, bool* out, bool* present) const {
    const pt::ptree* v = Find(key);
    *present = v != nullptr;
    if (v == nullptr) return absl::OkStatus();
    if (!v->empty() || (v->data() != "true" && v->data() != "false")) {
      return Error(key, absl::StrCat("is not true or false (\"", Excerpt(v->data()), "\")"));
    }
    *out = v->data() == "true";
    return absl::OkStatus();
  }

 private:
  const pt::ptree& node_;
  absl::string_view source_;
  std::string prefix_;
};

// Reads the top-level keys into *r, noting absent ones in r->missing_keys.
class ReportReader {
 public:
  ReportReader(const pt::ptree& root, absl::string_view source, ProcessReport* r)
      : obj_(root, source, ""), source_(source), r_(r) {}

  absl::Status Read() {
    bool present = false;
    if (absl::Status s = obj_.Uint("pid", &r_->pid, &present); !s.ok()) return s;
    if (!present) {
      return absl::InvalidArgumentError(absl::StrCat(source_, ": malformed report: no \"pid\""));
    }
    absl::Status s = Uint("parent_pid", &r_->parent_pid);
    s.Update(Argv());
    s.Update(String("kernel", &r_->kernel));
    s.Update(String("kernel_profile", &r_->kernel_profile));
    s.Update(String("backend", &r_->backend));
    s.Update(String("check", &r_->check));
    s.Update(Uint("events", &r_->events));
    s.Update(EventsByCall());
    s.Update(Uint("trapped", &r_->trapped));
    s.Update(Uint("checks", &r_->checks));
    s.Update(Uint("range_checks", &r_->range_checks));
    s.Update(Uint("divergences", &r_->divergences));
    s.Update(DivergenceSamples());
    s.Update(Uint("resyncs", &r_->resyncs));
    s.Update(Uint("unexplained", &r_->unexplained));
    s.Update(UnexplainedSamples());
    s.Update(Uint("placement_predicted", &r_->placement_predicted));
    s.Update(Uint("placement_hit", &r_->placement_hit));
    s.Update(Uint("errno_predicted", &r_->errno_predicted));
    s.Update(Uint("errno_hit", &r_->errno_hit));
    s.Update(Uint("results", &r_->results));
    s.Update(Uint("results_hit", &r_->results_hit));
    s.Update(Uint("passthrough", &r_->passthrough));
    s.Update(Uint("final_map_count", &r_->final_map_count));
    s.Update(String("exit_reason", &r_->exit_reason));
    s.Update(Bool("complete", &r_->complete));
    s.Update(PageTables());
    // Optional: the launcher's run id, and why the preload could not write
    // the whole report (-errno).
    s.Update(obj_.String("run_id", &r_->run_id, &present));
    s.Update(obj_.String("report_error", &r_->report_error, &present));
    s.Update(obj_.String("trace_stopped", &r_->trace_stopped, &present));
    return s;
  }

 private:
  // The optional page-table keys (an older or --check=off report has none).
  absl::Status PageTables() {
    bool present = false;
    absl::Status s = obj_.Bool("pagetables", &r_->pagetables, &present);
    for (const auto& [key, out] : std::initializer_list<std::pair<const char*, uint64_t*>>{
             {"pagetable_checks", &r_->pagetable_checks},
             {"pagetable_hits", &r_->pagetable_hits},
             {"counter_checks", &r_->counter_checks},
             {"counter_hits", &r_->counter_hits},
             {"vmflags_checks", &r_->vmflags_checks},
             {"vmflags_hits", &r_->vmflags_hits}}) {
      s.Update(obj_.Uint(key, out, &present));
    }
    if (const pt::ptree* t = obj_.Find("page_tables"); t != nullptr) {
      const ObjectReader pt_obj(*t, source_, "page_tables.");
      for (const auto& [key, out] : std::initializer_list<std::pair<const char*, uint64_t*>>{
               {"pte", &r_->pte_tables},
               {"pmd", &r_->pmd_tables},
               {"pud", &r_->pud_tables},
               {"unlocated", &r_->unlocated_tables},
               {"vmpte_kb", &r_->vmpte_kb}}) {
        s.Update(pt_obj.Uint(key, out, &present));
      }
    }
    return s;
  }

  absl::Status Note(absl::string_view key, bool present, absl::Status s) {
    if (!present) r_->missing_keys.emplace_back(key);
    return s;
  }
  absl::Status Uint(absl::string_view key, uint64_t* out) {
    bool present = false;
    absl::Status s = obj_.Uint(key, out, &present);
    return Note(key, present, s);
  }
  absl::Status String(absl::string_view key, std::string* out) {
    bool present = false;
    absl::Status s = obj_.String(key, out, &present);
    return Note(key, present, s);
  }
  absl::Status Bool(absl::string_view key, bool* out) {
    bool present = false;
    absl::Status s = obj_.Bool(key, out, &present);
    return Note(key, present, s);
  }

  // Returns the array `key`, or nullptr when absent (noted) or not an array
  // (*s set).
  const pt::ptree* Array(absl::string_view key, absl::Status* s) {
    const pt::ptree* v = obj_.Find(key);
    if (v == nullptr) {
      r_->missing_keys.emplace_back(key);
      return nullptr;
    }
    // "[]" reads back as an empty node; "\"x\"" as data without children.
    if (!IsArray(*v) || (v->empty() && !v->data().empty())) {
      *s = obj_.Error(key, "is not an array");
      return nullptr;
    }
    return v;
  }

  absl::Status Argv() {
    absl::Status s;
    const pt::ptree* a = Array("argv", &s);
    if (a == nullptr) return s;
    for (const auto& [unused, elem] : *a) {
      if (!elem.empty()) return obj_.Error("argv", "holds a non-string element");
      r_->argv.push_back(elem.data());
    }
    return absl::OkStatus();
  }

  absl::Status EventsByCall() {
    const pt::ptree* v = obj_.Find("events_by_call");
    if (v == nullptr) {
      r_->missing_keys.emplace_back("events_by_call");
      return absl::OkStatus();
    }
    if (!IsObject(*v) || (v->empty() && !v->data().empty())) {
      return obj_.Error("events_by_call", "is not an object");
    }
    ObjectReader calls(*v, source_, "events_by_call.");
    for (const auto& [name, unused] : *v) {
      uint64_t n = 0;
      bool present = false;
      if (absl::Status s = calls.Uint(name, &n, &present); !s.ok()) return s;
      r_->events_by_call.emplace_back(name, n);
    }
    return absl::OkStatus();
  }

  absl::Status DivergenceSamples() {
    absl::Status s;
    const pt::ptree* a = Array("divergence_samples", &s);
    if (a == nullptr) return s;
    size_t i = 0;
    for (const auto& [unused, elem] : *a) {
      const std::string prefix = absl::StrCat("divergence_samples[", i++, "].");
      if (!IsObject(elem) || (elem.empty() && !elem.data().empty())) {
        return obj_.Error(prefix.substr(0, prefix.size() - 1), "is not an object");
      }
      ObjectReader o(elem, source_, prefix);
      DivergenceSample d;
      bool present = false;
      absl::Status st = o.Uint("event", &d.event, &present);
      st.Update(o.String("call", &d.call, &present));
      st.Update(o.String("what", &d.what, &present));
      st.Update(o.String("model", &d.model, &present));
      st.Update(o.String("kernel", &d.kernel, &present));
      if (!st.ok()) return st;
      r_->divergence_samples.push_back(std::move(d));
    }
    return absl::OkStatus();
  }

  absl::Status UnexplainedSamples() {
    absl::Status s;
    const pt::ptree* a = Array("unexplained_samples", &s);
    if (a == nullptr) return s;
    size_t i = 0;
    for (const auto& [unused, elem] : *a) {
      const std::string prefix = absl::StrCat("unexplained_samples[", i++, "].");
      if (!IsObject(elem) || (elem.empty() && !elem.data().empty())) {
        return obj_.Error(prefix.substr(0, prefix.size() - 1), "is not an object");
      }
      ObjectReader o(elem, source_, prefix);
      UnexplainedSample u;
      bool present = false;
      absl::Status st = o.Uint("event", &u.event, &present);
      st.Update(o.String("what", &u.what, &present));
      if (!st.ok()) return st;
      r_->unexplained_samples.push_back(std::move(u));
    }
    return absl::OkStatus();
  }

  ObjectReader obj_;
  absl::string_view source_;
  ProcessReport* r_;
};

// Whether the text stops inside a string, an object or an array (a report
// cut short, rather than one that is wrong all the way through).
bool EndsInsideValue(absl::string_view text) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (--depth < 0) return false;
    }
  }
  return in_string || depth > 0;
}

// "1234.exec2.json" -> 2; "1234.json" -> max (the last image); else max - 1.
uint64_t ExecGeneration(absl::string_view name) {
  const size_t dot = name.find('.');
  if (dot == absl::string_view::npos) return std::numeric_limits<uint64_t>::max() - 1;
  absl::string_view rest = name.substr(dot + 1);
  if (rest == "json") return std::numeric_limits<uint64_t>::max();
  uint64_t gen = 0;
  if (absl::ConsumePrefix(&rest, "exec") && absl::ConsumeSuffix(&rest, ".json") &&
      AllDigits(rest) && absl::SimpleAtoi(rest, &gen)) {
    return gen;
  }
  return std::numeric_limits<uint64_t>::max() - 1;
}

}  // namespace

uint64_t ProcessReport::EventsFor(absl::string_view call) const {
  for (const auto& [name, n] : events_by_call) {
    if (name == call) return n;
  }
  return 0;
}

absl::StatusOr<ProcessReport> ParseReport(absl::string_view text, absl::string_view source) {
  if (absl::StripAsciiWhitespace(text).empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": malformed report: the file is empty"));
  }
  pt::ptree root;
  try {
    std::istringstream in{std::string(text)};
    pt::read_json(in, root);
  } catch (const pt::json_parser_error& e) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: malformed report: line %d: %s%s", source, e.line(), e.message(),
                        EndsInsideValue(text) ? " (the file ends early: truncated?)" : ""));
  } catch (const pt::ptree_error& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": malformed report: ", e.what()));
  }
  if (!IsObject(root) || (root.empty() && !root.data().empty())) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": malformed report: the top level is not a JSON object"));
  }
  ProcessReport r;
  ReportReader reader(root, source, &r);
  if (absl::Status s = reader.Read(); !s.ok()) return s;
  return r;
}

absl::StatusOr<ProcessReport> ReadReportFile(const std::string& path) {
  // Never through a link, never a FIFO or device (which could block us).
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot open report ", path));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  std::string text;
  char buf[16384];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      close(fd);
      return absl::ErrnoToStatus(err, absl::StrCat("cannot read report ", path));
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxReportBytes) {
      close(fd);
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": malformed report: larger than ", kMaxReportBytes >> 20, " MiB"));
    }
  }
  close(fd);
  absl::StatusOr<ProcessReport> r = ParseReport(text, path);
  if (r.ok()) r->file = path;
  return r;
}

uint64_t PidFromReportName(absl::string_view file_name) {
  size_t n = 0;
  while (n < file_name.size() && file_name[n] >= '0' && file_name[n] <= '9') ++n;
  uint64_t pid = 0;
  if (n == 0 || !absl::SimpleAtoi(file_name.substr(0, n), &pid)) return 0;
  return pid;
}

absl::StatusOr<std::vector<std::string>> ListReportFiles(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) {
    return absl::ErrnoToStatus(ec.value(), absl::StrCat("cannot read report directory ", dir));
  }
  std::vector<std::tuple<uint64_t, uint64_t, std::string>> found;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!absl::EndsWith(name, ".json")) continue;
    std::error_code type_ec;
    if (!it->is_regular_file(type_ec)) continue;
    found.emplace_back(PidFromReportName(name), ExecGeneration(name), name);
  }
  if (ec) {
    return absl::ErrnoToStatus(ec.value(), absl::StrCat("cannot read report directory ", dir));
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> paths;
  paths.reserve(found.size());
  for (const auto& [pid, gen, name] : found) paths.push_back((fs::path(dir) / name).string());
  return paths;
}

}  // namespace vmashadow
