// SPDX-License-Identifier: BSD-3-Clause
#include "bench_run.hpp"

#include <chrono>
#include <cstdio>
#include <thread>

#include "bench_client.hpp"
#include "cli.hpp"

namespace keel::pmd {

namespace {

using Clock = std::chrono::steady_clock;

// A busy instance with thousands of connections may take a while to reach its
// control ring; the closures themselves are short.
constexpr unsigned control_timeout_ms = 10'000;
constexpr auto setup_stall = std::chrono::seconds(10);

/// The client's figures at one instant, taken on its lcore.
struct Snapshot {
  uint64_t t_ns = 0, ops = 0, bytes = 0, errors = 0, non2xx = 0, retransmits = 0;
  uint32_t established = 0;
};

Snapshot take(BenchClient& c, engine::Instance& inst) {
  Snapshot s;
  s.t_ns = engine::now_ns();
  s.ops = c.ops.load(std::memory_order_relaxed);
  s.bytes = c.bytes_now();
  s.errors = c.errors.load(std::memory_order_relaxed);
  s.non2xx = c.non2xx.load(std::memory_order_relaxed);
  s.retransmits = inst.counters().get(engine::Counter::tcp_retransmits);
  s.established = c.established.load(std::memory_order_relaxed);
  return s;
}

// Runs `fn(client, instance)` on instance 0 and waits.
template <class F>
bool on_lcore(engine::Engine& e, const std::shared_ptr<BenchClient>& c, F fn) {
  return run_on(*e.instances().front(), [c, fn](engine::Instance& i) { fn(*c, i); },
                control_timeout_ms);
}

const char* ops_label(BenchKind k) {
  switch (k) {
    case BenchKind::rr: return "trans/s";
    case BenchKind::crr: return "conn/s";
    case BenchKind::http: return "req/s";
    default: return "ops/s";
  }
}

}  // namespace

std::string start_and_wait_ready(engine::Engine& e, const std::shared_ptr<BenchClient>& c,
                                 std::ostream& out) {
  if (!on_lcore(e, c, [](BenchClient& b, engine::Instance&) { b.start(); }))
    return "instance 0 not responding";
  const auto t0 = Clock::now();
  auto progress_at = t0, next_report = t0 + std::chrono::seconds(1);
  uint64_t progress = 0;
  const unsigned want = c->args().conns;
  while (!c->ready()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    auto now = Clock::now();
    uint64_t p = c->established.load() + c->errors.load();
    if (p != progress) {
      progress = p;
      progress_at = now;
    }
    if (now >= next_report) {
      next_report += std::chrono::seconds(1);
      out << "set-up: " << c->established.load() << " of " << want << " connections established, "
          << c->errors.load() << " failed\n"
          << std::flush;
    }
    if (now - progress_at >= setup_stall)
      return "set-up stalled: " + std::to_string(c->established.load()) + " of " +
             std::to_string(want) + " connections established";
  }
  return "";
}

bool stop_bench(engine::Engine& e, const std::shared_ptr<BenchClient>& c) {
  bool ok = on_lcore(e, c, [](BenchClient& b, engine::Instance&) { b.stop(); });
  // The aborts go out a batch a millisecond: 10,000 connections take ~40 ms.
  const auto limit = Clock::now() + std::chrono::milliseconds(control_timeout_ms);
  while (ok && !c->stopped() && Clock::now() < limit)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  if (ok && c->stopped()) return true;
  // Its connections or timer may still call it: keep it alive for good.
  new std::shared_ptr<BenchClient>(c);
  return false;
}

BenchResult run_bench(engine::Engine& e, const std::shared_ptr<BenchClient>& c, std::ostream& out) {
  const BenchArgs& a = c->args();
  BenchResult res;
  res.failure = start_and_wait_ready(e, c, out);
  if (!res.failure.empty()) {
    res.errors = c->errors.load();
    stop_bench(e, c);
    return res;
  }

  const double warm = bench_warmup_seconds(a.seconds);
  char line[160];
  std::snprintf(line, sizeof line, "warm-up %.2f s, then %.2f s measured\n%6s %8s %10s %8s %8s %8s\n",
                warm, a.seconds, "time", "conns", ops_label(a.kind), "Gbit/s", "retrans", "errors");
  out << line << std::flush;

  // Everything below is read on the lcore: the window's edges are where the
  // instance was, not where this thread woke up.
  auto snap = std::make_shared<Snapshot>();
  auto s0 = std::make_shared<Snapshot>(), s1 = std::make_shared<Snapshot>();
  auto hist = std::make_shared<tools::LatencyHistogram>();
  bool ok = on_lcore(e, c, [snap](BenchClient& b, engine::Instance& i) { *snap = take(b, i); });
  Snapshot prev = *snap;

  const auto t0 = Clock::now();
  auto at = [&](double s) { return t0 + std::chrono::nanoseconds(int64_t(s * 1e9)); };
  const auto begin = at(warm), end = at(warm + a.seconds);
  bool begun = false;
  unsigned sec = 1;
  while (ok) {
    auto next_row = t0 + std::chrono::seconds(sec);
    auto wake = std::min(next_row, begun ? end : begin);
    std::this_thread::sleep_until(wake);
    if (!begun && Clock::now() >= begin) {
      begun = true;
      ok = on_lcore(e, c, [s0](BenchClient& b, engine::Instance& i) {
        b.latency.reset();
        *s0 = take(b, i);
      });
    }
    if (begun && Clock::now() >= end) {
      ok = ok && on_lcore(e, c, [s1, hist](BenchClient& b, engine::Instance& i) {
             *s1 = take(b, i);
             *hist = b.latency;
           });
      break;
    }
    if (Clock::now() >= next_row && ok) {
      ok = on_lcore(e, c, [snap](BenchClient& b, engine::Instance& i) { *snap = take(b, i); });
      const Snapshot& s = *snap;
      double dt = double(s.t_ns - prev.t_ns) / 1e9;
      std::snprintf(line, sizeof line, "%5us %8u %10.0f %8.2f %8llu %8llu\n", sec, s.established,
                    dt > 0 ? double(s.ops - prev.ops) / dt : 0.0,
                    dt > 0 ? double(s.bytes - prev.bytes) * 8 / 1e9 / dt : 0.0,
                    (unsigned long long)(s.retransmits - prev.retransmits),
                    (unsigned long long)s.errors);
      out << line << std::flush;
      prev = s;
      ++sec;
    }
  }
  if (!stop_bench(e, c) || !ok) {
    res.failure = "instance 0 not responding";
    return res;
  }
  res.seconds = double(s1->t_ns - s0->t_ns) / 1e9;
  res.ops = s1->ops - s0->ops;
  res.bytes = s1->bytes - s0->bytes;
  res.errors = s1->errors;
  res.non2xx = s1->non2xx - s0->non2xx;
  res.retransmits = s1->retransmits - s0->retransmits;
  res.latency = *hist;
  return res;
}

}  // namespace keel::pmd
