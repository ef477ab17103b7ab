// SPDX-License-Identifier: BSD-3-Clause
// UDP (RFC 768): the socket table, bind/connect/close, datagram arrival, ICMP
// errors for connected sockets, and the receive calls.
#include <rte_mbuf.h>
#include <sys/random.h>

#include <cstring>

#include "engine/mbuf_util.hpp"
#include "net/checksum.hpp"
#include "net/wire.hpp"
#include "udp/udp_stack.hpp"

namespace keel::udp {

using engine::Counter;
using net::Ipv4Addr;

Datagram UdpSocket::pop() {
  Datagram d = ring_[head_];
  ring_[head_] = Datagram{};
  head_ = (head_ + 1) % cap_;
  --count_;
  bytes_ -= d.payload->pkt_len;
  return d;
}

UdpStack::UdpStack(engine::Instance& inst, const UdpConfig& cfg)
    : inst_(inst), cfg_(cfg), ports_(std::make_unique<UdpSocket*[]>(65536)) {
  cfg_.rcv_datagrams = std::max<uint32_t>(cfg_.rcv_datagrams, 1);
  slots_.resize(cfg_.max_sockets);
  free_slots_.reserve(cfg_.max_sockets);
  for (uint32_t i = cfg_.max_sockets; i-- > 0;) free_slots_.push_back(i);
  uint16_t r = 0;
  if (getrandom(&r, sizeof r, 0) == ssize_t(sizeof r))
    next_ephemeral_ = uint16_t(ephemeral_first + r % (ephemeral_last - ephemeral_first + 1));
  inst_.register_protocol(net::ipproto_udp, this);
}

UdpStack::~UdpStack() {
  inst_.register_protocol(net::ipproto_udp, nullptr);
  for (auto& s : slots_)
    if (s) close(s.get());
}

// ===== Sockets =====

bool UdpStack::is_local(Ipv4Addr a) const {
  for (const auto& ifc : inst_.interfaces())
    if (ifc->owns(a)) return true;
  return false;
}

bool UdpStack::is_broadcast(Ipv4Addr a) const {
  if (a.is_broadcast()) return true;
  for (const auto& ifc : inst_.interfaces())
    if (ifc->accepts(a) && !ifc->owns(a)) return true;  // a directed broadcast of ours
  return false;
}

uint16_t UdpStack::pick_ephemeral_port() {
  constexpr uint32_t range = ephemeral_last - ephemeral_first + 1;
  for (uint32_t i = 0; i < range; ++i) {
    uint16_t p = next_ephemeral_;
    next_ephemeral_ = p == ephemeral_last ? ephemeral_first : uint16_t(p + 1);
    if (ports_[p] == nullptr) return p;
  }
  return 0;
}

Result<UdpSocket*> UdpStack::bind(Ipv4Addr addr, uint16_t port, UdpHandler* h) {
  if (!addr.is_any() && !is_local(addr)) return fail(Errc::invalid_argument);
  if (free_slots_.empty()) return fail(Errc::no_memory);
  if (port == 0) {
    port = pick_ephemeral_port();
    if (port == 0) return fail(Errc::already_exists);  // every ephemeral port is taken
  } else {
    for (const UdpSocket* s = ports_[port]; s != nullptr; s = s->next_on_port_)
      if (s->addr_ == addr || s->addr_.is_any() || addr.is_any())
        return fail(Errc::already_exists);
  }
  uint32_t slot = free_slots_.back();
  free_slots_.pop_back();
  slots_[slot].reset(new UdpSocket(addr, port, h, slot, cfg_.rcv_datagrams));
  UdpSocket* s = slots_[slot].get();
  s->next_on_port_ = ports_[port];
  ports_[port] = s;
  ++open_;
  return s;
}

void UdpStack::close(UdpSocket* s) {
  for (UdpSocket** p = &ports_[s->port_]; *p != nullptr; p = &(*p)->next_on_port_)
    if (*p == s) {
      *p = s->next_on_port_;
      break;
    }
  while (s->count_ > 0) rte_pktmbuf_free(s->pop().payload);
  uint32_t slot = s->slot_;
  slots_[slot].reset();
  free_slots_.push_back(slot);
  --open_;
}

Result<void> UdpStack::connect(UdpSocket& s, Ipv4Addr dst, uint16_t port) {
  s.error_ = Errc::ok;
  if (dst.is_any() || port == 0) {
    s.peer_ = Ipv4Addr::any();
    s.peer_port_ = 0;
    return {};
  }
  if (dst.is_multicast() || is_broadcast(dst)) return fail(Errc::invalid_argument);
  if (!inst_.route(dst)) return fail(Errc::unreachable);
  s.peer_ = dst;
  s.peer_port_ = port;
  return {};
}

UdpSocket* UdpStack::lookup(Ipv4Addr dst, uint16_t dport, Ipv4Addr src, uint16_t sport,
                            bool unicast) const {
  UdpSocket* wild = nullptr;
  for (UdpSocket* s = ports_[dport]; s != nullptr; s = s->next_on_port_) {
    if (s->connected() && (s->peer_ != src || s->peer_port_ != sport)) continue;
    if (s->addr_.is_any()) wild = s;
    else if (unicast && s->addr_ == dst) return s;
  }
  return wild;
}

// ===== Input =====

void UdpStack::on_datagram(engine::Instance& inst, rte_mbuf* m, const engine::Ipv4Meta& ip,
                           uint64_t now_ns) {
  counters().inc(Counter::udp_in);
  auto drop = [&](Counter c) {
    counters().inc(c);
    rte_pktmbuf_free(m);
  };
  if (m->pkt_len < net::udp_header_len || !engine::make_contiguous(m, net::udp_header_len))
    return drop(Counter::udp_truncated);
  const uint8_t* h = rte_pktmbuf_mtod(m, const uint8_t*);
  uint16_t sport = net::load_be16(h + net::udp_field::src_port);
  uint16_t dport = net::load_be16(h + net::udp_field::dst_port);
  uint16_t ulen = net::load_be16(h + net::udp_field::length);
  uint16_t cksum = net::load_be16(h + net::udp_field::checksum);
  // RFC 768: Length counts header and data. An IP payload shorter than that is
  // broken; a longer one (padding) is cut to it.
  if (ulen < net::udp_header_len || ulen > m->pkt_len) return drop(Counter::udp_bad_length);
  engine::trim_to(m, ulen);
  // RFC 768 / RFC 1122 4.1.3.4: a zero checksum field means the sender computed none.
  if (cksum != 0 && !ip.l4_cksum_good &&
      net::ipv4_l4_checksum(ip.src.v, ip.dst.v, net::ipproto_udp, m, 0, ulen) != 0)
    return drop(Counter::udp_bad_checksum);

  bool unicast = inst.interfaces()[ip.iface]->owns(ip.dst);
  UdpSocket* s = lookup(ip.dst, dport, ip.src, sport, unicast);
  if (s == nullptr) {
    // RFC 1122 4.1.3.1: port unreachable (send_icmp_error stays quiet about
    // broadcasts and keeps to its rate limit).
    counters().inc(Counter::udp_no_port);
    (void)inst.send_icmp_error(net::icmp_code_port_unreachable, m, ip, now_ns);
    rte_pktmbuf_free(m);
    return;
  }
  if (s->count_ == s->cap_ || s->bytes_ >= cfg_.rcv_bytes) return drop(Counter::udp_rcvbuf_errors);
  rte_pktmbuf_adj(m, uint16_t(net::udp_header_len));
  bool became_readable = s->push(Datagram{m, ip.src, sport, ip.dst}, m->pkt_len);
  if (became_readable && s->handler_ != nullptr) s->handler_->on_readable(*s);  // may close s
}

void UdpStack::on_icmp_error(engine::Instance&, const engine::IcmpError& err, uint64_t) {
  // The quote is our datagram: its source port is the socket's, its
  // destination the peer (Instance checked orig_src is ours and 8 bytes are there).
  uint16_t sport = net::load_be16(err.quoted_l4 + net::udp_field::src_port);
  uint16_t dport = net::load_be16(err.quoted_l4 + net::udp_field::dst_port);
  UdpSocket* s = lookup(err.orig_src, sport, err.orig_dst, dport, true);
  // COMPAT(linux): without IP_RECVERR an unconnected socket hears of no error.
  if (s == nullptr || !s->connected()) return;
  // COMPAT(linux): Linux tells a connected socket only of "hard" codes (port,
  // protocol, administratively prohibited...) unless IP_RECVERR; here every
  // error but fragmentation-needed is reported: UDP has no state to tear
  // down, and the application decides what a transient unreachable means.
  Errc e = Errc::unreachable;
  if (err.type == net::icmp_dest_unreachable) {
    // We never set DF, so "fragmentation needed" is no one's business here.
    if (err.code == net::icmp_code_frag_needed) return;
    if (err.code == net::icmp_code_port_unreachable) e = Errc::connection_refused;
  }
  s->error_ = e;
  counters().inc(Counter::udp_icmp_errors);
  if (s->handler_ != nullptr) s->handler_->on_error(*s, e);
}

// ===== Receive calls =====

std::optional<Datagram> UdpStack::recv(UdpSocket& s) {
  if (s.count_ == 0) return std::nullopt;
  return s.pop();
}

Result<RecvInfo> UdpStack::recv_copy(UdpSocket& s, void* buf, size_t cap) {
  if (s.count_ == 0) return fail(Errc::would_block);
  Datagram d = s.pop();
  RecvInfo info;
  info.datagram_len = d.payload->pkt_len;
  info.copied = std::min(cap, info.datagram_len);
  info.truncated = info.copied < info.datagram_len;
  info.src = d.src;
  info.src_port = d.src_port;
  info.dst = d.dst;
  if (info.copied > 0) {
    const void* p = rte_pktmbuf_read(d.payload, 0, uint32_t(info.copied), buf);
    if (p != buf) std::memcpy(buf, p, info.copied);
  }
  rte_pktmbuf_free(d.payload);
  return info;
}

}  // namespace keel::udp
