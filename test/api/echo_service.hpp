// SPDX-License-Identifier: BSD-3-Clause
#pragma once
// For tests of keel::Runtime: a Config over a net_ring port, and a zero-copy
// echo service for a real server loop (TCP or channels: the code is the same).

#include <catch2/catch.hpp>

#include <string>
#include <unordered_map>

#include <keel/keel.hpp>

namespace keel::test {

/// One net_ring port `dev` with address/prefix `addr`, a small pool and table.
/// `shm`: the intra-node fast path on (the Runtime's default) or off.
inline Config ring_runtime_config(const std::string& dev, const char* addr, bool shm) {
  Config c;
  PortOptions p;
  p.device = dev;
  p.addresses = {*Ipv4Prefix::parse(addr)};
  c.ports = {p};
  c.pool_mbufs = 8191;
  c.tcp.max_connections = 1024;
  c.tcp.msl_ms = 100;
  c.shm.enabled = shm;
  return c;
}

// Echo on port 7 with zero copy; a buffer that does not fit waits for
// writable. Per-connection state under the connection's user value.
inline void echo_server(Stack& s) {
  auto l = s.listen({Ipv4Address::any(), 7});
  REQUIRE(l);
  std::unordered_map<uint64_t, Buffer> waiting;
  uint64_t next_id = 1;
  while (s.running()) {
    for (const Event& e : s.poll()) {
      Connection c = e.conn;
      uint64_t id = e.user;
      if (e.has(event::accepted)) {
        id = next_id++;
        if (!c.set_user(id)) continue;
      }
      if (e.has(event::closed)) {
        waiting.erase(id);
        continue;
      }
      Buffer& held = waiting[id];
      if (e.has(event::readable) || e.has(event::writable)) {
        for (;;) {
          if (held.empty()) {
            auto b = c.recv();
            if (!b || b->empty()) break;
            held = std::move(*b);
          }
          if (!c.send(held)) break;  // would_block: a writable event follows
        }
      }
      if (e.has(event::peer_closed) && held.empty()) {
        (void)c.close();
        waiting.erase(id);
      }
    }
  }
}


}  // namespace keel::test
