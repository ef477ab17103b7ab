// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// The native API: one keel::Stack per instance (one lcore), its TCP
/// connections and listeners, and batched events.
///
/// Model. The application runs one loop per instance, on that instance's
/// lcore (keel::Runtime starts it there):
///
///     while (stack.running())
///       for (const keel::Event& ev : stack.poll()) { ... }
///
/// poll() runs one iteration of the stack (receive a burst, run it to
/// completion through IP and TCP, fire timers, transmit) and returns every
/// event that happened since the last poll, across all connections, one
/// entry per connection with every flag that applies (PASTE-style: 100 ready
/// connections cost one call, not 200). The span is valid until the next
/// poll(). When there is nothing to do, poll() sleeps briefly (busy-poll,
/// then pause, then growing sleeps bounded by the next timer) unless the
/// runtime was configured to busy-poll.
///
/// Threads. A Stack and every handle it gave out belong to its lcore: a call
/// from another thread returns Errc::wrong_thread (and asserts in debug
/// builds, see set_misuse_handler). Share-nothing: another instance's
/// connections are reached only through the network (or, later, channels).
///
/// Handles (Connection, Listener) are small values naming a slot and its
/// incarnation: after a connection closed, its handle is stale and every
/// call on it returns Errc::bad_handle; it never reaches a newer connection
/// that reuses the slot. Errors are values; nothing here throws.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include <keel/address.hpp>
#include <keel/buffer.hpp>
#include <keel/result.hpp>
#include <keel/udp.hpp>

namespace keel {

namespace detail {
class StackCore;
class ChannelTable;
}
namespace tls {
class Connection;
}

/// What happened to a connection (bits of Event::flags).
namespace event {
inline constexpr uint16_t accepted = 1 << 0;     ///< a listener accepted it (Event::listener says which)
inline constexpr uint16_t connected = 1 << 1;    ///< connect() completed; it is writable
inline constexpr uint16_t readable = 1 << 2;     ///< in-order data is waiting (recv / read)
inline constexpr uint16_t writable = 1 << 3;     ///< send space opened after a would_block
inline constexpr uint16_t peer_closed = 1 << 4;  ///< the peer's FIN: after the data waiting, end of stream
/// Gone; Event::error says why (ok: orderly). After an orderly close the data
/// that arrived before the peer's FIN can still be read (recv/read) until the
/// application calls close() or TIME-WAIT ends; read it when the event comes.
/// After any other close every call on the handle returns bad_handle.
inline constexpr uint16_t closed = 1 << 5;
/// A UDP socket got an ICMP error about a datagram it sent (connected sockets):
/// Event::error is connection_refused (port unreachable) or unreachable.
inline constexpr uint16_t error = 1 << 6;
}  // namespace event

/// Where the runtime reports API misuse (wrong thread, stale handle, double
/// release) besides the error value. The default handler aborts with the
/// message in debug builds (NDEBUG unset) and does nothing otherwise; tests
/// that exercise misuse install one that counts. Returns the previous one.
using MisuseHandler = void (*)(Errc e, const char* what);
MisuseHandler set_misuse_handler(MisuseHandler h);

/// TCP state names, as `ss` shows them.
struct ConnectionInfo {
  /// "tcp", or "channel" for the intra-node shared-memory path (whose other
  /// fields: no cc, mss, cwnd, rtt or retransmits; the queues are bytes in the channel).
  const char* transport = "tcp";
  const char* state = "";       ///< "established", "fin-wait-1", ...
  const char* cc = "";          ///< congestion control algorithm
  uint32_t mss = 0, cwnd = 0, ssthresh = 0;
  uint64_t srtt_us = 0, rto_us = 0;
  uint32_t send_queued = 0;     ///< bytes queued and not yet acknowledged
  uint32_t receive_queued = 0;  ///< bytes received, not yet taken by the application
  uint32_t receive_held = 0;    ///< bytes taken by recv() and not yet released
  uint32_t retransmits = 0;
  uint64_t bytes_acked = 0, bytes_received = 0;
};

/// Handles are values: copying one copies the name of the connection, and
/// the methods are const because they do not change the handle.
class Connection {
 public:
  Connection() = default;
  /// False for a default-constructed handle (a stale one is still "valid"
  /// here; its calls return bad_handle).
  bool valid() const { return core_ != nullptr; }
  explicit operator bool() const { return valid(); }
  bool operator==(const Connection&) const = default;

