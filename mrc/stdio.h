// Head side of the stdio relay and signal forwarding (DESIGN §3): our
// stdin → StreamData under a credit window; the job's stdout/stderr
// frames → our fds 1/2, acknowledged once written; the terminal in raw
// mode while a pty job runs; SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1/2
// and SIGWINCH forwarded. Not the target side (target/relay.h).
#pragma once

#include <atomic>
#include <csignal>
#include <optional>
#include <thread>

#include <termios.h>

#include "proto/connection.h"
#include "proto/stream.h"

namespace mrc::launcher {

/// Blocks the forwarded signals in the calling thread (call before any
/// thread starts, so every thread inherits the mask and only the signal
/// thread receives them).
void block_forwarded_signals();

/// The one thread that receives the forwarded signals (all others block
/// them). Until attach(), SIGINT/TERM/HUP/QUIT end mrc at once with
/// 128+N (nothing runs yet); after it, every signal goes to the job.
class SignalForwarder {
 public:
  SignalForwarder();
  ~SignalForwarder();
  void attach(proto::Connection* conn) { m_conn = conn; }

 private:
  void run();
  std::atomic<proto::Connection*> m_conn{nullptr};
  std::atomic<bool> m_stop{false};
  std::thread m_thread;
};

class HeadStdio {
 public:
  /// `raw_tty`: put our terminal into raw mode (pty job, stdin a tty).
  HeadStdio(proto::Connection& conn, bool raw_tty);
  ~HeadStdio();
  /// Starts the stdin pump (once the job runs: earlier input would have
  /// nowhere to go). Idempotent.
  void start();
  /// A StreamData frame for stdout/stderr: written, then acknowledged.
  void on_output(proto::Stream s, const Bytes& data);
  void on_stdin_ack(uint64_t bytes) { m_credit.ack(bytes); }
  /// Stops the threads and restores the terminal. Idempotent.
  void stop();

 private:
  void pump_stdin();

  proto::Connection& m_conn;
  bool m_raw_tty;
  std::optional<termios> m_saved_tty;
  proto::StreamCredit m_credit;
  std::atomic<bool> m_stop{false};
  std::atomic<bool> m_started{false};
  std::thread m_stdin_thread;
};

}  // namespace mrc::launcher
