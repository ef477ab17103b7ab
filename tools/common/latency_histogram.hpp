// SPDX-License-Identifier: BSD-3-Clause
#pragma once
// A log-linear latency histogram (the HdrHistogram idea, fixed precision):
// values in nanoseconds fall into 64 sub-buckets per power of two, so any
// percentile is reported within 1/64 (1.6%) of the true value, from 1 ns up
// to 2^40 ns (18 minutes), in 40 * 64 counters (20 KiB). Recording is a few
// instructions and never allocates: fit for a data path. Shared by keel-pmd's
// bench commands and perf/'s kernel benchmark tool so both report alike.

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>

namespace keel::tools {

class LatencyHistogram {
 public:
  static constexpr unsigned sub_bits = 6;  // 64 sub-buckets per power of two
  static constexpr unsigned max_log = 40;  // values >= 2^40 ns count in the top bucket

  void record(uint64_t ns) {
    ++counts_[index(ns)];
    ++total_;
    max_ = std::max(max_, ns);
    min_ = std::min(min_, ns);
    sum_ += ns;
  }

  void merge(const LatencyHistogram& o) {
    for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
    total_ += o.total_;
    max_ = std::max(max_, o.max_);
    min_ = std::min(min_, o.min_);
    sum_ += o.sum_;
  }

  void reset() { *this = LatencyHistogram{}; }

  uint64_t count() const { return total_; }
  uint64_t max() const { return total_ ? max_ : 0; }
  uint64_t min() const { return total_ ? min_ : 0; }
  double mean() const { return total_ ? double(sum_) / double(total_) : 0; }

  /// The value at quantile q (0..1): the midpoint of the bucket holding the
  /// ceil(q * count)-th smallest sample, clamped to [min, max]. 0 when empty.
  uint64_t quantile(double q) const {
    if (total_ == 0) return 0;
    uint64_t rank = uint64_t(q * double(total_) + 0.999999);
    rank = std::clamp<uint64_t>(rank, 1, total_);
    uint64_t seen = 0;
    for (size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::clamp(midpoint(i), min_, max_);
    }
    return max_;
  }

 private:
  static constexpr size_t buckets = (max_log - sub_bits + 1) << sub_bits;

  // Values below 2^sub_bits map one to one; above, the top sub_bits bits after
  // the leading one pick the sub-bucket of the value's power of two.
  static size_t index(uint64_t v) {
    if (v < (uint64_t(1) << sub_bits)) return size_t(v);
    unsigned log = 63 - unsigned(std::countl_zero(v));  // >= sub_bits
    if (log >= max_log) return buckets - 1;
    unsigned shift = log - sub_bits;
    return (size_t(shift + 1) << sub_bits) + size_t((v >> shift) & ((1u << sub_bits) - 1));
  }

  static uint64_t midpoint(size_t i) {
    if (i < (size_t(1) << sub_bits)) return i;
    unsigned shift = unsigned(i >> sub_bits) - 1;
    uint64_t lo = (uint64_t((i & ((1u << sub_bits) - 1)) | (1u << sub_bits))) << shift;
    return lo + ((uint64_t(1) << shift) >> 1);
  }

  std::array<uint64_t, buckets> counts_{};
  uint64_t total_ = 0, max_ = 0, min_ = UINT64_MAX, sum_ = 0;
};

}  // namespace keel::tools
