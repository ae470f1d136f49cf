// mount(2)/umount2(2) of /dev/fuse and mountinfo parsing (see kmount.h).
#include "fusefs/kmount.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace mrc::fusefs {
namespace {

// mountinfo escapes ' ', '\t', '\n' and '\\' as a backslash and 3 octal digits.
std::string unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    bool octal = s[i] == '\\' && s.size() - i >= 4 && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
                 s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7';
    if (octal) {
      out.push_back(static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::vector<std::string_view> split_spaces(std::string_view line) {
  std::vector<std::string_view> f;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ') ++j;
    if (j > i) f.push_back(line.substr(i, j - i));
    i = j;
  }
  return f;
}

}  // namespace

std::vector<MountEntry> parse_mountinfo(std::string_view text) {
  // "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue"
  // (proc(5)): 6 fixed fields, optional fields, "-", fstype, source, options.
  std::vector<MountEntry> out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    auto f = split_spaces(line);
    size_t dash = 6;
    while (dash < f.size() && f[dash] != "-") ++dash;
    if (f.size() < 6 || dash + 2 >= f.size()) continue;  // malformed: no fstype/source
    out.push_back(
        MountEntry{std::string(f[2]), unescape(f[4]), unescape(f[dash + 1]), unescape(f[dash + 2])});
  }
  return out;
}

std::optional<MountEntry> top_mount_at(const std::vector<MountEntry>& mounts, std::string_view path) {
  std::optional<MountEntry> top;
  for (const auto& m : mounts)
    if (m.mount_point == path) top = m;
  return top;
}

std::optional<MountEntry> current_mount_at(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::stringstream ss;
  ss << in.rdbuf();
  return top_mount_at(parse_mountinfo(ss.str()), path);
}

Result<UniqueFd> mount_fuse(const std::string& mountpoint, const std::string& fsname,
                            const std::string& subtype, bool allow_other) {
  struct stat st {};
  if (::stat(mountpoint.c_str(), &st) != 0) return fail_errno("mount point " + mountpoint);
  if (!S_ISDIR(st.st_mode)) return fail(ENOTDIR, "mount point " + mountpoint + ": not a directory");
  UniqueFd fd(::open("/dev/fuse", O_RDWR | O_CLOEXEC));
  if (!fd) return fail_errno("open /dev/fuse");
  // rootmode: the root inode's type before the first GETATTR (S_IFDIR, octal);
  // user_id/group_id: who may use the mount (no allow_other: only us).
  std::string data = "fd=" + std::to_string(fd.get()) +
                     ",rootmode=40000,user_id=" + std::to_string(::getuid()) +
                     ",group_id=" + std::to_string(::getgid());
  if (allow_other) data += ",allow_other,default_permissions";
  std::string type = "fuse." + subtype;
  if (::mount(fsname.c_str(), mountpoint.c_str(), type.c_str(), MS_NOSUID | MS_NODEV, data.c_str()) != 0)
    return fail_errno("mount " + type + " on " + mountpoint);
  return fd;
}

Result<void> set_bdi_read_ahead(const std::string& dev, unsigned kb) {
  std::string path = "/sys/class/bdi/" + dev + "/read_ahead_kb";
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return fail_errno("open " + path);
  std::string v = std::to_string(kb) + "\n";
  if (::write(fd.get(), v.data(), v.size()) != static_cast<ssize_t>(v.size()))
    return fail_errno("write " + path);
  return {};
}

std::string fusectl_dir(const std::string& dev) {
  // Named by the kernel's dev_t: MKDEV(maj, min) = maj << 20 | min.
  unsigned maj = 0, min = 0;
  if (std::sscanf(dev.c_str(), "%u:%u", &maj, &min) != 2) return {};
  return "/sys/fs/fuse/connections/" + std::to_string((maj << 20) | min);
}

Result<void> abort_connection(const std::string& dev) {
  std::string path = fusectl_dir(dev) + "/abort";
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return fail_errno("open " + path);
  if (::write(fd.get(), "1", 1) != 1) return fail_errno("write " + path);
  return {};
}

Result<bool> detach_if_ours(const std::string& mountpoint, const std::string& dev) {
  auto top = current_mount_at(mountpoint);
  if (!top || top->dev != dev) return false;
  if (::umount2(mountpoint.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0)
    return fail_errno("unmount " + mountpoint);
  return true;
}

}  // namespace mrc::fusefs
