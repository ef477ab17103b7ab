// SPDX-License-Identifier: BSD-3-Clause
// keel-pmd's `show mem`: what keel holds for its connections, per instance and
// in total, ending with one key=value line perf/run reads before and after it
// opens 10,000 idle connections (`bench idle`).
//
// Where the memory is (all of it allocated when the TcpStack is built, none
// per connection):
//   TCB table   one new[] of max_connections slots of sizeof(Tcb) rounded up to
//               a cache line (as TcpStack does), zero-filled at start
//               (make_unique<uint8_t[]>), so all of it is resident from the
//               start; a Tcb is constructed in place when a connection opens.
//   conn hash   an rte_hash of max_connections entries (4-tuple -> slot) with
//               extendable buckets, in DPDK's malloc heap: measured once by
//               building an identical table and reading the heap's statistics.
//   ooo pool    ooo_queues reassembly queues of ooo_max_segments nodes each,
//               lent to connections only while they hold out-of-order data.
//   rack pool   rack_logs RACK run logs (1 KiB), lent to connections with more
//               runs in flight than a TCB holds inline; not touched until lent.
//   sack pool   sack_boards SACK scoreboards, lent while a peer has SACKed data.
//               These three are fixed per-instance costs (like the table, sized
//               by config), reported apart: an idle connection holds none of them.
//   mbufs       the engine's one pool (all instances); in use = what
//               connections hold in their queues (plus any frame in flight).
#include <rte_hash.h>
#include <rte_jhash.h>
#include <rte_malloc.h>
#include <rte_mempool.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>

#include "cli.hpp"
#include "tcp/tcp_stack.hpp"

namespace keel::pmd {

namespace {

// Heap bytes an rte_hash like TcpStack's takes (0 if it cannot be measured).
uint64_t measure_hash_bytes(uint32_t entries) {
  static std::mutex mu;
  static uint32_t cached_entries = 0;
  static uint64_t cached = 0;
  std::lock_guard lk(mu);
  if (cached_entries == entries) return cached;
  int socket = int(rte_socket_id() == unsigned(SOCKET_ID_ANY) ? 0 : rte_socket_id());
  rte_malloc_socket_stats before{}, after{};
  rte_hash_parameters p{};
  p.name = "keel_pmd_mem_probe";
  p.entries = std::max<uint32_t>(entries, 8);
  p.key_len = sizeof(tcp::ConnKey);
  p.hash_func = rte_jhash;
  p.socket_id = socket;
  p.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
  if (rte_malloc_get_socket_stats(socket, &before) != 0) return 0;
  rte_hash* h = rte_hash_create(&p);
  if (h == nullptr) return 0;
  if (rte_malloc_get_socket_stats(socket, &after) == 0 &&
      after.heap_allocsz_bytes > before.heap_allocsz_bytes) {
    cached = after.heap_allocsz_bytes - before.heap_allocsz_bytes;
    cached_entries = entries;
  }
  rte_hash_free(h);
  return cached_entries == entries ? cached : 0;
}

// A "Name:   123 kB" line of /proc/self/status, in bytes (0 if absent).
uint64_t proc_status_bytes(const std::string& name) {
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind(name + ":", 0) == 0) {
      std::istringstream in(line.substr(name.size() + 1));
      uint64_t kb = 0;
      in >> kb;
      return kb * 1024;
    }
  return 0;
}

// ReassemblyQueue's node (private there): list hook, mbuf pointer, seq, len,
// stamp, fin flag: 48 bytes on x86-64.
constexpr uint64_t ooo_node_bytes = 48;

struct InstanceMem {
  size_t conns = 0, time_wait = 0;
  uint32_t slots = 0, ooo_queues = 0, ooo_nodes = 0;
  uint32_t rack_logs = 0, rack_free = 0, sack_boards = 0, sack_free = 0;
  uint64_t rack_bytes = 0, sack_bytes = 0;
};

}  // namespace

