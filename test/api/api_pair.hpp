// SPDX-License-Identifier: BSD-3-Clause
#pragma once
// Two keel stacks in this process, A (198.18.5.1) and B (198.18.5.2), on a
// pair of net_ring ports wired back to back, each behind the native API
// (a StackCore over instance 0). Nothing runs on its own: step() polls both
// from the test's thread (which owns both stacks), so a test is a sequence
// of calls and polls with the events of each side collected for assertions.

#include <rte_mempool.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <keel/keel.hpp>

#include "api/stack_core.hpp"
#include "engine/engine.hpp"

namespace keel::test {

inline constexpr Ipv4Address addr_a{198, 18, 5, 1};
inline constexpr Ipv4Address addr_b{198, 18, 5, 2};

struct Side {
  std::unique_ptr<engine::Engine> engine;
  std::unique_ptr<detail::StackCore> core;
  std::unique_ptr<Stack> stack;
  std::vector<Event> events;  // everything poll() returned since the last clear
  unsigned pool_base = 0;

  /// The events of `conn`, OR-ed together.
  uint16_t flags_of(const Connection& conn) const;
  /// The last event of `conn` carrying `flag` (nullptr if none).
  const Event* find(const Connection& conn, uint16_t flag) const;
  /// The first accepted connection not yet taken by take_accepted().
  Connection take_accepted();
  size_t accepted_taken = 0;
  unsigned pool_in_use() const { return rte_mempool_in_use_count(engine->pool()); }
};

class ApiPair {
 public:
  /// `tcp`: TCP settings of both stacks (a small connection table by default).
  /// `shm`: both stacks on the intra-node fast path (the process's node zone,
  /// 1024 channels), with `shm_budget` bytes per channel direction: A's connects
  /// to B's listeners become channels.
  explicit ApiPair(const tcp::TcpConfig& tcp = small_tcp(), bool shm = false, uint32_t shm_budget = 1 << 20);
  ~ApiPair();
  static tcp::TcpConfig small_tcp();

  Side a, b;
  /// Polls both stacks `rounds` times, collecting their events.
  void step(int rounds = 1);
  /// Steps until `done()` (evaluated once per round) or `max_seconds` of wall
  /// clock; returns whether done() said true.
  bool step_until(const std::function<bool()>& done, double max_seconds = 5);
  /// A connected pair: A's connection to B's listener on `port`, and B's accepted side.
  std::pair<Connection, Connection> connect_pair(uint16_t port, const ConnectOptions& opt = {});
  /// After the test: close everything, stop, and check both pools are whole.
  bool pools_whole();

 private:
  std::string link_;
};

/// Counts misuse reports while alive (instead of aborting in debug builds).
class MisuseCounter {
 public:
  MisuseCounter();
  ~MisuseCounter();
  static int count();
  static Errc last();
 private:
  MisuseHandler prev_;
};

}  // namespace keel::test
