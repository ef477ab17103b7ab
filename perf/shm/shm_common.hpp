// SPDX-License-Identifier: BSD-3-Clause
#pragma once
// What perf/shm's two programs share, so that keel (shm_bench) and the kernel
// (kshm) run exactly the same patterns and print the same summary lines:
//
//  - the protocol: a server listens on a base port P (TCP) or a directory
//    (Unix sockets): P / DIR/echo.sock echoes every byte back (rr), P+1 /
//    DIR/sink.sock takes a stream, checks every byte against the pattern and,
//    at the client's end of stream (FIN / shutdown), answers one line
//    "total=BYTES bad=BYTES\n" and closes: the client's clock stops when that
//    line arrives, so a bulk figure counts only bytes the server has taken;
//  - the stream's content: byte i of a stream is i mod 251 (Pattern);
//  - the run's clock (Phases): a warm-up of min(1 s, SECONDS/5), then SECONDS
//    measured, a live line each second;
//  - the summary lines, `bench KIND: key=value ... ok|FAILED (why)`, which
//    perf/lib/perflab/benches.py parses (every value a number).
#include <time.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "tools/common/latency_histogram.hpp"

namespace shmbench {

using keel::tools::LatencyHistogram;

inline uint64_t mono_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000u + uint64_t(ts.tv_nsec);
}

/// Byte i of every stream is i mod 251 (a period prime to every power of two,
/// so a misplaced or repeated chunk does not line up by chance).
class Pattern {
 public:
  static constexpr unsigned period = 251;
  explicit Pattern(size_t max_piece = 1 << 20) : bytes_(max_piece + period) {
    for (size_t i = 0; i < bytes_.size(); ++i) bytes_[i] = uint8_t(i % period);
  }
  /// The pattern from stream offset `off` on, at least max_piece bytes long.
  const uint8_t* at(uint64_t off) const { return bytes_.data() + off % period; }
  size_t max_piece() const { return bytes_.size() - period; }
  /// Writes the pattern's bytes [off, off + len) into dst.
  void fill(uint8_t* dst, size_t len, uint64_t off) const {
    while (len > 0) {
      size_t n = std::min(len, max_piece());
      std::memcpy(dst, at(off), n);
      dst += n;
      off += n;
      len -= n;
    }
  }
  /// How many of src's len bytes differ from the pattern at `off` (0: all good;
  /// a mismatching piece counts whole).
  uint64_t check(const uint8_t* src, size_t len, uint64_t off) const {
    uint64_t bad = 0;
    while (len > 0) {
      size_t n = std::min(len, max_piece());
      if (std::memcmp(src, at(off), n) != 0) bad += n;
      src += n;
      off += n;
      len -= n;
    }
    return bad;
  }

 private:
  std::vector<uint8_t> bytes_;
};

/// The run's clock: warm-up of min(1 s, SECONDS/5), then SECONDS measured.
struct Phases {
  Phases() = default;
  explicit Phases(double seconds, uint64_t t) {
    start = t;
    double warm = std::min(1.0, seconds / 5);
    measure_from = start + uint64_t(warm * 1e9);
    end = measure_from + uint64_t(seconds * 1e9);
    next_tick = start + 1'000'000'000ull;
  }
  bool measuring(uint64_t t) const { return t >= measure_from && t < end; }
  bool warming(uint64_t t) const { return t < measure_from; }
  uint64_t start = 0, measure_from = 0, end = 0, next_tick = 0;
  unsigned tick = 0;
};

/// The per-second live table of rr: round trips in the second, its p50/p99.
struct RrTable {
  RrTable() {
    std::printf("%6s %14s %10s %10s\n", "second", "round trips/s", "p50_us", "p99_us");
    std::fflush(stdout);
  }
  void record(uint64_t ns) {
    sec.record(ns);
    ++count;
  }
  void maybe_print(Phases& ph, uint64_t t) {
    if (t < ph.next_tick) return;
    ++ph.tick;
    std::printf("%6u %14llu %10.2f %10.2f%s\n", ph.tick, (unsigned long long)count, double(sec.quantile(0.5)) / 1e3,
                double(sec.quantile(0.99)) / 1e3, ph.next_tick <= ph.measure_from ? "  (warm-up)" : "");
    std::fflush(stdout);
    sec.reset();
    count = 0;
    ph.next_tick += 1'000'000'000ull;
  }
  LatencyHistogram sec;
  uint64_t count = 0;
};

