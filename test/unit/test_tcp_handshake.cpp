// SPDX-License-Identifier: BSD-3-Clause
// TCP at packet level, opening: LISTEN, SYN-SENT, SYN-RECEIVED (RFC 9293
// 3.10.7.2-3.10.7.4), SYN cookies, segments for no connection (3.10.7.1) and
// malformed segments. The test plays the peer; see tcp_harness.hpp.
#include "tcp_harness.hpp"

using namespace keel::test;
using namespace keel::test::tcp;
using keel::engine::Counter;

namespace {

/// The options the stack offers with default_config() (MSS for a 1500-byte MTU,
/// window scale 2 for a 128 KiB buffer) to a peer that offered everything.
Opts full_synack_opts(uint32_t tsval, uint32_t tsecr) {
  return Opts{.mss = 1460, .ws = 2, .sack_perm = true, .ts = std::pair{tsval, tsecr}};
}

}  // namespace

// ===== LISTEN =====

TEST_CASE("LISTEN: a RST is ignored", "[tcp]") {
  TcpHarness h;
  h.listen();
  SEND(h, Seg{.seq = h.irs, .ack = 0, .flags = RST});
  SEND(h, Seg{.seq = h.irs, .ack = 1234, .flags = RST | ACK});
  RECV_NOTHING(h);
  CHECK(h.stack().connections() == 0);
  h.finish();
}

TEST_CASE("LISTEN: an ACK is answered with RST <SEQ=SEG.ACK>", "[tcp]") {
  TcpHarness h;
  h.listen();
  SEND(h, Seg{.seq = h.irs, .ack = 0x12345678, .flags = ACK, .data = pattern(10)});
  RECV(h, Expect{.seq = 0x12345678, .flags = RST, .len = 0});
  CHECK(h.changed().find("tcp_syn_cookies_bad=1") != std::string::npos);
  CHECK(h.stack().connections() == 0);
  h.finish();
}

TEST_CASE("LISTEN: a SYN with ACK is answered with RST", "[tcp]") {
  TcpHarness h;
  h.listen();
  SEND(h, Seg{.seq = h.irs, .ack = 777, .flags = SYN | ACK, .opt = {.mss = 1460}});
  RECV(h, Expect{.seq = 777, .flags = RST});
  h.finish();
}

TEST_CASE("LISTEN: SYN -> SYN-ACK offering what the peer offered, then ACK -> ESTABLISHED",
          "[tcp]") {
  TcpHarness h;
  Listener* l = h.listen();
  PeerOpts po;
  uint32_t peer_ts = h.pts();
  SEND(h, h.syn(po));
  auto sa = RECV_SEG(h, Expect{.ack = h.irs + 1, .flags = SYN | ACK, .window = 65535, .len = 0,
                               .opt = full_synack_opts(h.kts(), peer_ts)});
  h.iss = sa.seq();
  CHECK(h.state() == "SYN-RECEIVED");
  CHECK(l->syn_queued == 1);
  CHECK(h.lst.conns.empty());  // the application sees nothing before the handshake completes

  h.advance(10 * ms);
  h.ts_on = true;
  h.peer_nxt = h.irs + 1;
  h.keel_nxt = h.iss + 1;
  SEND(h, Seg{.flags = ACK, .window = 1000});
  RECV_NOTHING(h);
  CHECK(h.state() == "ESTABLISHED");
  CHECK(l->syn_queued == 0);
  CHECK(l->accepted == 1);
  REQUIRE(h.lst.conns.size() == 1);
  CHECK(h.lst.conns[0]->take_events() == "accepted");
  Tcb* c = h.tcb();
  REQUIRE(c != nullptr);
  CHECK(c->ts_ok);
  CHECK(c->sack_ok);
  CHECK(c->ws_ok);
  CHECK(c->snd.wscale == 7);
  CHECK(c->rcv.wscale == 2);
  CHECK(c->mss == 1460 - 12);       // every segment carries the TS option
  CHECK(c->snd.wnd == 1000u << 7);  // the ACK's window is scaled
  CHECK(h.changed().find("tcp_passive_opens=1") != std::string::npos);

  // The stack's first data: scaled window, timestamps echoing the peer's.
  REQUIRE(h.stack().send_copy(*c, "hello", 5).value_or(0) == 5);
  RECV(h, Expect{.seq = h.iss + 1, .ack = h.irs + 1, .flags = ACK | PSH, .window = 32768,
                 .data = Bytes{'h', 'e', 'l', 'l', 'o'}, .tsecr = h.pts()});
  h.keel_nxt += 5;
  SEND(h, Seg{.flags = ACK});
  RECV_NOTHING(h);
  h.close_by_peer();
  h.finish();
}

