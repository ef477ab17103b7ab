// SPDX-License-Identifier: BSD-3-Clause
#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "engine/counters.hpp"
#include "net/addresses.hpp"
#include "net/byte_order.hpp"
#include "net/ipv4_reassembly.hpp"
#include "test_support.hpp"

using keel::engine::Counter;
using keel::engine::Counters;
using keel::net::Ipv4Addr;
using keel::net::Ipv4Reassembler;
using keel::net::load_be16;
using keel::net::load_be32;
using keel::net::ReassemblyConfig;
using keel::net::store_be16;
using keel::net::store_be32;
using keel::test::bytes_of;
using keel::test::make_chain;
using keel::test::make_mbuf;
using keel::test::PoolBaseline;
using keel::test::pool_in_use;

namespace {

constexpr uint64_t t0 = 1'000'000'000;
constexpr uint64_t timeout = ReassemblyConfig{}.timeout_ns;

/// The datagram the fragments are cut from.
struct Datagram {
  Ipv4Addr src{198, 18, 0, 1};
  Ipv4Addr dst{198, 18, 0, 2};
  uint16_t id = 0x1234;
  uint8_t protocol = 17;
  std::vector<uint8_t> payload;
};

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = uint8_t(i * 131 + (i >> 8) * 7 + seed);
  return v;
}

Datagram datagram(size_t payload_len, uint16_t id = 0x1234, uint8_t seed = 1) {
  Datagram d;
  d.id = id;
  d.payload = pattern(payload_len, seed);
  return d;
}

uint16_t checksum_of(const uint8_t* h, size_t len) {
  uint32_t sum = 0;
  for (size_t i = 0; i < len; i += 2) sum += load_be16(h + i);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(~sum);
}

/// Header plus payload bytes [off, off + len) of `d`, with a valid header checksum.
/// `options` lengthens the header (a multiple of 4 bytes).
std::vector<uint8_t> fragment_bytes(const Datagram& d, uint32_t off, uint32_t len, bool mf,
                                    const std::vector<uint8_t>& options = {}) {
  size_t ihl = 20 + options.size();
  std::vector<uint8_t> b(ihl + len);
  b[0] = uint8_t(0x40 | ihl / 4);
  store_be16(&b[2], uint16_t(ihl + len));
  store_be16(&b[4], d.id);
  store_be16(&b[6], uint16_t((mf ? 0x2000 : 0) | (off / 8)));
  b[8] = 64;
  b[9] = d.protocol;
  store_be32(&b[12], d.src.v);
  store_be32(&b[16], d.dst.v);
  std::copy(options.begin(), options.end(), b.begin() + 20);
  store_be16(&b[10], checksum_of(b.data(), ihl));
  for (uint32_t i = 0; i < len; ++i) b[ihl + i] = off + i < d.payload.size() ? d.payload[off + i] : 0xa5;
  return b;
}

rte_mbuf* frag(const Datagram& d, uint32_t off, uint32_t len, bool mf) {
  return make_mbuf(fragment_bytes(d, off, len, mf));
}

/// The whole datagram split into fragments of `size` bytes (a multiple of 8), in order.
std::vector<rte_mbuf*> split(const Datagram& d, uint32_t size) {
  std::vector<rte_mbuf*> out;
  for (uint32_t off = 0; off < d.payload.size(); off += size) {
    uint32_t len = std::min<uint32_t>(size, uint32_t(d.payload.size()) - off);
    out.push_back(frag(d, off, len, off + len < d.payload.size()));
  }
  return out;
}

/// Asserts `m` is `d` reassembled: header fields, valid checksum, exact payload, sane chain.
void check_datagram(rte_mbuf* m, const Datagram& d, size_t ihl = 20) {
  REQUIRE(m != nullptr);
  auto b = bytes_of(m);
  REQUIRE(b.size() == m->pkt_len);
  REQUIRE(b.size() == ihl + d.payload.size());
  unsigned segs = 0;
  for (rte_mbuf* s = m; s != nullptr; s = s->next) ++segs;
  REQUIRE(segs == m->nb_segs);
  REQUIRE(b[0] == 0x40 + ihl / 4);
  REQUIRE(load_be16(&b[2]) == ihl + d.payload.size());
  REQUIRE(load_be16(&b[4]) == d.id);
  REQUIRE((load_be16(&b[6]) & 0x3fff) == 0);  // MF clear, offset 0
  REQUIRE(b[9] == d.protocol);
  REQUIRE(load_be32(&b[12]) == d.src.v);
  REQUIRE(load_be32(&b[16]) == d.dst.v);
  REQUIRE(checksum_of(b.data(), ihl) == 0);  // a valid header sums to 0xffff
  REQUIRE(std::vector<uint8_t>(b.begin() + ptrdiff_t(ihl), b.end()) == d.payload);
}

