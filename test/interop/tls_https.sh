#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# TLS interop: the kernel's curl and openssl s_client against keel-pmd's https service
# (OpenSSL handshake, keel's record layer): /bytes/N up to 100 MiB intact over TLS 1.3
# and 1.2, every suite keel offers, resumption with tickets (keel serving, and keel's
# tls-get client resuming against openssl s_server), a client certificate
# required (refused when absent), SNI choosing among several certificates (curl verifying
# each name, s_client, strict refusal; keel's tls-get sending SNI to openssl s_server
# -servername), bad and missing certificates refused at start, and
# corrupted / oversized / truncated / after-close_notify records from a raw client answered with the
# alert and counted; keel as a TLS client (tls-get) against openssl s_server -WWW and -www.
#   test/interop/tls_https.sh [path/to/keel-pmd]     (root; exit 77 = skipped)
set -uo pipefail
source "$(dirname "$0")/lab.sh"
TLS_CLIENT="/usr/bin/python3 $(dirname "$0")/tls_client.py"

lab_test_init tls-https "$@"
lab_require_cmd curl curl
lab_require_cmd openssl openssl
CERTS=$(mktemp -d /tmp/keel-tls-certs.XXXXXX)
SSERVER_PID=""
trap 'rc=$?; [ -n "$SSERVER_PID" ] && kill "$SSERVER_PID" 2>/dev/null; rm -rf "$CERTS"; (exit $rc); lab_cleanup' EXIT
# sserver_start OUT ARGS...: openssl s_server in the kernel's namespace, run in $CERTS (the
# files -WWW serves), with the server certificate and ARGS, its output into OUT.
sserver_start() {
	local out=$1
	shift
	(cd "$CERTS" && exec ip netns exec "$LAB_NS" openssl s_server -cert server.pem -key server.key "$@" \
		>"$out" 2>&1) &
	SSERVER_PID=$!
	sleep 0.5
}
# sserver_stop: s_server exits after its -naccept connections; after 5 s it is ended.
sserver_stop() {
	for _ in $(seq 50); do kill -0 "$SSERVER_PID" 2>/dev/null || break; sleep 0.1; done
	kill "$SSERVER_PID" 2>/dev/null
	wait "$SSERVER_PID" 2>/dev/null
	SSERVER_PID=""
}

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
lab_check "a second --cert without its --key is refused naming --cert" \
	refused "each --cert needs its --key (2 --cert, 1 --key)" --serve https --cert "$CERTS/server.pem" \
	--key "$CERTS/server.key" --cert "$CERTS/other.pem"
lab_check "a second key that does not match its certificate is refused naming it" \
	refused "--key $CERTS/server.key (for --cert $CERTS/other.pem)" --serve https \
	--cert "$CERTS/server.pem" --key "$CERTS/server.key" --cert "$CERTS/other.pem" --key "$CERTS/server.key"
lab_check "--sni-strict without --serve https is refused naming it" refused "--sni-strict" --serve http --sni-strict

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
# tls_get_ok DESCRIPTION PATTERN ARGS...: `tls-get ARGS`, whose reply must match PATTERN (grep).
tls_get_ok() {
	local what=$1 want=$2
	shift 2
	lab_cmd "tls-get $*" 130
	lab_check "$what" bash -c 'grep -q -- "$1" <<<"$2"' _ "$want" "$LAB_REPLY"
}
head -c 3000007 /dev/urandom >"$CERTS/blob"
want_blob=$(sha256sum "$CERTS/blob" | cut -d' ' -f1)
sserver_start /dev/null -accept 4433 -WWW -naccept 2 -quiet
for v in 1.3 1.2; do
	tls_get_ok "keel tls-get (TLS $v) from openssl s_server -WWW: 3000007 bytes, sha256 matches" \
		"TLSv$v .*200 ok.*, 3000007 body bytes, sha256 $want_blob" "$LAB_KERNEL_IP" 4433 /blob $v
done
sserver_stop
# s_server -www: its status page, which reports the session as OpenSSL saw it.
sserver_start /dev/null -accept 4436 -www -naccept 2 -quiet
for v in 1.3 1.2; do
	tls_get_ok "keel tls-get (TLS $v) from openssl s_server -www: its status page" \
		"TLSv$v .*200 ok.*, [1-9][0-9]* body bytes" "$LAB_KERNEL_IP" 4436 / $v
