// SPDX-License-Identifier: BSD-3-Clause
// Flow steering: the Toeplitz hash and RETA (engine/flow_steering.hpp), and a
// two-instance Engine over net_ring ports whose frames all arrive on one queue:
// each flow must be processed by its owner only (engine/steer.cpp), ARP must
// reach both instances, active opens must pick ports that hash back to the
// caller, and every mbuf must come back.
//
// The test drives both instances' poll() from its own thread (no launch), so
// what happens is deterministic; the rings are MP/SC, which one thread satisfies.
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <catch2/catch.hpp>
#include <memory>
#include <set>
#include <stdexcept>

#include "drivers/port.hpp"
#include "engine/engine.hpp"
#include "engine/flow_steering.hpp"
#include "frames.hpp"
#include "test_support.hpp"

using namespace keel::test;
using keel::engine::Counter;
using keel::engine::Engine;
using keel::engine::FlowSteering;
using keel::net::Ipv4Addr;
using keel::net::Ipv4Cidr;

namespace {

// ===== Toeplitz =====

// The key of Microsoft's RSS verification suite, whose published vectors pin
// down the tuple layout rte_softrss is given (addresses, then source/destination port).
const uint8_t ms_key[40] = {0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67,
                            0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb,
                            0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30,
                            0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};

TEST_CASE("Toeplitz: Microsoft's RSS verification vectors", "[steer]") {
  const Ipv4Addr a{66, 9, 149, 187}, b{161, 142, 100, 80};
  CHECK(FlowSteering::hash_with_key(ms_key, a, b) == 0x323e8fc2u);
  CHECK(FlowSteering::hash_with_key(ms_key, a, b, 2794, 1766) == 0x51ccc178u);
  const Ipv4Addr c{199, 92, 111, 2}, d{65, 69, 140, 83};
  CHECK(FlowSteering::hash_with_key(ms_key, c, d) == 0xd718262au);
  CHECK(FlowSteering::hash_with_key(ms_key, c, d, 14230, 4739) == 0xc626b0eau);
}

TEST_CASE("Toeplitz: the symmetric key's vectors", "[steer]") {
  // From an independent bit-by-bit Toeplitz (Python) that reproduces the vectors above.
  CHECK(FlowSteering::hash(peer_ip, our_ip, 40000, 7) == 0x80138013u);
  CHECK(FlowSteering::hash(our_ip, peer_ip, 7, 40000) == 0x80138013u);
  CHECK(FlowSteering::hash(Ipv4Addr{66, 9, 149, 187}, Ipv4Addr{161, 142, 100, 80}, 2794, 1766) ==
        0x9fcc9fccu);
  CHECK(FlowSteering::hash(peer_ip, our_ip) == 0xadfbadfbu);
}

TEST_CASE("Toeplitz: the symmetric key hashes both directions alike, as rte_softrss does", "[steer]") {
  uint64_t x = 0x9e3779b97f4a7c15ull;
  auto next = [&] { return x = x * 6364136223846793005ull + 1442695040888963407ull; };
  for (int i = 0; i < 10000; ++i) {
    Ipv4Addr a{uint32_t(next() >> 32)}, b{uint32_t(next() >> 32)};
    uint16_t pa = uint16_t(next() >> 48), pb = uint16_t(next() >> 48);
    REQUIRE(FlowSteering::hash(a, b, pa, pb) == FlowSteering::hash(b, a, pb, pa));
    REQUIRE(FlowSteering::hash(a, b) == FlowSteering::hash(b, a));
    // rte_softrss_be over the converted key is rte_softrss over the key the ports use.
    REQUIRE(FlowSteering::hash(a, b, pa, pb) ==
            FlowSteering::hash_with_key(keel::drivers::symmetric_rss_key, a, b, pa, pb));
    REQUIRE(FlowSteering::hash(a, b) == FlowSteering::hash_with_key(keel::drivers::symmetric_rss_key, a, b));
  }
}

TEST_CASE("RETA: entry i -> i % instances, owner = reta[hash & (size - 1)]", "[steer]") {
  FlowSteering two(2);
  REQUIRE(two.reta_size() == FlowSteering::software_reta_size);
  for (uint16_t i = 0; i < two.reta_size(); ++i) CHECK(two.reta()[i] == i % 2);
  FlowSteering three(3, 512);
  CHECK(three.reta()[511] == 511 % 3);
  CHECK(three.owner_of_hash(0xffff0000u | 511) == 511 % 3);
  CHECK(three.owner_of_hash(512) == 0);
  CHECK(three.owner(peer_ip, our_ip, 40000, 7) == three.reta()[0x80138013u & 511]);
  CHECK_THROWS(FlowSteering(2, 100));
  CHECK_THROWS(FlowSteering(0));
  // Ports spread flows over instances (the RFC 6056 walk relies on it).
  unsigned mine = 0;
  for (uint16_t p = 32768; p < 32768 + 1000; ++p) mine += two.owner(our_ip, peer_ip, p, 80) == 1;
  CHECK(mine > 400);
  CHECK(mine < 600);
}

// ===== Which tuple a datagram is hashed by =====

Bytes tcp_syn(Ipv4Addr src, Ipv4Addr dst, uint16_t sport, uint16_t dport, const Bytes& data = {}) {
  Bytes b(20);
  keel::net::store_be16(&b[0], sport);
  keel::net::store_be16(&b[2], dport);
  keel::net::store_be32(&b[4], 1000u * sport);
  b[12] = 5 << 4;
  b[13] = 0x02;  // SYN
  keel::net::store_be16(&b[14], 65535);
  b = cat(b, data);
  keel::net::store_be16(&b[16], fold_cksum(sum16(b.data(), b.size(), pseudo_sum(src, dst, 6, b.size()))));
  return b;
}

/// owner_of over an IPv4 datagram (data at its header), mbuf freed afterwards.
uint16_t owner_of_datagram(const FlowSteering& s, const Bytes& datagram) {
  rte_mbuf* m = make_mbuf(datagram);
  uint16_t o = s.owner_of(m);
  rte_pktmbuf_free(m);
  return o;
}

TEST_CASE("owner_of: 4-tuple for TCP/UDP, 2-tuple for fragments and echo, the quote for errors", "[steer]") {
  PoolBaseline baseline;
  FlowSteering s(16);  // many owners, so that a wrong tuple shows
  Ip ip;
  uint16_t by_pair = s.owner(peer_ip, our_ip);
  // Ports whose 4-tuple owner differs from the pair's.
  uint16_t sport = 1000;
  while (s.owner(peer_ip, our_ip, sport, 53) == by_pair || s.owner(peer_ip, our_ip, sport, 7) == by_pair) ++sport;
  ip.protocol = 17;
  CHECK(owner_of_datagram(s, ipv4(ip, udp(peer_ip, our_ip, sport, 53, pattern(8)))) == s.owner(peer_ip, our_ip, sport, 53));
  ip.protocol = 6;
  CHECK(owner_of_datagram(s, ipv4(ip, tcp_syn(peer_ip, our_ip, sport, 7))) == s.owner(peer_ip, our_ip, sport, 7));
  // Too short for the ports: the pair.
  CHECK(owner_of_datagram(s, ipv4(ip, Bytes{0x12})) == by_pair);
  // Fragments, first and later: the pair.
  ip.mf = true;
  CHECK(owner_of_datagram(s, ipv4(ip, tcp_syn(peer_ip, our_ip, sport, 7))) == by_pair);
  ip.mf = false;
  ip.frag_off = 64;
  CHECK(owner_of_datagram(s, ipv4(ip, pattern(16))) == by_pair);
  ip.frag_off = 0;
  // ICMP echo: the pair.
  ip.protocol = 1;
  CHECK(owner_of_datagram(s, ipv4(ip, echo_request(1, 1, pattern(8)))) == by_pair);
  // An error quoting our UDP datagram our_ip:53 -> peer_ip:sport: that flow's owner.
  Ip quoted;
  quoted.src = our_ip;
  quoted.dst = peer_ip;
  Bytes q = ipv4(quoted, udp(our_ip, peer_ip, 53, sport, pattern(8)));
  q.resize(28);
  CHECK(owner_of_datagram(s, ipv4(ip, icmp(3, 3, 0, q))) == s.owner(peer_ip, our_ip, sport, 53));
  // A quote cut short of its ports: the quoted pair (the same pair, reversed).
  q.resize(22);
  CHECK(owner_of_datagram(s, ipv4(ip, icmp(11, 0, 0, q))) == by_pair);
}

// ===== Two instances on one port =====


Bytes syn_frame(uint16_t sport, uint16_t dport = 7) {
  Ip ip;
  ip.protocol = 6;
  return ether(our_mac, peer_mac, 0x0800, ipv4(ip, tcp_syn(peer_ip, our_ip, sport, dport)));
}

struct NoAccept : keel::tcp::ListenHandler {
  keel::tcp::ConnHandler* on_accept(keel::tcp::Tcb&) override { return nullptr; }
};
struct Quiet : keel::tcp::ConnHandler {
  void on_readable(keel::tcp::Tcb&) override {}
  void on_closed(keel::tcp::Tcb&, keel::Errc) override {}
};

/// An Engine of two instances on a net_ring port with `queues` RX/TX queues.
class Rig {
 public:
  explicit Rig(uint16_t queues) {
    static unsigned serial = 0;
    std::string name = "steer" + std::to_string(serial++);
    for (uint16_t q = 0; q < queues; ++q) {
      rx_.push_back(rte_ring_create((name + "rx" + std::to_string(q)).c_str(), 1024, SOCKET_ID_ANY, 0));
      tx_.push_back(rte_ring_create((name + "tx" + std::to_string(q)).c_str(), 1024, SOCKET_ID_ANY, 0));
      REQUIRE(rx_.back() != nullptr);
      REQUIRE(tx_.back() != nullptr);
    }
    int id = rte_eth_from_rings(name.c_str(), rx_.data(), queues, tx_.data(), queues, SOCKET_ID_ANY);
    REQUIRE(id >= 0);
    char dev[RTE_ETH_NAME_MAX_LEN];
    REQUIRE(rte_eth_dev_get_name_by_port(uint16_t(id), dev) == 0);
    keel::engine::EngineConfig cfg;
    cfg.instances = 2;
    cfg.pool_mbufs = 1023;
    cfg.tcp.max_connections = 256;
    cfg.tcp.ooo_queues = 4;
    cfg.tcp.rack_logs = 4;
    cfg.tcp.sack_boards = 4;
    keel::engine::PortSpec p;
    p.device = dev;
    p.use_offloads = false;
    p.mac = our_mac;
    p.l3.addrs = {Ipv4Cidr{our_ip, 24}};
    cfg.ports = {p};
    auto e = Engine::create(cfg);
    if (!e) FAIL(e.error());
    engine_ = std::move(*e);
    for (int i = 0; i < 2; ++i)
      REQUIRE(tcp(i).listen(our_ip, 7, 128, &no_accept_).has_value());
  }
  ~Rig() {
    engine_->quiesce();
    drain_tx();
    CHECK(rte_mempool_in_use_count(engine_->pool()) == 0);
    engine_.reset();
    for (rte_ring* r : rx_) rte_ring_free(r);
    for (rte_ring* r : tx_) rte_ring_free(r);
  }

