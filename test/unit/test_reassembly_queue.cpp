// SPDX-License-Identifier: BSD-3-Clause
// The receiver's out-of-order queue: zero-copy reassembly, overlap policy (held data
// wins), limits, FIN, and the RFC 2018 SACK block order. Sequence numbers start just
// below 2^32 so every test crosses the wrap.
#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <vector>

#include "tcp/reassembly_queue.hpp"
#include "tcp/seq.hpp"
#include "test_support.hpp"

using keel::tcp::ReassemblyQueue;
using keel::tcp::SackBlock;
using keel::test::bytes_of;
using keel::test::make_mbuf;
using keel::test::PoolBaseline;
using keel::test::pool_in_use;

namespace {

constexpr uint32_t base = 0xffffff00u;  // rcv.nxt at the start; the wrap is 256 octets on

/// The stream's octet at sequence number s (a function of s alone, so any piece of
/// the stream can be checked wherever it came from).
uint8_t octet(uint32_t s) { return uint8_t((s * 2654435761u) >> 24); }

std::vector<uint8_t> stream(uint32_t seq, uint32_t len) {
  std::vector<uint8_t> v(len);
  for (uint32_t i = 0; i < len; ++i) v[i] = octet(seq + i);
  return v;
}

/// A segment carrying the stream's octets [seq, seq + len), split into mbuf
/// segments of the given lengths (the last takes the rest).
rte_mbuf* segment(uint32_t seq, uint32_t len, std::vector<uint32_t> splits = {}) {
  rte_mbuf* head = nullptr;
  uint32_t off = 0;
  size_t k = 0;
  while (off < len) {
    uint32_t n = k < splits.size() ? std::min(splits[k++], len - off) : len - off;
    rte_mbuf* m = make_mbuf(stream(seq + off, n));
    if (head == nullptr) head = m;
    else REQUIRE(rte_pktmbuf_chain(head, m) == 0);
    off += n;
  }
  return head;
}

/// Pops whatever is contiguous, checks it is the stream from rcv_nxt on, frees it.
/// Returns the octets popped.
uint32_t pop_check(ReassemblyQueue& q, uint32_t& rcv_nxt, bool& fin) {
  uint32_t from = rcv_nxt;
  rte_mbuf* m = q.pop(rcv_nxt, fin);
  if (m == nullptr) return 0;
  REQUIRE(m->pkt_len == rcv_nxt - from);
  REQUIRE(rte_mbuf_check(m, 1, nullptr) == 0);  // pkt_len and nb_segs consistent
  CHECK(bytes_of(m) == stream(from, m->pkt_len));
  uint32_t n = m->pkt_len;
  rte_pktmbuf_free(m);
  return n;
}

using Blocks = std::vector<std::pair<uint32_t, uint32_t>>;

Blocks sack_of(const ReassemblyQueue& q, size_t max = 4) {
  SackBlock out[8];
  size_t n = q.sack_blocks(out, max);
  Blocks v;
  for (size_t i = 0; i < n; ++i) v.emplace_back(out[i].left, out[i].right);
  return v;
}

}  // namespace

// ===== Basic reassembly =====

TEST_CASE("tcp-reass: segments out of order come out in order across the wrap", "[tcp-reass]") {
  PoolBaseline baseline;
  ReassemblyQueue q(1 << 20, 64);
  uint32_t rcv_nxt = base;
  bool fin = true;
  CHECK(q.pop(rcv_nxt, fin) == nullptr);  // empty
  CHECK_FALSE(fin);

  // Segments 1..5 of 100 octets; segment 0 [base, base + 100) is missing.
  for (uint32_t i : {4u, 2u, 5u, 1u, 3u})
    CHECK(q.insert(base + 100 * i, segment(base + 100 * i, 100), false) == 100);
  CHECK(q.bytes() == 500);
  CHECK(q.segments() == 5);
  CHECK(q.pop(rcv_nxt, fin) == nullptr);  // the hole at rcv.nxt remains
  CHECK(rcv_nxt == base);

  rcv_nxt = base + 100;  // the TCB took segment 0 in order
  CHECK(pop_check(q, rcv_nxt, fin) == 500);
  CHECK(rcv_nxt == base + 600);
  CHECK_FALSE(fin);
  CHECK(q.empty());
  CHECK(q.bytes() == 0);
}

