#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# TCP interop 5: keel against the kernel on impaired paths. There is no netem here: keel's
# side is impaired by its own fault injector (--rx-faults / --tx-faults), the kernel's by
# nftables (lab_nft_loss: random drops on the tap, both ways). Each scenario runs on a
# fresh keel-pmd (echo and http services):
#
#   loss      5% each way: keel drops 2.5% rx and tx, nftables 2.5% in and out
#   reorder   25% of frames held 2 ms longer, both ways, on a 5 ms + 5 ms path
#   dup       5% of frames duplicated, both ways
#   corrupt   1% of frames get one bit flipped, both ways (checksums must catch them)
#   wan       80 ms round trip (40 ms each way on keel's injectors): first clean, to show
#             window scaling (well above 64 KiB per RTT = 6.5 Mbit/s), then with 1% loss
#             each way (nftables)
#
# In each: the kernel downloads KEEL_IMPAIRED_BYTES from keel's http service (every byte
# checked) and echoes 1 MiB of random bytes through keel (compared), both must be intact;
# the throughput is printed; keel's counters must show what the impairment caused
# (retransmissions and SACK recoveries where there was loss, bad checksums counted for
# corruption, duplicates and reordering seen) and no other drop; keel-pmd exits 0.
# `show conns` (keel) and `ss -tin` (kernel) are sampled during the download: the largest
# flight and window keel reached are printed, and on the 80 ms path must exceed 64 KiB.
#
#   test/interop/tcp_impaired.sh [path/to/keel-pmd]     (root; exit 77 = skipped)
#   KEEL_IMPAIRED_BYTES      download size per scenario (default 104857600 = 100 MiB)
#   KEEL_IMPAIRED_WAN_BYTES  download size on the 80 ms path with 1% loss (default 8 MiB).
#     A loss-based sender on that path is bounded by the loss rate, not by its window:
#     about 1.22 / sqrt(1%) = 12 segments per RTT (Mathis et al.), ~1.7 Mbit/s, so
#     100 MiB would take some 8 minutes; 8 MiB takes ~40 s.
# Runs in about 2-3 minutes on a 2-core machine.
set -uo pipefail
source "$(dirname "$0")/lab.sh"
CLIENT="/usr/bin/python3 $(dirname "$0")/tcp_client.py"
BYTES=${KEEL_IMPAIRED_BYTES:-104857600}
WAN_BYTES=${KEEL_IMPAIRED_WAN_BYTES:-8388608}
ECHO_BYTES=1048576
WINDOW_64K_MBPS=6.5   # 64 KiB per 80 ms round trip

lab_test_init tcp-impaired "$@"
lab_require_cmd nft nftables
lab_require_cmd ss iproute2

# Counters every scenario may move: recovery, the injector's own, duplicates and
# out-of-order arrivals. Anything else non-zero (mbuf_alloc_failed, fault_queue_full,
# tx_dropped_queue_full, tcp_ooo_dropped, ...) fails lab_check_drops.
# A segment of a connection keel has already closed (a duplicate, or one that came late)
# finds no connection: as an ACK to the listening port it is taken for the answer to a
# SYN cookie, which it is not (tcp_syn_cookies_bad), and gets a RST (RFC 9293 3.10.7.1).
BASE_TOLERATED="tcp_dup_acks tcp_out_of_window tcp_oow_acks_limited tcp_dup_segments tcp_retransmits
  tcp_fast_retransmits tcp_sack_recoveries tcp_rto_timeouts tcp_tail_probes tcp_ooo_segments
  fault_dropped fault_duplicated fault_reordered fault_corrupted fault_delayed
  tcp_syn_cookies_bad tcp_no_connection tcp_resets_sent"
# A flipped bit lands anywhere after the Ethernet header: in IPv4, TCP or ARP fields.
CORRUPT_TOLERATED="ip_bad_checksum ip_truncated ip_bad_version ip_bad_ihl ip_bad_total_length
  ip_bad_source ip_not_for_us ip_unknown_protocol tcp_bad_checksum tcp_truncated
  tcp_bad_data_offset tcp_bad_options tcp_bad_flags arp_bad_format arp_bad_opcode arp_not_for_us
  arp_truncated"

SUMMARY=()

# ----- helpers -----

