// SPDX-License-Identifier: BSD-3-Clause
#include "cli.hpp"

#include <rte_ethdev.h>

#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <iomanip>
#include <mutex>
#include <sstream>
#include <vector>

#include "ping.hpp"
#include "shm/node.hpp"

namespace keel::pmd {

namespace {
std::vector<std::string> words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> w;
  for (std::string s; in >> s;) w.push_back(s);
  return w;
}

bool parse_count(const std::string& s, unsigned& out, unsigned max) {
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || v == 0 || v > max) return false;
  out = v;
  return true;
}

const char* help_text =
    "commands:\n"
    "  help                         this list\n"
    "  show port                    ports: driver, MAC, MTU, link, offloads, queues\n"
    "  show stats [all]             counters per instance (non-zero unless 'all') and per port\n"
    "  show arp                     neighbour tables\n"
    "  show conns                   TCP connections per instance (like ss -tin)\n"
    "  show tcp                     TCP counters per instance (non-zero)\n"
    "  show mem                     memory per connection: TCB table, hash, mbufs in use, RSS\n"
    "  show shm                     the node's fast path: directory of listeners, endpoints, channels\n"
    "  show mp                      multi-process group: processes, instances, heartbeats, owner\n"
    "                               map, pool in use, takeovers of dead secondaries\n"
    "  ping ADDR [COUNT [INTERVAL_MS [SIZE]]]  ICMP echo from the instance the replies are steered to\n"
    "                               (instance 0 unless --instances N; default 4, 1000 ms, 56)\n"
    "  connect ADDR PORT            TCP connection from instance 0; what arrives prints as 'conn N: ...'\n"
    "  send N TEXT...               send TEXT and a newline on connection N\n"
    "  shutdown N                   half-close connection N (send FIN)\n"
    "  close N                      close connection N\n"
    "  set tcp cc newreno|cubic     congestion control for new connections (every instance)\n"
    "  set tcp nodelay on|off       Nagle off/on for new connections (every instance)\n"
    "  stream ADDR PORT BYTES [CONNS]  send BYTES (per connection, default 1 connection) to a\n"
    "                               discard service; waits, reports bytes acknowledged, Gbit/s,\n"
    "                               retransmits, ok/FAILED (gives up after 30 s without progress)\n"
    "  echotest ADDR PORT SIZE ROUNDS [CONNS]  ROUNDS round trips of SIZE random bytes through an\n"
    "                               echo service on each of CONNS connections (default 1); every\n"
    "                               byte checked; reports intact/corrupt, ok/FAILED\n"
    "  tls-get ADDR PORT PATH [1.2|1.3] [resume] [sni=NAME] [discard]  keel as a TLS client (no\n"
    "                               certificate check): GET PATH, then the version, suite, status\n"
    "                               line, body bytes, sha256, resumed=yes|no, the server\n"
    "                               certificate's subject, time and rate; resume: fetch twice, the\n"
    "                               second time resuming the first's session (ticket); sni=NAME:\n"
    "                               send NAME as SNI and Host; discard: count the body, no sha256\n"
    "  bench rr ADDR PORT SIZE [CONNS [SECONDS]]    CONNS connections (default 1) to an echo\n"
    "                               service, one SIZE-byte request outstanding on each, for\n"
    "                               SECONDS (default 3, after a warm-up): transactions/s, latency\n"
    "  bench crr ADDR PORT SIZE [CONNS [SECONDS]]   connect, one request/response, close, repeat\n"
    "                               (CONNS slots in parallel): connections/s, latency\n"
    "  bench stream ADDR PORT [CONNS [SECONDS]]     bulk send into a discard service: Gbit/s\n"
    "                               acknowledged, retransmits\n"
    "  bench http ADDR PORT PATH [CONNS [SECONDS]]  HTTP/1.1 keep-alive GETs, one outstanding\n"
    "                               per connection: requests/s, latency, non-2xx\n"
    "  bench idle ADDR PORT N       open N idle connections and leave them open\n"
    "  bench idle close             abort the idle connections\n"
    "  quit                         stop the ports and exit\n";
}  // namespace

