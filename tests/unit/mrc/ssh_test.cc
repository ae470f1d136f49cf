// SshSession against a real OpenSSH sshd on 127.0.0.1, with a fresh host
// key and user key in a temporary directory. Needs root (sshd's privilege
// separation) and /usr/sbin/sshd: skipped without them, except when CI=true.
#include "mrc/ssh.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace mrc::launcher {
namespace {

using Clock = std::chrono::steady_clock;

bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
}

/// Runs a local shell command; returns its stdout, or "<failed>" if it failed.
std::string sh(const std::string& cmd) {
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return "<failed>";
  std::string out;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof(buf), p)) out.append(buf, n);
  return ::pclose(p) == 0 ? out : "<failed>";
}

/// A TCP port on 127.0.0.1 nobody listens on (at the time of the call).
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool can_connect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  ::close(fd);
  return ok;
}

std::vector<char> random_bytes(size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::vector<char> v(n);
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t x = rng();
    std::memcpy(v.data() + i, &x, 8);
  }
  return v;
}

/// Everything readable from `fd` until EOF; a test failure (not a hang)
/// if EOF has not come within `limit`.
std::string read_all(int fd, std::chrono::seconds limit = std::chrono::seconds(120)) {
  std::string out;
  std::vector<char> buf(256 * 1024);
  auto deadline = Clock::now() + limit;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    pollfd p{fd, POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) == 0) {
      ADD_FAILURE() << "no EOF within " << limit.count() << " s (got " << out.size() << " bytes)";
      break;
    }
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) break;
    out.append(buf.data(), static_cast<size_t>(n));
  }
  return out;
}

/// Redirects our fd 2 into a file while alive; text() returns what landed there.
class StderrCapture {
 public:
  explicit StderrCapture(const std::string& path) : m_path(path) {
    std::fflush(stderr);
    m_saved = ::dup(2);
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ::dup2(fd, 2);
    ::close(fd);
  }
  ~StderrCapture() { restore(); }
  std::string text() {
    restore();
    return read_file(m_path);
  }

 private:
  void restore() {
    if (m_saved < 0) return;
    std::fflush(stderr);
    ::dup2(m_saved, 2);
    ::close(m_saved);
    m_saved = -1;
  }
  std::string m_path;
  int m_saved = -1;
};

class SshTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::unsetenv("SSH_AUTH_SOCK");  // only the keys the test hands out
    if (::geteuid() != 0 || ::access("/usr/sbin/sshd", X_OK) != 0 || ::access("/usr/bin/ssh-keygen", X_OK) != 0) {
      if (in_ci()) FAIL() << "ssh tests need root, /usr/sbin/sshd and ssh-keygen (CI=true: not skipping)";
      GTEST_SKIP() << "needs root, /usr/sbin/sshd and ssh-keygen";
    }
    char tmpl[] = "/tmp/mrc-ssh-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    m_dir = tmpl;
    ::mkdir("/run/sshd", 0755);  // sshd's privilege separation directory
    ASSERT_NE(sh("ssh-keygen -q -t ed25519 -N '' -C host -f " + m_dir + "/host_key"), "<failed>");
    ASSERT_NE(sh("ssh-keygen -q -t ed25519 -N '' -C user -f " + m_dir + "/id_user"), "<failed>");
    write_file(m_dir + "/authorized_keys", read_file(m_dir + "/id_user.pub"));
    write_file(m_dir + "/ssh_config", "");
    m_port = free_port();
    std::string config =
        "ListenAddress 127.0.0.1\nPidFile none\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nSubsystem sftp internal-sftp\n";
    config += "HostKey " + m_dir + "/host_key\n";
    config += "AuthorizedKeysFile " + m_dir + "/authorized_keys\n";
    write_file(m_dir + "/sshd_config", config);
    start_sshd();
    write_file(known_hosts(), host_key_line());
  }

  void TearDown() override {
    if (m_sshd > 0) {
      ::kill(m_sshd, SIGTERM);
      ::waitpid(m_sshd, nullptr, 0);
    }
    if (HasFailure() && !m_dir.empty())
      std::fprintf(stderr, "--- sshd log:\n%s", read_file(m_dir + "/sshd.log").c_str());
    if (!m_dir.empty()) sh("rm -rf " + m_dir);
  }

  void start_sshd() {
    std::string log = m_dir + "/sshd.log";
    std::string cfg = m_dir + "/sshd_config";
    std::string port = std::to_string(m_port);
    m_sshd = ::fork();
    ASSERT_GE(m_sshd, 0);
    if (m_sshd == 0) {
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::execl("/usr/sbin/sshd", "/usr/sbin/sshd", "-D", "-e", "-f", cfg.c_str(), "-p", port.c_str(), nullptr);
      ::_exit(127);
    }
    for (auto end = Clock::now() + std::chrono::seconds(10); Clock::now() < end;) {
      if (can_connect(m_port)) return;
      ASSERT_EQ(::waitpid(m_sshd, nullptr, WNOHANG), 0) << "sshd exited: " << read_file(log);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    FAIL() << "sshd did not listen on port " << m_port << ": " << read_file(log);
  }

  std::string known_hosts() const { return m_dir + "/known_hosts"; }
  std::string host_key_line() const {
    return "[127.0.0.1]:" + std::to_string(m_port) + " " + read_file(m_dir + "/host_key.pub");
  }

  /// Options naming every file explicitly (libssh, like ssh, takes ~ from
  /// the passwd entry, not $HOME, so the test cannot redirect ~/.ssh).
  SshOptions options() const {
    SshOptions o;
    o.host = "127.0.0.1";
    o.user = "root";
    o.port = m_port;
    o.identities = {m_dir + "/id_user"};
    o.config_file = m_dir + "/ssh_config";
    o.known_hosts = known_hosts();
    o.connect_timeout_s = 5;
    return o;
  }

  std::unique_ptr<SshSession> connect_ok(const SshOptions& o) {
    auto s = SshSession::connect(o);
    EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().message);
    return s ? std::move(*s) : nullptr;
  }

  std::string m_dir;
  int m_port = 0;
  pid_t m_sshd = -1;
};

