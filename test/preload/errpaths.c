// SPDX-License-Identifier: BSD-3-Clause
// preload-errpaths: the error paths of every call libkeel_preload.so intercepts, with
// the errno Linux gives (docs/ARCHITECTURE.md "The LD_PRELOAD shim" says where keel
// differs on purpose; those checks assert the documented behaviour). A plain C program:
// run under LD_PRELOAD it talks to keel, run without it to the kernel (`kernel` mode),
// which shows the expectations are Linux's. The peer is errpaths_peer.py.
//
//   errpaths PEER_IP BASE_PORT SELF_IP [kernel] [CASE...]
// Prints `ok NAME` or `FAIL NAME: expected X got Y (errno text)` per check; exits 0
// only if every check passed. CASE picks cases by name; the default ("all") is every case
// but "prefork" (it needs a process whose stack has not started) and "noanswer" (it
// waits for a connect to give up: run it where that is bounded, see errpaths.sh).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

// Ports of the peer, BASE + k (errpaths_peer.py).
enum { P_ECHO, P_CLOSE, P_RESET, P_HOLD, P_REFUSE, P_UDP, P_CTL };
static const char* peer_ip;
static const char* self_ip;
static int base_port;
static bool kernel_mode;  // no shim: the expectations are checked against Linux
static int failures;
static volatile sig_atomic_t sigpipes;

// ===== checks =====

static void pass(const char* name) { printf("ok %s\n", name); }
static void failf(const char* name, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("FAIL %s: ", name);
  vprintf(fmt, ap);
  printf("\n");
  va_end(ap);
  ++failures;
}
static const char* ename(int e) {
  static char buf[8][64];
  static int k;
  char* b = buf[k++ % 8];
  snprintf(b, 64, "%s", e == 0 ? "0" : strerrorname_np(e) ? strerrorname_np(e) : "?");
  return b;
}
// The call failed with exactly `want`.
static void err_is(const char* name, long r, int e, int want) {
  if (r == -1 && e == want) pass(name);
  else failf(name, "expected -1/%s got %ld/%s (%s)", ename(want), r, ename(r == -1 ? e : 0), strerror(e));
}
#define ERR(name, want, expr) \
  do { errno = 0; long r_ = (long)(expr); err_is(name, r_, errno, want); } while (0)
// The call succeeded (not -1).
#define OK(name, expr) \
  do { errno = 0; long r_ = (long)(expr); int e_ = errno; \
       if (r_ != -1) pass(name); else failf(name, "expected success got -1 (%s)", strerror(e_)); } while (0)
static void eq(const char* name, long got, long want) {
  if (got == want) pass(name);
  else failf(name, "expected %ld got %ld (%s)", want, got, strerror(errno));
}
static void truth(const char* name, bool c, const char* what) {
  if (c) pass(name);
  else failf(name, "expected %s got otherwise (%s)", what, strerror(errno));
}
static void xeq(const char* name, unsigned got, unsigned want) {  // event masks, in hex
  if (got == want) pass(name);
  else failf(name, "expected 0x%x got 0x%x", want, got);
}

// ===== helpers =====

static long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000L + t.tv_nsec / 1000000;
}
static struct sockaddr_in addr_of(const char* ip, int port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}
static struct sockaddr_in peer(int k) { return addr_of(peer_ip, base_port + k); }
#define SA(a) ((struct sockaddr*)&(a))

// A blocking connection to the peer's port k (-1 on failure, reported).
static int dial(int k) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = peer(k);
  if (connect(fd, SA(a), sizeof a) != 0) {
    failf("dial", "expected a connection to port %d got -1 (%s)", base_port + k, strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}
// poll one fd: its revents (0 on timeout).
static short wait_fd(int fd, short ev, int ms) {
  struct pollfd p = {fd, ev, 0};
  return poll(&p, 1, ms) > 0 ? p.revents : 0;
}
// Reads exactly n bytes (blocking, within ms); the count read.
static size_t read_n(int fd, void* buf, size_t n, int ms) {
  size_t got = 0;
  long end = now_ms() + ms;
  while (got < n && now_ms() < end) {
    if (!(wait_fd(fd, POLLIN, (int)(end - now_ms())) & (POLLIN | POLLHUP | POLLERR))) break;
    ssize_t r = recv(fd, (char*)buf + got, n - got, MSG_DONTWAIT);
    if (r <= 0 && !(r < 0 && errno == EAGAIN)) break;
    if (r > 0) got += (size_t)r;
  }
  return got;
}
// One command to the peer's control port; its reply ("" if none within 3 s).
static const char* ctl(const char* cmd) {
  static char reply[128];
  static int u = -1;
  if (u < 0) {
    u = socket(AF_INET, SOCK_DGRAM, 0);
    struct timeval tv = {3, 0};
    setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  struct sockaddr_in a = peer(P_CTL);
  reply[0] = 0;
  if (sendto(u, cmd, strlen(cmd), 0, SA(a), sizeof a) < 0) return reply;
  ssize_t r = recv(u, reply, sizeof reply - 1, 0);
  reply[r > 0 ? r : 0] = 0;
  return reply;
}
// A keel listener on any address, port `port`; the peer connects and sends "hello".
static int listen_and_invite(int port) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = addr_of("0.0.0.0", port);
  if (bind(l, SA(a), sizeof a) != 0 || listen(l, 16) != 0) {
    failf("listen", "expected a listener on %d got -1 (%s)", port, strerror(errno));
    close(l);
    return -1;
  }
  char cmd[64];
  snprintf(cmd, sizeof cmd, "connect %s %d", self_ip, port);
  if (strcmp(ctl(cmd), "ok") != 0) failf("invite", "expected ok from the peer got nothing");
  return l;
}
static int eofs(void) { return atoi(ctl("eofs")); }
// Waits until the echo port has seen more than n connections end.
static bool eofs_above(int n, int ms) {
  long end = now_ms() + ms;
  while (now_ms() < end) {
    if (eofs() > n) return true;
    usleep(20000);
  }
  return false;
}
static bool echo_ok(int fd, const char* msg) {
  size_t n = strlen(msg);
  char buf[256] = {0};
  ssize_t w = write(fd, msg, n);
  if (w != (ssize_t)n) {
    printf("# echo: write %zd (%s)\n", w, strerror(errno));
    return false;
  }
  size_t got = read_n(fd, buf, n, 5000);
  if (got != n || memcmp(buf, msg, n) != 0) printf("# echo: read %zu of %zu (%s)\n", got, n, strerror(errno));
  return got == n && memcmp(buf, msg, n) == 0;
}
static int closed_fd(void) {  // a number that names nothing
  int fd = open("/dev/null", O_RDONLY);
  close(fd);
  return fd;
}
static void on_sigpipe(int sig) { (void)sig; ++sigpipes; }

// ===== cases =====

// Every call on an fd number that names nothing: EBADF (a closed keel socket's number too).
static void c_badfd(void) {
  int ks = dial(P_ECHO);
  close(ks);  // the number a keel socket had
  int nums[2] = {closed_fd(), ks};
  int ep = epoll_create1(0);  // not on the numbers above
  if (ep == nums[0] || ep == nums[1]) {
    int e2 = epoll_create1(0);
    close(ep);
    ep = e2;
  }
  char b[4];
  struct sockaddr_in a = peer(P_ECHO);
  socklen_t al = sizeof a;
  int v = 0;
  socklen_t vl = sizeof v;
  for (int i = 0; i < 2; ++i) {
    int fd = nums[i];
    if (fd < 0) continue;
    char n[64];
#define BAD(call, expr) do { snprintf(n, sizeof n, "badfd.%s.%s", i ? "keel" : "file", call); ERR(n, EBADF, expr); } while (0)
    BAD("read", read(fd, b, 1));
    BAD("write", write(fd, b, 1));
    BAD("send", send(fd, b, 1, 0));
    BAD("recv", recv(fd, b, 1, 0));
    BAD("close", close(fd));
    BAD("shutdown", shutdown(fd, SHUT_RDWR));
    BAD("getsockopt", getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &vl));
    BAD("setsockopt", setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v, sizeof v));
    BAD("getsockname", getsockname(fd, SA(a), &al));
    BAD("getpeername", getpeername(fd, SA(a), &al));
    BAD("accept", accept(fd, NULL, NULL));
    BAD("accept4", accept4(fd, NULL, NULL, SOCK_NONBLOCK));
    BAD("listen", listen(fd, 1));
    BAD("connect", connect(fd, SA(a), sizeof a));
    BAD("bind", bind(fd, SA(a), sizeof a));
    BAD("fcntl", fcntl(fd, F_GETFL));
    BAD("ioctl", ioctl(fd, FIONREAD, &v));
    BAD("dup", dup(fd));
    BAD("dup2", dup2(fd, 100));
    BAD("sendto", sendto(fd, b, 1, 0, SA(a), sizeof a));
    BAD("recvfrom", recvfrom(fd, b, 1, 0, SA(a), &al));
    struct iovec io = {b, 1};
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1};
    BAD("readv", readv(fd, &io, 1));
    BAD("writev", writev(fd, &io, 1));
    BAD("recvmsg", recvmsg(fd, &m, 0));
    BAD("sendmsg", sendmsg(fd, &m, 0));
    BAD("dup3", dup3(fd, 100, 0));
    struct epoll_event ev = {.events = EPOLLIN};
    BAD("epoll_ctl", epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
    BAD("epoll_wait", epoll_wait(fd, &ev, 1, 0));
#undef BAD
  }
  close(ep);
}

