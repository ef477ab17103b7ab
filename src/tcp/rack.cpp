// SPDX-License-Identifier: BSD-3-Clause
#include "tcp/rack.hpp"

#include <algorithm>

#include "tcp/seq.hpp"

namespace keel::tcp {

namespace {

uint32_t to_us(uint64_t ns) { return uint32_t(ns / 1000); }

// Times modulo 2^32 us: a is later than b.
bool time_after(uint32_t a, uint32_t b) { return int32_t(a - b) > 0; }
uint32_t time_min(uint32_t a, uint32_t b) { return time_after(a, b) ? b : a; }
uint32_t time_max(uint32_t a, uint32_t b) { return time_after(a, b) ? a : b; }

// RFC 8985 RACK_sent_after(t1, seq1, t2, seq2): sent at a later time, or at the
// same time and later in sequence.
bool sent_after(uint32_t t1, uint32_t seq1, uint32_t t2, uint32_t seq2) {
  return time_after(t1, t2) || (t1 == t2 && seq_gt(seq1, seq2));
}

// Walks the scoreboard's ranges alongside ascending stretches of sequence space.
class SackCursor {
 public:
  explicit SackCursor(const SackScoreboard& sb) : sb_(sb) {}

  // SACKed octets in [a, b). Calls must come with non-decreasing a.
  uint32_t sacked(uint32_t a, uint32_t b) {
    skip_below(a);
    uint32_t n = 0;
    for (size_t j = k_; j < sb_.ranges(); ++j) {
      SackBlock r = sb_.range(j);
      if (seq_geq(r.left, b)) break;
      n += seq_min(r.right, b) - seq_max(r.left, a);
    }
    return n;
  }

  // The first unSACKed stretch of [a, b); left == right if there is none.
  SackBlock first_hole(uint32_t a, uint32_t b) {
    skip_below(a);
    uint32_t x = a;
    for (size_t j = k_; j < sb_.ranges(); ++j) {
      SackBlock r = sb_.range(j);
      if (seq_geq(r.left, b)) break;
      if (seq_gt(r.left, x)) return SackBlock{x, r.left};
      x = seq_max(x, r.right);
      if (seq_geq(x, b)) return SackBlock{b, b};
    }
    return SackBlock{x, b};
  }

