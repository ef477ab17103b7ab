// SPDX-License-Identifier: BSD-3-Clause
// kshm: the kernel baselines of perf/run's `shm` benchmark: shm_bench's patterns
// and summary lines (perf/shm/shm_common.hpp) over Linux sockets, busy-polling
// (non-blocking sockets, spinning on recv/send/accept: no epoll, no sleep, one
// core burnt per process, as keel does), and the machine's memcpy bandwidth.
//
//   kshm server tcp ADDR PORT      PORT echoes (rr), PORT+1 checks and counts (bulk)
//   kshm server unix DIR           DIR/echo.sock echoes, DIR/sink.sock checks and counts
//   kshm client rr|bulk|rr,bulk tcp ADDR PORT [--size N] [--chunk N] [--seconds S]
//   kshm client rr|bulk|rr,bulk unix DIR      [--size N] [--chunk N] [--seconds S]
//   kshm memcpy [--block N] [--buffer N] [--seconds S]
//   kshm pingpong [--seconds S]       (needs cores 0 and 1: taskset -c 0,1)
//
// TCP: TCP_NODELAY on both ends. Unix: AF_UNIX SOCK_STREAM between two processes.
// rr: SIZE (64) bytes out, the same SIZE back, one outstanding; latency from the
// send to the last byte of the response. bulk: CHUNK-byte (64 KiB) send()s of the
// pattern (the kernel copies them in), the server recv()s into its buffer and
// checks every byte; at the end of stream it reports its total and the client's
// clock stops (see shm_common.hpp). memcpy: BLOCK-byte (1 MiB) memcpy()s walking
// through a source and a destination of BUFFER bytes each (default: twice the
// last-level cache, 64 MiB..1 GiB: cache-cold), for SECONDS; also the same
// block copied again and again within the cache (warm_gb_per_s):
//   bench memcpy: block=1048576 buffer_mib=N llc_mib=N seconds=S gb_per_s=X warm_gb_per_s=Y check=N ok
// pingpong: the floor of any shared-memory request/response between the two cores: a
// thread on core 0 writes a counter in one cache line, a thread on core 1 spins until it
// sees it and answers in another line; one round trip moves both lines across and back.
// The same summary as rr (round trips/s, p50/p99 of the round trip):
//   bench pingpong: seconds=S transactions=N tps=X p50_us=.. p99_us=.. p999_us=.. max_us=.. ok
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "shm_common.hpp"

