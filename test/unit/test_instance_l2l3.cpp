// SPDX-License-Identifier: BSD-3-Clause
// The L2/L3 stack, packet by packet: a real engine::Instance over a real
// net_ring port. Frames the test enqueues on the port's RX ring go through
// rte_eth_rx_burst, Instance::poll(now) runs them, and whatever the stack
// transmits is read back from the TX ring and checked field by field, checksums
// included, against builders in frames.hpp that share no code with src/net.
// Time is explicit: every poll() names its now_ns, so timers (ARP retries and
// expiry, reassembly scans) are stepped exactly.
//
// Each test leaves the pool as it found it (Stack holds a PoolBaseline that is
// checked after the instance is destroyed and both rings are drained) and,
// where the test ends quiet, asserts held_frames() == 0.
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "drivers/port.hpp"
#include "drivers/ring_port.hpp"
#include "engine/instance.hpp"
#include "frames.hpp"
#include "test_support.hpp"

using namespace keel::test;
using keel::Errc;
using keel::drivers::Port;
using keel::drivers::PortConfig;
using keel::engine::Counter;
using keel::engine::counter_count;
using keel::engine::counter_name;
using keel::engine::IcmpError;
using keel::engine::Instance;
using keel::engine::InstanceConfig;
using keel::engine::InterfaceConfig;
using keel::engine::IpSend;
using keel::engine::Ipv4Meta;
using keel::engine::L4Checksum;
using keel::engine::L4Handler;
using keel::net::Ipv4Addr;
using keel::net::Ipv4Cidr;
using keel::net::load_be16;
using keel::net::MacAddr;
using keel::net::store_be16;

namespace {

constexpr uint64_t ms = 1'000'000;
constexpr uint64_t sec = 1'000'000'000;
constexpr uint64_t t0 = 100 * sec;  // the instance's (and its timer wheel's) origin

// ===== The port: one net_ring port per test process =====

struct TestPort {
  keel::drivers::RingPort ring;
  Port port;
};

/// Ring port names are process-global and ports cannot be removed, so every
/// test shares one port; Stack drains both rings before and after each test.
TestPort& test_port() {
  static TestPort tp = [] {
    auto rp = keel::drivers::create_ring_port("l2l3_unit", 1024);
    if (!rp) throw std::runtime_error(rp.error());
    PortConfig cfg;
    cfg.use_offloads = false;
    cfg.mac = our_mac;
    auto port = Port::start(rp->port_id, cfg, pool());
    if (!port) throw std::runtime_error(port.error());
    return TestPort{*rp, *port};
  }();
  return tp;
}

InterfaceConfig default_l3() {
  InterfaceConfig l3;
  l3.addrs = {Ipv4Cidr{our_ip, 24}};
  l3.gateway = peer_ip;
  return l3;
}

/// Counters whose value changed, as "name=delta ..." in counter order (the
/// byte counters are left out: tests check them where they matter).
class CounterSnapshot {
 public:
  explicit CounterSnapshot(const Instance& inst) : inst_(inst) { reset(); }
  void reset() {
    for (size_t i = 0; i < counter_count; ++i) base_[i] = inst_.counters().get(Counter(i));
  }
  std::string changed() const {
    std::ostringstream os;
    for (size_t i = 0; i < counter_count; ++i) {
      auto c = Counter(i);
      if (c == Counter::rx_bytes || c == Counter::tx_bytes) continue;
      uint64_t d = inst_.counters().get(c) - base_[i];
      if (d != 0) os << (os.tellp() ? " " : "") << counter_name(c) << "=" << d;
    }
    return os.str();
  }

 private:
  const Instance& inst_;
  uint64_t base_[counter_count];
};

/// One instance with one interface on the test port.
class Stack {
 public:
  explicit Stack(const InstanceConfig& cfg = {}, const InterfaceConfig& l3 = default_l3())
      : port_((drain(), test_port())),
        inst_(std::make_unique<Instance>(cfg, t0)),
        ifc_(&inst_->add_interface(port_.port, 0, l3, pool())),
        snap_(*inst_) {}
  ~Stack() {
    drain();
    snap_.reset();
    inst_.reset();  // frees what it still holds
    drain();
    // baseline_ (the first member) is checked after this, with everything gone.
  }

  Instance& inst() { return *inst_; }
  keel::engine::Interface& ifc() { return *ifc_; }
  /// Counter deltas since construction or the last mark().
  std::string changed() const { return snap_.changed(); }
  void mark() { snap_.reset(); }
  uint64_t count(Counter c) const { return inst_->counters().get(c); }

  /// Puts a frame on the port's RX ring (received on the next poll).
  void rx(const Bytes& frame) { rx(make_mbuf(frame)); }
  void rx(rte_mbuf* m) { REQUIRE(rte_ring_enqueue(port_.ring.rx, m) == 0); }
  unsigned poll(uint64_t now) { return inst_->poll(now); }
  /// rx(frame) then poll(now).
  void feed(const Bytes& frame, uint64_t now) {
    rx(frame);
    poll(now);
  }

  /// Every frame transmitted since the last call, in order.
  std::vector<Bytes> tx() {
    std::vector<Bytes> out;
    void* m = nullptr;
    while (rte_ring_dequeue(port_.ring.tx, &m) == 0) {
      auto* mb = static_cast<rte_mbuf*>(m);
      out.push_back(bytes_of(mb));
      REQUIRE(out.back().size() == mb->pkt_len);
      rte_pktmbuf_free(mb);
    }
    return out;
  }
  Bytes tx_one() {
    auto v = tx();
    REQUIRE(v.size() == 1);
    return v.front();
  }
  void no_tx() { REQUIRE(tx().empty()); }

  /// Sends `payload` in a UDP datagram from our_ip:4000 to dst:5000 through
  /// ip_output (checksum computed by the stack), then flushes.
  keel::Result<void> send_udp(Ipv4Addr dst, const Bytes& payload, uint64_t now,
                              bool dont_fragment = true) {
    Bytes u = udp(our_ip, dst, 4000, 5000, payload);
    u[6] = u[7] = 0;
    IpSend p;
    p.dst = dst;
    p.protocol = 17;
    p.l4 = L4Checksum::udp;
    p.dont_fragment = dont_fragment;
    // Large datagrams in two segments, the UDP header in the first.
    rte_mbuf* m = u.size() > 1500 ? make_chain(u, {1024, 1024, 1024}) : make_mbuf(u);
    auto r = inst_->ip_output(m, p, now);
    inst_->flush(now);
    return r;
  }

  /// Teaches the stack `ip` is at `mac` (an ARP reply to us) and forgets the counters it moved.
  void learn(Ipv4Addr ip, MacAddr mac, uint64_t now = t0) {
    feed(ether(our_mac, mac, 0x0806, arp_reply(mac, ip, our_mac, our_ip)), now);
    no_tx();
    mark();
  }

