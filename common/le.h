// Little-endian integers at a byte address, for the wire formats
// (docs/protocol.md, docs/gossip-protocol.md). x86_64 only, like the rest.
#pragma once

#include <bit>
#include <cstddef>
#include <cstring>

namespace mrc {

static_assert(std::endian::native == std::endian::little, "the wire formats are little-endian");

/// Stores `v` at `p` (sizeof(I) bytes, no alignment needed).
template <typename I>
void put_le(std::byte* p, I v) {
  std::memcpy(p, &v, sizeof(v));
}
/// Loads an I from `p` (sizeof(I) bytes, no alignment needed).
template <typename I>
I get_le(const std::byte* p) {
  I v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

}  // namespace mrc
