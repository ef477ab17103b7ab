// SPDX-License-Identifier: BSD-3-Clause
#pragma once
// keel-pmd's command interpreter: one line in, text out. Commands that need an
// instance's state run on that instance's lcore (posted), never by reading its
// memory from this thread.

#include <functional>
#include <iostream>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "engine/engine.hpp"

namespace keel::shm {
class Node;
}

namespace keel::pmd {

class Services;
class BenchClient;
struct BenchArgs;
struct ClientConns;
struct AsyncOut;

/// Runs `fn` on `inst`'s lcore and waits for it (control path only).
/// Returns false if the instance did not run it within `timeout_ms`.
bool run_on(engine::Instance& inst, const std::function<void(engine::Instance&)>& fn,
            unsigned timeout_ms = 2000);

class Cli {
 public:
  /// `async_out` receives what connections report on their own (data
  /// arriving, connected, closed): whole lines, written from the lcore under
  /// a lock.
  explicit Cli(engine::Engine& engine, std::ostream& async_out = std::cout);
  /// After Engine::stop(): the connections made by `connect` are gone with it.
  ~Cli();
  Cli(const Cli&) = delete;
  Cli& operator=(const Cli&) = delete;

  /// The running services, to name connections in `show conns` (may be null).
  void set_services(const Services* s) { services_ = s; }
  /// The node's fast-path zone, for `show shm` and the channels in `show conns` (may be null).
  void set_node(shm::Node* n) { node_ = n; }

  /// Executes one command line. Returns false when the user asked to quit.
  /// Unknown commands and bad arguments print one line starting "error:".
  bool execute(const std::string& line, std::ostream& out);

 private:
  void show_port(std::ostream& out);
  void show_stats(std::ostream& out, bool all);
  void show_arp(std::ostream& out);
  // conn_commands.cpp
  void show_conns(std::ostream& out);
  void show_tcp(std::ostream& out);
  void connect(const std::vector<std::string>& w, std::ostream& out);
  void send(const std::string& line, const std::vector<std::string>& w, std::ostream& out);
  void shutdown_or_close(const std::vector<std::string>& w, bool close, std::ostream& out);
  void set_tcp(const std::vector<std::string>& w, std::ostream& out);
  // bench_commands.cpp
  void stream(const std::vector<std::string>& w, std::ostream& out);
  void echotest(const std::vector<std::string>& w, std::ostream& out);
  void bench(const std::vector<std::string>& w, std::ostream& out);
  void bench_idle(const BenchArgs& a, std::ostream& out);
  // mem_commands.cpp
  void show_mem(std::ostream& out);
  // tls_commands.cpp
  void tls_get(const std::vector<std::string>& w, std::ostream& out);

  engine::Engine& engine_;
  const Services* services_ = nullptr;
  shm::Node* node_ = nullptr;
  std::shared_ptr<AsyncOut> async_out_;
  std::shared_ptr<ClientConns> clients_;  // touched only on instance 0's lcore
  std::shared_ptr<BenchClient> idle_;     // `bench idle` connections (instance 0), until closed
};

}  // namespace keel::pmd
