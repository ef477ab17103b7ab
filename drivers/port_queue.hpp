// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// One instance's RX/TX queue pair on one port, with its TX buffer and the
/// optional fault injectors. Owned and touched by one lcore only.
///
/// TX is buffered: send() appends to a burst that flush() hands to the port once
/// per loop iteration (or when 32 are waiting). What tx_burst does not take after
/// a few retries is freed and counted, never leaked or silently lost.

#include <array>
#include <cstdint>
#include <memory>

#include "engine/counters.hpp"

struct rte_mbuf;

namespace keel::drivers {

class FaultInjector;
struct FaultConfig;

class PortQueue {
 public:
  static constexpr uint16_t burst = 32;

  PortQueue(uint16_t port_id, uint16_t queue_id, engine::Counters& counters);
  ~PortQueue();
  PortQueue(PortQueue&&) noexcept;
  PortQueue(const PortQueue&) = delete;

  /// Installs fault injection on receive and/or transmit (nullptr cfg: none).
  void set_faults(const FaultConfig* rx, const FaultConfig* tx);

  /// Receives up to `n` frames (after RX fault injection, if any).
  uint16_t rx(rte_mbuf** pkts, uint16_t n, uint64_t now_ns);
  /// Queues one frame for transmit; takes ownership.
  void send(rte_mbuf* m, uint64_t now_ns);
  /// Hands buffered frames (and delayed ones now due) to the port.
  void flush(uint64_t now_ns);
  /// Frames waiting in the TX buffer or held by the fault injectors.
  size_t pending() const;
  /// When a frame held by a fault injector is next due (UINT64_MAX: none).
  uint64_t next_due_ns() const;
  /// Frees everything held (at shutdown).
  void discard();

  uint16_t port_id() const { return port_id_; }
  uint16_t queue_id() const { return queue_id_; }

 private:
  void transmit(rte_mbuf** pkts, uint16_t n);

  uint16_t port_id_;
  uint16_t queue_id_;
  engine::Counters* counters_;
  uint16_t tx_len_ = 0;
  std::array<rte_mbuf*, burst> tx_buf_{};
  std::unique_ptr<FaultInjector> rx_fault_;
  std::unique_ptr<FaultInjector> tx_fault_;
};

}  // namespace keel::drivers
