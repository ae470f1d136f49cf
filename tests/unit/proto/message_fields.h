// Test-only view of every message struct's fields, written independently of
// the structs' visit(): structured bindings list each member, so adding a
// member without updating this file fails to compile, and a member missing
// from visit() shows up as a round-trip mismatch. On top of it: equality,
// gtest printing, a filler giving every field a distinct non-zero value,
// and the independent wire size. Not the codec under test.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <ostream>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "proto/messages.h"

namespace mrc::proto {

// These live in mrc::proto so argument-dependent lookup finds them from
// std::tuple's and gtest's comparisons and printers.
#define MRC_TEST_FIELDS(T, ...)                       \
  inline auto tie_fields(T& x) {                      \
    auto& [__VA_ARGS__] = x;                          \
    return std::tie(__VA_ARGS__);                     \
  }                                                   \
  inline auto tie_fields(const T& x) {                \
    const auto& [__VA_ARGS__] = x;                    \
    return std::tie(__VA_ARGS__);                     \
  }

MRC_TEST_FIELDS(Attr, a, b, c, d, e, f, g, h, i, j, k, l, m, n, o)
MRC_TEST_FIELDS(Entry, a, b, c)
MRC_TEST_FIELDS(NodeReq, a)
MRC_TEST_FIELDS(NameReq, a, b)
MRC_TEST_FIELDS(FhReq, a)
MRC_TEST_FIELDS(SetattrReq, a, b, c, d, e, f, g, h, i, j, k)
MRC_TEST_FIELDS(FhRep, a, b)
MRC_TEST_FIELDS(ReaddirReq, a, b, c, d)
MRC_TEST_FIELDS(DirEntry, a, b, c)
MRC_TEST_FIELDS(ReaddirRep, a, b)
MRC_TEST_FIELDS(OpenReq, a, b)
MRC_TEST_FIELDS(ReadReq, a, b, c, d)
MRC_TEST_FIELDS(DataRep, a)
MRC_TEST_FIELDS(WriteReq, a, b, c, d)
MRC_TEST_FIELDS(WriteRep, a, b)
MRC_TEST_FIELDS(CreateReq, a, b, c, d)
MRC_TEST_FIELDS(CreateRep, a, b, c)
MRC_TEST_FIELDS(MknodReq, a, b, c, d)
MRC_TEST_FIELDS(RenameReq, a, b, c, d, e)
MRC_TEST_FIELDS(SymlinkReq, a, b, c)
MRC_TEST_FIELDS(ReadlinkRep, a)
MRC_TEST_FIELDS(LinkReq, a, b, c)
MRC_TEST_FIELDS(StatfsRep, a, b, c, d, e, f, g, h, i)
MRC_TEST_FIELDS(FsyncReq, a, b, c)
MRC_TEST_FIELDS(InvalItem, a, b, c)
MRC_TEST_FIELDS(InvalidateReq, a)
MRC_TEST_FIELDS(ExportSpec, a, b)
MRC_TEST_FIELDS(JobSpec, a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p)
MRC_TEST_FIELDS(SignalMsg, a)
MRC_TEST_FIELDS(WinSizeMsg, a, b)
MRC_TEST_FIELDS(StreamDataMsg, a, b)
MRC_TEST_FIELDS(StreamCloseMsg, a)
MRC_TEST_FIELDS(StreamAckMsg, a, b)
MRC_TEST_FIELDS(JobExitMsg, a, b)
MRC_TEST_FIELDS(FatalMsg, a)
MRC_TEST_FIELDS(ForgetItem, a, b)
MRC_TEST_FIELDS(ForgetMsg, a)
MRC_TEST_FIELDS(JobStartedMsg, a)
MRC_TEST_FIELDS(AttachMsg, a, b, c, d, e, f)
MRC_TEST_FIELDS(UpstreamHelloMsg, a, b)
#undef MRC_TEST_FIELDS

template <typename T>
concept HasFields = requires(const T& t) { tie_fields(t); };

template <HasFields T>
bool operator==(const T& a, const T& b) {
  return tie_fields(a) == tie_fields(b);
}

template <HasFields T>
void PrintTo(const T& x, std::ostream* os) {
  *os << ::testing::PrintToString(tie_fields(x));
}

}  // namespace mrc::proto

namespace mrc::test {

using proto::HasFields;

template <typename T>
inline constexpr bool is_vector_v = false;
template <typename E>
inline constexpr bool is_vector_v<std::vector<E>> = true;

/// Gives every field a distinct non-zero value (a fresh counter value per
/// scalar; strings and byte strings carry NUL and 0xff to prove they are
/// binary-safe; vectors get 1–3 elements so counts differ).
class Filler {
 public:
  template <typename T>
  void operator()(T& v) {
    if constexpr (std::is_integral_v<T>) {
      // An odd multiplier is a bijection modulo 2^(8·size): distinct,
      // non-zero values for every counter below 256, every byte exercised.
      v = static_cast<T>(next() * 0x0102030405060709ULL);
    } else if constexpr (std::is_same_v<T, std::string>) {
      v = "s" + std::to_string(next());
      v += '\0';
      v += '\xff';
    } else if constexpr (std::is_same_v<T, Bytes>) {
      uint64_t c = next();
      v.assign(1 + c % 5, std::byte{0xff});
      v.front() = static_cast<std::byte>(c);
      v.push_back(std::byte{0});
    } else if constexpr (is_vector_v<T>) {
      uint64_t c = next();
      v.clear();
      for (uint64_t i = 0; i < 1 + c % 3; ++i) (*this)(v.emplace_back());
    } else {
      std::apply([this](auto&... f) { ((*this)(f), ...); }, proto::tie_fields(v));
    }
  }

 private:
  uint64_t next() { return ++m_counter; }
  uint64_t m_counter = 0;
};

template <typename T>
T filled() {
  T m{};
  Filler f;
  f(m);
  return m;
}

/// Encoded size computed from the fields, not from visit(), bytes.
template <typename T>
size_t wire_size(const T& v) {
  if constexpr (std::is_integral_v<T>) {
    return sizeof(T);
  } else if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, Bytes>) {
    return 4 + v.size();
  } else if constexpr (is_vector_v<T>) {
    size_t n = 4;
    for (const auto& e : v) n += wire_size(e);
    return n;
  } else {
    return std::apply([](const auto&... f) { return (size_t{0} + ... + wire_size(f)); },
                      proto::tie_fields(v));
  }
}

/// True if every scalar, string, byte string and vector in `v` is non-zero
/// / non-empty (guards against a filler that silently skipped a field).
template <typename T>
bool all_set(const T& v) {
  if constexpr (std::is_integral_v<T>) {
    return v != 0;
  } else if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, Bytes>) {
    return !v.empty();
  } else if constexpr (is_vector_v<T>) {
    if (v.empty()) return false;
    for (const auto& e : v)
      if (!all_set(e)) return false;
    return true;
  } else {
    return std::apply([](const auto&... f) { return (true && ... && all_set(f)); },
                      proto::tie_fields(v));
  }
}

}  // namespace mrc::test
