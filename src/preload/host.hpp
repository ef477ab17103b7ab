// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// The shim's one keel instance per process, and the lock that serialises it.
///
/// Threads. The program's threads and the shim's progress thread share one
/// instance: whoever holds `mu` owns it (Host::Guard binds the StackCore to the
/// calling thread, so the native API's thread check holds). A blocking call
/// (epoll_wait, poll, select, a blocking accept/connect/read/write) runs the
/// stack itself in the calling thread while it waits: poll, look, back off,
/// poll again, with no hand-off to another thread per packet. The progress
/// thread polls only when nobody has for a while (the program computes, sleeps
/// or blocks in a kernel call), so ACKs, retransmits and keepalives go on.
///
/// Start. The instance starts lazily, at the first call that needs it (a
/// connect, an accept, an epoll_ctl/poll/select/read on a keel socket):
/// listen() before that only records the listener. That is what lets nginx's
/// master bind and listen, fork its worker, and the worker run the stack.
/// After the stack started, a fork()ed child does not get it: its keel sockets
/// answer EBADF (close() only releases the fd), the parent keeps running it.

#include <netinet/in.h>

#include <algorithm>
#include <cerrno>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <keel/config.hpp>
#include <keel/runtime.hpp>

namespace keel::detail {
class StackCore;
}

namespace keel::preload {

struct Socket;

/// Signals caught since the program started (the shim's sigaction wrapper
/// counts them): a blocking wait that sees it move returns EINTR.
uint64_t signals_caught();
/// Whether `sig`'s handler asked for SA_RESTART.
bool signal_restarts(int sig);
/// The last signal caught.
int last_signal();

/// An address range that stays on the kernel (KEEL_KERNEL_ADDRS).
struct KernelRange {
  uint32_t net = 0, mask = 0;  // host byte order
  bool contains(uint32_t a) const { return (a & mask) == net; }
};

class Host {
 public:
  static Host& get();

  /// The configuration was read at load time (a bad one exited the program).
  const Config& config() const { return cfg_; }
  /// Addresses that go to the kernel (127.0.0.0/8 unless KEEL_KERNEL_ADDRS says otherwise).
  bool kernel_address(uint32_t host_order) const;
  /// An address of keel's ports (host byte order).
  bool own_address(uint32_t host_order) const;

  std::mutex mu;  ///< the stack, every Socket and every Epoll

  /// Holds mu and makes the calling thread the stack's owner while it is held.
  class Guard {
   public:
    Guard();
    ~Guard();
    std::unique_lock<std::mutex>& lock() { return lk_; }

   private:
    std::unique_lock<std::mutex> lk_;
    bool outer_ = false;
  };

  /// True once the instance runs in this process (and was not left behind by a fork).
  bool started() const { return core_ != nullptr && !forked_away_; }
  /// The stack belongs to the parent process (see the file comment).
  bool forked_away() const { return forked_away_; }
  /// Starts the instance if it is not running (mu held). A failure prints the
  /// reason and exits the program: there is no silent fallback to the kernel.
  void start();
  detail::StackCore& core() { return *core_; }
  /// Makes the calling thread the stack's owner again (mu held, after a relock).
  void bind();

  /// One stack iteration and its events delivered to the sockets (mu held).
  void poll();
  /// Waits (mu held, released while it backs off) until `ready()` is true
  /// (0), `timeout_ns` passed (ETIMEDOUT; < 0: none) or a signal was caught
  /// (EINTR). `kernel_wait(ns)` sleeps up to ns watching the caller's kernel
  /// fds and returns true when one is ready (nullptr: a plain sleep).
  template <class Ready, class KernelWait>
  int wait(std::unique_lock<std::mutex>& lk, Ready ready, int64_t timeout_ns, KernelWait kernel_wait);
  /// For a call that restarts after a handler with SA_RESTART (read, write,
  /// accept, connect): EINTR only for a signal without it.
  template <class Ready>
  int wait_restartable(std::unique_lock<std::mutex>& lk, Ready ready, int64_t timeout_ns) {
    for (;;) {
      int rc = wait(lk, ready, timeout_ns, [this](uint64_t ns) { return sleep_ns(ns); });
      if (rc != EINTR || !signal_restarts(last_signal())) return rc;
    }
  }

  /// Listening sockets waiting for the stack to start.
  std::vector<std::weak_ptr<Socket>> pending_listeners;
  /// Live keel listeners, to route accepted events (few; scanned).
  std::vector<Socket*> listeners;

  /// Stops the progress thread and the instance (at exit).
  void shutdown();

 private:
  Host();
  void load_config();
  void progress_loop();
  bool sleep_ns(uint64_t ns);
  static uint64_t now_ns();

  Config cfg_;
  std::vector<KernelRange> kernel_;
  std::unique_ptr<Runtime> rt_;
  detail::StackCore* core_ = nullptr;
  bool forked_away_ = false;
  pid_t owner_pid_ = 0;
  std::atomic<uint64_t> last_poll_ns_{0};
  std::atomic<bool> progress_stop_{false};
  std::atomic<bool> progress_running_{false};

  friend void atfork_child();
};


/// Sets while the shim itself calls into DPDK or libc: wrappers entered from
/// inside (a driver's socket(), readv() on the tap) go straight to libc.
struct InsideKeel {
  InsideKeel() { ++depth; }
  ~InsideKeel() { --depth; }
  static inline thread_local int depth = 0;
};

/// True on EAL's interrupt thread (cached per thread once EAL runs).
bool on_eal_thread();
/// Calls the shim must leave to libc: its own, and EAL's threads' (a driver
/// callback there must never wait for mu, which a thread waiting for that
/// callback may hold).
inline bool bypass() { return InsideKeel::depth > 0 || on_eal_thread(); }

// ----- template body -----

template <class Ready, class KernelWait>
int Host::wait(std::unique_lock<std::mutex>& lk, Ready ready, int64_t timeout_ns, KernelWait kernel_wait) {
  const uint64_t start = now_ns();
  const uint64_t deadline = timeout_ns < 0 ? UINT64_MAX : start + uint64_t(timeout_ns);
  const uint64_t sig0 = signals_caught();
  // Back-off: spin 1 ms from the start of the wait, then sleeps growing from 20 us to
  // 500 us. Nothing wakes a sleeping wait when a packet arrives, so a peer that paused
  // for more than the spin (busy with other connections, preempted) met a sleeper:
  // with 100 us, wrk against nginx both under the shim had a p99 of 0.4-1.3 ms, with
  // 1 ms 0.31 ms (docs/PERFORMANCE.md, preload). An idle wait burns at most 1 ms a call.
  uint64_t last_work = start, step = 20'000;
  for (;;) {
    poll();
    if (ready()) return 0;
    const uint64_t now = now_ns();
    if (now >= deadline) return ETIMEDOUT;
    if (signals_caught() != sig0) return EINTR;
    lk.unlock();
    bool kernel_ready = false;
    if (now - last_work < 1'000'000) {
      kernel_ready = kernel_wait(0);
      std::this_thread::yield();
    } else {
      kernel_ready = kernel_wait(std::min(step, deadline - now));
      step = std::min<uint64_t>(step * 2, 500'000);
    }
    lk.lock();
    bind();
    if (kernel_ready) return 0;
  }
}

}  // namespace keel::preload
