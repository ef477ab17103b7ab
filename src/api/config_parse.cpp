// SPDX-License-Identifier: BSD-3-Clause
// The start-up configuration file, the environment's overrides, and validate().
//
// Every key is one Field in a per-section table: `set` parses a value from the
// file (or the environment) and `check` applies the same rule to a Config built
// in code, so the file, KEEL_* and validate() cannot drift apart. Nothing here
// throws on bad input: numbers go through std::from_chars, never stoi.
#include <keel/config.hpp>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <utility>

#include "drivers/eal.hpp"
#include "drivers/fault_injector.hpp"
#include "net/addresses.hpp"
#include "tcp/cc/cc.hpp"

namespace keel {

namespace {

Unexpected<std::string> error(std::string msg) { return Unexpected<std::string>{std::move(msg)}; }

std::string quoted(std::string_view v) { return "'" + std::string(v) + "'"; }

std::string_view trim(std::string_view s) {
  constexpr std::string_view space = " \t\r\f\v";
  size_t b = s.find_first_not_of(space);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(space) - b + 1);
}

// ===== Limits (documented in include/keel/config.hpp) =====

struct Range {
  uint64_t lo, hi;
};

namespace limits {
constexpr Range instances{1, 64};                       // keel-pmd --instances
constexpr Range pool_mbufs{1024, std::numeric_limits<uint32_t>::max()};
constexpr Range mtu{576, 9000};                         // keel-pmd --mtu; drivers/port.cpp ignores < 576
constexpr Range max_connections{1, 1u << 24};
constexpr Range buffer{1024, 1u << 30};                 // 2^30: tcp::cc::max_cwnd, the largest window
// COMPAT(linux): TCP_KEEPIDLE / TCP_KEEPINTVL allow 1..32767 s, TCP_KEEPCNT and
// TCP_SYNCNT 1..127.
constexpr Range keepalive_ms{1, 32'767'000};
constexpr Range count{1, 127};
constexpr Range min_rto_ms{1, 60'000};                  // at most tcp::TcpConfig::max_rto_ns
constexpr Range msl_ms{1, 600'000};
constexpr Range udp_sockets{1, 65535};
constexpr Range udp_datagrams{1, 65536};
constexpr Range udp_bytes{1024, 1u << 30};
constexpr Range shm_channels{1, 4096};                  // shm::max_channels
constexpr Range shm_ring_slots{64, 65536};
constexpr Range shm_budget{1024, 1u << 30};
}  // namespace limits

// ===== Value rules: "" when the value is fine, else why not =====

std::string not_in(std::string_view shown, Range r) {
  return quoted(shown) + " is not in " + std::to_string(r.lo) + ".." + std::to_string(r.hi);
}

// Decimal digits only (no sign, no spaces, no suffix); beyond uint64_t is out of range too.
std::string parse_uint(std::string_view v, Range r, uint64_t& out) {
  if (v.empty() || v.find_first_not_of("0123456789") != std::string_view::npos)
    return quoted(v) + " is not a number";
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc{} || out < r.lo || out > r.hi) return not_in(v, r);
  return {};
}

std::string parse_bool(std::string_view v, bool& out) {
  static constexpr std::pair<std::string_view, bool> words[] = {
      {"on", true}, {"off", false}, {"true", true}, {"false", false},
      {"yes", true}, {"no", false}, {"1", true}, {"0", false}};
  for (const auto& [word, b] : words) {
    if (v != word) continue;
    out = b;
    return {};
  }
  return quoted(v) + " is not a boolean (on/off, true/false, yes/no, 1/0)";
}

std::string check_device(std::string_view v) {
  if (v.empty()) return "empty";
  if (v.find_first_of(" \t") != std::string_view::npos) return quoted(v) + " is not one word";
  return {};
}

std::string check_mac(std::string_view v) {
  if (v.empty()) return {};  // the port's own
  auto m = net::MacAddr::parse(v);
  if (!m || m->is_multicast() || m->is_zero())
    return quoted(v) + " is not a unicast MAC address (like 02:00:00:00:00:02)";
  return {};
}

std::string check_faults(std::string_view v) {
  auto f = drivers::FaultConfig::parse(v);
  return f ? std::string{} : f.error();
}

std::string check_cc(std::string_view v) {
  return tcp::cc::find(v) != nullptr ? std::string{} : quoted(v) + " is not newreno or cubic";
}

net::Ipv4Cidr to_net(const Ipv4Prefix& p) { return {net::Ipv4Addr{p.addr.value}, p.length}; }

// keel-pmd --addr's rule: the port answers for this address, so it must be
// unicast. `shown` is the value as the user wrote it.
std::string check_address(const Ipv4Prefix& p, std::string_view shown) {
  net::Ipv4Addr a = to_net(p).addr;
  if (a.is_any() || a.is_multicast() || a.is_broadcast())
    return quoted(shown) + " is not a usable address/prefix";
  return {};
}

// keel-pmd --gw's rule: the default route's next hop must be on one of the port's subnets.
std::string check_gateway(const PortOptions& p) {
  if (p.gateway.is_any()) return {};
  for (const auto& a : p.addresses)
    if (to_net(a).contains(net::Ipv4Addr{p.gateway.value})) return {};
  return quoted(p.gateway.to_string()) + " is on none of the port's subnets";
}

std::string_view process_name(ProcessType t) {
  return t == ProcessType::primary ? "primary" : t == ProcessType::secondary ? "secondary" : "single";
}

bool has_eal_arg(const Config& c, std::string_view opt, std::string_view value = {}) {
  for (size_t i = 0; i < c.eal_args.size(); ++i) {
    std::string_view a = c.eal_args[i];
    if (value.empty() ? a == opt : (a == std::string(opt) + "=" + std::string(value) ||
                                    (a == opt && i + 1 < c.eal_args.size() && c.eal_args[i + 1] == value)))
      return true;
  }
  return false;
}

// The multi-process rules, which span several keys (checked by validate()).
std::string check_process(const Config& c) {
  std::string role(process_name(c.process));
  if (c.process == ProcessType::single) {
    if (c.total_instances != 0) return "total_instances: set only with process = primary or secondary";
    if (c.first_instance != 0) return "instance_range: set only with process = primary or secondary";
    return {};
  }
  if (c.total_instances == 0) return "total_instances: required with process = " + role;
  if (c.total_instances > limits::instances.hi) return "total_instances: " + not_in(std::to_string(c.total_instances), limits::instances);
  if (c.first_instance + c.instances > c.total_instances)
    return "instance_range: " + std::to_string(c.first_instance) + "-" +
           std::to_string(c.first_instance + c.instances - 1) + " is not within total_instances = " +
           std::to_string(c.total_instances) + " (instances 0.." + std::to_string(c.total_instances - 1) + ")";
  if (c.eal_args.empty()) return {};  // EAL initialised by the application
  for (const char* opt : {"--no-huge", "--in-memory"})
    if (has_eal_arg(c, opt))
      return "eal: process = " + role + " shares hugepage memory with the other processes: drop " + opt;
  bool sec = has_eal_arg(c, "--proc-type", "secondary");
  if (c.process == ProcessType::secondary && !sec)
    return "eal: process = secondary needs --proc-type=secondary (and the primary's --file-prefix)";
  if (c.process == ProcessType::primary && sec) return "eal: process = primary with --proc-type=secondary";
  return {};
}

// "A-B" or "A": instances A..B.
std::string parse_range(std::string_view v, Config& c) {
  size_t dash = v.find('-');
  uint64_t a = 0, b = 0;
  Range r{0, limits::instances.hi - 1};
  std::string why = parse_uint(v.substr(0, dash), r, a);
  if (why.empty()) why = dash == std::string_view::npos ? (b = a, std::string{}) : parse_uint(v.substr(dash + 1), r, b);
  if (!why.empty()) return quoted(v) + " is not a range A-B of instance ids 0..63";
  if (b < a) return quoted(v) + ": the range ends before it starts";
  c.first_instance = uint16_t(a);
  c.instances = uint16_t(b - a + 1);
  return {};
}

// ===== Fields =====

/// One key of a section, over the struct S that holds its value.
template <class S>
struct Field {
  std::string_view key;     ///< as written in the file
  std::string_view member;  ///< as named in S, for validate()'s messages
  /// Parses a non-empty value, checks it and stores it; returns "" or why not.
  std::function<std::string(S&, std::string_view)> set;
  /// The same rule for a value set in code; returns "" or "PATH: why not". May be empty.
  std::function<std::string(const S&, const std::string& path)> check;
  bool repeatable = false;
};

std::string at_path(const std::string& path, const std::string& why) {
  return why.empty() ? why : path + ": " + why;
}

template <class S, class T>
Field<S> uint_field(std::string_view key, T S::*m, Range r) {
  return {key, key,
          [=](S& s, std::string_view v) {
            uint64_t n = 0;
            std::string why = parse_uint(v, r, n);
            if (why.empty()) s.*m = T(n);
            return why;
          },
          [=](const S& s, const std::string& path) {
            uint64_t n = s.*m;
            return n < r.lo || n > r.hi ? at_path(path, not_in(std::to_string(n), r)) : std::string{};
          }};
}

template <class S>
Field<S> bool_field(std::string_view key, bool S::*m) {
  return {key, key, [=](S& s, std::string_view v) { return parse_bool(v, s.*m); }, nullptr};
}

/// A string kept as written, under `rule` in the file and in code alike.
template <class S>
Field<S> text_field(std::string_view key, std::string S::*m, std::string (*rule)(std::string_view)) {
  return {key, key,
          [=](S& s, std::string_view v) {
            std::string why = rule(v);
            if (why.empty()) s.*m = std::string(v);
            return why;
          },
          [=](const S& s, const std::string& path) { return at_path(path, rule(s.*m)); }};
}

const std::vector<Field<Config>>& top_fields() {
  static const std::vector<Field<Config>> fields = {
      {"eal", "eal_args",
       [](Config& c, std::string_view v) {
         c.eal_args = drivers::split_words(std::string(v));
         return std::string{};
       },
       nullptr},
      uint_field("instances", &Config::instances, limits::instances),
      uint_field("pool_mbufs", &Config::pool_mbufs, limits::pool_mbufs),
      bool_field("busy_poll", &Config::busy_poll),
      {"process", "process",
       [](Config& c, std::string_view v) {
         for (ProcessType t : {ProcessType::single, ProcessType::primary, ProcessType::secondary})
           if (v == process_name(t)) {
             c.process = t;
             return std::string{};
           }
         return quoted(v) + " is not single, primary or secondary";
       },
       [](const Config& c, const std::string&) { return check_process(c); }},
      {"total_instances", "total_instances",
       [](Config& c, std::string_view v) {
         uint64_t n = 0;
         std::string why = parse_uint(v, limits::instances, n);
         if (why.empty()) c.total_instances = uint16_t(n);
         return why;
       },
       nullptr},
      {"instance_range", "first_instance", [](Config& c, std::string_view v) { return parse_range(v, c); },
       nullptr},
  };
  return fields;
}

const std::vector<Field<PortOptions>>& port_fields() {
  static const std::vector<Field<PortOptions>> fields = {
      text_field("device", &PortOptions::device, check_device),
      {"address", "addresses",
       [](PortOptions& p, std::string_view v) {
         auto a = Ipv4Prefix::parse(v);
         if (!a) return quoted(v) + " is not an address/prefix";
         std::string why = check_address(*a, v);
         if (why.empty()) p.addresses.push_back(*a);
         return why;
       },
       [](const PortOptions& p, const std::string& path) {
         if (p.addresses.empty()) return path + ": empty";
         for (size_t i = 0; i < p.addresses.size(); ++i) {
           std::string why = check_address(p.addresses[i], p.addresses[i].to_string());
           if (!why.empty()) return at_path(path + "[" + std::to_string(i) + "]", why);
         }
         return std::string{};
       },
       /*repeatable=*/true},
      // The on-link rule needs every address of the port: the parser applies it
      // at the end of the section, validate() here.
      {"gateway", "gateway",
       [](PortOptions& p, std::string_view v) {
         auto g = Ipv4Address::parse(v);
         if (!g) return quoted(v) + " is not an address";
         p.gateway = *g;
         return std::string{};
       },
       [](const PortOptions& p, const std::string& path) { return at_path(path, check_gateway(p)); }},
      uint_field("mtu", &PortOptions::mtu, limits::mtu),
      bool_field("offloads", &PortOptions::offloads),
      text_field("mac", &PortOptions::mac, check_mac),
      text_field("rx_faults", &PortOptions::rx_faults, check_faults),
      text_field("tx_faults", &PortOptions::tx_faults, check_faults),
  };
  return fields;
}

const std::vector<Field<TcpOptions>>& tcp_fields() {
  using T = TcpOptions;
  static const std::vector<Field<T>> fields = {
      uint_field("max_connections", &T::max_connections, limits::max_connections),
      uint_field("send_buffer", &T::send_buffer, limits::buffer),
      uint_field("receive_buffer", &T::receive_buffer, limits::buffer),
      bool_field("nodelay", &T::nodelay),
      text_field("congestion_control", &T::congestion_control, check_cc),
      bool_field("timestamps", &T::timestamps),
      bool_field("sack", &T::sack),
      bool_field("window_scaling", &T::window_scaling),
      uint_field("keepalive_idle_ms", &T::keepalive_idle_ms, limits::keepalive_ms),
      uint_field("keepalive_interval_ms", &T::keepalive_interval_ms, limits::keepalive_ms),
      uint_field("keepalive_count", &T::keepalive_count, limits::count),
      uint_field("syn_retries", &T::syn_retries, limits::count),
      uint_field("min_rto_ms", &T::min_rto_ms, limits::min_rto_ms),
      uint_field("msl_ms", &T::msl_ms, limits::msl_ms),
  };
  return fields;
}

const std::vector<Field<UdpOptions>>& udp_fields() {
  using U = UdpOptions;
  static const std::vector<Field<U>> fields = {
      uint_field("max_sockets", &U::max_sockets, limits::udp_sockets),
      uint_field("receive_datagrams", &U::receive_datagrams, limits::udp_datagrams),
      uint_field("receive_bytes", &U::receive_bytes, limits::udp_bytes),
  };
  return fields;
}

const std::vector<Field<ShmOptions>>& shm_fields() {
  using H = ShmOptions;
  static const std::vector<Field<H>> fields = {
      bool_field("enabled", &H::enabled),
      uint_field("channels", &H::channels, limits::shm_channels),
      uint_field("ring_slots", &H::ring_slots, limits::shm_ring_slots),
      uint_field("budget", &H::budget, limits::shm_budget),
  };
  return fields;
}

template <class S>
const Field<S>* find_field(const std::vector<Field<S>>& fields, std::string_view key) {
  for (const auto& f : fields)
    if (f.key == key) return &f;
  return nullptr;
}

template <class S>
std::string check_fields(const std::vector<Field<S>>& fields, const S& s, const std::string& prefix) {
  for (const auto& f : fields) {
    if (!f.check) continue;
    std::string why = f.check(s, prefix + std::string(f.member));
    if (!why.empty()) return why;
  }
  return {};
}

// ===== The file =====

enum class Section { top, port, tcp, udp, shm };

class Parser {
 public:
  explicit Parser(std::string_view source) : source_(source) {}

