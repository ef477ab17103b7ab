// SPDX-License-Identifier: BSD-3-Clause
// shm_peer: a native-API program for the cross-process tests of the intra-node
// fast path (test/shm/cross.sh). One instance per process (a multi-process
// secondary, or a primary/single by its configuration), one mode:
//
//   shm_peer --config FILE [options] serve PORT [PORT...]
//       Listens on every PORT (any address). Each connection starts with a
//       16-byte header: "SINK" + 4 reserved + u64 length (0: until EOF), or
//       "ECHO" + 12 bytes ignored.
//         sink: every byte is checked against the stream pattern and a CRC32C
//               is kept; after `length` bytes (or at EOF) a 24-byte report goes
//               back ("REPT", crc, bytes, mismatches), then FIN.
//         echo: the received Buffers go straight back (zero copy).
//       Prints "serve: ready ports P... instance I pid N" once listening and one
//       "serve: conn ..." line per connection when it ends (reset ones with the
//       wall-clock time of the closed event, at_ms). SIGUSR1 closes every
//       listener ("serve: listeners closed"); SIGUSR2 prints the pool count and
//       the node's directory. Runs until SIGINT/SIGTERM.
//   shm_peer ... stream ADDR PORT BYTES [sink|echo]
//       Sends BYTES of the pattern in zero-copy Buffers (Stack::alloc, 64 KiB
//       each) and checks the sink's report (bytes, CRC, no mismatch) or every
//       byte echoed back. BYTES takes k/M/G.
//   shm_peer ... rr ADDR PORT N
//       N request/response round trips of 64 bytes through an echo, every
//       byte checked.
//   shm_peer ... connect ADDR PORT [EXPECT] [TIMEOUT_MS]
//       Prints the first event (connected, or closed with its error: connection_refused,
//       timed_out, unreachable, ...), then closes; with EXPECT, that must be the result.
//   shm_peer ... wait FILE
//       Keeps polling until FILE exists (a script's go-ahead for the next mode).
//   shm_peer ledger FILE
//       Prints what a (maybe dead) shm_peer's --ledger file says it held.
//
// Client modes chain with "+": `stream A P 1G + rr A P 100000` runs both, in
// order, on the same instance (one process, one instance range); a mode that
// fails does not stop the ones after it.
//
// Options:
//   --expect-channel yes|no  the connection must (not) be a channel (is_channel())
//   --pool                   print the shared pool's in-use count before and after each mode
//   --describe               print the node's directory (shm::Node::describe) likewise
//   --ledger FILE            keep, in a shared file mapping that outlives the
//                            process, how many mbufs (and bytes) the application
//                            holds privately: Buffers allocated and not yet sent,
//                            received and not yet released. After a kill -9 that
//                            is what the survivors cannot give back to the pool.
//   --progress BYTES         print "NAME: progress N" every BYTES moved (default 64M)
// Every result line says "ok" or "FAILED: why"; the exit status is 0 only if
// every mode succeeded (and nothing misused the API).
//
// The main thread sleeps while the instance runs (Runtime::launch, then wait()
// once the instance returned): Runtime::run() would wait in rte_eal_wait_lcore,
// which spins, a whole CPU per process on a two-CPU test machine.
// SHM_PEER_SPIN=1 in the environment waits that way instead (for comparison).
#include <keel/keel.hpp>

#include <fcntl.h>
#include <rte_hash_crc.h>
#include <rte_mempool.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common.hpp"
#include "shm/node.hpp"

namespace {

using keel::Buffer;
using keel::Connection;
using keel::Errc;
using keel::Event;
using keel::Stack;
namespace ev = keel::event;

// An error as its enumerator's name (connection_reset, ...): one word, for scripts.
std::string errs(Errc e) {
  switch (e) {
    case Errc::ok: return "ok";
    case Errc::invalid_argument: return "invalid_argument";
    case Errc::no_memory: return "no_memory";
    case Errc::no_device: return "no_device";
    case Errc::not_supported: return "not_supported";
    case Errc::would_block: return "would_block";
    case Errc::not_connected: return "not_connected";
    case Errc::already_exists: return "already_exists";
    case Errc::timed_out: return "timed_out";
    case Errc::unreachable: return "unreachable";
    case Errc::io_error: return "io_error";
    case Errc::connection_refused: return "connection_refused";
    case Errc::connection_reset: return "connection_reset";
    case Errc::connection_aborted: return "connection_aborted";
    case Errc::wrong_thread: return "wrong_thread";
    case Errc::bad_handle: return "bad_handle";
    case Errc::message_too_long: return "message_too_long";
  }
  return "unknown_error";
}

// The stream pattern: 8-byte word j (byte offset 8j..8j+7) is a hash of j, so
// a chunk in the wrong place, a duplicate or a gap shows.
inline uint64_t word_at(uint64_t j) { return (j + 1) * 0x9E3779B97F4A7C15ull ^ (j >> 7); }
inline uint8_t byte_at(uint64_t off) { return uint8_t(word_at(off >> 3) >> ((off & 7) * 8)); }

void fill(uint8_t* p, size_t n, uint64_t off) {
  while (n != 0 && (off & 7) != 0) {
    *p++ = byte_at(off++);
    --n;
  }
  for (; n >= 8; n -= 8, p += 8, off += 8) {
    uint64_t w = word_at(off >> 3);
    std::memcpy(p, &w, 8);
  }
  while (n-- != 0) *p++ = byte_at(off++);
}

// Mismatching bytes of p[0..n) against the pattern at `off`; `first` gets the first one's offset.
uint64_t check(const uint8_t* p, size_t n, uint64_t off, uint64_t& first) {
  uint64_t bad = 0;
  auto one = [&](uint8_t b, uint64_t o) {
    if (b != byte_at(o)) {
      if (bad++ == 0 && first == ~0ull) first = o;
    }
  };
  while (n != 0 && (off & 7) != 0) {
    one(*p++, off++);
    --n;
  }
  for (; n >= 8; n -= 8, p += 8, off += 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    if (w != word_at(off >> 3))
      for (int k = 0; k < 8; ++k) one(p[k], off + uint64_t(k));
  }
  while (n-- != 0) one(*p++, off++);
  return bad;
}

uint64_t wall_ms() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1'000'000;
}

