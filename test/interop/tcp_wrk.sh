#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# TCP interop 3: wrk -c 100 -t 2 -d 10s against /bytes/1024: no socket errors, no non-2xx.
#   test/interop/tcp_wrk.sh [path/to/keel-pmd]     (root; exit 77 = skipped)
set -uo pipefail
source "$(dirname "$0")/lab.sh"

lab_test_init tcp-wrk "$@"
lab_require_cmd wrk wrk
lab_pmd_start --serve http
out=$(lab_nsx wrk -c 100 -t 2 -d "${KEEL_WRK_SECONDS:-10}s" "http://$LAB_KEEL_IP/bytes/1024" 2>&1)
printf '%s\n' "$out" | sed 's/^/    /'
reqs=$(sed -n 's/^ *\([0-9][0-9]*\) requests in.*/\1/p' <<<"$out")
lab_say "wrk: $(grep 'Requests/sec' <<<"$out")"
lab_check "wrk completed requests" [ "${reqs:-0}" -gt 0 ]
lab_check "no socket errors" bash -c "! grep -q 'Socket errors' <<<\"\$1\"" _ "$out"
lab_check "no non-2xx responses" bash -c "! grep -q 'Non-2xx' <<<\"\$1\"" _ "$out"
LAB_TOLERATED="$LAB_TCP_RECOVERY $LAB_TCP_LATE"
lab_check_drops
lab_pmd_quit
lab_test_end
