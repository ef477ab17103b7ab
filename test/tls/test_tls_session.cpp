// SPDX-License-Identifier: BSD-3-Clause
// keel::tls::Session (OpenSSL handshake, keel record layer) against OpenSSL
// peers over memory, mbufs in and out: every suite and version, session
// tickets counted into the sequence numbers, KeyUpdate, resumption, client
// certificates, close_notify, and the refusals (with counters and the mempool
// back to its baseline).
#include <catch2/catch.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <cstring>
#include <memory>
#include <vector>

#include "openssl_pair.hpp"
#include "session_harness.hpp"
#include "tls/session.hpp"

using namespace keel;
using namespace keel::tls;
using namespace keel::tls::test;

TEST_CASE("keel server with OpenSSL client: every suite, both versions, tickets counted", "[tls][session]") {
  auto v = GENERATE(Version::tls13, Version::tls12);
  auto c = GENERATE(Cipher::aes_128_gcm, Cipher::aes_256_gcm, Cipher::chacha20_poly1305);
  INFO("version " << int(v) << " cipher " << int(c));
  CertFiles cert("keel-server");
  unsigned base = rte_mempool_in_use_count(pool());
  {
    engine::Counters counters;
    Session k(server_context(cert), pool(), &counters);
    // The 1.2 names here are ECDHE-ECDSA: the throwaway certificate is P-256.
    Peer p(false, v == Version::tls13 ? TLS1_3_VERSION : TLS1_2_VERSION, test::openssl_suite(v, c));
    unsigned char alpn[] = "\x08http/1.1";
    SSL_set_alpn_protos(p.ssl, alpn, sizeof alpn - 1);
    (void)pump(k, p);
    REQUIRE(k.established());
    REQUIRE(SSL_is_init_finished(p.ssl));
    CHECK(k.version() == v);
    CHECK(k.cipher() == c);
    CHECK(k.alpn() == "http/1.1");
    CHECK(counters.get(engine::Counter::tls_handshakes) == 1);
    // TLS 1.3: OpenSSL sent two tickets under the application keys already.
    CHECK(k.tx_seq() == (v == Version::tls13 ? 2u : 1u));

    // Client to keel: a request, split over several records and segments.
    auto req = pattern(40000, 1);
    REQUIRE(SSL_write(p.ssl, req.data(), int(req.size())) == int(req.size()));
    k.input(to_mbufs(p.output()));
    REQUIRE(k.process().has_value());
    CHECK(from_mbufs(k.take_plaintext()) == req);

    // keel to client: records sized to 1448-byte segments.
    auto resp = pattern(100000, 7);
    p.input(seal_all(k, resp));
    std::vector<uint8_t> got;
    REQUIRE(p.read_all(got));
    CHECK(got == resp);
    CHECK(counters.get(engine::Counter::tls_bad_record_mac) == 0);

    // Full records: 11 segments of 1448 (content at most 2^14), one mbuf per segment.
    size_t full = k.full_record_wire(1448);
    CHECK(full == 11 * 1448);
    size_t per = k.content_per_record(full);
    CHECK(per <= max_plaintext);
    CHECK(per + record_overhead(v, c) == full);
    CHECK(k.full_record_wire(9000) == 9000);  // one jumbo segment: 2^14 content would need two
    auto bulk = pattern(per, 3);
    Segment seg{bulk.data(), bulk.size()};
    auto rec = k.seal({&seg, 1}, 1448);
    REQUIRE(rec.has_value());
    CHECK((*rec)->pkt_len == full);
    CHECK((*rec)->nb_segs == 11);
    for (rte_mbuf* m = *rec; m != nullptr; m = m->next) CHECK(m->data_len == 1448);
    p.input(from_mbufs(*rec));
    got.clear();
    REQUIRE(p.read_all(got));
    CHECK(got == bulk);

    // close_notify both ways.
    k.close_notify();
    p.input(from_mbufs(k.take_output()));
    uint8_t b;
    CHECK(SSL_read(p.ssl, &b, 1) == 0);
    CHECK(SSL_get_error(p.ssl, 0) == SSL_ERROR_ZERO_RETURN);
    CHECK(SSL_shutdown(p.ssl) >= 0);
    k.input(to_mbufs(p.output()));
    REQUIRE(k.process().has_value());
    CHECK(k.peer_closed());
    CHECK_FALSE(k.seal({}).has_value());
  }
  CHECK(rte_mempool_in_use_count(pool()) == base);
}

