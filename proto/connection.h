// Connection: one framed, multiplexed byte stream between head and target
// (docs/protocol.md §2). Many requests in flight, replies out of order,
// control messages in order. Owns a reader thread; writes are serialized
// by a mutex so whole frames never interleave. Not a transport: it is
// given file descriptors (a socketpair to the SSH pump, a pipe pair).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "common/fd.h"
#include "proto/codec.h"
#include "proto/frame.h"
#include "proto/messages.h"

namespace mrc::proto {

/// Callbacks, all run on the reader thread; they must not block for long
/// (hand file-service work to a pool) and must not throw.
struct Handlers {
  /// A Request frame arrived; answer later with Connection::reply().
  std::function<void(Op op, uint64_t id, Bytes payload)> on_request;
  /// A Control frame arrived (in the order sent).
  std::function<void(Ctl op, Bytes payload)> on_control;
  /// The stream ended or broke; called once, after which call() fails.
  std::function<void(const std::string& reason)> on_closed;
};

/// A reply's body where it arrived: the frame payload, whose first `skip`
/// bytes (the errno) are not part of it, so a 1 MiB body is not copied
/// out. Converts to a view of the body.
struct ReplyBody {
  Bytes frame;
  size_t skip = 0;
  ByteView view() const { return ByteView(frame).subspan(skip); }
  operator ByteView() const { return view(); }
  size_t size() const { return frame.size() - skip; }
};

class Connection {
 public:
  struct Call {
    Op op{};
    uint64_t id = 0;
    bool done = false;  // guarded by the Connection's m_mu
    int err = 0;
    ReplyBody body;
  };

  /// `in`/`out` may be the same socket (pass a dup). `zstd_level` 0 turns
  /// compression off; otherwise payloads ≥ 512 bytes are compressed when
  /// that saves at least 1/8.
  Connection(UniqueFd in, UniqueFd out, int zstd_level);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Starts the reader thread.
  void start(Handlers h);

  /// Sends a request and waits for its reply body. Errors: the server's
  /// errno (with strerror text); EIO if the connection closed; ETIMEDOUT
  /// after `timeout` (ms).
  [[nodiscard]] Result<ReplyBody> call(Op op, const Bytes& req, std::chrono::milliseconds timeout);

  // Call: a request in flight, started by start_call(), collected by await().
  /// Sends a request without waiting for its reply (so one thread can have
  /// several calls out at once). Never null; a call started on a closed
  /// connection completes at once with EIO.
  [[nodiscard]] std::shared_ptr<Call> start_call(Op op, const Bytes& req);
  /// The same with a gathered payload (encode_gathered): its large byte
  /// strings are written from where they are, not copied.
  [[nodiscard]] std::shared_ptr<Call> start_call(Op op, const Gathered& req);
  /// Waits for the reply of `c` until `deadline`. Errors as call(); on
  /// ETIMEDOUT the call is abandoned (a late reply is dropped).
  [[nodiscard]] Result<ReplyBody> await(Call& c, std::chrono::steady_clock::time_point deadline);

  /// Typed call: encodes Req, decodes Rep (EPROTO if malformed).
  template <typename Rep, typename Req>
  [[nodiscard]] Result<Rep> call_as(Op op, const Req& req, std::chrono::milliseconds timeout) {
    auto c = start_call(op, encode_gathered(req));  // req outlives the send
    auto raw = await(*c, std::chrono::steady_clock::now() + timeout);
    if (!raw) return tl::unexpected(raw.error());
    return decode<Rep>(*raw);
  }

  /// Answers request `id`: errno `err` (0 = success, then `body`).
  void reply(Op op, uint64_t id, int err, const Bytes& body);
  void reply_gathered(Op op, uint64_t id, int err, const Gathered& body);
  /// Sends a control message. Returns false if the connection is closed.
  bool send_control(Ctl op, const Bytes& payload);
  template <typename M>
  bool send(Ctl op, const M& m) {
    return send_control(op, encode(m));
  }

  /// Fails every pending call with EIO, ends our sending side (the peer
  /// sees end of stream) and wakes the reader to stop. Idempotent; safe
  /// from any thread, including a callback.
  void close(const std::string& reason);
  /// Waits for the reader thread to end (after close() or the peer's
  /// end of stream). Not from a callback. After it, no callback runs.
  void join();
  bool closed() const { return m_closed.load(); }
  /// Changes the compression level of frames sent from now on (0 = off).
  void set_zstd_level(int level) { m_level = level; }
  /// Bytes written/read on the wire so far (for benchmarks and -v).
  uint64_t bytes_out() const { return m_bytes_out.load(); }
  uint64_t bytes_in() const { return m_bytes_in.load(); }

 private:
  void reader_loop();
  /// Writes one frame whose payload is `pieces` in order (compressed when
  /// the level says so and it pays); false once the connection is closed.
  bool send_frame(FrameType type, uint16_t op, uint64_t id, std::span<const ByteView> pieces);
  void finish(const std::string& reason);

  UniqueFd m_in, m_out;
  UniqueFd m_wake;  // eventfd: wakes the reader's poll() on close()
  std::atomic<int> m_level;
  Handlers m_handlers;
  std::thread m_reader;

  std::mutex m_write_mu;  // serializes whole frames on m_out

  std::mutex m_mu;  // guards m_pending, m_next_id, m_close_reason
  std::condition_variable m_cv;
  std::map<uint64_t, std::shared_ptr<Call>> m_pending;
  uint64_t m_next_id = 1;
  std::string m_close_reason;

  /// Adaptive compression: incompressible frames in a row before pausing
  /// zstd, and how many frames the pause lasts (a heuristic; races between
  /// writers only shift it by a frame).
  static constexpr int k_zstd_misses = 4, k_zstd_skip = 64;
  std::atomic<int> m_zstd_misses{0}, m_zstd_skip{0};

  std::atomic<bool> m_closed{false};
  std::atomic<uint64_t> m_bytes_out{0}, m_bytes_in{0};
};

}  // namespace mrc::proto
