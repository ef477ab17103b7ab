// SPDX-License-Identifier: BSD-3-Clause
// RACK (RFC 8985) on its own: the log of what was sent when (runs, resends, the cumulative
// ACK, the bound on runs), the RACK state an ACK updates (most recently sent delivered
// segment, RTT, min RTT, reordering, the D-SACK multiplier), time-based loss marking and
// the reordering timeout, marking on an RTO, and the pipe / NextSeg answers over the SACK
// scoreboard. Sequence numbers start just below 2^32 so every test crosses the wrap.
#include <catch2/catch.hpp>

#include <algorithm>
#include <vector>

#include "tcp/rack.hpp"
#include "tcp/sack_scoreboard.hpp"
#include "tcp/seq.hpp"

using keel::tcp::Rack;
using keel::tcp::RackLogPool;
using keel::tcp::SackBlock;
using keel::tcp::SackScoreboard;
using keel::tcp::seq_gt;

namespace {

/// The logs the tests' Racks borrow (TcpStack has one per instance).
RackLogPool pool(8);

constexpr uint32_t base = 0xfffff000u;  // snd.una; 4096 octets below the wrap
constexpr uint32_t mss = 1000;
constexpr uint64_t us = 1'000, ms = 1'000'000;
constexpr uint64_t t0 = 1'000'000 * ms;  // an arbitrary clock origin

/// The i-th MSS-sized segment's first octet.
uint32_t seg(uint32_t i) { return base + i * mss; }

struct RunV {
  uint32_t start, end;
  uint8_t flags;
  bool operator==(const RunV&) const = default;
};
std::ostream& operator<<(std::ostream& o, const RunV& r) {
  return o << "[" << r.start - base << "," << r.end - base << " f" << int(r.flags) << "]";
}
std::vector<RunV> runs_of(const Rack& r) {
  std::vector<RunV> v;
  for (size_t i = 0; i < r.runs(); ++i) v.push_back({r.run(i).start, r.run(i).end, r.run(i).flags});
  return v;
}

/// One ACK: the cumulative ACK moves from una to ack, carrying `blocks`; the scoreboard
/// takes them as TcpStack::process_ack does (RACK first, against the old scoreboard).
void ack(Rack& r, SackScoreboard& sb, uint32_t una, uint32_t ackno, uint32_t nxt,
         std::vector<SackBlock> blocks, uint64_t now) {
  SackScoreboard before = sb;
  Rack::Ack a;
  a.una_before = una;
  a.una_after = ackno;
  a.snd_nxt = nxt;
  a.now_ns = now;
  a.blocks = blocks.data();
  a.n = blocks.size();
  a.dsack = blocks.empty() ? false : sb.update(blocks.data(), blocks.size(), ackno, nxt);
  r.on_ack(a, before);
  sb.advance(ackno);
  r.advance(ackno);
}

/// Sends segments [from, to) one burst per call at `now`.
void send(Rack& r, const SackScoreboard& sb, uint32_t from, uint32_t to, uint64_t now) {
  for (uint32_t i = from; i < to; ++i) r.on_sent(seg(i), seg(i + 1), now, sb);
}

constexpr uint8_t R = Rack::retransmitted, L = Rack::lost;

}  // namespace

// ===== the log =====

