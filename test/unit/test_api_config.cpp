// SPDX-License-Identifier: BSD-3-Clause
// keel::Config: the file format, the KEEL_* overrides and validate().
#include <catch2/catch.hpp>

#include <keel/config.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <unistd.h>

using keel::Config;
using keel::Ipv4Address;
using keel::Ipv4Prefix;
using keel::PortOptions;

namespace {

// The example from include/keel/config.hpp's file comment, verbatim.
constexpr const char* header_example = R"(
    eal = -l 0-1 --no-huge -m 1024 --no-pci --vdev net_tap0,iface=ktap0
    instances = 2            # one per lcore, 1..64
    pool_mbufs = 16383       # mbufs in the engine's pool
    busy_poll = off          # on: never sleep when idle

    [port]                   # one section per port, in order
    device = net_tap0        # ethdev name, or a port index
    address = 198.18.0.2/24  # repeatable
    gateway = 198.18.0.1
    mtu = 1500
    offloads = on
    mac = 02:00:00:00:00:02  # optional: the port's own otherwise
    rx_faults = drop=1%      # optional fault injection (tests), keel-pmd's syntax
    tx_faults = reorder=5%

    [tcp]
    max_connections = 16384  # per instance
    send_buffer = 1048576    # bytes per connection
    receive_buffer = 1048576
    nodelay = off
    congestion_control = cubic   # or newreno
    timestamps = on
    sack = on
    window_scaling = on
    keepalive_idle_ms = 7200000
    keepalive_interval_ms = 75000
    keepalive_count = 9
    syn_retries = 6
    min_rto_ms = 200
    msl_ms = 30000

    [udp]
    max_sockets = 1024       # per instance
    receive_datagrams = 256  # queued per socket
    receive_bytes = 262144   # payload bytes queued per socket

    [shm]                    # the intra-node fast path (docs/ARCHITECTURE.md)
    enabled = on             # off: connections to this node's listeners use TCP
    channels = 1024          # channels the node's table holds (first process decides)
    ring_slots = 1024        # mbuf chains in flight per direction (first process decides)
    budget = 1048576         # bytes in flight per direction before send would-blocks
)";

// A port section that passes, for tests about something else.
const std::string minimal_port = "[port]\ndevice = net_tap0\naddress = 198.18.0.2/24\n";

Config parse_ok(const std::string& text) {
  auto r = keel::parse_config(text, "test.conf");
  INFO(text);
  if (!r) FAIL(r.error());
  return r.value();
}

std::string parse_error(const std::string& text) {
  auto r = keel::parse_config(text, "test.conf");
  INFO(text);
  REQUIRE_FALSE(r.has_value());
  return r.error();
}

std::string validate_error(const Config& cfg) {
  auto r = keel::validate(cfg);
  REQUIRE_FALSE(r.has_value());
  return r.error();
}

Config valid_config() {
  Config c;
  PortOptions p;
  p.device = "net_tap0";
  p.addresses.push_back(*Ipv4Prefix::parse("198.18.0.2/24"));
  p.gateway = Ipv4Address(198, 18, 0, 1);
  c.ports.push_back(p);
  return c;
}

// Sets (or, with nullopt, unsets) environment variables for one scope and
// puts back what was there before.
class EnvGuard {
 public:
  EnvGuard() {
    for (const char* name : names) {
      const char* v = std::getenv(name);
      saved_.emplace_back(name, v ? std::optional<std::string>(v) : std::nullopt);
      unsetenv(name);
    }
  }
  ~EnvGuard() {
    for (const auto& [name, v] : saved_) {
      if (v)
        setenv(name, v->c_str(), 1);
      else
        unsetenv(name);
    }
  }
  void set(const char* name, const char* value) { setenv(name, value, 1); }

 private:
  static constexpr const char* names[] = {"KEEL_EAL", "KEEL_INSTANCES", "KEEL_ADDR", "KEEL_GW",
                                          "KEEL_PORT", "KEEL_SHM"};
  std::vector<std::pair<const char*, std::optional<std::string>>> saved_;
};

}  // namespace

// ===== Public address types =====

