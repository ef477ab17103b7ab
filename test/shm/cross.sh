#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The intra-node fast path between processes (suite 'shm', issue 5): keel-pmd is the DPDK
# primary (it creates the node zone "keel_shm_node") on a tap in a namespace of this run's
# own; shm_peer processes (test/shm/shm_peer.cpp, native API) attach as secondaries over
# hugepages, each with an instance range and lcore ids of its own (a range that a process
# left is taken over by the primary and cannot be had again).
#   test/shm/cross.sh BUILD     (root, hugepages; exit 77 = skipped)
# a. Intact through channels between two secondaries: a 1 GiB stream into a checking sink
#    (its report: bytes, CRC32C, mismatches), 256 MiB echoed and 100,000 64-byte request/
#    response round trips, every byte checked; every connection must be a channel.
# b. kill -9 mid-stream. The sender: the sink sees connection_reset within 2 s; the
#    receiver: the sender does. Each time the channel is gone from the node's table and the
#    pool's in-use count is back at its value before the stream plus exactly what the dead
#    process held in its own memory (its --ledger: Buffers allocated and not yet sent, or
#    received and not yet released), which nobody else can know of.
# c. The directory: a listener's close removes its entries at once; a process's death
#    removes them within the sweep interval (1 s); a connect to either port afterwards is
#    refused at once (connection_refused), as TCP would refuse it.
# d. KEEL_SHM=off in the client: the same connect to a live listener is no channel. TCP
#    then has no path either: the address is the client's own (the processes share the
#    tap's address) and keel has no loopback path, so connect() itself returns
#    not_supported; to 127.0.0.1 (no route) it returns unreachable.
# Two groups (primary runs) of 3 secondaries each: group 1 a, b (sender), c (close);
# group 2 d, b (receiver), c (death).
set -uo pipefail
source "$(dirname "$0")/../interop/lab.sh"
BUILD=$1
PEER=$BUILD/test/shm/shm_peer
TOTAL=4             # instances of the group: 0 is the primary's, 1..3 one per shm_peer.
                    # (net_tap hands its queues' fds to secondaries in one message of at
                    # most 8: rx + tx fds of 4 queues.) A second primary run gives 3 more.
NEXT_INSTANCE=1
NEXT_LCORE=2        # lcore ids 2.. (two per process: main and the instance's worker)
declare -A PIDS=()  # shm_peer processes started by this run, by name

lab_test_init shm-cross "$BUILD/tools/keel-pmd/keel-pmd"
[ -x "$PEER" ] || lab_abort "shm_peer not found at $PEER"
hp_free=$(awk '/^HugePages_Free/ { print $2 }' /proc/meminfo)
[ "${hp_free:-0}" -ge 96 ] && grep -q ' /dev/hugepages hugetlbfs' /proc/mounts ||
	lab_skip "needs >= 96 free 2 MiB hugepages mounted at /dev/hugepages (tools/deps.sh), ${hp_free:-0} free"
LAB_EAL_ARGS=(-l 0-1 -m 160 --no-pci --proc-type=primary --file-prefix "$LAB_FILE_PREFIX"
              --log-level=pmd:warning --vdev "net_tap0,iface=$LAB_TAP")
