// UniqueFd: owns one file descriptor, closes it once. Plus small helpers
// for whole-buffer reads and writes that retry on EINTR and short counts.
#pragma once

#include <cstddef>
#include <span>
#include <utility>

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
/// Reads exactly `out.size()` bytes. Returns false on clean EOF before the
/// first byte; an error on EOF mid-buffer (EPIPE) or a read(2) error.
[[nodiscard]] Result<bool> read_exact(int fd, std::span<std::byte> out);

/// Sets or clears O_NONBLOCK / FD_CLOEXEC.
void set_nonblocking(int fd, bool on);
void set_cloexec(int fd, bool on);

}  // namespace mrc
