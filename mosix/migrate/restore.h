// Putting a process back from an image (DESIGN §7): we fork a child that
// reopens the image's files at their numbers, offsets and flags, enters the
// image's cwd and umask and waits; we seize it and, by syscalls injected
// through a trampoline page, replace its address space with the image's
// (the vdso moved to where the image expects it), then its signal state,
// timers, limits, mm fields and registers, and let it go. Same kernel
// only: the image's vdso must be this kernel's. Not the deputy or the
// two-phase commit: those are the callers'.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>

#include "common/result.h"
#include "mosix/migrate/image.h"
#include "mosix/migrate/tracee.h"

namespace mosix::migrate {

/// What a restore did, for logs and mosps.
struct RestoreStats {
  uint64_t regions = 0;             ///< mappings made
  uint64_t pages = 0;               ///< pages written
  uint64_t image_bytes = 0;         ///< read from the stream, bytes
  std::array<ITimer, 3> itimers{};  ///< the image's, for release_restored()
};

/// A restored process, held stopped just before it would run again: the
/// caller lets it go (release()) - or kills it, if the second phase of a
/// migration fails.
struct Restored {
  Tracee tracee;
  RestoreStats stats;
  /// The image's interval timers (stats.itimers) armed, then detached: the process runs on
  /// from where the image was taken.
  [[nodiscard]] Result<void> release();
};

/// Arms `itimers` in `t` (the image's ITIMER_REAL, _VIRTUAL, _PROF) and
/// detaches it. Last, so a timer cannot fire while the process is still
/// held: a signal delivered before it re-enters the syscall it was frozen
/// in (pause(), a sleep) would be taken before the syscall, not in it.
[[nodiscard]] Result<void> release_restored(Tracee& t, const std::array<ITimer, 3>& itimers);

/// Why this machine cannot run the image, or nothing: another machine
/// type, CPU features the image may use and this CPU lacks, a vdso of
/// another size. Error ENOEXEC with "cannot restore: <reason>".
[[nodiscard]] Result<void> check_restorable(const ImageMeta& meta);

/// Reads the image from `reader` (begin() not yet called) and rebuilds the
/// process as a child of this process. Everything up to the registers is
/// done; a failure kills the half-built child and names the cause. Its
/// stdin, stdout and stderr are ours, or `stdio`'s where not -1 (a guest's
/// relay pipes), unless the image has a file of its own there.
/// It forks: other threads of this process must not hold what the child
/// needs before it is seized (it opens files, allocates, never logs) - a
/// guest end's FUSE workers, which serve the child's opens, do not. This
/// process must be privileged enough for PR_SET_MM_MAP and, for an image
/// of another user, for setresuid (root). The image's credentials are
/// given back last.
[[nodiscard]] Result<Restored> restore(ImageReader& reader, const std::array<int, 3>& stdio = {-1, -1, -1});

/// Rebuilds the image in `t`, a process we hold stopped - a deputy, whose
/// memory is gone - so that it keeps its PID and parent: the way home.
/// Its files become the image's (an fd still on the image's path keeps
/// its open file, at the image's offset; others are opened; those the
/// image lacks are closed; relayed stdio stays), then its cwd, umask,
/// memory and state as restore() does. The caller detaches it. Errors as
/// restore(); after one, `t`'s address space is in pieces.
/// The image's timers are in RestoreStats::itimers: release with
/// release_restored().
[[nodiscard]] Result<RestoreStats> restore_into(Tracee& t, ImageReader& reader);

}  // namespace mosix::migrate
