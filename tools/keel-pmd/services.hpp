// SPDX-License-Identifier: BSD-3-Clause
#pragma once
/// @file
/// keel-pmd's TCP test services (`--serve echo,discard,chargen,http[:PORT]`),
/// served on the port's addresses by every instance:
///   echo     RFC 862, port 7:  the received mbufs go straight back (zero copy);
///            what the send buffer cannot take waits (the receive window closes
///            meanwhile) and goes on on_writable, in order.
///   discard  RFC 863, port 9:  received data is freed.
///   chargen  RFC 864, port 19: the rotating 72-character lines, written into
///            the send buffer whenever it has room, until the peer closes.
///   http     port 80: see http_service.hpp.
///   https    port 443: the same over TLS 1.3/1.2 (keel::tls: OpenSSL's
///            handshake, keel's record layer); needs --cert and --key.
/// The pure parts (list parsing, the chargen stream) are declared here for the
/// unit tests; the TCP glue lives in services.cpp.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <keel/result.hpp>

#include "tls/context.hpp"

struct rte_mbuf;

namespace keel::engine {
class Engine;
}
namespace keel::tcp {
class TcpStack;
class ListenHandler;
}

namespace keel::pmd {

enum class ServiceKind : uint8_t { echo, discard, chargen, http, https };

struct ServiceSpec {
  ServiceKind kind = ServiceKind::echo;
  uint16_t port = 0;
  bool operator==(const ServiceSpec&) const = default;
};

const char* to_string(ServiceKind k);
/// The well-known port: 7, 9, 19, 80, 443.
uint16_t default_port(ServiceKind k);

/// Parses "name[:port],name[:port],..." (names echo, discard, chargen, http, https).
/// The error names the offending item: an unknown service, a port that is not
/// 1..65535, or a port given twice.
Result<std::vector<ServiceSpec>, std::string> parse_service_list(std::string_view list);

/// RFC 864's stream: line k holds the 72 printable characters starting at
/// 0x20 + (k mod 95), cycling through 0x20..0x7e, then CR LF.
inline constexpr size_t chargen_line_chars = 72;
inline constexpr size_t chargen_line_len = chargen_line_chars + 2;
inline constexpr size_t chargen_period = 95 * chargen_line_len;  ///< bytes before it repeats
/// Writes bytes [pos, pos + n) of the chargen stream.
void chargen_fill(uint64_t pos, uint8_t* dst, size_t n);

/// Detaches the leading segments of `chain` that fit in `max` bytes: the whole
/// chain if it fits (`chain` becomes nullptr), else as many whole segments as
/// fit (`chain` keeps the rest, with its pkt_len and nb_segs set). nullptr, and
/// `chain` untouched, if not even the first segment with data fits.
/// Precondition: chain != nullptr.
rte_mbuf* split_chain_front(rte_mbuf*& chain, uint32_t max);

/// One service's listener side on one stack, as Services::start registers it:
/// on_accept hands out pooled sessions. Destroy it only when the stack no
/// longer calls it (after the engine stopped, or with no connection left).
std::unique_ptr<tcp::ListenHandler> make_service_handler(ServiceKind k, tcp::TcpStack& stack);

/// The running services. Destroy after Engine::stop() and before the Engine:
/// sessions hold mbufs of the engine's pool, and the stacks point at the
/// listeners until they are destroyed.
class Services {
 public:
  Services();
  ~Services();
  /// Listens for every spec on every address of every instance (once). On an
  /// error, what did start keeps running until the engine stops.
  Result<void, std::string> start(engine::Engine& e, const std::vector<ServiceSpec>& specs);
  /// The TLS configuration for https (before start; its errors come from start).
  void set_tls(const tls::ContextOptions& o) { tls_ = o; }
  Services(const Services&) = delete;
  Services& operator=(const Services&) = delete;

  const std::vector<ServiceSpec>& specs() const { return specs_; }
  /// The service on local port `port`, or nullptr.
  const char* name_for_port(uint16_t port) const;

  struct Host;  // one instance's listeners and sessions

 private:
  std::vector<ServiceSpec> specs_;
  tls::ContextOptions tls_;
  std::vector<std::shared_ptr<Host>> hosts_;
};

}  // namespace keel::pmd
