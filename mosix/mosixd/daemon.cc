// mosixd's flow and its loop thread: the only thread; it owns the gossip
// Node, the UDP socket, the Measurer and the LocalServer.
#include "mosix/mosixd/daemon.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <random>
#include <vector>

#include "common/log.h"
#include "mosix/gossip/node.h"
#include "mosix/gossip/udp.h"
#include "mosix/migrate/guest.h"
#include "mosix/migrate/link.h"
#include "mosix/mosixd/local_proto.h"
#include "mosix/mosixd/local_socket.h"
#include "mosix/mosixd/measure.h"
#include "mosix/mosixd/speed.h"

namespace mosix::mosixd {
namespace {

using nlohmann::json;

/// The log file of a detached daemon, beside its socket.
std::string log_path(const Config& c) {
  auto slash = c.socket.rfind('/');
  return (slash == std::string::npos ? std::string(".") : c.socket.substr(0, slash)) + "/mosixd.log";
}

/// Detaches (fork, setsid; stdin/stdout to /dev/null, stderr to `log`).
/// The parent exits 0 once the child is on its own.
void detach(const std::string& log) {
  int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (out < 0) throw mrc::Fatal("cannot open the log file " + log + ": " + std::strerror(errno));
  pid_t pid = ::fork();
  if (pid < 0) throw mrc::Fatal(std::string("fork: ") + std::strerror(errno));
  if (pid > 0) std::_Exit(0);
  ::setsid();
  int null = ::open("/dev/null", O_RDWR);
  if (null >= 0) {
    ::dup2(null, 0);
    ::dup2(null, 1);
    ::close(null);
  }
  ::dup2(out, 2);
  ::close(out);
}

/// SIGTERM/SIGINT as a readable fd, so the loop's poll() sees them.
mrc::UniqueFd stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);  // a tool that hangs up must not kill us
  int fd = ::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd < 0) throw mrc::Fatal(std::string("signalfd: ") + std::strerror(errno));
  return mrc::UniqueFd(fd);
}

/// Guest ends at once (each a process, forked before the handshake), at
/// most: more connections are refused with the reason.
constexpr size_t k_max_guest_ends = 256;

/// The migration endpoint: TCP on the gossip address (the same port
/// number; TCP's and UDP's are apart), so a node's gossiped address is
/// where processes go to it.
mrc::UniqueFd listen_migrations(const gossip::Address& a) {
  mrc::UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!s) throw mrc::Fatal(std::string("socket: ") + std::strerror(errno));
  int one = 1;
  ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(a.port);
  sa.sin_addr.s_addr = htonl(a.ip);
  if (::bind(s.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0 || ::listen(s.get(), 16) != 0)
    throw mrc::Fatal("cannot listen for migrations on tcp " + a.str() + ": " + std::strerror(errno));
  return s;
}

/// A process of its own for each arriving migration: the guest end forks
/// the guest and is its parent for as long as it runs here.
/// `refusal` says why a migration from the peer at an IPv4 address (host
/// order) is not taken here, or "".
pid_t fork_guest(int listener, const std::string& key, const std::function<std::string(uint32_t)>& refusal) {
  sockaddr_in peer{};
  socklen_t plen = sizeof peer;
  int conn = ::accept4(listener, reinterpret_cast<sockaddr*>(&peer), &plen, SOCK_CLOEXEC);
  if (conn < 0) return -1;
  if (std::string no = refusal(ntohl(peer.sin_addr.s_addr)); !no.empty()) {
    (void)migrate::send_text(conn, migrate::FrameType::error, no);
    ::close(conn);
    return -1;
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    // Only the connection and stdio: not the daemon's sockets, which a
    // restarted mosixd must be able to bind while this guest runs.
    if (::dup2(conn, 3) < 0) std::_Exit(1);
    ::syscall(SYS_close_range, 4u, ~0u, 0u);
    migrate::GuestOptions o;
    o.key = key;
    std::_Exit(migrate::serve_guest(3, o));
  }
  ::close(conn);
  if (pid < 0) mrc::logger("mosixd")->warn("cannot fork for a migration: {}", std::strerror(errno));
  return pid;
}