TEST_CASE("KeyUpdate from an OpenSSL client, update requested: keel answers and re-keys", "[tls][session]") {
  CertFiles cert("keel-server");
  Session k(server_context(cert), pool(), nullptr);
  Peer p(false, TLS1_3_VERSION, nullptr);
  (void)pump(k, p);
  REQUIRE(k.established());
  REQUIRE(SSL_key_update(p.ssl, SSL_KEY_UPDATE_REQUESTED) == 1);
  auto req = pattern(3000, 2);
  REQUIRE(SSL_write(p.ssl, req.data(), int(req.size())) == int(req.size()));
  k.input(to_mbufs(p.output()));
  REQUIRE(k.process().has_value());
  CHECK(from_mbufs(k.take_plaintext()) == req);
  CHECK(k.rx_seq() == 1);  // new keys, first record
  auto ku = from_mbufs(k.take_output());  // keel's own KeyUpdate
  CHECK_FALSE(ku.empty());
  CHECK(k.tx_seq() == 0);
  p.input(ku);
  auto resp = pattern(5000, 3);
  p.input(seal_all(k, resp));
  std::vector<uint8_t> got;
  REQUIRE(p.read_all(got));
  CHECK(got == resp);
  // keel-initiated, requesting the peer's: OpenSSL follows and its next record opens.
  REQUIRE(k.key_update(true).has_value());
  p.input(from_mbufs(k.take_output()));
  got.clear();
  REQUIRE(p.read_all(got));
  REQUIRE(SSL_write(p.ssl, req.data(), int(req.size())) == int(req.size()));
  k.input(to_mbufs(p.output()));
  REQUIRE(k.process().has_value());
  CHECK(from_mbufs(k.take_plaintext()) == req);
}

TEST_CASE("session resumption with tickets, both versions", "[tls][session]") {
  auto v = GENERATE(TLS1_3_VERSION, TLS1_2_VERSION);
  CertFiles cert("keel-server");
  auto ctx = server_context(cert);
  SSL_SESSION* saved = nullptr;
  {
    Session k(ctx, pool(), nullptr);
    Peer p(false, v, nullptr);
    (void)pump(k, p);
    REQUIRE(k.established());
    CHECK_FALSE(k.resumed());
    p.input(seal_all(k, pattern(10, 0)));  // the client reads the tickets with the data
    std::vector<uint8_t> got;
    REQUIRE(p.read_all(got));
    saved = SSL_get1_session(p.ssl);
    REQUIRE(saved != nullptr);
    // A client freed without close_notify marks its session not resumable.
    REQUIRE(SSL_shutdown(p.ssl) >= 0);
  }
  Session k(ctx, pool(), nullptr);
  Peer p(false, v, nullptr);
  SSL_set_session(p.ssl, saved);
  (void)pump(k, p);
  REQUIRE(k.established());
  CHECK(k.resumed());
  CHECK(SSL_session_reused(p.ssl) == 1);
  auto resp = pattern(20000, 4);
  p.input(seal_all(k, resp));
  std::vector<uint8_t> got;
  REQUIRE(p.read_all(got));
  CHECK(got == resp);
  SSL_SESSION_free(saved);
}

