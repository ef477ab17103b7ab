// SPDX-License-Identifier: BSD-3-Clause
#include "ping.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>
#include <unistd.h>
#include <vector>

namespace keel::pmd {

namespace {
struct PingState {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<uint64_t> sent_ns;   // by seq
  std::vector<uint64_t> rtt_ns;    // by seq, 0 = no reply yet
  uint16_t id = 0;
};
}  // namespace

engine::Instance& ping_instance(engine::Engine& e, net::Ipv4Addr dst) {
  engine::Instance& first = *e.instances().front();
  const engine::FlowSteering* s = e.steering();
  if (s == nullptr) return first;
  // The interfaces' addresses are fixed once the engine is built: safe to read here.
  const engine::Interface* via = first.interfaces().front().get();
  for (const auto& ifc : first.interfaces())
    if (ifc->on_link(dst)) via = ifc.get();
  // Multi-process: the owner may be another process's; the first local instance then sends
  // (and misses the replies, which reach the owner).
  engine::Instance* owner = e.local_instance(s->owner(via->source_for(dst), dst));
  return owner != nullptr ? *owner : first;
}

PingResult ping(engine::Instance& inst, net::Ipv4Addr dst, unsigned count, unsigned interval_ms,
                size_t payload_len, std::ostream& out) {
  auto st = std::make_shared<PingState>();
  st->sent_ns.assign(count, 0);
  st->rtt_ns.assign(count, 0);
  st->id = uint16_t(getpid());
  // The hook runs on the instance's lcore; it only records the reply.
  inst.post([st](engine::Instance& i) {
    i.set_echo_reply_hook([st](const engine::EchoReply& r) {
      std::lock_guard lk(st->mu);
      if (r.id != st->id || r.seq >= st->rtt_ns.size() || st->sent_ns[r.seq] == 0) return;
      if (st->rtt_ns[r.seq] == 0) st->rtt_ns[r.seq] = std::max<uint64_t>(r.now_ns - st->sent_ns[r.seq], 1);
      st->cv.notify_all();
    });
  });
  out << "PING " << dst.to_string() << " " << payload_len << " data bytes\n" << std::flush;
  PingResult res;
  double sum = 0;
  for (unsigned seq = 0; seq < count; ++seq) {
    auto start = std::chrono::steady_clock::now();
    inst.post([st, dst, seq, payload_len](engine::Instance& i) {
      uint64_t now = engine::now_ns();
      {
        std::lock_guard lk(st->mu);
        st->sent_ns[seq] = now;
      }
      (void)i.send_echo_request(dst, st->id, uint16_t(seq), payload_len, now);
    });
    ++res.sent;
    std::unique_lock lk(st->mu);
    bool got = st->cv.wait_for(lk, std::chrono::seconds(1), [&] { return st->rtt_ns[seq] != 0; });
    if (got) {
      double ms = double(st->rtt_ns[seq]) / 1e6;
      ++res.received;
      sum += ms;
      res.min_ms = res.received == 1 ? ms : std::min(res.min_ms, ms);
      res.max_ms = std::max(res.max_ms, ms);
      char line[128];
      std::snprintf(line, sizeof line, "%zu bytes from %s: icmp_seq=%u time=%.3f ms\n",
                    payload_len + 8, dst.to_string().c_str(), seq, ms);
      out << line << std::flush;
    } else {
      out << "no reply for icmp_seq=" << seq << "\n" << std::flush;
    }
    lk.unlock();
    if (seq + 1 < count) std::this_thread::sleep_until(start + std::chrono::milliseconds(interval_ms));
  }
  inst.post([](engine::Instance& i) { i.set_echo_reply_hook(nullptr); });
  res.avg_ms = res.received ? sum / res.received : 0;
  char line[256];
  std::snprintf(line, sizeof line,
                "--- %s ping statistics ---\n%u packets transmitted, %u received, %.0f%% packet loss\n"
                "rtt min/avg/max = %.3f/%.3f/%.3f ms\n",
                dst.to_string().c_str(), res.sent, res.received,
                res.sent ? 100.0 * (res.sent - res.received) / res.sent : 0.0, res.min_ms,
                res.avg_ms, res.max_ms);
  out << line << std::flush;
  return res;
}

}  // namespace keel::pmd
