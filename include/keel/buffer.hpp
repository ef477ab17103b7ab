// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// keel::Buffer: the application's handle on packet memory (an rte_mbuf chain).
///
/// Zero copy both ways. Received data reaches the application as the very
/// mbufs the port filled (headers stripped); data the application sends in
/// a Buffer it got from Stack::alloc() is what goes to the port (the stack
/// puts headers in front and keeps the mbufs until they are acknowledged).
///
///   one segment:  | headroom | data (size bytes) ........... | tailroom |
///   a chain:      segment 0 -> segment 1 -> ...   (size() is the sum)
///
/// A Buffer is move-only and frees its mbufs when destroyed or released.
/// A received Buffer still counts against its connection's receive window
/// until it is released (or sent on, which moves the bytes to the send
/// buffer): an application that holds data holds the window closed, which is
/// how a zero-copy receiver applies backpressure. Release a received Buffer
/// on the lcore that received it; from another thread the mbufs are freed and
/// the window credit goes back to the stack through its control ring.

#include <cstddef>
#include <cstdint>

#include <keel/result.hpp>

struct rte_mbuf;

namespace keel {

namespace detail {
class StackCore;
}

/// One contiguous piece of a Buffer.
struct Segment {
  uint8_t* data = nullptr;
  size_t size = 0;
};

class [[nodiscard]] Buffer {
 public:
  Buffer() = default;
  /// Takes ownership of a packet mbuf (chain) the caller owns; nullptr gives an empty Buffer.
  static Buffer adopt(rte_mbuf* m) { return Buffer(m); }
  Buffer(Buffer&& o) noexcept { take(o); }
  Buffer& operator=(Buffer&& o) noexcept {
    if (this != &o) {
      (void)release();
      take(o);
    }
    return *this;
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { (void)release(); }

  bool empty() const { return m_ == nullptr; }
  explicit operator bool() const { return m_ != nullptr; }
  /// Bytes in the whole chain (0 when empty).
  size_t size() const;
  /// Number of segments in the chain (0 when empty).
  size_t segment_count() const;
  /// Segment i (0 <= i < segment_count()); an empty Segment otherwise.
  Segment segment(size_t i) const;
  /// Calls f(Segment) for each segment in order.
  template <class F>
  void for_each_segment(F&& f) const {
    for (rte_mbuf* s = m_; s != nullptr; s = next_of(s)) f(segment_of(s));
  }
  /// Copies up to `cap` bytes starting at `offset` into dst; returns the count.
  size_t copy_to(void* dst, size_t cap, size_t offset = 0) const;
  /// Copies `len` bytes from src into the buffer starting at `offset`
  /// (the bytes must already be there: Stack::alloc() sizes the buffer).
  /// invalid_argument if the range is outside the buffer.
  Result<void> copy_from(const void* src, size_t len, size_t offset = 0);

  /// The mbuf chain, still owned by the Buffer (nullptr when empty).
  rte_mbuf* mbuf() const { return m_; }
  /// Hands the chain to the caller, who must free it; the Buffer becomes empty.
  /// A received buffer's window credit is returned to its connection now.
  rte_mbuf* release_mbuf();
  /// Frees the mbufs now. bad_handle if the buffer is already empty (a second
  /// release of the same data is caught, never a double free).
  Result<void> release();

 private:
  friend class detail::StackCore;
  explicit Buffer(rte_mbuf* m) : m_(m) {}
  void take(Buffer& o) {
    m_ = o.m_;
    owner_ = o.owner_;
    slot_ = o.slot_;
    gen_ = o.gen_;
    credit_ = o.credit_;
    o.m_ = nullptr;
    o.owner_ = nullptr;
    o.credit_ = 0;
  }
  void return_credit();
  static rte_mbuf* next_of(rte_mbuf* s);
  static Segment segment_of(rte_mbuf* s);

  rte_mbuf* m_ = nullptr;
  // Set on received buffers: the connection whose receive window `credit_` bytes hold.
  detail::StackCore* owner_ = nullptr;
  uint32_t slot_ = 0, gen_ = 0;
  uint32_t credit_ = 0;
};

}  // namespace keel
