// SPDX-License-Identifier: BSD-3-Clause
// keel::UdpSocket: each call resolves the handle through the StackCore, then
// calls the instance's UdpStack.
#include <keel/udp.hpp>

#include <rte_mbuf.h>

#include "api/stack_core.hpp"

namespace keel {

#define KEEL_RESOLVE_UDP(s)                              \
  if (core_ == nullptr) return fail(Errc::bad_handle);   \
  Errc why_ = Errc::ok;                                  \
  udp::UdpSocket* s = core_->udp_socket(slot_, gen_, why_); \
  if (s == nullptr) return fail(why_)

namespace {
net::Ipv4Addr internal(Ipv4Address a) { return net::Ipv4Addr{a.value}; }
}  // namespace

Result<void> UdpSocket::send_to(Buffer& b, Endpoint dst) const {
  KEEL_RESOLVE_UDP(s);
  if (b.empty()) return fail(Errc::invalid_argument);
  auto r = core_->udp().send_to(*s, b.mbuf(), internal(dst.addr), dst.port);
  if (!r && r.error() == Errc::invalid_argument) return r;  // not taken
  (void)b.release_mbuf();  // taken: sent, or freed with the error
  return r;
}

Result<size_t> UdpSocket::send_to(const void* data, size_t len, Endpoint dst) const {
  KEEL_RESOLVE_UDP(s);
  if (data == nullptr && len > 0) return fail(Errc::invalid_argument);
  if (len > max_payload) return fail(Errc::message_too_long);
  return core_->udp().send_to_copy(*s, data, len, internal(dst.addr), dst.port);
}

Result<void> UdpSocket::send(Buffer& b) const {
  KEEL_RESOLVE_UDP(s);
  if (!s->connected()) return fail(Errc::not_connected);
  return send_to(b, Endpoint{Ipv4Address{s->peer_addr().v}, s->peer_port()});
}

Result<size_t> UdpSocket::write(const void* data, size_t len) const {
  KEEL_RESOLVE_UDP(s);
  if (!s->connected()) return fail(Errc::not_connected);
  return send_to(data, len, Endpoint{Ipv4Address{s->peer_addr().v}, s->peer_port()});
}

Result<void> UdpSocket::connect(Endpoint peer) const {
  KEEL_RESOLVE_UDP(s);
  return core_->udp().connect(*s, internal(peer.addr), peer.port);
}

Result<Datagram> UdpSocket::recv() const {
  KEEL_RESOLVE_UDP(s);
  auto d = core_->udp().recv(*s);
  if (!d) return fail(Errc::would_block);
  return detail::StackCore::to_datagram(*d);
}

Result<DatagramInfo> UdpSocket::recv_copy(void* buf, size_t cap) const {
  KEEL_RESOLVE_UDP(s);
  if (buf == nullptr && cap > 0) return fail(Errc::invalid_argument);
  auto r = core_->udp().recv_copy(*s, buf, cap);
  if (!r) return fail(r.error());
  DatagramInfo i;
  i.copied = r->copied;
  i.length = r->datagram_len;
  i.truncated = r->truncated;
  i.from = Endpoint{Ipv4Address{r->src.v}, r->src_port};
  i.to = Ipv4Address{r->dst.v};
  return i;
}

Result<size_t> UdpSocket::queued() const {
  KEEL_RESOLVE_UDP(s);
  return size_t(s->queued());
}

Result<Endpoint> UdpSocket::local() const {
  KEEL_RESOLVE_UDP(s);
  return Endpoint{Ipv4Address{s->local_addr().v}, s->local_port()};
}

Result<void> UdpSocket::close() const {
  if (core_ == nullptr) return fail(Errc::bad_handle);
  return core_->udp_close(slot_, gen_);
}

Result<void> UdpSocket::set_user(uint64_t v) const {
  KEEL_RESOLVE_UDP(s);
  (void)s;
  core_->set_udp_user(slot_, v);
  return {};
}

#undef KEEL_RESOLVE_UDP

}  // namespace keel
