// SPDX-License-Identifier: BSD-3-Clause
// libFuzzer target over the whole receive path of one Instance: Ethernet, ARP,
// IPv4 (validation, reassembly), ICMP, and the dispatch to L4 handlers, plus the
// timers that run later (ARP retries and expiry, reassembly timeout).
//
// Each input runs against a fresh Instance on a net_ring port, starting from the
// same fake clock, so an input means the same thing every time it runs. The
// port, the mbuf pool and EAL are made once.
//
// Input format (every field optional: the input may end anywhere):
//
//   input := mode [rx_faults] [tx_faults] frame*
//   mode  := 1 byte. Bit 0 set: destroy the instance while it still holds
//            frames (covers the destructors); clear: run the clock past every
//            timeout until the instance holds nothing, then destroy it.
//            Bit 1: rx_faults follows, bit 2: tx_faults follows.
//   faults := 7 bytes configuring the port queue's fault injector for that
//            direction: drop, duplicate, reorder, corrupt (each byte/512, so
//            up to 50%), delay and jitter (ms), seed. Only frames that come
//            through the RX ring meet the RX injector.
//   frame := ctl adv len_hi len_lo split bytes[len]
//   ctl   := bits 0-1 how the frame arrives: 0 input() in one segment,
//            1 input() as a two-segment chain, 2 the port's RX ring (poll()
//            picks it up), 3 the RX ring as a chain; bit 2: poll() after it.
//   adv   := the fake clock moves adv^2 ms before the frame (up to 65 s: spans
//            the ARP reachable time and the reassembly timeout).
//   len   := big endian, clamped to what is left and to two segments.
//   split := bytes in the first segment of a chain: `split` itself when below
//            128 (so a header can straddle at any small offset), else a
//            proportion of len.
//
// Checks (abort() on failure, which libFuzzer reports as a crash):
//   - every mbuf the stack hands on (to an L4 handler, to the TX ring) passes
//     rte_mbuf_check, and every transmitted frame is well formed: our source
//     MAC, a non-zero destination, ARP of the right size or IPv4 with a good
//     header checksum and a total length matching the frame;
//   - after every frame the pool's in-use count covers what the instance says
//     it holds, and at the end of every input the pool is back to its baseline.
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "drivers/fault_injector.hpp"
#include "drivers/port.hpp"
#include "drivers/ring_port.hpp"
#include "engine/instance.hpp"
#include "net/checksum.hpp"
#include "net/wire.hpp"

namespace {

using namespace keel;

constexpr uint64_t ms = 1'000'000;
constexpr uint64_t start_ns = 1'000 * ms;  // every input starts here
constexpr size_t max_frames = 128;         // per input
// Steps of the final flush: each at least one ARP retry interval, and enough of
// them to pass the ARP reachable time plus its probes and the reassembly timeout.
constexpr uint64_t flush_step_ns = 5'000 * ms;
constexpr int max_flush_steps = 100;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_rx: check failed: %s\n", what);
  std::abort();
}

void check(bool ok, const char* what) {
  if (!ok) fail(what);
}

/// Frees what it gets after checking it is a sound mbuf: TCP comes later, but
/// the IP layer's dispatch to it is covered now.
class SinkHandler : public engine::L4Handler {
 public:
  void on_datagram(engine::Instance& inst, rte_mbuf* m, const engine::Ipv4Meta& ip,
                   uint64_t now_ns) override {
    (void)now_ns;
    const char* reason = nullptr;
    if (rte_mbuf_check(m, 1, &reason) != 0) fail(reason);
    check(ip.protocol == net::ipproto_tcp || ip.protocol == net::ipproto_udp,
          "delivered to the wrong handler");
    check(inst.interfaces()[ip.iface]->accepts(ip.dst), "delivered a datagram not for us");
    rte_pktmbuf_free(m);
  }
  void on_icmp_error(engine::Instance& inst, const engine::IcmpError& err,
                     uint64_t now_ns) override {
    (void)inst, (void)now_ns;
    check(err.quoted_l4 != nullptr && err.quoted_l4_len >= 8, "ICMP error quotes under 8 bytes");
    // Touch every quoted byte: the quote lives in an instrumented buffer, so
    // ASan catches a length that runs past it.
    unsigned sum = 0;
    for (size_t i = 0; i < err.quoted_l4_len; ++i) sum += err.quoted_l4[i];
    sink_ = sink_ + sum;
  }

