// SPDX-License-Identifier: BSD-3-Clause
// libFuzzer target over keel's TLS record layer (src/tls/record_cipher.cpp):
// the header parser, framing, in-place opening over scatter lists, and the
// TLS 1.3 inner-plaintext scan, for both versions and the three AEADs.
//
// Input format:
//   byte 0: bits 0-2 suite (version x cipher, mod 6); bit 3: round-trip mode
//   byte 1: segment size for the scatter lists (1..256; 0 means one segment)
//   rest:   open mode: a byte stream of records, each framed by its header
//           and opened in turn until the first error (as a connection would);
//           round-trip mode: [type][padding] then content, sealed and opened
//           again, which must give back the same type and content.
// Never a crash, a read out of bounds or a leak; a round trip that differs aborts.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "tls/record_cipher.hpp"

using namespace keel;
using namespace keel::tls;

namespace {

[[noreturn]] void check_failed(const char* what) {
  std::fprintf(stderr, "fuzz_tls_record: check failed: %s\n", what);
  std::abort();
}

std::vector<Segment> cut(uint8_t* p, size_t n, size_t seg) {
  std::vector<Segment> v;
  if (seg == 0) seg = n == 0 ? 1 : n;
  for (size_t off = 0; off < n; off += seg) v.push_back({p + off, std::min(seg, n - off)});
  return v;
}

RecordCipher make(Version v, Cipher c, bool encrypt) {
  uint8_t key[32], iv[12];
  std::memset(key, 0x5a, sizeof key);
  std::memset(iv, 0xa5, sizeof iv);
  size_t kl = c == Cipher::aes_128_gcm ? 16 : 32;
  size_t il = v == Version::tls12 && c != Cipher::chacha20_poly1305 ? 4 : 12;
  RecordCipher rc;
  if (!rc.init(v, c, encrypt, {key, kl}, {iv, il}, 7)) check_failed("init");
  return rc;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const unsigned suite = data[0] & 7;
  const Version v = suite % 6 < 3 ? Version::tls13 : Version::tls12;
  const Cipher c = Cipher(suite % 3);
  const bool round_trip = (data[0] & 8) != 0;
  const size_t seg = data[1];
  data += 2;
  size -= 2;

  if (!round_trip) {
    RecordCipher rx = make(v, c, false);
    std::vector<uint8_t> buf(data, data + size);
    size_t off = 0;
    while (buf.size() - off >= header_len) {
      uint8_t h[header_len];
      std::memcpy(h, buf.data() + off, header_len);
      auto hdr = parse_header(h, v, c);
      if (!hdr) break;
      size_t len = header_len + hdr->length;
      if (buf.size() - off < len) break;
      auto segs = cut(buf.data() + off, len, seg);
      auto r = rx.open(segs);
      if (!r) break;
      if (r->offset + r->length > len) check_failed("content outside the record");
      off += len;
    }
    return 0;
  }

  if (size < 2) return 0;
  const auto type = ContentType(data[0]);
  const size_t padding = data[1];
  data += 2;
  size -= 2;
  if (size > max_plaintext) size = max_plaintext;
  RecordCipher tx = make(v, c, true), rx = make(v, c, false);
  std::vector<uint8_t> content(data, data + size);
  std::vector<uint8_t> out(tx.overhead() + size + padding);
  auto src = cut(content.data(), content.size(), seg);
  auto dst = cut(out.data(), out.size(), seg);
  auto n = tx.seal(type, src, dst, padding);
  if (!n) return 0;  // e.g. padding past the limit
  auto segs = cut(out.data(), *n, seg);
  auto r = rx.open(segs);
  bool known = type == ContentType::application_data || type == ContentType::handshake ||
               type == ContentType::alert;
  if (v == Version::tls12) {
    if (type == ContentType::change_cipher_spec || !known) return 0;  // refused by the header check
  } else if (!known) {
    return 0;  // refused after the scan
  }
  if (!r) check_failed("a sealed record did not open");
  if (r->type != type) check_failed("type changed");
  if (r->length != size || std::memcmp(out.data() + r->offset, data, size) != 0)
    check_failed("content changed");
  return 0;
}
