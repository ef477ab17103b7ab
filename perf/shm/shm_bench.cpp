// SPDX-License-Identifier: BSD-3-Clause
// shm_bench: keel's intra-node fast path (issue 5) measured through the public
// API only (keel::Runtime, keel::Stack), busy-polling. The same program runs
// over a shared-memory channel (server and client in one DPDK multi-process
// group: the client's connect() to the server's listener becomes a channel)
// and over TCP (two separate DPDK processes joined by net_memif, or shm off);
// the application code does not change, only what connect() returns does.
//
//   shm_bench [--config FILE] server [--port P]
//       listens on every address of its ports: P echoes every byte back (rr),
//       P+1 takes a stream, checks every byte and reports (bulk); runs until
//       SIGINT/SIGTERM. Every instance listens.
//   shm_bench [--config FILE] client MODES ADDR PORT [--size N] [--chunk N]
//       [--seconds S] [--expect channel|tcp|any] [--timeout-ms N]
//       MODES: rr, bulk or rr,bulk (one after the other, same process).
//       rr: SIZE-byte (64) requests, one outstanding, for S seconds (after a
//       warm-up of min(1 s, S/5)): round trips/s, p50/p99/p99.9 from a
//       log-linear histogram (1.6% resolution).
//       bulk: a stream of CHUNK-byte (64 KiB) Buffers from Stack::alloc, each
//       filled in place with the stream's pattern (byte i = i mod 251) and
//       handed to send() (zero copy: the stack sends those mbufs), for S
//       seconds; then shutdown(); the server checks every byte it receives
//       and, at the end of stream, reports its total. GB/s = bytes queued after
//       the warm-up / time from the warm-up's end until that report arrived
//       (the bytes in flight at the warm-up's end are not counted, their
//       delivery time is: a slight underestimate, never an overestimate).
//       --expect: the transport the connection must be (checked with
//       Connection::is_channel() and ConnectionInfo::transport); anything else
//       fails the run at once with exit status 3.
//
// Configuration: --config FILE (keel's format), then the KEEL_* environment
// (keel::apply_env), then busy_poll is forced on. Summary lines (perf/run parses
// them; see perf/shm/shm_common.hpp):
//   bench rr: size=64 conns=1 seconds=5.00 transactions=N tps=X p50_us=.. p99_us=..
//             p999_us=.. max_us=.. channel=1 errors=0 ok
//   bench bulk: chunk=65536 seconds=5.00 measured_s=.. bytes=N gb_per_s=X gbit_per_s=..
//             total=N server_total=N bad=0 verify=1 channel=1 errors=0 ok
// Exit status: 0 all ok, 1 a run failed, 2 bad arguments, 3 wrong transport.
#include <keel/keel.hpp>

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "shm_common.hpp"

