// Connection tests over a socketpair (docs/protocol.md §2, §5): pipelined
// calls answered out of order, control messages in order, every way a call
// ends (reply, errno, closed, peer gone, timeout), a peer sending garbage,
// and the stdio credit window.
#include "proto/connection.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <future>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "proto/stream.h"

namespace mrc::proto {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// As mrc and mrc-target do in main: a write to a peer that has gone must be
// an EPIPE error, not a signal that kills the test binary.
const bool k_sigpipe_ignored = [] {
  ::signal(SIGPIPE, SIG_IGN);
  return true;
}();

std::pair<UniqueFd, UniqueFd> socket_pair() {
  int sv[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  return {UniqueFd(sv[0]), UniqueFd(sv[1])};
}

std::unique_ptr<Connection> over(UniqueFd fd, int zstd_level) {
  UniqueFd in(::dup(fd.get()));
  return std::make_unique<Connection>(std::move(in), std::move(fd), zstd_level);
}

Bytes bytes_of(const std::string& s) {
  return Bytes(reinterpret_cast<const std::byte*>(s.data()), reinterpret_cast<const std::byte*>(s.data()) + s.size());
}
std::string string_of(ByteView b) { return std::string(reinterpret_cast<const char*>(b.data()), b.size()); }

/// Records on_closed calls; wait() blocks until the first.
class ClosedLatch {
 public:
  std::function<void(const std::string&)> handler() {
    return [this](const std::string& why) {
      std::lock_guard lk(m_mu);
      m_reasons.push_back(why);
      m_cv.notify_all();
    };
  }
  /// The first reason, or nullopt if on_closed did not fire within `t`.
  std::optional<std::string> wait(std::chrono::milliseconds t = 5s) {
    std::unique_lock lk(m_mu);
    if (!m_cv.wait_for(lk, t, [&] { return !m_reasons.empty(); })) return std::nullopt;
    return m_reasons.front();
  }
  size_t count() {
    std::lock_guard lk(m_mu);
    return m_reasons.size();
  }

 private:
  std::mutex m_mu;  // guards m_reasons
  std::condition_variable m_cv;
  std::vector<std::string> m_reasons;
};

// ---- a raw peer: frames read and written by hand ---------------------------

Frame read_raw_frame(int fd) {
  std::array<std::byte, k_header_size> raw{};
  auto got = read_exact(fd, raw);
  EXPECT_TRUE(got && *got) << "peer: no frame header";
  auto h = decode_header(raw);
  EXPECT_TRUE(h) << h.error().message;
  Bytes body(h->length);
  if (!body.empty()) {
    EXPECT_TRUE(read_exact(fd, body).value_or(false));
  }
  if (h->flags & k_flag_zstd) body = zstd_decompress(body, k_max_payload).value();
  return Frame{h->type, h->op, h->id, std::move(body)};
}

void write_raw(int fd, const Bytes& wire) { ASSERT_TRUE(write_all(fd, wire)); }

Bytes reply_payload(int32_t err, const Bytes& body) {
  Writer w;
  w(err);
  Bytes p = w.take();
  p.insert(p.end(), body.begin(), body.end());
  return p;
}

void write_raw_reply(int fd, const Frame& req, int32_t err, const Bytes& body) {
  write_raw(fd, encode_frame(Frame{FrameType::Reply, req.op, req.id, reply_payload(err, body)}, 0));
}

/// A client Connection whose peer is a raw socket end driven by the test.
struct RawPeer {
  RawPeer() {
    auto [a, b] = socket_pair();
    peer = std::move(b);
    conn = over(std::move(a), 0);
    conn->start({.on_request = {}, .on_control = {}, .on_closed = closed.handler()});
  }
  ClosedLatch closed;
  UniqueFd peer;
  std::unique_ptr<Connection> conn;
};

// ---- out-of-order replies -------------------------------------------------------

constexpr int k_threads = 8;
constexpr int k_calls_per_thread = 25;  // 200 calls in all

/// Runs k_threads × k_calls_per_thread calls; each expects "re:" + its own
/// payload back. Returns the number of calls that got a wrong answer.
int run_clients(Connection& client) {
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < k_threads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < k_calls_per_thread; ++i) {
        std::string mine = "thread " + std::to_string(t) + " call " + std::to_string(i);
        auto r = client.call(Op::Getattr, bytes_of(mine), 10s);
        if (!r) {
          ADD_FAILURE() << mine << ": " << r.error().message;
          ++wrong;
        } else if (string_of(*r) != "re:" + mine) {
          ADD_FAILURE() << mine << " got " << string_of(*r);
          ++wrong;
        }
      }
    });
  for (auto& th : threads) th.join();
  return wrong;
}

