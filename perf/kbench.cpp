// SPDX-License-Identifier: BSD-3-Clause
// kbench: the kernel side of perf/. The same workloads and the same summary lines as
// keel-pmd's `bench` commands, over Linux TCP sockets and epoll, so perf/run compares
// like with like:
//
//   kbench server --port P [--echo|--discard|--http] [--addr A] [--busy|--block]
//   kbench rr     ADDR PORT [--size N] [--conns N] [--seconds S] [--busy|--block]
//   kbench crr    ADDR PORT [--size N] [--conns N] [--seconds S] [--busy|--block]
//   kbench stream ADDR PORT [--conns N] [--seconds S] [--size N] [--busy|--block]
//   kbench http   ADDR PORT [--conns N] [--seconds S] [--path P] [--busy|--block]
//   kbench idle   ADDR PORT [--conns N] [--seconds S]
//
// --busy: non-blocking sockets, epoll_wait with timeout 0 (or recv spinning on a single
// connection): the kernel at its best, one core burnt per process. --block: epoll_wait
// sleeps until something happens: how applications run, paying a wake-up per message.
// TCP_NODELAY is on everywhere. A warm-up of min(1 s, SECONDS/5) runs before the SECONDS
// measured; a live line per second, then one summary line (see docs/PERFORMANCE.md):
//   bench rr: size=64 conns=1 seconds=3.00 transactions=N tps=X p50_us=.. p99_us=..
//             p999_us=.. max_us=.. errors=0 ok
// `idle` opens N connections, prints `bench idle: ...` once they are established and
// holds them until stdin closes, a signal, or SECONDS (0: no limit) pass: perf/run
// measures the kernel's memory meanwhile.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tools/common/latency_histogram.hpp"

namespace {

using keel::tools::LatencyHistogram;

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000u + uint64_t(ts.tv_nsec);
}

constexpr const char* usage_text =
    "usage: kbench server --port P [--echo|--discard|--http] [--addr A] [--busy|--block]\n"
    "       kbench rr|crr|stream|http ADDR PORT [--size N] [--conns N] [--seconds S]\n"
    "              [--path P] [--busy|--block]\n"
    "       kbench idle ADDR PORT [--conns N] [--seconds S]\n";

[[noreturn]] void die_usage(const std::string& why) {
  std::fprintf(stderr, "kbench: %s\n%s", why.c_str(), usage_text);
  std::exit(2);
}

[[noreturn]] void die_sys(const char* what) {
  std::fprintf(stderr, "kbench: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

// ===== options =====

enum class Mode { server, rr, crr, stream, http, idle };
enum class Service { echo, discard, http };

struct Options {
  Mode mode = Mode::rr;
  Service service = Service::echo;
  std::string addr = "0.0.0.0";
  uint16_t port = 0;
  size_t size = 0;  // 0: the mode's default
  unsigned conns = 1;
  double seconds = -1;  // -1: the mode's default (3 s; idle: hold until stdin closes)
  bool busy = true;
  std::string path = "/";
};

bool parse_u64(std::string_view s, uint64_t& out, uint64_t min, uint64_t max) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || p != s.data() + s.size() || v < min || v > max) return false;
  out = v;
  return true;
}

