// SPDX-License-Identifier: BSD-3-Clause
// UDP through the native API over two real stacks (net_ring): zero-copy and
// copying datagrams, connected sockets, ICMP errors as events, edge-triggered
// readable events, and misuse.
#include <catch2/catch.hpp>

#include <rte_mbuf.h>

#include <cstring>
#include <thread>

#include "api_pair.hpp"

using namespace keel;
using keel::test::addr_a;
using keel::test::addr_b;
using keel::test::ApiPair;
using keel::test::MisuseCounter;

namespace {
const Event* udp_event(const keel::test::Side& side, const UdpSocket& s, uint16_t flag) {
  const Event* found = nullptr;
  for (const auto& e : side.events)
    if (e.udp == s && e.has(flag)) found = &e;
  return found;
}
}  // namespace

TEST_CASE("api udp: a datagram is the sender's own mbuf at the receiver", "[api][udp]") {
  ApiPair p;
  auto a = p.a.stack->udp_bind({Ipv4Address::any(), 0});
  auto b = p.b.stack->udp_bind({addr_b, 5353});
  REQUIRE(a);
  REQUIRE(b);
  REQUIRE(b->set_user(99));
  CHECK(a->local()->port >= 32768);
  CHECK(b->local()->addr == addr_b);
  auto buf = p.a.stack->alloc(200);
  REQUIRE(buf);
  std::vector<uint8_t> data(200);
  for (size_t i = 0; i < data.size(); ++i) data[i] = uint8_t(i ^ 0x5a);
  REQUIRE(buf->copy_from(data.data(), data.size()));
  rte_mbuf* sent_mbuf = buf->mbuf();
  REQUIRE(a->send_to(*buf, {addr_b, 5353}));
  CHECK(buf->empty());
  REQUIRE(p.step_until([&] { return udp_event(p.b, *b, event::readable) != nullptr; }));
  CHECK(udp_event(p.b, *b, event::readable)->user == 99);
  auto d = b->recv();
  REQUIRE(d);
  CHECK(d->payload.mbuf() == sent_mbuf);  // the same rte_mbuf, header written in its headroom
  CHECK(d->payload.size() == data.size());
  std::vector<uint8_t> got(d->payload.size());
  (void)d->payload.copy_to(got.data(), got.size());
  CHECK(got == data);
  CHECK(d->from == Endpoint{addr_a, a->local()->port});
  CHECK(d->to == addr_b);
  CHECK(b->recv().error() == Errc::would_block);
  // Echo it back zero copy.
  REQUIRE(b->send_to(d->payload, d->from));
  REQUIRE(p.step_until([&] { return udp_event(p.a, *a, event::readable) != nullptr; }));
  auto back = a->recv();
  REQUIRE(back);
  CHECK(back->payload.mbuf() == sent_mbuf);
  REQUIRE(back->payload.release());
  CHECK(a->close());
  CHECK(b->close());
  p.step(5);
  CHECK(p.pools_whole());
}

TEST_CASE("api udp: copying send and receive, truncation, edge-triggered readable", "[api][udp]") {
  ApiPair p;
  auto a = p.a.stack->udp_bind({addr_a, 6000});
  auto b = p.b.stack->udp_bind({Ipv4Address::any(), 6001});
  REQUIRE(a);
  REQUIRE(b);
  for (int i = 0; i < 5; ++i) REQUIRE(*a->send_to("hello, world", 12, {addr_b, 6001}) == 12);
  REQUIRE(p.step_until([&] { return b->queued().value_or(0) == 5; }));
  int readable = 0;
  for (const auto& e : p.b.events)
    if (e.udp == *b && e.has(event::readable)) ++readable;
  CHECK(readable == 1);  // one edge for the five
  char small[5];
  auto r = b->recv_copy(small, sizeof small);
  REQUIRE(r);
  CHECK(r->copied == 5);
  CHECK(r->length == 12);
  CHECK(r->truncated);
  CHECK(std::memcmp(small, "hello", 5) == 0);
  CHECK(r->from == Endpoint{addr_a, 6000});
  char full[64];
  for (int i = 0; i < 4; ++i) CHECK(b->recv_copy(full, sizeof full)->copied == 12);
  CHECK(b->recv_copy(full, sizeof full).error() == Errc::would_block);
  // Empty again: the next datagram is a new edge.
  p.b.events.clear();
  REQUIRE(a->send_to("x", 1, {addr_b, 6001}));
  REQUIRE(p.step_until([&] { return udp_event(p.b, *b, event::readable) != nullptr; }));
  // A datagram over the MTU is fragmented and arrives whole.
  std::vector<uint8_t> big(4000, 0x42);
  REQUIRE(*a->send_to(big.data(), big.size(), {addr_b, 6001}) == big.size());
  REQUIRE(p.step_until([&] { return b->queued().value_or(0) == 2; }));
  (void)b->recv();
  auto bigd = b->recv();
  REQUIRE(bigd);
  CHECK(bigd->payload.size() == 4000);
  REQUIRE(bigd->payload.release());
  CHECK(a->send_to(big.data(), UdpSocket::max_payload + 1, {addr_b, 6001}).error() == Errc::message_too_long);
  (void)a->close();
  (void)b->close();
  p.step(5);
  CHECK(p.pools_whole());
}

