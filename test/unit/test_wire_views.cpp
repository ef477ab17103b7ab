// SPDX-License-Identifier: BSD-3-Clause
// Wire views (src/net/wire.hpp): every parse() accepts exactly at its boundary
// and refuses one byte short, each malformed field is refused with its reason,
// accessors read the right bytes, and emit() writes every byte it owns (the
// output buffers are pre-filled with 0xa5 so a forgotten field shows).
#include <catch2/catch.hpp>
#include <rte_ip.h>
#include <cstring>

#include "frames.hpp"
#include "net/checksum.hpp"
#include "net/wire.hpp"
#include "test_support.hpp"

using namespace keel::test;
using keel::net::ArpError;
using keel::net::ArpRepr;
using keel::net::EthernetView;
using keel::net::Ipv4Addr;
using keel::net::Ipv4Error;
using keel::net::Ipv4Repr;
using keel::net::Ipv4View;
using keel::net::MacAddr;
using keel::net::parse_arp;

namespace {

/// A valid IPv4 packet to us with `options` and a `payload_len`-byte payload.
Bytes ip_packet(size_t payload_len = 12, const Bytes& options = {}) {
  Ip ip;
  ip.options = options;
  ip.tos = 0xb8;
  ip.ttl = 17;
  ip.id = 0xbeef;
  ip.df = true;
  return ipv4(ip, pattern(payload_len));
}

std::optional<Ipv4View> parse_ip(Bytes& b, Ipv4Error& err) {
  return Ipv4View::parse(b.data(), b.size(), err);
}

}  // namespace

// ===== Ethernet =====

TEST_CASE("wire: Ethernet view needs exactly 14 bytes", "[wire]") {
  Bytes f = ether(our_mac, peer_mac, 0x0806, {});
  REQUIRE(f.size() == 14);
  for (size_t len = 0; len < 14; ++len) {
    INFO("len " << len);
    REQUIRE_FALSE(EthernetView::parse(f.data(), len));
  }
  auto e = EthernetView::parse(f.data(), 14);
  REQUIRE(e);
  REQUIRE(e->dst() == our_mac);
  REQUIRE(e->src() == peer_mac);
  REQUIRE(e->ethertype() == 0x0806);
}

TEST_CASE("wire: Ethernet emit writes the whole header", "[wire]") {
  uint8_t buf[16];
  std::memset(buf, 0xa5, sizeof buf);
  EthernetView::emit(buf, MacAddr::broadcast(), our_mac, keel::net::ethertype_ipv4);
  Bytes got(buf, buf + 14);
  REQUIRE(got == ether(MacAddr::broadcast(), our_mac, 0x0800, {}));
  REQUIRE(buf[14] == 0xa5);  // nothing written past the header
  REQUIRE(buf[15] == 0xa5);
}

// ===== ARP =====

TEST_CASE("wire: ARP parse boundaries and fields", "[wire]") {
  Bytes a = arp_reply(peer_mac, peer_ip, our_mac, our_ip);
  ArpError err{};
  for (size_t len = 0; len < 28; ++len) {
    INFO("len " << len);
    REQUIRE_FALSE(parse_arp(a.data(), len, err));
    REQUIRE(err == ArpError::truncated);
  }
  auto r = parse_arp(a.data(), a.size(), err);
  REQUIRE(r);
  REQUIRE(r->oper == keel::net::arp_reply);
  REQUIRE(r->sha == peer_mac);
  REQUIRE(r->spa == peer_ip);
  REQUIRE(r->tha == our_mac);
  REQUIRE(r->tpa == our_ip);

  a.resize(60, 0);  // Ethernet padding after the message is ignored
  REQUIRE(parse_arp(a.data(), a.size(), err));
}

