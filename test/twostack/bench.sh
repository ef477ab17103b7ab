#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# keel-pmd's `bench` commands and `show mem` between two keel-pmd processes over net_memif
# (no hugepages), both busy-polling: server 198.18.4.2 on core 1 serving echo, discard and
# http; client 198.18.4.1 on core 0. Each bench runs briefly (1 s measured, a few
# connections) and its summary line must be well-formed (the format perf/run parses) and
# end `ok`; bad arguments print one usage line; a crr to a closed port ends FAILED;
# `bench idle` opens connections the server's `show mem` counts, `bench idle close` ends
# them. Afterwards the server has no connection and no mbuf left. Both quit at once, and
# three more pairs on big rings quit at once after a burst of traffic: exit status 0 each.
# Then one end of a pair quits alone while the other runs a bench to it, once each way:
# the survivor runs on (link down) and quits with 0.
#   test/twostack/bench.sh path/to/keel-pmd
set -uo pipefail
# shellcheck source=twostack.sh
source "$(dirname "$0")/twostack.sh"

SRV_IP=198.18.4.2
CLI_IP=198.18.4.1
ts_init bench "$1"

sock="$TS_DIR/memif.sock"   # a path, not an abstract socket: removed with TS_DIR
eal=(--no-huge -m 512 --no-pci --log-level=pmd:warning)
memif() { echo "net_memif0,role=$1,socket=$sock,socket-abstract=no"; }

ts_start srv -l 1 "${eal[@]}" --file-prefix "$(ts_prefix srv)" --vdev "$(memif server)" -- \
	--addr "$SRV_IP/24" --busy-poll --serve echo,discard,http
ts_start cli -l 0 "${eal[@]}" --file-prefix "$(ts_prefix cli)" --vdev "$(memif client)" -- \
	--addr "$CLI_IP/24" --busy-poll
ts_cmd cli "ping $SRV_IP 3 10" 30

F='[0-9]+\.[0-9]{2}'   # a figure with two decimals
N='[0-9]+'
S="seconds=$F"
LAT="p50_us=$F p99_us=$F p999_us=$F"
# match NAME REGEX: the reply's summary line for `bench NAME` matches REGEX.
match() { grep -Eq "$2" <<<"$(ts_line "bench $1:")"; }

ts_cmd cli "help"
ts_check "help lists the bench commands" grep -q '^  bench rr ADDR PORT SIZE' <<<"$TS_REPLY"
ts_cmd cli "bench rr $SRV_IP 7"
ts_check "bench rr without SIZE: one usage error line" \
	[ "$(grep -c '^error: usage: bench rr ADDR PORT SIZE' <<<"$TS_REPLY")" = 1 ]
ts_cmd cli "bench stream $SRV_IP 9 1 0"
ts_check "bench stream with SECONDS 0: usage error" grep -q '^error: usage: bench stream' <<<"$TS_REPLY"

ts_cmd cli "bench rr $SRV_IP 7 64 4 1" 60
ts_check "bench rr: summary well-formed, ok" match rr \
	"^bench rr: size=64 conns=4 $S transactions=[1-9][0-9]* tps=$N\.[0-9] $LAT max_us=$F errors=0 ok$"
ts_cmd cli "bench crr $SRV_IP 7 64 2 1" 60
ts_check "bench crr: summary well-formed, ok" match crr \
	"^bench crr: size=64 $S connections=[1-9][0-9]* cps=$N\.[0-9] $LAT errors=0 ok$"
ts_cmd cli "bench stream $SRV_IP 9 2 1" 60
ts_check "bench stream: summary well-formed, ok" match stream \
	"^bench stream: conns=2 $S bytes=[1-9][0-9]* gbps=$F retransmits=$N ok$"
ts_cmd cli "bench http $SRV_IP 80 / 4 1" 60
ts_check "bench http: summary well-formed, ok" match http \
	"^bench http: conns=4 $S requests=[1-9][0-9]* rps=$N\.[0-9] $LAT errors=0 non2xx=0 ok$"
ts_cmd cli "bench http $SRV_IP 80 /missing 1 0.5" 60
ts_check "bench http: 404s counted as non2xx" match http "requests=([1-9][0-9]*) .* non2xx=[1-9][0-9]* ok$"
ts_cmd cli "bench crr $SRV_IP 8 64 1 0.5" 60   # nothing listens on port 8: refused
ts_check "bench crr to a closed port: FAILED, said why" match crr \
	'errors=[1-9][0-9]* FAILED \([0-9]+ connection\(s\) reset, refused or timed out\)$'

# Idle connections, counted by the server.
ts_cmd srv "show mem"
ts_check "show mem: one key=value line" grep -Eq "^mem: conns=0 time_wait=0 tcb_bytes=[1-9]$N? hash_bytes=$N ooo_bytes=$N recovery_pool_bytes=[1-9]$N? mbufs_in_use=$N mbuf_bytes=$N rss_bytes=[1-9]$N bytes_per_conn=$N$" <<<"$TS_REPLY"
ts_cmd cli "bench idle $SRV_IP 9 200" 60
ts_check "bench idle: 200 established, ok" match idle "^bench idle: conns=200 established=200 $S errors=0 ok$"
ts_cmd cli "bench idle $SRV_IP 9 10"
ts_check "bench idle twice: error" grep -q '^error: bench idle: 200 idle connections are open already' <<<"$TS_REPLY"
ts_cmd srv "show mem"
ts_check "server show mem: 200 connections" grep -Eq '^mem: conns=200 .* bytes_per_conn=[1-9][0-9]*$' <<<"$TS_REPLY"
ts_cmd cli "bench idle close"
ts_check "bench idle close: 200 aborted" grep -q '^bench idle: aborted 200 connections' <<<"$TS_REPLY"

