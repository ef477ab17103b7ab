// SPDX-License-Identifier: BSD-3-Clause
// Congestion control: NewReno and CUBIC driven by simulated ACK clocks.
#include <catch2/catch.hpp>

#include "tcp/cc/cc.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

using keel::tcp::cc::Algorithm;
using keel::tcp::cc::CcVars;
using keel::tcp::cc::Signal;
namespace cc = keel::tcp::cc;

namespace {

constexpr uint64_t ms = 1'000'000;
constexpr uint64_t sec = 1'000'000'000;
// Start the clock far from 0 so nothing depends on now_ns == 0 meaning "unset".
constexpr uint64_t t0 = 1'000 * sec;

CcVars fresh(const Algorithm& a, uint32_t mss, uint64_t now = t0) {
  CcVars v;
  v.mss = mss;
  a.init(v, now);
  return v;
}

// One round trip of a sender that always fills its window: the bytes sent in
// the previous round (cwnd at the start of this one) come back as ACKs spread
// over `rtt`, each acknowledging `segs_per_ack` segments (the last one what is
// left); before each ACK the whole current window is in flight.
void run_rtt(const Algorithm& a, CcVars& v, uint64_t& now, uint64_t rtt, uint32_t segs_per_ack = 1) {
  const uint32_t per_ack = segs_per_ack * v.mss;
  const uint32_t n = (v.cwnd + per_ack - 1) / per_ack;
  uint32_t left = v.cwnd;
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t acked = std::min(left, per_ack);
    left -= acked;
    now += rtt / n;
    a.on_ack(v, acked, v.cwnd, rtt, now);
  }
}

// One segment at a time (window full) until the ACK that starts a CUBIC epoch.
void ack_into_epoch(const Algorithm& a, CcVars& v, uint64_t& now, uint64_t rtt) {
  for (int i = 0; i < 1'000'000 && !v.cubic.epoch_valid; ++i) {
    now += rtt / (v.cwnd / v.mss);
    a.on_ack(v, v.mss, v.cwnd, rtt, now);
  }
  REQUIRE(v.cubic.epoch_valid);
}

double segs(const CcVars& v) { return double(v.cwnd) / v.mss; }

// A connection in congestion avoidance at `w` segments that just took a loss
// with the window full and finished recovery with the reduced window in flight.
CcVars after_loss(const Algorithm& a, uint32_t mss, uint32_t w, uint64_t now) {
  CcVars v = fresh(a, mss, now);
  v.cwnd = w * mss;
  v.ssthresh = v.cwnd;
  a.on_congestion(v, Signal::fast_retransmit, v.cwnd, now);
  a.post_recovery(v, v.cwnd, now);
  return v;
}

void check_invariants(const CcVars& v) {
  REQUIRE(v.cwnd >= v.mss);
  REQUIRE(v.cwnd <= cc::max_cwnd);
  if (v.ssthresh != cc::infinite_ssthresh) REQUIRE(v.ssthresh >= 2 * v.mss);
}

}  // namespace

// ===== Common: initial window, lookup =====

TEST_CASE("init: RFC 6928 initial window and infinite ssthresh", "[cc]") {
  for (const Algorithm* a : {&cc::newreno(), &cc::cubic()}) {
    CAPTURE(a->name());
    CHECK(fresh(*a, 1460).cwnd == 14600);  // 10 * 1460 == 14600
    CHECK(fresh(*a, 536).cwnd == 5360);    // 10 * MSS is the smaller
    CHECK(fresh(*a, 1000).cwnd == 10000);
    CHECK(fresh(*a, 8960).cwnd == 17920);  // 2 * MSS beats 14600
    CcVars v = fresh(*a, 1460);
    CHECK(v.ssthresh == cc::infinite_ssthresh);
    CHECK(v.bytes_acked == 0);
    CHECK_FALSE(v.cubic.epoch_valid);
  }
  CHECK(cc::initial_window(1460) == 14600);
  CHECK(cc::initial_window(7300) == 14600);
}