TEST_CASE("wire: ARP refuses other hardware and protocol formats", "[wire]") {
  ArpError err{};
  auto refuse = [&](Arp a, ArpError want) {
    Bytes b = arp(a);
    err = ArpError{};
    REQUIRE_FALSE(parse_arp(b.data(), b.size(), err));
    REQUIRE(err == want);
  };
  Arp base{.oper = 1, .sha = peer_mac, .spa = peer_ip, .tpa = our_ip};
  {
    Bytes b = arp(base);
    REQUIRE(parse_arp(b.data(), b.size(), err));
  }
  SECTION("htype") {
    Arp a = base;
    a.htype = 6;
    refuse(a, ArpError::bad_format);
  }
  SECTION("htype 0") {
    Arp a = base;
    a.htype = 0;
    refuse(a, ArpError::bad_format);
  }
  SECTION("ptype") {
    Arp a = base;
    a.ptype = 0x86dd;
    refuse(a, ArpError::bad_format);
  }
  SECTION("hlen") {
    Arp a = base;
    a.hlen = 8;
    refuse(a, ArpError::bad_format);
  }
  SECTION("plen") {
    Arp a = base;
    a.plen = 16;
    refuse(a, ArpError::bad_format);
  }
  SECTION("opcode 0") {
    Arp a = base;
    a.oper = 0;
    refuse(a, ArpError::bad_opcode);
  }
  SECTION("opcode 3 (RARP)") {
    Arp a = base;
    a.oper = 3;
    refuse(a, ArpError::bad_opcode);
  }
  SECTION("opcode 0x0101") {
    Arp a = base;
    a.oper = 0x0101;
    refuse(a, ArpError::bad_opcode);
  }
}

TEST_CASE("wire: ARP emit writes all 28 bytes", "[wire]") {
  uint8_t buf[30];
  std::memset(buf, 0xa5, sizeof buf);
  ArpRepr r;
  r.oper = keel::net::arp_request;
  r.sha = our_mac;
  r.spa = our_ip;
  r.tha = MacAddr{};
  r.tpa = peer_ip;
  r.emit(buf);
  REQUIRE(Bytes(buf, buf + 28) == arp_request(our_mac, our_ip, peer_ip));
  REQUIRE(buf[28] == 0xa5);
  REQUIRE(buf[29] == 0xa5);
}

// ===== IPv4 =====

TEST_CASE("wire: IPv4 truncated below 20 bytes", "[wire]") {
  Bytes p = ip_packet(0);
  REQUIRE(p.size() == 20);
  Ipv4Error err{};
  for (size_t len = 0; len < 20; ++len) {
    INFO("len " << len);
    REQUIRE_FALSE(Ipv4View::parse(p.data(), len, err));
    REQUIRE(err == Ipv4Error::truncated);
  }
  // A header of 20 bytes and nothing else is a whole (empty) datagram.
  REQUIRE(parse_ip(p, err));
  // The packet length counts too, not only the contiguous bytes.
  REQUIRE_FALSE(Ipv4View::parse(p.data(), 20, 19, err));
  REQUIRE(err == Ipv4Error::truncated);
}

TEST_CASE("wire: IPv4 version must be 4", "[wire]") {
  Ipv4Error err{};
  for (unsigned v : {0u, 1u, 5u, 6u, 15u}) {
    INFO("version " << v);
    Bytes p = ip_packet();
    p[0] = uint8_t(v << 4 | 5);
    REQUIRE_FALSE(parse_ip(p, err));
    REQUIRE(err == Ipv4Error::bad_version);
  }
}

TEST_CASE("wire: IPv4 IHL below 5 or beyond the bytes", "[wire]") {
  Ipv4Error err{};
  for (unsigned ihl = 0; ihl < 5; ++ihl) {
    INFO("ihl " << ihl);
    Bytes p = ip_packet();
    p[0] = uint8_t(0x40 | ihl);
    REQUIRE_FALSE(parse_ip(p, err));
    REQUIRE(err == Ipv4Error::bad_ihl);
  }
  // IHL 15 (60 bytes) over a 40-byte packet.
  Bytes p = ip_packet(20);
  p[0] = 0x4f;
  REQUIRE_FALSE(parse_ip(p, err));
  REQUIRE(err == Ipv4Error::bad_ihl);
  // The header must be within the contiguous bytes, even when the packet is longer.
  Bytes q = ip_packet(40, Bytes(8, 1));  // IHL 7 = 28 bytes
  REQUIRE_FALSE(Ipv4View::parse(q.data(), 27, q.size(), err));
  REQUIRE(err == Ipv4Error::bad_ihl);
  auto v = Ipv4View::parse(q.data(), 28, q.size(), err);
  REQUIRE(v);
  REQUIRE(v->header_len() == 28);
}