/// Inserts fragments in order; all but the last must be held.
rte_mbuf* feed(Ipv4Reassembler& r, const std::vector<rte_mbuf*>& frags, uint64_t now = t0) {
  for (size_t i = 0; i + 1 < frags.size(); ++i) REQUIRE(r.insert(frags[i], now) == nullptr);
  return r.insert(frags.back(), now);
}

}  // namespace

// ===== Orders =====

TEST_CASE("reassembly: fragments in order", "[reassembly]") {
  PoolBaseline base;
  Counters c;
  Ipv4Reassembler r({}, c);
  auto d = datagram(1000 + 3);  // the last fragment carries an odd length
  auto frags = split(d, 256);
  REQUIRE(frags.size() == 4);
  REQUIRE(r.insert(frags[0], t0) == nullptr);
  REQUIRE(r.pending() == 1);
  REQUIRE(r.insert(frags[1], t0) == nullptr);
  REQUIRE(r.insert(frags[2], t0) == nullptr);
  rte_mbuf* m = r.insert(frags[3], t0);
  REQUIRE(m == frags[0]);  // the first fragment's mbuf carries the datagram
  check_datagram(m, d);
  REQUIRE(r.pending() == 0);
  REQUIRE(c.get(Counter::ip_frag_in) == 4);
  REQUIRE(c.get(Counter::ip_reassembled) == 1);
  rte_pktmbuf_free(m);
}

TEST_CASE("reassembly: fragments in reverse order", "[reassembly]") {
  PoolBaseline base;
  Counters c;
  Ipv4Reassembler r({}, c);
  auto d = datagram(8 * 100 + 5);
  auto frags = split(d, 64);
  std::reverse(frags.begin(), frags.end());
  rte_mbuf* m = feed(r, frags);
  check_datagram(m, d);
  REQUIRE(r.pending() == 0);
  REQUIRE(c.get(Counter::ip_frag_in) == frags.size());
  REQUIRE(c.get(Counter::ip_reassembled) == 1);
  rte_pktmbuf_free(m);
}

TEST_CASE("reassembly: last fragment first, then first, then the middle", "[reassembly]") {
  PoolBaseline base;
  Counters c;
  Ipv4Reassembler r({}, c);
  auto d = datagram(24 + 1);
  auto frags = split(d, 8);  // [0,8) [8,16) [16,24) [24,25)
  REQUIRE(frags.size() == 4);
  REQUIRE(r.insert(frags[3], t0) == nullptr);
  REQUIRE(r.insert(frags[0], t0) == nullptr);
  REQUIRE(r.insert(frags[2], t0) == nullptr);
  rte_mbuf* m = r.insert(frags[1], t0);
  check_datagram(m, d);
  rte_pktmbuf_free(m);
}

TEST_CASE("reassembly: random permutations of many multi-segment fragments", "[reassembly]") {
  PoolBaseline base;
  Counters c;
  ReassemblyConfig cfg;
  cfg.max_fragments = 128;
  Ipv4Reassembler r(cfg, c);
  std::mt19937 rng(20240515);
  for (int round = 0; round < 40; ++round) {
    INFO("round " << round);
    auto d = datagram(2000 + rng() % 2000, uint16_t(round), uint8_t(round));
    std::vector<std::vector<uint8_t>> wire;
    for (uint32_t off = 0; off < d.payload.size();) {
      uint32_t len = std::min<uint32_t>(8 * (1 + rng() % 24), uint32_t(d.payload.size()) - off);
      wire.push_back(fragment_bytes(d, off, len, off + len < d.payload.size()));
      off += len;
    }
    std::vector<rte_mbuf*> frags;
    for (auto& w : wire) {
      // Split some fragments across segments, with cuts inside the header, right
      // after it, and inside the payload.
      switch (rng() % 5) {
        case 0: frags.push_back(make_chain(w, {7})); break;
        case 1: frags.push_back(make_chain(w, {20})); break;
        case 2: frags.push_back(make_chain(w, {13, 9, 3})); break;
        default: frags.push_back(make_mbuf(w)); break;
      }
    }
    std::shuffle(frags.begin(), frags.end(), rng);
    rte_mbuf* m = feed(r, frags, t0 + uint64_t(round));
    check_datagram(m, d);
    rte_pktmbuf_free(m);
    REQUIRE(r.pending() == 0);
  }
  REQUIRE(c.get(Counter::ip_reassembled) == 40);
}

