// SPDX-License-Identifier: BSD-3-Clause
#include <catch2/catch.hpp>

#include "engine/timer_wheel.hpp"
#include "test_support.hpp"

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

using keel::engine::Timer;
using keel::engine::TimerWheel;
using keel::test::PoolBaseline;

namespace {

constexpr uint64_t us = 1'000;
constexpr uint64_t ms = 1'000'000;
constexpr uint64_t sec = 1'000'000'000;
// Ticks in one epoch of the wheel (64^4).
constexpr uint64_t span_ticks = uint64_t{1} << (TimerWheel::levels * TimerWheel::slots_bits);

// What fired, in order, with the now it fired at.
struct Log {
  struct Entry {
    int id;
    uint64_t now;
  };
  std::vector<Entry> entries;
  std::vector<int> ids() const {
    std::vector<int> out;
    for (const auto& e : entries) out.push_back(e.id);
    return out;
  }
};

// A timer that appends its id to a Log when it fires.
struct Logged {
  Timer timer;
  int id;
  Log* log;
  Logged(int i, Log& l) : id(i), log(&l) {
    timer.set_callback([](Timer&, void* ctx, uint64_t now) {
      auto* self = static_cast<Logged*>(ctx);
      self->log->entries.push_back({self->id, now});
    }, this);
  }
};

}  // namespace

// ===== basics =====

TEST_CASE("timers fire in tick order, never early, at most one tick late", "[timer]") {
  PoolBaseline baseline;
  const uint64_t origin = 5 * sec + 123;  // tick boundaries not aligned to round numbers
  TimerWheel w(origin, ms);
  Log log;
  std::vector<std::unique_ptr<Logged>> ts;
  // Expiries given in reverse order, some sharing a tick, across levels 0..2.
  const std::vector<uint64_t> offsets = {300 * ms, 5 * ms + 1, 70 * ms, 5 * ms, 1, 64 * ms, 63 * ms,
                                         4096 * ms + 7, 2 * ms};
  for (size_t i = 0; i < offsets.size(); ++i) {
    ts.push_back(std::make_unique<Logged>(int(i), log));
    w.schedule(ts.back()->timer, origin + offsets[i]);
    REQUIRE(ts.back()->timer.armed());
    REQUIRE(ts.back()->timer.expiry_ns() == origin + offsets[i]);
  }
  REQUIRE(w.size() == offsets.size());

  // Step in thirds of a tick up to past the last expiry.
  for (uint64_t now = origin; now <= origin + 4200 * ms; now += ms / 3) w.advance(now);

  REQUIRE(log.entries.size() == offsets.size());
  REQUIRE(w.size() == 0);
  uint64_t prev_tick = 0;
  for (const auto& e : log.entries) {
    uint64_t expiry = origin + offsets[size_t(e.id)];
    INFO("timer " << e.id << " expiry " << expiry << " fired at " << e.now);
    CHECK(e.now >= expiry);            // never early
    CHECK(e.now < expiry + ms + ms / 3);  // first step at or after the tick that follows
    uint64_t tick = (expiry - origin + ms - 1) / ms;
    CHECK(tick >= prev_tick);  // tick order
    prev_tick = tick;
  }
  // Precisely: fires on the first step whose now reaches the expiry's tick.
  for (const auto& e : log.entries) {
    uint64_t expiry = origin + offsets[size_t(e.id)];
    uint64_t due = origin + (expiry - origin + ms - 1) / ms * ms;
    CHECK(e.now >= due);
    CHECK(e.now < due + ms / 3 + 1);
  }
  for (auto& t : ts) CHECK_FALSE(t->timer.armed());
}

TEST_CASE("a timer on a tick boundary fires exactly at it; within a tick it waits for the next",
          "[timer]") {
  PoolBaseline baseline;
  TimerWheel w(0, 10 * us);
  Log log;
  Logged on_boundary(1, log), mid_tick(2, log);
  w.schedule(on_boundary.timer, 30 * us);
  w.schedule(mid_tick.timer, 30 * us + 1);
  REQUIRE(w.advance(30 * us - 1) == 0);
  REQUIRE(w.advance(30 * us) == 1);
  REQUIRE(log.ids() == std::vector<int>{1});
  REQUIRE(w.advance(30 * us + 1) == 0);  // expiry reached, but its tick (40 us) is not yet
  REQUIRE(w.advance(40 * us - 1) == 0);
  REQUIRE(w.advance(40 * us) == 1);  // less than one tick late
  REQUIRE(log.ids() == std::vector<int>{1, 2});
}