  Result<Config, std::string> run(std::string_view text) {
    for (size_t pos = 0, no = 1; pos <= text.size(); ++no) {
      size_t nl = text.find('\n', pos);
      if (nl == std::string_view::npos) nl = text.size();
      std::string why = line(no, text.substr(pos, nl - pos));
      if (!why.empty()) return error(std::move(why));
      pos = nl + 1;
    }
    std::string why = end_section();
    if (!why.empty()) return error(std::move(why));
    return std::move(cfg_);
  }

 private:
  std::string at(size_t no, const std::string& what) const {
    return std::string(source_) + ":" + std::to_string(no) + ": " + what;
  }

  std::string where() const {
    switch (section_) {
      case Section::top: return "at top level";
      case Section::port: return "in [port]";
      case Section::tcp: return "in [tcp]";
      case Section::udp: return "in [udp]";
      case Section::shm: return "in [shm]";
    }
    return {};
  }

  std::string line(size_t no, std::string_view text) {
    text = trim(text.substr(0, text.find('#')));
    if (text.empty()) return {};
    if (text.front() == '[') return begin_section(no, text);
    size_t eq = text.find('=');
    std::string_view key = trim(text.substr(0, eq));
    if (eq == std::string_view::npos || key.empty()) return at(no, "expected 'key = value'");
    std::string_view value = trim(text.substr(eq + 1));
    switch (section_) {
      case Section::top: return assign(top_fields(), cfg_, no, key, value);
      case Section::port:
        if (key == "gateway") gateway_line_ = no;
        return assign(port_fields(), cfg_.ports.back(), no, key, value);
      case Section::tcp: return assign(tcp_fields(), cfg_.tcp, no, key, value);
      case Section::udp: return assign(udp_fields(), cfg_.udp, no, key, value);
      case Section::shm: return assign(shm_fields(), cfg_.shm, no, key, value);
    }
    return {};
  }

