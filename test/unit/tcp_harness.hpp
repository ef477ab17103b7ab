// SPDX-License-Identifier: BSD-3-Clause
#pragma once
// Packet-level harness for the TCP state machine. One TcpStack on a real
// engine::Instance over a net_ring port: the test plays the peer (198.18.0.1)
// by building Ethernet/IPv4/TCP frames here (checksums computed with
// frames.hpp's plain loops, options encoded byte by byte, nothing shared with
// src/tcp), feeding them through the port's RX ring, and reading back what the
// stack transmitted from the TX ring; emitted frames are checked (addresses,
// IPv4 header, TCP checksum) and parsed with tcp::parse_tcp.
//
// Time is explicit: the harness keeps `now`, polls the instance with it and is
// the stack's clock (TcpStack::set_clock), so timers armed by input, by timer
// callbacks and by API calls all live on one time line that a test steps.
//
// Peer-side vocabulary, as in smoltcp's socket tests:
//   SEND(h, Seg{...})     the peer sends a segment to the stack
//   RECV(h, Expect{...})  the stack must have sent exactly one segment, matching
//   RECV_NOTHING(h)       the stack sent nothing
// A Seg's seq/ack default to h.peer_nxt / h.keel_nxt; once TS are on, the peer
// stamps every segment (TSval from its own clock, TSecr the last TSval seen).
//
// Every harness checks at its end that the test's mbuf pool is back to where it
// was (PoolBaseline); tests end with h.finish() after close and TIME-WAIT, which
// checks the connection table is empty and nothing more was sent.

#include <catch2/catch.hpp>

#include <rte_mbuf.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/instance.hpp"
#include "frames.hpp"
#include "tcp/tcp_stack.hpp"
#include "test_support.hpp"

namespace keel::test::tcp {

using keel::Errc;
using keel::tcp::ConnHandler;
using keel::tcp::ListenHandler;
using keel::tcp::Listener;
using keel::tcp::Tcb;
using keel::tcp::TcpConfig;
using keel::tcp::TcpSegment;
using keel::tcp::TcpStack;
using keel::tcp::TcpState;

inline constexpr uint64_t us = 1'000;
inline constexpr uint64_t ms = 1'000'000;
inline constexpr uint64_t sec = 1'000'000'000;
/// The instance's (and its timer wheel's) origin: every test starts here.
inline constexpr uint64_t t0 = 1000 * sec;

inline constexpr uint8_t FIN = 0x01, SYN = 0x02, RST = 0x04, PSH = 0x08, ACK = 0x10, URG = 0x20;

/// "SYN|ACK" and so on.
std::string flags_str(uint8_t f);

using Block = std::pair<uint32_t, uint32_t>;  ///< a SACK block [left, right)

/// TCP options as the test writes or expects them. Encoded in this order:
/// MSS, NOP NOP SACK-permitted, NOP NOP TS, NOP WS, NOP NOP SACK; `raw`
/// replaces all of it with exact bytes (malformed lists).
struct Opts {
  std::optional<uint16_t> mss;
  std::optional<uint8_t> ws;
  bool sack_perm = false;
  std::optional<std::pair<uint32_t, uint32_t>> ts;  ///< {TSval, TSecr}
  std::vector<Block> sack;
  std::optional<Bytes> raw;
};
Bytes encode_options(const Opts& o);
/// Canonical text, for comparisons with readable failures.
std::string describe(const Opts& o);
Opts opts_of(const keel::tcp::TcpOptions& o);

/// A segment the peer sends. Unset seq/ack: h.peer_nxt / h.keel_nxt.
struct Seg {
  std::optional<uint32_t> seq, ack;
  uint8_t flags = ACK;
  uint16_t window = 65535;  ///< the field as sent (unscaled)
  Opts opt;
  Bytes data;
  bool no_ts = false;        ///< don't add the automatic timestamp
  std::optional<uint16_t> sport, dport;
  // Malformations
  bool bad_checksum = false;
  std::optional<uint8_t> data_off;  ///< header length field in 32-bit words, as written
  uint16_t urgent = 0;
};

/// A segment the stack sent, parsed.
struct Out {
  TcpSegment h;
  Bytes data;
  Bytes ip_packet;  ///< the whole IPv4 packet (for ICMP quotes)
  uint32_t seq() const { return h.seq; }
  uint32_t ack() const { return h.ack; }
  uint8_t flags() const { return h.flags; }
  uint16_t window() const { return h.window; }
  size_t len() const { return data.size(); }
  std::string str() const;
};

/// What a RECV checks; unset fields are not checked. `opt` compares the whole
/// option list; `sack` and `tsecr` only those parts of it.
struct Expect {
  std::optional<uint32_t> seq, ack;
  std::optional<uint8_t> flags;
  std::optional<uint16_t> window;
  std::optional<size_t> len;
  std::optional<Bytes> data;
  std::optional<Opts> opt;
  std::optional<std::vector<Block>> sack;
  std::optional<uint32_t> tsecr;
};

/// Records what the stack tells the application.
class ConnRec : public ConnHandler {
 public:
  /// Events since the last take_events(), space separated:
  /// connected readable writable peer_closed closed:<reason>.
  std::string take_events();
  /// Adds an event to the record.
  void note(std::string e);
  void on_connected(Tcb& c) override;
  void on_readable(Tcb& c) override;
  void on_writable(Tcb& c) override;
  void on_peer_closed(Tcb& c) override;
  void on_closed(Tcb& c, Errc reason) override;

