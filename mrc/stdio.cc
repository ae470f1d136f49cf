// Head-side stdio pumps, raw terminal mode and the signal thread.
#include "mrc/stdio.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <ctime>

#include "common/log.h"

namespace mrc::launcher {
namespace {

const int k_forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

sigset_t forwarded_set() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : k_forwarded) sigaddset(&set, s);
  return set;
}

}  // namespace

void block_forwarded_signals() {
  sigset_t set = forwarded_set();
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

HeadStdio::HeadStdio(proto::Connection& conn, bool raw_tty)
    : m_conn(conn), m_raw_tty(raw_tty), m_wake(::eventfd(0, EFD_CLOEXEC)) {
  // Started here, not in the initializer list: it uses members declared after it.
  m_output_thread = std::thread([this] { pump_output(); });
}

HeadStdio::~HeadStdio() { stop(); }

void HeadStdio::start() {
  if (m_started.exchange(true)) return;
  if (m_raw_tty) {
    termios t{};
    if (::tcgetattr(0, &t) == 0) {
      m_saved_tty = t;
      ::cfmakeraw(&t);
      ::tcsetattr(0, TCSADRAIN, &t);
    }
  }
  m_stdin_thread = std::thread([this] { pump_stdin(); });
}

void HeadStdio::stop() {
  {
    std::lock_guard lk(m_out_mu);
    m_out_done = true;  // the thread drains the queue, then ends
    m_out_cv.notify_all();
  }
  if (m_output_thread.joinable()) m_output_thread.join();
  m_stop = true;
  m_credit.close();
  uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(m_wake.get(), &one, sizeof(one));
  if (m_stdin_thread.joinable()) m_stdin_thread.join();
  if (m_saved_tty) {
    ::tcsetattr(0, TCSADRAIN, &*m_saved_tty);
    m_saved_tty.reset();
  }
}

void HeadStdio::on_output(proto::Stream s, Bytes data) {
  std::lock_guard lk(m_out_mu);
  m_out_queue.emplace_back(s, std::move(data));
  m_out_cv.notify_all();
}

void HeadStdio::pump_output() {
  while (true) {
    std::pair<proto::Stream, Bytes> item;
    {
      std::unique_lock lk(m_out_mu);
      m_out_cv.wait(lk, [&] { return m_out_done || !m_out_queue.empty(); });
      if (m_out_queue.empty()) return;  // done and drained
      item = std::move(m_out_queue.front());
      m_out_queue.pop_front();
    }
    auto& [s, data] = item;
    // A closed stdout (mrc ... | head) drops the rest, as ssh does; the ack
    // still goes back so the job is never stuck on credit.
    [[maybe_unused]] auto r = write_all(s == proto::Stream::Stderr ? 2 : 1, data);
    m_conn.send(proto::Ctl::StreamAck, proto::StreamAckMsg{static_cast<uint8_t>(s), data.size()});
  }
}

void HeadStdio::pump_stdin() {
  std::vector<std::byte> buf(proto::k_stream_chunk);
  while (!m_stop) {
    pollfd p[2] = {{0, POLLIN, 0}, {m_wake.get(), POLLIN, 0}};
    int r = ::poll(p, 2, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 || (p[1].revents & POLLIN)) break;
    ssize_t n = ::read(0, buf.data(), buf.size());
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) break;  // EOF, or stdin closed/invalid
    if (!m_credit.acquire(static_cast<uint64_t>(n))) return;
    m_conn.send(proto::Ctl::StreamData,
                proto::StreamDataMsg{static_cast<uint8_t>(proto::Stream::Stdin), Bytes(buf.begin(), buf.begin() + n)});
  }
  if (!m_stop)
    m_conn.send(proto::Ctl::StreamClose, proto::StreamCloseMsg{static_cast<uint8_t>(proto::Stream::Stdin)});
}

SignalForwarder::SignalForwarder() : m_thread([this] { run(); }) {}

SignalForwarder::~SignalForwarder() {
  m_stop = true;
  ::pthread_kill(m_thread.native_handle(), SIGWINCH);  // wakes sigtimedwait now
  m_thread.join();
}

void SignalForwarder::run() {
  sigset_t set = forwarded_set();
  timespec tick{0, 100 * 1000 * 1000};  // 100 ms; rechecks m_stop
  while (!m_stop) {
    int sig = ::sigtimedwait(&set, nullptr, &tick);
    if (sig < 0 || m_finished) continue;
    proto::Connection* conn = m_conn;
    if (!conn) {
      // Nothing runs on the target yet: stop here, as the default action would.
      if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP || sig == SIGQUIT) ::_exit(128 + sig);
      continue;
    }
    if (sig == SIGWINCH) {
      winsize ws{};
      if (::ioctl(0, TIOCGWINSZ, &ws) == 0)
        conn->send(proto::Ctl::WinSize, proto::WinSizeMsg{ws.ws_row, ws.ws_col});
      continue;
    }
    logger("launch")->info("forwarding signal {} to the job", sig);
    conn->send(proto::Ctl::Signal, proto::SignalMsg{sig});
  }
}

}  // namespace mrc::launcher
