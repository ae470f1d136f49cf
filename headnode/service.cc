// The file service daemon: accept loop, one Relay per attached target,
// reaping, and the idle exit that never races with a connecting mrc (both
// sides hold the lock file: mrc while it connects, we while we decide to go).
#include "headnode/service.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <list>
#include <map>
#include <memory>

#include "common/fd.h"
#include "common/log.h"
#include "headnode/coherence.h"
#include "headnode/session.h"
#include "headnode/upstream.h"
#include "headnode/watcher.h"
#include "proto/codec.h"
#include "proto/connection.h"
#include "proto/frame.h"

namespace mrc::headnode {
namespace {

/// Worker threads serving one target's file requests.
constexpr int k_threads_per_target = 8;
/// How long a connecting mrc may take to send its Attach, ms.
constexpr int k_attach_timeout_ms = 5000;

/// One attached target: the file service on its link, and the relay of
/// everything else between the link and the mrc that attached it.
class Relay {
 public:
  Relay(Coherence& coh, UniqueFd mrc, UniqueFd target, std::vector<UniqueFd> roots,
        const proto::AttachMsg& m, int wake_fd)
      : m_name(m.name), m_grace(m.grace_ms), m_wake(wake_fd) {
    int t = target.get(), c = mrc.get();
    m_target = std::make_unique<proto::Connection>(UniqueFd(::dup(t)), std::move(target), m.zstd_level);
    m_mrc = std::make_unique<proto::Connection>(UniqueFd(::dup(c)), std::move(mrc), 0);
    Session::Options so;
    so.name = m.name;
    so.lease = std::chrono::milliseconds(m.lease_ms);
    so.threads = k_threads_per_target;
    // Re-exporting an mrc mount: our head could not recall what this
    // target buffered, so its writes go through (and may be buffered by
    // the mount itself, under a lease its head can recall).
    so.write_leases = m.upstream.empty();
    so.on_revoked = [this](const std::string& why) { m_mrc->send(proto::Ctl::Fatal, proto::FatalMsg{why}); };
    auto s = Session::create(coh, *m_target, m.exports, std::move(roots), so);
    if (!s) {
      m_mrc->send(proto::Ctl::Fatal, proto::FatalMsg{s.error().message});
      m_mrc->close(s.error().message);
      m_target->close(s.error().message);
      m_dead = true;
      return;
    }
    m_session = std::move(*s);
    m_target->start({.on_request =
                         [this](proto::Op op, uint64_t id, Bytes p) { m_session->on_request(op, id, std::move(p)); },
                     .on_control =
                         [this](proto::Ctl op, Bytes p) {
                           if (op == proto::Ctl::Forget) return m_session->on_forget(p);
                           // The job is over (its writes flushed): close what it had
                           // open before mrc can exit, so running the file it just
                           // built on the head is not ETXTBSY.
                           if (op == proto::Ctl::JobExit) m_session->server().close_descriptors();
                           m_mrc->send_control(op, p);
                         },
                     .on_closed =
                         [this](const std::string& why) {
                           m_mrc->send(proto::Ctl::Fatal,
                                       proto::FatalMsg{"lost the connection (" + why + ")"});
                           m_mrc->close(why);
                           died();
                         }});
    m_mrc->start({.on_request = [this](proto::Op op, uint64_t id, Bytes) { m_mrc->reply(op, id, ENOSYS, {}); },
                  .on_control = [this](proto::Ctl op, Bytes p) { m_target->send_control(op, p); },
                  .on_closed =
                      [this](const std::string& why) {
                        m_target->close("mrc is done (" + why + ")");
                        died();
                      }});
  }

  /// Both streams closed: no callback runs any more, then the session goes.
  ~Relay() {
    m_target->close("file service shutting down");
    m_mrc->close("file service shutting down");
    m_target->join();
    m_mrc->join();
    m_session.reset();
  }

  bool dead() const { return m_dead.load(); }

  /// Descriptors are short: ask the target to forget `n` of its files.
  void hint_forget(size_t n) {
    if (!m_dead && m_session) m_session->hint_forget(n);
  }

