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
  for (auto l = m_leases.begin(); l != m_leases.end();) {
    if (l->second.session == session && !l->second.recalling) {
      l = m_leases.erase(l);
      m_lease_count.fetch_sub(1);
    } else {
      ++l;
    }
  }
  m_settled.notify_all();
}

Sink* Coherence::revoke_locked(uint32_t session, std::string* why) {
  auto m = m_members.find(session);
  if (m == m_members.end() || m->second.revoked) return nullptr;
  m->second.revoked = true;
  *why = "lease revoked: " + m->second.name + " did not acknowledge an invalidation within " +
         std::to_string(m->second.lease.count()) + " ms";
  return m->second.sink;
}

bool Coherence::grant(const Node& n, bool implicit) {
  // Announce first, then look: an access() that set its flag before our
  // look is seen here; one that sets it after sees the count and recalls.
  m_lease_count.fetch_add(1);
  std::lock_guard lk(m_mu);
  Key k{n.dev, n.ino};
  if (auto l = m_leases.find(k); l != m_leases.end()) {
    m_lease_count.fetch_sub(1);
    if (l->second.session != n.session || l->second.nodeid != n.nodeid || l->second.recalling) return false;
    if (implicit)
      l->second.implicit = true;
    else
      l->second.files++;
    return true;
  }
  if (auto it = m_index.find(k); it != m_index.end())
    for (const Node* o : it->second)
      if (o->session != n.session && (o->cache.load() & k_cache_attr)) {
        m_lease_count.fetch_sub(1);
        return false;
      }
  m_leases[k] = WriteLease{n.session, n.nodeid, implicit ? 0 : 1, implicit, false};
  return true;
}

bool Coherence::try_lease(const Node& n) { return grant(n, false); }
bool Coherence::lease_implicit(const Node& n) { return grant(n, true); }

void Coherence::drop(const Node& n, bool implicit) {
  std::lock_guard lk(m_mu);
  auto l = m_leases.find(Key{n.dev, n.ino});
  if (l == m_leases.end() || l->second.session != n.session || l->second.recalling) return;
  if (implicit)
    l->second.implicit = false;
  else if (l->second.files > 0)
    l->second.files--;
  if (l->second.files > 0 || l->second.implicit) return;
  m_leases.erase(l);
  m_lease_count.fetch_sub(1);
  m_settled.notify_all();
}

void Coherence::unlease(const Node& n) { drop(n, false); }
void Coherence::unlease_implicit(const Node& n) { drop(n, true); }

void Coherence::access(const Node& n, uint8_t bits) {
  hold(n, bits);
  if (m_lease_count.load() == 0) return;  // after hold(): see try_lease()
  recall_other(n.dev, n.ino, n.session);
}

void Coherence::recall(dev_t dev, ino_t ino) {
  if (m_lease_count.load() == 0) return;
  recall_other(dev, ino, 0);
}

void Coherence::recall_other(dev_t dev, ino_t ino, uint32_t session) {
  std::unique_lock lk(m_mu);
  Key k{dev, ino};
  while (true) {
    auto l = m_leases.find(k);
    if (l == m_leases.end() || l->second.session == session) return;
    if (l->second.recalling) {  // someone else is at it: wait for the outcome
      m_settled.wait(lk);
      continue;
    }
    WriteLease lease = l->second;
    l->second.recalling = true;
    auto m = m_members.find(lease.session);
    if (m == m_members.end() || m->second.leaving || m->second.revoked) {
      m_leases.erase(l);
      m_lease_count.fetch_sub(1);
      continue;
    }
    Sink* sink = m->second.sink;
    auto term = m->second.lease;
    m->second.users++;
    uint64_t seq = m_next_seq++;
    m->second.outstanding.insert(seq);  // no renewal until it acknowledged
    lk.unlock();
    proto::InvalidateReq req{{proto::InvalItem{static_cast<uint8_t>(proto::InvalKind::Recall), lease.nodeid, {}}}};
    bool acked = sink->send(req)(Clock::now() + term);
    lk.lock();
    m_leases.erase(k);
    m_lease_count.fetch_sub(1);
    m_members.at(lease.session).outstanding.erase(seq);
    std::string why;
    Sink* to_revoke = acked ? nullptr : revoke_locked(lease.session, &why);
    if (to_revoke) {
      lk.unlock();
      logger("coherence")->warn("{}", why);
      to_revoke->revoke(why);
      lk.lock();
    }
    m_members.at(lease.session).users--;
    m_settled.notify_all();
  }
}

void Coherence::add_node(const Node& n) {
  std::lock_guard lk(m_mu);
  auto& v = m_index[Key{n.dev, n.ino}];
  if (v.empty() && m_observer) m_observer->key_added(n.dev, n.ino, n.fd.get());
  v.push_back(&n);
  ++m_indexed;
  if (m_cap && m_on_pressure && m_indexed > m_cap * 9 / 10) m_on_pressure(m_indexed - m_cap * 3 / 4);
}

void Coherence::set_budget(size_t cap, std::function<void(size_t)> on_pressure) {
  m_cap = cap;
  m_on_pressure = std::move(on_pressure);
}

void Coherence::wait_for_room() {
  if (!m_cap) return;
  std::unique_lock lk(m_mu);
  m_room.wait_for(lk, std::chrono::seconds(1), [&] { return m_indexed < m_cap; });
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
  if (m_cap && m_indexed + 1 == m_cap) m_room.notify_all();
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
    std::string why;
    Sink* to_revoke = nullptr;
    {
      std::lock_guard lk(m_mu);
      m_members.at(id).outstanding.erase(o.seq);  // users > 0: still there
      if (!acked) to_revoke = revoke_locked(id, &why);
    }
    if (to_revoke) {
      logger("coherence")->warn("{}", why);
      to_revoke->revoke(why);
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
