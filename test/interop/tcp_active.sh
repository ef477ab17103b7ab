#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# TCP interop 4: keel opens the connection. keel-pmd `connect`s to a kernel echo server
# (Python), sends lines both ways, half-closes with `shutdown`, and the kernel side sees
# EOF, echoes, then closes too.
#   test/interop/tcp_active.sh [path/to/keel-pmd]     (root; exit 77 = skipped)
set -uo pipefail
source "$(dirname "$0")/lab.sh"

lab_test_init tcp-active "$@"
lab_pmd_start
srv_log=$(mktemp)
lab_nsx /usr/bin/python3 "$(dirname "$0")/tcp_client.py" serve-echo 5001 >"$srv_log" 2>&1 &
srv=$!
for _ in $(seq 50); do grep -q listening "$srv_log" && break; sleep 0.1; done
lab_cmd "connect $LAB_KERNEL_IP 5001" 30
conn=$(sed -n 's/.*conn \([0-9][0-9]*\).*/\1/p' <<<"$LAB_REPLY" | head -n1)
lab_check "connect printed a connection number" [ -n "$conn" ]
sleep 0.5
lab_cmd "send $conn hello from keel"
lab_cmd "send $conn second line"
sleep 0.5
lab_cmd "shutdown $conn"
for _ in $(seq 50); do grep -q closed "$srv_log" && break; sleep 0.1; done
sleep 0.5
lab_cmd "show conns"
out=$(cat "$LAB_DIR/pmd.out")
lab_check "keel received its first line back" grep -q "hello from keel" <<<"$out"
lab_check "keel received its second line back" grep -q "second line" <<<"$out"
lab_check "kernel server saw EOF after keel's half-close and closed" grep -q "closed" "$srv_log"
kill "$srv" 2>/dev/null
wait "$srv" 2>/dev/null
cat "$srv_log" | sed 's/^/    /'
rm -f "$srv_log"
LAB_TOLERATED="$LAB_TCP_RECOVERY"
lab_check_drops
lab_pmd_quit
lab_test_end
