// SPDX-License-Identifier: BSD-3-Clause
// The native API over two real stacks (net_ring): listen, connect, batched
// events, zero-copy and copying I/O, window credit of held buffers, close,
// abort, backpressure, options, and misuse returning errors.
#include <catch2/catch.hpp>

#include <rte_mbuf.h>

#include <cstring>
#include <set>
#include <thread>

#include "api_pair.hpp"

using namespace keel;
using keel::test::addr_a;
using keel::test::addr_b;
using keel::test::ApiPair;
using keel::test::MisuseCounter;

namespace {
std::vector<uint8_t> pattern(size_t n, uint8_t seed = 0) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = uint8_t((i * 7 + seed) % 251);
  return v;
}
std::vector<uint8_t> bytes_of(const Buffer& b) {
  std::vector<uint8_t> v(b.size());
  REQUIRE(b.copy_to(v.data(), v.size()) == v.size());
  return v;
}
}  // namespace

// ===== set-up and events =====

TEST_CASE("api: connect, accept, addresses, user values on events", "[api]") {
  ApiPair p;
  ConnectOptions opt;
  opt.user = 42;
  auto [c, s] = p.connect_pair(7000, opt);
  CHECK(p.a.find(c, event::connected)->user == 42);
  const Event* acc = nullptr;
  for (const auto& e : p.b.events)
    if (e.has(event::accepted)) acc = &e;
  REQUIRE(acc != nullptr);
  CHECK(acc->listener.local()->port == 7000);
  CHECK(c.local()->addr == addr_a);
  CHECK(c.peer()->addr == addr_b);
  CHECK(c.peer()->port == 7000);
  CHECK(s.peer()->port == c.local()->port);
  CHECK(s.local()->addr == addr_b);
  CHECK(s.info()->state == std::string("established"));
  REQUIRE(s.set_user(7));
  CHECK(s.user() == 7);
  REQUIRE(c.write("x", 1));
  p.b.events.clear();
  REQUIRE(p.step_until([&] { return p.b.find(s, event::readable) != nullptr; }));
  CHECK(p.b.find(s, event::readable)->user == 7);
  CHECK(c.close());
  CHECK(s.close());
  p.step(50);
  CHECK(p.pools_whole());
}

TEST_CASE("api: one event per connection per poll, however many callbacks", "[api]") {
  ApiPair p;
  constexpr int n = 100;
  std::vector<std::pair<Connection, Connection>> conns;
  for (int i = 0; i < n; ++i) conns.push_back(p.connect_pair(7001));
  p.step(20);
  // Every client sends and half-closes: two callbacks per connection on B
  // (readable, peer_closed), arriving in the same bursts.
  for (auto& [c, s] : conns) {
    REQUIRE(c.write("abcd", 4));
    REQUIRE(c.shutdown());
  }
  for (int i = 0; i < 20; ++i) (void)p.a.stack->poll_nowait();  // A transmits everything
  int polls = 0, entries = 0, both = 0;
  std::set<uint64_t> readable;
  while (readable.size() < size_t(n) && polls < 1000) {
    auto batch = p.b.stack->poll_nowait();
    ++polls;
    std::set<uint64_t> in_batch;
    for (const auto& e : batch) {
      uint64_t id = uint64_t(e.conn.peer()->port);
      CHECK(in_batch.insert(id).second);  // never twice in one batch
      ++entries;
      if (e.has(event::readable)) readable.insert(id);
      if (e.has(event::readable) && e.has(event::peer_closed)) ++both;
    }
  }
  CHECK(readable.size() == size_t(n));
  // A burst is 32 frames: 100 connections' 200 frames take about 7 polls, and
  // the two callbacks of a connection mostly share one entry.
  CHECK(polls <= 10);
  CHECK(both > n / 2);
  CHECK(entries < 2 * n);
  for (auto& [c, s] : conns) {
    char buf[8];
    CHECK(*s.read(buf, sizeof buf) == 4);
    CHECK(std::memcmp(buf, "abcd", 4) == 0);
    CHECK(*s.read(buf, sizeof buf) == 0);
    CHECK(c.abort());
    CHECK(s.abort());
  }
  p.step(20);
  CHECK(p.pools_whole());
}

