// SPDX-License-Identifier: BSD-3-Clause
// The sender's SACK scoreboard: RFC 2018 block validation, RFC 2883 D-SACK, RFC 6675
// IsLost / SetPipe / NextSeg (1). Sequence numbers start just below 2^32 so every
// test crosses the wrap.
#include <catch2/catch.hpp>

#include <random>
#include <vector>

#include "tcp/sack_scoreboard.hpp"
#include "tcp/seq.hpp"

using keel::tcp::SackBlock;
using keel::tcp::SackScoreboard;

namespace {

constexpr uint32_t base = 0xfffff000u;  // snd.una; 4096 octets below the wrap
constexpr uint32_t mss = 1000;

/// The i-th MSS-sized segment's first octet.
uint32_t seg(uint32_t i) { return base + i * mss; }

bool update1(SackScoreboard& sb, uint32_t l, uint32_t r, uint32_t una, uint32_t nxt) {
  SackBlock b{l, r};
  return sb.update(&b, 1, una, nxt);
}

std::vector<std::pair<uint32_t, uint32_t>> ranges_of(const SackScoreboard& sb) {
  std::vector<std::pair<uint32_t, uint32_t>> v;
  for (size_t i = 0; i < sb.ranges(); ++i) v.emplace_back(sb.range(i).left, sb.range(i).right);
  return v;
}

using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;

}  // namespace

// ===== update: recording, merging, validation =====

TEST_CASE("sack: blocks are recorded sorted and merged across the wrap", "[sack]") {
  SackScoreboard sb;
  const uint32_t nxt = seg(10);
  CHECK(sb.empty());
  CHECK_FALSE(update1(sb, seg(6), seg(7), base, nxt));
  CHECK_FALSE(update1(sb, seg(2), seg(3), base, nxt));  // [0xfffff7d0, 0xfffffbb8): below the wrap
  CHECK_FALSE(update1(sb, seg(4), seg(5), base, nxt));  // [0xffffffa0, 0x388): across it
  CHECK(ranges_of(sb) == Ranges{{seg(2), seg(3)}, {seg(4), seg(5)}, {seg(6), seg(7)}});
  CHECK(sb.sacked_bytes() == 3 * mss);
  CHECK(sb.highest_sacked() == seg(7));

  // Adjacent on both sides: the three become one.
  SackBlock blocks[2] = {{seg(3), seg(4)}, {seg(5), seg(6)}};
  CHECK_FALSE(sb.update(blocks, 2, base, nxt));
  CHECK(ranges_of(sb) == Ranges{{seg(2), seg(7)}});
  CHECK(sb.sacked_bytes() == 5 * mss);

  // Overlapping on the left, extending right.
  CHECK_FALSE(update1(sb, seg(6) + 10, seg(8), base, nxt));
  CHECK(ranges_of(sb) == Ranges{{seg(2), seg(8)}});
  CHECK(sb.sacked_bytes() == 6 * mss);
  // Contained: nothing changes.
  update1(sb, seg(3), seg(4), base, nxt);
  CHECK(ranges_of(sb) == Ranges{{seg(2), seg(8)}});
  CHECK(sb.sacked_bytes() == 6 * mss);

  CHECK(sb.is_sacked(seg(2)));
  CHECK(sb.is_sacked(0));  // the wrap point lies inside
  CHECK(sb.is_sacked(seg(8) - 1));
  CHECK_FALSE(sb.is_sacked(seg(8)));
  CHECK_FALSE(sb.is_sacked(seg(2) - 1));

  sb.clear();
  CHECK(sb.empty());
  CHECK(sb.sacked_bytes() == 0);
  CHECK(sb.ranges() == 0);
}

