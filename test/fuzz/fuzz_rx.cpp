// SPDX-License-Identifier: BSD-3-Clause
// libFuzzer target over the whole receive path of one Instance: Ethernet, ARP,
// IPv4 (validation, reassembly), ICMP, the dispatch to L4 handlers, UDP (a
// socket on port 53 that echoes; other ports answer port unreachable) and TCP
// (listeners, passive and active opens, SYN cookies, every synchronised state,
// an application that reads, writes, closes and aborts), plus the timers that
// run later (ARP retries and expiry, reassembly timeout, TCP retransmission,
// persist, delayed ACK, keepalive, TIME-WAIT).
//
// Each input runs against a fresh Instance and TcpStack on a net_ring port,
// starting from the same fake clock, so an input means the same thing every
// time it runs (the stack's ISN/cookie key comes from getrandom(), which this
// target replaces with a fixed key). The port, the mbuf pool and EAL are made
// once.
//
// TCP world. The TCP peer is 198.18.0.5 (MAC 02:00:00:00:00:05); its MAC is
// learnt at the start of every input. TcpStack runs with short timers (MSL
// 500 ms, RTO 200 ms..2 s, 4 retransmissions, keepalive 5 s + 3 x 1 s), 8 KiB
// receive and 16 KiB send buffers, 2 out-of-order queues, 32 TCBs. A listener
// on port 80 (backlog 2 by default: later SYNs get cookies) hands connections
// to an application whose behaviour comes from a policy byte (policy_* below).
// Before the first item two connections are set up with fixed handshakes:
//   conversation 0: the peer's port 40000 -> our 80, passive open (SYN,
//                   SYN-ACK whose ISS is read from the TX ring, ACK);
//   conversation 1: our port 50000 -> the peer's 8080, connect() answered
//                   with a SYN-ACK.
// Conversations 2-5 are the peer's ports 40001-40004 -> 80 (fresh passive
// opens), 6 is our 50001 -> 8080 (the application's second connect()), 7 is
// 40005 -> 81 (no listener: RST). The peer's ISN on conversation k is
// 0xffffff00 + 16k, so every stream wraps its sequence space early.
//
// Input format (every field optional: the input may end anywhere; a field cut
// short reads as zeros):
//
//   input := mode [rx_faults] [tx_faults] [setup] item*
//   mode  := 1 byte. Bit 0 set: destroy the stack and instance while they
//            still hold frames and connections (covers the destructors);
//            clear: the application closes what it holds and the clock runs
//            past every timeout until nothing is held, then they are
//            destroyed. Bit 1: rx_faults follows, bit 2: tx_faults follows,
//            bit 3: setup follows.
//   faults := 7 bytes configuring the port queue's fault injector for that
//            direction: drop, duplicate, reorder, corrupt (each byte/512, so
//            up to 50%), delay and jitter (ms), seed. Only frames that come
//            through the RX ring meet the RX injector. Faults start after the
//            fixed handshakes.
//   setup := 4 bytes (all zero without mode bit 3):
//            [0] the peer's handshake options: bit 0 no timestamps, 1 no SACK,
//                2 no window scale (else 2), 3 MSS 536 (else 1460), 4 window
//                256 bytes (else 256 KiB);
//            [1] the application's initial policy;
//            [2] stack: bit 0 no timestamps, 1 no SACK, 2 no window scaling,
//                3 nodelay, 4 NewReno (else CUBIC), 5 keepalive on every
//                connection the application gets, 6 the application aborts
//                (else closes) what it holds at the end;
//            [3] bits 0-1: listener backlog - 1.
//   item  := ctl ... ; ctl bits 3-4 say what the item is:
//     0 raw frame: ctl adv len_hi len_lo split bytes[len]
//       ctl   := bits 0-1 how the frame arrives: 0 input() in one segment,
//                1 input() as a two-segment chain, 2 the port's RX ring
//                (poll() picks it up), 3 the RX ring as a chain; bit 2: poll()
//                after it.
//       adv   := the fake clock moves adv^2 ms before the item (up to 65 s:
//                spans the ARP reachable time, the reassembly timeout and
//                every TCP timer).
//       len   := big endian, clamped to what is left and to two segments.
//       split := bytes in the first segment of a chain: `split` itself when
//                below 128 (so a header can straddle at any small offset),
//                else a proportion of len.
//     1 TCP segment from the peer, built here (Ethernet, IPv4, checksums):
//       ctl adv conv flags seq[4] ack[4] win[2] olen opts[olen] dlen[2] data
//       ctl bits 0-2 as for a raw frame (a chain splits in the TCP header);
//       conv  := bits 0-2 the conversation; bit 3 seq as is (else the
//                peer's ISN + seq: 1 is the first data byte); bit 4 ack and
//                SACK block edges in opts as is (else the stack's ISS on the
//                conversation, as last seen in a SYN or SYN-ACK on the TX
//                ring, + them); bit 5 append a timestamp option (TSval the
//                peer's clock, 1 ms ticks; TSecr the stack's latest TSval on
//                the conversation); bit 6 bad TCP checksum; bit 7 sent as two
//                IPv4 fragments.
//       flags, seq, ack, win (big endian): the header fields.
//       olen  := option bytes (up to 40) that follow, padded with EOL.
//       dlen  := big endian; bit 15 set: (dlen & 0x7fff) bytes of the data
//                stream (see the checks), nothing read from the input; else
//                dlen bytes of data follow.
//     2 application call: ctl adv conn op arg[2]
//       conn picks one of the application's connections (in the order it got
//       them; 0 and 1 are the fixed ones); op (mod 15): recv, recv_copy(arg),
//       send_copy(arg), zero-copy send(arg bytes in a chain), shutdown,
//       close, abort, nodelay(arg&1), keepalive(arg&1), want_writable,
//       NewReno/CUBIC(arg&1), policy = arg, connect() (conversation 6; arg&1:
//       an ephemeral port), unlisten and listen again (backlog arg%4+1),
//       info(). Calls on a connection already closed are skipped.
//     3 ICMP error from the peer about one of our segments:
//       ctl adv conv type code mtu[2] seq[4]; conv bits 0-2 and 4 as for a
//       TCP segment (seq relative to the stack's ISS unless bit 4).
//   After an item of kind 1-3 the instance flushes its TX buffer, so the peer
//   sees (and this target tracks) what it provoked.
//
// Checks (abort() on failure, which libFuzzer reports as a crash):
//   - every mbuf the stack hands on (to an L4 handler, to the TX ring) passes
//     rte_mbuf_check, and every transmitted frame is well formed: our source
//     MAC, a non-zero destination, ARP of the right size or IPv4 with a good
//     header checksum and a total length matching the frame; a TCP segment
//     has a good checksum, a header that parses, no reserved bits, no SYN
//     with FIN or RST, and fits the MTU;
//   - the application's callbacks keep the ConnHandler contract: for its own
//     Tcb, none after on_closed (which comes once) or after close() but
//     on_closed, on_connected only for an active open, on_readable only with
//     data waiting, abort() calls on_closed at once;
//   - data arrives intact both ways. Each data byte the application or the
//     peer sends is stream_byte() of its sequence number, so the application
//     must read exactly those bytes (until the peer sends bytes from the input,
//     a raw TCP frame or a corrupting RX fault), and every data byte the stack
//     transmits must be that of its sequence number (until the application
//     echoes what it read);
//   - after every item every TCB is consistent: SND.UNA <= SND.NXT <= SND.MAX,
//     queues within their buffers, a handler that belongs to it;
//   - after every frame the pool's in-use count covers what the instance says
//     it holds; at the end of every input (mode bit 0 clear) no connection is
//     left, the application heard on_closed for each one it had, and the pool
//     is back to its baseline.
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <sys/types.h>

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
#include "tcp/seq.hpp"
#include "tcp/tcp_header.hpp"
#include "tcp/tcp_stack.hpp"
#include "udp/udp_stack.hpp"

