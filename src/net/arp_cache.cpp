// SPDX-License-Identifier: BSD-3-Clause
#include "net/arp_cache.hpp"

#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include <stdexcept>

namespace keel::net {

ArpCache::ArpCache(const std::string& name, const ArpConfig& cfg)
    : cfg_(cfg),
      // rte_hash needs at least 8 entries; key positions stay below that count.
      capacity_(std::max<uint32_t>(cfg.max_entries, 8)),
      entries_(std::make_unique<ArpEntry[]>(capacity_)),
      in_use_(capacity_, false) {
  rte_hash_parameters p{};
  p.name = name.c_str();
  p.entries = capacity_;
  p.key_len = sizeof(uint32_t);
  p.hash_func = rte_hash_crc;  // SSE4.2/ARMv8 CRC32 where the CPU has it: cheaper than jhash
  p.socket_id = int(rte_socket_id());
  p.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE;  // no failed insert while below capacity
  index_ = rte_hash_create(&p);
  if (index_ == nullptr) throw std::runtime_error("ARP table " + name + ": rte_hash_create failed");
  for (size_t i = 0; i < capacity_; ++i) entries_[i].pending.reserve(cfg.max_pending);
}

ArpCache::~ArpCache() {
  for (size_t i = 0; i < capacity_; ++i) {
    for (rte_mbuf* m : entries_[i].pending) rte_pktmbuf_free(m);
    entries_[i].pending.clear();
  }
  rte_hash_free(index_);
}

ArpEntry* ArpCache::find(Ipv4Addr ip) {
  int32_t pos = rte_hash_lookup(index_, &ip.v);
  return pos >= 0 ? &entries_[size_t(pos)] : nullptr;
}

ArpEntry* ArpCache::create(Ipv4Addr ip) {
  if (used_ >= cfg_.max_entries) return nullptr;
  int32_t pos = rte_hash_add_key(index_, &ip.v);
  if (pos < 0) return nullptr;
  ArpEntry& e = entries_[size_t(pos)];
  e.ip = ip;
  e.mac = MacAddr{};
  e.state = ArpEntry::State::incomplete;
  e.probes = 0;
  in_use_[size_t(pos)] = true;
  ++used_;
  return &e;
}

void ArpCache::erase(ArpEntry& e) {
  int32_t pos = rte_hash_del_key(index_, &e.ip.v);
  if (pos < 0) return;
  in_use_[size_t(pos)] = false;
  --used_;
}

}  // namespace keel::net
