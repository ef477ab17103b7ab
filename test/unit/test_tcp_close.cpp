// SPDX-License-Identifier: BSD-3-Clause
// TCP at packet level, closing: FIN in every state (CLOSE-WAIT, LAST-ACK,
// FIN-WAIT-1/2, CLOSING, TIME-WAIT and its 2MSL expiry), simultaneous close,
// half-close both ways, abort, TIME-WAIT reuse by a newer SYN and, with the
// table full, by a new connection (the oldest TIME-WAIT first). MSL is 1 s
// (default_config), so TIME-WAIT lasts 2 s. The test plays the peer; see
// tcp_harness.hpp.
#include "tcp_harness.hpp"

using namespace keel::test;
using namespace keel::test::tcp;
using keel::engine::Counter;

namespace {

/// The stack closes first: close(), FIN, the peer's ACK. Leaves FIN-WAIT-2.
void close_to_fin_wait_2(TcpHarness& h) {
  h.stack().close(*h.tcb());
  RECV(h, Expect{.seq = h.keel_nxt, .ack = h.peer_nxt, .flags = FIN | ACK});
  CHECK(h.state() == "FIN-WAIT-1");
  h.keel_nxt++;
  SEND(h, Seg{.flags = ACK});
  RECV_NOTHING(h);
  CHECK(h.state() == "FIN-WAIT-2");
}

}  // namespace

// ===== CLOSE-WAIT and LAST-ACK =====

TEST_CASE("CLOSE-WAIT: the peer's FIN is ACKed at once; the stack may still send", "[tcp]") {
  TcpHarness h;
  Tcb* c = h.accept_established();
  SEND(h, Seg{.flags = FIN | ACK});
  h.peer_nxt++;
  RECV(h, Expect{.seq = h.keel_nxt, .ack = h.peer_nxt, .flags = ACK});
  CHECK(h.state() == "CLOSE-WAIT");
  CHECK(h.app().take_events() == "peer_closed");
  CHECK(h.read_all(*c).empty());
  // Half-close from the peer: data still flows the other way.
  REQUIRE(h.stack().send_copy(*c, pattern(100).data(), 100).value_or(0) == 100);
  RECV(h, Expect{.seq = h.keel_nxt, .ack = h.peer_nxt, .flags = ACK | PSH, .data = pattern(100)});
  h.keel_nxt += 100;
  SEND(h, Seg{.flags = ACK});
  // A repeated FIN is ACKed again.
  SEND(h, Seg{.seq = h.peer_nxt - 1, .flags = FIN | ACK});
  RECV(h, Expect{.seq = h.keel_nxt, .ack = h.peer_nxt, .flags = ACK});
  CHECK(h.app().take_events().empty());
  h.stack().close(*c);
  RECV(h, Expect{.seq = h.keel_nxt, .ack = h.peer_nxt, .flags = FIN | ACK});
  CHECK(h.state() == "LAST-ACK");
  // LAST-ACK: the FIN is retransmitted on RTO (200 ms: the RTT is tiny here).
  h.advance(199 * ms);
  RECV_NOTHING(h);
  h.advance(1 * ms);
  RECV(h, Expect{.seq = h.keel_nxt, .ack = h.peer_nxt, .flags = FIN | ACK, .len = 0});
  h.keel_nxt++;
  SEND(h, Seg{.flags = ACK});
  RECV_NOTHING(h);
  CHECK(h.state() == "CLOSED");
  CHECK(h.app().take_events() == "closed:ok");
  h.finish();
}

TEST_CASE("CLOSE-WAIT: a FIN carrying data delivers the data first", "[tcp]") {
  TcpHarness h;
  h.lst.auto_read = true;
  h.accept_established();
  SEND(h, Seg{.flags = FIN | ACK | PSH, .data = pattern(300)});
  h.peer_nxt += 301;
  RECV(h, Expect{.seq = h.keel_nxt, .ack = h.peer_nxt, .flags = ACK});
  CHECK(h.app().received == pattern(300));
  CHECK(h.app().take_events() == "readable peer_closed");
  h.stack().close(*h.tcb());
  RECV(h, Expect{.seq = h.keel_nxt, .ack = h.peer_nxt, .flags = FIN | ACK});
  h.keel_nxt++;
  SEND(h, Seg{.flags = ACK});
  CHECK(h.state() == "CLOSED");
  h.finish();
}

