// The home end: the migration with its two-phase commit, the deputy's
// set-up (memory released, timers off, asleep in pause()), the relay, the
// deputy's end, and the way home (restore_into the deputy).
#include "mosix/migrate/deputy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "common/log.h"
#include "mosix/migrate/kernel_abi.h"
#include "mosix/migrate/procfs.h"
#include "mosix/migrate/restore.h"

namespace mosix::migrate {
namespace {

using mrc::fail;
using mrc::UniqueFd;

/// How long the destination may take to say the process runs, once
/// committed, ms.
constexpr int k_running_ms = 30'000;
/// Bytes of our stdin passed on per frame.
constexpr size_t k_in_piece = 64 * 1024;
/// Most stdin bytes a process may bring home unread, bytes: its pipe there
/// and what its guest end held for it (what we sent it, so bounded by our
/// own input; a larger claim is a broken peer).
constexpr size_t k_max_unread = 256u << 20;

bool is_timer_signal(int sig) { return sig == SIGALRM || sig == SIGVTALRM || sig == SIGPROF; }

/// Whether a signal the deputy caught (with its siginfo) came from the
/// original's own interval timer, which the process has there: the
/// kernel's (a `kill -ALRM` is SI_USER and goes on to the process).
bool timer_fired(int sig, int code) { return is_timer_signal(sig) && code == SI_KERNEL; }

/// Passes on the signals held while the process was frozen (they carry
/// no siginfo: a timer signal among them is dropped - one tick may be
/// lost, never doubled).
void pass_held_signals(Tracee& t, int link) {
  for (int sig : t.take_held_signals())
    if (!is_timer_signal(sig)) (void)send_u32(link, FrameType::signal, static_cast<uint32_t>(sig));
}

/// A copy of the deputy's fd `fd` (pidfd_getfd: the same open file).
UniqueFd copy_fd(int pidfd, int fd) { return UniqueFd(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd, fd, 0))); }

/// The home files (home_files.h), before the process is frozen: the
/// guest end's port and token, the file link to it, the file service on
/// it, and the guest end's word that the exports are mounted there.
/// Returns the service's socket.
mrc::Result<UniqueFd> offer_files(int link, const std::string& address, const DeputyOptions& o) {
  if (auto s = send_frame(link, FrameType::home_files); !s) return tl::unexpected(s.error());
  auto port = recv_frame(link, o.transfer_ms);
  if (!port) return tl::unexpected(port.error());
  if (port->type == FrameType::error) return fail(ECONNABORTED, address + " refused: " + port->text());
  if (port->type != FrameType::file_port || port->payload.size() != 2 + 32)
    return fail(EPROTO, address + ": no file port after home_files");
  auto p = std::to_integer<unsigned>(port->payload[0]) | std::to_integer<unsigned>(port->payload[1]) << 8;
  sockaddr_in peer{};
  socklen_t len = sizeof peer;
  if (::getpeername(link, reinterpret_cast<sockaddr*>(&peer), &len) != 0) return mrc::fail_errno("getpeername");
  char ip[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof ip);
  std::string there = std::string(ip) + ":" + std::to_string(p);
  auto fd = connect_tcp(there, o.connect_ms);
  if (!fd) return tl::unexpected(fd.error());
  UniqueFd files(*fd);
  if (auto w = mrc::write_all(files.get(), std::span(port->payload).subspan(2)); !w)
    return fail(w.error().code, "the file link to " + there + ": " + w.error().message);
  auto svc = o.attach_files(std::move(files));
  if (!svc) return tl::unexpected(svc.error());
  auto mounted = recv_frame(link, o.transfer_ms);
  if (!mounted) return tl::unexpected(mounted.error());
  if (mounted->type == FrameType::error) return fail(ECONNABORTED, address + " could not take it: " + mounted->text());
  if (mounted->type != FrameType::home_files) return fail(EPROTO, address + ": no word that the home files are there");
  return svc;
}

}  // namespace