# mbps_of "CLIENT OUTPUT": the Mbit/s figure of a tcp_client.py download line.
mbps_of() { sed -n 's/.* \([0-9.][0-9.]*\) Mbit\/s.*/\1/p' <<<"$1" | head -n1; }
# secs_of "CLIENT OUTPUT": the seconds figure.
secs_of() { sed -n 's/.*, \([0-9.][0-9.]*\) s, .*/\1/p' <<<"$1" | head -n1; }
# field NAME "TEXT": the number after NAME: in TEXT (show conns / ss -tin).
field() { sed -n "s/.*[[:space:]]$1:\([0-9.][0-9.]*\).*/\1/p" <<<"$2" | head -n1; }
fge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }  # float a >= b

# The detail line of keel's http connection in the last `show conns`.
http_conn_line() {
	awk -v me="$LAB_KEEL_IP:80" '$1 == "ESTABLISHED" && index($0, " " me " ") { getline; print; exit }' \
		<<<"$LAB_REPLY"
}

# download BYTES: the kernel GETs /bytes/BYTES from keel while keel's connection
# (show conns) and the kernel's (ss -tin) are sampled every second. Sets DL_OUT, DL_RC,
# DL_MBPS, DL_SECS, MAX_UNACKED, MAX_CWND, MAX_SNDWND, SRTT_MS, KERNEL_WSCALE.
download() {
	local bytes=$1 out="$LAB_DIR/download.out" pid line k
	MAX_UNACKED=0 MAX_CWND=0 MAX_SNDWND=0 SRTT_MS=0 KERNEL_WSCALE=""
	lab_say "kernel: tcp_client.py download $LAB_KEEL_IP 80 $bytes (sampling show conns and ss -tin)"
	lab_nsx $CLIENT download "$LAB_KEEL_IP" 80 "$bytes" >"$out" 2>&1 &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		sleep 1
		kill -0 "$pid" 2>/dev/null || break
		lab_cmd_quiet "show conns"
		line=$(http_conn_line)
		[ -n "$line" ] || continue
		local u c w r
		u=$(field unacked "$line") c=$(field cwnd "$line") w=$(field snd_wnd "$line")
		r=$(sed -n 's/.* rtt:\([0-9.]*\)\/.*/\1/p' <<<"$line")
		[ "${u:-0}" -gt "$MAX_UNACKED" ] && MAX_UNACKED=$u
		[ "${c:-0}" -gt "$MAX_CWND" ] && MAX_CWND=$c
		[ "${w:-0}" -gt "$MAX_SNDWND" ] && MAX_SNDWND=$w
		SRTT_MS=${r:-$SRTT_MS}
		k=$(lab_nsx ss -tin state established "( sport = :80 or dport = :80 )" 2>/dev/null |
			sed -n 's/.*wscale:\([0-9]*,[0-9]*\).*/\1/p' | head -n1)
		KERNEL_WSCALE=${k:-$KERNEL_WSCALE}
	done
	wait "$pid"
	DL_RC=$?
	DL_OUT=$(cat "$out")
	printf '%s\n' "$DL_OUT" | sed 's/^/    /'
	DL_MBPS=$(mbps_of "$DL_OUT") DL_SECS=$(secs_of "$DL_OUT")
	lab_say "  keel's connection at its largest: flight $MAX_UNACKED B, cwnd $MAX_CWND B," \
		"peer window $MAX_SNDWND B; srtt $SRTT_MS ms; kernel wscale ${KERNEL_WSCALE:-?} (snd,rcv)"
}

# echo_check SEED: 1 MiB of random bytes through keel's echo service, compared.
echo_check() {
	lab_say "kernel: tcp_client.py echo $LAB_KEEL_IP 7 $ECHO_BYTES $1"
	local out rc
	out=$(lab_nsx $CLIENT echo "$LAB_KEEL_IP" 7 "$ECHO_BYTES" "$1" 2>&1)
	rc=$?
	printf '%s\n' "$out" | sed 's/^/    /'
	lab_check "$SCEN: 1 MiB echo comes back identical" [ "$rc" = 0 ]
}

# counters: `show stats` (checked for unexpected drops) into C_* variables.
counters() {
	lab_check_drops
	C_RETRANS=$(lab_stat tcp_retransmits) C_RTO=$(lab_stat tcp_rto_timeouts)
	C_SACKREC=$(lab_stat tcp_sack_recoveries) C_FASTREC=$(lab_stat tcp_fast_retransmits)
	C_TLP=$(lab_stat tcp_tail_probes) C_DUPSEG=$(lab_stat tcp_dup_segments)
	C_OOO=$(lab_stat tcp_ooo_segments) C_BADCK=$(($(lab_stat tcp_bad_checksum) + $(lab_stat ip_bad_checksum)))
	C_FDROP=$(lab_stat fault_dropped) C_FDUP=$(lab_stat fault_duplicated)
	C_FREORD=$(lab_stat fault_reordered) C_FCORR=$(lab_stat fault_corrupted)
}

