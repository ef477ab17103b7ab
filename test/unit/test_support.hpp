// SPDX-License-Identifier: BSD-3-Clause
#pragma once
// Shared helpers for the packet-level unit tests: one EAL per test process
// (--no-huge --no-shconf, so test binaries may run side by side), one mbuf pool,
// and builders that turn bytes into mbufs and back.

#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "drivers/port.hpp"
#include "drivers/ring_port.hpp"

namespace keel::test {

/// The pool every test allocates from (2047 mbufs of 2048 bytes of data room).
rte_mempool* pool();

/// Mbufs of pool() currently allocated; tests compare it with a baseline.
unsigned pool_in_use();

/// A single-segment mbuf holding `bytes` (precondition: fits in one segment).
rte_mbuf* make_mbuf(const std::vector<uint8_t>& bytes);

/// A chain of mbufs holding `bytes`, split at the given segment lengths
/// (the last segment takes what is left).
rte_mbuf* make_chain(const std::vector<uint8_t>& bytes, std::initializer_list<size_t> seg_lens);

/// The packet's bytes, across all segments.
std::vector<uint8_t> bytes_of(const rte_mbuf* m);

/// A net_ring port started on pool() without offloads, MAC 02:00:00:00:00:02
/// (frames.hpp's our_mac). Ring ports are process-global and cannot be
/// removed: a test file makes one under its own name and shares it among its
/// tests, draining both rings around each. Throws if the port cannot start.
struct RingTestPort {
  drivers::RingPort ring;
  drivers::Port port;
};
RingTestPort make_ring_test_port(const std::string& name);

/// Frees whatever waits on the port's RX and TX rings.
void drain_rings(RingTestPort& p);

/// Asserts at scope exit that pool_in_use() is back to its value at construction.
class PoolBaseline {
 public:
  PoolBaseline();
  ~PoolBaseline();
  unsigned start() const { return start_; }

 private:
  unsigned start_;
};

}  // namespace keel::test