TEST_CASE("Ipv4Address and Ipv4Prefix parse and print", "[config]") {
  REQUIRE(Ipv4Address::parse("198.18.0.1") == Ipv4Address(198, 18, 0, 1));
  REQUIRE(Ipv4Address::parse("198.18.0.1")->value == 0xc6120001u);
  REQUIRE(Ipv4Address(198, 18, 0, 1).to_string() == "198.18.0.1");
  for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.0.0.1", "+1.2.3.4", "1.2.3.4/24", " 1.2.3.4"}) {
    INFO(bad);
    REQUIRE_FALSE(Ipv4Address::parse(bad).has_value());
  }
  auto p = Ipv4Prefix::parse("198.18.0.2/24");
  REQUIRE(p.has_value());
  REQUIRE(p->addr == Ipv4Address(198, 18, 0, 2));  // host bits kept
  REQUIRE(p->length == 24);
  REQUIRE(p->to_string() == "198.18.0.2/24");
  REQUIRE(Ipv4Prefix::parse("10.0.0.1")->length == 32);
  REQUIRE_FALSE(Ipv4Prefix::parse("10.0.0.1/33").has_value());
  REQUIRE_FALSE(Ipv4Prefix::parse("10.0.0.1/").has_value());
  REQUIRE(keel::Endpoint{Ipv4Address(198, 18, 0, 1), 80}.to_string() == "198.18.0.1:80");
}

// ===== Every key into its field =====

// Every field of `got` equals the one of `want` (Config has no operator==).
void require_equal(const Config& got, const Config& want) {
  REQUIRE(got.eal_args == want.eal_args);
  REQUIRE(got.instances == want.instances);
  REQUIRE(got.pool_mbufs == want.pool_mbufs);
  REQUIRE(got.busy_poll == want.busy_poll);
  REQUIRE(got.ports.size() == want.ports.size());
  for (size_t i = 0; i < got.ports.size(); ++i) {
    INFO("port " << i);
    const PortOptions &g = got.ports[i], &w = want.ports[i];
    REQUIRE(g.device == w.device);
    REQUIRE(g.addresses == w.addresses);
    REQUIRE(g.gateway == w.gateway);
    REQUIRE(g.mtu == w.mtu);
    REQUIRE(g.offloads == w.offloads);
    REQUIRE(g.mac == w.mac);
    REQUIRE(g.rx_faults == w.rx_faults);
    REQUIRE(g.tx_faults == w.tx_faults);
  }
  const keel::TcpOptions &g = got.tcp, &w = want.tcp;
  REQUIRE(g.max_connections == w.max_connections);
  REQUIRE(g.send_buffer == w.send_buffer);
  REQUIRE(g.receive_buffer == w.receive_buffer);
  REQUIRE(g.nodelay == w.nodelay);
  REQUIRE(g.congestion_control == w.congestion_control);
  REQUIRE(g.timestamps == w.timestamps);
  REQUIRE(g.sack == w.sack);
  REQUIRE(g.window_scaling == w.window_scaling);
  REQUIRE(g.keepalive_idle_ms == w.keepalive_idle_ms);
  REQUIRE(g.keepalive_interval_ms == w.keepalive_interval_ms);
  REQUIRE(g.keepalive_count == w.keepalive_count);
  REQUIRE(g.syn_retries == w.syn_retries);
  REQUIRE(g.min_rto_ms == w.min_rto_ms);
  REQUIRE(g.msl_ms == w.msl_ms);
}

TEST_CASE("the header comment's example parses into every field", "[config]") {
  // The example spells out the defaults, apart from these.
  Config want;
  want.eal_args = {"-l", "0-1", "--no-huge", "-m", "1024", "--no-pci", "--vdev", "net_tap0,iface=ktap0"};
  want.instances = 2;
  PortOptions& p = want.ports.emplace_back();
  p.device = "net_tap0";
  p.addresses = {Ipv4Prefix{Ipv4Address(198, 18, 0, 2), 24}};
  p.gateway = Ipv4Address(198, 18, 0, 1);
  p.mac = "02:00:00:00:00:02";
  p.rx_faults = "drop=1%";
  p.tx_faults = "reorder=5%";
  Config c = parse_ok(header_example);
  require_equal(c, want);
  REQUIRE(keel::validate(c).has_value());
}

TEST_CASE("every key sets its field to a value other than the default", "[config]") {
  Config c = parse_ok(R"(eal = --no-huge
instances = 64
pool_mbufs = 4095
busy_poll = on
[port]
device = 1
address = 10.1.2.3/8
gateway = 10.0.0.1
mtu = 9000
offloads = off
mac = 02:AA:bb:00:00:09
rx_faults = dup=2%,seed=3
tx_faults = delay=1ms
[tcp]
max_connections = 7
send_buffer = 4096
receive_buffer = 8192
nodelay = on
congestion_control = newreno
timestamps = off
sack = off
window_scaling = off
keepalive_idle_ms = 1000
keepalive_interval_ms = 500
keepalive_count = 3
syn_retries = 2
min_rto_ms = 5
msl_ms = 100
)");
  Config want;
  want.eal_args = {"--no-huge"};
  want.instances = 64;
  want.pool_mbufs = 4095;
  want.busy_poll = true;
  want.ports.push_back({.device = "1",
                        .addresses = {Ipv4Prefix{Ipv4Address(10, 1, 2, 3), 8}},
                        .gateway = Ipv4Address(10, 0, 0, 1),
                        .mtu = 9000,
                        .offloads = false,
                        .mac = "02:AA:bb:00:00:09",
                        .rx_faults = "dup=2%,seed=3",
                        .tx_faults = "delay=1ms"});
  want.tcp = {.max_connections = 7,
              .send_buffer = 4096,
              .receive_buffer = 8192,
              .nodelay = true,
              .congestion_control = "newreno",
              .timestamps = false,
              .sack = false,
              .window_scaling = false,
              .keepalive_idle_ms = 1000,
              .keepalive_interval_ms = 500,
              .keepalive_count = 3,
              .syn_retries = 2,
              .min_rto_ms = 5,
              .msl_ms = 100};
  require_equal(c, want);
  REQUIRE(keel::validate(c).has_value());
}

