// SPDX-License-Identifier: BSD-3-Clause
// Benchmark 5 of issue 7, "Cost": instructions per 64 B request/response on the
// keel server. Wall-clock figures on these VMs move by tens of percent from one
// run to the next; an instruction count under callgrind does not, so this is
// the figure that catches a regression.
//
// One process, one thread, no lcores: stack A (client, 198.18.0.1) and stack B
// (server, 198.18.0.2) are two Engines on a net_ring link (drivers/ring_port),
// and this thread calls Instance::poll() on each in turn. B runs an echo
// listener that sends every received mbuf back (zero copy, like keel-pmd's echo
// service); A keeps exactly one 64-byte request outstanding: the response's
// on_readable checks the echo and sends the next request.
//
//   A.poll: rx response -> TCP -> client app (check, send next) -> tx  --ring-->
//   B.poll: rx request  -> TCP -> echo app (recv, send)         -> tx  --ring--> A ...
//
// What is counted (see perf/cost/run-cost.sh, which runs this under
// `valgrind --tool=callgrind --instr-atstart=no --collect-atstart=no`):
//  - Nothing before the measured phases: EAL, ports, pools, ARP, the handshake
//    and a warm-up run uninstrumented (CALLGRIND_START_INSTRUMENTATION comes
//    after them).
//  - Phase "server": N transactions; collection is toggled on around each
//    B.poll() only, then CALLGRIND_DUMP_STATS_AT("server"). That is stack B's
//    receive, IPv4, TCP input, the echo application, TCP output, IPv4 output
//    and its tx_burst: everything the server does for a transaction.
//  - Phase "client": N more transactions, collection around A.poll() only
//    (the client's TCP plus its small application), dump "client".
//  The driver loop between polls (a ring count per side) is in neither.
//
// Idle polls. A real server busy-polls and spends instructions on empty polls,
// but how many depends on wall-clock latency, not on keel's code; counting
// them would make the figure as noisy as a timing. So a stack is polled only
// when its receive ring holds a frame. If neither ring does (nothing in flight:
// only a timer could move things on, e.g. a delayed ACK), virtual time jumps to
// the earlier instance's next wakeup and both are polled; those polls are real
// work, so they are counted too, and reported as timer_polls (0 in a healthy
// run: every segment is answered at once and no timer fires).
//
// Time is virtual: every poll advances the clock both stacks read (poll's
// now_ns and TcpStack::set_clock) by --step-ns. Under callgrind the process
// runs ~50x slower; with the real clock, delayed-ACK and retransmission timers
// would fire there and not natively, and the timer wheel would turn a
// different number of ticks per poll. With virtual time valgrind and native
// runs execute the same code path, run after run.
//
// Without valgrind the program runs the same phases and prints wall-clock
// nanoseconds per transaction (both stacks on one core, so roughly server +
// client + the ring hops); instruction counts need callgrind.
#include <rte_eal.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define KEEL_COST_HAVE_VALGRIND 1
#else
#define RUNNING_ON_VALGRIND 0
#define CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_STOP_INSTRUMENTATION
#define CALLGRIND_ZERO_STATS
#define CALLGRIND_TOGGLE_COLLECT
#define CALLGRIND_DUMP_STATS_AT(what) (void)(what)
#define KEEL_COST_HAVE_VALGRIND 0
#endif

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <keel/stack.hpp>

#include "api/stack_core.hpp"
#include "drivers/eal.hpp"
#include "drivers/ring_port.hpp"
#include "engine/engine.hpp"
#include "tcp/tcp_stack.hpp"