struct Req {
  Op op;
  uint64_t id;
  Bytes payload;
};

/// Requests handed from the server's reader thread to its repliers.
struct ReqQueue {
  std::mutex mu;  // guards q, ids, done
  std::condition_variable cv;
  std::deque<Req> q;
  std::set<uint64_t> ids;
  bool done = false;
  void push(Op op, uint64_t id, Bytes p) {
    std::lock_guard lk(mu);
    ids.insert(id);
    q.push_back({op, id, std::move(p)});
    cv.notify_all();
  }
};

void echo(Connection& server, const Req& r) {
  Bytes body = bytes_of("re:" + string_of(r.payload));
  server.reply(r.op, r.id, 0, body);
}

TEST(Connection, ConcurrentCallsGetTheirOwnRepliesWhenAnsweredInReverseOrder) {
  auto [a, b] = socket_pair();
  auto client = over(std::move(a), 1);
  auto server = over(std::move(b), 1);
  ReqQueue rq;
  server->start({.on_request = [&](Op op, uint64_t id, Bytes p) { rq.push(op, id, std::move(p)); }});
  client->start({});
  // Waits until every client thread has a call in flight (or 100 ms pass),
  // then answers the batch last-in first-out.
  int reversed_batches = 0;
  std::thread replier([&] {
    std::unique_lock lk(rq.mu);
    while (!rq.done) {
      rq.cv.wait_for(lk, 100ms, [&] { return rq.done || rq.q.size() >= static_cast<size_t>(k_threads); });
      std::deque<Req> batch;
      batch.swap(rq.q);
      if (batch.size() > 1) ++reversed_batches;
      lk.unlock();
      for (auto it = batch.rbegin(); it != batch.rend(); ++it) echo(*server, *it);
      lk.lock();
    }
  });
  EXPECT_EQ(run_clients(*client), 0);
  {
    std::lock_guard lk(rq.mu);
    rq.done = true;
    rq.cv.notify_all();
  }
  replier.join();
  EXPECT_EQ(rq.ids.size(), static_cast<size_t>(k_threads * k_calls_per_thread)) << "request ids must be unique";
  EXPECT_GT(reversed_batches, k_calls_per_thread / 2) << "replies were not actually reordered";
}

TEST(Connection, ConcurrentCallsGetTheirOwnRepliesWhenAnsweredAfterRandomDelays) {
  auto [a, b] = socket_pair();
  auto client = over(std::move(a), 0);
  auto server = over(std::move(b), 0);
  ReqQueue rq;
  server->start({.on_request = [&](Op op, uint64_t id, Bytes p) { rq.push(op, id, std::move(p)); }});
  client->start({});
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w)
    workers.emplace_back([&, w] {
      std::mt19937 rng(w);
      while (true) {
        Req r;
        {
          std::unique_lock lk(rq.mu);
          rq.cv.wait(lk, [&] { return rq.done || !rq.q.empty(); });
          if (rq.q.empty()) return;
          r = std::move(rq.q.front());
          rq.q.pop_front();
        }
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
        echo(*server, r);
      }
    });
  EXPECT_EQ(run_clients(*client), 0);
  {
    std::lock_guard lk(rq.mu);
    rq.done = true;
    rq.cv.notify_all();
  }
  for (auto& w : workers) w.join();
  EXPECT_EQ(rq.ids.size(), static_cast<size_t>(k_threads * k_calls_per_thread));
}

// ---- control messages -----------------------------------------------------------