TEST_CASE("sack: bogus blocks are ignored", "[sack]") {
  SackScoreboard sb;
  const uint32_t nxt = seg(5);
  CHECK_FALSE(update1(sb, seg(2), seg(1), base, nxt));      // inverted
  CHECK_FALSE(update1(sb, seg(2), seg(2), base, nxt));      // empty
  CHECK_FALSE(update1(sb, base, seg(1), base, nxt));        // starts at snd.una
  CHECK_FALSE(update1(sb, seg(4), seg(5) + 1, base, nxt));  // beyond snd.nxt
  CHECK_FALSE(update1(sb, seg(6), seg(7), base, nxt));      // wholly beyond snd.nxt
  CHECK_FALSE(update1(sb, base + 0x80000000u, base + 0x80000010u, base, nxt));  // far away
  CHECK(sb.empty());
  // A valid block next to bogus ones in the same option is still taken.
  SackBlock blocks[3] = {{seg(3), seg(2)}, {seg(4), seg(5)}, {seg(9), seg(10)}};
  CHECK_FALSE(sb.update(blocks, 3, base, nxt));
  CHECK(ranges_of(sb) == Ranges{{seg(4), seg(5)}});
  // Right edge exactly snd.nxt is fine.
  CHECK(sb.highest_sacked() == nxt);
  CHECK_FALSE(sb.update(blocks, 0, base, nxt));
}

// ===== RFC 2883 D-SACK =====

TEST_CASE("sack: D-SACK detection (RFC 2883 4)", "[sack]") {
  const uint32_t una = seg(2), nxt = seg(8);

  SECTION("first block below the cumulative ACK") {
    SackScoreboard sb;
    SackBlock blocks[2] = {{seg(1), seg(2)}, {seg(4), seg(5)}};  // 4.1.1: dup of acked data
    CHECK(sb.update(blocks, 2, una, nxt));
    CHECK(ranges_of(sb) == Ranges{{seg(4), seg(5)}});  // the D-SACK is not recorded
    CHECK(update1(sb, seg(0), seg(0) + 10, una, nxt));  // a lone D-SACK
    CHECK(ranges_of(sb) == Ranges{{seg(4), seg(5)}});
  }
  SECTION("first block within the second") {
    SackScoreboard sb;
    SackBlock blocks[2] = {{seg(5), seg(6)}, {seg(4), seg(7)}};  // 4.1.2: dup of SACKed data
    CHECK(sb.update(blocks, 2, una, nxt));
    CHECK(ranges_of(sb) == Ranges{{seg(4), seg(7)}});
    SackBlock same[2] = {{seg(4), seg(7)}, {seg(4), seg(7)}};  // equal counts as within
    CHECK(sb.update(same, 2, una, nxt));
  }
  SECTION("ordinary blocks are not D-SACKs") {
    SackScoreboard sb;
    SackBlock blocks[2] = {{seg(5), seg(6)}, {seg(3), seg(4)}};
    CHECK_FALSE(sb.update(blocks, 2, una, nxt));
    SackBlock overlapping[2] = {{seg(3), seg(6)}, {seg(4), seg(7)}};  // overlaps, not within
    CHECK_FALSE(sb.update(overlapping, 2, una, nxt));
    CHECK(ranges_of(sb) == Ranges{{seg(3), seg(7)}});
  }
  SECTION("only the first block may be a D-SACK") {
    SackScoreboard sb;
    SackBlock blocks[2] = {{seg(5), seg(6)}, {seg(0), seg(1)}};
    CHECK_FALSE(sb.update(blocks, 2, una, nxt));
    CHECK(ranges_of(sb) == Ranges{{seg(5), seg(6)}});
  }
  SECTION("a malformed first block is no D-SACK") {
    SackScoreboard sb;
    CHECK_FALSE(update1(sb, seg(1), seg(0), una, nxt));  // inverted
    CHECK_FALSE(update1(sb, seg(1), seg(9), una, nxt));  // runs beyond snd.nxt
  }
}

// ===== advance =====

