#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# keel as the client: examples/echo_client against a kernel echo server gets every byte
# back; examples/bulk recv counts exactly the bytes the kernel sends; bulk send delivers
# exactly BYTES to a kernel receiver.
#   test/examples/client.sh BUILD/examples     (root; exit 77 = skipped)
set -uo pipefail
source "$(dirname "$0")/ex_lab.sh"

ex_test_init ex-client "$@"
lab_require_cmd ncat ncat

# echo_client -> kernel echo server (Python: echoes, half-closes after EOF).
srv_log=$(mktemp)
lab_nsx $EX_CLIENT serve-echo 7000 >"$srv_log" 2>&1 &
for _ in $(seq 50); do grep -q listening "$srv_log" && break; sleep 0.1; done
ex_run 60 echo_client "$LAB_KERNEL_IP" 7000 4M 1000
rc=$?
lab_check "echo_client: 4 MiB in 1000-byte writes came back intact" \
	bash -c '[ "$1" = 0 ] && grep -q "^echo_client: 4194304 bytes in .* ok$" <<<"$2"' _ "$rc" "$LAB_REPLY"
rm -f "$srv_log"

# Kernel -> bulk recv: exactly the bytes sent, counted.
ex_start bulk recv 5001
bytes=$((48 * 1024 * 1024 + 12345))
lab_nsx /usr/bin/python3 -c "
import socket, sys
s = socket.create_connection(('$LAB_KEEL_IP', 5001), timeout=30)
block = bytes(range(256)) * 256; left = $bytes
while left > 0:
    left -= s.send(block[:min(left, len(block))])
s.shutdown(socket.SHUT_WR); s.recv(1); s.close()"
for _ in $(seq 50); do grep -q 'bulk recv: .* bytes' "$LAB_DIR/pmd.out" && break; sleep 0.1; done
sed 's/^/    /' "$LAB_DIR/pmd.out"
lab_check "bulk recv counted exactly $bytes bytes" grep -q "^bulk recv: $bytes bytes in" "$LAB_DIR/pmd.out"
ex_stop

# bulk send -> kernel receiver: exactly BYTES arrive.
rcv_out=$(mktemp)
lab_nsx ncat -l --recv-only "$LAB_KERNEL_IP" 5002 | wc -c >"$rcv_out" &
sleep 0.3
ex_run 60 bulk send "$LAB_KERNEL_IP" 5002 64M
rc=$?
for _ in $(seq 50); do [ -s "$rcv_out" ] && break; sleep 0.1; done
lab_check "bulk send exits 0" [ "$rc" = 0 ]
lab_check "the kernel received exactly 64 MiB from bulk send" [ "$(cat "$rcv_out")" = $((64 << 20)) ]
rm -f "$rcv_out"
lab_test_end