# summarize LABEL: one row of the final table from DL_* and C_* (counters since start).
summarize() {
	local row
	row=$(printf '%-14s %8s %7s %9s %8s %5s %8s %5s' "$1" "$(($2 / 1048576))" "${DL_SECS:-?}" \
		"${DL_MBPS:-?}" "$C_RETRANS" "$C_RTO" "$C_SACKREC" "$C_TLP")
	SUMMARY+=("$row")
	lab_say "  $row"
}

# start_scenario NAME RX_FAULTS TX_FAULTS NFT_IN NFT_OUT (per mille)
start_scenario() {
	SCEN=$1
	lab_say "===== $SCEN: rx-faults '$2', tx-faults '$3', nftables drop ${4}/1000 in, ${5}/1000 out ====="
	lab_nft_loss "$4" "$5"
	# keel-pmd's MAC may differ from the last one's: no stale neighbour entry.
	lab_nsx ip neigh flush dev "$LAB_TAP" 2>/dev/null
	local args=(--serve echo,http)
	[ -n "$2" ] && args+=(--rx-faults "$2")
	[ -n "$3" ] && args+=(--tx-faults "$3")
	lab_pmd_start "${args[@]}"
}

end_scenario() {
	local nft
	nft=$(lab_nft_counts)
	lab_say "  nftables frames (seen dropped): $nft"
	lab_cmd "show tcp"
	lab_pmd_quit
	lab_nft_loss 0 0
	NFT_COUNTS=$nft
}

# Standard body: download, echo, counters, intact checks.
transfer() {
	download "$1"
	lab_check "$SCEN: $(($1 / 1048576)) MiB download intact (every byte checked)" [ "$DL_RC" = 0 ]
	echo_check "$2"
}

# ----- scenarios -----

# 1. Loss, 5% each way, half on keel's injector, half in nftables.
LAB_TOLERATED=$BASE_TOLERATED
start_scenario loss "drop=2.5%,seed=11" "drop=2.5%,seed=12" 25 25
transfer "$BYTES" 1
counters
summarize "loss 5%" "$BYTES"
end_scenario
read -r _ _ nft_in_drop _ _ nft_out_drop <<<"$NFT_COUNTS"
lab_check "loss: the injector dropped frames ($C_FDROP)" [ "$C_FDROP" -gt 0 ]
lab_check "loss: nftables dropped frames both ways ($nft_in_drop in, $nft_out_drop out)" \
	[ "$nft_in_drop" -gt 0 -a "$nft_out_drop" -gt 0 ]
lab_check "loss: keel retransmitted ($C_RETRANS)" [ "$C_RETRANS" -gt 0 ]
lab_check "loss: keel recovered with SACK ($C_SACKREC recoveries)" [ "$C_SACKREC" -gt 0 ]

# 2. Reordering: a quarter of the frames 2 ms late on a 10 ms round trip. RACK's
# reordering window (a quarter of the minimum RTT once reordering was seen) absorbs it.
# The kernel's pure ACKs that come late carry an older TSval than the ACK before them:
# PAWS (RFC 7323 5.3 R1) drops them, and counts them.
LAB_TOLERATED="$BASE_TOLERATED tcp_paws_drops"
start_scenario reorder "reorder=25%,delay=5ms,reorder_delay=2ms,seed=21" \
	"reorder=25%,delay=5ms,reorder_delay=2ms,seed=22" 0 0
transfer "$BYTES" 2
counters
summarize "reorder 25%" "$BYTES"
end_scenario
lab_check "reorder: the injector reordered frames ($C_FREORD)" [ "$C_FREORD" -gt 0 ]
lab_check "reorder: keel received segments out of order ($C_OOO)" [ "$C_OOO" -gt 0 ]
lab_say "reorder: retransmissions that reordering caused (nothing was lost): $C_RETRANS"

