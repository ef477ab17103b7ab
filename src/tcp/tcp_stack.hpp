// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// TCP for one instance: the connection table, listeners, and the API the
/// application layer calls (listen, connect, send, recv, shutdown, close,
/// abort). Registered with the Instance as the handler of protocol 6. Every
/// call and callback happens on the instance's lcore.
///
/// The file split follows BSD: tcp_input.cpp (segment arrival, RFC 9293
/// 3.10.7), tcp_output.cpp (what to send), tcp_timer.cpp (RTO, persist, delayed
/// ACK, keepalive, 2MSL), tcp_subr.cpp (table, ISN, RST without a TCB),
/// syncookie.cpp, tcp_usrreq.cpp (this API).

#include <cstdint>
#include <memory>
#include <vector>

#include <keel/result.hpp>

#include "engine/instance.hpp"
#include "tcp/tcb.hpp"
#include "tcp/tcp_header.hpp"

struct rte_hash;
struct rte_mbuf;

namespace keel::tcp {

struct TcpConfig {
  uint32_t max_connections = 16384;   ///< TCBs per instance (TIME-WAIT included)
  uint32_t snd_buf = 1 << 20;         ///< send buffer per connection, bytes
  uint32_t rcv_buf = 1 << 20;         ///< receive buffer per connection, bytes
  uint32_t ooo_max_segments = 768;    ///< reassembly queue bound per connection (~ rcv_buf / MSS)
  uint32_t ooo_queues = 1024;         ///< connections that may hold out-of-order data at once
  /// RACK run logs (Rack::max_runs runs, 1 KiB each) lent to connections with
  /// more than Rack::inline_runs runs in flight; beyond it, tcp_rack_log_exhausted.
  uint32_t rack_logs = 4096;
  /// SACK scoreboards (SackScoreboard, 264 B each) lent to connections whose
  /// peer has SACKed data not yet cumulatively ACKed; beyond it, tcp_sack_board_exhausted.
  uint32_t sack_boards = 4096;
  uint64_t min_rto_ns = 200'000'000;  ///< RFC 6298 says 1 s; Linux uses 200 ms
  uint64_t max_rto_ns = 60'000'000'000;
  uint64_t initial_rto_ns = 1'000'000'000;
  uint64_t delack_ns = 40'000'000;
  uint64_t msl_ns = 30'000'000'000;   ///< TIME-WAIT lasts 2*MSL
  uint64_t keepalive_idle_ns = 7200'000'000'000;
  uint64_t keepalive_interval_ns = 75'000'000'000;
  uint8_t keepalive_count = 9;
  uint8_t syn_retries = 6;
  uint8_t max_retransmits = 15;       ///< RTOs in a row before the connection is dropped
  uint64_t syn_received_timeout_ns = 75'000'000'000;
  bool timestamps = true, sack = true, window_scaling = true;
  bool nodelay = false;               ///< default for new connections
  const cc::Algorithm* cc = nullptr;  ///< nullptr: CUBIC
  uint32_t challenge_ack_limit = 1000;  ///< RFC 5961 challenge ACKs per second
  /// Least time between the ACKs a connection sends for bare out-of-window or
  /// PAWS-failing segments (COMPAT(linux): tcp_invalid_ratelimit, 500 ms): two
  /// stacks that disagree on the window would otherwise ping-pong ACKs forever.
  uint64_t oow_ack_interval_ns = 500'000'000;
};

/// A listening socket: a port (and address, or any) plus its SYN queue bound.
struct Listener {
  net::Ipv4Addr addr;       ///< any(): every local address
  uint16_t port = 0;
  uint32_t backlog = 128;   ///< SYN-RECEIVED connections held; beyond it, SYN cookies
  uint32_t syn_queued = 0;
  ListenHandler* handler = nullptr;
  uint64_t accepted = 0, cookies_sent = 0, overflows = 0;
};

/// One row of `show conns` (like ss -tin).
struct ConnInfo {
  ConnKey key;
  TcpState state;
  uint32_t cwnd, ssthresh, mss;
  uint64_t srtt_us, rttvar_us, rto_us;
  uint32_t retransmits, total_retransmits;
  uint32_t sacked_bytes;
  uint32_t snd_queue, rcv_queue, unacked;
  uint32_t snd_wnd, rcv_wnd;
  const char* cc;
  uint64_t bytes_acked, bytes_received;
};

class TcpStack final : public engine::L4Handler {
 public:
  TcpStack(engine::Instance& inst, const TcpConfig& cfg);
  ~TcpStack() override;
  TcpStack(const TcpStack&) = delete;
  TcpStack& operator=(const TcpStack&) = delete;

