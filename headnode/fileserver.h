// The head node's file server: serves the protocol's file-service ops
// (proto/messages.h) on a set of exported directory trees, confined to
// them, concurrently; and the Dispatcher that runs it on a Connection.
// Coherence (leases, invalidation) is joined through a Membership and
// lives in coherence.h. Not the transport, not the FUSE client.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/fd.h"
#include "common/result.h"
#include "common/zstd.h"
#include "headnode/ops.h"
#include "proto/connection.h"
#include "proto/messages.h"

namespace spdlog {
class logger;
}

namespace mrc::headnode {

class NodeTable;

class FileServer {
 public:
  /// Opens every export root (O_PATH|O_DIRECTORY, path must be absolute,
  /// exist, be a directory). Errors: the errno with a message naming the
  /// path. Export i is entry "i" of the root nodeid 1.
  static Result<std::unique_ptr<FileServer>> create(const std::vector<proto::ExportSpec>& exports,
                                                    Membership member = {});
  /// The same with the export roots already open (O_PATH or O_RDONLY
  /// directories, one per export, e.g. passed by another process): paths
  /// are then only names, resolved by whoever opened the fds.
  static Result<std::unique_ptr<FileServer>> create(const std::vector<proto::ExportSpec>& exports,
                                                    std::vector<UniqueFd> roots, Membership member);
  ~FileServer();
  FileServer(const FileServer&) = delete;
  FileServer& operator=(const FileServer&) = delete;

  /// Serves one request synchronously; thread-safe (called from many pool
  /// threads at once). Returns the errno (0 = ok) and, when ok, the encoded
  /// reply body for that op. A payload that does not decode exactly gives
  /// EPROTO; an op this server does not serve gives ENOSYS.
  std::pair<int, Bytes> handle(proto::Op op, std::span<const std::byte> payload);

  /// Applies a batch of FUSE forgets (Ctl::Forget payload already decoded).
  /// Unknown nodeids, the root and export roots are ignored.
  void forget(const proto::ForgetMsg& m);

  /// syncfs(2) on every export, so a job's writes are on disk before mrc
  /// reports success. Errors: the first failing export's errno and path.
  [[nodiscard]] Result<void> sync();

  /// The client's job ended: every descriptor opened for it closes
  /// (Ops::close_descriptors).
  void close_descriptors();
  /// Closes write descriptors idle for `idle` (Ops::drop_idle_writers).
  size_t drop_idle_writers(std::chrono::steady_clock::duration idle);

  /// Number of nodeids currently held: export roots plus looked-up nodes
  /// (the synthetic root is not counted).
  size_t node_count() const;

  /// Forget hints for the `n` oldest files the client's kernel remembers
  /// (NodeTable::victims): parent nodeid and name each.
  std::vector<std::pair<uint64_t, std::string>> victims(size_t n);

  /// "N requests: lookup a, read b, ..." (the ops served at least once),
  /// for the service log.
  std::string served_summary() const;

  /// Requests of `op` served so far (for tests and -v statistics).
  uint64_t served(proto::Op op) const {
    auto i = static_cast<size_t>(op);
    return i < m_served.size() ? m_served[i].load() : 0;
  }

 private:
  explicit FileServer(Membership member);
  friend class Dispatcher;
  /// handle() with the request id for the debug log line (0: none).
  std::pair<int, Bytes> serve(proto::Op op, std::span<const std::byte> payload, uint64_t id);

  std::unique_ptr<NodeTable> m_nodes;
  std::unique_ptr<Ops> m_ops;
  std::shared_ptr<spdlog::logger> m_log;
  std::array<std::atomic<uint64_t>, proto::k_op_last + 1> m_served{};
};

/// Runs a FileServer on a Connection: Requests go to a pool of `threads`
/// worker threads (replies go out in completion order), Ctl::Forget is
/// applied inline. Callers wire it in via proto::Handlers: construct, then
/// use on_request()/on_forget().
class Dispatcher {
 public:
  /// `threads` ≥ 1. `fs` and `conn` must outlive the Dispatcher.
  Dispatcher(FileServer& fs, proto::Connection& conn, int threads);
  /// Stops and joins the workers; requests still queued get no reply.
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  /// Enqueues a request and returns. Blocks only as backpressure, while
  /// more than k_max_queued_bytes of payload wait for a worker.
  void on_request(proto::Op op, uint64_t id, Bytes payload);
  /// Decodes and applies a Ctl::Forget payload; a malformed one is logged
  /// and ignored.
  void on_forget(std::span<const std::byte> payload);

  /// Queued payload bytes above which on_request() waits: 64 MiB (16
  /// maximal writes), so a flood of requests cannot exhaust memory.
  static constexpr size_t k_max_queued_bytes = 64u << 20;

 private:
  struct Job {
    proto::Op op{};
    uint64_t id = 0;
    Bytes payload;
  };
  void worker();

  FileServer& m_fs;
  proto::Connection& m_conn;
  std::mutex m_mu;                 // guards m_queue, m_queued_bytes, m_stop
  std::condition_variable m_work;  // a job arrived or m_stop
  std::condition_variable m_room;  // the queue shrank or m_stop
  std::deque<Job> m_queue;
  size_t m_queued_bytes = 0;
  bool m_stop = false;
  std::vector<std::thread> m_workers;  // started last, joined first
};

}  // namespace mrc::headnode
