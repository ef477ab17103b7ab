// SPDX-License-Identifier: BSD-3-Clause
// echo_client: connects to an echo server, sends BYTES bytes of a pattern
// (byte i = i mod 251) in writes of at most MSG_SIZE bytes, checks every byte
// that comes back, and closes once all of it is back. Prints one line:
//   echo_client: 1048576 bytes in 0.052 s, 20.1 MB/s, ok
// and exits 0 only if every byte came back intact.
//
// The copying calls (write) on the way out, zero copy (recv, a Buffer's
// segments read in place) on the way back. One instance runs the connection;
// other instances (if configured) just keep their queues serviced.
//
// Run it on a tap port against the kernel (root; a kernel echo server on 198.18.0.1:7000):
//   ip netns add keel-demo
//   ip netns exec keel-demo ip tuntap add dev ktap0 mode tap multi_queue
//   ip netns exec keel-demo ip addr add 198.18.0.1/24 dev ktap0
//   ip netns exec keel-demo ip link set ktap0 up
//   ip netns exec keel-demo ncat -l -k 198.18.0.1 7000 -e /bin/cat &
//   ip netns exec keel-demo build/examples/echo_client --config examples/tap.conf 198.18.0.1 7000 10M 1460
//   ip netns del keel-demo
#include <keel/keel.hpp>

#include <cstdio>
#include <vector>

#include "common.hpp"

namespace {

struct Run {
  keel::Endpoint server;
  uint64_t total = 0, msg_size = 0;
  uint64_t sent = 0, received = 0;
  bool done = false, ok = true;
  const char* why = "";  // the first problem seen
  std::vector<uint8_t> pattern;  // msg_size + 251 bytes: any offset's next message is one slice

  void fail(const char* what) {
    if (ok) why = what;
    ok = false;
    done = true;
  }

  void send_more(keel::Connection c) {
    while (sent < total) {
      size_t len = size_t(std::min(msg_size, total - sent));
      auto n = c.write(pattern.data() + sent % 251, len);
      if (!n) {
        if (n.error() != keel::Errc::would_block) fail("write failed");
        return;  // would_block: a writable event follows
      }
      sent += *n;
    }
    // No shutdown() here: after a half-close, the echo's last bytes and the
    // server's FIN can arrive in one burst that also ends the connection
    // (TIME-WAIT): the event is readable|peer_closed|closed, and recv() on a
    // closed connection has nothing to give. We close once everything is back.
  }

  void receive(keel::Connection c) {
    for (;;) {
      auto b = c.recv();
      if (!b) {
        if (b.error() != keel::Errc::would_block) fail("recv failed");
        return;
      }
      if (b->empty()) return fail("the server closed before echoing everything");
      b->for_each_segment([&](keel::Segment s) {
        for (size_t i = 0; i < s.size; ++i)
          if (s.data[i] != uint8_t((received + i) % 251)) return fail("a byte came back changed");
        received += s.size;
      });
      if (received > sent) fail("more bytes came back than were sent");
      if (received == total) done = true;
      // b goes out of scope here: its mbufs are freed and the window opens again.
    }
  }
};

void client(keel::Stack& stack, Run& run) {
  if (!examples::first_to_ask()) {  // one instance connects; the others keep polling
    while (stack.running()) (void)stack.poll();
    return;
  }
  for (size_t i = 0; i < run.pattern.size(); ++i) run.pattern[i] = uint8_t(i % 251);
  keel::ConnectOptions opt;
  opt.timeout_ms = 5000;
  uint64_t t0 = stack.now_ns();
  auto c = stack.connect(run.server, opt);
  if (!c) {
    std::fprintf(stderr, "echo_client: connect %s: %s\n", run.server.to_string().c_str(),
                 std::string(keel::to_string(c.error())).c_str());
    run.fail("connect failed");
  }
  bool gone = !c;  // after a closed event every call on the handle fails
  while (stack.running() && !run.done) {
    for (const keel::Event& ev : stack.poll()) {
      if (ev.has(keel::event::closed)) {
        if (ev.error != keel::Errc::ok)
          std::fprintf(stderr, "echo_client: %s\n", std::string(keel::to_string(ev.error)).c_str());
        run.fail("the connection closed before the echo was complete");
        gone = true;
        break;
      }
      if (ev.has(keel::event::readable | keel::event::peer_closed)) run.receive(ev.conn);
      if (ev.has(keel::event::connected | keel::event::writable)) run.send_more(ev.conn);
    }
  }
  double secs = double(stack.now_ns() - t0) / 1e9;
  if (!run.done) run.fail("interrupted");
  if (!gone) (void)c->close();
  // A few more iterations send our FIN (and ACK the server's) before the runtime stops.
  for (uint64_t until = stack.now_ns() + 50'000'000; stack.now_ns() < until;) (void)stack.poll();
  std::printf("echo_client: %llu bytes in %.3f s, %.1f MB/s, %s%s\n", (unsigned long long)run.received, secs,
              double(run.received) / 1e6 / secs, run.ok ? "ok" : "FAILED: ", run.why);
  std::fflush(stdout);
  stack.request_stop();
}

}  // namespace

int main(int argc, char** argv) {
  const char* usage =
      "usage: echo_client [--config FILE] ADDR PORT [BYTES [MSG_SIZE]]\n"
      "  BYTES (default 1M) and MSG_SIZE (default 16k) take a k, M or G suffix";
  auto args = examples::arguments(argc, argv);
  auto cfg = examples::configure(args, usage);
  if (!cfg) return 1;
  Run run;
  auto server = args.size() >= 2 && args.size() <= 4 ? examples::parse_endpoint(args[0], args[1]) : std::nullopt;
  auto total = args.size() >= 3 ? examples::parse_size(args[2]) : 1u << 20;
  auto msg = args.size() >= 4 ? examples::parse_size(args[3]) : 16u << 10;
  if (!server || !total || !msg || *msg == 0) {
    std::fprintf(stderr, "%s\n", usage);
    return 2;
  }
  run.server = *server;
  run.total = *total;
  run.msg_size = *msg;
  run.pattern.resize(*msg + 251);
  int rc = examples::run(*cfg, [&run](keel::Stack& s) { client(s, run); });
  return rc != 0 ? rc : run.ok ? 0 : 1;
}