namespace keel::perf {

namespace {

using tcp::Tcb;
using tcp::TcpStack;

constexpr size_t msg_size = 64;
constexpr uint16_t echo_port = 7;
constexpr uint16_t client_port = 40000;  // fixed: the same 4-tuple (and hash bucket) every run
const net::Ipv4Addr client_ip(198, 18, 0, 1);
const net::Ipv4Addr server_ip(198, 18, 0, 2);
constexpr const char* link_name = "kcost";  // rings kcost_ab (A->B), kcost_ba; ports net_ring_kcost_a/_b

struct Options {
  uint64_t transactions = 20000;  ///< per measured phase
  uint64_t warmup = 2000;
  uint64_t step_ns = 1000;        ///< virtual time per poll
  /// The server's echo written against the native API (keel::Stack::poll's
  /// batched events, Connection::recv/send of Buffers) instead of TCP's
  /// callbacks: the difference is what the API costs per transaction.
  bool api_server = false;
};

/// The shared virtual clock (TcpStack::set_clock).
struct Clock {
  uint64_t now = 0;
  static uint64_t read(void* ctx) { return static_cast<Clock*>(ctx)->now; }
};

// ----- the server application: echo, zero copy -----

class EchoConn final : public tcp::ConnHandler {
 public:
  explicit EchoConn(TcpStack& s) : stack_(s) {}
  void on_readable(Tcb& c) override {
    rte_mbuf* m = stack_.recv(c);
    if (m == nullptr) return;
    if (auto r = stack_.send(c, m); !r) {  // the send buffer (1 MiB) never fills here
      rte_pktmbuf_free(m);
      ++errors;
    }
  }
  void on_closed(Tcb& c, Errc reason) override {
    (void)c;
    if (reason != Errc::ok) ++errors;
    tcb = nullptr;
  }
  Tcb* tcb = nullptr;
  uint64_t errors = 0;

 private:
  TcpStack& stack_;
};

class EchoListener final : public tcp::ListenHandler {
 public:
  explicit EchoListener(TcpStack& s) : conn(s) {}
  tcp::ConnHandler* on_accept(Tcb& c) override {
    if (conn.tcb != nullptr) return nullptr;  // one connection only
    conn.tcb = &c;
    return &conn;
  }
  EchoConn conn;
};

// ----- the client application: one request outstanding -----

class Client final : public tcp::ConnHandler {
 public:
  explicit Client(TcpStack& s) : stack_(s) {}

  void on_connected(Tcb& c) override { (void)c, connected = true; }
  void on_readable(Tcb& c) override {
    got_ += stack_.recv_copy(c, reply_ + got_, msg_size - got_);
    if (got_ < msg_size) return;  // the rest of the response is still coming
    got_ = 0;
    if (std::memcmp(reply_, request_, msg_size) != 0) ++errors;
    ++done;
    if (sent < target) send_request();
  }
  void on_closed(Tcb& c, Errc reason) override {
    (void)c;
    if (reason != Errc::ok) ++errors;
    closed = true;
  }

  /// Sends request number `sent` (its number in the first 8 bytes, a pattern after).
  void send_request() {
    for (size_t i = 0; i < msg_size; ++i) request_[i] = uint8_t(sent * 7 + i);
    std::memcpy(request_, &sent, sizeof sent);
    auto r = stack_.send_copy(*tcb, request_, msg_size);
    if (!r || *r != msg_size) ++errors;
    ++sent;
  }

  Tcb* tcb = nullptr;
  bool connected = false, closed = false;
  uint64_t sent = 0, done = 0, target = 0, errors = 0;

 private:
  TcpStack& stack_;
  uint8_t request_[msg_size] = {};
  uint8_t reply_[msg_size] = {};
  size_t got_ = 0;
};

// ----- the same echo on the native API: one poll, the batch of events -----

class ApiEcho {
 public:
  ApiEcho(engine::Instance& inst, TcpStack& tcp) : core_(inst, tcp, engine::IdleConfig{}, nullptr, 1) {
    core_.bind_to_current_thread();
  }
  Result<void> listen() {
    auto l = core_.listen(Endpoint{Ipv4Address::any(), echo_port}, ListenOptions{16});
    if (!l) return fail(l.error());
    return {};
  }
  /// One stack iteration and the echo of whatever became readable, then the
  /// flush the next poll() would begin with (so the response leaves now).
  void poll(uint64_t now) {
    handle_batch();
    core_.instance().flush(now);
  }
  void handle_batch() {
    for (const Event& e : core_.poll(false)) {
      Connection c = e.conn;
      if (e.has(event::accepted)) accepted = true;
      if (e.has(event::closed) && e.error != Errc::ok) ++errors;
      if (!e.has(event::readable)) continue;
      auto b = c.recv();
      if (!b || b->empty()) continue;
      if (!c.send(*b)) ++errors;  // the send buffer (1 MiB) never fills here
      conn = c;
    }
  }
  void close() { (void)conn.close(); }
  bool accepted = false;
  uint64_t errors = 0;
  Connection conn;

