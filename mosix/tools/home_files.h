// mosrun's side of a migrated process's home files (DESIGN §7; issue 5,
// item 5): which of this node's directories the process sees while it
// runs elsewhere, and the hand-over of the file link to this user's mrc
// file service (mrc/service_client.h), shared with mrc's own jobs so that
// every one of them sees one coherent file system. The guest end's side
// is mosix/migrate/home_files.h.
#pragma once

#include <string>
#include <vector>

#include "common/fd.h"
#include "common/result.h"
#include "proto/messages.h"

namespace mosix::tools {

/// What a migrated process sees of its home node: every directory at the
/// top of `root` (its real path, not a symlink such as /bin -> usr/bin)
/// but the kernel's interfaces, which stay the destination's: /proc, /sys
/// and /dev - though /dev/shm, which holds files like any other
/// directory, is home's. Sorted by path. Errors: opendir's.
[[nodiscard]] mrc::Result<std::vector<mrc::proto::ExportSpec>> home_exports(const std::string& root = "/");

/// The mrc whose file service serves the home files: `mrc` beside this
/// binary (/proc/self/exe). Errors: ENOENT naming where it looked.
[[nodiscard]] mrc::Result<std::string> mrc_beside_us();

struct HomeFilesOptions {
  std::string mrc;               ///< the mrc binary whose file service to use
  std::string where;             ///< the destination, for the service's messages
  int link_timeout_ms = 60'000;  ///< a guest silent this long is cut off (AttachMsg.grace_ms)
};

/// Hands `file_link` (connected to the guest end, its token sent) to the
/// file service, with the exports of home_exports(), and sends the guest
/// end the JobSpec that names them (through the service, as mrc does).
/// Returns the service's socket: closing it ends the file link. Errors:
/// EIO with the service's words (it could not start, its socket is not
/// ours, ...).
[[nodiscard]] mrc::Result<mrc::UniqueFd> attach_home_files(mrc::UniqueFd file_link, const HomeFilesOptions& o);

}  // namespace mosix::tools
