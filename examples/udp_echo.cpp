// SPDX-License-Identifier: BSD-3-Clause
// udp_echo: RFC 862 echo over UDP with zero copy. Every instance binds PORT
// (a datagram goes to the instance that owns its flow); each received
// datagram's Buffer (the port's own mbuf) is sent straight back to its sender.
//
// Run it on a tap port with the kernel as the peer (root):
//   ip netns add keel-demo
//   ip netns exec keel-demo ip tuntap add dev ktap0 mode tap multi_queue
//   ip netns exec keel-demo ip addr add 198.18.0.1/24 dev ktap0
//   ip netns exec keel-demo ip link set ktap0 up
//   ip netns exec keel-demo build/examples/udp_echo --config examples/tap.conf [PORT]
//   # another shell:  ip netns exec keel-demo ncat -u 198.18.0.2 7
//   ip netns del keel-demo
#include <keel/keel.hpp>

#include <cstdio>

#include "common.hpp"

namespace {

void serve(keel::Stack& stack, uint16_t port) {
  auto sock = stack.udp_bind({keel::Ipv4Address::any(), port});
  if (!sock) {
    std::fprintf(stderr, "udp_echo: bind port %u: %s\n", port,
                 std::string(keel::to_string(sock.error())).c_str());
    stack.request_stop();
    return;
  }
  if (stack.id() == 0) {
    std::printf("udp_echo: listening on port %u (%u instances)\n", port, stack.instances());
    std::fflush(stdout);
  }
  uint64_t echoed = 0, dropped = 0;
  while (stack.running()) {
    for (const keel::Event& ev : stack.poll()) {
      if (!(ev.udp == *sock) || !ev.has(keel::event::readable)) continue;
      // The readable event is an edge: drain the queue.
      while (auto d = sock->recv()) {
        if (sock->send_to(d->payload, d->from)) ++echoed;
        else ++dropped;  // no route, no mbuf, or a refused destination: counted, not fatal
      }
    }
  }
  std::printf("udp_echo: instance %u echoed %llu datagrams, dropped %llu\n", stack.id(),
              (unsigned long long)echoed, (unsigned long long)dropped);
  (void)sock->close();
}

}  // namespace

int main(int argc, char** argv) {
  return examples::server_main(argc, argv, "usage: udp_echo [--config FILE] [--stats] [PORT]", 7, serve);
}
