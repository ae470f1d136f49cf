// The guest end's file link: the port and token, the one connection, the
// JobSpec, then the private namespace with the home node's exports on FUSE.
#include "mosix/migrate/home_files.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>

#include "common/fd.h"
#include "common/log.h"
#include "fusefs/client.h"
#include "mosix/migrate/link.h"
#include "proto/codec.h"
#include "proto/connection.h"
#include "target/namespace.h"

namespace mosix::migrate {

using mrc::fail;
using mrc::UniqueFd;

/// Bytes of the file link's token.
constexpr size_t k_token_bytes = 32;

struct HomeFiles::State {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<mrc::proto::JobSpec> spec;
  bool closed = false;
  std::string close_reason;
  std::unique_ptr<mrc::proto::Connection> conn;
  std::atomic<mrc::fusefs::Client*> fuse{nullptr};
  std::unique_ptr<mrc::fusefs::Client> fuse_owner;
};

namespace {

/// Waits up to `timeout_ms` for `fd` to be readable. Errors: ETIMEDOUT, poll's.
mrc::Result<void> wait_readable(int fd, int timeout_ms, const std::string& what) {
  pollfd p{fd, POLLIN, 0};
  int n;
  do n = ::poll(&p, 1, timeout_ms);
  while (n < 0 && errno == EINTR);
  if (n < 0) return mrc::fail_errno("poll");
  if (n == 0) return fail(ETIMEDOUT, what + ": nothing within " + std::to_string(timeout_ms) + " ms");
  return {};
}

/// Reads exactly `out.size()` bytes, each piece within `timeout_ms`.
mrc::Result<void> read_exact(int fd, std::span<std::byte> out, int timeout_ms, const std::string& what) {
  size_t got = 0;
  while (got < out.size()) {
    if (auto w = wait_readable(fd, timeout_ms, what); !w) return w;
    ssize_t n = ::read(fd, out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return mrc::fail_errno(what);
    if (n == 0) return fail(ECONNRESET, what + ": the connection closed");
    got += static_cast<size_t>(n);
  }
  return {};
}

/// A listening TCP socket on the link's own address, any port.
mrc::Result<std::pair<UniqueFd, uint16_t>> listen_beside(int link) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  if (::getsockname(link, reinterpret_cast<sockaddr*>(&a), &len) != 0) return mrc::fail_errno("getsockname");
  a.sin_port = 0;
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) return mrc::fail_errno("socket");
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(s.get(), 1) != 0)
    return mrc::fail_errno("listen for the file link");
  len = sizeof a;
  if (::getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) return mrc::fail_errno("getsockname");
  return std::pair{std::move(s), ntohs(a.sin_port)};
}

}  // namespace

HomeFiles::~HomeFiles() = default;

int HomeFiles::flush() {
  auto* f = m_state->fuse.load();
  return f ? f->flush_all() : 0;
}