TEST_CASE("reassembly: header straddling segments in every fragment", "[reassembly]") {
  PoolBaseline base;
  Counters c;
  Ipv4Reassembler r({}, c);
  auto d = datagram(48 + 10);
  rte_mbuf* f0 = make_chain(fragment_bytes(d, 0, 24, true), {10});       // header split
  rte_mbuf* f1 = make_chain(fragment_bytes(d, 24, 24, true), {20, 8});   // header alone in seg 1
  rte_mbuf* f2 = make_chain(fragment_bytes(d, 48, 10, false), {3, 3, 3, 3, 3, 3, 3});
  REQUIRE(r.insert(f2, t0) == nullptr);
  REQUIRE(r.insert(f1, t0) == nullptr);
  rte_mbuf* m = r.insert(f0, t0);
  check_datagram(m, d);
  rte_pktmbuf_free(m);
}

TEST_CASE("reassembly: first fragment's options are kept; later headers are stripped", "[reassembly]") {
  PoolBaseline base;
  Counters c;
  Ipv4Reassembler r({}, c);
  auto d = datagram(40);
  const std::vector<uint8_t> opts = {0x01, 0x01, 0x01, 0x00};  // NOP NOP NOP EOL
  rte_mbuf* f0 = make_mbuf(fragment_bytes(d, 0, 16, true, opts));
  rte_mbuf* f1 = frag(d, 16, 24, false);
  REQUIRE(r.insert(f1, t0) == nullptr);
  rte_mbuf* m = r.insert(f0, t0);
  check_datagram(m, d, 24);
  auto b = bytes_of(m);
  REQUIRE(std::vector<uint8_t>(b.begin() + 20, b.begin() + 24) == opts);
  rte_pktmbuf_free(m);
}

TEST_CASE("reassembly: a 65535-byte datagram, and one a byte too long", "[reassembly]") {
  PoolBaseline base;
  Counters c;
  Ipv4Reassembler r({}, c);
  auto d = datagram(65535 - 20);
  SECTION("exactly 65535 reassembles") {
    auto frags = split(d, 1480);
    REQUIRE(frags.size() == 45);
    rte_mbuf* m = feed(r, frags);
    check_datagram(m, d);
    REQUIRE(m->pkt_len == 65535);
    rte_pktmbuf_free(m);
  }
  SECTION("first fragment with options pushes it past 65535: dropped whole") {
    auto frags = split(d, 1480);
    rte_pktmbuf_free(frags[0]);
    frags[0] = make_mbuf(fragment_bytes(d, 0, 1480, true, {1, 1, 1, 0}));
    REQUIRE(feed(r, frags) == nullptr);
    REQUIRE(r.pending() == 0);
    REQUIRE(c.get(Counter::ip_frag_bad) == 1);
    REQUIRE(c.get(Counter::ip_reassembled) == 0);
  }
}

TEST_CASE("reassembly: a packet that is not a fragment passes through", "[reassembly]") {
  PoolBaseline base;
  Counters c;
  Ipv4Reassembler r({}, c);
  auto d = datagram(30);
  auto bytes = fragment_bytes(d, 0, 30, false);
  store_be16(&bytes[6], 0x4000);  // DF only
  rte_mbuf* m = make_mbuf(bytes);
  REQUIRE(r.insert(m, t0) == m);
  REQUIRE(bytes_of(m) == bytes);
  REQUIRE(r.pending() == 0);
  REQUIRE(c.get(Counter::ip_frag_in) == 0);
  rte_pktmbuf_free(m);
}

// ===== Duplicates and overlaps =====