// TcpStack keys its ISNs and SYN cookies with getrandom(). A fixed key makes
// the stack's sequence numbers, ephemeral ports and cookies the same on every
// run, so an input (and a crash) replays exactly. This definition takes the
// place of libc's for the whole process; nothing here needs real randomness.
extern "C" ssize_t getrandom(void* buf, size_t len, unsigned int flags) {
  (void)flags;
  auto* b = static_cast<uint8_t*>(buf);
  for (size_t i = 0; i < len; ++i) b[i] = uint8_t(0x5a + 37 * i);
  return ssize_t(len);
}

namespace {

using namespace keel;
using tcp::Tcb;
using tcp::TcpStack;
using tcp::TcpState;

constexpr uint64_t ms = 1'000'000;
constexpr uint64_t start_ns = 1'000 * ms;  // every input starts here
constexpr size_t max_frames = 128;         // items per input
// Steps of the final flush: each at least one ARP retry interval and longer
// than any TCP timer, and enough of them to pass the ARP reachable time plus
// its probes, the reassembly timeout and every TCP retransmission series.
constexpr uint64_t flush_step_ns = 5'000 * ms;
constexpr int max_flush_steps = 100;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_rx: check failed: %s\n", what);
  std::abort();
}

void check(bool ok, const char* what) {
  if (!ok) fail(what);
}

// ===== The TCP peer and its conversations =====

const net::MacAddr our_mac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}};
const net::MacAddr peer_mac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x05}};
constexpr net::Ipv4Addr our_ip{198, 18, 0, 2};
constexpr net::Ipv4Addr peer_ip{198, 18, 0, 5};
constexpr uint16_t listen_port = 80;
constexpr uint8_t peer_wscale = 2;

struct Conv {
  uint16_t peer_port, our_port;
};
constexpr unsigned conv_count = 8;
constexpr Conv convs[conv_count] = {{40000, 80}, {8080, 50000}, {40001, 80}, {40002, 80},
                                    {40003, 80}, {40004, 80}, {8080, 50001}, {40005, 81}};
constexpr unsigned conv_passive = 0, conv_active = 1, conv_connect = 6;

uint32_t peer_isn(unsigned conv) { return 0xffffff00u + 16u * conv; }
/// The peer's timestamp clock: 1 ms ticks, never behind the stack's.
uint32_t peer_ts(uint64_t now) { return uint32_t(now / ms) + 1; }

int conv_of(uint16_t our_port, uint16_t peer_port) {
  for (unsigned i = 0; i < conv_count; ++i)
    if (convs[i].our_port == our_port && convs[i].peer_port == peer_port) return int(i);
  return -1;
}

// The application's policy byte: what it does when the stack calls it.
// on_readable: 0 recv() all, 1 recv_copy() 512 bytes, 2 read nothing, 3 recv()
// and echo it back with a zero-copy send().
constexpr uint8_t policy_read = 3;
constexpr uint8_t policy_reply = 4;  // send_copy() 1000 bytes on accept/connect, on_readable
constexpr uint8_t policy_close_on_fin = 8;          // close() in on_peer_closed
constexpr uint8_t policy_close_after_read = 0x10;   // close() at the end of on_readable
constexpr uint8_t policy_abort_third = 0x20;        // abort() in the third on_readable
constexpr uint8_t policy_fill = 0x40;               // on_writable: send_copy() 4000 bytes
constexpr uint8_t policy_refuse = 0x80;             // the listener refuses new connections

// Setup byte 2 bits (see the header comment).
constexpr uint8_t stack_no_ts = 1, stack_no_sack = 2, stack_no_ws = 4, stack_nodelay = 8,
                  stack_newreno = 0x10, stack_keepalive = 0x20, stack_abort_at_end = 0x40;
// Setup byte 0 bits.
constexpr uint8_t peer_no_ts = 1, peer_no_sack = 2, peer_no_ws = 4, peer_small_mss = 8,
                  peer_small_window = 0x10;

struct Session;
Session* session = nullptr;  // the input being run

class App;

/// The application side of one connection, driven by its policy byte.
class AppConn final : public tcp::ConnHandler {
 public:
  AppConn(App& app, Tcb* tcb, uint8_t policy, bool active)
      : tcb(tcb), policy(policy), active(active), app_(app) {}
  void on_connected(Tcb& c) override;
  void on_readable(Tcb& c) override;
  void on_writable(Tcb& c) override;
  void on_peer_closed(Tcb& c) override;
  void on_closed(Tcb& c, Errc reason) override;

  Tcb* tcb;                // nullptr once on_closed came
  uint8_t policy;
  bool active;             // from connect()
  bool connected = false;  // on_connected came
  bool peer_closed = false;
  bool app_closed = false;  // close() was called
  unsigned readable = 0;   // on_readable calls
  uint32_t tx_next = 0;    // sequence number of the next byte the application sends
  bool rx_started = false;
  uint32_t rx_next = 0;    // sequence number of the next byte it reads (once rx_started)

 private:
  /// A callback other than on_closed: for our Tcb, before close() and on_closed.
  void expect_live(Tcb& c);
  App& app_;
};

/// The listener's application: hands each connection to a new AppConn.
class App final : public tcp::ListenHandler {
 public:
  tcp::ConnHandler* on_accept(Tcb& c) override;

  /// The stack's calls the application makes, with the checks on their
  /// results. What it sends is the stream_byte() of each byte's sequence number.
  void send_copy(AppConn& a, size_t n);
  void send_zero_copy(AppConn& a, size_t n);
  void read_all(AppConn& a);
  void read_copy(AppConn& a, size_t cap);
  void echo(AppConn& a);
  void abort(AppConn& a);
  void close(AppConn& a);
  void configure(Tcb& c);  // keepalive as the setup says

  TcpStack* stack = nullptr;
  /// The largest packet send() took: one larger than the send buffer goes into an
  /// empty queue (so any size eventually goes), which then holds more than snd_buf.
  uint32_t largest_send = 0;
  uint8_t policy = 0;
  uint8_t stack_flags = 0;
  bool setting_up = true;  // the fixed handshakes are never refused
  std::vector<std::unique_ptr<AppConn>> conns;

 private:
  /// The bytes the application reads must be what the peer sent at their
  /// sequence numbers (unless the peer sent bytes of its own choosing).
  void verify_read(AppConn& a, const uint8_t* p, size_t n);
  void verify_read(AppConn& a, const rte_mbuf* m);
  void send_mbuf(AppConn& a, rte_mbuf* m, bool ours);
};

