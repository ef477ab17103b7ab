// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// Small mbuf helpers the stock rte_mbuf API lacks.

#include <rte_mbuf.h>

#include <algorithm>

namespace keel::engine {

/// Shortens a (possibly chained) packet to `len` bytes, freeing segments that
/// fall wholly beyond it. Precondition: len <= m->pkt_len.
inline void trim_to(rte_mbuf* m, uint32_t len) {
  uint32_t excess = m->pkt_len - len;
  if (excess == 0) return;
  if (rte_pktmbuf_trim(m, uint16_t(excess)) == 0) return;  // fits in the last segment
  // Walk to the segment holding byte `len - 1` and cut the chain after it.
  rte_mbuf* seg = m;
  uint32_t off = 0;
  while (seg->next != nullptr && off + seg->data_len < len) {
    off += seg->data_len;
    seg = seg->next;
  }
  uint32_t keep = len - off;
  rte_mbuf* rest = seg->next;
  seg->next = nullptr;
  seg->data_len = uint16_t(keep);
  m->pkt_len = len;
  uint16_t segs = 0;
  for (rte_mbuf* s = m; s != nullptr; s = s->next) ++segs;
  m->nb_segs = segs;
  if (rest != nullptr) {
    // `rest` is a tail of the chain: give it a consistent head before freeing.
    rest->nb_segs = 1;
    for (rte_mbuf* s = rest->next; s != nullptr; s = s->next) ++rest->nb_segs;
    rte_pktmbuf_free(rest);
  }
}

/// Removes the first `len` bytes of a (possibly chained) packet, keeping the
/// head mbuf (leading segments may become empty). Precondition: len <= pkt_len.
inline void trim_front(rte_mbuf* m, uint32_t len) {
  m->pkt_len -= len;
  for (rte_mbuf* s = m; s != nullptr && len > 0; s = s->next) {
    uint16_t take = uint16_t(std::min<uint32_t>(len, s->data_len));
    s->data_off = uint16_t(s->data_off + take);
    s->data_len = uint16_t(s->data_len - take);
    len -= take;
  }
}

/// Makes the first `len` bytes contiguous in the first segment if they are not
/// already. Returns false if the packet is shorter or cannot be linearised.
inline bool make_contiguous(rte_mbuf* m, uint32_t len) {
  if (m->data_len >= len) return true;
  if (m->pkt_len < len) return false;
  return rte_pktmbuf_linearize(m) == 0;
}

/// Frees a list of segments linked through `next` one by one: for lists whose
/// head does not describe the whole chain (queues that append and consume
/// segment by segment), where rte_pktmbuf_free would trust nb_segs.
inline void free_segments(rte_mbuf* s) {
  while (s != nullptr) {
    rte_mbuf* next = s->next;
    s->next = nullptr;
    s->nb_segs = 1;
    rte_pktmbuf_free_seg(s);
    s = next;
  }
}

/// A packet of `len` bytes (contents unset) in as many segments as it needs,
/// each holding at most `piece` bytes (0: as much as fits; TCP payload cut at
/// its MSS then maps one segment to one mbuf); the first keeps the default
/// headroom for headers. nullptr if the pool ran out.
inline rte_mbuf* alloc_chain(rte_mempool* pool, uint32_t len, uint32_t piece = 0) {
  rte_mbuf* head = rte_pktmbuf_alloc(pool);
  if (head == nullptr) return nullptr;
  rte_mbuf* tail = head;
  uint32_t left = len;
  for (;;) {
    uint32_t room = rte_pktmbuf_tailroom(tail);
    uint16_t take = uint16_t(std::min<uint32_t>(left, piece != 0 ? std::min(room, piece) : room));
    tail->data_len = take;
    head->pkt_len += take;
    left -= take;
    if (left == 0) return head;
    rte_mbuf* seg = rte_pktmbuf_alloc(pool);
    if (seg == nullptr) {
      rte_pktmbuf_free(head);
      return nullptr;
    }
    tail->next = seg;
    tail = seg;
    ++head->nb_segs;
  }
}

}  // namespace keel::engine
