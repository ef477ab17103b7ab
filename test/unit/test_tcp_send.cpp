// SPDX-License-Identifier: BSD-3-Clause
// TCP at packet level, sending: zero-window probes (persist), retransmission
// timeouts with exponential backoff and Karn's rule, fast retransmit on three
// duplicate ACKs, SACK-based recovery retransmitting only the holes, send-buffer
// back-pressure, and ICMP fragmentation-needed lowering the MSS. The test plays
// the peer; see tcp_harness.hpp.
#include "tcp_harness.hpp"

#include <set>

#include "tcp/seq.hpp"

using namespace keel::test;
using namespace keel::test::tcp;
using keel::engine::Counter;

namespace {

/// 1460-byte segments: no timestamps; SACK as asked; no window scaling.
PeerOpts no_ts(bool sack) { return PeerOpts{.mss = 1460, .ws = -1, .sack = sack, .ts = false}; }

/// The peer's ICMP "fragmentation needed" (type 3 code 4) quoting `o`.
Bytes frag_needed(const Out& o, uint16_t mtu) {
  Bytes quote(o.ip_packet.begin(), o.ip_packet.begin() + 28);  // IPv4 header + 8 bytes of TCP
  Ip ip;
  ip.protocol = 1;
  return ether(our_mac, peer_mac, 0x0800, ipv4(ip, icmp(3, 4, mtu, quote)));
}

/// The peer's (or a router's) ICMP destination unreachable with `code`, quoting `o`.
Bytes unreachable(const Out& o, uint8_t code) {
  Bytes quote(o.ip_packet.begin(), o.ip_packet.begin() + 28);
  Ip ip;
  ip.protocol = 1;
  return ether(our_mac, peer_mac, 0x0800, ipv4(ip, icmp(3, code, 0, quote)));
}

}  // namespace

// ===== ICMP errors other than fragmentation needed =====

TEST_CASE("ICMP: port unreachable for our SYN refuses the connect", "[tcp]") {
  TcpHarness h;
  REQUIRE(h.stack().connect(peer_ip, h.pport, &h.conn).has_value());
  Out syn = RECV_SEG(h, Expect{.flags = SYN});
  h.send_frame(unreachable(syn, 3));
  CHECK(h.state() == "CLOSED");
  CHECK(h.conn.take_events() == "closed:connection refused");
  CHECK(h.changed().find("tcp_icmp_hard_errors=1") != std::string::npos);
  RECV_NOTHING(h);
  h.finish();
}

TEST_CASE("ICMP: other errors are soft: kept, reported only if the connection gives up", "[tcp]") {
  TcpConfig cfg = TcpHarness::default_config();
  cfg.max_retransmits = 2;
  TcpHarness h(cfg);
  h.accept_established(no_ts(true));
  Tcb* c = h.tcb();
  REQUIRE(h.stack().send_copy(*c, pattern(100).data(), 100).has_value());
  Out first = RECV_SEG(h, Expect{.len = 100});
  SECTION("an ACK that advances clears it") {
    h.send_frame(unreachable(first, 1));  // host unreachable: soft
    CHECK(h.state() == "ESTABLISHED");
    CHECK(c->soft_error == keel::Errc::unreachable);
    CHECK(h.changed().find("tcp_icmp_soft_errors=1") != std::string::npos);
    h.keel_nxt += 100;
    SEND(h, Seg{.flags = ACK});
    CHECK(c->soft_error == keel::Errc::ok);
    h.close_by_peer();
  }
  SECTION("a port unreachable once established is soft too; giving up reports it") {
    h.send_frame(unreachable(first, 3));
    CHECK(h.state() == "ESTABLISHED");
    for (int i = 0; i < 10 && h.state() != "CLOSED"; ++i) {
      h.advance(60 * sec);
      h.take();
    }
    CHECK(h.state() == "CLOSED");
    CHECK(h.app().take_events().find("closed:unreachable") != std::string::npos);
  }
  h.finish();
}

// ===== Zero window: persist =====

