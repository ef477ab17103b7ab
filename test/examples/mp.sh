#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Multi-process (docs/ARCHITECTURE.md "Multi-process"): keel-pmd as the DPDK primary runs
# instance 0 of 2 (--serve echo), examples/echo_server attaches as a secondary over
# hugepages and runs instance 1; both share the tap port (a queue each), the mbuf pool and
# the steering rings.
#   test/examples/mp.sh BUILD     (root, hugepages; exit 77 = skipped)
# 1. 2,000 echo connections from the kernel, all intact, both processes served some
#    (primary: show stats; secondary: its --stats at exit); after the secondary exits
#    normally, the primary serves every new connection (it took instance 1 over).
# 2. A fresh pair; 40 long echo streams; kill -9 the secondary: the streams it owned get
#    RST, the primary's go on intact, 500 new connections are all served, and the pool's
#    in-use count is reported (what the dead process held in its own memory is lost); a
#    secondary for the taken-over instance is then refused.
# 3. The primary quits while a secondary runs: the secondary stops by itself, status 0.
set -uo pipefail
source "$(dirname "$0")/../interop/lab.sh"
BUILD=$1
CLIENT="/usr/bin/python3 $(dirname "$0")/../interop/tcp_client.py"
STREAMS="/usr/bin/python3 $(dirname "$0")/mp_client.py"
SECONDARY=$BUILD/examples/echo_server
SEC_PID=""

lab_test_init mp "$BUILD/tools/keel-pmd/keel-pmd"
[ -x "$SECONDARY" ] || lab_abort "echo_server not found at $SECONDARY"
hp_free=$(awk '/^HugePages_Free/ { print $2 }' /proc/meminfo)
[ "${hp_free:-0}" -ge 64 ] && grep -q ' /dev/hugepages hugetlbfs' /proc/mounts ||
	lab_skip "needs >= 64 free 2 MiB hugepages mounted at /dev/hugepages (tools/deps.sh), $hp_free free"
# Hugepages instead of --no-huge; the primary on lcores 0-1 (instance 0 on core 1), the
# secondary on lcore ids 2-3 (each lcore id has one mempool cache in the shared pool).
LAB_EAL_ARGS=(-l 0-1 -m 256 --no-pci --proc-type=primary --file-prefix "$LAB_FILE_PREFIX"
              --log-level=pmd:warning --vdev "net_tap0,iface=$LAB_TAP")
CONF=$(mktemp "/tmp/$LAB_NS.conf.XXXXXX")
cat >"$CONF" <<EOF
eal = --lcores 2@1,3@0 --no-pci --proc-type=secondary --file-prefix $LAB_FILE_PREFIX --log-level=pmd:warning
process = secondary
total_instances = 2
instance_range = 1-1
[port]
device = net_tap0
address = $LAB_KEEL_IP/$LAB_PLEN
EOF
SEC_OUT=$CONF.out SEC_ERR=$CONF.err
trap 'rc=$?; rm -f "$CONF" "$SEC_OUT" "$SEC_ERR"; (exit $rc); lab_cleanup' EXIT

sec_alive() { [ -n "$SEC_PID" ] && kill -0 "$SEC_PID" 2>/dev/null; }
sec_gone() { ! sec_alive; }
sec_start() {
	lab_say "start: echo_server --config $CONF --stats 7 (secondary)"
	ip netns exec "$LAB_NS" "$SECONDARY" --config "$CONF" --stats 7 >"$SEC_OUT" 2>"$SEC_ERR" &
	SEC_PID=$!
	local t0
	t0=$(lab_now_ms)
	until grep -q listening "$SEC_OUT"; do
		sec_alive || { sed 's/^/    /' "$SEC_ERR"; lab_abort "the secondary exited during start-up"; }
		[ $(($(lab_now_ms) - t0)) -lt 30000 ] || lab_abort "secondary not listening after 30 s"
		sleep 0.05
	done
	lab_say "$(cat "$SEC_OUT") (pid $SEC_PID, $(($(lab_now_ms) - t0)) ms)"
}
# inst_stat INSTANCE NAME: a counter of one instance from the last `show stats` (keel-pmd)
# or from the secondary's --stats output ("instance N" headings), read from stdin.
inst_stat() {
	awk -v i="$1" -v n="$2" '/^instance [0-9]+:?$/ { sub(":", "", $2); on = ($2 == i) }
		on && $1 == n && NF == 2 { print $2; f = 1 } END { if (!f) print 0 }'
}
pool_in_use() { lab_cmd "show mp" >/dev/null; sed -n 's/.*pool in use \([0-9]*\) of.*/\1/p' <<<"$LAB_REPLY" | head -n1; }