// Socket calls on a file and a pipe: ENOTSOCK, as the kernel says (they never reach keel).
static void c_notsock(void) {
  int f = open("/dev/null", O_RDWR), p[2];
  if (pipe(p) != 0) return failf("notsock", "pipe failed");
  int fds[2] = {f, p[0]};
  struct sockaddr_in a = peer(P_ECHO);
  socklen_t al = sizeof a;
  int v;
  socklen_t vl = sizeof v;
  char b[4], n[64];
  for (int i = 0; i < 2; ++i) {
    int fd = fds[i];
#define NS(call, expr) do { snprintf(n, sizeof n, "notsock.%s.%s", i ? "pipe" : "file", call); ERR(n, ENOTSOCK, expr); } while (0)
    NS("connect", connect(fd, SA(a), sizeof a));
    NS("bind", bind(fd, SA(a), sizeof a));
    NS("listen", listen(fd, 1));
    NS("accept", accept(fd, NULL, NULL));
    NS("getsockopt", getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &vl));
    NS("setsockopt", setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v, sizeof v));
    NS("getsockname", getsockname(fd, SA(a), &al));
    NS("getpeername", getpeername(fd, SA(a), &al));
    NS("shutdown", shutdown(fd, SHUT_RDWR));
    NS("send", send(fd, b, 1, 0));
    NS("recv", recv(fd, b, 1, MSG_DONTWAIT));
#undef NS
  }
  close(f), close(p[0]), close(p[1]);
}

// Calls in the wrong state.
static void c_state(void) {
  struct sockaddr_in any = addr_of("0.0.0.0", 0);
  struct sockaddr_in e = peer(P_ECHO);
  socklen_t al = sizeof any;
  char b[4] = "x";
  int c = dial(P_ECHO);
  if (c < 0) return;
  ERR("state.listen_connected", EINVAL, listen(c, 1));
  ERR("state.accept_connected", EINVAL, accept(c, NULL, NULL));
  ERR("state.connect_twice", EISCONN, connect(c, SA(e), sizeof e));
  ERR("state.shutdown_bad_how", EINVAL, shutdown(c, 7));
  OK("state.shutdown_wr", shutdown(c, SHUT_WR));
  int sp0 = sigpipes;
  ERR("state.write_after_shut_wr", EPIPE, write(c, b, 1));
  eq("state.write_after_shut_wr_sigpipe", sigpipes - sp0, 1);
  // The echo peer sees our FIN and closes: EOF.
  eq("state.read_eof_after_peer_fin", (wait_fd(c, POLLIN, 5000), read(c, b, 1)), 0);
  close(c);

  int f = socket(AF_INET, SOCK_STREAM, 0);
  ERR("state.accept_fresh", EINVAL, accept(f, NULL, NULL));
  ERR("state.getpeername_fresh", ENOTCONN, getpeername(f, SA(any), &al));
  ERR("state.recv_fresh", ENOTCONN, recv(f, b, 1, MSG_DONTWAIT));
  ERR("state.shutdown_fresh", ENOTCONN, shutdown(f, SHUT_WR));
  ERR("state.send_fresh", EPIPE, send(f, b, 1, MSG_NOSIGNAL));
  close(f);

  // Bound on keel (INADDR_ANY), not connected.
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in at = addr_of("0.0.0.0", 7301);
  OK("state.bind", bind(s, SA(at), sizeof at));
  ERR("state.bind_twice", EINVAL, bind(s, SA(at), sizeof at));
  ERR("state.getpeername_bound", ENOTCONN, getpeername(s, SA(any), &al));
  ERR("state.recv_bound", ENOTCONN, recv(s, b, 1, 0));
  // (Linux's shutdown() marks the socket shut even as it says ENOTCONN: a later recv gives 0.)
  ERR("state.shutdown_bound", ENOTCONN, shutdown(s, SHUT_RDWR));
  ERR("state.accept_bound", EINVAL, accept(s, NULL, NULL));
  int before = sigpipes;
  ERR("state.send_bound", EPIPE, send(s, b, 1, 0));
  eq("state.send_bound_sigpipe", sigpipes - before, 1);
  OK("state.listen", listen(s, 4));
  ERR("state.connect_listening", EISCONN, connect(s, SA(e), sizeof e));
  ERR("state.send_listening", EPIPE, send(s, b, 1, MSG_NOSIGNAL));
  int s2 = socket(AF_INET, SOCK_STREAM, 0);
  ERR("state.bind_in_use", EADDRINUSE, bind(s2, SA(at), sizeof at));
  close(s2), close(s);

  // Options.
  c = dial(P_ECHO);
  int v = 1;
  socklen_t vl = sizeof v;
  ERR("opt.set_bad_name", ENOPROTOOPT, setsockopt(c, SOL_SOCKET, 9999, &v, sizeof v));
  ERR("opt.get_bad_name", ENOPROTOOPT, getsockopt(c, SOL_SOCKET, 9999, &v, &vl));
  ERR("opt.set_bad_level", ENOPROTOOPT, setsockopt(c, 9999, 1, &v, sizeof v));
  ERR("opt.set_tcp_bad_name", ENOPROTOOPT, setsockopt(c, IPPROTO_TCP, 9999, &v, sizeof v));
  ERR("opt.set_short_len", EINVAL, setsockopt(c, SOL_SOCKET, SO_KEEPALIVE, &v, 2));
  ERR("opt.set_short_timeval", EINVAL, setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &v, sizeof v));
  ERR("opt.set_keepcnt_range", EINVAL, setsockopt(c, IPPROTO_TCP, TCP_KEEPCNT, &(int){0}, sizeof(int)));
  short sv = -1;
  vl = sizeof sv;
  OK("opt.get_short_len", getsockopt(c, SOL_SOCKET, SO_TYPE, &sv, &vl));  // Linux truncates
  eq("opt.get_short_len_value", vl, sizeof sv);
  v = 0, vl = sizeof v;
  OK("opt.get_type", getsockopt(c, SOL_SOCKET, SO_TYPE, &v, &vl));
  eq("opt.get_type_value", v, SOCK_STREAM);
  ERR("efault.getsockname_null", EFAULT, getsockname(c, NULL, &al));
  close(c);

  // epoll_ctl misuse.
  int ep = epoll_create1(0);
  c = dial(P_ECHO);
  struct epoll_event ev = {.events = EPOLLIN};
  OK("epoll.add", epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev));
  ERR("epoll.add_twice", EEXIST, epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev));
  OK("epoll.del", epoll_ctl(ep, EPOLL_CTL_DEL, c, NULL));
  ERR("epoll.mod_absent", ENOENT, epoll_ctl(ep, EPOLL_CTL_MOD, c, &ev));
  ERR("epoll.del_absent", ENOENT, epoll_ctl(ep, EPOLL_CTL_DEL, c, NULL));
  ERR("epoll.add_self", EINVAL, epoll_ctl(ep, EPOLL_CTL_ADD, ep, &ev));
  ERR("epoll.bad_op", EINVAL, epoll_ctl(ep, 99, c, &ev));
  ERR("epoll.wait_maxevents_0", EINVAL, epoll_wait(ep, &ev, 0, 0));
  ERR("epoll.wait_not_epoll", EINVAL, epoll_wait(c, &ev, 1, 0));
  close(c), close(ep);
}

