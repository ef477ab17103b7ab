// SPDX-License-Identifier: BSD-3-Clause
#include "net/wire.hpp"

#include "net/checksum.hpp"

namespace keel::net {

void ArpRepr::emit(uint8_t* p) const {
  store_be16(p + arp_field::htype, 1);
  store_be16(p + arp_field::ptype, ethertype_ipv4);
  p[arp_field::hlen] = 6;
  p[arp_field::plen] = 4;
  store_be16(p + arp_field::oper, oper);
  sha.to_bytes(p + arp_field::sha);
  store_be32(p + arp_field::spa, spa.v);
  tha.to_bytes(p + arp_field::tha);
  store_be32(p + arp_field::tpa, tpa.v);
}

std::optional<ArpRepr> parse_arp(const uint8_t* p, size_t len, ArpError& err) {
  if (len < arp_len) {
    err = ArpError::truncated;
    return std::nullopt;
  }
  if (load_be16(p + arp_field::htype) != 1 || load_be16(p + arp_field::ptype) != ethertype_ipv4 ||
      p[arp_field::hlen] != 6 || p[arp_field::plen] != 4) {
    err = ArpError::bad_format;
    return std::nullopt;
  }
  ArpRepr r;
  r.oper = load_be16(p + arp_field::oper);
  if (r.oper != arp_request && r.oper != arp_reply) {
    err = ArpError::bad_opcode;
    return std::nullopt;
  }
  r.sha = MacAddr::from_bytes(p + arp_field::sha);
  r.spa = Ipv4Addr{load_be32(p + arp_field::spa)};
  r.tha = MacAddr::from_bytes(p + arp_field::tha);
  r.tpa = Ipv4Addr{load_be32(p + arp_field::tpa)};
  return r;
}

std::optional<Ipv4View> Ipv4View::parse(uint8_t* p, size_t avail, size_t packet_len,
                                        Ipv4Error& err) {
  if (avail < ipv4_min_header_len || packet_len < ipv4_min_header_len) {
    err = Ipv4Error::truncated;
    return std::nullopt;
  }
  if ((p[ipv4_field::ver_ihl] >> 4) != 4) {
    err = Ipv4Error::bad_version;
    return std::nullopt;
  }
  size_t ihl = ipv4_header_len(p);
  if (ihl < ipv4_min_header_len || ihl > avail) {
    err = Ipv4Error::bad_ihl;
    return std::nullopt;
  }
  size_t total = load_be16(p + ipv4_field::total_len);
  if (total < ihl || total > packet_len) {
    err = Ipv4Error::bad_total_length;
    return std::nullopt;
  }
  return Ipv4View(p);
}

bool Ipv4View::checksum_ok() const { return inet_checksum(p_, header_len()) == 0; }

void Ipv4Repr::emit(uint8_t* p, bool skip_checksum) const {
  p[ipv4_field::ver_ihl] = 0x45;
  p[ipv4_field::tos] = tos;
  store_be16(p + ipv4_field::total_len, uint16_t(ipv4_min_header_len + payload_len));
  store_be16(p + ipv4_field::id, id);
  store_be16(p + ipv4_field::flags_frag, dont_fragment ? ipv4_flag_df : 0);
  p[ipv4_field::ttl] = ttl;
  p[ipv4_field::protocol] = protocol;
  store_be16(p + ipv4_field::checksum, 0);
  store_be32(p + ipv4_field::src, src.v);
  store_be32(p + ipv4_field::dst, dst.v);
  if (!skip_checksum) store_be16(p + ipv4_field::checksum, inet_checksum(p, ipv4_min_header_len));
}

}  // namespace keel::net
