# shellcheck shell=bash disable=SC2034  # variables here are read by the scripts that source this
# SPDX-License-Identifier: BSD-3-Clause
# lab.sh - the keel/Linux interop lab, sourced by the tests in test/interop/ and by tools/lab.sh.
#
#   [namespace LAB_NS]  ktap0  198.18.0.1/24  kernel side of a multi_queue tap (MAC LAB_KERNEL_MAC)
#                         |    tap
#                       keel-pmd --vdev net_tap0,iface=ktap0 -- --addr 198.18.0.2/24 -i
#
# keel-pmd runs inside the namespace (the tap PMD must), so nothing outside it is touched.
# A test run owns a namespace of its own (keel-ip-PID), so runs never share state and a
# crashed run cannot break the next one. IPv6 is off in the namespace: router and
# neighbour solicitations would otherwise reach the port.
#
# Test usage:
#   source "$(dirname "$0")/lab.sh"
#   lab_test_init NAME "$@"        # $1 = path of keel-pmd; skips (exit 77) unless root with ip netns
#   lab_pmd_start                  # keel-pmd up, kernel side given its own MAC
#   lab_cmd "show port"            # output in LAB_REPLY (also printed)
#   lab_check "what" test ...      # one named check; failures are counted
#   lab_pmd_quit                   # quit, check exit status 0 (lab_pmd_start may follow again)
#   lab_nft_loss IN OUT            # kernel-side random loss, per mille each way (nftables)
#   lab_test_end                   # PASS/FAIL line, exit status
# The EXIT/INT/TERM trap kills the keel-pmd this run started (by PID) and deletes the namespace.

LAB_TAP=${LAB_TAP:-ktap0}
LAB_KERNEL_IP=198.18.0.1
LAB_KEEL_IP=198.18.0.2
LAB_PLEN=24
# The tap PMD copies the port MAC onto the kernel side of the tap; this one replaces it.
LAB_KERNEL_MAC=${LAB_KERNEL_MAC:-02:00:00:00:01:01}

# lab_use_ns NAME: the namespace to work in; keel-pmd's EAL file prefix is named after it
# (independent EAL primaries need different prefixes; /var/run/dpdk is shared).
lab_use_ns() {
	LAB_NS=$1
	LAB_FILE_PREFIX=$1
	LAB_EAL_ARGS=(-l 0 --no-huge -m 512 --no-pci --file-prefix "$LAB_FILE_PREFIX"
	              --log-level=pmd:warning --vdev "net_tap0,iface=$LAB_TAP")
}
lab_use_ns "${LAB_NS:-keel-ip-$$}"

# Counters that count traffic, not trouble. Any other non-zero counter after a test is a
# drop the test did not expect (LAB_TOLERATED lists more names a test accepts).
LAB_TRAFFIC_COUNTERS="rx_packets rx_bytes tx_packets tx_bytes arp_requests_in arp_replies_in
  arp_requests_out arp_replies_out ip_in ip_out ip_frag_in ip_reassembled icmp_in
  icmp_echo_requests icmp_echo_replies_out icmp_echo_replies_in icmp_echo_requests_out
  tx_retries tcp_segs_in tcp_segs_out tcp_tx_copied_bytes tcp_active_opens tcp_passive_opens tcp_delayed_acks
  steer_forwarded steer_received steer_arp_copies steer_tx_handoff"
LAB_TOLERATED=${LAB_TOLERATED:-}
# Loss recovery: a tap is a real path that loses frames (the kernel drops when its
# queue to keel is full, txqueuelen 1000), so TCP tests tolerate recovering from it.
LAB_TCP_RECOVERY="tcp_retransmits tcp_fast_retransmits tcp_sack_recoveries tcp_rto_timeouts
  tcp_tail_probes tcp_dup_acks tcp_ooo_segments tcp_dup_segments tcp_out_of_window
  tcp_oow_acks_limited"
# Many connections: a late or duplicate segment of a connection keel has already
# closed finds none; an ACK to a listening port is then taken for the answer to a SYN
# cookie (tcp_syn_cookies_bad) and, like any such segment, gets a RST (RFC 9293 3.10.7.1).
LAB_TCP_LATE="tcp_syn_cookies_bad tcp_no_connection tcp_resets_sent tcp_resets_received
  tcp_data_after_close"

