// SPDX-License-Identifier: BSD-3-Clause
#pragma once
// keel-pmd's command line (the part after `--`).

#include <string>
#include <vector>

#include <keel/result.hpp>

#include "engine/engine.hpp"

namespace keel::pmd {

struct Options {
  engine::EngineConfig engine;
  std::vector<std::string> commands;  ///< --cmd, run in order
  bool interactive = false;           ///< -i: prompt on stdin
  bool loopback = false;              ///< --loopback: two stacks over net_ring, no NIC
  unsigned loopback_pings = 200;
};

/// Parses keel-pmd's own arguments. An error names the offending option.
Result<Options, std::string> parse_options(const std::vector<std::string>& args);

/// The usage text.
std::string usage();

}  // namespace keel::pmd
