// The client side of coherence (DESIGN §4, docs/design.md "Leases"): the
// lease clock that bounds how long the kernel may trust what it cached,
// and the invalidation queue whose one thread drops cached state when the
// head node says so. No libfuse here: what "drop" means is a callback.
// Not the FUSE callbacks (client.cc) nor the server's lease table.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <shared_mutex>
#include <thread>

#include "proto/connection.h"

namespace mrc::fusefs {

/// The client's lease: valid until the send time of the last renewal the
/// server answered plus one term (Gray & Cheriton 1989: a client that
/// cannot reach the server stops trusting its cache when the term ends).
/// One thread renews it every third of the term.
class Lease {
 public:
  using Clock = std::chrono::steady_clock;
  /// `term` ≥ 30 ms. Does not renew until start().
  Lease(proto::Connection& conn, std::chrono::milliseconds term);
  ~Lease();  // stop()
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  /// Renews once now (waiting at most a term), then keeps renewing on a
  /// thread. Returns whether that first renewal succeeded.
  bool start();
  void stop();

  /// Seconds the kernel may cache something handed out now: the lease
  /// left, less a 1% margin for the two machines' clock rates, at most
  /// one term; 0 when the lease has run out.
  double cache_timeout() const;
  /// Whether the lease is valid now.
  bool valid() const { return cache_timeout() > 0; }
  /// Time since the last renewal the server answered was sent (since
  /// start() if none was); 0 from a server that grants no leases.
  std::chrono::milliseconds since_renewal() const;
  std::chrono::milliseconds term() const { return m_term; }

 private:
  bool renew_once();
  void loop();

  proto::Connection& m_conn;
  const std::chrono::milliseconds m_term;
  std::atomic<int64_t> m_until_ns{0};  // Clock ns since epoch; 0: never renewed
  std::atomic<int64_t> m_started_ns{0};  // when start() ran
  std::atomic<bool> m_unsupported{false};  // the server grants no leases
  std::mutex m_mu;                     // guards m_stop
  std::condition_variable m_cv;
  bool m_stop = false;
  std::thread m_thread;
};

/// Invalidations from the server, applied in arrival order by one thread
/// that never serves a FUSE request (fuse_lowlevel_notify_* called from a
/// request handler can deadlock on page locks: DESIGN §4).
///
/// Applying one can still block in the kernel: an entry invalidation takes
/// the directory's i_rwsem, which this client's own create or unlink in that
/// directory holds until the head answers it; a page invalidation waits for
/// pages this client's own write holds. If the head's answer to that request
/// waits for another client which waits for us, that is a deadlock. So the
/// blocking ("full") form runs on a helper thread for at most k_block; if it
/// has not finished by then, the non-blocking ("quick") form is applied —
/// attributes only (auto_inval_data then drops stale pages at the next read,
/// by mtime and size), and one connection-wide epoch step for names
/// (FUSE_NOTIFY_INC_EPOCH: every dentry is revalidated on its next use) —
/// and the invalidation is acknowledged; the helper finishes later.
///
/// Races with replies in flight are closed by a generation count: the
/// connection's reader thread bumps it as an Invalidate arrives, before it
/// delivers any later reply; a handler reads it before sending its request
/// and, under reply_guard(), compares before replying to the kernel — if it
/// moved, the reply is not cached (timeouts 0). Before applying, the
/// invalidation thread takes the guard exclusively once, so a reply that
/// passed the check reaches the kernel before the kernel drops it.
class Invalidator {
 public:
  /// Drops one item in the kernel; returns 0 or a negative errno (-ENOENT:
  /// nothing cached, fine). `full` may block on kernel locks; `quick` must
  /// not (see above).
  struct Apply {
    std::function<int(const proto::InvalItem&)> full, quick;
    /// Whether a request of ours that holds the kernel lock the full form
    /// needs is in flight (then the quick form is used at once).
    std::function<bool(const proto::InvalItem&)> busy;
    /// After our kernel dropped it, and before we acknowledge: hands the
    /// invalidation on to whoever re-exports this mount (recursion).
    std::function<void(const proto::InvalidateReq&)> forward;
  };
  /// How long the full form may block before the quick one is used.
  static constexpr std::chrono::milliseconds k_block{10};
  /// Helper threads: full forms that may block at the same time.
  static constexpr int k_helpers = 4;
  explicit Invalidator(proto::Connection& conn);
  ~Invalidator();  // stop()
  Invalidator(const Invalidator&) = delete;
  Invalidator& operator=(const Invalidator&) = delete;

  /// Starts the thread. Before start() (no mount yet: nothing cached),
  /// invalidations are acknowledged at once.
  void start(Apply apply);
  void stop();

  /// On the connection's reader thread: an Invalidate request arrived.
  void on_request(uint64_t id, Bytes payload);

  /// The generation a handler reads before sending its request.
  uint64_t generation() const { return m_gen.load(); }
  /// Held (shared) by a handler from its generation check until its reply
  /// reached the kernel.
  std::shared_mutex& reply_guard() { return m_reply_mu; }

  /// Invalidations applied so far, and how many of them needed the quick
  /// form (for tests and -v).
  uint64_t applied() const { return m_applied.load(); }
  uint64_t quick() const { return m_quick.load(); }

 private:
  struct Job {
    uint64_t id = 0;
    proto::InvalidateReq req;
  };
  /// One helper thread running full forms; guarded by the Invalidator's m_mu.
  struct Helper {
    std::thread thread;
    std::condition_variable cv;
    std::shared_ptr<proto::InvalidateReq> job;  // set: work to do
    bool busy = false;                          // between hand-over and completion
  };
  void loop();
  void help(Helper& h);
  /// Waits for the next job of `queue` (signalled by `cv`), then takes the
  /// reply-guard barrier. False once stopping.
  bool next(std::deque<Job>& queue, std::condition_variable& cv, Job& job);
  /// Recalls (every item InvalKind::Recall) go to their own thread: one
  /// waits for our buffered writes to be answered, and the head may answer
  /// them only once another client — or we — acknowledged an invalidation
  /// the write caused; so a recall must never hold up the invalidations
  /// queued behind it. Acknowledged once flushed (the head then reads
  /// what we wrote).
  void recall_loop();

  proto::Connection& m_conn;
  Apply m_apply;  // set by start(), before the thread exists
  std::atomic<uint64_t> m_gen{0};
  std::atomic<uint64_t> m_applied{0}, m_quick{0};
  std::shared_mutex m_reply_mu;
  std::mutex m_mu;  // guards m_queue, m_stop, m_started, the helpers' state
  std::condition_variable m_cv;       // a job was queued, or stop
  std::condition_variable m_done_cv;  // a helper finished a job
  Helper m_helpers[k_helpers];
  std::deque<Job> m_queue;
  std::deque<Job> m_recalls;         // jobs of Recall items only
  std::condition_variable m_recall_cv;  // a recall was queued, or stop
  bool m_stop = false, m_started = false;
  std::thread m_thread, m_recall_thread;
};

}  // namespace mrc::fusefs
