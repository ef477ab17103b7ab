#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Stress for net_memif's quit paths (not a meson test): ROUNDS pairs of keel-pmd over
# net_memif on big rings, both busy-polling and serving echo, started as bench.sh starts
# its quit rounds (server -l 1, client -l 0), a burst of traffic, then
#   both   `quit` to both at the same moment: both exit 0;
#   srv    the server quits alone while the client runs a bench rr to it: the client
#          runs on, answers a command, quits with 0;
#   cli    the same with the roles swapped.
#   test/twostack/quit-loop.sh path/to/keel-pmd both|srv|cli [ROUNDS]
# QL_SRV_CPU / QL_CLI_CPU: that side on that one CPU (taskset; EAL's control threads
# then share it with the poll loop). QL_HOG=1: a busy loop on CPU 0 while they quit.
# The environment passes through to keel-pmd: LD_PRELOAD=delay_intr.so (built from
# delay_intr.c here) makes EAL's interrupt thread late, as on a loaded machine.
# A process still running 20 s after its quit gets its stacks printed (gdb) and 100 s
# more. One line per round, then a summary; exit status 1 if any round failed. Core
# dumps land wherever core_pattern says (set it, and `ulimit -c`, to keep them).
set -uo pipefail
# shellcheck source=twostack.sh
source "$(dirname "$0")/twostack.sh"

MODE=${2:-both}
ROUNDS=${3:-30}
SRV_IP=198.18.4.2
CLI_IP=198.18.4.1
ts_init "quit-loop-$MODE" "$1"
eal=(--no-huge -m 512 --no-pci --log-level=pmd:warning)
memif() { echo "net_memif0,role=$1,socket=$sock,socket-abstract=no,rsize=14"; }

# start NAME PIN ARGS...: ts_start, PIN (a taskset command or "") before keel-pmd, with a
# longer wait for the prompt (QL_START_S, 180 s): a loaded machine starts EAL slowly.
start() {
	local name=$1 pin=$2 fd t0
	shift 2
	mkfifo "$TS_DIR/$name.in"
	exec {fd}<>"$TS_DIR/$name.in"
	TS_FD[$name]=$fd
	$pin "$KEEL_PMD" "$@" -i <"$TS_DIR/$name.in" >"$TS_DIR/$name.out" 2>"$TS_DIR/$name.err" &
	TS_PID[$name]=$!
	t0=$(ts_now_ms)
	while [ "$(ts_prompts "$name")" -lt 1 ]; do
		ts_alive "$name" || ts_abort "keel-pmd $name exited during start-up"
		[ $(($(ts_now_ms) - t0)) -lt $((${QL_START_S:-180} * 1000)) ] || ts_abort "keel-pmd $name not ready"
		sleep 0.05
	done
}

# wait_exit NAME: waits up to 20 s (then prints its stacks and waits 100 s more); RC =
# the exit status, "slow:STATUS" after the 20 s, or "hung".
wait_exit() {
	local t0 slow=""
	t0=$(ts_now_ms)
	while ts_alive "$1" && [ $(($(ts_now_ms) - t0)) -lt 20000 ]; do sleep 0.02; done
	if ts_alive "$1"; then
		echo "--- $1 (pid ${TS_PID[$1]}) still running 20 s after quit:"
		gdb -batch -p "${TS_PID[$1]}" -ex "thread apply all bt 12" 2>/dev/null | grep -E '^(#|Thread)'
		while ts_alive "$1" && [ $(($(ts_now_ms) - t0)) -lt 120000 ]; do sleep 0.1; done
		slow="slow:"
	fi
	if ts_alive "$1"; then
		RC=hung
		return
	fi
	wait "${TS_PID[$1]}"
	RC=$slow$?
	TS_PID[$1]=""
}

hog_pid=""
hog_start() {
	[ "${QL_HOG:-0}" = 1 ] || return 0
	taskset -c 0 sh -c 'while :; do :; done' &
	hog_pid=$!
	TS_PID[hog]=$hog_pid   # the EXIT trap stops it too
}
hog_stop() {
	[ -n "$hog_pid" ] || return 0
	kill "$hog_pid" 2>/dev/null
	wait "$hog_pid" 2>/dev/null
	hog_pid=""
	TS_PID[hog]=""
}

srv_l=${QL_SRV_CPU:-1} cli_l=${QL_CLI_CPU:-0} srv_pin="" cli_pin=""
[ -n "${QL_SRV_CPU:-}" ] && srv_pin="taskset -c $QL_SRV_CPU"
[ -n "${QL_CLI_CPU:-}" ] && cli_pin="taskset -c $QL_CLI_CPU"

bad=0
for i in $(seq "$ROUNDS"); do
	sock="$TS_DIR/memif-$i.sock"
	s=srv$i c=cli$i
	start "$s" "$srv_pin" -l "$srv_l" "${eal[@]}" --file-prefix "$(ts_prefix "$s")" \
		--vdev "$(memif server)" -- --addr "$SRV_IP/24" --busy-poll --serve echo
	start "$c" "$cli_pin" -l "$cli_l" "${eal[@]}" --file-prefix "$(ts_prefix "$c")" \
		--vdev "$(memif client)" -- --addr "$CLI_IP/24" --busy-poll --serve echo
	TS_QUIET=1 ts_cmd "$c" "bench rr $SRV_IP 7 64 2000 0.2" 60
	result="round $i:"
	hog_start
	case $MODE in
	both)
		printf 'quit\n' >&"${TS_FD[$s]}"
		printf 'quit\n' >&"${TS_FD[$c]}"
		wait_exit "$s"; rs=$RC
		wait_exit "$c"; rc=$RC
		result+=" srv=$rs cli=$rc"
		[ "$rs" = 0 ] && [ "$rc" = 0 ] || bad=$((bad + 1))
		;;
	srv | cli)
		if [ "$MODE" = srv ]; then q=$s k=$c peer=$SRV_IP; else q=$c k=$s peer=$CLI_IP; fi
		# The survivor's data path is busy when its peer goes: 200 connections of
		# request/response to the peer's echo for 2 s; the peer quits 0.2-1.2 s into it.
		before=$(ts_prompts "$k")
		printf 'bench rr %s 7 64 200 2\n' "$peer" >&"${TS_FD[$k]}"
		sleep "$((2 + RANDOM % 10))e-1"
		printf 'quit\n' >&"${TS_FD[$q]}"
		wait_exit "$q"; rq=$RC
		t0=$(ts_now_ms)
		while ts_alive "$k" && [ "$(ts_prompts "$k")" -le "$before" ] && [ $(($(ts_now_ms) - t0)) -lt 60000 ]; do
			sleep 0.05
		done
		if ts_alive "$k"; then
			sleep 0.5
			TS_QUIET=1 ts_cmd "$k" "show port" 30
			printf 'quit\n' >&"${TS_FD[$k]}"
			wait_exit "$k"; rk=$RC
		else
			wait_exit "$k"; rk="died:$RC"
		fi
		result+=" quitter=$rq survivor=$rk"
		[ "$rq" = 0 ] && [ "$rk" = 0 ] || bad=$((bad + 1))
		;;
	esac
	hog_stop
	echo "$result"
	rm -f "$sock"
done
echo "quit-loop $MODE: $ROUNDS rounds, $bad failed"
hog_stop
TS_DONE=1
[ "$bad" = 0 ]
