// SPDX-License-Identifier: BSD-3-Clause
#pragma once
// ICMP echo from an instance, reported like ping(8).

#include <ostream>

#include "engine/engine.hpp"
#include "engine/instance.hpp"

namespace keel::pmd {

struct PingResult {
  unsigned sent = 0, received = 0;
  double min_ms = 0, avg_ms = 0, max_ms = 0;
};

/// Sends `count` echo requests `interval_ms` apart from `inst` to `dst` and
/// waits up to a second for each reply. Prints a line per reply and a summary.
PingResult ping(engine::Instance& inst, net::Ipv4Addr dst, unsigned count, unsigned interval_ms,
                size_t payload_len, std::ostream& out);
/// The instance to ping `dst` from: the owner of the (source, dst) pair, where
/// the replies are steered (engine/flow_steering.hpp); instance 0 with one.
engine::Instance& ping_instance(engine::Engine& e, net::Ipv4Addr dst);

}  // namespace keel::pmd
