#!/usr/bin/env bash
# The project's two entry points (README "Set up"):
#   bash tests/run.sh demo   install what is needed, build, run the main job
#   bash tests/run.sh test   install what is needed, build, run the whole suite
# Options after the mode: --long (soak/fuzz lengths), --build-dir=DIR.
# Run as root on Debian 12: the packages come from apt, and the kernel-oracle
# tests lower vm.max_map_count (always restored) and map below 64 KiB.
set -euo pipefail
mode="${1:-test}"
shift || true
long=0
build=build
for arg in "$@"; do
  case "$arg" in
    --long) long=1 ;;
    --build-dir=*) build="${arg#--build-dir=}" ;;
    *) echo "run.sh: unknown option '$arg'" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."

packages=(build-essential meson ninja-build pkg-config git clang-format
          libboost-dev libabsl-dev libgtest-dev libgmock-dev libbenchmark-dev)
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

if [[ -f "$build/build.ninja" ]]; then
  meson setup --reconfigure "$build" >/dev/null
else
  meson setup "$build" --buildtype=debugoptimized >/dev/null
fi
ninja -C "$build"

case "$mode" in
  demo)
    exec "$build/tests/kernel/kernel_oracle" --seeds=1 --ops=20000
    ;;
  test)
    export VMASHADOW_LONG=$long
    set +e
    meson test -C "$build" --print-errorlogs --num-processes 2
    rc=$?
    set -e
    log="$build/meson-logs/testlog.txt"
    ok=$(grep -cE '^ *[0-9]+/[0-9]+ .* OK ' "$log" || true)
    bad=$(grep -cE '^ *[0-9]+/[0-9]+ .* (FAIL|TIMEOUT|ERROR) ' "$log" || true)
    skip=$(grep -cE '^ *[0-9]+/[0-9]+ .* SKIP ' "$log" || true)
    echo "${ok} passed, ${bad} failed, ${skip} skipped"
    exit $rc
    ;;
  *)
    echo "run.sh: mode must be 'demo' or 'test'" >&2
    exit 2
    ;;
esac
