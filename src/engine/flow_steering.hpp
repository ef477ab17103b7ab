// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// Flow ownership: which instance processes a flow's packets.
///
///   owner(flow) = reta[toeplitz(symmetric key, src ip, dst ip, src port, dst port) & (reta_size - 1)]
///
/// The hash is DPDK's rte_softrss over drivers::symmetric_rss_key, the key every
/// port with RSS is configured with, so a port whose hardware hashes with it
/// picks the same queue as this table when its RETA holds the same entries
/// (Engine programs entry i -> i % instances). The key repeats 0x6d5a, so the
/// hash of (a, b, pa, pb) equals that of (b, a, pb, pa): both directions of a
/// flow have one owner.
///
/// Which tuple a datagram is hashed by (owner_of):
///   - TCP/UDP, not fragmented: the 4-tuple.
///   - A fragment: the 2-tuple (addresses), so every fragment of a datagram meets
///     on one instance; after reassembly the datagram goes to its 4-tuple owner.
///   - ICMP errors: the quoted datagram's flow (4-tuple when it is TCP/UDP), so
///     the error reaches the instance holding the connection.
///   - Anything else (ICMP echo, ...): the 2-tuple, as RSS hashes non-TCP/UDP IPv4.
/// Immutable after construction: instances share it read-only. In a multi-process
/// group (engine/multiprocess.hpp) the owner found in the RETA goes through a map
/// in shared memory (set_owner_map) that the primary rewrites when a process dies,
/// so that the dead instances' flows reach a live instance.

#include <atomic>
#include <cstdint>
#include <vector>

#include "net/addresses.hpp"

struct rte_mbuf;

namespace keel::engine {

class FlowSteering {
 public:
  /// RETA size when no port has hardware RSS (a power of two, like NICs' 128/512).
  static constexpr uint16_t software_reta_size = 128;

  /// `instances` >= 1; `reta_size` a power of two; entry i -> i % instances.
  explicit FlowSteering(uint16_t instances, uint16_t reta_size = software_reta_size);

  /// Toeplitz hash of the 4-tuple (ports in host order) with the ports' symmetric
  /// key: rte_softrss_be over the key converted once (rte_convert_rss_key), which
  /// equals rte_softrss over the key itself without its per-bit byte swaps.
  static uint32_t hash(net::Ipv4Addr src, net::Ipv4Addr dst, uint16_t sport, uint16_t dport);
  /// Toeplitz hash of the addresses alone (RSS's IPv4 hash), symmetric key.
  static uint32_t hash(net::Ipv4Addr src, net::Ipv4Addr dst);
  /// The same hashes with another key (at least 16 bytes), by rte_softrss: for
  /// tests against published vectors.
  static uint32_t hash_with_key(const uint8_t* key, net::Ipv4Addr src, net::Ipv4Addr dst,
                                uint16_t sport, uint16_t dport);
  static uint32_t hash_with_key(const uint8_t* key, net::Ipv4Addr src, net::Ipv4Addr dst);

  uint16_t owner_of_hash(uint32_t h) const {
    uint16_t o = reta_[h & (reta_.size() - 1)];
    return map_ == nullptr ? o : map_[o].load(std::memory_order_relaxed);
  }
  /// Owner lookups go through `map` (instances() entries, shared memory) from now on.
  void set_owner_map(const std::atomic<uint16_t>* map) { map_ = map; }
  uint16_t owner(net::Ipv4Addr src, net::Ipv4Addr dst, uint16_t sport, uint16_t dport) const {
    return owner_of_hash(hash(src, dst, sport, dport));
  }
  uint16_t owner(net::Ipv4Addr src, net::Ipv4Addr dst) const { return owner_of_hash(hash(src, dst)); }
  /// The owner of a validated IPv4 datagram: `m`'s data starts at the IPv4
  /// header, which is contiguous in the first segment (ip_input makes it so).
  /// Reads L4 fields with rte_pktmbuf_read, so chains and short datagrams are safe
  /// (what cannot be read falls back to the 2-tuple).
  uint16_t owner_of(const rte_mbuf* m) const;

  uint16_t instances() const { return instances_; }
  uint16_t reta_size() const { return uint16_t(reta_.size()); }
  const std::vector<uint16_t>& reta() const { return reta_; }

 private:
  uint16_t instances_;
  std::vector<uint16_t> reta_;
  const std::atomic<uint16_t>* map_ = nullptr;
};

}  // namespace keel::engine
