// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// Hierarchical timer wheel for protocol timers (ARP, reassembly, and later TCP's
/// RTO, delayed ACK, persist, keepalive, TIME_WAIT). One per instance, touched
/// only by its lcore. Timers are intrusive (Boost.Intrusive list hooks), so
/// arming, re-arming and cancelling never allocate and cost O(1).
///
/// Time is passed in (nanoseconds from any monotonic origin); the wheel reads no
/// clock, which is what makes protocol code testable step by step.
///
/// Firing rule. Tick k is the instant origin + k * tick_ns. A timer whose expiry
/// is x belongs to tick E = ceil((x - origin) / tick_ns), and advance(now) fires
/// it once tick E is <= now: it never fires before x and fires less than one
/// tick after it (any advance with now >= x + tick_ns - 1 fires it). A timer
/// armed for a time at or before the latest advance()'s now is "late" and fires
/// on the very next advance(), whatever its now.

#include <boost/intrusive/list.hpp>

#include <array>
#include <cstddef>
#include <cstdint>

namespace keel::engine {

class TimerWheel;

/// An intrusive timer. The owner embeds it and sets the callback; it may be
/// destroyed at any time, even while armed (it then leaves its wheel, whose
/// size() stays exact). Neither copyable nor movable.
class Timer {
 public:
  /// Called with the timer (already disarmed), the callback's context and the
  /// now_ns of the advance() that fires it.
  using Callback = void (*)(Timer& t, void* ctx, uint64_t now_ns);

  Timer() = default;
  Timer(Callback fn, void* ctx) : fn_(fn), ctx_(ctx) {}
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;
  /// Disarms the timer if it is armed.
  ~Timer();

  /// Sets what firing calls; a null callback makes firing only disarm the timer.
  void set_callback(Callback fn, void* ctx) { fn_ = fn; ctx_ = ctx; }
  /// True from schedule() until the timer fires, is cancelled or its wheel dies.
  bool armed() const { return hook_.is_linked(); }
  /// When the timer fires (valid while armed()).
  uint64_t expiry_ns() const { return expiry_ns_; }

 private:
  friend class TimerWheel;
  using Hook = boost::intrusive::list_member_hook<
      boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;
  Hook hook_;
  uint64_t expiry_ns_ = 0;
  Callback fn_ = nullptr;
  void* ctx_ = nullptr;
  TimerWheel* wheel_ = nullptr;  // the wheel it is armed on (valid while armed())
  uint16_t where_ = 0;           // level * slots + slot, or TimerWheel::late_ / parked_
};

/// Four levels of 64 slots. With the default 1 ms tick the wheel spans
/// 64^4 ms (about 4.6 hours); later expiries are parked in a separate list and
/// re-filed when time enters their 64^4-tick epoch. A timer never fires early;
/// it fires less than one tick late (see the firing rule above).
class TimerWheel {
 public:
  static constexpr unsigned levels = 4;
  static constexpr unsigned slots_bits = 6;
  static constexpr unsigned slots = 1u << slots_bits;

  /// `tick_ns`: resolution (precondition: > 0). `now_ns`: the current time,
  /// the wheel's origin.
  explicit TimerWheel(uint64_t now_ns, uint64_t tick_ns = 1'000'000);
  /// Disarms every timer still armed on this wheel.
  ~TimerWheel();
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;

  /// Arms (or re-arms, possibly moving it from another wheel) `t` to fire at
  /// `expiry_ns`. A time at or before the latest advance()'s now fires on the
  /// next advance(); from a callback that means the next call, not this one.
  void schedule(Timer& t, uint64_t expiry_ns);
  /// Disarms `t`; harmless if it is not armed.
  void cancel(Timer& t);
  /// Fires every due timer (see the firing rule): late ones first, then tick by
  /// tick in tick order; within one tick the order is unspecified. What a
  /// callback arms is never fired by the same call (it is either after now_ns
  /// or late). A callback
  /// may schedule, cancel or destroy any timer, including itself and timers due
  /// in the same call, but must not call advance() (such a call returns 0) nor
  /// destroy the wheel. `now_ns` should not decrease; an earlier value only
  /// fires late timers. Returns the number fired.
  size_t advance(uint64_t now_ns);
  /// Number of armed timers (exact, O(1)).
  size_t size() const { return armed_; }
  /// A lower bound on the earliest expiry_ns() of the armed timers, UINT64_MAX
  /// when none is armed; never later than the real earliest expiry, so
  /// advance(now) with now below it fires nothing (unless a late timer is armed:
  /// then it is at or below that timer's expiry). Computed from the first
  /// occupied slot: less than one tick below the earliest expiry when that timer
  /// is in level 0 (within 64 ticks), otherwise the start of its slot's range.
  /// From inside a callback it ignores the rest of the batch being fired.
  uint64_t next_expiry_ns() const;
  uint64_t tick_ns() const { return tick_ns_; }

 private:
  friend class Timer;
  using List = boost::intrusive::list<
      Timer,
      boost::intrusive::member_hook<Timer, Timer::Hook, &Timer::hook_>,
      boost::intrusive::constant_time_size<false>>;

  static constexpr unsigned span_bits = levels * slots_bits;  // ticks per epoch: 2^24
  static constexpr uint16_t late_ = levels * slots;            // Timer::where_ for late_list_
  static constexpr uint16_t parked_ = late_ + 1;               // Timer::where_ for parked_list_

  uint64_t tick_of(uint64_t expiry_ns) const;
  uint64_t lower_ns_of_tick(uint64_t tick) const;
  uint64_t next_work_tick() const;
  void file(Timer& t, uint64_t tick);
  void unlink(Timer& t);
  void cascade(unsigned level, unsigned slot);
  void refile_parked();
  size_t fire(List& due, uint64_t now_ns);

  uint64_t tick_ns_;
  uint64_t origin_ns_;
  uint64_t last_now_ns_;      // the latest now seen: the origin or an advance()'s
  uint64_t current_tick_ = 0;  // ticks [0, current_tick_) have been processed
  size_t armed_ = 0;
  uint64_t late_min_ns_ = UINT64_MAX;    // <= every expiry in late_list_
  uint64_t parked_min_tick_ = UINT64_MAX;  // <= every tick in parked_list_
  bool in_advance_ = false;
  std::array<uint64_t, levels> occupied_{};  // bit s of [l]: wheel_[l][s] is not empty
  std::array<std::array<List, slots>, levels> wheel_;
  List late_list_;    // expiry at or before last_now_ns_: fire on the next advance
  List parked_list_;  // tick in a later epoch than current_tick_'s
};

}  // namespace keel::engine
