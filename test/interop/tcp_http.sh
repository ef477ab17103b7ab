#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# TCP interop 1: the kernel's curl and a Python keep-alive client against keel-pmd's
# http service: GET /bytes/N for N in {0, 1, 1460, 1461, 65536, 10 MiB, 100 MiB}, every
# byte checked against the pattern; then 1000 requests on one keep-alive connection.
#   test/interop/tcp_http.sh [path/to/keel-pmd]     (root; exit 77 = skipped)
set -uo pipefail
source "$(dirname "$0")/lab.sh"
CLIENT="/usr/bin/python3 $(dirname "$0")/tcp_client.py"

lab_test_init tcp-http "$@"
lab_require_cmd curl curl
lab_pmd_start --serve echo,discard,chargen,http

# curl: exact bytes (sha256 against the pattern generated here).
pattern_sha() { /usr/bin/python3 -c "
import hashlib,sys
n=int(sys.argv[1]); h=hashlib.sha256(); p=bytes(i%251 for i in range(251*4096)); left=n
while left>0:
    c=min(left,len(p)); h.update(p[:c]); left-=c
print(h.hexdigest())" "$1"; }
for n in 0 1 1460 1461 65536 10485760 104857600; do
	want=$(pattern_sha "$n")
	got=$(lab_nsx curl -sS --max-time 120 "http://$LAB_KEEL_IP/bytes/$n" | sha256sum | cut -d' ' -f1)
	lab_check "curl GET /bytes/$n: sha256 matches the pattern" [ "$got" = "$want" ]
done
speed=$(lab_nsx curl -sS -o /dev/null -w '%{speed_download}' --max-time 120 "http://$LAB_KEEL_IP/bytes/104857600")
lab_say "curl 100 MiB download: $(awk -v s="$speed" 'BEGIN { printf "%.0f Mbit/s", s * 8 / 1e6 }')"
lab_check "GET / returns the page" bash -c "ip netns exec $LAB_NS curl -sS --max-time 10 http://$LAB_KEEL_IP/ | grep -qi keel"
code=$(lab_nsx curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://$LAB_KEEL_IP/nope")
lab_check "unknown path answers 404" [ "$code" = 404 ]
lab_check "python: 100 MiB streamed and checked" lab_nsx $CLIENT download "$LAB_KEEL_IP" 80 104857600
lab_check "python: 1000 keep-alive requests on one connection" lab_nsx $CLIENT keepalive "$LAB_KEEL_IP" 80 1000

LAB_TOLERATED="$LAB_TCP_RECOVERY $LAB_TCP_LATE"
lab_check_drops
lab_cmd "show tcp"
lab_pmd_quit
lab_test_end
