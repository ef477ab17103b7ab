// SPDX-License-Identifier: BSD-3-Clause
#pragma once
// What every keel example does the same way, kept here so each example shows
// only its own logic:
//   - start-up: `--config FILE` (optional) then the KEEL_* environment
//     (keel::apply_env: KEEL_EAL, KEEL_ADDR, KEEL_GW, KEEL_PORT,
//     KEEL_INSTANCES), then keel::validate;
//   - SIGINT / SIGTERM -> keel::Runtime::stop(), so every instance's loop ends;
//   - ConnTable: per-connection state in a per-instance table, found again
//     through the value attached with keel::Connection::set_user.
// Public API only: copy this file along with the example you start from.

#include <keel/keel.hpp>

#include <atomic>
#include <csignal>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace examples {

/// The runtime the signal handler stops (set while run() runs).
inline std::atomic<keel::Runtime*> running_runtime{nullptr};

/// Stops every instance (their Stack::running() turns false) from a signal
/// handler; an instance's own code calls Stack::request_stop().
inline void stop_all() {
  if (keel::Runtime* rt = running_runtime.load()) rt->stop();
}

/// Set by `--stats`: run() prints every instance's non-zero counters at exit.
inline bool print_stats = false;

/// True for exactly one instance of this process, the first to ask: the one
/// that runs a client's connection while the others keep their queues
/// serviced. (Stack::id() is the global instance id, which in a multi-process
/// secondary does not start at 0.)
inline bool first_to_ask() {
  static std::atomic<bool> taken{false};
  return !taken.exchange(true);
}

/// The configuration from `--config FILE` (taken out of `args`) and the
/// environment, validated; `--stats` is taken out of `args` too. Prints the problem to stderr and returns nullopt
/// when something is wrong, so the caller can exit non-zero at once.
/// `-h` / `--help` prints `usage` and exits with status 0.
inline std::optional<keel::Config> configure(std::vector<std::string>& args, const char* usage) {
  for (const auto& a : args)
    if (a == "-h" || a == "--help") {
      std::printf("%s\n", usage);
      std::exit(0);
    }
  if (std::erase(args, "--stats") > 0) print_stats = true;
  keel::Config cfg;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] != "--config") continue;
    if (i + 1 == args.size()) {
      std::fprintf(stderr, "--config needs a file name\n");
      return std::nullopt;
    }
    auto loaded = keel::load_config(args[i + 1]);
    if (!loaded) {
      std::fprintf(stderr, "%s\n", loaded.error().c_str());
      return std::nullopt;
    }
    cfg = std::move(*loaded);
    args.erase(args.begin() + long(i), args.begin() + long(i) + 2);
    break;
  }
  if (auto env = keel::apply_env(cfg); !env) {
    std::fprintf(stderr, "%s\n", env.error().c_str());
    return std::nullopt;
  }
  if (auto ok = keel::validate(cfg); !ok) {
    std::fprintf(stderr, "configuration: %s (use --config FILE or KEEL_EAL/KEEL_ADDR)\n",
                 ok.error().c_str());
    return std::nullopt;
  }
  return cfg;
}

/// A decimal number with an optional k/M/G suffix (powers of 1024), nullopt
/// if `s` is anything else.
inline std::optional<uint64_t> parse_size(const std::string& s) {
  if (s.empty() || s[0] < '0' || s[0] > '9') return std::nullopt;
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (errno != 0) return std::nullopt;
  std::string_view unit(end);
  int shift = unit == "" ? 0 : unit == "k" ? 10 : unit == "M" ? 20 : unit == "G" ? 30 : -1;
  if (shift < 0 || v > (~0ull >> shift)) return std::nullopt;
  return uint64_t(v) << shift;
}

/// A port number 1..65535, 0 if `s` is not one.
inline uint16_t parse_port(const std::string& s) {
  auto v = parse_size(s);
  return v && *v <= 65535 && s.find_first_not_of("0123456789") == std::string::npos ? uint16_t(*v) : 0;
}

/// An IPv4 address and a port from two arguments; nullopt if either is bad.
inline std::optional<keel::Endpoint> parse_endpoint(const std::string& addr, const std::string& port) {
  auto a = keel::Ipv4Address::parse(addr);
  uint16_t p = parse_port(port);
  if (!a || p == 0) return std::nullopt;
  return keel::Endpoint{*a, p};
}

/// The program's arguments after argv[0], as strings.
inline std::vector<std::string> arguments(int argc, char** argv) { return {argv + 1, argv + argc}; }

