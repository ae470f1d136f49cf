// Whole-file reads for small text files: the config, the key file and the
// /proc files the measurer parses. Not for data files (everything is held
// in memory at once, up to a cap).
#pragma once

#include <cstddef>
#include <string>

#include "common/result.h"

namespace mosix::mosixd {

/// Config and /proc files are a few KiB; anything over this cap is refused
/// rather than read (a config pointed at a huge file by mistake). bytes.
inline constexpr size_t k_max_text_file = 1 << 20;

/// Reads `path` whole. Errors: "PATH: <strerror>" with the errno of
/// open/read; EFBIG "PATH: larger than N bytes" past `max_bytes`.
[[nodiscard]] mrc::Result<std::string> read_text_file(const std::string& path, size_t max_bytes = k_max_text_file);

/// Reads the already open `fd` whole (same errors, named after `path`).
[[nodiscard]] mrc::Result<std::string> read_text_fd(int fd, const std::string& path,
                                                    size_t max_bytes = k_max_text_file);

}  // namespace mosix::mosixd
