// read_text_file / read_text_fd: bounded whole-file reads.
#include "mosix/mosixd/files.h"

#include <fcntl.h>
#include <unistd.h>

#include "common/fd.h"

namespace mosix::mosixd {

mrc::Result<std::string> read_text_fd(int fd, const std::string& path, size_t max_bytes) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return mrc::fail_errno(path);
    }
    if (n == 0) return out;
    if (out.size() + static_cast<size_t>(n) > max_bytes)
      return mrc::fail(EFBIG, path + ": larger than " + std::to_string(max_bytes) + " bytes");
    out.append(buf, static_cast<size_t>(n));
  }
}

mrc::Result<std::string> read_text_file(const std::string& path, size_t max_bytes) {
  mrc::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return mrc::fail_errno(path);
  return read_text_fd(fd.get(), path, max_bytes);
}

}  // namespace mosix::mosixd
