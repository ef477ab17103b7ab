// SPDX-License-Identifier: BSD-3-Clause
// keel::Buffer over an rte_mbuf chain.
#include <keel/buffer.hpp>

#include <rte_mbuf.h>

#include <cstring>

#include "api/stack_core.hpp"

namespace keel {

size_t Buffer::size() const { return m_ ? m_->pkt_len : 0; }
size_t Buffer::segment_count() const { return m_ ? m_->nb_segs : 0; }

rte_mbuf* Buffer::next_of(rte_mbuf* s) { return s->next; }
Segment Buffer::segment_of(rte_mbuf* s) { return {rte_pktmbuf_mtod(s, uint8_t*), s->data_len}; }

Segment Buffer::segment(size_t i) const {
  rte_mbuf* s = m_;
  while (s != nullptr && i-- > 0) s = s->next;
  return s ? segment_of(s) : Segment{};
}

size_t Buffer::copy_to(void* dst, size_t cap, size_t offset) const {
  if (m_ == nullptr || offset >= m_->pkt_len) return 0;
  uint32_t n = uint32_t(std::min<size_t>(cap, m_->pkt_len - offset));
  const void* p = rte_pktmbuf_read(m_, uint32_t(offset), n, dst);
  if (p != dst) std::memcpy(dst, p, n);
  return n;
}

Result<void> Buffer::copy_from(const void* src, size_t len, size_t offset) {
  if (m_ == nullptr) return fail(Errc::bad_handle);
  if (offset > m_->pkt_len || len > m_->pkt_len - offset) return fail(Errc::invalid_argument);
  const auto* in = static_cast<const uint8_t*>(src);
  for (rte_mbuf* s = m_; s != nullptr && len > 0; s = s->next) {
    if (offset >= s->data_len) {
      offset -= s->data_len;
      continue;
    }
    size_t n = std::min<size_t>(len, s->data_len - offset);
    std::memcpy(rte_pktmbuf_mtod_offset(s, uint8_t*, offset), in, n);
    in += n;
    len -= n;
    offset = 0;
  }
  return {};
}

void Buffer::return_credit() {
  if (owner_ != nullptr && credit_ > 0) owner_->return_credit(slot_, gen_, credit_);
  owner_ = nullptr;
  credit_ = 0;
}

rte_mbuf* Buffer::release_mbuf() {
  return_credit();
  rte_mbuf* m = m_;
  m_ = nullptr;
  return m;
}

Result<void> Buffer::release() {
  if (m_ == nullptr) return fail(Errc::bad_handle);
  rte_pktmbuf_free(release_mbuf());
  return {};
}

}  // namespace keel
