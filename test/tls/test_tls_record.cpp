// SPDX-License-Identifier: BSD-3-Clause
// keel's TLS record layer: RFC 8448's published TLS 1.3 trace (known secrets,
// keys and records), records OpenSSL produced and consumes for every suite
// and both versions, KeyUpdate both ways, and the refusals.
#include <catch2/catch.hpp>

#include <openssl/ssl.h>

#include <cstring>
#include <numeric>
#include <vector>

#include "net/byte_order.hpp"
#include "openssl_pair.hpp"
#include "tls/key_schedule.hpp"
#include "tls/record_cipher.hpp"

using namespace keel;
using namespace keel::tls;
using keel::tls::test::OpenSslPair;
using keel::tls::test::unhex;

namespace {

// Cuts `v` into segments of the given sizes (the rest goes in a last one), so
// every call runs over a scatter list with fields straddling segment edges.
std::vector<Segment> split(std::vector<uint8_t>& v, std::initializer_list<size_t> sizes) {
  std::vector<Segment> segs;
  size_t off = 0;
  for (size_t n : sizes) {
    n = std::min(n, v.size() - off);
    segs.push_back({v.data() + off, n});
    off += n;
  }
  if (off < v.size()) segs.push_back({v.data() + off, v.size() - off});
  return segs;
}

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = uint8_t(seed + i * 7 + (i >> 8));
  return v;
}

std::vector<uint8_t> content_of(const std::vector<uint8_t>& rec, const OpenedRecord& r) {
  return {rec.begin() + long(r.offset), rec.begin() + long(r.offset + r.length)};
}

// Seals `content` into a fresh record, the plaintext and the destination both
// cut into odd pieces; the destination is pre-filled with 0xa5 so a byte
// seal forgot to write shows.
std::vector<uint8_t> seal_split(RecordCipher& c, ContentType t, std::vector<uint8_t> content,
                                size_t padding = 0) {
  if (c.version() == Version::tls12) padding = 0;  // 1.2 records carry none
  std::vector<uint8_t> out(c.overhead() + content.size() + padding, 0xa5);
  auto src = split(content, {1, 1000, 3});
  auto dst = split(out, {3, 9, 517, 1});
  auto n = c.seal(t, src, dst, padding);
  REQUIRE(n.has_value());
  REQUIRE(*n == out.size());
  return out;
}

// Splits a byte stream into its records by their headers.
std::vector<std::vector<uint8_t>> records_of(const std::vector<uint8_t>& wire) {
  std::vector<std::vector<uint8_t>> out;
  for (size_t off = 0; off + header_len <= wire.size();) {
    size_t len = header_len + net::load_be16(wire.data() + off + 3);
    REQUIRE(off + len <= wire.size());
    out.emplace_back(wire.begin() + long(off), wire.begin() + long(off + len));
    off += len;
  }
  return out;
}

constexpr const char* rfc8448_s_ap = "a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643";
constexpr const char* rfc8448_c_ap = "9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5";
// RFC 8448 3, "{server} send application_data record" (sequence number 1:
// the NewSessionTicket record took 0).
constexpr const char* rfc8448_server_record =
    "17 03 03 00 43 2e 93 7e 11 ef 4a c7 40 e5 38 ad 36 00 5f c4 a4 69 32 fc 32 25 d0 5f"
    "82 aa 1b 36 e3 0e fa f9 7d 90 e6 df fc 60 2d cb 50 1a 59 a8 fc c4 9c 4b f2 e5 f0 a2"
    "1c 00 47 c2 ab f3 32 54 0d d0 32 e1 67 c2 95 5d";

std::vector<uint8_t> bytes_0_to_31_hex() {
  std::vector<uint8_t> v(50);
  std::iota(v.begin(), v.end(), uint8_t(0));
  return v;
}

}  // namespace

// ===== RFC 8448: key schedule =====