// ----- options and shared state -----

struct Options {
  int expect_channel = -1;  // -1: either
  bool pool = false, describe = false;
  uint64_t progress = 64ull << 20;
};
Options opts;
std::atomic<int> misuses{0};
std::atomic<bool> close_listeners{false}, report_now{false};

// The ledger: what this process holds privately, in a MAP_SHARED file page.
struct LedgerPage {
  uint64_t magic;
  int64_t pid;
  volatile int64_t mbufs;
  volatile int64_t bytes;
};
constexpr uint64_t ledger_magic = 0x72656467656c6b73ull;  // "skledger"
LedgerPage* ledger = nullptr;

void held(const Buffer& b, int sign) {
  if (ledger == nullptr || b.empty()) return;
  ledger->mbufs = ledger->mbufs + sign * int64_t(b.segment_count());
  ledger->bytes = ledger->bytes + sign * int64_t(b.size());
}

// A Buffer the application holds, counted in the ledger while it does.
class Held {
 public:
  Held() = default;
  explicit Held(Buffer&& b) : b_(std::move(b)) { held(b_, +1); }
  Held(Held&& o) noexcept : b_(std::move(o.b_)) {}
  Held& operator=(Held&& o) noexcept {
    if (this != &o) {
      reset();
      b_ = std::move(o.b_);
    }
    return *this;
  }
  ~Held() { reset(); }
  void reset() {
    held(b_, -1);
    b_ = Buffer();
  }
  Buffer& buf() { return b_; }
  bool empty() const { return b_.empty(); }
  // send() took it (b_ is empty now): it is the peer's.
  void sent(size_t segs, size_t bytes) {
    if (ledger == nullptr) return;
    ledger->mbufs = ledger->mbufs - int64_t(segs);
    ledger->bytes = ledger->bytes - int64_t(bytes);
  }

 private:
  Buffer b_;
};

bool open_ledger(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || ftruncate(fd, 4096) != 0) return false;
  void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) return false;
  ledger = static_cast<LedgerPage*>(p);
  ledger->pid = getpid();
  ledger->magic = ledger_magic;
  return true;
}

int print_ledger(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  LedgerPage l{};
  if (fd < 0 || ::read(fd, &l, sizeof l) != ssize_t(sizeof l) || l.magic != ledger_magic) {
    std::printf("ledger: %s: not a ledger\n", path.c_str());
    if (fd >= 0) ::close(fd);
    return 1;
  }
  ::close(fd);
  std::printf("ledger: pid %lld held %lld mbufs, %lld bytes\n", (long long)l.pid, (long long)l.mbufs,
              (long long)l.bytes);
  return 0;
}

void print_pool(const char* who) {
  rte_mempool* mp = rte_mempool_lookup("keel_mp_pool");
  if (mp == nullptr) {
    std::printf("%s: pool keel_mp_pool not found (not a multi-process group)\n", who);
  } else {
    std::printf("%s: pool in use %u of %u (ops %d: %s here)\n", who, rte_mempool_in_use_count(mp), mp->size,
                mp->ops_index, rte_mempool_get_ops(mp->ops_index)->name);
  }
  std::fflush(stdout);
}

void print_directory(const char* who) {
  std::string why;
  keel::shm::Node* n = keel::shm::Node::open(0, 0, false, why);
  std::string d = n != nullptr ? n->describe() : "no node zone: " + why + "\n";
  std::printf("%s: directory:\n", who);
  size_t at = 0;
  while (at < d.size()) {
    size_t e = d.find('\n', at);
    if (e == std::string::npos) e = d.size();
    std::printf("  %s\n", d.substr(at, e - at).c_str());
    at = e + 1;
  }
  std::fflush(stdout);
}

