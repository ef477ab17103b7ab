// SPDX-License-Identifier: BSD-3-Clause
// TCP output: decide what to send (window, congestion window, Nagle, SWS,
// loss recovery), build segments over the send queue's mbufs (zero copy), and
// hand them to IPv4.
#include <rte_mbuf.h>

#include "engine/instance.hpp"
#include "net/wire.hpp"
#include "tcp/seq.hpp"
#include "tcp/tcp_stack.hpp"

namespace keel::tcp {

using engine::Counter;

namespace {
// Tail loss probes before the RTO without news from the receiver (see arm_rexmt_or_probe).
constexpr uint8_t tlp_max_probes = 2;
// End of queued data in sequence space.
uint32_t data_end(const Tcb& c) { return c.snd.una + c.sndq.size(); }
}  // namespace

void TcpStack::arm_rexmt(Tcb& c, uint64_t now_ns) {
  c.persisting = false;
  c.tlp_pending = false;
  uint64_t rto = c.rto_ns << std::min<uint8_t>(c.backoff, 16);
  inst_.timers().schedule(c.rexmt_timer, now_ns + std::min(rto, cfg_.max_rto_ns));
}

void TcpStack::arm_rexmt_or_probe(Tcb& c, uint64_t now_ns) {
  // RFC 8985 7.2: PTO = 2 * SRTT, plus the peer's delayed-ACK allowance when
  // only one segment is out; only with SACK. Two departures from RFC 8985 (and
  // Linux), both for paths that lose ACKs as well as data:
  //  - also in recovery: a receiver that compresses its SACKs (Linux does after
  //    three duplicate ACKs) may send one ACK for many segments, and when that
  //    one is lost, or a resend is lost with nothing sent after it for RACK to
  //    see, nothing else would come before the RTO;
  //  - a second probe when the first drew no answer: it, or the ACK it drew, may
  //    have been lost too, or the receiver delays that ACK (new data in order;
  //    Linux's delayed-ACK timeout grows towards 200 ms on a sparse flow). The
  //    second probe resends data, which any receiver that has it ACKs at once.
  // A probe costs a segment and draws an ACK carrying the receiver's state.
  if (c.sack_ok && c.tlp_sent < tlp_max_probes && c.srtt_ns != 0 &&
      (c.state == TcpState::established || c.state == TcpState::close_wait)) {
    // 2 ms over 2 * SRTT (Linux: two jiffies) for the timer wheel's 1 ms tick
    // and short ACK delays (SACK compression waits at most 1 ms); at least 10 ms:
    // SRTT from millisecond timestamps is coarse on a fast path, and a probe that
    // beats an ACK delayed by a busy host is wasted.
    uint64_t pto = std::max<uint64_t>(2 * c.srtt_ns + 2'000'000, 10'000'000);
    if (c.snd.max - c.snd.una <= c.mss) pto += cfg_.delack_ns;
    uint64_t rto = c.rto_ns << std::min<uint8_t>(c.backoff, 16);
    if (pto < rto) {
      c.persisting = false;
      c.tlp_pending = true;
      inst_.timers().schedule(c.rexmt_timer, now_ns + pto);
      return;
    }
  }
  arm_rexmt(c, now_ns);
}

void TcpStack::send_tail_probe(Tcb& c, uint64_t now_ns) {
  // RFC 8985 7.3: send new data if the windows allow, else the last segment
  // again, so that the ACK it draws shows the receiver's holes (SACK).
  c.tlp_pending = false;
  bool first = c.tlp_sent++ == 0;
  counters().inc(engine::Counter::tcp_tail_probes);
  uint32_t end = data_end(c);
  uint32_t unsent = seq_gt(end, c.snd.nxt) ? end - c.snd.nxt : 0;
  uint32_t max_before = c.snd.max;
  // New data goes whatever cwnd and Nagle say (the probe is one segment more).
  if (first && unsent > 0 && c.snd.nxt == c.snd.max && c.snd.wnd > c.snd.max - c.snd.una)
    output(c, now_ns, true);
  if (c.snd.max == max_before) {
    // Else (and always for a second probe) the highest segment the receiver
    // has not SACKed (a SACKed one would only draw a D-SACK).
    SackBlock b = c.rack.last_unsacked(c.sack, c.mss);
    if (b.left != b.right) send_lost(c, b, now_ns);
  }
  arm_rexmt_or_probe(c, now_ns);  // the second probe, or the RTO
}

void TcpStack::send_segment(Tcb& c, uint32_t seq, uint32_t len, uint8_t flags, uint64_t now_ns) {
  engine::Interface& ifc0 = *inst_.interfaces().front();
  rte_mbuf* m = rte_pktmbuf_alloc(ifc0.pool);
  if (m == nullptr) {
    counters().inc(Counter::mbuf_alloc_failed);
    return;
  }
  TcpSegment s;
  s.src_port = c.key.local_port;
  s.dst_port = c.key.remote_port;
  s.seq = seq;
  s.flags = flags;
  bool syn = flags & flag::syn;
  if (c.state != TcpState::syn_sent || (flags & flag::ack)) {
    s.flags |= flag::ack;
    s.ack = c.rcv.nxt;
  }
  TcpOptions& o = s.opt;
  if (syn) {
    o.mss = mss_for(net::Ipv4Addr{c.key.remote_ip});
    // On a SYN-ACK, offer only what the peer offered (RFC 7323 1.3, RFC 2018).
    bool active = c.state == TcpState::syn_sent;
    if (cfg_.window_scaling && (active || c.ws_ok)) o.wscale = int8_t(c.rcv.wscale);
    if (cfg_.sack && (active || c.sack_ok)) o.sack_permitted = true;
    if (cfg_.timestamps && (active || c.ts_ok)) {
      o.has_timestamp = true;
      o.tsval = ts_now(now_ns);
      // A SYN cookie's SYN-ACK carries window scale and SACK in its low bits.
      if (cookie_ts_bits_ != UINT32_MAX) o.tsval = (o.tsval & ~0x3fu) | cookie_ts_bits_;
      o.tsecr = c.ts_recent;
    }
  } else {
    if (c.ts_ok) {
      o.has_timestamp = true;
      o.tsval = ts_now(now_ns);
      o.tsecr = c.ts_recent;
    }
    if (c.sack_ok && c.ooo != nullptr && !c.ooo->empty())
      o.sack_count = uint8_t(c.ooo->sack_blocks(o.sack, o.has_timestamp ? 3 : 4));
  }
  // Receive window: never move the right edge left (RFC 9293 3.8.6.2.2); avoid
  // advertising small increases (receiver SWS avoidance, 3.8.6.2.2 too).
  uint32_t wnd = rcv_window(c);
  uint32_t right = c.rcv.nxt + wnd;
  if (seq_lt(right, c.rcv.adv)) right = c.rcv.adv;
  else if (seq_lt(right, c.rcv.adv + std::min<uint32_t>(c.rcv_buf / 2, c.mss)) &&
           seq_gt(c.rcv.adv, c.rcv.nxt))
    right = c.rcv.adv;
  c.rcv.adv = right;
  c.rcv.wnd = right - c.rcv.nxt;
  uint32_t field = syn ? std::min<uint32_t>(c.rcv.wnd, 0xffff) : c.rcv.wnd >> c.rcv.wscale;
  s.window = uint16_t(std::min<uint32_t>(field, 0xffff));

  // SACK blocks ride only where they fit: a full-sized segment has room for
  // the timestamp alone (the MSS was cut for it), so data never grows past the MTU.
  size_t room = size_t(mss_for(net::Ipv4Addr{c.key.remote_ip})) + net::tcp_min_header_len;
  while (o.sack_count > 0 && net::tcp_min_header_len + o.wire_len() + len > room) --o.sack_count;
  size_t hlen = net::tcp_min_header_len + o.wire_len();
  auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, uint16_t(hlen)));
  emit_tcp(p, s);
  if (len > 0) {
    rte_mbuf* data = c.sndq.slice(seq - c.snd.una, len, ifc0.pool);
    if (data == nullptr || rte_pktmbuf_chain(m, data) != 0) {
      counters().inc(Counter::mbuf_alloc_failed);
      rte_pktmbuf_free(data);
      rte_pktmbuf_free(m);
      return;
    }
  }
  engine::IpSend ip;
  ip.dst = net::Ipv4Addr{c.key.remote_ip};
  ip.src = net::Ipv4Addr{c.key.local_ip};
  ip.protocol = net::ipproto_tcp;
  ip.l4 = engine::L4Checksum::tcp;
  counters().inc(Counter::tcp_segs_out);
  c.last_ack_sent = c.rcv.nxt;
  c.ack_now = false;
  c.delack_segs = 0;
  inst_.timers().cancel(c.delack_timer);
  c.last_send_ns = now_ns;
  (void)inst_.ip_output(m, ip, now_ns);
}