TEST_CASE("tcp-reass: pop frees data below rcv.nxt and trims a straddling piece", "[tcp-reass]") {
  PoolBaseline baseline;
  ReassemblyQueue q(1 << 20, 64);
  q.insert(base + 100, segment(base + 100, 100, {30, 30}), false);
  q.insert(base + 200, segment(base + 200, 100), false);
  q.insert(base + 400, segment(base + 400, 100), false);

  // The TCB took [base, base + 250) in order itself (a larger retransmission).
  uint32_t rcv_nxt = base + 250;
  bool fin = false;
  CHECK(pop_check(q, rcv_nxt, fin) == 50);
  CHECK(rcv_nxt == base + 300);
  CHECK(q.segments() == 1);
  CHECK(q.bytes() == 100);
  CHECK(q.pop(rcv_nxt, fin) == nullptr);

  // Past everything held: the stale piece is freed, nothing is returned.
  rcv_nxt = base + 600;
  CHECK(q.pop(rcv_nxt, fin) == nullptr);
  CHECK(rcv_nxt == base + 600);
  CHECK(q.empty());
}

// ===== Overlap: held data wins =====

TEST_CASE("tcp-reass: duplicates queue nothing", "[tcp-reass]") {
  PoolBaseline baseline;
  ReassemblyQueue q(1 << 20, 64);
  CHECK(q.insert(base + 100, segment(base + 100, 100), false) == 100);
  CHECK(q.insert(base + 100, segment(base + 100, 100), false) == 0);  // exact
  CHECK(q.insert(base + 120, segment(base + 120, 30), false) == 0);   // inside
  CHECK(q.insert(base + 200, segment(base + 200, 100), false) == 100);
  CHECK(q.insert(base + 150, segment(base + 150, 100, {20, 50}), false) == 0);  // spans two
  CHECK(q.bytes() == 200);
  CHECK(q.segments() == 2);
  CHECK(keel::test::pool_in_use() == baseline.start() + 2);
}

TEST_CASE("tcp-reass: a newcomer is trimmed at the front and the back", "[tcp-reass]") {
  PoolBaseline baseline;
  ReassemblyQueue q(1 << 20, 64);
  REQUIRE(q.insert(base + 100, segment(base + 100, 100), false) == 100);  // [100, 200)

  // Front overlap: [150, 250) keeps [200, 250). The leading mbuf segment [150, 200)
  // becomes empty and is freed.
  CHECK(q.insert(base + 150, segment(base + 150, 100, {50}), false) == 50);
  CHECK(keel::test::pool_in_use() == baseline.start() + 2);
  // Back overlap: [20, 120) keeps [20, 100); the trailing [110, 120) segment is freed.
  CHECK(q.insert(base + 20, segment(base + 20, 100, {60, 30}), false) == 80);
  CHECK(keel::test::pool_in_use() == baseline.start() + 4);
  CHECK(q.bytes() == 230);
  CHECK(q.segments() == 3);

  uint32_t rcv_nxt = base + 20;
  bool fin = false;
  CHECK(pop_check(q, rcv_nxt, fin) == 230);
  CHECK(rcv_nxt == base + 250);
}