namespace {

using namespace shmbench;

// ===== the channel query, whichever keel this is built against =====

// Connection::is_channel() arrives with the intra-node fast path; a keel
// without it has no channels, so every connection is TCP.
template <class C>
constexpr bool api_has_channels() {
  return requires(const C& c) { c.is_channel(); };
}

template <class C>
std::optional<bool> query_channel(const C& c, std::string& why) {
  if constexpr (api_has_channels<C>()) {
    auto r = c.is_channel();
    if (!r) {
      why = "is_channel(): " + std::string(keel::to_string(r.error()));
      return std::nullopt;
    }
    return bool(*r);
  } else {
    return false;
  }
}

template <class I>
std::string transport_of(const I& info) {
  if constexpr (requires { info.transport; }) {
    return info.transport ? info.transport : "";
  } else {
    return "tcp";
  }
}

// ===== options =====

enum class Expect { any, channel, tcp };

struct Options {
  bool server = false;
  uint16_t port = 5600;
  bool rr = false, bulk = false;
  std::string addr;
  size_t size = 64;
  size_t chunk = 64 * 1024;
  double seconds = 5;
  Expect expect = Expect::any;
  uint32_t timeout_ms = 5000;
};

constexpr const char* usage_text =
    "usage: shm_bench [--config FILE] server [--port P]\n"
    "       shm_bench [--config FILE] client rr|bulk|rr,bulk ADDR PORT [--size N] [--chunk N]\n"
    "                 [--seconds S] [--expect channel|tcp|any] [--timeout-ms N]\n"
    "  server: P echoes (rr), P+1 checks and counts a stream (bulk). client: PORT is the\n"
    "  server's P. Configuration: --config FILE, then KEEL_* (keel::apply_env); busy_poll on.\n";

[[noreturn]] void die_usage(const std::string& why) {
  std::fprintf(stderr, "shm_bench: %s\n%s", why.c_str(), usage_text);
  std::exit(2);
}

Options parse(std::vector<std::string> args, keel::Config& cfg) {
  for (const auto& a : args)
    if (a == "-h" || a == "--help") {
      std::fputs(usage_text, stdout);
      std::exit(0);
    }
  bool have_config = false;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] != "--config") continue;
    if (i + 1 == args.size()) die_usage("--config needs a file name");
    auto loaded = keel::load_config(args[i + 1]);
    if (!loaded) {
      std::fprintf(stderr, "shm_bench: %s\n", loaded.error().c_str());
      std::exit(2);
    }
    cfg = std::move(*loaded);
    args.erase(args.begin() + long(i), args.begin() + long(i) + 2);
    have_config = true;
    break;
  }
  (void)have_config;
  if (auto env = keel::apply_env(cfg); !env) {
    std::fprintf(stderr, "shm_bench: %s\n", env.error().c_str());
    std::exit(2);
  }
  cfg.busy_poll = true;
  if (auto ok = keel::validate(cfg); !ok) {
    std::fprintf(stderr, "shm_bench: configuration: %s (use --config FILE or KEEL_EAL/KEEL_ADDR)\n",
                 ok.error().c_str());
    std::exit(2);
  }
  Options o;
  if (args.empty()) die_usage("needs a role: server or client");
  size_t i = 1;
  if (args[0] == "server") {
    o.server = true;
  } else if (args[0] == "client") {
    if (args.size() < 4) die_usage("client needs MODES ADDR PORT");
    std::string_view modes = args[1];
    if (modes == "rr") o.rr = true;
    else if (modes == "bulk") o.bulk = true;
    else if (modes == "rr,bulk" || modes == "bulk,rr") o.rr = o.bulk = true;
    else die_usage("MODES '" + args[1] + "' is not rr, bulk or rr,bulk");
    o.addr = args[2];
    if (!keel::Ipv4Address::parse(o.addr)) die_usage("ADDR '" + o.addr + "' is not an IPv4 address");
    uint64_t p = 0;
    if (!parse_u64(args[3], p, 1, 65534)) die_usage("PORT '" + args[3] + "' is not 1..65534");
    o.port = uint16_t(p);
    i = 4;
  } else {
    die_usage("unknown role '" + args[0] + "'");
  }
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= args.size()) die_usage("option " + a + " needs a value");
      return args[++i];
    };
    uint64_t v = 0;
    if (o.server) {
      if (a == "--port") {
        if (!parse_u64(value(), v, 1, 65534)) die_usage("--port needs 1..65534");
        o.port = uint16_t(v);
      } else {
        die_usage("unknown server option '" + a + "'");
      }
      continue;
    }
    if (a == "--size") {
      if (!parse_size(value(), v, 1, 1 << 20)) die_usage("--size needs 1..1M bytes");
      o.size = size_t(v);
    } else if (a == "--chunk") {
      if (!parse_size(value(), v, 1, 16 << 20)) die_usage("--chunk needs 1..16M bytes");
      o.chunk = size_t(v);
    } else if (a == "--seconds") {
      if (!parse_seconds(value(), o.seconds)) die_usage("--seconds needs 0 < S <= 86400");
    } else if (a == "--expect") {
      std::string e = value();
      if (e == "channel") o.expect = Expect::channel;
      else if (e == "tcp") o.expect = Expect::tcp;
      else if (e == "any") o.expect = Expect::any;
      else die_usage("--expect needs channel, tcp or any");
    } else if (a == "--timeout-ms") {
      if (!parse_u64(value(), v, 1, 600000)) die_usage("--timeout-ms needs 1..600000");
      o.timeout_ms = uint32_t(v);
    } else {
      die_usage("unknown client option '" + a + "'");
    }
  }
  return o;
}

std::string err(keel::Errc e) { return std::string(keel::to_string(e)); }