TEST_CASE("client certificate required: refused when absent, accepted when presented", "[tls][session]") {
  CertFiles server_cert("keel-server"), client_cert("keel-client");
  auto ctx = server_context(server_cert, true, true, client_cert.cert);
  SECTION("absent") {
    engine::Counters counters;
    Session k(ctx, pool(), &counters);
    Peer p(false, TLS1_3_VERSION, nullptr);
    CHECK(pump(k, p) == Alert::certificate_required);  // RFC 8446 4.4.2.4, as OpenSSL sent it
    CHECK(k.state() == Session::State::failed);
    CHECK(counters.get(engine::Counter::tls_handshake_failures) == 1);
  }
  SECTION("presented") {
    Session k(ctx, pool(), nullptr);
    Peer p(false, TLS1_3_VERSION, nullptr, &client_cert);
    (void)pump(k, p);
    REQUIRE(k.established());
    CHECK(k.peer_verified());
  }
  ERR_clear_error();
}

TEST_CASE("keel client with an OpenSSL server", "[tls][session]") {
  auto v = GENERATE(TLS1_3_VERSION, TLS1_2_VERSION);
  CertFiles cert("keel-server");
  ContextOptions o;
  o.server = false;
  o.ca_file = cert.cert;  // verify the server against its own self-signed certificate
  auto ctx = Context::create(o);
  REQUIRE(ctx.has_value());
  Session k(*ctx, pool(), nullptr, "keel-server");
  Peer p(true, v, nullptr, &cert);
  (void)pump(k, p);
  REQUIRE(k.established());
  CHECK(k.peer_verified());
  auto req = pattern(2000, 5);
  p.input(seal_all(k, req));
  std::vector<uint8_t> got;
  REQUIRE(p.read_all(got));
  CHECK(got == req);
  auto resp = pattern(30000, 6);
  REQUIRE(SSL_write(p.ssl, resp.data(), int(resp.size())) == int(resp.size()));
  k.input(to_mbufs(p.output()));  // tickets (1.3) first, then the data
  REQUIRE(k.process().has_value());
  CHECK(from_mbufs(k.take_plaintext()) == resp);
}

// ===== refusals =====

TEST_CASE("a bad record ends the session with the right alert, counted, nothing leaked", "[tls][session][errors]") {
  auto v = GENERATE(TLS1_3_VERSION, TLS1_2_VERSION);
  CertFiles cert("keel-server");
  unsigned base = rte_mempool_in_use_count(pool());
  engine::Counters counters;
  {
    Session k(server_context(cert), pool(), &counters);
    Peer p(false, v, nullptr);
    (void)pump(k, p);
    REQUIRE(k.established());
    auto req = pattern(1000, 1);
    REQUIRE(SSL_write(p.ssl, req.data(), int(req.size())) == int(req.size()));
    auto wire = p.output();

    SECTION("a corrupted byte: bad_record_mac, and OpenSSL gets the alert") {
      wire[wire.size() / 2] ^= 0x20;
      k.input(to_mbufs(wire));
      auto r = k.process();
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error() == Alert::bad_record_mac);
      CHECK(counters.get(engine::Counter::tls_bad_record_mac) == 1);
      CHECK(counters.get(engine::Counter::tls_alerts_sent) == 1);
      p.input(from_mbufs(k.take_output()));
      std::vector<uint8_t> got;
      CHECK_FALSE(p.read_all(got));
      CHECK(ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_SSLV3_ALERT_BAD_RECORD_MAC);
    }
    SECTION("an oversized record: record_overflow before its body arrives") {
      std::vector<uint8_t> big = {23, 3, 3, 0x48, 0x01};  // 2^14 + 2049
      k.input(to_mbufs(big));
      auto r = k.process();
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error() == Alert::record_overflow);
      CHECK(counters.get(engine::Counter::tls_record_overflow) == 1);
    }
    SECTION("a truncated record waits; the rest completes it") {
      k.input(to_mbufs({wire.begin(), wire.end() - 1}));
      REQUIRE(k.process().has_value());
      CHECK(k.take_plaintext() == nullptr);
      k.input(to_mbufs({wire.end() - 1, wire.end()}));
      REQUIRE(k.process().has_value());
      CHECK(from_mbufs(k.take_plaintext()) == req);
    }
    SECTION("a record cut short by the end of the stream: decode_error") {
      k.input(to_mbufs({wire.begin(), wire.end() - 1}));
      REQUIRE(k.process().has_value());
      auto r = k.end_of_stream();
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error() == Alert::decode_error);
      CHECK(counters.get(engine::Counter::tls_bad_records) == 1);
      CHECK(counters.get(engine::Counter::tls_alerts_sent) == 1);
    }
    SECTION("the end of the stream at a record boundary without close_notify: no error, not peer_closed") {
      k.input(to_mbufs(wire));
      REQUIRE(k.process().has_value());
      REQUIRE(k.end_of_stream().has_value());
      CHECK_FALSE(k.peer_closed());
      CHECK(from_mbufs(k.take_plaintext()) == req);
    }
    SECTION("a record after close_notify: unexpected_message") {
      REQUIRE(SSL_shutdown(p.ssl) >= 0);
      auto close = p.output();
      wire.insert(wire.end(), close.begin(), close.end());
      k.input(to_mbufs(wire));
      REQUIRE(k.process().has_value());
      CHECK(k.peer_closed());
      CHECK(from_mbufs(k.take_plaintext()) == req);
      std::vector<uint8_t> more = {23, 3, 3, 0, 40};
      more.resize(45, 0x55);
      k.input(to_mbufs(more));
      auto r = k.process();
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error() == Alert::unexpected_message);
      CHECK(counters.get(engine::Counter::tls_bad_records) == 1);
    }
    (void)from_mbufs(k.take_output());
    (void)from_mbufs(k.take_plaintext());
  }
  ERR_clear_error();
  CHECK(rte_mempool_in_use_count(pool()) == base);
}

