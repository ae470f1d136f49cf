// Finding, starting and attaching to the head node's file service.
#include "mrc/service_client.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/build_id.h"
#include "common/result.h"
#include "headnode/service.h"
#include "proto/codec.h"
#include "proto/frame.h"

namespace mrc::launcher {
namespace {

constexpr const char* k_service_flag = "--internal-file-service";

/// Names the binary `exe` cheaply (no hashing of its bytes): one service
/// per build, so a rebuilt mrc never talks to an older service.
std::string binary_tag(const std::string& exe) {
  struct stat st {};
  if (::stat(exe.c_str(), &st) != 0) throw Fatal("the file service's binary " + exe + ": " + std::strerror(errno));
  uint64_t h = 1469598103934665603ULL;
  for (uint64_t v : {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                     static_cast<uint64_t>(st.st_size), static_cast<uint64_t>(st.st_mtim.tv_sec),
                     static_cast<uint64_t>(st.st_mtim.tv_nsec)})
    for (int i = 0; i < 8; ++i) h = (h ^ ((v >> (8 * i)) & 0xff)) * 1099511628211ULL;
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(h));
  std::string tag = version();
  tag += '-';
  tag.append(hex, 12);
  return tag;
}

sockaddr_un address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof(a.sun_path))
    throw Fatal("file service socket path too long: " + path + " (set MRC_RUNTIME_DIR to a shorter directory)");
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  return a;
}

UniqueFd try_connect(const std::string& path) {
  auto a = address(path);
  UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) throw Fatal(std::string("socket: ") + std::strerror(errno));
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return {};
  return s;
}

/// Binds the listening socket here (so clients can connect at once) and
/// starts the service on it: a grandchild in its own session, with no
/// descriptor of ours but the socket (an inherited SSH socket would keep
/// a dead mrc's connection open).
void start_service(const std::string& exe, const std::string& sock_path, const std::string& lock_path,
                   const std::string& log_path, int verbosity) {
  ::unlink(sock_path.c_str());
  auto a = address(sock_path);
  UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s || ::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || ::listen(s.get(), 64) != 0)
    throw Fatal("file service socket " + sock_path + ": " + std::strerror(errno));
  UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  UniqueFd log(::open(log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
  if (!devnull || !log) throw Fatal("file service log " + log_path + ": " + std::strerror(errno));
  // Everything the child needs, built before fork (no allocation after it).
  std::string v = std::to_string(verbosity);
  const char* argv[] = {"mrc", k_service_flag, "3", sock_path.c_str(), lock_path.c_str(), v.c_str(), nullptr};
  pid_t pid = ::fork();
  if (pid < 0) throw Fatal(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::setsid();
    if (::fork() != 0) ::_exit(0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(devnull.get(), 0);
    ::dup2(devnull.get(), 1);
    ::dup2(log.get(), 2);
    ::dup2(s.get(), 3);  // dup2 clears FD_CLOEXEC on 3
    ::close_range(4, ~0U, 0);
    if (::chdir("/") != 0) ::_exit(127);
    ::execv(exe.c_str(), const_cast<char* const*>(argv));
    ::_exit(127);
  }
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace

std::string service_dir() {
  std::string d;
  if (const char* e = std::getenv("MRC_RUNTIME_DIR"); e && *e)
    d = e;
  else if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x && *x)
    d = std::string(x) + "/mrc";
  else
    d = "/tmp/mrc-" + std::to_string(::getuid());
  if (::mkdir(d.c_str(), 0700) != 0 && errno != EEXIST)
    throw Fatal("file service directory " + d + ": " + std::strerror(errno));
  struct stat st {};
  if (::lstat(d.c_str(), &st) != 0) throw Fatal("file service directory " + d + ": " + std::strerror(errno));
  if (!S_ISDIR(st.st_mode) || st.st_uid != ::getuid() || (st.st_mode & 022))
    throw Fatal("file service directory " + d +
                " is not a directory of ours that only we can write to; remove it or set MRC_RUNTIME_DIR");
  return d;
}

UniqueFd attach_to_service(UniqueFd target, const std::vector<UniqueFd>& roots, const proto::AttachMsg& m,
                           int verbosity, const std::string& exe) {
  std::string dir = service_dir(), base = dir + "/fs-" + binary_tag(exe);
  std::string sock_path = base + ".sock", lock_path = base + ".lock";
  UniqueFd sock;
  {
    // Connecting under the lock: the service decides to exit under it too.
    UniqueFd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!lock || ::flock(lock.get(), LOCK_EX) != 0)
      throw Fatal("file service lock " + lock_path + ": " + std::strerror(errno));
    sock = try_connect(sock_path);
    if (!sock) {
      start_service(exe, sock_path, lock_path, base + ".log", verbosity);
      sock = try_connect(sock_path);
      if (!sock) throw Fatal("cannot reach the file service at " + sock_path + ": " + std::strerror(errno));
    }
  }
  Bytes frame = proto::encode_frame(
      proto::Frame{proto::FrameType::Control, static_cast<uint16_t>(proto::Ctl::Attach), 0, proto::encode(m)}, 0);
  std::vector<int> fds{target.get()};
  for (const auto& r : roots) fds.push_back(r.get());
  if (auto r = send_with_fds(sock.get(), frame, fds); !r)
    throw Fatal("attaching to the file service: " + r.error().message);
  return sock;
}

int maybe_run_service(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], k_service_flag) != 0) return -1;
  if (argc != 6) {
    std::fprintf(stderr, "mrc: %s is internal: FD SOCKET LOCK VERBOSITY\n", k_service_flag);
    return 2;
  }
  ::signal(SIGHUP, SIG_IGN);
  ::signal(SIGINT, SIG_IGN);
  headnode::ServiceOptions o;
  o.listen_fd = std::atoi(argv[2]);
  o.socket_path = argv[3];
  o.lock_path = argv[4];
  o.verbosity = std::atoi(argv[5]);
  set_cloexec(o.listen_fd, true);
  return headnode::run_service(o);
}

}  // namespace mrc::launcher