TEST_CASE("tcp-reass: a newcomer covering held pieces fills every gap, zero copy",
          "[tcp-reass]") {
  PoolBaseline baseline;
  ReassemblyQueue q(1 << 20, 64);
  uint32_t rcv_nxt = base;
  bool fin = false;

  SECTION("held piece inside one mbuf segment: an indirect mbuf shares the buffer") {
    REQUIRE(q.insert(base + 100, segment(base + 100, 50), false) == 50);
    CHECK(q.insert(base + 50, segment(base + 50, 200), false) == 150);
    CHECK(q.segments() == 3);
    CHECK(q.bytes() == 200);
    CHECK(keel::test::pool_in_use() == baseline.start() + 3);  // held, newcomer, indirect
  }
  SECTION("held piece across an mbuf boundary: no allocation") {
    REQUIRE(q.insert(base + 100, segment(base + 100, 50), false) == 50);
    CHECK(q.insert(base + 50, segment(base + 50, 200, {70}), false) == 150);
    CHECK(q.segments() == 3);
    CHECK(keel::test::pool_in_use() == baseline.start() + 3);
  }
  SECTION("held piece exactly one mbuf segment: that segment is freed") {
    REQUIRE(q.insert(base + 100, segment(base + 100, 50), false) == 50);
    CHECK(q.insert(base + 50, segment(base + 50, 200, {50, 50}), false) == 150);
    CHECK(q.segments() == 3);
    CHECK(keel::test::pool_in_use() == baseline.start() + 3);
  }
  SECTION("several held pieces") {
    for (uint32_t s : {100u, 120u, 140u})
      REQUIRE(q.insert(base + s, segment(base + s, 10), false) == 10);
    CHECK(q.insert(base + 90, segment(base + 90, 70, {25}), false) == 40);
    CHECK(q.segments() == 7);
    CHECK(q.bytes() == 70);
    CHECK(sack_of(q) == Blocks{{base + 90, base + 160}});
  }
  // Whatever the section built is one block; it pops back as the original stream.
  Blocks blocks = sack_of(q);
  REQUIRE(blocks.size() == 1);
  rcv_nxt = blocks[0].first;
  CHECK(pop_check(q, rcv_nxt, fin) == blocks[0].second - blocks[0].first);
  CHECK(q.empty());
}

TEST_CASE("tcp-reass: covering newcomer pops back byte for byte", "[tcp-reass]") {
  PoolBaseline baseline;
  ReassemblyQueue q(1 << 20, 64);
  for (uint32_t s : {100u, 130u, 200u})
    REQUIRE(q.insert(base + s, segment(base + s, 20), false) == 20);
  // [60, 260) in mbuf segments of 45, 45, 45, 65: cuts inside and across segments.
  CHECK(q.insert(base + 60, segment(base + 60, 200, {45, 45, 45}), false) == 140);
  CHECK(q.bytes() == 200);
  uint32_t rcv_nxt = base + 60;
  bool fin = false;
  CHECK(pop_check(q, rcv_nxt, fin) == 200);
  CHECK(rcv_nxt == base + 260);
  CHECK(q.empty());
}

TEST_CASE("tcp-reass: an empty pool drops the rest of a newcomer that needs a cut",
          "[tcp-reass]") {
  PoolBaseline baseline;
  ReassemblyQueue q(1 << 20, 64);
  REQUIRE(q.insert(base + 100, segment(base + 100, 10), false) == 10);
  REQUIRE(q.insert(base + 200, segment(base + 200, 10), false) == 10);
  rte_mbuf* m = segment(base + 50, 200);  // [50, 250) in one mbuf segment
  std::vector<rte_mbuf*> hog;
  while (rte_mbuf* h = rte_pktmbuf_alloc(keel::test::pool())) hog.push_back(h);
  // Only [50, 100) can be queued without an indirect mbuf.
  CHECK(q.insert(base + 50, m, false) == 50);
  for (rte_mbuf* h : hog) rte_pktmbuf_free(h);
  CHECK(q.bytes() == 70);
  CHECK(sack_of(q) == Blocks{{base + 50, base + 110}, {base + 200, base + 210}});
  // The rest arrives again and fills in.
  CHECK(q.insert(base + 50, segment(base + 50, 200), false) == 130);
  uint32_t rcv_nxt = base + 50;
  bool fin = false;
  CHECK(pop_check(q, rcv_nxt, fin) == 200);
}

// ===== Limits =====

