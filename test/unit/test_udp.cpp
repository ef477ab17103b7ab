// SPDX-License-Identifier: BSD-3-Clause
// UDP, packet by packet: a UdpStack on a real engine::Instance over a net_ring
// port. The test plays the peer (198.18.0.1): it builds Ethernet/IPv4/UDP
// frames with frames.hpp (checksums by its own loops, nothing shared with
// src/net), feeds them through the port's RX ring, and checks what the stack
// transmitted from the TX ring field by field. Time is explicit (the harness
// is the stack's clock). Every test leaves the mbuf pool as it found it.
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/engine.hpp"
#include "engine/instance.hpp"
#include "engine/mbuf_util.hpp"
#include "frames.hpp"
#include "test_support.hpp"
#include "udp/udp_stack.hpp"

using namespace keel::test;
using keel::Errc;
using keel::engine::Counter;
using keel::engine::Instance;
using keel::engine::InstanceConfig;
using keel::engine::Ipv4Meta;
using keel::net::Ipv4Addr;
using keel::net::Ipv4Cidr;
using keel::net::load_be16;
using keel::net::store_be16;
using keel::udp::Datagram;
using keel::udp::UdpConfig;
using keel::udp::UdpHandler;
using keel::udp::UdpSocket;
using keel::udp::UdpStack;

namespace {

constexpr uint64_t ms = 1'000'000;
constexpr uint64_t sec = 1'000'000'000;
constexpr uint64_t t0 = 1000 * sec;
/// A second address of ours on the same interface.
constexpr Ipv4Addr our_ip2{198, 18, 0, 20};

// ===== The harness =====

/// Ring ports cannot be removed: every UDP test shares this one.
RingTestPort& test_port() {
  static RingTestPort tp = make_ring_test_port("udp_unit");
  return tp;
}

/// A frame the stack transmitted, with the offload flags it asked the port for.
struct Frame {
  Bytes bytes;
  uint64_t ol_flags = 0;
};

UdpConfig small_config() {
  UdpConfig c;
  c.max_sockets = 8;
  c.rcv_datagrams = 4;
  c.rcv_bytes = 4096;
  return c;
}

class UdpHarness {
 public:
  explicit UdpHarness(const UdpConfig& cfg = small_config(), InstanceConfig ic = {}) {
    drain();
    ic.arp.reachable_ns = 1'000'000 * sec;  // no ARP refresh in the middle of a test
    inst_ = std::make_unique<Instance>(ic, now);
    keel::engine::InterfaceConfig l3;
    l3.addrs = {Ipv4Cidr{our_ip, 24}, Ipv4Cidr{our_ip2, 24}};
    ifc_ = &inst_->add_interface(test_port().port, 0, l3, pool());
    udp_ = std::make_unique<UdpStack>(*inst_, cfg);
    udp_->clock().set([](void* h) { return static_cast<UdpHarness*>(h)->now; }, this);
    // The peer's MAC is known before the first datagram (an unsolicited ARP reply).
    feed(ether(our_mac, peer_mac, 0x0806, arp_reply(peer_mac, peer_ip, our_mac, our_ip)));
    REQUIRE(tx().empty());
    mark();
  }
  ~UdpHarness() {
    drain();
    udp_.reset();  // frees the sockets and their queues
    inst_.reset();
    drain();
  }

  UdpStack& udp() { return *udp_; }
  Instance& inst() { return *inst_; }
  keel::engine::Interface& ifc() { return *ifc_; }
  uint64_t count(Counter c) const { return inst_->counters().get(c); }
  /// Counters that moved since construction or mark(), as "name=delta ...".
  std::string changed() const {
    std::ostringstream os;
    for (size_t i = 0; i < keel::engine::counter_count; ++i) {
      auto c = Counter(i);
      uint64_t d = count(c) - base_[i];
      if (d != 0 && c != Counter::rx_bytes && c != Counter::tx_bytes)
        os << (os.tellp() ? " " : "") << keel::engine::counter_name(c) << "=" << d;
    }
    return os.str();
  }
  void mark() {
    for (size_t i = 0; i < keel::engine::counter_count; ++i) base_[i] = count(Counter(i));
  }

  void advance(uint64_t dt) {
    now += dt;
    inst_->poll(now);
  }
  /// Puts a frame (or mbuf) on the RX ring and polls.
  void feed(const Bytes& f) { feed(make_mbuf(f)); }
  void feed(rte_mbuf* m) {
    REQUIRE(rte_ring_enqueue(test_port().ring.rx, m) == 0);
    inst_->poll(now);
  }
  /// Everything transmitted since the last call.
  std::vector<Frame> tx() {
    inst_->flush(now);
    std::vector<Frame> out;
    void* p = nullptr;
    while (rte_ring_dequeue(test_port().ring.tx, &p) == 0) {
      auto* m = static_cast<rte_mbuf*>(p);
      out.push_back({bytes_of(m), m->ol_flags});
      REQUIRE(out.back().bytes.size() == m->pkt_len);
      rte_pktmbuf_free(m);
    }
    return out;
  }
  /// The next transmitted mbuf itself (the caller frees it), or nullptr.
  rte_mbuf* tx_mbuf() {
    inst_->flush(now);
    void* p = nullptr;
    return rte_ring_dequeue(test_port().ring.tx, &p) == 0 ? static_cast<rte_mbuf*>(p) : nullptr;
  }
  Frame tx_one() {
    auto v = tx();
    REQUIRE(v.size() == 1);
    return v[0];
  }

  UdpSocket* bind(Ipv4Addr a, uint16_t port, UdpHandler* h = nullptr) {
    auto r = udp_->bind(a, port, h);
    REQUIRE(r.has_value());
    return *r;
  }

  uint64_t now = t0;

 private:
  static void drain() { drain_rings(test_port()); }

