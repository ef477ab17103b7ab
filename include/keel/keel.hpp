// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// Umbrella header: the whole public API of keel.

#include <keel/address.hpp>
#include <keel/buffer.hpp>
#include <keel/config.hpp>
#include <keel/result.hpp>
#include <keel/runtime.hpp>
#include <keel/stack.hpp>
#include <keel/udp.hpp>
#include <keel/version.hpp>