done
sserver_stop
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
	sserver_start "$CERTS/sserver-$v.out" -accept 4434 -WWW -naccept 2
	lab_cmd "tls-get $LAB_KERNEL_IP 4434 /blob $v resume" 260
	lab_check "keel tls-get (TLS $v) resume: a full handshake, then resumed=yes, both bodies intact" resume_fetch "$v"
	sserver_stop
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
counter() { sed -n "s/^ *$1 *\([0-9][0-9]*\).*/\1/p" <<<"$LAB_REPLY" | head -n1; }
lab_check "tls_handshakes counted" [ "$(counter tls_handshakes)" -ge 20 ]
# What ciphertext-only retransmission costs: the record overhead TCP holds and sends.
lab_say "records out $(counter tls_records_out), TCP segments out $(counter tcp_segs_out), tx bytes $(counter tx_bytes):" \
	"$(awk -v r="$(counter tls_records_out)" -v s="$(counter tcp_segs_out)" 'BEGIN { printf "%.3f records per segment", r / s }')"
# Bulk responses go in records of 11 whole segments (1/11 = 0.09 records per segment).
lab_check "records fill whole segments: under 0.15 records per TCP segment" \
	awk -v r="$(counter tls_records_out)" -v s="$(counter tcp_segs_out)" 'BEGIN { exit !(s > 0 && r / s < 0.15) }'
# One pass per payload byte: the cipher writes each into the mbuf TCP sends (and resends).
copied=$(counter tcp_tx_copied_bytes)
lab_say "sealed $(counter tls_sealed_bytes) bytes; copied by Connection::write ${copied:-0}"
lab_check "the cipher sealed at least the 2 x 100 MiB downloaded" [ "$(counter tls_sealed_bytes)" -ge $((2 * 104857600)) ]
lab_check "no payload byte was copied besides (tcp_tx_copied_bytes ${copied:-0}; show stats omits zeros)" [ "${copied:-0}" = 0 ]
lab_check "tls_bad_record_mac: the 2 corrupted records" [ "$(counter tls_bad_record_mac)" = 2 ]
lab_check "tls_record_overflow: the 2 oversized records" [ "$(counter tls_record_overflow)" = 2 ]
lab_check "tls_bad_records: the 2 records cut short, the 2 after close_notify" [ "$(counter tls_bad_records)" = 4 ]
lab_check "tls_resumed: s_client's 2 resumptions and tls-get's 2" [ "$(counter tls_resumed)" = 4 ]
lab_check "tls_key_updates_in and _out: the KeyUpdate and keel's answer" \
	eval '[ "$(counter tls_key_updates_in)" = 1 ] && [ "$(counter tls_key_updates_out)" = 1 ]'
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
lab_check "tls_handshake_failures: the 2 refusals" [ "$(counter tls_handshake_failures)" = 2 ]
lab_pmd_quit

# ----- SNI: several certificates, the client's server name picks one -----
mkcert sni-a /CN=keel-sni-a "subjectAltName=DNS:a.keel.test" || lab_abort "cannot make the SNI certs"
mkcert sni-b /CN=keel-sni-b "subjectAltName=DNS:*.b.keel.test" || lab_abort "cannot make the SNI certs"
served_subject() {  # served_subject WANT_CN ARGS...: s_client's view of the certificate keel sent
	local want=$1 out
	shift
	out=$(printf '' | timeout 10 ip netns exec "$LAB_NS" openssl s_client -connect "$LAB_KEEL_IP:443" "$@" 2>&1)
	grep -q "^subject=.*CN *= *$want\$" <<<"$out" && grep -q "Verify return code: 0 (ok)" <<<"$out"
}
sni_curl() {  # sni_curl NAME VERSION: curl verifies keel's certificate for NAME against the CA
	ip netns exec "$LAB_NS" curl --cacert "$CERTS/ca.pem" --tlsv$2 --tls-max $2 -sS --max-time 10 \
		--resolve "$1:443:$LAB_KEEL_IP" "https://$1/bytes/1000" | wc -c | grep -qx 1000
}
SNI_CERTS=(--cert "$CERTS/server.pem" --key "$CERTS/server.key" --cert "$CERTS/sni-a.pem" --key "$CERTS/sni-a.key"
	--cert "$CERTS/sni-b.pem" --key "$CERTS/sni-b.key")
