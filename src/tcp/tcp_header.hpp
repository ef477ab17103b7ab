// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// The TCP header and its options: a validated repr (TcpSegment) parsed from
/// wire bytes, and the emitter that writes one. Parsing never reads past the
/// bytes it is given; a malformed option list rejects the segment.

#include <cstddef>
#include <cstdint>
#include <optional>

#include "net/wire.hpp"
#include "tcp/sack_scoreboard.hpp"

namespace keel::tcp {

namespace flag {
inline constexpr uint8_t fin = 0x01, syn = 0x02, rst = 0x04, psh = 0x08, ack = 0x10, urg = 0x20,
                         ece = 0x40, cwr = 0x80;
}

namespace opt_kind {
inline constexpr uint8_t eol = 0, nop = 1, mss = 2, wscale = 3, sack_permitted = 4, sack = 5,
                         timestamp = 8;
}

inline constexpr size_t tcp_max_header_len = 60;
inline constexpr uint8_t tcp_max_wscale = 14;  // RFC 7323 2.3

struct TcpOptions {
  uint16_t mss = 0;            ///< 0: absent
  int8_t wscale = -1;          ///< -1: absent; clamped to 14 on parse
  bool sack_permitted = false;
  bool has_timestamp = false;
  uint32_t tsval = 0, tsecr = 0;
  uint8_t sack_count = 0;      ///< SACK blocks present (at most 4)
  SackBlock sack[4] = {};

  /// Bytes the options take on the wire, padded to a multiple of 4.
  size_t wire_len() const;
};

/// A TCP header the state machine can trust: data offset within bounds,
/// options well formed. Flags are kept raw; the TCB applies RFC 9293 rules.
struct TcpSegment {
  uint16_t src_port = 0, dst_port = 0;
  uint32_t seq = 0, ack = 0;
  uint8_t flags = 0;
  uint16_t window = 0;   ///< as on the wire (unscaled)
  uint16_t urgent = 0;
  size_t header_len = net::tcp_min_header_len;
  TcpOptions opt;

  bool has(uint8_t f) const { return (flags & f) != 0; }
};

enum class TcpParseError { truncated, bad_data_offset, bad_options };

/// Parses the header at `p` (`len` contiguous bytes, at least the whole header).
std::optional<TcpSegment> parse_tcp(const uint8_t* p, size_t len, TcpParseError& err);

/// Parses an option list of `len` bytes.
bool parse_tcp_options(const uint8_t* p, size_t len, TcpOptions& out);

/// Writes header + options (checksum field zero) at `p`, which must have
/// 20 + s.opt.wire_len() bytes. Uses s.header_len only as an output: returns
/// the length written.
size_t emit_tcp(uint8_t* p, const TcpSegment& s);

}  // namespace keel::tcp
