// mosrun and migrate: options, the parent loop (signalfd: the child's exit,
// checkpoint requests, signals to pass on; a timer for -A), and migrate's
// request to the mosrun that runs a process.
#include "mosix/tools/mosrun.h"

#include <poll.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>

#include <nlohmann/json.hpp>

#include "mosix/migrate/checkpoint.h"
#include "mosix/migrate/deputy.h"
#include "mosix/tools/home_files.h"
#include "mosix/mosixd/cli.h"
#include "mosix/mosixd/config.h"
#include "mosix/mosixd/local_proto.h"
#include "mosix/mosixd/local_socket.h"

namespace mosix::tools {
namespace {

constexpr int k_exit_fatal = 255;
/// Signals mosrun passes on to its process.
constexpr int k_forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
/// What migrate sends to mosrun for "checkpoint now".
constexpr int k_checkpoint_signal = SIGUSR1;

int64_t now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1'000'000;
}

int exit_status(int st) { return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st); }

}  // namespace

MosrunOptions parse_mosrun_cli(int argc, char** argv) {
  CLI::App app{"Run a command as a migratable MOSIX process, with checkpoints; "
               "or recover one.\n"
               "  mosrun [-C FILE [-A MINUTES]] command [args...]\n"
               "  mosrun -R FILE [-C FILE [-A MINUTES]]\n"
               "`migrate PID NODE|home|checkpoint` moves or checkpoints it. "
               "Exit status: the process's.",
               "mosrun"};
  MosrunOptions o;
  o.socket = mosixd::k_default_socket_path;
  app.add_option("-C", o.checkpoint, "checkpoint file base: checkpoints go to FILE.1, FILE.2, ...");
  app.add_option("-A", o.every_minutes, "a checkpoint every MINUTES (needs -C)")->check(CLI::Range(1, 1'000'000));
  app.add_option("-R", o.recover, "recover the process in this checkpoint file and continue it");
  app.add_option("--socket", o.socket,
                 "the local mosixd's socket: node numbers, and the key that "
                 "lets the process into "
                 "another node")
      ->capture_default_str();
  app.add_option("--freeze-dir", o.freeze_dir, "where `migrate PID freeze` keeps the process's image")
      ->capture_default_str();
  app.add_option("--link-timeout", o.link_timeout_s,
                 "seconds the migration link may be silent before a migration is given up (the process stays) or "
                 "its node counted lost")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  app.add_option("--mrc", o.mrc,
                 "the mrc whose file service serves the process its home node's files while it runs elsewhere "
                 "(default: the mrc beside mosrun)");
  app.add_flag("--local-files", o.local_files,
               "while it runs elsewhere, the process uses that node's own files at the same paths, not its home "
               "node's");
  // The command and its arguments: everything from the first word that is
  // not one of ours, options included (`mosrun -C f gzip -c x`).
  app.prefix_command();
  app.footer("command [args...]: the command to run and its arguments, passed "
             "on as they are");
  mosixd::parse_command_line(app, argc, argv);
  o.command = app.remaining();
  if (o.every_minutes && o.checkpoint.empty()) throw mrc::Fatal("-A needs -C FILE");
  if (o.recover.empty() && o.command.empty()) throw mrc::Fatal("a command to run, or -R FILE (see mosrun --help)");
  if (!o.recover.empty() && !o.command.empty()) throw mrc::Fatal("-R FILE takes no command");
  return o;
}

namespace {

/// The abstract unix socket on which the mosrun running `pid` takes
/// requests from migrate ("\0mosix-mosrun-PID": nothing to clean up).
sockaddr_un control_address(pid_t pid, socklen_t& len) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::string name = "mosix-mosrun-" + std::to_string(pid);
  std::memcpy(a.sun_path + 1, name.data(), name.size());
  len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  return a;
}

/// One mosrun: its process, its checkpoints, and - while the process runs
/// elsewhere - its deputy.
struct Mosrun {
  const MosrunOptions& o;
  pid_t pid = -1;
  int taken = 0;  // checkpoints written: the next is FILE.(taken+1)
  std::optional<migrate::Deputy> away;
  /// Input it brought home unread, fed to it before the rest (one per way
  /// home that brought some; a later one reads from the one before).
  std::vector<migrate::StdinFeed> feeds;
  std::string done;  // what the last request did, for migrate -v
  int moves = 0;     // migrations away and home, for mosps
  /// A frozen process: its image on disk, its memory released, held
  /// asleep; signals sent to it meanwhile wait for continue.
  struct Frozen {
    migrate::Tracee tracee;
    std::string path;
    std::vector<int> signals;
  };
  std::optional<Frozen> frozen;

