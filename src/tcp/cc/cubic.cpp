// SPDX-License-Identifier: BSD-3-Clause
// CUBIC, RFC 9438. Windows inside CubicVars are in segments (double), as in
// the RFC; cwnd in CcVars stays in bytes. Slow start is the shared RFC 5681 /
// RFC 3465 one (no HyStart++).
#include <algorithm>
#include <cmath>

#include "tcp/cc/cc.hpp"

namespace keel::tcp::cc {
namespace {

constexpr double ns_per_sec = 1e9;

/// RFC 9438 eq. (1): W_cubic(t) = C * (t - K)^3 + W_max, with origin_point as W_max.
double w_cubic(const CubicVars& c, double t) {
  double d = t - c.k;
  return cubic_c * d * d * d + c.origin_point;
}

class Cubic final : public Algorithm {
 public:
  const char* name() const override { return "cubic"; }

  void on_ack(CcVars& v, uint32_t acked, uint32_t flight, uint64_t srtt_ns,
              uint64_t now_ns) const override {
    CubicVars& c = v.cubic;
    uint64_t since_last = now_ns > c.last_ack_ns ? now_ns - c.last_ack_ns : 0;
    c.last_ack_ns = now_ns;
    if (acked == 0) return;
    if (!cwnd_limited(v, flight)) {
      // RFC 9438 5.8: t must not include application-limited periods; slide
      // the epoch forward by the time spent not using the window.
      if (c.epoch_valid) c.epoch_start_ns += since_last;
      return;
    }
    if (v.cwnd < v.ssthresh) {
      acked = slow_start(v, acked);
      if (acked == 0) return;
    }
    congestion_avoidance(v, acked, srtt_ns, now_ns);
  }

  void on_congestion(CcVars& v, Signal s, uint32_t flight, uint64_t /*now_ns*/) const override {
    CubicVars& c = v.cubic;
    double cwnd_seg = double(v.cwnd) / v.mss;
    // RFC 9438 4.7 fast convergence: a flow whose window peaked below its last
    // W_max is probably losing share to a newcomer; release some bandwidth.
    if (cwnd_seg < c.w_max) {
      c.w_max = cwnd_seg * (1.0 + cubic_beta) / 2.0;
    } else {
      c.w_max = cwnd_seg;
    }
    c.cwnd_prior = cwnd_seg;  // RFC 9438 4.6, for the Reno-friendly alpha switch
    // RFC 9438 4.6: ssthresh = flight_size * beta_cubic (flight, not cwnd, so an
    // application-limited window is not remembered as usable), at least 2*SMSS.
    uint32_t reduced = uint32_t(double(flight) * cubic_beta);
    v.ssthresh = std::max(reduced, 2 * v.mss);
    v.bytes_acked = 0;
    c.epoch_valid = false;  // RFC 9438 4.2: the next congestion avoidance stage is a new epoch
    c.cwnd_frac = 0;
    switch (s) {
      case Signal::fast_retransmit:
        // RFC 9438 4.6: cwnd = max(ssthresh, 2); the TCB recovers with pipe.
        v.cwnd = clamp_cwnd(v.ssthresh, v.mss);
        break;
      case Signal::ecn:
        // RFC 9438 4.6: on ECE cwnd = max(ssthresh, 1).
        v.cwnd = clamp_cwnd(reduced, v.mss);
        break;
      case Signal::rto:
        // RFC 9438 4.9: reduce cwnd as Reno does (loss window) and, in the first
        // congestion avoidance stage that follows, use K = 0 and W_max = the
        // window at its start; w_max = 0 makes the epoch start do exactly that.
        v.cwnd = v.mss;
        c.w_max = 0;
        break;
    }
  }

  void post_recovery(CcVars& v, uint32_t flight, uint64_t /*now_ns*/) const override {
    deflate(v, flight);
  }

  void after_idle(CcVars& v, uint64_t now_ns) const override {
    Algorithm::after_idle(v, now_ns);
    // RFC 9438 5.8: idle time must not count in t; start a fresh epoch.
    v.cubic.epoch_valid = false;
    v.cubic.cwnd_frac = 0;
  }

 private:
  static void congestion_avoidance(CcVars& v, uint32_t acked, uint64_t srtt_ns, uint64_t now_ns) {
    CubicVars& c = v.cubic;
    const double mss = v.mss;
    double cwnd_seg = double(v.cwnd) / mss;
    if (!c.epoch_valid) start_epoch(c, cwnd_seg, now_ns);

    double t = now_ns > c.epoch_start_ns ? double(now_ns - c.epoch_start_ns) / ns_per_sec : 0.0;
    double segments_acked = double(acked) / mss;

    // RFC 9438 4.3: W_est += alpha * segments_acked / cwnd, alpha = alpha_cubic
    // until W_est reaches cwnd_prior, 1 after (same increase rate as Reno).
    double alpha = c.w_est >= c.cwnd_prior ? 1.0 : cubic_alpha;
    c.w_est += alpha * segments_acked / cwnd_seg;

    double grown;  // new cwnd, bytes
    if (w_cubic(c, t) < c.w_est) {
      // RFC 9438 4.3: Reno-friendly region, cwnd = W_est.
      grown = std::max(c.w_est * mss, double(v.cwnd));
      c.cwnd_frac = 0;
    } else {
      // RFC 9438 4.4 / 4.5: target = W_cubic(t + RTT), kept within
      // [cwnd, 1.5 cwnd]; cwnd += (target - cwnd) / cwnd per acknowledged
      // segment (scaled by segments_acked, so delayed and stretch ACKs grow
      // the window as much per RTT as one ACK per segment would).
      double rtt = double(srtt_ns) / ns_per_sec;
      double target = std::clamp(w_cubic(c, t + rtt), cwnd_seg, 1.5 * cwnd_seg);
      double inc = (target - cwnd_seg) / cwnd_seg * segments_acked * mss + c.cwnd_frac;
      double whole = std::floor(inc);
      c.cwnd_frac = inc - whole;
      grown = double(v.cwnd) + whole;
    }
    // Clamp before converting: a double beyond uint64_t's range is UB to cast.
    grown = std::min(grown, double(max_cwnd));
    v.cwnd = clamp_cwnd(uint64_t(grown), v.mss);
  }

  static void start_epoch(CubicVars& c, double cwnd_seg, uint64_t now_ns) {
    c.epoch_valid = true;
    c.epoch_start_ns = now_ns;
    c.cwnd_frac = 0;
    if (c.w_max <= cwnd_seg) {
      // RFC 9438 4.8 / 4.9: no W_max above us (slow start ended without loss,
      // after an RTO, or the window has been restored): K = 0, W_max = cwnd_epoch.
      c.w_max = cwnd_seg;
      c.k = 0;
      c.origin_point = cwnd_seg;
    } else {
      // RFC 9438 eq. (2): K = cbrt((W_max - cwnd_epoch) / C).
      c.k = std::cbrt((c.w_max - cwnd_seg) / cubic_c);
      c.origin_point = c.w_max;
    }
    // RFC 9438 4.3: W_est starts at cwnd_epoch.
    c.w_est = cwnd_seg;
    if (c.cwnd_prior == 0) c.cwnd_prior = cwnd_seg;  // RFC 9438 4.8: no loss yet
  }
};

}  // namespace

const Algorithm& cubic() {
  static const Cubic instance;
  return instance;
}

}  // namespace keel::tcp::cc
