// SPDX-License-Identifier: BSD-3-Clause
#include "tcp_harness.hpp"

#include <rte_ring.h>

#include <sstream>
#include <stdexcept>

#include "drivers/port.hpp"
#include "drivers/ring_port.hpp"

namespace keel::test::tcp {

using keel::drivers::Port;
using keel::drivers::PortConfig;
using keel::engine::Counter;
using keel::engine::counter_count;
using keel::engine::counter_name;
using keel::net::load_be16;
using keel::net::load_be32;
using keel::net::store_be16;
using keel::net::store_be32;

namespace {

struct TestPort {
  keel::drivers::RingPort ring;
  Port port;
};

/// Ring ports are process-global and cannot be removed: every TCP test shares
/// this one, and each harness drains both rings before and after it runs.
TestPort& test_port() {
  static TestPort tp = [] {
    auto rp = keel::drivers::create_ring_port("tcp_unit", 1024);
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

std::string hex(uint32_t v) {
  std::ostringstream os;
  os << "0x" << std::hex << v;
  return os.str();
}

}  // namespace

std::string flags_str(uint8_t f) {
  static const char* names[] = {"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"};
  std::string s;
  for (int i = 0; i < 8; ++i)
    if (f & (1u << i)) s += (s.empty() ? "" : "|") + std::string(names[i]);
  return s.empty() ? "none" : s;
}

Bytes encode_options(const Opts& o) {
  if (o.raw) return *o.raw;
  Bytes b;
  auto be16 = [&](uint16_t v) { b.push_back(uint8_t(v >> 8)), b.push_back(uint8_t(v)); };
  auto be32 = [&](uint32_t v) { be16(uint16_t(v >> 16)), be16(uint16_t(v)); };
  if (o.mss) {
    b.insert(b.end(), {2, 4});
    be16(*o.mss);
  }
  if (o.sack_perm) b.insert(b.end(), {1, 1, 4, 2});
  if (o.ts) {
    b.insert(b.end(), {1, 1, 8, 10});
    be32(o.ts->first);
    be32(o.ts->second);
  }
  if (o.ws) b.insert(b.end(), {1, 3, 3, *o.ws});
  if (!o.sack.empty()) {
    b.insert(b.end(), {1, 1, 5, uint8_t(2 + 8 * o.sack.size())});
    for (auto [l, r] : o.sack) be32(l), be32(r);
  }
  return b;
}

std::string describe(const Opts& o) {
  if (o.raw) return "raw(" + std::to_string(o.raw->size()) + " bytes)";
  std::ostringstream os;
  if (o.mss) os << " mss=" << *o.mss;
  if (o.ws) os << " ws=" << int(*o.ws);
  if (o.sack_perm) os << " sackok";
  if (o.ts) os << " ts=" << o.ts->first << "/" << o.ts->second;
  if (!o.sack.empty()) {
    os << " sack=";
    for (auto [l, r] : o.sack) os << "[" << hex(l) << "," << hex(r) << ")";
  }
  std::string s = os.str();
  return s.empty() ? "none" : s.substr(1);
}

Opts opts_of(const keel::tcp::TcpOptions& t) {
  Opts o;
  if (t.mss) o.mss = t.mss;
  if (t.wscale >= 0) o.ws = uint8_t(t.wscale);
  o.sack_perm = t.sack_permitted;
  if (t.has_timestamp) o.ts = {t.tsval, t.tsecr};
  for (size_t i = 0; i < t.sack_count; ++i) o.sack.push_back({t.sack[i].left, t.sack[i].right});
  return o;
}

std::string Out::str() const {
  std::ostringstream os;
  os << flags_str(h.flags) << " " << h.src_port << ">" << h.dst_port << " seq=" << hex(h.seq)
     << " ack=" << hex(h.ack) << " win=" << h.window << " len=" << data.size()
     << " opts=" << describe(opts_of(h.opt));
  return os.str();
}

// ===== Application side =====

std::string ConnRec::take_events() {
  std::string s;
  for (auto& e : events_) s += (s.empty() ? "" : " ") + e;
  events_.clear();
  return s;
}

void ConnRec::note(std::string e) { events_.push_back(std::move(e)); }

void ConnRec::on_connected(Tcb& c) {
  tcb = &c;
  note("connected");
}

void ConnRec::on_readable(Tcb& c) {
  note("readable");
  if (auto_read && stack != nullptr) {
    rte_mbuf* m = stack->recv(c);
    if (m != nullptr) {
      Bytes b = bytes_of(m);
      received.insert(received.end(), b.begin(), b.end());
      rte_pktmbuf_free(m);
    }
  }
}

void ConnRec::on_writable(Tcb&) { note("writable"); }
void ConnRec::on_peer_closed(Tcb&) { note("peer_closed"); }

void ConnRec::on_closed(Tcb&, Errc r) {
  note("closed:" + std::string(keel::to_string(r)));
  closed = true;
  reason = r;
  tcb = nullptr;
}

ConnHandler* ListenRec::on_accept(Tcb& c) {
  if (refuse) return nullptr;
  auto rec = std::make_unique<ConnRec>();
  rec->stack = stack;
  rec->tcb = &c;
  rec->auto_read = auto_read;
  rec->note("accepted");
  conns.push_back(std::move(rec));
  return conns.back().get();
}

// ===== Harness =====

TcpConfig TcpHarness::default_config() {
  TcpConfig c;
  c.max_connections = 64;
  c.snd_buf = 1 << 17;
  c.rcv_buf = 1 << 17;
  c.ooo_max_segments = 64;
  c.ooo_queues = 8;
  c.min_rto_ns = 200 * ms;
  c.max_rto_ns = 60 * sec;
  c.initial_rto_ns = 1 * sec;
  c.delack_ns = 40 * ms;
  c.msl_ns = 1 * sec;
  c.syn_retries = 3;
  c.max_retransmits = 6;
  c.syn_received_timeout_ns = 10 * sec;
  return c;
}

TcpHarness::TcpHarness(const TcpConfig& cfg) {
  drain();
  engine::InstanceConfig ic;
  ic.arp.reachable_ns = 1'000'000 * sec;  // no ARP refresh in the middle of a test
  inst_ = std::make_unique<engine::Instance>(ic, now_);
  engine::InterfaceConfig l3;
  l3.addrs = {net::Ipv4Cidr{our_ip, 24}};
  ifc_ = &inst_->add_interface(test_port().port, 0, l3, pool());
  stack_ = std::make_unique<TcpStack>(*inst_, cfg);
  stack_->set_clock(&TcpHarness::clock_fn, this);
  lst.stack = stack_.get();
  conn.stack = stack_.get();
  peer_ts_offset = uint32_t(0u - 4000u - uint32_t(t0 / ms));
  // The peer's MAC is known before the first segment (an unsolicited ARP reply).
  send_frame(ether(our_mac, peer_mac, 0x0806, arp_reply(peer_mac, peer_ip, our_mac, our_ip)));
  REQUIRE(take().empty());
  mark();
}

TcpHarness::~TcpHarness() {
  drain();
  stack_.reset();  // frees every TCB and what it holds
  drain();
  inst_.reset();
  drain();
}

void TcpHarness::drain() {
  TestPort& p = test_port();
  void* m = nullptr;
  while (rte_ring_dequeue(p.ring.rx, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
  while (rte_ring_dequeue(p.ring.tx, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
}

std::string TcpHarness::changed() const {
  std::ostringstream os;
  for (size_t i = 0; i < counter_count; ++i) {
    auto c = Counter(i);
    if (c == Counter::rx_bytes || c == Counter::tx_bytes) continue;
    uint64_t d = inst_->counters().get(c) - counter_base_[i];
    if (d != 0) os << (os.tellp() ? " " : "") << counter_name(c) << "=" << d;
  }
  return os.str();
}

void TcpHarness::mark() {
  counter_base_.assign(counter_count, 0);
  for (size_t i = 0; i < counter_count; ++i) counter_base_[i] = inst_->counters().get(Counter(i));
}

void TcpHarness::advance_to(uint64_t t) {
  REQUIRE(t >= now_);
  // Frames sent before this step are parsed (and their TSval checked) at the
  // time they were sent; take() returns them first.
  auto earlier = take();
  pending_.insert(pending_.end(), earlier.begin(), earlier.end());
  now_ = t;
  poll();
}

Bytes TcpHarness::frame(Seg s) {
  uint32_t seq = s.seq.value_or(peer_nxt);
  uint32_t ack = s.ack.value_or(keel_nxt);
  if (ts_on && !s.no_ts && !s.opt.ts && !s.opt.raw) s.opt.ts = {pts(), last_keel_ts};
  Bytes opts = encode_options(s.opt);
  REQUIRE(opts.size() <= 40);
  while (opts.size() % 4 != 0) opts.push_back(0);  // EOL padding
  Bytes t(20, 0);
  store_be16(&t[0], s.sport.value_or(pport));
  store_be16(&t[2], s.dport.value_or(kport));
  store_be32(&t[4], seq);
  store_be32(&t[8], ack);
  t[12] = uint8_t(s.data_off.value_or(uint8_t((20 + opts.size()) / 4)) << 4);
  t[13] = s.flags;
  store_be16(&t[14], s.window);
  store_be16(&t[18], s.urgent);
  t = cat(cat(t, opts), s.data);
  uint16_t c = fold_cksum(sum16(t.data(), t.size(), pseudo_sum(peer_ip, our_ip, 6, t.size())));
  if (s.bad_checksum) c = uint16_t(c ^ 0x5a5a);
  store_be16(&t[16], c);
  Ip ip;
  ip.protocol = 6;
  ip.df = true;
  return ether(our_mac, peer_mac, 0x0800, ipv4(ip, t));
}

void TcpHarness::send(Seg s) { send_frame(frame(std::move(s))); }

void TcpHarness::send_frame(const Bytes& f) {
  REQUIRE(rte_ring_enqueue(test_port().ring.rx, make_mbuf(f)) == 0);
  poll();
}

std::vector<Out> TcpHarness::take() {
  inst_->flush(now_);
  std::vector<Out> out = std::move(pending_);
  pending_.clear();
  void* p = nullptr;
  while (rte_ring_dequeue(test_port().ring.tx, &p) == 0) {
    auto* mb = static_cast<rte_mbuf*>(p);
    Bytes f = bytes_of(mb);
    uint32_t pkt_len = mb->pkt_len;
    rte_pktmbuf_free(mb);
    REQUIRE(f.size() == pkt_len);
    IpPacket ip = parse_ipv4_frame(f, peer_mac, our_mac, our_ip, peer_ip, 6);
    CHECK(ip.hdr.df);
    CHECK(!ip.hdr.mf);
    CHECK(ip.hdr.frag_off == 0);
    CHECK(ip.hdr.ttl == 64);
    const Bytes& t = ip.payload;
    REQUIRE(t.size() >= 20);
    INFO("TCP checksum over the pseudo header");
    CHECK(fold_cksum(sum16(t.data(), t.size(), pseudo_sum(our_ip, peer_ip, 6, t.size()))) == 0);
    CHECK((t[12] & 0x0f) == 0);  // reserved bits
    keel::tcp::TcpParseError err{};
    auto seg = keel::tcp::parse_tcp(t.data(), t.size(), err);
    REQUIRE(seg.has_value());
    Out o{*seg, Bytes(t.begin() + ptrdiff_t(seg->header_len), t.end()),
          Bytes(f.begin() + 14, f.end())};
    INFO(o.str());
    CHECK(o.h.urgent == 0);
    CHECK((o.h.flags & URG) == 0);
    if (o.h.opt.has_timestamp) {
      // Every TSval is the stack's clock in 1 ms ticks (a cookie SYN-ACK's low bits differ).
      if (!(o.h.flags & SYN)) CHECK(o.h.opt.tsval == kts());
      last_keel_ts = o.h.opt.tsval;
    }
    out.push_back(std::move(o));
  }
  return out;
}

void TcpHarness::check(const Out& o, const Expect& e) {
  INFO("got " << o.str());
  if (e.flags) CHECK(flags_str(o.flags()) == flags_str(*e.flags));
  if (e.seq) CHECK(hex(o.seq()) == hex(*e.seq));
  if (e.ack) CHECK(hex(o.ack()) == hex(*e.ack));
  if (e.window) CHECK(o.window() == *e.window);
  if (e.len) CHECK(o.len() == *e.len);
  if (e.data) CHECK(o.data == *e.data);
  if (e.opt) CHECK(describe(opts_of(o.h.opt)) == describe(*e.opt));
  if (e.sack) {
    Opts want;
    want.sack = *e.sack;
    Opts got;
    got.sack = opts_of(o.h.opt).sack;
    CHECK(describe(got) == describe(want));
  }
  if (e.tsecr) {
    CHECK(o.h.opt.has_timestamp);
    CHECK(o.h.opt.tsecr == *e.tsecr);
  }
}

Out TcpHarness::recv(const Expect& e) {
  auto v = take();
  std::string all;
  for (auto& o : v) all += "\n  " + o.str();
  INFO("sent:" << (all.empty() ? " nothing" : all));
  REQUIRE(v.size() == 1);
  check(v[0], e);
  return v[0];
}

void TcpHarness::recv_nothing() {
  auto v = take();
  std::string all;
  for (auto& o : v) all += "\n  " + o.str();
  INFO("sent:" << all);
  CHECK(v.empty());
}

Listener* TcpHarness::listen(uint16_t port, uint32_t backlog) {
  auto r = stack_->listen(net::Ipv4Addr::any(), port, backlog, &lst);
  REQUIRE(r.has_value());
  return *r;
}

Seg TcpHarness::syn(const PeerOpts& po) const {
  Seg s;
  s.seq = irs;
  s.ack = 0;
  s.flags = SYN;
  s.window = po.window;
  if (po.mss) s.opt.mss = po.mss;
  if (po.ws >= 0) s.opt.ws = uint8_t(po.ws);
  s.opt.sack_perm = po.sack;
  if (po.ts) s.opt.ts = {pts(), 0};
  s.no_ts = true;
  return s;
}

Tcb* TcpHarness::accept_established(const PeerOpts& po) {
  if (stack_->find_listener(our_ip, kport) == nullptr) listen(kport);
  send(syn(po));
  Out sa = recv(Expect{.ack = irs + 1, .flags = SYN | ACK});
  iss = sa.seq();
  ts_on = po.ts && sa.h.opt.has_timestamp;
  peer_nxt = irs + 1;
  keel_nxt = iss + 1;
  size_t before = lst.conns.size();
  Seg a;
  a.flags = ACK;
  send(a);
  recv_nothing();
  REQUIRE(lst.conns.size() == before + 1);
  app_ = lst.conns.back().get();
  CHECK(app_->take_events() == "accepted");
  REQUIRE(tcb() != nullptr);
  REQUIRE(state() == "ESTABLISHED");
  return tcb();
}

Tcb* TcpHarness::connect_established(const PeerOpts& po) {
  auto r = stack_->connect(peer_ip, pport, &conn);
  REQUIRE(r.has_value());
  Out s = recv(Expect{.flags = SYN});
  iss = s.seq();
  kport = s.h.src_port;
  CHECK(state() == "SYN-SENT");
  Seg sa;
  sa.seq = irs;
  sa.ack = iss + 1;
  sa.flags = SYN | ACK;
  sa.window = po.window;
  if (po.mss) sa.opt.mss = po.mss;
  if (po.ws >= 0) sa.opt.ws = uint8_t(po.ws);
  sa.opt.sack_perm = po.sack;
  if (po.ts) sa.opt.ts = {pts(), s.h.opt.tsval};
  sa.no_ts = true;
  send(sa);
  ts_on = po.ts && s.h.opt.has_timestamp;
  recv(Expect{.seq = iss + 1, .ack = irs + 1, .flags = ACK});
  peer_nxt = irs + 1;
  keel_nxt = iss + 1;
  app_ = &conn;
  CHECK(conn.take_events() == "connected");
  REQUIRE(state() == "ESTABLISHED");
  return tcb();
}

Tcb* TcpHarness::tcb() {
  keel::tcp::ConnKey k{our_ip.v, peer_ip.v, kport, pport};
  return stack_->lookup(k);
}

std::string TcpHarness::state() {
  Tcb* c = tcb();
  return c == nullptr ? "CLOSED" : keel::tcp::to_string(c->state);
}

Bytes TcpHarness::read_all(Tcb& c) {
  rte_mbuf* m = stack_->recv(c);
  if (m == nullptr) return {};
  Bytes b = bytes_of(m);
  rte_pktmbuf_free(m);
  return b;
}

ConnRec& TcpHarness::app() {
  if (Tcb* c = tcb()) {
    if (conn.tcb == c) return conn;
    for (auto& r : lst.conns)
      if (r->tcb == c) return *r;
  }
  return *app_;
}

void TcpHarness::close_by_peer() {
  INFO("close_by_peer");
  Tcb* c = tcb();
  REQUIRE(c != nullptr);
  ConnRec& a = app();
  send(Seg{.flags = FIN | ACK});
  peer_nxt += 1;
  recv(Expect{.seq = keel_nxt, .ack = peer_nxt, .flags = ACK});
  CHECK(state() == "CLOSE-WAIT");
  CHECK(a.take_events().find("peer_closed") != std::string::npos);
  stack_->close(*c);
  recv(Expect{.seq = keel_nxt, .ack = peer_nxt, .flags = FIN | ACK});
  keel_nxt += 1;
  CHECK(state() == "LAST-ACK");
  send(Seg{.flags = ACK});
  recv_nothing();
  CHECK(state() == "CLOSED");
  CHECK(a.take_events() == "closed:ok");
}

void TcpHarness::finish() {
  CHECK(stack_->connections() == 0);
  recv_nothing();
}

}  // namespace keel::test::tcp