 private:
  void drain() {
    TestPort& p = test_port();
    void* m = nullptr;
    while (rte_ring_dequeue(p.ring.rx, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
    while (rte_ring_dequeue(p.ring.tx, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
  }

  PoolBaseline baseline_;
  TestPort& port_;
  std::unique_ptr<Instance> inst_;
  keel::engine::Interface* ifc_;
  CounterSnapshot snap_;
};

/// An L4 handler that records what it is given.
struct Recorder : L4Handler {
  struct Datagram {
    Bytes bytes;
    Ipv4Meta meta;
    uint16_t segs;
    uint64_t now;
  };
  struct Error {
    IcmpError err;  ///< quoted_l4 points into the stack's scratch: use `quoted`
    Bytes quoted;
    uint64_t now;
  };
  std::vector<Datagram> datagrams;
  std::vector<Error> errors;

  void on_datagram(Instance&, rte_mbuf* m, const Ipv4Meta& ip, uint64_t now_ns) override {
    datagrams.push_back({bytes_of(m), ip, m->nb_segs, now_ns});
    rte_pktmbuf_free(m);
  }
  void on_icmp_error(Instance&, const IcmpError& err, uint64_t now_ns) override {
    Error e{err, Bytes(err.quoted_l4, err.quoted_l4 + err.quoted_l4_len), now_ns};
    e.err.quoted_l4 = nullptr;
    errors.push_back(e);
  }
};

/// An IPv4 frame from the peer to us.
Bytes ip_frame(const Ip& ip, const Bytes& payload, MacAddr dst_mac = our_mac) {
  return ether(dst_mac, peer_mac, 0x0800, ipv4(ip, payload));
}

/// A UDP datagram from peer_ip:7000 to `dst`:9000 in a frame.
Bytes udp_frame(const Bytes& payload, Ipv4Addr dst = our_ip, Ip ip = {}) {
  ip.dst = dst;
  ip.protocol = 17;
  return ip_frame(ip, udp(ip.src, dst, 7000, 9000, payload));
}

/// Checks an emitted ARP frame and returns its message.
Arp check_arp_frame(const Bytes& f, MacAddr eth_dst) {
  REQUIRE(f.size() == 14 + 28);  // no padding: the port adds it
  EthFrame e = parse_ether(f);
  REQUIRE(e.dst == eth_dst);
  REQUIRE(e.src == our_mac);
  REQUIRE(e.type == 0x0806);
  Arp a = parse_arp_bytes(e.payload);
  REQUIRE(a.htype == 1);
  REQUIRE(a.ptype == 0x0800);
  REQUIRE(a.hlen == 6);
  REQUIRE(a.plen == 4);
  return a;
}

/// Checks an ARP request from us for `target`.
void check_arp_request(const Bytes& f, Ipv4Addr target, MacAddr eth_dst = MacAddr::broadcast()) {
  Arp a = check_arp_frame(f, eth_dst);
  REQUIRE(a.oper == 1);
  REQUIRE(a.sha == our_mac);
  REQUIRE(a.spa == our_ip);
  REQUIRE(a.tha == MacAddr{});
  REQUIRE(a.tpa == target);
}

/// Checks a frame carrying a UDP datagram we sent with send_udp and returns its payload.
Bytes check_udp_frame(const Bytes& f, MacAddr eth_dst, Ipv4Addr ip_dst) {
  EthFrame e = parse_ether(f);
  REQUIRE(e.dst == eth_dst);
  REQUIRE(e.src == our_mac);
  REQUIRE(e.type == 0x0800);
  IpPacket p = parse_ipv4(e.payload);
  REQUIRE(p.hdr.options.empty());
  REQUIRE(p.hdr.tos == 0);
  REQUIRE(p.hdr.df);
  REQUIRE_FALSE(p.hdr.mf);
  REQUIRE(p.hdr.frag_off == 0);
  REQUIRE(p.hdr.ttl == 64);
  REQUIRE(p.hdr.protocol == 17);
  REQUIRE(p.hdr.src == our_ip);
  REQUIRE(p.hdr.dst == ip_dst);
  REQUIRE(p.payload.size() >= 8);
  REQUIRE(load_be16(&p.payload[0]) == 4000);
  REQUIRE(load_be16(&p.payload[2]) == 5000);
  REQUIRE(load_be16(&p.payload[4]) == p.payload.size());
  REQUIRE(fold_cksum(sum16(p.payload.data(), p.payload.size(),
                           pseudo_sum(our_ip, ip_dst, 17, p.payload.size()))) == 0);
  return Bytes(p.payload.begin() + 8, p.payload.end());
}

}  // namespace

// ===== Start-up =====

TEST_CASE("instance: start() announces our address with a gratuitous ARP", "[instance]") {
  Stack s;
  s.inst().start(t0);
  Arp a = check_arp_frame(s.tx_one(), MacAddr::broadcast());
  REQUIRE(a.oper == 1);
  REQUIRE(a.sha == our_mac);
  REQUIRE(a.spa == our_ip);
  REQUIRE(a.tha == MacAddr{});
  REQUIRE(a.tpa == our_ip);
  REQUIRE(s.changed() == "tx_packets=1 arp_requests_out=1");
  REQUIRE(s.count(Counter::tx_bytes) == 42);
  REQUIRE(s.inst().held_frames() == 0);
}

// ===== Ethernet =====

TEST_CASE("instance: Ethernet frames that are not for us are counted and freed", "[instance]") {
  Stack s;
  SECTION("empty frame") {
    s.feed({}, t0);
    REQUIRE(s.changed() == "rx_packets=1 eth_truncated=1");
  }
  SECTION("truncated at every byte of the header") {
    Bytes f = ether(our_mac, peer_mac, 0x0806, {});
    for (size_t len = 1; len < 14; ++len) s.rx(Bytes(f.begin(), f.begin() + ptrdiff_t(len)));
    s.poll(t0);
    REQUIRE(s.changed() == "rx_packets=13 eth_truncated=13");
  }
  SECTION("another host's MAC") {
    s.feed(ether(other_mac, peer_mac, 0x0806, arp_request(peer_mac, peer_ip, our_ip)), t0);
    REQUIRE(s.changed() == "rx_packets=1 eth_not_for_us=1");
  }
  SECTION("a multicast MAC") {
    Bytes f = udp_frame(pattern(4));
    MacAddr{{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}}.to_bytes(&f[0]);
    s.feed(f, t0);
    REQUIRE(s.changed() == "rx_packets=1 eth_not_for_us=1");
  }
  SECTION("unknown EtherType (IPv6)") {
    s.feed(ether(our_mac, peer_mac, 0x86dd, pattern(40)), t0);
    REQUIRE(s.changed() == "rx_packets=1 eth_unknown_type=1");
  }
  SECTION("an 802.3 length field instead of an EtherType") {
    s.feed(ether(our_mac, peer_mac, 46, pattern(46)), t0);
    REQUIRE(s.changed() == "rx_packets=1 eth_unknown_type=1");
  }
  SECTION("VLAN-tagged (802.1Q): keel runs untagged, the tag is not stripped") {
    Bytes tag = {0x00, 0x05, 0x08, 0x00};  // VID 5, then IPv4
    s.feed(ether(our_mac, peer_mac, 0x8100, cat(tag, ipv4({}, udp(peer_ip, our_ip, 1, 2, {})))),
           t0);
    REQUIRE(s.changed() == "rx_packets=1 eth_unknown_type=1");
  }
  s.no_tx();
  REQUIRE(s.inst().held_frames() == 0);
}

TEST_CASE("instance: broadcast frames are accepted", "[instance]") {
  Recorder rec;
  Stack s;
  s.inst().register_protocol(17, &rec);
  s.feed(ether(MacAddr::broadcast(), peer_mac, 0x0806, arp_request(peer_mac, peer_ip, our_ip)), t0);
  REQUIRE(s.tx().size() == 1);  // the ARP reply
  Bytes u = udp(peer_ip, Ipv4Addr::broadcast(), 7000, 9000, pattern(3));
  Ip ip;
  ip.dst = Ipv4Addr::broadcast();
  s.feed(ether(MacAddr::broadcast(), peer_mac, 0x0800, ipv4(ip, u)), t0);
  REQUIRE(rec.datagrams.size() == 1);
  REQUIRE(rec.datagrams[0].bytes == u);
  REQUIRE(s.changed() == "rx_packets=2 tx_packets=1 arp_requests_in=1 arp_replies_out=1 ip_in=1");
}

// ===== ARP =====

TEST_CASE("instance: ARP request for us gets the exact reply and teaches the sender",
          "[instance]") {
  Stack s;
  // Ethernet pads the request to 60 bytes; the reply is built fresh.
  s.feed(ether(MacAddr::broadcast(), peer_mac, 0x0806, arp_request(peer_mac, peer_ip, our_ip), 60),
         t0);
  Bytes want = ether(peer_mac, our_mac, 0x0806, arp_reply(our_mac, our_ip, peer_mac, peer_ip));
  REQUIRE(s.tx_one() == want);
  REQUIRE(s.changed() == "rx_packets=1 tx_packets=1 arp_requests_in=1 arp_replies_out=1");
  REQUIRE(s.count(Counter::rx_bytes) == 60);
  REQUIRE(s.count(Counter::tx_bytes) == 42);

  // The sender is known now: a datagram to it leaves at once, no request.
  s.mark();
  REQUIRE(s.send_udp(peer_ip, pattern(5), t0 + 1 * ms));
  REQUIRE(check_udp_frame(s.tx_one(), peer_mac, peer_ip) == pattern(5));
  REQUIRE(s.changed() == "tx_packets=1 ip_out=1");
  REQUIRE(s.inst().held_frames() == 0);
}

TEST_CASE("instance: ARP request for us in a chained frame", "[instance]") {
  Stack s;
  Bytes f =
      ether(MacAddr::broadcast(), peer_mac, 0x0806, arp_request(peer_mac, peer_ip, our_ip), 60);
  SECTION("the padding in a second segment") { s.rx(make_chain(f, {50})); }
  SECTION("the message split across segments") { s.rx(make_chain(f, {14, 10, 1})); }
  s.poll(t0);
  REQUIRE(s.tx_one() ==
          ether(peer_mac, our_mac, 0x0806, arp_reply(our_mac, our_ip, peer_mac, peer_ip)));
  REQUIRE(s.changed() == "rx_packets=1 tx_packets=1 arp_requests_in=1 arp_replies_out=1");
}

TEST_CASE("instance: ARP request for another address", "[instance]") {
  Stack s;
  s.feed(ether(MacAddr::broadcast(), peer_mac, 0x0806, arp_request(peer_mac, peer_ip, other_ip)),
         t0);
  s.no_tx();
  REQUIRE(s.changed() == "rx_packets=1 arp_not_for_us=1 arp_requests_in=1");
  // Not learned: not for us, and the sender was not known (RFC 826 merge rule).
  s.mark();
  REQUIRE(s.send_udp(peer_ip, pattern(1), t0));
  check_arp_request(s.tx_one(), peer_ip);
  REQUIRE(s.changed() == "tx_packets=1 arp_requests_out=1 ip_out=1");
}

TEST_CASE("instance: gratuitous ARP", "[instance]") {
  Stack s;
  SECTION("from a host we do not know: not learned, not a question") {
    s.feed(
        ether(MacAddr::broadcast(), other_mac, 0x0806, arp_request(other_mac, other_ip, other_ip)),
        t0);
    s.no_tx();
    REQUIRE(s.changed() == "rx_packets=1 arp_requests_in=1");
    s.mark();
    REQUIRE(s.send_udp(other_ip, pattern(1), t0));
    check_arp_request(s.tx_one(), other_ip);
    REQUIRE(s.inst().held_frames() == 1);  // waiting for the answer; freed with the instance
  }
  SECTION("from a neighbour we know: its new MAC is used at once") {
    s.learn(other_ip, other_mac);
    MacAddr moved{{0x02, 0x00, 0x00, 0x00, 0x00, 0x33}};
    s.feed(ether(MacAddr::broadcast(), moved, 0x0806, arp_request(moved, other_ip, other_ip)), t0);
    s.no_tx();
    REQUIRE(s.changed() == "rx_packets=1 arp_requests_in=1");
    REQUIRE(s.send_udp(other_ip, pattern(2), t0));
    REQUIRE(check_udp_frame(s.tx_one(), moved, other_ip) == pattern(2));
  }
  SECTION("a gratuitous reply (sender == target) from a neighbour we know") {
    s.learn(other_ip, other_mac);
    MacAddr moved{{0x02, 0x00, 0x00, 0x00, 0x00, 0x34}};
    s.feed(ether(MacAddr::broadcast(), moved, 0x0806,
                 arp_reply(moved, other_ip, MacAddr::broadcast(), other_ip)),
           t0);
    s.no_tx();
    REQUIRE(s.changed() == "rx_packets=1 arp_replies_in=1");
    REQUIRE(s.send_udp(other_ip, pattern(2), t0));
    REQUIRE(check_udp_frame(s.tx_one(), moved, other_ip) == pattern(2));
    REQUIRE(s.inst().held_frames() == 0);
  }
}

TEST_CASE("instance: ARP reply to us is learned", "[instance]") {
  Stack s;
  s.feed(ether(our_mac, other_mac, 0x0806, arp_reply(other_mac, other_ip, our_mac, our_ip)), t0);
  s.no_tx();
  REQUIRE(s.changed() == "rx_packets=1 arp_replies_in=1");
  s.mark();
  REQUIRE(s.send_udp(other_ip, pattern(9), t0));
  REQUIRE(check_udp_frame(s.tx_one(), other_mac, other_ip) == pattern(9));
  REQUIRE(s.changed() == "tx_packets=1 ip_out=1");
}

TEST_CASE("instance: ARP senders that must not be learned", "[instance]") {
  Stack s;
  SECTION("a probe (sender 0.0.0.0, RFC 5227) for our address is answered, not learned") {
    s.feed(ether(MacAddr::broadcast(), other_mac, 0x0806,
                 arp_request(other_mac, Ipv4Addr::any(), our_ip)),
           t0);
    REQUIRE(s.tx_one() == ether(other_mac, our_mac, 0x0806,
                                arp_reply(our_mac, our_ip, other_mac, Ipv4Addr::any())));
    REQUIRE(s.ifc().arp.size() == 0);
  }
  SECTION("a multicast sender hardware address") {
    MacAddr mc{{0x01, 0x00, 0x5e, 0x00, 0x00, 0x07}};
    s.feed(ether(our_mac, other_mac, 0x0806, arp_reply(mc, other_ip, our_mac, our_ip)), t0);
    s.no_tx();
    REQUIRE(s.ifc().arp.size() == 0);
  }
}

TEST_CASE("instance: malformed ARP is counted by reason", "[instance]") {
  Stack s;
  Arp good{.oper = 1, .sha = peer_mac, .spa = peer_ip, .tpa = our_ip};
  auto send = [&](Arp a) { s.feed(ether(our_mac, peer_mac, 0x0806, arp(a)), t0); };
  SECTION("htype") {
    Arp a = good;
    a.htype = 6;
    send(a);
    REQUIRE(s.changed() == "rx_packets=1 arp_bad_format=1");
  }
  SECTION("ptype") {
    Arp a = good;
    a.ptype = 0x86dd;
    send(a);
    REQUIRE(s.changed() == "rx_packets=1 arp_bad_format=1");
  }
  SECTION("hlen") {
    Arp a = good;
    a.hlen = 8;
    send(a);
    REQUIRE(s.changed() == "rx_packets=1 arp_bad_format=1");
  }
  SECTION("plen") {
    Arp a = good;
    a.plen = 16;
    send(a);
    REQUIRE(s.changed() == "rx_packets=1 arp_bad_format=1");
  }
  SECTION("opcode") {
    for (uint16_t op : {0, 3, 4, 0x0100}) {
      Arp a = good;
      a.oper = op;
      send(a);
    }
    REQUIRE(s.changed() == "rx_packets=4 arp_bad_opcode=4");
  }
  SECTION("truncated at every byte") {
    Bytes full = arp(good);
    for (size_t len = 0; len < 28; ++len)
      s.rx(ether(our_mac, peer_mac, 0x0806, Bytes(full.begin(), full.begin() + ptrdiff_t(len))));
    s.poll(t0);
    REQUIRE(s.changed() == "rx_packets=28 arp_truncated=28");
  }
  s.no_tx();
  REQUIRE(s.ifc().arp.size() == 0);
  REQUIRE(s.inst().held_frames() == 0);
}

// ===== ARP resolution =====

TEST_CASE("instance: resolution queues, overflows, then flushes in order", "[instance]") {
  Stack s;
  const uint32_t max_pending = s.ifc().arp.config().max_pending;
  REQUIRE(s.send_udp(other_ip, Bytes{0}, t0));
  check_arp_request(s.tx_one(), other_ip);
  REQUIRE(s.inst().held_frames() == 1);
  // The rest of the queue, then two that do not fit; no second request.
  for (uint32_t i = 1; i < max_pending + 2; ++i)
    REQUIRE(s.send_udp(other_ip, Bytes{uint8_t(i)}, t0));
  s.no_tx();
  REQUIRE(s.inst().held_frames() == max_pending);
  REQUIRE(s.changed() == "tx_packets=1 arp_requests_out=1 arp_pending_overflow=2 ip_out=" +
                             std::to_string(max_pending + 2));

  s.mark();
  s.feed(ether(our_mac, other_mac, 0x0806, arp_reply(other_mac, other_ip, our_mac, our_ip)),
         t0 + 5 * ms);
  auto out = s.tx();
  REQUIRE(out.size() == max_pending);
  for (uint32_t i = 0; i < max_pending; ++i) {
    INFO("frame " << i);
    REQUIRE(check_udp_frame(out[i], other_mac, other_ip) == Bytes{uint8_t(i)});
  }
  REQUIRE(s.changed() ==
          "rx_packets=1 tx_packets=" + std::to_string(max_pending) + " arp_replies_in=1");
  REQUIRE(s.inst().held_frames() == 0);
  // No retry is left armed: a second later nothing is sent.
  s.poll(t0 + 2 * sec);
  s.no_tx();
}

TEST_CASE("instance: resolution retries every retry_ns and gives up after max_probes",
          "[instance]") {
  InstanceConfig cfg;
  cfg.arp.retry_ns = 250 * ms;
  cfg.arp.max_probes = 4;
  Stack s(cfg);
  REQUIRE(s.send_udp(other_ip, pattern(1), t0));
  REQUIRE(s.send_udp(other_ip, pattern(2), t0));
  REQUIRE(s.send_udp(other_ip, pattern(3), t0));
  check_arp_request(s.tx_one(), other_ip);
  for (uint32_t probe = 2; probe <= cfg.arp.max_probes; ++probe) {
    INFO("probe " << probe);
    uint64_t due = t0 + (probe - 1) * cfg.arp.retry_ns;
    s.poll(due - 1 * ms);
    s.no_tx();
    s.poll(due);
    check_arp_request(s.tx_one(), other_ip);  // still broadcast
    REQUIRE(s.inst().held_frames() == 3);
  }
  REQUIRE(s.count(Counter::arp_requests_out) == cfg.arp.max_probes);
  s.mark();
  uint64_t give_up = t0 + cfg.arp.max_probes * cfg.arp.retry_ns;
  s.poll(give_up - 1 * ms);
  REQUIRE(s.inst().held_frames() == 3);
  s.poll(give_up);
  s.no_tx();
  REQUIRE(s.changed() == "arp_pending_timeout=3");
  REQUIRE(s.inst().held_frames() == 0);
  REQUIRE(s.ifc().arp.size() == 0);

  // The entry is gone: the next datagram starts a new resolution.
  s.mark();
  REQUIRE(s.send_udp(other_ip, pattern(4), give_up + 10 * ms));
  check_arp_request(s.tx_one(), other_ip);
  REQUIRE(s.changed() == "tx_packets=1 arp_requests_out=1 ip_out=1");
}

TEST_CASE("instance: a reachable entry goes stale and is refreshed by unicast", "[instance]") {
  InstanceConfig cfg;
  cfg.arp.reachable_ns = 10 * sec;
  cfg.arp.retry_ns = 1 * sec;
  cfg.arp.max_probes = 3;
  Stack s(cfg);
  s.learn(other_ip, other_mac, t0);
  s.poll(t0 + cfg.arp.reachable_ns - 1 * ms);
  s.no_tx();
  uint64_t stale_at = t0 + cfg.arp.reachable_ns;
  s.poll(stale_at);
  check_arp_request(s.tx_one(), other_ip, other_mac);  // unicast to the MAC we have
  REQUIRE(s.changed() == "tx_packets=1 arp_requests_out=1");
  // While stale the entry is still used, without waiting.
  REQUIRE(s.send_udp(other_ip, pattern(6), stale_at + 1 * ms));
  REQUIRE(check_udp_frame(s.tx_one(), other_mac, other_ip) == pattern(6));
  REQUIRE(s.inst().held_frames() == 0);

  SECTION("confirmed: reachable again, no more requests until it expires again") {
    uint64_t confirm = stale_at + 300 * ms;
    s.feed(ether(our_mac, other_mac, 0x0806, arp_reply(other_mac, other_ip, our_mac, our_ip)),
           confirm);
    s.no_tx();
    s.poll(stale_at + 3 * sec);
    s.no_tx();
    s.poll(confirm + cfg.arp.reachable_ns - 1 * ms);
    s.no_tx();
    s.poll(confirm + cfg.arp.reachable_ns);
    check_arp_request(s.tx_one(), other_ip, other_mac);
  }
  SECTION("unanswered: more unicast probes, then the entry is dropped") {
    for (uint32_t probe = 2; probe <= cfg.arp.max_probes; ++probe) {
      s.poll(stale_at + (probe - 1) * cfg.arp.retry_ns);
      check_arp_request(s.tx_one(), other_ip, other_mac);
    }
    s.poll(stale_at + cfg.arp.max_probes * cfg.arp.retry_ns);
    s.no_tx();
    REQUIRE(s.ifc().arp.size() == 0);
    // Resolution starts over with a broadcast.
    REQUIRE(s.send_udp(other_ip, pattern(7), stale_at + 10 * sec));
    check_arp_request(s.tx_one(), other_ip);
  }
}

TEST_CASE("instance: an off-link destination goes via the gateway's MAC", "[instance]") {
  Stack s;
  REQUIRE(s.send_udp(far_ip, pattern(11), t0));
  check_arp_request(s.tx_one(), peer_ip);  // the gateway is resolved, not far_ip
  s.feed(ether(our_mac, peer_mac, 0x0806, arp_reply(peer_mac, peer_ip, our_mac, our_ip)), t0 + ms);
  REQUIRE(check_udp_frame(s.tx_one(), peer_mac, far_ip) == pattern(11));
  REQUIRE(s.inst().held_frames() == 0);
}

TEST_CASE("instance: no route without a gateway", "[instance]") {
  InterfaceConfig l3;
  l3.addrs = {Ipv4Cidr{our_ip, 24}};
  Stack s({}, l3);
  auto r = s.send_udp(far_ip, pattern(11), t0);
  REQUIRE_FALSE(r);
  REQUIRE(r.error() == Errc::unreachable);
  s.no_tx();
  REQUIRE(s.changed() == "ip_no_route=1");
  // On-link still works.
  REQUIRE(s.send_udp(other_ip, pattern(1), t0));
  check_arp_request(s.tx_one(), other_ip);
}

TEST_CASE("instance: a full ARP table neither resolves nor learns more", "[instance]") {
  InstanceConfig cfg;
  cfg.arp.max_entries = 2;
  Stack s(cfg);
  s.learn(peer_ip, peer_mac);
  REQUIRE(s.send_udp(other_ip, pattern(1), t0));  // the second entry: incomplete
  check_arp_request(s.tx_one(), other_ip);
  s.mark();
  Ipv4Addr fourth{198, 18, 0, 4};
  auto r = s.send_udp(fourth, pattern(2), t0);  // no room: freed at once
  REQUIRE(r);                                   // ip_output took it; the drop is counted
  s.no_tx();
  MacAddr fourth_mac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x04}};
  s.feed(ether(our_mac, fourth_mac, 0x0806, arp_reply(fourth_mac, fourth, our_mac, our_ip)), t0);
  s.no_tx();
  REQUIRE(s.changed() == "rx_packets=1 arp_replies_in=1 arp_table_full=2 ip_out=1");
  REQUIRE(s.ifc().arp.size() == 2);
  REQUIRE(s.inst().held_frames() == 1);
}

// ===== IPv4 output =====

TEST_CASE("instance: ip_output at and beyond the MTU", "[instance]") {
  Stack s;
  s.learn(peer_ip, peer_mac);
  SECTION("exactly the MTU goes out whole") {
    REQUIRE(s.send_udp(peer_ip, pattern(1500 - 28), t0));
    Bytes f = s.tx_one();
    REQUIRE(f.size() == 14 + 1500);
    REQUIRE(check_udp_frame(f, peer_mac, peer_ip) == pattern(1500 - 28));
  }
  SECTION("one byte more with DF is refused") {
    auto r = s.send_udp(peer_ip, pattern(1500 - 27), t0);
    REQUIRE_FALSE(r);
    REQUIRE(r.error() == Errc::invalid_argument);
    s.no_tx();
    REQUIRE(s.changed() == "ip_too_big_df=1");  // refused and counted
  }
  SECTION("without DF it is fragmented, and the pieces make the datagram") {
    Bytes payload = pattern(3333, 0x77);
    REQUIRE(s.send_udp(peer_ip, payload, t0, false));
    auto out = s.tx();
    REQUIRE(out.size() == 3);
    Bytes whole;
    uint16_t id = 0;
    for (size_t i = 0; i < out.size(); ++i) {
      INFO("fragment " << i);
      EthFrame e = parse_ether(out[i]);
      REQUIRE(e.dst == peer_mac);
      IpPacket p = parse_ipv4(e.payload);
      if (i == 0) id = p.hdr.id;
      REQUIRE(p.hdr.id == id);
      REQUIRE_FALSE(p.hdr.df);
      REQUIRE(p.hdr.mf == (i < 2));
      REQUIRE(p.hdr.frag_off == whole.size());  // sent in order
      REQUIRE(p.hdr.protocol == 17);
      REQUIRE(p.hdr.src == our_ip);
      REQUIRE(p.hdr.dst == peer_ip);
      REQUIRE(p.total_len == (i < 2 ? 1500 : 20 + 8 + 3333 - 2 * 1480));
      whole = cat(whole, p.payload);
    }
    REQUIRE(whole == udp(our_ip, peer_ip, 4000, 5000, payload));  // UDP checksum over all of it
    REQUIRE(s.changed() == "tx_packets=3 ip_out=1");
  }
  REQUIRE(s.inst().held_frames() == 0);
}

TEST_CASE("instance: ip_output of a chain with odd segments", "[instance]") {
  Stack s;
  s.learn(peer_ip, peer_mac);
  Bytes payload = pattern(777, 0x21);
  Bytes u = udp(our_ip, peer_ip, 4000, 5000, payload);
  u[6] = u[7] = 0;
  IpSend p;
  p.dst = peer_ip;
  p.protocol = 17;
  p.l4 = L4Checksum::udp;
  // The UDP header in the first segment (ip_output's precondition), the
  // payload cut at odd lengths so the checksum's byte pairing shifts.
  REQUIRE(s.inst().ip_output(make_chain(u, {8, 3, 250, 1, 99}), p, t0));
  s.inst().flush(t0);
  REQUIRE(check_udp_frame(s.tx_one(), peer_mac, peer_ip) == payload);
  REQUIRE(s.inst().held_frames() == 0);
}

// ===== IPv4 input =====

TEST_CASE("instance: malformed IPv4 is counted by reason", "[instance]") {
  Recorder rec;
  Stack s;
  s.inst().register_protocol(17, &rec);
  const Bytes good = ipv4({}, udp(peer_ip, our_ip, 7000, 9000, pattern(12)));  // 40 bytes
  auto edited = [&](auto edit, bool fix_cksum = true) {
    Bytes f = ether(our_mac, peer_mac, 0x0800, good);
    edit(f);
    if (fix_cksum) fix_ip_cksum(f);
    return f;
  };
  SECTION("truncated at every byte up to 20") {
    for (size_t len = 0; len < 20; ++len)
      s.rx(ether(our_mac, peer_mac, 0x0800, Bytes(good.begin(), good.begin() + ptrdiff_t(len))));
    s.poll(t0);
    REQUIRE(s.changed() == "rx_packets=20 ip_in=20 ip_truncated=20");
  }
  SECTION("version != 4") {
    for (uint8_t v : {0, 6, 15}) s.feed(edited([&](Bytes& f) { f[14] = uint8_t(v << 4 | 5); }), t0);
    REQUIRE(s.changed() == "rx_packets=3 ip_in=3 ip_bad_version=3");
  }
  SECTION("IHL < 5") {
    for (uint8_t ihl = 0; ihl < 5; ++ihl)
      s.feed(edited([&](Bytes& f) { f[14] = uint8_t(0x40 | ihl); }, false), t0);
    REQUIRE(s.changed() == "rx_packets=5 ip_in=5 ip_bad_ihl=5");
  }
  SECTION("IHL beyond the frame") {
    // 40 bytes of packet, IHL 11 (44) and 15 (60).
    s.feed(edited([&](Bytes& f) { f[14] = 0x4b; }, false), t0);
    s.feed(edited([&](Bytes& f) { f[14] = 0x4f; }, false), t0);
    REQUIRE(s.changed() == "rx_packets=2 ip_in=2 ip_bad_ihl=2");
  }
  SECTION("total length < IHL") {
    s.feed(edited([&](Bytes& f) { store_be16(&f[16], 19); }), t0);
    s.feed(edited([&](Bytes& f) { store_be16(&f[16], 0); }), t0);
    REQUIRE(s.changed() == "rx_packets=2 ip_in=2 ip_bad_total_length=2");
  }
  SECTION("total length > frame") {
    s.feed(edited([&](Bytes& f) { store_be16(&f[16], 41); }), t0);
    s.feed(edited([&](Bytes& f) { store_be16(&f[16], 0xffff); }), t0);
    REQUIRE(s.changed() == "rx_packets=2 ip_in=2 ip_bad_total_length=2");
  }
  SECTION("bad header checksum") {
    s.feed(edited([&](Bytes& f) { f[14 + 10] ^= 0x01; }, false), t0);
    s.feed(edited([&](Bytes& f) { f[14 + 8] = 63; }, false), t0);  // TTL changed, checksum not
    REQUIRE(s.changed() == "rx_packets=2 ip_in=2 ip_bad_checksum=2");
  }
  SECTION("the port's verdict on the checksum wins") {
    rte_mbuf* bad = make_mbuf(ether(our_mac, peer_mac, 0x0800, good));
    bad->ol_flags |= RTE_MBUF_F_RX_IP_CKSUM_BAD;  // a correct header the NIC says is bad
    s.rx(bad);
    rte_mbuf* trusted = make_mbuf(edited([&](Bytes& f) { f[14 + 10] ^= 0x01; }, false));
    trusted->ol_flags |= RTE_MBUF_F_RX_IP_CKSUM_GOOD | RTE_MBUF_F_RX_L4_CKSUM_GOOD;
    s.rx(trusted);
    s.poll(t0);
    REQUIRE(s.changed() == "rx_packets=2 ip_in=2 ip_bad_checksum=1");
    REQUIRE(rec.datagrams.size() == 1);
    REQUIRE(rec.datagrams[0].meta.l4_cksum_good);
  }
  SECTION("bad source: broadcast, multicast, loopback") {
    for (Ipv4Addr src : {Ipv4Addr::broadcast(), Ipv4Addr{224, 0, 0, 1}, Ipv4Addr{239, 1, 2, 3},
                         Ipv4Addr{127, 0, 0, 1}, Ipv4Addr{127, 9, 9, 9}}) {
      Ip ip;
      ip.src = src;
      s.rx(ip_frame(ip, udp(src, our_ip, 1, 2, {})));
    }
    s.poll(t0);
    REQUIRE(s.changed() == "rx_packets=5 ip_in=5 ip_bad_source=5");
  }
  SECTION("our own address as source (spoofed or looped back)") {
    Ip ip;
    ip.src = our_ip;
    ip.protocol = 1;
    s.feed(ip_frame(ip, echo_request(1, 1, pattern(8))), t0);
    REQUIRE(s.changed() == "rx_packets=1 ip_in=1 ip_bad_source=1");
    REQUIRE(s.ifc().arp.size() == 0);  // and no ARP for ourselves
  }
  SECTION("0.0.0.0 as source, except to the limited broadcast (RFC 1122 3.2.1.3 (a))") {
    Ip ip;
    ip.src = Ipv4Addr::any();
    s.rx(ip_frame(ip, udp(ip.src, our_ip, 68, 67, {})));
    ip.dst = Ipv4Addr::broadcast();
    s.rx(ip_frame(ip, udp(ip.src, ip.dst, 68, 67, {})));
    s.poll(t0);
    REQUIRE(s.changed() == "rx_packets=2 ip_in=2 ip_bad_source=1");
    REQUIRE(rec.datagrams.size() == 1);
    REQUIRE(rec.datagrams[0].meta.dst == Ipv4Addr::broadcast());
  }
  SECTION("not our address") {
    for (Ipv4Addr dst : {other_ip, Ipv4Addr{198, 18, 0, 0}, Ipv4Addr{198, 18, 1, 255}, far_ip,
                         Ipv4Addr{224, 0, 0, 1}}) {
      Ip ip;
      ip.dst = dst;
      s.rx(ip_frame(ip, udp(peer_ip, dst, 1, 2, {})));
    }
    s.poll(t0);
    REQUIRE(s.changed() == "rx_packets=5 ip_in=5 ip_not_for_us=5");
  }
  SECTION("unknown protocol") {
    Ip ip;
    ip.protocol = 99;
    s.feed(ip_frame(ip, pattern(10)), t0);
    ip.protocol = 6;  // TCP has no handler in this test
    s.feed(ip_frame(ip, pattern(20)), t0);
    REQUIRE(s.changed() == "rx_packets=2 ip_in=2 ip_unknown_protocol=2");
  }
  s.no_tx();
  REQUIRE(s.inst().held_frames() == 0);
}

TEST_CASE("instance: an L4 handler gets the datagram without its IP header", "[instance]") {
  Recorder rec;
  Stack s;
  s.inst().register_protocol(17, &rec);
  Bytes u = udp(peer_ip, our_ip, 7000, 9000, pattern(100, 3));
  Ip ip;
  ip.tos = 0x48;
  ip.ttl = 9;
  ip.df = true;
  s.feed(ip_frame(ip, u), t0 + 7 * ms);
  REQUIRE(rec.datagrams.size() == 1);
  const auto& d = rec.datagrams[0];
  REQUIRE(d.bytes == u);
  REQUIRE(d.meta.src == peer_ip);
  REQUIRE(d.meta.dst == our_ip);
  REQUIRE(d.meta.protocol == 17);
  REQUIRE(d.meta.ttl == 9);
  REQUIRE(d.meta.tos == 0x48);
  REQUIRE(d.meta.iface == 0);
  REQUIRE_FALSE(d.meta.l4_cksum_good);  // no offload on this port: the transport checks it
  REQUIRE(d.now == t0 + 7 * ms);
  REQUIRE(s.changed() == "rx_packets=1 ip_in=1");
  s.no_tx();
}

TEST_CASE("instance: IPv4 datagrams that are accepted", "[instance]") {
  Recorder rec;
  Stack s;
  s.inst().register_protocol(17, &rec);
  SECTION("directed broadcast of our subnet, and the limited broadcast") {
    s.feed(udp_frame(pattern(4), subnet_bcast), t0);
    s.feed(udp_frame(pattern(5), Ipv4Addr::broadcast()), t0);
    REQUIRE(rec.datagrams.size() == 2);
    REQUIRE(rec.datagrams[0].meta.dst == subnet_bcast);
    REQUIRE(rec.datagrams[0].bytes == udp(peer_ip, subnet_bcast, 7000, 9000, pattern(4)));
    REQUIRE(rec.datagrams[1].meta.dst == Ipv4Addr::broadcast());
  }
  SECTION("Ethernet padding is trimmed") {
    Bytes u = udp(peer_ip, our_ip, 7000, 9000, pattern(6));
    Bytes f = ether(our_mac, peer_mac, 0x0800, ipv4({}, u), 60);
    for (size_t i = 48; i < 60; ++i) f[i] = 0xa5;  // padding that is not zero
    s.feed(f, t0);
    REQUIRE(rec.datagrams.size() == 1);
    REQUIRE(rec.datagrams[0].bytes == u);
  }
  SECTION("a header with options") {
    Bytes u = udp(peer_ip, our_ip, 7000, 9000, pattern(30));
    Ip ip;
    ip.options = {0x94, 0x04, 0x00, 0x00, 0x01, 0x01, 0x01, 0x00};  // router alert, NOP x3, EOL
    s.feed(ip_frame(ip, u), t0);
    ip.options.assign(40, 0x01);  // the largest header: 60 bytes
    ip.options.back() = 0x00;
    s.feed(ip_frame(ip, u), t0);
    REQUIRE(rec.datagrams.size() == 2);
    REQUIRE(rec.datagrams[0].bytes == u);
    REQUIRE(rec.datagrams[1].bytes == u);
  }
  SECTION("a chained frame, cut inside and after the IP header") {
    Bytes u = udp(peer_ip, our_ip, 7000, 9000, pattern(300, 9));
    Ip ip;
    ip.options = {0x01, 0x01, 0x01, 0x00};
    Bytes f = ip_frame(ip, u);
    s.rx(make_chain(f, {14, 10, 100}));  // Ethernet alone, IP header split
    s.rx(make_chain(f, {38, 1, 1}));     // Ethernet + IP header, then UDP in pieces
    s.rx(make_chain(f, {20, 300}));      // the header split, padding-free tail
    s.rx(make_chain(cat(f, Bytes(7, 0xa5)), {200, 130, 2}));  // padding in its own segment
    s.poll(t0);
    REQUIRE(rec.datagrams.size() == 4);
    for (auto& d : rec.datagrams) REQUIRE(d.bytes == u);
  }
  REQUIRE(s.count(Counter::ip_in) == rec.datagrams.size());
  REQUIRE(s.changed() == "rx_packets=" + std::to_string(rec.datagrams.size()) +
                             " ip_in=" + std::to_string(rec.datagrams.size()));
  s.no_tx();
  REQUIRE(s.inst().held_frames() == 0);
}

// ===== Fragments =====

TEST_CASE("instance: fragments out of order are reassembled", "[instance]") {
  Recorder rec;
  Stack s;
  s.inst().register_protocol(17, &rec);
  Bytes u = udp(peer_ip, our_ip, 7000, 9000, pattern(3000, 5));
  Ip ip;
  ip.id = 0x7001;
  auto frags = fragments(ip, u, 1480);
  REQUIRE(frags.size() == 3);
  s.feed(frags[2], t0);
  s.feed(frags[0], t0 + 1 * ms);
  REQUIRE(s.inst().held_frames() == 1);
  REQUIRE(rec.datagrams.empty());
  s.feed(frags[1], t0 + 2 * ms);
  REQUIRE(rec.datagrams.size() == 1);
  REQUIRE(rec.datagrams[0].bytes == u);
  REQUIRE(rec.datagrams[0].meta.src == peer_ip);
  REQUIRE(rec.datagrams[0].meta.protocol == 17);
  REQUIRE_FALSE(rec.datagrams[0].meta.l4_cksum_good);
  REQUIRE(s.changed() == "rx_packets=3 ip_in=3 ip_frag_in=3 ip_reassembled=1");
  REQUIRE(s.inst().held_frames() == 0);
}

TEST_CASE("instance: overlapping fragments drop the datagram", "[instance]") {
  Recorder rec;
  Stack s;
  s.inst().register_protocol(17, &rec);
  Bytes u = udp(peer_ip, our_ip, 7000, 9000, pattern(2000));
  Ip ip;
  ip.id = 0x7002;
  Ip first = ip;
  first.mf = true;
  s.feed(ether(our_mac, peer_mac, 0x0800, ipv4(first, Bytes(u.begin(), u.begin() + 1480))), t0);
  Ip second = ip;
  second.frag_off = 1472;  // overlaps the first by 8 bytes, with different bytes
  s.feed(ether(our_mac, peer_mac, 0x0800, ipv4(second, Bytes(u.begin() + 1480, u.end()))), t0);
  REQUIRE(rec.datagrams.empty());
  REQUIRE(s.changed() == "rx_packets=2 ip_in=2 ip_frag_in=2 ip_frag_overlap=1");
  REQUIRE(s.inst().held_frames() == 0);
}

TEST_CASE("instance: an incomplete datagram times out", "[instance]") {
  Recorder rec;
  InstanceConfig cfg;
  cfg.reassembly.timeout_ns = 3 * sec;
  Stack s(cfg);
  s.inst().register_protocol(17, &rec);
  Bytes u = udp(peer_ip, our_ip, 7000, 9000, pattern(2000));
  auto frags = fragments({}, u, 1480);
  uint64_t arrived = t0 + 100 * ms;
  s.feed(frags[0], arrived);
  REQUIRE(s.inst().held_frames() == 1);
  // The instance scans once a second: at t0 + 1 s, 2 s, 3 s the fragment is
  // younger than the timeout; the scan at t0 + 4 s drops it.
  for (uint64_t t = t0 + 1 * sec; t <= t0 + 3 * sec; t += sec) {
    s.poll(t);
    REQUIRE(s.inst().held_frames() == 1);
  }
  s.poll(t0 + 4 * sec - 1 * ms);
  REQUIRE(s.inst().held_frames() == 1);
  s.poll(t0 + 4 * sec);
  REQUIRE(s.inst().held_frames() == 0);
  REQUIRE(s.changed() == "rx_packets=1 ip_in=1 ip_frag_in=1 ip_frag_timeout=1");
  // The missing piece, now too late, starts a datagram of its own.
  s.feed(frags[1], t0 + 5 * sec);
  REQUIRE(rec.datagrams.empty());
  REQUIRE(s.inst().held_frames() == 1);
  s.no_tx();
}

// ===== ICMP =====

TEST_CASE("instance: echo request gets the exact echo reply", "[instance]") {
  Stack s;
  s.learn(peer_ip, peer_mac);
  Bytes data = pattern(56, 0x11);
  Ip ip;
  ip.protocol = 1;
  ip.tos = 0x20;
  ip.ttl = 55;
  ip.id = 0x0101;
  s.feed(ip_frame(ip, echo_request(0x1234, 0xfffe, data)), t0 + 1 * ms);
  EthFrame e = parse_ether(s.tx_one());
  REQUIRE(e.dst == peer_mac);
  REQUIRE(e.src == our_mac);
  REQUIRE(e.type == 0x0800);
  IpPacket p = parse_ipv4(e.payload);
  REQUIRE(p.hdr.options.empty());
  REQUIRE(p.hdr.tos == 0x20);
  REQUIRE_FALSE(p.hdr.df);  // a large request may come fragmented; so may the reply
  REQUIRE_FALSE(p.hdr.mf);
  REQUIRE(p.hdr.frag_off == 0);
  REQUIRE(p.hdr.ttl == 64);
  REQUIRE(p.hdr.protocol == 1);
  REQUIRE(p.hdr.src == our_ip);
  REQUIRE(p.hdr.dst == peer_ip);
  REQUIRE(p.payload == icmp(0, 0, 0x1234fffe, data));  // type, code, id, seq, data, checksum
  REQUIRE(s.changed() ==
          "rx_packets=1 tx_packets=1 ip_in=1 ip_out=1 icmp_in=1 icmp_echo_requests=1 "
          "icmp_echo_replies_out=1");
  REQUIRE(s.count(Counter::tx_bytes) == 14 + 20 + 8 + 56);
  REQUIRE(s.inst().held_frames() == 0);
}

TEST_CASE("instance: echo request in a chain of odd segments", "[instance]") {
  Stack s;
  s.learn(peer_ip, peer_mac);
  Bytes data = pattern(501, 0x5a);  // odd length too
  Ip ip;
  ip.protocol = 1;
  s.rx(make_chain(ip_frame(ip, echo_request(0x2222, 9, data)), {35, 7, 101, 3}));
  s.poll(t0);
  EthFrame e = parse_ether(s.tx_one());
  REQUIRE(e.dst == peer_mac);
  IpPacket p = parse_ipv4(e.payload);
  REQUIRE(p.hdr.dst == peer_ip);
  REQUIRE(p.payload == icmp(0, 0, 0x22220009, data));
  REQUIRE(s.changed() ==
          "rx_packets=1 tx_packets=1 ip_in=1 ip_out=1 icmp_in=1 icmp_echo_requests=1 "
          "icmp_echo_replies_out=1");
}

TEST_CASE("instance: echo request from an unknown neighbour waits for ARP", "[instance]") {
  Stack s;
  Ip ip;
  ip.protocol = 1;
  ip.src = other_ip;
  Bytes req = echo_request(7, 1, pattern(8));
  s.feed(ether(our_mac, other_mac, 0x0800, ipv4(ip, req)), t0);
  check_arp_request(s.tx_one(), other_ip);
  REQUIRE(s.inst().held_frames() == 1);
  s.feed(ether(our_mac, other_mac, 0x0806, arp_reply(other_mac, other_ip, our_mac, our_ip)),
         t0 + ms);
  EthFrame e = parse_ether(s.tx_one());
  REQUIRE(e.dst == other_mac);
  IpPacket p = parse_ipv4(e.payload);
  REQUIRE(p.hdr.dst == other_ip);
  REQUIRE(p.payload == icmp(0, 0, 0x00070001, pattern(8)));
  REQUIRE(s.inst().held_frames() == 0);
}

TEST_CASE("instance: ICMP that gets no answer", "[instance]") {
  Stack s;
  s.learn(peer_ip, peer_mac);
  Ip ip;
  ip.protocol = 1;
  SECTION("bad checksum") {
    Bytes m = echo_request(1, 1, pattern(20));
    m[2] ^= 0x40;
    s.feed(ip_frame(ip, m), t0);
    REQUIRE(s.changed() == "rx_packets=1 ip_in=1 icmp_in=1 icmp_bad_checksum=1");
  }
  SECTION("a flipped payload byte") {
    Bytes m = echo_request(1, 1, pattern(21));
    m.back() ^= 0x01;
    s.feed(ip_frame(ip, m), t0);
    REQUIRE(s.changed() == "rx_packets=1 ip_in=1 icmp_in=1 icmp_bad_checksum=1");
  }
  SECTION("truncated below the 8-byte header") {
    Bytes m = echo_request(1, 1, {});
    for (size_t len = 0; len < 8; ++len)
      s.rx(ip_frame(ip, Bytes(m.begin(), m.begin() + ptrdiff_t(len))));
    s.poll(t0);
    REQUIRE(s.changed() == "rx_packets=8 ip_in=8 icmp_in=8 icmp_truncated=8");
  }
  SECTION("echo to the directed and the limited broadcast (answered by no one)") {
    ip.dst = subnet_bcast;
    s.feed(ether(MacAddr::broadcast(), peer_mac, 0x0800, ipv4(ip, echo_request(1, 1, pattern(8)))),
           t0);
    ip.dst = Ipv4Addr::broadcast();
    s.feed(ether(MacAddr::broadcast(), peer_mac, 0x0800, ipv4(ip, echo_request(1, 2, pattern(8)))),
           t0);
    REQUIRE(s.changed() == "rx_packets=2 ip_in=2 icmp_in=2 icmp_echo_requests=2");
  }
  SECTION("a type keel ignores (timestamp)") {
    s.feed(ip_frame(ip, icmp(13, 0, 0, Bytes(12, 0))), t0);
    REQUIRE(s.changed() == "rx_packets=1 ip_in=1 icmp_in=1 icmp_unknown_type=1");
  }
  s.no_tx();
  REQUIRE(s.inst().held_frames() == 0);
}

TEST_CASE("instance: a large echo comes in fragments and the reply goes out in fragments",
          "[instance]") {
  Stack s;
  s.learn(peer_ip, peer_mac);
  Bytes data = pattern(4000, 0x3c);
  Bytes req = echo_request(0xabcd, 3, data);
  Ip ip;
  ip.protocol = 1;
  ip.id = 0x5151;
  auto frags = fragments(ip, req, 1480);
  REQUIRE(frags.size() == 3);
  s.rx(frags[1]);
  s.rx(frags[0]);
  s.rx(frags[2]);
  s.poll(t0);
  auto out = s.tx();
  REQUIRE(out.size() == 3);
  // Reassemble the reply by offset.
  Bytes reply(req.size(), 0xa5);
  std::vector<bool> seen(req.size(), false);
  uint16_t id = 0;
  size_t mf_clear = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    INFO("fragment " << i);
    EthFrame e = parse_ether(out[i]);
    REQUIRE(e.dst == peer_mac);
    REQUIRE(e.src == our_mac);
    REQUIRE(e.type == 0x0800);
    REQUIRE(out[i].size() <= 14 + 1500);
    IpPacket p = parse_ipv4(e.payload);
    REQUIRE(p.hdr.src == our_ip);
    REQUIRE(p.hdr.dst == peer_ip);
    REQUIRE(p.hdr.protocol == 1);
    REQUIRE(p.hdr.ttl == 64);
    REQUIRE_FALSE(p.hdr.df);
    if (i == 0) id = p.hdr.id;
    REQUIRE(p.hdr.id == id);
    if (p.hdr.mf)
      REQUIRE(p.payload.size() % 8 == 0);
    else
      ++mf_clear;
    REQUIRE(p.hdr.frag_off + p.payload.size() <= reply.size());
    for (size_t k = 0; k < p.payload.size(); ++k) {
      REQUIRE_FALSE(seen[p.hdr.frag_off + k]);
      seen[p.hdr.frag_off + k] = true;
      reply[p.hdr.frag_off + k] = p.payload[k];
    }
  }
  REQUIRE(mf_clear == 1);
  REQUIRE(std::all_of(seen.begin(), seen.end(), [](bool b) { return b; }));
  REQUIRE(reply == icmp(0, 0, 0xabcd0003, data));
  REQUIRE(s.changed() ==
          "rx_packets=3 tx_packets=3 ip_in=3 ip_frag_in=3 ip_reassembled=1 ip_out=1 icmp_in=1 "
          "icmp_echo_requests=1 icmp_echo_replies_out=1");
  REQUIRE(s.inst().held_frames() == 0);
}

TEST_CASE("instance: ping sends an echo request and reports the reply", "[instance]") {
  Stack s;
  s.learn(peer_ip, peer_mac);
  std::vector<keel::engine::EchoReply> replies;
  s.inst().set_echo_reply_hook([&](const keel::engine::EchoReply& r) { replies.push_back(r); });
  REQUIRE(s.inst().send_echo_request(peer_ip, 0x0bad, 0xffff, 40, t0));
  s.inst().flush(t0);
  EthFrame e = parse_ether(s.tx_one());
  REQUIRE(e.dst == peer_mac);
  IpPacket p = parse_ipv4(e.payload);
  REQUIRE(p.hdr.protocol == 1);
  REQUIRE(p.hdr.src == our_ip);
  REQUIRE(p.hdr.dst == peer_ip);
  Bytes data(40);
  for (size_t i = 0; i < data.size(); ++i) data[i] = uint8_t(i);
  REQUIRE(p.payload == echo_request(0x0bad, 0xffff, data));

  Ip ip;
  ip.protocol = 1;
  s.feed(ip_frame(ip, icmp(0, 0, 0x0badffff, data)), t0 + 3 * ms);
  REQUIRE(replies.size() == 1);
  REQUIRE(replies[0].from == peer_ip);
  REQUIRE(replies[0].id == 0x0bad);
  REQUIRE(replies[0].seq == 0xffff);
  REQUIRE(replies[0].bytes == 40);
  REQUIRE(replies[0].now_ns == t0 + 3 * ms);
  s.no_tx();
}

// ===== ICMP errors to the transport =====

TEST_CASE("instance: ICMP errors quoting our UDP datagram reach the UDP handler", "[instance]") {
  Recorder rec;
  Stack s;
  s.inst().register_protocol(17, &rec);
  s.learn(peer_ip, peer_mac);
  // A datagram we send; the router's error quotes it.
  REQUIRE(s.send_udp(far_ip, pattern(64), t0));
  Bytes sent = parse_ether(s.tx_one()).payload;
  REQUIRE(sent.size() == 20 + 8 + 64);
  const Bytes sent_udp(sent.begin() + 20, sent.end());
  Ip from_router;
  from_router.protocol = 1;
  from_router.src = peer_ip;  // the gateway reports
  s.mark();

  struct Case {
    uint8_t type, code;
    uint32_t rest;
    uint16_t mtu;
    size_t quote;  // bytes of the original datagram quoted
  };
  const Case cases[] = {
      {3, 3, 0, 0, 28},                 // port unreachable, RFC 792 minimum quote
      {3, 4, 1400, 1400, sent.size()},  // fragmentation needed, next-hop MTU (RFC 1191)
      {3, 4, 0, 0, 28},                 // fragmentation needed from an old router: no MTU
      {11, 0, 0, 0, 60},                // time exceeded in transit
      {12, 0, 0x08000000, 0, 28},       // parameter problem (pointer 8)
  };
  uint64_t now = t0 + 10 * ms;
  for (const Case& c : cases) {
    INFO("type " << int(c.type) << " code " << int(c.code));
    rec.errors.clear();
    Bytes quote(sent.begin(), sent.begin() + ptrdiff_t(c.quote));
    s.feed(ip_frame(from_router, icmp(c.type, c.code, c.rest, quote)), now);
    REQUIRE(rec.errors.size() == 1);
    const auto& got = rec.errors[0];
    REQUIRE(got.err.type == c.type);
    REQUIRE(got.err.code == c.code);
    REQUIRE(got.err.next_hop_mtu == c.mtu);
    REQUIRE(got.err.reporter == peer_ip);
    REQUIRE(got.err.orig_src == our_ip);
    REQUIRE(got.err.orig_dst == far_ip);
    REQUIRE(got.err.protocol == 17);
    REQUIRE(got.quoted.size() >= 8);
    REQUIRE(got.quoted.size() <= c.quote - 20);
    REQUIRE(Bytes(got.quoted.begin(), got.quoted.begin() + 8) ==
            Bytes(sent_udp.begin(), sent_udp.begin() + 8));  // ports, length, checksum
    REQUIRE(got.now == now);
  }
  REQUIRE(rec.datagrams.empty());
  REQUIRE(s.changed() == "rx_packets=5 ip_in=5 icmp_in=5 icmp_errors_in=5");

  SECTION("in a chained frame, with a quoted header carrying options") {
    rec.errors.clear();
    Bytes q = sent;
    // Give the quoted header 4 bytes of options (the L4 header moves to 24).
    q.insert(q.begin() + 20, {0x01, 0x01, 0x01, 0x00});
    q[0] = 0x46;
    Bytes f = ip_frame(from_router, icmp(3, 3, 0, Bytes(q.begin(), q.begin() + 32)));
    s.rx(make_chain(f, {40, 3}));
    s.poll(now);
    REQUIRE(rec.errors.size() == 1);
    REQUIRE(rec.errors[0].quoted == Bytes(sent_udp.begin(), sent_udp.begin() + 8));
  }
  SECTION("quotes that cannot be used are counted") {
    s.mark();
    rec.errors.clear();
    // 7 bytes of the L4 header, no L4 header, half an IP header, nothing at all.
    for (size_t len : {27u, 20u, 10u, 0u})
      s.rx(
          ip_frame(from_router, icmp(3, 3, 0, Bytes(sent.begin(), sent.begin() + ptrdiff_t(len)))));
    // Padded to 60 bytes: the padding must not count as quote.
    s.rx(ether(our_mac, peer_mac, 0x0800,
               ipv4(from_router, icmp(3, 3, 0, Bytes(sent.begin(), sent.begin() + 24))), 60));
    // A header with options but only 8 bytes after 20.
    Bytes q = sent;
    q[0] = 0x46;
    s.rx(ip_frame(from_router, icmp(3, 3, 0, Bytes(q.begin(), q.begin() + 28))));
    // Not IPv4 inside.
    Bytes v6 = sent;
    v6[0] = 0x65;
    s.rx(ip_frame(from_router, icmp(3, 3, 0, Bytes(v6.begin(), v6.begin() + 28))));
    // A datagram someone else sent.
    Bytes theirs = sent;
    keel::net::store_be32(&theirs[12], other_ip.v);
    s.rx(ip_frame(from_router, icmp(3, 3, 0, Bytes(theirs.begin(), theirs.begin() + 28))));
    s.poll(now);
    REQUIRE(rec.errors.empty());
    REQUIRE(s.changed() ==
            "rx_packets=8 ip_in=8 icmp_in=8 icmp_errors_in=8 icmp_errors_bad_quote=8");
  }
  s.no_tx();
  REQUIRE(s.inst().held_frames() == 0);
}
