// SPDX-License-Identifier: BSD-3-Clause
// TCP at packet level, loss recovery with SACK and RACK (RFC 8985): a lost resend is found
// and sent again without waiting for the RTO; after an RTO only what the receiver lacks is
// sent again; SACKed segments make room for new data before recovery (limited transmit);
// a cwnd-limited tail loss probe sends new data, the second probe resends; reordering,
// once seen, no longer looks like loss. The test plays the peer; see tcp_harness.hpp.
// Timestamps are on (MSS 1448); round trips are 1 ms, well under the probe timeout (10 ms).
#include "tcp_harness.hpp"

#include <map>
#include <set>

#include "tcp/seq.hpp"

using namespace keel::test;
using namespace keel::test::tcp;
using keel::engine::Counter;

namespace {

/// The stack's segments from `first` on: segment i starts at seg(i).
struct Segs {
  uint32_t first, mss;
  uint32_t operator()(uint32_t i) const { return first + i * mss; }
  /// Which segment a sent frame starts (frames carry whole segments here).
  uint32_t index(const Out& o) const { return (o.seq() - first) / mss; }
};

/// Queues `n` full segments and takes what the initial window sends (10 segments).
Segs queue_segments(TcpHarness& h, Tcb* c, uint32_t n) {
  Segs seg{h.keel_nxt, c->mss};
  Bytes data = pattern(n * c->mss);
  REQUIRE(h.stack().send_copy(*c, data.data(), data.size()).value_or(0) == data.size());
  auto v = h.take();
  REQUIRE(v.size() == std::min<uint32_t>(n, 10));
  for (size_t i = 0; i < v.size(); ++i) REQUIRE(v[i].seq() == seg(uint32_t(i)));
  return seg;
}

/// A SACK-carrying ACK from the peer.
Seg sack_ack(uint32_t ack, std::vector<Block> blocks) {
  return Seg{.ack = ack, .flags = ACK, .opt = {.sack = std::move(blocks)}};
}

/// Moves time on in 1 ms steps (the timer wheel's tick), so that timers armed by
/// timers fire at their own time rather than all at the end.
void run_for(TcpHarness& h, uint64_t dt) {
  for (uint64_t end = h.now() + dt; h.now() < end;) h.advance(std::min<uint64_t>(1 * ms, end - h.now()));
}

/// The probe timeout the stack uses with more than one segment out.
uint64_t pto(const Tcb* c) { return std::max<uint64_t>(2 * c->srtt_ns + 2 * ms, 10 * ms); }

}  // namespace

// ===== RACK =====

TEST_CASE("RACK: a lost resend is found by what was sent after it, before the RTO", "[tcp]") {
  TcpHarness h;
  Tcb* c = h.accept_established();
  Segs seg = queue_segments(h, c, 20);
  std::vector<Out> all;
  // 1 ms later segment 0 is missing, 1-9 arrived: RACK's window is 0 with three or more
  // segments SACKed, so segment 0 is lost at once. Recovery resends it and the room the
  // pipe has goes to new data (10-15).
  h.advance(1 * ms);
  SEND(h, sack_ack(seg(0), {{seg(1), seg(10)}}));
  auto v = h.take();
  REQUIRE(v.size() >= 2);
  CHECK(v[0].seq() == seg(0));
  CHECK(v[1].seq() == seg(10));
  CHECK(h.count(Counter::tcp_sack_recoveries) == 1);
  CHECK(c->in_recovery);
  all.insert(all.end(), v.begin(), v.end());
  uint32_t top = seg.index(v.back()) + 1;
  // The resend is lost too. What was sent after it arrives 1 ms later: lost, resent.
  h.advance(1 * ms);
  SEND(h, sack_ack(seg(0), {{seg(1), seg(top)}}));
  v = h.take();
  REQUIRE(!v.empty());
  CHECK(v[0].seq() == seg(0));
  all.insert(all.end(), v.begin(), v.end());
  for (auto& o : v) top = std::max(top, seg.index(o) + 1);
  // It arrives; everything is ACKed.
  h.advance(1 * ms);
  SEND(h, Seg{.ack = seg(top)});
  for (auto& o : h.take()) {
    all.push_back(o);
    top = std::max(top, seg.index(o) + 1);
  }
  SEND(h, Seg{.ack = seg(top)});
  h.keel_nxt = seg(20);
  REQUIRE(top == 20);
  CHECK_FALSE(c->in_recovery);
  size_t resends = 0;
  for (auto& o : all) resends += o.seq() == seg(0);
  CHECK(resends == 2);
  CHECK(h.count(Counter::tcp_rto_timeouts) == 0);
  CHECK(h.count(Counter::tcp_retransmits) == 2);
  h.close_by_peer();
  h.finish();
}

