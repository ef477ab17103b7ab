// SPDX-License-Identifier: BSD-3-Clause
// The data calls on keel sockets: read/write and the recv/send family, and
// sendfile (file bytes read straight into the mbufs that are sent).
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "api/stack_core.hpp"
#include "preload/libc.hpp"
#include "preload/ops.hpp"

using namespace keel;
using namespace keel::preload;

namespace {

enum class Op { recv, send };

// The socket a data call is about, or why there is none. nullptr with
// *pass = true: the kernel's (an undecided socket).
std::shared_ptr<Socket> data_socket(int fd, bool& pass, int& err) {
  pass = false;
  err = 0;
  auto s = FdTable::get().as<Socket>(fd);
  if (!s) {
    err = FdTable::get().kind(fd) == Kind::epoll ? EINVAL : ENOTSOCK;
    return nullptr;
  }
  if (!s->keel) {
    pass = true;
    return nullptr;
  }
  Host& h = Host::get();
  if (h.forked_away()) {
    err = EBADF;
    return nullptr;
  }
  h.start();
  return s;
}

void raise_sigpipe() { pthread_kill(pthread_self(), SIGPIPE); }

ssize_t recv_common(int fd, const iovec* iov, int cnt, int flags, sockaddr* from, socklen_t* fromlen,
                    int* msg_flags) {
  Host::Guard g;
  bool pass;
  int err;
  auto s = data_socket(fd, pass, err);
  if (pass) return -2;
  if (!s) return fail(err);
  if (msg_flags != nullptr) *msg_flags = 0;
  if (!s->is_stream()) return dgram_recv(g, *s, iov, cnt, flags, from, fromlen, msg_flags);
  if (from != nullptr && fromlen != nullptr) *fromlen = 0;  // COMPAT(linux): a stream has no source address
  return stream_recv_iov(g, *s, iov, cnt, flags);
}

ssize_t send_common(int fd, const iovec* iov, int cnt, int flags, const sockaddr* to, socklen_t tolen) {
  bool sigpipe = false;
  ssize_t r;
  {
    Host::Guard g;
    auto s = FdTable::get().as<Socket>(fd);
    if (s && !s->keel && !s->is_stream() && to != nullptr) {
      // An unbound datagram socket goes where its first destination is.
      sockaddr_in a{};
      if (tolen >= socklen_t(sizeof a) && to->sa_family == AF_INET) std::memcpy(&a, to, sizeof a);
      Host& h = Host::get();
      if (a.sin_family != AF_INET || h.kernel_address(ntohl(a.sin_addr.s_addr)) || h.forked_away()) {
        if (release_to_kernel(fd, *s) != 0) return -1;
        return -2;
      }
      if (dgram_ensure_bound(*s) != 0) return -1;
    }
    bool pass;
    int err;
    s = data_socket(fd, pass, err);
    if (pass) return -2;
    if (!s) return fail(err);
    if (!s->is_stream()) return dgram_send(g, fd, *s, iov, cnt, flags, to, tolen);
    // COMPAT(linux): a destination on a connected stream socket is ignored.
    r = stream_send_iov(g, *s, iov, cnt, flags, sigpipe);
  }
  if (sigpipe) raise_sigpipe();  // mu released: the handler may call us
  return r;
}

}  // namespace

