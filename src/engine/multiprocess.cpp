// SPDX-License-Identifier: BSD-3-Clause
#include "engine/multiprocess.hpp"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_memzone.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <new>
#include <sstream>

namespace keel::engine::mp {

std::string mp_steer_ring_name(uint16_t instance) { return "keel_mp_steer_" + std::to_string(instance); }
std::string mp_txh_ring_name(size_t port, uint16_t queue) {
  return "keel_mp_txh_" + std::to_string(port) + "_" + std::to_string(queue);
}

std::string object_name(const char* base) {
  static std::atomic<unsigned> serial{0};
  std::string name = std::string(base) + "_" + std::to_string(serial++);
  if (rte_eal_process_type() == RTE_PROC_SECONDARY) {
    char pid[16];
    std::snprintf(pid, sizeof pid, "_p%x", unsigned(getpid()));
    name += pid;
  }
  return name;
}

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000 + uint64_t(ts.tv_nsec);
}

uint64_t process_start_time(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s;
  if (!f || !std::getline(f, s)) return 0;
  // "pid (comm) state ppid ..." : comm may hold spaces and parentheses; the last ')' ends it.
  size_t p = s.rfind(')');
  if (p == std::string::npos) return 0;
  std::istringstream in(s.substr(p + 1));
  std::string field;
  in >> field;  // field 3: state
  if (field == "Z" || field == "X" || field == "x") return 0;
  for (int i = 4; i <= 22; ++i) in >> field;
  return std::strtoull(field.c_str(), nullptr, 10);
}

SharedState* Group::create_state(uint16_t total_instances, std::string& err) {
  const rte_memzone* mz = rte_memzone_reserve(mp_zone_name, sizeof(SharedState), int(rte_socket_id()), 0);
  if (mz == nullptr) {
    err = std::string("memzone ") + mp_zone_name + ": " + rte_strerror(rte_errno);
    return nullptr;
  }
  std::memset(mz->addr, 0, sizeof(SharedState));
  auto* st = new (mz->addr) SharedState;
  for (uint16_t i = 0; i < max_instances; ++i) st->owner_map[i].store(i, std::memory_order_relaxed);
  for (auto& s : st->procs) s.state.store(slot_free, std::memory_order_relaxed);
  st->total_instances = total_instances;
  return st;  // magic is set by the caller once the ports and rings are in place
}

SharedState* Group::lookup_state(std::string& err) {
  const rte_memzone* mz = rte_memzone_lookup(mp_zone_name);
  auto* st = mz != nullptr ? static_cast<SharedState*>(mz->addr) : nullptr;
  if (st == nullptr || __atomic_load_n(&st->magic, __ATOMIC_ACQUIRE) != mp_magic) {
    err = "no keel primary with this --file-prefix (memzone " + std::string(mp_zone_name) +
          (st == nullptr ? " not found)" : " not ready)");
    return nullptr;
  }
  return st;
}

bool Group::join(SharedState* st, uint16_t first, uint16_t count, std::string& err) {
  uint64_t mine[RTE_MAX_LCORE / 64] = {};
  unsigned l;
  RTE_LCORE_FOREACH(l) mine[l / 64] |= uint64_t(1) << (l % 64);
  ProcSlot* free_slot = nullptr;
  for (auto& s : st->procs) {
    uint32_t state = s.state.load(std::memory_order_acquire);
    if (state == slot_free) {
      if (free_slot == nullptr) free_slot = &s;
      continue;
    }
    bool overlap = first < s.first + s.count && s.first < first + count;
    if (overlap && state == slot_taken_over) {
      err = "instances " + std::to_string(s.first) + "-" + std::to_string(s.first + s.count - 1) +
            " were taken over by the primary after pid " + std::to_string(s.pid) +
            " ended; restart the primary to run them in another process";
      return false;
    }
    if (state != slot_live && state != slot_claiming) continue;
    if (process_start_time(s.pid) == 0) continue;  // dead: the primary will notice
    if (overlap) {
      err = "instances " + std::to_string(first) + "-" + std::to_string(first + count - 1) +
            " overlap those of pid " + std::to_string(s.pid) + " (" + std::to_string(s.first) + "-" +
            std::to_string(s.first + s.count - 1) + ")";
      return false;
    }
    for (unsigned w = 0; w < RTE_MAX_LCORE / 64; ++w)
      if (uint64_t both = mine[w] & s.lcores[w]) {
        err = "lcore " + std::to_string(w * 64 + unsigned(__builtin_ctzll(both))) + " is used by pid " +
              std::to_string(s.pid) +
              " too (each lcore id has one mempool cache): give this process other lcore ids, "
              "e.g. --lcores 2@0,3@1";
        return false;
      }
  }
  if (free_slot == nullptr) {
    err = "no free process slot (" + std::to_string(max_procs) + " in use)";
    return false;
  }
  uint32_t expect = slot_free;
  if (!free_slot->state.compare_exchange_strong(expect, slot_claiming)) {
    err = "process slot taken concurrently; try again";
    return false;
  }
  free_slot->pid = int32_t(getpid());
  free_slot->start_time = process_start_time(getpid());
  free_slot->first = first;
  free_slot->count = count;
  std::memcpy(free_slot->lcores, mine, sizeof mine);
  free_slot->heartbeat_ns.store(monotonic_ns(), std::memory_order_relaxed);
  free_slot->state.store(slot_live, std::memory_order_release);
  st_ = st;
  slot_ = free_slot;
  return true;
}

void Group::leave() {
  if (slot_ == nullptr) return;
  uint32_t expect = slot_live;
  slot_->state.compare_exchange_strong(expect, slot_left);
  slot_ = nullptr;
}

std::string describe(const SharedState& st) {
  static const char* names[] = {"free", "claiming", "live", "left", "taken over"};
  std::ostringstream out;
  uint64_t now = monotonic_ns();
  out << "multi-process: " << st.total_instances << " instances in all\n";
  for (unsigned i = 0; i < max_procs; ++i) {
    const ProcSlot& s = st.procs[i];
    uint32_t state = s.state.load(std::memory_order_acquire);
    if (state == slot_free) continue;
    out << "  slot " << i << " pid " << s.pid << (i == 0 ? " primary" : " secondary") << " instances "
        << s.first << "-" << (s.first + s.count - 1) << " " << (state < 5 ? names[state] : "?");
    if (state == slot_live)
      out << " heartbeat " << (now - s.heartbeat_ns.load(std::memory_order_relaxed)) / 1'000'000 << " ms ago";
    out << " lcores";
    for (unsigned l = 0; l < RTE_MAX_LCORE; ++l)
      if (s.lcores[l / 64] & (uint64_t(1) << (l % 64))) out << " " << l;
    out << "\n";
  }
  out << "  owner map:";
  for (uint16_t i = 0; i < st.total_instances; ++i)
    out << " " << i << "->" << st.owner_map[i].load(std::memory_order_relaxed);
  out << "\n";
  return out.str();
}

}  // namespace keel::engine::mp
