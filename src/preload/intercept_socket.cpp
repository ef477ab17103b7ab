// SPDX-License-Identifier: BSD-3-Clause
// The socket calls: which sockets keel serves, and their control path
// (bind/listen/accept/connect/close/shutdown, fcntl/ioctl, options, names, dup).
#include <fcntl.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdarg>
#include <cstring>

#include "api/stack_core.hpp"
#include "preload/libc.hpp"
#include "preload/ops.hpp"

using namespace keel;
using namespace keel::preload;

namespace {

// Checked at load: a bad configuration ends the program before main().
__attribute__((constructor)) void shim_load() { (void)Host::get(); }

bool inet_stream_or_dgram(int domain, int type) {
  const int t = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
  return domain == AF_INET && (t == SOCK_STREAM || t == SOCK_DGRAM);
}

bool read_sockaddr(const sockaddr* a, socklen_t len, sockaddr_in& out) {
  if (a == nullptr || len < socklen_t(sizeof(sockaddr_in)) || a->sa_family != AF_INET) return false;
  std::memcpy(&out, a, sizeof out);
  return true;
}

int64_t timeval_ns(const void* v, socklen_t len) {
  if (len < socklen_t(sizeof(timeval))) return -2;
  timeval tv;
  std::memcpy(&tv, v, sizeof tv);
  if (tv.tv_sec < 0 || tv.tv_usec < 0 || tv.tv_usec >= 1'000'000) return -2;
  if (tv.tv_sec == 0 && tv.tv_usec == 0) return -1;  // none
  return int64_t(tv.tv_sec) * 1'000'000'000 + int64_t(tv.tv_usec) * 1000;
}

// A port for listen() on port 0 (keel's listen needs one): the first free from 32768.
uint16_t ephemeral_listen_port(Host& h, Socket& s) {
  Stack st(&h.core());
  for (uint32_t p = 32768; p < 61000; ++p) {
    Endpoint at{Ipv4Address{ntohl(s.local.sin_addr.s_addr)}, uint16_t(p)};
    auto l = st.listen(at, {});
    if (l) {
      (void)l->close();
      return uint16_t(p);
    }
  }
  return 0;
}

// A keel listener (live or waiting for the start) has the port of `a` on an address that
// overlaps it: bind() says EADDRINUSE as Linux does (unless both set SO_REUSEPORT). Sockets
// only bound are not looked at: their clash shows at listen() (documented).
bool listener_holds(Host& h, const sockaddr_in& a, bool reuseport) {
  auto clash = [&](const Socket& l) {
    const uint32_t x = l.local.sin_addr.s_addr, y = a.sin_addr.s_addr;
    return l.local.sin_port == a.sin_port && a.sin_port != 0 && (x == 0 || y == 0 || x == y) &&
           !(reuseport && l.opt.reuseport);
  };
  for (const Socket* l : h.listeners)
    if (clash(*l)) return true;
  for (const auto& w : h.pending_listeners)
    if (auto l = w.lock(); l && l->state == Socket::State::listening && clash(*l)) return true;
  return false;
}

// Ends a listener's listening: its queued connections are reset, as at close.
void stop_listening(Socket& s) {
  Host& h = Host::get();
  if (h.started() && s.lst.valid()) {
    (void)s.lst.close();
    std::erase(h.listeners, &s);
  }
  s.lst = Listener{};
  for (auto& c : s.accept_q) {
    c->opt.linger_on = true;
    c->opt.linger_s = 0;
  }
  s.accept_q.clear();
  s.state = Socket::State::bound;
  s.notify();
}

int do_accept(int fd, sockaddr* addr, socklen_t* len, int flags) {
  if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) return fail(EINVAL);
  Host& h = Host::get();
  std::shared_ptr<Socket> child;
  {
    Host::Guard g;
    auto s = FdTable::get().as<Socket>(fd);
    if (!s) return fail(ENOTSOCK);
    if (h.forked_away()) return fail(EBADF);
    if (!s->keel) return libc().accept4(fd, addr, len, flags);
    if (!s->is_stream()) return fail(EOPNOTSUPP);
    if (s->state != Socket::State::listening) return fail(EINVAL);
    h.start();
    h.poll();
    for (;;) {
      if (s->state != Socket::State::listening) return fail(EINVAL);  // shut down meanwhile
      if (!s->accept_q.empty()) {
        child = std::move(s->accept_q.front());
        s->accept_q.pop_front();
        break;
      }
      if (int e = s->so_error) return fail(e);
      if (s->nonblock) return fail(EAGAIN);
      int rc = h.wait_restartable(g.lock(), [&] { return !s->accept_q.empty() || s->so_error != 0 || s->state != Socket::State::listening; },
                                  s->opt.rcvtimeo_ns);
      if (rc != 0) return fail(rc == ETIMEDOUT ? EAGAIN : rc);  // SO_RCVTIMEO, as Linux
    }
    const int nfd = libc().socket(AF_INET, SOCK_STREAM | (flags & (SOCK_NONBLOCK | SOCK_CLOEXEC)), 0);
    if (nfd < 0) {
      s->accept_q.push_front(std::move(child));
      return -1;
    }
    child->nonblock = flags & SOCK_NONBLOCK;
    if (!FdTable::get().put(nfd, child)) {
      libc().close(nfd);
      return fail(EMFILE);
    }
    if (auto p = child->conn.peer()) copy_out(to_sockaddr(*p), addr, len);
    else if (len != nullptr) {
      sockaddr_in none{};
      none.sin_family = AF_INET;
      copy_out(none, addr, len);
    }
    return nfd;
  }
}