TEST_CASE("tcp-reass: byte and segment limits drop the newcomer", "[tcp-reass]") {
  PoolBaseline baseline;
  SECTION("bytes") {
    ReassemblyQueue q(300, 64);
    CHECK(q.insert(base + 100, segment(base + 100, 200), false) == 200);
    CHECK(q.insert(base + 400, segment(base + 400, 101), false) == 0);  // 301 > 300
    CHECK(q.bytes() == 200);
    CHECK(q.insert(base + 400, segment(base + 400, 100), false) == 100);  // exactly 300
    // Overlap counts only the new octets: [250, 350) adds 50 + 0 = 50 > 0 left.
    CHECK(q.insert(base + 250, segment(base + 250, 100), false) == 0);
    // A pure duplicate is fine at the limit.
    CHECK(q.insert(base + 150, segment(base + 150, 50), false) == 0);
    CHECK(q.bytes() == 300);
    CHECK(keel::test::pool_in_use() == baseline.start() + 2);
  }
  SECTION("segments") {
    ReassemblyQueue q(1 << 20, 3);
    for (uint32_t s : {100u, 200u, 300u})
      CHECK(q.insert(base + s, segment(base + s, 10), false) == 10);
    CHECK(q.insert(base + 400, segment(base + 400, 10), false) == 0);
    CHECK(q.segments() == 3);
    // Extending a held piece still takes a node: dropped.
    CHECK(q.insert(base + 105, segment(base + 105, 10), false) == 0);
    uint32_t rcv_nxt = base + 100;
    bool fin = false;
    CHECK(pop_check(q, rcv_nxt, fin) == 10);
    // A node is free again.
    CHECK(q.insert(base + 400, segment(base + 400, 10), false) == 10);
  }
  SECTION("a newcomer needing more pieces than nodes left") {
    ReassemblyQueue q(1 << 20, 4);
    for (uint32_t s : {100u, 200u}) CHECK(q.insert(base + s, segment(base + s, 10), false) == 10);
    // [50, 250) needs 3 pieces; only 2 nodes left.
    CHECK(q.insert(base + 50, segment(base + 50, 200), false) == 0);
    CHECK(q.segments() == 2);
    CHECK(q.insert(base + 50, segment(base + 50, 160), false) == 140);  // 2 pieces
    CHECK(q.segments() == 4);
  }
}

// ===== FIN =====

TEST_CASE("tcp-reass: FIN", "[tcp-reass]") {
  PoolBaseline baseline;
  ReassemblyQueue q(1 << 20, 64);
  uint32_t rcv_nxt = base;
  bool fin = false;

  SECTION("FIN at the end is reported with the data before it") {
    CHECK(q.insert(base + 300, segment(base + 300, 100), true) == 100);
    CHECK(q.insert(base + 100, segment(base + 100, 200), false) == 200);
    rcv_nxt = base + 100;
    CHECK(pop_check(q, rcv_nxt, fin) == 300);
    CHECK(fin);
    CHECK(rcv_nxt == base + 400);  // the FIN's own sequence number
    CHECK(q.empty());
  }
  SECTION("pop stops at the FIN") {
    CHECK(q.insert(base + 100, segment(base + 100, 100), true) == 100);
    rcv_nxt = base + 100;
    CHECK(pop_check(q, rcv_nxt, fin) == 100);
    CHECK(fin);
    CHECK(rcv_nxt == base + 200);
  }
  SECTION("nothing is queued at or beyond a queued FIN") {
    CHECK(q.insert(base + 100, segment(base + 100, 100), true) == 100);
    CHECK(q.insert(base + 200, segment(base + 200, 50), false) == 0);
    CHECK(q.insert(base + 300, segment(base + 300, 50), true) == 0);
    // Straddling the FIN: trimmed to it.
    CHECK(q.insert(base + 50, segment(base + 50, 200, {120}), false) == 50);
    CHECK(q.bytes() == 150);
    rcv_nxt = base + 50;
    CHECK(pop_check(q, rcv_nxt, fin) == 150);
    CHECK(fin);
    CHECK(rcv_nxt == base + 200);
  }
  SECTION("a duplicate carrying the FIN records it") {
    CHECK(q.insert(base + 100, segment(base + 100, 100), false) == 100);
    CHECK(q.insert(base + 150, segment(base + 150, 50), true) == 0);
    rcv_nxt = base + 100;
    CHECK(pop_check(q, rcv_nxt, fin) == 100);
    CHECK(fin);
  }
  SECTION("a FIN below held data is ignored") {
    CHECK(q.insert(base + 300, segment(base + 300, 100), false) == 100);
    CHECK(q.insert(base + 100, segment(base + 100, 100), true) == 100);
    CHECK(q.insert(base + 200, segment(base + 200, 100), false) == 100);
    rcv_nxt = base + 100;
    CHECK(pop_check(q, rcv_nxt, fin) == 300);
    CHECK_FALSE(fin);
  }
  SECTION("a FIN whose data the TCB already took in order") {
    CHECK(q.insert(base + 100, segment(base + 100, 100), true) == 100);
    rcv_nxt = base + 200;  // [.., 200) arrived in order without the FIN flag
    CHECK(q.pop(rcv_nxt, fin) == nullptr);
    CHECK(fin);
    CHECK(rcv_nxt == base + 200);
    CHECK(q.empty());
  }
}

