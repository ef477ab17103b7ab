// SPDX-License-Identifier: BSD-3-Clause
// rte_ipv4_udptcp_cksum_mbuf() is still marked experimental in DPDK 22.11; it is
// the chain-aware L4 checksum we need to finish offloaded checksums in software.
#ifndef ALLOW_EXPERIMENTAL_API
#define ALLOW_EXPERIMENTAL_API
#endif

#include "drivers/fault_injector.hpp"

#include <rte_ip.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstring>

namespace keel::drivers {

using engine::Counter;

namespace {

constexpr uint32_t eth_hdr_len = 14;

namespace ipv4_field {
constexpr uint32_t checksum = 10;
}
constexpr uint32_t tcp_checksum_offset = 16;
constexpr uint32_t udp_checksum_offset = 6;
constexpr uint8_t ip_proto_tcp = 6;
constexpr uint8_t ip_proto_udp = 17;

uint64_t sat_add(uint64_t a, uint64_t b) { return b > UINT64_MAX - a ? UINT64_MAX : a + b; }

/// floor(a * b / 2^64): maps a uniform 64-bit a onto [0, b) without modulo bias worth counting.
uint64_t mul_hi(uint64_t a, uint64_t b) {
  __extension__ using U128 = unsigned __int128;
  return uint64_t(U128(a) * b >> 64);
}

// ---------------------------------------------------------------- spec parsing

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool parse_double(std::string_view s, double& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out, std::chars_format::fixed);
  return ec == std::errc() && p == s.data() + s.size() && std::isfinite(out);
}

/// "5%" or "0.05" -> 0.05; anything outside [0,1] is refused.
bool parse_probability(std::string_view s, double& out) {
  double scale = 1;
  if (!s.empty() && s.back() == '%') {
    s.remove_suffix(1);
    scale = 100;
  }
  double v;
  if (!parse_double(s, v)) return false;
  v /= scale;
  if (!(v >= 0 && v <= 1)) return false;
  out = v;
  return true;
}

/// "40ms", "2us", "1.5ms", "100ns", "1s"; a bare number only if it is 0.
bool parse_duration(std::string_view s, uint64_t& out) {
  struct Unit {
    std::string_view suffix;
    double ns;
  };
  static constexpr Unit units[] = {{"ns", 1}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}};
  double scale = 0;  // 0: no unit given
  for (const Unit& u : units) {
    if (s.size() > u.suffix.size() && s.ends_with(u.suffix)) {
      s.remove_suffix(u.suffix.size());
      scale = u.ns;
      break;
    }
  }
  double v;
  if (!parse_double(s, v) || v < 0) return false;
  if (scale == 0) {
    if (v != 0) return false;
    out = 0;
    return true;
  }
  double ns = std::round(v * scale);
  if (ns >= 9.2e18) return false;  // beyond int64 nanoseconds (292 years)
  out = uint64_t(ns);
  return true;
}

bool parse_uint(std::string_view s, uint64_t max, uint64_t& out) {
  if (s.empty()) return false;
  uint64_t v;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 10);
  if (ec != std::errc() || p != s.data() + s.size() || v > max) return false;
  out = v;
  return true;
}

void append_percent(std::string& s, std::string_view key, double p) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, p * 100);
  s.append(key).append("=").append(buf, ec == std::errc() ? end : buf).append("%,");
}

