// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// Internet checksums over mbufs: a 64-bit-word sum (four times fewer additions
/// than DPDK 22.11's rte_raw_cksum, which the tests compare it with) walked over
/// mbuf chains; we never hand-update a checksum.

#include <cstddef>
#include <cstdint>

struct rte_mbuf;

namespace keel::net {

/// One's-complement sum of `len` bytes of `m` from `off`, across segments, folded
/// and complemented: the value to put in a checksum field, or 0 when verifying
/// a region that includes its checksum and is intact.
uint16_t inet_checksum(const rte_mbuf* m, size_t off, size_t len);

/// Same for contiguous bytes.
uint16_t inet_checksum(const uint8_t* p, size_t len);

/// TCP/UDP checksum over the pseudo header (from the IPv4 header at `ip`) plus
/// `l4_len` bytes of `m` from `l4_off`. Returns the value for the checksum field
/// (0 when verifying an intact segment).
uint16_t ipv4_l4_checksum(const uint8_t* ip, const rte_mbuf* m, size_t l4_off, size_t l4_len);

/// Same, with the pseudo header built from addresses (host order) and protocol,
/// for a packet whose IP header is already stripped.
uint16_t ipv4_l4_checksum(uint32_t src, uint32_t dst, uint8_t protocol, const rte_mbuf* m,
                          size_t l4_off, size_t l4_len);

/// Pseudo-header sum (not complemented) for checksum offload: the port expects
/// it in the L4 checksum field.
uint16_t ipv4_pseudo_header_sum(const uint8_t* ip, size_t l4_len);

}  // namespace keel::net
