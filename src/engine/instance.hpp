// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// A stack instance: everything one lcore owns. It polls its queue on every
/// port, runs each frame to completion (Ethernet -> ARP | IPv4 -> ICMP | L4
/// handler), fires its timers, and flushes its TX buffers, in one poll() call.
/// Nothing in here is shared with another instance; other threads talk to it
/// only through post() (an rte_ring of closures run on the instance's lcore).
///
/// Protocols above IPv4 plug in as L4Handler objects (TCP and UDP do, in later
/// layers); they receive datagrams with the IP header stripped and send through
/// ip_output().

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <keel/result.hpp>

#include "engine/counters.hpp"
#include "engine/interface.hpp"
#include "engine/timer_wheel.hpp"
#include "engine/token_bucket.hpp"
#include "net/addresses.hpp"
#include "net/arp_cache.hpp"
#include "net/ipv4_reassembly.hpp"

struct rte_mbuf;
struct rte_ring;

namespace keel::net {
struct ArpRepr;
}

namespace keel::engine {

class Instance;
class FlowSteering;

/// The IPv4 facts an L4 handler needs about a received datagram.
struct Ipv4Meta {
  net::Ipv4Addr src, dst;
  uint8_t protocol = 0;
  uint8_t ttl = 0;
  uint8_t tos = 0;
  uint16_t iface = 0;     ///< index of the receiving interface
  bool l4_cksum_good = false;  ///< the port verified the L4 checksum
  /// Length of the IP header, which stays in the first segment's headroom just
  /// before the L4 data (send_icmp_error quotes it from there).
  uint8_t ihl = 20;
};

/// An ICMP error, decoded for the transport layer that sent the offending datagram.
struct IcmpError {
  uint8_t type = 0, code = 0;
  uint16_t next_hop_mtu = 0;  ///< for fragmentation-needed (0 if the router gave none)
  net::Ipv4Addr reporter;     ///< who sent the ICMP message
  net::Ipv4Addr orig_src, orig_dst;  ///< the quoted datagram's addresses
  uint8_t protocol = 0;
  const uint8_t* quoted_l4 = nullptr;  ///< at least 8 bytes of the quoted L4 header
  size_t quoted_l4_len = 0;
};

/// A transport protocol served by the instance.
class L4Handler {
 public:
  virtual ~L4Handler() = default;
  /// Takes ownership of `m`, whose data starts at the L4 header.
  virtual void on_datagram(Instance& inst, rte_mbuf* m, const Ipv4Meta& ip, uint64_t now_ns) = 0;
  /// An ICMP error quoting a datagram of this protocol.
  virtual void on_icmp_error(Instance& inst, const IcmpError& err, uint64_t now_ns) {
    (void)inst, (void)err, (void)now_ns;
  }
};

/// How ip_output fills the transport checksum.
enum class L4Checksum : uint8_t {
  none,  ///< the caller filled it (ICMP) or there is none
  tcp,   ///< the TCP checksum field at offset 16: offloaded or computed here
  udp,   ///< the UDP checksum field at offset 6
};

struct IpSend {
  net::Ipv4Addr dst;
  net::Ipv4Addr src;          ///< any(): the route's source address
  uint8_t protocol = 0;
  uint8_t ttl = 0;            ///< 0: the instance default
  uint8_t tos = 0;
  bool dont_fragment = true;  ///< false: fragment if larger than the MTU
  L4Checksum l4 = L4Checksum::none;
};

struct InstanceConfig {
  uint16_t id = 0;
  uint8_t default_ttl = 64;
  net::ArpConfig arp;
  net::ReassemblyConfig reassembly;
  /// ICMP errors the instance sends (send_icmp_error), a token bucket like
  /// Linux's icmp_msgs_per_sec / icmp_msgs_burst. 0 per second: no limit.
  uint32_t icmp_errors_per_sec = 1000;
  uint32_t icmp_errors_burst = 50;
};

/// A received ICMP echo reply, for ping.
struct EchoReply {
  net::Ipv4Addr from;
  uint16_t id = 0, seq = 0;
  size_t bytes = 0;  ///< ICMP payload length
  uint64_t now_ns = 0;
};

struct Route {
  Interface* iface = nullptr;
  net::Ipv4Addr next_hop;
  net::Ipv4Addr src;
};

class Instance {
 public:
  static constexpr uint16_t rx_burst = 32;

  Instance(const InstanceConfig& cfg, uint64_t now_ns);
  ~Instance();
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;

