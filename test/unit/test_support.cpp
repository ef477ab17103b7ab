// SPDX-License-Identifier: BSD-3-Clause
#include "test_support.hpp"

#include <rte_ring.h>

#include <catch2/catch.hpp>

#include <cstring>
#include <stdexcept>

namespace keel::test {

rte_mempool* pool() {
  static rte_mempool* p = [] {
    rte_mempool* mp = rte_pktmbuf_pool_create("test_pool", 2047, 0, 0,
                                              RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
    if (mp == nullptr) throw std::runtime_error("test_pool: rte_pktmbuf_pool_create failed");
    return mp;
  }();
  return p;
}

unsigned pool_in_use() { return rte_mempool_in_use_count(pool()); }

rte_mbuf* make_mbuf(const std::vector<uint8_t>& bytes) {
  rte_mbuf* m = rte_pktmbuf_alloc(pool());
  REQUIRE(m != nullptr);
  REQUIRE(bytes.size() <= rte_pktmbuf_tailroom(m));
  char* p = rte_pktmbuf_append(m, uint16_t(bytes.size()));
  if (!bytes.empty()) std::memcpy(p, bytes.data(), bytes.size());
  return m;
}

rte_mbuf* make_chain(const std::vector<uint8_t>& bytes, std::initializer_list<size_t> seg_lens) {
  rte_mbuf* head = nullptr;
  size_t off = 0;
  auto it = seg_lens.begin();
  while (off < bytes.size() || head == nullptr) {
    size_t len = it != seg_lens.end() ? *it++ : bytes.size() - off;
    len = std::min(len, bytes.size() - off);
    rte_mbuf* seg = make_mbuf(std::vector<uint8_t>(bytes.begin() + off, bytes.begin() + off + len));
    off += len;
    if (head == nullptr) head = seg;
    else REQUIRE(rte_pktmbuf_chain(head, seg) == 0);
    if (len == 0 && off >= bytes.size()) break;
  }
  return head;
}

std::vector<uint8_t> bytes_of(const rte_mbuf* m) {
  std::vector<uint8_t> out;
  for (const rte_mbuf* s = m; s != nullptr; s = s->next) {
    const uint8_t* p = rte_pktmbuf_mtod(s, const uint8_t*);
    out.insert(out.end(), p, p + s->data_len);
  }
  return out;
}

RingTestPort make_ring_test_port(const std::string& name) {
  auto rp = drivers::create_ring_port(name, 1024);
  if (!rp) throw std::runtime_error(rp.error());
  drivers::PortConfig cfg;
  cfg.use_offloads = false;
  cfg.mac = net::MacAddr{{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}};
  auto port = drivers::Port::start(rp->port_id, cfg, pool());
  if (!port) throw std::runtime_error(port.error());
  return RingTestPort{*rp, *port};
}

void drain_rings(RingTestPort& p) {
  void* m = nullptr;
  while (rte_ring_dequeue(p.ring.rx, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
  while (rte_ring_dequeue(p.ring.tx, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
}

PoolBaseline::PoolBaseline() : start_(pool_in_use()) {}
PoolBaseline::~PoolBaseline() { CHECK(pool_in_use() == start_); }

}  // namespace keel::test