void append_duration(std::string& s, std::string_view key, uint64_t ns) {
  std::string_view unit = "ns";
  if (ns != 0 && ns % 1'000'000'000 == 0) ns /= 1'000'000'000, unit = "s";
  else if (ns != 0 && ns % 1'000'000 == 0) ns /= 1'000'000, unit = "ms";
  else if (ns != 0 && ns % 1'000 == 0) ns /= 1'000, unit = "us";
  s.append(key).append("=").append(std::to_string(ns)).append(unit).append(",");
}

// ---------------------------------------------------------------- mbuf helpers

/// True if every segment's data belongs to this mbuf alone, so writing into it
/// cannot change what another holder (a TCP send queue, a duplicate) sees.
bool writable(const rte_mbuf* m) {
  for (const rte_mbuf* s = m; s != nullptr; s = s->next)
    if (!RTE_MBUF_DIRECT(s) || rte_mbuf_refcnt_read(s) != 1) return false;
  return true;
}

/// Copies len bytes into the packet at offset off, across segments.
/// Precondition: off + len <= pkt_len.
void write_bytes(rte_mbuf* m, uint32_t off, const void* src, uint32_t len) {
  const auto* from = static_cast<const uint8_t*>(src);
  for (rte_mbuf* s = m; s != nullptr && len > 0; s = s->next) {
    if (off >= s->data_len) {
      off -= s->data_len;
      continue;
    }
    uint32_t n = std::min<uint32_t>(len, s->data_len - off);
    std::memcpy(rte_pktmbuf_mtod_offset(s, uint8_t*, off), from, n);
    from += n;
    len -= n;
    off = 0;
  }
}

/// An IPv4 header with room for options, contiguous as rte_ipv4_cksum() needs.
struct Ipv4HdrCopy {
  rte_ipv4_hdr hdr;
  uint8_t options[40];
};
static_assert(offsetof(Ipv4HdrCopy, options) == sizeof(rte_ipv4_hdr));

/// If the frame asks the NIC for IPv4/TCP/UDP checksums, computes them here and
/// clears those offload flags: otherwise the NIC would recompute them over the
/// corrupted bytes and the corruption would arrive undetected. Returns false if
/// the frame's checksums cannot be finished here (IPv6, SCTP, tunnels, bad
/// l2_len/l3_len); the caller then leaves the frame alone.
bool finish_tx_checksums(rte_mbuf* m) {
  const uint64_t flags = m->ol_flags;
  const uint64_t l4 = flags & RTE_MBUF_F_TX_L4_MASK;
  const bool ip = (flags & RTE_MBUF_F_TX_IP_CKSUM) != 0;
  if (!ip && l4 == RTE_MBUF_F_TX_L4_NO_CKSUM) return true;
  // keel sends plain IPv4; anything else we would have to get right for nothing.
  if ((flags & (RTE_MBUF_F_TX_IPV6 | RTE_MBUF_F_TX_TUNNEL_MASK | RTE_MBUF_F_TX_OUTER_IP_CKSUM |
                RTE_MBUF_F_TX_OUTER_UDP_CKSUM)) != 0 ||
      l4 == RTE_MBUF_F_TX_SCTP_CKSUM)
    return false;

  const uint32_t l2 = m->l2_len, l3 = m->l3_len;
  if (l2 == 0 || l3 < sizeof(rte_ipv4_hdr) || l3 > sizeof(Ipv4HdrCopy) || l2 + l3 > m->pkt_len)
    return false;
  Ipv4HdrCopy h;
  const void* p = rte_pktmbuf_read(m, l2, l3, &h);
  if (p == nullptr) return false;
  if (p != &h) std::memcpy(&h, p, l3);
  const uint32_t total_len = rte_be_to_cpu_16(h.hdr.total_length);
  if ((h.hdr.version_ihl >> 4) != 4 || rte_ipv4_hdr_len(&h.hdr) != l3 || total_len < l3 ||
      l2 + total_len > m->pkt_len)
    return false;
  uint32_t l4_field = 0;
  if (l4 != RTE_MBUF_F_TX_L4_NO_CKSUM) {
    const bool tcp = l4 == RTE_MBUF_F_TX_TCP_CKSUM;
    if (h.hdr.next_proto_id != (tcp ? ip_proto_tcp : ip_proto_udp)) return false;
    l4_field = l3 + (tcp ? tcp_checksum_offset : udp_checksum_offset);
    if (l4_field + 2 > total_len) return false;
  }

  if (ip) {
    h.hdr.hdr_checksum = 0;
    const uint16_t cksum = rte_ipv4_cksum(&h.hdr);
    h.hdr.hdr_checksum = cksum;
    write_bytes(m, l2 + ipv4_field::checksum, &cksum, sizeof cksum);
  }
  if (l4_field != 0) {
    // The offload convention leaves the pseudo-header sum in the field: zero it
    // so the sum over the segment is the plain one.
    const uint16_t zero = 0;
    write_bytes(m, l2 + l4_field, &zero, sizeof zero);
    const uint16_t cksum = rte_ipv4_udptcp_cksum_mbuf(m, &h.hdr, uint16_t(l2 + l3));
    write_bytes(m, l2 + l4_field, &cksum, sizeof cksum);
  }
  m->ol_flags &= ~(RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_L4_MASK);
  return true;
}

/// Heap order: a "less than" that puts the earliest release (then the earliest
/// arrival) at the front of std::push_heap's max-heap.
struct Later {
  template <class H>
  bool operator()(const H& a, const H& b) const {
    return a.release_ns != b.release_ns ? a.release_ns > b.release_ns : a.seq > b.seq;
  }
};

}  // namespace

// ---------------------------------------------------------------- FaultConfig

bool FaultConfig::enabled() const {
  return drop > 0 || duplicate > 0 || reorder > 0 || corrupt > 0 || delay_ns > 0 || jitter_ns > 0;
}

Result<FaultConfig, std::string> FaultConfig::parse(std::string_view spec) {
  FaultConfig c;
  spec = trim(spec);
  if (spec.empty()) return c;
  auto error = [](std::string msg) { return Unexpected<std::string>{"fault spec: " + std::move(msg)}; };
  while (true) {
    const size_t comma = spec.find(',');
    const std::string_view item = trim(spec.substr(0, comma));
    const size_t eq = item.find('=');
    if (item.empty()) return error("empty item (stray comma?)");
    if (eq == std::string_view::npos) return error("'" + std::string(item) + "' is not key=value");
    const std::string_view key = trim(item.substr(0, eq)), value = trim(item.substr(eq + 1));
    auto bad = [&](std::string_view want) {
      return error("bad value '" + std::string(value) + "' for '" + std::string(key) + "' (want " +
                   std::string(want) + ")");
    };
    constexpr std::string_view want_prob = "a probability like 5% or 0.05";
    constexpr std::string_view want_time = "a time like 40ms, 250us, 1s";
    uint64_t u;
    if (key == "drop") {
      if (!parse_probability(value, c.drop)) return bad(want_prob);
    } else if (key == "dup" || key == "duplicate") {
      if (!parse_probability(value, c.duplicate)) return bad(want_prob);
    } else if (key == "reorder") {
      if (!parse_probability(value, c.reorder)) return bad(want_prob);
    } else if (key == "corrupt") {
      if (!parse_probability(value, c.corrupt)) return bad(want_prob);
    } else if (key == "delay") {
      if (!parse_duration(value, c.delay_ns)) return bad(want_time);
    } else if (key == "jitter") {
      if (!parse_duration(value, c.jitter_ns)) return bad(want_time);
    } else if (key == "reorder_delay") {
      if (!parse_duration(value, c.reorder_delay_ns)) return bad(want_time);
    } else if (key == "max_held") {
      if (!parse_uint(value, UINT32_MAX, u) || u == 0) return bad("an integer from 1 to 4294967295");
      c.max_held = uint32_t(u);
    } else if (key == "seed") {
      if (!parse_uint(value, UINT64_MAX, c.seed)) return bad("an unsigned integer");
    } else {
      return error("unknown key '" + std::string(key) +
                   "' (known: drop, dup, reorder, corrupt, delay, jitter, reorder_delay, max_held, seed)");
    }
    if (comma == std::string_view::npos) break;
    spec.remove_prefix(comma + 1);
  }
  return c;
}

std::string FaultConfig::to_string() const {
  const FaultConfig def;
  std::string s;
  if (drop > 0) append_percent(s, "drop", drop);
  if (duplicate > 0) append_percent(s, "dup", duplicate);
  if (reorder > 0) append_percent(s, "reorder", reorder);
  if (corrupt > 0) append_percent(s, "corrupt", corrupt);
  if (delay_ns > 0) append_duration(s, "delay", delay_ns);
  if (jitter_ns > 0) append_duration(s, "jitter", jitter_ns);
  if (reorder_delay_ns != def.reorder_delay_ns) append_duration(s, "reorder_delay", reorder_delay_ns);
  if (max_held != def.max_held) s.append("max_held=").append(std::to_string(max_held)).append(",");
  s.append("seed=").append(std::to_string(seed));
  return s;
}

// ---------------------------------------------------------------- FaultInjector

FaultInjector::FaultInjector(const FaultConfig& config, engine::Counters& counters)
    : cfg_(config), counters_(counters), heap_(new Held[config.max_held]) {
  // xoshiro256** seeded through splitmix64, so nearby seeds give unrelated streams.
  uint64_t x = cfg_.seed;
  for (uint64_t& w : rng_) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    w = z ^ (z >> 31);
  }
}

