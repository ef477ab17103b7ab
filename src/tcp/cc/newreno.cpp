// SPDX-License-Identifier: BSD-3-Clause
// NewReno: RFC 5681 slow start and congestion avoidance with RFC 3465 byte
// counting; the recovery itself (RFC 6582 / RFC 6675) is the TCB's.
#include <algorithm>

#include "tcp/cc/cc.hpp"

namespace keel::tcp::cc {
namespace {

class NewReno final : public Algorithm {
 public:
  const char* name() const override { return "newreno"; }

  void on_ack(CcVars& v, uint32_t acked, uint32_t flight, uint64_t /*srtt_ns*/,
              uint64_t /*now_ns*/) const override {
    if (acked == 0 || !cwnd_limited(v, flight)) return;
    if (v.cwnd < v.ssthresh) {
      acked = slow_start(v, acked);
      if (acked == 0) return;
    }
    // RFC 5681 3.1 congestion avoidance, counted in bytes (RFC 3465 2.1): once a
    // full window has been acknowledged, cwnd += SMSS. At most one step per ACK;
    // the remainder carries over, so a stretch ACK is not lost.
    v.bytes_acked = uint32_t(std::min<uint64_t>(uint64_t(v.bytes_acked) + acked, max_cwnd));
    if (v.bytes_acked >= v.cwnd) {
      v.bytes_acked -= v.cwnd;
      v.cwnd = clamp_cwnd(uint64_t(v.cwnd) + v.mss, v.mss);
    }
  }

  void on_congestion(CcVars& v, Signal s, uint32_t flight, uint64_t /*now_ns*/) const override {
    // RFC 5681 eq. (4): ssthresh = max(FlightSize / 2, 2*SMSS).
    uint32_t half = flight / 2;
    v.ssthresh = std::max(half, 2 * v.mss);
    v.bytes_acked = 0;  // RFC 3465 2.1: restart the count
    switch (s) {
      case Signal::fast_retransmit:
        // RFC 6675 5 step 4.2 / RFC 5681 3.2: cwnd = ssthresh, no inflation.
        v.cwnd = clamp_cwnd(v.ssthresh, v.mss);
        break;
      case Signal::rto:
        // RFC 5681 3.1: cwnd = LW = 1*SMSS.
        v.cwnd = v.mss;
        break;
      case Signal::ecn:
        // RFC 3168 6.1.2: halve cwnd, but never below one segment.
        v.cwnd = clamp_cwnd(half, v.mss);
        break;
    }
  }

  void post_recovery(CcVars& v, uint32_t flight, uint64_t /*now_ns*/) const override {
    deflate(v, flight);
  }
};

}  // namespace

const Algorithm& newreno() {
  static const NewReno instance;
  return instance;
}

}  // namespace keel::tcp::cc
