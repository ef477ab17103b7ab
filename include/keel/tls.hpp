// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// keel::tls: TLS 1.3 and 1.2 over a keel TCP connection, with the native
/// API's event model and buffer types. OpenSSL 3 runs the handshake (memory
/// BIOs, no socket); keel's record layer then seals and opens every record:
/// received records are decrypted in place and their content reaches the
/// application as the received mbufs (recv(), zero copy); send() encrypts the
/// application's bytes once, straight into the mbufs TCP sends and keeps
/// for retransmission (the plaintext Buffer is released at once).
///
///     auto tls = keel::tls::Connection::wrap(stack, conn, config);   // after accept / connect
///     for (const keel::Event& ev : stack.poll())
///       if (ev.conn == tls->tcp()) {
///         keel::Event t = tls->on_event(ev);   // the same flags, at the TLS level
///         if (t.has(keel::event::connected)) ...   // handshake done (both sides)
///         if (t.has(keel::event::readable)) ...    // tls->recv() / read()
///       }
///
/// Events from on_event(): connected (handshake complete), readable (content
/// waiting), writable (after a would_block), peer_closed (close_notify, or a
/// TCP FIN without it), closed (error: ok for an orderly end; connection_aborted
/// when keel refused a record or the handshake and sent the alert;
/// connection_reset for the peer's fatal alert or a TCP reset). The tls_*
/// counters (Stack::counter) count handshakes, records, alerts, refusals.
/// A Connection belongs to its stack's lcore; it is move-only.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <keel/buffer.hpp>
#include <keel/result.hpp>
#include <keel/stack.hpp>

namespace keel::tls {

class Context;
class Session;

struct Options {
  bool server = true;
  std::string cert_file;  ///< PEM certificate chain (required for a server)
  std::string key_file;   ///< its PEM private key
  /// Server: more {certificate, key} PEM file pairs, chosen by the client's
  /// SNI: the first whose subjectAltName DNS names (else CN) match it, a
  /// wildcard covering one label. cert_file serves the rest.
  std::vector<std::pair<std::string, std::string>> sni_certs;
  /// Server: refuse a name no certificate matches (unrecognized_name alert).
  bool sni_strict = false;
  /// Server: require client certificates from this PEM CA. Client: verify
  /// the server against it (empty: no verification).
  std::string ca_file;
  std::vector<std::string> alpn;  ///< e.g. {"http/1.1"}
  bool tls12 = true, tls13 = true;
  bool tickets = true;            ///< server: session tickets (resumption)
};

/// A TLS configuration (an OpenSSL context) shared by many connections.
class Config {
 public:
  /// The error names the file or option that failed and why.
  static Result<Config, std::string> create(const Options& o);

 private:
  friend class Connection;
  std::shared_ptr<Context> ctx_;
};

class Connection {
 public:
  /// Wraps a TCP connection of `stack` (accepted, or returned by connect()
  /// before or after its connected event). `sni`: the client's server name.
  /// `session`: a client's session_ticket() from an earlier connection to
  /// resume (empty or unusable: a full handshake; resumed() tells).
  /// no_memory if the stack's pool is dry; bad_handle for a dead connection.
  static Result<Connection> wrap(Stack& stack, keel::Connection conn, const Config& cfg,
                                 const std::string& sni = {}, const std::vector<uint8_t>& session = {});
  Connection(Connection&&) noexcept;
  Connection& operator=(Connection&&) noexcept;
  ~Connection();  ///< frees what it holds; does not close the TCP connection

  /// The TCP connection's event in, the TLS connection's event out (flags
  /// may be 0: nothing for the application yet).
  Event on_event(const Event& ev);

  /// Seals `b`'s bytes into records that fill whole TCP segments (up to
  /// 2^14 content bytes each; the rest in one shorter record) and queues them;
  /// on success `b` is empty. would_block when the send buffer cannot take
  /// them all (`b` untouched; a writable event follows); not_connected before
  /// the handshake is done or after close().
  Result<void> send(Buffer& b);
  /// Copying send: takes what fits; would_block if nothing does.
  Result<size_t> write(const void* data, size_t len);
  /// Content received, as the received mbufs; an empty Buffer: the peer's
  /// close_notify (end of stream). would_block if nothing is waiting.
  Result<Buffer> recv();
  /// Copying receive: up to `cap` bytes; 0 at end of stream.
  Result<size_t> read(void* dst, size_t cap);
  /// close_notify, then an orderly TCP close. The handle is done.
  Result<void> close();

  bool established() const;
  keel::Connection tcp() const;
  /// The ALPN protocol chosen ("" if none), whether the session was resumed,
  /// whether the peer's certificate verified.
  std::string alpn() const;
  bool resumed() const;
  bool peer_verified() const;
  /// The SNI name the client sent (server) or offered (client); "" if none.
  std::string server_name() const;
  /// The peer certificate's subject ("/CN=..."); "" if none.
  std::string peer_subject() const;
  /// Client: the session to pass to a later wrap() (opaque bytes holding
  /// its secret), once the server sent a ticket: TLS 1.2 in the handshake,
  /// 1.3 with its first records after it (a resumed session: the one
  /// resumed, unless a new ticket came). Empty: none yet.
  std::vector<uint8_t> session_ticket() const;
  /// The TLS alert that ended the connection (0 = close_notify / none).
  uint8_t alert() const;

 private:
  struct Impl;
  explicit Connection(std::unique_ptr<Impl> i);
  std::unique_ptr<Impl> impl_;
};

}  // namespace keel::tls
