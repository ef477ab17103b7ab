// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// Typed, bounds-checked views over wire headers (smoltcp style). A view is made
/// only by parse(), which checks the length the accessors need; after that no
/// accessor reads outside the bytes it was given. Field offsets are named
/// constants. Views do not own memory and never modify it except through the
/// explicit set_* calls used when building frames.

#include <cstddef>
#include <cstdint>
#include <optional>

#include "net/addresses.hpp"
#include "net/byte_order.hpp"

namespace keel::net {

// ===== Ethernet =====
namespace eth_field {
inline constexpr size_t dst = 0, src = 6, ethertype = 12;
}
inline constexpr size_t eth_header_len = 14;
inline constexpr uint16_t ethertype_ipv4 = 0x0800, ethertype_arp = 0x0806, ethertype_vlan = 0x8100;

class EthernetView {
 public:
  /// Needs 14 bytes.
  static std::optional<EthernetView> parse(uint8_t* p, size_t len) {
    if (len < eth_header_len) return std::nullopt;
    return EthernetView(p);
  }
  MacAddr dst() const { return MacAddr::from_bytes(p_ + eth_field::dst); }
  MacAddr src() const { return MacAddr::from_bytes(p_ + eth_field::src); }
  uint16_t ethertype() const { return load_be16(p_ + eth_field::ethertype); }
  /// Writes a whole header at `p` (14 bytes).
  static void emit(uint8_t* p, MacAddr dst, MacAddr src, uint16_t ethertype) {
    dst.to_bytes(p + eth_field::dst);
    src.to_bytes(p + eth_field::src);
    store_be16(p + eth_field::ethertype, ethertype);
  }

 private:
  explicit EthernetView(uint8_t* p) : p_(p) {}
  uint8_t* p_;
};

// ===== ARP (Ethernet/IPv4 only) =====
namespace arp_field {
inline constexpr size_t htype = 0, ptype = 2, hlen = 4, plen = 5, oper = 6, sha = 8, spa = 14,
                        tha = 18, tpa = 24;
}
inline constexpr size_t arp_len = 28;
inline constexpr uint16_t arp_request = 1, arp_reply = 2;

/// The validated ARP message the resolver sees.
struct ArpRepr {
  uint16_t oper = 0;
  MacAddr sha, tha;
  Ipv4Addr spa, tpa;

  /// Writes the 28-byte message at `p`.
  void emit(uint8_t* p) const;
};

enum class ArpError { truncated, bad_format, bad_opcode };

/// Parses an ARP message; only Ethernet (1) / IPv4 (0x0800) with lengths 6/4 is accepted.
std::optional<ArpRepr> parse_arp(const uint8_t* p, size_t len, ArpError& err);

// ===== IPv4 =====
namespace ipv4_field {
inline constexpr size_t ver_ihl = 0, tos = 1, total_len = 2, id = 4, flags_frag = 6, ttl = 8,
                        protocol = 9, checksum = 10, src = 12, dst = 16;
}
inline constexpr size_t ipv4_min_header_len = 20;
inline constexpr uint16_t ipv4_flag_df = 0x4000, ipv4_flag_mf = 0x2000, ipv4_frag_offset_mask = 0x1fff;
inline constexpr uint8_t ipproto_icmp = 1, ipproto_tcp = 6, ipproto_udp = 17;

/// Fields read straight from IPv4 header bytes (at least the first 20 at `h`),
/// for code that holds a header but no view; Ipv4View's accessors use them too.
inline size_t ipv4_header_len(const uint8_t* h) { return size_t(h[ipv4_field::ver_ihl] & 0xf) * 4; }
/// The fragment offset in bytes (0 for a whole datagram or a first fragment).
inline uint32_t ipv4_frag_offset(const uint8_t* h) {
  return uint32_t(load_be16(h + ipv4_field::flags_frag) & ipv4_frag_offset_mask) * 8;
}
/// More fragments follow, or this one is not the first.
inline bool ipv4_is_fragment(const uint8_t* h) {
  return (load_be16(h + ipv4_field::flags_frag) & (ipv4_flag_mf | ipv4_frag_offset_mask)) != 0;
}

enum class Ipv4Error { truncated, bad_version, bad_ihl, bad_total_length };

/// View of an IPv4 header. parse() guarantees: avail >= header_len() >= 20 and
/// header_len() <= total_len() <= packet_len. The checksum is checked
/// separately (the port may have verified it already).
class Ipv4View {
 public:
  /// `avail`: contiguous bytes at `p`; `packet_len`: bytes in the whole packet
  /// (larger than `avail` when the packet is a chain of segments).
  static std::optional<Ipv4View> parse(uint8_t* p, size_t avail, size_t packet_len,
                                       Ipv4Error& err);
  static std::optional<Ipv4View> parse(uint8_t* p, size_t len, Ipv4Error& err) {
    return parse(p, len, len, err);
  }