// As Linux: a shorter buffer gets the value's first bytes; a negative length is EINVAL.
int getsockopt_int(void* val, socklen_t* len, int v) {
  if (val == nullptr || len == nullptr) return fail(EFAULT);
  if (int(*len) < 0) return fail(EINVAL);
  const socklen_t k = std::min<socklen_t>(*len, sizeof v);
  std::memcpy(val, &v, k);
  *len = k;
  return 0;
}

}  // namespace

extern "C" {

int socket(int domain, int type, int protocol) {
  const int fd = libc().socket(domain, type, protocol);
  if (fd < 0 || bypass() || !inet_stream_or_dgram(domain, type)) return fd;
  const int t = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (protocol != 0 && protocol != (t == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP)) return fd;
  Host::Guard g;
  auto s = std::make_shared<Socket>(t);
  s->nonblock = type & SOCK_NONBLOCK;
  if (!FdTable::get().put(fd, std::move(s))) return fd;  // beyond the table: the kernel's
  return fd;
}

int bind(int fd, const sockaddr* addr, socklen_t len) {
  if (passthrough(fd)) return libc().bind(fd, addr, len);
  Host& h = Host::get();
  Host::Guard g;
  auto s = FdTable::get().as<Socket>(fd);
  if (!s) return fail(ENOTSOCK);
  if (s->keel || s->state != Socket::State::fresh) {
    if (!s->keel) return libc().bind(fd, addr, len);
    return fail(EINVAL);  // bound already
  }
  sockaddr_in a;
  if (!read_sockaddr(addr, len, a)) return libc().bind(fd, addr, len);  // the kernel says why
  const uint32_t ip = ntohl(a.sin_addr.s_addr);
  if (ip != 0 && (h.kernel_address(ip) || !h.own_address(ip))) {
    // 127.0.0.0/8, KEEL_KERNEL_ADDRS and addresses keel does not have stay the kernel's.
    FdTable::get().take(fd);
    return libc().bind(fd, addr, len);
  }
  if (h.forked_away()) return fail(EADDRNOTAVAIL);
  if (s->is_stream() && listener_holds(h, a, s->opt.reuseport)) return fail(EADDRINUSE);
  s->keel = true;
  s->local = a;
  s->state = Socket::State::bound;
  if (!s->is_stream()) return dgram_ensure_bound(*s);
  return 0;
}

int listen(int fd, int backlog) {
  if (passthrough(fd)) return libc().listen(fd, backlog);
  Host& h = Host::get();
  Host::Guard g;
  auto s = FdTable::get().as<Socket>(fd);
  if (!s) return fail(ENOTSOCK);
  if (!s->keel) {
    // listen() without bind(): every address, an ephemeral port, on keel.
    if (s->state != Socket::State::fresh || !s->is_stream()) return libc().listen(fd, backlog);
    s->keel = true;
    s->local = sockaddr_in{};
    s->local.sin_family = AF_INET;
    s->state = Socket::State::bound;
  }
  if (!s->is_stream()) return fail(EOPNOTSUPP);
  s->backlog = backlog <= 0 ? 1 : std::min(backlog, 65535);
  if (s->state == Socket::State::listening) return 0;
  if (s->state != Socket::State::bound) return fail(EINVAL);
  if (h.forked_away()) return fail(EADDRNOTAVAIL);
  s->state = Socket::State::listening;
  if (s->local.sin_port == 0) {
    h.start();  // port 0: keel picks one now
    uint16_t p = ephemeral_listen_port(h, *s);
    if (p == 0) return fail(EADDRINUSE);
    s->local.sin_port = htons(p);
  }
  if (!h.started()) {
    h.pending_listeners.push_back(s);
    return 0;
  }
  realize_listener(*s);
  if (!s->lst.valid()) {
    s->state = Socket::State::bound;
    int e = s->so_error;
    s->so_error = 0;
    return fail(e);
  }
  return 0;
}

int accept(int fd, sockaddr* addr, socklen_t* len) {
  if (passthrough(fd)) return libc().accept(fd, addr, len);
  return do_accept(fd, addr, len, 0);
}

int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  if (passthrough(fd)) return libc().accept4(fd, addr, len, flags);
  return do_accept(fd, addr, len, flags);
}