// ===== SACK blocks (RFC 2018 4) =====

TEST_CASE("tcp-reass: SACK blocks, most recent first", "[tcp-reass]") {
  PoolBaseline baseline;
  ReassemblyQueue q(1 << 20, 64);
  SackBlock none[1];
  CHECK(q.sack_blocks(none, 1) == 0);

  auto add = [&](uint32_t s, uint32_t len) { q.insert(base + s, segment(base + s, len), false); };
  add(100, 50);  // A
  CHECK(sack_of(q) == Blocks{{base + 100, base + 150}});
  add(300, 50);  // B
  add(500, 50);  // C
  CHECK(sack_of(q) ==
        Blocks{{base + 500, base + 550}, {base + 300, base + 350}, {base + 100, base + 150}});

  add(150, 30);  // extends A: A first
  CHECK(sack_of(q) ==
        Blocks{{base + 100, base + 180}, {base + 500, base + 550}, {base + 300, base + 350}});

  add(700, 10);  // D
  add(900, 10);  // E
  CHECK(sack_of(q) == Blocks{{base + 900, base + 910}, {base + 700, base + 710},
                             {base + 100, base + 180}, {base + 500, base + 550}});
  CHECK(sack_of(q, 3).size() == 3);
  CHECK(sack_of(q, 0).empty());

  add(310, 20);  // a duplicate inside B: B first (RFC 2018 4, as Linux does)
  CHECK(sack_of(q, 2) == Blocks{{base + 300, base + 350}, {base + 900, base + 910}});

  add(350, 150);  // joins B and C into one block, which goes first
  CHECK(sack_of(q) == Blocks{{base + 300, base + 550}, {base + 900, base + 910},
                             {base + 700, base + 710}, {base + 100, base + 180}});

  q.clear();
  CHECK(q.empty());
  CHECK(q.bytes() == 0);
  CHECK(sack_of(q).empty());
}

// ===== Lifetime =====

TEST_CASE("tcp-reass: clear and the destructor free every mbuf", "[tcp-reass]") {
  PoolBaseline baseline;
  {
    ReassemblyQueue q(1 << 20, 8);
    q.insert(base + 100, segment(base + 100, 100, {10, 10}), true);
    q.insert(base + 10, segment(base + 10, 20), false);
    CHECK(keel::test::pool_in_use() == baseline.start() + 4);
    q.clear();
    CHECK(keel::test::pool_in_use() == baseline.start());
    // Usable again after clear, FIN state forgotten.
    CHECK(q.insert(base + 300, segment(base + 300, 100), false) == 100);
    CHECK(q.insert(base + 10, segment(base + 10, 20, {5}), false) == 20);
  }
}

