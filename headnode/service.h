// The head node's file service: one process per user and build that
// serves every target of every mrc of that user (docs/design.md, "One file
// service per head node"), so they all share one Coherence and see one
// coherent file system. mrc attaches a target by passing the target link
// and the export roots over a unix socket; the service then serves the
// file protocol on the link itself and relays the job's other traffic
// (stdio, signals, exit status) between the link and that mrc.
// Not the launcher's side of attaching (mrc/service_client.h).
#pragma once

#include <chrono>
#include <string>

namespace mrc::headnode {

struct ServiceOptions {
  int listen_fd = -1;        ///< bound, listening unix socket (inherited)
  std::string socket_path;   ///< its path: unlinked when the service exits
  std::string lock_path;     ///< flock(2) file that serializes start and exit with clients
  /// With no target attached this long, the service exits; mrc starts a new
  /// one on demand, ms.
  std::chrono::milliseconds linger{10000};
  int verbosity = 0;  ///< log level, as -v counts; the log is stderr
};

/// Runs the service until it has been idle for `linger`. Returns the exit
/// status (0; 1 if the socket fails).
int run_service(const ServiceOptions& opts);

}  // namespace mrc::headnode