// ===== server =====

struct SrvConn {
  bool sink = false;
  keel::Buffer pending;  // echo: received, not yet taken by send()
  bool eof = false;
  uint64_t off = 0, bad = 0;
  bool live = false;
};

void serve(keel::Stack& stack, const Options& o, const Pattern& pat) {
  auto echo_l = stack.listen({keel::Ipv4Address::any(), o.port});
  auto sink_l = stack.listen({keel::Ipv4Address::any(), uint16_t(o.port + 1)});
  if (!echo_l || !sink_l) {
    std::fprintf(stderr, "shm_bench server: listen on ports %u/%u: %s\n", o.port, o.port + 1,
                 err(!echo_l ? echo_l.error() : sink_l.error()).c_str());
    stack.request_stop();
    return;
  }
  static std::atomic<bool> announced{false};
  if (!announced.exchange(true)) {
    std::printf("shm_bench server: listening on ports %u (echo) and %u (sink), instance %u of %u\n", o.port,
                o.port + 1, stack.id(), stack.instances());
    std::fflush(stdout);
  }
  std::vector<SrvConn> conns;
  std::vector<size_t> free_ids;
  uint64_t accepted = 0, channels = 0;
  auto drop = [&](uint64_t id) {
    conns[id - 1] = SrvConn{};
    free_ids.push_back(id - 1);
  };
  while (stack.running()) {
    for (const keel::Event& ev : stack.poll()) {
      keel::Connection c = ev.conn;
      if (!c) continue;
      uint64_t id = ev.user;
      if (ev.has(keel::event::accepted)) {
        size_t k;
        if (!free_ids.empty()) {
          k = free_ids.back();
          free_ids.pop_back();
        } else {
          k = conns.size();
          conns.emplace_back();
        }
        conns[k] = SrvConn{};
        conns[k].live = true;
        conns[k].sink = ev.listener == *sink_l;
        if (!c.set_user(k + 1)) {
          conns[k] = SrvConn{};
          free_ids.push_back(k);
          continue;
        }
        id = k + 1;
        ++accepted;
        std::string why;
        if (query_channel(c, why).value_or(false)) ++channels;
      }
      if (id == 0 || id > conns.size() || !conns[id - 1].live) continue;
      SrvConn& s = conns[id - 1];
      if (ev.has(keel::event::closed)) {
        drop(id);
        continue;
      }
      bool ok = true, done = false;
      if (s.sink) {
        for (;;) {
          auto b = c.recv();
          if (!b) {
            ok = b.error() == keel::Errc::would_block;
            break;
          }
          if (b->empty()) {  // the client's end of stream: report what was taken
            std::string rep = make_report(s.off, s.bad);
            auto w = c.write(rep.data(), rep.size());
            ok = w && *w == rep.size();
            if (!ok) std::fprintf(stderr, "shm_bench server: could not write the report\n");
            done = true;
            break;
          }
          b->for_each_segment([&](keel::Segment seg) {
            s.bad += pat.check(seg.data, seg.size, s.off);
            s.off += seg.size;
          });
          // b is released here: its mbufs go back, the window / budget reopens.
        }
      } else {
        for (;;) {
          if (s.pending.empty()) {
            if (s.eof) break;
            auto r = c.recv();
            if (!r) {
              ok = r.error() == keel::Errc::would_block;
              break;
            }
            if (r->empty()) {
              s.eof = true;
              break;
            }
            s.pending = std::move(*r);
          }
          auto w = c.send(s.pending);  // the received mbufs go straight back
          if (!w) {
            ok = w.error() == keel::Errc::would_block;
            break;
          }
        }
        done = s.eof && s.pending.empty();
      }
      if (!ok) {
        (void)c.abort();
        drop(id);
      } else if (done) {
        (void)c.close();
        drop(id);
      }
    }
  }
  conns.clear();  // Buffers back to the pool on this lcore
  std::printf("shm_bench server: instance %u stopped: %llu connections accepted, %llu of them channels\n",
              stack.id(), (unsigned long long)accepted, (unsigned long long)channels);
  std::fflush(stdout);
}

// ===== client =====

struct Outcome {
  int status = 0;  // 0 ok, 1 failed, 3 wrong transport
};