bool run_on(engine::Instance& inst, const std::function<void(engine::Instance&)>& fn,
            unsigned timeout_ms) {
  struct Done {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
  };
  auto d = std::make_shared<Done>();
  if (!inst.post([d, fn](engine::Instance& i) {
        fn(i);
        std::lock_guard lk(d->mu);
        d->done = true;
        d->cv.notify_all();
      }))
    return false;
  std::unique_lock lk(d->mu);
  return d->cv.wait_for(lk, std::chrono::milliseconds(timeout_ms), [&] { return d->done; });
}

bool Cli::execute(const std::string& line, std::ostream& out) {
  auto w = words(line);
  if (w.empty() || w[0][0] == '#') return true;
  const std::string& cmd = w[0];
  if (cmd == "quit" || cmd == "exit") return false;
  if (cmd == "help") {
    out << help_text;
  } else if (cmd == "show" && w.size() >= 2 && w[1] == "port" && w.size() == 2) {
    show_port(out);
  } else if (cmd == "show" && w.size() >= 2 && w[1] == "stats" &&
             (w.size() == 2 || (w.size() == 3 && w[2] == "all"))) {
    show_stats(out, w.size() == 3);
  } else if (cmd == "show" && w.size() == 2 && w[1] == "arp") {
    show_arp(out);
  } else if (cmd == "show" && w.size() == 2 && w[1] == "conns") {
    show_conns(out);
  } else if (cmd == "show" && w.size() == 2 && w[1] == "tcp") {
    show_tcp(out);
  } else if (cmd == "show" && w.size() == 2 && w[1] == "mem") {
    show_mem(out);
  } else if (cmd == "show" && w.size() == 2 && w[1] == "mp") {
    out << (engine_.multi_process() ? engine_.mp_status() : "single process (no --instances-total)\n");
  } else if (cmd == "show" && w.size() == 2 && w[1] == "shm") {
    out << (node_ != nullptr ? node_->describe() : "no fast-path zone (shm off)\n");
  } else if (cmd == "show") {
    out << "error: usage: show port|stats [all]|arp|conns|tcp|mem|shm|mp\n";
  } else if (cmd == "connect") {
    connect(w, out);
  } else if (cmd == "send") {
    send(line, w, out);
  } else if (cmd == "shutdown" || cmd == "close") {
    shutdown_or_close(w, cmd == "close", out);
  } else if (cmd == "set") {
    set_tcp(w, out);
  } else if (cmd == "stream") {
    stream(w, out);
  } else if (cmd == "echotest") {
    echotest(w, out);
  } else if (cmd == "tls-get") {
    tls_get(w, out);
  } else if (cmd == "bench") {
    bench(w, out);
  } else if (cmd == "ping") {
    unsigned count = 4, interval = 1000, size = 56;
    auto dst = w.size() >= 2 ? net::Ipv4Addr::parse(w[1]) : std::nullopt;
    if (!dst) {
      out << "error: usage: ping ADDR [COUNT [INTERVAL_MS [SIZE]]]\n";
    } else if ((w.size() >= 3 && !parse_count(w[2], count, 100000)) ||
               (w.size() >= 4 && !parse_count(w[3], interval, 60000)) ||
               (w.size() >= 5 && !parse_count(w[4], size, 65000)) || w.size() > 5) {
      out << "error: ping: bad COUNT (1..100000), INTERVAL_MS (1..60000) or SIZE (1..65000)\n";
    } else {
      ping(ping_instance(engine_, *dst), *dst, count, interval, size, out);
    }
  } else {
    out << "error: unknown command '" << cmd << "' (try help)\n";
  }
  out << std::flush;
  return true;
}

