// SPDX-License-Identifier: BSD-3-Clause
#include "tcp/tcp_header.hpp"

#include "net/byte_order.hpp"

namespace keel::tcp {

using net::load_be16;
using net::load_be32;
using net::store_be16;
using net::store_be32;
namespace f = net::tcp_field;

size_t TcpOptions::wire_len() const {
  size_t n = 0;
  if (mss) n += 4;
  if (sack_permitted && has_timestamp) n += 12;  // SACK-permitted + TS share the NOP padding
  else {
    if (sack_permitted) n += 4;                  // NOP NOP SACK-permitted
    if (has_timestamp) n += 12;                  // NOP NOP TS
  }
  if (wscale >= 0) n += 4;                       // NOP WS
  if (sack_count) n += 4 + 8 * size_t(sack_count);  // NOP NOP SACK
  return n;
}

bool parse_tcp_options(const uint8_t* p, size_t len, TcpOptions& o) {
  size_t i = 0;
  while (i < len) {
    uint8_t kind = p[i];
    if (kind == opt_kind::eol) break;
    if (kind == opt_kind::nop) {
      ++i;
      continue;
    }
    if (i + 1 >= len) return false;  // no length byte
    size_t olen = p[i + 1];
    if (olen < 2 || i + olen > len) return false;
    const uint8_t* v = p + i + 2;
    switch (kind) {
      case opt_kind::mss:
        if (olen != 4) return false;
        o.mss = load_be16(v);
        break;
      case opt_kind::wscale:
        if (olen != 3) return false;
        // RFC 7323 2.3: a shift above 14 is used as 14 (and may be logged).
        o.wscale = int8_t(v[0] > tcp_max_wscale ? tcp_max_wscale : v[0]);
        break;
      case opt_kind::sack_permitted:
        if (olen != 2) return false;
        o.sack_permitted = true;
        break;
      case opt_kind::timestamp:
        if (olen != 10) return false;
        o.has_timestamp = true;
        o.tsval = load_be32(v);
        o.tsecr = load_be32(v + 4);
        break;
      case opt_kind::sack: {
        if ((olen - 2) % 8 != 0 || olen == 2) return false;
        size_t n = (olen - 2) / 8;
        o.sack_count = 0;
        for (size_t b = 0; b < n && b < 4; ++b) {
          o.sack[b] = SackBlock{load_be32(v + 8 * b), load_be32(v + 8 * b + 4)};
          ++o.sack_count;
        }
        break;
      }
      default:
        break;  // unknown options are skipped by their length (RFC 9293 3.2, MUST-6)
    }
    i += olen;
  }
  return true;
}

std::optional<TcpSegment> parse_tcp(const uint8_t* p, size_t len, TcpParseError& err) {
  if (len < net::tcp_min_header_len) {
    err = TcpParseError::truncated;
    return std::nullopt;
  }
  size_t hlen = size_t(p[f::data_off] >> 4) * 4;
  if (hlen < net::tcp_min_header_len || hlen > len) {
    err = TcpParseError::bad_data_offset;
    return std::nullopt;
  }
  TcpSegment s;
  s.src_port = load_be16(p + f::src_port);
  s.dst_port = load_be16(p + f::dst_port);
  s.seq = load_be32(p + f::seq);
  s.ack = load_be32(p + f::ack);
  s.flags = p[f::flags];
  s.window = load_be16(p + f::window);
  s.urgent = load_be16(p + f::urgent);
  s.header_len = hlen;
  if (!parse_tcp_options(p + net::tcp_min_header_len, hlen - net::tcp_min_header_len, s.opt)) {
    err = TcpParseError::bad_options;
    return std::nullopt;
  }
  return s;
}

size_t emit_tcp(uint8_t* p, const TcpSegment& s) {
  store_be16(p + f::src_port, s.src_port);
  store_be16(p + f::dst_port, s.dst_port);
  store_be32(p + f::seq, s.seq);
  store_be32(p + f::ack, s.ack);
  p[f::flags] = s.flags;
  store_be16(p + f::window, s.window);
  store_be16(p + f::checksum, 0);
  store_be16(p + f::urgent, s.urgent);
  uint8_t* o = p + net::tcp_min_header_len;
  const TcpOptions& t = s.opt;
  if (t.mss) {
    o[0] = opt_kind::mss, o[1] = 4;
    store_be16(o + 2, t.mss);
    o += 4;
  }
  if (t.sack_permitted && t.has_timestamp) {
    o[0] = opt_kind::sack_permitted, o[1] = 2;
    o[2] = opt_kind::timestamp, o[3] = 10;
    store_be32(o + 4, t.tsval);
    store_be32(o + 8, t.tsecr);
    o += 12;
  } else {
    if (t.sack_permitted) {
      o[0] = opt_kind::nop, o[1] = opt_kind::nop, o[2] = opt_kind::sack_permitted, o[3] = 2;
      o += 4;
    }
    if (t.has_timestamp) {
      o[0] = opt_kind::nop, o[1] = opt_kind::nop, o[2] = opt_kind::timestamp, o[3] = 10;
      store_be32(o + 4, t.tsval);
      store_be32(o + 8, t.tsecr);
      o += 12;
    }
  }
  if (t.wscale >= 0) {
    o[0] = opt_kind::nop, o[1] = opt_kind::wscale, o[2] = 3, o[3] = uint8_t(t.wscale);
    o += 4;
  }
  if (t.sack_count) {
    o[0] = opt_kind::nop, o[1] = opt_kind::nop, o[2] = opt_kind::sack;
    o[3] = uint8_t(2 + 8 * t.sack_count);
    for (size_t b = 0; b < t.sack_count; ++b) {
      store_be32(o + 4 + 8 * b, t.sack[b].left);
      store_be32(o + 8 + 8 * b, t.sack[b].right);
    }
    o += 4 + 8 * t.sack_count;
  }
  size_t hlen = size_t(o - p);
  p[f::data_off] = uint8_t((hlen / 4) << 4);
  return hlen;
}

}  // namespace keel::tcp