  // ----- application API (tcp_usrreq.cpp) -----
  /// Listens on addr:port (addr any(): all). The Listener lives until unlisten().
  Result<Listener*> listen(net::Ipv4Addr addr, uint16_t port, uint32_t backlog, ListenHandler* h);
  void unlisten(Listener* l);
  /// Active open. `local_port` 0 picks an ephemeral port; `local_addr` any()
  /// takes the route's source (otherwise it must be ours: invalid_argument).
  /// `timeout_ns` > 0 ends the attempt with timed_out after that long. The
  /// handler gets on_connected or on_closed(refused / timed_out).
  Result<Tcb*> connect(net::Ipv4Addr dst, uint16_t port, ConnHandler* h, uint16_t local_port = 0,
                       net::Ipv4Addr local_addr = {}, uint64_t timeout_ns = 0);
  /// Queues `m` (a packet, possibly chained) for sending; takes ownership on
  /// success. would_block (m not taken) if it does not fit the send buffer's
  /// free space (a packet larger than the whole buffer goes when the queue is
  /// empty); not_connected if the connection cannot send any more.
  Result<void> send(Tcb& c, rte_mbuf* m);
  /// Copies up to `len` bytes into new mbufs and queues them; returns bytes taken
  /// (0 with would_block when there is no room).
  Result<size_t> send_copy(Tcb& c, const void* data, size_t len);
  /// Bytes send() would accept now.
  uint32_t send_space(const Tcb& c) const;
  /// All in-order data received so far (zero copy; caller frees), or nullptr.
  rte_mbuf* recv(Tcb& c);
  /// recv() for an application that holds the data: the bytes stay counted
  /// in the receive window (Tcb::app_held) until recv_credit() returns them.
  rte_mbuf* recv_held(Tcb& c);
  /// The application released `bytes` it took with recv_held(): the window
  /// reopens by that much (and is advertised if it grew enough).
  void recv_credit(Tcb& c, uint32_t bytes);
  /// Copies up to `cap` bytes out of the receive queue.
  size_t recv_copy(Tcb& c, void* dst, size_t cap);
  /// Sends FIN after the queued data (half-close).
  Result<void> shutdown(Tcb& c);
  /// Orderly close: shutdown + the handler gets only on_closed from now on.
  void close(Tcb& c);
  /// Abortive close: RST, everything dropped, on_closed(not_connected) at once.
  void abort(Tcb& c);
  void set_nodelay(Tcb& c, bool on);
  void set_cc(Tcb& c, const cc::Algorithm& a);
  void set_keepalive(Tcb& c, bool on);
  /// The connection's keepalive timing, falling back to the stack's for 0 fields.
  uint64_t keepalive_idle(const Tcb& c) const { return c.keepalive_idle_ns ? c.keepalive_idle_ns : cfg_.keepalive_idle_ns; }
  uint64_t keepalive_interval(const Tcb& c) const {
    return c.keepalive_interval_ns ? c.keepalive_interval_ns : cfg_.keepalive_interval_ns;
  }
  uint8_t keepalive_count(const Tcb& c) const { return c.keepalive_count ? c.keepalive_count : cfg_.keepalive_count; }
  /// Makes the stack call on_writable when send space opens.
  void want_writable(Tcb& c) { c.want_writable = true; }

  // ----- handles: (slot, incarnation) pairs that outlive the TCB safely -----
  uint32_t slot(const Tcb& c) const { return slot_of(c); }
  uint32_t generation(const Tcb& c) const { return incarnation(c); }
  /// The TCB in `slot` if it is still incarnation `gen`, else nullptr.
  Tcb* resolve(uint32_t slot, uint32_t gen) {
    return slot < cfg_.max_connections && slot_gen_[slot] == gen && (gen & 1) ? tcb_at(slot) : nullptr;
  }

  // ----- inspection -----
  size_t connections() const { return used_; }
  template <class F>
  void for_each(F&& f) {
    for (uint32_t i = 0; i < cfg_.max_connections; ++i)
      if (slot_used(i)) f(*tcb_at(i));
  }
  ConnInfo info(const Tcb& c) const;
  const RackLogPool& rack_pool() const { return rack_pool_; }
  const SackScoreboardPool& sack_pool() const { return sack_pool_; }
  TcpConfig& config() { return cfg_; }
  engine::Instance& instance() { return inst_; }
  /// The clock the application calls above (connect, send, recv, close, ...)
  /// read: engine::now_ns() unless set. Input and timers use the now_ns of the
  /// poll that runs them, so a test that steps time explicitly sets a clock
  /// returning its own time, and every timer is then armed on that time line.
  void set_clock(uint64_t (*clock)(void* ctx), void* ctx) {
    clock_ = clock;
    clock_ctx_ = ctx;
  }
  uint64_t clock_now() const { return clock_ ? clock_(clock_ctx_) : engine::now_ns(); }

