// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// keel-pmd's HTTP/1.1 test server, as pure logic: a request parser and a
/// per-connection state machine that takes request bytes in and gives response
/// bytes out. It does no I/O and knows nothing of TCP, so it is tested byte by
/// byte (test/unit/test_pmd_services.cpp); services.cpp drives it from a
/// connection's on_readable / on_writable.
///
/// What it serves (RFC 9110 / 9112):
///   GET|HEAD /          a short HTML page
///   GET|HEAD /bytes/N   N bytes, byte i = i mod 251 (application/octet-stream),
///                       produced as the connection drains: never N bytes in memory
///   other paths         404;  other methods 405 (Allow: GET, HEAD)
///   malformed request   400 and close; header section over 8 KiB: 431 (414 if
///                       the request line alone is) and close; Transfer-Encoding
///                       in a request: 501 and close; HTTP/2+ in a 1.x framing: 505
/// Keep-alive: HTTP/1.1 keeps the connection unless `Connection: close`;
/// HTTP/1.0 closes unless `Connection: keep-alive`. Pipelined requests are
/// answered in order; a request body (Content-Length) is read and discarded.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace keel::pmd::http {

/// Upper bound of a request's header section (request line included).
inline constexpr size_t max_header_bytes = 8192;
/// Largest N /bytes/N serves (2^40); beyond it: 400.
inline constexpr uint64_t max_bytes_count = uint64_t{1} << 40;

enum class ParseStatus : uint8_t {
  incomplete,             ///< no complete header section yet (and nothing wrong so far)
  ok,
  bad_request,            ///< 400: syntax error, bad Content-Length, missing Host in 1.1
  uri_too_long,           ///< 414: the request line alone exceeds the limit
  header_too_large,       ///< 431: the header section exceeds the limit
  not_implemented,        ///< 501: Transfer-Encoding (request bodies we cannot frame)
  version_not_supported,  ///< 505: HTTP/2 or later in HTTP/1 framing
};

/// A parsed request. The views point into the parser's input and are valid
/// only as long as it is.
struct Request {
  std::string_view method;
  std::string_view target;
  uint8_t minor = 1;            ///< HTTP/1.minor (1.2 and later count as 1.1)
  bool keep_alive = true;       ///< after the version's default and Connection
  uint64_t content_length = 0;  ///< request body bytes that follow the header
};

struct ParseResult {
  ParseStatus status = ParseStatus::incomplete;
  size_t consumed = 0;  ///< with ok: bytes of the header section (leading blank lines included)
  Request req;
};

/// Parses the header section at the start of `in`. Bare LF line ends are
/// accepted (RFC 9112 2.2), as are blank lines before the request line.
/// Control characters make it bad_request at once, even before the line ends,
/// so binary garbage (a TLS ClientHello) is refused without waiting for 8 KiB.
ParseResult parse_request(std::string_view in, size_t max_bytes = max_header_bytes);

/// The status code a failed parse is answered with (0 for incomplete / ok).
int status_for(ParseStatus s);
/// "OK", "Not Found", ...; "" for codes it does not know.
std::string_view reason_phrase(int status);

/// What the server does with a well-formed request.
struct Route {
  int status = 200;
  enum class Body : uint8_t { page, pattern, error } body = Body::page;
  uint64_t length = 0;   ///< pattern: N
};

/// Maps method + target to a response (GET/HEAD only; origin- or absolute-form
/// targets; the query is ignored).
Route route(std::string_view method, std::string_view target);

/// Writes bytes [pos, pos + n) of the /bytes pattern (byte i = i mod 251).
void pattern_fill(uint64_t pos, uint8_t* dst, size_t n);

/// One connection's HTTP state: request bytes in, response bytes out.
///
///   input_room() / input_ptr() / input_commit(n)   request bytes (copy them in)
///   peer_closed()                                   no more request bytes
///   produce(dst, cap)                               response bytes, as many as fit
///   done()                                          all produced; close the connection
///
/// Input is taken while the buffer has room even while a response is being
/// produced (pipelining); when it is full the caller stops reading, which
/// closes the TCP window: the state machine needs no more than its buffer.
class Session {
 public:
  Session() { reset(); }
  /// Back to a fresh connection's state (sessions are pooled).
  void reset();

  /// Room for request bytes now; 0 when the buffer is full or the session is done.
  size_t input_room() const { return done_ ? 0 : max_header_bytes - in_len_; }
  uint8_t* input_ptr() { return in_ + in_len_; }
  /// `n` bytes were written at input_ptr(). Precondition: n <= input_room().
  void input_commit(size_t n);
  /// The peer sent FIN: answer what is complete, then be done.
  void peer_closed();

  /// True while response bytes are waiting for produce().
  bool has_output() const { return responding_; }
  /// Writes up to `cap` response bytes into `dst`; returns how many.
  size_t produce(uint8_t* dst, size_t cap);
  /// Every response is out and the connection should be closed.
  bool done() const { return done_ && !responding_; }

  /// Requests answered (or being answered) so far.
  uint64_t requests() const { return requests_; }

 private:
  void next_request();
  void start_response(int status, Route::Body body, uint64_t length, bool head_only,
                      bool keep_alive, bool allow_header);
  void consume_input(size_t n);
  void drop_body();

  uint8_t in_[max_header_bytes];
  size_t in_len_ = 0;
  uint64_t skip_ = 0;          // request body bytes still to discard
  char head_[512];
  size_t head_len_ = 0, head_off_ = 0;
  Route::Body body_ = Route::Body::page;
  const char* text_ = nullptr; // page or error body
  uint64_t body_len_ = 0, body_off_ = 0;
  bool responding_ = false;
  bool close_after_ = false;   // close once this response is out
  bool peer_closed_ = false;
  bool done_ = false;
  uint64_t requests_ = 0;
  char error_body_[64];
};

}  // namespace keel::pmd::http
