// SPDX-License-Identifier: BSD-3-Clause
// TCP at packet level, ESTABLISHED: receiving data (delayed ACKs, out-of-order
// data and SACK, duplicates, the receive window), RFC 5961 (RST, SYN and ACK
// checks), RFC 7323 PAWS and window scaling. The test plays the peer; see
// tcp_harness.hpp. The peer's sequence numbers start 16 octets before the wrap.
#include "tcp_harness.hpp"

using namespace keel::test;
using namespace keel::test::tcp;
using keel::engine::Counter;

namespace {

/// A config whose receive buffer fits in one unscaled window.
TcpConfig small_rcv_buf(uint32_t bytes) {
  TcpConfig c = TcpHarness::default_config();
  c.rcv_buf = bytes;
  return c;
}

/// No timestamps (so segments carry 1460 bytes), SACK permitted, no scaling.
const PeerOpts plain{.mss = 1460, .ws = -1, .sack = true, .ts = false};

}  // namespace

// ===== ESTABLISHED: in-order data and delayed ACKs =====

TEST_CASE("ESTABLISHED: in-order data is delivered and ACKed after the delayed-ACK time",
          "[tcp]") {
  TcpHarness h;
  Tcb* c = h.accept_established();
  uint32_t p = h.peer_nxt;
  SEND(h, Seg{.flags = ACK | PSH, .data = pattern(100)});
  CHECK(h.app().take_events() == "readable");
  CHECK(c->rcvq.size() == 100);
  RECV_NOTHING(h);
  h.advance(39 * ms);
  RECV_NOTHING(h);
  h.advance(1 * ms);  // delack_ns = 40 ms
  // The right edge stays where it was: the window shrinks by what is unread.
  RECV(h, Expect{.seq = h.keel_nxt, .ack = p + 100, .flags = ACK, .window = (131072 - 100) >> 2,
                 .tsecr = h.pts() - 40});
  CHECK(h.changed().find("tcp_delayed_acks=1") != std::string::npos);
  CHECK(h.read_all(*c) == pattern(100));
  RECV_NOTHING(h);  // 100 bytes freed is no window update worth sending (SWS)
  h.peer_nxt += 100;
  h.close_by_peer();
  h.finish();
}

TEST_CASE("ESTABLISHED: every second full-sized segment is ACKed at once", "[tcp]") {
  TcpHarness h;
  h.lst.auto_read = true;
  Tcb* c = h.accept_established(plain);
  REQUIRE(c->mss == 1460);
  Bytes all = pattern(5 * 1460, 3);
  auto part = [&](int i) { return Bytes(all.begin() + i * 1460, all.begin() + (i + 1) * 1460); };
  uint32_t p = h.peer_nxt;
  SEND(h, Seg{.seq = p, .flags = ACK, .data = part(0)});
  RECV_NOTHING(h);
  h.advance(10 * ms);
  SEND(h, Seg{.seq = p + 1460, .flags = ACK, .data = part(1)});
  RECV(h, Expect{.seq = h.keel_nxt, .ack = p + 2 * 1460, .flags = ACK});
  SEND(h, Seg{.seq = p + 2 * 1460, .flags = ACK, .data = part(2)});
  RECV_NOTHING(h);
  SEND(h, Seg{.seq = p + 3 * 1460, .flags = ACK, .data = part(3)});
  RECV(h, Expect{.seq = h.keel_nxt, .ack = p + 4 * 1460, .flags = ACK});
  SEND(h, Seg{.seq = p + 4 * 1460, .flags = ACK | PSH, .data = part(4)});
  RECV_NOTHING(h);
  h.advance(40 * ms);
  RECV(h, Expect{.seq = h.keel_nxt, .ack = p + 5 * 1460, .flags = ACK});
  CHECK(h.app().received == all);
  h.peer_nxt = p + 5 * 1460;
  h.close_by_peer();
  h.finish();
}

