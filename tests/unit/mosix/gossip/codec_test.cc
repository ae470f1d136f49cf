// Gossip wire codec (docs/gossip-protocol.md §2-§4): the byte layout, a
// round trip of every field, and a catalogue of malformed, oversized,
// unauthenticated and random inputs, each refused with the right reason.
// Also the small pure helpers: address parsing and the age formulas.
#include "mosix/gossip/codec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "mosix/gossip/formulas.h"
#include "tests/unit/mosix/gossip/helpers.h"

namespace mosix::gossip {
namespace {

using test::entry;
using test::k_key;
using test::packet;
using test::resign;

Mac hmac(const std::string& key = k_key) { return *Mac::create(MacKind::hmac_sha256, key); }

/// Decodes with a fresh HMAC and a generous limit; the reason on failure.
tl::expected<PacketHeader, DropReason> decode(const std::vector<std::byte>& bytes, std::vector<WireEntry>& out,
                                              size_t max_bytes = k_max_udp_payload, const std::string& key = k_key) {
  Mac mac = hmac(key);
  return decode_packet(bytes, mac, max_bytes, out);
}

DropReason reason(const std::vector<std::byte>& bytes, size_t max_bytes = k_max_udp_payload) {
  std::vector<WireEntry> out;
  auto h = decode(bytes, out, max_bytes);
  EXPECT_FALSE(h.has_value());
  return h ? DropReason::internal : h.error();
}

template <typename I>
void poke(std::vector<std::byte>& b, size_t at, I v) {
  std::memcpy(b.data() + at, &v, sizeof(v));
}

TEST(GossipCodec, RoundTripsEveryField) {
  WireEntry e;
  e.id = 0xA1B2C3D4;
  e.cluster = 77;
  e.address = {0xC0A80102, 7001};  // 192.168.1.2
  e.age_ms = 123456;
  e.resources = {12, 13000, 250, uint64_t{64} << 30, uint64_t{3} << 30, uint64_t{8} << 30, 12345, 7, false};
  std::vector<WireEntry> in = {entry(9, 5, 0, 42), e};
  Mac mac = hmac();
  std::vector<std::byte> bytes;
  PacketWriter w(bytes, {9, 5, 0x1122334455667788ull, 99, 0});
  for (const WireEntry& x : in) w.add(x);
  w.finish(mac);
  ASSERT_EQ(bytes.size(), packet_bytes(2));

  std::vector<WireEntry> out;
  auto h = decode(bytes, out);
  ASSERT_TRUE(h) << name(h.error());
  EXPECT_EQ(h->sender, 9u);
  EXPECT_EQ(h->cluster, 5u);
  EXPECT_EQ(h->epoch, 0x1122334455667788ull);
  EXPECT_EQ(h->seq, 99u);
  EXPECT_EQ(h->count, 2u);
  ASSERT_EQ(out.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(out[i].id, in[i].id);
    EXPECT_EQ(out[i].cluster, in[i].cluster);
    EXPECT_EQ(out[i].address, in[i].address);
    EXPECT_EQ(out[i].age_ms, in[i].age_ms);
    EXPECT_EQ(out[i].resources, in[i].resources);
  }
}

TEST(GossipCodec, LayoutIsTheDocumentedOne) {
  WireEntry own = entry(0x01020304, 0x0A0B0C0D, 0);
  own.address = {0xC0A80102, 0x1B58};  // 192.168.1.2:7000
  Mac mac = hmac();
  std::vector<std::byte> b;
  PacketWriter w(b, {0x01020304, 0x0A0B0C0D, 5, 6, 0});
  w.add(own);
  w.finish(mac);
  auto at = [&](size_t i) { return std::to_integer<unsigned>(b[i]); };
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(b.data()), 4), "MGSP");
  EXPECT_EQ(at(4), k_wire_version);
  EXPECT_EQ(at(5), 0u);               // flags
  EXPECT_EQ(at(6) | at(7) << 8, 1u);  // count, little-endian
  EXPECT_EQ(at(8), 0x04u);            // sender id, little-endian
  EXPECT_EQ(at(12), 0x0Du);           // cluster
  EXPECT_EQ(at(16), 5u);              // epoch
  EXPECT_EQ(at(24), 6u);              // seq
  EXPECT_EQ(at(32), 0x04u);           // entry 0: id
  EXPECT_EQ(at(40), 192u);            // IPv4 in address order
  EXPECT_EQ(at(43), 2u);
  EXPECT_EQ(at(44) | at(45) << 8, 7000u);  // port
  EXPECT_EQ(at(46), 1u);                   // flags: accepting
  EXPECT_EQ(b.size(), 32u + 64u + 32u);
  MacTag tag = mac.sign(std::span<const std::byte>(b).first(96));
  EXPECT_EQ(0, std::memcmp(tag.data(), b.data() + 96, 32));  // HMAC over all before it
}

