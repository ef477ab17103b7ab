// SPDX-License-Identifier: BSD-3-Clause
// keel-pmd's test services. The parts that need no connection: the --serve
// list, the chargen stream, the /bytes pattern, the HTTP request parser and the
// HTTP session state machine (bytes in, bytes out), and the mbuf chain split
// the echo service uses. Then the services on a real TcpStack (the packet-level
// harness plays the peer): echo, chargen's first bytes, HTTP's lingering close.
#include <catch2/catch.hpp>

#include <rte_mbuf.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "tcp_harness.hpp"
#include "test_support.hpp"
#include "tools/keel-pmd/http_service.hpp"
#include "tools/keel-pmd/services.hpp"

using namespace keel::pmd;
namespace http = keel::pmd::http;

// ===== --serve LIST =====

TEST_CASE("service list: names, standard ports and explicit ports", "[pmd]") {
  auto l = parse_service_list("echo,discard,chargen,http");
  REQUIRE(l);
  REQUIRE(*l == std::vector<ServiceSpec>{{ServiceKind::echo, 7},
                                         {ServiceKind::discard, 9},
                                         {ServiceKind::chargen, 19},
                                         {ServiceKind::http, 80}});
  auto p = parse_service_list("http:8080,echo:7007,echo");
  REQUIRE(p);
  REQUIRE(*p == std::vector<ServiceSpec>{{ServiceKind::http, 8080},
                                         {ServiceKind::echo, 7007},
                                         {ServiceKind::echo, 7}});
  auto one = parse_service_list("chargen:65535");
  REQUIRE(one);
  CHECK(one->front().port == 65535);
}

TEST_CASE("service list: https on 443, or a port given", "[pmd][tls]") {
  auto l = parse_service_list("http,https,https:8443");
  REQUIRE(l);
  REQUIRE(*l == std::vector<ServiceSpec>{{ServiceKind::http, 80},
                                         {ServiceKind::https, 443},
                                         {ServiceKind::https, 8443}});
  CHECK(std::string(to_string(ServiceKind::https)) == "https");
}

TEST_CASE("service list: errors name what is wrong", "[pmd]") {
  auto err = [](std::string_view s) {
    auto r = parse_service_list(s);
    REQUIRE_FALSE(r);
    return r.error();
  };
  CHECK_THAT(err("echo,gopher"), Catch::Contains("'gopher'"));
  CHECK_THAT(err("ECHO"), Catch::Contains("'ECHO'"));
  CHECK_THAT(err(""), Catch::Contains("empty"));
  CHECK_THAT(err("echo,"), Catch::Contains("unknown service ''"));
  for (const char* bad : {"echo:0", "echo:65536", "echo:x", "echo:", "echo:7a", "echo:-1"}) {
    INFO(bad);
    CHECK_THAT(err(bad), Catch::Contains("bad port") && Catch::Contains("echo"));
  }
  CHECK_THAT(err("echo,echo"), Catch::Contains("port 7 given twice"));
  CHECK_THAT(err("http:7,echo"), Catch::Contains("port 7 given twice (http, echo)"));
}

// ===== chargen (RFC 864) =====

namespace {
std::string chargen(uint64_t pos, size_t n) {
  std::string s(n, '\0');
  chargen_fill(pos, reinterpret_cast<uint8_t*>(s.data()), n);
  return s;
}
}  // namespace

TEST_CASE("chargen: RFC 864 lines", "[pmd]") {
  // Line 0 starts with the first printable character (space), line 1 with '!':
  // the RFC's sample line.
  CHECK(chargen(0, 74) ==
        " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg\r\n");
  CHECK(chargen(74, 74) ==
        "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefgh\r\n");
  // Line 94 wraps around the end of the printable set.
  CHECK(chargen(94 * 74, 74).substr(0, 4) == "~ !\"");
  // Every line: 72 printable characters, each starting one later, then CR LF.
  std::string all = chargen(0, 300 * chargen_line_len);
  for (size_t k = 0; k < 300; ++k) {
    for (size_t j = 0; j < chargen_line_chars; ++j) {
      char want = char(0x20 + (k + j) % 95);
      if (all[k * chargen_line_len + j] != want) FAIL("line " << k << " col " << j);
    }
    REQUIRE(all.substr(k * chargen_line_len + 72, 2) == "\r\n");
  }
  // 95 lines make a period.
  CHECK(chargen(chargen_period, 1000) == chargen(0, 1000));
  CHECK(chargen_period == 95 * 74);
}

