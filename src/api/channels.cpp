// SPDX-License-Identifier: BSD-3-Clause
// The intra-node fast path on one instance: channels behind Connection handles.
#include "api/channels.hpp"

#include <rte_mbuf.h>
#include <rte_ring.h>

#include <algorithm>
#include <cstring>

#include "api/stack_core.hpp"
#include "engine/mbuf_util.hpp"

namespace keel::detail {

namespace {
constexpr uint64_t check_interval_ns = 100'000'000;   // peer liveness, connect deadlines
constexpr uint64_t sweep_interval_ns = 1'000'000'000; // the directory's dead entries
constexpr uint64_t connect_timeout_ns = 30'000'000'000;
constexpr uint32_t loopback = 0x7f000001;             // 127.0.0.1
constexpr uint16_t ephemeral_base = 49152;
constexpr unsigned max_segs = 65535;                  // rte_mbuf::nb_segs
}  // namespace

ChannelTable::ChannelTable(StackCore& core, engine::Instance& inst, shm::Node& node, uint32_t budget)
    : core_(core), inst_(inst), node_(node), budget_(budget), slots_(node.channels()) {
  ep_ = node_.attach(inst.id());
  if (ep_ >= 0) ep_gen_ = node_.endpoint(uint16_t(ep_)).gen;
  for (uint32_t i = uint32_t(slots_.size()); i-- > 0;) {
    slots_[i].next_free = free_head_;
    free_head_ = i;
  }
}

ChannelTable::~ChannelTable() {
  if (ep_ < 0) return;
  closing_ = true;
  // No new connects find us; those already posted are refused; open channels reset.
  for (const auto& r : listeners_) node_.remove_entries(uint16_t(ep_), r.lslot, r.lgen);
  drain_doorbell();
  accept_posted();
  for (auto& s : slots_)
    if (s.ch != nullptr) {
      s.me().flags.fetch_or(shm::endf::aborted, std::memory_order_acq_rel);
      ring_peer(s);
      node_.release(*s.ch, s.side);
      s.ch = nullptr;
    }
  node_.detach(uint16_t(ep_));
}

// ----- slots and handles -----

ChannelTable::Slot* ChannelTable::alloc_slot() {
  if (free_head_ == ~0u) return nullptr;
  Slot& s = slots_[free_head_];
  free_head_ = s.next_free;
  uint32_t gen = s.gen + 1;  // odd: in use
  s = Slot{};
  s.gen = gen;
  ++open_;
  return &s;
}

void ChannelTable::free_slot(Slot& s) {
  ++s.gen;  // even: the handle is stale
  s.ch = nullptr;
  s.tail = nullptr;
  s.next_free = free_head_;
  free_head_ = index(s);
  --open_;
}

Connection ChannelTable::handle(uint32_t i) const { return Connection(&core_, i | chan_bit, slots_[i].gen); }

ChannelTable::Slot* ChannelTable::resolve(uint32_t slot, uint32_t gen, Errc& why, bool report_stale) {
  if (!core_.on_owner_thread()) {
    why = Errc::wrong_thread;
    return nullptr;
  }
  uint32_t i = slot & ~chan_bit;
  if (i >= slots_.size() || slots_[i].gen != gen || slots_[i].ch == nullptr) {
    why = report_stale ? misuse(Errc::bad_handle, "a connection handle used after its connection closed")
                       : Errc::bad_handle;
    return nullptr;
  }
  return &slots_[i];
}

void ChannelTable::emit(Slot& s, uint16_t flag, Errc err, Listener from) {
  uint32_t i = index(s);
  core_.add_event(s.ev_batch, s.ev, &Event::conn, handle(i), flag, err, s.user);
  if (from.valid()) core_.pending_[s.ev].listener = from;
}

// ----- doorbells -----

void ChannelTable::ring_peer(Slot& s) {
  shm::ChanEnd& p = s.peer();
  node_.ring_doorbell(p.endpoint, p.endpoint_gen, *s.ch, 1 - s.side);
}

void ChannelTable::notify_data(Slot& s) {
  // Dekker with service(): we published data, then look at want_data; the
  // receiver arms want_data, then looks at the ring.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  shm::ChanEnd& p = s.peer();
  if (p.want_data.load(std::memory_order_relaxed) != 0 && p.want_data.exchange(0) != 0) ring_peer(s);
}

void ChannelTable::notify_space(Slot& s) {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  shm::ChanEnd& p = s.peer();
  if (p.want_space.load(std::memory_order_relaxed) != 0 && p.want_space.exchange(0) != 0) ring_peer(s);
}

unsigned ChannelTable::poll(uint64_t now_ns) {
  if (ep_ < 0) return 0;
  unsigned work = drain_doorbell();
  shm::Endpoint& e = node_.endpoint(uint16_t(ep_));
  if (e.overflow.load(std::memory_order_relaxed) != 0 && e.overflow.exchange(0) != 0) {
    inst_.counters().inc(engine::Counter::shm_doorbell_overflow);
    // Tokens were lost: look at everything, including channels still to accept.
    for (auto& s : slots_)
      if (s.ch != nullptr) service(s);
    accept_posted();
    ++work;
  }
  if (now_ns >= next_check_ns_) {
    next_check_ns_ = now_ns + check_interval_ns;
    if (open_ != 0) check_peers(now_ns);
  }
  if (now_ns >= next_sweep_ns_) {
    next_sweep_ns_ = now_ns + sweep_interval_ns;
    node_.sweep();
  }
  return work;
}

unsigned ChannelTable::drain_doorbell() {
  unsigned work = 0;
  void* t[64];
  while (unsigned n = rte_ring_sc_dequeue_burst(node_.endpoint(uint16_t(ep_)).doorbell, t, 64, nullptr)) {
    for (unsigned i = 0; i < n; ++i) on_token(t[i]);
    work += n;
    if (n < 64) break;
  }
  return work;
}

void ChannelTable::accept_posted() {
  for (uint32_t i = 0; i < node_.channels(); ++i) {
    shm::Channel& c = node_.chan(i);
    if (c.phase.load(std::memory_order_acquire) == shm::phase_connecting && c.end[1].endpoint == ep_ &&
        c.end[1].endpoint_gen == ep_gen_ && c.end[1].local_slot == ~0u)
      accept(c);
  }
}

void ChannelTable::on_token(void* t) {
  uint32_t idx = shm::token_idx(t), side = shm::token_side(t);
  if (idx >= node_.channels()) return;
  shm::Channel& c = node_.chan(idx);
  if (c.gen != shm::token_gen(t)) return;  // an older allocation of the channel
  shm::ChanEnd& me = c.end[side];
  if (me.endpoint != ep_ || me.endpoint_gen != ep_gen_) return;
  if (me.local_slot == ~0u) {
    if (side == 1 && c.phase.load(std::memory_order_acquire) == shm::phase_connecting) accept(c);
    return;
  }
  if (me.local_slot >= slots_.size()) return;
  Slot& s = slots_[me.local_slot];
  if (s.ch == &c && s.ch_gen == c.gen) service(s);
}

void ChannelTable::accept(shm::Channel& c) {
  shm::ChanEnd& me = c.end[1];
  Listener from;
  bool wanted = !closing_ && (c.end[0].flags.load(std::memory_order_acquire) & shm::endf::aborted) == 0;
  Slot* s = wanted ? alloc_slot() : nullptr;
  if (s != nullptr && !core_.accept_channel(c.listener_slot, c.listener_gen, from)) {
    free_slot(*s);
    s = nullptr;
  }
  if (s == nullptr) {
    // The listener went away (or this instance holds all the channels it can,
    // or is going): refused; the connector counts it.
    me.local_slot = ~0u - 1;  // no more accept attempts on this allocation
    c.phase.store(shm::phase_refused, std::memory_order_release);
    shm::ChanEnd& p = c.end[0];
    node_.ring_doorbell(p.endpoint, p.endpoint_gen, c, 0);
    node_.release(c, 1);
    return;
  }
  s->ch = &c;
  s->ch_gen = c.gen;
  s->side = 1;
  me.local_slot = index(*s);
  me.owner = shm::self();
  me.budget = budget_;
  me.want_data.store(1, std::memory_order_relaxed);
  c.phase.store(shm::phase_established, std::memory_order_release);
  inst_.counters().inc(engine::Counter::shm_accepts);
  ring_peer(*s);
  emit(*s, event::accepted, Errc::ok, from);
  service(*s);  // the connector may have sent already
}

void ChannelTable::service(Slot& s) {
  shm::Channel& c = *s.ch;
  if (s.connecting) {
    uint32_t ph = c.phase.load(std::memory_order_acquire);
    if (ph == shm::phase_refused) {
      inst_.counters().inc(engine::Counter::shm_refused);
      finish(s, Errc::connection_refused);
      return;
    }
    if (ph != shm::phase_established) return;
    s.connecting = false;
    emit(s, event::connected);
  }
  uint32_t pf = s.peer().flags.load(std::memory_order_acquire);
  if ((pf & shm::endf::aborted) != 0) {
    reset(s);
    return;
  }
  s.me().want_data.store(1, std::memory_order_seq_cst);  // armed before looking (see notify_data)
  if (rte_ring_count(s.in()) != 0 || s.me().pending.load(std::memory_order_relaxed) != nullptr)
    emit(s, event::readable);
  if ((pf & shm::endf::fin) != 0 && !s.peer_fin_seen) {
    s.peer_fin_seen = true;
    emit(s, event::peer_closed);
  }
  if (s.peer_fin_seen && !s.closed_sent && (s.me().flags.load(std::memory_order_relaxed) & shm::endf::fin) != 0) {
    s.closed_sent = true;
    emit(s, event::closed);  // both directions shut: an orderly end; the data stays readable
  }
  // Still waiting for room: a doorbell may have come for a dequeue that freed
  // no budget yet, and it cleared the arming: arm again, then look.
  if (s.want_writable) arm_writable(s);
}

void ChannelTable::finish(Slot& s, Errc err) {
  emit(s, event::closed, err);
  s.me().flags.fetch_or(shm::endf::aborted, std::memory_order_acq_rel);
  node_.release(*s.ch, s.side);
  free_slot(s);
}

Errc ChannelTable::reset(Slot& s) {
  inst_.counters().inc(engine::Counter::shm_resets);
  finish(s, Errc::connection_reset);
  return Errc::connection_reset;
}

void ChannelTable::check_peers(uint64_t now_ns) {
  shm::AliveCache is_alive;  // one /proc look per foreign process per check
  for (auto& s : slots_) {
    if (s.ch == nullptr) continue;
    // A peer that released its end (closed, then maybe exited) left its data
    // for us to read; one that died holding it left a reset.
    bool peer_released = (s.peer().flags.load(std::memory_order_acquire) & shm::endf::released) != 0;
    if (!peer_released && !is_alive(s.peer().owner)) {
      // Release its end for it (its pending chain is freed), then ours, which
      // frees the channel and whatever the two left in its rings.
      inst_.counters().inc(engine::Counter::shm_peer_died);
      shm::Channel& c = *s.ch;
      unsigned dead = 1u - s.side;
      finish(s, s.connecting ? Errc::connection_refused : Errc::connection_reset);
      node_.release(c, dead);
      continue;
    }
    if (s.connecting && now_ns >= s.deadline_ns) finish(s, Errc::timed_out);
  }
}

// ----- listeners and connect -----

bool ChannelTable::is_our_address(uint32_t addr) const {
  if (addr == loopback) return true;
  for (auto& ifc : inst_.interfaces())
    if (ifc->owns(net::Ipv4Addr{addr})) return true;
  return false;
}

void ChannelTable::listening(uint32_t addr, uint16_t port, uint32_t lslot, uint32_t lgen) {
  if (ep_ < 0) return;
  std::vector<uint32_t> addrs;
  if (addr != 0) {
    addrs.push_back(addr);
  } else {
    for (auto& ifc : inst_.interfaces())
      for (const auto& a : ifc->l3.addrs) addrs.push_back(a.addr.v);
    addrs.push_back(loopback);
  }
  for (uint32_t a : addrs)
    if (!node_.add_entry(a, port, uint16_t(ep_), lslot, lgen))
      inst_.counters().inc(engine::Counter::shm_directory_full);
  listeners_.push_back({lslot, lgen});
}

void ChannelTable::unlistening(uint32_t lslot, uint32_t lgen) {
  if (ep_ < 0) return;
  node_.remove_entries(uint16_t(ep_), lslot, lgen);
  std::erase_if(listeners_, [&](const Registered& r) { return r.lslot == lslot && r.lgen == lgen; });
}

Result<Connection> ChannelTable::connect(Endpoint remote, const ConnectOptions& opt, bool& taken) {
  taken = false;
  if (ep_ < 0) return fail(Errc::not_supported);
  shm::ListenEntry e{};
  if (!node_.lookup(remote.addr.value, remote.port, pick_++, e)) {
    if (!is_our_address(remote.addr.value)) return fail(Errc::not_supported);  // for TCP
    // Our own address and nobody listens: refused at once, as a kernel does on loopback.
    taken = true;
    Slot* s = alloc_slot();
    if (s == nullptr) return fail(Errc::no_memory);
    inst_.counters().inc(engine::Counter::shm_refused);
    s->user = opt.user;
    Connection h = handle(index(*s));
    emit(*s, event::closed, Errc::connection_refused);
    free_slot(*s);  // the handle is stale at once: its only event is this one
    return h;
  }
  taken = true;
  Slot* s = alloc_slot();
  shm::Channel* c = s != nullptr ? node_.alloc_channel() : nullptr;
  if (c == nullptr) {
    if (s != nullptr) free_slot(*s);
    inst_.counters().inc(engine::Counter::shm_no_channel);
    return fail(Errc::no_memory);
  }
  uint32_t idx = node_.index_of(*c);
  s->ch = c;
  s->ch_gen = c->gen;
  s->side = 0;
  s->user = opt.user;
  s->connecting = true;
  s->deadline_ns = core_.tcp().clock_now() + (opt.timeout_ms != 0 ? uint64_t(opt.timeout_ms) * 1'000'000 : connect_timeout_ns);
  c->listener_slot = e.listener_slot;
  c->listener_gen = e.listener_gen;
  shm::ChanEnd& me = c->end[0];
  me.endpoint = uint16_t(ep_);
  me.endpoint_gen = ep_gen_;
  me.local_slot = index(*s);
  me.owner = shm::self();
  me.addr = opt.local_addr.is_any() ? remote.addr.value : opt.local_addr.value;
  me.port = opt.local_port != 0 ? opt.local_port : uint16_t(ephemeral_base + idx % 16384);
  me.budget = budget_;
  me.want_data.store(1, std::memory_order_relaxed);
  shm::ChanEnd& p = c->end[1];
  p.endpoint = e.endpoint;
  p.endpoint_gen = e.endpoint_gen;
  p.owner = e.owner;
  p.addr = remote.addr.value;
  p.port = remote.port;
  p.budget = budget_;
  std::atomic_thread_fence(std::memory_order_release);
  inst_.counters().inc(engine::Counter::shm_connects);
  if (!node_.ring_doorbell(e.endpoint, e.endpoint_gen, *c, 1)) {
    // The listener's instance detached since the lookup.
    c->phase.store(shm::phase_refused, std::memory_order_release);
    node_.release(*c, 1);
    service(*s);  // -> closed(connection_refused)
  }
  return handle(index(*s));
}

// ----- data -----

uint64_t ChannelTable::in_flight(const Slot& s) const {
  return s.me().sent.load(std::memory_order_relaxed) - s.peer().consumed.load(std::memory_order_acquire);
}

uint64_t ChannelTable::unread(const Slot& s) const {
  uint64_t sent = s.peer().sent.load(std::memory_order_acquire);
  uint64_t gone = s.me().consumed.load(std::memory_order_relaxed) + s.held;
  return sent > gone ? sent - gone : 0;
}

uint32_t ChannelTable::space(const Slot& s) const {
  uint64_t flying = in_flight(s);
  uint32_t budget = s.me().budget;
  return flying >= budget ? 0 : uint32_t(budget - flying);
}

Result<void> ChannelTable::sendable(Slot& s) {
  if ((s.me().flags.load(std::memory_order_relaxed) & shm::endf::fin) != 0) return fail(Errc::not_connected);
  if ((s.peer().flags.load(std::memory_order_acquire) & (shm::endf::closed | shm::endf::aborted)) != 0) {
    return fail(reset(s));  // nobody will read it: what TCP would learn from the peer's RST
  }
  return {};
}

bool ChannelTable::can_take(const Slot& s) const {
  if (rte_ring_free_count(s.out()) == 0) return false;
  uint64_t flying = in_flight(s);
  return flying == 0 || flying + s.need <= s.me().budget;
}

void ChannelTable::arm_writable(Slot& s) {
  s.want_writable = true;
  // Dekker with notify_space(): armed first, then looked; the reader stores
  // what it consumed (or dequeued), then looks at the arming.
  s.me().want_space.store(1, std::memory_order_seq_cst);
  if (can_take(s)) {
    s.want_writable = false;
    emit(s, event::writable);
  }
}

Result<void> ChannelTable::block(Slot& s, uint32_t need) {
  s.need = need;
  arm_writable(s);
  return fail(Errc::would_block);
}

bool ChannelTable::enqueue(Slot& s, rte_mbuf* m) {
  shm::ChanEnd& me = s.me();
  uint32_t len = m->pkt_len;
  uint64_t sent = me.sent.load(std::memory_order_relaxed);
  uint64_t flying = in_flight(s);
  if (flying != 0 && flying + len > me.budget) return false;  // any size goes into an empty channel
  me.sent.store(sent + len, std::memory_order_release);  // before the mbuf can be consumed
  if (rte_ring_sp_enqueue(s.out(), m) != 0) {
    me.sent.store(sent, std::memory_order_release);  // the ring is full
    return false;
  }
  inst_.counters().inc(engine::Counter::shm_bytes_sent, len);
  notify_data(s);
  return true;
}

Result<void> ChannelTable::send(uint32_t slot, uint32_t gen, Buffer& b) {
  Errc why = Errc::ok;
  Slot* s = resolve(slot, gen, why);
  if (s == nullptr) return fail(why);
  if (b.empty()) return fail(Errc::invalid_argument);
  if (auto r = sendable(*s); !r) return r;
  if (!enqueue(*s, b.mbuf())) return block(*s, b.mbuf()->pkt_len);
  (void)b.release_mbuf();  // the peer has the mbufs now; a received Buffer's budget returns
  return {};
}

Result<size_t> ChannelTable::write(uint32_t slot, uint32_t gen, const void* data, size_t len) {
  Errc why = Errc::ok;
  Slot* s = resolve(slot, gen, why);
  if (s == nullptr) return fail(why);
  if (len == 0) return size_t(0);
  if (data == nullptr) return fail(Errc::invalid_argument);
  if (auto r = sendable(*s); !r) return fail(r.error());
  uint32_t room = space(*s);
  if (room == 0 || rte_ring_free_count(s->out()) == 0) return fail(block(*s, 1).error());
  uint32_t n = uint32_t(std::min<size_t>(len, room));
  rte_mbuf* m = engine::alloc_chain(inst_.interfaces().front()->pool, n);
  if (m == nullptr) {
    inst_.counters().inc(engine::Counter::mbuf_alloc_failed);
    return fail(Errc::no_memory);
  }
  Buffer copy = Buffer::adopt(m);
  (void)copy.copy_from(data, n);
  if (!enqueue(*s, m)) return fail(block(*s, n).error());  // `copy` frees it
  (void)copy.release_mbuf();
  return size_t(n);
}

void ChannelTable::take_in(Slot& s) {
  shm::ChanEnd& me = s.me();
  rte_mbuf* head = me.pending.load(std::memory_order_relaxed);
  void* m[32];
  bool took = false;
  // Whole entries; past half of what nb_segs counts, the rest waits for the next call.
  while (head == nullptr || head->nb_segs < max_segs / 2) {
    unsigned n = rte_ring_sc_dequeue_burst(s.in(), m, 32, nullptr);
    if (n == 0) break;
    took = true;
    for (unsigned i = 0; i < n; ++i) {
      auto* x = static_cast<rte_mbuf*>(m[i]);
      inst_.counters().inc(engine::Counter::shm_bytes_received, x->pkt_len);
      if (head == nullptr) {
        head = x;
        me.pending.store(head, std::memory_order_release);
      } else {
        s.tail->next = x;
        head->nb_segs = uint16_t(std::min<unsigned>(max_segs, head->nb_segs + x->nb_segs));
        head->pkt_len += x->pkt_len;
      }
      s.tail = rte_pktmbuf_lastseg(x);
    }
  }
  if (took) notify_space(s);  // ring slots opened
}

void ChannelTable::consumed(Slot& s, uint32_t bytes) {
  if (bytes == 0) return;
  shm::ChanEnd& me = s.me();
  me.consumed.store(me.consumed.load(std::memory_order_relaxed) + bytes, std::memory_order_release);
  notify_space(s);
}

Result<Buffer> ChannelTable::recv(uint32_t slot, uint32_t gen) {
  Errc why = Errc::ok;
  Slot* s = resolve(slot, gen, why);
  if (s == nullptr) return fail(why);
  uint32_t pf = s->peer().flags.load(std::memory_order_acquire);  // before the ring: FIN follows the data
  if ((pf & shm::endf::aborted) != 0) return fail(reset(*s));
  take_in(*s);
  rte_mbuf* m = s->me().pending.exchange(nullptr, std::memory_order_acq_rel);
  s->tail = nullptr;
  if (m == nullptr) {
    if ((pf & shm::endf::fin) != 0) return Buffer();  // end of stream
    return fail(Errc::would_block);
  }
  s->held += m->pkt_len;
  return core_.received_buffer(m, index(*s) | chan_bit, s->gen, m->pkt_len);
}

Result<size_t> ChannelTable::read(uint32_t slot, uint32_t gen, void* dst, size_t cap) {
  Errc why = Errc::ok;
  Slot* s = resolve(slot, gen, why);
  if (s == nullptr) return fail(why);
  if (cap == 0) return size_t(0);
  if (dst == nullptr) return fail(Errc::invalid_argument);
  uint32_t pf = s->peer().flags.load(std::memory_order_acquire);
  if ((pf & shm::endf::aborted) != 0) return fail(reset(*s));
  take_in(*s);
  shm::ChanEnd& me = s->me();
  rte_mbuf* h = me.pending.load(std::memory_order_relaxed);
  auto* out = static_cast<uint8_t*>(dst);
  size_t copied = 0;
  while (h != nullptr && copied < cap) {
    uint32_t take = uint32_t(std::min<size_t>(h->data_len, cap - copied));
    std::memcpy(out + copied, rte_pktmbuf_mtod(h, const uint8_t*), take);
    copied += take;
    if (take < h->data_len) {
      rte_pktmbuf_adj(h, uint16_t(take));
      break;
    }
    // The whole segment is read: the next one heads the chain (published
    // before the free, so a survivor never frees it twice).
    rte_mbuf* next = h->next;
    if (next != nullptr) {
      next->nb_segs = uint16_t(h->nb_segs > 1 ? h->nb_segs - 1 : 1);
      next->pkt_len = h->pkt_len - h->data_len;
    }
    me.pending.store(next, std::memory_order_release);
    h->next = nullptr;
    h->nb_segs = 1;
    rte_pktmbuf_free_seg(h);
    h = next;
  }
  if (h == nullptr) s->tail = nullptr;
  if (copied == 0) {
    if ((pf & shm::endf::fin) != 0) return size_t(0);
    return fail(Errc::would_block);
  }
  consumed(*s, uint32_t(copied));
  return copied;
}

void ChannelTable::return_credit(uint32_t slot, uint32_t gen, uint32_t bytes) {
  uint32_t i = slot & ~chan_bit;
  if (i >= slots_.size() || slots_[i].gen != gen || slots_[i].ch == nullptr) return;  // closed since
  Slot& s = slots_[i];
  s.held -= std::min(s.held, bytes);
  consumed(s, bytes);
}

Result<size_t> ChannelTable::readable_bytes(uint32_t slot, uint32_t gen) {
  Errc why = Errc::ok;
  Slot* s = resolve(slot, gen, why);
  if (s == nullptr) return fail(why);
  return size_t(unread(*s));
}

Result<size_t> ChannelTable::send_space(uint32_t slot, uint32_t gen) {
  Errc why = Errc::ok;
  Slot* s = resolve(slot, gen, why);
  if (s == nullptr) return fail(why);
  return size_t(rte_ring_free_count(s->out()) != 0 ? space(*s) : 0);
}

Result<void> ChannelTable::want_writable(uint32_t slot, uint32_t gen) {
  Errc why = Errc::ok;
  Slot* s = resolve(slot, gen, why);
  if (s == nullptr) return fail(why);
  s->need = 1;
  arm_writable(*s);
  return {};
}

// ----- ending -----

Result<void> ChannelTable::shutdown(uint32_t slot, uint32_t gen) {
  Errc why = Errc::ok;
  Slot* s = resolve(slot, gen, why);
  if (s == nullptr) return fail(why);
  if (s->me().flags.fetch_or(shm::endf::fin, std::memory_order_acq_rel) & shm::endf::fin) return {};
  ring_peer(*s);
  service(*s);  // both directions shut now: closed
  return {};
}

Result<void> ChannelTable::close(uint32_t slot, uint32_t gen, bool abort) {
  Errc why = Errc::ok;
  Slot* s = resolve(slot, gen, why, false);  // after the closed event: quietly bad_handle
  if (s == nullptr) return fail(why);
  // Unread data makes a close an abort, as in Linux.
  bool aborting = abort || unread(*s) != 0;
  if (aborting && (s->peer().flags.load(std::memory_order_acquire) & shm::endf::released) == 0)
    inst_.counters().inc(engine::Counter::shm_resets);
  s->me().flags.fetch_or(aborting ? shm::endf::aborted : (shm::endf::fin | shm::endf::closed),
                         std::memory_order_acq_rel);
  ring_peer(*s);
  // No events from now on: an event of this batch goes with the handle.
  if (Event* e = core_.batched(s->ev_batch, s->ev, &Event::conn, handle(index(*s)))) e->flags = 0;
  node_.release(*s->ch, s->side);
  free_slot(*s);
  return {};
}

// ----- the rest of the Connection calls -----

Result<void> ChannelTable::check(uint32_t slot, uint32_t gen) {
  Errc why = Errc::ok;
  if (resolve(slot, gen, why) == nullptr) return fail(why);
  return {};
}

Result<void> ChannelTable::set_send_buffer(uint32_t slot, uint32_t gen, uint32_t bytes) {
  Errc why = Errc::ok;
  Slot* s = resolve(slot, gen, why);
  if (s == nullptr) return fail(why);
  if (bytes == 0) return fail(Errc::invalid_argument);
  s->me().budget = std::max<uint32_t>(bytes, 1024);
  return {};
}

Result<Endpoint> ChannelTable::local(uint32_t slot, uint32_t gen) {
  Errc why = Errc::ok;
  Slot* s = resolve(slot, gen, why);
  if (s == nullptr) return fail(why);
  return Endpoint{Ipv4Address{s->me().addr}, s->me().port};
}

Result<Endpoint> ChannelTable::peer(uint32_t slot, uint32_t gen) {
  Errc why = Errc::ok;
  Slot* s = resolve(slot, gen, why);
  if (s == nullptr) return fail(why);
  return Endpoint{Ipv4Address{s->peer().addr}, s->peer().port};
}

Result<ConnectionInfo> ChannelTable::info(uint32_t slot, uint32_t gen) {
  Errc why = Errc::ok;
  Slot* s = resolve(slot, gen, why);
  if (s == nullptr) return fail(why);
  ConnectionInfo i;
  i.transport = "channel";
  bool my_fin = (s->me().flags.load(std::memory_order_relaxed) & shm::endf::fin) != 0;
  i.state = s->connecting                  ? "syn-sent"
            : my_fin && s->peer_fin_seen   ? "time-wait"
            : my_fin                       ? "fin-wait-2"
            : s->peer_fin_seen             ? "close-wait"
                                           : "established";
  i.cc = "none";
  uint64_t acked = s->peer().consumed.load(std::memory_order_acquire);
  i.send_queued = uint32_t(in_flight(*s));
  i.receive_queued = uint32_t(unread(*s));
  i.receive_held = s->held;
  i.bytes_acked = acked;
  i.bytes_received = s->peer().sent.load(std::memory_order_acquire);
  return i;
}

Result<void> ChannelTable::set_user(uint32_t slot, uint32_t gen, uint64_t v) {
  Errc why = Errc::ok;
  Slot* s = resolve(slot, gen, why);
  if (s == nullptr) return fail(why);
  s->user = v;
  return {};
}

uint64_t ChannelTable::user(uint32_t slot, uint32_t gen) {
  Errc why = Errc::ok;
  Slot* s = resolve(slot, gen, why);
  return s != nullptr ? s->user : 0;
}

}  // namespace keel::detail
