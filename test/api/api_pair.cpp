// SPDX-License-Identifier: BSD-3-Clause
#include "api_pair.hpp"

#include <catch2/catch.hpp>

#include <atomic>

#include "drivers/ring_port.hpp"
#include "shm/node.hpp"

namespace keel::test {

namespace {
std::atomic<int> misuse_count{0};
std::atomic<Errc> misuse_last{Errc::ok};
void count_misuse(Errc e, const char*) {
  ++misuse_count;
  misuse_last = e;
}

std::unique_ptr<engine::Engine> make_engine(const std::string& dev, Ipv4Address a,
                                            const tcp::TcpConfig& tcp) {
  engine::EngineConfig cfg;
  cfg.pool_mbufs = 8191;
  cfg.tcp = tcp;
  engine::PortSpec p;
  p.device = dev;
  p.l3.addrs = {net::Ipv4Cidr{net::Ipv4Addr{a.value}, 24}};
  cfg.ports = {p};
  auto e = engine::Engine::create(cfg);
  if (!e) FAIL("engine on " << dev << ": " << e.error());
  return std::move(*e);
}
}  // namespace

MisuseCounter::MisuseCounter() : prev_(set_misuse_handler(&count_misuse)) { misuse_count = 0; }
MisuseCounter::~MisuseCounter() { set_misuse_handler(prev_); }
int MisuseCounter::count() { return misuse_count; }
Errc MisuseCounter::last() { return misuse_last; }

uint16_t Side::flags_of(const Connection& conn) const {
  uint16_t f = 0;
  for (const auto& e : events)
    if (e.conn == conn) f |= e.flags;
  return f;
}

const Event* Side::find(const Connection& conn, uint16_t flag) const {
  const Event* found = nullptr;
  for (const auto& e : events)
    if (e.conn == conn && e.has(flag)) found = &e;
  return found;
}

Connection Side::take_accepted() {
  size_t seen = 0;
  for (const auto& e : events)
    if (e.has(event::accepted) && seen++ == accepted_taken) {
      ++accepted_taken;
      return e.conn;
    }
  return {};
}

tcp::TcpConfig ApiPair::small_tcp() {
  tcp::TcpConfig t;
  t.max_connections = 1024;
  t.ooo_queues = 64;
  t.rack_logs = 64;
  t.sack_boards = 64;
  t.msl_ns = 100'000'000;  // TIME-WAIT 200 ms: tests end sooner
  return t;
}

ApiPair::ApiPair(const tcp::TcpConfig& tcp, bool shm, uint32_t shm_budget) {
  shm::Node* node = nullptr;
  if (shm) {
    std::string why;
    node = shm::Node::open(1024, 1024, true, why);  // the defaults: whoever opens it first sizes it
    if (node == nullptr) FAIL(why);
  }
  static std::atomic<int> serial{0};
  link_ = "api" + std::to_string(serial++);
  auto link = drivers::create_ring_link(link_, 4096);
  if (!link) FAIL("ring link: " << link.error());
  int i = 0;
  for (Side* s : {&a, &b}) {
    s->engine = make_engine("net_ring_" + link_ + (i == 0 ? "_a" : "_b"), i == 0 ? addr_a : addr_b, tcp);
    s->pool_base = s->pool_in_use();
    s->core = std::make_unique<detail::StackCore>(*s->engine->instances()[0], s->engine->tcp(0),
                                                  engine::IdleConfig{}, nullptr, 1, &s->engine->udp(0),
                                                  node, shm_budget);
    s->core->bind_to_current_thread();
    s->stack = std::make_unique<Stack>(s->core.get());
    s->engine->instances()[0]->start(engine::now_ns());
    ++i;
  }
}

ApiPair::~ApiPair() {
  for (Side* s : {&a, &b}) {
    s->core.reset();
    s->engine.reset();
  }
}

void ApiPair::step(int rounds) {
  for (int r = 0; r < rounds; ++r)
    for (Side* s : {&a, &b})
      for (const Event& e : s->stack->poll_nowait()) s->events.push_back(e);
}

bool ApiPair::step_until(const std::function<bool()>& done, double max_seconds) {
  // Wall-clock bound: delayed ACKs (40 ms) and RTOs run on real time.
  uint64_t end = engine::now_ns() + uint64_t(max_seconds * 1e9);
  while (engine::now_ns() < end) {
    if (done()) return true;
    step();
  }
  return false;
}

std::pair<Connection, Connection> ApiPair::connect_pair(uint16_t port, const ConnectOptions& opt) {
  auto l = b.stack->listen({Ipv4Address::any(), port});
  // A listener that exists already is fine: tests open several connections.
  REQUIRE((l.has_value() || l.error() == Errc::already_exists));
  auto c = a.stack->connect({addr_b, port}, opt);
  REQUIRE(c.has_value());
  Connection client = *c;
  REQUIRE(step_until([&] { return a.find(client, event::connected) != nullptr; }));
  Connection server;
  REQUIRE(step_until([&] { return server.valid() || (server = b.take_accepted()).valid(); }));
  return {client, server};
}

bool ApiPair::pools_whole() {
  // Connections hold the other side's mbufs: free both, then drain the rings.
  for (Side* s : {&a, &b}) s->core.reset();
  for (Side* s : {&a, &b}) s->engine->quiesce();
  bool ok = true;
  for (Side* s : {&a, &b}) {
    if (s->pool_in_use() != s->pool_base) {
      UNSCOPED_INFO("pool in use " << s->pool_in_use() << ", baseline " << s->pool_base);
      ok = false;
    }
  }
  return ok;
}

}  // namespace keel::test
