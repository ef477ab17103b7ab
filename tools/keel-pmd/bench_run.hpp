// SPDX-License-Identifier: BSD-3-Clause
#pragma once
// The CLI-thread side of a `bench` command: starts a BenchClient on instance
// 0, waits for its set-up (connections opened gradually; not measured), runs
// the warm-up and the measured window while printing one live row a second,
// takes the figures at the window's edges on the lcore, and stops the client.

#include <memory>
#include <ostream>

#include "bench_spec.hpp"
#include "engine/engine.hpp"

namespace keel::pmd {

class BenchClient;

/// Runs `c` (made for `engine`'s instance 0) to the end of its window.
BenchResult run_bench(engine::Engine& engine, const std::shared_ptr<BenchClient>& c,
                      std::ostream& out);

/// Starts `c` and waits until its connections are open (or set-up stalls for
/// 10 s). Returns "" or why set-up failed; `c` keeps running either way.
std::string start_and_wait_ready(engine::Engine& engine, const std::shared_ptr<BenchClient>& c,
                                 std::ostream& out);

/// Stops `c` on instance 0 (its connections are aborted). False if the
/// instance did not answer (the client then stays alive with its closure).
bool stop_bench(engine::Engine& engine, const std::shared_ptr<BenchClient>& c);

}  // namespace keel::pmd
