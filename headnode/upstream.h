// Recursion, the re-exporting side (DESIGN §4): when this file service
// runs on a target and serves files of that target's mrc FUSE mount, the
// mount's client forwards every invalidation its own head sends
// (fusefs/downstream.h). We subscribe on its socket ($MRC_UPSTREAM) and
// turn each into Coherence::changed() for our own clients, acknowledging
// once they did, so head → T1 → T2 keeps the guarantee.
// Not the FUSE side (fusefs/downstream.h).
#pragma once

#include <memory>
#include <string>

#include "common/result.h"
#include "headnode/coherence.h"
#include "proto/connection.h"

namespace mrc::headnode {

class Upstream {
 public:
  /// Connects to `address` ("@name": abstract unix socket) and starts
  /// relaying its invalidations into `coh`. Errors: connect's errno.
  static Result<std::unique_ptr<Upstream>> connect(Coherence& coh, const std::string& address);
  ~Upstream();
  Upstream(const Upstream&) = delete;
  Upstream& operator=(const Upstream&) = delete;

  /// Whether the mount's client is still there.
  bool alive() const { return !m_conn->closed(); }

 private:
  Upstream(Coherence& coh, std::unique_ptr<proto::Connection> conn);
  void on_request(proto::Op op, uint64_t id, Bytes payload);

  Coherence& m_coh;
  std::unique_ptr<proto::Connection> m_conn;
  std::atomic<uint64_t> m_dev{0};  // from the hello; 0 until it came
};

}  // namespace mrc::headnode
