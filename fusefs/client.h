// The FUSE low-level client of the target: every kernel request on the
// mount becomes the protocol request of the same name on a Connection to
// the head node's file server (DESIGN §4). Keeps no inode table: kernel
// nodeids are the server's. Caches in the kernel (keep_cache, long entry
// and attribute timeouts, negative entries) as long as its lease holds and
// drops what the server invalidates (lease.h). Not the server (headnode/) nor the namespace
// and bind-mount setup around it (target/).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "common/result.h"
#include "proto/connection.h"

namespace mrc::fusefs {

/// How to mount; every field has a unit and a reason.
struct MountOptions {
  std::string mountpoint;               ///< existing empty directory
  uint32_t head_uid = 0, head_gid = 0;  ///< shown as the local (target) uid/gid, and mapped back in chown
  int threads = 8;                      ///< max idle threads of the multithreaded session loop
  std::chrono::milliseconds timeout{60000};  ///< per request (the grace period); expiry → EIO to the caller (never hang)
  std::chrono::milliseconds lease{30000};    ///< lease term: the longest the kernel trusts its cache unrenewed
  std::string fsname = "mrc";                ///< shown in /proc/mounts as "mrc" type fuse.mrc
  /// Every user of the namespace may use the mount, checked by the files'
  /// modes (kmount.h); what another user creates is then chowned to them
  /// on the head (a migrated process that runs as its own user, not as
  /// the guest end's root).
  bool allow_other = false;
};

class Session;  // the libfuse side, defined in client.cc

/// One FUSE mount served over one Connection. Lifecycle: mount(), start(),
/// then unmount() (or the destructor). Methods are called from one thread.
class Client {
 public:
  /// `conn` must outlive the Client and already be started.
  Client(proto::Connection& conn, MountOptions opts);
  ~Client();  // unmount() if still mounted
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// Creates the FUSE session and mounts it at opts.mountpoint; raises the bdi
  /// read_ahead_kb to 1024 (/sys/class/bdi/<maj:min>/read_ahead_kb, ignore
  /// failure) and max_background. Errors name the cause.
  [[nodiscard]] Result<void> mount();
  /// Runs the multithreaded session loop on a background thread, renews
  /// the lease (once at once, then every third of its term) and applies
  /// invalidations.
  void start();
  /// An Invalidate request from the head (on the connection's reader
  /// thread; never blocks). Safe before mount(): acknowledged at once.
  void on_invalidate(uint64_t id, Bytes payload);
  /// Recursion: starts the socket a file service that re-exports this
  /// mount subscribes to (fusefs/downstream.h), after mount(). Returns its
  /// address for the job's $MRC_UPSTREAM. Errors: socket errors, or the
  /// mount's device is unknown.
  [[nodiscard]] Result<std::string> serve_downstream();
  /// Sends every buffered write and waits (before the job's exit status
  /// is reported). Returns the first error, 0 if all arrived.
  int flush_all();
  /// Time since the head last renewed our lease: the head is unreachable
  /// (or unwilling) for that long. Zero before start().
  std::chrono::milliseconds since_renewal() const;
  /// Ends the loop and unmounts (lazily if busy); joins the thread. Idempotent.
  void unmount();

 private:
  std::unique_ptr<Session> m_session;
};

}  // namespace mrc::fusefs
