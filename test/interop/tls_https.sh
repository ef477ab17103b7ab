#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# TLS interop: the kernel's curl and openssl s_client against keel-pmd's https service
# (OpenSSL handshake, keel's record layer): /bytes/N up to 100 MiB intact over TLS 1.3
# and 1.2, every suite keel offers, resumption with tickets (keel serving, and keel's
# tls-get client resuming against openssl s_server), a client certificate
# required (refused when absent), bad and missing certificates refused at start, and
# corrupted / oversized / truncated / after-close_notify records from a raw client answered with the
# alert and counted; keel as a TLS client (tls-get) against openssl s_server -WWW.
#   test/interop/tls_https.sh [path/to/keel-pmd]     (root; exit 77 = skipped)
set -uo pipefail
source "$(dirname "$0")/lab.sh"
TLS_CLIENT="/usr/bin/python3 $(dirname "$0")/tls_client.py"

lab_test_init tls-https "$@"
lab_require_cmd curl curl
lab_require_cmd openssl openssl
CERTS=$(mktemp -d /tmp/keel-tls-certs.XXXXXX)
trap 'rc=$?; rm -rf "$CERTS"; (exit $rc); lab_cleanup' EXIT

# A throwaway CA, a server certificate for keel's address and a client certificate.
mkcert() {  # mkcert NAME SUBJECT [EXT]
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$2" \
		-keyout "$CERTS/$1.key" -out "$CERTS/$1.csr" 2>/dev/null &&
		openssl x509 -req -in "$CERTS/$1.csr" -CA "$CERTS/ca.pem" -CAkey "$CERTS/ca.key" \
			-CAcreateserial -days 1 ${3:+-extfile <(printf '%s' "$3")} -out "$CERTS/$1.pem" 2>/dev/null
}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=keel-test-ca \
	-days 1 -keyout "$CERTS/ca.key" -out "$CERTS/ca.pem" 2>/dev/null || lab_abort "cannot make the CA"
mkcert server /CN=keel-test-server "subjectAltName=IP:$LAB_KEEL_IP" || lab_abort "cannot make the server cert"
mkcert client /CN=keel-test-client || lab_abort "cannot make the client cert"
# Self-signed, from no CA keel trusts; its key matches none of the above.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=keel-other \
	-days 1 -keyout "$CERTS/other.key" -out "$CERTS/other.pem" 2>/dev/null || lab_abort "cannot make a second key"

# ----- refused at start -----
refused() {  # refused EXPECTED_TEXT keel-pmd-options...
	local want=$1 out
	shift
	out=$(timeout 60 ip netns exec "$LAB_NS" "$KEEL_PMD" "${LAB_EAL_ARGS[@]}" -- \
		--addr "$LAB_KEEL_IP/$LAB_PLEN" "$@" </dev/null 2>&1 >/dev/null)
	local rc=$?
	lab_say "    keel-pmd $*: rc $rc: $(tail -n1 <<<"$out")"
	[ "$rc" != 0 ] && grep -qF -- "$want" <<<"$out"
}
lab_check "--serve https without --cert is refused naming --cert" refused "--cert" --serve https
lab_check "a missing certificate file is refused naming it" \
	refused "--cert /nonexistent.pem" --serve https --cert /nonexistent.pem --key "$CERTS/server.key"
lab_check "a key that does not match the certificate is refused naming --key" \
	refused "--key $CERTS/other.key" --serve https --cert "$CERTS/server.pem" --key "$CERTS/other.key"

# ----- downloads, suites, resumption -----
lab_pmd_start --serve http,https --cert "$CERTS/server.pem" --key "$CERTS/server.key"
mbufs_in_use() { lab_cmd_quiet "show mem"; sed -n 's/.*mbufs in use: \([0-9]*\) of.*/\1/p' <<<"$LAB_REPLY"; }
mbufs_base=$(mbufs_in_use)