  uint8_t version() const { return p_[ipv4_field::ver_ihl] >> 4; }
  size_t header_len() const { return ipv4_header_len(p_); }
  uint8_t tos() const { return p_[ipv4_field::tos]; }
  uint16_t total_len() const { return load_be16(p_ + ipv4_field::total_len); }
  uint16_t id() const { return load_be16(p_ + ipv4_field::id); }
  bool dont_fragment() const { return load_be16(p_ + ipv4_field::flags_frag) & ipv4_flag_df; }
  bool more_fragments() const { return load_be16(p_ + ipv4_field::flags_frag) & ipv4_flag_mf; }
  /// In bytes.
  uint32_t frag_offset() const { return ipv4_frag_offset(p_); }
  bool is_fragment() const { return ipv4_is_fragment(p_); }
  uint8_t ttl() const { return p_[ipv4_field::ttl]; }
  uint8_t protocol() const { return p_[ipv4_field::protocol]; }
  uint16_t checksum() const { return load_be16(p_ + ipv4_field::checksum); }
  Ipv4Addr src() const { return Ipv4Addr{load_be32(p_ + ipv4_field::src)}; }
  Ipv4Addr dst() const { return Ipv4Addr{load_be32(p_ + ipv4_field::dst)}; }
  /// True when the header checksum verifies.
  bool checksum_ok() const;
  const uint8_t* data() const { return p_; }

 private:
  explicit Ipv4View(uint8_t* p) : p_(p) {}
  uint8_t* p_;
};

/// What ip_output needs to write a 20-byte header (no options).
struct Ipv4Repr {
  Ipv4Addr src, dst;
  uint8_t protocol = 0;
  uint8_t ttl = 64;
  uint8_t tos = 0;
  uint16_t id = 0;
  bool dont_fragment = true;
  uint16_t payload_len = 0;

  /// Writes the header at `p`; the checksum field is computed unless `skip_checksum`
  /// (the port will fill it in).
  void emit(uint8_t* p, bool skip_checksum) const;
};

// ===== ICMP =====
namespace icmp_field {
inline constexpr size_t type = 0, code = 1, checksum = 2, id = 4, seq = 6, mtu = 6;
}
inline constexpr size_t icmp_header_len = 8;
inline constexpr uint8_t icmp_echo_reply = 0, icmp_dest_unreachable = 3, icmp_echo_request = 8,
                         icmp_time_exceeded = 11, icmp_parameter_problem = 12;
inline constexpr uint8_t icmp_code_frag_needed = 4, icmp_code_port_unreachable = 3,
                           icmp_code_proto_unreachable = 2;

// ===== UDP =====
namespace udp_field {
inline constexpr size_t src_port = 0, dst_port = 2, length = 4, checksum = 6;
}
inline constexpr size_t udp_header_len = 8;

// ===== TCP (header only; TCP itself lives in src/tcp) =====
namespace tcp_field {
inline constexpr size_t src_port = 0, dst_port = 2, seq = 4, ack = 8, data_off = 12, flags = 13,
                        window = 14, checksum = 16, urgent = 18;
}
inline constexpr size_t tcp_min_header_len = 20;

}  // namespace keel::net