TEST(GossipCodec, RejectsEveryTruncation) {
  std::vector<std::byte> full = packet(2, 1, 1, 1, {entry(3, 1, 10), entry(4, 1, 20)});
  for (size_t n = 0; n < full.size(); ++n) {
    std::vector<std::byte> cut(full.begin(), full.begin() + static_cast<ptrdiff_t>(n));
    EXPECT_EQ(reason(cut), DropReason::truncated) << n << " bytes";
  }
}

TEST(GossipCodec, RejectsTrailingBytes) {
  std::vector<std::byte> b = packet(2, 1, 1, 1);
  b.push_back(std::byte{0});
  EXPECT_EQ(reason(b), DropReason::malformed);
}

TEST(GossipCodec, RejectsPacketsLongerThanTheLimitBeforeLookingAtThem) {
  std::vector<std::byte> b = packet(2, 1, 1, 1, {entry(3, 1, 10)});
  EXPECT_EQ(reason(b, b.size() - 1), DropReason::oversized);
  std::vector<std::byte> junk(70000, std::byte{0xff});
  EXPECT_EQ(reason(junk), DropReason::oversized);
}

TEST(GossipCodec, RejectsBadMagicAndOtherVersions) {
  std::vector<std::byte> b = packet(2, 1, 1, 1);
  auto magic = b;
  magic[0] = std::byte{'X'};
  EXPECT_EQ(reason(magic), DropReason::bad_magic);
  for (uint8_t v : {0, 2, 255}) {
    auto other = b;
    other[4] = std::byte{v};
    resign(other);
    EXPECT_EQ(reason(other), DropReason::wrong_version) << int{v};
  }
}

TEST(GossipCodec, RejectsBadCountsAndFlags) {
  std::vector<std::byte> b = packet(2, 1, 1, 1, {entry(3, 1, 10)});  // 2 entries
  auto zero = b;
  poke<uint16_t>(zero, 6, 0);
  EXPECT_EQ(reason(zero), DropReason::malformed);
  auto huge = b;
  poke<uint16_t>(huge, 6, k_max_entries + 1);
  EXPECT_EQ(reason(huge), DropReason::malformed);
  auto more = b;  // says 3, carries 2
  poke<uint16_t>(more, 6, 3);
  EXPECT_EQ(reason(more), DropReason::truncated);
  auto fewer = b;  // says 1, carries 2: the rest is trailing
  poke<uint16_t>(fewer, 6, 1);
  EXPECT_EQ(reason(fewer), DropReason::malformed);
  auto flags = b;
  flags[5] = std::byte{1};
  resign(flags);
  EXPECT_EQ(reason(flags), DropReason::malformed);
}

TEST(GossipCodec, RejectsTamperingAndOtherKeys) {
  std::vector<std::byte> b = packet(2, 1, 1, 1, {entry(3, 1, 10, 50)});
  for (size_t i : {size_t{8}, size_t{16}, size_t{24}, size_t{32 + 64 + 28}, b.size() - 1}) {
    auto t = b;
    t[i] ^= std::byte{0x01};
    EXPECT_EQ(reason(t), DropReason::bad_mac) << "byte " << i;
  }
  std::vector<WireEntry> out;
  auto h = decode(b, out, k_max_udp_payload, "another key of the right length");
  ASSERT_FALSE(h);
  EXPECT_EQ(h.error(), DropReason::bad_mac);
}

TEST(GossipCodec, RejectsOutOfRangeFieldsEvenWhenAuthenticated) {
  std::vector<std::byte> b = packet(2, 1, 1, 1, {entry(3, 1, 10)});
  const size_t e1 = k_header_bytes + k_entry_bytes;  // second entry
  struct Case {
    const char* what;
    size_t at;
    uint64_t value;
    size_t width;
  } cases[] = {
      {"sender 0", 8, 0, 4},
      {"epoch 0", 16, 0, 8},
      {"seq 0", 24, 0, 8},
      {"entry id 0", e1, 0, 4},
      {"entry ip 0", e1 + 8, 0, 4},
      {"entry port 0", e1 + 12, 0, 2},
      {"entry flags", e1 + 14, 2, 1},
      {"entry reserved", e1 + 15, 1, 1},
      {"entry 0 not the sender", k_header_bytes, 5, 4},
      {"entry 0 of another cluster", k_header_bytes + 4, 9, 4},
  };
  for (const Case& c : cases) {
    auto t = b;
    std::memcpy(t.data() + c.at, &c.value, c.width);
    resign(t);
    EXPECT_EQ(reason(t), DropReason::malformed) << c.what;
  }
}

