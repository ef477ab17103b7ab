// SPDX-License-Identifier: BSD-3-Clause
// The software dispatcher: a datagram received by an instance that does not own
// its flow (engine/flow_steering.hpp) is handed to the owner over the owner's
// incoming ring and processed there as if received; ARP is copied to every
// instance so that each ARP cache sees what the port saw.
//
// Rings: one MP/SC rte_ring per destination instance, not one SP/SC ring per
// pair. N rings instead of N*(N-1) (64 instances would need 4032 rings of
// 1024 slots), and the owner drains one ring per poll instead of N-1. Producers
// gather a burst per destination during the receive loop and enqueue it once
// per poll: one compare-and-swap on the ring's producer head per burst, never a
// lock, and only instances that forward to the same owner in the same moment
// ever retry it. A full ring drops the frame (steer_ring_full) rather than
// wait: the owner is behind, and TCP recovers from a loss.
//
// While a frame is on a ring, its mbuf's `port` field holds the interface index
// (the same on every instance) and the low bit of the pointer says what it is
// (mbufs are cache-line aligned): a datagram (data at the IPv4 header, already
// validated) or a copy of an ARP message (data at the ARP header).
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "engine/flow_steering.hpp"
#include "engine/instance.hpp"

namespace keel::engine {

namespace {
constexpr unsigned steer_drain_bursts = 4;
constexpr uintptr_t tag_mask = 1;
constexpr uintptr_t tag_datagram = 0, tag_arp_copy = 1;
static_assert(alignof(rte_mbuf) > tag_mask);

rte_mbuf* untag(void* item) {
  return reinterpret_cast<rte_mbuf*>(reinterpret_cast<uintptr_t>(item) & ~tag_mask);
}
uintptr_t tag_of(void* item) { return reinterpret_cast<uintptr_t>(item) & tag_mask; }
}  // namespace

void Instance::set_steering(const FlowSteering* table, std::vector<rte_ring*> rings) {
  steer_ = table;
  steer_rings_ = std::move(rings);
  steer_out_.assign(steer_rings_.size(), SteerBurst{});
}

bool Instance::owns_flow(net::Ipv4Addr src, net::Ipv4Addr dst, uint16_t sport, uint16_t dport) const {
  return steer_ == nullptr || steer_->owner(src, dst, sport, dport) == cfg_.id;
}

bool Instance::steer_away(rte_mbuf* m, Interface& ifc) {
  if (steer_ == nullptr) return false;
  uint16_t owner = steer_->owner_of(m);
  if (owner == cfg_.id) return false;
  steer_stage(owner, m, ifc, tag_datagram);
  return true;
}

void Instance::arp_replicate(const rte_mbuf* m, Interface& ifc) {
  if (steer_ == nullptr) return;
  for (uint16_t to = 0; to < steer_rings_.size(); ++to) {
    if (to == cfg_.id) continue;
    // A copy, not a reference: the receiver rewrites a request in place as its reply.
    rte_mbuf* c = rte_pktmbuf_copy(m, ifc.pool, 0, UINT32_MAX);
    if (c == nullptr) {
      counters_.inc(Counter::mbuf_alloc_failed);
      continue;
    }
    steer_stage(to, c, ifc, tag_arp_copy);
  }
}

void Instance::steer_stage(uint16_t to, rte_mbuf* m, Interface& ifc, uintptr_t kind) {
  m->port = ifc.index;
  SteerBurst& out = steer_out_[to];
  if (out.n == rx_burst) steer_flush_one(to);
  out.items[out.n++] = reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(m) | kind);
}

void Instance::steer_flush_one(uint16_t to) {
  SteerBurst& out = steer_out_[to];
  unsigned sent = rte_ring_mp_enqueue_burst(steer_rings_[to], out.items, out.n, nullptr);
  for (uint16_t i = 0; i < out.n; ++i) {
    bool arp = tag_of(out.items[i]) == tag_arp_copy;
    if (i < sent) {
      counters_.inc(arp ? Counter::steer_arp_copies : Counter::steer_forwarded);
    } else {
      counters_.inc(Counter::steer_ring_full);
      rte_pktmbuf_free(untag(out.items[i]));
    }
  }
  out.n = 0;
}

void Instance::steer_flush() {
  for (uint16_t to = 0; to < steer_out_.size(); ++to)
    if (steer_out_[to].n != 0) steer_flush_one(to);
}

unsigned Instance::steer_drain(uint64_t now_ns) {
  if (steer_ == nullptr) return 0;
  unsigned total = steer_drain_ring(steer_rings_[cfg_.id], now_ns);
  for (rte_ring* r : adopted_rings_) total += steer_drain_ring(r, now_ns);
  return total;
}

unsigned Instance::steer_drain_ring(rte_ring* ring, uint64_t now_ns) {
  // Up to a few bursts: one receiver may forward a whole RX burst per port per poll.
  unsigned total = 0;
  for (unsigned round = 0; round < steer_drain_bursts; ++round) {
    void* items[rx_burst];
    unsigned n = rte_ring_sc_dequeue_burst(ring, items, rx_burst, nullptr);
    for (unsigned i = 0; i < n; ++i) {
      rte_mbuf* m = untag(items[i]);
      Interface& ifc = *ifaces_[m->port];
      if (tag_of(items[i]) == tag_arp_copy) {
        arp_input(m, ifc, now_ns, /*from_port=*/false);
      } else {
        counters_.inc(Counter::steer_received);
        ip_accept(m, ifc, now_ns);
      }
    }
    total += n;
    if (n < rx_burst) break;
  }
  return total;
}

void Instance::adopt(rte_ring* steer_ring, std::vector<AdoptedQueue> queues) {
  if (steer_ring != nullptr) adopted_rings_.push_back(steer_ring);
  adopted_queues_.insert(adopted_queues_.end(), queues.begin(), queues.end());
}

unsigned Instance::poll_adopted(uint64_t now_ns) {
  unsigned work = 0;
  for (const AdoptedQueue& a : adopted_queues_) {
    Interface& ifc = *ifaces_[a.iface];
    const uint16_t port = ifc.queue.port_id();
    rte_mbuf* pkts[rx_burst];
    uint16_t n = rte_eth_rx_burst(port, a.queue, pkts, rx_burst);
    counters_.inc(Counter::mp_adopted_rx, n);
    for (uint16_t j = 0; j < n; ++j) input(pkts[j], ifc, now_ns);
    work += n;
    if (a.tx_inbox == nullptr) continue;
    // What queue-less instances still hand to the dead queue: this instance is its sender now.
    unsigned k = rte_ring_sc_dequeue_burst(a.tx_inbox, reinterpret_cast<void**>(pkts), rx_burst, nullptr);
    uint16_t sent = k ? rte_eth_tx_burst(port, a.queue, pkts, uint16_t(k)) : 0;
    counters_.inc(Counter::tx_packets, sent);
    if (sent < k) {
      counters_.inc(Counter::tx_dropped_queue_full, k - sent);
      rte_pktmbuf_free_bulk(pkts + sent, k - sent);
    }
    work += k;
  }
  return work;
}

void Instance::free_steered(rte_ring* ring) {
  void* item = nullptr;
  while (ring != nullptr && rte_ring_sc_dequeue(ring, &item) == 0) rte_pktmbuf_free(untag(item));
}

void Instance::steer_discard() {
  for (SteerBurst& out : steer_out_) {
    for (uint16_t i = 0; i < out.n; ++i) rte_pktmbuf_free(untag(out.items[i]));
    out.n = 0;
  }
}

}  // namespace keel::engine