TEST_CASE("api: connection refused and connect timeout arrive as closed events", "[api]") {
  ApiPair p;
  p.step(5);
  auto refused = p.a.stack->connect({addr_b, 9999});
  REQUIRE(refused);
  REQUIRE(p.step_until([&] { return p.a.find(*refused, event::closed) != nullptr; }));
  CHECK(p.a.find(*refused, event::closed)->error == Errc::connection_refused);
  {
    MisuseCounter m;
    CHECK(refused->write("x", 1).error() == Errc::bad_handle);  // gone after closed
  }
  // Nobody answers ARP for .77: the SYN never leaves; the timeout ends it.
  ConnectOptions opt;
  opt.timeout_ms = 150;
  auto lost = p.a.stack->connect({Ipv4Address(198, 18, 5, 77), 80}, opt);
  REQUIRE(lost);
  REQUIRE(p.step_until([&] { return p.a.find(*lost, event::closed) != nullptr; }));
  CHECK(p.a.find(*lost, event::closed)->error == Errc::timed_out);
  CHECK(p.pools_whole());
}

TEST_CASE("api: connect options: source address, source port, bad arguments", "[api]") {
  ApiPair p;
  ConnectOptions opt;
  opt.local_port = 40000;
  opt.local_addr = addr_a;
  auto [c, s] = p.connect_pair(7002, opt);
  CHECK(c.local()->port == 40000);
  CHECK(s.peer()->port == 40000);
  ConnectOptions foreign;
  foreign.local_addr = Ipv4Address(198, 18, 5, 9);  // not ours
  CHECK(p.a.stack->connect({addr_b, 7002}, foreign).error() == Errc::invalid_argument);
  CHECK(p.a.stack->connect({addr_b, 0}).error() == Errc::invalid_argument);
  CHECK(p.a.stack->connect({Ipv4Address(10, 0, 0, 1), 80}).error() == Errc::unreachable);
  CHECK(p.a.stack->connect({addr_b, 7002}, opt).error() == Errc::already_exists);
  (void)c.abort();
  (void)s.abort();
  p.step(10);
  CHECK(p.pools_whole());
}

// ===== data =====

TEST_CASE("api: zero-copy send: the receiver gets the sender's very bytes, and they go back to the pool after ACK", "[api]") {
  ApiPair p;
  auto [c, s] = p.connect_pair(7003);
  p.step(20);
  unsigned a_before = p.a.pool_in_use();
  auto data = pattern(1000);
  auto buf = p.a.stack->alloc(data.size());
  REQUIRE(buf);
  REQUIRE(buf->copy_from(data.data(), data.size()));
  rte_mbuf* app_mbuf = buf->mbuf();
  const uint8_t* app_bytes = rte_pktmbuf_mtod(app_mbuf, const uint8_t*);
  REQUIRE(c.send(*buf));
  CHECK(buf->empty());
  REQUIRE(p.step_until([&] { return *s.readable_bytes() == data.size(); }));
  auto got = s.recv();
  REQUIRE(got);
  CHECK(bytes_of(*got) == data);
  // No copy anywhere: one of the received segments points into the sender's mbuf.
  bool same_memory = false;
  got->for_each_segment([&](Segment seg) { same_memory = same_memory || seg.data == app_bytes; });
  CHECK(same_memory);
  REQUIRE(got->release());
  // Acknowledged: the sender's queue let go of the app's mbuf.
  REQUIRE(p.step_until([&] { return c.info()->send_queued == 0; }));
  p.step(10);
  CHECK(p.a.pool_in_use() == a_before);
  (void)c.close();
  (void)s.close();
  p.step(50);
  CHECK(p.pools_whole());
}