TEST_CASE("LISTEN: SYN without options -> SYN-ACK with MSS only, default peer MSS", "[tcp]") {
  TcpHarness h;
  Tcb* c = h.accept_established(PeerOpts{.mss = 0, .ws = -1, .sack = false, .ts = false});
  CHECK(!c->ts_ok);
  CHECK(!c->sack_ok);
  CHECK(!c->ws_ok);
  CHECK(c->snd.wscale == 0);
  CHECK(c->rcv.wscale == 0);
  CHECK(c->mss == 536);  // RFC 9293 3.7.1: no MSS option means 536
  REQUIRE(h.stack().send_copy(*c, pattern(1000).data(), 1000).value_or(0) == 1000);
  // Unscaled: the window is capped at 65535 although the buffer is 128 KiB.
  RECV(h, Expect{.seq = h.iss + 1, .flags = ACK, .window = 65535, .len = 536,
                 .opt = Opts{}});
  h.keel_nxt += 536;
  SEND(h, Seg{.flags = ACK});
  RECV(h, Expect{.seq = h.iss + 1 + 536, .flags = ACK | PSH, .len = 464});
  h.keel_nxt += 464;
  SEND(h, Seg{.flags = ACK});
  RECV_NOTHING(h);
  h.close_by_peer();
  h.finish();
}

TEST_CASE("LISTEN: the SYN-ACK shows the exact options for a plain SYN", "[tcp]") {
  TcpHarness h;
  h.listen();
  SEND(h, h.syn(PeerOpts{.mss = 1200, .ws = -1, .sack = false, .ts = false}));
  RECV(h, Expect{.seq = std::nullopt, .ack = h.irs + 1, .flags = SYN | ACK, .window = 65535,
                 .opt = Opts{.mss = 1460}});
  Tcb* c = h.tcb();
  REQUIRE(c != nullptr);
  CHECK(c->mss == 1200);
  h.stack().unlisten(h.stack().find_listener(our_ip, 80));  // takes the half-open connection along
  CHECK(h.stack().connections() == 0);
  h.finish();
}

TEST_CASE("LISTEN: data on a SYN is not acknowledged; the peer sends it again", "[tcp]") {
  TcpHarness h;
  h.listen();
  h.lst.auto_read = true;
  Seg s = h.syn(PeerOpts{});
  s.data = pattern(100);
  SEND(h, s);
  auto sa = RECV_SEG(h, Expect{.ack = h.irs + 1, .flags = SYN | ACK});
  h.iss = sa.seq();
  h.ts_on = true;
  h.peer_nxt = h.irs + 1;
  h.keel_nxt = h.iss + 1;
  SEND(h, Seg{.flags = ACK | PSH, .data = pattern(100)});
  CHECK(h.state() == "ESTABLISHED");
  REQUIRE(h.lst.conns.size() == 1);
  CHECK(h.lst.conns[0]->received == pattern(100));
  h.peer_nxt += 100;
  h.advance(40 * ms);  // delayed ACK
  RECV(h, Expect{.seq = h.iss + 1, .ack = h.irs + 101, .flags = ACK});
  h.close_by_peer();
  h.finish();
}

TEST_CASE("LISTEN: a SYN to a full table is dropped silently", "[tcp]") {
  TcpConfig cfg = TcpHarness::default_config();
  cfg.max_connections = 1;
  TcpHarness h(cfg);
  h.accept_established();
  Seg s = h.syn(PeerOpts{});
  s.sport = 40001;
  SEND(h, s);
  RECV_NOTHING(h);
  CHECK(h.changed().find("tcp_conn_table_full=1") != std::string::npos);
  h.close_by_peer();
  h.finish();
}

// ===== SYN-SENT =====

