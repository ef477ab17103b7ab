// SPDX-License-Identifier: BSD-3-Clause
// keel::tls::Connection, the native API's TLS: a keel client and a keel
// server on two stacks over net_ring (test/api's ApiPair), TLS 1.3 and 1.2:
// handshake events, zero-copy send/recv and copying write/read both ways,
// close_notify as end of stream, counters, and both pools whole afterwards;
// the client resuming its first session on a second connection; SNI choosing
// the server's certificate, or refusing an unknown name.
#include <catch2/catch.hpp>

#include <keel/tls.hpp>

#include <cstring>
#include <optional>
#include <vector>

#include "../api/api_pair.hpp"
#include "openssl_pair.hpp"

using namespace keel;
using keel::test::ApiPair;
using keel::tls::test::CertFiles;

namespace {

struct Ends {
  std::optional<tls::Connection> client, server;
  uint16_t client_flags = 0, server_flags = 0;  // TLS-level events seen so far
  Errc server_error = Errc::ok, client_error = Errc::ok;
};

// One round: poll both stacks and hand each TCP event to its TLS connection.
void drive(ApiPair& p, Ends& e) {
  p.step();
  for (const Event& ev : p.a.events)
    if (e.client && ev.conn == e.client->tcp()) {
      Event t = e.client->on_event(ev);
      e.client_flags |= t.flags;
      if (t.has(event::closed)) e.client_error = t.error;
    }
  for (const Event& ev : p.b.events)
    if (e.server && ev.conn == e.server->tcp()) {
      Event t = e.server->on_event(ev);
      e.server_flags |= t.flags;
      if (t.has(event::closed)) e.server_error = t.error;
    }
  p.a.events.clear();
  p.b.events.clear();
}

std::vector<uint8_t> pattern(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = uint8_t(i * 31 + (i >> 11));
  return v;
}

}  // namespace

TEST_CASE("tls::Connection between two keel stacks", "[tls][api]") {
  auto version = GENERATE(13, 12);
  CertFiles cert("keel-server");
  ApiPair p;
  auto [ca, cb] = p.connect_pair(4433);
  tls::Options so;
  so.cert_file = cert.cert;
  so.key_file = cert.key;
  so.alpn = {"http/1.1"};
  so.tls13 = version == 13;
  auto scfg = tls::Config::create(so);
  REQUIRE(scfg.has_value());
  tls::Options co;
  co.server = false;
  co.ca_file = cert.cert;
  co.alpn = {"h2", "http/1.1"};
  auto ccfg = tls::Config::create(co);
  REQUIRE(ccfg.has_value());

  Ends e;
  {
    auto c = tls::Connection::wrap(*p.a.stack, ca, *ccfg, "keel-server");
    auto s = tls::Connection::wrap(*p.b.stack, cb, *scfg);
    REQUIRE(c.has_value());
    REQUIRE(s.has_value());
    e.client.emplace(std::move(*c));
    e.server.emplace(std::move(*s));
  }
  for (int i = 0; i < 200 && !(e.client_flags & e.server_flags & event::connected); ++i) drive(p, e);
  REQUIRE((e.client_flags & event::connected) != 0);
  REQUIRE((e.server_flags & event::connected) != 0);
  CHECK(e.client->alpn() == "http/1.1");
  CHECK(e.client->peer_verified());
  CHECK(p.b.stack->counter("tls_handshakes") == 1);
  CHECK(p.a.stack->counter("tls_handshakes") == 1);

  // Client -> server: copying write, zero-copy recv.
  auto up = pattern(300000);
  std::vector<uint8_t> got_up;
  size_t sent = 0;
  for (int i = 0; i < 20000 && got_up.size() < up.size(); ++i) {
    if (sent < up.size())
      if (auto n = e.client->write(up.data() + sent, up.size() - sent)) sent += *n;
    drive(p, e);
    while (auto b = e.server->recv()) {
      if (b->empty()) break;
      std::vector<uint8_t> chunk(b->size());
      REQUIRE(b->copy_to(chunk.data(), chunk.size()) == chunk.size());
      got_up.insert(got_up.end(), chunk.begin(), chunk.end());
    }
  }
  CHECK(got_up == up);

  // Server -> client: zero-copy send of Buffers from the stack, copying read.
  auto down = pattern(200000);
  std::vector<uint8_t> got_down(down.size());
  size_t queued = 0, have = 0;
  for (int i = 0; i < 20000 && have < down.size(); ++i) {
    if (queued < down.size()) {
      size_t n = std::min<size_t>(20000, down.size() - queued);
      auto b = p.b.stack->alloc(n);
      REQUIRE(b.has_value());
      REQUIRE(b->copy_from(down.data() + queued, n).has_value());
      if (e.server->send(*b)) {
        queued += n;
        CHECK(b->empty());
      }
    }
    drive(p, e);
    while (have < down.size()) {
      auto n = e.client->read(got_down.data() + have, down.size() - have);
      if (!n || *n == 0) break;
      have += *n;
    }
  }
  CHECK(have == down.size());
  CHECK(got_down == down);
  CHECK(p.a.stack->counter("tls_bad_record_mac") == 0);

  // close_notify: the server sees the end of the stream, then closes too.
  REQUIRE(e.client->close().has_value());
  for (int i = 0; i < 200 && !(e.server_flags & event::peer_closed); ++i) drive(p, e);
  CHECK((e.server_flags & event::peer_closed) != 0);
  auto eof = e.server->recv();
  REQUIRE(eof.has_value());
  CHECK(eof->empty());
  REQUIRE(e.server->close().has_value());
  for (int i = 0; i < 50; ++i) drive(p, e);
  CHECK(p.b.stack->counter("tls_alerts_received") == 1);
  e.client.reset();
  e.server.reset();
  CHECK(p.pools_whole());
}

