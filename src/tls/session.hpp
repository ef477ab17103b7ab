// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// keel::tls::Session: one TLS connection as pure logic over mbufs, with no
/// I/O of its own (the transport glue moves the mbufs: keel::tls::Connection
/// over the native API, keel-pmd's https service over TCP).
///
///   input(ciphertext mbufs) -> process() -> take_plaintext() : content mbufs
///   seal(plaintext segments) -> record mbufs         (application data out)
///   take_output() -> handshake flights, alerts, KeyUpdate  (other bytes out)
///
/// Handshake: OpenSSL over memory BIOs (no socket). When it completes, keel's
/// record layer takes over both directions: the TLS 1.3 traffic secrets come
/// from OpenSSL's keylog hook, the TLS 1.2 key block from the master secret;
/// OpenSSL is never asked to write a record again. The records OpenSSL
/// already protected under the application keys (TLS 1.3 NewSessionTicket
/// at a server; TLS 1.2 Finished) are counted from its message callback (one
/// record header after our / the peer's Finished), so keel's sequence
/// numbers continue OpenSSL's. Exception, a TLS 1.3 client: the server's
/// tickets come after the handshake, so OpenSSL keeps reading (SSL_read)
/// until it has taken a ticket or returned application data (copied into
/// plaintext mbufs); then keel's record layer takes the receive direction
/// at that record boundary. Later tickets are dropped.
///
/// Memory: received mbufs are decrypted in place; the content reaches the
/// application as indirect mbufs over them (no copy). seal() reads the
/// plaintext once and writes header, ciphertext and tag once into fresh mbufs
/// from the pool: TCP keeps those until acknowledged, so retransmission sends
/// the ciphertext again and the plaintext can be released at once (keel keeps
/// ciphertext only; see docs/ARCHITECTURE.md, "TLS").
/// Single-threaded: a Session belongs to the lcore of its connection.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <keel/buffer.hpp>
#include <keel/result.hpp>

#include "engine/counters.hpp"
#include "tls/context.hpp"
#include "tls/key_schedule.hpp"
#include "tls/record_cipher.hpp"

struct rte_mbuf;
struct rte_mempool;
struct ssl_st;
struct ssl_session_st;

namespace keel::tls {

namespace detail {
/// The SSL_CTX keylog callback (Context installs it): hands TLS 1.3 traffic
/// secrets to the Session that is the SSL's app data.
void keylog_hook(const ssl_st* ssl, const char* line);
/// The client SSL_CTX's new-session callback: tells the Session the server's
/// ticket (TLS 1.3: after the handshake; 1.2: in it) made its session resumable.
int new_session_hook(ssl_st* ssl, ssl_session_st* sess);
}  // namespace detail

class Session {
 public:
  enum class State : uint8_t { handshaking, established, closed, failed };

