// SPDX-License-Identifier: BSD-3-Clause
#include "tcp/sack_scoreboard.hpp"

#include <algorithm>

#include "tcp/seq.hpp"

namespace keel::tcp {

void SackScoreboard::clear() {
  count_ = 0;
  sacked_ = 0;
}

bool SackScoreboard::is_dsack(const SackBlock* blocks, size_t n, uint32_t snd_una,
                              uint32_t snd_nxt) {
  if (n == 0) return false;
  const SackBlock& b0 = blocks[0];
  // RFC 2883 4: only the first block may be a D-SACK. Never beyond what was sent.
  if (seq_lt(b0.left, b0.right) && seq_leq(b0.right, snd_nxt)) {
    if (seq_lt(b0.left, snd_una)) return true;  // RFC 2883 4.1.1/4.1.3: below the cumulative ACK
    if (n >= 2 && seq_lt(blocks[1].left, blocks[1].right) && seq_leq(blocks[1].left, b0.left) &&
        seq_leq(b0.right, blocks[1].right))
      return true;  // RFC 2883 4.1.2: a duplicate within the second block
  }
  return false;
}

bool SackScoreboard::update(const SackBlock* blocks, size_t n, uint32_t snd_una, uint32_t snd_nxt) {
  bool dsack = is_dsack(blocks, n, snd_una, snd_nxt);
  for (size_t k = dsack ? 1 : 0; k < n; ++k) {
    const SackBlock& b = blocks[k];
    // RFC 2018 3 / RFC 6675 5.1: a block must lie in (snd.una, snd.nxt] and not be inverted.
    if (seq_lt(snd_una, b.left) && seq_lt(b.left, b.right) && seq_leq(b.right, snd_nxt))
      add(b.left, b.right);
  }
  return dsack;
}

// ----- PooledSackScoreboard -----

SackScoreboard PooledSackScoreboard::none_;

bool PooledSackScoreboard::update(const SackBlock* blocks, size_t n, uint32_t snd_una,
                                  uint32_t snd_nxt) {
  if (!has_board()) {
    // Nothing to record: no board needed (an empty scoreboard stays empty).
    bool any = false;
    for (size_t k = 0; k < n && !any; ++k)
      any = seq_lt(snd_una, blocks[k].left) && seq_lt(blocks[k].left, blocks[k].right) &&
            seq_leq(blocks[k].right, snd_nxt);
    if (!any || !borrow()) return SackScoreboard::is_dsack(blocks, n, snd_una, snd_nxt);
  }
  bool dsack = board_->update(blocks, n, snd_una, snd_nxt);
  if (board_->empty()) release();
  return dsack;
}

void PooledSackScoreboard::advance_board(uint32_t snd_una) {
  board_->advance(snd_una);
  if (board_->empty()) release();
}

void PooledSackScoreboard::clear() {
  if (!has_board()) return;
  board_->clear();
  release();
}

bool PooledSackScoreboard::borrow() {
  if (pool_ == nullptr) return false;
  if (pool_->free_.empty()) {
    ++pool_->exhausted_;
    if (pool_->counters_ != nullptr) pool_->counters_->inc(engine::Counter::tcp_sack_board_exhausted);
    return false;
  }
  board_ = pool_->free_.back();
  pool_->free_.pop_back();
  return true;
}

void PooledSackScoreboard::release() {
  if (has_board()) {
    board_->clear();
    pool_->free_.push_back(board_);
    board_ = &none_;
  }
}

SackScoreboardPool::SackScoreboardPool(uint32_t boards, engine::Counters* counters)
    : boards_(boards), storage_(std::make_unique<SackScoreboard[]>(boards)), counters_(counters) {
  free_.reserve(boards);
  for (uint32_t i = boards; i-- > 0;) free_.push_back(&storage_[i]);
}

void SackScoreboard::add(uint32_t left, uint32_t right) {
  // i: first range not wholly below (and not touching) the new one.
  size_t i = 0;
  while (i < count_ && seq_lt(ranges_[i].right, left)) ++i;
  // j: first range wholly above (and not touching) the new one.
  size_t j = i;
  while (j < count_ && seq_leq(ranges_[j].left, right)) ++j;

  if (i < j) {
    // Ranges i..j-1 overlap or touch [left, right): merge them into ranges_[i].
    SackBlock merged{seq_min(left, ranges_[i].left), seq_max(right, ranges_[j - 1].right)};
    for (size_t k = i; k < j; ++k) sacked_ -= ranges_[k].right - ranges_[k].left;
    ranges_[i] = merged;
    sacked_ += merged.right - merged.left;
    std::copy(ranges_ + j, ranges_ + count_, ranges_ + i + 1);
    count_ -= uint32_t(j - i - 1);
    return;
  }

  // A new disjoint range at index i.
  if (count_ == max_ranges) {
    // Bounded: drop the highest range (see the file comment for why that is safe).
    if (i == count_) return;
    sacked_ -= ranges_[count_ - 1].right - ranges_[count_ - 1].left;
    --count_;
  }
  std::copy_backward(ranges_ + i, ranges_ + count_, ranges_ + count_ + 1);
  ranges_[i] = SackBlock{left, right};
  sacked_ += right - left;
  ++count_;
}

void SackScoreboard::advance(uint32_t snd_una) {
  size_t drop = 0;
  while (drop < count_ && seq_leq(ranges_[drop].right, snd_una)) {
    sacked_ -= ranges_[drop].right - ranges_[drop].left;
    ++drop;
  }
  std::copy(ranges_ + drop, ranges_ + count_, ranges_);
  count_ -= uint32_t(drop);
  // A cumulative ACK inside a SACKed range (a receiver that delivered only part of it):
  // keep the part above snd.una.
  if (count_ > 0 && seq_lt(ranges_[0].left, snd_una)) {
    sacked_ -= snd_una - ranges_[0].left;
    ranges_[0].left = snd_una;
  }
}

bool SackScoreboard::is_sacked(uint32_t seq) const {
  for (size_t i = 0; i < count_; ++i) {
    if (seq_lt(seq, ranges_[i].left)) return false;
    if (seq_lt(seq, ranges_[i].right)) return true;
  }
  return false;
}

size_t SackScoreboard::first_above(uint32_t seq) const {
  size_t i = 0;
  while (i < count_ && seq_leq(ranges_[i].right, seq)) ++i;
  return i;
}

bool SackScoreboard::lost_from(size_t i, uint32_t mss) const {
  // RFC 6675 IsLost: DupThresh discontiguous SACKed ranges above...
  if (count_ - i >= dup_thresh) return true;
  // ...or more than (DupThresh - 1) * SMSS SACKed octets above.
  uint64_t bytes = 0;
  for (size_t k = i; k < count_; ++k) bytes += ranges_[k].right - ranges_[k].left;
  return bytes > uint64_t(dup_thresh - 1) * mss;
}

bool SackScoreboard::is_lost(uint32_t seq, uint32_t mss) const {
  size_t i = first_above(seq);
  if (i < count_ && seq_leq(ranges_[i].left, seq)) return false;  // SACKed: not lost
  return lost_from(i, mss);
}

uint32_t SackScoreboard::pipe(uint32_t snd_una, uint32_t snd_nxt, uint32_t high_rxt,
                              uint32_t mss) const {
  const uint32_t rxt = seq_min(seq_max(high_rxt, snd_una), snd_nxt);
  const uint64_t lost_bytes = uint64_t(dup_thresh - 1) * mss;
  // Walk the holes (unSACKed runs) from the top. Every octet of one hole has the same
  // SACKed ranges above it, so IsLost is the same for the whole hole.
  uint64_t pipe = 0;
  uint32_t above_ranges = 0;
  uint64_t above_bytes = 0;
  uint32_t hole_right = snd_nxt;
  for (size_t i = count_ + 1; i-- > 0;) {
    uint32_t hole_left = i > 0 ? ranges_[i - 1].right : snd_una;
    uint32_t lo = seq_max(hole_left, snd_una);
    uint32_t hi = seq_min(hole_right, snd_nxt);
    if (seq_lt(lo, hi)) {
      bool lost = above_ranges >= dup_thresh || above_bytes > lost_bytes;
      if (!lost) pipe += hi - lo;               // RFC 6675 SetPipe (a)
      uint32_t r = seq_min(hi, rxt);
      if (seq_lt(lo, r)) pipe += r - lo;        // RFC 6675 SetPipe (b): S1 <= HighRxt
    }
    if (i > 0) {
      ++above_ranges;
      above_bytes += ranges_[i - 1].right - ranges_[i - 1].left;
      hole_right = ranges_[i - 1].left;
    }
  }
  return uint32_t(std::min<uint64_t>(pipe, UINT32_MAX));
}

SackBlock SackScoreboard::next_lost(uint32_t from, uint32_t snd_nxt, uint32_t mss) const {
  const SackBlock none{from, from};
  uint32_t s = from;
  size_t i = first_above(s);
  if (i < count_ && seq_leq(ranges_[i].left, s)) s = ranges_[i++].right;  // skip a SACKed run
  // RFC 6675 NextSeg (1.b): S2 must lie below the highest SACKed octet.
  if (i == count_ || seq_geq(s, snd_nxt)) return none;
  // (1.c) IsLost(S2). A higher hole has a subset of these ranges above it, so if this
  // hole is not lost no later one is either.
  if (!lost_from(i, mss)) return none;
  uint32_t len = std::min({mss, ranges_[i].left - s, snd_nxt - s});
  return SackBlock{s, s + len};
}

}  // namespace keel::tcp
