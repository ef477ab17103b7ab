// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// The send queue: the bytes from snd.una on, held in the mbufs the application
/// handed over (zero copy), as one chain linked through rte_mbuf::next. Sending
/// a range builds indirect mbufs attached to those buffers, so a retransmission
/// reads the same memory again and nothing is copied. Acknowledged bytes are
/// released segment by segment.
///
///   head_ --> [seg][seg][seg] ... [seg] <-- tail_
///             ^ head_off_: bytes of the head segment already acknowledged

#include <cstdint>

struct rte_mbuf;
struct rte_mempool;

namespace keel::tcp {

class SendQueue {
 public:
  SendQueue() = default;
  ~SendQueue() { clear(); }
  SendQueue(const SendQueue&) = delete;
  SendQueue& operator=(const SendQueue&) = delete;

  /// Appends a packet (possibly chained); takes ownership.
  void append(rte_mbuf* m);
  /// Releases the first `n` bytes (acknowledged). Precondition: n <= size().
  void consume(uint32_t n);
  /// Bytes held (from snd.una).
  uint32_t size() const { return len_; }
  bool empty() const { return len_ == 0; }
  /// A new chain of indirect mbufs (from `pool`) covering [off, off + len) of
  /// the queue, or nullptr if the pool ran dry. Precondition: off + len <= size().
  rte_mbuf* slice(uint32_t off, uint32_t len, rte_mempool* pool);
  /// Copies [off, off + len) into `dst` (ports that cannot chain, tests).
  void copy_out(uint32_t off, uint32_t len, uint8_t* dst) const;
  void clear();

 private:
  rte_mbuf* seek(uint32_t off, uint32_t& seg_off);

  rte_mbuf* head_ = nullptr;
  rte_mbuf* tail_ = nullptr;
  uint32_t head_off_ = 0;
  uint32_t len_ = 0;
  // Cursor: the segment where the last slice ended, so sending new data is O(1).
  rte_mbuf* cur_seg_ = nullptr;
  uint32_t cur_off_ = 0;      // queue offset of cur_seg_'s first byte (relative to head incl. head_off_)
};

}  // namespace keel::tcp
