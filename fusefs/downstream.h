// Recursion (DESIGN §4): a job on this target may run mrc again and
// re-export files of this mount to another target. That mrc's file service
// caches nothing itself but hands leases out for our inodes, so every
// invalidation our head sends must reach it too, before we acknowledge:
// the head → T1 → T2 chain keeps the guarantee. The service subscribes on
// an abstract unix socket (named in the job's $MRC_UPSTREAM; peers of
// another uid are refused) and gets our invalidations as Invalidate
// requests keyed by the inode numbers it sees on this mount.
// Not the service's side (headnode/upstream.h).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/fd.h"
#include "common/result.h"
#include "proto/connection.h"

namespace mrc::fusefs {

class Downstream {
 public:
  /// Listens on a fresh abstract socket for subscribers of the mount with
  /// device `dev` whose lease term is `lease`. Errors: socket/bind errno.
  static Result<std::unique_ptr<Downstream>> create(dev_t dev, std::chrono::milliseconds lease);
  ~Downstream();
  Downstream(const Downstream&) = delete;
  Downstream& operator=(const Downstream&) = delete;

  /// The socket's name for $MRC_UPSTREAM ("@mrc-upstream-<pid>-<n>").
  const std::string& address() const { return m_address; }

  /// Hands `req` (our head's nodeids = the inode numbers subscribers see)
  /// to every subscriber and waits for their acknowledgements until
  /// `deadline`; one that does not answer in time is dropped (its own
  /// clients then lose their leases with it). Returns the number told.
  size_t forward(const proto::InvalidateReq& req, std::chrono::steady_clock::time_point deadline);

  /// Subscribers connected now.
  size_t subscribers() const;

 private:
  Downstream(UniqueFd listener, std::string address, dev_t dev, std::chrono::milliseconds lease);
  void accept_loop();

  UniqueFd m_listener;
  UniqueFd m_wake;  // eventfd: stops accept_loop
  const std::string m_address;
  const dev_t m_dev;
  const std::chrono::milliseconds m_lease;
  mutable std::mutex m_mu;  // guards m_subs
  std::list<std::unique_ptr<proto::Connection>> m_subs;
  std::thread m_thread;
};

}  // namespace mrc::fusefs
