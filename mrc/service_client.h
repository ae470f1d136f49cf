// mrc's side of the head node's file service (headnode/service.h): find
// this user's service for this build, start it if none runs, and attach a
// target to it. Not the service itself.
#pragma once

#include <string>
#include <vector>

#include "common/fd.h"
#include "proto/messages.h"

namespace mrc::launcher {

/// Where the service's socket, lock and log live: $MRC_RUNTIME_DIR, else
/// $XDG_RUNTIME_DIR/mrc, else /tmp/mrc-<uid>. Created 0700; refused
/// (Fatal) if it belongs to another user or others can write to it.
std::string service_dir();

/// Attaches `target` and the export roots (one directory fd per export,
/// or none: the service opens the paths) to the service of the mrc binary
/// `exe` (starting it as a detached process of that binary if needed) and
/// returns the socket over which the job's stdio and control now pass.
/// mosrun passes the mrc installed beside it, so that migrated processes
/// and mrc jobs share one service. Throws Fatal naming the cause.
UniqueFd attach_to_service(UniqueFd target, const std::vector<UniqueFd>& roots, const proto::AttachMsg& m,
                           int verbosity, const std::string& exe = "/proc/self/exe");

/// The hidden command line of the service process:
/// `mrc --internal-file-service FD SOCKET LOCK VERBOSITY`. Returns the
/// process's exit status, or -1 if argv is not that command.
int maybe_run_service(int argc, char** argv);

}  // namespace mrc::launcher
