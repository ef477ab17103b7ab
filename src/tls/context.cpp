// SPDX-License-Identifier: BSD-3-Clause
#include "tls/context.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cstring>

#include "tls/session.hpp"

namespace keel::tls {

namespace {

// The suites keel's record layer runs; nothing else may be negotiated.
constexpr const char* suites_13 = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
constexpr const char* suites_12 =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

std::string openssl_error() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

int alpn_select(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned inlen, void* arg) {
  auto* wire = static_cast<std::vector<unsigned char>*>(arg);
  unsigned char* sel = nullptr;
  // RFC 7301 3.2: our preference order; no overlap means no ALPN (not an error here).
  if (SSL_select_next_proto(&sel, outlen, wire->data(), unsigned(wire->size()), in, inlen) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

// Loads a certificate chain and its key into `ctx`; the error names the file.
std::string load_cert_key(SSL_CTX* ctx, const std::string& cert, const std::string& key) {
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1) return "--cert " + cert + ": " + openssl_error();
  if (key.empty()) return "--cert " + cert + " given without --key";
  if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1)
    return "--key " + key + " (for --cert " + cert + "): " + openssl_error();
  if (SSL_CTX_check_private_key(ctx) != 1)
    return "--key " + key + " does not match --cert " + cert + ": " + openssl_error();
  return {};
}

bool names_match(SSL_CTX* ctx, const char* name) {
  X509* x = SSL_CTX_get0_certificate(ctx);
  return x != nullptr && X509_check_host(x, name, std::strlen(name), 0, nullptr) == 1;
}

// RFC 6066 3: runs on the ClientHello's server_name, before a certificate is chosen.
int servername_hook(SSL* ssl, int* alert, void* arg) {
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) return SSL_TLSEXT_ERR_NOACK;  // no SNI: the default certificate
  if (static_cast<const Context*>(arg)->select_certificate(ssl, name)) return SSL_TLSEXT_ERR_OK;
  *alert = SSL_AD_UNRECOGNIZED_NAME;
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

}  // namespace

bool Context::select_certificate(SSL* ssl, const char* name) const {
  for (SSL_CTX* sc : sni_ctx_) {
    if (!names_match(sc, name)) continue;
    STACK_OF(X509)* chain = nullptr;
    SSL_CTX_get0_chain_certs(sc, &chain);
    // Only this certificate: left beside the default (another key type),
    // OpenSSL could still pick the default.
    SSL_certs_clear(ssl);
    return SSL_use_cert_and_key(ssl, SSL_CTX_get0_certificate(sc), SSL_CTX_get0_privatekey(sc), chain, 1) == 1;
  }
  return !opt_.sni_strict || names_match(ctx_, name);
}

Result<std::shared_ptr<Context>, std::string> Context::create(const ContextOptions& o) {
  using Err = Unexpected<std::string>;
  std::shared_ptr<Context> c(new Context());
  c->opt_ = o;
  c->ctx_ = SSL_CTX_new(o.server ? TLS_server_method() : TLS_client_method());
  if (c->ctx_ == nullptr) return Err{"SSL_CTX_new: " + openssl_error()};
  SSL_CTX* ctx = c->ctx_;
  if (!o.tls12 && !o.tls13) return Err{"no TLS version enabled"};
  SSL_CTX_set_min_proto_version(ctx, o.tls12 ? TLS1_2_VERSION : TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(ctx, o.tls13 ? TLS1_3_VERSION : TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  if (SSL_CTX_set_ciphersuites(ctx, suites_13) != 1 || SSL_CTX_set_cipher_list(ctx, suites_12) != 1)
    return Err{"cipher suites: " + openssl_error()};
  SSL_CTX_set_keylog_callback(ctx, detail::keylog_hook);

  if (!o.cert_file.empty()) {
    if (std::string e = load_cert_key(ctx, o.cert_file, o.key_file); !e.empty()) return Err{e};
  } else if (o.server) {
    return Err{"--cert is required for a TLS server"};
  }
  bool sni = !o.sni_certs.empty() || o.sni_strict;
  if (sni && !o.server) return Err{"SNI certificates are for a server"};
  for (const CertKeyFiles& f : o.sni_certs) {
    SSL_CTX* sc = SSL_CTX_new(TLS_server_method());
    if (sc == nullptr) return Err{"SSL_CTX_new: " + openssl_error()};
    c->sni_ctx_.push_back(sc);
    if (std::string e = load_cert_key(sc, f.cert_file, f.key_file); !e.empty()) return Err{e};
  }
  if (sni) {
    SSL_CTX_set_tlsext_servername_callback(ctx, servername_hook);
    SSL_CTX_set_tlsext_servername_arg(ctx, c.get());
  }

  if (!o.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, o.ca_file.c_str(), nullptr) != 1)
      return Err{"CA file " + o.ca_file + ": " + openssl_error()};
    int mode = SSL_VERIFY_PEER;
    if (o.server) {
      mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
      SSL_CTX_set_client_CA_list(ctx, SSL_load_client_CA_file(o.ca_file.c_str()));
    }
    SSL_CTX_set_verify(ctx, mode, nullptr);
  }

  if (!o.alpn.empty()) {
    for (const std::string& p : o.alpn) {
      if (p.empty() || p.size() > 255) return Err{"bad ALPN protocol name '" + p + "'"};
      c->alpn_wire_.push_back(uint8_t(p.size()));
      c->alpn_wire_.insert(c->alpn_wire_.end(), p.begin(), p.end());
    }
    if (o.server)
      SSL_CTX_set_alpn_select_cb(ctx, alpn_select, &c->alpn_wire_);
    else if (SSL_CTX_set_alpn_protos(ctx, c->alpn_wire_.data(), unsigned(c->alpn_wire_.size())) != 0)
      return Err{"ALPN: " + openssl_error()};
  }

  if (o.server) {
    // Resumption: tickets (both versions); a session id context so that
    // resumption also works with client certificates.
    static const unsigned char sid_ctx[] = "keel";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
    SSL_CTX_set_num_tickets(ctx, o.tickets ? 2 : 0);
    if (!o.tickets) SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  } else {
    // The client keeps no cache: the hook only says a session arrived; the
    // application takes it out with Session::session_ticket().
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, detail::new_session_hook);
  }
  return c;
}

Context::~Context() {
  for (SSL_CTX* sc : sni_ctx_) SSL_CTX_free(sc);
  SSL_CTX_free(ctx_);
}

}  // namespace keel::tls
