// The home exports and the hand-over of the file link to mrc's file service.
#include "mosix/tools/home_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <set>

#include "mrc/service_client.h"
#include "proto/codec.h"
#include "proto/frame.h"

namespace mosix::tools {

namespace proto = mrc::proto;

mrc::Result<std::vector<proto::ExportSpec>> home_exports(const std::string& root) {
  static const std::set<std::string> k_local = {"proc", "sys", "dev"};
  DIR* d = ::opendir(root.c_str());
  if (!d) return mrc::fail_errno("the home node's tree " + root);
  std::vector<proto::ExportSpec> out;
  std::string base = root.back() == '/' ? root : root + "/";
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == ".." || k_local.count(name)) continue;
    struct stat st {};
    if (::lstat((base + name).c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    out.push_back({"/" + name, 0});
  }
  ::closedir(d);
  // Files in /dev/shm are files like any others: home's too.
  struct stat shm {};
  if (::lstat((base + "dev/shm").c_str(), &shm) == 0 && S_ISDIR(shm.st_mode)) out.push_back({"/dev/shm", 0});
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
  return out;
}

mrc::Result<std::string> mrc_beside_us() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n < 0) return mrc::fail_errno("readlink /proc/self/exe");
  std::string self(buf, static_cast<size_t>(n));
  std::string mrc = self.substr(0, self.rfind('/') + 1) + "mrc";
  if (::access(mrc.c_str(), X_OK) != 0)
    return mrc::fail(ENOENT, "the home files need mrc's file service, and there is no mrc at " + mrc +
                                 " (install mrc beside mosrun, or mosrun --local-files)");
  return mrc;
}

mrc::Result<mrc::UniqueFd> attach_home_files(mrc::UniqueFd file_link, const HomeFilesOptions& o) {
  auto exports = home_exports();
  if (!exports) return tl::unexpected(exports.error());
  proto::JobSpec spec;
  spec.exports = *exports;
  spec.head_uid = ::getuid();
  spec.head_gid = ::getgid();
  spec.grace_ms = static_cast<uint32_t>(o.link_timeout_ms);
  // Renewed every third of the term: well within the grace.
  spec.lease_ms = std::min<uint32_t>(30'000, spec.grace_ms / 2);
  spec.zstd_level = 1;
  proto::AttachMsg m{"the guest at " + o.where, spec.lease_ms, spec.grace_ms, spec.zstd_level, spec.exports, {}};
  std::vector<mrc::UniqueFd> roots;
  for (const auto& e : spec.exports) {
    roots.emplace_back(::open(e.path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!roots.back()) return mrc::fail_errno("export " + e.path);
  }
  try {
    mrc::UniqueFd svc = mrc::launcher::attach_to_service(std::move(file_link), roots, m, 0, o.mrc);
    mrc::Bytes frame = proto::encode_frame(
        proto::Frame{proto::FrameType::Control, static_cast<uint16_t>(proto::Ctl::JobSpec), 0, proto::encode(spec)}, 0);
    if (auto w = mrc::write_all(svc.get(), frame); !w) return mrc::fail(EIO, "the file service: " + w.error().message);
    return svc;
  } catch (const mrc::Fatal& e) {
    return mrc::fail(EIO, e.what());
  }
}

}  // namespace mosix::tools