/// Per-input state: the instance, its TCP, the application and what the peer
/// learnt from the stack's segments.
struct Session {
  uint64_t now = start_ns;
  engine::Instance* inst = nullptr;
  engine::Interface* ifc = nullptr;
  std::unique_ptr<TcpStack> stack;
  std::unique_ptr<udp::UdpStack> udp;  // a socket on port 53 echoes (UdpEcho)
  udp::UdpSocket* udp_socket = nullptr;
  tcp::Listener* listener = nullptr;
  App app;
  bool syn_seen[conv_count] = {};
  uint32_t iss[conv_count] = {};    // the stack's ISS, from its latest SYN / SYN-ACK
  uint32_t tsval[conv_count] = {};  // the stack's latest TSval
  uint16_t ip_id = 0;
  // Data checks: every data byte either side sends is stream_byte() of its
  // sequence number, until the peer sends bytes from the input (or a raw TCP
  // frame, or corrupts what it sends) or the application echoes what it read.
  bool rx_free_form = false;
  bool tx_free_form = false;
};

struct World {
  rte_mempool* pool = nullptr;
  drivers::RingPort ring;
  drivers::Port port;
  unsigned baseline = 0;  // pool in use with no instance
  uint16_t mtu = 0;
  bool verbose = false;   // FUZZ_RX_VERBOSE set: print each input's counters
  uint8_t data[65536];     // where sent data is built and recv_copy() copies to
  uint8_t frame[16384];    // where transmitted data is read to be checked
};

World* world = nullptr;

/// The data byte at sequence number `seq`, in both directions.
uint8_t stream_byte(uint32_t seq) { return uint8_t((seq * 0x9e3779b1u) >> 24); }

/// Fills `p` with the stream bytes from sequence number `seq` on.
void fill_stream(uint8_t* p, size_t n, uint32_t seq) {
  for (size_t i = 0; i < n; ++i) p[i] = stream_byte(seq + uint32_t(i));
}

unsigned in_use() { return rte_mempool_in_use_count(world->pool); }

/// Frees what it gets after checking it is a sound mbuf: UDP is not served,
/// but the IP layer's dispatch to it is covered.
class SinkHandler : public engine::L4Handler {
 public:
  void on_datagram(engine::Instance& inst, rte_mbuf* m, const engine::Ipv4Meta& ip,
                   uint64_t now_ns) override {
    (void)now_ns;
    const char* reason = nullptr;
    if (rte_mbuf_check(m, 1, &reason) != 0) fail(reason);
    check(ip.protocol == net::ipproto_udp, "delivered to the wrong handler");
    check(inst.interfaces()[ip.iface]->accepts(ip.dst), "delivered a datagram not for us");
    rte_pktmbuf_free(m);
  }
  void on_icmp_error(engine::Instance& inst, const engine::IcmpError& err,
                     uint64_t now_ns) override {
    (void)inst, (void)now_ns;
    check_quote(err);
  }
  /// Touches every quoted byte: the quote lives in an instrumented buffer, so
  /// ASan catches a length that runs past it.
  void check_quote(const engine::IcmpError& err) {
    check(err.quoted_l4 != nullptr && err.quoted_l4_len >= 8, "ICMP error quotes under 8 bytes");
    unsigned sum = 0;
    for (size_t i = 0; i < err.quoted_l4_len; ++i) sum += err.quoted_l4[i];
    sink_ = sink_ + sum;
  }

 private:
  volatile unsigned sink_ = 0;
};

/// Stands between the IP layer and TcpStack for protocol 6: the same checks
/// as SinkHandler, then the stack gets it.
class TcpTap : public engine::L4Handler {
 public:
  void on_datagram(engine::Instance& inst, rte_mbuf* m, const engine::Ipv4Meta& ip,
                   uint64_t now_ns) override {
    const char* reason = nullptr;
    if (rte_mbuf_check(m, 1, &reason) != 0) fail(reason);
    check(ip.protocol == net::ipproto_tcp, "delivered to the wrong handler");
    check(inst.interfaces()[ip.iface]->accepts(ip.dst), "delivered a datagram not for us");
    session->stack->on_datagram(inst, m, ip, now_ns);
  }
  void on_icmp_error(engine::Instance& inst, const engine::IcmpError& err,
                     uint64_t now_ns) override {
    sink.check_quote(err);
    session->stack->on_icmp_error(inst, err, now_ns);
  }
  SinkHandler sink;
};

/// Stands between the IP layer and UdpStack for protocol 17, as TcpTap does for TCP.
class UdpTap final : public engine::L4Handler {
 public:
  void on_datagram(engine::Instance& inst, rte_mbuf* m, const engine::Ipv4Meta& ip,
                   uint64_t now_ns) override {
    const char* reason = nullptr;
    if (rte_mbuf_check(m, 1, &reason) != 0) fail(reason);
    check(ip.protocol == net::ipproto_udp, "delivered to the wrong handler");
    check(inst.interfaces()[ip.iface]->accepts(ip.dst), "delivered a datagram not for us");
    session->udp->on_datagram(inst, m, ip, now_ns);
  }
  void on_icmp_error(engine::Instance& inst, const engine::IcmpError& err,
                     uint64_t now_ns) override {
    sink.check_quote(err);
    session->udp->on_icmp_error(inst, err, now_ns);
  }
  SinkHandler sink;
};

/// The UDP application: on each readable edge the first datagram goes back
/// to its sender (zero copy, the received mbuf), the rest are freed.
class UdpEcho final : public udp::UdpHandler {
 public:
  void on_readable(udp::UdpSocket& s) override {
    bool first = true;
    while (auto d = session->udp->recv(s)) {
      check(d->payload != nullptr, "a datagram without payload mbuf");
      if (first) (void)session->udp->send_to(s, d->payload, d->src, d->src_port);
      else rte_pktmbuf_free(d->payload);
      first = false;
    }
  }
  void on_error(udp::UdpSocket& s, Errc e) override {
    (void)s;
    check(e == Errc::connection_refused || e == Errc::unreachable, "a UDP error of an unexpected kind");
  }
};

TcpTap tcp_tap;
UdpTap udp_tap;
UdpEcho udp_echo;

// ===== The application =====

void AppConn::expect_live(Tcb& c) {
  check(tcb != nullptr, "a callback after on_closed");
  check(&c == tcb, "a callback for another connection's Tcb");
  check(!app_closed, "a callback other than on_closed after close()");
}

void AppConn::on_connected(Tcb& c) {
  expect_live(c);
  check(active && !connected, "on_connected for a passive open, or twice");
  check(c.state == TcpState::established, "on_connected outside ESTABLISHED");
  connected = true;
  app_.configure(c);
  if (policy & policy_reply) app_.send_copy(*this, 1000);
}

void AppConn::on_readable(Tcb& c) {
  expect_live(c);
  check(!c.rcvq.empty(), "on_readable with nothing to read");
  ++readable;
  switch (policy & policy_read) {
    case 0:
      app_.read_all(*this);
      break;
    case 1:
      app_.read_copy(*this, 512);
      break;
    case 2:
      break;
    case 3:
      app_.echo(*this);
      break;
  }
  if (tcb == nullptr) return;  // reset while reading
  if (policy & policy_reply) app_.send_copy(*this, 1000);
  if (tcb == nullptr) return;
  if (policy & policy_close_after_read) app_.close(*this);
  else if ((policy & policy_abort_third) && readable == 3) app_.abort(*this);
}

void AppConn::on_writable(Tcb& c) {
  expect_live(c);
  if (policy & policy_fill) app_.send_copy(*this, 4000);
}