int connect(int fd, const sockaddr* addr, socklen_t len) {
  if (passthrough(fd)) return libc().connect(fd, addr, len);
  Host& h = Host::get();
  Host::Guard g;
  auto s = FdTable::get().as<Socket>(fd);
  if (!s) return fail(ENOTSOCK);
  sockaddr_in a;
  const bool inet = read_sockaddr(addr, len, a);
  if (!s->is_stream()) {
    // Datagram: a default peer (AF_UNSPEC dissolves it).
    if (!s->keel) {
      if (!inet || h.kernel_address(ntohl(a.sin_addr.s_addr))) {
        if (release_to_kernel(fd, *s) != 0) return -1;
        return libc().connect(fd, addr, len);
      }
    }
    if (dgram_ensure_bound(*s) != 0) return -1;
    if (addr != nullptr && len >= socklen_t(sizeof(sa_family_t)) && addr->sa_family == AF_UNSPEC) {
      (void)s->udp.connect(Endpoint{});
      s->udp_connected = false;
      return 0;
    }
    if (!inet) return fail(EAFNOSUPPORT);
    if (auto r = s->udp.connect(to_endpoint(a)); !r) return fail(to_errno(r.error()));
    s->udp_connected = true;
    s->udp_peer = a;
    return 0;
  }
  switch (s->state) {
    case Socket::State::connecting: return fail(EALREADY);
    case Socket::State::connected:
    case Socket::State::ended:
      // As Linux: after a non-blocking connect, the first connect() that sees it done says 0.
      if (s->connect_pending) {
        s->connect_pending = false;
        return 0;
      }
      return fail(EISCONN);
    case Socket::State::listening: return fail(EISCONN);
    case Socket::State::failed:
      s->connect_pending = false;
      if (int e = s->so_error) {
        s->so_error = 0;
        return fail(e);
      }
      // The failure was reported: as Linux, the socket may connect again.
      s->conn = Connection{};
      s->state = s->local.sin_family == AF_INET ? Socket::State::bound : Socket::State::fresh;
      break;
    default: break;
  }
  if (!inet) {
    if (!s->keel) {
      if (release_to_kernel(fd, *s) != 0) return -1;
      return libc().connect(fd, addr, len);
    }
    return fail(addr != nullptr && len >= socklen_t(sizeof(sa_family_t)) ? EAFNOSUPPORT : EINVAL);
  }
  const uint32_t dst = ntohl(a.sin_addr.s_addr);
  if (h.kernel_address(dst)) {
    if (release_to_kernel(fd, *s) != 0) return -1;
    return libc().connect(fd, addr, len);
  }
  if (h.forked_away()) return fail(ENETUNREACH);
  h.start();
  s->keel = true;
  ConnectOptions co;
  if (s->local.sin_family == AF_INET) {
    co.local_addr = Ipv4Address{ntohl(s->local.sin_addr.s_addr)};
    co.local_port = ntohs(s->local.sin_port);
  }
  co.nodelay = s->opt.nodelay;
  co.user = reinterpret_cast<uint64_t>(s.get());
  Stack st(&h.core());
  auto c = st.connect(to_endpoint(a), co);
  if (!c) {
    s->state = Socket::State::failed;
    return fail(c.error() == Errc::not_supported ? ENETUNREACH : to_errno(c.error()));
  }
  s->conn = *c;
  s->state = Socket::State::connecting;
  h.poll();  // a channel (intra-node) may connect at once
  if (s->nonblock) {
    // As Linux with a remote peer: EINPROGRESS even when the poll above finished the
    // handshake (over a tap the kernel answers within it) or the peer refused; epoll,
    // poll, select and SO_ERROR then report the outcome.
    s->connect_pending = true;
    return fail(EINPROGRESS);
  }
  if (s->state == Socket::State::connecting) {
    int rc = h.wait_restartable(g.lock(), [&] { return s->state != Socket::State::connecting; }, s->opt.sndtimeo_ns);
    if (rc == ETIMEDOUT) return fail(EINPROGRESS);  // COMPAT(linux): SO_SNDTIMEO on connect
    if (rc != 0) return fail(rc);
  }
  if (s->state == Socket::State::failed) {
    int e = s->so_error ? s->so_error : ECONNREFUSED;
    s->so_error = 0;
    return fail(e);
  }
  return 0;
}

