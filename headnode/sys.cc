// Confined syscall helpers: the only file that calls openat2(2).
#include "headnode/sys.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace mrc::headnode {

namespace {
// NAME_MAX of every Linux file system we export, bytes.
constexpr size_t k_name_max = 255;
// openat2(2) rejects unknown flag bits with EINVAL; these are the ones a
// client may ask for when creating a file (the rest are ours to choose).
constexpr int k_create_flags = O_ACCMODE | O_APPEND | O_TRUNC | O_EXCL | O_NONBLOCK | O_DSYNC |
                               O_SYNC | O_DIRECT | O_NOATIME | O_LARGEFILE | O_CREAT;
}  // namespace

Result<void> validate_name(std::string_view name) {
  if (name.empty()) return fail(EINVAL, "empty name");
  if (name.size() > k_name_max) return fail(ENAMETOOLONG, "name longer than 255 bytes");
  if (name == "." || name == "..") return fail(EINVAL, "name is . or ..");
  if (name.find('/') != std::string_view::npos) return fail(EINVAL, "name contains '/'");
  if (name.find('\0') != std::string_view::npos) return fail(EINVAL, "name contains NUL");
  return {};
}

Result<UniqueFd> open_beneath(int dir_fd, std::string_view name, int flags, mode_t mode) {
  std::string n(name);  // NUL-terminated copy
  if (flags & O_CREAT) flags &= k_create_flags;
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_NOFOLLOW | O_CLOEXEC);
  how.mode = (flags & O_CREAT) ? (mode & 07777) : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  long fd;
  do {
    fd = ::syscall(SYS_openat2, dir_fd, n.c_str(), &how, sizeof(how));
  } while (fd < 0 && (errno == EINTR || errno == EAGAIN));
  if (fd < 0) return fail_errno("openat2 " + n);
  return UniqueFd(static_cast<int>(fd));
}

Result<UniqueFd> open_beneath(int dir_fd, std::string_view name) {
  return open_beneath(dir_fd, name, O_PATH, 0);
}

std::string proc_path(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

namespace {
Result<UniqueFd> open_proc(int path_fd, int flags) {
  int fd;
  do {
    fd = ::open(proc_path(path_fd).c_str(), flags | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return fail_errno("reopen");
  return UniqueFd(fd);
}
}  // namespace

Result<UniqueFd> reopen(int path_fd, int flags) {
  auto st = stat_fd(path_fd);
  if (!st) return tl::unexpected(st.error());
  if (S_ISLNK(st->st_mode)) return fail(ELOOP, "is a symlink");
  if (S_ISDIR(st->st_mode)) return fail(EISDIR, "is a directory");
  // FIFOs and devices would block or act on the head node's hardware; the
  // FUSE client opens those locally and never sends OPEN for them.
  if (!S_ISREG(st->st_mode)) return fail(ENXIO, "not a regular file");
  // O_TMPFILE includes O_DIRECTORY: dropping both leaves a plain open.
  flags &= ~(O_CREAT | O_EXCL | O_NOCTTY | O_NOFOLLOW | O_PATH | O_TMPFILE | O_DIRECTORY);
  return open_proc(path_fd, flags);
}

Result<UniqueFd> reopen_dir(int path_fd) { return open_proc(path_fd, O_RDONLY | O_DIRECTORY); }

Result<struct stat> stat_fd(int fd) {
  struct stat st;
  if (::fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) return fail_errno("fstatat");
  return st;
}

proto::Attr to_attr(const struct stat& st) {
  proto::Attr a;
  a.ino = st.st_ino;
  a.size = static_cast<uint64_t>(st.st_size);
  a.blocks = static_cast<uint64_t>(st.st_blocks);
  a.rdev = st.st_rdev;
  a.mode = st.st_mode;
  a.nlink = static_cast<uint32_t>(st.st_nlink);
  a.uid = st.st_uid;
  a.gid = st.st_gid;
  a.blksize = static_cast<uint32_t>(st.st_blksize);
  a.atime_s = st.st_atim.tv_sec;
  a.atime_ns = static_cast<uint32_t>(st.st_atim.tv_nsec);
  a.mtime_s = st.st_mtim.tv_sec;
  a.mtime_ns = static_cast<uint32_t>(st.st_mtim.tv_nsec);
  a.ctime_s = st.st_ctim.tv_sec;
  a.ctime_ns = static_cast<uint32_t>(st.st_ctim.tv_nsec);
  return a;
}

}  // namespace mrc::headnode
