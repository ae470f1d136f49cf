// Payload codec: little-endian integers, u32-length-prefixed strings and
// byte strings, u32-counted vectors, and structs that list their fields
// with visit(). Decoding checks every length and that the payload was
// consumed exactly (docs/protocol.md §3).
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "common/result.h"
#include "common/zstd.h"

namespace mrc::proto {

/// Appends fields to a byte buffer.
class Writer {
 public:
  template <typename T>
  void operator()(const T& v) {
    if constexpr (std::is_integral_v<T> || std::is_enum_v<T>) {
      put_int(v);
    } else if constexpr (std::is_same_v<T, std::string>) {
      put_blob(v.data(), v.size());
    } else if constexpr (std::is_same_v<T, Bytes>) {
      put_blob(v.data(), v.size());
    } else if constexpr (requires { v.begin(); v.size(); }) {
      put_int(static_cast<uint32_t>(v.size()));
      for (const auto& e : v) (*this)(e);
    } else {
      const_cast<T&>(v).visit(*this);
    }
  }
  Bytes take() { return std::move(m_out); }

 private:
  template <typename I>
  void put_int(I v) {
    static_assert(std::endian::native == std::endian::little, "wire is little-endian");
    auto p = reinterpret_cast<const std::byte*>(&v);
    m_out.insert(m_out.end(), p, p + sizeof(v));
  }
  void put_blob(const void* p, size_t n) {
    put_int(static_cast<uint32_t>(n));
    auto b = static_cast<const std::byte*>(p);
    m_out.insert(m_out.end(), b, b + n);
  }
  Bytes m_out;
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
    } else if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, Bytes>) {
      uint32_t n = 0;
      get_raw(&n, sizeof(n));
      if (!ok() || !need(n)) return;
      auto p = m_in.data() + m_pos;
      if constexpr (std::is_same_v<T, std::string>)
        v.assign(reinterpret_cast<const char*>(p), n);
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
