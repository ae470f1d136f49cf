// LocalServer and query() over a real unix socket in a temp dir: round
// trips, malformed and over-long requests, many clients, timeouts, stale
// sockets, permissions. A driver thread plays the daemon's poll loop.
#include "mosix/mosixd/local_socket.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <optional>
#include <thread>

#include "tests/unit/mosix/mosixd/server_driver.h"
#include "tests/unit/mosix/mosixd/temp_dir.h"

namespace mosix::mosixd {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// A handler like the daemon's: two fixed nodes; counts the calls.
struct FakeDaemon {
  std::atomic<int> calls = 0;
  Handler handler() {
    return [this](const json& req) -> json {
      ++calls;
      std::string op = req["op"];
      if (op == "nodes") {
        NodeReport a;
        a.id = 1;
        a.address = "10.0.0.1:7000";
        a.cluster = 1;
        NodeReport b = a;
        b.id = 2;
        std::vector<NodeReport> v = {a, b};
        return encode_nodes(v);
      }
      if (op == "leave") throw std::runtime_error("leave exploded");
      return ok_reply();
    };
  }
};

// A raw client: sends bytes, reads lines.
class RawClient {
 public:
  explicit RawClient(const std::string& path) : m_fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    m_connected = ::connect(m_fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  bool connected() const { return m_connected; }
  void send(const std::string& s) {
    ASSERT_EQ(::send(m_fd.get(), s.data(), s.size(), MSG_NOSIGNAL), (ssize_t)s.size());
  }
  void shutdown_write() { ::shutdown(m_fd.get(), SHUT_WR); }
  // The next line without its newline; nullopt on EOF or after 2 s.
  std::optional<std::string> line() {
    for (;;) {
      if (size_t nl = m_buf.find('\n'); nl != std::string::npos) {
        std::string l = m_buf.substr(0, nl);
        m_buf.erase(0, nl + 1);
        return l;
      }
      pollfd p{m_fd.get(), POLLIN, 0};
      if (::poll(&p, 1, 2000) <= 0) return std::nullopt;
      char b[4096];
      ssize_t n = ::recv(m_fd.get(), b, sizeof b, 0);
      if (n <= 0) return std::nullopt;
      m_buf.append(b, static_cast<size_t>(n));
    }
  }

 private:
  mrc::UniqueFd m_fd;
  bool m_connected = false;
  std::string m_buf;
};

// A unix socket bound at `path` (not listening); -1 on failure.
mrc::UniqueFd bound_socket(const std::string& path) {
  mrc::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return mrc::UniqueFd();
  return fd;
}

class LocalSocket : public testing::Test {
 protected:
  std::string path() const { return m_dir.path() + "/run/mosix/mosixd.sock"; }
  LocalServer open(ServerLimits limits = {}) {
    auto s = LocalServer::open(path(), m_daemon.handler(), limits);
    EXPECT_TRUE(s) << s.error().message;
    return std::move(*s);
  }
  test::TempDir m_dir;
  FakeDaemon m_daemon;
};

TEST_F(LocalSocket, QueryRoundTripsNodes) {
  LocalServer s = open();
  test::ServerDriver d(s);
  auto r = query(path(), make_request("nodes"), 2s);
  ASSERT_TRUE(r) << r.error().message;
  auto nodes = decode_nodes(*r);
  ASSERT_TRUE(nodes) << nodes.error().message;
  ASSERT_EQ(nodes->size(), 2u);
  EXPECT_EQ((*nodes)[1].id, 2u);
  EXPECT_EQ(query(path(), make_request("block", 3), 2s).value(), ok_reply());
}

TEST_F(LocalSocket, CreatesParentDirectoriesAndDocumentedModes) {
  LocalServer s = open();
  struct stat st {};
  ASSERT_EQ(::stat(path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, k_socket_mode);
  ASSERT_EQ(::stat((m_dir.path() + "/run/mosix").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, k_socket_dir_mode);
}

TEST_F(LocalSocket, MalformedJsonGetsAnErrorAndTheConnectionStaysUsable) {
  LocalServer s = open();
  test::ServerDriver d(s);
  RawClient c(path());
  ASSERT_TRUE(c.connected());
  c.send("{not json\n{\"op\":\"frobnicate\"}\n{\"op\":\"nodes\"}\n");
  json bad = json::parse(c.line().value());
  EXPECT_EQ(bad["ok"], false);
  EXPECT_TRUE(bad["error"].get<std::string>().starts_with("malformed JSON request: parse error at line 1"))
      << bad.dump();
  EXPECT_EQ(json::parse(c.line().value()), error_reply("unknown op \"frobnicate\""));
  EXPECT_EQ(json::parse(c.line().value())["nodes"].size(), 2u);
  EXPECT_EQ(m_daemon.calls, 1) << "only the valid request reaches the handler";
}

TEST_F(LocalSocket, OverlongLineGetsAnErrorThenTheConnectionCloses) {
  LocalServer s = open(ServerLimits{.max_line = 1024});
  test::ServerDriver d(s);
  RawClient c(path());
  c.send(std::string(5000, 'x'));
  EXPECT_EQ(json::parse(c.line().value()), error_reply("request line longer than 1024 bytes"));
  EXPECT_FALSE(c.line()) << "closed after the error";
  EXPECT_TRUE(query(path(), make_request("status"), 2s)) << "the server keeps serving others";
}

TEST_F(LocalSocket, HandlerExceptionBecomesAnInternalError) {
  LocalServer s = open();
  test::ServerDriver d(s);
  EXPECT_EQ(query(path(), make_request("leave"), 2s).value(), error_reply("internal error: leave exploded"));
  EXPECT_TRUE(query(path(), make_request("nodes"), 2s));
}

TEST_F(LocalSocket, AnswersAClientThatClosedItsSendingSide) {
  LocalServer s = open();
  test::ServerDriver d(s);
  RawClient c(path());
  c.send("{\"op\":\"status\"}\n");
  c.shutdown_write();
  EXPECT_EQ(json::parse(c.line().value()), ok_reply());
  EXPECT_FALSE(c.line());
}

TEST_F(LocalSocket, ServesManyConcurrentClients) {
  LocalServer s = open();
  test::ServerDriver d(s);
  std::atomic<int> good = 0;
  std::vector<std::thread> clients;
  for (int i = 0; i < 16; ++i)
    clients.emplace_back([&] {
      for (int j = 0; j < 10; ++j)
        if (auto r = query(path(), make_request("nodes"), 5s); r && decode_nodes(*r)) ++good;
    });
  for (auto& t : clients) t.join();
  EXPECT_EQ(good, 160);
}

TEST_F(LocalSocket, RefusesClientsBeyondTheLimitWithAMessage) {
  LocalServer s = open(ServerLimits{.max_clients = 2});
  test::ServerDriver d(s);
  RawClient a(path()), b(path());
  a.send("{\"op\":\"status\"}\n");
  b.send("{\"op\":\"status\"}\n");
  ASSERT_TRUE(a.line());  // both accepted and served
  ASSERT_TRUE(b.line());
  EXPECT_EQ(query(path(), make_request("nodes"), 2s).value(), error_reply("too many clients (2); try again"));
}

TEST_F(LocalSocket, DropsIdleClients) {
  LocalServer s = open(ServerLimits{.idle_timeout = 100ms});
  test::ServerDriver d(s);
  RawClient c(path());
  std::this_thread::sleep_for(400ms);
  EXPECT_FALSE(c.line()) << "an idle client is disconnected";
}

TEST_F(LocalSocket, QueryTimesOutWhenNobodyAnswers) {
  // A listening socket nobody serves: connect succeeds (backlog), no reply.
  std::string p = m_dir.path() + "/silent.sock";
  mrc::UniqueFd l = bound_socket(p);
  ASSERT_EQ(::listen(l.get(), 4), 0);
  auto t0 = std::chrono::steady_clock::now();
  auto r = query(p, make_request("nodes"), 200ms);
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ETIMEDOUT);
  EXPECT_EQ(r.error().message, "mosixd on " + p + " did not answer within 200 ms");
  EXPECT_GE(took, 200ms);
  EXPECT_LT(took, 2s);
}

TEST_F(LocalSocket, QueryWithoutDaemonAsksWhetherItRuns) {
  auto r = query(path(), make_request("nodes"), 1s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ENOENT);
  EXPECT_EQ(r.error().message, "cannot connect to " + path() + ": No such file or directory — is mosixd running?");
}

TEST_F(LocalSocket, ReplacesAStaleSocket) {
  // What a crashed daemon leaves: a socket file nobody listens on.
  std::filesystem::create_directories(m_dir.path() + "/run/mosix");
  {
    mrc::UniqueFd dead = bound_socket(path());
    ASSERT_TRUE(dead);
  }
  ASSERT_EQ(::access(path().c_str(), F_OK), 0);
  auto again = LocalServer::open(path(), m_daemon.handler());
  ASSERT_TRUE(again) << again.error().message;
  test::ServerDriver d(*again);
  EXPECT_TRUE(query(path(), make_request("status"), 2s));
}

TEST_F(LocalSocket, RefusesWhenAnotherDaemonAnswers) {
  LocalServer first = open();
  auto second = LocalServer::open(path(), m_daemon.handler());
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, EADDRINUSE);
  EXPECT_EQ(second.error().message, "another daemon is answering on " + path());
}

TEST_F(LocalSocket, RefusesToReplaceANonSocket) {
  std::string p = m_dir.write("plain", "data");
  auto s = LocalServer::open(p, m_daemon.handler());
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message, p + " exists and is not a socket; not replacing it");
}

TEST_F(LocalSocket, RemovesItsSocketWhenDestroyed) {
  { LocalServer s = open(); }
  EXPECT_NE(::access(path().c_str(), F_OK), 0);
}

TEST_F(LocalSocket, RefusesMutatingOpsFromOtherUsers) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to switch to another uid";
  ASSERT_EQ(::chmod(m_dir.path().c_str(), 0755), 0);
  LocalServer s = open();
  // Fork before the driver thread exists: the child then owns the only thread.
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    char c;
    ::close(go[1]);
    if (::read(go[0], &c, 1) != 1 || ::setresuid(65534, 65534, 65534) != 0) ::_exit(10);
    auto join = query(path(), make_request("join"), 2s);
    bool denied = join && *join == error_reply("permission denied: \"join\" is for root or uid 0");
    auto nodes = query(path(), make_request("nodes"), 2s);
    ::_exit(denied && nodes && decode_nodes(*nodes) ? 0 : 11);
  }
  ::close(go[0]);
  test::ServerDriver d(s);
  ASSERT_EQ(::write(go[1], "x", 1), 1);
  ::close(go[1]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  EXPECT_EQ(m_daemon.calls, 1) << "only the query reached the handler";
}

}  // namespace
}  // namespace mosix::mosixd