t0=$(ts_now_ms)
while TS_QUIET=1 ts_cmd srv "show tcp" && [ "$(ts_conns)" != 0 ] && [ $(($(ts_now_ms) - t0)) -lt 10000 ]; do
	sleep 0.2
done
ts_cmd srv "show tcp"
ts_check "server: no connection left" [ "$(ts_conns)" = 0 ]
ts_check "server: no mbuf in use" [ "$(ts_mbufs_in_use)" = 0 ]

# quit_both A B: `quit` to both at the same moment (each end then handles the other's
# memif disconnect while it shuts down itself); both must exit 0 within 20 s.
quit_both() {
	local name t0 rc
	for name in "$@"; do printf 'quit\n' >&"${TS_FD[$name]}"; done
	for name in "$@"; do
		t0=$(ts_now_ms)
		while ts_alive "$name" && [ $(($(ts_now_ms) - t0)) -lt 20000 ]; do sleep 0.05; done
		if ts_alive "$name"; then
			ts_check "$name exits within 20 s of quit" false
			continue
		fi
		wait "${TS_PID[$name]}"
		rc=$?
		TS_PID[$name]=""
		ts_check "$name exit status is 0 after quitting with its peer (was $rc)" [ "$rc" = 0 ]
	done
}
quit_both srv cli

# Both ends quitting at once, after traffic on big rings (rsize=14: 16,384 slots, what
# thousands of connections need): stop and close ran beside net_memif's handling of the
# peer's disconnect and crashed now and then (exit 139). A few short rounds.
for i in 1 2 3; do
	sock="$TS_DIR/memif-q$i.sock"
	TS_QUIET=1 ts_start srv$i -l 1 "${eal[@]}" --file-prefix "$(ts_prefix srv$i)" \
		--vdev "$(memif server),rsize=14" -- --addr "$SRV_IP/24" --busy-poll --serve echo
	TS_QUIET=1 ts_start cli$i -l 0 "${eal[@]}" --file-prefix "$(ts_prefix cli$i)" \
		--vdev "$(memif client),rsize=14" -- --addr "$CLI_IP/24" --busy-poll
	TS_QUIET=1 ts_cmd cli$i "bench rr $SRV_IP 7 64 2000 0.2" 60
	ts_check "quit round $i: bench rr ok" match rr "errors=0 ok$"
	quit_both srv$i cli$i
done

# One end quits alone while the other's poll loop is busy with a bench to it (both serve
# echo). The survivor's interrupt thread handles the disconnect, where net_memif unmaps
# the shared regions its rx/tx bursts are reading (a survivor crashed in a burst now and
# then); it must keep running, show its link down, and quit with 0. Once each way.
# lone_quit QUITTER SURVIVOR ADDR: ADDR is the quitter's.
lone_quit() {
	local q=$1 k=$2 addr=$3 before t0 rc
	before=$(ts_prompts "$k")
	printf 'bench rr %s 7 64 200 1\n' "$addr" >&"${TS_FD[$k]}"
	sleep 0.5
	ts_quit "$q"
	t0=$(ts_now_ms)
	while ts_alive "$k" && [ "$(ts_prompts "$k")" -le "$before" ] && [ $(($(ts_now_ms) - t0)) -lt 30000 ]; do
		sleep 0.05
	done
	if ! ts_alive "$k"; then
		wait "${TS_PID[$k]}"
		rc=$?
		TS_PID[$k]=""
		ts_check "$k runs on after its peer quit (it exited with status $rc)" false
		return
	fi
	ts_check "$k runs on after its peer quit" true
	ts_cmd "$k" "show port"
	ts_check "$k: its link is down" grep -q '^  link down' <<<"$TS_REPLY"
	ts_quit "$k"
}
for way in cli srv; do
	sock="$TS_DIR/memif-lone-$way.sock"
	TS_QUIET=1 ts_start srv-$way -l 1 "${eal[@]}" --file-prefix "$(ts_prefix srv-$way)" \
		--vdev "$(memif server),rsize=14" -- --addr "$SRV_IP/24" --busy-poll --serve echo
	TS_QUIET=1 ts_start cli-$way -l 0 "${eal[@]}" --file-prefix "$(ts_prefix cli-$way)" \
		--vdev "$(memif client),rsize=14" -- --addr "$CLI_IP/24" --busy-poll --serve echo
	TS_QUIET=1 ts_cmd cli-$way "ping $SRV_IP 3 10" 30
	if [ $way = cli ]; then lone_quit cli-$way srv-$way "$CLI_IP"; else lone_quit srv-$way cli-$way "$SRV_IP"; fi
done
ts_end
