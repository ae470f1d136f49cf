// mosctl and mosmon --json against a real LocalServer with a fake daemon
// handler: command lines, requests, output text, exit statuses, errors.
#include <gtest/gtest.h>

#include <cstdio>
#include <set>

#include "mosix/tools/mosctl.h"
#include "mosix/tools/mosmon.h"
#include "mosix/tools/mosrun.h"
#include "tests/unit/mosix/mosixd/server_driver.h"
#include "tests/unit/mosix/mosixd/temp_dir.h"

namespace mosix::tools {
namespace {

using nlohmann::json;

template <typename Options>
Options parse(Options (*parser)(int, char**), std::vector<std::string> words) {
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  return parser(static_cast<int>(argv.size()), argv.data());
}

// Captures what a function prints to a FILE*.
class Capture {
 public:
  Capture() : m_file(::open_memstream(&m_buf, &m_len)) {}
  ~Capture() {
    std::fclose(m_file);
    std::free(m_buf);
  }
  std::FILE* file() { return m_file; }
  std::string text() {
    std::fflush(m_file);
    return std::string(m_buf, m_len);
  }

 private:
  char* m_buf = nullptr;
  size_t m_len = 0;
  std::FILE* m_file;
};

mosixd::StatusReport sample_status() {
  mosixd::StatusReport s;
  s.id = 3;
  s.cluster = 1;
  s.address = "10.0.0.3:7000";
  s.blocked = {4, 9};
  s.step_ms = 1000;
  s.window = 16;
  s.known = 8;
  s.stats = json{{"sent", 120}, {"received", 118}, {"dropped", {{"bad_mac", 2}, {"replayed", 0}}}};
  return s;
}

class Tools : public testing::Test {
 protected:
  void SetUp() override {
    auto s = mosixd::LocalServer::open(m_path, [this](const json& req) { return answer(req); });
    ASSERT_TRUE(s) << s.error().message;
    m_server.emplace(std::move(*s));
    m_driver.emplace(*m_server);
  }
  void TearDown() override { m_driver.reset(); }
  json answer(const json& req) {
    m_last = req;
    if (req["op"] == "status") return mosixd::encode_status(sample_status());
    if (req["op"] == "nodes") {
      std::vector<mosixd::NodeReport> v(2);
      v[0].id = 2;
      v[0].address = "10.0.0.2:7000";
      v[1].id = 1;
      v[1].address = "10.0.0.1:7000";
      v[1].res.load = 150;
      return mosixd::encode_nodes(v);
    }
    if (req["op"] == "block" && req["cluster"] == 1) return mosixd::error_reply("cluster 1 is this node's own cluster");
    return mosixd::ok_reply();
  }
  MosctlOptions ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {"mosctl", "--socket", m_path});
    return parse(parse_mosctl_cli, args);
  }

  test::TempDir m_dir;
  std::string m_path = m_dir.path() + "/mosixd.sock";
  std::optional<mosixd::LocalServer> m_server;
  std::optional<test::ServerDriver> m_driver;
  json m_last;  // written by the driver thread before it replies; read after the reply arrived
};

TEST(MosctlCli, ParsesSubcommandsAndTheirCluster) {
  auto o = parse(parse_mosctl_cli, {"mosctl", "block", "7"});
  EXPECT_EQ(o.command, "block");
  EXPECT_EQ(o.cluster, 7u);
  EXPECT_EQ(o.socket, "/run/mosix/mosixd.sock");
  EXPECT_EQ(request_for(o), json::parse(R"({"op":"block","cluster":7})"));
  o = parse(parse_mosctl_cli, {"mosctl", "--json", "--timeout", "0.5", "status"});
  EXPECT_TRUE(o.json);
  EXPECT_EQ(o.timeout, std::chrono::milliseconds(500));
  EXPECT_EQ(request_for(o), json::parse(R"({"op":"status"})"));
  EXPECT_EQ(request_for(parse(parse_mosctl_cli, {"mosctl", "leave"})), json::parse(R"({"op":"leave"})"));
}