TEST_F(SshTest, RefusesUnknownHostKeyAndAcceptNewAddsIt) {
  ::unlink(known_hosts().c_str());
  SshOptions o = options();
  auto refused = SshSession::connect(o);
  ASSERT_FALSE(refused.has_value());
  std::string fp = sh("ssh-keygen -l -f " + m_dir + "/host_key.pub | cut -d' ' -f2");
  ASSERT_FALSE(fp.empty());
  fp.pop_back();  // newline
  EXPECT_EQ(refused.error().message, "host key for [127.0.0.1]:" + std::to_string(m_port) + " (ED25519 " + fp +
                                         ") is not known; verify it and add it to " + known_hosts() +
                                         ", or run mrc with --accept-new");

  o.accept_new = true;
  StderrCapture err(m_dir + "/stderr");
  ASSERT_NE(connect_ok(o), nullptr);
  EXPECT_NE(err.text().find("Warning: permanently added '[127.0.0.1]:" + std::to_string(m_port) + "'"),
            std::string::npos);
  EXPECT_NE(read_file(known_hosts()).find(read_file(m_dir + "/host_key.pub").substr(0, 60)), std::string::npos);

  o.accept_new = false;  // now known: no flag needed
  EXPECT_NE(connect_ok(o), nullptr);
}

TEST_F(SshTest, StrictHostKeyCheckingAcceptNewOptionActsLikeTheFlag) {
  ::unlink(known_hosts().c_str());
  SshOptions o = options();
  o.options = {"StrictHostKeyChecking=accept-new"};
  StderrCapture err(m_dir + "/stderr");
  EXPECT_NE(connect_ok(o), nullptr);
}

TEST_F(SshTest, RefusesChangedHostKey) {
  ASSERT_NE(sh("ssh-keygen -q -t ed25519 -N '' -f " + m_dir + "/other_key"), "<failed>");
  write_file(known_hosts(), "[127.0.0.1]:" + std::to_string(m_port) + " " + read_file(m_dir + "/other_key.pub"));
  SshOptions o = options();
  o.accept_new = true;  // never overrides a changed key
  auto r = SshSession::connect(o);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("REMOTE HOST IDENTIFICATION HAS CHANGED"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find(known_hosts()), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("refusing to connect"), std::string::npos) << r.error().message;
}

TEST_F(SshTest, ClosedPortFailsQuicklyWithCannotConnect) {
  SshOptions o = options();
  o.port = free_port();
  auto start = Clock::now();
  auto r = SshSession::connect(o);
  ASSERT_FALSE(r.has_value());
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(r.error().message.rfind("cannot connect to 127.0.0.1 port " + std::to_string(o.port) + ": ", 0), 0u)
      << r.error().message;
}