int close(int fd) {
  if (passthrough(fd)) return libc().close(fd);
  {
    Host::Guard g;
    auto f = FdTable::get().take(fd);
    f.reset();  // the last reference closes the keel socket, mu held
  }
  return libc().close(fd);
}

int shutdown(int fd, int how) {
  if (passthrough(fd)) return libc().shutdown(fd, how);
  Host::Guard g;
  auto s = FdTable::get().as<Socket>(fd);
  if (!s) return fail(ENOTSOCK);
  if (!s->keel) return libc().shutdown(fd, how);
  if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR) return fail(EINVAL);
  if (Host::get().forked_away()) return fail(EBADF);
  if (!s->is_stream()) return s->udp_connected ? 0 : fail(ENOTCONN);
  if (s->state == Socket::State::listening) {
    // As Linux: SHUT_RD or SHUT_RDWR stops the listener (a blocked accept says EINVAL,
    // listen() may start it again); SHUT_WR does nothing.
    if (how != SHUT_WR) stop_listening(*s);
    return 0;
  }
  if (s->state != Socket::State::connected && s->state != Socket::State::ended &&
      s->state != Socket::State::connecting)
    return fail(ENOTCONN);
  if (how != SHUT_WR) s->rd_shut = true;
  if (how != SHUT_RD && !s->wr_shut) {
    s->wr_shut = true;
    if (s->state != Socket::State::ended) (void)s->conn.shutdown();
  }
  s->notify();
  return 0;
}

static int do_fcntl(int fd, int cmd, long arg) {
  if (passthrough(fd)) return libc().fcntl(fd, cmd, arg);
  Host::Guard g;
  auto f = FdTable::get().file(fd);
  if (!f) return libc().fcntl(fd, cmd, arg);
  switch (cmd) {
    case F_GETFL: {
      int fl = libc().fcntl(fd, F_GETFL);
      if (fl < 0) return fl;
      return (fl & ~O_NONBLOCK) | (f->nonblock ? O_NONBLOCK : 0);
    }
    case F_SETFL: {
      int rc = libc().fcntl(fd, F_SETFL, arg);
      if (rc == 0) f->nonblock = arg & O_NONBLOCK;
      return rc;
    }
    case F_DUPFD:
    case F_DUPFD_CLOEXEC: {
      int nfd = libc().fcntl(fd, cmd, arg);
      if (nfd >= 0 && !FdTable::get().put(nfd, f)) {
        libc().close(nfd);
        return fail(EMFILE);
      }
      return nfd;
    }
    default:
      return libc().fcntl(fd, cmd, arg);
  }
}

int fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  long arg = va_arg(ap, long);
  va_end(ap);
  return do_fcntl(fd, cmd, arg);
}
// With _FILE_OFFSET_BITS=64 fcntl() above is the symbol fcntl64; this is plain fcntl.
int keel_fcntl_plain(int fd, int cmd, ...) __asm__("fcntl");
int keel_fcntl_plain(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  long arg = va_arg(ap, long);
  va_end(ap);
  return do_fcntl(fd, cmd, arg);
}

int ioctl(int fd, unsigned long req, ...) {
  va_list ap;
  va_start(ap, req);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  if (passthrough(fd)) return libc().ioctl(fd, req, arg);
  Host::Guard g;
  auto f = FdTable::get().file(fd);
  auto s = FdTable::get().as<Socket>(fd);
  if (req == FIONBIO && f) {
    if (arg == nullptr) return fail(EFAULT);
    int on;
    std::memcpy(&on, arg, sizeof on);
    f->nonblock = on != 0;
    return libc().ioctl(fd, req, arg);
  }
  if (req == FIONREAD && s && s->keel) {
    if (arg == nullptr) return fail(EFAULT);
    Host& h = Host::get();
    if (h.forked_away()) return fail(EBADF);
    h.start();
    h.poll();
    int n = int(s->stash.size());
    if (s->is_stream()) {
      if (s->state == Socket::State::listening) return fail(EINVAL);
      n += int(s->conn.readable_bytes().value_or(0));
    } else if (!s->dgram_held && s->udp.valid() && s->udp.queued().value_or(0) > 0) {
      // COMPAT(linux): the size of the next datagram; peek at it.
      std::string tmp(UdpSocket::max_payload, '\0');
      if (auto d = s->udp.recv_copy(tmp.data(), tmp.size())) {
        s->stash.assign(tmp.data(), d->copied);
        s->dgram_held = true;
        n = int(d->copied);
      }
    }
    std::memcpy(arg, &n, sizeof n);
    return 0;
  }
  return libc().ioctl(fd, req, arg);
}

int dup(int fd) {
  if (passthrough(fd)) return libc().dup(fd);
  Host::Guard g;
  auto f = FdTable::get().file(fd);
  int nfd = libc().dup(fd);
  if (nfd >= 0 && f && !FdTable::get().put(nfd, f)) {
    libc().close(nfd);
    return fail(EMFILE);
  }
  return nfd;
}

static int do_dup3(int fd, int nfd, int flags, bool is_dup2) {
  if (bypass() ||
      (FdTable::get().kind(fd) == Kind::none && FdTable::get().kind(nfd) == Kind::none))
    return is_dup2 ? libc().dup2(fd, nfd) : libc().dup3(fd, nfd, flags);
  Host::Guard g;
  if (fd == nfd) return is_dup2 ? libc().dup2(fd, nfd) : fail(EINVAL);
  auto f = FdTable::get().file(fd);
  int rc = is_dup2 ? libc().dup2(fd, nfd) : libc().dup3(fd, nfd, flags);
  if (rc < 0) return rc;
  auto old = FdTable::get().take(nfd);  // the kernel closed what nfd was
  old.reset();
  if (f && !FdTable::get().put(nfd, f)) return fail(EMFILE);
  return rc;
}
int dup2(int fd, int nfd) { return do_dup3(fd, nfd, 0, true); }
int dup3(int fd, int nfd, int flags) { return do_dup3(fd, nfd, flags, false); }

