// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// A UDP socket: its local address and port, its optional peer (connected
/// UDP), its pending error and its receive queue. Made by UdpStack::bind and
/// freed by UdpStack::close; touched only on the instance's lcore.

#include <cstdint>
#include <memory>

#include <keel/result.hpp>

#include "net/addresses.hpp"

struct rte_mbuf;

namespace keel::udp {

class UdpSocket;

/// A received datagram as recv() hands it over.
struct Datagram {
  rte_mbuf* payload = nullptr;  ///< the received mbuf (chain), headers stripped: the caller frees it
  net::Ipv4Addr src;            ///< the sender
  uint16_t src_port = 0;
  net::Ipv4Addr dst;            ///< the address it was sent to: ours, or a broadcast
};

/// What the stack tells the application about a socket, on the instance's
/// lcore, from inside poll(). A callback may call any UdpStack function on the
/// socket, close() included.
class UdpHandler {
 public:
  virtual ~UdpHandler() = default;
  /// The receive queue went from empty to non-empty (an edge: drain it with
  /// recv() until it is empty, or no further call comes).
  virtual void on_readable(UdpSocket& s) { (void)s; }
  /// An ICMP error arrived about a datagram this connected socket sent:
  /// connection_refused (port unreachable) or unreachable. The same error is
  /// the socket's pending error until a send returns it.
  virtual void on_error(UdpSocket& s, Errc e) { (void)s, (void)e; }
};

class UdpSocket {
 public:
  /// The bound address (any(): every local address) and port.
  net::Ipv4Addr local_addr() const { return addr_; }
  uint16_t local_port() const { return port_; }
  /// Connected: a default destination, and only its datagrams are received.
  bool connected() const { return peer_port_ != 0; }
  net::Ipv4Addr peer_addr() const { return peer_; }
  uint16_t peer_port() const { return peer_port_; }
  /// The error the next send on this socket returns (ok: none).
  Errc pending_error() const { return error_; }
  /// Datagrams and payload bytes waiting in the receive queue.
  uint32_t queued() const { return count_; }
  size_t queued_bytes() const { return bytes_; }
  UdpHandler* handler() const { return handler_; }
  /// The socket's index in its stack's table (0 .. max_sockets-1), stable while it is open.
  uint32_t slot() const { return slot_; }
  void set_handler(UdpHandler* h) { handler_ = h; }

  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;

 private:
  friend class UdpStack;
  UdpSocket(net::Ipv4Addr addr, uint16_t port, UdpHandler* h, uint32_t slot, uint32_t capacity)
      : addr_(addr), port_(port), handler_(h), slot_(slot), cap_(capacity),
        ring_(std::make_unique<Datagram[]>(capacity)) {}

  // The receive queue is a fixed ring of `cap_` entries allocated at bind: a
  // received datagram is one mbuf chain, and mbufs have no free link field
  // (`next` chains the segments), so the queue holds pointers beside the
  // addresses recv() reports. Bounded by entries and bytes; nothing allocated
  // per datagram.
  bool push(const Datagram& d, uint32_t len) {
    ring_[(head_ + count_) % cap_] = d;
    ++count_;
    bytes_ += len;
    return count_ == 1;
  }
  /// Precondition: count_ > 0.
  Datagram pop();

  net::Ipv4Addr addr_;
  uint16_t port_;
  uint16_t peer_port_ = 0;
  net::Ipv4Addr peer_;
  Errc error_ = Errc::ok;
  UdpHandler* handler_;
  UdpSocket* next_on_port_ = nullptr;  // the other sockets bound to port_ (UdpStack's table)
  uint32_t slot_;
  uint32_t cap_;
  uint32_t head_ = 0, count_ = 0;
  size_t bytes_ = 0;
  std::unique_ptr<Datagram[]> ring_;
};

}  // namespace keel::udp