// A pure ACK carries SND.MAX, not SND.NXT (as FreeBSD does): during a go-back SND.NXT lies below
// the peer's RCV.NXT, the peer would find the ACK unacceptable and ignore it (twostack deadlock).
void TcpStack::send_ack(Tcb& c, uint64_t now_ns) { send_segment(c, c.snd.max, 0, flag::ack, now_ns); }

void TcpStack::send_lost(Tcb& c, SackBlock b, uint64_t now_ns) {
  uint32_t end = data_end(c);
  uint32_t dlen = seq_lt(b.left, end) ? std::min(b.right - b.left, end - b.left) : 0;
  uint8_t fl = flag::ack;
  if (dlen > 0 && b.left + dlen == end) fl |= flag::psh;
  if (c.fin_sent && b.left + dlen == c.fin_seq && seq_gt(b.right, c.fin_seq)) fl |= flag::fin;
  send_segment(c, b.left, dlen, fl, now_ns);
  c.rack.on_resent(b.left, b.right, now_ns, c.sack);
  ++c.retransmits, ++c.total_retransmits;
  counters().inc(Counter::tcp_retransmits);
}

void TcpStack::output(Tcb& c, uint64_t now_ns, bool probe) {
  if (!c.synchronized() || c.state == TcpState::time_wait) {
    if (c.ack_now && c.state == TcpState::time_wait) send_ack(c, now_ns);
    return;
  }
  // RFC 5681 4.1: after an idle period longer than the RTO, restart from the initial window.
  if (c.snd.nxt == c.snd.una && c.last_send_ns != 0 && c.rto_ns != 0 &&
      now_ns - c.last_send_ns > c.rto_ns)
    c.cc->after_idle(c.ccv, now_ns);

  bool sent = false;
  uint32_t mss = c.mss;
  // With SACK, cwnd limits the pipe (RFC 6675 SetPipe, with RACK's loss marks)
  // in and out of recovery, as in Linux: SACKed octets make room (a
  // generalised RFC 3042 limited transmit). Not during a go-back after a PMTU
  // drop, which resends from SND.NXT < SND.MAX.
  bool by_pipe = c.sack_ok && c.snd.nxt == c.snd.max;
  uint32_t pipe = 0;
  if (by_pipe) {
    // NextSeg rule 1 (RFC 6675 5, RFC 8985): what is deemed lost goes first.
    pipe = c.rack.pipe(c.sack);
    while (pipe < c.ccv.cwnd) {
      SackBlock lost = c.rack.next_lost(c.sack, mss);
      if (lost.right == lost.left) break;
      send_lost(c, lost, now_ns);
      pipe += lost.right - lost.left;
      sent = true;
    }
    if (sent && !c.rexmt_timer.armed()) arm_rexmt(c, now_ns);
  }

  for (bool first = true;; first = false) {
    uint32_t off = c.snd.nxt - c.snd.una;
    uint32_t avail = off <= c.sndq.size() ? c.sndq.size() - off : 0;
    uint32_t in_flight = c.snd.nxt - c.snd.una;
    uint32_t cwnd = c.ccv.cwnd;
    if (c.in_recovery && !c.sack_ok) cwnd += uint32_t(c.dupacks) * mss;  // RFC 6582 inflation
    uint32_t usable;
    if (by_pipe) {
      uint32_t rwnd_room = c.snd.wnd > in_flight ? c.snd.wnd - in_flight : 0;
      uint32_t cwnd_room = cwnd > pipe ? cwnd - pipe : 0;
      if (probe && first) cwnd_room = std::max<uint32_t>(cwnd_room, mss);  // RFC 8985 7.3
      usable = std::min(rwnd_room, cwnd_room);
    } else {
      uint32_t wnd = std::min(c.snd.wnd, cwnd);
      usable = wnd > in_flight ? wnd - in_flight : 0;
    }
    if (probe && !first) break;
    uint32_t len = std::min({avail, uint32_t(mss), usable});
    // FIN rides on the segment that ends the data (again after a go-back).
    bool fin_due = c.fin_queued && c.snd.nxt + len == data_end(c) &&
                   (!c.fin_sent || c.snd.nxt + len == c.fin_seq);
    if (len > 0) {
      bool full = len == mss;
      bool all = len == avail;
      // Nagle (RFC 9293 3.7.4): a short segment waits while data is in flight.
      bool nagle_ok = c.nodelay || in_flight == 0 || fin_due || probe;
      bool sws_ok = c.snd.max_wnd > 0 && len >= c.snd.max_wnd / 2;
      if (!(full || (all && nagle_ok) || sws_ok)) len = 0;
    }
    if (len == 0 && !fin_due) break;
    uint8_t fl = flag::ack;
    if (len > 0 && len == avail) fl |= flag::psh;
    if (fin_due) fl |= flag::fin;
    uint32_t seq = c.snd.nxt;
    bool rexmit = seq_lt(seq, c.snd.max);
    send_segment(c, seq, len, fl, now_ns);
    if (c.sack_ok) {
      // The log covers [SND.UNA, SND.MAX); a FIN takes one octet of it.
      uint32_t seg_end = seq + len + (fin_due ? 1 : 0);
      if (rexmit) c.rack.on_resent(seq, seq_min(seg_end, c.snd.max), now_ns, c.sack);
      if (seq_gt(seg_end, c.snd.max)) c.rack.on_sent(seq_max(seq, c.snd.max), seg_end, now_ns, c.sack);
      pipe += seg_end - seq;
    }
    if (fin_due && !c.fin_sent) {
      c.fin_sent = true;
      c.fin_seq = seq + len;
      if (c.state == TcpState::established) set_state(c, TcpState::fin_wait_1);
      else if (c.state == TcpState::close_wait) set_state(c, TcpState::last_ack);
    }
    c.snd.nxt = seq + len + (fin_due ? 1 : 0);
    if (seq_gt(c.snd.nxt, c.snd.max)) c.snd.max = c.snd.nxt;
    if (rexmit) {
      ++c.retransmits, ++c.total_retransmits;
      counters().inc(Counter::tcp_retransmits);
    } else if (!c.rtt_timing && !c.ts_ok) {
      c.rtt_timing = true;  // Karn: time only new data
      c.rtt_seq = seq;
      c.rtt_start_ns = now_ns;
    }
    if (!c.rexmt_timer.armed() || c.persisting || c.tlp_pending) arm_rexmt_or_probe(c, now_ns);
    sent = true;
    if (fin_due) break;
  }
  // Data waiting and nothing in flight, so no ACK will come to send it: a zero
  // window (probe it), or one too small for sender SWS avoidance, whose
  // override timeout this timer is (RFC 9293 3.8.6.2.1; BSD and Linux alike).
  uint32_t off = c.snd.nxt - c.snd.una;
  if (off < c.sndq.size() && c.snd.nxt == c.snd.una && !c.rexmt_timer.armed()) {
    c.persisting = true;
    if (c.persist_backoff_ns == 0) c.persist_backoff_ns = std::max(c.rto_ns, cfg_.min_rto_ns);
    inst_.timers().schedule(c.rexmt_timer, now_ns + c.persist_backoff_ns);
  }
  if (!sent && c.ack_now) send_ack(c, now_ns);
}

}  // namespace keel::tcp
