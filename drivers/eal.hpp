// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// EAL start-up and shutdown.

#include <string>
#include <vector>

#include <keel/result.hpp>

namespace keel::drivers {

/// Starts DPDK's EAL with `args` (argv[0] included). On failure the message
/// names what DPDK refused (rte_strerror of rte_errno).
Result<void, std::string> eal_init(const std::vector<std::string>& args);

/// Releases EAL resources (hugepage files, vdevs). Call once, after every port stopped.
void eal_cleanup();

/// Splits "a b  c" into words (for EAL arguments given as one string).
std::vector<std::string> split_words(const std::string& s);

}  // namespace keel::drivers
