// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// In-order received data waiting for the application: the received mbufs
/// themselves (headers stripped), linked through rte_mbuf::next. The
/// application takes them whole (zero copy) or copies out of them.

#include <rte_mbuf.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "engine/mbuf_util.hpp"

namespace keel::tcp {

class RecvQueue {
 public:
  RecvQueue() = default;
  ~RecvQueue() { clear(); }
  RecvQueue(const RecvQueue&) = delete;
  RecvQueue& operator=(const RecvQueue&) = delete;

  /// Appends a packet's data (possibly chained); takes ownership.
  void push(rte_mbuf* m) {
    if (m->pkt_len == 0) {
      rte_pktmbuf_free(m);
      return;
    }
    len_ += m->pkt_len;
    if (head_ == nullptr) head_ = m;
    else tail_->next = m;
    tail_ = rte_pktmbuf_lastseg(m);
  }
  uint32_t size() const { return len_; }
  bool empty() const { return len_ == 0; }

  /// Everything queued, as one packet (pkt_len and nb_segs set on the head),
  /// or nullptr when empty. The caller owns it.
  rte_mbuf* take_all() {
    if (head_ == nullptr) return nullptr;
    rte_mbuf* m = head_;
    uint32_t segs = 0;
    for (rte_mbuf* s = m; s != nullptr; s = s->next) ++segs;
    m->pkt_len = len_;
    m->nb_segs = uint16_t(std::min<uint32_t>(segs, UINT16_MAX));
    head_ = tail_ = nullptr;
    len_ = 0;
    return m;
  }

  /// Copies up to `cap` bytes into `dst`, releasing what was copied.
  uint32_t copy_out(uint8_t* dst, uint32_t cap) {
    uint32_t done = 0;
    while (head_ != nullptr && done < cap) {
      uint32_t take = std::min<uint32_t>(cap - done, head_->data_len);
      std::memcpy(dst + done, rte_pktmbuf_mtod(head_, const uint8_t*), take);
      done += take;
      len_ -= take;
      if (take < head_->data_len) {
        head_->data_off = uint16_t(head_->data_off + take);
        head_->data_len = uint16_t(head_->data_len - take);
        break;
      }
      rte_mbuf* next = head_->next;
      head_->next = nullptr;
      head_->nb_segs = 1;
      rte_pktmbuf_free_seg(head_);
      head_ = next;
    }
    if (head_ == nullptr) tail_ = nullptr;
    return done;
  }

  void clear() {
    engine::free_segments(head_);
    head_ = tail_ = nullptr;
    len_ = 0;
  }

 private:
  rte_mbuf* head_ = nullptr;
  rte_mbuf* tail_ = nullptr;
  uint32_t len_ = 0;
};

}  // namespace keel::tcp