TEST_CASE("api: a received buffer holds the window until released", "[api]") {
  tcp::TcpConfig t = ApiPair::small_tcp();
  t.rcv_buf = 64 * 1024;
  ApiPair p(t);
  auto [c, s] = p.connect_pair(7004);
  auto data = pattern(48 * 1024);
  REQUIRE(*c.write(data.data(), data.size()) == data.size());
  REQUIRE(p.step_until([&] { return *s.readable_bytes() == data.size(); }));
  auto held = s.recv();
  REQUIRE(held);
  CHECK(held->size() == data.size());
  CHECK(s.info()->receive_held == data.size());
  // 16 KiB of window left: more than that waits in A's send queue.
  auto more = pattern(32 * 1024, 3);
  REQUIRE(*c.write(more.data(), more.size()) == more.size());
  p.step(200);
  CHECK(*s.readable_bytes() <= 16 * 1024);
  CHECK(c.info()->send_queued >= 16 * 1024);
  REQUIRE(held->release());
  CHECK(s.info()->receive_held == 0);
  std::vector<uint8_t> rest;
  REQUIRE(p.step_until([&] {
    if (auto b = s.recv(); b && !b->empty()) {
      auto v = bytes_of(*b);
      rest.insert(rest.end(), v.begin(), v.end());
    }
    return rest.size() == more.size();
  }));
  CHECK(rest == more);
  (void)c.close();
  (void)s.close();
  p.step(50);
  CHECK(p.pools_whole());
}

TEST_CASE("api: echo by sending the received buffers back (zero copy both ways)", "[api]") {
  ApiPair p;
  auto [c, s] = p.connect_pair(7005);
  auto data = pattern(256 * 1024);
  size_t sent = 0;
  std::vector<uint8_t> back;
  REQUIRE(p.step_until([&] {
    if (sent < data.size())
      if (auto n = c.write(data.data() + sent, data.size() - sent)) sent += *n;
    if (auto b = s.recv(); b && !b->empty()) REQUIRE(s.send(*b));
    if (auto b = c.recv(); b && !b->empty()) {
      auto v = bytes_of(*b);
      back.insert(back.end(), v.begin(), v.end());
    }
    return back.size() == data.size();
  }));
  CHECK(back == data);
  CHECK(s.info()->receive_held == 0);  // sending on returned the credit
  (void)c.close();
  (void)s.close();
  p.step(50);
  CHECK(p.pools_whole());
}

TEST_CASE("api: backpressure: would_block, then a writable event, nothing lost", "[api]") {
  tcp::TcpConfig t = ApiPair::small_tcp();
  t.snd_buf = 32 * 1024;
  t.rcv_buf = 32 * 1024;
  ApiPair p(t);
  auto [c, s] = p.connect_pair(7006);
  auto data = pattern(512 * 1024);
  size_t sent = 0, blocked = 0;
  std::vector<uint8_t> got;
  bool reading = false;
  REQUIRE(p.step_until([&] {
    if (sent < data.size()) {
      auto n = c.write(data.data() + sent, data.size() - sent);
      if (n) sent += *n;
      else if (n.error() == Errc::would_block) {
        if (blocked++ == 0) p.a.events.clear();
        reading = true;
      }
    }
    if (reading) {
      uint8_t tmp[4096];
      while (auto n = s.read(tmp, sizeof tmp)) got.insert(got.end(), tmp, tmp + *n);
    }
    return got.size() == data.size();
  }));
  CHECK(blocked > 0);
  CHECK(p.a.find(c, event::writable) != nullptr);
  CHECK(got == data);
  (void)c.close();
  (void)s.close();
  p.step(50);
  CHECK(p.pools_whole());
}

