// SPDX-License-Identifier: BSD-3-Clause
// SNI (RFC 6066 3) with keel::tls::Session: a keel server holding several
// certificates serves the one whose names match the client's server_name
// (subjectAltName DNS names, a wildcard, the CN when there is no SAN; case
// does not matter), the default one for no name or a name nothing matches,
// or refuses that name with unrecognized_name when strict; server_name() on
// both sides; a keel client's SNI as an OpenSSL server sees it; the refusals
// of bad SNI options.
#include <catch2/catch.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <string>

#include "session_harness.hpp"

using namespace keel;
using namespace keel::tls;
using namespace keel::tls::test;

namespace {

// The default certificate, one named by its CN only, one by a wildcard SAN (RSA, so
// that switching to it also switches the key type).
struct SniCerts {
  CertFiles def{"keel-default"};
  CertFiles a{"a.example"};
  CertFiles b{"keel-b", "DNS:*.b.example,DNS:b.example", true};
};

std::shared_ptr<Context> sni_server(const SniCerts& c, bool strict, bool tls13 = true) {
  ContextOptions o;
  o.cert_file = c.def.cert;
  o.key_file = c.def.key;
  o.sni_certs = {{c.a.cert, c.a.key}, {c.b.cert, c.b.key}};
  o.sni_strict = strict;
  o.tls13 = tls13;
  o.tls12 = !tls13;
  auto ctx = Context::create(o);
  REQUIRE(ctx.has_value());
  return *ctx;
}

std::string subject_of(SSL* ssl) {
  X509* x = SSL_get0_peer_certificate(ssl);
  if (x == nullptr) return {};
  char buf[256];
  return X509_NAME_oneline(X509_get_subject_name(x), buf, sizeof buf);
}

}  // namespace

TEST_CASE("SNI chooses the server certificate by name, both versions", "[tls][sni]") {
  auto tls13 = GENERATE(true, false);
  struct Want {
    const char* name;
    const char* cn;
  };
  auto w = GENERATE(Want{nullptr, "/CN=keel-default"}, Want{"a.example", "/CN=a.example"},
                    Want{"A.Example", "/CN=a.example"}, Want{"b.example", "/CN=keel-b"},
                    Want{"www.b.example", "/CN=keel-b"}, Want{"x.www.b.example", "/CN=keel-default"},
                    Want{"other.example", "/CN=keel-default"}, Want{"keel-default", "/CN=keel-default"});
  INFO((tls13 ? "TLS 1.3" : "TLS 1.2") << ", server name " << (w.name ? w.name : "(none)"));
  SniCerts certs;
  unsigned base = rte_mempool_in_use_count(pool());
  {
    Session k(sni_server(certs, false, tls13), pool(), nullptr);
    Peer p(false, tls13 ? TLS1_3_VERSION : TLS1_2_VERSION, nullptr);
    if (w.name != nullptr) SSL_set_tlsext_host_name(p.ssl, w.name);
    (void)pump(k, p);
    REQUIRE(k.established());
    REQUIRE(SSL_is_init_finished(p.ssl));
    CHECK(subject_of(p.ssl) == w.cn);
    CHECK(k.server_name() == (w.name != nullptr ? w.name : ""));
    // The chosen certificate's key signed the handshake: data flows.
    auto data = pattern(5000, 9);
    p.input(seal_all(k, data));
    std::vector<uint8_t> got;
    REQUIRE(p.read_all(got));
    CHECK(got == data);
  }
  CHECK(rte_mempool_in_use_count(pool()) == base);
}

TEST_CASE("SNI strict: a name no certificate matches is refused with unrecognized_name", "[tls][sni]") {
  auto tls13 = GENERATE(true, false);
  SniCerts certs;
  auto ctx = sni_server(certs, true, tls13);
  unsigned base = rte_mempool_in_use_count(pool());
  SECTION("unknown name: refused, counted") {
    engine::Counters counters;
    Session k(ctx, pool(), &counters);
    Peer p(false, tls13 ? TLS1_3_VERSION : TLS1_2_VERSION, nullptr);
    SSL_set_tlsext_host_name(p.ssl, "other.example");
    CHECK(pump(k, p) == Alert::unrecognized_name);
    CHECK(k.state() == Session::State::failed);
    CHECK_FALSE(SSL_is_init_finished(p.ssl));
    CHECK(ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_TLSV1_UNRECOGNIZED_NAME);  // what the client got
    CHECK(counters.get(engine::Counter::tls_handshake_failures) == 1);
  }
  SECTION("names that match, and no name, are served") {
    for (const char* name : {"www.b.example", "keel-default", static_cast<const char*>(nullptr)}) {
      INFO("server name " << (name ? name : "(none)"));
      Session k(ctx, pool(), nullptr);
      Peer p(false, tls13 ? TLS1_3_VERSION : TLS1_2_VERSION, nullptr);
      if (name != nullptr) SSL_set_tlsext_host_name(p.ssl, name);
      (void)pump(k, p);
      CHECK(k.established());
      CHECK(SSL_is_init_finished(p.ssl));
    }
  }
  ERR_clear_error();
  CHECK(rte_mempool_in_use_count(pool()) == base);
}

