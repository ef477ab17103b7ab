// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// The neighbour table of one interface on one instance: IPv4 -> MAC with
/// expiry, plus a bounded queue of frames waiting for each unresolved next hop.
/// Storage is preallocated: an rte_hash indexes a fixed array of entries, and
/// each entry's wait queue has a fixed capacity. The protocol (requests,
/// retries, refresh) lives in engine/arp.cpp; this is the data structure.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/timer_wheel.hpp"
#include "net/addresses.hpp"

struct rte_hash;
struct rte_mbuf;

namespace keel::net {

struct ArpConfig {
  uint32_t max_entries = 256;        ///< neighbours per interface
  uint32_t max_pending = 16;         ///< frames waiting per unresolved next hop
  uint64_t reachable_ns = 60'000'000'000;  ///< an entry is trusted this long after confirmation
  uint64_t retry_ns = 1'000'000'000;       ///< between requests while resolving or refreshing
  uint32_t max_probes = 3;           ///< requests before giving up
};

struct ArpEntry {
  enum class State : uint8_t {
    incomplete,  ///< request sent, frames wait in `pending`
    reachable,   ///< confirmed within reachable_ns
    stale,       ///< expired: still used, unicast requests try to confirm it
  };
  Ipv4Addr ip;
  MacAddr mac;
  State state = State::incomplete;
  uint8_t probes = 0;       ///< requests sent in the current resolve/refresh round
  uint16_t iface = 0;       ///< owning interface's index in its instance
  void* owner = nullptr;    ///< owning instance (for the timer callback)
  engine::Timer timer;
  std::vector<rte_mbuf*> pending;  ///< capacity max_pending, reserved up front
};

class ArpCache {
 public:
  /// `name` must be unique in the process (it names the rte_hash).
  ArpCache(const std::string& name, const ArpConfig& cfg);
  ~ArpCache();
  ArpCache(const ArpCache&) = delete;
  ArpCache& operator=(const ArpCache&) = delete;

  const ArpConfig& config() const { return cfg_; }
  ArpEntry* find(Ipv4Addr ip);
  /// A fresh incomplete entry, or nullptr when the table is full.
  ArpEntry* create(Ipv4Addr ip);
  /// Removes the entry. Precondition: its timer is cancelled and its pending
  /// frames were taken out.
  void erase(ArpEntry& e);
  size_t size() const { return used_; }

  template <class F>
  void for_each(F&& f) {
    for (size_t i = 0; i < capacity_; ++i)
      if (in_use_[i]) f(entries_[i]);
  }

 private:
  ArpConfig cfg_;
  rte_hash* index_ = nullptr;
  size_t capacity_;
  std::unique_ptr<ArpEntry[]> entries_;  // index = rte_hash key position
  std::vector<bool> in_use_;
  size_t used_ = 0;
};

}  // namespace keel::net
