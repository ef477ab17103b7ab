// SPDX-License-Identifier: BSD-3-Clause
// Shared congestion-control pieces: initial and restart windows, slow start,
// MSS changes, and lookup by name.
#include "tcp/cc/cc.hpp"

#include <algorithm>

namespace keel::tcp::cc {

uint32_t initial_window(uint32_t mss) {
  // RFC 6928 2: IW = min(10*MSS, max(2*MSS, 14600)).
  uint64_t m = mss;
  return uint32_t(std::min<uint64_t>({10 * m, std::max<uint64_t>(2 * m, 14600), max_cwnd}));
}

uint32_t Algorithm::clamp_cwnd(uint64_t bytes, uint32_t mss) {
  return uint32_t(std::clamp<uint64_t>(bytes, mss, max_cwnd));
}

void Algorithm::init(CcVars& v, uint64_t /*now_ns*/) const {
  if (v.mss == 0) v.mss = 536;  // precondition broken: fall back to the RFC 9293 default
  v.cwnd = initial_window(v.mss);
  v.ssthresh = infinite_ssthresh;  // RFC 5681 3.1: "arbitrarily high"
  v.bytes_acked = 0;
  v.cubic = CubicVars{};
}

uint32_t Algorithm::slow_start(CcVars& v, uint32_t acked) {
  // RFC 3465 2.2: cwnd += min(N, L) with L = 2*SMSS; RFC 5681 3.1 allows byte counting.
  uint32_t inc = std::min(acked, 2 * v.mss);
  uint32_t room = v.ssthresh - v.cwnd;  // > 0: caller checked cwnd < ssthresh
  if (inc < room) {
    v.cwnd = clamp_cwnd(uint64_t(v.cwnd) + inc, v.mss);
    return 0;
  }
  // COMPAT(linux): tcp_slow_start stops at ssthresh and gives the rest of the
  // ACK to congestion avoidance, so one stretch ACK does not overshoot.
  v.cwnd = clamp_cwnd(v.ssthresh, v.mss);
  return acked - std::min(acked, room);
}

bool Algorithm::cwnd_limited(const CcVars& v, uint32_t flight) {
  // RFC 7661 / RFC 9438 5.8: an application- or receiver-limited sender must
  // not grow a window it does not use.
  if (v.cwnd < v.ssthresh) {
    // COMPAT(linux): tcp_is_cwnd_limited lets slow start reach twice what is used.
    return 2 * uint64_t(flight) > v.cwnd;
  }
  // Congestion avoidance: not even one more full segment would have fit.
  return uint64_t(flight) + v.mss > v.cwnd;
}

void Algorithm::deflate(CcVars& v, uint32_t flight) {
  // RFC 6582 3.2 step 3, option (1): min(ssthresh, max(FlightSize, SMSS) + SMSS).
  uint64_t w = std::min<uint64_t>(v.ssthresh, uint64_t(std::max(flight, v.mss)) + v.mss);
  v.cwnd = clamp_cwnd(w, v.mss);
  v.bytes_acked = 0;
}

void Algorithm::after_idle(CcVars& v, uint64_t /*now_ns*/) const {
  // RFC 7661 (after RFC 2861 3): remember the window we are about to give up,
  // so slow start can climb back to 3/4 of it before turning linear.
  if (v.ssthresh != infinite_ssthresh) {
    v.ssthresh = std::max(v.ssthresh, uint32_t(uint64_t(v.cwnd) * 3 / 4));
  }
  // RFC 5681 4.1: RW = min(IW, cwnd).
  v.cwnd = clamp_cwnd(std::min(initial_window(v.mss), v.cwnd), v.mss);
  v.bytes_acked = 0;
}

void Algorithm::set_mss(CcVars& v, uint32_t mss) const {
  if (mss == 0 || mss == v.mss) return;
  // Keep each window's size in segments (what a segment-counting stack does implicitly).
  auto scale = [&](uint32_t bytes) { return uint64_t(bytes) * mss / v.mss; };
  v.cwnd = clamp_cwnd(scale(v.cwnd), mss);
  if (v.ssthresh != infinite_ssthresh) {
    v.ssthresh = uint32_t(std::clamp<uint64_t>(scale(v.ssthresh), 2 * uint64_t(mss), max_cwnd));
  }
  v.bytes_acked = uint32_t(std::min<uint64_t>(scale(v.bytes_acked), max_cwnd));
  v.mss = mss;
}

const Algorithm* find(std::string_view name) {
  if (name == newreno().name()) return &newreno();
  if (name == cubic().name()) return &cubic();
  return nullptr;
}

}  // namespace keel::tcp::cc