TEST_CASE("api: half-close: peer_closed, end of stream, the other way still open", "[api]") {
  ApiPair p;
  auto [c, s] = p.connect_pair(7007);
  REQUIRE(c.write("last", 4));
  REQUIRE(c.shutdown());
  REQUIRE(p.step_until([&] { return p.b.find(s, event::peer_closed) != nullptr; }));
  char buf[16];
  CHECK(*s.read(buf, sizeof buf) == 4);
  CHECK(*s.read(buf, sizeof buf) == 0);  // end of stream
  auto eof = s.recv();
  REQUIRE(eof);
  CHECK(eof->empty());
  CHECK(c.write("x", 1).error() == Errc::not_connected);
  REQUIRE(s.write("reply", 5));
  REQUIRE(p.step_until([&] { return c.readable_bytes().value_or(0) == 5; }));
  REQUIRE(s.close());
  REQUIRE(p.step_until([&] { return p.a.find(c, event::closed) != nullptr; }));
  CHECK(p.a.find(c, event::closed)->error == Errc::ok);
  p.step(50);
  CHECK(p.pools_whole());
}

TEST_CASE("api: abort resets the peer; close makes the handle dead with no more events", "[api]") {
  ApiPair p;
  auto [c, s] = p.connect_pair(7008);
  REQUIRE(c.abort());
  REQUIRE(p.step_until([&] { return p.b.find(s, event::closed) != nullptr; }));
  CHECK(p.b.find(s, event::closed)->error == Errc::connection_reset);
  CHECK(p.a.find(c, event::closed) == nullptr);  // the aborting side gets no event
  auto [c2, s2] = p.connect_pair(7008);
  p.a.events.clear();
  REQUIRE(c2.close());
  {
    MisuseCounter m;
    CHECK(c2.write("x", 1).error() == Errc::bad_handle);
    CHECK(c2.close().error() == Errc::bad_handle);  // a second close: refused, not reported
    CHECK(m.count() == 1);
  }
  REQUIRE(p.step_until([&] { return p.b.find(s2, event::peer_closed) != nullptr; }));
  REQUIRE(s2.close());
  p.step(200);
  CHECK(p.a.flags_of(c2) == 0);
  CHECK(p.pools_whole());
}

// ===== options =====

TEST_CASE("api: per-connection options", "[api]") {
  ApiPair p;
  auto [c, s] = p.connect_pair(7009);
  CHECK(c.set_nodelay(true));
  CHECK(c.set_keepalive(true));
  CHECK(c.set_congestion_control("newreno"));
  CHECK(std::string(c.info()->cc) == "newreno");
  CHECK(c.set_congestion_control("bbr").error() == Errc::invalid_argument);
  CHECK(c.set_send_buffer(0).error() == Errc::invalid_argument);
  CHECK(c.set_send_buffer(4096));
  CHECK(*c.send_space() == 4096);
  CHECK(c.set_receive_buffer(8192));
  (void)c.abort();
  (void)s.abort();
  p.step(10);
  CHECK(p.pools_whole());
}

TEST_CASE("api: per-connection keepalive timing: probes after its idle time, not the stack's", "[api]") {
  ApiPair p;  // the stacks' idle time is 2 h
  auto [c, s] = p.connect_pair(7012);
  CHECK(c.set_keepalive_timing(32'767'001, 0, 0).error() == Errc::invalid_argument);
  CHECK(c.set_keepalive_timing(0, 0, 128).error() == Errc::invalid_argument);
  REQUIRE(c.set_keepalive(true));
  REQUIRE(c.set_keepalive_timing(100, 50, 3));  // re-arms the timer already running
  const uint64_t before = p.a.stack->counter("tcp_keepalive_probes");
  // The peer answers each probe, so the connection lives on, probed again after each idle time.
  REQUIRE(p.step_until([&] { return p.a.stack->counter("tcp_keepalive_probes") >= before + 2; }, 3));
  CHECK(p.a.stack->counter("tcp_keepalive_drops") == 0);
  CHECK(c.write("alive", 5));
  REQUIRE(p.step_until([&] { return s.readable_bytes().value_or(0) == 5; }));
  (void)c.abort();
  (void)s.abort();
  p.step(10);
  CHECK(p.pools_whole());
}

