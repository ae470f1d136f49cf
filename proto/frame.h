// The frame layer of the mrc wire protocol (docs/protocol.md §2): a fixed
// 16-byte header, then the payload (zstd-compressed when flagged). Not the
// payload grammar (proto/messages.h) nor I/O (proto/connection.h).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "common/result.h"
#include "common/zstd.h"

namespace mrc::proto {

/// Protocol version spoken in the handshake line; peers must match exactly.
inline constexpr int k_protocol_version = 2;  // 2: leases and invalidation
/// Header size on the wire, bytes.
inline constexpr size_t k_header_size = 16;
/// Largest payload accepted, compressed or not, bytes: a 1 MiB read or a
/// 4 MiB write plus its fields. Checked before allocating.
inline constexpr size_t k_max_payload = 4 * 1024 * 1024 + 4096;
/// Payloads shorter than this are never compressed, bytes (not worth it).
inline constexpr size_t k_min_compress = 512;

/// What a frame carries (header byte 4).
enum class FrameType : uint8_t {
  Request = 1,  ///< a file-service call; `id` pairs it with its Reply
  Reply = 2,    ///< i32 errno, then the op's reply body when errno == 0
  Control = 3,  ///< one-way job control / stdio / forget message, id = 0
};

/// Header flag bits (header byte 5).
inline constexpr uint8_t k_flag_zstd = 0x01;

/// A decoded frame header.
struct Header {
  uint32_t length = 0;  ///< payload bytes on the wire
  FrameType type = FrameType::Request;
  uint8_t flags = 0;
  uint16_t op = 0;
  uint64_t id = 0;
};

/// One whole frame, payload already decompressed.
struct Frame {
  FrameType type = FrameType::Request;
  uint16_t op = 0;
  uint64_t id = 0;
  Bytes payload;
};

/// Encodes a header (little-endian).
std::array<std::byte, k_header_size> encode_header(const Header& h);

/// Decodes and validates a header. Errors (EPROTO): length over
/// k_max_payload, unknown type, unknown flags, op not valid for the type.
[[nodiscard]] Result<Header> decode_header(std::span<const std::byte, k_header_size> raw);

/// Decodes a whole frame from a buffer holding exactly one frame.
/// Errors (EPROTO): truncated, trailing bytes, header errors, bad zstd.
[[nodiscard]] Result<Frame> decode_frame(std::span<const std::byte> raw);

/// Encodes a whole frame, compressing the payload at `zstd_level` when it
/// pays (0 = never compress).
Bytes encode_frame(const Frame& f, int zstd_level);

}  // namespace mrc::proto
