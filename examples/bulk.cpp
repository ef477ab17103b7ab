// SPDX-License-Identifier: BSD-3-Clause
// bulk: one-way TCP throughput with zero copy at both ends.
//   bulk send ADDR PORT BYTES [CHUNK]   buffers from Stack::alloc (CHUNK bytes,
//                                       default 64k), filled once and handed
//                                       to send(); the stack transmits those
//                                       very mbufs and frees them when ACKed
//   bulk recv [PORT]                    counts what recv() hands over and
//                                       releases it (port 5001 by default);
//                                       one line per connection, runs until SIGINT
// Both print "bulk send|recv: BYTES bytes in S s, X Gbit/s". The sender's
// clock runs from connect() until the receiver has acknowledged everything.
//
// Run it on a tap port against the kernel (root):
//   ip netns add keel-demo
//   ip netns exec keel-demo ip tuntap add dev ktap0 mode tap multi_queue
//   ip netns exec keel-demo ip addr add 198.18.0.1/24 dev ktap0
//   ip netns exec keel-demo ip link set ktap0 up
//   # keel receives, the kernel sends:
//   ip netns exec keel-demo build/examples/bulk --config examples/tap.conf recv 5001 &
//   head -c 100M /dev/zero | ip netns exec keel-demo ncat --send-only 198.18.0.2 5001
//   # keel sends, the kernel receives:
//   ip netns exec keel-demo ncat -l --recv-only 198.18.0.1 5002 >/dev/null &
//   ip netns exec keel-demo build/examples/bulk --config examples/tap.conf send 198.18.0.1 5002 1G
//   ip netns del keel-demo
#include <keel/keel.hpp>

#include <cstdio>
#include <cstring>

#include "common.hpp"

