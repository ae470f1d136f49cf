// The Node's rules on a manual clock and a capturing network: what a step
// sends (own entry + the W-1 most recently produced), the merge rule (only
// newer), ageing and phase-out past the age limit, membership from config,
// seeds and gossip, cluster policy, leave/join, and every drop reason of
// receive(), including replays and random garbage.
#include "mosix/gossip/node.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>

#include "mosix/gossip/formulas.h"
#include "tests/unit/mosix/gossip/helpers.h"

namespace mosix::gossip {
namespace {

using test::address_of;
using test::CaptureNetwork;
using test::config;
using test::entry;
using test::ManualClock;
using test::packet;
using test::peer;

struct Fixture {
  explicit Fixture(Config c) : node(std::move(*Node::create(std::move(c), clock, net))) {}
  ManualClock clock;
  CaptureNetwork net;
  std::unique_ptr<Node> node;

  void receive(const std::vector<std::byte>& b) { node->receive(b, address_of(99)); }
  /// Steps once and decodes what was sent (the test key).
  std::vector<WireEntry> step() {
    size_t before = net.sent.size();
    node->step();
    EXPECT_EQ(net.sent.size(), before + 1) << "nothing sent";
    if (net.sent.size() == before) return {};
    Mac mac = *Mac::create(MacKind::hmac_sha256, test::k_key);
    std::vector<WireEntry> out;
    auto h = decode_packet(net.sent.back().bytes, mac, k_max_udp_payload, out);
    EXPECT_TRUE(h);
    return out;
  }
  const EntryView* find(NodeId id) const {
    snap = node->snapshot();
    for (const EntryView& v : snap)
      if (v.id == id) return &v;
    return nullptr;
  }
  mutable std::vector<EntryView> snap;
};

TEST(GossipNode, SendsItsOwnEntryPlusTheWMinus1MostRecentlyProduced) {
  Fixture f(config(1, 1, {peer(2)}));  // W = 4
  f.receive(packet(2, 1, 1, 1, {entry(3, 1, 500), entry(4, 1, 3000), entry(5, 1, 1000), entry(6, 1, 2000)}));
  f.clock.now += 100;
  std::vector<WireEntry> sent = f.step();
  ASSERT_EQ(sent.size(), 4u);
  EXPECT_EQ(sent[0].id, 1u);  // own, fresh
  EXPECT_EQ(sent[0].age_ms, 0u);
  EXPECT_EQ(sent[1].id, 2u);
  EXPECT_EQ(sent[1].age_ms, 100u);  // ages carried on, grown by our clock
  EXPECT_EQ(sent[2].id, 3u);
  EXPECT_EQ(sent[2].age_ms, 600u);
  EXPECT_EQ(sent[3].id, 5u);
  EXPECT_EQ(sent[3].age_ms, 1100u);
}

TEST(GossipNode, ANewerVersionMovesIntoTheWindow) {
  Fixture f(config(1, 1, {peer(2)}));
  f.receive(packet(2, 1, 1, 1, {entry(3, 1, 500), entry(4, 1, 3000), entry(5, 1, 1000)}));
  f.receive(packet(2, 1, 1, 2, {entry(4, 1, 10)}));
  std::vector<WireEntry> sent = f.step();
  ASSERT_EQ(sent.size(), 4u);
  EXPECT_EQ(sent[1].id, 2u);
  EXPECT_EQ(sent[2].id, 4u);
  EXPECT_EQ(sent[3].id, 3u);
}

TEST(GossipNode, KeepsAnEntryOnlyIfNewer) {
  Fixture f(config(1, 1, {peer(2)}));
  f.receive(packet(2, 1, 1, 1, {entry(3, 1, 1000, 10)}));
  ASSERT_TRUE(f.find(3));
  EXPECT_EQ(f.find(3)->resources.load, 10u);
  f.receive(packet(2, 1, 1, 2, {entry(3, 1, 2000, 20)}));  // older: ignored
  EXPECT_EQ(f.find(3)->resources.load, 10u);
  f.receive(packet(2, 1, 1, 3, {entry(3, 1, 1000, 30)}));  // produced at the same moment: not newer
  EXPECT_EQ(f.find(3)->resources.load, 10u);
  f.receive(packet(2, 1, 1, 4, {entry(3, 1, 999, 40)}));  // newer
  EXPECT_EQ(f.find(3)->resources.load, 40u);
  // 2 for entry 3, and 3 for the sender's own entry, re-sent at the same moment.
  EXPECT_EQ(f.node->stats().entries_not_newer, 2u + 3u);
}

TEST(GossipNode, NeverTakesAnotherNodesWordAboutItself) {
  Fixture f(config(1, 1, {peer(2)}));
  Resources mine;
  mine.load = 5;
  f.node->set_local(mine);
  f.receive(packet(2, 1, 1, 1, {entry(1, 1, 0, 999)}));
  EXPECT_EQ(f.node->snapshot()[0].resources.load, 5u);
  EXPECT_EQ(f.node->stats().entries_refused, 1u);
}

TEST(GossipNode, AgesGrowWithTheLocalClock) {
  Fixture f(config(1, 1, {peer(2)}));
  f.receive(packet(2, 1, 1, 1, {entry(3, 1, 700)}));
  EXPECT_EQ(f.find(3)->age_ms, 700);
  f.clock.now += 300;
  EXPECT_EQ(f.find(3)->age_ms, 1000);
  EXPECT_EQ(f.find(2)->age_ms, 300);
}

TEST(GossipNode, AdvertisesWhatSetLocalGave) {
  Fixture f(config(1, 1, {peer(2)}));
  Resources r{8, 12000, 150, 1 << 30, 1 << 29, 0, 0, 2, false};
  f.node->set_local(r);
  std::vector<WireEntry> sent = f.step();
  ASSERT_FALSE(sent.empty());
  EXPECT_EQ(sent[0].resources, r);
  EXPECT_EQ(f.node->snapshot()[0].resources, r);
}

TEST(GossipNode, DropsEntriesPastTheAgeLimitAndStopsSendingToLearntOnes) {
  Config c = config(1, 1, {peer(2)});
  c.age_limit_ms = 10'000;
  Fixture f(std::move(c));
  f.receive(packet(2, 1, 1, 1, {entry(3, 1, 0)}));  // 3 is learnt, not configured
  ASSERT_TRUE(f.find(3));
  f.clock.now += 10'001;
  EXPECT_FALSE(f.find(3)) << "hidden as soon as it is past the limit";
  EXPECT_FALSE(f.find(2));
  for (int i = 0; i < 20; ++i) {  // the sweep drops it within a quarter limit
    f.node->step();
    f.clock.now += 1000;
  }
  EXPECT_EQ(f.node->stats().entries_expired, 2u);
  EXPECT_EQ(f.node->entry_count(), 1u);
  f.net.sent.clear();
  for (int i = 0; i < 50; ++i) f.node->step();
  for (const test::Sent& s : f.net.sent) EXPECT_EQ(s.to, address_of(2)) << "configured 2 stays a target, 3 does not";
  EXPECT_EQ(f.net.sent.size(), 50u);
}

TEST(GossipNode, RefusesEntriesAlreadyPastTheLimit) {
  Config c = config(1, 1, {peer(2)});
  c.age_limit_ms = 10'000;
  Fixture f(std::move(c));
  f.receive(packet(2, 1, 1, 1, {entry(3, 1, 10'001)}));
  EXPECT_FALSE(f.find(3));
  EXPECT_EQ(f.node->stats().entries_refused, 1u);
}

TEST(GossipNode, AutomaticAgeLimitIsThreeExpectedMaximumAges) {
  std::vector<Peer> peers;
  for (NodeId id = 2; id <= 256; ++id) peers.push_back(peer(id));
  Config c = config(1, 1, peers);
  c.window = 16;
  Fixture f(std::move(c));
  double want = std::ceil(3 * age_formulas(256, 16).maximum) * 1000;
  EXPECT_EQ(f.node->age_limit_ms(), static_cast<int64_t>(want));  // ~293 s
  Fixture tiny(config(1, 1, {peer(2)}));
  EXPECT_EQ(tiny.node->age_limit_ms(), k_min_age_limit_steps * 1000);
}

TEST(GossipNode, LinkedClustersEntriesGetALimitScaledByTheForeignShare) {
  Config c = config(1, 1, {peer(2), peer(10, 2)});
  c.links = {{2, 1.0}};
  c.foreign_share = 0.1;
  Fixture f(std::move(c));
  const int64_t base = k_min_age_limit_steps * 1000;  // 3 nodes: the floor
  EXPECT_EQ(f.node->age_limit_ms(), static_cast<int64_t>(base / 0.9));
  EXPECT_EQ(f.node->foreign_age_limit_ms(), static_cast<int64_t>(base / 0.1));
  f.receive(packet(2, 1, 1, 1, {entry(3, 1, 40'000), entry(11, 2, 40'000)}));
  EXPECT_FALSE(f.find(3)) << "40 s is past our cluster's limit";
  EXPECT_TRUE(f.find(11)) << "but not past the linked cluster's";
}

TEST(GossipNode, LearnsNodesFromGossipAndSendsToThem) {
  Fixture f(config(1, 1, {peer(2)}));
  f.receive(packet(2, 1, 1, 1, {entry(3, 1, 0), entry(4, 1, 0)}));
  std::set<uint32_t> targets;
  for (int i = 0; i < 300; ++i) {
    f.node->step();
    targets.insert(f.net.sent.back().to.ip);
  }
  EXPECT_EQ(targets, (std::set<uint32_t>{address_of(2).ip, address_of(3).ip, address_of(4).ip}));
  EXPECT_EQ(f.node->stats().nodes_learnt, 3u);
}

TEST(GossipNode, ContactsSeedsUntilItKnowsSomeone) {
  Fixture f(config(1, 1, {{0, address_of(7), 1}}));
  f.node->step();
  ASSERT_EQ(f.net.sent.size(), 1u);
  EXPECT_EQ(f.net.sent[0].to, address_of(7));
  f.receive(packet(7, 1, 1, 1));  // the seed answers: now it is node 7
  ASSERT_TRUE(f.find(7));
  for (int i = 0; i < 20; ++i) f.node->step();
  for (const test::Sent& s : f.net.sent) EXPECT_EQ(s.to, address_of(7));
}

TEST(GossipNode, SendsMostlyWithinItsOwnCluster) {
  std::vector<Peer> peers;
  for (NodeId id = 2; id <= 9; ++id) peers.push_back(peer(id, 1));
  for (NodeId id = 10; id <= 17; ++id) peers.push_back(peer(id, 2));
  Config c = config(1, 1, peers);
  c.links = {{2, 1.0}};
  c.foreign_share = 0.1;
  Fixture f(std::move(c));
  for (int i = 0; i < 4000; ++i) f.node->step();
  size_t across = 0;
  for (const test::Sent& s : f.net.sent) across += s.to.ip >= address_of(10).ip ? 1 : 0;
  EXPECT_NEAR(static_cast<double>(across) / 4000, 0.1, 0.02);
  EXPECT_EQ(f.node->stats().packets_sent_foreign, across);
}

TEST(GossipNode, SplitsForeignStepsByWeight) {
  Config c = config(1, 1, {peer(2, 1), peer(10, 2), peer(20, 3)});
  c.links = {{2, 3.0}, {3, 1.0}};
  c.foreign_share = 1.0;
  Fixture f(std::move(c));
  for (int i = 0; i < 4000; ++i) f.node->step();
  size_t to2 = 0;
  for (const test::Sent& s : f.net.sent) to2 += s.to == address_of(10) ? 1 : 0;
  EXPECT_NEAR(static_cast<double>(to2) / 4000, 0.75, 0.03);
}

TEST(GossipNode, SendsAcrossWhenItsOwnClusterIsEmpty) {
  Config c = config(1, 1, {peer(10, 2)});
  c.links = {{2, 1.0}};
  Fixture f(std::move(c));
  for (int i = 0; i < 10; ++i) f.node->step();
  EXPECT_EQ(f.net.sent.size(), 10u);
  EXPECT_EQ(f.node->stats().packets_sent_foreign, 10u);
}

TEST(GossipNode, SendsNothingWhenItKnowsNobody) {
  Fixture f(config(1, 1));
  f.node->step();
  EXPECT_TRUE(f.net.sent.empty());
}

TEST(GossipNode, BlockedClusterIsDroppedIgnoredAndNotSentTo) {
  Config c = config(1, 1, {peer(2, 1), peer(10, 2)});
  c.links = {{2, 1.0}};
  c.foreign_share = 0.5;
  Fixture f(std::move(c));
  f.receive(packet(10, 2, 1, 1, {entry(11, 2, 0)}));
  ASSERT_TRUE(f.find(11));
  ASSERT_TRUE(f.node->block_cluster(2, Blocked::yes));
  EXPECT_FALSE(f.find(10));
  EXPECT_FALSE(f.find(11));
  f.receive(packet(10, 2, 1, 2));
  EXPECT_EQ(f.node->stats().drops(DropReason::blocked_cluster), 1u);
  f.receive(packet(2, 1, 1, 1, {entry(11, 2, 0)}));  // relayed by our own cluster: still refused
  EXPECT_FALSE(f.find(11));
  for (int i = 0; i < 200; ++i) f.node->step();
  for (const test::Sent& s : f.net.sent) EXPECT_EQ(s.to, address_of(2));
  ASSERT_TRUE(f.node->block_cluster(2, Blocked::no));
  f.net.sent.clear();
  for (int i = 0; i < 200; ++i) f.node->step();
  EXPECT_GT(f.node->stats().packets_sent_foreign, 50u) << "configured peer 10 is a target again";
}

TEST(GossipNode, CannotBlockItsOwnCluster) {
  Fixture f(config(1, 1, {peer(2)}));
  auto r = f.node->block_cluster(1, Blocked::yes);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EINVAL);
}

TEST(GossipNode, RefusesClustersItIsNotLinkedTo) {
  Config c = config(1, 1, {peer(2)});
  c.links = {{2, 1.0}};
  Fixture f(std::move(c));
  f.receive(packet(30, 3, 1, 1));
  EXPECT_EQ(f.node->stats().drops(DropReason::blocked_cluster), 1u);
  f.receive(packet(2, 1, 1, 1, {entry(20, 2, 0), entry(30, 3, 0)}));
  EXPECT_TRUE(f.find(20));
  EXPECT_FALSE(f.find(30));
}

TEST(GossipNode, InactiveNodeNeitherSendsNorMerges) {
  Fixture f(config(1, 1, {peer(2)}));
  f.node->set_active(Active::no);
  f.node->step();
  EXPECT_TRUE(f.net.sent.empty());
  f.receive(packet(2, 1, 1, 1, {entry(3, 1, 0)}));
  EXPECT_FALSE(f.find(3));
  EXPECT_EQ(f.node->stats().drops(DropReason::inactive), 1u);
  f.node->set_active(Active::yes);
  f.receive(packet(2, 1, 1, 2, {entry(3, 1, 0)}));
  EXPECT_TRUE(f.find(3));
  f.node->step();
  EXPECT_EQ(f.net.sent.size(), 1u);
}

TEST(GossipNode, DropsReplaysAndAcceptsARestart) {
  Fixture f(config(1, 1, {peer(2)}));
  auto p5 = packet(2, 1, 7, 5, {entry(3, 1, 0, 1)});
  f.receive(p5);
  f.receive(p5);                                        // the same packet again
  f.receive(packet(2, 1, 7, 4, {entry(3, 1, 0, 2)}));   // an older one of that boot
  f.receive(packet(2, 1, 6, 99, {entry(3, 1, 0, 3)}));  // one of an earlier boot
  EXPECT_EQ(f.node->stats().drops(DropReason::replayed), 3u);
  EXPECT_EQ(f.find(3)->resources.load, 1u);
  f.receive(packet(2, 1, 7, 6));  // the next of this boot
  f.receive(packet(2, 1, 8, 1));  // the node restarted
  EXPECT_EQ(f.node->stats().packets_accepted, 3u);
}

TEST(GossipNode, DropsPacketsClaimingOurId) {
  Fixture f(config(1, 1, {peer(2)}));
  f.receive(packet(1, 1, 1, 1));
  EXPECT_EQ(f.node->stats().drops(DropReason::own_id), 1u);
}

TEST(GossipNode, BoundsTheNodesItRemembers) {
  Config c = config(1, 1, {peer(2)});
  c.max_nodes = 3;
  Fixture f(std::move(c));
  f.receive(packet(2, 1, 1, 1, {entry(3, 1, 0), entry(4, 1, 0)}));
  EXPECT_TRUE(f.find(3));
  EXPECT_FALSE(f.find(4));
  f.receive(packet(5, 1, 1, 1));
  EXPECT_EQ(f.node->stats().drops(DropReason::table_full), 1u);
}

TEST(GossipNode, CountsEveryDropByReason) {
  Config c = config(1, 1, {peer(2)});
  c.max_packet_bytes = 1024;
  Fixture f(std::move(c));
  auto good = packet(2, 1, 1, 1);
  auto bad_mac = good;
  bad_mac[10] ^= std::byte{1};
  auto magic = good;
  magic[0] = std::byte{0};
  auto version = good;
  version[4] = std::byte{9};
  auto trailing = good;
  trailing.push_back(std::byte{0});
  f.receive(std::vector<std::byte>(1025, std::byte{0}));
  f.receive(std::vector<std::byte>(good.begin(), good.end() - 1));
  f.receive(magic);
  f.receive(version);
  f.receive(trailing);
  f.receive(bad_mac);
  f.receive(packet(2, 1, 1, 1, {}, "a different key, same length"));
  const Stats& s = f.node->stats();
  EXPECT_EQ(s.drops(DropReason::oversized), 1u);
  EXPECT_EQ(s.drops(DropReason::truncated), 1u);
  EXPECT_EQ(s.drops(DropReason::bad_magic), 1u);
  EXPECT_EQ(s.drops(DropReason::wrong_version), 1u);
  EXPECT_EQ(s.drops(DropReason::malformed), 1u);
  EXPECT_EQ(s.drops(DropReason::bad_mac), 2u);
  EXPECT_EQ(s.drops_total(), 7u);
  EXPECT_EQ(s.packets_received, 7u);
  EXPECT_EQ(s.packets_accepted, 0u);
  f.receive(good);
  EXPECT_EQ(f.node->stats().packets_accepted, 1u) << "a bad packet does not poison the replay guard";
}

TEST(GossipNode, SurvivesRandomGarbage) {
  Fixture f(config(1, 1, {peer(2)}));
  std::mt19937_64 rng(3);
  auto good = packet(2, 1, 1, 1, {entry(3, 1, 5)});
  for (int i = 0; i < 30000; ++i) {
    std::vector<std::byte> b;
    if (i % 3 == 0) {  // a valid packet with one byte changed
      b = good;
      b[rng() % b.size()] ^= std::byte(1 + rng() % 255);
    } else {
      b.resize(rng() % 9000);
      for (auto& x : b) x = std::byte(rng());
    }
    f.receive(b);
  }
  const Stats& s = f.node->stats();
  EXPECT_EQ(s.packets_accepted, 0u);
  EXPECT_EQ(s.drops_total(), 30000u);
  EXPECT_EQ(f.node->entry_count(), 1u);
}

TEST(GossipNode, SnapshotListsItselfFirstThenById) {
  Fixture f(config(5, 1, {peer(9), peer(2)}));
  f.receive(packet(9, 1, 1, 1, {entry(7, 1, 0), entry(3, 1, 0)}));
  f.receive(packet(2, 1, 1, 1));
  std::vector<EntryView> s = f.node->snapshot();
  std::vector<NodeId> ids;
  for (const EntryView& v : s) ids.push_back(v.id);
  EXPECT_EQ(ids, (std::vector<NodeId>{5, 2, 3, 7, 9}));
  EXPECT_EQ(s[0].address, address_of(5));
}

TEST(GossipNode, CreateNamesWhatIsWrongWithTheConfig) {
  ManualClock clock;
  CaptureNetwork net;
  auto err = [&](auto edit) {
    Config c = config(1, 1, {peer(2)});
    edit(c);
    auto n = Node::create(std::move(c), clock, net);
    return n ? std::string("ok") : n.error().message;
  };
  EXPECT_EQ(err([](Config&) {}), "ok");
  EXPECT_NE(err([](Config& c) { c.self = 0; }).find("self id"), std::string::npos);
  EXPECT_NE(err([](Config& c) { c.window = 0; }).find("window 0"), std::string::npos);
  EXPECT_NE(err([](Config& c) { c.key = "short"; }).find("key"), std::string::npos);
  EXPECT_NE(err([](Config& c) { c.boot_epoch = 0; }).find("boot epoch"), std::string::npos);
  EXPECT_NE(err([](Config& c) { c.step_ms = 5; }).find("step"), std::string::npos);
  EXPECT_NE(err([](Config& c) { c.window = 200; }).find("max packet"), std::string::npos);
  EXPECT_NE(err([](Config& c) { c.peers.push_back(peer(3, 4)); }).find("neither ours nor linked"), std::string::npos);
  EXPECT_NE(err([](Config& c) { c.peers.push_back(peer(2)); }).find("repeated"), std::string::npos);
  EXPECT_NE(err([](Config& c) { c.links = {{1, 1.0}}; }).find("linked cluster"), std::string::npos);
  EXPECT_NE(err([](Config& c) { c.foreign_share = 1.5; }).find("foreign share"), std::string::npos);
}

}  // namespace
}  // namespace mosix::gossip
