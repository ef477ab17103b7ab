// SPDX-License-Identifier: BSD-3-Clause
#include "http_service.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>

namespace keel::pmd::http {

namespace {

constexpr char page[] =
    "<!DOCTYPE html>\n"
    "<html><head><meta charset=\"utf-8\"><title>keel-pmd</title></head>\n"
    "<body><h1>keel-pmd</h1>\n"
    "<p>Served by keel, a user-space TCP/IP stack on DPDK.</p>\n"
    "<p><a href=\"/bytes/1024\">/bytes/N</a> returns N bytes, byte i = i mod 251.</p>\n"
    "</body></html>\n";

// RFC 9110 5.6.2 tchar.
bool is_tchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return c != 0 && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

// Control characters no part of a request head may hold (CR, LF, HTAB have their places).
bool is_bad_ctl(unsigned char c) { return (c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f; }

char lower(char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Decimal digits only, no sign, no overflow past `max`.
bool parse_decimal(std::string_view s, uint64_t max, uint64_t& out) {
  if (s.empty()) return false;
  uint64_t v = 0;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return false;
    uint64_t d = uint64_t(ch - '0');
    if (v > (max - d) / 10) return false;
    v = v * 10 + d;
  }
  out = v;
  return true;
}

// Calls f(token) for each comma-separated element, whitespace trimmed (RFC 9110 5.6.1).
template <class F>
void for_each_element(std::string_view list, F&& f) {
  while (true) {
    size_t comma = list.find(',');
    std::string_view item = trim_ows(list.substr(0, comma));
    if (!item.empty()) f(item);
    if (comma == std::string_view::npos) return;
    list.remove_prefix(comma + 1);
  }
}

enum class LineStatus : uint8_t { ok, incomplete, too_long, bad };

// The next line of `in` from `pos` (without its CRLF or LF), ending before `max`.
LineStatus next_line(std::string_view in, size_t& pos, size_t max, std::string_view& line) {
  size_t end = std::min(in.size(), max);
  size_t nl = pos < end ? in.find('\n', pos) : std::string_view::npos;
  if (nl == std::string_view::npos || nl >= end) {
    for (size_t i = pos; i < in.size(); ++i)
      if (is_bad_ctl(static_cast<unsigned char>(in[i]))) return LineStatus::bad;
    return in.size() >= max ? LineStatus::too_long : LineStatus::incomplete;
  }
  line = in.substr(pos, nl - pos);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  pos = nl + 1;
  for (char ch : line) {
    auto c = static_cast<unsigned char>(ch);
    // RFC 9112 2.2: a bare CR is invalid; NUL and other controls too.
    if (c == '\r' || is_bad_ctl(c)) return LineStatus::bad;
  }
  return LineStatus::ok;
}

ParseResult fail(ParseStatus s) {
  ParseResult r;
  r.status = s;
  return r;
}

}  // namespace

ParseResult parse_request(std::string_view in, size_t max_bytes) {
  size_t pos = 0;
  std::string_view line;
  // RFC 9112 2.2: ignore empty lines before the request line.
  do {
    switch (next_line(in, pos, max_bytes, line)) {
      case LineStatus::ok: break;
      case LineStatus::incomplete: return fail(ParseStatus::incomplete);
      case LineStatus::too_long: return fail(ParseStatus::uri_too_long);
      case LineStatus::bad: return fail(ParseStatus::bad_request);
    }
  } while (line.empty());

  // RFC 9112 3: method SP request-target SP HTTP-version, single spaces.
  ParseResult r;
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) return fail(ParseStatus::bad_request);
  r.req.method = line.substr(0, sp1);
  for (char ch : r.req.method)
    if (!is_tchar(static_cast<unsigned char>(ch))) return fail(ParseStatus::bad_request);
  std::string_view rest = line.substr(sp1 + 1);
  size_t sp2 = rest.find(' ');
  if (sp2 == std::string_view::npos || sp2 == 0) return fail(ParseStatus::bad_request);
  r.req.target = rest.substr(0, sp2);
  for (char ch : r.req.target) {
    auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7f) return fail(ParseStatus::bad_request);
  }
  std::string_view version = rest.substr(sp2 + 1);
  // RFC 9112 2.3: HTTP-version = "HTTP" "/" DIGIT "." DIGIT, case-sensitive.
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
      version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9')
    return fail(ParseStatus::bad_request);
  if (version[5] != '1') return fail(ParseStatus::version_not_supported);
  r.req.minor = uint8_t(std::min(version[7] - '0', 1));

