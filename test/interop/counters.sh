#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Interop 5: all the traffic of tests 1-4 in one run, then `show stats`: the counters match
# the traffic exactly, no drop counter moved (they are printed), the instance and the port
# agree on packet counts, and keel-pmd exits 0 on `quit`, leaving nothing in the namespace.
#   test/interop/counters.sh [path/to/keel-pmd]     (root; exit 77 = skipped)
# shellcheck disable=SC2119  # lab_pmd_start takes keel-pmd options, not the script's
set -uo pipefail
# shellcheck source=lab.sh
source "$(dirname "$0")/lab.sh"

lab_test_init counters "$@"
lab_require_cmd arping iputils-arping
lab_pmd_start

lab_kping -c 20 -i 0.2 -W 5 "$LAB_KEEL_IP"
lab_check "kernel ping: 20 of 20 replies" lab_ping_all 20
lab_say "kernel: arping -c 3 -w 10 -I $LAB_TAP $LAB_KEEL_IP"
lab_nsx arping -c 3 -w 10 -I "$LAB_TAP" "$LAB_KEEL_IP" | sed 's/^/    /'
lab_cmd "ping $LAB_KERNEL_IP 5 200"
lab_check "keel ping: 5 of 5 replies" lab_ping_all 5
lab_kping -c 3 -i 0.2 -s 4000 -W 5 "$LAB_KEEL_IP"
lab_check "kernel ping -s 4000: 3 of 3 replies" lab_ping_all 3

lab_check_drops
expect() {  # expect COUNTER VALUE
	local v
	v=$(lab_stat "$1")
	lab_check "$1 = $2 (got $v)" [ "$v" = "$2" ]
}
expect icmp_echo_requests 23
expect icmp_echo_replies_out 23
expect icmp_echo_requests_out 5
expect icmp_echo_replies_in 5
expect ip_frag_in 9
expect ip_reassembled 3
arp_in=$(lab_stat arp_requests_in) arp_out=$(lab_stat arp_replies_out)
lab_check "ARP requests in >= 3 (arping: $arp_in), all answered ($arp_out)" \
	[ "$arp_in" -ge 3 -a "$arp_in" = "$arp_out" ]
port_rx=$(sed -n 's/^port 0: rx \([0-9]*\) pkts.*/\1/p' <<<"$LAB_REPLY")
port_tx=$(sed -n 's/^port 0: .* tx \([0-9]*\) pkts.*/\1/p' <<<"$LAB_REPLY")
lab_check "instance rx_packets = port rx ($port_rx)" [ "$(lab_stat rx_packets)" = "$port_rx" ]
lab_check "instance tx_packets = port tx ($port_tx)" [ "$(lab_stat tx_packets)" = "$port_tx" ]

lab_pmd_quit
left=$(ip netns pids "$LAB_NS" | tr '\n' ' ')
lab_check "no process left in the namespace${left:+ ($left)}" [ -z "$left" ]
lab_test_end