TEST_CASE("an empty file or one with only comments gives the defaults", "[config]") {
  for (const char* text : {"", "\n\n", "# nothing\n   # indented comment\n\t\n"}) {
    Config c = parse_ok(text);
    Config d;
    REQUIRE(c.eal_args.empty());
    REQUIRE(c.instances == d.instances);
    REQUIRE(c.pool_mbufs == d.pool_mbufs);
    REQUIRE(c.ports.empty());
    REQUIRE(c.tcp.congestion_control == "cubic");
  }
}

TEST_CASE("every boolean spelling", "[config]") {
  for (const char* t : {"on", "true", "yes", "1"}) {
    INFO(t);
    REQUIRE(parse_ok(std::string("busy_poll = ") + t).busy_poll);
  }
  for (const char* f : {"off", "false", "no", "0"}) {
    INFO(f);
    REQUIRE_FALSE(parse_ok(std::string("busy_poll = on\n[tcp]\nsack = ") + f).tcp.sack);
  }
  REQUIRE(parse_error("busy_poll = On") ==
          "test.conf:1: busy_poll: 'On' is not a boolean (on/off, true/false, yes/no, 1/0)");
  REQUIRE(parse_error("[tcp]\nnodelay = 2") ==
          "test.conf:2: nodelay: '2' is not a boolean (on/off, true/false, yes/no, 1/0)");
}

TEST_CASE("address repeats; several [port] sections keep their order", "[config]") {
  Config c = parse_ok(R"([port]
device = net_tap0
address = 198.18.0.2/24
address = 198.18.5.2/16
address = 198.19.0.9
[port]
device = net_tap1
address = 198.19.1.2/24
mtu = 576
[port]
device = 2
address = 198.19.2.2/24
)");
  REQUIRE(c.ports.size() == 3);
  REQUIRE(c.ports[0].addresses ==
          std::vector<Ipv4Prefix>{*Ipv4Prefix::parse("198.18.0.2/24"), *Ipv4Prefix::parse("198.18.5.2/16"),
                                  *Ipv4Prefix::parse("198.19.0.9/32")});
  REQUIRE(c.ports[0].mtu == 1500);
  REQUIRE(c.ports[1].device == "net_tap1");
  REQUIRE(c.ports[1].mtu == 576);
  REQUIRE(c.ports[2].device == "2");
  REQUIRE(c.ports[2].addresses.size() == 1);
}

TEST_CASE("white space, comments and line endings", "[config]") {
  Config c = parse_ok(
      "  instances=3\r\n"
      "\tpool_mbufs\t=\t2048   # trailing comment\n"
      "#instances = 9\n"
      "\n"
      "   [port]   # the first port\n"
      "device   =net_tap0\n"
      "address=   198.18.0.2/24#no space before the comment\r\n"
      "\n");
  REQUIRE(c.instances == 3);
  REQUIRE(c.pool_mbufs == 2048);
  REQUIRE(c.ports.at(0).device == "net_tap0");
  REQUIRE(c.ports.at(0).addresses.at(0) == *Ipv4Prefix::parse("198.18.0.2/24"));
  // No newline at the end of the last line.
  REQUIRE(parse_ok("instances = 4").instances == 4);
}

// ===== Refusals name source, line and key =====

TEST_CASE("unknown keys and sections", "[config]") {
  REQUIRE(parse_error("[tcp]\nfoo = 1") == "test.conf:2: unknown key 'foo' in [tcp]");
  REQUIRE(parse_error(minimal_port + "speed = 10") == "test.conf:4: unknown key 'speed' in [port]");
  REQUIRE(parse_error("\nfoo = 1") == "test.conf:2: unknown key 'foo' at top level");
  REQUIRE(parse_error("[tcp]\ninstances = 2") ==
          "test.conf:2: unknown key 'instances' in [tcp] (top-level keys go before the first section)");
  REQUIRE(parse_error("# c\n[bar]\n") == "test.conf:2: unknown section [bar]");
  REQUIRE(parse_error("[Port]") == "test.conf:1: unknown section [Port]");
  REQUIRE(parse_error("[]") == "test.conf:1: unknown section []");
  REQUIRE(parse_error("[port") == "test.conf:1: expected '[section]'");
  REQUIRE(parse_error("[tcp]\n[tcp]") == "test.conf:2: duplicate section [tcp] (first at line 1)");
}

