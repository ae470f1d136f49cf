// /proc readers for the dump: maps, pagemap, task, fd + fdinfo, status, stat.
#include "mosix/migrate/procfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/fd.h"

namespace mosix::migrate {
namespace {

using mrc::fail;
using mrc::fail_errno;

std::string proc(pid_t pid, const std::string& rest) { return "/proc/" + std::to_string(pid) + "/" + rest; }

/// An error for a /proc file that could not be opened: a vanished process
/// shows as ENOENT there, which we name ESRCH.
tl::unexpected<mrc::Error> open_error(pid_t pid, const std::string& name) {
  int e = errno;
  if (e == ENOENT) return fail(ESRCH, "process " + std::to_string(pid) + " is gone");
  return fail(e, "cannot read " + proc(pid, name) + ": " + std::strerror(e));
}

}  // namespace

Result<MapEntry> parse_maps_line(const std::string& line) {
  // start-end perms offset major:minor inode [path]
  MapEntry m;
  char perms[5] = {};
  unsigned long long start = 0, end = 0, offset = 0, inode = 0;
  unsigned major = 0, minor = 0;
  int consumed = 0;
  if (std::sscanf(line.c_str(), "%llx-%llx %4s %llx %x:%x %llu %n", &start, &end, perms, &offset, &major, &minor,
                  &inode, &consumed) < 7 ||
      std::strlen(perms) != 4 || start >= end)
    return fail(EINVAL, "malformed maps line: " + line);
  m.start = start;
  m.end = end;
  m.read = perms[0] == 'r';
  m.write = perms[1] == 'w';
  m.exec = perms[2] == 'x';
  m.shared = perms[3] == 's';
  m.offset = offset;
  m.dev_major = major;
  m.dev_minor = minor;
  m.inode = inode;
  m.path = consumed > 0 && static_cast<size_t>(consumed) <= line.size() ? line.substr(static_cast<size_t>(consumed)) : "";
  constexpr std::string_view k_deleted = " (deleted)";
  if (m.path.size() > k_deleted.size() && m.path.ends_with(k_deleted)) {
    m.path.resize(m.path.size() - k_deleted.size());
    m.deleted = true;
  }
  return m;
}

Result<std::vector<MapEntry>> read_maps(pid_t pid) {
  std::ifstream in(proc(pid, "maps"));
  if (!in) return open_error(pid, "maps");
  std::vector<MapEntry> out;
  std::string line;
  while (std::getline(in, line)) {
    auto m = parse_maps_line(line);
    if (!m) return tl::unexpected(m.error());
    out.push_back(std::move(*m));
  }
  return out;
}

Result<std::vector<bool>> pages_with_data(pid_t pid, uint64_t start, uint64_t end, bool file_backed) {
  constexpr uint64_t page = 4096;
  mrc::UniqueFd fd(::open(proc(pid, "pagemap").c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return open_error(pid, "pagemap");
  const uint64_t n = (end - start) / page;
  std::vector<bool> out(n, false);
  std::vector<uint64_t> buf(std::min<uint64_t>(n, 8192));
  for (uint64_t done = 0; done < n;) {
    uint64_t want = std::min<uint64_t>(n - done, buf.size());
    ssize_t r = ::pread(fd.get(), buf.data(), want * 8, static_cast<off_t>((start / page + done) * 8));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0 || r % 8 != 0) return fail(r < 0 ? errno : EIO, "cannot read " + proc(pid, "pagemap"));
    for (uint64_t i = 0; i < static_cast<uint64_t>(r) / 8; ++i) {
      uint64_t e = buf[i];
      bool has = (e & (k_pm_present | k_pm_swapped)) != 0;
      // A private file page still the file's own (bit 61) need not travel:
      // the restore maps the file again.
      if (file_backed && (e & k_pm_file_or_shared)) has = false;
      out[done + i] = has;
    }
    done += static_cast<uint64_t>(r) / 8;
  }
  return out;
}

Result<size_t> thread_count(pid_t pid) {
  DIR* d = ::opendir(proc(pid, "task").c_str());
  if (!d) return open_error(pid, "task");
  size_t n = 0;
  while (dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') ++n;
  ::closedir(d);
  return n;
}

Result<std::vector<OpenFd>> read_fds(pid_t pid) {
  DIR* d = ::opendir(proc(pid, "fd").c_str());
  if (!d) return open_error(pid, "fd");
  std::vector<int> fds;
  while (dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') fds.push_back(std::atoi(e->d_name));
  ::closedir(d);
  std::sort(fds.begin(), fds.end());
  std::vector<OpenFd> out;
  for (int fd : fds) {
    OpenFd o;
    o.fd = fd;
    std::string link = proc(pid, "fd/" + std::to_string(fd));
    char buf[4096];
    ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == ENOENT) continue;  // closed meanwhile (the process is stopped: only by us)
      return fail_errno("readlink " + link);
    }
    o.target.assign(buf, static_cast<size_t>(n));
    struct stat st{};
    if (::stat(link.c_str(), &st) == 0) {
      o.mode = st.st_mode;
      o.rdev = st.st_rdev;
    }
    std::ifstream info(proc(pid, "fdinfo/" + std::to_string(fd)));
    std::string line;
    while (std::getline(info, line)) {
      if (line.rfind("pos:", 0) == 0) o.pos = std::stoull(line.substr(4));
      else if (line.rfind("flags:", 0) == 0) o.flags = static_cast<uint32_t>(std::stoul(line.substr(6), nullptr, 8));
    }
    out.push_back(std::move(o));
  }
  return out;
}

Result<std::string> read_proc_file(pid_t pid, const std::string& name) {
  std::ifstream in(proc(pid, name), std::ios::binary);
  if (!in) return open_error(pid, name);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Result<std::string> status_field(pid_t pid, const std::string& key) {
  auto text = read_proc_file(pid, "status");
  if (!text) return tl::unexpected(text.error());
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > key.size() && line.compare(0, key.size(), key) == 0 && line[key.size()] == ':') {
      size_t v = line.find_first_not_of(" \t", key.size() + 1);
      return v == std::string::npos ? std::string() : line.substr(v);
    }
  }
  return fail(ENOENT, "no " + key + " in " + proc(pid, "status"));
}

Result<std::vector<std::pair<uint64_t, uint64_t>>> parse_limits(const std::string& text) {
  // "Max cpu time              unlimited            unlimited            seconds"
  // The name is padded to 26 columns (fs/proc/base.c, proc_pid_limits).
  constexpr size_t k_name_width = 26, k_limits = 16;
  std::vector<std::pair<uint64_t, uint64_t>> out;
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);  // the heading
  auto value = [](const std::string& w, uint64_t& v) {
    if (w == "unlimited") {
      v = ~uint64_t{0};
      return true;
    }
    if (w.empty() || w.size() > 20 || w.find_first_not_of("0123456789") != std::string::npos) return false;
    v = std::stoull(w);
    return true;
  };
  while (out.size() < k_limits && std::getline(in, line)) {
    std::istringstream f(line.size() > k_name_width ? line.substr(k_name_width) : std::string());
    std::string soft, hard;
    uint64_t cur = 0, max = 0;
    if (!(f >> soft >> hard) || !value(soft, cur) || !value(hard, max))
      return fail(EINVAL, "limits: cannot read line '" + line + "'");
    out.emplace_back(cur, max);
  }
  if (out.size() < k_limits)
    return fail(EINVAL, "limits: " + std::to_string(out.size()) + " lines, not " + std::to_string(k_limits));
  return out;
}

