// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// The HTTP/1.1 response framing `bench http` needs (RFC 9112 6.3): where one
/// response ends and the next begins on a keep-alive connection, whatever way
/// TCP split the bytes. Only the header section is buffered (up to 8 KiB);
/// body bytes are counted, never copied, so large responses cost nothing.
/// Framing it understands: Content-Length, and no body for 1xx/204/304.
/// Chunked or close-delimited bodies are reported as unsupported (keel's http
/// service and nginx's static files always send Content-Length).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace keel::pmd::http {

class ResponseParser {
 public:
  enum class Status : uint8_t {
    incomplete,  ///< all input consumed, the response goes on
    complete,    ///< one response ended; status() etc. describe it
    error,       ///< malformed or unframeable; error() says why; the connection is unusable
  };

  /// Consumes bytes of `in` up to the end of the current response; `used`
  /// says how many. After `complete`, the next call starts a new response.
  Status feed(std::string_view in, size_t& used);

  int status() const { return status_; }
  /// The server said `Connection: close` (or HTTP/1.0 without keep-alive).
  bool close() const { return close_; }
  uint64_t content_length() const { return length_; }
  const std::string& error() const { return error_; }

  /// Largest header section accepted.
  static constexpr size_t max_header_bytes = 8192;

 private:
  bool parse_header();
  void start_next();

  std::string head_;        // header bytes seen so far (until the blank line)
  uint64_t body_left_ = 0;  // body bytes still to skip
  bool in_body_ = false;
  bool done_ = false;       // last call completed a response
  int status_ = 0;
  bool close_ = false;
  uint64_t length_ = 0;
  std::string error_;
};

}  // namespace keel::pmd::http
