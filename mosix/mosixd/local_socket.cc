// LocalServer (non-blocking accept/read/answer/write over AF_UNIX) and the
// client's query(). Framing: one JSON object per '\n'-terminated line.
#include "mosix/mosixd/local_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/log.h"

namespace mosix::mosixd {
namespace {

using nlohmann::json;
using clock = std::chrono::steady_clock;

constexpr int k_backlog = 64;     // pending connects; tools connect briefly, one at a time
constexpr size_t k_chunk = 4096;  // bytes per read

mrc::Result<sockaddr_un> unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path)
    return mrc::fail(ENAMETOOLONG, "socket path \"" + path + "\" is empty or longer than " +
                                       std::to_string(sizeof addr.sun_path - 1) + " bytes");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

// mkdir -p of the directories above `path`; existing ones are left as they are.
mrc::Result<void> make_parents(const std::string& path) {
  for (size_t slash = path.find('/', 1); slash != std::string::npos; slash = path.find('/', slash + 1)) {
    std::string dir = path.substr(0, slash);
    if (::mkdir(dir.c_str(), k_socket_dir_mode) == 0) {
      ::chmod(dir.c_str(), k_socket_dir_mode);  // whatever the umask: tools of every user must reach the socket
    } else if (errno != EEXIST) {
      return mrc::fail_errno("cannot create directory " + dir);
    }
  }
  return {};
}

// A socket file already at `path`: refuse if a daemon answers on it,
// remove it if it is stale. (Two daemons starting in the same instant can
// still race here; systemd runs one.)
mrc::Result<void> clear_stale(const std::string& path, const sockaddr_un& addr) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return mrc::fail_errno("cannot check " + path);
  }
  if (!S_ISSOCK(st.st_mode)) return mrc::fail(EEXIST, path + " exists and is not a socket; not replacing it");
  mrc::UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!probe) return mrc::fail_errno("socket");
  if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0)
    return mrc::fail(EADDRINUSE, "another daemon is answering on " + path);
  if (errno != ECONNREFUSED) return mrc::fail_errno("cannot check the existing socket " + path);
  if (::unlink(path.c_str()) != 0) return mrc::fail_errno("cannot remove the stale socket " + path);
  mrc::logger("local")->info("removed stale socket {}", path);
  return {};
}

// Milliseconds left until `deadline`, rounded up, at least 0.
int ms_left(clock::time_point deadline) {
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now()).count();
  return left > 0 ? static_cast<int>(std::min<long long>(left, INT32_MAX)) : 0;
}

}  // namespace

mrc::Result<LocalServer> LocalServer::open(const std::string& path, Handler handler, ServerLimits limits) {
  auto addr = unix_address(path);
  if (!addr) return tl::unexpected(addr.error());
  if (auto r = make_parents(path); !r) return tl::unexpected(r.error());
  if (auto r = clear_stale(path, *addr); !r) return tl::unexpected(r.error());
  mrc::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return mrc::fail_errno("socket");
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) != 0)
    return mrc::fail_errno("cannot bind " + path);
  // bind applied the umask; set the documented mode before anyone can connect.
  struct stat st {};
  if (::chmod(path.c_str(), k_socket_mode) != 0 || ::stat(path.c_str(), &st) != 0) {
    auto err = mrc::fail_errno("cannot set the mode of " + path);
    ::unlink(path.c_str());
    return err;
  }
  if (::listen(fd.get(), k_backlog) != 0) {
    auto err = mrc::fail_errno("cannot listen on " + path);
    ::unlink(path.c_str());
    return err;
  }
  return LocalServer(path, std::move(fd), st.st_ino, std::move(handler), limits);
}

LocalServer::LocalServer(std::string path, mrc::UniqueFd fd, ino_t ino, Handler handler, ServerLimits limits)
    : m_path(std::move(path)),
      m_listen(std::move(fd)),
      m_ino(ino),
      m_handler(std::move(handler)),
      m_limits(limits),
      m_uid(::geteuid()) {}

LocalServer::~LocalServer() {
  if (!m_listen) return;  // moved from
  m_clients.clear();
  struct stat st {};
  if (::lstat(m_path.c_str(), &st) == 0 && st.st_ino == m_ino) ::unlink(m_path.c_str());
}

