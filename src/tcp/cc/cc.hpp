// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// Congestion control behind one small interface (the FreeBSD cc module shape:
/// on_ack, on_congestion(signal), post_recovery, after_idle).
///
/// No allocation per connection: the per-connection state is the plain struct
/// CcVars, stored inline in the TCB; an Algorithm is a stateless singleton that
/// operates on it. The TCB owns loss detection and recovery (RFC 6675 pipe, no
/// window inflation); the algorithm only decides cwnd and ssthresh. Nothing here
/// reads a clock, allocates, locks or throws: time comes in as now_ns.
///
/// Units: cwnd, ssthresh, flight, acked and mss are bytes. Invariants kept by
/// every entry point once init() ran: mss <= cwnd <= max_cwnd, and ssthresh is
/// either infinite_ssthresh or >= 2*mss (as of the last congestion signal or
/// set_mss).

#include <cstdint>
#include <string_view>

namespace keel::tcp::cc {

/// ssthresh before the first congestion signal ("arbitrarily high", RFC 5681 3.1).
inline constexpr uint32_t infinite_ssthresh = 0xffffffffu;
/// cwnd never grows beyond this: the largest window a peer can offer (65535 << 14,
/// RFC 7323 2.3) rounded up; keeps cwnd + anything well inside uint32_t.
inline constexpr uint32_t max_cwnd = uint32_t{1} << 30;

/// RFC 9438 constants.
inline constexpr double cubic_c = 0.4;     ///< C, segments / s^3
inline constexpr double cubic_beta = 0.7;  ///< beta_cubic, multiplicative decrease
/// alpha_cubic = 3 (1 - beta) / (1 + beta): Reno-friendly additive increase (RFC 9438 4.3).
inline constexpr double cubic_alpha = 3.0 * (1.0 - cubic_beta) / (1.0 + cubic_beta);

/// CUBIC's per-connection state (RFC 9438 names). Windows are in segments, as
/// in the RFC, so a PMTU change (set_mss) needs no rescaling here.
struct CubicVars {
  double w_max = 0;         ///< W_max: window before the last reduction; 0 = none (fresh or after RTO)
  double cwnd_prior = 0;    ///< cwnd when ssthresh was last set (Reno-friendly alpha switch)
  double k = 0;             ///< K, seconds: time for W_cubic to reach origin_point
  double origin_point = 0;  ///< the plateau of W_cubic in this epoch (W_max or cwnd_epoch)
  double w_est = 0;         ///< W_est: Reno-friendly estimate
  double cwnd_frac = 0;     ///< growth in bytes not yet applied to cwnd, in [0, 1)
  uint64_t epoch_start_ns = 0;  ///< start of the current congestion-avoidance stage, if epoch_valid
  uint64_t last_ack_ns = 0;     ///< time of the last on_ack, to cut application-limited time out of t
  bool epoch_valid = false;     ///< false: the next congestion-avoidance ACK starts an epoch
};

/// Per-connection congestion state, stored inline in the TCB.
/// Set `mss` before Algorithm::init; change it later only through set_mss.
struct CcVars {
  uint32_t cwnd = 0;                       ///< bytes
  uint32_t ssthresh = infinite_ssthresh;   ///< bytes
  uint32_t mss = 536;                      ///< sender MSS in use (RFC 9293 3.7.1 default); > 0
  uint32_t bytes_acked = 0;                ///< RFC 3465 byte counter for congestion avoidance
  CubicVars cubic;
};

/// A congestion signal the TCB has detected.
enum class Signal : uint8_t {
  fast_retransmit,  ///< loss found by duplicate ACKs / SACK; the TCB enters fast recovery
  rto,              ///< retransmission timeout; call once per loss episode (see on_congestion)
  ecn,              ///< ECN-Echo received (RFC 3168 6.1.2); at most once per RTT, TCB's duty
};

/// RFC 6928 initial window: min(10*mss, max(2*mss, 14600)) bytes.
uint32_t initial_window(uint32_t mss);

/// A congestion control algorithm: stateless, shared by all connections, const.
class Algorithm {
 public:
  virtual ~Algorithm() = default;

