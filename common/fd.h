// UniqueFd: owns one file descriptor, closes it once. Plus small helpers
// for whole-buffer reads and writes that retry on EINTR and short counts.
#pragma once

#include <cstddef>
#include <span>
#include <utility>
#include <vector>

#include "common/result.h"

namespace mrc {

/// Owns a file descriptor (-1 = none); move-only.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : m_fd(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : m_fd(std::exchange(o.m_fd, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(std::exchange(o.m_fd, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return m_fd; }
  explicit operator bool() const { return m_fd >= 0; }
  int release() { return std::exchange(m_fd, -1); }
  void reset(int fd = -1);

 private:
  int m_fd = -1;
};

/// Writes all of `data` to `fd`. Errors: the errno of write(2) (EPIPE, ...).
[[nodiscard]] Result<void> write_all(int fd, std::span<const std::byte> data);
/// Writes all of `pieces`, in order, with as few writev(2) calls as the
/// kernel allows (64 pieces per call). Errors: the errno of writev.
[[nodiscard]] Result<void> writev_all(int fd, std::span<const std::span<const std::byte>> pieces);
/// Reads exactly `out.size()` bytes. Returns false on clean EOF before the
/// first byte; an error on EOF mid-buffer (EPIPE) or a read(2) error.
[[nodiscard]] Result<bool> read_exact(int fd, std::span<std::byte> out);

/// Writes all of `data` to the unix socket `sock`, passing `fds` along
/// with its first byte (SCM_RIGHTS; at most 64). Errors: errno of sendmsg.
[[nodiscard]] Result<void> send_with_fds(int sock, std::span<const std::byte> data, std::span<const int> fds);
/// Reads exactly `out.size()` bytes from the unix socket `sock` and the
/// descriptors passed with them (CLOEXEC). Errors: EPIPE on end of stream,
/// EPROTO if descriptors were cut off, else the errno of recvmsg.
[[nodiscard]] Result<std::vector<UniqueFd>> recv_with_fds(int sock, std::span<std::byte> out);

/// Sets or clears O_NONBLOCK / FD_CLOEXEC.
void set_nonblocking(int fd, bool on);
void set_cloexec(int fd, bool on);

}  // namespace mrc