// Non-blocking connect: EINPROGRESS, then completion through epoll, poll and select.
static void c_nbconnect(void) {
  struct sockaddr_in e = peer(P_ECHO), r = peer(P_REFUSE);
  int ep = epoll_create1(0);
  int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  ERR("nbconnect.einprogress", EINPROGRESS, connect(c, SA(e), sizeof e));
  struct epoll_event ev = {.events = EPOLLOUT, .data.fd = c}, got = {0};
  epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
  eq("nbconnect.epoll_n", epoll_wait(ep, &got, 1, 5000), 1);
  xeq("nbconnect.epoll_events", got.events, EPOLLOUT);
  int so = -1;
  socklen_t sl = sizeof so;
  getsockopt(c, SOL_SOCKET, SO_ERROR, &so, &sl);
  eq("nbconnect.so_error", so, 0);
  // Linux: the first connect() after the completion says 0, later ones EISCONN.
  eq("nbconnect.connect_again", connect(c, SA(e), sizeof e), 0);
  ERR("nbconnect.connect_third", EISCONN, connect(c, SA(e), sizeof e));
  truth("nbconnect.echo", echo_ok(c, "abc"), "the echo");
  close(c);

  c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  ERR("nbconnect.poll_einprogress", EINPROGRESS, connect(c, SA(e), sizeof e));
  xeq("nbconnect.poll_out", (unsigned)wait_fd(c, POLLOUT, 5000), POLLOUT);
  close(c);

  c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  ERR("nbconnect.select_einprogress", EINPROGRESS, connect(c, SA(e), sizeof e));
  fd_set w;
  FD_ZERO(&w);
  FD_SET(c, &w);
  struct timeval tv = {5, 0};
  eq("nbconnect.select_n", select(c + 1, NULL, &w, NULL, &tv), 1);
  truth("nbconnect.select_writable", FD_ISSET(c, &w), "fd in the write set");
  close(c);

  // To a closed port: ERR|HUP, SO_ERROR ECONNREFUSED once.
  c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  ERR("refused.einprogress", EINPROGRESS, connect(c, SA(r), sizeof r));
  ev.data.fd = c;
  epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
  eq("refused.epoll_n", epoll_wait(ep, &got, 1, 5000), 1);
  xeq("refused.epoll_err_hup", got.events & (EPOLLERR | EPOLLHUP), EPOLLERR | EPOLLHUP);
  so = -1, sl = sizeof so;
  getsockopt(c, SOL_SOCKET, SO_ERROR, &so, &sl);
  eq("refused.so_error", so, ECONNREFUSED);
  so = -1, sl = sizeof so;
  getsockopt(c, SOL_SOCKET, SO_ERROR, &so, &sl);
  eq("refused.so_error_once", so, 0);
  close(c);
  c = socket(AF_INET, SOCK_STREAM, 0);
  ERR("refused.blocking", ECONNREFUSED, connect(c, SA(r), sizeof r));
  close(c);
  close(ep);
}

// A non-blocking connect to an address nobody answers (no ARP reply): EALREADY while
// it is in progress; the blocking one gives up with the errno below.
static void c_noanswer(void) {
  struct sockaddr_in x = addr_of("198.18.0.77", 9);
  int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  ERR("noanswer.einprogress", EINPROGRESS, connect(c, SA(x), sizeof x));
  ERR("noanswer.ealready", EALREADY, connect(c, SA(x), sizeof x));
  eq("noanswer.not_writable_yet", wait_fd(c, POLLOUT, 100), 0);
  close(c);
  c = socket(AF_INET, SOCK_STREAM, 0);
  long t0 = now_ms();
  // Linux: EHOSTUNREACH once ARP gives up (~3 s); keel: ETIMEDOUT after its SYN retries.
  ERR("noanswer.blocking", kernel_mode ? EHOSTUNREACH : ETIMEDOUT, connect(c, SA(x), sizeof x));
  printf("# noanswer.blocking gave up after %ld ms\n", now_ms() - t0);
  close(c);
}

// SO_RCVTIMEO: recv waits about that long, then EAGAIN.
static void c_timeo(void) {
  int c = dial(P_ECHO);
  if (c < 0) return;
  struct timeval tv = {0, 200000};
  OK("timeo.set", setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
  struct timeval back = {0};
  socklen_t bl = sizeof back;
  getsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &back, &bl);
  eq("timeo.get", back.tv_usec + back.tv_sec * 1000000, 200000);
  char b[4];
  long t0 = now_ms();
  ERR("timeo.recv_eagain", EAGAIN, recv(c, b, 1, 0));
  truth("timeo.recv_waited", now_ms() - t0 >= 150, "recv to wait >= 150 ms of its 200");
  truth("timeo.then_echo", echo_ok(c, "z"), "the echo after the timeout");
  close(c);
}

// EPOLLRDHUP when the peer closes, level- and edge-triggered.
static void c_rdhup(void) {
  for (int et = 0; et < 2; ++et) {
    const char* n1 = et ? "rdhup.et" : "rdhup.lt";
    const char* n2 = et ? "rdhup.et_once" : "rdhup.lt_again";
    int c = dial(P_CLOSE), ep = epoll_create1(0);
    if (c < 0) return;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (et ? EPOLLET : 0)}, got = {0};
    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
    // The FIN may come with or after the handshake: wait for RDHUP itself.
    long end = now_ms() + 5000;
    unsigned seen = 0;
    while (!(seen & EPOLLRDHUP) && now_ms() < end)
      if (epoll_wait(ep, &got, 1, 1000) == 1) seen |= got.events;
    xeq(n1, seen & (EPOLLIN | EPOLLRDHUP), EPOLLIN | EPOLLRDHUP);
    eq(n2, epoll_wait(ep, &got, 1, 100), et ? 0 : 1);
    char b[4];
    eq(et ? "rdhup.et_eof" : "rdhup.lt_eof", read(c, b, sizeof b), 0);
    close(c), close(ep);
  }
}

// EPOLLONESHOT reports once until EPOLL_CTL_MOD; EPOLLET once per arrival of new data.
static void c_oneshot_et(void) {
  int c = dial(P_ECHO), ep = epoll_create1(0);
  if (c < 0) return;
  struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT}, got;
  epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
  write(c, "a", 1);
  eq("oneshot.first", epoll_wait(ep, &got, 1, 5000), 1);
  write(c, "b", 1);
  wait_fd(c, POLLIN, 100);
  eq("oneshot.disabled", epoll_wait(ep, &got, 1, 200), 0);
  OK("oneshot.mod", epoll_ctl(ep, EPOLL_CTL_MOD, c, &ev));
  eq("oneshot.rearmed", epoll_wait(ep, &got, 1, 5000), 1);
  char b[8];
  read_n(c, b, 2, 2000);
  close(c), close(ep);

  c = dial(P_ECHO), ep = epoll_create1(0);
  ev.events = EPOLLIN | EPOLLET;
  epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
  write(c, "a", 1);
  eq("et.first", epoll_wait(ep, &got, 1, 5000), 1);
  eq("et.not_again", epoll_wait(ep, &got, 1, 200), 0);
  write(c, "b", 1);
  eq("et.new_data", epoll_wait(ep, &got, 1, 5000), 1);
  eq("et.unread_bytes", read_n(c, b, 2, 2000), 2);
  close(c), close(ep);
}

