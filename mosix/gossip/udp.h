// The real Network: one non-blocking IPv4 UDP socket bound to the node's
// gossip address. mosixd polls fd() and calls receive_all() when it is
// readable. Datagrams only: no retries, no connections, no policy.
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <vector>

#include "common/fd.h"
#include "common/result.h"
#include "mosix/gossip/clock.h"

namespace mosix::gossip {

class UdpSocket final : public Network {
 public:
  static constexpr size_t k_max_per_call = 1024;

  /// Binds to `address` (port 0 = any free port; see local_address()).
  /// `max_datagram` bounds what receive_all() hands on intact, bytes.
  /// Errors: the errno of socket/bind (EADDRINUSE, EADDRNOTAVAIL, ...).
  [[nodiscard]] static mrc::Result<UdpSocket> bind(const Address& address, size_t max_datagram);

  /// For poll(2): readable when datagrams wait.
  int fd() const { return m_fd.get(); }
  /// The bound address (with the port the kernel chose for port 0).
  const Address& local_address() const { return m_local; }

  /// sendto(2), without blocking. Errors: its errno (EAGAIN when the send
  /// buffer is full, ECONNREFUSED after an ICMP port-unreachable, ...).
  [[nodiscard]] mrc::Result<void> send(const Address& to, std::span<const std::byte> bytes) override;

  /// Reads the waiting datagrams and calls `handle(bytes, from)` for each,
  /// until the socket would block or k_max_per_call were read (so that a
  /// flood cannot starve the caller's loop; poll says readable again). A datagram longer than max_datagram is
  /// handed on as max_datagram + 1 bytes (cut), so the Node counts it as
  /// oversized. Returns how many were read. Errors: a recvfrom(2) errno
  /// other than EAGAIN/EINTR (ICMP errors are skipped).
  [[nodiscard]] mrc::Result<size_t> receive_all(
      const std::function<void(std::span<const std::byte>, const Address&)>& handle);

 private:
  UdpSocket(mrc::UniqueFd fd, Address local, size_t max_datagram);
  mrc::UniqueFd m_fd;
  Address m_local;
  std::vector<std::byte> m_buf;  // max_datagram + 1
};

}  // namespace mosix::gossip