TEST_CASE("rack: a burst is one run; later sends, resends and ACKs reshape the log", "[rack]") {
  Rack r(&pool);
  SackScoreboard sb;
  CHECK(r.empty());
  send(r, sb, 0, 4, t0);  // one burst: one run
  CHECK(runs_of(r) == std::vector<RunV>{{seg(0), seg(4), 0}});
  send(r, sb, 4, 6, t0 + 1 * ms);  // later: a new run (no RTT known, no coalescing)
  CHECK(runs_of(r) == std::vector<RunV>{{seg(0), seg(4), 0}, {seg(4), seg(6), 0}});
  CHECK(r.start() == seg(0));
  CHECK(r.end() == seg(6));
  // A resend in the middle of a run splits it in three.
  r.on_resent(seg(1), seg(2), t0 + 2 * ms, sb);
  CHECK(runs_of(r) == std::vector<RunV>{
                          {seg(0), seg(1), 0}, {seg(1), seg(2), R}, {seg(2), seg(4), 0}, {seg(4), seg(6), 0}});
  // A resend across runs makes one run of them; octets beyond the log are ignored.
  r.on_resent(seg(3), seg(9), t0 + 3 * ms, sb);
  CHECK(runs_of(r) == std::vector<RunV>{
                          {seg(0), seg(1), 0}, {seg(1), seg(2), R}, {seg(2), seg(3), 0}, {seg(3), seg(6), R}});
  // The cumulative ACK inside a run trims it.
  r.advance(seg(1) + 10);
  CHECK(runs_of(r) == std::vector<RunV>{{seg(1) + 10, seg(2), R}, {seg(2), seg(3), 0}, {seg(3), seg(6), R}});
  r.advance(seg(6));
  CHECK(r.empty());
  CHECK(r.start() == seg(6));
  // Sending resumes where the log ends; a send that does not line up restarts it.
  send(r, sb, 6, 7, t0 + 4 * ms);
  CHECK(runs_of(r) == std::vector<RunV>{{seg(6), seg(7), 0}});
  r.on_sent(seg(9), seg(10), t0 + 5 * ms, sb);
  CHECK(runs_of(r) == std::vector<RunV>{{seg(9), seg(10), 0}});
}

TEST_CASE("rack: sends in one poll get distinct, increasing times", "[rack]") {
  Rack r(&pool);
  SackScoreboard sb;
  send(r, sb, 0, 2, t0);
  r.on_resent(seg(0), seg(1), t0, sb);  // same now: still after the burst
  r.on_sent(seg(2), seg(3), t0, sb);    // and this after the resend
  REQUIRE(r.runs() == 3);  // [0: resent] [1: first burst] [2: after the resend]
  CHECK(r.run(0).flags == Rack::retransmitted);
  CHECK(int32_t(r.run(0).last_us - r.run(1).last_us) > 0);
  CHECK(int32_t(r.run(2).first_us - r.run(0).last_us) > 0);
  // The original segment 1, delivered, is older than the resend: segment 0's resend
  // is not deemed lost by it.
  ack(r, sb, seg(0), seg(0), seg(3), {{seg(1), seg(2)}}, t0 + 10 * ms);
  r.detect_loss(sb, t0 + 10 * ms, 10 * ms, true, mss);
  CHECK_FALSE(r.has_lost(sb));
  // Segment 2, sent after the resend, delivered: now it is.
  ack(r, sb, seg(0), seg(0), seg(3), {{seg(1), seg(3)}}, t0 + 10 * ms);
  r.detect_loss(sb, t0 + 10 * ms, 10 * ms, true, mss);
  CHECK(r.has_lost(sb));
  CHECK(r.next_lost(sb, mss).left == seg(0));
}

TEST_CASE("rack: the log stays bounded and covers every octet", "[rack]") {
  Rack r(&pool);
  SackScoreboard sb;
  // 300 segments, each sent 1 ms after the last, every third resent, some SACKed.
  uint64_t now = t0;
  for (uint32_t i = 0; i < 300; ++i, now += ms) {
    r.on_sent(seg(i), seg(i + 1), now, sb);
    if (i % 3 == 2) r.on_resent(seg(i - 1), seg(i), now + 100 * us, sb);
    if (i % 7 == 6) {
      SackBlock b{seg(i - 3), seg(i - 2)};
      sb.update(&b, 1, base, seg(i + 1));
    }
    REQUIRE(r.runs() <= Rack::max_runs);
    REQUIRE(r.start() == seg(0));
    REQUIRE(r.end() == seg(i + 1));
    for (size_t k = 1; k < r.runs(); ++k) REQUIRE(r.run(k).start == r.run(k - 1).end);
  }
  // Merged runs keep both ends of their send times.
  for (size_t k = 0; k < r.runs(); ++k) CHECK(int32_t(r.run(k).last_us - r.run(k).first_us) >= 0);
  // Nothing is lost yet, so all of it is in flight but the SACKed octets.
  CHECK(r.pipe(sb) == seg(300) - seg(0) - sb.sacked_bytes());
}

