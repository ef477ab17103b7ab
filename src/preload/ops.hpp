// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// Helpers shared by the wrappers: errno returns, address conversion, the
/// socket a wrapped call is about, and the data path (stream and datagram).

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <memory>

#include "preload/files.hpp"
#include "preload/host.hpp"

namespace keel::preload {

inline int fail(int e) {
  errno = e;
  return -1;
}

/// A call the shim leaves to libc: a kernel fd, or the shim itself calling.
inline bool passthrough(int fd) { return FdTable::get().kind(fd) == Kind::none || bypass(); }

inline Endpoint to_endpoint(const sockaddr_in& a) {
  return Endpoint{Ipv4Address{ntohl(a.sin_addr.s_addr)}, ntohs(a.sin_port)};
}
inline sockaddr_in to_sockaddr(Endpoint e) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(e.addr.value);
  a.sin_port = htons(e.port);
  return a;
}
/// Copies `a` out as getsockname() does (truncating to *len, which gets the full size).
void copy_out(const sockaddr_in& a, sockaddr* out, socklen_t* len);

/// Makes `s` the kernel's for good (its fd was a kernel socket all along):
/// removes it from the table; a recorded bind is applied to the kernel socket.
int release_to_kernel(int fd, Socket& s);

/// Stream data path (mu held through g; may wait). Returns bytes or -1/errno;
/// `sigpipe` is set when the caller must raise SIGPIPE after releasing mu.
ssize_t stream_recv(Host::Guard& g, Socket& s, void* buf, size_t n, int flags);
ssize_t stream_send(Host::Guard& g, Socket& s, const void* buf, size_t n, int flags, bool& sigpipe);
ssize_t stream_recv_iov(Host::Guard& g, Socket& s, const iovec* iov, int cnt, int flags);
ssize_t stream_send_iov(Host::Guard& g, Socket& s, const iovec* iov, int cnt, int flags, bool& sigpipe);
/// Datagram data path.
ssize_t dgram_recv(Host::Guard& g, Socket& s, const iovec* iov, int cnt, int flags, sockaddr* from,
                   socklen_t* fromlen, int* msg_flags);
ssize_t dgram_send(Host::Guard& g, int fd, Socket& s, const iovec* iov, int cnt, int flags,
                   const sockaddr* to, socklen_t tolen);
/// Makes a datagram socket keel's and binds it on keel (any address, port 0 if unbound).
int dgram_ensure_bound(Socket& s);

}  // namespace keel::preload