Options parse(int argc, char** argv) {
  if (argc < 2) die_usage("needs a mode: server, rr, crr, stream, http or idle");
  Options o;
  std::string_view m = argv[1];
  if (m == "server") o.mode = Mode::server;
  else if (m == "rr") o.mode = Mode::rr;
  else if (m == "crr") o.mode = Mode::crr;
  else if (m == "stream") o.mode = Mode::stream;
  else if (m == "http") o.mode = Mode::http;
  else if (m == "idle") o.mode = Mode::idle;
  else if (m == "-h" || m == "--help") {
    std::fputs(usage_text, stdout);
    std::exit(0);
  }
  else die_usage("unknown mode '" + std::string(m) + "'");
  int i = 2;
  if (o.mode != Mode::server) {
    if (argc < 4) die_usage(std::string(m) + " needs ADDR PORT");
    o.addr = argv[2];
    uint64_t p = 0;
    if (!parse_u64(argv[3], p, 1, 65535)) die_usage("PORT '" + std::string(argv[3]) + "' is not 1..65535");
    o.port = uint16_t(p);
    i = 4;
    in_addr a{};
    if (inet_pton(AF_INET, o.addr.c_str(), &a) != 1) die_usage("ADDR '" + o.addr + "' is not an IPv4 address");
  }
  bool have_port = o.mode != Mode::server;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) die_usage("option " + a + " needs a value");
      return argv[++i];
    };
    uint64_t v = 0;
    bool server_only = a == "--port" || a == "--echo" || a == "--discard" || a == "--http" || a == "--addr";
    bool client_only = a == "--size" || a == "--conns" || a == "--seconds" || a == "--path";
    if ((server_only && o.mode != Mode::server) || (client_only && o.mode == Mode::server))
      die_usage("option " + a + " does not apply to " + std::string(m));
    if (a == "--port") {
      if (!parse_u64(value(), v, 1, 65535)) die_usage("option --port needs 1..65535");
      o.port = uint16_t(v);
      have_port = true;
    } else if (a == "--echo") {
      o.service = Service::echo;
    } else if (a == "--discard") {
      o.service = Service::discard;
    } else if (a == "--http") {
      o.service = Service::http;
    } else if (a == "--addr") {
      o.addr = value();
      in_addr x{};
      if (inet_pton(AF_INET, o.addr.c_str(), &x) != 1) die_usage("option --addr: '" + o.addr + "' is not an IPv4 address");
    } else if (a == "--busy") {
      o.busy = true;
    } else if (a == "--block") {
      o.busy = false;
    } else if (a == "--size") {
      if (o.mode == Mode::http || o.mode == Mode::idle) die_usage("option --size does not apply to " + std::string(m));
      if (!parse_u64(value(), v, 1, 16u << 20)) die_usage("option --size needs 1..16777216 bytes");
      o.size = size_t(v);
    } else if (a == "--conns") {
      if (!parse_u64(value(), v, 1, 100000)) die_usage("option --conns needs 1..100000");
      o.conns = unsigned(v);
    } else if (a == "--seconds") {
      std::string s = value();
      char* end = nullptr;
      double d = std::strtod(s.c_str(), &end);
      if (end == s.c_str() || *end != '\0' || !(d >= 0 && d <= 86400) || (d == 0 && o.mode != Mode::idle))
        die_usage("option --seconds needs a number of seconds (0 < S <= 86400), got '" + s + "'");
      o.seconds = d;
    } else if (a == "--path") {
      if (o.mode != Mode::http) die_usage("option --path applies to http only");
      o.path = value();
      if (o.path.empty() || o.path[0] != '/') die_usage("option --path needs a path starting with /");
    } else {
      die_usage("unknown option '" + a + "'");
    }
  }
  if (o.mode == Mode::server && !have_port) die_usage("server needs --port P");
  if (o.size == 0) o.size = o.mode == Mode::stream ? 65536 : 64;
  if (o.seconds < 0) o.seconds = o.mode == Mode::idle ? 0 : 3;
  return o;
}

// ===== sockets =====

void raise_nofile(unsigned conns) {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) != 0) return;
  rlim_t want = rlim_t(conns) + 64;  // the connections, epoll, stdio
  if (r.rlim_cur >= want) return;
  rlimit n = r;
  n.rlim_cur = std::max<rlim_t>(want, 65536);
  if (n.rlim_max < n.rlim_cur) n.rlim_max = n.rlim_cur;  // root may raise the hard limit
  if (setrlimit(RLIMIT_NOFILE, &n) != 0) {
    n = r;
    n.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &n);
    if (n.rlim_cur < want)
      std::fprintf(stderr, "kbench: warning: RLIMIT_NOFILE %llu is below the %llu descriptors wanted\n",
                   (unsigned long long)n.rlim_cur, (unsigned long long)want);
  }
}

void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

sockaddr_in make_addr(const std::string& addr, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  inet_pton(AF_INET, addr.c_str(), &sa.sin_addr);
  return sa;
}

// A non-blocking socket with a connect() under way (or done); -1 on an immediate failure.
int start_connect(const sockaddr_in& sa) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  set_nodelay(fd);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0 && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  return fd;
}

bool connect_done(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  return getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
}

class Epoll {
 public:
  explicit Epoll(bool busy) : busy_(busy), fd_(epoll_create1(EPOLL_CLOEXEC)) {
    if (fd_ < 0) die_sys("epoll_create1");
  }
  ~Epoll() { close(fd_); }
  void add(int fd, uint32_t events, uint64_t data) { ctl(EPOLL_CTL_ADD, fd, events, data); }
  void mod(int fd, uint32_t events, uint64_t data) { ctl(EPOLL_CTL_MOD, fd, events, data); }
  void del(int fd) { epoll_ctl(fd_, EPOLL_CTL_DEL, fd, nullptr); }
  /// Busy: returns at once. Block: sleeps up to max_ms (so the caller still sees the clock).
  int wait(epoll_event* ev, int n, int max_ms) {
    int r = epoll_wait(fd_, ev, n, busy_ ? 0 : max_ms);
    return r < 0 ? 0 : r;
  }

 private:
  void ctl(int op, int fd, uint32_t events, uint64_t data) {
    epoll_event e{};
    e.events = events;
    e.data.u64 = data;
    if (epoll_ctl(fd_, op, fd, &e) != 0) die_sys("epoll_ctl");
  }
  bool busy_;
  int fd_;
};

