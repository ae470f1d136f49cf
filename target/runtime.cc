// mrc-target serve: the target runtime's flow, one step per call.
#include "target/runtime.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>

#include "common/build_id.h"
#include "common/log.h"
#include "fusefs/client.h"
#include "proto/connection.h"
#include "proto/handshake.h"
#include "target/job.h"
#include "target/namespace.h"
#include "target/relay.h"

namespace mrc::target {
namespace {

/// How long the head may take to send the job spec after the handshake.
constexpr auto k_spec_timeout = std::chrono::seconds(30);
/// After the job exits, how long its stdout/stderr may stay open (held by
/// background children) before the process group is killed, ms.
constexpr int k_output_grace_ms = 1000;
/// Between SIGTERM and SIGKILL when the head node goes away, ms.
constexpr int k_kill_grace_ms = 2000;
/// Once the file service failed (its requests now get EIO), how long the
/// job has to notice and end by itself before it is killed, ms.
constexpr int k_eio_grace_ms = 1000;

/// State shared between the connection's reader and the main flow.
struct Session {
  std::mutex mu;  // guards everything below
  std::condition_variable cv;
  std::optional<proto::JobSpec> spec;
  bool closed = false;
  std::string close_reason;
  pid_t job_pgid = -1;
  std::vector<int> early_signals;  // arrived before the job existed
  int pty_fd = -1;
  Relay* relay = nullptr;
  std::optional<int> wait_status;  // set by the waiter thread
};

void on_control(Session& s, proto::Ctl op, const Bytes& payload) {
  auto log = logger("target");
  std::lock_guard lk(s.mu);
  switch (op) {
    case proto::Ctl::JobSpec:
      if (auto m = proto::decode<proto::JobSpec>(payload)) s.spec = std::move(*m);
      else log->error("malformed job spec: {}", m.error().message);
      break;
    case proto::Ctl::Signal:
      if (auto m = proto::decode<proto::SignalMsg>(payload)) {
        if (s.job_pgid > 0) ::kill(-s.job_pgid, m->signo);
        else s.early_signals.push_back(m->signo);
      }
      break;
    case proto::Ctl::WinSize:
      if (auto m = proto::decode<proto::WinSizeMsg>(payload); m && s.pty_fd >= 0)
        set_window_size(s.pty_fd, m->rows, m->cols);
      break;
    case proto::Ctl::StreamData:
      if (auto m = proto::decode<proto::StreamDataMsg>(payload); m && s.relay)
        s.relay->on_stdin(std::move(m->data));
      break;
    case proto::Ctl::StreamClose:
      if (s.relay) s.relay->on_stdin_close();
      break;
    case proto::Ctl::StreamAck:
      if (auto m = proto::decode<proto::StreamAckMsg>(payload); m && s.relay)
        s.relay->on_ack(static_cast<proto::Stream>(m->stream), m->bytes);
      break;
    case proto::Ctl::Fatal:
      if (auto m = proto::decode<proto::FatalMsg>(payload)) log->error("head: {}", m->message);
      s.closed = true;
      break;
    default:
      log->warn("unexpected control message {}", static_cast<int>(op));
  }
  s.cv.notify_all();
}

// Reports a setup failure to the head (which prints it and exits 255).
int report_fatal(proto::Connection& conn, const std::string& message) {
  logger("target")->error("{}", message);
  conn.send(proto::Ctl::Fatal, proto::FatalMsg{message});
  return 1;
}

// Kills the job's process group: TERM, then KILL after a grace period.
void kill_job(Session& s, pid_t pgid) {
  ::kill(-pgid, SIGTERM);
  std::unique_lock lk(s.mu);
  if (!s.cv.wait_for(lk, std::chrono::milliseconds(k_kill_grace_ms), [&] { return s.wait_status.has_value(); }))
    ::kill(-pgid, SIGKILL);
  ::kill(-pgid, SIGKILL);  // stragglers of the group, if any
}

}  // namespace

std::string build_id() { return build_id_of("/proc/self/exe"); }

/// Pipe capacity asked for on the stream to and from sshd, bytes: sshd
/// gives exec sessions pipes of 64 KiB, so a 1 MiB frame would take 16
/// wake-ups of sshd and of us; 1 MiB is the default pipe-max-size.
constexpr int k_pipe_size = 1 << 20;

/// Raises the capacity of `fd` if it is a pipe (best effort: a socket, or
/// a user over the pipe budget, keeps what it has).
void enlarge_pipe(int fd) {
  struct stat st{};
  if (::fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode)) (void)::fcntl(fd, F_SETPIPE_SZ, k_pipe_size);
}

