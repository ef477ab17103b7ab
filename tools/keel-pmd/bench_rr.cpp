// SPDX-License-Identifier: BSD-3-Clause
// `bench rr`: every connection keeps exactly one SIZE-byte request outstanding
// against an echo service; a transaction ends with the last byte of its echo.
// Also the idle connections of `bench idle`, which only stay open.
#include <rte_mbuf.h>

#include "bench_client.hpp"

namespace keel::pmd {

namespace {

class RrConn final : public BenchConn {
 public:
  RrConn(BenchClient& o, const std::vector<uint8_t>& req) : BenchConn(o), req_(req) {}

 private:
  void begin() override { next(); }
  void clear() override { sent_ = got_ = 0; }
  void on_readable(tcp::Tcb& c) override {
    // Zero copy: only the byte count matters here (echotest checks content).
    while (rte_mbuf* m = owner_.tcp().recv(c)) {
      got_ += m->pkt_len;
      rte_pktmbuf_free(m);
    }
    if (got_ < req_.size() || !running()) return;
    if (got_ > req_.size()) return owner_.tcp().abort(c);  // not an echo of one request
    owner_.done_op(t0_ns);
    bench_add(owner_.bytes, req_.size());
    next();
  }
  void on_writable(tcp::Tcb&) override { pump(); }
  // The echo service went away in the middle of the run: an error.
  void on_peer_closed(tcp::Tcb& c) override { owner_.tcp().abort(c); }

  void next() {
    sent_ = got_ = 0;
    if (!running()) return;
    t0_ns = engine::now_ns();
    pump();
  }
  void pump() {
    if (tcb != nullptr) send_request(owner_.tcp(), *tcb, req_.data(), req_.size(), sent_);
  }

  const std::vector<uint8_t>& req_;
  size_t sent_ = 0, got_ = 0;
};

class RrClient final : public BenchClient {
 public:
  RrClient(tcp::TcpStack& t, const BenchArgs& a) : BenchClient(t, a), req_(a.size) {
    for (size_t i = 0; i < req_.size(); ++i) req_[i] = uint8_t(i % 251);
  }

 private:
  std::unique_ptr<BenchConn> make_conn() override { return std::make_unique<RrConn>(*this, req_); }
  std::vector<uint8_t> req_;
};

class IdleConn final : public BenchConn {
 public:
  using BenchConn::BenchConn;

 private:
  void on_readable(tcp::Tcb& c) override {
    while (rte_mbuf* m = owner_.tcp().recv(c)) rte_pktmbuf_free(m);
  }
  void on_peer_closed(tcp::Tcb& c) override { owner_.tcp().abort(c); }
};

class IdleClient final : public BenchClient {
 public:
  using BenchClient::BenchClient;

 private:
  std::unique_ptr<BenchConn> make_conn() override { return std::make_unique<IdleConn>(*this); }
};

}  // namespace

std::shared_ptr<BenchClient> make_rr_client(tcp::TcpStack& tcp, const BenchArgs& a) {
  return std::make_shared<RrClient>(tcp, a);
}

std::shared_ptr<BenchClient> make_idle_client(tcp::TcpStack& tcp, const BenchArgs& a) {
  return std::make_shared<IdleClient>(tcp, a);
}

}  // namespace keel::pmd