TEST_CASE("reassembly: an exact duplicate is dropped alone", "[reassembly]") {
  PoolBaseline base;
  Counters c;
  Ipv4Reassembler r({}, c);
  auto d = datagram(24 + 4);  // [0,8) [8,16) [16,24) [24,28)
  rte_mbuf* m = nullptr;
  SECTION("duplicate of the first fragment") {
    REQUIRE(r.insert(frag(d, 0, 8, true), t0) == nullptr);
    REQUIRE(r.insert(frag(d, 0, 8, true), t0) == nullptr);
    REQUIRE(r.insert(frag(d, 8, 8, true), t0) == nullptr);
    REQUIRE(r.insert(frag(d, 16, 8, true), t0) == nullptr);
    m = r.insert(frag(d, 24, 4, false), t0);
  }
  SECTION("duplicate of a middle fragment") {
    REQUIRE(r.insert(frag(d, 8, 8, true), t0) == nullptr);
    REQUIRE(r.insert(frag(d, 0, 8, true), t0) == nullptr);
    REQUIRE(r.insert(frag(d, 24, 4, false), t0) == nullptr);
    REQUIRE(r.insert(frag(d, 8, 8, true), t0) == nullptr);
    m = r.insert(frag(d, 16, 8, true), t0);
  }
  SECTION("duplicate of the last fragment") {
    REQUIRE(r.insert(frag(d, 24, 4, false), t0) == nullptr);
    REQUIRE(r.insert(frag(d, 24, 4, false), t0) == nullptr);
    REQUIRE(r.insert(frag(d, 16, 8, true), t0) == nullptr);
    REQUIRE(r.insert(frag(d, 8, 8, true), t0) == nullptr);
    m = r.insert(frag(d, 0, 8, true), t0);
  }
  check_datagram(m, d);
  REQUIRE(c.get(Counter::ip_frag_in) == 5);
  REQUIRE(c.get(Counter::ip_frag_duplicate) == 1);
  REQUIRE(c.get(Counter::ip_frag_overlap) == 0);
  REQUIRE(c.get(Counter::ip_reassembled) == 1);
  REQUIRE(r.pending() == 0);
  rte_pktmbuf_free(m);
}

TEST_CASE("reassembly: duplicates interleaved with a completing datagram", "[reassembly]") {
  PoolBaseline base;
  Counters c;
  Ipv4Reassembler r({}, c);
  auto d = datagram(40);
  REQUIRE(r.insert(frag(d, 0, 16, true), t0) == nullptr);
  REQUIRE(r.insert(frag(d, 0, 16, true), t0) == nullptr);
  REQUIRE(r.insert(frag(d, 16, 8, true), t0) == nullptr);
  REQUIRE(r.insert(frag(d, 0, 16, true), t0) == nullptr);
  rte_mbuf* m = r.insert(frag(d, 24, 16, false), t0);
  check_datagram(m, d);
  REQUIRE(c.get(Counter::ip_frag_duplicate) == 2);
  REQUIRE(c.get(Counter::ip_frag_overlap) == 0);
  rte_pktmbuf_free(m);
}

TEST_CASE("reassembly: any overlap drops the whole datagram", "[reassembly]") {
  PoolBaseline base;
  Counters c;
  Ipv4Reassembler r({}, c);
  auto d = datagram(64);
  REQUIRE(r.insert(frag(d, 48, 16, false), t0) == nullptr);  // something else already held
  SECTION("partial overlap with the following fragment") {
    REQUIRE(r.insert(frag(d, 8, 16, true), t0) == nullptr);
    REQUIRE(r.insert(frag(d, 0, 16, true), t0) == nullptr);
  }
  SECTION("partial overlap with the preceding fragment") {
    REQUIRE(r.insert(frag(d, 0, 16, true), t0) == nullptr);
    REQUIRE(r.insert(frag(d, 8, 16, true), t0) == nullptr);
  }
  SECTION("new fragment inside a held one") {
    REQUIRE(r.insert(frag(d, 0, 32, true), t0) == nullptr);
    REQUIRE(r.insert(frag(d, 8, 8, true), t0) == nullptr);
  }
  SECTION("new fragment containing a held one") {
    REQUIRE(r.insert(frag(d, 8, 8, true), t0) == nullptr);
    REQUIRE(r.insert(frag(d, 0, 32, true), t0) == nullptr);
  }
  SECTION("same offset, different length") {
    REQUIRE(r.insert(frag(d, 0, 16, true), t0) == nullptr);
    REQUIRE(r.insert(frag(d, 0, 24, true), t0) == nullptr);
  }
  SECTION("same range, one claims to be last") {
    REQUIRE(r.insert(frag(d, 16, 8, true), t0) == nullptr);
    REQUIRE(r.insert(frag(d, 16, 8, false), t0) == nullptr);
  }
  SECTION("overlap with the last fragment") {
    REQUIRE(r.insert(frag(d, 40, 16, true), t0) == nullptr);
  }
  REQUIRE(c.get(Counter::ip_frag_overlap) == 1);
  REQUIRE(c.get(Counter::ip_frag_duplicate) == 0);
  REQUIRE(r.pending() == 0);
  // The identifiers are free again: a clean copy of the datagram now reassembles.
  rte_mbuf* m = feed(r, split(d, 16));
  check_datagram(m, d);
  rte_pktmbuf_free(m);
}

