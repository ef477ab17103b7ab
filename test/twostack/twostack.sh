# shellcheck shell=bash
# SPDX-License-Identifier: BSD-3-Clause
# twostack.sh - helpers for the two-stack tests (test/twostack/), sourced by each script.
# Two keel stacks talk to each other with no kernel in between: over net_ring in one
# process (keel-pmd --loopback) or over net_memif between two keel-pmd processes. The
# drivers/ fault injector impairs the link; TCP must still deliver every byte.
#
# Usage:
#   source "$(dirname "$0")/twostack.sh"
#   ts_init NAME "$@"                       # $1 = path of keel-pmd; installs the cleanup trap
#   ts_start srv EAL_ARGS... -- OPTS...     # keel-pmd -i on a FIFO, waits for its prompt
#   ts_cmd srv "show tcp" [TIMEOUT_S]       # output in TS_REPLY (also printed)
#   ts_check "what" test ...                # one named check; failures are counted
#   ts_quit srv                             # quit, check exit status 0
#   ts_end                                  # PASS/FAIL line, exit status
# The EXIT trap kills the keel-pmd processes this run started (by PID), removes the
# memif socket directory and EAL's runtime directories of this run's file prefixes. Should
# the script itself be killed (SIGKILL after a meson timeout), each keel-pmd reads EOF on
# its FIFO once the running command ends, and exits.

TS_NAME=twostack
TS_DIR=""            # temporary directory: FIFOs, outputs, memif socket
TS_FAILS=0
TS_DONE=0
TS_REPLY=""
declare -A TS_PID=() TS_FD=()

ts_say() { echo "[$TS_NAME] $*"; }
ts_now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

ts_abort() {
	ts_say "error: $*"
	exit 1
}

# ts_check DESCRIPTION COMMAND...: runs COMMAND, prints ok/FAIL, counts failures.
ts_check() {
	local what=$1
	shift
	if "$@"; then
		ts_say "  ok    $what"
	else
		ts_say "  FAIL  $what"
		TS_FAILS=$((TS_FAILS + 1))
	fi
}

# ts_prefix NAME: an EAL --file-prefix of this run's own (independent primaries need
# different ones); the cleanup removes EAL's runtime directories for them.
ts_prefix() { echo "keel-ts-$$-$1"; }

ts_alive() { [ -n "${TS_PID[$1]:-}" ] && kill -0 "${TS_PID[$1]}" 2>/dev/null; }
ts_prompts() { grep -o 'keel> ' "$TS_DIR/$1.out" 2>/dev/null | wc -l; }

# ts_start NAME ARGS...: keel-pmd ARGS -i with a FIFO on stdin; waits for the first prompt.
ts_start() {
	local name=$1 fd t0
	shift
	mkfifo "$TS_DIR/$name.in"
	# Read-write open does not block on a FIFO; keel-pmd's read end then opens at once.
	exec {fd}<>"$TS_DIR/$name.in"
	TS_FD[$name]=$fd
	ts_say "start $name: keel-pmd $* -i"
	"$KEEL_PMD" "$@" -i <"$TS_DIR/$name.in" >"$TS_DIR/$name.out" 2>"$TS_DIR/$name.err" &
	TS_PID[$name]=$!
	t0=$(ts_now_ms)
	while [ "$(ts_prompts "$name")" -lt 1 ]; do
		ts_alive "$name" || ts_abort "keel-pmd $name exited during start-up"
		[ $(($(ts_now_ms) - t0)) -lt 30000 ] || ts_abort "keel-pmd $name not ready after 30 s"
		sleep 0.05
	done
	ts_say "$name up (pid ${TS_PID[$name]}) after $(($(ts_now_ms) - t0)) ms"
}

# ts_cmd NAME COMMAND [TIMEOUT_S]: one command; its output (prompt removed) lands in
# TS_REPLY and is printed (unless TS_QUIET=1). A command is done when keel-pmd prints its
# next prompt.
ts_cmd() {
	local name=$1 cmd=$2 limit=${3:-60} before off t0
	ts_alive "$name" || ts_abort "keel-pmd $name is not running (command '$cmd')"
	before=$(ts_prompts "$name")
	off=$(stat -c %s "$TS_DIR/$name.out")
	[ "${TS_QUIET:-0}" = 1 ] || ts_say "$name> $cmd"
	printf '%s\n' "$cmd" >&"${TS_FD[$name]}"
	t0=$(ts_now_ms)
	while [ "$(ts_prompts "$name")" -le "$before" ]; do
		ts_alive "$name" || ts_abort "keel-pmd $name exited during '$cmd'"
		[ $(($(ts_now_ms) - t0)) -lt $((limit * 1000)) ] || ts_abort "$name: no prompt after '$cmd' within $limit s"
		sleep 0.05
	done
	TS_REPLY=$(tail -c +$((off + 1)) "$TS_DIR/$name.out" | sed '$ s/keel> $//')
	[ "${TS_QUIET:-0}" = 1 ] || printf '%s\n' "$TS_REPLY" | sed 's/^/    /'
}

