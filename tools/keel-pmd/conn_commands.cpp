// SPDX-License-Identifier: BSD-3-Clause
// keel-pmd's TCP commands: show conns, show tcp, connect, send, shutdown,
// close, set tcp. Everything that touches a TcpStack runs on its instance's
// lcore through run_on(); the connections `connect` makes belong to instance 0
// and report what happens to them from there, through AsyncOut.
#include <rte_mempool.h>

#include <charconv>
#include <cstdio>
#include <iomanip>
#include <mutex>
#include <sstream>

#include "cli.hpp"
#include "services.hpp"
#include "shm/node.hpp"
#include "tcp/cc/cc.hpp"
#include "tcp/tcp_stack.hpp"

namespace keel::pmd {

/// Whole lines to the user from any thread.
struct AsyncOut {
  explicit AsyncOut(std::ostream& o) : out(o) {}
  void write(const std::string& text) {
    std::lock_guard lk(mu);
    out << text << std::flush;
  }
  std::mutex mu;
  std::ostream& out;
};

/// The connections made by `connect`, numbered from 1. Lives on instance 0's
/// lcore: only its callbacks and run_on() closures touch it.
struct ClientConns {
  struct Conn final : tcp::ConnHandler {
    Conn(ClientConns& o, unsigned n) : owner(o), id(n) {}

    void on_connected(tcp::Tcb& c) override {
      say("connected " + endpoint(c.key.local_ip, c.key.local_port) + " -> " +
          endpoint(c.key.remote_ip, c.key.remote_port));
    }
    void on_readable(tcp::Tcb& c) override {
      std::string raw;
      char buf[2048];
      while (size_t n = owner.tcp->recv_copy(c, buf, sizeof buf)) raw.append(buf, n);
      // One output line per received line; a trailing partial line is shown too.
      std::string text;
      size_t start = 0;
      while (start < raw.size()) {
        size_t nl = raw.find('\n', start);
        size_t end = nl == std::string::npos ? raw.size() : nl;
        size_t stop = end > start && raw[end - 1] == '\r' ? end - 1 : end;
        text += "conn " + std::to_string(id) + ": " + escape(raw.substr(start, stop - start)) + "\n";
        start = end + 1;
      }
      if (!text.empty()) owner.out->write(text);
    }
    void on_peer_closed(tcp::Tcb&) override { say("peer closed (FIN received)"); }
    void on_closed(tcp::Tcb&, Errc reason) override {
      tcb = nullptr;
      closed = true;
      say(reason == Errc::ok ? std::string("closed") : "closed: " + std::string(to_string(reason)));
    }

    void say(const std::string& what) { owner.out->write("conn " + std::to_string(id) + ": " + what + "\n"); }
    static std::string endpoint(uint32_t ip, uint16_t port) {
      return net::Ipv4Addr{ip}.to_string() + ":" + std::to_string(port);
    }
    static std::string escape(const std::string& s) {
      std::string o;
      for (unsigned char ch : s) {
        if (ch >= 0x20 && ch < 0x7f) o += char(ch);
        else if (ch == '\t') o += "\\t";
        else {
          char e[5];
          std::snprintf(e, sizeof e, "\\x%02x", ch);
          o += e;
        }
      }
      return o;
    }

    ClientConns& owner;
    unsigned id;
    tcp::Tcb* tcb = nullptr;
    bool closed = false;  // on_closed came: tcb is gone
  };

  /// Forgets closed connections (never from inside a callback).
  void purge() {
    std::erase_if(conns, [](const auto& c) { return c->closed; });
  }
  Conn* find(unsigned id) {
    for (auto& c : conns)
      if (c->id == id && !c->closed) return c.get();
    return nullptr;
  }
  unsigned id_of(const tcp::Tcb* t) const {
    for (auto& c : conns)
      if (c->tcb == t) return c->id;
    return 0;
  }

  tcp::TcpStack* tcp = nullptr;
  std::shared_ptr<AsyncOut> out;
  std::vector<std::unique_ptr<Conn>> conns;
  unsigned next_id = 1;
};

namespace {

bool parse_uint(const std::string& s, unsigned& out, unsigned min, unsigned max) {
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || v < min || v > max) return false;
  out = v;
  return true;
}

const char* not_answering = "  (instance not responding)\n";

}  // namespace

Cli::Cli(engine::Engine& engine, std::ostream& async_out)
    : engine_(engine),
      async_out_(std::make_shared<AsyncOut>(async_out)),
      clients_(std::make_shared<ClientConns>()) {
  clients_->tcp = &engine_.tcp(0);
  clients_->out = async_out_;
}

Cli::~Cli() = default;

