// SPDX-License-Identifier: BSD-3-Clause
// ARP (RFC 826): answer requests for our addresses, learn neighbours, resolve
// next hops with a bounded wait queue, refresh expired entries, give up after
// max_probes unanswered requests.
#include <rte_mbuf.h>

#include "engine/instance.hpp"
#include "engine/mbuf_util.hpp"
#include "net/wire.hpp"

namespace keel::engine {

using net::ArpEntry;
using net::Ipv4Addr;
using net::MacAddr;

namespace {
void fill_dst_mac(rte_mbuf* m, MacAddr mac) { mac.to_bytes(rte_pktmbuf_mtod(m, uint8_t*)); }
}  // namespace

void Instance::send_ether(Interface& ifc, rte_mbuf* m, MacAddr dst, uint16_t ethertype,
                          uint64_t now_ns) {
  auto* e = reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(m, net::eth_header_len));
  if (e == nullptr) {
    counters_.inc(Counter::mbuf_alloc_failed);
    rte_pktmbuf_free(m);
    return;
  }
  net::EthernetView::emit(e, dst, ifc.mac, ethertype);
  if (m->nb_segs > 1 && !ifc.caps.tx_multi_seg && rte_pktmbuf_linearize(m) != 0) {
    counters_.inc(Counter::mbuf_alloc_failed);
    rte_pktmbuf_free(m);
    return;
  }
  ifc.queue.send(m, now_ns);
}

void Instance::send_arp_request(Interface& ifc, Ipv4Addr target, MacAddr dst_mac,
                                uint64_t now_ns) {
  rte_mbuf* m = rte_pktmbuf_alloc(ifc.pool);
  if (m == nullptr) {
    counters_.inc(Counter::mbuf_alloc_failed);
    return;
  }
  auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, net::arp_len));
  net::ArpRepr req;
  req.oper = net::arp_request;
  req.sha = ifc.mac;
  // A gratuitous announcement names our address as both sender and target.
  req.spa = ifc.owns(target) ? target : ifc.source_for(target);
  req.tha = MacAddr{};
  req.tpa = target;
  req.emit(p);
  counters_.inc(Counter::arp_requests_out);
  send_ether(ifc, m, dst_mac, net::ethertype_arp, now_ns);
}

void Instance::arp_input(rte_mbuf* m, Interface& ifc, uint64_t now_ns, bool from_port) {
  net::ArpError err{};
  // The message must be contiguous for the parser (a chain may split it).
  if (!make_contiguous(m, std::min<uint32_t>(m->pkt_len, net::arp_len))) {
    counters_.inc(Counter::mbuf_alloc_failed);
    rte_pktmbuf_free(m);
    return;
  }
  auto arp = net::parse_arp(rte_pktmbuf_mtod(m, const uint8_t*), m->data_len, err);
  if (!arp) {
    counters_.inc(err == net::ArpError::truncated    ? Counter::arp_truncated
                  : err == net::ArpError::bad_format ? Counter::arp_bad_format
                                                     : Counter::arp_bad_opcode);
    rte_pktmbuf_free(m);
    return;
  }
  // A zero sender hardware address names no station: there is nothing to learn
  // and no one to answer (a reply would go to 00:00:00:00:00:00).
  if (arp->sha.is_zero()) {
    counters_.inc(Counter::arp_bad_format);
    rte_pktmbuf_free(m);
    return;
  }
  if (!from_port) {
    // A copy of what another instance received: learn from it, answer nothing (the
    // receiver does), count nothing twice.
    arp_learn(*arp, ifc, now_ns);
    rte_pktmbuf_free(m);
    return;
  }
  arp_replicate(m, ifc);  // every instance keeps its own cache: each sees every message
  counters_.inc(arp->oper == net::arp_request ? Counter::arp_requests_in : Counter::arp_replies_in);
  arp_learn(*arp, ifc, now_ns);
  bool for_us = ifc.owns(arp->tpa);
  if (arp->oper == net::arp_request) {
    if (!for_us) {
      // A gratuitous announcement (sender == target) is not a question to anyone.
      if (arp->spa != arp->tpa) counters_.inc(Counter::arp_not_for_us);
      rte_pktmbuf_free(m);
      return;
    }
    // Answer in place: the request's buffer becomes the reply.
    net::ArpRepr reply;
    reply.oper = net::arp_reply;
    reply.sha = ifc.mac;
    reply.spa = arp->tpa;
    reply.tha = arp->sha;
    reply.tpa = arp->spa;
    // reset() forgets further segments (padding in a chained request): free them first.
    if (m->next != nullptr) {
      rte_pktmbuf_free(m->next);
      m->next = nullptr;
    }
    rte_pktmbuf_reset(m);
    reply.emit(reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, net::arp_len)));
    counters_.inc(Counter::arp_replies_out);
    send_ether(ifc, m, arp->sha, net::ethertype_arp, now_ns);
    return;
  }
  rte_pktmbuf_free(m);
}

