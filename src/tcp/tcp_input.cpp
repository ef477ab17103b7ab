// SPDX-License-Identifier: BSD-3-Clause
// TCP input: segment validation and the RFC 9293 3.10.7 event processing,
// with RFC 7323 (PAWS), RFC 5961 (challenge ACKs, ACK validation), RFC 2018 /
// 6675 (SACK) and RFC 5681 / 6582 (fast retransmit and recovery).
#include <rte_mbuf.h>

#include "engine/instance.hpp"
#include "engine/mbuf_util.hpp"
#include "net/checksum.hpp"
#include "net/wire.hpp"
#include "tcp/seq.hpp"
#include "tcp/tcp_stack.hpp"

namespace keel::tcp {

using engine::Counter;
using engine::make_contiguous;
using engine::trim_front;
using engine::trim_to;

namespace {
constexpr uint64_t paws_idle_ns = 24ull * 24 * 3600 * 1'000'000'000;  // RFC 7323 5.5
}  // namespace

void TcpStack::on_datagram(engine::Instance&, rte_mbuf* m, const engine::Ipv4Meta& ip,
                           uint64_t now_ns) {
  input(m, ip, now_ns);
}

void TcpStack::input(rte_mbuf* m, const engine::Ipv4Meta& ip, uint64_t now_ns) {
  counters().inc(Counter::tcp_segs_in);
  auto drop = [&](Counter c) {
    counters().inc(c);
    rte_pktmbuf_free(m);
  };
  if (m->pkt_len < net::tcp_min_header_len || !make_contiguous(m, net::tcp_min_header_len))
    return drop(Counter::tcp_truncated);
  size_t hlen = size_t(rte_pktmbuf_mtod(m, const uint8_t*)[net::tcp_field::data_off] >> 4) * 4;
  if (hlen < net::tcp_min_header_len || hlen > m->pkt_len) return drop(Counter::tcp_bad_data_offset);
  if (!make_contiguous(m, uint32_t(hlen))) return drop(Counter::tcp_truncated);
  if (!ip.l4_cksum_good &&
      net::ipv4_l4_checksum(ip.src.v, ip.dst.v, net::ipproto_tcp, m, 0, m->pkt_len) != 0)
    return drop(Counter::tcp_bad_checksum);
  TcpParseError perr{};
  auto seg = parse_tcp(rte_pktmbuf_mtod(m, const uint8_t*), hlen, perr);
  if (!seg) {
    return drop(perr == TcpParseError::bad_options ? Counter::tcp_bad_options
                                                   : Counter::tcp_bad_data_offset);
  }
  uint8_t f = seg->flags;
  if (((f & flag::syn) && (f & (flag::fin | flag::rst))) ||
      (f & (flag::syn | flag::ack | flag::rst | flag::fin)) == 0)
    return drop(Counter::tcp_bad_flags);
  if (ip.dst.is_broadcast() || ip.dst.is_multicast() || seg->src_port == 0 || seg->dst_port == 0)
    return drop(Counter::tcp_bad_address);
  rte_pktmbuf_adj(m, uint16_t(hlen));
  uint32_t len = m->pkt_len;

  ConnKey key{ip.dst.v, ip.src.v, seg->dst_port, seg->src_port};
  Tcb* c = lookup(key);
  if (c != nullptr && c->state == TcpState::time_wait && seg->has(flag::syn) &&
      !seg->has(flag::ack)) {
    // RFC 6191: a new SYN may reuse a TIME-WAIT tuple if it is clearly newer.
    bool newer = c->ts_ok && seg->opt.has_timestamp ? seq_gt(seg->opt.tsval, c->ts_recent)
                                                    : seq_gt(seg->seq, c->rcv.nxt);
    if (newer) {
      counters().inc(Counter::tcp_timewait_reused);
      free_tcb(*c);
      c = nullptr;
    }
  }
  if (c != nullptr) {
    c->last_recv_ns = now_ns;
    c->keepalive_probes = 0;
    if (c->state == TcpState::syn_sent) return input_syn_sent(*c, *seg, m, now_ns);
    return input_synchronized(*c, *seg, m, len, now_ns);
  }
  if (Listener* l = find_listener(ip.dst, seg->dst_port)) return input_listen(*l, *seg, m, ip, now_ns);
  // RFC 9293 3.10.7.1: CLOSED. Answer with RST (never a RST to a RST).
  counters().inc(Counter::tcp_no_connection);
  send_rst_for(*seg, ip, len, now_ns);
  rte_pktmbuf_free(m);
}

void TcpStack::init_tcb(Tcb& c, uint64_t now_ns) {
  c.snd_buf = cfg_.snd_buf;
  c.rcv_buf = cfg_.rcv_buf;
  c.nodelay = cfg_.nodelay;
  c.cc = cfg_.cc;
  c.rto_ns = cfg_.initial_rto_ns;
  c.mss = mss_for(net::Ipv4Addr{c.key.remote_ip});
  c.peer_mss = 536;
  // Smallest window scale that lets the whole receive buffer be advertised.
  uint8_t ws = 0;
  while (ws < tcp_max_wscale && (uint32_t(0xffff) << ws) < c.rcv_buf) ++ws;
  c.rcv.wscale = cfg_.window_scaling ? ws : 0;
  c.last_recv_ns = now_ns;
}

void TcpStack::apply_syn_options(Tcb& c, const TcpSegment& seg) {
  const TcpOptions& o = seg.opt;
  c.peer_mss = o.mss ? o.mss : 536;  // RFC 9293 3.7.1: default 536
  c.ws_ok = cfg_.window_scaling && o.wscale >= 0 && (c.state == TcpState::syn_sent ? true : true);
  if (c.ws_ok) c.snd.wscale = uint8_t(o.wscale);
  else c.snd.wscale = c.rcv.wscale = 0;
  c.sack_ok = cfg_.sack && o.sack_permitted;
  c.ts_ok = cfg_.timestamps && o.has_timestamp;
  if (c.ts_ok) c.ts_recent = o.tsval;
  uint16_t mss = std::min(mss_for(net::Ipv4Addr{c.key.remote_ip}), c.peer_mss);
  if (c.ts_ok) mss = uint16_t(mss - 12);  // every segment carries the 12-byte TS option
  c.mss = std::max<uint16_t>(mss, 64);
  c.ccv.mss = c.mss;
}

void TcpStack::input_listen(Listener& l, const TcpSegment& seg, rte_mbuf* m,
                            const engine::Ipv4Meta& ip, uint64_t now_ns) {
  ConnKey key{ip.dst.v, ip.src.v, seg.dst_port, seg.src_port};
  uint32_t len = m->pkt_len;
  if (seg.has(flag::ack) && !seg.has(flag::syn) && !seg.has(flag::rst)) {
    // The third packet of a handshake we answered with a cookie? Its data (and
    // FIN) are taken once the connection exists, as Linux does: dropping them
    // would stall the peer until its retransmission timeout.
    uint16_t mss = check_cookie(key, seg.seq - 1, seg.ack - 1, now_ns);
    if (mss == 0) {
      rte_pktmbuf_free(m);
      counters().inc(Counter::tcp_syn_cookies_bad);
      send_rst_for(seg, ip, len, now_ns);
      return;
    }
    Tcb* c = alloc_tcb(key);
    if (c == nullptr) {
      rte_pktmbuf_free(m);
      return;
    }
    init_tcb(*c, now_ns);
    c->cookie = true;
    c->irs = seg.seq - 1;
    c->rcv.nxt = seg.seq;
    c->rcv.adv = c->rcv.nxt;
    c->iss = seg.ack - 1;
    c->snd.una = c->snd.nxt = c->snd.max = seg.ack;
    // The cookie kept only the MSS; timestamps echo tells whether TS were on,
    // and their low bits carry window scale and SACK (see syncookie.cpp).
    c->peer_mss = mss;
    c->mss = std::min(mss, mss_for(ip.src));
    if (seg.opt.has_timestamp && cfg_.timestamps) {
      c->ts_ok = true;
      c->ts_recent = seg.opt.tsval;
      uint32_t enc = seg.opt.tsecr & 0x3f;
      c->sack_ok = cfg_.sack && (enc & 0x20);
      uint8_t ws = enc & 0x1f;
      c->ws_ok = cfg_.window_scaling && ws != 0x1f;
      c->snd.wscale = c->ws_ok ? uint8_t(std::min<uint8_t>(ws, tcp_max_wscale)) : 0;
      if (!c->ws_ok) c->rcv.wscale = 0;
      c->mss = uint16_t(c->mss - 12);
    } else {
      c->snd.wscale = c->rcv.wscale = 0;
    }
    c->ccv.mss = c->mss;
    c->cc->init(c->ccv, now_ns);
    // The right edge our SYN-ACK advertised (a SYN's window is never scaled);
    // left at RCV.NXT, the window would be zero until we send something.
    c->rcv.adv = c->rcv.nxt + std::min<uint32_t>(rcv_window(*c), 0xffff);
    c->snd.wnd = uint32_t(seg.window) << c->snd.wscale;
    c->snd.max_wnd = c->snd.wnd;
    c->snd.wl1 = seg.seq;
    c->snd.wl2 = seg.ack;
    set_state(*c, TcpState::established);
    counters().inc(Counter::tcp_syn_cookies_ok);
    counters().inc(Counter::tcp_passive_opens);
    ++l.accepted;
    const uint32_t gen = incarnation(*c);
    c->handler = l.handler ? l.handler->on_accept(*c) : nullptr;
    if (c->handler == nullptr) {
      rte_pktmbuf_free(m);
      return abort(*c);
    }
    if (!alive(*c, gen)) {  // the handler closed it already
      rte_pktmbuf_free(m);
      return;
    }
    if (c->keepalive) inst_.timers().schedule(c->keepalive_timer, now_ns + keepalive_idle(*c));
    if (len > 0 || seg.has(flag::fin)) return input_synchronized(*c, seg, m, len, now_ns);
    rte_pktmbuf_free(m);
    return;
  }
  rte_pktmbuf_free(m);  // data on a SYN is not kept; the peer sends it again
  if (seg.has(flag::rst)) return;  // 3.10.7.2: ignore
  if (!seg.has(flag::syn)) return;  // neither SYN nor ACK: drop
  if (seg.has(flag::ack)) {
    send_rst_for(seg, ip, len, now_ns);
    return;
  }
  if (l.syn_queued >= l.backlog) {
    // SYN queue full: answer statelessly with a cookie (no TCB).
    counters().inc(Counter::tcp_listen_overflows);
    ++l.overflows;
    Tcb tmp;
    tmp.key = key;
    tmp.state = TcpState::syn_received;
    init_tcb(tmp, now_ns);
    tmp.irs = seg.seq;
    tmp.rcv.nxt = seg.seq + 1;
    tmp.rcv.adv = tmp.rcv.nxt;
    apply_syn_options(tmp, seg);
    if (!tmp.ts_ok) {
      // The cookie has nowhere to keep WS and SACK without timestamps: offer
      // neither, or the peer would scale windows we do not (as Linux does).
      tmp.ws_ok = tmp.sack_ok = false;
      tmp.snd.wscale = tmp.rcv.wscale = 0;
    }
    uint16_t peer_mss = seg.opt.mss ? seg.opt.mss : 536;
    tmp.iss = make_cookie(key, seg.seq, peer_mss, now_ns);
    tmp.snd.una = tmp.iss;
    tmp.snd.nxt = tmp.iss + 1;
    // Encode WS and SACK in our timestamp's low bits, echoed back in the ACK.
    engine::Interface& ifc = *inst_.interfaces().front();
    (void)ifc;
    ++l.cookies_sent;
    counters().inc(Counter::tcp_syn_cookies_sent);
    cookie_ts_bits_ = uint32_t((tmp.sack_ok ? 0x20 : 0) | (tmp.ws_ok ? seg.opt.wscale : 0x1f));
    send_segment(tmp, tmp.iss, 0, flag::syn | flag::ack, now_ns);
    cookie_ts_bits_ = UINT32_MAX;
    return;
  }
  Tcb* c = alloc_tcb(key);
  if (c == nullptr) return;
  init_tcb(*c, now_ns);
  set_state(*c, TcpState::syn_received);
  c->irs = seg.seq;
  c->rcv.nxt = seg.seq + 1;
  c->rcv.adv = c->rcv.nxt;
  apply_syn_options(*c, seg);
  c->cc->init(c->ccv, now_ns);
  c->iss = isn(key, now_ns);
  c->snd.una = c->iss;
  c->snd.nxt = c->snd.max = c->iss + 1;
  c->snd.wnd = seg.window;  // never scaled in a SYN (RFC 7323 2.2)
  c->snd.max_wnd = c->snd.wnd;
  c->snd.wl1 = seg.seq;
  c->snd.wl2 = c->iss;
  c->listener = &l;
  ++l.syn_queued;
  send_segment(*c, c->iss, 0, flag::syn | flag::ack, now_ns);
  arm_rexmt(*c, now_ns);
  inst_.timers().schedule(c->keepalive_timer, now_ns + cfg_.syn_received_timeout_ns);
}

void TcpStack::input_syn_sent(Tcb& c, const TcpSegment& seg, rte_mbuf* m, uint64_t now_ns) {
  const uint32_t gen = incarnation(c);
  rte_pktmbuf_free(m);
  bool ack_ok = false;
  if (seg.has(flag::ack)) {
    // 3.10.7.3 first: an ACK outside (ISS, SND.NXT] gets a RST (unless it is one).
    if (seq_leq(seg.ack, c.iss) || seq_gt(seg.ack, c.snd.max)) {
      if (!seg.has(flag::rst)) {
        engine::Ipv4Meta ip;
        ip.src = net::Ipv4Addr{c.key.remote_ip};
        ip.dst = net::Ipv4Addr{c.key.local_ip};
        send_rst_for(seg, ip, 0, now_ns);
      }
      return;
    }
    ack_ok = true;
  }
  if (seg.has(flag::rst)) {
    // RFC 5961 3.2 for SYN-SENT: only an acceptable ACK makes the RST valid.
    if (!ack_ok) return;
    counters().inc(Counter::tcp_resets_received);
    counters().inc(Counter::tcp_attempt_fails);
    return drop(c, Errc::connection_refused);
  }
  if (!seg.has(flag::syn)) return;
  c.irs = seg.seq;
  c.rcv.nxt = seg.seq + 1;
  c.rcv.adv = c.rcv.nxt;
  apply_syn_options(c, seg);
  c.cc->init(c.ccv, now_ns);
  c.snd.wnd = seg.window;
  c.snd.max_wnd = c.snd.wnd;
  c.snd.wl1 = seg.seq;
  c.snd.wl2 = seg.ack;
  if (ack_ok) {
    c.snd.una = seg.ack;
    if (c.ts_ok && seg.opt.tsecr != 0) update_rtt(c, uint64_t(ts_now(now_ns) - seg.opt.tsecr) * 1'000'000);
    else if (c.rtt_timing) update_rtt(c, now_ns - c.rtt_start_ns);
    c.rtt_timing = false;
    c.backoff = 0;
    inst_.timers().cancel(c.rexmt_timer);
    set_state(c, TcpState::established);
    inst_.timers().cancel(c.keepalive_timer);  // connect()'s timeout, if it had one
    c.ack_now = true;
    if (c.handler) c.handler->on_connected(c);
    if (c.keepalive) inst_.timers().schedule(c.keepalive_timer, now_ns + keepalive_idle(c));
    if (alive(c, gen)) output(c, now_ns);  // the handler may have closed it
    return;
  }
  // Simultaneous open (3.10.7.3 fourth): SYN-RECEIVED, SYN-ACK with our ISS.
  set_state(c, TcpState::syn_received);
  send_segment(c, c.iss, 0, flag::syn | flag::ack, now_ns);
  arm_rexmt(c, now_ns);
}

void TcpStack::send_challenge_ack(Tcb& c, uint64_t now_ns) {
  if (!challenge_ack_allowed(now_ns)) {
    counters().inc(Counter::tcp_challenge_acks_limited);
    return;
  }
  counters().inc(Counter::tcp_challenge_acks);
  send_ack(c, now_ns);
}

bool TcpStack::challenge_ack_allowed(uint64_t now_ns) {
  // RFC 5961 7: a global limit on challenge ACKs per second.
  if (now_ns - challenge_window_start_ns_ >= 1'000'000'000) {
    challenge_window_start_ns_ = now_ns;
    challenge_acks_in_window_ = 0;
  }
  return challenge_acks_in_window_++ < cfg_.challenge_ack_limit;
}

void TcpStack::ack_unacceptable(Tcb& c, uint32_t len, uint64_t now_ns) {
  if (len == 0 && c.last_oow_ack_ns != 0 && now_ns - c.last_oow_ack_ns < cfg_.oow_ack_interval_ns) {
    counters().inc(Counter::tcp_oow_acks_limited);
    return;
  }
  if (len == 0) c.last_oow_ack_ns = now_ns;
  send_ack(c, now_ns);
}

void TcpStack::input_synchronized(Tcb& c, const TcpSegment& seg_in, rte_mbuf* m, uint32_t len,
                                  uint64_t now_ns) {
  const uint32_t gen = incarnation(c);
  TcpSegment seg = seg_in;
  auto discard = [&] { rte_pktmbuf_free(m); };

  // RFC 7323 5.3 R1: PAWS.
  if (c.ts_ok && seg.opt.has_timestamp && !seg.has(flag::rst) &&
      seq_lt(seg.opt.tsval, c.ts_recent) && now_ns - c.ts_recent_ns < paws_idle_ns &&
      c.ts_recent_ns != 0) {
    counters().inc(Counter::tcp_paws_drops);
    discard();
    ack_unacceptable(c, len, now_ns);
    return;
  }

  // SYN-RECEIVED and the peer's SYN again (SEG.SEQ = IRS), which the
  // acceptability test below would take for an old duplicate. Without ACK our
  // SYN-ACK was lost: send it again. With ACK, on an active open, it is the
  // SYN-ACK of a simultaneous open (RFC 9293 figure 7): drop the SYN already
  // taken (as BSD's trimming does) and go on with the ACK.
  if (c.state == TcpState::syn_received && seg.has(flag::syn) && seg.seq == c.irs) {
    if (!seg.has(flag::ack)) {
      discard();
      send_segment(c, c.iss, 0, flag::syn | flag::ack, now_ns);
      return;
    }
    if (c.listener == nullptr) {
      seg.flags &= uint8_t(~flag::syn);
      seg.seq += 1;
    }
  }

  // 3.10.7.4 first: sequence number acceptability (SYN and FIN occupy space).
  uint32_t seg_len = len + (seg.has(flag::syn) ? 1 : 0) + (seg.has(flag::fin) ? 1 : 0);
  uint32_t wnd = c.rcv.adv - c.rcv.nxt;
  bool acceptable;
  if (seg_len == 0) {
    acceptable = wnd == 0 ? seg.seq == c.rcv.nxt : seq_in(seg.seq, c.rcv.nxt, c.rcv.nxt + wnd);
  } else {
    acceptable = wnd != 0 && (seq_in(seg.seq, c.rcv.nxt, c.rcv.nxt + wnd) ||
                              seq_in(seg.seq + seg_len - 1, c.rcv.nxt, c.rcv.nxt + wnd));
  }
  // COMPAT(linux): with a zero window, still take ACK/RST/window information
  // from a segment at RCV.NXT that carries data (its data is dropped).
  if (!acceptable && wnd == 0 && seg.seq == c.rcv.nxt) {
    acceptable = true;
    rte_pktmbuf_free(m);
    m = rte_pktmbuf_alloc(inst_.interfaces().front()->pool);
    if (m == nullptr) return;
    len = 0;
    seg.flags &= uint8_t(~flag::fin);
    c.ack_now = true;  // 3.8.6.1: answer a zero-window probe with the window (still zero)
  }
  if (!acceptable) {
    discard();
    if (seg.has(flag::rst)) {
      counters().inc(Counter::tcp_resets_ignored);
      return;
    }
    counters().inc(Counter::tcp_out_of_window);
    if (seq_lt(seg.seq, c.rcv.nxt) && len > 0) counters().inc(Counter::tcp_dup_segments);
    // 3.10.7.4 eighth, TIME-WAIT: a retransmitted FIN (it lies below RCV.NXT,
    // so it lands here): ACK it and restart the 2 MSL wait.
    if (c.state == TcpState::time_wait && seg.has(flag::fin))
      inst_.timers().schedule(c.keepalive_timer, now_ns + 2 * cfg_.msl_ns);
    ack_unacceptable(c, seg.has(flag::fin) ? 1 : len, now_ns);
    return;
  }
  // Trim what was already received, and what lies beyond the window.
  if (seq_lt(seg.seq, c.rcv.nxt)) {
    uint32_t dup = c.rcv.nxt - seg.seq;
    if (seg.has(flag::syn)) {
      seg.flags &= uint8_t(~flag::syn);
      seg.seq += 1;
      dup -= 1;
    }
    dup = std::min(dup, len);
    if (dup > 0) {
      trim_front(m, dup);
      seg.seq += dup;
      len -= dup;
      c.ack_now = true;  // a duplicate: the peer may have missed our ACK
    }
  }
  if (seq_gt(seg.seq + len, c.rcv.nxt + wnd)) {
    uint32_t excess = seg.seq + len - (c.rcv.nxt + wnd);
    excess = std::min(excess, len);
    trim_to(m, len - excess);
    len -= excess;
    seg.flags &= uint8_t(~flag::fin);
    counters().inc(Counter::tcp_rcv_window_trimmed);
  }

  // RFC 7323 4.3: update TS.Recent from a segment covering Last.ACK.sent.
  if (c.ts_ok && seg.opt.has_timestamp && seq_leq(seg.seq, c.last_ack_sent) &&
      seq_geq(seg.opt.tsval, c.ts_recent)) {
    c.ts_recent = seg.opt.tsval;
    c.ts_recent_ns = now_ns;
  }

  // Second: RST (RFC 5961 3.2).
  if (seg.has(flag::rst)) {
    discard();
    if (seg.seq != c.rcv.nxt) return send_challenge_ack(c, now_ns);
    counters().inc(Counter::tcp_resets_received);
    if (c.state == TcpState::syn_received && c.listener != nullptr) {
      free_tcb(c);  // passive open reset: back to LISTEN, the application never saw it
      return;
    }
    if (c.state == TcpState::syn_received) counters().inc(Counter::tcp_attempt_fails);
    if (c.state == TcpState::time_wait || c.state == TcpState::closing ||
        c.state == TcpState::last_ack) {
      drop(c, Errc::ok);
      return;
    }
    drop(c, Errc::connection_reset);
    return;
  }

  // Fourth: SYN in a synchronized state (RFC 5961 4.2): challenge ACK.
  if (seg.has(flag::syn)) {
    discard();
    return send_challenge_ack(c, now_ns);
  }

  // Fifth: ACK.
  if (!seg.has(flag::ack)) return discard();
  bool handshake_ack = false;
  if (c.state == TcpState::syn_received) {
    if (!(seq_gt(seg.ack, c.snd.una) && seq_leq(seg.ack, c.snd.max))) {
      engine::Ipv4Meta ip;
      ip.src = net::Ipv4Addr{c.key.remote_ip};
      ip.dst = net::Ipv4Addr{c.key.local_ip};
      send_rst_for(seg, ip, len, now_ns);
      return discard();
    }
    set_state(c, TcpState::established);
    inst_.timers().cancel(c.keepalive_timer);
    // The SYN is acknowledged: move SND.UNA past it before the application
    // runs, so data it queues in on_accept starts at ISS+1 (and is not taken
    // for the SYN's sequence number when the ACK is processed below).
    c.snd.una = c.iss + 1;
    if (seq_lt(c.snd.nxt, c.snd.una)) c.snd.nxt = c.snd.una;
    c.backoff = 0;
    inst_.timers().cancel(c.rexmt_timer);
    if (c.ts_ok && seg.opt.has_timestamp && seg.opt.tsecr != 0)
      update_rtt(c, uint64_t(ts_now(now_ns) - seg.opt.tsecr) * 1'000'000 + 500'000);
    handshake_ack = true;
    c.snd.wnd = uint32_t(seg.window) << c.snd.wscale;
    c.snd.max_wnd = std::max(c.snd.max_wnd, c.snd.wnd);
    c.snd.wl1 = seg.seq;
    c.snd.wl2 = seg.ack;
    Listener* l = c.listener;
    if (l != nullptr) {
      --l->syn_queued;
      c.listener = nullptr;
      ++l->accepted;
      counters().inc(Counter::tcp_passive_opens);
      c.handler = l->handler ? l->handler->on_accept(c) : nullptr;
      if (c.handler == nullptr) {
        discard();
        return abort(c);
      }
      if (!alive(c, gen)) return discard();
    } else if (c.handler && !c.app_closed) {  // close() promised only on_closed from now on
      c.handler->on_connected(c);  // simultaneous open completed
      if (!alive(c, gen)) return discard();
    }
    if (c.keepalive) inst_.timers().schedule(c.keepalive_timer, now_ns + keepalive_idle(c));
  }
  // RFC 5961 5.2: the ACK must lie in [SND.UNA - MAX.SND.WND, SND.NXT].
  if (seq_gt(seg.ack, c.snd.max)) {
    counters().inc(Counter::tcp_ack_unsent);
    discard();
    send_ack(c, now_ns);
    return;
  }
  if (seq_lt(seg.ack, c.snd.una - c.snd.max_wnd)) {
    counters().inc(Counter::tcp_ack_too_old);
    discard();
    send_challenge_ack(c, now_ns);
    return;
  }
  if (!process_ack(c, seg, len, handshake_ack, now_ns)) return discard();  // the connection is gone

  // Seventh: segment text.
  if (len > 0) {
    if (c.state == TcpState::established || c.state == TcpState::fin_wait_1 ||
        c.state == TcpState::fin_wait_2) {
      if (c.app_closed) {
        // Nobody will read it: tell the peer (as Linux does on close with data pending).
        counters().inc(Counter::tcp_data_after_close);
        discard();
        send_segment(c, c.snd.nxt, 0, flag::rst | flag::ack, now_ns);
        counters().inc(Counter::tcp_resets_sent);
        return drop(c, Errc::connection_aborted);
      }
      process_data(c, seg, m, len, now_ns);
      m = nullptr;
      if (!alive(c, gen)) return;
    } else {
      discard();
      m = nullptr;
    }
  } else {
    discard();
    m = nullptr;
  }

  // Eighth: FIN, once everything before it arrived.
  if (seg.has(flag::fin) && seg.seq + len == c.rcv.nxt && !c.fin_received) process_fin(c, now_ns);
  else if (seg.has(flag::fin) && c.state == TcpState::time_wait) {
    c.ack_now = true;  // a retransmitted FIN: ACK it and restart the 2MSL wait
    inst_.timers().schedule(c.keepalive_timer, now_ns + 2 * cfg_.msl_ns);
  }
  if (!alive(c, gen)) return;
  output(c, now_ns);
}

bool TcpStack::process_ack(Tcb& c, const TcpSegment& seg, uint32_t len, bool handshake_ack,
                           uint64_t now_ns) {
  const uint32_t gen = incarnation(c);
  uint32_t prev_wnd = c.snd.wnd;
  // RFC 9293 3.10.7.4 fifth: window update from segments at least as new.
  if (seq_lt(c.snd.wl1, seg.seq) || (c.snd.wl1 == seg.seq && seq_leq(c.snd.wl2, seg.ack))) {
    c.snd.wnd = uint32_t(seg.window) << c.snd.wscale;
    c.snd.wl1 = seg.seq;
    c.snd.wl2 = seg.ack;
    c.snd.max_wnd = std::max(c.snd.max_wnd, c.snd.wnd);
    if (c.snd.wnd > 0 && c.persisting) {
      c.persisting = false;
      c.persist_backoff_ns = 0;
      inst_.timers().cancel(c.rexmt_timer);
    }
  }
  uint32_t sacked_before = c.sack.sacked_bytes();
  if (c.sack_ok) {
    // The scoreboard wants SND.UNA as it will be after this ACK; RACK wants to
    // know what the ACK newly delivers, against the scoreboard before it.
    uint32_t una = seq_gt(seg.ack, c.snd.una) ? seg.ack : c.snd.una;
    Rack::Ack a;
    a.una_before = c.snd.una;
    a.una_after = una;
    a.snd_nxt = c.snd.max;
    a.now_ns = now_ns;
    if (seg.opt.sack_count > 0) {
      SackScoreboard before = c.sack;
      a.dsack = c.sack.update(seg.opt.sack, seg.opt.sack_count, una, c.snd.max);
      a.blocks = seg.opt.sack;
      a.n = seg.opt.sack_count;
      c.rack.on_ack(a, before);
    } else if (una != c.snd.una) {
      c.rack.on_ack(a, c.sack);
    }
  }

  uint32_t acked = seg.ack - c.snd.una;
  if (seq_gt(seg.ack, c.snd.una)) {
    uint32_t flight = c.snd.max - c.snd.una;
    // Sequence space acknowledged: data bytes, plus our FIN if it is covered.
    uint32_t data = std::min(acked, c.sndq.size());
    c.sndq.consume(data);
    c.bytes_acked += data;
    c.snd.una = seg.ack;
    if (seq_lt(c.snd.nxt, c.snd.una)) c.snd.nxt = c.snd.una;
    // RTT (RFC 7323 4.1 with timestamps; else Karn-timed segment).
    if (c.ts_ok && seg.opt.has_timestamp && seg.opt.tsecr != 0) {
      update_rtt(c, uint64_t(ts_now(now_ns) - seg.opt.tsecr) * 1'000'000 + 500'000);
    } else if (c.rtt_timing && seq_gt(seg.ack, c.rtt_seq)) {
      update_rtt(c, now_ns - c.rtt_start_ns);
      c.rtt_timing = false;
    }
    c.backoff = 0;
    c.retransmits = 0;
    c.soft_error = Errc::ok;  // the path works again
    c.sack.advance(c.snd.una);
    c.rack.advance(c.snd.una);
    if (c.in_recovery) {
      if (seq_geq(seg.ack, c.recover)) {
        c.in_recovery = false;  // RFC 6582 3.2 step 3 / RFC 6675 5: full ACK
        c.cc->post_recovery(c.ccv, c.snd.max - c.snd.una, now_ns);
        c.rack.on_recovery_exit();
      } else if (!c.sack_ok) {
        // RFC 6582 partial ACK: retransmit the next unacknowledged segment.
        uint32_t l = std::min<uint32_t>(c.mss, c.sndq.size());
        if (l > 0) {
          send_segment(c, c.snd.una, l, flag::ack, now_ns);
          ++c.total_retransmits;
          counters().inc(Counter::tcp_retransmits);
        }
        c.dupacks = uint8_t(c.dupacks > 0 ? c.dupacks - 1 : 0);
      }
    } else {
      // After an RTO the window grows in slow start while the lost data is resent.
      if (c.rto_recovery && seq_geq(seg.ack, c.recover)) {
        c.rto_recovery = false;
        c.rack.on_recovery_exit();
      }
      c.cc->on_ack(c.ccv, acked, flight, c.srtt_ns, now_ns);
      c.dupacks = 0;
    }
    if (!c.in_recovery) c.dupacks = 0;
    // RFC 6298 5.2 / 5.3.
    c.tlp_sent = 0;
    if (c.snd.una == c.snd.max) inst_.timers().cancel(c.rexmt_timer);
    else arm_rexmt_or_probe(c, now_ns);
    if (c.sack_ok) sack_loss_detect(c, now_ns);
    // Our FIN acknowledged?
    if (c.fin_sent && seq_gt(c.snd.una, c.fin_seq)) {
      switch (c.state) {
        case TcpState::fin_wait_1:
          set_state(c, TcpState::fin_wait_2);
          if (c.app_closed)  // nobody can send us anything useful: bound FIN-WAIT-2
            inst_.timers().schedule(c.keepalive_timer, now_ns + 2 * cfg_.msl_ns);
          break;
        case TcpState::closing:
          enter_time_wait(c, now_ns);
          break;
        case TcpState::last_ack:
          drop(c, Errc::ok);
          return false;
        default:
          break;
      }
    }
    if (c.want_writable && send_space(c) > 0 && c.handler != nullptr && !c.app_closed) {
      c.want_writable = false;
      c.handler->on_writable(c);
      if (!alive(c, gen)) return false;
    }
    return true;
  }
  // Duplicate ACK (RFC 5681 2): same ACK, no data, same window, data outstanding.
  bool dup = seg.ack == c.snd.una && len == 0 && !seg.has(flag::fin) &&
             c.snd.wnd == prev_wnd && c.snd.max != c.snd.una && !handshake_ack;
  if (dup) {
    counters().inc(Counter::tcp_dup_acks);
    if (c.dupacks < 255) ++c.dupacks;
  }
  // RFC 5827 early retransmit: with fewer than four segments out and nothing
  // new to send, fewer duplicate ACKs will ever come; lower the threshold.
  auto dupthresh = [&] {
    uint32_t out_segs = (c.snd.max - c.snd.una + c.mss - 1) / c.mss;
    bool nothing_new = c.snd.max - c.snd.una >= c.sndq.size();
    return out_segs < 4 && nothing_new ? std::max<uint32_t>(out_segs, 2) - 1 : 3;
  };
  if (c.sack_ok) {
    // RACK finds losses from SACK information and time, also on ACKs that carry
    // data (bidirectional traffic has no pure duplicate ACKs) and whatever the
    // duplicate ACKs count says, which reordering inflates. Before it can run
    // (no RTT estimate yet), the DupThresh rule of RFC 6675 5 (with RFC 5827's
    // lower threshold) and IsLost.
    if (!rack_active(c) && dup && !c.in_recovery && !c.rto_recovery && c.dupacks >= dupthresh())
      c.rack.mark_lost(c.snd.una, c.snd.una + std::min<uint32_t>(c.mss, c.flight()), c.sack);
    // News from the receiver: a tail loss probe may go again after a quiet PTO
    // (see arm_rexmt_or_probe); the RTO stays behind it.
    if (c.sack.sacked_bytes() > sacked_before && c.rexmt_timer.armed() && !c.persisting) {
      c.tlp_sent = 0;
      arm_rexmt_or_probe(c, now_ns);
    }
    sack_loss_detect(c, now_ns);
    return true;
  }
  if (c.in_recovery) return true;  // output() sends what the window allows
  if (!dup || c.dupacks < dupthresh()) return true;
  // Enter fast recovery (RFC 6582 3.2 step 2).
  c.in_recovery = true;
  c.recover = c.snd.max;
  c.cc->on_congestion(c.ccv, cc::Signal::fast_retransmit, c.snd.max - c.snd.una, now_ns);
  counters().inc(Counter::tcp_fast_retransmits);
  uint32_t l = std::min<uint32_t>(c.mss, c.sndq.size());
  uint8_t fl = flag::ack;
  if (c.fin_sent && c.snd.una + l == c.fin_seq) fl |= flag::fin;
  if (l > 0 || (fl & flag::fin)) {
    send_segment(c, c.snd.una, l, fl, now_ns);
    ++c.retransmits, ++c.total_retransmits;
    counters().inc(Counter::tcp_retransmits);
  }
  c.high_rxt = c.snd.una + l;
  c.rtt_timing = false;  // Karn
  arm_rexmt(c, now_ns);
  return true;
}

void TcpStack::sack_loss_detect(Tcb& c, uint64_t now_ns) {
  if (c.snd.una == c.snd.max || c.state == TcpState::time_wait) {
    inst_.timers().cancel(c.reo_timer);
    return;
  }
  bool recovering = c.in_recovery || c.rto_recovery;
  uint64_t reo_timeout = 0;
  if (rack_active(c))
    reo_timeout = c.rack.detect_loss(c.sack, now_ns, c.srtt_ns, recovering, c.mss);
  else
    c.rack.mark_lost_below(Rack::is_lost_edge(c.sack, c.snd.una, c.snd.max, c.mss), c.sack);
  // RFC 8985 6.2 step 5: look again when the oldest octet not yet deemed lost would be.
  if (reo_timeout != 0) {
    c.reo_timer.set_callback(&TcpStack::reo_fired, &c);
    inst_.timers().schedule(c.reo_timer, now_ns + reo_timeout);
  } else {
    inst_.timers().cancel(c.reo_timer);
  }
  if (!recovering && c.rack.has_lost(c.sack)) enter_sack_recovery(c, now_ns);
}

void TcpStack::enter_sack_recovery(Tcb& c, uint64_t now_ns) {
  // RFC 6675 5 steps 4.1-4.2: recovery point, one window reduction, and the
  // first lost segment resent whatever the pipe says; output() sends the rest.
  c.in_recovery = true;
  c.recover = c.snd.max;
  c.cc->on_congestion(c.ccv, cc::Signal::fast_retransmit, c.snd.max - c.snd.una, now_ns);
  counters().inc(Counter::tcp_fast_retransmits);
  counters().inc(Counter::tcp_sack_recoveries);
  SackBlock l = c.rack.next_lost(c.sack, c.mss);
  if (l.left != l.right) send_lost(c, l, now_ns);
  c.rtt_timing = false;  // Karn
  c.tlp_sent = 0;
  arm_rexmt_or_probe(c, now_ns);
}

void TcpStack::notify_readable(Tcb& c) {
  if (c.handler != nullptr && !c.app_closed) c.handler->on_readable(c);
}

void TcpStack::process_data(Tcb& c, const TcpSegment& seg, rte_mbuf* m, uint32_t len,
                            uint64_t now_ns) {
  const uint32_t gen = incarnation(c);
  if (seg.seq == c.rcv.nxt) {
    c.rcv.nxt += len;
    c.bytes_received += len;
    c.rcvq.push(m);
    bool filled_hole = false;
    if (c.ooo != nullptr) {
      // pop() reports the FIN on the call that reaches it and clears the flag
      // on every call, the last one (nullptr) included: keep what was seen.
      bool fin = false, popped_fin = false;
      while (rte_mbuf* more = c.ooo->pop(c.rcv.nxt, popped_fin)) {
        c.bytes_received += more->pkt_len;
        c.rcvq.push(more);
        filled_hole = true;
        fin = fin || popped_fin;
      }
      fin = fin || popped_fin;  // a FIN alone at RCV.NXT
      if (c.ooo->empty()) return_ooo(c);
      if (fin && !c.fin_received) {
        notify_readable(c);
        if (!alive(c, gen)) return;
        process_fin(c, now_ns);
        return;
      }
    }
    // RFC 5681 4.2 / 9293 3.8.6.3: ACK every second full segment, at once
    // when a hole was filled, else within the delayed-ACK time.
    if (len >= c.mss) ++c.delack_segs;
    if (filled_hole || c.delack_segs >= 2) c.ack_now = true;
    else if (!c.delack_timer.armed())
      inst_.timers().schedule(c.delack_timer, now_ns + cfg_.delack_ns);
    notify_readable(c);
    return;
  }
  // Out of order: keep it (zero copy) and ACK at once so the sender sees the hole.
  c.ack_now = true;
  if (c.ooo == nullptr) c.ooo = borrow_ooo();
  if (c.ooo == nullptr) {
    counters().inc(Counter::tcp_ooo_dropped);
    rte_pktmbuf_free(m);
    return;
  }
  if (c.ooo->insert(seg.seq, m, seg.has(flag::fin)) == 0) counters().inc(Counter::tcp_ooo_dropped);
  else counters().inc(Counter::tcp_ooo_segments);
}

void TcpStack::process_fin(Tcb& c, uint64_t now_ns) {
  const uint32_t gen = incarnation(c);
  c.fin_received = true;
  c.rcv.nxt += 1;
  c.ack_now = true;
  switch (c.state) {
    case TcpState::syn_received:
    case TcpState::established:
      set_state(c, TcpState::close_wait);
      break;
    case TcpState::fin_wait_1:
      // Our FIN not yet acknowledged (else we would be in FIN-WAIT-2).
      set_state(c, TcpState::closing);
      break;
    case TcpState::fin_wait_2:
      // After shutdown() the application may still be reading: it hears of
      // the FIN, as in every other state, before TIME-WAIT closes it.
      if (c.handler != nullptr && !c.app_closed && !c.peer_close_told) {
        c.peer_close_told = true;
        c.handler->on_peer_closed(c);
        if (!alive(c, gen)) return;  // the handler aborted it
      }
      send_ack(c, now_ns);
      enter_time_wait(c, now_ns);
      return;
    default:
      break;
  }
  if (c.handler != nullptr && !c.app_closed && !c.peer_close_told) {
    c.peer_close_told = true;
    c.handler->on_peer_closed(c);
  }
}

void TcpStack::enter_time_wait(Tcb& c, uint64_t now_ns) {
  set_state(c, TcpState::time_wait);
  auto& t = inst_.timers();
  t.cancel(c.rexmt_timer);
  t.cancel(c.delack_timer);
  t.schedule(c.keepalive_timer, now_ns + 2 * cfg_.msl_ns);
  c.sndq.clear();
  return_ooo(c);
  // The application is done with it; the TCB stays to absorb old duplicates.
  const uint32_t gen = incarnation(c);
  ConnHandler* h = c.handler;
  c.handler = nullptr;
  if (h != nullptr) h->on_closed(c, Errc::ok);
  // Recyclable only from here on: a connect() inside on_closed() that finds
  // the table full must not free `c`, which our callers still use.
  note_time_wait(c, gen);
}

}  // namespace keel::tcp
