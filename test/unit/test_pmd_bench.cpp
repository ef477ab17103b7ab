// SPDX-License-Identifier: BSD-3-Clause
// keel-pmd's `bench` commands, the parts that need no network: argument
// parsing, the summary line perf/run parses, and the HTTP response framing of
// `bench http`, fed every way TCP might split the bytes.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "tools/keel-pmd/bench_spec.hpp"
#include "tools/keel-pmd/http_response.hpp"

using namespace keel::pmd;
using Parser = keel::pmd::http::ResponseParser;

namespace {
std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> w;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(' ', i);
    if (j == std::string::npos) j = s.size();
    if (j > i) w.push_back(s.substr(i, j - i));
    i = j + 1;
  }
  return w;
}
auto parse(const std::string& line) { return parse_bench_args(split(line)); }
}  // namespace

// ===== arguments =====

TEST_CASE("bench args: defaults and every optional field", "[pmd][bench]") {
  auto rr = parse("bench rr 198.18.0.1 7 64");
  REQUIRE(rr);
  CHECK(rr->kind == BenchKind::rr);
  CHECK(rr->dst.to_string() == "198.18.0.1");
  CHECK(rr->port == 7);
  CHECK(rr->size == 64);
  CHECK(rr->conns == 1);
  CHECK(rr->seconds == 3.0);

  auto crr = parse("bench crr 198.18.0.1 7 1 16 0.5");
  REQUIRE(crr);
  CHECK(crr->kind == BenchKind::crr);
  CHECK(crr->conns == 16);
  CHECK(crr->seconds == 0.5);

  auto st = parse("bench stream 198.18.0.1 9 10000 2.25");
  REQUIRE(st);
  CHECK(st->kind == BenchKind::stream);
  CHECK(st->conns == 10000);
  CHECK(st->seconds == 2.25);

  auto h = parse("bench http 198.18.0.1 80 /bytes/1024?x=1 64");
  REQUIRE(h);
  CHECK(h->path == "/bytes/1024?x=1");
  CHECK(h->conns == 64);

  auto idle = parse("bench idle 198.18.0.1 9 10000");
  REQUIRE(idle);
  CHECK(idle->kind == BenchKind::idle);
  CHECK(idle->conns == 10000);
  auto close = parse("bench idle close");
  REQUIRE(close);
  CHECK(close->kind == BenchKind::idle_close);
}

TEST_CASE("bench args: bad arguments give the kind's usage", "[pmd][bench]") {
  auto err = [](const std::string& l) {
    auto r = parse(l);
    REQUIRE_FALSE(r);
    return r.error();
  };
  CHECK_THAT(err("bench"), Catch::StartsWith("usage: bench rr|crr"));
  CHECK_THAT(err("bench tcp_rr 1.2.3.4 7 64"), Catch::StartsWith("usage: bench rr|crr"));
  for (const char* bad : {"bench rr 1.2.3.4 7", "bench rr 1.2.3.4 7 0", "bench rr 1.2.3.4 7 1048577",
                          "bench rr 1.2.3.4 0 64", "bench rr 1.2.3.4 65536 64", "bench rr host 7 64",
                          "bench rr 1.2.3.4 7 64 0", "bench rr 1.2.3.4 7 64 16385",
                          "bench rr 1.2.3.4 7 64 1 0", "bench rr 1.2.3.4 7 64 1 -1",
                          "bench rr 1.2.3.4 7 64 1 nan", "bench rr 1.2.3.4 7 64 1 inf",
                          "bench rr 1.2.3.4 7 64 1 3601", "bench rr 1.2.3.4 7 64 1 1s",
                          "bench rr 1.2.3.4 7 64 1 1 extra", "bench rr 1.2.3.4 7 64x"}) {
    INFO(bad);
    CHECK_THAT(err(bad), Catch::StartsWith("usage: bench rr ADDR PORT SIZE [CONNS [SECONDS]]"));
  }
  CHECK_THAT(err("bench stream 1.2.3.4 9 1 2 3"), Catch::StartsWith("usage: bench stream ADDR PORT"));
  for (const char* bad : {"bench http 1.2.3.4 80", "bench http 1.2.3.4 80 index.html",
                          "bench http 1.2.3.4 80 /a\x01"}) {
    INFO(bad);
    CHECK_THAT(err(bad), Catch::StartsWith("usage: bench http ADDR PORT PATH"));
  }
  for (const char* bad : {"bench idle 1.2.3.4 9", "bench idle 1.2.3.4 9 0", "bench idle 1.2.3.4 9 5 1",
                          "bench idle open"}) {
    INFO(bad);
    CHECK_THAT(err(bad), Catch::StartsWith("usage: bench idle ADDR PORT N"));
  }
}

TEST_CASE("bench warm-up: min(1 s, SECONDS / 5)", "[pmd][bench]") {
  CHECK(bench_warmup_seconds(3) == Approx(0.6));
  CHECK(bench_warmup_seconds(0.5) == Approx(0.1));
  CHECK(bench_warmup_seconds(60) == 1.0);
}

// ===== summary line =====