/// After `commit`, no word that the process runs there: the destination
/// may have released it all the same, and the original must not go on
/// until that copy has stopped. It stays frozen until the guest end must
/// have seen the link fail and killed its copy. Our shutdown shows it at
/// once while the connection is up. If the network is cut, commit may
/// reach the guest end up to one link timeout after we sent it
/// (retransmitted until TCP_USER_TIMEOUT), and the guest end gives up on
/// the link at most one link timeout after its last exchange
/// (TCP_USER_TIMEOUT on its `running`, keepalive otherwise;
/// docs/migration-link.md §5, §8). So: two link timeouts after commit,
/// and a margin for timer granularity (2 s, or a tenth of the timeout).
void Deputy::outlive_a_released_copy(std::chrono::steady_clock::time_point committed_at, int link_timeout_ms) {
  ::shutdown(link(), SHUT_RDWR);
  const auto margin = std::chrono::milliseconds(std::max(2000, link_timeout_ms / 10));
  const auto until = committed_at + 2 * std::chrono::milliseconds(link_timeout_ms) + margin;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
  if (left.count() <= 0) return;
  mrc::logger("deputy")->warn(
      "process {}: committed to {} without its word that it runs there; held frozen {:.1f} s more, so that a "
      "copy there, if one started, has stopped before this one goes on",
      pid(), m_where, static_cast<double>(left.count()) / 1000);
  std::this_thread::sleep_until(until);
}

mrc::Result<Deputy> Deputy::migrate(pid_t pid, const std::string& address, const Signer& sign, const DeputyOptions& o) {
  auto log = mrc::logger("deputy");
  if (auto m = check_movable(pid); !m) return tl::unexpected(m.error());
  auto fd = connect_tcp(address, o.connect_ms);
  if (!fd) return tl::unexpected(fd.error());
  UniqueFd link(*fd);
  set_link_timeouts(link.get(), o.transfer_ms);
  if (auto h = connect_handshake(link.get(), sign, o.connect_ms); !h) return tl::unexpected(h.error());
  // Both ends give up on a silent link after the same time.
  if (auto s = send_u32(link.get(), FrameType::link_timeout, static_cast<uint32_t>(o.transfer_ms)); !s)
    return tl::unexpected(s.error());
  UniqueFd files;
  if (o.attach_files) {
    auto f = offer_files(link.get(), address, o);
    if (!f) return tl::unexpected(f.error());
    files = std::move(*f);
  }
  const auto frozen_at = std::chrono::steady_clock::now();
  auto t = Tracee::seize(pid);
  if (!t) {
    // It may have ended meanwhile (the file link takes a while): a zombie
    // cannot be traced, and "not permitted" would be a riddle.
    siginfo_t si{};
    if (::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid)
      return fail(ESRCH, "process " + std::to_string(pid) + " has exited");
    return tl::unexpected(t.error());
  }
  Deputy d(std::move(*t), std::move(link), address);
  d.m_transfer_ms = o.transfer_ms;
  d.m_files = std::move(files);

  // The image, streamed as it is taken; the destination restores while
  // the bytes arrive. Any failure from here to "running": ~Deputy lets
  // the original go on where it was.
  ImageFrameSink sink(d.link());
  ImageWriter w([&](std::span<const std::byte> b) { return sink.write(b); }, o.zstd_level);
  auto stats = dump(d.m_tracee, w);
  if (!stats) {
    (void)send_text(d.link(), FrameType::error, stats.error().message);
    return tl::unexpected(stats.error());
  }
  d.m_stats = *stats;
  if (auto e = sink.end(); !e) return tl::unexpected(e.error());
  auto ready = recv_frame(d.link(), o.transfer_ms);
  if (!ready) return tl::unexpected(ready.error());
  if (ready->type == FrameType::error) return fail(ECONNABORTED, address + " could not take it: " + ready->text());
  if (ready->type != FrameType::ready) return fail(EPROTO, address + ": no ready after the image");

  // The deputy's relayed stdio, copied before we commit (a failure here
  // still leaves the process where it was).
  auto meta_fds = read_fds(pid);
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!meta_fds) return tl::unexpected(meta_fds.error());
  if (!pidfd) return mrc::fail_errno("pidfd_open");
  for (const OpenFd& f : *meta_fds) {
    bool special = f.target.rfind("pipe:", 0) == 0 || f.target.rfind("socket:", 0) == 0 ||
                   f.target.rfind("/dev/pts/", 0) == 0 || f.target.rfind("/dev/tty", 0) == 0;
    if (f.fd > 2 || !special) continue;
    UniqueFd c = copy_fd(pidfd.get(), f.fd);
    if (!c) return mrc::fail_errno("pidfd_getfd " + std::to_string(f.fd));
    (f.fd == 0 ? d.m_in : f.fd == 1 ? d.m_out : d.m_err) = std::move(c);
  }
  // Not O_NONBLOCK: the copy shares its open file with the deputy's fd 0
  // (and whoever else has it); on_stdin reads only when poll says so.

  // Phase two: commit, and the destination's word that it runs.
  const auto committed_at = std::chrono::steady_clock::now();
  bool killed_there = false;  // its guest end says so
  auto there = [&]() -> mrc::Result<uint32_t> {
    if (auto c = send_frame(d.link(), FrameType::commit); !c) return tl::unexpected(c.error());
    auto running = recv_frame(d.link(), k_running_ms);
    if (!running) return tl::unexpected(running.error());
    if (running->type == FrameType::error) {  // it killed what it had released: nothing runs there
      killed_there = true;
      return fail(ECONNABORTED, address + " could not run it: " + running->text());
    }
    if (running->type != FrameType::running) return fail(EPROTO, address + ": no word that the process runs");
    return frame_u32(*running);
  }();
  if (!there) {
    if (!killed_there) d.outlive_a_released_copy(committed_at, o.transfer_ms);
    return tl::unexpected(there.error());
  }
  d.m_frozen_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - frozen_at).count();
  if (auto b = d.become_deputy(); !b)
    log->warn("deputy {}: {} (the process runs at {})", pid, b.error().message, address);
  pass_held_signals(d.m_tracee, d.link());  // sent to it while it was frozen: the process's
  log->info("process {} runs at {} as {} ({} bytes moved)", pid, address, *there, stats->image_bytes);
  return d;
}