TEST_CASE("api: listeners: conflicts, foreign address, close refuses new connections", "[api]") {
  ApiPair p;
  auto l = p.b.stack->listen({Ipv4Address::any(), 7010});
  REQUIRE(l);
  CHECK(p.b.stack->listen({Ipv4Address::any(), 7010}).error() == Errc::already_exists);
  CHECK(p.b.stack->listen({Ipv4Address(198, 18, 5, 99), 7011}).error() == Errc::invalid_argument);
  CHECK(p.b.stack->listen({addr_b, 0}).error() == Errc::invalid_argument);
  auto [c, s] = p.connect_pair(7010);
  CHECK(*l->accepted() == 1);
  REQUIRE(l->close());
  {
    MisuseCounter m;
    CHECK(l->close().error() == Errc::bad_handle);
  }
  CHECK(s.write("still here", 10));  // accepted connections stay
  auto refused = p.a.stack->connect({addr_b, 7010});
  REQUIRE(refused);
  REQUIRE(p.step_until([&] { return p.a.find(*refused, event::closed) != nullptr; }));
  CHECK(p.a.find(*refused, event::closed)->error == Errc::connection_refused);
  (void)c.abort();
  (void)s.abort();
  p.step(10);
  CHECK(p.pools_whole());
}

// ===== misuse =====

TEST_CASE("api: misuse returns errors: wrong thread, stale handles, double release, empty send", "[api]") {
  ApiPair p;
  auto [c, s] = p.connect_pair(7012);
  MisuseCounter m;
  Result<size_t> from_thread = fail(Errc::ok);
  Result<Connection> connect_from_thread = fail(Errc::ok);
  std::thread t([&] {
    from_thread = c.write("x", 1);
    connect_from_thread = p.a.stack->connect({addr_b, 7012});
  });
  t.join();
  CHECK(from_thread.error() == Errc::wrong_thread);
  CHECK(connect_from_thread.error() == Errc::wrong_thread);
  CHECK(m.last() == Errc::wrong_thread);

  Connection none;
  CHECK(none.write("x", 1).error() == Errc::bad_handle);
  Buffer empty;
  CHECK(c.send(empty).error() == Errc::invalid_argument);
  auto b = p.a.stack->alloc(10);
  REQUIRE(b);
  CHECK(b->release());
  CHECK(b->release().error() == Errc::bad_handle);  // no double free
  CHECK(b->copy_from("x", 1).error() == Errc::bad_handle);
  auto big = p.a.stack->alloc(5000);
  REQUIRE(big);
  CHECK(big->segment_count() >= 3);
  CHECK(big->size() == 5000);
  CHECK(big->copy_from("x", 2, 4999).error() == Errc::invalid_argument);
  CHECK(big->release());

  // A stale handle never reaches the connection that reuses its slot.
  REQUIRE(c.abort());
  (void)s.abort();
  p.step(10);
  auto [c2, s2] = p.connect_pair(7012);
  CHECK(c.write("x", 1).error() == Errc::bad_handle);
  CHECK(c2.write("x", 1));
  (void)c2.abort();
  (void)s2.abort();
  p.step(10);
  CHECK(p.pools_whole());
}

