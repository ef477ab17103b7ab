#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Multi-core: keel-pmd --instances 2 serves 10,000 TCP connections from the kernel, each
# echoing 64 random bytes (200 at a time); every one must come back intact, both instances
# must have served some, and the steering counters must say how the port delivered them.
#   test/interop/tcp_steer.sh [path/to/keel-pmd] [tap|af_packet]     (root; exit 77 = skipped)
#     tap        net_tap with 2 queues: the kernel picks a queue per flow (its own hash, then
#                the queue that last sent the flow); what lands on the wrong one is forwarded
#     af_packet  net_af_packet on a veth, one queue: instance 0 receives everything and
#                steers it in software; instance 1 transmits through instance 0's queue
set -uo pipefail
source "$(dirname "$0")/lab.sh"
CLIENT="/usr/bin/python3 $(dirname "$0")/tcp_client.py"
MODE=${2:-tap}
CONNS=10000

lab_test_init "tcp-steer-$MODE" "${1:-}"
lab_require_cmd ethtool ethtool
# Two lcores: instance 0 on the worker lcore (core 1), instance 1 on a thread beside the
# main lcore (core 0).
for i in "${!LAB_EAL_ARGS[@]}"; do [ "${LAB_EAL_ARGS[i]}" = "-l" ] && LAB_EAL_ARGS[i + 1]=0-1; done
case "$MODE" in
tap) ;;
af_packet) lab_veth_up ",qpairs=1" ;;
*) lab_abort "mode '$MODE': tap or af_packet" ;;
esac
lab_pmd_start --instances 2 --serve echo,discard,http

# inst_stat INSTANCE NAME: a counter of one instance from the last `show stats`.
inst_stat() {
	awk -v i="instance $1:" -v n="$2" '/^instance [0-9]+:/ { on = ($0 == i) }
		on && $1 == n && NF == 2 { print $2; f = 1 } END { if (!f) print 0 }' <<<"$LAB_REPLY"
}

lab_cmd "show port"
lab_check "the port has the queues the mode expects" \
	grep -q "queues $([ "$MODE" = tap ] && echo 2 || echo 1)" <<<"$LAB_REPLY"
lab_check "kernel pings keel (ICMP echo steered by its address pair)" lab_nsx ping -c 3 -i 0.2 -W 2 -q "$LAB_KEEL_IP"
t0=$(lab_now_ms)
lab_check "$CONNS echo connections x 64 bytes, 200 at a time, all intact" \
	lab_nsx $CLIENT echo-many "$LAB_KEEL_IP" 7 "$CONNS" 64 200
lab_say "echo connections took $(($(lab_now_ms) - t0)) ms"
lab_check "http: 100 keep-alive requests" lab_nsx $CLIENT keepalive "$LAB_KEEL_IP" 80 100
sleep 1
lab_cmd "show stats"
p0=$(inst_stat 0 tcp_passive_opens) p1=$(inst_stat 1 tcp_passive_opens)
f0=$(inst_stat 0 steer_forwarded) f1=$(inst_stat 1 steer_forwarded)
r0=$(inst_stat 0 steer_received) r1=$(inst_stat 1 steer_received)
rx0=$(inst_stat 0 rx_packets) rx1=$(inst_stat 1 rx_packets)
lab_say "passive opens: instance 0 $p0, instance 1 $p1; forwarded 0->1 $f0, 1->0 $f1;" \
	"received from the port: instance 0 $rx0, instance 1 $rx1 frames"
lab_check "instance 0 served connections" [ "$p0" -gt 0 ]
lab_check "instance 1 served connections" [ "$p1" -gt 0 ]
# The echo connections plus the one keep-alive connection; the pings open none.
lab_check "passive opens sum to $((CONNS + 1))" [ $((p0 + p1)) = $((CONNS + 1)) ]
lab_check "every forwarded frame was received by its owner" eval '[ "$f0" = "$r1" ] && [ "$f1" = "$r0" ]'
lab_check "no steering ring overflowed" [ "$(lab_stat steer_ring_full)" = 0 ]
lab_check "ARP copied to the other instance" [ "$(lab_stat steer_arp_copies)" -gt 0 ]
if [ "$MODE" = af_packet ]; then
	lab_check "instance 1 has no queue: receives nothing from the port" [ "$rx1" = 0 ]
	lab_check "instance 0 forwarded instance 1's flows" [ "$f0" -gt 0 ]
	lab_check "instance 1 transmitted through instance 0" [ "$(inst_stat 1 steer_tx_handoff)" -gt 0 ]
else
	lab_check "both queues received" eval '[ "$rx0" -gt 0 ] && [ "$rx1" -gt 0 ]'
	lab_check "no TX hand-off (each instance has its queue)" [ "$(lab_stat steer_tx_handoff)" = 0 ]
	lab_say "forwarded: $((f0 + f1)) of $((rx0 + rx1)) received frames"
fi
LAB_TOLERATED="$LAB_TCP_RECOVERY $LAB_TCP_LATE"
# 200 handshakes at a time against a listener backlog of 128: on a loaded machine the SYN
# queue fills and SYN cookies answer the rest (the designed outcome; every connection is
# still checked intact above).
LAB_TOLERATED+=" tcp_listen_overflows tcp_syn_cookies_sent tcp_syn_cookies_ok"
# The tap's kernel side sends a flow's first frames to a queue of its own choosing, then
# to the queue keel answered from (tun learns it from our transmissions): a frame still
# on its way through the steering ring is overtaken by the next one on the right queue.
# An overtaken pure ACK then fails PAWS (an older timestamp), harmlessly; on the
# single-queue port everything passes through one ring in order, and none is dropped.
[ "$MODE" = tap ] && LAB_TOLERATED+=" tcp_paws_drops"
lab_check_drops
lab_pmd_quit
lab_test_end
