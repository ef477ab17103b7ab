// SPDX-License-Identifier: BSD-3-Clause
#include "options.hpp"

#include <charconv>

namespace keel::pmd {

namespace {
Unexpected<std::string> bad(const std::string& opt, const std::string& why) {
  return Unexpected<std::string>{"option " + opt + ": " + why};
}

template <class T>
bool parse_uint(const std::string& s, T& out, unsigned long long max) {
  unsigned long long v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || v > max || s.empty()) return false;
  out = T(v);
  return true;
}
}  // namespace

std::string usage() {
  return R"(usage: keel-pmd [EAL options] -- [options]
  --port DEV          ethdev to use (name like net_tap0, or index; default 0)
  --addr A.B.C.D/N    address of the port (repeat for more addresses)
  --gw A.B.C.D        default gateway
  --mtu N             port MTU (default 1500)
  --instances N       stack instances, one per lcore (default 1); each flow is processed
                      by the instance that owns its hash (RSS or software steering)
  --instances-total N multi-process (DPDK primary + secondaries over hugepages, shared
                      --file-prefix): the instances of every process; ports get N queues
  --instance-range A-B the instances this process runs (of --instances-total; default
                      0..--instances-1). EAL --proc-type=secondary makes it a secondary;
                      the processes need distinct lcore ids (e.g. --lcores 2@0,3@1)
  --busy-poll         never back off when idle (lowest latency, 100% CPU)
  --no-offload        do every checksum in software
  --rx-faults SPEC    fault injection on receive, e.g. drop=5%,reorder=25%,delay=40ms
  --tx-faults SPEC    fault injection on transmit (same syntax)
  --serve LIST        TCP test services, NAME[:PORT],... of echo (7), discard (9),
                      chargen (19), http (80), https (443); keel-pmd then runs until a signal
  --cert FILE         https: PEM certificate chain (required with --serve https); repeat
                      --cert/--key for more: the client's SNI picks the first whose names
                      (subjectAltName DNS, else CN; wildcards) match, else the first given
  --key FILE          https: PEM private key of the --cert given in the same place
  --sni-strict        https: refuse an SNI name no certificate matches (unrecognized_name)
  --client-ca FILE    https: require a client certificate signed by this PEM CA
  --cmd "COMMAND"     run a command (repeatable); then exit unless -i or --serve
  -i                  interactive prompt on stdin (keel> )
  --loopback          two stacks joined by net_ring in this process; no NIC needed
  --pings N           pings the loopback demo sends (default 200)
  --streams N --bytes N --echoes N --echo-size N --echo-rounds N --seconds N
                      the loopback demo's TCP workload (default 2 x 256 MiB streams,
                      8 echo connections x 64 round trips x 16 KiB, 120 s limit)
  --cc newreno|cubic  congestion control for new TCP connections (default cubic)
  -h, --help          this text
)";
}

