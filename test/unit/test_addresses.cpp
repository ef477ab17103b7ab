// SPDX-License-Identifier: BSD-3-Clause
#include <catch2/catch.hpp>

#include "net/addresses.hpp"

using keel::net::Ipv4Addr;
using keel::net::Ipv4Cidr;
using keel::net::MacAddr;

TEST_CASE("Ipv4Addr parses strict dotted quads", "[addresses]") {
  REQUIRE(Ipv4Addr::parse("198.18.0.2") == Ipv4Addr(198, 18, 0, 2));
  REQUIRE(Ipv4Addr::parse("0.0.0.0") == Ipv4Addr::any());
  REQUIRE(Ipv4Addr::parse("255.255.255.255") == Ipv4Addr::broadcast());
  for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.-4", "1..3.4", "a.b.c.d",
                          "1.2.3.4 ", " 1.2.3.4", "1.2.3.0004"}) {
    INFO(bad);
    REQUIRE_FALSE(Ipv4Addr::parse(bad).has_value());
  }
  REQUIRE(Ipv4Addr(198, 18, 0, 2).to_string() == "198.18.0.2");
}

TEST_CASE("Ipv4Cidr parses prefixes and answers membership", "[addresses]") {
  auto c = Ipv4Cidr::parse("198.18.0.2/24");
  REQUIRE(c.has_value());
  REQUIRE(c->prefix_len == 24);
  REQUIRE(c->contains(Ipv4Addr(198, 18, 0, 200)));
  REQUIRE_FALSE(c->contains(Ipv4Addr(198, 18, 1, 1)));
  REQUIRE(c->directed_broadcast() == Ipv4Addr(198, 18, 0, 255));
  REQUIRE(Ipv4Cidr::parse("10.0.0.1")->prefix_len == 32);
  REQUIRE(Ipv4Cidr::parse("0.0.0.0/0")->contains(Ipv4Addr(1, 2, 3, 4)));
  REQUIRE_FALSE(Ipv4Cidr::parse("1.2.3.4/33").has_value());
  REQUIRE_FALSE(Ipv4Cidr::parse("1.2.3.4/").has_value());
  REQUIRE(c->to_string() == "198.18.0.2/24");
}

TEST_CASE("MacAddr parses and formats", "[addresses]") {
  auto m = MacAddr::parse("02:00:00:aB:cd:01");
  REQUIRE(m.has_value());
  REQUIRE(m->to_string() == "02:00:00:ab:cd:01");
  REQUIRE_FALSE(MacAddr::parse("02:00:00:ab:cd").has_value());
  REQUIRE_FALSE(MacAddr::parse("02-00-00-ab-cd-01").has_value());
  REQUIRE(MacAddr::broadcast().is_broadcast());
  REQUIRE(MacAddr::broadcast().is_multicast());
}