TEST_CASE("RACK: reordering, once seen, is waited for instead of resent", "[tcp]") {
  TcpHarness h;
  Tcb* c = h.accept_established();
  Segs seg = queue_segments(h, c, 10);
  // Segment 0 comes after 1 and 2: one or two segments SACKed leave a quarter of the
  // min RTT to wait, and the late segment fills the hole in time. Reordering seen.
  h.advance(1 * ms);
  SEND(h, sack_ack(seg(0), {{seg(1), seg(2)}}));
  SEND(h, sack_ack(seg(0), {{seg(1), seg(3)}}));
  RECV_NOTHING(h);
  SEND(h, Seg{.ack = seg(3)});
  CHECK(c->rack.reordering_seen());
  // Now segments 3 and 4 come after 5-9: five segments SACKed, which without reordering
  // seen would mean a loss at once (RFC 8985 6.2 step 4); now the window holds.
  SEND(h, sack_ack(seg(3), {{seg(5), seg(10)}}));
  RECV_NOTHING(h);
  SEND(h, Seg{.ack = seg(10)});
  h.keel_nxt = seg(10);
  RECV_NOTHING(h);
  CHECK(h.count(Counter::tcp_retransmits) == 0);
  CHECK(h.count(Counter::tcp_sack_recoveries) == 0);
  h.close_by_peer();
  h.finish();
}

TEST_CASE("RACK: a lone hole is found by time, on the reordering timer", "[tcp]") {
  TcpHarness h;
  Tcb* c = h.accept_established();
  Segs seg = queue_segments(h, c, 3);
  // Segment 0 is lost; 1 and 2 arrive. Two SACKed segments are too few for DupThresh,
  // and no more will come: RACK marks it lost once a quarter of the RTT has passed.
  h.advance(1 * ms);
  SEND(h, sack_ack(seg(0), {{seg(1), seg(3)}}));
  RECV_NOTHING(h);
  CHECK(c->reo_timer.armed());
  h.advance(2 * ms);  // the wheel's 1 ms tick
  RECV(h, Expect{.seq = seg(0), .len = c->mss});
  CHECK(h.count(Counter::tcp_sack_recoveries) == 1);
  CHECK(h.count(Counter::tcp_tail_probes) == 0);
  SEND(h, Seg{.ack = seg(3)});
  h.keel_nxt = seg(3);
  h.close_by_peer();
  h.finish();
}

// ===== Retransmission timeout with SACK =====

TEST_CASE("RTO with SACK: only the octets the receiver lacks are sent again", "[tcp]") {
  TcpHarness h;
  Tcb* c = h.accept_established();
  Segs seg = queue_segments(h, c, 10);
  // Segments 4-9 arrive, 0-3 do not: recovery resends 0-3 (nothing new to send).
  h.advance(1 * ms);
  SEND(h, sack_ack(seg(0), {{seg(4), seg(10)}}));
  auto v = h.take();
  REQUIRE(v.size() == 4);
  for (uint32_t i = 0; i < 4; ++i) CHECK(v[i].seq() == seg(i));
  // Every resend is lost and nothing answers: two tail loss probes (the highest
  // unSACKed segment, 3), then the RTO.
  run_for(h, 300 * ms);
  std::vector<Out> later = h.take();
  CHECK(h.count(Counter::tcp_tail_probes) == 2);
  CHECK(h.count(Counter::tcp_rto_timeouts) == 1);
  REQUIRE(later.size() == 3);
  CHECK(later[0].seq() == seg(3));
  CHECK(later[1].seq() == seg(3));
  CHECK(later[2].seq() == seg(0));  // after the RTO: cwnd 1, the first hole
  CHECK(c->ccv.cwnd == c->mss);
  // Slow start from there resends 1-3 as ACKs come, never 4-9, which the receiver holds.
  h.advance(1 * ms);
  SEND(h, sack_ack(seg(1), {{seg(4), seg(10)}}));
  v = h.take();
  REQUIRE(v.size() == 2);  // cwnd 2
  CHECK(v[0].seq() == seg(1));
  CHECK(v[1].seq() == seg(2));
  h.advance(1 * ms);
  SEND(h, sack_ack(seg(3), {{seg(4), seg(10)}}));
  RECV(h, Expect{.seq = seg(3), .len = c->mss});
  h.advance(1 * ms);
  SEND(h, Seg{.ack = seg(10)});
  RECV_NOTHING(h);
  h.keel_nxt = seg(10);
  CHECK_FALSE(c->rto_recovery);
  h.close_by_peer();
  h.finish();
}

// ===== Sending with SACK outside recovery =====

TEST_CASE("SACK: segments SACKed before recovery make room for new data", "[tcp]") {
  TcpHarness h;
  Tcb* c = h.accept_established();
  Segs seg = queue_segments(h, c, 12);
  // One segment SACKed (0 missing): not yet a loss, but one segment left the network.
  h.advance(1 * ms);
  SEND(h, sack_ack(seg(0), {{seg(1), seg(2)}}));
  RECV(h, Expect{.seq = seg(10), .len = c->mss});
  CHECK_FALSE(c->in_recovery);
  SEND(h, Seg{.ack = seg(11)});
  RECV(h, Expect{.seq = seg(11), .len = c->mss});
  SEND(h, Seg{.ack = seg(12)});
  h.keel_nxt = seg(12);
  CHECK(h.count(Counter::tcp_retransmits) == 0);
  h.close_by_peer();
  h.finish();
}

// ===== Tail loss probes =====