TEST_CASE("Zero window: probes back off until the window opens, then data flows", "[tcp]") {
  TcpHarness h;
  Tcb* c = h.accept_established();
  REQUIRE(c->rto_ns == 200 * ms);  // one tiny RTT sample: the minimum RTO
  SEND(h, Seg{.flags = ACK, .window = 0});
  REQUIRE(h.stack().send_copy(*c, pattern(1000).data(), 1000).value_or(0) == 1000);
  RECV_NOTHING(h);
  uint64_t at = h.now();
  for (uint64_t wait : {200 * ms, 400 * ms, 800 * ms, 1600 * ms}) {
    h.advance_to(at + wait - ms);
    RECV_NOTHING(h);
    h.advance_to(at + wait);
    // A probe: an old sequence number, no data, so the peer answers with its window.
    RECV(h, Expect{.seq = h.keel_nxt - 1, .ack = h.peer_nxt, .flags = ACK, .len = 0});
    SEND(h, Seg{.flags = ACK, .window = 0});
    RECV_NOTHING(h);
    at += wait;
  }
  CHECK(h.count(Counter::tcp_window_probes) == 4);
  CHECK(c->snd.una == h.keel_nxt);
  h.advance(100 * ms);
  SEND(h, Seg{.flags = ACK, .window = 500});  // opens (scaled by 7: 64000 bytes)
  RECV(h, Expect{.seq = h.keel_nxt, .flags = ACK | PSH, .data = pattern(1000)});
  h.keel_nxt += 1000;
  SEND(h, Seg{.flags = ACK});
  // No probe left behind.
  h.advance(5 * sec);
  RECV_NOTHING(h);
  h.close_by_peer();
  h.finish();
}

TEST_CASE("Zero window: a window that shrinks to zero with data in flight", "[tcp]") {
  TcpHarness h;
  Tcb* c = h.accept_established(no_ts(true));
  REQUIRE(h.stack().send_copy(*c, pattern(3000).data(), 3000).value_or(0) == 3000);
  auto v = h.take();
  REQUIRE(v.size() == 2);  // 1460 + 1460, the last 80 bytes wait (Nagle)
  // The peer takes all and closes its window.
  h.keel_nxt += 2920;
  SEND(h, Seg{.flags = ACK, .window = 0});
  RECV_NOTHING(h);
  // Probes from the persist timer (RTO 1 s: no RTT sample without timestamps yet).
  h.advance(c->rto_ns);
  RECV(h, Expect{.seq = h.keel_nxt - 1, .flags = ACK, .len = 0});
  SEND(h, Seg{.flags = ACK, .window = 1000});
  RECV(h, Expect{.seq = h.keel_nxt, .flags = ACK | PSH, .len = 80});
  h.keel_nxt += 80;
  SEND(h, Seg{.flags = ACK});
  h.close_by_peer();
  h.finish();
}

// ===== Retransmission timeout =====

TEST_CASE("RTO: exponential backoff, and Karn: no RTT sample from a retransmitted segment",
          "[tcp]") {
  TcpHarness h;
  Tcb* c = h.accept_established(no_ts(true));
  REQUIRE(c->srtt_ns == 0);
  REQUIRE(c->rto_ns == 1 * sec);  // RFC 6298 2.1: no sample yet
  REQUIRE(h.stack().send_copy(*c, pattern(500).data(), 500).value_or(0) == 500);
  RECV(h, Expect{.seq = h.keel_nxt, .flags = ACK | PSH, .len = 500});
  uint64_t at = h.now();
  for (uint64_t rto : {1 * sec, 2 * sec, 4 * sec}) {
    h.advance_to(at + rto - ms);
    RECV_NOTHING(h);
    h.advance_to(at + rto);
    RECV(h, Expect{.seq = h.keel_nxt, .flags = ACK | PSH, .data = pattern(500)});
    CHECK(c->ccv.cwnd == c->mss);  // loss window
    at += rto;
  }
  CHECK(h.count(Counter::tcp_rto_timeouts) == 3);
  CHECK(c->retransmits == 3);
  h.advance(50 * ms);
  h.keel_nxt += 500;
  SEND(h, Seg{.flags = ACK});
  RECV_NOTHING(h);
  CHECK(c->srtt_ns == 0);      // Karn: the ACK may be for any of the four copies
  CHECK(c->rto_ns == 1 * sec);  // and the backoff is over
  CHECK(c->backoff == 0);
  // New data, ACKed 50 ms later: a clean sample.
  REQUIRE(h.stack().send_copy(*c, pattern(500).data(), 500).value_or(0) == 500);
  RECV(h, Expect{.seq = h.keel_nxt, .len = 500});
  h.advance(50 * ms);
  h.keel_nxt += 500;
  SEND(h, Seg{.flags = ACK});
  CHECK(c->srtt_ns == 50 * ms);
  CHECK(c->rto_ns == 200 * ms);  // 50 + 4 * 25 ms, raised to the 200 ms minimum
  REQUIRE(h.stack().send_copy(*c, pattern(500).data(), 500).value_or(0) == 500);
  RECV(h, Expect{.seq = h.keel_nxt, .len = 500});
  h.advance(200 * ms);
  RECV(h, Expect{.seq = h.keel_nxt, .len = 500});
  h.keel_nxt += 500;
  SEND(h, Seg{.flags = ACK});
  h.close_by_peer();
  h.finish();
}

