// Private to mrc/ssh*.cc: the libssh state behind SshSession, and the
// helpers the connect, SFTP and pump files share. Includes libssh, so no
// other directory may include it.
#pragma once

#include <libssh/callbacks.h>
#include <libssh/libssh.h>

#include <string>
#include <thread>

#include "common/fd.h"
#include "common/result.h"

namespace mrc::launcher {

/// Ownership: the thread that called connect() owns `session` until
/// exec_bridged() starts `pump`; from then on the pump thread alone touches
/// `session` and `channel`, until ~SshState() has joined it.
struct SshState {
  ssh_session session = nullptr;
  ssh_callbacks_struct callbacks{};  // passphrase prompt; must outlive `session`
  ssh_channel channel = nullptr;     // the bridged channel (exec_bridged only)
  std::string peer;                  // "user@host:port", fixed at connect
  std::thread pump;
  UniqueFd stop_w;  // closing it tells the pump to stop

  SshState() = default;
  SshState(const SshState&) = delete;
  SshState& operator=(const SshState&) = delete;
  ~SshState();
};

/// libssh's last error on `session`, for messages.
std::string ssh_error(ssh_session session);

/// Copies `data` to our stderr, as the remote wrote it (errors ignored:
/// a closed stderr must not stop the job).
void copy_to_stderr(const char* data, size_t n);

/// The pump loop of exec_bridged: moves bytes between `channel` and
/// `local` (our end of the socketpair) until the channel closes, the
/// connection breaks, or `stop_r` becomes readable. Runs on the pump thread.
void pump_channel(ssh_session session, ssh_channel channel, UniqueFd local, UniqueFd stop_r) noexcept;

}  // namespace mrc::launcher
