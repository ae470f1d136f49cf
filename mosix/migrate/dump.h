// Taking a frozen process apart (DESIGN §7): what cannot move is refused
// with the reason; the rest becomes ImageMeta (registers, xsave, signal
// state, timers, limits, mm fields, files, regions) and page runs streamed
// into an ImageWriter. The process is left stopped and untouched: letting
// it go (or turning it into the deputy) is the caller's decision.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "common/result.h"
#include "mosix/migrate/image.h"
#include "mosix/migrate/tracee.h"

namespace mosix::migrate {

/// What a dump moved, for logs and mosps.
struct DumpStats {
  uint64_t regions = 0;     ///< memory regions described
  uint64_t pages = 0;       ///< pages whose contents travelled
  uint64_t skipped = 0;     ///< pages not sent: never touched, or a file's own
  uint64_t image_bytes = 0; ///< written to the stream, bytes
};

/// Why `pid` cannot move, or nothing: more than one thread, a socket,
/// pipe or other special file that is not its stdio, a shared writable
/// mapping, a device mapping, a deleted file still open or mapped.
/// Error EOPNOTSUPP, message "cannot move: <reason>". Reads /proc only.
[[nodiscard]] Result<void> check_movable(pid_t pid);

/// The image metadata of the process `t` holds (stopped). Uses `t`'s
/// scratch page for the syscalls it injects; the page is not described.
/// Errors: check_movable's, or the process vanished (ESRCH).
[[nodiscard]] Result<ImageMeta> describe(Tracee& t);

/// describe(), then the whole image into `w`: metadata, the pages with
/// data of every region in runs of at most k_pages_per_chunk, the end.
[[nodiscard]] Result<DumpStats> dump(Tracee& t, ImageWriter& w);

/// The CpuFeature bits of this CPU (CPUID).
uint64_t cpu_features();

}  // namespace mosix::migrate
