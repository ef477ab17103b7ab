// SPDX-License-Identifier: BSD-3-Clause
#include "tcp/reassembly_queue.hpp"

#include <algorithm>
#include <iterator>

#include "tcp/seq.hpp"

namespace keel::tcp {

namespace {

/// Number of segments from `s` to the end of its chain.
uint16_t count_segs(const rte_mbuf* s) {
  uint16_t n = 0;
  for (; s != nullptr; s = s->next) ++n;
  return n;
}

/// Frees one segment cut out of a chain.
void free_seg(rte_mbuf* s) {
  s->next = nullptr;
  s->nb_segs = 1;
  rte_pktmbuf_free_seg(s);
}

/// Removes the first `n` bytes, freeing leading segments that become empty.
/// Returns the new head. Precondition: n < m->pkt_len.
rte_mbuf* trim_front(rte_mbuf* m, uint32_t n) {
  while (n >= m->data_len) {
    rte_mbuf* next = m->next;
    next->pkt_len = m->pkt_len - m->data_len;
    next->nb_segs = uint16_t(m->nb_segs - 1);
    n -= m->data_len;
    free_seg(m);
    m = next;
  }
  rte_pktmbuf_adj(m, uint16_t(n));  // n < m->data_len, so it cannot fail
  return m;
}

/// Keeps the first `keep` bytes, freeing trailing segments that become empty (unlike
/// rte_pktmbuf_trim, which leaves an empty last segment). Precondition:
/// 0 < keep <= m->pkt_len.
void trim_back(rte_mbuf* m, uint32_t keep) {
  if (keep == m->pkt_len) return;
  rte_mbuf* seg = m;
  uint32_t off = 0;
  uint16_t segs = 1;
  while (off + seg->data_len < keep) {  // stop at the segment holding byte keep - 1
    off += seg->data_len;
    seg = seg->next;
    ++segs;
  }
  rte_mbuf* rest = seg->next;
  seg->data_len = uint16_t(keep - off);
  seg->next = nullptr;
  m->pkt_len = keep;
  m->nb_segs = segs;
  if (rest != nullptr) {
    rest->nb_segs = count_segs(rest);  // a consistent head before freeing the tail
    rte_pktmbuf_free(rest);
  }
}

/// Cuts `skip` bytes out of the packet at offset `k`: `m` keeps [0, k) and the returned
/// chain holds [k + skip, pkt_len). Zero copy; only when both cut points fall inside
/// one segment does the tail need an indirect mbuf over that segment's buffer,
/// allocated from the segment's pool. If that allocation fails, `m` keeps [0, k), the
/// rest is freed and nullptr is returned. Precondition: 0 < k, k + skip < m->pkt_len.
rte_mbuf* cut(rte_mbuf* m, uint32_t k, uint32_t skip) {
  const uint32_t total = m->pkt_len;
  const uint32_t t = k + skip;  // first byte of the tail
  // a: the segment holding byte k - 1 (the head's last); b: the one holding byte t.
  rte_mbuf* a = m;
  uint32_t a_off = 0;
  uint16_t head_segs = 1;
  while (a_off + a->data_len < k) {
    a_off += a->data_len;
    a = a->next;
    ++head_segs;
  }
  rte_mbuf* b = a;
  uint32_t b_off = a_off;
  while (b_off + b->data_len <= t) {
    b_off += b->data_len;
    b = b->next;
  }

  rte_mbuf* tail;
  if (a == b) {
    tail = rte_pktmbuf_alloc(a->pool);
    if (tail == nullptr) {
      trim_back(m, k);
      return nullptr;
    }
    rte_pktmbuf_attach(tail, a);  // shares a's buffer, holding a reference to it
    tail->data_off = uint16_t(a->data_off + (t - a_off));
    tail->data_len = uint16_t(a->data_len - (t - a_off));
    tail->next = a->next;
  } else {
    for (rte_mbuf* s = a->next; s != b;) {  // segments wholly inside the cut
      rte_mbuf* next = s->next;
      free_seg(s);
      s = next;
    }
    uint16_t drop = uint16_t(t - b_off);
    b->data_off = uint16_t(b->data_off + drop);
    b->data_len = uint16_t(b->data_len - drop);
    tail = b;
  }
  a->data_len = uint16_t(k - a_off);
  a->next = nullptr;
  m->pkt_len = k;
  m->nb_segs = head_segs;
  tail->pkt_len = total - t;
  tail->nb_segs = count_segs(tail);
  return tail;
}

}  // namespace

ReassemblyQueue::ReassemblyQueue(uint32_t max_bytes, uint32_t max_segments)
    : max_bytes_(max_bytes), nodes_(new Node[max_segments]) {
  for (uint32_t i = 0; i < max_segments; ++i) free_.push_back(nodes_[i]);
}

ReassemblyQueue::~ReassemblyQueue() { clear(); }

ReassemblyQueue::Node& ReassemblyQueue::link(List::iterator pos, uint32_t seq, rte_mbuf* m,
                                             uint64_t stamp) {
  Node& n = free_.front();
  free_.pop_front();
  n.m = m;
  n.seq = seq;
  n.len = m->pkt_len;
  n.stamp = stamp;
  n.fin = false;
  queue_.insert(pos, n);
  bytes_ += n.len;
  return n;
}

void ReassemblyQueue::release(Node& n, bool free_mbuf) {
  queue_.erase(queue_.iterator_to(n));
  bytes_ -= n.len;
  if (n.fin) has_fin_ = false;
  if (free_mbuf) rte_pktmbuf_free(n.m);
  n.m = nullptr;
  free_.push_front(n);
}

void ReassemblyQueue::clear() {
  while (!queue_.empty()) release(queue_.front(), true);
  has_fin_ = false;
}

uint32_t ReassemblyQueue::insert(uint32_t seq, rte_mbuf* m, bool fin) {
  auto drop = [m] {
    rte_pktmbuf_free(m);
    return 0u;
  };
  uint32_t len = m->pkt_len;
  if (len == 0) return drop();
  uint32_t end = seq + len;

  // A FIN is the last octet of the sequence space (RFC 9293 3.10.7.4, eighth step):
  // nothing lies at or beyond it, and a second FIN elsewhere is bogus.
  if (has_fin_) {
    if (seq_geq(seq, fin_seq_)) return drop();
    if (seq_gt(end, fin_seq_)) {
      trim_back(m, fin_seq_ - seq);
      end = fin_seq_;
      len = end - seq;
    }
    fin = fin && end == fin_seq_;
  }
  if (fin && !queue_.empty() && seq_gt(queue_.back().end(), end)) fin = false;  // held data beyond

  // First held piece ending above seq. Pieces never overlap, so ends ascend too; search
  // from the back, where a newcomer usually lands.
  auto first = queue_.end();
  while (first != queue_.begin()) {
    auto prev = std::prev(first);
    if (seq_leq(prev->end(), seq)) break;
    first = prev;
  }

  // Dry run: new bytes and pieces, to check the limits before touching anything.
  uint32_t covered = 0, pieces = 0;
  uint32_t cur = seq;
  for (auto it = first; it != queue_.end() && seq_lt(it->seq, end); ++it) {
    if (seq_lt(cur, it->seq)) ++pieces;
    covered += seq_min(it->end(), end) - seq_max(it->seq, seq);
    cur = it->end();
  }
  if (seq_lt(cur, end)) ++pieces;
  const uint32_t new_bytes = len - covered;

  if (new_bytes == 0) {
    // A duplicate: RFC 2018 4 still wants its block first in the next SACK option.
    first->stamp = next_stamp_++;
    if (fin) {  // the held data reaches exactly `end` (nothing lies beyond it)
      queue_.back().fin = true;
      has_fin_ = true;
      fin_seq_ = end;
    }
    return drop();
  }
  // Bounded: drop the newcomer rather than evict held data (the sender retransmits).
  if (uint64_t(bytes_) + new_bytes > max_bytes_ || pieces > free_.size()) return drop();

  // Fill each gap with the matching part of the newcomer; held data wins.
  const uint64_t stamp = next_stamp_++;
  uint32_t queued = 0;
  rte_mbuf* rest = m;  // holds [cur, end)
  cur = seq;
  auto it = first;
  for (; rest != nullptr && it != queue_.end() && seq_lt(it->seq, end); ++it) {
    const uint32_t resume = it->end();  // the newcomer continues after this held piece
    if (seq_lt(cur, it->seq)) {
      // [cur, it->seq) is a gap: queue it, carry on after the held piece.
      const uint32_t k = it->seq - cur;
      rte_mbuf* piece = rest;
      if (seq_lt(resume, end)) rest = cut(piece, k, resume - it->seq);  // nullptr: pool empty
      else { trim_back(piece, k); rest = nullptr; }
      link(it, cur, piece, stamp);
      queued += k;
    } else if (seq_lt(resume, end)) {
      rest = trim_front(rest, resume - cur);  // the held piece covers our front
    } else {
      rte_pktmbuf_free(rest);
      rest = nullptr;
    }
    cur = resume;
  }
  if (rest != nullptr) {
    link(it, cur, rest, stamp);
    queued += end - cur;
  }

  if (fin && queue_.back().end() == end) {
    queue_.back().fin = true;
    has_fin_ = true;
    fin_seq_ = end;
  }
  return queued;
}

rte_mbuf* ReassemblyQueue::pop(uint32_t& rcv_nxt, bool& fin) {
  fin = false;
  rte_mbuf* head = nullptr;
  rte_mbuf* tail = nullptr;
  uint32_t total = 0;
  uint32_t segs = 0;
  while (!queue_.empty()) {
    Node& n = queue_.front();
    if (seq_gt(n.seq, rcv_nxt)) break;  // a hole remains below it
    if (seq_leq(n.end(), rcv_nxt)) {
      // The TCB already took this data in order; only a FIN right at rcv.nxt is news.
      bool fin_here = n.fin && n.end() == rcv_nxt;
      release(n, true);
      if (fin_here) {
        fin = true;
        break;
      }
      continue;
    }
    if (seq_lt(n.seq, rcv_nxt)) {  // the piece straddles rcv.nxt: drop what is below
      uint32_t d = rcv_nxt - n.seq;
      n.m = trim_front(n.m, d);
      n.seq = rcv_nxt;
      n.len -= d;
      bytes_ -= d;
    }
    if (head != nullptr && segs + n.m->nb_segs > RTE_MBUF_MAX_NB_SEGS) break;
    // Link by hand, keeping the tail: rte_pktmbuf_chain walks the whole chain each call.
    if (head == nullptr) head = n.m;
    else tail->next = n.m;
    tail = rte_pktmbuf_lastseg(n.m);
    segs += n.m->nb_segs;
    total += n.len;
    rcv_nxt += n.len;
    fin = n.fin;
    release(n, false);
    if (fin) break;  // nothing follows a FIN
  }
  if (head != nullptr) {
    head->pkt_len = total;
    head->nb_segs = uint16_t(segs);
  }
  return head;
}

size_t ReassemblyQueue::sack_blocks(SackBlock* out, size_t max) const {
  // Blocks are few and max is at most 4 (option space): pick them by repeated passes,
  // each taking the most recently updated block older than the last one taken. A
  // block's recency is its newest piece's stamp; pieces share a stamp only when they
  // came from one segment, and those always lie in one block, so recencies are unique.
  size_t count = 0;
  uint64_t bound = UINT64_MAX;
  while (count < max) {
    uint64_t best = 0;
    SackBlock block{};
    for (auto it = queue_.begin(); it != queue_.end();) {
      uint32_t left = it->seq, right = it->end();
      uint64_t stamp = it->stamp;
      for (++it; it != queue_.end() && it->seq == right; ++it) {
        right = it->end();
        stamp = std::max(stamp, it->stamp);
      }
      if (stamp < bound && stamp > best) {
        best = stamp;
        block = SackBlock{left, right};
      }
    }
    if (best == 0) break;
    out[count++] = block;
    bound = best;
  }
  return count;
}

}  // namespace keel::tcp