  /// Where the process is, for refusals: "" if home and running.
  std::string busy() const {
    if (away) return "the process runs at " + away->where() + ": bring it home first (migrate PID home)";
    if (frozen) return "the process is frozen (its image is " + frozen->path + "): migrate PID continue first";
    return "";
  }

  std::string freeze() {
    if (auto b = busy(); !b.empty()) return b;
    if (::geteuid() != 0) return "freezing needs root (continue rebuilds the process with PR_SET_MM_MAP)";
    std::string path = o.freeze_dir + "/mosix-freeze-" + std::to_string(pid) + ".img";
    auto t = migrate::Tracee::seize(pid);
    if (!t) return t.error().message;
    auto s = migrate::dump_to_file(*t, path);
    if (!s) return "cannot freeze: " + s.error().message;  // ~Tracee: it runs on
    if (auto r = migrate::release_memory(*t); !r) {
      // Part of its memory may be gone: it comes back from the file.
      if (auto c = migrate::continue_from_file(*t, path); !c)
        return "cannot freeze (" + r.error().message + ") nor undo it: " + c.error().message;
      ::unlink(path.c_str());
      return "cannot freeze: " + r.error().message;
    }
    frozen.emplace(Frozen{std::move(*t), path, {}});
    done = "process " + std::to_string(pid) + " frozen: " + std::to_string(s->pages * 4096) + " bytes of memory in " +
           path;
    return "";
  }

  std::string resume() {
    if (!frozen) return "the process is not frozen";
    if (auto s = frozen->tracee.stop(); !s) return "cannot continue: " + s.error().message;
    if (auto c = migrate::continue_from_file(frozen->tracee, frozen->path); !c) {
      (void)migrate::release_memory(frozen->tracee);  // frozen it stays
      return "cannot continue from " + frozen->path + ": " + c.error().message;
    }
    for (int sig : frozen->signals) ::kill(pid, sig);
    ::unlink(frozen->path.c_str());
    frozen.reset();
    return "";
  }

  /// mosps' line: where the process is and whether it could move.
  std::string status() const {
    nlohmann::json j{{"pid", pid},
                     {"where", away ? away->where() : "home"},
                     {"frozen", frozen.has_value()},
                     {"moves", moves},
                     {"checkpoints", taken}};
    if (!away && !frozen)
      if (auto m = migrate::check_movable(pid); !m) j["cannot_move"] = m.error().message;
    std::string cmd;
    for (const std::string& a : o.command) cmd += (cmd.empty() ? "" : " ") + a;
    j["command"] = o.command.empty() ? "(recovered from " + o.recover + ")" : cmd;
    return j.dump();
  }

  /// A checkpoint now: "" or why not.
  std::string checkpoint() {
    if (o.checkpoint.empty()) return "no checkpoint file: mosrun was started without -C FILE";
    if (auto b = busy(); !b.empty()) return b;
    std::string path = o.checkpoint + "." + std::to_string(taken + 1);
    auto s = migrate::checkpoint_to_file(pid, path);
    if (!s) return "checkpoint " + path + " failed: " + s.error().message;
    ++taken;
    return "";
  }

  /// Where NODE is: "a.b.c.d:port", or a node number the local mosixd knows.
  mrc::Result<std::string> resolve(const std::string& node) {
    if (node.find('.') != std::string::npos) return node;
    if (node.empty() || node.find_first_not_of("0123456789") != std::string::npos)
      return mrc::fail(EINVAL,
                       "'" + node + "' is not a node number, an a.b.c.d:port, home, freeze, continue or checkpoint");
    auto reply = mosixd::query(o.socket, mosixd::make_request("nodes"), std::chrono::seconds(5));
    if (!reply) return tl::unexpected(reply.error());
    auto nodes = mosixd::decode_nodes(*reply);
    if (!nodes) return tl::unexpected(nodes.error());
    for (const auto& n : *nodes)
      if (std::to_string(n.id) == node) return n.address;
    return mrc::fail(ENOENT, "node " + node + " is not known to the mosixd on " + o.socket);
  }

