#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# preload-errpaths: errpaths.c's cases (every intercepted call's error paths, blocking and
# non-blocking semantics, epoll/poll/select, dup, fork) under libkeel_preload.so, against
# errpaths_peer.py on the kernel side of the lab (test/interop/lab.sh: kernel 198.18.0.1,
# keel 198.18.0.2). The same program runs first without the shim, the kernel on both
# ends: that run shows the expectations are Linux's.
#
#   errpaths.sh KEEL_PMD ERRPATHS LIBKEEL_PRELOAD ERRPATHS_PEER_PY
source "$(dirname "$0")/../interop/lab.sh"
lab_test_init preload-errpaths "$1"
PROG=$(realpath "$2")
SHIM=$(realpath "$3")
PEER_PY=$(realpath "$4")
[ -x "$PROG" ] || lab_abort "errpaths not found at '$2'"
[ -f "$SHIM" ] || lab_abort "libkeel_preload.so not found at '$3'"
lab_require_cmd python3 python3
BASE=7001
WORK=$(mktemp -d "/tmp/$LAB_NS.errpaths.XXXXXX")
PEER=""
finish() {
	if [ -n "$PEER" ]; then
		kill -KILL "$PEER" 2>/dev/null
		wait "$PEER" 2>/dev/null
	fi
	rm -rf "$WORK"
	lab_cleanup
}
trap finish EXIT

SHIM_ENV=(LD_PRELOAD="$SHIM" KEEL_ADDR="$LAB_KEEL_IP/$LAB_PLEN"
	KEEL_EAL="${LAB_EAL_ARGS[*]} --log-level=lib.eal:warning --log-level=pmd:error")

lab_nsx python3 "$PEER_PY" "$LAB_KERNEL_IP" "$BASE" >"$WORK/peer.out" 2>&1 &
PEER=$!
t0=$(lab_now_ms)
until grep -q ready "$WORK/peer.out" 2>/dev/null; do
	kill -0 "$PEER" 2>/dev/null || lab_abort "the peer ended: $(cat "$WORK/peer.out")"
	[ $(($(lab_now_ms) - t0)) -gt 10000 ] && lab_abort "the peer is not ready after 10 s"
	sleep 0.05
done

# run NAME ENV... -- ARGS...: the program, its output kept and summarised.
run() {
	local name=$1 rc
	shift
	local envs=()
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	lab_nsx env "${envs[@]}" timeout ${ERRPATHS_TIMEOUT:-120} "$PROG" "$LAB_KERNEL_IP" "$BASE" "$@" >"$WORK/$name.out" 2>&1
	rc=$?
	local oks fails
	oks=$(grep -c '^ok ' "$WORK/$name.out")
	fails=$(grep -c '^FAIL ' "$WORK/$name.out")
	grep -E "^(FAIL|# [a-z_.]+:|# [a-z_.]+ gave|# sndtimeo)" "$WORK/$name.out" | sed 's/^/    /'
	lab_check "$name: status $rc, $oks checks passed, $fails failed" eval '[ "$rc" = 0 ] && [ "$oks" -gt 0 ] && [ "$fails" = 0 ]'
	[ "$rc" = 0 ] || tail -n 5 "$WORK/$name.out" | grep -vE '^(ok|FAIL) ' | sed 's/^/    /'
}

# A connect nobody answers gives up after syn_retries (6: ~2 min): 1 here (SYN + 1 retry, ~3 s).
printf '[tcp]\nsyn_retries = 1\n' >"$WORK/tcp.conf"
FAST_SYN=(KEEL_CONFIG="$WORK/tcp.conf")

# ERRPATHS_CASES="CASE..." (by hand): only those, under the shim, the whole output shown.
if [ -n "${ERRPATHS_CASES:-}" ]; then
	run shim "${SHIM_ENV[@]}" "${FAST_SYN[@]}" -- "$LAB_KEEL_IP" $ERRPATHS_CASES
	cat "$WORK/shim.out"
	lab_test_end
fi
# Linux's reference: the kernel on both ends (self = the kernel's address).
run kernel -- "$LAB_KERNEL_IP" kernel all noanswer
# Under the shim: listen-then-fork in a process whose stack has not started, then the rest.
run shim-prefork "${SHIM_ENV[@]}" -- "$LAB_KEEL_IP" prefork
run shim "${SHIM_ENV[@]}" "${FAST_SYN[@]}" -- "$LAB_KEEL_IP" all noanswer

lab_test_end
