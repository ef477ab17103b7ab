// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// A forward cursor over a scatter list (keel::Segment span): contiguous runs
/// on the fast path, byte copies only for the few fields (header, nonce, tag)
/// that may straddle two segments.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include <keel/buffer.hpp>

namespace keel::tls {

class SegCursor {
 public:
  explicit SegCursor(std::span<const Segment> segs) : segs_(segs) { skip_empty(); }

  /// Bytes from the cursor to the end of the list.
  static size_t total(std::span<const Segment> segs) {
    size_t n = 0;
    for (const Segment& s : segs) n += s.size;
    return n;
  }
  bool at_end() const { return i_ == segs_.size(); }

  /// The contiguous run at the cursor, at most `max` bytes (empty at the end);
  /// advances past it.
  Segment take_run(size_t max) {
    if (at_end() || max == 0) return {};
    const Segment& s = segs_[i_];
    size_t n = std::min(max, s.size - off_);
    Segment r{s.data + off_, n};
    off_ += n;
    skip_empty();
    return r;
  }
  /// Copies `n` bytes out; false (cursor at the end) if fewer remain.
  bool read(uint8_t* dst, size_t n) {
    while (n > 0) {
      Segment r = take_run(n);
      if (r.size == 0) return false;
      std::memcpy(dst, r.data, r.size);
      dst += r.size;
      n -= r.size;
    }
    return true;
  }
  /// Copies `n` bytes in; false if the list ends first.
  bool write(const uint8_t* src, size_t n) {
    while (n > 0) {
      Segment r = take_run(n);
      if (r.size == 0) return false;
      std::memcpy(r.data, src, r.size);
      src += r.size;
      n -= r.size;
    }
    return true;
  }

 private:
  void skip_empty() {
    while (i_ < segs_.size() && off_ == segs_[i_].size) {
      ++i_;
      off_ = 0;
    }
  }
  std::span<const Segment> segs_;
  size_t i_ = 0, off_ = 0;
};

}  // namespace keel::tls
