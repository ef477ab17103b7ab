// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// One instance's side of the intra-node fast path: the channels it holds,
/// behind the same Connection handles as TCP (slot | chan_bit), and the
/// directory entries of its listeners. Owned by the StackCore and run on its
/// lcore: poll() reads the instance's doorbell ring and looks at the channels
/// named there, turning what changed into the same events TCP raises.
///
/// The semantics follow TCP's as the API states them: connect -> connected
/// (or closed with connection_refused), send would_block while the byte
/// budget is used up (then writable), shutdown -> the peer reads EOF after
/// the data, close with unread data -> abort, abort -> the peer sees
/// closed(connection_reset) and its unread data is dropped. Two differences,
/// both documented in docs/ARCHITECTURE.md: sending to a peer that has
/// closed fails at once with connection_reset (TCP learns it from the RST a
/// moment later), and options that concern the wire (nodelay, keepalive,
/// congestion control, receive buffer) are accepted and change nothing.

#include <cstdint>
#include <vector>

#include <keel/buffer.hpp>
#include <keel/stack.hpp>

#include "shm/node.hpp"

namespace keel::engine {
class Instance;
}

namespace keel::detail {

class StackCore;

class ChannelTable {
 public:
  static constexpr uint32_t chan_bit = 1u << 31;
  static bool is_channel(uint32_t slot) { return (slot & chan_bit) != 0; }

  /// Attaches an endpoint for the instance; ok() is false if the node has none free.
  ChannelTable(StackCore& core, engine::Instance& inst, shm::Node& node, uint32_t budget);
  /// Aborts every channel still open (the peers see a reset) and leaves the directory.
  ~ChannelTable();
  ChannelTable(const ChannelTable&) = delete;
  ChannelTable& operator=(const ChannelTable&) = delete;
  bool ok() const { return ep_ >= 0; }

  /// Doorbells and periodic checks (peer liveness, connect deadlines, the
  /// directory sweep); returns how much it did (0: idle).
  unsigned poll(uint64_t now_ns);

  // ----- listeners -----
  /// Enters a listener in the directory (addr 0: every address of the
  /// instance, and 127.0.0.1).
  void listening(uint32_t addr, uint16_t port, uint32_t lslot, uint32_t lgen);
  void unlistening(uint32_t lslot, uint32_t lgen);

  /// The fast path's answer to a connect: a channel when a listener of the
  /// node is at `remote`; a connection refused at once when none is but the
  /// address is this node's own (as a kernel refuses on loopback); `taken`
  /// false when the connect is for TCP.
  Result<Connection> connect(Endpoint remote, const ConnectOptions& opt, bool& taken);

  // ----- the Connection calls, on handle (slot, gen) -----
  Result<void> send(uint32_t slot, uint32_t gen, Buffer& b);
  Result<size_t> write(uint32_t slot, uint32_t gen, const void* data, size_t len);
  Result<Buffer> recv(uint32_t slot, uint32_t gen);
  Result<size_t> read(uint32_t slot, uint32_t gen, void* dst, size_t cap);
  Result<size_t> readable_bytes(uint32_t slot, uint32_t gen);
  Result<size_t> send_space(uint32_t slot, uint32_t gen);
  Result<void> want_writable(uint32_t slot, uint32_t gen);
  Result<void> shutdown(uint32_t slot, uint32_t gen);
  Result<void> close(uint32_t slot, uint32_t gen, bool abort);
  /// Resolves the handle only: what the wire options (nodelay, keepalive, cc,
  /// receive buffer) do on a channel. The send buffer sets the budget.
  Result<void> check(uint32_t slot, uint32_t gen);
  Result<void> set_send_buffer(uint32_t slot, uint32_t gen, uint32_t bytes);
  Result<Endpoint> local(uint32_t slot, uint32_t gen);
  Result<Endpoint> peer(uint32_t slot, uint32_t gen);
  Result<ConnectionInfo> info(uint32_t slot, uint32_t gen);
  Result<void> set_user(uint32_t slot, uint32_t gen, uint64_t v);
  uint64_t user(uint32_t slot, uint32_t gen);
  /// A received Buffer was released: its bytes leave the budget.
  void return_credit(uint32_t slot, uint32_t gen, uint32_t bytes);

  /// Channels open on this instance.
  size_t open_count() const { return open_; }

