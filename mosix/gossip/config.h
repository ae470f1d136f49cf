// Every tunable of one gossip Node, with its unit and why it has its
// default (DESIGN §7, docs/gossip-protocol.md), and the check that a Config
// is usable. mosixd fills it from its own config file; sim.h from a test.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "mosix/gossip/address.h"
#include "mosix/gossip/resources.h"

namespace mosix::gossip {

/// Entries per message, own one included: the paper's rule of thumb makes
/// the average age ~N/W + 2 steps (N=256: ~18 s at a 1 s step).
inline constexpr uint16_t k_default_window = 16;
/// Gossip step, ms: MOSIX's one message per node per second.
inline constexpr int64_t k_default_step_ms = 1000;
/// Shortest and longest step accepted, ms.
inline constexpr int64_t k_min_step_ms = 10;
inline constexpr int64_t k_max_step_ms = 60'000;
/// The automatic age limit is this many times the expected maximum age
/// (formulas.h) of a live entry for the current N and W: a live node's
/// entry exceeds it with negligible probability (the largest of N waiting
/// times concentrates around its mean), a dead one goes after ~3 max ages.
inline constexpr double k_age_limit_factor = 3.0;
/// Floor of the automatic age limit, in steps (tiny clusters, W >= N).
inline constexpr int64_t k_min_age_limit_steps = 30;
/// The automatic limits never divide by less than this share.
inline constexpr double k_min_foreign_share = 0.01;
/// Default largest datagram sent or accepted, bytes: W = 126 entries; the
/// receive buffer is this big, so it also bounds memory per packet.
inline constexpr size_t k_default_max_packet_bytes = 8192;
/// Default bound on nodes remembered (entries incl. the dead kept for replay
/// protection), so that a flood of made-up ids cannot exhaust memory.
inline constexpr size_t k_default_max_nodes = 65536;
/// Shortest accepted cluster key, bytes (as mosixd's k_min_key_bytes).
inline constexpr size_t k_min_key_bytes = 16;

/// How packets are authenticated.
enum class MacKind : uint8_t {
  /// HMAC-SHA256 with the cluster key: what real nodes use.
  hmac_sha256,
  /// SIMULATION ONLY: a constant 32-byte tag derived from the key (detects
  /// a wrong key, not tampering), so 10,000 simulated nodes run in minutes.
  /// The packet bytes, length and code path are otherwise identical.
  sim_key_tag,
};

/// A node known before any gossip arrives (from mosixd's config).
struct Peer {
  NodeId id = 0;          ///< its id; 0 = unknown: a seed, contacted until learnt by gossip
  Address address;        ///< its gossip endpoint
  ClusterId cluster = 0;  ///< its cluster: ours or one of Config::links
};

/// A foreign cluster this node gossips with.
struct ClusterLink {
  ClusterId cluster = 0;
  /// Relative share of foreign-bound steps that go to this cluster (> 0);
  /// mosixd maps its priorities (lower = preferred) onto weights.
  double weight = 1.0;
};

/// One node's gossip settings. Fields after `address` have defaults.
struct Config {
  NodeId self = 0;                 ///< this node's id, != 0, unique in the whole system
  ClusterId cluster = 0;           ///< this node's cluster, != 0
  Address address;                 ///< this node's endpoint, advertised in its entry
  std::vector<Peer> peers;         ///< known at start; a peer equal to `self` is skipped
  std::vector<ClusterLink> links;  ///< foreign clusters we gossip with; all others refused
  /// Probability, per step, of sending to a foreign cluster rather than our
  /// own (when both have targets): cross-cluster traffic is this share of
  /// our messages, yet every connected cluster's nodes still appear.
  double foreign_share = 0.1;
  uint16_t window = k_default_window;  ///< W: own entry + the W-1 most recently produced
  int64_t step_ms = k_default_step_ms;
  /// Entries of our cluster older than this are dropped, ms; 0 = automatic
  /// (k_age_limit_factor expected maximum ages for the N known and W,
  /// over 1 - foreign_share when linked: fewer of our steps stay home).
  int64_t age_limit_ms = 0;
  /// The same for entries of linked clusters, ms; 0 = automatic: the
  /// cluster's limit over foreign_share (at least k_min_foreign_share),
  /// since their entries reach us only over the share of steps that cross
  /// (measured: foreign ages grow as 1 / foreign_share).
  int64_t foreign_age_limit_ms = 0;
  size_t max_packet_bytes = k_default_max_packet_bytes;
  size_t max_nodes = k_default_max_nodes;
  std::string key;  ///< shared by all connected clusters, >= k_min_key_bytes bytes
  MacKind mac = MacKind::hmac_sha256;
  /// Grows with every start of this node (mosixd: wall-clock ms at start),
  /// so that receivers tell a restart from a replay; != 0.
  uint64_t boot_epoch = 0;
  uint64_t seed = 0;  ///< random target choice; 0 = from std::random_device
};

/// Checks `c` field by field. Errors: EINVAL naming the field and the rule
/// ("gossip config: window 0 is outside 1..1000"). Repeated peer ids are
/// found by Node::create as it loads them (one pass, no extra set).
[[nodiscard]] mrc::Result<void> validate(const Config& c);

}  // namespace mosix::gossip
