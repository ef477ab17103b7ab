// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// A token bucket for rate limits on the instance's lcore (no atomics): `rate`
/// tokens per second accrue up to `burst`; each permitted event takes one.

#include <algorithm>
#include <cstdint>

namespace keel::engine {

class TokenBucket {
 public:
  /// `rate_per_sec` 0: no limit. Starts full.
  TokenBucket(uint32_t rate_per_sec, uint32_t burst)
      : ns_per_token_(rate_per_sec == 0 ? 0 : std::max<uint64_t>(1, 1'000'000'000 / rate_per_sec)),
        burst_(burst),
        tokens_(burst) {}

  /// Takes a token if one has accrued by `now_ns`.
  bool take(uint64_t now_ns) {
    if (ns_per_token_ == 0) return true;
    refill(now_ns);
    if (tokens_ == 0) return false;
    --tokens_;
    return true;
  }

 private:
  void refill(uint64_t now_ns) {
    if (now_ns <= last_ns_) return;
    uint64_t n = (now_ns - last_ns_) / ns_per_token_;
    if (n == 0) return;
    if (n >= burst_ - tokens_) {
      tokens_ = burst_;
      last_ns_ = now_ns;  // full: time beyond it accrues nothing
    } else {
      tokens_ += uint32_t(n);
      last_ns_ += n * ns_per_token_;  // keep the fraction of a token already earned
    }
  }

  uint64_t ns_per_token_;
  uint32_t burst_;
  uint32_t tokens_;
  uint64_t last_ns_ = 0;
};

}  // namespace keel::engine
