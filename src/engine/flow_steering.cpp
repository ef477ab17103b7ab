// SPDX-License-Identifier: BSD-3-Clause
#include "engine/flow_steering.hpp"

#include <rte_mbuf.h>
#include <rte_thash.h>

#include <cstring>
#include <iterator>
#include <stdexcept>

#include "drivers/port.hpp"

#include "net/wire.hpp"

namespace keel::engine {

using net::Ipv4Addr;

namespace {
// rte_softrss reads key words j and j+1 for input word j: 12 bytes of tuple
// need 16 bytes of key; the port's key is 40.
static_assert(sizeof(drivers::symmetric_rss_key) >= 4 * (RTE_THASH_V4_L4_LEN + 1));

bool has_ports(uint8_t protocol) { return protocol == net::ipproto_tcp || protocol == net::ipproto_udp; }

// What steering needs from an IPv4 header (at least 20 bytes at h).
struct HeaderFacts {
  Ipv4Addr src, dst;
  uint8_t protocol = 0;
  size_t ihl = 0;
  bool fragment = false;
  bool first_fragment = true;  ///< offset 0: the L4 header is here
};

HeaderFacts facts(const uint8_t* h) {
  HeaderFacts f;
  f.src = Ipv4Addr{net::load_be32(h + net::ipv4_field::src)};
  f.dst = Ipv4Addr{net::load_be32(h + net::ipv4_field::dst)};
  f.protocol = h[net::ipv4_field::protocol];
  f.ihl = net::ipv4_header_len(h);
  f.fragment = net::ipv4_is_fragment(h);
  f.first_fragment = net::ipv4_frag_offset(h) == 0;
  return f;
}
}  // namespace

FlowSteering::FlowSteering(uint16_t instances, uint16_t reta_size) : instances_(instances) {
  if (instances == 0 || reta_size == 0 || (reta_size & (reta_size - 1)) != 0)
    throw std::invalid_argument("FlowSteering: instances >= 1 and a power-of-two RETA size");
  reta_.resize(reta_size);
  for (uint16_t i = 0; i < reta_size; ++i) reta_[i] = uint16_t(i % instances);
}

namespace {
rte_ipv4_tuple tuple_of(Ipv4Addr src, Ipv4Addr dst, uint16_t sport, uint16_t dport) {
  rte_ipv4_tuple t{};
  t.src_addr = src.v;
  t.dst_addr = dst.v;
  t.sport = sport;
  t.dport = dport;
  return t;
}

// The symmetric key as rte_softrss_be wants it (host-order words).
struct ConvertedKey {
  uint32_t w[sizeof(drivers::symmetric_rss_key) / 4];
  ConvertedKey() {
    uint32_t raw[std::size(w)];
    std::memcpy(raw, drivers::symmetric_rss_key, sizeof raw);
    rte_convert_rss_key(raw, w, int(sizeof raw));
  }
  const uint8_t* bytes() const { return reinterpret_cast<const uint8_t*>(w); }
};
const ConvertedKey symmetric_key_be;
}  // namespace

uint32_t FlowSteering::hash(Ipv4Addr src, Ipv4Addr dst, uint16_t sport, uint16_t dport) {
  rte_ipv4_tuple t = tuple_of(src, dst, sport, dport);
  return rte_softrss_be(reinterpret_cast<uint32_t*>(&t), RTE_THASH_V4_L4_LEN, symmetric_key_be.bytes());
}

uint32_t FlowSteering::hash(Ipv4Addr src, Ipv4Addr dst) {
  uint32_t t[2] = {src.v, dst.v};
  return rte_softrss_be(t, RTE_THASH_V4_L3_LEN, symmetric_key_be.bytes());
}

uint32_t FlowSteering::hash_with_key(const uint8_t* key, Ipv4Addr src, Ipv4Addr dst, uint16_t sport,
                                     uint16_t dport) {
  rte_ipv4_tuple t = tuple_of(src, dst, sport, dport);
  return rte_softrss(reinterpret_cast<uint32_t*>(&t), RTE_THASH_V4_L4_LEN, key);
}

uint32_t FlowSteering::hash_with_key(const uint8_t* key, Ipv4Addr src, Ipv4Addr dst) {
  uint32_t t[2] = {src.v, dst.v};
  return rte_softrss(t, RTE_THASH_V4_L3_LEN, key);
}

uint16_t FlowSteering::owner_of(const rte_mbuf* m) const {
  if (instances_ == 1) return 0;
  const HeaderFacts ip = facts(rte_pktmbuf_mtod(m, const uint8_t*));
  if (ip.fragment) return owner(ip.src, ip.dst);
  uint8_t buf[4];
  if (has_ports(ip.protocol)) {
    const auto* p = static_cast<const uint8_t*>(rte_pktmbuf_read(m, uint32_t(ip.ihl), 4, buf));
    if (p == nullptr) return owner(ip.src, ip.dst);
    return owner(ip.src, ip.dst, net::load_be16(p), net::load_be16(p + 2));
  }
  if (ip.protocol != net::ipproto_icmp) return owner(ip.src, ip.dst);
  const auto* type = static_cast<const uint8_t*>(rte_pktmbuf_read(m, uint32_t(ip.ihl), 1, buf));
  if (type == nullptr || (*type != net::icmp_dest_unreachable && *type != net::icmp_time_exceeded &&
                          *type != net::icmp_parameter_problem))
    return owner(ip.src, ip.dst);
  // An error: the quoted header (after the 8-byte ICMP header) names the flow.
  uint8_t qbuf[60 + 4];
  const uint32_t qoff = uint32_t(ip.ihl + 8);
  const auto* q = static_cast<const uint8_t*>(rte_pktmbuf_read(m, qoff, net::ipv4_min_header_len, qbuf));
  if (q == nullptr || (q[0] >> 4) != 4 || (q[0] & 0xf) < 5) return owner(ip.src, ip.dst);
  const HeaderFacts quoted = facts(q);
  if (!has_ports(quoted.protocol) || !quoted.first_fragment) return owner(quoted.src, quoted.dst);
  const auto* p = static_cast<const uint8_t*>(rte_pktmbuf_read(m, uint32_t(qoff + quoted.ihl), 4, buf));
  if (p == nullptr) return owner(quoted.src, quoted.dst);
  return owner(quoted.src, quoted.dst, net::load_be16(p), net::load_be16(p + 2));
}

}  // namespace keel::engine