int setsockopt(int fd, int level, int name, const void* val, socklen_t len) {
  if (passthrough(fd)) return libc().setsockopt(fd, level, name, val, len);
  Host::Guard g;
  auto s = FdTable::get().as<Socket>(fd);
  if (!s) return libc().setsockopt(fd, level, name, val, len);
  if (s->keel && Host::get().forked_away()) return fail(EBADF);  // the parent's stack's
  // Undecided: the kernel socket takes it too (and says whether it is valid).
  if (!s->keel) {
    int rc = libc().setsockopt(fd, level, name, val, len);
    if (rc != 0) return rc;
  }
  if (val == nullptr) return fail(EFAULT);
  int iv = 0;
  const bool has_int = len >= socklen_t(sizeof(int));
  if (has_int) std::memcpy(&iv, val, sizeof iv);
  SockOptions& o = s->opt;
  const bool live = s->keel && s->is_stream() && s->conn.valid() &&
                    (s->state == Socket::State::connected || s->state == Socket::State::connecting);
  auto need_int = [&] { return has_int ? 0 : fail(EINVAL); };
  if (level == SOL_SOCKET) {
    switch (name) {
      case SO_REUSEADDR: if (need_int()) return -1; o.reuseaddr = iv; return 0;
      case SO_REUSEPORT: if (need_int()) return -1; o.reuseport = iv; return 0;
      case SO_BROADCAST: if (need_int()) return -1; o.broadcast = iv; return 0;
      case SO_KEEPALIVE:
        if (need_int()) return -1;
        o.keepalive = iv;
        if (live) (void)s->conn.set_keepalive(iv != 0);
        return 0;
      case SO_SNDBUF:
      case SO_RCVBUF:
        if (need_int()) return -1;
        if (iv < 0) return fail(EINVAL);
        (name == SO_SNDBUF ? o.sndbuf : o.rcvbuf) = std::max(iv, 1024);
        if (live) {
          if (name == SO_SNDBUF) (void)s->conn.set_send_buffer(uint32_t(o.sndbuf));
          else (void)s->conn.set_receive_buffer(uint32_t(o.rcvbuf));
        }
        return 0;
      case SO_LINGER: {
        if (len < socklen_t(sizeof(linger))) return fail(EINVAL);
        linger l;
        std::memcpy(&l, val, sizeof l);
        o.linger_on = l.l_onoff != 0;
        o.linger_s = l.l_linger;
        return 0;
      }
      case SO_RCVTIMEO:
      case SO_SNDTIMEO: {
        int64_t ns = timeval_ns(val, len);
        if (ns == -2) return fail(len < socklen_t(sizeof(timeval)) ? EINVAL : EDOM);
        (name == SO_RCVTIMEO ? o.rcvtimeo_ns : o.sndtimeo_ns) = ns;
        return 0;
      }
      case SO_RCVLOWAT: case SO_SNDLOWAT: case SO_OOBINLINE: case SO_PRIORITY: case SO_TIMESTAMP:
      case SO_DONTROUTE:
        return need_int();  // accepted; keel has no such knob (documented)
      default:
        return fail(ENOPROTOOPT);
    }
  }
  if (level == IPPROTO_TCP && s->is_stream()) {
    switch (name) {
      case TCP_NODELAY:
        if (need_int()) return -1;
        o.nodelay = iv;
        if (live) (void)s->conn.set_nodelay(iv != 0);
        return 0;
      case TCP_KEEPIDLE:
      case TCP_KEEPINTVL:
      case TCP_KEEPCNT: {
        if (need_int()) return -1;
        const int hi = name == TCP_KEEPCNT ? 127 : 32767;
        if (iv < 1 || iv > hi) return fail(EINVAL);
        (name == TCP_KEEPIDLE ? o.keepidle : name == TCP_KEEPINTVL ? o.keepintvl : o.keepcnt) = iv;
        if (live)
          (void)s->conn.set_keepalive_timing(uint32_t(o.keepidle) * 1000, uint32_t(o.keepintvl) * 1000,
                                             uint8_t(o.keepcnt));
        return 0;
      }
      case TCP_CONGESTION: {
        std::string cc(static_cast<const char*>(val), strnlen(static_cast<const char*>(val), len));
        if (cc != "cubic" && cc != "newreno" && cc != "reno") return fail(ENOENT);
        o.cc = cc == "reno" ? "newreno" : cc;
        if (live) (void)s->conn.set_congestion_control(o.cc);
        return 0;
      }
      case TCP_QUICKACK: case TCP_CORK: case TCP_DEFER_ACCEPT: case TCP_USER_TIMEOUT: case TCP_WINDOW_CLAMP:
        return need_int();  // accepted; keel has no such knob (documented)
      default:
        return fail(ENOPROTOOPT);
    }
  }
  if (level == IPPROTO_IP) {
    switch (name) {
      case IP_TOS: if (need_int()) return -1; o.tos = iv & 0xff; return 0;
      case IP_TTL: if (need_int()) return -1; if (iv < -1 || iv > 255) return fail(EINVAL); o.ttl = iv; return 0;
      default: return fail(ENOPROTOOPT);
    }
  }
  if (level == IPPROTO_UDP && !s->is_stream()) return fail(ENOPROTOOPT);
  return fail(ENOPROTOOPT);
}

