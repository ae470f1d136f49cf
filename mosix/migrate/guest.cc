// The guest end: restore from the link, the commit, then the relay loop
// (poll on the link, the guest's stdout/stderr pipes, its stdin pipe and a
// pidfd for its exit) until it exits or goes home.
#include "mosix/migrate/guest.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <thread>

#include "common/fd.h"
#include "common/log.h"
#include "mosix/migrate/dump.h"
#include "mosix/migrate/home_files.h"
#include "mosix/migrate/link.h"
#include "mosix/migrate/procfs.h"
#include "mosix/migrate/restore.h"

namespace mosix::migrate {
namespace {

using mrc::UniqueFd;

/// Bytes read from a guest's stdout or stderr per frame.
constexpr size_t k_out_piece = 64 * 1024;

struct Pipe {
  UniqueFd read, write;
};

Result<Pipe> make_pipe() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return mrc::fail_errno("pipe");
  return Pipe{UniqueFd(p[0]), UniqueFd(p[1])};
}

/// One guest and its link. The stdio pipes' far ends are the guest's 0,
/// 1 and 2 (where its image has no file of its own there).
struct Guest {
  int link;
  const GuestOptions& o;
  pid_t pid = -1;
  UniqueFd pidfd;
  Pipe in, out, err;
  std::vector<std::byte> pending_in;  // for its stdin, not yet taken by the pipe
  bool in_eof = false;                // the home end's stdin ended: close the pipe once drained
  std::shared_ptr<spdlog::logger> log = mrc::logger("guest");
  int transfer_ms = o.transfer_ms;  // the home end's, once it said
  std::unique_ptr<HomeFiles> files;  // the home node's files, if the home end sends them
  ino_t in_ino = 0;                  // the stdin pipe's inode: found in the guest's fds on the way home