TEST_CASE("cancel disarms, is idempotent and keeps size exact", "[timer]") {
  PoolBaseline baseline;
  TimerWheel w(0, us);
  Log log;
  Logged a(1, log), b(2, log), c(3, log), never(4, log);
  w.schedule(a.timer, 10 * us);
  w.schedule(b.timer, 10 * us);            // same slot as a
  w.schedule(c.timer, 100 * span_ticks * us);  // parked beyond the span
  REQUIRE(w.size() == 3);
  w.cancel(a.timer);
  w.cancel(a.timer);      // harmless twice
  w.cancel(never.timer);  // harmless when never armed
  w.cancel(c.timer);
  REQUIRE_FALSE(a.timer.armed());
  REQUIRE_FALSE(c.timer.armed());
  REQUIRE(w.size() == 1);
  REQUIRE(w.advance(200 * span_ticks * us) == 1);
  REQUIRE(log.ids() == std::vector<int>{2});
  REQUIRE(w.size() == 0);
  REQUIRE(w.next_expiry_ns() == UINT64_MAX);
}

TEST_CASE("re-arming moves the timer, also between wheels", "[timer]") {
  PoolBaseline baseline;
  TimerWheel w1(0, us), w2(0, us);
  Log log;
  Logged a(1, log);
  w1.schedule(a.timer, 50 * us);
  w1.schedule(a.timer, 20 * us);  // re-arm earlier: one timer, not two
  REQUIRE(w1.size() == 1);
  REQUIRE(a.timer.expiry_ns() == 20 * us);
  REQUIRE(w1.next_expiry_ns() <= 20 * us);
  w2.schedule(a.timer, 30 * us);  // moves to w2
  REQUIRE(w1.size() == 0);
  REQUIRE(w2.size() == 1);
  REQUIRE(w1.advance(100 * us) == 0);
  w1.cancel(a.timer);  // cancel through the wrong wheel still disarms it
  REQUIRE(w2.size() == 0);
  w2.schedule(a.timer, 30 * us);
  REQUIRE(w2.advance(30 * us) == 1);
  REQUIRE(log.ids() == std::vector<int>{1});
}

TEST_CASE("an expiry in the past fires on the next advance, whatever its now", "[timer]") {
  PoolBaseline baseline;
  const uint64_t origin = 1 * sec;
  TimerWheel w(origin, ms);
  Log log;
  Logged before_origin(1, log), at_origin(2, log), at_now(3, log), mid_tick(4, log);
  w.schedule(before_origin.timer, 0);
  w.schedule(at_origin.timer, origin);
  REQUIRE(w.next_expiry_ns() <= 0);
  REQUIRE(w.advance(origin) == 2);  // no time passed, still fired
  REQUIRE(log.ids() == std::vector<int>{1, 2});

  // The wheel has seen now = origin + 2.5 ms; mid-tick expiries at or before it are late.
  w.advance(origin + 2 * ms + ms / 2);
  w.schedule(at_now.timer, origin + 2 * ms + ms / 2);
  w.schedule(mid_tick.timer, origin + 2 * ms + ms / 4);
  REQUIRE(w.next_expiry_ns() <= origin + 2 * ms + ms / 4);
  REQUIRE(w.advance(origin + 2 * ms + ms / 2) == 2);
  REQUIRE(w.size() == 0);
  // An earlier now than before (time must not go back, but it is harmless) fires only late timers.
  w.schedule(at_now.timer, origin + 5 * ms);
  w.schedule(mid_tick.timer, origin);
  REQUIRE(w.advance(origin + ms) == 1);
  REQUIRE(mid_tick.timer.armed() == false);
  REQUIRE(at_now.timer.armed());
  REQUIRE(w.advance(origin + 5 * ms) == 1);
}