void AppConn::on_peer_closed(Tcb& c) {
  expect_live(c);
  check(!peer_closed, "on_peer_closed twice");
  peer_closed = true;
  if (policy & policy_close_on_fin) app_.close(*this);
}

void AppConn::on_closed(Tcb& c, Errc reason) {
  (void)reason;
  check(tcb != nullptr, "on_closed twice");
  check(&c == tcb, "on_closed for another connection's Tcb");
  tcb = nullptr;
}

tcp::ConnHandler* App::on_accept(Tcb& c) {
  check(c.state == TcpState::established, "on_accept outside ESTABLISHED");
  if ((policy & policy_refuse) && !setting_up) return nullptr;
  conns.push_back(std::make_unique<AppConn>(*this, &c, policy, false));
  AppConn& a = *conns.back();
  a.tx_next = c.iss + 1;
  configure(c);
  if (policy & policy_reply) send_copy(a, 1000);
  return &a;
}

void App::configure(Tcb& c) {
  if (stack_flags & stack_keepalive) stack->set_keepalive(c, true);
}

void App::send_copy(AppConn& a, size_t n) {
  n = std::min(n, sizeof world->data);
  fill_stream(world->data, n, a.tx_next);
  auto r = stack->send_copy(*a.tcb, world->data, n);
  if (r) {
    check(*r <= n && (*r > 0 || n == 0), "send_copy took nothing without an error");
    a.tx_next += uint32_t(*r);
  } else {
    Errc e = r.error();
    check(e == Errc::would_block || e == Errc::not_connected || e == Errc::no_memory,
          "send_copy failed with an unexpected error");
  }
}

void App::send_mbuf(AppConn& a, rte_mbuf* m, bool ours) {
  uint32_t n = m->pkt_len;
  auto r = stack->send(*a.tcb, m);
  if (r) {
    largest_send = std::max(largest_send, n);
    if (ours) a.tx_next += n;
  } else {
    Errc e = r.error();
    check(e == Errc::would_block || e == Errc::not_connected || e == Errc::no_memory,
          "send failed with an unexpected error");
    rte_pktmbuf_free(m);  // not taken
  }
}

void App::send_zero_copy(AppConn& a, size_t n) {
  // A chain whose segments have different sizes: 100 bytes, then full buffers.
  rte_mbuf* head = nullptr;
  size_t done = 0;
  const size_t room = rte_pktmbuf_data_room_size(world->pool) - RTE_PKTMBUF_HEADROOM;
  while (done < n || head == nullptr) {
    size_t len = std::min(n - done, head == nullptr ? size_t(100) : room);
    rte_mbuf* s = rte_pktmbuf_alloc(world->pool);
    check(s != nullptr, "fuzz pool exhausted");
    char* p = rte_pktmbuf_append(s, uint16_t(len));
    check(p != nullptr || len == 0, "rte_pktmbuf_append");
    fill_stream(reinterpret_cast<uint8_t*>(p), len, a.tx_next + uint32_t(done));
    if (head == nullptr) head = s;
    else check(rte_pktmbuf_chain(head, s) == 0, "rte_pktmbuf_chain");
    done += len;
  }
  send_mbuf(a, head, true);
}

void App::echo(AppConn& a) {
  rte_mbuf* m = stack->recv(*a.tcb);
  if (m == nullptr) return;
  verify_read(a, m);
  session->tx_free_form = true;  // the peer's bytes go out at our sequence numbers
  send_mbuf(a, m, false);
}

void App::verify_read(AppConn& a, const uint8_t* p, size_t n) {
  if (!a.rx_started) {
    a.rx_started = true;
    a.rx_next = a.tcb->irs + 1;  // data starts after the SYN
  }
  if (!session->rx_free_form)
    for (size_t i = 0; i < n; ++i)
      if (p[i] != stream_byte(a.rx_next + uint32_t(i)))
        fail("the application read a byte the peer did not send at its sequence number");
  a.rx_next += uint32_t(n);
}

void App::verify_read(AppConn& a, const rte_mbuf* m) {
  for (const rte_mbuf* s = m; s != nullptr; s = s->next)
    verify_read(a, rte_pktmbuf_mtod(s, const uint8_t*), s->data_len);
}

void App::read_all(AppConn& a) {
  uint32_t want = a.tcb->rcvq.size();
  rte_mbuf* m = stack->recv(*a.tcb);
  check((m == nullptr) == (want == 0), "recv() returned nothing with data waiting");
  if (m == nullptr) return;
  const char* reason = nullptr;
  if (rte_mbuf_check(m, 1, &reason) != 0) fail(reason);
  check(m->pkt_len == want, "recv() returned another length than was queued");
  verify_read(a, m);
  rte_pktmbuf_free(m);
}

void App::read_copy(AppConn& a, size_t cap) {
  cap = std::min(cap, sizeof world->data);
  uint32_t before = a.tcb->rcvq.size();
  size_t n = stack->recv_copy(*a.tcb, world->data, cap);
  check(n == std::min<size_t>(cap, before), "recv_copy() copied another amount");
  verify_read(a, world->data, n);
}

void App::abort(AppConn& a) {
  stack->abort(*a.tcb);
  check(a.tcb == nullptr, "abort() did not call on_closed at once");
}

void App::close(AppConn& a) {
  a.app_closed = true;
  stack->close(*a.tcb);
}

// ===== Frames =====

