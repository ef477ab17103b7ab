// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// Test helper: an OpenSSL client and server over memory BIOs in one process
/// (no socket), with a throwaway P-256 certificate and a keylog capture, so
/// the tests can check keel's record layer against records OpenSSL produces
/// and consumes.

#include <openssl/ssl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "tls/record.hpp"

namespace keel::tls::test {

std::vector<uint8_t> unhex(std::string_view s);

/// The OpenSSL suite name for (version, cipher): TLS 1.3 ciphersuite names,
/// TLS 1.2 ECDHE-ECDSA cipher names.
const char* openssl_suite(Version v, Cipher c);

struct OpenSslPair {
  /// A connected pair negotiating exactly (v, c); the server sends no
  /// session tickets (so no application-key record precedes the test's own).
  OpenSslPair(Version v, Cipher c);
  ~OpenSslPair();
  OpenSslPair(const OpenSslPair&) = delete;
  OpenSslPair& operator=(const OpenSslPair&) = delete;

  /// Runs both handshakes to completion over the memory BIOs; false on failure.
  bool handshake();
  /// Bytes `s` wrote to the wire so far (drained from its write BIO).
  std::vector<uint8_t> take_output(SSL* s);
  /// Delivers wire bytes to `s`.
  void give_input(SSL* s, const std::vector<uint8_t>& bytes);

  /// Keylog lines captured for this pair ("LABEL client_random secret").
  std::vector<uint8_t> keylog_secret(const std::string& label) const;

  SSL_CTX* server_ctx = nullptr;
  SSL_CTX* client_ctx = nullptr;
  SSL* server = nullptr;
  SSL* client = nullptr;
  std::vector<std::string> keylog;
};

}  // namespace keel::tls::test

namespace keel::tls::test {

/// A throwaway self-signed P-256 (or RSA-2048) certificate and key written
/// as PEM files into a fresh temporary directory (removed by the destructor).
/// `san`: a subjectAltName value ("DNS:*.example,DNS:example"); none: the CN
/// is the only name.
struct CertFiles {
  explicit CertFiles(const char* cn, const char* san = nullptr, bool rsa = false);
  ~CertFiles();
  std::string dir, cert, key;
};

}  // namespace keel::tls::test