// ===== ESTABLISHED: out-of-order data and SACK =====

TEST_CASE("ESTABLISHED: out-of-order data gets an immediate duplicate ACK with SACK blocks",
          "[tcp]") {
  TcpHarness h;
  h.lst.auto_read = true;
  Tcb* c = h.accept_established();
  uint32_t p = h.peer_nxt;  // 0xfffffff1: the blocks below straddle the wrap
  Bytes all = pattern(2500, 9);
  auto piece = [&](uint32_t from, uint32_t to) {
    return Bytes(all.begin() + from, all.begin() + to);
  };
  SEND(h, Seg{.seq = p + 1000, .flags = ACK, .data = piece(1000, 1500)});
  RECV(h, Expect{.seq = h.keel_nxt, .ack = p, .flags = ACK,
                 .sack = std::vector<Block>{{p + 1000, p + 1500}}});
  CHECK(h.app().take_events().empty());
  SEND(h, Seg{.seq = p + 2000, .flags = ACK, .data = piece(2000, 2500)});
  RECV(h, Expect{.seq = h.keel_nxt, .ack = p, .flags = ACK,
                 .sack = std::vector<Block>{{p + 2000, p + 2500}, {p + 1000, p + 1500}}});
  // A duplicate of held data: ACKed at once, its block first again.
  SEND(h, Seg{.seq = p + 1000, .flags = ACK, .data = piece(1000, 1500)});
  RECV(h, Expect{.seq = h.keel_nxt, .ack = p, .flags = ACK,
                 .sack = std::vector<Block>{{p + 1000, p + 1500}, {p + 2000, p + 2500}}});
  CHECK(c->ooo != nullptr);
  // The first hole filled: immediate ACK, in-order data delivered.
  SEND(h, Seg{.seq = p, .flags = ACK, .data = piece(0, 1000)});
  RECV(h, Expect{.seq = h.keel_nxt, .ack = p + 1500, .flags = ACK,
                 .sack = std::vector<Block>{{p + 2000, p + 2500}}});
  CHECK(h.app().received == piece(0, 1500));
  SEND(h, Seg{.seq = p + 1500, .flags = ACK, .data = piece(1500, 2000)});
  RECV(h, Expect{.seq = h.keel_nxt, .ack = p + 2500, .flags = ACK, .sack = std::vector<Block>{}});
  CHECK(h.app().received == all);
  CHECK(c->ooo == nullptr);  // the queue went back to the pool
  CHECK(h.changed().find("tcp_ooo_segments=2") != std::string::npos);
  h.peer_nxt = p + 2500;
  h.close_by_peer();
  h.finish();
}

TEST_CASE("ESTABLISHED: a FIN held out of order is taken when the hole fills", "[tcp]") {
  TcpHarness h;
  h.lst.auto_read = true;
  h.accept_established();
  uint32_t p = h.peer_nxt;
  SEND(h, Seg{.seq = p + 100, .flags = ACK | FIN, .data = pattern(50, 1)});
  RECV(h, Expect{.ack = p, .flags = ACK, .sack = std::vector<Block>{{p + 100, p + 150}}});
  CHECK(h.state() == "ESTABLISHED");
  SEND(h, Seg{.seq = p, .flags = ACK, .data = pattern(100)});
  RECV(h, Expect{.seq = h.keel_nxt, .ack = p + 151, .flags = ACK});
  CHECK(h.state() == "CLOSE-WAIT");
  CHECK(h.app().received == cat(pattern(100), pattern(50, 1)));
  CHECK(h.app().take_events() == "readable peer_closed");
  h.peer_nxt = p + 151;
  h.stack().close(*h.tcb());
  RECV(h, Expect{.seq = h.keel_nxt, .ack = h.peer_nxt, .flags = FIN | ACK});
  h.keel_nxt++;
  SEND(h, Seg{.flags = ACK});
  CHECK(h.state() == "CLOSED");
  h.finish();
}

