// SPDX-License-Identifier: BSD-3-Clause
#include "engine/engine.hpp"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

namespace keel::engine {

namespace {
Unexpected<std::string> error(std::string msg) { return Unexpected<std::string>{std::move(msg)}; }

// Slots of a steering or TX hand-off ring: two RX bursts from each of 64 instances.
constexpr unsigned steer_ring_size = 4096;

rte_ring* make_ring(const char* what, unsigned flags) {
  static std::atomic<unsigned> serial{0};
  std::string name = std::string("keel_") + what + "_" + std::to_string(serial++);
  return rte_ring_create(name.c_str(), steer_ring_size, int(rte_socket_id()), flags);
}
}  // namespace

Result<std::unique_ptr<Engine>, std::string> Engine::create(const EngineConfig& cfg) {
  if (cfg.ports.empty()) return error("no port configured");
  if (cfg.instances == 0) return error("instances must be at least 1");
  std::unique_ptr<Engine> e(new Engine);
  e->cfg_ = cfg;
  static std::atomic<unsigned> serial{0};
  std::string pool_name = "keel_pool_" + std::to_string(serial++);
  e->pool_ = rte_pktmbuf_pool_create(pool_name.c_str(), cfg.pool_mbufs, 256, 0,
                                     RTE_MBUF_DEFAULT_BUF_SIZE, int(rte_socket_id()));
  if (e->pool_ == nullptr)
    return error("mbuf pool of " + std::to_string(cfg.pool_mbufs) +
                 " mbufs: " + rte_strerror(rte_errno) + " (more memory: -m or hugepages)");

  for (const auto& spec : cfg.ports) {
    if (spec.l3.addrs.empty()) return error("port " + spec.device + ": no address");
    auto id = drivers::Port::find(spec.device);
    if (!id) return error(id.error());
    drivers::PortConfig pc;
    pc.queues = cfg.instances;
    pc.fewer_queues_ok = true;  // software steering covers the rest
    pc.mtu = spec.mtu;
    pc.use_offloads = spec.use_offloads;
    pc.mac = spec.mac;
    auto port = drivers::Port::start(*id, pc, e->pool_);
    if (!port) return error(port.error());
    e->ports_.push_back(*port);
  }

  if (cfg.instances > 1)
    if (auto r = e->create_steering(); !r) return error(r.error());

  for (uint16_t i = 0; i < cfg.instances; ++i) {
    InstanceConfig ic = cfg.instance;
    ic.id = i;
    auto inst = std::make_unique<Instance>(ic, now_ns());
    for (size_t p = 0; p < e->ports_.size(); ++p) {
      const uint16_t queues = e->ports_[p].queues();
      const uint16_t q = uint16_t(i % queues);
      Interface& ifc = inst->add_interface(e->ports_[p], q, cfg.ports[p].l3, e->pool_);
      ifc.queue.set_faults(&cfg.ports[p].rx_faults, &cfg.ports[p].tx_faults);
      if (queues < cfg.instances) {
        if (i < queues) ifc.queue.set_tx_inbox(e->tx_rings_[p][q]);
        else ifc.queue.set_tx_handoff(e->tx_rings_[p][q]);
      }
    }
    if (e->steering_) inst->set_steering(e->steering_.get(), e->steer_rings_);
    e->tcp_.push_back(std::make_unique<tcp::TcpStack>(*inst, cfg.tcp));
    e->udp_.push_back(std::make_unique<udp::UdpStack>(*inst, cfg.udp));
    e->instances_.push_back(std::move(inst));
  }
  return e;
}

Result<void, std::string> Engine::create_steering() {
  // The software table agrees with the first port whose RETA we programmed; a
  // port with another RETA size (or fewer queues) is corrected in software.
  uint16_t reta = FlowSteering::software_reta_size;
  for (const auto& p : ports_)
    if (p.caps().rss) {
      reta = p.reta_size();
      break;
    }
  steering_ = std::make_unique<FlowSteering>(cfg_.instances, reta);
  for (uint16_t i = 0; i < cfg_.instances; ++i) {
    steer_rings_.push_back(make_ring("steer", RING_F_SC_DEQ));
    if (steer_rings_.back() == nullptr)
      return error(std::string("steering ring: ") + rte_strerror(rte_errno));
  }
  tx_rings_.resize(ports_.size());
  for (size_t p = 0; p < ports_.size(); ++p)
    if (ports_[p].queues() < cfg_.instances)
      for (uint16_t q = 0; q < ports_[p].queues(); ++q) {
        tx_rings_[p].push_back(make_ring("txh", RING_F_SC_DEQ));
        if (tx_rings_[p].back() == nullptr)
          return error(std::string("TX hand-off ring: ") + rte_strerror(rte_errno));
      }
  return {};
}

void Engine::free_rings() {
  for (rte_ring* r : steer_rings_) {
    Instance::free_steered(r);
    rte_ring_free(r);
  }
  steer_rings_.clear();
  for (auto& per_port : tx_rings_)
    for (rte_ring* r : per_port) {
      void* m = nullptr;
      while (r != nullptr && rte_ring_sc_dequeue(r, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
      rte_ring_free(r);
    }
  tx_rings_.clear();
}

void Engine::quiesce() {
  stop();
  tcp_.clear();
  udp_.clear();
  instances_.clear();
  free_rings();
  rte_mbuf* pkts[64];
  for (auto& p : ports_)
    for (uint16_t q = 0; q < p.queues(); ++q)
      while (uint16_t n = rte_eth_rx_burst(p.id(), q, pkts, 64)) rte_pktmbuf_free_bulk(pkts, n);
}

Engine::~Engine() {
  stop();
  tcp_.clear();        // connections hold mbufs and timers of their instance
  udp_.clear();        // sockets hold queued datagrams
  instances_.clear();  // frees every held frame before the pool goes
  free_rings();
  for (auto& p : ports_) p.close();  // before the pool: RX rings hold its mbufs
  ports_.clear();
  rte_mempool_free(pool_);
}

int Engine::lcore_main(void* arg) {
  auto* pair = static_cast<std::pair<Engine*, Instance*>*>(arg);
  pair->first->run_instance(*pair->second);
  delete pair;
  return 0;
}

void Engine::run_instance(Instance& inst) {
  uint64_t now = now_ns();
  inst.start(now);
  if (body_) {
    body_(inst, inst.id());
    inst.flush(now_ns());
    return;
  }
  IdlePolicy idle(cfg_.idle);
  idle.on_work(now);
  while (!stop_.load(std::memory_order_relaxed)) {
    now = now_ns();
    if (inst.poll(now) != 0) idle.on_work(now);
    else idle.on_idle(now, inst.next_wakeup_ns());
  }
  inst.flush(now_ns());
}

Result<void, std::string> Engine::launch(InstanceMain body) {
  if (running_) return error("already running");
  stop_ = false;
  body_ = std::move(body);
  // The next worker lcore that is not running something already (another engine's loop).
  auto next_free = [](unsigned from) {
    unsigned l = rte_get_next_lcore(from, 1, 0);
    while (l < RTE_MAX_LCORE && rte_eal_get_lcore_state(l) != WAIT) l = rte_get_next_lcore(l, 1, 0);
    return l;
  };
  unsigned lcore = next_free(unsigned(-1));
  for (auto& inst : instances_) {
    auto* arg = new std::pair<Engine*, Instance*>(this, inst.get());
    if (lcore < RTE_MAX_LCORE) {
      if (int rc = rte_eal_remote_launch(&Engine::lcore_main, arg, lcore); rc != 0) {
        delete arg;
        stop();
        return error("cannot launch instance on lcore " + std::to_string(lcore));
      }
      lcores_.push_back(lcore);
      lcore = next_free(lcore);
    } else {
      // No worker lcore left: a registered non-EAL thread runs the loop.
      threads_.emplace_back([arg] {
        rte_thread_register();
        lcore_main(arg);
        rte_thread_unregister();
      });
    }
  }
  running_ = true;
  return {};
}

void Engine::stop() {
  stop_ = true;
  wait();
}

void Engine::wait() {
  for (unsigned l : lcores_) rte_eal_wait_lcore(l);
  lcores_.clear();
  for (auto& t : threads_) t.join();
  threads_.clear();
  running_ = false;
}

}  // namespace keel::engine