 private:
  volatile unsigned sink_ = 0;
};

struct World {
  rte_mempool* pool = nullptr;
  drivers::RingPort ring;
  drivers::Port port;
  unsigned baseline = 0;  // pool in use with no instance
  SinkHandler handler;
  bool verbose = false;   // FUZZ_RX_VERBOSE set: print each input's counters
};

World* world = nullptr;

const net::MacAddr our_mac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}};

unsigned in_use() { return rte_mempool_in_use_count(world->pool); }

/// Checks a frame the stack transmitted, then frees it.
void check_tx_frame(rte_mbuf* m) {
  const char* reason = nullptr;
  if (rte_mbuf_check(m, 1, &reason) != 0) fail(reason);
  check(m->pkt_len >= net::eth_header_len, "transmitted a runt");
  uint8_t hdr[net::eth_header_len + 60];
  uint32_t n = std::min<uint32_t>(m->pkt_len, sizeof hdr);
  const auto* p = static_cast<const uint8_t*>(rte_pktmbuf_read(m, 0, n, hdr));
  check(p != nullptr, "rte_pktmbuf_read");
  net::MacAddr dst = net::MacAddr::from_bytes(p + net::eth_field::dst);
  net::MacAddr src = net::MacAddr::from_bytes(p + net::eth_field::src);
  check(!dst.is_zero(), "transmitted a frame with no destination MAC");
  check(src == our_mac, "transmitted a frame with a foreign source MAC");
  uint16_t type = net::load_be16(p + net::eth_field::ethertype);
  if (type == net::ethertype_arp) {
    check(m->pkt_len == net::eth_header_len + net::arp_len, "ARP frame of the wrong size");
  } else {
    check(type == net::ethertype_ipv4, "transmitted an unknown ethertype");
    const uint8_t* ip = p + net::eth_header_len;
    check(n >= net::eth_header_len + net::ipv4_min_header_len, "IPv4 frame shorter than a header");
    size_t ihl = size_t(ip[net::ipv4_field::ver_ihl] & 0xf) * 4;
    check(ip[net::ipv4_field::ver_ihl] >> 4 == 4 && ihl >= net::ipv4_min_header_len &&
              n >= net::eth_header_len + ihl,
          "transmitted a bad IPv4 header");
    check(net::inet_checksum(ip, ihl) == 0, "transmitted a bad IPv4 header checksum");
    check(net::load_be16(ip + net::ipv4_field::total_len) == m->pkt_len - net::eth_header_len,
          "IPv4 total length differs from the frame");
    uint16_t ff = net::load_be16(ip + net::ipv4_field::flags_frag);
    bool fragment = (ff & (net::ipv4_flag_mf | net::ipv4_frag_offset_mask)) != 0;
    if (ip[net::ipv4_field::protocol] == net::ipproto_icmp && !fragment)
      check(net::inet_checksum(m, net::eth_header_len + ihl,
                               m->pkt_len - net::eth_header_len - ihl) == 0,
            "transmitted a bad ICMP checksum");
  }
  rte_pktmbuf_free(m);
}

void drain_tx() {
  void* items[64];
  unsigned n;
  while ((n = rte_ring_dequeue_burst(world->ring.tx, items, 64, nullptr)) != 0)
    for (unsigned i = 0; i < n; ++i) check_tx_frame(static_cast<rte_mbuf*>(items[i]));
}

