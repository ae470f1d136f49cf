// Dispatcher: a fixed pool of worker threads draining one FIFO of
// requests; each worker serves a request and sends its reply itself, so
// replies go out in completion order. Not a scheduler: no priorities.
#include <cassert>
#include <exception>

#include "common/log.h"
#include "headnode/fileserver.h"
#include "proto/codec.h"

namespace mrc::headnode {

Dispatcher::Dispatcher(FileServer& fs, proto::Connection& conn, int threads)
    : m_fs(fs), m_conn(conn) {
  assert(threads >= 1);
  m_workers.reserve(static_cast<size_t>(threads));
  for (int i = 0; i < threads; ++i) m_workers.emplace_back([this] { worker(); });
}

Dispatcher::~Dispatcher() {
  {
    std::lock_guard lk(m_mu);
    m_stop = true;
  }
  m_work.notify_all();
  m_room.notify_all();
  for (auto& t : m_workers) t.join();
}

void Dispatcher::on_request(proto::Op op, uint64_t id, Bytes payload) {
  std::unique_lock lk(m_mu);
  m_room.wait(lk, [&] { return m_stop || m_queued_bytes < k_max_queued_bytes; });
  if (m_stop) return;
  m_queued_bytes += payload.size();
  m_queue.push_back(Job{op, id, std::move(payload)});
  lk.unlock();
  m_work.notify_one();
}

void Dispatcher::on_forget(std::span<const std::byte> payload) {
  auto m = proto::decode<proto::ForgetMsg>(payload);
  if (!m) {
    logger("fileserver")->warn("ignoring malformed forget: {}", m.error().message);
    return;
  }
  m_fs.forget(*m);
}

void Dispatcher::worker() {
  while (true) {
    Job job;
    {
      std::unique_lock lk(m_mu);
      m_work.wait(lk, [&] { return m_stop || !m_queue.empty(); });
      if (m_stop) return;
      job = std::move(m_queue.front());
      m_queue.pop_front();
      m_queued_bytes -= job.payload.size();
    }
    m_room.notify_one();
    try {
      auto [err, body] = m_fs.serve(job.op, job.payload, job.id);
      m_conn.reply(job.op, job.id, err, body);
    } catch (const std::exception& e) {  // e.g. bad_alloc encoding the reply
      logger("fileserver")->error("req {}: {}", job.id, e.what());
    }
  }
}

}  // namespace mrc::headnode