  // ----- L4Handler -----
  void on_datagram(engine::Instance& inst, rte_mbuf* m, const engine::Ipv4Meta& ip,
                   uint64_t now_ns) override;
  void on_icmp_error(engine::Instance& inst, const engine::IcmpError& err,
                     uint64_t now_ns) override;

  // ----- internals shared by the tcp_*.cpp files -----
  Tcb* lookup(const ConnKey& k);
  Tcb* alloc_tcb(const ConnKey& k);
  void free_tcb(Tcb& c);
  /// Ends the connection: cancels timers, tells the application, frees it.
  void drop(Tcb& c, Errc reason);
  /// Sends what the windows allow: segments RACK marked lost, then new data.
  /// `probe`: a tail loss probe, one new segment whatever cwnd and Nagle say.
  void output(Tcb& c, uint64_t now_ns, bool probe = false);
  void send_segment(Tcb& c, uint32_t seq, uint32_t len, uint8_t flags, uint64_t now_ns);
  void send_ack(Tcb& c, uint64_t now_ns);
  void send_rst_for(const TcpSegment& seg, const engine::Ipv4Meta& ip, uint32_t payload_len,
                    uint64_t now_ns);
  void send_challenge_ack(Tcb& c, uint64_t now_ns);
  /// Arms the retransmission timer (RFC 6298).
  void arm_rexmt(Tcb& c, uint64_t now_ns);
  /// Arms a tail loss probe when it would fire before the RTO, else the RTO.
  void arm_rexmt_or_probe(Tcb& c, uint64_t now_ns);
  void send_tail_probe(Tcb& c, uint64_t now_ns);
  /// SACK loss detection after an ACK or the reordering timer: RACK (RFC 8985)
  /// once the connection has an RTT estimate, RFC 6675 IsLost before; enters
  /// fast recovery when something is lost and (re)arms the reordering timer.
  void sack_loss_detect(Tcb& c, uint64_t now_ns);
  /// RFC 6675 5 / RFC 8985: fast recovery, the first lost segment sent at once.
  void enter_sack_recovery(Tcb& c, uint64_t now_ns);
  /// Resends [b.left, b.right) of the sequence space (data, and FIN if inside).
  void send_lost(Tcb& c, SackBlock b, uint64_t now_ns);
  /// RACK needs an RTT estimate (its reordering window is a fraction of it).
  static bool rack_active(const Tcb& c) { return c.srtt_ns != 0 && c.rack.valid(); }
  void enter_time_wait(Tcb& c, uint64_t now_ns);
  uint32_t isn(const ConnKey& k, uint64_t now_ns) const;
  /// RFC 7323 TSval clock, 1 ms ticks. Monotonic even though callers pass
  /// times read at different points of a loop iteration: a TSval that went
  /// back one tick would make the peer's PAWS drop the segment.
  uint32_t ts_now(uint64_t now_ns) const {
    uint32_t t = uint32_t(now_ns / 1'000'000);
    if (int32_t(t - last_tsval_) > 0) last_tsval_ = t;
    return last_tsval_;
  }
  uint16_t mss_for(net::Ipv4Addr dst) const;
  uint32_t rcv_window(const Tcb& c) const;
  void update_rtt(Tcb& c, uint64_t rtt_ns);
  void set_state(Tcb& c, TcpState s);
  engine::Counters& counters() { return inst_.counters(); }
  const TcpConfig& cfg() const { return cfg_; }
  Listener* find_listener(net::Ipv4Addr addr, uint16_t port);
  // Timer callbacks (tcp_timer.cpp)
  static void rexmt_fired(engine::Timer& t, void* ctx, uint64_t now_ns);
  static void delack_fired(engine::Timer& t, void* ctx, uint64_t now_ns);
  static void keepalive_fired(engine::Timer& t, void* ctx, uint64_t now_ns);
  static void reo_fired(engine::Timer& t, void* ctx, uint64_t now_ns);
  // SYN cookies (syncookie.cpp)
  uint32_t make_cookie(const ConnKey& k, uint32_t peer_isn, uint16_t mss, uint64_t now_ns) const;
  /// Validates the cookie in an ACK; returns the MSS it encodes, or 0.
  uint16_t check_cookie(const ConnKey& k, uint32_t peer_isn, uint32_t cookie, uint64_t now_ns) const;

