#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Interop 4: pings larger than the MTU (1500), fragmented both ways: keel reassembles the
# kernel's fragments and fragments its replies, and the kernel reassembles keel's; keel's
# own large pings go the other way round. Sizes: 1472 (a full 1500-byte frame, DF set),
# 4000 (3 fragments) and 1473 from keel (2 fragments, the second 1 byte long).
#   test/interop/fragments.sh [path/to/keel-pmd]     (root; exit 77 = skipped)
# shellcheck disable=SC2119  # lab_pmd_start takes keel-pmd options, not the script's
set -uo pipefail
# shellcheck source=lab.sh
source "$(dirname "$0")/lab.sh"

# Kernel IP counter from the namespace's /proc/net/snmp (e.g. ReasmOKs, FragCreates).
kernel_ip_stat() {
	# shellcheck disable=SC2016  # awk's own $fields
	lab_nsx awk -v n="$1" '$1 == "Ip:" && !h { for (i = 2; i <= NF; i++) col[$i] = i; h = 1; next }
		$1 == "Ip:" && h { print $col[n]; exit }' /proc/net/snmp
}

lab_test_init fragments "$@"
lab_pmd_start

lab_kping -c 3 -i 0.2 -s 1472 -M "do" -W 5 "$LAB_KEEL_IP"
lab_check "kernel ping -s 1472 -M do (full frame): 3 of 3 replies" lab_ping_all 3

lab_kping -c 3 -i 0.2 -s 4000 -W 5 "$LAB_KEEL_IP"
lab_check "kernel ping -s 4000 (fragmented): 3 of 3 replies" lab_ping_all 3
lab_check "replies carry the whole 4008-byte ICMP message" grep -q "^4008 bytes from" <<<"$LAB_REPLY"
lab_say "kernel -> keel 4000-byte rtt min/avg/max/mdev: $(lab_ping_rtt)"

lab_cmd "ping $LAB_KERNEL_IP 3 200 4000"
lab_check "keel ping size 4000 (fragmented): 3 of 3 replies" lab_ping_all 3
lab_say "keel -> kernel 4000-byte rtt min/avg/max: $(lab_ping_rtt)"

lab_cmd "ping $LAB_KERNEL_IP 3 200 1473"
lab_check "keel ping size 1473 (1-byte last fragment): 3 of 3 replies" lab_ping_all 3

lab_check_drops
# keel reassembled: 3 kernel requests of 4000, 3 kernel replies of 4000, 3 of 1473.
lab_check "keel reassembled 9 datagrams (got $(lab_stat ip_reassembled))" [ "$(lab_stat ip_reassembled)" = 9 ]
lab_check "keel received 24 fragments (got $(lab_stat ip_frag_in))" [ "$(lab_stat ip_frag_in)" = 24 ]
# The kernel reassembled keel's 3 replies of 4000 and its 6 large requests.
reasm_ok=$(kernel_ip_stat ReasmOKs) reasm_fails=$(kernel_ip_stat ReasmFails)
lab_say "kernel: ReasmOKs $reasm_ok, ReasmFails $reasm_fails, FragOKs $(kernel_ip_stat FragOKs), FragCreates $(kernel_ip_stat FragCreates)"
lab_check "kernel reassembled keel's 9 fragmented datagrams" [ "$reasm_ok" = 9 ]
lab_check "kernel reassembly failures: none" [ "$reasm_fails" = 0 ]
lab_pmd_quit
lab_test_end
