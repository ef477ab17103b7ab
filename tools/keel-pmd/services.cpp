// SPDX-License-Identifier: BSD-3-Clause
#include "services.hpp"

#include <rte_mbuf.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>

#include "cli.hpp"
#include "engine/engine.hpp"
#include "http_service.hpp"
#include "tcp/tcp_stack.hpp"
#include "tls/session.hpp"

namespace keel::pmd {

// ===== pure parts =====

const char* to_string(ServiceKind k) {
  switch (k) {
    case ServiceKind::echo: return "echo";
    case ServiceKind::discard: return "discard";
    case ServiceKind::chargen: return "chargen";
    case ServiceKind::http: return "http";
    case ServiceKind::https: return "https";
  }
  return "?";
}

uint16_t default_port(ServiceKind k) {
  switch (k) {
    case ServiceKind::echo: return 7;      // RFC 862
    case ServiceKind::discard: return 9;   // RFC 863
    case ServiceKind::chargen: return 19;  // RFC 864
    case ServiceKind::http: return 80;
    case ServiceKind::https: return 443;
  }
  return 0;
}

Result<std::vector<ServiceSpec>, std::string> parse_service_list(std::string_view list) {
  using Err = Unexpected<std::string>;
  std::vector<ServiceSpec> out;
  if (list.empty()) return Err{"empty service list (known: echo, discard, chargen, http, https)"};
  for (;;) {
    size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    size_t colon = item.find(':');
    std::string_view name = item.substr(0, colon);
    ServiceSpec s;
    if (name == "echo") s.kind = ServiceKind::echo;
    else if (name == "discard") s.kind = ServiceKind::discard;
    else if (name == "chargen") s.kind = ServiceKind::chargen;
    else if (name == "http") s.kind = ServiceKind::http;
    else if (name == "https") s.kind = ServiceKind::https;
    else
      return Err{"unknown service '" + std::string(name) + "' (known: echo, discard, chargen, http, https)"};
    s.port = default_port(s.kind);
    if (colon != std::string_view::npos) {
      std::string_view p = item.substr(colon + 1);
      unsigned v = 0;
      auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
      if (p.empty() || ec != std::errc{} || end != p.data() + p.size() || v == 0 || v > 65535)
        return Err{"bad port '" + std::string(p) + "' for " + std::string(name) + " (1..65535)"};
      s.port = uint16_t(v);
    }
    for (const auto& o : out)
      if (o.port == s.port)
        return Err{"port " + std::to_string(s.port) + " given twice (" + to_string(o.kind) + ", " +
                   to_string(s.kind) + ")"};
    out.push_back(s);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return out;
}

namespace {
// One full period of the stream, and one line more, so that any span up to a
// line long is one memcpy from the table.
constexpr auto chargen_table = [] {
  std::array<uint8_t, chargen_period + chargen_line_len> t{};
  for (size_t i = 0; i < t.size(); ++i) {
    size_t line = (i / chargen_line_len) % 95, col = i % chargen_line_len;
    t[i] = col < chargen_line_chars ? uint8_t(0x20 + (line + col) % 95)
           : col == chargen_line_chars ? uint8_t('\r') : uint8_t('\n');
  }
  return t;
}();
}  // namespace

void chargen_fill(uint64_t pos, uint8_t* dst, size_t n) {
  size_t off = size_t(pos % chargen_period);
  while (n > 0) {
    size_t k = std::min(n, chargen_table.size() - off);
    std::memcpy(dst, chargen_table.data() + off, k);
    dst += k;
    n -= k;
    off = (off + k) % chargen_period;
  }
}

// ===== TCP glue =====

namespace {

using tcp::Tcb;
using tcp::TcpStack;

class Session;

/// A listener's application side that also keeps its sessions (pooled).
class ServiceListener : public tcp::ListenHandler {
 public:
  virtual void recycle(Session* s) = 0;
  /// https: the TLS context its sessions share.
  std::shared_ptr<tls::Context> tls;
};

/// One accepted connection. The stack may end a connection inside any call
/// the session makes (close() resets when data is unread; a RST arrives): the
/// Guard defers returning the session to its pool until the outermost
/// callback returns, and live() is checked after every call that may close.
class Session : public tcp::ConnHandler {
 public:
  void attach(TcpStack& t, Tcb& c, ServiceListener& owner) {
    tcp_ = &t;
    tcb_ = &c;
    owner_ = &owner;
    depth_ = 0;
    closing_ = false;
  }
  /// Called from on_accept. The handshake's last ACK has not been processed
  /// yet, so nothing may be sent from here (see can_send_now()).
  virtual void started() {}

  void on_readable(Tcb&) final {
    Guard g(*this);
    if (live()) readable();
  }
  void on_writable(Tcb&) final {
    Guard g(*this);
    if (live()) writable();
  }
  void on_peer_closed(Tcb&) final {
    Guard g(*this);
    if (live()) peer_closed();
  }
  void on_closed(Tcb&, Errc) final {
    tcb_ = nullptr;
    if (depth_ == 0) release();
  }

 protected:
  virtual void readable() = 0;
  virtual void writable() {}
  virtual void peer_closed() {}
  /// Back to the state of a fresh session; frees what it holds.
  virtual void clear() {}

  bool live() const { return tcb_ != nullptr && !closing_; }
  ServiceListener& owner() const { return *owner_; }
  rte_mempool* pool() const { return tcp_->instance().interfaces().front()->pool; }

  /// Orderly close once the response is queued: unread input is discarded
  /// first, since close() with unread data resets the connection.
  void finish() {
    if (!live()) return;
    closing_ = true;
    while (rte_mbuf* m = tcp_->recv(*tcb_)) rte_pktmbuf_free(m);
    if (tcb_ != nullptr) tcp_->close(*tcb_);
  }

  /// Runs `f` as a callback does (for the session's own timers).
  template <class F>
  void guarded(F&& f) {
    Guard g(*this);
    if (live()) f();
  }

  /// Discards whatever has arrived.
  void drain() {
    while (live())
      if (rte_mbuf* m = tcp_->recv(*tcb_)) rte_pktmbuf_free(m);
      else break;
  }

  TcpStack* tcp_ = nullptr;
  Tcb* tcb_ = nullptr;

 private:
  struct Guard {
    explicit Guard(Session& s) : s(s) { ++s.depth_; }
    ~Guard() {
      if (--s.depth_ == 0 && s.tcb_ == nullptr) s.release();
    }
    Session& s;
  };
  void release() {
    clear();
    owner_->recycle(this);
  }

  ServiceListener* owner_ = nullptr;
  unsigned depth_ = 0;
  bool closing_ = false;
};

// COMPAT(keel TCP): on a passive open, on_accept runs before the handshake's
// final ACK is processed, with SND.UNA still at the ISS; data queued then
// loses its first byte (process_ack counts the SYN's sequence number as a
// data byte). So a session that talks first asks for on_writable, which the
// stack calls right after that ACK, unless the connection is already clean
// (made from a SYN cookie, SND.UNA == SND.NXT).
bool can_send_now(const Tcb& c) { return c.snd.una == c.snd.nxt; }

/// Builds a packet of at most `len` bytes from `fill(dst, cap) -> bytes written`
/// (fewer than cap means the source ran out). nullptr: nothing written, or no mbufs.
template <class F>
rte_mbuf* build_packet(rte_mempool* pool, uint32_t len, F&& fill) {
  rte_mbuf* head = nullptr;
  rte_mbuf* tail = nullptr;
  while (len > 0) {
    rte_mbuf* seg = rte_pktmbuf_alloc(pool);
    if (seg == nullptr) break;
    uint32_t cap = std::min<uint32_t>(len, rte_pktmbuf_tailroom(seg));
    size_t n = fill(rte_pktmbuf_mtod(seg, uint8_t*), size_t(cap));
    if (n == 0) {
      rte_pktmbuf_free(seg);
      break;
    }
    seg->data_len = uint16_t(n);
    if (head == nullptr) {
      head = seg;
      head->pkt_len = uint32_t(n);
    } else {
      tail->next = seg;
      head->pkt_len += uint32_t(n);
      ++head->nb_segs;
    }
    tail = seg;
    len -= uint32_t(n);
    if (n < cap) break;
  }
  return head;
}

}  // namespace

rte_mbuf* split_chain_front(rte_mbuf*& chain, uint32_t max) {
  rte_mbuf* m = chain;
  if (m->pkt_len <= max) {
    chain = nullptr;
    return m;
  }
  uint32_t bytes = 0;
  uint16_t segs = 0;
  rte_mbuf* last = nullptr;
  for (rte_mbuf* s = m; s != nullptr && bytes + s->data_len <= max; s = s->next) {
    bytes += s->data_len;
    ++segs;
    last = s;
  }
  if (bytes == 0) return nullptr;
  rte_mbuf* rest = last->next;  // not null: the chain is longer than max
  last->next = nullptr;
  rest->pkt_len = m->pkt_len - bytes;
  rest->nb_segs = uint16_t(m->nb_segs - segs);
  m->pkt_len = bytes;
  m->nb_segs = segs;
  chain = rest;
  return m;
}

namespace {

// ----- echo (RFC 862) -----
class EchoSession final : public Session {
 public:
  ~EchoSession() override { clear(); }

 private:
  void readable() override { pump(); }
  void writable() override { pump(); }
  void peer_closed() override {
    peer_fin_ = true;
    pump();
  }
  void clear() override {
    if (pending_ != nullptr) rte_pktmbuf_free(pending_);
    pending_ = nullptr;
    peer_fin_ = false;
  }

  // Received mbufs go back as they are. What the send buffer cannot take stays
  // in pending_ (and further input stays in the receive queue, so the window
  // closes) until on_writable.
  void pump() {
    while (live()) {
      if (pending_ == nullptr) pending_ = tcp_->recv(*tcb_);
      if (pending_ == nullptr) break;
      rte_mbuf* part = split_chain_front(pending_, tcp_->send_space(*tcb_));
      if (part == nullptr) {
        tcp_->want_writable(*tcb_);
        return;
      }
      if (auto r = tcp_->send(*tcb_, part); !r) {
        rte_pktmbuf_free(part);  // not_connected: the peer is gone
        return;
      }
    }
    if (live() && peer_fin_ && pending_ == nullptr) finish();
  }

  rte_mbuf* pending_ = nullptr;
  bool peer_fin_ = false;
};

// ----- discard (RFC 863) -----
class DiscardSession final : public Session {
  void readable() override { drain(); }
  void peer_closed() override {
    drain();
    finish();
  }
};

// ----- chargen (RFC 864) -----
class ChargenSession final : public Session {
 public:
  void started() override {
    if (can_send_now(*tcb_)) fill();
    else tcp_->want_writable(*tcb_);
  }

 private:
  void readable() override { drain(); }  // RFC 864: received data is thrown away
  void writable() override { fill(); }
  void peer_closed() override {
    drain();
    finish();
  }
  void clear() override { pos_ = 0; }

  void fill() {
    while (live()) {
      uint32_t space = tcp_->send_space(*tcb_);
      if (space == 0) break;
      uint64_t pos = pos_;
      rte_mbuf* m = build_packet(pool(), std::min<uint32_t>(space, 64 * 1024),
                                 [&pos](uint8_t* dst, size_t cap) {
                                   chargen_fill(pos, dst, cap);
                                   pos += cap;
                                   return cap;
                                 });
      if (m == nullptr) break;  // pool dry: try again when ACKs free buffers
      if (auto r = tcp_->send(*tcb_, m); !r) {
        rte_pktmbuf_free(m);
        if (r.error() != Errc::would_block) return;
        break;
      }
      pos_ = pos;
    }
    if (live()) tcp_->want_writable(*tcb_);
  }

  uint64_t pos_ = 0;
};

// ----- http -----
class HttpConn final : public Session {
 public:
  HttpConn() { linger_.set_callback(&HttpConn::linger_expired, this); }

 private:
  /// How long a lingering close waits for the client's FIN.
  static constexpr uint64_t linger_ns = 2'000'000'000;

  void readable() override {
    if (lingering_) return drain();
    pump();
  }
  void writable() override {
    if (!lingering_) pump();
  }
  void peer_closed() override {
    peer_fin_ = true;
    if (lingering_) return finish();
    pump();
  }
  void clear() override {
    if (tcp_ != nullptr) tcp_->instance().timers().cancel(linger_);
    h_.reset();
    peer_fin_ = told_fin_ = lingering_ = false;
  }

  void pump() {
    bool progress = true;
    while (progress && live()) {
      progress = false;
      // Request bytes, as many as the session's buffer takes (the rest waits
      // in the receive queue: pipelined requests are read as earlier ones finish).
      while (size_t room = h_.input_room()) {
        size_t n = tcp_->recv_copy(*tcb_, h_.input_ptr(), room);
        if (n == 0) break;
        h_.input_commit(n);
        progress = true;
      }
      if (peer_fin_ && !told_fin_ && tcb_->rcvq.empty()) {
        told_fin_ = true;
        h_.peer_closed();
        progress = true;
      }
      // Response bytes, straight into mbufs, as far as the send buffer allows.
      while (h_.has_output() && live()) {
        uint32_t space = tcp_->send_space(*tcb_);
        if (space == 0) break;
        rte_mbuf* m = build_packet(pool(), std::min<uint32_t>(space, 64 * 1024),
                                   [this](uint8_t* dst, size_t cap) { return h_.produce(dst, cap); });
        if (m == nullptr) break;
        if (auto r = tcp_->send(*tcb_, m); !r) {
          rte_pktmbuf_free(m);
          return;
        }
        progress = true;
      }
      if (h_.done()) return linger();
    }
    if (live() && h_.has_output()) tcp_->want_writable(*tcb_);
  }

  // RFC 9112 9.6: closing while the client may still be sending (an error, a
  // request after "Connection: close") would answer its data with a RST, which
  // can destroy the response before the client read it. So: half-close, read
  // and discard until the client's FIN or linger_ns, then close.
  void linger() {
    if (!live()) return;
    if (peer_fin_) return finish();
    if (auto r = tcp_->shutdown(*tcb_); !r) return finish();
    lingering_ = true;
    drain();
    if (live()) tcp_->instance().timers().schedule(linger_, tcp_->clock_now() + linger_ns);
  }
  static void linger_expired(engine::Timer&, void* ctx, uint64_t) {
    auto* s = static_cast<HttpConn*>(ctx);
    s->guarded([s] { s->finish(); });
  }

  http::Session h_;
  engine::Timer linger_;
  bool peer_fin_ = false, told_fin_ = false, lingering_ = false;
};

// ----- https: http over keel's TLS (the same /bytes/N) -----
// Receive: TCP's mbufs go into the TLS session, which decrypts them in place;
// the content is copied into the HTTP parser's buffer (it needs the request
// head contiguous). Send: the response is produced into a record-sized
// scratch buffer that stays in L1, and sealing reads it once and writes the
// record (header, ciphertext, tag) once into the mbuf TCP sends and keeps for
// retransmission: one TCP segment per record (records sized to the MSS).
class HttpsConn final : public Session {
 public:
  HttpsConn() { linger_.set_callback(&HttpsConn::linger_expired, this); }
  void started() override {
    tls_ = std::make_unique<tls::Session>(owner().tls, pool(), &tcp_->counters());
  }

 private:
  static constexpr uint64_t linger_ns = 2'000'000'000;

  void readable() override { pump(); }
  void writable() override { pump(); }
  void peer_closed() override {
    peer_fin_ = true;
    if (lingering_) return finish();
    if (tls_ && tls_->established()) {
      // What arrived before the FIN, then: did the stream end inside a record?
      while (rte_mbuf* m = tcp_->recv(*tcb_)) tls_->input(m);
      auto r = tls_->process();
      if (r) r = tls_->end_of_stream();
      if (!r) {  // the alert (decode_error for a record cut short) goes ahead of our FIN
        if (flush_output()) finish();
        return;
      }
    }
    pump();
  }
  void clear() override {
    if (tcp_ != nullptr) tcp_->instance().timers().cancel(linger_);
    tls_.reset();
    if (plain_ != nullptr) rte_pktmbuf_free(plain_);
    plain_ = nullptr;
    plain_off_ = 0;
    h_.reset();
    peer_fin_ = told_fin_ = lingering_ = sent_close_ = false;
  }

  // Sends what the TLS session has to say (handshake flights, alerts, KeyUpdate).
  bool flush_output() {
    while (rte_mbuf* m = tls_->take_output()) {
      if (auto r = tcp_->send(*tcb_, m); !r) {
        rte_pktmbuf_free(m);
        return false;
      }
    }
    return live();
  }

  void pump() {
    if (!live() || !tls_) return;
    // Ciphertext in.
    while (rte_mbuf* m = tcp_->recv(*tcb_)) tls_->input(m);
    auto r = tls_->process();
    if (!flush_output()) return;
    if (!r) return finish();  // the alert is queued ahead of our FIN
    if (!tls_->established()) {
      if (peer_fin_) finish();
      return;
    }
    bool progress = true;
    while (progress && live()) {
      progress = false;
      if (rte_mbuf* m = tls_->take_plaintext()) {
        if (plain_ == nullptr) plain_ = m;
        else rte_pktmbuf_chain(plain_, m);
      }
      // Request bytes into the parser, as far as its buffer takes them.
      while (plain_ != nullptr && h_.input_room() > 0) {
        size_t n = std::min<size_t>(h_.input_room(), plain_->data_len - plain_off_);
        std::memcpy(h_.input_ptr(), rte_pktmbuf_mtod(plain_, uint8_t*) + plain_off_, n);
        h_.input_commit(n);
        plain_off_ += n;
        if (plain_off_ == plain_->data_len) {
          rte_mbuf* next = plain_->next;
          if (next != nullptr) {
            next->pkt_len = plain_->pkt_len - plain_->data_len;
            next->nb_segs = uint16_t(plain_->nb_segs - 1);
          }
          plain_->next = nullptr;
          plain_->nb_segs = 1;
          rte_pktmbuf_free_seg(plain_);
          plain_ = next;
          plain_off_ = 0;
        }
        progress = true;
      }
      if ((peer_fin_ || tls_->peer_closed()) && !told_fin_ && plain_ == nullptr) {
        told_fin_ = true;
        h_.peer_closed();
        progress = true;
      }
      // Response records filling whole segments (up to 16 KiB of content each), while
      // the send buffer has room; a short response is one record of its size.
      size_t per = tls_->content_per_record(tls_->full_record_wire(tcb_->mss));
      while (h_.has_output() && live()) {
        if (tcp_->send_space(*tcb_) < per + 64) break;
        uint8_t scratch[tls::max_plaintext];
        size_t n = h_.produce(scratch, per);
        if (n == 0) break;
        Segment seg{scratch, n};
        auto rec = tls_->seal({&seg, 1}, tcb_->mss);
        if (!rec) return finish();  // pool dry or closed: give up this connection
        if (auto sr = tcp_->send(*tcb_, *rec); !sr) {
          rte_pktmbuf_free(*rec);
          return;
        }
        progress = true;
      }
      if (h_.done()) return linger();
    }
    if (live() && h_.has_output()) tcp_->want_writable(*tcb_);
  }

  // As HttpConn::linger, with close_notify ahead of the FIN.
  void linger() {
    if (!live()) return;
    if (!sent_close_) {
      sent_close_ = true;
      tls_->close_notify();
      if (!flush_output()) return;
    }
    if (peer_fin_) return finish();
    if (auto r = tcp_->shutdown(*tcb_); !r) return finish();
    lingering_ = true;
    drain();
    if (live()) tcp_->instance().timers().schedule(linger_, tcp_->clock_now() + linger_ns);
  }
  static void linger_expired(engine::Timer&, void* ctx, uint64_t) {
    auto* s = static_cast<HttpsConn*>(ctx);
    s->guarded([s] { s->finish(); });
  }

  std::unique_ptr<tls::Session> tls_;
  rte_mbuf* plain_ = nullptr;  // content not yet taken by the parser
  size_t plain_off_ = 0;
  http::Session h_;
  engine::Timer linger_;
  bool peer_fin_ = false, told_fin_ = false, lingering_ = false, sent_close_ = false;
};

template <class S>
class PooledListener final : public ServiceListener {
 public:
  explicit PooledListener(TcpStack& t) : tcp_(t) {}
  tcp::ConnHandler* on_accept(Tcb& c) override {
    S* s;
    if (free_.empty()) {
      all_.push_back(std::make_unique<S>());
      s = all_.back().get();
    } else {
      s = free_.back();
      free_.pop_back();
    }
    s->attach(tcp_, c, *this);
    s->started();
    return s;
  }
  void recycle(Session* s) override { free_.push_back(static_cast<S*>(s)); }

 private:
  TcpStack& tcp_;
  std::vector<std::unique_ptr<S>> all_;  // every session ever made (in use or free)
  std::vector<S*> free_;
};

std::unique_ptr<ServiceListener> make_listener(ServiceKind k, TcpStack& t) {
  switch (k) {
    case ServiceKind::echo: return std::make_unique<PooledListener<EchoSession>>(t);
    case ServiceKind::discard: return std::make_unique<PooledListener<DiscardSession>>(t);
    case ServiceKind::chargen: return std::make_unique<PooledListener<ChargenSession>>(t);
    case ServiceKind::http: return std::make_unique<PooledListener<HttpConn>>(t);
    case ServiceKind::https: return std::make_unique<PooledListener<HttpsConn>>(t);
  }
  return nullptr;
}

}  // namespace

std::unique_ptr<tcp::ListenHandler> make_service_handler(ServiceKind k, tcp::TcpStack& stack) {
  return make_listener(k, stack);
}

struct Services::Host {
  TcpStack* tcp = nullptr;
  std::vector<std::unique_ptr<ServiceListener>> handlers;  // by spec
};

Services::Services() = default;

Result<void, std::string> Services::start(engine::Engine& e, const std::vector<ServiceSpec>& specs) {
  if (!hosts_.empty()) return Unexpected<std::string>{"services already started"};
  specs_ = specs;
  std::shared_ptr<tls::Context> tls_ctx;
  for (const auto& sp : specs)
    if (sp.kind == ServiceKind::https && tls_ctx == nullptr) {
      auto c = tls::Context::create(tls_);
      if (!c) return Unexpected<std::string>{"https: " + c.error()};
      tls_ctx = *c;
    }
  for (size_t i = 0; i < e.instances().size(); ++i) {
    auto host = std::make_shared<Host>();
    host->tcp = &e.tcp(i);
    for (const auto& sp : specs) {
      host->handlers.push_back(make_listener(sp.kind, *host->tcp));
      host->handlers.back()->tls = tls_ctx;
    }
    hosts_.push_back(host);
    auto err = std::make_shared<std::string>();
    bool ok = run_on(*e.instances()[i], [host, err, specs](engine::Instance& inst) {
      for (size_t k = 0; k < specs.size(); ++k)
        for (auto& ifc : inst.interfaces())
          for (const auto& a : ifc->l3.addrs) {
            auto r = host->tcp->listen(a.addr, specs[k].port, 128, host->handlers[k].get());
            if (!r) {
              *err = "cannot listen on " + a.addr.to_string() + ":" + std::to_string(specs[k].port) +
                     " for " + to_string(specs[k].kind) + ": " + std::string(keel::to_string(r.error()));
              return;
            }
          }
    });
    if (!ok) return Unexpected<std::string>{"instance " + std::to_string(i) + " did not answer"};
    if (!err->empty()) return Unexpected<std::string>{*err};
  }
  return {};
}

Services::~Services() = default;

const char* Services::name_for_port(uint16_t port) const {
  for (const auto& sp : specs_)
    if (sp.port == port) return to_string(sp.kind);
  return nullptr;
}

}  // namespace keel::pmd