mrc::Result<void> release_memory(Tracee& t) {
  auto page = t.scratch();  // kept: syscalls that take pointers, later
  if (!page) return tl::unexpected(page.error());
  // Its own timers would fire here too: the image has them.
  for (uint64_t which : {ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF}) {
    std::byte zero[32]{};
    if (auto w = t.write_memory(*page, zero); !w) return w;
    (void)t.syscall(SYS_setitimer, {which, *page, 0});
  }
  // Everything but the vdso (where injected syscalls run) and the scratch
  // page (which the kernel may have merged into a neighbour): rseq first.
  if (auto r = t.unregister_rseq(); !r) return r;
  auto maps = read_maps(t.pid());
  if (!maps) return tl::unexpected(maps.error());
  auto unmap = [&](uint64_t from, uint64_t to) -> mrc::Result<void> {
    if (from >= to) return {};
    auto r = t.syscall(SYS_munmap, {from, to - from});
    if (!r) return tl::unexpected(r.error());
    if (*r < 0) return fail(static_cast<int>(-*r), "cannot release the memory at " + hex(from));
    return {};
  };
  for (const MapEntry& e : *maps) {
    if (e.path == "[vdso]" || e.path == "[vvar]" || e.path == "[vvar_vclock]" || e.path == "[vsyscall]") continue;
    bool holds_page = *page >= e.start && *page < e.end;
    if (auto r = unmap(e.start, holds_page ? *page : e.end); !r) return r;
    if (holds_page)
      if (auto r = unmap(*page + k_page_size, e.end); !r) return r;
  }
  // Memoryless, it must not outlive us (its image is there, or on disk).
  (void)::ptrace(PTRACE_SETOPTIONS, t.pid(), nullptr, PTRACE_O_EXITKILL);
  return t.resume_in_pause();
}

mrc::Result<void> Deputy::become_deputy() { return release_memory(m_tracee); }

mrc::Result<void> Deputy::write_out(const Frame& f) {
  UniqueFd& to = f.type == FrameType::stdout_data ? m_out : m_err;
  if (!to) return {};
  // The reader of our stdout went away: what the process writes is lost,
  // as it would have been (it gets no SIGPIPE from us).
  if (auto w = mrc::write_all(to.get(), f.payload); !w) to.reset();
  return {};
}

mrc::Result<std::optional<int>> Deputy::on_link() {
  auto f = recv_frame(link(), -1);
  if (!f) {
    (void)end_like(SIGKILL);  // its node or the link is gone, and the process with it
    return fail(f.error().code, "the process was lost with " + m_where + ": " + f.error().message);
  }
  switch (f->type) {
    case FrameType::stdout_data:
    case FrameType::stderr_data:
      if (auto w = write_out(*f); !w) return tl::unexpected(w.error());
      return std::nullopt;
    case FrameType::exit: {
      auto st = frame_u32(*f);
      if (!st) return tl::unexpected(st.error());
      int status = static_cast<int>(*st);
      if (auto e = end_like(status); !e) return tl::unexpected(e.error());
      return status;
    }
    default:
      (void)end_like(SIGKILL);
      return fail(EPROTO, m_where + " sent frame type " + std::to_string(static_cast<uint32_t>(f->type)) +
                              (f->type == FrameType::error ? ": " + f->text() : std::string()));
  }
}

mrc::Result<void> Deputy::on_stdin() {
  std::vector<std::byte> buf(k_in_piece);
  ssize_t n = ::read(m_in.get(), buf.data(), buf.size());
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return {};
  if (n <= 0) {  // its end (or an error that ends it): the process sees EOF
    m_in.reset();
    return send_frame(link(), FrameType::stdin_data);
  }
  return send_frame(link(), FrameType::stdin_data, std::span(buf).first(static_cast<size_t>(n)));
}