TEST_F(SshTest, SilentServerFailsWithinConnectTimeout) {
  // Accepts TCP (the kernel completes the handshake) but never speaks SSH.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  SshOptions o = options();
  o.port = ntohs(a.sin_port);
  o.connect_timeout_s = 2;
  auto start = Clock::now();
  auto r = SshSession::connect(o);
  auto took = Clock::now() - start;
  ::close(fd);
  ASSERT_FALSE(r.has_value());
  EXPECT_GE(took, std::chrono::milliseconds(1500));
  EXPECT_LT(took, std::chrono::milliseconds(4500));
  EXPECT_EQ(r.error().message.rfind("cannot connect to 127.0.0.1 port " + std::to_string(o.port) + ": ", 0), 0u)
      << r.error().message;
}

TEST_F(SshTest, ConnectTimeoutOptionOverridesTheField) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  SshOptions o = options();
  o.port = ntohs(a.sin_port);
  o.connect_timeout_s = 30;
  o.options = {"ConnectTimeout 1"};
  auto start = Clock::now();
  auto r = SshSession::connect(o);
  ::close(fd);
  ASSERT_FALSE(r.has_value());
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(4));
}

TEST_F(SshTest, AuthFailureNamesUserHostAndKeysTried) {
  ASSERT_NE(sh("ssh-keygen -q -t ed25519 -N '' -f " + m_dir + "/stranger"), "<failed>");
  SshOptions o = options();
  o.identities = {m_dir + "/stranger", m_dir + "/missing"};
  auto r = SshSession::connect(o);
  ASSERT_FALSE(r.has_value());
  const std::string& m = r.error().message;
  EXPECT_EQ(m.rfind("permission denied for root@127.0.0.1 (tried: publickey with " + m_dir + "/stranger", 0), 0u) << m;
  EXPECT_NE(m.find("cannot read " + m_dir + "/missing"), std::string::npos) << m;
}

TEST_F(SshTest, OptionsAndConfigFileSupplyUserAndPort) {
  SshOptions o = options();
  o.user.clear();
  o.port = 0;
  o.options = {"Port=" + std::to_string(m_port), "User root"};
  auto s = connect_ok(o);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->peer(), "root@127.0.0.1:" + std::to_string(m_port));

  // The same from the config file, through a Host alias.
  write_file(m_dir + "/ssh_config", "Host target\n  HostName 127.0.0.1\n  Port " + std::to_string(m_port) +
                                        "\n  User root\n  IdentityFile " + m_dir + "/id_user\n");
  SshOptions c = options();
  c.host = "target";
  c.user.clear();
  c.port = 0;
  c.identities.clear();
  s = connect_ok(c);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->peer(), "root@127.0.0.1:" + std::to_string(m_port));
}

TEST_F(SshTest, DefaultConfigFilesParse) {
  SshOptions o = options();
  o.config_file.clear();  // ~/.ssh/config (if any), then /etc/ssh/ssh_config
  EXPECT_NE(connect_ok(o), nullptr);
}

TEST_F(SshTest, RejectsMalformedOption) {
  SshOptions o = options();
  o.options = {"JustAKey"};
  auto r = SshSession::connect(o);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message, "bad -o option 'JustAKey' (expected Key=Value)");

  o.options = {"NoSuchKey=1"};  // ssh refuses unknown keys too
  r = SshSession::connect(o);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message, "bad -o option: unknown key 'NoSuchKey'");

  o.options = {"ServerAliveInterval=5"};  // known to ssh, not implemented by libssh: a warning
  StderrCapture err(m_dir + "/stderr");
  EXPECT_NE(connect_ok(o), nullptr);
  EXPECT_NE(err.text().find("ServerAliveInterval is not supported by libssh; ignored"), std::string::npos);
}

TEST_F(SshTest, JumpFailureSaysWhy) {
  if (::access("/usr/bin/ssh", X_OK) != 0) GTEST_SKIP() << "needs the OpenSSH client for -J";
  SshOptions o = options();
  int closed = free_port();
  o.jump = "root@127.0.0.1:" + std::to_string(closed);
  auto r = SshSession::connect(o);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("through " + o.jump + ": ssh: connect to host 127.0.0.1 port " +
                                   std::to_string(closed) + ": Connection refused"),
            std::string::npos)
      << r.error().message;
}

