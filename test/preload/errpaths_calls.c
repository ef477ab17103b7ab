// SPDX-License-Identifier: BSD-3-Clause
// errpaths cases: calls on bad numbers, in the wrong state, flags and dup: one connection at a time.
#include "errpaths.h"

// Every call on an fd number that names nothing: EBADF (a closed keel socket's number too).
void c_badfd(void) {
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
void c_notsock(void) {
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
void c_state(void) {
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

// dup/dup2/dup3: one connection under several numbers; the last close ends it.
void c_dup(void) {
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
void c_flags(void) {
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

// sendfile from a file into a keel socket.
void c_sendfile(void) {
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
void c_fork(void) {
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
void c_prefork(void) {
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

// Vectors, zero lengths, sizes and a few option round trips; bad fds in poll/select
// sets that hold keel fds; an epoll registration outliving the fd number it was made with.
void c_misc2(void) {
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