// ===== ESTABLISHED: duplicates and the receive window =====

TEST_CASE("ESTABLISHED: duplicate data is ACKed at once and not delivered twice", "[tcp]") {
  TcpHarness h;
  h.lst.auto_read = true;
  h.accept_established();
  uint32_t p = h.peer_nxt;
  Bytes all = pattern(300, 5);
  SEND(h, Seg{.seq = p, .flags = ACK, .data = Bytes(all.begin(), all.begin() + 200)});
  h.advance(40 * ms);
  RECV(h, Expect{.ack = p + 200, .flags = ACK});
  h.mark();
  SECTION("all old") {
    SEND(h, Seg{.seq = p, .flags = ACK, .data = Bytes(all.begin(), all.begin() + 200)});
    RECV(h, Expect{.seq = h.keel_nxt, .ack = p + 200, .flags = ACK});
    CHECK(h.changed().find("tcp_dup_segments=1") != std::string::npos);
    CHECK(h.app().received == Bytes(all.begin(), all.begin() + 200));
    h.peer_nxt = p + 200;
  }
  SECTION("partly old: the new part is kept") {
    SEND(h, Seg{.seq = p + 100, .flags = ACK, .data = Bytes(all.begin() + 100, all.end())});
    RECV(h, Expect{.seq = h.keel_nxt, .ack = p + 300, .flags = ACK});
    CHECK(h.app().received == all);
    h.peer_nxt = p + 300;
  }
  h.close_by_peer();
  h.finish();
}

TEST_CASE("ESTABLISHED: data beyond the window is trimmed; a full window gets a zero window",
          "[tcp]") {
  TcpHarness h(small_rcv_buf(4000));
  Tcb* c = h.accept_established(plain);
  CHECK(c->rcv.wscale == 0);
  uint32_t p = h.peer_nxt;
  Bytes all = pattern(4400, 7);
  auto piece = [&](uint32_t from, uint32_t to) {
    return Bytes(all.begin() + from, all.begin() + to);
  };
  SEND(h, Seg{.seq = p, .flags = ACK, .data = piece(0, 1460)});
  SEND(h, Seg{.seq = p + 1460, .flags = ACK, .data = piece(1460, 2920)});
  RECV(h, Expect{.ack = p + 2920, .flags = ACK, .window = 4000 - 2920});
  // 1460 bytes offered, 1080 fit.
  SEND(h, Seg{.seq = p + 2920, .flags = ACK | PSH, .data = piece(2920, 4380)});
  CHECK(h.changed().find("tcp_rcv_window_trimmed=1") != std::string::npos);
  h.advance(40 * ms);
  RECV(h, Expect{.ack = p + 4000, .flags = ACK, .window = 0});
  CHECK(c->rcvq.size() == 4000);
  // More data into the zero window (a probe carrying data): dropped, and the
  // ACK tells the peer the window is still closed (RFC 9293 3.8.6.1).
  SEND(h, Seg{.seq = p + 4000, .flags = ACK, .data = piece(4000, 4001)});
  RECV(h, Expect{.seq = h.keel_nxt, .ack = p + 4000, .flags = ACK, .window = 0});
  // A Linux-style probe (an old sequence number, no data) is answered too.
  SEND(h, Seg{.seq = p + 3999, .flags = ACK});
  RECV(h, Expect{.seq = h.keel_nxt, .ack = p + 4000, .flags = ACK, .window = 0});
  // The application reads: the window opens and is announced at once.
  CHECK(h.read_all(*c) == piece(0, 4000));
  RECV(h, Expect{.seq = h.keel_nxt, .ack = p + 4000, .flags = ACK, .window = 4000});
  h.peer_nxt = p + 4000;
  h.close_by_peer();
  h.finish();
}