TEST_CASE("tls13 traffic keys match RFC 8448's simple 1-RTT trace", "[tls][rfc8448]") {
  auto s = tls13_traffic_keys(Cipher::aes_128_gcm, unhex(rfc8448_s_ap));
  REQUIRE(s.has_value());
  CHECK(std::vector<uint8_t>(s->key, s->key + s->key_len) == unhex("9f02283b6c9c07efc26bb9f2ac92e356"));
  CHECK(std::vector<uint8_t>(s->iv, s->iv + s->iv_len) == unhex("cf782b88dd83549aadf1e984"));
  auto c = tls13_traffic_keys(Cipher::aes_128_gcm, unhex(rfc8448_c_ap));
  REQUIRE(c.has_value());
  CHECK(std::vector<uint8_t>(c->key, c->key + c->key_len) == unhex("17422dda596ed5d9acd890e3c63f5051"));
  CHECK(std::vector<uint8_t>(c->iv, c->iv + c->iv_len) == unhex("5b78923dee08579033e523d9"));
  // The server handshake traffic secret's keys, same derivation.
  auto hs = tls13_traffic_keys(Cipher::aes_128_gcm,
                               unhex("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38"));
  REQUIRE(hs.has_value());
  CHECK(std::vector<uint8_t>(hs->key, hs->key + hs->key_len) == unhex("3fce516009c21727d0f2e4e86ee403bc"));
  CHECK(std::vector<uint8_t>(hs->iv, hs->iv + hs->iv_len) == unhex("5d313eb2671276ee13000b30"));
  // A secret of the wrong length for the suite is refused.
  CHECK_FALSE(tls13_traffic_keys(Cipher::aes_256_gcm, unhex(rfc8448_s_ap)).has_value());
}

// ===== RFC 8448: the server's application data record =====

TEST_CASE("sealing RFC 8448's server record reproduces it byte for byte", "[tls][rfc8448]") {
  auto k = tls13_traffic_keys(Cipher::aes_128_gcm, unhex(rfc8448_s_ap));
  REQUIRE(k.has_value());
  RecordCipher c;
  REQUIRE(c.init(Version::tls13, Cipher::aes_128_gcm, true, k->key_span(), k->iv_span(), 1).has_value());
  auto rec = seal_split(c, ContentType::application_data, bytes_0_to_31_hex());
  CHECK(rec == unhex(rfc8448_server_record));
  CHECK(c.seq() == 2);
}

TEST_CASE("opening RFC 8448's server record in place gives its content", "[tls][rfc8448]") {
  auto k = tls13_traffic_keys(Cipher::aes_128_gcm, unhex(rfc8448_s_ap));
  REQUIRE(k.has_value());
  RecordCipher c;
  REQUIRE(c.init(Version::tls13, Cipher::aes_128_gcm, false, k->key_span(), k->iv_span(), 1).has_value());
  auto rec = unhex(rfc8448_server_record);
  auto segs = split(rec, {2, 6, 16, 40});  // header, tag and inner type straddle
  auto r = c.open(segs);
  REQUIRE(r.has_value());
  CHECK(r->type == ContentType::application_data);
  CHECK(r->offset == header_len);
  CHECK(content_of(rec, *r) == bytes_0_to_31_hex());
  CHECK(c.seq() == 2);
  // The same record again (now garbage, and at sequence number 2) fails.
  auto again = unhex(rfc8448_server_record);
  auto s2 = split(again, {});
  CHECK(c.open(s2).error() == Alert::bad_record_mac);
}

// ===== records exchanged with OpenSSL =====

namespace {

struct Keys {
  TrafficKeys client, server;
  uint64_t seq = 0;  // the first application record's sequence number in each direction
};

Keys keys_of(OpenSslPair& p, Version v, Cipher c) {
  Keys k;
  if (v == Version::tls13) {
    auto ck = tls13_traffic_keys(c, p.keylog_secret("CLIENT_TRAFFIC_SECRET_0"));
    auto sk = tls13_traffic_keys(c, p.keylog_secret("SERVER_TRAFFIC_SECRET_0"));
    REQUIRE(ck.has_value());
    REQUIRE(sk.has_value());
    k.client = *ck;
    k.server = *sk;
    k.seq = 0;  // the server sends no tickets (OpenSslPair)
    return k;
  }
  uint8_t cr[32], sr[32];
  REQUIRE(SSL_get_client_random(p.client, cr, 32) == 32);
  REQUIRE(SSL_get_server_random(p.client, sr, 32) == 32);
  auto kb = tls12_key_block(c, p.keylog_secret("CLIENT_RANDOM"), {cr, 32}, {sr, 32});
  REQUIRE(kb.has_value());
  k.client = kb->client;
  k.server = kb->server;
  k.seq = 1;  // Finished was record 0 under these keys
  return k;
}

}  // namespace