Result<Options, std::string> parse_options(const std::vector<std::string>& args) {
  Options o;
  engine::PortSpec port;
  port.device = "0";
  bool have_port_opt = false;
  bool have_range = false;
  std::vector<std::string> certs, keys;  // --cert / --key in order: the i-th key is the i-th cert's
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string& out) -> bool {
      if (i + 1 >= args.size()) return false;
      out = args[++i];
      return true;
    };
    std::string v;
    if (a == "--port") {
      if (!value(v)) return bad(a, "needs a device name or index");
      port.device = v;
      have_port_opt = true;
    } else if (a == "--addr") {
      if (!value(v)) return bad(a, "needs A.B.C.D/N");
      auto c = net::Ipv4Cidr::parse(v);
      if (!c || c->addr.is_any() || c->addr.is_multicast() || c->addr.is_broadcast())
        return bad(a, "'" + v + "' is not a usable address/prefix");
      port.l3.addrs.push_back(*c);
    } else if (a == "--gw") {
      if (!value(v)) return bad(a, "needs A.B.C.D");
      auto g = net::Ipv4Addr::parse(v);
      if (!g) return bad(a, "'" + v + "' is not an IPv4 address");
      port.l3.gateway = *g;
    } else if (a == "--mtu") {
      if (!value(v) || !parse_uint(v, port.mtu, 9000) || port.mtu < 576)
        return bad(a, "needs a number 576..9000");
    } else if (a == "--instances") {
      if (!value(v) || !parse_uint(v, o.engine.instances, 64) || o.engine.instances == 0)
        return bad(a, "needs a number 1..64");
    } else if (a == "--instances-total") {
      if (!value(v) || !parse_uint(v, o.engine.total_instances, 64) || o.engine.total_instances == 0)
        return bad(a, "needs a number 1..64");
    } else if (a == "--instance-range") {
      size_t dash = 0;
      uint16_t lo = 0, hi = 0;
      if (!value(v) || (dash = v.find('-')) == std::string::npos || !parse_uint(v.substr(0, dash), lo, 63) ||
          !parse_uint(v.substr(dash + 1), hi, 63) || hi < lo)
        return bad(a, "needs A-B, instance ids 0..63");
      o.engine.first_instance = lo;
      o.engine.instances = uint16_t(hi - lo + 1);
      have_range = true;
    } else if (a == "--busy-poll") {
      o.engine.idle.busy_poll = true;
    } else if (a == "--no-offload") {
      port.use_offloads = false;
    } else if (a == "--rx-faults" || a == "--tx-faults") {
      if (!value(v)) return bad(a, "needs a fault spec");
      auto f = drivers::FaultConfig::parse(v);
      if (!f) return bad(a, f.error());
      (a == "--rx-faults" ? port.rx_faults : port.tx_faults) = *f;
    } else if (a == "--serve") {
      if (!value(v)) return bad(a, "needs a list like echo,discard,chargen,http:8080");
      auto l = parse_service_list(v);
      if (!l) return bad(a, l.error());
      for (const auto& sp : *l) {
        for (const auto& prev : o.serve)
          if (prev.port == sp.port)
            return bad(a, "port " + std::to_string(sp.port) + " given twice (" + to_string(prev.kind) +
                              ", " + to_string(sp.kind) + ")");
        o.serve.push_back(sp);
      }
    } else if (a == "--cert" || a == "--key" || a == "--client-ca") {
      if (!value(v) || v.empty()) return bad(a, "needs a PEM file");
      if (a == "--client-ca") o.tls.ca_file = v;
      else (a == "--cert" ? certs : keys).push_back(v);
    } else if (a == "--sni-strict") {
      o.tls.sni_strict = true;
    } else if (a == "--cmd") {
      if (!value(v)) return bad(a, "needs a command");
      o.commands.push_back(v);
    } else if (a == "-i" || a == "--interactive") {
      o.interactive = true;
    } else if (a == "--loopback") {
      o.loopback = true;
    } else if (a == "--pings") {
      if (!value(v) || !parse_uint(v, o.loopback_pings, 1'000'000)) return bad(a, "needs a count");
    } else if (a == "--streams") {
      if (!value(v) || !parse_uint(v, o.loopback_streams, 1000)) return bad(a, "needs a count 0..1000");
    } else if (a == "--bytes") {
      if (!value(v) || !parse_uint(v, o.loopback_bytes, 1ull << 40)) return bad(a, "needs a byte count");
    } else if (a == "--echoes") {
      if (!value(v) || !parse_uint(v, o.loopback_echoes, 10000)) return bad(a, "needs a count 0..10000");
    } else if (a == "--echo-size") {
      if (!value(v) || !parse_uint(v, o.loopback_echo_size, 1u << 24) || o.loopback_echo_size == 0)
        return bad(a, "needs a size 1..16777216");
    } else if (a == "--echo-rounds") {
      if (!value(v) || !parse_uint(v, o.loopback_echo_rounds, 1'000'000)) return bad(a, "needs a count");
    } else if (a == "--seconds") {
      if (!value(v) || !parse_uint(v, o.loopback_seconds, 86400) || o.loopback_seconds == 0)
        return bad(a, "needs seconds 1..86400");
    } else if (a == "--cc") {
      const tcp::cc::Algorithm* alg = value(v) ? tcp::cc::find(v) : nullptr;
      if (alg == nullptr) return bad(a, "needs newreno or cubic");
      o.engine.tcp.cc = alg;
    } else {
      return bad(a, "unknown option (see --help)");
    }
  }
  if (certs.size() != keys.size())
    return bad(certs.size() > keys.size() ? "--cert" : "--key",
               "each --cert needs its --key (" + std::to_string(certs.size()) + " --cert, " +
                   std::to_string(keys.size()) + " --key)");
  if (!certs.empty()) o.tls.cert_file = certs[0], o.tls.key_file = keys[0];  // the default
  for (size_t i = 1; i < certs.size(); ++i) o.tls.sni_certs.push_back({certs[i], keys[i]});
  bool https = false;
  for (const auto& sp : o.serve) https = https || sp.kind == ServiceKind::https;
  if (!https && o.tls.sni_strict) return bad("--sni-strict", "only with --serve https");
  if (https && o.tls.cert_file.empty()) return bad("--cert", "required by --serve https");
  if (https && o.tls.key_file.empty()) return bad("--key", "required by --serve https");
  if (!https && (!o.tls.cert_file.empty() || !o.tls.key_file.empty() || !o.tls.ca_file.empty()))
    return bad(!o.tls.cert_file.empty() ? "--cert" : !o.tls.key_file.empty() ? "--key" : "--client-ca",
               "only with --serve https");
  o.tls.alpn = {"http/1.1"};
  if (have_range && o.engine.total_instances == 0) return bad("--instance-range", "needs --instances-total");
  if (o.engine.total_instances != 0) {
    if (o.loopback) return bad("--instances-total", "not with --loopback");
    if (o.engine.first_instance + o.engine.instances > o.engine.total_instances)
      return bad(have_range ? "--instance-range" : "--instances",
                 "instances " + std::to_string(o.engine.first_instance) + "-" +
                     std::to_string(o.engine.first_instance + o.engine.instances - 1) + " are not within " +
                     std::to_string(o.engine.total_instances) + " (--instances-total)");
  }
  if (!o.loopback) {
    if (port.l3.addrs.empty()) return bad("--addr", "required (the port's address, e.g. 198.18.0.2/24)");
    if (!port.l3.gateway.is_any()) {
      bool on_link = false;
      for (auto& c : port.l3.addrs) on_link = on_link || c.contains(port.l3.gateway);
      if (!on_link) return bad("--gw", port.l3.gateway.to_string() + " is on none of the port's subnets");
    }
    o.engine.ports.push_back(port);
  } else if (have_port_opt || !port.l3.addrs.empty()) {
    return bad("--loopback", "makes its own ports; do not combine with --port/--addr");
  } else if (!o.serve.empty()) {
    return bad("--loopback", "runs its own demo; do not combine with --serve");
  } else {
    o.engine.ports.push_back(port);  // template for the loopback ports (faults, mtu)
  }
  return o;
}

}  // namespace keel::pmd
