// A forked zdtm-style workload for the dump and restore tests: the child
// runs a setup, reports numbers (fds it opened) and waits in pause() until
// SIGHUP; its exit status is its own verdict on its state.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstddef>

#include <gtest/gtest.h>

namespace mosix::migrate::testing_workload {

inline volatile sig_atomic_t g_usr1 = 0;
inline void on_usr1(int, siginfo_t*, void*) { g_usr1 = 1; }

inline std::byte pattern(size_t page, size_t i) { return static_cast<std::byte>((page * 7 + i) & 0xff); }

inline volatile sig_atomic_t g_go = 0;
inline void on_hup(int) { g_go = 1; }

/// A forked workload: `setup` runs in the child (which has closed every
/// inherited fd but stdio) and returns numbers for the test (fds it
/// opened); then the child says ready and waits in pause() until SIGHUP;
/// its exit status is `verify`'s verdict.
struct Child {
  pid_t pid = -1;
  std::array<int, 4> info{};  // what setup returned
  template <class Setup, class Verify>
  static Child start(Setup setup, Verify verify) {
    int r[2];
    EXPECT_EQ(::pipe(r), 0);
    Child ch;
    ch.pid = ::fork();
    if (ch.pid == 0) {
      for (int fd = 3; fd < 1024; ++fd)
        if (fd != r[1]) ::close(fd);
      ::signal(SIGHUP, on_hup);
      std::array<int, 4> info = setup();
      if (::write(r[1], info.data(), sizeof(info)) != sizeof(info)) ::_exit(90);
      ::close(r[1]);
      while (!g_go) ::pause();  // frozen in here
      ::_exit(verify() ? 0 : 91);
    }
    ::close(r[1]);
    EXPECT_EQ(::read(r[0], ch.info.data(), sizeof(ch.info)), static_cast<ssize_t>(sizeof(ch.info)));
    ::close(r[0]);
    ::usleep(20'000);  // into its pause()
    return ch;
  }
  int finish() {
    ::kill(pid, SIGHUP);
    int st = 0;
    EXPECT_EQ(::waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
  void kill() {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
};

}  // namespace mosix::migrate::testing_workload
