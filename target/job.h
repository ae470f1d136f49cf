// The job process on the target: spawned with the head node's argv, cwd
// and environment, on pipes or a pseudo-terminal, in its own process
// group (its own session with a pty). Not the relay (target/runtime.cc).
#pragma once

#include <sys/types.h>

#include <string>

#include "common/fd.h"
#include "common/result.h"
#include "proto/messages.h"

namespace mrc::target {

/// A running job and our ends of its stdio.
struct Job {
  pid_t pid = -1;       // also its process group id
  UniqueFd stdin_fd;    // we write (the pty master when pty)
  UniqueFd stdout_fd;   // we read (the pty master when pty)
  UniqueFd stderr_fd;   // we read (none when pty: merged, as with ssh -t)
  bool pty = false;
};

/// Forks and execs spec.argv (PATH lookup in the job's environment) with
/// cwd spec.cwd, chrooted to `root_fd` first when it is ≥ 0. Errors: fork
/// or pty failure; exec failure is reported as the job's own outcome by
/// spawn (the returned Error names the command, code ENOENT/EACCES).
[[nodiscard]] Result<Job> spawn_job(const proto::JobSpec& spec, int root_fd);

/// Sets the pty window size (rows × cols, characters).
void set_window_size(int pty_fd, uint16_t rows, uint16_t cols);

}  // namespace mrc::target
