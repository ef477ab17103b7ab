// SPDX-License-Identifier: BSD-3-Clause
#include "engine/engine.hpp"

#include <rte_memzone.h>
#include <rte_mempool.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>

#include "engine/multiprocess.hpp"

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
  std::string name = mp::object_name((std::string("keel_") + what).c_str());
  return rte_ring_create(name.c_str(), steer_ring_size, int(rte_socket_id()), flags);
}
}  // namespace

Result<std::unique_ptr<Engine>, std::string> Engine::create(const EngineConfig& cfg) {
  if (cfg.ports.empty()) return error("no port configured");
  if (cfg.instances == 0) return error("instances must be at least 1");
  std::unique_ptr<Engine> e(new Engine);
  e->cfg_ = cfg;
  const bool multi = cfg.total_instances != 0;
  e->total_ = multi ? cfg.total_instances : cfg.instances;
  if (multi) {
    if (cfg.total_instances > mp::max_instances)
      return error("total_instances: at most " + std::to_string(mp::max_instances));
    if (cfg.first_instance + cfg.instances > cfg.total_instances)
      return error("instances " + std::to_string(cfg.first_instance) + "-" +
                   std::to_string(cfg.first_instance + cfg.instances - 1) + " are not within the " +
                   std::to_string(cfg.total_instances) + " instances of the group");
    if (cfg.ports.size() > mp::max_ports) return error("multi-process: at most " + std::to_string(mp::max_ports) + " ports");
    e->secondary_ = rte_eal_process_type() == RTE_PROC_SECONDARY;
    e->mp_ = std::make_unique<mp::Group>();
  } else if (rte_eal_process_type() == RTE_PROC_SECONDARY) {
    return error("a DPDK secondary process needs the multi-process settings (total instances, instance range)");
  }

  mp::SharedState* st = nullptr;
  std::string err;
  if (e->secondary_) {
    st = mp::Group::lookup_state(err);
    if (st == nullptr) return error(err);
    if (st->total_instances != e->total_)
      return error("total instances " + std::to_string(e->total_) + " differ from the primary's " +
                   std::to_string(st->total_instances));
    e->pool_ = rte_mempool_lookup(mp::mp_pool_name);
    if (e->pool_ == nullptr) return error(std::string("the primary's mbuf pool ") + mp::mp_pool_name + " not found");
    if (auto r = e->attach_ports(st); !r) return error(r.error());
  } else {
    static std::atomic<unsigned> serial{0};
    std::string pool_name = multi ? mp::mp_pool_name : "keel_pool_" + std::to_string(serial++);
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
      pc.queues = e->total_;  // one per instance of every process
      pc.fewer_queues_ok = true;  // software steering covers the rest
      pc.mtu = spec.mtu;
      pc.use_offloads = spec.use_offloads;
      pc.mac = spec.mac;
      auto port = drivers::Port::start(*id, pc, e->pool_);
      if (!port) return error(port.error());
      e->ports_.push_back(*port);
    }
    if (multi) {
      st = mp::Group::create_state(e->total_, err);
      if (st == nullptr) return error(err);
      e->publish_ports(st);
    }
  }

  if (e->total_ > 1)
    if (auto r = e->create_steering(); !r) return error(r.error());
  if (multi) {
    if (e->steering_) e->steering_->set_owner_map(st->owner_map);
    if (!e->mp_->join(st, cfg.first_instance, cfg.instances, err)) return error("multi-process: " + err);
    e->mp_->slot()->pool_in_use_at_join = rte_mempool_in_use_count(e->pool_);
    if (!e->secondary_) __atomic_store_n(&st->magic, mp::mp_magic, __ATOMIC_RELEASE);  // secondaries may come
  }

  for (uint16_t k = 0; k < cfg.instances; ++k) {
    const uint16_t i = uint16_t(cfg.first_instance + k);
    InstanceConfig ic = cfg.instance;
    ic.id = i;
    auto inst = std::make_unique<Instance>(ic, now_ns());
    for (size_t p = 0; p < e->ports_.size(); ++p) {
      const uint16_t queues = e->ports_[p].queues();
      const uint16_t q = uint16_t(i % queues);
      Interface& ifc = inst->add_interface(e->ports_[p], q, cfg.ports[p].l3, e->pool_);
      ifc.queue.set_faults(&cfg.ports[p].rx_faults, &cfg.ports[p].tx_faults);
      if (queues < e->total_) {
        if (i < queues) ifc.queue.set_tx_inbox(e->tx_rings_[p][q]);
        else ifc.queue.set_tx_handoff(e->tx_rings_[p][q]);
      }
    }
    if (e->steering_) inst->set_steering(e->steering_.get(), e->steer_rings_);
    e->tcp_.push_back(std::make_unique<tcp::TcpStack>(*inst, cfg.tcp));
    e->udp_.push_back(std::make_unique<udp::UdpStack>(*inst, cfg.udp));
    e->instances_.push_back(std::move(inst));
  }
  if (multi) e->monitor_ = std::thread([eng = e.get()] { eng->monitor_loop(); });
  return e;
}

