// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// The TCP control block: one connection's state, grouped like RFC 9293's
/// SND and RCV variables. Owned by one TcpStack (one instance, one lcore).

#include <cstdint>

#include <keel/result.hpp>

#include "engine/timer_wheel.hpp"
#include "net/addresses.hpp"
#include "tcp/cc/cc.hpp"
#include "tcp/rack.hpp"
#include "tcp/reassembly_queue.hpp"
#include "tcp/recv_queue.hpp"
#include "tcp/sack_scoreboard.hpp"
#include "tcp/send_queue.hpp"

namespace keel::tcp {

class TcpStack;
struct Tcb;

/// RFC 9293 states, in RFC order: `state >= established` means synchronised.
enum class TcpState : uint8_t {
  closed,
  listen,
  syn_sent,
  syn_received,
  established,
  fin_wait_1,
  fin_wait_2,
  close_wait,
  closing,
  last_ack,
  time_wait,
};

const char* to_string(TcpState s);

/// The 4-tuple, as the connection table's key (host byte order, no padding).
struct ConnKey {
  uint32_t local_ip = 0;
  uint32_t remote_ip = 0;
  uint16_t local_port = 0;
  uint16_t remote_port = 0;
  bool operator==(const ConnKey&) const = default;
};
static_assert(sizeof(ConnKey) == 12);

/// What the application is told about a connection. Called on the instance's
/// lcore, from inside the stack; a handler may call the TcpStack API (send,
/// recv, close) on the same connection, but must not destroy other state the
/// stack is iterating.
class ConnHandler {
 public:
  virtual ~ConnHandler() = default;
  /// Active open completed (SYN-SENT -> ESTABLISHED).
  virtual void on_connected(Tcb& c) { (void)c; }
  /// In-order data is waiting (TcpStack::recv / recv_copy).
  virtual void on_readable(Tcb& c) = 0;
  /// Send-buffer space opened up after a would_block.
  virtual void on_writable(Tcb& c) { (void)c; }
  /// The peer sent FIN: no more data will come (data before it was delivered).
  virtual void on_peer_closed(Tcb& c) { (void)c; }
  /// The connection is gone (closed, reset, timed out, refused). `reason` is
  /// Errc::ok for an orderly close. The Tcb is freed right after this returns.
  virtual void on_closed(Tcb& c, Errc reason) = 0;
};

/// A listener's application side.
class ListenHandler {
 public:
  virtual ~ListenHandler() = default;
  /// A connection completed the handshake; return its handler (nullptr: reset it).
  virtual ConnHandler* on_accept(Tcb& c) = 0;
};

struct Listener;

struct Tcb {
  // Fields are grouped by size, largest alignment first within each group of
  // meaning, so that the TCB has no padding to speak of: it is preallocated
  // max_connections times (see docs/ARCHITECTURE.md, "TCP's memory"). The run
  // log and the SACK ranges a connection needs during loss recovery are lent
  // from the stack's pools (Rack, SackScoreboard), not kept here.

  // ----- 8-byte fields -----
  // RTT / RTO (RFC 6298)
  uint64_t srtt_ns = 0, rttvar_ns = 0, rto_ns = 0;
  uint64_t rtt_start_ns = 0;
  uint64_t ts_recent_ns = 0;    ///< when ts_recent was set (PAWS 24-day rule)
  uint64_t last_oow_ack_ns = 0; ///< when an ACK last answered a bare unacceptable segment
  uint64_t last_recv_ns = 0;    ///< for keepalive
  uint64_t last_send_ns = 0;    ///< for after-idle restart
  uint64_t persist_backoff_ns = 0;
  // Statistics (show conns)
  uint64_t bytes_acked = 0, bytes_received = 0;

  Rack rack;                    ///< SACK: what was sent when; RACK loss detection (RFC 8985)
  PooledSackScoreboard sack;    ///< SACKed ranges (lent from the stack's pool while there are any)
  cc::CcVars ccv;
  const cc::Algorithm* cc = nullptr;

  // Buffers
  SendQueue sndq;               ///< bytes from snd.una (SYN/FIN are not in it)
  RecvQueue rcvq;
  ReassemblyQueue* ooo = nullptr;  ///< out-of-order segments (from the stack's pool)

  // Timers (RFC 9293 3.8): retransmission/persist share one, as in BSD.
  engine::Timer rexmt_timer;
  engine::Timer delack_timer;
  engine::Timer keepalive_timer;  ///< also 2MSL in TIME-WAIT and the SYN-RECEIVED timeout
  engine::Timer reo_timer;        ///< RACK's reordering timer (RFC 8985 6.2 step 5)

