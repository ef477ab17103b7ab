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
# One closing line over both meson runs (plain and sanitized): 'N passed, N failed'.
/usr/bin/python3 - "${KEEL_BUILD_DIR:-build}" "${KEEL_ASAN_BUILD_DIR:-build-asan}" <<'PY'
import json, sys
passed = failed = skipped = 0
for d in sys.argv[1:]:
    try:
        lines = open(f"{d}/meson-logs/testlog.json").read().splitlines()
    except OSError:
        continue
    for line in lines:
        r = json.loads(line).get("result")
        if r in ("OK", "EXPECTEDFAIL"): passed += 1
        elif r == "SKIP": skipped += 1
        else: failed += 1
print(f"keel tests: {passed} passed, {failed} failed, {skipped} skipped")
PY
echo "keel: all tests passed"
