// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// A port wraps one rte_ethdev: queues (one RX/TX pair per instance), MTU,
/// offload negotiation, RSS, start/stop, link status and statistics. It works
/// for any PMD: net_tap, net_af_packet, net_memif, net_ring, net_null, PCI NICs.

#include <cstdint>
#include <string>

#include <keel/result.hpp>

#include "net/addresses.hpp"

struct rte_mempool;

namespace keel::drivers {

/// What the port does for us; the stack does the rest in software.
struct OffloadCaps {
  bool rx_ipv4_cksum = false;  ///< RX verifies IPv4 header checksums (mbuf ol_flags)
  bool rx_l4_cksum = false;    ///< RX verifies TCP/UDP checksums
  bool tx_ipv4_cksum = false;  ///< TX fills IPv4 header checksums
  bool tx_tcp_cksum = false;
  bool tx_udp_cksum = false;
  bool tx_tso = false;         ///< TCP segmentation offload
  bool tx_multi_seg = false;   ///< TX accepts chained mbufs
  /// The L4 checksum offload sums each segment as if it began at an even
  /// offset, so a chain with an odd-length segment before its last must be
  /// summed in software (net_tap in DPDK 22.11: wrong TCP checksums otherwise).
  bool tx_l4_cksum_even_segments = false;
  /// RSS over several RX queues with our symmetric key and our RETA (entry i -> queue
  /// i % queues, programmed at start): the port's choice of queue is predictable.
  bool rss = false;
};

struct PortConfig {
  uint16_t queues = 1;          ///< RX/TX queue pairs, one per instance
  /// Start with fewer queues when the driver offers fewer (at least 1) instead of failing.
  bool fewer_queues_ok = false;
  uint16_t rx_desc = 1024;
  uint16_t tx_desc = 1024;
  uint16_t mtu = 1500;          ///< 0: keep the PMD's default
  bool promiscuous = false;     ///< needed on some vdevs (e.g. af_packet sees all anyway)
  bool use_offloads = true;     ///< false: do everything in software (tests)
  /// The MAC the stack uses. Zero: the port's own; a port that has none (net_ring
  /// reports 00:00:00:00:00:00 and cannot be changed) gets a random local one.
  net::MacAddr mac;
};

/// Port state after start().
class Port {
 public:
  /// Configures and starts port `port_id` with `pool` for RX buffers.
  static Result<Port, std::string> start(uint16_t port_id, const PortConfig& cfg,
                                         rte_mempool* pool);
  /// A port another process (the DPDK primary) configured and started, as it
  /// configured it: this process polls its queues and never reconfigures,
  /// stops or closes it (a multi-process secondary).
  static Port attached(uint16_t port_id, uint16_t queues, uint16_t mtu, net::MacAddr mac,
                       uint16_t reta_size, const OffloadCaps& caps);
  /// The ethdev port id of the device named `name` (e.g. "net_tap0"), or of the
  /// n-th available port when `name` is a number.
  static Result<uint16_t, std::string> find(const std::string& name);

  /// Stops the port (on EAL's interrupt thread, see close()).
  void stop();
  /// Stops and closes the port; the caller's loops no longer poll it. Runs on
  /// EAL's interrupt thread and waits, so a PMD's own control-channel
  /// callbacks (net_memif's handling of the peer's disconnect, which frees
  /// the shared regions) never run at the same time as stop and close. Free
  /// the mbuf pool only after this.
  void close();
  uint16_t id() const { return id_; }
  const std::string& name() const { return name_; }
  net::MacAddr mac() const { return mac_; }
  uint16_t mtu() const { return mtu_; }
  uint16_t queues() const { return queues_; }
  /// Entries of the RETA programmed at start (0 unless caps().rss).
  uint16_t reta_size() const { return reta_size_; }
  const OffloadCaps& caps() const { return caps_; }
  std::string driver() const;
  /// "up 10000 Mbps full-duplex" or "down".
  std::string link_status() const;

 private:
  uint16_t id_ = 0;
  std::string name_;
  net::MacAddr mac_;
  uint16_t mtu_ = 1500;
  uint16_t queues_ = 1;
  uint16_t reta_size_ = 0;
  OffloadCaps caps_;
};

/// The symmetric Toeplitz key: a repeating 0x6d5a makes hash(a,b) == hash(b,a),
/// so both directions of a flow land on the same queue.
extern const uint8_t symmetric_rss_key[40];

}  // namespace keel::drivers