// Connects and waits for the connected (or closed) event. On success sets
// `channel`; on failure prints why and returns an invalid handle.
keel::Connection open(keel::Stack& stack, const Options& o, uint16_t port, bool& channel, Outcome& out) {
  auto addr = *keel::Ipv4Address::parse(o.addr);
  keel::ConnectOptions opt;
  opt.timeout_ms = o.timeout_ms;
  opt.nodelay = true;
  opt.user = 1;
  auto c = stack.connect({addr, port}, opt);
  if (!c) {
    std::fprintf(stderr, "shm_bench client: connect %s:%u: %s\n", o.addr.c_str(), port, err(c.error()).c_str());
    if (o.expect == Expect::channel)
      std::fprintf(stderr, "shm_bench client: FAILED: no channel (expected one to %s:%u)\n", o.addr.c_str(), port);
    out.status = o.expect == Expect::channel ? 3 : 1;
    return {};
  }
  bool connected = false;
  while (stack.running() && !connected) {
    for (const keel::Event& ev : stack.poll()) {
      if (ev.conn != *c) continue;
      if (ev.has(keel::event::closed)) {
        std::fprintf(stderr, "shm_bench client: connect %s:%u: %s\n", o.addr.c_str(), port,
                     err(ev.error).c_str());
        if (o.expect == Expect::channel)
          std::fprintf(stderr, "shm_bench client: FAILED: no channel (expected one to %s:%u)\n", o.addr.c_str(),
                       port);
        out.status = o.expect == Expect::channel ? 3 : 1;
        return {};
      }
      if (ev.has(keel::event::connected)) connected = true;
    }
  }
  if (!connected) {
    out.status = 1;
    return {};
  }
  std::string why;
  auto ch = query_channel(*c, why);
  auto info = c->info();
  std::string transport = info ? transport_of(*info) : "?";
  if (!ch) {
    std::fprintf(stderr, "shm_bench client: %s\n", why.c_str());
    (void)c->abort();
    out.status = 1;
    return {};
  }
  channel = *ch;
  std::printf("shm_bench client: connected to %s:%u over %s (is_channel=%s, info.transport=%s%s)\n",
              o.addr.c_str(), port, channel ? "a channel" : "TCP", channel ? "true" : "false", transport.c_str(),
              api_has_channels<keel::Connection>() ? "" : "; this keel has no Connection::is_channel");
  std::fflush(stdout);
  if ((channel && transport != "channel") || (!channel && transport != "tcp")) {
    std::fprintf(stderr, "shm_bench client: FAILED: is_channel() says %s but info().transport is '%s'\n",
                 channel ? "true" : "false", transport.c_str());
    (void)c->abort();
    out.status = 1;
    return {};
  }
  if ((o.expect == Expect::channel && !channel) || (o.expect == Expect::tcp && channel)) {
    std::fprintf(stderr, "shm_bench client: FAILED: expected %s, got %s\n",
                 o.expect == Expect::channel ? "a channel" : "TCP", channel ? "a channel" : "TCP (no channel)");
    (void)c->abort();
    out.status = 3;
    return {};
  }
  return *c;
}

// Polls until the connection's closed event (after our close) or a short while.
void linger(keel::Stack& stack, uint64_t ms) {
  for (uint64_t until = stack.now_ns() + ms * 1'000'000; stack.now_ns() < until;) (void)stack.poll();
}

