// Address: a node's IPv4 UDP gossip endpoint, as carried in every entry
// (docs/gossip-protocol.md §3). Parsing and printing only; sockets live in
// udp.cc, and IPv6 would need a new wire version (the entry has 6 bytes).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace mosix::gossip {

/// An IPv4 address and UDP port, both in host byte order.
struct Address {
  uint32_t ip = 0;    ///< a.b.c.d as (a << 24) | (b << 16) | (c << 8) | d
  uint16_t port = 0;  ///< 1..65535; 0 = unset

  /// Both parts set (a usable gossip target).
  bool valid() const { return ip != 0 && port != 0; }
  /// "a.b.c.d:port".
  std::string str() const;
  bool operator==(const Address&) const = default;
};

/// Parses "a.b.c.d:port" strictly: four decimal octets 0..255 without
/// leading zeros, a port 1..65535, nothing else. Errors: EINVAL naming
/// what is wrong ("gossip address "x": ...").
[[nodiscard]] mrc::Result<Address> parse_address(std::string_view text);

}  // namespace mosix::gossip
