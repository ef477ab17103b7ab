// SPDX-License-Identifier: BSD-3-Clause
// The native API's per-instance core: events from TCP's callbacks, handles,
// the thread check, listeners, and receive-window credit for held buffers.
#include "api/stack_core.hpp"

#include <rte_lcore.h>
#include <rte_mbuf.h>

#include <cstdio>
#include <cstdlib>

#include "engine/mbuf_util.hpp"

namespace keel {

namespace {
void default_misuse(Errc e, const char* what) {
#ifndef NDEBUG
  std::fprintf(stderr, "keel: API misuse: %s (%s)\n", what, std::string(to_string(e)).c_str());
  std::abort();
#else
  (void)e, (void)what;
#endif
}
std::atomic<MisuseHandler> misuse_handler{&default_misuse};
}  // namespace

MisuseHandler set_misuse_handler(MisuseHandler h) {
  return misuse_handler.exchange(h != nullptr ? h : &default_misuse);
}

}  // namespace keel

namespace keel::detail {

Errc misuse(Errc e, const char* what) {
  misuse_handler.load()(e, what);
  return e;
}

namespace {
constexpr size_t max_listeners = 256;
}

StackCore::StackCore(engine::Instance& inst, tcp::TcpStack& tcp, const engine::IdleConfig& idle,
                     std::atomic<bool>* stop, unsigned instances, udp::UdpStack* udp, shm::Node* node,
                     uint32_t shm_budget)
    : inst_(inst), tcp_(tcp), idle_(idle), stop_(stop), instances_(instances),
      conns_(tcp.config().max_connections), listeners_(max_listeners), udp_(udp),
      udp_slots_(udp ? udp->config().max_sockets : 0) {
  for (size_t i = 0; i < listeners_.size(); ++i) {
    listeners_[i].core = this;
    listeners_[i].slot = uint32_t(i);
  }
  // A batch holds at most one event per connection (plus what the application
  // raises between polls): no allocation on the data path.
  size_t chans = node != nullptr ? node->channels() : 0;
  pending_.reserve(conns_.size() + udp_slots_.size() + chans + 64);
  delivered_.reserve(conns_.size() + udp_slots_.size() + chans + 64);
  if (node != nullptr) {
    channels_ = std::make_unique<ChannelTable>(*this, inst, *node, shm_budget);
    if (!channels_->ok()) {
      std::fprintf(stderr, "keel: shm: every endpoint of the node is in use; instance %u runs without channels\n",
                   unsigned(inst.id()));
      channels_.reset();
    }
  }
}

StackCore::~StackCore() {
  channels_.reset();  // peers see their channels reset
  for (auto& l : listeners_)
    if (l.l != nullptr) tcp_.unlisten(l.l);
  for (auto& u : udp_slots_)
    if (u.s != nullptr) udp_->close(u.s);
}

void StackCore::bind_to_current_thread() { lcore_ = rte_lcore_id(); }

bool StackCore::on_owner_thread() const {
  if (rte_lcore_id() == lcore_) return true;
  misuse(Errc::wrong_thread, "a stack call from a thread that does not own the instance");
  return false;
}

std::span<const Event> StackCore::poll(bool may_sleep) {
  if (!on_owner_thread()) return {};
  uint64_t now = tcp_.clock_now();  // engine::now_ns() unless a test or benchmark set a clock
  // One flush per iteration, at its start: what the application sent while it
  // handled the last batch, together with the ACKs and whatever else the last
  // iteration produced (an ACK then rides on the application's response).
  inst_.flush(now);
  unsigned work = inst_.poll(now, false);
  if (channels_) work += channels_->poll(now);
  delivered_.swap(pending_);
  pending_.clear();
  ++batch_;
  // Connections the application gave up after their event was queued.
  std::erase_if(delivered_, [](const Event& e) { return e.flags == 0; });
  if (work != 0 || !delivered_.empty()) {
    idle_.on_work(now);
  } else {
    inst_.flush(now);  // timers may have produced frames: out before sleeping
    if (may_sleep) idle_.on_idle(now, inst_.next_wakeup_ns());
  }
  return delivered_;
}

void StackCore::adopt(tcp::Tcb& c, uint64_t user) {
  ConnSlot& s = conns_[tcp_.slot(c)];
  s = ConnSlot{};
  s.user = user;
  s.gen = tcp_.generation(c);
  c.handler = this;
}

template <class Handle>
Event* StackCore::batched(uint32_t ev_batch, uint32_t ev, Handle Event::*field, const Handle& h) {
  if (ev_batch != batch_ || ev >= pending_.size()) return nullptr;
  Event& e = pending_[ev];
  return e.*field == h ? &e : nullptr;
}

template <class Handle>
void StackCore::add_event(uint32_t& ev_batch, uint32_t& ev, Handle Event::*field, const Handle& h,
                          uint16_t flag, Errc err, uint64_t user) {
  if (Event* e = batched(ev_batch, ev, field, h)) {
    e->flags |= flag;
    if (err != Errc::ok) e->error = err;
    return;
  }
  ev_batch = batch_;
  ev = uint32_t(pending_.size());
  Event& e = pending_.emplace_back();
  e.flags = flag;
  e.error = err;
  e.*field = h;
  e.user = user;
}

// Channels (api/channels.cpp) raise their events through these too.
template Event* StackCore::batched<Connection>(uint32_t, uint32_t, Connection Event::*, const Connection&);
template void StackCore::add_event<Connection>(uint32_t&, uint32_t&, Connection Event::*, const Connection&,
                                               uint16_t, Errc, uint64_t);

void StackCore::emit(tcp::Tcb& c, uint16_t flag, Errc err, Listener from) {
  uint32_t slot = tcp_.slot(c), gen = tcp_.generation(c);
  ConnSlot& s = conns_[slot];
  if (s.gen != gen || s.forgotten) return;
  add_event(s.ev_batch, s.ev, &Event::conn, Connection(this, slot, gen), flag, err, s.user);
  if (from.valid()) pending_[s.ev].listener = from;
}

tcp::ConnHandler* StackCore::accept(ApiListener& l, tcp::Tcb& c) {
  adopt(c, 0);
  emit(c, event::accepted, Errc::ok, Listener(this, l.slot, l.gen));
  return this;
}

void StackCore::on_connected(tcp::Tcb& c) { emit(c, event::connected); }
void StackCore::on_readable(tcp::Tcb& c) { emit(c, event::readable); }
void StackCore::on_writable(tcp::Tcb& c) { emit(c, event::writable); }
void StackCore::on_peer_closed(tcp::Tcb& c) { emit(c, event::peer_closed); }
void StackCore::on_closed(tcp::Tcb& c, Errc reason) { emit(c, event::closed, reason); }

tcp::Tcb* StackCore::conn(uint32_t slot, uint32_t gen, Errc& why, bool report_stale) {
  if (!on_owner_thread()) {
    why = Errc::wrong_thread;
    return nullptr;
  }
  tcp::Tcb* c = tcp_.resolve(slot, gen);
  // TIME-WAIT drops the handler (the stack is done with the application), but
  // the application may not have read what came before the FIN yet.
  bool ours = c != nullptr && !conns_[slot].forgotten &&
              (c->handler == this || (c->state == tcp::TcpState::time_wait && conns_[slot].gen == gen));
  if (!ours) {
    why = report_stale ? misuse(Errc::bad_handle, "a connection handle used after its connection closed")
                       : Errc::bad_handle;
    return nullptr;
  }
  return c;
}

void StackCore::forget(uint32_t slot, uint32_t gen) {
  ConnSlot& s = conns_[slot];
  if (s.gen != gen) return;
  s.forgotten = true;
  if (Event* e = batched(s.ev_batch, s.ev, &Event::conn, Connection(this, slot, gen)))
    e->flags = 0;  // dropped at the next poll
}

Buffer StackCore::received_buffer(rte_mbuf* m, uint32_t slot, uint32_t gen, uint32_t credit) {
  Buffer b(m);
  b.owner_ = this;
  b.slot_ = slot;
  b.gen_ = gen;
  b.credit_ = credit;
  return b;
}

Buffer StackCore::take_received(tcp::Tcb& c) {
  rte_mbuf* m = tcp_.recv_held(c);
  if (m == nullptr) return Buffer();
  return received_buffer(m, tcp_.slot(c), tcp_.generation(c), m->pkt_len);
}

void StackCore::return_credit(uint32_t slot, uint32_t gen, uint32_t bytes) {
  if (rte_lcore_id() != lcore_) {
    // Released elsewhere: the instance returns the credit on its own lcore.
    if (!inst_.post([this, slot, gen, bytes](engine::Instance&) { return_credit(slot, gen, bytes); }))
      misuse(Errc::no_memory, "control ring full: receive-window credit lost");
    return;
  }
  if (ChannelTable::is_channel(slot)) {
    if (channels_) channels_->return_credit(slot, gen, bytes);
    return;
  }
  if (tcp::Tcb* c = tcp_.resolve(slot, gen); c != nullptr) tcp_.recv_credit(*c, bytes);
}

Result<Listener> StackCore::listen(Endpoint local, const ListenOptions& opt) {
  if (!on_owner_thread()) return fail(Errc::wrong_thread);
  if (local.port == 0 || opt.backlog == 0) return fail(Errc::invalid_argument);
  net::Ipv4Addr addr{local.addr.value};
  if (!addr.is_any()) {
    bool ours = false;
    for (auto& ifc : inst_.interfaces()) ours = ours || ifc->owns(addr);
    if (!ours) return fail(Errc::invalid_argument);
  }
  ApiListener* free_l = nullptr;
  for (auto& l : listeners_)
    if (l.l == nullptr) {
      free_l = &l;
      break;
    }
  if (free_l == nullptr) return fail(Errc::no_memory);
  auto r = tcp_.listen(addr, local.port, opt.backlog, free_l);
  if (!r) return fail(r.error());
  free_l->l = *r;
  free_l->gen |= 1;
  if (channels_) channels_->listening(local.addr.value, local.port, free_l->slot, free_l->gen);
  return Listener(this, free_l->slot, free_l->gen);
}

const tcp::Listener* StackCore::listener(uint32_t slot, uint32_t gen, Errc& why) {
  if (!on_owner_thread()) {
    why = Errc::wrong_thread;
    return nullptr;
  }
  if (slot >= listeners_.size() || listeners_[slot].gen != gen || listeners_[slot].l == nullptr) {
    why = misuse(Errc::bad_handle, "a listener handle used after close");
    return nullptr;
  }
  return listeners_[slot].l;
}

Result<void> StackCore::close_listener(uint32_t slot, uint32_t gen) {
  Errc why = Errc::ok;
  if (listener(slot, gen, why) == nullptr) return fail(why);
  ApiListener& l = listeners_[slot];
  if (channels_) channels_->unlistening(slot, gen);
  tcp_.unlisten(l.l);
  l.l = nullptr;
  ++l.gen;  // even: free; the next listen makes it odd again
  return {};
}

bool StackCore::accept_channel(uint32_t slot, uint32_t gen, Listener& out) {
  if (slot >= listeners_.size() || listeners_[slot].gen != gen || listeners_[slot].l == nullptr) return false;
  ++listeners_[slot].l->accepted;
  out = Listener(this, slot, gen);
  return true;
}

Result<Connection> StackCore::connect(Endpoint remote, const ConnectOptions& opt) {
  if (!on_owner_thread()) return fail(Errc::wrong_thread);
  if (channels_) {
    bool taken = false;
    auto r = channels_->connect(remote, opt, taken);
    if (taken) return r;
  }
  auto r = tcp_.connect(net::Ipv4Addr{remote.addr.value}, remote.port, this, opt.local_port,
                        net::Ipv4Addr{opt.local_addr.value}, uint64_t(opt.timeout_ms) * 1'000'000);
  if (!r) return fail(r.error());
  tcp::Tcb& c = **r;
  adopt(c, opt.user);
  if (opt.nodelay) c.nodelay = true;
  return Connection(this, tcp_.slot(c), tcp_.generation(c));
}

Result<Buffer> StackCore::alloc(size_t len) {
  if (!on_owner_thread()) return fail(Errc::wrong_thread);
  if (len > UINT32_MAX) return fail(Errc::invalid_argument);
  rte_mbuf* m = len == 0 ? rte_pktmbuf_alloc(inst_.interfaces().front()->pool)
                         : engine::alloc_chain(inst_.interfaces().front()->pool, uint32_t(len));
  if (m == nullptr) {
    inst_.counters().inc(engine::Counter::mbuf_alloc_failed);
    return fail(Errc::no_memory);
  }
  return Buffer(m);
}

// ----- UDP -----

Result<UdpSocket> StackCore::udp_bind(Endpoint local) {
  if (!on_owner_thread()) return fail(Errc::wrong_thread);
  if (udp_ == nullptr) return fail(Errc::not_supported);
  auto r = udp_->bind(net::Ipv4Addr{local.addr.value}, local.port, this);
  if (!r) return fail(r.error());
  udp::UdpSocket& s = **r;
  UdpSlot& u = udp_slots_[s.slot()];
  u.s = &s;
  u.gen = (u.gen + 1) | 1;
  u.user = 0;
  return UdpSocket(this, s.slot(), u.gen);
}

udp::UdpSocket* StackCore::udp_socket(uint32_t slot, uint32_t gen, Errc& why) {
  if (!on_owner_thread()) {
    why = Errc::wrong_thread;
    return nullptr;
  }
  if (slot >= udp_slots_.size() || udp_slots_[slot].gen != gen || udp_slots_[slot].s == nullptr) {
    why = misuse(Errc::bad_handle, "a UDP socket handle used after close");
    return nullptr;
  }
  return udp_slots_[slot].s;
}

Result<void> StackCore::udp_close(uint32_t slot, uint32_t gen) {
  Errc why = Errc::ok;
  udp::UdpSocket* s = udp_socket(slot, gen, why);
  if (s == nullptr) return fail(why);
  UdpSlot& u = udp_slots_[slot];
  // An event of this socket still queued for the next batch goes with it.
  if (Event* e = batched(u.ev_batch, u.ev, &Event::udp, UdpSocket(this, slot, gen))) e->flags = 0;
  udp_->close(s);
  u.s = nullptr;
  ++u.gen;  // even: closed
  return {};
}

Datagram StackCore::to_datagram(const udp::Datagram& d) {
  Datagram out;
  out.payload = Buffer(d.payload);
  out.from = Endpoint{Ipv4Address{d.src.v}, d.src_port};
  out.to = Ipv4Address{d.dst.v};
  return out;
}

void StackCore::emit_udp(udp::UdpSocket& s, uint16_t flag, Errc err) {
  UdpSlot& u = udp_slots_[s.slot()];
  add_event(u.ev_batch, u.ev, &Event::udp, UdpSocket(this, s.slot(), u.gen), flag, err, u.user);
}

void StackCore::on_readable(udp::UdpSocket& s) { emit_udp(s, event::readable, Errc::ok); }
void StackCore::on_error(udp::UdpSocket& s, Errc e) { emit_udp(s, event::error, e); }

Result<Buffer> StackCore::clone(const Buffer& b) {
  if (!on_owner_thread()) return fail(Errc::wrong_thread);
  if (b.empty()) return fail(Errc::bad_handle);
  rte_mbuf* m = rte_pktmbuf_clone(b.mbuf(), inst_.interfaces().front()->pool);
  if (m == nullptr) {
    inst_.counters().inc(engine::Counter::mbuf_alloc_failed);
    return fail(Errc::no_memory);
  }
  return Buffer(m);
}

}  // namespace keel::detail
