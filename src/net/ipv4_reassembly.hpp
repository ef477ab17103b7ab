// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// IPv4 fragment reassembly (RFC 791 section 3.2, RFC 815, RFC 5722-style overlap policy).
///
/// A bounded table preallocated at construction: `max_datagrams` slots, each with room
/// for `max_fragments` fragment records kept sorted by offset. The hot path allocates
/// nothing, makes no system call and reads no clock (time is passed in).
///
/// Policy, each drop counted by its reason:
///   - a non-last fragment whose payload is not a multiple of 8 bytes, an empty fragment,
///     or one that ends beyond 65535 - IHL: that fragment is dropped (ip_frag_bad);
///   - an exact duplicate (same offset, length and MF): that fragment is dropped
///     (ip_frag_duplicate);
///   - any other overlap, a second last fragment with a different end, or data beyond
///     the known end: the whole datagram is dropped (ip_frag_overlap);
///   - more than `max_fragments` fragments: the whole datagram is dropped (ip_frag_too_many);
///   - a new datagram while every slot is busy: the fragment is dropped, nothing is
///     evicted (ip_frag_table_full);
///   - a datagram whose first fragment arrived more than `timeout_ns` ago is dropped by
///     expire() or when a fragment for it (or for a new datagram) arrives (ip_frag_timeout).

#include <rte_mbuf.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/counters.hpp"

namespace keel::net {

/// Bounds of the reassembly table.
struct ReassemblyConfig {
  uint32_t max_datagrams = 64;           ///< datagrams being reassembled at once (bounded table)
  uint32_t max_fragments = 64;           ///< fragments per datagram
  uint64_t timeout_ns = 30'000'000'000;  ///< RFC 791 suggests 15 s lower bound; Linux uses 30 s
};

/// Reassembles IPv4 datagrams from fragments keyed by (src, dst, protocol, identification).
/// Owned and used by one lcore; not thread-safe.
class Ipv4Reassembler {
 public:
  Ipv4Reassembler(const ReassemblyConfig& cfg, engine::Counters& counters);
  /// Frees every held fragment (counts nothing).
  ~Ipv4Reassembler();
  Ipv4Reassembler(const Ipv4Reassembler&) = delete;
  Ipv4Reassembler& operator=(const Ipv4Reassembler&) = delete;

  /// Takes ownership of a fragment: m's data starts at its IPv4 header, which the caller
  /// has validated (version, IHL, header checksum, total length <= packet length and the
  /// packet trimmed to total length). The mbuf may be a chain, and the header may
  /// straddle segments. Counts ip_frag_in.
  ///
  /// Returns the whole datagram when this fragment completes it, else nullptr (the
  /// fragment is held or was dropped). The datagram is the first fragment's mbuf, its
  /// header rewritten (MF and offset cleared, DF kept, total length set, checksum
  /// recomputed), with the other fragments' payloads chained after it in order.
  /// A packet that is not a fragment (MF clear and offset 0) is returned as is, uncounted.
  rte_mbuf* insert(rte_mbuf* m, uint64_t now_ns);

  /// Drops datagrams whose first fragment arrived more than timeout ago (counts
  /// ip_frag_timeout per datagram).
  void expire(uint64_t now_ns);

  /// Datagrams in progress.
  size_t pending() const { return pending_; }

 private:
  struct Key {
    uint32_t src;
    uint32_t dst;
    uint16_t id;
    uint8_t protocol;
    bool operator==(const Key&) const = default;
  };
  /// One held fragment: its payload covers [off, off + len) of the datagram.
  struct Frag {
    rte_mbuf* m;
    uint32_t off;
    uint32_t len;
    uint8_t ihl_bytes;
    bool last;
  };
  struct Slot {
    Key key{};
    uint64_t first_ns = 0;  ///< when the datagram's first-arriving fragment came
    uint32_t end = 0;       ///< payload length once the last fragment is seen, else 0
    uint32_t received = 0;  ///< payload bytes held (fragments never overlap, so this is coverage)
    uint32_t nfrags = 0;
    bool in_use = false;
  };

  Frag* frags_of(size_t slot) { return frags_.data() + slot * cfg_.max_fragments; }
  bool expired(const Slot& s, uint64_t now_ns) const;
  void release(size_t slot);
  /// Frees the datagram's fragments and `m` (may be null), counts `why`; returns nullptr.
  rte_mbuf* drop_datagram(size_t slot, rte_mbuf* m, engine::Counter why);
  rte_mbuf* complete(size_t slot);

  ReassemblyConfig cfg_;
  engine::Counters& counters_;
  std::vector<Slot> slots_;  ///< max_datagrams entries, sized once
  std::vector<Frag> frags_;  ///< max_datagrams * max_fragments entries, sized once
  size_t pending_ = 0;
};

}  // namespace keel::net
