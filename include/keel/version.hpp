// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// keel's version.

namespace keel {
/// Semantic version of the library the program was compiled against.
inline constexpr const char* version = "0.1.0";
}  // namespace keel