void Cli::show_conns(std::ostream& out) {
  for (size_t i = 0; i < engine_.instances().size(); ++i) {
    auto text = std::make_shared<std::string>();
    tcp::TcpStack* stack = &engine_.tcp(i);
    std::shared_ptr<ClientConns> clients = i == 0 ? clients_ : nullptr;
    const Services* services = services_;
    bool ok = run_on(*engine_.instances()[i], [=](engine::Instance&) {
      std::ostringstream o;
      size_t n = stack->connections();
      o << "instance " << i << ": " << n << (n == 1 ? " connection\n" : " connections\n");
      if (n > 0)
        o << "  " << std::left << std::setw(13) << "State" << std::right << std::setw(8) << "Recv-Q"
          << std::setw(9) << "Send-Q" << "  " << std::left << std::setw(22) << "Local Address:Port"
          << std::setw(22) << "Peer Address:Port" << "Owner\n";
      stack->for_each([&](tcp::Tcb& c) {
        tcp::ConnInfo in = stack->info(c);
        std::string owner = "-";
        if (unsigned id = clients ? clients->id_of(&c) : 0) owner = "conn " + std::to_string(id);
        else if (const char* s = services ? services->name_for_port(in.key.local_port) : nullptr)
          owner = s;
        char ssthresh[16];
        if (in.ssthresh == tcp::cc::infinite_ssthresh) std::snprintf(ssthresh, sizeof ssthresh, "inf");
        else std::snprintf(ssthresh, sizeof ssthresh, "%u", in.ssthresh);
        char detail[512];
        std::snprintf(detail, sizeof detail,
                      "      %s mss:%u cwnd:%u ssthresh:%s rtt:%.3f/%.3f ms rto:%.0f ms retrans:%u/%u "
                      "sacked:%u unacked:%u snd_wnd:%u rcv_wnd:%u bytes_acked:%llu bytes_received:%llu\n",
                      in.cc, in.mss, in.cwnd, ssthresh, double(in.srtt_us) / 1000.0,
                      double(in.rttvar_us) / 1000.0, double(in.rto_us) / 1000.0, in.retransmits,
                      in.total_retransmits, in.sacked_bytes, in.unacked, in.snd_wnd, in.rcv_wnd,
                      static_cast<unsigned long long>(in.bytes_acked),
                      static_cast<unsigned long long>(in.bytes_received));
        o << "  " << std::left << std::setw(13) << tcp::to_string(in.state) << std::right
          << std::setw(8) << in.rcv_queue << std::setw(9) << in.snd_queue << "  " << std::left
          << std::setw(22) << ClientConns::Conn::endpoint(in.key.local_ip, in.key.local_port)
          << std::setw(22) << ClientConns::Conn::endpoint(in.key.remote_ip, in.key.remote_port)
          << owner << "\n"
          << std::right << detail;
      });
      *text = o.str();
    });
    out << (ok ? *text : "instance " + std::to_string(i) + ":\n" + not_answering);
  }
  // Channels belong to the node, not to an instance: they carry no TCP.
  if (node_ != nullptr) out << "channels (intra-node, shared memory):\n" << node_->describe_channels();
}

void Cli::show_tcp(std::ostream& out) {
  for (size_t i = 0; i < engine_.instances().size(); ++i) {
    auto& inst = *engine_.instances()[i];
    auto conns = std::make_shared<size_t>(0);
    tcp::TcpStack* stack = &engine_.tcp(i);
    bool ok = run_on(inst, [conns, stack](engine::Instance&) { *conns = stack->connections(); });
    out << "instance " << i << ": ";
    if (ok) out << *conns << (*conns == 1 ? " connection\n" : " connections\n");
    else out << "(instance not responding)\n";
    for (size_t k = 0; k < engine::counter_count; ++k) {
      auto c = engine::Counter(k);
      std::string_view name = engine::counter_name(c);
      uint64_t v = inst.counters().get(c);
      if (v == 0 || name.substr(0, 4) != "tcp_") continue;
      out << "  " << std::left << std::setw(28) << name << std::right << std::setw(14) << v << "\n";
    }
  }
  // Buffers held by connections (send and receive queues) come from here: a
  // number that stays up after every connection closed is a leak.
  if (rte_mempool* p = engine_.pool())
    out << "mbufs in use: " << rte_mempool_in_use_count(p) << " of " << p->size << "\n";
}

void Cli::connect(const std::vector<std::string>& w, std::ostream& out) {
  unsigned port = 0;
  auto dst = w.size() == 3 ? net::Ipv4Addr::parse(w[1]) : std::nullopt;
  if (!dst || !parse_uint(w[2], port, 1, 65535)) {
    out << "error: usage: connect ADDR PORT (PORT 1..65535)\n";
    return;
  }
  struct Outcome {
    unsigned id = 0;
    Errc err = Errc::ok;
  };
  auto res = std::make_shared<Outcome>();
  auto clients = clients_;
  net::Ipv4Addr addr = *dst;
  bool ok = run_on(*engine_.instances().front(), [=](engine::Instance&) {
    clients->purge();
    unsigned id = clients->next_id;
    auto conn = std::make_unique<ClientConns::Conn>(*clients, id);
    // Said before the SYN leaves, so it prints before "connected".
    clients->out->write("conn " + std::to_string(id) + ": connecting to " + addr.to_string() + ":" +
                        std::to_string(port) + "\n");
    auto r = clients->tcp->connect(addr, uint16_t(port), conn.get());
    if (!r) {
      res->err = r.error();
      return;
    }
    ++clients->next_id;
    conn->tcb = *r;
    clients->conns.push_back(std::move(conn));
    res->id = id;
  });
  if (!ok) out << "error: connect: instance 0 not responding\n";
  else if (res->err != Errc::ok) out << "error: connect: " << to_string(res->err) << "\n";
}

