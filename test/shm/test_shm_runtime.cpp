// SPDX-License-Identifier: BSD-3-Clause
// Channels between runtimes of one process, each instance on its own thread:
// a client runtime's connects to a two-instance server runtime's listener
// become channels spread over both server instances (the directory takes
// turns), and the echoed data comes back intact.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdio>
#include <string>
#include <vector>

#include <keel/keel.hpp>

#include <chrono>
#include <thread>

#include "drivers/ring_port.hpp"
#include "shm/node.hpp"
#include "echo_service.hpp"

using namespace keel;

namespace {
Config ring_config(const std::string& dev, const char* addr) {
  Config c = keel::test::ring_runtime_config(dev, addr, true);
  c.shm.budget = 64 * 1024;  // small: the 256 KiB echoes go through backpressure
  return c;
}
}  // namespace

TEST_CASE("shm runtime: 100 channels to a two-instance server, each 256 KiB echoed intact", "[shm][runtime]") {
  REQUIRE(drivers::create_ring_link("shmrt", 4096));
  Config scfg = ring_config("net_ring_shmrt_b", "198.18.9.2/24");
  scfg.instances = 2;
  auto server = Runtime::create(scfg);
  REQUIRE(server);
  auto client = Runtime::create(ring_config("net_ring_shmrt_a", "198.18.9.1/24"));
  REQUIRE(client);
  REQUIRE((*server)->launch(keel::test::echo_server));
  // Both server instances are in the node's directory before the client starts.
  std::string why;
  shm::Node* node = shm::Node::open(1024, 1024, true, why);
  REQUIRE(node != nullptr);
  auto listed = [&] {
    std::string d = node->describe();
    size_t n = 0;
    for (size_t at = 0; (at = d.find("listen 198.18.9.2:7 ", at)) != std::string::npos; ++at) ++n;
    return n;
  };
  for (int i = 0; i < 500 && listed() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(listed() == 2);
  constexpr int conns = 100;
  constexpr size_t size = 256 * 1024;
  std::atomic<int> intact{0}, failed{0}, channels{0};
  REQUIRE((*client)->run([&](Stack& s) {
    struct C {
      Connection c;
      size_t sent = 0, got = 0;
      bool done = false, bad = false;
    };
    std::vector<C> cs(conns);
    auto byte = [](int conn, size_t i) { return uint8_t((i * 13 + size_t(conn) * 7) % 253); };
    for (int i = 0; i < conns; ++i) {
      ConnectOptions o;
      o.user = uint64_t(i);
      auto c = s.connect({Ipv4Address(198, 18, 9, 2), 7}, o);
      if (!c) {
        UNSCOPED_INFO("connect " << i << ": " << to_string(c.error()));
        return void(failed = conns);
      }
      cs[i].c = *c;
    }
    uint64_t deadline = s.now_ns() + 30'000'000'000ull;
    std::vector<uint8_t> chunk(16384);
    while (intact + failed < conns && s.now_ns() < deadline) {
      for (const Event& e : s.poll()) {
        int id = int(e.user);
        C& c = cs[id];
        if (c.done) continue;
        if (e.has(event::connected) && *c.c.is_channel()) ++channels;
        if (e.has(event::closed)) {
          c.done = true;
          ++failed;
          continue;
        }
        if (e.has(event::readable))
          while (auto n = c.c.read(chunk.data(), chunk.size())) {
            if (*n == 0) break;
            for (size_t i = 0; i < *n; ++i) c.bad = c.bad || chunk[i] != byte(id, c.got + i);
            c.got += *n;
          }
        if (c.got == size) {
          c.done = true;
          (c.bad ? failed : intact)++;
          (void)c.c.close();
        }
      }
      for (int id = 0; id < conns; ++id) {
        C& c = cs[id];
        while (!c.done && c.sent < size) {
          size_t n = std::min(chunk.size(), size - c.sent);
          std::vector<uint8_t> out(n);
          for (size_t i = 0; i < n; ++i) out[i] = byte(id, c.sent + i);
          auto w = c.c.write(out.data(), n);
          if (!w) break;
          c.sent += *w;
        }
      }
    }
  }));
  if (intact != conns) UNSCOPED_INFO(node->describe_channels());  // what each stalled channel holds
  CHECK(intact == conns);
  CHECK(failed == 0);
  CHECK(channels == conns);
  (*server)->stop();
  (*server)->wait();
  std::string st = (*server)->stats();
  size_t i1 = st.find("instance 1");
  REQUIRE(i1 != std::string::npos);
  INFO(st);
  CHECK(st.substr(0, i1).find("shm_accepts") != std::string::npos);  // both instances served some
  CHECK(st.substr(i1).find("shm_accepts") != std::string::npos);
  CHECK(st.find("tcp_passive_opens") == std::string::npos);          // and no TCP at all
  server->reset();
  client->reset();
}
