// SPDX-License-Identifier: BSD-3-Clause
#include "tls/record_cipher.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cstring>

#include "net/byte_order.hpp"
#include "tls/seg_cursor.hpp"

namespace keel::tls {

namespace {

const char* evp_name(Cipher c) {
  switch (c) {
    case Cipher::aes_128_gcm: return "AES-128-GCM";
    case Cipher::aes_256_gcm: return "AES-256-GCM";
    case Cipher::chacha20_poly1305: return "ChaCha20-Poly1305";
  }
  return "";
}

size_t key_len(Cipher c) { return c == Cipher::aes_128_gcm ? 16 : 32; }

bool explicit_nonce(Version v, Cipher c) {
  return v == Version::tls12 && c != Cipher::chacha20_poly1305;
}

void store_be64(uint8_t* p, uint64_t v) {
  net::store_be32(p, uint32_t(v >> 32));
  net::store_be32(p + 4, uint32_t(v));
}

// Runs the cipher over `n` bytes from `src` (a cursor) into `dst` (another
// cursor, or the same segments for in place), run by run, so neither list
// need be contiguous. EVP's GCM and ChaCha20-Poly1305 are stream modes: each
// update writes exactly what it reads.
bool crypt_runs(EVP_CIPHER_CTX* ctx, SegCursor& src, SegCursor* dst, size_t n) {
  while (n > 0) {
    Segment in = src.take_run(n);
    if (in.size == 0) return false;
    size_t done = 0;
    while (done < in.size) {
      Segment out = dst != nullptr ? dst->take_run(in.size - done) : Segment{in.data + done, in.size - done};
      if (out.size == 0) return false;
      int outl = 0;
      if (EVP_CipherUpdate(ctx, out.data, &outl, in.data + done, int(out.size)) != 1 ||
          size_t(outl) != out.size)
        return false;
      done += out.size;
    }
    n -= in.size;
  }
  return true;
}

}  // namespace

Result<RecordHeader, Alert> parse_header(const uint8_t (&h)[header_len], Version v, Cipher c) {
  RecordHeader r;
  r.type = ContentType(h[record_field::type]);
  r.length = net::load_be16(h + record_field::length);
  switch (r.type) {
    case ContentType::change_cipher_spec:
    case ContentType::alert:
    case ContentType::handshake:
    case ContentType::application_data: break;
    default: return Unexpected{Alert::unexpected_message};
  }
  // RFC 8446 5.2: protected TLS 1.3 records all say application_data outside.
  if (v == Version::tls13 && r.type != ContentType::application_data)
    return Unexpected{Alert::unexpected_message};
  // 1.2 after the handshake: change_cipher_spec would be a renegotiation, unsupported.
  if (r.type == ContentType::change_cipher_spec) return Unexpected{Alert::unexpected_message};
  if (net::load_be16(h + record_field::version) != legacy_record_version)
    return Unexpected{Alert::protocol_version};
  size_t limit = v == Version::tls13 ? max_ciphertext_13 : max_ciphertext_12;
  if (r.length > limit) return Unexpected{Alert::record_overflow};
  if (r.length < record_overhead(v, c) - header_len - (v == Version::tls13 ? 1 : 0))
    return Unexpected{Alert::bad_record_mac};
  return r;
}

RecordCipher::RecordCipher(RecordCipher&& o) noexcept { *this = std::move(o); }

RecordCipher& RecordCipher::operator=(RecordCipher&& o) noexcept {
  if (this != &o) {
    reset();
    ctx_ = o.ctx_;
    version_ = o.version_;
    cipher_ = o.cipher_;
    std::memcpy(iv_, o.iv_, sizeof iv_);
    seq_ = o.seq_;
    o.ctx_ = nullptr;
    OPENSSL_cleanse(o.iv_, sizeof o.iv_);
  }
  return *this;
}

RecordCipher::~RecordCipher() { reset(); }

void RecordCipher::reset() {
  EVP_CIPHER_CTX_free(ctx_);  // cleanses the key schedule
  ctx_ = nullptr;
  OPENSSL_cleanse(iv_, sizeof iv_);
}

Result<void, Alert> RecordCipher::init(Version v, Cipher c, bool encrypt, std::span<const uint8_t> key,
                                       std::span<const uint8_t> iv, uint64_t seq) {
  reset();
  size_t want_iv = explicit_nonce(v, c) ? 4 : 12;
  if (key.size() != key_len(c) || iv.size() != want_iv) return Unexpected{Alert::internal_error};
  EVP_CIPHER* evp = EVP_CIPHER_fetch(nullptr, evp_name(c), nullptr);
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  bool ok = evp != nullptr && ctx != nullptr &&
            EVP_CipherInit_ex(ctx, evp, nullptr, key.data(), nullptr, encrypt ? 1 : 0) == 1;
  EVP_CIPHER_free(evp);  // the context keeps its own reference
  if (!ok) {
    EVP_CIPHER_CTX_free(ctx);
    return Unexpected{Alert::internal_error};
  }
  ctx_ = ctx;
  version_ = v;
  cipher_ = c;
  std::memcpy(iv_, iv.data(), iv.size());
  seq_ = seq;
  return {};
}

// RFC 8446 5.3 and RFC 7905 2: the 64-bit sequence number, left-padded to
// the IV's length, XORed with the IV. RFC 5288 3: salt || explicit nonce, and
// like OpenSSL keel uses the sequence number as the explicit part.
void RecordCipher::nonce_for(uint64_t seq, uint8_t (&out)[12]) const {
  if (explicit_nonce(version_, cipher_)) {
    std::memcpy(out, iv_, 4);
    store_be64(out + 4, seq);
    return;
  }
  std::memcpy(out, iv_, 12);
  for (int i = 0; i < 8; ++i) out[11 - i] ^= uint8_t(seq >> (8 * i));
}

Result<size_t, Alert> RecordCipher::seal(ContentType type, std::span<const Segment> plaintext,
                                         std::span<const Segment> dst, size_t padding) {
  if (ctx_ == nullptr || seq_ == UINT64_MAX) return Unexpected{Alert::internal_error};
  const bool v13 = version_ == Version::tls13;
  if (!v13) padding = 0;
  const size_t content = SegCursor::total(plaintext);
  const size_t inner = content + (v13 ? 1 + padding : 0);
  if (content > max_plaintext || inner > max_plaintext + 1) return Unexpected{Alert::record_overflow};
  const size_t record = overhead() + content + padding;
  if (SegCursor::total(dst) < record) return Unexpected{Alert::internal_error};

  uint8_t head[header_len + explicit_nonce_len];
  size_t head_len = header_len;
  head[record_field::type] = uint8_t(v13 ? ContentType::application_data : type);
  net::store_be16(head + record_field::version, legacy_record_version);
  net::store_be16(head + record_field::length, uint16_t(record - header_len));
  uint8_t nonce[12];
  nonce_for(seq_, nonce);
  if (explicit_nonce(version_, cipher_)) {
    std::memcpy(head + header_len, nonce + 4, explicit_nonce_len);
    head_len += explicit_nonce_len;
  }
  // Additional data: RFC 8446 5.2 the record header; RFC 5246 6.2.3.3
  // seq_num + type + version + length of the content.
  uint8_t aad[13];
  size_t aad_len = header_len;
  if (v13) {
    std::memcpy(aad, head, header_len);
  } else {
    store_be64(aad, seq_);
    aad[8] = uint8_t(type);
    net::store_be16(aad + 9, legacy_record_version);
    net::store_be16(aad + 11, uint16_t(content));
    aad_len = 13;
  }
  int outl = 0;
  if (EVP_CipherInit_ex(ctx_, nullptr, nullptr, nullptr, nonce, 1) != 1 ||
      EVP_CipherUpdate(ctx_, nullptr, &outl, aad, int(aad_len)) != 1)
    return Unexpected{Alert::internal_error};

  SegCursor out(dst);
  SegCursor in(plaintext);
  if (!out.write(head, head_len) || !crypt_runs(ctx_, in, &out, content))
    return Unexpected{Alert::internal_error};
  if (v13) {
    // RFC 8446 5.2: TLSInnerPlaintext = content || type || zeros.
    static constexpr uint8_t zeros[256] = {};
    uint8_t t = uint8_t(type);
    Segment ts{&t, 1};
    SegCursor tc({&ts, 1});
    if (!crypt_runs(ctx_, tc, &out, 1)) return Unexpected{Alert::internal_error};
    for (size_t left = padding; left > 0;) {
      size_t n = std::min(left, sizeof zeros);
      Segment zs{const_cast<uint8_t*>(zeros), n};
      SegCursor zc({&zs, 1});
      if (!crypt_runs(ctx_, zc, &out, n)) return Unexpected{Alert::internal_error};
      left -= n;
    }
  }
  uint8_t tag[tag_len];
  if (EVP_CipherFinal_ex(ctx_, nullptr, &outl) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_AEAD_GET_TAG, int(tag_len), tag) != 1 ||
      !out.write(tag, tag_len))
    return Unexpected{Alert::internal_error};
  ++seq_;
  return record;
}

