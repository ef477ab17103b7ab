// SPDX-License-Identifier: BSD-3-Clause
// TLS 1.3 post-handshake messages at a keel server, as records the test
// seals itself with the OpenSSL client's traffic secret (from its keylog):
// a KeyUpdate fragmented over records is gathered and obeyed (RFC 8446 5.1),
// two messages coalesced in one record too; what 5.1 forbids is refused with
// unexpected_message (another record type inside a fragmented message,
// bytes after a KeyUpdate in its record, an empty handshake record), an
// impossible length with decode_error; nothing leaks.
#include <catch2/catch.hpp>

#include <openssl/ssl.h>

#include <string>
#include <vector>

#include "session_harness.hpp"

using namespace keel;
using namespace keel::tls;
using namespace keel::tls::test;

namespace {

std::string* keylog_sink = nullptr;  // the current test's OpenSSL keylog lines

void capture_keylog(const SSL*, const char* line) {
  if (keylog_sink != nullptr) keylog_sink->append(line).append("\n");
}

// The secret of `label` in the captured keylog.
std::vector<uint8_t> secret_of(const std::string& log, const std::string& label) {
  size_t at = log.find(label + " ");
  REQUIRE(at != std::string::npos);
  size_t sp = log.find(' ', at + label.size() + 1);
  return unhex(std::string_view(log).substr(sp + 1, log.find('\n', sp) - sp - 1));
}

// The client's sending direction, re-created in the test from its secret.
struct ClientSender {
  Secret secret;
  RecordCipher c;

  explicit ClientSender(const std::vector<uint8_t>& s) {
    secret.len = s.size();
    std::copy(s.begin(), s.end(), secret.v);
    rekey();
  }
  void rekey() {
    auto k = tls13_traffic_keys(Cipher::aes_128_gcm, secret.span());
    REQUIRE(k.has_value());
    REQUIRE(c.init(Version::tls13, Cipher::aes_128_gcm, true, k->key_span(), k->iv_span(), 0).has_value());
  }
  void key_update() {  // what the client does after sending its KeyUpdate
    auto n = tls13_next_secret(Cipher::aes_128_gcm, secret.span());
    REQUIRE(n.has_value());
    secret = *n;
    rekey();
  }
  std::vector<uint8_t> record(ContentType t, std::vector<uint8_t> content) {
    std::vector<uint8_t> out(c.overhead() + content.size());
    Segment in{content.data(), content.size()}, dst{out.data(), out.size()};
    auto n = c.seal(t, {&in, 1}, {&dst, 1});
    REQUIRE(n.has_value());
    out.resize(*n);
    return out;
  }
};

std::vector<uint8_t> operator+(std::vector<uint8_t> a, const std::vector<uint8_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

TEST_CASE("post-handshake messages fragmented and coalesced over records", "[tls][session][post-handshake]") {
  CertFiles cert("keel-server");
  unsigned base = rte_mempool_in_use_count(pool());
  std::string log;
  keylog_sink = &log;
  {
    engine::Counters counters;
    Session k(server_context(cert), pool(), &counters);
    Peer p(false, TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256");
    SSL_CTX_set_keylog_callback(p.ctx, capture_keylog);
    (void)pump(k, p);
    REQUIRE(k.established());
    std::vector<uint8_t> sink;
    REQUIRE(p.read_all(sink));  // the tickets
    ClientSender client(secret_of(log, "CLIENT_TRAFFIC_SECRET_0"));
    auto deliver = [&](const std::vector<uint8_t>& wire) {
      k.input(to_mbufs(wire));
      return k.process();
    };
    const auto hs = ContentType::handshake;

    SECTION("a KeyUpdate in three records, update requested: keel re-keys both ways") {
      REQUIRE(deliver(client.record(hs, {0x18, 0})).has_value());
      REQUIRE(deliver(client.record(hs, {0, 1})).has_value());
      CHECK(counters.get(engine::Counter::tls_key_updates_in) == 0);  // not whole yet
      REQUIRE(deliver(client.record(hs, {1})).has_value());
      CHECK(counters.get(engine::Counter::tls_key_updates_in) == 1);
      CHECK(counters.get(engine::Counter::tls_key_updates_out) == 1);
      client.key_update();
      std::vector<uint8_t> hello = {'h', 'e', 'l', 'l', 'o'};
      REQUIRE(deliver(client.record(ContentType::application_data, hello)).has_value());
      CHECK(from_mbufs(k.take_plaintext()) == hello);
      // keel's own KeyUpdate reaches OpenSSL, which then reads keel's new keys.
      p.input(from_mbufs(k.take_output()));
      auto data = pattern(3000, 2);
      p.input(seal_all(k, data));
      std::vector<uint8_t> got;
      REQUIRE(p.read_all(got));
      CHECK(got == data);
    }
    SECTION("a fragment split across the records' boundary, then the next message whole in one record") {
      // KeyUpdate(not requested) = 18 00 00 01 00: "18 00 00" | "01 00", then another after re-keying.
      auto first = client.record(hs, {0x18, 0, 0});  // sealed in order: sequence numbers 0, 1
      REQUIRE(deliver(first + client.record(hs, {1, 0})).has_value());
      client.key_update();
      REQUIRE(deliver(client.record(hs, {0x18, 0, 0, 1, 0})).has_value());
      client.key_update();
      CHECK(counters.get(engine::Counter::tls_key_updates_in) == 2);
      CHECK(counters.get(engine::Counter::tls_key_updates_out) == 0);
      std::vector<uint8_t> x = {'x'};
      REQUIRE(deliver(client.record(ContentType::application_data, x)).has_value());
      CHECK(from_mbufs(k.take_plaintext()) == x);
    }
    SECTION("application data inside a fragmented message: unexpected_message") {
      REQUIRE(deliver(client.record(hs, {0x18, 0})).has_value());
      auto r = deliver(client.record(ContentType::application_data, {'x'}));
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error() == Alert::unexpected_message);
      CHECK(k.state() == Session::State::failed);
    }
    SECTION("bytes after a KeyUpdate in its record: unexpected_message") {
      auto r = deliver(client.record(hs, {0x18, 0, 0, 1, 0, 0x18}));
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error() == Alert::unexpected_message);
    }
    SECTION("an empty handshake record: unexpected_message") {
      auto r = deliver(client.record(hs, {}));
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error() == Alert::unexpected_message);
    }
    SECTION("a message longer than any post-handshake message can be: decode_error") {
      auto r = deliver(client.record(hs, {0x04, 0xff, 0xff, 0xff}));
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error() == Alert::decode_error);
    }
    (void)from_mbufs(k.take_output());
    (void)from_mbufs(k.take_plaintext());
  }
  keylog_sink = nullptr;
  CHECK(rte_mempool_in_use_count(pool()) == base);
}
