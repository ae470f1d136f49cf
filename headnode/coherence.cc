// Coherence: the holder index, the invalidation fan-out and revocation.
// Lock order: a NodeTable's lock, then m_mu, then the observer's own.
// Sinks are called without m_mu.
#include "headnode/coherence.h"

#include <algorithm>
#include <cassert>
#include <map>

#include "common/log.h"
#include "headnode/nodes.h"

namespace mrc::headnode {

void hold(const Node& n, uint8_t bits) {
  // seq_cst: ordered before the read that follows (see Coherence::changed).
  if ((n.cache.load() & bits) != bits) n.cache.fetch_or(bits);
}

uint32_t Coherence::join(Sink& sink, std::string name, std::chrono::milliseconds lease) {
  std::lock_guard lk(m_mu);
  uint32_t id = m_next_session++;
  Member& m = m_members[id];
  m.sink = &sink;
  m.name = std::move(name);
  m.lease = lease;
  return id;
}

void Coherence::leave(uint32_t session) {
  std::unique_lock lk(m_mu);
  auto it = m_members.find(session);
  if (it == m_members.end()) return;
  it->second.leaving = true;
  m_settled.wait(lk, [&] { return m_members.at(session).users == 0; });
  m_members.erase(session);
  m_settled.notify_all();
}

void Coherence::add_node(const Node& n) {
  std::lock_guard lk(m_mu);
  auto& v = m_index[Key{n.dev, n.ino}];
  if (v.empty() && m_observer) m_observer->key_added(n.dev, n.ino, n.fd.get());
  v.push_back(&n);
  ++m_indexed;
}

void Coherence::remove_node(const Node& n) {
  std::lock_guard lk(m_mu);
  auto it = m_index.find(Key{n.dev, n.ino});
  if (it == m_index.end()) return;
  auto& v = it->second;
  auto pos = std::find(v.begin(), v.end(), &n);
  if (pos == v.end()) return;
  *pos = v.back();
  v.pop_back();
  --m_indexed;
  if (v.empty()) {
    if (m_observer) m_observer->key_removed(n.dev, n.ino, n.fd.get());
    m_index.erase(it);
  }
}

size_t Coherence::indexed() const {
  std::lock_guard lk(m_mu);
  return m_indexed;
}

void Coherence::changed(std::span<const Node* const> origins, std::span<const Change> changes) {
  // 1. Collect, per affected session, what its client must drop. The
  // change itself is already done: a hold() that we do not see here
  // happened after it, and the read behind that hold() sees the change.
  struct Out {
    Sink* sink = nullptr;
    std::chrono::milliseconds lease{0};
    uint64_t seq = 0;
    proto::InvalidateReq req;
  };
  std::map<uint32_t, Out> out;
  {
    std::lock_guard lk(m_mu);
    for (const auto& c : changes) {
      auto it = m_index.find(Key{c.dev, c.ino});
      if (it == m_index.end()) continue;
      for (const Node* n : it->second) {
        if (std::find(origins.begin(), origins.end(), n) != origins.end()) continue;
        proto::InvalItem item{static_cast<uint8_t>(c.kind), n->nodeid, {}};
        if (c.kind == proto::InvalKind::Inode) {
          // The client drops everything it had: it is no holder until it asks again.
          if (!(n->cache.fetch_and(static_cast<uint8_t>(~k_cache_attr)) & k_cache_attr)) continue;
        } else {
          if (!(n->cache.load() & k_cache_entries)) continue;
          item.name = c.name;
        }
        auto m = m_members.find(n->session);
        if (m == m_members.end() || m->second.revoked || m->second.leaving) continue;
        Out& o = out[n->session];
        o.sink = m->second.sink;
        o.lease = m->second.lease;
        o.req.items.push_back(std::move(item));
      }
    }
    for (auto& [id, o] : out) {
      o.seq = m_next_seq++;
      m_members[id].outstanding.insert(o.seq);
      m_members[id].users++;  // keeps the sink alive until step 3 is done with it
    }
  }
  if (out.empty()) return;

  // 2. Send them all, then wait: the holders drop their caches in parallel.
  std::vector<std::function<bool(Clock::time_point)>> waits;
  waits.reserve(out.size());
  auto t0 = Clock::now();
  for (auto& [id, o] : out) waits.push_back(o.sink->send(o.req));

  // 3. A holder that stays silent for its lease term is revoked: by then
  // its own lease has run out (settle() stopped renewing it at step 1), so
  // it trusts nothing it cached and the change may complete.
  size_t i = 0;
  for (auto& [id, o] : out) {
    bool acked = waits[i++](t0 + o.lease);
    std::string name;
    {
      std::lock_guard lk(m_mu);
      Member& m = m_members.at(id);  // users > 0: still there
      m.outstanding.erase(o.seq);
      if (!acked && !m.revoked) {
        m.revoked = true;
        name = m.name;
      }
    }
    if (!name.empty()) {
      std::string why = "lease revoked: " + name + " did not acknowledge an invalidation within " +
                        std::to_string(o.lease.count()) + " ms";
      logger("coherence")->warn("{}", why);
      o.sink->revoke(why);
    }
    {
      std::lock_guard lk(m_mu);
      m_members.at(id).users--;
    }
    m_settled.notify_all();
  }
}

std::chrono::milliseconds Coherence::silent_for(uint32_t session) const {
  std::lock_guard lk(m_mu);
  auto it = m_members.find(session);
  if (it == m_members.end()) return std::chrono::milliseconds(0);
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - it->second.last_renew);
}

bool Coherence::settle(uint32_t session, Clock::time_point deadline) {
  std::unique_lock lk(m_mu);
  auto it = m_members.find(session);
  if (it == m_members.end()) return false;
  it->second.last_renew = Clock::now();
  uint64_t upto = m_next_seq;  // everything sent before this call
  bool ok = m_settled.wait_until(lk, deadline, [&] {
    auto m = m_members.find(session);
    if (m == m_members.end() || m->second.revoked) return true;
    return m->second.outstanding.empty() || *m->second.outstanding.begin() >= upto;
  });
  auto m = m_members.find(session);
  return ok && m != m_members.end() && !m->second.revoked;
}

}  // namespace mrc::headnode