  PoolBaseline baseline_;  // first: checked after everything else is gone
  std::unique_ptr<Instance> inst_;
  keel::engine::Interface* ifc_ = nullptr;
  std::unique_ptr<UdpStack> udp_;
  uint64_t base_[keel::engine::counter_count] = {};
};

/// Records what the stack tells the application.
struct Rec : UdpHandler {
  std::string events;
  UdpStack* close_in_callback = nullptr;
  void on_readable(UdpSocket& s) override {
    events += "readable ";
    if (close_in_callback) close_in_callback->close(&s);
  }
  void on_error(UdpSocket&, Errc e) override {
    events += "error:" + std::string(keel::to_string(e)) + " ";
  }
  std::string take() {
    std::string e = events;
    events.clear();
    if (!e.empty()) e.pop_back();
    return e;
  }
};

/// A UDP datagram from the peer (ip.src) in a frame to us.
Bytes dgram(uint16_t sport, uint16_t dport, const Bytes& payload, Ip ip = {},
            keel::net::MacAddr dst_mac = our_mac) {
  return ether(dst_mac, peer_mac, 0x0800, ipv4(ip, udp(ip.src, ip.dst, sport, dport, payload)));
}

/// An emitted UDP datagram, parsed.
struct UdpOut {
  IpPacket ip;
  uint16_t sport = 0, dport = 0, len = 0, cksum = 0;
  Bytes payload;
};

/// The IPv4 packet of a frame from us to the peer, checked, of protocol `proto`.
IpPacket packet_to_peer(const Frame& f, Ipv4Addr src, uint8_t proto) {
  return parse_ipv4_frame(f.bytes, peer_mac, our_mac, src, peer_ip, proto);
}

/// Parses a frame to the peer that carries one whole UDP datagram; with
/// `offloaded` the checksum field must hold the pseudo-header sum for the
/// port, else a valid checksum.
UdpOut parse_udp_out(const Frame& f, Ipv4Addr src = our_ip, bool offloaded = false) {
  UdpOut u;
  u.ip = packet_to_peer(f, src, 17);
  CHECK(!u.ip.hdr.df);  // never DF (COMPAT(linux): IP_PMTUDISC_DONT)
  CHECK(!u.ip.hdr.mf);
  CHECK(u.ip.hdr.frag_off == 0);
  const Bytes& b = u.ip.payload;
  REQUIRE(b.size() >= 8);
  u.sport = load_be16(&b[0]);
  u.dport = load_be16(&b[2]);
  u.len = load_be16(&b[4]);
  u.cksum = load_be16(&b[6]);
  CHECK(u.len == b.size());
  uint32_t pseudo = pseudo_sum(src, peer_ip, 17, b.size());
  if (offloaded) {
    CHECK((f.ol_flags & RTE_MBUF_F_TX_UDP_CKSUM) != 0);
    uint32_t folded = pseudo;
    while (folded >> 16) folded = (folded & 0xffff) + (folded >> 16);
    CHECK(u.cksum == folded);
  } else {
    CHECK((f.ol_flags & RTE_MBUF_F_TX_UDP_CKSUM) == 0);
    CHECK(u.cksum != 0);  // RFC 768: computed zero is sent as 0xffff
    CHECK(fold_cksum(sum16(b.data(), b.size(), pseudo)) == 0);
  }
  u.payload.assign(b.begin() + 8, b.end());
  return u;
}

/// Checks an ICMP destination unreachable from `src` to the peer and returns what it quotes.
Bytes parse_unreachable(const Frame& f, uint8_t code, Ipv4Addr src = our_ip) {
  const Bytes m = packet_to_peer(f, src, 1).payload;
  REQUIRE(m.size() >= 8);
  CHECK(m[0] == 3);
  CHECK(m[1] == code);
  CHECK(keel::net::load_be32(&m[4]) == 0);  // unused
  CHECK(cksum(m) == 0);
  return Bytes(m.begin() + 8, m.end());
}

/// The bytes of a frame's IPv4 packet, from its header on.
Bytes ip_part(const Bytes& frame) { return Bytes(frame.begin() + 14, frame.end()); }

/// An ICMP error from the peer about a datagram we sent (`sent`: its IP packet).
Bytes icmp_about(uint8_t type, uint8_t code, const Bytes& sent, uint32_t rest = 0) {
  Ip ip;
  ip.protocol = 1;
  return ether(our_mac, peer_mac, 0x0800,
               ipv4(ip, icmp(type, code, rest, Bytes(sent.begin(), sent.begin() + 28))));
}

}  // namespace

// ===== bind, ephemeral ports, close =====

TEST_CASE("udp: bind, conflicts, ephemeral ports and close", "[udp]") {
  UdpHarness h;
  UdpStack& u = h.udp();
  UdpSocket* a = h.bind(our_ip, 5000);
  CHECK(a->local_addr() == our_ip);
  CHECK(a->local_port() == 5000);
  CHECK(!a->connected());
  // Another of our addresses on the same port is fine; overlapping ones are not.
  UdpSocket* b = h.bind(our_ip2, 5000);
  CHECK(u.bind(our_ip, 5000, nullptr).error() == Errc::already_exists);
  CHECK(u.bind(Ipv4Addr::any(), 5000, nullptr).error() == Errc::already_exists);
  UdpSocket* w = h.bind(Ipv4Addr::any(), 5001);
  CHECK(u.bind(our_ip, 5001, nullptr).error() == Errc::already_exists);
  // Not our address: refused.
  CHECK(u.bind(other_ip, 5002, nullptr).error() == Errc::invalid_argument);
  CHECK(u.bind(subnet_bcast, 5002, nullptr).error() == Errc::invalid_argument);
  // Ephemeral: in Linux's range, never one in use.
  UdpSocket* e1 = h.bind(Ipv4Addr::any(), 0);
  UdpSocket* e2 = h.bind(our_ip, 0);
  for (UdpSocket* e : {e1, e2}) {
    CHECK(e->local_port() >= UdpStack::ephemeral_first);
    CHECK(e->local_port() <= UdpStack::ephemeral_last);
  }
  CHECK(e1->local_port() != e2->local_port());
  CHECK(u.sockets() == 5);
  // max_sockets (8) bounds the table.
  std::vector<UdpSocket*> more;
  for (int i = 0; i < 3; ++i) more.push_back(h.bind(Ipv4Addr::any(), uint16_t(6000 + i)));
  CHECK(u.bind(Ipv4Addr::any(), 6100, nullptr).error() == Errc::no_memory);
  // close frees the port and the slot.
  u.close(a);
  UdpSocket* a2 = h.bind(our_ip, 5000);
  u.close(b);
  CHECK(u.bind(Ipv4Addr::any(), 5000, nullptr).error() == Errc::already_exists);  // a2 is there
  u.close(a2);
  UdpSocket* wide = h.bind(Ipv4Addr::any(), 5000);
  CHECK(u.sockets() == 7);
  for (UdpSocket* s : {wide, w, e1, e2}) u.close(s);
  for (UdpSocket* s : more) u.close(s);
  CHECK(u.sockets() == 0);
  CHECK(h.changed().empty());
}

TEST_CASE("udp: ephemeral ports run out with already_exists", "[udp]") {
  UdpConfig cfg = small_config();
  cfg.max_sockets = 28300;
  cfg.rcv_datagrams = 1;
  UdpHarness h(cfg);
  std::vector<UdpSocket*> all;
  for (uint32_t i = 0; i < 28232; ++i) all.push_back(h.bind(Ipv4Addr::any(), 0));
  CHECK(h.udp().bind(our_ip, 0, nullptr).error() == Errc::already_exists);
  uint16_t freed = all[100]->local_port();
  h.udp().close(all[100]);
  UdpSocket* again = h.bind(our_ip, 0);
  CHECK(again->local_port() == freed);
  all[100] = again;
  for (UdpSocket* s : all) h.udp().close(s);
}