mrc::Result<std::unique_ptr<HomeFiles>> HomeFiles::open(int link, int timeout_ms) {
  namespace proto = mrc::proto;
  auto log = mrc::logger("guest");
  auto listener = listen_beside(link);
  if (!listener) return tl::unexpected(listener.error());
  std::array<std::byte, k_token_bytes> token{};
  if (::getrandom(token.data(), token.size(), 0) != static_cast<ssize_t>(token.size()))
    return mrc::fail_errno("getrandom");
  std::array<std::byte, 2 + k_token_bytes> answer{};
  answer[0] = static_cast<std::byte>(listener->second & 0xff);
  answer[1] = static_cast<std::byte>(listener->second >> 8);
  std::copy(token.begin(), token.end(), answer.begin() + 2);
  if (auto s = send_frame(link, FrameType::file_port, answer); !s) return tl::unexpected(s.error());

  // The one connection, and its token.
  if (auto w = wait_readable(listener->first.get(), timeout_ms, "the file link"); !w) return tl::unexpected(w.error());
  UniqueFd files(::accept4(listener->first.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!files) return mrc::fail_errno("accept the file link");
  listener->first.reset();
  std::array<std::byte, k_token_bytes> presented{};
  if (auto r = read_exact(files.get(), presented, timeout_ms, "the file link's token"); !r)
    return tl::unexpected(r.error());
  unsigned char diff = 0;  // in constant time
  for (size_t i = 0; i < k_token_bytes; ++i) diff |= static_cast<unsigned char>(presented[i] ^ token[i]);
  if (diff != 0) return fail(EACCES, "the file link did not present the token");
  int one = 1;
  ::setsockopt(files.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  set_link_timeouts(files.get(), timeout_ms);

  // mrc's file protocol on it, as in mrc-target: invalidations go to the
  // FUSE client once it exists (nothing is cached before).
  auto* st = new State;  // never freed: see ~HomeFiles
  int in = ::fcntl(files.get(), F_DUPFD_CLOEXEC, 3);
  st->conn = std::make_unique<proto::Connection>(UniqueFd(in), std::move(files), 1);
  proto::Connection& conn = *st->conn;
  conn.start({.on_request =
                  [st, &conn](proto::Op op, uint64_t id, mrc::Bytes p) {
                    if (op != proto::Op::Invalidate) return conn.reply(op, id, ENOSYS, {});
                    if (auto* f = st->fuse.load()) return f->on_invalidate(id, std::move(p));
                    conn.reply(op, id, 0, {});
                  },
              .on_control =
                  [st](proto::Ctl op, mrc::Bytes p) {
                    std::lock_guard lk(st->mu);
                    if (op == proto::Ctl::JobSpec) {
                      if (auto m = proto::decode<proto::JobSpec>(p))
                        st->spec = std::move(*m);
                      else
                        st->close_reason = "a malformed job spec: " + m.error().message;
                    } else if (op == proto::Ctl::Fatal) {
                      if (auto m = proto::decode<proto::FatalMsg>(p)) st->close_reason = m->message;
                      st->closed = true;
                    }
                    st->cv.notify_all();
                  },
              .on_closed =
                  [st](const std::string& why) {
                    std::lock_guard lk(st->mu);
                    st->closed = true;
                    if (st->close_reason.empty()) st->close_reason = why;
                    st->cv.notify_all();
                  }});
  proto::JobSpec spec;
  {
    std::unique_lock lk(st->mu);
    if (!st->cv.wait_for(lk, std::chrono::milliseconds(timeout_ms), [&] { return st->spec || st->closed; }))
      return fail(ETIMEDOUT, "no word from the home node's file service within " + std::to_string(timeout_ms) + " ms");
    if (!st->spec) return fail(ECONNABORTED, "the home node's file service: " + st->close_reason);
    spec = *st->spec;
  }
  conn.set_zstd_level(spec.zstd_level);

  // The namespace, the mount, the exports at their paths.
  if (auto r = mrc::target::enter_private_namespace(); !r) return tl::unexpected(r.error());
  auto view = mrc::target::View::create();
  if (!view) return tl::unexpected(view.error());
  if (auto r = view->stash_keep_local(spec.keep_local); !r) return tl::unexpected(r.error());
  mrc::fusefs::MountOptions mo;
  mo.mountpoint = view->fuse_dir();
  mo.head_uid = spec.head_uid;
  mo.head_gid = spec.head_gid;
  mo.lease = std::chrono::milliseconds(std::max<uint32_t>(spec.lease_ms, 30));
  mo.timeout = std::chrono::milliseconds(std::max<uint32_t>(spec.grace_ms, 100));
  mo.fsname = "mosix-home";
  // The process may run as its own user, not as us: it may use the mount,
  // checked by the files' modes, and what it makes is its own at home.
  mo.allow_other = true;
  st->fuse_owner = std::make_unique<mrc::fusefs::Client>(conn, mo);
  if (auto r = st->fuse_owner->mount(); !r) return fail(r.error().code, "FUSE mount failed: " + r.error().message);
  st->fuse_owner->start();
  st->fuse = st->fuse_owner.get();
  if (auto r = view->mount_exports(spec.exports); !r) return tl::unexpected(r.error());
  if (auto r = view->mount_keep_local(); !r) return tl::unexpected(r.error());
  view->seal();
  if (int root = view->root_fd(); root >= 0 && (::fchdir(root) != 0 || ::chroot(".") != 0))
    return mrc::fail_errno("chroot into the view");
  if (::chdir("/") != 0) return mrc::fail_errno("chdir /");
  log->info("the home node's files: {} exports on FUSE", spec.exports.size());
  if (auto s = send_frame(link, FrameType::home_files); !s) return tl::unexpected(s.error());
  return std::unique_ptr<HomeFiles>(new HomeFiles(st));
}

}  // namespace mosix::migrate
