// Starting mrc-target and getting a byte stream to it: a local child on a
// socketpair (`mrc local`), or an SSH exec channel with upload-on-demand
// (DESIGN §3). Ends once the handshake line has been read and checked.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "common/fd.h"
#include "mrc/cli.h"

namespace mrc::launcher {

class SshSession;

/// A started target: the stream to it (handshake already consumed) and
/// what must be kept alive while it runs.
struct TargetLink {
  UniqueFd fd;                       // read: target → us; write: us → target
  pid_t local_pid = -1;              // `mrc local`: the mrc-target child
  std::unique_ptr<SshSession> ssh;   // SSH: the session the pump owns
  std::string peer;                  // for messages: "local" or user@host:port
  TargetLink();
  TargetLink(TargetLink&&) noexcept;
  TargetLink& operator=(TargetLink&&) noexcept;
  ~TargetLink();
};

/// Path of the mrc-target binary to run or upload: --target-binary, else
/// beside our own executable. Throws Fatal if missing.
std::string target_binary_path(const Options& o);

/// Forks mrc-target serve locally. Throws Fatal naming the cause.
TargetLink start_local(const Options& o);

/// Connects over SSH, runs the target's cached mrc-target of this build
/// (uploading it by SFTP to ~/.cache/mrc/<build-id>/ if missing). Throws
/// Fatal naming the cause (host key, auth, connect, handshake).
TargetLink start_ssh(const Options& o);

/// Reads and checks the handshake line within `timeout_ms`. Returns the
/// first line if it is the upload request instead. Throws Fatal otherwise.
std::string read_handshake(int fd, int timeout_ms);

}  // namespace mrc::launcher
