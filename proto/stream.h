// Credit-based flow control for one stdio stream over a Connection: the
// sender may have at most `window` bytes sent but not yet acknowledged as
// written by the receiver, so a slow consumer never stalls file-service
// traffic behind it (docs/protocol.md §5).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace mrc::proto {

/// Bytes of stdio a sender may have unacknowledged.
inline constexpr uint64_t k_stream_window = 4 * 1024 * 1024;
/// Largest StreamData chunk, bytes.
inline constexpr size_t k_stream_chunk = 256 * 1024;

class StreamCredit {
 public:
  explicit StreamCredit(uint64_t window = k_stream_window) : m_window(window) {}
  /// Blocks until `n` more bytes fit in the window or close() was called.
  /// Returns false if closed.
  bool acquire(uint64_t n) {
    std::unique_lock lk(m_mu);
    m_cv.wait(lk, [&] { return m_closed || m_outstanding + n <= m_window || m_outstanding == 0; });
    if (m_closed) return false;
    m_outstanding += n;
    return true;
  }
  /// The receiver wrote `n` bytes out.
  void ack(uint64_t n) {
    std::lock_guard lk(m_mu);
    m_outstanding = n > m_outstanding ? 0 : m_outstanding - n;
    m_cv.notify_all();
  }
  void close() {
    std::lock_guard lk(m_mu);
    m_closed = true;
    m_cv.notify_all();
  }

 private:
  std::mutex m_mu;  // guards the fields below
  std::condition_variable m_cv;
  uint64_t m_window;
  uint64_t m_outstanding = 0;  // bytes
  bool m_closed = false;
};

}  // namespace mrc::proto
