#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Interop 2: the kernel's arping (iputils) resolves keel's address; every reply carries the
# MAC keel-pmd's `show port` reports.
#   test/interop/arping.sh [path/to/keel-pmd]     (root; exit 77 = skipped)
# shellcheck disable=SC2119  # lab_pmd_start takes keel-pmd options, not the script's
set -uo pipefail
# shellcheck source=lab.sh
source "$(dirname "$0")/lab.sh"

lab_test_init arping "$@"
lab_require_cmd arping iputils-arping
lab_pmd_start
lab_pmd_mac
lab_say "keel's port MAC (show port): $LAB_PMD_MAC"

# -c 3 with a deadline: wait for 3 replies (or 10 s).
lab_say "kernel: arping -c 3 -w 10 -I $LAB_TAP $LAB_KEEL_IP"
out=$(lab_nsx arping -c 3 -w 10 -I "$LAB_TAP" "$LAB_KEEL_IP" 2>&1)
printf '%s\n' "$out" | sed 's/^/    /'
macs=$(sed -n 's/.*reply from [0-9.]* \[\([0-9A-Fa-f:]*\)\].*/\1/p' <<<"$out" | tr 'A-F' 'a-f')
replies=$(grep -c . <<<"$macs")
lab_check "arping: 3 replies (got $replies)" [ "$replies" = 3 ]
others=$(grep -v -x "$LAB_PMD_MAC" <<<"$macs")
lab_check "every reply names $LAB_PMD_MAC${others:+ (also: ${others//$'\n'/ })}" \
	[ -n "$macs" -a -n "$LAB_PMD_MAC" -a -z "$others" ]

lab_check_drops
lab_check "keel answered the ARP requests" [ "$(lab_stat arp_replies_out)" -ge 3 ]
lab_pmd_quit
lab_test_end
