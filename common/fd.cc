// UniqueFd and whole-buffer I/O helpers.
#include "common/fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace mrc {

tl::unexpected<Error> fail_errno(const std::string& what) {
  int e = errno;
  return fail(e, what + ": " + std::strerror(e));
}

void UniqueFd::reset(int fd) {
  if (m_fd >= 0) ::close(m_fd);
  m_fd = fd;
}

Result<void> write_all(int fd, std::span<const std::byte> data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("write");
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

Result<bool> read_exact(int fd, std::span<std::byte> out) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::read(fd, out.data() + done, out.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("read");
    }
    if (n == 0) {
      if (done == 0) return false;
      return fail(EPIPE, "read: connection closed mid-frame");
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

void set_nonblocking(int fd, bool on) {
  int fl = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK));
}

void set_cloexec(int fd, bool on) {
  int fl = ::fcntl(fd, F_GETFD);
  ::fcntl(fd, F_SETFD, on ? (fl | FD_CLOEXEC) : (fl & ~FD_CLOEXEC));
}

}  // namespace mrc