/// Checks a frame the stack transmitted, notes what the peer learns from a
/// TCP segment, then frees it.
void check_tx_frame(rte_mbuf* m) {
  const char* reason = nullptr;
  if (rte_mbuf_check(m, 1, &reason) != 0) fail(reason);
  check(m->pkt_len >= net::eth_header_len, "transmitted a runt");
  uint8_t hdr[net::eth_header_len + 60 + tcp::tcp_max_header_len];
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
    rte_pktmbuf_free(m);
    return;
  }
  check(type == net::ethertype_ipv4, "transmitted an unknown ethertype");
  const uint8_t* ip = p + net::eth_header_len;
  check(n >= net::eth_header_len + net::ipv4_min_header_len, "IPv4 frame shorter than a header");
  size_t ihl = size_t(ip[net::ipv4_field::ver_ihl] & 0xf) * 4;
  check(ip[net::ipv4_field::ver_ihl] >> 4 == 4 && ihl >= net::ipv4_min_header_len &&
            n >= net::eth_header_len + ihl,
        "transmitted a bad IPv4 header");
  check(net::inet_checksum(ip, ihl) == 0, "transmitted a bad IPv4 header checksum");
  size_t total = net::load_be16(ip + net::ipv4_field::total_len);
  check(total == m->pkt_len - net::eth_header_len, "IPv4 total length differs from the frame");
  uint16_t ff = net::load_be16(ip + net::ipv4_field::flags_frag);
  bool fragment = (ff & (net::ipv4_flag_mf | net::ipv4_frag_offset_mask)) != 0;
  uint8_t proto = ip[net::ipv4_field::protocol];
  if (proto == net::ipproto_icmp && !fragment)
    check(net::inet_checksum(m, net::eth_header_len + ihl, total - ihl) == 0,
          "transmitted a bad ICMP checksum");
  if (proto == net::ipproto_tcp && !fragment) {
    size_t l4 = total - ihl;
    check(l4 >= net::tcp_min_header_len, "transmitted a TCP segment shorter than its header");
    uint32_t ip_src = net::load_be32(ip + net::ipv4_field::src);
    uint32_t ip_dst = net::load_be32(ip + net::ipv4_field::dst);
    check(ip_src == our_ip.v, "transmitted a TCP segment from a foreign address");
    check(net::ipv4_l4_checksum(ip_src, ip_dst, net::ipproto_tcp, m, net::eth_header_len + ihl,
                                l4) == 0,
          "transmitted a bad TCP checksum");
    check(total <= world->mtu, "transmitted a TCP segment larger than the MTU");
    const uint8_t* t = ip + ihl;
    size_t avail = n - net::eth_header_len - ihl;
    tcp::TcpParseError err{};
    auto seg = tcp::parse_tcp(t, std::min(avail, l4), err);
    check(seg.has_value(), "transmitted a TCP header that does not parse");
    check((t[net::tcp_field::data_off] & 0x0f) == 0, "transmitted TCP reserved bits");
    check(!(seg->has(tcp::flag::syn) && seg->has(tcp::flag::fin | tcp::flag::rst)),
          "transmitted SYN with FIN or RST");
    check(!seg->has(tcp::flag::urg) && seg->urgent == 0, "transmitted urgent data");
    size_t dlen = l4 - seg->header_len;
    if (session != nullptr && !session->tx_free_form && dlen != 0) {
      // What the application sent, at the sequence numbers it was given.
      check(dlen <= sizeof world->frame, "transmitted a TCP segment too long to check");
      const auto* d = static_cast<const uint8_t*>(rte_pktmbuf_read(
          m, uint32_t(net::eth_header_len + ihl + seg->header_len), uint32_t(dlen), world->frame));
      check(d != nullptr, "rte_pktmbuf_read");
      for (size_t i = 0; i < dlen; ++i)
        if (d[i] != stream_byte(seg->seq + uint32_t(i)))
          fail("transmitted a data byte the application did not send at its sequence number");
    }
    if (session != nullptr && ip_dst == peer_ip.v) {
      int k = conv_of(seg->src_port, seg->dst_port);
      if (k >= 0) {
        if (seg->has(tcp::flag::syn)) {
          session->syn_seen[k] = true;
          session->iss[k] = seg->seq;
        }
        if (seg->opt.has_timestamp) session->tsval[k] = seg->opt.tsval;
      }
    }
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

size_t seg_room() { return rte_pktmbuf_data_room_size(world->pool) - RTE_PKTMBUF_HEADROOM; }

/// Hands a frame to the instance as `ctl` says (see the header comment).
void deliver(engine::Instance& inst, engine::Interface& ifc, const uint8_t* frame, size_t len,
             uint8_t ctl, uint8_t split, uint64_t now) {
  bool chain = (ctl & 1) || len > seg_room();
  if (len < 2) chain = false;
  rte_mbuf* m;
  if (!chain) {
    m = segment(frame, len);
  } else {
    size_t first = split < 128 ? split : len * split / 256;
    // Each segment holds at least one byte and fits its buffer.
    first = std::clamp(first, std::max<size_t>(1, len > seg_room() ? len - seg_room() : 1),
                       std::min(len - 1, seg_room()));
    m = segment(frame, first);
    check(rte_pktmbuf_chain(m, segment(frame + first, len - first)) == 0, "rte_pktmbuf_chain");
  }
  if (ctl & 2) {
    if (rte_ring_enqueue(world->ring.rx, m) != 0) rte_pktmbuf_free(m);
  } else {
    inst.input(m, ifc, now);
  }
  if (ctl & 4) inst.poll(now);
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

/// Reads input bytes; past the end it reads zeros.
struct Reader {
  const uint8_t*& p;
  const uint8_t* end;
  uint8_t u8() { return p < end ? *p++ : 0; }
  uint16_t u16() { return uint16_t(u8() << 8 | u8()); }
  uint32_t u32() { return uint32_t(u16()) << 16 | u16(); }
  /// Up to `n` bytes in place (fewer at the end).
  const uint8_t* take(size_t& n) {
    n = std::min(n, size_t(end - p));
    const uint8_t* at = p;
    p += n;
    return at;
  }
};

using Bytes = std::vector<uint8_t>;

void put16(Bytes& b, size_t at, uint16_t v) { net::store_be16(b.data() + at, v); }
void put32(Bytes& b, size_t at, uint32_t v) { net::store_be32(b.data() + at, v); }

/// Ethernet + IPv4 header from the peer around `payload` (a fragment when
/// frag_field says so).
Bytes peer_ip_frame(uint8_t proto, const uint8_t* payload, size_t len, uint16_t frag_field,
                    uint16_t id) {
  Bytes f(net::eth_header_len + net::ipv4_min_header_len + len);
  std::memcpy(f.data() + net::eth_field::dst, our_mac.b.data(), 6);
  std::memcpy(f.data() + net::eth_field::src, peer_mac.b.data(), 6);
  put16(f, net::eth_field::ethertype, net::ethertype_ipv4);
  size_t ip = net::eth_header_len;
  f[ip] = 0x45;
  put16(f, ip + net::ipv4_field::total_len, uint16_t(net::ipv4_min_header_len + len));
  put16(f, ip + net::ipv4_field::id, id);
  put16(f, ip + net::ipv4_field::flags_frag, frag_field);
  f[ip + net::ipv4_field::ttl] = 64;
  f[ip + net::ipv4_field::protocol] = proto;
  put32(f, ip + net::ipv4_field::src, peer_ip.v);
  put32(f, ip + net::ipv4_field::dst, our_ip.v);
  put16(f, ip + net::ipv4_field::checksum, net::inet_checksum(f.data() + ip, 20));
  if (len != 0) std::memcpy(f.data() + ip + net::ipv4_min_header_len, payload, len);
  return f;
}

/// A TCP segment from the peer: header, options (padded), data; checksummed.
Bytes tcp_segment(const Conv& cv, uint8_t flags, uint32_t seq, uint32_t ack, uint16_t win,
                  const uint8_t* opts, size_t olen, const uint8_t* data, size_t dlen,
                  bool bad_checksum) {
  size_t hlen = net::tcp_min_header_len + (olen + 3) / 4 * 4;
  Bytes t(12 + hlen + dlen, 0);  // pseudo header first
  put32(t, 0, peer_ip.v);
  put32(t, 4, our_ip.v);
  t[9] = net::ipproto_tcp;
  put16(t, 10, uint16_t(hlen + dlen));
  uint8_t* h = t.data() + 12;
  net::store_be16(h + net::tcp_field::src_port, cv.peer_port);
  net::store_be16(h + net::tcp_field::dst_port, cv.our_port);
  net::store_be32(h + net::tcp_field::seq, seq);
  net::store_be32(h + net::tcp_field::ack, ack);
  h[net::tcp_field::data_off] = uint8_t(hlen / 4 << 4);
  h[net::tcp_field::flags] = flags;
  net::store_be16(h + net::tcp_field::window, win);
  if (olen != 0) std::memcpy(h + net::tcp_min_header_len, opts, olen);
  if (dlen != 0) std::memcpy(h + hlen, data, dlen);
  uint16_t c = net::inet_checksum(t.data(), t.size());
  if (bad_checksum) c = uint16_t(c ^ 0x5a5a);
  net::store_be16(h + net::tcp_field::checksum, c);
  return Bytes(t.begin() + 12, t.end());
}

/// Sends the TCP segment (or datagram in two fragments) to the instance.
void send_tcp(Session& s, const Bytes& seg, uint8_t ctl, bool fragmented) {
  uint16_t id = ++s.ip_id;
  if (!fragmented || seg.size() < 16) {
    Bytes f = peer_ip_frame(net::ipproto_tcp, seg.data(), seg.size(), net::ipv4_flag_df, id);
    // A chain splits in the TCP header, after the flags.
    deliver(*s.inst, *s.ifc, f.data(), f.size(), ctl, 48, s.now);
    return;
  }
  size_t first = seg.size() / 16 * 8;  // about half, a multiple of 8
  Bytes a = peer_ip_frame(net::ipproto_tcp, seg.data(), first, net::ipv4_flag_mf, id);
  Bytes b = peer_ip_frame(net::ipproto_tcp, seg.data() + first, seg.size() - first,
                          uint16_t(first / 8), id);
  deliver(*s.inst, *s.ifc, b.data(), b.size(), uint8_t(ctl & ~4), 48, s.now);
  deliver(*s.inst, *s.ifc, a.data(), a.size(), ctl, 48, s.now);
}

/// The peer's handshake options: MSS, SACK-permitted, timestamps, window scale.
Bytes syn_options(uint8_t peer, uint32_t tsval, uint32_t tsecr) {
  Bytes o = {2, 4, 0, 0};
  put16(o, 2, (peer & peer_small_mss) ? 536 : 1460);
  if (!(peer & peer_no_sack)) o.insert(o.end(), {1, 1, 4, 2});
  if (!(peer & peer_no_ts)) {
    o.insert(o.end(), {1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0});
    put32(o, o.size() - 8, tsval);
    put32(o, o.size() - 4, tsecr);
  }
  if (!(peer & peer_no_ws)) o.insert(o.end(), {1, 3, 3, peer_wscale});
  return o;
}

/// After an item: the instance's TX buffer goes out, the peer looks at it.
void flush_and_drain(Session& s) {
  s.inst->flush(s.now);
  drain_tx();
}

/// The fixed start of every input: the peer's MAC is learnt, the listener
/// accepts conversation 0 and conversation 1 is actively opened; both end in
/// ESTABLISHED with the options setup[0] asks for.
void tcp_setup(Session& s, const uint8_t setup[4]) {
  uint8_t peer = setup[0];
  bool ts = !(peer & peer_no_ts);
  uint16_t syn_win = (peer & peer_small_window) ? 256 : 65535;
  // The ACK's window is scaled (unless WS is off): 256 bytes either way.
  uint16_t win = !(peer & peer_small_window) ? 65535 : (peer & peer_no_ws) ? 256 : 256 >> peer_wscale;
  // An unsolicited ARP reply from the peer.
  uint8_t arp[net::eth_header_len + net::arp_len] = {};
  std::memcpy(arp + net::eth_field::dst, our_mac.b.data(), 6);
  std::memcpy(arp + net::eth_field::src, peer_mac.b.data(), 6);
  net::store_be16(arp + net::eth_field::ethertype, net::ethertype_arp);
  uint8_t* a = arp + net::eth_header_len;
  const uint8_t arp_hdr[8] = {0, 1, 8, 0, 6, 4, 0, 2};
  std::memcpy(a, arp_hdr, 8);
  std::memcpy(a + 8, peer_mac.b.data(), 6);
  net::store_be32(a + 14, peer_ip.v);
  std::memcpy(a + 18, our_mac.b.data(), 6);
  net::store_be32(a + 24, our_ip.v);
  deliver(*s.inst, *s.ifc, arp, sizeof arp, 0, 0, s.now);

  auto l = s.stack->listen(net::Ipv4Addr::any(), listen_port, 1 + (setup[3] & 3), &s.app);
  check(l.has_value(), "listen() failed");
  s.listener = *l;

  // Conversation 0: SYN, SYN-ACK, ACK.
  const Conv& e = convs[conv_passive];
  uint32_t irs = peer_isn(conv_passive);
  Bytes o = syn_options(peer, peer_ts(s.now), 0);
  send_tcp(s, tcp_segment(e, tcp::flag::syn, irs, 0, syn_win, o.data(), o.size(), nullptr, 0,
                          false),
           0, false);
  flush_and_drain(s);
  check(s.syn_seen[conv_passive], "no SYN-ACK to the fixed SYN");
  Bytes ts_opt;
  if (ts) {
    ts_opt = {1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0};
    put32(ts_opt, 4, peer_ts(s.now));
    put32(ts_opt, 8, s.tsval[conv_passive]);
  }
  send_tcp(s, tcp_segment(e, tcp::flag::ack, irs + 1, s.iss[conv_passive] + 1, win, ts_opt.data(),
                          ts_opt.size(), nullptr, 0, false),
           0, false);
  flush_and_drain(s);
  check(s.app.conns.size() == 1 && s.app.conns[0]->tcb != nullptr &&
            s.app.conns[0]->tcb->state == TcpState::established,
        "the fixed passive open did not reach ESTABLISHED");

  // Conversation 1: connect(), SYN-ACK; the stack ACKs.
  const Conv& c = convs[conv_active];
  s.app.conns.push_back(std::make_unique<AppConn>(s.app, nullptr, s.app.policy, true));
  AppConn& rec = *s.app.conns.back();
  auto r = s.stack->connect(peer_ip, c.peer_port, &rec, c.our_port);
  check(r.has_value(), "the fixed connect() failed");
  rec.tcb = *r;
  rec.tx_next = rec.tcb->iss + 1;
  flush_and_drain(s);
  check(s.syn_seen[conv_active], "no SYN from the fixed connect()");
  o = syn_options(peer, peer_ts(s.now), s.tsval[conv_active]);
  send_tcp(s, tcp_segment(c, tcp::flag::syn | tcp::flag::ack, peer_isn(conv_active),
                          s.iss[conv_active] + 1, syn_win, o.data(), o.size(), nullptr, 0, false),
           0, false);
  flush_and_drain(s);
  check(rec.connected && rec.tcb != nullptr && rec.tcb->state == TcpState::established,
        "the fixed active open did not reach ESTABLISHED");
  s.app.setting_up = false;
}

/// Adds `by` to every SACK block edge in an option list (as far as it parses).
void shift_sack_blocks(Bytes& o, uint32_t by) {
  for (size_t i = 0; i < o.size();) {
    if (o[i] == tcp::opt_kind::eol) break;
    if (o[i] == tcp::opt_kind::nop) {
      ++i;
      continue;
    }
    if (i + 1 >= o.size() || o[i + 1] < 2) break;
    size_t len = std::min<size_t>(o[i + 1], o.size() - i);
    if (o[i] == tcp::opt_kind::sack)
      for (size_t j = i + 2; j + 4 <= i + len; j += 4) put32(o, j, net::load_be32(&o[j]) + by);
    i += len;
  }
}

/// Item kind 1: a TCP segment from the peer.
void tcp_item(Session& s, uint8_t ctl, Reader& in) {
  uint8_t sel = in.u8();
  unsigned k = sel & 7;
  uint8_t flags = in.u8();
  uint32_t seq = in.u32(), ack = in.u32();
  uint16_t win = in.u16();
  size_t olen = std::min<size_t>(in.u8(), 40);
  const uint8_t* raw_opts = in.take(olen);
  Bytes opts(raw_opts, raw_opts + olen);
  uint16_t dl = in.u16();
  if (!(sel & 8)) seq += peer_isn(k);
  if (!(sel & 16)) {
    ack += s.iss[k];
    shift_sack_blocks(opts, s.iss[k]);
  }
  if ((sel & 32) && opts.size() <= 28) {
    while (opts.size() % 4 != 0) opts.push_back(1);  // NOP
    opts.insert(opts.end(), {1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0});
    put32(opts, opts.size() - 8, peer_ts(s.now));
    put32(opts, opts.size() - 4, s.tsval[k]);
  }
  // The frame fits two mbufs.
  size_t max_data = 2 * seg_room() - net::eth_header_len - net::ipv4_min_header_len -
                    tcp::tcp_max_header_len;
  size_t dlen = std::min<size_t>(dl & 0x7fff, max_data);
  const uint8_t* data = world->data;
  if (dl & 0x8000) {
    fill_stream(world->data, dlen, seq + ((flags & tcp::flag::syn) ? 1 : 0));  // after a SYN
  } else {
    data = in.take(dlen);
    if (dlen != 0) s.rx_free_form = true;
  }
  Bytes seg = tcp_segment(convs[k], flags, seq, ack, win, opts.data(), opts.size(), data, dlen,
                          sel & 64);
  send_tcp(s, seg, ctl, sel & 128);
}

/// Item kind 3: an ICMP error from the peer quoting one of our segments.
void icmp_item(Session& s, uint8_t ctl, Reader& in) {
  uint8_t sel = in.u8();
  unsigned k = sel & 7;
  uint8_t type = in.u8(), code = in.u8();
  uint16_t mtu = in.u16();
  uint32_t seq = in.u32();
  if (!(sel & 16)) seq += s.iss[k];
  Bytes icmp(8 + 20 + 8, 0);
  icmp[0] = type;
  icmp[1] = code;
  put16(icmp, 6, mtu);
  size_t q = 8;  // the quoted IPv4 header: ours, to the peer
  icmp[q] = 0x45;
  put16(icmp, q + net::ipv4_field::total_len, 40);
  put16(icmp, q + net::ipv4_field::flags_frag, net::ipv4_flag_df);
  icmp[q + net::ipv4_field::ttl] = 64;
  icmp[q + net::ipv4_field::protocol] = net::ipproto_tcp;
  put32(icmp, q + net::ipv4_field::src, our_ip.v);
  put32(icmp, q + net::ipv4_field::dst, peer_ip.v);
  put16(icmp, q + net::ipv4_field::checksum, net::inet_checksum(icmp.data() + q, 20));
  put16(icmp, q + 20, convs[k].our_port);
  put16(icmp, q + 22, convs[k].peer_port);
  put32(icmp, q + 24, seq);
  put16(icmp, 2, net::inet_checksum(icmp.data(), icmp.size()));
  Bytes f = peer_ip_frame(net::ipproto_icmp, icmp.data(), icmp.size(), 0, ++s.ip_id);
  deliver(*s.inst, *s.ifc, f.data(), f.size(), ctl, 40, s.now);
}

/// Item kind 2: the application calls the stack.
void app_item(Session& s, Reader& in) {
  App& app = s.app;
  TcpStack& st = *s.stack;
  uint8_t which = in.u8();
  uint8_t op = in.u8() % 15;
  uint16_t arg = in.u16();
  if (op == 12) {  // connect(): conversation 6, or an ephemeral port
    app.conns.push_back(std::make_unique<AppConn>(app, nullptr, app.policy, true));
    AppConn& rec = *app.conns.back();
    auto r = st.connect(peer_ip, convs[conv_connect].peer_port, &rec,
                        (arg & 1) ? 0 : convs[conv_connect].our_port);
    if (r) {
      rec.tcb = *r;
      rec.tx_next = rec.tcb->iss + 1;
    } else {
      app.conns.pop_back();
    }
    return;
  }
  if (op == 13) {  // unlisten, listen again
    st.unlisten(s.listener);
    auto l = st.listen(net::Ipv4Addr::any(), listen_port, 1 + arg % 4, &app);
    check(l.has_value(), "listen() again failed");
    s.listener = *l;
    return;
  }
  if (app.conns.empty()) return;
  AppConn& a = *app.conns[which % app.conns.size()];
  if (a.tcb == nullptr) return;  // closed: the Tcb is gone
  Tcb& c = *a.tcb;
  switch (op) {
    case 0: app.read_all(a); break;
    case 1: app.read_copy(a, arg); break;
    case 2: app.send_copy(a, arg); break;
    case 3: app.send_zero_copy(a, arg); break;
    case 4: (void)st.shutdown(c); break;
    case 5: app.close(a); break;
    case 6: app.abort(a); break;
    case 7: st.set_nodelay(c, arg & 1); break;
    case 8: st.set_keepalive(c, arg & 1); break;
    case 9: st.want_writable(c); break;
    case 10: st.set_cc(c, (arg & 1) ? tcp::cc::newreno() : tcp::cc::cubic()); break;
    case 11: a.policy = uint8_t(arg); break;
    case 14: {
      tcp::ConnInfo i = st.info(c);
      check(i.state == c.state && i.snd_queue == c.sndq.size(), "info() disagrees with the Tcb");
      break;
    }
  }
}

/// After an item: every TCB is consistent and owned by the right handler.
void check_tcbs(Session& s) {
  TcpStack& st = *s.stack;
  const tcp::TcpConfig& cfg = st.cfg();
  size_t n = 0;
  st.for_each([&](Tcb& c) {
    ++n;
    check(c.state != TcpState::closed && c.state != TcpState::listen, "a TCB in CLOSED or LISTEN");
    check(tcp::seq_leq(c.snd.una, c.snd.nxt) && tcp::seq_leq(c.snd.nxt, c.snd.max),
          "SND.UNA <= SND.NXT <= SND.MAX broken");
    check(c.sndq.size() <= std::max(c.snd_buf, s.app.largest_send) && c.snd_buf == cfg.snd_buf,
          "send queue over its buffer");
    check(c.rcvq.size() + (c.ooo ? c.ooo->bytes() : 0) <= c.rcv_buf,
          "receive and reassembly queues over the receive buffer");
    check(c.snd.max - c.snd.una <= c.sndq.size() + 2, "more in flight than SYN + data + FIN");
    if (c.state == TcpState::time_wait)
      check(c.handler == nullptr, "a TIME-WAIT TCB still has a handler");
    if (c.listener != nullptr)
      check(c.state == TcpState::syn_received, "a listener's TCB past SYN-RECEIVED");
    if (c.handler != nullptr) {
      auto* a = static_cast<AppConn*>(c.handler);
      check(a->tcb == &c, "a TCB's handler belongs to another connection");
    }
  });
  check(n == st.connections() && n <= cfg.max_connections, "connections() miscounts");
}

/// After a frame: the pool holds at least one mbuf for every frame the instance
/// and the RX ring account for (a reassembly datagram may hold several).
void check_accounting(engine::Instance& inst) {
  size_t held = inst.held_frames() + rte_ring_count(world->ring.rx);
  check(in_use() >= world->baseline + held, "the instance holds more frames than are allocated");
}

tcp::TcpConfig tcp_config(uint8_t flags) {
  tcp::TcpConfig c;
  c.max_connections = 32;
  c.snd_buf = 16 << 10;
  c.rcv_buf = 8 << 10;
  c.ooo_max_segments = 16;
  c.ooo_queues = 2;
  c.min_rto_ns = 200 * ms;
  c.max_rto_ns = 2'000 * ms;
  c.initial_rto_ns = 1'000 * ms;
  c.delack_ns = 40 * ms;
  c.msl_ns = 500 * ms;
  c.keepalive_idle_ns = 5'000 * ms;
  c.keepalive_interval_ns = 1'000 * ms;
  c.keepalive_count = 3;
  c.syn_retries = 2;
  c.max_retransmits = 4;
  c.syn_received_timeout_ns = 3'000 * ms;
  c.challenge_ack_limit = 5;
  c.timestamps = !(flags & stack_no_ts);
  c.sack = !(flags & stack_no_sack);
  c.window_scaling = !(flags & stack_no_ws);
  c.nodelay = flags & stack_nodelay;
  c.cc = (flags & stack_newreno) ? &tcp::cc::newreno() : &tcp::cc::cubic();
  return c;
}

void print_tcbs(TcpStack& st) {
  st.for_each([](Tcb& c) {
    std::fprintf(stderr, "  tcb %u>%u %s una=%u nxt=%u max=%u sndq=%u rcvq=%u wnd=%u persist=%d "
                 "fin_q=%d fin_sent=%d app_closed=%d handler=%d timers=%d%d%d\n",
                 c.key.local_port, c.key.remote_port, tcp::to_string(c.state), c.snd.una - c.iss,
                 c.snd.nxt - c.iss, c.snd.max - c.iss, c.sndq.size(), c.rcvq.size(), c.snd.wnd,
                 c.persisting, c.fin_queued, c.fin_sent, c.app_closed, c.handler != nullptr,
                 c.rexmt_timer.armed(), c.delack_timer.armed(), c.keepalive_timer.armed());
  });
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
  uint8_t setup[4] = {0, 0, 0, 1};
  if (mode & 8)
    for (auto& b : setup) b = p < end ? *p++ : 0;

  Session s;
  session = &s;
  engine::InstanceConfig cfg;
  auto inst = std::make_unique<engine::Instance>(cfg, s.now);
  engine::InterfaceConfig l3;
  l3.addrs.push_back(*net::Ipv4Cidr::parse("198.18.0.2/24"));
  l3.gateway = *net::Ipv4Addr::parse("198.18.0.1");
  engine::Interface& ifc = inst->add_interface(world->port, 0, l3, world->pool);
  world->mtu = ifc.mtu;
  s.inst = inst.get();
  s.ifc = &ifc;
  s.stack = std::make_unique<TcpStack>(*inst, tcp_config(setup[2]));
  s.stack->set_clock([](void*) { return session->now; }, nullptr);
  s.udp = std::make_unique<udp::UdpStack>(*inst, udp::UdpConfig{16, 8, 16 * 1024});
  s.udp->clock().set([](void*) { return session->now; }, nullptr);
  s.udp_socket = s.udp->bind(net::Ipv4Addr{}, 53, &udp_echo).value_or(nullptr);
  check(s.udp_socket != nullptr, "UDP bind on port 53 failed");
  inst->register_protocol(net::ipproto_tcp, &tcp_tap);
  inst->register_protocol(net::ipproto_udp, &udp_tap);
  inst->set_echo_reply_hook([](const engine::EchoReply& r) {
    check(r.bytes < 65536, "echo reply of impossible size");
  });
  s.app.stack = s.stack.get();
  s.app.policy = setup[1];
  s.app.stack_flags = setup[2];
  inst->start(s.now);
  drain_tx();
  tcp_setup(s, setup);
  ifc.queue.set_faults(&rx_faults, &tx_faults);
  if (rx_faults.corrupt > 0) s.rx_free_form = true;

  for (size_t items = 0; items < max_frames && end - p >= 5; ++items) {
    uint8_t ctl = p[0], adv = p[1];
    p += 2;
    s.now += uint64_t(adv) * adv * ms;
    Reader in{p, end};
    switch ((ctl >> 3) & 3) {
      case 0: {
        size_t len = size_t(p[0]) << 8 | p[1];
        uint8_t split = p[2];
        p += 3;
        len = std::min({len, size_t(end - p), 2 * seg_room()});
        // IPv4 carrying TCP: bytes of the input's choosing may reach a connection.
        if (len > net::eth_header_len + net::ipv4_field::protocol &&
            net::load_be16(p + net::eth_field::ethertype) == net::ethertype_ipv4 &&
            p[net::eth_header_len + net::ipv4_field::protocol] == net::ipproto_tcp)
          s.rx_free_form = true;
        deliver(*inst, ifc, p, len, ctl, split, s.now);
        p += len;
        drain_tx();
        break;
      }
      case 1:
        tcp_item(s, ctl, in);
        flush_and_drain(s);
        break;
      case 2:
        app_item(s, in);
        if (ctl & 4) inst->poll(s.now);
        flush_and_drain(s);
        break;
      case 3:
        icmp_item(s, ctl, in);
        flush_and_drain(s);
        break;
    }
    check_accounting(*inst);
    check_tcbs(s);
  }
  // Frames still in the RX ring are received; what they provoke is sent.
  while (rte_ring_count(world->ring.rx) != 0) {
    inst->poll(s.now);
    drain_tx();
  }
  inst->flush(s.now);
  drain_tx();
  check_accounting(*inst);
  check_tcbs(s);

  if (!teardown_holding) {
    // The application lets go of what it holds: close() (or abort()) each.
    for (size_t i = 0; i < s.app.conns.size(); ++i) {
      AppConn& a = *s.app.conns[i];
      if (a.tcb == nullptr || a.app_closed) continue;
      if (setup[2] & stack_abort_at_end) s.app.abort(a);
      else s.app.close(a);
    }
    flush_and_drain(s);
    // Let every timer run out: ARP gives up on unanswered next hops and drops
    // what waits for them; reassembly drops incomplete datagrams; TCP gives
    // up on a silent peer and TIME-WAIT ends. Nothing may stay held for ever.
    int steps = 0;
    while (inst->held_frames() != 0 || s.stack->connections() != 0) {
      if (++steps > max_flush_steps) {
        print_tcbs(*s.stack);
        check(s.stack->connections() == 0, "TCP connections left after every timeout passed");
        fail("frames held after every timeout passed");
      }
      s.now += flush_step_ns;
      inst->poll(s.now);
      drain_tx();
      check_tcbs(s);
    }
    for (auto& a : s.app.conns)
      check(a->tcb == nullptr, "a connection ended without on_closed to the application");
    check(in_use() == world->baseline, "mbufs leaked: pool above baseline with nothing held");
  }
  if (world->verbose) {
    // What the input reached, to check that a seed does what its name says.
    for (size_t c = 0; c < engine::counter_count; ++c)
      if (uint64_t v = inst->counters().get(engine::Counter(c)))
        std::fprintf(stderr, "  %.*s %llu\n", int(engine::counter_name(engine::Counter(c)).size()),
                     engine::counter_name(engine::Counter(c)).data(), (unsigned long long)v);
    print_tcbs(*s.stack);
  }
  s.stack.reset();  // frees every TCB (handlers are not called)
  s.udp.reset();    // and every socket with its queued datagrams
  inst.reset();
  drain_tx();
  drain_rx();
  session = nullptr;
  check(in_use() == world->baseline, "mbufs leaked after the instance was destroyed");
  return 0;
}