// Opens `n` connections (at most 256 handshakes at a time) and waits until each is
// established or failed; fds[i] = -1 for the failed ones (counted in `errors`). Gives up
// on what is not established after 30 s.
std::vector<int> connect_all(const Options& o, unsigned n, unsigned& errors) {
  sockaddr_in sa = make_addr(o.addr, o.port);
  std::vector<int> fds(n, -1);
  std::vector<uint8_t> state(n, 0);  // 0 pending, 1 established, 2 failed
  Epoll ep(false);
  unsigned next = 0, pending = 0, done = 0;
  uint64_t deadline = now_ns() + 30'000'000'000ull;
  std::vector<epoll_event> ev(256);
  while (done < n && !g_stop && now_ns() < deadline) {
    while (next < n && pending < 256) {
      int fd = start_connect(sa);
      if (fd < 0) {
        state[next] = 2;
        ++errors;
        ++done;
        ++next;
        continue;
      }
      fds[next] = fd;
      ep.add(fd, EPOLLOUT, next);
      ++next;
      ++pending;
    }
    int k = ep.wait(ev.data(), int(ev.size()), 100);
    for (int j = 0; j < k; ++j) {
      unsigned idx = unsigned(ev[j].data.u64);
      int fd = fds[idx];
      ep.del(fd);
      --pending;
      ++done;
      state[idx] = connect_done(fd) ? 1 : 2;
      if (state[idx] == 2) {
        close(fd);
        fds[idx] = -1;
        ++errors;
      }
    }
  }
  for (unsigned idx = 0; idx < n; ++idx)
    if (state[idx] == 0) {  // still connecting (or never started): timed out
      if (fds[idx] >= 0) close(fds[idx]);
      fds[idx] = -1;
      ++errors;
    }
  unsigned failed = 0;
  for (int fd : fds) failed += fd < 0;
  if (failed)
    std::fprintf(stderr, "kbench: %u of %u connections to %s:%u not established\n", failed, n, o.addr.c_str(),
                 o.port);
  return fds;
}

std::string us(uint64_t ns) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", double(ns) / 1000.0);
  return b;
}

std::string fixed(double v, int digits) {
  char b[48];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}

std::string verdict(unsigned errors, const char* extra = nullptr) {
  if (g_stop) return "FAILED (interrupted)";
  if (errors) return "FAILED (" + std::to_string(errors) + " connection(s) reset, refused or timed out)";
  if (extra) return std::string("FAILED (") + extra + ")";
  return "ok";
}

/// The run's clock: warm-up of min(1 s, SECONDS/5), then SECONDS measured; a live line
/// each second from the start.
struct Phases {
  explicit Phases(double seconds) {
    start = now_ns();
    double warm = std::min(1.0, seconds / 5);
    measure_from = start + uint64_t(warm * 1e9);
    end = measure_from + uint64_t(seconds * 1e9);
    next_tick = start + 1'000'000'000ull;
  }
  bool measuring(uint64_t t) const { return t >= measure_from && t < end; }
  /// Milliseconds a blocking wait may sleep: until the next tick or the end, at most 100.
  int wait_ms(uint64_t t) const {
    uint64_t until = std::min(next_tick, end);
    if (until <= t) return 0;
    return int(std::min<uint64_t>(100, (until - t) / 1'000'000 + 1));
  }
  uint64_t start, measure_from, end, next_tick;
  unsigned tick = 0;
};

// ===== request/response clients: rr, crr, http =====

