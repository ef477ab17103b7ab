#!/usr/bin/env bash
# Builds keel with AddressSanitizer + UndefinedBehaviorSanitizer (gcc) and runs
# the unit, API and in-process shm tests with every sanitizer report fatal.
#
#   tools/run-asan.sh [MESON_TEST_ARGS...]
#
# The build directory is build-asan/ (or $KEEL_ASAN_BUILD_DIR). DPDK's libraries
# are not instrumented; that is fine: ASan still checks keel's own memory, and
# the mempools' in-use counts (checked by the tests) cover the mbufs.
# Exit status: 0 if the unit tests pass with no sanitizer report, else non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

dir=${KEEL_ASAN_BUILD_DIR:-build-asan}
# b_lundef=false: with -fsanitize the sanitizer runtimes resolve symbols at load time.
opts=(-Db_sanitize=address,undefined -Db_lundef=false -Dtests=true -Dfuzz=false)
if [[ -f $dir/build.ninja ]]; then
  out=$(meson configure "$dir" "${opts[@]}" 2>&1) ||
    { echo "$out" >&2; echo "run-asan: meson configure $dir failed" >&2; exit 2; }
else
  out=$(CC=${CC:-gcc} CXX=${CXX:-g++} meson setup "$dir" "${opts[@]}" 2>&1) ||
    { echo "$out" >&2; echo "run-asan: meson setup $dir failed" >&2; exit 2; }
fi
ninja -C "$dir"

# halt_on_error: the first report ends the test (UBSan would go on otherwise);
# abort_on_error: it ends with SIGABRT, which meson reports as a failure.
# Leak detection stays on; test/lsan.supp lists what DPDK itself keeps (see there).
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1}
if [[ -z ${LSAN_OPTIONS:-} && -f $root/test/lsan.supp ]]; then
  export LSAN_OPTIONS=suppressions=$root/test/lsan.supp:print_suppressions=0
fi
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}

rc=0
log=$dir/meson-logs/testlog.txt
# A report that somehow did not fail its test still fails the run.
check_log() {
  if [[ -f $log ]] && grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$log"; then
    echo "run-asan: sanitizer report in $log" >&2
    grep -E -A20 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$log" | head -60 >&2
    rc=1
  fi
}
# One meson run (so testlog.json, read by test.sh's closing line, holds every test):
# the packet-level unit tests; the native API's (two stacks and two runtimes in one
# process); the intra-node channels inside one process ('shm-cross' needs hugepages and
# root); TLS: the record layer and sessions against OpenSSL, tls::Connection over two stacks.
meson test -C "$dir" --no-rebuild --print-errorlogs unit api shm tls-record "$@" || rc=$?
check_log
if ((rc != 0)); then
  echo "run-asan: FAILED" >&2
  exit 1
fi
echo "run-asan: unit, API, shm and tls-record tests passed under ASan + UBSan"