// A full send buffer, and EPOLLOUT once the peer reads again (the peer's window is
// closed: it reads nothing until "drain"). A: a non-blocking write ends in EAGAIN, ET
// registration made before. B: the buffer filled by a short write (no EAGAIN), the
// registration made after: the regression of 19cc652, where epoll never asked keel to
// report space and EPOLLOUT never came.
static ssize_t fill(int c, long* total, bool stop_short) {
  static char chunk[65536 + 1000];  // not a divisor of the buffer: the last write is short
  ssize_t r = 0;
  long end = now_ms() + 20000;
  while (now_ms() < end && (r = write(c, chunk, sizeof chunk)) > 0) {
    *total += r;
    if (stop_short && r < (ssize_t)sizeof chunk) break;
  }
  return r;
}
static void c_sendbuf(void) {
  truth("sendbuf.ctl_hold", strcmp(ctl("hold"), "ok") == 0, "the peer to hold new connections");
  int a = dial(P_HOLD), b = dial(P_HOLD), ep = epoll_create1(0);
  if (a < 0 || b < 0) return;
  fcntl(a, F_SETFL, fcntl(a, F_GETFL) | O_NONBLOCK);
  fcntl(b, F_SETFL, fcntl(b, F_GETFL) | O_NONBLOCK);
  struct epoll_event ev = {.events = EPOLLOUT | EPOLLET, .data.fd = a}, got[2];
  epoll_ctl(ep, EPOLL_CTL_ADD, a, &ev);
  eq("sendbuf.writable_at_first", epoll_wait(ep, got, 2, 5000), 1);
  long ta = 0, tb = 0;
  errno = 0;
  ssize_t r = fill(a, &ta, false);
  err_is("sendbuf.write_eagain", r, errno, EAGAIN);
  // B: fill to a short write, let the in-flight data be acknowledged, fill again.
  r = fill(b, &tb, true);
  truth("sendbuf.short_write", r > 0, "a short write when the buffer fills");
  usleep(300000);
  r = fill(b, &tb, true);
  printf("# sendbuf: %ld and %ld bytes queued\n", ta, tb);
  // A blocking write with SO_SNDTIMEO: what fitted before the timeout, as Linux.
  int t = dial(P_HOLD);
  struct timeval tv = {0, 200000};
  setsockopt(t, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  static char four[4 << 20];
  long t0 = now_ms();
  ssize_t tw = write(t, four, sizeof four);
  printf("# sndtimeo write: %zd (%s) after %ld ms\n", tw, strerror(errno), now_ms() - t0);
  truth("sendbuf.sndtimeo_partial", tw > 0 && tw < (ssize_t)sizeof four, "a partial count");
  truth("sendbuf.sndtimeo_waited", now_ms() - t0 >= 150, "the write to wait >= 150 ms of its 200");
  close(t);
  ev = (struct epoll_event){.events = EPOLLOUT, .data.fd = b};
  epoll_ctl(ep, EPOLL_CTL_ADD, b, &ev);
  // (The peer's kernel still takes a segment now and then, so space may open before the
  // drain: any EPOLLOUT after the fill counts.)
  unsigned seen = 0;
  bool drained = false;
  long end = now_ms() + 10000;
  while (seen != 3 && now_ms() < end) {
    if (!drained && now_ms() > end - 9800)
      drained = true, truth("sendbuf.ctl_drain", strcmp(ctl("drain"), "ok") == 0, "the peer to start reading");
    int n = epoll_wait(ep, got, 2, 1000);
    for (int i = 0; i < n; ++i) seen |= got[i].data.fd == a ? 1 : got[i].data.fd == b ? 2 : 0;
  }
  truth("sendbuf.epollout_after_eagain", seen & 1, "EPOLLOUT (ET) after the EAGAIN write");
  truth("sendbuf.epollout_after_short_write", seen & 2, "EPOLLOUT after the short write");
  truth("sendbuf.write_again", write(a, got, 8) > 0 && write(b, got, 8) > 0, "writes after EPOLLOUT");
  close(a), close(b), close(ep);
}

// Writes after the peer's RST: EPIPE with SIGPIPE, none with MSG_NOSIGNAL; reads: ECONNRESET.
static void c_reset(void) {
  char b[4] = "x";
  int c = dial(P_RESET);
  if (c < 0) return;
  short re = wait_fd(c, POLLIN, 5000);
  truth("reset.pollerr_hup", (re & (POLLERR | POLLHUP)) == (POLLERR | POLLHUP), "POLLERR|POLLHUP");
  ERR("reset.recv_econnreset", ECONNRESET, recv(c, b, 1, 0));
  eq("reset.recv_then_eof", recv(c, b, 1, 0), 0);
  int before = sigpipes;
  ERR("reset.send_epipe", EPIPE, send(c, b, 1, 0));
  eq("reset.sigpipe_raised", sigpipes - before, 1);
  before = sigpipes;
  ERR("reset.send_nosignal_epipe", EPIPE, send(c, b, 1, MSG_NOSIGNAL));
  eq("reset.nosignal_no_sigpipe", sigpipes - before, 0);
  close(c);

  // Writing first: the reset itself is reported (ECONNRESET, no signal).
  c = dial(P_RESET);
  wait_fd(c, POLLIN, 5000);
  before = sigpipes;
  ERR("reset.write_first_econnreset", ECONNRESET, write(c, b, 1));
  eq("reset.write_first_no_sigpipe", sigpipes - before, 0);
  ERR("reset.write_then_epipe", EPIPE, write(c, b, 1));
  close(c);

  // After the peer's FIN a write still goes; the peer's RST to it makes the next EPIPE.
  c = dial(P_CLOSE);
  wait_fd(c, POLLRDHUP, 5000);
  eq("closed.write_after_fin", write(c, b, 1), 1);
  long end = now_ms() + 5000;
  while (!(wait_fd(c, POLLOUT, 100) & (POLLERR | POLLHUP)) && now_ms() < end) {}
  before = sigpipes;
  ERR("closed.write_after_rst_epipe", EPIPE, write(c, b, 1));
  eq("closed.sigpipe_raised", sigpipes - before, 1);
  close(c);
}

// poll and select over keel sockets and kernel fds together.
static void c_mixed(void) {
  int p[2], sp[2];
  if (pipe(p) != 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sp) != 0) return failf("mixed", "pipe");
  int lo = socket(AF_INET, SOCK_DGRAM, 0);  // 127.0.0.1: the kernel's
  struct sockaddr_in la = addr_of("127.0.0.1", 0);
  socklen_t ll = sizeof la;
  bind(lo, SA(la), sizeof la);
  getsockname(lo, SA(la), &ll);
  int ready = dial(P_ECHO), idle = dial(P_ECHO);
  if (ready < 0 || idle < 0) return;
  write(ready, "r", 1);
  wait_fd(ready, POLLIN, 5000);
  write(p[1], "p", 1);
  sendto(lo, "l", 1, 0, SA(la), sizeof la);
  wait_fd(lo, POLLIN, 2000);

  struct pollfd f[6] = {{ready, POLLIN, 0}, {idle, POLLIN, 0}, {p[0], POLLIN, 0},
                        {sp[0], POLLIN, 0}, {lo, POLLIN, 0},   {idle, POLLOUT, 0}};
  eq("mixed.poll_count", poll(f, 6, 2000), 4);
  xeq("mixed.poll_keel_ready", f[0].revents, POLLIN);
  xeq("mixed.poll_keel_idle", f[1].revents, 0);
  xeq("mixed.poll_pipe", f[2].revents, POLLIN);
  xeq("mixed.poll_unix", f[3].revents, 0);
  xeq("mixed.poll_loopback", f[4].revents, POLLIN);
  xeq("mixed.poll_keel_writable", f[5].revents, POLLOUT);

  fd_set r, w;
  FD_ZERO(&r);
  FD_ZERO(&w);
  int fds[5] = {ready, idle, p[0], sp[0], lo}, mx = 0;
  for (int i = 0; i < 5; ++i) {
    FD_SET(fds[i], &r);
    mx = fds[i] > mx ? fds[i] : mx;
  }
  FD_SET(sp[1], &w);
  struct timeval tv = {2, 0};
  eq("mixed.select_count", select(mx + 1 > sp[1] ? mx + 1 : sp[1] + 1, &r, &w, NULL, &tv), 4);
  truth("mixed.select_sets", FD_ISSET(ready, &r) && !FD_ISSET(idle, &r) && FD_ISSET(p[0], &r) &&
                                 !FD_ISSET(sp[0], &r) && FD_ISSET(lo, &r) && FD_ISSET(sp[1], &w),
        "keel ready, pipe, loopback readable; idle, unix not; unix writable");

  // Nothing ready: the timeout is honoured.
  struct pollfd q[3] = {{idle, POLLIN, 0}, {sp[0], POLLIN, 0}, {p[1], POLLIN, 0}};
  long t0 = now_ms();
  eq("mixed.poll_timeout", poll(q, 3, 200), 0);
  truth("mixed.poll_waited", now_ms() - t0 >= 150, "poll to wait >= 150 ms of its 200");
  FD_ZERO(&r);
  FD_SET(idle, &r);
  FD_SET(sp[0], &r);
  tv = (struct timeval){0, 200000};
  t0 = now_ms();
  eq("mixed.select_timeout", select((idle > sp[0] ? idle : sp[0]) + 1, &r, NULL, NULL, &tv), 0);
  truth("mixed.select_waited", now_ms() - t0 >= 150, "select to wait >= 150 ms of its 200");
  // A kernel fd turning ready wakes a wait that holds keel fds.
  if (fork() == 0) {
    usleep(100000);
    write(sp[1], "u", 1);
    _exit(0);
  }
  struct pollfd k[2] = {{idle, POLLIN, 0}, {sp[0], POLLIN, 0}};
  eq("mixed.poll_kernel_wakes", poll(k, 2, 5000), 1);
  xeq("mixed.poll_kernel_wakes_unix", k[1].revents, POLLIN);
  wait(NULL);

  ERR("mixed.select_negative", EINVAL, select(-1, NULL, NULL, NULL, &tv));
  if (!kernel_mode) {
    // COMPAT(linux): keel refuses nfds > FD_SETSIZE with a keel fd in the sets (the
    // kernel reads beyond an fd_set there); the buffer is large enough either way.
    fd_set big[2];
    memset(big, 0, sizeof big);
    FD_SET(idle, &big[0]);
    tv = (struct timeval){0, 0};
    ERR("mixed.select_over_fd_setsize", EINVAL, select(FD_SETSIZE + 1, big, NULL, NULL, &tv));
  }
  // epoll over kernel fds alone (the kernel waits), then with a keel socket added.
  int ep = epoll_create1(0), kq[2];
  if (pipe(kq) != 0) return failf("mixed.epoll_pipe", "pipe failed");
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 9}, got[4];
  epoll_ctl(ep, EPOLL_CTL_ADD, kq[0], &ev);
  eq("mixed.epoll_kernel_only_timeout", epoll_wait(ep, got, 4, 100), 0);
  write(kq[1], "k", 1);
  eq("mixed.epoll_kernel_only", epoll_wait(ep, got, 4, 2000), 1);
  eq("mixed.epoll_kernel_only_data", got[0].data.u32, 9);
  ev.data.u32 = 10;
  epoll_ctl(ep, EPOLL_CTL_ADD, idle, &ev);
  eq("mixed.epoll_kernel_and_keel", epoll_wait(ep, got, 4, 2000), 1);
  eq("mixed.epoll_kernel_and_keel_data", got[0].data.u32, 9);
  char kb;
  read(kq[0], &kb, 1);
  eq("mixed.epoll_both_idle_timeout", epoll_wait(ep, got, 4, 100), 0);
  close(ep), close(kq[0]), close(kq[1]);
  close(ready), close(idle), close(lo), close(p[0]), close(p[1]), close(sp[0]), close(sp[1]);
}

