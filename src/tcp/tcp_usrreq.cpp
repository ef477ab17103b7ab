// SPDX-License-Identifier: BSD-3-Clause
// The application's calls into TCP: listen, connect, send, recv, shutdown,
// close, abort, options; and ICMP errors for connections (RFC 5927, PMTUD).
#include <rte_mbuf.h>

#include "engine/instance.hpp"
#include "engine/mbuf_util.hpp"
#include "net/wire.hpp"
#include "tcp/seq.hpp"
#include "tcp/tcp_stack.hpp"

namespace keel::tcp {

using engine::Counter;

Result<Listener*> TcpStack::listen(net::Ipv4Addr addr, uint16_t port, uint32_t backlog,
                                   ListenHandler* h) {
  if (port == 0 || h == nullptr || backlog == 0) return fail(Errc::invalid_argument);
  for (auto& l : listeners_)
    if (l->port == port && l->addr == addr) return fail(Errc::already_exists);
  auto l = std::make_unique<Listener>();
  l->addr = addr;
  l->port = port;
  l->backlog = backlog;
  l->handler = h;
  listeners_.push_back(std::move(l));
  return listeners_.back().get();
}

void TcpStack::unlisten(Listener* l) {
  // Half-open connections of this listener go with it.
  for (uint32_t i = 0; i < cfg_.max_connections; ++i)
    if (slot_used(i) && tcb_at(i)->listener == l) free_tcb(*tcb_at(i));
  std::erase_if(listeners_, [l](const auto& p) { return p.get() == l; });
}

Result<Tcb*> TcpStack::connect(net::Ipv4Addr dst, uint16_t port, ConnHandler* h,
                               uint16_t local_port, net::Ipv4Addr local_addr,
                               uint64_t timeout_ns) {
  if (port == 0 || h == nullptr || dst.is_any() || dst.is_broadcast() || dst.is_multicast())
    return fail(Errc::invalid_argument);
  auto rt = inst_.route(dst);
  if (!rt) return fail(Errc::unreachable);
  // Our own address would need a loopback path, which keel does not have yet.
  if (rt->iface->owns(dst)) return fail(Errc::not_supported);
  if (!local_addr.is_any()) {
    if (!rt->iface->owns(local_addr)) return fail(Errc::invalid_argument);
    rt->src = local_addr;
  }
  if (local_port == 0) local_port = pick_ephemeral_port(rt->src, dst, port);
  if (local_port == 0) return fail(Errc::no_memory);
  // A flow another instance owns would have its answers steered there, past this TCB.
  if (!inst_.owns_flow(rt->src, dst, local_port, port)) return fail(Errc::invalid_argument);
  ConnKey key{rt->src.v, dst.v, local_port, port};
  if (lookup(key) != nullptr) return fail(Errc::already_exists);
  Tcb* c = alloc_tcb(key);
  if (c == nullptr) return fail(Errc::no_memory);
  uint64_t now = clock_now();
  init_tcb(*c, now);
  c->handler = h;
  c->iss = isn(key, now);
  c->snd.una = c->iss;
  c->snd.nxt = c->snd.max = c->iss + 1;
  set_state(*c, TcpState::syn_sent);
  counters().inc(Counter::tcp_active_opens);
  c->rtt_timing = true;
  c->rtt_seq = c->iss;
  c->rtt_start_ns = now;
  send_segment(*c, c->iss, 0, flag::syn, now);
  arm_rexmt(*c, now);
  // SYN-SENT does not use the keepalive timer otherwise (tcp_timer.cpp).
  if (timeout_ns > 0) inst_.timers().schedule(c->keepalive_timer, now + timeout_ns);
  return c;
}

uint32_t TcpStack::send_space(const Tcb& c) const {
  return c.sndq.size() >= c.snd_buf ? 0 : c.snd_buf - c.sndq.size();
}

namespace {
bool can_send(const Tcb& c) {
  return !c.fin_queued &&
         (c.state == TcpState::established || c.state == TcpState::close_wait ||
          c.state == TcpState::syn_sent || c.state == TcpState::syn_received);
}
}  // namespace

Result<void> TcpStack::send(Tcb& c, rte_mbuf* m) {
  if (!can_send(c) || c.app_closed) return fail(Errc::not_connected);
  if (m->pkt_len > send_space(c) && !c.sndq.empty()) {
    c.want_writable = true;
    return fail(Errc::would_block);
  }
  c.sndq.append(m);
  output(c, clock_now());
  return {};
}

Result<size_t> TcpStack::send_copy(Tcb& c, const void* data, size_t len) {
  if (!can_send(c) || c.app_closed) return fail(Errc::not_connected);
  uint32_t space = send_space(c);
  if (space == 0) {
    c.want_writable = true;
    return fail(Errc::would_block);
  }
  uint32_t take = uint32_t(std::min<size_t>(len, space));
  rte_mbuf* m = engine::alloc_chain(inst_.interfaces().front()->pool, take);
  if (m == nullptr) {
    counters().inc(Counter::mbuf_alloc_failed);
    return fail(Errc::no_memory);
  }
  const auto* src = static_cast<const uint8_t*>(data);
  for (rte_mbuf* s = m; s != nullptr; s = s->next) {
    std::memcpy(rte_pktmbuf_mtod(s, uint8_t*), src, s->data_len);
    src += s->data_len;
  }
  counters().inc(Counter::tcp_tx_copied_bytes, take);
  c.sndq.append(m);
  output(c, clock_now());
  return size_t(take);
}

namespace {
// After the application consumed data: advertise the reopened window if it
// grew by at least two segments or half the buffer (RFC 9293 3.8.6.2.2).
void maybe_window_update(TcpStack& s, Tcb& c) {
  if (!c.synchronized() || c.fin_received) return;
  uint32_t right = c.rcv.nxt + s.rcv_window(c);
  uint32_t grow = seq_gt(right, c.rcv.adv) ? right - c.rcv.adv : 0;
  if (grow >= std::min<uint32_t>(c.rcv_buf / 2, 2u * c.mss) || c.rcv.adv == c.rcv.nxt) {
    if (grow == 0) return;
    c.ack_now = true;
    s.output(c, s.clock_now());
  }
}
}  // namespace

rte_mbuf* TcpStack::recv(Tcb& c) {
  rte_mbuf* m = c.rcvq.take_all();
  if (m != nullptr) maybe_window_update(*this, c);
  return m;
}

rte_mbuf* TcpStack::recv_held(Tcb& c) {
  rte_mbuf* m = c.rcvq.take_all();
  if (m != nullptr) c.app_held += m->pkt_len;
  return m;
}

void TcpStack::recv_credit(Tcb& c, uint32_t bytes) {
  c.app_held -= std::min(bytes, c.app_held);
  maybe_window_update(*this, c);
}

size_t TcpStack::recv_copy(Tcb& c, void* dst, size_t cap) {
  size_t n = c.rcvq.copy_out(static_cast<uint8_t*>(dst), uint32_t(std::min<size_t>(cap, UINT32_MAX)));
  if (n > 0) maybe_window_update(*this, c);
  return n;
}

Result<void> TcpStack::shutdown(Tcb& c) {
  switch (c.state) {
    case TcpState::syn_sent:
      drop(c, Errc::connection_aborted);
      return {};
    case TcpState::syn_received:
    case TcpState::established:
    case TcpState::close_wait:
      if (!c.fin_queued) {
        c.fin_queued = true;
        output(c, clock_now());
      }
      return {};
    default:
      return c.fin_queued ? Result<void>{} : fail(Errc::not_connected);
  }
}

void TcpStack::close(Tcb& c) {
  // Unread data would be lost silently: reset instead (RFC 9293 3.10.4, as Linux).
  if (!c.rcvq.empty() || c.state == TcpState::syn_sent) return abort(c);
  c.app_closed = true;
  if (c.state == TcpState::time_wait || c.state == TcpState::closed) return;
  (void)shutdown(c);
  if (c.state == TcpState::fin_wait_2)
    inst_.timers().schedule(c.keepalive_timer, clock_now() + 2 * cfg_.msl_ns);
}

void TcpStack::abort(Tcb& c) {
  if (c.synchronized() && c.state != TcpState::time_wait) {
    send_segment(c, c.snd.nxt, 0, flag::rst | flag::ack, clock_now());
    counters().inc(Counter::tcp_resets_sent);
  }
  drop(c, Errc::connection_aborted);
}

void TcpStack::set_nodelay(Tcb& c, bool on) {
  c.nodelay = on;
  if (on && c.synchronized()) output(c, clock_now());
}

void TcpStack::set_cc(Tcb& c, const cc::Algorithm& a) {
  c.cc = &a;
  a.init(c.ccv, clock_now());
}

void TcpStack::set_keepalive(Tcb& c, bool on) {
  c.keepalive = on;
  if (on && c.synchronized() && c.state != TcpState::time_wait)
    inst_.timers().schedule(c.keepalive_timer, clock_now() + keepalive_idle(c));
  else if (!on && c.state >= TcpState::established && c.state <= TcpState::close_wait &&
           !c.app_closed)
    inst_.timers().cancel(c.keepalive_timer);
}

void TcpStack::on_icmp_error(engine::Instance&, const engine::IcmpError& err, uint64_t now_ns) {
  if (err.quoted_l4_len < 8) return;
  ConnKey key{err.orig_src.v, err.orig_dst.v, net::load_be16(err.quoted_l4),
              net::load_be16(err.quoted_l4 + 2)};
  Tcb* c = lookup(key);
  if (c == nullptr) return;
  uint32_t seq = net::load_be32(err.quoted_l4 + 4);
  // RFC 5927 4.1: act only if the quoted sequence number is in flight.
  if (!(seq_geq(seq, c->snd.una) && seq_lt(seq, c->snd.max))) {
    counters().inc(Counter::tcp_icmp_bad_seq);
    return;
  }
  counters().inc(Counter::tcp_icmp_errors);
  if (err.type == net::icmp_dest_unreachable && err.code == net::icmp_code_frag_needed) {
    // PMTU discovery (RFC 1191): lower the MSS; resend what was dropped.
    uint32_t mtu = err.next_hop_mtu ? err.next_hop_mtu : 576;
    if (mtu < 576) mtu = 576;  // RFC 1191: ignore implausibly small values
    uint32_t mss = mtu - net::ipv4_min_header_len - net::tcp_min_header_len - (c->ts_ok ? 12 : 0);
    if (mss < c->mss) {
      c->mss = uint16_t(mss);
      c->cc->set_mss(c->ccv, mss);
      counters().inc(Counter::tcp_pmtu_updates);
      // Before the handshake completes only the SYN is out: going back would
      // put SND.NXT below ISS + 1 for good (its own timer resends it).
      if (c->synchronized()) {
        c->snd.nxt = c->snd.una;
        output(*c, now_ns);
      }
    }
    return;
  }
  // A port or protocol unreachable answering our SYN ends the attempt (RFC 1122
  // 4.2.3.9 calls them hard errors; COMPAT(linux): only before the handshake
  // completes, RFC 5461). Every other error is soft: the connection keeps
  // trying, and reports the error if it gives up (timeout_error()).
  bool hard = err.type == net::icmp_dest_unreachable &&
              (err.code == net::icmp_code_port_unreachable || err.code == net::icmp_code_proto_unreachable);
  if (hard && c->state == TcpState::syn_sent) {
    counters().inc(Counter::tcp_icmp_hard_errors);
    return drop(*c, Errc::connection_refused);
  }
  counters().inc(Counter::tcp_icmp_soft_errors);
  c->soft_error = Errc::unreachable;
}

}  // namespace keel::tcp
