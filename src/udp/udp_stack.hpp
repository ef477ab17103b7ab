// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// UDP (RFC 768) for one instance: the socket table, input (validation, demux,
/// receive queues, ICMP port unreachable), output (header, checksum by the
/// port or ip_output, fragmentation) and ICMP errors for connected sockets.
/// Registered with the Instance as the handler of protocol 17. Every call and
/// callback happens on the instance's lcore; errors are Errc values.
///
/// Files: udp_stack.cpp (table, bind/connect/close, input, ICMP errors, recv),
/// udp_output.cpp (send, send_to, send_to_copy).

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include <keel/result.hpp>

#include "engine/api_clock.hpp"
#include "engine/instance.hpp"
#include "udp/udp_socket.hpp"

struct rte_mbuf;

namespace keel::udp {

struct UdpConfig {
  uint32_t max_sockets = 1024;        ///< sockets per instance
  uint32_t rcv_datagrams = 256;       ///< receive queue entries per socket
  /// Payload bytes a socket's queue may hold: a datagram is queued while less
  /// than this is (COMPAT(linux): like sk_rcvbuf, so one datagram larger than
  /// the bound still gets through an empty queue). Linux's rmem_default is 208 KiB.
  uint32_t rcv_bytes = 256 * 1024;
};

/// What recv_copy() copied.
struct RecvInfo {
  size_t copied = 0;           ///< bytes written to the buffer
  size_t datagram_len = 0;     ///< the datagram's payload length
  bool truncated = false;      ///< datagram_len > copied: the rest was discarded (recvfrom's MSG_TRUNC)
  net::Ipv4Addr src;
  uint16_t src_port = 0;
  net::Ipv4Addr dst;
};

class UdpStack final : public engine::L4Handler {
 public:
  /// Largest payload of one datagram: 65535 - 20 (IPv4) - 8 (UDP).
  static constexpr uint32_t max_payload = 65507;
  /// The ephemeral port range (Linux's ip_local_port_range).
  static constexpr uint16_t ephemeral_first = 32768, ephemeral_last = 60999;

  UdpStack(engine::Instance& inst, const UdpConfig& cfg);
  ~UdpStack() override;
  UdpStack(const UdpStack&) = delete;
  UdpStack& operator=(const UdpStack&) = delete;

  // ----- sockets -----
  /// A socket on addr:port. `addr` any(): every local address, else one of
  /// ours (invalid_argument otherwise). `port` 0: an ephemeral port not in use
  /// (already_exists when none is left). A port already bound on the same
  /// address, or where either address is any(): already_exists. no_memory when
  /// max_sockets are open. `h` may be nullptr (poll recv()).
  Result<UdpSocket*> bind(net::Ipv4Addr addr, uint16_t port, UdpHandler* h);
  /// Frees the socket and the datagrams it still holds. `s` is invalid afterwards.
  void close(UdpSocket* s);
  /// Sets the default destination: from now on only datagrams from dst:port
  /// are received, and send() goes there. dst any() or port 0 dissolves the
  /// association. invalid_argument for a broadcast or multicast dst,
  /// unreachable when there is no route. Clears the pending error. The local
  /// address stays as bound (any(): each datagram takes the route's source).
  Result<void> connect(UdpSocket& s, net::Ipv4Addr dst, uint16_t port);

  // ----- output (udp_output.cpp) -----
  /// Sends `payload` (data = the UDP payload, possibly chained, possibly
  /// empty) to dst:port. Not taken (the caller still owns it) only when the
  /// call returns invalid_argument: payload nullptr, port 0, dst any(),
  /// multicast or a broadcast (COMPAT(linux): as without SO_BROADCAST), or
  /// more than max_payload bytes. In every other case it is taken: sent, or
  /// freed with the error: the socket's pending error (returned once, then
  /// cleared), no_memory, unreachable (no route).
  /// The 8-byte header goes into the payload's headroom when it is a direct,
  /// unshared mbuf with room for UDP + IPv4 + Ethernet, else into a header mbuf
  /// chained in front. Datagrams larger than the MTU are fragmented: DF is never
  /// set (COMPAT(linux): IP_PMTUDISC_DONT; Linux's default "want" needs a path
  /// MTU cache keel does not have, and a DF datagram past a smaller link would
  /// be lost). Source address: the bound one, or the route's if bound to any().
  Result<void> send_to(UdpSocket& s, rte_mbuf* payload, net::Ipv4Addr dst, uint16_t port);
  /// send_to() the connected peer. not_connected (payload not taken) otherwise.
  Result<void> send(UdpSocket& s, rte_mbuf* payload);
  /// Copies `len` bytes into new mbufs and sends them as one datagram; returns
  /// len. invalid_argument for the arguments send_to refuses (len > max_payload).
  Result<size_t> send_to_copy(UdpSocket& s, const void* data, size_t len, net::Ipv4Addr dst,
                              uint16_t port);

  // ----- input for the application -----
  /// The oldest queued datagram (zero copy: the received mbuf), or nothing.
  std::optional<Datagram> recv(UdpSocket& s);
  /// Copies the oldest datagram's payload into buf (at most cap bytes; the
  /// rest is discarded and info.truncated says so) and frees it. would_block
  /// when the queue is empty.
  Result<RecvInfo> recv_copy(UdpSocket& s, void* buf, size_t cap);

  // ----- inspection -----
  size_t sockets() const { return open_; }
  const UdpConfig& config() const { return cfg_; }
  engine::Instance& instance() { return inst_; }
  /// The time send_to and the other API calls hand to ip_output.
  engine::ApiClock& clock() { return clock_; }

  // ----- L4Handler -----
  void on_datagram(engine::Instance& inst, rte_mbuf* m, const engine::Ipv4Meta& ip,
                   uint64_t now_ns) override;
  void on_icmp_error(engine::Instance& inst, const engine::IcmpError& err,
                     uint64_t now_ns) override;

 private:
  /// The socket a datagram from src:sport to dst:dport goes to: one bound to
  /// dst itself before one bound to any(), connected sockets only for their
  /// peer. `unicast` false (a broadcast): any() sockets only.
  UdpSocket* lookup(net::Ipv4Addr dst, uint16_t dport, net::Ipv4Addr src, uint16_t sport,
                    bool unicast) const;
  bool is_local(net::Ipv4Addr a) const;
  /// A broadcast address: the limited one or a directed broadcast of ours.
  bool is_broadcast(net::Ipv4Addr a) const;
  bool bad_destination(net::Ipv4Addr dst, uint16_t port) const;
  uint16_t pick_ephemeral_port();
  engine::Counters& counters() { return inst_.counters(); }

  engine::Instance& inst_;
  UdpConfig cfg_;
  // Demux: one list head per port number (512 KiB), the sockets on a port
  // linked through next_on_port_. A port holds at most one socket per local
  // address (bind refuses overlaps), so a list is as long as the addresses
  // bound on that port: O(1) per datagram, never a scan over all sockets.
  std::unique_ptr<UdpSocket*[]> ports_;
  std::vector<std::unique_ptr<UdpSocket>> slots_;  // max_sockets, made at bind
  std::vector<uint32_t> free_slots_;
  size_t open_ = 0;
  uint16_t next_ephemeral_ = ephemeral_first;
  engine::ApiClock clock_;
};

}  // namespace keel::udp
