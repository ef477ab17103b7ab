#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# examples/http_server under the kernel, configured by examples/tap.conf: curl
# /bytes/10485760 matches the pattern, 1000 keep-alive requests (Python), wrk -c 50 -d 3s
# with no errors, 404 / 405 / 400, Connection: close.
#   test/examples/http.sh BUILD/examples SOURCE/examples/tap.conf     (root; exit 77 = skipped)
set -uo pipefail
source "$(dirname "$0")/ex_lab.sh"

ex_test_init ex-http "$1"
lab_require_cmd curl curl
lab_require_cmd wrk wrk
EX_ARGS=(--config "$2")   # KEEL_EAL still overrides its eal line (this run's file prefix)
ex_start http_server 80
url="http://$LAB_KEEL_IP"

want=$(/usr/bin/python3 -c "
import hashlib
h = hashlib.sha256(); p = bytes(i % 251 for i in range(251 * 4096)); left = 10485760
while left > 0:
    c = min(left, len(p)); h.update(p[:c]); left -= c
print(h.hexdigest())")
got=$(lab_nsx curl -sS --max-time 60 "$url/bytes/10485760" | sha256sum | cut -d' ' -f1)
lab_check "curl GET /bytes/10485760: sha256 matches the pattern" [ "$got" = "$want" ]
lab_check "GET / returns the page" bash -c "ip netns exec $LAB_NS curl -sS --max-time 10 $url/ | grep -q 'Hello from keel'"
code() { lab_nsx curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@"; }
lab_check "unknown path: 404" [ "$(code "$url/nope")" = 404 ]
lab_check "POST: 405" [ "$(code -X POST -d x "$url/")" = 405 ]
lab_check "HEAD /bytes/100: 200" [ "$(code -I "$url/bytes/100")" = 200 ]
bad=$(lab_nsx timeout 5 bash -c "exec 3<>/dev/tcp/$LAB_KEEL_IP/80; printf 'GARBAGE\r\n\r\n' >&3; cat <&3")
lab_check "malformed request: 400, then the server closes" grep -q '^HTTP/1.1 400' <<<"$bad"
two=$(lab_nsx timeout 5 bash -c "exec 3<>/dev/tcp/$LAB_KEEL_IP/80
printf 'GET /bytes/3 HTTP/1.1\r\nHost: k\r\n\r\nGET / HTTP/1.1\r\nHost: k\r\nConnection: close\r\n\r\n' >&3; cat <&3 | tr -d '\\0'")
lab_check "two pipelined requests, the second with Connection: close: both answered, then closed" \
	[ "$(grep -ao 'HTTP/1.1 200' <<<"$two" | wc -l)" = 2 ]
lab_check "python: 1000 keep-alive requests on one connection" lab_nsx $EX_CLIENT keepalive "$LAB_KEEL_IP" 80 1000

out=$(lab_nsx wrk -c 50 -t 2 -d 3s "$url/bytes/1024" 2>&1)
printf '%s\n' "$out" | sed 's/^/    /'
reqs=$(sed -n 's/^ *\([0-9][0-9]*\) requests in.*/\1/p' <<<"$out")
lab_check "wrk completed requests" [ "${reqs:-0}" -gt 0 ]
lab_check "wrk: no socket errors" bash -c "! grep -q 'Socket errors' <<<\"\$1\"" _ "$out"
lab_check "wrk: no non-2xx responses" bash -c "! grep -q 'Non-2xx' <<<\"\$1\"" _ "$out"
ex_stop
lab_test_end