# ---- 1: both serve; a normal exit hands instance 1 to the primary ----
lab_pmd_start --instances-total 2 --instance-range 0-0 --serve echo
sec_start
lab_cmd "show mp"
lab_check "two live processes in the group" [ "$(grep -c ' live ' <<<"$LAB_REPLY")" = 2 ]
# sec_refused WHAT: another secondary with the same configuration must be refused, saying WHAT.
sec_refused() {
	local out
	out=$(timeout 30 ip netns exec "$LAB_NS" "$SECONDARY" --config "$CONF" 7 2>&1)
	local rc=$?
	grep "$1" <<<"$out" | sed 's/^/    /'
	[ "$rc" = 1 ] && grep -q "$1" <<<"$out"
}
lab_check "a second secondary for instance 1 is refused" sec_refused "overlap those of pid $SEC_PID"
lab_check "2000 echo connections x 64 bytes, 100 at a time, all intact" \
	lab_nsx $CLIENT echo-many "$LAB_KEEL_IP" 7 2000 64 100
lab_cmd "show stats"
p0=$(inst_stat 0 tcp_passive_opens <<<"$LAB_REPLY")
kill -INT "$SEC_PID"
wait "$SEC_PID"
rc=$?
SEC_PID=""
lab_check "the secondary exits with status 0 after SIGINT" [ "$rc" = 0 ]
p1=$(inst_stat 1 tcp_passive_opens <"$SEC_ERR")
lab_say "passive opens: primary (instance 0) $p0, secondary (instance 1) $p1"
lab_check "the primary served connections" [ "$p0" -gt 0 ]
lab_check "the secondary served connections" [ "$p1" -gt 0 ]
lab_check "together they served all 2000" [ $((p0 + p1)) = 2000 ]
sleep 0.5
lab_cmd "show mp"
lab_check "the primary took over the departed secondary's instance" grep -q "exited: its flows now go to instance 0" <<<"$LAB_REPLY"
lab_check "after it left: 300 echo connections, all intact (the primary serves all)" \
	lab_nsx $CLIENT echo-many "$LAB_KEEL_IP" 7 300 64 50
lab_cmd "show stats"
lab_check "the primary received on the departed instance's queue" [ "$(inst_stat 0 mp_adopted_rx <<<"$LAB_REPLY")" -gt 0 ]
lab_pmd_quit

# ---- 2: kill -9 the secondary mid-transfer ----
lab_pmd_start --instances-total 2 --instance-range 0-0 --serve echo
base=$(pool_in_use)
sec_start
SDIR=$(mktemp -d "/tmp/$LAB_NS.streams.XXXXXX")
lab_say "40 echo streams (8 KiB chunks, every byte checked)"
lab_nsx $STREAMS "$LAB_KEEL_IP" 7 40 "$SDIR" >"$SDIR/result" 2>"$SDIR/err" &
CLIENT_PID=$!
t0=$(lab_now_ms)
until [ -e "$SDIR/ports" ]; do
	kill -0 "$CLIENT_PID" 2>/dev/null || { cat "$SDIR/err"; lab_abort "the stream client failed"; }
	[ $(($(lab_now_ms) - t0)) -lt 20000 ] || lab_abort "the streams did not connect"
	sleep 0.05