  bool conn_close = false, conn_keep_alive = false, have_length = false;
  unsigned hosts = 0;
  for (;;) {
    switch (next_line(in, pos, max_bytes, line)) {
      case LineStatus::ok: break;
      case LineStatus::incomplete: return fail(ParseStatus::incomplete);
      case LineStatus::too_long: return fail(ParseStatus::header_too_large);
      case LineStatus::bad: return fail(ParseStatus::bad_request);
    }
    if (line.empty()) break;
    // RFC 9112 5.2: obs-fold (and whitespace before the first field) is rejected.
    if (line.front() == ' ' || line.front() == '\t') return fail(ParseStatus::bad_request);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return fail(ParseStatus::bad_request);
    std::string_view name = line.substr(0, colon);
    // RFC 9112 5.1: no whitespace between the field name and the colon.
    for (char ch : name)
      if (!is_tchar(static_cast<unsigned char>(ch))) return fail(ParseStatus::bad_request);
    std::string_view value = trim_ows(line.substr(colon + 1));
    if (iequals(name, "content-length")) {
      // RFC 9112 6.3 item 5 / RFC 9110 8.6: a list of identical values is one value.
      bool bad = false;
      uint64_t v = 0;
      size_t elements = 0;
      for_each_element(value, [&](std::string_view item) {
        uint64_t x = 0;
        if (!parse_decimal(item, uint64_t{1} << 62, x) || (have_length && x != r.req.content_length) ||
            (elements > 0 && x != v))
          bad = true;
        v = x;
        ++elements;
      });
      if (bad || elements == 0) return fail(ParseStatus::bad_request);
      r.req.content_length = v;
      have_length = true;
    } else if (iequals(name, "transfer-encoding")) {
      // RFC 9112 6.1: a transfer coding we do not understand is answered with 501.
      return fail(ParseStatus::not_implemented);
    } else if (iequals(name, "connection")) {
      for_each_element(value, [&](std::string_view opt) {
        if (iequals(opt, "close")) conn_close = true;
        else if (iequals(opt, "keep-alive")) conn_keep_alive = true;
      });
    } else if (iequals(name, "host")) {
      ++hosts;
    }
  }
  // RFC 9112 3.2: a 1.1 request without exactly one Host is answered with 400.
  if (r.req.minor >= 1 && hosts != 1) return fail(ParseStatus::bad_request);
  // RFC 9112 9.3: persistence by version and the Connection options.
  r.req.keep_alive = r.req.minor >= 1 ? !conn_close : (conn_keep_alive && !conn_close);
  r.status = ParseStatus::ok;
  r.consumed = pos;
  return r;
}

int status_for(ParseStatus s) {
  switch (s) {
    case ParseStatus::incomplete:
    case ParseStatus::ok: return 0;
    case ParseStatus::bad_request: return 400;
    case ParseStatus::uri_too_long: return 414;
    case ParseStatus::header_too_large: return 431;
    case ParseStatus::not_implemented: return 501;
    case ParseStatus::version_not_supported: return 505;
  }
  return 400;
}

std::string_view reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 505: return "HTTP Version Not Supported";
    default: return "";
  }
}

Route route(std::string_view method, std::string_view target) {
  Route r;
  if (method != "GET" && method != "HEAD") {
    r.status = 405;
    r.body = Route::Body::error;
    return r;
  }
  std::string_view path = target;
  // RFC 9112 3.2.2 absolute-form: http://authority/path.
  if (istarts_with(path, "http://") || istarts_with(path, "https://")) {
    path.remove_prefix(path.find("//") + 2);
    size_t slash = path.find('/');
    path = slash == std::string_view::npos ? std::string_view("/") : path.substr(slash);
  }
  path = path.substr(0, path.find_first_of("?#"));
  if (path.empty() || path.front() != '/') {
    r.status = 400;  // asterisk- and authority-form belong to OPTIONS and CONNECT
    r.body = Route::Body::error;
    return r;
  }
  if (path == "/") return r;
  constexpr std::string_view bytes = "/bytes/";
  if (path.substr(0, bytes.size()) == bytes) {
    uint64_t n = 0;
    if (!parse_decimal(path.substr(bytes.size()), max_bytes_count, n)) {
      r.status = 400;
      r.body = Route::Body::error;
      return r;
    }
    r.body = Route::Body::pattern;
    r.length = n;
    return r;
  }
  r.status = 404;
  r.body = Route::Body::error;
  return r;
}

namespace {
// 32 periods of the pattern: one memcpy covers at least 31 * 251 bytes.
constexpr size_t pattern_period = 251;
constexpr auto pattern_table = [] {
  std::array<uint8_t, pattern_period * 32> t{};
  for (size_t i = 0; i < t.size(); ++i) t[i] = uint8_t(i % pattern_period);
  return t;
}();
}  // namespace