TEST_CASE("find: by exact name, nullptr otherwise", "[cc]") {
  REQUIRE(cc::find("newreno") == &cc::newreno());
  REQUIRE(cc::find("cubic") == &cc::cubic());
  CHECK(std::string(cc::newreno().name()) == "newreno");
  CHECK(std::string(cc::cubic().name()) == "cubic");
  CHECK(cc::find("reno") == nullptr);
  CHECK(cc::find("CUBIC") == nullptr);
  CHECK(cc::find("cubic ") == nullptr);
  CHECK(cc::find("") == nullptr);
  CHECK(cc::find(std::string_view("cubicx", 5)) == &cc::cubic());
}

// ===== Slow start (both algorithms) =====

TEST_CASE("slow start: cwnd doubles every RTT", "[cc]") {
  for (const Algorithm* a : {&cc::newreno(), &cc::cubic()}) {
    CAPTURE(a->name());
    SECTION("one ACK per segment") {
      uint64_t now = t0;
      CcVars v = fresh(*a, 1000, now);
      for (uint32_t expect : {20000u, 40000u, 80000u, 160000u, 320000u}) {
        run_rtt(*a, v, now, 50 * ms);
        CHECK(v.cwnd == expect);
      }
      CHECK(v.ssthresh == cc::infinite_ssthresh);
    }
    SECTION("delayed ACKs: L = 2*SMSS keeps the doubling") {
      uint64_t now = t0;
      CcVars v = fresh(*a, 1000, now);
      for (uint32_t expect : {20000u, 40000u, 80000u}) {
        run_rtt(*a, v, now, 50 * ms, 2);
        CHECK(v.cwnd == expect);
      }
    }
  }
}

TEST_CASE("slow start: ABC limits one ACK to 2*SMSS", "[cc]") {
  for (const Algorithm* a : {&cc::newreno(), &cc::cubic()}) {
    CAPTURE(a->name());
    CcVars v = fresh(*a, 1000);
    a->on_ack(v, 8000, v.cwnd, 0, t0 + 1 * ms);  // stretch ACK for 8 segments
    CHECK(v.cwnd == 12000);
    a->on_ack(v, 500, v.cwnd, 0, t0 + 2 * ms);  // a partial segment counts its bytes
    CHECK(v.cwnd == 12500);
    a->on_ack(v, 0, v.cwnd, 0, t0 + 3 * ms);  // nothing new acknowledged
    CHECK(v.cwnd == 12500);
  }
}

TEST_CASE("slow start: stops at ssthresh, the rest of the ACK goes to congestion avoidance", "[cc]") {
  const Algorithm& a = cc::newreno();
  CcVars v = fresh(a, 1000);
  v.ssthresh = 11000;
  a.on_ack(v, 2000, v.cwnd, 0, t0);
  CHECK(v.cwnd == 11000);
  CHECK(v.bytes_acked == 1000);
  // At cwnd == ssthresh it is congestion avoidance: bytes counted, no jump.
  a.on_ack(v, 2000, v.cwnd, 0, t0);
  CHECK(v.cwnd == 11000);
  CHECK(v.bytes_acked == 3000);
}

TEST_CASE("growth only while cwnd-limited", "[cc]") {
  for (const Algorithm* a : {&cc::newreno(), &cc::cubic()}) {
    CAPTURE(a->name());
    SECTION("slow start needs more than half the window in flight") {
      CcVars v = fresh(*a, 1000);  // cwnd 10000
      a->on_ack(v, 1000, 5000, 0, t0);
      CHECK(v.cwnd == 10000);
      a->on_ack(v, 1000, 0, 0, t0);
      CHECK(v.cwnd == 10000);
      a->on_ack(v, 1000, 5001, 0, t0);
      CHECK(v.cwnd == 11000);
    }
    SECTION("congestion avoidance needs the window full to within one segment") {
      uint64_t now = t0;
      CcVars v = fresh(*a, 1000, now);
      v.cwnd = v.ssthresh = 20000;
      for (int i = 0; i < 200; ++i) {
        now += 10 * ms;
        a->on_ack(v, 1000, v.cwnd - 1000, 100 * ms, now);
      }
      CHECK(v.cwnd == 20000);
      now += 10 * ms;
      a->on_ack(v, 1000, v.cwnd - 999, 100 * ms, now);
      a->on_ack(v, 1000, v.cwnd - 999, 100 * ms, now + ms);
      if (a == &cc::newreno()) CHECK(v.bytes_acked == 2000);
    }
  }
}