  /// A session of `ctx` (server or client as the context is), drawing mbufs
  /// from `pool` and counting into `counters` (the instance's tls_* counters;
  /// nullptr: a private set). `sni`: the client's server name (nullptr: none).
  /// `resume`: a client's session_ticket() from an earlier connection to
  /// offer (empty, or bytes that do not parse: a full handshake).
  Session(std::shared_ptr<Context> ctx, rte_mempool* pool, engine::Counters* counters,
          const char* sni = nullptr, std::span<const uint8_t> resume = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  /// Ciphertext from the peer; takes the chain.
  void input(rte_mbuf* m);
  /// Runs the handshake on what arrived, or opens every complete record.
  /// An error is fatal: state() is failed, the alert to send (if any) is in
  /// take_output(); send it, then close the transport. Errors: the alert
  /// keel sent (bad_record_mac, record_overflow, ...), a refused handshake's
  /// alert as OpenSSL sent or received it (handshake_failure if none),
  /// or the peer's fatal alert.
  Result<void, Alert> process();
  /// The transport's end of stream (TCP FIN). A record cut short by it is
  /// refused with decode_error (alert queued, counted); at a record boundary
  /// it is not an error, but without close_notify peer_closed() stays false
  /// (the application can tell a truncated stream from an orderly end).
  Result<void, Alert> end_of_stream();
  State state() const { return state_; }
  bool established() const { return state_ == State::established || state_ == State::closed; }
  /// The peer sent close_notify: no more content will come.
  bool peer_closed() const { return peer_closed_; }
  /// The session ended on the peer's fatal alert (not one keel sent).
  bool peer_alerted() const { return peer_alerted_; }
  /// Content is waiting for take_plaintext().
  bool has_plaintext() const { return plain_head_ != nullptr; }

  /// Wire bytes to send: handshake flights, alerts, KeyUpdate (nullptr: none).
  rte_mbuf* take_output();
  /// Content received (indirect mbufs over the received ones; nullptr: none).
  rte_mbuf* take_plaintext();

  /// Content bytes per record for records of `segment` bytes on the wire
  /// (an MSS), at most 2^14.
  size_t content_per_record(size_t segment) const;
  /// The wire size of the largest record that fills whole segments of `mss`
  /// bytes: k * mss for the largest k whose record holds at most 2^14 bytes
  /// of content (11 segments at 1448), or one segment if even that is less.
  /// Bulk senders use these: the per-record work (nonce, AEAD set-up, tag,
  /// the receiver's record processing) is paid once per k segments.
  size_t full_record_wire(size_t mss) const;
  /// Seals `content` (at most max_plaintext bytes) into one record in fresh
  /// mbufs. no_memory when the pool is dry (nothing consumed: try later);
  /// not_connected before the handshake or after close.
  /// `segment`: when nonzero (the MSS), each output mbuf holds that many
  /// bytes, so that each TCP segment of the record is one mbuf.
  Result<rte_mbuf*> seal(std::span<const Segment> content, size_t segment = 0);
  /// Queues close_notify (then nothing more can be sealed).
  void close_notify();
  /// Sends KeyUpdate and re-keys the sending direction; `request_peer`
  /// asks the peer to do the same (TLS 1.3 only; not_supported in 1.2).
  Result<void> key_update(bool request_peer);

  Version version() const { return version_; }
  Cipher cipher() const { return cipher_; }
  /// The ALPN protocol chosen ("" if none).
  std::string alpn() const;
  /// True if the handshake resumed a session (ticket).
  bool resumed() const;
  /// Client: the session to resume on a later connection, serialized
  /// (i2d_SSL_SESSION; opaque), once the server sent a ticket (TLS 1.3:
  /// after the handshake, see above; TLS 1.2: in it), or a resumed session
  /// (the same again when the server sent no new ticket). Empty: none yet.
  /// It holds the session's secret: keep it like a key.
  std::vector<uint8_t> session_ticket() const;
  /// TLS 1.3 client: OpenSSL still reads the received records (no ticket
  /// and no application data yet).
  bool rx_by_openssl() const { return rx_openssl_; }
  /// The peer presented a certificate that verified.
  bool peer_verified() const;
  /// The SNI server name: the one the client sent (server), or offered
  /// (client); "" if none.
  std::string server_name() const;
  /// The peer certificate's subject, one line ("/CN=..."); "" if none.
  std::string peer_subject() const;
  uint64_t tx_seq() const { return tx_.seq(); }
  uint64_t rx_seq() const { return rx_.seq(); }

  /// For the OpenSSL callbacks.
  void on_keylog(const char* line);
  void on_record(bool write, int content_type, const uint8_t* buf, size_t len);
  void on_new_session() { got_ticket_ = true; }

 private:
  Result<void, Alert> handshake_step();
  Result<void, Alert> finish_handshake();
  Result<void, Alert> read_by_openssl();
  Result<void, Alert> hand_rx_to_keel();
  Result<void, Alert> take_rx(const TrafficKeys& k, uint64_t seq);
  Result<void, Alert> receive();
  void feed_rbio();
  bool append_plaintext_bytes(const uint8_t* data, size_t len);
  Result<void, Alert> open_records();
  Result<void, Alert> on_handshake_bytes();
  Result<void, Alert> fail(Alert a, bool send);
  bool send_record(ContentType t, const uint8_t* data, size_t len);
  void append_output(rte_mbuf* m);
  bool append_output_bytes(const uint8_t* data, size_t len);
  void drain_wbio();
  void consume_input(size_t n);
  void copy_input(size_t off, size_t len, uint8_t* dst) const;
  rte_mbuf* share_range(size_t off, size_t len);

  std::shared_ptr<Context> ctx_;
  rte_mempool* pool_;
  engine::Counters* counters_;
  engine::Counters own_counters_;
  ssl_st* ssl_ = nullptr;
  State state_ = State::handshaking;
  bool server_;
  bool peer_closed_ = false, sent_close_ = false, peer_alerted_ = false;
  Version version_ = Version::tls13;
  Cipher cipher_ = Cipher::aes_128_gcm;
  RecordCipher tx_, rx_;
  Secret tx_secret_, rx_secret_;     // TLS 1.3: for KeyUpdate
  Secret client_secret_, server_secret_;  // from the keylog, until the handshake ends
  // Records OpenSSL wrote / read after our / the peer's Finished message.
  bool our_finished_ = false, peer_finished_ = false;
  uint32_t written_after_finished_ = 0, read_after_finished_ = 0;
  // TLS 1.3 client until the receive hand-off: OpenSSL reads; what it saw.
  bool rx_openssl_ = false, got_ticket_ = false, peer_key_update_ = false;
  uint8_t alert_read_ = 0, alert_written_ = 0;  // the description of the last alert
  // Ciphertext not yet opened: segments linked through next (the head's
  // pkt_len/nb_segs are not kept; in_len_ is the byte count).
  rte_mbuf* in_ = nullptr, *in_tail_ = nullptr;
  size_t in_len_ = 0;
  rte_mbuf* out_head_ = nullptr, *out_tail_ = nullptr;
  rte_mbuf* plain_head_ = nullptr, *plain_tail_ = nullptr;
  std::vector<Segment> segs_;                      // scratch: one record's segments
  // Post-handshake message bytes not yet whole (fragmented over records).
  std::vector<uint8_t> hs_in_;
};

}  // namespace keel::tls
