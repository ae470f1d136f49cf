// exec_bridged and its pump thread: one exec channel bridged to a local
// socketpair, moved in both directions without blocking (poll on the SSH
// socket, the socketpair and a stop pipe; libssh in non-blocking mode).
// Not a multiplexer: one channel per session once bridged.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cstring>
#include <memory>
#include <vector>

#include "common/log.h"
#include "mrc/ssh.h"
#include "mrc/ssh_state.h"

namespace mrc::launcher {
namespace {

/// Bytes buffered from the channel towards the socketpair: also the SSH
/// window we grant (see the stdout read), so that the server keeps sending
/// while we forward a burst.
constexpr size_t k_down_buffer = 4 * 1024 * 1024;
/// Bytes buffered from the socketpair towards the channel: the 2 MiB window
/// OpenSSH grants moves in a few rounds.
constexpr size_t k_up_buffer = 512 * 1024;
/// Most ssh_event_dopoll rounds per pump round: libssh 0.10 reads at most
/// 4 KiB per round, so this forwards bursts of up to 256 KiB in one send.
constexpr int k_max_dopolls = 64;
/// Bytes of remote stderr read at a time (copied straight to fd 2).
constexpr size_t k_stderr_chunk = 64 * 1024;
/// Socket buffer asked for on both socketpair ends, bytes (best effort).
constexpr int k_socket_buffer = 1 << 20;
/// How long the pump lets a final EOF/CLOSE reach the server, ms.
constexpr int k_close_flush_ms = 1000;

bool would_block(int e) { return e == EAGAIN || e == EWOULDBLOCK || e == EINTR; }

/// Bytes [begin, end) of `data` are pending; new bytes go at `end`. The
/// storage is left uninitialised: pages are touched only as far as used.
struct Buffer {
  explicit Buffer(size_t capacity) : data(new char[capacity]), cap(capacity) {}
  std::unique_ptr<char[]> data;
  size_t cap;
  size_t begin = 0, end = 0;