TEST_CASE("chargen: any offset and length agree with the stream", "[pmd]") {
  std::string all = chargen(0, 3 * chargen_period);
  for (uint64_t pos : {0ull, 1ull, 71ull, 72ull, 73ull, 74ull, 7029ull, 7030ull, 7031ull, 10000ull})
    for (size_t n : {size_t(0), size_t(1), size_t(73), size_t(74), size_t(75), size_t(7030), size_t(9000)}) {
      INFO(pos << " " << n);
      REQUIRE(chargen(pos, n) == all.substr(size_t(pos), n));
    }
  // Far into the stream: position modulo the period.
  uint64_t far = (uint64_t{1} << 40) + 12345;
  CHECK(chargen(far, 500) == all.substr(size_t(far % chargen_period), 500));
}

// ===== /bytes pattern =====

TEST_CASE("bytes pattern: byte i is i mod 251 at any offset", "[pmd]") {
  for (uint64_t pos : {uint64_t{0}, uint64_t{250}, uint64_t{251}, uint64_t{8031}, uint64_t{8032},
                       (uint64_t{1} << 40) - 7, uint64_t{123456789}}) {
    for (size_t n : {size_t(1), size_t(250), size_t(252), size_t(8032), size_t(20000)}) {
      std::vector<uint8_t> b(n);
      http::pattern_fill(pos, b.data(), n);
      for (size_t i = 0; i < n; ++i)
        if (b[i] != uint8_t((pos + i) % 251)) FAIL("pos " << pos << " i " << i);
    }
  }
}

// ===== HTTP request parser =====

namespace {
const std::string simple = "GET /bytes/10 HTTP/1.1\r\nHost: 198.18.0.2\r\nUser-Agent: t\r\n\r\n";

// The result's views point into the input: keep the last input alive.
http::ParseResult parse(const std::string& s, size_t max = http::max_header_bytes) {
  static std::string keep;
  keep = s;
  return http::parse_request(keep, max);
}
http::ParseStatus status(const std::string& s, size_t max = http::max_header_bytes) {
  return parse(s, max).status;
}
}  // namespace

TEST_CASE("http parser: a simple GET", "[pmd]") {
  auto r = parse(simple + "GET / HTTP/1.1\r\n");
  REQUIRE(r.status == http::ParseStatus::ok);
  CHECK(r.consumed == simple.size());
  CHECK(r.req.method == "GET");
  CHECK(r.req.target == "/bytes/10");
  CHECK(r.req.minor == 1);
  CHECK(r.req.keep_alive);
  CHECK(r.req.content_length == 0);
}

TEST_CASE("http parser: every proper prefix is incomplete", "[pmd]") {
  for (size_t n = 0; n < simple.size(); ++n) {
    INFO(n);
    REQUIRE(status(simple.substr(0, n)) == http::ParseStatus::incomplete);
  }
}

