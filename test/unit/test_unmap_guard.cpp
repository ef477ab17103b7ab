// SPDX-License-Identifier: BSD-3-Clause
// drivers/unmap_guard: munmap on EAL's interrupt thread waits for the bursts under way on
// guarded queues (what keeps net_memif's disconnect from unmapping a ring an lcore is
// reading); anywhere else, or with no burst under way, it is the plain system call.
#include <rte_alarm.h>
#include <sys/mman.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "drivers/unmap_guard.hpp"

namespace ug = keel::drivers::unmap_guard;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

void* map_page() {
  void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(p != MAP_FAILED);
  return p;
}

// munmap of one page on EAL's interrupt thread (an alarm callback); returns when it did.
struct IntrUnmap {
  void* page = nullptr;
  int rc = -1;
  Clock::time_point done_at;
  std::atomic<bool> done{false};
  static void run(void* arg) {
    auto* u = static_cast<IntrUnmap*>(arg);
    u->rc = munmap(u->page, 4096);
    u->done_at = Clock::now();
    u->done.store(true);
  }
};

}  // namespace

TEST_CASE("unmap_guard: munmap on the interrupt thread waits for a burst under way", "[drivers]") {
  ug::Slot* s = ug::acquire();
  REQUIRE(s != nullptr);
  std::atomic<bool> inside{false};
  Clock::time_point left_at;
  std::thread lcore([&] {
    ug::Burst b(s);
    inside.store(true);
    std::this_thread::sleep_for(100ms);  // a burst preempted for a while
    left_at = Clock::now();
  });
  while (!inside.load()) std::this_thread::yield();

  IntrUnmap u;
  u.page = map_page();
  REQUIRE(rte_eal_alarm_set(1, &IntrUnmap::run, &u) == 0);
  while (!u.done.load()) std::this_thread::sleep_for(1ms);
  lcore.join();
  CHECK(u.rc == 0);
  CHECK(u.done_at >= left_at);  // the page went only once the burst had ended
  ug::release(s);
}

TEST_CASE("unmap_guard: no burst under way, or not the interrupt thread: no wait", "[drivers]") {
  ug::Slot* s = ug::acquire();
  REQUIRE(s != nullptr);
  {
    ug::Burst b(s);  // an unfinished burst here: this thread's munmap does not wait
    void* p = map_page();
    CHECK(munmap(p, 4096) == 0);
  }
  IntrUnmap u;  // bursts over: the interrupt thread's munmap goes at once
  u.page = map_page();
  const auto t0 = Clock::now();
  REQUIRE(rte_eal_alarm_set(1, &IntrUnmap::run, &u) == 0);
  while (!u.done.load()) std::this_thread::sleep_for(1ms);
  CHECK(u.rc == 0);
  CHECK(u.done_at - t0 < 2s);
  ug::release(s);

  CHECK(munmap(nullptr, 4096) == 0);  // the system call's answers (unmapping nothing is fine)
  CHECK(munmap(reinterpret_cast<void*>(1), 4096) == -1);  // unaligned: EINVAL
  CHECK(errno == EINVAL);
}

TEST_CASE("unmap_guard: only net_memif ports are guarded", "[drivers]") {
  CHECK_FALSE(ug::needed(RTE_MAX_ETHPORTS - 1));  // no such port
}