int getsockopt(int fd, int level, int name, void* val, socklen_t* len) {
  if (passthrough(fd)) return libc().getsockopt(fd, level, name, val, len);
  Host::Guard g;
  auto s = FdTable::get().as<Socket>(fd);
  if (!s || !s->keel) return libc().getsockopt(fd, level, name, val, len);
  if (Host::get().forked_away()) return fail(EBADF);
  if (val == nullptr || len == nullptr) return fail(EFAULT);
  const Config& cfg = Host::get().config();
  const SockOptions& o = s->opt;
  if (level == SOL_SOCKET) {
    switch (name) {
      case SO_ERROR: {
        Host::get().poll();
        int e = s->so_error;
        s->so_error = 0;
        return getsockopt_int(val, len, e);
      }
      case SO_TYPE: return getsockopt_int(val, len, s->type);
      case SO_DOMAIN: return getsockopt_int(val, len, AF_INET);
      case SO_PROTOCOL: return getsockopt_int(val, len, s->is_stream() ? IPPROTO_TCP : IPPROTO_UDP);
      case SO_ACCEPTCONN: return getsockopt_int(val, len, s->state == Socket::State::listening);
      case SO_REUSEADDR: return getsockopt_int(val, len, o.reuseaddr);
      case SO_REUSEPORT: return getsockopt_int(val, len, o.reuseport);
      case SO_KEEPALIVE: return getsockopt_int(val, len, o.keepalive);
      case SO_BROADCAST: return getsockopt_int(val, len, o.broadcast);
      // COMPAT(linux): the kernel reports twice what was set (its bookkeeping overhead).
      case SO_SNDBUF: return getsockopt_int(val, len, 2 * (o.sndbuf ? o.sndbuf : int(cfg.tcp.send_buffer / 2)));
      case SO_RCVBUF: return getsockopt_int(val, len, 2 * (o.rcvbuf ? o.rcvbuf : int(cfg.tcp.receive_buffer / 2)));
      case SO_LINGER: {
        if (*len < socklen_t(sizeof(linger))) return fail(EINVAL);
        linger l{o.linger_on, o.linger_s};
        std::memcpy(val, &l, sizeof l);
        *len = sizeof l;
        return 0;
      }
      case SO_RCVTIMEO:
      case SO_SNDTIMEO: {
        if (*len < socklen_t(sizeof(timeval))) return fail(EINVAL);
        int64_t ns = name == SO_RCVTIMEO ? o.rcvtimeo_ns : o.sndtimeo_ns;
        timeval tv{};
        if (ns > 0) tv = timeval{time_t(ns / 1'000'000'000), suseconds_t(ns % 1'000'000'000 / 1000)};
        std::memcpy(val, &tv, sizeof tv);
        *len = sizeof tv;
        return 0;
      }
      default: return fail(ENOPROTOOPT);
    }
  }
  if (level == IPPROTO_TCP && s->is_stream()) {
    ConnectionInfo ci;
    if (s->conn.valid())
      if (auto i = s->conn.info()) ci = *i;
    switch (name) {
      case TCP_NODELAY: return getsockopt_int(val, len, o.nodelay);
      case TCP_MAXSEG: return getsockopt_int(val, len, ci.mss ? int(ci.mss) : 536);
      case TCP_KEEPIDLE: return getsockopt_int(val, len, o.keepidle ? o.keepidle : int(cfg.tcp.keepalive_idle_ms / 1000));
      case TCP_KEEPINTVL:
        return getsockopt_int(val, len, o.keepintvl ? o.keepintvl : int(cfg.tcp.keepalive_interval_ms / 1000));
      case TCP_KEEPCNT: return getsockopt_int(val, len, o.keepcnt ? o.keepcnt : int(cfg.tcp.keepalive_count));
      case TCP_CONGESTION: {
        std::string cc = !o.cc.empty() ? o.cc : *ci.cc ? std::string(ci.cc) : cfg.tcp.congestion_control;
        size_t k = std::min<size_t>(*len, cc.size() + 1);
        std::memcpy(val, cc.c_str(), k);
        *len = socklen_t(k);
        return 0;
      }
      case TCP_INFO: {
        tcp_info ti{};
        const std::string st = ci.state;
        ti.tcpi_state = st == "established" ? TCP_ESTABLISHED : st == "syn-sent" ? TCP_SYN_SENT
                      : st == "syn-received" ? TCP_SYN_RECV : st == "fin-wait-1" ? TCP_FIN_WAIT1
                      : st == "fin-wait-2" ? TCP_FIN_WAIT2 : st == "time-wait" ? TCP_TIME_WAIT
                      : st == "close-wait" ? TCP_CLOSE_WAIT : st == "last-ack" ? TCP_LAST_ACK
                      : st == "closing" ? TCP_CLOSING
                      : s->state == Socket::State::listening ? TCP_LISTEN : TCP_CLOSE;
        ti.tcpi_rto = uint32_t(ci.rto_us);
        ti.tcpi_snd_mss = ti.tcpi_rcv_mss = ci.mss;
        ti.tcpi_rtt = uint32_t(ci.srtt_us);
        ti.tcpi_snd_cwnd = ci.mss ? ci.cwnd / ci.mss : 0;
        ti.tcpi_snd_ssthresh = ci.mss ? std::min<uint32_t>(ci.ssthresh / ci.mss, 0x7fffffff) : 0;
        ti.tcpi_total_retrans = ci.retransmits;
        ti.tcpi_unacked = ci.mss ? ci.send_queued / ci.mss : 0;
        size_t k = std::min<size_t>(*len, sizeof ti);
        std::memcpy(val, &ti, k);
        *len = socklen_t(k);
        return 0;
      }
      default: return fail(ENOPROTOOPT);
    }
  }
  if (level == IPPROTO_IP) {
    switch (name) {
      case IP_TOS: return getsockopt_int(val, len, o.tos);
      case IP_TTL: return getsockopt_int(val, len, o.ttl);
      default: return fail(ENOPROTOOPT);
    }
  }
  return fail(ENOPROTOOPT);
}

