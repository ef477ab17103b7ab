// SPDX-License-Identifier: BSD-3-Clause
#include "drivers/unmap_guard.hpp"

#include <rte_ethdev.h>
#include <rte_interrupts.h>
#include <rte_log.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <thread>

namespace keel::drivers::unmap_guard {

namespace {
// Queues on guarded ports: instances x such ports; released when the queue goes.
constexpr size_t max_slots = 256;
std::array<Slot, max_slots> g_slots;
std::atomic<unsigned> g_in_use{0};

void wait_for(const Slot& s) {
  const uint64_t v = s.seq.load(std::memory_order_acquire);
  if ((v & 1) == 0) return;
  // A burst takes microseconds; its lcore may be preempted in it for longer (then this
  // thread sleeps, up to 1 ms at a time, and leaves it the core).
  auto nap = std::chrono::microseconds(10);
  for (unsigned spin = 0; s.seq.load(std::memory_order_acquire) == v; ++spin) {
    if (spin < 64) {
      std::this_thread::yield();
      continue;
    }
    std::this_thread::sleep_for(nap);
    nap = std::min(nap * 2, std::chrono::microseconds(1000));
  }
}
}  // namespace

bool needed(uint16_t port_id) {
  rte_eth_dev_info info{};
  return rte_eth_dev_is_valid_port(port_id) && rte_eth_dev_info_get(port_id, &info) == 0 &&
         info.driver_name != nullptr && std::strcmp(info.driver_name, "net_memif") == 0;
}

Slot* acquire() {
  for (Slot& s : g_slots) {
    bool expected = false;
    if (s.used.compare_exchange_strong(expected, true, std::memory_order_acq_rel)) {
      g_in_use.fetch_add(1, std::memory_order_seq_cst);
      return &s;
    }
  }
  static std::atomic<bool> said{false};
  if (!said.exchange(true))
    RTE_LOG(WARNING, USER1, "keel: more than %zu guarded queues; the rest run unguarded\n", max_slots);
  return nullptr;
}

void release(Slot* s) {
  if (s == nullptr) return;
  s->used.store(false, std::memory_order_release);
  g_in_use.fetch_sub(1, std::memory_order_seq_cst);
}

void wait_for_bursts() {
  // Pairs with Slot::enter: whatever this thread stored before (the PMD's "disconnected")
  // is visible to a burst that starts after the read of its slot below.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  for (const Slot& s : g_slots) wait_for(s);
}

}  // namespace keel::drivers::unmap_guard

// This process's munmap (it takes the place of libc's for every caller that links to
// it, net_memif's plugin among them). On EAL's interrupt thread, while some queue is
// guarded, the bursts under way end first; otherwise, and then, it is the system call.
extern "C" int munmap(void* addr, size_t len) __THROW {
  namespace ug = keel::drivers::unmap_guard;
  if (ug::g_in_use.load(std::memory_order_seq_cst) != 0 && rte_thread_is_intr()) ug::wait_for_bursts();
  return int(syscall(SYS_munmap, addr, len));
}
