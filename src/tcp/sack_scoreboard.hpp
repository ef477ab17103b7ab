// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// The sender's SACK scoreboard (RFC 2018, RFC 2883, RFC 6675): which octets above
/// snd.una the peer has selectively acknowledged, and the RFC 6675 loss-recovery
/// queries over it (IsLost, SetPipe, NextSeg rule 1).
///
/// Bounded: at most `max_ranges` merged SACKed ranges in a fixed array, no allocation.
/// When a new disjoint range arrives and the array is full, the highest range is
/// dropped (the newcomer itself if it is the highest). Forgetting SACK information
/// only makes the sender more conservative: fewer octets are deemed lost and the pipe
/// counts the forgotten octets as still in flight; the receiver repeats its blocks, so
/// the information comes back as the holes below it fill. Linux and FreeBSD bound
/// their scoreboards the same way in spirit (FreeBSD: a fixed hole count).
///
/// All sequence numbers are modulo 2^32; every range lies within one window
/// (< 2^31) of snd.una.
///
/// A TCB does not hold one: it holds a PooledSackScoreboard, which borrows a
/// scoreboard from its stack's SackScoreboardPool while the peer has SACKed
/// octets above snd.una (during loss or reordering) and returns it when the
/// cumulative ACK has passed them all. When the pool is empty nothing is
/// recorded (counted: tcp_sack_board_exhausted): the sender knows as little as
/// one whose scoreboard forgot every range (see above): still correct, RACK still
/// learns from each ACK's own blocks, but SACKed octets may be sent again.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/counters.hpp"

namespace keel::tcp {

/// A block of sequence space [left, right), as carried by the SACK option (RFC 2018 3).
struct SackBlock {
  uint32_t left;
  uint32_t right;
};

/// SACKed ranges above snd.una, sorted ascending, merged (no two overlap or touch),
/// each non-empty. Owned by one TCB; not thread-safe.
class SackScoreboard {
 public:
  /// Most merged ranges kept (the highest is dropped when a new one does not fit).
  static constexpr size_t max_ranges = 32;
  /// RFC 6675 DupThresh.
  static constexpr uint32_t dup_thresh = 3;

  /// Forgets everything (end of connection, RTO: RFC 6675 5.1 lets the sender reset it).
  void clear();

  /// Records the SACK blocks of one ACK. `snd_una` is the cumulative ACK after this
  /// ACK's acknowledgment field was applied; `snd_nxt` bounds what the peer can have.
  /// A block is recorded only if snd_una < left < right <= snd_nxt (RFC 2018: a block
  /// starting at or below the cumulative ACK, inverted, or beyond what was sent is
  /// bogus); others are ignored. Returns true if the first block is a D-SACK
  /// (RFC 2883 4): it starts below snd_una, or it lies within the second block. A
  /// D-SACK block is never recorded (it reports a duplicate, not new data).
  bool update(const SackBlock* blocks, size_t n, uint32_t snd_una, uint32_t snd_nxt);
  /// Whether the first of these blocks is a D-SACK (update()'s answer, nothing recorded).
  static bool is_dsack(const SackBlock* blocks, size_t n, uint32_t snd_una, uint32_t snd_nxt);

  /// The cumulative ACK moved to `snd_una`: forgets SACKed octets below it.
  void advance(uint32_t snd_una);

  /// True if nothing is SACKed.
  bool empty() const { return count_ == 0; }
  /// Total octets SACKed (all above snd.una once advance() has been called).
  uint32_t sacked_bytes() const { return sacked_; }
  /// Right edge of the highest SACKed range. Precondition: !empty().
  uint32_t highest_sacked() const { return ranges_[count_ - 1].right; }
  /// True if octet `seq` is SACKed.
  bool is_sacked(uint32_t seq) const;

  /// RFC 6675 IsLost(seq): true if `seq` is not SACKed and either DupThresh
  /// discontiguous SACKed ranges or more than (DupThresh - 1) * mss SACKed octets lie
  /// above it.
  bool is_lost(uint32_t seq, uint32_t mss) const;

  /// RFC 6675 SetPipe: the octets in flight. Every unSACKed octet S in
  /// [snd_una, snd_nxt) counts once if !IsLost(S), and once more if it was
  /// retransmitted in this recovery, i.e. S < high_rxt.
  ///
  /// `high_rxt` is an exclusive edge, like snd.nxt: one past the highest octet
  /// retransmitted in this recovery (RFC 6675's HighRxt + 1, as RFC 6675 numbers
  /// octets inclusively), and snd_una when nothing has been retransmitted.
  /// Precondition: snd_una <= snd_nxt.
  uint32_t pipe(uint32_t snd_una, uint32_t snd_nxt, uint32_t high_rxt, uint32_t mss) const;

  /// RFC 6675 NextSeg rule (1): the segment to retransmit next. Finds the first
  /// unSACKed octet S2 >= `from` (1.a: pass the exclusive high_rxt, never below
  /// snd.una) that lies below the highest SACKed octet (1.b) and IsLost (1.c), and
  /// returns {S2, S2 + len} with len up to `mss`, not crossing the next SACKed range
  /// or snd_nxt. Returns a block with left == right (len 0) if there is none. Rules
  /// (2)-(4) (new data, rescue retransmission) are the TCB's.
  SackBlock next_lost(uint32_t from, uint32_t snd_nxt, uint32_t mss) const;