  /// The local mosixd signs the destination's hello with the cluster key.
  migrate::Signer signer() {
    return [this](std::span<const std::byte> nonce) -> mrc::Result<std::array<std::byte, 32>> {
      if (nonce.size() != 32) return mrc::fail(EPROTO, "a hello nonce of " + std::to_string(nonce.size()) + " bytes");
      auto reply = mosixd::query(o.socket, mosixd::make_sign_request(nonce.first<32>()), std::chrono::seconds(5));
      if (!reply) return tl::unexpected(reply.error());
      return mosixd::decode_sign_reply(*reply);
    };
  }

  /// A request from migrate: "" (done) or why not. Sets `ended` if the
  /// process ended on its way home.
  std::string handle(const std::string& req, std::optional<int>& ended) {
    // It may have ended just now, its exit not yet taken by our loop: a
    // zombie cannot be traced, and "not permitted" would be a riddle.
    if (req != "status" && !away && !frozen) {
      siginfo_t si{};
      if (::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid)
        return "process " + std::to_string(pid) + " has exited";
    }
    if (req == "checkpoint") return checkpoint();
    if (req == "freeze") return freeze();
    if (req == "continue") return resume();
    if (req == "status") {
      done = status();
      return "";
    }
    if (req == "home") {
      if (!away) return frozen ? busy() : "the process is home already";
      auto r = away->go_home();
      if (!r) return r.error().message;
      if (*r) ended = **r;
      if (auto f = away->take_stdin_feed()) feeds.push_back(std::move(*f));
      away.reset();
      ++moves;
      return "";
    }
    if (auto b = busy(); !b.empty()) return b;
    auto where = resolve(req);
    if (!where) return where.error().message;
    migrate::DeputyOptions dopt;
    dopt.transfer_ms = o.link_timeout_s * 1000;
    dopt.connect_ms = std::min(dopt.transfer_ms, 10'000);
    if (!o.local_files) {
      std::string mrc = o.mrc;
      if (mrc.empty()) {
        auto m = mrc_beside_us();
        if (!m) return "cannot migrate: " + m.error().message;
        mrc = *m;
      }
      dopt.attach_files = [mrc, where = *where, ms = dopt.transfer_ms](mrc::UniqueFd link) {
        return attach_home_files(std::move(link), {mrc, where, ms});
      };
    }
    auto d = migrate::Deputy::migrate(pid, *where, signer(), dopt);
    if (!d) return "cannot migrate to " + *where + ": " + d.error().message;
    char said[200];
    std::snprintf(said, sizeof said, "process %d runs at %s: %llu bytes of memory, image %llu bytes, frozen %.1f ms",
                  static_cast<int>(pid), where->c_str(), static_cast<unsigned long long>(d->stats().pages * 4096),
                  static_cast<unsigned long long>(d->stats().image_bytes), d->frozen_ms());
    done = said;
    away.emplace(std::move(*d));
    ++moves;
    return "";
  }
};

}  // namespace