  /// A target that has not renewed its lease for the grace period is cut
  /// off (a partition TCP does not notice for long): end its session.
  void check_silence() {
    if (m_dead || !m_session || m_grace.count() == 0 || m_session->silent_for() <= m_grace) return;
    std::string why = "no word from " + m_name + " for " + std::to_string(m_session->silent_for().count() / 1000) +
                      " s (network partition?)";
    m_mrc->send(proto::Ctl::Fatal, proto::FatalMsg{why});
    m_target->close(why);
  }
  const std::string& name() const { return m_name; }
  /// What the session served, for the log.
  std::string summary() const { return m_session ? m_session->server().served_summary() : "no session"; }

  /// Periodic upkeep (about once a second): write descriptors idle for a
  /// second close, so a file the job stopped writing is not held open for
  /// writing on the head while the job runs on.
  void tick() {
    if (!m_dead && m_session) m_session->server().drop_idle_writers(std::chrono::seconds(1));
  }

 private:
  void died() {
    m_dead = true;
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(m_wake, &one, sizeof(one));
  }

  const std::string m_name;
  const std::chrono::milliseconds m_grace;
  const int m_wake;  // eventfd of the accept loop
  std::unique_ptr<proto::Connection> m_target, m_mrc;
  std::unique_ptr<Session> m_session;
  std::atomic<bool> m_dead{false};
};

/// Reads the Attach frame and its descriptors from a new client.
Result<std::pair<proto::AttachMsg, std::vector<UniqueFd>>> read_attach(int sock) {
  std::array<std::byte, proto::k_header_size> raw;
  auto fds = recv_with_fds(sock, raw);
  if (!fds) return tl::unexpected(fds.error());
  auto h = proto::decode_header(raw);
  if (!h) return tl::unexpected(h.error());
  if (h->type != proto::FrameType::Control || h->op != static_cast<uint16_t>(proto::Ctl::Attach) ||
      (h->flags & proto::k_flag_zstd))
    return fail(EPROTO, "expected an uncompressed Attach frame first");
  Bytes body(h->length);
  auto got = read_exact(sock, body);
  if (!got || !*got) return fail(EPROTO, "Attach frame cut short");
  auto m = proto::decode<proto::AttachMsg>(body);
  if (!m) return tl::unexpected(m.error());
  if (fds->size() != 1 + m->exports.size())
    return fail(EPROTO, "Attach needs the target link and one descriptor per export, got " +
                            std::to_string(fds->size()));
  return std::pair{std::move(*m), std::move(*fds)};
}

/// Raises the descriptor limit to its hard maximum and returns how many
/// nodes (one O_PATH descriptor each) the service may hold: that, less a
/// reserve for sockets and open files.
size_t node_budget() {
  struct rlimit rl {};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
    ::getrlimit(RLIMIT_NOFILE, &rl);
  }
  constexpr size_t k_reserve = 1024, k_most = 1 << 22;
  size_t limit = rl.rlim_cur == RLIM_INFINITY ? k_most : std::min<size_t>(rl.rlim_cur, k_most);
  return limit > 2 * k_reserve ? limit - k_reserve : limit / 2;
}

}  // namespace

