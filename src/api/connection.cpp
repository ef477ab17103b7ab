// SPDX-License-Identifier: BSD-3-Clause
// keel::Connection and keel::Listener: each call resolves the handle (thread,
// incarnation) through the StackCore, then calls TCP.
#include <rte_mbuf.h>

#include "api/stack_core.hpp"
#include "tcp/cc/cc.hpp"

namespace keel {

using detail::StackCore;

namespace {
// State names as `ss` prints them.
const char* state_name(tcp::TcpState s) {
  switch (s) {
    case tcp::TcpState::closed: return "closed";
    case tcp::TcpState::listen: return "listen";
    case tcp::TcpState::syn_sent: return "syn-sent";
    case tcp::TcpState::syn_received: return "syn-recv";
    case tcp::TcpState::established: return "established";
    case tcp::TcpState::fin_wait_1: return "fin-wait-1";
    case tcp::TcpState::fin_wait_2: return "fin-wait-2";
    case tcp::TcpState::close_wait: return "close-wait";
    case tcp::TcpState::closing: return "closing";
    case tcp::TcpState::last_ack: return "last-ack";
    case tcp::TcpState::time_wait: return "time-wait";
  }
  return "unknown";
}
}  // namespace

// Resolves the handle into `c`, or returns why it does not resolve (the
// wrong thread, or a connection that is gone).
#define KEEL_RESOLVE_AS(c, report_stale)                      \
  if (core_ == nullptr) return fail(Errc::bad_handle);        \
  Errc why_ = Errc::ok;                                       \
  tcp::Tcb* c = core_->conn(slot_, gen_, why_, report_stale); \
  if (c == nullptr) return fail(why_)
#define KEEL_RESOLVE(c) KEEL_RESOLVE_AS(c, true)
// A channel handle (the intra-node fast path) goes to its ChannelTable.
#define KEEL_CHANNEL(call)                                                \
  if (core_ != nullptr && detail::ChannelTable::is_channel(slot_)) {      \
    detail::ChannelTable* t_ = core_->channels();                         \
    if (t_ == nullptr) return fail(Errc::bad_handle);                     \
    return t_->call;                                                      \
  }

Result<void> Connection::send(Buffer& b) const {
  KEEL_CHANNEL(send(slot_, gen_, b));
  KEEL_RESOLVE(c);
  if (b.empty()) return fail(Errc::invalid_argument);
  auto r = core_->tcp().send(*c, b.mbuf());
  if (!r) return fail(r.error());
  (void)b.release_mbuf();  // the stack has it now; received bytes leave the window
  return {};
}

Result<size_t> Connection::write(const void* data, size_t len) const {
  KEEL_CHANNEL(write(slot_, gen_, data, len));
  KEEL_RESOLVE(c);
  if (len == 0) return size_t(0);
  if (data == nullptr) return fail(Errc::invalid_argument);
  return core_->tcp().send_copy(*c, data, len);
}

Result<Buffer> Connection::recv() const {
  KEEL_CHANNEL(recv(slot_, gen_));
  KEEL_RESOLVE(c);
  Buffer b = core_->take_received(*c);
  if (!b.empty() || c->fin_received) return b;  // empty after FIN: end of stream
  return fail(Errc::would_block);
}

Result<size_t> Connection::read(void* dst, size_t cap) const {
  KEEL_CHANNEL(read(slot_, gen_, dst, cap));
  KEEL_RESOLVE(c);
  if (cap == 0) return size_t(0);
  if (dst == nullptr) return fail(Errc::invalid_argument);
  size_t n = core_->tcp().recv_copy(*c, dst, cap);
  if (n == 0 && !c->fin_received) return fail(Errc::would_block);
  return n;
}

Result<size_t> Connection::readable_bytes() const {
  KEEL_CHANNEL(readable_bytes(slot_, gen_));
  KEEL_RESOLVE(c);
  return size_t(c->rcvq.size());
}

Result<size_t> Connection::send_space() const {
  KEEL_CHANNEL(send_space(slot_, gen_));
  KEEL_RESOLVE(c);
  return size_t(core_->tcp().send_space(*c));
}

Result<void> Connection::want_writable() const {
  KEEL_CHANNEL(want_writable(slot_, gen_));
  KEEL_RESOLVE(c);
  core_->tcp().want_writable(*c);
  return {};
}

Result<void> Connection::shutdown() const {
  KEEL_CHANNEL(shutdown(slot_, gen_));
  KEEL_RESOLVE(c);
  return core_->tcp().shutdown(*c);
}

Result<void> Connection::close() const {
  KEEL_CHANNEL(close(slot_, gen_, false));
  KEEL_RESOLVE_AS(c, false);  // after the closed event: quietly bad_handle
  core_->forget(slot_, gen_);
  core_->tcp().close(*c);
  return {};
}

Result<void> Connection::abort() const {
  KEEL_CHANNEL(close(slot_, gen_, true));
  KEEL_RESOLVE_AS(c, false);
  core_->forget(slot_, gen_);
  core_->tcp().abort(*c);
  return {};
}

Result<void> Connection::set_nodelay(bool on) const {
  KEEL_CHANNEL(check(slot_, gen_));
  KEEL_RESOLVE(c);
  core_->tcp().set_nodelay(*c, on);
  return {};
}

Result<void> Connection::set_keepalive(bool on) const {
  KEEL_CHANNEL(check(slot_, gen_));
  KEEL_RESOLVE(c);
  core_->tcp().set_keepalive(*c, on);
  return {};
}

Result<void> Connection::set_keepalive_timing(uint32_t idle_ms, uint32_t interval_ms, uint8_t count) const {
  KEEL_CHANNEL(check(slot_, gen_));
  KEEL_RESOLVE(c);
  if (idle_ms > 32'767'000 || interval_ms > 32'767'000 || count > 127) return fail(Errc::invalid_argument);
  c->keepalive_idle_ns = uint64_t(idle_ms) * 1'000'000;
  c->keepalive_interval_ns = uint64_t(interval_ms) * 1'000'000;
  c->keepalive_count = count;
  // An armed timer keeps its old deadline; re-arming picks the new idle time up.
  if (c->keepalive) core_->tcp().set_keepalive(*c, true);
  return {};
}

Result<void> Connection::set_congestion_control(std::string_view name) const {
  if (detail::ChannelTable::is_channel(slot_) && tcp::cc::find(name) == nullptr) return fail(Errc::invalid_argument);
  KEEL_CHANNEL(check(slot_, gen_));
  KEEL_RESOLVE(c);
  const tcp::cc::Algorithm* a = tcp::cc::find(name);
  if (a == nullptr) return fail(Errc::invalid_argument);
  core_->tcp().set_cc(*c, *a);
  return {};
}

Result<void> Connection::set_send_buffer(uint32_t bytes) const {
  KEEL_CHANNEL(set_send_buffer(slot_, gen_, bytes));
  KEEL_RESOLVE(c);
  if (bytes == 0) return fail(Errc::invalid_argument);
  c->snd_buf = std::max<uint32_t>(bytes, c->mss);
  return {};
}

Result<void> Connection::set_receive_buffer(uint32_t bytes) const {
  KEEL_CHANNEL(check(slot_, gen_));
  KEEL_RESOLVE(c);
  if (bytes == 0) return fail(Errc::invalid_argument);
  // The window scale was fixed at the SYN: the advertised window is capped by
  // it (rcv_window), and it never shrinks below what was already offered.
  c->rcv_buf = std::max<uint32_t>(bytes, c->mss);
  return {};
}

Result<Endpoint> Connection::local() const {
  KEEL_CHANNEL(local(slot_, gen_));
  KEEL_RESOLVE(c);
  return Endpoint{Ipv4Address{c->key.local_ip}, c->key.local_port};
}

Result<Endpoint> Connection::peer() const {
  KEEL_CHANNEL(peer(slot_, gen_));
  KEEL_RESOLVE(c);
  return Endpoint{Ipv4Address{c->key.remote_ip}, c->key.remote_port};
}

Result<ConnectionInfo> Connection::info() const {
  KEEL_CHANNEL(info(slot_, gen_));
  KEEL_RESOLVE(c);
  tcp::ConnInfo t = core_->tcp().info(*c);
  ConnectionInfo i;
  i.state = state_name(t.state);
  i.cc = t.cc;
  i.mss = t.mss;
  i.cwnd = t.cwnd;
  i.ssthresh = t.ssthresh;
  i.srtt_us = t.srtt_us;
  i.rto_us = t.rto_us;
  i.send_queued = t.snd_queue;
  i.receive_queued = t.rcv_queue;
  i.receive_held = c->app_held;
  i.retransmits = t.total_retransmits;
  i.bytes_acked = t.bytes_acked;
  i.bytes_received = t.bytes_received;
  return i;
}

Result<void> Connection::set_user(uint64_t v) const {
  KEEL_CHANNEL(set_user(slot_, gen_, v));
  KEEL_RESOLVE(c);
  (void)c;
  core_->user_of(slot_) = v;
  return {};
}

uint64_t Connection::user() const {
  if (core_ == nullptr) return 0;
  if (detail::ChannelTable::is_channel(slot_)) return core_->channels() ? core_->channels()->user(slot_, gen_) : 0;
  Errc why = Errc::ok;
  return core_->conn(slot_, gen_, why) != nullptr ? core_->user_of(slot_) : 0;
}

Result<bool> Connection::is_channel() const {
  if (core_ == nullptr) return fail(Errc::bad_handle);
  if (detail::ChannelTable::is_channel(slot_)) {
    detail::ChannelTable* t = core_->channels();
    if (t == nullptr) return fail(Errc::bad_handle);
    if (auto r = t->check(slot_, gen_); !r) return fail(r.error());
    return true;
  }
  KEEL_RESOLVE(c);
  (void)c;
  return false;
}

#undef KEEL_CHANNEL
#undef KEEL_RESOLVE
#undef KEEL_RESOLVE_AS

Result<void> Listener::close() const {
  if (core_ == nullptr) return fail(Errc::bad_handle);
  return core_->close_listener(slot_, gen_);
}

Result<Endpoint> Listener::local() const {
  if (core_ == nullptr) return fail(Errc::bad_handle);
  Errc why = Errc::ok;
  const tcp::Listener* l = core_->listener(slot_, gen_, why);
  if (l == nullptr) return fail(why);
  return Endpoint{Ipv4Address{l->addr.v}, l->port};
}

Result<uint64_t> Listener::accepted() const {
  if (core_ == nullptr) return fail(Errc::bad_handle);
  Errc why = Errc::ok;
  const tcp::Listener* l = core_->listener(slot_, gen_, why);
  if (l == nullptr) return fail(why);
  return l->accepted;
}

}  // namespace keel