TEST_CASE("sack: advance forgets what the cumulative ACK covers", "[sack]") {
  SackScoreboard sb;
  const uint32_t nxt = seg(10);
  SackBlock blocks[3] = {{seg(2), seg(3)}, {seg(4), seg(6)}, {seg(8), seg(9)}};
  sb.update(blocks, 3, base, nxt);
  REQUIRE(sb.ranges() == 3);

  sb.advance(seg(1));  // below everything
  CHECK(sb.ranges() == 3);
  CHECK(sb.sacked_bytes() == 4 * mss);

  sb.advance(seg(3));  // exactly the first range's right edge
  CHECK(ranges_of(sb) == Ranges{{seg(4), seg(6)}, {seg(8), seg(9)}});
  CHECK(sb.sacked_bytes() == 3 * mss);

  sb.advance(seg(5));  // inside a range: the part above stays
  CHECK(ranges_of(sb) == Ranges{{seg(5), seg(6)}, {seg(8), seg(9)}});
  CHECK(sb.sacked_bytes() == 2 * mss);

  sb.advance(seg(10));
  CHECK(sb.empty());
  CHECK(sb.sacked_bytes() == 0);
}

// ===== RFC 6675 IsLost =====

TEST_CASE("sack: IsLost counts DupThresh ranges or (DupThresh-1)*SMSS octets above", "[sack]") {
  SackScoreboard sb;
  const uint32_t nxt = seg(10);

  SECTION("two full segments SACKed above are not enough") {
    update1(sb, seg(1), seg(3), base, nxt);
    CHECK_FALSE(sb.is_lost(base, mss));  // 2 * SMSS is not more than 2 * SMSS
  }
  SECTION("one octet more is") {
    update1(sb, seg(1), seg(3) + 1, base, nxt);
    CHECK(sb.is_lost(base, mss));
    CHECK(sb.is_lost(seg(1) - 1, mss));
    CHECK_FALSE(sb.is_lost(seg(1), mss));      // SACKed octets are never lost
    CHECK_FALSE(sb.is_lost(seg(3) + 1, mss));  // nothing above
  }
  SECTION("three discontiguous ranges, however small") {
    SackBlock blocks[3] = {{seg(1), seg(1) + 1}, {seg(2), seg(2) + 1}, {seg(3), seg(3) + 1}};
    sb.update(blocks, 3, base, nxt);
    CHECK(sb.is_lost(base, mss));
    CHECK(sb.is_lost(seg(1) - 1, mss));
    CHECK_FALSE(sb.is_lost(seg(1) + 1, mss));  // only two ranges above
    CHECK_FALSE(sb.is_lost(seg(3) + 1, mss));
  }
  SECTION("the classic three-dupack pattern: segment 0 lost, 1..3 SACKed") {
    update1(sb, seg(1), seg(2), base, nxt);
    CHECK_FALSE(sb.is_lost(base, mss));
    update1(sb, seg(2), seg(3), base, nxt);
    CHECK_FALSE(sb.is_lost(base, mss));
    update1(sb, seg(3), seg(4), base, nxt);
    CHECK(sb.is_lost(base, mss));
    CHECK(sb.ranges() == 1);
  }
}

// ===== RFC 6675 SetPipe =====