void Instance::arp_learn(const net::ArpRepr& arp, Interface& ifc, uint64_t now_ns) {
  bool for_us = ifc.owns(arp.tpa);
  bool usable_sender = !arp.spa.is_any() && !arp.sha.is_multicast() && !ifc.owns(arp.spa);
  if (!usable_sender) return;
  // RFC 826 merge: update an entry we already have; add one if the message is for us.
  ArpEntry* e = ifc.arp.find(arp.spa);
  if (e == nullptr && for_us) {
    e = ifc.arp.create(arp.spa);
    if (e == nullptr) counters_.inc(Counter::arp_table_full);
    else e->iface = ifc.index, e->owner = this;
  }
  if (e == nullptr) return;
  e->mac = arp.sha;
  e->state = ArpEntry::State::reachable;
  e->probes = 0;
  e->timer.set_callback(&Instance::arp_timer_fired, e);
  timers_.schedule(e->timer, now_ns + ifc.arp.config().reachable_ns);
  for (rte_mbuf* waiting : e->pending) {
    fill_dst_mac(waiting, e->mac);
    ifc.queue.send(waiting, now_ns);
  }
  e->pending.clear();
}

void Instance::resolve_and_send(Interface& ifc, Ipv4Addr next_hop, rte_mbuf* m, uint64_t now_ns) {
  // Broadcasts need no resolution.
  bool broadcast = next_hop.is_broadcast();
  for (const auto& c : ifc.l3.addrs)
    if (c.prefix_len < 31 && c.directed_broadcast() == next_hop) broadcast = true;
  if (broadcast) return send_ether(ifc, m, MacAddr::broadcast(), net::ethertype_ipv4, now_ns);

  ArpEntry* e = ifc.arp.find(next_hop);
  if (e != nullptr && e->state != ArpEntry::State::incomplete)
    return send_ether(ifc, m, e->mac, net::ethertype_ipv4, now_ns);

  // Unresolved: the frame waits (with its Ethernet header, destination blank).
  auto* eth = reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(m, net::eth_header_len));
  if (eth == nullptr) {
    counters_.inc(Counter::mbuf_alloc_failed);
    rte_pktmbuf_free(m);
    return;
  }
  net::EthernetView::emit(eth, MacAddr{}, ifc.mac, net::ethertype_ipv4);
  if (m->nb_segs > 1 && !ifc.caps.tx_multi_seg && rte_pktmbuf_linearize(m) != 0) {
    counters_.inc(Counter::mbuf_alloc_failed);
    rte_pktmbuf_free(m);
    return;
  }
  if (e == nullptr) {
    e = ifc.arp.create(next_hop);
    if (e == nullptr) {
      counters_.inc(Counter::arp_table_full);
      rte_pktmbuf_free(m);
      return;
    }
    e->iface = ifc.index;
    e->owner = this;
    e->probes = 1;
    e->timer.set_callback(&Instance::arp_timer_fired, e);
    timers_.schedule(e->timer, now_ns + ifc.arp.config().retry_ns);
    send_arp_request(ifc, next_hop, MacAddr::broadcast(), now_ns);
  }
  if (e->pending.size() >= ifc.arp.config().max_pending) {
    counters_.inc(Counter::arp_pending_overflow);
    rte_pktmbuf_free(m);
    return;
  }
  e->pending.push_back(m);
}

void Instance::arp_timer_fired(Timer& t, void* ctx, uint64_t now_ns) {
  (void)t;
  auto* e = static_cast<ArpEntry*>(ctx);
  auto* self = static_cast<Instance*>(e->owner);
  Interface& ifc = *self->ifaces_[e->iface];
  const net::ArpConfig& cfg = ifc.arp.config();
  switch (e->state) {
    case ArpEntry::State::reachable:
      // Expired: keep using it while a unicast request tries to confirm it.
      e->state = ArpEntry::State::stale;
      e->probes = 1;
      self->send_arp_request(ifc, e->ip, e->mac, now_ns);
      self->timers_.schedule(e->timer, now_ns + cfg.retry_ns);
      return;
    case ArpEntry::State::incomplete:
    case ArpEntry::State::stale:
      if (e->probes < cfg.max_probes) {
        ++e->probes;
        self->send_arp_request(
            ifc, e->ip, e->state == ArpEntry::State::stale ? e->mac : MacAddr::broadcast(), now_ns);
        self->timers_.schedule(e->timer, now_ns + cfg.retry_ns);
        return;
      }
      // No answer: the neighbour is gone. Frames still waiting are dropped.
      self->counters_.inc(Counter::arp_pending_timeout, e->pending.size());
      for (rte_mbuf* m : e->pending) rte_pktmbuf_free(m);
      e->pending.clear();
      ifc.arp.erase(*e);
      return;
  }
}

}  // namespace keel::engine