json stats_json(const gossip::Node& node) {
  const gossip::Stats& s = node.stats();
  json dropped = json::object();
  for (size_t i = 0; i < gossip::k_drop_reasons; ++i) {
    auto r = static_cast<gossip::DropReason>(i);
    dropped[std::string(gossip::name(r))] = s.drops(r);
  }
  return {{"packets_sent", s.packets_sent},         {"packets_sent_foreign", s.packets_sent_foreign},
          {"bytes_sent", s.bytes_sent},             {"send_errors", s.send_errors},
          {"packets_received", s.packets_received}, {"bytes_received", s.bytes_received},
          {"packets_accepted", s.packets_accepted}, {"entries_received", s.entries_received},
          {"entries_newer", s.entries_newer},       {"entries_not_newer", s.entries_not_newer},
          {"entries_refused", s.entries_refused},   {"nodes_learnt", s.nodes_learnt},
          {"entries_expired", s.entries_expired},   {"age_limit_ms", node.age_limit_ms()},
          {"dropped", dropped}};
}

/// What the loop owns; the local socket's handler reads and changes it.
struct Daemon {
  const Config& cfg;
  gossip::Node& node;
  std::vector<gossip::ClusterId> blocked;

  /// Why a migration from `ip` is not taken: this node left its cluster
  /// (mosctl leave), or the peer is a node of a blocked cluster (by the
  /// config's lists or the gossip table); "" to take it.
  std::string refusal(uint32_t ip) const {
    if (!node.active()) return "this node has left its cluster (mosctl leave)";
    auto is_blocked = [&](gossip::ClusterId c) {
      return std::find(blocked.begin(), blocked.end(), c) != blocked.end();
    };
    auto why = [](gossip::ClusterId c) { return "cluster " + std::to_string(c) + " is blocked here (mosctl block)"; };
    for (const auto& pc : cfg.peer_clusters) {
      if (!is_blocked(pc.id)) continue;
      for (const auto& n : pc.nodes)
        if (n.address.ip == ip) return why(pc.id);
      for (const auto& a : pc.seeds)
        if (a.ip == ip) return why(pc.id);
    }
    for (const auto& e : node.snapshot())
      if (e.address.ip == ip && is_blocked(e.cluster)) return why(e.cluster);
    return "";
  }

  json answer(const json& req) {
    std::string op = req.at("op").get<std::string>();
    if (op == "nodes") {
      std::vector<NodeReport> out;
      for (const auto& e : node.snapshot())
        out.push_back(
            {e.id, e.address.str(), e.cluster, e.resources, static_cast<double>(e.age_ms) / 1000.0, e.id == cfg.id});
      return encode_nodes(out);
    }
    if (op == "status") {
      StatusReport s{cfg.id,
                     cfg.cluster,
                     cfg.address.str(),
                     node.active(),
                     blocked,
                     static_cast<uint32_t>(cfg.step.count()),
                     cfg.window,
                     static_cast<uint32_t>(node.entry_count()),
                     stats_json(node)};
      return encode_status(s);
    }
    if (op == "join" || op == "leave") {
      node.set_active(op == "join" ? gossip::Active::yes : gossip::Active::no);
      mrc::logger("mosixd")->info("{} the cluster (mosctl)", op == "join" ? "joined" : "left");
      return ok_reply();
    }
    if (op == "block" || op == "unblock") {
      auto cluster = req.at("cluster").get<gossip::ClusterId>();
      bool block = op == "block";
      if (auto r = node.block_cluster(cluster, block ? gossip::Blocked::yes : gossip::Blocked::no); !r)
        return error_reply(r.error().message);
      std::erase(blocked, cluster);
      if (block) blocked.push_back(cluster);
      mrc::logger("mosixd")->info("cluster {} {} (mosctl)", cluster, block ? "blocked" : "unblocked");
      return ok_reply();
    }
    if (op == "sign") {
      auto tag = migrate::auth_tag(cfg.key, decode_sign_nonce(req));
      if (!tag) return error_reply(tag.error().message);
      return encode_sign_reply(*tag);
    }
    return error_reply("unknown op " + op);  // validate_request lets none through
  }
};

}  // namespace

gossip::Config gossip_config(const Config& c, uint64_t boot_epoch) {
  gossip::Config g;
  g.self = c.id;
  g.cluster = c.cluster;
  g.address = c.address;
  for (const auto& n : c.nodes) g.peers.push_back({n.id, n.address, c.cluster});
  for (const auto& s : c.seeds) g.peers.push_back({0, s, c.cluster});
  for (const auto& pc : c.peer_clusters) {
    g.links.push_back({pc.id, 1.0 / (1.0 + pc.priority)});
    for (const auto& n : pc.nodes) g.peers.push_back({n.id, n.address, pc.id});
    for (const auto& s : pc.seeds) g.peers.push_back({0, s, pc.id});
  }
  g.window = static_cast<uint16_t>(c.window);
  g.step_ms = c.step.count();
  g.age_limit_ms = c.age_limit ? c.age_limit->count() : 0;
  g.key = c.key;
  g.boot_epoch = boot_epoch;
  return g;
}

