// SPDX-License-Identifier: BSD-3-Clause
// read/write semantics of keel sockets: blocking and non-blocking, EOF,
// resets, half-close, MSG_PEEK/WAITALL/DONTWAIT, datagrams.
#include <algorithm>
#include <cstring>
#include <vector>

#include "api/stack_core.hpp"
#include "preload/libc.hpp"
#include "preload/ops.hpp"

namespace keel::preload {

void copy_out(const sockaddr_in& a, sockaddr* out, socklen_t* len) {
  if (out == nullptr || len == nullptr) return;
  std::memcpy(out, &a, std::min<size_t>(*len, sizeof a));
  *len = sizeof a;
}

int release_to_kernel(int fd, Socket& s) {
  if (s.local.sin_family == AF_INET &&
      libc().bind(fd, reinterpret_cast<const sockaddr*>(&s.local), sizeof s.local) != 0)
    return -1;
  auto f = FdTable::get().take(fd);  // dropped here, mu held
  return 0;
}

namespace {

bool nonblocking(const Socket& s, int flags) { return s.nonblock || (flags & MSG_DONTWAIT); }

// Takes a pending error (SO_ERROR semantics: reported once).
int take_error(Socket& s) {
  int e = s.so_error;
  s.so_error = 0;
  return e;
}

}  // namespace

ssize_t stream_recv(Host::Guard& g, Socket& s, void* buf, size_t n, int flags) {
  Host& h = Host::get();
  switch (s.state) {
    case Socket::State::fresh:
    case Socket::State::bound:
    case Socket::State::listening:
      return fail(ENOTCONN);
    case Socket::State::failed:
      if (int e = take_error(s)) return fail(e);
      return fail(ENOTCONN);
    default:
      break;
  }
  auto* out = static_cast<uint8_t*>(buf);
  size_t got = 0;
  const bool peek = flags & MSG_PEEK;
  const bool waitall = (flags & MSG_WAITALL) && !peek;
  for (;;) {
    if (s.state == Socket::State::connecting) {
      // COMPAT(linux): reading a socket still connecting waits for the handshake.
    } else if (!s.stash.empty()) {
      size_t k = std::min(n - got, s.stash.size());
      std::memcpy(out + got, s.stash.data(), k);
      if (!peek) s.stash.erase(0, k);
      got += k;
      if (peek) return ssize_t(got);
    } else if (s.rd_shut) {
      return ssize_t(got);
    } else {
      void* dst = out + got;
      std::string tmp;
      if (peek) {
        tmp.resize(n - got);
        dst = tmp.data();
      }
      auto r = s.conn_live() ? s.conn.read(dst, n - got) : Result<size_t>(Unexpected<Errc>{Errc::bad_handle});
      if (r && *r > 0) {
        if (peek) {
          s.stash.assign(tmp.data(), *r);
          std::memcpy(out + got, tmp.data(), *r);
          return ssize_t(got + *r);
        }
        got += *r;
      } else if (r) {
        return ssize_t(got);  // end of stream
      } else if (r.error() != Errc::would_block) {
        // The connection is gone: report its reset once, then end of stream.
        if (got > 0) return ssize_t(got);
        if (int e = take_error(s)) return fail(e);
        return 0;
      } else if (s.state == Socket::State::ended) {
        if (got > 0) return ssize_t(got);
        if (int e = take_error(s)) return fail(e);
        return 0;
      }
    }
    if (got == n || (got > 0 && !waitall)) return ssize_t(got);
    if (nonblocking(s, flags)) return got > 0 ? ssize_t(got) : fail(EAGAIN);
    int rc = h.wait_restartable(g.lock(), [&] { return (s.ready_mask() & (EPOLLIN | EPOLLERR)) != 0; },
                                s.opt.rcvtimeo_ns);
    if (rc != 0) return got > 0 ? ssize_t(got) : fail(rc == ETIMEDOUT ? EAGAIN : rc);
  }
}

ssize_t stream_send(Host::Guard& g, Socket& s, const void* buf, size_t n, int flags, bool& sigpipe) {
  Host& h = Host::get();
  auto epipe = [&] {
    if (!(flags & MSG_NOSIGNAL)) sigpipe = true;
    return fail(EPIPE);
  };
  switch (s.state) {
    case Socket::State::fresh:
    case Socket::State::bound:
    case Socket::State::listening:
      return epipe();  // COMPAT(linux): EPIPE on a never-connected stream socket
    case Socket::State::failed:
      if (int e = take_error(s)) return fail(e);
      return epipe();
    default:
      break;
  }
  const auto* p = static_cast<const uint8_t*>(buf);
  size_t done = 0;
  for (;;) {
    if (s.state == Socket::State::connecting) {
      // waits below for the handshake
    } else if (s.wr_shut) {
      return done > 0 ? ssize_t(done) : epipe();
    } else if (s.state == Socket::State::ended) {
      if (done > 0) return ssize_t(done);
      if (int e = take_error(s)) return fail(e);
      return epipe();
    } else {
      if (n == 0) return 0;
      auto r = s.conn.write(p + done, n - done);
      if (r) {
        done += *r;
        if (done == n) return ssize_t(n);
      } else if (r.error() != Errc::would_block) {
        if (done > 0) return ssize_t(done);
        if (r.error() == Errc::connection_reset) return fail(ECONNRESET);
        return epipe();
      }
    }
    s.arm_writable();  // also when not blocking: the program's epoll waits for EPOLLOUT
    if (nonblocking(s, flags)) return done > 0 ? ssize_t(done) : fail(EAGAIN);
    int rc = h.wait_restartable(
        g.lock(), [&] { return (s.ready_mask() & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0; }, s.opt.sndtimeo_ns);
    if (rc != 0) return done > 0 ? ssize_t(done) : fail(rc == ETIMEDOUT ? EAGAIN : rc);
  }
}

ssize_t stream_recv_iov(Host::Guard& g, Socket& s, const iovec* iov, int cnt, int flags) {
  if (cnt < 0 || cnt > IOV_MAX) return fail(EINVAL);
  ssize_t total = 0;
  for (int i = 0; i < cnt; ++i) {
    if (iov[i].iov_len == 0) continue;
    // Only the first piece may wait: the rest takes what is there.
    ssize_t r = stream_recv(g, s, iov[i].iov_base, iov[i].iov_len, flags | (total > 0 ? MSG_DONTWAIT : 0));
    if (r < 0) return total > 0 ? total : -1;
    total += r;
    if (size_t(r) < iov[i].iov_len) break;
  }
  return total;
}

ssize_t stream_send_iov(Host::Guard& g, Socket& s, const iovec* iov, int cnt, int flags, bool& sigpipe) {
  if (cnt < 0 || cnt > IOV_MAX) return fail(EINVAL);
  ssize_t total = 0;
  for (int i = 0; i < cnt; ++i) {
    if (iov[i].iov_len == 0) continue;
    ssize_t r = stream_send(g, s, iov[i].iov_base, iov[i].iov_len, flags, sigpipe);
    if (r < 0) {
      if (total > 0) sigpipe = false;
      return total > 0 ? total : -1;
    }
    total += r;
    if (size_t(r) < iov[i].iov_len) break;
  }
  return total;
}

int dgram_ensure_bound(Socket& s) {
  Host& h = Host::get();
  h.start();
  if (s.udp.valid()) return 0;
  Endpoint at{};
  if (s.local.sin_family == AF_INET) at = to_endpoint(s.local);
  Stack st(&h.core());
  auto u = st.udp_bind(at);
  if (!u) return fail(to_errno(u.error()));
  s.udp = *u;
  s.keel = true;
  (void)s.udp.set_user(reinterpret_cast<uint64_t>(&s));
  if (auto l = s.udp.local()) s.local = to_sockaddr(*l);
  return 0;
}

ssize_t dgram_recv(Host::Guard& g, Socket& s, const iovec* iov, int cnt, int flags, sockaddr* from,
                   socklen_t* fromlen, int* msg_flags) {
  Host& h = Host::get();
  if (dgram_ensure_bound(s) != 0) return -1;
  size_t cap = 0;
  for (int i = 0; i < cnt; ++i) cap += iov[i].iov_len;
  std::vector<uint8_t> tmp(UdpSocket::max_payload);
  for (;;) {
    if (int e = take_error(s)) return fail(e);
    if (!s.dgram_held) {
      auto d = s.udp.recv_copy(tmp.data(), tmp.size());
      if (d) {
        s.dgram_held = true;
        s.stash.assign(reinterpret_cast<char*>(tmp.data()), d->copied);
        if (from != nullptr) copy_out(to_sockaddr(d->from), from, fromlen);
        else if (fromlen != nullptr) *fromlen = 0;
      } else if (d.error() != Errc::would_block) {
        return fail(to_errno(d.error()));
      }
    }
    if (s.dgram_held) break;
    if (nonblocking(s, flags)) return fail(EAGAIN);
    int rc = h.wait_restartable(g.lock(), [&] { return (s.ready_mask() & (EPOLLIN | EPOLLERR)) != 0; },
                                s.opt.rcvtimeo_ns);
    if (rc != 0) return fail(rc == ETIMEDOUT ? EAGAIN : rc);
  }
  const size_t len = s.stash.size();
  size_t off = 0;
  for (int i = 0; i < cnt && off < len; ++i) {
    size_t k = std::min(iov[i].iov_len, len - off);
    std::memcpy(iov[i].iov_base, s.stash.data() + off, k);
    off += k;
  }
  if (msg_flags != nullptr) *msg_flags = len > cap ? MSG_TRUNC : 0;
  if (!(flags & MSG_PEEK)) s.stash.clear(), s.dgram_held = false;
  return ssize_t((flags & MSG_TRUNC) ? len : off);
}

ssize_t dgram_send(Host::Guard&, int, Socket& s, const iovec* iov, int cnt, int, const sockaddr* to,
                   socklen_t tolen) {
  if (dgram_ensure_bound(s) != 0) return -1;
  std::vector<uint8_t> tmp;
  for (int i = 0; i < cnt; ++i) {
    const auto* b = static_cast<const uint8_t*>(iov[i].iov_base);
    tmp.insert(tmp.end(), b, b + iov[i].iov_len);
  }
  if (tmp.size() > UdpSocket::max_payload) return fail(EMSGSIZE);
  if (to == nullptr && !s.udp_connected) return fail(EDESTADDRREQ);
  if (to != nullptr && (tolen < sizeof(sockaddr_in) || to->sa_family != AF_INET)) return fail(EINVAL);
  sockaddr_in a{};
  if (to != nullptr) std::memcpy(&a, to, sizeof a);
  auto r = to != nullptr ? s.udp.send_to(tmp.data(), tmp.size(), to_endpoint(a)) : s.udp.write(tmp.data(), tmp.size());
  if (!r) return fail(to_errno(r.error()));
  return ssize_t(*r);
}

}  // namespace keel::preload