// ===== NewReno =====

TEST_CASE("newreno: congestion avoidance adds one MSS per RTT", "[cc]") {
  const Algorithm& a = cc::newreno();
  uint64_t now = t0;
  CcVars v = fresh(a, 1000, now);
  v.cwnd = v.ssthresh = 20000;
  SECTION("one ACK per segment") {
    for (uint32_t r = 1; r <= 10; ++r) {
      run_rtt(a, v, now, 100 * ms);
      CHECK(v.cwnd == 20000 + r * 1000);
    }
  }
  SECTION("delayed ACKs") {
    for (uint32_t r = 1; r <= 10; ++r) {
      run_rtt(a, v, now, 100 * ms, 2);
      CHECK(v.cwnd == 20000 + r * 1000);
    }
  }
  SECTION("byte counting: a full window of small ACKs, not a count of ACKs") {
    for (int i = 0; i < 79; ++i) a.on_ack(v, 250, v.cwnd, 0, now);
    CHECK(v.cwnd == 20000);
    CHECK(v.bytes_acked == 19750);
    a.on_ack(v, 250, v.cwnd, 0, now);
    CHECK(v.cwnd == 21000);
    CHECK(v.bytes_acked == 0);
  }
}

TEST_CASE("newreno: ssthresh on fast retransmit, RTO and ECN", "[cc]") {
  const Algorithm& a = cc::newreno();
  CcVars v = fresh(a, 1000);
  v.cwnd = 40000;
  v.ssthresh = 30000;
  v.bytes_acked = 12345;
  SECTION("fast retransmit: ssthresh = max(flight/2, 2*SMSS), cwnd = ssthresh") {
    a.on_congestion(v, Signal::fast_retransmit, 30000, t0);
    CHECK(v.ssthresh == 15000);
    CHECK(v.cwnd == 15000);
    CHECK(v.bytes_acked == 0);
  }
  SECTION("fast retransmit with little in flight: ssthresh floor of 2*SMSS") {
    a.on_congestion(v, Signal::fast_retransmit, 3000, t0);
    CHECK(v.ssthresh == 2000);
    CHECK(v.cwnd == 2000);
  }
  SECTION("rto: loss window of 1*SMSS, then slow start back to ssthresh") {
    a.on_congestion(v, Signal::rto, 30000, t0);
    CHECK(v.ssthresh == 15000);
    CHECK(v.cwnd == 1000);
    uint64_t now = t0;
    for (uint32_t expect : {2000u, 4000u, 8000u, 15000u}) {
      run_rtt(a, v, now, 100 * ms);
      CHECK(v.cwnd == expect);
    }
  }
  SECTION("rto with nothing in flight") {
    a.on_congestion(v, Signal::rto, 0, t0);
    CHECK(v.ssthresh == 2000);
    CHECK(v.cwnd == 1000);
  }
  SECTION("ecn: halve, never below one segment") {
    a.on_congestion(v, Signal::ecn, 30000, t0);
    CHECK(v.ssthresh == 15000);
    CHECK(v.cwnd == 15000);
    a.on_congestion(v, Signal::ecn, 1000, t0);
    CHECK(v.ssthresh == 2000);
    CHECK(v.cwnd == 1000);
  }
}

TEST_CASE("post_recovery: cwnd = min(ssthresh, max(flight, SMSS) + SMSS)", "[cc]") {
  for (const Algorithm* a : {&cc::newreno(), &cc::cubic()}) {
    CAPTURE(a->name());
    CcVars v = fresh(*a, 1000);
    v.cwnd = 40000;
    a->on_congestion(v, Signal::fast_retransmit, 40000, t0);
    uint32_t ssthresh = v.ssthresh;
    CHECK(v.cwnd == ssthresh);
    SECTION("much still in flight: ssthresh") {
      a->post_recovery(v, 40000, t0);
      CHECK(v.cwnd == ssthresh);
    }
    SECTION("little in flight: no burst") {
      a->post_recovery(v, 5000, t0);
      CHECK(v.cwnd == 6000);
      CHECK(v.ssthresh == ssthresh);
    }
    SECTION("nothing in flight: 2*SMSS") {
      a->post_recovery(v, 0, t0);
      CHECK(v.cwnd == 2000);
    }
  }
}

