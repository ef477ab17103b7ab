// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// Keeps a PMD's control path from unmapping queue memory under a burst.
///
/// COMPAT(dpdk 22.11): net_memif handles the peer's disconnect (its message, or the
/// control socket closing) on EAL's interrupt thread: memif_disconnect clears the
/// connected flag and then munmaps the shared regions that hold the rings and the
/// packet buffers, with no lock against the data path. rx/tx_burst test the flag once at
/// their start and then read and write those regions, so a burst that began before the
/// flag went down and is still running at the munmap (the lcore preempted in it, or just
/// a long burst) faults: the survivor of a peer that quits dies with SIGSEGV.
///
/// The guard closes that window. Each queue on such a port has a Slot; its owner marks
/// each burst (Slot::enter/leave: an odd count while inside). munmap, when EAL's interrupt
/// thread calls it, first waits until every burst that was under way has ended: a burst
/// that starts later sees the flag down (the counter's update is a full barrier) and
/// touches no region. This process's munmap is the guard's (unmap_guard.cpp) and passes
/// straight to the kernel everywhere else, and on the interrupt thread too while no
/// guarded queue exists.

#include <atomic>
#include <cstdint>

namespace keel::drivers::unmap_guard {

/// One queue's burst marker, written by the queue's owner only.
struct alignas(64) Slot {
  std::atomic<uint64_t> seq{0};  ///< odd: a burst is under way
  std::atomic<bool> used{false};

  void enter() {
    seq.store(seq.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    // The burst's reads of the PMD's state come after the mark is visible: pairs with
    // the fence in wait_for_bursts (a store-load ordering, so a full fence each side).
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
  void leave() { seq.store(seq.load(std::memory_order_relaxed) + 1, std::memory_order_release); }
};

/// True for the drivers whose control path unmaps queue memory while the port runs
/// (net_memif).
bool needed(uint16_t port_id);
/// A free slot, or nullptr when all are taken (the queue then runs unguarded; logged).
Slot* acquire();
void release(Slot* s);
/// Waits until every burst under way on a guarded queue has ended (what munmap does on
/// EAL's interrupt thread). For tests.
void wait_for_bursts();

/// Runs `burst` (an rx/tx_burst call) marked on `s`; nullptr: an unguarded queue, one
/// test and the call.
template <class F>
inline auto marked(Slot* s, F&& burst) {
  if (s == nullptr) [[likely]]
    return burst();
  s->enter();
  auto n = burst();
  s->leave();
  return n;
}

/// Marks one burst on `s` for a scope (nullptr: an unguarded queue).
class Burst {
 public:
  explicit Burst(Slot* s) : s_(s) {
    if (s_ != nullptr) s_->enter();
  }
  ~Burst() {
    if (s_ != nullptr) s_->leave();
  }
  Burst(const Burst&) = delete;
  Burst& operator=(const Burst&) = delete;

 private:
  Slot* s_;
};

}  // namespace keel::drivers::unmap_guard
