// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// IPv4 addresses, prefixes and endpoints as the public API sees them (host
/// byte order values; text in dotted-quad form).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace keel {

/// An IPv4 address. `value` is in host byte order: 198.18.0.1 is 0xc6120001.
struct Ipv4Address {
  uint32_t value = 0;

  constexpr Ipv4Address() = default;
  constexpr explicit Ipv4Address(uint32_t host_order) : value(host_order) {}
  constexpr Ipv4Address(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
      : value(uint32_t(a) << 24 | uint32_t(b) << 16 | uint32_t(c) << 8 | d) {}
  /// 0.0.0.0: "any local address" where an address is bound.
  static constexpr Ipv4Address any() { return Ipv4Address{}; }
  constexpr bool is_any() const { return value == 0; }
  /// Parses "a.b.c.d" (each part 0..255, no leading '+', nothing else); nullopt otherwise.
  static std::optional<Ipv4Address> parse(std::string_view s);
  std::string to_string() const;
  constexpr bool operator==(const Ipv4Address&) const = default;
};

/// An address with its prefix length, "198.18.0.2/24".
struct Ipv4Prefix {
  Ipv4Address addr;
  uint8_t length = 32;  ///< 0..32
  /// Parses "a.b.c.d/n"; a missing "/n" means /32.
  static std::optional<Ipv4Prefix> parse(std::string_view s);
  std::string to_string() const;
  constexpr bool operator==(const Ipv4Prefix&) const = default;
};

/// An address and a port (host byte order).
struct Endpoint {
  Ipv4Address addr;
  uint16_t port = 0;
  /// "198.18.0.1:80".
  std::string to_string() const;
  constexpr bool operator==(const Endpoint&) const = default;
};

}  // namespace keel
