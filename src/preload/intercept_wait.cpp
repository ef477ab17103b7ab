// SPDX-License-Identifier: BSD-3-Clause
// Readiness: epoll (keel sockets and kernel fds in one set), poll and select.
// A wait that includes a keel socket runs the stack in the calling thread
// (Host::wait); the kernel fds are looked at between iterations and slept on
// (ppoll) once the wait backs off.
#include <signal.h>
#include <sys/eventfd.h>
#include <time.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "preload/libc.hpp"
#include "preload/ops.hpp"

using namespace keel;
using namespace keel::preload;

namespace {

constexpr uint32_t always = EPOLLERR | EPOLLHUP;
// The wake eventfd's data in the kernel set (never handed to the program).
constexpr uint64_t wake_mark = 0xfffffffffffffffeull;

int64_t mono_ms() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return int64_t(t.tv_sec) * 1000 + t.tv_nsec / 1'000'000;
}

// The kernel set's events into out, the wake eventfd's taken out (and drained): *woken
// says it fired. Returns the count, or -1/errno from the kernel.
int kernel_events(Epoll& ep, epoll_event* out, int max, int timeout_ms, bool* woken) {
  int k = libc().epoll_wait(ep.kfd, out, max, timeout_ms);
  if (k <= 0) return k;
  int n = 0;
  for (int i = 0; i < k; ++i) {
    if (ep.wake_fd >= 0 && out[i].data.u64 == wake_mark) {
      uint64_t v;
      (void)libc().read(ep.wake_fd, &v, sizeof v);
      if (woken != nullptr) *woken = true;
      continue;
    }
    out[n++] = out[i];
  }
  return n;
}

int64_t ms_to_ns(int ms) { return ms < 0 ? -1 : int64_t(ms) * 1'000'000; }
int64_t ts_to_ns(const timespec* ts) {
  return ts == nullptr ? -1 : int64_t(ts->tv_sec) * 1'000'000'000 + ts->tv_nsec;
}

// Sleeps up to ns on the given kernel fds; true when one is ready.
bool kernel_poll(pollfd* fds, nfds_t n, uint64_t ns) {
  if (n == 0) {
    if (ns > 0) {
      timespec ts{time_t(ns / 1'000'000'000), long(ns % 1'000'000'000)};
      nanosleep(&ts, nullptr);
    }
    return false;
  }
  timespec ts{time_t(ns / 1'000'000'000), long(ns % 1'000'000'000)};
  return libc().ppoll(fds, n, &ts, nullptr) > 0;
}

// The keel items of `ep` that are ready, into out[0..max) (mu held).
int collect(Epoll& ep, epoll_event* out, int max) {
  int n = 0;
  const size_t todo = ep.ready.size();
  for (size_t k = 0; k < todo && n < max; ++k) {
    EpItem* it = ep.ready.front();
    ep.ready.pop_front();
    const uint32_t ready = it->sock->ready_mask();
    const uint32_t m = ready & (it->events | always);
    // Waiting for space: the stack's writable event puts the item back (notify).
    if ((it->events & EPOLLOUT) && !(ready & EPOLLOUT) && !it->disabled) it->sock->arm_writable();
    if (m == 0 || it->disabled) {
      it->queued = false;
      continue;
    }
    out[n].events = m;
    out[n].data = it->data;
    ++n;
    if (it->events & EPOLLONESHOT) {
      it->disabled = true;
      it->queued = false;
    } else if (it->events & EPOLLET) {
      it->queued = false;
    } else {
      ep.ready.push_back(it);  // level-triggered: looked at again next time
    }
  }
  return n;
}