FaultInjector::~FaultInjector() {
  for (size_t i = 0; i < size_; ++i) rte_pktmbuf_free(heap_[i].m);
}

uint64_t FaultInjector::next_random() {
  uint64_t* s = rng_;
  const uint64_t result = std::rotl(s[1] * 5, 7) * 9;
  const uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = std::rotl(s[3], 45);
  return result;
}

bool FaultInjector::chance(double p) {
  if (p <= 0) return false;
  if (p >= 1) return true;
  return double(next_random() >> 11) * 0x1.0p-53 < p;
}

uint64_t FaultInjector::next_due_ns() const { return size_ == 0 ? UINT64_MAX : heap_[0].release_ns; }

bool FaultInjector::hold(rte_mbuf* m, uint64_t release_ns) {
  if (size_ >= cfg_.max_held) {
    rte_pktmbuf_free(m);
    counters_.inc(Counter::fault_queue_full);
    return false;
  }
  heap_[size_++] = Held{release_ns, next_seq_++, m};
  std::push_heap(heap_.get(), heap_.get() + size_, Later{});
  return true;
}

uint16_t FaultInjector::drain(rte_mbuf** out, uint16_t cap, uint64_t now_ns) {
  now_ns = monotonic(now_ns);
  uint16_t n = 0;
  while (n < cap && size_ > 0 && heap_[0].release_ns <= now_ns) {
    std::pop_heap(heap_.get(), heap_.get() + size_, Later{});
    out[n++] = heap_[--size_].m;
  }
  return n;
}

