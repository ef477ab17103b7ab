// SPDX-License-Identifier: BSD-3-Clause
// The public address types, over the internal parsers in net/addresses.hpp
// (one dotted-quad grammar for the whole project).
#include <keel/address.hpp>

#include "net/addresses.hpp"

namespace keel {

std::optional<Ipv4Address> Ipv4Address::parse(std::string_view s) {
  auto a = net::Ipv4Addr::parse(s);
  if (!a) return std::nullopt;
  return Ipv4Address{a->v};
}

std::string Ipv4Address::to_string() const { return net::Ipv4Addr{value}.to_string(); }

std::optional<Ipv4Prefix> Ipv4Prefix::parse(std::string_view s) {
  auto c = net::Ipv4Cidr::parse(s);
  if (!c) return std::nullopt;
  return Ipv4Prefix{Ipv4Address{c->addr.v}, c->prefix_len};
}

std::string Ipv4Prefix::to_string() const {
  return net::Ipv4Cidr{net::Ipv4Addr{addr.value}, length}.to_string();
}

std::string Endpoint::to_string() const { return addr.to_string() + ":" + std::to_string(port); }

}  // namespace keel
