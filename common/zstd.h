// zstd per-buffer compression used by the frame codec. Not a stream API.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <vector>

#include "common/result.h"

namespace mrc {

using Bytes = std::vector<std::byte>;
/// Bytes viewed, not owned (valid while their owner lives).
using ByteView = std::span<const std::byte>;

/// Compresses `in` at `level` (1 = fastest). Returns nothing when it does
/// not pay: the output would not be at least 1/8 smaller (incompressible
/// data is detected fast by zstd: ~4 GB/s on random bytes here).
std::optional<Bytes> zstd_compress_if_smaller(std::span<const std::byte> in, int level);

/// Decompresses one zstd frame. Errors: EPROTO if the frame is corrupt,
/// has no declared size, or declares more than `max_size` bytes (checked
/// before allocating).
[[nodiscard]] Result<Bytes> zstd_decompress(std::span<const std::byte> in, size_t max_size);

}  // namespace mrc