TEST_CASE("sack: pipe per RFC 6675 SetPipe", "[sack]") {
  SackScoreboard sb;
  const uint32_t nxt = seg(10);

  SECTION("no SACK: everything outstanding is in flight") {
    CHECK(sb.pipe(base, nxt, base, mss) == 10 * mss);
    CHECK(sb.pipe(base, base, base, mss) == 0);
  }
  SECTION("segment 0 lost, 1..3 SACKed, 4..9 outstanding") {
    update1(sb, seg(1), seg(4), base, nxt);
    // Segment 0 is lost and not retransmitted: it is not in the pipe.
    CHECK(sb.pipe(base, nxt, base, mss) == 6 * mss);
    // Retransmitted (HighRxt covers it): counted once, as the retransmission.
    CHECK(sb.pipe(base, nxt, seg(1), mss) == 7 * mss);
    // Half of it retransmitted.
    CHECK(sb.pipe(base, nxt, base + 500, mss) == 6 * mss + 500);
  }
  SECTION("a retransmitted octet that is not lost counts twice") {
    update1(sb, seg(1), seg(2), base, nxt);  // only one SACKed segment: nothing lost
    CHECK(sb.pipe(base, nxt, base, mss) == 9 * mss);
    CHECK(sb.pipe(base, nxt, seg(1), mss) == 10 * mss);
  }
  SECTION("several holes, some lost") {
    // SACKed: 2, 4, 6. Holes: 0-1 (3 ranges above: lost), 3 (2 ranges, 2 SMSS: not
    // lost), 5 (1 range), 7-9 (none).
    SackBlock blocks[3] = {{seg(2), seg(3)}, {seg(4), seg(5)}, {seg(6), seg(7)}};
    sb.update(blocks, 3, base, nxt);
    CHECK(sb.pipe(base, nxt, base, mss) == 5 * mss);
    CHECK(sb.pipe(base, nxt, seg(2), mss) == 7 * mss);
    // HighRxt reaching into a non-lost hole: those octets count twice.
    CHECK(sb.pipe(base, nxt, seg(4), mss) == 8 * mss);
    // HighRxt below snd.una (stale) counts nothing extra.
    CHECK(sb.pipe(base, nxt, base - 5000, mss) == 5 * mss);
  }
}

// ===== RFC 6675 NextSeg (1) =====

TEST_CASE("sack: next_lost walks the lost holes from HighRxt", "[sack]") {
  SackScoreboard sb;
  const uint32_t nxt = seg(12);
  // SACKed: 3..4, 6, 8. Holes: 0-2 (lost), 5 (2 ranges, 2 SMSS above: not lost),
  // 7 (not lost), 9-11 (above the highest SACK).
  SackBlock blocks[3] = {{seg(3), seg(5)}, {seg(6), seg(7)}, {seg(8), seg(9)}};
  sb.update(blocks, 3, base, nxt);

  SackBlock b = sb.next_lost(base, nxt, mss);
  CHECK(b.left == base);
  CHECK(b.right == seg(1));
  b = sb.next_lost(seg(1), nxt, mss);
  CHECK(b.left == seg(1));
  CHECK(b.right == seg(2));
  // Never crosses into the SACKed range.
  b = sb.next_lost(seg(2) + 400, nxt, mss);
  CHECK(b.left == seg(2) + 400);
  CHECK(b.right == seg(3));
  // From inside a SACKed range: the hole after it is not lost.
  b = sb.next_lost(seg(3) + 10, nxt, mss);
  CHECK(b.left == b.right);
  b = sb.next_lost(seg(5), nxt, mss);
  CHECK(b.left == b.right);
  // Above the highest SACKed octet: rule (1.b) excludes it.
  b = sb.next_lost(seg(9), nxt, mss);
  CHECK(b.left == b.right);

  // One more SACKed range makes hole 5 lost (3 ranges above it).
  update1(sb, seg(10), seg(11), base, nxt);
  b = sb.next_lost(seg(3), nxt, mss);
  CHECK(b.left == seg(5));
  CHECK(b.right == seg(6));
  // A small MSS splits a hole.
  b = sb.next_lost(base, nxt, 300);
  CHECK(b.left == base);
  CHECK(b.right == base + 300);

  SackScoreboard none;
  b = none.next_lost(base, nxt, mss);
  CHECK(b.left == b.right);
}

// ===== Bounded ranges =====

