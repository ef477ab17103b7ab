// SPDX-License-Identifier: BSD-3-Clause
// http_server: a small HTTP/1.1 server on keel's batched events.
//   GET|HEAD /          a short HTML page
//   GET|HEAD /bytes/N   N bytes, byte i = i mod 251, written as send space
//                       allows from a 16 KiB table (never N bytes in memory)
//   other paths 404, other methods 405, malformed requests 400 (then close).
// Keep-alive (HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with
// `Connection: keep-alive`) and pipelining: requests are answered in order,
// and the next one is read only when the current response is out, so a
// client that does not read its responses fills its own window, not our memory.
// Each connection's parser state lives in a per-instance table; its index is
// the connection's user value, which every event carries.
//
// Run it on a tap port with the kernel as the client (root):
//   ip netns add keel-demo
//   ip netns exec keel-demo ip tuntap add dev ktap0 mode tap multi_queue
//   ip netns exec keel-demo ip addr add 198.18.0.1/24 dev ktap0
//   ip netns exec keel-demo ip link set ktap0 up
//   ip netns exec keel-demo build/examples/http_server --config examples/tap.conf [PORT]
//   # another shell:
//   ip netns exec keel-demo curl -s http://198.18.0.2/bytes/10485760 | sha256sum
//   ip netns exec keel-demo wrk -c 50 -d 3s http://198.18.0.2/
//   ip netns del keel-demo
#include <keel/keel.hpp>

#include <charconv>
#include <cstdio>
#include <string>
#include <string_view>

#include "common.hpp"

namespace {

constexpr size_t max_header_bytes = 8192;
constexpr uint64_t max_bytes = uint64_t{1} << 40;

// 251 * 64 bytes of the pattern plus one period, so a slice of up to 16064
// bytes can start at any phase.
struct PatternTable {
  uint8_t bytes[251 * 65];
  PatternTable() {
    for (size_t i = 0; i < sizeof bytes; ++i) bytes[i] = uint8_t(i % 251);
  }
};
const PatternTable pattern;

// ----- request parsing -----

struct Request {
  std::string_view method, target;
  bool keep_alive = true;
  uint64_t body = 0;  // Content-Length: bytes to read and discard
};

enum class Parse { incomplete, ok, bad };

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(uint8_t(a[i])) != std::tolower(uint8_t(b[i]))) return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool parse_number(std::string_view s, uint64_t& v) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && end == s.data() + s.size() && !s.empty();
}

// Parses the header section at the start of `in`; `consumed` is its length.
Parse parse_request(std::string_view in, Request& req, size_t& consumed) {
  size_t end = in.find("\r\n\r\n");
  if (end == std::string_view::npos) return in.size() > max_header_bytes ? Parse::bad : Parse::incomplete;
  consumed = end + 4;
  std::string_view head = in.substr(0, end + 2);
  size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  head.remove_prefix(eol + 2);
  // request-line = method SP request-target SP HTTP-version (RFC 9112 3)
  size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp1 == sp2) return Parse::bad;
  req.method = line.substr(0, sp1);
  req.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (req.method.empty() || req.target.empty() || req.target.find(' ') != std::string_view::npos) return Parse::bad;
  if (version == "HTTP/1.1") req.keep_alive = true;
  else if (version == "HTTP/1.0") req.keep_alive = false;
  else return Parse::bad;
  bool host = false;
  while (!head.empty()) {
    eol = head.find("\r\n");
    line = head.substr(0, eol);
    head.remove_prefix(eol + 2);
    size_t colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos) return Parse::bad;
    std::string_view name = line.substr(0, colon), value = trim(line.substr(colon + 1));
    if (name.find_first_of(" \t") != std::string_view::npos) return Parse::bad;  // RFC 9112 5.1
    if (iequals(name, "host")) {
      host = true;
    } else if (iequals(name, "connection")) {
      // A comma-separated list of options (RFC 9110 7.6.1).
      for (size_t pos = 0; pos <= value.size();) {
        size_t comma = std::min(value.find(',', pos), value.size());
        std::string_view opt = trim(value.substr(pos, comma - pos));
        if (iequals(opt, "close")) req.keep_alive = false;
        if (iequals(opt, "keep-alive")) req.keep_alive = true;
        pos = comma + 1;
      }
    } else if (iequals(name, "content-length")) {
      if (!parse_number(value, req.body)) return Parse::bad;
    } else if (iequals(name, "transfer-encoding")) {
      return Parse::bad;  // a chunked body we do not frame: refuse it rather than misread it
    }
  }
  if (version == "HTTP/1.1" && !host) return Parse::bad;  // RFC 9112 3.2
  return Parse::ok;
}

// ----- one connection -----

struct Http {
  std::string in;             // received bytes not yet parsed
  std::string out;            // response bytes (head, small bodies) not yet written
  size_t out_done = 0;        // bytes of `out` written
  uint64_t body_left = 0;     // /bytes/N: pattern bytes still to write
  uint64_t body_off = 0;      // and the offset reached
  uint64_t discard = 0;       // request body bytes still to skip
  bool close_after = false;   // close once the current response is out
  bool eof = false;           // the client's FIN arrived
};

