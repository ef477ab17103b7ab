// SPDX-License-Identifier: BSD-3-Clause
#pragma once
// keel-pmd's command line (the part after `--`).

#include <string>
#include <vector>

#include <keel/result.hpp>

#include "engine/engine.hpp"
#include "services.hpp"

namespace keel::pmd {

struct Options {
  engine::EngineConfig engine;
  std::vector<std::string> commands;  ///< --cmd, run in order
  std::vector<ServiceSpec> serve;     ///< --serve: TCP test services on every instance
  tls::ContextOptions tls;            ///< --cert, --key, --client-ca: the https service's TLS
  bool interactive = false;           ///< -i: prompt on stdin
  bool loopback = false;              ///< --loopback: two stacks over net_ring, no NIC
  unsigned loopback_pings = 200;
  // The loopback demo's TCP workload.
  unsigned loopback_streams = 2;            ///< --streams: bulk connections into discard
  uint64_t loopback_bytes = 256ull << 20;   ///< --bytes: per stream
  unsigned loopback_echoes = 8;             ///< --echoes: echo connections
  uint32_t loopback_echo_size = 16384;      ///< --echo-size: bytes per round trip
  uint32_t loopback_echo_rounds = 64;       ///< --echo-rounds
  unsigned loopback_seconds = 120;          ///< --seconds: give up after this long
};

/// Parses keel-pmd's own arguments. An error names the offending option.
Result<Options, std::string> parse_options(const std::vector<std::string>& args);

/// The usage text.
std::string usage();

}  // namespace keel::pmd