// ===== RACK on ACKs =====

TEST_CASE("rack: loss after RTT + reordering window; the timer says when", "[rack]") {
  Rack r(&pool);
  SackScoreboard sb;
  send(r, sb, 0, 4, t0);
  send(r, sb, 4, 5, t0 + 1 * ms);
  // At 10 ms segment 1 (of the first burst) is SACKed: RACK's segment, RTT 10 ms.
  ack(r, sb, seg(0), seg(0), seg(5), {{seg(1), seg(2)}}, t0 + 10 * ms);
  CHECK(r.valid());
  CHECK(r.rtt_ns() == 10 * ms);
  CHECK(r.min_rtt_ns() == 10 * ms);
  CHECK(r.end_seq() == seg(2));
  // Segment 0 went before it (same burst, lower sequence); segments 2-4 did not.
  // Window: a quarter of the min RTT (one SACKed segment, no recovery).
  CHECK(r.reo_wnd_ns(sb, 10 * ms, false, mss) == 2500 * us);
  uint64_t timeout = r.detect_loss(sb, t0 + 10 * ms, 10 * ms, false, mss);
  CHECK(timeout == 2500 * us);
  CHECK_FALSE(r.has_lost(sb));
  CHECK(r.detect_loss(sb, t0 + 12 * ms, 10 * ms, false, mss) == 500 * us);
  CHECK(r.detect_loss(sb, t0 + 12500 * us, 10 * ms, false, mss) == 0);
  CHECK(r.has_lost(sb));
  CHECK(runs_of(r) == std::vector<RunV>{{seg(0), seg(2), L}, {seg(2), seg(4), 0}, {seg(4), seg(5), 0}});
  SackBlock l = r.next_lost(sb, mss);
  CHECK(l.left == seg(0));
  CHECK(l.right == seg(1));
  // Lost octets are out of the pipe: segments 2-4 only.
  CHECK(r.pipe(sb) == 3 * mss);
  // In recovery without reordering seen the window is 0: at once.
  r.on_resent(seg(0), seg(1), t0 + 13 * ms, sb);
  CHECK(r.pipe(sb) == 4 * mss);
  ack(r, sb, seg(0), seg(0), seg(5), {{seg(1), seg(2)}, {seg(4), seg(5)}}, t0 + 14 * ms);
  CHECK(r.reo_wnd_ns(sb, 10 * ms, true, mss) == 0);
  CHECK(r.detect_loss(sb, t0 + 14 * ms, 10 * ms, true, mss) == 0);
  CHECK(runs_of(r) == std::vector<RunV>{{seg(0), seg(1), R}, {seg(1), seg(2), L}, {seg(2), seg(4), L},
                                        {seg(4), seg(5), 0}});
  CHECK(r.next_lost(sb, mss).left == seg(2));  // segment 1 is SACKed
}

TEST_CASE("rack: a lost resend is found when something sent after it arrives", "[rack]") {
  Rack r(&pool);
  SackScoreboard sb;
  send(r, sb, 0, 3, t0);
  ack(r, sb, seg(0), seg(0), seg(3), {{seg(1), seg(3)}}, t0 + 10 * ms);
  r.detect_loss(sb, t0 + 10 * ms, 10 * ms, true, mss);
  REQUIRE(r.next_lost(sb, mss).left == seg(0));
  r.on_resent(seg(0), seg(1), t0 + 10 * ms, sb);
  CHECK_FALSE(r.has_lost(sb));
  send(r, sb, 3, 4, t0 + 11 * ms);
  // Segment 3 (sent after the resend) is SACKed 10 ms later; the resend is not.
  ack(r, sb, seg(0), seg(0), seg(4), {{seg(1), seg(4)}}, t0 + 21 * ms);
  CHECK(r.detect_loss(sb, t0 + 21 * ms, 10 * ms, true, mss) == 0);
  CHECK(r.next_lost(sb, mss).left == seg(0));
}