TEST_CASE("LAST-ACK: a RST ends it quietly", "[tcp]") {
  TcpHarness h;
  h.accept_established();
  SEND(h, Seg{.flags = FIN | ACK});
  h.peer_nxt++;
  RECV(h, Expect{.flags = ACK});
  h.stack().close(*h.tcb());
  RECV(h, Expect{.flags = FIN | ACK});
  SEND(h, Seg{.flags = RST});
  RECV_NOTHING(h);
  CHECK(h.state() == "CLOSED");
  CHECK(h.app().take_events() == "peer_closed closed:ok");
  h.finish();
}

// ===== FIN-WAIT-1, FIN-WAIT-2, TIME-WAIT =====

TEST_CASE("FIN-WAIT-1 -> FIN-WAIT-2 -> TIME-WAIT, which ends after 2 MSL", "[tcp]") {
  TcpHarness h;
  h.accept_established();
  close_to_fin_wait_2(h);
  CHECK(h.app().take_events().empty());
  h.advance(500 * ms);
  SEND(h, Seg{.flags = FIN | ACK});
  h.peer_nxt++;
  RECV(h, Expect{.seq = h.keel_nxt, .ack = h.peer_nxt, .flags = ACK});
  CHECK(h.state() == "TIME-WAIT");
  CHECK(h.app().take_events() == "closed:ok");  // the application is done with it
  uint64_t tw = h.now();
  h.advance_to(tw + 2 * sec - ms);
  CHECK(h.state() == "TIME-WAIT");
  CHECK(h.stack().connections() == 1);
  h.advance_to(tw + 2 * sec);
  CHECK(h.state() == "CLOSED");
  h.finish();
}

TEST_CASE("FIN-WAIT-1: a FIN that also ACKs ours goes straight to TIME-WAIT", "[tcp]") {
  TcpHarness h;
  h.accept_established();
  h.stack().close(*h.tcb());
  RECV(h, Expect{.seq = h.keel_nxt, .flags = FIN | ACK});
  h.keel_nxt++;
  SEND(h, Seg{.flags = FIN | ACK});
  h.peer_nxt++;
  RECV(h, Expect{.seq = h.keel_nxt, .ack = h.peer_nxt, .flags = ACK});
  CHECK(h.state() == "TIME-WAIT");
  h.advance(2 * sec);
  CHECK(h.state() == "CLOSED");
  h.finish();
}

TEST_CASE("FIN-WAIT-1: the FIN is retransmitted until ACKed", "[tcp]") {
  TcpHarness h;
  h.accept_established();
  h.stack().close(*h.tcb());
  RECV(h, Expect{.seq = h.keel_nxt, .flags = FIN | ACK});
  h.advance(200 * ms);
  RECV(h, Expect{.seq = h.keel_nxt, .flags = FIN | ACK});
  h.advance(400 * ms);  // backed off
  RECV(h, Expect{.seq = h.keel_nxt, .flags = FIN | ACK});
  h.keel_nxt++;
  SEND(h, Seg{.flags = ACK});
  CHECK(h.state() == "FIN-WAIT-2");
  SEND(h, Seg{.flags = FIN | ACK});
  h.peer_nxt++;
  RECV(h, Expect{.flags = ACK});
  h.advance(2 * sec);
  h.finish();
}

TEST_CASE("CLOSING: simultaneous close", "[tcp]") {
  TcpHarness h;
  h.accept_established();
  h.stack().close(*h.tcb());
  RECV(h, Expect{.seq = h.keel_nxt, .ack = h.peer_nxt, .flags = FIN | ACK});
  // The peer's FIN crosses ours: it does not acknowledge our FIN.
  SEND(h, Seg{.ack = h.keel_nxt, .flags = FIN | ACK});
  h.peer_nxt++;
  RECV(h, Expect{.seq = h.keel_nxt + 1, .ack = h.peer_nxt, .flags = ACK});
  CHECK(h.state() == "CLOSING");
  h.keel_nxt++;
  SEND(h, Seg{.flags = ACK});
  RECV_NOTHING(h);
  CHECK(h.state() == "TIME-WAIT");
  CHECK(h.app().take_events() == "closed:ok");
  h.advance(2 * sec);
  CHECK(h.state() == "CLOSED");
  h.finish();
}

