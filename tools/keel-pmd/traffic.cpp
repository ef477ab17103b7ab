// SPDX-License-Identifier: BSD-3-Clause
#include "traffic.hpp"

#include <rte_mbuf.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

namespace keel::pmd {

namespace {

void forget(TrafficStats& st, tcp::Tcb& c) { std::erase(st.live, &c); }

// Streams a deterministic pattern; the handler deletes itself when closed.
class StreamClient final : public tcp::ConnHandler {
 public:
  StreamClient(tcp::TcpStack& tcp, uint64_t total, TrafficStats& st)
      : tcp_(tcp), total_(total), st_(st) {
    for (size_t i = 0; i < pattern_.size(); ++i) pattern_[i] = uint8_t(i % 251);
  }
  void on_connected(tcp::Tcb& c) override { pump(c); }
  void on_writable(tcp::Tcb& c) override { pump(c); }
  void on_readable(tcp::Tcb& c) override {
    if (rte_mbuf* m = tcp_.recv(c)) rte_pktmbuf_free(m);
  }
  void on_closed(tcp::Tcb& c, Errc reason) override {
    forget(st_, c);
    st_.bytes_sent += c.bytes_acked - reported_;
    --st_.conns_open;
    if (reason == Errc::ok && c.bytes_acked == total_) ++st_.conns_done;
    else ++st_.conns_failed;
    delete this;
  }

 private:
  void pump(tcp::Tcb& c) {
    st_.bytes_sent += c.bytes_acked - reported_;
    reported_ = c.bytes_acked;
    while (queued_ < total_) {
      // Chunks start on a multiple of 251 in the pattern buffer so byte i = i mod 251.
      size_t start = size_t(queued_ % 251);
      size_t len = size_t(std::min<uint64_t>(total_ - queued_, pattern_.size() - start));
      auto r = tcp_.send_copy(c, pattern_.data() + start, len);
      if (!r) {
        if (r.error() == Errc::would_block) return;  // on_writable brings us back
        tcp_.abort(c);
        return;
      }
      queued_ += *r;
      if (*r < len) {
        tcp_.want_writable(c);
        return;
      }
    }
    if (!closing_) {
      closing_ = true;
      tcp_.close(c);
    }
  }

  tcp::TcpStack& tcp_;
  uint64_t total_;
  TrafficStats& st_;
  uint64_t queued_ = 0, reported_ = 0;
  bool closing_ = false;
  std::array<uint8_t, 251 * 64> pattern_{};
};

class EchoClient final : public tcp::ConnHandler {
 public:
  EchoClient(tcp::TcpStack& tcp, uint32_t size, uint32_t rounds, uint64_t seed, TrafficStats& st)
      : tcp_(tcp), rounds_(rounds), st_(st), rng_(seed), msg_(size) {}
  void on_connected(tcp::Tcb& c) override { next_round(c); }
  void on_writable(tcp::Tcb& c) override { pump(c); }
  void on_readable(tcp::Tcb& c) override {
    std::array<uint8_t, 16384> buf;
    while (size_t n = tcp_.recv_copy(c, buf.data(), buf.size())) {
      // Bytes past the end of the message were never sent: all wrong.
      size_t in_msg = std::min(n, msg_.size() - got_);
      if (in_msg < n || std::memcmp(buf.data(), msg_.data() + got_, in_msg) != 0) {
        uint32_t bad = uint32_t(n - in_msg);
        for (size_t i = 0; i < in_msg; ++i) bad += buf[i] != msg_[got_ + i];
        st_.mismatches += bad;
        failed_ = true;
      }
      got_ += n;
      st_.bytes_echoed += n;
    }
    if (failed_) return tcp_.abort(c);
    if (got_ == msg_.size()) next_round(c);
  }
  void on_peer_closed(tcp::Tcb& c) override {
    if (done_ < rounds_) tcp_.abort(c);  // the echo server went away early
  }
  void on_closed(tcp::Tcb& c, Errc reason) override {
    forget(st_, c);
    --st_.conns_open;
    if (reason == Errc::ok && done_ == rounds_ && !failed_) ++st_.conns_done;
    else ++st_.conns_failed;
    delete this;
  }

 private:
  void next_round(tcp::Tcb& c) {
    if (started_) ++done_;
    started_ = true;
    if (done_ == rounds_) return tcp_.close(c);
    // Eight random bytes per draw: filling a large message a byte at a time
    // would cost more than the round trip.
    for (size_t i = 0; i < msg_.size(); i += 8) {
      uint64_t r = rng_();
      std::memcpy(msg_.data() + i, &r, std::min<size_t>(8, msg_.size() - i));
    }
    sent_ = got_ = 0;
    pump(c);
  }
  void pump(tcp::Tcb& c) {
    while (sent_ < msg_.size()) {
      auto r = tcp_.send_copy(c, msg_.data() + sent_, msg_.size() - sent_);
      if (!r) {
        if (r.error() != Errc::would_block) tcp_.abort(c);
        return;
      }
      sent_ += *r;
      if (sent_ < msg_.size()) {
        tcp_.want_writable(c);
        return;
      }
    }
  }

  tcp::TcpStack& tcp_;
  uint32_t rounds_;
  TrafficStats& st_;
  std::mt19937_64 rng_;
  std::vector<uint8_t> msg_;
  size_t sent_ = 0, got_ = 0;
  uint32_t done_ = 0;
  bool started_ = false, failed_ = false;
};

}  // namespace

Result<void> start_stream(tcp::TcpStack& tcp, net::Ipv4Addr dst, uint16_t port, uint64_t total,
                          TrafficStats& stats) {
  auto* h = new StreamClient(tcp, total, stats);
  auto c = tcp.connect(dst, port, h);
  if (!c) {
    delete h;
    return fail(c.error());
  }
  stats.live.push_back(*c);
  ++stats.conns_open;
  return {};
}

Result<void> start_echo(tcp::TcpStack& tcp, net::Ipv4Addr dst, uint16_t port, uint32_t size,
                        uint32_t rounds, uint64_t seed, TrafficStats& stats) {
  auto* h = new EchoClient(tcp, size, rounds, seed, stats);
  auto c = tcp.connect(dst, port, h);
  if (!c) {
    delete h;
    return fail(c.error());
  }
  stats.live.push_back(*c);
  ++stats.conns_open;
  return {};
}

void abort_all(tcp::TcpStack& tcp, TrafficStats& stats) {
  // abort() reports on_closed at once, which takes the connection off the list.
  std::vector<tcp::Tcb*> open;
  open.swap(stats.live);
  for (tcp::Tcb* c : open) tcp.abort(*c);
}

}  // namespace keel::pmd