TEST_CASE("a missing or mismatched certificate is refused with a message naming the option", "[tls][context]") {
  CertFiles a("a"), b("b");
  ContextOptions o;
  o.cert_file = "/nonexistent/cert.pem";
  o.key_file = a.key;
  auto r = Context::create(o);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().find("--cert /nonexistent/cert.pem") != std::string::npos);
  o.cert_file = a.cert;
  o.key_file = b.key;
  r = Context::create(o);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().find("--key " + b.key) != std::string::npos);
  CHECK(r.error().find("mismatch") != std::string::npos);
  o.cert_file.clear();
  r = Context::create(o);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().find("--cert is required") != std::string::npos);
  ERR_clear_error();
}

// ===== keel as the client: resumption =====

namespace {

// Runs a keel client's handshake against OpenSSL server `p` up to the
// server's completion, and returns what the server wrote after it (TLS 1.3:
// its tickets), not yet delivered to keel.
std::vector<uint8_t> client_handshake(Session& k, Peer& p) {
  for (int i = 0; i < 10 && !SSL_is_init_finished(p.ssl); ++i) {
    p.input(from_mbufs(k.take_output()));
    int r = SSL_do_handshake(p.ssl);
    auto wire = p.output();
    if (r == 1) return wire;
    REQUIRE(SSL_get_error(p.ssl, r) == SSL_ERROR_WANT_READ);
    k.input(to_mbufs(wire));
    REQUIRE(k.process().has_value());
  }
  FAIL("the handshake did not finish");
  return {};
}

// keel -> server and server -> keel: `n` bytes each way arrive intact.
void data_both_ways(Session& k, Peer& p, size_t n) {
  auto req = pattern(n, 5);
  p.input(seal_all(k, req));
  std::vector<uint8_t> got;
  REQUIRE(p.read_all(got));
  CHECK(got == req);
  auto resp = pattern(n, 6);
  REQUIRE(SSL_write(p.ssl, resp.data(), int(resp.size())) == int(resp.size()));
  k.input(to_mbufs(p.output()));
  REQUIRE(k.process().has_value());
  CHECK(from_mbufs(k.take_plaintext()) == resp);
}

}  // namespace