void reports(const char* who) {
  if (opts.pool) print_pool(who);
  if (opts.describe) print_directory(who);
}

// ----- the server -----

constexpr size_t header_len = 16;
constexpr size_t report_len = 24;

struct SConn {
  Connection c;
  enum Mode { header, sink, echo } mode = header;
  uint8_t hdr[header_len];
  size_t hdr_got = 0;
  uint64_t expect = 0, got = 0, bad = 0, first_bad = ~0ull, next_progress = 0;
  uint32_t crc = 0;
  Held pending;  // echo: received, not yet taken by send()
  bool eof = false, finishing = false, fin_sent = false, channel = false;
  std::string peer;
  uint8_t report[report_len];
  size_t report_sent = 0;
};

const char* mode_name(SConn::Mode m) { return m == SConn::sink ? "sink" : m == SConn::echo ? "echo" : "header"; }

void sconn_line(SConn& s, const std::string& how) {
  std::printf("serve: conn %s channel=%s from %s: %llu bytes, crc %08x, mismatches %llu: %s\n", mode_name(s.mode),
              s.channel ? "yes" : "no", s.peer.c_str(), (unsigned long long)s.got, s.crc, (unsigned long long)s.bad,
              how.c_str());
  std::fflush(stdout);
}

// Moves what can move; Errc::ok, or the error of the call that failed.
Errc serve_io(SConn& s) {
  Connection c = s.c;
  for (;;) {
    if (s.mode == SConn::header) {
      auto n = c.read(s.hdr + s.hdr_got, header_len - s.hdr_got);
      if (!n) return n.error() == Errc::would_block ? Errc::ok : n.error();
      if (*n == 0) {
        s.eof = true;
        return Errc::ok;
      }
      s.hdr_got += *n;
      if (s.hdr_got < header_len) continue;
      if (std::memcmp(s.hdr, "SINK", 4) == 0) {
        s.mode = SConn::sink;
        std::memcpy(&s.expect, s.hdr + 8, 8);
        s.next_progress = opts.progress;
      } else if (std::memcmp(s.hdr, "ECHO", 4) == 0) {
        s.mode = SConn::echo;
      } else {
        return Errc::invalid_argument;
      }
      continue;
    }
    if (s.mode == SConn::sink) {
      if (s.finishing) {
        // The report, then FIN.
        while (s.report_sent < report_len) {
          auto w = c.write(s.report + s.report_sent, report_len - s.report_sent);
          if (!w) return w.error() == Errc::would_block ? Errc::ok : w.error();
          s.report_sent += *w;
        }
        if (!s.fin_sent) {
          s.fin_sent = true;
          if (auto r = c.shutdown(); !r) return r.error();
        }
        return Errc::ok;
      }
      auto r = c.recv();
      if (!r) return r.error() == Errc::would_block ? Errc::ok : r.error();
      if (r->empty()) {
        s.eof = true;
      } else {
        Held h(std::move(*r));
        h.buf().for_each_segment([&](keel::Segment seg) {
          s.bad += check(seg.data, seg.size, s.got, s.first_bad);
          s.crc = rte_hash_crc(seg.data, uint32_t(seg.size), s.crc);
          s.got += seg.size;
        });
        // h goes here: its mbufs back to the pool, its bytes out of the budget.
      }
      if (s.got >= s.next_progress) {
        std::printf("serve: progress %llu\n", (unsigned long long)s.got);
        std::fflush(stdout);
        while (s.next_progress <= s.got) s.next_progress += opts.progress;
      }
      if (s.eof || (s.expect != 0 && s.got >= s.expect)) {
        std::memcpy(s.report, "REPT", 4);
        std::memcpy(s.report + 4, &s.crc, 4);
        std::memcpy(s.report + 8, &s.got, 8);
        std::memcpy(s.report + 16, &s.bad, 8);
        s.finishing = true;
      }
      continue;
    }
    // echo
    if (s.pending.empty()) {
      if (s.eof) return Errc::ok;
      auto r = c.recv();
      if (!r) return r.error() == Errc::would_block ? Errc::ok : r.error();
      if (r->empty()) {
        s.eof = true;
        return Errc::ok;
      }
      s.got += r->size();
      s.pending = Held(std::move(*r));
    }
    size_t segs = s.pending.buf().segment_count(), bytes = s.pending.buf().size();
    auto w = c.send(s.pending.buf());
    if (!w) return w.error() == Errc::would_block ? Errc::ok : w.error();
    s.pending.sent(segs, bytes);
  }
}

