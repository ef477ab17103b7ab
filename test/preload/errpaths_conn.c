// SPDX-License-Identifier: BSD-3-Clause
// errpaths cases: connections and datagrams: connect outcomes, timeouts, resets, listeners, UDP.
#include "errpaths.h"

// Non-blocking connect: EINPROGRESS, then completion through epoll, poll and select.
void c_nbconnect(void) {
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
void c_noanswer(void) {
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
void c_timeo(void) {
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

// Writes after the peer's RST: EPIPE with SIGPIPE, none with MSG_NOSIGNAL; reads: ECONNRESET.
void c_reset(void) {
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

// Smaller paths: PEEK/WAITALL, SHUT_RD, a reset through epoll, a closed fd leaving its
// epoll sets, port 0 binds, SO_ACCEPTCONN, ICMP port unreachable on a connected UDP socket.
void c_misc(void) {
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

// Listeners and readiness; rebinding a port right after its listener closed; UDP ports.
void c_listen(void) {
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

// UDP with the peer's echo.
void c_udp(void) {
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