TMP=$(mktemp -d "/tmp/$LAB_NS.shm.XXXXXX")
peers_cleanup() {
	local n
	for n in "${!PIDS[@]}"; do
		kill -KILL "${PIDS[$n]}" 2>/dev/null && wait "${PIDS[$n]}" 2>/dev/null
	done
	PIDS=()
	if [ "$LAB_DONE" = 0 ] && [ -d "$TMP" ]; then
		for n in "$TMP"/*.out "$TMP"/*.err; do
			[ -s "$n" ] || continue
			lab_say "$(basename "$n") (last 10 lines):"
			tail -n 10 "$n" | sed 's/^/    /'
		done
	fi
	rm -rf "$TMP"
}
trap 'rc=$?; peers_cleanup; (exit $rc); lab_cleanup' EXIT

# peer_conf NAME [LINE...]: a secondary's configuration, the next instance and lcore ids.
peer_conf() {
	local name=$1 c0=$NEXT_LCORE c1=$((NEXT_LCORE + 1))
	shift
	[ "$NEXT_INSTANCE" -lt "$TOTAL" ] || lab_abort "no instance left for $name (TOTAL=$TOTAL)"
	# Main lcore and worker on different CPUs, alternating, so that two peers share both.
	local cpu=$((NEXT_INSTANCE % 2))
	cat >"$TMP/$name.conf" <<-EOF
		eal = --lcores $c0@$((1 - cpu)),$c1@$cpu --no-pci --proc-type=secondary --file-prefix $LAB_FILE_PREFIX --log-level=pmd:warning
		process = secondary
		total_instances = $TOTAL
		instance_range = $NEXT_INSTANCE-$NEXT_INSTANCE
		[port]
		device = net_tap0
		address = $LAB_KEEL_IP/$LAB_PLEN
	EOF
	local line
	for line in "$@"; do echo "$line" >>"$TMP/$name.conf"; done
	NEXT_INSTANCE=$((NEXT_INSTANCE + 1))
	NEXT_LCORE=$((NEXT_LCORE + 2))
}
# peer_start NAME ARGS...: shm_peer in the background (output in $TMP/NAME.out/.err).
# PEER_ENV (words like KEEL_SHM=off) goes into its environment.
peer_start() {
	local name=$1
	shift
	peer_conf "$name"
	lab_say "start $name: shm_peer --config $name.conf $*"
	ip netns exec "$LAB_NS" env ${PEER_ENV:-} "$PEER" --config "$TMP/$name.conf" "$@" \
		>"$TMP/$name.out" 2>"$TMP/$name.err" &
	PIDS[$name]=$!
}
peer_alive() { [ -n "${PIDS[$1]:-}" ] && kill -0 "${PIDS[$1]}" 2>/dev/null; }
# peer_wait_for NAME REGEX [TIMEOUT_MS [FROM_LINE]]: until NAME's output has a line matching
# REGEX (after line FROM_LINE: see out_lines).
peer_wait_for() {
	local t0
	t0=$(lab_now_ms)
	until tail -n +$((${4:-0} + 1)) "$TMP/$1.out" | grep -Eq "$2"; do
		if ! peer_alive "$1"; then
			sed 's/^/    /' "$TMP/$1.out" "$TMP/$1.err"
			lab_abort "$1 exited before printing /$2/"
		fi
		[ $(($(lab_now_ms) - t0)) -lt "${3:-30000}" ] || lab_abort "$1: no /$2/ within ${3:-30000} ms"
		sleep 0.05
	done
}
# peer_finish NAME [TIMEOUT_S]: waits for NAME to exit; prints its output; PEER_RC = status.
peer_finish() {
	local name=$1 t0
	t0=$(lab_now_ms)
	while peer_alive "$name" && [ $(($(lab_now_ms) - t0)) -lt $((${2:-120} * 1000)) ]; do sleep 0.1; done
	if peer_alive "$name"; then
		lab_say "$name still running after ${2:-120} s: kill -9"
		kill -KILL "${PIDS[$name]}"
	fi
	wait "${PIDS[$name]}"
	PEER_RC=$?
	unset "PIDS[$name]"
	sed 's/^/    /' "$TMP/$name.out"
	grep -v '^$' "$TMP/$name.err" | grep -v "EAL: \|TELEMETRY\|^keel: pid .*(instances" | sed 's/^/    ! /'
}
# peer_run NAME ARGS...: runs shm_peer to its end (PEER_RC).
peer_run() {
	peer_start "$@"
	peer_finish "$1"
}
peer_stop() {  # SIGINT, then its end
	kill -INT "${PIDS[$1]}" 2>/dev/null
	peer_finish "$1" 20
}
# peer_kill9 NAME: kill -9, reaped at once (no zombie: /proc says it is gone); KILL_MS = when.
peer_kill9() {
	KILL_MS=$(lab_now_ms)
	kill -KILL "${PIDS[$1]}"
	wait "${PIDS[$1]}" 2>/dev/null
	unset "PIDS[$1]"
}
out_has() { grep -Eq "$2" "$TMP/$1.out"; }
out_lines() { wc -l <"$TMP/$1.out"; }
pool_in_use() {
	lab_cmd_quiet "show mp"
	sed -n 's/.*pool in use \([0-9]*\) of.*/\1/p' <<<"$LAB_REPLY" | head -n1
}
# shm_listed PORT: directory entries for PORT in the last `show shm`.
shm_listed() { grep -c "^listen [0-9.]*:$1 " <<<"$LAB_REPLY"; }
open_channels() { sed -n 's/^\([0-9]*\) channels* open of.*/\1/p' <<<"$LAB_REPLY" | tail -n1; }
ledger_mbufs() { "$PEER" ledger "$1" | sed -n 's/.* held \(-*[0-9]*\) mbufs.*/\1/p'; }
# pool_after_kill WHO LEDGER BASE MID: after a kill -9, the pool must be back at BASE plus
# what the dead WHO held itself (its LEDGER); sets POOL_TEXT for the summary.
pool_after_kill() {
	local who=$1 ledger=$2 base=$3 mid=$4 after held
	after=$(pool_in_use)
	held=$(ledger_mbufs "$ledger")
	POOL_TEXT="before the stream $base, mid-stream $mid, after $after; the dead $who held $held mbufs privately"
	lab_say "pool in use: $POOL_TEXT"
	lab_check "pool back at its baseline plus what the dead $who held itself ($base + $held = $after)" \
		[ "$after" = $((base + held)) ]
}
at_ms() { sed -n "s/.*$2.* at_ms=\([0-9]*\).*/\1/p" "$TMP/$1.out" | head -n1; }

