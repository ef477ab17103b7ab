// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// One instance's RX/TX queue pair on one port, with its TX buffer and the
/// optional fault injectors. Owned and touched by one lcore only.
///
/// TX is buffered: send() appends to a burst that flush() hands to the port once
/// per loop iteration (or when 32 are waiting). What tx_burst does not take waits
/// in a bounded backlog (like a qdisc) and goes first at the next flush: a TX
/// ring that fills for a moment (a peer polling a little late) costs a little
/// delay, not a loss that TCP would have to recover. Frames beyond the backlog
/// are freed and counted, never leaked or silently lost.
///
/// A port with fewer queues than instances: an instance without a queue of its
/// own receives nothing on the port and transmits through a ring (MP/SC) into
/// the instance that owns the queue, whose flush() sends what is in its inbox.
/// Each TX queue thus has one thread calling tx_burst, as ethdev requires.

#include <array>
#include <cstdint>
#include <memory>

#include "drivers/unmap_guard.hpp"
#include "engine/counters.hpp"

struct rte_mbuf;
struct rte_ring;

namespace keel::drivers {

class FaultInjector;
struct FaultConfig;

class PortQueue {
 public:
  static constexpr uint16_t burst = 32;
  /// Frames held while the TX ring is full (Linux's default txqueuelen is 1000).
  static constexpr uint32_t backlog_max = 1024;

  PortQueue(uint16_t port_id, uint16_t queue_id, engine::Counters& counters);
  ~PortQueue();
  PortQueue(PortQueue&&) noexcept;
  PortQueue(const PortQueue&) = delete;
  PortQueue& operator=(const PortQueue&) = delete;

  /// Installs fault injection on receive and/or transmit (nullptr cfg: none).
  void set_faults(const FaultConfig* rx, const FaultConfig* tx);

  /// This instance has no queue of its own on the port: it receives nothing and
  /// transmits into `ring`, drained by the queue's owner (its set_tx_inbox).
  void set_tx_handoff(rte_ring* ring) { tx_handoff_ = ring; }
  /// Frames other instances transmit on this queue (their set_tx_handoff ring).
  void set_tx_inbox(rte_ring* ring) { tx_inbox_ = ring; }
  /// False when the instance has no RX queue on the port (set_tx_handoff).
  bool receives() const { return tx_handoff_ == nullptr; }

  /// Receives up to `n` frames (after RX fault injection, if any).
  uint16_t rx(rte_mbuf** pkts, uint16_t n, uint64_t now_ns);
  /// Queues one frame for transmit; takes ownership.
  void send(rte_mbuf* m, uint64_t now_ns);
  /// Hands buffered frames (and delayed ones now due) to the port.
  void flush(uint64_t now_ns);
  /// Frames waiting in the TX buffer or backlog, or held by the fault injectors.
  size_t pending() const;
  /// When a held frame is next due: 0 with a backlog, else the fault
  /// injectors' next (UINT64_MAX: none).
  uint64_t next_due_ns() const;
  /// Frees everything held (at shutdown).
  void discard();

  uint16_t port_id() const { return port_id_; }
  uint16_t queue_id() const { return queue_id_; }

 private:
  void transmit(rte_mbuf** pkts, uint16_t n);
  /// tx_burst with the counting; returns how many the port took.
  uint16_t burst_out(rte_mbuf** pkts, uint16_t n);
  /// Sends from the backlog's head until the port takes no more.
  void drain_backlog();
  /// Transmits what other instances handed to this queue, while the port takes it.
  void drain_inbox();
  void backlog_push(rte_mbuf* m) {
    backlog_[(bl_head_ + bl_len_) % backlog_max] = m;
    ++bl_len_;
  }

  uint16_t port_id_;
  uint16_t queue_id_;
  engine::Counters* counters_;
  uint16_t tx_len_ = 0;
  std::array<rte_mbuf*, burst> tx_buf_{};
  std::unique_ptr<rte_mbuf*[]> backlog_;  // circular, backlog_max; allocated at first need
  uint32_t bl_head_ = 0, bl_len_ = 0;
  std::unique_ptr<FaultInjector> rx_fault_;
  std::unique_ptr<FaultInjector> tx_fault_;
  rte_ring* tx_handoff_ = nullptr;  // not owned
  rte_ring* tx_inbox_ = nullptr;    // not owned
  /// Marks this queue's bursts on a port whose control path unmaps queue memory while
  /// it runs (net_memif: see unmap_guard.hpp); nullptr on other ports.
  unmap_guard::Slot* guard_ = nullptr;
};

}  // namespace keel::drivers