namespace {

using namespace shmbench;

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

constexpr const char* usage_text =
    "usage: kshm server tcp ADDR PORT | server unix DIR\n"
    "       kshm client rr|bulk|rr,bulk tcp ADDR PORT | unix DIR [--size N] [--chunk N] [--seconds S]\n"
    "       kshm memcpy [--block N] [--buffer N] [--seconds S]\n"
    "       kshm pingpong [--seconds S]   (threads on cores 0 and 1)\n";

[[noreturn]] void die_usage(const std::string& why) {
  std::fprintf(stderr, "kshm: %s\n%s", why.c_str(), usage_text);
  std::exit(2);
}
[[noreturn]] void die_sys(const std::string& what) {
  std::fprintf(stderr, "kshm: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

struct Options {
  enum class Role { server, client, memcpy, pingpong } role = Role::client;
  bool unix_ = false;
  std::string addr, dir;
  uint16_t port = 0;
  bool rr = false, bulk = false;
  size_t size = 64, chunk = 64 * 1024;
  double seconds = 5;
  size_t block = 1 << 20, buffer = 0;
};

Options parse(int argc, char** argv) {
  std::vector<std::string> a(argv + 1, argv + argc);
  for (auto& s : a)
    if (s == "-h" || s == "--help") {
      std::fputs(usage_text, stdout);
      std::exit(0);
    }
  Options o;
  if (a.empty()) die_usage("needs a role: server, client, memcpy or pingpong");
  size_t i = 0;
  if (a[0] == "memcpy" || a[0] == "pingpong") {
    o.role = a[0] == "memcpy" ? Options::Role::memcpy : Options::Role::pingpong;
    i = 1;
  } else {
    if (a[0] == "server") {
      o.role = Options::Role::server;
      i = 1;
    } else if (a[0] == "client") {
      if (a.size() < 2) die_usage("client needs MODES");
      if (a[1] == "rr") o.rr = true;
      else if (a[1] == "bulk") o.bulk = true;
      else if (a[1] == "rr,bulk" || a[1] == "bulk,rr") o.rr = o.bulk = true;
      else die_usage("MODES '" + a[1] + "' is not rr, bulk or rr,bulk");
      i = 2;
    } else {
      die_usage("unknown role '" + a[0] + "'");
    }
    if (i >= a.size()) die_usage("needs tcp ADDR PORT or unix DIR");
    if (a[i] == "tcp") {
      if (i + 2 >= a.size()) die_usage("tcp needs ADDR PORT");
      o.addr = a[i + 1];
      in_addr x{};
      if (inet_pton(AF_INET, o.addr.c_str(), &x) != 1) die_usage("'" + o.addr + "' is not an IPv4 address");
      uint64_t p = 0;
      if (!parse_u64(a[i + 2], p, 1, 65534)) die_usage("PORT '" + a[i + 2] + "' is not 1..65534");
      o.port = uint16_t(p);
      i += 3;
    } else if (a[i] == "unix") {
      if (i + 1 >= a.size()) die_usage("unix needs DIR");
      o.unix_ = true;
      o.dir = a[i + 1];
      if (o.dir.size() + 12 >= sizeof(sockaddr_un{}.sun_path)) die_usage("DIR is too long for a socket path");
      i += 2;
    } else {
      die_usage("'" + a[i] + "' is not tcp or unix");
    }
  }
  for (; i < a.size(); ++i) {
    const std::string& k = a[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= a.size()) die_usage("option " + k + " needs a value");
      return a[++i];
    };
    uint64_t v = 0;
    bool client = o.role == Options::Role::client, mem = o.role == Options::Role::memcpy;
    bool pp = o.role == Options::Role::pingpong;
    if (k == "--size" && client) {
      if (!parse_size(value(), v, 1, 1 << 20)) die_usage("--size needs 1..1M");
      o.size = size_t(v);
    } else if (k == "--chunk" && client) {
      if (!parse_size(value(), v, 1, 16 << 20)) die_usage("--chunk needs 1..16M");
      o.chunk = size_t(v);
    } else if (k == "--seconds" && (client || mem || pp)) {
      if (!parse_seconds(value(), o.seconds)) die_usage("--seconds needs 0 < S <= 86400");
    } else if (k == "--block" && mem) {
      if (!parse_size(value(), v, 64, 1 << 30)) die_usage("--block needs 64..1G");
      o.block = size_t(v);
    } else if (k == "--buffer" && mem) {
      if (!parse_size(value(), v, 1 << 20, 16ull << 30)) die_usage("--buffer needs 1M..16G");
      o.buffer = size_t(v);
    } else {
      die_usage("unknown option '" + k + "' here");
    }
  }
  return o;
}

// ===== sockets =====

std::string sock_path(const Options& o, bool sink) { return o.dir + (sink ? "/sink.sock" : "/echo.sock"); }

void nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) die_sys("fcntl");
}

void nodelay(const Options& o, int fd) {
  if (o.unix_) return;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int make_listener(const Options& o, bool sink) {
  int fd;
  if (o.unix_) {
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die_sys("socket");
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::string p = sock_path(o, sink);
    std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", p.c_str());
    unlink(p.c_str());
    if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) die_sys("bind " + p);
  } else {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die_sys("socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(uint16_t(o.port + (sink ? 1 : 0)));
    inet_pton(AF_INET, o.addr.c_str(), &sa.sin_addr);
    if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) die_sys("bind");
  }
  if (listen(fd, 64) != 0) die_sys("listen");
  nonblock(fd);
  return fd;
}

