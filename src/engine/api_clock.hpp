// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// The clock an L4 stack's application calls read (input and timers get the
/// now_ns of the poll that runs them; an API call has none): engine::now_ns()
/// unless set, so a test or a cost harness that steps its own time gives the
/// stack one time line.

#include <cstdint>

namespace keel::engine {

uint64_t now_ns();  // instance.hpp

class ApiClock {
 public:
  using Fn = uint64_t (*)(void* ctx);
  /// `fn` nullptr: back to engine::now_ns().
  void set(Fn fn, void* ctx) {
    fn_ = fn;
    ctx_ = ctx;
  }
  uint64_t now() const { return fn_ != nullptr ? fn_(ctx_) : now_ns(); }

 private:
  Fn fn_ = nullptr;
  void* ctx_ = nullptr;
};

}  // namespace keel::engine
