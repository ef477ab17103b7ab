// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// Umbrella header: the whole public API of keel.

#include <keel/result.hpp>
#include <keel/version.hpp>
