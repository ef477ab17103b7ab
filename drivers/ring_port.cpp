// SPDX-License-Identifier: BSD-3-Clause
#include "drivers/ring_port.hpp"

#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_lcore.h>
#include <rte_ring.h>

namespace keel::drivers {

namespace {
Unexpected<std::string> ring_error(const std::string& what) {
  return Unexpected<std::string>{what + ": " + rte_strerror(rte_errno)};
}

rte_ring* make_ring(const std::string& name, unsigned size) {
  // Single producer / single consumer: each side is one lcore.
  return rte_ring_create(name.c_str(), size, int(rte_socket_id()), RING_F_SP_ENQ | RING_F_SC_DEQ);
}
}  // namespace

Result<RingPort, std::string> create_ring_port(const std::string& name, unsigned size) {
  RingPort p;
  p.rx = make_ring(name + "_rx", size);
  p.tx = make_ring(name + "_tx", size);
  if (p.rx == nullptr || p.tx == nullptr) return ring_error("ring port " + name);
  int id = rte_eth_from_rings(name.c_str(), &p.rx, 1, &p.tx, 1, rte_socket_id());
  if (id < 0) return ring_error("rte_eth_from_rings " + name);
  p.port_id = uint16_t(id);
  return p;
}

Result<std::pair<uint16_t, uint16_t>, std::string> create_ring_link(const std::string& name,
                                                                     unsigned size) {
  rte_ring* ab = make_ring(name + "_ab", size);
  rte_ring* ba = make_ring(name + "_ba", size);
  if (ab == nullptr || ba == nullptr) return ring_error("ring link " + name);
  int a = rte_eth_from_rings((name + "_a").c_str(), &ba, 1, &ab, 1, rte_socket_id());
  int b = rte_eth_from_rings((name + "_b").c_str(), &ab, 1, &ba, 1, rte_socket_id());
  if (a < 0 || b < 0) return ring_error("rte_eth_from_rings " + name);
  return std::pair<uint16_t, uint16_t>{uint16_t(a), uint16_t(b)};
}

}  // namespace keel::drivers