void serve(Stack& stack, const std::vector<uint16_t>& ports) {
  std::vector<keel::Listener> ls;
  for (uint16_t p : ports) {
    auto l = stack.listen({keel::Ipv4Address::any(), p});
    if (!l) {
      std::printf("serve: listen on %u: %s: FAILED\n", p, errs(l.error()).c_str());
      std::fflush(stdout);
      stack.request_stop();
      return;
    }
    ls.push_back(*l);
  }
  std::printf("serve: ready ports");
  for (uint16_t p : ports) std::printf(" %u", p);
  std::printf(" instance %u pid %d\n", stack.id(), int(getpid()));
  std::fflush(stdout);
  reports("serve");
  examples::ConnTable<SConn> conns;
  while (stack.running()) {
    if (close_listeners.exchange(false)) {
      for (auto& l : ls) (void)l.close();
      ls.clear();
      std::printf("serve: listeners closed at_ms=%llu\n", (unsigned long long)wall_ms());
      std::fflush(stdout);
      reports("serve");
    }
    if (report_now.exchange(false)) {
      print_pool("serve");
      print_directory("serve");
      for (uint64_t id = 1; SConn* s = conns.at(id); ++id)
        if (s->c.valid())
          std::printf("serve: conn %s from %s: %llu bytes, holding %zu, eof %d\n", mode_name(s->mode), s->peer.c_str(),
                      (unsigned long long)s->got, s->pending.empty() ? size_t(0) : s->pending.buf().size(), int(s->eof));
      std::fflush(stdout);
    }
    for (const Event& e : stack.poll()) {
      uint64_t id = conns.id_of(e);
      SConn* s = conns.at(id);
      if (s == nullptr) continue;
      if (e.has(ev::accepted)) {
        s->c = e.conn;
        s->channel = e.conn.is_channel().value_or(false);
        auto p = e.conn.peer();
        s->peer = p ? p->to_string() : "?";
      } else if (s->c != e.conn) {
        continue;  // an event of a connection given up already (its entry was reused)
      }
      // After closed with an error the handle is stale: no more calls (an orderly
      // close leaves what arrived before the FIN readable).
      bool stale = e.has(ev::closed) && e.error != Errc::ok;
      if (!stale && e.has(ev::readable | ev::writable | ev::peer_closed | ev::accepted)) {
        if (Errc err = serve_io(*s); err != Errc::ok) {
          // A reset is seen here or as the closed event, whichever comes first.
          sconn_line(*s, errs(err) + " at_ms=" + std::to_string(wall_ms()));
          // A bad header: abort. Otherwise the failure ended it already (close() is then quietly bad_handle).
          (void)(err == Errc::invalid_argument ? e.conn.abort() : e.conn.close());
          conns.detach(id);
          continue;
        }
      }
      if (e.has(ev::closed)) {
        bool orderly = e.error == Errc::ok;
        bool ok = orderly && (s->mode == SConn::echo || (s->mode == SConn::sink && s->bad == 0 &&
                                                         (s->expect == 0 || s->got == s->expect)));
        std::string how = orderly ? (ok ? "ok" : "FAILED: incomplete or corrupt")
                                  : errs(e.error) + " at_ms=" + std::to_string(wall_ms());
        sconn_line(*s, how);
        (void)e.conn.close();  // after the closed event: quietly bad_handle, or frees what stays readable
        conns.detach(id);
        continue;
      }
      if ((s->mode == SConn::echo && s->eof && s->pending.empty()) || (s->mode == SConn::header && s->eof)) {
        sconn_line(*s, s->mode == SConn::header ? "EOF before a header" : "ok");
        (void)e.conn.close();
        conns.detach(id);
      }
    }
  }
  for (auto& l : ls) (void)l.close();
}

// ----- the clients -----

struct Client {
  Stack& stack;
  std::string name;
  Connection c;
  bool gone = false;     // the handle is stale (closed event seen, or a call failed)
  bool failed = false;
  std::string why;
  uint64_t t0 = 0;

  void fail(const std::string& w) {
    if (!failed) why = w;
    failed = true;
  }

  // Connects and waits for connected; checks --expect-channel.
  bool open(keel::Endpoint to) {
    keel::ConnectOptions o;
    o.timeout_ms = 5000;
    auto r = stack.connect(to, o);
    if (!r) {
      fail("connect: " + errs(r.error()));
      return false;
    }
    c = *r;
    uint64_t deadline = stack.now_ns() + 10'000'000'000ull;
    while (stack.running() && stack.now_ns() < deadline) {
      for (const Event& e : stack.poll()) {
        if (e.conn != c) continue;
        if (e.has(ev::closed)) {
          gone = true;
          fail("connect: closed " + errs(e.error));
          return false;
        }
        if (e.has(ev::connected)) {
          bool ch = c.is_channel().value_or(false);
          if (opts.expect_channel >= 0 && int(ch) != opts.expect_channel) {
            fail(std::string("the connection is ") + (ch ? "a channel" : "TCP") + ", expected " +
                 (opts.expect_channel ? "a channel" : "TCP"));
            return false;
          }
          t0 = stack.now_ns();
          return true;
        }
      }
    }
    fail("connect: no event within 10 s");
    return false;
  }

  std::string channel_word() const {
    if (gone) return "?";
    auto ch = c.is_channel();
    return ch ? (*ch ? "yes" : "no") : "?";
  }

