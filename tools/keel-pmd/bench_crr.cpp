// SPDX-License-Identifier: BSD-3-Clause
// `bench crr`: per slot, connect, one SIZE-byte request and its echo, close
// (the client first, so TIME-WAIT is on the client), and at once the next
// connection. Latency runs from connect() to the last byte of the echo.
//
// TIME-WAIT: each closed connection holds its 4-tuple (and a TCB slot) for
// 2*MSL. With TcpConfig's MSL of 30 s the 16,384 TCBs would all be in
// TIME-WAIT beyond ~270 connections/s, and each new connection would end the
// oldest TIME-WAIT early (tcp_timewait_recycled; before the stack did that, a
// full table refused the connect: the errors of a run with a 200 ms TIME-WAIT
// at 75,000 connections/s). So for the run the client instance's MSL is
// lowered to crr_msl_ns and restored at the end: TIME-WAIT 20 ms, far longer
// than a segment lives on a link with microsecond delays (what Linux's
// tcp_tw_reuse achieves for the kernel baseline), and served in full up to
// ~800,000 connections/s; one core did 200,000 here.
#include <rte_mbuf.h>

#include <algorithm>

#include "bench_client.hpp"

namespace keel::pmd {

namespace {

class CrrClient;

class CrrConn final : public BenchConn {
 public:
  CrrConn(CrrClient& o, const std::vector<uint8_t>& req);

 private:
  void begin() override { pump(); }
  void clear() override { sent_ = got_ = 0; }
  void on_readable(tcp::Tcb& c) override;
  void on_writable(tcp::Tcb&) override { pump(); }
  void on_peer_closed(tcp::Tcb& c) override {
    if (!replaced) owner_.tcp().abort(c);  // closed before the echo came: an error
  }
  void pump() {
    if (tcb != nullptr) send_request(owner_.tcp(), *tcb, req_.data(), req_.size(), sent_);
  }

  CrrClient& crr_;
  const std::vector<uint8_t>& req_;
  size_t sent_ = 0, got_ = 0;
};

class CrrClient final : public BenchClient {
 public:
  static constexpr uint64_t crr_msl_ns = 10'000'000;

  CrrClient(tcp::TcpStack& t, const BenchArgs& a) : BenchClient(t, a), req_(a.size) {
    for (size_t i = 0; i < req_.size(); ++i) req_[i] = uint8_t(i % 251);
  }

  void start() override {
    saved_msl_ns_ = tcp_.config().msl_ns;
    tcp_.config().msl_ns = std::min(saved_msl_ns_, crr_msl_ns);
    for (unsigned i = 0; i < args_.conns; ++i) next();
    want_ticks();
    set_ready();  // nothing to set up: opening connections is what crr measures
  }
  void stop() override {
    BenchClient::stop();
    tcp_.config().msl_ns = saved_msl_ns_;
  }
  /// Opens the slot's next connection; one that cannot open now (no port,
  /// table full: counted as errors) is retried on the next tick.
  void next() {
    if (!stopping() && open() == nullptr) ++waiting_;
  }

 private:
  std::unique_ptr<BenchConn> make_conn() override { return std::make_unique<CrrConn>(*this, req_); }
  void lost() override { next(); }
  void tick() override {
    for (unsigned n = std::exchange(waiting_, 0); n > 0; --n) next();
  }

  std::vector<uint8_t> req_;
  uint64_t saved_msl_ns_ = 0;
  unsigned waiting_ = 0;
};

CrrConn::CrrConn(CrrClient& o, const std::vector<uint8_t>& req) : BenchConn(o), crr_(o), req_(req) {}

void CrrConn::on_readable(tcp::Tcb& c) {
  while (rte_mbuf* m = owner_.tcp().recv(c)) {
    got_ += m->pkt_len;
    rte_pktmbuf_free(m);
  }
  if (replaced || got_ < req_.size() || !running()) return;
  if (got_ > req_.size()) return owner_.tcp().abort(c);
  owner_.done_op(t0_ns);
  bench_add(owner_.bytes, req_.size());
  replaced = true;
  owner_.tcp().close(c);  // FIN first: the receive queue is empty, so no RST
  crr_.next();
}

}  // namespace

std::shared_ptr<BenchClient> make_crr_client(tcp::TcpStack& tcp, const BenchArgs& a) {
  return std::make_shared<CrrClient>(tcp, a);
}

}  // namespace keel::pmd