TEST_CASE("records interoperate with OpenSSL for every suite and both versions", "[tls][openssl]") {
  auto v = GENERATE(Version::tls13, Version::tls12);
  auto c = GENERATE(Cipher::aes_128_gcm, Cipher::aes_256_gcm, Cipher::chacha20_poly1305);
  INFO("version " << int(v) << " cipher " << int(c));
  OpenSslPair p(v, c);
  REQUIRE(p.handshake());
  Keys k = keys_of(p, v, c);

  // OpenSSL's client record, opened by keel in place.
  auto sent = pattern(3000, 1);
  REQUIRE(SSL_write(p.client, sent.data(), int(sent.size())) == int(sent.size()));
  auto wire = p.take_output(p.client);
  auto recs = records_of(wire);
  REQUIRE(recs.size() == 1);
  RecordCipher opener;
  REQUIRE(opener.init(v, c, false, k.client.key_span(), k.client.iv_span(), k.seq).has_value());
  auto segs = split(recs[0], {4, 3, 1500, 1});
  auto r = opener.open(segs);
  REQUIRE(r.has_value());
  CHECK(r->type == ContentType::application_data);
  CHECK(content_of(recs[0], *r) == sent);

  // keel's server records (a full 2^14 one, a padded one in 1.3), read by OpenSSL.
  RecordCipher sealer;
  REQUIRE(sealer.init(v, c, true, k.server.key_span(), k.server.iv_span(), k.seq).has_value());
  auto big = pattern(max_plaintext, 9);
  auto small = pattern(100, 3);
  p.give_input(p.client, seal_split(sealer, ContentType::application_data, big));
  p.give_input(p.client, seal_split(sealer, ContentType::application_data, small, 77));
  std::vector<uint8_t> got(max_plaintext + 200);
  size_t have = 0;
  for (int i = 0; i < 4 && have < big.size() + small.size(); ++i) {
    int n = SSL_read(p.client, got.data() + have, int(got.size() - have));
    REQUIRE(n > 0);
    have += size_t(n);
  }
  got.resize(have);
  big.insert(big.end(), small.begin(), small.end());
  CHECK(got == big);

  // keel sealing as the client: OpenSSL's server (which never saw the client
  // record above, keel took it) reads it at the first sequence number.
  RecordCipher client_sealer;
  REQUIRE(client_sealer.init(v, c, true, k.client.key_span(), k.client.iv_span(), k.seq).has_value());
  p.give_input(p.server, seal_split(client_sealer, ContentType::application_data, small));
  std::vector<uint8_t> at_server(200);
  int n = SSL_read(p.server, at_server.data(), int(at_server.size()));
  REQUIRE(n == int(small.size()));
  at_server.resize(size_t(n));
  CHECK(at_server == small);
}

