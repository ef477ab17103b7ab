// SPDX-License-Identifier: BSD-3-Clause
#include "engine/timer_wheel.hpp"

#include <algorithm>
#include <bit>

// Layout. Ticks are 64-bit counts from the origin. Split a tick into 6-bit
// groups: group l is bits [6l, 6l + 6); the four groups form the position inside
// an epoch of 2^24 ticks, the bits above are the epoch.
//
// Filing (relative to cur = current_tick_, for a timer whose tick E >= cur): let
// l be the highest group in which E and cur differ (0 when E == cur). The timer
// goes to wheel_[l][group l of E]; if they differ in the epoch it is parked.
// So a slot at level l >= 1 holds timers whose ticks all lie in one aligned
// 64^l-tick block, ahead of cur within cur's 64^(l+1) block.
//
// Invariant between ticks, for every filed timer with tick E:
//   - level 0, slot s: E >> 6 == cur >> 6 and s == E & 63 >= cur & 63;
//   - level l >= 1, slot s: E >> 6(l+1) == cur >> 6(l+1) and either s is above
//     group l of cur, or s equals it and cur is the first tick of that block
//     (a cascade is due at cur);
//   - parked: the epoch of E is above cur's, or parked_min_tick_'s epoch is
//     cur's and re-filing is due at cur.
// Processing tick cur re-files the parked timers of cur's epoch and the
// level-l slots whose block starts at cur (highest level first; re-filing moves
// a timer to a lower level, or to level 0 slot cur & 63 when E == cur), then
// detaches level 0 slot cur & 63 and fires it. Ticks with nothing to do are
// skipped with the occupied_ bitmaps, so a long jump costs one step per slot
// that holds timers, not one per tick.
//
// occupied_ is exact: a bit is set when a timer is filed and cleared when its
// slot is drained or its last timer leaves (cancel, re-arm, or ~Timer, which
// goes through the back pointer Timer::wheel_ — that is also what keeps size()
// exact without walking the lists).

