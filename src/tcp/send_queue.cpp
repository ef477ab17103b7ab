// SPDX-License-Identifier: BSD-3-Clause
#include "tcp/send_queue.hpp"

#include "engine/mbuf_util.hpp"

#include <rte_mbuf.h>

#include <algorithm>
#include <cstring>

namespace keel::tcp {

void SendQueue::append(rte_mbuf* m) {
  uint32_t n = m->pkt_len;
  rte_mbuf* last = rte_pktmbuf_lastseg(m);
  // Drop empty segments' contribution implicitly: they are walked past.
  if (tail_ == nullptr) head_ = m;
  else tail_->next = m;
  tail_ = last;
  len_ += n;
}

void SendQueue::consume(uint32_t n) {
  len_ -= n;
  uint32_t drop = head_off_ + n;
  // Free every segment whose bytes are all acknowledged; segment bases shift down.
  while (head_ != nullptr && drop >= head_->data_len) {
    uint32_t seg_len = head_->data_len;
    rte_mbuf* next = head_->next;
    if (head_ == cur_seg_) cur_seg_ = nullptr;
    else if (cur_seg_ != nullptr) cur_off_ -= seg_len;
    head_->next = nullptr;
    head_->nb_segs = 1;
    rte_pktmbuf_free_seg(head_);
    head_ = next;
    drop -= seg_len;
  }
  head_off_ = drop;
  if (head_ == nullptr) {
    tail_ = nullptr;
    cur_seg_ = nullptr;
    head_off_ = cur_off_ = 0;
  }
}

rte_mbuf* SendQueue::seek(uint32_t off, uint32_t& seg_off) {
  // Queue offsets count from snd.una; segment walk counts from the head segment's start.
  uint32_t abs = off + head_off_;
  rte_mbuf* s = head_;
  uint32_t base = 0;
  if (cur_seg_ != nullptr && cur_off_ <= abs) {
    s = cur_seg_;
    base = cur_off_;
  }
  while (s != nullptr && abs >= base + s->data_len) {
    base += s->data_len;
    s = s->next;
  }
  seg_off = abs - base;
  if (s != nullptr) {
    cur_seg_ = s;
    cur_off_ = base;
  }
  return s;
}

rte_mbuf* SendQueue::slice(uint32_t off, uint32_t len, rte_mempool* pool) {
  uint32_t seg_off = 0;
  rte_mbuf* s = seek(off, seg_off);
  rte_mbuf* head = nullptr;
  rte_mbuf* last = nullptr;
  while (len > 0 && s != nullptr) {
    uint32_t take = std::min<uint32_t>(len, uint32_t(s->data_len) - seg_off);
    if (take > 0) {
      rte_mbuf* mi = rte_pktmbuf_alloc(pool);
      if (mi == nullptr) {
        rte_pktmbuf_free(head);
        return nullptr;
      }
      rte_pktmbuf_attach(mi, s);  // shares s's buffer (refcount), copies its data_off/len
      mi->data_off = uint16_t(s->data_off + seg_off);
      mi->data_len = uint16_t(take);
      mi->pkt_len = take;
      mi->nb_segs = 1;
      mi->next = nullptr;
      if (head == nullptr) head = mi;
      else {
        last->next = mi;
        head->pkt_len += take;
        ++head->nb_segs;
      }
      last = mi;
      len -= take;
    }
    seg_off = 0;
    s = s->next;
  }
  return head;
}

void SendQueue::copy_out(uint32_t off, uint32_t len, uint8_t* dst) const {
  uint32_t abs = off + head_off_;
  const rte_mbuf* s = head_;
  while (s != nullptr && abs >= s->data_len) {
    abs -= s->data_len;
    s = s->next;
  }
  while (len > 0 && s != nullptr) {
    uint32_t take = std::min<uint32_t>(len, uint32_t(s->data_len) - abs);
    std::memcpy(dst, rte_pktmbuf_mtod_offset(s, const uint8_t*, abs), take);
    dst += take;
    len -= take;
    abs = 0;
    s = s->next;
  }
}

void SendQueue::clear() {
  engine::free_segments(head_);
  head_ = tail_ = nullptr;
  cur_seg_ = nullptr;
  head_off_ = len_ = cur_off_ = 0;
}

}  // namespace keel::tcp