# pmd_quit: lab_pmd_quit with more patience (an EAL primary's exit can take long on a
# loaded machine: its hugepages are unmapped); the time is reported.
pmd_quit() {
	lab_pmd_alive || lab_abort "keel-pmd died before quit"
	printf 'quit\n' >&"$LAB_FD"
	local t0 rc
	t0=$(lab_now_ms)
	while lab_pmd_alive && [ $(($(lab_now_ms) - t0)) -lt 90000 ]; do sleep 0.05; done
	lab_pmd_alive && lab_abort "keel-pmd still running 90 s after quit"
	wait "$LAB_PMD_PID"
	rc=$?
	LAB_PMD_PID=""
	lab_say "keel-pmd exited with status $rc after $(($(lab_now_ms) - t0)) ms"
	lab_check "keel-pmd exit status is 0" [ "$rc" = 0 ]
}
# pmd_start: a fresh group (instances 1..3 free again).
pmd_start() {
	lab_pmd_start --instances-total "$TOTAL" --instance-range 0-0
	NEXT_INSTANCE=1
	lab_cmd "show shm"
	lab_check "the primary created the node zone" grep -q "channels* open of 1024" <<<"$LAB_REPLY"
}

# ======== group 1: srv1 (instance 1), cli1 (2), snd (3) ========
pmd_start
# ---- a: intact through channels between two secondaries ----
peer_start srv1 serve 7000 7001
peer_wait_for srv1 "^serve: ready"
lab_cmd "show shm"
lab_check "srv1's listeners are in the directory (198.18.0.2 and 127.0.0.1, ports 7000 and 7001)" \
	eval '[ "$(shm_listed 7000)" = 2 ] && [ "$(shm_listed 7001)" = 2 ]'
# cli1 stays after its traffic: it makes the connects of c (1) when told (wait FILE).
peer_start cli1 --expect-channel yes stream "$LAB_KEEL_IP" 7000 1G sink + \
	stream "$LAB_KEEL_IP" 7001 256M echo + rr "$LAB_KEEL_IP" 7000 100000 + \
	wait "$TMP/go1" + connect "$LAB_KEEL_IP" 7000 connection_refused + connect 127.0.0.1 7001 connection_refused
peer_wait_for cli1 "^rr: " 150000
sed 's/^/    /' "$TMP/cli1.out"
lab_check "1 GiB into the sink: its report matches (bytes, CRC32C, no mismatch)" \
	out_has cli1 "^stream: sink 1073741824 bytes .* channel=yes, sink reports 1073741824 bytes, crc ([0-9a-f]+) \(sent \1\), mismatches 0: ok"