TEST_CASE("TIME-WAIT: a retransmitted FIN is ACKed and restarts the 2 MSL wait", "[tcp]") {
  TcpHarness h;
  h.accept_established();
  close_to_fin_wait_2(h);
  SEND(h, Seg{.flags = FIN | ACK});
  h.peer_nxt++;
  RECV(h, Expect{.flags = ACK});
  REQUIRE(h.state() == "TIME-WAIT");
  h.advance(1500 * ms);
  // Our ACK was lost: the peer's FIN again.
  SEND(h, Seg{.seq = h.peer_nxt - 1, .flags = FIN | ACK});
  RECV(h, Expect{.seq = h.keel_nxt, .ack = h.peer_nxt, .flags = ACK});
  h.advance(1 * sec);  // 2.5 s after entering TIME-WAIT, 1 s after the FIN
  CHECK(h.state() == "TIME-WAIT");
  h.advance(1 * sec);
  CHECK(h.state() == "CLOSED");
  h.finish();
}

TEST_CASE("TIME-WAIT: a RST in the window ends it", "[tcp]") {
  TcpHarness h;
  h.accept_established();
  close_to_fin_wait_2(h);
  SEND(h, Seg{.flags = FIN | ACK});
  h.peer_nxt++;
  RECV(h, Expect{.flags = ACK});
  SEND(h, Seg{.flags = RST});
  RECV_NOTHING(h);
  CHECK(h.state() == "CLOSED");
  h.finish();
}

TEST_CASE("FIN-WAIT-2: after close() it is bounded by 2 MSL when the peer never closes",
          "[tcp]") {
  TcpHarness h;
  h.accept_established();
  close_to_fin_wait_2(h);
  h.advance(2 * sec - ms);
  CHECK(h.state() == "FIN-WAIT-2");
  h.advance(ms);
  RECV_NOTHING(h);
  CHECK(h.state() == "CLOSED");
  CHECK(h.app().take_events() == "closed:ok");
  h.finish();
}

TEST_CASE("FIN-WAIT-2: data for a closed application is answered with RST", "[tcp]") {
  TcpHarness h;
  h.accept_established();
  close_to_fin_wait_2(h);
  SEND(h, Seg{.flags = ACK | PSH, .data = pattern(10)});
  RECV(h, Expect{.seq = h.keel_nxt, .flags = RST | ACK});
  CHECK(h.state() == "CLOSED");
  CHECK(h.changed().find("tcp_data_after_close=1") != std::string::npos);
  CHECK(h.app().take_events() == "closed:connection aborted");
  h.finish();
}

TEST_CASE("Active open, data both ways, active close through TIME-WAIT", "[tcp]") {
  TcpHarness h;
  h.conn.auto_read = true;
  Tcb* c = h.connect_established();
  REQUIRE(h.stack().send_copy(*c, "GET /", 5).value_or(0) == 5);
  RECV(h, Expect{.seq = h.keel_nxt, .ack = h.peer_nxt, .flags = ACK | PSH, .len = 5});
  h.keel_nxt += 5;
  // The peer's answer ACKs the request.
  SEND(h, Seg{.flags = ACK | PSH, .data = pattern(700)});
  h.peer_nxt += 700;
  CHECK(h.conn.received == pattern(700));
  h.advance(40 * ms);
  RECV(h, Expect{.seq = h.keel_nxt, .ack = h.peer_nxt, .flags = ACK});
  h.stack().close(*c);
  RECV(h, Expect{.seq = h.keel_nxt, .ack = h.peer_nxt, .flags = FIN | ACK});
  h.keel_nxt++;
  SEND(h, Seg{.flags = FIN | ACK});
  h.peer_nxt++;
  RECV(h, Expect{.seq = h.keel_nxt, .ack = h.peer_nxt, .flags = ACK});
  CHECK(h.state() == "TIME-WAIT");
  CHECK(h.conn.take_events() == "readable closed:ok");
  h.advance(2 * sec);
  CHECK(h.state() == "CLOSED");
  h.finish();
}

// ===== Half-close =====

