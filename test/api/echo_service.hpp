// SPDX-License-Identifier: BSD-3-Clause
#pragma once
// A zero-copy echo service on the native API, for tests that need a real
// server loop on a Runtime (TCP or channels: the code is the same).

#include <catch2/catch.hpp>

#include <unordered_map>

#include <keel/keel.hpp>

namespace keel::test {

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
