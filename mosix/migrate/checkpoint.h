// Checkpoint files (DESIGN §7): a process image written to a file, the same
// bytes as a migration stream, and a process recovered from one. The
// checkpointed process keeps running (it is frozen only while its image is
// taken). Used by mosrun (-C, -A, -R) and migrate PID checkpoint.
#pragma once

#include <sys/types.h>

#include <string>

#include "common/result.h"
#include "mosix/migrate/dump.h"
#include "mosix/migrate/restore.h"

namespace mosix::migrate {

/// Freezes `pid`, writes its image to `path` (via `path`.part, fsync'ed,
/// then renamed: a crash never leaves a half file under the name), and
/// lets it run on. Errors name the cause: the process cannot move
/// (EOPNOTSUPP), the disk is full (ENOSPC), no permission (EPERM).
[[nodiscard]] Result<DumpStats> checkpoint_to_file(pid_t pid, const std::string& path, int zstd_level = 1);

/// The image of `t` (held stopped) written to `path` the same way (via
/// `path`.part, fsync, rename); `t` stays held. Errors as above.
[[nodiscard]] Result<DumpStats> dump_to_file(Tracee& t, const std::string& path, int zstd_level = 1);

/// Reads the image in `path` into `t`, a process we hold whose memory is
/// gone (a frozen one), keeping its PID (restore_into), and lets it run
/// on. Errors: as recover_from_file; after one, `t` is in pieces.
[[nodiscard]] Result<void> continue_from_file(Tracee& t, const std::string& path);

/// Recovers the process in the checkpoint file `path` as a child of this
/// process, running. Errors: the file is not an image or is damaged
/// (EINVAL, naming what is wrong), this machine cannot run it (ENOEXEC).
[[nodiscard]] Result<pid_t> recover_from_file(const std::string& path);

}  // namespace mosix::migrate