TEST_CASE("SYN-SENT: connect() sends a SYN with every option", "[tcp]") {
  TcpHarness h;
  auto r = h.stack().connect(peer_ip, 80, &h.conn);
  REQUIRE(r.has_value());
  auto s = RECV_SEG(h, Expect{.ack = 0, .flags = SYN, .window = 65535, .len = 0,
                              .opt = full_synack_opts(h.kts(), 0)});
  CHECK(s.h.dst_port == 80);
  CHECK(s.h.src_port >= 32768);
  CHECK(s.h.src_port <= 60999);
  h.kport = s.h.src_port;
  h.pport = 80;
  CHECK(h.state() == "SYN-SENT");
  CHECK(h.changed().find("tcp_active_opens=1") != std::string::npos);
  h.stack().abort(**r);  // nothing to reset yet: no segment
  RECV_NOTHING(h);
  CHECK(h.conn.take_events() == "closed:connection aborted");
  h.finish();
}

TEST_CASE("SYN-SENT: an unacceptable ACK gets a RST; the connection stays", "[tcp]") {
  TcpHarness h;
  REQUIRE(h.stack().connect(peer_ip, h.pport, &h.conn).has_value());
  auto s = RECV_SEG(h, Expect{.flags = SYN});
  h.iss = s.seq();
  h.kport = s.h.src_port;
  for (uint32_t bad : {h.iss, h.iss - 100, h.iss + 2}) {
    SEND(h, Seg{.seq = h.irs, .ack = bad, .flags = SYN | ACK, .opt = {.mss = 1460}});
    RECV(h, Expect{.seq = bad, .flags = RST});
    CHECK(h.state() == "SYN-SENT");
    SEND(h, Seg{.seq = h.irs, .ack = bad, .flags = ACK});
    RECV(h, Expect{.seq = bad, .flags = RST});
  }
  // A RST with an unacceptable ACK, or with none, is ignored (RFC 5961 3.2 / 9293 3.10.7.3).
  SEND(h, Seg{.seq = h.irs, .ack = h.iss + 5, .flags = RST | ACK});
  SEND(h, Seg{.seq = h.irs, .ack = 0, .flags = RST});
  RECV_NOTHING(h);
  CHECK(h.state() == "SYN-SENT");
  CHECK(h.conn.take_events().empty());
  // A segment with a good ACK but neither SYN nor RST is dropped.
  SEND(h, Seg{.seq = h.irs, .ack = h.iss + 1, .flags = ACK});
  RECV_NOTHING(h);
  CHECK(h.state() == "SYN-SENT");
  // RST with the right ACK: refused.
  SEND(h, Seg{.seq = 0, .ack = h.iss + 1, .flags = RST | ACK});
  RECV_NOTHING(h);
  CHECK(h.state() == "CLOSED");
  CHECK(h.conn.take_events() == "closed:connection refused");
  CHECK(h.changed().find("tcp_attempt_fails=1") != std::string::npos);
  h.finish();
}

TEST_CASE("SYN-SENT: SYN-ACK -> ESTABLISHED with the negotiated options", "[tcp]") {
  TcpHarness h;
  Tcb* c = h.connect_established(PeerOpts{.mss = 1400, .ws = 14, .sack = true, .ts = true,
                                          .window = 5000});
  CHECK(c->ts_ok);
  CHECK(c->sack_ok);
  CHECK(c->snd.wscale == 14);
  CHECK(c->rcv.wscale == 2);
  CHECK(c->mss == 1400 - 12);
  CHECK(c->snd.wnd == 5000);  // a SYN's window is never scaled (RFC 7323 2.2)
  h.close_by_peer();
  h.finish();
}

TEST_CASE("SYN-SENT: a SYN-ACK without window scale turns scaling off both ways", "[tcp]") {
  TcpHarness h;
  Tcb* c = h.connect_established(PeerOpts{.mss = 1460, .ws = -1, .sack = false, .ts = false});
  CHECK(!c->ws_ok);
  CHECK(c->snd.wscale == 0);
  CHECK(c->rcv.wscale == 0);
  CHECK(c->mss == 1460);
  REQUIRE(h.stack().send_copy(*c, "x", 1).value_or(0) == 1);
  RECV(h, Expect{.seq = h.iss + 1, .flags = ACK | PSH, .window = 65535, .len = 1,
                 .opt = Opts{}});
  h.keel_nxt += 1;
  SEND(h, Seg{.flags = ACK});
  h.close_by_peer();
  h.finish();
}

