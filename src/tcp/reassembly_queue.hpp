// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// The receiver's out-of-order queue (RFC 9293 3.10.7.4, RFC 2018 4): segments that
/// arrived above rcv.nxt, held as the received mbufs themselves (zero copy) until the
/// hole below them fills.
///
/// Held pieces never overlap: data already held wins, so a newcomer is trimmed to the
/// gaps it fills. If it spans held pieces, it is cut into one piece per gap; a cut that
/// falls inside one mbuf segment takes an indirect mbuf from that segment's own pool
/// (pool memory, not heap); if that pool is empty the newcomer's remainder is dropped.
///
/// Bounded: a piece is admitted only if the queue stays within `max_bytes` payload
/// bytes and `max_segments` pieces, otherwise the whole newcomer is dropped (the
/// sender retransmits it). Nodes come from a pool of `max_segments` sized at
/// construction, so insert() allocates nothing from the heap.
///
/// FIN: the piece ending at the FIN remembers it; data at or beyond a queued FIN is
/// dropped, and a FIN that contradicts held data (held data lies beyond it) is ignored.

#include <rte_mbuf.h>

#include <boost/intrusive/list.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "tcp/sack_scoreboard.hpp"

namespace keel::tcp {

/// Out-of-order segments above rcv.nxt, sorted by sequence number, never overlapping.
/// Owned by one TCB at a time; not thread-safe.
class ReassemblyQueue {
 public:
  /// Preallocates `max_segments` nodes. Precondition: max_segments > 0.
  ReassemblyQueue(uint32_t max_bytes, uint32_t max_segments);
  /// Frees every held mbuf.
  ~ReassemblyQueue();
  ReassemblyQueue(const ReassemblyQueue&) = delete;
  ReassemblyQueue& operator=(const ReassemblyQueue&) = delete;

  /// Takes ownership of `m`, whose data is exactly the segment payload
  /// [seq, seq + m->pkt_len) (possibly a chain); `fin` if the segment carried FIN.
  /// Returns the number of new bytes queued: 0 if it was a duplicate, lay at or beyond
  /// a queued FIN, or would exceed a limit (the mbuf is then freed). A duplicate still
  /// makes its block the most recent for sack_blocks() and may record the FIN.
  /// Precondition: seq > rcv.nxt and m->pkt_len < 2^31 (the TCB handles in-order data
  /// and trims segments to the receive window first).
  uint32_t insert(uint32_t seq, rte_mbuf* m, bool fin);

  /// If the first piece starts at or before `rcv_nxt`, takes the data contiguous from
  /// rcv_nxt on as one mbuf chain (pkt_len and nb_segs set), freeing what lies below
  /// rcv_nxt, and advances rcv_nxt past it. Sets `fin` if that data ended with a FIN
  /// (then rcv_nxt is the FIN's sequence number: the caller consumes the FIN).
  /// Returns nullptr if nothing is contiguous; `fin` may still be set if only a FIN at
  /// rcv_nxt was left. Stops early rather than build a chain of more than
  /// RTE_MBUF_MAX_NB_SEGS segments: call again until it returns nullptr.
  rte_mbuf* pop(uint32_t& rcv_nxt, bool& fin);

  /// Writes up to `max` SACK blocks to advertise, returns how many (RFC 2018 4): the
  /// block holding the most recently received segment first, then the other blocks,
  /// most recently updated first. A block is a maximal run of contiguous pieces.
  size_t sack_blocks(SackBlock* out, size_t max) const;

  /// Payload bytes held.
  uint32_t bytes() const { return bytes_; }
  /// Pieces held (each a node; <= max_segments).
  uint32_t segments() const { return uint32_t(queue_.size()); }
  bool empty() const { return queue_.empty(); }

  /// Frees everything (RST, abort).
  void clear();

 private:
  /// One held piece: payload [seq, seq + len) in `m`.
  struct Node : boost::intrusive::list_base_hook<> {
    rte_mbuf* m = nullptr;
    uint32_t seq = 0;
    uint32_t len = 0;
    uint64_t stamp = 0;  ///< arrival order, for the SACK block order
    bool fin = false;    ///< a FIN follows the piece's last octet
    uint32_t end() const { return seq + len; }
  };
  using List = boost::intrusive::list<Node, boost::intrusive::constant_time_size<true>>;

  /// Takes a node off the free list and links it before `pos`.
  Node& link(List::iterator pos, uint32_t seq, rte_mbuf* m, uint64_t stamp);
  /// Unlinks `n`, frees its mbuf if `free_mbuf`, returns it to the free list.
  void release(Node& n, bool free_mbuf);

  uint32_t max_bytes_;
  std::unique_ptr<Node[]> nodes_;  ///< max_segments nodes, allocated once
  List queue_;                     ///< held pieces, ascending by seq
  List free_;                      ///< unused nodes
  uint32_t bytes_ = 0;
  uint64_t next_stamp_ = 1;
  uint32_t fin_seq_ = 0;           ///< valid if has_fin_: the queued FIN's sequence number
  bool has_fin_ = false;
};

}  // namespace keel::tcp