TEST_CASE("after_idle: restart window min(IW, cwnd), ssthresh remembers 3/4 cwnd", "[cc]") {
  for (const Algorithm* a : {&cc::newreno(), &cc::cubic()}) {
    CAPTURE(a->name());
    CcVars v = fresh(*a, 1460);
    SECTION("large window shrinks to IW") {
      v.cwnd = 100 * 1460;
      v.ssthresh = 50 * 1460;
      a->after_idle(v, t0);
      CHECK(v.cwnd == 14600);
      CHECK(v.ssthresh == 75 * 1460);
    }
    SECTION("small window is kept") {
      v.cwnd = 4 * 1460;
      v.ssthresh = 2 * 1460;
      a->after_idle(v, t0);
      CHECK(v.cwnd == 4 * 1460);
      CHECK(v.ssthresh == 3 * 1460);
    }
    SECTION("infinite ssthresh stays infinite") {
      v.cwnd = 100 * 1460;
      a->after_idle(v, t0);
      CHECK(v.cwnd == 14600);
      CHECK(v.ssthresh == cc::infinite_ssthresh);
    }
  }
}

TEST_CASE("set_mss: windows keep their size in segments", "[cc]") {
  const Algorithm& a = cc::newreno();
  CcVars v = fresh(a, 1460);
  v.cwnd = 20 * 1460;
  v.ssthresh = 15 * 1460;
  v.bytes_acked = 5 * 1460;
  a.set_mss(v, 1000);
  CHECK(v.mss == 1000);
  CHECK(v.cwnd == 20000);
  CHECK(v.ssthresh == 15000);
  CHECK(v.bytes_acked == 5000);
  a.set_mss(v, 0);  // ignored
  CHECK(v.mss == 1000);
  CHECK(v.cwnd == 20000);
  // A window of one segment stays one segment when the MSS grows.
  v.cwnd = 1000;
  v.ssthresh = cc::infinite_ssthresh;
  a.set_mss(v, 9000);
  CHECK(v.cwnd == 9000);
  CHECK(v.ssthresh == cc::infinite_ssthresh);
}

// ===== CUBIC =====

TEST_CASE("cubic: loss sets W_max, ssthresh = 0.7 flight, and K for a known W_max", "[cc]") {
  const Algorithm& a = cc::cubic();
  CcVars v = after_loss(a, 1000, 100, t0);
  CHECK(v.cubic.w_max == Approx(100));
  CHECK(v.cubic.cwnd_prior == Approx(100));
  CHECK(v.ssthresh == 70000);
  CHECK(v.cwnd == 70000);
  CHECK_FALSE(v.cubic.epoch_valid);
  // The first congestion-avoidance ACK starts the epoch.
  a.on_ack(v, 1000, v.cwnd, 100 * ms, t0 + 10 * ms);
  REQUIRE(v.cubic.epoch_valid);
  CHECK(v.cubic.epoch_start_ns == t0 + 10 * ms);
  // K = cbrt(W_max (1 - beta) / C) = cbrt(100 * 0.3 / 0.4) = cbrt(75).
  CHECK(v.cubic.k == Approx(std::cbrt(75.0)));
  CHECK(v.cubic.k == Approx(4.2172).epsilon(1e-4));
  CHECK(v.cubic.origin_point == Approx(100));
  CHECK(v.cubic.w_est == Approx(70 + cc::cubic_alpha / 70).epsilon(1e-6));
}