TEST_CASE("sack: at most 32 ranges, the highest dropped when full", "[sack]") {
  SackScoreboard sb;
  const uint32_t una = 0xffffff00u;
  const uint32_t nxt = una + 10000;
  auto lo = [&](uint32_t i) { return una + 10 + 20 * i; };  // range i: [lo, lo + 10)
  for (uint32_t i = 0; i < 40; ++i) update1(sb, lo(i), lo(i) + 10, una, nxt);
  REQUIRE(sb.ranges() == SackScoreboard::max_ranges);
  CHECK(sb.range(0).left == lo(0));
  CHECK(sb.highest_sacked() == lo(31) + 10);  // ranges 32..39 did not fit
  CHECK(sb.sacked_bytes() == 32 * 10);

  // A new lower range pushes out the highest.
  update1(sb, una + 2, una + 5, una, nxt);
  CHECK(sb.ranges() == SackScoreboard::max_ranges);
  CHECK(sb.range(0).left == una + 2);
  CHECK(sb.highest_sacked() == lo(30) + 10);
  CHECK(sb.sacked_bytes() == 31 * 10 + 3);

  // Merging needs no room: bridging ranges 0 and 1 frees one.
  update1(sb, lo(0), lo(1) + 10, una, nxt);
  CHECK(sb.ranges() == SackScoreboard::max_ranges - 1);
  CHECK(sb.sacked_bytes() == 30 * 10 + 3 + 20);
  for (size_t i = 1; i < sb.ranges(); ++i)
    CHECK(keel::tcp::seq_lt(sb.range(i - 1).right, sb.range(i).left));
}

// ===== Against a per-octet model =====

TEST_CASE("sack: random blocks match a per-octet model", "[sack]") {
  std::mt19937 rng(6675);
  const uint32_t window = 120;  // small enough that 32 ranges always suffice
  const uint32_t small_mss = 10;
  for (int round = 0; round < 200; ++round) {
    SackScoreboard sb;
    uint32_t una = 0xffffffffu - uint32_t(rng() % 100);
    const uint32_t nxt = una + window;
    std::vector<bool> sacked(window, false);  // octet una0 + i
    const uint32_t una0 = una;
    for (int step = 0; step < 30; ++step) {
      if (rng() % 6 == 0) {
        uint32_t to = una + rng() % 20;
        if (keel::tcp::seq_gt(to, nxt)) to = nxt;
        sb.advance(to);
        una = to;
      } else {
        uint32_t l = una + 1 + rng() % (window - 4);
        uint32_t r = l + 3 + rng() % 8;  // at least 3 long: at most 30 ranges in 120
        if (keel::tcp::seq_gt(r, nxt)) r = nxt;
        if (keel::tcp::seq_geq(l, r) || keel::tcp::seq_leq(l, una)) continue;
        CHECK_FALSE(update1(sb, l, r, una, nxt));
        for (uint32_t s = l; s != r; ++s) sacked[s - una0] = true;
      }
      // Model: SACKed octets at or above una, and the runs they form.
      Ranges model;
      uint32_t total = 0;
      for (uint32_t s = una; s != nxt; ++s) {
        if (!sacked[s - una0]) continue;
        ++total;
        if (!model.empty() && model.back().second == s) ++model.back().second;
        else model.emplace_back(s, s + 1);
      }
      REQUIRE(ranges_of(sb) == model);
      REQUIRE(sb.sacked_bytes() == total);

      // IsLost and SetPipe per octet, straight from RFC 6675's definitions.
      uint32_t high_rxt = una + rng() % (nxt - una + 1);
      uint64_t pipe = 0;
      for (uint32_t s = una; s != nxt; ++s) {
        uint32_t above_octets = 0, above_ranges = 0;
        for (auto& [l, r] : model)
          if (keel::tcp::seq_gt(l, s)) {
            ++above_ranges;
            above_octets += r - l;
          }
        bool is_sacked = sacked[s - una0];
        bool lost = !is_sacked && (above_ranges >= 3 || above_octets > 2 * small_mss);
        REQUIRE(sb.is_sacked(s) == is_sacked);
        REQUIRE(sb.is_lost(s, small_mss) == lost);
        if (is_sacked) continue;
        if (!lost) ++pipe;
        if (keel::tcp::seq_lt(s, high_rxt)) ++pipe;
      }
      REQUIRE(sb.pipe(una, nxt, high_rxt, small_mss) == pipe);

      // NextSeg (1) from high_rxt: the first unSACKed lost octet at or above it,
      // below the highest SACKed octet.
      SackBlock nl = sb.next_lost(high_rxt, nxt, small_mss);
      uint32_t expect = high_rxt;
      bool found = false;
      if (!model.empty()) {
        for (; keel::tcp::seq_lt(expect, model.back().second); ++expect)
          if (!sacked[expect - una0] && sb.is_lost(expect, small_mss)) {
            found = true;
            break;
          }
      }
      if (!found) {
        REQUIRE(nl.left == nl.right);
      } else {
        REQUIRE(nl.left == expect);
        uint32_t len = nl.right - nl.left;
        REQUIRE(len >= 1);
        REQUIRE(len <= small_mss);
        for (uint32_t s = nl.left; s != nl.right; ++s) REQUIRE_FALSE(sacked[s - una0]);
        // Stops only at the MSS or at the next SACKed octet.
        REQUIRE((len == small_mss || sacked[nl.right - una0]));
      }
    }
  }
}