// dup/dup2/dup3: one connection under several numbers; the last close ends it.
static void c_dup(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  int n = open("/dev/null", O_RDONLY);
  truth("fdnum.unique", n >= 0 && n != s, "open() to get another number than socket()");
  close(n);
  OK("fdnum.f_getfd", fcntl(s, F_GETFD));
  close(s);

  // Connections earlier cases closed may still be ending at the peer: settle first.
  int e0 = eofs(), e1;
  for (int k = 0; k < 50 && (usleep(100000), e1 = eofs()) != e0; ++k) e0 = e1;
  int c = dial(P_ECHO);
  if (c < 0) return;
  int d = dup(c);
  truth("dup.distinct", d >= 0 && d != c, "a new number");
  write(d, "x", 1);
  char b[4];
  eq("dup.shared_read", read_n(c, b, 1, 5000), 1);
  int target = open("/dev/null", O_RDONLY);
  eq("dup2.onto_open_fd", dup2(c, target), target);
  int target3 = open("/dev/null", O_RDONLY);  // a number known to be ours to replace
  int d3 = dup3(c, target3, O_CLOEXEC);
  eq("dup3.number", d3, target3);
  truth("dup3.cloexec", fcntl(d3, F_GETFD) & FD_CLOEXEC, "FD_CLOEXEC");
  ERR("dup3.same_fd", EINVAL, dup3(c, c, 0));
  eq("dup2.same_fd", dup2(c, c), c);
  close(c);
  truth("dup.after_close_one", echo_ok(d, "hi"), "the echo through the dup");
  truth("dup2.after_close_one", echo_ok(target, "ho"), "the echo through the dup2");
  close(d), close(target);
  truth("dup.still_open", !eofs_above(e0, 300), "the peer still connected (one fd left)");
  close(d3);
  truth("dup.last_close_ends", eofs_above(e0, 5000), "the peer to see the end after the last close");
  // dup2 onto a keel socket closes that one.
  int a = dial(P_ECHO), z = open("/dev/null", O_RDONLY);
  e0 = eofs();
  eq("dup2.over_keel", dup2(z, a), a);
  truth("dup2.over_keel_closes", eofs_above(e0, 5000), "the replaced connection to end");
  close(a), close(z);
}

// fcntl and ioctl flags; accept4 flags.
static void c_flags(void) {
  int c = dial(P_ECHO);
  if (c < 0) return;
  char b[16];
  int fl = fcntl(c, F_GETFL);
  truth("fcntl.getfl_blocking", fl >= 0 && !(fl & O_NONBLOCK) && (fl & O_ACCMODE) == O_RDWR, "O_RDWR, no O_NONBLOCK");
  OK("fcntl.setfl_nonblock", fcntl(c, F_SETFL, fl | O_NONBLOCK));
  truth("fcntl.getfl_nonblock", fcntl(c, F_GETFL) & O_NONBLOCK, "O_NONBLOCK");
  ERR("fcntl.nonblock_read_eagain", EAGAIN, read(c, b, 1));
  OK("fcntl.setfl_clear", fcntl(c, F_SETFL, fl));
  struct timeval tv = {0, 100000};
  setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  long t0 = now_ms();
  ERR("fcntl.blocking_again", EAGAIN, read(c, b, 1));
  truth("fcntl.blocking_waited", now_ms() - t0 >= 70, "the read to block ~100 ms");
  OK("fcntl.setfd_cloexec", fcntl(c, F_SETFD, FD_CLOEXEC));
  eq("fcntl.getfd_cloexec", fcntl(c, F_GETFD), FD_CLOEXEC);
  int on = 1;
  OK("ioctl.fionbio_on", ioctl(c, FIONBIO, &on));
  ERR("ioctl.fionbio_eagain", EAGAIN, recv(c, b, 1, 0));
  truth("ioctl.fionbio_getfl", fcntl(c, F_GETFL) & O_NONBLOCK, "O_NONBLOCK after FIONBIO");
  write(c, "hello", 5);
  int n = -1;
  long end = now_ms() + 5000;
  while ((ioctl(c, FIONREAD, &n) != 0 || n < 5) && now_ms() < end) usleep(1000);
  eq("ioctl.fionread", n, 5);
  ERR("recv.dontwait_after_read", EAGAIN, (read_n(c, b, 5, 1000), recv(c, b, 1, MSG_DONTWAIT)));
  close(c);

  int l = listen_and_invite(7310);
  if (l < 0) return;
  int a = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  truth("accept4.fd", a >= 0, "a connection");
  truth("accept4.nonblock", fcntl(a, F_GETFL) & O_NONBLOCK, "O_NONBLOCK");
  truth("accept4.cloexec", fcntl(a, F_GETFD) & FD_CLOEXEC, "FD_CLOEXEC");
  eq("accept4.hello", read_n(a, b, 5, 5000), 5);
  ERR("accept4.bad_flags", EINVAL, accept4(l, NULL, NULL, 0x40000000));
  fcntl(l, F_SETFL, O_NONBLOCK);
  ERR("accept.nonblock_empty", EAGAIN, accept(l, NULL, NULL));
  struct sockaddr_in pa;
  socklen_t pl = sizeof pa;
  OK("accept.getpeername", getpeername(a, SA(pa), &pl));
  truth("accept.peer_is_kernel", pa.sin_addr.s_addr == peer(0).sin_addr.s_addr, "the peer's address");
  close(a), close(l);
}