/// Starts the runtime, runs `main` on every instance until they return (or
/// SIGINT / SIGTERM stops them) and returns the process exit status: 0, or 1
/// if the runtime could not start.
inline int run(const keel::Config& cfg, std::function<void(keel::Stack&)> main) {
  auto rt = keel::Runtime::create(cfg);
  if (!rt) {
    std::fprintf(stderr, "keel: %s\n", rt.error().c_str());
    return 1;
  }
  running_runtime = rt->get();
  std::signal(SIGINT, [](int) { stop_all(); });
  std::signal(SIGTERM, [](int) { stop_all(); });
  auto r = (*rt)->run(std::move(main));
  running_runtime = nullptr;
  if (print_stats) std::fprintf(stderr, "%s", (*rt)->stats().c_str());
  if (!r) {
    std::fprintf(stderr, "keel: %s\n", r.error().c_str());
    return 1;
  }
  return 0;
}

/// Listens on `port` on every address of this instance. Instance 0 prints
/// "NAME: listening on port P (N instances)" once it listens (scripts wait
/// for that line). On failure it prints why, stops every instance and
/// returns an invalid Listener. (In a multi-process group the process's first
/// instance to listen prints it, with its instance id.)
inline keel::Listener listen(keel::Stack& stack, const char* name, uint16_t port,
                             const keel::ListenOptions& opt = {}) {
  auto l = stack.listen({keel::Ipv4Address::any(), port}, opt);
  if (!l) {
    std::fprintf(stderr, "%s: listen on port %u: %s\n", name, port, std::string(keel::to_string(l.error())).c_str());
    stack.request_stop();
    return {};
  }
  static std::atomic<bool> announced{false};
  if (!announced.exchange(true)) {
    std::printf("%s: listening on port %u (%u instances, first %u)\n", name, port, stack.instances(), stack.id());
    std::fflush(stdout);
  }
  return *l;
}

/// main() of a server that takes one optional argument, its port: the
/// configuration, then `serve(stack, port)` on every instance.
inline int server_main(int argc, char** argv, const char* usage, uint16_t default_port,
                       void (*serve)(keel::Stack&, uint16_t)) {
  auto args = arguments(argc, argv);
  auto cfg = configure(args, usage);
  if (!cfg) return 1;
  uint16_t port = args.empty() ? default_port : parse_port(args[0]);
  if (port == 0 || args.size() > 1) {
    std::fprintf(stderr, "%s\n", usage);
    return 2;
  }
  return run(*cfg, [port, serve](keel::Stack& s) { serve(s, port); });
}

/// Per-connection state of type T for one instance, under an id that is
/// stored as the connection's user value (keel::Connection::set_user), so
/// every later Event names its state in O(1) through Event::user. Ids start
/// at 1 (0, a user value never set, means "none"); entries are recycled and
/// a reference stays valid until its entry is detached.
///
///     uint64_t id = table.id_of(ev);   // attaches a fresh State on event::accepted
///     if (State* st = table.at(id)) ...
template <class T>
class ConnTable {
 public:
  /// A fresh T for `c`; returns its id, 0 if the handle is already dead.
  uint64_t attach(keel::Connection c) {
    size_t i;
    if (!free_.empty()) {
      i = free_.back();
      free_.pop_back();
    } else {
      i = items_.size();
      items_.emplace_back();
    }
    if (!c.set_user(i + 1)) {
      free_.push_back(i);
      return 0;
    }
    ++live_;
    return i + 1;
  }
  /// The id of an event's connection: a fresh entry's if the event is its
  /// event::accepted, otherwise the one its user value names (0: none).
  uint64_t id_of(const keel::Event& ev) {
    return ev.has(keel::event::accepted) ? attach(ev.conn) : ev.user;
  }
  /// The state under `id`, nullptr for 0.
  T* at(uint64_t id) { return id == 0 || id > items_.size() ? nullptr : &items_[id - 1]; }
  /// Gives the entry back (its T is reset at once, freeing what it holds);
  /// call it when the connection closes, by our close() or an event::closed.
  void detach(uint64_t id) {
    if (at(id) == nullptr) return;
    items_[id - 1] = T{};
    free_.push_back(id - 1);
    --live_;
  }
  size_t live() const { return live_; }

 private:
  std::deque<T> items_;
  std::vector<size_t> free_;
  size_t live_ = 0;
};

}  // namespace examples
