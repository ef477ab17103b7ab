// SPDX-License-Identifier: BSD-3-Clause
// keel::Runtime: Config -> EAL + Engine, and the application's code on each
// instance's lcore.
#include <keel/runtime.hpp>

#include <rte_eal.h>
#include <rte_errno.h>

#include <sstream>

#include "api/stack_core.hpp"
#include "drivers/eal.hpp"
#include "drivers/fault_injector.hpp"
#include "engine/engine.hpp"
#include "shm/node.hpp"
#include "tcp/cc/cc.hpp"

namespace keel {

namespace {

Unexpected<std::string> error(std::string m) { return Unexpected<std::string>{std::move(m)}; }

// The engine's configuration for a validated Config.
Result<engine::EngineConfig, std::string> engine_config(const Config& cfg) {
  engine::EngineConfig e;
  e.instances = cfg.instances;
  e.pool_mbufs = cfg.pool_mbufs;
  e.idle.busy_poll = cfg.busy_poll;
  if (cfg.process != ProcessType::single) {
    e.total_instances = cfg.total_instances;
    e.first_instance = cfg.first_instance;
  }
  for (size_t i = 0; i < cfg.ports.size(); ++i) {
    const PortOptions& p = cfg.ports[i];
    engine::PortSpec s;
    s.device = p.device;
    for (const auto& a : p.addresses) s.l3.addrs.push_back(net::Ipv4Cidr{net::Ipv4Addr{a.addr.value}, a.length});
    s.l3.gateway = net::Ipv4Addr{p.gateway.value};
    s.mtu = p.mtu;
    s.use_offloads = p.offloads;
    if (!p.mac.empty()) {
      auto mac = net::MacAddr::parse(p.mac);
      if (!mac) return error("ports[" + std::to_string(i) + "].mac: '" + p.mac + "' is not a MAC address");
      s.mac = *mac;
    }
    for (auto [spec, out] : {std::pair{&p.rx_faults, &s.rx_faults}, std::pair{&p.tx_faults, &s.tx_faults}}) {
      if (spec->empty()) continue;
      auto f = drivers::FaultConfig::parse(*spec);
      if (!f) return error("ports[" + std::to_string(i) + "] faults: " + f.error());
      *out = *f;
    }
    e.ports.push_back(s);
  }
  const TcpOptions& t = cfg.tcp;
  e.tcp.max_connections = t.max_connections;
  e.tcp.snd_buf = t.send_buffer;
  e.tcp.rcv_buf = t.receive_buffer;
  e.tcp.nodelay = t.nodelay;
  e.tcp.cc = tcp::cc::find(t.congestion_control);
  if (e.tcp.cc == nullptr) return error("tcp.congestion_control: unknown '" + t.congestion_control + "'");
  e.tcp.timestamps = t.timestamps;
  e.tcp.sack = t.sack;
  e.tcp.window_scaling = t.window_scaling;
  e.tcp.keepalive_idle_ns = t.keepalive_idle_ms * 1'000'000;
  e.tcp.keepalive_interval_ns = t.keepalive_interval_ms * 1'000'000;
  e.tcp.keepalive_count = t.keepalive_count;
  e.tcp.syn_retries = t.syn_retries;
  e.tcp.min_rto_ns = t.min_rto_ms * 1'000'000;
  e.tcp.msl_ns = t.msl_ms * 1'000'000;
  e.udp.max_sockets = cfg.udp.max_sockets;
  e.udp.rcv_datagrams = cfg.udp.receive_datagrams;
  e.udp.rcv_bytes = cfg.udp.receive_bytes;
  return e;
}

}  // namespace

struct Runtime::Impl {
  bool owns_eal = false;
  std::unique_ptr<engine::Engine> engine;
  std::vector<std::unique_ptr<detail::StackCore>> cores;
  std::function<void(Stack&)> main;
};

Runtime::Runtime(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<Runtime>, std::string> Runtime::create(const Config& cfg) {
  if (auto v = validate(cfg); !v) return error(v.error());
  auto ecfg = engine_config(cfg);
  if (!ecfg) return error(ecfg.error());
  auto impl = std::make_unique<Impl>();
  if (!cfg.eal_args.empty()) {
    std::vector<std::string> args = {"keel"};
    args.insert(args.end(), cfg.eal_args.begin(), cfg.eal_args.end());
    if (auto r = drivers::eal_init(args); !r) return error("EAL: " + r.error());
    impl->owns_eal = true;
  }
  // EAL decides the role; the configuration must say the same.
  const bool eal_secondary = rte_eal_process_type() == RTE_PROC_SECONDARY;
  std::string role_error;
  if (cfg.process == ProcessType::secondary && !eal_secondary)
    role_error = "process = secondary, but EAL started as a primary (--proc-type=secondary, the primary's --file-prefix)";
  else if (cfg.process != ProcessType::secondary && eal_secondary)
    role_error = "EAL started as a secondary process: set process = secondary, total_instances and instance_range";
  if (!role_error.empty()) {
    if (impl->owns_eal) drivers::eal_cleanup();
    return error(role_error);
  }
  auto e = engine::Engine::create(*ecfg);
  if (!e) {
    if (impl->owns_eal) drivers::eal_cleanup();
    return error(e.error());
  }
  impl->engine = std::move(*e);
  shm::Node* node = nullptr;
  if (cfg.shm.enabled) {
    std::string why;
    node = shm::Node::open(cfg.shm.channels, cfg.shm.ring_slots, !eal_secondary, why);
    if (node == nullptr) {
      impl->engine.reset();
      if (impl->owns_eal) drivers::eal_cleanup();
      return error(why);
    }
  }
  for (size_t i = 0; i < impl->engine->instances().size(); ++i)
    impl->cores.push_back(std::make_unique<detail::StackCore>(
        *impl->engine->instances()[i], impl->engine->tcp(i), ecfg->idle,
        &impl->engine->stop_flag(), unsigned(impl->engine->instances().size()),
        &impl->engine->udp(i), node, cfg.shm.budget));
  return std::unique_ptr<Runtime>(new Runtime(std::move(impl)));
}

Runtime::~Runtime() {
  impl_->engine->stop();
  impl_->cores.clear();   // listeners go; connections stay with TCP until the engine frees them
  impl_->engine.reset();  // connections, frames, ports, then the pool
  if (impl_->owns_eal) drivers::eal_cleanup();
}

Result<void, std::string> Runtime::launch(std::function<void(Stack&)> main) {
  if (!main) return error("no application function");
  impl_->main = std::move(main);
  Impl* impl = impl_.get();
  return impl->engine->launch([impl](engine::Instance&, size_t i) {
    detail::StackCore& core = *impl->cores[i];
    core.bind_to_current_thread();
    Stack s(&core);
    impl->main(s);
  });
}

void Runtime::wait() { impl_->engine->wait(); }

Result<void, std::string> Runtime::run(std::function<void(Stack&)> main) {
  if (auto r = launch(std::move(main)); !r) return r;
  wait();
  return {};
}

void Runtime::stop() { impl_->engine->request_stop(); }

detail::StackCore* detail::runtime_core(Runtime& rt, size_t i) {
  return i < rt.impl_->cores.size() ? rt.impl_->cores[i].get() : nullptr;
}

size_t Runtime::instances() const { return impl_->cores.size(); }

std::string Runtime::stats() const {
  std::ostringstream out;
  auto& insts = impl_->engine->instances();
  for (size_t i = 0; i < insts.size(); ++i) {
    out << "instance " << insts[i]->id() << "\n";
    for (size_t c = 0; c < engine::counter_count; ++c)
      if (uint64_t v = insts[i]->counters().get(engine::Counter(c)); v != 0)
        out << "  " << engine::counter_name(engine::Counter(c)) << " " << v << "\n";
  }
  return out.str();
}

}  // namespace keel