# keel-pmd's namespace: the lab's own (net_tap), or one of its own for net_af_packet on a
# veth whose kernel end is in LAB_NS (lab_veth_up); then LAB_TAP names that kernel end.
LAB_PMD_NS=""
LAB_PMD_NS_MADE=0

LAB_NAME=${LAB_NAME:-lab}
LAB_PMD_PID=""      # keel-pmd started by this shell
LAB_FD=""           # write end of keel-pmd's stdin FIFO
LAB_DIR=""          # temporary directory: FIFO and keel-pmd's output
LAB_NS_MADE=0       # 1 once this shell created LAB_NS (only then does cleanup delete it)
LAB_FAILS=0
LAB_DONE=0          # 1 once the PASS/FAIL line was printed
LAB_REPLY=""        # output of the last lab_cmd / lab_kping
LAB_PMD_MAC=""      # set by lab_pmd_mac

lab_say() { echo "[$LAB_NAME] $*"; }
lab_nsx() { ip netns exec "$LAB_NS" "$@"; }
lab_now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# Skips the test (meson: exit 77) with a reason.
lab_skip() {
	lab_say "SKIP: $*"
	LAB_DONE=1
	exit 77
}

# Stops the test now: the trap prints keel-pmd's log and the FAIL line.
lab_abort() {
	lab_say "error: $*"
	exit 1
}

# lab_check DESCRIPTION COMMAND...: runs COMMAND, prints ok/FAIL, counts failures.
lab_check() {
	local what=$1
	shift
	if "$@"; then
		lab_say "  ok    $what"
	else
		lab_say "  FAIL  $what"
		LAB_FAILS=$((LAB_FAILS + 1))
	fi
}

lab_require_cmd() {  # lab_require_cmd COMMAND DEBIAN_PACKAGE
	command -v "$1" >/dev/null 2>&1 || lab_skip "'$1' not found (apt-get install $2)"
}

# Skips unless this shell may make namespaces and taps. KEEL_INTEROP_REQUIRE=1 turns a
# skip for a missing capability into a failure (CI runs as root and must not skip).
lab_require_privileges() {
	local why=""
	if [ "$(id -u)" != 0 ]; then
		why="needs root (network namespace and tap)"
	elif ! command -v ip >/dev/null 2>&1; then
		why="'ip' not found (apt-get install iproute2)"
	elif ! ip netns list >/dev/null 2>&1; then
		why="'ip netns' is unavailable here"
	elif [ ! -c /dev/net/tun ]; then
		why="/dev/net/tun is missing"
	fi
	[ -z "$why" ] && return 0
	[ "${KEEL_INTEROP_REQUIRE:-0}" = 1 ] && lab_abort "$why (KEEL_INTEROP_REQUIRE=1)"
	lab_skip "$why"
}

# Namespace with the kernel side of the tap. Safe to call again on an existing lab.
lab_ns_up() {
	if [ ! -e "/run/netns/$LAB_NS" ]; then
		local err
		if ! err=$(ip netns add "$LAB_NS" 2>&1); then
			[ "${KEEL_INTEROP_REQUIRE:-0}" = 1 ] && lab_abort "ip netns add $LAB_NS: $err"
			lab_skip "cannot create a network namespace: $err"
		fi
		LAB_NS_MADE=1
	fi
	lab_nsx ip link set lo up
	lab_nsx sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 ||
		lab_abort "cannot disable IPv6 in $LAB_NS"
	if ! lab_nsx ip link show "$LAB_TAP" >/dev/null 2>&1; then
		# multi_queue: the tap PMD opens the device with IFF_MULTI_QUEUE.
		lab_nsx ip tuntap add dev "$LAB_TAP" mode tap multi_queue || lab_abort "cannot create tap $LAB_TAP"
	fi
	lab_nsx ip addr replace "$LAB_KERNEL_IP/$LAB_PLEN" dev "$LAB_TAP"
	lab_nsx ip link set "$LAB_TAP" up   # NO-CARRIER until keel-pmd attaches
}

