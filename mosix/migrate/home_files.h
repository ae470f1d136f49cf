// The home node's files for a guest (DESIGN §7; issue 5, item 5): the
// guest end answers the home end's home_files frame with a port and a
// token for a second TCP connection, the file link. The home end hands
// that connection to its user's mrc file service (headnode/service.h), so
// the link speaks mrc's file protocol (docs/protocol.md) with the shared
// Coherence behind it, and sends a JobSpec through it naming the exports.
// The guest end then does what mrc-target does before a job: a private
// mount namespace, the exports mounted over FUSE (fusefs/) at their home
// paths (target/namespace.h). The restore that follows, and the guest,
// open their files through it: the home node's files, never the host's.
// Not the migration link itself (link.h) nor the service.
#pragma once

#include <memory>

#include "common/result.h"

namespace mosix::migrate {

class HomeFiles {
 public:
  /// Serves the home end's home_files frame on `link` (the migration
  /// link, just after it came): listens on a fresh TCP port of the link's
  /// own address, sends file_port (u16 port, 32-byte token), takes one
  /// connection within `timeout_ms` that starts with the token, waits for
  /// the JobSpec that comes through it, then enters a private mount
  /// namespace (this process and its children only) with each export
  /// mounted at its path; chroots if a missing top-level mount point had
  /// to be shadowed. Sends home_files back when done. Errors: ETIMEDOUT
  /// (no connection or no spec in time), EACCES (the wrong token), the
  /// namespace's or the mount's words. The link is then still usable to
  /// send the reason.
  [[nodiscard]] static mrc::Result<std::unique_ptr<HomeFiles>> open(int link, int timeout_ms);

  /// The FUSE session lives until this process exits: its workers may
  /// sit in the kernel until the namespace dies (as in mrc-target), so
  /// the destructor leaves it alone.
  ~HomeFiles();
  HomeFiles(const HomeFiles&) = delete;
  HomeFiles& operator=(const HomeFiles&) = delete;

  /// Writes the guest made that are still buffered here go home; returns
  /// 0 once they are on the home node, or the errno of one that failed
  /// there. Call with the guest stopped or dead.
  int flush();

  struct State;

 private:
  explicit HomeFiles(State* s) : m_state(s) {}
  State* m_state;  // never freed (see ~HomeFiles)
};

}  // namespace mosix::migrate