TEST_CASE("RTO: too many retransmissions reset the connection", "[tcp]") {
  TcpConfig cfg = TcpHarness::default_config();
  cfg.max_retransmits = 3;
  TcpHarness h(cfg);
  Tcb* c = h.accept_established(no_ts(true));
  REQUIRE(h.stack().send_copy(*c, pattern(10).data(), 10).value_or(0) == 10);
  RECV(h, Expect{.len = 10});
  for (uint64_t t : {1 * sec, 2 * sec, 4 * sec}) {
    h.advance(t);
    RECV(h, Expect{.seq = h.keel_nxt, .len = 10});
  }
  h.advance(8 * sec);
  RECV(h, Expect{.seq = h.keel_nxt + 10, .ack = h.peer_nxt, .flags = RST | ACK});
  CHECK(h.state() == "CLOSED");
  CHECK(h.app().take_events() == "closed:timed out");
  CHECK(h.changed().find("tcp_timeout_drops=1") != std::string::npos);
  h.finish();
}

// ===== Fast retransmit and recovery =====

TEST_CASE("Fast retransmit on the third duplicate ACK (no SACK)", "[tcp]") {
  TcpHarness h;
  Tcb* c = h.accept_established(no_ts(false));
  REQUIRE(!c->sack_ok);
  const uint32_t s = h.keel_nxt;
  REQUIRE(h.stack().send_copy(*c, pattern(5 * 1460).data(), 5 * 1460).value_or(0) == 5 * 1460);
  auto v = h.take();
  REQUIRE(v.size() == 5);
  // Segment 2 is lost; 3, 4, 5 arrive and each draws a duplicate ACK.
  SEND(h, Seg{.ack = s + 1460, .flags = ACK});
  RECV_NOTHING(h);
  SEND(h, Seg{.ack = s + 1460, .flags = ACK});
  SEND(h, Seg{.ack = s + 1460, .flags = ACK});
  RECV_NOTHING(h);
  CHECK(c->dupacks == 2);
  SEND(h, Seg{.ack = s + 1460, .flags = ACK});
  RECV(h, Expect{.seq = s + 1460, .flags = ACK, .data = Bytes(v[1].data)});
  CHECK(h.changed().find("tcp_fast_retransmits=1") != std::string::npos);
  CHECK(c->in_recovery);
  CHECK(c->ccv.cwnd < 10 * 1460);
  // A fourth duplicate sends nothing more: there is no new data.
  SEND(h, Seg{.ack = s + 1460, .flags = ACK});
  RECV_NOTHING(h);
  // The retransmission repaired it: everything is ACKed, recovery ends.
  h.keel_nxt = s + 5 * 1460;
  SEND(h, Seg{.flags = ACK});
  RECV_NOTHING(h);
  CHECK(!c->in_recovery);
  h.advance(5 * sec);  // no stray retransmission
  RECV_NOTHING(h);
  h.close_by_peer();
  h.finish();
}

TEST_CASE("SACK recovery retransmits only the holes", "[tcp]") {
  TcpHarness h;
  Tcb* c = h.accept_established(no_ts(true));
  REQUIRE(c->sack_ok);
  const uint32_t s = h.keel_nxt;
  auto seg = [&](int i) { return s + uint32_t(i - 1) * 1460; };  // segment i starts here (1-based)
  REQUIRE(h.stack().send_copy(*c, pattern(6 * 1460).data(), 6 * 1460).value_or(0) == 6 * 1460);
  REQUIRE(h.take().size() == 6);
  std::vector<Out> sent;
  auto dup = [&](std::vector<Block> blocks) {
    SEND(h, Seg{.ack = s, .flags = ACK, .opt = {.sack = std::move(blocks)}});
    for (auto& o : h.take()) sent.push_back(o);
  };
  // Segments 1 and 3 are lost.
  dup({{seg(2), seg(3)}});
  dup({{seg(4), seg(5)}, {seg(2), seg(3)}});
  CHECK(sent.empty());  // not lost yet: too little SACKed above segment 1
  dup({{seg(4), seg(6)}, {seg(2), seg(3)}});
  // Three segments SACKed above segment 1: it is lost; segment 3 is not yet.
  REQUIRE(sent.size() == 1);
  TcpHarness::check(sent[0], Expect{.seq = seg(1), .len = 1460});
  CHECK(h.changed().find("tcp_sack_recoveries=1") != std::string::npos);
  dup({{seg(4), seg(7)}, {seg(2), seg(3)}});
  REQUIRE(sent.size() == 2);
  TcpHarness::check(sent[1], Expect{.seq = seg(3), .len = 1460});
  // The holes are filled: partial then full ACK, nothing else is resent.
  SEND(h, Seg{.ack = seg(3), .flags = ACK, .opt = {.sack = {{seg(4), seg(7)}}}});
  SEND(h, Seg{.ack = seg(7), .flags = ACK});
  for (auto& o : h.take()) sent.push_back(o);
  h.advance(5 * sec);
  for (auto& o : h.take()) sent.push_back(o);
  std::set<uint32_t> resent;
  for (auto& o : sent) resent.insert(o.seq());
  CHECK(resent == std::set<uint32_t>{seg(1), seg(3)});
  CHECK(sent.size() == 2);
  CHECK(!c->in_recovery);
  h.keel_nxt = seg(7);
  h.close_by_peer();
  h.finish();
}