void Engine::publish_ports(mp::SharedState* st) {
  st->nports = uint16_t(ports_.size());
  for (size_t p = 0; p < ports_.size(); ++p) {
    mp::PortRecord& r = st->ports[p];
    r.port_id = ports_[p].id();
    r.queues = ports_[p].queues();
    r.mtu = ports_[p].mtu();
    r.reta_size = ports_[p].reta_size();
    ports_[p].mac().to_bytes(r.mac);
    r.caps = ports_[p].caps();
  }
}

Result<void, std::string> Engine::attach_ports(mp::SharedState* st) {
  if (cfg_.ports.size() != st->nports)
    return error(std::to_string(cfg_.ports.size()) + " ports configured, the primary has " +
                 std::to_string(st->nports) + " (list the same ports in the same order)");
  for (size_t p = 0; p < cfg_.ports.size(); ++p) {
    const PortSpec& spec = cfg_.ports[p];
    if (spec.l3.addrs.empty()) return error("port " + spec.device + ": no address");
    auto id = drivers::Port::find(spec.device);
    if (!id) return error(id.error());
    const mp::PortRecord& r = st->ports[p];
    if (r.port_id != *id)
      return error("port " + spec.device + " is port " + std::to_string(*id) + " here, the primary's port " +
                   std::to_string(p) + " is port " + std::to_string(r.port_id));
    ports_.push_back(drivers::Port::attached(r.port_id, r.queues, r.mtu, net::MacAddr::from_bytes(r.mac),
                                             r.reta_size, r.caps));
  }
  return {};
}

Result<rte_ring*, std::string> Engine::ring(const std::string& mp_name, const char* what) {
  rte_ring* r = nullptr;
  if (secondary_) {
    r = rte_ring_lookup(mp_name.c_str());
    if (r == nullptr) return error(std::string(what) + " ring " + mp_name + " not found (is the primary a keel of this version?)");
    return r;
  }
  r = mp_ ? rte_ring_create(mp_name.c_str(), steer_ring_size, int(rte_socket_id()), RING_F_SC_DEQ)
          : make_ring(what, RING_F_SC_DEQ);
  if (r == nullptr) return error(std::string(what) + " ring: " + rte_strerror(rte_errno));
  return r;
}

Result<void, std::string> Engine::create_steering() {
  // The software table agrees with the first port whose RETA we programmed; a
  // port with another RETA size (or fewer queues) is corrected in software.
  // In a multi-process group every process finds the same size (the primary's ports).
  uint16_t reta = FlowSteering::software_reta_size;
  for (const auto& p : ports_)
    if (p.caps().rss) {
      reta = p.reta_size();
      break;
    }
  steering_ = std::make_unique<FlowSteering>(total_, reta);
  for (uint16_t i = 0; i < total_; ++i) {
    auto r = ring(mp::mp_steer_ring_name(i), "steer");
    if (!r) return error("steering " + r.error());
    steer_rings_.push_back(*r);
  }
  tx_rings_.resize(ports_.size());
  for (size_t p = 0; p < ports_.size(); ++p)
    if (ports_[p].queues() < total_)
      for (uint16_t q = 0; q < ports_[p].queues(); ++q) {
        auto r = ring(mp::mp_txh_ring_name(p, q), "txh");
        if (!r) return error("TX hand-off " + r.error());
        tx_rings_[p].push_back(*r);
      }
  return {};
}

void Engine::free_rings() {
  if (secondary_) {  // the primary's: what is on them is for instances that live on
    steer_rings_.clear();
    tx_rings_.clear();
    return;
  }
  for (rte_ring* r : steer_rings_) {
    Instance::free_steered(r);
    rte_ring_free(r);
  }
  steer_rings_.clear();
  for (auto& per_port : tx_rings_)
    for (rte_ring* r : per_port) {
      Instance::free_steered(r);  // untagged frames: the same drain
      rte_ring_free(r);
    }
  tx_rings_.clear();
}