TEST_CASE("cubic: concave up to W_max, plateau, convex beyond", "[cc]") {
  const Algorithm& a = cc::cubic();
  const uint64_t rtt = 100 * ms;
  uint64_t now = t0;
  // W_max large enough that the Reno-friendly estimate (about 5 segments a
  // second here) stays below the cubic curve for the whole run.
  CcVars v = after_loss(a, 1000, 1000, now);
  ack_into_epoch(a, v, now, rtt);
  const uint64_t epoch = v.cubic.epoch_start_ns;
  const double k = v.cubic.k;
  REQUIRE(k == Approx(std::cbrt(750.0)));  // 9.086 s
  auto curve = [&](double t) { return cc::cubic_c * std::pow(t - k, 3) + 1000; };
  // Sample cwnd (segments) once per RTT up to K + 4 s.
  std::vector<double> w;
  std::vector<double> t;
  while (now - epoch < uint64_t((k + 4) * sec)) {
    run_rtt(a, v, now, rtt);
    w.push_back(segs(v));
    t.push_back(double(now - epoch) / sec);
    // Never ahead of the curve one RTT on; chasing it, never more than one
    // RTT's worth of the curve behind.
    CHECK(w.back() <= curve(t.back() + 0.1) + 1);
    CHECK(w.back() >= curve(t.back() - 0.1) - 1);
    CHECK(w.back() > v.cubic.w_est);  // cubic region, not Reno-friendly
  }
  auto at = [&](double when) {
    for (size_t i = 0; i < t.size(); ++i)
      if (t[i] >= when) return w[i];
    return w.back();
  };
  // Concave: growth slows down approaching W_max, and stays below it.
  double g[4] = {at(2) - at(0.1), at(4) - at(2), at(6) - at(4), at(8) - at(6)};
  CHECK(g[0] > g[1]);
  CHECK(g[1] > g[2]);
  CHECK(g[2] > g[3]);
  CHECK(g[3] >= 0);
  CHECK(at(k - 1) < 1000);
  // Plateau: at W_max around t = K.
  CHECK(at(k) == Approx(1000).margin(1));
  CHECK(at(k + 0.5) - at(k - 0.5) < 1);
  // Convex: growth speeds up beyond W_max.
  double h[3] = {at(k + 2) - at(k + 1), at(k + 3) - at(k + 2), at(k + 4) - at(k + 3)};
  CHECK(h[0] > at(k + 1) - at(k));
  CHECK(h[1] > h[0]);
  CHECK(h[2] > h[1]);
  CHECK(at(k + 3.9) > 1020);
}

TEST_CASE("cubic: Reno-friendly region at small RTT", "[cc]") {
  const Algorithm& a = cc::cubic();
  const uint64_t rtt = 1 * ms;
  uint64_t now = t0;
  CcVars v = after_loss(a, 1000, 20, now);  // W_max 20, cwnd 14, K = cbrt(15) = 2.47 s
  uint64_t now_nr = t0;
  CcVars nr = after_loss(cc::newreno(), 1000, 20, now_nr);  // cwnd 10
  const int rounds = 200;
  for (int r = 1; r <= rounds; ++r) {
    run_rtt(a, v, now, rtt);
    run_rtt(cc::newreno(), nr, now_nr, rtt);
    // The window is W_est: alpha_cubic per RTT up to cwnd_prior = 20, then 1
    // (a little less per round, since the window grows within the round).
    double reno_friendly = r * cc::cubic_alpha <= 6 ? 14 + r * cc::cubic_alpha
                                                    : 20 + (r - 6 / cc::cubic_alpha);
    CHECK(segs(v) == Approx(reno_friendly).margin(0.5).epsilon(0.03));
    CHECK(segs(v) == Approx(v.cubic.w_est).margin(0.01));
  }
  double t = double(now - v.cubic.epoch_start_ns) / sec;
  CHECK(cc::cubic_c * std::pow(t - v.cubic.k, 3) + 20 < 20);  // the cubic curve is far below
  // About the window NewReno reaches from the same loss (beta 0.7 but alpha 0.53 at first).
  CHECK(segs(v) == Approx(segs(nr)).epsilon(0.02));
}

TEST_CASE("cubic: fast convergence lowers W_max", "[cc]") {
  const Algorithm& a = cc::cubic();
  CcVars v = after_loss(a, 1000, 100, t0);
  REQUIRE(v.cubic.w_max == Approx(100));
  // Next loss below the old W_max: W_max = cwnd (1 + beta) / 2.
  v.cwnd = 80000;
  a.on_congestion(v, Signal::fast_retransmit, 80000, t0 + sec);
  CHECK(v.cubic.w_max == Approx(68));
  CHECK(v.cubic.cwnd_prior == Approx(80));
  CHECK(v.ssthresh == 56000);
  a.post_recovery(v, 56000, t0 + sec);
  a.on_ack(v, 1000, v.cwnd, 100 * ms, t0 + 2 * sec);
  CHECK(v.cubic.k == Approx(std::cbrt((68.0 - 56.0) / cc::cubic_c)));
  // Loss above W_max: plain W_max = cwnd.
  v.cwnd = 90000;
  a.on_congestion(v, Signal::fast_retransmit, 90000, t0 + 3 * sec);
  CHECK(v.cubic.w_max == Approx(90));
}

