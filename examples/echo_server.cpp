// SPDX-License-Identifier: BSD-3-Clause
// echo_server: RFC 862 echo with zero copy. Every instance listens on PORT;
// the received Buffer (the port's own mbufs) is sent straight back. When the
// send buffer is full the Buffer is kept and the next writable event sends
// it; meanwhile nothing more is read, so the receive window closes and the
// peer waits (backpressure). After the peer's FIN, once everything is
// echoed, the connection is closed.
//
// Run it on a tap port with the kernel as the peer (root):
//   ip netns add keel-demo
//   ip netns exec keel-demo ip tuntap add dev ktap0 mode tap multi_queue
//   ip netns exec keel-demo ip addr add 198.18.0.1/24 dev ktap0
//   ip netns exec keel-demo ip link set ktap0 up
//   ip netns exec keel-demo build/examples/echo_server --config examples/tap.conf [PORT]
//   # or without a file:
//   ip netns exec keel-demo env KEEL_ADDR=198.18.0.2/24 KEEL_PORT=net_tap0 KEEL_EAL="-l 0 --no-huge -m 512 --no-pci --vdev net_tap0,iface=ktap0" build/examples/echo_server 7
//   # another shell:  ip netns exec keel-demo ncat 198.18.0.2 7
//   ip netns del keel-demo
#include <keel/keel.hpp>

#include <cstdio>

#include "common.hpp"

namespace {

struct Echo {
  keel::Buffer pending;  // received, not yet taken by send() (would_block)
  bool eof = false;      // the peer's FIN was received
};

// Echoes what is waiting until the send buffer is full or nothing is left.
// Returns false if the connection should be dropped (an error other than would_block).
bool pump(keel::Connection c, Echo& st) {
  for (;;) {
    if (st.pending.empty()) {
      if (st.eof) return true;
      auto r = c.recv();
      if (!r) return r.error() == keel::Errc::would_block;
      if (r->empty()) {  // end of stream
        st.eof = true;
        return true;
      }
      st.pending = std::move(*r);
    }
    auto s = c.send(st.pending);
    if (!s) return s.error() == keel::Errc::would_block;  // a writable event follows
  }
}

void serve(keel::Stack& stack, uint16_t port) {
  if (!examples::listen(stack, "echo_server", port)) return;
  examples::ConnTable<Echo> conns;
  while (stack.running()) {
    for (const keel::Event& ev : stack.poll()) {
      uint64_t id = conns.id_of(ev);  // a fresh Echo for an accepted connection
      Echo* st = conns.at(id);
      if (st == nullptr) continue;
      if (ev.has(keel::event::closed)) {  // reset or timed out: nothing left to echo
        conns.detach(id);
        continue;
      }
      keel::Connection c = ev.conn;
      if (!pump(c, *st)) {
        (void)c.abort();
        conns.detach(id);
      } else if (st->eof && st->pending.empty()) {
        (void)c.close();  // FIN after the echoed bytes are delivered
        conns.detach(id);
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const char* usage = "usage: echo_server [--config FILE] [PORT]   (PORT: 7 if not given)";
  return examples::server_main(argc, argv, usage, 7, serve);
}