TEST_CASE("reassembly: inconsistent last fragments drop the datagram", "[reassembly]") {
  PoolBaseline base;
  Counters c;
  Ipv4Reassembler r({}, c);
  auto d = datagram(64);
  SECTION("a second last fragment with a different end") {
    REQUIRE(r.insert(frag(d, 48, 16, false), t0) == nullptr);
    REQUIRE(r.insert(frag(d, 0, 8, true), t0) == nullptr);
    REQUIRE(r.insert(frag(d, 32, 8, false), t0) == nullptr);
  }
  SECTION("a non-last fragment beyond the known end") {
    REQUIRE(r.insert(frag(d, 32, 8, false), t0) == nullptr);
    REQUIRE(r.insert(frag(d, 48, 8, true), t0) == nullptr);
  }
  SECTION("a last fragment ending before data already held") {
    REQUIRE(r.insert(frag(d, 48, 8, true), t0) == nullptr);
    REQUIRE(r.insert(frag(d, 16, 8, false), t0) == nullptr);
  }
  REQUIRE(c.get(Counter::ip_frag_overlap) == 1);
  REQUIRE(r.pending() == 0);
}

// ===== Bad fragments =====

TEST_CASE("reassembly: bad lengths drop the fragment only", "[reassembly]") {
  PoolBaseline base;
  Counters c;
  Ipv4Reassembler r({}, c);
  auto d = datagram(32);
  REQUIRE(r.insert(frag(d, 0, 8, true), t0) == nullptr);
  SECTION("non-last payload not a multiple of 8") {
    REQUIRE(r.insert(frag(d, 8, 12, true), t0) == nullptr);
  }
  SECTION("empty fragment") {
    REQUIRE(r.insert(frag(d, 8, 0, true), t0) == nullptr);
  }
  SECTION("non-last fragment ending beyond 65535 - IHL") {
    REQUIRE(r.insert(frag(d, 8189 * 8, 8, true), t0) == nullptr);  // ends at 65520 > 65515
  }
  SECTION("last fragment one byte beyond 65535 - IHL") {
    REQUIRE(r.insert(frag(d, 8189 * 8, 4, false), t0) == nullptr);  // ends at 65516
  }
  SECTION("total length disagrees with the packet length") {
    auto bytes = fragment_bytes(d, 8, 8, true);
    bytes.push_back(0);  // caller failed to trim
    REQUIRE(r.insert(make_mbuf(bytes), t0) == nullptr);
  }
  REQUIRE(c.get(Counter::ip_frag_bad) == 1);
  REQUIRE(c.get(Counter::ip_frag_in) == 2);
  REQUIRE(r.pending() == 1);  // the datagram itself is untouched
  REQUIRE(r.insert(frag(d, 8, 16, true), t0) == nullptr);
  rte_mbuf* m = r.insert(frag(d, 24, 8, false), t0);
  check_datagram(m, d);
  rte_pktmbuf_free(m);
}

TEST_CASE("reassembly: a last fragment ending exactly at 65535 - IHL is accepted", "[reassembly]") {
  PoolBaseline base;
  Counters c;
  Ipv4Reassembler r({}, c);
  auto d = datagram(16);
  REQUIRE(r.insert(frag(d, 8189 * 8, 3, false), t0) == nullptr);  // ends at 65515
  REQUIRE(r.pending() == 1);
  REQUIRE(c.get(Counter::ip_frag_bad) == 0);
}

