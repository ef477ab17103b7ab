// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// The engine: ports, the mbuf pool and one Instance per lcore, each running its
/// poll loop. Instance i owns queue i of every port. Instances run on EAL worker
/// lcores; with no worker lcore (e.g. `-l 0`) one instance runs on a registered
/// non-EAL thread so the main thread stays free for the caller (keel-pmd's CLI).
///
/// Several instances: every flow has one owner (engine/flow_steering.hpp), the
/// same table in software and, on a port with RSS, in the port's RETA. A port
/// gets as many queues as instances when its driver offers them, else fewer:
/// instance i >= queues then receives nothing there and transmits through a
/// ring into the instance owning queue i % queues. Whatever arrives on a queue
/// whose instance does not own the flow is handed to the owner over its
/// steering ring (engine/steer.cpp).
///
/// Multi-process (EngineConfig::total_instances != 0, engine/multiprocess.hpp):
/// this process runs instances first_instance .. first_instance + instances - 1
/// of total_instances; the EAL process type decides whether it is the primary
/// (configures the ports for all, creates the pool and rings by name, takes
/// over the instances of a process that dies) or a secondary (looks them up).

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <keel/result.hpp>

#include "drivers/fault_injector.hpp"
#include "drivers/port.hpp"
#include "engine/flow_steering.hpp"
#include "engine/idle_policy.hpp"
#include "engine/instance.hpp"
#include "tcp/tcp_stack.hpp"
#include "udp/udp_stack.hpp"

struct rte_mempool;
struct rte_ring;

namespace keel::engine {

struct PortSpec {
  std::string device;          ///< ethdev name ("net_tap0") or index ("0")
  InterfaceConfig l3;
  drivers::FaultConfig rx_faults, tx_faults;
  uint16_t mtu = 1500;
  bool use_offloads = true;
  net::MacAddr mac;            ///< zero: the port's own
};

struct EngineConfig {
  std::vector<PortSpec> ports;
  uint16_t instances = 1;
  uint32_t pool_mbufs = 16383;   ///< per engine (one pool, shared by its instances)
  IdleConfig idle;
  InstanceConfig instance;       ///< template; id is set per instance
  tcp::TcpConfig tcp;            ///< TCP on every instance
  udp::UdpConfig udp;            ///< UDP on every instance
  /// Multi-process: the instances of every process of the group (1..64); 0: one
  /// process runs them all (`instances`). The role comes from EAL's process type.
  uint16_t total_instances = 0;
  /// Multi-process: the global id of this process's first instance.
  uint16_t first_instance = 0;
};

namespace mp {
class Group;
struct SharedState;
}  // namespace mp

class Engine {
 public:
  /// Starts ports and builds instances (EAL must be initialised).
  static Result<std::unique_ptr<Engine>, std::string> create(const EngineConfig& cfg);
  ~Engine();

  /// Runs on an instance's lcore in place of the engine's own loop: it must
  /// call Instance::poll() until stopping() (the native API's Stack does).
  using InstanceMain = std::function<void(Instance& inst, size_t index)>;

  /// Launches every instance's loop (returns at once). With `body`, each
  /// lcore runs body(instance, index) instead of the default loop, after
  /// Instance::start and before a last flush.
  Result<void, std::string> launch(InstanceMain body = nullptr);
  /// Asks the loops to finish and waits for them. Ports stop and close when
  /// the engine is destroyed.
  void stop();
  /// Waits for every loop to return (without asking them to).
  void wait();
  /// Asks the loops to finish (async-signal-safe: one atomic store).
  void request_stop() { stop_.store(true, std::memory_order_relaxed); }
  /// The flag request_stop() sets, for loops run by an InstanceMain.
  std::atomic<bool>& stop_flag() { return stop_; }
  bool running() const { return running_.load(); }
  /// After stop(): frees every connection and every frame the stacks hold and
  /// drains the ports' receive queues, so that the pool's in-use count is what
  /// the application itself still holds. The engine is not usable afterwards.
  void quiesce();

  std::vector<std::unique_ptr<Instance>>& instances() { return instances_; }
  /// TCP of instance i (touch only on that instance's lcore, e.g. via post()).
  tcp::TcpStack& tcp(size_t i) { return *tcp_[i]; }
  /// UDP of instance i (likewise only on that instance's lcore).
  udp::UdpStack& udp(size_t i) { return *udp_[i]; }
  std::vector<drivers::Port>& ports() { return ports_; }
  rte_mempool* pool() const { return pool_; }
  /// Who owns which flow (nullptr with one instance).
  const FlowSteering* steering() const { return steering_.get(); }
  /// The local instance with global id `id`, nullptr if another process runs it.
  Instance* local_instance(uint16_t id);
  /// Instances of every process (= instances().size() in a single process).
  uint16_t total_instances() const { return total_; }
  bool multi_process() const { return mp_ != nullptr; }
  bool secondary() const { return secondary_; }
  /// Multi-process: the group's slots, the owner map, the pool's in-use count
  /// and what every takeover did ("" in a single process). Any thread.
  std::string mp_status();

 private:
  Engine() = default;
  static int lcore_main(void* arg);
  void run_instance(Instance& inst, size_t index);
  InstanceMain body_;
  Result<void, std::string> attach_ports(mp::SharedState* st);
  void publish_ports(mp::SharedState* st);
  Result<rte_ring*, std::string> ring(const std::string& mp_name, const char* what);
  /// The multi-process monitor thread: heartbeat, liveness of the others.
  void monitor_loop();
  /// The primary serves the instances of slot `slot`'s (dead or departed) process.
  void take_over(unsigned slot, const char* why);
  void mp_log(std::string line);
  Result<void, std::string> create_steering();
  /// Frees the frames left on the steering and TX hand-off rings, and the rings.
  void free_rings();

  EngineConfig cfg_;
  rte_mempool* pool_ = nullptr;
  std::vector<drivers::Port> ports_;
  std::vector<std::unique_ptr<Instance>> instances_;
  std::vector<std::unique_ptr<tcp::TcpStack>> tcp_;  // tcp_[i] serves instances_[i]
  std::unique_ptr<FlowSteering> steering_;
  std::vector<rte_ring*> steer_rings_;               // [i]: instance i's incoming (MP/SC)
  std::vector<std::vector<rte_ring*>> tx_rings_;     // [port][queue]: hand-off into the queue's owner
  std::vector<std::unique_ptr<udp::UdpStack>> udp_;  // udp_[i] serves instances_[i]
  std::vector<unsigned> lcores_;   // worker lcore per instance (or none: thread)
  std::vector<std::thread> threads_;
  std::atomic<bool> running_{false};
  std::atomic<bool> stop_{false};
  uint16_t total_ = 1;
  bool secondary_ = false;
  std::unique_ptr<mp::Group> mp_;
  std::thread monitor_;
  std::atomic<bool> monitor_stop_{false};
  std::mutex mp_mu_;                  // mp_log_, pending_
  std::vector<std::string> mp_log_;
  struct PendingReport {
    unsigned slot;
    uint64_t at_ns;
    uint64_t in_use_before;
  };
  std::vector<PendingReport> pending_;
};

}  // namespace keel::engine
