#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan + coverage) and fuzzes
# the receive path for a bounded time.
#
#   tools/run-fuzz.sh [SECONDS] [-- LIBFUZZER_ARGS...]
#
# SECONDS defaults to 60. The build directory is build-fuzz/ (or
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
ninja -C "$dir" test/fuzz/fuzz_rx || { echo "run-fuzz: build failed" >&2; exit 2; }

work=$(mktemp -d -t keel-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$work/artifacts"
cp test/fuzz/corpus/* "$work/corpus/"
seeds=$(ls "$work/corpus" | wc -l)

# Any sanitizer report is fatal and shows where it came from. Leak detection
# stays on (libFuzzer checks each input that allocates more than it frees).
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1:abort_on_error=0:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
log=$work/fuzz.log
echo "run-fuzz: fuzz_rx for ${seconds}s from $seeds seeds"
set +e
"$dir/test/fuzz/fuzz_rx" -max_total_time="$seconds" -max_len=8192 -timeout=30 \
  -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$@" "$work/corpus" >"$log" 2>&1
rc=$?
set -e

grep -E '^(#[0-9]+[[:space:]]+DONE|stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb))' \
  "$log" || true
# libFuzzer's exit status says whether it found something; the log is checked
# too, in case a report somewhere did not end the run.
if ((rc != 0)) || grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|fuzz_rx: check failed' "$log" ||
   [[ -n $(ls -A "$work/artifacts") ]]; then
  keep="$dir/fuzz-artifacts"
  mkdir -p "$keep"
  cp "$work"/artifacts/* "$keep/" 2>/dev/null || true
  cp "$log" "$keep/fuzz.log"
  echo "run-fuzz: FAILED (libFuzzer exit $rc); the log and crashing inputs are in $keep/" >&2
  grep -E -A30 'ERROR:|runtime error:|check failed' "$log" | head -60 >&2 || tail -40 "$log" >&2
  exit 1
fi
echo "run-fuzz: passed, corpus $seeds -> $(ls "$work/corpus" | wc -l) inputs"
