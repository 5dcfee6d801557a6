#!/bin/sh
# Runs alloc_workload under glibc malloc, jemalloc, tcmalloc and mimalloc with
# `vmashadow run --trace`, then writes each one's report (text and JSON) and
# plot (SVG) into OUT (default examples/out), and prints the key numbers side
# by side. Usage: examples/run_allocators.sh [BUILD_DIR] [OUT]
set -eu
build="${1:-build}"
out="${2:-examples/out}"
mkdir -p "$out"
v="$build/tools/vmashadow"
w="$build/examples/alloc_workload"
lib=/usr/lib/x86_64-linux-gnu
for a in glibc jemalloc tcmalloc mimalloc; do
  case "$a" in
    glibc) pre="" ;;
    jemalloc) pre="$lib/libjemalloc.so.2" ;;
    tcmalloc) pre="$lib/libtcmalloc.so.4" ;;
    mimalloc) pre="$lib/libmimalloc.so.2" ;;
  esac
  LD_PRELOAD="$pre" "$v" run --check=every --trace="$out/$a.trace" -- "$w" >/dev/null 2>"$out/$a.run.txt"
  "$v" replay --quiet "$out/$a.trace" > "$out/$a.replay.txt"
  "$v" report "$out/$a.trace" > "$out/$a.report.txt"
  "$v" report --json "$out/$a.trace" > "$out/$a.report.json"
  "$v" plot "$out/$a.trace" -o "$out/$a.svg"
done
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
print(f"{'allocator':10} {'events':>7} {'mmap':>6} {'munmap':>7} {'mprotect':>8} {'madvise':>8} "
      f"{'brk':>5} {'peak VMAs':>9} {'end VMAs':>8} {'unmerged':>8} {'results':>9}")
for a in ("glibc", "jemalloc", "tcmalloc", "mimalloc"):
    d = json.load(open(f"{out}/{a}.report.json"))
    c = d["events_by_call"]
    acc = d["accuracy"]
    print(f"{a:10} {d['events']:>7} {c['mmap']:>6} {c['munmap']:>7} {c['mprotect']:>8} "
          f"{c['madvise']:>8} {c['brk']:>5} {d['vma_count']['peak']:>9} {d['vma_count']['end']:>8} "
          f"{d['unmerged']['pairs']:>8} {acc['results_hit']:>4}/{acc['results']:<4}")
PY
