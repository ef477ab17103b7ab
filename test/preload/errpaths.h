// SPDX-License-Identifier: BSD-3-Clause
// errpaths: what the cases share (the program's description is in errpaths.c).
#pragma once
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
extern const char* peer_ip;
extern const char* self_ip;
extern int base_port;
extern bool kernel_mode;  // no shim: the expectations are checked against Linux
extern int failures;
extern volatile sig_atomic_t sigpipes;

// Checks: each prints `ok NAME` or `FAIL NAME: ...` and counts failures.
// ERR: the call failed with exactly errno `want`; OK: it did not fail.
#define ERR(name, want, expr) \
  do { errno = 0; long r_ = (long)(expr); err_is(name, r_, errno, want); } while (0)
#define OK(name, expr) \
  do { errno = 0; long r_ = (long)(expr); int e_ = errno; \
       if (r_ != -1) pass(name); else failf(name, "expected success got -1 (%s)", strerror(e_)); } while (0)
#define SA(a) ((struct sockaddr*)&(a))

void pass(const char* name);
void failf(const char* name, const char* fmt, ...);
void err_is(const char* name, long r, int e, int want);
void eq(const char* name, long got, long want);
void truth(const char* name, bool c, const char* what);
void xeq(const char* name, unsigned got, unsigned want);
long now_ms(void);
struct sockaddr_in addr_of(const char* ip, int port);
struct sockaddr_in peer(int k);  // the peer's port BASE + k
int dial(int k);
short wait_fd(int fd, short ev, int ms);
size_t read_n(int fd, void* buf, size_t n, int ms);
const char* ctl(const char* cmd);
int listen_and_invite(int port);
int eofs(void);
bool eofs_above(int n, int ms);
bool echo_ok(int fd, const char* msg);
int closed_fd(void);
void on_sigpipe(int sig);

// The cases (one job each; the table is in errpaths.c).
void c_badfd(void);
void c_notsock(void);
void c_state(void);
void c_nbconnect(void);
void c_noanswer(void);
void c_timeo(void);
void c_rdhup(void);
void c_oneshot_et(void);
void c_sendbuf(void);
void c_reset(void);
void c_mixed(void);
void c_dup(void);
void c_flags(void);
void c_udp(void);
void c_sendfile(void);
void c_fork(void);
void c_prefork(void);
void c_misc(void);
void c_misc2(void);
void c_threads(void);
void c_listen(void);
void c_signals(void);
