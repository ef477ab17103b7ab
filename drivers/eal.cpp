// SPDX-License-Identifier: BSD-3-Clause
#include "drivers/eal.hpp"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_interrupts.h>
#include <rte_log.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <sstream>
#include <thread>

namespace keel::drivers {

namespace {
std::atomic<bool> g_intr_parked{false};

// An interrupt callback that never returns: EAL's interrupt thread stays in it, so it
// no longer reads EAL's list of interrupt sources (see eal_cleanup). The process's
// signals go to its other threads.
void park_here(void*) {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  g_intr_parked.store(true, std::memory_order_release);
  for (;;) pause();
}

// Parks EAL's interrupt thread in park_here (the callback of an eventfd of our own,
// whose source EAL keeps in malloc'd memory) and waits until it is there. False when it
// did not get there within 10 s (busy in some other callback) or nothing could be set up.
#pragma GCC diagnostic push
// rte_intr_instance_* and rte_intr_*_set are experimental in 22.11.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
bool park_interrupt_thread() {
  if (g_intr_parked.load(std::memory_order_acquire)) return true;
  if (rte_thread_is_intr()) return false;  // we are that thread: nothing else reads the list
  const int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) return false;
  rte_intr_handle* h = rte_intr_instance_alloc(RTE_INTR_INSTANCE_F_PRIVATE);
  if (h == nullptr || rte_intr_fd_set(h, fd) != 0 ||
      rte_intr_type_set(h, RTE_INTR_HANDLE_EXT) != 0 ||
      rte_intr_callback_register(h, park_here, nullptr) != 0) {
    rte_intr_instance_free(h);
    close(fd);
    return false;
  }
  rte_intr_instance_free(h);  // EAL registered a copy; the eventfd stays open for it
  const uint64_t one = 1;
  if (write(fd, &one, sizeof one) != ssize_t(sizeof one)) return false;
  for (int i = 0; i < 10000 && !g_intr_parked.load(std::memory_order_acquire); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return g_intr_parked.load(std::memory_order_acquire);
}
#pragma GCC diagnostic pop
}  // namespace

Result<void, std::string> eal_init(const std::vector<std::string>& args) {
  std::vector<std::string> copy = args;  // rte_eal_init may permute argv
  std::vector<char*> argv;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  if (rte_eal_init(int(copy.size()), argv.data()) < 0) {
    bool secondary = false;
    for (size_t i = 0; i < args.size(); ++i)
      secondary = secondary || args[i] == "--proc-type=secondary" ||
                  (args[i] == "--proc-type" && i + 1 < args.size() && args[i + 1] == "secondary");
    return Unexpected<std::string>{
        std::string("EAL initialisation failed: ") + (rte_errno != 0 ? rte_strerror(rte_errno) : "no reason given") +
        (secondary ? " (a secondary needs its primary running, with the same --file-prefix)" : "")};
  }
  return {};
}

void eal_cleanup() {
  // COMPAT(dpdk 22.11): rte_eal_cleanup leaves EAL's interrupt thread running while it
  // unmaps DPDK's memory, and some interrupt sources stay registered with their handle in
  // that memory: net_memif's listener socket (role=server) is never unregistered, not
  // even by rte_eth_dev_close. rte_eal_cleanup unregisters its alarm callback first,
  // which wakes the interrupt thread to rebuild its epoll set from every source; when
  // that thread runs late (its core busy with another process's poll loop), it reads the
  // listener's handle after the munmap: SIGSEGV at exit (exit status 139). Nothing may
  // use the interrupt thread after cleanup, so it is parked in a callback of ours first.
  if (!park_interrupt_thread())
    RTE_LOG(WARNING, EAL, "keel: the interrupt thread could not be parked before cleanup\n");
  rte_eal_cleanup();
}

std::vector<std::string> split_words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

}  // namespace keel::drivers
