// SPDX-License-Identifier: BSD-3-Clause
// errpaths cases: readiness and waiting: epoll/poll/select, full buffers, threads, signals.
#include "errpaths.h"

// EPOLLRDHUP when the peer closes, level- and edge-triggered.
void c_rdhup(void) {
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
void c_oneshot_et(void) {
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
void c_sendbuf(void) {
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

// poll and select over keel sockets and kernel fds together.
void c_mixed(void) {
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
void c_threads(void) {
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
void c_signals(void) {
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
