#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Interop 1: the Linux kernel pings keel over a tap: 20 echo requests, 20 replies, and the
# kernel learns keel's MAC by ARP on the way.
#   test/interop/kernel_ping.sh [path/to/keel-pmd]     (root; exit 77 = skipped)
# shellcheck disable=SC2119  # lab_pmd_start takes keel-pmd options, not the script's
set -uo pipefail
# shellcheck source=lab.sh
source "$(dirname "$0")/lab.sh"

lab_test_init kernel-ping "$@"
lab_pmd_start
lab_pmd_mac

lab_kping -c 20 -i 0.2 -W 5 "$LAB_KEEL_IP"
lab_check "kernel ping: 20 of 20 replies" lab_ping_all 20
lab_say "kernel -> keel rtt min/avg/max/mdev: $(lab_ping_rtt)"

neigh=$(lab_nsx ip neigh show "$LAB_KEEL_IP" dev "$LAB_TAP")
lab_say "kernel neighbour entry: $neigh"
lab_check "kernel resolved $LAB_KEEL_IP to keel's MAC $LAB_PMD_MAC" \
	grep -qi "lladdr $LAB_PMD_MAC" <<<"$neigh"

lab_check_drops
lab_check "keel answered 20 echo requests" [ "$(lab_stat icmp_echo_replies_out)" = 20 ]
lab_pmd_quit
lab_test_end
