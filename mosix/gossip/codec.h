// The gossip wire format, byte for byte as in docs/gossip-protocol.md: a
// 32-byte header, 1..k_max_entries entries of 64 bytes, a 32-byte MAC
// trailer; little-endian. Encoding and strict decoding (every length and
// field checked, the packet consumed exactly); no policy, no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <tl/expected.hpp>
#include <vector>

#include "mosix/gossip/address.h"
#include "mosix/gossip/mac.h"
#include "mosix/gossip/resources.h"

namespace mosix::gossip {

/// Wire version in header byte 4; a receiver accepts exactly this one.
inline constexpr uint8_t k_wire_version = 1;
inline constexpr size_t k_header_bytes = 32;
inline constexpr size_t k_entry_bytes = 64;
/// Largest UDP payload over IPv4, bytes (65535 - 20 IP - 8 UDP).
inline constexpr size_t k_max_udp_payload = 65507;
/// Most entries in one packet: the largest count that fits a UDP payload.
inline constexpr size_t k_max_entries = 1000;

/// Bytes of a packet carrying `entries` entries.
constexpr size_t packet_bytes(size_t entries) { return k_header_bytes + entries * k_entry_bytes + k_mac_bytes; }
static_assert(packet_bytes(k_max_entries) <= k_max_udp_payload);

/// The header's fields (§2). `count` is filled in by the codec.
struct PacketHeader {
  NodeId sender = 0;      ///< != 0
  ClusterId cluster = 0;  ///< the sender's cluster
  uint64_t epoch = 0;     ///< the sender's boot epoch, != 0
  uint64_t seq = 0;       ///< per-boot packet number, >= 1, strictly increasing
  uint16_t count = 0;     ///< entries that follow, 1..k_max_entries
};

/// One entry as carried (§3). Entry 0 of a packet is the sender's own.
struct WireEntry {
  NodeId id = 0;  ///< != 0
  ClusterId cluster = 0;
  Address address;      ///< valid()
  uint32_t age_ms = 0;  ///< age at the moment the packet was built, ms
  Resources resources;
};

/// Why a received packet was dropped. Stats count each separately.
enum class DropReason : uint8_t {
  oversized,        ///< longer than the configured maximum
  truncated,        ///< shorter than its header or its entry count says
  bad_magic,        ///< not a gossip packet
  wrong_version,    ///< another wire version
  malformed,        ///< a field out of range, trailing bytes, entry 0 not the sender
  bad_mac,          ///< trailer does not match: another key, or tampered
  replayed,         ///< (epoch, seq) not newer than the last accepted from that sender
  blocked_cluster,  ///< from a cluster we do not gossip with, or blocked
  own_id,           ///< claims to come from us (a duplicate id, or a reflection)
  inactive,         ///< we are inactive (left the cluster)
  table_full,       ///< a new sender, and Config::max_nodes are already known
  internal,         ///< out of memory while handling it
};
inline constexpr size_t k_drop_reasons = static_cast<size_t>(DropReason::internal) + 1;

/// Lower-case name for logs and tables ("bad_mac").
std::string_view name(DropReason r);

/// Builds one packet into a caller-owned buffer (reused across packets).
class PacketWriter {
 public:
  /// Starts a packet in `out` (cleared); `h.count` is ignored.
  PacketWriter(std::vector<std::byte>& out, const PacketHeader& h);
  /// Appends an entry; the first must be the sender's own. At most
  /// k_max_entries (a programmer error otherwise).
  void add(const WireEntry& e);
  size_t count() const { return m_count; }
  /// Writes the count and the MAC trailer; the packet is `out`.
  void finish(Mac& mac);

 private:
  std::vector<std::byte>& m_out;
  size_t m_count = 0;
};

/// Decodes and authenticates one packet of at most `max_bytes` bytes.
/// On success the entries are in `entries` (cleared first; reused to avoid
/// allocating per packet). Checks, in order: size vs `max_bytes`, minimal
/// size, magic, version, flags and count, exact length, MAC, field ranges.
/// An enum, not mrc::Result: the reason is data the caller counts.
[[nodiscard]] tl::expected<PacketHeader, DropReason> decode_packet(std::span<const std::byte> bytes, Mac& mac,
                                                                   size_t max_bytes, std::vector<WireEntry>& entries);

}  // namespace mosix::gossip
