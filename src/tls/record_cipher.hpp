// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// One direction of the TLS record protection: an AEAD key, its static IV and
/// the direction's sequence number (RFC 8446 5.2-5.3, RFC 5246 6.2.3.3,
/// RFC 5288, RFC 7905), running OpenSSL's EVP AEADs.
///
/// Memory. Both calls work on scatter lists (keel::Segment spans, e.g. the
/// segments of an mbuf chain) and never allocate:
///  - seal() reads the plaintext segments once and writes header, ciphertext
///    and tag straight into the destination segments (out of place, one EVP
///    pass): the plaintext is read once and the record written once.
///  - open() decrypts in place in the segments that hold the received record
///    and verifies the tag; the plaintext is then where the ciphertext was.
/// The caller owns every segment; a RecordCipher holds only its key state.
/// Single-threaded: one per direction per connection, on its lcore.

#include <cstddef>
#include <cstdint>
#include <span>

#include <keel/buffer.hpp>
#include <keel/result.hpp>

#include "tls/record.hpp"

struct evp_cipher_ctx_st;
struct evp_cipher_st;

namespace keel::tls {

/// What open() found: the content type and where the content is, as an
/// offset from the start of the record (header included) and a length.
struct OpenedRecord {
  ContentType type = ContentType::invalid;
  size_t offset = 0;
  size_t length = 0;
};

class RecordCipher {
 public:
  RecordCipher() = default;
  RecordCipher(RecordCipher&& o) noexcept;
  RecordCipher& operator=(RecordCipher&& o) noexcept;
  RecordCipher(const RecordCipher&) = delete;
  RecordCipher& operator=(const RecordCipher&) = delete;
  ~RecordCipher();

  /// Sets the key (16 or 32 bytes, by cipher) and IV (12 bytes; TLS 1.2
  /// AES-GCM: the 4-byte salt) for sealing (`encrypt`) or opening, and the
  /// next record's sequence number. internal_error on a wrong length or an
  /// OpenSSL failure. May be called again to re-key (KeyUpdate).
  Result<void, Alert> init(Version v, Cipher c, bool encrypt, std::span<const uint8_t> key,
                           std::span<const uint8_t> iv, uint64_t seq = 0);
  bool ready() const { return ctx_ != nullptr; }
  Version version() const { return version_; }
  Cipher cipher() const { return cipher_; }
  /// Sequence number of the next record.
  uint64_t seq() const { return seq_; }
  /// Bytes a record adds to its content (header, nonce, tag, inner type).
  size_t overhead() const { return record_overhead(version_, cipher_); }

  /// Seals one record of `type` from `plaintext` (at most max_plaintext
  /// bytes in all) into `dst`, which must hold at least
  /// overhead() + plaintext + padding bytes; `padding` zero bytes are added
  /// in TLS 1.3 (ignored in 1.2). Returns the record's length. Errors:
  /// record_overflow (too much content), internal_error (dst too small, EVP
  /// failure, sequence numbers exhausted); the sequence number advances only
  /// on success.
  Result<size_t, Alert> seal(ContentType type, std::span<const Segment> plaintext,
                             std::span<const Segment> dst, size_t padding = 0);

  /// Opens the one record that `record` holds (header included; its bytes
  /// must total exactly header_len + the header's length) in place. Errors:
  /// those of parse_header, bad_record_mac (tag mismatch), record_overflow
  /// (content over 2^14), unexpected_message (TLS 1.3 inner plaintext all
  /// zeros), decode_error (segments not exactly one record). After an error
  /// the record's bytes are garbage and the connection must end.
  Result<OpenedRecord, Alert> open(std::span<const Segment> record);

 private:
  void nonce_for(uint64_t seq, uint8_t (&out)[12]) const;
  void reset();

  evp_cipher_ctx_st* ctx_ = nullptr;
  Version version_ = Version::tls13;
  Cipher cipher_ = Cipher::aes_128_gcm;
  uint8_t iv_[12] = {};
  uint64_t seq_ = 0;
};

}  // namespace keel::tls
