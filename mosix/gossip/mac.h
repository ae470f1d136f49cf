// Packet authentication (docs/gossip-protocol.md §4): the 32-byte trailer
// of every packet, HMAC-SHA256 over all the bytes before it with the
// cluster key. Not the packet layout (codec.h). OpenSSL stays in mac.cc.
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <span>
#include <string_view>

#include "common/result.h"
#include "mosix/gossip/config.h"

namespace mosix::gossip {

/// Length of the trailer, bytes (SHA-256's output).
inline constexpr size_t k_mac_bytes = 32;
using MacTag = std::array<std::byte, k_mac_bytes>;

/// Signs and verifies with one key. Holds an OpenSSL context, so it is
/// used from one thread (the Node's owner).
class Mac {
 public:
  /// Errors: EINVAL for a key shorter than k_min_key_bytes; EIO when
  /// OpenSSL cannot set up HMAC-SHA256.
  [[nodiscard]] static mrc::Result<Mac> create(MacKind kind, std::string_view key);
  Mac(Mac&&) noexcept;
  Mac& operator=(Mac&&) noexcept;
  ~Mac();

  /// The tag of `data`.
  MacTag sign(std::span<const std::byte> data);
  /// True if `tag` is the tag of `data` (compared in constant time).
  bool verify(std::span<const std::byte> data, std::span<const std::byte, k_mac_bytes> tag);

 private:
  struct Impl;
  Mac(MacKind kind, std::unique_ptr<Impl> impl);
  MacKind m_kind;
  MacTag m_key_tag{};            // sim_key_tag: SHA-256 of the key (here: no pointer to chase)
  std::unique_ptr<Impl> m_impl;  // hmac_sha256: the OpenSSL context
};

}  // namespace mosix::gossip
