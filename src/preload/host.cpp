// SPDX-License-Identifier: BSD-3-Clause
// The shim's instance: configuration at load, lazy start, the progress thread,
// fork and exit.
#include "preload/host.hpp"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <rte_interrupts.h>
#include <rte_lcore.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "api/stack_core.hpp"
#include "preload/files.hpp"

namespace keel::preload {

namespace {

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "keel-preload: %s\n", why.c_str());
  std::fflush(stderr);
  _exit(1);
}

// "A.B.C.D/N,..." -> ranges; false with `why` on a bad entry.
bool parse_ranges(const char* text, std::vector<KernelRange>& out, std::string& why) {
  std::string s(text);
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t comma = s.find(',', pos);
    std::string item = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? s.size() + 1 : comma + 1;
    if (item.empty()) continue;
    auto p = Ipv4Prefix::parse(item);
    if (!p) {
      why = "KEEL_KERNEL_ADDRS: '" + item + "' is not an address/prefix";
      return false;
    }
    KernelRange r;
    r.mask = p->length == 0 ? 0 : ~uint32_t(0) << (32 - p->length);
    r.net = p->addr.value & r.mask;
    out.push_back(r);
  }
  return true;
}

}  // namespace

Host& Host::get() {
  static Host* h = new Host();  // never destroyed: wrappers may run during exit
  return *h;
}

void atfork_prepare() { Host::get().mu.lock(); }
void atfork_parent() { Host::get().mu.unlock(); }
void atfork_child() {
  Host& h = Host::get();
  if (h.core_ != nullptr) h.forked_away_ = true;
  h.mu.unlock();
}

Host::Host() {
  load_config();
  pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
  std::atexit([] { Host::get().shutdown(); });
}

void Host::load_config() {
  const char* path = std::getenv("KEEL_CONFIG");
  if (path == nullptr && std::getenv("KEEL_EAL") == nullptr && std::getenv("KEEL_ADDR") == nullptr)
    die("no configuration: set KEEL_CONFIG=FILE, or KEEL_EAL and KEEL_ADDR (see README, 'The LD_PRELOAD shim')");
  if (path != nullptr) {
    auto c = keel::load_config(path);
    if (!c) die(c.error());
    cfg_ = std::move(*c);
  }
  if (auto r = apply_env(cfg_); !r) die(r.error());
  if (cfg_.instances != 1) die("instances = " + std::to_string(cfg_.instances) + ": the shim runs one instance per process");
  if (cfg_.process == ProcessType::secondary) die("process = secondary: the shim runs a process of its own");
  if (cfg_.eal_args.empty()) die("no EAL arguments: set eal in KEEL_CONFIG's file or KEEL_EAL");
  if (auto v = validate(cfg_); !v) die(v.error());
  const char* kr = std::getenv("KEEL_KERNEL_ADDRS");
  std::string why;
  if (!parse_ranges(kr != nullptr ? kr : "127.0.0.0/8", kernel_, why)) die(why);
}

bool Host::kernel_address(uint32_t a) const {
  for (const KernelRange& r : kernel_)
    if (r.contains(a)) return true;
  return false;
}

bool Host::own_address(uint32_t a) const {
  for (const PortOptions& p : cfg_.ports)
    for (const Ipv4Prefix& x : p.addresses)
      if (x.addr.value == a) return true;
  return false;
}

uint64_t Host::now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000 + uint64_t(ts.tv_nsec);
}

bool Host::sleep_ns(uint64_t ns) {
  if (ns == 0) return false;
  timespec ts{time_t(ns / 1'000'000'000), long(ns % 1'000'000'000)};
  nanosleep(&ts, nullptr);  // EINTR: the caller sees the signal count move
  return false;
}