TEST_CASE("ESTABLISHED: the right edge of the window never moves left", "[tcp]") {
  TcpHarness h(small_rcv_buf(8000));
  Tcb* c = h.accept_established(plain);
  uint32_t p = h.peer_nxt;
  // Out-of-order data uses buffer space too, yet the advertised edge stays.
  SEND(h, Seg{.seq = p + 3000, .flags = ACK, .data = pattern(1000)});
  RECV(h, Expect{.ack = p, .flags = ACK, .window = 8000});
  SEND(h, Seg{.seq = p + 5000, .flags = ACK, .data = pattern(1000)});
  RECV(h, Expect{.ack = p, .flags = ACK, .window = 8000});
  std::vector<uint32_t> edges;
  uint32_t at = 0;
  for (uint32_t len : {1000u, 1000u, 1000u}) {
    SEND(h, Seg{.seq = p + at, .flags = ACK, .data = pattern(len, uint8_t(at))});
    at += len;
    for (auto& o : h.take()) edges.push_back(o.ack() + o.window());
    h.advance(40 * ms);
    for (auto& o : h.take()) edges.push_back(o.ack() + o.window());
  }
  REQUIRE(!edges.empty());
  for (size_t i = 1; i < edges.size(); ++i) CHECK(int32_t(edges[i] - edges[i - 1]) >= 0);
  CHECK(edges.back() == p + 8000);
  (void)h.read_all(*c);
  h.take();
  h.peer_nxt = p + 4000;
  // Fill the rest of the hole [4000, 5000) so nothing is left out of order.
  SEND(h, Seg{.seq = p + 4000, .flags = ACK, .data = pattern(1000)});
  h.peer_nxt = p + 6000;
  h.take();
  (void)h.read_all(*c);
  h.take();
  h.close_by_peer();
  h.finish();
}

TEST_CASE("ESTABLISHED: reading announces a reopened window only when it is worth it", "[tcp]") {
  TcpHarness h(small_rcv_buf(20000));
  Tcb* c = h.accept_established(plain);
  uint32_t p = h.peer_nxt;
  SEND(h, Seg{.seq = p, .flags = ACK, .data = pattern(1000)});
  h.advance(40 * ms);
  RECV(h, Expect{.ack = p + 1000, .flags = ACK, .window = 19000});
  (void)h.read_all(*c);
  RECV_NOTHING(h);  // 1000 bytes: less than two segments
  SEND(h, Seg{.seq = p + 1000, .flags = ACK, .data = pattern(1460)});
  SEND(h, Seg{.seq = p + 2460, .flags = ACK, .data = pattern(1460)});
  // The edge could move right by 1000 only: less than an MSS, so it stays at
  // p + 20000 (receiver SWS avoidance).
  RECV(h, Expect{.ack = p + 3920, .flags = ACK, .window = 20000 - 3920});
  (void)h.read_all(*c);  // now it can move right by 3920 >= 2 * MSS
  RECV(h, Expect{.ack = p + 3920, .flags = ACK, .window = 20000});
  h.peer_nxt = p + 3920;
  h.close_by_peer();
  h.finish();
}

// ===== ESTABLISHED: RFC 5961 =====

