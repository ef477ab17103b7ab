// SPDX-License-Identifier: BSD-3-Clause
#pragma once
// Frame builders and parsers for packet-level tests. They are written against
// the RFCs, not against src/net: byte offsets are spelled out and checksums are
// computed here with a plain loop, so a bug in the stack's own wire code or
// checksum helpers cannot cancel itself out in a test.
//
// Builders return byte vectors (make_mbuf / make_chain turn them into mbufs);
// parsers take what the stack emitted and REQUIRE every length to be sane
// before a field is read.

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "net/addresses.hpp"
#include "net/byte_order.hpp"

namespace keel::test {

using Bytes = std::vector<uint8_t>;

// ===== Checksums =====

/// One's-complement sum of `len` bytes (odd length padded with a zero byte), not folded.
inline uint32_t sum16(const uint8_t* p, size_t len, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < len; i += 2) sum += uint32_t(p[i]) << 8 | p[i + 1];
  if (len & 1) sum += uint32_t(p[len - 1]) << 8;
  return sum;
}

/// Folds and complements a sum: the value for a checksum field, 0 when an
/// intact region that includes its checksum field is summed.
inline uint16_t fold_cksum(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(~sum);
}

inline uint16_t cksum(const Bytes& b, size_t off = 0, size_t len = SIZE_MAX) {
  len = std::min(len, b.size() - off);
  return fold_cksum(sum16(b.data() + off, len));
}

/// The TCP/UDP pseudo-header sum (RFC 768 / RFC 9293).
inline uint32_t pseudo_sum(net::Ipv4Addr src, net::Ipv4Addr dst, uint8_t proto, size_t l4_len) {
  return (src.v >> 16) + (src.v & 0xffff) + (dst.v >> 16) + (dst.v & 0xffff) + proto +
         uint32_t(l4_len);
}

// ===== Builders =====

/// Addresses the tests use: we are .2, the gateway/peer is .1, another neighbour is .3.
inline const net::MacAddr our_mac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}};
inline const net::MacAddr peer_mac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};
inline const net::MacAddr other_mac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x03}};
inline constexpr net::Ipv4Addr our_ip{198, 18, 0, 2};
inline constexpr net::Ipv4Addr peer_ip{198, 18, 0, 1};
inline constexpr net::Ipv4Addr other_ip{198, 18, 0, 3};
inline constexpr net::Ipv4Addr subnet_bcast{198, 18, 0, 255};
inline constexpr net::Ipv4Addr far_ip{198, 19, 7, 9};  // off-link: via the gateway

/// A `n`-byte payload whose bytes differ with position and `seed`.
inline Bytes pattern(size_t n, uint8_t seed = 0) {
  Bytes v(n);
  for (size_t i = 0; i < n; ++i) v[i] = uint8_t(i * 7 + (i >> 8) * 13 + seed);
  return v;
}

inline Bytes cat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

/// Ethernet II frame (no FCS, no padding unless `pad_to` is larger).
inline Bytes ether(net::MacAddr dst, net::MacAddr src, uint16_t type, const Bytes& payload,
                   size_t pad_to = 0) {
  Bytes f(14);
  dst.to_bytes(&f[0]);
  src.to_bytes(&f[6]);
  net::store_be16(&f[12], type);
  f = cat(f, payload);
  if (f.size() < pad_to) f.resize(pad_to, 0);
  return f;
}

/// An Ethernet/IPv4 ARP message (28 bytes).
struct Arp {
  uint16_t htype = 1, ptype = 0x0800;
  uint8_t hlen = 6, plen = 4;
  uint16_t oper = 1;
  net::MacAddr sha, tha;
  net::Ipv4Addr spa, tpa;
};

inline Bytes arp(const Arp& a) {
  Bytes b(28);
  net::store_be16(&b[0], a.htype);
  net::store_be16(&b[2], a.ptype);
  b[4] = a.hlen;
  b[5] = a.plen;
  net::store_be16(&b[6], a.oper);
  a.sha.to_bytes(&b[8]);
  net::store_be32(&b[14], a.spa.v);
  a.tha.to_bytes(&b[18]);
  net::store_be32(&b[24], a.tpa.v);
  return b;
}