done
sleep 1
lab_cmd "show conns"
primary_ports=" $(grep -o "$LAB_KERNEL_IP:[0-9]*" <<<"$LAB_REPLY" | cut -d: -f2 | tr '\n' ' ') "
lab_cmd "show mp"
before_kill=$(sed -n 's/.*pool in use \([0-9]*\) of.*/\1/p' <<<"$LAB_REPLY" | head -n1)
lab_say "kill -9 the secondary (pid $SEC_PID) while its streams run"
kill -KILL "$SEC_PID"
wait "$SEC_PID" 2>/dev/null
SEC_PID=""
sleep 2
lab_check "the primary survives the secondary's death" lab_pmd_alive
lab_check "after the kill: 500 new echo connections, all intact" \
	lab_nsx $CLIENT echo-many "$LAB_KEEL_IP" 7 500 64 50
touch "$SDIR/stop"
wait "$CLIENT_PID"
sed 's/^/    /' "$SDIR/result"
own_intact=0 own_other=0 sec_reset=0 sec_other=0
while read -r lport res _; do
	if [[ $primary_ports == *" $lport "* ]]; then
		[ "$res" = intact ] && own_intact=$((own_intact + 1)) || own_other=$((own_other + 1))
	else
		[ "$res" = reset ] && sec_reset=$((sec_reset + 1)) || sec_other=$((sec_other + 1))
	fi
done <"$SDIR/result"
lab_say "primary's streams: $own_intact intact, $own_other not; secondary's: $sec_reset reset, $sec_other not"
lab_check "the primary owned some streams, and all of them stayed intact" eval '[ "$own_intact" -gt 0 ] && [ "$own_other" = 0 ]'
lab_check "the secondary owned some streams, and every one got RST" eval '[ "$sec_reset" -gt 0 ] && [ "$sec_other" = 0 ]'
sleep 1.5
lab_cmd "show mp"
lab_check "the primary took over the dead secondary's instance" grep -q "died: its flows now go to instance 0" <<<"$LAB_REPLY"
lab_check "the takeover report followed" grep -q "takeover of pid .* after 1 s: pool in use" <<<"$LAB_REPLY"
after=$(sed -n 's/.*pool in use \([0-9]*\) of.*/\1/p' <<<"$LAB_REPLY" | head -n1)
lab_say "pool in use: $base with the primary alone, $before_kill before the kill, $after after" \
	"(streams closed): $((after - base)) mbufs went down with the secondary's private memory"
lab_cmd "show stats"
lab_check "RSTs were sent for the dead instance's connections" [ "$(lab_stat tcp_resets_sent)" -gt 0 ]
lab_check "a new secondary for the taken-over instance is refused" sec_refused "were taken over by the primary"
lab_pmd_quit
rm -rf "$SDIR"

# ---- 3: the primary quits first: the secondary sees it and stops cleanly ----
lab_pmd_start --instances-total 2 --instance-range 0-0 --serve echo
sec_start
lab_check "echo through both before the primary quits" lab_nsx $CLIENT echo-many "$LAB_KEEL_IP" 7 100 64 20
lab_pmd_quit
t0=$(lab_now_ms)
while sec_alive && [ $(($(lab_now_ms) - t0)) -lt 5000 ]; do sleep 0.05; done
lab_check "the secondary stopped when the primary quit" sec_gone
if ! sec_alive && [ -n "$SEC_PID" ]; then
	wait "$SEC_PID"
	rc=$?
	SEC_PID=""
	grep "primary" "$SEC_ERR" | sed 's/^/    /'
	lab_check "the secondary exited with status 0, saying why" eval '[ "$rc" = 0 ] && grep -q "is gone: stopping" "$SEC_ERR"'
fi
lab_test_end