  void end() {
    if (c.valid()) (void)c.close();  // quietly bad_handle if already closed
    // A few iterations hand our FIN / release over before the next mode.
    for (uint64_t until = stack.now_ns() + 20'000'000; stack.now_ns() < until;) (void)stack.poll();
  }
};

bool write_all(Client& cl, const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  while (n != 0 && !cl.failed) {
    auto w = cl.c.write(b, n);
    if (w) {
      b += *w;
      n -= *w;
      continue;
    }
    if (w.error() != Errc::would_block) {
      cl.gone = true;
      cl.fail("write: " + errs(w.error()));
      return false;
    }
    for (const Event& e : cl.stack.poll())
      if (e.conn == cl.c && e.has(ev::closed)) {
        cl.gone = true;
        cl.fail("closed " + errs(e.error));
      }
  }
  return !cl.failed;
}

// stream: BYTES of the pattern in zero-copy Buffers; the sink's report or the echo checked.
bool run_stream(Stack& stack, keel::Endpoint to, uint64_t total, bool echo) {
  Client cl{stack, "stream"};
  reports("stream");
  uint64_t sent = 0, back = 0, bad = 0, first_bad = ~0ull, next_progress = opts.progress;
  uint32_t crc_out = 0, crc_back = 0;
  uint64_t secs_ns = 0;
  std::string detail;
  if (cl.open(to)) {
    uint8_t hdr[header_len] = {};
    std::memcpy(hdr, echo ? "ECHO" : "SINK", 4);
    std::memcpy(hdr + 8, &total, 8);
    write_all(cl, hdr, sizeof hdr);
    constexpr size_t chunk = 64 * 1024;
    Held out;
    size_t out_len = 0;
    uint8_t report[report_len];
    size_t report_got = 0;
    bool eof = false;
    bool done = false;
    while (!cl.failed && !done && stack.running()) {
      // Send while the channel takes it.
      while (!cl.failed && sent < total) {
        if (out.empty()) {
          if (cl.c.send_space().value_or(0) == 0) {  // hold nothing while blocked
            (void)cl.c.want_writable();  // a writable event when there is room (no would_block asked for it)
            break;
          }
          out_len = size_t(std::min<uint64_t>(chunk, total - sent));
          auto b = stack.alloc(out_len);
          if (!b) {
            cl.fail("alloc: " + errs(b.error()));
            break;
          }
          out = Held(std::move(*b));
          uint64_t off = sent;
          out.buf().for_each_segment([&](keel::Segment s) {
            fill(s.data, s.size, off);
            crc_out = rte_hash_crc(s.data, uint32_t(s.size), crc_out);
            off += s.size;
          });
        }
        size_t segs = out.buf().segment_count();
        auto r = cl.c.send(out.buf());
        if (!r) {
          if (r.error() == Errc::would_block) break;
          cl.gone = true;
          cl.fail("send: " + errs(r.error()) + " at_ms=" + std::to_string(wall_ms()));
          break;
        }
        out.sent(segs, out_len);
        sent += out_len;
        if (!echo && sent >= next_progress) {
          std::printf("stream: progress %llu\n", (unsigned long long)sent);
          std::fflush(stdout);
          while (next_progress <= sent) next_progress += opts.progress;
        }
      }
      if (cl.failed) break;
      for (const Event& e : stack.poll()) {
        if (e.conn != cl.c) continue;
        if (e.has(ev::closed) && e.error != Errc::ok) {  // the handle is stale now
          cl.gone = true;
          if (!done) cl.fail("closed " + errs(e.error) + " at_ms=" + std::to_string(wall_ms()));
          break;
        }
        if (e.has(ev::readable | ev::peer_closed)) {
          for (;;) {
            if (echo) {
              auto r = cl.c.recv();
              if (!r) {
                if (r.error() != Errc::would_block) {
                  cl.gone = true;
                  cl.fail("recv: " + errs(r.error()));
                }
                break;
              }
              if (r->empty()) {
                eof = true;
                break;
              }
              Held h(std::move(*r));
              h.buf().for_each_segment([&](keel::Segment s) {
                bad += check(s.data, s.size, back, first_bad);
                crc_back = rte_hash_crc(s.data, uint32_t(s.size), crc_back);
                back += s.size;
              });
              if (back >= next_progress) {
                std::printf("stream: progress %llu\n", (unsigned long long)back);
                std::fflush(stdout);
                while (next_progress <= back) next_progress += opts.progress;
              }
              if (back == total) done = true;
            } else {
              auto n = cl.c.read(report + report_got, report_len - report_got);
              if (!n) {
                if (n.error() != Errc::would_block) {
                  cl.gone = true;
                  cl.fail("read: " + errs(n.error()));
                }
                break;
              }
              if (*n == 0) {
                eof = true;
                break;
              }
              report_got += *n;
              if (report_got == report_len) done = true;
            }
          }
          if (eof && !done) cl.fail("EOF before the end");
        }
        if (e.has(ev::closed) && !done) {
          cl.gone = true;
          cl.fail("closed " + errs(e.error) + " at_ms=" + std::to_string(wall_ms()));
        }
      }
    }
    secs_ns = stack.now_ns() - cl.t0;
    if (done && !echo) {
      uint32_t rcrc;
      uint64_t rbytes, rbad;
      std::memcpy(&rcrc, report + 4, 4);
      std::memcpy(&rbytes, report + 8, 8);
      std::memcpy(&rbad, report + 16, 8);
      char buf[160];
      std::snprintf(buf, sizeof buf, "sink reports %llu bytes, crc %08x (sent %08x), mismatches %llu",
                    (unsigned long long)rbytes, rcrc, crc_out, (unsigned long long)rbad);
      detail = buf;
      if (std::memcmp(report, "REPT", 4) != 0) cl.fail("not a sink report");
      else if (rbytes != total || rcrc != crc_out || rbad != 0) cl.fail("the sink saw other bytes");
    } else if (done) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "echoed %llu bytes, crc %08x (sent %08x), mismatches %llu",
                    (unsigned long long)back, crc_back, crc_out, (unsigned long long)bad);
      detail = buf;
      if (bad != 0 || crc_back != crc_out) cl.fail("the echo differs (first at " + std::to_string(first_bad) + ")");
    } else if (!cl.failed) {
      cl.fail("interrupted");
    }
  }
  std::string ch = cl.channel_word();
  cl.end();
  double secs = double(secs_ns) / 1e9;
  std::printf("stream: %s %llu bytes in %.3f s, %.1f MB/s, channel=%s, %s: %s%s\n", echo ? "echo" : "sink",
              (unsigned long long)sent, secs, secs > 0 ? double(sent) / 1e6 / secs : 0.0, ch.c_str(),
              detail.empty() ? "-" : detail.c_str(), cl.failed ? "FAILED: " : "ok", cl.why.c_str());
  std::fflush(stdout);
  reports("stream");
  return !cl.failed;
}