Result<Credentials> read_credentials(pid_t pid) {
  Credentials c;
  for (auto [key, ids] : {std::pair{"Uid", &c.uids}, std::pair{"Gid", &c.gids}}) {
    auto v = status_field(pid, key);
    if (!v) return tl::unexpected(v.error());
    auto p = parse_ids(*v, proc(pid, "status") + " " + key);
    if (!p) return tl::unexpected(p.error());
    if (p->size() < 3) return fail(EINVAL, "short " + std::string(key) + " in " + proc(pid, "status"));
    std::copy_n(p->begin(), 3, ids->begin());
  }
  // Groups is missing on no kernel we run on; none if it were.
  if (auto g = status_field(pid, "Groups"); g) {
    auto p = parse_ids(*g, proc(pid, "status") + " Groups");
    if (!p) return tl::unexpected(p.error());
    c.groups = std::move(*p);
  }
  return c;
}

Result<std::vector<uint32_t>> parse_ids(const std::string& value, const std::string& what) {
  std::vector<uint32_t> out;
  size_t at = 0;
  while ((at = value.find_first_not_of(" \t\n", at)) != std::string::npos) {
    size_t end = value.find_first_of(" \t\n", at);
    std::string word = value.substr(at, end == std::string::npos ? std::string::npos : end - at);
    bool digits = word.size() <= 10 && word.find_first_not_of("0123456789") == std::string::npos;
    unsigned long long v = digits ? std::stoull(word) : 0;
    if (!digits || v > 0xffffffffull) return fail(EINVAL, what + ": not an id list: '" + value + "'");
    out.push_back(static_cast<uint32_t>(v));
    at = end;
  }
  return out;
}

Result<std::vector<std::string>> stat_fields(pid_t pid) {
  auto text = read_proc_file(pid, "stat");
  if (!text) return tl::unexpected(text.error());
  size_t open = text->find('('), close = text->rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open)
    return fail(EINVAL, "malformed " + proc(pid, "stat"));
  std::vector<std::string> v{"", text->substr(0, open - 1), text->substr(open + 1, close - open - 1)};
  std::istringstream rest(text->substr(close + 1));
  std::string f;
  while (rest >> f) v.push_back(f);
  return v;
}

}  // namespace mosix::migrate