TEST_F(SshTest, RunCaptureReturnsStdoutAndExitStatusAndPassesStderr) {
  auto s = connect_ok(options());
  ASSERT_NE(s, nullptr);
  auto r = s->run_capture("echo hi; exit 3");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->first, 3);
  EXPECT_EQ(r->second, "hi\n");

  StderrCapture err(m_dir + "/stderr");
  r = s->run_capture("echo out; echo oops >&2; true");
  std::string e = err.text();
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(*r, (std::pair<int, std::string>{0, "out\n"}));
  EXPECT_EQ(e, "oops\n");

  r = s->run_capture("head -c 2000000 /dev/zero");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("more than 1 MiB"), std::string::npos);
}

TEST_F(SshTest, UploadWritesContentAndModeAtomically) {
  auto s = connect_ok(options());
  ASSERT_NE(s, nullptr);
  auto data = random_bytes(5 * 1000 * 1000 + 13, 1);
  std::string local = m_dir + "/payload";
  write_file(local, std::string(data.begin(), data.end()));
  std::string remote = m_dir + "/up/a/b/payload";
  auto u = s->upload(local, remote, 0751);
  ASSERT_TRUE(u.has_value()) << u.error().message;

  std::string want = sh("sha256sum < " + local);
  auto r = s->run_capture("sha256sum < " + remote + "; stat -c %a " + remote + " " + m_dir + "/up/a; ls -a " + m_dir +
                          "/up/a/b | wc -l");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->second, want + "751\n700\n3\n");  // ".", ".." and the file: no temporary left

  // Replacing an existing file works too.
  write_file(local, "second\n");
  u = s->upload(local, remote, 0600);
  ASSERT_TRUE(u.has_value()) << u.error().message;
  r = s->run_capture("cat " + remote + "; stat -c %a " + remote);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->second, "second\n600\n");
}

TEST_F(SshTest, UploadTildePathGoesToRemoteHome) {
  auto s = connect_ok(options());
  ASSERT_NE(s, nullptr);
  std::string name = ".cache/mrc-ssh-test-" + std::to_string(::getpid()) + "-" + std::to_string(m_port);
  write_file(m_dir + "/small", "hello\n");
  auto u = s->upload(m_dir + "/small", "~/" + name + "/bin", 0700);
  auto r = s->run_capture("cat \"$HOME/" + name + "/bin\"; rm -rf \"$HOME/" + name + "\"");
  ASSERT_TRUE(u.has_value()) << u.error().message;
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->second, "hello\n");
}

TEST_F(SshTest, UploadErrorNamesRemotePath) {
  auto s = connect_ok(options());
  ASSERT_NE(s, nullptr);
  write_file(m_dir + "/small", "x");
  write_file(m_dir + "/plainfile", "x");
  auto u = s->upload(m_dir + "/small", m_dir + "/plainfile/sub/x", 0600);
  ASSERT_FALSE(u.has_value());
  EXPECT_NE(u.error().message.find(m_dir + "/plainfile"), std::string::npos) << u.error().message;
}

/// Streams `data` through `command` on a bridged channel, shutting our
/// write side at the end; returns what came back and the MB/s (timed from
/// the command's start: root's login shell setup is not ours to measure).
std::pair<std::string, double> stream_through(SshSession& s, const std::string& command,
                                              const std::vector<char>& data) {
  auto fd = s.exec_bridged("echo started; " + command);
  EXPECT_TRUE(fd.has_value()) << fd.error().message;
  if (!fd) return {};
  std::string started;
  for (char c = 0; c != '\n' && ::read(fd->get(), &c, 1) == 1;) started += c;
  EXPECT_EQ(started, "started\n");
  auto start = Clock::now();
  std::thread writer([&] {
    EXPECT_TRUE(write_all(fd->get(), std::as_bytes(std::span(data.data(), data.size()))).has_value());
    ::shutdown(fd->get(), SHUT_WR);
  });
  std::string out = read_all(fd->get());
  writer.join();
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  return {out, static_cast<double>(data.size()) / 1e6 / secs};
}