  /// Zero-copy send: queues `b`'s mbufs as they are. On success `b` is empty
  /// (the stack holds the mbufs until acknowledged). would_block: the send
  /// buffer is full; `b` is untouched and a writable event follows when space
  /// opens. A buffer larger than the whole send buffer is taken when the
  /// queue is empty, so any size eventually goes.
  Result<void> send(Buffer& b) const;
  /// Copying send: takes up to `len` bytes (what fits); would_block if none fit.
  Result<size_t> write(const void* data, size_t len) const;
  /// Zero-copy receive: every in-order byte received so far, as the port's
  /// mbufs. would_block if nothing is waiting; an empty Buffer means end of
  /// stream (the peer's FIN, after all its data). The bytes count against
  /// the receive window until the Buffer is released.
  Result<Buffer> recv() const;
  /// Copying receive: up to `cap` bytes; 0 means end of stream; would_block
  /// if nothing is waiting.
  Result<size_t> read(void* dst, size_t cap) const;
  /// Bytes waiting to be received.
  Result<size_t> readable_bytes() const;
  /// Bytes send()/write() would take now.
  Result<size_t> send_space() const;
  /// Ask for a writable event as soon as send space is available (also
  /// requested automatically by a would_block).
  Result<void> want_writable() const;

  /// Sends FIN after the queued data (half-close); reading goes on.
  Result<void> shutdown() const;
  /// Orderly close: queued data is still delivered, then FIN. The handle is
  /// dead at once: no more events, every call returns bad_handle. Unread
  /// received data makes it an abort (RST), as in Linux. On a connection that
  /// already ended (after its closed event) it returns bad_handle without
  /// reporting misuse, so a final close() is always safe.
  Result<void> close() const;
  /// Abortive close: RST, everything queued dropped; the handle is dead at once.
  Result<void> abort() const;

  Result<void> set_nodelay(bool on) const;
  /// TCP keepalive with the stack's idle/interval/count settings.
  Result<void> set_keepalive(bool on) const;
  /// This connection's keepalive timing (like TCP_KEEPIDLE, TCP_KEEPINTVL,
  /// TCP_KEEPCNT): a 0 keeps the stack's setting for that field.
  /// invalid_argument beyond the config's ranges (32767000 ms, 127 probes).
  Result<void> set_keepalive_timing(uint32_t idle_ms, uint32_t interval_ms, uint8_t count) const;
  /// "cubic" or "newreno"; invalid_argument for another name.
  Result<void> set_congestion_control(std::string_view name) const;
  /// Send buffer limit in bytes (at least 1 MSS's worth is enforced).
  Result<void> set_send_buffer(uint32_t bytes) const;
  /// Receive buffer (window) limit in bytes; the advertised window follows it
  /// within the scale negotiated at the handshake.
  Result<void> set_receive_buffer(uint32_t bytes) const;

  Result<Endpoint> local() const;
  Result<Endpoint> peer() const;
  Result<ConnectionInfo> info() const;
  /// True when the connection is an intra-node shared-memory channel (the
  /// peer is a listener of this node; see ShmOptions), false for TCP. The
  /// only call that tells the two apart.
  Result<bool> is_channel() const;

  /// An opaque value the application attaches; every Event carries it.
  Result<void> set_user(uint64_t v) const;
  uint64_t user() const;

 private:
  friend class detail::StackCore;
  friend class detail::ChannelTable;
  Connection(detail::StackCore* c, uint32_t slot, uint32_t gen) : core_(c), slot_(slot), gen_(gen) {}
  detail::StackCore* core_ = nullptr;
  uint32_t slot_ = 0, gen_ = 0;
};

struct ListenOptions {
  /// Handshakes held half-open; beyond it the listener answers with SYN cookies.
  uint32_t backlog = 128;
};

/// A TCP listener on one instance. Every instance that should serve the port
/// listens on it (SO_REUSEPORT-like): flows are spread over instances by RSS
/// or the software dispatcher, and each is accepted where it lands.
class Listener {
 public:
  Listener() = default;
  bool valid() const { return core_ != nullptr; }
  explicit operator bool() const { return valid(); }
  bool operator==(const Listener&) const = default;
  /// Stops listening; half-open handshakes go with it. Accepted connections stay.
  Result<void> close() const;
  Result<Endpoint> local() const;
  /// Connections accepted so far.
  Result<uint64_t> accepted() const;

