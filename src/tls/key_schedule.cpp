// SPDX-License-Identifier: BSD-3-Clause
#include "tls/key_schedule.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <cstring>

namespace keel::tls {

namespace {

const char* digest_name(Cipher c) { return c == Cipher::aes_256_gcm ? "SHA384" : "SHA256"; }
size_t key_len(Cipher c) { return c == Cipher::aes_128_gcm ? 16 : 32; }

// One EVP_KDF derivation with the given parameters (the terminator is added here).
bool derive(const char* kdf_name, OSSL_PARAM* params, std::span<uint8_t> out) {
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, kdf_name, nullptr);
  EVP_KDF_CTX* ctx = kdf != nullptr ? EVP_KDF_CTX_new(kdf) : nullptr;
  bool ok = ctx != nullptr && EVP_KDF_derive(ctx, out.data(), out.size(), params) == 1;
  EVP_KDF_CTX_free(ctx);
  EVP_KDF_free(kdf);
  return ok;
}

}  // namespace

size_t hash_len(Cipher c) { return c == Cipher::aes_256_gcm ? 48 : 32; }

bool hkdf_expand_label(Cipher c, std::span<const uint8_t> secret, std::string_view label,
                       std::span<const uint8_t> context, std::span<uint8_t> out) {
  // struct { uint16 length; opaque label<7..255> = "tls13 " + Label; opaque context<0..255>; }
  static constexpr std::string_view prefix = "tls13 ";
  if (prefix.size() + label.size() > 255 || context.size() > 255 || out.size() > 0xffff) return false;
  uint8_t info[2 + 1 + 255 + 1 + 255];
  size_t n = 0;
  info[n++] = uint8_t(out.size() >> 8);
  info[n++] = uint8_t(out.size());
  info[n++] = uint8_t(prefix.size() + label.size());
  std::memcpy(info + n, prefix.data(), prefix.size());
  n += prefix.size();
  std::memcpy(info + n, label.data(), label.size());
  n += label.size();
  info[n++] = uint8_t(context.size());
  if (!context.empty()) std::memcpy(info + n, context.data(), context.size());
  n += context.size();

  int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>(digest_name(c)), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(secret.data()),
                                        secret.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n),
      OSSL_PARAM_construct_end(),
  };
  return derive("HKDF", params, out);
}

Result<TrafficKeys, Alert> tls13_traffic_keys(Cipher c, std::span<const uint8_t> secret) {
  TrafficKeys k;
  k.key_len = key_len(c);
  k.iv_len = 12;
  if (secret.size() != hash_len(c) ||
      !hkdf_expand_label(c, secret, "key", {}, {k.key, k.key_len}) ||
      !hkdf_expand_label(c, secret, "iv", {}, {k.iv, k.iv_len}))
    return Unexpected{Alert::internal_error};
  return k;
}

Result<Secret, Alert> tls13_next_secret(Cipher c, std::span<const uint8_t> secret) {
  Secret s;
  s.len = hash_len(c);
  if (secret.size() != s.len || !hkdf_expand_label(c, secret, "traffic upd", {}, {s.v, s.len}))
    return Unexpected{Alert::internal_error};
  return s;
}

Result<Tls12KeyBlock, Alert> tls12_key_block(Cipher c, std::span<const uint8_t> master_secret,
                                             std::span<const uint8_t> client_random,
                                             std::span<const uint8_t> server_random) {
  if (master_secret.size() != 48 || client_random.size() != 32 || server_random.size() != 32)
    return Unexpected{Alert::internal_error};
  // RFC 5246 6.3: PRF(master_secret, "key expansion", server_random + client_random).
  static constexpr char label[] = "key expansion";
  uint8_t seed[sizeof label - 1 + 64];
  std::memcpy(seed, label, sizeof label - 1);
  std::memcpy(seed + sizeof label - 1, server_random.data(), 32);
  std::memcpy(seed + sizeof label - 1 + 32, client_random.data(), 32);

  const size_t kl = key_len(c);
  const size_t il = c == Cipher::chacha20_poly1305 ? 12 : 4;
  uint8_t block[2 * 32 + 2 * 12];
  const size_t block_len = 2 * kl + 2 * il;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>(digest_name(c)), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET,
                                        const_cast<uint8_t*>(master_secret.data()), 48),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, seed, sizeof seed),
      OSSL_PARAM_construct_end(),
  };
  if (!derive("TLS1-PRF", params, {block, block_len})) return Unexpected{Alert::internal_error};
  // client_write_key, server_write_key, client_write_IV, server_write_IV (AEAD: no MAC keys).
  Tls12KeyBlock kb;
  kb.client.key_len = kb.server.key_len = kl;
  kb.client.iv_len = kb.server.iv_len = il;
  std::memcpy(kb.client.key, block, kl);
  std::memcpy(kb.server.key, block + kl, kl);
  std::memcpy(kb.client.iv, block + 2 * kl, il);
  std::memcpy(kb.server.iv, block + 2 * kl + il, il);
  OPENSSL_cleanse(block, sizeof block);
  return kb;
}

}  // namespace keel::tls