void client_rr(keel::Stack& stack, const Options& o, const Pattern& pat, Outcome& out) {
  bool channel = false;
  keel::Connection c = open(stack, o, o.port, channel, out);
  if (!c) return;
  LatencyHistogram all;
  RrTable table;
  uint64_t transactions = 0;
  unsigned errors = 0;
  std::string failure;
  keel::Buffer req;  // a request send() has not taken yet (would_block)
  size_t got = 0;
  uint64_t t0 = 0;
  auto start_request = [&](uint64_t t) -> bool {
    auto b = stack.alloc(o.size);
    if (!b) {
      failure = "alloc: " + err(b.error());
      return false;
    }
    b->for_each_segment([&, off = uint64_t(0)](keel::Segment s) mutable {
      pat.fill(s.data, s.size, off);
      off += s.size;
    });
    req = std::move(*b);
    got = 0;
    t0 = t;
    auto r = c.send(req);
    if (!r && r.error() != keel::Errc::would_block) {
      failure = "send: " + err(r.error());
      return false;
    }
    return true;
  };
  Phases ph(o.seconds, stack.now_ns());
  bool broken = !start_request(stack.now_ns());
  bool gone = false;
  while (!broken && stack.running()) {
    uint64_t t = stack.now_ns();
    if (t >= ph.end) break;
    table.maybe_print(ph, t);
    for (const keel::Event& ev : stack.poll()) {
      if (ev.conn != c) continue;
      if (ev.has(keel::event::closed)) {
        failure = "connection closed: " + err(ev.error);
        broken = gone = true;
        break;
      }
      if (!req.empty() && ev.has(keel::event::writable)) {
        auto r = c.send(req);
        if (!r && r.error() != keel::Errc::would_block) {
          failure = "send: " + err(r.error());
          broken = true;
          break;
        }
      }
      if (!ev.has(keel::event::readable) && !ev.has(keel::event::peer_closed)) continue;
      for (;;) {
        auto b = c.recv();
        if (!b) {
          if (b.error() != keel::Errc::would_block) {
            failure = "recv: " + err(b.error());
            broken = true;
          }
          break;
        }
        if (b->empty()) {
          failure = "the server closed the connection";
          broken = true;
          break;
        }
        got += b->size();
      }
      if (broken) break;
      if (got >= o.size) {
        if (got > o.size) {
          failure = "more bytes than requested came back";
          broken = true;
          break;
        }
        uint64_t t1 = stack.now_ns();
        if (ph.measuring(t1)) {
          all.record(t1 - t0);
          ++transactions;
        }
        table.record(t1 - t0);
        if (!start_request(t1)) {
          broken = true;
          break;
        }
      }
    }
  }
  if (broken) ++errors;
  req = keel::Buffer();
  if (!gone) (void)c.close();
  linger(stack, 20);
  std::string verdict = !failure.empty() ? "FAILED (" + failure + ")"
                        : !stack.running() && stack.now_ns() < ph.end ? "FAILED (interrupted)"
                        : transactions == 0                           ? "FAILED (no round trip completed)"
                                                                      : "ok";
  print_rr(o.size, o.seconds, transactions, all, channel ? 1 : 0, errors, verdict);
  if (verdict != "ok") out.status = 1;
}

