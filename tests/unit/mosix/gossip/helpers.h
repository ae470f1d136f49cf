// Test doubles for the gossip engine: a clock set by hand, a network that
// keeps what is sent, and builders of packets as a peer would send them.
#pragma once

#include <string>
#include <vector>

#include "mosix/gossip/codec.h"
#include "mosix/gossip/config.h"
#include "mosix/gossip/node.h"

namespace mosix::gossip::test {

inline constexpr char k_key[] = "0123456789abcdef-test-key";

class ManualClock final : public Clock {
 public:
  int64_t now_ms() const override { return now; }
  int64_t now = 1'000'000;  // arbitrary origin: only differences matter
};

struct Sent {
  Address to;
  std::vector<std::byte> bytes;
};

class CaptureNetwork final : public Network {
 public:
  mrc::Result<void> send(const Address& to, std::span<const std::byte> bytes) override {
    sent.push_back({to, {bytes.begin(), bytes.end()}});
    return {};
  }
  std::vector<Sent> sent;
};

inline Address address_of(NodeId id) { return {0x0A000000u + id, 7000}; }

/// An entry of node `id` of `cluster`, `age_ms` old, with `load`.
inline WireEntry entry(NodeId id, ClusterId cluster, uint32_t age_ms, uint32_t load = 0) {
  WireEntry e;
  e.id = id;
  e.cluster = cluster;
  e.address = address_of(id);
  e.age_ms = age_ms;
  e.resources.cpus = 4;
  e.resources.speed = k_standard_speed;
  e.resources.load = load;
  return e;
}

/// A signed packet from `sender` (its own entry first, age 0) carrying `others`.
inline std::vector<std::byte> packet(NodeId sender, ClusterId cluster, uint64_t epoch, uint64_t seq,
                                     const std::vector<WireEntry>& others = {}, const std::string& key = k_key) {
  auto mac = Mac::create(MacKind::hmac_sha256, key);
  std::vector<std::byte> out;
  PacketWriter w(out, {sender, cluster, epoch, seq, 0});
  w.add(entry(sender, cluster, 0));
  for (const WireEntry& e : others) w.add(e);
  w.finish(*mac);
  return out;
}

/// Recomputes the HMAC trailer after a test edited the bytes before it.
inline void resign(std::vector<std::byte>& bytes, const std::string& key = k_key) {
  auto mac = Mac::create(MacKind::hmac_sha256, key);
  size_t body = bytes.size() - k_mac_bytes;
  MacTag tag = mac->sign(std::span<const std::byte>(bytes).first(body));
  std::copy(tag.begin(), tag.end(), bytes.begin() + static_cast<ptrdiff_t>(body));
}

/// Node 1 of cluster 1 with window 4, a fixed seed, and `peers`.
inline Config config(NodeId self = 1, ClusterId cluster = 1, std::vector<Peer> peers = {}) {
  Config c;
  c.self = self;
  c.cluster = cluster;
  c.address = address_of(self);
  c.peers = std::move(peers);
  c.window = 4;
  c.key = k_key;
  c.boot_epoch = 1;
  c.seed = 42;
  return c;
}

inline Peer peer(NodeId id, ClusterId cluster = 1) { return {id, address_of(id), cluster}; }

}  // namespace mosix::gossip::test