// ===== Receive =====

TEST_CASE("udp: a datagram is delivered zero copy with its addresses", "[udp]") {
  UdpHarness h;
  Rec rec;
  UdpSocket* s = h.bind(Ipv4Addr::any(), 9000, &rec);
  Bytes payload = pattern(100);
  rte_mbuf* fed = make_mbuf(dgram(7000, 9000, payload));
  uint16_t fed_off = fed->data_off;
  h.feed(fed);
  CHECK(rec.take() == "readable");
  CHECK(s->queued() == 1);
  CHECK(s->queued_bytes() == 100);
  // A second datagram (to our other address) is no new edge.
  h.feed(dgram(7001, 9000, pattern(5, 1), Ip{.dst = our_ip2}));
  CHECK(rec.take().empty());
  auto d = h.udp().recv(*s);
  REQUIRE(d.has_value());
  CHECK(d->payload == fed);                        // the mbuf that came in
  CHECK(d->payload->data_off == fed_off + 14 + 20 + 8);  // headers stripped by adj
  CHECK(bytes_of(d->payload) == payload);
  CHECK(d->src == peer_ip);
  CHECK(d->src_port == 7000);
  CHECK(d->dst == our_ip);
  rte_pktmbuf_free(d->payload);
  auto d2 = h.udp().recv(*s);
  REQUIRE(d2.has_value());
  CHECK(d2->dst == our_ip2);
  CHECK(d2->src_port == 7001);
  CHECK(bytes_of(d2->payload) == pattern(5, 1));
  rte_pktmbuf_free(d2->payload);
  CHECK(!h.udp().recv(*s).has_value());
  CHECK(s->queued_bytes() == 0);
  // Empty again: the next datagram is a new edge.
  h.feed(dgram(7000, 9000, {}));
  CHECK(rec.take() == "readable");
  CHECK(h.changed() == "rx_packets=3 ip_in=3 udp_in=3");
  h.udp().close(s);  // frees the queued (empty) datagram
}

TEST_CASE("udp: a specific address is preferred over any()", "[udp]") {
  UdpHarness h;
  UdpSocket* wild = h.bind(Ipv4Addr::any(), 9000);
  h.udp().close(wild);  // bind(our_ip) would conflict with it
  UdpSocket* one = h.bind(our_ip, 9000);
  h.feed(dgram(7000, 9000, {1}));
  CHECK(one->queued() == 1);
  // To our other address nobody listens on 9000: port unreachable, from that address.
  h.feed(dgram(7000, 9000, {2}, Ip{.dst = our_ip2}));
  parse_unreachable(h.tx_one(), 3, our_ip2);
  CHECK(one->queued() == 1);
  h.udp().close(one);
}

TEST_CASE("udp: recv_copy copies, truncates like recvfrom and would block", "[udp]") {
  UdpHarness h;
  UdpSocket* s = h.bind(our_ip, 9000);
  uint8_t buf[64];
  CHECK(h.udp().recv_copy(*s, buf, sizeof buf).error() == Errc::would_block);
  // A chained frame: the payload spans segments.
  h.feed(make_chain(dgram(7000, 9000, pattern(100)), {50, 30}));
  h.feed(dgram(7001, 9000, pattern(10, 3)));
  auto r = h.udp().recv_copy(*s, buf, sizeof buf);
  REQUIRE(r.has_value());
  CHECK(r->copied == 64);
  CHECK(r->datagram_len == 100);
  CHECK(r->truncated);
  const Bytes sent = pattern(100);
  CHECK(Bytes(buf, buf + 64) == Bytes(sent.begin(), sent.begin() + 64));
  CHECK(r->src == peer_ip);
  CHECK(r->src_port == 7000);
  CHECK(r->dst == our_ip);
  r = h.udp().recv_copy(*s, buf, sizeof buf);
  REQUIRE(r.has_value());
  CHECK(r->copied == 10);
  CHECK(!r->truncated);
  CHECK(Bytes(buf, buf + 10) == pattern(10, 3));
  CHECK(h.udp().recv_copy(*s, buf, sizeof buf).error() == Errc::would_block);
  h.udp().close(s);
}

TEST_CASE("udp: checksums good, bad, none, and verified by the port", "[udp]") {
  UdpHarness h;
  UdpSocket* s = h.bind(our_ip, 9000);
  Bytes good = dgram(7000, 9000, pattern(33));
  h.feed(good);
  Bytes bad = good;
  bad[14 + 20 + 6] ^= 0x01;  // checksum field
  h.feed(bad);
  Bytes data_flip = good;
  data_flip.back() ^= 0x80;
  h.feed(data_flip);
  CHECK(h.changed() == "rx_packets=3 ip_in=3 udp_in=3 udp_bad_checksum=2");
  CHECK(s->queued() == 1);
  // RFC 768: zero means the sender computed none.
  Bytes none = good;
  store_be16(&none[14 + 20 + 6], 0);
  none.back() ^= 0x80;
  h.feed(none);
  CHECK(s->queued() == 2);
  // The port said the checksum is good: not verified again.
  rte_mbuf* m = make_mbuf(bad);
  m->ol_flags |= RTE_MBUF_F_RX_L4_CKSUM_GOOD;
  h.feed(m);
  CHECK(s->queued() == 3);
  // The port said bad: verified here, and bad it is.
  m = make_mbuf(bad);
  m->ol_flags |= RTE_MBUF_F_RX_L4_CKSUM_BAD;
  h.feed(m);
  CHECK(s->queued() == 3);
  CHECK(h.count(Counter::udp_bad_checksum) == 3);
  h.tx();
  h.udp().close(s);  // frees the three queued datagrams
}