TEST_CASE("SYN-SENT: simultaneous open", "[tcp]") {
  TcpHarness h;
  REQUIRE(h.stack().connect(peer_ip, h.pport, &h.conn).has_value());
  auto s = RECV_SEG(h, Expect{.flags = SYN});
  h.iss = s.seq();
  h.kport = s.h.src_port;
  // The peer's own SYN crosses ours.
  SEND(h, Seg{.seq = h.irs, .ack = 0, .flags = SYN, .opt = {.mss = 1460, .ws = 3, .sack_perm = true,
                                                            .ts = std::pair{h.pts(), 0u}},
              .no_ts = true});
  auto again = RECV_SEG(h, Expect{.seq = h.iss, .ack = h.irs + 1, .flags = SYN | ACK});
  CHECK(opts_of(again.h.opt).mss == std::optional<uint16_t>(1460));
  CHECK(opts_of(again.h.opt).ws == std::optional<uint8_t>(2));
  CHECK(again.h.opt.sack_permitted);
  CHECK(again.h.opt.has_timestamp);
  CHECK(h.state() == "SYN-RECEIVED");
  h.ts_on = true;
  h.peer_nxt = h.irs + 1;
  h.keel_nxt = h.iss + 1;
  // The peer's SYN-ACK (RFC 9293 figure 7, line 6) completes it.
  SEND(h, Seg{.seq = h.irs, .ack = h.iss + 1, .flags = SYN | ACK,
              .opt = {.mss = 1460, .ws = 3, .sack_perm = true}});
  CHECK(h.state() == "ESTABLISHED");
  CHECK(h.conn.take_events() == "connected");
  auto v = h.take();  // an ACK here is allowed, not required
  for (auto& o : v) TcpHarness::check(o, Expect{.seq = h.iss + 1, .ack = h.irs + 1, .flags = ACK});
  h.close_by_peer();
  h.finish();
}

TEST_CASE("SYN-SENT: the SYN is retransmitted with backoff, then the connect times out",
          "[tcp]") {
  TcpHarness h;
  REQUIRE(h.stack().connect(peer_ip, h.pport, &h.conn).has_value());
  auto s = RECV_SEG(h, Expect{.flags = SYN});
  h.iss = s.seq();
  h.kport = s.h.src_port;
  uint64_t at = h.now();
  // initial RTO 1 s, doubling; syn_retries = 3.
  for (uint64_t rto : {1 * sec, 2 * sec, 4 * sec}) {
    h.advance_to(at + rto - ms);
    RECV_NOTHING(h);
    h.advance_to(at + rto);
    RECV(h, Expect{.seq = h.iss, .flags = SYN});
    at += rto;
  }
  h.advance_to(at + 8 * sec - ms);
  RECV_NOTHING(h);
  CHECK(h.state() == "SYN-SENT");
  h.advance_to(at + 8 * sec);
  RECV_NOTHING(h);
  CHECK(h.state() == "CLOSED");
  CHECK(h.conn.take_events() == "closed:timed out");
  h.finish();
}

// ===== SYN-RECEIVED =====

TEST_CASE("SYN-RECEIVED: an unacceptable ACK gets a RST and the handshake goes on", "[tcp]") {
  TcpHarness h;
  Listener* l = h.listen();
  SEND(h, h.syn(PeerOpts{}));
  auto sa = RECV_SEG(h, Expect{.ack = h.irs + 1, .flags = SYN | ACK});
  h.iss = sa.seq();
  h.ts_on = true;
  h.peer_nxt = h.irs + 1;
  for (uint32_t bad : {h.iss, h.iss + 2, h.iss + 100000}) {
    SEND(h, Seg{.ack = bad, .flags = ACK});
    RECV(h, Expect{.seq = bad, .flags = RST});
    CHECK(h.state() == "SYN-RECEIVED");
  }
  CHECK(h.lst.conns.empty());
  h.keel_nxt = h.iss + 1;
  SEND(h, Seg{.flags = ACK});
  CHECK(h.state() == "ESTABLISHED");
  CHECK(l->accepted == 1);
  h.close_by_peer();
  h.finish();
}

TEST_CASE("SYN-RECEIVED: RST returns to LISTEN", "[tcp]") {
  TcpHarness h;
  Listener* l = h.listen();
  SEND(h, h.syn(PeerOpts{}));
  auto sa = RECV_SEG(h, Expect{.flags = SYN | ACK});
  h.iss = sa.seq();
  // A RST in the window but not at RCV.NXT: challenge ACK (RFC 5961 3.2).
  SEND(h, Seg{.seq = h.irs + 10, .ack = 0, .flags = RST, .no_ts = true});
  RECV(h, Expect{.seq = h.iss + 1, .ack = h.irs + 1, .flags = ACK});
  CHECK(h.state() == "SYN-RECEIVED");
  SEND(h, Seg{.seq = h.irs + 1, .ack = 0, .flags = RST, .no_ts = true});
  RECV_NOTHING(h);
  CHECK(h.state() == "CLOSED");
  CHECK(l->syn_queued == 0);
  CHECK(h.lst.conns.empty());
  CHECK(h.stack().connections() == 0);
  // Still listening: the same peer can connect again.
  h.accept_established();
  h.close_by_peer();
  h.finish();
}

