#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Two keel-pmd processes over net_memif (no hugepages: --no-huge), server on core 1 and
# client on core 0, each with its own EAL --file-prefix:
#   server 198.18.3.2 (role=server, --serve echo,discard)  <- memif socket ->  client 198.18.3.1
# 1. A client without faults: `help`, argument and refused-connection errors, then
#    `stream` 1 GiB into discard (the clean figure).
# 2. A second client with the fault injector dropping, reordering and duplicating on both
#    its transmit and receive paths: `stream` 1 GiB into discard, every byte acknowledged,
#    then `echotest` 4 connections x 64 round trips x 1 MiB, every byte compared.
# Afterwards the server has no connection left and neither side holds an mbuf.
#   test/twostack/memif.sh path/to/keel-pmd cubic|newreno
# KEEL_TS_FAULTS overrides the fault spec (see --rx-faults in keel-pmd --help).
set -uo pipefail
# shellcheck source=twostack.sh
source "$(dirname "$0")/twostack.sh"

CC=${2:-cubic}
FAULTS=${KEEL_TS_FAULTS:-drop=1%,reorder=2%,dup=2%,reorder_delay=200us}
SRV_IP=198.18.3.2
CLI_IP=198.18.3.1
GIB=$((1 << 30))
ts_init "memif-$CC" "$1"

sock="$TS_DIR/memif.sock"   # a path, not an abstract socket: removed with TS_DIR
eal=(--no-huge -m 512 --no-pci --log-level=pmd:warning)
memif() { echo "net_memif0,role=$1,socket=$sock,socket-abstract=no"; }

ts_start srv -l 1 "${eal[@]}" --file-prefix "$(ts_prefix srv)" --vdev "$(memif server)" -- \
	--addr "$SRV_IP/24" --serve echo,discard --cc "$CC"

# figures LINE: "SECONDS s (RATE), N retransmits" from a stream/echotest summary line.
figures() { echo "$(ts_field "$1" 'in ([0-9.]+ s \([^)]*\))'), $(ts_field "$1" ', ([0-9]+ retransmits)')"; }

# --- 1. clean link
ts_start clean -l 0 "${eal[@]}" --file-prefix "$(ts_prefix clean)" --vdev "$(memif client)" -- \
	--addr "$CLI_IP/24" --cc "$CC"
ts_cmd clean "ping $SRV_IP 3 10" 30
ts_check "clean: ping 3 of 3" grep -q '3 packets transmitted, 3 received' <<<"$TS_REPLY"
ts_cmd clean "help"
ts_check "help lists stream" grep -q '^  stream ADDR PORT BYTES' <<<"$TS_REPLY"
ts_check "help lists echotest" grep -q '^  echotest ADDR PORT SIZE ROUNDS' <<<"$TS_REPLY"
ts_cmd clean "stream $SRV_IP 9"
ts_check "stream without BYTES: one usage error line" grep -q '^error: usage: stream ADDR PORT BYTES' <<<"$TS_REPLY"
ts_cmd clean "echotest $SRV_IP 8 100 1" 60   # nothing listens on port 8: reset
ts_check "echotest to a closed port: FAILED, said why" \
	grep -q '^echotest: 0/1 connections intact, .* FAILED (1 connection(s) reset or timed out)$' <<<"$TS_REPLY"
ts_cmd clean "stream $SRV_IP 9 $GIB" 120
clean_stream=$(ts_line "stream:")
ts_check "clean: stream 1 GiB acknowledged, ok" grep -q "^stream: $GIB of $GIB bytes .* ok$" <<<"$clean_stream"
ts_quit clean

# --- 2. faults on the client's port, both directions
ts_start faulty -l 0 "${eal[@]}" --file-prefix "$(ts_prefix faulty)" --vdev "$(memif client)" -- \
	--addr "$CLI_IP/24" --cc "$CC" --tx-faults "$FAULTS,seed=11" --rx-faults "$FAULTS,seed=12"
ts_cmd faulty "ping $SRV_IP 5 10" 30   # resolves the server again (the new client has a new MAC)
ts_cmd faulty "stream $SRV_IP 9 $GIB" 170
stream=$(ts_line "stream:")
ts_check "faults: stream 1 GiB acknowledged, ok" grep -q "^stream: $GIB of $GIB bytes .* ok$" <<<"$stream"
ts_cmd faulty "echotest $SRV_IP 7 $((1 << 20)) 64 4" 120
echo_line=$(ts_line "echotest:")
ts_check "faults: echotest 4/4 intact, 256 MiB verified, 0 corrupt, ok" \
	grep -q "^echotest: 4/4 connections intact, 268435456 of 268435456 bytes verified .* 0 corrupt bytes, .* ok$" <<<"$echo_line"

# The server's connections end once the client's FINs and ACKs get through the faults.
t0=$(ts_now_ms)
while TS_QUIET=1 ts_cmd srv "show tcp" && [ "$(ts_conns)" != 0 ] && [ $(($(ts_now_ms) - t0)) -lt 20000 ]; do
	sleep 0.5
done
ts_cmd srv "show tcp"
ts_check "server: no connection left" [ "$(ts_conns)" = 0 ]
ts_check "server: no mbuf in use" [ "$(ts_mbufs_in_use)" = 0 ]
srv_rexmt=$(awk '$1 == "tcp_retransmits" { print $2 }' <<<"$TS_REPLY")
srv_rto=$(awk '$1 == "tcp_rto_timeouts" { print $2 }' <<<"$TS_REPLY")

ts_cmd faulty "show stats"
counter() { awk -v n="$1" '$1 == n && NF == 2 { v += $2 } END { print v + 0 }' <<<"$TS_REPLY"; }
for f in fault_dropped fault_reordered fault_duplicated; do
	ts_check "client: $f > 0 (faults were injected)" [ "$(counter "$f")" -gt 0 ]
done
cli_rto=$(counter tcp_rto_timeouts)
ts_cmd faulty "show tcp"
# TIME-WAIT connections hold no data; the injector releases held frames within 1 ms.
ts_check "client: no mbuf in use" [ "$(ts_mbufs_in_use)" = 0 ]
ts_quit faulty
ts_quit srv

ts_say "figures ($CC): clean stream 1 GiB: $(figures "$clean_stream")"
ts_say "figures ($CC, faults $FAULTS): stream 1 GiB: $(figures "$stream"); \
echotest 256 MiB: $(figures "$echo_line"); server retransmits ${srv_rexmt:-0}, RTOs: client $cli_rto, server ${srv_rto:-0}"
ts_end