void Cli::show_mem(std::ostream& out) {
  const uint64_t slot_bytes = (sizeof(tcp::Tcb) + 63) / 64 * 64;
  uint64_t conns = 0, time_wait = 0, tcb_bytes = 0, hash_bytes = 0, ooo_bytes = 0, slots = 0;
  uint64_t pool_bytes = 0;
  char line[512];
  for (size_t i = 0; i < engine_.instances().size(); ++i) {
    auto m = std::make_shared<InstanceMem>();
    tcp::TcpStack* stack = &engine_.tcp(i);
    bool ok = run_on(*engine_.instances()[i], [m, stack](engine::Instance&) {
      m->conns = stack->connections();
      stack->for_each([&](tcp::Tcb& c) { m->time_wait += c.state == tcp::TcpState::time_wait; });
      m->slots = stack->config().max_connections;
      m->ooo_queues = stack->config().ooo_queues;
      m->ooo_nodes = stack->config().ooo_max_segments;
      m->rack_logs = stack->rack_pool().size();
      m->rack_free = stack->rack_pool().available();
      m->rack_bytes = stack->rack_pool().bytes();
      m->sack_boards = stack->sack_pool().size();
      m->sack_free = stack->sack_pool().available();
      m->sack_bytes = stack->sack_pool().bytes();
    });
    if (!ok) {
      out << "instance " << i << ": (instance not responding)\n";
      continue;
    }
    uint64_t tcb = slot_bytes * m->slots, hash = measure_hash_bytes(m->slots);
    uint64_t ooo = uint64_t(m->ooo_queues) *
                   (sizeof(tcp::ReassemblyQueue) + uint64_t(m->ooo_nodes) * ooo_node_bytes);
    std::snprintf(line, sizeof line,
                  "instance %zu: %zu connections (%zu in TIME-WAIT), %u TCB slots\n"
                  "  tcb table  %u x %llu B (sizeof(Tcb) %zu) = %llu B, one new[] at start\n"
                  "  conn hash  %llu B (rte_hash, %u entries, DPDK heap, measured)\n"
                  "  ooo pool   %u queues x %u nodes = %llu B, at start\n"
                  "  rack pool  %u logs (%u lent) = %llu B, at start\n"
                  "  sack pool  %u scoreboards (%u lent) = %llu B, at start\n",
                  i, m->conns, m->time_wait, m->slots, m->slots, (unsigned long long)slot_bytes,
                  sizeof(tcp::Tcb), (unsigned long long)tcb, (unsigned long long)hash, m->slots,
                  m->ooo_queues, m->ooo_nodes, (unsigned long long)ooo, m->rack_logs,
                  m->rack_logs - m->rack_free, (unsigned long long)m->rack_bytes, m->sack_boards,
                  m->sack_boards - m->sack_free, (unsigned long long)m->sack_bytes);
    out << line;
    conns += m->conns;
    time_wait += m->time_wait;
    tcb_bytes += tcb;
    hash_bytes += hash;
    ooo_bytes += ooo;
    pool_bytes += m->rack_bytes + m->sack_bytes;
    slots += m->slots;
  }
  uint64_t in_use = 0, mbuf_size = 0, pool_size = 0;
  if (rte_mempool* p = engine_.pool()) {
    in_use = rte_mempool_in_use_count(p);
    mbuf_size = p->header_size + p->elt_size + p->trailer_size;
    pool_size = p->size;
  }
  uint64_t mbuf_bytes = in_use * mbuf_size;
  uint64_t rss = proc_status_bytes("VmRSS"), hwm = proc_status_bytes("VmHWM");
  // A connection's share of the preallocated table (slot + hash entry), plus
  // the mbufs the open connections hold, per connection. The pools lent during
  // recovery (ooo, rack, sack) are fixed per instance and reported apart.
  uint64_t per_conn = slots ? (tcb_bytes + hash_bytes) / slots : 0;
  if (conns > 0) per_conn += mbuf_bytes / conns;
  std::snprintf(line, sizeof line,
                "mbufs in use: %llu of %llu, %llu B each = %llu B\n"
                "rss: %llu B (VmRSS), peak %llu B (VmHWM)\n",
                (unsigned long long)in_use, (unsigned long long)pool_size,
                (unsigned long long)mbuf_size, (unsigned long long)mbuf_bytes,
                (unsigned long long)rss, (unsigned long long)hwm);
  out << line;
  std::snprintf(line, sizeof line,
                "mem: conns=%llu time_wait=%llu tcb_bytes=%llu hash_bytes=%llu ooo_bytes=%llu "
                "recovery_pool_bytes=%llu mbufs_in_use=%llu mbuf_bytes=%llu rss_bytes=%llu "
                "bytes_per_conn=%llu\n",
                (unsigned long long)conns, (unsigned long long)time_wait,
                (unsigned long long)tcb_bytes, (unsigned long long)hash_bytes,
                (unsigned long long)ooo_bytes, (unsigned long long)pool_bytes,
                (unsigned long long)in_use,
                (unsigned long long)mbuf_bytes, (unsigned long long)rss,
                (unsigned long long)per_conn);
  out << line;
}

}  // namespace keel::pmd
