// The two things a gossip Node needs from the world, behind interfaces (as
// memberlist does) so that the same Node code runs on real sockets and time
// in mosixd and on the simulated ones of sim.h: a monotonic clock and a
// datagram sender. Receiving is pushed in by the owner (Node::receive).
#pragma once

#include <cstdint>
#include <span>

#include "common/result.h"
#include "mosix/gossip/address.h"

namespace mosix::gossip {

/// A monotonic clock in milliseconds. Only differences matter: nodes'
/// clocks are never compared (entries travel with ages, not timestamps).
class Clock {
 public:
  virtual ~Clock() = default;
  /// Milliseconds since an arbitrary, fixed origin; never decreases.
  virtual int64_t now_ms() const = 0;
};

/// CLOCK_MONOTONIC (std::chrono::steady_clock).
class SystemClock final : public Clock {
 public:
  int64_t now_ms() const override;
};

/// Sends one datagram. Delivery is best effort, as with UDP: a packet may
/// be lost, and the Node never waits for an answer.
class Network {
 public:
  virtual ~Network() = default;
  /// Queues `bytes` for `to`. Errors: the cause (errno), e.g. EAGAIN when
  /// the socket buffer is full; the Node counts them and goes on.
  [[nodiscard]] virtual mrc::Result<void> send(const Address& to, std::span<const std::byte> bytes) = 0;
};

}  // namespace mosix::gossip
