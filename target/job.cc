// Job spawning: pipes or pty, process group, exec error reporting.
#include "target/job.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <vector>

namespace mrc::target {
namespace {

struct Pipe {
  UniqueFd r, w;
};
Result<Pipe> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return fail_errno("pipe");
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// Reports `code` (an errno) on the exec-status pipe and exits 127.
[[noreturn]] void die_with(int err_fd, int code) {
  [[maybe_unused]] auto n = ::write(err_fd, &code, sizeof(code));
  ::_exit(127);
}

// In the child after fork: only async-signal-safe calls, then exec.
// Writes errno to `err_fd` and exits 127 on failure.
[[noreturn]] void exec_child(const proto::JobSpec& spec, int root_fd, int in, int out, int err,
                             const char* pty_slave, int err_fd,
                             const std::vector<char*>& argv, const std::vector<char*>& envp,
                             const char* path_env) {
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int s = 1; s < NSIG; ++s) ::signal(s, SIG_DFL);
  if (pty_slave) {
    if (::setsid() < 0) die_with(err_fd, errno);
    int fd = ::open(pty_slave, O_RDWR);
    if (fd < 0) die_with(err_fd, errno);
    if (::ioctl(fd, TIOCSCTTY, 0) < 0) die_with(err_fd, errno);
    in = out = err = fd;
  } else if (::setpgid(0, 0) < 0) {
    die_with(err_fd, errno);
  }
  if (::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(err, 2) < 0) die_with(err_fd, errno);
  if (root_fd >= 0 && (::fchdir(root_fd) != 0 || ::chroot(".") != 0)) die_with(err_fd, errno);
  if (::chdir(spec.cwd.c_str()) != 0) die_with(err_fd, errno);
  ::umask(static_cast<mode_t>(spec.umask & 0777));
  // Search the job's PATH (not ours) without allocating: we are a fork of
  // a multithreaded process.
  const char* cmd = argv[0];
  if (std::strchr(cmd, '/')) {
    ::execve(cmd, argv.data(), envp.data());
    die_with(err_fd, errno);
  }
  int first_err = ENOENT;
  char buf[4096];
  size_t cmd_len = std::strlen(cmd);
  for (const char* p = path_env;;) {
    const char* end = std::strchr(p, ':');
    size_t len = end ? static_cast<size_t>(end - p) : std::strlen(p);
    if (len == 0) len = 1, p = ".";  // empty PATH element means cwd
    if (len + 1 + cmd_len + 1 <= sizeof(buf)) {
      std::memcpy(buf, p, len);
      buf[len] = '/';
      std::memcpy(buf + len + 1, cmd, cmd_len + 1);
      ::execve(buf, argv.data(), envp.data());
      if (errno != ENOENT && errno != ENOTDIR) first_err = errno;
    }
    if (!end) break;
    p = end + 1;
  }
  die_with(err_fd, first_err);
}

}  // namespace

void set_window_size(int pty_fd, uint16_t rows, uint16_t cols) {
  winsize ws{};
  ws.ws_row = rows;
  ws.ws_col = cols;
  ::ioctl(pty_fd, TIOCSWINSZ, &ws);
}

Result<Job> spawn_job(const proto::JobSpec& spec, int root_fd) {
  if (spec.argv.empty()) return fail(EINVAL, "empty command");
  // Everything the child needs is prepared before fork (no allocation after).
  // --no-env: the target's own environment, with the explicit --env
  // settings on top; otherwise exactly the head's (filtered) environment.
  std::vector<std::string> env_store;
  if (spec.use_target_env) {
    for (char** e = environ; *e; ++e) {
      std::string kv = *e, name = kv.substr(0, kv.find('='));
      bool overridden = false;
      for (const auto& s : spec.env) overridden |= s.substr(0, s.find('=')) == name;
      if (!overridden) env_store.push_back(kv);
    }
  }
  env_store.insert(env_store.end(), spec.env.begin(), spec.env.end());
  std::vector<char*> argv, envp;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const char* path_env = "/usr/local/bin:/usr/bin:/bin";
  for (auto& e : env_store) {
    envp.push_back(e.data());
    if (e.rfind("PATH=", 0) == 0) path_env = e.c_str() + 5;
  }
  envp.push_back(nullptr);

  Job job;
  job.pty = spec.pty != 0;
  UniqueFd master;
  std::string slave_name;
  Pipe in, out, err;
  if (job.pty) {
    master = UniqueFd(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!master || ::grantpt(master.get()) != 0 || ::unlockpt(master.get()) != 0)
      return fail_errno("allocate a pseudo-terminal");
    slave_name = ::ptsname(master.get());
    if (spec.rows && spec.cols) set_window_size(master.get(), spec.rows, spec.cols);
  } else {
    auto i = make_pipe(), o = make_pipe(), e = make_pipe();
    if (!i || !o || !e) return fail_errno("pipe");
    in = std::move(*i);
    out = std::move(*o);
    err = std::move(*e);
  }
  auto status = make_pipe();  // CLOEXEC: closes on a successful exec
  if (!status) return tl::unexpected(status.error());

  pid_t pid = ::fork();
  if (pid < 0) return fail_errno("fork");
  if (pid == 0) {
    status->r.reset();
    exec_child(spec, root_fd, in.r.get(), out.w.get(), err.w.get(),
               job.pty ? slave_name.c_str() : nullptr, status->w.get(), argv, envp, path_env);
  }
  // Also set the group from the parent so a signal sent right away reaches it.
  if (!job.pty) ::setpgid(pid, pid);
  status->w.reset();
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(status->r.get(), &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  job.pid = pid;
  if (n == sizeof(child_errno)) {
    int ignored;
    ::waitpid(pid, &ignored, 0);
    return fail(child_errno, spec.argv[0] + ": " + std::strerror(child_errno) +
                                 (child_errno == ENOENT ? " (command not found on the target, or cwd " +
                                                              spec.cwd + " missing)"
                                                        : ""));
  }
  if (job.pty) {
    int dup_fd = ::fcntl(master.get(), F_DUPFD_CLOEXEC, 0);
    job.stdin_fd = std::move(master);
    job.stdout_fd = UniqueFd(dup_fd);
  } else {
    job.stdin_fd = std::move(in.w);
    job.stdout_fd = std::move(out.r);
    job.stderr_fd = std::move(err.r);
  }
  return job;
}

}  // namespace mrc::target
