// SPDX-License-Identifier: BSD-3-Clause
#pragma once
// The pure half of keel-pmd's `bench` commands: their arguments and their
// summary line. The summary is the format perf/run parses for keel and for the
// kernel alike (docs: perf/, README "Benchmarks"), so it is built in one place
// and unit tested.

#include <cstdint>
#include <string>
#include <vector>

#include <keel/result.hpp>

#include "latency_histogram.hpp"
#include "net/addresses.hpp"

namespace keel::pmd {

enum class BenchKind : uint8_t { rr, crr, stream, http, idle, idle_close };

const char* to_string(BenchKind k);

/// One `bench` command line, validated.
struct BenchArgs {
  BenchKind kind = BenchKind::rr;
  net::Ipv4Addr dst;
  uint16_t port = 0;
  uint32_t size = 0;     ///< rr, crr: request (= response) bytes
  std::string path;      ///< http: the target, starts with '/'
  unsigned conns = 1;    ///< connections (crr: parallel slots; idle: N)
  double seconds = 3.0;  ///< measured window, warm-up not included
};

inline constexpr unsigned bench_max_conns = 16384;  ///< TcpConfig::max_connections
inline constexpr uint32_t bench_max_size = 1u << 20;
inline constexpr double bench_max_seconds = 3600;

/// Parses `bench KIND ...` (w[0] == "bench"). The error is the usage text for
/// the kind (all kinds when the kind is unknown), without "error: ".
Result<BenchArgs, std::string> parse_bench_args(const std::vector<std::string>& w);

/// The warm-up before the measured window: min(1 s, seconds / 5).
double bench_warmup_seconds(double seconds);

/// What a run measured (over the window after the warm-up).
struct BenchResult {
  double seconds = 0;
  uint64_t ops = 0;          ///< transactions, connections or requests
  uint64_t bytes = 0;        ///< stream: bytes acknowledged
  uint64_t errors = 0;       ///< connections reset, refused or timed out (whole run)
  uint64_t non2xx = 0;       ///< http
  uint64_t retransmits = 0;  ///< segments the client retransmitted in the window
  tools::LatencyHistogram latency;
  std::string failure;       ///< non-empty: why the run is not ok (besides errors)
};

/// The one summary line (no newline), e.g.
///   bench rr: size=64 conns=1 seconds=3.00 transactions=123456 tps=41152.0 p50_us=21.30
///     p99_us=40.10 p999_us=80.20 max_us=950.00 errors=0 ok
/// ending "FAILED (why)" when errors > 0 or r.failure is set.
std::string bench_summary(const BenchArgs& a, const BenchResult& r);

}  // namespace keel::pmd
