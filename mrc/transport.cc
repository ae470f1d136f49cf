// Local and SSH transports to mrc-target, the upload-on-demand probe and
// the strict handshake read.
#include "mrc/transport.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "common/build_id.h"
#include "common/log.h"
#include "mrc/ssh.h"
#include "proto/handshake.h"

namespace mrc::launcher {
namespace {

/// Printed by the remote probe when this build's mrc-target is not there.
constexpr const char* k_need_upload = "MRC-NEED-UPLOAD";
/// Time for the target to start and print its handshake, ms.
constexpr int k_handshake_timeout_ms = 30000;

std::string self_dir() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return ".";
  std::string p(buf, static_cast<size_t>(n));
  return p.substr(0, p.rfind('/'));
}

std::string serve_args(const Options& o) {
  std::string a = " serve";
  for (int i = 0; i < o.verbosity; ++i) a += " -v";
  return a;
}

// The remote command: exec this build's mrc-target if the target has it
// (cache first, then PATH), else ask for an upload. POSIX sh, no quotes
// inside, so it survives any login shell via sh -c '...'.
std::string probe_command(const std::string& id, const Options& o) {
  std::string serve = serve_args(o);
  return "sh -c 'p=\"$HOME/.cache/mrc/" + id + "/mrc-target\"; if [ -x \"$p\" ]; then exec \"$p\"" +
         serve + "; fi; if [ \"$(mrc-target --version 2>/dev/null)\" = \"mrc-target " + id +
         "\" ]; then exec mrc-target" + serve + "; fi; echo " + k_need_upload + "'";
}

SshOptions ssh_options(const Options& o) {
  SshOptions s;
  std::string dest = o.destination;
  if (auto at = dest.rfind('@'); at != std::string::npos) {
    s.user = dest.substr(0, at);
    dest = dest.substr(at + 1);
  }
  // host:port, unless it is a bare IPv6 address (several colons).
  if (auto colon = dest.rfind(':'); colon != std::string::npos && dest.find(':') == colon) {
    s.port = std::atoi(dest.substr(colon + 1).c_str());
    if (s.port <= 0 || s.port > 65535) throw Fatal("bad port in destination " + o.destination);
    dest = dest.substr(0, colon);
  }
  if (dest.size() > 2 && dest.front() == '[' && dest.back() == ']') dest = dest.substr(1, dest.size() - 2);
  s.host = dest;
  if (o.port) s.port = o.port;
  s.identities = o.identities;
  s.jump = o.jump;
  s.options = o.ssh_options;
  s.accept_new = o.accept_new;
  s.config_file = o.ssh_config;
  s.verbosity = o.verbosity;
  return s;
}

}  // namespace

TargetLink::TargetLink() = default;
TargetLink::TargetLink(TargetLink&&) noexcept = default;
TargetLink& TargetLink::operator=(TargetLink&&) noexcept = default;
TargetLink::~TargetLink() = default;

std::string target_binary_path(const Options& o) {
  std::string p = o.target_binary.empty() ? self_dir() + "/mrc-target" : o.target_binary;
  if (::access(p.c_str(), X_OK) != 0)
    throw Fatal("cannot find the mrc-target binary at " + p + " (use --target-binary FILE)");
  return p;
}

std::string read_handshake(int fd, int timeout_ms) {
  std::string line;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      throw Fatal("the target sent no handshake within " + std::to_string(timeout_ms / 1000) +
                  " s (it printed: '" + line + "')");
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    char c;
    ssize_t n = ::read(fd, &c, 1);  // byte by byte: frames follow the line
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      throw Fatal(line.empty() ? "the target closed the connection before its handshake (see its messages above)"
                               : "the target closed the connection after printing '" + line + "'");
    if (c == '\n') break;
    line += c;
    if (line.size() >= proto::k_max_handshake) break;
  }
  if (line == k_need_upload) return line;
  if (auto caps = proto::parse_handshake(line); !caps) throw Fatal(caps.error().message);
  return line;
}

TargetLink start_local(const Options& o) {
  std::string bin = target_binary_path(o);
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    throw Fatal(std::string("socketpair: ") + std::strerror(errno));
  pid_t pid = ::fork();
  if (pid < 0) throw Fatal(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::dup2(sv[1], 0);
    ::dup2(sv[1], 1);
    std::vector<std::string> args{bin, "serve"};
    for (int i = 0; i < o.verbosity; ++i) args.push_back("-v");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(bin.c_str(), argv.data());
    std::fprintf(stderr, "mrc: exec %s: %s\n", bin.c_str(), std::strerror(errno));
    ::_exit(255);
  }
  ::close(sv[1]);
  TargetLink link;
  link.fd = UniqueFd(sv[0]);
  link.local_pid = pid;
  link.peer = "local";
  read_handshake(link.fd.get(), k_handshake_timeout_ms);
  return link;
}

TargetLink start_ssh(const Options& o) {
  std::string bin = target_binary_path(o);
  std::string id = build_id_of(bin);
  SshOptions so = ssh_options(o);
  auto log = logger("launch");
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto session = SshSession::connect(so);
    if (!session) throw Fatal(session.error().message);
    if (attempt == 1) {
      // This build is not on the target: upload it (no installation needed there).
      std::string remote = ".cache/mrc/" + id + "/mrc-target";
      log->info("uploading {} to {}:~/{}", bin, (*session)->peer(), remote);
      if (auto r = (*session)->upload(bin, remote, 0755); !r) throw Fatal(r.error().message);
    }
    auto fd = (*session)->exec_bridged(probe_command(id, o));
    if (!fd) throw Fatal(fd.error().message);
    TargetLink link;
    link.peer = (*session)->peer();
    link.fd = std::move(*fd);
    link.ssh = std::move(*session);
    if (read_handshake(link.fd.get(), k_handshake_timeout_ms) != k_need_upload) return link;
    if (attempt == 1) throw Fatal("the target still lacks mrc-target after uploading it to ~/.cache/mrc/" + id);
  }
  throw Fatal("unreachable");
}

}  // namespace mrc::launcher