TEST_CASE("cubic: ssthresh uses flight, not cwnd; ECN and RTO", "[cc]") {
  const Algorithm& a = cc::cubic();
  CcVars v = fresh(a, 1000);
  v.cwnd = 100000;
  SECTION("application-limited flight at loss") {
    a.on_congestion(v, Signal::fast_retransmit, 40000, t0);
    CHECK(v.ssthresh == 28000);
    CHECK(v.cwnd == 28000);
    CHECK(v.cubic.w_max == Approx(100));
  }
  SECTION("tiny flight: ssthresh and cwnd at least 2*SMSS") {
    a.on_congestion(v, Signal::fast_retransmit, 1000, t0);
    CHECK(v.ssthresh == 2000);
    CHECK(v.cwnd == 2000);
  }
  SECTION("ecn: cwnd may go to one segment, ssthresh stays >= 2*SMSS") {
    a.on_congestion(v, Signal::ecn, 100000, t0);
    CHECK(v.ssthresh == 70000);
    CHECK(v.cwnd == 70000);
    a.on_congestion(v, Signal::ecn, 1000, t0);
    CHECK(v.ssthresh == 2000);
    CHECK(v.cwnd == 1000);
  }
  SECTION("rto: loss window, then K = 0 and W_max = cwnd at the start of avoidance") {
    a.on_congestion(v, Signal::rto, 100000, t0);
    CHECK(v.ssthresh == 70000);
    CHECK(v.cwnd == 1000);
    CHECK(v.cubic.w_max == 0);
    CHECK(v.cubic.cwnd_prior == Approx(100));
    uint64_t now = t0;
    ack_into_epoch(a, v, now, 100 * ms);
    CHECK(v.cwnd >= 70000);
    CHECK(v.cwnd < 70100);
    CHECK(v.cubic.k == 0);
    CHECK(v.cubic.origin_point == Approx(70));
    CHECK(v.cubic.w_max == Approx(70));
    const uint64_t epoch = v.cubic.epoch_start_ns;
    auto at = [&](uint64_t when) {
      while (now - epoch < when) run_rtt(a, v, now, 100 * ms);
      return segs(v);
    };
    // First Reno-friendly (W_est outgrows 0.4 t^3 for a few seconds) ...
    double w2 = at(2 * sec);
    CHECK(w2 == Approx(v.cubic.w_est).margin(0.01));
    CHECK(w2 > 70 + 0.4 * 8);
    // ... then convex from W_max = 70 with K = 0.
    double w5 = at(5 * sec), w6 = at(6 * sec), w7 = at(7 * sec);
    CHECK(w6 - w5 < w7 - w6);
    CHECK(w7 == Approx(70 + 0.4 * 343).margin(12));
    CHECK(w7 > v.cubic.w_est + 50);
  }
}