TEST_CASE("SYN-RECEIVED: a repeated SYN gets the SYN-ACK again", "[tcp]") {
  TcpHarness h;
  h.listen();
  SEND(h, h.syn(PeerOpts{}));
  auto sa = RECV_SEG(h, Expect{.ack = h.irs + 1, .flags = SYN | ACK});
  h.iss = sa.seq();
  h.advance(100 * ms);
  SEND(h, h.syn(PeerOpts{}));  // our SYN-ACK was lost
  auto again = RECV_SEG(h, Expect{.seq = h.iss, .ack = h.irs + 1, .flags = SYN | ACK});
  CHECK(opts_of(again.h.opt).mss == std::optional<uint16_t>(1460));
  CHECK(opts_of(again.h.opt).ws == std::optional<uint8_t>(2));
  CHECK(again.h.opt.sack_permitted);
  CHECK(again.h.opt.has_timestamp);
  CHECK(h.state() == "SYN-RECEIVED");
  h.ts_on = true;
  h.peer_nxt = h.irs + 1;
  h.keel_nxt = h.iss + 1;
  SEND(h, Seg{.flags = ACK});
  CHECK(h.state() == "ESTABLISHED");
  h.close_by_peer();
  h.finish();
}

TEST_CASE("SYN-RECEIVED: the SYN-ACK is retransmitted, then the half-open connection expires",
          "[tcp]") {
  TcpHarness h;
  Listener* l = h.listen();
  SEND(h, h.syn(PeerOpts{}));
  auto sa = RECV_SEG(h, Expect{.flags = SYN | ACK});
  h.iss = sa.seq();
  uint64_t at = h.now();
  for (uint64_t rto : {1 * sec, 2 * sec, 4 * sec}) {
    h.advance_to(at + rto - ms);
    RECV_NOTHING(h);
    h.advance_to(at + rto);
    RECV(h, Expect{.seq = h.iss, .ack = h.irs + 1, .flags = SYN | ACK});
    at += rto;
  }
  CHECK(l->syn_queued == 1);
  // syn_received_timeout (10 s) or the fourth RTO, whichever comes first.
  h.advance(10 * sec);
  RECV_NOTHING(h);
  CHECK(h.state() == "CLOSED");
  CHECK(l->syn_queued == 0);
  CHECK(h.lst.conns.empty());
  CHECK(h.changed().find("tcp_attempt_fails=1") != std::string::npos);
  h.finish();
}

TEST_CASE("SYN-RECEIVED: the application refusing the connection resets it", "[tcp]") {
  TcpHarness h;
  h.listen();
  h.lst.refuse = true;
  SEND(h, h.syn(PeerOpts{}));
  auto sa = RECV_SEG(h, Expect{.flags = SYN | ACK});
  h.iss = sa.seq();
  h.ts_on = true;
  h.peer_nxt = h.irs + 1;
  h.keel_nxt = h.iss + 1;
  SEND(h, Seg{.flags = ACK});
  RECV(h, Expect{.seq = h.iss + 1, .flags = RST | ACK});
  CHECK(h.state() == "CLOSED");
  h.finish();
}

// ===== SYN cookies =====