  TcpStack* stack = nullptr;
  Tcb* tcb = nullptr;          ///< cleared by on_closed
  bool auto_read = false;      ///< on_readable: recv() everything into `received`
  Bytes received;
  bool closed = false;
  Errc reason = Errc::ok;

 private:
  std::vector<std::string> events_;
};

/// Hands out a new ConnRec per accepted connection (or refuses them all).
class ListenRec : public ListenHandler {
 public:
  ConnHandler* on_accept(Tcb& c) override;
  TcpStack* stack = nullptr;
  bool refuse = false;
  bool auto_read = false;
  std::vector<std::unique_ptr<ConnRec>> conns;
};

/// The peer's side of the handshake.
struct PeerOpts {
  uint16_t mss = 1460;      ///< 0: no MSS option
  int ws = 7;               ///< -1: no window scale option
  bool sack = true;
  bool ts = true;
  uint16_t window = 65535;  ///< the SYN's window field
};

class TcpHarness {
 public:
  /// Short timers: MSL 1 s, initial RTO 1 s (min 200 ms), delayed ACK 40 ms,
  /// 128 KiB buffers (our window scale 2).
  static TcpConfig default_config();

  explicit TcpHarness(const TcpConfig& cfg = default_config());
  ~TcpHarness();
  TcpHarness(const TcpHarness&) = delete;
  TcpHarness& operator=(const TcpHarness&) = delete;

  TcpStack& stack() { return *stack_; }
  engine::Instance& inst() { return *inst_; }
  uint64_t count(engine::Counter c) const { return inst_->counters().get(c); }
  /// Counters that moved since construction or the last mark(), as "name=delta ...".
  std::string changed() const;
  void mark();

  // ----- time -----
  uint64_t now() const { return now_; }
  /// The stack's TSval at `now` (1 ms ticks).
  uint32_t kts() const { return uint32_t(now_ / ms); }
  /// The peer's TSval at `now`: its own clock, 4 s short of wrapping at t0.
  uint32_t pts() const { return uint32_t(now_ / ms) + peer_ts_offset; }
  void poll() { inst_->poll(now_); }
  /// Moves time forward by `dt` and polls (timers due by then fire).
  void advance(uint64_t dt) { advance_to(now_ + dt); }
  void advance_to(uint64_t t);

