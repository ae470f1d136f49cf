// Gossip packet encoding and decoding (docs/gossip-protocol.md §2-§4).
#include "common/le.h"
#include "mosix/gossip/codec.h"

#include <bit>
#include <cassert>
#include <cstring>

namespace mosix::gossip {
namespace {

static_assert(std::endian::native == std::endian::little, "the wire is little-endian");

constexpr std::byte k_magic[4] = {std::byte{'M'}, std::byte{'G'}, std::byte{'S'}, std::byte{'P'}};
constexpr uint8_t k_entry_flag_accepting = 0x01;

template <typename I>
void put(std::byte* p, I v) {
  mrc::put_le(p, v);
}
template <typename I>
I get(const std::byte* p) {
  return mrc::get_le<I>(p);
}

// Entry layout (§3), offsets in bytes.
void put_entry(std::byte* p, const WireEntry& e) {
  const Resources& r = e.resources;
  put(p + 0, e.id);
  put(p + 4, e.cluster);
  put(p + 8, __builtin_bswap32(e.address.ip));  // a.b.c.d in address order
  put(p + 12, e.address.port);
  put(p + 14, static_cast<uint8_t>(r.accepting ? k_entry_flag_accepting : 0));
  put(p + 15, uint8_t{0});
  put(p + 16, e.age_ms);
  put(p + 20, r.cpus);
  put(p + 22, r.guests);
  put(p + 24, r.speed);
  put(p + 28, r.load);
  put(p + 32, r.mem_total);
  put(p + 40, r.mem_free);
  put(p + 48, r.swap_total);
  put(p + 56, r.swap_free);
}

/// False if a field is out of range (id 0, unset address, unknown flags).
bool get_entry(const std::byte* p, WireEntry& e) {
  e.id = get<uint32_t>(p + 0);
  e.cluster = get<uint32_t>(p + 4);
  e.address.ip = __builtin_bswap32(get<uint32_t>(p + 8));
  e.address.port = get<uint16_t>(p + 12);
  auto flags = get<uint8_t>(p + 14);
  auto reserved = get<uint8_t>(p + 15);
  e.age_ms = get<uint32_t>(p + 16);
  Resources& r = e.resources;
  r.cpus = get<uint16_t>(p + 20);
  r.guests = get<uint16_t>(p + 22);
  r.speed = get<uint32_t>(p + 24);
  r.load = get<uint32_t>(p + 28);
  r.mem_total = get<uint64_t>(p + 32);
  r.mem_free = get<uint64_t>(p + 40);
  r.swap_total = get<uint64_t>(p + 48);
  r.swap_free = get<uint64_t>(p + 56);
  r.accepting = (flags & k_entry_flag_accepting) != 0;
  return e.id != 0 && e.address.valid() && (flags & ~k_entry_flag_accepting) == 0 && reserved == 0;
}

}  // namespace

std::string_view name(DropReason r) {
  switch (r) {
    case DropReason::oversized:
      return "oversized";
    case DropReason::truncated:
      return "truncated";
    case DropReason::bad_magic:
      return "bad_magic";
    case DropReason::wrong_version:
      return "wrong_version";
    case DropReason::malformed:
      return "malformed";
    case DropReason::bad_mac:
      return "bad_mac";
    case DropReason::replayed:
      return "replayed";
    case DropReason::blocked_cluster:
      return "blocked_cluster";
    case DropReason::own_id:
      return "own_id";
    case DropReason::inactive:
      return "inactive";
    case DropReason::table_full:
      return "table_full";
    case DropReason::internal:
      return "internal";
  }
  return "unknown";
}

PacketWriter::PacketWriter(std::vector<std::byte>& out, const PacketHeader& h) : m_out(out) {
  m_out.resize(k_header_bytes);
  std::byte* p = m_out.data();
  std::memcpy(p, k_magic, 4);
  put(p + 4, k_wire_version);
  put(p + 5, uint8_t{0});   // flags
  put(p + 6, uint16_t{0});  // count, written by finish()
  put(p + 8, h.sender);
  put(p + 12, h.cluster);
  put(p + 16, h.epoch);
  put(p + 24, h.seq);
}

void PacketWriter::add(const WireEntry& e) {
  assert(m_count < k_max_entries);
  size_t at = m_out.size();
  m_out.resize(at + k_entry_bytes);
  put_entry(m_out.data() + at, e);
  ++m_count;
}

void PacketWriter::finish(Mac& mac) {
  assert(m_count >= 1);
  put(m_out.data() + 6, static_cast<uint16_t>(m_count));
  MacTag tag = mac.sign(m_out);
  m_out.insert(m_out.end(), tag.begin(), tag.end());
}

tl::expected<PacketHeader, DropReason> decode_packet(std::span<const std::byte> bytes, Mac& mac, size_t max_bytes,
                                                     std::vector<WireEntry>& entries) {
  using tl::unexpected;
  entries.clear();
  if (bytes.size() > max_bytes) return unexpected(DropReason::oversized);
  if (bytes.size() < packet_bytes(1)) return unexpected(DropReason::truncated);
  const std::byte* p = bytes.data();
  if (std::memcmp(p, k_magic, 4) != 0) return unexpected(DropReason::bad_magic);
  if (get<uint8_t>(p + 4) != k_wire_version) return unexpected(DropReason::wrong_version);
  PacketHeader h;
  h.count = get<uint16_t>(p + 6);
  if (get<uint8_t>(p + 5) != 0 || h.count == 0 || h.count > k_max_entries) return unexpected(DropReason::malformed);
  size_t want = packet_bytes(h.count);
  if (bytes.size() < want) return unexpected(DropReason::truncated);
  if (bytes.size() > want) return unexpected(DropReason::malformed);  // trailing bytes
  size_t signed_len = want - k_mac_bytes;
  if (!mac.verify(bytes.first(signed_len), bytes.subspan(signed_len).first<k_mac_bytes>()))
    return unexpected(DropReason::bad_mac);
  h.sender = get<uint32_t>(p + 8);
  h.cluster = get<uint32_t>(p + 12);
  h.epoch = get<uint64_t>(p + 16);
  h.seq = get<uint64_t>(p + 24);
  if (h.sender == 0 || h.epoch == 0 || h.seq == 0) return unexpected(DropReason::malformed);
  entries.resize(h.count);
  for (size_t i = 0; i < h.count; ++i)
    if (!get_entry(p + k_header_bytes + i * k_entry_bytes, entries[i])) return unexpected(DropReason::malformed);
  if (entries[0].id != h.sender || entries[0].cluster != h.cluster) return unexpected(DropReason::malformed);
  return h;
}

}  // namespace mosix::gossip