TEST_CASE("SNI: a resumed session keeps its name and certificate", "[tls][sni][resume]") {
  auto tls13 = GENERATE(true, false);
  SniCerts certs;
  auto ctx = sni_server(certs, false, tls13);
  int v = tls13 ? TLS1_3_VERSION : TLS1_2_VERSION;
  Session k1(ctx, pool(), nullptr);
  Peer p1(false, v, nullptr);
  SSL_set_tlsext_host_name(p1.ssl, "www.b.example");
  (void)pump(k1, p1);
  REQUIRE(k1.established());
  std::vector<uint8_t> sink;
  (void)p1.read_all(sink);  // TLS 1.3: takes the tickets
  SSL_SESSION* saved = SSL_get1_session(p1.ssl);
  REQUIRE(saved != nullptr);

  Session k2(ctx, pool(), nullptr);
  Peer p2(p1, false);
  SSL_set_tlsext_host_name(p2.ssl, "www.b.example");
  REQUIRE(SSL_set_session(p2.ssl, saved) == 1);
  (void)pump(k2, p2);
  REQUIRE(k2.established());
  CHECK(k2.resumed());
  CHECK(k2.server_name() == "www.b.example");
  CHECK(subject_of(p2.ssl) == "/CN=keel-b");
  SSL_SESSION_free(saved);
}

namespace {
// An OpenSSL server's servername callback: records the name it was asked for.
int record_name(SSL* ssl, int*, void* arg) {
  const char* n = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  *static_cast<std::string*>(arg) = n != nullptr ? n : "(none)";
  return SSL_TLSEXT_ERR_OK;
}
}  // namespace

TEST_CASE("keel client: the SNI it sends reaches the server", "[tls][sni]") {
  auto v = GENERATE(TLS1_3_VERSION, TLS1_2_VERSION);
  CertFiles cert("keel-server");
  auto ctx = client_context(cert);
  for (const char* name : {"keel-server.example", static_cast<const char*>(nullptr)}) {
    INFO("server name " << (name ? name : "(none)"));
    Peer p(true, v, nullptr, &cert);
    std::string seen;
    SSL_CTX_set_tlsext_servername_callback(p.ctx, record_name);
    SSL_CTX_set_tlsext_servername_arg(p.ctx, &seen);
    Session k(ctx, pool(), nullptr, name);
    (void)pump(k, p);
    REQUIRE(k.established());
    CHECK(seen == (name != nullptr ? name : "(none)"));
    CHECK(k.server_name() == (name != nullptr ? name : ""));
    CHECK(k.peer_subject() == "/CN=keel-server");
  }
}

TEST_CASE("SNI options: bad files named, client use refused", "[tls][sni][context]") {
  SniCerts certs;
  ContextOptions o;
  o.cert_file = certs.def.cert;
  o.key_file = certs.def.key;
  o.sni_certs = {{certs.a.cert, certs.a.key}, {"/nonexistent/b.pem", certs.b.key}};
  auto r = Context::create(o);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().find("--cert /nonexistent/b.pem") != std::string::npos);
  o.sni_certs = {{certs.a.cert, certs.b.key}};
  r = Context::create(o);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().find("--key " + certs.b.key + " does not match --cert " + certs.a.cert) != std::string::npos);
  o.sni_certs = {{certs.a.cert, ""}};
  r = Context::create(o);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().find("without --key") != std::string::npos);
  ContextOptions c;
  c.server = false;
  c.sni_strict = true;
  r = Context::create(c);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().find("SNI certificates are for a server") != std::string::npos);
  ERR_clear_error();
}
