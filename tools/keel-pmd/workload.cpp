// SPDX-License-Identifier: BSD-3-Clause
#include "workload.hpp"

#include <chrono>
#include <cstdio>
#include <thread>

#include "cli.hpp"
#include "traffic.hpp"

namespace keel::pmd {

namespace {
using Clock = std::chrono::steady_clock;

uint64_t now_ns() {
  auto t = Clock::now().time_since_epoch();
  return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(t).count());
}

// How long run_on waits for instance 0 to start or abort the connections: a
// busy instance under heavy loss may take a while to drain its queue of posts.
constexpr unsigned control_timeout_ms = 10'000;
}  // namespace

uint64_t counter_sum(const std::vector<engine::Engine*>& engines, engine::Counter c) {
  uint64_t v = 0;
  for (engine::Engine* e : engines)
    for (auto& i : e->instances()) v += i->counters().get(c);
  return v;
}

Workload::Workload(engine::Engine& client, std::vector<engine::Engine*> counted,
                   const WorkloadSpec& spec)
    : client_(client),
      counted_(std::move(counted)),
      spec_(spec),
      stats_(std::make_unique<TrafficStats>()) {}

Workload::~Workload() { abort(); }

Result<std::unique_ptr<Workload>, std::string> Workload::start(
    engine::Engine& client, std::vector<engine::Engine*> counted, const WorkloadSpec& spec) {
  std::unique_ptr<Workload> w(new Workload(client, std::move(counted), spec));
  w->retransmits0_ = counter_sum(w->counted_, engine::Counter::tcp_retransmits);
  w->segs0_ = counter_sum(w->counted_, engine::Counter::tcp_segs_out);
  w->t0_ns_ = now_ns();
  auto err = std::make_shared<Errc>(Errc::ok);
  TrafficStats* st = w->stats_.get();
  tcp::TcpStack* tcp = &client.tcp(0);
  bool ran = run_on(
      *client.instances().front(),
      [=](engine::Instance&) {
        Result<void> r;
        for (unsigned i = 0; i < spec.streams && r; ++i)
          r = start_stream(*tcp, spec.dst, spec.stream_port, spec.stream_bytes, *st);
        for (unsigned i = 0; i < spec.echoes && r; ++i)
          r = start_echo(*tcp, spec.dst, spec.echo_port, spec.echo_size, spec.echo_rounds,
                         spec.echo_seed + i, *st);
        if (!r) *err = r.error();
      },
      control_timeout_ms);
  if (!ran) return Unexpected<std::string>{"instance 0 is not responding"};
  if (*err != Errc::ok)
    return Unexpected<std::string>{"connect " + spec.dst.to_string() + ": " +
                                   std::string(to_string(*err))};
  return w;
}

void Workload::abort() {
  if (stats_ == nullptr) return;
  TrafficStats* st = stats_.get();
  tcp::TcpStack* tcp = &client_.tcp(0);
  if (!run_on(*client_.instances().front(), [=](engine::Instance&) { abort_all(*tcp, *st); },
              control_timeout_ms))
    (void)stats_.release();  // its connections may still write to it: leak it, never free it
}

WorkloadResult Workload::wait(std::ostream& out) {
  const TrafficStats& st = *stats_;
  WorkloadResult res;
  res.conns = spec_.streams + spec_.echoes;
  auto ended = [&] { return st.conns_done + st.conns_failed >= res.conns; };
  char line[128];
  std::snprintf(line, sizeof line, "%6s %8s %12s %10s %10s %12s\n", "time", "conns", "segments/s",
                "Gbit/s", "retrans", "verified MiB");
  out << line << std::flush;
  const auto t0 = Clock::now();
  uint64_t last_bytes = 0, last_segs = segs0_;
  uint64_t progress_bytes = 0;  // bytes at the last time any moved
  auto progress_at = t0;
  unsigned sec = 0;
  while (!ended()) {
    // Check for the end often (short workloads end in milliseconds), print once a second.
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    auto now = Clock::now();
    uint64_t bytes = st.bytes_sent + st.bytes_echoed;
    if (bytes != progress_bytes) {
      progress_bytes = bytes;
      progress_at = now;
    }
    if (now < t0 + std::chrono::seconds(sec + 1) && !ended()) continue;
    if (ended()) break;
    ++sec;
    uint64_t segs = counter_sum(counted_, engine::Counter::tcp_segs_out);
    uint64_t rexmt = counter_sum(counted_, engine::Counter::tcp_retransmits) - retransmits0_;
    std::snprintf(line, sizeof line, "%5us %8u %12llu %10.2f %10llu %12.1f\n", sec,
                  st.conns_open.load(), (unsigned long long)(segs - last_segs),
                  double(bytes - last_bytes) * 8 / 1e9, (unsigned long long)rexmt,
                  double(bytes) / (1 << 20));
    out << line << std::flush;
    last_bytes = bytes;
    last_segs = segs;
    if (spec_.max_seconds != 0 && sec >= spec_.max_seconds) {
      res.timed_out = true;
      break;
    }
    auto stall_limit = std::chrono::seconds(spec_.stall_seconds);
    if (spec_.stall_seconds != 0 && now - progress_at >= stall_limit) {
      res.stalled = true;
      break;
    }
  }
  res.seconds = double(now_ns() - t0_ns_) / 1e9;
  res.done = st.conns_done;
  res.failed = st.conns_failed;
  res.stream_bytes = st.bytes_sent;
  res.echo_bytes = st.bytes_echoed;
  res.mismatches = st.mismatches;
  res.retransmits = counter_sum(counted_, engine::Counter::tcp_retransmits) - retransmits0_;
  return res;
}

}  // namespace keel::pmd