TEST_CASE("keel client resumes its first connection's session on the second, both versions", "[tls][session][resume]") {
  auto v = GENERATE(TLS1_3_VERSION, TLS1_2_VERSION);
  INFO("version " << std::hex << v);
  CertFiles cert("keel-server");
  auto ctx = client_context(cert);
  unsigned base = rte_mempool_in_use_count(pool());
  std::vector<uint8_t> ticket;
  engine::Counters counters;
  Peer p1(true, v, nullptr, &cert);
  {
    Session k(ctx, pool(), &counters, "keel-server");
    (void)pump(k, p1);
    REQUIRE(k.established());
    CHECK_FALSE(k.resumed());
    CHECK_FALSE(k.rx_by_openssl());  // 1.3: the tickets came with the server's last flight
    ticket = k.session_ticket();
    REQUIRE_FALSE(ticket.empty());
    data_both_ways(k, p1, 30000);
    k.close_notify();
    p1.input(from_mbufs(k.take_output()));
  }
  Peer p2(p1, true);
  {
    Session k(ctx, pool(), &counters, "keel-server", ticket);
    (void)pump(k, p2);
    REQUIRE(k.established());
    CHECK(k.resumed());
    CHECK(SSL_session_reused(p2.ssl) == 1);
    CHECK(k.peer_verified());  // the certificate is remembered in the session
    CHECK(counters.get(engine::Counter::tls_resumed) == 1);
    CHECK(counters.get(engine::Counter::tls_handshakes) == 2);
    data_both_ways(k, p2, 30000);
    if (v == TLS1_3_VERSION) CHECK_FALSE(k.session_ticket().empty());  // a fresh ticket for the next one
  }
  SECTION("bytes that are not a session: a full handshake") {
    std::vector<uint8_t> junk(ticket.size(), 0x5a);
    Peer p3(p1, true);
    Session k(ctx, pool(), nullptr, "keel-server", junk);
    (void)pump(k, p3);
    REQUIRE(k.established());
    CHECK_FALSE(k.resumed());
    data_both_ways(k, p3, 2000);
  }
  ERR_clear_error();
  CHECK(rte_mempool_in_use_count(pool()) == base);
}

TEST_CASE("TLS 1.3 client: application data in the same burst as the tickets", "[tls][session][resume]") {
  CertFiles cert("keel-server");
  auto ctx = client_context(cert);
  unsigned base = rte_mempool_in_use_count(pool());
  {
    Session k(ctx, pool(), nullptr, "keel-server");
    Peer p(true, TLS1_3_VERSION, nullptr, &cert);
    auto burst = client_handshake(k, p);  // two tickets
    REQUIRE(k.established());
    CHECK(k.rx_by_openssl());
    auto resp = pattern(30000, 9);  // two records: 16384 + 13616
    REQUIRE(SSL_write(p.ssl, resp.data(), int(resp.size())) == int(resp.size()));
    auto data = p.output();
    burst.insert(burst.end(), data.begin(), data.end());
    SECTION("in one delivery") {
      k.input(to_mbufs(burst));
      REQUIRE(k.process().has_value());
    }
    SECTION("in 100-byte pieces: records cut while OpenSSL still reads") {
      for (size_t off = 0; off < burst.size(); off += 100) {
        k.input(to_mbufs({burst.begin() + off, burst.begin() + std::min(off + 100, burst.size())}));
        REQUIRE(k.process().has_value());
      }
    }
    CHECK_FALSE(k.rx_by_openssl());
    CHECK(from_mbufs(k.take_plaintext()) == resp);
    // OpenSSL read the first ticket; keel the second (dropped) and both data records.
    CHECK(k.rx_seq() == 4);
    CHECK_FALSE(k.session_ticket().empty());
    data_both_ways(k, p, 5000);
  }
  CHECK(rte_mempool_in_use_count(pool()) == base);
}

