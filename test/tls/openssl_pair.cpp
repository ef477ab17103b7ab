// SPDX-License-Identifier: BSD-3-Clause
#include "openssl_pair.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include <cstring>
#include <sstream>

namespace keel::tls::test {

std::vector<uint8_t> unhex(std::string_view s) {
  std::vector<uint8_t> out;
  int hi = -1;
  for (char ch : s) {
    int v;
    if (ch >= '0' && ch <= '9') v = ch - '0';
    else if (ch >= 'a' && ch <= 'f') v = ch - 'a' + 10;
    else if (ch >= 'A' && ch <= 'F') v = ch - 'A' + 10;
    else continue;  // spaces and line breaks as in the RFC's layout
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(uint8_t(hi << 4 | v));
      hi = -1;
    }
  }
  return out;
}

const char* openssl_suite(Version v, Cipher c) {
  if (v == Version::tls13) {
    switch (c) {
      case Cipher::aes_128_gcm: return "TLS_AES_128_GCM_SHA256";
      case Cipher::aes_256_gcm: return "TLS_AES_256_GCM_SHA384";
      case Cipher::chacha20_poly1305: return "TLS_CHACHA20_POLY1305_SHA256";
    }
  }
  switch (c) {
    case Cipher::aes_128_gcm: return "ECDHE-ECDSA-AES128-GCM-SHA256";
    case Cipher::aes_256_gcm: return "ECDHE-ECDSA-AES256-GCM-SHA384";
    case Cipher::chacha20_poly1305: return "ECDHE-ECDSA-CHACHA20-POLY1305";
  }
  return "";
}

namespace {

void keylog_cb(const SSL* ssl, const char* line) {
  auto* pair = static_cast<OpenSslPair*>(SSL_get_app_data(ssl));
  if (pair != nullptr) pair->keylog.emplace_back(line);
}

// A self-signed certificate, valid for a day; `san`: a subjectAltName value.
X509* make_cert(EVP_PKEY* key, const char* cn, const char* san = nullptr) {
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -60);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509_set_pubkey(x, key);
  if (san != nullptr) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(x, key, EVP_sha256());
  return x;
}

void use_throwaway_cert(SSL_CTX* ctx) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* x = make_cert(key, "keel-test");
  SSL_CTX_use_certificate(ctx, x);
  SSL_CTX_use_PrivateKey(ctx, key);
  X509_free(x);
  EVP_PKEY_free(key);
}

SSL* make_ssl(SSL_CTX* ctx, OpenSslPair* pair) {
  SSL* s = SSL_new(ctx);
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(rbio, -1);  // empty means "retry", not EOF
  SSL_set_bio(s, rbio, wbio);
  SSL_set_app_data(s, pair);
  return s;
}

}  // namespace

OpenSslPair::OpenSslPair(Version v, Cipher c) {
  server_ctx = SSL_CTX_new(TLS_server_method());
  client_ctx = SSL_CTX_new(TLS_client_method());
  int ver = v == Version::tls13 ? TLS1_3_VERSION : TLS1_2_VERSION;
  for (SSL_CTX* ctx : {server_ctx, client_ctx}) {
    SSL_CTX_set_min_proto_version(ctx, ver);
    SSL_CTX_set_max_proto_version(ctx, ver);
    if (v == Version::tls13)
      SSL_CTX_set_ciphersuites(ctx, openssl_suite(v, c));
    else
      SSL_CTX_set_cipher_list(ctx, openssl_suite(v, c));
  }
  SSL_CTX_set_keylog_callback(client_ctx, keylog_cb);
  SSL_CTX_set_num_tickets(server_ctx, 0);
  use_throwaway_cert(server_ctx);
  server = make_ssl(server_ctx, this);
  client = make_ssl(client_ctx, this);
  SSL_set_accept_state(server);
  SSL_set_connect_state(client);
}

OpenSslPair::~OpenSslPair() {
  SSL_free(server);
  SSL_free(client);
  SSL_CTX_free(server_ctx);
  SSL_CTX_free(client_ctx);
}

bool OpenSslPair::handshake() {
  bool c_done = false, s_done = false;
  for (int i = 0; i < 20 && !(c_done && s_done); ++i) {
    if (!c_done) {
      int r = SSL_do_handshake(client);
      if (r == 1) c_done = true;
      else if (SSL_get_error(client, r) != SSL_ERROR_WANT_READ) return false;
    }
    give_input(server, take_output(client));
    if (!s_done) {
      int r = SSL_do_handshake(server);
      if (r == 1) s_done = true;
      else if (SSL_get_error(server, r) != SSL_ERROR_WANT_READ) return false;
    }
    give_input(client, take_output(server));
  }
  return c_done && s_done;
}

std::vector<uint8_t> OpenSslPair::take_output(SSL* s) {
  std::vector<uint8_t> out;
  BIO* b = SSL_get_wbio(s);
  uint8_t buf[4096];
  for (int n; (n = BIO_read(b, buf, sizeof buf)) > 0;) out.insert(out.end(), buf, buf + n);
  return out;
}

void OpenSslPair::give_input(SSL* s, const std::vector<uint8_t>& bytes) {
  if (!bytes.empty()) BIO_write(SSL_get_rbio(s), bytes.data(), int(bytes.size()));
}

std::vector<uint8_t> OpenSslPair::keylog_secret(const std::string& label) const {
  for (const std::string& line : keylog) {
    std::istringstream in(line);
    std::string l, random, secret;
    in >> l >> random >> secret;
    if (l == label) return unhex(secret);
  }
  return {};
}

}  // namespace keel::tls::test

namespace keel::tls::test {

CertFiles::CertFiles(const char* cn, const char* san, bool rsa) {
  char tmpl[] = "/tmp/keel-tls-XXXXXX";
  dir = mkdtemp(tmpl);
  cert = dir + "/cert.pem";
  key = dir + "/key.pem";
  EVP_PKEY* k = rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
  X509* x = make_cert(k, cn, san);
  FILE* f = std::fopen(cert.c_str(), "w");
  PEM_write_X509(f, x);
  std::fclose(f);
  f = std::fopen(key.c_str(), "w");
  PEM_write_PrivateKey(f, k, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  X509_free(x);
  EVP_PKEY_free(k);
}

CertFiles::~CertFiles() { std::filesystem::remove_all(dir); }

}  // namespace keel::tls::test