inline Bytes arp_request(net::MacAddr sha, net::Ipv4Addr spa, net::Ipv4Addr tpa) {
  return arp({.oper = 1, .sha = sha, .tha = {}, .spa = spa, .tpa = tpa});
}
inline Bytes arp_reply(net::MacAddr sha, net::Ipv4Addr spa, net::MacAddr tha, net::Ipv4Addr tpa) {
  return arp({.oper = 2, .sha = sha, .tha = tha, .spa = spa, .tpa = tpa});
}

/// IPv4 header fields; the builder computes total length and checksum.
struct Ip {
  net::Ipv4Addr src = peer_ip, dst = our_ip;
  uint8_t protocol = 17;
  uint8_t ttl = 64;
  uint8_t tos = 0;
  uint16_t id = 0x4242;
  bool df = false, mf = false;
  uint16_t frag_off = 0;  ///< in bytes (a multiple of 8)
  Bytes options;          ///< a multiple of 4 bytes, at most 40
};

/// IPv4 header + payload with a valid header checksum.
inline Bytes ipv4(const Ip& ip, const Bytes& payload) {
  size_t ihl = 20 + ip.options.size();
  Bytes b(ihl);
  b[0] = uint8_t(0x40 | ihl / 4);
  b[1] = ip.tos;
  net::store_be16(&b[2], uint16_t(ihl + payload.size()));
  net::store_be16(&b[4], ip.id);
  net::store_be16(&b[6], uint16_t((ip.df ? 0x4000 : 0) | (ip.mf ? 0x2000 : 0) | ip.frag_off / 8));
  b[8] = ip.ttl;
  b[9] = ip.protocol;
  net::store_be32(&b[12], ip.src.v);
  net::store_be32(&b[16], ip.dst.v);
  std::copy(ip.options.begin(), ip.options.end(), b.begin() + 20);
  net::store_be16(&b[10], cksum(b));
  return cat(b, payload);
}

/// Recomputes the header checksum of an IPv4 header at `off` after a test edited it.
inline void fix_ip_cksum(Bytes& f, size_t off = 14) {
  size_t ihl = size_t(f[off] & 0xf) * 4;
  net::store_be16(&f[off + 10], 0);
  net::store_be16(&f[off + 10], cksum(f, off, ihl));
}

/// ICMP message: type, code, the 4-byte "rest of header" and data, with checksum.
inline Bytes icmp(uint8_t type, uint8_t code, uint32_t rest, const Bytes& data) {
  Bytes b(8);
  b[0] = type;
  b[1] = code;
  net::store_be32(&b[4], rest);
  b = cat(b, data);
  net::store_be16(&b[2], cksum(b));
  return b;
}

inline Bytes echo_request(uint16_t id, uint16_t seq, const Bytes& data) {
  return icmp(8, 0, uint32_t(id) << 16 | seq, data);
}

/// UDP datagram with its checksum over the pseudo header.
inline Bytes udp(net::Ipv4Addr src, net::Ipv4Addr dst, uint16_t sport, uint16_t dport,
                 const Bytes& payload) {
  Bytes b(8);
  net::store_be16(&b[0], sport);
  net::store_be16(&b[2], dport);
  net::store_be16(&b[4], uint16_t(8 + payload.size()));
  b = cat(b, payload);
  uint16_t c = fold_cksum(sum16(b.data(), b.size(), pseudo_sum(src, dst, 17, b.size())));
  net::store_be16(&b[6], c == 0 ? 0xffff : c);
  return b;
}

/// Cuts an IPv4 payload into fragments of at most `size` bytes (a multiple of 8),
/// each a full Ethernet frame to us. Fragment i covers [i*size, ...).
inline std::vector<Bytes> fragments(Ip ip, const Bytes& payload, size_t size,
                                    net::MacAddr src_mac = peer_mac) {
  std::vector<Bytes> out;
  for (size_t off = 0; off < payload.size(); off += size) {
    size_t len = std::min(size, payload.size() - off);
    ip.frag_off = uint16_t(off);
    ip.mf = off + len < payload.size();
    Bytes part(payload.begin() + ptrdiff_t(off), payload.begin() + ptrdiff_t(off + len));
    out.push_back(ether(our_mac, src_mac, 0x0800, ipv4(ip, part)));
  }
  return out;
}

