// Payload codec: little-endian integers, u32-length-prefixed strings and
// byte strings, u32-counted vectors, and structs that list their fields
// with visit(). Decoding checks every length and that the payload was
// consumed exactly (docs/protocol.md §3).
#pragma once

#include <bit>
#include <cassert>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "common/result.h"
#include "common/zstd.h"

namespace mrc::proto {

// A ByteView field (common/zstd.h) encodes like Bytes; decoded, it points
// into the payload (valid while the payload lives) instead of copying.

/// An encoded payload as pieces for one writev: the small fields in an
/// owned buffer, byte strings of at least k_gather_min bytes referenced
/// where they are, so they are not copied (the message must outlive the
/// send). The same bytes as encode() (see encode_gathered()).
class Gathered {
 public:
  /// Byte strings at least this long are referenced, not copied, bytes.
  static constexpr size_t k_gather_min = 16 * 1024;
  /// Wraps one buffer without copying it (it must outlive the send).
  static Gathered of(ByteView whole);
  size_t size() const { return m_size; }
  /// The pieces in order, spans into this object or the message.
  std::vector<ByteView> pieces() const;
  /// The bytes as one buffer (a copy).
  Bytes flatten() const;

 private:
  friend class Writer;
  struct Piece {
    const std::byte* ext = nullptr;  // referenced bytes, or null: m_small[off, off + len)
    size_t off = 0, len = 0;
  };
  Bytes m_small;
  std::vector<Piece> m_pieces;
  size_t m_size = 0;
};

/// Appends fields to a byte buffer.
class Writer {
 public:
  /// `gather`: byte strings ≥ Gathered::k_gather_min are referenced, for
  /// take_gathered(); otherwise every field is copied, for take().
  enum class Mode { copy, gather };
  explicit Writer(Mode mode = Mode::copy) : m_mode(mode) {}

  template <typename T>
  void operator()(const T& v) {
    if constexpr (std::is_integral_v<T> || std::is_enum_v<T>) {
      put_int(v);
    } else if constexpr (std::is_same_v<T, std::string>) {
      put_blob(v.data(), v.size());
    } else if constexpr (std::is_same_v<T, Bytes> || std::is_same_v<T, ByteView>) {
      put_blob(v.data(), v.size());
    } else if constexpr (requires { v.begin(); v.size(); }) {
      put_int(static_cast<uint32_t>(v.size()));
      for (const auto& e : v) (*this)(e);
    } else {
      const_cast<T&>(v).visit(*this);
    }
  }
  Bytes take() {
    assert(m_mode == Mode::copy);
    return std::move(m_out);
  }
  Gathered take_gathered() {
    Gathered g;
    close_piece();
    g.m_pieces = std::move(m_pieces);
    g.m_small = std::move(m_out);
    g.m_size = m_size + g.m_small.size();
    return g;
  }

 private:
  void close_piece() {
    if (m_out.size() > m_piece_start) m_pieces.push_back({nullptr, m_piece_start, m_out.size() - m_piece_start});
    m_piece_start = m_out.size();
  }
  template <typename I>
  void put_int(I v) {
    static_assert(std::endian::native == std::endian::little, "wire is little-endian");
    auto p = reinterpret_cast<const std::byte*>(&v);
    m_out.insert(m_out.end(), p, p + sizeof(v));
  }
  void put_blob(const void* p, size_t n) {
    put_int(static_cast<uint32_t>(n));
    auto b = static_cast<const std::byte*>(p);
    if (m_mode == Mode::gather && n >= Gathered::k_gather_min) {
      close_piece();
      m_pieces.push_back({b, 0, n});
      m_size += n;
      return;
    }
    m_out.insert(m_out.end(), b, b + n);
  }
  Mode m_mode;
  Bytes m_out;
  // Gather mode: the pieces so far; m_out[m_piece_start..) is the open one;
  // m_size counts the referenced bytes (the small ones are m_out's).
  std::vector<Gathered::Piece> m_pieces;
  size_t m_piece_start = 0, m_size = 0;
};

/// Reads fields from a payload; a short or oversized field sets the error
/// and makes every later read a no-op. finish() reports the first error.
class Reader {
 public:
  explicit Reader(std::span<const std::byte> in) : m_in(in) {}

