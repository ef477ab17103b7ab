// SPDX-License-Identifier: BSD-3-Clause
#include "drivers/port_queue.hpp"

#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <algorithm>

#include "drivers/fault_injector.hpp"

namespace keel::drivers {

using engine::Counter;

PortQueue::PortQueue(uint16_t port_id, uint16_t queue_id, engine::Counters& counters)
    : port_id_(port_id), queue_id_(queue_id), counters_(&counters) {
  if (unmap_guard::needed(port_id)) guard_ = unmap_guard::acquire();
}

PortQueue::~PortQueue() {
  discard();
  unmap_guard::release(guard_);
}

PortQueue::PortQueue(PortQueue&& o) noexcept
    : port_id_(o.port_id_),
      queue_id_(o.queue_id_),
      counters_(o.counters_),
      tx_len_(o.tx_len_),
      tx_buf_(o.tx_buf_),
      backlog_(std::move(o.backlog_)),
      bl_head_(o.bl_head_),
      bl_len_(o.bl_len_),
      rx_fault_(std::move(o.rx_fault_)),
      tx_fault_(std::move(o.tx_fault_)),
      tx_handoff_(o.tx_handoff_),
      tx_inbox_(o.tx_inbox_),
      guard_(o.guard_) {
  o.tx_len_ = 0;
  o.bl_len_ = 0;
  o.guard_ = nullptr;
}

void PortQueue::set_faults(const FaultConfig* rx, const FaultConfig* tx) {
  rx_fault_ = rx && rx->enabled() ? std::make_unique<FaultInjector>(*rx, *counters_) : nullptr;
  tx_fault_ = tx && tx->enabled() ? std::make_unique<FaultInjector>(*tx, *counters_) : nullptr;
}

uint16_t PortQueue::rx(rte_mbuf** pkts, uint16_t n, uint64_t now_ns) {
  if (tx_handoff_ != nullptr) return 0;  // the queue is another instance's: receive nothing
  if (!rx_fault_)
    return unmap_guard::marked(guard_, [&] { return rte_eth_rx_burst(port_id_, queue_id_, pkts, n); });
  rte_mbuf* raw[burst];
  const uint16_t want = std::min<uint16_t>(n, burst);
  uint16_t got =
      unmap_guard::marked(guard_, [&] { return rte_eth_rx_burst(port_id_, queue_id_, raw, want); });
  uint16_t out = rx_fault_->process(raw, got, pkts, n, now_ns);
  if (out < n) out += rx_fault_->drain(pkts + out, uint16_t(n - out), now_ns);
  return out;
}

void PortQueue::send(rte_mbuf* m, uint64_t now_ns) {
  if (tx_len_ == burst) flush(now_ns);
  tx_buf_[tx_len_++] = m;
}

void PortQueue::flush(uint64_t now_ns) {
  if (tx_fault_) {
    rte_mbuf* out[burst * 2];
    uint16_t n = tx_fault_->process(tx_buf_.data(), tx_len_, out, burst * 2, now_ns);
    tx_len_ = 0;
    if (n < burst * 2) n += tx_fault_->drain(out + n, uint16_t(burst * 2 - n), now_ns);
    transmit(out, n);
  } else {
    transmit(tx_buf_.data(), tx_len_);
    tx_len_ = 0;
  }
  if (tx_inbox_ != nullptr) drain_inbox();
}

void PortQueue::drain_inbox() {
  // Stop once the port pushes back: the rest waits in the ring (their senders
  // see it fill and hold or drop, counted on their side).
  while (bl_len_ == 0) {
    rte_mbuf* in[burst];
    unsigned k = rte_ring_sc_dequeue_burst(tx_inbox_, reinterpret_cast<void**>(in), burst, nullptr);
    if (k == 0) return;
    transmit(in, uint16_t(k));
  }
}

uint16_t PortQueue::burst_out(rte_mbuf** pkts, uint16_t n) {
  // Byte count first: once the port has a frame, it may already be gone.
  if (tx_handoff_ != nullptr) {
    uint16_t handed =
        uint16_t(rte_ring_mp_enqueue_burst(tx_handoff_, reinterpret_cast<void**>(pkts), n, nullptr));
    counters_->inc(Counter::steer_tx_handoff, handed);
    return handed;
  }
  uint64_t bytes = 0;
  for (uint16_t i = 0; i < n; ++i) bytes += pkts[i]->pkt_len;
  uint16_t sent =
      unmap_guard::marked(guard_, [&] { return rte_eth_tx_burst(port_id_, queue_id_, pkts, n); });
  for (uint16_t i = sent; i < n; ++i) bytes -= pkts[i]->pkt_len;
  counters_->inc(Counter::tx_packets, sent);
  counters_->inc(Counter::tx_bytes, bytes);
  return sent;
}

void PortQueue::drain_backlog() {
  while (bl_len_ > 0) {
    uint32_t k = std::min<uint32_t>({bl_len_, backlog_max - bl_head_, 0xffff});
    uint16_t s = burst_out(&backlog_[bl_head_], uint16_t(k));
    bl_head_ = (bl_head_ + s) % backlog_max;
    bl_len_ -= s;
    if (s < k) return;
  }
  bl_head_ = 0;
}

void PortQueue::transmit(rte_mbuf** pkts, uint16_t n) {
  if (bl_len_ > 0) drain_backlog();  // frames from before go first: order is kept
  uint16_t sent = bl_len_ == 0 && n > 0 ? burst_out(pkts, n) : 0;
  if (sent == n) return;
  if (!backlog_) backlog_ = std::make_unique<rte_mbuf*[]>(backlog_max);
  uint16_t keep = uint16_t(std::min<uint32_t>(n - sent, backlog_max - bl_len_));
  for (uint16_t i = 0; i < keep; ++i) backlog_push(pkts[sent + i]);
  counters_->inc(Counter::tx_retries, keep);
  uint16_t rest = uint16_t(n - sent - keep);
  if (rest > 0) {
    counters_->inc(Counter::tx_dropped_queue_full, rest);
    rte_pktmbuf_free_bulk(pkts + sent + keep, rest);
  }
}

size_t PortQueue::pending() const {
  return tx_len_ + bl_len_ + (rx_fault_ ? rx_fault_->held() : 0) + (tx_fault_ ? tx_fault_->held() : 0);
}

uint64_t PortQueue::next_due_ns() const {
  if (bl_len_ > 0) return 0;  // the backlog goes as soon as the ring has room
  if (tx_inbox_ != nullptr && rte_ring_count(tx_inbox_) != 0) return 0;
  uint64_t t = UINT64_MAX;
  if (rx_fault_) t = std::min(t, rx_fault_->next_due_ns());
  if (tx_fault_) t = std::min(t, tx_fault_->next_due_ns());
  return t;
}

void PortQueue::discard() {
  if (tx_len_) rte_pktmbuf_free_bulk(tx_buf_.data(), tx_len_);
  tx_len_ = 0;
  for (; bl_len_ > 0; --bl_len_, bl_head_ = (bl_head_ + 1) % backlog_max)
    rte_pktmbuf_free(backlog_[bl_head_]);
  bl_head_ = 0;
  rx_fault_.reset();
  tx_fault_.reset();
}

}  // namespace keel::drivers