TEST_CASE("rack: a resend ACKed sooner than the min RTT is not a sample", "[rack]") {
  Rack r(&pool);
  SackScoreboard sb;
  send(r, sb, 0, 3, t0);
  ack(r, sb, seg(0), seg(0), seg(3), {{seg(1), seg(2)}}, t0 + 10 * ms);
  r.on_resent(seg(0), seg(1), t0 + 15 * ms, sb);
  // Segment 0 cumulatively ACKed 1 ms after its resend: the original arrived late.
  ack(r, sb, seg(0), seg(2), seg(3), {}, t0 + 16 * ms);
  CHECK(r.rtt_ns() == 10 * ms);
  CHECK(r.min_rtt_ns() == 10 * ms);
}

TEST_CASE("rack: reordering seen widens the window; D-SACKs widen it more", "[rack]") {
  Rack r(&pool);
  SackScoreboard sb;
  send(r, sb, 0, 8, t0);
  ack(r, sb, seg(0), seg(0), seg(8), {{seg(2), seg(5)}}, t0 + 10 * ms);
  CHECK_FALSE(r.reordering_seen());
  CHECK(r.reo_wnd_ns(sb, 10 * ms, false, mss) == 0);  // three segments SACKed
  // Segment 1, never resent, arrives below the highest SACKed: reordering.
  ack(r, sb, seg(0), seg(0), seg(8), {{seg(1), seg(5)}}, t0 + 11 * ms);
  CHECK(r.reordering_seen());
  CHECK(r.reo_wnd_ns(sb, 10 * ms, false, mss) == 2500 * us);
  CHECK(r.reo_wnd_ns(sb, 10 * ms, true, mss) == 2500 * us);  // in recovery too
  // A D-SACK: one step per round trip.
  ack(r, sb, seg(0), seg(5), seg(8), {{seg(1), seg(2)}}, t0 + 12 * ms);
  CHECK(r.reo_wnd_mult() == 2);
  ack(r, sb, seg(5), seg(5), seg(8), {{seg(1), seg(2)}}, t0 + 13 * ms);
  CHECK(r.reo_wnd_mult() == 2);  // same round (snd.una below the round's end)
  CHECK(r.reo_wnd_ns(sb, 10 * ms, false, mss) == 5 * ms);
  CHECK(r.reo_wnd_ns(sb, 4 * ms, false, mss) == 4 * ms);  // never above SRTT
  // It decays after 16 recoveries without D-SACK.
  for (int i = 0; i < 15; ++i) r.on_recovery_exit();
  CHECK(r.reo_wnd_mult() == 2);
  r.on_recovery_exit();
  CHECK(r.reo_wnd_mult() == 1);
}

TEST_CASE("rack: an RTO marks what was sent long enough ago, the first run always", "[rack]") {
  Rack r(&pool);
  SackScoreboard sb;
  send(r, sb, 0, 2, t0);
  send(r, sb, 2, 4, t0 + 300 * ms);
  // No delivery yet: RACK has no RTT, everything is lost.
  Rack fresh(&pool);
  send(fresh, sb, 0, 2, t0);
  send(fresh, sb, 2, 4, t0 + 300 * ms);
  fresh.mark_lost_on_rto(sb, t0 + 301 * ms, 0);
  CHECK(runs_of(fresh) == std::vector<RunV>{{seg(0), seg(2), L}, {seg(2), seg(4), L}});
  // With an RTT of 10 ms, the run sent 1 ms ago is not (yet).
  ack(r, sb, seg(0), seg(0), seg(4), {{seg(1), seg(2)}}, t0 + 10 * ms);
  r.mark_lost_on_rto(sb, t0 + 301 * ms, 10 * ms);
  CHECK(runs_of(r) == std::vector<RunV>{{seg(0), seg(2), L}, {seg(2), seg(4), 0}});
  // The resend skips SACKed octets.
  CHECK(r.next_lost(sb, mss).left == seg(0));
  r.on_resent(seg(0), seg(1), t0 + 302 * ms, sb);
  CHECK_FALSE(r.has_lost(sb));  // segment 1 is SACKed: nothing else lost
}