  /// The restore and the commit. On failure nothing runs here.
  Result<void> arrive() {
    auto i = make_pipe(), a = make_pipe(), b = make_pipe();
    if (!i || !a || !b) return mrc::fail_errno("pipe");
    in = std::move(*i);
    struct stat ps {};
    if (::fstat(in.write.get(), &ps) == 0) in_ino = ps.st_ino;
    out = std::move(*a);
    err = std::move(*b);
    // The home end's link timeout first (mosrun --link-timeout): this end
    // then gives up on a silent link as soon as that end does. Older home
    // ends start with the image; ends without home files skip them.
    auto first = recv_frame(link, o.transfer_ms);
    if (!first) return tl::unexpected(first.error());
    if (first->type == FrameType::link_timeout) {
      auto ms = frame_u32(*first);
      if (!ms || *ms < 1000 || *ms > 3'600'000) return mrc::fail(EPROTO, "the link: a link timeout outside 1 s .. 1 h");
      transfer_ms = static_cast<int>(*ms);
      set_link_timeouts(link, transfer_ms);
      first = recv_frame(link, transfer_ms);
      if (!first) return tl::unexpected(first.error());
    }
    // The home node's files (item 5): mounted before the restore, so the
    // image's files are opened through them at the same paths.
    if (first->type == FrameType::home_files) {
      auto f = HomeFiles::open(link, transfer_ms);
      if (!f) {
        (void)send_text(link, FrameType::error, "the home node's files: " + f.error().message);
        return mrc::fail(f.error().code, "the home node's files: " + f.error().message);
      }
      files = std::move(*f);
      first = recv_frame(link, transfer_ms);
      if (!first) return tl::unexpected(first.error());
    }
    if (first->type == FrameType::error) return mrc::fail(ECONNABORTED, "the home end gave up: " + first->text());
    if (first->type != FrameType::image)
      return mrc::fail(EPROTO, "the link: frame type " + std::to_string(static_cast<uint32_t>(first->type)) +
                                   " before the image");
    ImageFrameSource src(link, transfer_ms, std::move(first->payload));
    ImageReader reader([&](std::span<std::byte> buf) { return src.read(buf); });
    auto r = restore(reader, {in.read.get(), out.write.get(), err.write.get()});
    if (!r) {
      (void)send_text(link, FrameType::error, r.error().message);
      return tl::unexpected(r.error());
    }
    pid = r->tracee.pid();
    // Phase one done: everything but the release. The home end lets go of
    // the original, or gives up (then the half-built guest dies here).
    auto kill_it = [&](const mrc::Error& e) -> tl::unexpected<mrc::Error> {
      r->tracee.abandon();
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, __WALL);
      pid = -1;
      return tl::unexpected(e);
    };
    if (auto s = send_frame(link, FrameType::ready); !s) return kill_it(s.error());
    auto f = recv_frame(link, o.commit_ms);
    if (!f) return kill_it(f.error());
    if (f->type != FrameType::commit)
      return kill_it(mrc::Error{ECONNABORTED, f->type == FrameType::error
                                                  ? "the home end gave up: " + f->text()
                                                  : std::string("no commit from the home end")});
    if (auto s = r->release(); !s) return kill_it(s.error());
    in.read.reset();  // the guest holds its ends now
    out.write.reset();
    err.write.reset();
    mrc::set_nonblocking(in.write.get(), true);
    // Released: from here it runs, and it must not run on without its
    // relay, nor while the original goes on at home.
    auto stop_it = [&](const mrc::Error& e) -> tl::unexpected<mrc::Error> {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, __WALL);
      pid = -1;
      return tl::unexpected(e);
    };
    pidfd = UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd) {
      const mrc::Error e = mrc::fail_errno("pidfd_open").value();
      auto stopped = stop_it(e);
      // Our word that nothing runs here: the home end lets the original go at once.
      (void)send_text(link, FrameType::error, "cannot watch the process it released: " + e.message);
      return stopped;
    }
    log->info("guest {} arrived: {} regions, {} pages, {} bytes", pid, r->stats.regions, r->stats.pages,
              r->stats.image_bytes);
    // Fault injection for tests (tests/e2e/test_mosix_migrate.py): a
    // `running` that is late, as over a link that is being cut.
    if (const char* hold = std::getenv("MOSIX_FAULT_HOLD_RUNNING_MS"))
      std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(hold)));
    if (auto s = send_u32(link, FrameType::running, static_cast<uint32_t>(pid)); !s) return stop_it(s.error());
    return {};
  }

  /// Sends what the guest's stdout or stderr holds; false at its end.
  Result<bool> pass_out(Pipe& p, FrameType type) {
    std::vector<std::byte> buf(k_out_piece);
    ssize_t n = ::read(p.read.get(), buf.data(), buf.size());
    if (n < 0) return errno == EAGAIN || errno == EINTR ? true : false;
    if (n == 0) {
      p.read.reset();
      return false;
    }
    if (auto s = send_frame(link, type, std::span(buf).first(static_cast<size_t>(n))); !s)
      return tl::unexpected(s.error());
    return true;
  }

  /// Everything the stdout and stderr pipes hold now (the guest is dead
  /// or stopped), without waiting.
  Result<void> drain() {
    for (Pipe* p : {&out, &err}) {
      if (!p->read) continue;
      mrc::set_nonblocking(p->read.get(), true);
      for (;;) {
        int avail = 0;
        auto more = pass_out(*p, p == &out ? FrameType::stdout_data : FrameType::stderr_data);
        if (!more) return tl::unexpected(more.error());
        if (!*more || !p->read || (::ioctl(p->read.get(), FIONREAD, &avail) == 0 && avail == 0)) break;
      }
    }
    return {};
  }

  void feed_stdin() {
    while (!pending_in.empty() && in.write) {
      ssize_t n = ::write(in.write.get(), pending_in.data(), pending_in.size());
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      if (n < 0) {  // it closed its stdin: what it did not take is dropped, as
                    // with a pipe
        pending_in.clear();
        in.write.reset();
        return;
      }
      pending_in.erase(pending_in.begin(), pending_in.begin() + n);
    }
    if (pending_in.empty() && in_eof) in.write.reset();
  }

  /// The guest exited: what it wrote, then its status, home.
  int exited() {
    int st = 0;
    ::waitpid(pid, &st, 0);
    (void)drain();
    // Its writes are on the home node before its status is: a buffered
    // write that failed there turns a success into exit 1.
    if (int e = files ? files->flush() : 0; e != 0) {
      std::string msg = "mosix: some of the process's writes did not reach the home node: " +
                        std::string(std::strerror(e)) + "\n";
      (void)send_text(link, FrameType::stderr_data, msg);
      if (WIFEXITED(st) && WEXITSTATUS(st) == 0) st = 1 << 8;
    }
    log->info("guest {} ended ({})", pid,
              WIFEXITED(st) ? "exit " + std::to_string(WEXITSTATUS(st)) : "signal " + std::to_string(WTERMSIG(st)));
    (void)send_u32(link, FrameType::exit, static_cast<uint32_t>(st));
    return 0;
  }

  /// What the guest's stdin pipe holds that it has not read, then what
  /// waits here for the pipe: taken out through a copy of the guest's own
  /// read end (pidfd_getfd; it is stopped), to go home with it. The pipe
  /// is empty after, so giving them back to pending_in keeps their order.
  std::vector<std::byte> take_unread_stdin() {
    std::vector<std::byte> got;
    // By the pipe's inode: our write end may be closed already (its input
    // ended) while the pipe still holds bytes.
    auto fds = in_ino ? read_fds(pid) : Result<std::vector<OpenFd>>{};
    const std::string want = "pipe:[" + std::to_string(in_ino) + "]";
    for (const OpenFd& f : fds ? *fds : std::vector<OpenFd>{}) {
      if (f.target != want) continue;
      UniqueFd r(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd.get(), f.fd, 0)));
      if (!r || (::fcntl(r.get(), F_GETFL) & O_ACCMODE) != O_RDONLY) continue;
      // FIONREAD, then exactly that much: never blocks, and leaves the
      // open file's flags (shared with the guest) alone.
      int avail = 0;
      while (::ioctl(r.get(), FIONREAD, &avail) == 0 && avail > 0) {
        size_t at = got.size();
        got.resize(at + static_cast<size_t>(avail));
        ssize_t n = ::read(r.get(), got.data() + at, static_cast<size_t>(avail));
        got.resize(at + static_cast<size_t>(std::max<ssize_t>(n, 0)));
        if (n <= 0) break;
      }
      break;
    }
    got.insert(got.end(), pending_in.begin(), pending_in.end());
    pending_in.clear();
    return got;
  }

  /// The way home: frozen, its output sent, its image streamed; the home
  /// end restores it and says ready; we then kill it here and commit. A
  /// failure before that lets it run on here.
  Result<bool> go_home() {
    auto t = Tracee::seize(pid);
    if (!t) return tl::unexpected(t.error());
    if (auto d = drain(); !d) return tl::unexpected(d.error());
    // Its unread stdin goes home first; if it stays, it is its stdin again.
    std::vector<std::byte> unread = take_unread_stdin();
    auto stay = [&] { pending_in = std::move(unread); };
    for (size_t at = 0; at < unread.size(); at += ImageFrameSink::k_image_piece)
      if (auto s = send_frame(link, FrameType::stdin_back,
                              std::span(unread).subspan(at, std::min(ImageFrameSink::k_image_piece, unread.size() - at)));
          !s) {
        stay();
        return tl::unexpected(s.error());
      }
    ImageFrameSink sink(link);
    ImageWriter w([&](std::span<const std::byte> b) { return sink.write(b); });
    auto stats = dump(*t, w);
    if (!stats) {
      (void)send_text(link, FrameType::error, stats.error().message);
      log->warn("guest {} cannot go home: {}", pid, stats.error().message);
      stay();
      return false;  // ~Tracee lets it run on here
    }
    // What it wrote is at home before it runs there.
    if (int e = files ? files->flush() : 0; e != 0) {
      std::string why = std::string("its writes did not reach the home node: ") + std::strerror(e);
      (void)send_text(link, FrameType::error, why);
      log->warn("guest {} cannot go home: {}", pid, why);
      stay();
      return false;
    }
    if (auto e = sink.end(); !e) {
      stay();
      return tl::unexpected(e.error());
    }
    auto f = recv_frame(link, transfer_ms);
    if (!f) {
      stay();
      return tl::unexpected(f.error());
    }
    if (f->type != FrameType::ready) {
      log->warn("guest {} stays: the home end could not take it back: {}", pid, f->text());
      stay();
      return false;
    }
    t->abandon();
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, __WALL);
    if (auto s = send_frame(link, FrameType::commit); !s) return tl::unexpected(s.error());
    log->info("guest {} went home ({} bytes)", pid, stats->image_bytes);
    return true;
  }

  /// The relay until the guest exits or goes home. The home end gone
  /// means its deputy is gone: the guest is killed.
  int relay() {
    for (;;) {
      std::vector<pollfd> fds = {{link, POLLIN, 0}, {pidfd.get(), POLLIN, 0}};
      if (out.read) fds.push_back({out.read.get(), POLLIN, 0});
      if (err.read) fds.push_back({err.read.get(), POLLIN, 0});
      if (in.write && !pending_in.empty()) fds.push_back({in.write.get(), POLLOUT, 0});
      if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) break;
      for (size_t k = 2; k < fds.size(); ++k) {
        if (!fds[k].revents) continue;
        if (fds[k].fd == in.write.get()) {
          feed_stdin();
        } else {
          Pipe& p = fds[k].fd == out.read.get() ? out : err;
          auto more = pass_out(p, &p == &out ? FrameType::stdout_data : FrameType::stderr_data);
          if (!more) return lost(more.error());
        }
      }
      if (fds[1].revents) return exited();
      if (fds[0].revents) {
        auto f = recv_frame(link, transfer_ms);
        if (!f) return lost(f.error());
        switch (f->type) {
          case FrameType::stdin_data:
            if (f->payload.empty()) in_eof = true;
            pending_in.insert(pending_in.end(), f->payload.begin(), f->payload.end());
            feed_stdin();
            break;
          case FrameType::signal: {
            auto sig = frame_u32(*f);
            if (!sig || *sig < 1 || *sig > 64) return lost(mrc::Error{EPROTO, "a bad signal frame"});
            ::kill(pid, static_cast<int>(*sig));
            break;
          }
          case FrameType::go_home: {
            auto gone = go_home();
            if (!gone) return lost(gone.error());
            if (*gone) return 0;
            break;
          }
          case FrameType::error:  // the home end's answer to an image we could not finish: it stays here
            log->warn("guest {} stays: {}", pid, f->text());
            break;
          default:
            return lost(mrc::Error{EPROTO, "unexpected frame type " + std::to_string(static_cast<uint32_t>(f->type))});
        }
      }
    }
    return lost(mrc::Error{errno, "poll"});
  }

  int lost(const mrc::Error& e) {
    log->warn("guest {}: the home end is gone ({}): killing it", pid, e.message);
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, __WALL);
    return 1;
  }
};

}  // namespace

int serve_guest(int conn, const GuestOptions& o) {
  UniqueFd link(conn);
  auto log = mrc::logger("guest");
  ::signal(SIGPIPE, SIG_IGN);
  set_link_timeouts(link.get(), o.transfer_ms);
  if (auto h = accept_handshake(link.get(), o.key, o.handshake_ms); !h) {
    log->warn("migration refused: {}", h.error().message);
    return 1;
  }
  Guest g{link.get(), o};
  if (auto a = g.arrive(); !a) {
    log->warn("migration failed: {} (nothing runs here)", a.error().message);
    return 1;
  }
  return g.relay();
}

}  // namespace mosix::migrate
