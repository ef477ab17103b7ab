#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan + coverage) and fuzzes
# each for a bounded time: fuzz_rx (the receive path, seeds test/fuzz/corpus),
# then fuzz_tls_record (the TLS record layer, seeds test/fuzz/corpus_tls).
#
#   tools/run-fuzz.sh [SECONDS] [-- LIBFUZZER_ARGS...]
#
# SECONDS (per target) defaults to 60. The build directory is build-fuzz/ (or
# $KEEL_FUZZ_BUILD_DIR). The fuzzer works on a copy of test/fuzz/corpus in a
# temporary directory, so the seed corpus is never modified; a crashing input is
# kept in $BUILD/fuzz-artifacts/ (add it to test/fuzz/corpus once the bug is
# fixed). Exit status: 0 if no crash, leak, timeout or sanitizer report; 1
# otherwise; 2 on a usage or build error.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60
if [[ $# -gt 0 && $1 != -- ]]; then
  seconds=$1
  shift
fi
[[ $# -gt 0 && $1 == -- ]] && shift
if ! [[ $seconds =~ ^[0-9]+$ ]] || ((seconds == 0)); then
  echo "run-fuzz: SECONDS must be a positive integer, got '$seconds'" >&2
  exit 2
fi

dir=${KEEL_FUZZ_BUILD_DIR:-build-fuzz}
if [[ -f $dir/build.ninja ]]; then
  out=$(meson configure "$dir" -Dfuzz=true -Dtests=false 2>&1) ||
    { echo "$out" >&2; echo "run-fuzz: meson configure $dir failed" >&2; exit 2; }
else
  out=$(CC=clang CXX=clang++ meson setup "$dir" -Dfuzz=true -Dtests=false 2>&1) ||
    { echo "$out" >&2; echo "run-fuzz: meson setup $dir failed (is clang++ installed?)" >&2; exit 2; }
fi
ninja -C "$dir" test/fuzz/fuzz_rx test/fuzz/fuzz_tls_record || { echo "run-fuzz: build failed" >&2; exit 2; }

# Any sanitizer report is fatal and shows where it came from. Leak detection
# stays on (libFuzzer checks each input that allocates more than it frees).
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1:abort_on_error=0:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
work=$(mktemp -d -t keel-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT

# run_target NAME SEED_DIR MAX_LEN [LIBFUZZER_ARGS...]: a bounded run on a copy of the seeds.
run_target() {
  local name=$1 seeds_dir=$2 max_len=$3
  shift 3
  local w=$work/$name
  mkdir -p "$w/corpus" "$w/artifacts"
  cp "$seeds_dir"/* "$w/corpus/"
  local seeds log rc
  seeds=$(ls "$w/corpus" | wc -l)
  log=$w/fuzz.log
  echo "run-fuzz: $name for ${seconds}s from $seeds seeds"
  set +e
  "$dir/test/fuzz/$name" -max_total_time="$seconds" -max_len="$max_len" -timeout=30 \
    -print_final_stats=1 -artifact_prefix="$w/artifacts/" "$@" "$w/corpus" >"$log" 2>&1
  rc=$?
  set -e
  grep -E '^(#[0-9]+[[:space:]]+DONE|stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb))' \
    "$log" || true
  # libFuzzer's exit status says whether it found something; the log is checked
  # too, in case a report somewhere did not end the run.
  if ((rc != 0)) || grep -qE "ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|$name: check failed" "$log" ||
     [[ -n $(ls -A "$w/artifacts") ]]; then
    local keep="$dir/fuzz-artifacts/$name"
    mkdir -p "$keep"
    cp "$w"/artifacts/* "$keep/" 2>/dev/null || true
    cp "$log" "$keep/fuzz.log"
    echo "run-fuzz: $name FAILED (libFuzzer exit $rc); the log and crashing inputs are in $keep/" >&2
    grep -E -A30 'ERROR:|runtime error:|check failed' "$log" | head -60 >&2 || tail -40 "$log" >&2
    exit 1
  fi
  echo "run-fuzz: $name passed, corpus $seeds -> $(ls "$w/corpus" | wc -l) inputs"
}

run_target fuzz_rx test/fuzz/corpus 8192 "$@"
run_target fuzz_tls_record test/fuzz/corpus_tls 20000 "$@"