  /// Adds this instance's queue on `port`. Before start().
  Interface& add_interface(const drivers::Port& port, uint16_t queue_id,
                           const InterfaceConfig& l3, rte_mempool* pool);
  /// Announces our addresses (gratuitous ARP). Call on the owning lcore.
  void start(uint64_t now_ns);
  /// One loop iteration. Returns the number of frames and control messages
  /// handled (0 means idle). `flush_after` false leaves what the iteration
  /// produced in the TX buffers for the caller's next flush() (the native
  /// API: ACKs then leave with the application's responses).
  unsigned poll(uint64_t now_ns, bool flush_after = true);
  /// Runs one received frame through the stack (the data path of poll(); the
  /// fuzz target and tests call it directly). Takes ownership.
  void input(rte_mbuf* m, Interface& ifc, uint64_t now_ns);
  /// Transmits what is buffered on every interface.
  void flush(uint64_t now_ns);

  // ----- for L4 handlers -----
  void register_protocol(uint8_t protocol, L4Handler* h) { l4_[protocol] = h; }
  /// Sends `m` (data at the L4 header, headroom for IPv4 + Ethernet) to
  /// `p.dst`. Takes ownership in every case; an error says why it was dropped.
  Result<void> ip_output(rte_mbuf* m, const IpSend& p, uint64_t now_ns);
  std::optional<Route> route(net::Ipv4Addr dst);

  // ----- ICMP errors (icmp.cpp) -----
  /// Sends ICMP destination unreachable `code` about the received datagram `m`
  /// (data at its L4 header, its IP header of ip.ihl bytes and the Ethernet
  /// header just before it in the first segment, as L4Handler::on_datagram
  /// gets it): the IP header and the first 8 bytes of L4 data are quoted (RFC
  /// 792). Does not take `m`. RFC 1122 3.2.2: nothing is sent about a datagram
  /// to a broadcast or multicast address, in a link-layer broadcast, from an
  /// address that is not one host, carrying an ICMP error, or a non-first
  /// fragment (invalid_argument, icmp_unreach_suppressed);
  /// beyond the rate limit, would_block (icmp_unreach_ratelimited).
  Result<void> send_icmp_error(uint8_t code, const rte_mbuf* m, const Ipv4Meta& ip,
                               uint64_t now_ns);

  // ----- ICMP echo (ping) -----
  Result<void> send_echo_request(net::Ipv4Addr dst, uint16_t id, uint16_t seq,
                                 size_t payload_len, uint64_t now_ns);
  void set_echo_reply_hook(std::function<void(const EchoReply&)> hook) {
    echo_hook_ = std::move(hook);
  }

  // ----- control from other threads -----
  /// Queues `fn` to run on this instance's lcore during a later poll().
  /// Safe from any thread; false if the control ring is full.
  bool post(std::function<void(Instance&)> fn);

  uint16_t id() const { return cfg_.id; }
  const InstanceConfig& config() const { return cfg_; }
  Counters& counters() { return counters_; }
  const Counters& counters() const { return counters_; }
  TimerWheel& timers() { return timers_; }
  std::vector<std::unique_ptr<Interface>>& interfaces() { return ifaces_; }
  net::Ipv4Reassembler& reassembler() { return reass_; }
  /// When the loop must run again even with no traffic: the next timer or
  /// the next frame a fault injector delays (UINT64_MAX: nothing pending).
  uint64_t next_wakeup_ns() const;
  /// Frames held anywhere in the instance (ARP queues, reassembly, TX buffers).
  size_t held_frames() const;

  // ----- flow steering (engine/steer.cpp) -----
  /// Makes this instance one of `table.instances()` that share the ports:
  /// `rings[j]` is instance j's incoming steering ring (MP/SC; this instance
  /// consumes rings[id()]). A datagram another instance owns is handed to it
  /// over that ring; ARP is copied to every other instance. Before start();
  /// the table and rings outlive the instance.
  void set_steering(const FlowSteering* table, std::vector<rte_ring*> rings);
  /// The steering table (nullptr: a single instance owns every flow).
  const FlowSteering* steering() const { return steer_; }
  /// Frees the frames left on a steering or TX hand-off ring (after every
  /// instance has stopped; a hand-off ring's frames carry no tag, which untag leaves as is).
  static void free_steered(rte_ring* ring);
  /// A queue of a dead instance (multi-process takeover) this instance now polls.
  struct AdoptedQueue {
    uint16_t iface;     ///< index of the interface (port) it is on
    uint16_t queue;     ///< its RX/TX queue id on that port
    rte_ring* tx_inbox; ///< frames handed to that TX queue by queue-less instances, or nullptr
  };
  /// Multi-process takeover: this instance also receives on `queues` (what
  /// arrives is processed as if received on its own queue, so segments of the
  /// dead instance's connections find no TCB and get RST) and drains
  /// `steer_ring`, the dead instance's incoming steering ring. Call on this
  /// instance's lcore (post()); the dead process must be gone.
  void adopt(rte_ring* steer_ring, std::vector<AdoptedQueue> queues);
  /// True if this instance owns the flow (always, without steering).
  bool owns_flow(net::Ipv4Addr src, net::Ipv4Addr dst, uint16_t sport, uint16_t dport) const;