  /// Number of SACKed ranges held (<= max_ranges).
  size_t ranges() const { return count_; }
  /// The i-th range, ascending. Precondition: i < ranges().
  SackBlock range(size_t i) const { return ranges_[i]; }

 private:
  /// Merges [left, right) into the sorted array, dropping the highest range if full.
  void add(uint32_t left, uint32_t right);
  /// Index of the first range whose right edge is above `seq` (count_ if none).
  size_t first_above(uint32_t seq) const;
  /// IsLost for an unSACKed octet whose SACKed ranges above start at index `i`.
  bool lost_from(size_t i, uint32_t mss) const;

  SackBlock ranges_[max_ranges] = {};
  uint32_t count_ = 0;
  uint32_t sacked_ = 0;  ///< sum of the ranges' lengths
};

class SackScoreboardPool;

/// A TCB's scoreboard: an empty one until the peer SACKs something, then one
/// borrowed from a SackScoreboardPool until the cumulative ACK passes it all (see
/// the file comment). Reads as a `const SackScoreboard&` (what Rack and a
/// snapshot copy take); changes go through update / advance / clear here.
/// Neither copyable nor movable.
class PooledSackScoreboard {
 public:
  explicit PooledSackScoreboard(SackScoreboardPool* pool = nullptr) : pool_(pool) {}
  ~PooledSackScoreboard() { release(); }
  PooledSackScoreboard(const PooledSackScoreboard&) = delete;
  PooledSackScoreboard& operator=(const PooledSackScoreboard&) = delete;

  /// Sets the pool. Precondition: no scoreboard borrowed.
  void set_pool(SackScoreboardPool* pool) { pool_ = pool; }
  /// True while a scoreboard from the pool is held.
  bool has_board() const { return board_ != &none_; }

  const SackScoreboard& get() const { return *board_; }
  operator const SackScoreboard&() const { return *board_; }  // NOLINT: reads as one

  /// SackScoreboard::update; borrows a scoreboard if a block is to be recorded.
  bool update(const SackBlock* blocks, size_t n, uint32_t snd_una, uint32_t snd_nxt);
  /// SackScoreboard::advance; returns the scoreboard once nothing is SACKed.
  void advance(uint32_t snd_una) {
    if (has_board()) advance_board(snd_una);
  }
  /// SackScoreboard::clear; returns the scoreboard.
  void clear();

  bool empty() const { return board_->empty(); }
  uint32_t sacked_bytes() const { return board_->sacked_bytes(); }
  uint32_t highest_sacked() const { return board_->highest_sacked(); }
  bool is_sacked(uint32_t seq) const { return board_->is_sacked(seq); }
  bool is_lost(uint32_t seq, uint32_t mss) const { return board_->is_lost(seq, mss); }
  uint32_t pipe(uint32_t snd_una, uint32_t snd_nxt, uint32_t high_rxt, uint32_t mss) const {
    return board_->pipe(snd_una, snd_nxt, high_rxt, mss);
  }
  SackBlock next_lost(uint32_t from, uint32_t snd_nxt, uint32_t mss) const {
    return board_->next_lost(from, snd_nxt, mss);
  }
  size_t ranges() const { return board_->ranges(); }
  SackBlock range(size_t i) const { return board_->range(i); }

 private:
  void advance_board(uint32_t snd_una);
  bool borrow();
  void release();

  // The empty scoreboard every PooledSackScoreboard without one reads (never written).
  static SackScoreboard none_;
  SackScoreboard* board_ = &none_;
  SackScoreboardPool* pool_ = nullptr;
};

/// Scoreboards lent to connections while their peer has SACKed something above
/// snd.una. One per TcpStack; bounded (beyond it: tcp_sack_board_exhausted).
class SackScoreboardPool {
 public:
  /// `boards` scoreboards; `counters` (may be null) gets tcp_sack_board_exhausted.
  explicit SackScoreboardPool(uint32_t boards, engine::Counters* counters = nullptr);
  SackScoreboardPool(const SackScoreboardPool&) = delete;
  SackScoreboardPool& operator=(const SackScoreboardPool&) = delete;

  uint32_t size() const { return boards_; }
  uint32_t available() const { return uint32_t(free_.size()); }
  /// SACK-carrying ACKs that found no scoreboard free (their blocks not recorded).
  uint64_t exhausted() const { return exhausted_; }
  /// Memory the pool holds (scoreboards and free list), allocated at start.
  uint64_t bytes() const { return uint64_t(boards_) * (sizeof(SackScoreboard) + sizeof(void*)); }

 private:
  friend class PooledSackScoreboard;
  uint32_t boards_;
  std::unique_ptr<SackScoreboard[]> storage_;
  std::vector<SackScoreboard*> free_;
  engine::Counters* counters_;
  uint64_t exhausted_ = 0;
};

}  // namespace keel::tcp
