// WriteBack: per-file buffers, a few requests in flight each, the delay thread.
#include "fusefs/writeback.h"

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <vector>

#include "common/log.h"
#include "proto/codec.h"

namespace mrc::fusefs {

WriteBack::WriteBack(proto::Connection& conn, std::chrono::milliseconds timeout)
    : m_conn(conn), m_timeout(timeout) {}

WriteBack::~WriteBack() { stop(); }

void WriteBack::start() {
  m_thread = std::thread([this] { loop(); });
}

void WriteBack::stop() {
  {
    std::lock_guard lk(m_mu);
    m_stop = true;
  }
  m_cv.notify_all();
  if (m_thread.joinable()) m_thread.join();
}

std::shared_ptr<WriteBack::File> WriteBack::file(uint64_t nodeid) {
  std::lock_guard lk(m_mu);
  auto& f = m_files[nodeid];
  if (!f) f = std::make_shared<File>(nodeid);
  return f;
}

void WriteBack::leased(uint64_t nodeid, uint64_t fh) {
  std::lock_guard lk(m_mu);
  auto& f = m_files[nodeid];
  if (!f) f = std::make_shared<File>(nodeid);
  if (fh == 0 && std::find(f->leased.begin(), f->leased.end(), 0) != f->leased.end()) return;
  f->leased.push_back(fh);
}

void WriteBack::forget(uint64_t nodeid) {
  flush(nodeid);
  std::lock_guard lk(m_mu);
  m_files.erase(nodeid);
}

void WriteBack::released(uint64_t nodeid, uint64_t fh) {
  std::lock_guard lk(m_mu);
  auto it = m_files.find(nodeid);
  if (it == m_files.end()) return;
  File& f = *it->second;
  std::erase(f.leased, fh);
  if (!f.leased.empty()) return;
  // Nothing left to track once it is clean (release flushed it).
  std::unique_lock flk(f.mu, std::try_to_lock);
  if (flk && f.pending.empty() && f.inflight.empty() && f.error == 0) {
    flk.unlock();
    m_files.erase(it);
  }
}

bool WriteBack::is_leased(uint64_t nodeid) {
  std::lock_guard lk(m_mu);
  auto it = m_files.find(nodeid);
  return it != m_files.end() && !it->second->leased.empty();
}

bool WriteBack::dirty(uint64_t nodeid) {
  std::shared_ptr<File> f;
  {
    std::lock_guard lk(m_mu);
    auto it = m_files.find(nodeid);
    if (it == m_files.end()) return false;
    f = it->second;
  }
  std::lock_guard flk(f->mu);
  return !f->pending.empty() || !f->inflight.empty();
}

void WriteBack::settle_one(File& f) {
  if (f.inflight.empty()) return;
  File::Sent sent = std::move(f.inflight.front());
  f.inflight.pop_front();
  auto r = m_conn.await(*sent.call, Clock::now() + m_timeout);
  int err = 0;
  if (!r) {
    err = r.error().code == ETIMEDOUT || r.error().code == EPROTO || r.error().code > 4095 ? EIO
                                                                                           : r.error().code;
    if (err == 0) err = EIO;
  } else if (auto rep = proto::decode<proto::WriteRep>(*r); !rep || rep->written != sent.len) {
    err = rep ? ENOSPC : EIO;  // a short write at the head: most likely a full disk
  }
  if (err && !f.error) {
    f.error = err;
    logger("fusefs")->warn("a buffered write failed at the head node: {}", std::strerror(err));
  }
}

void WriteBack::settle(File& f) {
  while (!f.inflight.empty()) settle_one(f);
}

void WriteBack::send(File& f) {
  if (f.pending.empty()) return;
  uint64_t off = f.off, end = f.off + f.pending.size();
  auto overlaps = [&] {
    for (const auto& s : f.inflight)
      if (s.off < end && off < s.off + s.len) return true;
    return false;
  };
  // In order where order matters; otherwise a few at once.
  if (f.append || overlaps()) settle(f);
  while (f.inflight.size() >= k_in_flight) settle_one(f);
  proto::WriteReqView req{f.fh, f.off, f.pending, f.nodeid};
  size_t len = f.pending.size();
  f.inflight.push_back({m_conn.start_call(proto::Op::Write, proto::encode_gathered(req)), off, len});
  f.pending.clear();  // keeps its capacity for the next batch
}

void WriteBack::send_direct(File& f, uint64_t fh, uint64_t off, ByteView data) {
  assert(f.pending.empty());
  uint64_t end = off + data.size();
  bool overlaps = false;
  for (const auto& s : f.inflight) overlaps = overlaps || (s.off < end && off < s.off + s.len);
  if (overlaps) settle(f);
  while (f.inflight.size() >= k_in_flight) settle_one(f);
  proto::WriteReqView req{fh, off, data, f.nodeid};
  f.inflight.push_back({m_conn.start_call(proto::Op::Write, proto::encode_gathered(req)), off, data.size()});
}

int WriteBack::write(uint64_t nodeid, uint64_t fh, uint64_t off, const std::byte* data, size_t n, bool append) {
  auto f = file(nodeid);
  std::lock_guard flk(f->mu);
  {
    // A recall may have come since the caller's is_leased(): it cleared the
    // lease before taking f->mu to flush, so what we buffer under f->mu is
    // either in that flush or refused here (f->mu, then m_mu: nothing holds
    // m_mu while it waits for a file's mu).
    std::lock_guard lk(m_mu);
    if (f->leased.empty()) return k_not_leased;
  }
  if (f->error) return std::exchange(f->error, 0);
  bool contiguous = f->pending.empty() || (f->fh == fh && f->off + f->pending.size() == off && f->append == append);
  if (!contiguous || f->pending.size() + n > k_max_chunk) send(*f);
  // A whole request's worth (dd bs=1M, cp): sent from the caller's buffer,
  // which the send has copied to the stream by the time it returns.
  if (f->pending.empty() && n >= k_max_chunk && !append) {
    send_direct(*f, fh, off, ByteView(data, n));
    return 0;
  }
  if (f->pending.empty()) {
    f->fh = fh;
    f->off = off;
    f->append = append;
    f->since = Clock::now();
    f->pending.reserve(k_max_chunk);
  }
  f->pending.insert(f->pending.end(), data, data + n);
  if (f->pending.size() >= k_max_chunk) send(*f);
  return 0;
}

int WriteBack::flush(uint64_t nodeid) {
  std::shared_ptr<File> f;
  {
    std::lock_guard lk(m_mu);
    auto it = m_files.find(nodeid);
    if (it == m_files.end()) return 0;
    f = it->second;
  }
  std::lock_guard flk(f->mu);
  send(*f);
  settle(*f);
  return std::exchange(f->error, 0);
}

void WriteBack::drain(uint64_t nodeid) {
  std::shared_ptr<File> f;
  {
    std::lock_guard lk(m_mu);
    auto it = m_files.find(nodeid);
    if (it == m_files.end()) return;
    f = it->second;
  }
  std::lock_guard flk(f->mu);
  send(*f);
  settle(*f);
}

int WriteBack::recall(uint64_t nodeid) {
  {
    std::lock_guard lk(m_mu);
    auto it = m_files.find(nodeid);
    if (it == m_files.end()) return 0;
    it->second->leased.clear();  // later writes go through at once
  }
  return flush(nodeid);
}

int WriteBack::flush_all() {
  std::vector<uint64_t> ids;
  {
    std::lock_guard lk(m_mu);
    for (auto& [id, f] : m_files) ids.push_back(id);
  }
  int first = 0;
  for (uint64_t id : ids)
    if (int e = flush(id); e && !first) first = e;
  return first;
}

void WriteBack::loop() {
  std::unique_lock lk(m_mu);
  while (!m_stop) {
    m_cv.wait_for(lk, k_max_delay / 2);
    if (m_stop) return;
    std::vector<std::shared_ptr<File>> files;
    for (auto& [id, f] : m_files) files.push_back(f);
    lk.unlock();
    auto now = Clock::now();
    for (auto& f : files) {
      std::unique_lock flk(f->mu, std::try_to_lock);  // a writer or flusher is at it: it sends
      if (flk && !f->pending.empty() && now - f->since >= k_max_delay) send(*f);
    }
    lk.lock();
  }
}

}  // namespace mrc::fusefs
