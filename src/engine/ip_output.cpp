// SPDX-License-Identifier: BSD-3-Clause
// IPv4 output: route, header, checksums (offloaded when the port can), fragmentation.
#include <rte_mbuf.h>

#include "engine/instance.hpp"
#include "net/checksum.hpp"
#include "net/wire.hpp"

namespace keel::engine {

using net::Ipv4Addr;

namespace {
// True if every segment but the last has an even length (see
// OffloadCaps::tx_l4_cksum_even_segments).
bool even_segments(const rte_mbuf* m) {
  for (; m->next != nullptr; m = m->next)
    if (m->data_len & 1) return false;
  return true;
}
}  // namespace

std::optional<Route> Instance::route(Ipv4Addr dst) {
  // Directly connected first, then the default gateway of the first interface
  // that has one on-link.
  for (auto& ifc : ifaces_)
    if (ifc->on_link(dst) || (dst.is_broadcast() && !ifc->l3.addrs.empty()))
      return Route{ifc.get(), dst, ifc->source_for(dst)};
  for (auto& ifc : ifaces_)
    if (!ifc->l3.gateway.is_any() && ifc->on_link(ifc->l3.gateway))
      return Route{ifc.get(), ifc->l3.gateway, ifc->source_for(ifc->l3.gateway)};
  return std::nullopt;
}

Result<void> Instance::ip_output(rte_mbuf* m, const IpSend& p, uint64_t now_ns) {
  auto rt = route(p.dst);
  if (!rt) {
    counters_.inc(Counter::ip_no_route);
    rte_pktmbuf_free(m);
    return fail(Errc::unreachable);
  }
  Interface& ifc = *rt->iface;
  uint32_t l4_len = m->pkt_len;
  uint32_t total = uint32_t(net::ipv4_min_header_len) + l4_len;
  if (total > 65535) {
    rte_pktmbuf_free(m);
    return fail(Errc::invalid_argument);
  }
  bool tso = m->ol_flags & RTE_MBUF_F_TX_TCP_SEG;
  bool needs_fragments = total > ifc.mtu && !tso;
  if (needs_fragments && p.dont_fragment) {
    counters_.inc(Counter::ip_too_big_df);
    rte_pktmbuf_free(m);
    return fail(Errc::invalid_argument);  // the caller must respect the path MTU
  }
  auto* h = reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(m, net::ipv4_min_header_len));
  if (h == nullptr) {
    rte_pktmbuf_free(m);
    return fail(Errc::no_memory);
  }
  net::Ipv4Repr repr;
  repr.src = p.src.is_any() ? rt->src : p.src;
  repr.dst = p.dst;
  repr.protocol = p.protocol;
  repr.ttl = p.ttl ? p.ttl : cfg_.default_ttl;
  repr.tos = p.tos;
  repr.id = ip_id_++;
  repr.dont_fragment = p.dont_fragment;
  repr.payload_len = uint16_t(l4_len);
  // A fragmented or multi-segment frame on a port without multi-seg TX gets
  // everything computed here.
  bool offload_ip = ifc.caps.tx_ipv4_cksum && !needs_fragments;
  repr.emit(h, offload_ip);
  m->l2_len = net::eth_header_len;
  m->l3_len = net::ipv4_min_header_len;
  if (offload_ip) m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM;

  if (p.l4 != L4Checksum::none) {
    size_t field = p.l4 == L4Checksum::tcp ? net::tcp_field::checksum : net::udp_field::checksum;
    uint8_t* cks = h + net::ipv4_min_header_len + field;  // header is in the first segment
    bool offload_l4 = !needs_fragments &&
                      (p.l4 == L4Checksum::tcp ? ifc.caps.tx_tcp_cksum : ifc.caps.tx_udp_cksum) &&
                      (!ifc.caps.tx_l4_cksum_even_segments || even_segments(m));
    if (offload_l4) {
      m->ol_flags |= RTE_MBUF_F_TX_IPV4 |
                     (p.l4 == L4Checksum::tcp ? RTE_MBUF_F_TX_TCP_CKSUM : RTE_MBUF_F_TX_UDP_CKSUM);
      net::store_be16(cks, net::ipv4_pseudo_header_sum(h, tso ? 0 : l4_len));
    } else {
      net::store_be16(cks, 0);
      uint16_t c = net::ipv4_l4_checksum(h, m, net::ipv4_min_header_len, l4_len);
      // RFC 768: a computed UDP checksum of zero is sent as all ones.
      if (p.l4 == L4Checksum::udp && c == 0) c = 0xffff;
      net::store_be16(cks, c);
    }
  }
  counters_.inc(Counter::ip_out);
  if (needs_fragments) return fragment_and_send(m, ifc, rt->next_hop, now_ns);
  resolve_and_send(ifc, rt->next_hop, m, now_ns);
  return {};
}

// Splits a datagram (data at its 20-byte header, checksums final) into
// MTU-sized fragments, copying the payload into fresh mbufs. Rare path: only
// datagrams sent without DF (e.g. the reply to a large ping) come here.
Result<void> Instance::fragment_and_send(rte_mbuf* m, Interface& ifc, Ipv4Addr next_hop,
                                         uint64_t now_ns) {
  uint8_t hdr[net::ipv4_min_header_len];
  std::memcpy(hdr, rte_pktmbuf_mtod(m, const uint8_t*), sizeof hdr);
  uint32_t payload = m->pkt_len - uint32_t(sizeof hdr);
  uint32_t max_frag = (uint32_t(ifc.mtu) - uint32_t(sizeof hdr)) & ~7u;
  Result<void> result;
  for (uint32_t off = 0; off < payload; off += max_frag) {
    uint32_t len = std::min(max_frag, payload - off);
    bool more = off + len < payload;
    rte_mbuf* f = rte_pktmbuf_alloc(ifc.pool);
    if (f == nullptr || rte_pktmbuf_tailroom(f) < sizeof hdr + len) {
      counters_.inc(Counter::mbuf_alloc_failed);
      rte_pktmbuf_free(f);
      result = fail(Errc::no_memory);
      break;
    }
    auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(f, uint16_t(sizeof hdr + len)));
    std::memcpy(p, hdr, sizeof hdr);
    const void* src = rte_pktmbuf_read(m, uint32_t(sizeof hdr) + off, len, p + sizeof hdr);
    if (src != p + sizeof hdr) std::memcpy(p + sizeof hdr, src, len);
    net::store_be16(p + net::ipv4_field::total_len, uint16_t(sizeof hdr + len));
    net::store_be16(p + net::ipv4_field::flags_frag,
                    uint16_t((more ? net::ipv4_flag_mf : 0) | (off / 8)));
    net::store_be16(p + net::ipv4_field::checksum, 0);
    net::store_be16(p + net::ipv4_field::checksum, net::inet_checksum(p, sizeof hdr));
    resolve_and_send(ifc, next_hop, f, now_ns);
  }
  rte_pktmbuf_free(m);
  return result;
}

}  // namespace keel::engine
