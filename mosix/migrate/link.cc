// The migration link's frames and handshake (docs/migration-link.md).
#include "mosix/migrate/link.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/fd.h"
#include "common/le.h"
#include "mosix/gossip/address.h"
#include "mosix/gossip/mac.h"

namespace mosix::migrate {
namespace {

using mrc::fail;

constexpr size_t k_header = 8;
constexpr uint32_t k_last_type = static_cast<uint32_t>(FrameType::stdin_back);

/// Waits until `fd` is readable, at most `timeout_ms` (-1: forever).
mrc::Result<void> wait_readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  for (;;) {
    int n = ::poll(&p, 1, timeout_ms);
    if (n > 0) return {};
    if (n == 0) return fail(ETIMEDOUT, "the link: no answer within " + std::to_string(timeout_ms) + " ms");
    if (errno != EINTR) return mrc::fail_errno("poll");
  }
}

/// Exactly out.size() bytes; end of stream anywhere is ECONNRESET.
mrc::Result<void> read_all(int fd, std::span<std::byte> out, int timeout_ms) {
  size_t got = 0;
  while (got < out.size()) {
    if (auto w = wait_readable(fd, timeout_ms); !w) return w;
    ssize_t n = ::read(fd, out.data() + got, out.size() - got);
    if (n > 0) {
      got += static_cast<size_t>(n);
    } else if (n == 0) {
      return fail(ECONNRESET, "the link closed");
    } else if (errno != EINTR && errno != EAGAIN) {
      return mrc::fail_errno("the link");
    }
  }
  return {};
}

std::span<const std::byte> bytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

}  // namespace

mrc::Result<void> send_frame(int fd, FrameType type, std::span<const std::byte> payload) {
  std::byte h[k_header];
  mrc::put_le<uint32_t>(h, static_cast<uint32_t>(type));
  mrc::put_le<uint32_t>(h + 4, static_cast<uint32_t>(payload.size()));
  std::span<const std::byte> pieces[] = {{h, k_header}, payload};
  auto w = mrc::writev_all(fd, pieces);
  if (!w) return fail(w.error().code, "the link: " + w.error().message);
  return {};
}

mrc::Result<void> send_text(int fd, FrameType type, std::string_view text) { return send_frame(fd, type, bytes(text)); }

mrc::Result<void> send_u32(int fd, FrameType type, uint32_t v) {
  std::byte b[4];
  mrc::put_le<uint32_t>(b, v);
  return send_frame(fd, type, b);
}

mrc::Result<Frame> recv_frame(int fd, int timeout_ms) {
  std::byte h[k_header];
  if (auto r = read_all(fd, h, timeout_ms); !r) return tl::unexpected(r.error());
  uint32_t type = mrc::get_le<uint32_t>(h);
  uint32_t len = mrc::get_le<uint32_t>(h + 4);
  if (type == 0 || type > k_last_type) return fail(EPROTO, "the link: unknown frame type " + std::to_string(type));
  if (len > k_max_frame)
    return fail(EPROTO,
                "the link: a frame of " + std::to_string(len) + " bytes (at most " + std::to_string(k_max_frame) + ")");
  Frame f{static_cast<FrameType>(type), std::vector<std::byte>(len)};
  if (auto r = read_all(fd, f.payload, timeout_ms); !r) return tl::unexpected(r.error());
  return f;
}

mrc::Result<uint32_t> frame_u32(const Frame& f) {
  if (f.payload.size() != 4)
    return fail(EPROTO, "the link: frame type " + std::to_string(static_cast<uint32_t>(f.type)) + " of " +
                            std::to_string(f.payload.size()) + " bytes, not 4");
  return mrc::get_le<uint32_t>(f.payload.data());
}

mrc::Result<std::array<std::byte, 32>> auth_tag(std::string_view key, std::span<const std::byte> nonce) {
  auto mac = gossip::Mac::create(gossip::MacKind::hmac_sha256, key);
  if (!mac) return tl::unexpected(mac.error());
  std::vector<std::byte> data(bytes(k_hello_text).begin(), bytes(k_hello_text).end());
  data.insert(data.end(), nonce.begin(), nonce.end());
  return mac->sign(data);
}

