// One client session of the head node's file service: a FileServer over
// the session's exports, the Dispatcher that runs it on the session's
// Connection, and the session's membership in the shared Coherence (its
// Sink sends invalidations over that Connection). Not the Connection's
// other traffic (stdio, job control), which its owner handles.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/result.h"
#include "headnode/coherence.h"
#include "headnode/fileserver.h"
#include "proto/connection.h"

namespace mrc::headnode {

class Session {
 public:
  struct Options {
    std::string name;                        ///< the client, for messages ("t1", "user@host:22")
    std::chrono::milliseconds lease{30000};  ///< the client's lease term (JobSpec.lease_ms)
    int threads = 8;                         ///< Dispatcher workers
    bool write_leases = true;                ///< Membership::write_leases
    /// Called once if the client's lease is revoked (it did not acknowledge
    /// an invalidation in time); the Connection is closed right after.
    std::function<void(const std::string& why)> on_revoked;
  };

  /// Joins `coh` and serves `exports` (`roots`: one open directory fd per
  /// export, or empty to open the paths) on `conn`, which must outlive the
  /// Session and be wired to on_request()/on_forget() by the caller.
  /// Errors: the export's errno with a message naming it.
  static Result<std::unique_ptr<Session>> create(Coherence& coh, proto::Connection& conn,
                                                 const std::vector<proto::ExportSpec>& exports,
                                                 std::vector<UniqueFd> roots, Options opts);
  /// Stops the workers, drops the session's nodes, leaves the Coherence.
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  /// Hand a Request frame / a Ctl::Forget payload here (reader thread).
  void on_request(proto::Op op, uint64_t id, Bytes payload);
  void on_forget(std::span<const std::byte> payload);

  FileServer& server() { return *m_fs; }
  const FileServer& server() const { return *m_fs; }
  /// Asks the client to drop the names of `n` of its oldest files
  /// (InvalKind::Forget), so their inodes are forgotten; does not wait.
  void hint_forget(size_t n);
  /// How long the client has not asked to renew its lease.
  std::chrono::milliseconds silent_for() const { return m_coh->silent_for(m_id); }

 private:
  class ConnSink;
  Session() = default;

  Coherence* m_coh = nullptr;
  proto::Connection* m_conn = nullptr;
  uint32_t m_id = 0;
  std::unique_ptr<ConnSink> m_sink;
  std::unique_ptr<FileServer> m_fs;
  std::unique_ptr<Dispatcher> m_disp;  // destroyed first (declared last)
};

}  // namespace mrc::headnode