namespace {

void report(const char* what, uint64_t bytes, uint64_t ns) {
  double secs = double(ns) / 1e9;
  std::printf("bulk %s: %llu bytes in %.3f s, %.2f Gbit/s\n", what, (unsigned long long)bytes, secs,
              secs > 0 ? double(bytes) * 8 / 1e9 / secs : 0.0);
  std::fflush(stdout);
}

// ----- bulk send -----

struct Sender {
  keel::Endpoint peer;
  uint64_t total = 0, chunk = 0;
  uint64_t queued = 0;   // bytes handed to send()
  keel::Buffer next;     // filled, not yet taken (would_block)
  bool ok = false;
};

// Fills and queues buffers until the send buffer or the pool is full.
// False on an error other than would_block / no_memory.
bool fill(keel::Stack& stack, keel::Connection c, Sender& s) {
  while (s.queued < s.total) {
    if (s.next.empty()) {
      auto b = stack.alloc(size_t(std::min(s.chunk, s.total - s.queued)));
      if (!b) return b.error() == keel::Errc::no_memory;  // the pool refills as ACKs arrive
      // Filled once, here: the data the application would produce in place.
      b->for_each_segment([](keel::Segment seg) { std::memset(seg.data, 'k', seg.size); });
      s.next = std::move(*b);
    }
    size_t n = s.next.size();
    if (auto r = c.send(s.next); !r) return r.error() == keel::Errc::would_block;
    s.queued += n;
  }
  (void)c.shutdown();  // FIN after the data; the receiver's FIN ends the run
  return true;
}

void sender(keel::Stack& stack, Sender& s) {
  if (!examples::first_to_ask()) {  // one instance connects; the others keep polling
    while (stack.running()) (void)stack.poll();
    return;
  }
  uint64_t t0 = stack.now_ns();
  keel::ConnectOptions opt;
  opt.timeout_ms = 5000;
  auto c = stack.connect(s.peer, opt);
  if (!c) {
    std::fprintf(stderr, "bulk send: connect %s: %s\n", s.peer.to_string().c_str(),
                 std::string(keel::to_string(c.error())).c_str());
    stack.request_stop();
    return;
  }
  bool connected = false, done = false, gone = false;
  while (stack.running() && !done) {
    // Retried every iteration while connected: an exhausted pool raises no event.
    if (connected && s.queued < s.total && !fill(stack, *c, s)) break;
    // Done when the receiver has acknowledged everything (FIN included).
    if (connected && s.queued == s.total)
      if (auto info = c->info(); info && info->send_queued == 0) s.ok = done = true;
    for (const keel::Event& ev : stack.poll()) {
      if (ev.has(keel::event::closed)) {  // the handle is dead: no more calls on it
        gone = done = true;
        s.ok = ev.error == keel::Errc::ok && s.queued == s.total;
        if (ev.error != keel::Errc::ok)
          std::fprintf(stderr, "bulk send: %s\n", std::string(keel::to_string(ev.error)).c_str());
        continue;
      }
      if (ev.has(keel::event::connected)) connected = true;
      keel::Connection conn = ev.conn;  // a handle: copy it to call it (Event is const)
      if (ev.has(keel::event::readable)) (void)conn.recv();  // the receiver sends nothing; drop it
      // peer_closed: the receiver half-closed (some do at once); we keep sending.
    }
  }
  report("send", s.queued, stack.now_ns() - t0);
  s.next = keel::Buffer();  // back to the pool on this lcore
  if (!gone) (void)c->close();
  for (uint64_t until = stack.now_ns() + 50'000'000; stack.now_ns() < until;) (void)stack.poll();
  stack.request_stop();
}

// ----- bulk recv -----

struct Count {
  uint64_t bytes = 0;
  uint64_t t0 = 0;
};

void receiver(keel::Stack& stack, uint16_t port) {
  if (!examples::listen(stack, "bulk recv", port)) return;
  examples::ConnTable<Count> conns;
  while (stack.running()) {
    for (const keel::Event& ev : stack.poll()) {
      uint64_t id = conns.id_of(ev);  // a fresh Count for an accepted connection
      Count* st = conns.at(id);
      if (st == nullptr) continue;
      if (ev.has(keel::event::accepted)) st->t0 = stack.now_ns();
      if (ev.has(keel::event::closed)) {
        std::fprintf(stderr, "bulk recv: %s after %llu bytes\n", std::string(keel::to_string(ev.error)).c_str(),
                     (unsigned long long)st->bytes);
        conns.detach(id);
        continue;
      }
      keel::Connection c = ev.conn;
      for (;;) {
        auto b = c.recv();
        if (!b) break;  // would_block: a readable event follows
        if (b->empty()) {  // the sender's FIN: all of it is here
          report("recv", st->bytes, stack.now_ns() - st->t0);
          (void)c.close();
          conns.detach(id);
          break;
        }
        st->bytes += b->size();
        // b is released here: the mbufs go back to the pool, the window reopens.
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const char* usage =
      "usage: bulk [--config FILE] send ADDR PORT BYTES [CHUNK]\n"
      "       bulk [--config FILE] recv [PORT]\n"
      "  BYTES and CHUNK (default 64k) take a k, M or G suffix; PORT defaults to 5001";
  auto args = examples::arguments(argc, argv);
  auto cfg = examples::configure(args, usage);
  if (!cfg) return 1;
  if (args.size() >= 4 && args.size() <= 5 && args[0] == "send") {
    Sender s;
    auto peer = examples::parse_endpoint(args[1], args[2]);
    auto total = examples::parse_size(args[3]);
    auto chunk = args.size() == 5 ? examples::parse_size(args[4]) : 64u << 10;
    if (peer && total && chunk && *chunk > 0) {
      s.peer = *peer;
      s.total = *total;
      s.chunk = *chunk;
      int rc = examples::run(*cfg, [&s](keel::Stack& st) { sender(st, s); });
      return rc != 0 ? rc : s.ok ? 0 : 1;
    }
  } else if (args.size() <= 2 && !args.empty() && args[0] == "recv") {
    uint16_t port = args.size() == 2 ? examples::parse_port(args[1]) : 5001;
    if (port != 0) return examples::run(*cfg, [port](keel::Stack& st) { receiver(st, port); });
  }
  std::fprintf(stderr, "%s\n", usage);
  return 2;
}