TEST_CASE("TLP: a cwnd-limited flight probes with new data, then resends its last segment",
          "[tcp]") {
  TcpHarness h;
  Tcb* c = h.accept_established();
  Segs seg = queue_segments(h, c, 20);
  REQUIRE(c->snd.max - c->snd.una >= c->ccv.cwnd);  // the window is full
  // No ACK: the first probe is new data, beyond cwnd (RFC 8985 7.3).
  h.advance(pto(c) + 1 * ms);
  RECV(h, Expect{.seq = seg(10), .len = c->mss});
  // Still nothing: the second probe resends the highest segment, which a receiver
  // holding it must ACK at once (a new segment in order may wait for a delayed ACK).
  h.advance(pto(c) + 1 * ms);
  RECV(h, Expect{.seq = seg(10), .len = c->mss});
  CHECK(h.count(Counter::tcp_tail_probes) == 2);
  // Then only the RTO.
  h.advance(150 * ms);
  RECV_NOTHING(h);
  h.advance(100 * ms);
  RECV(h, Expect{.seq = seg(0), .len = c->mss});
  CHECK(h.count(Counter::tcp_rto_timeouts) == 1);
  // The receiver had it all: the RTO was spurious, but slow start resends only
  // what is still marked lost as ACKs come.
  SEND(h, Seg{.ack = seg(11)});
  for (int round = 0; round < 8 && c->snd.una != seg(20); ++round) {
    uint32_t top = c->snd.una;
    for (auto& o : h.take()) top = keel::tcp::seq_max(top, o.seq() + uint32_t(o.len()));
    h.advance(1 * ms);
    SEND(h, Seg{.ack = top});
  }
  CHECK(c->snd.una == seg(20));
  h.keel_nxt = seg(20);
  RECV_NOTHING(h);
  h.close_by_peer();
  h.finish();
}

// ===== what recovery borrows =====

namespace {

/// Segment 0 of 20 is lost, 1-9 arrive (SACKed at once); the peer then ACKs cumulatively
/// whatever has arrived, 1 ms after each flight, until all 20 are ACKed. Returns the
/// segments the stack sent more than once (index -> times).
std::map<uint32_t, int> recover_one_loss(TcpHarness& h, Tcb* c, bool* held_board) {
  Segs seg = queue_segments(h, c, 20);
  std::set<uint32_t> arrived{1, 2, 3, 4, 5, 6, 7, 8, 9};
  std::map<uint32_t, int> sent_again;
  h.advance(1 * ms);
  SEND(h, sack_ack(seg(0), {{seg(1), seg(10)}}));
  *held_board = c->sack.has_board();
  uint32_t una = 0;
  for (int i = 0; i < 2000 && una < 20; ++i) {
    run_for(h, 1 * ms);
    for (auto& o : h.take()) {
      if (o.data.empty()) continue;
      uint32_t k = seg.index(o);
      if (k < 10 || arrived.count(k)) ++sent_again[k];
      arrived.insert(k);
    }
    uint32_t next = una;
    while (arrived.count(next)) ++next;
    if (next != una) {
      una = next;
      SEND(h, Seg{.ack = seg(una)});
    }
  }
  REQUIRE(una == 20);
  h.keel_nxt = seg(20);
  return sent_again;
}

}  // namespace

TEST_CASE("recovery: the RACK log and the scoreboard are lent while needed, then returned", "[tcp]") {
  TcpHarness h;
  Tcb* c = h.accept_established();
  const auto& logs = h.stack().rack_pool();
  const auto& boards = h.stack().sack_pool();
  CHECK_FALSE(c->rack.has_log());  // established, idle: nothing borrowed
  CHECK_FALSE(c->sack.has_board());
  bool held = false;
  auto again = recover_one_loss(h, c, &held);
  CHECK(held);
  CHECK(again == std::map<uint32_t, int>{{0, 1}});  // only the lost segment, once
  CHECK(h.count(Counter::tcp_rto_timeouts) == 0);
  CHECK_FALSE(c->rack.has_log());
  CHECK_FALSE(c->sack.has_board());
  CHECK(logs.available() == logs.size());
  CHECK(boards.available() == boards.size());
  CHECK(h.count(Counter::tcp_rack_log_exhausted) == 0);
  CHECK(h.count(Counter::tcp_sack_board_exhausted) == 0);
  h.close_by_peer();
  h.finish();
}

TEST_CASE("recovery: with no RACK log and no scoreboard free, a loss is still recovered", "[tcp]") {
  TcpConfig cfg = TcpHarness::default_config();
  cfg.rack_logs = 0;
  cfg.sack_boards = 0;
  TcpHarness h(cfg);
  Tcb* c = h.accept_established();
  bool held = true;
  auto again = recover_one_loss(h, c, &held);
  CHECK_FALSE(held);
  // The SACKed segments may go again (nothing recorded them), but the lost one goes, and
  // before the RTO.
  CHECK(again.count(0) == 1);
  CHECK(h.count(Counter::tcp_rto_timeouts) == 0);
  CHECK(h.count(Counter::tcp_sack_board_exhausted) >= 1);
  h.close_by_peer();
  h.finish();
}