  size_t size() const { return end - begin; }
  bool empty() const { return begin == end; }
  const char* head() const { return data.get() + begin; }
  void consume(size_t n) {
    begin += n;
    if (begin == end) begin = end = 0;
  }
  void clear() { begin = end = 0; }
  /// Free space at the end, moving pending bytes to the front first when
  /// that space has become small.
  size_t room() {
    if (begin > 0 && cap - end < cap / 2) {
      std::memmove(data.get(), data.get() + begin, size());
      end -= begin;
      begin = 0;
    }
    return cap - end;
  }
  char* tail() { return data.get() + end; }
};

}  // namespace

void pump_channel(ssh_session s, ssh_channel ch, UniqueFd local, UniqueFd stop_r) noexcept {
  ssh_event ev = ssh_event_new();
  if (ev) ssh_event_add_session(ev, s);
  ssh_set_blocking(s, 0);
  set_nonblocking(local.get(), true);
  Buffer down(k_down_buffer), up(k_up_buffer);  // down: remote stdout → local; up: local → remote stdin
  std::vector<char> err(k_stderr_chunk);
  bool remote_eof = false;  // remote stdout ended and libssh's buffer is drained
  bool err_eof = false;     // same for remote stderr
  bool local_eof = false;   // our end was shut for writing (or closed): no more stdin
  bool eof_sent = false;    // EOF sent to the remote stdin
  bool local_shut = false;  // we shut our end for writing (the user sees EOF)
  bool local_gone = false;  // the user closed its end (EPIPE): nobody reads stdout
  const char* why = "the command finished";
  // Raw bytes libssh has read from the socket: tells whether one more
  // ssh_event_dopoll (one poll and at most one 4 KiB recv in libssh 0.10)
  // found anything, so a burst is drained before it is forwarded.
  ssh_counter_struct socket_bytes{};
  ssh_set_counters(s, &socket_bytes, nullptr);
  bool local_readable = true;  // poll said so, or we have not looked yet
  for (;;) {
    bool progress = false;
    // Let libssh read and dispatch what arrived (data, window adjusts, EOF,
    // close) and flush what it queued; channel reads alone stop doing so
    // after the remote EOF. A burst is taken whole (up to what `down` can
    // hold) so that it reaches our end in one send, not one per packet.
    if (ev) {
      uint64_t before = socket_bytes.in_bytes;
      for (int i = 0; i < k_max_dopolls; ++i) {
        uint64_t was = socket_bytes.in_bytes;
        ssh_event_dopoll(ev, 0);
        if (socket_bytes.in_bytes == was || socket_bytes.in_bytes - before >= down.room()) break;
      }
      progress = socket_bytes.in_bytes != before;
    }

    int n = ssh_channel_read_nonblocking(ch, err.data(), static_cast<uint32_t>(err.size()), 1);
    if (n > 0) {
      copy_to_stderr(err.data(), static_cast<size_t>(n));
      progress = true;
    } else if (n == SSH_EOF) {
      err_eof = true;
    } else if (n == SSH_ERROR) {
      why = "the connection broke";
      break;
    }

    // Remote stdout into `down` while it has room; when it is full libssh
    // keeps the data and stops growing the window: backpressure to the
    // server. A read asking for more than libssh holds grows the window to
    // what `down` can take (libssh alone keeps it at ~1.25 MB).
    if (!remote_eof && down.room() > 0) {
      n = ssh_channel_poll(ch, 0);
      if (n > 0) n = ssh_channel_read_timeout(ch, down.tail(), static_cast<uint32_t>(down.room()), 0, 0);
      if (n > 0) {
        down.end += static_cast<size_t>(n);
        progress = true;
      } else if (n == SSH_EOF) {
        remote_eof = true;
        progress = true;
      } else if (n == SSH_ERROR) {
        why = "the connection broke";
        break;
      }
    }

    if (!down.empty() && !local_gone) {
      ssize_t w = ::send(local.get(), down.head(), down.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w > 0) {
        down.consume(static_cast<size_t>(w));
        progress = true;
      } else if (w < 0 && !would_block(errno)) {
        local_gone = true;
      }
    }
    if (local_gone) {
      why = "our end was closed";
      break;
    }
    if (remote_eof && down.empty() && !local_shut) {
      ::shutdown(local.get(), SHUT_WR);
      local_shut = true;
    }

    if (!local_eof && up.empty() && local_readable) {
      ssize_t r = ::read(local.get(), up.tail(), up.room());
      if (r > 0) {
        up.end += static_cast<size_t>(r);
        progress = true;
      } else if (r == 0 || !would_block(errno)) {
        local_eof = true;
        progress = true;
      } else {
        local_readable = false;  // until poll says otherwise
      }
    }

    // Stdin to the channel, within the window the server granted: beyond
    // it ssh_channel_write would have to wait for a window adjust.
    if (!up.empty()) {
      if (ssh_channel_is_closed(ch)) {
        up.clear();  // the command is gone; nobody reads its stdin
      } else if (uint32_t win = ssh_channel_window_size(ch); win > 0) {
        uint32_t len = static_cast<uint32_t>(std::min<size_t>(up.size(), win));
        int w = ssh_channel_write(ch, up.head(), len);
        if (w > 0) {
          up.consume(static_cast<size_t>(w));
          progress = true;
        } else if (w == SSH_ERROR && !ssh_channel_is_closed(ch)) {
          why = "the connection broke";
          break;
        }
      }
    }
    if (local_eof && up.empty() && !eof_sent && !ssh_channel_is_closed(ch)) {
      ssh_channel_send_eof(ch);
      eof_sent = true;
    }

    // Done once the command's channel closed and all it sent was delivered.
    if (remote_eof && err_eof && down.empty() && ssh_channel_is_closed(ch)) break;
    if (progress) continue;

    // Nothing to do until the network, our end or a stop request wakes us.
    int status = ssh_get_status(s);
    bool connected = ssh_is_connected(s) && !(status & (SSH_CLOSED | SSH_CLOSED_ERROR));
    if (!connected && down.empty()) {
      why = "the connection broke";
      break;
    }
    pollfd p[3] = {{connected ? ssh_get_fd(s) : -1, POLLIN, 0}, {local.get(), 0, 0}, {stop_r.get(), POLLIN, 0}};
    if (status & SSH_WRITE_PENDING) p[0].events |= POLLOUT;
    if (!local_eof && up.empty()) p[1].events |= POLLIN;
    if (!down.empty()) p[1].events |= POLLOUT;
    if (p[1].events == 0) p[1].fd = -1;  // a hung-up end would report POLLHUP forever
    if (::poll(p, 3, -1) < 0 && errno != EINTR) {
      why = "poll failed";
      break;
    }
    if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) local_readable = true;
    // ACK at once: sshd does not set TCP_NODELAY on exec sessions, so the
    // tail of each frame it sends waits for our ACK; a delayed ACK (up to
    // 40 ms) then stalls every request. TCP_QUICKACK is not sticky: re-arm.
    if (p[0].fd >= 0 && (p[0].revents & POLLIN)) {
      int one = 1;
      ::setsockopt(p[0].fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
    }
    if (p[2].revents) {
      why = "the session was closed";
      break;
    }
  }

  // The command gets EOF and the channel closes (if the server has not
  // closed it already); our end closes when `local` goes out of scope.
  if (!ssh_channel_is_closed(ch) && ssh_is_connected(s)) {
    if (!eof_sent) ssh_channel_send_eof(ch);
    ssh_channel_close(ch);
    ssh_blocking_flush(s, k_close_flush_ms);
  }
  ssh_set_counters(s, nullptr, nullptr);
  if (ev) {
    ssh_event_remove_session(ev, s);
    ssh_event_free(ev);
  }
  try {
    logger("ssh")->debug("pump stopped: {}", why);
  } catch (...) {
  }
}

Result<UniqueFd> SshSession::exec_bridged(const std::string& command) {
  assert(!m_state->pump.joinable() && "exec_bridged called twice");
  ssh_session s = m_state->session;
  ssh_channel ch = ssh_channel_new(s);
  if (!ch) return fail(ENOMEM, "cannot open a channel to " + m_state->peer + ": " + ssh_error(s));
  if (ssh_channel_open_session(ch) != SSH_OK || ssh_channel_request_exec(ch, command.c_str()) != SSH_OK) {
    std::string e = ssh_error(s);
    ssh_channel_free(ch);
    return fail(EIO, "cannot run a command on " + m_state->peer + ": " + e);
  }
  m_state->channel = ch;  // freed by ~SshState, after the pump has stopped

  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return fail_errno("socketpair");
  UniqueFd ours(sv[0]), theirs(sv[1]);
  for (int fd : sv) {
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &k_socket_buffer, sizeof(k_socket_buffer));
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &k_socket_buffer, sizeof(k_socket_buffer));
  }
  int pp[2];
  if (::pipe2(pp, O_CLOEXEC) != 0) return fail_errno("pipe");
  UniqueFd stop_r(pp[0]);
  m_state->stop_w = UniqueFd(pp[1]);
  try {
    m_state->pump = std::thread(pump_channel, s, ch, std::move(theirs), std::move(stop_r));
  } catch (const std::system_error& e) {
    return fail(e.code().value(), std::string("cannot start the SSH pump thread: ") + e.what());
  }
  return ours;
}

}  // namespace mrc::launcher