TEST_CASE("lines that are not key = value", "[config]") {
  REQUIRE(parse_error("instances 2") == "test.conf:1: expected 'key = value'");
  REQUIRE(parse_error("\n\n = 2") == "test.conf:3: expected 'key = value'");
  REQUIRE(parse_error("[tcp]\nsack") == "test.conf:2: expected 'key = value'");
}

TEST_CASE("empty values are refused", "[config]") {
  REQUIRE(parse_error("instances =") == "test.conf:1: instances: empty value");
  REQUIRE(parse_error("eal =   # nothing") == "test.conf:1: eal: empty value");
  REQUIRE(parse_error("[port]\ndevice = \naddress = 198.18.0.2") == "test.conf:2: device: empty value");
}

TEST_CASE("a key given twice in one section is refused, address excepted", "[config]") {
  REQUIRE(parse_error("instances = 1\ninstances = 2") ==
          "test.conf:2: duplicate key 'instances' at top level (first at line 1)");
  REQUIRE(parse_error(minimal_port + "mtu = 1500\nmtu = 1400") ==
          "test.conf:5: duplicate key 'mtu' in [port] (first at line 4)");
  REQUIRE(parse_error(minimal_port + "device = net_tap1") ==
          "test.conf:4: duplicate key 'device' in [port] (first at line 2)");
  REQUIRE(parse_error("[tcp]\nsack = on\n\nsack = on") ==
          "test.conf:4: duplicate key 'sack' in [tcp] (first at line 2)");
  // The same key in two [port] sections is two ports, not a duplicate.
  REQUIRE(parse_ok(minimal_port + "mtu = 1400\n" + minimal_port + "mtu = 1400").ports.size() == 2);
}

TEST_CASE("numbers: range, trailing garbage, sign, overflow", "[config]") {
  // The brief's example, with keel-pmd's --mtu range.
  REQUIRE(parse_error(minimal_port + "mtu = 70000") == "test.conf:4: mtu: '70000' is not in 576..9000");
  for (std::string v : {"12x", "1 2", "-1", "+1", "0x10", "1.5", "1e3", "1_000"})
    REQUIRE(parse_error("instances = " + v) == "test.conf:1: instances: '" + v + "' is not a number");
  struct OutOfRange {
    std::string section, key, value, range;
  };
  for (const OutOfRange& c : std::initializer_list<OutOfRange>{
           {minimal_port, "mtu", "575", "576..9000"},
           {"", "instances", "0", "1..64"},
           {"", "instances", "65", "1..64"},
           {"", "pool_mbufs", "1023", "1024..4294967295"},
           {"", "pool_mbufs", "4294967296", "1024..4294967295"},
           {"", "pool_mbufs", "99999999999999999999999", "1024..4294967295"},  // beyond uint64_t
           {"[tcp]\n", "max_connections", "0", "1..16777216"},
           {"[tcp]\n", "send_buffer", "1073741825", "1024..1073741824"},
           {"[tcp]\n", "receive_buffer", "10", "1024..1073741824"},
           {"[tcp]\n", "keepalive_idle_ms", "18446744073709551616", "1..32767000"},
           {"[tcp]\n", "keepalive_interval_ms", "0", "1..32767000"},
           {"[tcp]\n", "keepalive_count", "256", "1..127"},
           {"[tcp]\n", "syn_retries", "0", "1..127"},
           {"[tcp]\n", "min_rto_ms", "60001", "1..60000"},
           {"[tcp]\n", "msl_ms", "0", "1..600000"},
       }) {
    std::string text = c.section + c.key + " = " + c.value;
    std::string line = std::to_string(std::count(text.begin(), text.end(), '\n') + 1);
    REQUIRE(parse_error(text) ==
            "test.conf:" + line + ": " + c.key + ": '" + c.value + "' is not in " + c.range);
  }
}