TEST_CASE("cubic: after_idle resets the epoch; app-limited time does not count", "[cc]") {
  const Algorithm& a = cc::cubic();
  const uint64_t rtt = 100 * ms;
  uint64_t now = t0;
  CcVars v = after_loss(a, 1000, 100, now);
  for (int r = 0; r < 10; ++r) run_rtt(a, v, now, rtt);
  REQUIRE(v.cubic.epoch_valid);
  const uint64_t epoch = v.cubic.epoch_start_ns;

  SECTION("application-limited ACKs slide the epoch and do not grow cwnd") {
    uint32_t before = v.cwnd;
    for (int i = 0; i < 100; ++i) {
      now += 100 * ms;
      a.on_ack(v, 1000, v.cwnd / 4, rtt, now);
    }
    CHECK(v.cwnd == before);
    CHECK(v.cubic.epoch_start_ns == epoch + 10 * sec);
    // Back to cwnd-limited: growth continues from where it was, not 10 s later
    // on the curve (which would be far past W_max).
    run_rtt(a, v, now, rtt);
    CHECK(segs(v) < 100);
  }
  SECTION("after_idle") {
    v.ssthresh = v.cwnd;
    uint32_t before = v.cwnd;
    now += 30 * sec;
    a.after_idle(v, now);
    CHECK_FALSE(v.cubic.epoch_valid);
    CHECK(v.cwnd == cc::initial_window(1000));
    CHECK(v.ssthresh == before);
    CHECK(v.cubic.w_max == Approx(100));  // the memory of the last loss is kept
    // Slow start back to ssthresh, then a new epoch that begins then.
    ack_into_epoch(a, v, now, rtt);
    CHECK(v.cubic.epoch_start_ns > epoch + 30 * sec);
    CHECK(v.cubic.k == Approx(std::cbrt((100.0 - double(v.ssthresh) / 1000) / cc::cubic_c)));
  }
}

// ===== Bounds =====

TEST_CASE("cwnd never below 1 MSS and never overflowing", "[cc]") {
  for (const Algorithm* a : {&cc::newreno(), &cc::cubic()}) {
    CAPTURE(a->name());
    SECTION("growth saturates at max_cwnd") {
      CcVars v = fresh(*a, 65535);
      v.cwnd = cc::max_cwnd - 1000;
      a->on_ack(v, 0xffffffffu, 0xffffffffu, 0, t0);  // slow start
      CHECK(v.cwnd == cc::max_cwnd);
      v.ssthresh = v.cwnd;  // congestion avoidance, CUBIC far into its convex region
      uint64_t now = t0;
      for (int i = 0; i < 1000; ++i) {
        now += 1000 * sec;
        a->on_ack(v, 0xffffffffu, 0xffffffffu, 10 * sec, now);
        check_invariants(v);
      }
      CHECK(v.cwnd == cc::max_cwnd);
    }
    SECTION("huge flight on loss") {
      CcVars v = fresh(*a, 1460);
      v.cwnd = cc::max_cwnd;
      a->on_congestion(v, Signal::fast_retransmit, 0xffffffffu, t0);
      check_invariants(v);
      a->post_recovery(v, 0xffffffffu, t0);
      check_invariants(v);
    }
    SECTION("repeated RTOs and nothing in flight") {
      CcVars v = fresh(*a, 1460);
      for (int i = 0; i < 10; ++i) {
        a->on_congestion(v, Signal::rto, 0, t0);
        a->on_congestion(v, Signal::ecn, 0, t0);
        a->post_recovery(v, 0, t0);
        a->after_idle(v, t0);
        check_invariants(v);
        CHECK(v.cwnd >= 1460);
      }
    }
    SECTION("random operations") {
      std::mt19937_64 rng(0xc0ffee);
      CcVars v = fresh(*a, 1460);
      uint64_t now = t0;
      auto any_u32 = [&] {
        switch (rng() % 4) {
          case 0: return uint32_t(0);
          case 1: return uint32_t(0xffffffffu - rng() % 4);
          case 2: return uint32_t(rng() % (4 * v.cwnd + 1));
          default: return uint32_t(rng());
        }
      };
      for (int i = 0; i < 100000; ++i) {
        now += rng() % (2 * sec);
        switch (rng() % 16) {
          case 0: a->on_congestion(v, Signal::fast_retransmit, any_u32(), now); break;
          case 1: a->on_congestion(v, Signal::rto, any_u32(), now); break;
          case 2: a->on_congestion(v, Signal::ecn, any_u32(), now); break;
          case 3: a->post_recovery(v, any_u32(), now); break;
          case 4: a->after_idle(v, now); break;
          case 5: a->set_mss(v, uint32_t(rng() % 9001)); break;
          default: a->on_ack(v, any_u32(), rng() % 2 ? v.cwnd : any_u32(), rng() % (2 * sec), now);
        }
        check_invariants(v);
        REQUIRE(std::isfinite(v.cubic.w_est));
        REQUIRE(std::isfinite(v.cubic.k));
      }
    }
  }
}