 private:
  struct Slot {
    shm::Channel* ch = nullptr;
    uint32_t ch_gen = 0;
    uint8_t side = 0;           // 0: connector, 1: acceptor
    uint32_t gen = 0;           // handle incarnation: odd while in use
    uint64_t user = 0;
    uint32_t ev_batch = 0, ev = 0;
    rte_mbuf* tail = nullptr;   // last segment of me().pending
    uint32_t held = 0;          // bytes recv() handed out, not yet released
    uint64_t deadline_ns = 0;   // connecting: give up then
    bool connecting = false, peer_fin_seen = false, closed_sent = false, want_writable = false;
    uint32_t need = 1;          // bytes the blocked send wants room for
    uint32_t next_free = ~0u;
    shm::ChanEnd& me() const { return ch->end[side]; }
    shm::ChanEnd& peer() const { return ch->end[1 - side]; }
    rte_ring* in() const { return ch->rings[1 - side]; }
    rte_ring* out() const { return ch->rings[side]; }
  };

  /// The slot a handle names, or nullptr with `why` (after reporting misuse;
  /// a stale handle only when `report_stale`).
  Slot* resolve(uint32_t slot, uint32_t gen, Errc& why, bool report_stale = true);
  Connection handle(uint32_t i) const;
  uint32_t index(const Slot& s) const { return uint32_t(&s - slots_.data()); }
  Slot* alloc_slot();
  void free_slot(Slot& s);
  void emit(Slot& s, uint16_t flag, Errc err = Errc::ok, Listener from = {});
  /// Runs every token waiting on this endpoint's doorbell; returns how many.
  unsigned drain_doorbell();
  /// Looks for channels posted to this endpoint and not accepted yet (after
  /// lost tokens, and when going away: then they are refused).
  void accept_posted();
  /// A doorbell token for this endpoint.
  void on_token(void* t);
  /// A connector's channel reached this endpoint's listener.
  void accept(shm::Channel& c);
  /// Turns what changed in the channel into events.
  void service(Slot& s);
  /// The channel ends here with event closed(err): our end is released and
  /// the handle goes stale.
  void finish(Slot& s, Errc err);
  /// Moves what the incoming ring holds onto me().pending.
  void take_in(Slot& s);
  /// The bytes count as consumed: the peer's budget opens up.
  void consumed(Slot& s, uint32_t bytes);
  /// Rings the peer's doorbell (state changes always ring).
  void ring_peer(Slot& s);
  /// After enqueueing: rings the peer if it asked for data.
  void notify_data(Slot& s);
  /// After dequeueing or consuming: rings the peer if it waits for space.
  void notify_space(Slot& s);
  /// not_connected after our shutdown; connection_reset (and the closed
  /// event) when the peer closed or aborted.
  Result<void> sendable(Slot& s);
  /// Puts the chain in the ring if the budget and ring allow; false if not.
  bool enqueue(Slot& s, rte_mbuf* m);
  /// would_block, with a writable event asked for when `need` bytes fit.
  Result<void> block(Slot& s, uint32_t need);
  /// Whether a send of s.need bytes would go now (ring room and budget).
  bool can_take(const Slot& s) const;
  /// Wants a writable event: armed in the shared end, then checked (the
  /// event comes now if the room is already there).
  void arm_writable(Slot& s);
  /// The peer reset the channel: closed(connection_reset).
  Errc reset(Slot& s);
  /// Bytes this end sent that the peer has not released yet (the budget's use).
  uint64_t in_flight(const Slot& s) const;
  /// Bytes the peer sent that this end has neither read nor handed out.
  uint64_t unread(const Slot& s) const;
  uint32_t space(const Slot& s) const;
  void check_peers(uint64_t now_ns);
  bool is_our_address(uint32_t addr) const;

  StackCore& core_;
  engine::Instance& inst_;
  shm::Node& node_;
  uint32_t budget_;
  int ep_ = -1;
  uint32_t ep_gen_ = 0;
  std::vector<Slot> slots_;
  uint32_t free_head_ = ~0u;
  size_t open_ = 0;
  uint32_t pick_ = 0;
  bool closing_ = false;  // the destructor runs: accept nothing
  uint64_t next_check_ns_ = 0, next_sweep_ns_ = 0;
  struct Registered {
    uint32_t lslot, lgen;
  };
  std::vector<Registered> listeners_;
};

}  // namespace keel::detail
