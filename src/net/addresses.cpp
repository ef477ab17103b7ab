// SPDX-License-Identifier: BSD-3-Clause
#include "net/addresses.hpp"

#include <charconv>
#include <cstdio>

namespace keel::net {

namespace {
// Parses a decimal number of at most `max_digits` digits, no sign, no spaces.
std::optional<unsigned> parse_decimal(std::string_view s, unsigned max_value) {
  if (s.empty() || s.size() > 3) return std::nullopt;
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || v > max_value) return std::nullopt;
  return v;
}

std::optional<unsigned> parse_hex_octet(std::string_view s) {
  if (s.size() != 2) return std::nullopt;
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + 2, v, 16);
  if (ec != std::errc{} || p != s.data() + 2) return std::nullopt;
  return v;
}
}  // namespace

std::string MacAddr::to_string() const {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4],
                b[5]);
  return buf;
}

std::optional<MacAddr> MacAddr::parse(std::string_view s) {
  if (s.size() != 17) return std::nullopt;
  MacAddr m;
  for (int i = 0; i < 6; ++i) {
    if (i > 0 && s[i * 3 - 1] != ':') return std::nullopt;
    auto o = parse_hex_octet(s.substr(i * 3, 2));
    if (!o) return std::nullopt;
    m.b[i] = uint8_t(*o);
  }
  return m;
}

std::string Ipv4Addr::to_string() const {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff,
                v & 0xff);
  return buf;
}

std::optional<Ipv4Addr> Ipv4Addr::parse(std::string_view s) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) {
    size_t dot = i < 3 ? s.find('.') : s.size();
    if (dot == std::string_view::npos) return std::nullopt;
    auto octet = parse_decimal(s.substr(0, dot), 255);
    if (!octet) return std::nullopt;
    v = v << 8 | *octet;
    s = i < 3 ? s.substr(dot + 1) : std::string_view{};
  }
  return Ipv4Addr{v};
}

std::string Ipv4Cidr::to_string() const {
  return addr.to_string() + "/" + std::to_string(prefix_len);
}

std::optional<Ipv4Cidr> Ipv4Cidr::parse(std::string_view s) {
  size_t slash = s.find('/');
  auto a = Ipv4Addr::parse(s.substr(0, slash));
  if (!a) return std::nullopt;
  if (slash == std::string_view::npos) return Ipv4Cidr{*a, 32};
  auto len = parse_decimal(s.substr(slash + 1), 32);
  if (!len) return std::nullopt;
  return Ipv4Cidr{*a, uint8_t(*len)};
}

}  // namespace keel::net
