// SPDX-License-Identifier: BSD-3-Clause
#include "net/ipv4_reassembly.hpp"

#include <algorithm>
#include <cstring>

#include "net/byte_order.hpp"

namespace keel::net {

using engine::Counter;

namespace {

// IPv4 header field offsets (RFC 791 section 3.1).
namespace ipv4_field {
constexpr size_t ver_ihl = 0;
constexpr size_t total_length = 2;
constexpr size_t id = 4;
constexpr size_t flags_frag = 6;
constexpr size_t protocol = 9;
constexpr size_t checksum = 10;
constexpr size_t src = 12;
constexpr size_t dst = 16;
}  // namespace ipv4_field

constexpr size_t min_header = 20;
constexpr size_t max_header = 60;
constexpr uint16_t flag_mf = 0x2000;
constexpr uint16_t frag_offset_mask = 0x1fff;
constexpr uint32_t max_total_length = 65535;

/// Ones' complement checksum of an IPv4 header whose checksum field is zero.
uint16_t header_checksum(const uint8_t* h, size_t len) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2) sum += load_be16(h + i);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(~sum);
}

/// Copies `len` bytes over the start of the packet, across segments.
/// Precondition: the packet holds at least `len` bytes.
void write_front(rte_mbuf* m, const uint8_t* src, size_t len) {
  for (rte_mbuf* seg = m; seg != nullptr && len > 0; seg = seg->next) {
    size_t n = std::min<size_t>(len, seg->data_len);
    std::memcpy(rte_pktmbuf_mtod(seg, uint8_t*), src, n);
    src += n;
    len -= n;
  }
}

/// Removes the first `n` bytes of a packet whose header may span segments: leading
/// segments holding only header bytes are freed. Returns the new first segment.
/// Precondition: n < pkt_len.
rte_mbuf* strip_front(rte_mbuf* m, uint32_t n) {
  while (n >= m->data_len && m->next != nullptr) {
    rte_mbuf* next = m->next;
    next->pkt_len = m->pkt_len - m->data_len;
    next->nb_segs = uint16_t(m->nb_segs - 1);
    n -= m->data_len;
    m->next = nullptr;
    m->nb_segs = 1;
    rte_pktmbuf_free_seg(m);
    m = next;
  }
  rte_pktmbuf_adj(m, uint16_t(n));  // n < m->data_len here, so it cannot fail
  return m;
}

}  // namespace

Ipv4Reassembler::Ipv4Reassembler(const ReassemblyConfig& cfg, engine::Counters& counters)
    : cfg_(cfg),
      counters_(counters),
      slots_(cfg.max_datagrams),
      frags_(size_t(cfg.max_datagrams) * cfg.max_fragments) {}

Ipv4Reassembler::~Ipv4Reassembler() {
  for (size_t i = 0; i < slots_.size(); ++i)
    if (slots_[i].in_use) {
      Frag* f = frags_of(i);
      for (uint32_t k = 0; k < slots_[i].nfrags; ++k) rte_pktmbuf_free(f[k].m);
      release(i);
    }
}

bool Ipv4Reassembler::expired(const Slot& s, uint64_t now_ns) const {
  return now_ns > s.first_ns && now_ns - s.first_ns > cfg_.timeout_ns;
}

void Ipv4Reassembler::release(size_t slot) {
  slots_[slot] = Slot{};
  --pending_;
}

rte_mbuf* Ipv4Reassembler::drop_datagram(size_t slot, rte_mbuf* m, Counter why) {
  Frag* f = frags_of(slot);
  for (uint32_t k = 0; k < slots_[slot].nfrags; ++k) rte_pktmbuf_free(f[k].m);
  release(slot);
  rte_pktmbuf_free(m);  // null-safe
  counters_.inc(why);
  return nullptr;
}

void Ipv4Reassembler::expire(uint64_t now_ns) {
  for (size_t i = 0; i < slots_.size(); ++i)
    if (slots_[i].in_use && expired(slots_[i], now_ns))
      drop_datagram(i, nullptr, Counter::ip_frag_timeout);
}

