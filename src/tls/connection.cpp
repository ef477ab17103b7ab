// SPDX-License-Identifier: BSD-3-Clause
// keel::tls::Connection: a tls::Session driven by a native-API connection's
// events. The session does the TLS; this file moves mbufs between it and TCP.
#include <keel/tls.hpp>

#include <rte_mbuf.h>

#include <algorithm>
#include <cstring>

#include "api/stack_core.hpp"
#include "engine/mbuf_util.hpp"
#include "tls/session.hpp"

namespace keel::tls {

Result<Config, std::string> Config::create(const Options& o) {
  ContextOptions co;
  co.server = o.server;
  co.cert_file = o.cert_file;
  co.key_file = o.key_file;
  for (const auto& [cert, key] : o.sni_certs) co.sni_certs.push_back({cert, key});
  co.sni_strict = o.sni_strict;
  co.ca_file = o.ca_file;
  co.alpn = o.alpn;
  co.tls12 = o.tls12;
  co.tls13 = o.tls13;
  co.tickets = o.tickets;
  auto c = Context::create(co);
  if (!c) return Unexpected<std::string>{c.error()};
  Config cfg;
  cfg.ctx_ = *c;
  return cfg;
}

struct Connection::Impl {
  keel::Connection conn;
  std::unique_ptr<Session> s;
  rte_mbuf* pending = nullptr;  // wire bytes TCP has not taken yet (one chain)
  rte_mbuf* held = nullptr;     // content read() has started on
  size_t held_off = 0;
  uint16_t mss = 536;
  bool told_connected = false, told_peer_closed = false, done = false, blocked = false;
  uint8_t alert = 0;

  ~Impl() {
    if (pending != nullptr) rte_pktmbuf_free(pending);
    if (held != nullptr) rte_pktmbuf_free(held);
  }