// UDP with the peer's echo.
static void c_udp(void) {
  int u = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in pe = peer(P_UDP), from;
  socklen_t fl = sizeof from;
  char b[256];
  eq("udp.sendto", sendto(u, "ping", 4, 0, SA(pe), sizeof pe), 4);
  struct timeval tv = {5, 0};
  setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  eq("udp.recvfrom", recvfrom(u, b, sizeof b, 0, SA(from), &fl), 4);
  truth("udp.recvfrom_source", from.sin_port == pe.sin_port && from.sin_addr.s_addr == pe.sin_addr.s_addr,
        "the echo port as the source");
  ERR("udp.nonblock_empty", EAGAIN, recv(u, b, sizeof b, MSG_DONTWAIT));
  ERR("udp.send_unconnected", EDESTADDRREQ, send(u, "x", 1, 0));
  ERR("udp.getpeername_unconnected", ENOTCONN, getpeername(u, SA(from), &fl));
  OK("udp.connect", connect(u, SA(pe), sizeof pe));
  eq("udp.send", send(u, "pong", 4, 0), 4);
  eq("udp.recv", recv(u, b, sizeof b, 0), 4);
  // A short buffer: the rest of the datagram is lost; MSG_TRUNC flags it / asks its length.
  char big[100];
  memset(big, 'q', sizeof big);
  send(u, big, sizeof big, 0);
  wait_fd(u, POLLIN, 5000);
  eq("udp.short_buffer", recv(u, b, 10, 0), 10);
  ERR("udp.rest_discarded", EAGAIN, recv(u, b, sizeof b, MSG_DONTWAIT));
  send(u, big, sizeof big, 0);
  wait_fd(u, POLLIN, 5000);
  struct iovec io = {b, 10};
  struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1};
  eq("udp.recvmsg_short", recvmsg(u, &m, 0), 10);
  truth("udp.recvmsg_msg_trunc", m.msg_flags & MSG_TRUNC, "MSG_TRUNC in msg_flags");
  send(u, big, sizeof big, 0);
  wait_fd(u, POLLIN, 5000);
  eq("udp.recv_flag_trunc", recv(u, b, 10, MSG_TRUNC), 100);
  int v = 0;
  ioctl(u, FIONREAD, &v);
  eq("udp.fionread_empty", v, 0);
  close(u);
}

// sendfile from a file into a keel socket.
static void c_sendfile(void) {
  char path[] = "/tmp/errpaths.XXXXXX";
  int f = mkstemp(path);
  unlink(path);
  static char data[200000], back[200000];
  for (size_t i = 0; i < sizeof data; ++i) data[i] = (char)(i * 7 + i / 251);
  write(f, data, sizeof data);
  lseek(f, 5, SEEK_SET);
  int c = dial(P_ECHO);
  if (c < 0) return;
  off_t off = 1000;
  eq("sendfile.count", sendfile(c, f, &off, 100000), 100000);
  eq("sendfile.offset_updated", off, 101000);
  eq("sendfile.file_pos_kept", lseek(f, 0, SEEK_CUR), 5);
  eq("sendfile.echoed", read_n(c, back, 100000, 10000), 100000);
  truth("sendfile.bytes", memcmp(back, data + 1000, 100000) == 0, "the file's bytes");
  eq("sendfile.null_offset", sendfile(c, f, NULL, 10), 10);
  eq("sendfile.file_pos_moved", lseek(f, 0, SEEK_CUR), 15);
  read_n(c, back, 10, 5000);
  off = sizeof data - 3;
  eq("sendfile.at_eof_short", sendfile(c, f, &off, 100), 3);
  read_n(c, back, 3, 5000);
  ERR("sendfile.bad_in_fd", EBADF, sendfile(c, closed_fd(), NULL, 10));
  ERR("sendfile.bad_out_fd", EBADF, sendfile(closed_fd(), f, NULL, 10));
  close(c), close(f);
}

// fork after the stack started: the child's keel fds answer EBADF (documented; the
// kernel's would work), the parent's connection is unaffected. The child's exit status
// has a bit per call that answered otherwise.
static void c_fork(void) {
  int c = dial(P_ECHO);
  if (c < 0) return;
  pid_t pid = fork();
  if (pid == 0) {
    char b[4];
    int bad = 0;
    errno = 0;
    if (kernel_mode ? write(c, "", 0) != 0 : !(write(c, "x", 1) == -1 && errno == EBADF)) bad |= 1;
    errno = 0;
    ssize_t r = recv(c, b, 1, MSG_DONTWAIT);
    if (!(r == -1 && errno == (kernel_mode ? EAGAIN : EBADF))) bad |= 2;
    // Names and options too: the connection is the parent's stack's.
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    int v = 1;
    socklen_t vl = sizeof v;
    long rs[4] = {getsockname(c, SA(a), &al), getpeername(c, SA(a), &al),
                  getsockopt(c, SOL_SOCKET, SO_ERROR, &v, &vl), setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v)};
    for (int k = 0; k < 4; ++k)
      if (kernel_mode ? rs[k] != 0 : rs[k] != -1) bad |= 8 << k;
    if (close(c) != 0) bad |= 4;
    _exit(bad);
  }
  int st = -1;
  waitpid(pid, &st, 0);
  eq("fork.child_fd_semantics", WIFEXITED(st) ? WEXITSTATUS(st) : 100 + st, 0);
  truth("fork.parent_unaffected", echo_ok(c, "after fork"), "the parent's echo");
  close(c);
}

// listen, then fork before the stack starts (nginx's master and worker): the child
// runs the stack and accepts. Needs a fresh process: run alone.
static void c_prefork(void) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = addr_of("0.0.0.0", 7320);
  OK("prefork.bind", bind(l, SA(a), sizeof a));
  OK("prefork.listen", listen(l, 8));
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    char cmd[64], b[8] = {0};
    snprintf(cmd, sizeof cmd, "connect %s 7320", self_ip);
    int bad = strcmp(ctl(cmd), "ok") != 0;
    int c = accept(l, NULL, NULL);
    if (c < 0 || read_n(c, b, 5, 5000) != 5 || memcmp(b, "hello", 5) != 0) bad |= 2;
    if (!echo_ok(c, "worker")) bad |= 4;
    close(c);
    _exit(bad);
  }
  int st = -1;
  waitpid(pid, &st, 0);
  eq("prefork.child_accepts_and_echoes", WIFEXITED(st) ? WEXITSTATUS(st) : 100 + st, 0);
  close(l);
}

