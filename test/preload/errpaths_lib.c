// SPDX-License-Identifier: BSD-3-Clause
// errpaths: the checks and the helpers the cases share.
#include "errpaths.h"

const char* peer_ip;
const char* self_ip;
int base_port;
bool kernel_mode;  // no shim: the expectations are checked against Linux
int failures;
volatile sig_atomic_t sigpipes;

// ===== checks =====

void pass(const char* name) { printf("ok %s\n", name); }
void failf(const char* name, const char* fmt, ...) {
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
void err_is(const char* name, long r, int e, int want) {
  if (r == -1 && e == want) pass(name);
  else failf(name, "expected -1/%s got %ld/%s (%s)", ename(want), r, ename(r == -1 ? e : 0), strerror(e));
}
// The call succeeded (not -1).
void eq(const char* name, long got, long want) {
  if (got == want) pass(name);
  else failf(name, "expected %ld got %ld (%s)", want, got, strerror(errno));
}
void truth(const char* name, bool c, const char* what) {
  if (c) pass(name);
  else failf(name, "expected %s got otherwise (%s)", what, strerror(errno));
}
void xeq(const char* name, unsigned got, unsigned want) {  // event masks, in hex
  if (got == want) pass(name);
  else failf(name, "expected 0x%x got 0x%x", want, got);
}

// ===== helpers =====

long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000L + t.tv_nsec / 1000000;
}
struct sockaddr_in addr_of(const char* ip, int port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}
struct sockaddr_in peer(int k) { return addr_of(peer_ip, base_port + k); }

// A blocking connection to the peer's port k (-1 on failure, reported).
int dial(int k) {
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
short wait_fd(int fd, short ev, int ms) {
  struct pollfd p = {fd, ev, 0};
  return poll(&p, 1, ms) > 0 ? p.revents : 0;
}
// Reads exactly n bytes (blocking, within ms); the count read.
size_t read_n(int fd, void* buf, size_t n, int ms) {
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
const char* ctl(const char* cmd) {
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
int listen_and_invite(int port) {
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
int eofs(void) { return atoi(ctl("eofs")); }
// Waits until the echo port has seen more than n connections end.
bool eofs_above(int n, int ms) {
  long end = now_ms() + ms;
  while (now_ms() < end) {
    if (eofs() > n) return true;
    usleep(20000);
  }
  return false;
}
bool echo_ok(int fd, const char* msg) {
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
int closed_fd(void) {  // a number that names nothing
  int fd = open("/dev/null", O_RDONLY);
  close(fd);
  return fd;
}
void on_sigpipe(int sig) { (void)sig; ++sigpipes; }