# lab_veth_up VDEV_OPTIONS: keel-pmd on net_af_packet instead of the tap. A namespace of
# its own (LAB_NS-k) holds the veth end keel uses; the kernel end (LAB_TAP, renamed kveth0)
# is in LAB_NS with the kernel's address, checksum offloads off (shared/lab/README.md).
# Call after lab_test_init (which made the tap, deleted here); sets the vdev in LAB_EAL_ARGS.
lab_veth_up() {
	local opts=${1:-}
	lab_nsx ip link del "$LAB_TAP" 2>/dev/null
	LAB_TAP=kveth0
	LAB_PMD_NS="$LAB_NS-k"
	ip netns add "$LAB_PMD_NS" || lab_abort "cannot create namespace $LAB_PMD_NS"
	LAB_PMD_NS_MADE=1
	ip netns exec "$LAB_PMD_NS" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	lab_nsx ip link add "$LAB_TAP" type veth peer name kveth1 netns "$LAB_PMD_NS" ||
		lab_abort "cannot create the veth pair"
	lab_nsx ethtool -K "$LAB_TAP" tx off rx off tso off gso off gro off >/dev/null 2>&1
	ip netns exec "$LAB_PMD_NS" ethtool -K kveth1 tx off rx off tso off gso off gro off >/dev/null 2>&1
	lab_nsx ip addr replace "$LAB_KERNEL_IP/$LAB_PLEN" dev "$LAB_TAP"
	lab_nsx ip link set "$LAB_TAP" up
	ip netns exec "$LAB_PMD_NS" ip link set kveth1 up
	local i
	for i in "${!LAB_EAL_ARGS[@]}"; do
		[[ ${LAB_EAL_ARGS[i]} == net_tap0,* ]] && LAB_EAL_ARGS[i]="net_af_packet0,iface=kveth1$opts"
	done
}

lab_ns_down() {
	[ -e "/run/netns/$LAB_NS" ] || return 0
	ip netns del "$LAB_NS"   # destroys the tap with it
}

lab_ns_status() {
	if [ ! -e "/run/netns/$LAB_NS" ]; then
		echo "$LAB_NS: absent"
		return 0
	fi
	echo "$LAB_NS:"
	lab_nsx ip -br link show "$LAB_TAP" 2>/dev/null | sed 's/^/  /' || echo "  ($LAB_TAP absent)"
	lab_nsx ip -br -4 addr show dev "$LAB_TAP" 2>/dev/null | sed 's/^/  /'
	local pids
	pids=$(ip netns pids "$LAB_NS" 2>/dev/null | tr '\n' ' ')
	echo "  processes: ${pids:-none}"
}

lab_kernel_mac() { lab_nsx cat "/sys/class/net/$LAB_TAP/address"; }

# Gives the kernel side of the tap its own MAC. The tap PMD copies the port MAC onto it when
# it probes and again at every port start (ethdev replays the MAC): call after the start.
lab_set_kernel_mac() {
	lab_nsx ip link set "$LAB_TAP" address "$LAB_KERNEL_MAC" || return 1
	[ "$(lab_kernel_mac)" = "$LAB_KERNEL_MAC" ]
}

lab_prompts() { grep -o 'keel> ' "$LAB_DIR/pmd.out" 2>/dev/null | wc -l; }

lab_pmd_alive() { [ -n "$LAB_PMD_PID" ] && kill -0 "$LAB_PMD_PID" 2>/dev/null; }

