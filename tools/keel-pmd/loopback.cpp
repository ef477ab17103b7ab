// SPDX-License-Identifier: BSD-3-Clause
// The loopback demo: stack A (198.18.0.1) and stack B (198.18.0.2) on two
// net_ring ports wired back to back, each on its own lcore or thread. B serves
// echo, discard, chargen and http. A resolves B by ARP, pings it (small and
// fragmented), then runs TCP: bulk streams into discard and echo round trips
// whose every byte is checked. A live table shows connections, segments,
// Gbit/s and retransmits each second; the summary says whether every byte
// arrived intact and every mbuf went back to its pool.
#include "loopback.hpp"

#include <rte_mempool.h>

#include <cstdio>
#include <iostream>

#include "cli.hpp"
#include "drivers/ring_port.hpp"
#include "ping.hpp"
#include "services.hpp"
#include "workload.hpp"

namespace keel::pmd {

namespace {

// Runs the TCP workload from A to B; returns true if every connection finished intact.
bool run_tcp(engine::Engine& a, engine::Engine& b, const Options& opts) {
  WorkloadSpec spec;
  spec.dst = net::Ipv4Addr(198, 18, 0, 2);
  spec.streams = opts.loopback_streams;
  spec.stream_bytes = opts.loopback_bytes;
  spec.echoes = opts.loopback_echoes;
  spec.echo_size = opts.loopback_echo_size;
  spec.echo_rounds = opts.loopback_echo_rounds;
  spec.max_seconds = opts.loopback_seconds;
  spec.stall_seconds = 0;  // --seconds is the limit
  std::cout << "\nTCP: " << spec.streams << " stream(s) of " << spec.stream_bytes / (1 << 20)
            << " MiB into discard, " << spec.echoes << " echo connection(s) x " << spec.echo_rounds
            << " round trips of " << spec.echo_size << " bytes, cc "
            << a.tcp(0).config().cc->name() << "\n";
  auto w = Workload::start(a, {&a, &b}, spec);
  if (!w) {
    std::cout << "stack A did not start the workload: " << w.error() << "\n";
    return false;
  }
  WorkloadResult r = (*w)->wait(std::cout);
  std::printf("TCP: %u/%u connections intact, %.1f MiB verified in %.2f s (%.2f Gbit/s), "
              "%u corrupt bytes, %llu retransmits\n",
              r.done, r.conns, double(r.bytes()) / (1 << 20), r.seconds, r.gbit_per_s(),
              r.mismatches, (unsigned long long)r.retransmits);
  if (r.done + r.failed < r.conns) {
    // Unfinished: show where the connections stand, for diagnosis.
    Cli cli_a(a), cli_b(b);
    std::cout << "unfinished connections, stack A:\n";
    cli_a.execute("show conns", std::cout);
    std::cout << "stack B:\n";
    cli_b.execute("show conns", std::cout);
  }
  return r.intact(spec);
}

}  // namespace

int run_loopback(const Options& opts) {
  auto link = drivers::create_ring_link("keel_loop");
  if (!link) {
    std::cerr << "keel-pmd: " << link.error() << "\n";
    return 1;
  }
  const engine::PortSpec& tmpl = opts.engine.ports.front();
  auto make = [&](const std::string& dev, const char* addr) {
    engine::EngineConfig cfg = opts.engine;
    // --instances N: each stack runs N instances; the net_ring port has one queue,
    // so instance 0 receives and steers in software (engine/steer.cpp).
    cfg.pool_mbufs = 32767;
    // TIME-WAIT only needs to outlive the demo's last packets.
    cfg.tcp.msl_ns = 1'000'000'000;
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
  bool pools_ok = false, ping_ok = false, tcp_ok = false;
  {
    Services services;
    if (auto r = (*a)->launch(); !r) return std::cerr << "keel-pmd: " << r.error() << "\n", 1;
    if (auto r = (*b)->launch(); !r) return std::cerr << "keel-pmd: " << r.error() << "\n", 1;
    auto started = services.start(**b, {{ServiceKind::echo, 7},
                                        {ServiceKind::discard, 9},
                                        {ServiceKind::chargen, 19},
                                        {ServiceKind::http, 80}});
    if (!started) {
      std::cerr << "keel-pmd: " << started.error() << "\n";
      return 1;
    }

    std::cout << "keel loopback: stack A 198.18.0.1 <-> net_ring <-> stack B 198.18.0.2";
    if (tmpl.rx_faults.enabled()) std::cout << " (rx faults " << tmpl.rx_faults.to_string() << ")";
    if (tmpl.tx_faults.enabled()) std::cout << " (tx faults " << tmpl.tx_faults.to_string() << ")";
    std::cout << "\n";
    auto& inst_a = ping_instance(**a, net::Ipv4Addr(198, 18, 0, 2));
    PingResult res = ping(inst_a, net::Ipv4Addr(198, 18, 0, 2), opts.loopback_pings, 5, 56, std::cout);
    // A large ping exercises fragmentation and reassembly both ways.
    PingResult big = ping(inst_a, net::Ipv4Addr(198, 18, 0, 2), 3, 5, 4000, std::cout);
    // With fault injection some pings may be lost by design; TCP must still be intact.
    bool faults = tmpl.rx_faults.enabled() || tmpl.tx_faults.enabled();
    ping_ok = faults || (res.received == res.sent && big.received == big.sent);

    tcp_ok = run_tcp(**a, **b, opts);

    Cli cli_a(**a), cli_b(**b);
    std::cout << "\nstack A:\n";
    cli_a.execute("show stats", std::cout);
    std::cout << "\nstack B:\n";
    cli_b.execute("show stats", std::cout);
    (*a)->stop();
    (*b)->stop();
  }
  // Free every connection and held frame on both sides (each holds the
  // other's mbufs) and drain the rings; then both pools must be whole.
  (*a)->quiesce();
  (*b)->quiesce();
  unsigned a_end = rte_mempool_in_use_count((*a)->pool());
  unsigned b_end = rte_mempool_in_use_count((*b)->pool());
  pools_ok = a_end == a_base && b_end == b_base;
  if (!pools_ok)
    std::cout << "mempool leak: A " << a_end << " in use (was " << a_base << "), B " << b_end
              << " (was " << b_base << ")\n";
  bool ok = ping_ok && tcp_ok && pools_ok;
  std::cout << "\nsummary: ping " << (ping_ok ? "ok" : "FAILED") << ", TCP "
 << (tcp_ok ? "every byte verified" : "FAILED") << ", mempools "
            << (pools_ok ? "whole" : "LEAKED") << " -> " << (ok ? "PASS" : "FAIL")
            << "\n";
  return ok ? 0 : 1;
}

}  // namespace keel::pmd