// ===== Parsers for what the stack emitted =====

struct EthFrame {
  net::MacAddr dst, src;
  uint16_t type = 0;
  Bytes payload;
};

inline EthFrame parse_ether(const Bytes& f) {
  REQUIRE(f.size() >= 14);
  EthFrame e;
  e.dst = net::MacAddr::from_bytes(&f[0]);
  e.src = net::MacAddr::from_bytes(&f[6]);
  e.type = net::load_be16(&f[12]);
  e.payload.assign(f.begin() + 14, f.end());
  return e;
}

inline Arp parse_arp_bytes(const Bytes& b) {
  REQUIRE(b.size() == 28);
  Arp a;
  a.htype = net::load_be16(&b[0]);
  a.ptype = net::load_be16(&b[2]);
  a.hlen = b[4];
  a.plen = b[5];
  a.oper = net::load_be16(&b[6]);
  a.sha = net::MacAddr::from_bytes(&b[8]);
  a.spa = net::Ipv4Addr{net::load_be32(&b[14])};
  a.tha = net::MacAddr::from_bytes(&b[18]);
  a.tpa = net::Ipv4Addr{net::load_be32(&b[24])};
  return a;
}

struct IpPacket {
  Ip hdr;
  uint16_t total_len = 0;
  uint16_t checksum = 0;
  Bytes payload;
};

/// Parses an emitted IPv4 packet and REQUIREs a sane, checksummed header with
/// the total length equal to the bytes present.
inline IpPacket parse_ipv4(const Bytes& b) {
  REQUIRE(b.size() >= 20);
  REQUIRE(b[0] >> 4 == 4);
  size_t ihl = size_t(b[0] & 0xf) * 4;
  REQUIRE(ihl >= 20);
  REQUIRE(b.size() >= ihl);
  REQUIRE(cksum(b, 0, ihl) == 0);
  IpPacket p;
  p.hdr.tos = b[1];
  p.total_len = net::load_be16(&b[2]);
  REQUIRE(p.total_len == b.size());
  p.hdr.id = net::load_be16(&b[4]);
  uint16_t ff = net::load_be16(&b[6]);
  REQUIRE((ff & 0x8000) == 0);  // the reserved flag
  p.hdr.df = ff & 0x4000;
  p.hdr.mf = ff & 0x2000;
  p.hdr.frag_off = uint16_t((ff & 0x1fff) * 8);
  p.hdr.ttl = b[8];
  p.hdr.protocol = b[9];
  p.checksum = net::load_be16(&b[10]);
  p.hdr.src = net::Ipv4Addr{net::load_be32(&b[12])};
  p.hdr.dst = net::Ipv4Addr{net::load_be32(&b[16])};
  p.hdr.options.assign(b.begin() + 20, b.begin() + ptrdiff_t(ihl));
  p.payload.assign(b.begin() + ptrdiff_t(ihl), b.end());
  return p;
}

/// Parses an emitted Ethernet/IPv4 frame and checks its addresses and protocol
/// (the MACs and IPv4 addresses non-fatally, the EtherType and protocol fatally).
inline IpPacket parse_ipv4_frame(const Bytes& f, net::MacAddr eth_dst, net::MacAddr eth_src,
                                 net::Ipv4Addr src, net::Ipv4Addr dst, uint8_t protocol) {
  EthFrame e = parse_ether(f);
  CHECK(e.dst == eth_dst);
  CHECK(e.src == eth_src);
  REQUIRE(e.type == 0x0800);
  IpPacket ip = parse_ipv4(e.payload);
  CHECK(ip.hdr.src == src);
  CHECK(ip.hdr.dst == dst);
  REQUIRE(ip.hdr.protocol == protocol);
  return ip;
}

}  // namespace keel::test

namespace Catch {
template <>
struct StringMaker<keel::net::MacAddr> {
  static std::string convert(const keel::net::MacAddr& m) { return m.to_string(); }
};
template <>
struct StringMaker<keel::net::Ipv4Addr> {
  static std::string convert(const keel::net::Ipv4Addr& a) { return a.to_string(); }
};
}  // namespace Catch
