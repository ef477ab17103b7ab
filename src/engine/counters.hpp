// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// Per-instance counters. One writer (the owning lcore) updates them with plain
/// relaxed load+store (no locked instruction on the data path); any thread may
/// read them at any time and sees each counter whole.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace keel::engine {

enum class Counter : uint16_t {
#define KEEL_COUNTER(name, desc) name,
#include "engine/counter_list.hpp"
#undef KEEL_COUNTER
  count_
};

inline constexpr size_t counter_count = size_t(Counter::count_);

/// The counter's name as `show stats` prints it.
constexpr std::string_view counter_name(Counter c) {
  constexpr std::string_view names[] = {
#define KEEL_COUNTER(name, desc) #name,
#include "engine/counter_list.hpp"
#undef KEEL_COUNTER
  };
  return names[size_t(c)];
}

/// One line saying what the counter counts.
constexpr std::string_view counter_description(Counter c) {
  constexpr std::string_view descs[] = {
#define KEEL_COUNTER(name, desc) desc,
#include "engine/counter_list.hpp"
#undef KEEL_COUNTER
  };
  return descs[size_t(c)];
}

/// A cache-line-aligned block of counters owned by one instance.
struct alignas(64) Counters {
  std::array<std::atomic<uint64_t>, counter_count> v{};

  /// Only the owning lcore calls this.
  void inc(Counter c, uint64_t n = 1) {
    auto& a = v[size_t(c)];
    a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  /// Safe from any thread.
  uint64_t get(Counter c) const { return v[size_t(c)].load(std::memory_order_relaxed); }
};

}  // namespace keel::engine