TEST_CASE("ESTABLISHED: RST processing (RFC 5961 3.2)", "[tcp]") {
  TcpHarness h;
  h.accept_established();
  uint32_t p = h.peer_nxt;
  h.mark();
  SECTION("in the window but not at RCV.NXT: challenge ACK") {
    SEND(h, Seg{.seq = p + 1, .flags = RST});
    RECV(h, Expect{.seq = h.keel_nxt, .ack = p, .flags = ACK});
    CHECK(h.state() == "ESTABLISHED");
    CHECK(h.changed().find("tcp_challenge_acks=1") != std::string::npos);
    SEND(h, Seg{.seq = p, .flags = RST});  // the peer answers with the exact one
    RECV_NOTHING(h);
    CHECK(h.state() == "CLOSED");
    CHECK(h.app().take_events() == "closed:connection reset by peer");
  }
  SECTION("outside the window: ignored") {
    SEND(h, Seg{.seq = p + 200000, .flags = RST});
    SEND(h, Seg{.seq = p - 1, .flags = RST | ACK});
    RECV_NOTHING(h);
    CHECK(h.state() == "ESTABLISHED");
    CHECK(h.changed().find("tcp_resets_ignored=2") != std::string::npos);
    h.close_by_peer();
  }
  SECTION("at RCV.NXT: the connection is reset, nothing is sent") {
    SEND(h, Seg{.seq = p, .flags = RST | ACK});
    RECV_NOTHING(h);
    CHECK(h.state() == "CLOSED");
    CHECK(h.app().closed);
    CHECK(h.app().reason == keel::Errc::connection_reset);
  }
  h.finish();
}

TEST_CASE("ESTABLISHED: a SYN gets a challenge ACK (RFC 5961 4.2)", "[tcp]") {
  TcpHarness h;
  h.accept_established();
  uint32_t p = h.peer_nxt;
  SECTION("in the window") {
    SEND(h, Seg{.seq = p + 10, .ack = 0, .flags = SYN, .opt = {.mss = 1460}});
  }
  SECTION("outside the window") {
    SEND(h, Seg{.seq = p - 5000, .ack = 0, .flags = SYN, .opt = {.mss = 1460}});
  }
  SECTION("at RCV.NXT with ACK") {
    SEND(h, Seg{.seq = p, .flags = SYN | ACK});
  }
  RECV(h, Expect{.seq = h.keel_nxt, .ack = p, .flags = ACK});
  CHECK(h.state() == "ESTABLISHED");
  h.close_by_peer();
  h.finish();
}

TEST_CASE("ESTABLISHED: challenge ACKs are rate limited", "[tcp]") {
  TcpConfig cfg = TcpHarness::default_config();
  cfg.challenge_ack_limit = 3;
  TcpHarness h(cfg);
  h.accept_established();
  uint32_t p = h.peer_nxt;
  for (int i = 0; i < 5; ++i) SEND(h, Seg{.seq = p + 1 + uint32_t(i), .flags = RST});
  CHECK(h.take().size() == 3);
  CHECK(h.changed().find("tcp_challenge_acks_limited=2") != std::string::npos);
  h.advance(1 * sec);
  SEND(h, Seg{.seq = p + 1, .flags = RST});
  RECV(h, Expect{.seq = h.keel_nxt, .ack = p, .flags = ACK});
  h.close_by_peer();
  h.finish();
}

TEST_CASE("ESTABLISHED: ACKs for bare out-of-window segments are rate limited", "[tcp]") {
  TcpHarness h;
  h.accept_established();
  uint32_t p = h.peer_nxt;
  uint32_t far = p + (1u << 30);  // far beyond the window
  // The first bare unacceptable segment is answered; the next ones within
  // 500 ms are not (two stacks disagreeing must not ping-pong ACKs).
  SEND(h, Seg{.seq = far, .flags = ACK});
  RECV(h, Expect{.seq = h.keel_nxt, .ack = p, .flags = ACK});
  for (int i = 0; i < 5; ++i) SEND(h, Seg{.seq = far, .flags = ACK});
  RECV_NOTHING(h);
  CHECK(h.changed().find("tcp_oow_acks_limited=5") != std::string::npos);
  // Old data is always answered: the peer may have missed our ACK.
  SEND(h, Seg{.seq = p - 10, .flags = ACK | PSH, .data = pattern(10)});
  RECV(h, Expect{.seq = h.keel_nxt, .ack = p, .flags = ACK});
  h.advance(500 * ms);
  h.take();
  SEND(h, Seg{.seq = far, .flags = ACK});
  RECV(h, Expect{.seq = h.keel_nxt, .ack = p, .flags = ACK});
  h.close_by_peer();
  h.finish();
}