# ts_quit NAME: `quit`, then keel-pmd must exit with status 0 within 20 s.
ts_quit() {
	local name=$1 t0 rc
	ts_alive "$name" || ts_abort "keel-pmd $name died before quit"
	ts_say "$name> quit"
	printf 'quit\n' >&"${TS_FD[$name]}"
	t0=$(ts_now_ms)
	while ts_alive "$name" && [ $(($(ts_now_ms) - t0)) -lt 20000 ]; do sleep 0.05; done
	if ts_alive "$name"; then
		ts_check "$name exits within 20 s of quit" false
		return
	fi
	wait "${TS_PID[$name]}"
	rc=$?
	TS_PID[$name]=""
	ts_check "$name exit status is 0 (was $rc)" [ "$rc" = 0 ]
}

# ts_line PATTERN: the first line of TS_REPLY that starts with PATTERN.
ts_line() { grep -m1 "^$1" <<<"$TS_REPLY"; }
# ts_field LINE REGEX: the first capture group of a sed -E REGEX (no '#' in it) over LINE.
ts_field() { sed -nE "s#.*$2.*#\1#p" <<<"$1" | head -n1; }
# ts_mbufs_in_use: the count from `show tcp` in TS_REPLY.
ts_mbufs_in_use() { sed -n 's/^mbufs in use: \([0-9]*\) of.*/\1/p' <<<"$TS_REPLY"; }
# ts_conns: connections on instance 0 from `show tcp`/`show conns` in TS_REPLY.
ts_conns() { sed -n 's/^instance 0: \([0-9]*\) connection.*/\1/p' <<<"$TS_REPLY" | head -n1; }

ts_print_stderr() {
	local f
	for f in "$TS_DIR"/*.err; do
		[ -s "$f" ] || continue
		ts_say "$(basename "$f" .err) stderr (last 20 lines):"
		tail -n 20 "$f" | sed 's/^/    /'
	done
}

ts_cleanup() {
	local rc=$? name pid fd
	trap - EXIT INT TERM
	for name in "${!TS_PID[@]}"; do
		pid=${TS_PID[$name]}
		if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then continue; fi
		ts_say "cleanup: stopping $name (pid $pid)"
		kill -TERM "$pid" 2>/dev/null
		for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	for name in "${!TS_FD[@]}"; do
		fd=${TS_FD[$name]}
		exec {fd}>&-
	done
	rm -rf "/var/run/dpdk/keel-ts-$$-"* "${XDG_RUNTIME_DIR:-/tmp}/dpdk/keel-ts-$$-"*
	if [ "$TS_DONE" = 0 ]; then
		[ -n "$TS_DIR" ] && ts_print_stderr
		[ "$rc" = 0 ] && rc=1
		ts_say "FAIL: $TS_NAME (aborted)"
	fi
	[ -n "$TS_DIR" ] && rm -rf "$TS_DIR"
	exit "$rc"
}

# ts_init NAME [KEEL_PMD_PATH]: the trap, the temporary directory, keel-pmd's path.
ts_init() {
	TS_NAME=$1
	KEEL_PMD=${2:-${KEEL_PMD:-build/tools/keel-pmd/keel-pmd}}
	trap ts_cleanup EXIT
	trap 'ts_say "interrupted"; exit 130' INT
	trap 'ts_say "terminated"; exit 143' TERM
	[ -x "$KEEL_PMD" ] || ts_abort "keel-pmd not found at '$KEEL_PMD' (build it first)"
	TS_DIR=$(mktemp -d "/tmp/keel-ts-$$.XXXXXX")
}

# Prints PASS/FAIL and exits (the trap then cleans up).
ts_end() {
	TS_DONE=1
	if [ "$TS_FAILS" = 0 ]; then
		ts_say "PASS: $TS_NAME"
		exit 0
	fi
	ts_print_stderr
	ts_say "FAIL: $TS_NAME ($TS_FAILS check(s) failed)"
	exit 1
}
