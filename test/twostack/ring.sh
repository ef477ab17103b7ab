#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Two stacks in one process over net_ring (keel-pmd --loopback) with the fault injector
# dropping, reordering and duplicating frames on receive at both stacks: 1 GiB of TCP
# payload, every connection intact. One bulk stream of 512 MiB into discard (every byte
# acknowledged) and 4 echo connections x 128 round trips x 1 MiB (512 MiB, every byte that
# comes back compared with what was sent); then both mempools must be whole.
#   test/twostack/ring.sh path/to/keel-pmd cubic|newreno
# KEEL_TS_FAULTS overrides the fault spec (see --rx-faults in keel-pmd --help).
set -uo pipefail
# shellcheck source=twostack.sh
source "$(dirname "$0")/twostack.sh"

CC=${2:-cubic}
FAULTS=${KEEL_TS_FAULTS:-drop=1%,reorder=2%,dup=2%}
ts_init "ring-$CC" "$1"

out="$TS_DIR/ring.out"
args=(-l 0-1 --no-huge -m 512 --no-pci --no-shconf --file-prefix "$(ts_prefix ring)"
      --log-level=pmd:warning --
      --loopback --pings 20 --cc "$CC" --rx-faults "$FAULTS" --seconds 150
      --streams 1 --bytes $((512 << 20)) --echoes 4 --echo-size $((1 << 20)) --echo-rounds 128)
ts_say "keel-pmd ${args[*]}"
t0=$(ts_now_ms)
"$KEEL_PMD" "${args[@]}" >"$out" 2>"$TS_DIR/ring.err" &
TS_PID[ring]=$!
wait "${TS_PID[ring]}"
rc=$?
TS_PID[ring]=""
ts_say "keel-pmd exited with status $rc after $(($(ts_now_ms) - t0)) ms"
sed -n '/^TCP:/,$p' "$out" | sed 's/^/    /'

TS_REPLY=$(cat "$out")
tcp=$(ts_line "TCP: [0-9]*/")
ts_check "exit status 0" [ "$rc" = 0 ]
ts_check "summary says PASS" grep -q '^summary: .*-> PASS$' "$out"
ts_check "5/5 connections intact" grep -q '^TCP: 5/5 connections intact' <<<"$tcp"
ts_check "1024.0 MiB acknowledged or verified" grep -q ' 1024.0 MiB verified' <<<"$tcp"
ts_check "no corrupt bytes" grep -q ' 0 corrupt bytes' <<<"$tcp"
ts_check "mempools whole" grep -q 'mempools whole' "$out"
# A counter of stack A or B (their `show stats` follow "stack A:" and "stack B:").
counter() { awk -v s="stack $1:" -v n="$2" '$0 == s { on = 1; next } /^stack / { on = 0 }
	on && $1 == n { v += $2 } END { print v + 0 }' "$out"; }
for s in A B; do
	for f in fault_dropped fault_reordered fault_duplicated; do
		ts_check "stack $s: $f > 0 (faults were injected)" [ "$(counter "$s" "$f")" -gt 0 ]
	done
done
ts_say "figures ($CC, rx faults $FAULTS): $(ts_field "$tcp" 'in ([0-9.]+ s \([0-9.]+ Gbit/s\))'), \
retransmits A $(counter A tcp_retransmits) B $(counter B tcp_retransmits), \
RTOs A $(counter A tcp_rto_timeouts) B $(counter B tcp_rto_timeouts), \
fast retransmits A $(counter A tcp_fast_retransmits) B $(counter B tcp_fast_retransmits)"
ts_end