int epoll_wait_common(int epfd, epoll_event* events, int max, int64_t timeout_ns, const sigset_t* mask) {
  if (max <= 0) return fail(EINVAL);
  if (events == nullptr) return fail(EFAULT);
  sigset_t old;
  if (mask != nullptr) pthread_sigmask(SIG_SETMASK, mask, &old);
  int n = 0, rc = 0;
  {
    Host::Guard g;
    auto ep = FdTable::get().as<Epoll>(epfd);
    if (!ep) {
      rc = EINVAL;
    } else {
      Host& h = Host::get();
      pollfd kp{ep->kfd, POLLIN, 0};
      const int64_t t0 = timeout_ns < 0 ? 0 : int64_t(mono_ms());
      for (;;) {
        const int64_t left = timeout_ns < 0 ? -1 : std::max<int64_t>(0, timeout_ns - (mono_ms() - t0) * 1'000'000);
        rc = h.wait(
            g.lock(),
            [&] {
              n = collect(*ep, events, max);
              if (n < max && ep->kernel_items > 0) {
                int k = kernel_events(*ep, events + n, max - n, 0, nullptr);
                if (k > 0) n += k;
              }
              return n > 0;
            },
            left, [&](uint64_t ns) { return kernel_poll(&kp, ep->kernel_items > 0 ? 1 : 0, ns); });
        if (rc == 0 && n == 0 && ep->kernel_items > 0) {
          // A kernel fd woke us: take its events (the wake eventfd alone: wait on).
          int k = kernel_events(*ep, events, max, 0, nullptr);
          n = k > 0 ? k : 0;
          if (n == 0 && left != 0) continue;
        }
        break;
      }
    }
  }
  if (mask != nullptr) pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (rc == ETIMEDOUT) return 0;
  if (rc != 0) return fail(rc);
  return n;
}

bool has_keel(const pollfd* fds, nfds_t n) {
  for (nfds_t i = 0; i < n; ++i)
    if (FdTable::get().kind(fds[i].fd) != Kind::none) return true;
  return false;
}

int poll_common(pollfd* fds, nfds_t n, int64_t timeout_ns, const sigset_t* mask) {
  if (fds == nullptr && n > 0) return fail(EFAULT);
  sigset_t old;
  if (mask != nullptr) pthread_sigmask(SIG_SETMASK, mask, &old);
  // The kernel fds, kept apart so one ppoll covers them.
  std::vector<pollfd> kfds;
  std::vector<nfds_t> kidx;
  for (nfds_t i = 0; i < n; ++i) {
    fds[i].revents = 0;
    if (fds[i].fd >= 0 && FdTable::get().kind(fds[i].fd) != Kind::socket) {
      kfds.push_back(fds[i]);
      kidx.push_back(i);
    }
  }
  int count = 0, rc = 0;
  {
    Host::Guard g;
    Host& h = Host::get();
    if (!h.forked_away()) h.start();
    auto look = [&] {
      count = 0;
      for (nfds_t i = 0; i < n; ++i) {
        fds[i].revents = 0;
        if (fds[i].fd < 0 || FdTable::get().kind(fds[i].fd) != Kind::socket) continue;
        auto s = FdTable::get().as<Socket>(fds[i].fd);
        if (!s) continue;
        uint32_t m;
        if (!s->keel) {
          pollfd one{fds[i].fd, fds[i].events, 0};
          libc().poll(&one, 1, 0);
          m = uint32_t(one.revents);
        } else if (h.forked_away()) {
          m = POLLNVAL;
        } else {
          m = s->ready_mask() & (uint32_t(fds[i].events) | POLLERR | POLLHUP);
        }
        fds[i].revents = short(m);
        if (m) ++count;
      }
      if (!kfds.empty() && libc().poll(kfds.data(), kfds.size(), 0) > 0)
        for (size_t k = 0; k < kfds.size(); ++k)
          if (kfds[k].revents) {
            fds[kidx[k]].revents = kfds[k].revents;
            ++count;
          }
      return count > 0;
    };
    rc = h.wait(g.lock(), look, timeout_ns,
                [&](uint64_t ns) { return kernel_poll(kfds.data(), kfds.size(), ns); });
    if (rc == 0 && count == 0) look();
  }
  if (mask != nullptr) pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (rc == ETIMEDOUT) return 0;
  if (rc != 0) return fail(rc);
  return count;
}

bool sets_have_keel(int nfds, fd_set* r, fd_set* w, fd_set* e) {
  for (int fd = 0; fd < nfds && fd < FD_SETSIZE; ++fd)
    if ((r && FD_ISSET(fd, r)) || (w && FD_ISSET(fd, w)) || (e && FD_ISSET(fd, e)))
      if (FdTable::get().kind(fd) == Kind::socket) return true;
  return false;
}

