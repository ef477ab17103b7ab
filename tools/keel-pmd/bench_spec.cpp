// SPDX-License-Identifier: BSD-3-Clause
#include "bench_spec.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace keel::pmd {

namespace {

const char* usage_for(BenchKind k) {
  switch (k) {
    case BenchKind::rr: return "usage: bench rr ADDR PORT SIZE [CONNS [SECONDS]]";
    case BenchKind::crr: return "usage: bench crr ADDR PORT SIZE [CONNS [SECONDS]]";
    case BenchKind::stream: return "usage: bench stream ADDR PORT [CONNS [SECONDS]]";
    case BenchKind::http: return "usage: bench http ADDR PORT PATH [CONNS [SECONDS]]";
    case BenchKind::idle:
    case BenchKind::idle_close: return "usage: bench idle ADDR PORT N | bench idle close";
  }
  return "";
}

constexpr const char* limits =
    " (PORT 1..65535, SIZE 1..1048576, CONNS/N 1..16384, SECONDS > 0 up to 3600, PATH from '/')";

bool parse_uint(const std::string& s, uint64_t& out, uint64_t min, uint64_t max) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || p != s.data() + s.size() || v < min || v > max) return false;
  out = v;
  return true;
}

bool parse_seconds(const std::string& s, double& out) {
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, std::chars_format::fixed);
  if (s.empty() || ec != std::errc{} || p != s.data() + s.size() || !std::isfinite(v) || v <= 0 ||
      v > bench_max_seconds)
    return false;
  out = v;
  return true;
}

// An origin-form target we can put on a request line as it is.
bool good_path(const std::string& s) {
  if (s.empty() || s[0] != '/') return false;
  for (unsigned char ch : s)
    if (ch <= 0x20 || ch >= 0x7f) return false;
  return true;
}

}  // namespace

const char* to_string(BenchKind k) {
  switch (k) {
    case BenchKind::rr: return "rr";
    case BenchKind::crr: return "crr";
    case BenchKind::stream: return "stream";
    case BenchKind::http: return "http";
    case BenchKind::idle:
    case BenchKind::idle_close: return "idle";
  }
  return "?";
}

Result<BenchArgs, std::string> parse_bench_args(const std::vector<std::string>& w) {
  using Err = Unexpected<std::string>;
  BenchArgs a;
  const std::string kind = w.size() >= 2 ? w[1] : "";
  if (kind == "rr") a.kind = BenchKind::rr;
  else if (kind == "crr") a.kind = BenchKind::crr;
  else if (kind == "stream") a.kind = BenchKind::stream;
  else if (kind == "http") a.kind = BenchKind::http;
  else if (kind == "idle")
    a.kind = w.size() == 3 && w[2] == "close" ? BenchKind::idle_close : BenchKind::idle;
  else
    return Err{"usage: bench rr|crr ADDR PORT SIZE [CONNS [SECONDS]] | bench stream ADDR PORT "
               "[CONNS [SECONDS]] | bench http ADDR PORT PATH [CONNS [SECONDS]] | bench idle ADDR "
               "PORT N | bench idle close"};
  const Err usage{std::string(usage_for(a.kind)) + limits};
  if (a.kind == BenchKind::idle_close) return a;

  // Fixed words: bench KIND ADDR PORT [SIZE|PATH|N]; then optional CONNS, SECONDS.
  const size_t fixed = a.kind == BenchKind::stream ? 4 : 5;
  const size_t most = a.kind == BenchKind::idle ? fixed : fixed + 2;
  if (w.size() < fixed || w.size() > most) return usage;
  auto dst = net::Ipv4Addr::parse(w[2]);
  uint64_t v = 0;
  if (!dst || !parse_uint(w[3], v, 1, 65535)) return usage;
  a.dst = *dst;
  a.port = uint16_t(v);
  switch (a.kind) {
    case BenchKind::rr:
    case BenchKind::crr:
      if (!parse_uint(w[4], v, 1, bench_max_size)) return usage;
      a.size = uint32_t(v);
      break;
    case BenchKind::http:
      if (!good_path(w[4])) return usage;
      a.path = w[4];
      break;
    case BenchKind::idle:
      if (!parse_uint(w[4], v, 1, bench_max_conns)) return usage;
      a.conns = unsigned(v);
      return a;
    default: break;
  }
  if (w.size() > fixed) {
    if (!parse_uint(w[fixed], v, 1, bench_max_conns)) return usage;
    a.conns = unsigned(v);
  }
  if (w.size() > fixed + 1 && !parse_seconds(w[fixed + 1], a.seconds)) return usage;
  return a;
}

double bench_warmup_seconds(double seconds) { return std::min(1.0, seconds / 5); }

std::string bench_summary(const BenchArgs& a, const BenchResult& r) {
  char buf[512];
  const double s = r.seconds;
  const double rate = s > 0 ? double(r.ops) / s : 0;
  auto us = [&](double q) { return double(r.latency.quantile(q)) / 1e3; };
  auto ull = [](uint64_t v) { return (unsigned long long)v; };
  switch (a.kind) {
    case BenchKind::rr:
      std::snprintf(buf, sizeof buf,
                    "bench rr: size=%u conns=%u seconds=%.2f transactions=%llu tps=%.1f p50_us=%.2f "
                    "p99_us=%.2f p999_us=%.2f max_us=%.2f errors=%llu",
                    a.size, a.conns, s, ull(r.ops), rate, us(0.5), us(0.99), us(0.999),
                    double(r.latency.max()) / 1e3, ull(r.errors));
      break;
    case BenchKind::crr:
      std::snprintf(buf, sizeof buf,
                    "bench crr: size=%u seconds=%.2f connections=%llu cps=%.1f p50_us=%.2f "
                    "p99_us=%.2f p999_us=%.2f errors=%llu",
                    a.size, s, ull(r.ops), rate, us(0.5), us(0.99), us(0.999), ull(r.errors));
      break;
    case BenchKind::stream:
      std::snprintf(buf, sizeof buf,
                    "bench stream: conns=%u seconds=%.2f bytes=%llu gbps=%.2f retransmits=%llu",
                    a.conns, s, ull(r.bytes), s > 0 ? double(r.bytes) * 8 / 1e9 / s : 0.0,
                    ull(r.retransmits));
      break;
    case BenchKind::http:
      std::snprintf(buf, sizeof buf,
                    "bench http: conns=%u seconds=%.2f requests=%llu rps=%.1f p50_us=%.2f "
                    "p99_us=%.2f p999_us=%.2f errors=%llu non2xx=%llu",
                    a.conns, s, ull(r.ops), rate, us(0.5), us(0.99), us(0.999), ull(r.errors),
                    ull(r.non2xx));
      break;
    default: return "bench: no summary for idle";
  }
  std::string line = buf;
  if (!r.failure.empty()) line += " FAILED (" + r.failure + ")";
  else if (r.errors > 0)
    line += " FAILED (" + std::to_string(r.errors) + " connection(s) reset, refused or timed out)";
  else line += " ok";
  return line;
}

}  // namespace keel::pmd
