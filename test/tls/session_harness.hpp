// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// Test harness for keel::tls::Session against OpenSSL over memory: a test
/// mbuf pool, wire bytes to and from mbuf chains, an OpenSSL peer (Peer),
/// pump() to move bytes both ways, and contexts for keel's side.

#include <catch2/catch.hpp>

#include <openssl/ssl.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "openssl_pair.hpp"
#include "tls/session.hpp"

namespace keel::tls::test {

inline rte_mempool* pool() {
  static rte_mempool* p = rte_pktmbuf_pool_create("tls_session_test", 8191, 0, 0,
                                                  RTE_MBUF_DEFAULT_BUF_SIZE, int(rte_socket_id()));
  REQUIRE(p != nullptr);
  return p;
}

// Wire bytes as TCP would deliver them: a chain of segments of at most 1448 bytes.
inline rte_mbuf* to_mbufs(const std::vector<uint8_t>& v) {
  rte_mbuf* head = nullptr;
  rte_mbuf* tail = nullptr;
  for (size_t off = 0; off < v.size();) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool());
    REQUIRE(m != nullptr);
    uint16_t n = uint16_t(std::min<size_t>(1448, v.size() - off));
    std::memcpy(rte_pktmbuf_append(m, n), v.data() + off, n);
    off += n;
    if (head == nullptr) {
      head = m;
    } else {
      tail->next = m;
      head->pkt_len += n;
      ++head->nb_segs;
    }
    tail = m;
  }
  return head;
}

inline std::vector<uint8_t> from_mbufs(rte_mbuf* m) {
  std::vector<uint8_t> v;
  for (rte_mbuf* s = m; s != nullptr; s = s->next) {
    auto* p = rte_pktmbuf_mtod(s, uint8_t*);
    v.insert(v.end(), p, p + s->data_len);
  }
  if (m != nullptr) rte_pktmbuf_free(m);
  return v;
}

inline std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = uint8_t(seed + i * 13 + (i >> 9));
  return v;
}

// An OpenSSL peer over memory BIOs.
struct Peer {
  Peer(bool server, int version, const char* suite, const CertFiles* cert = nullptr) {
    ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, version);
    SSL_CTX_set_max_proto_version(ctx, version);
    if (suite != nullptr) {
      if (version == TLS1_3_VERSION) SSL_CTX_set_ciphersuites(ctx, suite);
      else SSL_CTX_set_cipher_list(ctx, suite);
    }
    if (cert != nullptr) {
      REQUIRE(SSL_CTX_use_certificate_file(ctx, cert->cert.c_str(), SSL_FILETYPE_PEM) == 1);
      REQUIRE(SSL_CTX_use_PrivateKey_file(ctx, cert->key.c_str(), SSL_FILETYPE_PEM) == 1);
    }
    make_ssl(server);
  }
  // Another connection of `other`'s context (a server's second connection: same ticket key).
  explicit Peer(const Peer& other, bool server) : ctx(other.ctx) {
    SSL_CTX_up_ref(ctx);
    make_ssl(server);
  }
  void make_ssl(bool server) {
    ssl = SSL_new(ctx);
    BIO* r = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(r, -1);
    SSL_set_bio(ssl, r, BIO_new(BIO_s_mem()));
    if (server) SSL_set_accept_state(ssl);
    else SSL_set_connect_state(ssl);
  }
  ~Peer() {
    SSL_free(ssl);
    SSL_CTX_free(ctx);
  }
  std::vector<uint8_t> output() {
    std::vector<uint8_t> out;
    uint8_t buf[16384];
    for (int n; (n = BIO_read(SSL_get_wbio(ssl), buf, sizeof buf)) > 0;) out.insert(out.end(), buf, buf + n);
    return out;
  }
  void input(const std::vector<uint8_t>& v) {
    if (!v.empty()) BIO_write(SSL_get_rbio(ssl), v.data(), int(v.size()));
  }
  // Reads what is there; stops at would-block, returns false on an error or close.
  bool read_all(std::vector<uint8_t>& out) {
    uint8_t buf[16384];
    for (;;) {
      int n = SSL_read(ssl, buf, sizeof buf);
      if (n > 0) {
        out.insert(out.end(), buf, buf + n);
        continue;
      }
      return SSL_get_error(ssl, n) == SSL_ERROR_WANT_READ;
    }
  }
  SSL_CTX* ctx;
  SSL* ssl;
};

// A client context that verifies the server against `cert`.
inline std::shared_ptr<Context> client_context(const CertFiles& cert) {
  ContextOptions o;
  o.server = false;
  o.ca_file = cert.cert;
  auto ctx = Context::create(o);
  REQUIRE(ctx.has_value());
  return *ctx;
}

// Moves bytes both ways until neither side has anything to say; returns the
// last error keel's session reported (ok if none).
inline Alert pump(Session& k, Peer& p, int rounds = 10) {
  Alert last = Alert::close_notify;
  for (int i = 0; i < rounds; ++i) {
    if (!SSL_is_init_finished(p.ssl)) (void)SSL_do_handshake(p.ssl);
    auto wire = p.output();
    bool moved = !wire.empty();
    if (moved) k.input(to_mbufs(wire));
    if (auto r = k.process(); !r && last == Alert::close_notify) last = r.error();  // the first error
    auto back = from_mbufs(k.take_output());
    moved = moved || !back.empty();
    p.input(back);
    if (!moved && (k.established() || k.state() == Session::State::failed) && SSL_is_init_finished(p.ssl)) break;
  }
  return last;
}

inline std::shared_ptr<Context> server_context(const CertFiles& c, bool tls12 = true, bool tls13 = true,
                                        std::string ca = {}) {
  ContextOptions o;
  o.cert_file = c.cert;
  o.key_file = c.key;
  o.tls12 = tls12;
  o.tls13 = tls13;
  o.ca_file = std::move(ca);
  o.alpn = {"http/1.1"};
  auto ctx = Context::create(o);
  REQUIRE(ctx.has_value());
  return *ctx;
}

inline std::vector<uint8_t> seal_all(Session& k, const std::vector<uint8_t>& data, size_t mss = 1448) {
  std::vector<uint8_t> wire;
  size_t per = k.content_per_record(mss);
  for (size_t off = 0; off < data.size(); off += per) {
    Segment s{const_cast<uint8_t*>(data.data() + off), std::min(per, data.size() - off)};
    auto m = k.seal({&s, 1});
    REQUIRE(m.has_value());
    REQUIRE((*m)->pkt_len <= mss);
    auto rec = from_mbufs(*m);
    wire.insert(wire.end(), rec.begin(), rec.end());
  }
  return wire;
}
}  // namespace keel::tls::test