TEST_CASE("udp: lengths: truncated header, bad length field, padding trimmed", "[udp]") {
  UdpHarness h;
  UdpSocket* s = h.bind(our_ip, 9000);
  Ip ip;
  // 7 bytes of UDP header.
  Bytes u = udp(peer_ip, our_ip, 7000, 9000, {});
  h.feed(ether(our_mac, peer_mac, 0x0800, ipv4(ip, Bytes(u.begin(), u.begin() + 7))));
  CHECK(h.changed() == "rx_packets=1 ip_in=1 udp_in=1 udp_truncated=1");
  h.mark();
  // Length field beyond the IP payload, and below the header.
  for (uint16_t len : {uint16_t(8 + 21), uint16_t(7), uint16_t(0)}) {
    Bytes b = udp(peer_ip, our_ip, 7000, 9000, pattern(20));
    store_be16(&b[4], len);
    h.feed(ether(our_mac, peer_mac, 0x0800, ipv4(ip, b)));
  }
  CHECK(h.changed() == "rx_packets=3 ip_in=3 udp_in=3 udp_bad_length=3");
  CHECK(s->queued() == 0);
  h.mark();
  // An IP payload longer than the UDP length: the rest is cut off (the
  // checksum covers the UDP length only).
  Bytes b = cat(udp(peer_ip, our_ip, 7000, 9000, pattern(20)), Bytes(13, 0xee));
  rte_mbuf* fed = make_mbuf(ether(our_mac, peer_mac, 0x0800, ipv4(ip, b)));
  h.feed(fed);
  // Ethernet padding of a short frame is cut by IPv4 already.
  h.feed(ether(our_mac, peer_mac, 0x0800, ipv4(ip, udp(peer_ip, our_ip, 7000, 9000, {9})), 60));
  CHECK(h.changed() == "rx_packets=2 ip_in=2 udp_in=2");
  auto d = h.udp().recv(*s);
  REQUIRE(d.has_value());
  CHECK(d->payload == fed);
  CHECK(bytes_of(d->payload) == pattern(20));
  rte_pktmbuf_free(d->payload);
  d = h.udp().recv(*s);
  REQUIRE(d.has_value());
  CHECK(bytes_of(d->payload) == Bytes{9});
  rte_pktmbuf_free(d->payload);
  CHECK(h.tx().empty());
  h.udp().close(s);
}

TEST_CASE("udp: a reassembled datagram is delivered whole", "[udp]") {
  UdpHarness h;
  UdpSocket* s = h.bind(our_ip, 9000);
  Bytes u = udp(peer_ip, our_ip, 7000, 9000, pattern(3000));
  auto frags = fragments(Ip{}, u, 1480);
  REQUIRE(frags.size() == 3);
  for (size_t i = frags.size(); i-- > 0;) h.feed(frags[i]);
  auto d = h.udp().recv(*s);
  REQUIRE(d.has_value());
  CHECK(bytes_of(d->payload) == pattern(3000));
  rte_pktmbuf_free(d->payload);
  CHECK(h.count(Counter::ip_reassembled) == 1);
  h.udp().close(s);
  // To a closed port: one port unreachable, quoting the reassembled header.
  for (size_t i = frags.size(); i-- > 0;) h.feed(frags[i]);
  Bytes q = parse_unreachable(h.tx_one(), 3);
  REQUIRE(q.size() == 28);
  CHECK(load_be16(&q[2]) == 20 + u.size());  // total length of the whole datagram
  CHECK(load_be16(&q[6]) == 0);              // no MF, offset 0
  CHECK(cksum(q, 0, 20) == 0);
  CHECK(Bytes(q.begin() + 20, q.end()) == Bytes(u.begin(), u.begin() + 8));
}

TEST_CASE("udp: the receive queue is bounded by datagrams and by bytes", "[udp]") {
  UdpConfig cfg = small_config();  // 4 datagrams, 4096 bytes
  UdpHarness h(cfg);
  Rec rec;
  UdpSocket* s = h.bind(our_ip, 9000, &rec);
  for (int i = 0; i < 6; ++i) h.feed(dgram(7000, 9000, pattern(10, uint8_t(i))));
  CHECK(s->queued() == 4);
  CHECK(h.changed() == "rx_packets=6 ip_in=6 udp_in=6 udp_rcvbuf_errors=2");
  CHECK(rec.take() == "readable");
  // The oldest are kept.
  auto d = h.udp().recv(*s);
  REQUIRE(d.has_value());
  CHECK(bytes_of(d->payload) == pattern(10, 0));
  rte_pktmbuf_free(d->payload);
  while (auto x = h.udp().recv(*s)) rte_pktmbuf_free(x->payload);
  h.mark();
  // Bytes: a datagram is queued while less than rcv_bytes is (1500 + 1500 +
  // 1500 > 4096 is still taken, the fourth is not).
  for (int i = 0; i < 4; ++i) h.feed(dgram(7000, 9000, pattern(1400)));
  CHECK(s->queued() == 3);
  CHECK(s->queued_bytes() == 4200);
  CHECK(h.changed() == "rx_packets=4 ip_in=4 udp_in=4 udp_rcvbuf_errors=1");
  h.udp().close(s);  // frees the three
}

TEST_CASE("udp: a handler may close its socket in on_readable", "[udp]") {
  UdpHarness h;
  Rec rec;
  rec.close_in_callback = &h.udp();
  h.bind(our_ip, 9000, &rec);
  h.feed(dgram(7000, 9000, pattern(10)));
  CHECK(rec.take() == "readable");
  CHECK(h.udp().sockets() == 0);
  h.feed(dgram(7000, 9000, pattern(10)));
  CHECK(h.count(Counter::udp_no_port) == 1);
  h.tx();
}

TEST_CASE("udp: a connected socket takes datagrams from its peer only", "[udp]") {
  UdpHarness h;
  UdpSocket* s = h.bind(Ipv4Addr::any(), 9000);
  REQUIRE(h.udp().connect(*s, peer_ip, 7000));
  CHECK(s->connected());
  CHECK(s->peer_addr() == peer_ip);
  CHECK(s->peer_port() == 7000);
  h.feed(dgram(7000, 9000, {1}));
  h.feed(dgram(7001, 9000, {2}));                     // another port of the peer
  h.feed(dgram(7000, 9000, {3}, Ip{.src = other_ip}));  // another host
  CHECK(s->queued() == 1);
  CHECK(h.count(Counter::udp_no_port) == 2);
  CHECK(h.tx().size() == 2);  // port unreachable to both (ARP request for other_ip, actually)
  // Dissolved: everyone again.
  REQUIRE(h.udp().connect(*s, Ipv4Addr::any(), 0));
  CHECK(!s->connected());
  h.feed(dgram(7001, 9000, {4}));
  CHECK(s->queued() == 2);
  // Bad peers.
  CHECK(h.udp().connect(*s, Ipv4Addr::broadcast(), 1).error() == Errc::invalid_argument);
  CHECK(h.udp().connect(*s, subnet_bcast, 1).error() == Errc::invalid_argument);
  CHECK(h.udp().connect(*s, Ipv4Addr{224, 0, 0, 1}, 1).error() == Errc::invalid_argument);
  CHECK(h.udp().connect(*s, far_ip, 1).error() == Errc::unreachable);  // no gateway
  CHECK(!s->connected());
  h.udp().close(s);
}

