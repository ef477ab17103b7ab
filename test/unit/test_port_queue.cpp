// SPDX-License-Identifier: BSD-3-Clause
// PortQueue's TX path on a net_ring port nobody drains: what the ring will not
// take waits in the backlog, in order, and goes when the ring has room; beyond
// the backlog frames are dropped and counted; nothing leaks.
#include <rte_ethdev.h>
#include <rte_ring.h>

#include <catch2/catch.hpp>
#include <stdexcept>

#include "drivers/port.hpp"
#include "drivers/port_queue.hpp"
#include "drivers/ring_port.hpp"
#include "engine/counters.hpp"
#include "test_support.hpp"

using keel::drivers::PortQueue;
using keel::engine::Counter;
using keel::engine::Counters;
using keel::test::pool;
using keel::test::PoolBaseline;

namespace {

constexpr unsigned ring_slots = 64;  // the ring holds ring_slots - 1 frames

keel::drivers::RingPort& test_ring() {
  static keel::drivers::RingPort rp = [] {
    auto r = keel::drivers::create_ring_port("pq_unit", ring_slots);
    if (!r) throw std::runtime_error(r.error());
    keel::drivers::PortConfig cfg;
    cfg.use_offloads = false;
    auto port = keel::drivers::Port::start(r->port_id, cfg, pool());
    if (!port) throw std::runtime_error(port.error());
    return *r;
  }();
  return rp;
}

rte_mbuf* numbered(uint32_t i) {
  rte_mbuf* m = rte_pktmbuf_alloc(pool());
  REQUIRE(m != nullptr);
  *rte_pktmbuf_mtod(m, uint32_t*) = i;
  m->data_len = m->pkt_len = 60;
  return m;
}

/// Takes everything off the port's TX ring: the frame numbers, in order.
std::vector<uint32_t> take_all(rte_ring* r) {
  std::vector<uint32_t> got;
  void* p;
  while (rte_ring_dequeue(r, &p) == 0) {
    auto* m = static_cast<rte_mbuf*>(p);
    got.push_back(*rte_pktmbuf_mtod(m, uint32_t*));
    rte_pktmbuf_free(m);
  }
  return got;
}

}  // namespace

TEST_CASE("PortQueue: a full TX ring backlogs frames in order, then sends them", "[port]") {
  auto& rp = test_ring();
  take_all(rp.tx);
  PoolBaseline base;
  Counters counters;
  {
    PortQueue q(rp.port_id, 0, counters);
    const uint32_t n = 200;
    for (uint32_t i = 0; i < n; ++i) q.send(numbered(i), 0);
    q.flush(0);
    const uint32_t in_ring = ring_slots - 1;
    CHECK(q.pending() == n - in_ring);
    CHECK(q.next_due_ns() == 0);  // no sleeping while frames wait
    CHECK(counters.get(Counter::tx_retries) == n - in_ring);
    CHECK(counters.get(Counter::tx_dropped_queue_full) == 0);
    std::vector<uint32_t> got = take_all(rp.tx);
    for (int round = 0; round < 10 && q.pending() > 0; ++round) {
      q.flush(0);
      auto more = take_all(rp.tx);
      got.insert(got.end(), more.begin(), more.end());
    }
    REQUIRE(got.size() == n);
    for (uint32_t i = 0; i < n; ++i) REQUIRE(got[i] == i);
    CHECK(counters.get(Counter::tx_packets) == n);
    CHECK(q.pending() == 0);
    CHECK(q.next_due_ns() == UINT64_MAX);
  }
}

TEST_CASE("PortQueue: beyond the backlog frames are dropped and counted; discard frees the rest",
          "[port]") {
  auto& rp = test_ring();
  take_all(rp.tx);
  PoolBaseline base;
  Counters counters;
  {
    PortQueue q(rp.port_id, 0, counters);
    const uint32_t in_ring = ring_slots - 1, extra = 50;
    const uint32_t n = in_ring + PortQueue::backlog_max + extra;
    for (uint32_t i = 0; i < n; ++i) q.send(numbered(i), 0);
    q.flush(0);
    CHECK(q.pending() == PortQueue::backlog_max);
    CHECK(counters.get(Counter::tx_dropped_queue_full) == extra);
    // The queue goes away with frames still held (shutdown): they are freed.
  }
  CHECK(take_all(rp.tx).size() == ring_slots - 1);
}