void respond(Http& st, int status, std::string_view reason, std::string_view type, uint64_t length,
             std::string_view body, bool head_only, std::string_view extra = "") {
  st.out.clear();
  st.out_done = 0;
  st.out += "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) + "\r\n";
  st.out += "Server: keel-example\r\nContent-Type: " + std::string(type) + "\r\n";
  st.out += "Content-Length: " + std::to_string(length) + "\r\n";
  st.out += extra;
  if (st.close_after) st.out += "Connection: close\r\n";
  st.out += "\r\n";
  if (!head_only) st.out += body;
}

void route(Http& st, const Request& req) {
  bool head = req.method == "HEAD";
  std::string_view path = req.target.substr(0, req.target.find('?'));
  constexpr std::string_view page =
      "<!DOCTYPE html>\n<html><head><title>keel</title></head>\n"
      "<body><h1>Hello from keel</h1><p>Try <a href=\"/bytes/1048576\">/bytes/N</a>.</p></body></html>\n";
  if (req.method != "GET" && !head) {
    constexpr std::string_view msg = "method not allowed\n";
    respond(st, 405, "Method Not Allowed", "text/plain", msg.size(), msg, false, "Allow: GET, HEAD\r\n");
  } else if (path == "/") {
    respond(st, 200, "OK", "text/html", page.size(), page, head);
  } else if (uint64_t n = 0; path.starts_with("/bytes/") && parse_number(path.substr(7), n) && n <= max_bytes) {
    respond(st, 200, "OK", "application/octet-stream", n, "", head);
    st.body_left = head ? 0 : n;
    st.body_off = 0;
  } else {
    constexpr std::string_view msg = "not found\n";
    respond(st, 404, "Not Found", "text/plain", msg.size(), msg, head);
  }
}

enum class Step { wait, closed };

// Writes what is pending; true when the whole response is out.
bool write_response(keel::Connection c, Http& st) {
  while (st.out_done < st.out.size()) {
    auto n = c.write(st.out.data() + st.out_done, st.out.size() - st.out_done);
    if (!n) return false;  // would_block (a writable event follows) or gone (a closed event follows)
    st.out_done += *n;
  }
  while (st.body_left > 0) {
    size_t phase = size_t(st.body_off % 251);
    size_t len = size_t(std::min<uint64_t>(st.body_left, sizeof pattern.bytes - phase));
    auto n = c.write(pattern.bytes + phase, len);
    if (!n) return false;
    st.body_left -= *n;
    st.body_off += *n;
  }
  return true;
}

// Drives one connection as far as it goes without waiting: the response in
// progress, then the next request already received, then reading more.
Step serve(keel::Connection c, Http& st) {
  for (;;) {
    if (!write_response(c, st)) return Step::wait;
    if (st.close_after) {
      (void)c.close();
      return Step::closed;
    }
    if (st.discard > 0) {  // a request body: skip it
      size_t n = size_t(std::min<uint64_t>(st.discard, st.in.size()));
      st.in.erase(0, n);
      st.discard -= n;
    }
    Request req;
    size_t consumed = 0;
    Parse p = st.discard > 0 ? Parse::incomplete : parse_request(st.in, req, consumed);
    if (p == Parse::ok) {
      st.close_after = !req.keep_alive;
      route(st, req);
      st.discard = req.body;
      st.in.erase(0, consumed);
      continue;
    }
    if (p == Parse::bad) {
      constexpr std::string_view msg = "bad request\n";
      st.close_after = true;
      respond(st, 400, "Bad Request", "text/plain", msg.size(), msg, false);
      st.in.clear();
      continue;
    }
    if (st.eof) {  // nothing more will come: a partial request is dropped
      (void)c.close();
      return Step::closed;
    }
    char buf[4096];
    auto n = c.read(buf, sizeof buf);
    if (!n) return Step::wait;  // would_block: a readable event follows
    if (*n == 0) st.eof = true;
    st.in.append(buf, *n);
  }
}

void server(keel::Stack& stack, uint16_t port) {
  if (!examples::listen(stack, "http_server", port, {.backlog = 1024})) return;
  examples::ConnTable<Http> conns;
  while (stack.running()) {
    for (const keel::Event& ev : stack.poll()) {
      uint64_t id = ev.user;
      if (ev.has(keel::event::accepted)) {
        keel::Connection c = ev.conn;
        (void)c.set_nodelay(true);  // a response's last segment goes at once, not after an ACK
        id = conns.attach(c);
      }
      Http* st = conns.at(id);
      if (st == nullptr) continue;
      if (ev.has(keel::event::closed) || serve(ev.conn, *st) == Step::closed) conns.detach(id);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const char* usage = "usage: http_server [--config FILE] [PORT]   (PORT: 80 if not given)";
  return examples::server_main(argc, argv, usage, 80, server);
}
