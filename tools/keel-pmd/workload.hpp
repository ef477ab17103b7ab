// SPDX-License-Identifier: BSD-3-Clause
#pragma once
// The control-thread side of a client workload (traffic.hpp): start it on an
// engine's instance 0, show a live table once a second while it runs, wait
// until every connection ended or a limit was hit, then abort what is left.
// Used by the loopback demo and by the `stream` and `echotest` commands.

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include <keel/result.hpp>

#include "engine/engine.hpp"
#include "net/addresses.hpp"

namespace keel::pmd {

struct TrafficStats;

/// What to run. Stream i sends `stream_bytes` to dst:stream_port; echo
/// connection i runs `echo_rounds` round trips of `echo_size` bytes to
/// dst:echo_port, seeded with echo_seed + i.
struct WorkloadSpec {
  net::Ipv4Addr dst;
  uint16_t stream_port = 9, echo_port = 7;
  unsigned streams = 0;
  uint64_t stream_bytes = 0;
  unsigned echoes = 0;
  uint32_t echo_size = 16384, echo_rounds = 64;
  uint64_t echo_seed = 1000;
  unsigned max_seconds = 0;     ///< give up after this long (0: no limit)
  unsigned stall_seconds = 30;  ///< give up when no byte moved for this long (0: never)
};

/// How a workload went. bytes = stream bytes acknowledged + echo bytes verified.
struct WorkloadResult {
  unsigned conns = 0, done = 0, failed = 0;
  uint64_t stream_bytes = 0, echo_bytes = 0;
  uint32_t mismatches = 0;
  uint64_t retransmits = 0;  ///< during the run, summed over the counted engines
  double seconds = 0;
  bool stalled = false;      ///< gave up: no progress for stall_seconds
  bool timed_out = false;    ///< gave up: max_seconds passed

  uint64_t bytes() const { return stream_bytes + echo_bytes; }
  double gbit_per_s() const { return seconds > 0 ? double(bytes()) * 8 / 1e9 / seconds : 0; }
  /// Every connection finished, every byte acknowledged or verified.
  bool intact(const WorkloadSpec& s) const {
    return done == conns && mismatches == 0 &&
           stream_bytes == uint64_t(s.streams) * s.stream_bytes &&
           echo_bytes == uint64_t(s.echoes) * s.echo_size * s.echo_rounds;
  }
};

/// A running workload. Destroying it aborts the connections still open.
class Workload {
 public:
  /// Opens spec's connections from `client`'s instance 0; segments and
  /// retransmits are counted over `counted` (which must outlive the
  /// Workload). An error says why nothing runs (instance 0 not responding, or
  /// the first connect error: the connections opened before it are aborted).
  static Result<std::unique_ptr<Workload>, std::string> start(
      engine::Engine& client, std::vector<engine::Engine*> counted, const WorkloadSpec& spec);
  ~Workload();
  Workload(const Workload&) = delete;
  Workload& operator=(const Workload&) = delete;

  /// Prints a header and then one row a second to `out` (connections open,
  /// segments/s and retransmits over the counted engines, Gbit/s of verified
  /// bytes) until every connection ended or a limit of the spec was hit.
  /// Control thread only; call once.
  WorkloadResult wait(std::ostream& out);

  /// Aborts the connections still open (each counts as failed).
  void abort();

 private:
  Workload(engine::Engine& client, std::vector<engine::Engine*> counted, const WorkloadSpec& spec);

  engine::Engine& client_;
  std::vector<engine::Engine*> counted_;
  WorkloadSpec spec_;
  uint64_t t0_ns_ = 0, retransmits0_ = 0, segs0_ = 0;
  // Released (leaked) if instance 0 never ran abort(): its connections would
  // still write to it.
  std::unique_ptr<TrafficStats> stats_;
};

/// Sum of counter `c` over every instance of every engine in `engines`.
uint64_t counter_sum(const std::vector<engine::Engine*>& engines, engine::Counter c);

}  // namespace keel::pmd
