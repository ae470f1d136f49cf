// Private mount namespace, export bind mounts, shadows for missing mount
// points and keep-local subtrees.
#include "target/namespace.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/log.h"

namespace mrc::target {
namespace {

Result<void> write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  f.close();
  if (!f) return fail(EPERM, "cannot write " + path);
  return {};
}

Result<void> bind_mount(const std::string& src, const std::string& dst, unsigned long flags) {
  if (::mount(src.c_str(), dst.c_str(), nullptr, MS_BIND | flags, nullptr) != 0)
    return fail_errno("bind-mount " + src + " on " + dst);
  return {};
}

// Parent-first order: a nested export is mounted on top of its parent.
std::vector<size_t> parents_first(const std::vector<proto::ExportSpec>& exports) {
  std::vector<size_t> order(exports.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return exports[a].path.size() < exports[b].path.size();
  });
  return order;
}

// Mirrors every entry of directory `src` into empty directory `dst` by
// bind mounts (symlinks copied), so `dst` can stand in for `src` with room
// for new entries. Entries that cannot be mirrored are left out (logged).
Result<void> mirror(const std::string& src, const std::string& dst, const std::string& skip) {
  auto log = logger("target");
  struct stat st {};
  if (::stat(src.c_str(), &st) == 0) {
    ::chmod(dst.c_str(), st.st_mode & 07777);
    [[maybe_unused]] int r = ::chown(dst.c_str(), st.st_uid, st.st_gid);
  }
  DIR* d = ::opendir(src.c_str());
  if (!d) return fail_errno("open directory " + src);
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string s = src == "/" ? "/" + name : src + "/" + name;
    std::string t = dst + "/" + name;
    if (s == skip) continue;  // our own staging area
    struct stat es {};
    if (::lstat(s.c_str(), &es) != 0) continue;
    bool ok = true;
    if (S_ISLNK(es.st_mode)) {
      char buf[4096];
      ssize_t n = ::readlink(s.c_str(), buf, sizeof(buf));
      ok = n >= 0 && ::symlink(std::string(buf, static_cast<size_t>(n)).c_str(), t.c_str()) == 0;
    } else if (S_ISDIR(es.st_mode)) {
      ok = ::mkdir(t.c_str(), 0755) == 0 && bind_mount(s, t, MS_REC).has_value();
    } else {
      int fd = ::open(t.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
      if (fd >= 0) ::close(fd);
      ok = fd >= 0 && bind_mount(s, t, MS_REC).has_value();
    }
    if (!ok) log->debug("shadow of {}: cannot mirror {}", src, name);
  }
  ::closedir(d);
  return {};
}

}  // namespace

Result<void> enter_private_namespace() {
  uid_t uid = ::geteuid();
  gid_t gid = ::getegid();
  int flags = CLONE_NEWNS | (uid == 0 ? 0 : CLONE_NEWUSER);
  if (::unshare(flags) != 0)
    return fail_errno(uid == 0 ? "unshare(mount namespace)"
                               : "unshare(user+mount namespace) (are unprivileged user namespaces "
                                 "disabled? see sysctl kernel.unprivileged_userns_clone)");
  if (uid != 0) {
    if (auto r = write_file("/proc/self/setgroups", "deny"); !r) return r;
    if (auto r = write_file("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1\n"); !r) return r;
    if (auto r = write_file("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1\n"); !r) return r;
  }
  // Nothing we mount may propagate back to the target's real tree.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    return fail_errno("make mounts private");
  return {};
}