mrc::Result<bool> Deputy::on_wait(int status) {
  const pid_t p = pid();
  if (WIFEXITED(status) || WIFSIGNALED(status)) {
    m_tracee.abandon();
    (void)send_u32(link(), FrameType::signal, SIGKILL);
    return true;
  }
  if (!WIFSTOPPED(status)) return false;
  int sig = WSTOPSIG(status);
  siginfo_t si{};
  if ((status >> 16) == 0 && ::ptrace(PTRACE_GETSIGINFO, p, nullptr, &si) == 0 && !timer_fired(sig, si.si_code))
    // A signal on its way to the deputy: the process's.
    if (auto s = send_u32(link(), FrameType::signal, static_cast<uint32_t>(sig)); !s) return tl::unexpected(s.error());
  if (::ptrace(PTRACE_CONT, p, nullptr, nullptr) != 0) return mrc::fail_errno("PTRACE_CONT deputy");
  return false;
}

mrc::Result<void> Deputy::end_like(int status) {
  Tracee& t = m_tracee;
  const pid_t p = t.pid();
  if (p <= 0) return {};
  if (auto s = t.stop(); !s) return s;
  auto insn = t.syscall_insn();
  if (!insn) return tl::unexpected(insn.error());
  auto regs = t.regs();
  if (!regs) return tl::unexpected(regs.error());
  regs->rip = *insn;
  regs->orig_rax = ~uint64_t{0};
  if (WIFSIGNALED(status)) {
    // Killed there: killed here by the same signal, its default action.
    int sig = WTERMSIG(status);
    auto page = t.scratch();
    if (!page) return tl::unexpected(page.error());
    std::byte dfl[32]{};  // struct kernel_sigaction {SIG_DFL, 0, 0, 0}
    if (auto w = t.write_memory(*page, dfl); !w) return w;
    (void)t.syscall(SYS_rt_sigaction, {static_cast<uint64_t>(sig), *page, 0, 8});
    if (auto m = t.set_signal_mask(0); !m) return m;
    regs->rax = SYS_kill;
    regs->rdi = static_cast<uint64_t>(p);
    regs->rsi = static_cast<uint64_t>(sig);
  } else {
    regs->rax = SYS_exit_group;
    regs->rdi = static_cast<uint64_t>(WEXITSTATUS(status));
  }
  if (auto s = t.set_regs(*regs); !s) return s;
  t.abandon();  // not detach(): nothing of its is to be put back
  if (::ptrace(PTRACE_DETACH, p, nullptr, nullptr) != 0) return mrc::fail_errno("PTRACE_DETACH deputy");
  return {};
}

mrc::Result<std::optional<int>> Deputy::go_home() {
  auto log = mrc::logger("deputy");
  if (auto s = send_frame(link(), FrameType::go_home); !s) return tl::unexpected(s.error());
  // Its last output and its unread input first, then its image - or its
  // exit, or why not.
  Frame first;
  std::vector<std::byte> unread;
  for (;;) {
    auto f = recv_frame(link(), m_transfer_ms);
    if (!f) return tl::unexpected(f.error());
    if (f->type == FrameType::stdout_data || f->type == FrameType::stderr_data) {
      if (auto w = write_out(*f); !w) return tl::unexpected(w.error());
      continue;
    }
    if (f->type == FrameType::stdin_back) {  // input it had not read there
      if (unread.size() + f->payload.size() > k_max_unread)
        return fail(EPROTO, m_where + ": more than " + std::to_string(k_max_unread >> 20) + " MiB of unread input");
      unread.insert(unread.end(), f->payload.begin(), f->payload.end());
      continue;
    }
    if (f->type == FrameType::exit) {
      auto st = frame_u32(*f);
      if (!st) return tl::unexpected(st.error());
      if (auto e = end_like(static_cast<int>(*st)); !e) return tl::unexpected(e.error());
      return static_cast<int>(*st);
    }
    if (f->type == FrameType::error) return fail(ECONNABORTED, m_where + " could not send it home: " + f->text());
    if (f->type != FrameType::image) return fail(EPROTO, m_where + ": no image on the way home");
    first = std::move(*f);
    break;
  }
  if (auto s = m_tracee.stop(); !s) return tl::unexpected(s.error());
  ImageFrameSource src(link(), m_transfer_ms, std::move(first.payload));
  ImageReader reader([&](std::span<std::byte> b) { return src.read(b); });
  auto stats = restore_into(m_tracee, reader);
  if (!stats) {
    // It runs on there; the deputy is made a deputy again.
    (void)send_text(link(), FrameType::error, stats.error().message);
    // The rest of the image may still be on its way: read to its end.
    for (bool more = !src.ended(); more;) {
      auto f = recv_frame(link(), m_transfer_ms);
      more = f && f->type == FrameType::image && !f->payload.empty();
    }
    if (auto b = become_deputy(); !b) log->warn("deputy {}: {}", pid(), b.error().message);
    pass_held_signals(m_tracee, link());  // sent to it meanwhile: the process's
    return fail(stats.error().code, "cannot take it home: " + stats.error().message);
  }
  // Phase two, the other way: the guest is killed there, then says commit.
  // Whatever comes (commit, or the link gone), it runs here now: the guest
  // end kills its copy when it loses the link.
  if (auto s = send_frame(link(), FrameType::ready); s) (void)recv_frame(link(), k_running_ms);
  log->info("process {} is home from {} ({} bytes)", pid(), m_where, stats->image_bytes);
  m_link.reset();
  if (!unread.empty())
    if (auto f = feed_unread(std::move(unread)); !f) log->warn("process {}: {}", pid(), f.error().message);
  if (auto d = release_restored(m_tracee, stats->itimers); !d) return tl::unexpected(d.error());
  return std::nullopt;
}