TEST_CASE("port values: addresses, gateway, mac, faults, device", "[config]") {
  auto address_error = [](const std::string& v) { return parse_error("[port]\ndevice = x\naddress = " + v); };
  for (std::string v : {"1.2.3", "1.2.3.4/33", "1.2.3.4/", "198.18.0.2 /24", "a.b.c.d"})
    REQUIRE(address_error(v) == "test.conf:3: address: '" + v + "' is not an address/prefix");
  for (std::string v : {"0.0.0.0/0", "0.0.0.0", "224.0.0.1/4", "239.1.1.1/24", "255.255.255.255"})
    REQUIRE(address_error(v) == "test.conf:3: address: '" + v + "' is not a usable address/prefix");
  REQUIRE(parse_error(minimal_port + "gateway = 198.18.0.256") ==
          "test.conf:4: gateway: '198.18.0.256' is not an address");
  // The on-link rule waits for the end of the section: an address may follow.
  REQUIRE(parse_ok("[port]\ndevice = x\ngateway = 10.0.0.1\naddress = 10.0.0.2/24").ports[0].gateway ==
          Ipv4Address(10, 0, 0, 1));
  REQUIRE(parse_error("[port]\ndevice = x\ngateway = 10.0.1.1\naddress = 10.0.0.2/24\n[tcp]") ==
          "test.conf:3: gateway: '10.0.1.1' is on none of the port's subnets");
  for (std::string v : {"02:00:00:00:00", "02-00-00-00-00-02", "01:00:5e:00:00:01", "00:00:00:00:00:00"})
    REQUIRE(parse_error(minimal_port + "mac = " + v) ==
            "test.conf:4: mac: '" + v + "' is not a unicast MAC address (like 02:00:00:00:00:02)");
  std::string e = parse_error(minimal_port + "rx_faults = drop=200%");
  REQUIRE(e.rfind("test.conf:4: rx_faults: fault spec: ", 0) == 0);
  REQUIRE(e.find("'200%'") != std::string::npos);
  e = parse_error(minimal_port + "tx_faults = lose=1%");
  REQUIRE(e.rfind("test.conf:4: tx_faults: fault spec: unknown key 'lose'", 0) == 0);
  REQUIRE(parse_error("[port]\ndevice = net tap\naddress = 198.18.0.2") ==
          "test.conf:2: device: 'net tap' is not one word");
}

TEST_CASE("a [port] without device or address is refused at its header", "[config]") {
  REQUIRE(parse_error("\n[port]\naddress = 198.18.0.2/24\n") == "test.conf:2: [port] has no device");
  REQUIRE(parse_error("[port]\ndevice = net_tap0\n\n") == "test.conf:1: [port] has no address");
  // At the end of the section, not only at the end of the file.
  REQUIRE(parse_error("[port]\ndevice = net_tap0\n[tcp]\nsack = on\n") == "test.conf:1: [port] has no address");
  REQUIRE(parse_error(minimal_port + "[port]\n[port]\ndevice = x\naddress = 198.18.0.3") ==
          "test.conf:4: [port] has no device");
}

TEST_CASE("tcp values", "[config]") {
  REQUIRE(parse_error("[tcp]\ncongestion_control = bbr") ==
          "test.conf:2: congestion_control: 'bbr' is not newreno or cubic");
  REQUIRE(parse_error("[tcp]\ncongestion_control = CUBIC") ==
          "test.conf:2: congestion_control: 'CUBIC' is not newreno or cubic");
}

TEST_CASE("the source name is the one given", "[config]") {
  auto r = keel::parse_config("instances = x");
  REQUIRE(r.error() == "config:1: instances: 'x' is not a number");
  r = keel::parse_config("instances = x", "/etc/keel.conf");
  REQUIRE(r.error() == "/etc/keel.conf:1: instances: 'x' is not a number");
}

// ===== load_config =====

TEST_CASE("load_config reads a file and names it", "[config]") {
  auto missing = keel::load_config("/nonexistent/keel-test.conf");
  REQUIRE_FALSE(missing.has_value());
  REQUIRE(missing.error() == "/nonexistent/keel-test.conf: No such file or directory");

  auto dir = keel::load_config("/");
  REQUIRE_FALSE(dir.has_value());
  REQUIRE(dir.error() == "/: Is a directory");

  char path[] = "/tmp/keel-config-test-XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  std::string text = std::string("instances = 2\n") + minimal_port + "mtu = 99999\n";
  REQUIRE(write(fd, text.data(), text.size()) == ssize_t(text.size()));
  close(fd);
  auto bad = keel::load_config(path);
  REQUIRE_FALSE(bad.has_value());
  REQUIRE(bad.error() == std::string(path) + ":5: mtu: '99999' is not in 576..9000");

  FILE* f = std::fopen(path, "w");
  REQUIRE(f != nullptr);
  std::fputs(header_example, f);
  std::fclose(f);
  auto good = keel::load_config(path);
  std::remove(path);
  REQUIRE(good.has_value());
  REQUIRE(good->instances == 2);
  REQUIRE(good->ports.at(0).device == "net_tap0");
}

// ===== apply_env =====

