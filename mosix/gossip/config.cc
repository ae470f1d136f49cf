// validate(): every Config rule in one place, each error naming its field.
#include "mosix/gossip/config.h"

#include <unordered_set>

#include "mosix/gossip/codec.h"

namespace mosix::gossip {
namespace {

mrc::Result<void> bad(const std::string& what) { return mrc::fail(EINVAL, "gossip config: " + what); }

}  // namespace

mrc::Result<void> validate(const Config& c) {
  if (c.self == 0) return bad("self id must not be 0");
  if (c.cluster == 0) return bad("cluster id must not be 0");
  if (!c.address.valid()) return bad("own address " + c.address.str() + " is not usable");
  if (c.window < 1 || c.window > k_max_entries)
    return bad("window " + std::to_string(c.window) + " is outside 1.." + std::to_string(k_max_entries));
  if (c.step_ms < k_min_step_ms || c.step_ms > k_max_step_ms)
    return bad("step " + std::to_string(c.step_ms) + " ms is outside " + std::to_string(k_min_step_ms) + ".." +
               std::to_string(k_max_step_ms));
  if (c.age_limit_ms != 0 && c.age_limit_ms < 2 * c.step_ms)
    return bad("age limit " + std::to_string(c.age_limit_ms) + " ms is under two steps");
  if (c.foreign_age_limit_ms != 0 && c.foreign_age_limit_ms < 2 * c.step_ms)
    return bad("foreign age limit " + std::to_string(c.foreign_age_limit_ms) + " ms is under two steps");
  if (c.max_packet_bytes < packet_bytes(c.window) || c.max_packet_bytes > k_max_udp_payload)
    return bad("max packet " + std::to_string(c.max_packet_bytes) + " bytes must be in " +
               std::to_string(packet_bytes(c.window)) + ".." + std::to_string(k_max_udp_payload) + " for window " +
               std::to_string(c.window));
  if (c.key.size() < k_min_key_bytes)
    return bad("key of " + std::to_string(c.key.size()) + " bytes is shorter than " + std::to_string(k_min_key_bytes));
  if (c.boot_epoch == 0) return bad("boot epoch must not be 0");
  if (!(c.foreign_share >= 0 && c.foreign_share <= 1))
    return bad("foreign share " + std::to_string(c.foreign_share) + " is outside 0..1");
  std::unordered_set<ClusterId> clusters{c.cluster};
  for (const ClusterLink& l : c.links) {
    if (l.cluster == 0 || !clusters.insert(l.cluster).second)
      return bad("linked cluster " + std::to_string(l.cluster) + " is 0, ours or repeated");
    if (!(l.weight > 0)) return bad("cluster " + std::to_string(l.cluster) + " weight must be > 0");
  }
  for (const Peer& p : c.peers) {
    if (p.id == c.self) continue;
    std::string who = "peer " + std::to_string(p.id) + " (" + p.address.str() + ")";
    if (!p.address.valid()) return bad(who + ": address is not usable");
    if (!clusters.count(p.cluster)) return bad(who + ": cluster is neither ours nor linked");
  }
  if (c.max_nodes < c.peers.size() + 1)
    return bad("max nodes " + std::to_string(c.max_nodes) + " is less than the peers given");
  return {};
}

}  // namespace mosix::gossip
