// SPDX-License-Identifier: BSD-3-Clause
// keel-pmd's `tls-get ADDR PORT PATH [1.2|1.3] [resume] [sni=NAME] [discard]`: keel as
// a TLS client (keel::tls::Session over one TCP connection of instance 0)
// fetches PATH with HTTP/1.0 semantics (the server closes after the body) and
// reports the version, suite, status line, body length, the body's sha256,
// whether the session was resumed and the server certificate's subject.
// `resume`: a second fetch offers the first's session. `sni=NAME`: the server
// name sent (and the request's Host). `discard`: the body is counted, not
// hashed (a benchmark's client). The time from connect to the end of the body
// and the rate over it close the line.
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <rte_mbuf.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <thread>

#include "cli.hpp"
#include "tcp/tcp_stack.hpp"
#include "tls/session.hpp"

namespace keel::pmd {

namespace {

const char* cipher_name(tls::Version v, tls::Cipher c) {
  bool v13 = v == tls::Version::tls13;
  switch (c) {
    case tls::Cipher::aes_128_gcm: return v13 ? "TLS_AES_128_GCM_SHA256" : "AES128-GCM";
    case tls::Cipher::aes_256_gcm: return v13 ? "TLS_AES_256_GCM_SHA384" : "AES256-GCM";
    case tls::Cipher::chacha20_poly1305: return v13 ? "TLS_CHACHA20_POLY1305_SHA256" : "CHACHA20-POLY1305";
  }
  return "?";
}

/// One fetch. Lives on instance 0's lcore until the TCB is gone; `done` and
/// `result` are read by the CLI thread once done is set.
struct TlsGet final : tcp::ConnHandler {
  tcp::TcpStack* tcp = nullptr;
  tcp::Tcb* tcb = nullptr;
  std::unique_ptr<tls::Session> s;
  std::string request, head;
  std::vector<uint8_t> resume, ticket;  // the session offered / the one to offer next time
  bool resumed = false, hash = true;
  bool sent = false, in_body = false, finished = false;
  std::chrono::steady_clock::time_point start;
  uint64_t body = 0;
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  std::atomic<bool> done{false};
  std::string result;

  ~TlsGet() override { EVP_MD_CTX_free(md); }

  void flush() {
    while (tcb != nullptr && s)
      if (rte_mbuf* m = s->take_output()) {
        if (!tcp->send(*tcb, m)) rte_pktmbuf_free(m);
      } else {
        break;
      }
  }
  void on_connected(tcp::Tcb&) override { flush(); }
  void on_readable(tcp::Tcb& c) override {
    if (finished) {
      while (rte_mbuf* m = tcp->recv(c)) rte_pktmbuf_free(m);
      return;
    }
    while (rte_mbuf* m = tcp->recv(c)) s->input(m);
    auto r = s->process();
    flush();
    if (!r) return finish("tls-get: failed: TLS alert " + std::to_string(int(r.error())));
    if (s->established() && !sent) {
      sent = true;
      Segment seg{reinterpret_cast<uint8_t*>(request.data()), request.size()};
      auto rec = s->seal({&seg, 1});
      if (!rec || !tcp->send(c, *rec)) return finish("tls-get: failed: cannot send the request");
    }
    if (rte_mbuf* m = s->take_plaintext()) {
      for (rte_mbuf* seg = m; seg != nullptr; seg = seg->next) consume(rte_pktmbuf_mtod(seg, const char*), seg->data_len);
      rte_pktmbuf_free(m);
    }
    if (s->peer_closed()) complete();
  }
  void on_peer_closed(tcp::Tcb&) override {
    if (finished) return;
    if (auto r = s->end_of_stream(); !r) {
      flush();
      return finish("tls-get: failed: the stream ended inside a record");
    }
    complete();
  }
  void on_closed(tcp::Tcb&, Errc why) override {
    tcb = nullptr;
    if (!finished) finish("tls-get: failed: connection closed: " + std::string(to_string(why)));
    s.reset();  // frees its mbufs while the pool still exists
  }

