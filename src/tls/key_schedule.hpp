// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// The parts of the TLS key schedules the record layer needs, through
/// OpenSSL's EVP_KDF ("HKDF", "TLS1-PRF"): from a TLS 1.3 traffic secret
/// (RFC 8446 7.3) or a TLS 1.2 master secret (RFC 5246 6.3) to record keys,
/// and KeyUpdate's next secret (RFC 8446 7.2).

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include <keel/result.hpp>

#include "tls/record.hpp"

namespace keel::tls {

/// A record key and IV (TLS 1.2 AES-GCM: the 4-byte salt).
struct TrafficKeys {
  uint8_t key[32] = {};
  size_t key_len = 0;
  uint8_t iv[12] = {};
  size_t iv_len = 0;
  std::span<const uint8_t> key_span() const { return {key, key_len}; }
  std::span<const uint8_t> iv_span() const { return {iv, iv_len}; }
};

/// A TLS 1.3 traffic secret (its length is the suite hash's).
struct Secret {
  uint8_t v[48] = {};
  size_t len = 0;
  std::span<const uint8_t> span() const { return {v, len}; }
};

/// The suite's hash: SHA-384 for AES-256-GCM, SHA-256 otherwise (the TLS 1.3
/// suites and the ECDHE 1.2 suites keel runs).
size_t hash_len(Cipher c);

/// RFC 8446 7.1 HKDF-Expand-Label(secret, label, context, out.size()); the
/// "tls13 " prefix is added here. false if OpenSSL fails.
bool hkdf_expand_label(Cipher c, std::span<const uint8_t> secret, std::string_view label,
                       std::span<const uint8_t> context, std::span<uint8_t> out);

/// RFC 8446 7.3: [sender]_write_key and _iv from a traffic secret.
Result<TrafficKeys, Alert> tls13_traffic_keys(Cipher c, std::span<const uint8_t> secret);

/// RFC 8446 7.2: application_traffic_secret_N+1 ("traffic upd").
Result<Secret, Alert> tls13_next_secret(Cipher c, std::span<const uint8_t> secret);

/// RFC 5246 6.3 key block for an AEAD suite (no MAC keys): client and server
/// write keys and IVs (RFC 5288: 4-byte salt; RFC 7905: 12-byte IV).
struct Tls12KeyBlock {
  TrafficKeys client, server;
};
Result<Tls12KeyBlock, Alert> tls12_key_block(Cipher c, std::span<const uint8_t> master_secret,
                                             std::span<const uint8_t> client_random,
                                             std::span<const uint8_t> server_random);

}  // namespace keel::tls
