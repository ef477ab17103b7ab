// SPDX-License-Identifier: BSD-3-Clause
// keel::Runtime end to end: two runtimes in this process on a net_ring link,
// each running application code on its own thread through the public API
// only; start-up errors are messages that name what is wrong.
#include <catch2/catch.hpp>

#include <rte_mempool.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <unordered_map>
#include <vector>

#include <keel/keel.hpp>

#include "drivers/ring_port.hpp"
#include "echo_service.hpp"

using namespace keel;
using keel::test::echo_server;

namespace {

// TCP between two runtimes of this process: with the fast path on they would
// get channels (test/shm covers those).
Config ring_config(const std::string& dev, const char* addr) {
  return keel::test::ring_runtime_config(dev, addr, false);
}

}  // namespace

TEST_CASE("runtime: echo between two runtimes, 1 MiB verified, pools whole", "[api][runtime]") {
  static int serial = 0;
  std::string link = "rt" + std::to_string(serial++);
  REQUIRE(drivers::create_ring_link(link, 4096));
  auto server = Runtime::create(ring_config("net_ring_" + link + "_b", "198.18.6.2/24"));
  REQUIRE(server);
  auto client = Runtime::create(ring_config("net_ring_" + link + "_a", "198.18.6.1/24"));
  REQUIRE(client);
  REQUIRE((*server)->launch(echo_server));

  std::vector<uint8_t> data(1 << 20);
  for (size_t i = 0; i < data.size(); ++i) data[i] = uint8_t(i * 131 + 7);
  std::vector<uint8_t> back;
  std::atomic<int> result{0};  // 1 ok, -1 failed
  REQUIRE((*client)->run([&](Stack& s) {
    auto c = s.connect({Ipv4Address(198, 18, 6, 2), 7});
    if (!c) return void(result = -1);
    size_t sent = 0;
    uint64_t deadline = s.now_ns() + 20'000'000'000ull;
    while (s.running() && result == 0) {
      if (s.now_ns() > deadline) result = -1;
      for (const Event& e : s.poll()) {
        if (e.has(event::closed)) result = -1;
        if (e.has(event::readable))
          while (auto b = c->recv()) {
            if (b->empty()) break;
            size_t at = back.size();
            back.resize(at + b->size());
            (void)b->copy_to(back.data() + at, b->size());
          }
      }
      while (sent < data.size()) {
        auto n = c->write(data.data() + sent, data.size() - sent);
        if (!n) break;
        sent += *n;
      }
      if (back.size() == data.size()) {
        (void)c->close();
        result = 1;
      }
    }
  }));
  CHECK(result == 1);
  CHECK(back == data);
  (*server)->stop();
  (*server)->wait();
  CHECK((*server)->stats().find("tcp_passive_opens 1") != std::string::npos);
  CHECK((*client)->instances() == 1);
  server->reset();  // frees everything it held
  client->reset();
}

TEST_CASE("runtime: two server instances share the connections; each is served where it lands", "[api][runtime]") {
  static int serial = 0;
  std::string link = "rt2_" + std::to_string(serial++);
  REQUIRE(drivers::create_ring_link(link, 4096));
  Config scfg = ring_config("net_ring_" + link + "_b", "198.18.8.2/24");
  scfg.instances = 2;  // one net_ring queue: software steering and TX hand-off
  auto server = Runtime::create(scfg);
  REQUIRE(server);
  auto client = Runtime::create(ring_config("net_ring_" + link + "_a", "198.18.8.1/24"));
  REQUIRE(client);
  REQUIRE((*server)->launch(echo_server));
  constexpr int conns = 200;
  std::atomic<int> intact{0}, failed{0};
  REQUIRE((*client)->run([&](Stack& s) {
    struct C {
      Connection c;
      std::string got;
      bool done = false;
    };
    std::vector<C> cs(conns);
    for (int i = 0; i < conns; ++i) {
      ConnectOptions o;
      o.user = uint64_t(i);
      auto c = s.connect({Ipv4Address(198, 18, 8, 2), 7}, o);
      if (!c) return void(failed = conns);
      cs[i].c = *c;
    }
    uint64_t deadline = s.now_ns() + 20'000'000'000ull;
    while (intact + failed < conns && s.now_ns() < deadline) {
      for (const Event& e : s.poll()) {
        C& c = cs[e.user];
        char msg[9];
        std::snprintf(msg, sizeof msg, "conn%04u", unsigned(e.user));  // 8 bytes, unique
        if (e.has(event::connected)) (void)c.c.write(msg, 8);
        if (e.has(event::readable)) {
          char buf[64];
          while (auto n = c.c.read(buf, sizeof buf)) {
            if (*n == 0) break;
            c.got.append(buf, *n);
          }
          if (!c.done && c.got.size() >= 8) {
            c.done = true;
            (c.got == std::string(msg, 8) ? intact : failed)++;
            (void)c.c.close();
          }
        }
        if (e.has(event::closed) && !c.done) {
          c.done = true;
          ++failed;
        }
      }
    }
  }));
  CHECK(intact == conns);
  CHECK(failed == 0);
  (*server)->stop();
  (*server)->wait();
  // Both instances accepted some: "instance 0 ... tcp_passive_opens N" per instance.
  std::string st = (*server)->stats();
  size_t i1 = st.find("instance 1");
  REQUIRE(i1 != std::string::npos);
  CHECK(st.substr(0, i1).find("tcp_passive_opens") != std::string::npos);
  CHECK(st.substr(i1).find("tcp_passive_opens") != std::string::npos);
  CHECK(st.find("steer_forwarded") != std::string::npos);
  server->reset();
  client->reset();
}

TEST_CASE("runtime: start-up errors name what is wrong", "[api][runtime]") {
  Config none;
  auto r = Runtime::create(none);
  REQUIRE(!r);
  CHECK(r.error().find("port") != std::string::npos);
  Config bad = ring_config("net_no_such_port", "198.18.7.1/24");
  r = Runtime::create(bad);
  REQUIRE(!r);
  CHECK(r.error().find("net_no_such_port") != std::string::npos);
  Config cc = ring_config("0", "198.18.7.1/24");
  cc.tcp.congestion_control = "bbr";
  r = Runtime::create(cc);
  REQUIRE(!r);
  CHECK(r.error().find("bbr") != std::string::npos);
  // The configuration's role must be the one EAL started with (this process is a primary).
  Config sec = ring_config("0", "198.18.7.1/24");
  sec.process = keel::ProcessType::secondary;
  sec.total_instances = 2;
  sec.first_instance = 1;
  r = Runtime::create(sec);
  REQUIRE(!r);
  CHECK(r.error() == "process = secondary, but EAL started as a primary (--proc-type=secondary, the primary's --file-prefix)");
}