pattern_sha() { /usr/bin/python3 -c "
import hashlib,sys
n=int(sys.argv[1]); h=hashlib.sha256(); p=bytes(i%251 for i in range(251*4096)); left=n
while left>0:
    c=min(left,len(p)); h.update(p[:c]); left-=c
print(h.hexdigest())" "$1"; }
URL="https://$LAB_KEEL_IP"
for n in 0 1 1460 16384 65536 10485760 104857600; do
	want=$(pattern_sha "$n")
	got=$(lab_nsx curl -k --tlsv1.3 -sS --max-time 120 "$URL/bytes/$n" | sha256sum | cut -d' ' -f1)
	lab_check "curl --tlsv1.3 GET /bytes/$n: sha256 matches" [ "$got" = "$want" ]
	got=$(lab_nsx curl -k --tlsv1.2 --tls-max 1.2 -sS --max-time 120 "$URL/bytes/$n" | sha256sum | cut -d' ' -f1)
	lab_check "curl --tlsv1.2 --tls-max 1.2 GET /bytes/$n: sha256 matches" [ "$got" = "$want" ]
done
lab_check "curl verifies keel's certificate against the CA" \
	bash -c "ip netns exec $LAB_NS curl --cacert $CERTS/ca.pem -sS --max-time 10 $URL/ | grep -qi keel"
for v in 1.3 1.2; do
	speed=$(lab_nsx curl -k --tlsv$v --tls-max $v -sS -o /dev/null -w '%{speed_download}' --max-time 120 "$URL/bytes/104857600")
	lab_say "curl TLS $v 100 MiB download: $(awk -v s="$speed" 'BEGIN { printf "%.0f Mbit/s", s * 8 / 1e6 }')"
done

# openssl s_client with each suite: the response, and the suite it negotiated.
sclient() {  # sclient ARGS...: one request for /bytes/1000 with Connection: close
	printf 'GET /bytes/1000 HTTP/1.1\r\nHost: keel\r\nConnection: close\r\n\r\n' |
		timeout 20 ip netns exec "$LAB_NS" openssl s_client -connect "$LAB_KEEL_IP:443" -ign_eof "$@" 2>&1
}
suite_ok() {  # suite_ok SUITE ARGS...
	local suite=$1 out
	shift
	out=$(sclient "$@")
	grep -q "Cipher is $suite" <<<"$out" && grep -q "HTTP/1.1 200 OK" <<<"$out" &&
		grep -q "Content-Length: 1000" <<<"$out"
}
for s in TLS_AES_128_GCM_SHA256 TLS_AES_256_GCM_SHA384 TLS_CHACHA20_POLY1305_SHA256; do
	lab_check "s_client -tls1_3 -ciphersuites $s" suite_ok "$s" -tls1_3 -ciphersuites "$s"
done
for s in ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-ECDSA-CHACHA20-POLY1305; do
	lab_check "s_client -tls1_2 -cipher $s" suite_ok "$s" -tls1_2 -cipher "$s"
done
lab_check "a suite keel does not offer is refused (AES128-SHA, TLS 1.2)" \
	bash -c "! printf '' | timeout 10 ip netns exec $LAB_NS openssl s_client -connect $LAB_KEEL_IP:443 -tls1_2 -cipher AES128-SHA 2>&1 | grep -q 'Cipher is AES128-SHA'"
lab_check "ALPN: http/1.1 is chosen" bash -c "sclient_out=\$(printf '' | timeout 10 ip netns exec $LAB_NS openssl s_client -connect $LAB_KEEL_IP:443 -alpn h2,http/1.1 2>&1); grep -q 'ALPN protocol: http/1.1' <<<\"\$sclient_out\""

# KeyUpdate both ways: s_client's 'K' sends one with update_requested; keel answers with its
# own and both sides re-key; the request after it must still be answered.
keyupdate() {
	local out
	out=$( (echo K; sleep 0.5; printf 'GET /bytes/5000 HTTP/1.1\r\nHost: keel\r\nConnection: close\r\n\r\n'; sleep 1.5) |
		timeout 20 ip netns exec "$LAB_NS" openssl s_client -connect "$LAB_KEEL_IP:443" -tls1_3 2>&1)
	grep -q "KEYUPDATE" <<<"$out" && grep -q "HTTP/1.1 200 OK" <<<"$out" && grep -q "Content-Length: 5000" <<<"$out"
}
lab_check "KeyUpdate (update_requested) from s_client: keel re-keys both ways, then answers" keyupdate

resumed() {  # resumed VERSION_FLAG
	rm -f "$CERTS/sess"
	sclient "$1" -sess_out "$CERTS/sess" >/dev/null
	[ -s "$CERTS/sess" ] && sclient "$1" -sess_in "$CERTS/sess" | grep -q "^Reused"
}
lab_check "resumption with a ticket, TLS 1.3 (s_client -sess_in: Reused)" resumed -tls1_3
lab_check "resumption with a ticket, TLS 1.2 (s_client -sess_in: Reused)" resumed -tls1_2

# ----- bad records from a raw TLS client: alert back, connection closed, counted -----
for v in 1.3 1.2; do
	for bad in corrupt oversized truncated after_close; do
		lab_check "TLS $v: $bad record -> the alert, then the connection closes" \
			lab_nsx $TLS_CLIENT "$bad" "$LAB_KEEL_IP" 443 "$v"
	done
done
# ----- keel as the TLS client: openssl s_server -WWW on the kernel side -----
head -c 3000007 /dev/urandom >"$CERTS/blob"
want_blob=$(sha256sum "$CERTS/blob" | cut -d' ' -f1)
(cd "$CERTS" && exec ip netns exec "$LAB_NS" openssl s_server -accept 4433 -cert server.pem -key server.key \
	-WWW -naccept 2 -quiet >/dev/null 2>&1) &
SSERVER_PID=$!
sleep 0.5
for v in 1.3 1.2; do
	lab_cmd "tls-get $LAB_KERNEL_IP 4433 /blob $v" 130
	lab_check "keel tls-get (TLS $v) from openssl s_server -WWW: 3000007 bytes, sha256 matches" \
		bash -c "grep -q 'TLSv$v .*200 ok.*, 3000007 body bytes, sha256 $want_blob' <<<\"\$1\"" _ "$LAB_REPLY"
done
kill "$SSERVER_PID" 2>/dev/null
wait "$SSERVER_PID" 2>/dev/null
# Resumption: `tls-get ... resume` fetches twice, the second time offering the first's
# session (1.3: the ticket keel let OpenSSL read after the handshake; 1.2: the one in it).
# s_server -WWW prints no "Reused" line, but its statistics at exit (after -naccept 2)
# count the resumed handshake as a session cache hit.
resume_fetch() {  # resume_fetch VERSION
	local line="TLSv$1 .*200 ok.*, 3000007 body bytes, sha256 $want_blob, close_notify"
	[ "$(grep -c "$line, resumed=no" <<<"$LAB_REPLY")" = 1 ] &&
		[ "$(grep -c "$line, resumed=yes" <<<"$LAB_REPLY")" = 1 ] &&
		grep -A1 "resumed=no" <<<"$LAB_REPLY" | grep -q "resumed=yes"
}
for v in 1.3 1.2; do
	(cd "$CERTS" && exec ip netns exec "$LAB_NS" openssl s_server -accept 4434 -cert server.pem -key server.key \
		-WWW -naccept 2 >"$CERTS/sserver-$v.out" 2>&1) &
	SSERVER_PID=$!
	sleep 0.5
	lab_cmd "tls-get $LAB_KERNEL_IP 4434 /blob $v resume" 260
	lab_check "keel tls-get (TLS $v) resume: a full handshake, then resumed=yes, both bodies intact" resume_fetch "$v"
	for _ in $(seq 50); do kill -0 "$SSERVER_PID" 2>/dev/null || break; sleep 0.1; done
	kill "$SSERVER_PID" 2>/dev/null
	wait "$SSERVER_PID" 2>/dev/null
	lab_check "openssl s_server (TLS $v) counted the resumption: 1 session cache hits" \
		grep -q '^ *1 session cache hits' "$CERTS/sserver-$v.out"
done

# Nothing leaked: once the connections are gone (lingering closes end within 2 s), the
# pool is back where it was before the first one.
mbufs_back() {
	local now
	for _ in $(seq 40); do
		now=$(mbufs_in_use)
		[ "$now" = "$mbufs_base" ] && return 0
		sleep 0.25
	done
	lab_say "    mbufs in use: $now, before the tests: $mbufs_base"
	return 1
}
lab_check "mbufs in use back to the baseline ($mbufs_base) after every connection" mbufs_back

lab_cmd "show stats"
stat() { sed -n "s/^ *$1 *\([0-9][0-9]*\).*/\1/p" <<<"$LAB_REPLY" | head -n1; }
lab_check "tls_handshakes counted" [ "$(stat tls_handshakes)" -ge 20 ]
# What ciphertext-only retransmission costs: the record overhead TCP holds and sends.
lab_say "records out $(stat tls_records_out), TCP segments out $(stat tcp_segs_out), tx bytes $(stat tx_bytes):" \
	"$(awk -v r="$(stat tls_records_out)" -v s="$(stat tcp_segs_out)" 'BEGIN { printf "%.3f records per segment", r / s }')"
# One pass per payload byte: the cipher writes each into the mbuf TCP sends (and resends).
copied=$(stat tcp_tx_copied_bytes)
lab_say "sealed $(stat tls_sealed_bytes) bytes; copied by Connection::write ${copied:-0}"
lab_check "the cipher sealed at least the 2 x 100 MiB downloaded" [ "$(stat tls_sealed_bytes)" -ge $((2 * 104857600)) ]
lab_check "no payload byte was copied besides (tcp_tx_copied_bytes ${copied:-0}; show stats omits zeros)" [ "${copied:-0}" = 0 ]
lab_check "tls_bad_record_mac: the 2 corrupted records" [ "$(stat tls_bad_record_mac)" = 2 ]
lab_check "tls_record_overflow: the 2 oversized records" [ "$(stat tls_record_overflow)" = 2 ]
lab_check "tls_bad_records: the 2 records cut short, the 2 after close_notify" [ "$(stat tls_bad_records)" = 4 ]
lab_check "tls_resumed: s_client's 2 resumptions and tls-get's 2" [ "$(stat tls_resumed)" = 4 ]
lab_check "tls_key_updates_in and _out: the KeyUpdate and keel's answer" \
	eval '[ "$(stat tls_key_updates_in)" = 1 ] && [ "$(stat tls_key_updates_out)" = 1 ]'
# The tls_* counters, and RSTs from clients that ended after keel's alert.
LAB_TLS="tls_handshakes tls_handshake_failures tls_resumed tls_records_in tls_records_out tls_sealed_bytes
  tls_bad_record_mac tls_record_overflow tls_bad_records tls_alerts_sent tls_alerts_received
  tls_key_updates_in tls_key_updates_out"
LAB_TOLERATED="$LAB_TCP_RECOVERY $LAB_TCP_LATE $LAB_TLS tcp_resets_ignored"
lab_check_drops
lab_pmd_quit

# ----- an RSA certificate: the ECDHE-RSA suites of TLS 1.2 -----
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=keel-rsa -days 1 -keyout "$CERTS/rsa.key" \
	-out "$CERTS/rsa.pem" 2>/dev/null || lab_abort "cannot make the RSA cert"
lab_pmd_start --serve https --cert "$CERTS/rsa.pem" --key "$CERTS/rsa.key"
for s in ECDHE-RSA-AES128-GCM-SHA256 ECDHE-RSA-AES256-GCM-SHA384 ECDHE-RSA-CHACHA20-POLY1305; do
	lab_check "RSA certificate: s_client -tls1_2 -cipher $s" suite_ok "$s" -tls1_2 -cipher "$s"
done
lab_check "RSA certificate: s_client -tls1_3" suite_ok TLS_AES_128_GCM_SHA256 -tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256
lab_pmd_quit

# ----- client certificate required -----
lab_pmd_start --serve https --cert "$CERTS/server.pem" --key "$CERTS/server.key" --client-ca "$CERTS/ca.pem"
lab_check "client certificate presented: served" \
	bash -c "ip netns exec $LAB_NS curl -k --cert $CERTS/client.pem --key $CERTS/client.key -sS --max-time 10 $URL/ | grep -qi keel"
lab_check "client certificate absent: refused" \
	bash -c "! ip netns exec $LAB_NS curl -k -sS --max-time 10 $URL/ >/dev/null 2>&1"
lab_check "a certificate from another CA: refused" \
	bash -c "! ip netns exec $LAB_NS curl -k --cert $CERTS/other.pem --key $CERTS/other.key -sS --max-time 10 $URL/ >/dev/null 2>&1"
lab_cmd "show stats"
lab_check "tls_handshake_failures: the 2 refusals" [ "$(stat tls_handshake_failures)" = 2 ]
lab_pmd_quit
lab_test_end
