// SPDX-License-Identifier: BSD-3-Clause
#include "engine/instance.hpp"
#include "engine/multiprocess.hpp"

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>
#include <rte_ring.h>

#include <stdexcept>

#include "net/wire.hpp"

namespace keel::engine {

using net::Ipv4Addr;
using net::MacAddr;

namespace {
constexpr unsigned control_ring_size = 1024;
constexpr unsigned control_per_poll = 8;
constexpr uint64_t reassembly_scan_ns = 1'000'000'000;
}  // namespace

uint64_t now_ns() {
  static const double ns_per_cycle = 1e9 / double(rte_get_tsc_hz());
  return uint64_t(double(rte_get_tsc_cycles()) * ns_per_cycle);
}

Instance::Instance(const InstanceConfig& cfg, uint64_t now_ns)
    : cfg_(cfg), timers_(now_ns), reass_(cfg.reassembly, counters_) {
  std::string name = mp::object_name("keel_ctl");
  control_ = rte_ring_create(name.c_str(), control_ring_size, int(rte_socket_id()), RING_F_SC_DEQ);
  if (control_ == nullptr)
    throw std::runtime_error("instance " + std::to_string(cfg.id) +
                             ": control ring: " + rte_strerror(rte_errno));
  reass_timer_.set_callback(&Instance::reassembly_tick, this);
  timers_.schedule(reass_timer_, now_ns + reassembly_scan_ns);
}

Instance::~Instance() {
  // Closures still queued are freed unrun: their targets are going away.
  void* item = nullptr;
  while (rte_ring_sc_dequeue(control_, &item) == 0)
    delete static_cast<std::function<void(Instance&)>*>(item);
  timers_.cancel(reass_timer_);
  steer_discard();
  for (auto& ifc : ifaces_) {
    ifc->arp.for_each([&](net::ArpEntry& e) { timers_.cancel(e.timer); });
    ifc->queue.discard();
  }
  ifaces_.clear();
  rte_ring_free(control_);
}

Interface& Instance::add_interface(const drivers::Port& port, uint16_t queue_id,
                                   const InterfaceConfig& l3, rte_mempool* pool) {
  uint16_t index = uint16_t(ifaces_.size());
  std::string arp_name = mp::object_name("keel_arp");
  ifaces_.push_back(std::make_unique<Interface>(
      index, drivers::PortQueue(port.id(), queue_id, counters_), port, l3, pool, arp_name,
      cfg_.arp));
  return *ifaces_.back();
}

void Instance::start(uint64_t now_ns) {
  // Gratuitous ARP (RFC 5227 announcement): a request for our own address, so
  // neighbours update stale entries and a conflicting host would show itself.
  for (auto& ifc : ifaces_)
    for (const auto& c : ifc->l3.addrs) send_arp_request(*ifc, c.addr, MacAddr::broadcast(), now_ns);
  flush(now_ns);
}

unsigned Instance::poll(uint64_t now_ns, bool flush_after) {
  unsigned work = 0;
  rte_mbuf* pkts[rx_burst];
  for (auto& ifc : ifaces_) {
    uint16_t n = ifc->queue.rx(pkts, rx_burst, now_ns);
    // Prefetch a few frames ahead while handling the current one (DPDK l3fwd).
    for (uint16_t j = 0; j < n && j < 3; ++j) rte_prefetch0(rte_pktmbuf_mtod(pkts[j], void*));
    for (uint16_t j = 0; j < n; ++j) {
      if (j + 3 < n) rte_prefetch0(rte_pktmbuf_mtod(pkts[j + 3], void*));
      input(pkts[j], *ifc, now_ns);
    }
    work += n;
  }
  if (!adopted_queues_.empty()) work += poll_adopted(now_ns);
  if (steer_ != nullptr) work += steer_drain(now_ns);
  if (rte_ring_count(control_) != 0) {
    run_control();
    ++work;
  }
  timers_.advance(now_ns);
  if (flush_after) flush(now_ns);
  return work;
}

void Instance::flush(uint64_t now_ns) {
  if (steer_ != nullptr) steer_flush();
  for (auto& ifc : ifaces_) ifc->queue.flush(now_ns);
}

void Instance::input(rte_mbuf* m, Interface& ifc, uint64_t now_ns) {
  counters_.inc(Counter::rx_packets);
  counters_.inc(Counter::rx_bytes, m->pkt_len);
  auto eth = net::EthernetView::parse(rte_pktmbuf_mtod(m, uint8_t*), m->data_len);
  if (!eth) {
    counters_.inc(Counter::eth_truncated);
    rte_pktmbuf_free(m);
    return;
  }
  MacAddr dst = eth->dst();
  if (dst != ifc.mac && !dst.is_broadcast()) {
    counters_.inc(Counter::eth_not_for_us);
    rte_pktmbuf_free(m);
    return;
  }
  switch (eth->ethertype()) {
    case net::ethertype_ipv4:
      rte_pktmbuf_adj(m, net::eth_header_len);
      ip_input(m, ifc, now_ns);
      return;
    case net::ethertype_arp:
      rte_pktmbuf_adj(m, net::eth_header_len);
      arp_input(m, ifc, now_ns);
      return;
    default:
      counters_.inc(Counter::eth_unknown_type);
      rte_pktmbuf_free(m);
      return;
  }
}

bool Instance::post(std::function<void(Instance&)> fn) {
  auto* boxed = new std::function<void(Instance&)>(std::move(fn));
  if (rte_ring_mp_enqueue(control_, boxed) != 0) {
    delete boxed;
    return false;
  }
  return true;
}

void Instance::run_control() {
  void* items[control_per_poll];
  unsigned n = rte_ring_sc_dequeue_burst(control_, items, control_per_poll, nullptr);
  for (unsigned i = 0; i < n; ++i) {
    auto* fn = static_cast<std::function<void(Instance&)>*>(items[i]);
    (*fn)(*this);
    delete fn;
  }
}

size_t Instance::held_frames() const {
  size_t n = reass_.pending();  // datagrams in reassembly, one each
  for (const auto& out : steer_out_) n += out.n;  // gathered for another instance
  for (const auto& ifc : ifaces_) {
    n += ifc->queue.pending();
    const_cast<net::ArpCache&>(ifc->arp).for_each([&](net::ArpEntry& e) { n += e.pending.size(); });
  }
  return n;
}

uint64_t Instance::next_wakeup_ns() const {
  uint64_t t = timers_.next_expiry_ns();
  for (const auto& ifc : ifaces_) t = std::min(t, ifc->queue.next_due_ns());
  return t;
}

void Instance::reassembly_tick(Timer& t, void* ctx, uint64_t now_ns) {
  auto* self = static_cast<Instance*>(ctx);
  self->reass_.expire(now_ns);
  self->timers_.schedule(t, now_ns + reassembly_scan_ns);
}

}  // namespace keel::engine