 private:
  void skip_below(uint32_t a) {
    while (k_ < sb_.ranges() && seq_leq(sb_.range(k_).right, a)) ++k_;
  }
  const SackScoreboard& sb_;
  size_t k_ = 0;
};

}  // namespace

void Rack::clear() {
  count_ = 0;
  release();
  start_ = 0;
  reo_wnd_mult_ = 1;
  reo_wnd_persist_ = 0;
  valid_ = reordering_seen_ = fack_valid_ = dsack_round_valid_ = denied_ = maybe_lost_ = false;
  xmit_us_ = end_seq_ = rtt_us_ = min_rtt_us_ = fack_ = dsack_round_ = last_stamp_ = 0;
}

bool Rack::borrow() {
  if (has_log() || pool_ == nullptr) return false;
  Entry* log = pool_->take();
  if (log == nullptr) {
    if (!denied_) pool_->denied();
    denied_ = true;
    return false;
  }
  std::copy(runs_, runs_ + count_, log);
  runs_ = log;
  cap_ = uint8_t(max_runs);
  return true;
}

void Rack::release() {
  if (has_log()) {
    std::copy(runs_, runs_ + count_, inline_);
    pool_->give(runs_);
    runs_ = inline_;
    cap_ = uint8_t(inline_runs);
  }
  if (count_ == 0) denied_ = false;
}

RackLogPool::RackLogPool(uint32_t logs, engine::Counters* counters)
    : logs_(logs),
      // Not value-initialised: a log's pages are touched only when it is lent.
      storage_(std::make_unique_for_overwrite<Rack::Entry[]>(size_t(logs) * Rack::max_runs)),
      counters_(counters) {
  free_.reserve(logs);
  for (uint32_t i = logs; i-- > 0;) free_.push_back(storage_.get() + size_t(i) * Rack::max_runs);
}

Rack::Run Rack::run(size_t i) const {
  const Entry& e = runs_[i];
  return Run{run_start(i), e.end, e.first_us, e.last_us, e.flags};
}

// ----- the log -----

uint32_t Rack::stamp(uint64_t now_ns) {
  // Strictly later than every earlier transmission: a whole poll of the
  // instance shares one now_ns, and RACK must still know which of two segments
  // sent in it went first (a resend after new data is not "sent before" it).
  uint32_t t = to_us(now_ns);
  if (count_ > 0 && !time_after(t, last_stamp_)) t = last_stamp_ + 1;
  last_stamp_ = t;
  return t;
}

void Rack::on_sent(uint32_t seq, uint32_t end, uint64_t now_ns, const SackScoreboard& sb) {
  if (!seq_lt(seq, end)) return;
  if (count_ == 0 || seq != this->end()) {
    count_ = 0;
    start_ = seq;
  }
  if (count_ > 0) {
    // Nothing else sent since the last run and no time passed: the same burst.
    Entry& l = runs_[count_ - 1];
    if (l.flags == 0 && l.last_us == last_stamp_ && !time_after(to_us(now_ns), last_stamp_)) {
      l.end = end;
      return;
    }
  }
  uint32_t t = stamp(now_ns);
  if (count_ > 0) {
    // Close enough in time to the run before: one run of new data may span a
    // sixteenth of the minimum RTT (a loss in it is found that much later at
    // most), which keeps a window of bursts in a few runs.
    Entry& l = runs_[count_ - 1];
    if (l.flags == 0 && min_rtt_us_ != 0 && t - l.first_us <= min_rtt_us_ / 16) {
      l.end = end;
      l.last_us = t;
      return;
    }
  }
  make_room(1, sb);
  runs_[count_++] = Entry{end, t, t, 0};
}

void Rack::on_resent(uint32_t seq, uint32_t end, uint64_t now_ns, const SackScoreboard& sb) {
  if (count_ == 0) return;
  uint32_t a = seq_max(seq, start_), b = seq_min(end, this->end());
  if (!seq_lt(a, b)) return;
  uint32_t t = stamp(now_ns);
  make_room(2, sb);
  size_t i = split_at(a);
  size_t j = split_at(b);
  runs_[i] = Entry{b, t, t, retransmitted};
  if (j > i + 1) {
    std::copy(runs_ + j, runs_ + count_, runs_ + i + 1);
    count_ = uint8_t(count_ - (j - i - 1));
  }
}

void Rack::advance(uint32_t una) {
  if (count_ == 0 || seq_leq(una, start_)) {
    if (count_ == 0) start_ = una;
    return;
  }
  start_ = una;
  if (seq_geq(una, runs_[count_ - 1].end)) {
    // All delivered: RACK's times would age past the 32-bit clock over a long idle
    // period; the next delivery sets them again. The log goes back to the pool.
    count_ = 0;
    valid_ = false;
    denied_ = false;
    if (has_log()) release();
    return;
  }
  size_t d = 0;
  while (seq_leq(runs_[d].end, una)) ++d;
  std::copy(runs_ + d, runs_ + count_, runs_);
  count_ = uint8_t(count_ - d);
}

size_t Rack::split_at(uint32_t x) {
  if (count_ == 0 || seq_leq(x, start_)) return 0;
  for (size_t i = 0; i < count_; ++i) {
    uint32_t s = run_start(i);
    if (x == s) return i;
    if (seq_lt(x, runs_[i].end)) {
      // x inside run i: [s, x) stays at i, [x, end) becomes i + 1.
      std::copy_backward(runs_ + i, runs_ + count_, runs_ + count_ + 1);
      ++count_;
      runs_[i].end = x;
      return i + 1;
    }
  }
  return count_;
}

void Rack::merge_at(size_t i) {
  Entry& a = runs_[i];
  const Entry& b = runs_[i + 1];
  if (a.flags != b.flags) {
    // Keep what errs on the late side: lost only if both were (a lost octet left
    // unmarked is found again later; a wrongly marked one would be resent).
    a.flags = uint8_t(((a.flags | b.flags) & retransmitted) | (a.flags & b.flags & lost));
  }
  a.end = b.end;
  a.first_us = time_min(a.first_us, b.first_us);
  a.last_us = time_max(a.last_us, b.last_us);
  std::copy(runs_ + i + 2, runs_ + count_, runs_ + i + 1);
  --count_;
}

void Rack::make_room(size_t n, const SackScoreboard& sb) {
  if (count_ + n > cap_) borrow();
  while (count_ + n > cap_ && count_ >= 2) {
    // 1. A fully SACKed run: its octets are delivered, its time no longer matters.
    SackCursor cur(sb);
    size_t sacked_run = count_;
    for (size_t i = 0; i < count_; ++i) {
      uint32_t s = run_start(i);
      if (cur.sacked(s, runs_[i].end) == runs_[i].end - s) {
        sacked_run = i;
        break;
      }
    }
    if (sacked_run < count_) {
      size_t i = sacked_run;
      if (i + 1 < count_) {
        // The next run takes its octets (it now starts where run i started).
        std::copy(runs_ + i + 1, runs_ + count_, runs_ + i);
        --count_;
      } else {
        runs_[i - 1].end = runs_[i].end;
        --count_;
      }
      continue;
    }
    // 2. The adjacent pair whose send times lie closest, alike flags first.
    size_t best = 0;
    bool best_alike = false;
    uint32_t best_span = UINT32_MAX;
    for (size_t i = 0; i + 1 < count_; ++i) {
      const Entry& a = runs_[i];
      const Entry& b = runs_[i + 1];
      bool alike = a.flags == b.flags;
      uint32_t span = time_max(a.last_us, b.last_us) - time_min(a.first_us, b.first_us);
      if ((alike && !best_alike) || (alike == best_alike && span < best_span)) {
        best = i;
        best_alike = alike;
        best_span = span;
      }
    }
    merge_at(best);
  }
}

void Rack::mark_lost(uint32_t a, uint32_t b, const SackScoreboard& sb) {
  if (count_ == 0) return;
  a = seq_max(a, start_);
  b = seq_min(b, end());
  if (!seq_lt(a, b)) return;
  make_room(2, sb);
  size_t i = split_at(a);
  size_t j = split_at(b);
  for (size_t k = i; k < j; ++k) runs_[k].flags |= lost;
  maybe_lost_ = true;
}

void Rack::mark_lost_below(uint32_t edge, const SackScoreboard& sb) {
  if (count_ == 0 || !seq_gt(edge, start_)) return;
  edge = seq_min(edge, end());
  make_room(1, sb);
  size_t j = split_at(edge);
  for (size_t k = 0; k < j; ++k)
    if (!(runs_[k].flags & retransmitted)) runs_[k].flags |= lost;
  maybe_lost_ = true;
}

// ----- RACK -----

void Rack::on_ack(const Ack& a, const SackScoreboard& before) {
  const uint32_t now = to_us(a.now_ns);
  // The stretches this ACK reports: the cumulative advance and the SACK blocks
  // the scoreboard takes (RFC 2018 3: within (SND.UNA, SND.NXT]; never a D-SACK).
  SackBlock pieces[1 + 4];
  size_t np = 0;
  if (seq_gt(a.una_after, a.una_before)) pieces[np++] = SackBlock{a.una_before, a.una_after};
  for (size_t k = a.dsack ? 1 : 0; k < a.n && np < 5; ++k) {
    const SackBlock& b = a.blocks[k];
    if (seq_lt(a.una_after, b.left) && seq_lt(b.left, b.right) && seq_leq(b.right, a.snd_nxt))
      pieces[np++] = b;
  }
  bool found = false;
  uint32_t best_xmit = 0, best_end = 0;
  uint32_t new_fack = fack_valid_ ? fack_ : a.una_before;
  for (size_t p = 0; p < np; ++p) {
    const SackBlock& pc = pieces[p];
    new_fack = seq_max(new_fack, pc.right);
    for (size_t i = 0; i < count_; ++i) {
      uint32_t s = run_start(i);
      uint32_t lo = seq_max(pc.left, s), hi = seq_min(pc.right, runs_[i].end);
      if (!seq_lt(lo, hi)) {
        if (seq_geq(s, pc.right)) break;
        continue;
      }
      SackCursor cur(before);
      SackBlock fresh = cur.first_hole(lo, hi);
      if (fresh.left == fresh.right) continue;  // delivered before: nothing new
      const Entry& r = runs_[i];
      bool resent = r.flags & retransmitted;
      // RFC 8985 6.2 step 3: a never-resent octet delivered below RACK.fack
      // arrived out of order.
      if (!resent && fack_valid_ && seq_lt(fresh.left, fack_)) reordering_seen_ = true;
      uint32_t rtt = now - r.first_us;
      if (resent) {
        // Step 2: too soon after the resend, it was the original that arrived.
        if (min_rtt_us_ != 0 && rtt < min_rtt_us_) continue;
      } else {
        uint32_t sample = std::max<uint32_t>(now - r.last_us, 1);
        if (min_rtt_us_ == 0 || sample < min_rtt_us_) min_rtt_us_ = sample;
      }
      if (!found || sent_after(r.first_us, hi, best_xmit, best_end)) {
        found = true;
        best_xmit = r.first_us;
        best_end = hi;
      }
    }
  }
  if (found) {
    rtt_us_ = now - best_xmit;
    if (!valid_ || sent_after(best_xmit, best_end, xmit_us_, end_seq_)) {
      xmit_us_ = best_xmit;
      end_seq_ = best_end;
    }
    valid_ = true;
  }
  if (np > 0) {
    fack_ = new_fack;
    fack_valid_ = true;
  }
  // Step 4: one step of the window multiplier per round trip that saw a D-SACK.
  if (dsack_round_valid_ && seq_geq(a.una_after, dsack_round_)) dsack_round_valid_ = false;
  if (!dsack_round_valid_ && a.dsack) {
    dsack_round_valid_ = true;
    dsack_round_ = a.snd_nxt;
    if (reo_wnd_mult_ < 64) ++reo_wnd_mult_;
    reo_wnd_persist_ = 16;
  }
}

void Rack::on_recovery_exit() {
  if (reo_wnd_persist_ > 0) --reo_wnd_persist_;
  if (reo_wnd_persist_ == 0) reo_wnd_mult_ = 1;
}

uint64_t Rack::reo_wnd_ns(const SackScoreboard& sb, uint64_t srtt_ns, bool in_recovery,
                          uint32_t mss) const {
  if (!reordering_seen_) {
    if (in_recovery) return 0;
    if (sb.sacked_bytes() >= uint64_t(SackScoreboard::dup_thresh) * mss) return 0;
  }
  uint64_t base = min_rtt_us_ != 0 ? uint64_t(min_rtt_us_) * 1000 : srtt_ns;
  uint64_t w = base / 4 * reo_wnd_mult_;
  return srtt_ns != 0 ? std::min(w, srtt_ns) : w;
}

uint64_t Rack::detect_loss(const SackScoreboard& sb, uint64_t now_ns, uint64_t srtt_ns,
                           bool in_recovery, uint32_t mss) {
  if (!valid_ || count_ == 0) return 0;
  const uint32_t now = to_us(now_ns);
  const int64_t limit = int64_t(rtt_us_) + int64_t(reo_wnd_ns(sb, srtt_ns, in_recovery, mss) / 1000);
  int64_t timeout = -1;
  bool partial = false;
  uint32_t partial_lo = 0, partial_hi = 0;
  SackCursor cur(sb);
  for (size_t i = 0; i < count_; ++i) {
    const Entry& r = runs_[i];
    uint32_t s = run_start(i);
    if (r.flags & lost) {
      // Still outstanding (the scoreboard may have forgotten a SACKed range).
      if (!maybe_lost_ && cur.sacked(s, r.end) != r.end - s) maybe_lost_ = true;
      continue;
    }
    // Sent before RACK's segment? In a run sent at RACK's very time (one burst),
    // only the octets below RACK.end_seq were.
    uint32_t hi = r.end;
    if (!time_after(xmit_us_, r.last_us)) {
      if (r.last_us != xmit_us_ || !seq_lt(s, end_seq_)) continue;
      hi = seq_min(hi, end_seq_);
    }
    if (cur.sacked(s, hi) == hi - s) continue;  // nothing of it outstanding
    int64_t remaining = limit - int64_t(uint32_t(now - r.last_us));
    if (remaining > 0) {
      timeout = timeout < 0 ? remaining : std::min(timeout, remaining);
    } else if (hi == r.end) {
      runs_[i].flags |= lost;
      maybe_lost_ = true;
    } else {
      partial = true;  // at most one run straddles RACK.end_seq
      partial_lo = s;
      partial_hi = hi;
    }
  }
  if (partial) mark_lost(partial_lo, partial_hi, sb);
  return timeout < 0 ? 0 : uint64_t(timeout) * 1000;
}

void Rack::mark_lost_on_rto(const SackScoreboard& sb, uint64_t now_ns, uint64_t srtt_ns) {
  const uint32_t now = to_us(now_ns);
  const int64_t limit =
      valid_ ? int64_t(rtt_us_) + int64_t(reo_wnd_ns(sb, srtt_ns, true, 1) / 1000) : 0;
  for (size_t i = 0; i < count_; ++i)
    if (i == 0 || int64_t(uint32_t(now - runs_[i].last_us)) >= limit) runs_[i].flags |= lost;
  maybe_lost_ = true;
}

// ----- questions for output -----

uint32_t Rack::pipe(const SackScoreboard& sb) const {
  SackCursor cur(sb);
  uint32_t pipe = 0;
  for (size_t i = 0; i < count_; ++i) {
    uint32_t s = run_start(i);
    uint32_t sacked = cur.sacked(s, runs_[i].end);
    if (!(runs_[i].flags & lost)) pipe += runs_[i].end - s - sacked;
  }
  return pipe;
}

SackBlock Rack::next_lost(const SackScoreboard& sb, uint32_t mss) const {
  if (!maybe_lost_) return SackBlock{end(), end()};
  SackCursor cur(sb);
  for (size_t i = 0; i < count_; ++i) {
    if (!(runs_[i].flags & lost)) continue;
    SackBlock h = cur.first_hole(run_start(i), runs_[i].end);
    if (h.left == h.right) continue;
    return SackBlock{h.left, h.left + std::min(mss, h.right - h.left)};
  }
  maybe_lost_ = false;  // nothing marked lost is outstanding any more
  return SackBlock{end(), end()};
}

SackBlock Rack::last_unsacked(const SackScoreboard& sb, uint32_t mss) const {
  // Down from the top past the SACKed ranges that reach it, then the stretch
  // between the next range below (or start()) and there.
  size_t k = sb.ranges();
  uint32_t right = end();
  while (k > 0 && seq_geq(sb.range(k - 1).right, right)) right = seq_min(right, sb.range(--k).left);
  uint32_t left = k > 0 ? seq_max(start_, sb.range(k - 1).right) : start_;
  if (!seq_lt(left, right)) return SackBlock{right, right};
  return SackBlock{right - std::min(mss, right - left), right};
}

bool Rack::has_lost(const SackScoreboard& sb) const {
  SackBlock b = next_lost(sb, UINT32_MAX);
  return b.left != b.right;
}

uint32_t Rack::is_lost_edge(const SackScoreboard& sb, uint32_t una, uint32_t snd_max, uint32_t mss) {
  // IsLost only weakens going up (fewer SACKed ranges above): the highest lost
  // hole bounds them all. Holes above the highest SACKed range are never lost.
  for (size_t k = sb.ranges(); k-- > 0;) {
    uint32_t left = k > 0 ? sb.range(k - 1).right : una;
    uint32_t right = sb.range(k).left;
    left = seq_max(left, una);
    right = seq_min(right, snd_max);
    if (seq_lt(left, right) && sb.is_lost(left, mss)) return right;
  }
  return una;
}

}  // namespace keel::tcp