/// The per-second table of the transaction workloads: transactions (or connections,
/// requests) per second, the second's p50/p99, errors so far.
struct TxTable {
  explicit TxTable(const char* unit) {
    std::printf("%6s %16s %10s %10s %8s\n", "second", (std::string(unit) + "/s").c_str(), "p50_us", "p99_us",
                "errors");
    std::fflush(stdout);
  }
  void record(uint64_t lat_ns) {
    sec.record(lat_ns);
    ++count;
  }
  void maybe_print(Phases& ph, uint64_t t, unsigned errors) {
    if (t < ph.next_tick) return;
    ++ph.tick;
    std::printf("%6u %16llu %10s %10s %8u%s\n", ph.tick, (unsigned long long)count, us(sec.quantile(0.5)).c_str(),
                us(sec.quantile(0.99)).c_str(), errors,
                t < ph.measure_from + 1'000'000'000ull && ph.measure_from > ph.start ? "  (warm-up)" : "");
    std::fflush(stdout);
    sec.reset();
    count = 0;
    ph.next_tick += 1'000'000'000ull;
  }
  LatencyHistogram sec;
  uint64_t count = 0;
};

struct RrConn {
  int fd = -1;
  size_t sent = 0, got = 0;
  uint64_t t0 = 0;
  bool dead = false;
};

int run_rr(const Options& o) {
  raise_nofile(o.conns);
  unsigned errors = 0;
  auto fds = connect_all(o, o.conns, errors);
  std::vector<RrConn> c(o.conns);
  for (unsigned i = 0; i < o.conns; ++i) {
    c[i].fd = fds[i];
    c[i].dead = fds[i] < 0;
  }
  std::string req(o.size, 'x');
  std::vector<char> buf(std::max<size_t>(o.size, 65536));
  LatencyHistogram all;
  uint64_t transactions = 0;
  Epoll ep(o.busy);
  bool spin_one = o.busy && o.conns == 1;  // one connection: recv spinning, no epoll
  auto kill = [&](RrConn& k) {
    if (k.dead) return;
    k.dead = true;
    ++errors;
    if (!spin_one) ep.del(k.fd);
  };
  // Sends what is left of the request; false if the connection broke.
  auto push = [&](RrConn& k, unsigned idx) -> bool {
    while (k.sent < o.size) {
      ssize_t n = send(k.fd, req.data() + k.sent, o.size - k.sent, MSG_NOSIGNAL);
      if (n > 0) {
        k.sent += size_t(n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (!spin_one) ep.mod(k.fd, EPOLLIN | EPOLLOUT, idx);
        return true;
      }
      return false;
    }
    return true;
  };
  auto begin = [&](RrConn& k, unsigned idx, uint64_t t) -> bool {
    k.sent = k.got = 0;
    k.t0 = t;
    return push(k, idx);
  };
  TxTable table("transactions");
  Phases ph(o.seconds);
  for (unsigned i = 0; i < o.conns; ++i) {
    if (c[i].dead) continue;
    if (!spin_one) ep.add(c[i].fd, EPOLLIN, i);
    if (!begin(c[i], i, now_ns())) kill(c[i]);
  }
  // Reads what is there; on a complete response records it and starts the next request.
  auto pull = [&](RrConn& k, unsigned idx) {
    for (;;) {
      ssize_t n = recv(k.fd, buf.data(), buf.size(), MSG_DONTWAIT);
      if (n > 0) {
        k.got += size_t(n);
        if (k.got >= o.size && k.sent >= o.size) {
          uint64_t t = now_ns();
          if (ph.measuring(t)) {
            all.record(t - k.t0);
            ++transactions;
          }
          table.record(t - k.t0);
          if (!begin(k, idx, t)) {
            kill(k);
            return;
          }
        }
        if (size_t(n) < buf.size()) return;
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      kill(k);  // EOF or reset
      return;
    }
  };
  std::vector<epoll_event> ev(1024);
  for (;;) {
    uint64_t t = now_ns();
    if (t >= ph.end || g_stop) break;
    table.maybe_print(ph, t, errors);
    if (spin_one) {
      if (!c[0].dead) pull(c[0], 0);
      else break;
      continue;
    }
    int k = ep.wait(ev.data(), int(ev.size()), ph.wait_ms(t));
    for (int j = 0; j < k; ++j) {
      unsigned idx = unsigned(ev[j].data.u64);
      RrConn& r = c[idx];
      if (r.dead) continue;
      if (ev[j].events & EPOLLOUT) {
        if (!push(r, idx)) {
          kill(r);
          continue;
        }
        if (r.sent >= o.size) ep.mod(r.fd, EPOLLIN, idx);
      }
      if (ev[j].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) pull(r, idx);
    }
  }
  for (auto& k : c)
    if (k.fd >= 0) close(k.fd);
  double secs = o.seconds;
  std::printf("bench rr: size=%zu conns=%u seconds=%s transactions=%llu tps=%s p50_us=%s p99_us=%s "
              "p999_us=%s max_us=%s errors=%u %s\n",
              o.size, o.conns, fixed(secs, 2).c_str(), (unsigned long long)transactions,
              fixed(double(transactions) / secs, 1).c_str(), us(all.quantile(0.5)).c_str(),
              us(all.quantile(0.99)).c_str(), us(all.quantile(0.999)).c_str(), us(all.max()).c_str(), errors,
              verdict(errors, transactions == 0 ? "no transaction completed" : nullptr).c_str());
  return errors || transactions == 0 || g_stop ? 1 : 0;
}

// crr: per slot, connect, one request/response, close (client first), again.
struct CrrSlot {
  int fd = -1;
  enum class St : uint8_t { idle, connecting, waiting } st = St::idle;
  size_t sent = 0, got = 0;
  uint64_t t0 = 0;
};

int run_crr(const Options& o) {
  raise_nofile(o.conns);
  sockaddr_in sa = make_addr(o.addr, o.port);
  std::vector<CrrSlot> slots(o.conns);
  std::string req(o.size, 'x');
  std::vector<char> buf(std::max<size_t>(o.size, 65536));
  LatencyHistogram all;
  uint64_t completed = 0;
  unsigned errors = 0;
  Epoll ep(o.busy);
  TxTable table("connections");
  Phases ph(o.seconds);
  auto finish = [&](CrrSlot& s) {
    if (s.fd >= 0) {
      ep.del(s.fd);
      close(s.fd);
    }
    s.fd = -1;
    s.st = CrrSlot::St::idle;
  };
  auto fail = [&](CrrSlot& s) {
    ++errors;
    finish(s);
  };
  auto open_slot = [&](CrrSlot& s, unsigned idx) {
    s.t0 = now_ns();
    s.sent = s.got = 0;
    s.fd = start_connect(sa);
    if (s.fd < 0) {
      ++errors;
      s.st = CrrSlot::St::idle;
      return;
    }
    s.st = CrrSlot::St::connecting;
    ep.add(s.fd, EPOLLOUT, idx);
  };
  auto push = [&](CrrSlot& s, unsigned idx) -> bool {
    while (s.sent < o.size) {
      ssize_t n = send(s.fd, req.data() + s.sent, o.size - s.sent, MSG_NOSIGNAL);
      if (n > 0) {
        s.sent += size_t(n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        ep.mod(s.fd, EPOLLIN | EPOLLOUT, idx);
        return true;
      }
      return false;
    }
    ep.mod(s.fd, EPOLLIN, idx);
    return true;
  };
  std::vector<epoll_event> ev(1024);
  for (;;) {
    uint64_t t = now_ns();
    if (t >= ph.end || g_stop) break;
    table.maybe_print(ph, t, errors);
    for (unsigned i = 0; i < o.conns; ++i)
      if (slots[i].st == CrrSlot::St::idle) open_slot(slots[i], i);
    int k = ep.wait(ev.data(), int(ev.size()), ph.wait_ms(t));
    for (int j = 0; j < k; ++j) {
      unsigned idx = unsigned(ev[j].data.u64);
      CrrSlot& s = slots[idx];
      if (s.st == CrrSlot::St::connecting) {
        if (!connect_done(s.fd)) {
          fail(s);
          continue;
        }
        s.st = CrrSlot::St::waiting;
        if (!push(s, idx)) fail(s);
        continue;
      }
      if (s.st != CrrSlot::St::waiting) continue;
      if ((ev[j].events & EPOLLOUT) && !push(s, idx)) {
        fail(s);
        continue;
      }
      if (!(ev[j].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) continue;
      for (;;) {
        ssize_t n = recv(s.fd, buf.data(), buf.size(), MSG_DONTWAIT);
        if (n > 0) {
          s.got += size_t(n);
          if (s.got >= o.size && s.sent >= o.size) {
            uint64_t t1 = now_ns();
            if (ph.measuring(t1)) {
              all.record(t1 - s.t0);
              ++completed;
            }
            table.record(t1 - s.t0);
            finish(s);  // the client closes first
            break;
          }
          continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        fail(s);
        break;
      }
    }
  }
  for (auto& s : slots)
    if (s.fd >= 0) close(s.fd);
  std::printf("bench crr: size=%zu seconds=%s connections=%llu cps=%s p50_us=%s p99_us=%s p999_us=%s "
              "errors=%u %s\n",
              o.size, fixed(o.seconds, 2).c_str(), (unsigned long long)completed,
              fixed(double(completed) / o.seconds, 1).c_str(), us(all.quantile(0.5)).c_str(),
              us(all.quantile(0.99)).c_str(), us(all.quantile(0.999)).c_str(), errors,
              verdict(errors, completed == 0 ? "no connection completed" : nullptr).c_str());
  return errors || completed == 0 || g_stop ? 1 : 0;
}

// http: keep-alive GETs, one outstanding per connection (like wrk with -c conns).
struct HttpConn {
  int fd = -1;
  std::string in;
  size_t sent = 0;
  uint64_t t0 = 0;
  bool dead = false;
};

// Parses one response at the start of `in`: its total length (0 if incomplete) and status.
size_t http_response(const std::string& in, int& status, bool& bad) {
  size_t hdr = in.find("\r\n\r\n");
  if (hdr == std::string::npos) {
    bad = in.size() > 65536;
    return 0;
  }
  bad = false;
  if (in.compare(0, 5, "HTTP/") != 0 || in.size() < 12) {
    bad = true;
    return 0;
  }
  status = std::atoi(in.c_str() + 9);
  size_t len = 0;
  size_t pos = 0;
  while ((pos = in.find("\r\n", pos)) != std::string::npos && pos < hdr) {
    pos += 2;
    static constexpr std::string_view cl = "content-length:";
    if (in.size() - pos > cl.size() && strncasecmp(in.c_str() + pos, cl.data(), cl.size()) == 0)
      len = size_t(std::strtoull(in.c_str() + pos + cl.size(), nullptr, 10));
  }
  size_t total = hdr + 4 + len;
  return in.size() >= total ? total : 0;
}

int run_http(const Options& o) {
  raise_nofile(o.conns);
  unsigned errors = 0;
  auto fds = connect_all(o, o.conns, errors);
  std::vector<HttpConn> c(o.conns);
  std::string req = "GET " + o.path + " HTTP/1.1\r\nHost: " + o.addr + "\r\nUser-Agent: kbench\r\n\r\n";
  std::vector<char> buf(65536);
  LatencyHistogram all;
  uint64_t requests = 0, non2xx = 0;
  Epoll ep(o.busy);
  TxTable table("requests");
  Phases ph(o.seconds);
  auto kill = [&](HttpConn& k) {
    if (k.dead) return;
    k.dead = true;
    ++errors;
    ep.del(k.fd);
  };
  auto push = [&](HttpConn& k, unsigned idx) -> bool {
    while (k.sent < req.size()) {
      ssize_t n = send(k.fd, req.data() + k.sent, req.size() - k.sent, MSG_NOSIGNAL);
      if (n > 0) {
        k.sent += size_t(n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        ep.mod(k.fd, EPOLLIN | EPOLLOUT, idx);
        return true;
      }
      return false;
    }
    return true;
  };
  for (unsigned i = 0; i < o.conns; ++i) {
    c[i].fd = fds[i];
    c[i].dead = fds[i] < 0;
    if (c[i].dead) continue;
    ep.add(c[i].fd, EPOLLIN, i);
    c[i].t0 = now_ns();
    if (!push(c[i], i)) kill(c[i]);
  }
  std::vector<epoll_event> ev(1024);
  for (;;) {
    uint64_t t = now_ns();
    if (t >= ph.end || g_stop) break;
    table.maybe_print(ph, t, errors);
    int k = ep.wait(ev.data(), int(ev.size()), ph.wait_ms(t));
    for (int j = 0; j < k; ++j) {
      unsigned idx = unsigned(ev[j].data.u64);
      HttpConn& h = c[idx];
      if (h.dead) continue;
      if (ev[j].events & EPOLLOUT) {
        if (!push(h, idx)) {
          kill(h);
          continue;
        }
        if (h.sent >= req.size()) ep.mod(h.fd, EPOLLIN, idx);
      }
      if (!(ev[j].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) continue;
      for (;;) {
        ssize_t n = recv(h.fd, buf.data(), buf.size(), MSG_DONTWAIT);
        if (n > 0) {
          h.in.append(buf.data(), size_t(n));
          int status = 0;
          bool bad = false;
          size_t len = http_response(h.in, status, bad);
          if (bad) {
            kill(h);
            break;
          }
          if (len == 0) continue;
          uint64_t t1 = now_ns();
          if (ph.measuring(t1)) {
            all.record(t1 - h.t0);
            ++requests;
            if (status < 200 || status > 299) ++non2xx;
          }
          table.record(t1 - h.t0);
          h.in.erase(0, len);
          h.sent = 0;
          h.t0 = t1;
          if (!push(h, idx)) {
            kill(h);
            break;
          }
          continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        kill(h);
        break;
      }
    }
  }
  for (auto& k : c)
    if (k.fd >= 0) close(k.fd);
  std::printf("bench http: conns=%u seconds=%s requests=%llu rps=%s p50_us=%s p99_us=%s p999_us=%s "
              "errors=%u non2xx=%llu %s\n",
              o.conns, fixed(o.seconds, 2).c_str(), (unsigned long long)requests,
              fixed(double(requests) / o.seconds, 1).c_str(), us(all.quantile(0.5)).c_str(),
              us(all.quantile(0.99)).c_str(), us(all.quantile(0.999)).c_str(), errors,
              (unsigned long long)non2xx,
              verdict(errors, requests == 0 ? "no request completed" : non2xx ? "non-2xx responses" : nullptr)
                  .c_str());
  return errors || requests == 0 || non2xx || g_stop ? 1 : 0;
}

// ===== stream =====

int run_stream(const Options& o) {
  raise_nofile(o.conns);
  unsigned errors = 0;
  auto fds = connect_all(o, o.conns, errors);
  std::vector<uint64_t> written(o.conns, 0);
  std::vector<bool> dead(o.conns, false);
  for (unsigned i = 0; i < o.conns; ++i) dead[i] = fds[i] < 0;
  std::vector<char> chunk(o.size, 'x');
  Epoll ep(o.busy);
  for (unsigned i = 0; i < o.conns; ++i)
    if (!dead[i]) ep.add(fds[i], EPOLLOUT, i);
  // Acknowledged bytes: written minus what the socket still holds (unsent + unacknowledged).
  auto acked = [&]() {
    uint64_t a = 0;
    for (unsigned i = 0; i < o.conns; ++i) {
      if (fds[i] < 0) continue;
      int q = 0;
      if (!dead[i] && ioctl(fds[i], SIOCOUTQ, &q) != 0) q = 0;
      a += written[i] - uint64_t(std::max(q, 0));
    }
    return a;
  };
  auto retrans = [&]() {
    uint64_t r = 0;
    for (unsigned i = 0; i < o.conns; ++i) {
      if (fds[i] < 0) continue;
      tcp_info ti{};
      socklen_t len = sizeof ti;
      if (getsockopt(fds[i], IPPROTO_TCP, TCP_INFO, &ti, &len) == 0) r += ti.tcpi_total_retrans;
    }
    return r;
  };
  auto kill = [&](unsigned i) {
    if (dead[i]) return;
    dead[i] = true;
    ++errors;
    ep.del(fds[i]);
  };
  // A bounded number of sends per call: against a reader that keeps up, send()
  // may never say EAGAIN, and the loop must still look at the clock (and the
  // other connections).
  auto fill = [&](unsigned i) {
    for (int sends = 0; sends < 64; ++sends) {
      ssize_t n = send(fds[i], chunk.data(), chunk.size(), MSG_NOSIGNAL);
      if (n > 0) {
        written[i] += uint64_t(n);
        if (size_t(n) < chunk.size()) return;
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      kill(i);
      return;
    }
  };
  std::printf("%6s %10s %12s\n", "second", "Gbit/s", "retransmits");
  std::fflush(stdout);
  Phases ph(o.seconds);
  bool measured = false;
  uint64_t a0 = 0, r0 = 0, last_a = 0, last_r = retrans();
  std::vector<epoll_event> ev(1024);
  for (;;) {
    uint64_t t = now_ns();
    if (!measured && t >= ph.measure_from) {
      a0 = acked();
      r0 = retrans();
      measured = true;
    }
    if (t >= ph.end || g_stop) break;
    if (t >= ph.next_tick) {
      uint64_t a = acked(), r = retrans();
      ++ph.tick;
      std::printf("%6u %10.2f %12llu%s\n", ph.tick, double(a - last_a) * 8 / 1e9,
                  (unsigned long long)(r - last_r), t < ph.measure_from + 1'000'000'000ull && ph.measure_from > ph.start ? " (warm-up)" : "");
      std::fflush(stdout);
      last_a = a;
      last_r = r;
      ph.next_tick += 1'000'000'000ull;
    }
    if (o.busy) {
      for (unsigned i = 0; i < o.conns; ++i)
        if (!dead[i]) fill(i);
      continue;
    }
    int k = ep.wait(ev.data(), int(ev.size()), ph.wait_ms(t));
    for (int j = 0; j < k; ++j) {
      unsigned i = unsigned(ev[j].data.u64);
      if (!dead[i]) fill(i);
    }
  }
  uint64_t bytes = acked() - a0, rx = retrans() - r0;
  for (int fd : fds)
    if (fd >= 0) close(fd);
  std::printf("bench stream: conns=%u seconds=%s bytes=%llu gbps=%s retransmits=%llu %s\n", o.conns,
              fixed(o.seconds, 2).c_str(), (unsigned long long)bytes,
              fixed(double(bytes) * 8 / o.seconds / 1e9, 2).c_str(), (unsigned long long)rx,
              verdict(errors, bytes == 0 ? "no byte acknowledged" : nullptr).c_str());
  return errors || bytes == 0 || g_stop ? 1 : 0;
}

// ===== idle =====

int run_idle(const Options& o) {
  raise_nofile(o.conns);
  unsigned errors = 0;
  uint64_t t0 = now_ns();
  auto fds = connect_all(o, o.conns, errors);
  unsigned established = 0;
  for (int fd : fds) established += fd >= 0;
  std::printf("bench idle: conns=%u established=%u seconds=%s errors=%u %s\n", o.conns, established,
              fixed(double(now_ns() - t0) / 1e9, 2).c_str(), errors, verdict(errors).c_str());
  std::fflush(stdout);
  // Hold until stdin closes (or says anything), a signal, or SECONDS.
  uint64_t until = o.seconds > 0 ? now_ns() + uint64_t(o.seconds * 1e9) : UINT64_MAX;
  while (!g_stop && now_ns() < until) {
    pollfd p{STDIN_FILENO, POLLIN, 0};
    int r = poll(&p, 1, 100);
    if (r > 0) break;
  }
  for (int fd : fds)
    if (fd >= 0) close(fd);
  return errors ? 1 : 0;
}

// ===== server =====

struct SrvConn {
  int fd = -1;
  std::string out;  // bytes still to send (echo, http)
  std::string in;   // http: partial request
};

int run_server(const Options& o) {
  raise_nofile(10000);  // 10,000 connections (the memory and sweep figures)
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (lfd < 0) die_sys("socket");
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa = make_addr(o.addr, o.port);
  if (bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) die_sys("bind");
  if (listen(lfd, 65535) != 0) die_sys("listen");
  static const char* names[] = {"echo", "discard", "http"};
  std::printf("kbench server: %s on %s:%u (%s)\n", names[int(o.service)], o.addr.c_str(), o.port,
              o.busy ? "busy" : "block");
  std::fflush(stdout);
  static const std::string body = "<html><body><h1>keel</h1></body></html>\n";
  const std::string response = "HTTP/1.1 200 OK\r\nServer: kbench\r\nContent-Type: text/html\r\nContent-Length: " +
                               std::to_string(body.size()) + "\r\n\r\n" + body;
  Epoll ep(o.busy);
  constexpr uint64_t listen_tag = UINT64_MAX;
  ep.add(lfd, EPOLLIN, listen_tag);
  std::vector<std::unique_ptr<SrvConn>> conns;  // by fd
  std::vector<char> buf(256 * 1024);
  uint64_t accepted = 0, requests = 0;
  auto close_conn = [&](int fd) {
    ep.del(fd);
    close(fd);
    conns[size_t(fd)].reset();
  };
  // Sends pending output; false if the connection broke. Reading pauses while output waits.
  auto flush = [&](SrvConn& c) -> bool {
    while (!c.out.empty()) {
      ssize_t n = send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
      if (n > 0) {
        c.out.erase(0, size_t(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        ep.mod(c.fd, EPOLLOUT, uint64_t(c.fd));
        return true;
      }
      return false;
    }
    return true;
  };
  std::vector<epoll_event> ev(1024);
  while (!g_stop) {
    int k = ep.wait(ev.data(), int(ev.size()), 100);
    for (int j = 0; j < k; ++j) {
      if (ev[j].data.u64 == listen_tag) {
        for (;;) {
          int fd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) break;
          set_nodelay(fd);
          if (conns.size() <= size_t(fd)) conns.resize(size_t(fd) * 2 + 16);
          conns[size_t(fd)] = std::make_unique<SrvConn>();
          conns[size_t(fd)]->fd = fd;
          ep.add(fd, EPOLLIN, uint64_t(fd));
          ++accepted;
        }
        continue;
      }
      int fd = int(ev[j].data.u64);
      SrvConn* c = conns[size_t(fd)].get();
      if (c == nullptr) continue;
      if (!c->out.empty()) {  // waiting to write
        if (!flush(*c)) {
          close_conn(fd);
          continue;
        }
        if (c->out.empty()) ep.mod(fd, EPOLLIN, uint64_t(fd));
        continue;
      }
      bool closed = false;
      // A bounded number of reads per event: a sender that keeps up would
      // otherwise hold the loop on its connection and starve every other one
      // (level-triggered epoll reports it again next round).
      for (int reads = 0; reads < 8; ++reads) {
        ssize_t n = recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
          closed = true;
          break;
        }
        if (n < 0) break;
        if (o.service == Service::discard) continue;
        if (o.service == Service::echo) {
          ssize_t w = send(fd, buf.data(), size_t(n), MSG_NOSIGNAL);
          if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            closed = true;
            break;
          }
          if (w < n) {
            c->out.assign(buf.data() + std::max<ssize_t>(w, 0), size_t(n - std::max<ssize_t>(w, 0)));
            if (!flush(*c)) closed = true;
            break;
          }
          continue;
        }
        // http: answer every complete request (pipelining allowed), keep-alive.
        c->in.append(buf.data(), size_t(n));
        size_t pos;
        while ((pos = c->in.find("\r\n\r\n")) != std::string::npos) {
          c->in.erase(0, pos + 4);
          c->out += response;
          ++requests;
        }
        if (c->in.size() > 65536) {
          closed = true;
          break;
        }
        if (!c->out.empty()) {
          if (!flush(*c)) closed = true;
          if (closed || !c->out.empty()) break;
        }
      }
      if (closed) close_conn(fd);
    }
  }
  std::printf("kbench server: stopped, %llu connections accepted, %llu http requests\n",
              (unsigned long long)accepted, (unsigned long long)requests);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGPIPE, SIG_IGN);
  setvbuf(stdout, nullptr, _IOLBF, 0);
  switch (o.mode) {
    case Mode::server: return run_server(o);
    case Mode::rr: return run_rr(o);
    case Mode::crr: return run_crr(o);
    case Mode::stream: return run_stream(o);
    case Mode::http: return run_http(o);
    case Mode::idle: return run_idle(o);
  }
  return 2;
}