  std::string begin_section(size_t no, std::string_view header) {
    if (header.size() < 2 || header.back() != ']') return at(no, "expected '[section]'");
    std::string why = end_section();
    if (!why.empty()) return why;
    std::string_view name = header.substr(1, header.size() - 2);
    seen_.clear();
    section_line_ = no;
    gateway_line_ = 0;
    if (name == "port") {
      section_ = Section::port;
      cfg_.ports.emplace_back();
      return {};
    }
    if (name == "tcp") {
      if (tcp_line_ != 0)
        return at(no, "duplicate section [tcp] (first at line " + std::to_string(tcp_line_) + ")");
      section_ = Section::tcp;
      tcp_line_ = no;
      return {};
    }
    if (name == "udp") {
      if (udp_line_ != 0)
        return at(no, "duplicate section [udp] (first at line " + std::to_string(udp_line_) + ")");
      section_ = Section::udp;
      udp_line_ = no;
      return {};
    }
    if (name == "shm") {
      if (shm_line_ != 0)
        return at(no, "duplicate section [shm] (first at line " + std::to_string(shm_line_) + ")");
      section_ = Section::shm;
      shm_line_ = no;
      return {};
    }
    return at(no, "unknown section [" + std::string(name) + "]");
  }

  // A [port] must say which device and at least one address; reported at its header.
  std::string end_section() const {
    if (section_ != Section::port) return {};
    const PortOptions& p = cfg_.ports.back();
    if (p.device.empty()) return at(section_line_, "[port] has no device");
    if (p.addresses.empty()) return at(section_line_, "[port] has no address");
    std::string why = check_gateway(p);
    return why.empty() ? why : at(gateway_line_, "gateway: " + why);
  }

