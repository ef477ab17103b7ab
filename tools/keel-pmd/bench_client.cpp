// SPDX-License-Identifier: BSD-3-Clause
#include "bench_client.hpp"

namespace keel::pmd {

void BenchConn::on_connected(tcp::Tcb&) { owner_.conn_up(*this); }

void BenchConn::on_closed(tcp::Tcb& c, Errc reason) {
  ended(c);
  owner_.conn_gone(*this, reason);
}

bool BenchConn::running() const { return !owner_.stopping() && tcb != nullptr; }

BenchClient::BenchClient(tcp::TcpStack& tcp, const BenchArgs& a) : tcp_(tcp), args_(a) {
  tick_.set_callback(&BenchClient::tick_fired, this);
}

BenchClient::~BenchClient() = default;

void BenchClient::start() {
  ramping_ = true;
  ramp();
}

void BenchClient::stop() {
  stopping_ = true;
  ramping_ = beginning_ = ticks_ = false;
  abort_some();
}

void BenchClient::abort_some() {
  // abort() reports on_closed at once, which takes the connection off live_.
  for (unsigned n = 0; n < abort_batch && !live_.empty(); ++n) tcp_.abort(*live_.back()->tcb);
  if (live_.empty()) {
    tcp_.instance().timers().cancel(tick_);
    stopped_.store(true, std::memory_order_release);
  } else {
    arm();
  }
}

void BenchClient::done_op(uint64_t t0_ns) {
  latency.record(engine::now_ns() - t0_ns);
  bench_add(ops);
}

BenchConn* BenchClient::open() {
  BenchConn* h;
  if (free_.empty()) {
    all_.push_back(make_conn());
    h = all_.back().get();
  } else {
    h = free_.back();
    free_.pop_back();
  }
  h->clear();
  h->replaced = h->established_ = h->begun_ = false;
  h->t0_ns = engine::now_ns();
  auto c = tcp_.connect(args_.dst, args_.port, h);
  if (!c) {  // no ephemeral port, TCB table full, no route
    free_.push_back(h);
    bench_add(errors);
    return nullptr;
  }
  h->tcb = *c;
  h->live_index_ = live_.size();
  live_.push_back(h);
  // Every bench measures the stack, not Nagle's wait for the previous ACK.
  tcp_.set_nodelay(**c, true);
  ++handshakes_;
  return h;
}

void BenchClient::ramp() {
  while (ramping_ && opened_ < args_.conns &&
         handshakes_ < (ever_up_ != 0 ? max_syn_in_flight : 1u)) {
    ++opened_;
    open();
  }
  if (ramping_ && opened_ >= args_.conns && handshakes_ == 0) {
    ramping_ = false;
    set_ready();
  }
}

void BenchClient::set_ready() {
  beginning_ = true;
  begin_pos_ = 0;
  begin_some();
  ready_.store(true, std::memory_order_relaxed);
}

void BenchClient::begin_some() {
  for (unsigned n = 0; beginning_ && n < begin_batch && begin_pos_ < all_.size(); ++begin_pos_) {
    BenchConn& c = *all_[begin_pos_];
    if (c.tcb == nullptr || !c.established_ || c.begun_) continue;
    c.begun_ = true;
    c.begin();
    ++n;
  }
  if (begin_pos_ >= all_.size()) beginning_ = false;
  if (beginning_) arm();
}

void BenchClient::conn_up(BenchConn& c) {
  c.established_ = true;
  --handshakes_;
  ++ever_up_;
  established.store(established.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  // Opened after set-up (crr, replacements): traffic starts at once.
  if (ready() && !stopping_ && !c.begun_) {
    c.begun_ = true;
    c.begin();
  }
  ramp();
}

void BenchClient::conn_gone(BenchConn& c, Errc reason) {
  const bool replaced = c.replaced;  // c may be reused by ramp() or lost() below
  BenchConn* last = live_.back();    // swap-remove from live_
  live_[c.live_index_] = last;
  last->live_index_ = c.live_index_;
  live_.pop_back();
  if (c.established_)
    established.store(established.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  else
    --handshakes_;
  c.tcb = nullptr;
  free_.push_back(&c);
  if (stopping_) return;
  if (reason != Errc::ok) bench_add(errors);
  ramp();
  if (!replaced) lost();
}

void BenchClient::want_ticks() {
  ticks_ = true;
  arm();
}

void BenchClient::arm() {
  if (!tick_.armed()) tcp_.instance().timers().schedule(tick_, engine::now_ns() + 1'000'000);
}

void BenchClient::tick_fired(engine::Timer&, void* ctx, uint64_t) {
  auto* self = static_cast<BenchClient*>(ctx);
  if (self->stopping_) return self->abort_some();
  if (self->beginning_) self->begin_some();
  if (self->ticks_) {
    self->tick();
    self->arm();
  }
}

}  // namespace keel::pmd