  Engine& engine() { return *engine_; }
  const FlowSteering& steering() { return *engine_->steering(); }
  keel::engine::Instance& inst(int i) { return *engine_->instances()[size_t(i)]; }
  keel::tcp::TcpStack& tcp(int i) { return engine_->tcp(size_t(i)); }
  uint64_t count(int i, Counter c) { return inst(i).counters().get(c); }
  void rx(uint16_t queue, const Bytes& f) { REQUIRE(rte_ring_enqueue(rx_[queue], make_mbuf(f)) == 0); }
  /// Polls both instances until nothing moves.
  void settle() {
    uint64_t now = keel::engine::now_ns();
    for (int round = 0; round < 8; ++round) {
      unsigned work = 0;
      for (int i = 0; i < 2; ++i) work += inst(i).poll(now);
      if (work == 0 && round > 1) break;
    }
  }
  /// Every frame transmitted so far, per TX queue.
  std::vector<std::vector<Bytes>> drain_tx() {
    std::vector<std::vector<Bytes>> out(tx_.size());
    for (size_t q = 0; q < tx_.size(); ++q) {
      void* m = nullptr;
      while (rte_ring_dequeue(tx_[q], &m) == 0) {
        out[q].push_back(bytes_of(static_cast<rte_mbuf*>(m)));
        rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
      }
    }
    return out;
  }
  /// Resolves the peer: its ARP request arrives on queue 0.
  void learn_peer() {
    rx(0, ether(our_mac, peer_mac, 0x0806, arp_request(peer_mac, peer_ip, our_ip)));
    settle();
  }