TEST(MosctlCli, RejectsMissingOrBadArguments) {
  EXPECT_THROW(parse(parse_mosctl_cli, {"mosctl"}), mrc::Fatal);
  EXPECT_THROW(parse(parse_mosctl_cli, {"mosctl", "block"}), mrc::Fatal);
  EXPECT_THROW(parse(parse_mosctl_cli, {"mosctl", "block", "0"}), mrc::Fatal);
  EXPECT_THROW(parse(parse_mosctl_cli, {"mosctl", "block", "x"}), mrc::Fatal);
  EXPECT_THROW(parse(parse_mosctl_cli, {"mosctl", "reboot"}), mrc::Fatal);
  EXPECT_THROW(parse(parse_mosctl_cli, {"mosctl", "join", "leave"}), mrc::Fatal);
}

TEST(MosrunCli, TheCommandKeepsItsOwnOptions) {
  auto o = parse(parse_mosrun_cli, {"mosrun", "-C", "/tmp/ck", "-A", "5", "gzip", "-c", "-9", "in", "-C", "x"});
  EXPECT_EQ(o.checkpoint, "/tmp/ck");
  EXPECT_EQ(o.every_minutes, 5);
  EXPECT_EQ(o.command, (std::vector<std::string>{"gzip", "-c", "-9", "in", "-C", "x"}));
  auto r = parse(parse_mosrun_cli, {"mosrun", "-R", "/tmp/ck.1"});
  EXPECT_EQ(r.recover, "/tmp/ck.1");
  EXPECT_TRUE(r.command.empty());
}

TEST(MosrunCli, HomeFilesByDefaultLocalOnRequest) {
  auto o = parse(parse_mosrun_cli, {"mosrun", "sort", "--local-files"});
  EXPECT_FALSE(o.local_files);  // the command's option, not ours
  EXPECT_TRUE(o.mrc.empty());
  auto l = parse(parse_mosrun_cli, {"mosrun", "--local-files", "--mrc", "/opt/mrc", "sort"});
  EXPECT_TRUE(l.local_files);
  EXPECT_EQ(l.mrc, "/opt/mrc");
}

TEST(MosrunCli, RejectsMissingOrConflictingArguments) {
  EXPECT_THROW(parse(parse_mosrun_cli, {"mosrun"}), mrc::Fatal);
  EXPECT_THROW(parse(parse_mosrun_cli, {"mosrun", "-A", "5", "true"}), mrc::Fatal);
  EXPECT_THROW(parse(parse_mosrun_cli, {"mosrun", "-R", "f", "true"}), mrc::Fatal);
  EXPECT_THROW(parse(parse_mosrun_cli, {"mosrun", "-C", "f", "-A", "0", "true"}), mrc::Fatal);
  EXPECT_THROW(parse(parse_migrate_cli, {"migrate", "12"}), mrc::Fatal);
  EXPECT_THROW(parse(parse_migrate_cli, {"migrate", "0", "checkpoint"}), mrc::Fatal);
  auto m = parse(parse_migrate_cli, {"migrate", "12", "checkpoint"});
  EXPECT_EQ(m.pid, 12);
  EXPECT_EQ(m.where, "checkpoint");
}

TEST(MosctlFormat, StatusReadsAsLabelledLines) {
  EXPECT_EQ(format_status(sample_status()),
            "node      3 (10.0.0.3:7000)\n"
            "cluster   1\n"
            "state     active (joined)\n"
            "blocked   4, 9\n"
            "gossip    step 1000 ms, window 16, 8 nodes known\n"
            "counters\n"
            "  dropped               bad_mac 2, replayed 0\n"
            "  received              118\n"
            "  sent                  120\n");
  auto left = sample_status();
  left.active = false;
  left.blocked.clear();
  left.stats = json::object();
  std::string text = format_status(left);
  EXPECT_NE(text.find("state     inactive (left)\n"), std::string::npos);
  EXPECT_NE(text.find("blocked   none\n"), std::string::npos);
  EXPECT_EQ(text.find("counters"), std::string::npos);
}

TEST_F(Tools, MosctlStatusPrintsTheDaemonsState) {
  Capture out;
  EXPECT_EQ(run_mosctl(ctl({"status"}), out.file()), k_exit_ok);
  EXPECT_EQ(out.text(), format_status(sample_status()));
}

TEST_F(Tools, MosctlJsonPrintsTheReplyAsIs) {
  Capture out;
  EXPECT_EQ(run_mosctl(ctl({"--json", "status"}), out.file()), k_exit_ok);
  EXPECT_EQ(json::parse(out.text()), mosixd::encode_status(sample_status()));
}

