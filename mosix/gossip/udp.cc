// UdpSocket: the BSD socket calls behind Network (the only file of the
// gossip engine that includes the socket headers).
#include "mosix/gossip/udp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>

namespace mosix::gossip {
namespace {

sockaddr_in to_sockaddr(const Address& a) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(a.ip);
  sa.sin_port = htons(a.port);
  return sa;
}

Address from_sockaddr(const sockaddr_in& sa) { return {ntohl(sa.sin_addr.s_addr), ntohs(sa.sin_port)}; }

}  // namespace

UdpSocket::UdpSocket(mrc::UniqueFd fd, Address local, size_t max_datagram)
    : m_fd(std::move(fd)), m_local(local), m_buf(max_datagram + 1) {}

mrc::Result<UdpSocket> UdpSocket::bind(const Address& address, size_t max_datagram) {
  mrc::UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return mrc::fail_errno("gossip socket");
  sockaddr_in sa = to_sockaddr(address);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) != 0)
    return mrc::fail_errno("gossip bind " + address.str());
  socklen_t len = sizeof(sa);
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sa), &len) != 0)
    return mrc::fail_errno("gossip getsockname");
  return UdpSocket(std::move(fd), from_sockaddr(sa), max_datagram);
}

mrc::Result<void> UdpSocket::send(const Address& to, std::span<const std::byte> bytes) {
  sockaddr_in sa = to_sockaddr(to);
  ssize_t n;
  do {
    n = ::sendto(m_fd.get(), bytes.data(), bytes.size(), 0, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa));
  } while (n < 0 && errno == EINTR);
  if (n < 0) return mrc::fail_errno("gossip send to " + to.str());
  return {};
}

mrc::Result<size_t> UdpSocket::receive_all(
    const std::function<void(std::span<const std::byte>, const Address&)>& handle) {
  size_t count = 0;
  while (count < k_max_per_call) {
    sockaddr_in sa{};
    socklen_t len = sizeof(sa);
    // MSG_TRUNC: the return value is the datagram's real length.
    ssize_t n = ::recvfrom(m_fd.get(), m_buf.data(), m_buf.size(), MSG_TRUNC, reinterpret_cast<sockaddr*>(&sa), &len);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return count;
      if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH) continue;
      return mrc::fail_errno("gossip receive");
    }
    ++count;
    size_t got = std::min(static_cast<size_t>(n), m_buf.size());
    handle(std::span<const std::byte>(m_buf.data(), got), from_sockaddr(sa));
  }
  return count;
}

}  // namespace mosix::gossip
