// SPDX-License-Identifier: BSD-3-Clause
// TCP support: the connection table, TCB lifetime, ISNs (RFC 6528), RTT
// estimation (RFC 6298), receive window, listeners, ephemeral ports, RST for
// segments that have no connection.
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <sys/random.h>

#include <stdexcept>

#include "engine/instance.hpp"
#include "engine/multiprocess.hpp"
#include "net/wire.hpp"
#include "tcp/seq.hpp"
#include "tcp/siphash.hpp"
#include "engine/multiprocess.hpp"
#include "tcp/tcp_stack.hpp"

namespace keel::tcp {

using engine::Counter;

const char* to_string(TcpState s) {
  switch (s) {
    case TcpState::closed: return "CLOSED";
    case TcpState::listen: return "LISTEN";
    case TcpState::syn_sent: return "SYN-SENT";
    case TcpState::syn_received: return "SYN-RECEIVED";
    case TcpState::established: return "ESTABLISHED";
    case TcpState::fin_wait_1: return "FIN-WAIT-1";
    case TcpState::fin_wait_2: return "FIN-WAIT-2";
    case TcpState::close_wait: return "CLOSE-WAIT";
    case TcpState::closing: return "CLOSING";
    case TcpState::last_ack: return "LAST-ACK";
    case TcpState::time_wait: return "TIME-WAIT";
  }
  return "?";
}

TcpStack::TcpStack(engine::Instance& inst, const TcpConfig& cfg)
    : inst_(inst),
      cfg_(cfg),
      slot_size_((sizeof(Tcb) + 63) / 64 * 64),
      rack_pool_(cfg.rack_logs, &inst.counters()),
      sack_pool_(cfg.sack_boards, &inst.counters()) {
  if (cfg_.cc == nullptr) cfg_.cc = &cc::cubic();
  std::string name = engine::mp::object_name("keel_tcp");
  rte_hash_parameters p{};
  p.name = name.c_str();
  p.entries = std::max<uint32_t>(cfg_.max_connections, 8);
  p.key_len = sizeof(ConnKey);
  p.hash_func = rte_hash_crc;  // SSE4.2/ARMv8 CRC32 where the CPU has it: cheaper than jhash
  p.socket_id = int(rte_socket_id());
  p.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
  table_ = rte_hash_create(&p);
  if (table_ == nullptr) throw std::runtime_error("TCP table: rte_hash_create failed");
  storage_ = std::make_unique<uint8_t[]>(slot_size_ * cfg_.max_connections);
  slot_gen_.assign(cfg_.max_connections, 0);
  free_slots_.reserve(cfg_.max_connections);
  for (uint32_t i = cfg_.max_connections; i-- > 0;) free_slots_.push_back(i);
  tw_order_.assign(cfg_.max_connections, 0);
  ooo_pool_.reserve(cfg_.ooo_queues);
  for (uint32_t i = 0; i < cfg_.ooo_queues; ++i) {
    ooo_pool_.push_back(std::make_unique<ReassemblyQueue>(cfg_.rcv_buf, cfg_.ooo_max_segments));
    ooo_free_.push_back(ooo_pool_.back().get());
  }
  if (getrandom(secret_, sizeof secret_, 0) != ssize_t(sizeof secret_))
    throw std::runtime_error("TCP: getrandom failed for the ISN key");
  uint16_t r;
  std::memcpy(&r, secret_, sizeof r);
  next_ephemeral_ = uint16_t(32768 + r % 28232);
  inst_.register_protocol(net::ipproto_tcp, this);
}

TcpStack::~TcpStack() {
  inst_.register_protocol(net::ipproto_tcp, nullptr);
  for (uint32_t i = 0; i < cfg_.max_connections; ++i)
    if (slot_used(i)) {
      Tcb& c = *tcb_at(i);
      c.handler = nullptr;  // the application is going away with us
      free_tcb(c);
    }
  rte_hash_free(table_);
}

Tcb* TcpStack::lookup(const ConnKey& k) {
  void* data = nullptr;
  if (rte_hash_lookup_data(table_, &k, &data) < 0) return nullptr;
  return static_cast<Tcb*>(data);
}

Tcb* TcpStack::alloc_tcb(const ConnKey& k) {
  if (free_slots_.empty() && !recycle_time_wait()) {
    counters().inc(Counter::tcp_conn_table_full);
    return nullptr;
  }
  uint32_t i = free_slots_.back();
  Tcb* c = new (tcb_at(i)) Tcb();
  c->key = k;
  c->index = i;
  c->stack = this;
  c->rack.set_pool(&rack_pool_);
  c->sack.set_pool(&sack_pool_);
  if (rte_hash_add_key_data(table_, &k, c) < 0) {
    c->~Tcb();
    counters().inc(Counter::tcp_conn_table_full);
    return nullptr;
  }
  free_slots_.pop_back();
  ++slot_gen_[i];  // odd: in use
  ++used_;
  c->rexmt_timer.set_callback(&TcpStack::rexmt_fired, c);
  c->delack_timer.set_callback(&TcpStack::delack_fired, c);
  c->keepalive_timer.set_callback(&TcpStack::keepalive_fired, c);
  return c;
}

void TcpStack::note_time_wait(const Tcb& c, uint32_t gen) {
  const size_t cap = tw_order_.size();
  auto stale = [&](uint64_t e) { return slot_gen_[uint32_t(e >> 32)] != uint32_t(e); };
  // With one MSL, entries leave in the order they came: drop the stale ones
  // at the front, so the ring holds about the connections in TIME-WAIT.
  while (tw_count_ != 0 && stale(tw_order_[tw_head_])) {
    tw_head_ = (tw_head_ + 1) % cap;
    --tw_count_;
  }
  if (tw_count_ == cap) {
    // Stale entries behind a live one (a RST or a SYN ended some early, or the
    // MSL was shortened): forget the oldest, which then just waits out 2 MSL.
    tw_head_ = (tw_head_ + 1) % cap;
    --tw_count_;
  }
  tw_order_[(tw_head_ + tw_count_) % cap] = uint64_t(slot_of(c)) << 32 | gen;
  ++tw_count_;
}

bool TcpStack::recycle_time_wait() {
  // COMPAT(freebsd): tcp_tw_2msl_scan(reuse) under pressure. A TIME-WAIT TCB
  // only absorbs old duplicates of a connection that is over; when the table
  // is full of them, the one that has waited longest (the least likely to
  // still meet a duplicate) gives way, rather than refusing every new
  // connection until 2 MSL pass (16,384 TCBs / 60 s = 273 connections/s).
  const size_t cap = tw_order_.size();
  while (tw_count_ != 0) {
    uint64_t e = tw_order_[tw_head_];
    tw_head_ = (tw_head_ + 1) % cap;
    --tw_count_;
    uint32_t slot = uint32_t(e >> 32);
    if (slot_gen_[slot] != uint32_t(e)) continue;  // stale
    counters().inc(Counter::tcp_timewait_recycled);
    free_tcb(*tcb_at(slot));
    return true;
  }
  return false;
}

void TcpStack::free_tcb(Tcb& c) {
  auto& t = inst_.timers();
  t.cancel(c.rexmt_timer);
  t.cancel(c.delack_timer);
  t.cancel(c.keepalive_timer);
  if (c.listener != nullptr) {
    --c.listener->syn_queued;
    c.listener = nullptr;
  }
  return_ooo(c);
  rte_hash_del_key(table_, &c.key);
  uint32_t i = c.index;
  c.~Tcb();  // frees the send and receive queues' mbufs
  ++slot_gen_[i];  // even: free
  free_slots_.push_back(i);
  --used_;
}

void TcpStack::drop(Tcb& c, Errc reason) {
  set_state(c, TcpState::closed);
  ConnHandler* h = c.handler;
  c.handler = nullptr;
  if (h != nullptr) h->on_closed(c, reason);
  free_tcb(c);
}

ReassemblyQueue* TcpStack::borrow_ooo() {
  if (ooo_free_.empty()) return nullptr;
  ReassemblyQueue* q = ooo_free_.back();
  ooo_free_.pop_back();
  return q;
}

void TcpStack::return_ooo(Tcb& c) {
  if (c.ooo == nullptr) return;
  c.ooo->clear();
  ooo_free_.push_back(c.ooo);
  c.ooo = nullptr;
}

void TcpStack::set_state(Tcb& c, TcpState s) { c.state = s; }

uint32_t TcpStack::isn(const ConnKey& k, uint64_t now_ns) const {
  // RFC 6528: ISN = M + F(4-tuple, secret), M a 4 us clock.
  return uint32_t(now_ns / 4000) + uint32_t(siphash24(secret_, &k, sizeof k));
}

uint16_t TcpStack::mss_for(net::Ipv4Addr dst) const {
  auto rt = inst_.route(dst);
  uint16_t mtu = rt ? rt->iface->mtu : 576;
  return uint16_t(mtu - net::ipv4_min_header_len - net::tcp_min_header_len);
}

uint32_t TcpStack::rcv_window(const Tcb& c) const {
  uint32_t used = c.rcvq.size() + (c.ooo ? c.ooo->bytes() : 0) + c.app_held;
  uint32_t space = used >= c.rcv_buf ? 0 : c.rcv_buf - used;
  // Largest advertisable window with our scale.
  uint32_t max = uint32_t(0xffff) << c.rcv.wscale;
  return std::min(space, max);
}

void TcpStack::update_rtt(Tcb& c, uint64_t r) {
  // RFC 6298 2.2 / 2.3 with alpha = 1/8, beta = 1/4, G ~ 1 ms tick.
  if (c.srtt_ns == 0) {
    c.srtt_ns = r;
    c.rttvar_ns = r / 2;
  } else {
    uint64_t diff = c.srtt_ns > r ? c.srtt_ns - r : r - c.srtt_ns;
    c.rttvar_ns = (3 * c.rttvar_ns + diff) / 4;
    c.srtt_ns = (7 * c.srtt_ns + r) / 8;
  }
  uint64_t rto = c.srtt_ns + std::max<uint64_t>(1'000'000, 4 * c.rttvar_ns);
  c.rto_ns = std::clamp(rto, cfg_.min_rto_ns, cfg_.max_rto_ns);  // 2.4, 2.5
}

Listener* TcpStack::find_listener(net::Ipv4Addr addr, uint16_t port) {
  Listener* wildcard = nullptr;
  for (auto& l : listeners_) {
    if (l->port != port) continue;
    if (l->addr == addr) return l.get();
    if (l->addr.is_any()) wildcard = l.get();
  }
  return wildcard;
}

uint16_t TcpStack::pick_ephemeral_port(net::Ipv4Addr src, net::Ipv4Addr dst, uint16_t dport) {
  // RFC 6056 algorithm 1 style: walk the range from a random start, skip ports in use
  // and ports whose flow another instance owns (its packets would be steered there;
  // with N instances about one candidate in N is ours).
  for (uint32_t tries = 0; tries < 28232; ++tries) {
    uint16_t p = next_ephemeral_;
    next_ephemeral_ = uint16_t(next_ephemeral_ >= 60999 ? 32768 : next_ephemeral_ + 1);
    if (!inst_.owns_flow(src, dst, p, dport)) continue;
    ConnKey k{src.v, dst.v, p, dport};
    if (lookup(k) == nullptr && find_listener(src, p) == nullptr) return p;
  }
  return 0;
}

void TcpStack::send_rst_for(const TcpSegment& seg, const engine::Ipv4Meta& ip, uint32_t payload_len,
                            uint64_t now_ns) {
  // RFC 9293 3.10.7.1: never answer a RST; if the segment had an ACK, RST with
  // seq = SEG.ACK; else seq 0 and ACK = SEG.SEQ + SEG.LEN.
  if (seg.has(flag::rst)) return;
  if (ip.dst.is_broadcast() || ip.dst.is_multicast()) return;
  rte_mbuf* m = rte_pktmbuf_alloc(inst_.interfaces()[ip.iface]->pool);
  if (m == nullptr) {
    counters().inc(Counter::mbuf_alloc_failed);
    return;
  }
  TcpSegment r;
  r.src_port = seg.dst_port;
  r.dst_port = seg.src_port;
  if (seg.has(flag::ack)) {
    r.seq = seg.ack;
    r.flags = flag::rst;
  } else {
    r.seq = 0;
    r.ack = seg.seq + payload_len + (seg.has(flag::syn) ? 1 : 0) + (seg.has(flag::fin) ? 1 : 0);
    r.flags = flag::rst | flag::ack;
  }
  auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, uint16_t(net::tcp_min_header_len)));
  emit_tcp(p, r);
  engine::IpSend s;
  s.dst = ip.src;
  s.src = ip.dst;
  s.protocol = net::ipproto_tcp;
  s.l4 = engine::L4Checksum::tcp;
  counters().inc(Counter::tcp_resets_sent);
  counters().inc(Counter::tcp_segs_out);
  (void)inst_.ip_output(m, s, now_ns);
}

ConnInfo TcpStack::info(const Tcb& c) const {
  ConnInfo i{};
  i.key = c.key;
  i.state = c.state;
  i.cwnd = c.ccv.cwnd;
  i.ssthresh = c.ccv.ssthresh;
  i.mss = c.mss;
  i.srtt_us = c.srtt_ns / 1000;
  i.rttvar_us = c.rttvar_ns / 1000;
  i.rto_us = c.rto_ns / 1000;
  i.retransmits = c.retransmits;
  i.total_retransmits = c.total_retransmits;
  i.sacked_bytes = c.sack.sacked_bytes();
  i.snd_queue = c.sndq.size();
  i.rcv_queue = c.rcvq.size();
  i.unacked = c.snd.nxt - c.snd.una;
  i.snd_wnd = c.snd.wnd;
  i.rcv_wnd = c.rcv.wnd;
  i.cc = c.cc ? c.cc->name() : "-";
  i.bytes_acked = c.bytes_acked;
  i.bytes_received = c.bytes_received;
  return i;
}

}  // namespace keel::tcp