TEST_CASE("udp: broadcasts reach the any() socket and get no ICMP", "[udp]") {
  UdpHarness h;
  UdpSocket* w = h.bind(Ipv4Addr::any(), 9000);
  UdpSocket* one = h.bind(our_ip, 9001);
  auto bcast = [&](Ipv4Addr dst, uint16_t port) {
    h.feed(dgram(7000, port, {7}, Ip{.dst = dst}, keel::net::MacAddr::broadcast()));
  };
  bcast(Ipv4Addr::broadcast(), 9000);
  bcast(subnet_bcast, 9000);
  CHECK(w->queued() == 2);
  auto d = h.udp().recv(*w);
  REQUIRE(d.has_value());
  CHECK(d->dst == Ipv4Addr::broadcast());
  rte_pktmbuf_free(d->payload);
  // A socket bound to one address hears no broadcast; nobody answers for it.
  h.mark();
  bcast(Ipv4Addr::broadcast(), 9001);
  bcast(subnet_bcast, 9001);
  bcast(subnet_bcast, 9002);
  CHECK(one->queued() == 0);
  CHECK(h.changed() ==
        "rx_packets=3 ip_in=3 icmp_unreach_suppressed=3 udp_in=3 udp_no_port=3");
  // Unicast to us in a link-layer broadcast: delivered, but no ICMP either.
  h.mark();
  h.feed(dgram(7000, 9002, {7}, Ip{}, keel::net::MacAddr::broadcast()));
  CHECK(h.changed() == "rx_packets=1 ip_in=1 icmp_unreach_suppressed=1 udp_in=1 udp_no_port=1");
  CHECK(h.tx().empty());
  h.udp().close(w);
  h.udp().close(one);
}

// ===== Send =====

TEST_CASE("udp: send_to writes the header into the payload's headroom", "[udp]") {
  UdpHarness h;
  UdpSocket* s = h.bind(Ipv4Addr::any(), 5000);
  rte_mbuf* m = make_mbuf(pattern(200));
  REQUIRE(h.udp().send_to(*s, m, peer_ip, 7000));
  rte_mbuf* out = h.tx_mbuf();
  REQUIRE(out != nullptr);
  CHECK(out == m);  // the same mbuf: header prepended, no copy, no header mbuf
  CHECK(out->nb_segs == 1);
  Frame f{bytes_of(out), out->ol_flags};
  rte_pktmbuf_free(out);
  UdpOut u = parse_udp_out(f);  // source: the route's, as bound to any()
  CHECK(u.sport == 5000);
  CHECK(u.dport == 7000);
  CHECK(u.len == 208);
  CHECK(u.payload == pattern(200));
  CHECK(u.ip.hdr.ttl == 64);
  CHECK(h.changed() == "tx_packets=1 ip_out=1 udp_out=1");
  // Bound to our other address: that is the source.
  UdpSocket* s2 = h.bind(our_ip2, 5001);
  REQUIRE(h.udp().send_to(*s2, make_mbuf(pattern(1)), peer_ip, 7000));
  UdpOut u2 = parse_udp_out(h.tx_one(), our_ip2);
  CHECK(u2.sport == 5001);
  CHECK(u2.payload == pattern(1));
  h.udp().close(s);
  h.udp().close(s2);
}

TEST_CASE("udp: a received datagram sent back is the same mbuf both ways", "[udp]") {
  UdpHarness h;
  UdpSocket* s = h.bind(our_ip, 5000);
  rte_mbuf* fed = make_mbuf(dgram(7000, 5000, pattern(99)));
  fed->ol_flags |= RTE_MBUF_F_RX_L4_CKSUM_GOOD | RTE_MBUF_F_RX_IP_CKSUM_GOOD;
  h.feed(fed);
  auto d = h.udp().recv(*s);
  REQUIRE(d.has_value());
  REQUIRE(d->payload == fed);
  REQUIRE(h.udp().send_to(*s, d->payload, d->src, d->src_port));  // an echo
  rte_mbuf* out = h.tx_mbuf();
  CHECK(out == fed);
  CHECK((out->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) == 0);  // RX flags are not sent on
  Frame f{bytes_of(out), out->ol_flags};
  rte_pktmbuf_free(out);
  UdpOut u = parse_udp_out(f);
  CHECK(u.sport == 5000);
  CHECK(u.dport == 7000);
  CHECK(u.payload == pattern(99));
  h.udp().close(s);
}

TEST_CASE("udp: with checksum offload the port gets the pseudo-header sum", "[udp]") {
  UdpHarness h;
  h.ifc().caps.tx_udp_cksum = true;
  UdpSocket* s = h.bind(our_ip, 5000);
  for (size_t len : {0u, 1u, 777u}) {
    INFO("payload " << len);
    REQUIRE(h.udp().send_to(*s, make_mbuf(pattern(len)), peer_ip, 7000));
    UdpOut u = parse_udp_out(h.tx_one(), our_ip, true);
    CHECK(u.payload == pattern(len));
  }
  // Fragmented datagrams are summed in software whatever the port can.
  REQUIRE(h.udp().send_to_copy(*s, pattern(2000).data(), 2000, peer_ip, 7000).value_or(0) == 2000);
  auto frames = h.tx();
  REQUIRE(frames.size() == 2);
  for (auto& f : frames) CHECK((f.ol_flags & RTE_MBUF_F_TX_UDP_CKSUM) == 0);
  h.udp().close(s);
}

TEST_CASE("udp: a port that needs even segments gets odd chains summed in software", "[udp]") {
  UdpHarness h;
  h.ifc().caps.tx_udp_cksum = true;
  h.ifc().caps.tx_l4_cksum_even_segments = true;  // net_tap (DPDK 22.11)
  UdpSocket* s = h.bind(our_ip, 5000);
  Bytes p = pattern(1001, 9);
  // An odd-length segment before the last: keel computes the checksum.
  REQUIRE(h.udp().send_to(*s, make_chain(p, {101, 333}), peer_ip, 7000));
  rte_mbuf* out = h.tx_mbuf();
  REQUIRE(out != nullptr);
  CHECK((out->ol_flags & RTE_MBUF_F_TX_UDP_CKSUM) == 0);
  Frame f{bytes_of(out), out->ol_flags};
  rte_pktmbuf_free(out);
  CHECK(parse_udp_out(f).payload == p);  // checksum verified in software
  // Even segments: the port still does it.
  REQUIRE(h.udp().send_to(*s, make_chain(p, {100, 334}), peer_ip, 7000));
  UdpOut u = parse_udp_out(h.tx_one(), our_ip, true);
  CHECK(u.payload == p);
  h.udp().close(s);
}

