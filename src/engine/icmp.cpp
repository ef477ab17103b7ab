// SPDX-License-Identifier: BSD-3-Clause
// ICMP (RFC 792): echo reply, echo for ping, and errors handed to the
// transport that sent the quoted datagram.
#include <rte_mbuf.h>

#include "engine/instance.hpp"
#include "engine/mbuf_util.hpp"
#include "net/checksum.hpp"
#include "net/wire.hpp"

namespace keel::engine {

using net::Ipv4Addr;

void Instance::icmp_input(rte_mbuf* m, const Ipv4Meta& ip, uint64_t now_ns) {
  counters_.inc(Counter::icmp_in);
  auto drop = [&](Counter c) {
    counters_.inc(c);
    rte_pktmbuf_free(m);
  };
  if (m->pkt_len < net::icmp_header_len || !make_contiguous(m, net::icmp_header_len))
    return drop(Counter::icmp_truncated);
  if (net::inet_checksum(m, 0, m->pkt_len) != 0) return drop(Counter::icmp_bad_checksum);
  uint8_t* h = rte_pktmbuf_mtod(m, uint8_t*);
  switch (h[net::icmp_field::type]) {
    case net::icmp_echo_request: {
      counters_.inc(Counter::icmp_echo_requests);
      // COMPAT(linux): like icmp_echo_ignore_broadcasts=1, answer only unicast.
      if (!ifaces_[ip.iface]->owns(ip.dst)) {
        rte_pktmbuf_free(m);
        return;
      }
      // Reply in place (zero copy): same id, seq and data, type 0, new checksum.
      h[net::icmp_field::type] = net::icmp_echo_reply;
      h[net::icmp_field::code] = 0;
      net::store_be16(h + net::icmp_field::checksum, 0);
      net::store_be16(h + net::icmp_field::checksum, net::inet_checksum(m, 0, m->pkt_len));
      m->ol_flags = 0;
      IpSend p;
      p.dst = ip.src;
      p.src = ip.dst;
      p.protocol = net::ipproto_icmp;
      p.tos = ip.tos;
      p.dont_fragment = false;  // a large request came fragmented; so may the reply
      if (ip_output(m, p, now_ns)) counters_.inc(Counter::icmp_echo_replies_out);
      return;
    }
    case net::icmp_echo_reply: {
      counters_.inc(Counter::icmp_echo_replies_in);
      if (echo_hook_) {
        EchoReply r;
        r.from = ip.src;
        r.id = net::load_be16(h + net::icmp_field::id);
        r.seq = net::load_be16(h + net::icmp_field::seq);
        r.bytes = m->pkt_len - net::icmp_header_len;
        r.now_ns = now_ns;
        echo_hook_(r);
      }
      rte_pktmbuf_free(m);
      return;
    }
    case net::icmp_dest_unreachable:
    case net::icmp_time_exceeded:
    case net::icmp_parameter_problem: {
      counters_.inc(Counter::icmp_errors_in);
      // The quoted datagram: its IP header plus at least 8 bytes of L4 header.
      uint8_t quote[net::icmp_header_len + 60 + 8];
      uint32_t len = std::min<uint32_t>(m->pkt_len, sizeof quote);
      const auto* msg = static_cast<const uint8_t*>(rte_pktmbuf_read(m, 0, len, quote));
      icmp_error_input(msg, len, ip, now_ns);
      rte_pktmbuf_free(m);
      return;
    }
    default:
      return drop(Counter::icmp_unknown_type);
  }
}

void Instance::icmp_error_input(const uint8_t* msg, size_t len, const Ipv4Meta& ip,
                                uint64_t now_ns) {
  const uint8_t* q = msg + net::icmp_header_len;
  size_t qlen = len - net::icmp_header_len;
  if (qlen < net::ipv4_min_header_len || (q[0] >> 4) != 4) {
    counters_.inc(Counter::icmp_errors_bad_quote);
    return;
  }
  size_t ihl = net::ipv4_header_len(q);
  if (ihl < net::ipv4_min_header_len || qlen < ihl + 8) {
    counters_.inc(Counter::icmp_errors_bad_quote);
    return;
  }
  IcmpError err;
  err.type = msg[net::icmp_field::type];
  err.code = msg[net::icmp_field::code];
  if (err.type == net::icmp_dest_unreachable && err.code == net::icmp_code_frag_needed)
    err.next_hop_mtu = net::load_be16(msg + net::icmp_field::mtu);
  err.reporter = ip.src;
  err.orig_src = Ipv4Addr{net::load_be32(q + net::ipv4_field::src)};
  err.orig_dst = Ipv4Addr{net::load_be32(q + net::ipv4_field::dst)};
  err.protocol = q[net::ipv4_field::protocol];
  err.quoted_l4 = q + ihl;
  err.quoted_l4_len = qlen - ihl;
  // Only errors about datagrams we sent matter (RFC 5927 checks continue in the transport).
  bool ours = false;
  for (auto& ifc : ifaces_) ours = ours || ifc->owns(err.orig_src);
  if (!ours) {
    counters_.inc(Counter::icmp_errors_bad_quote);
    return;
  }
  if (L4Handler* h = l4_[err.protocol]) h->on_icmp_error(*this, err, now_ns);
}

Result<void> Instance::send_echo_request(Ipv4Addr dst, uint16_t id, uint16_t seq,
                                         size_t payload_len, uint64_t now_ns) {
  auto rt = route(dst);
  if (!rt) {
    counters_.inc(Counter::ip_no_route);
    return fail(Errc::unreachable);
  }
  size_t len = net::icmp_header_len + payload_len;
  if (len + net::ipv4_min_header_len > 65535) return fail(Errc::invalid_argument);
  rte_mbuf* m = alloc_chain(rt->iface->pool, uint32_t(len));
  if (m == nullptr) {
    counters_.inc(Counter::mbuf_alloc_failed);
    return fail(Errc::no_memory);
  }
  // Payload byte i = i mod 256, across however many segments it takes.
  size_t i = 0;
  for (rte_mbuf* s = m; s != nullptr; s = s->next) {
    uint8_t* d = rte_pktmbuf_mtod(s, uint8_t*);
    for (uint16_t k = 0; k < s->data_len; ++k, ++i)
      d[k] = i < net::icmp_header_len ? 0 : uint8_t(i - net::icmp_header_len);
  }
  uint8_t* h = rte_pktmbuf_mtod(m, uint8_t*);
  h[net::icmp_field::type] = net::icmp_echo_request;
  net::store_be16(h + net::icmp_field::id, id);
  net::store_be16(h + net::icmp_field::seq, seq);
  net::store_be16(h + net::icmp_field::checksum, net::inet_checksum(m, 0, len));
  IpSend p;
  p.dst = dst;
  p.protocol = net::ipproto_icmp;
  p.dont_fragment = false;
  counters_.inc(Counter::icmp_echo_requests_out);
  return ip_output(m, p, now_ns);
}

// ----- Destination unreachable (RFC 792, RFC 1122 3.2.2) -----

namespace {
bool is_icmp_error_type(uint8_t type) {
  // RFC 1122 3.2.2: the error messages (not queries): unreachable, source
  // quench, redirect, time exceeded, parameter problem.
  return type == net::icmp_dest_unreachable || type == 4 || type == 5 ||
         type == net::icmp_time_exceeded || type == net::icmp_parameter_problem;
}
}  // namespace

Result<void> Instance::send_icmp_error(uint8_t code, const rte_mbuf* m, const Ipv4Meta& ip,
                                       uint64_t now_ns) {
  if (ip.ihl < net::ipv4_min_header_len || rte_pktmbuf_headroom(m) < ip.ihl ||
      ip.iface >= ifaces_.size())
    return fail(Errc::invalid_argument);  // not a datagram as ip_deliver hands it on
  const uint8_t* iph = rte_pktmbuf_mtod(m, const uint8_t*) - ip.ihl;
  // RFC 1122 3.2.2: never about a datagram to a broadcast or multicast address
  // (not our own address: anything else we accepted is one), sent as a
  // link-layer broadcast, from an address that is not one host, about an ICMP
  // error, or about a fragment other than the first.
  bool icmp_error = false;
  if (ip.protocol == net::ipproto_icmp) {
    uint8_t type = 0;
    const auto* t = static_cast<const uint8_t*>(rte_pktmbuf_read(m, 0, 1, &type));
    icmp_error = t == nullptr || is_icmp_error_type(*t);  // too short to tell: say nothing
  }
  bool later_fragment = net::ipv4_frag_offset(iph) != 0;
  // The Ethernet header is still in front of the IP header: its destination's
  // group bit marks a link-layer broadcast or multicast.
  bool link_group = rte_pktmbuf_headroom(m) >= ip.ihl + net::eth_header_len &&
                    (iph[-ptrdiff_t(net::eth_header_len)] & 0x01) != 0;
  bool one_host_src = !ip.src.is_any() && !ip.src.is_multicast() && !ip.src.is_loopback() &&
                      (ip.src.v >> 28) != 0xf;  // class E, the limited broadcast with it
  if (!ifaces_[ip.iface]->owns(ip.dst) || link_group || !one_host_src || icmp_error ||
      later_fragment) {
    counters_.inc(Counter::icmp_unreach_suppressed);
    return fail(Errc::invalid_argument);
  }
  if (!icmp_error_bucket_.take(now_ns)) {
    counters_.inc(Counter::icmp_unreach_ratelimited);
    return fail(Errc::would_block);
  }
  // Type, code, 4 unused bytes, the IP header as received, 8 bytes of its
  // data: written straight into the reply's mbuf.
  uint32_t data = std::min<uint32_t>(m->pkt_len, 8);
  uint32_t len = uint32_t(net::icmp_header_len) + ip.ihl + data;
  rte_mbuf* r = rte_pktmbuf_alloc(ifaces_[ip.iface]->pool);
  auto* msg = r == nullptr ? nullptr : reinterpret_cast<uint8_t*>(rte_pktmbuf_append(r, uint16_t(len)));
  if (msg == nullptr) {
    counters_.inc(Counter::mbuf_alloc_failed);
    rte_pktmbuf_free(r);
    return fail(Errc::no_memory);
  }
  std::memset(msg, 0, net::icmp_header_len);
  msg[net::icmp_field::type] = net::icmp_dest_unreachable;
  msg[net::icmp_field::code] = code;
  std::memcpy(msg + net::icmp_header_len, iph, ip.ihl);
  uint8_t* q = msg + net::icmp_header_len + ip.ihl;
  const void* l4 = rte_pktmbuf_read(m, 0, data, q);
  if (l4 != q) std::memcpy(q, l4, data);
  net::store_be16(msg + net::icmp_field::checksum, net::inet_checksum(msg, len));
  IpSend p;
  p.dst = ip.src;
  p.src = ip.dst;
  p.protocol = net::ipproto_icmp;
  p.dont_fragment = false;
  auto res = ip_output(r, p, now_ns);
  if (res) counters_.inc(Counter::icmp_unreach_out);
  return res;
}

}  // namespace keel::engine