// ===== a TCB's scoreboard, lent by the pool =====

TEST_CASE("sack pool: a scoreboard is borrowed for SACKed data and returned when ACKed", "[sack]") {
  using keel::tcp::PooledSackScoreboard;
  using keel::tcp::SackScoreboardPool;
  SackScoreboardPool pool(1);
  PooledSackScoreboard a(&pool), b(&pool);
  const uint32_t nxt = base + 10 * mss;
  CHECK_FALSE(a.has_board());
  CHECK(a.empty());
  // A D-SACK or a bogus block records nothing: no scoreboard taken.
  SackBlock dsack{base - mss, base};
  CHECK(a.update(&dsack, 1, base, nxt));
  SackBlock bogus{base + 20 * mss, base + 21 * mss};
  CHECK_FALSE(a.update(&bogus, 1, base, nxt));
  CHECK_FALSE(a.has_board());
  CHECK(pool.available() == 1);
  // A real block: borrowed; reads through the SackScoreboard view.
  SackBlock blk[2] = {{base + 2 * mss, base + 3 * mss}, {base + 5 * mss, base + 6 * mss}};
  CHECK_FALSE(a.update(blk, 2, base, nxt));
  CHECK(a.has_board());
  CHECK(pool.available() == 0);
  const SackScoreboard& view = a;
  CHECK(view.ranges() == 2);
  SackScoreboard snapshot = a;  // a copy is a plain scoreboard of its own
  CHECK(snapshot.sacked_bytes() == 2 * mss);
  // The pool is empty: b records nothing (counted), answers D-SACKs all the same.
  CHECK_FALSE(b.update(blk, 1, base, nxt));
  CHECK_FALSE(b.has_board());
  CHECK(b.empty());
  CHECK(pool.exhausted() == 1);
  SackBlock dup2[2] = {{base + 2 * mss, base + 3 * mss}, {base + 2 * mss, base + 4 * mss}};
  CHECK(b.update(dup2, 2, base, nxt));
  CHECK(pool.exhausted() == 2);
  b.advance(base + mss);  // harmless without one
  // The cumulative ACK passes the first range: kept; passes both: returned.
  a.advance(base + 4 * mss);
  CHECK(a.has_board());
  CHECK(a.sacked_bytes() == mss);
  a.advance(base + 6 * mss);
  CHECK_FALSE(a.has_board());
  CHECK(a.empty());
  CHECK(pool.available() == 1);
  // Now b gets it; clear() and the destructor return it.
  CHECK_FALSE(b.update(blk + 1, 1, base, nxt));
  CHECK(b.has_board());
  b.clear();
  CHECK_FALSE(b.has_board());
  CHECK(pool.available() == 1);
  {
    PooledSackScoreboard c(&pool);
    c.update(blk, 1, base, nxt);
    CHECK(pool.available() == 0);
  }
  CHECK(pool.available() == 1);
  CHECK(snapshot.ranges() == 2);  // untouched by all of it
}
