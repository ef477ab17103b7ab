// SPDX-License-Identifier: BSD-3-Clause
// Sockets, epoll registrations and the fd table; keel's events into socket state.
#include "preload/files.hpp"

#include <cerrno>

#include "preload/host.hpp"
#include "preload/libc.hpp"

namespace keel::preload {

int to_errno(Errc e) {
  switch (e) {
    case Errc::ok: return 0;
    case Errc::invalid_argument: return EINVAL;
    case Errc::no_memory: return ENOBUFS;
    case Errc::no_device: return ENODEV;
    case Errc::not_supported: return EOPNOTSUPP;
    case Errc::would_block: return EAGAIN;
    case Errc::not_connected: return ENOTCONN;
    case Errc::already_exists: return EADDRINUSE;
    case Errc::timed_out: return ETIMEDOUT;
    case Errc::unreachable: return EHOSTUNREACH;
    case Errc::io_error: return EIO;
    case Errc::connection_refused: return ECONNREFUSED;
    case Errc::connection_reset: return ECONNRESET;
    case Errc::connection_aborted: return ECONNABORTED;
    case Errc::wrong_thread: return EBADF;
    case Errc::bad_handle: return EBADF;
    case Errc::message_too_long: return EMSGSIZE;
  }
  return EIO;
}

// ===== Socket =====

Socket::~Socket() {
  Host& h = Host::get();
  auto items = std::move(watchers);
  for (EpItem* it : items) it->ep->remove(it);  // frees it
  if (!h.started()) return;  // never started, or the stack is the parent's (fork)
  if (lst.valid()) {
    (void)lst.close();
    std::erase(h.listeners, this);
  }
  // Connections accepted and never taken go as the kernel's do: reset.
  for (auto& c : accept_q) {
    c->opt.linger_on = true;
    c->opt.linger_s = 0;
  }
  accept_q.clear();
  if (conn_live()) {
    if (opt.linger_on && opt.linger_s == 0) (void)conn.abort();
    else (void)conn.close();  // orderly; unread data makes it a RST (as Linux)
  }
  if (udp.valid()) (void)udp.close();
}

uint32_t Socket::ready_mask() const {
  uint32_t m = 0;
  if (so_error != 0) m |= EPOLLERR;
  if (!is_stream()) {
    if (dgram_held || (udp.valid() && udp.queued().value_or(0) > 0)) m |= EPOLLIN | EPOLLRDNORM;
    return m | EPOLLOUT | EPOLLWRNORM;
  }
  switch (state) {
    case State::fresh:
    case State::bound:
      return m | EPOLLOUT | EPOLLHUP;  // COMPAT(linux): an unconnected stream socket
    case State::listening:
      return accept_q.empty() ? m : m | EPOLLIN | EPOLLRDNORM;
    case State::connecting:
      return m;
    case State::failed:
      return m | EPOLLOUT | EPOLLHUP | EPOLLERR;
    case State::connected:
    case State::ended:
      break;
  }
  const bool ended = state == State::ended;
  if (!stash.empty() || rd_shut || peer_fin || ended || (conn_live() && conn.readable_bytes().value_or(0) > 0))
    m |= EPOLLIN | EPOLLRDNORM;
  if (peer_fin || ended) m |= EPOLLRDHUP;
  if (ended || (peer_fin && wr_shut)) m |= EPOLLHUP;
  if (ended || wr_shut || (conn_live() && conn.send_space().value_or(0) > 0)) m |= EPOLLOUT | EPOLLWRNORM;
  return m;
}

void Socket::notify() {
  for (EpItem* it : watchers)
    if (!it->queued && !it->disabled) {
      it->queued = true;
      it->ep->ready.push_back(it);
    }
}

// ===== Epoll =====

void Epoll::remove(EpItem* it) {
  std::erase(ready, it);
  std::erase_if(items, [it](const std::unique_ptr<EpItem>& p) { return p.get() == it; });
}

Epoll::~Epoll() {
  for (auto& it : items) std::erase(it->sock->watchers, it.get());
  if (wake_fd >= 0) libc().close(wake_fd);
}

// ===== the fd table =====

FdTable& FdTable::get() {
  static FdTable* t = new FdTable();
  return *t;
}

bool FdTable::put(int fd, std::shared_ptr<File> f) {
  if (fd < 0 || fd >= capacity) return false;
  Kind k = f->kind;
  files_[fd] = std::move(f);
  kinds_[fd].store(k, std::memory_order_release);
  return true;
}

std::shared_ptr<File> FdTable::take(int fd) {
  if (kind(fd) == Kind::none) return nullptr;
  kinds_[fd].store(Kind::none, std::memory_order_release);
  return std::move(files_[fd]);
}

std::vector<int> FdTable::fds() const {
  std::vector<int> v;
  for (int fd = 0; fd < capacity; ++fd)
    if (kind(fd) != Kind::none) v.push_back(fd);
  return v;
}

// ===== keel's events =====

namespace {

// Options a connection takes from its socket (or its listener, when accepted).
void apply_options(Socket& s, const SockOptions& o) {
  if (o.nodelay) (void)s.conn.set_nodelay(true);
  if (o.keepidle || o.keepintvl || o.keepcnt)
    (void)s.conn.set_keepalive_timing(uint32_t(o.keepidle) * 1000, uint32_t(o.keepintvl) * 1000, uint8_t(o.keepcnt));
  if (o.keepalive) (void)s.conn.set_keepalive(true);
  if (o.sndbuf > 0) (void)s.conn.set_send_buffer(uint32_t(o.sndbuf));
  if (o.rcvbuf > 0) (void)s.conn.set_receive_buffer(uint32_t(o.rcvbuf));
  if (!o.cc.empty()) (void)s.conn.set_congestion_control(o.cc);
}

}  // namespace

void apply_socket_options(Socket& s) { apply_options(s, s.opt); }

void dispatch(const Event& ev) {
  Host& h = Host::get();
  if (ev.udp.valid()) {
    if (auto* s = reinterpret_cast<Socket*>(ev.user)) {
      if (ev.has(event::error)) s->so_error = to_errno(ev.error);
      s->notify();
    }
    return;
  }
  Socket* s = nullptr;
  if (ev.has(event::accepted)) {
    Socket* l = nullptr;
    for (Socket* x : h.listeners)
      if (x->lst == ev.listener) l = x;
    if (l == nullptr) {
      (void)ev.conn.abort();
      return;
    }
    auto child = std::make_shared<Socket>(SOCK_STREAM);
    child->keel = true;
    child->state = Socket::State::connected;
    child->conn = ev.conn;
    child->opt = l->opt;
    child->opt.linger_on = false;
    (void)ev.conn.set_user(reinterpret_cast<uint64_t>(child.get()));
    apply_options(*child, child->opt);
    s = child.get();
    l->accept_q.push_back(std::move(child));
    l->notify();
  } else {
    s = reinterpret_cast<Socket*>(ev.user);
  }
  if (s == nullptr) return;
  if (ev.has(event::connected) && s->state == Socket::State::connecting) {
    s->state = Socket::State::connected;
    apply_options(*s, s->opt);
  }
  if (ev.has(event::peer_closed)) s->peer_fin = true;
  if (ev.has(event::closed)) {
    if (s->state == Socket::State::connecting) {
      s->state = Socket::State::failed;
      s->so_error = to_errno(ev.error == Errc::ok ? Errc::connection_refused : ev.error);
    } else {
      s->state = Socket::State::ended;
      s->end_error = ev.error;
      // As Linux: a reset after the peer's FIN (CLOSE-WAIT) is EPIPE to the next write.
      if (ev.error == Errc::connection_reset && s->peer_fin) s->so_error = EPIPE;
      else if (ev.error != Errc::ok) s->so_error = to_errno(ev.error);
    }
  }
  s->notify();
}

void realize_listener(Socket& s) {
  Host& h = Host::get();
  Endpoint at{Ipv4Address{ntohl(s.local.sin_addr.s_addr)}, ntohs(s.local.sin_port)};
  ListenOptions lo;
  lo.backlog = uint32_t(std::max(1, s.backlog));
  Stack st(&h.core());
  auto l = st.listen(at, lo);
  if (!l) {
    s.so_error = to_errno(l.error());
    return;
  }
  s.lst = *l;
  h.listeners.push_back(&s);
  s.notify();
}

}  // namespace keel::preload