int run_daemon(const DaemonOptions& opts) {
  // The config, checked, before anything else: a bad file fails at once.
  Config cfg = load_config(opts);
  // Detach unless systemd (or a test) wants us in the foreground.
  if (!opts.foreground) detach(log_path(cfg));
  mrc::setup_logging("mosixd", opts.verbosity);
  auto log = mrc::logger("mosixd");
  auto stop = stop_signals();

  // This node's per-CPU speed: measured once, unless the config says.
  uint32_t speed = cfg.speed ? *cfg.speed : calibrate_speed();
  Measurer measurer(speed, cfg.step);

  // The gossip node on its UDP socket; entries carry ages, the epoch
  // (wall clock) orders our restarts for the receivers' replay check.
  auto epoch = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  gossip::Config gc = gossip_config(cfg, epoch);
  auto udp = gossip::UdpSocket::bind(cfg.address, gc.max_packet_bytes);
  if (!udp) throw mrc::Fatal("cannot bind the gossip socket " + cfg.address.str() + ": " + udp.error().message);
  gossip::SystemClock clock;
  auto node = gossip::Node::create(gc, clock, *udp);
  if (!node) throw mrc::Fatal(node.error().message);

  // Migrations arrive on TCP at the gossip address.
  auto migrations = listen_migrations(cfg.address);
  std::vector<pid_t> guests;  // one guest end per process that moved here

  // The local tools' socket.
  Daemon d{cfg, **node, {}};
  auto server = LocalServer::open(cfg.socket, [&d](const json& req) { return d.answer(req); });
  if (!server) throw mrc::Fatal("cannot serve " + cfg.socket + ": " + server.error().message);
  log->info("node {} of cluster {} on {}: speed {}, window {}, step {} ms, socket {}", cfg.id, cfg.cluster,
            cfg.address.str(), speed, cfg.window, cfg.step.count(), cfg.socket);

  // The loop: gossip every step (from a random phase, so that nodes started
  // together do not send at once), datagrams and local requests in between.
  std::mt19937_64 rng(std::random_device{}());
  int64_t step_ms = cfg.step.count();
  int64_t next = clock.now_ms() + static_cast<int64_t>(rng() % static_cast<uint64_t>(step_ms));
  auto handle = [&](std::span<const std::byte> p, const gossip::Address& from) { (*node)->receive(p, from); };
  for (;;) {
    int64_t now = clock.now_ms();
    if (now >= next) {
      std::erase_if(guests, [](pid_t g) { return ::waitpid(g, nullptr, WNOHANG) != 0; });
      Accepting accepting = (*node)->active() ? Accepting::yes : Accepting::no;  // mosctl leave: no guests
      if (auto r = measurer.measure(static_cast<uint16_t>(guests.size()), accepting); r)
        (*node)->set_local(*r);
      else
        log->warn("measuring this node: {}", r.error().message);
      (*node)->step();
      next += step_ms;
      if (next <= now) next = now + step_ms;  // we were stopped: no burst of steps
    }
    std::vector<pollfd> fds = {{udp->fd(), POLLIN, 0}, {stop.get(), POLLIN, 0}, {migrations.get(), POLLIN, 0}};
    server->add_poll_fds(fds);
    int timeout = static_cast<int>(std::max<int64_t>(0, next - clock.now_ms()));
    if (::poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR)
      throw mrc::Fatal(std::string("poll: ") + std::strerror(errno));
    if (fds[1].revents) {
      log->info("stopping (signal)");
      return 0;
    }
    if (fds[0].revents & POLLIN) {
      if (auto r = udp->receive_all(handle); !r) log->warn("gossip socket: {}", r.error().message);
    }
    if (fds[2].revents & POLLIN)
      if (pid_t g = fork_guest(migrations.get(), cfg.key,
                               [&](uint32_t ip) {
                                 // A bound before the handshake: connections cost a process each.
                                 std::erase_if(guests, [](pid_t x) { return ::waitpid(x, nullptr, WNOHANG) != 0; });
                                 if (guests.size() >= k_max_guest_ends)
                                   return "this node has " + std::to_string(guests.size()) + " guests already";
                                 return d.refusal(ip);
                               });
          g > 0)
        guests.push_back(g);
    server->handle_ready(fds);
  }
}

}  // namespace mosix::mosixd