// rr: N 64-byte request/response round trips through an echo.
bool run_rr(Stack& stack, keel::Endpoint to, uint64_t rounds) {
  Client cl{stack, "rr"};
  reports("rr");
  uint64_t done_rounds = 0, bad = 0, first_bad = ~0ull;
  uint64_t ns = 0;
  if (cl.open(to)) {
    uint8_t hdr[header_len] = {};
    std::memcpy(hdr, "ECHO", 4);
    write_all(cl, hdr, sizeof hdr);
    uint8_t resp[64];
    while (!cl.failed && done_rounds < rounds && stack.running()) {
      const uint64_t off = done_rounds * 64;
      auto b = stack.alloc(64);
      if (!b) {
        cl.fail("alloc: " + errs(b.error()));
        break;
      }
      Held req(std::move(*b));
      req.buf().for_each_segment([&](keel::Segment s) { fill(s.data, s.size, off); });
      size_t segs = req.buf().segment_count();
      bool sent = false;
      while (!sent && !cl.failed) {
        auto r = cl.c.send(req.buf());
        if (r) {
          req.sent(segs, 64);
          sent = true;
        } else if (r.error() != Errc::would_block) {
          cl.gone = true;
          cl.fail("send: " + errs(r.error()));
        } else {
          for (const Event& e : stack.poll())
            if (e.conn == cl.c && e.has(ev::closed)) {
              cl.gone = true;
              cl.fail("closed " + errs(e.error));
            }
        }
      }
      size_t got = 0;
      while (got < 64 && !cl.failed) {
        auto n = cl.c.read(resp + got, 64 - got);
        if (n && *n != 0) {
          got += *n;
          continue;
        }
        if (n) {
          cl.fail("EOF in round " + std::to_string(done_rounds));
          break;
        }
        if (n.error() != Errc::would_block) {
          cl.gone = true;
          cl.fail("read: " + errs(n.error()));
          break;
        }
        bool closed = false;
        for (const Event& e : stack.poll_nowait())
          if (e.conn == cl.c && e.has(ev::closed)) {
            closed = true;
            cl.gone = true;
            cl.fail("closed " + errs(e.error));
          }
        if (closed) break;
      }
      if (got == 64) {
        bad += check(resp, 64, off, first_bad);
        ++done_rounds;
      }
    }
    ns = stack.now_ns() - cl.t0;
    if (bad != 0) cl.fail(std::to_string(bad) + " bytes differ (first at " + std::to_string(first_bad) + ")");
    if (!cl.failed && done_rounds < rounds) cl.fail("interrupted");
  }
  std::string ch = cl.channel_word();
  cl.end();
  double secs = double(ns) / 1e9;
  std::printf("rr: %llu round trips of 64 bytes in %.3f s, %.2f us each, channel=%s, mismatches %llu: %s%s\n",
              (unsigned long long)done_rounds, secs, done_rounds ? secs * 1e6 / double(done_rounds) : 0.0, ch.c_str(),
              (unsigned long long)bad, cl.failed ? "FAILED: " : "ok", cl.why.c_str());
  std::fflush(stdout);
  reports("rr");
  return !cl.failed;
}

