// checkpoint_to_file / recover_from_file: the image codec over a file.
#include "mosix/migrate/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/fd.h"

namespace mosix::migrate {

using mrc::fail;
using mrc::fail_errno;

Result<DumpStats> dump_to_file(Tracee& t, const std::string& path, int zstd_level) {
  const std::string part = path + ".part";
  mrc::UniqueFd fd(::open(part.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd) return fail_errno("create " + part);
  ImageWriter w(
      [&](std::span<const std::byte> b) -> Result<void> {
        if (auto r = mrc::write_all(fd.get(), b); !r) return fail(r.error().code, "write " + part + ": " + r.error().message);
        return {};
      },
      zstd_level);
  auto stats = dump(t, w);
  if (stats && ::fsync(fd.get()) != 0) stats = fail_errno("fsync " + part);
  if (stats && ::rename(part.c_str(), path.c_str()) != 0) stats = fail_errno("rename " + part + " to " + path);
  if (!stats) ::unlink(part.c_str());
  return stats;
}

Result<DumpStats> checkpoint_to_file(pid_t pid, const std::string& path, int zstd_level) {
  auto t = Tracee::seize(pid);
  if (!t) return tl::unexpected(t.error());
  auto stats = dump_to_file(*t, path, zstd_level);
  // The process runs on whatever happened to its image.
  (void)t->detach();
  return stats;
}

namespace {

/// An ImageReader source over the file `fd` (named `path` in errors).
ReadFn file_source(int fd, const std::string& path) {
  return [fd, path](std::span<std::byte> out) -> Result<size_t> {
    for (;;) {
      ssize_t n = ::read(fd, out.data(), out.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return fail_errno("read " + path);
      return static_cast<size_t>(n);
    }
  };
}

}  // namespace

Result<void> continue_from_file(Tracee& t, const std::string& path) {
  mrc::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return fail_errno("open " + path);
  ImageReader r(file_source(fd.get(), path));
  auto stats = restore_into(t, r);
  if (!stats) return tl::unexpected(stats.error());
  return release_restored(t, stats->itimers);
}

Result<pid_t> recover_from_file(const std::string& path) {
  mrc::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return fail_errno("open " + path);
  ImageReader r(file_source(fd.get(), path));
  auto back = restore(r);
  if (!back) return tl::unexpected(back.error());
  pid_t pid = back->tracee.pid();
  if (auto go = back->release(); !go) return tl::unexpected(go.error());
  return pid;
}

}  // namespace mosix::migrate
