// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// An instance's view of one port: its queue pair, its addresses, its ARP table.
/// Every instance has its own Interface per port (share-nothing).

#include <cstdint>
#include <string>
#include <vector>

#include "drivers/port.hpp"
#include "drivers/port_queue.hpp"
#include "net/addresses.hpp"
#include "net/arp_cache.hpp"

struct rte_mempool;

namespace keel::engine {

/// Layer-3 settings of a port, as the user configures them.
struct InterfaceConfig {
  std::vector<net::Ipv4Cidr> addrs;  ///< at least one
  net::Ipv4Addr gateway;             ///< any(): no default route
};

struct Interface {
  Interface(uint16_t index, drivers::PortQueue queue, const drivers::Port& port,
            const InterfaceConfig& l3, rte_mempool* pool, const std::string& arp_name,
            const net::ArpConfig& arp_cfg)
      : index(index),
        queue(std::move(queue)),
        mac(port.mac()),
        mtu(port.mtu()),
        caps(port.caps()),
        l3(l3),
        pool(pool),
        arp(arp_name, arp_cfg) {}

  /// True if `a` is one of this interface's own addresses.
  bool owns(net::Ipv4Addr a) const {
    for (const auto& c : l3.addrs)
      if (c.addr == a) return true;
    return false;
  }
  /// True if a datagram to `a` is for this host on this interface: our address,
  /// the limited broadcast, or a directed broadcast of one of our subnets.
  bool accepts(net::Ipv4Addr a) const {
    if (a.is_broadcast() || owns(a)) return true;
    for (const auto& c : l3.addrs)
      if (c.prefix_len < 31 && c.directed_broadcast() == a) return true;
    return false;
  }
  /// True if `a` is on one of this interface's subnets (reachable without a gateway).
  bool on_link(net::Ipv4Addr a) const {
    for (const auto& c : l3.addrs)
      if (c.contains(a)) return true;
    return false;
  }
  /// Our address on the subnet of `a`, else the first address.
  net::Ipv4Addr source_for(net::Ipv4Addr a) const {
    for (const auto& c : l3.addrs)
      if (c.contains(a)) return c.addr;
    return l3.addrs.empty() ? net::Ipv4Addr{} : l3.addrs.front().addr;
  }

  uint16_t index;
  drivers::PortQueue queue;
  net::MacAddr mac;
  uint16_t mtu;
  drivers::OffloadCaps caps;
  InterfaceConfig l3;
  rte_mempool* pool;
  net::ArpCache arp;
};

}  // namespace keel::engine
