// SPDX-License-Identifier: BSD-3-Clause
#include "tls/session.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <string_view>

#include "engine/mbuf_util.hpp"
#include "net/byte_order.hpp"

namespace keel::tls {

namespace {

constexpr uint8_t hs_finished = 20;
constexpr uint8_t hs_new_session_ticket = 4;
constexpr uint8_t hs_key_update = 24;
constexpr uint8_t alert_warning = 1, alert_fatal = 2;
// RFC 8446 5.5: re-key AES-GCM well before 2^24.5 records.
constexpr uint64_t rekey_after_records = uint64_t{1} << 24;

void msg_hook(int write_p, int, int content_type, const void* buf, size_t len, SSL*, void* arg) {
  static_cast<Session*>(arg)->on_record(write_p != 0, content_type, static_cast<const uint8_t*>(buf), len);
}

bool parse_hex(std::string_view hex, Secret& out) {
  if (hex.size() % 2 != 0 || hex.size() / 2 > sizeof out.v) return false;
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < hex.size() / 2; ++i) {
    int hi = nib(hex[2 * i]), lo = nib(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out.v[i] = uint8_t(hi << 4 | lo);
  }
  out.len = hex.size() / 2;
  return true;
}

// The suite's AEAD from its IANA id (RFC 8446 B.4, RFC 5289, RFC 7905).
bool cipher_of(uint16_t id, Cipher& c) {
  switch (id) {
    case 0x1301: case 0xc02b: case 0xc02f: c = Cipher::aes_128_gcm; return true;
    case 0x1302: case 0xc02c: case 0xc030: c = Cipher::aes_256_gcm; return true;
    case 0x1303: case 0xcca9: case 0xcca8: c = Cipher::chacha20_poly1305; return true;
    default: return false;
  }
}

}  // namespace

int detail::new_session_hook(SSL* ssl, SSL_SESSION*) {
  auto* s = static_cast<Session*>(SSL_get_app_data(ssl));
  if (s != nullptr) s->on_new_session();
  return 0;  // no reference kept: session_ticket() serializes SSL_get_session()
}

void detail::keylog_hook(const SSL* ssl, const char* line) {
  auto* s = static_cast<Session*>(SSL_get_app_data(ssl));
  if (s != nullptr) s->on_keylog(line);
}

Session::Session(std::shared_ptr<Context> ctx, rte_mempool* pool, engine::Counters* counters, const char* sni,
                 std::span<const uint8_t> resume)
    : ctx_(std::move(ctx)), pool_(pool), counters_(counters != nullptr ? counters : &own_counters_),
      server_(ctx_->server()) {
  ssl_ = SSL_new(ctx_->ssl_ctx());
  if (ssl_ == nullptr) {
    state_ = State::failed;
    return;
  }
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(rbio, -1);  // empty: retry, not end of stream
  SSL_set_bio(ssl_, rbio, wbio);
  SSL_set_app_data(ssl_, this);
  SSL_set_msg_callback(ssl_, msg_hook);
  SSL_set_msg_callback_arg(ssl_, this);
  if (server_) {
    SSL_set_accept_state(ssl_);
  } else {
    SSL_set_connect_state(ssl_);
    if (sni != nullptr) SSL_set_tlsext_host_name(ssl_, sni);
    if (!resume.empty()) {
      const unsigned char* p = resume.data();
      SSL_SESSION* sess = d2i_SSL_SESSION(nullptr, &p, long(resume.size()));
      if (sess != nullptr) (void)SSL_set_session(ssl_, sess);  // refused (wrong version...): a full handshake
      SSL_SESSION_free(sess);
      ERR_clear_error();
    }
    // After the handshake SSL_read must stop after each ticket record (not go
    // on to the next): keel takes the receive direction at that boundary.
    SSL_clear_mode(ssl_, SSL_MODE_AUTO_RETRY);
    // The client speaks first: run the state machine once to produce the ClientHello.
    (void)handshake_step();
  }
}

Session::~Session() {
  SSL_free(ssl_);
  engine::free_segments(in_);
  engine::free_segments(out_head_);
  engine::free_segments(plain_head_);
  OPENSSL_cleanse(&tx_secret_, sizeof tx_secret_);
  OPENSSL_cleanse(&rx_secret_, sizeof rx_secret_);
  OPENSSL_cleanse(&client_secret_, sizeof client_secret_);
  OPENSSL_cleanse(&server_secret_, sizeof server_secret_);
}

void Session::on_keylog(const char* line) {
  std::string_view l(line);
  size_t sp1 = l.find(' '), sp2 = sp1 == l.npos ? l.npos : l.find(' ', sp1 + 1);
  if (sp2 == l.npos) return;
  std::string_view label = l.substr(0, sp1), hex = l.substr(sp2 + 1);
  if (label == "CLIENT_TRAFFIC_SECRET_0") parse_hex(hex, client_secret_);
  else if (label == "SERVER_TRAFFIC_SECRET_0") parse_hex(hex, server_secret_);
}

// Record headers come before the handshake message they carry, so a header
// seen after our (the peer's) Finished is a record under the application keys.
void Session::on_record(bool write, int content_type, const uint8_t* buf, size_t len) {
  if (content_type == SSL3_RT_HEADER) {
    if (write && our_finished_) ++written_after_finished_;
    if (!write && peer_finished_) ++read_after_finished_;
  } else if (content_type == SSL3_RT_HANDSHAKE && len > 0 && buf[0] == hs_finished) {
    (write ? our_finished_ : peer_finished_) = true;
  } else if (content_type == SSL3_RT_HANDSHAKE && len > 0 && buf[0] == hs_key_update && !write) {
    peer_key_update_ = true;  // only matters while OpenSSL still reads (TLS 1.3 client)
  } else if (content_type == SSL3_RT_ALERT && len == 2) {
    (write ? alert_written_ : alert_read_) = buf[1];
  }
}

void Session::input(rte_mbuf* m) {
  for (rte_mbuf* s = m; s != nullptr;) {
    rte_mbuf* next = s->next;
    s->next = nullptr;
    if (s->data_len == 0) {
      s->nb_segs = 1;
      rte_pktmbuf_free_seg(s);
    } else {
      in_len_ += s->data_len;
      if (in_tail_ != nullptr) in_tail_->next = s;
      else in_ = s;
      in_tail_ = s;
    }
    s = next;
  }
}

Result<void, Alert> Session::process() {
  switch (state_) {
    case State::handshaking: {
      auto r = handshake_step();
      if (!r || state_ != State::established) return r;
      return receive();
    }
    case State::established:
    case State::closed: return receive();
    case State::failed: return Unexpected{Alert::internal_error};
  }
  return {};
}

Result<void, Alert> Session::end_of_stream() {
  if (state_ == State::failed) return Unexpected{Alert::internal_error};
  // RFC 8446 6.1 / RFC 5246 7.2.1: the stream ended inside a record.
  if (established() && in_len_ > 0) return fail(Alert::decode_error, true);
  if (rx_openssl_ && (BIO_ctrl_pending(SSL_get_rbio(ssl_)) > 0 || SSL_has_pending(ssl_) == 1))
    return fail(Alert::decode_error, true);
  return {};
}

Result<void, Alert> Session::receive() {
  if (rx_openssl_) {
    auto r = read_by_openssl();
    if (!r || rx_openssl_) return r;
  }
  return open_records();
}

void Session::feed_rbio() {
  BIO* rbio = SSL_get_rbio(ssl_);
  for (rte_mbuf* s = in_; s != nullptr; s = s->next)
    BIO_write(rbio, rte_pktmbuf_mtod(s, const uint8_t*), s->data_len);
  engine::free_segments(in_);
  in_ = in_tail_ = nullptr;
  in_len_ = 0;
}

// TLS 1.3 client after the handshake: OpenSSL reads record by record
// (SSL_MODE_AUTO_RETRY off: one record per SSL_read at most, no read-ahead)
// until a ticket made the session resumable or application data came; then
// keel takes over at that record boundary.
Result<void, Alert> Session::read_by_openssl() {
  feed_rbio();
  BIO* rbio = SSL_get_rbio(ssl_);
  uint8_t buf[max_plaintext];  // a whole record's content: nothing stays pending inside OpenSSL
  for (;;) {
    size_t before = BIO_ctrl_pending(rbio);
    int n = SSL_read(ssl_, buf, sizeof buf);
    // keel owns the sending keys: whatever OpenSSL wrote (an alert) would reuse a nonce.
    (void)BIO_reset(SSL_get_wbio(ssl_));
    if (n > 0) {
      if (!append_plaintext_bytes(buf, size_t(n))) return fail(Alert::internal_error, true);
      return hand_rx_to_keel();
    }
    int e = SSL_get_error(ssl_, n);
    ERR_clear_error();
    // OpenSSL would answer an update_requested itself; keel cannot follow its keys.
    if (peer_key_update_) return fail(Alert::unexpected_message, true);
    if (e == SSL_ERROR_WANT_READ) {
      if (got_ticket_) return hand_rx_to_keel();
      size_t after = BIO_ctrl_pending(rbio);
      if (after == 0 || after == before) return {};  // a record is incomplete: wait for more
      continue;
    }
    if (e == SSL_ERROR_ZERO_RETURN) {  // close_notify: keel refuses anything after it
      counters_->inc(engine::Counter::tls_alerts_received);
      peer_closed_ = true;
      state_ = State::closed;
      return hand_rx_to_keel();
    }
    if (alert_written_ != 0) return fail(Alert(alert_written_), true);  // OpenSSL refused a record
    if (alert_read_ != 0) {
      counters_->inc(engine::Counter::tls_alerts_received);
      state_ = State::failed;
      peer_alerted_ = true;
      return Unexpected{Alert(alert_read_)};
    }
    return fail(Alert::internal_error, true);
  }
}

Result<void, Alert> Session::hand_rx_to_keel() {
  rx_openssl_ = false;
  auto k = tls13_traffic_keys(cipher_, rx_secret_.span());
  if (!k) return fail(Alert::internal_error, true);
  TrafficKeys rxk = *k;
  OPENSSL_cleanse(&*k, sizeof rxk);
  // The records OpenSSL read under these keys: the ticket(s), at most one of data.
  auto r = take_rx(rxk, read_after_finished_);
  OPENSSL_cleanse(&rxk, sizeof rxk);
  return r;
}

// keel's record layer takes the receive direction: OpenSSL reads record by
// record (no read-ahead), so what it did not need is still in the read BIO,
// and nothing may be buffered inside it.
Result<void, Alert> Session::take_rx(const TrafficKeys& k, uint64_t seq) {
  if (!rx_.init(version_, cipher_, false, k.key_span(), k.iv_span(), seq)) return fail(Alert::internal_error, true);
  if (SSL_has_pending(ssl_) == 1) return fail(Alert::internal_error, true);
  BIO* rbio = SSL_get_rbio(ssl_);
  size_t left = BIO_ctrl_pending(rbio);
  if (left > 0) {
    rte_mbuf* m = engine::alloc_chain(pool_, uint32_t(left));
    if (m == nullptr) return fail(Alert::internal_error, true);
    for (rte_mbuf* s = m; s != nullptr; s = s->next)
      BIO_read(rbio, rte_pktmbuf_mtod(s, uint8_t*), s->data_len);
    input(m);
  }
  return {};
}

Result<void, Alert> Session::handshake_step() {
  feed_rbio();
  int r = SSL_do_handshake(ssl_);
  drain_wbio();
  if (r == 1) return finish_handshake();
  int e = SSL_get_error(ssl_, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return {};
  ERR_clear_error();
  counters_->inc(engine::Counter::tls_handshake_failures);
  state_ = State::failed;
  // OpenSSL's alert is in the output already; report the one it sent (or got).
  if (alert_written_ != 0) return Unexpected{Alert(alert_written_)};
  if (alert_read_ != 0) {
    peer_alerted_ = true;
    return Unexpected{Alert(alert_read_)};
  }
  return Unexpected{Alert::handshake_failure};
}

Result<void, Alert> Session::finish_handshake() {
  const SSL_CIPHER* sc = SSL_get_current_cipher(ssl_);
  if (sc == nullptr || !cipher_of(SSL_CIPHER_get_protocol_id(sc), cipher_)) return fail(Alert::internal_error, true);
  version_ = SSL_version(ssl_) == TLS1_3_VERSION ? Version::tls13 : Version::tls12;
  // Sequence numbers continue OpenSSL's: TLS 1.2 Finished was record 0 under
  // the new keys; then whatever OpenSSL wrote (TLS 1.3 tickets) or read.
  uint64_t first = version_ == Version::tls12 ? 1 : 0;
  uint64_t tx_seq = first + written_after_finished_, rx_seq = first + read_after_finished_;
  TrafficKeys txk, rxk;
  if (version_ == Version::tls13) {
    if (client_secret_.len != hash_len(cipher_) || server_secret_.len != hash_len(cipher_))
      return fail(Alert::internal_error, true);
    tx_secret_ = server_ ? server_secret_ : client_secret_;
    rx_secret_ = server_ ? client_secret_ : server_secret_;
    auto t = tls13_traffic_keys(cipher_, tx_secret_.span());
    auto r = tls13_traffic_keys(cipher_, rx_secret_.span());
    if (!t || !r) return fail(Alert::internal_error, true);
    txk = *t;
    rxk = *r;
  } else {
    uint8_t master[48], cr[32], sr[32];
    SSL_SESSION* sess = SSL_get_session(ssl_);
    if (sess == nullptr || SSL_SESSION_get_master_key(sess, master, sizeof master) != sizeof master ||
        SSL_get_client_random(ssl_, cr, 32) != 32 || SSL_get_server_random(ssl_, sr, 32) != 32)
      return fail(Alert::internal_error, true);
    auto kb = tls12_key_block(cipher_, {master, 48}, {cr, 32}, {sr, 32});
    OPENSSL_cleanse(master, sizeof master);
    if (!kb) return fail(Alert::internal_error, true);
    txk = server_ ? kb->server : kb->client;
    rxk = server_ ? kb->client : kb->server;
  }
  OPENSSL_cleanse(&client_secret_, sizeof client_secret_);
  OPENSSL_cleanse(&server_secret_, sizeof server_secret_);
  bool ok = tx_.init(version_, cipher_, true, txk.key_span(), txk.iv_span(), tx_seq).has_value();
  OPENSSL_cleanse(&txk, sizeof txk);
  // A TLS 1.3 client's tickets are still to come: OpenSSL keeps reading
  // until it has one (read_by_openssl), then keel takes the receive direction.
  rx_openssl_ = ok && !server_ && version_ == Version::tls13;
  Result<void, Alert> rx = {};
  if (ok && !rx_openssl_) rx = take_rx(rxk, rx_seq);
  OPENSSL_cleanse(&rxk, sizeof rxk);
  if (!ok) return fail(Alert::internal_error, true);
  if (!rx) return rx;
  state_ = State::established;
  counters_->inc(engine::Counter::tls_handshakes);
  if (SSL_session_reused(ssl_)) counters_->inc(engine::Counter::tls_resumed);
  return {};
}

Result<void, Alert> Session::fail(Alert a, bool send) {
  if (send && tx_.ready() && !sent_close_) {
    uint8_t body[2] = {alert_fatal, uint8_t(a)};
    if (send_record(ContentType::alert, body, 2)) counters_->inc(engine::Counter::tls_alerts_sent);
    sent_close_ = true;
  }
  switch (a) {
    case Alert::bad_record_mac: counters_->inc(engine::Counter::tls_bad_record_mac); break;
    case Alert::record_overflow: counters_->inc(engine::Counter::tls_record_overflow); break;
    case Alert::internal_error: break;
    default:
      if (send) counters_->inc(engine::Counter::tls_bad_records);
  }
  state_ = State::failed;
  return Unexpected{a};
}

Result<void, Alert> Session::open_records() {
  while (in_len_ >= header_len) {
    uint8_t head[header_len];
    // The header may straddle segments: copy its 5 bytes.
    size_t got = 0;
    for (rte_mbuf* s = in_; s != nullptr && got < header_len; s = s->next) {
      size_t k = std::min<size_t>(header_len - got, s->data_len);
      std::memcpy(head + got, rte_pktmbuf_mtod(s, uint8_t*), k);
      got += k;
    }
    // Refuse a bad header before waiting for a body that may never fit.
    auto h = parse_header(head, version_, cipher_);
    if (!h) return fail(h.error(), true);
    size_t rec_len = header_len + h->length;
    if (in_len_ < rec_len) break;
    // RFC 8446 6.1: nothing may follow close_notify.
    if (peer_closed_) return fail(Alert::unexpected_message, true);

    segs_.clear();
    size_t need = rec_len;
    for (rte_mbuf* s = in_; need > 0; s = s->next) {
      size_t k = std::min<size_t>(need, s->data_len);
      segs_.push_back({rte_pktmbuf_mtod(s, uint8_t*), k});
      need -= k;
    }
    auto r = rx_.open(segs_);
    if (!r) return fail(r.error(), true);
    counters_->inc(engine::Counter::tls_records_in);
    // 5.1: a fragmented handshake message must not be interleaved with other types.
    if (!hs_in_.empty() && r->type != ContentType::handshake) return fail(Alert::unexpected_message, true);
    switch (r->type) {
      case ContentType::application_data:
        if (r->length > 0) {
          rte_mbuf* m = share_range(r->offset, r->length);
          if (m == nullptr) return fail(Alert::internal_error, true);
          if (plain_tail_ != nullptr) plain_tail_->next = m;
          else plain_head_ = m;
          for (plain_tail_ = m; plain_tail_->next != nullptr;) plain_tail_ = plain_tail_->next;
        }
        break;
      case ContentType::alert: {
        if (r->length != 2) return fail(Alert::decode_error, true);
        uint8_t body[2];
        copy_input(r->offset, 2, body);
        counters_->inc(engine::Counter::tls_alerts_received);
        if (Alert(body[1]) == Alert::close_notify) {
          peer_closed_ = true;
          state_ = State::closed;
          break;
        }
        consume_input(rec_len);
        state_ = State::failed;
        peer_alerted_ = true;
        return Unexpected{Alert(body[1])};
      }
      case ContentType::handshake: {
        // Post-handshake messages, coalesced in a record or fragmented over
        // several (RFC 8446 5.1): the bytes gather in hs_in_ until whole.
        if (r->length == 0) return fail(Alert::unexpected_message, true);  // 5.1: no empty fragments
        size_t have = hs_in_.size();
        if (have + r->length > max_post_handshake_message) return fail(Alert::decode_error, true);
        hs_in_.resize(have + r->length);
        copy_input(r->offset, r->length, hs_in_.data() + have);
        consume_input(rec_len);
        if (auto hr = on_handshake_bytes(); !hr) return hr;
        continue;
      }
      default: return fail(Alert::unexpected_message, true);
    }
    consume_input(rec_len);
  }
  return {};
}

Result<void, Alert> Session::on_handshake_bytes() {
  // TLS 1.2 after the handshake: only a renegotiation could come, and keel refuses it.
  if (version_ != Version::tls13) return fail(Alert::unexpected_message, true);
  const uint8_t* msg = hs_in_.data();
  size_t len = hs_in_.size();
  while (len >= 4) {
    size_t body = size_t(msg[1]) << 16 | size_t(msg[2]) << 8 | msg[3];
    if (4 + body > max_post_handshake_message) return fail(Alert::decode_error, true);
    if (len < 4 + body) break;  // the rest comes in the next records
    switch (msg[0]) {
      case hs_key_update: {
        // RFC 8446 4.6.3: update_not_requested(0) or update_requested(1).
        if (body != 1 || msg[4] > 1) return fail(Alert::decode_error, true);
        auto next = tls13_next_secret(cipher_, rx_secret_.span());
        if (!next) return fail(Alert::internal_error, true);
        rx_secret_ = *next;
        auto k = tls13_traffic_keys(cipher_, rx_secret_.span());
        if (!k || !rx_.init(version_, cipher_, false, k->key_span(), k->iv_span(), 0))
          return fail(Alert::internal_error, true);
        counters_->inc(engine::Counter::tls_key_updates_in);
        if (msg[4] == 1 && !sent_close_)
          if (!key_update(false)) return fail(Alert::internal_error, true);
        // 5.1: a message before a key change must end its record.
        if (len != 5) return fail(Alert::unexpected_message, true);
        break;
      }
      case hs_new_session_ticket:
        // A client's first ticket went to OpenSSL (read_by_openssl); later ones are dropped.
        if (server_) return fail(Alert::unexpected_message, true);
        break;
      default: return fail(Alert::unexpected_message, true);
    }
    msg += 4 + body;
    len -= 4 + body;
  }
  hs_in_.erase(hs_in_.begin(), hs_in_.end() - ptrdiff_t(len));  // keeps an incomplete message
  return {};
}

Result<void> Session::key_update(bool request_peer) {
  if (!established() || sent_close_) return keel::fail(Errc::not_connected);
  if (version_ != Version::tls13) return keel::fail(Errc::not_supported);
  uint8_t msg[5] = {hs_key_update, 0, 0, 1, uint8_t(request_peer ? 1 : 0)};
  if (!send_record(ContentType::handshake, msg, sizeof msg)) return keel::fail(Errc::no_memory);
  auto next = tls13_next_secret(cipher_, tx_secret_.span());
  if (!next) return keel::fail(Errc::io_error);
  tx_secret_ = *next;
  auto k = tls13_traffic_keys(cipher_, tx_secret_.span());
  if (!k || !tx_.init(version_, cipher_, true, k->key_span(), k->iv_span(), 0)) return keel::fail(Errc::io_error);
  counters_->inc(engine::Counter::tls_key_updates_out);
  return {};
}

rte_mbuf* Session::share_range(size_t off, size_t len) {
  rte_mbuf* head = nullptr;
  rte_mbuf* tail = nullptr;
  size_t pos = 0;
  for (rte_mbuf* s = in_; s != nullptr && len > 0; s = s->next) {
    size_t seg_end = pos + s->data_len;
    if (seg_end > off) {
      size_t start = off > pos ? off - pos : 0;
      size_t n = std::min<size_t>(len, s->data_len - start);
      rte_mbuf* mi = rte_pktmbuf_alloc(pool_);
      if (mi == nullptr) {
        if (head != nullptr) engine::free_segments(head);
        return nullptr;
      }
      rte_pktmbuf_attach(mi, s);
      mi->data_off = uint16_t(mi->data_off + start);
      mi->data_len = uint16_t(n);
      mi->pkt_len = uint32_t(n);
      if (tail != nullptr) {
        tail->next = mi;
        head->pkt_len += uint32_t(n);
        ++head->nb_segs;
      } else {
        head = mi;
      }
      tail = mi;
      off += n;
      len -= n;
    }
    pos = seg_end;
  }
  return head;
}

void Session::copy_input(size_t off, size_t len, uint8_t* dst) const {
  size_t pos = 0;
  for (rte_mbuf* s = in_; s != nullptr && len > 0; s = s->next) {
    size_t seg_end = pos + s->data_len;
    if (seg_end > off) {
      size_t start = off > pos ? off - pos : 0;
      size_t n = std::min<size_t>(len, s->data_len - start);
      std::memcpy(dst, rte_pktmbuf_mtod(s, uint8_t*) + start, n);
      dst += n;
      off += n;
      len -= n;
    }
    pos = seg_end;
  }
}

void Session::consume_input(size_t n) {
  in_len_ -= n;
  while (n > 0 && in_ != nullptr) {
    if (in_->data_len <= n) {
      n -= in_->data_len;
      rte_mbuf* next = in_->next;
      in_->next = nullptr;
      in_->nb_segs = 1;
      rte_pktmbuf_free_seg(in_);
      in_ = next;
    } else {
      in_->data_off = uint16_t(in_->data_off + n);
      in_->data_len = uint16_t(in_->data_len - n);
      n = 0;
    }
  }
  if (in_ == nullptr) in_tail_ = nullptr;
}

namespace {

// Detaches a list of segments with a consistent head (pkt_len, nb_segs) for whoever takes it.
rte_mbuf* take_chain(rte_mbuf*& head, rte_mbuf*& tail) {
  rte_mbuf* m = head;
  head = tail = nullptr;
  if (m == nullptr) return nullptr;
  uint32_t len = 0;
  uint16_t segs = 0;
  for (rte_mbuf* s = m; s != nullptr; s = s->next) {
    len += s->data_len;
    ++segs;
  }
  m->pkt_len = len;
  m->nb_segs = segs;
  return m;
}

}  // namespace

rte_mbuf* Session::take_output() { return take_chain(out_head_, out_tail_); }

rte_mbuf* Session::take_plaintext() { return take_chain(plain_head_, plain_tail_); }

void Session::append_output(rte_mbuf* m) {
  if (out_tail_ != nullptr) out_tail_->next = m;
  else out_head_ = m;
  for (out_tail_ = m; out_tail_->next != nullptr;) out_tail_ = out_tail_->next;
}

bool Session::append_output_bytes(const uint8_t* data, size_t len) {
  if (len == 0) return true;
  rte_mbuf* m = engine::alloc_chain(pool_, uint32_t(len));
  if (m == nullptr) return false;
  for (rte_mbuf* s = m; s != nullptr; s = s->next) {
    std::memcpy(rte_pktmbuf_mtod(s, uint8_t*), data, s->data_len);
    data += s->data_len;
  }
  append_output(m);
  return true;
}

bool Session::append_plaintext_bytes(const uint8_t* data, size_t len) {
  rte_mbuf* m = engine::alloc_chain(pool_, uint32_t(len));
  if (m == nullptr) return false;
  for (rte_mbuf* s = m; s != nullptr; s = s->next) {
    std::memcpy(rte_pktmbuf_mtod(s, uint8_t*), data, s->data_len);
    data += s->data_len;
  }
  if (plain_tail_ != nullptr) plain_tail_->next = m;
  else plain_head_ = m;
  for (plain_tail_ = m; plain_tail_->next != nullptr;) plain_tail_ = plain_tail_->next;
  return true;
}

void Session::drain_wbio() {
  BIO* wbio = SSL_get_wbio(ssl_);
  char* data = nullptr;
  long n = BIO_get_mem_data(wbio, &data);
  if (n > 0 && append_output_bytes(reinterpret_cast<uint8_t*>(data), size_t(n))) (void)BIO_reset(wbio);
}

bool Session::send_record(ContentType t, const uint8_t* data, size_t len) {
  Segment src{const_cast<uint8_t*>(data), len};
  rte_mbuf* m = engine::alloc_chain(pool_, uint32_t(tx_.overhead() + len));
  if (m == nullptr) return false;
  Segment dst[4];
  size_t n = 0;
  for (rte_mbuf* s = m; s != nullptr && n < 4; s = s->next) dst[n++] = {rte_pktmbuf_mtod(s, uint8_t*), s->data_len};
  if (!tx_.seal(t, {&src, 1}, {dst, n})) {
    rte_pktmbuf_free(m);
    return false;
  }
  counters_->inc(engine::Counter::tls_records_out);
  append_output(m);
  return true;
}

size_t Session::content_per_record(size_t segment) const {
  size_t oh = record_overhead(version_, cipher_);
  if (segment <= oh) return 1;
  return std::min(segment - oh, max_plaintext);
}

size_t Session::full_record_wire(size_t mss) const {
  size_t k = mss == 0 ? 1 : (max_plaintext + record_overhead(version_, cipher_)) / mss;
  return std::max<size_t>(k, 1) * mss;
}

Result<rte_mbuf*> Session::seal(std::span<const Segment> content, size_t segment) {
  if (!established() || sent_close_ || !tx_.ready()) return keel::fail(Errc::not_connected);
  // RFC 8446 5.5: re-key before the AEAD's record limit.
  if (version_ == Version::tls13 && tx_.seq() >= rekey_after_records)
    if (auto r = key_update(false); !r) return Unexpected{r.error()};
  size_t len = 0;
  for (const Segment& s : content) len += s.size;
  if (len > max_plaintext) return keel::fail(Errc::invalid_argument);
  rte_mbuf* m = engine::alloc_chain(pool_, uint32_t(tx_.overhead() + len), uint32_t(segment));
  if (m == nullptr) return keel::fail(Errc::no_memory);
  Segment dst[32];
  size_t n = 0;
  for (rte_mbuf* s = m; s != nullptr; s = s->next) {
    if (n == std::size(dst)) {
      rte_pktmbuf_free(m);
      return keel::fail(Errc::invalid_argument);
    }
    dst[n++] = {rte_pktmbuf_mtod(s, uint8_t*), s->data_len};
  }
  if (!tx_.seal(ContentType::application_data, content, {dst, n})) {
    rte_pktmbuf_free(m);
    return keel::fail(Errc::io_error);
  }
  counters_->inc(engine::Counter::tls_records_out);
  counters_->inc(engine::Counter::tls_sealed_bytes, len);
  return m;
}

void Session::close_notify() {
  if (sent_close_) return;
  if (tx_.ready()) {
    uint8_t body[2] = {alert_warning, uint8_t(Alert::close_notify)};
    if (send_record(ContentType::alert, body, 2)) counters_->inc(engine::Counter::tls_alerts_sent);
  } else if (ssl_ != nullptr) {
    (void)SSL_shutdown(ssl_);  // during the handshake OpenSSL still owns the records
    drain_wbio();
  }
  sent_close_ = true;
}

std::string Session::alpn() const {
  const unsigned char* p = nullptr;
  unsigned n = 0;
  if (ssl_ != nullptr) SSL_get0_alpn_selected(ssl_, &p, &n);
  return p != nullptr ? std::string(reinterpret_cast<const char*>(p), n) : std::string();
}

bool Session::resumed() const { return ssl_ != nullptr && SSL_session_reused(ssl_) == 1; }

std::vector<uint8_t> Session::session_ticket() const {
  // 1.3: the handshake's own session is resumable only by a ticket (sent after it,
  // or the one it resumed with); 1.2: the session, with its ticket or id, is.
  bool has = got_ticket_ || version_ == Version::tls12 || resumed();
  SSL_SESSION* sess = ssl_ != nullptr && !server_ && established() && has ? SSL_get_session(ssl_) : nullptr;
  if (sess == nullptr || SSL_SESSION_is_resumable(sess) != 1) return {};
  int n = i2d_SSL_SESSION(sess, nullptr);
  if (n <= 0) return {};
  std::vector<uint8_t> out(static_cast<size_t>(n));
  unsigned char* p = out.data();
  if (i2d_SSL_SESSION(sess, &p) != n) return {};
  return out;
}

bool Session::peer_verified() const {
  if (ssl_ == nullptr) return false;
  X509* peer = SSL_get1_peer_certificate(ssl_);
  bool ok = peer != nullptr && SSL_get_verify_result(ssl_) == X509_V_OK;
  X509_free(peer);
  return ok;
}

std::string Session::server_name() const {
  const char* n = ssl_ != nullptr ? SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name) : nullptr;
  return n != nullptr ? n : "";
}

std::string Session::peer_subject() const {
  X509* peer = ssl_ != nullptr ? SSL_get0_peer_certificate(ssl_) : nullptr;
  if (peer == nullptr) return {};
  char buf[256];
  return X509_NAME_oneline(X509_get_subject_name(peer), buf, sizeof buf) != nullptr ? buf : "";
}

}  // namespace keel::tls
