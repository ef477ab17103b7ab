// SPDX-License-Identifier: BSD-3-Clause
// The loopback demo: stack A (198.18.0.1) and stack B (198.18.0.2) on two
// net_ring ports wired back to back, each on its own lcore or thread. A resolves
// B by ARP and pings it; the demo checks every reply came back and that both
// stacks' mbufs return to their pools.
#include "loopback.hpp"

#include <rte_mempool.h>

#include <iostream>

#include "cli.hpp"
#include "drivers/ring_port.hpp"
#include "ping.hpp"

namespace keel::pmd {

int run_loopback(const Options& opts) {
  auto link = drivers::create_ring_link("keel_loop");
  if (!link) {
    std::cerr << "keel-pmd: " << link.error() << "\n";
    return 1;
  }
  const engine::PortSpec& tmpl = opts.engine.ports.front();
  auto make = [&](const std::string& dev, const char* addr) {
    engine::EngineConfig cfg = opts.engine;
    cfg.instances = 1;
    cfg.pool_mbufs = 4095;
    engine::PortSpec p = tmpl;
    p.device = dev;
    p.l3.addrs = {*net::Ipv4Cidr::parse(addr)};
    cfg.ports = {p};
    return engine::Engine::create(cfg);
  };
  auto a = make("net_ring_keel_loop_a", "198.18.0.1/24");
  if (!a) {
    std::cerr << "keel-pmd: stack A: " << a.error() << "\n";
    return 1;
  }
  auto b = make("net_ring_keel_loop_b", "198.18.0.2/24");
  if (!b) {
    std::cerr << "keel-pmd: stack B: " << b.error() << "\n";
    return 1;
  }
  unsigned a_base = rte_mempool_in_use_count((*a)->pool());
  unsigned b_base = rte_mempool_in_use_count((*b)->pool());
  if (auto r = (*a)->launch(); !r) return std::cerr << "keel-pmd: " << r.error() << "\n", 1;
  if (auto r = (*b)->launch(); !r) return std::cerr << "keel-pmd: " << r.error() << "\n", 1;

  std::cout << "keel loopback: stack A 198.18.0.1 <-> net_ring <-> stack B 198.18.0.2\n";
  PingResult res =
      ping(*(*a)->instances().front(), net::Ipv4Addr(198, 18, 0, 2), opts.loopback_pings, 5, 56,
           std::cout);
  // A large ping exercises fragmentation and reassembly both ways.
  PingResult big = ping(*(*a)->instances().front(), net::Ipv4Addr(198, 18, 0, 2), 3, 5, 4000,
                        std::cout);

  Cli cli_a(**a), cli_b(**b);
  std::cout << "\nstack A:\n";
  cli_a.execute("show arp", std::cout);
  cli_a.execute("show stats", std::cout);
  std::cout << "\nstack B:\n";
  cli_b.execute("show stats", std::cout);
  (*a)->stop();
  (*b)->stop();
  // Everything in flight is freed by the stops above; pools must be whole.
  unsigned a_end = rte_mempool_in_use_count((*a)->pool());
  unsigned b_end = rte_mempool_in_use_count((*b)->pool());
  bool pools_ok = a_end == a_base && b_end == b_base;
  bool ok = res.received == res.sent && big.received == big.sent && pools_ok;
  std::cout << "\nsummary: " << res.received << "/" << res.sent << " pings, " << big.received << "/"
            << big.sent << " fragmented pings, avg rtt " << res.avg_ms * 1000 << " us, mempool "
            << (pools_ok ? "whole" : "LEAKED") << " -> " << (ok ? "PASS" : "FAIL") << "\n";
  return ok ? 0 : 1;
}

}  // namespace keel::pmd