TEST_CASE("apply_env: no KEEL_* variables changes nothing", "[config]") {
  EnvGuard env;
  Config c = valid_config();
  REQUIRE(keel::apply_env(c).has_value());
  REQUIRE(c.ports.size() == 1);
  REQUIRE(c.ports[0].device == "net_tap0");
  Config empty;
  REQUIRE(keel::apply_env(empty).has_value());
  REQUIRE(empty.ports.empty());
}

TEST_CASE("apply_env overrides EAL, instances and port 0", "[config]") {
  EnvGuard env;
  env.set("KEEL_EAL", "  -l 0 --no-huge  ");
  env.set("KEEL_INSTANCES", "4");
  env.set("KEEL_PORT", "net_tap9");
  env.set("KEEL_ADDR", "10.9.0.2/16");
  env.set("KEEL_GW", "10.9.0.1");
  Config c = valid_config();
  c.ports[0].addresses.push_back(*Ipv4Prefix::parse("198.18.1.2/24"));
  c.ports.push_back(valid_config().ports[0]);
  REQUIRE(keel::apply_env(c).has_value());
  REQUIRE(c.eal_args == std::vector<std::string>{"-l", "0", "--no-huge"});
  REQUIRE(c.instances == 4);
  REQUIRE(c.ports.size() == 2);
  REQUIRE(c.ports[0].device == "net_tap9");
  REQUIRE(c.ports[0].addresses == std::vector<Ipv4Prefix>{*Ipv4Prefix::parse("10.9.0.2/16")});  // replaced
  REQUIRE(c.ports[0].gateway == Ipv4Address(10, 9, 0, 1));
  REQUIRE(c.ports[1].device == "net_tap0");  // only port 0
  REQUIRE(keel::validate(c).has_value());
}

TEST_CASE("apply_env: KEEL_ADDR creates port 0 when there is none", "[config]") {
  EnvGuard env;
  env.set("KEEL_ADDR", "198.18.0.2/24");
  Config c;
  REQUIRE(keel::apply_env(c).has_value());
  REQUIRE(c.ports.size() == 1);
  REQUIRE(c.ports[0].device == "0");
  REQUIRE(c.ports[0].addresses.at(0) == *Ipv4Prefix::parse("198.18.0.2/24"));
  REQUIRE(keel::validate(c).has_value());

  env.set("KEEL_PORT", "net_tap0");
  Config d;
  REQUIRE(keel::apply_env(d).has_value());
  REQUIRE(d.ports.at(0).device == "net_tap0");
}

TEST_CASE("apply_env refuses bad values, naming the variable, and leaves cfg alone", "[config]") {
  EnvGuard env;
  Config c = valid_config();
  auto refused = [&](const char* name, const char* value) {
    EnvGuard inner;
    inner.set(name, value);
    auto r = keel::apply_env(c);
    REQUIRE_FALSE(r.has_value());
    return r.error();
  };
  REQUIRE(refused("KEEL_ADDR", "1.2.3") == "KEEL_ADDR: '1.2.3' is not an address/prefix");
  REQUIRE(refused("KEEL_ADDR", "255.255.255.255") ==
          "KEEL_ADDR: '255.255.255.255' is not a usable address/prefix");
  REQUIRE(refused("KEEL_ADDR", "") == "KEEL_ADDR: empty value");
  REQUIRE(refused("KEEL_INSTANCES", "65") == "KEEL_INSTANCES: '65' is not in 1..64");
  REQUIRE(refused("KEEL_INSTANCES", "2x") == "KEEL_INSTANCES: '2x' is not a number");
  REQUIRE(refused("KEEL_GW", "10.0.0") == "KEEL_GW: '10.0.0' is not an address");
  REQUIRE(refused("KEEL_GW", "10.0.0.1") == "KEEL_GW: '10.0.0.1' is on none of the port's subnets");
  REQUIRE(refused("KEEL_ADDR", "10.0.0.2/24") ==
          "KEEL_ADDR: port 0's gateway '198.18.0.1' is on none of the port's subnets");
  REQUIRE(refused("KEEL_PORT", "a b") == "KEEL_PORT: 'a b' is not one word");
  REQUIRE(refused("KEEL_EAL", "") == "KEEL_EAL: empty value");
  // Nothing was applied by the refused calls.
  REQUIRE(c.ports[0].addresses == valid_config().ports[0].addresses);
  REQUIRE(c.ports[0].gateway == valid_config().ports[0].gateway);
  REQUIRE(c.instances == 1);

  c = Config{};
  REQUIRE(refused("KEEL_PORT", "net_tap0") == "KEEL_PORT: there is no port 0 (set KEEL_ADDR too)");
  REQUIRE(refused("KEEL_GW", "198.18.0.1") == "KEEL_GW: there is no port 0 (set KEEL_ADDR too)");
  REQUIRE(c.ports.empty());
}

