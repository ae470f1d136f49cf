// Target stdio relay threads.
#include "target/relay.h"

#include <poll.h>
#include <unistd.h>

#include "common/log.h"

namespace mrc::target {

Relay::Relay(proto::Connection& conn, Job& job) : m_conn(conn), m_job(job) {}

Relay::~Relay() { stop(); }

void Relay::start() {
  m_outputs_open = m_job.stderr_fd ? 2 : 1;
  m_threads.emplace_back([this] { pump_output(proto::Stream::Stdout, m_job.stdout_fd.get()); });
  if (m_job.stderr_fd)
    m_threads.emplace_back([this] { pump_output(proto::Stream::Stderr, m_job.stderr_fd.get()); });
  m_threads.emplace_back([this] { pump_stdin(); });
}

void Relay::on_stdin(Bytes data) {
  std::lock_guard lk(m_mu);
  m_queue.push_back(std::move(data));
  m_cv.notify_all();
}

void Relay::on_stdin_close() {
  std::lock_guard lk(m_mu);
  m_stdin_eof = true;
  m_cv.notify_all();
}

void Relay::on_ack(proto::Stream s, uint64_t bytes) {
  if (s == proto::Stream::Stdout) m_credit[0].ack(bytes);
  if (s == proto::Stream::Stderr) m_credit[1].ack(bytes);
}

bool Relay::wait_output_done(int ms) {
  std::unique_lock lk(m_mu);
  return m_cv.wait_for(lk, std::chrono::milliseconds(ms), [&] { return m_outputs_open == 0; });
}

void Relay::stop() {
  m_stop = true;
  m_credit[0].close();
  m_credit[1].close();
  m_cv.notify_all();
  for (auto& t : m_threads)
    if (t.joinable()) t.join();
  m_threads.clear();
}

void Relay::pump_output(proto::Stream s, int fd) {
  auto& credit = m_credit[s == proto::Stream::Stdout ? 0 : 1];
  std::vector<std::byte> buf(proto::k_stream_chunk);
  while (!m_stop) {
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, 100);  // ms; rechecks m_stop
    if (r == 0 || (r < 0 && errno == EINTR)) continue;
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) break;  // EOF, or EIO from a pty whose job is gone
    if (!credit.acquire(static_cast<uint64_t>(n))) break;
    m_conn.send(proto::Ctl::StreamData,
                proto::StreamDataMsg{static_cast<uint8_t>(s), Bytes(buf.begin(), buf.begin() + n)});
  }
  m_conn.send(proto::Ctl::StreamClose, proto::StreamCloseMsg{static_cast<uint8_t>(s)});
  std::lock_guard lk(m_mu);
  --m_outputs_open;
  m_cv.notify_all();
}

void Relay::pump_stdin() {
  int fd = m_job.stdin_fd.get();
  bool broken = false;  // the job closed its stdin: discard, but keep acking
  while (true) {
    Bytes chunk;
    {
      std::unique_lock lk(m_mu);
      m_cv.wait(lk, [&] { return m_stop || !m_queue.empty() || m_stdin_eof; });
      if (m_stop) return;
      if (m_queue.empty()) break;  // EOF and drained
      chunk = std::move(m_queue.front());
      m_queue.pop_front();
    }
    if (!broken && !write_all(fd, chunk)) broken = true;
    m_conn.send(proto::Ctl::StreamAck,
                proto::StreamAckMsg{static_cast<uint8_t>(proto::Stream::Stdin), chunk.size()});
  }
  if (m_job.pty) {
    // A pty has no half-close: send the EOF character, as a terminal would.
    const char eot = 4;
    [[maybe_unused]] auto n = ::write(fd, &eot, 1);
  } else {
    m_job.stdin_fd.reset();
  }
}

}  // namespace mrc::target
