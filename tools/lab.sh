#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# lab.sh - the keel/Linux lab for people: the set-up the interop tests make for themselves
# (test/interop/lab.sh, shared), kept up until you take it down.
#
#   tools/lab.sh up          namespace keel-demo: tap ktap0, kernel side 198.18.0.1/24, no IPv6
#   tools/lab.sh pmd [--build DIR] [-- keel-pmd options]
#                            run keel-pmd -i in the lab (198.18.0.2/24); gives the kernel
#                            side its own MAC once the tap PMD has copied the port's onto it
#   tools/lab.sh mac         give the kernel side its MAC again (keel-pmd started by hand:
#                            run this after its first prompt, when the port has started)
#   tools/lab.sh status      what exists
#   tools/lab.sh down        delete the namespace (and the tap with it)
#
# From another shell:  ip netns exec keel-demo ping 198.18.0.2
# Environment: LAB_NS (keel-demo), LAB_TAP (ktap0), LAB_KERNEL_MAC (02:00:00:00:01:01),
#              KEEL_PMD (path of keel-pmd; default build/tools/keel-pmd/keel-pmd).
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB_NS=${LAB_NS:-keel-demo}
LAB_NAME=lab
# shellcheck source=../test/interop/lab.sh disable=SC2034  # LAB_* variables are read by lab.sh
source "$root/test/interop/lab.sh"

die() { echo "lab: $*" >&2; exit 1; }
need_root() { [ "$(id -u)" = 0 ] || die "must run as root"; }
need_lab() { [ -e "/run/netns/$LAB_NS" ] || die "no lab: run '$0 up' first"; }

cmd_up() {
	need_root
	command -v ip >/dev/null || die "'ip' not found (apt-get install iproute2)"
	lab_ns_up
	lab_set_kernel_mac || die "cannot set $LAB_TAP's MAC"
	echo "lab: up: namespace $LAB_NS, $LAB_TAP $LAB_KERNEL_IP/$LAB_PLEN (MAC $LAB_KERNEL_MAC); keel uses $LAB_KEEL_IP"
	echo "lab: run keel-pmd with '$0 pmd', or by hand:"
	echo "  ip netns exec $LAB_NS ${KEEL_PMD:-build/tools/keel-pmd/keel-pmd} ${LAB_EAL_ARGS[*]} -- --addr $LAB_KEEL_IP/$LAB_PLEN -i"
	echo "  $0 mac    # then, so the kernel side and keel have different MACs"
}

cmd_pmd() {
	need_root
	need_lab
	local pmd=${KEEL_PMD:-$root/build/tools/keel-pmd/keel-pmd}
	if [ "${1:-}" = --build ]; then
		[ $# -ge 2 ] || die "--build needs a build directory"
		pmd=$2/tools/keel-pmd/keel-pmd
		shift 2
	fi
	[ "${1:-}" = -- ] && shift
	[ -x "$pmd" ] || die "keel-pmd not found at $pmd (build it, or pass --build DIR)"
	local pids
	pids=$(ip netns pids "$LAB_NS" | tr '\n' ' ')
	[ -z "$pids" ] || die "processes already run in $LAB_NS: $pids"
	lab_set_kernel_mac || die "cannot set $LAB_TAP's MAC"
	# The tap PMD copies the port MAC onto the kernel side when it probes the device and
	# again at every port start (ethdev replays the MAC): keep putting ours back while
	# keel-pmd runs.
	(
		said=0
		while sleep 0.2; do
			[ "$(lab_kernel_mac 2>/dev/null)" = "$LAB_KERNEL_MAC" ] && continue
			lab_set_kernel_mac 2>/dev/null || continue
			[ "$said" = 1 ] || echo "lab: kernel side $LAB_TAP MAC set to $LAB_KERNEL_MAC" >&2
			said=1
		done
	) &
	local watcher=$!
	ip netns exec "$LAB_NS" "$pmd" "${LAB_EAL_ARGS[@]}" -- --addr "$LAB_KEEL_IP/$LAB_PLEN" -i "$@"
	local rc=$?
	kill "$watcher" 2>/dev/null
	wait "$watcher" 2>/dev/null
	rm -rf "/var/run/dpdk/$LAB_FILE_PREFIX"
	# keel-pmd leaves the tap down with the port's MAC; ready it for the next run.
	lab_set_kernel_mac
	lab_nsx ip link set "$LAB_TAP" up
	return "$rc"
}

cmd_down() {
	need_root
	if [ -e "/run/netns/$LAB_NS" ]; then
		local pids
		pids=$(ip netns pids "$LAB_NS" | tr '\n' ' ')
		[ -z "$pids" ] || echo "lab: warning: processes still in $LAB_NS: $pids(not killed)" >&2
		lab_ns_down
	fi
	[ -n "$(ip netns pids "$LAB_NS" 2>/dev/null)" ] || rm -rf "/var/run/dpdk/$LAB_FILE_PREFIX"
	echo "lab: down ($LAB_NS)"
}

case "${1:-}" in
up) cmd_up ;;
pmd) shift; cmd_pmd "$@" ;;
mac) need_root; need_lab; lab_set_kernel_mac && echo "lab: $LAB_TAP MAC $LAB_KERNEL_MAC" ;;
status) lab_ns_status ;;
down) cmd_down ;;
*) sed -n '3,17s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
esac