TEST_CASE("udp: send_to_copy, chained, headroom-less and shared payloads", "[udp]") {
  UdpHarness h;
  UdpSocket* s = h.bind(our_ip, 5000);
  UdpStack& u = h.udp();
  SECTION("send_to_copy") {
    Bytes p = pattern(300, 4);
    auto r = u.send_to_copy(*s, p.data(), p.size(), peer_ip, 7000);
    REQUIRE(r.has_value());
    CHECK(*r == 300);
    CHECK(parse_udp_out(h.tx_one()).payload == p);
    r = u.send_to_copy(*s, nullptr, 0, peer_ip, 7000);  // an empty datagram
    REQUIRE(r.has_value());
    CHECK(*r == 0);
    UdpOut e = parse_udp_out(h.tx_one());
    CHECK(e.len == 8);
    CHECK(e.payload.empty());
  }
  SECTION("a chained payload with odd segments") {
    Bytes p = pattern(1001, 9);
    REQUIRE(u.send_to(*s, make_chain(p, {101, 333}), peer_ip, 7000));
    CHECK(parse_udp_out(h.tx_one()).payload == p);
  }
  SECTION("no headroom: a header mbuf goes in front") {
    rte_mbuf* m = rte_pktmbuf_alloc(pool());
    REQUIRE(m != nullptr);
    m->data_off = 0;
    Bytes p = pattern(64, 2);
    std::memcpy(rte_pktmbuf_append(m, 64), p.data(), 64);
    REQUIRE(u.send_to(*s, m, peer_ip, 7000));
    rte_mbuf* out = h.tx_mbuf();
    REQUIRE(out != nullptr);
    CHECK(out != m);  // (the port lacks multi-segment TX: the chain was linearised)
    Frame f{bytes_of(out), out->ol_flags};
    rte_pktmbuf_free(out);
    CHECK(parse_udp_out(f).payload == p);
  }
  SECTION("a clone: the shared buffer's headroom is not written") {
    rte_mbuf* orig = make_mbuf(pattern(64, 5));
    std::memset(rte_pktmbuf_mtod(orig, uint8_t*) - 8, 0xa5, 8);  // headroom marker
    rte_mbuf* c = rte_pktmbuf_clone(orig, pool());
    REQUIRE(c != nullptr);
    REQUIRE(u.send_to(*s, c, peer_ip, 7000));
    CHECK(parse_udp_out(h.tx_one()).payload == pattern(64, 5));
    CHECK(Bytes(rte_pktmbuf_mtod(orig, uint8_t*) - 8, rte_pktmbuf_mtod(orig, uint8_t*)) ==
          Bytes(8, 0xa5));
    CHECK(bytes_of(orig) == pattern(64, 5));
    rte_pktmbuf_free(orig);
  }
  CHECK(h.count(Counter::udp_out) >= 1);
  u.close(s);
}

TEST_CASE("udp: datagrams over the MTU are fragmented, over 65507 refused", "[udp]") {
  UdpHarness h;
  UdpSocket* s = h.bind(our_ip, 5000);
  UdpStack& u = h.udp();
  auto reassemble = [&](size_t payload_len) {
    auto frames = h.tx();
    REQUIRE(frames.size() == (8 + payload_len + 1479) / 1480);
    Bytes whole;
    uint16_t id = 0;
    for (size_t i = 0; i < frames.size(); ++i) {
      IpPacket ip = parse_ipv4(parse_ether(frames[i].bytes).payload);
      CHECK(ip.hdr.frag_off == i * 1480);
      CHECK(ip.hdr.mf == (i + 1 < frames.size()));
      CHECK(!ip.hdr.df);
      CHECK(ip.hdr.protocol == 17);
      if (i == 0) id = ip.hdr.id;
      CHECK(ip.hdr.id == id);
      CHECK(ip.total_len <= 1500);
      whole = cat(whole, ip.payload);
    }
    REQUIRE(whole.size() == 8 + payload_len);
    CHECK(load_be16(&whole[0]) == 5000);
    CHECK(load_be16(&whole[2]) == 7000);
    CHECK(load_be16(&whole[4]) == uint16_t(whole.size()));
    CHECK(fold_cksum(sum16(whole.data(), whole.size(),
                           pseudo_sum(our_ip, peer_ip, 17, whole.size()))) == 0);
    return Bytes(whole.begin() + 8, whole.end());
  };
  Bytes p = pattern(3000, 1);
  REQUIRE(u.send_to_copy(*s, p.data(), p.size(), peer_ip, 7000));
  CHECK(reassemble(3000) == p);
  // The largest datagram there is.
  rte_mbuf* big = keel::engine::alloc_chain(pool(), UdpStack::max_payload);
  REQUIRE(big != nullptr);
  REQUIRE(u.send_to(*s, big, peer_ip, 7000));
  CHECK(reassemble(UdpStack::max_payload).size() == UdpStack::max_payload);
  // One byte more: refused, and the mbuf is still the caller's.
  rte_mbuf* too_big = keel::engine::alloc_chain(pool(), UdpStack::max_payload + 1);
  REQUIRE(too_big != nullptr);
  CHECK(u.send_to(*s, too_big, peer_ip, 7000).error() == Errc::invalid_argument);
  rte_pktmbuf_free(too_big);
  std::vector<uint8_t> buf(UdpStack::max_payload + 1);
  CHECK(u.send_to_copy(*s, buf.data(), buf.size(), peer_ip, 7000).error() ==
        Errc::invalid_argument);
  CHECK(h.tx().empty());
  u.close(s);
}

TEST_CASE("udp: bad destinations are refused without taking the payload", "[udp]") {
  UdpHarness h;
  UdpSocket* s = h.bind(our_ip, 5000);
  UdpStack& u = h.udp();
  rte_mbuf* m = make_mbuf(pattern(10));
  CHECK(u.send_to(*s, m, peer_ip, 0).error() == Errc::invalid_argument);
  CHECK(u.send_to(*s, m, Ipv4Addr::any(), 7000).error() == Errc::invalid_argument);
  CHECK(u.send_to(*s, m, Ipv4Addr::broadcast(), 7000).error() == Errc::invalid_argument);
  CHECK(u.send_to(*s, m, subnet_bcast, 7000).error() == Errc::invalid_argument);
  CHECK(u.send_to(*s, m, Ipv4Addr{239, 1, 1, 1}, 7000).error() == Errc::invalid_argument);
  CHECK(u.send_to(*s, nullptr, peer_ip, 7000).error() == Errc::invalid_argument);
  // Unconnected send(): not_connected, not taken either.
  CHECK(u.send(*s, m).error() == Errc::not_connected);
  CHECK(bytes_of(m) == pattern(10));
  // No route (no gateway here): taken and freed.
  CHECK(u.send_to(*s, m, far_ip, 7000).error() == Errc::unreachable);
  CHECK(h.changed() == "ip_no_route=1");
  // Connected: send() goes to the peer.
  REQUIRE(u.connect(*s, peer_ip, 7002));
  REQUIRE(u.send(*s, make_mbuf(pattern(3))));
  UdpOut o = parse_udp_out(h.tx_one());
  CHECK(o.dport == 7002);
  CHECK(o.payload == pattern(3));
  u.close(s);
}