TEST_CASE("api: data before the FIN stays readable when the close completes in one burst", "[api]") {
  ApiPair p;
  auto [c, s] = p.connect_pair(7013);
  REQUIRE(c.shutdown());  // A half-closes first
  REQUIRE(p.step_until([&] { return p.b.find(s, event::peer_closed) != nullptr; }));
  p.step(20);  // A's FIN is acknowledged: FIN-WAIT-2
  // B's last data and its FIN leave in one flush and reach A in one burst:
  // A goes straight to TIME-WAIT, and the data must still be there for it.
  REQUIRE(s.write("tail", 4));
  REQUIRE(s.close());
  REQUIRE(p.step_until([&] { return p.a.find(c, event::closed) != nullptr; }));
  const Event* e = p.a.find(c, event::closed);
  CHECK(e->error == Errc::ok);
  CHECK(e->has(event::readable));
  CHECK(c.info()->state == std::string("time-wait"));
  MisuseCounter m;
  char buf[8];
  auto n = c.read(buf, sizeof buf);
  REQUIRE(n);
  CHECK(*n == 4);
  CHECK(std::memcmp(buf, "tail", 4) == 0);
  CHECK(*c.read(buf, sizeof buf) == 0);  // end of stream
  CHECK(c.write("x", 1).error() == Errc::not_connected);
  CHECK(c.close());
  CHECK(c.close().error() == Errc::bad_handle);  // quietly: after close, no misuse report
  CHECK(m.count() == 0);
  p.step(50);
  CHECK(p.pools_whole());
}

TEST_CASE("api: close() after a closed event is safe and quiet", "[api]") {
  ApiPair p;
  auto [c, s] = p.connect_pair(7014);
  REQUIRE(c.abort());
  REQUIRE(p.step_until([&] { return p.b.find(s, event::closed) != nullptr; }));
  MisuseCounter m;
  CHECK(s.close().error() == Errc::bad_handle);
  CHECK(s.abort().error() == Errc::bad_handle);
  CHECK(m.count() == 0);
  CHECK(s.write("x", 1).error() == Errc::bad_handle);  // other calls still report misuse
  CHECK(m.count() == 1);
  p.step(10);
  CHECK(p.pools_whole());
}

TEST_CASE("api: clone: fill once, send many times, every copy intact, pools whole", "[api]") {
  ApiPair p;
  auto [c, s] = p.connect_pair(7015);
  auto data = pattern(3000, 11);
  auto master = p.a.stack->alloc(data.size());
  REQUIRE(master);
  REQUIRE(master->copy_from(data.data(), data.size()));
  constexpr int copies = 20;
  for (int i = 0; i < copies; ++i) {
    auto cl = p.a.stack->clone(*master);
    REQUIRE(cl);
    CHECK(cl->size() == data.size());
    REQUIRE(c.send(*cl));
  }
  Buffer none;
  CHECK(p.a.stack->clone(none).error() == Errc::bad_handle);
  std::vector<uint8_t> got;
  REQUIRE(p.step_until([&] {
    if (auto b = s.recv(); b && !b->empty()) {
      auto v = bytes_of(*b);
      got.insert(got.end(), v.begin(), v.end());
    }
    return got.size() == data.size() * copies;
  }));
  for (int i = 0; i < copies; ++i)
    CHECK(std::equal(data.begin(), data.end(), got.begin() + long(i) * long(data.size())));
  REQUIRE(master->release());
  (void)c.close();
  (void)s.close();
  p.step(50);
  CHECK(p.pools_whole());
}

TEST_CASE("api: stack identity, counters by name, want_writable", "[api]") {
  ApiPair p;
  CHECK(p.a.stack->id() == 0);
  CHECK(p.a.stack->instances() == 1);
  CHECK(p.a.stack->running());  // no runtime flag: always running
  uint64_t t0 = p.a.stack->now_ns();
  auto [c, s] = p.connect_pair(7016);
  CHECK(p.a.stack->now_ns() > t0);
  CHECK(p.a.stack->counter("tcp_active_opens") == 1);
  CHECK(p.b.stack->counter("tcp_passive_opens") == 1);
  CHECK(p.a.stack->counter("no_such_counter") == 0);
  // want_writable with room to spare: the writable event comes with the next ACK.
  REQUIRE(c.want_writable());
  REQUIRE(c.write("x", 1));
  p.a.events.clear();
  REQUIRE(p.step_until([&] { return p.a.find(c, event::writable) != nullptr; }));
  (void)c.abort();
  (void)s.abort();
  p.step(10);
  CHECK(p.pools_whole());
}