// ===== validate =====

TEST_CASE("validate accepts a sound code-built config", "[config]") {
  REQUIRE(keel::validate(valid_config()).has_value());
  Config c = valid_config();
  c.ports[0].gateway = Ipv4Address::any();  // no default route
  c.ports[0].mac = "02:00:00:00:00:07";
  c.ports[0].rx_faults = "drop=1%";
  c.tcp.congestion_control = "newreno";
  REQUIRE(keel::validate(c).has_value());
}

TEST_CASE("validate names the field it refuses", "[config]") {
  REQUIRE(validate_error(Config{}) == "ports: empty");
  Config c = valid_config();
  c.ports[0].addresses.clear();
  REQUIRE(validate_error(c) == "ports[0].addresses: empty");

  c = valid_config();
  c.ports.push_back(c.ports[0]);
  c.ports[1].device.clear();
  REQUIRE(validate_error(c) == "ports[1].device: empty");

  c = valid_config();
  c.ports[0].addresses.push_back(*Ipv4Prefix::parse("224.0.0.1/4"));
  REQUIRE(validate_error(c) == "ports[0].addresses[1]: '224.0.0.1/4' is not a usable address/prefix");

  c = valid_config();
  c.ports[0].gateway = Ipv4Address(10, 0, 0, 1);
  REQUIRE(validate_error(c) == "ports[0].gateway: '10.0.0.1' is on none of the port's subnets");

  c = valid_config();
  c.ports[0].mtu = 9001;
  REQUIRE(validate_error(c) == "ports[0].mtu: '9001' is not in 576..9000");

  c = valid_config();
  c.ports[0].mac = "zz";
  REQUIRE(validate_error(c) == "ports[0].mac: 'zz' is not a unicast MAC address (like 02:00:00:00:00:02)");

  c = valid_config();
  c.ports[0].tx_faults = "drop";
  REQUIRE(validate_error(c).rfind("ports[0].tx_faults: fault spec: ", 0) == 0);

  c = valid_config();
  c.instances = 0;
  REQUIRE(validate_error(c) == "instances: '0' is not in 1..64");

  c = valid_config();
  c.pool_mbufs = 100;
  REQUIRE(validate_error(c) == "pool_mbufs: '100' is not in 1024..4294967295");

  c = valid_config();
  c.tcp.congestion_control = "bbr";
  REQUIRE(validate_error(c) == "tcp.congestion_control: 'bbr' is not newreno or cubic");

  c = valid_config();
  c.tcp.keepalive_count = 0;
  REQUIRE(validate_error(c) == "tcp.keepalive_count: '0' is not in 1..127");

  c = valid_config();
  c.tcp.msl_ms = 0;
  REQUIRE(validate_error(c) == "tcp.msl_ms: '0' is not in 1..600000");
}

TEST_CASE("what the parser accepts, validate accepts", "[config]") {
  // Every default is within its range: a config with one sound port passes.
  Config c = parse_ok(minimal_port);
  REQUIRE(keel::validate(c).has_value());
}

TEST_CASE("config: [shm] keys, ranges, KEEL_SHM", "[config]") {
  Config c = parse_ok(minimal_port + "[shm]\nenabled = off\nchannels = 16\nring_slots = 128\nbudget = 65536\n");
  CHECK(!c.shm.enabled);
  CHECK(c.shm.channels == 16);
  CHECK(c.shm.ring_slots == 128);
  CHECK(c.shm.budget == 65536);
  CHECK(parse_ok(minimal_port).shm.enabled);
  CHECK(parse_error(minimal_port + "[shm]\nchannels = 5000\n") == "test.conf:5: channels: '5000' is not in 1..4096");
  CHECK(parse_error(minimal_port + "[shm]\nring_slots = 8\n") == "test.conf:5: ring_slots: '8' is not in 64..65536");
  CHECK(parse_error(minimal_port + "[shm]\nbudget = 10\n").find("budget") != std::string::npos);
  CHECK(parse_error(minimal_port + "[shm]\nenabled = maybe\n").find("enabled") != std::string::npos);
  CHECK(parse_error(minimal_port + "[shm]\n[shm]\n") == "test.conf:5: duplicate section [shm] (first at line 4)");
  Config code = parse_ok(minimal_port);
  code.shm.budget = 1;
  auto v = keel::validate(code);
  REQUIRE(!v);
  CHECK(v.error().find("shm.budget") != std::string::npos);
  EnvGuard env;
  env.set("KEEL_SHM", "off");
  Config e = parse_ok(minimal_port);
  CHECK(keel::apply_env(e));
  CHECK(!e.shm.enabled);
  env.set("KEEL_SHM", "sometimes");
  auto bad = keel::apply_env(e);
  REQUIRE(!bad);
  CHECK(bad.error().rfind("KEEL_SHM: ", 0) == 0);
}