 private:
  friend class detail::StackCore;
  Listener(detail::StackCore* c, uint32_t slot, uint32_t gen) : core_(c), slot_(slot), gen_(gen) {}
  detail::StackCore* core_ = nullptr;
  uint32_t slot_ = 0, gen_ = 0;
};

/// One entry of a poll() batch: a TCP connection's (conn valid) or a UDP
/// socket's (udp valid; flags readable and error).
struct Event {
  uint16_t flags = 0;         ///< event:: bits
  Errc error = Errc::ok;      ///< with event::closed: why (ok for an orderly close); with event::error
  Connection conn;
  Listener listener;          ///< with event::accepted
  UdpSocket udp;
  uint64_t user = 0;          ///< the connection's or socket's user value (set_user), 0 until set
  bool has(uint16_t f) const { return (flags & f) != 0; }
};

struct ConnectOptions {
  /// Source address: any() takes the route's.
  Ipv4Address local_addr;
  /// Source port: 0 picks an ephemeral port (one whose flow hash lands on
  /// this instance when there are several).
  uint16_t local_port = 0;
  /// Give up with timed_out if not connected by then; 0: TCP's SYN retries.
  uint32_t timeout_ms = 0;
  bool nodelay = false;
  /// Set before the handshake, so the first event already carries it.
  uint64_t user = 0;
};

class Stack {
 public:
  /// This instance's id (0..instances-1 in a single process; in a
  /// multi-process group the global id, from the process's instance_range)
  /// and the number of instances of this process.
  unsigned id() const;
  unsigned instances() const;
  /// False once the runtime is stopping: the loop should return.
  bool running() const;
  /// Asks every instance of the runtime to stop (running() becomes false
  /// everywhere), e.g. when a client's work is done.
  void request_stop();

  /// One stack iteration, then every event since the last poll. Sleeps
  /// briefly when idle (see the file comment). Valid until the next poll().
  std::span<const Event> poll();
  /// poll() without the idle sleep.
  std::span<const Event> poll_nowait();

  /// Listens on `local` (addr any(): every address of this instance's ports).
  /// already_exists if this instance listens there already.
  Result<Listener> listen(Endpoint local, const ListenOptions& opt = {});
  /// Active open. The connection's first event is connected, or closed with
  /// connection_refused / timed_out / unreachable.
  Result<Connection> connect(Endpoint remote, const ConnectOptions& opt = {});
  /// A UDP socket on `local` (addr any(): every address; port 0: an
  /// ephemeral port). already_exists if the address and port are taken on
  /// this instance, invalid_argument for an address that is not ours.
  Result<UdpSocket> udp_bind(Endpoint local);
  /// A buffer of `len` bytes (contents undefined) from this instance's pool,
  /// chained over several mbufs when larger than one; fill it, then send it.
  /// no_memory when the pool is exhausted.
  Result<Buffer> alloc(size_t len);
  /// Another Buffer over the same bytes (indirect mbufs from this instance's
  /// pool, no copy): fill once, send many times. The bytes must not change
  /// while any copy is queued (TCP keeps them until acknowledged).
  /// bad_handle for an empty Buffer, no_memory when the pool is exhausted.
  Result<Buffer> clone(const Buffer& b);

  /// Nanoseconds on the stack's clock (monotonic).
  uint64_t now_ns() const;
  /// A named counter of this instance (the names `keel-pmd show stats` lists);
  /// nullopt-like 0 for an unknown name.
  uint64_t counter(std::string_view name) const;

  /// For the runtime: wraps a core.
  explicit Stack(detail::StackCore* core) : core_(core) {}

 private:
  friend class tls::Connection;  // reaches the instance's pool and counters
  detail::StackCore* core_;
};

}  // namespace keel
