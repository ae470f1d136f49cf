// Kernel side of a FUSE mount, without libfuse: mount(2) of /dev/fuse,
// finding the mount in /proc/self/mountinfo, its bdi tunables, lazy
// unmount. We mount ourselves (and hand libfuse "/dev/fd/N") so errors name
// their cause and unmount never touches a mount that is not ours.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/fd.h"
#include "common/result.h"

namespace mrc::fusefs {

/// One line of /proc/self/mountinfo (the fields we use).
struct MountEntry {
  std::string dev;          ///< "maj:min" of the mounted filesystem
  std::string mount_point;  ///< unescaped (\040 → ' ')
  std::string fstype;       ///< "fuse.mrc", "ext4", ...
  std::string source;
};

/// Parses mountinfo text; malformed lines are skipped.
std::vector<MountEntry> parse_mountinfo(std::string_view text);

/// The mount on top at `path` (the last one listed there), if any.
std::optional<MountEntry> top_mount_at(const std::vector<MountEntry>& mounts, std::string_view path);

/// Reads /proc/self/mountinfo and returns the top mount at `path`.
std::optional<MountEntry> current_mount_at(const std::string& path);

/// Opens /dev/fuse and mounts it at `mountpoint` (an existing directory,
/// canonical) as type "fuse.<subtype>", source `fsname`, nosuid+nodev;
/// with `allow_other`, every user may use it and the kernel checks their
/// access by the files' modes (allow_other,default_permissions: a mount
/// in a private namespace whose processes run as another user than ours);
/// else only our user, unchecked. Returns the /dev/fuse descriptor.
/// Errors name the step and errno ("mount fuse.mrc on /x: Permission denied").
[[nodiscard]] Result<UniqueFd> mount_fuse(const std::string& mountpoint, const std::string& fsname,
                                          const std::string& subtype, bool allow_other = false);

/// Writes `kb` to /sys/class/bdi/<dev>/read_ahead_kb.
[[nodiscard]] Result<void> set_bdi_read_ahead(const std::string& dev, unsigned kb);

/// /sys/fs/fuse/connections/<n> of the FUSE mount with device `dev` ("maj:min").
std::string fusectl_dir(const std::string& dev);

/// Aborts the FUSE connection of `dev` through fusectl: every request in
/// flight and to come fails with ENOTCONN, and the daemon's reads end.
[[nodiscard]] Result<void> abort_connection(const std::string& dev);

/// Lazily unmounts `mountpoint` (MNT_DETACH) if the top mount there is
/// still `dev`; returns false if something else is on top (left alone).
[[nodiscard]] Result<bool> detach_if_ours(const std::string& mountpoint, const std::string& dev);

}  // namespace mrc::fusefs
