// SPDX-License-Identifier: BSD-3-Clause
// SYN cookies: when a listener's SYN queue is full, the SYN-ACK's sequence
// number carries what the connection needs, so no state is kept until the
// peer's ACK proves the address. Layout of the 32-bit ISS:
//   bits 31..27  time slot (64 s units, mod 32)
//   bits 26..24  MSS index into mss_table
//   bits 23..0   SipHash(key, 4-tuple, peer ISN, slot, MSS index) truncated
// Window scale and SACK-permitted ride in the low 6 bits of our timestamp
// (echoed back in TSecr); without timestamps they are off, as in Linux.
#include "tcp/siphash.hpp"
#include "tcp/tcp_stack.hpp"

namespace keel::tcp {

namespace {
constexpr uint16_t mss_table[8] = {536, 1200, 1300, 1380, 1400, 1440, 1460, 8960};
constexpr uint64_t slot_ns = 64'000'000'000;

uint32_t cookie_hash(const uint8_t key[16], const ConnKey& k, uint32_t peer_isn, uint32_t slot,
                     uint32_t mss_idx) {
  struct {
    ConnKey k;
    uint32_t isn, slot, idx;
  } in{k, peer_isn, slot, mss_idx};
  return uint32_t(siphash24(key, &in, sizeof in)) & 0xffffff;
}
}  // namespace

uint32_t TcpStack::make_cookie(const ConnKey& k, uint32_t peer_isn, uint16_t mss,
                               uint64_t now_ns) const {
  uint32_t idx = 0;
  for (uint32_t i = 0; i < 8; ++i)
    if (mss_table[i] <= mss) idx = i;  // the largest table MSS not above the peer's
  uint32_t slot = uint32_t(now_ns / slot_ns) & 0x1f;
  return slot << 27 | idx << 24 | cookie_hash(secret_, k, peer_isn, slot, idx);
}

uint16_t TcpStack::check_cookie(const ConnKey& k, uint32_t peer_isn, uint32_t cookie,
                                uint64_t now_ns) const {
  uint32_t slot = cookie >> 27;
  uint32_t idx = (cookie >> 24) & 7;
  uint32_t now_slot = uint32_t(now_ns / slot_ns) & 0x1f;
  // Valid for the current and the previous slot (64 to 128 s).
  if (slot != now_slot && slot != ((now_slot + 31) & 0x1f)) return 0;
  if ((cookie & 0xffffff) != cookie_hash(secret_, k, peer_isn, slot, idx)) return 0;
  return mss_table[idx];
}

}  // namespace keel::tcp
