// The bulletin board's invariants under random operations, checked against
// brute force: the window is exactly the W-1 most recently produced other
// entries with data (newest first, ties by id) with faithful copies, and
// the target lists hold exactly the slots made targets, by cluster.
#include "mosix/gossip/table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

namespace mosix::gossip {
namespace {

Address addr(NodeId id) { return {0x0A000000u + id, 7000}; }

void expect_window_is_best(const Table& t, size_t cap) {
  std::vector<WindowSlot> want;
  for (uint32_t s = 1; s < t.size(); ++s)
    if (t.at(s).has_data) want.push_back({t.at(s).produced_ms, t.id(s), s, 0});
  std::sort(want.begin(), want.end(), [](const WindowSlot& a, const WindowSlot& b) {
    return a.produced_ms != b.produced_ms ? a.produced_ms > b.produced_ms : a.id < b.id;
  });
  if (want.size() > cap) want.resize(cap);
  auto got = t.window();
  ASSERT_EQ(got.size(), want.size());
  std::set<uint32_t> copies;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].slot, want[i].slot) << "position " << i;
    EXPECT_EQ(got[i].produced_ms, want[i].produced_ms);
    EXPECT_EQ(got[i].id, t.id(got[i].slot));
    const Entry& copy = t.copy(got[i]);
    const Entry& held = t.at(got[i].slot);
    EXPECT_EQ(copy.resources(), held.resources());
    EXPECT_EQ(copy.address(), held.address());
    EXPECT_EQ(copy.cluster, held.cluster);
    copies.insert(got[i].copy);
  }
  EXPECT_EQ(copies.size(), got.size()) << "two members share a copy";
}

TEST(GossipTable, WindowIsAlwaysTheMostRecentlyProducedOthers) {
  for (size_t cap : {size_t{0}, size_t{1}, size_t{3}, size_t{7}, size_t{31}}) {
    std::mt19937_64 rng(cap + 1);
    Table t(1, 1, addr(1), cap, 1000, std::pmr::get_default_resource());
    for (NodeId id = 2; id <= 60; ++id) t.add(id, 1, addr(id), false);
    int64_t now = 0;
    for (int op = 0; op < 5000; ++op) {
      uint32_t slot = 1 + static_cast<uint32_t>(rng() % (t.size() - 1));
      now += static_cast<int64_t>(rng() % 3);  // equal times happen: ties by id
      if (rng() % 8 == 0) {
        t.drop_data(slot);
      } else {
        const Entry& e = t.at(slot);
        int64_t produced = e.has_data ? std::max(e.produced_ms, now - static_cast<int64_t>(rng() % 50)) : now - 40;
        Resources r;
        r.load = static_cast<uint32_t>(rng());
        t.store(slot, t.id(slot), 1, addr(t.id(slot)), r, produced);
      }
      expect_window_is_best(t, cap);
      if (testing::Test::HasFailure()) return;
    }
  }
}

TEST(GossipTable, OwnEntryIsNeverInTheWindow) {
  Table t(1, 1, addr(1), 4, 100, std::pmr::get_default_resource());
  t.add(2, 1, addr(2), false);
  t.store(0, 1, 1, addr(1), {}, 1000);
  t.store(1, 2, 1, addr(2), {}, 10);
  ASSERT_EQ(t.window().size(), 1u);
  EXPECT_EQ(t.window()[0].slot, 1u);
}

TEST(GossipTable, TargetListsFollowSetTargetAndClusterChanges) {
  std::mt19937_64 rng(5);
  Table t(1, 1, addr(1), 3, 1000, std::pmr::get_default_resource());
  for (NodeId id = 2; id <= 40; ++id) t.add(id, 1 + id % 3, addr(id), false);
  std::map<uint32_t, ClusterId> cluster;  // slot -> cluster, for the targets we expect
  for (int op = 0; op < 4000; ++op) {
    uint32_t slot = 1 + static_cast<uint32_t>(rng() % (t.size() - 1));
    switch (rng() % 3) {
      case 0:
        t.set_target(slot, true);
        cluster[slot] = t.at(slot).cluster;
        break;
      case 1:
        t.set_target(slot, false);
        cluster.erase(slot);
        break;
      default: {  // the node moves to another cluster and port
        ClusterId c = 1 + static_cast<ClusterId>(rng() % 3);
        Address a{addr(t.id(slot)).ip, static_cast<uint16_t>(7000 + rng() % 5)};
        t.store(slot, t.id(slot), c, a, {}, op);
        if (cluster.count(slot)) cluster[slot] = c;
      }
    }
    for (ClusterId c = 1; c <= 3; ++c) {
      std::set<uint32_t> want, got;
      for (auto [s, sc] : cluster)
        if (sc == c) want.insert(s);
      for (const Target& x : t.targets(c)) {
        got.insert(x.slot);
        EXPECT_EQ(x.address, t.at(x.slot).address());
        EXPECT_TRUE(t.is_target(x.slot));
      }
      ASSERT_EQ(got, want) << "cluster " << c << " after op " << op;
    }
  }
}

TEST(GossipTable, RefusesNodesBeyondItsBound) {
  Table t(1, 1, addr(1), 3, 3, std::pmr::get_default_resource());
  EXPECT_NE(t.add(2, 1, addr(2), false), k_no_slot);
  EXPECT_NE(t.add(3, 1, addr(3), false), k_no_slot);
  EXPECT_EQ(t.add(4, 1, addr(4), false), k_no_slot);
  EXPECT_EQ(t.find(3), 2u);
  EXPECT_EQ(t.find(4), k_no_slot);
}

TEST(GossipTable, IndexFindsEveryIdThroughGrowth) {
  Table t(1, 1, addr(1), 3, 100000, std::pmr::get_default_resource());
  std::mt19937 rng(3);
  std::map<NodeId, uint32_t> ids;
  while (ids.size() < 20000) {
    NodeId id = rng() | 1;  // never 0
    if (ids.count(id) || id == 1) continue;
    ids[id] = t.add(id, 1, addr(id), false);
  }
  for (auto [id, slot] : ids) ASSERT_EQ(t.find(id), slot);
  EXPECT_EQ(t.find(2), k_no_slot);
}

}  // namespace
}  // namespace mosix::gossip