// ===== callbacks =====

TEST_CASE("a callback re-arms its own timer (periodic), also into the past", "[timer]") {
  PoolBaseline baseline;
  TimerWheel w(0, us);
  struct Periodic {
    Timer timer;
    TimerWheel* wheel;
    std::vector<uint64_t> fired_at;
    uint64_t period;
  } p{{}, &w, {}, 7 * us};
  p.timer.set_callback([](Timer& t, void* ctx, uint64_t now) {
    auto* self = static_cast<Periodic*>(ctx);
    REQUIRE_FALSE(t.armed());  // disarmed before the callback
    self->fired_at.push_back(now);
    if (self->fired_at.size() < 5) self->wheel->schedule(t, t.expiry_ns() + self->period);
  }, &p);
  w.schedule(p.timer, 7 * us);
  for (uint64_t now = 0; now <= 100 * us; now += us) w.advance(now);
  REQUIRE(p.fired_at == std::vector<uint64_t>{7 * us, 14 * us, 21 * us, 28 * us, 35 * us});
  REQUIRE_FALSE(p.timer.armed());

  // After a jump, re-arming at or before now from a callback is late: it fires
  // on the next advance, one per call, never in a loop inside one call.
  p.fired_at.clear();
  w.schedule(p.timer, 110 * us);
  REQUIRE(w.advance(200 * us) == 1);
  REQUIRE(p.timer.armed());
  REQUIRE(p.timer.expiry_ns() == 117 * us);
  REQUIRE(w.size() == 1);
  REQUIRE(w.advance(200 * us) == 1);
  REQUIRE(w.advance(200 * us) == 1);
  REQUIRE(w.advance(200 * us) == 1);
  REQUIRE(w.advance(200 * us) == 1);  // the fifth
  REQUIRE(w.advance(200 * us) == 0);
  REQUIRE(p.fired_at.size() == 5);
}

namespace {

// Timers due in the same tick whose callbacks act on each other.
struct Group {
  TimerWheel* wheel;
  Log log;
  std::vector<std::unique_ptr<Timer>> timers;
  std::vector<int> ids_fired;
  // The action of timer i when it fires.
  std::vector<std::function<void(Group&, int)>> actions;
};

struct GroupCtx {
  Group* g;
  int id;
};

}  // namespace

TEST_CASE("a callback cancels, re-arms or destroys another timer due in the same tick", "[timer]") {
  PoolBaseline baseline;
  TimerWheel w(0, us);
  Group g{&w, {}, {}, {}, {}};
  std::vector<GroupCtx> ctxs;
  const int n = 6;
  g.timers.resize(n);
  g.actions.resize(n);
  ctxs.resize(n);
  for (int i = 0; i < n; ++i) {
    ctxs[size_t(i)] = {&g, i};
    g.timers[size_t(i)] = std::make_unique<Timer>([](Timer&, void* ctx, uint64_t) {
      auto* c = static_cast<GroupCtx*>(ctx);
      c->g->ids_fired.push_back(c->id);
      if (c->g->actions[size_t(c->id)]) c->g->actions[size_t(c->id)](*c->g, c->id);
    }, &ctxs[size_t(i)]);
  }
  // Whichever of them fires first disarms all the others in its own way.
  for (int i = 0; i < n; ++i) {
    g.actions[size_t(i)] = [](Group& gr, int self) {
      for (int j = 0; j < int(gr.timers.size()); ++j) {
        if (j == self || !gr.timers[size_t(j)]) continue;
        switch (j % 3) {
          case 0: gr.wheel->cancel(*gr.timers[size_t(j)]); break;
          case 1: gr.wheel->schedule(*gr.timers[size_t(j)], 50 * us); break;  // later
          case 2: gr.timers[size_t(j)].reset(); break;  // destroyed while armed
        }
      }
      for (auto& a : gr.actions) a = nullptr;  // only once
    };
  }
  // Expiries within one tick (1 us): all in the same slot.
  for (int i = 0; i < n; ++i) w.schedule(*g.timers[size_t(i)], 10 * us - uint64_t(i) * 100);
  REQUIRE(w.size() == size_t(n));
  REQUIRE(w.advance(10 * us) == 1);  // the others were cancelled, moved or destroyed
  REQUIRE(g.ids_fired.size() == 1);
  int first = g.ids_fired[0];
  size_t moved = 0, destroyed = 0;
  for (int j = 0; j < n; ++j) {
    if (j == first) continue;
    if (j % 3 == 1) ++moved;
    if (j % 3 == 2) ++destroyed;
  }
  REQUIRE(w.size() == moved);  // exact despite the destroyed armed timers
  REQUIRE(w.advance(50 * us) == moved);
  REQUIRE(w.size() == 0);
  size_t alive = 0;
  for (auto& t : g.timers) alive += t != nullptr;
  REQUIRE(alive == size_t(n) - destroyed);
}

