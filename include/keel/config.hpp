// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// Start-up configuration: built in code, or read from a small file.
///
/// File format (one `key = value` per line, `#` starts a comment, sections in
/// brackets; every key and value is checked and an unknown key or a bad value
/// is refused with "FILE:LINE: ..." naming it):
///
///     eal = -l 0-1 --no-huge -m 1024 --no-pci --vdev net_tap0,iface=ktap0
///     instances = 2            # one per lcore, 1..64
///     pool_mbufs = 16383       # mbufs in the engine's pool
///     busy_poll = off          # on: never sleep when idle
///     process = single         # or primary / secondary: a multi-process group
///     total_instances = 2      # multi-process: the instances of every process
///     instance_range = 1-1     # multi-process: the ones this process runs
///
///     [port]                   # one section per port, in order
///     device = net_tap0        # ethdev name, or a port index
///     address = 198.18.0.2/24  # repeatable
///     gateway = 198.18.0.1
///     mtu = 1500
///     offloads = on
///     mac = 02:00:00:00:00:02  # optional: the port's own otherwise
///     rx_faults = drop=1%      # optional fault injection (tests), keel-pmd's syntax
///     tx_faults = reorder=5%
///
///     [tcp]
///     max_connections = 16384  # per instance
///     send_buffer = 1048576    # bytes per connection
///     receive_buffer = 1048576
///     nodelay = off
///     congestion_control = cubic   # or newreno
///     timestamps = on
///     sack = on
///     window_scaling = on
///     keepalive_idle_ms = 7200000
///     keepalive_interval_ms = 75000
///     keepalive_count = 9
///     syn_retries = 6
///     min_rto_ms = 200
///     msl_ms = 30000
///
///     [udp]
///     max_sockets = 1024       # per instance
///     receive_datagrams = 256  # queued per socket
///     receive_bytes = 262144   # payload bytes queued per socket
///
///     [shm]                    # the intra-node fast path (docs/ARCHITECTURE.md)
///     enabled = on             # off: connections to this node's listeners use TCP
///     channels = 1024          # channels the node's table holds (first process decides)
///     ring_slots = 1024        # mbuf chains in flight per direction (first process decides)
///     budget = 1048576         # bytes in flight per direction before send would-blocks
///
/// Rules:
///  - `#` to the end of the line is a comment, anywhere (so no value contains
///    `#`). Blank lines are ignored; white space around keys, values, `=` and
///    section headers is ignored. Keys, section names, booleans and
///    congestion_control are lower case.
///  - Keys before the first section are the top-level ones (eal, instances,
///    pool_mbufs, busy_poll, process, total_instances, instance_range). Sections
///    are `[port]` (any number, one per port, in order), `[tcp]`, `[udp]` and
///    `[shm]` (each at most once). Any other section or key is refused.
///  - A key appears at most once per section, except `address`. Every value is
///    non-empty: leave a key out to keep its default.
///  - A `[port]` needs `device` and at least one `address`; a `gateway` must be
///    on one of the port's subnets. An address is A.B.C.D/N (a missing /N means
///    /32) and must be unicast (not 0.0.0.0, multicast or 255.255.255.255).
///  - Booleans are on/off, true/false, yes/no or 1/0. Numbers are plain decimal
///    integers (no sign, suffix or separator), within these ranges:
///    instances 1..64, pool_mbufs 1024..4294967295, mtu 576..9000,
///    max_connections 1..16777216, send_buffer and receive_buffer
///    1024..1073741824, keepalive_idle_ms and keepalive_interval_ms 1..32767000,
///    keepalive_count and syn_retries 1..127, min_rto_ms 1..60000,
///    msl_ms 1..600000, max_sockets 1..65535, receive_datagrams 1..65536,
///    receive_bytes 1024..1073741824, channels 1..4096, ring_slots 64..65536
///    (rounded up to a power of two), budget 1024..1073741824.
///  - `eal` is split into words at white space (no quoting). `device` is one
///    word. `mac` is six hex pairs separated by `:`, unicast and not all
///    zeros. `congestion_control` is cubic or newreno. rx_faults/tx_faults are
///    checked with keel-pmd's fault syntax (drivers::FaultConfig::parse).
///
///  - Multi-process (docs/ARCHITECTURE.md "Multi-process"): `process` is single
///    (the default), primary or secondary. primary and secondary need
///    total_instances (1..64) and an instance_range `A-B` (or `A`) within it,
///    which gives this process instances A..B (so `instances` is not given
///    with it). The primary configures every port with total_instances
///    queues; a secondary lists the same ports in the same order with the
///    same addresses, and uses them as the primary configured them (its mtu,
///    offloads and mac are ignored). `eal` must then use hugepages (no --no-huge, no
///    --in-memory), a secondary's must say --proc-type=secondary and share
///    the primary's --file-prefix, and a primary's must not; the processes'
///    lcore ids must differ (e.g. `--lcores 2@0,3@1` in the secondary).
///    single refuses total_instances and instance_range.
///
/// A file need not have a `[port]` (apply_env() can make port 0), so call
/// validate() on the final Config: it requires at least one port.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <keel/address.hpp>
#include <keel/result.hpp>