lab_check "256 MiB echoed back intact" \
	out_has cli1 "^stream: echo 268435456 bytes .* channel=yes, echoed 268435456 bytes, crc ([0-9a-f]+) \(sent \1\), mismatches 0: ok"
lab_check "100000 round trips, every byte checked" \
	out_has cli1 "^rr: 100000 round trips of 64 bytes .* channel=yes, mismatches 0: ok"
STREAM_LINE=$(grep '^stream: sink' "$TMP/cli1.out")
ECHO_LINE=$(grep '^stream: echo' "$TMP/cli1.out")
RR_LINE=$(grep '^rr:' "$TMP/cli1.out")
sleep 0.3
lab_check "srv1 saw the three channels end in order" \
	[ "$(grep -c '^serve: conn .* channel=yes .*: ok$' "$TMP/srv1.out")" = 3 ]
lab_cmd "show shm"
lab_check "no channel left open" [ "$(open_channels)" = 0 ]

# ---- b (1): kill -9 of the sender mid-stream ----
base=$(pool_in_use)
from=$(out_lines srv1)
peer_start snd --ledger "$TMP/snd.ledger" --expect-channel yes stream "$LAB_KEEL_IP" 7000 64G sink
peer_wait_for srv1 "^serve: progress [0-9]{9}" 60000 "$from"  # >= 128 MiB through
lab_cmd "show shm"
lab_check "the stream is one open channel" [ "$(open_channels)" = 1 ]
mid=$(pool_in_use)
lab_say "kill -9 the sender (pid ${PIDS[snd]})"
peer_kill9 snd
peer_wait_for srv1 "^serve: conn .*connection_reset" 5000 "$from"
t_reset=$(at_ms srv1 "connection_reset")
SND_DETECT=$((t_reset - KILL_MS))
grep '^serve: conn .*connection_reset' "$TMP/srv1.out" | sed 's/^/    /'
lab_check "the sink saw connection_reset ${SND_DETECT} ms after the kill (< 2000)" [ "$SND_DETECT" -lt 2000 ]
sleep 1.2   # the primary's takeover of the dead instance (its report follows 1 s later)
lab_cmd "show shm"
lab_check "the channel is freed" [ "$(open_channels)" = 0 ]
pool_after_kill sender "$TMP/snd.ledger" "$base" "$mid"
SND_POOL=$POOL_TEXT

# ---- c (1): a listener's close removes its entries; connects then are refused ----
kill -USR1 "${PIDS[srv1]}"
peer_wait_for srv1 "^serve: listeners closed"
lab_cmd "show shm"
lab_check "srv1's close removed its directory entries" eval '[ "$(shm_listed 7000)" = 0 ] && [ "$(shm_listed 7001)" = 0 ]'
touch "$TMP/go1"
peer_finish cli1 30
lab_check "cli1 exits 0 (every check passed, every connection a channel)" [ "$PEER_RC" = 0 ]
lab_check "connects to the closed ports are refused at once, by the fast path" \
	[ "$(grep -c 'connection_refused as its first event after [0-9.]* ms, channel=? (shm_connects +0, shm_refused +1, tcp_active_opens +0): ok' "$TMP/cli1.out")" = 2 ]
peer_stop srv1
lab_check "srv1 exits 0" [ "$PEER_RC" = 0 ]
lab_cmd "show mp"
pmd_quit

# ======== group 2: rcv (instance 1), tcp1 (2), snd2 (3) ========
pmd_start
peer_start rcv --ledger "$TMP/rcv.ledger" serve 7200
peer_wait_for rcv "^serve: ready"
# ---- d: the switch ----
PEER_ENV="KEEL_SHM=off" peer_run tcp1 connect "$LAB_KEEL_IP" 7200 2000 + connect 127.0.0.1 7200 2000
TCP_LINE=$(grep "^connect: $LAB_KEEL_IP:" "$TMP/tcp1.out")
TCP_LO_LINE=$(grep '^connect: 127.0.0.1:' "$TMP/tcp1.out")
lab_check "with KEEL_SHM=off the connect goes to TCP, which has no path to its own address: not_supported at once" \
	grep -Eq "^connect: .* not_supported from connect\(\) itself .*channel=\? \(shm_connects \+0, shm_refused \+0, tcp_active_opens \+0\)" <<<"$TCP_LINE"
