// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// RACK (RFC 8985): time-based loss detection for a SACK connection. It keeps
/// a log of what was sent when over the outstanding sequence space
/// [snd.una, snd.max), and from the ACKs learns which segment sent last has been
/// delivered. An octet is deemed lost once something sent after it was delivered
/// and a reordering window has passed since:
///
///     lost  <=>  sent before RACK's segment  and  xmit + RACK.rtt + reo_wnd <= now
///
/// That finds lost retransmissions and losses near the tail, which the RFC 6675
/// DupThresh rule does not (they fell back to the RTO), and tolerates reordering
/// shorter than reo_wnd, which DupThresh takes for loss.
///
/// Memory: an idle connection (nothing in flight) needs no log, and most
/// connections with data in flight need only a few runs (a request and its
/// response, or bursts coalesced within a sixteenth of the minimum RTT). So a
/// Rack holds `inline_runs` runs of 16 bytes itself and borrows a log of
/// `max_runs` runs from its stack's RackLogPool when it needs more, returning it
/// when everything is acknowledged (as ReassemblyQueues are lent). When the pool
/// is empty the log stays at inline_runs (counted: tcp_rack_log_exhausted): runs
/// merge earlier, which makes detection by time coarser, never spurious (see
/// below): a loss is found once something sent after its whole run is delivered
/// (a resend, new data), else by the RTO, which marks the oldest run lost.
///
/// The log is a bounded array of runs: each run is a stretch of sequence space
/// sent at about the same time (one burst of output, or new data sent within a
/// sixteenth of the minimum RTT), with flags. Runs cover [start(), end())
/// without gaps:
///
///     start_                                                         end()
///       | run 0: t=5 | run 1: t=9, retransmitted | run 2: t=7, lost |
///
/// When the array is full, adjacent runs merge: a run the scoreboard shows fully
/// SACKed first (its time no longer matters), else the pair whose send times lie
/// closest. A merged run keeps the earliest and the latest send time of its
/// octets: loss checks use the latest (an octet is never deemed lost early) and
/// RACK's "most recently sent delivered" the earliest (it never runs ahead), so
/// merging only makes detection later, never spurious. With the SACK scoreboard
/// (which octets arrived) the log answers RFC 6675's pipe and NextSeg questions.
///
/// Times are kept in microseconds, modulo 2^32 (about 71 minutes; every octet in
/// flight is far younger than that), and every transmission gets a distinct,
/// later time than the one before (+1 us within one poll of the instance), so
/// that "sent after" is the order of sending. No allocation; owned by one TCB
/// (neither copyable nor movable: it may point into itself).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/counters.hpp"
#include "tcp/sack_scoreboard.hpp"

namespace keel::tcp {

class RackLogPool;

class Rack {
 public:
  /// Runs kept at most with a log borrowed from the pool (the log merges runs beyond it).
  static constexpr size_t max_runs = 64;
  /// Runs kept in the Rack itself: without a borrowed log (at least 3: a resend
  /// or a loss mark may split one run in three).
  static constexpr size_t inline_runs = 5;
  /// Run flags.
  static constexpr uint8_t retransmitted = 1;  ///< sent more than once
  static constexpr uint8_t lost = 2;           ///< deemed lost and not resent since

  /// A stretch of the log, [start of the run, end).
  struct Run {
    uint32_t start, end;
    uint32_t first_us, last_us;  ///< earliest and latest send time of its octets
    uint8_t flags;
  };

  /// What one ACK says (RFC 8985 6.2 input).
  struct Ack {
    uint32_t una_before = 0;       ///< SND.UNA before this ACK
    uint32_t una_after = 0;        ///< SND.UNA after it
    uint32_t snd_nxt = 0;          ///< highest sequence sent + 1 (SND.MAX)
    const SackBlock* blocks = nullptr;
    size_t n = 0;                  ///< SACK blocks as received
    bool dsack = false;            ///< the first block is a D-SACK (from SackScoreboard::update)
    uint64_t now_ns = 0;
  };

  /// `pool`: where to borrow a log of max_runs runs (nullptr: inline_runs only).
  explicit Rack(RackLogPool* pool = nullptr) : pool_(pool) {}
  ~Rack() {
    count_ = 0;
    release();
  }
  Rack(const Rack&) = delete;
  Rack& operator=(const Rack&) = delete;

  /// Sets the pool. Precondition: no log borrowed (a Rack just made or cleared).
  void set_pool(RackLogPool* pool) { pool_ = pool; }
  /// True while a log from the pool is held.
  bool has_log() const { return runs_ != inline_; }
  /// Runs the log can hold now (max_runs with a borrowed log, else inline_runs).
  size_t capacity() const { return cap_; }

