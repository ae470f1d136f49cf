// mosmon's renderer and keys without a tty: bar lengths, the four views,
// the help panel, narrow terminals, scrolling, the stale/error line.
#include "mosix/tools/mosmon_render.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace mosix::tools {
namespace {

using mosixd::NodeReport;

NodeReport node(gossip::NodeId id, uint32_t load_x100, uint32_t speed = 10000, uint64_t total = 8ull << 30,
                uint64_t free = 4ull << 30, uint16_t guests = 0) {
  NodeReport n;
  n.id = id;
  n.address = "10.0.0." + std::to_string(id) + ":7000";
  n.cluster = id <= 4 ? 1 : 2;
  n.res.cpus = 4;
  n.res.speed = speed;
  n.res.load = load_x100;
  n.res.mem_total = total;
  n.res.mem_free = free;
  n.res.guests = guests;
  return n;
}

Snapshot snapshot(std::vector<NodeReport> nodes) {
  Snapshot s;
  s.nodes = std::move(nodes);
  s.socket = "/run/mosix/mosixd.sock";
  return s;
}

// The bar of a node line: what lies between '[' and ']'.
std::string bar_of(const Line& l) {
  std::string t = l.text();
  auto a = t.find('['), b = t.find(']');
  EXPECT_NE(a, std::string::npos) << t;
  EXPECT_NE(b, std::string::npos) << t;
  return a == std::string::npos || b == std::string::npos ? "" : t.substr(a + 1, b - a - 1);
}
size_t count(const std::string& s, char c) { return static_cast<size_t>(std::count(s.begin(), s.end(), c)); }

TEST(MosmonRender, LoadBarsAreProportionalAndAligned) {
  auto lines = render(snapshot({node(1, 50), node(2, 100), node(3, 200)}), UiState{}, 80, 10);
  ASSERT_EQ(lines.size(), 10u);
  std::string b1 = bar_of(lines[2]), b2 = bar_of(lines[3]), b3 = bar_of(lines[4]);
  ASSERT_EQ(b1.size(), b3.size());
  EXPECT_EQ(count(b3, '#'), b3.size()) << "the largest load (2.00 = the scale) fills its bar";
  EXPECT_NEAR(static_cast<double>(count(b2, '#')), b3.size() / 2.0, 1.0);
  EXPECT_NEAR(static_cast<double>(count(b1, '#')), b3.size() / 4.0, 1.0);
  EXPECT_EQ(lines[2].text().find('['), lines[4].text().find('['));
  EXPECT_NE(lines[4].text().find("2.00"), std::string::npos);
  EXPECT_NE(lines[1].text().find("full = 2.00"), std::string::npos);
}

TEST(MosmonRender, IdleClusterDoesNotDrawFullBars) {
  auto lines = render(snapshot({node(1, 10), node(2, 0)}), UiState{}, 80, 6);
  std::string b = bar_of(lines[2]);
  EXPECT_LT(count(b, '#'), b.size() / 5) << "scale is at least one busy standard CPU";
  EXPECT_EQ(count(bar_of(lines[3]), '#'), 0u);
}

TEST(MosmonRender, SpeedViewScalesToTheFastestNode) {
  UiState ui;
  ui.view = View::speed;
  auto lines = render(snapshot({node(1, 0, 5000), node(2, 0, 20000)}), ui, 70, 6);
  std::string slow = bar_of(lines[2]), fast = bar_of(lines[3]);
  EXPECT_EQ(count(fast, '#'), fast.size());
  EXPECT_NEAR(static_cast<double>(count(slow, '#')), fast.size() / 4.0, 1.0);
  EXPECT_NE(lines[3].text().find("20000"), std::string::npos);
  EXPECT_NE(lines[0].text().find("mosmon: speed"), std::string::npos);
}

TEST(MosmonRender, MemoryViewDrawsUsedThenFreeScaledToTheLargestNode) {
  UiState ui;
  ui.view = View::memory;
  auto lines = render(
      snapshot({node(1, 0, 10000, 8ull << 30, 2ull << 30), node(2, 0, 10000, 16ull << 30, 16ull << 30)}), ui, 90, 6);
  std::string small = bar_of(lines[2]), big = bar_of(lines[3]);
  ASSERT_EQ(small.size(), big.size());
  double w = static_cast<double>(big.size());
  EXPECT_NEAR(static_cast<double>(count(small, '#')), w * 6 / 16, 1.0);  // 6G used of the 16G scale
  EXPECT_NEAR(static_cast<double>(count(small, '-')), w * 2 / 16, 1.0);  // 2G free
  EXPECT_EQ(small.find('-'), count(small, '#')) << "used first, then free: " << small;
  EXPECT_EQ(count(big, '-'), big.size()) << "an empty node is all free";
  EXPECT_NE(lines[2].text().find("2.0G free/8.0G"), std::string::npos) << lines[2].text();
  // Styles let the terminal colour the two parts differently.
  bool used = false, free = false;
  for (const auto& s : lines[2].segments) {
    used |= s.style == Style::bar && !s.text.empty();
    free |= s.style == Style::bar_free && !s.text.empty();
  }
  EXPECT_TRUE(used && free);
}

TEST(MosmonRender, GuestsViewMarksNodesNotAccepting) {
  UiState ui;
  ui.view = View::guests;
  NodeReport closed = node(2, 0, 10000, 8ull << 30, 4ull << 30, 4);
  closed.res.accepting = false;
  auto lines = render(snapshot({node(1, 0, 10000, 8ull << 30, 4ull << 30, 2), closed}), ui, 60, 6);
  EXPECT_EQ(count(bar_of(lines[3]), '#'), bar_of(lines[3]).size());
  EXPECT_NE(lines[3].text().find("4 closed"), std::string::npos);
  EXPECT_EQ(lines[2].text().find("closed"), std::string::npos);
}

TEST(MosmonRender, ShowsIdClusterAndMarksThisNode) {
  NodeReport self = node(7, 100);
  self.self = true;
  auto lines = render(snapshot({node(3, 100), self}), UiState{}, 60, 6);
  EXPECT_TRUE(lines[2].text().starts_with("    3    1 [")) << lines[2].text();
  EXPECT_TRUE(lines[3].text().starts_with("    7*   2 [")) << lines[3].text();
  EXPECT_TRUE(lines[1].text().starts_with(" NODE  CLU")) << lines[1].text();
}

TEST(MosmonRender, EveryScreenHasExactlyHeightLinesWithinWidth) {
  std::vector<NodeReport> nodes;
  for (gossip::NodeId i = 1; i <= 30; ++i) nodes.push_back(node(i * 1000, i * 37, 9000 + i, 64ull << 30, i << 28));
  Snapshot snap = snapshot(nodes);
  snap.error = "cannot connect to /run/mosix/mosixd.sock: No such file or directory — is mosixd running?";
  for (View v : {View::load, View::speed, View::memory, View::guests})
    for (bool help : {false, true})
      for (int w = 0; w <= 130; w += 3)
        for (int h = 0; h <= 40; h += 3) {
          auto lines = render(snap, UiState{v, help, 4}, w, h);
          ASSERT_EQ(lines.size(), static_cast<size_t>(h));
          for (const auto& l : lines) ASSERT_LE(l.text().size(), static_cast<size_t>(w)) << w << "x" << h;
        }
}

TEST(MosmonRender, NarrowTerminalDropsClusterThenValueThenGivesUp) {
  auto snap = snapshot({node(1, 100), node(2, 200)});
  auto wide = render(snap, UiState{}, 40, 5)[2].text();
  EXPECT_TRUE(wide.starts_with("    1    1 [")) << wide;
  auto no_cluster = render(snap, UiState{}, 22, 5)[2].text();
  EXPECT_TRUE(no_cluster.starts_with("    1  [")) << no_cluster;
  EXPECT_NE(no_cluster.find("1.00"), std::string::npos) << no_cluster;
  auto bar_only = render(snap, UiState{}, 17, 5)[2].text();
  EXPECT_EQ(bar_only.find("1.00"), std::string::npos) << bar_only;
  EXPECT_NE(bar_only.find('#'), std::string::npos) << bar_only;
  EXPECT_EQ(render(snap, UiState{}, 12, 5)[0].text(), "too narrow");
}

TEST(MosmonRender, HelpPanelReplacesTheNodeRows) {
  UiState ui;
  auto snap = snapshot({node(1, 100)});
  ASSERT_EQ(apply_key(ui, 'h', 1, 30), KeyResult::changed);
  ASSERT_TRUE(ui.help);
  auto lines = render(snap, ui, 100, 30);
  std::string all;
  for (const auto& l : lines) all += l.text() + "\n";
  EXPECT_NE(all.find("Keys"), std::string::npos);
  EXPECT_NE(all.find("q   quit"), std::string::npos);
  EXPECT_NE(all.find("10000 = the MOSIX standard CPU"), std::string::npos);
  EXPECT_EQ(all.find('['), std::string::npos) << "no bars under the help";
  ASSERT_EQ(apply_key(ui, '?', 1, 30), KeyResult::changed);
  EXPECT_FALSE(ui.help);
}

TEST(MosmonRender, ScrollsThroughMoreNodesThanRows) {
  std::vector<NodeReport> nodes;
  for (gossip::NodeId i = 1; i <= 50; ++i) nodes.push_back(node(i, 100));
  auto snap = snapshot(nodes);
  const int h = 10;  // 7 node rows
  UiState ui;
  EXPECT_EQ(node_rows(h), 7);
  EXPECT_EQ(max_scroll(50, h), 43);
  ASSERT_EQ(apply_key(ui, k_key_page_down, 50, h), KeyResult::changed);
  EXPECT_EQ(ui.scroll, 6);  // a page keeps one row of context
  apply_key(ui, 'j', 50, h);
  auto lines = render(snap, ui, 60, h);
  EXPECT_TRUE(lines[2].text().starts_with("    8 ")) << lines[2].text();
  EXPECT_EQ(lines[9].text(), " nodes 8-14 of 50   up/down PgUp/PgDn: scroll");
  apply_key(ui, k_key_end, 50, h);
  EXPECT_EQ(ui.scroll, 43);
  apply_key(ui, k_key_down, 50, h);
  EXPECT_EQ(ui.scroll, 43) << "clamped at the end";
  EXPECT_TRUE(render(snap, ui, 60, h)[8].text().starts_with("   50 "));
  apply_key(ui, k_key_home, 50, h);
  apply_key(ui, k_key_up, 50, h);
  EXPECT_EQ(ui.scroll, 0) << "clamped at the top";
  UiState far{View::load, false, 1000};
  EXPECT_TRUE(render(snap, far, 60, h)[2].text().starts_with("   44 ")) << "an out-of-range scroll shows the end";
}

TEST(MosmonRender, UnreachableDaemonShowsErrorAndStaleData) {
  Snapshot snap = snapshot({node(1, 100)});
  snap.error = "cannot connect to /x.sock: No such file or directory — is mosixd running?";
  auto lines = render(snap, UiState{}, 120, 6);
  EXPECT_NE(lines[0].text().find("(stale)"), std::string::npos);
  EXPECT_EQ(lines[5].text(), " cannot connect to /x.sock: No such file or directory - is mosixd running? (retrying)");
  EXPECT_EQ(lines[5].segments.at(0).style, Style::error);
  Snapshot never = snap;
  never.nodes.clear();
  EXPECT_EQ(render(never, UiState{}, 120, 6)[2].text(), " (no data)");
}

TEST(MosmonKeys, SwitchViewsCycleAndQuit) {
  UiState ui;
  EXPECT_EQ(apply_key(ui, 'm', 0, 20), KeyResult::changed);
  EXPECT_EQ(ui.view, View::memory);
  apply_key(ui, ' ', 0, 20);
  EXPECT_EQ(ui.view, View::guests);
  apply_key(ui, '\t', 0, 20);
  EXPECT_EQ(ui.view, View::load);
  apply_key(ui, 's', 0, 20);
  EXPECT_EQ(ui.view, View::speed);
  apply_key(ui, 'g', 0, 20);
  apply_key(ui, 'l', 0, 20);
  EXPECT_EQ(ui.view, View::load);
  EXPECT_EQ(apply_key(ui, 'x', 0, 20), KeyResult::ignored);
  EXPECT_EQ(apply_key(ui, 'q', 0, 20), KeyResult::quit);
}

TEST(MosmonFormat, BytesInBinaryUnits) {
  EXPECT_EQ(format_bytes(0), "0B");
  EXPECT_EQ(format_bytes(1536), "1.5K");
  EXPECT_EQ(format_bytes(8ull << 30), "8.0G");
  EXPECT_EQ(format_bytes(16ull << 30), "16G");
  EXPECT_EQ(format_bytes(1023), "1023B");
}

}  // namespace
}  // namespace mosix::tools