int run_mosrun(const MosrunOptions& o) {
  // Our signals arrive on a signalfd; the process gets the default mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, k_checkpoint_signal);
  for (int s : k_forwarded) sigaddset(&set, s);
  sigset_t old;
  sigprocmask(SIG_BLOCK, &set, &old);
  ::signal(SIGPIPE, SIG_IGN);
  int sfd = ::signalfd(-1, &set, SFD_CLOEXEC);
  if (sfd < 0) {
    std::fprintf(stderr, "mosrun: signalfd: %s\n", std::strerror(errno));
    return k_exit_fatal;
  }

  Mosrun m{o};
  if (!o.recover.empty()) {
    auto r = migrate::recover_from_file(o.recover);
    if (!r) {
      std::fprintf(stderr, "mosrun: cannot recover %s: %s\n", o.recover.c_str(), r.error().message.c_str());
      return k_exit_fatal;
    }
    m.pid = *r;
  } else {
    m.pid = ::fork();
    if (m.pid < 0) {
      std::fprintf(stderr, "mosrun: fork: %s\n", std::strerror(errno));
      return k_exit_fatal;
    }
    if (m.pid == 0) {
      ::close(sfd);
      sigprocmask(SIG_SETMASK, &old, nullptr);
      ::signal(SIGPIPE, SIG_DFL);
      std::vector<char*> argv;
      for (const std::string& a : o.command) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execvp(argv[0], argv.data());
      std::fprintf(stderr, "mosrun: %s: %s\n", argv[0], std::strerror(errno));
      ::_exit(errno == ENOENT ? 127 : 126);
    }
  }
  const pid_t pid = m.pid;

  // migrate's requests: the control socket of this process.
  mrc::UniqueFd ctl(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  socklen_t alen = 0;
  sockaddr_un addr = control_address(pid, alen);
  if (!ctl || ::bind(ctl.get(), reinterpret_cast<const sockaddr*>(&addr), alen) != 0 || ::listen(ctl.get(), 4) != 0)
    std::fprintf(stderr, "mosrun: no control socket (migrate cannot reach process %d): %s\n", static_cast<int>(pid),
                 std::strerror(errno));

  auto reap = [&](int st) { return exit_status(st); };
  const int64_t period_ms = int64_t{o.every_minutes} * 60'000;
  int64_t next = period_ms ? now_ms() + period_ms : -1;
  for (;;) {
    int timeout = next < 0 ? -1 : static_cast<int>(std::max<int64_t>(0, next - now_ms()));
    std::vector<pollfd> fds = {{sfd, POLLIN, 0}, {ctl.get(), POLLIN, 0}};
    size_t link_at = 0, stdin_at = 0, feeds_at = 0;  // 0: not polled
    if (m.away) {
      link_at = fds.size();
      fds.push_back({m.away->link(), POLLIN, 0});
      if (m.away->stdin_fd() >= 0) {
        stdin_at = fds.size();
        fds.push_back({m.away->stdin_fd(), POLLIN, 0});
      }
    }
    feeds_at = fds.size();
    for (const auto& f : m.feeds)  // its source when nothing waits, else the FIFO
      fds.push_back(f.pending.empty() && f.source ? pollfd{f.source.get(), POLLIN, 0}
                                                  : pollfd{f.fifo.get(), POLLOUT, 0});
    int n = ::poll(fds.data(), fds.size(), timeout);
    if (n < 0 && errno != EINTR) {
      std::fprintf(stderr, "mosrun: poll: %s\n", std::strerror(errno));
      ::kill(pid, SIGKILL);
    }
    if (n == 0) {
      if (auto why = m.checkpoint(); !why.empty()) std::fprintf(stderr, "mosrun: %s\n", why.c_str());
      next = now_ms() + period_ms;
      continue;
    }
    std::optional<int> ended;  // the process's wait status, once it ended (there or here)
    for (size_t k = m.feeds.size(); k-- > 0;) {
      const pollfd& p = fds[feeds_at + k];
      if (!p.revents) continue;
      auto& f = m.feeds[k];
      bool more = p.events == POLLIN ? f.on_source() : f.on_fifo();
      if (!more) m.feeds.erase(m.feeds.begin() + static_cast<ptrdiff_t>(k));
    }
    if (m.away && link_at && fds[link_at].revents) {
      auto r = m.away->on_link();
      if (!r) std::fprintf(stderr, "mosrun: %s\n", r.error().message.c_str());
      if (!r || *r) {
        m.away.reset();
        int st = 0;
        ::waitpid(pid, &st, __WALL);  // the deputy, ended as the process did
        return reap(st);
      }
    }
    if (m.away && stdin_at && fds[stdin_at].revents)
      if (auto r = m.away->on_stdin(); !r) std::fprintf(stderr, "mosrun: stdin: %s\n", r.error().message.c_str());
    if (fds[1].revents & POLLIN) {
      mrc::UniqueFd c(::accept4(ctl.get(), nullptr, nullptr, SOCK_CLOEXEC));
      // Root, or the user mosrun runs as: no one else moves this process.
      ucred cred{};
      socklen_t clen = sizeof cred;
      if (c && (::getsockopt(c.get(), SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0 ||
                (cred.uid != 0 && cred.uid != ::geteuid()))) {
        std::string no = "error: not permitted: process " + std::to_string(pid) + " is not yours\n";
        (void)!::send(c.get(), no.data(), no.size(), MSG_NOSIGNAL);
        c.reset();
      }
      char buf[512];
      ssize_t got = c ? ::recv(c.get(), buf, sizeof buf - 1, 0) : -1;
      if (got > 0) {
        std::string req(buf, static_cast<size_t>(got));
        while (!req.empty() && (req.back() == '\n' || req.back() == '\r')) req.pop_back();
        std::string why = m.handle(req, ended);
        std::string reply = why.empty() ? "ok " + m.done + "\n" : "error: " + why + "\n";
        m.done.clear();
        (void)!::send(c.get(), reply.data(), reply.size(), MSG_NOSIGNAL);
        if (ended) {
          int st = 0;
          ::waitpid(pid, &st, __WALL);
          return reap(st);
        }
      }
    }
    if (!(fds[0].revents & POLLIN)) continue;
    signalfd_siginfo si{};
    if (::read(sfd, &si, sizeof(si)) != sizeof(si)) continue;
    if (static_cast<int>(si.ssi_signo) == k_checkpoint_signal) {
      if (auto why = m.checkpoint(); !why.empty()) std::fprintf(stderr, "mosrun: %s\n", why.c_str());
    } else if (si.ssi_signo == SIGCHLD) {
      int st = 0;
      pid_t w;
      while ((w = ::waitpid(pid, &st, WNOHANG | __WALL)) == pid) {
        if (m.away) {
          auto gone = m.away->on_wait(st);
          if (gone && !*gone) continue;
          m.away.reset();
        }
        if (m.frozen && WIFSTOPPED(st)) {  // a signal to a frozen process waits for continue
          if ((st >> 16) == 0) m.frozen->signals.push_back(WSTOPSIG(st));
          ::ptrace(PTRACE_CONT, pid, nullptr, nullptr);
          continue;
        }
        if (m.frozen) {  // killed (SIGKILL) while frozen: its image stays, a checkpoint
          m.frozen->tracee.abandon();
          m.frozen.reset();
        }
        if (WIFEXITED(st) || WIFSIGNALED(st)) return reap(st);
      }
    } else if (si.ssi_code != SI_KERNEL) {
      // Sent to mosrun: passed on. One from the terminal (^C, SI_KERNEL)
      // reached the whole foreground group, the process (or its deputy)
      // too: passing it on would deliver it twice.
      ::kill(pid, static_cast<int>(si.ssi_signo));
    }
  }
}

MigrateOptions parse_migrate_cli(int argc, char** argv) {
  CLI::App app{"Move a MOSIX process, freeze it, or checkpoint it.\n"
               "  migrate PID NODE         move it to node NODE (its number, or a.b.c.d:port)\n"
               "  migrate PID home         bring it back to its home node\n"
               "  migrate PID freeze       its image to mosrun's --freeze-dir, its memory released\n"
               "  migrate PID continue     a frozen process runs on\n"
               "  migrate PID checkpoint   a checkpoint now, to its mosrun -C FILE (the process runs on)\n"
               "The process must run under mosrun. Exit status 0 once done; 1 and the reason if not.",
               "migrate"};
  MigrateOptions o;
  app.add_option("pid", o.pid, "the process")->required()->check(CLI::PositiveNumber);
  app.add_option("where", o.where, "a node number or a.b.c.d:port, home, freeze, continue, checkpoint")->required();
  app.add_flag("-v,--verbose", o.verbose, "say what moved and for how long the process was frozen");
  mosixd::parse_command_line(app, argc, argv);
  return o;
}

int run_migrate(const MigrateOptions& o) {
  mrc::UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  socklen_t len = 0;
  sockaddr_un a = control_address(o.pid, len);
  if (!s || ::connect(s.get(), reinterpret_cast<const sockaddr*>(&a), len) != 0) {
    if (::kill(o.pid, 0) != 0 && errno == ESRCH)
      std::fprintf(stderr, "migrate: no process %d\n", static_cast<int>(o.pid));
    else
      std::fprintf(stderr,
                   "migrate: process %d does not run under mosrun (no mosrun "
                   "answers for it)\n",
                   static_cast<int>(o.pid));
    return 1;
  }
  std::string req = o.where + "\n";
  if (::send(s.get(), req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    std::fprintf(stderr, "migrate: cannot reach mosrun: %s\n", std::strerror(errno));
    return 1;
  }
  std::string reply;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(s.get(), buf, sizeof buf, 0)) > 0) reply.append(buf, static_cast<size_t>(n));
  while (!reply.empty() && reply.back() == '\n') reply.pop_back();
  if (reply == "ok" || reply.rfind("ok ", 0) == 0) {
    if (o.verbose && reply.size() > 3) std::printf("%s\n", reply.c_str() + 3);
    return 0;
  }
  std::fprintf(stderr, "migrate: %s\n",
               reply.rfind("error: ", 0) == 0 ? reply.c_str() + 7
               : reply.empty()                ? "mosrun ended without an answer"
                                              : reply.c_str());
  return 1;
}

namespace {

/// One request to the mosrun that runs `pid`: its answer after "ok ", or
/// an error with its words.
mrc::Result<std::string> ask_mosrun(pid_t pid, const std::string& req) {
  mrc::UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  socklen_t len = 0;
  sockaddr_un a = control_address(pid, len);
  if (!s || ::connect(s.get(), reinterpret_cast<const sockaddr*>(&a), len) != 0)
    return mrc::fail(ESRCH, "no mosrun answers for process " + std::to_string(pid));
  timeval tv{5, 0};
  ::setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string line = req + "\n";
  if (::send(s.get(), line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size()))
    return mrc::fail_errno("send to mosrun");
  std::string reply;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(s.get(), buf, sizeof buf, 0)) > 0) reply.append(buf, static_cast<size_t>(n));
  while (!reply.empty() && reply.back() == '\n') reply.pop_back();
  if (reply.rfind("ok", 0) == 0) return reply.size() > 3 ? reply.substr(3) : std::string();
  return mrc::fail(EPROTO, reply.rfind("error: ", 0) == 0 ? reply.substr(7) : "no answer");
}

}  // namespace