TEST_F(SshTest, ExecBridgedEchoes20MiBThroughCat) {
  auto s = connect_ok(options());
  ASSERT_NE(s, nullptr);
  auto data = random_bytes(20 << 20, 2);
  auto [out, mbps] = stream_through(*s, "cat", data);
  ASSERT_EQ(out.size(), data.size());
  EXPECT_TRUE(std::equal(out.begin(), out.end(), data.begin()));
  std::printf("[   perf   ] 20 MiB through cat (both directions): %.1f MB/s\n", mbps);
  RecordProperty("cat_MBps", std::to_string(mbps));
}

TEST_F(SshTest, ExecBridgedToDevNullThroughput) {
  auto s = connect_ok(options());
  ASSERT_NE(s, nullptr);
  auto data = random_bytes(64 << 20, 3);
  auto [out, mbps] = stream_through(*s, "cat > /dev/null; echo done", data);
  EXPECT_EQ(out, "done\n");
  std::printf("[   perf   ] 64 MiB into cat > /dev/null: %.1f MB/s\n", mbps);
  RecordProperty("devnull_MBps", std::to_string(mbps));
}

TEST_F(SshTest, ExecBridgedWcCountsAfterShutdown) {
  auto s = connect_ok(options());
  ASSERT_NE(s, nullptr);
  auto data = random_bytes(3 * 1024 * 1024 + 7, 4);
  auto [out, mbps] = stream_through(*s, "wc -c", data);
  EXPECT_EQ(out, std::to_string(data.size()) + "\n");
}

TEST_F(SshTest, ExecBridgedCopiesStderrAndEndsWhenCommandExits) {
  auto s = connect_ok(options());
  ASSERT_NE(s, nullptr);
  StderrCapture err(m_dir + "/stderr");
  auto fd = s->exec_bridged("echo to-stderr >&2; echo to-stdout; exit 0");
  ASSERT_TRUE(fd.has_value()) << fd.error().message;
  EXPECT_EQ(read_all(fd->get(), std::chrono::seconds(30)), "to-stdout\n");  // returns: EOF once the command is done
  s.reset();
  EXPECT_EQ(err.text(), "to-stderr\n");
}

TEST_F(SshTest, ExecBridgedSeesEofWhenConnectionBreaks) {
  auto s = connect_ok(options());
  ASSERT_NE(s, nullptr);
  // Kill the server's session process: the TCP connection drops without a close.
  auto fd = s->exec_bridged("echo ready; sleep 0.2; kill -9 $PPID; sleep 30");
  ASSERT_TRUE(fd.has_value()) << fd.error().message;
  auto start = Clock::now();
  EXPECT_EQ(read_all(fd->get()), "ready\n");
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(10));
}

TEST_F(SshTest, DestroyingSessionStopsPumpPromptly) {
  auto s = connect_ok(options());
  ASSERT_NE(s, nullptr);
  auto fd = s->exec_bridged("sleep 60");
  ASSERT_TRUE(fd.has_value()) << fd.error().message;
  auto start = Clock::now();
  s.reset();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(3));
  EXPECT_EQ(read_all(fd->get()), "");
}

TEST_F(SshTest, JumpHostCarriesTheConnection) {
  if (::access("/usr/bin/ssh", X_OK) != 0) GTEST_SKIP() << "needs the OpenSSH client for -J";
  // -J runs OpenSSH's ssh with our -F, so the hop uses the same keys and known_hosts.
  write_file(m_dir + "/ssh_config", "Host *\n  UserKnownHostsFile " + known_hosts() + "\n  IdentityFile " + m_dir +
                                        "/id_user\n  BatchMode yes\n  StrictHostKeyChecking yes\n");
  SshOptions o = options();
  o.jump = "root@127.0.0.1:" + std::to_string(m_port);
  auto s = connect_ok(o);
  ASSERT_NE(s, nullptr);
  auto r = s->run_capture("echo $SSH_CONNECTION");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  // The target saw the jump host's sshd, not us, as the client: two sessions in the log.
  EXPECT_NE(r->second.find("127.0.0.1"), std::string::npos);
  EXPECT_GE(std::atoi(sh("grep -c 'Accepted publickey' " + m_dir + "/sshd.log").c_str()), 2);
  // The pump works over the ProxyCommand's socket as over TCP.
  auto [out, mbps] = stream_through(*s, "wc -c", random_bytes(1 << 20, 5));
  EXPECT_EQ(out, std::to_string(1 << 20) + "\n");
}

}  // namespace
}  // namespace mrc::launcher