  void consume(const char* p, size_t n) {
    if (!in_body) {
      head.append(p, n);
      size_t end = head.find("\r\n\r\n");
      if (end == std::string::npos) return;
      in_body = true;
      std::string rest = head.substr(end + 4);
      head.resize(end);
      body += rest.size();
      if (hash) EVP_DigestUpdate(md, rest.data(), rest.size());
      return;
    }
    body += n;
    if (hash) EVP_DigestUpdate(md, p, n);
  }
  void complete() {
    if (!s->established()) return finish("tls-get: failed: closed during the handshake");
    char hex[65] = "-";
    if (hash) {
      unsigned char h[32];
      unsigned hl = 0;
      EVP_DigestFinal_ex(md, h, &hl);
      for (unsigned i = 0; i < 32; ++i) std::snprintf(hex + 2 * i, 3, "%02x", h[i]);
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    char rate[64];
    std::snprintf(rate, sizeof rate, ", %.1f ms, %.2f Gbit/s", secs * 1e3, secs > 0 ? body * 8 / secs / 1e9 : 0.0);
    std::string status = head.substr(0, head.find("\r\n"));
    ticket = s->session_ticket();
    resumed = s->resumed();
    finish(std::string("tls-get: ") + (s->version() == tls::Version::tls13 ? "TLSv1.3 " : "TLSv1.2 ") +
           cipher_name(s->version(), s->cipher()) + ", '" + status + "', " + std::to_string(body) +
           " body bytes, sha256 " + hex + (s->peer_closed() ? ", close_notify" : ", no close_notify") +
           (resumed ? ", resumed=yes" : ", resumed=no") + ", peer '" + s->peer_subject() + "'" + rate);
  }
  void finish(const std::string& what) {
    finished = true;
    result = what;
    if (tcb != nullptr) {
      if (s) {
        s->close_notify();
        flush();
      }
      while (rte_mbuf* m = tcp->recv(*tcb)) rte_pktmbuf_free(m);
      tcp->close(*tcb);
    }
    done.store(true, std::memory_order_release);
  }
};

bool parse_port(const std::string& s, unsigned& out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && end == s.data() + s.size() && out >= 1 && out <= 65535;
}

// Every fetch ever made; touched only on instance 0's lcore (and sessions are
// released when their connection closes, so what stays holds no mbufs).
std::vector<std::shared_ptr<TlsGet>> fetches;

}  // namespace

void Cli::tls_get(const std::vector<std::string>& w, std::ostream& out) {
  unsigned port = 0;
  auto dst = w.size() >= 4 && w.size() <= 8 ? net::Ipv4Addr::parse(w[1]) : std::nullopt;
  bool v12 = false, v13 = false, resume = false, discard = false, bad = false;
  std::string sni;
  for (size_t i = 4; i < w.size(); ++i) {
    if ((w[i] == "1.2" || w[i] == "1.3") && !v12 && !v13) (w[i] == "1.2" ? v12 : v13) = true;
    else if (w[i] == "resume" && !resume) resume = true;
    else if (w[i] == "discard" && !discard) discard = true;
    else if (w[i].starts_with("sni=") && w[i].size() > 4 && sni.empty()) sni = w[i].substr(4);
    else bad = true;
  }
  if (!dst || !parse_port(w[2], port) || w[3].empty() || w[3][0] != '/' || bad) {
    out << "error: usage: tls-get ADDR PORT /PATH [1.2|1.3] [resume] [sni=NAME] [discard]\n";
    return;
  }
  tls::ContextOptions o;
  o.server = false;
  o.alpn = {"http/1.1"};
  o.tls12 = !v13;
  o.tls13 = !v12;
  auto ctx = tls::Context::create(o);
  if (!ctx) {
    out << "error: tls-get: " << ctx.error() << "\n";
    return;
  }
  std::vector<uint8_t> ticket;
  for (int round = 0; round < (resume ? 2 : 1); ++round) {
    auto g = std::make_shared<TlsGet>();
    g->request = "GET " + w[3] + " HTTP/1.0\r\nHost: " + (sni.empty() ? w[1] : sni) + "\r\nConnection: close\r\n\r\n";
    g->resume = ticket;
    g->hash = !discard;
    EVP_DigestInit_ex(g->md, EVP_sha256(), nullptr);
    tcp::TcpStack* t = &engine_.tcp(0);
    Errc err = Errc::ok;
    net::Ipv4Addr addr = *dst;
    std::shared_ptr<tls::Context> c = *ctx;
    bool ok = run_on(*engine_.instances().front(), [&, g, t, c](engine::Instance& inst) {
      g->tcp = t;
      g->s = std::make_unique<tls::Session>(c, inst.interfaces().front()->pool, &inst.counters(),
                                            sni.empty() ? nullptr : sni.c_str(), g->resume);
      auto r = t->connect(addr, uint16_t(port), g.get());
      if (!r) {
        err = r.error();
        g->s.reset();
        return;
      }
      g->tcb = *r;
      g->start = std::chrono::steady_clock::now();
      fetches.push_back(g);
    });
    if (!ok || err != Errc::ok) {
      out << "error: tls-get: " << (ok ? to_string(err) : "instance 0 not responding") << "\n";
      return;
    }
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (!g->done.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (!g->done.load(std::memory_order_acquire)) {
      out << "error: tls-get: no answer within 120 s\n";
      return;
    }
    out << g->result << "\n";
    ticket = g->ticket;  // written on the lcore before done was set
    if (resume && round == 0 && ticket.empty()) out << "tls-get: the server sent no ticket: the second fetch cannot resume\n";
  }
}

}  // namespace keel::pmd