void LocalServer::add_poll_fds(std::vector<pollfd>& fds) const {
  fds.push_back(pollfd{m_listen.get(), POLLIN, 0});
  for (const auto& [fd, c] : m_clients) {
    // While a reply is pending we stop reading: a client that never reads
    // cannot make us buffer its requests' replies without bound.
    short events = c.out.empty() ? (c.closing ? 0 : POLLIN) : POLLOUT;
    fds.push_back(pollfd{fd, events, 0});
  }
}

void LocalServer::handle_ready(std::span<const pollfd> fds) {
  auto now = clock::now();
  for (const pollfd& p : fds) {
    if (p.revents == 0) continue;
    if (p.fd == m_listen.get()) {
      accept_all();
      continue;
    }
    auto it = m_clients.find(p.fd);
    if (it == m_clients.end()) continue;
    Client& c = it->second;
    bool keep = true;
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) keep = read_from(c);
    if (keep && !c.out.empty()) keep = write_to(c);  // most replies fit the socket buffer at once
    if (keep && c.closing && c.out.empty()) keep = false;
    if (keep)
      c.last_active = now;
    else
      m_clients.erase(it);
  }
  std::erase_if(m_clients, [&](const auto& kv) { return now - kv.second.last_active > m_limits.idle_timeout; });
}

