// SPDX-License-Identifier: BSD-3-Clause
#pragma once
// keel-pmd's command interpreter: one line in, text out. Commands that need an
// instance's state run on that instance's lcore (posted), never by reading its
// memory from this thread.

#include <functional>
#include <ostream>
#include <string>

#include "engine/engine.hpp"

namespace keel::pmd {

/// Runs `fn` on `inst`'s lcore and waits for it (control path only).
/// Returns false if the instance did not run it within `timeout_ms`.
bool run_on(engine::Instance& inst, const std::function<void(engine::Instance&)>& fn,
            unsigned timeout_ms = 2000);

class Cli {
 public:
  explicit Cli(engine::Engine& engine) : engine_(engine) {}
  /// Executes one command line. Returns false when the user asked to quit.
  /// Unknown commands and bad arguments print one line starting "error:".
  bool execute(const std::string& line, std::ostream& out);

 private:
  void show_port(std::ostream& out);
  void show_stats(std::ostream& out, bool all);
  void show_arp(std::ostream& out);

  engine::Engine& engine_;
};

}  // namespace keel::pmd
