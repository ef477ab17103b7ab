// SPDX-License-Identifier: BSD-3-Clause
#include "drivers/port.hpp"

#include <rte_alarm.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_interrupts.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstring>
#include <thread>

namespace keel::drivers {

const uint8_t symmetric_rss_key[40] = {
    0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
    0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
    0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a};

namespace {
Unexpected<std::string> port_error(uint16_t id, const char* what, int rc) {
  return Unexpected<std::string>{"port " + std::to_string(id) + ": " + what + " failed: " +
                                 rte_strerror(rc < 0 ? -rc : rc)};
}

// Runs `fn` on EAL's interrupt thread (as an alarm callback) and waits for it.
// PMDs with a control channel handle the peer's messages on that thread
// without a lock against the application's calls: net_memif unmaps and frees
// its regions there when the peer disconnects, and rte_eth_dev_stop does the
// same from the calling thread, so when both ends quit at once the two could
// free the same regions (a crash seen at exit). Callbacks on the interrupt
// thread run one at a time, so running stop and close there orders them.
template <class F>
void on_interrupt_thread(F&& fn) {
  struct Call {
    F* fn;
    std::atomic<bool> done{false};
    static void run(void* arg) {
      auto* c = static_cast<Call*>(arg);
      (*c->fn)();
      c->done.store(true, std::memory_order_release);
    }
  } call{&fn};
  if (rte_thread_is_intr() || rte_eal_alarm_set(1, &Call::run, &call) != 0) {
    fn();  // already there, or no alarm to be had: run it here
    return;
  }
  while (!call.done.load(std::memory_order_acquire))
    std::this_thread::sleep_for(std::chrono::microseconds(100));
}

// RETA entry i -> queue i % queues (engine::FlowSteering's table, in hardware).
bool program_reta(uint16_t port_id, uint16_t reta_size, uint16_t queues) {
  if (reta_size == 0 || reta_size % RTE_ETH_RETA_GROUP_SIZE != 0 ||
      reta_size > RTE_ETH_RSS_RETA_SIZE_512 || (reta_size & (reta_size - 1)) != 0)
    return false;
  rte_eth_rss_reta_entry64 conf[RTE_ETH_RSS_RETA_SIZE_512 / RTE_ETH_RETA_GROUP_SIZE]{};
  for (uint16_t i = 0; i < reta_size; ++i) {
    conf[i / RTE_ETH_RETA_GROUP_SIZE].mask |= uint64_t(1) << (i % RTE_ETH_RETA_GROUP_SIZE);
    conf[i / RTE_ETH_RETA_GROUP_SIZE].reta[i % RTE_ETH_RETA_GROUP_SIZE] = uint16_t(i % queues);
  }
  return rte_eth_dev_rss_reta_update(port_id, conf, reta_size) == 0;
}
}  // namespace

Result<uint16_t, std::string> Port::find(const std::string& name) {
  uint16_t id = 0;
  if (rte_eth_dev_get_port_by_name(name.c_str(), &id) == 0) return id;
  unsigned n = 0;
  auto [p, ec] = std::from_chars(name.data(), name.data() + name.size(), n);
  if (ec == std::errc{} && p == name.data() + name.size()) {
    unsigned i = 0;
    uint16_t pid = 0;
    RTE_ETH_FOREACH_DEV(pid) {
      if (i++ == n) return pid;
    }
  }
  return Unexpected<std::string>{"no port named '" + name + "' (" +
                                 std::to_string(rte_eth_dev_count_avail()) +
                                 " ports available; add one with --vdev)"};
}

Result<Port, std::string> Port::start(uint16_t port_id, const PortConfig& cfg,
                                      rte_mempool* pool) {
  if (!rte_eth_dev_is_valid_port(port_id)) return port_error(port_id, "lookup", ENODEV);
  rte_eth_dev_info info{};
  if (int rc = rte_eth_dev_info_get(port_id, &info); rc != 0)
    return port_error(port_id, "rte_eth_dev_info_get", rc);
  uint16_t offered = std::min(info.max_rx_queues, info.max_tx_queues);
  // net_memif's queues are rings the two ends share, as many as the client made: an
  // end with more queues than its peer polls rings that are not there (seen: each
  // frame received on both queues). The peer's count is not known here, so a memif
  // port that may have fewer runs one queue and the stack steers in software.
  if (cfg.fewer_queues_ok && info.driver_name != nullptr && std::strcmp(info.driver_name, "net_memif") == 0)
    offered = 1;
  const uint16_t queues = cfg.fewer_queues_ok ? std::clamp<uint16_t>(offered, 1, cfg.queues) : cfg.queues;
  if (queues == 0 || queues > offered) {
    return Unexpected<std::string>{
        "port " + std::to_string(port_id) + " (" + info.driver_name + "): " +
        std::to_string(cfg.queues) + " queues requested, the driver offers " + std::to_string(offered)};
  }

  Port port;
  port.id_ = port_id;
  port.queues_ = queues;
  char name[RTE_ETH_NAME_MAX_LEN];
  if (rte_eth_dev_get_name_by_port(port_id, name) == 0) port.name_ = name;

  rte_eth_conf conf{};
  OffloadCaps& caps = port.caps_;
  if (cfg.use_offloads) {
    auto rx = info.rx_offload_capa, tx = info.tx_offload_capa;
    caps.rx_ipv4_cksum = rx & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
    caps.rx_l4_cksum = (rx & RTE_ETH_RX_OFFLOAD_TCP_CKSUM) && (rx & RTE_ETH_RX_OFFLOAD_UDP_CKSUM);
    caps.tx_ipv4_cksum = tx & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
    caps.tx_tcp_cksum = tx & RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
    caps.tx_udp_cksum = tx & RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
    caps.tx_multi_seg = tx & RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
    // TSO needs the L4 checksum offload as well and chained mbufs.
    caps.tx_tso = (tx & RTE_ETH_TX_OFFLOAD_TCP_TSO) && caps.tx_tcp_cksum && caps.tx_ipv4_cksum;
    if (caps.rx_ipv4_cksum) conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
    if (caps.rx_l4_cksum)
      conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_TCP_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
    if (caps.tx_ipv4_cksum) conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
    if (caps.tx_tcp_cksum) conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
    if (caps.tx_udp_cksum) conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
    if (caps.tx_multi_seg) conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
    if (caps.tx_tso) conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_TCP_TSO;
    // net_ring hands the mbuf pointers to its peer as they are: a chain needs
    // no driver support (it advertises no offloads, so nothing is configured).
    if (std::string_view(info.driver_name) == "net_ring") caps.tx_multi_seg = true;
    // COMPAT(dpdk 22.11): net_tap computes the "offloaded" L4 checksum itself,
    // adding up rte_raw_cksum of each segment without carrying the byte
    // alignment across an odd-length one.
    if (std::string_view(info.driver_name) == "net_tap") caps.tx_l4_cksum_even_segments = true;
  }

  // RSS with the symmetric key, when the port has several queues and hashes TCP/IPv4.
  static uint8_t key[64];
  if (queues > 1 && (info.flow_type_rss_offloads & RTE_ETH_RSS_NONFRAG_IPV4_TCP) &&
      info.hash_key_size <= sizeof key) {
    for (size_t i = 0; i < sizeof key; ++i) key[i] = symmetric_rss_key[i % 2];
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_key = info.hash_key_size ? key : nullptr;
    conf.rx_adv_conf.rss_conf.rss_key_len = info.hash_key_size;
    conf.rx_adv_conf.rss_conf.rss_hf =
        info.flow_type_rss_offloads &
        (RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_NONFRAG_IPV4_TCP | RTE_ETH_RSS_NONFRAG_IPV4_UDP);
    caps.rss = true;
  }

  if (int rc = rte_eth_dev_configure(port_id, queues, queues, &conf); rc != 0)
    return port_error(port_id, "rte_eth_dev_configure", rc);
  uint16_t rxd = cfg.rx_desc, txd = cfg.tx_desc;
  if (int rc = rte_eth_dev_adjust_nb_rx_tx_desc(port_id, &rxd, &txd); rc != 0)
    return port_error(port_id, "rte_eth_dev_adjust_nb_rx_tx_desc", rc);
  int socket = rte_eth_dev_socket_id(port_id);
  if (socket < 0) socket = SOCKET_ID_ANY;
  for (uint16_t q = 0; q < queues; ++q) {
    rte_eth_rxconf rxconf = info.default_rxconf;
    rxconf.offloads = conf.rxmode.offloads;
    if (int rc = rte_eth_rx_queue_setup(port_id, q, rxd, unsigned(socket), &rxconf, pool); rc != 0)
      return port_error(port_id, "rte_eth_rx_queue_setup", rc);
    rte_eth_txconf txconf = info.default_txconf;
    txconf.offloads = conf.txmode.offloads;
    if (int rc = rte_eth_tx_queue_setup(port_id, q, txd, unsigned(socket), &txconf); rc != 0)
      return port_error(port_id, "rte_eth_tx_queue_setup", rc);
  }
  if (cfg.mtu != 0) {
    // Not every vdev can change its MTU (net_ring cannot); keep its own then.
    (void)rte_eth_dev_set_mtu(port_id, cfg.mtu);
  }
  uint16_t mtu = 1500;
  if (rte_eth_dev_get_mtu(port_id, &mtu) == 0 && mtu >= 576) port.mtu_ = mtu;
  if (int rc = rte_eth_dev_start(port_id); rc != 0)
    return port_error(port_id, "rte_eth_dev_start", rc);
  if (caps.rss) {
    // Our RETA, so that software knows which queue a flow lands on; a port whose
    // table cannot be set hashes somewhere we cannot predict (the stack's software
    // steering then corrects it).
    port.reta_size_ = program_reta(port_id, info.reta_size, queues) ? info.reta_size : 0;
    caps.rss = port.reta_size_ != 0;
  }
  if (cfg.promiscuous) (void)rte_eth_promiscuous_enable(port_id);
  // Multicast is not used, but allmulti keeps ARP working on PMDs that filter
  // by default; failure is harmless.
  (void)rte_eth_allmulticast_enable(port_id);
  rte_ether_addr mac{};
  rte_eth_macaddr_get(port_id, &mac);
  port.mac_ = net::MacAddr::from_bytes(mac.addr_bytes);
  if (!cfg.mac.is_zero()) {
    port.mac_ = cfg.mac;
  } else if (port.mac_.is_zero()) {
    rte_eth_random_addr(mac.addr_bytes);
    port.mac_ = net::MacAddr::from_bytes(mac.addr_bytes);
  }
  if (port.mac_ != net::MacAddr::from_bytes(mac.addr_bytes)) {
    // The port filters on its own MAC; let frames for ours through.
    rte_ether_addr want;
    port.mac_.to_bytes(want.addr_bytes);
    if (rte_eth_dev_default_mac_addr_set(port_id, &want) != 0)
      (void)rte_eth_promiscuous_enable(port_id);
  }
  return port;
}

Port Port::attached(uint16_t port_id, uint16_t queues, uint16_t mtu, net::MacAddr mac,
                   uint16_t reta_size, const OffloadCaps& caps) {
  Port port;
  port.id_ = port_id;
  char name[RTE_ETH_NAME_MAX_LEN];
  if (rte_eth_dev_get_name_by_port(port_id, name) == 0) port.name_ = name;
  port.queues_ = queues;
  port.mtu_ = mtu;
  port.mac_ = mac;
  port.reta_size_ = reta_size;
  port.caps_ = caps;
  return port;
}

void Port::stop() {
  on_interrupt_thread([id = id_] { (void)rte_eth_dev_stop(id); });
}

void Port::close() {
  on_interrupt_thread([id = id_] {
    (void)rte_eth_dev_stop(id);
    (void)rte_eth_dev_close(id);
  });
}

std::string Port::driver() const {
  rte_eth_dev_info info{};
  if (rte_eth_dev_info_get(id_, &info) != 0 || info.driver_name == nullptr) return "?";
  return info.driver_name;
}

std::string Port::link_status() const {
  rte_eth_link link{};
  if (rte_eth_link_get_nowait(id_, &link) != 0) return "unknown";
  if (link.link_status == RTE_ETH_LINK_DOWN) return "down";
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"  // experimental in 22.11, stable later
  const char* speed = rte_eth_link_speed_to_str(link.link_speed);
#pragma GCC diagnostic pop
  return "up " + std::string(speed) +
         (link.link_duplex == RTE_ETH_LINK_FULL_DUPLEX ? " full-duplex" : " half-duplex");
}

}  // namespace keel::drivers
