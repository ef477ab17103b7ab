// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// Errors as values. g++ 12 has no std::expected under -std=c++20; Result keeps
/// std::expected's member names so the code can move to it with one `using`.

#include <cassert>
#include <string_view>
#include <utility>
#include <variant>

namespace keel {

/// Every error keel reports at its API. Values never change meaning once released.
enum class Errc {
  ok = 0,
  invalid_argument,   ///< a parameter or option is malformed or out of range
  no_memory,          ///< a mempool or bounded table is exhausted
  no_device,          ///< the named port does not exist or failed to start
  not_supported,      ///< the port or build lacks the feature
  would_block,        ///< try again after the next event
  not_connected,
  already_exists,
  timed_out,
  unreachable,        ///< no route / ARP did not resolve
  io_error,           ///< a DPDK call failed; see the log line for its code
  connection_refused, ///< the peer answered the SYN with RST
  connection_reset,   ///< the peer reset an established connection
  connection_aborted, ///< this side aborted the connection
  wrong_thread,       ///< called from a thread other than the stack instance's own
  bad_handle,         ///< the handle is empty, closed, or was never valid
  message_too_long,   ///< a datagram over the largest size the protocol carries
};

/// A short, stable name for an error, for messages and logs.
constexpr std::string_view to_string(Errc e) {
  switch (e) {
    case Errc::ok: return "ok";
    case Errc::invalid_argument: return "invalid argument";
    case Errc::no_memory: return "out of memory";
    case Errc::no_device: return "no such device";
    case Errc::not_supported: return "not supported";
    case Errc::would_block: return "would block";
    case Errc::not_connected: return "not connected";
    case Errc::already_exists: return "already exists";
    case Errc::timed_out: return "timed out";
    case Errc::unreachable: return "unreachable";
    case Errc::io_error: return "I/O error";
    case Errc::connection_refused: return "connection refused";
    case Errc::connection_reset: return "connection reset by peer";
    case Errc::connection_aborted: return "connection aborted";
    case Errc::wrong_thread: return "called from the wrong thread";
    case Errc::bad_handle: return "bad handle";
    case Errc::message_too_long: return "message too long";
  }
  return "unknown error";
}

/// Wraps an error value so that Result<T, E> can be built from it unambiguously.
template <class E>
struct Unexpected {
  E error;
};
template <class E>
Unexpected(E) -> Unexpected<E>;

/// Either a value or an error, like std::expected<T, E>.
template <class T, class E = Errc>
class [[nodiscard]] Result {
 public:
  Result(T v) : v_(std::in_place_index<0>, std::move(v)) {}
  Result(Unexpected<E> u) : v_(std::in_place_index<1>, std::move(u.error)) {}

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }
  /// Precondition: has_value().
  T& value() & { assert(has_value()); return std::get<0>(v_); }
  const T& value() const& { assert(has_value()); return std::get<0>(v_); }
  T&& value() && { assert(has_value()); return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  /// Precondition: !has_value().
  const E& error() const { assert(!has_value()); return std::get<1>(v_); }
  T value_or(T alt) const { return has_value() ? std::get<0>(v_) : std::move(alt); }

 private:
  std::variant<T, E> v_;
};

/// Result of an operation that yields nothing but may fail.
template <class E>
class [[nodiscard]] Result<void, E> {
 public:
  Result() = default;
  Result(Unexpected<E> u) : err_(std::move(u.error)), ok_(false) {}
  bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const E& error() const { assert(!ok_); return err_; }

 private:
  E err_{};
  bool ok_ = true;
};

/// Shorthand: `return fail(Errc::no_memory);`
inline Unexpected<Errc> fail(Errc e) { return Unexpected<Errc>{e}; }

}  // namespace keel
