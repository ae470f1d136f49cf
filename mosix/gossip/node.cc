// The gossip protocol rules (docs/gossip-protocol.md §5): the step, the
// checks on every received packet, the merge rule, ageing and phase-out,
// cluster policy and the choice of target.
#include "mosix/gossip/node.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "common/log.h"
#include "mosix/gossip/formulas.h"

namespace mosix::gossip {
namespace {

// xoshiro256** (Blackman & Vigna): 32 bytes of state per node, fast, and
// plenty for choosing targets.
uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
uint64_t next(uint64_t (&s)[4]) {
  uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}
/// Uniform in [0, n) (Lemire's multiply-shift; bias < n / 2^64).
size_t uniform(uint64_t (&s)[4], size_t n) {
  return static_cast<size_t>((static_cast<unsigned __int128>(next(s)) * n) >> 64);
}
/// Uniform in [0, 1).
double unit(uint64_t (&s)[4]) { return static_cast<double>(next(s) >> 11) * 0x1.0p-53; }

/// Buffers for building and decoding packets. No state survives a call;
/// one set per thread, shared by all its Nodes, so that a simulation's
/// 10,000 nodes reuse buffers that stay in cache. (Node::step and receive
/// never call each other, so one Node never finds them in use.)
struct Scratch {
  std::vector<std::byte> tx;
  std::vector<WireEntry> rx;
  std::vector<uint32_t> slots;  // rx's table slots, looked up ahead
};
Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

/// The component's logger, looked up once (after mosixd's setup_logging).
spdlog::logger& gossip_log() {
  static std::shared_ptr<spdlog::logger> l = mrc::logger("gossip");
  return *l;
}

}  // namespace

uint64_t Stats::drops_total() const {
  uint64_t n = 0;
  for (uint64_t d : dropped) n += d;
  return n;
}

mrc::Result<std::unique_ptr<Node>> Node::create(Config config, Clock& clock, Network& network,
                                                std::pmr::memory_resource* memory) {
  if (auto ok = validate(config); !ok) return tl::unexpected(ok.error());
  auto mac = Mac::create(config.mac, config.key);
  if (!mac) return tl::unexpected(mac.error());
  std::vector<Peer> peers = std::move(config.peers);
  config.peers.clear();
  std::unique_ptr<Node> node(new Node(std::move(config), clock, network, std::move(*mac), memory));
  if (auto ok = node->load_peers(peers); !ok) return tl::unexpected(ok.error());
  return node;
}

Node::Node(Config config, Clock& clock, Network& network, Mac mac, std::pmr::memory_resource* memory)
    : m_config(std::move(config)),
      m_clock(clock),
      m_network(network),
      m_mac(std::move(mac)),
      m_table(m_config.self, m_config.cluster, m_config.address, m_config.window - 1, m_config.max_nodes, memory) {
  m_table.store(0, m_config.self, m_config.cluster, m_config.address, m_local, clock.now_ms());
  uint64_t seed = m_config.seed ? m_config.seed : std::random_device{}();
  for (uint64_t& s : m_rng) {  // splitmix64, so that any seed gives a good state
    seed += 0x9E3779B97F4A7C15ull;
    uint64_t z = seed;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    s = z ^ (z >> 31);
  }
  update_age_limit();
}

mrc::Result<void> Node::load_peers(const std::vector<Peer>& peers) {
  m_table.reserve(peers.size() + 1);
  for (const Peer& p : peers) {
    if (p.id == m_config.self) continue;
    if (p.id == 0) {
      m_seeds.push_back({p.address, p.cluster});
      continue;
    }
    if (m_table.find(p.id) != k_no_slot)
      return mrc::fail(EINVAL, "gossip config: peer id " + std::to_string(p.id) + " repeated");
    uint32_t slot = m_table.add(p.id, p.cluster, p.address, true);  // fits: validate()d
    m_table.set_target(slot, true);
  }
  update_age_limit();
  return {};
}

void Node::prefetch(int stage, std::span<const std::byte> next_packet) const {
  if (stage == 1) m_table.prefetch_hot(m_sweep);
  // Each entry's id is at its offset 0.
  for (size_t at = k_header_bytes; at + k_entry_bytes + k_mac_bytes <= next_packet.size(); at += k_entry_bytes) {
    NodeId id;
    std::memcpy(&id, next_packet.data() + at, sizeof(id));
    if (stage == 2) {
      m_table.prefetch_index(id);
    } else if (uint32_t slot = m_table.find(id); slot != k_no_slot) {
      m_table.prefetch_entry(slot);
      if (at == k_header_bytes) m_table.prefetch_guard(slot);  // entry 0: the sender's
    }
  }
}

void Node::set_local(const Resources& r) {
  m_local = r;
  m_table.store(0, m_config.self, m_config.cluster, m_config.address, r, m_clock.now_ms());
}

void Node::step() {
  if (!active()) return;
  const int64_t now = m_clock.now_ms();
  m_table.store(0, m_config.self, m_config.cluster, m_config.address, m_local, now);  // own entry, age 0
  update_age_limit();
  expire_some(now);
  Address to;
  bool foreign = false;
  if (!pick_target(to, foreign)) return;

  std::vector<std::byte>& tx = scratch().tx;
  PacketWriter w(tx, {m_config.self, m_config.cluster, m_config.boot_epoch, ++m_seq, 0});
  w.add({m_config.self, m_config.cluster, m_config.address, 0, m_local});
  for (const WindowSlot& ws : m_table.window()) {
    int64_t age = std::max<int64_t>(0, now - ws.produced_ms);
    const Entry& c = m_table.copy(ws);
    if (age > limit_for(c.cluster)) continue;  // never sends what it would drop itself
    w.add({ws.id, c.cluster, c.address(), static_cast<uint32_t>(age), c.resources()});
  }
  w.finish(m_mac);
  ++m_stats.packets_sent;
  m_stats.packets_sent_foreign += foreign ? 1 : 0;
  m_stats.bytes_sent += tx.size();
  if (auto sent = m_network.send(to, tx); !sent) {
    ++m_stats.send_errors;
    gossip_log().debug("send to {}: {}", to.str(), sent.error().message);
  }
}

void Node::receive(std::span<const std::byte> packet, const Address& from) noexcept {
  try {
    receive_checked(packet, from);
  } catch (...) {  // only std::bad_alloc can get here; the daemon goes on
    ++m_stats.dropped[static_cast<size_t>(DropReason::internal)];
  }
}

void Node::receive_checked(std::span<const std::byte> packet, const Address& from) {
  ++m_stats.packets_received;
  m_stats.bytes_received += packet.size();
  auto drop = [&](DropReason r) {
    ++m_stats.dropped[static_cast<size_t>(r)];
    if (gossip_log().should_log(spdlog::level::debug))
      gossip_log().debug("dropped {} bytes from {}: {}", packet.size(), from.str(), name(r));
  };
  if (!active()) return drop(DropReason::inactive);
  std::vector<WireEntry>& rx = scratch().rx;
  auto h = decode_packet(packet, m_mac, m_config.max_packet_bytes, rx);
  if (!h) return drop(h.error());
  for (const WireEntry& e : rx) m_table.prefetch_index(e.id);  // needed below, all at once
  if (h->sender == m_config.self) return drop(DropReason::own_id);
  if (!allowed(h->cluster)) return drop(DropReason::blocked_cluster);
  uint32_t slot = m_table.find(h->sender);
  if (slot == k_no_slot) slot = m_table.add(h->sender, h->cluster, rx[0].address, false);
  if (slot == k_no_slot) return drop(DropReason::table_full);
  ReplayGuard& guard = m_table.guard(slot);
  if (h->epoch < guard.epoch || (h->epoch == guard.epoch && h->seq <= guard.seq)) return drop(DropReason::replayed);
  guard = {h->epoch, h->seq};
  ++m_stats.packets_accepted;
  const int64_t now = m_clock.now_ms();
  // Look every entry up before merging any, with cache hints ahead of
  // each pass, so that the memory accesses of the whole packet overlap.
  std::vector<uint32_t>& slots = scratch().slots;
  slots.resize(rx.size());
  for (size_t i = 0; i < rx.size(); ++i) {
    slots[i] = m_table.find(rx[i].id);
    if (slots[i] != k_no_slot) m_table.prefetch_entry(slots[i]);
  }
  for (size_t i = 0; i < rx.size(); ++i) merge(rx[i], slots[i], now);
}

void Node::merge(const WireEntry& e, uint32_t slot, int64_t now) {
  ++m_stats.entries_received;
  if (e.id == m_config.self || !allowed(e.cluster) || e.age_ms > limit_for(e.cluster)) {
    ++m_stats.entries_refused;
    return;
  }
  const int64_t produced = now - e.age_ms;
  if (slot == k_no_slot) slot = m_table.find(e.id);  // added by an earlier entry of the packet?
  if (slot == k_no_slot) slot = m_table.add(e.id, e.cluster, e.address, false);
  if (slot == k_no_slot) {
    ++m_stats.entries_refused;
    return;
  }
  const Entry& held = m_table.at(slot);
  if (held.has_data && produced <= held.produced_ms) {
    ++m_stats.entries_not_newer;
    return;
  }
  const bool learnt = !held.has_data;
  m_table.store(slot, e.id, e.cluster, e.address, e.resources, produced);
  ++m_stats.entries_newer;
  if (!learnt) return;
  ++m_stats.nodes_learnt;
  m_table.set_target(slot, true);
  std::erase_if(m_seeds, [&](const Seed& s) { return s.address == e.address; });
}

bool Node::allowed(ClusterId cluster) const {
  if (cluster == m_config.cluster) return true;  // ours cannot be blocked
  if (m_blocked.count(cluster)) return false;
  return std::any_of(m_config.links.begin(), m_config.links.end(),
                     [&](const ClusterLink& l) { return l.cluster == cluster; });
}

void Node::expire_some(int64_t now) {
  const size_t others = m_table.size() - 1;
  if (others == 0) return;
  // Look at enough slots per step to cover the table every quarter limit,
  // so an entry is gone by 1.25 limits; snapshot() hides it meanwhile.
  double per_step = std::ceil(static_cast<double>(others) * 4.0 * static_cast<double>(m_config.step_ms) /
                              static_cast<double>(m_age_limit_ms));
  size_t n = std::clamp<size_t>(static_cast<size_t>(per_step), 1, others);
  for (size_t k = 0; k < n; ++k) {
    uint32_t slot = m_sweep;
    m_sweep = m_sweep + 1 < m_table.size() ? m_sweep + 1 : 1;
    const Entry& e = m_table.at(slot);
    if (!e.has_data || now - e.produced_ms <= limit_for(e.cluster)) continue;
    m_table.drop_data(slot);
    ++m_stats.entries_expired;
    if (!e.configured) m_table.set_target(slot, false);  // learnt and dead: stop sending to it
  }
}

void Node::update_age_limit() {
  if (m_table.size() == m_age_limit_for) return;  // N unchanged
  m_age_limit_for = m_table.size();
  const double share = m_config.foreign_share;
  double base = static_cast<double>(m_config.age_limit_ms);
  if (base == 0) {
    double w = m_config.window;
    AgeFormulas f = age_formulas(std::max<double>(static_cast<double>(m_table.size()), 2 * w), w);
    base = static_cast<double>(
        std::max(static_cast<int64_t>(std::ceil(k_age_limit_factor * f.maximum)), k_min_age_limit_steps) *
        m_config.step_ms);
  }
  const bool linked = !m_config.links.empty();
  m_age_limit_ms = m_config.age_limit_ms ? m_config.age_limit_ms
                                         : static_cast<int64_t>(linked ? base / std::max(1 - share, 0.1) : base);
  m_foreign_age_limit_ms = m_config.foreign_age_limit_ms
                               ? m_config.foreign_age_limit_ms
                               : static_cast<int64_t>(base / std::max(share, k_min_foreign_share));
}

size_t Node::candidates(ClusterId cluster) const {
  if (m_blocked.count(cluster)) return 0;
  size_t n = m_table.targets(cluster).size();
  for (const Seed& s : m_seeds) n += s.cluster == cluster ? 1 : 0;
  return n;
}

Address Node::candidate(ClusterId cluster, size_t i) const {
  std::span<const Target> t = m_table.targets(cluster);
  if (i < t.size()) return t[i].address;
  i -= t.size();
  for (const Seed& s : m_seeds)
    if (s.cluster == cluster && i-- == 0) return s.address;
  return {};  // unreachable: i < candidates(cluster)
}

bool Node::pick_target(Address& to, bool& foreign) {
  const size_t own = candidates(m_config.cluster);
  double foreign_weight = 0;
  for (const ClusterLink& l : m_config.links)
    if (candidates(l.cluster)) foreign_weight += l.weight;
  foreign = foreign_weight > 0 && (own == 0 || unit(m_rng) < m_config.foreign_share);
  if (!foreign) {
    if (own == 0) return false;
    to = candidate(m_config.cluster, uniform(m_rng, own));
    return true;
  }
  double r = unit(m_rng) * foreign_weight;
  const ClusterLink* pick = nullptr;
  for (const ClusterLink& l : m_config.links) {
    if (!candidates(l.cluster)) continue;
    pick = &l;
    if ((r -= l.weight) < 0) break;
  }
  to = candidate(pick->cluster, uniform(m_rng, candidates(pick->cluster)));
  return true;
}

EntryView Node::view(uint32_t slot, int64_t now) const {
  const Entry& e = m_table.at(slot);
  return {m_table.id(slot), e.cluster, e.address(), e.resources(), now - e.produced_ms};
}

void Node::for_each_entry(const std::function<void(const EntryView&)>& f) const {
  const int64_t now = m_clock.now_ms();
  f(view(0, now));  // our own, however long we were inactive
  for (uint32_t s = 1; s < m_table.size(); ++s) {
    const Entry& e = m_table.at(s);
    if (e.has_data && now - e.produced_ms <= limit_for(e.cluster)) f(view(s, now));
  }
}

std::vector<EntryView> Node::snapshot() const {
  std::vector<EntryView> out;
  out.reserve(m_table.with_data());
  for_each_entry([&](const EntryView& v) { out.push_back(v); });
  // Own entry (slot 0) is first already; the rest by id.
  std::sort(out.begin() + 1, out.end(), [](const EntryView& a, const EntryView& b) { return a.id < b.id; });
  return out;
}

mrc::Result<void> Node::block_cluster(ClusterId cluster, Blocked b) {
  if (cluster == m_config.cluster) return mrc::fail(EINVAL, "cannot block our own cluster " + std::to_string(cluster));
  if (b == Blocked::yes) {
    m_blocked.insert(cluster);
  } else {
    m_blocked.erase(cluster);
  }
  for (uint32_t s = 1; s < m_table.size(); ++s) {
    const Entry& e = m_table.at(s);
    if (e.cluster != cluster) continue;
    if (b == Blocked::yes) {
      m_table.drop_data(s);
      m_table.set_target(s, false);
    } else if (e.configured) {
      m_table.set_target(s, true);  // learnt ones return as they gossip again
    }
  }
  return {};
}

}  // namespace mosix::gossip