  // ----- ARP (engine/arp.cpp) -----
  /// `from_port`: the frame came from the wire (it is copied to the other
  /// instances and a request for us is answered); false: a copy another
  /// instance received, of which only the neighbour information is used.
  void arp_input(rte_mbuf* m, Interface& ifc, uint64_t now_ns, bool from_port = true);
  /// Sends a frame whose data starts at the IPv4 header to `next_hop`,
  /// resolving its MAC first if needed. Takes ownership.
  void resolve_and_send(Interface& ifc, net::Ipv4Addr next_hop, rte_mbuf* m, uint64_t now_ns);
  void send_arp_request(Interface& ifc, net::Ipv4Addr target, net::MacAddr dst_mac,
                        uint64_t now_ns);
  static void arp_timer_fired(Timer& t, void* ctx, uint64_t now_ns);

 private:
  void ip_input(rte_mbuf* m, Interface& ifc, uint64_t now_ns);
  void ip_accept(rte_mbuf* m, Interface& ifc, uint64_t now_ns);
  void ip_accept_steered(rte_mbuf* m, Interface& ifc, uint64_t now_ns);
  void ip_deliver(rte_mbuf* m, Interface& ifc, uint64_t now_ns);
  void icmp_input(rte_mbuf* m, const Ipv4Meta& ip, uint64_t now_ns);
  void icmp_error_input(const uint8_t* msg, size_t len, const Ipv4Meta& ip, uint64_t now_ns);
  Result<void> fragment_and_send(rte_mbuf* m, Interface& ifc, net::Ipv4Addr next_hop,
                                 uint64_t now_ns);
  void send_ether(Interface& ifc, rte_mbuf* m, net::MacAddr dst, uint16_t ethertype,
                  uint64_t now_ns);
  void run_control();
  // Flow steering (engine/steer.cpp).
  bool steer_away(rte_mbuf* m, Interface& ifc);
  void steer_stage(uint16_t to, rte_mbuf* m, Interface& ifc, uintptr_t kind);
  void steer_flush();
  void steer_flush_one(uint16_t to);
  unsigned steer_drain(uint64_t now_ns);
  unsigned steer_drain_ring(rte_ring* ring, uint64_t now_ns);
  unsigned poll_adopted(uint64_t now_ns);
  void arp_replicate(const rte_mbuf* m, Interface& ifc);
  void arp_learn(const net::ArpRepr& arp, Interface& ifc, uint64_t now_ns);
  void steer_discard();
  static void reassembly_tick(Timer& t, void* ctx, uint64_t now_ns);

  InstanceConfig cfg_;
  Counters counters_;
  TimerWheel timers_;
  net::Ipv4Reassembler reass_;
  Timer reass_timer_;
  std::vector<std::unique_ptr<Interface>> ifaces_;
  L4Handler* l4_[256] = {};
  uint16_t ip_id_ = 0;
  rte_ring* control_ = nullptr;
  std::function<void(const EchoReply&)> echo_hook_;
  // Flow steering: the shared read-only table, every instance's incoming ring,
  // and per destination the burst being gathered (enqueued once per poll).
  struct SteerBurst {
    uint16_t n = 0;
    void* items[rx_burst];
  };
  const FlowSteering* steer_ = nullptr;
  std::vector<rte_ring*> steer_rings_;
  std::vector<SteerBurst> steer_out_;
  std::vector<rte_ring*> adopted_rings_;   // dead instances' steering rings (takeover)
  std::vector<AdoptedQueue> adopted_queues_;
  TokenBucket icmp_error_bucket_{cfg_.icmp_errors_per_sec, cfg_.icmp_errors_burst};
};

/// Nanoseconds on the TSC clock (monotonic, cheap: no system call).
uint64_t now_ns();

}  // namespace keel::engine