mrc::Result<void> accept_handshake(int fd, std::string_view key, int timeout_ms) {
  std::array<std::byte, k_nonce_bytes> nonce;
  if (::getrandom(nonce.data(), nonce.size(), 0) != static_cast<ssize_t>(nonce.size()))
    return mrc::fail_errno("getrandom");
  std::vector<std::byte> hello(bytes(k_hello_text).begin(), bytes(k_hello_text).end());
  hello.insert(hello.end(), nonce.begin(), nonce.end());
  if (auto s = send_frame(fd, FrameType::hello, hello); !s) return s;
  auto want = auth_tag(key, nonce);
  if (!want) return tl::unexpected(want.error());
  auto f = recv_frame(fd, timeout_ms);
  if (!f) return tl::unexpected(f.error());
  if (f->type != FrameType::auth || f->payload.size() != want->size())
    return fail(EACCES, "the peer did not authenticate (no auth frame)");
  // Constant time: the difference of every byte, or'ed.
  std::byte diff{0};
  for (size_t i = 0; i < want->size(); ++i) diff |= (*want)[i] ^ f->payload[i];
  if (diff != std::byte{0}) return fail(EACCES, "the peer's auth is not signed with the cluster key");
  return {};
}

mrc::Result<void> connect_handshake(int fd, const Signer& sign, int timeout_ms) {
  auto f = recv_frame(fd, timeout_ms);
  if (!f) return tl::unexpected(f.error());
  if (f->type == FrameType::error) return fail(ECONNREFUSED, "the destination refused: " + f->text());
  if (f->type != FrameType::hello || f->payload.size() != k_hello_text.size() + k_nonce_bytes ||
      std::memcmp(f->payload.data(), k_hello_text.data(), k_hello_text.size()) != 0)
    return fail(EPROTO, "the destination is not a MOSIX migration endpoint (or "
                        "another version)");
  auto tag = sign(std::span(f->payload).subspan(k_hello_text.size()));
  if (!tag) return tl::unexpected(tag.error());
  return send_frame(fd, FrameType::auth, *tag);
}

mrc::Result<size_t> ImageFrameSource::read(std::span<std::byte> out) {
  while (m_at == m_buf.size()) {
    if (m_ended) return size_t{0};
    auto f = recv_frame(m_fd, m_timeout_ms);
    if (!f) return tl::unexpected(f.error());
    if (f->type == FrameType::error) {
      m_ended = true;
      return fail(ECONNABORTED, "the sender gave up: " + f->text());
    }
    if (f->type != FrameType::image)
      return fail(EPROTO, "the link: frame type " + std::to_string(static_cast<uint32_t>(f->type)) +
                              " in the middle of an image");
    m_ended = f->payload.empty();
    m_buf = std::move(f->payload);
    m_at = 0;
  }
  size_t n = std::min(out.size(), m_buf.size() - m_at);
  std::memcpy(out.data(), m_buf.data() + m_at, n);
  m_at += n;
  return n;
}

mrc::Result<void> ImageFrameSink::write(std::span<const std::byte> b) {
  while (!b.empty()) {
    size_t n = std::min(b.size(), k_image_piece - m_buf.size());
    m_buf.insert(m_buf.end(), b.begin(), b.begin() + static_cast<ptrdiff_t>(n));
    b = b.subspan(n);
    if (m_buf.size() == k_image_piece) {
      if (auto s = send_frame(m_fd, FrameType::image, m_buf); !s) return s;
      m_buf.clear();
    }
  }
  return {};
}

mrc::Result<void> ImageFrameSink::end() {
  if (!m_buf.empty())
    if (auto s = send_frame(m_fd, FrameType::image, m_buf); !s) return s;
  m_buf.clear();
  return send_frame(m_fd, FrameType::image);
}

void set_link_timeouts(int fd, int timeout_ms) {
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  unsigned user = static_cast<unsigned>(timeout_ms);
  ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user, sizeof user);
  int on = 1, probes = 3;
  int idle = std::max(1, timeout_ms / 1000 / 2), every = std::max(1, timeout_ms / 1000 / 6);
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &every, sizeof every);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof probes);
}

mrc::Result<int> connect_tcp(const std::string& address, int timeout_ms) {
  auto a = gossip::parse_address(address);
  if (!a) return tl::unexpected(a.error());
  mrc::UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!s) return mrc::fail_errno("socket");
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(a->port);
  sa.sin_addr.s_addr = htonl(a->ip);
  if (::connect(s.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
    if (errno != EINPROGRESS) return mrc::fail_errno("connect to " + address);
    pollfd p{s.get(), POLLOUT, 0};
    int n;
    do n = ::poll(&p, 1, timeout_ms);
    while (n < 0 && errno == EINTR);
    if (n == 0)
      return fail(ETIMEDOUT, "connect to " + address + ": no answer within " + std::to_string(timeout_ms) + " ms");
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) return fail(err, "connect to " + address + ": " + std::strerror(err));
  }
  mrc::set_nonblocking(s.get(), false);
  int one = 1;
  ::setsockopt(s.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return s.release();
}

}  // namespace mosix::migrate