TEST_CASE("rack: IsLost below an edge marks only what was never resent", "[rack]") {
  Rack r(&pool);
  SackScoreboard sb;
  send(r, sb, 0, 8, t0);
  for (uint32_t i : {2u, 4u, 6u}) {
    SackBlock b{seg(i), seg(i + 1)};
    sb.update(&b, 1, base, seg(8));
  }
  // Holes 0-1, 3, 5, 7: three SACKed ranges lie above 0-1 only.
  CHECK(Rack::is_lost_edge(sb, base, seg(8), mss) == seg(2));
  r.on_resent(seg(0), seg(1), t0 + 1 * ms, sb);
  r.mark_lost_below(seg(2), sb);
  CHECK(runs_of(r) == std::vector<RunV>{{seg(0), seg(1), R}, {seg(1), seg(2), L}, {seg(2), seg(8), 0}});
  // The tail probe resends the highest unSACKed segment, never a SACKed one.
  SackBlock t = r.last_unsacked(sb, mss);
  CHECK(t.left == seg(7));
  CHECK(t.right == seg(8));
  SackBlock b{seg(7), seg(8)};
  sb.update(&b, 1, base, seg(8));
  t = r.last_unsacked(sb, mss);
  CHECK(t.left == seg(5));
  CHECK(t.right == seg(6));
}

// ===== the log's storage: inline runs, a log lent by the pool =====

TEST_CASE("rack: a log is borrowed beyond the inline runs and returned when all is ACKed", "[rack]") {
  RackLogPool one(1);
  SackScoreboard sb;
  Rack r(&one);
  // Bursts 1 ms apart (no RTT known: no coalescing), one run each.
  constexpr uint32_t k = Rack::inline_runs;
  for (uint32_t i = 0; i < k; ++i) r.on_sent(seg(i), seg(i + 1), t0 + i * ms, sb);
  CHECK(r.runs() == k);
  CHECK_FALSE(r.has_log());
  CHECK(one.available() == 1);
  r.on_sent(seg(k), seg(k + 1), t0 + k * ms, sb);
  CHECK(r.has_log());
  CHECK(r.capacity() == Rack::max_runs);
  CHECK(one.available() == 0);
  std::vector<RunV> want;
  for (uint32_t i = 0; i <= k; ++i) want.push_back({seg(i), seg(i + 1), 0});
  CHECK(runs_of(r) == want);  // nothing merged
  // A partial ACK keeps it; the ACK of everything returns it.
  ack(r, sb, seg(0), seg(2), seg(k + 1), {}, t0 + (k + 3) * ms);
  CHECK(r.has_log());
  ack(r, sb, seg(2), seg(k + 1), seg(k + 1), {}, t0 + (k + 4) * ms);
  CHECK(r.empty());
  CHECK_FALSE(r.has_log());
  CHECK(r.capacity() == Rack::inline_runs);
  CHECK(one.available() == 1);
  CHECK(one.exhausted() == 0);
  // RACK's state outlives the log: the min RTT (of the last segment, 4 ms) is still known.
  CHECK(r.min_rtt_ns() == 4 * ms);
  // clear() and the destructor return a log too.
  for (uint32_t i = k + 1; i < 2 * k + 2; ++i) r.on_sent(seg(i), seg(i + 1), t0 + 10 * i * ms, sb);
  CHECK(one.available() == 0);
  r.clear();
  CHECK(one.available() == 1);
  {
    Rack q(&one);
    for (uint32_t i = 0; i <= k; ++i) q.on_sent(seg(i), seg(i + 1), t0 + i * ms, sb);
    CHECK(one.available() == 0);
  }
  CHECK(one.available() == 1);
}