TEST_CASE("wire: IPv4 total length below the header or beyond the packet", "[wire]") {
  Ipv4Error err{};
  Bytes opts(4, 1);
  Bytes p = ip_packet(10, opts);  // header 24, total 34
  SECTION("total == IHL is accepted") {
    keel::net::store_be16(&p[2], 24);
    REQUIRE(parse_ip(p, err));
  }
  SECTION("total one below IHL") {
    keel::net::store_be16(&p[2], 23);
    REQUIRE_FALSE(parse_ip(p, err));
    REQUIRE(err == Ipv4Error::bad_total_length);
  }
  SECTION("total 0") {
    keel::net::store_be16(&p[2], 0);
    REQUIRE_FALSE(parse_ip(p, err));
    REQUIRE(err == Ipv4Error::bad_total_length);
  }
  SECTION("total == packet is accepted, one more is not") {
    REQUIRE(parse_ip(p, err));
    keel::net::store_be16(&p[2], 35);
    REQUIRE_FALSE(parse_ip(p, err));
    REQUIRE(err == Ipv4Error::bad_total_length);
  }
  SECTION("total beyond the contiguous bytes but within the packet is accepted") {
    REQUIRE(Ipv4View::parse(p.data(), 24, 34, err));
    REQUIRE_FALSE(Ipv4View::parse(p.data(), 24, 33, err));
    REQUIRE(err == Ipv4Error::bad_total_length);
  }
  SECTION("padding after the datagram is allowed") {
    p.resize(46, 0);
    auto v = parse_ip(p, err);
    REQUIRE(v);
    REQUIRE(v->total_len() == 34);
  }
}

TEST_CASE("wire: IPv4 accessors read every field", "[wire]") {
  Ip ip;
  ip.src = Ipv4Addr{198, 18, 255, 254};
  ip.dst = Ipv4Addr{198, 19, 0, 1};
  ip.protocol = 6;
  ip.ttl = 1;
  ip.tos = 0x2e;
  ip.id = 0xfedc;
  ip.mf = true;
  ip.frag_off = 8 * 0x1fff;               // the largest offset
  ip.options = {0x94, 0x04, 0x00, 0x00};  // router alert
  Bytes p = ipv4(ip, pattern(8));
  Ipv4Error err{};
  auto v = parse_ip(p, err);
  REQUIRE(v);
  REQUIRE(v->version() == 4);
  REQUIRE(v->header_len() == 24);
  REQUIRE(v->tos() == 0x2e);
  REQUIRE(v->total_len() == 32);
  REQUIRE(v->id() == 0xfedc);
  REQUIRE_FALSE(v->dont_fragment());
  REQUIRE(v->more_fragments());
  REQUIRE(v->frag_offset() == 8 * 0x1fff);
  REQUIRE(v->is_fragment());
  REQUIRE(v->ttl() == 1);
  REQUIRE(v->protocol() == 6);
  REQUIRE(v->src() == ip.src);
  REQUIRE(v->dst() == ip.dst);
  REQUIRE(v->checksum() == keel::net::load_be16(&p[10]));
  REQUIRE(v->checksum_ok());
  REQUIRE(v->data() == p.data());

  SECTION("a flipped bit anywhere in the header, options included, fails the checksum") {
    for (size_t i = 0; i < 24; ++i) {
      INFO("byte " << i);
      Bytes q = p;
      q[i] ^= 0x10;
      if (i == 0) continue;  // would change the IHL itself
      auto w = parse_ip(q, err);
      if (!w) continue;  // e.g. the total length now exceeds the packet
      REQUIRE_FALSE(w->checksum_ok());
    }
  }
  SECTION("DF only, offset 0: not a fragment") {
    Ip j;
    j.df = true;
    Bytes q = ipv4(j, {});
    auto w = parse_ip(q, err);
    REQUIRE(w);
    REQUIRE(w->dont_fragment());
    REQUIRE_FALSE(w->more_fragments());
    REQUIRE(w->frag_offset() == 0);
    REQUIRE_FALSE(w->is_fragment());
  }
  SECTION("the last fragment (offset, no MF) is a fragment") {
    Ip j;
    j.frag_off = 1480;
    Bytes q = ipv4(j, {});
    auto w = parse_ip(q, err);
    REQUIRE(w);
    REQUIRE(w->is_fragment());
    REQUIRE(w->frag_offset() == 1480);
  }
}