TEST_CASE("KeyUpdate both ways with OpenSSL (traffic upd)", "[tls][openssl][keyupdate]") {
  auto c = GENERATE(Cipher::aes_128_gcm, Cipher::aes_256_gcm, Cipher::chacha20_poly1305);
  OpenSslPair p(Version::tls13, c);
  REQUIRE(p.handshake());
  Keys k = keys_of(p, Version::tls13, c);

  // OpenSSL's client re-keys: the KeyUpdate under the old keys, then data under the new.
  REQUIRE(SSL_key_update(p.client, SSL_KEY_UPDATE_NOT_REQUESTED) == 1);
  auto sent = pattern(500, 5);
  REQUIRE(SSL_write(p.client, sent.data(), int(sent.size())) == int(sent.size()));
  auto recs = records_of(p.take_output(p.client));
  REQUIRE(recs.size() == 2);
  RecordCipher opener;
  REQUIRE(opener.init(Version::tls13, c, false, k.client.key_span(), k.client.iv_span()).has_value());
  auto s0 = split(recs[0], {});
  auto r0 = opener.open(s0);
  REQUIRE(r0.has_value());
  CHECK(r0->type == ContentType::handshake);
  CHECK(content_of(recs[0], *r0) == std::vector<uint8_t>{24, 0, 0, 1, 0});  // KeyUpdate(update_not_requested)
  auto next = tls13_next_secret(c, p.keylog_secret("CLIENT_TRAFFIC_SECRET_0"));
  REQUIRE(next.has_value());
  auto nk = tls13_traffic_keys(c, next->span());
  REQUIRE(nk.has_value());
  REQUIRE(opener.init(Version::tls13, c, false, nk->key_span(), nk->iv_span()).has_value());
  auto s1 = split(recs[1], {7});
  auto r1 = opener.open(s1);
  REQUIRE(r1.has_value());
  CHECK(content_of(recs[1], *r1) == sent);

  // keel's server re-keys the same way; OpenSSL's client follows.
  RecordCipher sealer;
  REQUIRE(sealer.init(Version::tls13, c, true, k.server.key_span(), k.server.iv_span()).has_value());
  p.give_input(p.client, seal_split(sealer, ContentType::handshake, {24, 0, 0, 1, 0}));
  auto snext = tls13_next_secret(c, p.keylog_secret("SERVER_TRAFFIC_SECRET_0"));
  REQUIRE(snext.has_value());
  auto snk = tls13_traffic_keys(c, snext->span());
  REQUIRE(snk.has_value());
  REQUIRE(sealer.init(Version::tls13, c, true, snk->key_span(), snk->iv_span()).has_value());
  p.give_input(p.client, seal_split(sealer, ContentType::application_data, sent));
  std::vector<uint8_t> got(1000);
  int n = SSL_read(p.client, got.data(), int(got.size()));
  REQUIRE(n == int(sent.size()));
  got.resize(size_t(n));
  CHECK(got == sent);
}

// ===== refusals =====

namespace {

RecordCipher pair_of(Version v, Cipher c, bool encrypt) {
  std::vector<uint8_t> key(c == Cipher::aes_128_gcm ? 16 : 32, 0x42);
  std::vector<uint8_t> iv(v == Version::tls12 && c != Cipher::chacha20_poly1305 ? 4 : 12, 0x13);
  RecordCipher rc;
  REQUIRE(rc.init(v, c, encrypt, key, iv, 0xfffffffffffffff0ull).has_value());
  return rc;
}

Alert open_error(RecordCipher& c, std::vector<uint8_t> rec) {
  auto segs = split(rec, {2, 11});
  auto r = c.open(segs);
  REQUIRE_FALSE(r.has_value());
  return r.error();
}

}  // namespace

