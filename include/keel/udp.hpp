// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// UDP sockets of the native API (Stack::udp_bind). Same model as TCP: the
/// socket belongs to its instance's lcore, its events come in poll()'s batch
/// (Event::udp), errors are values, a handle is stale after close().
///
/// Receiving is zero copy: recv() hands over the received mbufs as a Buffer
/// (headers stripped). The readable event is an edge: it comes when the
/// socket's queue goes from empty to non-empty, so drain it with recv() until
/// would_block. The queue is bounded (datagrams and bytes); beyond it
/// datagrams are dropped and counted (udp_rcvbuf_errors).
///
/// With several instances, a datagram goes to the instance that owns its
/// flow (4-tuple hash): a server binds the port on every instance, and a
/// reply from the socket that received a request goes back the same way.

#include <cstddef>
#include <cstdint>

#include <keel/address.hpp>
#include <keel/buffer.hpp>
#include <keel/result.hpp>

namespace keel {

namespace detail {
class StackCore;
}

/// A received datagram.
struct Datagram {
  Buffer payload;   ///< the UDP payload (possibly empty, possibly chained)
  Endpoint from;    ///< the sender
  Ipv4Address to;   ///< the address it was sent to (ours, or a broadcast)
};

/// What UdpSocket::recv_copy copied.
struct DatagramInfo {
  size_t copied = 0;        ///< bytes written to the caller's buffer
  size_t length = 0;        ///< the datagram's payload length
  bool truncated = false;   ///< length > copied: the rest was discarded (like MSG_TRUNC)
  Endpoint from;
  Ipv4Address to;
};

class UdpSocket {
 public:
  /// Largest payload of one datagram (65535 - 20 - 8).
  static constexpr size_t max_payload = 65507;

  UdpSocket() = default;
  bool valid() const { return core_ != nullptr; }
  explicit operator bool() const { return valid(); }
  bool operator==(const UdpSocket&) const = default;

  /// Zero-copy send of `b` as one datagram to `dst`. invalid_argument (b
  /// untouched): empty handle data, port 0, dst any/multicast/broadcast, or
  /// over max_payload. Otherwise `b` is taken (empty afterwards) whatever the
  /// outcome: sent, or dropped with the error (the socket's pending ICMP
  /// error, unreachable, no_memory). Datagrams over the MTU are fragmented.
  Result<void> send_to(Buffer& b, Endpoint dst) const;
  /// Copying send_to: one datagram of `len` bytes; returns len.
  Result<size_t> send_to(const void* data, size_t len, Endpoint dst) const;
  /// send_to the connected peer; not_connected (b untouched) if there is none.
  Result<void> send(Buffer& b) const;
  Result<size_t> write(const void* data, size_t len) const;
  /// Connected UDP: `peer` becomes the default destination and only its
  /// datagrams are received. Endpoint{} (any address, port 0) dissolves it.
  Result<void> connect(Endpoint peer) const;
  /// The oldest waiting datagram; would_block when there is none.
  Result<Datagram> recv() const;
  /// Copies the oldest datagram into `buf` (at most cap bytes) and drops it.
  Result<DatagramInfo> recv_copy(void* buf, size_t cap) const;
  /// Datagrams waiting.
  Result<size_t> queued() const;
  Result<Endpoint> local() const;
  /// Frees the socket and what it still holds; the handle is dead afterwards.
  Result<void> close() const;
  /// An opaque value every Event of this socket carries.
  Result<void> set_user(uint64_t v) const;

 private:
  friend class detail::StackCore;
  UdpSocket(detail::StackCore* c, uint32_t slot, uint32_t gen) : core_(c), slot_(slot), gen_(gen) {}
  detail::StackCore* core_ = nullptr;
  uint32_t slot_ = 0, gen_ = 0;
};

}  // namespace keel