// A blocking connect (outside every measurement), then non-blocking.
int connect_to(const Options& o, bool sink) {
  int fd;
  int rc;
  if (o.unix_) {
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock_path(o, sink).c_str());
    rc = fd < 0 ? -1 : connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  } else {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(uint16_t(o.port + (sink ? 1 : 0)));
    inet_pton(AF_INET, o.addr.c_str(), &sa.sin_addr);
    rc = fd < 0 ? -1 : connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  }
  if (rc != 0) {
    std::fprintf(stderr, "kshm client: connect %s: %s\n",
                 o.unix_ ? sock_path(o, sink).c_str() : (o.addr + ":" + std::to_string(o.port + sink)).c_str(),
                 std::strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  nodelay(o, fd);
  nonblock(fd);
  return fd;
}

bool again() { return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR; }

// ===== server =====

struct SrvConn {
  int fd = -1;
  bool sink = false;
  std::string out;  // echo: bytes still to send back
  uint64_t off = 0, bad = 0;
};

int run_server(const Options& o, const Pattern& pat) {
  int lfd[2] = {make_listener(o, false), make_listener(o, true)};
  if (o.unix_)
    std::printf("kshm server: listening on %s (echo) and %s (sink), busy-polling\n", sock_path(o, false).c_str(),
                sock_path(o, true).c_str());
  else
    std::printf("kshm server: listening on %s:%u (echo) and %u (sink), busy-polling\n", o.addr.c_str(), o.port,
                o.port + 1);
  std::fflush(stdout);
  std::vector<SrvConn> conns;
  std::vector<uint8_t> buf(256 * 1024);
  uint64_t accepted = 0, spins = 0;
  while (!g_stop) {
    // Accepts are looked for every 1,024 rounds while a connection is open (each
    // costs a system call), every round otherwise.
    if (conns.empty() || (++spins & 1023) == 0) {
      for (int k = 0; k < 2; ++k) {
        int fd = accept4(lfd[k], nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) continue;
        nodelay(o, fd);
        SrvConn c;
        c.fd = fd;
        c.sink = k == 1;
        conns.push_back(std::move(c));
        ++accepted;
      }
    }
    for (size_t j = 0; j < conns.size();) {
      SrvConn& c = conns[j];
      bool closed = false;
      if (!c.out.empty()) {
        ssize_t w = send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
        if (w > 0) c.out.erase(0, size_t(w));
        else if (w < 0 && !again()) closed = true;
      }
      if (!closed && c.out.empty()) {
        ssize_t n = recv(c.fd, buf.data(), buf.size(), MSG_DONTWAIT);
        if (n == 0) {
          if (c.sink) {
            std::string rep = make_report(c.off, c.bad);
            // Blocking for this one small write: the run is over.
            int fl = fcntl(c.fd, F_GETFL);
            fcntl(c.fd, F_SETFL, fl & ~O_NONBLOCK);
            if (send(c.fd, rep.data(), rep.size(), MSG_NOSIGNAL) != ssize_t(rep.size()))
              std::fprintf(stderr, "kshm server: could not write the report\n");
          }
          closed = true;
        } else if (n < 0) {
          if (!again()) closed = true;
        } else if (c.sink) {
          c.bad += pat.check(buf.data(), size_t(n), c.off);
          c.off += uint64_t(n);
        } else {
          ssize_t w = send(c.fd, buf.data(), size_t(n), MSG_NOSIGNAL);
          if (w < 0 && !again()) closed = true;
          else if (w < n) c.out.assign(reinterpret_cast<char*>(buf.data()) + std::max<ssize_t>(w, 0),
                                       size_t(n - std::max<ssize_t>(w, 0)));
        }
      }
      if (closed) {
        close(c.fd);
        conns.erase(conns.begin() + long(j));
      } else {
        ++j;
      }
    }
  }
  for (auto& c : conns) close(c.fd);
  close(lfd[0]);
  close(lfd[1]);
  if (o.unix_) {
    unlink(sock_path(o, false).c_str());
    unlink(sock_path(o, true).c_str());
  }
  std::printf("kshm server: stopped, %llu connections accepted\n", (unsigned long long)accepted);
  return 0;
}

// ===== client =====

int client_rr(const Options& o, const Pattern& pat) {
  int fd = connect_to(o, false);
  if (fd < 0) return 1;
  std::vector<uint8_t> req(o.size), buf(std::max<size_t>(o.size, 65536));
  pat.fill(req.data(), o.size, 0);
  LatencyHistogram all;
  RrTable table;
  uint64_t transactions = 0;
  std::string failure;
  Phases ph(o.seconds, mono_ns());
  for (;;) {
    uint64_t t0 = mono_ns();
    if (t0 >= ph.end || g_stop) break;
    table.maybe_print(ph, t0);
    size_t sent = 0, got = 0;
    while (sent < o.size) {
      ssize_t w = send(fd, req.data() + sent, o.size - sent, MSG_NOSIGNAL);
      if (w > 0) sent += size_t(w);
      else if (w < 0 && !again()) {
        failure = std::string("send: ") + std::strerror(errno);
        break;
      }
    }
    while (failure.empty() && got < o.size && !g_stop) {
      ssize_t n = recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
      if (n > 0) got += size_t(n);
      else if (n == 0) failure = "the server closed the connection";
      else if (!again()) failure = std::string("recv: ") + std::strerror(errno);
    }
    if (!failure.empty() || g_stop) break;
    if (got > o.size) {
      failure = "more bytes than requested came back";
      break;
    }
    uint64_t t1 = mono_ns();
    if (ph.measuring(t1)) {
      all.record(t1 - t0);
      ++transactions;
    }
    table.record(t1 - t0);
  }
  close(fd);
  std::string verdict = !failure.empty() ? "FAILED (" + failure + ")"
                        : g_stop         ? "FAILED (interrupted)"
                        : transactions == 0 ? "FAILED (no round trip completed)"
                                            : "ok";
  print_rr(o.size, o.seconds, transactions, all, 0, failure.empty() ? 0 : 1, verdict);
  return verdict == "ok" ? 0 : 1;
}

int client_bulk(const Options& o, const Pattern& pat) {
  int fd = connect_to(o, true);
  if (fd < 0) return 1;
  BulkTable table;
  uint64_t queued = 0, q_mark = 0, q_end = 0, t_mark = 0, t_report = 0, server_total = 0, bad = 0;
  bool marked = false, have_report = false;
  std::string failure, report;
  Phases ph(o.seconds, mono_ns());
  for (;;) {
    uint64_t t = mono_ns();
    if (!marked && t >= ph.measure_from) {
      marked = true;
      q_mark = queued;
      t_mark = t;
    }
    if (t >= ph.end || g_stop) break;
    table.maybe_print(ph, t, queued);
    // The stream's next CHUNK bytes, straight from the pattern (the kernel copies them).
    size_t left = o.chunk - size_t(queued % o.chunk);
    ssize_t w = send(fd, pat.at(queued), left, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) queued += uint64_t(w);
    else if (w < 0 && !again()) {
      failure = std::string("send: ") + std::strerror(errno);
      break;
    }
  }
  q_end = queued;
  if (failure.empty() && !g_stop) {
    if (shutdown(fd, SHUT_WR) != 0) failure = std::string("shutdown: ") + std::strerror(errno);
    uint64_t give_up = mono_ns() + 30'000'000'000ull;
    char buf[256];
    while (failure.empty() && !have_report && !g_stop) {
      ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        report.append(buf, size_t(n));
        if (parse_report(report, server_total, bad)) {
          have_report = true;
          t_report = mono_ns();
        }
      } else if (n == 0) {
        failure = "connection closed before the report";
      } else if (!again()) {
        failure = std::string("recv: ") + std::strerror(errno);
      } else if (mono_ns() > give_up) {
        failure = "no report from the server within 30 s of the end of stream";
      }
    }
  }
  close(fd);
  if (failure.empty() && g_stop) failure = "interrupted";
  if (failure.empty() && server_total != q_end)
    failure = "the server took " + std::to_string(server_total) + " bytes of " + std::to_string(q_end);
  if (failure.empty() && bad != 0) failure = std::to_string(bad) + " bytes differ from the pattern";
  uint64_t bytes = q_end - q_mark;
  double secs = have_report ? double(t_report - t_mark) / 1e9 : 0;
  std::string verdict = failure.empty() ? (bytes == 0 ? "FAILED (nothing sent after the warm-up)" : "ok")
                                        : "FAILED (" + failure + ")";
  print_bulk(o.chunk, o.seconds, bytes, secs, queued, server_total, bad, 0, 1, failure.empty() ? 0 : 1, verdict);
  return verdict == "ok" ? 0 : 1;
}