  template <class S>
  std::string assign(const std::vector<Field<S>>& fields, S& s, size_t no, std::string_view key,
                     std::string_view value) {
    const Field<S>* f = find_field(fields, key);
    if (f == nullptr) {
      std::string hint = section_ != Section::top && find_field(top_fields(), key) != nullptr
                             ? " (top-level keys go before the first section)"
                             : "";
      return at(no, "unknown key '" + std::string(key) + "' " + where() + hint);
    }
    if (!f->repeatable)
      for (const auto& [k, first] : seen_)
        if (k == key)
          return at(no, "duplicate key '" + std::string(key) + "' " + where() + " (first at line " +
                            std::to_string(first) + ")");
    // instance_range gives the count too: the two would contradict each other.
    for (const auto& [k, first] : seen_)
      if ((key == "instances" && k == "instance_range") || (key == "instance_range" && k == "instances"))
        return at(no, "instance_range and instances: give one (instance_range A-B runs B-A+1 instances; line " +
                          std::to_string(first) + ")");
    seen_.emplace_back(f->key, no);
    if (value.empty()) return at(no, std::string(key) + ": empty value");
    std::string why = f->set(s, value);
    return why.empty() ? why : at(no, std::string(key) + ": " + why);
  }

  std::string_view source_;
  Config cfg_;
  Section section_ = Section::top;
  size_t section_line_ = 0;  // header of the current section
  size_t gateway_line_ = 0;  // of the current [port]; 0: none
  size_t tcp_line_ = 0;      // header of [tcp]; 0: none yet
  size_t udp_line_ = 0;      // header of [udp]; 0: none yet
  size_t shm_line_ = 0;      // header of [shm]; 0: none yet
  std::vector<std::pair<std::string_view, size_t>> seen_;  // keys of this section, first line
};

}  // namespace

Result<Config, std::string> parse_config(std::string_view text, std::string_view source) {
  return Parser(source).run(text);
}

Result<Config, std::string> load_config(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) return error(path + ": " + std::strerror(errno));
  std::string text;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f.get())) > 0;) text.append(buf, n);
  if (std::ferror(f.get())) return error(path + ": " + std::strerror(errno));
  return parse_config(text, path);
}