TEST_CASE("SYN cookies: a full SYN queue answers with a cookie; its ACK makes the connection",
          "[tcp]") {
  TcpHarness h;
  Listener* l = h.listen(80, 1);
  SEND(h, h.syn(PeerOpts{}));  // fills the queue
  auto first = RECV_SEG(h, Expect{.flags = SYN | ACK});
  CHECK(l->syn_queued == 1);
  CHECK(h.stack().connections() == 1);

  h.pport = 40001;
  h.irs = 0xffffff00;
  SEND(h, h.syn(PeerOpts{.mss = 1400, .ws = 9, .sack = true, .ts = true}));
  auto sa = RECV_SEG(h, Expect{.ack = h.irs + 1, .flags = SYN | ACK, .window = 65535});
  CHECK(h.stack().connections() == 1);  // no state kept
  CHECK(l->cookies_sent == 1);
  CHECK(h.changed().find("tcp_syn_cookies_sent=1") != std::string::npos);
  Opts o = opts_of(sa.h.opt);
  CHECK(o.mss == std::optional<uint16_t>(1460));
  CHECK(o.ws == std::optional<uint8_t>(2));
  CHECK(o.sack_perm);
  REQUIRE(o.ts.has_value());
  CHECK((o.ts->first & 0x3f) == (0x20 | 9));  // SACK and WS ride in the TSval's low bits
  CHECK((o.ts->first >> 6) == (h.kts() >> 6));
  h.iss = sa.seq();

  h.advance(5 * ms);
  h.ts_on = true;
  h.peer_nxt = h.irs + 1;
  h.keel_nxt = h.iss + 1;
  SEND(h, Seg{.flags = ACK, .window = 100});
  RECV_NOTHING(h);
  CHECK(h.state() == "ESTABLISHED");
  CHECK(h.changed().find("tcp_syn_cookies_ok=1") != std::string::npos);
  REQUIRE(h.lst.conns.size() == 1);
  CHECK(h.lst.conns[0]->take_events() == "accepted");
  Tcb* c = h.tcb();
  REQUIRE(c != nullptr);
  CHECK(c->cookie);
  CHECK(c->ts_ok);
  CHECK(c->sack_ok);
  CHECK(c->ws_ok);
  CHECK(c->snd.wscale == 9);
  CHECK(c->rcv.wscale == 2);
  CHECK(c->peer_mss == 1400);
  CHECK(c->mss == 1400 - 12);
  CHECK(c->snd.wnd == 100u << 9);
  REQUIRE(h.stack().send_copy(*c, pattern(3000).data(), 3000).value_or(0) == 3000);
  // Two full segments; Nagle holds the last 224 bytes until they are acknowledged.
  auto v = h.take();
  REQUIRE(v.size() == 2);
  TcpHarness::check(v[0], Expect{.seq = h.iss + 1, .ack = h.irs + 1, .flags = ACK, .window = 32768,
                                 .len = 1388});
  TcpHarness::check(v[1], Expect{.seq = h.iss + 1 + 1388, .flags = ACK, .len = 1388});
  h.keel_nxt += 2 * 1388;
  SEND(h, Seg{.flags = ACK, .window = 100});
  RECV(h, Expect{.seq = h.iss + 1 + 2 * 1388, .flags = ACK | PSH, .len = 224});
  h.keel_nxt += 224;
  SEND(h, Seg{.flags = ACK, .window = 100});
  RECV_NOTHING(h);
  h.close_by_peer();

  // The first connection is still half-open: let it expire.
  h.advance(10 * sec);
  h.take();  // its SYN-ACK retransmissions
  CHECK(l->syn_queued == 0);
  h.finish();
  (void)first;
}

TEST_CASE("SYN cookies: the peer may send data right after its ACK", "[tcp]") {
  // A client's request usually follows its ACK at once: the cookie connection
  // must open the window its SYN-ACK advertised without sending anything first.
  TcpHarness h;
  h.listen(80, 1);
  h.lst.auto_read = true;
  SEND(h, h.syn(PeerOpts{}));
  RECV(h, Expect{.flags = SYN | ACK});
  h.pport = 40001;
  for (bool ts : {true, false}) {
    INFO("timestamps " << ts);
    h.ts_on = false;
    SEND(h, h.syn(PeerOpts{.ts = ts}));
    auto sa = RECV_SEG(h, Expect{.ack = h.irs + 1, .flags = SYN | ACK});
    h.iss = sa.seq();
    h.ts_on = ts;
    h.peer_nxt = h.irs + 1;
    h.keel_nxt = h.iss + 1;
    SEND(h, Seg{.flags = ACK});
    SEND(h, Seg{.flags = ACK | PSH, .data = pattern(100)});
    h.peer_nxt += 100;
    REQUIRE(h.state() == "ESTABLISHED");
    CHECK(h.app().received == pattern(100));
    if (ts) {
      // The SYN-ACK could advertise 65535 only; with scaling the window is
      // 128 KiB, which the application's first read announces at once.
      RECV(h, Expect{.seq = h.iss + 1, .ack = h.peer_nxt, .flags = ACK, .window = 32768});
    } else {
      RECV_NOTHING(h);
      h.advance(40 * ms);  // delayed ACK; the right edge stays (receiver SWS avoidance)
      RECV(h, Expect{.seq = h.iss + 1, .ack = h.peer_nxt, .flags = ACK, .window = 65535 - 100});
    }
    h.close_by_peer();
    h.pport++;
  }
  h.advance(10 * sec);  // the first, half-open connection expires
  h.take();
  h.finish();
}