TEST_CASE("wire: Ipv4Repr emit writes the whole header", "[wire]") {
  Ipv4Repr r;
  r.src = our_ip;
  r.dst = peer_ip;
  r.protocol = 17;
  r.ttl = 33;
  r.tos = 0x10;
  r.id = 0xabcd;
  r.dont_fragment = true;
  r.payload_len = 1000;
  uint8_t buf[22];
  std::memset(buf, 0xa5, sizeof buf);
  r.emit(buf, false);
  Ip want;
  want.src = our_ip;
  want.dst = peer_ip;
  want.protocol = 17;
  want.ttl = 33;
  want.tos = 0x10;
  want.id = 0xabcd;
  want.df = true;
  Bytes expect = ipv4(want, Bytes(1000, 0));
  expect.resize(20);
  REQUIRE(Bytes(buf, buf + 20) == expect);
  REQUIRE(buf[20] == 0xa5);
  REQUIRE(buf[21] == 0xa5);

  SECTION("without DF") {
    r.dont_fragment = false;
    r.emit(buf, false);
    REQUIRE(keel::net::load_be16(buf + 6) == 0);
    REQUIRE(cksum(Bytes(buf, buf + 20)) == 0);
  }
  SECTION("checksum left for the port") {
    std::memset(buf, 0xa5, sizeof buf);
    r.emit(buf, true);
    REQUIRE(keel::net::load_be16(buf + 10) == 0);
    expect[10] = expect[11] = 0;
    REQUIRE(Bytes(buf, buf + 20) == expect);
  }
}

// ===== Checksum helpers (the stack's, against the plain loop in frames.hpp) =====

TEST_CASE("wire: inet_checksum over contiguous bytes and chains of odd segments", "[wire]") {
  PoolBaseline base;
  for (size_t len : {0u, 1u, 2u, 3u, 19u, 20u, 21u, 255u, 1000u, 1501u}) {
    INFO("len " << len);
    Bytes b = pattern(len, uint8_t(len));
    uint16_t want = cksum(b);
    REQUIRE(keel::net::inet_checksum(b.data(), b.size()) == want);
    rte_mbuf* m = make_chain(b, {1, 2, 3, 7});  // odd cuts shift the byte pairing
    REQUIRE(keel::net::inet_checksum(m, 0, len) == want);
    if (len > 5) REQUIRE(keel::net::inet_checksum(m, 5, len - 5) == cksum(b, 5));
    rte_pktmbuf_free(m);
  }
}

TEST_CASE("wire: inet_checksum agrees with rte_raw_cksum at every length and alignment", "[wire]") {
  Bytes b = pattern(2100, 7);
  for (size_t i = 0; i < b.size(); ++i) b[i] = uint8_t(b[i] * 131 + i * 17);  // carries
  for (size_t off = 0; off < 9; ++off)
    for (size_t len = 0; len + off <= b.size(); len += (len < 80 ? 1 : 37)) {
      uint16_t want = __builtin_bswap16(uint16_t(~rte_raw_cksum(b.data() + off, len)));
      if (want != keel::net::inet_checksum(b.data() + off, len)) FAIL("off " << off << " len " << len);
    }
  Bytes ones(1500, 0xff);  // all carries
  REQUIRE(keel::net::inet_checksum(ones.data(), ones.size()) == cksum(ones));
}

TEST_CASE("wire: UDP checksum over the pseudo header", "[wire]") {
  PoolBaseline base;
  for (size_t n : {0u, 1u, 9u, 100u}) {
    INFO("payload " << n);
    Bytes u = udp(our_ip, peer_ip, 5353, 53, pattern(n));
    Ip ip;
    ip.src = our_ip;
    ip.dst = peer_ip;
    Bytes p = ipv4(ip, u);
    rte_mbuf* m = make_chain(p, {13, 10});
    // Verifying an intact datagram yields 0.
    REQUIRE(keel::net::ipv4_l4_checksum(p.data(), m, 20, u.size()) == 0);
    // Computing over a zeroed field reproduces the builder's value.
    uint16_t field = keel::net::load_be16(&u[6]);
    p[20 + 6] = p[20 + 7] = 0;
    rte_mbuf* z = make_mbuf(p);
    uint16_t c = keel::net::ipv4_l4_checksum(p.data(), z, 20, u.size());
    REQUIRE((c == 0 ? 0xffff : c) == field);
    rte_pktmbuf_free(m);
    rte_pktmbuf_free(z);
  }
}