void drain_rx() {
  void* items[64];
  unsigned n;
  while ((n = rte_ring_dequeue_burst(world->ring.rx, items, 64, nullptr)) != 0)
    for (unsigned i = 0; i < n; ++i) rte_pktmbuf_free(static_cast<rte_mbuf*>(items[i]));
}

/// One segment holding `len` bytes of `data`; headroom as a PMD leaves it.
rte_mbuf* segment(const uint8_t* data, size_t len) {
  rte_mbuf* m = rte_pktmbuf_alloc(world->pool);
  check(m != nullptr, "fuzz pool exhausted");
  char* p = rte_pktmbuf_append(m, uint16_t(len));
  check(p != nullptr, "segment too long");
  if (len != 0) std::memcpy(p, data, len);
  return m;
}

/// The frame as a PMD would hand it over: one segment, or two split at `first`.
rte_mbuf* make_frame(const uint8_t* data, size_t len, bool chain, size_t first) {
  if (!chain) return segment(data, len);
  rte_mbuf* head = segment(data, first);
  rte_mbuf* tail = segment(data + first, len - first);
  check(rte_pktmbuf_chain(head, tail) == 0, "rte_pktmbuf_chain");
  return head;
}

/// A fault injector configuration from 7 input bytes (missing ones are zero).
drivers::FaultConfig read_faults(const uint8_t*& p, const uint8_t* end, bool tx) {
  uint8_t b[7] = {};
  for (auto& x : b) x = p < end ? *p++ : 0;
  drivers::FaultConfig f;
  f.drop = b[0] / 512.0;
  f.duplicate = b[1] / 512.0;
  f.reorder = b[2] / 512.0;
  // A corrupted transmitted frame would fail the checks on what we send.
  f.corrupt = tx ? 0 : b[3] / 512.0;
  f.delay_ns = b[4] * ms;
  f.jitter_ns = b[5] * ms;
  f.max_held = 64;  // small, so that the overflow path is reachable
  f.seed = b[6] + 1u;
  return f;
}