// ===== ICMP port unreachable =====

TEST_CASE("udp: a closed port gets one ICMP port unreachable quoting the datagram", "[udp]") {
  UdpHarness h;
  Ip ip;
  Bytes payload = pattern(50);
  SECTION("plain header") {}
  SECTION("header with options") { ip.options = {0x01, 0x01, 0x01, 0x00}; }
  Bytes f = dgram(7000, 9999, payload, ip);
  h.feed(f);
  Bytes quote = parse_unreachable(h.tx_one(), 3);
  size_t ihl = 20 + ip.options.size();
  // RFC 792: the IP header as received and the first 8 bytes of its data.
  CHECK(quote == Bytes(f.begin() + 14, f.begin() + ptrdiff_t(14 + ihl + 8)));
  CHECK(h.changed() == "rx_packets=1 tx_packets=1 ip_in=1 ip_out=1 icmp_unreach_out=1 udp_in=1 "
                       "udp_no_port=1");
  // A datagram with a bad checksum is dropped before: no ICMP for it.
  Bytes bad = f;
  bad.back() ^= 1;
  h.feed(bad);
  CHECK(h.tx().empty());
}

TEST_CASE("udp: ICMP errors are rate limited", "[udp]") {
  SECTION("the default bucket: a burst of 50") {
    UdpHarness h;
    for (int i = 0; i < 60; ++i) h.feed(dgram(7000, 9999, pattern(8)));
    CHECK(h.tx().size() == 50);
    CHECK(h.count(Counter::icmp_unreach_ratelimited) == 10);
    h.advance(1 * ms);  // 1000 per second: one more
    h.feed(dgram(7000, 9999, pattern(8)));
    h.feed(dgram(7000, 9999, pattern(8)));
    CHECK(h.tx().size() == 1);
    CHECK(h.count(Counter::udp_no_port) == 62);
  }
  SECTION("configured: 10 per second, burst 3") {
    InstanceConfig ic;
    ic.icmp_errors_per_sec = 10;
    ic.icmp_errors_burst = 3;
    UdpHarness h(small_config(), ic);
    for (int i = 0; i < 5; ++i) h.feed(dgram(7000, 9999, {}));
    CHECK(h.tx().size() == 3);
    h.advance(99 * ms);
    h.feed(dgram(7000, 9999, {}));
    CHECK(h.tx().empty());
    h.advance(1 * ms);
    h.feed(dgram(7000, 9999, {}));
    h.feed(dgram(7000, 9999, {}));
    CHECK(h.tx().size() == 1);
    h.advance(10 * sec);  // refills to the burst, no further
    for (int i = 0; i < 5; ++i) h.feed(dgram(7000, 9999, {}));
    CHECK(h.tx().size() == 3);
    CHECK(h.changed().find("icmp_unreach_ratelimited=6") != std::string::npos);
  }
}

TEST_CASE("udp: send_icmp_error keeps RFC 1122 3.2.2's silences", "[udp]") {
  UdpHarness h;
  // A frame as ip_deliver hands it on: data at the L4 header.
  auto deliver = [&](const Ip& ip, const Bytes& l4, uint8_t code,
                     keel::net::MacAddr eth_dst = our_mac) {
    rte_mbuf* m = make_mbuf(ether(eth_dst, peer_mac, 0x0800, ipv4(ip, l4)));
    rte_pktmbuf_adj(m, uint16_t(14 + 20 + ip.options.size()));
    Ipv4Meta meta;
    meta.src = ip.src;
    meta.dst = ip.dst;
    meta.protocol = ip.protocol;
    meta.ihl = uint8_t(20 + ip.options.size());
    auto r = h.inst().send_icmp_error(code, m, meta, h.now);
    rte_pktmbuf_free(m);
    return r.has_value() ? Errc::ok : r.error();
  };
  Bytes u = udp(peer_ip, our_ip, 7000, 9999, pattern(20));
  CHECK(deliver(Ip{.frag_off = 8}, u, 3) == Errc::invalid_argument);  // not the first fragment
  CHECK(deliver(Ip{.dst = subnet_bcast}, u, 3) == Errc::invalid_argument);
  CHECK(deliver(Ip{.dst = Ipv4Addr{224, 0, 0, 9}}, u, 3) == Errc::invalid_argument);
  for (Ipv4Addr src : {Ipv4Addr::any(), Ipv4Addr::broadcast(), Ipv4Addr{240, 0, 0, 1},
                       Ipv4Addr{127, 0, 0, 1}, Ipv4Addr{224, 0, 0, 1}})
    CHECK(deliver(Ip{.src = src}, u, 3) == Errc::invalid_argument);  // not one host
  CHECK(deliver(Ip{}, u, 3, keel::net::MacAddr::broadcast()) == Errc::invalid_argument);
  CHECK(deliver(Ip{}, u, 3, keel::net::MacAddr{{0x01, 0x00, 0x5e, 0, 0, 1}}) ==
        Errc::invalid_argument);  // a link-layer multicast
  for (uint8_t type : {3, 4, 5, 11, 12})  // ICMP errors are never answered
    CHECK(deliver(Ip{.protocol = 1}, icmp(type, 0, 0, Bytes(28, 0)), 2) == Errc::invalid_argument);
  CHECK(h.changed() == "icmp_unreach_suppressed=15");
  CHECK(h.tx().empty());
  // A query is: here, protocol unreachable about an echo request; and the
  // first fragment of a datagram is.
  Bytes echo = echo_request(1, 2, pattern(30));
  CHECK(deliver(Ip{.protocol = 1}, echo, 2) == Errc::ok);
  Bytes q = parse_unreachable(h.tx_one(), 2);
  CHECK(Bytes(q.begin() + 20, q.end()) == Bytes(echo.begin(), echo.begin() + 8));
  CHECK(deliver(Ip{.mf = true}, u, 3) == Errc::ok);
  parse_unreachable(h.tx_one(), 3);
}

// ===== ICMP errors for our datagrams =====