  /// Short lower-case name, as find() accepts it.
  virtual const char* name() const = 0;

  /// Connection start: cwnd = initial_window(mss), ssthresh infinite, all
  /// algorithm state cleared. Precondition: v.mss > 0.
  virtual void init(CcVars& v, uint64_t now_ns) const;

  /// New data acknowledged, outside loss recovery. `acked` bytes newly
  /// acknowledged, `flight` bytes in flight before this ACK (RFC 6675 pipe when
  /// SACK is in use), srtt_ns the smoothed RTT (0 if unknown).
  /// Slow start below ssthresh (RFC 5681 3.1 with RFC 3465 ABC, L = 2*SMSS),
  /// congestion avoidance at or above it; crossing ssthresh stops slow start there
  /// and hands the rest of the ACK to congestion avoidance.
  /// The window only grows while it is what limits sending (RFC 7661, RFC 9438
  /// 5.8): in slow start 2*flight > cwnd, in congestion avoidance
  /// flight + mss > cwnd. So `flight` must be the value before this ACK is
  /// applied; a TCB that passes 0 never grows cwnd.
  virtual void on_ack(CcVars& v, uint32_t acked, uint32_t flight, uint64_t srtt_ns,
                      uint64_t now_ns) const = 0;

  /// Congestion signal: set ssthresh and cwnd from `flight` (bytes in flight
  /// when the signal was detected).
  ///  - fast_retransmit: cwnd = ssthresh (the TCB recovers with pipe, no inflation).
  ///  - rto: cwnd = 1*mss, the loss window (RFC 5681 3.1). Call it only for the
  ///    first timeout of a loss episode: on a repeated timeout of the same
  ///    segment ssthresh must be held (RFC 5681 eq. 4 note), so the TCB just
  ///    keeps cwnd at 1*mss without calling this again.
  ///  - ecn: cwnd = max(reduced window, 1*mss), ssthresh >= 2*mss (RFC 3168 6.1.2,
  ///    RFC 9438 4.6).
  virtual void on_congestion(CcVars& v, Signal s, uint32_t flight, uint64_t now_ns) const = 0;

  /// Leaving fast recovery with `flight` bytes still outstanding:
  /// cwnd = min(ssthresh, max(flight, mss) + mss) (RFC 6582 3.2 step 3, option 1),
  /// which avoids a burst when little is in flight.
  virtual void post_recovery(CcVars& v, uint32_t flight, uint64_t now_ns) const = 0;

  /// Sending resumes after an idle period longer than the RTO: cwnd =
  /// min(IW, cwnd) (RFC 5681 4.1 restart window), ssthresh keeps a memory of
  /// the old window (RFC 7661-style max(ssthresh, 3/4 cwnd)).
  virtual void after_idle(CcVars& v, uint64_t now_ns) const;

  /// The sender's MSS changed (PMTU): cwnd, ssthresh and bytes_acked keep their
  /// size in segments. `mss` == 0 is ignored.
  virtual void set_mss(CcVars& v, uint32_t mss) const;

 protected:
  /// Slow-start growth for one ACK (precondition cwnd < ssthresh): cwnd +=
  /// min(acked, 2*mss), not past ssthresh. Returns the bytes of `acked` left
  /// for congestion avoidance when cwnd reached ssthresh, else 0.
  static uint32_t slow_start(CcVars& v, uint32_t acked);
  /// True if cwnd, rather than the application or the peer's window, limits sending.
  static bool cwnd_limited(const CcVars& v, uint32_t flight);
  /// Clamp a computed window into [mss, max_cwnd].
  static uint32_t clamp_cwnd(uint64_t bytes, uint32_t mss);
  /// Leaving recovery, shared by NewReno and CUBIC (RFC 6582 3.2 step 3 option 1).
  static void deflate(CcVars& v, uint32_t flight);
};

/// RFC 5681 / RFC 6582 NewReno with RFC 3465 byte counting.
const Algorithm& newreno();
/// RFC 9438 CUBIC.
const Algorithm& cubic();
/// "newreno" / "cubic" -> the algorithm; nullptr for any other name.
const Algorithm* find(std::string_view name);

}  // namespace keel::tcp::cc