Host::Guard::Guard() : lk_(Host::get().mu) {
  ++InsideKeel::depth;
  Host& h = Host::get();
  if (h.started()) {
    // A thread EAL does not know gets an lcore id (its own mempool cache).
    static thread_local bool registered = false;
    if (!registered && rte_lcore_id() == LCORE_ID_ANY) rte_thread_register();
    registered = true;
    h.core_->bind_to_current_thread();
  }
}

Host::Guard::~Guard() { --InsideKeel::depth; }

void Host::start() {
  if (core_ != nullptr) return;
  if (forked_away_) return;
  // rte_eal_init pins the calling thread to the main lcore: the program's thread keeps its own CPUs.
  cpu_set_t cpus;
  const bool had = pthread_getaffinity_np(pthread_self(), sizeof cpus, &cpus) == 0;
  auto rt = Runtime::create(cfg_);
  if (had) pthread_setaffinity_np(pthread_self(), sizeof cpus, &cpus);
  if (!rt) die(rt.error());
  rt_ = std::move(*rt);
  // A misuse inside the shim is a shim bug: report it, never abort the program.
  // A stale handle is expected: an orderly-closed connection's handle dies when its
  // TIME-WAIT ends, which the shim cannot see coming; the socket then reads as ended.
  set_misuse_handler([](Errc e, const char* what) {
    if (e == Errc::bad_handle) return;
    static std::atomic<int> told{0};
    if (told.fetch_add(1) < 10) std::fprintf(stderr, "keel-preload: API misuse (%s): %s\n", std::string(to_string(e)).c_str(), what);
  });
  core_ = detail::runtime_core(*rt_, 0);
  owner_pid_ = getpid();
  // The instance's thread is the progress thread; it starts the instance first.
  if (auto r = rt_->launch([this](Stack&) { progress_loop(); }); !r) die(r.error());
  while (!progress_running_.load()) std::this_thread::sleep_for(std::chrono::microseconds(50));
  core_->bind_to_current_thread();
  // Listeners recorded before the stack ran.
  auto pending = std::move(pending_listeners);
  pending_listeners.clear();
  for (auto& w : pending)
    if (auto s = w.lock(); s && s->state == Socket::State::listening) realize_listener(*s);  // not shut down since
}

bool on_eal_thread() {
  static thread_local int cached = -1;
  if (cached >= 0) return cached != 0;
  if (!Host::get().started()) return false;
  cached = rte_thread_is_intr() ? 1 : 0;
  return cached != 0;
}

void Host::bind() {
  if (started()) core_->bind_to_current_thread();
}

void Host::poll() {
  if (!started()) return;
  core_->bind_to_current_thread();
  auto events = core_->poll(false);
  last_poll_ns_.store(now_ns(), std::memory_order_relaxed);
  for (const Event& ev : events) dispatch(ev);
}

void Host::progress_loop() {
  progress_running_.store(true);
  while (!progress_stop_.load(std::memory_order_relaxed)) {
    if (now_ns() - last_poll_ns_.load(std::memory_order_relaxed) >= 200'000) {
      std::unique_lock lk(mu, std::try_to_lock);
      if (lk.owns_lock() && !forked_away_) {
        InsideKeel inside;
        core_->bind_to_current_thread();
        poll();
      }
    }
    sleep_ns(200'000);
  }
}

void Host::shutdown() {
  if (core_ == nullptr || forked_away_ || getpid() != owner_pid_) return;
  {
    Guard g;
    // What the program wrote and never closed still goes out, as the kernel would send it.
    for (int fd : FdTable::get().fds()) {
      auto f = FdTable::get().take(fd);
      f.reset();
    }
    const uint64_t until = now_ns() + 300'000'000;
    while (now_ns() < until && core_->tcp().connections() != 0) {
      poll();
      g.lock().unlock();
      sleep_ns(1'000'000);
      g.lock().lock();
    }
  }
  progress_stop_.store(true);
  rt_->wait();
  // The Runtime is left to the exit: other threads of the program may still run.
}

}  // namespace keel::preload