  // Ownership
  TcpStack* stack = nullptr;
  Listener* listener = nullptr;  ///< set while in the listener's SYN queue
  ConnHandler* handler = nullptr;
  void* user = nullptr;          ///< for the application

  // ----- 4-byte fields -----
  ConnKey key;
  uint32_t index = 0;            ///< slot in the stack's TCB table

  // RFC 9293 3.3.1 send sequence variables
  struct {
    uint32_t una = 0, nxt = 0, wnd = 0, wl1 = 0, wl2 = 0, up = 0;
    uint32_t max = 0;        ///< highest sequence sent + 1 (snd.nxt before a go-back)
    uint32_t max_wnd = 0;    ///< largest window the peer offered (SWS, RFC 5961 ACK check)
    uint8_t wscale = 0;      ///< shift applied to the peer's windows
  } snd;
  uint32_t iss = 0;
  // RFC 9293 3.3.1 receive sequence variables
  struct {
    uint32_t nxt = 0, wnd = 0, up = 0;
    uint32_t adv = 0;        ///< right edge advertised so far (never moves left)
    uint8_t wscale = 0;      ///< shift we apply to our advertised windows
  } rcv;
  uint32_t irs = 0;

  uint32_t ts_recent = 0;       ///< RFC 7323 TS.Recent
  uint32_t last_ack_sent = 0;   ///< RFC 7323 Last.ACK.sent
  uint32_t rtt_seq = 0;         ///< timed segment (Karn: only if not retransmitted)

  // Loss recovery (RFC 6675 / RFC 6582)
  uint32_t recover = 0;         ///< snd.nxt when recovery began
  uint32_t high_rxt = 0;        ///< one past the last octet retransmitted in this recovery (RFC 6675 HighRxt, exclusive)
  uint32_t rescue_rxt = 0;

  uint32_t snd_buf = 0;         ///< limit on sndq bytes
  uint32_t rcv_buf = 0;         ///< limit on rcvq + reassembly + app_held bytes
  /// Received bytes the application took zero-copy and still holds: they
  /// keep the window closed until released (recv_credit).
  uint32_t app_held = 0;
  uint32_t fin_seq = 0;         ///< sequence number of our FIN (valid once fin_sent)
  /// The last soft ICMP error (RFC 1122 4.2.3.9): reported instead of
  /// timed_out if the connection gives up; cleared when an ACK advances.
  Errc soft_error = Errc::ok;
  uint32_t retransmits = 0;
  uint32_t total_retransmits = 0;

  // ----- 2- and 1-byte fields -----
  // Negotiated options
  uint16_t mss = 536;           ///< effective send MSS (payload bytes per segment)
  uint16_t peer_mss = 536;
  TcpState state = TcpState::closed;
  bool ts_ok = false, sack_ok = false, ws_ok = false;

  bool rtt_timing = false;
  uint8_t backoff = 0;          ///< consecutive RTO expirations
  bool in_recovery = false;
  uint8_t dupacks = 0;
  bool rto_recovery = false;    ///< SACK: after an RTO, resending what RACK marked lost until snd.una >= recover

  // Flags
  bool fin_queued = false;      ///< the application shut down its sending side
  bool fin_sent = false;
  bool persisting = false;      ///< rexmt_timer is the persist timer (zero window)
  bool tlp_pending = false;     ///< rexmt_timer is a tail loss probe (RFC 8985 7)
  uint8_t tlp_sent = 0;         ///< probes sent since the receiver last had news (see arm_rexmt_or_probe)
  bool fin_received = false;
  bool nodelay = false;
  bool ack_now = false;         ///< send an ACK at the next output
  bool want_writable = false;   ///< tell the application when space opens
  bool app_closed = false;      ///< close() called: no more callbacks but on_closed
  bool peer_close_told = false;
  uint8_t delack_segs = 0;      ///< full segments received since the last ACK
  uint8_t keepalive_probes = 0;
  /// Per-connection keepalive timing (TCP_KEEPIDLE/INTVL/CNT); 0: the stack's.
  uint64_t keepalive_idle_ns = 0, keepalive_interval_ns = 0;
  uint8_t keepalive_count = 0;
  uint8_t syn_retries = 0;
  bool keepalive = false;
  bool cookie = false;          ///< built from a SYN cookie (no SYN queue slot)

  bool synchronized() const { return state >= TcpState::established; }
  /// Why a connection that gives up on its peer ends (as BSD's so_softerror).
  Errc timeout_error() const { return soft_error != Errc::ok ? soft_error : Errc::timed_out; }
  /// Bytes sent and not yet acknowledged (sequence space, SYN/FIN included).
  uint32_t flight() const { return snd.nxt - snd.una; }
};

}  // namespace keel::tcp