TEST_CASE("udp: ICMP errors reach a connected socket; the next send returns them", "[udp]") {
  UdpHarness h;
  Rec rec;
  UdpSocket* s = h.bind(Ipv4Addr::any(), 5000, &rec);
  UdpStack& u = h.udp();
  REQUIRE(u.connect(*s, peer_ip, 7000));
  REQUIRE(u.send_to_copy(*s, "ping", 4, peer_ip, 7000));
  const Bytes sent = ip_part(h.tx_one().bytes);
  h.mark();
  h.feed(icmp_about(3, 3, sent));  // port unreachable
  CHECK(rec.take() == "error:connection refused");
  CHECK(s->pending_error() == Errc::connection_refused);
  // The next send returns it (and takes the payload); the one after works.
  CHECK(u.send(*s, make_mbuf(pattern(4))).error() == Errc::connection_refused);
  CHECK(s->pending_error() == Errc::ok);
  CHECK(h.tx().empty());
  REQUIRE(u.send(*s, make_mbuf(pattern(4))));
  CHECK(h.tx().size() == 1);
  // Other codes: unreachable. Fragmentation needed: nothing (we never set DF).
  h.feed(icmp_about(3, 1, sent));
  CHECK(rec.take() == "error:unreachable");
  h.feed(icmp_about(11, 0, sent));
  CHECK(rec.take() == "error:unreachable");
  h.feed(icmp_about(3, 4, sent, 1400));
  CHECK(rec.take().empty());
  CHECK(h.count(Counter::udp_icmp_errors) == 3);
  // connect() clears a pending error.
  REQUIRE(u.connect(*s, peer_ip, 7000));
  CHECK(s->pending_error() == Errc::ok);
  // About another peer port, or to an unconnected socket: nobody hears of it.
  Bytes other = sent;
  store_be16(&other[22], 7001);
  h.feed(icmp_about(3, 3, other));
  REQUIRE(u.connect(*s, Ipv4Addr::any(), 0));
  h.feed(icmp_about(3, 3, sent));
  CHECK(rec.take().empty());
  CHECK(s->pending_error() == Errc::ok);
  CHECK(h.count(Counter::udp_icmp_errors) == 3);
  CHECK(h.tx().empty());
  u.close(s);
}

// ===== Through the Engine =====

namespace {

/// Sends every datagram back where it came from (zero copy).
struct EchoService : UdpHandler {
  UdpStack* udp = nullptr;
  void on_readable(UdpSocket& s) override {
    while (auto d = udp->recv(s)) (void)udp->send_to(s, d->payload, d->src, d->src_port);
  }
};

/// Collects what arrives, for a thread other than the instance's.
struct Collector : UdpHandler {
  UdpStack* udp = nullptr;
  std::mutex mu;
  std::vector<Bytes> got;
  std::vector<Errc> errors;
  void on_readable(UdpSocket& s) override {
    while (auto d = udp->recv(s)) {
      std::lock_guard<std::mutex> lk(mu);
      got.push_back(bytes_of(d->payload));
      rte_pktmbuf_free(d->payload);
    }
  }
  void on_error(UdpSocket&, Errc e) override {
    std::lock_guard<std::mutex> lk(mu);
    errors.push_back(e);
  }
  template <class F>
  bool wait_for(F&& done) {
    for (int i = 0; i < 400; ++i) {
      {
        std::lock_guard<std::mutex> lk(mu);
        if (done()) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }
};

/// Runs `fn` on instance 0 of `e` and waits for it.
void run_on(keel::engine::Engine& e, const std::function<void(Instance&)>& fn) {
  std::atomic<bool> done{false};
  REQUIRE(e.instances()[0]->post([&](Instance& i) {
    fn(i);
    done = true;
  }));
  for (int i = 0; i < 400 && !done; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  REQUIRE(done);
}

}  // namespace

TEST_CASE("udp: two engines on a ring link: echo and port unreachable across threads", "[udp]") {
  PoolBaseline baseline;  // the test pool is untouched: each engine has its own, checked below
  static auto link = keel::drivers::create_ring_link("udp_engines", 1024);
  REQUIRE(link.has_value());
  auto make = [](const char* dev, const char* addr) {
    keel::engine::EngineConfig cfg;
    cfg.instances = 1;
    cfg.pool_mbufs = 1023;
    cfg.tcp.max_connections = 16;
    cfg.tcp.ooo_queues = cfg.tcp.rack_logs = cfg.tcp.sack_boards = 2;
    cfg.udp.max_sockets = 4;
    keel::engine::PortSpec p;
    p.device = dev;
    p.l3.addrs = {*Ipv4Cidr::parse(addr)};
    cfg.ports = {p};
    auto e = keel::engine::Engine::create(cfg);
    INFO(dev << ": " << (e ? "" : e.error()));
    REQUIRE(e.has_value());
    return std::move(*e);
  };
  EchoService echo;
  Collector col;
  auto a = make("net_ring_udp_engines_a", "198.18.0.1/24");
  auto b = make("net_ring_udp_engines_b", "198.18.0.2/24");
  const Ipv4Addr b_ip{198, 18, 0, 2};
  echo.udp = &b->udp(0);
  col.udp = &a->udp(0);
  REQUIRE(a->launch());
  REQUIRE(b->launch());
  // Catch2's assertions are not for other threads: the closures record, this thread checks.
  bool ok = false;
  run_on(*b, [&](Instance&) { ok = b->udp(0).bind(Ipv4Addr::any(), 7, &echo).has_value(); });
  REQUIRE(ok);
  UdpSocket* to_echo = nullptr;
  UdpSocket* to_closed = nullptr;
  run_on(*a, [&](Instance&) {
    UdpStack& u = a->udp(0);
    to_echo = u.bind(Ipv4Addr::any(), 0, &col).value_or(nullptr);
    to_closed = u.bind(Ipv4Addr::any(), 0, &col).value_or(nullptr);
    ok = to_echo && to_closed && u.send_to_copy(*to_echo, "hello", 5, b_ip, 7) &&  // after ARP
         u.connect(*to_closed, b_ip, 9);
  });
  REQUIRE(ok);
  CHECK(col.wait_for([&] { return col.got.size() == 1; }));
  CHECK(col.got.at(0) == Bytes{'h', 'e', 'l', 'l', 'o'});
  run_on(*a, [&](Instance&) {
    ok = a->udp(0).send(*to_closed, keel::engine::alloc_chain(a->pool(), 1)).has_value();
  });
  REQUIRE(ok);
  CHECK(col.wait_for([&] { return col.errors.size() == 1; }));
  CHECK(col.errors.at(0) == Errc::connection_refused);
  a->stop();
  b->stop();
  auto& ac = a->instances()[0]->counters();
  auto& bc = b->instances()[0]->counters();
  CHECK(ac.get(Counter::udp_out) == 2);
  CHECK(ac.get(Counter::udp_in) == 1);
  CHECK(ac.get(Counter::udp_icmp_errors) == 1);
  CHECK(bc.get(Counter::udp_in) == 2);
  CHECK(bc.get(Counter::udp_out) == 1);
  CHECK(bc.get(Counter::udp_no_port) == 1);
  CHECK(bc.get(Counter::icmp_unreach_out) == 1);
  a->quiesce();  // frees the sockets (and anything queued) on this thread, the loops being stopped
  b->quiesce();
  CHECK(rte_mempool_in_use_count(a->pool()) == 0);
  CHECK(rte_mempool_in_use_count(b->pool()) == 0);
}
