// SPDX-License-Identifier: BSD-3-Clause
#pragma once
// The lcore side of a `bench` command: a client that owns its connections on
// one instance (every member below except the atomics is touched only on that
// instance's lcore) and the pieces every bench shares: pooled per-connection
// handlers, opening many connections without a SYN burst, and stop().
// bench_run.cpp drives one from the CLI thread; bench_rr.cpp, bench_crr.cpp,
// bench_stream.cpp, bench_http.cpp and the idle connections derive from it.

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "bench_spec.hpp"
#include "engine/timer_wheel.hpp"
#include "latency_histogram.hpp"
#include "tcp/tcp_stack.hpp"

namespace keel::pmd {

class BenchClient;

/// Sends req from `sent` on (copying) until all of it is queued or the send
/// buffer is full (then asks for on_writable); a hard error aborts the
/// connection. The request pump every bench connection shares.
inline void send_request(tcp::TcpStack& tcp, tcp::Tcb& c, const void* req, size_t len, size_t& sent) {
  while (sent < len) {
    auto r = tcp.send_copy(c, static_cast<const uint8_t*>(req) + sent, len - sent);
    if (!r) {
      if (r.error() == Errc::would_block) tcp.want_writable(c);
      else tcp.abort(c);
      return;
    }
    sent += *r;
  }
}

/// Adds to a counter with one writer (the lcore) and readers anywhere: a
/// relaxed load+store, no locked instruction on the data path (as
/// engine::Counters does).
inline void bench_add(std::atomic<uint64_t>& a, uint64_t n = 1) {
  a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

/// One connection of a bench; pooled by its client (no allocation per
/// connection once the pool has grown).
class BenchConn : public tcp::ConnHandler {
 public:
  explicit BenchConn(BenchClient& owner) : owner_(owner) {}
  void on_connected(tcp::Tcb& c) final;
  void on_closed(tcp::Tcb& c, Errc reason) final;

  tcp::Tcb* tcb = nullptr;
  uint64_t t0_ns = 0;  ///< when the current transaction (or connect) started
  /// Its successor is already open (crr after its close): ending is not a loss.
  bool replaced = false;

 protected:
  /// Start the traffic: called once the connection is established and the
  /// client's set-up is over (at once for connections opened after it).
  virtual void begin() {}
  /// Back to a fresh connection's state, before reuse.
  virtual void clear() {}
  /// The connection is about to be freed (its Tcb is still readable).
  virtual void ended(tcp::Tcb&) {}
  /// Traffic may go on (false once stop() began: only drain, send nothing).
  bool running() const;
  BenchClient& owner_;

 private:
  friend class BenchClient;
  size_t live_index_ = 0;
  bool established_ = false, begun_ = false;
};

class BenchClient {
 public:
  BenchClient(tcp::TcpStack& tcp, const BenchArgs& a);
  virtual ~BenchClient();
  BenchClient(const BenchClient&) = delete;
  BenchClient& operator=(const BenchClient&) = delete;

  /// Starts opening the connections (lcore).
  virtual void start();
  /// Aborts every connection (RST: nothing lingers in TIME-WAIT or FIN-WAIT
  /// on either side), at most abort_batch a tick so that the RSTs do not
  /// overflow the rings (a lost RST would leave the server's side open
  /// forever). stopped() says when it is done; from then on no callback or
  /// timer refers to this client. Aborts made here are not errors (lcore).
  virtual void stop();
  bool stopped() const { return stopped_.load(std::memory_order_acquire); }
  /// Set-up is over: every connection opened or given up (any thread).
  bool ready() const { return ready_.load(std::memory_order_relaxed); }
  /// Bytes moved so far (the live line's Gbit/s; stream: acknowledged) (lcore).
  virtual uint64_t bytes_now() { return bytes.load(std::memory_order_relaxed); }

  // Read by the CLI thread at any time.
  std::atomic<uint64_t> ops{0};     ///< transactions / connections / requests completed
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> errors{0};  ///< connections reset, refused, timed out, failed to open
  std::atomic<uint64_t> non2xx{0};
  std::atomic<uint32_t> established{0};  ///< connections established now

  tools::LatencyHistogram latency;  ///< lcore only

  tcp::TcpStack& tcp() { return tcp_; }
  const BenchArgs& args() const { return args_; }
  /// Records one finished operation that started at `t0_ns` (lcore).
  void done_op(uint64_t t0_ns);
  /// Opens one more connection; nullptr (counted as an error) if connect failed.
  BenchConn* open();
  bool stopping() const { return stopping_; }

  /// Handshakes in flight at most while connections are being opened: a burst
  /// of thousands of SYNs would overflow the peer's SYN queue and the rings.
  static constexpr unsigned max_syn_in_flight = 64;
  /// Connections started (begin) per 1 ms tick: a burst of 10,000 segments
  /// would overflow a port's rings (memif's default ring holds 1,024).
  static constexpr unsigned begin_batch = 256;
  /// Connections aborted per 1 ms tick: fewer, since a RST lost to a full
  /// ring is never sent again (10,000 connections take 160 ms).
  static constexpr unsigned abort_batch = 64;

 protected:
  virtual std::unique_ptr<BenchConn> make_conn() = 0;
  /// A connection ended while the run goes on and has no successor yet
  /// (error, peer close); crr and http open a replacement here.
  virtual void lost() {}
  /// Set-up is over (ramp() says so itself), then begin() the connections.
  void set_ready();
  /// Opens connections up to args().conns, at most max_syn_in_flight at once
  /// (one until the first is up: its SYN waits for ARP, which holds few frames).
  void ramp();
  /// Calls tick() every millisecond until stop() (crr's retries).
  void want_ticks();
  virtual void tick() {}

  tcp::TcpStack& tcp_;
  BenchArgs args_;
  std::vector<BenchConn*> live_;  ///< connections with our handler (connecting, open, closing)

 private:
  friend class BenchConn;
  void conn_up(BenchConn& c);
  void conn_gone(BenchConn& c, Errc reason);
  void arm();
  static void tick_fired(engine::Timer& t, void* ctx, uint64_t now_ns);
  void begin_some();
  void abort_some();

  std::vector<std::unique_ptr<BenchConn>> all_;
  std::vector<BenchConn*> free_;
  unsigned opened_ = 0, handshakes_ = 0, ever_up_ = 0;
  size_t begin_pos_ = 0;  // next index of all_ to begin() (set-up over, not all begun)
  std::atomic<bool> ready_{false}, stopped_{false};
  bool ramping_ = false, stopping_ = false, beginning_ = false, ticks_ = false;
  engine::Timer tick_;
};

/// The clients, by kind (bench_rr.cpp, ...). For idle: connections that only
/// stay open.
std::shared_ptr<BenchClient> make_rr_client(tcp::TcpStack& tcp, const BenchArgs& a);
std::shared_ptr<BenchClient> make_crr_client(tcp::TcpStack& tcp, const BenchArgs& a);
std::shared_ptr<BenchClient> make_stream_client(tcp::TcpStack& tcp, const BenchArgs& a);
std::shared_ptr<BenchClient> make_http_client(tcp::TcpStack& tcp, const BenchArgs& a);
std::shared_ptr<BenchClient> make_idle_client(tcp::TcpStack& tcp, const BenchArgs& a);

}  // namespace keel::pmd