// The segment that completes a SYN-cookie handshake may carry data: it is
// taken at once (as Linux's tcp_child_process does), not left to the peer's
// retransmission timeout.
TEST_CASE("SYN cookies: data on the ACK that completes the handshake is taken", "[tcp]") {
  TcpHarness h;
  h.listen(80, 1);
  h.lst.auto_read = true;
  SEND(h, h.syn(PeerOpts{}));
  RECV(h, Expect{.flags = SYN | ACK});
  h.pport = 40001;
  SEND(h, h.syn(PeerOpts{}));
  auto sa = RECV_SEG(h, Expect{.ack = h.irs + 1, .flags = SYN | ACK});
  h.iss = sa.seq();
  h.ts_on = true;
  h.peer_nxt = h.irs + 1;
  h.keel_nxt = h.iss + 1;
  SEND(h, Seg{.flags = ACK | PSH, .data = pattern(100)});
  REQUIRE(h.state() == "ESTABLISHED");
  CHECK(h.app().received == pattern(100));
  h.peer_nxt += 100;
  h.advance(40 * ms);
  h.take();
  h.close_by_peer();
  h.advance(10 * sec);  // the first, half-open connection expires
  h.take();
  h.finish();
}

TEST_CASE("SYN cookies: an ACK with a wrong cookie is reset", "[tcp]") {
  TcpHarness h;
  Listener* l = h.listen(80, 1);
  SEND(h, h.syn(PeerOpts{}));
  RECV(h, Expect{.flags = SYN | ACK});
  h.pport = 40001;
  SEND(h, h.syn(PeerOpts{}));
  auto sa = RECV_SEG(h, Expect{.flags = SYN | ACK});
  SEND(h, Seg{.seq = h.irs + 1, .ack = sa.seq() + 2, .flags = ACK});
  RECV(h, Expect{.seq = sa.seq() + 2, .flags = RST});
  // The right cookie from another port is no good either.
  SEND(h, Seg{.seq = h.irs + 1, .ack = sa.seq() + 1, .flags = ACK, .sport = 40002});
  RECV(h, Expect{.seq = sa.seq() + 1, .flags = RST});
  // Too late: the cookie is valid for two 64 s slots at most.
  h.advance(130 * sec);
  h.take();
  SEND(h, Seg{.seq = h.irs + 1, .ack = sa.seq() + 1, .flags = ACK});
  RECV(h, Expect{.seq = sa.seq() + 1, .flags = RST});
  CHECK(h.changed().find("tcp_syn_cookies_bad=3") != std::string::npos);
  CHECK(h.stack().connections() == 0);  // the half-open one expired
  CHECK(l->syn_queued == 0);
  h.finish();
}

TEST_CASE("SYN cookies: without timestamps the cookie SYN-ACK offers no WS or SACK", "[tcp]") {
  // The cookie keeps only the MSS when the peer sends no timestamps, so the
  // SYN-ACK must not offer window scaling or SACK it will not remember (as Linux).
  TcpHarness h;
  h.listen(80, 1);
  SEND(h, h.syn(PeerOpts{}));
  RECV(h, Expect{.flags = SYN | ACK});
  h.pport = 40001;
  SEND(h, h.syn(PeerOpts{.mss = 1460, .ws = 7, .sack = true, .ts = false}));
  auto sa = RECV_SEG(h, Expect{.ack = h.irs + 1, .flags = SYN | ACK, .opt = Opts{.mss = 1460}});
  h.iss = sa.seq();
  h.peer_nxt = h.irs + 1;
  h.keel_nxt = h.iss + 1;
  SEND(h, Seg{.flags = ACK, .window = 4000});
  CHECK(h.state() == "ESTABLISHED");
  Tcb* c = h.tcb();
  REQUIRE(c != nullptr);
  CHECK(!c->ws_ok);
  CHECK(!c->sack_ok);
  CHECK(c->snd.wnd == 4000);
  CHECK(c->mss == 1460);
  h.close_by_peer();
  h.advance(10 * sec);
  h.take();
  h.finish();
}

// ===== No connection (RFC 9293 3.10.7.1) =====

