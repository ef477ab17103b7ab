// SPDX-License-Identifier: BSD-3-Clause
#include "http_response.hpp"

#include <algorithm>
#include <charconv>

namespace keel::pmd::http {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x | 0x20) == (y | 0x20);
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// A comma-separated header value holds `token` (case-insensitive), as Connection does.
bool has_token(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    if (iequals(trim(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

void ResponseParser::start_next() {
  head_.clear();
  body_left_ = 0;
  in_body_ = done_ = close_ = false;
  status_ = 0;
  length_ = 0;
}

ResponseParser::Status ResponseParser::feed(std::string_view in, size_t& used) {
  used = 0;
  if (done_) start_next();
  for (;;) {
    if (!error_.empty()) return Status::error;
    if (!in_body_) {
      // The blank line may straddle two calls: search from just before the old end.
      size_t old = head_.size();
      size_t take = std::min(in.size() - used, max_header_bytes + 1 - old);
      head_.append(in.substr(used, take));
      size_t from = old >= 2 ? old - 2 : 0;
      size_t crlf = head_.find("\n\r\n", from), lf = head_.find("\n\n", from);
      size_t end = std::min(crlf == std::string::npos ? crlf : crlf + 3,
                            lf == std::string::npos ? lf : lf + 2);
      if (end == std::string::npos) {
        used += take;
        if (head_.size() > max_header_bytes) error_ = "header section over 8 KiB";
        return error_.empty() ? Status::incomplete : Status::error;
      }
      used += end - old;
      head_.resize(end);
      if (!parse_header()) return Status::error;
      // RFC 9110 15.2: a 1xx is interim; the real response follows.
      if (status_ >= 100 && status_ < 200) {
        start_next();
        continue;
      }
      in_body_ = true;
      body_left_ = status_ == 204 || status_ == 304 ? 0 : length_;
    }
    uint64_t skip = std::min<uint64_t>(body_left_, in.size() - used);
    body_left_ -= skip;
    used += size_t(skip);
    if (body_left_ > 0) return Status::incomplete;
    done_ = true;
    return Status::complete;
  }
}

bool ResponseParser::parse_header() {
  std::string_view h = head_;
  size_t eol = h.find('\n');
  std::string_view line = trim(h.substr(0, eol));
  // RFC 9112 4: HTTP-version SP 3DIGIT SP [reason]
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ' || line[7] < '0' ||
      line[7] > '9' || (line.size() > 12 && line[12] != ' ')) {
    error_ = "bad status line";
    return false;
  }
  int code = 0;
  auto [p, ec] = std::from_chars(line.data() + 9, line.data() + 12, code);
  if (ec != std::errc{} || p != line.data() + 12 || code < 100) {
    error_ = "bad status code";
    return false;
  }
  status_ = code;
  bool keep_alive = line[7] != '0';  // HTTP/1.0 closes unless told otherwise
  bool have_length = false;
  h.remove_prefix(eol + 1);
  while (!h.empty()) {
    eol = h.find('\n');
    line = trim(h.substr(0, eol));
    h.remove_prefix(eol == std::string_view::npos ? h.size() : eol + 1);
    if (line.empty()) break;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      error_ = "bad header line";
      return false;
    }
    std::string_view name = line.substr(0, colon), value = trim(line.substr(colon + 1));
    if (iequals(name, "content-length")) {
      uint64_t v = 0;
      auto [q, e] = std::from_chars(value.data(), value.data() + value.size(), v);
      // RFC 9112 6.3 (5): an invalid or conflicting length cannot be framed.
      if (value.empty() || e != std::errc{} || q != value.data() + value.size() ||
          (have_length && v != length_)) {
        error_ = "bad Content-Length";
        return false;
      }
      length_ = v;
      have_length = true;
    } else if (iequals(name, "transfer-encoding")) {
      error_ = "Transfer-Encoding not supported";
      return false;
    } else if (iequals(name, "connection")) {
      if (has_token(value, "close")) keep_alive = false;
      else if (has_token(value, "keep-alive")) keep_alive = true;
    }
  }
  close_ = !keep_alive;
  bool bodiless = code < 200 || code == 204 || code == 304;
  if (!have_length && !bodiless) {
    error_ = "no Content-Length (close-delimited body not supported)";
    return false;
  }
  return true;
}

}  // namespace keel::pmd::http