// Smaller paths: PEEK/WAITALL, SHUT_RD, a reset through epoll, a closed fd leaving its
// epoll sets, port 0 binds, SO_ACCEPTCONN, ICMP port unreachable on a connected UDP socket.
static void c_misc(void) {
  char b[16] = {0};
  int c = dial(P_ECHO);
  if (c < 0) return;
  write(c, "peekme", 6);
  int q = 0;  // all 6 bytes back
  for (long end = now_ms() + 5000; (ioctl(c, FIONREAD, &q) != 0 || q < 6) && now_ms() < end;) usleep(1000);
  eq("misc.peek", recv(c, b, 4, MSG_PEEK), 4);
  eq("misc.peek_more", recv(c, b, 5, MSG_PEEK), 5);
  eq("misc.read_after_peek", read(c, b, 6), 6);
  truth("misc.peeked_bytes_kept", memcmp(b, "peekme", 6) == 0, "the peeked bytes read again");
  write(c, "abc", 3);
  eq("misc.waitall", recv(c, b, 3, MSG_WAITALL), 3);
  OK("misc.shut_rd", shutdown(c, SHUT_RD));
  eq("misc.read_after_shut_rd", read(c, b, 1), 0);
  close(c);

  // A reset seen by epoll: EPOLLIN|EPOLLERR|EPOLLHUP (with RDHUP when asked).
  int ep = epoll_create1(0);
  c = dial(P_RESET);
  struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP}, got;
  epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
  unsigned seen = 0;
  long end = now_ms() + 5000;
  while (!(seen & EPOLLERR) && now_ms() < end)
    if (epoll_wait(ep, &got, 1, 1000) == 1) seen |= got.events;
  xeq("misc.epoll_reset", seen & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP),
      EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP);
  // Closing the fd takes it out of the set.
  close(c);
  eq("misc.closed_fd_left_epoll", epoll_wait(ep, &got, 1, 100), 0);
  close(ep);

  // Port 0: the stack picks one; getsockname tells it.
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = addr_of("0.0.0.0", 0), n;
  socklen_t nl = sizeof n;
  bind(l, SA(a), sizeof a);
  OK("misc.listen_port0", listen(l, 4));
  OK("misc.getsockname_port0", getsockname(l, SA(n), &nl));
  truth("misc.port0_picked", n.sin_port != 0, "a port");
  int v = 0;
  socklen_t vl = sizeof v;
  getsockopt(l, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl);
  eq("misc.so_acceptconn", v, 1);
  // accept honours SO_RCVTIMEO (EAGAIN), as Linux.
  struct timeval tv = {0, 200000};
  setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  long t0 = now_ms();
  ERR("misc.accept_rcvtimeo", EAGAIN, accept(l, NULL, NULL));
  truth("misc.accept_waited", now_ms() - t0 >= 150, "accept to wait >= 150 ms of its 200");
  close(l);

  // After a refused connect the socket may connect again, as Linux allows.
  c = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in rf = peer(P_REFUSE), ec = peer(P_ECHO);
  ERR("misc.refused_first", ECONNREFUSED, connect(c, SA(rf), sizeof rf));
  OK("misc.connect_after_refused", connect(c, SA(ec), sizeof ec));
  truth("misc.echo_after_refused", echo_ok(c, "again"), "the echo on the second connection");
  close(c);

  // A connected UDP socket learns of the peer's ICMP port unreachable: ECONNREFUSED once.
  int u = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in r = peer(P_REFUSE);
  connect(u, SA(r), sizeof r);
  send(u, "x", 1, 0);
  wait_fd(u, POLLIN, 2000);
  ERR("misc.udp_econnrefused", ECONNREFUSED, recv(u, b, sizeof b, MSG_DONTWAIT));
  ERR("misc.udp_then_eagain", EAGAIN, recv(u, b, sizeof b, MSG_DONTWAIT));
  close(u);
}

// Vectors, zero lengths, sizes and a few option round trips; bad fds in poll/select
// sets that hold keel fds; an epoll registration outliving the fd number it was made with.
static void c_misc2(void) {
  char b[64] = {0};
  int c = dial(P_ECHO);
  if (c < 0) return;
  struct iovec w[3] = {{"ab", 2}, {"", 0}, {"cde", 3}};
  eq("misc2.writev", writev(c, w, 3), 5);
  char x[2], y[8];
  struct iovec r[2] = {{x, 2}, {y, 8}};
  int q = 0;
  for (long end = now_ms() + 5000; (ioctl(c, FIONREAD, &q) != 0 || q < 5) && now_ms() < end;) usleep(1000);
  eq("misc2.readv", readv(c, r, 2), 5);
  truth("misc2.readv_bytes", memcmp(x, "ab", 2) == 0 && memcmp(y, "cde", 3) == 0, "ab|cde");
  eq("misc2.read_zero", read(c, b, 0), 0);
  eq("misc2.send_zero", send(c, b, 0, 0), 0);
  int v = -1;
  socklen_t vl = sizeof v;
  getsockopt(c, SOL_SOCKET, SO_ERROR, &v, &vl);
  eq("misc2.so_error_healthy", v, 0);
  v = 1;
  OK("misc2.set_nodelay", setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v));
  v = 0, vl = sizeof v;
  getsockopt(c, IPPROTO_TCP, TCP_NODELAY, &v, &vl);
  truth("misc2.get_nodelay", v != 0, "TCP_NODELAY on");
  v = 300;
  ERR("misc2.ip_ttl_range", EINVAL, setsockopt(c, IPPROTO_IP, IP_TTL, &v, sizeof v));

  // poll: a closed number gets POLLNVAL, the keel fd its own answer; select: EBADF.
  int bad = closed_fd();
  struct pollfd p[3] = {{c, POLLOUT, 0}, {bad, POLLIN, 0}, {-1, POLLIN, 0}};
  eq("misc2.poll_nval_count", poll(p, 3, 1000), 2);
  xeq("misc2.poll_nval", p[1].revents, POLLNVAL);
  xeq("misc2.poll_negative_ignored", p[2].revents, 0);
  fd_set rs;
  FD_ZERO(&rs);
  FD_SET(c, &rs);
  FD_SET(bad, &rs);
  struct timeval tv = {0, 0};
  ERR("misc2.select_ebadf", EBADF, select((c > bad ? c : bad) + 1, &rs, NULL, NULL, &tv));

  // The registration belongs to the open file: it outlives the number it was made with.
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 77}, got;
  epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
  int d = dup(c);
  close(c);
  write(d, "q", 1);
  eq("misc2.epoll_after_dup_close", epoll_wait(ep, &got, 1, 5000), 1);
  eq("misc2.epoll_after_dup_close_data", got.data.u32, 77);
  close(d), close(ep);

  // UDP sizes: 65507 is the largest payload, an empty datagram reads as 0.
  int u = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in pe = peer(P_UDP);
  static char big[65508];
  ERR("misc2.udp_emsgsize", EMSGSIZE, sendto(u, big, sizeof big, 0, SA(pe), sizeof pe));
  eq("misc2.udp_empty_send", sendto(u, big, 0, 0, SA(pe), sizeof pe), 0);
  tv = (struct timeval){5, 0};
  setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  eq("misc2.udp_empty_recv", recv(u, b, sizeof b, 0), 0);
  close(u);
}