  /// Forgets everything: log (returned to the pool) and RACK state (a new connection).
  void clear();

  // ----- the log -----
  bool empty() const { return count_ == 0; }
  /// First octet of the log (valid unless empty()).
  uint32_t start() const { return start_; }
  /// One past the last octet of the log (start() when empty).
  uint32_t end() const { return count_ ? runs_[count_ - 1].end : start_; }
  size_t runs() const { return count_; }
  /// The i-th run, in sequence order. Precondition: i < runs().
  Run run(size_t i) const;

  /// [seq, end) was sent for the first time at now_ns. It extends the log, so
  /// seq == end() unless the log is empty; a log that does not line up (a
  /// caller's bug) is restarted at seq rather than left inconsistent.
  void on_sent(uint32_t seq, uint32_t end, uint64_t now_ns, const SackScoreboard& sb);
  /// [seq, end) was sent again at now_ns: one run, retransmitted, not lost.
  /// Octets outside [start(), end()) are ignored.
  void on_resent(uint32_t seq, uint32_t end, uint64_t now_ns, const SackScoreboard& sb);
  /// The cumulative ACK reached una: forgets the octets below it.
  void advance(uint32_t una);

  // ----- RACK (RFC 8985 6.2) -----
  /// Steps 1-4 for one ACK: which octets it newly delivers (cumulatively or
  /// selectively), the most recently sent of them (RACK.xmit_ts, end_seq, rtt),
  /// min RTT, reordering (a never-resent octet delivered below RACK.fack), and
  /// the D-SACK-driven reordering window multiplier. `before` is the scoreboard
  /// as it was before this ACK's blocks were recorded. Call before advance().
  void on_ack(const Ack& a, const SackScoreboard& before);
  /// Step 5: marks lost what qualifies; returns the time (ns) until the next
  /// outstanding octet would qualify (the reordering timer), 0 if none.
  /// `in_recovery`: fast or RTO recovery (the window is 0 then, unless
  /// reordering was seen). `srtt_ns` caps the window; `mss` for RFC 8985's
  /// "DupThresh segments SACKed" rule.
  uint64_t detect_loss(const SackScoreboard& sb, uint64_t now_ns, uint64_t srtt_ns,
                       bool in_recovery, uint32_t mss);
  /// RFC 8985 6.3, on an RTO: marks lost the first run and every run sent more
  /// than RACK.rtt + reo_wnd ago (with no RTT seen yet: everything).
  void mark_lost_on_rto(const SackScoreboard& sb, uint64_t now_ns, uint64_t srtt_ns);
  /// Marks lost the octets below `edge` that were never resent (RFC 6675 IsLost,
  /// for a connection without an RTT estimate yet).
  void mark_lost_below(uint32_t edge, const SackScoreboard& sb);
  /// Marks [a, b) lost, resent or not (the DupThresh duplicate-ACK rule).
  void mark_lost(uint32_t a, uint32_t b, const SackScoreboard& sb);
  /// Leaving fast or RTO recovery (RFC 8985 6.2 step 4: the multiplier decays).
  void on_recovery_exit();

  /// RFC 8985 6.2 step 4 for the current state.
  uint64_t reo_wnd_ns(const SackScoreboard& sb, uint64_t srtt_ns, bool in_recovery,
                      uint32_t mss) const;

  // ----- questions for output -----
  /// Octets in flight (RFC 6675 pipe with RACK's marks): unSACKed octets of runs
  /// not marked lost. A resent octet counts once: it was resent only after it was
  /// deemed lost (or as a tail loss probe).
  uint32_t pipe(const SackScoreboard& sb) const;
  /// The next octets to resend (NextSeg rule 1 with RACK's marks): the first
  /// unSACKed stretch of the lowest lost run, at most `mss` long, not crossing a
  /// SACKed range or the run. left == right if nothing is lost.
  SackBlock next_lost(const SackScoreboard& sb, uint32_t mss) const;
  /// The highest unSACKed stretch of the log, its last `mss` octets at most (a
  /// tail loss probe's resend); left == right if everything is SACKed.
  SackBlock last_unsacked(const SackScoreboard& sb, uint32_t mss) const;
  /// True if some unSACKed octet is marked lost.
  bool has_lost(const SackScoreboard& sb) const;

  /// One past the highest octet RFC 6675 IsLost holds lost (every hole below it is
  /// lost too), or `una` if none.
  static uint32_t is_lost_edge(const SackScoreboard& sb, uint32_t una, uint32_t snd_max,
                               uint32_t mss);