# lab_pmd_start [keel-pmd options...]: starts keel-pmd in the namespace with a FIFO on stdin
# and waits for its first prompt (ports started); then re-sets the kernel side's MAC.
lab_pmd_start() {
	[ -x "$KEEL_PMD" ] || lab_abort "keel-pmd not found at '$KEEL_PMD' (build it first)"
	lab_pmd_alive && lab_abort "keel-pmd (pid $LAB_PMD_PID) is still running"
	# A test may start keel-pmd again after lab_pmd_quit: the last one's FIFO and output go.
	[ -n "$LAB_FD" ] && exec {LAB_FD}>&-
	[ -n "$LAB_DIR" ] && rm -rf "$LAB_DIR"
	LAB_FD="" LAB_DIR=""
	LAB_DIR=$(mktemp -d "/tmp/$LAB_NS.XXXXXX")
	mkfifo "$LAB_DIR/in"
	# Read-write open does not block on a FIFO; keel-pmd's read end then opens at once.
	exec {LAB_FD}<>"$LAB_DIR/in"
	lab_say "start: ip netns exec ${LAB_PMD_NS:-$LAB_NS} keel-pmd ${LAB_EAL_ARGS[*]} -- --addr $LAB_KEEL_IP/$LAB_PLEN -i $*"
	# ip netns exec execs keel-pmd, so $! is keel-pmd's PID.
	ip netns exec "${LAB_PMD_NS:-$LAB_NS}" "$KEEL_PMD" "${LAB_EAL_ARGS[@]}" -- \
		--addr "$LAB_KEEL_IP/$LAB_PLEN" -i "$@" <"$LAB_DIR/in" >"$LAB_DIR/pmd.out" 2>"$LAB_DIR/pmd.err" &
	LAB_PMD_PID=$!
	local t0
	t0=$(lab_now_ms)
	while [ "$(lab_prompts)" -lt 1 ]; do
		lab_pmd_alive || lab_abort "keel-pmd exited during start-up"
		[ $(($(lab_now_ms) - t0)) -lt 30000 ] || lab_abort "keel-pmd not ready after 30 s"
		sleep 0.05
	done
	lab_say "keel-pmd up (pid $LAB_PMD_PID) after $(($(lab_now_ms) - t0)) ms"
	lab_set_kernel_mac || lab_abort "cannot set the kernel side's MAC to $LAB_KERNEL_MAC"
	lab_say "kernel side $LAB_TAP: $LAB_KERNEL_IP/$LAB_PLEN, MAC $LAB_KERNEL_MAC"
}

# lab_cmd COMMAND [TIMEOUT_S]: one keel-pmd command; its output (prompt removed) lands in
# LAB_REPLY and is printed. A command is done when keel-pmd prints its next prompt.
lab_cmd() {
	local cmd=$1 timeout_ms=$((${2:-60} * 1000)) before off t0
	lab_pmd_alive || lab_abort "keel-pmd is not running (command '$cmd')"
	before=$(lab_prompts)
	off=$(command stat -c %s "$LAB_DIR/pmd.out")
	lab_say "keel> $cmd"
	printf '%s\n' "$cmd" >&"$LAB_FD"
	t0=$(lab_now_ms)
	while [ "$(lab_prompts)" -le "$before" ]; do
		lab_pmd_alive || lab_abort "keel-pmd exited during '$cmd'"
		[ $(($(lab_now_ms) - t0)) -lt "$timeout_ms" ] || lab_abort "no prompt after '$cmd' within ${2:-60} s"
		sleep 0.02
	done
	LAB_REPLY=$(tail -c +$((off + 1)) "$LAB_DIR/pmd.out" | sed '$ s/keel> $//')
	[ "${LAB_QUIET:-0}" = 1 ] || printf '%s\n' "$LAB_REPLY" | sed 's/^/    /'
}

# lab_cmd_quiet COMMAND [TIMEOUT_S]: lab_cmd without printing the reply (sampling loops).
lab_cmd_quiet() { LAB_QUIET=1 lab_cmd "$@" >/dev/null; }

# Sets LAB_PMD_MAC to the MAC of keel's port 0, from `show port`.
lab_pmd_mac() {
	lab_cmd "show port"
	LAB_PMD_MAC=$(awk '$1 == "mac" { print tolower($2); exit }' <<<"$LAB_REPLY")
}

# lab_pmd_quit: `quit`, then keel-pmd must exit with status 0 within 20 s.
lab_pmd_quit() {
	lab_pmd_alive || lab_abort "keel-pmd died before quit"
	lab_say "keel> quit"
	printf 'quit\n' >&"$LAB_FD"
	local t0 rc
	t0=$(lab_now_ms)
	while lab_pmd_alive && [ $(($(lab_now_ms) - t0)) -lt 20000 ]; do sleep 0.05; done
	if lab_pmd_alive; then
		lab_check "keel-pmd exits within 20 s of quit" false
		return
	fi
	wait "$LAB_PMD_PID"
	rc=$?
	LAB_PMD_PID=""
	lab_say "keel-pmd exited with status $rc after $(($(lab_now_ms) - t0)) ms"
	lab_check "keel-pmd exit status is 0" [ "$rc" = 0 ]
}

# lab_stat NAME: a counter from the last `show stats` (LAB_REPLY), summed over instances.
lab_stat() {
	awk -v n="$1" '$1 == n && NF == 2 { s += $2 } END { print s + 0 }' <<<"$LAB_REPLY"
}

