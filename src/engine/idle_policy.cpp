// SPDX-License-Identifier: BSD-3-Clause
#include "engine/idle_policy.hpp"

#include <rte_pause.h>

#include <algorithm>
#include <ctime>

namespace keel::engine {

void IdlePolicy::on_idle(uint64_t now_ns, uint64_t next_timer_ns) {
  if (cfg_.busy_poll) return;
  uint64_t idle = now_ns - last_work_ns_;
  if (idle < cfg_.spin_ns) return;
  if (idle < cfg_.pause_ns) {
    rte_pause();
    return;
  }
  uint64_t sleep = std::max<uint64_t>(sleep_ns_, cfg_.min_sleep_ns);
  if (next_timer_ns > now_ns) sleep = std::min(sleep, next_timer_ns - now_ns);
  else return;  // a timer is due: go round again
  timespec ts{time_t(sleep / 1'000'000'000), long(sleep % 1'000'000'000)};
  nanosleep(&ts, nullptr);
  sleep_ns_ = std::min(sleep_ns_ * 2, cfg_.max_sleep_ns);
}

}  // namespace keel::engine