MospsOptions parse_mosps_cli(int argc, char** argv) {
  CLI::App app{"List the MOSIX processes of this node: where each runs, how often it moved, why it cannot move.",
               "mosps"};
  MospsOptions o;
  app.add_flag("--json", o.json, "one JSON object: {\"processes\":[...]}");
  mosixd::parse_command_line(app, argc, argv);
  return o;
}

int run_mosps(const MospsOptions& o) {
  // Every mosrun listens on "@mosix-mosrun-PID" (/proc/net/unix shows
  // abstract names with '@').
  std::ifstream unix_sockets("/proc/net/unix");
  if (!unix_sockets) {
    std::fprintf(stderr, "mosps: cannot read /proc/net/unix: %s\n", std::strerror(errno));
    return 1;
  }
  std::vector<pid_t> pids;
  std::string line;
  const std::string tag = "@mosix-mosrun-";
  while (std::getline(unix_sockets, line)) {
    auto at = line.find(tag);
    if (at == std::string::npos) continue;
    pid_t p = static_cast<pid_t>(std::atoi(line.c_str() + at + tag.size()));
    if (p > 0 && std::find(pids.begin(), pids.end(), p) == pids.end()) pids.push_back(p);
  }
  std::sort(pids.begin(), pids.end());
  nlohmann::json all = nlohmann::json::array();
  for (pid_t p : pids) {
    auto r = ask_mosrun(p, "status");
    if (!r) continue;  // it ended meanwhile
    auto j = nlohmann::json::parse(*r, nullptr, false);
    if (j.is_object()) all.push_back(j);
  }
  if (o.json) {
    std::printf("%s\n", nlohmann::json{{"processes", all}}.dump().c_str());
    return 0;
  }
  std::printf("%7s  %-21s %-8s %5s  %s\n", "PID", "WHERE", "STATE", "MOVES", "COMMAND");
  for (const auto& j : all) {
    std::string state = j.value("frozen", false) ? "frozen" : j.value("where", "") == "home" ? "running" : "away";
    std::string why = j.contains("cannot_move") ? "  (" + j["cannot_move"].get<std::string>() + ")" : "";
    std::printf("%7d  %-21s %-8s %5d  %s%s\n", j.value("pid", 0), j.value("where", "").c_str(), state.c_str(),
                j.value("moves", 0), j.value("command", "").c_str(), why.c_str());
  }
  return 0;
}

}  // namespace mosix::tools
