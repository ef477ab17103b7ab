// SPDX-License-Identifier: BSD-3-Clause
// keel-pmd: bring ports up, serve, look at counters, run loopback tests.
//   keel-pmd [EAL options] -- --addr 198.18.0.2/24 [--gw A.B.C.D] [--serve LIST] [--cmd "..."]... [-i]
//   keel-pmd --loopback
#include <poll.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "drivers/eal.hpp"
#include "loopback.hpp"
#include "options.hpp"
#include "services.hpp"
#include "shm/node.hpp"

namespace {

volatile std::sig_atomic_t g_signalled = 0;
void on_signal(int) { g_signalled = 1; }

// Reads one line from stdin without blocking signals out: polls in 100 ms
// steps so Ctrl-C is noticed. Returns false at EOF or on a signal.
bool read_line(std::string& line, std::string& buf) {
  for (;;) {
    if (auto nl = buf.find('\n'); nl != std::string::npos) {
      line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      return true;
    }
    if (g_signalled) return false;
    pollfd p{STDIN_FILENO, POLLIN, 0};
    int r = poll(&p, 1, 100);
    if (r < 0 && errno != EINTR) return false;
    if (r <= 0) continue;
    char chunk[4096];
    ssize_t n = read(STDIN_FILENO, chunk, sizeof chunk);
    if (n <= 0) {
      if (buf.empty()) return false;
      line = buf;
      buf.clear();
      return true;
    }
    buf.append(chunk, size_t(n));
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> eal_args{argv[0]}, own_args;
  int dashdash = -1;
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--") == 0) {
      dashdash = i;
      break;
    }
  if (dashdash < 0) {
    // No EAL part: everything is ours (keel-pmd --loopback).
    for (int i = 1; i < argc; ++i) own_args.push_back(argv[i]);
  } else {
    for (int i = 1; i < dashdash; ++i) eal_args.push_back(argv[i]);
    for (int i = dashdash + 1; i < argc; ++i) own_args.push_back(argv[i]);
  }
  for (auto& a : own_args)
    if (a == "-h" || a == "--help") {
      std::cout << keel::pmd::usage();
      return 0;
    }
  auto opts = keel::pmd::parse_options(own_args);
  if (!opts) {
    std::cerr << "keel-pmd: " << opts.error() << "\n" << keel::pmd::usage();
    return 2;
  }
  if (eal_args.size() == 1) {
    // Defaults that need no hugepages and no NIC: enough for --loopback.
    for (const char* a : {"-l", "0-1", "--no-huge", "-m", "512", "--no-pci", "--no-shconf",
                          "--log-level=pmd:warning"})
      eal_args.push_back(a);
  }
  if (auto r = keel::drivers::eal_init(eal_args); !r) {
    std::cerr << "keel-pmd: " << r.error() << "\n";
    return 1;
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  int status = 0;
  if (opts->loopback) {
    status = keel::pmd::run_loopback(*opts);
  } else {
    auto engine = keel::engine::Engine::create(opts->engine);
    if (!engine) {
      std::cerr << "keel-pmd: " << engine.error() << "\n";
      keel::drivers::eal_cleanup();
      return 1;
    }
    if (auto r = (*engine)->launch(); !r) {
      std::cerr << "keel-pmd: " << r.error() << "\n";
      return 1;
    }
    // Sessions hold the pool's mbufs: services go after the loops stop and
    // before the engine.
    auto services = std::make_unique<keel::pmd::Services>();
    if (!opts->serve.empty()) {
      services->set_tls(opts->tls);
      if (auto r = services->start(**engine, opts->serve); !r) {
        std::cerr << "keel-pmd: --serve: " << r.error() << "\n";
        (*engine)->stop();
        services.reset();
        engine->reset();
        keel::drivers::eal_cleanup();
        return 1;
      }
      std::cout << "serving";
      for (const auto& sp : opts->serve) std::cout << " " << keel::pmd::to_string(sp.kind) << ":" << sp.port;
      std::cout << "\n" << std::flush;
    }
    keel::pmd::Cli cli(**engine);
    cli.set_services(services.get());
    // The node's fast-path zone: created here when this is the primary, so
    // that native-API secondaries can open channels to each other.
    std::string shm_why;
    keel::shm::Node* node = keel::shm::Node::open(1024, 1024, !(*engine)->secondary(), shm_why);
    if (node == nullptr) std::cerr << "keel-pmd: " << shm_why << " (channels unavailable)\n";
    cli.set_node(node);
    bool go_on = true;
    for (const auto& c : opts->commands) {
      if (!(go_on = cli.execute(c, std::cout))) break;
    }
    if (go_on && (opts->interactive || opts->commands.empty() || !opts->serve.empty())) {
      std::string line, buf;
      bool prompt = opts->interactive;
      for (;;) {
        if (prompt) std::cout << "keel> " << std::flush;
        if (opts->interactive) {
          if (!read_line(line, buf) || !cli.execute(line, std::cout)) break;
        } else {
          // Serve until a signal arrives.
          pause();
          if (g_signalled) break;
        }
      }
      if (prompt) std::cout << "\n";
    }
    (*engine)->stop();
    services.reset();
    engine->reset();  // ports stopped and closed, pool freed
  }
  keel::drivers::eal_cleanup();
  return status;
}