# 3. Duplication.
LAB_TOLERATED=$BASE_TOLERATED
start_scenario dup "dup=5%,seed=31" "dup=5%,seed=32" 0 0
transfer "$BYTES" 3
counters
summarize "duplicate 5%" "$BYTES"
end_scenario
lab_check "dup: the injector duplicated frames ($C_FDUP)" [ "$C_FDUP" -gt 0 ]
lab_check "dup: keel received and dropped duplicate segments ($C_DUPSEG)" [ "$C_DUPSEG" -gt 0 ]

# 4. Corruption: the checksums must catch every flipped bit (the download and the echo
# check every byte), and the dropped frames are losses to recover from.
LAB_TOLERATED="$BASE_TOLERATED $CORRUPT_TOLERATED"
start_scenario corrupt "corrupt=1%,seed=41" "corrupt=1%,seed=42" 0 0
transfer "$BYTES" 4
counters
summarize "corrupt 1%" "$BYTES"
end_scenario
lab_check "corrupt: the injector corrupted frames ($C_FCORR)" [ "$C_FCORR" -gt 0 ]
lab_check "corrupt: keel counted bad checksums ($C_BADCK)" [ "$C_BADCK" -gt 0 ]
lab_check "corrupt: keel retransmitted ($C_RETRANS)" [ "$C_RETRANS" -gt 0 ]
lab_check "corrupt: keel recovered with SACK ($C_SACKREC recoveries)" [ "$C_SACKREC" -gt 0 ]
LAB_TOLERATED=$BASE_TOLERATED

# 5. 80 ms round trip: clean first (window scaling), then 1% loss each way (nftables).
start_scenario wan "delay=40ms,seed=51" "delay=40ms,seed=52" 0 0
download "$BYTES"
lab_check "wan: $(($BYTES / 1048576)) MiB download over 80 ms intact" [ "$DL_RC" = 0 ]
lab_check "wan: round trip is 80 ms (keel's srtt $SRTT_MS ms)" fge "$SRTT_MS" 75
lab_check "wan: keel had more than 64 KiB in flight ($MAX_UNACKED B): window scaling at work" \
	[ "$MAX_UNACKED" -gt 65535 ]
lab_check "wan: the kernel scales its windows (ss wscale ${KERNEL_WSCALE:-none})" \
	[ -n "$KERNEL_WSCALE" -a "${KERNEL_WSCALE%%,*}" != 0 -a "${KERNEL_WSCALE##*,}" != 0 ]
lab_check "wan: ${DL_MBPS:-?} Mbit/s, at least twice 64 KiB per RTT ($WINDOW_64K_MBPS Mbit/s)" \
	fge "${DL_MBPS:-0}" "$(awk -v w=$WINDOW_64K_MBPS 'BEGIN { print 2 * w }')"
counters
summarize "80ms clean" "$BYTES"
clean_retrans=$C_RETRANS clean_sackrec=$C_SACKREC clean_rto=$C_RTO clean_tlp=$C_TLP
lab_say "wan: 1% loss each way from now on (nftables)"
lab_nft_loss 10 10
transfer "$WAN_BYTES" 5
lab_check "wan+loss: the peer's window stayed above 64 KiB ($MAX_SNDWND B)" [ "$MAX_SNDWND" -gt 65535 ]
counters
C_RETRANS=$((C_RETRANS - clean_retrans)) C_SACKREC=$((C_SACKREC - clean_sackrec))
C_RTO=$((C_RTO - clean_rto)) C_TLP=$((C_TLP - clean_tlp))
summarize "80ms + 1% loss" "$WAN_BYTES"
end_scenario
read -r _ _ nft_in_drop _ _ nft_out_drop <<<"$NFT_COUNTS"
lab_check "wan+loss: nftables dropped frames both ways ($nft_in_drop in, $nft_out_drop out)" \
	[ "$nft_in_drop" -gt 0 -a "$nft_out_drop" -gt 0 ]
lab_check "wan+loss: keel retransmitted ($C_RETRANS)" [ "$C_RETRANS" -gt 0 ]
lab_check "wan+loss: keel recovered with SACK ($C_SACKREC recoveries)" [ "$C_SACKREC" -gt 0 ]

lab_say "summary (counters are keel's; MiB downloaded, seconds, Mbit/s):"
lab_say "  $(printf '%-14s %8s %7s %9s %8s %5s %8s %5s' scenario MiB s Mbit/s retrans RTOs SACKrec TLPs)"
for row in "${SUMMARY[@]}"; do lab_say "  $row"; done
lab_test_end
