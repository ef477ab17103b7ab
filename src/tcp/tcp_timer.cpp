// SPDX-License-Identifier: BSD-3-Clause
// TCP timers: retransmission (RFC 6298) and persist share rexmt_timer as in
// BSD; delayed ACK; keepalive, which doubles as the SYN-RECEIVED timeout, the
// FIN-WAIT-2 bound and the 2MSL TIME-WAIT timer.
#include <algorithm>

#include "engine/instance.hpp"
#include "tcp/seq.hpp"
#include "tcp/tcp_stack.hpp"

namespace keel::tcp {

using engine::Counter;

void TcpStack::rexmt_fired(engine::Timer&, void* ctx, uint64_t now_ns) {
  Tcb& c = *static_cast<Tcb*>(ctx);
  TcpStack& s = *c.stack;
  if (c.persisting) {
    uint32_t unsent = c.sndq.size() - (c.snd.nxt - c.snd.una);
    if (c.snd.wnd > 0 && c.snd.nxt == c.snd.una && unsent > 0) {
      // The SWS override timeout: send what the window takes; the
      // retransmission timer takes over.
      c.persisting = false;
      c.persist_backoff_ns = 0;
      uint32_t len = std::min({c.snd.wnd, uint32_t(c.mss), unsent});
      s.send_segment(c, c.snd.nxt, len, flag::ack | flag::psh, now_ns);
      c.snd.nxt += len;
      if (seq_gt(c.snd.nxt, c.snd.max)) c.snd.max = c.snd.nxt;
      s.arm_rexmt(c, now_ns);
      return;
    }
    // A zero window is probed as long as the peer answers (RFC 9293 3.8.6.1);
    // silent for as long as retransmissions would wait, it is gone.
    if (now_ns - c.last_recv_ns >= uint64_t(s.cfg_.max_retransmits) * s.cfg_.max_rto_ns) {
      s.counters().inc(Counter::tcp_timeout_drops);
      s.send_segment(c, c.snd.nxt, 0, flag::rst | flag::ack, now_ns);
      s.counters().inc(Counter::tcp_resets_sent);
      return s.drop(c, c.timeout_error());
    }
    // Zero-window probe: an old sequence number makes the peer answer with
    // its current window (as Linux does), without putting data at risk.
    s.counters().inc(Counter::tcp_window_probes);
    s.send_segment(c, c.snd.una - 1, 0, flag::ack, now_ns);
    c.persist_backoff_ns = std::min(c.persist_backoff_ns * 2, s.cfg_.max_rto_ns);
    s.inst_.timers().schedule(c.rexmt_timer, now_ns + c.persist_backoff_ns);
    return;
  }
  if (c.tlp_pending) return s.send_tail_probe(c, now_ns);
  s.counters().inc(Counter::tcp_rto_timeouts);
  if (c.state == TcpState::syn_sent || c.state == TcpState::syn_received) {
    if (++c.syn_retries > s.cfg_.syn_retries) {
      s.counters().inc(Counter::tcp_attempt_fails);
      if (c.state == TcpState::syn_received && c.listener != nullptr) return s.free_tcb(c);
      return s.drop(c, c.timeout_error());
    }
    ++c.backoff;
    ++c.total_retransmits;
    s.counters().inc(Counter::tcp_retransmits);
    s.send_segment(c, c.iss, 0, c.state == TcpState::syn_sent ? flag::syn : flag::syn | flag::ack,
                   now_ns);
    // RFC 6298 5.7: after a lost SYN the RTO for data starts at 3 s; we keep the backed-off value.
    s.arm_rexmt(c, now_ns);
    return;
  }
  if (c.backoff >= s.cfg_.max_retransmits) {
    s.counters().inc(Counter::tcp_timeout_drops);
    s.send_segment(c, c.snd.nxt, 0, flag::rst | flag::ack, now_ns);
    s.counters().inc(Counter::tcp_resets_sent);
    return s.drop(c, c.timeout_error());
  }
  // RFC 5681 eq. 4 on the first timeout of an episode, loss window after it;
  // RFC 6298 5.5-5.6: back off and resend from SND.UNA.
  if (c.backoff == 0 || c.in_recovery)
    c.cc->on_congestion(c.ccv, cc::Signal::rto, c.snd.max - c.snd.una, now_ns);
  else
    c.ccv.cwnd = c.ccv.mss;
  ++c.backoff;
  if (c.in_recovery) c.rack.on_recovery_exit();
  c.in_recovery = false;
  c.dupacks = 0;
  c.rtt_timing = false;
  if (c.sack_ok && c.synchronized()) {
    // RFC 8985 6.3: mark lost what was sent long enough ago (after an RTO: all of
    // it) and resend only that, in slow start: octets the peer SACKed are not sent
    // again. RFC 6675 5.1 lets the scoreboard be kept; a second timeout in a row
    // drops it, in case the receiver reneged on what it SACKed.
    if (c.backoff > 1) c.sack.clear();
    if (c.rack.empty() ? c.snd.una != c.snd.max
                       : c.rack.start() != c.snd.una || c.rack.end() != c.snd.max) {
      c.rack.clear();  // never expected: a log that lost track is restarted, all lost
      c.rack.on_sent(c.snd.una, c.snd.max, now_ns, c.sack);
    }
    c.rack.mark_lost_on_rto(c.sack, now_ns, c.srtt_ns);
    c.rto_recovery = true;
    c.recover = c.snd.max;
    c.snd.nxt = c.snd.max;  // a go-back in progress (PMTU) is replaced by this
    s.inst_.timers().cancel(c.reo_timer);
  } else {
    c.sack.clear();
    c.snd.nxt = c.snd.una;
  }
  s.arm_rexmt(c, now_ns);
  s.output(c, now_ns);
}

void TcpStack::reo_fired(engine::Timer&, void* ctx, uint64_t now_ns) {
  Tcb& c = *static_cast<Tcb*>(ctx);
  if (!c.sack_ok || !c.synchronized() || c.state == TcpState::time_wait) return;
  c.stack->sack_loss_detect(c, now_ns);
  c.stack->output(c, now_ns);
}

void TcpStack::delack_fired(engine::Timer&, void* ctx, uint64_t now_ns) {
  Tcb& c = *static_cast<Tcb*>(ctx);
  if (!c.synchronized() || c.state == TcpState::time_wait) return;
  c.stack->counters().inc(Counter::tcp_delayed_acks);
  c.stack->send_ack(c, now_ns);
}

void TcpStack::keepalive_fired(engine::Timer& t, void* ctx, uint64_t now_ns) {
  Tcb& c = *static_cast<Tcb*>(ctx);
  TcpStack& s = *c.stack;
  switch (c.state) {
    case TcpState::time_wait:
      return s.free_tcb(c);  // 2MSL over
    case TcpState::syn_received:
      s.counters().inc(Counter::tcp_attempt_fails);
      if (c.listener != nullptr) return s.free_tcb(c);
      return s.drop(c, c.timeout_error());
    case TcpState::fin_wait_2:
      if (c.app_closed) return s.drop(c, Errc::ok);  // the peer never sent its FIN
      break;
    case TcpState::syn_sent:  // connect()'s timeout
      s.counters().inc(Counter::tcp_attempt_fails);
      return s.drop(c, Errc::timed_out);
    default:
      break;
  }
  if (!c.keepalive || !c.synchronized()) return;
  uint64_t idle = now_ns - c.last_recv_ns;
  if (idle < s.keepalive_idle(c) && c.keepalive_probes == 0) {
    s.inst_.timers().schedule(t, c.last_recv_ns + s.keepalive_idle(c));
    return;
  }
  if (c.keepalive_probes >= s.keepalive_count(c)) {
    s.counters().inc(Counter::tcp_keepalive_drops);
    s.send_segment(c, c.snd.nxt, 0, flag::rst | flag::ack, now_ns);
    s.counters().inc(Counter::tcp_resets_sent);
    return s.drop(c, c.timeout_error());
  }
  // RFC 9293 3.8.4: a probe with SEG.SEQ = SND.NXT - 1 and no data.
  ++c.keepalive_probes;
  s.counters().inc(Counter::tcp_keepalive_probes);
  s.send_segment(c, c.snd.una - 1, 0, flag::ack, now_ns);
  s.inst_.timers().schedule(t, now_ns + s.keepalive_interval(c));
}

}  // namespace keel::tcp