// select as poll: the same readiness, counted per set as select counts.
int select_common(int nfds, fd_set* r, fd_set* w, fd_set* e, int64_t timeout_ns, const sigset_t* mask) {
  if (nfds < 0 || nfds > FD_SETSIZE) return fail(EINVAL);
  std::vector<pollfd> p;
  for (int fd = 0; fd < nfds; ++fd) {
    short ev = 0;
    if (r && FD_ISSET(fd, r)) ev |= POLLIN;
    if (w && FD_ISSET(fd, w)) ev |= POLLOUT;
    if (e && FD_ISSET(fd, e)) ev |= POLLPRI;
    if (ev) p.push_back(pollfd{fd, ev, 0});
  }
  int rc = poll_common(p.data(), p.size(), timeout_ns, mask);
  if (rc < 0) return rc;
  for (const pollfd& x : p)
    if (x.revents & POLLNVAL) return fail(EBADF);
  if (r) FD_ZERO(r);
  if (w) FD_ZERO(w);
  if (e) FD_ZERO(e);
  int count = 0;
  for (const pollfd& x : p) {
    // COMPAT(linux): readable on IN/HUP/ERR, writable on OUT/ERR, exceptional on PRI.
    if ((x.events & POLLIN) && (x.revents & (POLLIN | POLLHUP | POLLERR))) FD_SET(x.fd, r), ++count;
    if ((x.events & POLLOUT) && (x.revents & (POLLOUT | POLLERR))) FD_SET(x.fd, w), ++count;
    if ((x.events & POLLPRI) && (x.revents & POLLPRI)) FD_SET(x.fd, e), ++count;
  }
  return count;
}

}  // namespace