 private:
  detail::StackCore core_;
};

enum class Collect { none, server, client };

/// Both stacks and the loop that drives them.
class Bench {
 public:
  Bench(engine::Engine& a, engine::Engine& b, rte_ring* ab, rte_ring* ba, const Options& o)
      : a_(a), b_(b), ia_(*a.instances().front()), ib_(*b.instances().front()), ab_(ab),
        ba_(ba), opt_(o), client_(a.tcp(0)), server_(b.tcp(0)) {
    if (o.api_server) api_ = std::make_unique<ApiEcho>(ib_, b.tcp(0));
  }

  Result<void, std::string> setup() {
    clock_.now = engine::now_ns();  // after both instances took it as their timer origin
    a_.tcp(0).set_clock(&Clock::read, &clock_);
    b_.tcp(0).set_clock(&Clock::read, &clock_);
    ia_.start(clock_.now);
    ib_.start(clock_.now);
    auto l = api_ ? api_->listen() : b_.tcp(0).listen(net::Ipv4Addr{}, echo_port, 16, &server_).has_value()
                                         ? Result<void>{} : fail(Errc::already_exists);
    if (!l) return err("listen: " + std::string(to_string(l.error())));
    // Gratuitous ARP both ways, then ARP for the server, SYN, SYN-ACK, ACK.
    for (int i = 0; i < 8; ++i) poll_both();
    auto c = a_.tcp(0).connect(server_ip, echo_port, &client_, client_port);
    if (!c) return err("connect: " + std::string(to_string(c.error())));
    client_.tcb = *c;
    for (int i = 0; i < 100 && !(client_.connected && server_accepted()); ++i) poll_both();
    if (!client_.connected) return err("the connection did not open");
    return {};
  }

  struct Phase {
    uint64_t transactions = 0, server_polls = 0, client_polls = 0, timer_polls = 0;
    uint64_t server_rx = 0, client_rx = 0;  // frames each stack received
    double seconds = 0;
  };

  /// Runs `n` transactions, collecting (under callgrind) only around `who`'s polls.
  Result<Phase, std::string> run(uint64_t n, Collect who) {
    Phase ph;
    uint64_t rx_b0 = ib_.counters().get(engine::Counter::rx_packets);
    uint64_t rx_a0 = ia_.counters().get(engine::Counter::rx_packets);
    uint64_t start_done = client_.done;
    client_.target = client_.sent + n;
    auto t0 = std::chrono::steady_clock::now();
    // The first request goes out from here; every later one from A's on_readable.
    // It is client work: counted in the client phase, so that phase holds N sends.
    if (who == Collect::client) CALLGRIND_TOGGLE_COLLECT;
    client_.send_request();
    ia_.flush(clock_.now);
    if (who == Collect::client) CALLGRIND_TOGGLE_COLLECT;
    uint64_t stuck = 0;
    while (client_.done < client_.target) {
      bool worked = false;
      if (rte_ring_count(ab_) != 0) {
        poll_server(who);
        ++ph.server_polls;
        worked = true;
      }
      if (rte_ring_count(ba_) != 0) {
        poll_client(who);
        ++ph.client_polls;
        worked = true;
      }
      if (worked) {
        stuck = 0;
        continue;
      }
      // Nothing in flight: only a timer can move things on.
      if (++stuck > 1000 || client_.closed)
        return err("stalled after " + std::to_string(client_.done - start_done) +
                   " transactions (connection " + (client_.closed ? "closed)" : "idle)"));
      uint64_t next = std::min(ia_.next_wakeup_ns(), ib_.next_wakeup_ns());
      if (next != UINT64_MAX && next > clock_.now) clock_.now = next - opt_.step_ns;
      poll_server(who);
      poll_client(who);
      ph.timer_polls += 2;
    }
    ph.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ph.transactions = client_.done - start_done;
    ph.server_rx = ib_.counters().get(engine::Counter::rx_packets) - rx_b0;
    ph.client_rx = ia_.counters().get(engine::Counter::rx_packets) - rx_a0;
    return ph;
  }

  uint64_t errors() const { return client_.errors + server_.conn.errors + (api_ ? api_->errors : 0); }
  bool server_accepted() const { return api_ ? api_->accepted : server_.conn.tcb != nullptr; }

  /// Orderly close (client first) and a few polls so both ends see it.
  void close() {
    if (client_.tcb != nullptr && !client_.closed) a_.tcp(0).close(*client_.tcb);
    if (server_.conn.tcb != nullptr) b_.tcp(0).close(*server_.conn.tcb);
    if (api_) api_->close();
    for (int i = 0; i < 8; ++i) poll_both();
  }

