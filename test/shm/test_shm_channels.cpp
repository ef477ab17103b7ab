// SPDX-License-Identifier: BSD-3-Clause
// The intra-node fast path inside one process: two stacks (api_pair) on the
// node's channel table; A's connects to B's listeners become channels. The
// API is the TCP one; these tests check it behaves the same (events, EOF,
// half-close, abort, backpressure) and that it is zero-copy and leak-free.
#include <catch2/catch.hpp>

#include <rte_mbuf.h>

#include <cstring>

#include "api/channels.hpp"
#include "api_pair.hpp"

using namespace keel;
using keel::test::addr_a;
using keel::test::addr_b;
using keel::test::ApiPair;
using keel::test::MisuseCounter;

namespace {

uint8_t pattern_at(uint64_t i) { return uint8_t((i * 7 + (i >> 16)) % 251); }

// A pair on channels, `budget` bytes per direction.
struct ShmPair : ApiPair {
  explicit ShmPair(uint32_t budget = 1 << 20) : ApiPair(small_tcp(), true, budget) {}
};

// Steps until `c` has an event with `flag` on side `s`.
bool wait_for(ApiPair& p, keel::test::Side& s, const Connection& c, uint16_t flag, double secs = 5) {
  return p.step_until([&] { return s.find(c, flag) != nullptr; }, secs);
}

// Both ends closed, the closes run through, both pools back at their baseline.
bool closed_and_whole(ApiPair& p, const Connection& c, const Connection& s) {
  bool ok = c.close().has_value() && s.close().has_value();
  p.step(4);
  return p.pools_whole() && ok;
}

}  // namespace

TEST_CASE("shm: connect to a listener of the node gives a channel, with TCP's events and addresses", "[shm]") {
  ShmPair p;
  auto l = p.b.stack->listen({Ipv4Address::any(), 7100});
  REQUIRE(l);
  ConnectOptions opt;
  opt.user = 77;
  auto c = p.a.stack->connect({addr_b, 7100}, opt);
  REQUIRE(c);
  REQUIRE(wait_for(p, p.a, *c, event::connected));
  CHECK(p.a.find(*c, event::connected)->user == 77);
  Connection s = p.b.take_accepted();
  REQUIRE(s.valid());
  const Event* acc = nullptr;
  for (auto& e : p.b.events)
    if (e.conn == s && e.has(event::accepted)) acc = &e;
  REQUIRE(acc != nullptr);
  CHECK(acc->listener == *l);
  CHECK(*l->accepted() == 1);

  CHECK(*c->is_channel());
  CHECK(*s.is_channel());
  CHECK(std::string(c->info()->transport) == "channel");
  CHECK(std::string(c->info()->state) == "established");
  CHECK(c->peer()->addr == addr_b);
  CHECK(c->peer()->port == 7100);
  CHECK(s.local()->port == 7100);
  CHECK(s.peer()->port == c->local()->port);
  CHECK(p.a.stack->counter("shm_connects") == 1);
  CHECK(p.b.stack->counter("shm_accepts") == 1);
  // Wire options are accepted; a bad congestion control name is still refused.
  CHECK(c->set_nodelay(true));
  CHECK(c->set_keepalive(true));
  CHECK(c->set_congestion_control("bbr").error() == Errc::invalid_argument);
  CHECK(c->set_congestion_control("cubic"));

  CHECK(closed_and_whole(p, *c, s));
}