// connect: the first event, as one word (connected, or the closed event's error).
bool run_connect(Stack& stack, keel::Endpoint to, const std::string& expect, uint32_t timeout_ms) {
  reports("connect");
  uint64_t refused0 = stack.counter("shm_refused"), connects0 = stack.counter("shm_connects");
  uint64_t syn0 = stack.counter("tcp_active_opens");
  keel::ConnectOptions o;
  o.timeout_ms = timeout_ms;
  uint64_t t0 = stack.now_ns();
  auto r = stack.connect(to, o);
  std::string result, channel = "?", how = "as its first event";
  if (!r) {
    result = errs(r.error());
    how = "from connect() itself";
  } else {
    Connection c = *r;
    uint64_t deadline = stack.now_ns() + uint64_t(timeout_ms) * 1'000'000 + 5'000'000'000ull;
    while (result.empty() && stack.running() && stack.now_ns() < deadline) {
      for (const Event& e : stack.poll()) {
        if (e.conn != c) continue;
        if (e.has(ev::closed)) {
          result = e.error == Errc::ok ? "closed" : errs(e.error);
          break;
        }
        if (e.has(ev::connected)) {
          result = "connected";
          channel = c.is_channel().value_or(false) ? "yes" : "no";
          break;
        }
      }
    }
    if (result.empty()) result = "no event";
    (void)c.close();
  }
  double ms = double(stack.now_ns() - t0) / 1e6;
  bool ok = expect.empty() || result == expect;
  if (ok && result == "connected" && opts.expect_channel >= 0 && (channel == "yes") != bool(opts.expect_channel))
    ok = false;
  std::printf("connect: %s %s %s after %.1f ms, channel=%s (shm_connects +%llu, shm_refused +%llu, tcp_active_opens +%llu): %s\n",
              to.to_string().c_str(), result.c_str(), how.c_str(), ms, channel.c_str(),
              (unsigned long long)(stack.counter("shm_connects") - connects0),
              (unsigned long long)(stack.counter("shm_refused") - refused0),
              (unsigned long long)(stack.counter("tcp_active_opens") - syn0), ok ? "ok" : "FAILED: unexpected");
  std::fflush(stdout);
  for (uint64_t until = stack.now_ns() + 20'000'000; stack.now_ns() < until;) (void)stack.poll();
  reports("connect");
  return ok;
}

// wait: polls until `path` exists.
bool run_wait(Stack& stack, const std::string& path) {
  while (stack.running() && access(path.c_str(), F_OK) != 0) (void)stack.poll();
  std::printf("wait: %s\n", stack.running() ? "go" : "stopped");
  std::fflush(stdout);
  return stack.running();
}

struct Action {
  std::string mode;
  std::string word;  // connect: the expected result; wait: the file
  keel::Endpoint to;
  uint64_t n = 0;
  bool echo = false;
  std::vector<uint16_t> ports;
};

const char* usage =
    "usage: shm_peer [--config FILE] [--expect-channel yes|no] [--pool] [--describe]\n"
    "                [--ledger FILE] [--progress BYTES] MODE ARGS [+ MODE ARGS ...]\n"
    "  serve PORT [PORT...] | stream ADDR PORT BYTES [sink|echo] | rr ADDR PORT N |\n"
    "  connect ADDR PORT [EXPECT] [TIMEOUT_MS] | wait FILE       shm_peer ledger FILE";

}  // namespace