TEST_CASE("a bad record is refused with the alert RFC 8446 names", "[tls][errors]") {
  auto v = GENERATE(Version::tls13, Version::tls12);
  auto c = GENERATE(Cipher::aes_128_gcm, Cipher::aes_256_gcm, Cipher::chacha20_poly1305);
  INFO("version " << int(v) << " cipher " << int(c));
  RecordCipher tx = pair_of(v, c, true);
  auto good = seal_split(tx, ContentType::application_data, pattern(1200, 2));

  SECTION("every corrupted byte is bad_record_mac") {
    for (size_t i = header_len; i < good.size(); i += 97) {
      RecordCipher rx = pair_of(v, c, false);
      auto bad = good;
      bad[i] ^= 0x01;
      CHECK(open_error(rx, bad) == Alert::bad_record_mac);
    }
    RecordCipher rx = pair_of(v, c, false);
    auto bad = good;
    bad.back() ^= 0x80;  // the tag's last byte
    CHECK(open_error(rx, bad) == Alert::bad_record_mac);
  }
  SECTION("the right record at the wrong sequence number is bad_record_mac") {
    RecordCipher rx = pair_of(v, c, false);
    auto dummy = seal_split(tx, ContentType::application_data, pattern(10, 1));  // tx moves on
    (void)dummy;
    auto late = seal_split(tx, ContentType::application_data, pattern(10, 1));
    CHECK(open_error(rx, late) == Alert::bad_record_mac);
  }
  SECTION("a truncated record is decode_error, the header alone too") {
    RecordCipher rx = pair_of(v, c, false);
    CHECK(open_error(rx, {good.begin(), good.end() - 1}) == Alert::decode_error);
    CHECK(open_error(rx, {good.begin(), good.begin() + 3}) == Alert::decode_error);
    auto longer = good;
    longer.push_back(0);
    CHECK(open_error(rx, longer) == Alert::decode_error);
  }
  SECTION("a length over the limit is record_overflow before any decryption") {
    RecordCipher rx = pair_of(v, c, false);
    size_t limit = v == Version::tls13 ? max_ciphertext_13 : max_ciphertext_12;
    std::vector<uint8_t> huge(header_len + limit + 1, 0);
    huge[0] = 23;
    huge[1] = 3;
    huge[2] = 3;
    net::store_be16(huge.data() + 3, uint16_t(limit + 1));
    CHECK(open_error(rx, huge) == Alert::record_overflow);
    CHECK(rx.seq() == 0xfffffffffffffff0ull);
  }
  SECTION("a length too short for the tag is bad_record_mac") {
    RecordCipher rx = pair_of(v, c, false);
    std::vector<uint8_t> tiny = {23, 3, 3, 0, 15};
    tiny.resize(header_len + 15);
    CHECK(open_error(rx, tiny) == Alert::bad_record_mac);
  }
  SECTION("a wrong record version is protocol_version, an unknown type unexpected_message") {
    RecordCipher rx = pair_of(v, c, false);
    auto bad = good;
    bad[2] = 1;
    CHECK(open_error(rx, bad) == Alert::protocol_version);
    bad = good;
    bad[0] = 99;
    CHECK(open_error(rx, bad) == Alert::unexpected_message);
    bad[0] = 20;  // change_cipher_spec after the handshake
    CHECK(open_error(rx, bad) == Alert::unexpected_message);
  }
  SECTION("sealing more than 2^14 bytes is record_overflow; a short destination fails cleanly") {
    auto big = pattern(max_plaintext + 1, 0);
    std::vector<uint8_t> out(big.size() + 64);
    Segment src{big.data(), big.size()}, dst{out.data(), out.size()};
    CHECK(tx.seal(ContentType::application_data, {&src, 1}, {&dst, 1}).error() == Alert::record_overflow);
    Segment src2{big.data(), 100}, dst2{out.data(), 100};
    uint64_t before = tx.seq();
    CHECK(tx.seal(ContentType::application_data, {&src2, 1}, {&dst2, 1}).error() == Alert::internal_error);
    CHECK(tx.seq() == before);
  }
}

TEST_CASE("TLS 1.3: inner plaintext rules (RFC 8446 5.2, 5.4)", "[tls][errors]") {
  auto c = GENERATE(Cipher::aes_128_gcm, Cipher::chacha20_poly1305);
  RecordCipher tx = pair_of(Version::tls13, c, true);
  RecordCipher rx = pair_of(Version::tls13, c, false);
  SECTION("padding is stripped and the inner type kept") {
    auto rec = seal_split(tx, ContentType::alert, {2, 0}, 300);
    auto segs = split(rec, {300});
    auto r = rx.open(segs);
    REQUIRE(r.has_value());
    CHECK(r->type == ContentType::alert);
    CHECK(content_of(rec, *r) == std::vector<uint8_t>{2, 0});
  }
  SECTION("all-zero inner plaintext is unexpected_message") {
    auto rec = seal_split(tx, ContentType::invalid, {}, 20);
    CHECK(open_error(rx, rec) == Alert::unexpected_message);
  }
  SECTION("an unknown inner type is unexpected_message") {
    auto rec = seal_split(tx, ContentType(99), {1, 2, 3});
    CHECK(open_error(rx, rec) == Alert::unexpected_message);
  }
  SECTION("padding may not push the inner plaintext past 2^14 + 1") {
    std::vector<uint8_t> content(max_plaintext), out(max_plaintext + 100);
    Segment s{content.data(), content.size()}, d{out.data(), out.size()};
    CHECK(tx.seal(ContentType::application_data, {&s, 1}, {&d, 1}, 1).error() == Alert::record_overflow);
  }
  SECTION("an outer type other than application_data is unexpected_message") {
    auto rec = seal_split(tx, ContentType::application_data, {1});
    rec[0] = 22;
    CHECK(open_error(rx, rec) == Alert::unexpected_message);
  }
}
