// ServerDriver: runs a LocalServer's poll loop on its own thread, as the
// daemon's loop would, for tests that talk to it from other threads. The
// server is touched only by that thread until stop().
#pragma once

#include <poll.h>

#include <atomic>
#include <thread>
#include <vector>

#include "mosix/mosixd/local_socket.h"

namespace mosix::test {

class ServerDriver {
 public:
  explicit ServerDriver(mosixd::LocalServer& s) : m_server(s), m_thread([this] { loop(); }) {}
  ~ServerDriver() { stop(); }
  ServerDriver(const ServerDriver&) = delete;
  ServerDriver& operator=(const ServerDriver&) = delete;
  void stop() {
    m_stop = true;
    if (m_thread.joinable()) m_thread.join();
  }

 private:
  void loop() {
    while (!m_stop) {
      std::vector<pollfd> fds;
      m_server.add_poll_fds(fds);
      ::poll(fds.data(), fds.size(), 10);  // ms; short, so stop() is prompt
      m_server.handle_ready(fds);
    }
  }
  mosixd::LocalServer& m_server;
  std::atomic<bool> m_stop = false;
  std::thread m_thread;
};

}  // namespace mosix::test
