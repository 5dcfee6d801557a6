#!/usr/bin/env bash
# The project's two entry points (README "Set up"):
#   bash tests/run.sh demo   install what is needed, build, run the main job
#   bash tests/run.sh test   install what is needed, build, run the whole suite
# and named modes:
#   bash tests/run.sh repeat      the tests that failed elsewhere once, 20-50 runs each
#   bash tests/run.sh selftests   the kernel's mm/proc/mincore selftests natively
#                                 and under vmashadow (tests/selftests; --strict:
#                                 divergences fail too)
# Options after the mode: --long (soak/fuzz lengths), --build-dir=DIR, --strict (selftests).
# Run as root on Debian 12: the packages come from apt, and the kernel-oracle
# tests lower vm.max_map_count (always restored) and map below 64 KiB.
set -euo pipefail
mode="${1:-test}"
shift || true
long=0
strict=0
build=build
for arg in "$@"; do
  case "$arg" in
    --long) long=1 ;;
    --strict) strict=1 ;;
    --build-dir=*) build="${arg#--build-dir=}" ;;
    *) echo "run.sh: unknown option '$arg'" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."

packages=(build-essential meson ninja-build pkg-config git clang-format
          libboost-dev libabsl-dev libgtest-dev libgmock-dev libbenchmark-dev
          python3 perl sqlite3 libjemalloc2 libgoogle-perftools4 libmimalloc2.0
          chromium clang libclang-rt-14-dev valgrind gdb golang-go)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "== installing: ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The kernel selftests (suite 'selftests') are built from Debian's kernel
# source package; without it the smoke test is skipped, so a failure here
# (e.g. no bookworm-security in the apt sources) is reported, not fatal.
if [[ "$mode" == test || "$mode" == selftests ]]; then
  st_missing=()
  for p in linux-source-6.12 libcap-dev liburing-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || st_missing+=("$p")
  done
  if ((${#st_missing[@]})); then
    echo "== installing for the kernel selftests: ${st_missing[*]}"
    if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
      "${st_missing[@]}" >/dev/null ||
      echo "== could not install ${st_missing[*]}: the selftests suite will be skipped"
  fi
fi

if [[ -f "$build/build.ninja" ]]; then
  meson setup --reconfigure "$build" >/dev/null
else
  meson setup "$build" --buildtype=debugoptimized >/dev/null
fi
ninja -C "$build"

case "$mode" in
  demo)
    # The main job: a real program (python3) under vmashadow run, every mm
    # call checked against the kernel; the summary paragraph ends the output.
    exec "$build/tools/vmashadow" run --check=every -- /usr/bin/python3 -c '
import json, mmap, threading, zlib
def work(n):
    blocks = [bytearray(100000 + n * 4096) for _ in range(50)]
    return sum(map(len, blocks))
threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
[t.start() for t in threads]; [t.join() for t in threads]
m = mmap.mmap(-1, 1 << 22); m.write(zlib.compress(json.dumps(list(range(100000))).encode()))
print("python3 done:", m.tell(), "compressed bytes")'
    ;;
  test)
    out=$(mktemp)
    set +e
    meson test -C "$build" --print-errorlogs --num-processes 2 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    set -e
    # The kernel-oracle counts (ops, compares, placements, errnos, mismatches).
    grep -h "^kernel-oracle total\|^kernel-oracle: \(PASS\|FAIL\)\|^pagetable-oracle ops=\|^pagetable-oracle: \(PASS\|FAIL\)" \
      "$build/meson-logs/testlog.txt" || true
    count() { grep -E "^$1: +[0-9]+" "$out" | awk '{print $2}' | head -n1; }
    ok=$(count Ok); fail=$(count Fail); timeout=$(count Timeout); skip=$(count Skipped)
    rm -f "$out"
    if ((long)); then
      # Soak: more seeds and steps than the default suite, seeds from the clock.
      echo "== long: kernel oracle soak (randomised layout, seeds from the clock)"
      "$build/tests/kernel/kernel_oracle" --long --seed-base=time || fail=$(( ${fail:-0} + 1 ))
      echo "== long: differential test, 1,000,000 operations per seed"
      VMASHADOW_DIFF_OPS=1000000 "$build/tests/differential_test" --gtest_brief=1 ||
        fail=$(( ${fail:-0} + 1 ))
      echo "== long: trace reader fuzzing (5,000,000 mutations; libFuzzer 300 s)"
      "$build/tests/trace_reader_fuzz" --iterations=5000000 --seed=$(date +%s) ||
        fail=$(( ${fail:-0} + 1 ))
      if [[ -x "$build/tests/trace_reader_libfuzzer" ]]; then
        VMASHADOW_FUZZ_SECONDS=300 tests/fuzz/run_libfuzzer.sh "$build/tests/trace_reader_libfuzzer" \
          "$build/tests/trace_reader_fuzz" || fail=$(( ${fail:-0} + 1 ))
      fi
      [[ ${fail:-0} -eq 0 ]] || rc=1
    fi
    echo "${ok:-0} passed, $(( ${fail:-0} + ${timeout:-0} )) failed, ${skip:-0} skipped"
    exit $rc
    ;;
  repeat)
    # Tests that once failed on machines other than ours, run many times:
    # each must pass every time (issue 19: 20 runs each, mm_threads 50).
    rc=0
    for spec in mm_threads:50 itest_altstack:20 maps_text_test:20 trace_maps:20 \
                preload_exercise_result_miss:20 itest_stw:20 itest_stw_off:20 itest_prof:20 \
                itest_handlers:20 itest_cancel:20 itest_longjmp:20; do
      name=${spec%%:*}
      n=${spec##*:}
      echo "== repeat: $name x $n"
      meson test -C "$build" --repeat "$n" --num-processes 1 --print-errorlogs "$name" \
        >"$build/meson-logs/repeat-$name.txt" 2>&1 || rc=1
      ok=$(grep -cE "^ *[0-9]+/[0-9]+ .* OK " "$build/meson-logs/repeat-$name.txt" || true)
      echo "$name: $ok of $n runs passed"
      [[ $ok -eq $n ]] || rc=1
    done
    exit $rc
    ;;
  selftests)
    # The kernel's mm/proc/mincore selftests, each natively and under
    # vmashadow run --check=every; a table of events/divergences per test.
    # Fails when a result or exit status differs from native (with --strict,
    # also when a report has divergences).
    args=(--build-dir="$build" --install)
    ((strict)) && args+=(--strict)
    exec python3 tests/selftests/selftests.py "${args[@]}"
    ;;
  *)
    echo "run.sh: mode must be 'demo', 'test', 'repeat' or 'selftests'" >&2
    exit 2
    ;;
esac
