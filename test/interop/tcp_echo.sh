#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# TCP interop 2: echo from the kernel: 1 MiB of random bytes comes back identical; 1000
# concurrent connections (asyncio) each echo 16 KiB intact; chargen streams its lines.
#   test/interop/tcp_echo.sh [path/to/keel-pmd]     (root; exit 77 = skipped)
set -uo pipefail
source "$(dirname "$0")/lab.sh"
CLIENT="/usr/bin/python3 $(dirname "$0")/tcp_client.py"

lab_test_init tcp-echo "$@"
lab_pmd_start --serve echo,discard,chargen,http
lab_check "1 MiB random through echo, identical" lab_nsx $CLIENT echo "$LAB_KEEL_IP" 7 1048576 7
lab_check "1000 concurrent echo connections x 16 KiB" lab_nsx $CLIENT echo-many "$LAB_KEEL_IP" 7 1000 16384
lines=$(lab_nsx timeout 3 bash -c "exec 3<>/dev/tcp/$LAB_KEEL_IP/19; head -c 7400 <&3" | tr -d '\r' | head -n 3)
first=$(printf '%s\n' "$lines" | sed -n 1p)
second=$(printf '%s\n' "$lines" | sed -n 2p)
want1=$(/usr/bin/python3 -c 'print("".join(chr(32 + i % 95) for i in range(72)))')
want2=$(/usr/bin/python3 -c 'print("".join(chr(32 + (i + 1) % 95) for i in range(72)))')
lab_check "chargen: first line is RFC 864's" [ "$first" = "$want1" ]
lab_check "chargen: second line starts one character later" [ "$second" = "$want2" ]
sleep 1
# 1000 connections bursting 16 MB at once overflow the tap's kernel queue
# (txqueuelen 1000): those drops are real losses, and keel recovers from them.
lab_say "kernel tap statistics (TX dropped = frames the kernel could not queue to keel):"
lab_nsx ip -s link show "$LAB_TAP" | sed 's/^/    /'
lab_cmd "show conns"
LAB_TOLERATED="$LAB_TCP_RECOVERY $LAB_TCP_LATE tcp_ooo_dropped"
lab_check_drops
lab_pmd_quit
lab_test_end
