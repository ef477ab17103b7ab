// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// keel::Runtime: starts EAL, the ports and one stack instance per lcore, and
/// runs the application's per-instance code on each of them.
///
///     auto rt = keel::Runtime::create(cfg);           // EAL, ports, pools
///     if (!rt) { fprintf(stderr, "%s\n", rt.error().c_str()); return 1; }
///     (*rt)->run([](keel::Stack& s) { ...loop on s.poll()... });
///
/// Instances run on EAL worker lcores (`-l 0-2` gives workers 1 and 2); with
/// too few workers the rest run on registered non-EAL threads, so `-l 0`
/// works for one instance. The thread that called run() waits.

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include <keel/config.hpp>
#include <keel/result.hpp>
#include <keel/stack.hpp>

namespace keel {

class Runtime;
namespace detail {
class StackCore;
/// For keel's own layers (the LD_PRELOAD shim): instance i's core.
StackCore* runtime_core(Runtime& rt, size_t i);
}  // namespace detail

class Runtime {
 public:
  /// Initialises EAL with cfg.eal_args (unless it is already), starts the
  /// ports and builds the instances. The message names what failed.
  static Result<std::unique_ptr<Runtime>, std::string> create(const Config& cfg);
  /// Stops the instances, frees every connection and buffer the stacks hold,
  /// closes the ports and, if create() initialised EAL, cleans it up.
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  /// Runs `main` once on every instance's lcore and waits for all to return
  /// (they return when the application decides, or after stop()).
  Result<void, std::string> run(std::function<void(Stack&)> main);
  /// run() without waiting; wait() joins.
  Result<void, std::string> launch(std::function<void(Stack&)> main);
  void wait();
  /// Makes every Stack::running() false. Async-signal-safe (one atomic store):
  /// call it from a SIGINT handler.
  void stop();
  size_t instances() const;
  /// Every instance's non-zero counters, one "name value" line each, under an
  /// "instance N" heading. Safe from any thread.
  std::string stats() const;

  struct Impl;

 private:
  friend detail::StackCore* detail::runtime_core(Runtime& rt, size_t i);
  explicit Runtime(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace keel