 private:
  void input(rte_mbuf* m, const engine::Ipv4Meta& ip, uint64_t now_ns);
  void input_listen(Listener& l, const TcpSegment& seg, rte_mbuf* m, const engine::Ipv4Meta& ip,
                    uint64_t now_ns);
  void input_syn_sent(Tcb& c, const TcpSegment& seg, rte_mbuf* m, uint64_t now_ns);
  void input_synchronized(Tcb& c, const TcpSegment& seg, rte_mbuf* m, uint32_t len,
                          uint64_t now_ns);
  /// `handshake_ack`: the ACK that completed a passive open (never a duplicate).
  bool process_ack(Tcb& c, const TcpSegment& seg, uint32_t len, bool handshake_ack,
                   uint64_t now_ns);
  void process_data(Tcb& c, const TcpSegment& seg, rte_mbuf* m, uint32_t len, uint64_t now_ns);
  void process_fin(Tcb& c, uint64_t now_ns);
  void apply_syn_options(Tcb& c, const TcpSegment& seg);
  void init_tcb(Tcb& c, uint64_t now_ns);
  void notify_readable(Tcb& c);
  ReassemblyQueue* borrow_ooo();
  void return_ooo(Tcb& c);
  Tcb* tcb_at(uint32_t i) { return reinterpret_cast<Tcb*>(storage_.get() + size_t(i) * slot_size_); }
  bool slot_used(uint32_t i) const { return slot_gen_[i] & 1; }
  // From the address alone: valid after the TCB was destroyed.
  uint32_t slot_of(const Tcb& c) const {
    return uint32_t((reinterpret_cast<const uint8_t*>(&c) - storage_.get()) / slot_size_);
  }
  /// The incarnation of a live TCB, to hand to alive() after a callback.
  uint32_t incarnation(const Tcb& c) const { return slot_gen_[slot_of(c)]; }
  /// Whether the TCB `c` was when incarnation() returned `gen` still exists.
  bool alive(const Tcb& c, uint32_t gen) const { return slot_gen_[slot_of(c)] == gen; }
  bool challenge_ack_allowed(uint64_t now_ns);
  /// Answers an unacceptable segment with an ACK: always when it carried data
  /// (the peer may have missed our ACK), else at most once per oow_ack_interval_ns.
  void ack_unacceptable(Tcb& c, uint32_t len, uint64_t now_ns);
  uint16_t pick_ephemeral_port(net::Ipv4Addr src, net::Ipv4Addr dst, uint16_t dport);
  /// Records that `c` (incarnation `gen`) entered TIME-WAIT (tw_order_).
  void note_time_wait(const Tcb& c, uint32_t gen);
  /// Frees the TCB that has been in TIME-WAIT longest, if there is one.
  bool recycle_time_wait();

  engine::Instance& inst_;
  TcpConfig cfg_;
  rte_hash* table_ = nullptr;
  size_t slot_size_;
  std::unique_ptr<uint8_t[]> storage_;        // max_connections TCB slots, constructed on use
  // Per slot, bumped when a TCB is made and when it is freed: odd while in use.
  // A callback may free the TCB it was given; alive() tells, without a lookup.
  std::vector<uint32_t> slot_gen_;
  std::vector<uint32_t> free_slots_;
  // TIME-WAIT TCBs in the order they entered it, as (slot << 32 | incarnation):
  // a ring of max_connections entries. An entry whose slot has moved on since
  // (2MSL over, reused by a SYN, recycled) is stale and skipped.
  std::vector<uint64_t> tw_order_;
  size_t tw_head_ = 0, tw_count_ = 0;
  // Out-of-order queues are lent to connections while they hold OOO data: loss
  // is the exception, so a pool smaller than the TCB table bounds the memory.
  std::vector<std::unique_ptr<ReassemblyQueue>> ooo_pool_;
  std::vector<ReassemblyQueue*> ooo_free_;
  // Likewise RACK logs (while a connection has more runs in flight than its
  // TCB holds inline) and SACK scoreboards (while its peer has SACKed data):
  // an idle connection holds none.
  RackLogPool rack_pool_;
  SackScoreboardPool sack_pool_;
  size_t used_ = 0;
  std::vector<std::unique_ptr<Listener>> listeners_;
  uint8_t secret_[16];                        // RFC 6528 / cookie key, random at start
  uint16_t next_ephemeral_ = 0;
  mutable uint32_t last_tsval_ = 0;
  uint32_t cookie_ts_bits_ = UINT32_MAX;      // low TS bits of the SYN-ACK being sent as a cookie
  uint64_t challenge_window_start_ns_ = 0;
  uint32_t challenge_acks_in_window_ = 0;
  uint64_t (*clock_)(void*) = nullptr;         // set_clock(); nullptr: engine::now_ns
  void* clock_ctx_ = nullptr;
};

}  // namespace keel::tcp
