// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// Big-endian loads and stores over raw bytes: memcpy + byteswap, never casts,
/// so unaligned wire fields are safe and UB-free.

#include <bit>
#include <cstdint>
#include <cstring>

namespace keel::net {

inline uint16_t load_be16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return __builtin_bswap16(v);
}
inline uint32_t load_be32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return __builtin_bswap32(v);
}
inline void store_be16(uint8_t* p, uint16_t v) {
  v = __builtin_bswap16(v);
  std::memcpy(p, &v, sizeof v);
}
inline void store_be32(uint8_t* p, uint32_t v) {
  v = __builtin_bswap32(v);
  std::memcpy(p, &v, sizeof v);
}

static_assert(std::endian::native == std::endian::little, "keel assumes a little-endian host");

}  // namespace keel::net
