// SPDX-License-Identifier: BSD-3-Clause
// sigaction()/signal() wrappers: the program's handlers run as before, and the
// shim counts the signals, so a blocking call that runs the stack in user space
// (no syscall to interrupt) still returns EINTR when the kernel's would.
#include <signal.h>

#include <atomic>

#include "preload/host.hpp"
#include "preload/libc.hpp"

namespace keel::preload {

namespace {

struct Slot {
  struct sigaction app {};
  bool wrapped = false;
};
Slot g_slots[NSIG];
std::atomic<uint64_t> g_caught{0};
std::atomic<int> g_last{0};

void trampoline(int sig, siginfo_t* si, void* uc) {
  g_caught.fetch_add(1, std::memory_order_relaxed);
  g_last.store(sig, std::memory_order_relaxed);
  const struct sigaction& a = g_slots[sig].app;
  if (a.sa_flags & SA_SIGINFO) a.sa_sigaction(sig, si, uc);
  else if (a.sa_handler != SIG_DFL && a.sa_handler != SIG_IGN) a.sa_handler(sig);
}

bool wrappable(int sig) { return sig > 0 && sig < NSIG && sig != SIGKILL && sig != SIGSTOP; }

}  // namespace

uint64_t signals_caught() { return g_caught.load(std::memory_order_relaxed); }
int last_signal() { return g_last.load(std::memory_order_relaxed); }
bool signal_restarts(int sig) { return wrappable(sig) && (g_slots[sig].app.sa_flags & SA_RESTART) != 0; }

int wrap_sigaction(int sig, const struct sigaction* act, struct sigaction* old) {
  // DPDK's own handlers (net_tap's SIGIO, one per received frame) are not the program's:
  // counting them would make every blocking call return EINTR as frames arrive.
  if (!wrappable(sig) || bypass()) return libc().sigaction(sig, act, old);
  Slot& s = g_slots[sig];
  const bool was = s.wrapped;
  const struct sigaction prev = s.app;
  struct sigaction kold {};
  int rc;
  if (act != nullptr && !(act->sa_flags & SA_SIGINFO) && (act->sa_handler == SIG_DFL || act->sa_handler == SIG_IGN)) {
    rc = libc().sigaction(sig, act, &kold);
    if (rc == 0) s.wrapped = false;
  } else if (act != nullptr) {
    struct sigaction ours = *act;
    ours.sa_flags |= SA_SIGINFO;
    ours.sa_sigaction = trampoline;
    s.app = *act;  // before the kernel can deliver to the trampoline
    rc = libc().sigaction(sig, &ours, &kold);
    if (rc == 0) s.wrapped = true;
    else s.app = prev;
  } else {
    rc = libc().sigaction(sig, nullptr, &kold);
  }
  if (rc == 0 && old != nullptr) {
    // The program sees its own handler, never the trampoline.
    const bool kernel_has_ours = (kold.sa_flags & SA_SIGINFO) && kold.sa_sigaction == trampoline;
    *old = was && kernel_has_ours ? prev : kold;
  }
  return rc;
}

}  // namespace keel::preload

using namespace keel::preload;

extern "C" {

int sigaction(int sig, const struct sigaction* act, struct sigaction* old) { return wrap_sigaction(sig, act, old); }

// glibc's signal(): BSD semantics (SA_RESTART), through the wrapper above.
sighandler_t signal(int sig, sighandler_t handler) {
  struct sigaction act {}, old {};
  act.sa_handler = handler;
  sigemptyset(&act.sa_mask);
  if (wrappable(sig)) sigaddset(&act.sa_mask, sig);
  act.sa_flags = SA_RESTART;
  if (wrap_sigaction(sig, &act, &old) != 0) return SIG_ERR;
  return old.sa_handler;  // the union's other member for an SA_SIGINFO handler: the same address
}

}