extern "C" {

ssize_t read(int fd, void* buf, size_t n) {
  if (passthrough(fd)) return libc().read(fd, buf, n);
  iovec v{buf, n};
  ssize_t r = recv_common(fd, &v, 1, 0, nullptr, nullptr, nullptr);
  return r == -2 ? libc().read(fd, buf, n) : r;
}

ssize_t __read_chk(int fd, void* buf, size_t n, size_t buflen) {
  if (n > buflen) abort();  // as glibc's __chk_fail
  return read(fd, buf, n);
}

ssize_t write(int fd, const void* buf, size_t n) {
  if (passthrough(fd)) return libc().write(fd, buf, n);
  iovec v{const_cast<void*>(buf), n};
  ssize_t r = send_common(fd, &v, 1, 0, nullptr, 0);
  return r == -2 ? libc().write(fd, buf, n) : r;
}

ssize_t readv(int fd, const iovec* iov, int cnt) {
  if (passthrough(fd)) return libc().readv(fd, iov, cnt);
  ssize_t r = recv_common(fd, iov, cnt, 0, nullptr, nullptr, nullptr);
  return r == -2 ? libc().readv(fd, iov, cnt) : r;
}

ssize_t writev(int fd, const iovec* iov, int cnt) {
  if (passthrough(fd)) return libc().writev(fd, iov, cnt);
  ssize_t r = send_common(fd, iov, cnt, 0, nullptr, 0);
  return r == -2 ? libc().writev(fd, iov, cnt) : r;
}

ssize_t recv(int fd, void* buf, size_t n, int flags) {
  if (passthrough(fd)) return libc().recv(fd, buf, n, flags);
  iovec v{buf, n};
  ssize_t r = recv_common(fd, &v, 1, flags, nullptr, nullptr, nullptr);
  return r == -2 ? libc().recv(fd, buf, n, flags) : r;
}

ssize_t __recv_chk(int fd, void* buf, size_t n, size_t buflen, int flags) {
  if (n > buflen) abort();
  return recv(fd, buf, n, flags);
}

ssize_t send(int fd, const void* buf, size_t n, int flags) {
  if (passthrough(fd)) return libc().send(fd, buf, n, flags);
  iovec v{const_cast<void*>(buf), n};
  ssize_t r = send_common(fd, &v, 1, flags, nullptr, 0);
  return r == -2 ? libc().send(fd, buf, n, flags) : r;
}

ssize_t recvfrom(int fd, void* buf, size_t n, int flags, sockaddr* from, socklen_t* fromlen) {
  if (passthrough(fd)) return libc().recvfrom(fd, buf, n, flags, from, fromlen);
  iovec v{buf, n};
  ssize_t r = recv_common(fd, &v, 1, flags, from, fromlen, nullptr);
  return r == -2 ? libc().recvfrom(fd, buf, n, flags, from, fromlen) : r;
}

ssize_t __recvfrom_chk(int fd, void* buf, size_t n, size_t buflen, int flags, sockaddr* from, socklen_t* fromlen) {
  if (n > buflen) abort();
  return recvfrom(fd, buf, n, flags, from, fromlen);
}

ssize_t sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* to, socklen_t tolen) {
  if (passthrough(fd)) return libc().sendto(fd, buf, n, flags, to, tolen);
  iovec v{const_cast<void*>(buf), n};
  ssize_t r = send_common(fd, &v, 1, flags, to, tolen);
  return r == -2 ? libc().sendto(fd, buf, n, flags, to, tolen) : r;
}

ssize_t recvmsg(int fd, msghdr* msg, int flags) {
  if (passthrough(fd)) return libc().recvmsg(fd, msg, flags);
  if (msg == nullptr) return fail(EFAULT);
  int mflags = 0;
  socklen_t nl = msg->msg_namelen;
  ssize_t r = recv_common(fd, msg->msg_iov, int(msg->msg_iovlen), flags,
                          static_cast<sockaddr*>(msg->msg_name), msg->msg_name ? &nl : nullptr, &mflags);
  if (r == -2) return libc().recvmsg(fd, msg, flags);
  if (r >= 0) {
    msg->msg_namelen = msg->msg_name ? nl : 0;
    msg->msg_controllen = 0;  // no ancillary data from keel
    msg->msg_flags = mflags;
  }
  return r;
}

ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
  if (passthrough(fd)) return libc().sendmsg(fd, msg, flags);
  if (msg == nullptr) return fail(EFAULT);
  ssize_t r = send_common(fd, msg->msg_iov, int(msg->msg_iovlen), flags,
                          static_cast<const sockaddr*>(msg->msg_name), msg->msg_namelen);
  return r == -2 ? libc().sendmsg(fd, msg, flags) : r;
}

