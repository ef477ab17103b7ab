// SPDX-License-Identifier: BSD-3-Clause
#include "net/checksum.hpp"

#include <rte_ip.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "net/byte_order.hpp"
#include "net/wire.hpp"

namespace keel::net {

namespace {
uint16_t fold(uint32_t sum) {
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(sum);
}

// The one's-complement sum of native 16-bit words (what rte_raw_cksum returns),
// eight bytes an addition: a sum over wider native words folds to the same
// 16-bit sum (RFC 1071 2(B)), and rte_raw_cksum's 16-bit loop is a quarter of
// the instructions keel spends per small request/response (perf/cost). An odd
// last byte sits in its word's first byte, as in rte_raw_cksum.
static_assert(std::endian::native == std::endian::little, "raw_sum's tail assumes little endian");
uint16_t raw_sum(const uint8_t* p, size_t len) {
  uint64_t sum = 0;
  auto add = [&sum](uint64_t v) {
    sum += v;
    sum += sum < v;  // end-around carry
  };
  for (; len >= 32; p += 32, len -= 32) {
    uint64_t v[4];
    std::memcpy(v, p, 32);
    add(v[0]);
    add(v[1]);
    add(v[2]);
    add(v[3]);
  }
  for (; len >= 8; p += 8, len -= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    add(v);
  }
  if (len > 0) {
    // The 1..7 bytes left, each at the bits a little-endian load would put it
    // (a variable-length memcpy would be a library call).
    uint64_t v = 0;
    unsigned shift = 0;
    if (len & 4) {
      uint32_t w;
      std::memcpy(&w, p, 4);
      v = w;
      p += 4;
      shift = 32;
    }
    if (len & 2) {
      uint16_t w;
      std::memcpy(&w, p, 2);
      v |= uint64_t(w) << shift;
      p += 2;
      shift += 16;
    }
    if (len & 1) v |= uint64_t(*p) << shift;
    add(v);
  }
  uint32_t s32 = uint32_t(sum) + uint32_t(sum >> 32);
  s32 += s32 < uint32_t(sum >> 32);
  s32 = (s32 & 0xffff) + (s32 >> 16);
  s32 = (s32 & 0xffff) + (s32 >> 16);
  return uint16_t(s32);
}

// rte_raw_cksum sums in host order over native 16-bit words; the result is the
// network-order checksum when stored back natively. We return values in host
// order to be stored with store_be16, so convert at the end.
uint16_t to_field(uint16_t native_sum) { return __builtin_bswap16(uint16_t(~native_sum)); }

// rte_raw_cksum_mbuf() as shipped in DPDK 22.11 truncates a segment's 32-bit
// partial sum to 16 bits before byte-swapping it when the segment starts at an
// odd offset, losing its carries (an off-by-one checksum on chains with odd
// segment lengths). Same walk, with each partial sum folded before the swap.
bool raw_sum_mbuf(const rte_mbuf* m, uint32_t off, uint32_t len, uint16_t* out) {
  if (uint64_t(off) + len > m->pkt_len) return false;
  const rte_mbuf* seg = m;
  while (seg != nullptr && off >= seg->data_len) {
    off -= seg->data_len;
    seg = seg->next;
  }
  uint32_t sum = 0;
  for (uint32_t done = 0; done < len; seg = seg->next, off = 0) {
    if (seg == nullptr) return false;
    uint32_t n = std::min<uint32_t>(seg->data_len - off, len - done);
    uint16_t part = raw_sum(rte_pktmbuf_mtod_offset(seg, const uint8_t*, off), n);
    sum += (done & 1) ? __builtin_bswap16(part) : part;
    done += n;
  }
  *out = fold(sum);
  return true;
}

uint32_t pseudo_native(const uint8_t* ip, size_t l4_len) {
  // src, dst, zero+protocol, length: as native 32-bit words, which fold to the
  // same sum as native 16-bit words (see raw_sum).
  uint8_t tail[4] = {0, ip[ipv4_field::protocol], 0, 0};
  store_be16(tail + 2, uint16_t(l4_len));
  uint32_t src, dst, rest;
  std::memcpy(&src, ip + ipv4_field::src, 4);
  std::memcpy(&dst, ip + ipv4_field::dst, 4);
  std::memcpy(&rest, tail, 4);
  uint64_t sum = uint64_t(src) + dst + rest;
  sum = (sum & 0xffffffff) + (sum >> 32);
  return uint32_t((sum & 0xffff) + (sum >> 16));  // at most 17 bits: room for the callers' additions
}
}  // namespace

uint16_t inet_checksum(const uint8_t* p, size_t len) { return to_field(raw_sum(p, len)); }

uint16_t inet_checksum(const rte_mbuf* m, size_t off, size_t len) {
  uint16_t sum = 0;
  if (!raw_sum_mbuf(m, uint32_t(off), uint32_t(len), &sum)) return 0xffff;
  return to_field(sum);
}

uint16_t ipv4_l4_checksum(const uint8_t* ip, const rte_mbuf* m, size_t l4_off, size_t l4_len) {
  uint16_t body = 0;
  if (!raw_sum_mbuf(m, uint32_t(l4_off), uint32_t(l4_len), &body)) return 0xffff;
  return to_field(fold(pseudo_native(ip, l4_len) + body));
}

uint16_t ipv4_l4_checksum(uint32_t src, uint32_t dst, uint8_t protocol, const rte_mbuf* m,
                          size_t l4_off, size_t l4_len) {
  uint8_t ip[ipv4_min_header_len] = {};
  store_be32(ip + ipv4_field::src, src);
  store_be32(ip + ipv4_field::dst, dst);
  ip[ipv4_field::protocol] = protocol;
  return ipv4_l4_checksum(ip, m, l4_off, l4_len);
}

uint16_t ipv4_pseudo_header_sum(const uint8_t* ip, size_t l4_len) {
  return __builtin_bswap16(fold(pseudo_native(ip, l4_len)));
}

}  // namespace keel::net
