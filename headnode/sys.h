// Thin, confined syscall helpers of the file server: name validation,
// openat2 beneath a directory, reopening an O_PATH fd for I/O, and
// struct stat → proto::Attr. Nothing here knows about nodeids or policy.
#pragma once

#include <sys/stat.h>

#include <string_view>

#include "common/fd.h"
#include "common/result.h"
#include "proto/messages.h"

namespace mrc::headnode {

/// Checks a single path component from the wire: non-empty, no '/', no NUL,
/// not "." or "..". Errors: EINVAL; ENAMETOOLONG over 255 bytes.
[[nodiscard]] Result<void> validate_name(std::string_view name);

/// Opens `name` (already validated) beneath `dir_fd` as O_PATH without
/// following any symlink (a trailing symlink gives an fd on the link itself).
/// Errors: raw errno of openat2(2).
[[nodiscard]] Result<UniqueFd> open_beneath(int dir_fd, std::string_view name);

/// openat2(2) of `name` beneath `dir_fd` with `flags` (O_NOFOLLOW and
/// O_CLOEXEC added; with O_CREAT, flags a client may not choose dropped)
/// and `mode`; no symlink is ever followed.
[[nodiscard]] Result<UniqueFd> open_beneath(int dir_fd, std::string_view name, int flags,
                                            mode_t mode);

/// Reopens an O_PATH fd for I/O via /proc/self/fd with `flags` minus
/// O_CREAT|O_EXCL|O_NOCTTY|O_NOFOLLOW (and O_PATH, O_TMPFILE, O_DIRECTORY).
/// Errors: ELOOP for a symlink, EISDIR for a directory, ENXIO for other
/// non-regular files (FIFOs would block), else the raw errno of open(2).
[[nodiscard]] Result<UniqueFd> reopen(int path_fd, int flags);
/// Reopens an O_PATH directory fd O_RDONLY|O_DIRECTORY (readdir, syncfs).
[[nodiscard]] Result<UniqueFd> reopen_dir(int path_fd);

/// "/proc/self/fd/N" for `fd`.
std::string proc_path(int fd);

/// fstatat(fd, "", AT_EMPTY_PATH|AT_SYMLINK_NOFOLLOW). Errors: raw errno.
[[nodiscard]] Result<struct stat> stat_fd(int fd);

/// Converts a struct stat to the wire's Attr.
proto::Attr to_attr(const struct stat& st);

}  // namespace mrc::headnode