 private:
  static Unexpected<std::string> err(std::string s) { return Unexpected<std::string>{std::move(s)}; }

  // noinline: the poll of each side is one named frame in callgrind's call graph.
  [[gnu::noinline]] void poll_server(Collect who) {
    clock_.now += opt_.step_ns;
    if (who == Collect::server) CALLGRIND_TOGGLE_COLLECT;
    if (api_) api_->poll(clock_.now);  // the core reads the same clock (TcpStack::clock_now)
    else ib_.poll(clock_.now);
    if (who == Collect::server) CALLGRIND_TOGGLE_COLLECT;
  }
  [[gnu::noinline]] void poll_client(Collect who) {
    clock_.now += opt_.step_ns;
    if (who == Collect::client) CALLGRIND_TOGGLE_COLLECT;
    ia_.poll(clock_.now);
    if (who == Collect::client) CALLGRIND_TOGGLE_COLLECT;
  }
  void poll_both() {
    poll_client(Collect::none);
    poll_server(Collect::none);
  }

  engine::Engine& a_;
  engine::Engine& b_;
  engine::Instance& ia_;
  engine::Instance& ib_;
  rte_ring* ab_;  // A -> B: frames for the server
  rte_ring* ba_;  // B -> A: frames for the client
  Options opt_;
  Clock clock_;
  Client client_;
  EchoListener server_;
  std::unique_ptr<ApiEcho> api_;  // --server api: replaces server_
};

Result<std::unique_ptr<engine::Engine>, std::string> make_engine(const std::string& dev,
                                                                  net::Ipv4Addr addr, uint8_t mac) {
  engine::EngineConfig cfg;
  cfg.instances = 1;
  cfg.pool_mbufs = 8191;  // plenty for one connection; less to set up under valgrind
  engine::PortSpec p;
  p.device = dev;
  p.l3.addrs = {net::Ipv4Cidr{addr, 24}};
  p.mac = net::MacAddr{{0x02, 0, 0, 0, 0, mac}};  // fixed: the same ARP hash every run
  cfg.ports = {p};
  return engine::Engine::create(cfg);
}

bool parse_u64(const char* s, uint64_t& out) {
  char* end = nullptr;
  unsigned long long v = std::strtoull(s, &end, 10);
  if (end == s || *end != '\0') return false;
  out = v;
  return true;
}

void usage() {
  std::fprintf(stderr,
               "usage: cost_rr [--transactions N] [--warmup N] [--step-ns NS] [--server tcp|api]\n"
               "  64-byte request/response between two keel stacks in one thread.\n"
               "  --server api: the server's echo on the native API (batched events, Buffers)\n"
               "  instead of TCP callbacks (tcp, the default).\n"
               "  Run under perf/cost/run-cost.sh (callgrind) for instructions per transaction;\n"
               "  alone it prints wall-clock ns per transaction. By hand under callgrind, pass\n"
               "  --instr-atstart=no --collect-atstart=no: collection is toggled around one\n"
               "  side's polls, and one profile per side is dumped (\"server\", \"client\").\n");
}

void print_phase(const char* name, const Bench::Phase& ph) {
  double n = double(ph.transactions);
  std::printf("cost_rr phase: side=%s transactions=%" PRIu64 " server_polls=%" PRIu64
              " client_polls=%" PRIu64 " timer_polls=%" PRIu64
              " server_rx_per_tx=%.2f client_rx_per_tx=%.2f seconds=%.3f ns_per_tx=%.1f\n",
              name, ph.transactions, ph.server_polls, ph.client_polls, ph.timer_polls,
              double(ph.server_rx) / n, double(ph.client_rx) / n, ph.seconds,
              ph.seconds * 1e9 / n);
}

int run(const Options& opt) {
  std::vector<std::string> eal = {"cost_rr",       "--no-huge",     "-m",
                                  "256",           "--no-pci",      "--no-shconf",
                                  "--no-telemetry", "-l",           "0",
                                  "--log-level=lib.eal:error", "--log-level=pmd:error"};
  if (auto r = drivers::eal_init(eal); !r) {
    std::fprintf(stderr, "cost_rr: EAL: %s\n", r.error().c_str());
    return 2;
  }
  int rc = 1;
  {
    auto link = drivers::create_ring_link(link_name, 1024);
    rte_ring* ab = rte_ring_lookup((std::string(link_name) + "_ab").c_str());
    rte_ring* ba = rte_ring_lookup((std::string(link_name) + "_ba").c_str());
    auto a = link ? make_engine(std::string("net_ring_") + link_name + "_a", client_ip, 1)
                  : Unexpected<std::string>{link.error()};
    auto b = a ? make_engine(std::string("net_ring_") + link_name + "_b", server_ip, 2)
               : Unexpected<std::string>{a.error()};
    if (!b || ab == nullptr || ba == nullptr) {
      std::fprintf(stderr, "cost_rr: set-up: %s\n", b ? "ring lookup failed" : b.error().c_str());
      drivers::eal_cleanup();
      return 2;
    }
    Bench bench(**a, **b, ab, ba, opt);
    if (auto r = bench.setup(); !r) {
      std::fprintf(stderr, "cost_rr: %s\n", r.error().c_str());
    } else if (auto w = bench.run(opt.warmup, Collect::none); !w) {
      std::fprintf(stderr, "cost_rr: warm-up: %s\n", w.error().c_str());
    } else {
      bool valgrind = RUNNING_ON_VALGRIND;
      CALLGRIND_ZERO_STATS;
      CALLGRIND_START_INSTRUMENTATION;
      auto s = bench.run(opt.transactions, Collect::server);
      CALLGRIND_DUMP_STATS_AT("server");
      auto c = s ? bench.run(opt.transactions, Collect::client)
                 : Unexpected<std::string>{s.error()};
      CALLGRIND_DUMP_STATS_AT("client");
      CALLGRIND_STOP_INSTRUMENTATION;
      if (!c) {
        std::fprintf(stderr, "cost_rr: %s\n", c.error().c_str());
      } else {
        print_phase("server", *s);
        print_phase("client", *c);
        uint64_t n = s->transactions + c->transactions;
        double secs = s->seconds + c->seconds;
        uint64_t errors = bench.errors();
        uint64_t timer_polls = s->timer_polls + c->timer_polls;
        if (!valgrind)
          std::printf("cost_rr: not under valgrind: wall-clock only (both stacks on this core); "
                      "instruction counts need perf/cost/run-cost.sh (callgrind)%s\n",
                      KEEL_COST_HAVE_VALGRIND ? "" : " and a build with <valgrind/callgrind.h>");
        const char* why = errors != 0 ? "FAILED (echo errors)"
                          : timer_polls != 0 ? "FAILED (timers fired: idle round trips)"
                                             : "ok";
        std::printf("bench cost_rr: size=%zu transactions=%" PRIu64 " warmup=%" PRIu64
                    " step_ns=%" PRIu64 " valgrind=%d seconds=%.3f ns_per_tx=%.1f"
                    " timer_polls=%" PRIu64 " errors=%" PRIu64 " %s\n",
                    msg_size, n, opt.warmup, opt.step_ns, valgrind ? 1 : 0, secs,
                    secs * 1e9 / double(n), timer_polls, errors, why);
        rc = errors == 0 && timer_polls == 0 ? 0 : 1;
      }
    }
    bench.close();
  }  // engines (ports, pools) go before EAL
  drivers::eal_cleanup();
  return rc;
}

}  // namespace

}  // namespace keel::perf

int main(int argc, char** argv) {
  keel::perf::Options opt;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    uint64_t* dst = a == "--transactions" ? &opt.transactions
                    : a == "--warmup"     ? &opt.warmup
                    : a == "--step-ns"    ? &opt.step_ns
                                          : nullptr;
    if (a == "-h" || a == "--help") return keel::perf::usage(), 0;
    if (a == "--server" && i + 1 < argc && (std::string_view(argv[i + 1]) == "api" ||
                                            std::string_view(argv[i + 1]) == "tcp")) {
      opt.api_server = std::string_view(argv[++i]) == "api";
      continue;
    }
    if (dst == nullptr || i + 1 >= argc || !keel::perf::parse_u64(argv[++i], *dst)) {
      keel::perf::usage();
      return 2;
    }
  }
  if (opt.transactions == 0 || opt.step_ns == 0) {
    keel::perf::usage();
    return 2;
  }
  return keel::perf::run(opt);
}
