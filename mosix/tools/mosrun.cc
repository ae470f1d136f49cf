// mosrun and migrate: options, the parent loop (signalfd: the child's exit,
// checkpoint requests, signals to pass on; a timer for -A), and migrate's
// request to the mosrun that runs a process.
#include "mosix/tools/mosrun.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "mosix/mosixd/cli.h"
#include "mosix/migrate/checkpoint.h"

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
  CLI::App app{"Run a command as a migratable MOSIX process, with checkpoints; or recover one.\n"
               "  mosrun [-C FILE [-A MINUTES]] command [args...]\n"
               "  mosrun -R FILE [-C FILE [-A MINUTES]]\n"
               "`migrate PID checkpoint` asks for a checkpoint now. Exit status: the process's.",
               "mosrun"};
  MosrunOptions o;
  app.add_option("-C", o.checkpoint, "checkpoint file base: checkpoints go to FILE.1, FILE.2, ...");
  app.add_option("-A", o.every_minutes, "a checkpoint every MINUTES (needs -C)")->check(CLI::Range(1, 1'000'000));
  app.add_option("-R", o.recover, "recover the process in this checkpoint file and continue it");
  // The command and its arguments: everything from the first word that is
  // not one of ours, options included (`mosrun -C f gzip -c x`).
  app.prefix_command();
  app.footer("command [args...]: the command to run and its arguments, passed on as they are");
  mosixd::parse_command_line(app, argc, argv);
  o.command = app.remaining();
  if (o.every_minutes && o.checkpoint.empty()) throw mrc::Fatal("-A needs -C FILE");
  if (o.recover.empty() && o.command.empty()) throw mrc::Fatal("a command to run, or -R FILE (see mosrun --help)");
  if (!o.recover.empty() && !o.command.empty()) throw mrc::Fatal("-R FILE takes no command");
  return o;
}

int run_mosrun(const MosrunOptions& o) {
  // Our signals arrive on a signalfd; the process gets the default mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, k_checkpoint_signal);
  for (int s : k_forwarded) sigaddset(&set, s);
  sigset_t old;
  sigprocmask(SIG_BLOCK, &set, &old);
  int sfd = ::signalfd(-1, &set, SFD_CLOEXEC);
  if (sfd < 0) {
    std::fprintf(stderr, "mosrun: signalfd: %s\n", std::strerror(errno));
    return k_exit_fatal;
  }

  pid_t pid = -1;
  if (!o.recover.empty()) {
    auto r = migrate::recover_from_file(o.recover);
    if (!r) {
      std::fprintf(stderr, "mosrun: cannot recover %s: %s\n", o.recover.c_str(), r.error().message.c_str());
      return k_exit_fatal;
    }
    pid = *r;
  } else {
    pid = ::fork();
    if (pid < 0) {
      std::fprintf(stderr, "mosrun: fork: %s\n", std::strerror(errno));
      return k_exit_fatal;
    }
    if (pid == 0) {
      ::close(sfd);
      sigprocmask(SIG_SETMASK, &old, nullptr);
      std::vector<char*> argv;
      for (const std::string& a : o.command) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execvp(argv[0], argv.data());
      std::fprintf(stderr, "mosrun: %s: %s\n", argv[0], std::strerror(errno));
      ::_exit(errno == ENOENT ? 127 : 126);
    }
  }

  int taken = 0;  // checkpoints written: the next is FILE.(taken+1)
  auto checkpoint = [&] {
    if (o.checkpoint.empty()) {
      std::fprintf(stderr, "mosrun: a checkpoint was asked for, but no -C FILE was given\n");
      return;
    }
    std::string path = o.checkpoint + "." + std::to_string(taken + 1);
    auto s = migrate::checkpoint_to_file(pid, path);
    if (!s) {
      std::fprintf(stderr, "mosrun: checkpoint %s failed: %s\n", path.c_str(), s.error().message.c_str());
      return;
    }
    ++taken;
  };
  const int64_t period_ms = int64_t{o.every_minutes} * 60'000;
  int64_t next = period_ms ? now_ms() + period_ms : -1;
  for (;;) {
    int timeout = next < 0 ? -1 : static_cast<int>(std::max<int64_t>(0, next - now_ms()));
    pollfd p{sfd, POLLIN, 0};
    int n = ::poll(&p, 1, timeout);
    if (n < 0 && errno != EINTR) {
      std::fprintf(stderr, "mosrun: poll: %s\n", std::strerror(errno));
      ::kill(pid, SIGKILL);
    }
    if (n == 0) {
      checkpoint();
      next = now_ms() + period_ms;
      continue;
    }
    signalfd_siginfo si{};
    if (::read(sfd, &si, sizeof(si)) != sizeof(si)) continue;
    if (static_cast<int>(si.ssi_signo) == k_checkpoint_signal) {
      checkpoint();
    } else if (si.ssi_signo == SIGCHLD) {
      int st = 0;
      pid_t w = ::waitpid(pid, &st, WNOHANG);
      if (w == pid && (WIFEXITED(st) || WIFSIGNALED(st))) return exit_status(st);
    } else {
      ::kill(pid, static_cast<int>(si.ssi_signo));
    }
  }
}

MigrateOptions parse_migrate_cli(int argc, char** argv) {
  CLI::App app{"Move a MOSIX process, or checkpoint it.\n"
               "  migrate PID checkpoint   a checkpoint now, to its mosrun -C FILE (the process runs on)",
               "migrate"};
  MigrateOptions o;
  app.add_option("pid", o.pid, "the process")->required()->check(CLI::PositiveNumber);
  app.add_option("where", o.where, "checkpoint (a node, home, freeze and continue come with live migration)")
      ->required();
  mosixd::parse_command_line(app, argc, argv);
  return o;
}

int run_migrate(const MigrateOptions& o) {
  if (o.where != "checkpoint") {
    std::fprintf(stderr, "migrate: '%s': only 'checkpoint' is available in this version (moving to a node, home, "
                 "freeze and continue are not)\n", o.where.c_str());
    return k_exit_fatal;
  }
  // The process's parent must be the mosrun that runs it: it takes the
  // checkpoint (it knows the file) and the process runs on.
  std::ifstream stat("/proc/" + std::to_string(o.pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) {
    std::fprintf(stderr, "migrate: no process %d\n", static_cast<int>(o.pid));
    return k_exit_fatal;
  }
  size_t close = line.rfind(')');
  pid_t ppid = 0;
  char state = 0;
  if (close == std::string::npos || std::sscanf(line.c_str() + close + 1, " %c %d", &state, &ppid) != 2) {
    std::fprintf(stderr, "migrate: cannot read /proc/%d/stat\n", static_cast<int>(o.pid));
    return k_exit_fatal;
  }
  std::ifstream comm("/proc/" + std::to_string(ppid) + "/comm");
  std::string parent;
  std::getline(comm, parent);
  if (parent != "mosrun") {
    std::fprintf(stderr, "migrate: process %d was not started by mosrun (its parent is %s)\n",
                 static_cast<int>(o.pid), parent.empty() ? "gone" : parent.c_str());
    return k_exit_fatal;
  }
  if (::kill(ppid, k_checkpoint_signal) != 0) {
    std::fprintf(stderr, "migrate: cannot reach mosrun %d: %s\n", static_cast<int>(ppid), std::strerror(errno));
    return k_exit_fatal;
  }
  return 0;
}

}  // namespace mosix::tools
