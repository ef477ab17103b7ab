// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// SipHash-2-4 (Aumasson & Bernstein): a keyed PRF over short inputs, for
/// RFC 6528 initial sequence numbers and SYN cookies. Neither DPDK nor the
/// standard library has a keyed hash with this strength.

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace keel::tcp {

inline uint64_t siphash24(const uint8_t key[16], const void* data, size_t len) {
  auto rotl = [](uint64_t x, int b) { return (x << b) | (x >> (64 - b)); };
  uint64_t k0, k1;
  std::memcpy(&k0, key, 8);
  std::memcpy(&k1, key + 8, 8);
  uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
  uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
  auto round = [&] {
    v0 += v1, v1 = rotl(v1, 13), v1 ^= v0, v0 = rotl(v0, 32);
    v2 += v3, v3 = rotl(v3, 16), v3 ^= v2;
    v0 += v3, v3 = rotl(v3, 21), v3 ^= v0;
    v2 += v1, v1 = rotl(v1, 17), v1 ^= v2, v2 = rotl(v2, 32);
  };
  const auto* p = static_cast<const uint8_t*>(data);
  size_t full = len / 8 * 8;
  for (size_t i = 0; i < full; i += 8) {
    uint64_t m;
    std::memcpy(&m, p + i, 8);
    v3 ^= m;
    round(), round();
    v0 ^= m;
  }
  uint64_t b = uint64_t(len) << 56;
  for (size_t i = 0; i < len - full; ++i) b |= uint64_t(p[full + i]) << (8 * i);
  v3 ^= b;
  round(), round();
  v0 ^= b;
  v2 ^= 0xff;
  round(), round(), round(), round();
  return v0 ^ v1 ^ v2 ^ v3;
}

}  // namespace keel::tcp