// ===== The environment =====

Result<void, std::string> apply_env(Config& cfg) {
  Config out = cfg;  // cfg stays as it was if any variable is refused
  // Sets `key` of `s` from variable `name` if it is set; "" or "NAME: why not".
  auto apply = [](const char* name, const auto& fields, auto& s, std::string_view key) {
    const char* v = std::getenv(name);
    if (v == nullptr) return std::string{};
    std::string why = *v == '\0' ? "empty value" : find_field(fields, key)->set(s, v);
    return why.empty() ? why : name + (": " + why);
  };
  auto is_set = [](const char* name) { return std::getenv(name) != nullptr; };

  std::string why = apply("KEEL_EAL", top_fields(), out, "eal");
  if (why.empty()) why = apply("KEEL_INSTANCES", top_fields(), out, "instances");
  if (why.empty()) why = apply("KEEL_SHM", shm_fields(), out.shm, "enabled");
  if (!why.empty()) return error(std::move(why));

  if (out.ports.empty()) {
    if (is_set("KEEL_ADDR")) {
      out.ports.emplace_back();
      out.ports[0].device = "0";
    } else {
      for (const char* name : {"KEEL_PORT", "KEEL_GW"})
        if (is_set(name)) return error(std::string(name) + ": there is no port 0 (set KEEL_ADDR too)");
      cfg = std::move(out);
      return {};
    }
  }
  PortOptions& p = out.ports[0];
  why = apply("KEEL_PORT", port_fields(), p, "device");
  if (why.empty() && is_set("KEEL_ADDR")) {
    p.addresses.clear();  // replaced, not added to
    why = apply("KEEL_ADDR", port_fields(), p, "address");
  }
  if (why.empty()) why = apply("KEEL_GW", port_fields(), p, "gateway");
  if (why.empty() && (is_set("KEEL_ADDR") || is_set("KEEL_GW"))) {
    why = check_gateway(p);
    if (!why.empty()) why = is_set("KEEL_GW") ? "KEEL_GW: " + why : "KEEL_ADDR: port 0's gateway " + why;
  }
  if (!why.empty()) return error(std::move(why));
  cfg = std::move(out);
  return {};
}

// ===== Code-built configs =====

Result<void, std::string> validate(const Config& cfg) {
  std::string why = check_fields(top_fields(), cfg, "");
  if (why.empty() && cfg.ports.empty()) why = "ports: empty";
  for (size_t i = 0; why.empty() && i < cfg.ports.size(); ++i)
    why = check_fields(port_fields(), cfg.ports[i], "ports[" + std::to_string(i) + "].");
  if (why.empty()) why = check_fields(tcp_fields(), cfg.tcp, "tcp.");
  if (why.empty()) why = check_fields(udp_fields(), cfg.udp, "udp.");
  if (why.empty()) why = check_fields(shm_fields(), cfg.shm, "shm.");
  if (!why.empty()) return error(std::move(why));
  return {};
}

}  // namespace keel