/// The per-second live table of bulk: bytes queued by the client in the second.
struct BulkTable {
  BulkTable() {
    std::printf("%6s %10s\n", "second", "GB/s sent");
    std::fflush(stdout);
  }
  void maybe_print(Phases& ph, uint64_t t, uint64_t sent) {
    if (t < ph.next_tick) return;
    ++ph.tick;
    std::printf("%6u %10.2f%s\n", ph.tick, double(sent - last) / 1e9,
                ph.next_tick <= ph.measure_from ? "  (warm-up)" : "");
    std::fflush(stdout);
    last = sent;
    ph.next_tick += 1'000'000'000ull;
  }
  uint64_t last = 0;
};

inline std::string fixed(double v, int digits) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}
inline std::string us(uint64_t ns) { return fixed(double(ns) / 1e3, 2); }

/// `bench rr: ...` (channel: 1 for a keel channel, 0 otherwise).
inline void print_rr(size_t size, double seconds, uint64_t transactions, const LatencyHistogram& h, int channel,
                     unsigned errors, const std::string& verdict) {
  // mean_us: 1/tps when nothing but round trips took the time; far above p50, a few long
  // stalls (preemptions of a busy-poller) took it.
  std::printf("bench rr: size=%zu conns=1 seconds=%s transactions=%llu tps=%s p50_us=%s p99_us=%s p999_us=%s "
              "max_us=%s mean_us=%s channel=%d errors=%u %s\n",
              size, fixed(seconds, 2).c_str(), (unsigned long long)transactions,
              fixed(double(transactions) / seconds, 1).c_str(), us(h.quantile(0.5)).c_str(),
              us(h.quantile(0.99)).c_str(), us(h.quantile(0.999)).c_str(), us(h.max()).c_str(),
              fixed(h.mean() / 1e3, 2).c_str(), channel, errors, verdict.c_str());
  std::fflush(stdout);
}

/// `bench bulk: ...`: bytes = queued after the warm-up; seconds = from the
/// warm-up's end until the server's report arrived; gb_per_s = bytes / seconds
/// (10^9 bytes); total = everything sent, server_total = what the server took.
inline void print_bulk(size_t chunk, double seconds_asked, uint64_t bytes, double seconds, uint64_t total,
                       uint64_t server_total, uint64_t bad, int channel, int verify, unsigned errors,
                       const std::string& verdict) {
  double gbs = seconds > 0 ? double(bytes) / seconds / 1e9 : 0;
  std::printf("bench bulk: chunk=%zu seconds=%s measured_s=%s bytes=%llu gb_per_s=%s gbit_per_s=%s total=%llu "
              "server_total=%llu bad=%llu verify=%d channel=%d errors=%u %s\n",
              chunk, fixed(seconds_asked, 2).c_str(), fixed(seconds, 4).c_str(), (unsigned long long)bytes,
              fixed(gbs, 3).c_str(), fixed(gbs * 8, 2).c_str(), (unsigned long long)total,
              (unsigned long long)server_total, (unsigned long long)bad, verify, channel, errors, verdict.c_str());
  std::fflush(stdout);
}

/// Parses the sink's report "total=N bad=N\n"; false if `s` is not one (yet).
inline bool parse_report(const std::string& s, uint64_t& total, uint64_t& bad) {
  size_t nl = s.find('\n');
  if (nl == std::string::npos) return false;
  unsigned long long t = 0, b = 0;
  if (std::sscanf(s.c_str(), "total=%llu bad=%llu", &t, &b) != 2) return false;
  total = t;
  bad = b;
  return true;
}
inline std::string make_report(uint64_t total, uint64_t bad) {
  return "total=" + std::to_string(total) + " bad=" + std::to_string(bad) + "\n";
}

inline bool parse_u64(std::string_view s, uint64_t& out, uint64_t min, uint64_t max) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || p != s.data() + s.size() || v < min || v > max) return false;
  out = v;
  return true;
}

/// A size with an optional k/M/G suffix (powers of 1024).
inline bool parse_size(std::string_view s, uint64_t& out, uint64_t min, uint64_t max) {
  uint64_t mul = 1;
  if (!s.empty() && (s.back() == 'k' || s.back() == 'M' || s.back() == 'G')) {
    mul = s.back() == 'k' ? 1024 : s.back() == 'M' ? 1024 * 1024 : 1024ull * 1024 * 1024;
    s.remove_suffix(1);
  }
  uint64_t v = 0;
  if (!parse_u64(s, v, 0, UINT64_MAX / mul)) return false;
  v *= mul;
  if (v < min || v > max) return false;
  out = v;
  return true;
}

inline bool parse_seconds(const std::string& s, double& out) {
  char* end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || *end != '\0' || !(d > 0 && d <= 86400)) return false;
  out = d;
  return true;
}

}  // namespace shmbench
