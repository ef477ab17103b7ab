// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// The native API's per-instance state behind keel::Stack: the batched event
/// queue, the application's view of each connection slot (user value,
/// bytes it holds), the listeners, and the thread check. It is the one
/// ConnHandler of every API connection on its TcpStack; TCP's callbacks
/// become event bits here.
///
/// Events are coalesced per connection: the first callback of a connection in
/// a batch appends an Event and remembers its index in the slot; later ones
/// OR their bit into it. poll() hands the batch over (delivered_) and starts
/// a new one (pending_), so that events raised while the application works
/// through a batch (a close it calls, say) land in the next.

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include <keel/buffer.hpp>
#include <keel/stack.hpp>

#include "api/channels.hpp"
#include "engine/idle_policy.hpp"
#include "engine/instance.hpp"
#include "tcp/tcp_stack.hpp"
#include "udp/udp_stack.hpp"

namespace keel::detail {

/// Reports misuse to the installed handler and returns `e` for the caller.
Errc misuse(Errc e, const char* what);

class StackCore final : public tcp::ConnHandler, public udp::UdpHandler {
 public:
  /// `stop`: the flag that ends running(); `instances`: how many there are in
  /// all; `udp`: nullptr for a stack without UDP (udp_bind: not_supported);
  /// `node`: the intra-node fast path's zone, nullptr to leave it off, and
  /// `shm_budget` the bytes a channel may have in flight per direction.
  StackCore(engine::Instance& inst, tcp::TcpStack& tcp, const engine::IdleConfig& idle,
            std::atomic<bool>* stop, unsigned instances, udp::UdpStack* udp = nullptr,
            shm::Node* node = nullptr, uint32_t shm_budget = 1 << 20);
  ~StackCore() override;
  StackCore(const StackCore&) = delete;
  StackCore& operator=(const StackCore&) = delete;

  /// The calling thread owns the stack from now on (the runtime calls it on
  /// the instance's lcore before the application's code runs).
  void bind_to_current_thread();
  /// True on the owning thread; otherwise reports wrong_thread misuse.
  bool on_owner_thread() const;

  engine::Instance& instance() { return inst_; }
  tcp::TcpStack& tcp() { return tcp_; }
  unsigned instances() const { return instances_; }
  bool running() const { return stop_ == nullptr || !stop_->load(std::memory_order_relaxed); }
  void request_stop() {
    if (stop_ != nullptr) stop_->store(true, std::memory_order_relaxed);
  }

  std::span<const Event> poll(bool may_sleep);

  // ----- the calls behind the public handles -----
  Result<Listener> listen(Endpoint local, const ListenOptions& opt);
  Result<Connection> connect(Endpoint remote, const ConnectOptions& opt);
  Result<Buffer> alloc(size_t len);
  Result<Buffer> clone(const Buffer& b);
  /// The live TCB a handle names, or nullptr with `why` (wrong_thread,
  /// bad_handle) after reporting the misuse (a stale handle only when
  /// `report_stale`). A connection the stack closed in order and left in
  /// TIME-WAIT still resolves until the application closes it: the data
  /// before the peer's FIN stays readable.
  tcp::Tcb* conn(uint32_t slot, uint32_t gen, Errc& why, bool report_stale = true);
  /// The connection's API state (valid while conn() is non-null).
  uint64_t& user_of(uint32_t slot) { return conns_[slot].user; }
  /// The app gives a connection up (close / abort): no events from now on.
  void forget(uint32_t slot, uint32_t gen);
  /// recv(): hands the data over, counted against the window until released.
  Buffer take_received(tcp::Tcb& c);
  /// A received Buffer was released (or sent on): `bytes` back to the window.
  /// From another thread the credit travels through the control ring.
  void return_credit(uint32_t slot, uint32_t gen, uint32_t bytes);
  Result<void> close_listener(uint32_t slot, uint32_t gen);

