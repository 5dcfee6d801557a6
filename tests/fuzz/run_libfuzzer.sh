#!/bin/sh
# Runs the libFuzzer build of the trace reader fuzz target for a while
# (VMASHADOW_FUZZ_SECONDS, default 10) on the seed traces the deterministic
# build writes. Usage: run_libfuzzer.sh LIBFUZZER_BINARY DETERMINISTIC_BINARY
set -eu
fuzzer="$1"
driver="$2"
seconds="${VMASHADOW_FUZZ_SECONDS:-10}"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/corpus"
"$driver" --write-seeds="$dir/corpus"
"$fuzzer" -max_total_time="$seconds" -max_len=8192 -print_final_stats=1 \
  -artifact_prefix="$dir/" "$dir/corpus" 2>&1 | tail -n 12