TEST_CASE("ESTABLISHED: ACK checks (RFC 5961 5.2)", "[tcp]") {
  TcpHarness h;
  h.lst.auto_read = true;
  Tcb* c = h.accept_established(PeerOpts{.mss = 1460, .ws = -1, .sack = true, .ts = true});
  uint32_t p = h.peer_nxt;
  // The stack sends 100 bytes, acknowledged: SND.UNA moves.
  REQUIRE(h.stack().send_copy(*c, pattern(100).data(), 100).value_or(0) == 100);
  RECV(h, Expect{.seq = h.keel_nxt, .flags = ACK | PSH, .len = 100});
  h.keel_nxt += 100;
  SEND(h, Seg{.flags = ACK});
  h.mark();
  SECTION("an ACK of data never sent: ACK back, the segment is dropped") {
    SEND(h, Seg{.ack = h.keel_nxt + 1000, .flags = ACK | PSH, .data = pattern(10)});
    RECV(h, Expect{.seq = h.keel_nxt, .ack = p, .flags = ACK});
    CHECK(h.changed().find("tcp_ack_unsent=1") != std::string::npos);
    CHECK(h.app().received.empty());
    CHECK(c->snd.una == h.keel_nxt);
  }
  SECTION("an ACK older than SND.UNA - MAX.SND.WND: challenge ACK, dropped") {
    SEND(h, Seg{.ack = h.keel_nxt - 100 - 65535 - 1, .flags = ACK | PSH, .data = pattern(10)});
    RECV(h, Expect{.seq = h.keel_nxt, .ack = p, .flags = ACK});
    CHECK(h.changed().find("tcp_ack_too_old=1") != std::string::npos);
    CHECK(h.app().received.empty());
  }
  SECTION("an old ACK within MAX.SND.WND: the data is taken") {
    SEND(h, Seg{.ack = h.keel_nxt - 50, .flags = ACK | PSH, .data = pattern(10)});
    CHECK(h.app().received == pattern(10));
    CHECK(c->snd.una == h.keel_nxt);
    h.advance(40 * ms);
    RECV(h, Expect{.seq = h.keel_nxt, .ack = p + 10, .flags = ACK});
    h.peer_nxt += 10;
  }
  h.close_by_peer();
  h.finish();
}

// ===== ESTABLISHED: PAWS (RFC 7323 5) =====

TEST_CASE("ESTABLISHED: PAWS drops a segment with an old timestamp and ACKs it", "[tcp]") {
  TcpHarness h;
  h.lst.auto_read = true;
  h.accept_established();
  uint32_t p = h.peer_nxt;
  h.advance(10 * ms);
  SEND(h, Seg{.seq = p, .flags = ACK | PSH, .data = pattern(100)});
  uint32_t recent = h.pts();
  h.advance(40 * ms);
  RECV(h, Expect{.ack = p + 100, .flags = ACK, .tsecr = recent});
  h.mark();
  // A segment that is new by sequence number, but older by timestamp.
  SEND(h, Seg{.seq = p + 100, .flags = ACK | PSH, .opt = {.ts = std::pair{recent - 1, h.last_keel_ts}},
              .data = pattern(100, 1)});
  RECV(h, Expect{.seq = h.keel_nxt, .ack = p + 100, .flags = ACK, .tsecr = recent});
  CHECK(h.changed().find("tcp_paws_drops=1") != std::string::npos);
  CHECK(h.app().received == pattern(100));
  // The same data with a current timestamp is taken.
  SEND(h, Seg{.seq = p + 100, .flags = ACK | PSH, .data = pattern(100, 1)});
  CHECK(h.app().received == cat(pattern(100), pattern(100, 1)));
  // A RST is never PAWS-checked.
  h.peer_nxt = p + 200;
  SECTION("the peer's clock wraps") {
    // pts() passes 2^32 four seconds after t0: still newer for PAWS.
    h.advance(5 * sec);
    h.take();
    uint32_t wrapped = h.pts();
    CHECK(wrapped < recent);
    SEND(h, Seg{.flags = ACK | PSH, .data = pattern(10, 2)});
    CHECK(h.app().received.size() == 210);
    h.peer_nxt += 10;
    h.advance(40 * ms);
    RECV(h, Expect{.ack = h.peer_nxt, .flags = ACK, .tsecr = wrapped});
    h.close_by_peer();
  }
  SECTION("a RST with an old timestamp still resets") {
    SEND(h, Seg{.flags = RST, .opt = {.ts = std::pair{recent - 1000, 0u}}});
    CHECK(h.state() == "CLOSED");
  }
  h.finish();
}

