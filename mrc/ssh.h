// The SSH transport of the launcher (DESIGN §3): connect with OpenSSH's
// config, known_hosts and keys; run short probes; upload by SFTP; bridge
// one exec channel to a local socketpair pumped by a thread. libssh stays
// behind the pimpl: only mrc/ssh*.cc include it. Not a general SSH client
// (no pty, no forwarding, no password auth).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/fd.h"
#include "common/result.h"

namespace mrc::launcher {

struct SshState;  // the libssh session and pump thread, defined in mrc/ssh_state.h

struct SshOptions {
  std::string host;                     // as typed: alias from ~/.ssh/config, hostname or IP
  std::string user;                     // empty: from config or the local user
  int port = 0;                         // 0: from config or 22
  std::vector<std::string> identities;  // -i files, tried before the agent's/default keys
  std::string jump;                     // -J [user@]host[:port] (ProxyJump); empty: config's if any
  std::vector<std::string> options;     // -o "Key=Value" (also "Key Value"), applied like ssh's -o, after config
  bool accept_new = false;              // unknown host key: add it to known_hosts instead of refusing
  int connect_timeout_s = 10;           // TCP connect + key exchange limit (ConnectTimeout overrides)
  std::string config_file;              // empty: ~/.ssh/config (then /etc/ssh/ssh_config)
  std::string known_hosts;              // empty: ~/.ssh/known_hosts
  int verbosity = 0;                    // -v count; ≥3 turns on libssh's own log to stderr
};

class SshSession {
 public:
  /// Connects, verifies the host key against known_hosts, authenticates (agent, -i identities, default
  /// keys ~/.ssh/id_ed25519, id_ecdsa, id_rsa). Errors are one sentence naming the cause, like ssh:
  ///  unknown host key → "host key for HOST (ED25519 SHA256:...) is not known; verify it and add it to
  ///    ~/.ssh/known_hosts, or run mrc with --accept-new"; changed key → a loud refusal naming the known_hosts file;
  ///  unreachable → "cannot connect to HOST port N: <reason>" within connect_timeout_s;
  ///  auth failure → "permission denied for USER@HOST (tried: publickey ...)".
  static Result<std::unique_ptr<SshSession>> connect(const SshOptions& o);
  ~SshSession();
  SshSession(const SshSession&) = delete;
  SshSession& operator=(const SshSession&) = delete;

  /// Runs `command` (via the remote user's shell, like ssh) and returns its stdout and exit status;
  /// stderr is passed to our stderr. For short probes only (whole output buffered, ≤ 1 MiB).
  /// The status is -1 if the command reported none (killed by a signal).
  Result<std::pair<int, std::string>> run_capture(const std::string& command);
  /// Uploads `local_path` over SFTP to `remote_path` (relative paths are relative to the remote home;
  /// "~/" prefix accepted), creating parent directories (mode 0700), writing to a temporary name then
  /// renaming into place, and setting `mode`. Errors name the remote path and the SFTP error.
  Result<void> upload(const std::string& local_path, const std::string& remote_path, unsigned mode);
  /// Execs `command` on a new channel and bridges it to a local socketpair: returns our end (read =
  /// the command's stdout, write = its stdin; shutdown(SHUT_WR) or close → EOF to the command). The
  /// command's stderr is copied to our stderr (fd 2) as it arrives. A pump thread owns the libssh
  /// session from then on (libssh is not thread-safe; after this call no other method may be used,
  /// except peer()). When the remote side closes or the connection breaks, our end sees EOF.
  /// Writes to our end after the pump has ended raise SIGPIPE unless the caller ignores it.
  Result<UniqueFd> exec_bridged(const std::string& command);
  /// "user@host:port" actually connected to (for messages).
  std::string peer() const;

  explicit SshSession(std::unique_ptr<SshState> state);  // used by connect()

 private:
  std::unique_ptr<SshState> m_state;
};

}  // namespace mrc::launcher
