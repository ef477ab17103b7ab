// SPDX-License-Identifier: BSD-3-Clause
#pragma once
// keel-pmd --loopback: two stacks in one process, joined by net_ring.

#include "options.hpp"

namespace keel::pmd {

/// Runs the loopback demo; returns the process exit status (0: all verified).
int run_loopback(const Options& opts);

}  // namespace keel::pmd