TEST_F(Tools, MosctlBlockSendsTheClusterAndConfirms) {
  Capture out;
  EXPECT_EQ(run_mosctl(ctl({"block", "4"}), out.file()), k_exit_ok);
  EXPECT_EQ(out.text(), "blocked cluster 4\n");
  EXPECT_EQ(m_last, json::parse(R"({"op":"block","cluster":4})"));
  Capture out2;
  EXPECT_EQ(run_mosctl(ctl({"join"}), out2.file()), k_exit_ok);
  EXPECT_EQ(out2.text(), "joined\n");
}

TEST_F(Tools, MosctlRefusalExitsOne) {
  Capture out;
  testing::internal::CaptureStderr();
  EXPECT_EQ(run_mosctl(ctl({"block", "1"}), out.file()), k_exit_refused);
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "mosctl: block: cluster 1 is this node's own cluster\n");
  EXPECT_EQ(out.text(), "");
}

TEST_F(Tools, MosctlWithoutDaemonIsFatalWithAHint) {
  auto o = ctl({"status"});
  o.socket = m_dir.path() + "/none.sock";
  Capture out;
  try {
    run_mosctl(o, out.file());
    FAIL() << "no exception";
  } catch (const mrc::Fatal& e) {
    EXPECT_EQ(std::string(e.what()),
              "cannot connect to " + o.socket + ": No such file or directory — is mosixd running?");
  }
}

TEST_F(Tools, MosmonJsonPrintsTheIssueFormatSortedById) {
  auto o = parse(parse_mosmon_cli, {"mosmon", "--json", "--socket", m_path});
  ASSERT_TRUE(o.json);
  Capture out;
  EXPECT_EQ(print_json_snapshot(o, out.file()), 0);
  std::string text = out.text();
  ASSERT_TRUE(text.ends_with("}\n"));
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << "one line";
  json j = json::parse(text);
  ASSERT_EQ(j["nodes"].size(), 2u);
  EXPECT_EQ(j["nodes"][0]["id"], 1);
  EXPECT_DOUBLE_EQ(j["nodes"][0]["load"].get<double>(), 1.5);
  for (const auto& n : j["nodes"])
    for (const char* f :
         {"id", "address", "cluster", "cpus", "speed", "load", "mem_total", "mem_free", "guests", "age_s"})
      EXPECT_TRUE(n.contains(f)) << f;
}

TEST_F(Tools, MosmonJsonWithoutDaemonIsFatal) {
  auto o = parse(parse_mosmon_cli, {"mosmon", "--json", "--socket", m_dir.path() + "/none.sock"});
  Capture out;
  EXPECT_THROW(print_json_snapshot(o, out.file()), mrc::Fatal);
  EXPECT_EQ(out.text(), "");
}

TEST_F(Tools, MosmonSnapshotKeepsOldNodesWhenTheDaemonGoesAway) {
  auto o = parse(parse_mosmon_cli, {"mosmon", "--socket", m_path, "--interval", "0.2", "--view", "memory"});
  EXPECT_EQ(o.view, View::memory);
  EXPECT_EQ(o.interval, std::chrono::milliseconds(200));
  Snapshot first = fetch_snapshot(o, Snapshot{});
  ASSERT_TRUE(first.error.empty()) << first.error;
  ASSERT_EQ(first.nodes.size(), 2u);
  m_driver.reset();
  m_server.reset();
  Snapshot later = fetch_snapshot(o, first);
  EXPECT_EQ(later.nodes, first.nodes);
  EXPECT_NE(later.error.find("is mosixd running?"), std::string::npos) << later.error;
}

TEST(MosmonCli, RejectsBadIntervalAndView) {
  EXPECT_THROW(parse(parse_mosmon_cli, {"mosmon", "--interval", "0"}), mrc::Fatal);
  EXPECT_THROW(parse(parse_mosmon_cli, {"mosmon", "--view", "disk"}), mrc::Fatal);
  EXPECT_THROW(parse(parse_mosmon_cli, {"mosmon", "extra"}), mrc::Fatal);
}

}  // namespace
}  // namespace mosix::tools