TEST(Connection, ControlMessagesArriveInTheOrderSentAmidCalls) {
  auto [a, b] = socket_pair();
  auto client = over(std::move(a), 1);
  auto server = over(std::move(b), 1);
  constexpr uint32_t k_count = 2000;
  std::mutex mu;  // guards seen
  std::condition_variable cv;
  std::vector<uint32_t> seen;
  server->start({.on_request = [&](Op op, uint64_t id, Bytes) { server->reply(op, id, 0, {}); },
                 .on_control =
                     [&](Ctl op, Bytes p) {
                       auto m = decode<StreamDataMsg>(p);
                       EXPECT_EQ(op, Ctl::StreamData);
                       ASSERT_TRUE(m) << m.error().message;
                       uint32_t seq = 0;
                       std::memcpy(&seq, m->data.data(), sizeof(seq));
                       std::lock_guard lk(mu);
                       seen.push_back(seq);
                       cv.notify_all();
                     }});
  client->start({});
  std::atomic<bool> stop{false};
  std::thread caller([&] {
    while (!stop) EXPECT_TRUE(client->call(Op::Statfs, {}, 10s));
  });
  for (uint32_t i = 0; i < k_count; ++i) {
    // Every third message is large and compressible: it goes out as zstd.
    Bytes data(i % 3 == 0 ? 4096 : 4, std::byte{'z'});
    std::memcpy(data.data(), &i, sizeof(i));
    ASSERT_TRUE(client->send(Ctl::StreamData, StreamDataMsg{1, data}));
  }
  {
    std::unique_lock lk(mu);
    EXPECT_TRUE(cv.wait_for(lk, 10s, [&] { return seen.size() == k_count; }));
  }
  stop = true;
  caller.join();
  std::lock_guard lk(mu);
  for (uint32_t i = 0; i < seen.size(); ++i) ASSERT_EQ(seen[i], i) << "control message out of order";
}

TEST(Connection, CompressiblePayloadGoesOutCompressedAndArrivesIntact) {
  auto [a, b] = socket_pair();
  auto client = over(std::move(a), 1);
  auto server = over(std::move(b), 0);
  std::promise<Bytes> got;
  server->start({.on_request = [&](Op op, uint64_t id, Bytes p) {
    got.set_value(p);
    server->reply(op, id, 0, {});
  }});
  client->start({});
  Bytes text;
  for (int i = 0; text.size() < 64 * 1024; ++i) {
    Bytes line = bytes_of("line " + std::to_string(i % 100) + " of a very ordinary log file\n");
    text.insert(text.end(), line.begin(), line.end());
  }
  ASSERT_TRUE(client->call(Op::Write, text, 10s));
  EXPECT_EQ(got.get_future().get(), text);
  EXPECT_LT(client->bytes_out(), text.size() / 4) << "a 64 KiB text request should travel compressed";
}

TEST(Connection, RandomPayloadGoesOutUncompressed) {
  auto [a, b] = socket_pair();
  auto client = over(std::move(a), 1);
  auto server = over(std::move(b), 0);
  std::promise<Bytes> got;
  server->start({.on_request = [&](Op op, uint64_t id, Bytes p) {
    got.set_value(p);
    server->reply(op, id, 0, {});
  }});
  client->start({});
  std::mt19937 rng(7);
  Bytes noise(64 * 1024);
  for (auto& x : noise) x = static_cast<std::byte>(rng());
  ASSERT_TRUE(client->call(Op::Write, noise, 10s));
  EXPECT_EQ(got.get_future().get(), noise);
  EXPECT_EQ(client->bytes_out(), k_header_size + noise.size());
}

TEST(Connection, GatheredRequestAndReplyArriveIntactPastTheSocketBuffer) {
  // 4 MiB pieces overflow the socket buffer: writev returns short and the
  // rest must follow in order, with no byte lost or repeated.
  auto [a, b] = socket_pair();
  auto client = over(std::move(a), 0);
  auto server = over(std::move(b), 0);
  Bytes big(4 << 20);
  std::mt19937 rng(11);
  for (auto& x : big) x = static_cast<std::byte>(rng());
  server->start({.on_request = [&](Op op, uint64_t id, Bytes p) {
    auto req = decode<WriteReqView>(p);
    // Echo the data back gathered, as the file service answers a READ.
    DataRepView rep{req ? req->data : ByteView{}};
    server->reply_gathered(op, id, req ? 0 : EPROTO, encode_gathered(rep));
  }});
  client->start({});
  auto c = client->start_call(Op::Write, encode_gathered(WriteReqView{1, 2, big, 3}));
  auto r = client->await(*c, std::chrono::steady_clock::now() + 10s);
  ASSERT_TRUE(r) << r.error().message;
  auto rep = decode<DataRepView>(*r);
  ASSERT_TRUE(rep);
  ASSERT_EQ(rep->data.size(), big.size());
  EXPECT_TRUE(std::equal(rep->data.begin(), rep->data.end(), big.begin()));
}