lab_pmd_start --serve https "${SNI_CERTS[@]}"
for v in 1.3 1.2; do
	lab_check "SNI a.keel.test, TLS $v: curl verifies the a certificate" sni_curl a.keel.test $v
	lab_check "SNI www.b.keel.test, TLS $v: curl verifies the wildcard certificate" sni_curl www.b.keel.test $v
	lab_check "SNI, TLS $v: s_client -servername a.keel.test gets keel-sni-a" \
		served_subject keel-sni-a -CAfile "$CERTS/ca.pem" -tls${v/./_} -servername a.keel.test
	lab_check "SNI, TLS $v: s_client -servername x.b.keel.test gets keel-sni-b" \
		served_subject keel-sni-b -CAfile "$CERTS/ca.pem" -tls${v/./_} -servername x.b.keel.test
	lab_check "no SNI, TLS $v: s_client -noservername gets the first certificate" \
		served_subject keel-test-server -CAfile "$CERTS/ca.pem" -tls${v/./_} -noservername
done
lab_check "an unknown name gets the first certificate (curl then refuses it: wrong name)" \
	eval 'served_subject keel-test-server -CAfile "$CERTS/ca.pem" -servername other.keel.test && ! sni_curl other.keel.test 1.3'
lab_check "curl -k to an unknown name is served" \
	bash -c "ip netns exec $LAB_NS curl -k -sS --max-time 10 --resolve other.keel.test:443:$LAB_KEEL_IP https://other.keel.test/ | grep -qi keel"
lab_pmd_quit
lab_pmd_start --serve https "${SNI_CERTS[@]}" --sni-strict
sni_refused() {  # sni_refused VERSION: an unknown name gets the unrecognized_name alert
	local out
	out=$(printf '' | timeout 10 ip netns exec "$LAB_NS" openssl s_client -connect "$LAB_KEEL_IP:443" \
		-tls${1/./_} -servername other.keel.test 2>&1)
	grep -qi "unrecognized name" <<<"$out" && ! grep -q "^subject=" <<<"$out"
}
for v in 1.3 1.2; do
	lab_check "--sni-strict, TLS $v: an unknown name is refused with unrecognized_name" sni_refused $v
	lab_check "--sni-strict, TLS $v: a known name is still served" sni_curl www.b.keel.test $v
done
lab_check "--sni-strict: no SNI at all gets the first certificate" \
	served_subject keel-test-server -CAfile "$CERTS/ca.pem" -noservername
lab_cmd "show stats"
lab_check "tls_handshake_failures: the 2 unknown names" [ "$(counter tls_handshake_failures)" = 2 ]
lab_pmd_quit

# ----- keel's tls-get sends SNI: openssl s_server -servername picks its second certificate -----
lab_pmd_start
sserver_start "$CERTS/sserver-sni.out" -accept 4435 -servername a.keel.test -cert2 sni-a.pem -key2 sni-a.key \
	-WWW -naccept 4
for v in 1.3 1.2; do
	tls_get_ok "tls-get (TLS $v) sni=a.keel.test: s_server answers with its a.keel.test certificate" \
		"TLSv$v .*200 ok.*, 3000007 body bytes, sha256 $want_blob.*, peer .*CN *= *keel-sni-a" \
		"$LAB_KERNEL_IP" 4435 /blob $v sni=a.keel.test
	tls_get_ok "tls-get (TLS $v) without sni=: s_server answers with its first certificate" \
		"TLSv$v .*200 ok.*, peer .*CN *= *keel-test-server" "$LAB_KERNEL_IP" 4435 /blob $v
done
sserver_stop
lab_check "s_server saw the name keel sent (its log: Hostname in TLS extension)" \
	grep -q 'Hostname in TLS extension: "a.keel.test"' "$CERTS/sserver-sni.out"
lab_pmd_quit
lab_test_end
