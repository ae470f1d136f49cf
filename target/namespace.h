// The target's private view of the file tree (DESIGN §5): a private mount
// namespace (plus a user namespace when not root), the head node's
// exports bind-mounted at their head-node paths, missing mount points
// created on a private tmpfs "shadow" without touching the target's real
// tree. Not the FUSE client (fusefs/) nor the job (target/job.h).
#pragma once

#include <string>
#include <vector>

#include "common/fd.h"
#include "common/result.h"
#include "proto/messages.h"

namespace mrc::target {

/// Enters a new mount namespace whose mounts are all private (and, when
/// not root, a user namespace mapping our uid/gid to root inside, so FUSE
/// and bind mounts are allowed — Linux ≥ 4.18). Errors: unshare/mount errno.
[[nodiscard]] Result<void> enter_private_namespace();

/// Builds the job's view inside the private namespace. Owns a private
/// tmpfs staging area for the FUSE mount point and shadows.
class View {
 public:
  /// Mounts a tmpfs staging area on a fresh directory under /tmp (or
  /// $TMPDIR). Errors name the directory.
  [[nodiscard]] static Result<View> create();
  View(View&&) = default;
  View& operator=(View&&) = default;

  /// Where the FUSE client must mount (an empty dir in the staging area).
  const std::string& fuse_dir() const { return m_fuse_dir; }

  /// Makes a private copy of each keep-local subtree (the target's own
  /// directory, or an empty scratch dir if the target lacks it) before the
  /// exports hide it.
  [[nodiscard]] Result<void> stash_keep_local(const std::vector<std::string>& paths);
  /// Bind-mounts export i of the FUSE mount (fuse_dir()/i) at its path;
  /// read-only exports are also remounted MS_RDONLY. Exports are mounted
  /// parents first. Errors name the export path and the cause.
  [[nodiscard]] Result<void> mount_exports(const std::vector<proto::ExportSpec>& exports);
  /// Puts the stashed keep-local subtrees back over the exports.
  [[nodiscard]] Result<void> mount_keep_local();
  /// Detaches the staging area from the tree (the mounts made from it
  /// stay) and removes its directory, so nothing is left on the target.
  void seal();

  /// A directory fd the job must chroot to (fchdir + chroot(".")), or -1
  /// for none: set by seal() when "/" itself had to be shadowed to create
  /// a missing top-level mount point.
  int root_fd() const { return m_root_fd.get(); }

 private:
  View() = default;
  [[nodiscard]] Result<void> ensure_mount_point(const std::string& path);
  [[nodiscard]] Result<void> shadow(const std::string& existing, const std::string& missing_rest);
  std::string at_root(const std::string& path) const;
  std::string staged(const std::string& rel) const;

  std::string m_base;      // staging tmpfs
  UniqueFd m_base_parent;  // O_PATH of the staging dir's real parent
  UniqueFd m_base_fd;      // O_PATH of the staging tmpfs root
  std::string m_fuse_dir;  // m_base + "/fuse"
  std::string m_root = "/";
  int m_next = 0;  // counter for staging subdirectories
  std::vector<std::pair<std::string, std::string>> m_keep;  // (path, stash)
  UniqueFd m_root_fd;
};

}  // namespace mrc::target