TEST_CASE("TLS 1.3 client, a server that sends no tickets: data flows, no session", "[tls][session][resume]") {
  CertFiles cert("keel-server");
  auto ctx = client_context(cert);
  unsigned base = rte_mempool_in_use_count(pool());
  {
    engine::Counters counters;
    Session k(ctx, pool(), &counters, "keel-server");
    Peer p(true, TLS1_3_VERSION, nullptr, &cert);
    SSL_set_num_tickets(p.ssl, 0);
    CHECK(client_handshake(k, p).empty());
    REQUIRE(k.established());
    CHECK(k.rx_by_openssl());
    SECTION("data: the first record through OpenSSL, the rest through keel") {
      // keel sends while OpenSSL still holds the receive direction.
      auto req = pattern(3000, 1);
      p.input(seal_all(k, req));
      std::vector<uint8_t> got;
      REQUIRE(p.read_all(got));
      CHECK(got == req);
      auto resp = pattern(40000, 2);  // three records
      REQUIRE(SSL_write(p.ssl, resp.data(), int(resp.size())) == int(resp.size()));
      k.input(to_mbufs(p.output()));
      REQUIRE(k.process().has_value());
      CHECK_FALSE(k.rx_by_openssl());
      CHECK(from_mbufs(k.take_plaintext()) == resp);
      CHECK(k.rx_seq() == 3);
      CHECK(k.session_ticket().empty());
      data_both_ways(k, p, 5000);
    }
    SECTION("close_notify before any ticket: peer_closed, nothing after it accepted") {
      REQUIRE(SSL_shutdown(p.ssl) >= 0);
      k.input(to_mbufs(p.output()));
      REQUIRE(k.process().has_value());
      CHECK(k.peer_closed());
      CHECK(k.session_ticket().empty());
      CHECK(k.end_of_stream().has_value());
    }
    SECTION("a KeyUpdate before any ticket: refused (OpenSSL would follow it alone)") {
      REQUIRE(SSL_key_update(p.ssl, SSL_KEY_UPDATE_NOT_REQUESTED) == 1);
      REQUIRE(SSL_do_handshake(p.ssl) == 1);
      k.input(to_mbufs(p.output()));
      auto r = k.process();
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error() == Alert::unexpected_message);
      CHECK(k.state() == Session::State::failed);
    }
    SECTION("the stream ends inside a record OpenSSL is reading: decode_error") {
      auto resp = pattern(100, 4);
      REQUIRE(SSL_write(p.ssl, resp.data(), int(resp.size())) == int(resp.size()));
      auto wire = p.output();
      k.input(to_mbufs({wire.begin(), wire.end() - 1}));
      REQUIRE(k.process().has_value());
      CHECK(k.rx_by_openssl());
      CHECK(k.take_plaintext() == nullptr);
      auto r = k.end_of_stream();
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error() == Alert::decode_error);
    }
    SECTION("a corrupted record before any ticket: bad_record_mac sent by keel, counted") {
      auto resp = pattern(100, 3);
      REQUIRE(SSL_write(p.ssl, resp.data(), int(resp.size())) == int(resp.size()));
      auto wire = p.output();
      wire[wire.size() / 2] ^= 1;
      k.input(to_mbufs(wire));
      auto r = k.process();
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error() == Alert::bad_record_mac);
      CHECK(counters.get(engine::Counter::tls_bad_record_mac) == 1);
      p.input(from_mbufs(k.take_output()));  // keel's alert, under keel's keys: OpenSSL reads it
      std::vector<uint8_t> got;
      CHECK_FALSE(p.read_all(got));
      CHECK(ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_SSLV3_ALERT_BAD_RECORD_MAC);
    }
    (void)from_mbufs(k.take_output());
    (void)from_mbufs(k.take_plaintext());
  }
  ERR_clear_error();
  CHECK(rte_mempool_in_use_count(pool()) == base);
}