  // ----- state, for tests and show conns -----
  bool valid() const { return valid_; }  ///< a delivery has set RACK.xmit_ts
  uint64_t rtt_ns() const { return uint64_t(rtt_us_) * 1000; }
  uint64_t min_rtt_ns() const { return uint64_t(min_rtt_us_) * 1000; }  ///< 0: no sample yet
  uint32_t end_seq() const { return end_seq_; }
  uint32_t fack() const { return fack_; }
  bool reordering_seen() const { return reordering_seen_; }
  uint32_t reo_wnd_mult() const { return reo_wnd_mult_; }

 private:
  friend class RackLogPool;
  struct Entry {
    uint32_t end;
    uint32_t first_us, last_us;
    uint8_t flags;
  };

  uint32_t run_start(size_t i) const { return i ? runs_[i - 1].end : start_; }
  /// The send time of a new transmission: now, or just after the last one.
  uint32_t stamp(uint64_t now_ns);
  /// Makes room for `n` more runs, merging runs as the file comment says.
  void make_room(size_t n, const SackScoreboard& sb);
  void merge_at(size_t i);  // runs i and i + 1 become one
  /// Splits the run containing x (strictly inside it) at x; returns the index of
  /// the run starting at x (count_ if x is at or past end()).
  size_t split_at(uint32_t x);

  /// Makes room beyond inline_runs: borrows a log from the pool (false if none).
  bool borrow();
  /// Returns a borrowed log to the pool. Precondition: count_ <= inline_runs.
  void release();

  // Laid out to keep the Rack small: it is in every TCB.
  Entry* runs_ = inline_;          // inline_, or a log from pool_
  RackLogPool* pool_ = nullptr;
  uint32_t start_ = 0;
  uint8_t count_ = 0;
  uint8_t cap_ = inline_runs;      // max_runs with a borrowed log
  uint8_t reo_wnd_mult_ = 1;
  uint8_t reo_wnd_persist_ = 0;
  // RFC 8985 state
  bool valid_ : 1 = false;
  bool reordering_seen_ : 1 = false;
  bool fack_valid_ : 1 = false;
  bool dsack_round_valid_ : 1 = false;
  bool denied_ : 1 = false;        // the pool had no log for this episode (counted once)
  // False only when no run is marked lost with octets outstanding (next_lost
  // found none since the last marking): output() asks on every call.
  mutable bool maybe_lost_ : 1 = false;
  uint32_t xmit_us_ = 0;     // RACK.xmit_ts
  uint32_t end_seq_ = 0;     // RACK.end_seq
  uint32_t rtt_us_ = 0;      // RACK.rtt
  uint32_t min_rtt_us_ = 0;  // RACK.min_RTT, 0 = none
  uint32_t fack_ = 0;        // RACK.fack: highest octet delivered + 1
  uint32_t dsack_round_ = 0;
  uint32_t last_stamp_ = 0;  // send time of the latest transmission logged
  Entry inline_[inline_runs] = {};
};

/// Logs of Rack::max_runs runs, lent to connections while they need more than
/// Rack::inline_runs (data in flight over several bursts), returned when
/// everything they sent is acknowledged. One per TcpStack; bounded: a Rack that
/// finds it empty keeps its inline runs and the pool counts it
/// (tcp_rack_log_exhausted). The storage is allocated once and not touched until
/// lent (the free list is LIFO, so the same few logs are reused).
class RackLogPool {
 public:
  /// Bytes of one log.
  static constexpr size_t log_bytes = Rack::max_runs * sizeof(Rack::Entry);

  /// `logs` logs; `counters` (may be null) gets tcp_rack_log_exhausted.
  explicit RackLogPool(uint32_t logs, engine::Counters* counters = nullptr);
  RackLogPool(const RackLogPool&) = delete;
  RackLogPool& operator=(const RackLogPool&) = delete;

  uint32_t size() const { return logs_; }
  uint32_t available() const { return uint32_t(free_.size()); }
  /// Times a Rack needed a log and found none (once per episode of data in flight).
  uint64_t exhausted() const { return exhausted_; }
  /// Memory the pool holds (logs and free list), allocated at start.
  uint64_t bytes() const { return uint64_t(logs_) * (log_bytes + sizeof(void*)); }

 private:
  friend class Rack;
  Rack::Entry* take() {
    if (free_.empty()) return nullptr;
    Rack::Entry* e = free_.back();
    free_.pop_back();
    return e;
  }
  void give(Rack::Entry* e) { free_.push_back(e); }
  void denied() {
    ++exhausted_;
    if (counters_ != nullptr) counters_->inc(engine::Counter::tcp_rack_log_exhausted);
  }

  uint32_t logs_;
  std::unique_ptr<Rack::Entry[]> storage_;
  std::vector<Rack::Entry*> free_;
  engine::Counters* counters_;
  uint64_t exhausted_ = 0;
};

}  // namespace keel::tcp