TEST_CASE("Half-close: after shutdown() the stack still receives", "[tcp]") {
  TcpHarness h;
  h.lst.auto_read = true;
  Tcb* c = h.accept_established();
  REQUIRE(h.stack().shutdown(*c).has_value());
  RECV(h, Expect{.seq = h.keel_nxt, .ack = h.peer_nxt, .flags = FIN | ACK});
  h.keel_nxt++;
  CHECK(h.stack().send_copy(*c, "x", 1).error() == keel::Errc::not_connected);
  SEND(h, Seg{.flags = ACK});
  CHECK(h.state() == "FIN-WAIT-2");
  h.advance(5 * sec);  // no FIN-WAIT-2 limit while the application may read
  CHECK(h.state() == "FIN-WAIT-2");
  SEND(h, Seg{.flags = ACK | PSH, .data = pattern(200)});
  h.peer_nxt += 200;
  CHECK(h.app().received == pattern(200));
  h.advance(40 * ms);
  RECV(h, Expect{.seq = h.keel_nxt, .ack = h.peer_nxt, .flags = ACK});
  SEND(h, Seg{.flags = FIN | ACK});
  h.peer_nxt++;
  RECV(h, Expect{.seq = h.keel_nxt, .ack = h.peer_nxt, .flags = ACK});
  CHECK(h.state() == "TIME-WAIT");
  CHECK(h.app().take_events() == "readable peer_closed closed:ok");
  h.advance(2 * sec);
  h.finish();
}

TEST_CASE("Half-close: shutdown() sends the FIN after the queued data", "[tcp]") {
  TcpHarness h;
  Tcb* c = h.accept_established(PeerOpts{.mss = 1460, .ws = 7, .sack = true, .ts = false});
  REQUIRE(h.stack().send_copy(*c, pattern(2000).data(), 2000).value_or(0) == 2000);
  REQUIRE(h.stack().shutdown(*c).has_value());
  // 1460 + 540 with the FIN on the last segment (no Nagle wait for a FIN).
  auto v = h.take();
  REQUIRE(v.size() == 2);
  TcpHarness::check(v[0], Expect{.seq = h.keel_nxt, .flags = ACK, .len = 1460});
  TcpHarness::check(v[1], Expect{.seq = h.keel_nxt + 1460, .flags = ACK | PSH | FIN, .len = 540});
  h.keel_nxt += 2001;
  SEND(h, Seg{.flags = FIN | ACK});
  h.peer_nxt++;
  RECV(h, Expect{.seq = h.keel_nxt, .ack = h.peer_nxt, .flags = ACK});
  CHECK(h.state() == "TIME-WAIT");
  h.advance(2 * sec);
  h.finish();
}

// ===== Abort =====

TEST_CASE("abort() sends a RST and frees the connection at once", "[tcp]") {
  TcpHarness h;
  Tcb* c = h.accept_established();
  REQUIRE(h.stack().send_copy(*c, pattern(100).data(), 100).value_or(0) == 100);
  RECV(h, Expect{.len = 100});
  h.stack().abort(*c);
  RECV(h, Expect{.seq = h.keel_nxt + 100, .ack = h.peer_nxt, .flags = RST | ACK, .len = 0});
  CHECK(h.app().take_events() == "closed:connection aborted");
  CHECK(h.stack().connections() == 0);
  // The peer's late ACK now meets no connection: RST; its RST gets nothing.
  SEND(h, Seg{.ack = h.keel_nxt + 100, .flags = ACK});
  RECV(h, Expect{.seq = h.keel_nxt + 100, .flags = RST});
  SEND(h, Seg{.flags = RST});
  RECV_NOTHING(h);
  h.finish();
}

TEST_CASE("close() with unread data resets the connection", "[tcp]") {
  TcpHarness h;
  Tcb* c = h.accept_established();
  SEND(h, Seg{.flags = ACK | PSH, .data = pattern(10)});
  h.peer_nxt += 10;
  h.stack().close(*c);
  RECV(h, Expect{.seq = h.keel_nxt, .ack = h.peer_nxt, .flags = RST | ACK});
  CHECK(h.state() == "CLOSED");
  CHECK(h.app().take_events() == "readable closed:connection aborted");
  h.finish();
}

// ===== TIME-WAIT reuse (RFC 6191) =====

