// The local socket's messages: the nodes/status encoders' field sets,
// decode of good and bad replies, and the request validation catalogue.
#include "mosix/mosixd/local_proto.h"

#include <gtest/gtest.h>

#include <set>

namespace mosix::mosixd {
namespace {

using nlohmann::json;

NodeReport sample_node(gossip::NodeId id) {
  NodeReport n;
  n.id = id;
  n.address = "10.0.0." + std::to_string(id) + ":7000";
  n.cluster = 2;
  n.res = gossip::Resources{4, 12000, 125, 8ull << 30, 3ull << 30, 1ull << 30, 1ull << 29, 3, false};
  n.age_s = 1.5;
  n.self = id == 1;
  return n;
}

std::set<std::string> keys_of(const json& j) {
  std::set<std::string> out;
  for (auto& [k, v] : j.items()) out.insert(k);
  return out;
}

TEST(NodeEncoder, HasExactlyTheDocumentedFields) {
  json j = encode_node(sample_node(7));
  EXPECT_EQ(keys_of(j),
            (std::set<std::string>{"id", "address", "cluster", "cpus", "speed", "load", "mem_total", "mem_free",
                                   "swap_total", "swap_free", "guests", "accepting", "age_s", "self"}));
  EXPECT_EQ(j["id"], 7);
  EXPECT_EQ(j["address"], "10.0.0.7:7000");
  EXPECT_TRUE(j["load"].is_number_float());
  EXPECT_DOUBLE_EQ(j["load"].get<double>(), 1.25);  // Resources.load / 100
  EXPECT_TRUE(j["age_s"].is_number_float());
  EXPECT_EQ(j["mem_total"].get<uint64_t>(), 8ull << 30);
  EXPECT_EQ(j["accepting"], false);
}

TEST(NodeEncoder, IssueFourFieldsArePresentInTheNodesReply) {
  std::vector<NodeReport> nodes = {sample_node(1), sample_node(2)};
  json reply = encode_nodes(nodes);
  ASSERT_EQ(keys_of(reply), std::set<std::string>{"nodes"});
  for (const auto& n : reply["nodes"])
    for (const char* f :
         {"id", "address", "cluster", "cpus", "speed", "load", "mem_total", "mem_free", "guests", "age_s"})
      EXPECT_TRUE(n.contains(f)) << f;
}

TEST(NodeDecoder, RoundTripsAndSortsById) {
  std::vector<NodeReport> nodes = {sample_node(3), sample_node(1), sample_node(2)};
  auto back = decode_nodes(json::parse(encode_nodes(nodes).dump()));
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_EQ(back->size(), 3u);
  EXPECT_EQ((*back)[0], sample_node(1));
  EXPECT_EQ((*back)[2], sample_node(3));
}

TEST(NodeDecoder, DefaultsOptionalFieldsAndIgnoresUnknownOnes) {
  json j = encode_node(sample_node(4));
  j.erase("swap_total");
  j.erase("swap_free");
  j.erase("accepting");
  j.erase("self");
  j["future_field"] = "x";
  auto n = decode_node(j);
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(n->res.swap_total, 0u);
  EXPECT_TRUE(n->res.accepting);
  EXPECT_FALSE(n->self);
}

TEST(NodeDecoder, NamesTheMissingOrMistypedField) {
  json j = encode_node(sample_node(4));
  j.erase("speed");
  EXPECT_EQ(decode_node(j).error().message, "node entry: field \"speed\" is missing");
  j = encode_node(sample_node(4));
  j["cpus"] = 70000;
  EXPECT_EQ(decode_node(j).error().message, "node entry: field \"cpus\" is out of range");
  j = encode_node(sample_node(4));
  j["load"] = -1;
  EXPECT_EQ(decode_node(j).error().message, "node entry: field \"load\" is not a non-negative number");
  j = encode_node(sample_node(4));
  j["address"] = 5;
  EXPECT_EQ(decode_node(j).error().message, "node entry: field \"address\" is not a string");
  EXPECT_FALSE(decode_node(json::array()));
  EXPECT_EQ(decode_nodes(json{{"nodes", 3}}).error().message, "reply has no \"nodes\" array");
}

TEST(Replies, ErrorReplyBecomesTheDaemonsMessage) {
  EXPECT_EQ(error_reply("nope"), json::parse(R"({"ok":false,"error":"nope"})"));
  EXPECT_EQ(ok_reply(), json::parse(R"({"ok":true})"));
  EXPECT_TRUE(check_reply(ok_reply()));
  EXPECT_EQ(check_reply(error_reply("cluster 9 is not blocked")).error().message, "cluster 9 is not blocked");
  EXPECT_EQ(decode_nodes(error_reply("busy")).error().message, "busy");
  EXPECT_EQ(decode_status(error_reply("busy")).error().message, "busy");
}

TEST(Status, RoundTripsWithStats) {
  StatusReport s;
  s.id = 3;
  s.cluster = 1;
  s.address = "10.0.0.3:7000";
  s.active = false;
  s.blocked = {4, 9};
  s.step_ms = 1000;
  s.window = 16;
  s.known = 8;
  s.stats = json{{"sent", 10}, {"received", 9}};
  json j = encode_status(s);
  EXPECT_EQ(keys_of(j), (std::set<std::string>{"id", "cluster", "address", "active", "blocked", "step_ms", "window",
                                               "known", "stats"}));
  auto back = decode_status(json::parse(j.dump()));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, s);
  j.erase("window");
  EXPECT_EQ(decode_status(j).error().message, "status reply: field \"window\" is missing");
  j = encode_status(s);
  j["blocked"] = json::array({"x"});
  EXPECT_EQ(decode_status(j).error().message, "status reply: field \"blocked\" holds something not a cluster id");
}

struct RequestCase {
  const char* name;
  const char* request;
  const char* error;  // nullptr: valid
};

class Requests : public testing::TestWithParam<RequestCase> {};

TEST_P(Requests, AreValidatedStrictly) {
  const RequestCase& c = GetParam();
  auto r = validate_request(json::parse(c.request));
  if (!c.error) {
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ((*r)->name, json::parse(c.request)["op"].get<std::string>());
  } else {
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, c.error);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Catalogue, Requests,
    testing::Values(
        RequestCase{"Nodes", R"({"op":"nodes"})", nullptr}, RequestCase{"Status", R"({"op":"status"})", nullptr},
        RequestCase{"Join", R"({"op":"join"})", nullptr}, RequestCase{"Leave", R"({"op":"leave"})", nullptr},
        RequestCase{"Block", R"({"op":"block","cluster":4})", nullptr},
        RequestCase{"Unblock", R"({"op":"unblock","cluster":4294967295})", nullptr},
        RequestCase{"NotObject", R"(["nodes"])", "a request must be a JSON object"},
        RequestCase{"NoOp", R"({"cluster":1})", "a request needs a string field \"op\""},
        RequestCase{"OpNotString", R"({"op":1})", "a request needs a string field \"op\""},
        RequestCase{"UnknownOp", R"({"op":"reboot"})", "unknown op \"reboot\""},
        RequestCase{"ExtraField", R"({"op":"nodes","all":true})", "op \"nodes\" takes no field \"all\""},
        RequestCase{"ClusterOnJoin", R"({"op":"join","cluster":1})", "op \"join\" takes no field \"cluster\""},
        RequestCase{"BlockWithoutCluster", R"({"op":"block"})", "op \"block\" needs a field \"cluster\""},
        RequestCase{"BlockClusterZero", R"({"op":"block","cluster":0})",
                    "\"cluster\" must be a cluster id 1..4294967295"},
        RequestCase{"BlockClusterString", R"({"op":"block","cluster":"2"})",
                    "\"cluster\" must be a cluster id 1..4294967295"},
        RequestCase{"BlockClusterTooBig", R"({"op":"block","cluster":4294967296})",
                    "\"cluster\" must be a cluster id 1..4294967295"}),
    [](const testing::TestParamInfo<RequestCase>& i) { return i.param.name; });

TEST(Ops, MutatingOpsAreMarked) {
  for (const OpSpec& op : ops())
    EXPECT_EQ(op.mutates == Mutates::yes, op.name != "nodes" && op.name != "status") << op.name;
  EXPECT_EQ(make_request("block", 3), json::parse(R"({"op":"block","cluster":3})"));
  EXPECT_EQ(make_request("nodes"), json::parse(R"({"op":"nodes"})"));
}

TEST(Sign, RequestAndReplyRoundTripAndABadTagIsRefused) {
  SignBytes nonce{}, tag{};
  for (size_t i = 0; i < nonce.size(); ++i) nonce[i] = static_cast<std::byte>(i * 9 + 0xa0), tag[i] = std::byte(i);
  json req = make_sign_request(nonce);
  ASSERT_TRUE(validate_request(req)) << req.dump();
  EXPECT_EQ(req["nonce"].get<std::string>().substr(0, 6), "a0a9b2");
  EXPECT_EQ(decode_sign_nonce(req), nonce);
  auto back = decode_sign_reply(encode_sign_reply(tag));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, tag);
  for (const char* bad : {R"({"tag":"00"})", R"({"tag":7})", R"({})",
                          R"({"tag":"ZZ00000000000000000000000000000000000000000000000000000000000000"})"}) {
    auto r = decode_sign_reply(json::parse(bad));
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, EPROTO);
  }
  auto refused = decode_sign_reply(error_reply("not permitted"));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().message, "not permitted");
}

}  // namespace
}  // namespace mosix::mosixd