Result<OpenedRecord, Alert> RecordCipher::open(std::span<const Segment> record) {
  if (ctx_ == nullptr) return Unexpected{Alert::internal_error};
  // RFC 8446 5.3: a sequence number must not wrap; the peer must re-key first.
  if (seq_ == UINT64_MAX) return Unexpected{Alert::unexpected_message};
  const bool v13 = version_ == Version::tls13;
  SegCursor cur(record);
  uint8_t head[header_len];
  if (!cur.read(head, header_len)) return Unexpected{Alert::decode_error};
  auto h = parse_header(head, version_, cipher_);
  if (!h) return Unexpected{h.error()};
  if (SegCursor::total(record) != header_len + h->length) return Unexpected{Alert::decode_error};

  uint8_t nonce[12];
  nonce_for(seq_, nonce);
  size_t body_off = header_len;
  if (explicit_nonce(version_, cipher_)) {
    if (!cur.read(nonce + 4, explicit_nonce_len)) return Unexpected{Alert::decode_error};
    body_off += explicit_nonce_len;
  }
  const size_t ct_len = header_len + h->length - body_off - tag_len;
  if (!v13 && ct_len > max_plaintext) return Unexpected{Alert::record_overflow};
  uint8_t aad[13];
  size_t aad_len = header_len;
  if (v13) {
    std::memcpy(aad, head, header_len);
  } else {
    store_be64(aad, seq_);
    aad[8] = uint8_t(h->type);
    net::store_be16(aad + 9, legacy_record_version);
    net::store_be16(aad + 11, uint16_t(ct_len));
    aad_len = 13;
  }
  int outl = 0;
  if (EVP_CipherInit_ex(ctx_, nullptr, nullptr, nullptr, nonce, 0) != 1 ||
      EVP_CipherUpdate(ctx_, nullptr, &outl, aad, int(aad_len)) != 1 ||
      !crypt_runs(ctx_, cur, nullptr, ct_len))
    return Unexpected{Alert::internal_error};
  uint8_t tag[tag_len];
  if (!cur.read(tag, tag_len) ||
      EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_AEAD_SET_TAG, int(tag_len), tag) != 1)
    return Unexpected{Alert::internal_error};
  // RFC 8446 5.2 / RFC 5246 6.2.3.3: a tag mismatch is bad_record_mac.
  if (EVP_CipherFinal_ex(ctx_, nullptr, &outl) != 1) return Unexpected{Alert::bad_record_mac};
  ++seq_;

  OpenedRecord r{h->type, body_off, ct_len};
  if (!v13) return r;
  // RFC 8446 5.4: the real type is the last non-zero byte; scan back from the
  // end (padding is usually empty, so this reads one byte).
  size_t end = header_len + h->length - tag_len;  // record offset just past the inner plaintext
  size_t seg_start = SegCursor::total(record);
  for (size_t i = record.size(); i-- > 0;) {
    seg_start -= record[i].size;
    size_t lo = std::max(seg_start, body_off), hi = std::min(seg_start + record[i].size, end);
    for (size_t p = hi; p > lo; --p) {
      uint8_t b = record[i].data[p - 1 - seg_start];
      if (b == 0) continue;
      r.type = ContentType(b);
      r.length = p - 1 - body_off;
      if (r.type != ContentType::alert && r.type != ContentType::handshake &&
          r.type != ContentType::application_data)
        return Unexpected{Alert::unexpected_message};
      // RFC 8446 5.4: more than 2^14 bytes of content is record_overflow.
      if (r.length > max_plaintext) return Unexpected{Alert::record_overflow};
      return r;
    }
  }
  // RFC 8446 5.4: no non-zero octet at all.
  return Unexpected{Alert::unexpected_message};
}

}  // namespace keel::tls
