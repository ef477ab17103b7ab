#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Writes the seed corpus of fuzz_rx (test/fuzz/corpus/) with the standard library only.

Each seed is one fuzz_rx input (the format is described at the top of
fuzz_rx.cpp): a mode byte, then frames, each as ctl, adv, len (big endian),
split, bytes. The frames are what a peer on 198.18.0.0/24 would send to the
instance at 198.18.0.2 (MAC 02:00:00:00:00:02): valid ARP, ICMP, UDP, TCP,
fragments, and malformed variants of each. Run it again after changing it; the
output is deterministic.

    test/fuzz/make_corpus.py [OUT_DIR]
"""

import os
import struct
import sys

OUR_MAC = bytes.fromhex("020000000002")
PEER_MAC = bytes.fromhex("020000000001")
GW_MAC = bytes.fromhex("020000000009")
BCAST = b"\xff" * 6
OUR_IP = bytes([198, 18, 0, 2])
PEER_IP = bytes([198, 18, 0, 1])  # also the gateway
OTHER_IP = bytes([198, 18, 0, 7])  # on-link, not yet in the ARP table
FAR_IP = bytes([198, 19, 0, 5])  # off-link: replies go through the gateway

# ctl bits (see fuzz_rx.cpp)
DIRECT, CHAIN, RING, RING_CHAIN = 0, 1, 2, 3
POLL = 4


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def eth(dst, src, ethertype, payload):
    return dst + src + struct.pack("!H", ethertype) + payload


def arp(oper, sha, spa, tha, tpa, htype=1, ptype=0x0800, hlen=6, plen=4):
    return struct.pack("!HHBBH", htype, ptype, hlen, plen, oper) + sha + spa + tha + tpa


def ipv4(src, dst, proto, payload, ident=1, flags_frag=0, ttl=64, ihl=5, options=b"",
         total=None, version=4, good_csum=True):
    options = options + b"\0" * ((ihl - 5) * 4 - len(options))
    tl = total if total is not None else ihl * 4 + len(payload)
    h = struct.pack("!BBHHHBBH4s4s", version << 4 | ihl, 0, tl & 0xFFFF, ident, flags_frag,
                    ttl, proto, 0, src, dst) + options
    c = csum(h) if good_csum else (csum(h) ^ 0x1234)
    h = h[:10] + struct.pack("!H", c) + h[12:]
    return h + payload


def icmp(typ, code, rest, payload, good_csum=True):
    m = struct.pack("!BBH", typ, code, 0) + rest + payload
    c = csum(m) if good_csum else (csum(m) ^ 0x00FF)
    return m[:2] + struct.pack("!H", c) + m[4:]


def echo_request(ident, seq, payload, good_csum=True):
    return icmp(8, 0, struct.pack("!HH", ident, seq), payload, good_csum)


def pseudo(src, dst, proto, length):
    return src + dst + struct.pack("!BBH", 0, proto, length)


def udp(src, dst, sport, dport, payload):
    length = 8 + len(payload)
    h = struct.pack("!HHHH", sport, dport, length, 0)
    c = csum(pseudo(src, dst, 17, length) + h + payload) or 0xFFFF
    return struct.pack("!HHHH", sport, dport, length, c) + payload


def tcp_syn(src, dst, sport, dport, seq):
    # SYN with MSS 1460, SACK permitted, window scale 7.
    opts = bytes([2, 4, 0x05, 0xB4, 4, 2, 3, 3, 7, 1])
    opts += b"\0" * (-len(opts) % 4)
    off = (20 + len(opts)) // 4
    h = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, off << 4, 0x02, 65535, 0, 0) + opts
    c = csum(pseudo(src, dst, 6, len(h)) + h)
    return h[:16] + struct.pack("!H", c) + h[18:]


def ip_frame(datagram, dst_mac=OUR_MAC, src_mac=PEER_MAC):
    return eth(dst_mac, src_mac, 0x0800, datagram)


def fragments(src, dst, proto, payload, ident, sizes):
    """Splits an L4 payload into fragments of the given payload sizes (multiples of 8
    but the last); returns the IPv4 datagrams."""
    out, off = [], 0
    for i, n in enumerate(sizes):
        more = i + 1 < len(sizes)
        chunk = payload[off:off + n]
        out.append(ipv4(src, dst, proto, chunk, ident=ident,
                        flags_frag=(0x2000 if more else 0) | (off // 8)))
        off += n
    assert off == len(payload)
    return out


def frame(data, ctl=DIRECT, adv=0, split=0, length=None):
    n = len(data) if length is None else length
    return bytes([ctl, adv]) + struct.pack("!H", n) + bytes([split]) + data


def faults(drop=0, dup=0, reorder=0, corrupt=0, delay_ms=0, jitter_ms=0, seed=0):
    """A fault injector configuration: probabilities in percent (up to 50), times in ms."""
    pct = lambda x: min(255, round(x * 512 / 100))
    return bytes([pct(drop), pct(dup), pct(reorder), pct(corrupt), delay_ms, jitter_ms, seed])


def seed(*frames, mode=0, rx=None, tx=None):
    mode |= (2 if rx is not None else 0) | (4 if tx is not None else 0)
    return bytes([mode]) + (rx or b"") + (tx or b"") + b"".join(frames)


def ping(src=PEER_IP, ident=0x1234, seq=1, size=56, **kw):
    payload = bytes(i & 0xFF for i in range(size))
    return ip_frame(ipv4(src, OUR_IP, 1, echo_request(ident, seq, payload)), **kw)


def arp_req_from_peer():
    return eth(BCAST, PEER_MAC, 0x0806, arp(1, PEER_MAC, PEER_IP, b"\0" * 6, OUR_IP))


def arp_reply(sha, spa):
    return eth(OUR_MAC, sha, 0x0806, arp(2, sha, spa, OUR_MAC, OUR_IP))


def seeds():
    s = {}
    # ----- ARP -----
    s["arp_request"] = seed(frame(arp_req_from_peer()))
    s["arp_request_padded"] = seed(frame(arp_req_from_peer() + b"\0" * 18))
    s["arp_reply"] = seed(frame(arp_reply(PEER_MAC, PEER_IP)))
    s["arp_gratuitous"] = seed(frame(eth(BCAST, PEER_MAC, 0x0806,
                                         arp(1, PEER_MAC, PEER_IP, b"\0" * 6, PEER_IP))))
    s["arp_request_not_for_us"] = seed(frame(eth(BCAST, PEER_MAC, 0x0806,
                                                 arp(1, PEER_MAC, PEER_IP, b"\0" * 6, OTHER_IP))))
    s["arp_truncated"] = seed(frame(arp_req_from_peer()[:30]))
    s["arp_bad_opcode"] = seed(frame(eth(BCAST, PEER_MAC, 0x0806,
                                         arp(7, PEER_MAC, PEER_IP, b"\0" * 6, OUR_IP))))
    s["arp_bad_hlen"] = seed(frame(eth(BCAST, PEER_MAC, 0x0806,
                                       arp(1, PEER_MAC, PEER_IP, b"\0" * 6, OUR_IP, hlen=8))))
    s["arp_multicast_sender"] = seed(frame(eth(BCAST, PEER_MAC, 0x0806,
                                               arp(1, b"\x01\0\x5e\0\0\1", PEER_IP, b"\0" * 6,
                                                   OUR_IP))))
    s["arp_request_chain"] = seed(frame(arp_req_from_peer(), ctl=CHAIN, split=20))
    # Learn, let the entry go stale (60 s), answer the unicast probe.
    s["arp_refresh"] = seed(frame(arp_req_from_peer()),
                            frame(ping(), adv=250, ctl=DIRECT | POLL),
                            frame(arp_reply(PEER_MAC, PEER_IP), adv=32, ctl=DIRECT | POLL))
    # Regression (found by fuzz_rx): a zero sender MAC was learnt and answered,
    # so frames went out to 00:00:00:00:00:00.
    s["regress_arp_zero_sender_mac"] = seed(frame(eth(BCAST, PEER_MAC, 0x0806,
                                                      arp(1, b"\0" * 6, PEER_IP, b"\0" * 6,
                                                          OUR_IP))))
    s["regress_arp_zero_sender_mac_reply"] = seed(frame(ping()),
                                                  frame(arp_reply(b"\0" * 6, PEER_IP)))
    # ----- ICMP -----
    s["icmp_echo"] = seed(frame(arp_reply(PEER_MAC, PEER_IP)), frame(ping()))
    s["icmp_echo_unresolved"] = seed(frame(ping()))  # reply waits for ARP, then times out
    s["icmp_echo_then_arp_reply"] = seed(frame(ping(src=OTHER_IP)),
                                         frame(arp_reply(PEER_MAC, OTHER_IP), adv=20))
    s["icmp_echo_offlink"] = seed(frame(arp_reply(GW_MAC, PEER_IP)), frame(ping(src=FAR_IP)))
    s["icmp_echo_ring"] = seed(frame(arp_reply(PEER_MAC, PEER_IP), ctl=RING),
                               frame(ping(), ctl=RING_CHAIN | POLL, split=34))
    s["icmp_echo_chain_in_header"] = seed(frame(arp_reply(PEER_MAC, PEER_IP)),
                                          frame(ping(), ctl=CHAIN, split=24))
    s["icmp_echo_bad_checksum"] = seed(frame(ip_frame(ipv4(
        PEER_IP, OUR_IP, 1, echo_request(1, 1, b"abcdefgh", good_csum=False)))))
    s["icmp_echo_broadcast"] = seed(frame(ip_frame(ipv4(
        PEER_IP, bytes([198, 18, 0, 255]), 1, echo_request(1, 1, b"x" * 16)), dst_mac=BCAST)))
    s["icmp_echo_reply"] = seed(frame(ip_frame(ipv4(
        PEER_IP, OUR_IP, 1, icmp(0, 0, struct.pack("!HH", 7, 9), b"y" * 32)))))
    s["icmp_truncated"] = seed(frame(ip_frame(ipv4(PEER_IP, OUR_IP, 1, b"\x08\x00\xf7"))))
    s["icmp_unknown_type"] = seed(frame(ip_frame(ipv4(
        PEER_IP, OUR_IP, 1, icmp(42, 0, b"\0" * 4, b"")))))
    quoted = ipv4(OUR_IP, FAR_IP, 17, udp(OUR_IP, FAR_IP, 40000, 53, b"q" * 8))[:28]
    s["icmp_port_unreachable"] = seed(frame(ip_frame(ipv4(
        PEER_IP, OUR_IP, 1, icmp(3, 3, b"\0" * 4, quoted)))))
    s["icmp_frag_needed"] = seed(frame(ip_frame(ipv4(
        PEER_IP, OUR_IP, 1, icmp(3, 4, struct.pack("!HH", 0, 1280),
                                 ipv4(OUR_IP, FAR_IP, 6, tcp_syn(OUR_IP, FAR_IP, 40000, 80, 1))
                                 [:28])))))
    s["icmp_error_bad_quote"] = seed(frame(ip_frame(ipv4(
        PEER_IP, OUR_IP, 1, icmp(11, 0, b"\0" * 4, b"\x46" + b"\0" * 22)))))
    # ----- UDP and TCP (dispatch to the L4 handler) -----
    s["udp"] = seed(frame(ip_frame(ipv4(PEER_IP, OUR_IP, 17,
                                        udp(PEER_IP, OUR_IP, 5000, 7, b"hello keel")))))
    s["udp_broadcast"] = seed(frame(ip_frame(ipv4(PEER_IP, b"\xff" * 4, 17,
                                                  udp(PEER_IP, b"\xff" * 4, 68, 67, b"d" * 20)),
                                             dst_mac=BCAST)))
    s["tcp_syn"] = seed(frame(ip_frame(ipv4(PEER_IP, OUR_IP, 6,
                                            tcp_syn(PEER_IP, OUR_IP, 40000, 80, 0xFFFFFF00)))))
    s["tcp_syn_chain"] = seed(frame(ip_frame(ipv4(PEER_IP, OUR_IP, 6,
                                                  tcp_syn(PEER_IP, OUR_IP, 40001, 80, 5))),
                                    ctl=CHAIN, split=40))
    s["ip_unknown_protocol"] = seed(frame(ip_frame(ipv4(PEER_IP, OUR_IP, 132, b"\0" * 12))))
    # ----- IPv4 fragments -----
    big = echo_request(0x55, 2, bytes(i & 0xFF for i in range(3000)))
    frags = fragments(PEER_IP, OUR_IP, 1, big, 0x4242, [1480, 1480, len(big) - 2960])
    s["frag_ping_in_order"] = seed(frame(arp_reply(PEER_MAC, PEER_IP)),
                                   *[frame(ip_frame(f)) for f in frags])
    s["frag_ping_reversed"] = seed(frame(arp_reply(PEER_MAC, PEER_IP)),
                                   *[frame(ip_frame(f), ctl=CHAIN, split=17)
                                     for f in reversed(frags)])
    u = udp(PEER_IP, OUR_IP, 5000, 9, b"z" * 100)
    uf = fragments(PEER_IP, OUR_IP, 17, u, 0x77, [48, 48, len(u) - 96])
    s["frag_udp"] = seed(*[frame(ip_frame(f)) for f in [uf[1], uf[0], uf[2]]])
    s["frag_duplicate"] = seed(*[frame(ip_frame(f)) for f in [uf[0], uf[0], uf[1], uf[2]]])
    s["frag_lone_timeout"] = seed(frame(ip_frame(uf[0])), frame(ip_frame(uf[1]), adv=200))
    s["frag_teardown_holding"] = seed(frame(ip_frame(uf[0])), frame(ping()), mode=1)
    overlap = ipv4(PEER_IP, OUR_IP, 17, u[40:88], ident=0x77, flags_frag=0x2000 | 5)
    s["frag_overlap"] = seed(frame(ip_frame(uf[0])), frame(ip_frame(overlap)))
    odd = ipv4(PEER_IP, OUR_IP, 17, u[:45], ident=0x78, flags_frag=0x2000)
    s["frag_not_multiple_of_8"] = seed(frame(ip_frame(odd)))
    beyond = ipv4(PEER_IP, OUR_IP, 17, b"e" * 16, ident=0x79, flags_frag=0x1FFF)
    s["frag_beyond_65535"] = seed(frame(ip_frame(beyond)))
    # ----- malformed Ethernet / IPv4 -----
    s["eth_truncated"] = seed(frame(OUR_MAC + PEER_MAC))
    s["eth_not_for_us"] = seed(frame(ping(dst_mac=bytes.fromhex("020000000003"))))
    s["eth_unknown_type"] = seed(frame(eth(OUR_MAC, PEER_MAC, 0x86DD, b"\x60" + b"\0" * 39)))
    s["eth_vlan"] = seed(frame(eth(OUR_MAC, PEER_MAC, 0x8100, b"\0\x01\x08\x00" + b"\0" * 20)))
    ok_udp = udp(PEER_IP, OUR_IP, 1, 2, b"m" * 8)
    s["ip_bad_version"] = seed(frame(ip_frame(ipv4(PEER_IP, OUR_IP, 17, ok_udp, version=6))))
    s["ip_bad_ihl"] = seed(frame(ip_frame(ipv4(PEER_IP, OUR_IP, 17, ok_udp)[:0] +
                                          bytes([0x43]) + ipv4(PEER_IP, OUR_IP, 17, ok_udp)[1:])))
    s["ip_options"] = seed(frame(ip_frame(ipv4(PEER_IP, OUR_IP, 17, ok_udp, ihl=15,
                                               options=b"\x01\x01\x07\x27"))))
    s["ip_bad_checksum"] = seed(frame(ip_frame(ipv4(PEER_IP, OUR_IP, 17, ok_udp,
                                                    good_csum=False))))
    s["ip_total_too_long"] = seed(frame(ip_frame(ipv4(PEER_IP, OUR_IP, 17, ok_udp, total=1400))))
    s["ip_total_too_short"] = seed(frame(ip_frame(ipv4(PEER_IP, OUR_IP, 17, ok_udp, total=12))))
    s["ip_padded"] = seed(frame(ip_frame(ipv4(PEER_IP, OUR_IP, 17, ok_udp) + b"\0" * 20)))
    s["ip_truncated"] = seed(frame(ip_frame(ipv4(PEER_IP, OUR_IP, 17, ok_udp)[:15])))
    s["ip_not_for_us"] = seed(frame(ip_frame(ipv4(PEER_IP, OTHER_IP, 17, ok_udp))))
    s["ip_broadcast_source"] = seed(frame(ip_frame(ipv4(b"\xff" * 4, OUR_IP, 17, ok_udp))))
    s["ip_loopback_source"] = seed(frame(ip_frame(ipv4(bytes([127, 0, 0, 1]), OUR_IP, 17,
                                                       ok_udp))))
    s["ip_header_split_chain"] = seed(frame(ip_frame(ipv4(PEER_IP, OUR_IP, 17, ok_udp, ihl=6)),
                                            ctl=CHAIN, split=30))
    # ----- several at once -----
    s["mixed_burst_ring"] = seed(*[frame(f, ctl=RING) for f in [
        arp_req_from_peer(), ping(seq=1), ping(seq=2),
        ip_frame(ipv4(PEER_IP, OUR_IP, 17, ok_udp)), ip_frame(uf[2]), ip_frame(uf[0]),
        ip_frame(uf[1])]], frame(b"", ctl=DIRECT | POLL, adv=1))
    # ----- the port queue's fault injector on the way in and out -----
    burst = [arp_req_from_peer(), ping(seq=1), ip_frame(uf[0]), ping(seq=2), ip_frame(uf[1]),
             ip_frame(uf[2]), ping(seq=3), ip_frame(ipv4(PEER_IP, OUR_IP, 17, ok_udp))]
    s["faults_rx_mixed"] = seed(*[frame(f, ctl=RING) for f in burst],
                                frame(b"", ctl=DIRECT | POLL, adv=1),
                                rx=faults(drop=10, dup=20, reorder=30, corrupt=10, delay_ms=2,
                                          jitter_ms=3, seed=7))
    s["faults_tx_ping"] = seed(frame(arp_reply(PEER_MAC, PEER_IP)),
                               *[frame(ping(seq=i), ctl=DIRECT | POLL, adv=3) for i in range(4)],
                               tx=faults(drop=20, dup=20, reorder=40, delay_ms=5, jitter_ms=5,
                                         seed=3))
    s["faults_both_fragments"] = seed(frame(arp_reply(PEER_MAC, PEER_IP)),
                                      *[frame(ip_frame(f), ctl=RING | POLL, adv=2) for f in frags],
                                      rx=faults(dup=30, reorder=50, delay_ms=1, seed=11),
                                      tx=faults(dup=30, reorder=50, delay_ms=1, seed=12))
    return s


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(
        os.path.abspath(__file__)), "corpus")
    os.makedirs(out, exist_ok=True)
    for name, data in sorted(seeds().items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print("wrote %d seeds to %s" % (len(seeds()), out))


if __name__ == "__main__":
    main()