# lab_port_stat FIELD: rx-missed, rx-errors, tx-errors or rx-nombuf from the port line.
lab_port_stat() {
	sed -n "s/.*$1 \([0-9][0-9]*\).*/\1/p" <<<"$LAB_REPLY" | awk '{ s += $1 } END { print s + 0 }'
}

# Runs `show stats` and checks that no drop/error counter is non-zero (prints them).
lab_check_drops() {
	lab_cmd "show stats"
	local name value bad="" known=" ${LAB_TRAFFIC_COUNTERS//[[:space:]]/ } ${LAB_TOLERATED//[[:space:]]/ } "
	while read -r name value; do
		case "$known" in
		*" $name "*) ;;
		*) bad+=" $name=$value" ;;
		esac
	done < <(awk 'NF == 2 && $1 ~ /^[a-z0-9_]+$/ && $2 ~ /^[0-9]+$/ && $2 != 0' <<<"$LAB_REPLY")
	local port_bad=""
	for f in rx-missed rx-errors tx-errors rx-nombuf; do
		[ "$(lab_port_stat "$f")" = 0 ] || port_bad+=" $f=$(lab_port_stat "$f")"
	done
	lab_say "drop/error counters:${bad:- none}; port errors:${port_bad:- none}"
	lab_check "show stats lists traffic (rx_packets > 0)" [ "$(lab_stat rx_packets)" -gt 0 ]
	lab_check "no unexpected drop counters" [ -z "$bad" ]
	lab_check "no port errors (missed, errors, nombuf)" [ -z "$port_bad" ]
}

# lab_kping ARGS...: ping from the kernel side; output in LAB_REPLY, summary lines printed.
lab_kping() {
	lab_say "kernel: ping $*"
	LAB_REPLY=$(lab_nsx ping "$@" 2>&1)
	printf '%s\n' "$LAB_REPLY" | sed 's/^/    /'
}

# Received count from ping output ("N packets transmitted, M received"), kernel or keel.
lab_ping_received() { sed -n 's/.* \([0-9][0-9]*\) received.*/\1/p' <<<"$LAB_REPLY" | head -n1; }
# lab_ping_all N: the last ping (LAB_REPLY) sent N echo requests and got N replies.
lab_ping_all() {
	[ "$(sed -n 's/^\([0-9][0-9]*\) packets transmitted.*/\1/p' <<<"$LAB_REPLY" | head -n1)" = "$1" ] &&
		[ "$(lab_ping_received)" = "$1" ]
}
lab_ping_rtt() { sed -n 's/^rtt min\/avg\/max[^=]*= *//p' <<<"$LAB_REPLY" | head -n1; }

# Kernel-side loss with nftables (there is no netem here): a netdev table on the tap with
# an ingress chain (frames from keel) and an egress chain (frames to keel), each dropping
# at random IN and OUT per mille of the frames. lab_nft_loss 0 0 removes the table.
LAB_NFT_TABLE=keel_impair
lab_nft_loss() {
	local in=$1 out=$2
	lab_nsx nft delete table netdev "$LAB_NFT_TABLE" 2>/dev/null
	[ "$in" = 0 ] && [ "$out" = 0 ] && return 0
	lab_nsx nft -f - <<-EOF || lab_abort "nft: cannot add the loss table (is nf_tables available?)"
		table netdev $LAB_NFT_TABLE {
		  chain from_keel {
		    type filter hook ingress device "$LAB_TAP" priority 0;
		    counter numgen random mod 1000 < $in counter drop
		  }
		  chain to_keel {
		    type filter hook egress device "$LAB_TAP" priority 0;
		    counter numgen random mod 1000 < $out counter drop
		  }
		}
	EOF
}

# Prints "in SEEN DROPPED out SEEN DROPPED" (frames) from lab_nft_loss's counters.
lab_nft_counts() {
	lab_nsx nft list table netdev "$LAB_NFT_TABLE" 2>/dev/null |
		awk '/chain from_keel/ { d = "in" } /chain to_keel/ { d = "out" }
		     /counter packets/ { n = split($0, w, " "); c = 0
		       for (i = 1; i <= n; i++) if (w[i] == "packets") { v[++c] = w[i + 1] }
		       seen[d] = v[1]; dropped[d] = v[2] }
		     END { printf "in %d %d out %d %d\n", seen["in"], dropped["in"], seen["out"], dropped["out"] }'
}

