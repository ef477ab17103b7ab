#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# preload-apps: unmodified programs on keel through libkeel_preload.so, the Linux
# kernel as their peer (test/interop/lab.sh: a namespace, a tap, kernel 198.18.0.1,
# keel 198.18.0.2).
#   redis-server under the shim: redis-benchmark -t set,get,incr,lpush,lrange -n 100000
#     -c 50 from the kernel with no error; a 10 MiB value set and read back intact.
#   nginx under the shim (master + 1 worker, then master_process off): a 100 MiB file and
#     small files, checksums match; wrk -c 100 -d 10s with no socket error and no non-2xx.
#   iperf3 -s under the shim: 10 s from the kernel's iperf3 client, and -R.
#   curl under the shim as a client of python3 -m http.server on the kernel side.
#
#   apps.sh KEEL_PMD LIBKEEL_PRELOAD [quick]     (quick: shorter runs, for a hand check)
source "$(dirname "$0")/../interop/lab.sh"
lab_test_init preload-apps "$1"
SHIM=$(realpath "$2")
QUICK=${3:-}
[ -f "$SHIM" ] || lab_abort "libkeel_preload.so not found at '$2'"
for c in redis-server:redis-server redis-benchmark:redis-tools redis-cli:redis-tools nginx:nginx \
	iperf3:iperf3 wrk:wrk curl:curl python3:python3; do
	lab_require_cmd "${c%%:*}" "${c#*:}"
done

N=100000 WRK_S=10 IPERF_S=10 BIG_MB=100
[ "$QUICK" = quick ] && N=10000 WRK_S=2 IPERF_S=2 BIG_MB=20
WORK=$(mktemp -d "/tmp/$LAB_NS.apps.XXXXXX")
PIDS=()
finish() {
	local p
	for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	rm -rf "$WORK"
	lab_cleanup
}
trap finish EXIT

# The shim's configuration, from the environment alone (no file).
SHIM_ENV=(LD_PRELOAD="$SHIM" KEEL_ADDR="$LAB_KEEL_IP/$LAB_PLEN"
	KEEL_EAL="${LAB_EAL_ARGS[*]} --log-level=lib.eal:warning --log-level=pmd:error")

# shim_start NAME CMD...: runs CMD under the shim in the namespace; SHIM_PID is its PID.
shim_start() {
	local name=$1
	shift
	lab_say "start under the shim: $*"
	ip netns exec "$LAB_NS" env "${SHIM_ENV[@]}" "$@" >"$WORK/$name.out" 2>&1 &
	SHIM_PID=$!
	PIDS+=("$SHIM_PID")
}
# shim_stop PID NAME: SIGTERM, then the exit status within 20 s (STOP_RC).
shim_stop() {
	local pid=$1 name=$2 t0
	kill -TERM "$pid" 2>/dev/null
	t0=$(lab_now_ms)
	while kill -0 "$pid" 2>/dev/null && [ $(($(lab_now_ms) - t0)) -lt 20000 ]; do sleep 0.05; done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid"
		lab_check "$name exits within 20 s of SIGTERM" false
	fi
	wait "$pid" 2>/dev/null
	STOP_RC=$?
}
# Every client runs under timeout(1): a stall fails its check, not the whole test.
# wait_for WHAT CMD...: retries CMD (from the kernel side) for up to 20 s.
wait_for() {
	local what=$1 t0
	shift
	t0=$(lab_now_ms)
	until "$@" >/dev/null 2>&1; do
		if [ $(($(lab_now_ms) - t0)) -gt 20000 ]; then
			lab_check "$what answers within 20 s" false
			return 1
		fi
		sleep 0.2
	done
	lab_say "$what answers after $(($(lab_now_ms) - t0)) ms"
}
lacks() { ! grep -qiE "$1" "$2"; }  # lacks PATTERN FILE
show_tail() { lab_say "$1 output (last 15 lines):"; tail -n 15 "$WORK/$1.out" | sed 's/^/    /'; }

# ===== redis =====
shim_start redis redis-server --bind "$LAB_KEEL_IP" --port 6379 --save "" --appendonly no \
	--protected-mode no --daemonize no