namespace {
// The text after the first two words of `line`, less the one blank after them.
std::string rest_after_two_words(const std::string& line) {
  size_t p = 0;
  for (int k = 0; k < 2; ++k) {
    p = line.find_first_not_of(" \t", p);
    p = line.find_first_of(" \t", p);
    if (p == std::string::npos) return "";
  }
  return line.substr(p + 1);
}
}  // namespace

void Cli::send(const std::string& line, const std::vector<std::string>& w, std::ostream& out) {
  unsigned id = 0;
  if (w.size() < 2 || !parse_uint(w[1], id, 1, UINT32_MAX)) {
    out << "error: usage: send N TEXT...\n";
    return;
  }
  std::string text = rest_after_two_words(line) + "\n";
  struct Outcome {
    bool found = false;
    size_t sent = 0;
    Errc err = Errc::ok;
  };
  auto res = std::make_shared<Outcome>();
  auto clients = clients_;
  bool ok = run_on(*engine_.instances().front(), [=](engine::Instance&) {
    ClientConns::Conn* c = clients->find(id);
    if (c == nullptr) return;
    res->found = true;
    auto r = clients->tcp->send_copy(*c->tcb, text.data(), text.size());
    if (!r) res->err = r.error();
    else res->sent = *r;
  });
  if (!ok) out << "error: send: instance 0 not responding\n";
  else if (!res->found) out << "error: send: no connection " << id << "\n";
  else if (res->err != Errc::ok) out << "error: send: conn " << id << ": " << to_string(res->err) << "\n";
  else if (res->sent < text.size())
    out << "error: send: conn " << id << ": send buffer full, " << res->sent << " of " << text.size()
        << " bytes queued\n";
  else out << "conn " << id << ": queued " << res->sent << " bytes\n";
}

void Cli::shutdown_or_close(const std::vector<std::string>& w, bool close, std::ostream& out) {
  const char* cmd = close ? "close" : "shutdown";
  unsigned id = 0;
  if (w.size() != 2 || !parse_uint(w[1], id, 1, UINT32_MAX)) {
    out << "error: usage: " << cmd << " N\n";
    return;
  }
  struct Outcome {
    bool found = false;
    Errc err = Errc::ok;
  };
  auto res = std::make_shared<Outcome>();
  auto clients = clients_;
  bool ok = run_on(*engine_.instances().front(), [=](engine::Instance&) {
    ClientConns::Conn* c = clients->find(id);
    if (c == nullptr) return;
    res->found = true;
    if (close) {
      clients->tcp->close(*c->tcb);  // may report "closed" at once (reset when data is unread)
    } else if (auto r = clients->tcp->shutdown(*c->tcb); !r) {
      res->err = r.error();
    }
  });
  if (!ok) out << "error: " << cmd << ": instance 0 not responding\n";
  else if (!res->found) out << "error: " << cmd << ": no connection " << id << "\n";
  else if (res->err != Errc::ok) out << "error: " << cmd << ": conn " << id << ": " << to_string(res->err) << "\n";
  else out << "conn " << id << ": " << (close ? "closing" : "shut down (FIN queued)") << "\n";
}

void Cli::set_tcp(const std::vector<std::string>& w, std::ostream& out) {
  if (w.size() != 4 || w[1] != "tcp" || (w[2] != "cc" && w[2] != "nodelay")) {
    out << "error: usage: set tcp cc newreno|cubic | set tcp nodelay on|off\n";
    return;
  }
  std::function<void(tcp::TcpConfig&)> apply;
  if (w[2] == "cc") {
    const tcp::cc::Algorithm* a = tcp::cc::find(w[3]);
    if (a == nullptr) {
      out << "error: set tcp cc: unknown algorithm '" << w[3] << "' (newreno, cubic)\n";
      return;
    }
    apply = [a](tcp::TcpConfig& c) { c.cc = a; };
  } else {
    if (w[3] != "on" && w[3] != "off") {
      out << "error: set tcp nodelay: say on or off, not '" << w[3] << "'\n";
      return;
    }
    bool on = w[3] == "on";
    apply = [on](tcp::TcpConfig& c) { c.nodelay = on; };
  }
  for (size_t i = 0; i < engine_.instances().size(); ++i) {
    tcp::TcpStack* stack = &engine_.tcp(i);
    if (!run_on(*engine_.instances()[i], [stack, apply](engine::Instance&) { apply(stack->config()); })) {
      out << "error: set tcp: instance " << i << " not responding\n";
      return;
    }
  }
  out << "tcp " << w[2] << " " << w[3] << " for new connections on " << engine_.instances().size()
      << (engine_.instances().size() == 1 ? " instance\n" : " instances\n");
}

}  // namespace keel::pmd