TEST(GossipCodec, RandomGarbageIsAlwaysRefused) {
  std::mt19937_64 rng(7);
  std::vector<WireEntry> out;
  Mac mac = hmac();
  for (int i = 0; i < 20000; ++i) {
    std::vector<std::byte> b(rng() % 2200);
    for (auto& x : b) x = std::byte(rng());
    if (i % 2 && b.size() >= 8) std::memcpy(b.data(), "MGSP\x01\x00", 6);  // get past magic and version
    EXPECT_FALSE(decode_packet(b, mac, k_max_udp_payload, out)) << i;
  }
}

TEST(GossipCodec, MutationsOfAValidPacketDecodeConsistentlyOrNotAtAll) {
  // With the MAC recomputed, every structural check is exercised: the
  // decoder must refuse or return a packet whose count matches its length.
  std::mt19937_64 rng(11);
  std::vector<std::byte> base = packet(2, 1, 1, 1, {entry(3, 1, 10), entry(4, 2, 20)});
  std::vector<WireEntry> out;
  Mac mac = hmac();
  for (int i = 0; i < 20000; ++i) {
    auto b = base;
    for (int k = 1 + static_cast<int>(rng() % 3); k > 0; --k) b[rng() % (b.size() - k_mac_bytes)] = std::byte(rng());
    if (rng() % 4 == 0) b.resize(rng() % (b.size() + 80), std::byte{0});
    if (b.size() >= k_mac_bytes && rng() % 2) resign(b);
    auto h = decode_packet(b, mac, k_max_udp_payload, out);
    if (h) {
      EXPECT_EQ(b.size(), packet_bytes(h->count));
      EXPECT_EQ(out.size(), h->count);
      EXPECT_EQ(out[0].id, h->sender);
    }
  }
}

TEST(GossipCodec, SimKeyTagDetectsAWrongKeyButNotTampering) {
  auto tag = Mac::create(MacKind::sim_key_tag, k_key);
  auto other = Mac::create(MacKind::sim_key_tag, "some other key of 16+ bytes");
  ASSERT_TRUE(tag && other);
  std::vector<std::byte> b;
  PacketWriter w(b, {2, 1, 1, 1, 0});
  w.add(entry(2, 1, 0));
  w.finish(*tag);
  std::vector<WireEntry> out;
  EXPECT_TRUE(decode_packet(b, *tag, k_max_udp_payload, out));
  EXPECT_EQ(decode_packet(b, *other, k_max_udp_payload, out).error(), DropReason::bad_mac);
  b[k_header_bytes + 20] ^= std::byte{1};  // cpus: accepted, as documented (simulation only)
  EXPECT_TRUE(decode_packet(b, *tag, k_max_udp_payload, out));
}

TEST(GossipCodec, RefusesShortKeys) {
  auto mac = Mac::create(MacKind::hmac_sha256, "short");
  ASSERT_FALSE(mac);
  EXPECT_EQ(mac.error().code, EINVAL);
}

TEST(GossipAddress, ParsesStrictDottedQuads) {
  auto a = parse_address("10.1.2.3:7000");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->ip, 0x0A010203u);
  EXPECT_EQ(a->port, 7000);
  EXPECT_EQ(a->str(), "10.1.2.3:7000");
  for (const char* bad : {"", "10.1.2.3", "10.1.2:7000", "10.1.2.3.4:7000", "10.1.2.256:7000", "10.01.2.3:7000",
                          "10.1.2.3:0", "10.1.2.3:65536", "a.b.c.d:1", "10.1.2.3:7000x", "[::1]:7000", " 10.1.2.3:1"})
    EXPECT_FALSE(parse_address(bad)) << bad;
}

TEST(GossipFormulas, MatchTheDesignsRuleOfThumb) {
  AgeFormulas f = age_formulas(256, 16);
  EXPECT_NEAR(f.average, 18.3, 0.1);   // DESIGN §7: N=256, W=16 gives ~18 average
  EXPECT_NEAR(f.maximum, 97.4, 0.1);   // and ~97 maximum
  EXPECT_NEAR(f.holders, 16.0, 1e-9);  // X = W exactly
  EXPECT_TRUE(std::isnan(age_formulas(16, 16).average));
  EXPECT_TRUE(std::isnan(age_formulas(8, 0).maximum));
}

}  // namespace
}  // namespace mosix::gossip