TEST_CASE("http parser: bare LF, leading blank lines", "[pmd]") {
  auto r = parse("GET / HTTP/1.1\nHost: x\n\n");
  REQUIRE(r.status == http::ParseStatus::ok);
  CHECK(r.consumed == 24);
  auto l = parse("\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
  REQUIRE(l.status == http::ParseStatus::ok);
  CHECK(l.consumed == 4 + 27);
  CHECK(l.req.target == "/");
}

TEST_CASE("http parser: persistence by version and Connection", "[pmd]") {
  auto ka = [](const std::string& s) {
    auto r = parse(s);
    REQUIRE(r.status == http::ParseStatus::ok);
    return r.req.keep_alive;
  };
  CHECK(ka("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  CHECK_FALSE(ka("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  CHECK_FALSE(ka("GET / HTTP/1.1\r\nHost: x\r\nconnection: Upgrade, CLOSE\r\n\r\n"));
  CHECK_FALSE(ka("GET / HTTP/1.0\r\n\r\n"));
  CHECK(ka("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
  CHECK_FALSE(ka("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"));
  // 1.2 is treated as 1.1 (RFC 9110 2.5).
  auto r = parse("GET / HTTP/1.2\r\nHost: x\r\n\r\n");
  REQUIRE(r.status == http::ParseStatus::ok);
  CHECK(r.req.minor == 1);
}

TEST_CASE("http parser: Host is required once in HTTP/1.1", "[pmd]") {
  CHECK(status("GET / HTTP/1.1\r\n\r\n") == http::ParseStatus::bad_request);
  CHECK(status("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n") == http::ParseStatus::bad_request);
  CHECK(status("GET / HTTP/1.0\r\n\r\n") == http::ParseStatus::ok);
}

TEST_CASE("http parser: malformed requests", "[pmd]") {
  for (const char* bad : {
           "GET /\r\n\r\n",                         // no version
           "GET  / HTTP/1.1\r\nHost: x\r\n\r\n",    // two spaces
           "GET / HTTP/1.1 \r\nHost: x\r\n\r\n",    // trailing space
           " GET / HTTP/1.1\r\nHost: x\r\n\r\n",    // leading space
           "GET / http/1.1\r\nHost: x\r\n\r\n",     // version is case-sensitive
           "GET / HTTP/1\r\nHost: x\r\n\r\n",
           "GET / HTTP/1.x\r\nHost: x\r\n\r\n",
           "G(T / HTTP/1.1\r\nHost: x\r\n\r\n",     // not a token
           "GET /a\x7f HTTP/1.1\r\nHost: x\r\n\r\n",
           "GET / HTTP/1.1\r\nHost x\r\n\r\n",      // no colon
           "GET / HTTP/1.1\r\nHost : x\r\n\r\n",    // space before the colon
           "GET / HTTP/1.1\r\n: x\r\nHost: x\r\n\r\n",
           "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",  // obs-fold
           "GET / HTTP/1.1\r\n Host: x\r\n\r\n",
           "GET / HTTP/1.1\r\nHost: x\ry\r\n\r\n",  // bare CR
           "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
           "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n",
           "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n",
           "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\n",
           "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
           "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
       }) {
    INFO(bad);
    CHECK(status(bad) == http::ParseStatus::bad_request);
  }
  // Control bytes are refused before the line is complete (binary garbage, TLS).
  CHECK(status(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11)) ==
        http::ParseStatus::bad_request);
  CHECK(status(std::string("GET / HT\0", 9)) == http::ParseStatus::bad_request);
}

TEST_CASE("http parser: Content-Length, Transfer-Encoding, versions", "[pmd]") {
  auto r = parse("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\ncontent-length: 5\r\n\r\nhello");
  REQUIRE(r.status == http::ParseStatus::ok);
  CHECK(r.req.content_length == 5);
  CHECK(r.req.method == "POST");
  CHECK(status("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n") ==
        http::ParseStatus::not_implemented);
  CHECK(status("GET / HTTP/2.0\r\nHost: x\r\n\r\n") == http::ParseStatus::version_not_supported);
  CHECK(status("GET / HTTP/0.9\r\n\r\n") == http::ParseStatus::version_not_supported);
  CHECK(http::status_for(http::ParseStatus::bad_request) == 400);
  CHECK(http::status_for(http::ParseStatus::uri_too_long) == 414);
  CHECK(http::status_for(http::ParseStatus::header_too_large) == 431);
  CHECK(http::status_for(http::ParseStatus::not_implemented) == 501);
  CHECK(http::status_for(http::ParseStatus::version_not_supported) == 505);
}

TEST_CASE("http parser: the header section is bounded", "[pmd]") {
  const std::string req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  REQUIRE(req.size() == 27);
  CHECK(status(req, 27) == http::ParseStatus::ok);
  CHECK(status(req, 26) == http::ParseStatus::header_too_large);
  CHECK(status(req.substr(0, 20), 20) == http::ParseStatus::header_too_large);
  CHECK(status(req.substr(0, 20), 21) == http::ParseStatus::incomplete);
  CHECK(status("GET /aaaaaaaaaaaaaaaaaaaa", 16) == http::ParseStatus::uri_too_long);
  // The real limit: 8 KiB of header fields.
  std::string big = "GET / HTTP/1.1\r\nHost: x\r\n";
  while (big.size() < http::max_header_bytes) big += "X-Filler: 0123456789abcdef0123456789abcdef\r\n";
  CHECK(status(big) == http::ParseStatus::header_too_large);
  CHECK(status("GET /" + std::string(9000, 'a')) == http::ParseStatus::uri_too_long);
}

TEST_CASE("http routes", "[pmd]") {
  using B = http::Route::Body;
  auto page = http::route("GET", "/");
  CHECK((page.status == 200 && page.body == B::page));
  CHECK(http::route("HEAD", "/").status == 200);
  CHECK(http::route("GET", "/?q=1").status == 200);
  CHECK(http::route("POST", "/").status == 405);
  CHECK(http::route("get", "/").status == 405);  // methods are case-sensitive
  auto b = http::route("GET", "/bytes/1461");
  CHECK((b.status == 200 && b.body == B::pattern && b.length == 1461));
  CHECK(http::route("GET", "/bytes/0").length == 0);
  CHECK(http::route("GET", "/bytes/1099511627776").status == 200);  // 2^40
  CHECK(http::route("GET", "/bytes/1099511627777").status == 400);
  CHECK(http::route("GET", "/bytes/99999999999999999999999").status == 400);
  CHECK(http::route("GET", "/bytes/").status == 400);
  CHECK(http::route("GET", "/bytes/12a").status == 400);
  CHECK(http::route("GET", "/bytes/-1").status == 400);
  CHECK(http::route("GET", "/bytes").status == 404);
  CHECK(http::route("GET", "/nope").status == 404);
  auto abs = http::route("GET", "http://198.18.0.2/bytes/5?x");
  CHECK((abs.status == 200 && abs.length == 5));
  CHECK(http::route("GET", "http://198.18.0.2").status == 200);
  CHECK(http::route("GET", "*").status == 400);
}

// ===== HTTP session =====

namespace {

/// Feeds `in` in pieces of `step` bytes, producing output in pieces of `cap`
/// bytes between them, as the TCP glue does.
struct Driver {
  http::Session s;
  std::string out;
  size_t cap = 1000;

  void feed(const std::string& in, size_t step = SIZE_MAX) {
    size_t off = 0;
    while (off < in.size()) {
      size_t n = std::min({step, in.size() - off, s.input_room()});
      if (n == 0) {
        if (s.done()) return;     // closing: the rest is never read
        REQUIRE(s.has_output());  // stalled only while output is pending
        pump();
        continue;
      }
      std::memcpy(s.input_ptr(), in.data() + off, n);
      s.input_commit(n);
      off += n;
      pump_some();
    }
  }
  void pump_some() {
    std::string buf(cap, '\0');
    size_t n = s.produce(reinterpret_cast<uint8_t*>(buf.data()), cap);
    out.append(buf.data(), n);
  }
  void pump() {
    while (s.has_output()) pump_some();
  }
};

struct Response {
  std::string head;
  std::string body;
};

// Splits `out` into responses by their Content-Length; head_only[i] marks the
// answer to a HEAD request (no body).
std::vector<Response> responses(const std::string& out, const std::vector<bool>& head_only = {}) {
  std::vector<Response> v;
  size_t p = 0;
  while (p < out.size()) {
    bool head_only_here = v.size() < head_only.size() && head_only[v.size()];
    size_t end = out.find("\r\n\r\n", p);
    REQUIRE(end != std::string::npos);
    Response r;
    r.head = out.substr(p, end + 4 - p);
    size_t cl = r.head.find("Content-Length: ");
    REQUIRE(cl != std::string::npos);
    size_t len = std::stoull(r.head.substr(cl + 16));
    p = end + 4;
    if (!head_only_here) {
      REQUIRE(p + len <= out.size());
      r.body = out.substr(p, len);
      p += len;
    }
    v.push_back(r);
  }
  return v;
}

bool is_pattern(const std::string& s) {
  for (size_t i = 0; i < s.size(); ++i)
    if (uint8_t(s[i]) != uint8_t(i % 251)) return false;
  return true;
}

std::string get(const std::string& target) {
  return "GET " + target + " HTTP/1.1\r\nHost: 198.18.0.2\r\n\r\n";
}

}  // namespace

TEST_CASE("http session: GET / and keep-alive", "[pmd]") {
  Driver d;
  d.feed(get("/"));
  d.pump();
  auto r = responses(d.out);
  REQUIRE(r.size() == 1);
  CHECK_THAT(r[0].head, Catch::StartsWith("HTTP/1.1 200 OK\r\n"));
  CHECK_THAT(r[0].head, Catch::Contains("Content-Type: text/html"));
  CHECK_THAT(r[0].head, Catch::Contains("Connection: keep-alive"));
  CHECK_THAT(r[0].body, Catch::Contains("<html>"));
  CHECK_FALSE(d.s.done());
  CHECK(d.s.requests() == 1);
  // The peer closes: nothing more to say.
  d.s.peer_closed();
  CHECK(d.s.done());
}

TEST_CASE("http session: /bytes/N for the sizes the interop test uses", "[pmd]") {
  for (uint64_t n : {0u, 1u, 250u, 251u, 1460u, 1461u, 65536u}) {
    INFO(n);
    Driver d;
    d.cap = 1448;
    d.feed(get("/bytes/" + std::to_string(n)));
    d.pump();
    auto r = responses(d.out);
    REQUIRE(r.size() == 1);
    CHECK_THAT(r[0].head, Catch::Contains("Content-Type: application/octet-stream\r\n"));
    CHECK_THAT(r[0].head, Catch::Contains("Content-Length: " + std::to_string(n) + "\r\n"));
    REQUIRE(r[0].body.size() == n);
    CHECK(is_pattern(r[0].body));
  }
}

TEST_CASE("http session: 100 MiB streamed in bounded steps", "[pmd]") {
  Driver d;
  d.cap = 512;
  d.feed("GET /bytes/104857600 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  std::vector<uint8_t> buf(65536);
  size_t end = d.out.find("\r\n\r\n");
  REQUIRE(end != std::string::npos);
  CHECK_THAT(d.out.substr(0, end), Catch::Contains("Content-Length: 104857600\r\n"));
  CHECK_THAT(d.out.substr(0, end), Catch::Contains("Connection: close"));
  size_t head = d.out.size() - (end + 4);  // body bytes already out
  CHECK(is_pattern(d.out.substr(end + 4)));
  uint64_t got = head;
  while (d.s.has_output()) {
    size_t n = d.s.produce(buf.data(), buf.size());
    for (size_t i = 0; i < n; i += 4093)  // spot checks keep this quick
      if (buf[i] != uint8_t((got + i) % 251)) FAIL("byte " << got + i);
    if (n > 0 && buf[n - 1] != uint8_t((got + n - 1) % 251)) FAIL("byte " << got + n - 1);
    got += n;
  }
  CHECK(got == 104857600);
  CHECK(d.s.done());
}

TEST_CASE("http session: pipelined requests answered in order", "[pmd]") {
  std::string in = get("/bytes/3") + get("/nope") + get("/bytes/2") +
                   "HEAD /bytes/7 HTTP/1.1\r\nHost: x\r\n\r\n" + get("/");
  for (size_t step : {size_t(1), size_t(7), size_t(100), in.size()}) {
    for (size_t cap : {size_t(1), size_t(13), size_t(4096)}) {
      INFO("step " << step << " cap " << cap);
      Driver d;
      d.cap = cap;
      d.feed(in, step);
      d.pump();
      auto r = responses(d.out, {false, false, false, true, false});
      REQUIRE(r.size() == 5);
      CHECK(r[0].body == std::string("\x00\x01\x02", 3));
      CHECK_THAT(r[1].head, Catch::StartsWith("HTTP/1.1 404 Not Found\r\n"));
      CHECK(r[2].body == std::string("\x00\x01", 2));
      CHECK_THAT(r[3].head, Catch::Contains("Content-Length: 7\r\n"));
      CHECK(r[3].body.empty());
      CHECK_THAT(r[4].body, Catch::Contains("<html>"));
      CHECK(d.s.requests() == 5);
      CHECK_FALSE(d.s.done());
    }
  }
}

TEST_CASE("http session: Connection: close and HTTP/1.0 end the connection", "[pmd]") {
  Driver d;
  d.feed("GET /bytes/5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" + get("/"));
  d.pump();
  auto r = responses(d.out);
  REQUIRE(r.size() == 1);  // the request after "close" is not answered
  CHECK_THAT(r[0].head, Catch::Contains("Connection: close\r\n"));
  CHECK(d.s.done());
  CHECK(d.s.input_room() == 0);

  Driver ten;
  ten.feed("GET / HTTP/1.0\r\n\r\n");
  ten.pump();
  CHECK_THAT(ten.out, Catch::Contains("Connection: close\r\n"));
  CHECK(ten.s.done());

  Driver ka;
  ka.feed("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  ka.pump();
  CHECK_THAT(ka.out, Catch::Contains("Connection: keep-alive\r\n"));
  CHECK_FALSE(ka.s.done());
}

TEST_CASE("http session: errors", "[pmd]") {
  SECTION("405 keeps the connection and says what is allowed") {
    Driver d;
    d.feed("DELETE / HTTP/1.1\r\nHost: x\r\n\r\n");
    d.pump();
    CHECK_THAT(d.out, Catch::StartsWith("HTTP/1.1 405 Method Not Allowed\r\n"));
    CHECK_THAT(d.out, Catch::Contains("Allow: GET, HEAD\r\n"));
    CHECK_FALSE(d.s.done());
  }
  SECTION("400 for a malformed request, then close") {
    Driver d;
    d.feed("GET / HTTP/1.1\r\nHost x\r\n\r\n");
    d.pump();
    CHECK_THAT(d.out, Catch::StartsWith("HTTP/1.1 400 Bad Request\r\n"));
    CHECK_THAT(d.out, Catch::Contains("Connection: close\r\n"));
    CHECK(d.s.done());
  }
  SECTION("400 for N beyond 2^40") {
    Driver d;
    d.feed(get("/bytes/1099511627777"));
    d.pump();
    CHECK_THAT(d.out, Catch::StartsWith("HTTP/1.1 400 Bad Request\r\n"));
  }
  SECTION("431 when the header section never ends") {
    Driver d;
    std::string in = "GET / HTTP/1.1\r\nHost: x\r\n";
    while (in.size() < 9000) in += "X-Filler: 0123456789abcdef\r\n";
    d.feed(in, 1000);
    d.pump();
    CHECK_THAT(d.out, Catch::StartsWith("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
    CHECK(d.s.done());
  }
  SECTION("binary garbage: 400 at once") {
    Driver d;
    d.feed(std::string("\x16\x03\x01\x00\xa5\x01\x00\x00", 8));
    d.pump();
    CHECK_THAT(d.out, Catch::StartsWith("HTTP/1.1 400 Bad Request\r\n"));
    CHECK(d.s.done());
  }
  SECTION("a partial request at FIN is not answered") {
    Driver d;
    d.feed("GET / HTTP/1.1\r\nHo");
    d.s.peer_closed();
    CHECK(d.out.empty());
    CHECK(d.s.done());
  }
}

TEST_CASE("http session: request bodies are skipped", "[pmd]") {
  std::string in = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789" +
                   std::string(get("/bytes/1"));
  for (size_t step : {size_t(1), size_t(3), in.size()}) {
    INFO(step);
    Driver d;
    d.feed(in, step);
    d.pump();
    CHECK_THAT(d.out, Catch::StartsWith("HTTP/1.1 405"));
    CHECK_THAT(d.out, Catch::EndsWith("Content-Length: 1\r\nConnection: keep-alive\r\n\r\n" + std::string(1, '\0')));
    CHECK(d.s.requests() == 2);
  }
  // A body bigger than the buffer.
  Driver big;
  big.feed("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n");
  big.feed(std::string(100000, 'x'), 1460);
  big.feed(get("/"));
  big.pump();
  CHECK(big.s.requests() == 2);
  CHECK_THAT(big.out, Catch::Contains("<html>"));
  // The body never completes.
  Driver cut;
  cut.feed("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc");
  cut.pump();
  cut.s.peer_closed();
  CHECK(cut.s.done());
}

TEST_CASE("http session: input stops when the buffer is full, nothing is lost", "[pmd]") {
  // Many pipelined requests behind a long response: the session takes no
  // more than its buffer until output drains.
  Driver d;
  d.cap = 100;
  std::string in = get("/bytes/100000");
  for (int i = 0; i < 300; ++i) in += get("/bytes/1");
  d.feed(in, 4096);
  d.pump();
  auto r = responses(d.out);
  REQUIRE(r.size() == 301);
  CHECK(is_pattern(r[0].body));
  CHECK(r[0].body.size() == 100000);
  for (size_t i = 1; i < r.size(); ++i) REQUIRE(r[i].body == std::string(1, '\0'));
  // reset() gives a fresh session.
  d.s.reset();
  CHECK(d.s.requests() == 0);
  CHECK(d.s.input_room() == http::max_header_bytes);
  CHECK_FALSE(d.s.has_output());
}

// ===== echo: splitting a chain to fit the send buffer =====

TEST_CASE("split_chain_front: whole segments that fit", "[pmd]") {
  keel::test::PoolBaseline baseline;
  std::vector<uint8_t> bytes(1000);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = uint8_t(i);

  rte_mbuf* chain = keel::test::make_chain(bytes, {300, 300, 300});  // 300 300 300 100
  REQUIRE(chain->nb_segs == 4);
  CHECK(split_chain_front(chain, 299) == nullptr);  // not even the first segment
  REQUIRE(chain != nullptr);
  CHECK(chain->pkt_len == 1000);

  rte_mbuf* a = split_chain_front(chain, 650);
  REQUIRE(a != nullptr);
  CHECK(a->pkt_len == 600);
  CHECK(a->nb_segs == 2);
  REQUIRE(chain != nullptr);
  CHECK(chain->pkt_len == 400);
  CHECK(chain->nb_segs == 2);
  rte_mbuf* b = split_chain_front(chain, 400);  // the rest fits whole
  REQUIRE(b != nullptr);
  CHECK(chain == nullptr);
  auto front = keel::test::bytes_of(a);
  auto back = keel::test::bytes_of(b);
  front.insert(front.end(), back.begin(), back.end());
  CHECK(front == bytes);
  rte_pktmbuf_free(a);
  rte_pktmbuf_free(b);

  // A single segment that fits.
  rte_mbuf* one = keel::test::make_mbuf({1, 2, 3});
  rte_mbuf* c = one;
  CHECK(split_chain_front(c, 3) == one);
  CHECK(c == nullptr);
  rte_pktmbuf_free(one);
}

// ===== the services on a TcpStack =====

namespace {
using namespace keel::test::tcp;
using keel::test::Bytes;
using keel::test::pattern;

Bytes to_bytes(const std::string& s) { return Bytes(s.begin(), s.end()); }

// Passive open on `port` with the service's handler; no timestamps, so the
// peer's segments need no TS bookkeeping.
void open(TcpHarness& h, uint16_t port) {
  h.kport = port;
  PeerOpts po;
  po.ts = false;
  SEND(h, h.syn(po));
  Out sa = RECV_SEG(h, Expect{.ack = h.irs + 1, .flags = SYN | ACK});
  h.iss = sa.seq();
  h.peer_nxt = h.irs + 1;
  h.keel_nxt = h.iss + 1;
}

// The data of `out`, which must follow on from h.keel_nxt (advanced past it).
std::string stream_of(TcpHarness& h, const std::vector<Out>& out) {
  std::string s;
  for (const auto& o : out) {
    if (o.len() == 0) continue;
    CHECK(o.seq() == h.keel_nxt + uint32_t(s.size()));
    s.append(o.data.begin(), o.data.end());
  }
  h.keel_nxt += uint32_t(s.size());
  return s;
}
}  // namespace

TEST_CASE("echo over TCP: the data comes back, FIN after the peer's FIN", "[pmd]") {
  TcpHarness h;
  auto svc = make_service_handler(ServiceKind::echo, h.stack());
  REQUIRE(h.stack().listen(keel::net::Ipv4Addr::any(), 7, 16, svc.get()).has_value());
  open(h, 7);
  SEND(h, Seg{});
  RECV_NOTHING(h);
  SEND(h, Seg{.flags = PSH | ACK, .data = to_bytes("hello\n")});
  h.peer_nxt += 6;
  CHECK(stream_of(h, h.take()) == "hello\n");
  // Two full segments go back as they came, in order.
  Bytes a = pattern(1460, 1), b = pattern(1460, 2);
  SEND(h, Seg{.data = a});
  h.peer_nxt += 1460;
  SEND(h, Seg{.data = b});
  h.peer_nxt += 1460;
  std::string back = stream_of(h, h.take());
  Bytes ab = a;
  ab.insert(ab.end(), b.begin(), b.end());
  CHECK(back == std::string(ab.begin(), ab.end()));
  SEND(h, Seg{});  // ACK of it all
  SEND(h, Seg{.flags = FIN | ACK});
  h.peer_nxt += 1;
  auto fin = h.take();
  REQUIRE(!fin.empty());
  CHECK((fin.back().flags() & FIN) != 0);
  CHECK(fin.back().seq() == h.keel_nxt);
  h.keel_nxt += 1;
  SEND(h, Seg{});  // LAST-ACK -> CLOSED
  h.finish();
}

TEST_CASE("chargen over TCP: the stream starts at its first byte", "[pmd]") {
  // On a passive open the application is told before the handshake's ACK is
  // processed; data queued from on_accept would lose its first byte, so the
  // session starts from on_writable (see can_send_now in services.cpp).
  TcpHarness h;
  auto svc = make_service_handler(ServiceKind::chargen, h.stack());
  REQUIRE(h.stack().listen(keel::net::Ipv4Addr::any(), 19, 16, svc.get()).has_value());
  open(h, 19);
  SEND(h, Seg{});  // the handshake's ACK: chargen starts
  std::string got = stream_of(h, h.take());
  REQUIRE(got.size() >= 2 * chargen_line_len);
  CHECK(got == chargen(0, got.size()));
  // More as the peer acknowledges, still in order.
  SEND(h, Seg{});
  size_t before = got.size();
  got += stream_of(h, h.take());
  CHECK(got.size() > before);
  CHECK(got == chargen(0, got.size()));
  // The peer resets: the session and its buffers are released.
  SEND(h, Seg{.flags = RST});
  h.finish();
}

TEST_CASE("http over TCP: an error is answered, then a lingering close", "[pmd]") {
  TcpHarness h;
  auto svc = make_service_handler(ServiceKind::http, h.stack());
  REQUIRE(h.stack().listen(keel::net::Ipv4Addr::any(), 80, 16, svc.get()).has_value());
  open(h, 80);
  SEND(h, Seg{});
  SEND(h, Seg{.flags = PSH | ACK, .data = to_bytes("GARBAGE\r\n\r\n")});
  h.peer_nxt += 11;
  auto out = h.take();
  std::string resp = stream_of(h, out);
  CHECK_THAT(resp, Catch::StartsWith("HTTP/1.1 400 Bad Request\r\n"));
  // Half-closed: our FIN follows the response.
  REQUIRE(!out.empty());
  CHECK((out.back().flags() & FIN) != 0);
  h.keel_nxt += 1;
  SEND(h, Seg{});  // ACK of the response and FIN: FIN-WAIT-2
  CHECK(h.state() == "FIN-WAIT-2");

  SECTION("more data from the client is read, not answered with RST") {
    SEND(h, Seg{.flags = PSH | ACK, .data = to_bytes("GET / HTTP/1.1\r\n")});
    h.peer_nxt += 16;
    for (const auto& o : h.take()) CHECK((o.flags() & RST) == 0);
    CHECK(h.count(keel::engine::Counter::tcp_data_after_close) == 0);
    SEND(h, Seg{.flags = FIN | ACK});  // the client closes: TIME-WAIT
    h.peer_nxt += 1;
    CHECK(h.state() == "TIME-WAIT");
  }
  SECTION("a client that never closes is let go after the linger time") {
    h.advance(1 * sec);
    CHECK(h.state() == "FIN-WAIT-2");
    h.advance(1500 * ms);  // linger (2 s) over: closed, FIN-WAIT-2 bounded by 2 MSL
  }
  h.advance(5 * sec);
  (void)h.take();
  CHECK(h.state() == "CLOSED");
  h.finish();
}

TEST_CASE("http over TCP: /bytes/N larger than the send buffer, keep-alive", "[pmd]") {
  TcpHarness h;
  auto svc = make_service_handler(ServiceKind::http, h.stack());
  REQUIRE(h.stack().listen(keel::net::Ipv4Addr::any(), 80, 16, svc.get()).has_value());
  open(h, 80);
  SEND(h, Seg{});
  const size_t n = 300000;  // beyond the harness's 128 KiB send buffer
  std::string req = "GET /bytes/" + std::to_string(n) + " HTTP/1.1\r\nHost: x\r\n\r\n";
  SEND(h, Seg{.flags = PSH | ACK, .data = to_bytes(req)});
  h.peer_nxt += uint32_t(req.size());
  std::string got;
  for (int round = 0; round < 1000 && got.size() < n + 150; ++round) {
    got += stream_of(h, h.take());
    SEND(h, Seg{});  // acknowledge everything so far
  }
  size_t end = got.find("\r\n\r\n");
  REQUIRE(end != std::string::npos);
  CHECK_THAT(got.substr(0, end), Catch::Contains("Content-Length: 300000"));
  std::string body = got.substr(end + 4);
  REQUIRE(body.size() == n);
  CHECK(is_pattern(body));
  CHECK(h.state() == "ESTABLISHED");  // keep-alive
  // The client closes: the server closes too.
  SEND(h, Seg{.flags = FIN | ACK});
  h.peer_nxt += 1;
  RECV(h, Expect{.seq = h.keel_nxt, .ack = h.peer_nxt, .flags = FIN | ACK});
  h.keel_nxt += 1;
  SEND(h, Seg{});
  h.finish();
}
