// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// The intra-node fast path's shared memory: one DPDK memzone per node (per
/// multi-process group: every process of it maps the zone at the same
/// address) holding
///
///   - the directory: address:port -> the stack instance listening there
///     (which process, which endpoint, which API listener);
///   - endpoints: one per attached stack instance (an API StackCore), each
///     with a doorbell ring (MP/SC) on which peers post "look at channel C";
///   - channels: a control block and two SPSC rings of mbuf pointers, one per
///     direction. The mbufs are the sender's own (the pool is shared), so the
///     receiver gets the very buffers the sender filled: no header, no
///     checksum, no copy.
///
/// Ownership. A channel end (Channel::end[s]) is written by the instance that
/// holds it; end 0 is the connector, end 1 the acceptor. Ring end[s] -> end[1-s]
/// is rings[s]: its producer is end s, its consumer end 1-s. A channel is
/// freed (rings drained, mbufs back to their pools) by whichever end releases
/// last; an end whose process died is released by the survivor, which also
/// reclaims what the dead side left in the rings and in its pending chain.
/// The directory and the endpoint table change under `lock` (a spinlock in
/// the zone; the sections are short and never call out).
///
/// Liveness is by process identity (PID + start time from /proc, against PID
/// reuse): a directory entry, endpoint or channel end whose process is gone
/// is stale and is swept (see Node::sweep and docs/ARCHITECTURE.md).

#include <rte_spinlock.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

struct rte_ring;
struct rte_mbuf;

namespace keel::shm {

inline constexpr const char* zone_name = "keel_shm_node";
inline constexpr uint32_t zone_magic = 0x6b73686d;  // "kshm"
inline constexpr unsigned max_channels = 4096;
inline constexpr unsigned max_endpoints = 128;
inline constexpr unsigned max_listen_entries = 1024;
inline constexpr unsigned doorbell_slots = 4096;

/// A process, against PID reuse.
struct Owner {
  int32_t pid = 0;
  uint64_t start_time = 0;  ///< /proc/PID/stat field 22
  bool operator==(const Owner&) const = default;
};
/// This process.
Owner self();
/// Whether `o` is this process or a live one (not gone, not a zombie, not a newer PID holder).
bool alive(const Owner& o);

/// alive() for one sweep over many entries: one /proc look per process,
/// however many entries it owns.
class AliveCache {
 public:
  bool operator()(const Owner& o) {
    for (auto& [who, live] : seen_)
      if (who == o) return live;
    seen_.emplace_back(o, alive(o));
    return seen_.back().second;
  }