Result<View> View::create() {
  const char* tmp = std::getenv("TMPDIR");
  std::string base = std::string(tmp && *tmp ? tmp : "/tmp") + "/.mrc-XXXXXX";
  if (!::mkdtemp(base.data())) return fail_errno("create staging directory " + base);
  if (::mount("mrc-staging", base.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700") != 0) {
    auto err = fail_errno("mount staging tmpfs on " + base);
    ::rmdir(base.c_str());
    return err;
  }
  View v;
  v.m_base = base;
  v.m_base_fd = UniqueFd(::open(base.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  // The staging dir's parent may get shadowed later: keep a handle to the
  // real one so seal() can still detach and remove the staging dir.
  v.m_base_parent = UniqueFd(::open(base.substr(0, base.rfind('/')).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  v.m_fuse_dir = base + "/fuse";
  if (::mkdir(v.m_fuse_dir.c_str(), 0755) != 0) return fail_errno("mkdir " + v.m_fuse_dir);
  return v;
}

std::string View::staged(const std::string& rel) const {
  // Through our fd, not m_base: a shadow may since cover m_base's parent.
  return "/proc/self/fd/" + std::to_string(m_base_fd.get()) + "/" + rel;
}

std::string View::at_root(const std::string& path) const {
  return m_root == "/" ? path : m_root + path;
}

Result<void> View::shadow(const std::string& existing, const std::string& missing_rest) {
  std::string s = staged("shadow" + std::to_string(m_next++));
  if (::mkdir(s.c_str(), 0755) != 0) return fail_errno("mkdir " + s);
  if (auto r = mirror(at_root(existing), s, m_base); !r) return r;
  std::error_code ec;
  std::filesystem::create_directories(s + "/" + missing_rest, ec);
  if (ec) return fail(ec.value(), "create mount point " + existing + "/" + missing_rest + ": " + ec.message());
  if (existing == "/" && m_root == "/") {
    m_root = s;  // cannot mount over "/": the job chroots into the shadow
    return {};
  }
  return bind_mount(s, at_root(existing), MS_REC);
}

Result<void> View::ensure_mount_point(const std::string& path) {
  struct stat st {};
  if (::stat(at_root(path).c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return {};
    return fail(ENOTDIR, "cannot mount export " + path + ": it exists on the target and is not a directory");
  }
  // Walk down to the deepest existing ancestor, then shadow it.
  std::filesystem::path p(path), existing("/");
  for (const auto& part : p.relative_path()) {
    auto next = existing / part;
    if (::stat(at_root(next.string()).c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) break;
    existing = next;
  }
  std::string rest = std::filesystem::path(path).lexically_relative(existing).string();
  logger("target")->debug("mount point {} missing: shadowing {}", path, existing.string());
  return shadow(existing.string(), rest);
}

Result<void> View::mount_exports(const std::vector<proto::ExportSpec>& exports) {
  for (size_t i : parents_first(exports)) {
    const auto& e = exports[i];
    if (auto r = ensure_mount_point(e.path); !r) return r;
    std::string src = staged("fuse/" + std::to_string(i));
    if (auto r = bind_mount(src, at_root(e.path), 0); !r)
      return fail(r.error().code, "mount export " + e.path + ": " + r.error().message);
    if (e.read_only &&
        ::mount(nullptr, at_root(e.path).c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) != 0)
      return fail_errno("remount export " + e.path + " read-only");
  }
  return {};
}

Result<void> View::stash_keep_local(const std::vector<std::string>& paths) {
  for (const auto& k : paths) {
    std::string stash = staged("keep" + std::to_string(m_next++));
    if (::mkdir(stash.c_str(), 0755) != 0) return fail_errno("mkdir " + stash);
    struct stat st {};
    if (::stat(at_root(k).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      if (auto r = bind_mount(at_root(k), stash, MS_REC); !r) return r;
    }
    m_keep.emplace_back(k, stash);
  }
  return {};
}

Result<void> View::mount_keep_local() {
  for (const auto& [k, stash] : m_keep) {
    std::error_code ec;
    // The mount point must exist in the export; an empty directory is made
    // on the head node if it is missing (documented in the README).
    std::filesystem::create_directories(at_root(k), ec);
    if (ec) return fail(ec.value(), "keep-local " + k + ": " + ec.message());
    if (auto r = bind_mount(stash, at_root(k), MS_REC); !r) return r;
  }
  return {};
}

void View::seal() {
  if (m_root != "/") {
    m_root_fd = UniqueFd(::open(m_root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    std::string inner = m_root + m_base;  // the copy the root shadow took
    ::umount2(inner.c_str(), MNT_DETACH);
  }
  std::string leaf = m_base.substr(m_base.rfind('/') + 1);
  std::string real = "/proc/self/fd/" + std::to_string(m_base_parent.get()) + "/" + leaf;
  ::umount2(real.c_str(), MNT_DETACH);
  ::unlinkat(m_base_parent.get(), leaf.c_str(), AT_REMOVEDIR);
}

}  // namespace mrc::target
