// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// What a polling loop does when there is no work. keel shares 2-core machines
/// with kernel peers, so by default it backs off: it keeps busy-polling for
/// `spin_ns` after the last work (a request/response burst stays at full speed),
/// then spins with rte_pause() until `pause_ns`, then sleeps in growing steps
/// from `min_sleep_ns` up to `max_sleep_ns`, never past the next timer.
///
/// Cost in latency: none while traffic flows or within spin_ns of the last
/// frame; up to ~100 ns during the pause stage; up to max_sleep_ns (plus the
/// kernel's timer slack, ~50 us) for the first frame after a long idle period.
/// `busy_poll` turns the back-off off (benchmarks: lowest latency, one core at
/// 100%).

#include <cstdint>

namespace keel::engine {

struct IdleConfig {
  bool busy_poll = false;
  uint64_t spin_ns = 200'000;
  uint64_t pause_ns = 2'000'000;
  uint64_t min_sleep_ns = 20'000;
  uint64_t max_sleep_ns = 500'000;
};

class IdlePolicy {
 public:
  explicit IdlePolicy(const IdleConfig& cfg) : cfg_(cfg) {}
  /// Call when an iteration did work.
  void on_work(uint64_t now_ns) {
    last_work_ns_ = now_ns;
    sleep_ns_ = cfg_.min_sleep_ns;
  }
  /// Call when an iteration found nothing; may pause or sleep.
  /// `next_timer_ns`: the earliest armed timer (UINT64_MAX if none).
  void on_idle(uint64_t now_ns, uint64_t next_timer_ns);

 private:
  IdleConfig cfg_;
  uint64_t last_work_ns_ = 0;
  uint64_t sleep_ns_ = 0;
};

}  // namespace keel::engine