lab_check "... and to 127.0.0.1 (no route: keel has no loopback interface): unreachable at once" \
	grep -Eq "^connect: .* unreachable from connect\(\) itself .*\(shm_connects \+0, shm_refused \+0, tcp_active_opens \+0\)" <<<"$TCP_LO_LINE"
lab_check "... and rcv accepted nothing" [ "$(grep -c '^serve: conn' "$TMP/rcv.out")" = 0 ]

# ---- b (2): kill -9 of the receiver mid-stream; c (2): its death clears its entries ----
base2=$(pool_in_use)
peer_start snd2 --expect-channel yes stream "$LAB_KEEL_IP" 7200 64G sink + \
	wait "$TMP/go2" + connect "$LAB_KEEL_IP" 7200 connection_refused + connect 127.0.0.1 7200 connection_refused
peer_wait_for snd2 "^stream: progress [0-9]{9}" 60000
mid2=$(pool_in_use)
lab_cmd "show shm"
lab_check "rcv's entries are listed while it lives, and the stream is one open channel" \
	eval '[ "$(shm_listed 7200)" = 2 ] && [ "$(open_channels)" = 1 ]'
rcv_pid=${PIDS[rcv]}
lab_say "kill -9 the receiver (pid $rcv_pid)"
peer_kill9 rcv
peer_wait_for snd2 "^stream: .*connection_reset" 5000
t_reset=$(at_ms snd2 "connection_reset")
RCV_DETECT=$((t_reset - KILL_MS))
grep '^stream: ' "$TMP/snd2.out" | tail -n1 | sed 's/^/    /'
lab_check "the sender saw connection_reset ${RCV_DETECT} ms after the kill (< 2000)" [ "$RCV_DETECT" -lt 2000 ]
# The directory: entries of a dead process go at the next sweep of a live instance (snd2's).
t0=$KILL_MS
while :; do
	lab_cmd_quiet "show shm"
	[ "$(shm_listed 7200)" = 0 ] && ! grep -q "pid $rcv_pid " <<<"$LAB_REPLY" && break
	[ $(($(lab_now_ms) - t0)) -lt 5000 ] || break
	sleep 0.05
done
SWEEP_MS=$(($(lab_now_ms) - t0))
printf '%s\n' "$LAB_REPLY" | sed 's/^/    /'
lab_check "rcv's entries and endpoint were swept ${SWEEP_MS} ms after its death (< 2000)" \
	eval '[ "$(shm_listed 7200)" = 0 ] && [ "$SWEEP_MS" -lt 2000 ]'
lab_check "no channel left open" [ "$(open_channels)" = 0 ]
sleep 1.2
pool_after_kill receiver "$TMP/rcv.ledger" "$base2" "$mid2"
RCV_POOL=$POOL_TEXT
touch "$TMP/go2"
peer_finish snd2 30
lab_check "connects to the dead process's port are refused at once (its address and 127.0.0.1)" \
	[ "$(grep -c 'connection_refused as its first event after [0-9.]* ms, channel=? (shm_connects +0, shm_refused +1, tcp_active_opens +0): ok' "$TMP/snd2.out")" = 2 ]
lab_check "snd2's only failure is the reset stream (exit status 1)" \
	eval '[ "$PEER_RC" = 1 ] && [ "$(grep -c '\''FAILED'\'' "$TMP/snd2.out")" = 1 ]'
lab_cmd "show mp"
pmd_quit
lab_say "summary: $STREAM_LINE"
lab_say "summary: $ECHO_LINE"
lab_say "summary: $RR_LINE"
lab_say "summary: kill -9 sender: reset seen after $SND_DETECT ms; pool $SND_POOL"
lab_say "summary: kill -9 receiver: reset seen after $RCV_DETECT ms; pool $RCV_POOL; directory swept after $SWEEP_MS ms"
lab_say "summary: KEEL_SHM=off: $TCP_LINE"
lab_say "summary: KEEL_SHM=off: $TCP_LO_LINE"
lab_test_end