void client_bulk(keel::Stack& stack, const Options& o, const Pattern& pat, Outcome& out) {
  bool channel = false;
  keel::Connection c = open(stack, o, uint16_t(o.port + 1), channel, out);
  if (!c) return;
  BulkTable table;
  uint64_t queued = 0, q_mark = 0, q_end = 0, t_mark = 0, t_report = 0;
  uint64_t server_total = 0, bad = 0;
  std::string report, failure;
  keel::Buffer next;  // filled, not yet taken by send() (would_block)
  bool sending = true, gone = false, have_report = false, marked = false;
  Phases ph(o.seconds, stack.now_ns());
  uint64_t give_up = 0;
  // Fills and queues buffers until the send buffer / channel budget or the pool is full.
  auto fill = [&]() -> bool {
    for (int k = 0; k < 64; ++k) {
      if (next.empty()) {
        auto b = stack.alloc(o.chunk);
        if (!b) return b.error() == keel::Errc::no_memory;  // the pool refills as the server releases
        uint64_t off = queued;
        b->for_each_segment([&](keel::Segment s) {
          pat.fill(s.data, s.size, off);  // the application produces its data in place
          off += s.size;
        });
        next = std::move(*b);
      }
      size_t n = next.size();
      if (auto r = c.send(next); !r) {
        if (r.error() == keel::Errc::would_block) return true;
        failure = "send: " + err(r.error());
        return false;
      }
      queued += n;
    }
    return true;
  };
  while (stack.running()) {
    uint64_t t = stack.now_ns();
    if (sending) {
      if (!marked && t >= ph.measure_from) {
        marked = true;
        q_mark = queued;
        t_mark = t;
      }
      if (t >= ph.end) {
        sending = false;
        q_end = queued;
        next = keel::Buffer();
        if (auto r = c.shutdown(); !r) {
          failure = "shutdown: " + err(r.error());
          break;
        }
        give_up = t + 30'000'000'000ull;
      } else {
        table.maybe_print(ph, t, queued);
        if (!fill()) break;
      }
    } else if (t >= give_up) {
      failure = "no report from the server within 30 s of the end of stream";
      break;
    }
    bool stop = false;
    for (const keel::Event& ev : stack.poll()) {
      if (ev.conn != c) continue;
      if (ev.has(keel::event::readable) || ev.has(keel::event::peer_closed)) {
        for (;;) {
          char buf[256];
          auto n = c.read(buf, sizeof buf);
          if (!n || *n == 0) break;
          report.append(buf, *n);
        }
        if (!have_report && parse_report(report, server_total, bad)) {
          have_report = true;
          t_report = stack.now_ns();
          stop = true;
        }
      }
      if (ev.has(keel::event::closed)) {
        gone = true;
        if (!have_report) failure = "connection closed before the report: " + err(ev.error);
        stop = true;
      }
    }
    if (stop) break;
  }
  next = keel::Buffer();
  if (failure.empty() && !have_report) failure = stack.running() ? "no report" : "interrupted";
  if (failure.empty() && sending) failure = "the server reported before the end of stream";
  if (failure.empty() && server_total != q_end)
    failure = "the server took " + std::to_string(server_total) + " bytes of " + std::to_string(q_end);
  if (failure.empty() && bad != 0) failure = std::to_string(bad) + " bytes differ from the pattern";
  if (!gone) (void)c.close();
  linger(stack, 20);
  uint64_t bytes = q_end - q_mark;
  double secs = have_report ? double(t_report - t_mark) / 1e9 : 0;
  std::string verdict = failure.empty() ? (bytes == 0 ? "FAILED (nothing sent after the warm-up)" : "ok")
                                        : "FAILED (" + failure + ")";
  print_bulk(o.chunk, o.seconds, bytes, secs, queued, server_total, bad, channel ? 1 : 0, 1, failure.empty() ? 0 : 1,
             verdict);
  if (verdict != "ok") out.status = 1;
}

void client(keel::Stack& stack, const Options& o, const Pattern& pat, Outcome& out) {
  static std::atomic<bool> claimed{false};
  if (claimed.exchange(true)) {  // one instance runs the client; the others keep polling
    while (stack.running()) (void)stack.poll();
    return;
  }
  if (o.rr) client_rr(stack, o, pat, out);
  if (o.bulk && out.status == 0 && stack.running()) client_bulk(stack, o, pat, out);
  stack.request_stop();
}

// ===== main =====

std::atomic<keel::Runtime*> g_rt{nullptr};

}  // namespace

int main(int argc, char** argv) {
  keel::Config cfg;
  Options o = parse({argv + 1, argv + argc}, cfg);
  setvbuf(stdout, nullptr, _IOLBF, 0);
  Pattern pat(std::max<size_t>(o.chunk, 64 * 1024));
  auto rt = keel::Runtime::create(cfg);
  if (!rt) {
    std::fprintf(stderr, "shm_bench: keel: %s\n", rt.error().c_str());
    return 1;
  }
  g_rt = rt->get();
  std::signal(SIGINT, [](int) {
    if (keel::Runtime* r = g_rt.load()) r->stop();
  });
  std::signal(SIGTERM, [](int) {
    if (keel::Runtime* r = g_rt.load()) r->stop();
  });
  // The instances run on their lcores; this thread sleeps until they are all done
  // (Runtime::run() would wait in rte_eal_wait_lcore, which spins: with the main
  // lcore on the measured core it would take half of it).
  std::mutex mu;
  std::condition_variable cv;
  size_t left = (*rt)->instances();
  Outcome out;
  auto body = [&](keel::Stack& s) {
    if (o.server) serve(s, o, pat);
    else client(s, o, pat, out);
    std::lock_guard lk(mu);
    --left;
    cv.notify_all();
  };
  if (auto r = (*rt)->launch(body); !r) {
    std::fprintf(stderr, "shm_bench: keel: %s\n", r.error().c_str());
    return 1;
  }
  {
    std::unique_lock lk(mu);
    cv.wait(lk, [&] { return left == 0; });
  }
  (*rt)->wait();
  g_rt = nullptr;
  rt->reset();
  return out.status;
}