TEST_CASE("a callback may destroy its own timer and schedule new ones", "[timer]") {
  PoolBaseline baseline;
  TimerWheel w(0, us);
  struct Owner {
    TimerWheel* wheel;
    std::unique_ptr<Timer> self;
    Timer follow_up;
    int follow_ups = 0;
  } o{&w, std::make_unique<Timer>(), {}, 0};
  o.follow_up.set_callback(
      [](Timer&, void* ctx, uint64_t) { ++static_cast<Owner*>(ctx)->follow_ups; }, &o);
  o.self->set_callback([](Timer&, void* ctx, uint64_t now) {
    auto* owner = static_cast<Owner*>(ctx);
    owner->wheel->schedule(owner->follow_up, now + 1);
    owner->self.reset();  // the timer being fired is destroyed from its own callback
  }, &o);
  w.schedule(*o.self, 5 * us);
  REQUIRE(w.advance(5 * us) == 1);
  REQUIRE(o.self == nullptr);
  REQUIRE(w.size() == 1);
  REQUIRE(w.advance(6 * us) == 1);
  REQUIRE(o.follow_ups == 1);
}

TEST_CASE("advance called from a callback does nothing", "[timer]") {
  PoolBaseline baseline;
  TimerWheel w(0, us);
  struct Ctx {
    TimerWheel* wheel;
    size_t nested = 99;
  } c{&w};
  Timer a([](Timer&, void* ctx, uint64_t now) {
    auto* cc = static_cast<Ctx*>(ctx);
    cc->nested = cc->wheel->advance(now + 100 * us);
  }, &c);
  Timer b;  // due later within the outer call's range
  w.schedule(a, 1 * us);
  w.schedule(b, 2 * us);
  REQUIRE(w.advance(3 * us) == 2);
  REQUIRE(c.nested == 0);
}

// ===== lifetime =====

