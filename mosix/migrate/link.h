// The migration link (docs/migration-link.md): one TCP connection between
// a process's home node and the node it runs on, carrying the image stream
// in frames, the two-phase commit (DESIGN §7), then the deputy's traffic
// (stdin, stdout/stderr, signals, the exit status) and the way home.
// Frames only, and the handshake that authenticates the peers with the
// cluster key; what the two ends do with them is guest.h and deputy.h.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace mosix::migrate {

/// What a frame carries. The numbers are the wire's (docs/migration-link.md).
enum class FrameType : uint32_t {
  hello = 1,          ///< guest end -> home: "MOSIX-MIGRATE 1" and a 32-byte nonce
  auth = 2,           ///< home -> guest end: HMAC-SHA256(key, nonce), 32 bytes
  image = 3,          ///< a piece of an image stream (either way: out, or home)
  ready = 4,          ///< the receiver built the process up to its release; empty
  error = 5,          ///< a failure, in words; the connection ends after it
  commit = 6,         ///< the sender let go of the process: release it; empty
  running = 7,        ///< after commit: the process runs; u32 its pid there
  stdin_data = 8,     ///< home -> guest: bytes for the process's stdin; empty = end of input
  stdout_data = 9,    ///< guest -> home: bytes the process wrote to fd 1
  stderr_data = 10,   ///< guest -> home: bytes it wrote to fd 2
  signal = 11,        ///< home -> guest: u32 signal number sent to the deputy
  exit = 12,          ///< guest -> home: u32 wait status (as waitpid's)
  go_home = 13,       ///< home -> guest: send the process home (image frames follow)
  link_timeout = 14,  ///< home -> guest, right after auth: u32 ms, the link's timeout for both ends
  home_files = 15,    ///< home -> guest, before the image: the process's files come from home; empty
  file_port = 16,     ///< guest -> home, the answer: u16 TCP port, then a 32-byte token, for the file link
  stdin_back = 17,    ///< guest -> home, on the way home before the image: stdin bytes the process had not read
};

/// Largest payload of one frame, bytes: image pieces are 1 MiB; anything
/// longer is a broken or hostile peer.
inline constexpr size_t k_max_frame = 2u << 20;
/// The nonce of the hello, bytes.
inline constexpr size_t k_nonce_bytes = 32;
/// The hello's fixed text, before the nonce.
inline constexpr std::string_view k_hello_text = "MOSIX-MIGRATE 1\n";

struct Frame {
  FrameType type = FrameType::error;
  std::vector<std::byte> payload;
  std::string text() const { return {reinterpret_cast<const char*>(payload.data()), payload.size()}; }
};

/// Writes one frame (8-byte header: u32 type, u32 length, little-endian;
/// then the payload). Errors: the socket's errno (EPIPE, ECONNRESET).
[[nodiscard]] mrc::Result<void> send_frame(int fd, FrameType type, std::span<const std::byte> payload = {});
[[nodiscard]] mrc::Result<void> send_text(int fd, FrameType type, std::string_view text);
[[nodiscard]] mrc::Result<void> send_u32(int fd, FrameType type, uint32_t v);

/// Reads one frame, waiting at most `timeout_ms` (-1: no limit) for each
/// piece. Errors: ECONNRESET "the link closed" at end of stream, EPROTO for
/// an unknown type or a length above k_max_frame, ETIMEDOUT, the errno.
[[nodiscard]] mrc::Result<Frame> recv_frame(int fd, int timeout_ms = -1);

/// The u32 a signal/exit/running frame carries. Errors: EPROTO if the
/// payload is not 4 bytes.
[[nodiscard]] mrc::Result<uint32_t> frame_u32(const Frame& f);

/// The guest end's half of the handshake: sends the hello with a fresh
/// nonce, checks the home end's auth against `key`. Errors: EACCES
/// "not signed with the cluster key", the link's.
[[nodiscard]] mrc::Result<void> accept_handshake(int fd, std::string_view key, int timeout_ms);

/// What the home end answers to a hello: HMAC-SHA256(key, hello text ||
/// nonce). `sign` computes it (mosixd holds the key; mosrun asks it over
/// the local socket). Errors: EPROTO for a malformed hello, the link's.
using Signer = std::function<mrc::Result<std::array<std::byte, 32>>(std::span<const std::byte> nonce)>;
[[nodiscard]] mrc::Result<void> connect_handshake(int fd, const Signer& sign, int timeout_ms);

/// HMAC-SHA256(key, k_hello_text || nonce): the auth both ends compute.
[[nodiscard]] mrc::Result<std::array<std::byte, 32>> auth_tag(std::string_view key, std::span<const std::byte> nonce);

/// The image stream read out of image frames, for an ImageReader: an
/// empty image frame ends it. An error frame instead is ECONNABORTED
/// with the peer's words; any other frame EPROTO.
class ImageFrameSource {
 public:
  ImageFrameSource(int fd, int timeout_ms) : m_fd(fd), m_timeout_ms(timeout_ms) {}
  /// Starts with `first`, an image frame's payload already read.
  ImageFrameSource(int fd, int timeout_ms, std::vector<std::byte> first)
      : m_fd(fd), m_timeout_ms(timeout_ms), m_buf(std::move(first)), m_ended(m_buf.empty()) {}
  [[nodiscard]] mrc::Result<size_t> read(std::span<std::byte> out);
  /// The image's frames are all read: its empty frame, or an error frame
  /// in its place, came (a reader that gave up early reads the rest).
  bool ended() const { return m_ended; }

 private:
  int m_fd, m_timeout_ms;
  std::vector<std::byte> m_buf;
  size_t m_at = 0;
  bool m_ended = false;
};

/// The image stream written as image frames of up to k_image_piece bytes,
/// for an ImageWriter; end() sends what is left and the empty frame.
class ImageFrameSink {
 public:
  static constexpr size_t k_image_piece = 1u << 20;
  explicit ImageFrameSink(int fd) : m_fd(fd) {}
  [[nodiscard]] mrc::Result<void> write(std::span<const std::byte> bytes);
  [[nodiscard]] mrc::Result<void> end();

 private:
  int m_fd;
  std::vector<std::byte> m_buf;
};

/// Bounds how long the link may be silent: a send that cannot go on for
/// `timeout_ms` fails (SO_SNDTIMEO, TCP_USER_TIMEOUT), and keepalive
/// probes find a peer that vanished while the link was idle (a deputy
/// waiting for its process's output) within about the same time.
void set_link_timeouts(int fd, int timeout_ms);

/// A TCP connection to "a.b.c.d:port" (TCP_NODELAY, CLOEXEC), within
/// `timeout_ms`. Errors: EINVAL for a bad address, the connect's errno.
[[nodiscard]] mrc::Result<int> connect_tcp(const std::string& address, int timeout_ms);

}  // namespace mosix::migrate
