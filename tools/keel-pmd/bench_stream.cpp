// SPDX-License-Identifier: BSD-3-Clause
// `bench stream`: CONNS connections send as fast as the windows allow into a
// discard service until stopped. The figure is acknowledged bytes, read from
// the TCBs themselves (Tcb::bytes_acked) at the window's edges.
#include <rte_mbuf.h>

#include <array>

#include "bench_client.hpp"

namespace keel::pmd {

namespace {

constexpr size_t chunk = 64 * 1024;

class StreamConn final : public BenchConn {
 public:
  StreamConn(BenchClient& o, const std::array<uint8_t, chunk>& data, uint64_t& gone_bytes)
      : BenchConn(o), data_(data), gone_bytes_(gone_bytes) {}

 private:
  void begin() override { pump(); }
  void on_writable(tcp::Tcb&) override { pump(); }
  void on_readable(tcp::Tcb& c) override {
    while (rte_mbuf* m = owner_.tcp().recv(c)) rte_pktmbuf_free(m);
  }
  void on_peer_closed(tcp::Tcb& c) override { owner_.tcp().abort(c); }
  void ended(tcp::Tcb& c) override { gone_bytes_ += c.bytes_acked; }

  // Fills the send buffer; the stack calls on_writable as ACKs free it.
  void pump() {
    while (running()) {
      auto r = owner_.tcp().send_copy(*tcb, data_.data(), data_.size());
      if (!r && r.error() != Errc::would_block) return owner_.tcp().abort(*tcb);
      if (!r || *r < data_.size()) return owner_.tcp().want_writable(*tcb);
    }
  }

  const std::array<uint8_t, chunk>& data_;
  uint64_t& gone_bytes_;
};

class StreamClient final : public BenchClient {
 public:
  StreamClient(tcp::TcpStack& t, const BenchArgs& a) : BenchClient(t, a) {
    for (size_t i = 0; i < data_.size(); ++i) data_[i] = uint8_t(i % 251);
  }
  uint64_t bytes_now() override {
    uint64_t b = gone_bytes_;
    for (BenchConn* c : live_)
      if (c->tcb != nullptr) b += c->tcb->bytes_acked;
    return b;
  }

 private:
  std::unique_ptr<BenchConn> make_conn() override {
    return std::make_unique<StreamConn>(*this, data_, gone_bytes_);
  }
  std::array<uint8_t, chunk> data_{};
  uint64_t gone_bytes_ = 0;  // acknowledged on connections that ended
};

}  // namespace

std::shared_ptr<BenchClient> make_stream_client(tcp::TcpStack& tcp, const BenchArgs& a) {
  return std::make_shared<StreamClient>(tcp, a);
}

}  // namespace keel::pmd