void pattern_fill(uint64_t pos, uint8_t* dst, size_t n) {
  size_t off = size_t(pos % pattern_period);
  while (n > 0) {
    size_t k = std::min(n, pattern_table.size() - off);
    std::memcpy(dst, pattern_table.data() + off, k);
    dst += k;
    n -= k;
    off = (off + k) % pattern_period;
  }
}

void Session::reset() {
  in_len_ = 0;
  skip_ = 0;
  head_len_ = head_off_ = 0;
  body_ = Route::Body::page;
  text_ = nullptr;
  body_len_ = body_off_ = 0;
  responding_ = close_after_ = peer_closed_ = done_ = false;
  requests_ = 0;
}

void Session::consume_input(size_t n) {
  std::memmove(in_, in_ + n, in_len_ - n);
  in_len_ -= n;
}

void Session::drop_body() {
  size_t k = size_t(std::min<uint64_t>(skip_, in_len_));
  if (k == 0) return;
  consume_input(k);
  skip_ -= k;
}

void Session::input_commit(size_t n) {
  in_len_ += n;
  if (close_after_) {
    in_len_ = 0;  // closing after this response: later requests are not answered
    return;
  }
  drop_body();
  if (!responding_) next_request();
}

void Session::peer_closed() {
  peer_closed_ = true;
  if (!responding_) next_request();
}

void Session::next_request() {
  if (responding_ || done_) return;
  drop_body();
  if (skip_ > 0) {
    if (peer_closed_) done_ = true;  // the body will never be complete
    return;
  }
  ParseResult r = parse_request(std::string_view(reinterpret_cast<const char*>(in_), in_len_));
  if (r.status == ParseStatus::incomplete) {
    // RFC 9112 9.6: a partial request at the peer's FIN is not answered.
    if (peer_closed_) done_ = true;
    return;
  }
  if (r.status != ParseStatus::ok) {
    start_response(status_for(r.status), Route::Body::error, 0, false, false, false);
    in_len_ = 0;
    return;
  }
  Route rt = route(r.req.method, r.req.target);
  bool head_only = r.req.method == "HEAD";
  skip_ = r.req.content_length;
  start_response(rt.status, rt.body, rt.length, head_only, r.req.keep_alive, rt.status == 405);
  consume_input(r.consumed);  // r's views die here
  drop_body();
}

void Session::start_response(int status, Route::Body body, uint64_t length, bool head_only,
                             bool keep_alive, bool allow_header) {
  ++requests_;
  body_ = body;
  const char* type = "text/plain; charset=utf-8";
  switch (body) {
    case Route::Body::page:
      text_ = page;
      length = sizeof page - 1;
      type = "text/html; charset=utf-8";
      break;
    case Route::Body::pattern:
      text_ = nullptr;
      type = "application/octet-stream";
      break;
    case Route::Body::error:
      std::snprintf(error_body_, sizeof error_body_, "%d %.*s\n", status,
                    int(reason_phrase(status).size()), reason_phrase(status).data());
      text_ = error_body_;
      length = std::strlen(error_body_);
      break;
  }
  close_after_ = !keep_alive;
  int n = std::snprintf(head_, sizeof head_,
                        "HTTP/1.1 %d %.*s\r\nServer: keel-pmd\r\nContent-Type: %s\r\n"
                        "Content-Length: %llu\r\n%sConnection: %s\r\n\r\n",
                        status, int(reason_phrase(status).size()), reason_phrase(status).data(),
                        type, static_cast<unsigned long long>(length),
                        allow_header ? "Allow: GET, HEAD\r\n" : "",
                        keep_alive ? "keep-alive" : "close");
  head_len_ = size_t(std::clamp(n, 0, int(sizeof head_ - 1)));
  head_off_ = 0;
  body_len_ = head_only ? 0 : length;
  body_off_ = 0;
  responding_ = true;
}

size_t Session::produce(uint8_t* dst, size_t cap) {
  size_t n = 0;
  for (;;) {
    if (responding_ && head_off_ == head_len_ && body_off_ == body_len_) {
      // This response is out: close, or answer the next pipelined request.
      responding_ = false;
      if (close_after_) {
        done_ = true;
        in_len_ = 0;
        break;
      }
      next_request();
      continue;
    }
    if (!responding_ || n == cap) break;
    if (head_off_ < head_len_) {
      size_t k = std::min(cap - n, head_len_ - head_off_);
      std::memcpy(dst + n, head_ + head_off_, k);
      head_off_ += k;
      n += k;
      continue;
    }
    size_t k = size_t(std::min<uint64_t>(cap - n, body_len_ - body_off_));
    if (body_ == Route::Body::pattern) pattern_fill(body_off_, dst + n, k);
    else std::memcpy(dst + n, text_ + body_off_, k);
    body_off_ += k;
    n += k;
  }
  return n;
}

}  // namespace keel::pmd::http