struct ManyBlobs {  // 100 byte strings of 16 KiB: 200 pieces, over writev's batch of 64
  std::vector<Bytes> blobs;
  template <class V> void visit(V& v) { v(blobs); }
};

TEST(Connection, AGatheredPayloadOfManyPiecesArrivesIntact) {
  auto [a, b] = socket_pair();
  auto client = over(std::move(a), 0);
  auto server = over(std::move(b), 0);
  ManyBlobs m;
  for (int i = 0; i < 100; ++i) m.blobs.emplace_back(Gathered::k_gather_min, static_cast<std::byte>(i));
  std::promise<Bytes> got;
  server->start({.on_request = [&](Op op, uint64_t id, Bytes p) {
    got.set_value(p);
    server->reply(op, id, 0, {});
  }});
  client->start({});
  Gathered g = encode_gathered(m);
  ASSERT_GT(g.pieces().size(), 64u);
  auto c = client->start_call(Op::Write, g);
  ASSERT_TRUE(client->await(*c, std::chrono::steady_clock::now() + 10s));
  auto back = decode<ManyBlobs>(got.get_future().get());
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->blobs, m.blobs);
}

// ---- how a call ends -----------------------------------------------------------------

TEST(Connection, ServerErrnoReachesTheCaller) {
  RawPeer p;
  auto call = std::async(std::launch::async, [&] { return p.conn->call(Op::Lookup, {}, 10s); });
  Frame req = read_raw_frame(p.peer.get());
  EXPECT_EQ(req.type, FrameType::Request);
  EXPECT_EQ(req.op, static_cast<uint16_t>(Op::Lookup));
  write_raw_reply(p.peer.get(), req, ENOENT, bytes_of("ignored: a failed reply has no body"));
  auto r = call.get();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ENOENT);
  EXPECT_EQ(r.error().message, std::strerror(ENOENT));
}

TEST(Connection, TypedCallRejectsMalformedReplyBody) {
  RawPeer p;
  auto call = std::async(std::launch::async, [&] { return p.conn->call_as<WriteRep>(Op::Write, WriteReq{}, 10s); });
  Frame req = read_raw_frame(p.peer.get());
  write_raw_reply(p.peer.get(), req, 0, Bytes(3));  // WriteRep is 4 bytes
  auto r = call.get();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EPROTO);
  EXPECT_FALSE(p.conn->closed()) << "a malformed reply body fails the call, not the connection";
}

TEST(Connection, CallOnClosedConnectionReturnsEioPromptly) {
  RawPeer p;
  p.conn->close("test said so");
  auto t0 = Clock::now();
  auto r = p.conn->call(Op::Getattr, {}, 10s);
  EXPECT_LT(Clock::now() - t0, 500ms);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EIO);
  EXPECT_NE(r.error().message.find("test said so"), std::string::npos) << r.error().message;
  auto reason = p.closed.wait();
  ASSERT_TRUE(reason);
  EXPECT_EQ(*reason, "test said so");
  EXPECT_FALSE(p.conn->send_control(Ctl::Fatal, {}));
}

TEST(Connection, PendingCallFailsWithEioWhenPeerCloses) {
  RawPeer p;
  auto call = std::async(std::launch::async, [&] { return p.conn->call(Op::Read, {}, 10s); });
  read_raw_frame(p.peer.get());
  auto t0 = Clock::now();
  p.peer.reset();
  auto r = call.get();
  EXPECT_LT(Clock::now() - t0, 2s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EIO);
  auto reason = p.closed.wait();
  ASSERT_TRUE(reason);
  EXPECT_EQ(*reason, "end of stream");
  EXPECT_TRUE(p.conn->closed());
}