// ===== ESTABLISHED: window scaling (RFC 7323 2) =====

TEST_CASE("Window scaling: the peer's shift of 14 (or more) applies to its windows", "[tcp]") {
  int ws = GENERATE(14, 15, 255);
  INFO("peer's shift " << ws);
  TcpHarness h;
  Tcb* c = h.accept_established(PeerOpts{.mss = 1460, .ws = ws, .sack = true, .ts = true});
  CHECK(c->snd.wscale == 14);  // RFC 7323 2.3: larger shifts are taken as 14
  SEND(h, Seg{.flags = ACK, .window = 65535});
  CHECK(c->snd.wnd == 65535u << 14);
  SEND(h, Seg{.flags = ACK, .window = 1});
  CHECK(c->snd.wnd == 16384);
  SEND(h, Seg{.flags = ACK, .window = 0});
  CHECK(c->snd.wnd == 0);
  SEND(h, Seg{.flags = ACK, .window = 65535});
  // Data flows, limited by the initial congestion window (10 segments), not the window.
  REQUIRE(h.stack().send_copy(*c, pattern(20000).data(), 20000).value_or(0) == 20000);
  uint32_t sent = 0;
  for (auto& o : h.take()) sent += uint32_t(o.len());
  CHECK(sent == 10 * c->mss);
  for (int round = 0; round < 4 && sent < 20000; ++round) {
    h.keel_nxt = h.iss + 1 + sent;
    SEND(h, Seg{.flags = ACK, .window = 65535});
    for (auto& o : h.take()) sent += uint32_t(o.len());
  }
  CHECK(sent == 20000);
  h.keel_nxt = h.iss + 1 + sent;
  SEND(h, Seg{.flags = ACK, .window = 65535});
  RECV_NOTHING(h);
  h.close_by_peer();
  h.finish();
}

TEST_CASE("Window scaling: our shift is capped at 14 for a huge buffer", "[tcp]") {
  TcpConfig cfg = TcpHarness::default_config();
  cfg.rcv_buf = 1u << 30;
  cfg.ooo_queues = 1;
  TcpHarness h(cfg);
  h.listen();
  SEND(h, h.syn(PeerOpts{}));
  auto sa = RECV_SEG(h, Expect{.flags = SYN | ACK, .window = 65535});
  CHECK(opts_of(sa.h.opt).ws == std::optional<uint8_t>(14));
  h.iss = sa.seq();
  h.ts_on = true;
  h.peer_nxt = h.irs + 1;
  h.keel_nxt = h.iss + 1;
  SEND(h, Seg{.flags = ACK});
  REQUIRE(h.state() == "ESTABLISHED");
  SEND(h, Seg{.flags = ACK | PSH, .data = pattern(10)});
  h.advance(40 * ms);
  // The edge stays at RCV.NXT + (65535 << 14) as of the SYN-ACK; shifted
  // right by 14, what is left of it rounds down to 65534.
  RECV(h, Expect{.ack = h.peer_nxt + 10, .flags = ACK, .window = 65534});
  (void)h.read_all(*h.tcb());
  h.peer_nxt += 10;
  h.close_by_peer();
  h.finish();
}