// ===== Limits and time =====

TEST_CASE("reassembly: a gap never filled times out and frees everything", "[reassembly]") {
  PoolBaseline base;
  Counters c;
  Ipv4Reassembler r({}, c);
  auto d = datagram(40);
  unsigned before = pool_in_use();
  REQUIRE(r.insert(frag(d, 0, 8, true), t0) == nullptr);
  REQUIRE(r.insert(frag(d, 24, 16, false), t0 + 5) == nullptr);  // [8,24) never comes
  REQUIRE(pool_in_use() == before + 2);
  r.expire(t0 + timeout);  // not yet: the first fragment is exactly `timeout` old
  REQUIRE(r.pending() == 1);
  r.expire(t0 + timeout + 1);
  REQUIRE(r.pending() == 0);
  REQUIRE(c.get(Counter::ip_frag_timeout) == 1);
  REQUIRE(pool_in_use() == before);
  r.expire(t0 + 2 * timeout);
  REQUIRE(c.get(Counter::ip_frag_timeout) == 1);
}

TEST_CASE("reassembly: a late fragment does not join a timed-out datagram", "[reassembly]") {
  PoolBaseline base;
  Counters c;
  Ipv4Reassembler r({}, c);
  auto d = datagram(24);
  REQUIRE(r.insert(frag(d, 0, 8, true), t0) == nullptr);
  REQUIRE(r.insert(frag(d, 16, 8, false), t0) == nullptr);
  // No expire() call in between: insert reaps the stale datagram itself.
  REQUIRE(r.insert(frag(d, 8, 8, true), t0 + timeout + 1) == nullptr);
  REQUIRE(c.get(Counter::ip_frag_timeout) == 1);
  REQUIRE(r.pending() == 1);  // a new datagram holding only the late fragment
  // The timeout counts from the new datagram's first fragment.
  rte_mbuf* m = r.insert(frag(d, 0, 8, true), t0 + 2 * timeout);
  REQUIRE(m == nullptr);
  m = r.insert(frag(d, 16, 8, false), t0 + 2 * timeout);
  check_datagram(m, d);
  rte_pktmbuf_free(m);
}

TEST_CASE("reassembly: a full table drops new datagrams without evicting", "[reassembly]") {
  PoolBaseline base;
  Counters c;
  ReassemblyConfig cfg;
  cfg.max_datagrams = 2;
  Ipv4Reassembler r(cfg, c);
  auto a = datagram(16, 1, 10);
  auto b = datagram(16, 2, 20);
  auto x = datagram(16, 3, 30);
  REQUIRE(r.insert(frag(a, 0, 8, true), t0) == nullptr);
  REQUIRE(r.insert(frag(b, 0, 8, true), t0) == nullptr);
  REQUIRE(r.insert(frag(x, 0, 8, true), t0) == nullptr);
  REQUIRE(c.get(Counter::ip_frag_table_full) == 1);
  REQUIRE(r.pending() == 2);
  // Fragments of datagrams already in the table still get in.
  rte_mbuf* m = r.insert(frag(a, 8, 8, false), t0);
  check_datagram(m, a);
  rte_pktmbuf_free(m);
  REQUIRE(r.pending() == 1);
  // A slot is free again: x starts over from its remaining fragments.
  REQUIRE(r.insert(frag(x, 8, 8, false), t0) == nullptr);
  m = r.insert(frag(x, 0, 8, true), t0);
  check_datagram(m, x);
  rte_pktmbuf_free(m);
  // Once b times out its slot serves newcomers too.
  auto y = datagram(16, 4, 40);
  auto z = datagram(16, 5, 50);
  REQUIRE(r.insert(frag(y, 0, 8, true), t0) == nullptr);
  REQUIRE(r.insert(frag(z, 0, 8, true), t0) == nullptr);
  REQUIRE(c.get(Counter::ip_frag_table_full) == 2);
  REQUIRE(r.insert(frag(z, 0, 8, true), t0 + timeout + 1) == nullptr);
  REQUIRE(c.get(Counter::ip_frag_timeout) == 2);  // b and y
  REQUIRE(r.pending() == 1);
}