TEST_CASE("destroying an armed timer leaves the wheel with an exact size", "[timer]") {
  PoolBaseline baseline;
  TimerWheel w(0, us);
  Log log;
  auto near = std::make_unique<Logged>(1, log);
  auto far = std::make_unique<Logged>(2, log);
  auto parked = std::make_unique<Logged>(3, log);
  Logged keep(4, log);
  w.schedule(near->timer, 3 * us);
  w.schedule(far->timer, 100'000 * us);
  w.schedule(parked->timer, 3 * span_ticks * us);
  w.schedule(keep.timer, 3 * us);
  REQUIRE(w.size() == 4);
  near.reset();
  far.reset();
  parked.reset();
  REQUIRE(w.size() == 1);
  REQUIRE(w.next_expiry_ns() <= 3 * us);
  REQUIRE(w.advance(10 * span_ticks * us) == 1);
  REQUIRE(log.ids() == std::vector<int>{4});
  REQUIRE(w.next_expiry_ns() == UINT64_MAX);
}

TEST_CASE("destroying the wheel disarms its timers", "[timer]") {
  PoolBaseline baseline;
  Log log;
  Logged a(1, log), b(2, log), c(3, log);
  {
    TimerWheel w(0, us);
    w.schedule(a.timer, 0);  // late
    w.schedule(b.timer, 10 * us);
    w.schedule(c.timer, 5 * span_ticks * us);  // parked
    REQUIRE(a.timer.armed());
  }
  CHECK_FALSE(a.timer.armed());
  CHECK_FALSE(b.timer.armed());
  CHECK_FALSE(c.timer.armed());
  // The timers outlive the wheel and can be armed on another one.
  TimerWheel w2(0, us);
  w2.schedule(b.timer, 1 * us);
  REQUIRE(w2.advance(1 * us) == 1);
  REQUIRE(log.ids() == std::vector<int>{2});
}

// ===== next_expiry_ns =====

TEST_CASE("next_expiry_ns is a lower bound on the earliest expiry, tight in level 0", "[timer]") {
  PoolBaseline baseline;
  const uint64_t origin = 777;
  const uint64_t tick = 1000;
  TimerWheel w(origin, tick);
  REQUIRE(w.next_expiry_ns() == UINT64_MAX);
  Log log;
  Logged a(1, log), b(2, log), c(3, log);

  SECTION("level 0: within one tick of the expiry, and nothing fires below it") {
    w.schedule(a.timer, origin + 10 * tick + 500);
    w.schedule(b.timer, origin + 40 * tick);
    uint64_t ne = w.next_expiry_ns();
    REQUIRE(ne <= origin + 10 * tick + 500);
    REQUIRE(ne + tick > origin + 10 * tick + 500);
    REQUIRE(w.advance(ne - 1) == 0);
    // Advancing to the bound's tick fires it.
    REQUIRE(w.advance(origin + 11 * tick) == 1);
    ne = w.next_expiry_ns();
    REQUIRE(ne <= origin + 40 * tick);
    REQUIRE(ne + tick > origin + 40 * tick);
  }
  SECTION("higher levels and parked: a bound at or before the expiry") {
    for (uint64_t d : {uint64_t{100}, uint64_t{5000}, uint64_t{300'000}, uint64_t{20'000'000},
                       3 * span_ticks + 17}) {
      INFO("delay " << d << " ticks");
      w.schedule(a.timer, origin + d * tick + 3);
      uint64_t ne = w.next_expiry_ns();
      REQUIRE(ne <= origin + d * tick + 3);
      REQUIRE(ne > origin);
      REQUIRE(w.advance(ne - 1) == 0);
      w.cancel(a.timer);
    }
  }
  SECTION("the earliest of several, with cancels") {
    w.schedule(a.timer, origin + 5000 * tick);
    w.schedule(b.timer, origin + 70 * tick);
    w.schedule(c.timer, origin + 20 * tick);
    REQUIRE(w.next_expiry_ns() <= origin + 20 * tick);
    REQUIRE(w.next_expiry_ns() > origin + 19 * tick);
    w.cancel(c.timer);
    REQUIRE(w.next_expiry_ns() <= origin + 70 * tick);
    REQUIRE(w.next_expiry_ns() > origin + 20 * tick);  // the emptied slot no longer counts
    w.cancel(b.timer);
    REQUIRE(w.next_expiry_ns() <= origin + 5000 * tick);
    w.cancel(a.timer);
    REQUIRE(w.next_expiry_ns() == UINT64_MAX);
  }
  SECTION("a late timer bounds it by its own expiry") {
    w.advance(origin + 100 * tick);
    w.schedule(b.timer, origin + 200 * tick);
    w.schedule(a.timer, origin + 50 * tick);
    REQUIRE(w.next_expiry_ns() <= origin + 50 * tick);
    REQUIRE(w.advance(origin + 100 * tick) == 1);
    // b sits in level 1 now: the bound is the start of its slot's range.
    REQUIRE(w.next_expiry_ns() <= origin + 200 * tick);
    REQUIRE(w.next_expiry_ns() > origin + 100 * tick);
  }
}

// ===== time jumps =====

TEST_CASE("big jumps in time fire everything due, in order, without walking every tick",
          "[timer]") {
  PoolBaseline baseline;
  const uint64_t origin = 42 * sec;
  TimerWheel w(origin, ms);  // span 2^24 ms, about 4.66 hours
  Log log;
  const std::vector<uint64_t> delays = {
      1 * ms, 65 * ms, 5 * sec, 70 * sec, 3600 * sec, 4 * 3600 * sec,  // levels 0..3
      5 * 3600 * sec, 30 * 24 * 3600 * sec, 400 * 24 * 3600 * sec,      // beyond the span
      4'000'000'000 * sec};                                               // 126 years
  std::vector<std::unique_ptr<Logged>> ts;
  for (size_t i = 0; i < delays.size(); ++i) {
    ts.push_back(std::make_unique<Logged>(int(i), log));
    w.schedule(ts.back()->timer, origin + delays[i]);
  }
  auto start = std::chrono::steady_clock::now();
  // One jump to 10 days: everything up to that fires in one call, in order.
  REQUIRE(w.advance(origin + 10 * 24 * 3600 * sec) == 7);
  REQUIRE(log.ids() == std::vector<int>{0, 1, 2, 3, 4, 5, 6});
  REQUIRE(w.size() == 3);
  REQUIRE(w.next_expiry_ns() <= origin + delays[7]);
  REQUIRE(w.advance(origin + delays[7] - 1) == 0);
  REQUIRE(w.advance(origin + delays[7]) == 1);
  // Straight to just before the 126-year timer, then onto it.
  REQUIRE(w.advance(origin + delays[9] - 1) == 1);
  REQUIRE(w.advance(origin + delays[9] - 1) == 0);
  REQUIRE(w.advance(origin + delays[9]) == 1);
  REQUIRE(log.ids() == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  auto elapsed = std::chrono::steady_clock::now() - start;
  // Walking 4e15 ticks one by one would take days; skipping takes microseconds.
  CHECK(elapsed < std::chrono::milliseconds(100));

  // The wheel keeps working after the jumps: a short timer from here.
  uint64_t now = origin + delays[9];
  w.schedule(ts[0]->timer, now + 3 * ms);
  REQUIRE(w.advance(now + 3 * ms) == 1);
  // A timer on the last tick before the clock wraps fires only then.
  const uint64_t last_tick = origin + (UINT64_MAX - origin) / ms * ms;
  w.schedule(ts[1]->timer, last_tick);
  REQUIRE(w.advance(last_tick - 1) == 0);
  REQUIRE(w.advance(UINT64_MAX) == 1);
}

TEST_CASE("timers across an epoch boundary cascade correctly", "[timer]") {
  PoolBaseline baseline;
  TimerWheel w(0, 1);  // 1 ns ticks: epoch of 2^24 ns
  Log log;
  Logged a(1, log), b(2, log), c(3, log);
  w.advance(span_ticks - 5);
  w.schedule(a.timer, span_ticks + 3);      // 8 ticks away, but in the next epoch: parked
  w.schedule(b.timer, span_ticks - 1);      // last tick of this epoch
  w.schedule(c.timer, 2 * span_ticks + 64);  // next epoch but one
  REQUIRE(w.advance(span_ticks - 2) == 0);
  REQUIRE(w.advance(span_ticks - 1) == 1);
  REQUIRE(w.advance(span_ticks + 2) == 0);
  REQUIRE(w.advance(span_ticks + 3) == 1);
  REQUIRE(w.advance(2 * span_ticks + 63) == 0);
  REQUIRE(w.advance(2 * span_ticks + 64) == 1);
  REQUIRE(log.ids() == std::vector<int>{2, 1, 3});
}

// ===== randomised against a reference model =====

namespace {

// Drives a wheel and a model side by side; every firing is checked against the
// model when it happens, and the model's armed set against the wheel after
// every operation.
class Harness {
 public:
  Harness(uint64_t origin, uint64_t tick, size_t n, uint64_t seed)
      : origin_(origin), tick_(tick), last_now_(origin), wheel_(origin, tick), nodes_(n),
        model_(n), rng_(seed) {}

  struct Node {
    Timer timer;
    Harness* h;
    size_t id;
  };
  struct Model {
    bool armed = false;
    bool late = false;       // armed at or before the wheel's latest now
    uint64_t expiry = 0;
    uint64_t epoch = 0;      // advance count when armed
  };

  uint64_t tick_of(uint64_t x) const {
    return x <= origin_ ? 0 : (x - origin_) / tick_ + ((x - origin_) % tick_ != 0);
  }

  // A delay spread over every level of the wheel and beyond its span.
  uint64_t random_delay() {
    const uint64_t span_ns = span_ticks * tick_;
    switch (rng_() % 8) {
      case 0: return rng_() % (2 * tick_);                   // this tick or the next
      case 1: return rng_() % (64 * tick_);                  // level 0
      case 2: return rng_() % (4096 * tick_);                // level 1
      case 3: return rng_() % (262'144 * tick_);             // level 2
      case 4: return rng_() % span_ns;                       // level 3
      case 5: return span_ns + rng_() % (3 * span_ns);       // parked
      case 6: return 0;                                      // now: late
      default: return rng_() % (16 * tick_);
    }
  }

  void schedule(size_t i, uint64_t expiry) {
    if (!nodes_[i]) {
      nodes_[i] = std::make_unique<Node>();
      nodes_[i]->h = this;
      nodes_[i]->id = i;
      nodes_[i]->timer.set_callback(&Harness::on_fire, nodes_[i].get());
    }
    wheel_.schedule(nodes_[i]->timer, expiry);
    model_[i] = {true, expiry <= last_now_, expiry, advances_};
    ++scheduled_;
  }
  void schedule_random(size_t i) {
    uint64_t base = last_now_;
    // Sometimes in the past, relative to the latest now.
    if (rng_() % 16 == 0) base -= std::min<uint64_t>(base - origin_, rng_() % (8 * tick_));
    schedule(i, base + random_delay());
  }
  void cancel(size_t i) {
    if (nodes_[i]) wheel_.cancel(nodes_[i]->timer);
    model_[i].armed = false;
  }
  void destroy(size_t i) {
    nodes_[i].reset();
    model_[i].armed = false;
  }

  void advance(uint64_t now) {
    last_now_ = std::max(last_now_, now);
    ++advances_;
    now_ = now;
    last_key_ = 0;
    fired_now_ = 0;
    size_t n = wheel_.advance(now);
    expect(n == fired_now_, "advance() returned a count different from the callbacks run");
    fired_total_ += n;
    // Nothing eligible is left behind.
    for (size_t i = 0; i < model_.size(); ++i) {
      const Model& m = model_[i];
      if (!m.armed) continue;
      if (m.late) {
        expect(m.epoch == advances_, "a late timer armed before advance() did not fire");
      } else {
        expect(origin_ + tick_of(m.expiry) * tick_ > now, "a due timer did not fire");
        expect(m.expiry + tick_ - 1 > now, "a timer is more than one tick late");
      }
    }
  }

  void check_state() {
    size_t armed = 0;
    uint64_t earliest = UINT64_MAX;
    for (size_t i = 0; i < model_.size(); ++i) {
      bool is_armed = nodes_[i] && nodes_[i]->timer.armed();
      expect(is_armed == model_[i].armed, "armed() disagrees with the model");
      if (model_[i].armed) {
        ++armed;
        earliest = std::min(earliest, model_[i].expiry);
        expect(nodes_[i]->timer.expiry_ns() == model_[i].expiry, "expiry_ns() disagrees");
      }
    }
    expect(wheel_.size() == armed, "size() disagrees with the model");
    uint64_t ne = wheel_.next_expiry_ns();
    expect(armed == 0 ? ne == UINT64_MAX : ne <= earliest,
           "next_expiry_ns() is later than the earliest expiry");
  }

  static void on_fire(Timer& t, void* ctx, uint64_t now) {
    auto* node = static_cast<Node*>(ctx);
    Harness& h = *node->h;
    size_t id = node->id;
    Model& m = h.model_[id];
    ++h.fired_now_;
    h.expect(&t == &node->timer, "callback got another timer");
    h.expect(!t.armed(), "timer still armed in its callback");
    h.expect(now == h.now_, "callback got another now");
    h.expect(m.armed, "a disarmed timer fired");
    uint64_t key = 0;
    if (m.late) {
      // Armed at or before the latest now (this call's now, unless time went back).
      h.expect(m.expiry <= h.last_now_, "a late timer fired before its expiry");
      h.expect(m.epoch < h.advances_, "a late timer armed in this advance() fired in it");
    } else {
      h.expect(m.expiry <= now, "a timer fired early");
      key = h.tick_of(m.expiry);
      h.expect(h.origin_ + key * h.tick_ <= now, "a timer fired before its tick");
    }
    h.expect(key >= h.last_key_, "timers fired out of tick order");
    h.last_key_ = std::max(h.last_key_, key);
    m.armed = false;
    if (!h.chaos_) return;

    // Act on the wheel the way protocol code would.
    size_t other = size_t(h.rng_() % h.nodes_.size());
    switch (h.rng_() % 10) {
      case 0:
      case 1: h.schedule_random(id); break;  // re-arm itself
      case 2: h.cancel(other); break;
      case 3: if (other != id) h.schedule_random(other); break;
      case 4: if (other != id) h.destroy(other); break;
      case 5: h.destroy(id); return;  // `node` is gone
      case 6: h.schedule(id, now); break;  // late: next advance
      default: break;
    }
  }

  void expect(bool ok, const char* what) {
    if (ok) return;
    if (failures_++ == 0) first_failure_ = what;
  }

  uint64_t origin_, tick_;
  uint64_t last_now_;
  uint64_t now_ = 0;
  uint64_t advances_ = 0;
  uint64_t last_key_ = 0;
  size_t fired_now_ = 0, fired_total_ = 0, scheduled_ = 0;
  bool chaos_ = true;
  size_t failures_ = 0;
  std::string first_failure_;
  TimerWheel wheel_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<Model> model_;
  std::mt19937_64 rng_;
};

}  // namespace

TEST_CASE("randomised: the wheel matches a reference model", "[timer]") {
  PoolBaseline baseline;
  auto [tick, seed] = GENERATE(table<uint64_t, uint64_t>({{1000, 1}, {1, 2}, {777, 3}}));
  const uint64_t origin = 1'000'000'007;
  const size_t n = 3000;
  Harness h(origin, tick, n, seed);
  for (size_t i = 0; i < n; ++i) h.schedule_random(i);
  h.check_state();

  uint64_t now = origin;
  const uint64_t span_ns = span_ticks * tick;
  for (int step = 0; step < 2500; ++step) {
    // Random operations between advances.
    for (int k = int(h.rng_() % 4); k > 0; --k) {
      size_t i = size_t(h.rng_() % n);
      switch (h.rng_() % 6) {
        case 0:
        case 1:
        case 2: h.schedule_random(i); break;
        case 3: h.cancel(i); break;
        case 4: h.destroy(i); break;
        default: break;
      }
    }
    uint64_t r = h.rng_() % 100;
    uint64_t stepped = r < 40   ? h.rng_() % (2 * tick)      // within a tick or two
                       : r < 75 ? h.rng_() % (64 * tick)     // level 0
                       : r < 90 ? h.rng_() % (4096 * tick)   // level 1
                       : r < 96 ? h.rng_() % (300'000 * tick)  // level 2
                       : r < 99 ? h.rng_() % (2 * span_ns)     // level 3 and beyond
                                : 0;                           // same now again
    now += stepped;
    if (h.rng_() % 200 == 0) h.advance(now - std::min(now - origin, 5 * tick));  // time going back
    h.advance(now);
    h.check_state();
    if (h.failures_ != 0) break;
  }
  // Drain: no more re-arming; past every expiry everything has fired.
  h.chaos_ = false;
  h.advance(now);
  now += 5 * span_ns;
  h.advance(now);
  h.check_state();
  INFO("tick " << tick << " seed " << seed << ": " << h.failures_ << " failures, first: "
               << h.first_failure_);
  REQUIRE(h.failures_ == 0);
  REQUIRE(h.wheel_.size() == 0);
  REQUIRE(h.fired_total_ > 2000);  // the run exercised firing, not just bookkeeping
  INFO("fired " << h.fired_total_ << " of " << h.scheduled_ << " scheduled");
  CHECK(h.fired_total_ < h.scheduled_);
}