int main(int argc, char** argv) {
  auto args = examples::arguments(argc, argv);
  if (args.size() == 2 && args[0] == "ledger") return print_ledger(args[1]);
  auto cfg = examples::configure(args, usage);
  if (!cfg) return 1;
  // Options.
  for (size_t i = 0; i < args.size();) {
    const std::string& a = args[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= args.size()) {
        std::fprintf(stderr, "%s needs a value\n%s\n", a.c_str(), usage);
        std::exit(2);
      }
      std::string v = args[i + 1];
      args.erase(args.begin() + long(i), args.begin() + long(i) + 2);
      return v;
    };
    if (a == "--expect-channel") {
      std::string v = value();
      opts.expect_channel = v == "yes" ? 1 : v == "no" ? 0 : -2;
      if (opts.expect_channel == -2) {
        std::fprintf(stderr, "--expect-channel yes|no\n");
        return 2;
      }
    } else if (a == "--ledger") {
      std::string f = value();
      if (!open_ledger(f)) {
        std::fprintf(stderr, "shm_peer: cannot map ledger %s\n", f.c_str());
        return 1;
      }
    } else if (a == "--progress") {
      auto v = examples::parse_size(value());
      if (!v || *v == 0) {
        std::fprintf(stderr, "--progress BYTES\n");
        return 2;
      }
      opts.progress = *v;
    } else if (a == "--pool") {
      opts.pool = true;
      args.erase(args.begin() + long(i));
    } else if (a == "--describe") {
      opts.describe = true;
      args.erase(args.begin() + long(i));
    } else {
      ++i;
    }
  }
  // Modes.
  std::vector<Action> acts;
  for (size_t i = 0; i < args.size();) {
    size_t j = i;
    while (j < args.size() && args[j] != "+") ++j;
    std::vector<std::string> w(args.begin() + long(i), args.begin() + long(j));
    i = j + 1;
    Action a;
    bool ok = !w.empty();
    if (ok) a.mode = w[0];
    if (ok && a.mode == "serve") {
      ok = w.size() >= 2;
      for (size_t k = 1; ok && k < w.size(); ++k) {
        a.ports.push_back(examples::parse_port(w[k]));
        ok = a.ports.back() != 0;
      }
    } else if (ok && (a.mode == "stream" || a.mode == "rr" || a.mode == "connect")) {
      auto ep = w.size() >= 3 ? examples::parse_endpoint(w[1], w[2]) : std::nullopt;
      ok = ep.has_value();
      if (ok) a.to = *ep;
      if (ok && a.mode == "stream") {
        auto n = w.size() >= 4 && w.size() <= 5 ? examples::parse_size(w[3]) : std::nullopt;
        ok = n && *n != 0 && (w.size() == 4 || w[4] == "sink" || w[4] == "echo");
        if (ok) a.n = *n, a.echo = w.size() == 5 && w[4] == "echo";
      } else if (ok && a.mode == "rr") {
        auto n = w.size() == 4 ? examples::parse_size(w[3]) : std::nullopt;
        ok = n && *n != 0;
        if (ok) a.n = *n;
      } else if (ok) {
        size_t k = 3;
        if (k < w.size() && !examples::parse_size(w[k])) a.word = w[k++];
        auto n = k < w.size() ? examples::parse_size(w[k++]) : std::optional<uint64_t>(3000);
        ok = k == w.size() && n && *n != 0 && *n < (1ull << 31);
        if (ok) a.n = *n;
      }
    } else if (ok && a.mode == "wait") {
      ok = w.size() == 2;
      if (ok) a.word = w[1];
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "%s\n", usage);
      return 2;
    }
    acts.push_back(a);
  }
  if (acts.empty() || (acts[0].mode == "serve" && acts.size() != 1)) {
    std::fprintf(stderr, "%s\n", usage);
    return 2;
  }
  keel::set_misuse_handler([](Errc e, const char* what) {
    std::fprintf(stderr, "shm_peer: API misuse: %s (%s)\n", what, std::string(keel::to_string(e)).c_str());
    ++misuses;
  });
  std::signal(SIGUSR1, [](int) { close_listeners = true; });
  std::signal(SIGUSR2, [](int) { report_now = true; });
  bool all_ok = true;
  auto body = [&](Stack& s) {
    if (!examples::first_to_ask()) {  // one instance runs the modes; the others keep polling
      while (s.running()) (void)s.poll();
      return;
    }
    if (acts[0].mode == "serve") {
      serve(s, acts[0].ports);
      return;
    }
    for (const Action& a : acts) {
      bool ok = a.mode == "stream" ? run_stream(s, a.to, a.n, a.echo)
                : a.mode == "rr"   ? run_rr(s, a.to, a.n)
                : a.mode == "wait" ? run_wait(s, a.word)
                                   : run_connect(s, a.to, a.word, uint32_t(a.n));
      all_ok = all_ok && ok;
      if (!s.running()) break;
    }
    s.request_stop();
  };
  // examples::run() without Runtime::run(): that waits in rte_eal_wait_lcore, which
  // spins (a whole CPU for the main thread while the instances run; on this test's
  // two-CPU machine it starves the other processes). The main thread sleeps instead.
  auto rt = keel::Runtime::create(*cfg);
  if (!rt) {
    std::fprintf(stderr, "keel: %s\n", rt.error().c_str());
    return 1;
  }
  examples::running_runtime = rt->get();
  std::signal(SIGINT, [](int) { examples::stop_all(); });
  std::signal(SIGTERM, [](int) { examples::stop_all(); });
  std::atomic<size_t> left{(*rt)->instances()};
  int rc = 0;
  if (auto r = (*rt)->launch([&](Stack& s) {
        body(s);
        --left;
      });
      !r) {
    std::fprintf(stderr, "keel: %s\n", r.error().c_str());
    rc = 1;
  } else {
    if (getenv("SHM_PEER_SPIN") == nullptr)
      while (left.load() != 0) usleep(5000);
    (*rt)->wait();
  }
  examples::running_runtime = nullptr;
  rt->reset();
  if (misuses != 0) std::fprintf(stderr, "shm_peer: %d API misuse(s)\n", misuses.load());
  return rc != 0 ? rc : all_ok && misuses == 0 ? 0 : 1;
}