TEST(Connection, CallTimesOutWhenNeverAnsweredAndLateReplyIsDropped) {
  RawPeer p;
  auto t0 = Clock::now();
  auto r = p.conn->call(Op::Fsync, {}, 200ms);
  auto took = Clock::now() - t0;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ETIMEDOUT);
  EXPECT_GE(took, 200ms);
  EXPECT_LT(took, 2s);
  // The late reply must not be delivered to the next call, nor break the link.
  Frame late = read_raw_frame(p.peer.get());
  write_raw_reply(p.peer.get(), late, 0, bytes_of("late"));
  auto next = std::async(std::launch::async, [&] { return p.conn->call(Op::Fsync, {}, 10s); });
  Frame req = read_raw_frame(p.peer.get());
  EXPECT_NE(req.id, late.id);
  write_raw_reply(p.peer.get(), req, 0, bytes_of("on time"));
  auto r2 = next.get();
  ASSERT_TRUE(r2) << r2.error().message;
  EXPECT_EQ(string_of(*r2), "on time");
  EXPECT_FALSE(p.conn->closed());
}

TEST(Connection, RequestIdsAreNumberedFromOneAndControlIdsAreZero) {
  RawPeer p;
  for (uint64_t want = 1; want <= 3; ++want) {
    auto call = std::async(std::launch::async, [&] { return p.conn->call(Op::Flush, {}, 10s); });
    Frame req = read_raw_frame(p.peer.get());
    EXPECT_EQ(req.id, want);
    write_raw_reply(p.peer.get(), req, 0, {});
    EXPECT_TRUE(call.get());
  }
  ASSERT_TRUE(p.conn->send(Ctl::Forget, ForgetMsg{}));
  Frame ctl = read_raw_frame(p.peer.get());
  EXPECT_EQ(ctl.type, FrameType::Control);
  EXPECT_EQ(ctl.op, static_cast<uint16_t>(Ctl::Forget));
  EXPECT_EQ(ctl.id, 0u);
}

TEST(Connection, ReplyToUnknownIdIsIgnored) {
  RawPeer p;
  auto call = std::async(std::launch::async, [&] { return p.conn->call(Op::Readlink, {}, 10s); });
  Frame req = read_raw_frame(p.peer.get());
  Frame other = req;
  other.id = req.id + 1000;
  write_raw_reply(p.peer.get(), other, 0, bytes_of("not yours"));
  write_raw_reply(p.peer.get(), req, 0, bytes_of("yours"));
  auto r = call.get();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(string_of(*r), "yours");
}

TEST(Connection, LocalCloseFiresOnClosedExactlyOnce) {
  RawPeer p;
  p.conn->close("first");
  p.conn->close("second");
  auto reason = p.closed.wait();
  ASSERT_TRUE(reason);
  EXPECT_EQ(*reason, "first");
  p.conn.reset();  // joins the reader
  EXPECT_EQ(p.closed.count(), 1u);
}

// The peer learns that we closed only from end of stream: mrc-target waits
// for it after JobExit (10 s at most), and mrc/launch.cc waits for the
// local target to exit while its Connection still exists.
TEST(Connection, CloseEndsTheStreamForThePeer) {
  RawPeer p;
  p.conn->close("job finished");
  pollfd pfd{p.peer.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, 1000), 1) << "no end of stream within 1 s of close()";
  char c;
  EXPECT_EQ(::recv(p.peer.get(), &c, 1, MSG_DONTWAIT), 0) << "expected end of stream";
}

// ---- a peer sending garbage ---------------------------------------------------------

struct Garbage {
  const char* name;
  Bytes wire;
  const char* reason;  // expected in on_closed's reason
};

std::array<std::byte, k_header_size> header(uint32_t length, uint8_t type, uint8_t flags, uint16_t op, uint64_t id) {
  return encode_header(Header{length, static_cast<FrameType>(type), flags, op, id});
}