lab_cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	# The namespace name goes first: on a timeout meson sends SIGKILL half a second after
	# SIGTERM. The namespace itself (and the tap) dies with the last process inside it.
	local pids="" p
	if [ "$LAB_NS_MADE" = 1 ] && [ -e "/run/netns/$LAB_NS" ]; then
		pids=$(ip netns pids "$LAB_NS" 2>/dev/null)
		ip netns del "$LAB_NS" 2>/dev/null || lab_say "cleanup: could not delete namespace $LAB_NS"
	fi
	if [ "$LAB_PMD_NS_MADE" = 1 ] && [ -e "/run/netns/$LAB_PMD_NS" ]; then
		pids+=" $(ip netns pids "$LAB_PMD_NS" 2>/dev/null)"
		ip netns del "$LAB_PMD_NS" 2>/dev/null || lab_say "cleanup: could not delete namespace $LAB_PMD_NS"
	fi
	if lab_pmd_alive; then
		lab_say "cleanup: stopping keel-pmd (pid $LAB_PMD_PID)"
		kill -TERM "$LAB_PMD_PID" 2>/dev/null
		for _ in $(seq 50); do lab_pmd_alive || break; sleep 0.1; done
		lab_pmd_alive && kill -KILL "$LAB_PMD_PID" 2>/dev/null
		wait "$LAB_PMD_PID" 2>/dev/null
	fi
	# Anything else that was in the namespace was started by this run (the name is ours alone).
	for p in $pids; do kill -KILL "$p" 2>/dev/null; done
	[ -n "$LAB_FD" ] && exec {LAB_FD}>&-
	# EAL's runtime directory for our --file-prefix, and its hugepage files (a test that
	# runs with hugepages, e.g. multi-process; with --no-huge there are none).
	if [ -n "$LAB_FILE_PREFIX" ]; then
		rm -rf "/var/run/dpdk/$LAB_FILE_PREFIX"
		rm -f "/dev/hugepages/${LAB_FILE_PREFIX}map_"*
	fi
	if [ "$LAB_DONE" = 0 ]; then
		if [ -n "$LAB_DIR" ]; then
			lab_say "keel-pmd stderr (last 30 lines):"
			tail -n 30 "$LAB_DIR/pmd.err" 2>/dev/null | sed 's/^/    /'
		fi
		[ "$rc" = 0 ] && rc=1
		lab_say "FAIL: $LAB_NAME (aborted)"
	fi
	[ -n "$LAB_DIR" ] && rm -rf "$LAB_DIR"
	exit "$rc"
}

# lab_test_init NAME [KEEL_PMD_PATH]: checks privileges and tools, installs the trap,
# creates the namespace and tap.
lab_test_init() {
	LAB_NAME=$1
	KEEL_PMD=${2:-${KEEL_PMD:-build/tools/keel-pmd/keel-pmd}}
	lab_use_ns "keel-ip-$$"   # this run's alone, whatever LAB_NS says
	trap lab_cleanup EXIT
	trap 'lab_say "interrupted"; exit 130' INT
	trap 'lab_say "terminated"; exit 143' TERM
	lab_require_privileges
	lab_require_cmd ping iputils-ping
	[ -x "$KEEL_PMD" ] || lab_abort "keel-pmd not found at '$KEEL_PMD' (build it first)"
	lab_say "namespace $LAB_NS, tap $LAB_TAP, kernel $LAB_KERNEL_IP, keel $LAB_KEEL_IP, keel-pmd $KEEL_PMD"
	lab_ns_up
}

# Prints PASS/FAIL and exits (the trap then cleans up).
lab_test_end() {
	LAB_DONE=1
	if [ "$LAB_FAILS" = 0 ]; then
		lab_say "PASS: $LAB_NAME"
		exit 0
	fi
	if [ -n "$LAB_DIR" ]; then
		lab_say "keel-pmd stderr (last 30 lines):"
		tail -n 30 "$LAB_DIR/pmd.err" 2>/dev/null | sed 's/^/    /'
	fi
	lab_say "FAIL: $LAB_NAME ($LAB_FAILS check(s) failed)"
	exit 1
}