TEST_CASE("config: [udp] keys, ranges, and one section at most", "[config]") {
  Config c = parse_ok(minimal_port + "[udp]\nmax_sockets = 10\nreceive_datagrams = 4\nreceive_bytes = 4096\n");
  CHECK(c.udp.max_sockets == 10);
  CHECK(c.udp.receive_datagrams == 4);
  CHECK(c.udp.receive_bytes == 4096);
  CHECK(parse_error(minimal_port + "[udp]\nmax_sockets = 0\n") == "test.conf:5: max_sockets: '0' is not in 1..65535");
  CHECK(parse_error(minimal_port + "[udp]\nreceive_bytes = 10\n").find("receive_bytes") != std::string::npos);
  CHECK(parse_error(minimal_port + "[udp]\nnodelay = on\n") == "test.conf:5: unknown key 'nodelay' in [udp]");
  CHECK(parse_error(minimal_port + "[udp]\n[udp]\n") == "test.conf:5: duplicate section [udp] (first at line 4)");
  Config code = c;
  code.udp.max_sockets = 0;
  auto v = keel::validate(code);
  REQUIRE_FALSE(v.has_value());
  CHECK(v.error().find("udp.max_sockets") != std::string::npos);
}

TEST_CASE("config: multi-process keys and their rules", "[config]") {
  const std::string port = "[port]\ndevice = net_tap0\naddress = 198.18.0.2/24\n";
  Config c = parse_ok("eal = --lcores 2@0,3@1 --proc-type=secondary --file-prefix x\nprocess = secondary\n"
                      "total_instances = 4\ninstance_range = 1-2\n" + port);
  REQUIRE(c.process == keel::ProcessType::secondary);
  REQUIRE(c.total_instances == 4);
  REQUIRE(c.first_instance == 1);
  REQUIRE(c.instances == 2);
  REQUIRE(keel::validate(c).has_value());
  c = parse_ok("process = primary\ntotal_instances = 2\ninstance_range = 0\n" + port);
  REQUIRE(c.first_instance == 0);
  REQUIRE(c.instances == 1);
  REQUIRE(keel::validate(c).has_value());
  // --proc-type given as two words counts too.
  c.process = keel::ProcessType::secondary;
  c.eal_args = {"--proc-type", "secondary"};
  REQUIRE(keel::validate(c).has_value());

  REQUIRE(parse_error("process = tertiary\n") == "test.conf:1: process: 'tertiary' is not single, primary or secondary");
  REQUIRE(parse_error("instance_range = 2-1\n") == "test.conf:1: instance_range: '2-1': the range ends before it starts");
  REQUIRE(parse_error("instance_range = 1-x\n") == "test.conf:1: instance_range: '1-x' is not a range A-B of instance ids 0..63");
  REQUIRE(parse_error("instance_range = 64\n") == "test.conf:1: instance_range: '64' is not a range A-B of instance ids 0..63");
  REQUIRE(parse_error("total_instances = 65\n") == "test.conf:1: total_instances: '65' is not in 1..64");
  REQUIRE(parse_error("instances = 2\ninstance_range = 0-1\n") ==
          "test.conf:2: instance_range and instances: give one (instance_range A-B runs B-A+1 instances; line 1)");

  auto refused = [&](const std::string& text) { return validate_error(parse_ok(text + port)); };
  REQUIRE(refused("total_instances = 2\n") == "total_instances: set only with process = primary or secondary");
  REQUIRE(refused("instance_range = 1-1\n") == "instance_range: set only with process = primary or secondary");
  REQUIRE(refused("process = primary\n") == "total_instances: required with process = primary");
  REQUIRE(refused("process = primary\ntotal_instances = 2\ninstance_range = 1-2\n") ==
          "instance_range: 1-2 is not within total_instances = 2 (instances 0..1)");
  REQUIRE(refused("eal = -l 0 --no-huge\nprocess = primary\ntotal_instances = 2\n") ==
          "eal: process = primary shares hugepage memory with the other processes: drop --no-huge");
  REQUIRE(refused("eal = --in-memory --proc-type=secondary\nprocess = secondary\ntotal_instances = 2\n") ==
          "eal: process = secondary shares hugepage memory with the other processes: drop --in-memory");
  REQUIRE(refused("eal = -l 2\nprocess = secondary\ntotal_instances = 2\ninstance_range = 1\n") ==
          "eal: process = secondary needs --proc-type=secondary (and the primary's --file-prefix)");
  REQUIRE(refused("eal = --proc-type=secondary\nprocess = primary\ntotal_instances = 2\n") ==
          "eal: process = primary with --proc-type=secondary");
}