TEST_CASE("rack: with the pool empty the inline runs still find losses, later at worst", "[rack]") {
  RackLogPool none(0);
  SackScoreboard sb;
  Rack r(&none);
  // 12 bursts 1 ms apart merge into the inline runs; every octet stays covered.
  constexpr uint32_t n = 12;
  for (uint32_t i = 0; i < n; ++i) r.on_sent(seg(i), seg(i + 1), t0 + i * ms, sb);
  CHECK_FALSE(r.has_log());
  CHECK(r.runs() == Rack::inline_runs);
  CHECK(r.start() == seg(0));
  CHECK(r.end() == seg(n));
  for (size_t k = 1; k < r.runs(); ++k) CHECK(r.run(k).start == r.run(k - 1).end);
  CHECK(none.exhausted() == 1);  // once per episode, however often it asks
  // Segments 0, 3, 6 and 9 are lost; the rest arrive 20 ms after they went. Every ACK
  // delivers what was resent 20 ms before. All four are resent, each once, without an
  // RTO, and nothing the peer SACKed is.
  const std::vector<uint32_t> lost{0, 3, 6, 9};
  auto delivered = [&](uint32_t i) { return std::find(lost.begin(), lost.end(), i) == lost.end(); };
  std::vector<SackBlock> blocks;
  for (uint32_t i = 0; i < n; ++i)
    if (delivered(i)) blocks.push_back({seg(i), seg(i + 1)});
  for (auto& b : blocks) sb.update(&b, 1, base, seg(n));
  std::vector<uint32_t> resent, arrived;
  uint32_t una = seg(0);
  uint64_t now = t0 + (n + 20) * ms;
  Rack::Ack a;
  a.una_before = una;
  a.una_after = una;
  a.snd_nxt = seg(n);
  a.blocks = blocks.data();
  a.n = 3;  // the highest blocks, as a receiver reports them
  a.blocks = blocks.data() + blocks.size() - 3;
  a.now_ns = now;
  r.on_ack(a, SackScoreboard{});
  for (int round = 0; round < 8 && una != seg(n); ++round) {
    r.detect_loss(sb, now, 20 * ms, true, mss);
    std::vector<uint32_t> now_sent;
    for (SackBlock l = r.next_lost(sb, mss); l.left != l.right; l = r.next_lost(sb, mss)) {
      now_sent.push_back((l.left - base) / mss);
      r.on_resent(l.left, l.right, now, sb);
      REQUIRE(r.runs() <= Rack::inline_runs);
    }
    resent.insert(resent.end(), now_sent.begin(), now_sent.end());
    now += 20 * ms;
    if (now_sent.empty()) continue;
    // The resends arrive: the cumulative ACK moves past every hole they fill.
    SackScoreboard before = sb;
    for (uint32_t i : now_sent) arrived.push_back(i);
    uint32_t new_una = una;
    while (new_una != seg(n) && (delivered((new_una - base) / mss) ||
                                 std::find(arrived.begin(), arrived.end(), (new_una - base) / mss) !=
                                     arrived.end()))
      new_una += mss;
    for (uint32_t i : now_sent) {
      SackBlock b{seg(i), seg(i + 1)};
      sb.update(&b, 1, new_una, seg(n));
    }
    Rack::Ack d;
    d.una_before = una;
    d.una_after = new_una;
    d.snd_nxt = seg(n);
    std::vector<SackBlock> nb;
    for (uint32_t i : now_sent)
      if (seq_gt(seg(i), new_una)) nb.push_back({seg(i), seg(i + 1)});
    d.blocks = nb.data();
    d.n = nb.size();
    d.now_ns = now;
    r.on_ack(d, before);
    sb.advance(new_una);
    r.advance(new_una);
    una = new_una;
  }
  std::sort(resent.begin(), resent.end());
  CHECK(resent == lost);
  CHECK(una == seg(n));
  CHECK(r.empty());
  // Everything ACKed: the episode ends; the next one that needs a log is counted again.
  for (uint32_t i = n; i < n + Rack::inline_runs + 1; ++i)
    r.on_sent(seg(i), seg(i + 1), now + 2 * i * ms, sb);
  CHECK(none.exhausted() == 2);
}