namespace keel {

struct PortOptions {
  std::string device;                  ///< "net_tap0", or "0" for the first port
  std::vector<Ipv4Prefix> addresses;   ///< at least one
  Ipv4Address gateway;                 ///< any(): no default route
  uint16_t mtu = 1500;
  bool offloads = true;                ///< false: checksums etc. in software
  std::string mac;                     ///< empty: the port's own
  std::string rx_faults, tx_faults;    ///< fault-injection specs, empty: none
};

struct TcpOptions {
  uint32_t max_connections = 16384;
  uint32_t send_buffer = 1 << 20;
  uint32_t receive_buffer = 1 << 20;
  bool nodelay = false;
  std::string congestion_control = "cubic";
  bool timestamps = true, sack = true, window_scaling = true;
  uint64_t keepalive_idle_ms = 7'200'000;
  uint64_t keepalive_interval_ms = 75'000;
  uint8_t keepalive_count = 9;
  uint8_t syn_retries = 6;
  uint64_t min_rto_ms = 200;
  uint64_t msl_ms = 30'000;
};

struct UdpOptions {
  uint32_t max_sockets = 1024;          ///< per instance
  uint32_t receive_datagrams = 256;     ///< queued per socket
  uint32_t receive_bytes = 256 * 1024;  ///< payload bytes queued per socket
};
/// The intra-node fast path: a connect() to a listener of this node (another
/// instance, or another process of the multi-process group) becomes a
/// shared-memory channel instead of a TCP connection.
struct ShmOptions {
  bool enabled = true;
  uint32_t channels = 1024;
  uint32_t ring_slots = 1024;
  uint32_t budget = 1 << 20;
};

/// The role of this process (see "Multi-process" above).
enum class ProcessType { single, primary, secondary };

struct Config {
  /// EAL arguments without argv[0], e.g. {"-l", "0-1", "--no-huge", ...}.
  /// Empty: the runtime expects EAL to be initialised already.
  std::vector<std::string> eal_args;
  uint16_t instances = 1;
  uint32_t pool_mbufs = 16383;
  bool busy_poll = false;
  ProcessType process = ProcessType::single;
  /// Multi-process: the instances of every process of the group (0: not set).
  uint16_t total_instances = 0;
  /// Multi-process: the global id of this process's first instance; it runs
  /// `instances` of them (the file's instance_range sets both).
  uint16_t first_instance = 0;
  std::vector<PortOptions> ports;
  TcpOptions tcp;
  UdpOptions udp;
  ShmOptions shm;
};

/// Parses the file format above. `source` names the text in messages
/// ("SOURCE:LINE: what"); the first problem found is the one reported.
Result<Config, std::string> parse_config(std::string_view text, std::string_view source = "config");
/// Reads and parses a file; messages name `path` as the source. A file that
/// cannot be read gives "PATH: strerror(errno)".
Result<Config, std::string> load_config(const std::string& path);
/// Applies the environment's overrides: KEEL_EAL (EAL arguments as one
/// string), KEEL_INSTANCES, KEEL_SHM (shm.enabled), KEEL_ADDR (address/prefix of port 0, replacing
/// its addresses; creates port 0 with KEEL_PORT or "0" as device if there is
/// none), KEEL_GW (port 0's gateway), KEEL_PORT (port 0's device). Values
/// follow the file's rules for eal, instances, address, gateway and device; a
/// variable set to the empty string is refused like an empty value. Also
/// refused: KEEL_PORT or KEEL_GW without a port 0 (and without KEEL_ADDR), and
/// a port 0 whose gateway ends up on none of its subnets.
/// A bad value is refused with a message naming the variable
/// ("KEEL_ADDR: '1.2.3' is not an address/prefix"), and cfg is then unchanged.
Result<void, std::string> apply_env(Config& cfg);
/// Checks what the parser checks, for a Config built in code, and that there
/// is at least one port. The message names the field: "ports[0].addresses: empty",
/// "tcp.congestion_control: 'bbr' is not newreno or cubic".
Result<void, std::string> validate(const Config& cfg);

}  // namespace keel
