// Readdir-ahead: when a listing the kernel asked for names subdirectories,
// their listings (offset 0) are asked for at once, a few in parallel, so a
// traversal (find, du, ls -R, make's dependency scan) pays its round trips
// side by side instead of one after another. The kernel's own READDIRPLUS
// of such a directory then takes the reply that is already here.
//
// Coherence: a listing is kept only while nothing may have changed it. The
// head counts us a holder of the directory when it serves the request, so
// it invalidates us before any change to it completes; the invalidation
// (and this client's own change of the directory) calls drop() before it
// is acknowledged, which discards the listing — also one still in flight.
// A listing is handed out at most once and never after max_age (2 s). What a
// discarded listing named had a lookup counted by the head: `release` gives
// those back (FORGET). No libfuse here.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "proto/messages.h"

namespace mrc::fusefs {

class DirAhead {
 public:
  using Clock = std::chrono::steady_clock;
  /// Listings asked for or kept at once (beyond: the oldest queued one goes).
  static constexpr size_t k_max = 64;
  /// Threads asking; so requests of the traversal in flight at once.
  static constexpr size_t k_threads = 4;
  /// A listing older than this is discarded unused (the default max_age).
  static constexpr std::chrono::milliseconds k_max_age{2000};

  /// `fetch(nodeid, max_entries)` asks the head for the listing at offset
  /// 0 (blocking, one round trip) and returns it with the generation token
  /// (any 2 × u64) it read just before sending. `release(entries)` gives
  /// back the lookups of a discarded listing. Both are called on our
  /// threads, never under our lock.
  struct Token {
    uint64_t a = 0, b = 0;
  };
  using Fetch = std::function<Result<std::pair<proto::ReaddirRep, Token>>(uint64_t nodeid, uint32_t max)>;
  using Release = std::function<void(const std::vector<proto::DirEntry>&)>;

  DirAhead(Fetch fetch, Release release, std::chrono::milliseconds max_age = k_max_age);
  ~DirAhead();  // stop()
  DirAhead(const DirAhead&) = delete;
  DirAhead& operator=(const DirAhead&) = delete;

  /// Starts the threads. Until then want() queues nothing.
  void start();
  /// Stops the threads; every kept listing is released.
  void stop();

  /// Asks for the listings of `dirs` (nodeids, in the order a traversal
  /// will want them), `max` entries each, unless already asked for. The
  /// latest wants go first (a depth-first traversal wants them next).
  void want(const std::vector<uint64_t>& dirs, uint32_t max);
  /// The listing of `nodeid` asked for ahead, waiting (up to `deadline`)
  /// while its request is in flight; nullopt if none, not yet sent (it is
  /// then forgotten), dropped, too old or failed. The caller then owns its lookups.
  std::optional<std::pair<proto::ReaddirRep, Token>> take(uint64_t nodeid, Clock::time_point deadline);
  /// The directory may have changed (or was forgotten): its listing, kept
  /// or in flight, is discarded.
  void drop(uint64_t nodeid);

  /// Counters, for tests and logs.
  struct Stats {
    uint64_t asked = 0, taken = 0, discarded = 0;
  };
  Stats stats() const;

 private:
  enum class State { Queued, InFlight, Ready };
  struct Item {
    State state = State::Queued;
    uint32_t max = 0;
    uint64_t seq = 0;  // order of want(): the highest goes first
    bool dropped = false;  // while in flight: discard the reply
    Clock::time_point at;  // Ready: when the reply came
    std::optional<std::pair<proto::ReaddirRep, Token>> got;
  };
  void worker();
  /// Removes Ready items older than m_max_age, moving their entries to `out`
  /// (m_mu held).
  void expire(std::vector<std::vector<proto::DirEntry>>& out);
  void release_all(std::vector<std::vector<proto::DirEntry>>& lists);

  Fetch m_fetch;
  Release m_release;
  const std::chrono::milliseconds m_max_age;
  mutable std::mutex m_mu;  // guards everything below
  std::condition_variable m_cv;  // work queued, a reply came, or stop
  std::unordered_map<uint64_t, Item> m_items;
  uint64_t m_seq = 0;
  bool m_running = false;
  Stats m_stats;
  std::vector<std::thread> m_threads;
};

}  // namespace mrc::fusefs