namespace keel::engine {

namespace {

constexpr uint64_t bit(unsigned s) { return uint64_t{1} << s; }

}  // namespace

Timer::~Timer() {
  if (armed()) wheel_->unlink(*this);
}

TimerWheel::TimerWheel(uint64_t now_ns, uint64_t tick_ns)
    : tick_ns_(tick_ns == 0 ? 1 : tick_ns), origin_ns_(now_ns), last_now_ns_(now_ns) {}

TimerWheel::~TimerWheel() {
  // auto_unlink lists: clear() unlinks each node, so the timers read !armed()
  // and their destructors no longer touch this wheel.
  for (auto& level : wheel_)
    for (auto& slot : level) slot.clear();
  late_list_.clear();
  parked_list_.clear();
}

uint64_t TimerWheel::tick_of(uint64_t expiry_ns) const {
  if (expiry_ns <= origin_ns_) return 0;
  uint64_t d = expiry_ns - origin_ns_;
  return d / tick_ns_ + (d % tick_ns_ != 0);  // round up: never fire early
}

// The earliest expiry that maps to `tick` (ticks round up).
uint64_t TimerWheel::lower_ns_of_tick(uint64_t tick) const {
  return tick == 0 ? origin_ns_ : origin_ns_ + (tick - 1) * tick_ns_ + 1;
}

void TimerWheel::schedule(Timer& t, uint64_t expiry_ns) {
  if (t.armed()) t.wheel_->unlink(t);
  t.expiry_ns_ = expiry_ns;
  t.wheel_ = this;
  ++armed_;
  if (expiry_ns <= last_now_ns_) {
    late_min_ns_ = late_list_.empty() ? expiry_ns : std::min(late_min_ns_, expiry_ns);
    t.where_ = late_;
    late_list_.push_back(t);
    return;
  }
  // expiry > last_now_ns_ >= origin + (cur - 1) * tick, so tick_of() >= cur.
  file(t, tick_of(expiry_ns));
}

void TimerWheel::file(Timer& t, uint64_t tick) {
  uint64_t diff = tick ^ current_tick_;
  if ((diff >> span_bits) != 0) {
    parked_min_tick_ = parked_list_.empty() ? tick : std::min(parked_min_tick_, tick);
    t.where_ = parked_;
    parked_list_.push_back(t);
    return;
  }
  unsigned level = diff == 0 ? 0 : unsigned(std::bit_width(diff) - 1) / slots_bits;
  unsigned slot = unsigned(tick >> (level * slots_bits)) & (slots - 1);
  t.where_ = uint16_t(level * slots + slot);
  wheel_[level][slot].push_back(t);
  occupied_[level] |= bit(slot);
}

void TimerWheel::unlink(Timer& t) {
  t.hook_.unlink();
  --armed_;
  // late_min_ns_ and parked_min_tick_ stay lower bounds; only the bitmap must
  // follow, so that skipping and next_expiry_ns() see exact occupancy.
  if (t.where_ < late_) {
    unsigned level = t.where_ / slots, slot = t.where_ % slots;
    if (wheel_[level][slot].empty()) occupied_[level] &= ~bit(slot);
  }
}

void TimerWheel::cancel(Timer& t) {
  if (t.armed()) t.wheel_->unlink(t);
}

// The first tick >= current_tick_ with work to do, or UINT64_MAX.
uint64_t TimerWheel::next_work_tick() const {
  const uint64_t cur = current_tick_;
  uint64_t best = UINT64_MAX;
  if (uint64_t m = occupied_[0] & (~uint64_t{0} << (cur & (slots - 1))))
    best = (cur & ~uint64_t{slots - 1}) | unsigned(std::countr_zero(m));
  for (unsigned l = 1; l < levels; ++l) {
    unsigned shift = l * slots_bits;
    unsigned group = unsigned(cur >> shift) & (slots - 1);
    bool at_block_start = (cur & (bit(shift) - 1)) == 0;
    uint64_t mask = at_block_start      ? ~uint64_t{0} << group
                    : group == slots - 1 ? 0
                                         : ~uint64_t{0} << (group + 1);
    if (uint64_t m = occupied_[l] & mask) {
      uint64_t outer = (cur >> (shift + slots_bits)) << (shift + slots_bits);
      best = std::min(best, outer | (uint64_t(std::countr_zero(m)) << shift));
    }
  }
  if (!parked_list_.empty())
    best = std::min(best, std::max(cur, (parked_min_tick_ >> span_bits) << span_bits));
  return best;
}

uint64_t TimerWheel::next_expiry_ns() const {
  if (armed_ == 0) return UINT64_MAX;
  uint64_t best = late_list_.empty() ? UINT64_MAX : late_min_ns_;
  uint64_t tick = next_work_tick();
  // Every filed timer's tick is >= the work tick of its slot.
  if (tick != UINT64_MAX) best = std::min(best, lower_ns_of_tick(tick));
  return best;
}

void TimerWheel::cascade(unsigned level, unsigned slot) {
  List moving;
  moving.swap(wheel_[level][slot]);
  occupied_[level] &= ~bit(slot);
  while (!moving.empty()) {
    Timer& t = moving.front();
    moving.pop_front();
    file(t, tick_of(t.expiry_ns_));
  }
}

void TimerWheel::refile_parked() {
  List moving;
  moving.swap(parked_list_);
  parked_min_tick_ = UINT64_MAX;
  while (!moving.empty()) {
    Timer& t = moving.front();
    moving.pop_front();
    file(t, tick_of(t.expiry_ns_));  // back to parked_list_ if still a later epoch
  }
}

// Fires the detached list `due`. Each timer is unlinked before its callback, so
// the callback may re-arm it; any other timer still in `due` may be cancelled,
// re-armed or destroyed, which unlinks it from `due` and it is not fired.
size_t TimerWheel::fire(List& due, uint64_t now_ns) {
  size_t fired = 0;
  while (!due.empty()) {
    Timer& t = due.front();
    due.pop_front();
    --armed_;
    ++fired;
    if (t.fn_ != nullptr) t.fn_(t, t.ctx_, now_ns);  // may destroy t: not touched after
  }
  return fired;
}

size_t TimerWheel::advance(uint64_t now_ns) {
  if (in_advance_) return 0;
  last_now_ns_ = std::max(last_now_ns_, now_ns);
  // The common case, called every poll: still inside the current tick, nothing late.
  uint64_t tick_start = 0;
  if (late_list_.empty() && now_ns >= origin_ns_ &&
      !__builtin_mul_overflow(current_tick_, tick_ns_, &tick_start) &&
      now_ns - origin_ns_ < tick_start)
    return 0;
  in_advance_ = true;
  size_t fired = 0;

  // Late timers first: their ticks are all below current_tick_.
  if (!late_list_.empty()) {
    List due;
    due.swap(late_list_);
    late_min_ns_ = UINT64_MAX;
    fired += fire(due, now_ns);
  }

  if (now_ns >= origin_ns_) {
    // Process every tick k with origin + k * tick <= now.
    uint64_t last = (now_ns - origin_ns_) / tick_ns_;
    if (last == UINT64_MAX) --last;  // keep last + 1 representable
    for (;;) {
      uint64_t tick = next_work_tick();
      if (tick > last) break;
      current_tick_ = tick;  // skipped ticks had nothing filed for them
      if (!parked_list_.empty() && (parked_min_tick_ >> span_bits) <= (tick >> span_bits))
        refile_parked();
      for (unsigned l = levels - 1; l >= 1; --l) {
        unsigned shift = l * slots_bits;
        unsigned slot = unsigned(tick >> shift) & (slots - 1);
        if ((tick & (bit(shift) - 1)) == 0 && (occupied_[l] & bit(slot)) != 0) cascade(l, slot);
      }
      unsigned slot = unsigned(tick) & (slots - 1);
      List due;
      if (occupied_[0] & bit(slot)) {
        due.swap(wheel_[0][slot]);
        occupied_[0] &= ~bit(slot);
      }
      // Advance before the callbacks: what they arm is filed from the next tick
      // (or is late when at or before now_ns).
      current_tick_ = tick + 1;
      fired += fire(due, now_ns);
    }
    current_tick_ = std::max(current_tick_, last + 1);
  }
  in_advance_ = false;
  return fired;
}

}  // namespace keel::engine
