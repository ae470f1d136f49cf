// mosixd.toml parsing: the good forms, and a catalogue of bad files, each
// with the exact place (file:line: key) and cause its error must name.
#include "mosix/mosixd/config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "mosix/mosixd/cli.h"
#include "tests/unit/mosix/mosixd/temp_dir.h"

namespace mosix::mosixd {
namespace {

// Line 1..11; the catalogue below appends to or edits this.
const std::string k_good = R"([node]
id = 3
address = "10.0.0.3:7000"
cluster = 1

[cluster]
nodes = [
  { id = 1, address = "10.0.0.1:7000" },
  { id = 2, address = "10.0.0.2:7000" },
  { id = 3, address = "10.0.0.3:7000" },
]
key = "0123456789abcdef0123"
)";

std::string replace(std::string s, const std::string& from, const std::string& to) {
  auto at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

TEST(Config, ParsesMinimalFileWithDefaults) {
  auto c = parse_config(k_good, "t.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->id, 3u);
  EXPECT_EQ(c->address.str(), "10.0.0.3:7000");
  EXPECT_EQ(c->cluster, 1u);
  ASSERT_EQ(c->nodes.size(), 3u);
  EXPECT_EQ(c->nodes[1].id, 2u);
  EXPECT_EQ(c->nodes[1].address.port, 7000);
  EXPECT_EQ(c->key, "0123456789abcdef0123");
  EXPECT_EQ(c->step, std::chrono::milliseconds(1000));
  EXPECT_EQ(c->window, 16u);
  EXPECT_FALSE(c->age_limit);
  EXPECT_FALSE(c->speed);
  EXPECT_EQ(c->socket, "/run/mosix/mosixd.sock");
  EXPECT_TRUE(c->peer_clusters.empty());
}

TEST(Config, ParsesEveryField) {
  std::string text = replace(k_good, "cluster = 1\n", "cluster = 1\nspeed = 12000\nsocket = \"/tmp/m.sock\"\n");
  text += R"(seeds = ["10.0.0.9:7000", "10.0.0.10:7001"]

[gossip]
step_ms = 250
window = 8
age_limit_s = 30.5

[[peer_cluster]]
id = 2
priority = 10
seeds = ["10.1.0.1:7000"]

[[peer_cluster]]
id = 7
nodes = [{ id = 70, address = "10.7.0.1:7000" }]
)";
  auto c = parse_config(text, "t.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->speed, 12000u);
  EXPECT_EQ(c->socket, "/tmp/m.sock");
  ASSERT_EQ(c->seeds.size(), 2u);
  EXPECT_EQ(c->seeds[1].str(), "10.0.0.10:7001");
  EXPECT_EQ(c->seeds[1].port, 7001);
  EXPECT_EQ(c->step, std::chrono::milliseconds(250));
  EXPECT_EQ(c->window, 8u);
  EXPECT_EQ(c->age_limit, std::chrono::milliseconds(30500));
  ASSERT_EQ(c->peer_clusters.size(), 2u);
  EXPECT_EQ(c->peer_clusters[0].priority, 10);
  EXPECT_EQ(c->peer_clusters[1].priority, k_default_priority);
  EXPECT_EQ(c->peer_clusters[1].nodes.at(0).id, 70u);
  EXPECT_NE(summarize(*c).find("peer cluster 7 (priority 50): 1 nodes"), std::string::npos);
  EXPECT_EQ(summarize(*c).find("0123456789abcdef"), std::string::npos) << "the key must not be shown";
}

TEST(Config, AcceptsOwnClusterListingOnlyThisNode) {
  auto c = parse_config(replace(k_good,
                                "  { id = 1, address = \"10.0.0.1:7000\" },\n  { id = 2, address = "
                                "\"10.0.0.2:7000\" },\n",
                                ""),
                        "t.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->nodes.size(), 1u);
}

struct BadCase {
  const char* name;
  std::string text;
  std::string error;  // the whole message
};

std::vector<BadCase> bad_cases() {
  return {
      {"TomlSyntax", replace(k_good, "id = 3", "id = = 3"), "t.toml:2:6: "},
      {"MissingNodeTable", replace(k_good, "[node]\n", "[nod]\n"),
       "t.toml:1: nod: unknown key (known here: node, cluster, gossip, peer_cluster)"},
      {"MissingNodeId", replace(k_good, "id = 3\n", ""), "t.toml:1: node.id: missing (this node's id, >= 1)"},
      {"NodeIdWrongType", replace(k_good, "id = 3", "id = \"3\""),
       "t.toml:2: node.id: expected an integer, got a string"},
      {"NodeIdZero", replace(k_good, "id = 3", "id = 0"), "t.toml:2: node.id: must be 1..4294967295 (got 0)"},
      {"NodeIdTooLarge", replace(k_good, "id = 3", "id = 4294967296"),
       "t.toml:2: node.id: must be 1..4294967295 (got 4294967296)"},
      {"UnknownNodeKey", replace(k_good, "cluster = 1\n", "cluster = 1\nspeeed = 3\n"),
       "t.toml:5: node.speeed: unknown key (known here: id, address, cluster, speed, socket)"},
      {"AddressNotNumeric", replace(k_good, "address = \"10.0.0.3:7000\"", "address = \"node3:7000\""),
       "t.toml:3: node.address: gossip address \"node3:7000\": "},  // the gossip parser's wording follows
      {"AddressWithoutPort", replace(k_good, "address = \"10.0.0.3:7000\"", "address = \"10.0.0.3\""),
       "t.toml:3: node.address: gossip address \"10.0.0.3\": "},
      {"AddressPortZero", replace(k_good, "address = \"10.0.0.3:7000\"", "address = \"10.0.0.3:0\""),
       "t.toml:3: node.address: gossip address \"10.0.0.3:0\": "},
      {"AddressIpv6", replace(k_good, "address = \"10.0.0.3:7000\"", "address = \"[fd00::3]:7000\""),
       "t.toml:3: node.address: gossip address \"[fd00::3]:7000\": "},  // the wire carries IPv4
      {"AddressUnspecified", replace(k_good, "address = \"10.0.0.3:7000\"", "address = \"0.0.0.0:7000\""),
       "t.toml:3: node.address: 0.0.0.0 is not an address a peer can send to"},
      {"AddressNotString", replace(k_good, "address = \"10.0.0.3:7000\"", "address = 7000"),
       "t.toml:3: node.address: expected an \"ip:port\" string, got an integer"},
      {"SocketRelative", replace(k_good, "cluster = 1\n", "cluster = 1\nsocket = \"m.sock\"\n"),
       "t.toml:5: node.socket: must be an absolute path"},
      {"MissingClusterTable", k_good.substr(0, k_good.find("[cluster]")),
       "t.toml: missing table [cluster] (the cluster's nodes or seeds and its key)"},
      {"DuplicateNodeId", replace(k_good, "{ id = 2, address", "{ id = 1, address"),
       "t.toml:9: cluster.nodes[1].id: duplicate node id 1 (also at line 8)"},
      {"DuplicateAddress", replace(k_good, "10.0.0.2:7000", "10.0.0.1:7000"),
       "t.toml:9: cluster.nodes[1].address: duplicate address 10.0.0.1:7000 (node 1 at line 8)"},
      {"SelfWithOtherAddress",
       replace(k_good, "{ id = 3, address = \"10.0.0.3:7000\" }", "{ id = 3, address = \"10.0.0.4:7000\" }"),
       "t.toml:10: cluster.nodes[2].address: node 3 is this node, but its address 10.0.0.4:7000 differs from "
       "node.address 10.0.0.3:7000"},
      {"OtherNodeWithOwnAddress", replace(k_good, "10.0.0.2:7000", "10.0.0.3:7000"),
       "t.toml:9: cluster.nodes[1].address: duplicate address 10.0.0.3:7000 (node 3 at line 1)"},
      {"NodeEntryNotTable", replace(k_good, "{ id = 1, address = \"10.0.0.1:7000\" }", "\"10.0.0.1:7000\""),
       "t.toml:8: cluster.nodes[0]: expected a table {id = N, address = \"ip:port\"}, got a string"},
      {"NodeEntryUnknownKey", replace(k_good, "{ id = 1, address", "{ id = 1, adress = \"x\", address"),
       "t.toml:8: cluster.nodes[0].adress: unknown key (known here: id, address)"},
      {"NodeEntryMissingAddress", replace(k_good, "{ id = 1, address = \"10.0.0.1:7000\" }", "{ id = 1 }"),
       "t.toml:8: cluster.nodes[0].address: missing (the node's \"ip:port\")"},
      {"NodesNotArray",
       replace(k_good, k_good.substr(k_good.find("nodes = ["), k_good.find("key =") - k_good.find("nodes = [")),
               "nodes = 3\n"),
       "t.toml:7: cluster.nodes: expected an array, got an integer"},
      {"DuplicateSeed", k_good + "seeds = [\"10.0.0.9:1\", \"10.0.0.9:1\"]\n",
       "t.toml:13: cluster.seeds[1]: duplicate seed 10.0.0.9:1"},
      {"SeedNotString", k_good + "seeds = [1]\n",
       "t.toml:13: cluster.seeds[0]: expected an \"ip:port\" string, got an integer"},
      {"NoKey", replace(k_good, "key = \"0123456789abcdef0123\"\n", ""),
       "t.toml:6: cluster.key: missing (set key or key_file: the shared secret that authenticates peers)"},
      {"KeyAndKeyFile", k_good + "key_file = \"/etc/mosix/key\"\n",
       "t.toml:13: cluster.key_file: give key or key_file, not both"},
      {"KeyTooShort", replace(k_good, "0123456789abcdef0123", "short"),
       "t.toml:12: cluster.key: the key must be at least 16 bytes (got 5)"},
      {"KeyFileMissing", replace(k_good, "key = \"0123456789abcdef0123\"", "key_file = \"/nonexistent/k\""),
       "t.toml:12: cluster.key_file: cannot read key file /nonexistent/k: No such file or directory"},
      {"WindowTooSmall", k_good + "[gossip]\nwindow = 1\n", "t.toml:14: gossip.window: must be 2..1024 (got 1)"},
      {"WindowWrongType", k_good + "[gossip]\nwindow = 1.5\n",
       "t.toml:14: gossip.window: expected an integer, got a float"},
      {"StepTooShort", k_good + "[gossip]\nstep_ms = 5\n", "t.toml:14: gossip.step_ms: must be 10..60000 (got 5)"},
      {"AgeLimitNotLongerThanStep", k_good + "[gossip]\nage_limit_s = 1\n",
       "t.toml:14: gossip.age_limit_s: must be longer than one step (1000 ms), got 1.000000"},
      {"AgeLimitNotNumber", k_good + "[gossip]\nage_limit_s = \"60\"\n",
       "t.toml:14: gossip.age_limit_s: expected a number of seconds, got a string"},
      {"UnknownGossipKey", k_good + "[gossip]\nwindw = 8\n",
       "t.toml:14: gossip.windw: unknown key (known here: step_ms, window, age_limit_s)"},
      {"UnknownClusterKey", k_good + "gossip = 1\n",
       "t.toml:13: cluster.gossip: unknown key (known here: nodes, seeds, key, key_file)"},
      {"GossipNotTable", "gossip = 1\n" + k_good, "t.toml:1: gossip: expected a table, got an integer"},
      {"PeerIsOwnCluster", k_good + "[[peer_cluster]]\nid = 1\nseeds = [\"10.1.0.1:7000\"]\n",
       "t.toml:14: peer_cluster[0].id: cluster 1 is this node's own cluster"},
      {"DuplicatePeer",
       k_good + "[[peer_cluster]]\nid = 2\nseeds = [\"10.1.0.1:7000\"]\n[[peer_cluster]]\nid = 2\nseeds = "
                "[\"10.1.0.2:7000\"]\n",
       "t.toml:17: peer_cluster[1].id: duplicate peer cluster 2 (also at line 13)"},
      {"PeerUnreachable", k_good + "[[peer_cluster]]\nid = 2\n",
       "t.toml:13: peer_cluster[0]: needs nodes or seeds (otherwise cluster 2 cannot be reached)"},
      {"PeerNodeIdClashesWithOwnCluster",
       k_good + "[[peer_cluster]]\nid = 2\nnodes = [{ id = 2, address = \"10.1.0.2:7000\" }]\n",
       "t.toml:15: peer_cluster[0].nodes[0].id: duplicate node id 2 (also at line 9)"},
      {"PeerListsThisNode", k_good + "[[peer_cluster]]\nid = 2\nnodes = [{ id = 3, address = \"10.0.0.3:7000\" }]\n",
       "t.toml:15: peer_cluster[0].nodes[0].id: duplicate node id 3 (also at line 1)"},
      {"PeerPriorityOutOfRange", k_good + "[[peer_cluster]]\nid = 2\npriority = 70000\nseeds = [\"10.1.0.1:1\"]\n",
       "t.toml:15: peer_cluster[0].priority: must be 0..65535 (got 70000)"},
      {"PeerClusterSingleTable", k_good + "[peer_cluster]\nid = 2\n",
       "t.toml:13: peer_cluster: expected an array of tables ([[peer_cluster]]), got a table"},
  };
}

class ConfigRejects : public testing::TestWithParam<BadCase> {};

TEST_P(ConfigRejects, WithFileLineKeyAndCause) {
  const BadCase& b = GetParam();
  auto c = parse_config(b.text, "t.toml");
  ASSERT_FALSE(c) << "accepted:\n" << b.text;
  EXPECT_EQ(c.error().code, EINVAL);
  if (b.error.ends_with(": "))  // toml++'s or the gossip parser's own wording follows
    EXPECT_TRUE(c.error().message.starts_with(b.error)) << c.error().message;
  else
    EXPECT_EQ(c.error().message, b.error);
}

INSTANTIATE_TEST_SUITE_P(Catalogue, ConfigRejects, testing::ValuesIn(bad_cases()),
                         [](const testing::TestParamInfo<BadCase>& i) { return i.param.name; });

TEST(Config, MissingNodeTableIsNamed) {
  auto c = parse_config("[cluster]\nkey = \"0123456789abcdef\"\n", "t.toml");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message, "t.toml: missing table [node] (id, address, cluster of this node)");
}

TEST(ConfigFile, MissingFileNamesPathAndErrno) {
  auto c = load_config_file("/nonexistent/mosixd.toml");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ENOENT);
  EXPECT_EQ(c.error().message, "cannot read config /nonexistent/mosixd.toml: No such file or directory");
}

TEST(ConfigFile, ReadsKeyFileRelativeToConfigAndTrimsNewline) {
  test::TempDir dir;
  std::string key = dir.write("cluster.key", "fedcba9876543210fedcba\n");
  ASSERT_EQ(::chmod(key.c_str(), 0600), 0);
  std::string cfg =
      dir.write("mosixd.toml", replace(k_good, "key = \"0123456789abcdef0123\"", "key_file = \"cluster.key\""));
  auto c = load_config_file(cfg);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->key, "fedcba9876543210fedcba");
  EXPECT_EQ(c->path, cfg);
}

TEST(ConfigFile, RefusesKeyFileReadableByOthers) {
  test::TempDir dir;
  std::string key = dir.write("cluster.key", "fedcba9876543210fedcba\n");
  ASSERT_EQ(::chmod(key.c_str(), 0644), 0);
  auto k = read_key_file(key);
  ASSERT_FALSE(k);
  EXPECT_EQ(k.error().code, EPERM);
  EXPECT_EQ(k.error().message, "key file " + key + " is accessible by group or others (mode 0644); chmod 600 it");
  std::string cfg =
      dir.write("mosixd.toml", replace(k_good, "key = \"0123456789abcdef0123\"", "key_file = \"" + key + "\""));
  auto c = load_config_file(cfg);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message, cfg + ":12: cluster.key_file: " + k.error().message);
}

