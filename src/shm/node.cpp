// SPDX-License-Identifier: BSD-3-Clause
// The fast path's node zone: creation, directory, endpoints, channel lifetime.
#include "shm/node.hpp"

#include <rte_mbuf.h>
#include <rte_errno.h>
#include <rte_memzone.h>
#include <rte_ring.h>
#include <unistd.h>

#include <cstring>
#include <mutex>
#include <sstream>

#include "engine/mbuf_util.hpp"
#include "engine/multiprocess.hpp"

namespace keel::shm {

Owner self() {
  static const Owner me{int32_t(getpid()), engine::mp::process_start_time(getpid())};
  return me;
}

bool alive(const Owner& o) {
  if (o == self()) return true;
  uint64_t t = engine::mp::process_start_time(o.pid);
  return t != 0 && t == o.start_time;
}

namespace {

uint32_t pow2_at_least(uint32_t n) {
  uint32_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

size_t align64(size_t n) { return (n + 63) & ~size_t(63); }

// A guard for the zone's spinlock.
struct Locked {
  explicit Locked(rte_spinlock_t& l) : l_(l) { rte_spinlock_lock(&l_); }
  ~Locked() { rte_spinlock_unlock(&l_); }
  rte_spinlock_t& l_;
};

std::string ip_text(uint32_t a) {
  return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 255) + "." + std::to_string((a >> 8) & 255) +
         "." + std::to_string(a & 255);
}

}  // namespace

Node* Node::open(uint32_t channels, uint32_t ring_slots, bool may_create, std::string& err) {
  static std::mutex mu;  // several engines of one process open it one after the other
  static Node* node = nullptr;
  std::lock_guard<std::mutex> g(mu);
  const rte_memzone* mz = rte_memzone_lookup(zone_name);
  if (mz != nullptr) {
    auto* z = static_cast<Zone*>(mz->addr);
    if (z->magic != zone_magic) {
      err = std::string("shm: memzone ") + zone_name + " is not a keel node zone";
      return nullptr;
    }
    if (node == nullptr || &node->zone() != z) node = new Node(z);  // lives as long as the process
    return node;
  }
  if (!may_create) {
    err = "shm: no channel table in this multi-process group (the primary runs with [shm] enabled = off; "
          "turn it off here too)";
    return nullptr;
  }
  if (channels == 0 || channels > max_channels) {
    err = "shm: channels must be 1.." + std::to_string(max_channels);
    return nullptr;
  }
  ring_slots = pow2_at_least(std::max<uint32_t>(ring_slots, 64));
  const size_t head = align64(sizeof(Zone) + sizeof(Channel) * (channels - 1));
  const size_t chan_ring = align64(rte_ring_get_memsize(ring_slots));
  const size_t bell_ring = align64(rte_ring_get_memsize(doorbell_slots));
  const size_t total = head + chan_ring * 2 * channels + bell_ring * max_endpoints;
  mz = rte_memzone_reserve_aligned(zone_name, total, SOCKET_ID_ANY, 0, RTE_CACHE_LINE_SIZE);
  if (mz == nullptr) {
    err = "shm: cannot reserve " + std::to_string(total >> 20) + " MiB for " + std::to_string(channels) +
          " channels (" + rte_strerror(rte_errno) + "); lower [shm] channels or ring_slots, or give EAL more memory";
    return nullptr;
  }
  auto* base = static_cast<uint8_t*>(mz->addr);
  std::memset(base, 0, total);
  auto* z = reinterpret_cast<Zone*>(base);
  z->channels = channels;
  z->ring_slots = ring_slots;
  rte_spinlock_init(&z->lock);
  uint8_t* p = base + head;
  for (uint32_t i = 0; i < channels; ++i)
    for (auto& r : z->chan[i].rings) {
      r = reinterpret_cast<rte_ring*>(p);
      rte_ring_init(r, "keel_shm_chan", ring_slots, RING_F_SP_ENQ | RING_F_SC_DEQ);
      p += chan_ring;
    }
  for (auto& e : z->endpoints) {
    e.doorbell = reinterpret_cast<rte_ring*>(p);
    rte_ring_init(e.doorbell, "keel_shm_bell", doorbell_slots, RING_F_SC_DEQ);
    p += bell_ring;
  }
  std::atomic_thread_fence(std::memory_order_release);
  z->magic = zone_magic;
  node = new Node(z);
  return node;
}

int Node::attach(uint16_t instance) {
  Locked l(z_->lock);
  for (unsigned i = 0; i < max_endpoints; ++i) {
    Endpoint& e = z_->endpoints[i];
    if (e.live != 0 && alive(e.owner)) continue;
    e.live = 1;
    ++e.gen;
    e.instance = instance;
    e.owner = self();
    e.overflow.store(0, std::memory_order_relaxed);
    rte_ring_reset(e.doorbell);
    return int(i);
  }
  return -1;
}

void Node::detach(uint16_t ep) {
  Locked l(z_->lock);
  z_->endpoints[ep].live = 0;
  ++z_->endpoints[ep].gen;
}

bool Node::add_entry(uint32_t addr, uint16_t port, uint16_t ep, uint32_t listener_slot, uint32_t listener_gen) {
  Locked l(z_->lock);
  for (auto& d : z_->dir) {
    if (d.live != 0) continue;
    d = ListenEntry{1, addr, port, ep, z_->endpoints[ep].gen, listener_slot, listener_gen, self()};
    return true;
  }
  return false;
}

void Node::remove_entries(uint16_t ep, uint32_t listener_slot, uint32_t listener_gen) {
  Locked l(z_->lock);
  for (auto& d : z_->dir)
    if (d.live != 0 && d.endpoint == ep && d.listener_slot == listener_slot && d.listener_gen == listener_gen)
      d.live = 0;
}

bool Node::lookup(uint32_t addr, uint16_t port, uint32_t pick, ListenEntry& out) {
  Locked l(z_->lock);
  ListenEntry* found[max_endpoints];
  unsigned n = 0;
  for (auto& d : z_->dir) {
    if (d.live == 0 || d.port != port || d.addr != addr) continue;
    const Endpoint& e = z_->endpoints[d.endpoint];
    if (e.live == 0 || e.gen != d.endpoint_gen) {
      d.live = 0;  // its instance detached, or its process was swept as dead
      continue;
    }
    if (n < max_endpoints) found[n++] = &d;
  }
  if (n == 0) return false;
  out = *found[pick % n];
  return true;
}

unsigned Node::sweep() {
  AliveCache is_alive;
  Locked l(z_->lock);
  unsigned gone = 0;
  for (auto& d : z_->dir)
    if (d.live != 0 && !is_alive(d.owner)) {
      d.live = 0;
      ++gone;
    }
  for (auto& e : z_->endpoints)
    if (e.live != 0 && !is_alive(e.owner)) {
      e.live = 0;
      ++e.gen;
      ++gone;
    }
  return gone;
}

Channel* Node::alloc_channel() {
  for (uint32_t i = 0; i < z_->channels; ++i) {
    Channel& c = z_->chan[i];
    uint32_t want = phase_free;
    if (c.phase.load(std::memory_order_relaxed) != phase_free ||
        !c.phase.compare_exchange_strong(want, phase_connecting, std::memory_order_acquire))
      continue;
    ++c.gen;
    c.released.store(0, std::memory_order_relaxed);
    for (auto& e : c.end) {
      e.flags.store(0, std::memory_order_relaxed);
      e.sent.store(0, std::memory_order_relaxed);
      e.consumed.store(0, std::memory_order_relaxed);
      e.pending.store(nullptr, std::memory_order_relaxed);
      e.want_data.store(0, std::memory_order_relaxed);
      e.want_space.store(0, std::memory_order_relaxed);
      e.local_slot = ~0u;
    }
    return &c;
  }
  return nullptr;
}

void Node::drain(rte_ring* r) {
  void* m[64];
  while (unsigned n = rte_ring_sc_dequeue_burst(r, m, 64, nullptr))
    for (unsigned i = 0; i < n; ++i) rte_pktmbuf_free(static_cast<rte_mbuf*>(m[i]));
}

void Node::release(Channel& c, unsigned side) {
  ChanEnd& e = c.end[side];
  if (e.flags.fetch_or(endf::released, std::memory_order_acq_rel) & endf::released) return;
  // Its pending chain is its own to free; what it left in the rings goes with the channel.
  engine::free_segments(e.pending.exchange(nullptr, std::memory_order_acq_rel));
  if (c.released.fetch_add(1, std::memory_order_acq_rel) + 1 < 2) return;
  // Both ends are done: nobody else touches the rings now.
  drain(c.rings[0]);
  drain(c.rings[1]);
  // Pending chains' heads may not describe them (read() consumes segment by segment).
  for (auto& end : c.end) engine::free_segments(end.pending.exchange(nullptr, std::memory_order_acq_rel));
  rte_ring_reset(c.rings[0]);
  rte_ring_reset(c.rings[1]);
  c.phase.store(phase_free, std::memory_order_release);
}

bool Node::ring_doorbell(uint16_t ep, uint32_t ep_gen, Channel& c, unsigned side) {
  Endpoint& e = z_->endpoints[ep];
  if (e.gen != ep_gen || e.live == 0) return false;
  if (rte_ring_mp_enqueue(e.doorbell, token(index_of(c), side, c.gen)) != 0)
    e.overflow.store(1, std::memory_order_release);
  return true;
}

std::string Node::describe_channels() {
  std::ostringstream out;
  unsigned n = 0;
  for (uint32_t i = 0; i < z_->channels; ++i) {
    Channel& c = z_->chan[i];
    uint32_t ph = c.phase.load(std::memory_order_acquire);
    if (ph == phase_free) continue;
    ++n;
    const ChanEnd &a = c.end[0], &b = c.end[1];
    auto fl = [](uint32_t f) {
      std::string s;
      if (f & endf::fin) s += "fin,";
      if (f & endf::closed) s += "closed,";
      if (f & endf::aborted) s += "aborted,";
      if (f & endf::released) s += "released,";
      if (!s.empty()) s.pop_back();
      return s.empty() ? std::string("open") : s;
    };
    out << "channel " << i << " " << (ph == phase_connecting ? "connecting" : ph == phase_refused ? "refused" : "established")
        << " " << ip_text(a.addr) << ":" << a.port << " (pid " << a.owner.pid << " instance "
        << z_->endpoints[a.endpoint].instance << ", " << fl(a.flags.load()) << ") <-> " << ip_text(b.addr) << ":"
        << b.port << " (pid " << b.owner.pid << ", " << fl(b.flags.load()) << ") sent " << a.sent.load() << "/"
        << b.sent.load() << " bytes, in flight " << a.sent.load() - b.consumed.load() << "/"
        << b.sent.load() - a.consumed.load() << ", queued " << rte_ring_count(c.rings[0]) << "/"
        << rte_ring_count(c.rings[1]) << " chains, armed data " << a.want_data.load() << "/" << b.want_data.load()
        << " space " << a.want_space.load() << "/" << b.want_space.load() << "\n";
  }
  out << n << " channel" << (n == 1 ? "" : "s") << " open of " << z_->channels << "\n";
  return out.str();
}

std::string Node::describe() {
  std::ostringstream out;
  {
    Locked l(z_->lock);
    for (auto& d : z_->dir)
      if (d.live != 0)
        out << "listen " << ip_text(d.addr) << ":" << d.port << " pid " << d.owner.pid << " instance "
            << z_->endpoints[d.endpoint].instance << (alive(d.owner) ? "" : " (dead)") << "\n";
    for (unsigned i = 0; i < max_endpoints; ++i) {
      Endpoint& e = z_->endpoints[i];
      if (e.live != 0)
        out << "endpoint " << i << " pid " << e.owner.pid << " instance " << e.instance
            << (alive(e.owner) ? "" : " (dead)") << "\n";
    }
  }
  return out.str() + describe_channels();
}

}  // namespace keel::shm