// A blocking call in one thread leaves the others running: thread A waits in recv on a
// connection while the main thread writes to it (and to another connection) and reads.
struct blocked {
  int fd;
  ssize_t got;
  char buf[8];
};
static void* blocked_recv(void* arg) {
  struct blocked* b = arg;
  b->got = recv(b->fd, b->buf, sizeof b->buf, 0);
  return NULL;
}
struct waiter {
  int ep, n;
  struct epoll_event ev;
};
static void* epoll_waiter(void* arg) {
  struct waiter* w = arg;
  w->n = epoll_wait(w->ep, &w->ev, 1, 5000);
  return NULL;
}
static void* blocked_accept(void* arg) {
  struct blocked* b = arg;
  b->got = accept(b->fd, NULL, NULL);
  b->buf[0] = (char)errno;
  return NULL;
}
static void c_threads(void) {
  // A thread waits on an empty epoll; another adds a ready keel socket: the wait ends with it.
  struct waiter w = {.ep = epoll_create1(0), .n = -2};
  int r = dial(P_ECHO);
  if (r < 0) return;
  write(r, "x", 1);
  wait_fd(r, POLLIN, 5000);
  pthread_t tw;
  pthread_create(&tw, NULL, epoll_waiter, &w);
  usleep(100000);
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 5};
  epoll_ctl(w.ep, EPOLL_CTL_ADD, r, &ev);
  pthread_join(tw, NULL);
  eq("threads.epoll_add_wakes_waiter", w.n, 1);
  eq("threads.epoll_add_wakes_waiter_data", w.ev.data.u32, 5);
  close(r), close(w.ep);

  int c = dial(P_ECHO), o = dial(P_ECHO);
  if (c < 0 || o < 0) return;
  struct blocked b = {.fd = c, .got = -2};
  pthread_t t;
  pthread_create(&t, NULL, blocked_recv, &b);
  usleep(100000);
  truth("threads.other_conn_while_blocked", echo_ok(o, "meanwhile"), "an echo on another connection");
  eq("threads.still_blocked", b.got, -2);
  eq("threads.write_while_blocked", write(c, "wake", 4), 4);
  pthread_join(t, NULL);
  eq("threads.blocked_recv_got", b.got, 4);
  // shutdown(SHUT_RD) from another thread ends a blocked recv with 0.
  b.got = -2;
  pthread_create(&t, NULL, blocked_recv, &b);
  usleep(100000);
  OK("threads.shut_rd", shutdown(c, SHUT_RD));
  pthread_join(t, NULL);
  eq("threads.shut_rd_wakes_recv", b.got, 0);
  close(c), close(o);
  // shutdown of a listener from another thread ends a blocked accept with EINVAL.
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = addr_of("0.0.0.0", 7330);
  bind(l, SA(a), sizeof a);
  listen(l, 4);
  struct blocked ab = {.fd = l, .got = -2};
  pthread_create(&t, NULL, blocked_accept, &ab);
  usleep(100000);
  OK("threads.shutdown_listener", shutdown(l, SHUT_RDWR));
  pthread_join(t, NULL);
  eq("threads.shutdown_wakes_accept", ab.got, -1);
  eq("threads.shutdown_wakes_accept_errno", ab.buf[0], EINVAL);
  close(l);
}

// Listeners and readiness; rebinding a port right after its listener closed; UDP ports.
static void c_listen(void) {
  int l = listen_and_invite(7340);
  if (l < 0) return;
  xeq("listen.poll_pending", (unsigned)wait_fd(l, POLLIN, 5000), POLLIN);
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN | EPOLLET}, got;
  epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
  eq("listen.epoll_pending", epoll_wait(ep, &got, 1, 2000), 1);
  char cmd[64];
  snprintf(cmd, sizeof cmd, "connect %s 7340", self_ip);
  ctl(cmd);  // a second one: a new edge
  eq("listen.epoll_et_second", epoll_wait(ep, &got, 1, 5000), 1);
  int a1 = accept(l, NULL, NULL), a2 = accept(l, NULL, NULL);
  truth("listen.two_accepted", a1 >= 0 && a2 >= 0 && a1 != a2, "two connections");
  fcntl(l, F_SETFL, O_NONBLOCK);
  ERR("listen.then_empty", EAGAIN, accept(l, NULL, NULL));
  char hb[8];
  eq("listen.accepted_hello", read_n(a1, hb, 5, 5000), 5);
  truth("listen.accepted_echo", echo_ok(a1, "hello-back"), "the accepted connection to work");
  close(a1), close(a2), close(ep), close(l);
  // The port again at once (SO_REUSEADDR), as a restarting server does.
  int l2 = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(l2, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in at = addr_of("0.0.0.0", 7340);
  OK("listen.rebind_after_close", bind(l2, SA(at), sizeof at));
  OK("listen.relisten_after_close", listen(l2, 4));
  close(l2);

  int u1 = socket(AF_INET, SOCK_DGRAM, 0), u2 = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in ua = addr_of("0.0.0.0", 7341);
  OK("udp.bind", bind(u1, SA(ua), sizeof ua));
  ERR("udp.bind_in_use", EADDRINUSE, bind(u2, SA(ua), sizeof ua));
  int u3 = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in pe = peer(P_UDP), n;
  socklen_t nl = sizeof n;
  sendto(u3, "p", 1, 0, SA(pe), sizeof pe);
  OK("udp.getsockname_after_sendto", getsockname(u3, SA(n), &nl));
  truth("udp.port_assigned", n.sin_port != 0, "a port");
  close(u1), close(u2), close(u3);
}

// Signals during blocking calls: EINTR without SA_RESTART; with it, recv goes on and
// epoll_wait/poll still say EINTR (as Linux: they never restart).
static volatile sig_atomic_t alarms;
static void on_alarm(int sig) { (void)sig; ++alarms; }
static void alarm_in_ms(int ms) {
  struct itimerval it = {{0, 0}, {ms / 1000, (ms % 1000) * 1000}};
  setitimer(ITIMER_REAL, &it, NULL);
}
struct late {
  int fd;
  int ms;
};
static void* write_late(void* arg) {
  struct late* l = arg;
  usleep((useconds_t)l->ms * 1000);
  write(l->fd, "late", 4);
  return NULL;
}
static void c_signals(void) {
  int c = dial(P_ECHO);
  if (c < 0) return;
  char b[8];
  struct sigaction sa = {.sa_handler = on_alarm};  // no SA_RESTART
  sigaction(SIGALRM, &sa, NULL);
  alarm_in_ms(100);
  ERR("signals.recv_eintr", EINTR, recv(c, b, sizeof b, 0));
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN}, got;
  epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &sa, NULL);
  alarm_in_ms(100);
  ERR("signals.epoll_eintr_even_restart", EINTR, epoll_wait(ep, &got, 1, 5000));
  alarm_in_ms(100);
  struct pollfd p = {c, POLLIN, 0};
  ERR("signals.poll_eintr_even_restart", EINTR, poll(&p, 1, 5000));
  int a0 = alarms;
  alarm_in_ms(100);
  struct late l = {c, 300};
  pthread_t t;
  pthread_create(&t, NULL, write_late, &l);
  eq("signals.recv_restarts", recv(c, b, sizeof b, 0), 4);
  eq("signals.handler_ran", alarms - a0, 1);
  pthread_join(t, NULL);
  sa.sa_handler = SIG_DFL;
  sigaction(SIGALRM, &sa, NULL);
  close(ep), close(c);
}

struct kase {
  const char* name;
  void (*fn)(void);
  bool alone;  // not in the default set
};
static const struct kase cases[] = {
    {"prefork", c_prefork, true}, {"badfd", c_badfd, false},   {"notsock", c_notsock, false},
    {"state", c_state, false},    {"nbconnect", c_nbconnect, false}, {"timeo", c_timeo, false},
    {"rdhup", c_rdhup, false},    {"oneshot_et", c_oneshot_et, false}, {"sendbuf", c_sendbuf, false},
    {"reset", c_reset, false},    {"mixed", c_mixed, false},   {"dup", c_dup, false},
    {"flags", c_flags, false},    {"udp", c_udp, false},       {"sendfile", c_sendfile, false},
    {"fork", c_fork, false},      {"misc", c_misc, false},     {"misc2", c_misc2, false},   {"threads", c_threads, false},
    {"listen", c_listen, false},  {"signals", c_signals, false},
    {"noanswer", c_noanswer, true},
};

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: errpaths PEER_IP BASE_PORT SELF_IP [kernel] [CASE...]\n");
    return 2;
  }
  peer_ip = argv[1], base_port = atoi(argv[2]), self_ip = argv[3];
  int first = 4;
  if (argc > 4 && strcmp(argv[4], "kernel") == 0) kernel_mode = true, ++first;
  setvbuf(stdout, NULL, _IOLBF, 0);
  struct sigaction sa = {.sa_handler = on_sigpipe};
  sigaction(SIGPIPE, &sa, NULL);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    bool want = first == argc && !cases[i].alone;
    for (int k = first; k < argc; ++k)
      want |= strcmp(argv[k], cases[i].name) == 0 || (strcmp(argv[k], "all") == 0 && !cases[i].alone);
    if (!want) continue;
    printf("# case %s\n", cases[i].name);
    cases[i].fn();
  }
  printf("# %d failed (%d SIGPIPE caught)\n", failures, (int)sigpipes);
  return failures == 0 ? 0 : 1;
}