 private:
  PoolBaseline baseline_;
  std::vector<rte_ring*> rx_, tx_;
  std::unique_ptr<Engine> engine_;
  NoAccept no_accept_;
};

uint16_t owner_of_syn(const FlowSteering& s, uint16_t sport) { return s.owner(peer_ip, our_ip, sport, 7); }

/// The instance that owns the peer's address pair (fragments and ICMP go there
/// first), and a peer port whose flow to our port 7 the other instance owns.
struct SplitFlow {
  uint16_t pair_owner, flow_owner, peer_port;
};
SplitFlow split_flow(const FlowSteering& s) {
  SplitFlow f{s.owner(peer_ip, our_ip), 0, 30000};
  while (owner_of_syn(s, f.peer_port) == f.pair_owner) ++f.peer_port;
  f.flow_owner = owner_of_syn(s, f.peer_port);
  return f;
}

TEST_CASE("steering: one RX queue, instance 0 receives everything and dispatches", "[steer]") {
  Rig rig(1);
  REQUIRE(rig.engine().ports()[0].queues() == 1);
  REQUIRE(!rig.inst(1).interfaces()[0]->queue.receives());

  SECTION("ARP reaches both instances; only the receiver answers") {
    rig.learn_peer();
    for (int i = 0; i < 2; ++i) {
      auto* e = rig.inst(i).interfaces()[0]->arp.find(peer_ip);
      REQUIRE(e != nullptr);
      CHECK(e->mac == peer_mac);
    }
    CHECK(rig.count(0, Counter::steer_arp_copies) == 1);
    CHECK(rig.count(0, Counter::arp_requests_in) == 1);
    CHECK(rig.count(1, Counter::arp_requests_in) == 0);
    CHECK(rig.count(0, Counter::arp_replies_out) + rig.count(1, Counter::arp_replies_out) == 1);
    auto tx = rig.drain_tx();
    REQUIRE(tx[0].size() == 1);
    CHECK(parse_ether(tx[0][0]).type == 0x0806);
  }

  SECTION("every flow's SYN is answered by its owner, through instance 0's TX queue") {
    rig.learn_peer();
    rig.drain_tx();
    unsigned owned[2] = {0, 0};
    for (uint16_t k = 0; k < 64; ++k) {
      uint16_t sport = uint16_t(20000 + k);
      ++owned[owner_of_syn(rig.steering(), sport)];
      rig.rx(0, syn_frame(sport));
    }
    rig.settle();
    REQUIRE(owned[0] > 0);
    REQUIRE(owned[1] > 0);
    CHECK(rig.tcp(0).connections() == owned[0]);
    CHECK(rig.tcp(1).connections() == owned[1]);
    CHECK(rig.count(0, Counter::steer_forwarded) == owned[1]);
    CHECK(rig.count(1, Counter::steer_received) == owned[1]);
    CHECK(rig.count(1, Counter::rx_packets) == 0);
    CHECK(rig.count(0, Counter::steer_ring_full) == 0);
    CHECK(rig.count(1, Counter::steer_tx_handoff) == owned[1]);
    rig.tcp(0).for_each([&](keel::tcp::Tcb& c) { CHECK(owner_of_syn(rig.steering(), c.key.remote_port) == 0); });
    rig.tcp(1).for_each([&](keel::tcp::Tcb& c) { CHECK(owner_of_syn(rig.steering(), c.key.remote_port) == 1); });
    auto tx = rig.drain_tx();
    std::set<uint16_t> answered;
    for (const auto& f : tx[0]) {
      auto ip = parse_ipv4(parse_ether(f).payload);
      REQUIRE(ip.hdr.protocol == 6);
      answered.insert(keel::net::load_be16(&ip.payload[2]));
    }
    CHECK(answered.size() == 64);
  }

  SECTION("a fragmented segment is reassembled by its addresses' owner, delivered to its flow's") {
    rig.learn_peer();
    const SplitFlow f = split_flow(rig.steering());
    Ip ip;
    ip.protocol = 6;
    for (const auto& frag : fragments(ip, tcp_syn(peer_ip, our_ip, f.peer_port, 7, pattern(40)), 24))
      rig.rx(0, frag);
    rig.settle();
    CHECK(rig.count(f.pair_owner, Counter::ip_reassembled) == 1);
    CHECK(rig.count(f.flow_owner, Counter::ip_reassembled) == 0);
    CHECK(rig.tcp(f.flow_owner).connections() == 1);
    CHECK(rig.tcp(f.pair_owner).connections() == 0);
  }

  SECTION("an ICMP error reaches the instance that owns the quoted flow") {
    rig.learn_peer();
    const SplitFlow f = split_flow(rig.steering());
    const uint16_t peer_port = f.peer_port;
    // What we would have sent: our_ip:7 -> peer_ip:peer_port.
    Ip quoted;
    quoted.src = our_ip;
    quoted.dst = peer_ip;
    quoted.protocol = 6;
    Bytes seg = tcp_syn(our_ip, peer_ip, 7, peer_port);
    Bytes q = ipv4(quoted, Bytes(seg.begin(), seg.begin() + 8));
    Ip outer;
    outer.protocol = 1;
    rig.rx(0, ether(our_mac, peer_mac, 0x0800, ipv4(outer, icmp(3, 1, 0, q))));
    rig.settle();
    CHECK(rig.count(f.flow_owner, Counter::icmp_errors_in) == 1);
    CHECK(rig.count(f.pair_owner, Counter::icmp_errors_in) == 0);
  }

  SECTION("active opens on instance 1 pick ports that hash to instance 1") {
    rig.learn_peer();
    rig.drain_tx();
    Quiet h;
    std::vector<keel::tcp::Tcb*> conns;
    for (int k = 0; k < 32; ++k) {
      auto c = rig.tcp(1).connect(peer_ip, 80, &h);
      REQUIRE(c.has_value());
      CHECK(rig.steering().owner(our_ip, peer_ip, (*c)->key.local_port, 80) == 1);
      conns.push_back(*c);
    }
    // A port the caller names must hash to it too.
    uint16_t theirs = 40000;
    while (rig.steering().owner(our_ip, peer_ip, theirs, 80) != 0) ++theirs;
    auto refused = rig.tcp(1).connect(peer_ip, 80, &h, theirs);
    REQUIRE(!refused.has_value());
    CHECK(refused.error() == keel::Errc::invalid_argument);
    rig.settle();
    CHECK(rig.count(1, Counter::steer_tx_handoff) == 32);
    CHECK(rig.drain_tx()[0].size() == 32);
    for (auto* c : conns) rig.tcp(1).abort(*c);
    rig.settle();
  }
}

TEST_CASE("steering: a queue per instance, frames on the wrong queue are forwarded", "[steer]") {
  Rig rig(2);
  REQUIRE(rig.engine().ports()[0].queues() == 2);
  rig.learn_peer();
  rig.drain_tx();
  unsigned owned[2] = {0, 0};
  SECTION("all on queue 0") {
    for (uint16_t k = 0; k < 64; ++k) {
      ++owned[owner_of_syn(rig.steering(), uint16_t(20000 + k))];
      rig.rx(0, syn_frame(uint16_t(20000 + k)));
    }
    rig.settle();
    CHECK(rig.count(0, Counter::steer_forwarded) == owned[1]);
    CHECK(rig.count(1, Counter::steer_received) == owned[1]);
  }
  SECTION("each on its owner's queue (what RSS with our RETA does): nothing forwarded") {
    for (uint16_t k = 0; k < 64; ++k) {
      uint16_t o = owner_of_syn(rig.steering(), uint16_t(20000 + k));
      ++owned[o];
      rig.rx(o, syn_frame(uint16_t(20000 + k)));
    }
    rig.settle();
    CHECK(rig.count(0, Counter::steer_forwarded) + rig.count(1, Counter::steer_forwarded) == 0);
  }
  CHECK(rig.tcp(0).connections() == owned[0]);
  CHECK(rig.tcp(1).connections() == owned[1]);
  // Each instance answers on its own queue: no hand-off.
  CHECK(rig.count(1, Counter::steer_tx_handoff) == 0);
  auto tx = rig.drain_tx();
  CHECK(tx[0].size() == owned[0]);
  CHECK(tx[1].size() == owned[1]);
}

}  // namespace
