// Downstream: the abstract socket, the hello, the forwarding fan-out.
#include "fusefs/downstream.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <vector>

#include "common/log.h"
#include "proto/codec.h"

namespace mrc::fusefs {

Result<std::unique_ptr<Downstream>> Downstream::create(dev_t dev, std::chrono::milliseconds lease) {
  static std::atomic<int> counter{0};
  std::string name = "mrc-upstream-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!s) return fail_errno("socket");
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path + 1, name.data(), name.size());  // abstract: leading NUL
  auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&a), len) != 0 || ::listen(s.get(), 8) != 0)
    return fail_errno("upstream socket @" + name);
  std::unique_ptr<Downstream> d(new Downstream(std::move(s), "@" + name, dev, lease));
  d->m_thread = std::thread([p = d.get()] { p->accept_loop(); });
  return d;
}

Downstream::Downstream(UniqueFd listener, std::string address, dev_t dev, std::chrono::milliseconds lease)
    : m_listener(std::move(listener)), m_wake(::eventfd(0, EFD_CLOEXEC)), m_address(std::move(address)),
      m_dev(dev), m_lease(lease) {}

Downstream::~Downstream() {
  uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(m_wake.get(), &one, sizeof(one));
  if (m_thread.joinable()) m_thread.join();
  std::lock_guard lk(m_mu);
  for (auto& c : m_subs) c->close("mount going away");
  m_subs.clear();
}

void Downstream::accept_loop() {
  auto log = logger("fusefs");
  while (true) {
    pollfd fds[2] = {{m_listener.get(), POLLIN, 0}, {m_wake.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (fds[1].revents & POLLIN) return;
    if (!(fds[0].revents & POLLIN)) continue;
    UniqueFd c(::accept4(m_listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!c) continue;
    ucred cred{};
    socklen_t cl = sizeof(cred);
    if (::getsockopt(c.get(), SOL_SOCKET, SO_PEERCRED, &cred, &cl) != 0 || cred.uid != ::getuid()) {
      log->warn("refusing a subscriber of another user (uid {})", cred.uid);
      continue;
    }
    int fd = c.get();
    auto conn = std::make_unique<proto::Connection>(UniqueFd(::dup(fd)), std::move(c), 0);
    conn->start({.on_request = {}, .on_control = {}, .on_closed = {}});
    conn->send(proto::Ctl::UpstreamHello,
               proto::UpstreamHelloMsg{static_cast<uint64_t>(m_dev), static_cast<uint32_t>(m_lease.count())});
    log->info("a file service re-exporting this mount subscribed (pid {})", cred.pid);
    std::lock_guard lk(m_mu);
    m_subs.push_back(std::move(conn));
  }
}

size_t Downstream::forward(const proto::InvalidateReq& req, std::chrono::steady_clock::time_point deadline) {
  std::vector<proto::Connection*> subs;
  {
    std::lock_guard lk(m_mu);
    for (auto it = m_subs.begin(); it != m_subs.end();) {
      if ((*it)->closed()) {
        it = m_subs.erase(it);  // joins its reader: it ended already
      } else {
        subs.push_back(it->get());
        ++it;
      }
    }
  }
  if (subs.empty()) return 0;
  Bytes payload = proto::encode(req);
  std::vector<std::shared_ptr<proto::Connection::Call>> calls;
  for (auto* c : subs) calls.push_back(c->start_call(proto::Op::Invalidate, payload));
  for (size_t i = 0; i < subs.size(); ++i) {
    auto r = subs[i]->await(*calls[i], deadline);
    if (!r && r.error().code == ETIMEDOUT) {
      logger("fusefs")->warn("a re-exporting file service did not acknowledge an invalidation in time: dropping it");
      subs[i]->close("did not acknowledge an invalidation in time");
    }
  }
  return subs.size();
}

size_t Downstream::subscribers() const {
  std::lock_guard lk(m_mu);
  return m_subs.size();
}

}  // namespace mrc::fusefs