  template <typename T>
  void operator()(T& v) {
    if constexpr (std::is_integral_v<T> || std::is_enum_v<T>) {
      get_raw(&v, sizeof(v));
    } else if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, Bytes> || std::is_same_v<T, ByteView>) {
      uint32_t n = 0;
      get_raw(&n, sizeof(n));
      if (!ok() || !need(n)) return;
      auto p = m_in.data() + m_pos;
      if constexpr (std::is_same_v<T, std::string>)
        v.assign(reinterpret_cast<const char*>(p), n);
      else if constexpr (std::is_same_v<T, ByteView>)
        v = ByteView(p, n);
      else
        v.assign(p, p + n);
      m_pos += n;
    } else if constexpr (requires { v.begin(); v.size(); v.emplace_back(); }) {
      uint32_t n = 0;
      get_raw(&n, sizeof(n));
      // Each element takes at least one byte: a count larger than what is
      // left is malformed. No reserve(): elements are larger in memory than
      // on the wire, so memory grows only with what actually decodes.
      if (!ok() || !need(n)) return;
      v.clear();
      for (uint32_t i = 0; i < n && ok(); ++i) (*this)(v.emplace_back());
    } else {
      v.visit(*this);
    }
  }

  bool ok() const { return m_error.empty(); }
  /// Ok only if nothing failed and every byte was consumed.
  [[nodiscard]] Result<void> finish() const {
    if (!ok()) return fail(EPROTO, m_error);
    if (m_pos != m_in.size())
      return fail(EPROTO, "malformed payload: " + std::to_string(m_in.size() - m_pos) +
                              " trailing bytes");
    return {};
  }

 private:
  bool need(size_t n) {
    if (m_in.size() - m_pos < n) {
      m_error = "malformed payload: field of " + std::to_string(n) + " bytes at offset " +
                std::to_string(m_pos) + " overruns " + std::to_string(m_in.size()) + "-byte payload";
      return false;
    }
    return true;
  }
  void get_raw(void* out, size_t n) {
    if (!ok() || !need(n)) {
      std::memset(out, 0, n);
      return;
    }
    std::memcpy(out, m_in.data() + m_pos, n);
    m_pos += n;
  }

  std::span<const std::byte> m_in;
  size_t m_pos = 0;
  std::string m_error;
};

/// Encodes a message struct (one with visit()).
template <typename M>
Bytes encode(const M& m) {
  Writer w;
  w(m);
  return w.take();
}

/// Encodes a message struct for a gathered send: its large byte strings
/// are referenced, so `m` must outlive the send.
template <typename M>
Gathered encode_gathered(const M& m) {
  Writer w(Writer::Mode::gather);
  w(m);
  return w.take_gathered();
}

inline Gathered Gathered::of(ByteView whole) {
  Gathered g;
  if (!whole.empty()) g.m_pieces.push_back({whole.data(), 0, whole.size()});
  g.m_size = whole.size();
  return g;
}

inline std::vector<ByteView> Gathered::pieces() const {
  std::vector<ByteView> out;
  out.reserve(m_pieces.size());
  for (const auto& p : m_pieces) out.emplace_back(p.ext ? p.ext : m_small.data() + p.off, p.len);
  return out;
}

inline Bytes Gathered::flatten() const {
  Bytes out;
  out.reserve(m_size);
  for (auto piece : pieces()) out.insert(out.end(), piece.begin(), piece.end());
  return out;
}

/// Decodes a message struct, requiring the payload be consumed exactly.
/// Errors: EPROTO naming the malformation.
template <typename M>
[[nodiscard]] Result<M> decode(std::span<const std::byte> in) {
  M m{};
  Reader r(in);
  r(m);
  if (auto ok = r.finish(); !ok) return tl::unexpected(ok.error());
  return m;
}

}  // namespace mrc::proto
