// mrc launch flow: exports → job spec → file server → target → relay →
// exit status. One call per step.
#include "mrc/launch.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>

#include "common/log.h"
#include "headnode/sys.h"
#include "mrc/service_client.h"
#include "mrc/ssh.h"
#include "mrc/stdio.h"
#include "mrc/transport.h"
#include "proto/connection.h"

extern char** environ;

namespace mrc::launcher {
namespace {

/// Variables that describe this machine or this login, not the job
/// (DESIGN §3); --env NAME passes one anyway.
bool host_bound(const std::string& name) {
  static const char* k_exact[] = {"DISPLAY", "XAUTHORITY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS",
                                  "XDG_RUNTIME_DIR", "SESSION_MANAGER", "KRB5CCNAME", "GPG_AGENT_INFO",
                                  "TMUX", "TMUX_PANE", "STY", "WINDOWID", "HOSTNAME", "_"};
  for (const char* e : k_exact)
    if (name == e) return true;
  return name.rfind("SSH_", 0) == 0 || name.rfind("XDG_SESSION_", 0) == 0 ||
         name.rfind("MRC_UPSTREAM", 0) == 0;  // this target's own FUSE mount
}

std::string canonical(const std::string& path) {
  char buf[PATH_MAX];
  if (!::realpath(path.c_str(), buf)) throw Fatal("export " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (::stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) throw Fatal("export " + path + ": not a directory");
  return buf;
}

// Exports are checked before anything runs: a typo must not start a job.
std::vector<proto::ExportSpec> resolve_exports(const Options& o) {
  std::vector<proto::ExportSpec> out;
  auto add = [&](const std::string& p, bool ro) {
    std::string c = canonical(p);
    for (auto& e : out)
      if (e.path == c) {
        e.read_only = e.read_only && ro;
        return;
      }
    out.push_back({c, static_cast<uint8_t>(ro)});
  };
  for (const auto& p : o.exports) add(p, false);
  for (const auto& p : o.read_only) add(p, true);
  if (out.empty()) add(".", false);
  return out;
}

std::vector<std::string> job_environment(const Options& o) {
  std::vector<std::string> env;
  if (!o.no_env)
    for (char** e = environ; *e; ++e) {
      std::string kv = *e;
      if (!host_bound(kv.substr(0, kv.find('=')))) env.push_back(kv);
    }
  for (const auto& item : o.env) {
    std::string name = item.substr(0, item.find('='));
    std::erase_if(env, [&](const std::string& kv) { return kv.substr(0, kv.find('=')) == name; });
    if (item.find('=') != std::string::npos) {
      env.push_back(item);
    } else if (const char* v = ::getenv(name.c_str())) {
      env.push_back(name + "=" + v);
    }
  }
  return env;
}

int zstd_level(const Options& o) {
  if (o.compress == "off") return 0;
  if (o.compress == "auto") return 1;
  return std::atoi(o.compress.c_str());
}

proto::JobSpec make_job_spec(const Options& o, std::vector<proto::ExportSpec> exports) {
  proto::JobSpec spec;
  spec.argv = o.command;
  spec.env = job_environment(o);
  spec.use_target_env = o.no_env;
  char cwd[PATH_MAX];
  if (!::getcwd(cwd, sizeof(cwd))) throw Fatal(std::string("getcwd: ") + std::strerror(errno));
  spec.cwd = canonical(cwd);
  spec.exports = std::move(exports);
  for (const auto& k : o.keep_local) {
    char buf[PATH_MAX];
    // The path may not exist here: make it absolute lexically.
    std::string abs = k.front() == '/' ? k : spec.cwd + "/" + k;
    spec.keep_local.push_back(::realpath(abs.c_str(), buf) ? std::string(buf) : abs);
  }
  spec.pty = o.pty == PtyMode::Force || (o.pty == PtyMode::Auto && ::isatty(0));
  winsize ws{};
  if (spec.pty && ::ioctl(0, TIOCGWINSZ, &ws) == 0) {
    spec.rows = ws.ws_row;
    spec.cols = ws.ws_col;
  }
  spec.head_uid = ::getuid();
  spec.head_gid = ::getgid();
  spec.verbosity = o.verbosity;
  spec.zstd_level = zstd_level(o);
  spec.lease_ms = static_cast<uint32_t>(o.lease_s * 1000);
  // Recursion: we re-export files of an mrc mount, which must hear our
  // acknowledgements within its own lease: ours is at most half of it.
  if (const char* up = ::getenv("MRC_UPSTREAM_LEASE_MS")) {
    uint32_t cap = static_cast<uint32_t>(std::strtoul(up, nullptr, 10) / 2);
    if (cap > 0 && spec.lease_ms > cap) spec.lease_ms = cap;
  }
  spec.grace_ms = static_cast<uint32_t>(o.grace_s * 1000);
  return spec;
}

/// Opens every export root now, so a missing or vanished one stops us
/// before anything runs.
std::vector<UniqueFd> open_exports(const std::vector<proto::ExportSpec>& exports) {
  std::vector<UniqueFd> roots;
  for (const auto& e : exports) {
    int fd = ::open(e.path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throw Fatal("export " + e.path + ": " + std::strerror(errno));
    roots.emplace_back(fd);
  }
  return roots;
}

/// syncfs(2) on every export, so the job's writes are on disk before we
/// report its status.
void sync_exports(const std::vector<proto::ExportSpec>& exports, const std::vector<UniqueFd>& roots) {
  for (size_t i = 0; i < roots.size(); ++i) {
    auto fd = headnode::reopen_dir(roots[i].get());
    if (!fd || ::syncfs(fd->get()) != 0)
      logger("launch")->warn("sync of export {} failed: {}", exports[i].path,
                             fd ? std::strerror(errno) : fd.error().message);
  }
}

/// What the relay learns from the target; guarded by mu.
struct Outcome {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<proto::JobExitMsg> exit;
  std::optional<std::string> fatal;  // the target gave up, or the link broke
};

}  // namespace

int launch(const Options& o) {
  setup_logging("mrc", o.verbosity);
  // Only the signal thread receives forwarded signals: block them before
  // any thread exists.
  block_forwarded_signals();
  SignalForwarder signals;

  // 1. Exports and the job spec, checked before anything runs.
  auto spec = make_job_spec(o, resolve_exports(o));

  // 2. The export roots, opened before anything runs. Modes arrive
  // already masked by the job's umask on the target, so ours must not
  // mask them again.
  spec.umask = ::umask(0);
  auto roots = open_exports(spec.exports);

  // 3. Start mrc-target (local child, or over SSH) and check its handshake.
  TargetLink link = o.destination == "local" ? start_local(o) : start_ssh(o);

  // 4. Hand the target to this user's file service, shared by every mrc
  // here so that all targets see one coherent file system; it serves the
  // files itself and relays the job's stdio and control to us.
  proto::AttachMsg attach{link.peer, spec.lease_ms, spec.grace_ms, spec.zstd_level, spec.exports, {}};
  if (const char* up = ::getenv("MRC_UPSTREAM")) attach.upstream = up;
  UniqueFd svc = attach_to_service(std::move(link.fd), roots, attach, o.verbosity);
  int in_fd = ::dup(svc.get());
  proto::Connection conn(UniqueFd(in_fd), std::move(svc), 0);
  Outcome out;
  HeadStdio stdio(conn, spec.pty && ::isatty(0));
  auto on_control = [&](proto::Ctl op, Bytes p) {
    switch (op) {
      case proto::Ctl::StreamData:
        if (auto m = proto::decode<proto::StreamDataMsg>(p))
          stdio.on_output(static_cast<proto::Stream>(m->stream), std::move(m->data));
        return;
      case proto::Ctl::StreamAck:
        if (auto m = proto::decode<proto::StreamAckMsg>(p)) stdio.on_stdin_ack(m->bytes);
        return;
      case proto::Ctl::JobExit: {
        std::lock_guard lk(out.mu);
        if (auto m = proto::decode<proto::JobExitMsg>(p)) out.exit = *m;
        else out.fatal = "malformed exit status from the target";
        out.cv.notify_all();
        return;
      }
      case proto::Ctl::Fatal: {
        std::lock_guard lk(out.mu);
        auto m = proto::decode<proto::FatalMsg>(p);
        if (!out.fatal) out.fatal = link.peer + ": " + (m ? m->message : "malformed error message");
        out.cv.notify_all();
        return;
      }
      case proto::Ctl::JobStarted:
        stdio.start();  // the job can take input now
        return;
      default:
        return;  // StreamClose: nothing to do on the head
    }
  };
  conn.start({.on_request = [&](proto::Op op, uint64_t id, Bytes) { conn.reply(op, id, ENOSYS, {}); },
              .on_control = on_control,
              .on_closed = [&](const std::string& why) {
                std::lock_guard lk(out.mu);
                // The service always says why it ends a session; silence means it died.
                if (!out.exit && !out.fatal)
                  out.fatal = "the head node's file service went away (" + why + "); its log is in " + service_dir();
                out.cv.notify_all();
              }});

  // 5. Send the job, relay stdio and signals until it ends.
  conn.send(proto::Ctl::JobSpec, spec);
  signals.attach(&conn);
  {
    std::unique_lock lk(out.mu);
    out.cv.wait(lk, [&] { return out.exit || out.fatal; });
  }
  signals.finish();
  stdio.stop();

  // 6. The job's writes reach the head node's disk before we report.
  sync_exports(spec.exports, roots);
  conn.close("job finished");
  conn.join();  // no callback runs after this: the dispatcher can go
  if (link.local_pid > 0) ::waitpid(link.local_pid, nullptr, 0);
  if (out.exit) return out.exit->signaled ? 128 + out.exit->code : out.exit->code;
  throw Fatal(*out.fatal);
}

}  // namespace mrc::launcher