ssize_t sendfile(int out_fd, int in_fd, off_t* offset, size_t count) {
  if (passthrough(out_fd)) return libc().sendfile(out_fd, in_fd, offset, count);
  bool sigpipe = false;
  ssize_t result;
  {
    Host::Guard g;
    bool pass;
    int err;
    auto s = data_socket(out_fd, pass, err);
    if (pass) return libc().sendfile(out_fd, in_fd, offset, count);
    if (!s) return fail(err);
    if (!s->is_stream()) return fail(EINVAL);
    Host& h = Host::get();
    Stack st(&h.core());
    struct stat sb;
    if (fstat(in_fd, &sb) != 0) return -1;
    if (!S_ISREG(sb.st_mode)) return fail(EINVAL);
    off_t pos = offset ? *offset : lseek(in_fd, 0, SEEK_CUR);
    if (pos < 0) return -1;
    if (sb.st_size > pos) count = std::min<size_t>(count, size_t(sb.st_size - pos));
    else count = 0;
    size_t done = 0;
    result = 0;
    while (done < count) {
      size_t space = s->state == Socket::State::connected && !s->wr_shut ? s->conn.send_space().value_or(0) : 0;
      if (space == 0) {
        // Blocks (or not) and reports errors exactly as write() would.
        ssize_t r = stream_send(g, *s, nullptr, 0, MSG_DONTWAIT, sigpipe);
        if (r < 0 && errno != EAGAIN) { result = done > 0 ? ssize_t(done) : -1; break; }
        s->arm_writable();  // the EPOLLOUT edge comes when space opens
        if (s->nonblock) { result = done > 0 ? ssize_t(done) : fail(EAGAIN); break; }
        int rc = h.wait_restartable(g.lock(), [&] { return (s->ready_mask() & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0; },
                                    s->opt.sndtimeo_ns);
        if (rc != 0) { result = done > 0 ? ssize_t(done) : fail(rc == ETIMEDOUT ? EAGAIN : rc); break; }
        if (s->state != Socket::State::connected || s->wr_shut) {
          r = stream_send(g, *s, "", 1, MSG_DONTWAIT, sigpipe);  // reports EPIPE / ECONNRESET
          result = done > 0 ? ssize_t(done) : -1;
          if (done > 0) sigpipe = false;
          break;
        }
        continue;
      }
      size_t want = std::min(count - done, std::min<size_t>(space, 1 << 20));
      auto b = st.alloc(want);
      if (!b) { result = done > 0 ? ssize_t(done) : fail(ENOBUFS); break; }
      // The file's bytes go straight into the mbufs (one copy, as the kernel's page-cache copy).
      size_t filled = 0;
      bool eof = false, rerr = false;
      for (size_t i = 0; i < b->segment_count() && filled < want; ++i) {
        Segment seg = b->segment(i);
        size_t k = 0;
        while (k < seg.size) {
          ssize_t r = pread(in_fd, seg.data + k, seg.size - k, pos + off_t(filled + k));
          if (r < 0 && errno == EINTR) continue;
          if (r < 0) { rerr = true; break; }
          if (r == 0) { eof = true; break; }
          k += size_t(r);
        }
        filled += k;
        if (eof || rerr) break;
      }
      if (filled == 0) {
        result = rerr && done == 0 ? -1 : ssize_t(done);
        break;
      }
      if (filled < want) {
        // The file shrank under us: what was read goes out by copy (rare).
        std::string tmp(filled, '\0');
        b->copy_to(tmp.data(), filled);
        ssize_t w = stream_send(g, *s, tmp.data(), filled, 0, sigpipe);
        if (w < 0) { result = done > 0 ? ssize_t(done) : -1; break; }
        done += size_t(w);
        pos += w;
        result = ssize_t(done);
        break;
      }
      if (auto r = s->conn.send(*b); !r) {
        result = done > 0 ? ssize_t(done) : fail(to_errno(r.error()));
        break;
      }
      done += filled;
      pos += off_t(filled);
      result = ssize_t(done);
    }
    if (result >= 0) {
      if (offset) *offset = pos;
      else lseek(in_fd, pos, SEEK_SET);
    }
  }
  if (sigpipe) raise_sigpipe();
  return result;
}

// With _FILE_OFFSET_BITS=64 the definition above is the symbol sendfile64; this is plain sendfile.
ssize_t keel_sendfile_plain(int out_fd, int in_fd, off_t* offset, size_t count) __asm__("sendfile");
ssize_t keel_sendfile_plain(int out_fd, int in_fd, off_t* offset, size_t count) {
  return sendfile(out_fd, in_fd, offset, count);
}

}  // extern "C"