TEST_CASE("CLOSED: segments to a port nobody listens on are reset", "[tcp]") {
  TcpHarness h;
  SECTION("SYN: RST|ACK <SEQ=0><ACK=SEG.SEQ+1>") {
    SEND(h, h.syn(PeerOpts{}));
    RECV(h, Expect{.seq = 0, .ack = h.irs + 1, .flags = RST | ACK, .window = 0, .opt = Opts{}});
  }
  SECTION("SYN with data: the ACK covers the data") {
    Seg s = h.syn(PeerOpts{});
    s.data = pattern(30);
    SEND(h, s);
    RECV(h, Expect{.seq = 0, .ack = h.irs + 31, .flags = RST | ACK});
  }
  SECTION("ACK: RST <SEQ=SEG.ACK>") {
    SEND(h, Seg{.seq = 5000, .ack = 0xfffffffe, .flags = ACK, .data = pattern(20)});
    RECV(h, Expect{.seq = 0xfffffffe, .flags = RST});
  }
  SECTION("FIN without ACK: SEG.LEN counts the FIN") {
    SEND(h, Seg{.seq = 0xffffffff, .ack = 0, .flags = FIN, .data = pattern(5)});
    RECV(h, Expect{.seq = 0, .ack = 0xffffffff + 6u, .flags = RST | ACK});
  }
  SECTION("no RST in answer to a RST") {
    SEND(h, Seg{.seq = 5000, .ack = 0, .flags = RST});
    SEND(h, Seg{.seq = 5000, .ack = 9, .flags = RST | ACK});
    RECV_NOTHING(h);
  }
  CHECK(h.stack().connections() == 0);
  h.finish();
}

// ===== Malformed segments =====

TEST_CASE("Malformed segments are dropped and counted, nothing is sent", "[tcp]") {
  TcpHarness h;
  Tcb* c = h.accept_established();
  uint64_t rst_before = h.count(Counter::tcp_resets_sent);
  h.mark();
  std::string counter;
  SECTION("bad checksum") {
    SEND(h, Seg{.flags = ACK | PSH, .data = pattern(10), .bad_checksum = true});
    counter = "tcp_bad_checksum=1";
  }
  SECTION("data offset below 5") {
    SEND(h, Seg{.flags = ACK, .data = pattern(10), .data_off = 4});
    counter = "tcp_bad_data_offset=1";
  }
  SECTION("data offset beyond the segment") {
    SEND(h, Seg{.flags = ACK, .opt = {.raw = Bytes{1, 1, 1, 1}}, .data_off = 15});
    counter = "tcp_bad_data_offset=1";
  }
  SECTION("an option running past the header") {
    SEND(h, Seg{.flags = ACK, .opt = {.raw = Bytes{1, 1, 8, 10}}});
    counter = "tcp_bad_options=1";
  }
  SECTION("an MSS option of the wrong length") {
    SEND(h, Seg{.flags = ACK, .opt = {.raw = Bytes{2, 3, 5, 0}}});
    counter = "tcp_bad_options=1";
  }
  SECTION("an option length of 0") {
    SEND(h, Seg{.flags = ACK, .opt = {.raw = Bytes{1, 1, 0x22, 0}}});
    counter = "tcp_bad_options=1";
  }
  SECTION("SYN+FIN") {
    SEND(h, Seg{.flags = SYN | FIN | ACK});
    counter = "tcp_bad_flags=1";
  }
  SECTION("SYN+RST") {
    SEND(h, Seg{.flags = SYN | RST});
    counter = "tcp_bad_flags=1";
  }
  SECTION("no flags at all") {
    SEND(h, Seg{.flags = 0, .data = pattern(3)});
    counter = "tcp_bad_flags=1";
  }
  SECTION("source port 0") {
    SEND(h, Seg{.flags = ACK, .sport = 0});
    counter = "tcp_bad_address=1";
  }
  SECTION("shorter than a TCP header") {
    Ip ip;
    ip.protocol = 6;
    h.send_frame(ether(our_mac, peer_mac, 0x0800, ipv4(ip, pattern(12))));
    counter = "tcp_truncated=1";
  }
  RECV_NOTHING(h);
  std::string moved = h.changed();
  INFO(moved);
  CHECK(moved.find(counter) != std::string::npos);
  CHECK(h.count(Counter::tcp_resets_sent) == rst_before);
  CHECK(h.state() == "ESTABLISHED");
  CHECK(c->rcvq.empty());
  h.close_by_peer();
  h.finish();
}