TEST(ConfigFile, RefusesKeyFileThatIsADirectory) {
  test::TempDir dir;
  auto k = read_key_file(dir.path());
  ASSERT_FALSE(k);
  EXPECT_EQ(k.error().message, "key file " + dir.path() + " is not a regular file");
}

std::vector<char*> argv_of(std::vector<std::string>& words) {
  std::vector<char*> v;
  for (auto& w : words) v.push_back(w.data());
  return v;
}

TEST(DaemonCli, ParsesConfigForegroundSocketAndVerbosity) {
  std::vector<std::string> words = {"mosixd", "-f", "--config", "/x.toml", "--socket", "/tmp/s", "-vv"};
  auto argv = argv_of(words);
  DaemonOptions o = parse_daemon_cli(static_cast<int>(argv.size()), argv.data());
  EXPECT_TRUE(o.foreground);
  EXPECT_FALSE(o.test_only);
  EXPECT_EQ(o.config_path, "/x.toml");
  EXPECT_EQ(o.socket, "/tmp/s");
  EXPECT_EQ(o.verbosity, 2);
}

TEST(DaemonCli, DefaultsToEtcConfigInBackground) {
  std::vector<std::string> words = {"mosixd", "-q"};
  auto argv = argv_of(words);
  DaemonOptions o = parse_daemon_cli(static_cast<int>(argv.size()), argv.data());
  EXPECT_FALSE(o.foreground);
  EXPECT_EQ(o.config_path, "/etc/mosix/mosixd.toml");
  EXPECT_FALSE(o.socket);
  EXPECT_EQ(o.verbosity, -1);
}