int getsockname(int fd, sockaddr* addr, socklen_t* len) {
  if (passthrough(fd)) return libc().getsockname(fd, addr, len);
  Host::Guard g;
  auto s = FdTable::get().as<Socket>(fd);
  if (!s || !s->keel) return libc().getsockname(fd, addr, len);
  if (Host::get().forked_away()) return fail(EBADF);
  if (addr == nullptr || len == nullptr) return fail(EFAULT);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  if (s->is_stream() && s->conn.valid() && s->state != Socket::State::failed) {
    if (auto l = s->conn.local()) a = to_sockaddr(*l);
  } else if (s->local.sin_family == AF_INET) {
    a = s->local;
  }
  copy_out(a, addr, len);
  return 0;
}

int getpeername(int fd, sockaddr* addr, socklen_t* len) {
  if (passthrough(fd)) return libc().getpeername(fd, addr, len);
  Host::Guard g;
  auto s = FdTable::get().as<Socket>(fd);
  if (!s || !s->keel) return libc().getpeername(fd, addr, len);
  if (Host::get().forked_away()) return fail(EBADF);
  if (addr == nullptr || len == nullptr) return fail(EFAULT);
  if (!s->is_stream()) {
    if (!s->udp_connected) return fail(ENOTCONN);
    copy_out(s->udp_peer, addr, len);
    return 0;
  }
  if ((s->state != Socket::State::connected && s->state != Socket::State::ended) || !s->conn.valid())
    return fail(ENOTCONN);
  auto p = s->conn.peer();
  if (!p) return fail(ENOTCONN);
  copy_out(to_sockaddr(*p), addr, len);
  return 0;
}

}  // extern "C"
