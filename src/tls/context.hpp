// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// keel::tls::Context: one OpenSSL SSL_CTX configured for keel's record
/// layer. Only suites keel's record layer runs are offered (TLS 1.3:
/// AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305; TLS 1.2: ECDHE with the same
/// AEADs), renegotiation is off, and a keylog hook hands each session its
/// TLS 1.3 traffic secrets. Shared read-only by every session of an instance
/// (one per lcore: OpenSSL contexts are reference counted, not lock-free).

#include <memory>
#include <string>
#include <vector>

#include <keel/result.hpp>

struct ssl_ctx_st;
struct ssl_st;

namespace keel::tls {

/// One certificate chain and its key, as PEM files.
struct CertKeyFiles {
  std::string cert_file, key_file;
};

struct ContextOptions {
  bool server = true;
  std::string cert_file;   ///< PEM certificate chain (server; client with a client cert)
  std::string key_file;    ///< PEM private key for cert_file
  /// Server: more certificates, chosen by the client's SNI: the first whose
  /// names match it (X509_check_host: subjectAltName DNS names, else the CN;
  /// a wildcard covers one left-most label). cert_file serves clients that
  /// send no name, and names that match none of these.
  std::vector<CertKeyFiles> sni_certs;
  /// Server: a name that no certificate (cert_file's included) matches is
  /// refused with the unrecognized_name alert instead.
  bool sni_strict = false;
  /// Server: require a client certificate signed by this PEM CA file. Client:
  /// verify the server against it (empty: no verification, like curl -k).
  std::string ca_file;
  std::vector<std::string> alpn;  ///< protocols in preference order ("http/1.1")
  bool tls12 = true, tls13 = true;
  bool tickets = true;     ///< server: session tickets for resumption
};

class Context {
 public:
  /// Builds the context; the error names the file or option that failed and why.
  static Result<std::shared_ptr<Context>, std::string> create(const ContextOptions& o);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  ssl_ctx_st* ssl_ctx() const { return ctx_; }
  bool server() const { return opt_.server; }
  const ContextOptions& options() const { return opt_; }

  /// The servername callback's work: puts the certificate matching `name`
  /// on `ssl`. False: none matches and sni_strict refuses it.
  bool select_certificate(ssl_st* ssl, const char* name) const;

 private:
  Context() = default;
  ssl_ctx_st* ctx_ = nullptr;
  // One SSL_CTX per sni_certs entry, holding its loaded chain and key (the
  // callback moves them onto the SSL; they serve nothing by themselves).
  std::vector<ssl_ctx_st*> sni_ctx_;
  ContextOptions opt_;
  std::vector<unsigned char> alpn_wire_;  // ALPN protocol list in wire form
};

}  // namespace keel::tls
