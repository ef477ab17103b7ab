#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Interop 3: keel pings the kernel (keel-pmd `ping 198.18.0.1 5 200`): keel resolves the
# kernel's MAC by ARP and gets 5 echo replies.
#   test/interop/keel_ping.sh [path/to/keel-pmd]     (root; exit 77 = skipped)
# shellcheck disable=SC2119  # lab_pmd_start takes keel-pmd options, not the script's
set -uo pipefail
# shellcheck source=lab.sh
source "$(dirname "$0")/lab.sh"

lab_test_init keel-ping "$@"
lab_pmd_start

lab_cmd "ping $LAB_KERNEL_IP 5 200"
lab_check "keel ping: 5 of 5 replies" lab_ping_all 5
lab_say "keel -> kernel rtt min/avg/max: $(lab_ping_rtt)"

lab_cmd "show arp"
lab_check "keel's ARP table: $LAB_KERNEL_IP is $LAB_KERNEL_MAC" \
	grep -Eqi "^ *$LAB_KERNEL_IP +$LAB_KERNEL_MAC +reachable" <<<"$LAB_REPLY"

lab_check_drops
lab_check "keel got 5 echo replies" [ "$(lab_stat icmp_echo_replies_in)" = 5 ]
lab_pmd_quit
lab_test_end
