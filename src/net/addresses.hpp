// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// MAC and IPv4 address value types, with parsing and formatting.

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace keel::net {

/// A 48-bit Ethernet address, stored in wire order.
struct MacAddr {
  std::array<uint8_t, 6> b{};

  static constexpr MacAddr broadcast() { return {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}; }
  static MacAddr from_bytes(const uint8_t* p) {
    MacAddr m;
    std::memcpy(m.b.data(), p, 6);
    return m;
  }
  void to_bytes(uint8_t* p) const { std::memcpy(p, b.data(), 6); }
  bool is_broadcast() const { return *this == broadcast(); }
  bool is_multicast() const { return b[0] & 1; }
  bool is_zero() const { return *this == MacAddr{}; }
  auto operator<=>(const MacAddr&) const = default;

  /// "02:00:00:00:00:01"
  std::string to_string() const;
  static std::optional<MacAddr> parse(std::string_view s);
};

/// An IPv4 address in host byte order (so comparisons and masks read naturally).
struct Ipv4Addr {
  uint32_t v = 0;

  constexpr Ipv4Addr() = default;
  constexpr explicit Ipv4Addr(uint32_t host_order) : v(host_order) {}
  constexpr Ipv4Addr(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
      : v(uint32_t(a) << 24 | uint32_t(b) << 16 | uint32_t(c) << 8 | d) {}

  static constexpr Ipv4Addr any() { return Ipv4Addr{}; }
  static constexpr Ipv4Addr broadcast() { return Ipv4Addr{0xffffffffu}; }
  bool is_any() const { return v == 0; }
  bool is_broadcast() const { return v == 0xffffffffu; }
  bool is_multicast() const { return (v >> 28) == 0xe; }
  bool is_loopback() const { return (v >> 24) == 127; }
  auto operator<=>(const Ipv4Addr&) const = default;

  /// "198.18.0.2"
  std::string to_string() const;
  /// Strict dotted quad: four decimal octets 0..255, nothing else.
  static std::optional<Ipv4Addr> parse(std::string_view s);
};

/// An address with its prefix length: 198.18.0.2/24.
struct Ipv4Cidr {
  Ipv4Addr addr;
  uint8_t prefix_len = 32;

  uint32_t mask() const { return prefix_len == 0 ? 0 : ~uint32_t(0) << (32 - prefix_len); }
  Ipv4Addr network() const { return Ipv4Addr{addr.v & mask()}; }
  Ipv4Addr directed_broadcast() const { return Ipv4Addr{addr.v | ~mask()}; }
  bool contains(Ipv4Addr a) const { return (a.v & mask()) == (addr.v & mask()); }
  auto operator<=>(const Ipv4Cidr&) const = default;

  std::string to_string() const;
  /// "a.b.c.d/len" with len 0..32; a bare address means /32.
  static std::optional<Ipv4Cidr> parse(std::string_view s);
};

}  // namespace keel::net