TEST_CASE("TIME-WAIT: a newer SYN on the same ports opens a new connection", "[tcp]") {
  bool ts = GENERATE(true, false);
  INFO("timestamps " << ts);
  TcpHarness h;
  PeerOpts po{.mss = 1460, .ws = 7, .sack = true, .ts = ts};
  h.accept_established(po);
  close_to_fin_wait_2(h);
  SEND(h, Seg{.flags = FIN | ACK});
  h.peer_nxt++;
  RECV(h, Expect{.flags = ACK});
  REQUIRE(h.state() == "TIME-WAIT");
  h.advance(100 * ms);
  h.mark();

  SECTION("an older SYN does not reuse it") {
    Seg s = h.syn(po);
    s.seq = h.peer_nxt - 100;
    if (ts) s.opt.ts = std::pair{h.pts() - 1000, 0u};
    SEND(h, s);
    RECV(h, Expect{.seq = h.keel_nxt, .ack = h.peer_nxt, .flags = ACK});
    CHECK(h.state() == "TIME-WAIT");
    CHECK(h.changed().find("tcp_timewait_reused") == std::string::npos);
    h.advance(2 * sec);
  }
  SECTION("a newer SYN does") {
    h.irs = h.peer_nxt + 100000;
    h.ts_on = false;
    SEND(h, h.syn(po));
    auto sa = RECV_SEG(h, Expect{.ack = h.irs + 1, .flags = SYN | ACK});
    CHECK(h.changed().find("tcp_timewait_reused=1") != std::string::npos);
    CHECK(h.state() == "SYN-RECEIVED");
    h.iss = sa.seq();
    h.ts_on = ts;
    h.peer_nxt = h.irs + 1;
    h.keel_nxt = h.iss + 1;
    SEND(h, Seg{.flags = ACK});
    CHECK(h.state() == "ESTABLISHED");
    REQUIRE(h.lst.conns.size() == 2);
    h.close_by_peer();
  }
  h.finish();
}

TEST_CASE("TIME-WAIT: with the table full, the connection longest in TIME-WAIT gives way",
          "[tcp]") {
  TcpConfig cfg = TcpHarness::default_config();
  cfg.max_connections = 2;
  TcpHarness h(cfg);
  // The stack closes two connections first: both in TIME-WAIT, 40000 the older.
  for (uint16_t port : {uint16_t(40000), uint16_t(40001)}) {
    h.pport = port;
    h.accept_established();
    close_to_fin_wait_2(h);
    SEND(h, Seg{.flags = FIN | ACK});
    h.peer_nxt++;
    RECV(h, Expect{.seq = h.keel_nxt, .ack = h.peer_nxt, .flags = ACK});
    REQUIRE(h.state() == "TIME-WAIT");
    h.advance(100 * ms);
  }
  REQUIRE(h.stack().connections() == 2);

  // A passive open takes the older one's TCB.
  h.mark();
  h.pport = 40002;
  h.accept_established();
  CHECK(h.changed().find("tcp_timewait_recycled=1") != std::string::npos);
  CHECK(h.changed().find("tcp_conn_table_full") == std::string::npos);
  h.pport = 40000;
  CHECK(h.state() == "CLOSED");
  h.pport = 40001;
  CHECK(h.state() == "TIME-WAIT");

  // An active open takes the other one's.
  h.mark();
  auto r = h.stack().connect(peer_ip, 81, &h.conn);
  REQUIRE(r.has_value());
  auto s = RECV_SEG(h, Expect{.ack = 0, .flags = SYN});
  CHECK(s.h.dst_port == 81);
  CHECK(h.changed().find("tcp_timewait_recycled=1") != std::string::npos);
  CHECK(h.state() == "CLOSED");
  CHECK(h.stack().connections() == 2);

  // Nothing in TIME-WAIT: a full table refuses.
  h.mark();
  Seg syn = h.syn(PeerOpts{});
  syn.sport = 40003;
  SEND(h, syn);
  RECV_NOTHING(h);
  CHECK(h.changed().find("tcp_conn_table_full=1") != std::string::npos);
  CHECK(!h.stack().connect(peer_ip, 81, &h.conn).has_value());

  h.stack().abort(**r);  // SYN-SENT: no RST (RFC 9293 3.10.5)
  RECV_NOTHING(h);
  h.pport = 40002;
  h.close_by_peer();
  h.finish();
}
