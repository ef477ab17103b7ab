#!/usr/bin/env bash
# Builds keel and runs every test: unit tests, interop tests against the Linux
# kernel (root: namespaces and tap), the AddressSanitizer+UBSan build of the unit
# tests, and a bounded libFuzzer run. Installs what is missing first.
# Safe to run twice. Exit status 0 means everything passed.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
tools/build.sh
meson test -C "${KEEL_BUILD_DIR:-build}" --print-errorlogs --num-processes 2
tools/run-asan.sh
tools/run-fuzz.sh "${KEEL_FUZZ_SECONDS:-60}"
echo "keel: all tests passed"
