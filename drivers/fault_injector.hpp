// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// A netem-like impairment stage for testing TCP on bad paths without netem.
/// It sits between an instance and its port queue, once on receive and once on
/// transmit, and drops, duplicates, corrupts, delays and reorders frames:
///
///   rx_burst -> FaultInjector(rx) -> instance -> FaultInjector(tx) -> tx_burst
///
/// Per frame, in this order: drop (free it), duplicate (a private copy that then
/// goes through the remaining steps on its own), corrupt (flip one bit after the
/// Ethernet header), then hold until now + delay + uniform[0, jitter], plus
/// reorder_delay if picked for reordering. Held frames leave in release-time
/// order; equal release times keep arrival order, so delay without jitter or
/// reorder preserves order. All randomness comes from `seed`: a run is
/// repeatable given the same input and the same now_ns values.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "engine/counters.hpp"
#include "keel/result.hpp"

struct rte_mbuf;

namespace keel::drivers {

/// What to do to frames. The default impairs nothing.
struct FaultConfig {
  double drop = 0, duplicate = 0, reorder = 0, corrupt = 0;  ///< probabilities in [0,1]
  uint64_t delay_ns = 0, jitter_ns = 0;     ///< every frame delayed by delay + uniform[0, jitter]
  uint64_t reorder_delay_ns = 1'000'000;    ///< a frame picked for reordering is held this much longer
  uint32_t max_held = 8192;                 ///< bound on frames held (delay/reorder); beyond it drop + count
  uint64_t seed = 1;                        ///< PRNG seed; same seed, same decisions

  /// True if any impairment is configured (a disabled injector need not be in the path).
  bool enabled() const;

  /// Parses a comma-separated list of key=value, e.g.
  /// "drop=5%,dup=1%,reorder=25%,corrupt=1%,delay=40ms,jitter=2ms,seed=7".
  /// Keys: drop, dup|duplicate, reorder, corrupt (percent "5%" or fraction "0.05"),
  /// delay, jitter, reorder_delay (a number with unit ns/us/ms/s; bare 0 allowed),
  /// max_held (>= 1), seed. The empty string is the default (disabled) config.
  /// An unknown key or bad value gives a message naming the key and value.
  static Result<FaultConfig, std::string> parse(std::string_view spec);

  /// The config in parse()'s syntax (non-default fields, and always the seed).
  std::string to_string() const;
};

/// Applies a FaultConfig to a stream of frames. One instance per direction,
/// owned and called by one lcore. The hot path makes no heap allocation (the
/// hold queue is allocated at construction) and no system call; duplicates and
/// private copies for corruption come from the frame's own mempool.
class FaultInjector {
 public:
  /// `counters` must outlive the injector; it receives the fault_* counters and
  /// mbuf_alloc_failed.
  FaultInjector(const FaultConfig& config, engine::Counters& counters);
  /// Frees the frames still held.
  ~FaultInjector();
  FaultInjector(const FaultInjector&) = delete;
  FaultInjector& operator=(const FaultInjector&) = delete;

  /// Takes ownership of pkts[0..n) and appends to out[] the frames due at now_ns
  /// (held ones first, then new ones due immediately), at most cap; returns how
  /// many. Frames not yet due stay held; so do due frames that did not fit in out.
  /// A frame that would need holding when max_held frames are already held is
  /// freed and counted as fault_queue_full. Precondition: out does not alias pkts.
  /// A now_ns older than one seen before counts as that one: frames passed later
  /// are never released before frames passed earlier with the same delay.
  uint16_t process(rte_mbuf** pkts, uint16_t n, rte_mbuf** out, uint16_t cap, uint64_t now_ns);

  /// Frames due by now_ns, without new input. Call it every loop iteration so
  /// delayed frames leave on time.
  uint16_t drain(rte_mbuf** out, uint16_t cap, uint64_t now_ns);

  /// Frames currently held.
  size_t held() const { return size_; }

  /// Release time of the earliest held frame; UINT64_MAX if nothing is held.
  uint64_t next_due_ns() const;

  /// The configuration this injector applies.
  const FaultConfig& config() const { return cfg_; }

 private:
  struct Held {
    uint64_t release_ns;
    uint64_t seq;  // arrival order, breaks release-time ties
    rte_mbuf* m;
  };

  uint64_t next_random();
  bool chance(double p);
  bool hold(rte_mbuf* m, uint64_t release_ns);
  // Callers within one poll may pass slightly different clocks (the poll's now,
  // and a fresher one from an API call that sent inside it); a frame passed
  // later must never be released earlier, so time never goes back here.
  uint64_t monotonic(uint64_t now_ns) {
    if (now_ns < last_now_ns_) return last_now_ns_;
    return last_now_ns_ = now_ns;
  }
  rte_mbuf* corrupt(rte_mbuf* m);

  FaultConfig cfg_;
  engine::Counters& counters_;
  uint64_t rng_[4];                 // xoshiro256** state
  std::unique_ptr<Held[]> heap_;    // min-heap on (release_ns, seq), capacity cfg_.max_held
  size_t size_ = 0;
  uint64_t next_seq_ = 0;
  uint64_t last_now_ns_ = 0;        // latest now_ns seen (see monotonic())
};

}  // namespace keel::drivers
