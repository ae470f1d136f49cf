// Target side of the stdio relay: job stdout/stderr → StreamData frames
// under a credit window; StreamData(stdin) frames → job stdin, acknowledged
// as written. Not the head side (mrc/stdio.h).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "proto/connection.h"
#include "proto/stream.h"
#include "target/job.h"

namespace mrc::target {

class Relay {
 public:
  Relay(proto::Connection& conn, Job& job);
  ~Relay();
  /// Starts the stdin writer and the stdout/stderr reader threads.
  void start();
  /// Control messages for the relay (called on the connection's reader).
  void on_stdin(Bytes data);
  void on_stdin_close();
  void on_ack(proto::Stream s, uint64_t bytes);
  /// Waits up to `ms` for stdout/stderr to reach EOF; true if they did.
  bool wait_output_done(int ms);
  /// Stops every thread (the head is gone or the job is over) and joins.
  void stop();

 private:
  void pump_output(proto::Stream s, int fd);
  void pump_stdin();

  proto::Connection& m_conn;
  Job& m_job;
  proto::StreamCredit m_credit[2];  // stdout, stderr
  std::atomic<bool> m_stop{false};
  std::vector<std::thread> m_threads;

  std::mutex m_mu;  // guards m_queue, m_stdin_eof, m_outputs_open
  std::condition_variable m_cv;
  std::deque<Bytes> m_queue;
  bool m_stdin_eof = false;
  int m_outputs_open = 0;
};

}  // namespace mrc::target
