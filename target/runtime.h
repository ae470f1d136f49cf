// mrc-target's top-down flow (DESIGN §5): handshake → job spec → private
// namespace → FUSE mount of the head's exports → exec → relay stdio and
// signals → exit status. Not the pieces themselves (namespace.h, job.h,
// fusefs/).
#pragma once

#include <string>

namespace mrc::target {

struct ServeOptions {
  int verbosity = 0;  // -v count before the job spec says otherwise
};

/// Serves one job over stdin/stdout (the SSH channel or a local socket).
/// Returns mrc-target's exit code: 0 after reporting the job's status to
/// the head, 1 if the head went away or the session failed.
int serve(const ServeOptions& opts);

/// "<version>-<hash of this binary>": what mrc compares to decide whether
/// the target's copy is the same build (DESIGN §3).
std::string build_id();

}  // namespace mrc::target