// ===== Randomised: overlapping segments in random order =====

TEST_CASE("tcp-reass: random overlapping segments reassemble the exact stream", "[tcp-reass]") {
  PoolBaseline baseline;
  std::mt19937 rng(2018);
  const uint32_t n = 3000;
  for (int round = 0; round < 150; ++round) {
    const uint32_t start = 0xffffffffu - uint32_t(rng() % 2000);  // the wrap falls inside
    const bool with_fin = rng() % 2 == 0;
    struct Seg {
      uint32_t off, len;
    };
    // A tiling of [0, n) guarantees completeness; extras overlap it at random.
    std::vector<Seg> segs;
    for (uint32_t off = 0; off < n;) {
      uint32_t len = std::min<uint32_t>(1 + rng() % 300, n - off);
      segs.push_back({off, len});
      off += len;
    }
    for (int i = 0; i < 30; ++i) {
      uint32_t off = rng() % n;
      segs.push_back({off, std::min<uint32_t>(1 + rng() % 500, n - off)});
    }
    std::shuffle(segs.begin(), segs.end(), rng);

    ReassemblyQueue q(n, 512);
    uint32_t rcv_nxt = start;
    bool fin_seen = false;
    std::vector<uint8_t> delivered;
    std::vector<bool> held(n, false);  // octet start + i is in the queue
    for (const Seg& sg : segs) {
      const uint32_t seq = start + sg.off;
      const uint32_t end = seq + sg.len;
      const bool fin = with_fin && sg.off + sg.len == n;
      std::vector<uint32_t> splits;
      for (int k = int(rng() % 4); k > 0; --k) splits.push_back(1 + rng() % 120);
      rte_mbuf* m = segment(seq, sg.len, splits);
      if (keel::tcp::seq_leq(seq, rcv_nxt)) {
        // The TCB's in-order path: it takes the new part itself, then pops.
        if (keel::tcp::seq_gt(end, rcv_nxt)) {
          auto v = stream(rcv_nxt, end - rcv_nxt);
          delivered.insert(delivered.end(), v.begin(), v.end());
          rcv_nxt = end;
          fin_seen = fin_seen || fin;
        }
        rte_pktmbuf_free(m);
        for (;;) {
          uint32_t from = rcv_nxt;
          bool fin_pop = false;
          rte_mbuf* p = q.pop(rcv_nxt, fin_pop);
          fin_seen = fin_seen || fin_pop;
          if (p == nullptr) break;
          auto got = bytes_of(p);
          REQUIRE(got.size() == rcv_nxt - from);
          REQUIRE(got == stream(from, p->pkt_len));
          delivered.insert(delivered.end(), got.begin(), got.end());
          rte_pktmbuf_free(p);
        }
        for (uint32_t s = start; s != rcv_nxt; ++s) held[s - start] = false;
      } else {
        uint32_t expect = 0;
        for (uint32_t s = seq; s != end; ++s) expect += held[s - start] ? 0 : 1;
        REQUIRE(q.insert(seq, m, fin) == expect);
        for (uint32_t s = seq; s != end; ++s) held[s - start] = true;
      }
      REQUIRE(q.bytes() == uint32_t(std::count(held.begin(), held.end(), true)));
      // SACK blocks describe exactly the held runs, the newest first.
      SackBlock blocks[4];
      size_t nb = q.sack_blocks(blocks, 4);
      for (size_t b = 0; b < nb; ++b)
        for (uint32_t s = blocks[b].left; s != blocks[b].right; ++s) REQUIRE(held[s - start]);
      if (nb > 0 && !keel::tcp::seq_leq(seq, rcv_nxt))
        REQUIRE((keel::tcp::seq_in(seq, blocks[0].left, blocks[0].right)));
    }
    CHECK(rcv_nxt == start + n);
    CHECK(delivered == stream(start, n));
    CHECK(fin_seen == with_fin);
    CHECK(q.empty());
  }
}
