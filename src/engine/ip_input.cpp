// SPDX-License-Identifier: BSD-3-Clause
// IPv4 input: validate, reassemble, deliver to ICMP or an L4 handler.
#include <rte_mbuf.h>

#include "engine/instance.hpp"
#include "engine/mbuf_util.hpp"
#include "net/wire.hpp"

namespace keel::engine {

using net::Ipv4Error;
using net::Ipv4View;

namespace {
// `m`'s data starts at a valid IPv4 header.
bool is_fragment(const rte_mbuf* m) { return net::ipv4_is_fragment(rte_pktmbuf_mtod(m, const uint8_t*)); }
}  // namespace

void Instance::ip_input(rte_mbuf* m, Interface& ifc, uint64_t now_ns) {
  counters_.inc(Counter::ip_in);
  auto drop = [&](Counter c) {
    counters_.inc(c);
    rte_pktmbuf_free(m);
  };
  // The header (and no more: linearizing a chain would copy its payload) must
  // be contiguous for the view; real ports put it in the first segment.
  if (!make_contiguous(m, std::min<uint32_t>(m->pkt_len, net::ipv4_min_header_len)))
    return drop(Counter::ip_truncated);
  uint32_t ihl = uint32_t(net::ipv4_header_len(rte_pktmbuf_mtod(m, const uint8_t*)));
  if (ihl > net::ipv4_min_header_len && !make_contiguous(m, std::min<uint32_t>(m->pkt_len, ihl)))
    return drop(Counter::ip_truncated);
  Ipv4Error err{};
  auto ip = Ipv4View::parse(rte_pktmbuf_mtod(m, uint8_t*), m->data_len, m->pkt_len, err);
  if (!ip) {
    switch (err) {
      case Ipv4Error::truncated: return drop(Counter::ip_truncated);
      case Ipv4Error::bad_version: return drop(Counter::ip_bad_version);
      case Ipv4Error::bad_ihl: return drop(Counter::ip_bad_ihl);
      case Ipv4Error::bad_total_length: return drop(Counter::ip_bad_total_length);
    }
    return drop(Counter::ip_truncated);
  }
  uint64_t cks = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
  if (cks == RTE_MBUF_F_RX_IP_CKSUM_BAD ||
      (cks != RTE_MBUF_F_RX_IP_CKSUM_GOOD && !ip->checksum_ok()))
    return drop(Counter::ip_bad_checksum);
  // Ethernet pads short frames; the datagram ends at its total length.
  trim_to(m, ip->total_len());

  // RFC 1122 3.2.1.3: broadcast, multicast and loopback are never a source, and
  // 0.0.0.0 only while a host learns its address (so only to the limited
  // broadcast). One of our own addresses from the wire is spoofed or looped back
  // (Linux: martian source); answering it would make us ARP for ourselves.
  net::Ipv4Addr src = ip->src();
  bool own_source = false;
  for (const auto& i : ifaces_) own_source = own_source || i->owns(src);
  if (src.is_broadcast() || src.is_multicast() || src.is_loopback() || own_source ||
      (src.is_any() && !ip->dst().is_broadcast()))
    return drop(Counter::ip_bad_source);
  if (!ifc.accepts(ip->dst())) return drop(Counter::ip_not_for_us);
  ip_accept(m, ifc, now_ns);
}

// A valid datagram for us (data at its IPv4 header, header contiguous): each
// step runs on the instance that owns it (engine/flow_steering.hpp). A
// fragment goes to the owner of its addresses, which reassembles; the whole
// datagram then goes to the owner of its flow. What another instance owns is
// handed over (steer_away) and resumes here on that instance.
void Instance::ip_accept(rte_mbuf* m, Interface& ifc, uint64_t now_ns) {
  // The common case, one instance and a whole datagram, goes straight on (a tail
  // call: a handful of instructions per datagram).
  if (steer_ == nullptr && !is_fragment(m)) return ip_deliver(m, ifc, now_ns);
  ip_accept_steered(m, ifc, now_ns);
}

void Instance::ip_accept_steered(rte_mbuf* m, Interface& ifc, uint64_t now_ns) {
  if (steer_ != nullptr && steer_away(m, ifc)) return;
  if (is_fragment(m)) {
    m = reass_.insert(m, now_ns);  // counts ip_frag_in and the outcome
    if (m == nullptr) return;
    if (steer_ != nullptr && steer_away(m, ifc)) return;
  }
  ip_deliver(m, ifc, now_ns);
}

void Instance::ip_deliver(rte_mbuf* m, Interface& ifc, uint64_t now_ns) {
  const uint8_t* h = rte_pktmbuf_mtod(m, const uint8_t*);
  Ipv4Meta meta;
  meta.src = net::Ipv4Addr{net::load_be32(h + net::ipv4_field::src)};
  meta.dst = net::Ipv4Addr{net::load_be32(h + net::ipv4_field::dst)};
  meta.protocol = h[net::ipv4_field::protocol];
  meta.ttl = h[net::ipv4_field::ttl];
  meta.tos = h[net::ipv4_field::tos];
  meta.iface = ifc.index;
  meta.l4_cksum_good = (m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_GOOD &&
                       m->nb_segs == 1;  // a reassembled datagram was not verified whole
  size_t ihl = net::ipv4_header_len(h);
  meta.ihl = uint8_t(ihl);
  rte_pktmbuf_adj(m, uint16_t(ihl));
  if (meta.protocol == net::ipproto_icmp) return icmp_input(m, meta, now_ns);
  if (L4Handler* handler = l4_[meta.protocol]) return handler->on_datagram(*this, m, meta, now_ns);
  counters_.inc(Counter::ip_unknown_protocol);
  rte_pktmbuf_free(m);
}

}  // namespace keel::engine
