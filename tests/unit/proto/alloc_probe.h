// Test-only probe of heap requests: records the largest single operator new
// request made while a probe is alive, and refuses (bad_alloc) any request
// above its cap instead of touching gigabytes. Not thread-aware: meant for
// single-threaded decode tests.
#pragma once

#include <cstddef>

namespace mrc::test {

class AllocProbe {
 public:
  /// Requests above `cap` bytes throw std::bad_alloc while the probe lives.
  explicit AllocProbe(size_t cap = size_t{64} << 20);
  ~AllocProbe();
  AllocProbe(const AllocProbe&) = delete;
  AllocProbe& operator=(const AllocProbe&) = delete;
  /// Largest single request seen since construction, bytes.
  size_t largest() const;
};

}  // namespace mrc::test