  // ----- the peer -----
  /// The frame `s` would be (ports, timestamps and defaults filled in).
  Bytes frame(Seg s);
  /// Feeds `s` to the stack and polls.
  void send(Seg s);
  /// Feeds raw frame bytes and polls.
  void send_frame(const Bytes& f);
  /// Everything the stack transmitted since the last call (flushes first),
  /// each frame validated and parsed at the time it was sent.
  std::vector<Out> take();
  /// Exactly one segment, matching `e`.
  Out recv(const Expect& e);
  void recv_nothing();
  /// Checks `o` against `e` (non-fatal CHECKs, all fields reported).
  static void check(const Out& o, const Expect& e);

  // ----- connections -----
  Listener* listen(uint16_t port = 80, uint32_t backlog = 16);
  /// Passive open to ESTABLISHED: SYN, SYN-ACK, ACK. Returns the accepted TCB.
  Tcb* accept_established(const PeerOpts& po = {});
  /// Active open to ESTABLISHED: connect(), SYN, SYN-ACK, ACK.
  Tcb* connect_established(const PeerOpts& po = {});
  /// The connection on (kport, pport), or nullptr.
  Tcb* tcb();
  /// Its state's name, "CLOSED" if there is none.
  std::string state();
  /// The SYN the peer sends for `po`, seq irs.
  Seg syn(const PeerOpts& po) const;
  /// The application side of the connection on (kport, pport); else the
  /// handler of the last factory.
  ConnRec& app();
  /// Copies out (and frees) everything in the connection's receive queue.
  Bytes read_all(Tcb& c);

  /// The peer closes first: FIN, ACK of it (CLOSE-WAIT), the application
  /// closes, FIN (LAST-ACK), the peer's ACK: CLOSED, no TIME-WAIT on this side.
  /// Precondition: nothing unacknowledged either way, receive queue read.
  void close_by_peer();
  /// The end of every test: no connection left, nothing more sent.
  void finish();

  // The conversation. Ports: the stack's (kport) and the peer's (pport).
  uint16_t kport = 80, pport = 40000;
  uint32_t irs = 0xfffffff0;  ///< the peer's ISN: 16 octets before the wrap
  uint32_t iss = 0;           ///< the stack's ISS, read from its SYN / SYN-ACK
  uint32_t peer_nxt = 0;      ///< next sequence number the peer sends
  uint32_t keel_nxt = 0;      ///< next sequence number the stack sends (what the peer ACKs)
  bool ts_on = false;         ///< TS negotiated: the peer stamps its segments
  uint32_t last_keel_ts = 0;  ///< TSval of the stack's latest segment (the peer's TSecr)
  uint32_t peer_ts_offset = 0;

  ListenRec lst;
  ConnRec conn;  ///< handler of connect()

 private:
  static uint64_t clock_fn(void* ctx) { return static_cast<TcpHarness*>(ctx)->now_; }
  void drain();

  PoolBaseline baseline_;  // first: checked after everything else is gone
  uint64_t now_ = t0;
  std::unique_ptr<engine::Instance> inst_;
  engine::Interface* ifc_ = nullptr;
  std::unique_ptr<TcpStack> stack_;
  ConnRec* app_ = &conn;
  std::vector<Out> pending_;  // sent before the last advance, not yet taken
  std::vector<uint64_t> counter_base_;
};

}  // namespace keel::test::tcp

#define KEEL_TCP_AT(what) INFO(what " at " << __FILE__ << ":" << __LINE__)
/// The peer sends a segment.
#define SEND(h, ...)            \
  do {                          \
    KEEL_TCP_AT("SEND");        \
    (h).send(__VA_ARGS__);      \
  } while (0)
/// The stack sent exactly one segment, matching the Expect.
#define RECV(h, ...)            \
  do {                          \
    KEEL_TCP_AT("RECV");        \
    (h).recv(__VA_ARGS__);      \
  } while (0)
/// Like RECV, keeping the segment: auto s = RECV_SEG(h, Expect{...});
#define RECV_SEG(h, ...) [&] { KEEL_TCP_AT("RECV"); return (h).recv(__VA_ARGS__); }()
#define RECV_NOTHING(h)         \
  do {                          \
    KEEL_TCP_AT("RECV_NOTHING"); \
    (h).recv_nothing();         \
  } while (0)