int run_service(const ServiceOptions& opts) {
  setup_logging("mrc-fileservice", opts.verbosity);
  auto log = logger("service");
  Coherence coh;
  // Kernels may remember more inodes than we have descriptors: past 90 %
  // of the budget, targets are asked to forget their oldest files.
  std::atomic<size_t> forget_wanted{0};
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  size_t budget = node_budget();
  coh.set_budget(budget, [&](size_t excess) {
    if (forget_wanted.exchange(excess) == 0) {
      uint64_t one = 1;
      [[maybe_unused]] auto n = ::write(wake.get(), &one, sizeof(one));
    }
  });
  auto last_forget = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  // Head-local edits invalidate the targets' caches too. Declared before
  // the relays, so it outlives every session.
  auto watcher = Watcher::create(coh);
  // Recursion: the FUSE mounts our exports live on, one subscription each.
  std::map<std::string, std::unique_ptr<Upstream>> upstreams;
  std::list<std::unique_ptr<Relay>> relays;
  auto idle_since = std::chrono::steady_clock::now();
  log->info("serving on {} (at most {} inodes at once)", opts.socket_path, budget);

  auto admit = [&](UniqueFd sock) {
    timeval tv{k_attach_timeout_ms / 1000, (k_attach_timeout_ms % 1000) * 1000};
    ::setsockopt(sock.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    auto a = read_attach(sock.get());
    if (!a) {
      log->warn("refusing a client: {}", a.error().message);
      return;
    }
    timeval none{0, 0};
    ::setsockopt(sock.get(), SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
    auto& [msg, fds] = *a;
    UniqueFd target = std::move(fds.front());
    std::vector<UniqueFd> roots;
    for (size_t i = 1; i < fds.size(); ++i) roots.push_back(std::move(fds[i]));
    log->info("attached {} ({} exports)", msg.name, msg.exports.size());
    if (!msg.upstream.empty()) {
      auto& u = upstreams[msg.upstream];
      if (!u || !u->alive()) {
        auto c = Upstream::connect(coh, msg.upstream);
        if (c)
          u = std::move(*c);
        else
          log->warn("{}: changes from upstream of this target will not reach {}", c.error().message, msg.name);
      }
    }
    relays.push_back(std::make_unique<Relay>(coh, std::move(sock), std::move(target), std::move(roots), msg,
                                             wake.get()));
  };
  // Non-blocking: the idle check must never wait for a client that is not
  // there. (Accepted sockets do not inherit O_NONBLOCK on Linux.)
  set_nonblocking(opts.listen_fd, true);
  auto accept_one = [&]() -> bool {
    int fd = ::accept4(opts.listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return false;
    admit(UniqueFd(fd));
    return true;
  };

  while (true) {
    pollfd fds[2] = {{opts.listen_fd, POLLIN, 0}, {wake.get(), POLLIN, 0}};
    int timeout = relays.empty() ? static_cast<int>(opts.linger.count()) : forget_wanted.load() ? 20 : 1000;  // ms
    int n = ::poll(fds, 2, timeout);
    if (n < 0 && errno != EINTR) {
      log->error("poll: {}", std::strerror(errno));
      return 1;
    }
    if (fds[1].revents & POLLIN) {
      uint64_t v;
      [[maybe_unused]] auto r = ::read(wake.get(), &v, sizeof(v));
    }
    if (fds[0].revents & POLLIN) accept_one();
    // At most every 20 ms, so the same victims are not asked twice while
    // their forgets are on the way.
    if (size_t excess = forget_wanted.load();
        excess && std::chrono::steady_clock::now() - last_forget > std::chrono::milliseconds(20)) {
      forget_wanted = 0;
      last_forget = std::chrono::steady_clock::now();
      for (auto& r : relays) r->hint_forget(excess / std::max<size_t>(relays.size(), 1) + 1);
    }
    for (auto it = relays.begin(); it != relays.end();) {
      (*it)->check_silence();
      (*it)->tick();
      if ((*it)->dead()) {
        log->info("detached {} ({})", (*it)->name(), (*it)->summary());
        it = relays.erase(it);
      } else {
        ++it;
      }
    }
    if (!relays.empty()) {
      idle_since = std::chrono::steady_clock::now();
      continue;
    }
    if (std::chrono::steady_clock::now() - idle_since < opts.linger) continue;
    // Idle long enough. Under the lock no mrc is connecting: serve what is
    // already queued, or go.
    UniqueFd lock(::open(opts.lock_path.c_str(), O_RDWR | O_CLOEXEC));
    if (lock) ::flock(lock.get(), LOCK_EX);
    if (accept_one()) continue;  // the lock closes (and unlocks) here
    ::unlink(opts.socket_path.c_str());
    log->info("idle for {} ms: exiting", opts.linger.count());
    return 0;
  }
}

}  // namespace mrc::headnode
