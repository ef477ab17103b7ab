// SPDX-License-Identifier: BSD-3-Clause
// keel-pmd's traffic commands: `stream` (bulk data into a discard service) and
// `echotest` (echo round trips, every byte checked). Both run a Workload from
// instance 0, print its live table while waiting, and end with one summary
// line that says "ok" or "FAILED" (what the tests look for). And `bench`
// (bench_spec.hpp: rr, crr, stream, http for a time; idle connections).
#include <charconv>
#include <cstdio>
#include <optional>

#include "bench_client.hpp"
#include "bench_run.hpp"
#include "bench_spec.hpp"
#include "cli.hpp"
#include "workload.hpp"

namespace keel::pmd {

namespace {

template <class T>
bool parse_num(const std::string& s, T& out, unsigned long long min, unsigned long long max) {
  unsigned long long v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || p != s.data() + s.size() || v < min || v > max)
    return false;
  out = T(v);
  return true;
}

// Why a workload that is not intact failed, for the summary line.
std::string failure(const WorkloadResult& r, const WorkloadSpec& s) {
  if (r.stalled) return "FAILED (no progress for " + std::to_string(s.stall_seconds) + " s)";
  if (r.timed_out) return "FAILED (time limit)";
  if (r.mismatches != 0) return "FAILED (corrupt bytes)";
  if (r.failed != 0)
    return "FAILED (" + std::to_string(r.failed) + " connection(s) reset or timed out)";
  return "FAILED (short)";
}

// Starts `spec`, waits, and returns the result; nullopt (after an error line) if it did not start.
std::optional<WorkloadResult> run(engine::Engine& e, const WorkloadSpec& spec, const char* cmd,
                                  std::ostream& out) {
  auto w = Workload::start(e, {&e}, spec);
  if (!w) {
    out << "error: " << cmd << ": " << w.error() << "\n";
    return std::nullopt;
  }
  return (*w)->wait(out);  // what is still open when it gives up is aborted here
}

}  // namespace

void Cli::stream(const std::vector<std::string>& w, std::ostream& out) {
  WorkloadSpec spec;
  spec.streams = 1;
  auto dst = w.size() >= 4 ? net::Ipv4Addr::parse(w[1]) : std::nullopt;
  if (!dst || w.size() > 5 || !parse_num(w[2], spec.stream_port, 1, 65535) ||
      !parse_num(w[3], spec.stream_bytes, 1, 1ull << 40) ||
      (w.size() == 5 && !parse_num(w[4], spec.streams, 1, 1000))) {
    out << "error: usage: stream ADDR PORT BYTES [CONNS] (PORT 1..65535, BYTES 1..2^40 per "
           "connection, CONNS 1..1000)\n";
    return;
  }
  spec.dst = *dst;
  auto r = run(engine_, spec, "stream", out);
  if (!r) return;
  char line[256];
  std::snprintf(line, sizeof line,
                "stream: %llu of %llu bytes acknowledged in %.2f s (%.2f Gbit/s), %u/%u "
                "connections done, %llu retransmits, ",
                (unsigned long long)r->stream_bytes,
                (unsigned long long)(spec.stream_bytes * spec.streams), r->seconds, r->gbit_per_s(),
                r->done, r->conns, (unsigned long long)r->retransmits);
  out << line << (r->intact(spec) ? "ok" : failure(*r, spec)) << "\n";
}

void Cli::echotest(const std::vector<std::string>& w, std::ostream& out) {
  WorkloadSpec spec;
  spec.echoes = 1;
  auto dst = w.size() >= 5 ? net::Ipv4Addr::parse(w[1]) : std::nullopt;
  if (!dst || w.size() > 6 || !parse_num(w[2], spec.echo_port, 1, 65535) ||
      !parse_num(w[3], spec.echo_size, 1, 1u << 24) ||
      !parse_num(w[4], spec.echo_rounds, 1, 10'000'000) ||
      (w.size() == 6 && !parse_num(w[5], spec.echoes, 1, 10000))) {
    out << "error: usage: echotest ADDR PORT SIZE ROUNDS [CONNS] (SIZE 1..16777216, ROUNDS "
           "1..10000000, CONNS 1..10000)\n";
    return;
  }
  spec.dst = *dst;
  auto r = run(engine_, spec, "echotest", out);
  if (!r) return;
  uint64_t want = uint64_t(spec.echoes) * spec.echo_size * spec.echo_rounds;
  char line[256];
  std::snprintf(line, sizeof line,
                "echotest: %u/%u connections intact, %llu of %llu bytes verified in %.2f s "
                "(%.0f round trips/s), %u corrupt bytes, %llu retransmits, ",
                r->done, r->conns, (unsigned long long)r->echo_bytes, (unsigned long long)want,
                r->seconds,
                r->seconds > 0 ? double(r->echo_bytes) / spec.echo_size / r->seconds : 0.0,
                r->mismatches, (unsigned long long)r->retransmits);
  out << line << (r->intact(spec) ? "ok" : failure(*r, spec)) << "\n";
}

void Cli::bench(const std::vector<std::string>& w, std::ostream& out) {
  auto a = parse_bench_args(w);
  if (!a) {
    out << "error: " << a.error() << "\n";
    return;
  }
  if (a->kind == BenchKind::idle || a->kind == BenchKind::idle_close) return bench_idle(*a, out);
  tcp::TcpStack& t = engine_.tcp(0);
  std::shared_ptr<BenchClient> c;
  switch (a->kind) {
    case BenchKind::rr: c = make_rr_client(t, *a); break;
    case BenchKind::crr:
      c = make_crr_client(t, *a);
      out << "crr: client TIME-WAIT 20 ms for this run (MSL lowered to 10 ms on instance 0, "
             "restored afterwards) so that ephemeral ports and TCBs are reused\n";
      break;
    case BenchKind::stream: c = make_stream_client(t, *a); break;
    case BenchKind::http: c = make_http_client(t, *a); break;
    default: return;
  }
  out << bench_summary(*a, run_bench(engine_, c, out)) << "\n";
}

void Cli::bench_idle(const BenchArgs& a, std::ostream& out) {
  if (a.kind == BenchKind::idle_close) {
    if (idle_ == nullptr) {
      out << "bench idle: no idle connections\n";
      return;
    }
    uint32_t n = idle_->established.load();
    if (!stop_bench(engine_, idle_)) {
      out << "error: bench idle close: instance 0 not responding\n";
      return;
    }
    idle_.reset();
    out << "bench idle: aborted " << n << " connections (RST: none left in TIME-WAIT)\n";
    return;
  }
  if (idle_ != nullptr) {
    out << "error: bench idle: " << idle_->args().conns
        << " idle connections are open already (bench idle close first)\n";
    return;
  }
  idle_ = make_idle_client(engine_.tcp(0), a);
  auto t0 = engine::now_ns();
  std::string why = start_and_wait_ready(engine_, idle_, out);
  uint64_t errors = idle_->errors.load();
  char line[200];
  std::snprintf(line, sizeof line, "bench idle: conns=%u established=%u seconds=%.2f errors=%llu ",
                a.conns, idle_->established.load(), double(engine::now_ns() - t0) / 1e9,
                (unsigned long long)errors);
  out << line;
  if (!why.empty()) out << "FAILED (" << why << ")\n";
  else if (errors > 0) out << "FAILED (" << errors << " connection(s) reset, refused or timed out)\n";
  else out << "ok\n";
  // The connections stay open (those that failed are gone) until `bench idle close`.
}

}  // namespace keel::pmd