Bytes cat(const std::array<std::byte, k_header_size>& h, const Bytes& body = {}) {
  Bytes out(h.begin(), h.end());
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

std::vector<Garbage> garbage_cases() {
  Bytes text = bytes_of("not a zstd frame at all, just text");
  return {
      {"ascii banner read as a header", bytes_of("Last login: Mon Jan  1 00:00:00\n"), "exceeds the limit"},
      {"unknown type", cat(header(0, 9, 0, 1, 1)), "unknown frame type 9"},
      {"unknown flag", cat(header(0, 3, 0x80, 100, 0)), "unknown frame flags"},
      {"unknown op", cat(header(0, 1, 0, 2, 1)), "unknown op 2"},
      {"oversized length", cat(header(0xffffffff, 1, 0, 1, 1)), "exceeds the limit"},
      {"one over the limit", cat(header(k_max_payload + 1, 1, 0, 1, 1)), "exceeds the limit"},
      {"corrupt zstd", cat(header(static_cast<uint32_t>(text.size()), 3, k_flag_zstd, 103, 0), text), "zstd"},
      {"reply without errno", cat(header(2, 2, 0, 1, 1), Bytes(2)), "malformed reply"},
      {"cut mid-header", Bytes(7, std::byte{1}), "mid-frame"},
      {"cut mid-payload", cat(header(100, 3, 0, 103, 0), Bytes(10)), "mid-frame"},
  };
}

TEST(Connection, PeerSendingGarbageClosesTheConnectionWithAReason) {
  for (const auto& g : garbage_cases()) {
    SCOPED_TRACE(g.name);
    RawPeer p;
    auto call = std::async(std::launch::async, [&] { return p.conn->call(Op::Getattr, {}, 10s); });
    read_raw_frame(p.peer.get());
    write_raw(p.peer.get(), g.wire);
    ::shutdown(p.peer.get(), SHUT_WR);  // ends the cut-short cases
    auto reason = p.closed.wait();
    ASSERT_TRUE(reason) << "on_closed did not fire";
    EXPECT_NE(reason->find(g.reason), std::string::npos) << *reason;
    auto r = call.get();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, EIO);
    EXPECT_TRUE(p.conn->closed());
    EXPECT_EQ(p.closed.count(), 1u);
  }
}

// ---- stdio credit -------------------------------------------------------------------

bool blocks(std::future<bool>& f) { return f.wait_for(100ms) == std::future_status::timeout; }

TEST(StreamCredit, AcquireBlocksAtTheWindowAndResumesOnAck) {
  StreamCredit c(100);
  ASSERT_TRUE(c.acquire(60));
  auto second = std::async(std::launch::async, [&] { return c.acquire(50); });
  EXPECT_TRUE(blocks(second)) << "60 + 50 bytes exceed a 100-byte window";
  c.ack(5);
  EXPECT_TRUE(blocks(second)) << "55 + 50 still exceed the window";
  c.ack(5);
  ASSERT_EQ(second.wait_for(2s), std::future_status::ready) << "50 + 50 fit the window exactly";
  EXPECT_TRUE(second.get());
}

TEST(StreamCredit, DefaultWindowIsFourMebibytes) {
  StreamCredit c;
  ASSERT_TRUE(c.acquire(k_stream_window));
  auto more = std::async(std::launch::async, [&] { return c.acquire(1); });
  EXPECT_TRUE(blocks(more));
  c.ack(1);
  EXPECT_TRUE(more.get());
}

TEST(StreamCredit, ChunkLargerThanTheWindowPassesOnlyWhenNothingIsOutstanding) {
  StreamCredit c(100);
  ASSERT_TRUE(c.acquire(500));
  auto next = std::async(std::launch::async, [&] { return c.acquire(1); });
  EXPECT_TRUE(blocks(next));
  c.ack(500);
  EXPECT_TRUE(next.get());
}

TEST(StreamCredit, AckBeyondOutstandingGrantsNoExtraCredit) {
  StreamCredit c(100);
  ASSERT_TRUE(c.acquire(50));
  c.ack(80);
  ASSERT_TRUE(c.acquire(100));
  auto next = std::async(std::launch::async, [&] { return c.acquire(1); });
  EXPECT_TRUE(blocks(next));
  c.close();
  EXPECT_FALSE(next.get());
}

TEST(StreamCredit, CloseWakesABlockedAcquireWithFalse) {
  StreamCredit c(10);
  ASSERT_TRUE(c.acquire(10));
  auto blocked = std::async(std::launch::async, [&] { return c.acquire(10); });
  EXPECT_TRUE(blocks(blocked));
  c.close();
  ASSERT_EQ(blocked.wait_for(2s), std::future_status::ready);
  EXPECT_FALSE(blocked.get());
  EXPECT_FALSE(c.acquire(1)) << "closed credit never grants again";
}

}  // namespace
}  // namespace mrc::proto