TEST_CASE("bench summary: the shared key=value format", "[pmd][bench]") {
  BenchArgs a;
  a.kind = BenchKind::rr;
  a.size = 64;
  a.conns = 1;
  BenchResult r;
  r.seconds = 3;
  r.ops = 123456;
  for (int i = 0; i < 1000; ++i) r.latency.record(20'000);
  r.latency.record(950'000);
  CHECK(bench_summary(a, r) ==
        "bench rr: size=64 conns=1 seconds=3.00 transactions=123456 tps=41152.0 p50_us=20.10 "
        "p99_us=20.10 p999_us=20.10 max_us=950.00 errors=0 ok");

  a.kind = BenchKind::crr;
  r.errors = 2;
  CHECK(bench_summary(a, r) ==
        "bench crr: size=64 seconds=3.00 connections=123456 cps=41152.0 p50_us=20.10 p99_us=20.10 "
        "p999_us=20.10 errors=2 FAILED (2 connection(s) reset, refused or timed out)");

  a.kind = BenchKind::stream;
  r = BenchResult{};
  r.seconds = 2;
  r.bytes = 2'500'000'000;
  r.retransmits = 7;
  CHECK(bench_summary(a, r) ==
        "bench stream: conns=1 seconds=2.00 bytes=2500000000 gbps=10.00 retransmits=7 ok");

  a.kind = BenchKind::http;
  a.conns = 64;
  r = BenchResult{};
  r.failure = "set-up stalled: 3 of 64 connections established";
  CHECK(bench_summary(a, r) ==
        "bench http: conns=64 seconds=0.00 requests=0 rps=0.0 p50_us=0.00 p99_us=0.00 "
        "p999_us=0.00 errors=0 non2xx=0 FAILED (set-up stalled: 3 of 64 connections established)");
}

// ===== HTTP response framing =====

namespace {
struct Seen {
  std::vector<int> statuses;
  std::vector<bool> closes;
  std::string error;
  size_t consumed = 0;
};

// Feeds `chunks` in order, the way on_readable sees segments.
Seen feed_all(Parser& p, const std::vector<std::string>& chunks) {
  Seen s;
  for (const auto& c : chunks) {
    std::string_view in = c;
    while (!in.empty()) {
      size_t used = 0;
      auto st = p.feed(in, used);
      s.consumed += used;
      in.remove_prefix(used);
      if (st == Parser::Status::complete) {
        s.statuses.push_back(p.status());
        s.closes.push_back(p.close());
      } else if (st == Parser::Status::error) {
        s.error = p.error();
        return s;
      } else {
        REQUIRE(in.empty());  // incomplete means everything was taken
      }
    }
  }
  return s;
}

const std::string two =
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: keel\r\n\r\nhello"
    "HTTP/1.1 404 Not Found\r\ncontent-length:   3 \r\nConnection: keep-alive, Close\r\n\r\nno!";
}  // namespace

TEST_CASE("http response: two responses split at every byte boundary", "[pmd][bench]") {
  for (size_t cut1 = 0; cut1 <= two.size(); ++cut1)
    for (size_t cut2 = cut1; cut2 <= two.size(); cut2 += 7) {
      INFO("cuts " << cut1 << " " << cut2);
      Parser p;
      auto s = feed_all(p, {two.substr(0, cut1), two.substr(cut1, cut2 - cut1), two.substr(cut2)});
      REQUIRE(s.error.empty());
      REQUIRE(s.statuses == std::vector<int>{200, 404});
      CHECK(s.closes == std::vector<bool>{false, true});
      CHECK(s.consumed == two.size());
    }
}

TEST_CASE("http response: one byte at a time, large body counted not copied", "[pmd][bench]") {
  std::string r = "HTTP/1.1 200 OK\nContent-Length: 100000\n\n" + std::string(100000, 'x') +
                  "HTTP/1.1 204 No Content\r\n\r\n" + "HTTP/1.0 304 Not Modified\r\n\r\n";
  std::vector<std::string> bytes;
  for (char ch : r.substr(0, 60)) bytes.emplace_back(1, ch);
  bytes.push_back(r.substr(60));
  Parser p;
  auto s = feed_all(p, bytes);
  REQUIRE(s.error.empty());
  CHECK(s.statuses == std::vector<int>{200, 204, 304});
  CHECK(s.closes == std::vector<bool>{false, false, true});  // HTTP/1.0: close by default
}

TEST_CASE("http response: interim 1xx responses are skipped", "[pmd][bench]") {
  Parser p;
  auto s = feed_all(p, {"HTTP/1.1 100 Continue\r\n\r\n"
                        "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"});
  REQUIRE(s.error.empty());
  CHECK(s.statuses == std::vector<int>{201});
}

TEST_CASE("http response: what cannot be framed is an error", "[pmd][bench]") {
  auto error_of = [](const std::string& r) {
    Parser p;
    return feed_all(p, {r}).error;
  };
  CHECK_THAT(error_of("HTTP/1.1 200 OK\r\n\r\nbody"), Catch::Contains("no Content-Length"));
  CHECK_THAT(error_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
             Catch::Contains("Transfer-Encoding"));
  CHECK_THAT(error_of("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
             Catch::Contains("Content-Length"));
  CHECK_THAT(error_of("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"),
             Catch::Contains("Content-Length"));
  CHECK_THAT(error_of("HTTP/2 200\r\n\r\n"), Catch::Contains("status line"));
  CHECK_THAT(error_of("HTTP/1.1 2x0 OK\r\n\r\n"), Catch::Contains("status"));
  CHECK_THAT(error_of("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"), Catch::Contains("header line"));
  CHECK_THAT(error_of("HTTP/1.1 200 OK\r\nX: " + std::string(9000, 'a')), Catch::Contains("8 KiB"));
  // The same header section split in two still hits the limit.
  Parser p;
  auto s = feed_all(p, {"HTTP/1.1 200 OK\r\nX: " + std::string(5000, 'a'), std::string(5000, 'a')});
  CHECK_THAT(s.error, Catch::Contains("8 KiB"));
}