rte_mbuf* FaultInjector::corrupt(rte_mbuf* m) {
  // TSO: the NIC rewrites headers and checksums per segment; nothing we flip survives intact.
  if ((m->ol_flags & RTE_MBUF_F_TX_TCP_SEG) != 0 || m->pkt_len <= eth_hdr_len) return m;
  if (!writable(m)) {
    // Shared data (a clone of a TCP send-queue buffer): corrupt a private copy, or
    // the retransmission would carry the same damage.
    rte_mbuf* copy = rte_pktmbuf_copy(m, m->pool, 0, UINT32_MAX);
    if (copy == nullptr) {
      counters_.inc(Counter::mbuf_alloc_failed);
      return m;
    }
    rte_pktmbuf_free(m);
    m = copy;
  }
  if (!finish_tx_checksums(m)) return m;

  const uint64_t r = next_random();
  // Low 3 bits pick the bit; the byte comes from the rest (r & ~7 is still uniform).
  uint32_t off = eth_hdr_len + uint32_t(mul_hi(r & ~uint64_t(7), m->pkt_len - eth_hdr_len));
  const uint8_t bit = uint8_t(1u << (r & 7));
  for (rte_mbuf* s = m; s != nullptr; s = s->next) {
    if (off < s->data_len) {
      *rte_pktmbuf_mtod_offset(s, uint8_t*, off) ^= bit;
      break;
    }
    off -= s->data_len;
  }
  // On receive: the NIC's "checksum good" no longer holds; make the stack verify.
  m->ol_flags &= ~(RTE_MBUF_F_RX_IP_CKSUM_MASK | RTE_MBUF_F_RX_L4_CKSUM_MASK |
                   RTE_MBUF_F_RX_OUTER_L4_CKSUM_MASK);
  counters_.inc(Counter::fault_corrupted);
  return m;
}

uint16_t FaultInjector::process(rte_mbuf** pkts, uint16_t n, rte_mbuf** out, uint16_t cap,
                                uint64_t now_ns) {
  now_ns = monotonic(now_ns);
  // Held frames already due leave first: they arrived before anything in pkts.
  uint16_t out_n = drain(out, cap, now_ns);
  bool backlog = size_ > 0 && heap_[0].release_ns <= now_ns;  // due frames that did not fit

  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    if (chance(cfg_.drop)) {
      rte_pktmbuf_free(m);
      counters_.inc(Counter::fault_dropped);
      continue;
    }
    rte_mbuf* frames[2] = {m, nullptr};
    if (chance(cfg_.duplicate)) {
      // A real copy, not a clone: later header edits or corruption must not alias.
      frames[1] = rte_pktmbuf_copy(m, m->pool, 0, UINT32_MAX);
      counters_.inc(frames[1] != nullptr ? Counter::fault_duplicated : Counter::mbuf_alloc_failed);
    }
    for (rte_mbuf* f : frames) {
      if (f == nullptr) continue;
      if (chance(cfg_.corrupt)) f = corrupt(f);
      uint64_t delay = cfg_.delay_ns;
      if (cfg_.jitter_ns > 0) {
        const uint64_t r = next_random();
        delay = sat_add(delay, cfg_.jitter_ns == UINT64_MAX ? r : mul_hi(r, cfg_.jitter_ns + 1));
      }
      if (delay > 0) counters_.inc(Counter::fault_delayed);
      if (chance(cfg_.reorder)) {
        delay = sat_add(delay, cfg_.reorder_delay_ns);
        counters_.inc(Counter::fault_reordered);
      }
      const uint64_t release = sat_add(now_ns, delay);
      if (release <= now_ns && !backlog && out_n < cap) {
        out[out_n++] = f;
      } else if (hold(f, release) && release <= now_ns) {
        backlog = true;  // later due frames queue behind this one
      }
    }
  }
  return out_n;
}

}  // namespace keel::drivers