REDIS=$SHIM_PID
if wait_for "redis-server on keel" lab_nsx redis-cli -h "$LAB_KEEL_IP" ping; then
	lab_nsx timeout 300 redis-benchmark -h "$LAB_KEEL_IP" -t set,get,incr,lpush,lrange -n "$N" -c 50 -q \
		>"$WORK/bench.out" 2>&1
	rc=$?
	tr '\r' '\n' <"$WORK/bench.out" | grep -E 'requests per second' | sed 's/^/    /'
	tests=$(tr '\r' '\n' <"$WORK/bench.out" | grep -cE '^(SET|GET|INCR|LPUSH|LRANGE_[0-9]+).*: [0-9.]+ requests per second')
	lab_check "redis-benchmark completes (status $rc, $tests results of 8)" eval '[ "$rc" = 0 ] && [ "$tests" -ge 8 ]'
	lab_check "redis-benchmark reports no error" lacks 'error|refused|reset' "$WORK/bench.out"
	# A 10 MiB value (base64 of random bytes), set and read back.
	head -c 7864320 /dev/urandom | base64 -w0 >"$WORK/value"
	lab_nsx timeout 60 redis-cli -h "$LAB_KEEL_IP" -x set big <"$WORK/value" >"$WORK/set.out" 2>&1
	lab_nsx timeout 60 redis-cli -h "$LAB_KEEL_IP" --raw get big >"$WORK/got" 2>&1
	lab_check "redis SET of a 10 MiB value answers OK" grep -qx OK "$WORK/set.out"
	lab_check "the 10 MiB value reads back intact ($(stat -c %s "$WORK/value") bytes)" \
		cmp -s <(cat "$WORK/value"; echo) "$WORK/got"
fi
shim_stop "$REDIS" redis-server
lab_check "redis-server under the shim exits 0 after SIGTERM (status $STOP_RC)" [ "$STOP_RC" = 0 ]
[ "$LAB_FAILS" = 0 ] || show_tail redis

# ===== nginx =====
mkdir -p "$WORK/www" "$WORK/ng"
head -c $((BIG_MB << 20)) /dev/urandom >"$WORK/www/big.bin"
for i in $(seq 1 20); do head -c $((i * 97)) /dev/urandom >"$WORK/www/s$i.bin"; done
echo "hello from nginx on keel" >"$WORK/www/index.html"
BIG_SUM=$(sha256sum <"$WORK/www/big.bin" | cut -d' ' -f1)
nginx_round() {
	local mode=$1 fails0=$LAB_FAILS
	cat >"$WORK/ng/nginx.conf" <<-CONF
		daemon off;
		master_process $mode;
		worker_processes 1;
		# The worker opens keel's port (the tap): it needs root's rights.
		user root;
		error_log $WORK/ng/error.log notice;
		pid $WORK/ng/nginx.pid;
		events { worker_connections 1024; }
		http {
		  access_log off;
		  sendfile on;
		  keepalive_requests 100000;
		  server { listen $LAB_KEEL_IP:8080; root $WORK/www; }
		}
	CONF
	shim_start "nginx-$mode" nginx -p "$WORK/ng" -c "$WORK/ng/nginx.conf"
	local pid=$SHIM_PID
	if wait_for "nginx (master_process $mode) on keel" lab_nsx curl -sf -o /dev/null "http://$LAB_KEEL_IP:8080/"; then
		local sum
		sum=$(lab_nsx curl -sS --max-time 60 "http://$LAB_KEEL_IP:8080/big.bin" | sha256sum | cut -d' ' -f1)
		lab_check "master_process $mode: $BIG_MB MiB through sendfile, checksum matches" [ "$sum" = "$BIG_SUM" ]
		local bad=0 i
		for i in $(seq 1 20); do
			lab_nsx curl -sS --max-time 10 "http://$LAB_KEEL_IP:8080/s$i.bin" | cmp -s - "$WORK/www/s$i.bin" || bad=$((bad + 1))
		done
		lab_check "master_process $mode: 20 small files intact ($bad differ)" [ "$bad" = 0 ]
		lab_nsx timeout $((WRK_S + 60)) wrk -t 2 -c 100 -d "${WRK_S}s" "http://$LAB_KEEL_IP:8080/index.html" >"$WORK/wrk.out" 2>&1
		sed 's/^/    /' "$WORK/wrk.out"
		local reqs
		reqs=$(awk '/requests in/ { print $1 }' "$WORK/wrk.out")
		lab_check "master_process $mode: wrk -c 100 -d ${WRK_S}s ran ($reqs requests)" [ "${reqs:-0}" -gt 1000 ]
		lab_check "master_process $mode: wrk saw no socket error and no non-2xx" \
			lacks 'Socket errors|Non-2xx' "$WORK/wrk.out"
	fi
	shim_stop "$pid" nginx
	lab_check "nginx (master_process $mode) exits 0 after SIGTERM (status $STOP_RC)" [ "$STOP_RC" = 0 ]
	[ "$LAB_FAILS" = "$fails0" ] || { show_tail "nginx-$mode"; tail -n 15 "$WORK/ng/error.log" | sed 's/^/    /'; }
}
nginx_round on
nginx_round off

