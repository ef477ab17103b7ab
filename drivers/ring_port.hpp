// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// net_ring ports made in code: a port over a pair of rte_rings (tests feed and
/// read frames through them) and a linked pair of ports whose TX is the other's
/// RX (the one-process loopback: two stacks, no NIC).

#include <string>

#include <keel/result.hpp>

struct rte_ring;

namespace keel::drivers {

/// A net_ring port: frames the test enqueues on `rx` are received, frames the
/// stack transmits appear on `tx`.
struct RingPort {
  uint16_t port_id = 0;
  rte_ring* rx = nullptr;
  rte_ring* tx = nullptr;
};

/// Creates a port with fresh rings of `size` slots; DPDK names it "net_ring_" + name.
Result<RingPort, std::string> create_ring_port(const std::string& name, unsigned size = 4096);

/// Two ports joined back to back: what `a` transmits `b` receives and vice versa.
Result<std::pair<uint16_t, uint16_t>, std::string> create_ring_link(const std::string& name,
                                                                     unsigned size = 4096);

}  // namespace keel::drivers
