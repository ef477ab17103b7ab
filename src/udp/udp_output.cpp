// SPDX-License-Identifier: BSD-3-Clause
// UDP output: the header in the payload's headroom (or a header mbuf in front),
// then ip_output, which offloads the checksum when the port can, computes it
// otherwise, and fragments beyond the MTU.
#include <rte_mbuf.h>

#include <cstring>

#include "engine/mbuf_util.hpp"
#include "net/wire.hpp"
#include "udp/udp_stack.hpp"

namespace keel::udp {

using engine::Counter;
using net::Ipv4Addr;

namespace {
/// Headroom the header goes into: UDP, then what ip_output and the Ethernet layer prepend.
constexpr uint16_t header_room = net::udp_header_len + net::ipv4_min_header_len + net::eth_header_len;
}  // namespace

bool UdpStack::bad_destination(Ipv4Addr dst, uint16_t port) const {
  return port == 0 || dst.is_any() || dst.is_multicast() || is_broadcast(dst);
}

Result<void> UdpStack::send_to(UdpSocket& s, rte_mbuf* m, Ipv4Addr dst, uint16_t port) {
  if (m == nullptr || bad_destination(dst, port) || m->pkt_len > max_payload)
    return fail(Errc::invalid_argument);  // not taken
  if (s.error_ != Errc::ok) {
    // Like Linux's sk_err: an ICMP error reported once, by the next send.
    Errc e = s.error_;
    s.error_ = Errc::ok;
    rte_pktmbuf_free(m);
    return fail(e);
  }
  if (inst_.interfaces().empty()) {
    rte_pktmbuf_free(m);
    return fail(Errc::unreachable);
  }
  rte_mbuf* head = m;
  // The headroom is ours to write only in a direct mbuf nobody else references.
  if (RTE_MBUF_DIRECT(m) && rte_mbuf_refcnt_read(m) == 1 &&
      rte_pktmbuf_headroom(m) >= header_room) {
    rte_pktmbuf_prepend(m, uint16_t(net::udp_header_len));
    m->ol_flags = 0;  // a received mbuf sent back (an echo) still carries its RX flags
  } else {
    head = rte_pktmbuf_alloc(inst_.interfaces().front()->pool);
    if (head == nullptr || rte_pktmbuf_append(head, uint16_t(net::udp_header_len)) == nullptr ||
        rte_pktmbuf_chain(head, m) != 0) {  // chain: fails only beyond RTE_MBUF_MAX_NB_SEGS
      counters().inc(Counter::mbuf_alloc_failed);
      rte_pktmbuf_free(head);
      rte_pktmbuf_free(m);
      return fail(Errc::no_memory);
    }
  }
  uint8_t* h = rte_pktmbuf_mtod(head, uint8_t*);
  net::store_be16(h + net::udp_field::src_port, s.port_);
  net::store_be16(h + net::udp_field::dst_port, port);
  net::store_be16(h + net::udp_field::length, uint16_t(head->pkt_len));
  net::store_be16(h + net::udp_field::checksum, 0);  // ip_output fills it
  engine::IpSend p;
  p.dst = dst;
  p.src = s.addr_;  // any(): the route's source
  p.protocol = net::ipproto_udp;
  p.dont_fragment = false;
  p.l4 = engine::L4Checksum::udp;
  auto r = inst_.ip_output(head, p, clock_.now());
  if (r) counters().inc(Counter::udp_out);
  return r;
}

Result<void> UdpStack::send(UdpSocket& s, rte_mbuf* m) {
  if (!s.connected()) return fail(Errc::not_connected);
  return send_to(s, m, s.peer_, s.peer_port_);
}

Result<size_t> UdpStack::send_to_copy(UdpSocket& s, const void* data, size_t len, Ipv4Addr dst,
                                      uint16_t port) {
  if (bad_destination(dst, port) || len > max_payload || (data == nullptr && len > 0))
    return fail(Errc::invalid_argument);
  if (inst_.interfaces().empty()) return fail(Errc::unreachable);
  rte_mbuf* m = engine::alloc_chain(inst_.interfaces().front()->pool, uint32_t(len));
  if (m == nullptr) {
    counters().inc(Counter::mbuf_alloc_failed);
    return fail(Errc::no_memory);
  }
  const auto* src = static_cast<const uint8_t*>(data);
  for (rte_mbuf* seg = m; seg != nullptr && len > 0; seg = seg->next) {
    std::memcpy(rte_pktmbuf_mtod(seg, uint8_t*), src, seg->data_len);
    src += seg->data_len;
  }
  auto r = send_to(s, m, dst, port);
  if (!r) return fail(r.error());
  return len;
}

}  // namespace keel::udp