  // ----- channels (api/channels.hpp) -----
  /// The fast path's side of this instance, nullptr when it is off.
  ChannelTable* channels() { return channels_.get(); }
  /// A channel reached listener (slot, gen): true (and `out`, its handle,
  /// its accepted count bumped) if it still listens.
  bool accept_channel(uint32_t slot, uint32_t gen, Listener& out);
  /// A received Buffer whose `credit` bytes go back to handle (slot, gen) on release.
  Buffer received_buffer(rte_mbuf* m, uint32_t slot, uint32_t gen, uint32_t credit);

  // ----- UDP -----
  Result<UdpSocket> udp_bind(Endpoint local);
  /// The open socket a handle names, or nullptr with `why`.
  udp::UdpSocket* udp_socket(uint32_t slot, uint32_t gen, Errc& why);
  udp::UdpStack& udp() { return *udp_; }
  Result<void> udp_close(uint32_t slot, uint32_t gen);
  void set_udp_user(uint32_t slot, uint64_t v) { udp_slots_[slot].user = v; }
  /// A received datagram as the API hands it over.
  static Datagram to_datagram(const udp::Datagram& d);
  void on_readable(udp::UdpSocket& s) override;
  void on_error(udp::UdpSocket& s, Errc e) override;
  const tcp::Listener* listener(uint32_t slot, uint32_t gen, Errc& why);

  // ----- tcp::ConnHandler -----
  void on_connected(tcp::Tcb& c) override;
  void on_readable(tcp::Tcb& c) override;
  void on_writable(tcp::Tcb& c) override;
  void on_peer_closed(tcp::Tcb& c) override;
  void on_closed(tcp::Tcb& c, Errc reason) override;

 private:
  friend class ChannelTable;  // raises events through add_event()
  struct ConnSlot {
    uint64_t user = 0;
    uint32_t gen = 0;         // incarnation these fields belong to
    uint32_t ev_batch = 0;    // batch_ when `ev` was set
    uint32_t ev = 0;          // index in pending_ of this incarnation's event
    bool forgotten = false;   // closed or aborted by the application
  };
  struct ApiListener : tcp::ListenHandler {
    StackCore* core = nullptr;
    tcp::Listener* l = nullptr;
    uint32_t slot = 0, gen = 0;  // gen odd while in use
    tcp::ConnHandler* on_accept(tcp::Tcb& c) override { return core->accept(*this, c); }
  };
  struct UdpSlot {
    udp::UdpSocket* s = nullptr;
    uint32_t gen = 0;        // odd while open
    uint64_t user = 0;
    uint32_t ev_batch = 0, ev = 0;
  };
  tcp::ConnHandler* accept(ApiListener& l, tcp::Tcb& c);
  void emit_udp(udp::UdpSocket& s, uint16_t flag, Errc err);
  /// The event of this batch that (ev_batch, ev) names, if it is still the
  /// one of handle `h` in `field` (Event::conn or Event::udp; a slot's event
  /// index outlives a batch), else nullptr.
  template <class Handle>
  Event* batched(uint32_t ev_batch, uint32_t ev, Handle Event::*field, const Handle& h);
  /// ORs `flag` (and a non-ok `err`) into the handle's event of this batch,
  /// or appends one and records its index in (ev_batch, ev).
  template <class Handle>
  void add_event(uint32_t& ev_batch, uint32_t& ev, Handle Event::*field, const Handle& h,
                 uint16_t flag, Errc err, uint64_t user);
  /// Starts the API's view of a new incarnation of a slot.
  void adopt(tcp::Tcb& c, uint64_t user);
  void emit(tcp::Tcb& c, uint16_t flag, Errc err = Errc::ok, Listener from = {});

  engine::Instance& inst_;
  tcp::TcpStack& tcp_;
  engine::IdlePolicy idle_;
  std::atomic<bool>* stop_;
  unsigned instances_;
  unsigned lcore_ = ~0u;
  std::vector<ConnSlot> conns_;           // per TCB slot
  std::vector<ApiListener> listeners_;    // fixed size: handles index it
  udp::UdpStack* udp_;
  std::vector<UdpSlot> udp_slots_;        // per UdpSocket::slot()
  std::vector<Event> pending_, delivered_;
  uint32_t batch_ = 1;
  std::unique_ptr<ChannelTable> channels_;  // last: destroyed first, while the rest still stands
};

}  // namespace keel::detail
