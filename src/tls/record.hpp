// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// TLS record protocol vocabulary (RFC 8446 5, RFC 5246 6.2) and the record
/// header parser: a pure function over 5 bytes, no state, no allocation (the
/// fuzz target drives it directly).
///
///   header (5 bytes): | type | version (0x0303) | length (be16) |
///   TLS 1.3 body:     | AEAD( content | type | zero padding ) | tag (16) |
///   TLS 1.2 GCM body: | explicit nonce (8) | AEAD( content ) | tag (16) |
///   TLS 1.2 ChaCha:   | AEAD( content ) | tag (16) |        (RFC 7905)

#include <cstddef>
#include <cstdint>

#include <keel/result.hpp>

namespace keel::tls {

enum class Version : uint16_t { tls12 = 0x0303, tls13 = 0x0304 };

/// The AEADs the record layer runs (each through OpenSSL EVP).
enum class Cipher : uint8_t { aes_128_gcm, aes_256_gcm, chacha20_poly1305 };

/// Record content types (RFC 8446 B.1). Any byte may appear on the wire;
/// the parser refuses the ones not listed.
enum class ContentType : uint8_t {
  invalid = 0,
  change_cipher_spec = 20,
  alert = 21,
  handshake = 22,
  application_data = 23,
};

/// Alert descriptions (RFC 8446 6). Errors of the record layer are the alert
/// it must send before closing the connection.
enum class Alert : uint8_t {
  close_notify = 0,
  unexpected_message = 10,
  bad_record_mac = 20,
  record_overflow = 22,
  handshake_failure = 40,
  decode_error = 50,
  protocol_version = 70,
  internal_error = 80,
  unrecognized_name = 112,
  certificate_required = 116,
  // (others as received: the value is the RFC 8446 6 AlertDescription)
};

/// TLS 1.3 and 1.2 both say 2^14 bytes of content per record.
inline constexpr size_t max_plaintext = 1 << 14;
/// RFC 8446 5.2: TLSCiphertext.length MUST NOT exceed 2^14 + 256.
inline constexpr size_t max_ciphertext_13 = max_plaintext + 256;
/// RFC 5246 6.2.3: TLSCiphertext.length MUST NOT exceed 2^14 + 2048.
inline constexpr size_t max_ciphertext_12 = max_plaintext + 2048;
/// The largest post-handshake message keel gathers (header included): a TLS
/// 1.3 NewSessionTicket at its RFC 8446 4.6.1 maximum (nonce 255, ticket and
/// extensions 2^16 - 1 each) fits; KeyUpdate is 5 bytes.
inline constexpr size_t max_post_handshake_message = 4 + 4 + 4 + 1 + 255 + 2 + 65535 + 2 + 65535;
inline constexpr size_t header_len = 5;
inline constexpr size_t tag_len = 16;
/// TLS 1.2 AES-GCM carries the nonce's low 8 bytes in the record (RFC 5288 3).
inline constexpr size_t explicit_nonce_len = 8;
inline constexpr uint16_t legacy_record_version = 0x0303;

namespace record_field {
inline constexpr size_t type = 0;
inline constexpr size_t version = 1;
inline constexpr size_t length = 3;
}  // namespace record_field

/// A validated record header.
struct RecordHeader {
  ContentType type = ContentType::invalid;
  uint16_t length = 0;  ///< bytes after the header
};

/// Parses and checks a protected record's header: a known content type,
/// version 0x0303, a length within the version's ciphertext limit
/// (record_overflow beyond it) and at least what the AEAD needs
/// (bad_record_mac below it: such a record can never authenticate).
/// TLS 1.3 protected records are application_data outside; an alert or
/// handshake type there is unexpected_message (RFC 8446 5: change_cipher_spec
/// is the only plaintext type allowed once keys are in use, and keel's record
/// layer starts after the handshake, when none is).
Result<RecordHeader, Alert> parse_header(const uint8_t (&h)[header_len], Version v, Cipher c);

/// Bytes of a record besides its content: header, explicit nonce, tag and,
/// in TLS 1.3, the inner content type (no padding).
constexpr size_t record_overhead(Version v, Cipher c) {
  size_t n = header_len + tag_len;
  if (v == Version::tls13) return n + 1;
  return c == Cipher::chacha20_poly1305 ? n : n + explicit_nonce_len;
}

}  // namespace keel::tls
