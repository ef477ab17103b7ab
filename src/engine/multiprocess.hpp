// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// Symmetric multi-process (DPDK primary + secondaries over hugepages, like
/// DPDK's examples/multi_process/symmetric_mp): the instances of several
/// processes share ports, one mbuf pool and the steering rings.
///
///   - The primary configures every port with one queue per instance of ALL
///     processes (EngineConfig::total_instances), creates the pool and the
///     rings under fixed names (mp_pool_name, mp_steer_ring_name, ...) and
///     the memzone `mp_zone_name` holding a `SharedState`: what the ports were
///     configured with, the RETA size of the steering table, the instance ->
///     processing-instance map, and one slot per process.
///   - A secondary looks all of that up by name and runs its range of
///     instances (EngineConfig::first_instance ..) on their own queues.
///   - FlowSteering is built from (total_instances, shared reta size) in every
///     process, so every process sends a flow to the same owner; its owner
///     lookups go through SharedState::owner_map, which the primary rewrites
///     when a process dies.
///
/// Liveness: every process's monitor thread (Group) writes its slot's
/// heartbeat every 100 ms. The primary's monitor checks each secondary's
/// PID (/proc/PID/stat: gone, zombie, or a different start time all mean
/// dead) and takes over the instances of a dead or departed one; see
/// Engine::take_over and docs/ARCHITECTURE.md "Multi-process".

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include <rte_config.h>

#include "drivers/port.hpp"

namespace keel::engine::mp {

inline constexpr const char* mp_zone_name = "keel_mp_state";
inline constexpr const char* mp_pool_name = "keel_mp_pool";
std::string mp_steer_ring_name(uint16_t instance);
std::string mp_txh_ring_name(size_t port, uint16_t queue);

inline constexpr uint32_t mp_magic = 0x6b6d7031;  // "kmp1"
inline constexpr unsigned max_procs = 16;
inline constexpr unsigned max_ports = 8;
inline constexpr unsigned max_instances = 64;

/// A port as the primary configured it (a secondary cannot reconfigure it).
struct PortRecord {
  uint16_t port_id;
  uint16_t queues;
  uint16_t mtu;
  uint16_t reta_size;
  uint8_t mac[6];
  drivers::OffloadCaps caps;
};

enum SlotState : uint32_t {
  slot_free = 0,
  slot_claiming,   ///< being filled in by its process
  slot_live,
  slot_left,       ///< exited normally (its Engine was destroyed)
  slot_taken_over, ///< dead or left; the primary now serves its instances
};

struct ProcSlot {
  std::atomic<uint32_t> state;
  int32_t pid;
  uint64_t start_time;       ///< /proc/PID/stat field 22, against PID reuse
  uint16_t first, count;     ///< global instance ids [first, first + count)
  uint64_t lcores[RTE_MAX_LCORE / 64];  ///< lcore ids it uses (mempool caches)
  std::atomic<uint64_t> heartbeat_ns;   ///< CLOCK_MONOTONIC
  uint64_t pool_in_use_at_join;         ///< the shared pool's in-use count when it joined
};

struct SharedState {
  uint32_t magic;
  uint16_t total_instances;
  uint16_t nports;
  PortRecord ports[max_ports];
  /// owner_map[i]: the instance that processes the flows steered to instance i
  /// (i, unless i's process died and the primary took them over).
  std::atomic<uint16_t> owner_map[max_instances];
  ProcSlot procs[max_procs];
};

/// A name for a process-private DPDK object (ring, hash): `base` and a serial
/// number, plus this process's PID in a secondary, since the names of rings,
/// hashes and memzones are shared by every process of the group.
std::string object_name(const char* base);

/// CLOCK_MONOTONIC in ns (the same clock in every process).
uint64_t monotonic_ns();
/// Start time of process `pid` (/proc/PID/stat field 22), 0 if it is gone or a zombie.
uint64_t process_start_time(int pid);

/// This process's membership: its slot, the monitor thread's heartbeat.
class Group {
 public:
  /// Primary: reserves and initialises the memzone (ports and RETA filled in by the caller).
  static SharedState* create_state(uint16_t total_instances, std::string& err);
  /// Secondary: finds the primary's memzone.
  static SharedState* lookup_state(std::string& err);

  /// Claims a slot for instances [first, first + count) run on this process's
  /// enabled lcores; refuses overlapping instances or lcore ids of a live process.
  bool join(SharedState* st, uint16_t first, uint16_t count, std::string& err);
  /// Marks the slot left (normal exit).
  void leave();

  SharedState* state() const { return st_; }
  ProcSlot* slot() const { return slot_; }
  unsigned slot_index() const { return unsigned(slot_ - st_->procs); }

 private:
  SharedState* st_ = nullptr;
  ProcSlot* slot_ = nullptr;
};

/// One line per slot in use: "slot 0 pid 123 primary instances 0-0 live heartbeat 12 ms".
std::string describe(const SharedState& st);

}  // namespace keel::engine::mp