TEST_CASE("api udp: connected sockets filter peers; port unreachable is an error event", "[api][udp]") {
  ApiPair p;
  auto a = p.a.stack->udp_bind({Ipv4Address::any(), 7100});
  auto b = p.b.stack->udp_bind({Ipv4Address::any(), 7101});
  auto other = p.a.stack->udp_bind({Ipv4Address::any(), 7102});
  REQUIRE(a);
  REQUIRE(b);
  REQUIRE(other);
  CHECK(a->write("x", 1).error() == Errc::not_connected);
  REQUIRE(b->connect({addr_a, 7100}));
  REQUIRE(a->connect({addr_b, 7101}));
  REQUIRE(*a->write("from a", 6) == 6);
  REQUIRE(*other->send_to("from other", 10, {addr_b, 7101}) == 10);
  p.step(50);
  CHECK(*b->queued() == 1);  // only its peer's datagram
  char buf[32];
  CHECK(b->recv_copy(buf, sizeof buf)->copied == 6);
  // Nobody on B's port 7999: B answers with port unreachable, A's connected socket hears it.
  REQUIRE(a->connect({addr_b, 7999}));
  REQUIRE(*a->write("anyone?", 7) == 7);
  REQUIRE(p.step_until([&] { return udp_event(p.a, *a, event::error) != nullptr; }));
  CHECK(udp_event(p.a, *a, event::error)->error == Errc::connection_refused);
  CHECK(a->write("again", 5).error() == Errc::connection_refused);  // reported once
  CHECK(*a->write("again", 5) == 5);
  for (auto* s : {&*a, &*b, &*other}) (void)s->close();
  p.step(20);
  CHECK(p.pools_whole());
}

TEST_CASE("api udp: misuse and bad arguments", "[api][udp]") {
  ApiPair p;
  auto a = p.a.stack->udp_bind({addr_a, 7200});
  REQUIRE(a);
  CHECK(p.a.stack->udp_bind({Ipv4Address::any(), 7200}).error() == Errc::already_exists);
  CHECK(p.a.stack->udp_bind({Ipv4Address(198, 18, 5, 99), 7201}).error() == Errc::invalid_argument);
  Buffer empty;
  CHECK(a->send_to(empty, {addr_b, 1}).error() == Errc::invalid_argument);
  auto buf = p.a.stack->alloc(10);
  REQUIRE(buf);
  CHECK(a->send_to(*buf, {addr_b, 0}).error() == Errc::invalid_argument);
  CHECK(!buf->empty());  // refused: still the caller's
  MisuseCounter m;
  Result<size_t> from_thread = fail(Errc::ok);
  std::thread t([&] { from_thread = a->send_to("x", 1, {addr_b, 9}); });
  t.join();
  CHECK(from_thread.error() == Errc::wrong_thread);
  REQUIRE(a->close());
  CHECK(a->close().error() == Errc::bad_handle);
  CHECK(a->send_to(*buf, {addr_b, 9}).error() == Errc::bad_handle);
  CHECK(m.count() >= 3);
  REQUIRE(buf->release());
  UdpSocket none;
  CHECK(none.recv().error() == Errc::bad_handle);
  p.step(5);
  CHECK(p.pools_whole());
}
