// Readdir-ahead (dirahead.h).
#include "fusefs/dirahead.h"

#include <algorithm>

namespace mrc::fusefs {

DirAhead::DirAhead(Fetch fetch, Release release, std::chrono::milliseconds max_age)
    : m_fetch(std::move(fetch)), m_release(std::move(release)), m_max_age(max_age) {}

DirAhead::~DirAhead() { stop(); }

void DirAhead::start() {
  std::lock_guard lk(m_mu);
  if (m_running || !m_threads.empty()) return;
  m_running = true;
  for (size_t i = 0; i < k_threads; ++i) m_threads.emplace_back([this] { worker(); });
}

void DirAhead::stop() {
  {
    std::lock_guard lk(m_mu);
    m_running = false;
  }
  m_cv.notify_all();
  for (auto& t : m_threads) t.join();
  m_threads.clear();
  std::vector<std::vector<proto::DirEntry>> lists;
  {
    std::lock_guard lk(m_mu);
    for (auto& [id, it] : m_items)
      if (it.got) lists.push_back(std::move(it.got->first.entries));
    m_items.clear();
  }
  release_all(lists);
}

void DirAhead::release_all(std::vector<std::vector<proto::DirEntry>>& lists) {
  for (auto& l : lists)
    if (!l.empty()) m_release(l);
  lists.clear();
}

void DirAhead::expire(std::vector<std::vector<proto::DirEntry>>& out) {
  auto now = Clock::now();
  for (auto it = m_items.begin(); it != m_items.end();) {
    if (it->second.state == State::Ready && now - it->second.at > m_max_age) {
      if (it->second.got) out.push_back(std::move(it->second.got->first.entries));
      ++m_stats.discarded;
      it = m_items.erase(it);
    } else {
      ++it;
    }
  }
}

void DirAhead::want(const std::vector<uint64_t>& dirs, uint32_t max) {
  std::vector<std::vector<proto::DirEntry>> gone;
  {
    std::lock_guard lk(m_mu);
    if (!m_running) return;
    expire(gone);
    // dirs[0] gets the highest sequence number: it is wanted first.
    m_seq += dirs.size();
    uint64_t seq = m_seq;
    for (uint64_t id : dirs) {
      uint64_t mine = seq--;
      if (m_items.count(id)) continue;
      if (m_items.size() >= k_max) {
        auto victim = m_items.end();
        for (auto it = m_items.begin(); it != m_items.end(); ++it)
          if (it->second.state == State::Queued && (victim == m_items.end() || it->second.seq < victim->second.seq))
            victim = it;
        if (victim == m_items.end() || victim->second.seq > mine) break;  // full of better or busy ones
        m_items.erase(victim);
      }
      Item& it = m_items[id];
      it.max = max;
      it.seq = mine;
    }
  }
  m_cv.notify_all();
  release_all(gone);
}

std::optional<std::pair<proto::ReaddirRep, DirAhead::Token>> DirAhead::take(uint64_t nodeid,
                                                                           Clock::time_point deadline) {
  std::vector<std::vector<proto::DirEntry>> gone;
  std::optional<std::pair<proto::ReaddirRep, Token>> out;
  {
    std::unique_lock lk(m_mu);
    auto it = m_items.find(nodeid);
    if (it == m_items.end()) return std::nullopt;
    if (it->second.state == State::Queued) {  // not started: the caller asks itself
      m_items.erase(it);
      return std::nullopt;
    }
    m_cv.wait_until(lk, deadline, [&] {
      auto i = m_items.find(nodeid);
      return i == m_items.end() || i->second.state != State::InFlight || i->second.dropped;
    });
    it = m_items.find(nodeid);
    if (it == m_items.end()) return std::nullopt;
    if (it->second.state == State::InFlight) {  // dropped, or too slow: the worker discards it
      it->second.dropped = true;
      return std::nullopt;
    }
    // Ready (a Ready item is never marked dropped: drop() erases it).
    if (Clock::now() - it->second.at <= m_max_age) {
      out = std::move(it->second.got);
      ++m_stats.taken;
    } else if (it->second.got) {
      gone.push_back(std::move(it->second.got->first.entries));
      ++m_stats.discarded;
    }
    m_items.erase(it);
  }
  release_all(gone);
  return out;
}

void DirAhead::drop(uint64_t nodeid) {
  std::vector<std::vector<proto::DirEntry>> gone;
  {
    std::lock_guard lk(m_mu);
    auto it = m_items.find(nodeid);
    if (it == m_items.end()) return;
    if (it->second.state == State::InFlight) {
      it->second.dropped = true;
    } else {
      if (it->second.got) gone.push_back(std::move(it->second.got->first.entries));
      if (it->second.state == State::Ready) ++m_stats.discarded;
      m_items.erase(it);
    }
  }
  m_cv.notify_all();
  release_all(gone);
}

DirAhead::Stats DirAhead::stats() const {
  std::lock_guard lk(m_mu);
  return m_stats;
}

void DirAhead::worker() {
  std::unique_lock lk(m_mu);
  while (true) {
    std::vector<std::vector<proto::DirEntry>> gone;
    expire(gone);
    auto next = m_items.end();
    for (auto it = m_items.begin(); it != m_items.end(); ++it)
      if (it->second.state == State::Queued && (next == m_items.end() || it->second.seq > next->second.seq))
        next = it;
    if (!gone.empty()) {
      lk.unlock();
      release_all(gone);
      lk.lock();
      continue;  // the map may have changed
    }
    if (!m_running) return;
    if (next == m_items.end()) {
      m_cv.wait_for(lk, m_max_age);
      continue;
    }
    uint64_t id = next->first;
    uint32_t max = next->second.max;
    next->second.state = State::InFlight;
    ++m_stats.asked;
    lk.unlock();
    auto r = m_fetch(id, max);
    lk.lock();
    auto it = m_items.find(id);
    bool keep = r && it != m_items.end() && !it->second.dropped;
    if (keep) {
      it->second.state = State::Ready;
      it->second.at = Clock::now();
      it->second.got = std::move(*r);
    } else {
      if (it != m_items.end()) m_items.erase(it);
      if (r) {
        ++m_stats.discarded;
        gone.push_back(std::move(r->first.entries));
      }
    }
    m_cv.notify_all();
    if (!gone.empty()) {
      lk.unlock();
      release_all(gone);
      lk.lock();
    }
  }
}

}  // namespace mrc::fusefs
