// Small writes batched under the write lease (DESIGN §4; docs/design.md
// "Write leases"): while the head grants this client a file's exclusive
// write lease, write() is answered once its bytes are buffered here;
// contiguous writes are coalesced into requests of up to 1 MiB, up to
// k_in_flight per file at once; one that overlaps a request in flight, or
// any write of a file opened O_APPEND, waits for those first, so the head
// applies overlapping writes in order. Buffers are sent
// when full, after 20 ms at most, and before anything that must see them:
// this client's read, getattr, setattr, fsync, release, the head's recall
// when another client touches the file, and the end of the job. A write
// that fails at the head is reported by the next write or fsync of that
// file (close() does not wait: the kernel sends no FLUSH, client.cc), and
// makes the job's run fail.
// Not the FUSE callbacks (client.cc); no libfuse here.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "proto/connection.h"

namespace mrc::fusefs {

class WriteBack {
 public:
  using Clock = std::chrono::steady_clock;
  /// Largest request, bytes: what the kernel sends at most, one frame.
  static constexpr size_t k_max_chunk = 1 << 20;
  /// The longest a byte waits here before it is sent: head-local readers
  /// see a target's writes this late at most (plus one round trip).
  static constexpr std::chrono::milliseconds k_max_delay{20};
  /// Requests of one file in flight at once: enough to keep the link busy
  /// while the head writes the previous one.
  static constexpr size_t k_in_flight = 4;

  /// `timeout`: how long a Write request may take (the grace period).
  WriteBack(proto::Connection& conn, std::chrono::milliseconds timeout);
  ~WriteBack();  // stop()
  WriteBack(const WriteBack&) = delete;
  WriteBack& operator=(const WriteBack&) = delete;

  /// Starts the thread that sends buffers older than k_max_delay.
  void start();
  void stop();

  /// Open file `fh` of `nodeid` was granted the write lease / is released.
  /// fh 0: files opened without telling the head (no_open), which hold
  /// the lease until it is recalled or the inode forgotten.
  void leased(uint64_t nodeid, uint64_t fh);
  void released(uint64_t nodeid, uint64_t fh);
  /// Whether writes to `nodeid` may be buffered now.
  bool is_leased(uint64_t nodeid);

  /// write() of a file whose lease was recalled since is_leased(): nothing
  /// was taken, the caller writes through.
  static constexpr int k_not_leased = -1;
  /// Buffers a write of `data` at `off` through `fh` (`append`: the file
  /// was opened O_APPEND). Returns 0; k_not_leased; or the errno of an
  /// earlier write to this file that failed at the head (then nothing is
  /// taken and the error is cleared). Blocks while the file has
  /// k_in_flight requests out and a full buffer.
  int write(uint64_t nodeid, uint64_t fh, uint64_t off, const std::byte* data, size_t n, bool append = false);
  /// Sends what is buffered for `nodeid` and waits for it; returns (and
  /// clears) the first error since the last report, or 0.
  int flush(uint64_t nodeid);
  /// Sends and waits like flush() but keeps an error for the next
  /// write/flush/fsync (before a read or getattr that must see the data).
  void drain(uint64_t nodeid);
  /// flush(), and writes to `nodeid` are no longer buffered (the head
  /// recalled the lease; a new open may get it again).
  int recall(uint64_t nodeid);
  /// The kernel forgot `nodeid`: flushes it (the head drops the node with
  /// the forget, so nothing may follow) and forgets it too.
  void forget(uint64_t nodeid);
  /// Flushes every file (before the job's exit status goes to the head).
  int flush_all();

  /// Whether anything of `nodeid` is buffered or in flight.
  bool dirty(uint64_t nodeid);

 private:
  struct File {
    explicit File(uint64_t id) : nodeid(id) {}
    const uint64_t nodeid;
    std::mutex mu;  // held by one writer/flusher at a time, also while it waits
    std::vector<uint64_t> leased;  // open files granted the lease (m_mu); a recall empties it
    uint64_t fh = 0, off = 0;  // of `pending`
    Bytes pending;
    Clock::time_point since;  // when `pending` got its first byte
    struct Sent {
      std::shared_ptr<proto::Connection::Call> call;
      uint64_t off = 0;
      size_t len = 0;
    };
    std::deque<Sent> inflight;  // oldest first
    bool append = false;         // of `pending`
    int error = 0;
  };
  std::shared_ptr<File> file(uint64_t nodeid);
  /// Waits for every request in flight (f.mu held).
  void settle(File& f);
  /// Waits for the oldest request in flight (f.mu held).
  void settle_one(File& f);
  /// Sends `pending` (f.mu held), after the one in flight.
  void send(File& f);
  /// Sends `data` at `off` through `fh` without buffering it (f.mu held,
  /// nothing pending), after any request in flight it overlaps.
  void send_direct(File& f, uint64_t fh, uint64_t off, ByteView data);
  void loop();

  proto::Connection& m_conn;
  const std::chrono::milliseconds m_timeout;
  std::mutex m_mu;  // guards m_files, File::leased, m_stop; taken before a File::mu, never after
  std::condition_variable m_cv;
  std::unordered_map<uint64_t, std::shared_ptr<File>> m_files;
  bool m_stop = false;
  std::thread m_thread;
};

}  // namespace mrc::fusefs
