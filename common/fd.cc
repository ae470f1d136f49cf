// UniqueFd and whole-buffer I/O helpers.
#include "common/fd.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
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

Result<void> writev_all(int fd, std::span<const std::span<const std::byte>> pieces) {
  constexpr size_t k_batch = 64;  // iovecs per writev (well under IOV_MAX)
  for (size_t base = 0; base < pieces.size(); base += k_batch) {
    iovec iov[k_batch];
    size_t n_iov = 0;
    for (auto p : pieces.subspan(base, std::min(k_batch, pieces.size() - base)))
      if (!p.empty()) iov[n_iov++] = {const_cast<std::byte*>(p.data()), p.size()};
    size_t first = 0;
    while (first < n_iov) {
      ssize_t n = ::writev(fd, iov + first, static_cast<int>(n_iov - first));
      if (n < 0) {
        if (errno == EINTR) continue;
        return fail_errno("write");
      }
      // Skip what was written: whole pieces, then part of the next.
      auto left = static_cast<size_t>(n);
      while (first < n_iov && left >= iov[first].iov_len) left -= iov[first++].iov_len;
      if (left > 0) {
        iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
        iov[first].iov_len -= left;
      }
    }
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

namespace mrc {

namespace {
constexpr size_t k_max_fds = 64;
}

Result<void> send_with_fds(int sock, std::span<const std::byte> data, std::span<const int> fds) {
  if (fds.size() > k_max_fds) return fail(EINVAL, "too many descriptors to pass");
  if (data.empty()) return fail(EINVAL, "descriptors need at least one byte to travel with");
  alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int) * k_max_fds)] = {};
  iovec iov{const_cast<std::byte*>(data.data()), data.size()};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  if (!fds.empty()) {
    m.msg_control = ctl;
    m.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  do n = ::sendmsg(sock, &m, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0) return fail_errno("sendmsg");
  return write_all(sock, data.subspan(static_cast<size_t>(n)));
}

Result<std::vector<UniqueFd>> recv_with_fds(int sock, std::span<std::byte> out) {
  std::vector<UniqueFd> fds;
  size_t done = 0;
  while (done < out.size()) {
    alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int) * k_max_fds)];
    iovec iov{out.data() + done, out.size() - done};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl;
    m.msg_controllen = sizeof(ctl);
    ssize_t n = ::recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("recvmsg");
    for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < k; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        fds.emplace_back(fd);
      }
    }
    if (m.msg_flags & MSG_CTRUNC) return fail(EPROTO, "descriptors cut off in transit");
    if (n == 0) return fail(EPIPE, "end of stream");
    done += static_cast<size_t>(n);
  }
  return fds;
}

}  // namespace mrc