int serve(const ServeOptions& opts) {
  setup_logging("mrc-target", opts.verbosity);
  auto log = logger("target");
  // Take the protocol stream off fds 0/1 so no stray print can corrupt it.
  UniqueFd in(::fcntl(0, F_DUPFD_CLOEXEC, 3)), out(::fcntl(1, F_DUPFD_CLOEXEC, 3));
  enlarge_pipe(in.get());
  enlarge_pipe(out.get());
  int devnull = ::open("/dev/null", O_RDONLY);
  ::dup2(devnull, 0);
  ::dup2(2, 1);
  ::close(devnull);

  // Announce ourselves: the head parses this line strictly.
  auto line = proto::handshake_line();
  if (!write_all(out.get(), std::as_bytes(std::span(line)))) return 1;

  // Connect the framed stream and wait for the job spec. The session, the
  // connection and the FUSE client live until the process exits (main
  // calls _exit): FUSE workers may sit in the kernel until our namespace
  // dies, so they are never destroyed under them.
  Session& s = *new Session;
  proto::Connection& conn = *new proto::Connection(std::move(in), std::move(out), 1);
  // The head's invalidations go to the FUSE client once it exists; before
  // that nothing is cached and they are acknowledged at once.
  auto& fuse_ptr = *new std::atomic<fusefs::Client*>(nullptr);
  conn.start({.on_request =
                  [&](proto::Op op, uint64_t id, Bytes p) {
                    if (op != proto::Op::Invalidate) return conn.reply(op, id, ENOSYS, {});
                    if (auto* f = fuse_ptr.load()) return f->on_invalidate(id, std::move(p));
                    conn.reply(op, id, 0, {});
                  },
              .on_control = [&](proto::Ctl op, Bytes p) { on_control(s, op, p); },
              .on_closed = [&](const std::string& why) {
                std::lock_guard lk(s.mu);
                s.closed = true;
                s.close_reason = why;
                s.cv.notify_all();
              }});
  proto::JobSpec spec;
  {
    std::unique_lock lk(s.mu);
    if (!s.cv.wait_for(lk, k_spec_timeout, [&] { return s.spec || s.closed; }) || !s.spec) {
      log->error("no job spec from the head node");
      return 1;
    }
    spec = *s.spec;
  }
  setup_logging("mrc-target", spec.verbosity);
  conn.set_zstd_level(spec.zstd_level);

  // Private namespace: nothing we mount is seen by the target's other processes.
  if (auto r = enter_private_namespace(); !r) return report_fatal(conn, r.error().message);
  auto view = View::create();
  if (!view) return report_fatal(conn, view.error().message);
  if (auto r = view->stash_keep_local(spec.keep_local); !r) return report_fatal(conn, r.error().message);

  // One FUSE mount of the head's exports, served over this connection.
  fusefs::MountOptions mo;
  mo.mountpoint = view->fuse_dir();
  mo.head_uid = spec.head_uid;
  mo.head_gid = spec.head_gid;
  mo.lease = std::chrono::milliseconds(std::max<uint32_t>(spec.lease_ms, 30));
  mo.timeout = std::chrono::milliseconds(std::max<uint32_t>(spec.grace_ms, 100));
  fusefs::Client& fuse = *new fusefs::Client(conn, mo);
  fuse_ptr = &fuse;
  if (auto r = fuse.mount(); !r) return report_fatal(conn, "FUSE mount failed: " + r.error().message);
  fuse.start();
  // Recursion: an mrc the job runs re-exports our files; it subscribes to
  // our invalidations so the guarantee holds down the chain.
  if (auto addr = fuse.serve_downstream()) {
    spec.env.push_back("MRC_UPSTREAM=" + *addr);
    spec.env.push_back("MRC_UPSTREAM_LEASE_MS=" + std::to_string(mo.lease.count()));
  } else {
    log->warn("recursion will not be coherent: {}", addr.error().message);
  }

  // Each export at its head-node path; keep-local subtrees back on top.
  if (auto r = view->mount_exports(spec.exports); !r) return report_fatal(conn, r.error().message);
  if (auto r = view->mount_keep_local(); !r) return report_fatal(conn, r.error().message);
  view->seal();

  // Run the job; an exec failure is the job's outcome (127), like a shell's.
  auto job = spawn_job(spec, view->root_fd());
  if (!job) {
    std::string msg = "mrc: " + job.error().message + "\n";
    conn.send(proto::Ctl::StreamData,
              proto::StreamDataMsg{static_cast<uint8_t>(proto::Stream::Stderr),
                                   Bytes(reinterpret_cast<const std::byte*>(msg.data()),
                                         reinterpret_cast<const std::byte*>(msg.data()) + msg.size())});
    conn.send(proto::Ctl::JobExit, proto::JobExitMsg{0, 127});
    return 0;
  }
  Relay relay(conn, *job);
  {
    std::lock_guard lk(s.mu);
    s.job_pgid = job->pid;
    s.pty_fd = job->pty ? job->stdin_fd.get() : -1;
    s.relay = &relay;
    for (int sig : s.early_signals) ::kill(-job->pid, sig);
  }
  relay.start();
  conn.send(proto::Ctl::JobStarted, proto::JobStartedMsg{job->pid});
  std::thread waiter([&s, pid = job->pid] {
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    std::lock_guard lk(s.mu);
    s.wait_status = st;
    s.cv.notify_all();
  });

  // Wait for the job to end or the head node to go away.
  // A head that has not renewed our lease for the grace period is gone
  // too (a partition the TCP connection does not notice for long): file
  // operations fail with EIO by then, and the job is ended (DESIGN §6).
  bool head_gone;
  {
    std::unique_lock lk(s.mu);
    auto grace = std::chrono::milliseconds(spec.grace_ms);
    while (!s.cv.wait_for(lk, std::chrono::milliseconds(200),
                          [&] { return s.wait_status.has_value() || s.closed; })) {
      if (fuse.since_renewal() > grace && !s.closed) {
        // Pending and later file requests fail with EIO at once; the job
        // sees that before it is ended.
        s.close_reason = "no word from it for " + std::to_string(fuse.since_renewal().count() / 1000) + " s";
        lk.unlock();
        conn.close("head node unreachable: " + s.close_reason);
        lk.lock();
        s.closed = true;
      }
    }
    head_gone = !s.wait_status.has_value();
  }
  if (head_gone) {
    log->warn("head node gone ({}): ending the job", s.close_reason);
    {
      std::unique_lock lk(s.mu);
      s.cv.wait_for(lk, std::chrono::milliseconds(k_eio_grace_ms), [&] { return s.wait_status.has_value(); });
    }
    kill_job(s, job->pid);
    waiter.join();
    {
      std::lock_guard lk(s.mu);
      s.relay = nullptr;
    }
    relay.stop();
    return 1;
  }
  waiter.join();

  // Drain output; background children holding it open are killed.
  if (!relay.wait_output_done(k_output_grace_ms)) {
    ::kill(-job->pid, SIGKILL);
    relay.wait_output_done(k_output_grace_ms);
  }
  ::kill(-job->pid, SIGKILL);
  {
    std::lock_guard lk(s.mu);
    s.relay = nullptr;
    s.job_pgid = -1;
  }
  relay.stop();

  // Every write the job made is on the head before its status is: a buffered
  // write that failed there turns the run into an error, never a success.
  if (int err = fuse.flush_all(); err != 0)
    return report_fatal(conn, std::string("some of the job's writes did not reach the head node: ") +
                                  std::strerror(err));

  // Report the status; the head syncs its disks and closes.
  int st = *s.wait_status;
  proto::JobExitMsg exit_msg{static_cast<uint8_t>(WIFSIGNALED(st) ? 1 : 0),
                             WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st)};
  conn.send(proto::Ctl::JobExit, exit_msg);
  {
    std::unique_lock lk(s.mu);
    s.cv.wait_for(lk, std::chrono::seconds(10), [&] { return s.closed; });
  }
  return 0;
}

}  // namespace mrc::target