extern "C" {

int epoll_create(int size) {
  if (size <= 0) return fail(EINVAL);
  return epoll_create1(0);
}

int epoll_create1(int flags) {
  const int fd = libc().epoll_create1(flags);
  if (fd < 0 || bypass()) return fd;
  Host::Guard g;
  auto ep = std::make_shared<Epoll>();
  ep->kfd = fd;
  FdTable::get().put(fd, std::move(ep));
  return fd;
}

int epoll_ctl(int epfd, int op, int fd, epoll_event* ev) {
  if (bypass() || FdTable::get().kind(epfd) != Kind::epoll) {
    if (!bypass() && FdTable::get().kind(fd) == Kind::socket) {
      // A keel socket in an epoll the shim does not know (one made before it loaded).
      Host::Guard g;
      auto s = FdTable::get().as<Socket>(fd);
      if (s && s->keel) return fail(EPERM);
    }
    return libc().epoll_ctl(epfd, op, fd, ev);
  }
  Host::Guard g;
  auto ep = FdTable::get().as<Epoll>(epfd);
  auto s = FdTable::get().as<Socket>(fd);
  if (!ep) return fail(EBADF);
  if (fd == epfd) return fail(EINVAL);
  if (!s || !s->keel) {
    int rc = libc().epoll_ctl(ep->kfd, op, fd, ev);
    if (rc == 0 && op == EPOLL_CTL_ADD) ++ep->kernel_items;
    if (rc == 0 && op == EPOLL_CTL_DEL && ep->kernel_items > 0) --ep->kernel_items;
    return rc;
  }
  Host& h = Host::get();
  if (h.forked_away()) return fail(EBADF);
  EpItem* it = ep->find(fd);
  if (op != EPOLL_CTL_DEL && ev == nullptr) return fail(EFAULT);
  switch (op) {
    case EPOLL_CTL_ADD: {
      if (it != nullptr) return fail(EEXIST);
      auto item = std::make_unique<EpItem>();
      item->ep = ep.get();
      item->sock = s.get();
      item->fd = fd;
      item->events = ev->events;
      item->data = ev->data;
      it = item.get();
      ep->items.push_back(std::move(item));
      s->watchers.push_back(it);
      break;
    }
    case EPOLL_CTL_MOD:
      if (it == nullptr) return fail(ENOENT);
      it->events = ev->events;
      it->data = ev->data;
      it->disabled = false;
      break;
    case EPOLL_CTL_DEL:
      if (it == nullptr) return fail(ENOENT);
      std::erase(s->watchers, it);
      ep->remove(it);
      return 0;
    default:
      return fail(EINVAL);
  }
  // The stack starts when a program first waits on a keel socket (nginx's worker).
  h.start();
  if (!it->queued) {
    it->queued = true;
    ep->ready.push_back(it);  // looked at by the next epoll_wait
  }
  if (ep->kernel_waiters > 0) {
    const uint64_t one = 1;  // a thread waits in the kernel for this set: it must look again
    (void)libc().write(ep->wake_fd, &one, sizeof one);
  }
  return 0;
}

int epoll_wait(int epfd, epoll_event* events, int max, int timeout) {
  if (bypass() || FdTable::get().kind(epfd) != Kind::epoll)
    return libc().epoll_wait(epfd, events, max, timeout);
  std::shared_ptr<Epoll> ep;
  {
    Host::Guard g;
    ep = FdTable::get().as<Epoll>(epfd);
    if (ep && ep->items.empty() && ep->wake_fd < 0) {
      ep->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
      epoll_event wev{};
      wev.events = EPOLLIN;
      wev.data.u64 = wake_mark;
      if (ep->wake_fd >= 0 && libc().epoll_ctl(ep->kfd, EPOLL_CTL_ADD, ep->wake_fd, &wev) != 0) {
        libc().close(ep->wake_fd);
        ep->wake_fd = -1;
      }
    }
    if (ep && ep->items.empty() && ep->wake_fd >= 0) ++ep->kernel_waiters;
    else ep.reset();
  }
  if (ep) {
    // Kernel fds only: the kernel waits, unlocked, until one is ready or a keel socket is added.
    const int64_t t0 = mono_ms();
    bool woken = false;
    int n = kernel_events(*ep, events, max, timeout, &woken);
    const int e = errno;
    {
      Host::Guard g;
      --ep->kernel_waiters;
      ep.reset();  // the last reference goes with mu held
    }
    if (n != 0 || !woken) {
      errno = e;
      return n;
    }
    if (timeout >= 0) timeout = int(std::max<int64_t>(0, timeout - (mono_ms() - t0)));
  }
  return epoll_wait_common(epfd, events, max, ms_to_ns(timeout), nullptr);
}

int epoll_pwait(int epfd, epoll_event* events, int max, int timeout, const sigset_t* mask) {
  if (bypass() || FdTable::get().kind(epfd) != Kind::epoll)
    return libc().epoll_pwait(epfd, events, max, timeout, mask);
  return epoll_wait_common(epfd, events, max, ms_to_ns(timeout), mask);
}

int epoll_pwait2(int epfd, epoll_event* events, int max, const timespec* timeout, const sigset_t* mask) {
  if (bypass() || FdTable::get().kind(epfd) != Kind::epoll)
    return libc().epoll_pwait2(epfd, events, max, timeout, mask);
  return epoll_wait_common(epfd, events, max, ts_to_ns(timeout), mask);
}

int poll(pollfd* fds, nfds_t n, int timeout) {
  if (bypass() || !has_keel(fds, n)) return libc().poll(fds, n, timeout);
  return poll_common(fds, n, ms_to_ns(timeout), nullptr);
}

int __poll_chk(pollfd* fds, nfds_t n, int timeout, size_t fdslen) {
  if (fdslen / sizeof(pollfd) < n) abort();
  return poll(fds, n, timeout);
}

int ppoll(pollfd* fds, nfds_t n, const timespec* ts, const sigset_t* mask) {
  if (bypass() || !has_keel(fds, n)) return libc().ppoll(fds, n, ts, mask);
  return poll_common(fds, n, ts_to_ns(ts), mask);
}

int __ppoll_chk(pollfd* fds, nfds_t n, const timespec* ts, const sigset_t* mask, size_t fdslen) {
  if (fdslen / sizeof(pollfd) < n) abort();
  return ppoll(fds, n, ts, mask);
}

int select(int nfds, fd_set* r, fd_set* w, fd_set* e, timeval* tv) {
  if (bypass() || !sets_have_keel(nfds, r, w, e)) return libc().select(nfds, r, w, e, tv);
  int64_t ns = tv == nullptr ? -1 : int64_t(tv->tv_sec) * 1'000'000'000 + int64_t(tv->tv_usec) * 1000;
  return select_common(nfds, r, w, e, ns, nullptr);
}

int pselect(int nfds, fd_set* r, fd_set* w, fd_set* e, const timespec* ts, const sigset_t* mask) {
  if (bypass() || !sets_have_keel(nfds, r, w, e)) return libc().pselect(nfds, r, w, e, ts, mask);
  return select_common(nfds, r, w, e, ts_to_ns(ts), mask);
}

}  // extern "C"
