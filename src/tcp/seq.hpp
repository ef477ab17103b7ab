// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// TCP sequence-number arithmetic modulo 2^32 (RFC 9293 3.4).

#include <cstdint>

namespace keel::tcp {

inline bool seq_lt(uint32_t a, uint32_t b) { return int32_t(a - b) < 0; }
inline bool seq_leq(uint32_t a, uint32_t b) { return int32_t(a - b) <= 0; }
inline bool seq_gt(uint32_t a, uint32_t b) { return int32_t(a - b) > 0; }
inline bool seq_geq(uint32_t a, uint32_t b) { return int32_t(a - b) >= 0; }
inline uint32_t seq_max(uint32_t a, uint32_t b) { return seq_gt(a, b) ? a : b; }
inline uint32_t seq_min(uint32_t a, uint32_t b) { return seq_lt(a, b) ? a : b; }
/// True if lo <= s < hi.
inline bool seq_in(uint32_t s, uint32_t lo, uint32_t hi) { return seq_leq(lo, s) && seq_lt(s, hi); }

}  // namespace keel::tcp
