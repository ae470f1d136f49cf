// Connection: reader thread, pending-call table, serialized frame writes.
#include "proto/connection.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>

#include "common/log.h"

namespace mrc::proto {

Connection::Connection(UniqueFd in, UniqueFd out, int zstd_level)
    : m_in(std::move(in)), m_out(std::move(out)), m_wake(::eventfd(0, EFD_CLOEXEC)),
      m_level(zstd_level) {}

Connection::~Connection() {
  close("connection destroyed");
  join();
}

void Connection::join() {
  if (m_reader.joinable() && m_reader.get_id() != std::this_thread::get_id()) m_reader.join();
}

void Connection::start(Handlers h) {
  m_handlers = std::move(h);
  m_reader = std::thread([this] { reader_loop(); });
}

Result<ReplyBody> Connection::call(Op op, const Bytes& req, std::chrono::milliseconds timeout) {
  auto c = start_call(op, req);
  return await(*c, std::chrono::steady_clock::now() + timeout);
}

std::shared_ptr<Connection::Call> Connection::start_call(Op op, const Bytes& req) {
  return start_call(op, Gathered::of(req));
}

std::shared_ptr<Connection::Call> Connection::start_call(Op op, const Gathered& req) {
  auto c = std::make_shared<Call>();
  c->op = op;
  {
    std::lock_guard lk(m_mu);
    if (m_closed) {
      c->done = true;
      c->err = EIO;
      return c;
    }
    c->id = m_next_id++;
    m_pending[c->id] = c;
  }
  if (!send_frame(FrameType::Request, static_cast<uint16_t>(op), c->id, req.pieces())) {
    std::lock_guard lk(m_mu);
    m_pending.erase(c->id);
    c->done = true;
    c->err = EIO;
  }
  return c;
}

Result<ReplyBody> Connection::await(Call& c, std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lk(m_mu);
  if (!m_cv.wait_until(lk, deadline, [&] { return c.done; })) {
    m_pending.erase(c.id);
    return fail(ETIMEDOUT, "no reply to op " + std::to_string(static_cast<int>(c.op)) + " in time");
  }
  if (c.err == EIO && m_closed) return fail(EIO, "connection closed: " + m_close_reason);
  if (c.err) return fail(c.err, std::strerror(c.err));
  return std::move(c.body);
}

void Connection::reply(Op op, uint64_t id, int err, const Bytes& body) {
  reply_gathered(op, id, err, Gathered::of(body));
}

void Connection::reply_gathered(Op op, uint64_t id, int err, const Gathered& body) {
  auto e = static_cast<int32_t>(err);
  std::vector<ByteView> pieces{ByteView(reinterpret_cast<const std::byte*>(&e), sizeof(e))};
  if (err == 0)
    for (auto p : body.pieces()) pieces.push_back(p);
  send_frame(FrameType::Reply, static_cast<uint16_t>(op), id, pieces);
}

bool Connection::send_control(Ctl op, const Bytes& payload) {
  ByteView piece(payload);
  return send_frame(FrameType::Control, static_cast<uint16_t>(op), 0, {&piece, 1});
}

bool Connection::send_frame(FrameType type, uint16_t op, uint64_t id, std::span<const ByteView> pieces) {
  if (m_closed) return false;
  size_t len = 0;
  for (auto p : pieces) len += p.size();
  // Adaptive zstd: after k_zstd_misses frames in a row that did not
  // compress, skip the attempt for the next k_zstd_skip frames (a failed
  // attempt costs a full pass over the payload).
  int level = m_level;
  bool eligible = level > 0 && len >= k_min_compress;
  if (eligible && m_zstd_skip.load(std::memory_order_relaxed) > 0) {
    m_zstd_skip.fetch_sub(1, std::memory_order_relaxed);
    level = 0;
  }
  // Uncompressed: the header and the pieces in one writev, no copy.
  Bytes wire;
  auto header = encode_header(Header{static_cast<uint32_t>(len), type, 0, op, id});
  std::vector<ByteView> out;
  if (eligible && level > 0) {
    Frame f{type, op, id, {}};
    f.payload.reserve(len);
    for (auto p : pieces) f.payload.insert(f.payload.end(), p.begin(), p.end());
    wire = encode_frame(f, level);
    bool packed = static_cast<uint8_t>(wire[5]) & k_flag_zstd;
    if (packed) {
      m_zstd_misses.store(0, std::memory_order_relaxed);
    } else if (m_zstd_misses.fetch_add(1, std::memory_order_relaxed) + 1 >= k_zstd_misses) {
      m_zstd_misses.store(0, std::memory_order_relaxed);
      m_zstd_skip.store(k_zstd_skip, std::memory_order_relaxed);
    }
    out.emplace_back(wire);
  } else {
    out.reserve(pieces.size() + 1);
    out.emplace_back(header);
    out.insert(out.end(), pieces.begin(), pieces.end());
  }
  size_t total = eligible && level > 0 ? wire.size() : k_header_size + len;
  Result<void> r;
  {
    std::lock_guard lk(m_write_mu);
    r = writev_all(m_out.get(), out);
  }
  if (!r) {
    close("write failed: " + r.error().message);  // takes m_write_mu itself
    return false;
  }
  m_bytes_out += total;
  return true;
}

void Connection::close(const std::string& reason) {
  {
    std::lock_guard lk(m_mu);
    if (m_closed.exchange(true)) return;
    m_close_reason = reason;
    for (auto& [id, p] : m_pending) {
      p->done = true;
      p->err = EIO;
    }
    m_pending.clear();
  }
  m_cv.notify_all();
  // Half-close so the peer sees end of stream now (ENOTSOCK on a pipe is
  // harmless: the pipe closes with the Connection).
  {
    std::lock_guard wl(m_write_mu);
    ::shutdown(m_out.get(), SHUT_WR);
  }
  uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(m_wake.get(), &one, sizeof(one));
}

void Connection::finish(const std::string& reason) {
  close(reason);
  if (m_handlers.on_closed) m_handlers.on_closed(reason);
}

void Connection::reader_loop() {
  auto log = logger("proto");
  auto reason = [&] {
    std::lock_guard lk(m_mu);
    return m_close_reason.empty() ? std::string("closed") : m_close_reason;
  };
  auto wait_readable = [&]() {
    pollfd fds[2] = {{m_in.get(), POLLIN, 0}, {m_wake.get(), POLLIN, 0}};
    while (true) {
      int n = ::poll(fds, 2, -1);
      if (n < 0 && errno == EINTR) continue;
      return n > 0 && !(fds[1].revents & POLLIN);
    }
  };
  std::array<std::byte, k_header_size> raw;
  while (true) {
    if (!wait_readable()) return finish(reason());
    auto got = read_exact(m_in.get(), raw);
    if (!got) return finish(got.error().message);
    if (!*got) return finish("end of stream");
    auto h = decode_header(raw);
    if (!h) {
      log->error("closing connection: {}", h.error().message);
      return finish(h.error().message);
    }
    Bytes body(h->length);
    if (auto r = read_exact(m_in.get(), body); !r || !*r)
      return finish(r ? "end of stream mid-frame" : r.error().message);
    m_bytes_in += k_header_size + h->length;
    if (h->flags & k_flag_zstd) {
      auto d = zstd_decompress(body, k_max_payload);
      if (!d) {
        log->error("closing connection: {}", d.error().message);
        return finish(d.error().message);
      }
      body = std::move(*d);
    }
    switch (h->type) {
      case FrameType::Request:
        if (m_handlers.on_request) m_handlers.on_request(static_cast<Op>(h->op), h->id, std::move(body));
        break;
      case FrameType::Control:
        if (m_handlers.on_control) m_handlers.on_control(static_cast<Ctl>(h->op), std::move(body));
        break;
      case FrameType::Reply: {
        Reader r(body);
        int32_t err = 0;
        r(err);
        if (!r.ok()) return finish("malformed reply: no errno");
        std::lock_guard lk(m_mu);
        auto it = m_pending.find(h->id);
        if (it == m_pending.end()) break;  // timed out already; drop
        it->second->done = true;
        it->second->err = err;
        if (err == 0) it->second->body = ReplyBody{std::move(body), sizeof(err)};
        m_pending.erase(it);
        m_cv.notify_all();
        break;
      }
    }
  }
}

}  // namespace mrc::proto