// ===== Send buffer =====

TEST_CASE("A full send buffer blocks; on_writable follows the ACK that frees it", "[tcp]") {
  TcpConfig cfg = TcpHarness::default_config();
  cfg.snd_buf = 3000;
  TcpHarness h(cfg);
  Tcb* c = h.accept_established(no_ts(true));
  h.stack().want_writable(*c);
  auto r = h.stack().send_copy(*c, pattern(5000).data(), 5000);
  REQUIRE(r.has_value());
  CHECK(*r == 3000);
  CHECK(h.stack().send_copy(*c, "x", 1).error() == keel::Errc::would_block);
  CHECK(h.take().size() == 2);  // 1460 + 1460; 80 bytes wait for the ACK
  CHECK(h.app().take_events().empty());
  h.keel_nxt += 1460;
  SEND(h, Seg{.flags = ACK});
  CHECK(h.app().take_events() == "writable");
  h.keel_nxt += 1460;
  SEND(h, Seg{.flags = ACK});
  RECV(h, Expect{.len = 80});
  h.keel_nxt += 80;
  SEND(h, Seg{.flags = ACK});
  h.close_by_peer();
  h.finish();
}

// ===== ICMP fragmentation needed (RFC 1191, RFC 5927) =====

TEST_CASE("ICMP fragmentation-needed lowers the MSS and resends at once", "[tcp]") {
  TcpHarness h;
  Tcb* c = h.accept_established();
  REQUIRE(c->mss == 1448);
  Bytes data = pattern(2000);
  REQUIRE(h.stack().send_copy(*c, data.data(), 2000).value_or(0) == 2000);
  auto first = RECV_SEG(h, Expect{.seq = h.keel_nxt, .len = 1448});  // 552 bytes wait (Nagle)
  h.mark();
  SECTION("a smaller MTU") {
    h.send_frame(frag_needed(first, 1000));
    CHECK(c->mss == 1000 - 40 - 12);
    CHECK(h.changed().find("tcp_pmtu_updates=1") != std::string::npos);
    auto v = h.take();
    REQUIRE(v.size() == 2);
    TcpHarness::check(v[0], Expect{.seq = h.keel_nxt, .data = Bytes(data.begin(), data.begin() + 948)});
    TcpHarness::check(v[1], Expect{.seq = h.keel_nxt + 948,
                                   .data = Bytes(data.begin() + 948, data.begin() + 1896)});
    for (auto& o : v) CHECK(o.ip_packet.size() <= 1000);
    h.keel_nxt += 1896;
    SEND(h, Seg{.flags = ACK});
    RECV(h, Expect{.seq = h.keel_nxt, .flags = ACK | PSH, .len = 104});
    h.keel_nxt += 104;
  }
  SECTION("an implausibly small MTU is taken as 576") {
    h.send_frame(frag_needed(first, 68));
    CHECK(c->mss == 576 - 40 - 12);
    // ACK whatever was sent until all 2000 bytes went, in segments of 524 at most.
    uint32_t end = h.keel_nxt + 2000, hi = h.keel_nxt;
    for (int round = 0; round < 5 && hi != end; ++round) {
      for (auto& o : h.take()) {
        CHECK(o.len() <= 524);
        hi = keel::tcp::seq_max(hi, o.seq() + uint32_t(o.len()));
      }
      SEND(h, Seg{.ack = hi, .flags = ACK});
    }
    CHECK(hi == end);
    h.keel_nxt = end;
    RECV_NOTHING(h);
  }
  SECTION("a quote of data not in flight is ignored") {
    h.keel_nxt += 1448;
    SEND(h, Seg{.flags = ACK});
    RECV(h, Expect{.len = 552});
    h.send_frame(frag_needed(first, 1000));  // quotes an acknowledged sequence number
    RECV_NOTHING(h);
    CHECK(c->mss == 1448);
    CHECK(h.changed().find("tcp_icmp_bad_seq=1") != std::string::npos);
    h.keel_nxt += 552;
  }
  SECTION("a larger MTU changes nothing") {
    h.send_frame(frag_needed(first, 9000));
    RECV_NOTHING(h);
    CHECK(c->mss == 1448);
    h.keel_nxt += 1448;
    SEND(h, Seg{.flags = ACK});
    RECV(h, Expect{.len = 552});
    h.keel_nxt += 552;
  }
  SEND(h, Seg{.flags = ACK});
  h.close_by_peer();
  h.finish();
}