void Engine::quiesce() {
  stop();
  std::vector<uint16_t> ids;  // the queues this process's instances own
  for (auto& inst : instances_) ids.push_back(inst->id());
  tcp_.clear();
  udp_.clear();
  instances_.clear();
  free_rings();
  rte_mbuf* pkts[64];
  for (auto& p : ports_)
    for (uint16_t q = 0; q < p.queues(); ++q) {
      if (mp_ && std::find(ids.begin(), ids.end(), q) == ids.end()) continue;  // another process's
      while (uint16_t n = rte_eth_rx_burst(p.id(), q, pkts, 64)) rte_pktmbuf_free_bulk(pkts, n);
    }
}

Engine::~Engine() {
  monitor_stop_ = true;
  if (monitor_.joinable()) monitor_.join();
  if (mp_ && !secondary_) {
    // The secondaries use our ports, pool and rings: tell them (our slot left; their
    // monitors stop them) and give them up to 2 s to go before those are freed.
    mp::SharedState* st = mp_->state();
    mp_->leave();
    for (int wait = 0; wait < 200; ++wait) {
      bool any = false;
      for (auto& s : st->procs)
        any = any || (s.state.load() == mp::slot_live && mp::process_start_time(s.pid) == s.start_time);
      if (!any) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  stop();
  tcp_.clear();        // connections hold mbufs and timers of their instance
  udp_.clear();        // sockets hold queued datagrams
  instances_.clear();  // frees every held frame before the pool goes
  free_rings();
  if (secondary_) {
    // The ports, the pool and the rings are the primary's. What sits in this
    // process's lcore caches goes back to the pool; the primary takes over the
    // instances (slot left).
    unsigned l;
    RTE_LCORE_FOREACH(l) {
      if (rte_mempool_cache* c = rte_mempool_default_cache(pool_, l)) rte_mempool_cache_flush(c, pool_);
    }
    if (mp_) mp_->leave();
    return;
  }
  for (auto& p : ports_) p.close();  // before the pool: RX rings hold its mbufs
  ports_.clear();
  rte_mempool_free(pool_);
  if (mp_) {
    if (const rte_memzone* mz = rte_memzone_lookup(mp::mp_zone_name)) rte_memzone_free(mz);
  }
}

namespace {
struct LaunchArg {
  Engine* engine;
  Instance* inst;
  size_t index;
};
}  // namespace

int Engine::lcore_main(void* arg) {
  auto* a = static_cast<LaunchArg*>(arg);
  a->engine->run_instance(*a->inst, a->index);
  delete a;
  return 0;
}

void Engine::run_instance(Instance& inst, size_t index) {
  uint64_t now = now_ns();
  inst.start(now);
  if (body_) {
    body_(inst, index);
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
  for (size_t k = 0; k < instances_.size(); ++k) {
    auto* arg = new LaunchArg{this, instances_[k].get(), k};
    if (lcore < RTE_MAX_LCORE) {
      if (int rc = rte_eal_remote_launch(&Engine::lcore_main, arg, lcore); rc != 0) {
        delete arg;
        stop();
        return error("cannot launch instance on lcore " + std::to_string(lcore));
      }
      lcores_.push_back(lcore);
      lcore = next_free(lcore);
    } else if (mp_) {
      // A registered thread gets an lcore id this process does not use, which
      // another process may: their mempool caches (one per lcore id) would collide.
      delete arg;
      stop();
      return error("multi-process: " + std::to_string(instances_.size()) +
                   " instances need as many EAL worker lcores (lcore ids distinct across the processes)");
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

Instance* Engine::local_instance(uint16_t id) {
  for (auto& inst : instances_)
    if (inst->id() == id) return inst.get();
  return nullptr;
}

// ===== Multi-process: liveness and takeover =====

void Engine::mp_log(std::string line) {
  std::fprintf(stderr, "keel: %s\n", line.c_str());
  std::lock_guard lk(mp_mu_);
  mp_log_.push_back(std::move(line));
}

void Engine::monitor_loop() {
  mp::SharedState* st = mp_->state();
  mp::ProcSlot* me = mp_->slot();
  while (!monitor_stop_.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const uint64_t now = mp::monotonic_ns();
    me->heartbeat_ns.store(now, std::memory_order_relaxed);
    if (secondary_) {
      // Without the primary the ports are gone: stop (the application's loops end).
      const mp::ProcSlot& p = st->procs[0];
      if (p.state.load() != mp::slot_live || mp::process_start_time(p.pid) != p.start_time) {
        mp_log("the primary (pid " + std::to_string(p.pid) + ") is gone: stopping this secondary");
        request_stop();
        return;
      }
      continue;
    }
    for (unsigned i = 0; i < mp::max_procs; ++i) {
      mp::ProcSlot& s = st->procs[i];
      if (&s == me) continue;
      uint32_t state = s.state.load(std::memory_order_acquire);
      if (state == mp::slot_live && mp::process_start_time(s.pid) != s.start_time) {
        if (s.state.compare_exchange_strong(state, mp::slot_taken_over)) take_over(i, "died");
      } else if (state == mp::slot_left) {
        if (s.state.compare_exchange_strong(state, mp::slot_taken_over)) take_over(i, "exited");
      }
    }
    std::vector<PendingReport> due;
    {
      std::lock_guard lk(mp_mu_);
      for (auto it = pending_.begin(); it != pending_.end();)
        if (now >= it->at_ns) {
          due.push_back(*it);
          it = pending_.erase(it);
        } else {
          ++it;
        }
    }
    for (const auto& r : due) {
      const mp::ProcSlot& s = st->procs[r.slot];
      uint64_t in_use = rte_mempool_in_use_count(pool_);
      mp_log("takeover of pid " + std::to_string(s.pid) + " after 1 s: pool in use " + std::to_string(in_use) +
             " (at takeover " + std::to_string(r.in_use_before) + ", when it joined " +
             std::to_string(s.pool_in_use_at_join) +
             "); mbufs it held in its own memory (TCP queues, TX buffers) are not found again");
    }
  }
}

void Engine::take_over(unsigned slot, const char* why) {
  mp::SharedState* st = mp_->state();
  const mp::ProcSlot& s = st->procs[slot];
  const uint64_t before = rte_mempool_in_use_count(pool_);
  Instance& to = *instances_.front();
  std::ostringstream what;
  what << "pid " << s.pid << " (instances " << s.first << "-" << (s.first + s.count - 1) << ") " << why
       << ": its flows now go to instance " << to.id();
  // 1. Steering, in every process: flows of the dead instances (and of any earlier
  //    takeover that made them owners) reach `to`, find no TCB and get RST.
  for (uint16_t i = 0; i < total_; ++i) {
    uint16_t o = st->owner_map[i].load();
    if (o >= s.first && o < s.first + s.count) st->owner_map[i].store(to.id(), std::memory_order_release);
  }
  // 2. Its queues and steering rings: `to` polls them from now on.
  for (uint16_t d = s.first; d < s.first + s.count; ++d) {
    std::vector<Instance::AdoptedQueue> qs;
    for (size_t p = 0; p < ports_.size(); ++p) {
      if (d >= ports_[p].queues()) continue;  // it had no queue there (TX hand-off only)
      rte_ring* inbox = ports_[p].queues() < total_ ? tx_rings_[p][d] : nullptr;
      qs.push_back({uint16_t(p), d, inbox});
      what << "; RX queue " << d << " of port " << ports_[p].id();
    }
    rte_ring* ring = steering_ ? steer_rings_[d] : nullptr;
    what << (ring ? "; steering ring " + std::to_string(d) + " (" + std::to_string(rte_ring_count(ring)) + " frames)" : "");
    to.post([ring, qs](Instance& inst) { inst.adopt(ring, qs); });
  }
  // 3. Its lcores' mempool caches (nobody else uses those lcore ids).
  unsigned cached = 0;
  what << "; mempool caches of lcores";
  for (unsigned l = 0; l < RTE_MAX_LCORE; ++l) {
    if (!(s.lcores[l / 64] & (uint64_t(1) << (l % 64)))) continue;
    what << " " << l;
    if (rte_mempool_cache* c = rte_mempool_default_cache(pool_, l)) {
      cached += c->len;
      rte_mempool_cache_flush(c, pool_);
    }
  }
  what << " flushed (" << cached << " mbufs); pool in use " << before;
  mp_log(what.str());
  std::lock_guard lk(mp_mu_);
  pending_.push_back({slot, mp::monotonic_ns() + 1'000'000'000, before});
}

std::string Engine::mp_status() {
  if (!mp_) return {};
  std::ostringstream out;
  out << mp::describe(*mp_->state());
  out << "  pool in use " << rte_mempool_in_use_count(pool_) << " of " << pool_->size << "\n";
  std::lock_guard lk(mp_mu_);
  for (const auto& l : mp_log_) out << "  " << l << "\n";
  return out.str();
}

}  // namespace keel::engine