void LocalServer::accept_all() {
  for (;;) {
    int fd = ::accept4(m_listen.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        mrc::logger("local")->warn("accept on {}: {}", m_path, std::strerror(errno));
      return;
    }
    mrc::UniqueFd cfd(fd);
    if (m_clients.size() >= m_limits.max_clients) {
      std::string line =
          error_reply("too many clients (" + std::to_string(m_limits.max_clients) + "); try again").dump() + "\n";
      (void)!::send(fd, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      continue;
    }
    ucred cred{};
    socklen_t len = sizeof cred;
    Client c;
    // Unknown peers get a uid that is neither root nor ours: queries only.
    c.uid = ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 ? cred.uid : static_cast<uid_t>(-1);
    c.fd = std::move(cfd);
    c.last_active = clock::now();
    m_clients.emplace(fd, std::move(c));
  }
}

bool LocalServer::read_from(Client& c) {
  char buf[k_chunk];
  for (;;) {
    ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
    if (n == 0) {  // the client is done sending: answer what came, then close
      c.closing = true;
      return true;
    }
    c.in.append(buf, static_cast<size_t>(n));
    for (size_t nl; !c.closing && (nl = c.in.find('\n')) != std::string::npos;) {
      std::string line = c.in.substr(0, nl);
      c.in.erase(0, nl + 1);
      answer(c, line);
    }
    if (!c.closing && c.in.size() > m_limits.max_line) {
      // No way to find the next request in an unbounded line: say why, close.
      c.out += error_reply("request line longer than " + std::to_string(m_limits.max_line) + " bytes").dump() + "\n";
      c.closing = true;
    }
    if (c.closing) c.in.clear();
    if (c.out.size() > m_limits.max_output) return false;
    if (!c.out.empty() || c.closing) return true;  // write first (add_poll_fds stops reading meanwhile)
  }
}

bool LocalServer::write_to(Client& c) {
  size_t done = 0;
  while (done < c.out.size()) {
    ssize_t n = ::send(c.fd.get(), c.out.data() + done, c.out.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return false;  // EPIPE, ECONNRESET: the client went away
    }
    done += static_cast<size_t>(n);
  }
  c.out.erase(0, done);
  return true;
}

void LocalServer::answer(Client& c, std::string_view line) {
  if (line.ends_with('\r')) line.remove_suffix(1);
  if (line.find_first_not_of(" \t") == std::string_view::npos) return;  // blank lines are ignored
  json reply;
  if (line.size() > m_limits.max_line) {
    reply = error_reply("request line longer than " + std::to_string(m_limits.max_line) + " bytes");
    c.closing = true;
  } else {
    json req;
    mrc::Result<const OpSpec*> spec = nullptr;
    try {
      req = json::parse(line);
      spec = validate_request(req);
    } catch (const json::parse_error& e) {
      // e.what() is "[json.exception.parse_error.101] parse error at line 1, column 2: ..."
      std::string_view what = e.what();
      if (size_t at = what.find("] "); at != std::string_view::npos) what.remove_prefix(at + 2);
      spec = mrc::fail(EINVAL, "malformed JSON request: " + std::string(what));
    }
    if (!spec) {
      reply = error_reply(spec.error().message);
    } else if ((*spec)->mutates == Mutates::yes && c.uid != 0 && c.uid != m_uid) {
      reply = error_reply("permission denied: \"" + std::string((*spec)->name) + "\" is for root or uid " +
                          std::to_string(m_uid));
    } else {
      // The handler is the daemon's code: its exceptions end this request, never the daemon.
      try {
        reply = m_handler(req);
        if (!reply.is_object()) reply = error_reply("internal error: the daemon's answer is not an object");
      } catch (const std::exception& e) {
        reply = error_reply(std::string("internal error: ") + e.what());
      }
    }
  }
  c.out += reply.dump(-1, ' ', false, json::error_handler_t::replace);
  c.out += '\n';
}

mrc::Result<json> query(const std::string& socket_path, const json& request, std::chrono::milliseconds timeout) {
  auto deadline = clock::now() + timeout;
  auto addr = unix_address(socket_path);
  if (!addr) return tl::unexpected(addr.error());
  mrc::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return mrc::fail_errno("socket");
  // A unix connect blocks only while the backlog is full; bound that too.
  const auto t = std::max(timeout, std::chrono::milliseconds(1));  // a zero SO_SNDTIMEO would mean "forever"
  timeval tv{static_cast<time_t>(t.count() / 1000), static_cast<suseconds_t>(t.count() % 1000 * 1000)};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) != 0) {
    int e = errno;
    std::string hint = (e == ENOENT || e == ECONNREFUSED) ? " — is mosixd running?" : "";
    return mrc::fail(e == EAGAIN ? ETIMEDOUT : e, "cannot connect to " + socket_path + ": " + std::strerror(e) + hint);
  }
  mrc::set_nonblocking(fd.get(), true);
  auto no_answer = [&] {
    return mrc::fail(ETIMEDOUT,
                     "mosixd on " + socket_path + " did not answer within " + std::to_string(timeout.count()) + " ms");
  };

  std::string out = request.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  for (size_t done = 0; done < out.size();) {
    pollfd p{fd.get(), POLLOUT, 0};
    int ready = ::poll(&p, 1, ms_left(deadline));
    if (ready == 0) return no_answer();
    if (ready < 0 && errno != EINTR) return mrc::fail_errno("poll");
    ssize_t n = ::send(fd.get(), out.data() + done, out.size() - done, MSG_NOSIGNAL);
    // A daemon that refuses us (too many clients) writes why and closes:
    // read that rather than report the broken pipe.
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) break;
    if (n < 0 && errno != EINTR && errno != EAGAIN) return mrc::fail_errno("cannot send to mosixd on " + socket_path);
    if (n > 0) done += static_cast<size_t>(n);
  }

  std::string in;
  for (;;) {
    pollfd p{fd.get(), POLLIN, 0};
    int ready = ::poll(&p, 1, ms_left(deadline));
    if (ready == 0) return no_answer();
    if (ready < 0) {
      if (errno == EINTR) continue;
      return mrc::fail_errno("poll");
    }
    char buf[k_chunk];
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return mrc::fail_errno("cannot read from mosixd on " + socket_path);
    }
    if (n == 0) return mrc::fail(EPROTO, "mosixd on " + socket_path + " closed the connection without answering");
    size_t old = in.size();
    in.append(buf, static_cast<size_t>(n));
    if (size_t nl = in.find('\n', old); nl != std::string::npos) {
      in.resize(nl);
      break;
    }
    if (in.size() > k_max_reply_line)
      return mrc::fail(EPROTO, "reply from mosixd on " + socket_path + " is longer than " +
                                   std::to_string(k_max_reply_line) + " bytes");
  }
  json reply = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (reply.is_discarded() || !reply.is_object())
    return mrc::fail(EPROTO, "malformed reply from mosixd on " + socket_path);
  return reply;
}

}  // namespace mosix::mosixd
