// SPDX-License-Identifier: BSD-3-Clause
#pragma once
// Client workloads that keel-pmd drives from an instance: a bulk stream into a
// discard service and echo round trips that check every byte that comes back.
// All callbacks run on the instance's lcore; the shared counters are atomics
// the CLI thread reads for its live table.

#include <atomic>
#include <cstdint>
#include <vector>

#include "net/addresses.hpp"
#include "tcp/tcp_stack.hpp"

namespace keel::pmd {

struct TrafficStats {
  std::atomic<uint64_t> bytes_sent{0};      ///< acknowledged stream bytes
  std::atomic<uint64_t> bytes_echoed{0};    ///< echo bytes received back and verified
  std::atomic<uint32_t> conns_open{0};
  std::atomic<uint32_t> conns_done{0};      ///< finished with every byte verified
  std::atomic<uint32_t> conns_failed{0};    ///< reset, refused, timed out or corrupted
  std::atomic<uint32_t> mismatches{0};      ///< echo bytes that differed
  /// The workload's connections still open. Touched only on the instance's
  /// lcore (the start_* calls, the callbacks, abort_all).
  std::vector<tcp::Tcb*> live;
};

/// Opens a connection to dst:port that sends `total` bytes (byte i = i mod 251)
/// and then closes; counts acknowledged bytes.
Result<void> start_stream(tcp::TcpStack& tcp, net::Ipv4Addr dst, uint16_t port, uint64_t total,
                          TrafficStats& stats);

/// Opens a connection to an echo service and runs `rounds` round trips of
/// `size` pseudo-random bytes (seeded), verifying each echo, then closes.
Result<void> start_echo(tcp::TcpStack& tcp, net::Ipv4Addr dst, uint16_t port, uint32_t size,
                        uint32_t rounds, uint64_t seed, TrafficStats& stats);

/// Aborts every connection of the workload still open (each counts as
/// failed). Call on the instance's lcore; afterwards no callback touches
/// `stats` any more, so it may be destroyed.
void abort_all(tcp::TcpStack& tcp, TrafficStats& stats);

}  // namespace keel::pmd