/// After a frame: the pool holds at least one mbuf for every frame the instance
/// and the RX ring account for (a reassembly datagram may hold several).
void check_accounting(engine::Instance& inst) {
  size_t held = inst.held_frames() + rte_ring_count(world->ring.rx);
  check(in_use() >= world->baseline + held, "the instance holds more frames than are allocated");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  (void)argc, (void)argv;
  // No hugepages, no PCI, no shared files or telemetry socket: fuzzer
  // processes may run side by side. One lcore; only errors are logged.
  static char args[][32] = {"fuzz_rx",      "--no-huge",      "-m", "256",
                            "--no-pci",     "--no-shconf",    "--no-telemetry",
                            "--log-level=*:error", "-l", "0"};
  static char* eal_argv[std::size(args)];
  for (size_t i = 0; i < std::size(args); ++i) eal_argv[i] = args[i];
  if (rte_eal_init(int(std::size(args)), eal_argv) < 0) fail("rte_eal_init");

  world = new World;
  // No per-lcore cache, so the in-use count is exact at every point.
  world->pool = rte_pktmbuf_pool_create("fuzz_pool", 8191, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                        SOCKET_ID_ANY);
  if (world->pool == nullptr) fail("rte_pktmbuf_pool_create");
  auto ring = drivers::create_ring_port("fuzz");
  if (!ring) fail(ring.error().c_str());
  world->ring = *ring;
  drivers::PortConfig pc;
  pc.use_offloads = false;
  pc.mac = our_mac;  // fixed, so seeds can address it
  auto port = drivers::Port::start(world->ring.port_id, pc, world->pool);
  if (!port) fail(port.error().c_str());
  world->port = *port;
  world->baseline = in_use();
  world->verbose = std::getenv("FUZZ_RX_VERBOSE") != nullptr;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  check(in_use() == world->baseline, "pool not at its baseline before the input");
  const uint8_t* p = data;
  const uint8_t* end = data + size;
  uint8_t mode = p < end ? *p++ : 0;
  bool teardown_holding = mode & 1;
  drivers::FaultConfig rx_faults, tx_faults;
  if (mode & 2) rx_faults = read_faults(p, end, false);
  if (mode & 4) tx_faults = read_faults(p, end, true);

  uint64_t now = start_ns;
  engine::InstanceConfig cfg;
  auto inst = std::make_unique<engine::Instance>(cfg, now);
  engine::InterfaceConfig l3;
  l3.addrs.push_back(*net::Ipv4Cidr::parse("198.18.0.2/24"));
  l3.gateway = *net::Ipv4Addr::parse("198.18.0.1");
  engine::Interface& ifc = inst->add_interface(world->port, 0, l3, world->pool);
  ifc.queue.set_faults(&rx_faults, &tx_faults);
  inst->register_protocol(net::ipproto_tcp, &world->handler);
  inst->register_protocol(net::ipproto_udp, &world->handler);
  inst->set_echo_reply_hook([](const engine::EchoReply& r) {
    check(r.bytes < 65536, "echo reply of impossible size");
  });
  inst->start(now);
  drain_tx();

  const size_t seg_room = rte_pktmbuf_data_room_size(world->pool) - RTE_PKTMBUF_HEADROOM;
  for (size_t frames = 0; frames < max_frames && end - p >= 5; ++frames) {
    uint8_t ctl = p[0], adv = p[1];
    size_t len = size_t(p[2]) << 8 | p[3];
    uint8_t split = p[4];
    p += 5;
    len = std::min({len, size_t(end - p), 2 * seg_room});
    const uint8_t* frame = p;
    p += len;

    now += uint64_t(adv) * adv * ms;
    bool chain = (ctl & 1) || len > seg_room;
    if (len < 2) chain = false;
    size_t first = 0;
    if (chain) {
      first = split < 128 ? split : len * split / 256;
      // Each segment holds at least one byte and fits its buffer.
      first = std::clamp(first, std::max<size_t>(1, len > seg_room ? len - seg_room : 1),
                         std::min(len - 1, seg_room));
    }
    rte_mbuf* m = make_frame(frame, len, chain, first);
    if (ctl & 2) {
      if (rte_ring_enqueue(world->ring.rx, m) != 0) rte_pktmbuf_free(m);
    } else {
      inst->input(m, ifc, now);
    }
    if (ctl & 4) inst->poll(now);
    drain_tx();
    check_accounting(*inst);
  }
  // Frames still in the RX ring are received; what they provoke is sent.
  while (rte_ring_count(world->ring.rx) != 0) {
    inst->poll(now);
    drain_tx();
  }
  inst->flush(now);
  drain_tx();
  check_accounting(*inst);

  if (!teardown_holding) {
    // Let every timer run out: ARP gives up on unanswered next hops and drops
    // what waits for them; reassembly drops incomplete datagrams. Nothing may
    // stay held for ever.
    int steps = 0;
    while (inst->held_frames() != 0) {
      check(++steps <= max_flush_steps, "frames held after every timeout passed");
      now += flush_step_ns;
      inst->poll(now);
      drain_tx();
    }
    check(in_use() == world->baseline, "mbufs leaked: pool above baseline with nothing held");
  }
  if (world->verbose) {
    // What the input reached, to check that a seed does what its name says.
    for (size_t c = 0; c < engine::counter_count; ++c)
      if (uint64_t v = inst->counters().get(engine::Counter(c)))
        std::fprintf(stderr, "  %.*s %llu\n", int(engine::counter_name(engine::Counter(c)).size()),
                     engine::counter_name(engine::Counter(c)).data(), (unsigned long long)v);
  }
  inst.reset();
  drain_tx();
  drain_rx();
  check(in_use() == world->baseline, "mbufs leaked after the instance was destroyed");
  return 0;
}