rte_mbuf* Ipv4Reassembler::insert(rte_mbuf* m, uint64_t now_ns) {
  uint8_t scratch[min_header];
  const auto* h = static_cast<const uint8_t*>(rte_pktmbuf_read(m, 0, min_header, scratch));
  uint16_t flags_frag = h != nullptr ? load_be16(h + ipv4_field::flags_frag) : 0;
  bool more = flags_frag & flag_mf;
  uint32_t off = uint32_t(flags_frag & frag_offset_mask) * 8;
  if (h != nullptr && !more && off == 0) return m;  // not a fragment

  counters_.inc(Counter::ip_frag_in);
  auto drop_fragment = [&](Counter why) -> rte_mbuf* {
    rte_pktmbuf_free(m);
    counters_.inc(why);
    return nullptr;
  };
  // The caller validated the header; these only guard against a broken precondition.
  if (h == nullptr) return drop_fragment(Counter::ip_frag_bad);
  uint32_t ihl = uint32_t(h[ipv4_field::ver_ihl] & 0x0f) * 4;
  uint32_t total = load_be16(h + ipv4_field::total_length);
  if (ihl < min_header || total < ihl || m->pkt_len != total) return drop_fragment(Counter::ip_frag_bad);

  uint32_t len = total - ihl;
  uint32_t end = off + len;
  // RFC 791: every fragment but the last carries a multiple of 8 bytes, and no datagram
  // exceeds 65535 bytes. COMPAT(linux): an empty fragment is dropped too.
  if (len == 0 || (more && len % 8 != 0) || end > max_total_length - ihl)
    return drop_fragment(Counter::ip_frag_bad);

  Key key{load_be32(h + ipv4_field::src), load_be32(h + ipv4_field::dst),
          load_be16(h + ipv4_field::id), h[ipv4_field::protocol]};

  // One pass: find the datagram, note a free slot, and reap timed-out datagrams so a
  // late fragment never joins a stale one.
  size_t found = slots_.size();
  size_t free_slot = slots_.size();
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    if (s.in_use && expired(s, now_ns)) drop_datagram(i, nullptr, Counter::ip_frag_timeout);
    if (!s.in_use) {
      if (free_slot == slots_.size()) free_slot = i;
      continue;
    }
    if (s.key == key) {
      found = i;
      break;
    }
  }
  if (found == slots_.size()) {
    // A full table drops the newcomer rather than evicting: eviction lets a flood of
    // bogus first fragments push out every real datagram.
    if (free_slot == slots_.size()) return drop_fragment(Counter::ip_frag_table_full);
    found = free_slot;
    Slot& s = slots_[found];
    s = Slot{};
    s.key = key;
    s.first_ns = now_ns;
    s.in_use = true;
    ++pending_;
  }

  Slot& s = slots_[found];
  Frag* f = frags_of(found);
  const uint32_t n = s.nfrags;

  if (!more) {
    // A second last fragment must agree on the end, and nothing may lie beyond it.
    if (s.end != 0 && s.end != end) return drop_datagram(found, m, Counter::ip_frag_overlap);
    if (n > 0 && f[n - 1].off + f[n - 1].len > end)
      return drop_datagram(found, m, Counter::ip_frag_overlap);
  } else if (s.end != 0 && end > s.end) {
    return drop_datagram(found, m, Counter::ip_frag_overlap);
  }

  // Held fragments never overlap, so sorted by offset they are sorted by end as well:
  // only the neighbours either side can overlap the newcomer.
  Frag* pos = std::lower_bound(f, f + n, off, [](const Frag& a, uint32_t o) { return a.off < o; });
  if (pos != f + n && pos->off == off && pos->len == len && pos->last == !more) {
    return drop_fragment(Counter::ip_frag_duplicate);
  }
  // RFC 5722-style: any other overlap makes the datagram untrustworthy, so drop it all.
  if ((pos != f + n && pos->off < end) || (pos != f && (pos - 1)->off + (pos - 1)->len > off))
    return drop_datagram(found, m, Counter::ip_frag_overlap);
  if (n >= cfg_.max_fragments) return drop_datagram(found, m, Counter::ip_frag_too_many);

  std::move_backward(pos, f + n, f + n + 1);
  *pos = Frag{m, off, len, uint8_t(ihl), !more};
  ++s.nfrags;
  s.received += len;
  if (!more) s.end = end;
  if (s.end != 0 && s.received == s.end) return complete(found);
  return nullptr;
}

rte_mbuf* Ipv4Reassembler::complete(size_t slot) {
  Slot& s = slots_[slot];
  Frag* f = frags_of(slot);
  rte_mbuf* head = f[0].m;  // offset 0: coverage is complete and nothing overlaps
  uint32_t ihl = f[0].ihl_bytes;
  // The end was checked against each fragment's own IHL; the datagram takes the first's.
  if (ihl + s.end > max_total_length) return drop_datagram(slot, nullptr, Counter::ip_frag_bad);

  // Link by hand, keeping the tail: rte_pktmbuf_chain walks the whole chain each call.
  rte_mbuf* tail = rte_pktmbuf_lastseg(head);
  uint32_t k = 1;
  for (; k < s.nfrags; ++k) {
    rte_mbuf* p = strip_front(f[k].m, f[k].ihl_bytes);
    f[k].m = nullptr;
    if (uint32_t(head->nb_segs) + p->nb_segs > RTE_MBUF_MAX_NB_SEGS) {
      rte_pktmbuf_free(p);
      break;
    }
    tail->next = p;
    head->nb_segs = uint16_t(head->nb_segs + p->nb_segs);
    head->pkt_len += p->pkt_len;
    tail = rte_pktmbuf_lastseg(p);
  }
  if (k < s.nfrags) {  // too many segments for one mbuf chain
    for (uint32_t j = k; j < s.nfrags; ++j) rte_pktmbuf_free(f[j].m);  // null-safe
    s.nfrags = 0;
    return drop_datagram(slot, head, Counter::ip_frag_too_many);
  }

  // The first fragment's header becomes the datagram's (RFC 791 section 3.2).
  uint8_t hdr[max_header];
  const auto* h = static_cast<const uint8_t*>(rte_pktmbuf_read(head, 0, ihl, hdr));
  if (h != hdr) std::memcpy(hdr, h, ihl);
  store_be16(hdr + ipv4_field::total_length, uint16_t(ihl + s.end));
  uint16_t flags_frag = load_be16(hdr + ipv4_field::flags_frag);
  store_be16(hdr + ipv4_field::flags_frag, uint16_t(flags_frag & ~(flag_mf | frag_offset_mask)));
  store_be16(hdr + ipv4_field::checksum, 0);
  store_be16(hdr + ipv4_field::checksum, header_checksum(hdr, ihl));
  write_front(head, hdr, ihl);

  s.nfrags = 0;  // the chain owns every fragment now
  release(slot);
  counters_.inc(Counter::ip_reassembled);
  return head;
}

}  // namespace keel::net
