# shellcheck shell=bash
# SPDX-License-Identifier: BSD-3-Clause
# ex_lab.sh - test/interop/lab.sh for the example programs instead of keel-pmd: the same
# namespace, tap and cleanup trap; an example takes keel-pmd's place (LAB_PMD_PID, LAB_DIR)
# so lab_cleanup stops it by PID, prints its stderr on failure and deletes the namespace.
#
#   source "$(dirname "$0")/ex_lab.sh"
#   ex_test_init NAME EXAMPLES_DIR         # root + namespace + tap, or exit 77
#   ex_start PROGRAM ARGS...               # in the namespace, until it prints "listening"
#   ex_run SECONDS PROGRAM ARGS...         # in the foreground; output in LAB_REPLY, its status returned
#   ex_stop                                # SIGINT; it must exit 0 within 10 s
#   lab_check ... ; lab_test_end           # as in lab.sh
# The examples read the port from the environment (keel::apply_env): KEEL_EAL carries this
# run's EAL file prefix, KEEL_ADDR keel's address. EX_ARGS (e.g. "--config FILE") come first.
source "$(dirname "${BASH_SOURCE[0]}")/../interop/lab.sh"
EX_CLIENT="/usr/bin/python3 $(dirname "${BASH_SOURCE[0]}")/../interop/tcp_client.py"
EX_ARGS=()

ex_test_init() {
	EX_DIR=$2
	lab_test_init "$1" "$EX_DIR/echo_server"
}

# ex_cmd PROGRAM: EX_CMD is the command line that runs it in the namespace with the
# lab's environment (ip netns exec and env exec it: the PID is the example's).
ex_cmd() {
	EX_CMD=(ip netns exec "$LAB_NS" env KEEL_EAL="${LAB_EAL_ARGS[*]}" KEEL_ADDR="$LAB_KEEL_IP/$LAB_PLEN"
	        "$EX_DIR/$1" "${EX_ARGS[@]}")
}

ex_start() {
	lab_pmd_alive && lab_abort "an example (pid $LAB_PMD_PID) is still running"
	[ -n "$LAB_DIR" ] && rm -rf "$LAB_DIR"
	LAB_DIR=$(mktemp -d "/tmp/$LAB_NS.XXXXXX")
	lab_say "start: $* ${EX_ARGS[*]}"
	ex_cmd "$1"
	shift
	"${EX_CMD[@]}" "$@" >"$LAB_DIR/pmd.out" 2>"$LAB_DIR/pmd.err" &
	LAB_PMD_PID=$!
	local t0
	t0=$(lab_now_ms)
	until grep -q listening "$LAB_DIR/pmd.out"; do
		lab_pmd_alive || lab_abort "the example exited during start-up"
		[ $(($(lab_now_ms) - t0)) -lt 30000 ] || lab_abort "not listening after 30 s"
		sleep 0.05
	done
	lab_say "$(cat "$LAB_DIR/pmd.out") (pid $LAB_PMD_PID, $(($(lab_now_ms) - t0)) ms)"
	lab_set_kernel_mac || lab_abort "cannot set the kernel side's MAC to $LAB_KERNEL_MAC"
}

ex_run() {
	local secs=$1 rc
	shift
	lab_say "run: $* ${EX_ARGS[*]}"
	ex_cmd "$1"
	shift
	LAB_REPLY=$(timeout "$secs" "${EX_CMD[@]}" "$@" 2>&1)
	rc=$?
	printf '%s\n' "$LAB_REPLY" | grep -v '^EAL: \|^TELEMETRY: ' | sed 's/^/    /'
	return $rc
}

ex_stop() {
	lab_pmd_alive || { lab_check "the example was still running at the end" false; return; }
	kill -INT "$LAB_PMD_PID"
	local t0 rc
	t0=$(lab_now_ms)
	while lab_pmd_alive && [ $(($(lab_now_ms) - t0)) -lt 10000 ]; do sleep 0.05; done
	if lab_pmd_alive; then
		lab_check "the example exits within 10 s of SIGINT" false
		return
	fi
	wait "$LAB_PMD_PID"
	rc=$?
	LAB_PMD_PID=""
	lab_check "the example exits with status 0 after SIGINT" [ "$rc" = 0 ]
}
