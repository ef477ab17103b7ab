// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// What a keel file descriptor names: a Socket (TCP or UDP on keel) or an
/// Epoll (an epoll instance that watches keel sockets besides kernel fds).
///
/// fd numbers. Every keel fd is a real kernel fd, so numbers never collide
/// and programs that index arrays by fd keep working: a socket's fd is the
/// kernel socket socket() created (it stays unbound and unused once keel
/// serves it), an accepted one's a fresh kernel socket, an epoll's the kernel
/// epoll instance that holds the kernel fds of its interest list.
///
/// Memory. Files are shared_ptr-owned: by the fd table (one reference per fd,
/// so dup() shares the open file description as the kernel does) and by a
/// listener's accept queue. All of them are touched only with Host::mu held,
/// and the last reference is dropped with it held (releasing a Socket closes
/// its keel connection).

#include <netinet/in.h>
#include <sys/epoll.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <keel/stack.hpp>
#include <keel/udp.hpp>

namespace keel::preload {

enum class Kind : uint8_t { none = 0, socket, epoll };

struct File {
  explicit File(Kind k) : kind(k) {}
  virtual ~File() = default;
  const Kind kind;
  bool nonblock = false;  // O_NONBLOCK of the open file description
};

struct Epoll;
struct Socket;

/// One (epoll, fd) registration.
struct EpItem {
  Epoll* ep = nullptr;
  Socket* sock = nullptr;
  int fd = -1;
  uint32_t events = 0;
  epoll_data_t data{};
  bool queued = false;    // on ep's ready list
  bool disabled = false;  // EPOLLONESHOT fired
};

/// Socket options keel keeps (some applied to the connection, all answered by getsockopt).
struct SockOptions {
  bool reuseaddr = false, reuseport = false, keepalive = false, nodelay = false;
  bool linger_on = false, broadcast = false;
  int linger_s = 0;
  int rcvbuf = 0, sndbuf = 0;                    // 0: the stack's
  int keepidle = 0, keepintvl = 0, keepcnt = 0;  // seconds / probes; 0: the stack's
  int64_t rcvtimeo_ns = -1, sndtimeo_ns = -1;    // -1: none
  int tos = 0, ttl = 64;
  std::string cc;
};

struct Socket final : File {
  enum class State : uint8_t {
    fresh,       // socket(): not yet known to be keel's
    bound,       // bind() to a keel address (or any)
    listening,   // listen(): `lst` live, or waiting for the stack to start
    connecting,  // SYN sent
    connected,   // established (or ending: peer_fin, wr_shut)
    ended,       // keel's closed event came; data before the FIN is still readable after an orderly end
    failed,      // the connect failed (so_error says why)
  };
  explicit Socket(int t) : File(Kind::socket), type(t) {}
  ~Socket() override;

  const int type;  // SOCK_STREAM or SOCK_DGRAM
  State state = State::fresh;
  bool keel = false;  // decided: keel serves it (else still undecided)
  sockaddr_in local{};  // bind()'s address (sin_family 0: none)
  int backlog = 128;
  Listener lst;
  std::deque<std::shared_ptr<Socket>> accept_q;
  Connection conn;
  UdpSocket udp;
  bool udp_connected = false;
  sockaddr_in udp_peer{};
  bool connect_pending = false;  // a non-blocking connect() answered EINPROGRESS, no connect() since
  bool peer_fin = false, wr_shut = false, rd_shut = false;
  Errc end_error = Errc::ok;
  int so_error = 0;   // SO_ERROR: taken by getsockopt or the next call that reports it
  std::string stash;  // bytes read for MSG_PEEK, served first (datagram: the one peeked at)
  bool dgram_held = false;
  SockOptions opt;
  std::vector<EpItem*> watchers;

  bool is_stream() const { return type == SOCK_STREAM; }
  /// The connection's handle still names it (an error close kills it at once).
  bool conn_live() const { return conn.valid() && !(state == State::ended && end_error != Errc::ok); }
  /// EPOLLIN/OUT/RDHUP/HUP/ERR as they are now (mu held, stack started).
  uint32_t ready_mask() const;
  /// Puts the socket's registrations on their epoll's ready lists.
  void notify();
  /// Asks the stack for a writable event once send space opens: keel reports space
  /// only when asked, and an epoll waiting for EPOLLOUT learns of it only by notify().
  void arm_writable() {
    if (state == State::connected && conn_live()) (void)conn.want_writable();
  }
};

struct Epoll final : File {
  Epoll() : File(Kind::epoll) {}
  ~Epoll() override;
  int kfd = -1;  // the kernel epoll instance (its fd number is ours)
  // Kernel fds added through us (an fd closed without EPOLL_CTL_DEL leaves the kernel's
  // set by itself, so this may be high, never low): 0 spares a syscall per look.
  int kernel_items = 0;
  // An epoll_wait with no keel item waits in the kernel; an EPOLL_CTL_ADD of a keel socket
  // from another thread wakes it through this eventfd in the kernel set (made at the first such wait).
  int wake_fd = -1;
  int kernel_waiters = 0;
  std::vector<std::unique_ptr<EpItem>> items;  // keel fds only
  std::deque<EpItem*> ready;
  EpItem* find(int fd) {
    for (auto& i : items)
      if (i->fd == fd) return i.get();
    return nullptr;
  }
  void remove(EpItem* it);
};

/// fd -> File. kind() is lock-free (every wrapped call asks it); the rest needs mu.
class FdTable {
 public:
  static constexpr int capacity = 1 << 16;
  static FdTable& get();
  Kind kind(int fd) const {
    return fd >= 0 && fd < capacity ? kinds_[fd].load(std::memory_order_acquire) : Kind::none;
  }
  std::shared_ptr<File> file(int fd) const { return kind(fd) == Kind::none ? nullptr : files_[fd]; }
  template <class T>
  std::shared_ptr<T> as(int fd) const {
    auto f = file(fd);
    return f && f->kind == (std::is_same_v<T, Socket> ? Kind::socket : Kind::epoll)
               ? std::static_pointer_cast<T>(f) : nullptr;
  }
  /// False if fd is beyond the table.
  bool put(int fd, std::shared_ptr<File> f);
  /// Removes and returns the entry (the caller drops it with mu held).
  std::shared_ptr<File> take(int fd);
  /// Every live entry (for exit).
  std::vector<int> fds() const;

 private:
  std::atomic<Kind> kinds_[capacity]{};
  std::shared_ptr<File> files_[capacity];
};

/// The options a connection takes from its socket (mu held).
void apply_socket_options(Socket& s);
/// Makes a listen() recorded before the stack ran real (mu held, stack started).
void realize_listener(Socket& s);

/// errno for an Errc.
int to_errno(Errc e);

/// Delivers one poll() event to its socket (mu held).
void dispatch(const Event& ev);

}  // namespace keel::preload
