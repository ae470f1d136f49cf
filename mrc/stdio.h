// Head side of the stdio relay and signal forwarding (DESIGN §3): our
// stdin → StreamData under a credit window; the job's stdout/stderr
// frames → our fds 1/2, acknowledged once written; the terminal in raw
// mode while a pty job runs; SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1/2
// and SIGWINCH forwarded. Not the target side (target/relay.h).
#pragma once

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <deque>
#include <mutex>
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
/// 128+N (nothing runs yet); after it, every signal goes to the job;
/// after finish(), they are ignored.
class SignalForwarder {
 public:
  SignalForwarder();
  ~SignalForwarder();
  void attach(proto::Connection* conn) { m_conn = conn; }
  /// The job is over: signals are ignored from now on (mrc is finishing).
  void finish() {
    m_finished = true;
    m_conn = nullptr;
  }

 private:
  void run();
  std::atomic<proto::Connection*> m_conn{nullptr};
  std::atomic<bool> m_stop{false}, m_finished{false};
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
  /// A StreamData frame for stdout/stderr: queued for the output thread,
  /// which writes it and then acknowledges it, so a slow consumer of our
  /// stdout never stalls the connection's reader (and file service).
  void on_output(proto::Stream s, Bytes data);
  void on_stdin_ack(uint64_t bytes) { m_credit.ack(bytes); }
  /// Writes out all queued output, stops the threads and restores the
  /// terminal. Idempotent.
  void stop();

 private:
  void pump_stdin();
  void pump_output();

  proto::Connection& m_conn;
  bool m_raw_tty;
  std::optional<termios> m_saved_tty;
  proto::StreamCredit m_credit;
  UniqueFd m_wake;  // eventfd: ends the stdin pump's poll() at stop()
  std::atomic<bool> m_stop{false};
  std::atomic<bool> m_started{false};
  std::thread m_stdin_thread;
  std::thread m_output_thread;

  std::mutex m_out_mu;  // guards m_out_queue, m_out_done
  std::condition_variable m_out_cv;
  std::deque<std::pair<proto::Stream, Bytes>> m_out_queue;  // bounded by the target's credit
  bool m_out_done = false;
};

}  // namespace mrc::launcher
