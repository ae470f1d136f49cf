// gossip_config(): mosixd's config file mapped onto the gossip engine's
// Config — members, seeds, peer clusters and their priorities.
#include "mosix/mosixd/daemon.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace mosix::mosixd {
namespace {

constexpr const char* k_two_clusters = R"(
[node]
id = 1
address = "10.0.0.1:7000"
cluster = 1

[cluster]
nodes = [{ id = 1, address = "10.0.0.1:7000" }, { id = 2, address = "10.0.0.2:7000" }]
seeds = ["10.0.0.9:7000"]
key = "0123456789abcdef0123"

[gossip]
step_ms = 250
window = 8
age_limit_s = 20

[[peer_cluster]]
id = 2
priority = 0
nodes = [{ id = 5, address = "10.0.1.5:7000" }]

[[peer_cluster]]
id = 3
priority = 99
seeds = ["10.0.2.1:7000"]
)";

Config parsed() {
  auto c = parse_config(k_two_clusters, "t.toml");
  EXPECT_TRUE(c) << (c ? "" : c.error().message);
  return c ? *c : Config{};
}

TEST(GossipConfig, CarriesTheNodeTheTunablesAndTheKey) {
  auto g = gossip_config(parsed(), 1234);
  EXPECT_EQ(g.self, 1u);
  EXPECT_EQ(g.cluster, 1u);
  EXPECT_EQ(g.address.str(), "10.0.0.1:7000");
  EXPECT_EQ(g.window, 8);
  EXPECT_EQ(g.step_ms, 250);
  EXPECT_EQ(g.age_limit_ms, 20000);
  EXPECT_EQ(g.key, "0123456789abcdef0123");
  EXPECT_EQ(g.boot_epoch, 1234u);
  EXPECT_TRUE(gossip::validate(g)) << gossip::validate(g).error().message;
}

TEST(GossipConfig, MembersAndSeedsOfEveryClusterBecomePeersOfThatCluster) {
  auto g = gossip_config(parsed(), 1);
  auto has = [&](gossip::NodeId id, const char* addr, gossip::ClusterId cl) {
    return std::any_of(g.peers.begin(), g.peers.end(), [&](const gossip::Peer& p) {
      return p.id == id && p.address.str() == addr && p.cluster == cl;
    });
  };
  EXPECT_TRUE(has(2, "10.0.0.2:7000", 1));
  EXPECT_TRUE(has(0, "10.0.0.9:7000", 1)) << "a seed is a peer without an id";
  EXPECT_TRUE(has(5, "10.0.1.5:7000", 2));
  EXPECT_TRUE(has(0, "10.0.2.1:7000", 3));
}

TEST(GossipConfig, ALowerPriorityNumberGetsMoreOfTheForeignTraffic) {
  auto g = gossip_config(parsed(), 1);
  ASSERT_EQ(g.links.size(), 2u);
  EXPECT_EQ(g.links[0].cluster, 2u);
  EXPECT_EQ(g.links[1].cluster, 3u);
  EXPECT_GT(g.links[0].weight, g.links[1].weight);
  EXPECT_GT(g.links[1].weight, 0.0);
}

TEST(GossipConfig, AnUnsetAgeLimitIsTheEnginesAutomaticOne) {
  Config c = parsed();
  c.age_limit.reset();
  EXPECT_EQ(gossip_config(c, 1).age_limit_ms, 0);
}

}  // namespace
}  // namespace mosix::mosixd