mrc::Result<void> Deputy::feed_unread(std::vector<std::byte> unread) {
  if (m_in && ::isatty(m_in.get()))
    return fail(ENOTTY, std::to_string(unread.size()) +
                            " bytes of its terminal input, typed while it was away and not read there, are lost "
                            "(a terminal's input cannot be given back)");
  // A FIFO the process can open as the user it is (its /proc/PID/fd
  // links are not its to open): in a private directory, then gone.
  char dir[] = "/tmp/mosix-stdin-XXXXXX";
  if (!::mkdtemp(dir)) return mrc::fail_errno("mkdtemp /tmp/mosix-stdin-XXXXXX");
  std::string path = std::string(dir) + "/fifo";
  struct Cleanup {
    std::string dir, path;
    ~Cleanup() {
      ::unlink(path.c_str());
      ::rmdir(dir.c_str());
    }
  } cleanup{dir, path};
  auto creds = read_credentials(pid());
  if (!creds) return tl::unexpected(creds.error());
  if (::chmod(dir, 0711) != 0 || ::mkfifo(path.c_str(), 0600) != 0 ||
      ::chown(path.c_str(), creds->uids[1], creds->gids[1]) != 0)
    return mrc::fail_errno("the FIFO " + path);
  // Read-write first: the process's open for reading then finds a writer.
  UniqueFd rw(::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (!rw) return mrc::fail_errno("open " + path);
  auto page = m_tracee.scratch();
  if (!page) return tl::unexpected(page.error());
  std::vector<std::byte> name(path.size() + 1);
  std::memcpy(name.data(), path.c_str(), path.size() + 1);
  if (auto w = m_tracee.write_memory(*page, name); !w) return w;
  auto opened = m_tracee.syscall(SYS_openat, {static_cast<uint64_t>(AT_FDCWD), *page, O_RDONLY});
  if (!opened) return tl::unexpected(opened.error());
  if (*opened < 0) return fail(static_cast<int>(-*opened), "its new stdin: open " + path);
  auto moved = m_tracee.syscall(SYS_dup3, {static_cast<uint64_t>(*opened), 0, 0});
  (void)m_tracee.syscall(SYS_close, {static_cast<uint64_t>(*opened)});
  if (!moved || *moved < 0) return fail(EIO, "its new stdin: dup3 to fd 0 failed");
  UniqueFd w(::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
  if (!w) return mrc::fail_errno("open " + path + " for writing");
  m_feed = StdinFeed{std::move(w), std::move(m_in), std::move(unread)};
  return {};
}

bool StdinFeed::on_fifo() {
  while (!pending.empty()) {
    ssize_t n = ::write(fifo.get(), pending.data(), pending.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return true;
    if (n < 0) return false;  // it closed its stdin: the rest is dropped, as with a pipe
    pending.erase(pending.begin(), pending.begin() + n);
  }
  if (!source) {  // all of it written, and no more to come: EOF for it
    fifo.reset();
    return false;
  }
  return true;
}

bool StdinFeed::on_source() {
  std::vector<std::byte> buf(k_in_piece);
  ssize_t n = ::read(source.get(), buf.data(), buf.size());
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
  if (n <= 0) source.reset();
  else pending.insert(pending.end(), buf.begin(), buf.begin() + n);
  return on_fifo();
}

}  // namespace mosix::migrate
