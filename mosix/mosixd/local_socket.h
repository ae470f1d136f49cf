// mosixd's local unix socket (docs/mosixd-socket.md): the daemon's
// non-blocking, poll-driven server and the tools' blocking query(). One
// JSON object per line each way. The messages are local_proto.h; what an op
// does is the daemon's handler, not this file.
#pragma once

#include <poll.h>
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/result.h"
#include "mosix/mosixd/local_proto.h"

namespace mosix::mosixd {

/// Answers one validated request (validate_request passed, and a mutating
/// op comes from root or the daemon's uid). Returns the reply object. An
/// exception it throws becomes {"ok":false,"error":"internal error: ..."}.
using Handler = std::function<nlohmann::json(const nlohmann::json& request)>;

/// Permissions of the socket file: everyone may connect (queries are
/// harmless); the server itself refuses mutating ops to other users.
inline constexpr mode_t k_socket_mode = 0666;
/// Permissions of directories the server creates above the socket.
inline constexpr mode_t k_socket_dir_mode = 0755;

/// The server's bounds; each keeps one bad or slow client from costing the
/// daemon more than a little memory.
struct ServerLimits {
  size_t max_clients = 64;               ///< connections beyond this get an error line and are closed
  size_t max_line = k_max_request_line;  ///< bytes; a longer request gets an error and the connection is closed
  size_t max_output = 64u << 20;         ///< bytes queued to one client; beyond it the client is dropped
  std::chrono::milliseconds idle_timeout{60000};  ///< a client silent this long is dropped
};

/// The listening socket and its clients. Single-threaded: the daemon's
/// loop thread owns it and drives it with poll():
///
///   std::vector<pollfd> fds = {udp, timer};
///   server.add_poll_fds(fds);                  // appends ours
///   ::poll(fds.data(), fds.size(), timeout_ms);
///   server.handle_ready(fds);                  // ignores fds not ours
///
/// handle_ready is to be called after every poll() return, ready or not:
/// it also drops idle clients.
class LocalServer {
 public:
  /// Creates the socket at `path`: makes missing parent directories (0755),
  /// removes a stale socket (nobody answers on it), refuses if a daemon
  /// answers on it (EADDRINUSE) or the path is not a socket (EEXIST).
  [[nodiscard]] static mrc::Result<LocalServer> open(const std::string& path, Handler handler,
                                                     ServerLimits limits = {});

  LocalServer(LocalServer&&) = default;
  LocalServer& operator=(LocalServer&&) = delete;  // would leave the old socket file behind
  /// Closes every connection and removes the socket file if it is still ours.
  ~LocalServer();

  /// Appends the listening socket and every client with the events it waits for.
  void add_poll_fds(std::vector<pollfd>& fds) const;
  /// Accepts, reads, answers and writes for every entry of `fds` that is
  /// ours and ready, then drops idle clients. Never throws.
  void handle_ready(std::span<const pollfd> fds);

  const std::string& path() const { return m_path; }
  size_t client_count() const { return m_clients.size(); }

 private:
  struct Client {
    mrc::UniqueFd fd;
    uid_t uid = 0;         // peer uid (SO_PEERCRED) at connect
    std::string in;        // bytes read, not yet a whole line
    std::string out;       // reply bytes not yet written
    bool closing = false;  // close once `out` is written (after an over-long line)
    std::chrono::steady_clock::time_point last_active;
  };

  LocalServer(std::string path, mrc::UniqueFd fd, ino_t ino, Handler handler, ServerLimits limits);
  void accept_all();
  // Each returns false when the client is to be dropped.
  bool read_from(Client& c);
  bool write_to(Client& c);
  void answer(Client& c, std::string_view line);

  std::string m_path;
  mrc::UniqueFd m_listen;
  ino_t m_ino = 0;  // inode of our socket file, so the destructor removes only ours
  Handler m_handler;
  ServerLimits m_limits;
  uid_t m_uid = 0;                  // the daemon's euid: it may mutate, as may root
  std::map<int, Client> m_clients;  // by fd
};

/// Sends `request` to the daemon on `socket_path` and waits up to `timeout`
/// in total for its one-line reply. The reply is returned as is (it may be
/// {"ok":false,...}: see check_reply). Errors: "cannot connect to PATH:
/// No such file or directory — is mosixd running?", ETIMEDOUT when no
/// answer comes in time, EPROTO for a closed connection or a malformed reply.
[[nodiscard]] mrc::Result<nlohmann::json> query(const std::string& socket_path, const nlohmann::json& request,
                                                std::chrono::milliseconds timeout);

}  // namespace mosix::mosixd
