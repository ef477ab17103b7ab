// SPDX-License-Identifier: BSD-3-Clause
// `bench http`: a wrk-like load client. Each connection keeps one HTTP/1.1
// GET outstanding on a keep-alive connection; the response's end comes from
// its framing (http_response.hpp), read straight out of the received mbufs.
// A connection the server closes (Connection: close, or idle) is replaced; a
// response cut short or malformed counts as an error.
#include <rte_mbuf.h>

#include <string>
#include <string_view>

#include "bench_client.hpp"
#include "http_response.hpp"

namespace keel::pmd {

namespace {

class HttpConn final : public BenchConn {
 public:
  HttpConn(BenchClient& o, const std::string& req) : BenchConn(o), req_(req) {}

 private:
  void begin() override { request(); }
  void clear() override {
    p_ = http::ResponseParser{};
    sent_ = 0;
    waiting_ = false;
  }
  void on_readable(tcp::Tcb& c) override {
    rte_mbuf* m = owner_.tcp().recv(c);
    if (m != nullptr) bench_add(owner_.bytes, m->pkt_len);  // the live row's Gbit/s
    bool bad = false, close = false;
    for (rte_mbuf* s = m; s != nullptr && !bad; s = s->next) {
      std::string_view in(rte_pktmbuf_mtod(s, const char*), s->data_len);
      while (!in.empty() && !bad) {
        size_t used = 0;
        auto st = p_.feed(in, used);
        in.remove_prefix(used);
        using St = http::ResponseParser::Status;
        if (st == St::error || (st == St::complete && !waiting_)) {
          bad = true;  // malformed, or a response nobody asked for
        } else if (st == St::complete) {
          waiting_ = false;
          owner_.done_op(t0_ns);
          if (p_.status() < 200 || p_.status() > 299) bench_add(owner_.non2xx);
          close = close || p_.close();
        }
      }
    }
    rte_pktmbuf_free(m);
    if (bad) return owner_.tcp().abort(c);
    if (close) return owner_.tcp().close(c);  // lost() opens the replacement
    if (!waiting_ && running()) request();
  }
  void on_writable(tcp::Tcb&) override { pump(); }
  void on_peer_closed(tcp::Tcb& c) override {
    if (waiting_) return owner_.tcp().abort(c);  // response cut short
    owner_.tcp().close(c);
  }

  void request() {
    sent_ = 0;
    waiting_ = true;
    t0_ns = engine::now_ns();
    pump();
  }
  void pump() {
    if (tcb != nullptr) send_request(owner_.tcp(), *tcb, req_.data(), req_.size(), sent_);
  }

  const std::string& req_;
  http::ResponseParser p_;
  size_t sent_ = 0;
  bool waiting_ = false;
};

class HttpClient final : public BenchClient {
 public:
  HttpClient(tcp::TcpStack& t, const BenchArgs& a) : BenchClient(t, a) {
    std::string host = a.dst.to_string();
    if (a.port != 80) host += ":" + std::to_string(a.port);
    req_ = "GET " + a.path + " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: keel-pmd\r\n\r\n";
  }

 private:
  std::unique_ptr<BenchConn> make_conn() override { return std::make_unique<HttpConn>(*this, req_); }
  // A connection the server closed: open another once set-up is over (ramp()
  // opens the first CONNS itself).
  void lost() override {
    if (ready()) open();
  }
  std::string req_;
};

}  // namespace

std::shared_ptr<BenchClient> make_http_client(tcp::TcpStack& tcp, const BenchArgs& a) {
  return std::make_shared<HttpClient>(tcp, a);
}

}  // namespace keel::pmd