  void queue(rte_mbuf* m) {
    if (m == nullptr) return;
    if (pending == nullptr) pending = m;
    else if (rte_pktmbuf_chain(pending, m) != 0) rte_pktmbuf_free(m);  // over 65535 segments: cannot be
  }
  // Session output first, then everything pending, to TCP.
  void flush() {
    queue(s->take_output());
    if (pending == nullptr) return;
    Buffer b = Buffer::adopt(pending);
    pending = nullptr;
    if (!conn.send(b)) pending = b.release_mbuf();  // would_block / not yet connected: later
  }
};

Connection::Connection(std::unique_ptr<Impl> i) : impl_(std::move(i)) {}
Connection::Connection(Connection&&) noexcept = default;
Connection& Connection::operator=(Connection&&) noexcept = default;
Connection::~Connection() = default;

Result<Connection> Connection::wrap(Stack& stack, keel::Connection conn, const Config& cfg, const std::string& sni,
                                    const std::vector<uint8_t>& session) {
  if (!conn.valid() || cfg.ctx_ == nullptr) return fail(Errc::bad_handle);
  if (auto i = conn.info(); !i) return fail(i.error());
  engine::Instance& inst = stack.core_->instance();
  auto impl = std::make_unique<Impl>();
  impl->conn = conn;
  impl->s = std::make_unique<Session>(cfg.ctx_, inst.interfaces().front()->pool, &inst.counters(),
                                      sni.empty() ? nullptr : sni.c_str(), session);
  if (impl->s->state() == Session::State::failed) return fail(Errc::no_memory);
  impl->flush();  // a client's ClientHello (kept until TCP is connected)
  return Connection(std::move(impl));
}

Event Connection::on_event(const Event& ev) {
  Impl& x = *impl_;
  Event out;
  out.conn = ev.conn;
  out.user = ev.user;
  if (x.done) return out;
  bool fin = false;
  if (ev.has(event::readable) || ev.has(event::peer_closed) || ev.has(event::closed)) {
    for (;;) {
      auto r = x.conn.recv();
      if (!r) break;
      if (r->empty()) {
        fin = true;
        break;
      }
      x.s->input(r->release_mbuf());
    }
  }
  auto pr = x.s->process();
  if (pr && (fin || ev.has(event::peer_closed))) pr = x.s->end_of_stream();  // a record cut short?
  x.flush();
  if (!pr) {
    // keel refused something (its alert is queued ahead of the FIN), or the peer's fatal alert.
    x.alert = uint8_t(pr.error());
    x.done = true;
    (void)x.conn.close();
    out.flags |= event::closed;
    out.error = x.s->peer_alerted() ? Errc::connection_reset : Errc::connection_aborted;
    return out;
  }
  if (x.s->established() && !x.told_connected) {
    x.told_connected = true;
    if (auto i = x.conn.info()) x.mss = uint16_t(i->mss);
    out.flags |= event::connected;
  }
  if (x.s->has_plaintext() || x.held != nullptr) out.flags |= event::readable;
  if (ev.has(event::writable) && x.blocked && x.pending == nullptr) {
    x.blocked = false;
    out.flags |= event::writable;
  }
  if ((x.s->peer_closed() || fin || ev.has(event::peer_closed)) && !x.told_peer_closed) {
    x.told_peer_closed = true;
    out.flags |= event::peer_closed;
  }
  if (ev.has(event::closed)) {
    x.done = true;
    out.flags |= event::closed;
    out.error = ev.error;
  }
  return out;
}

namespace {

// Seals `len` bytes from a scatter list into records of at most `per` content
// bytes each, chained into one packet. nullptr (nothing queued) if the pool ran dry.
template <class NextRun>
Result<rte_mbuf*> seal_chunks(Session& s, size_t len, size_t per, size_t mss, NextRun&& next_run) {
  rte_mbuf* chain = nullptr;
  Segment segs[32];
  while (len > 0) {
    size_t want = std::min(len, per), got = 0, n = 0;
    while (got < want && n < 32) {
      Segment r = next_run(want - got);
      segs[n++] = r;
      got += r.size;
    }
    auto m = s.seal({segs, n}, mss);
    if (!m) {
      if (chain != nullptr) rte_pktmbuf_free(chain);
      return Unexpected{m.error()};
    }
    if (chain == nullptr) chain = *m;
    else if (rte_pktmbuf_chain(chain, *m) != 0) {
      rte_pktmbuf_free(*m);
      rte_pktmbuf_free(chain);
      return fail(Errc::no_memory);
    }
    len -= got;
  }
  return chain;
}

}  // namespace

Result<void> Connection::send(Buffer& b) {
  Impl& x = *impl_;
  if (x.done || !x.s->established()) return fail(Errc::not_connected);
  if (b.empty()) return fail(Errc::bad_handle);
  size_t len = b.size(), full = x.s->full_record_wire(x.mss), per = x.s->content_per_record(full);
  size_t wire = len + (len + per - 1) / per * (full - per);
  auto space = x.conn.send_space();
  if (!space) return fail(space.error());
  if (x.pending != nullptr || *space < wire) {
    x.blocked = true;
    (void)x.conn.want_writable();
    return fail(Errc::would_block);
  }
  size_t seg = 0, off = 0;
  auto next_run = [&](size_t max) {
    Segment s = b.segment(seg);
    while (off == s.size) {
      s = b.segment(++seg);
      off = 0;
    }
    Segment r{s.data + off, std::min(max, s.size - off)};
    off += r.size;
    return r;
  };
  auto chain = seal_chunks(*x.s, len, per, x.mss, next_run);
  if (!chain) return fail(chain.error());
  (void)b.release();  // the plaintext is no longer needed: TCP keeps the ciphertext
  x.queue(*chain);
  x.flush();
  return {};
}

Result<size_t> Connection::write(const void* data, size_t len) {
  Impl& x = *impl_;
  if (x.done || !x.s->established()) return fail(Errc::not_connected);
  size_t full = x.s->full_record_wire(x.mss), per = x.s->content_per_record(full), oh = full - per;
  auto space = x.conn.send_space();
  if (!space) return fail(space.error());
  // The most content whose records fit: whole records, then a shorter one in the rest.
  size_t fits = *space / full * per + (*space % full > oh ? *space % full - oh : 0);
  size_t n = x.pending != nullptr ? 0 : std::min(len, fits);
  if (n == 0) {
    x.blocked = true;
    (void)x.conn.want_writable();
    return fail(Errc::would_block);
  }
  // Straight from the caller's memory into the record: one read, one write.
  auto* p = static_cast<uint8_t*>(const_cast<void*>(data));
  auto next_run = [&p](size_t max) {
    Segment r{p, max};
    p += max;
    return r;
  };
  auto chain = seal_chunks(*x.s, n, per, x.mss, next_run);
  if (!chain) return fail(chain.error());
  x.queue(*chain);
  x.flush();
  return n;
}

Result<Buffer> Connection::recv() {
  Impl& x = *impl_;
  rte_mbuf* m = x.held;
  if (m != nullptr) {
    x.held = nullptr;
    engine::trim_front(m, uint32_t(x.held_off));
    x.held_off = 0;
  } else {
    m = x.s->take_plaintext();
  }
  if (m != nullptr) return Buffer::adopt(m);
  if (x.s->peer_closed()) return Buffer();
  return fail(x.done ? Errc::not_connected : Errc::would_block);
}

Result<size_t> Connection::read(void* dst, size_t cap) {
  Impl& x = *impl_;
  if (x.held == nullptr) {
    x.held = x.s->take_plaintext();
    x.held_off = 0;
  }
  if (x.held == nullptr) {
    if (x.s->peer_closed()) return size_t{0};
    return fail(x.done ? Errc::not_connected : Errc::would_block);
  }
  size_t n = std::min(cap, size_t(x.held->pkt_len) - x.held_off);
  // A pointer into the mbuf when contiguous, else rte_pktmbuf_read copies into dst itself.
  auto* out = static_cast<uint8_t*>(dst);
  const void* p = rte_pktmbuf_read(x.held, uint32_t(x.held_off), uint32_t(n), out);
  if (p != out) std::memcpy(out, p, n);
  x.held_off += n;
  if (x.held_off == x.held->pkt_len) {
    rte_pktmbuf_free(x.held);
    x.held = nullptr;
    x.held_off = 0;
  }
  return n;
}

Result<void> Connection::close() {
  Impl& x = *impl_;
  if (x.done) return fail(Errc::bad_handle);
  x.done = true;
  x.s->close_notify();
  x.flush();
  if (x.pending != nullptr) {
    // TCP would not take it now: queue it anyway (a send larger than the space
    // is taken when the queue is empty) or give up on it.
    Buffer b = Buffer::adopt(x.pending);
    x.pending = nullptr;
    (void)x.conn.send(b);
  }
  // Unread ciphertext would turn the close into a reset: drop it first.
  while (auto r = x.conn.recv()) {
    if (r->empty()) break;
  }
  return x.conn.close();
}

bool Connection::established() const { return impl_->s->established(); }
keel::Connection Connection::tcp() const { return impl_->conn; }
std::string Connection::alpn() const { return impl_->s->alpn(); }
bool Connection::resumed() const { return impl_->s->resumed(); }
bool Connection::peer_verified() const { return impl_->s->peer_verified(); }
std::string Connection::server_name() const { return impl_->s->server_name(); }
std::string Connection::peer_subject() const { return impl_->s->peer_subject(); }
std::vector<uint8_t> Connection::session_ticket() const { return impl_->s->session_ticket(); }
uint8_t Connection::alert() const { return impl_->alert; }

}  // namespace keel::tls