TEST_CASE("tls::Connection: the client resumes its first connection's session", "[tls][api][resume]") {
  auto version = GENERATE(13, 12);
  CertFiles cert("keel-server");
  ApiPair p;
  tls::Options so;
  so.cert_file = cert.cert;
  so.key_file = cert.key;
  so.tls13 = version == 13;
  auto scfg = tls::Config::create(so);
  REQUIRE(scfg.has_value());
  tls::Options co;
  co.server = false;
  auto ccfg = tls::Config::create(co);
  REQUIRE(ccfg.has_value());

  std::vector<uint8_t> session;
  for (int round = 0; round < 2; ++round) {
    INFO("version " << version << " connection " << round + 1);
    p.b.accepted_taken = 0;  // drive() cleared the events take_accepted() counts in
    auto [ca, cb] = p.connect_pair(uint16_t(4433 + round));
    Ends e;
    auto c = tls::Connection::wrap(*p.a.stack, ca, *ccfg, "keel-server", session);
    auto s = tls::Connection::wrap(*p.b.stack, cb, *scfg);
    REQUIRE(c.has_value());
    REQUIRE(s.has_value());
    e.client.emplace(std::move(*c));
    e.server.emplace(std::move(*s));
    for (int i = 0; i < 200 && !(e.client_flags & e.server_flags & event::connected); ++i) drive(p, e);
    REQUIRE((e.client_flags & event::connected) != 0);
    CHECK(e.client->resumed() == (round == 1));
    CHECK(e.server->resumed() == (round == 1));
    // A response from the server: in 1.3 it comes after the tickets (the delayed hand-off).
    auto down = pattern(50000);
    std::vector<uint8_t> got(down.size());
    size_t sent = 0, have = 0;
    for (int i = 0; i < 2000 && have < down.size(); ++i) {
      if (sent < down.size())
        if (auto n = e.server->write(down.data() + sent, down.size() - sent)) sent += *n;
      drive(p, e);
      while (have < down.size()) {
        auto n = e.client->read(got.data() + have, down.size() - have);
        if (!n || *n == 0) break;
        have += *n;
      }
    }
    CHECK(got == down);
    session = e.client->session_ticket();
    REQUIRE_FALSE(session.empty());
    REQUIRE(e.client->close().has_value());
    for (int i = 0; i < 200 && !(e.server_flags & event::peer_closed); ++i) drive(p, e);
    REQUIRE(e.server->close().has_value());
    for (int i = 0; i < 50; ++i) drive(p, e);
  }
  CHECK(p.a.stack->counter("tls_resumed") == 1);
  CHECK(p.b.stack->counter("tls_resumed") == 1);
  CHECK(p.a.stack->counter("tls_bad_record_mac") == 0);
  CHECK(p.pools_whole());
}

TEST_CASE("tls::Connection: SNI picks the server's certificate; strict refuses an unknown name", "[tls][api][sni]") {
  CertFiles def("keel-default"), named("keel-named", "DNS:*.named.example");
  ApiPair p;
  tls::Options so;
  so.cert_file = def.cert;
  so.key_file = def.key;
  so.sni_certs = {{named.cert, named.key}};
  so.sni_strict = true;
  auto scfg = tls::Config::create(so);
  REQUIRE(scfg.has_value());
  tls::Options co;
  co.server = false;
  co.ca_file = named.cert;  // only the named certificate verifies
  auto ccfg = tls::Config::create(co);
  REQUIRE(ccfg.has_value());

  for (const char* name : {"www.named.example", "nope.example"}) {
    INFO("server name " << name);
    bool known = std::strcmp(name, "nope.example") != 0;
    p.b.accepted_taken = 0;
    auto [ca, cb] = p.connect_pair(known ? 4443 : 4444);
    Ends e;
    auto c = tls::Connection::wrap(*p.a.stack, ca, *ccfg, name);
    auto s = tls::Connection::wrap(*p.b.stack, cb, *scfg);
    REQUIRE(c.has_value());
    REQUIRE(s.has_value());
    e.client.emplace(std::move(*c));
    e.server.emplace(std::move(*s));
    for (int i = 0; i < 200 && !(e.client_flags & e.server_flags & (event::connected | event::closed)); ++i)
      drive(p, e);
    if (known) {
      REQUIRE((e.client_flags & event::connected) != 0);
      REQUIRE((e.server_flags & event::connected) != 0);
      CHECK(e.server->server_name() == name);
      CHECK(e.client->server_name() == name);
      CHECK(e.client->peer_subject() == "/CN=keel-named");
      CHECK(e.client->peer_verified());
      REQUIRE(e.client->close().has_value());
      for (int i = 0; i < 200 && !(e.server_flags & event::peer_closed); ++i) drive(p, e);
      REQUIRE(e.server->close().has_value());
    } else {
      // The server's OpenSSL refuses the name; the client reads that alert.
      CHECK((e.server_flags & event::closed) != 0);
      CHECK(e.server_error == Errc::connection_aborted);
      CHECK(e.server->alert() == 112);  // unrecognized_name
      CHECK((e.client_flags & event::closed) != 0);
      CHECK(e.client_error == Errc::connection_reset);
      CHECK(e.client->alert() == 112);
      CHECK((e.client_flags & event::connected) == 0);
    }
    for (int i = 0; i < 50; ++i) drive(p, e);
  }
  CHECK(p.b.stack->counter("tls_handshake_failures") == 1);
  CHECK(p.pools_whole());
}