// ===== memcpy =====

size_t llc_bytes() {
  size_t best = 0;
  for (int idx = 0; idx < 8; ++idx) {
    std::ifstream f("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(idx) + "/size");
    std::string s;
    if (!(f >> s) || s.empty()) continue;
    size_t mul = 1;
    if (s.back() == 'K') mul = 1024;
    else if (s.back() == 'M') mul = 1024 * 1024;
    size_t v = std::strtoull(s.c_str(), nullptr, 10) * mul;
    best = std::max(best, v);
  }
  return best;
}

int run_memcpy(const Options& o) {
  size_t llc = llc_bytes();
  size_t buffer = o.buffer ? o.buffer : std::clamp<size_t>(2 * llc, 64u << 20, 1u << 30);
  buffer = std::max(buffer / o.block, size_t(2)) * o.block;
  std::vector<uint8_t> src(buffer), dst(buffer);  // zero-filled: every page touched before the clock starts
  for (size_t i = 0; i < buffer; i += 4096) src[i] = uint8_t(i >> 12);
  auto measure = [&](bool cold, double seconds) {
    size_t blocks = buffer / o.block, k = 0;
    uint64_t bytes = 0, t0 = mono_ns(), end = t0 + uint64_t(seconds * 1e9), t = t0;
    while (t < end && !g_stop) {
      for (int r = 0; r < 16; ++r) {
        size_t at = cold ? (k % blocks) * o.block : 0;
        // Warm: the same block again and again (a second block as the target: both in cache).
        std::memcpy(dst.data() + (cold ? at : o.block), src.data() + at, o.block);
        ++k;
        bytes += o.block;
      }
      asm volatile("" ::: "memory");
      t = mono_ns();
    }
    return double(bytes) / (double(t - t0) / 1e9) / 1e9;
  };
  (void)measure(true, std::min(0.5, o.seconds / 5));  // warm-up: page tables, frequency
  double cold = measure(true, o.seconds);
  double warm = measure(false, std::min(o.seconds, 1.0));
  unsigned sum = 0;
  for (size_t i = 0; i < buffer; i += 1 << 20) sum += dst[i];
  std::printf("bench memcpy: block=%zu buffer_mib=%zu llc_mib=%zu seconds=%s gb_per_s=%s warm_gb_per_s=%s "
              "check=%u %s\n",
              o.block, buffer >> 20, llc >> 20, fixed(o.seconds, 2).c_str(), fixed(cold, 3).c_str(),
              fixed(warm, 3).c_str(), sum & 0xff, g_stop ? "FAILED (interrupted)" : "ok");
  return g_stop ? 1 : 0;
}

// ===== pingpong =====

struct alignas(64) Line {
  std::atomic<uint64_t> v{0};
};

bool pin(int core) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

int run_pingpong(const Options& o) {
  static Line ping, pong;
  static std::atomic<bool> done{false};
  if (!pin(0)) die_sys("pin to core 0 (run under taskset -c 0,1)");
  std::thread echo([] {
    if (!pin(1)) {
      std::fprintf(stderr, "kshm: pin to core 1: %s\n", std::strerror(errno));
      std::exit(1);
    }
    uint64_t seen = 0;
    while (!done.load(std::memory_order_relaxed)) {
      uint64_t v = ping.v.load(std::memory_order_acquire);
      if (v != seen) {
        seen = v;
        pong.v.store(v, std::memory_order_release);
      }
    }
  });
  LatencyHistogram all;
  RrTable table;
  uint64_t transactions = 0, i = 0;
  Phases ph(o.seconds, mono_ns());
  bool stuck = false;
  for (;;) {
    uint64_t t0 = mono_ns();
    if (t0 >= ph.end || g_stop) break;
    table.maybe_print(ph, t0);
    ping.v.store(++i, std::memory_order_release);
    while (pong.v.load(std::memory_order_acquire) != i)
      if (g_stop || mono_ns() - t0 > 10'000'000'000ull) {
        stuck = true;
        break;
      }
    if (stuck) break;
    uint64_t t1 = mono_ns();
    if (ph.measuring(t1)) {
      all.record(t1 - t0);
      ++transactions;
    }
    table.record(t1 - t0);
  }
  done = true;
  echo.join();
  std::printf("bench pingpong: seconds=%s transactions=%llu tps=%s p50_us=%s p99_us=%s p999_us=%s max_us=%s "
              "mean_us=%s %s\n",
              fixed(o.seconds, 2).c_str(), (unsigned long long)transactions,
              fixed(double(transactions) / o.seconds, 1).c_str(), us(all.quantile(0.5)).c_str(),
              us(all.quantile(0.99)).c_str(), us(all.quantile(0.999)).c_str(), us(all.max()).c_str(),
              fixed(all.mean() / 1e3, 2).c_str(),
              stuck ? "FAILED (no answer for 10 s)" : g_stop ? "FAILED (interrupted)" : "ok");
  return stuck || g_stop ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGPIPE, SIG_IGN);
  setvbuf(stdout, nullptr, _IOLBF, 0);
  if (o.role == Options::Role::memcpy) return run_memcpy(o);
  if (o.role == Options::Role::pingpong) return run_pingpong(o);
  Pattern pat(std::max<size_t>(std::max(o.chunk, o.size), 256 * 1024));
  if (o.role == Options::Role::server) return run_server(o, pat);
  int rc = 0;
  if (o.rr) rc = client_rr(o, pat);
  if (o.bulk && rc == 0 && !g_stop) rc = client_bulk(o, pat);
  return rc;
}
