// The handshake line: the target's first output, before any frame
// (docs/protocol.md §1): "MRC <protocol-version> <capabilities>\n".
// Strictly parsed so a noisy login shell or a version mismatch is a clear
// error, never a hang.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace mrc::proto {

/// Longest handshake line accepted, bytes (including the newline).
inline constexpr size_t k_max_handshake = 256;

/// The line this build's target sends, newline included.
std::string handshake_line();

/// Parses one line (without its newline). Errors (EPROTO): not of the form
/// "MRC <digits> <caps>", or a protocol version other than ours — the
/// message quotes what the target printed.
[[nodiscard]] Result<std::vector<std::string>> parse_handshake(const std::string& line);

}  // namespace mrc::proto