void Cli::show_port(std::ostream& out) {
  for (auto& p : engine_.ports()) {
    const auto& c = p.caps();
    out << "port " << p.id() << " " << p.name() << " (" << p.driver() << ")\n"
        << "  mac " << p.mac().to_string() << "  mtu " << p.mtu() << "  queues " << p.queues()
        << "\n  link " << p.link_status() << "\n  offloads:" << (c.rx_ipv4_cksum ? " rx-ipv4-cksum" : "")
        << (c.rx_l4_cksum ? " rx-l4-cksum" : "") << (c.tx_ipv4_cksum ? " tx-ipv4-cksum" : "")
        << (c.tx_tcp_cksum ? " tx-tcp-cksum" : "") << (c.tx_udp_cksum ? " tx-udp-cksum" : "")
        << (c.tx_tso ? " tso" : "") << (c.tx_multi_seg ? " multi-seg" : "")
        << (c.rss ? " rss" : "") << "\n";
  }
  for (auto& inst : engine_.instances())
    for (auto& ifc : inst->interfaces()) {
      out << "  instance " << inst->id() << " queue " << ifc->queue.queue_id()
          << (ifc->queue.receives() ? "" : " (transmits through its owner)") << " addrs";
      for (auto& a : ifc->l3.addrs) out << " " << a.to_string();
      if (!ifc->l3.gateway.is_any()) out << " gw " << ifc->l3.gateway.to_string();
      out << "\n";
      break;
    }
  if (const auto* s = engine_.steering())
    out << "  steering: " << s->instances() << " instances, RETA " << s->reta_size()
        << " entries; a port without rss is steered in software\n";
}

void Cli::show_stats(std::ostream& out, bool all) {
  for (auto& inst : engine_.instances()) {
    out << "instance " << inst->id() << ":\n";
    for (size_t i = 0; i < engine::counter_count; ++i) {
      auto c = engine::Counter(i);
      uint64_t v = inst->counters().get(c);
      // With several instances the steering counters show even at 0 (a port with RSS
      // should forward nothing, and that is worth seeing).
      bool steer = engine_.steering() != nullptr && engine::counter_name(c).starts_with("steer_");
      if (v == 0 && !all && !steer) continue;
      out << "  " << std::left << std::setw(28) << engine::counter_name(c) << std::right
          << std::setw(14) << v << "\n";
    }
  }
  for (auto& p : engine_.ports()) {
    rte_eth_stats s{};
    if (rte_eth_stats_get(p.id(), &s) != 0) continue;
    out << "port " << p.id() << ": rx " << s.ipackets << " pkts " << s.ibytes << " bytes, tx "
        << s.opackets << " pkts " << s.obytes << " bytes, rx-missed " << s.imissed
        << ", rx-errors " << s.ierrors << ", tx-errors " << s.oerrors << ", rx-nombuf "
        << s.rx_nombuf << "\n";
  }
}

void Cli::show_arp(std::ostream& out) {
  for (auto& inst : engine_.instances()) {
    // Shared: if the instance answers late, the closure still has somewhere to write.
    auto text = std::make_shared<std::string>();
    bool ok = run_on(*inst, [text](engine::Instance& i) {
      std::ostringstream o;
      for (auto& ifc : i.interfaces()) {
        ifc->arp.for_each([&](net::ArpEntry& e) {
          const char* st = e.state == net::ArpEntry::State::reachable ? "reachable"
                           : e.state == net::ArpEntry::State::stale   ? "stale"
                                                                      : "incomplete";
          o << "  " << std::left << std::setw(16) << e.ip.to_string() << std::setw(19)
            << (e.state == net::ArpEntry::State::incomplete ? "-" : e.mac.to_string())
            << std::setw(11) << st << " port " << ifc->queue.port_id() << " waiting "
            << e.pending.size() << "\n";
        });
      }
      *text = o.str();
    });
    out << "instance " << inst->id() << ":\n" << (ok ? *text : "  (instance not responding)\n");
  }
}

}  // namespace keel::pmd