TEST_CASE("reassembly: more fragments than max_fragments drops the datagram", "[reassembly]") {
  PoolBaseline base;
  Counters c;
  ReassemblyConfig cfg;
  cfg.max_fragments = 4;
  Ipv4Reassembler r(cfg, c);
  SECTION("exactly max_fragments reassembles") {
    auto d = datagram(32);
    rte_mbuf* m = feed(r, split(d, 8));
    check_datagram(m, d);
    rte_pktmbuf_free(m);
    REQUIRE(c.get(Counter::ip_frag_too_many) == 0);
  }
  SECTION("one more is too many") {
    auto d = datagram(40);
    auto frags = split(d, 8);
    REQUIRE(frags.size() == 5);
    std::swap(frags[0], frags[4]);  // hold back a piece so nothing completes early
    REQUIRE(feed(r, frags) == nullptr);
    REQUIRE(c.get(Counter::ip_frag_too_many) == 1);
    REQUIRE(r.pending() == 0);
  }
}

// ===== Keys =====

TEST_CASE("reassembly: two interleaved datagrams with different ids", "[reassembly]") {
  PoolBaseline base;
  Counters c;
  Ipv4Reassembler r({}, c);
  auto a = datagram(100, 7, 1);
  auto b = datagram(90, 8, 2);
  auto fa = split(a, 16);
  auto fb = split(b, 24);
  std::reverse(fb.begin(), fb.end());
  rte_mbuf* done_a = nullptr;
  rte_mbuf* done_b = nullptr;
  for (size_t i = 0; i < std::max(fa.size(), fb.size()); ++i) {
    if (i < fa.size()) {
      rte_mbuf* m = r.insert(fa[i], t0);
      if (m != nullptr) done_a = m;
    }
    if (i < fb.size()) {
      rte_mbuf* m = r.insert(fb[i], t0);
      if (m != nullptr) done_b = m;
    }
  }
  REQUIRE(r.pending() == 0);
  check_datagram(done_a, a);
  check_datagram(done_b, b);
  REQUIRE(c.get(Counter::ip_reassembled) == 2);
  rte_pktmbuf_free(done_a);
  rte_pktmbuf_free(done_b);
}

TEST_CASE("reassembly: same id from another source, or another protocol, is another datagram",
          "[reassembly]") {
  PoolBaseline base;
  Counters c;
  Ipv4Reassembler r({}, c);
  auto a = datagram(16, 99, 1);
  auto b = datagram(16, 99, 2);
  SECTION("different source") { b.src = Ipv4Addr(198, 18, 0, 9); }
  SECTION("different destination") { b.dst = Ipv4Addr(198, 18, 0, 9); }
  SECTION("different protocol") { b.protocol = 6; }
  // Same offsets in both: were the keys confused these would be overlaps or duplicates.
  REQUIRE(r.insert(frag(a, 0, 8, true), t0) == nullptr);
  REQUIRE(r.insert(frag(b, 0, 8, true), t0) == nullptr);
  REQUIRE(r.pending() == 2);
  rte_mbuf* mb = r.insert(frag(b, 8, 8, false), t0);
  rte_mbuf* ma = r.insert(frag(a, 8, 8, false), t0);
  check_datagram(ma, a);
  check_datagram(mb, b);
  REQUIRE(c.get(Counter::ip_frag_duplicate) == 0);
  REQUIRE(c.get(Counter::ip_frag_overlap) == 0);
  rte_pktmbuf_free(ma);
  rte_pktmbuf_free(mb);
}

// ===== Lifetime =====

TEST_CASE("reassembly: the destructor frees every held fragment", "[reassembly]") {
  PoolBaseline base;
  Counters c;
  {
    Ipv4Reassembler r({}, c);
    for (uint16_t id = 0; id < 5; ++id) {
      auto d = datagram(64, id);
      REQUIRE(r.insert(make_chain(fragment_bytes(d, 0, 16, true), {9}), t0) == nullptr);
      REQUIRE(r.insert(frag(d, 32, 32, false), t0) == nullptr);
    }
    REQUIRE(r.pending() == 5);
    REQUIRE(pool_in_use() == base.start() + 15);
  }
  REQUIRE(pool_in_use() == base.start());
  REQUIRE(c.get(Counter::ip_frag_timeout) == 0);
}