 private:
  std::vector<std::pair<Owner, bool>> seen_;
};

/// A directory entry: one address:port a listener serves (a listener on any
/// address has one entry per address of its instance, and one for 127.0.0.1).
struct ListenEntry {
  uint32_t live;        ///< 0: free
  uint32_t addr;        ///< host byte order
  uint16_t port;
  uint16_t endpoint;    ///< the listening instance's endpoint
  uint32_t endpoint_gen;
  uint32_t listener_slot, listener_gen;  ///< the API listener on that instance
  Owner owner;
};

/// An attached stack instance.
struct Endpoint {
  uint32_t live;
  uint32_t gen;             ///< bumped at every attach
  uint16_t instance;        ///< the instance's id (for show commands)
  Owner owner;
  rte_ring* doorbell;       ///< tokens (see token()) for this endpoint to look at
  /// Set when a doorbell could not be posted (ring full): the endpoint then
  /// looks at every channel it holds.
  std::atomic<uint32_t> overflow;
};

/// End flags (ChanEnd::flags): set by the end's own side, never cleared
/// while the channel lives.
namespace endf {
inline constexpr uint32_t fin = 1 << 0;       ///< shut down for writing: the peer reads EOF after the data
inline constexpr uint32_t closed = 1 << 1;    ///< the application closed it (orderly)
inline constexpr uint32_t aborted = 1 << 2;   ///< abort, or a reset: the peer's data is dropped
inline constexpr uint32_t released = 1 << 3;  ///< this end touches the channel no more
}  // namespace endf

enum ChanPhase : uint32_t {
  phase_free = 0,
  phase_connecting,   ///< end 0 posted it to the acceptor's doorbell
  phase_established,
  phase_refused,      ///< the listener was gone when the acceptor looked
};

struct alignas(64) ChanEnd {
  // Written by this end.
  std::atomic<uint32_t> flags;
  uint16_t endpoint;           ///< the instance holding the end
  uint32_t endpoint_gen;
  uint32_t local_slot;         ///< its slot in that instance's channel table
  Owner owner;
  uint32_t addr;               ///< this end's address:port (local() of its connection)
  uint16_t port;
  uint32_t budget;             ///< bytes this end may have in flight towards the peer
  std::atomic<uint64_t> sent;  ///< bytes this end put in its ring, in all
  /// The chain this end took off its incoming ring and the application has
  /// not read yet (shared so that a survivor can free it if this side dies).
  std::atomic<rte_mbuf*> pending;
  // Written by this end, read by the peer.
  alignas(64) std::atomic<uint64_t> consumed;  ///< bytes this end received and released
  /// Armed by this end when it wants a doorbell: on new data (want_data),
  /// on budget opening up (want_space). The peer clears it when it rings.
  std::atomic<uint32_t> want_data;
  std::atomic<uint32_t> want_space;
};

struct alignas(64) Channel {
  std::atomic<uint32_t> phase;
  uint32_t gen;                 ///< bumped at every allocation: tokens carry it
  uint32_t listener_slot, listener_gen;  ///< which listener the connector asked for
  std::atomic<uint32_t> released;        ///< ends released; the second frees the channel
  ChanEnd end[2];
  rte_ring* rings[2];           ///< rings[s]: end s -> end 1-s
};

/// The zone's header; channels and rings follow it.
struct Zone {
  uint32_t magic;
  uint32_t channels;            ///< entries of chan[]
  uint32_t ring_slots;          ///< per channel ring (power of two)
  rte_spinlock_t lock;          ///< directory and endpoints
  ListenEntry dir[max_listen_entries];
  Endpoint endpoints[max_endpoints];
  Channel chan[1];              ///< [channels]
};

/// A doorbell token: "endpoint, look at end `side` of channel `idx`, allocation `gen`".
inline void* token(uint32_t idx, uint32_t side, uint32_t gen) {
  return reinterpret_cast<void*>(uintptr_t(gen) << 32 | uintptr_t(idx) << 1 | side);
}
inline uint32_t token_idx(void* t) { return uint32_t(uintptr_t(t) >> 1) & 0x7fffffff; }
inline uint32_t token_side(void* t) { return uint32_t(uintptr_t(t) & 1); }
inline uint32_t token_gen(void* t) { return uint32_t(uintptr_t(t) >> 32); }

/// The process's view of the zone.
class Node {
 public:
  /// The node's zone: looked up, or (may_create) reserved and initialised with
  /// `channels` and `ring_slots` (rounded up to a power of two). nullptr with
  /// `err` set when it cannot be had.
  static Node* open(uint32_t channels, uint32_t ring_slots, bool may_create, std::string& err);

  Zone& zone() { return *z_; }
  uint32_t channels() const { return z_->channels; }
  Channel& chan(uint32_t i) { return z_->chan[i]; }
  Endpoint& endpoint(uint32_t i) { return z_->endpoints[i]; }

  /// Claims an endpoint for instance `instance` of this process; -1 if all are in use.
  int attach(uint16_t instance);
  void detach(uint16_t ep);

  /// Adds a directory entry; false if the directory is full.
  bool add_entry(uint32_t addr, uint16_t port, uint16_t ep, uint32_t listener_slot, uint32_t listener_gen);
  /// Removes every entry of one listener.
  void remove_entries(uint16_t ep, uint32_t listener_slot, uint32_t listener_gen);
  /// The live listener at addr:port: one of them, taking turns by `pick`
  /// (SO_REUSEPORT-like), when several instances listen there. Entries whose
  /// endpoint detached or was swept are removed on the way (no /proc look here:
  /// the sweep finds dead processes).
  bool lookup(uint32_t addr, uint16_t port, uint32_t pick, ListenEntry& out);

  /// Removes directory entries and endpoints of dead processes; returns how many.
  unsigned sweep();

  /// A free channel, marked connecting with a new gen; nullptr if none.
  Channel* alloc_channel();
  uint32_t index_of(const Channel& c) const { return uint32_t(&c - z_->chan); }
  /// The end `side` lets go; the last one drains both rings and frees the channel.
  void release(Channel& c, unsigned side);
  /// Rings endpoint `ep` (gen `ep_gen`) about end `side` of `c`; false if the endpoint is gone.
  bool ring_doorbell(uint16_t ep, uint32_t ep_gen, Channel& c, unsigned side);

  /// Every directory entry, endpoint and open channel, one per line (show shm).
  std::string describe();
  /// The open channels only (show conns).
  std::string describe_channels();

 private:
  explicit Node(Zone* z) : z_(z) {}
  void drain(rte_ring* r);
  Zone* z_;
};

}  // namespace keel::shm