# ===== iperf3 =====
shim_start iperf3 iperf3 -s -4 -B "$LAB_KEEL_IP" -p 5201
IPERF=$SHIM_PID
# iperf3 has no ping: its port accepting a connection is enough.
if wait_for "iperf3 -s on keel" lab_nsx bash -c "exec 3<>/dev/tcp/$LAB_KEEL_IP/5201"; then
	sleep 0.5  # the probe's connection is a test iperf3 must see end first
	for dir in "" -R; do
		lab_nsx timeout $((IPERF_S + 60)) iperf3 -c "$LAB_KEEL_IP" -p 5201 -t "$IPERF_S" $dir -J >"$WORK/iperf.json" 2>&1
		rc=$?
		gbps=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%.2f" % (d["end"]["sum_received"]["bits_per_second"]/1e9))' \
			"$WORK/iperf.json" 2>/dev/null)
		lab_say "iperf3 ${dir:-(keel receives)} ${IPERF_S}s: ${gbps:-?} Gbit/s"
		lab_check "iperf3 ${dir:-forward} ${IPERF_S}s run completes (status $rc, ${gbps:-?} Gbit/s)" \
			eval '[ "$rc" = 0 ] && [ -n "$gbps" ]'
	done
fi
shim_stop "$IPERF" iperf3
[ "$LAB_FAILS" = 0 ] || show_tail iperf3

# ===== curl as a client =====
mkdir -p "$WORK/srv"
head -c $((20 << 20)) /dev/urandom >"$WORK/srv/file.bin"
lab_nsx python3 -m http.server -b "$LAB_KERNEL_IP" -d "$WORK/srv" 8000 >"$WORK/http.out" 2>&1 &
PIDS+=($!)
HTTP=$!
wait_for "the kernel's http.server" lab_nsx curl -sf -o /dev/null "http://$LAB_KERNEL_IP:8000/"
ip netns exec "$LAB_NS" env "${SHIM_ENV[@]}" curl -sS --max-time 60 -o "$WORK/got.bin" \
	"http://$LAB_KERNEL_IP:8000/file.bin" 2>"$WORK/curl.err"
rc=$?
lab_check "curl under the shim fetches 20 MiB from the kernel (status $rc), body intact" \
	eval '[ "$rc" = 0 ] && cmp -s "$WORK/got.bin" "$WORK/srv/file.bin"'
[ "$rc" = 0 ] || sed 's/^/    /' "$WORK/curl.err"
# A bad configuration: the program ends at start with a message, never runs on the kernel.
out=$(ip netns exec "$LAB_NS" env LD_PRELOAD="$SHIM" KEEL_EAL="-l 0" KEEL_ADDR=1.2.3 curl -s http://127.0.0.1:1/ 2>&1)
rc=$?
lab_say "bad KEEL_ADDR: status $rc: $out"
lab_check "a bad KEEL_ADDR ends the program at start with a message naming it" \
	eval '[ "$rc" = 1 ] && grep -q "KEEL_ADDR" <<<"$out"'
kill "$HTTP" 2>/dev/null

lab_test_end