TEST(DaemonCli, RejectsUnknownOptionAndRelativeSocket) {
  std::vector<std::string> bad = {"mosixd", "--frobnicate"};
  auto argv = argv_of(bad);
  EXPECT_THROW(parse_daemon_cli(static_cast<int>(argv.size()), argv.data()), mrc::Fatal);
  std::vector<std::string> rel = {"mosixd", "--socket", "rel.sock"};
  auto argv2 = argv_of(rel);
  EXPECT_THROW(parse_daemon_cli(static_cast<int>(argv2.size()), argv2.data()), mrc::Fatal);
}

TEST(DaemonCli, LoadConfigAppliesSocketOverride) {
  test::TempDir dir;
  DaemonOptions o;
  o.config_path = dir.write("mosixd.toml", k_good);
  o.socket = "/tmp/override.sock";
  EXPECT_EQ(load_config(o).socket, "/tmp/override.sock");
  o.config_path = dir.path() + "/missing.toml";
  EXPECT_THROW(load_config(o), mrc::Fatal);
}

TEST(ConfigFile, ShippedExampleIsValid) {
  auto c = load_config_file(MRC_SOURCE_DIR "/examples/mosix/mosixd.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->id, 3u);
  EXPECT_EQ(c->nodes.size(), 4u);
  EXPECT_EQ(c->peer_clusters.size(), 1u);
}

TEST(DaemonCliDeathTest, TestConfigChecksTheFileAndExits) {
  test::TempDir dir;
  std::string good = dir.write("good.toml", k_good);
  std::vector<std::string> words = {"mosixd", "-t", "--config", good};
  auto argv = argv_of(words);
  EXPECT_EXIT(parse_daemon_cli(static_cast<int>(argv.size()), argv.data()), testing::ExitedWithCode(0), "");
  std::vector<std::string> bad_words = {"mosixd", "-t", "--config", dir.write("bad.toml", "[node]\n")};
  auto bad = argv_of(bad_words);
  EXPECT_THROW(parse_daemon_cli(static_cast<int>(bad.size()), bad.data()), mrc::Fatal);
}

}  // namespace
}  // namespace mosix::mosixd