TEST_CASE("shm: the receiver gets the sender's very mbufs, and the pool is whole after close", "[shm]") {
  ShmPair p;
  REQUIRE(p.b.stack->listen({Ipv4Address::any(), 7101}));
  auto [c, s] = p.connect_pair(7101);
  REQUIRE(*c.is_channel());
  auto b = p.a.stack->alloc(3000);  // two segments
  REQUIRE(b);
  std::vector<rte_mbuf*> sent;
  for (rte_mbuf* m = b->mbuf(); m != nullptr; m = m->next) sent.push_back(m);
  REQUIRE(sent.size() >= 2);
  std::vector<uint8_t> data(3000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = pattern_at(i);
  REQUIRE(b->copy_from(data.data(), data.size()));
  REQUIRE(c.send(*b));
  CHECK(b->empty());
  REQUIRE(wait_for(p, p.b, s, event::readable));
  CHECK(*s.readable_bytes() == 3000);
  auto r = s.recv();
  REQUIRE(r);
  std::vector<rte_mbuf*> got;
  for (rte_mbuf* m = r->mbuf(); m != nullptr; m = m->next) got.push_back(m);
  CHECK(got == sent);  // zero copy: the same mbufs, in order
  std::vector<uint8_t> back(r->size());
  REQUIRE(r->copy_to(back.data(), back.size()) == 3000);
  CHECK(back == data);
  CHECK(s.info()->receive_held == 3000);
  CHECK(c.info()->send_queued == 3000);  // held by the receiver: still in the budget
  REQUIRE(r->release());
  CHECK(c.info()->send_queued == 0);
  CHECK(closed_and_whole(p, c, s));
}

TEST_CASE("shm: 1 GiB stream through a channel arrives intact and in order", "[shm]") {
  ShmPair p;
  REQUIRE(p.b.stack->listen({Ipv4Address::any(), 7102}));
  auto [c, s] = p.connect_pair(7102);
  const uint64_t total = uint64_t(1) << 30;
  const size_t chunk = 64 * 1024;
  uint64_t sent = 0, got = 0;
  bool bad = false;
  Buffer next;
  while (got < total && !bad) {
    while (sent < total) {
      if (next.empty()) {
        size_t n = size_t(std::min<uint64_t>(chunk, total - sent));
        auto b = p.a.stack->alloc(n);
        REQUIRE(b);
        uint64_t off = sent;
        b->for_each_segment([&](Segment sg) {
          for (size_t i = 0; i < sg.size; ++i) sg.data[i] = pattern_at(off + i);
          off += sg.size;
        });
        next = std::move(*b);
      }
      size_t n = next.size();
      auto r = c.send(next);
      if (!r) {
        REQUIRE(r.error() == Errc::would_block);
        break;
      }
      sent += n;
    }
    p.step();
    while (true) {
      auto r = s.recv();
      if (!r) {
        REQUIRE(r.error() == Errc::would_block);
        break;
      }
      REQUIRE(!r->empty());
      r->for_each_segment([&](Segment sg) {
        for (size_t i = 0; i < sg.size; ++i) bad = bad || sg.data[i] != pattern_at(got + i);
        got += sg.size;
      });
    }
  }
  CHECK(!bad);
  CHECK(got == total);
  REQUIRE(c.shutdown());
  REQUIRE(wait_for(p, p.b, s, event::peer_closed));
  auto eof = s.recv();
  REQUIRE(eof);
  CHECK(eof->empty());
  CHECK(closed_and_whole(p, c, s));
}

TEST_CASE("shm: 100,000 request/response round trips through a channel", "[shm]") {
  ShmPair p;
  REQUIRE(p.b.stack->listen({Ipv4Address::any(), 7103}));
  auto [c, s] = p.connect_pair(7103);
  char req[64], resp[64], buf[64];
  unsigned done = 0;
  for (; done < 100'000; ++done) {
    std::snprintf(req, sizeof req, "request %u", done);
    REQUIRE(*c.write(req, sizeof req) == sizeof req);
    size_t n = 0;
    for (int spin = 0; n < sizeof buf && spin < 1000; ++spin) {
      p.step();
      auto r = s.read(buf + n, sizeof buf - n);
      if (r) n += *r;
    }
    REQUIRE(n == sizeof buf);
    REQUIRE(std::memcmp(buf, req, sizeof req) == 0);
    std::snprintf(resp, sizeof resp, "response %u", done);
    REQUIRE(*s.write(resp, sizeof resp) == sizeof resp);
    n = 0;
    for (int spin = 0; n < sizeof buf && spin < 1000; ++spin) {
      p.step();
      auto r = c.read(buf + n, sizeof buf - n);
      if (r) n += *r;
    }
    REQUIRE(n == sizeof buf);
    REQUIRE(std::memcmp(buf, resp, sizeof resp) == 0);
  }
  CHECK(done == 100'000);
  CHECK(closed_and_whole(p, c, s));
}

TEST_CASE("shm: shutdown is EOF after the data, half-close keeps the other direction, both FINs close", "[shm]") {
  ShmPair p;
  REQUIRE(p.b.stack->listen({Ipv4Address::any(), 7104}));
  auto [c, s] = p.connect_pair(7104);
  REQUIRE(*c.write("last words", 10) == 10);
  REQUIRE(c.shutdown());
  CHECK(c.write("x", 1).error() == Errc::not_connected);
  REQUIRE(wait_for(p, p.b, s, event::peer_closed));
  char buf[32];
  CHECK(*s.read(buf, sizeof buf) == 10);  // the data first...
  CHECK(*s.read(buf, sizeof buf) == 0);   // ...then end of stream
  CHECK(std::string(s.info()->state) == "close-wait");
  CHECK(std::string(c.info()->state) == "fin-wait-2");
  // Half-close: B still talks to A.
  REQUIRE(*s.write("reply", 5) == 5);
  REQUIRE(wait_for(p, p.a, c, event::readable));
  CHECK(*c.read(buf, sizeof buf) == 5);
  CHECK(std::memcmp(buf, "reply", 5) == 0);
  CHECK(p.a.find(c, event::closed) == nullptr);
  REQUIRE(s.shutdown());
  REQUIRE(wait_for(p, p.a, c, event::closed));
  CHECK(p.a.find(c, event::closed)->error == Errc::ok);
  CHECK(p.a.find(c, event::peer_closed) != nullptr);
  CHECK(p.b.find(s, event::closed) != nullptr);  // both shut: B is closed too
  CHECK(*c.read(buf, sizeof buf) == 0);          // still readable until close()
  CHECK(closed_and_whole(p, c, s));
}

TEST_CASE("shm: abort resets the peer and drops its unread data; close with unread data aborts", "[shm]") {
  ShmPair p;
  REQUIRE(p.b.stack->listen({Ipv4Address::any(), 7105}));
  {
    MisuseCounter quiet;
    auto [c, s] = p.connect_pair(7105);
    REQUIRE(*c.write("never read", 10) == 10);
    REQUIRE(*s.write("dropped", 7) == 7);
    p.step(2);
    REQUIRE(c.abort());
    CHECK(c.send_space().error() == Errc::bad_handle);
    REQUIRE(wait_for(p, p.b, s, event::closed));
    CHECK(p.b.find(s, event::closed)->error == Errc::connection_reset);
    CHECK(s.read(nullptr, 0).error() == Errc::bad_handle);
    CHECK(s.close().error() == Errc::bad_handle);  // after the closed event: quietly
  }
  {
    auto [c, s] = p.connect_pair(7105);
    REQUIRE(*c.write("unread", 6) == 6);
    REQUIRE(wait_for(p, p.b, s, event::readable));
    REQUIRE(s.close());  // unread data: an abort
    REQUIRE(wait_for(p, p.a, c, event::closed));
    CHECK(p.a.find(c, event::closed)->error == Errc::connection_reset);
  }
  {
    // Writing to a peer that closed: reset at once (TCP: the peer's RST).
    auto [c, s] = p.connect_pair(7105);
    REQUIRE(s.close());
    p.step(2);
    REQUIRE(wait_for(p, p.a, c, event::peer_closed));
    CHECK(c.write("late", 4).error() == Errc::connection_reset);
    p.step();
    REQUIRE(p.a.find(c, event::closed) != nullptr);
    CHECK(p.a.find(c, event::closed)->error == Errc::connection_reset);
  }
  CHECK(p.a.stack->counter("shm_resets") + p.b.stack->counter("shm_resets") >= 3);
  p.step(4);
  CHECK(p.pools_whole());
}

TEST_CASE("shm: a slow reader: would_block at the budget, writable later, nothing lost, memory bounded", "[shm]") {
  const uint32_t budget = 64 * 1024;
  ShmPair p(budget);
  REQUIRE(p.b.stack->listen({Ipv4Address::any(), 7106}));
  auto [c, s] = p.connect_pair(7106);
  unsigned base = p.a.pool_in_use();
  uint64_t sent = 0, got = 0;
  uint8_t chunk[1000];
  // Fill: the sender stops at the budget.
  for (;;) {
    for (size_t i = 0; i < sizeof chunk; ++i) chunk[i] = pattern_at(sent + i);
    auto r = c.write(chunk, sizeof chunk);
    if (!r) {
      REQUIRE(r.error() == Errc::would_block);
      break;
    }
    sent += *r;
  }
  CHECK(sent <= budget);
  CHECK(sent >= budget - sizeof chunk);
  CHECK(*c.send_space() == 0);
  unsigned held = p.a.pool_in_use() - base;
  CHECK(held <= budget / 1000 + 2);  // the mbufs in flight, nothing more
  p.step(4);
  CHECK(p.a.find(c, event::writable) == nullptr);
  // The reader takes a little at a time; the writer resumes on each writable.
  bool bad = false;
  const uint64_t total = 4 * 1024 * 1024;
  while (got < total && !bad) {
    uint8_t in[700];
    auto r = s.read(in, sizeof in);
    if (r) {
      for (size_t i = 0; i < *r; ++i) bad = bad || in[i] != pattern_at(got + i);
      got += *r;
    }
    p.a.events.clear();
    p.step();
    while (sent < total) {
      size_t n = size_t(std::min<uint64_t>(sizeof chunk, total - sent));
      for (size_t i = 0; i < n; ++i) chunk[i] = pattern_at(sent + i);
      auto w = c.write(chunk, n);
      if (!w) break;
      sent += *w;
    }
    REQUIRE(c.info()->send_queued <= budget);
  }
  CHECK(!bad);
  CHECK(got == total);
  CHECK(closed_and_whole(p, c, s));
}

TEST_CASE("shm: the directory: closed listeners and free ports refuse, 127.0.0.1 reaches an any-address listener",
          "[shm]") {
  ShmPair p;
  // Nobody listens on port 7107. From A, B's address is another host: TCP, and B's RST.
  auto c = p.a.stack->connect({addr_b, 7107});
  REQUIRE(c);
  REQUIRE(wait_for(p, p.a, *c, event::closed));
  CHECK(p.a.find(*c, event::closed)->error == Errc::connection_refused);
  // From B its own address (and 127.0.0.1): refused at once, as a kernel does on loopback.
  for (Ipv4Address to : {addr_b, Ipv4Address(127, 0, 0, 1)}) {
    auto own = p.b.stack->connect({to, 7107});
    REQUIRE(own);
    p.step();
    REQUIRE(p.b.find(*own, event::closed) != nullptr);
    CHECK(p.b.find(*own, event::closed)->error == Errc::connection_refused);
  }
  CHECK(p.b.stack->counter("shm_refused") == 2);
  auto l = p.b.stack->listen({Ipv4Address::any(), 7107});
  REQUIRE(l);
  auto lo = p.a.stack->connect({Ipv4Address(127, 0, 0, 1), 7107});
  REQUIRE(lo);
  REQUIRE(wait_for(p, p.a, *lo, event::connected));
  CHECK(*lo->is_channel());
  REQUIRE(lo->close());
  REQUIRE(l->close());
  // The listener's entries left with it: from B, refused without TCP; from A, by TCP.
  auto after = p.b.stack->connect({Ipv4Address(127, 0, 0, 1), 7107});
  REQUIRE(after);
  p.step();
  REQUIRE(p.b.find(*after, event::closed) != nullptr);
  CHECK(p.b.find(*after, event::closed)->error == Errc::connection_refused);
  CHECK(p.b.stack->counter("shm_refused") == 3);
  auto tcp = p.a.stack->connect({addr_b, 7107});
  REQUIRE(tcp);
  REQUIRE(wait_for(p, p.a, *tcp, event::closed));
  CHECK(p.a.find(*tcp, event::closed)->error == Errc::connection_refused);
  p.step(4);
  Connection s = p.b.take_accepted();
  if (s.valid()) (void)s.close();
  p.step(4);
  CHECK(p.pools_whole());
}

TEST_CASE("shm: off, the same connect is TCP", "[shm]") {
  ApiPair p;  // no node attached
  auto [c, s] = p.connect_pair(7108);
  CHECK(!*c.is_channel());
  CHECK(std::string(c.info()->transport) == "tcp");
  REQUIRE(c.close());
  REQUIRE(s.close());
}

TEST_CASE("shm: stale and foreign handles return errors", "[shm]") {
  ShmPair p;
  MisuseCounter misuse;
  REQUIRE(p.b.stack->listen({Ipv4Address::any(), 7109}));
  auto [c, s] = p.connect_pair(7109);
  REQUIRE(c.close());
  CHECK(c.write("x", 1).error() == Errc::bad_handle);
  CHECK(c.recv().error() == Errc::bad_handle);
  CHECK(misuse.count() >= 2);
  Buffer none;
  CHECK(s.send(none).error() == Errc::invalid_argument);
  REQUIRE(s.close());
  p.step(4);
  CHECK(p.pools_whole());
}

TEST_CASE("shm: writable comes when a held Buffer is released, after a dequeue that freed no budget", "[shm]") {
  // The reader's recv() takes the chains off the ring (and rings the writer,
  // which finds no room yet: the bytes count until released); the release
  // must ring it again. A lost wakeup here stalled an echo once.
  const uint32_t budget = 64 * 1024;
  ShmPair p(budget);
  REQUIRE(p.b.stack->listen({Ipv4Address::any(), 7110}));
  auto [c, s] = p.connect_pair(7110);
  auto first = p.a.stack->alloc(budget);
  REQUIRE(first);
  REQUIRE(c.send(*first));
  auto second = p.a.stack->alloc(budget);
  REQUIRE(second);
  CHECK(c.send(*second).error() == Errc::would_block);
  REQUIRE(wait_for(p, p.b, s, event::readable));
  auto held = s.recv();
  REQUIRE(held);
  CHECK(held->size() == budget);
  p.a.events.clear();
  p.step(4);
  CHECK(p.a.find(c, event::writable) == nullptr);  // dequeued, not released: no room
  REQUIRE(held->release());
  REQUIRE(wait_for(p, p.a, c, event::writable, 2));
  CHECK(c.send(*second));
  CHECK(closed_and_whole(p, c, s));
}
