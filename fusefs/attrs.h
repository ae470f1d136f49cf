// The attributes this client last handed the kernel, per nodeid, so a
// GETATTR the kernel sends although nothing changed — after every read
// from the head it marks atime stale, and the next stat asks again — is
// answered here instead of by a round trip to the head. An entry is valid
// while the lease holds: the head's Inode invalidation drops it (before it
// is acknowledged), and so does any change this client makes to the node.
// Bounded: at most k_max entries, an arbitrary one goes when full.
// Not the kernel's cache (it has its own); no libfuse here.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "proto/messages.h"

namespace mrc::fusefs {

class AttrCache {
 public:
  static constexpr size_t k_max = 1 << 16;  // entries (~150 bytes each)

  /// Read before sending the request whose reply may be put(): a drop or
  /// clear since then (a change raced with the reply) refuses the put.
  uint64_t epoch() const { return m_epoch.load(); }
  void put(uint64_t nodeid, const proto::Attr& a, uint64_t epoch) {
    std::lock_guard lk(m_mu);
    if (epoch != m_epoch.load()) return;
    if (m_map.size() >= k_max && !m_map.count(nodeid)) m_map.erase(m_map.begin());
    m_map[nodeid] = a;
  }
  std::optional<proto::Attr> get(uint64_t nodeid) {
    std::lock_guard lk(m_mu);
    auto it = m_map.find(nodeid);
    if (it == m_map.end()) return std::nullopt;
    return it->second;
  }
  /// Call after the change the kernel will ask about is done at the head.
  void drop(uint64_t nodeid) {
    std::lock_guard lk(m_mu);
    m_epoch.fetch_add(1);
    m_map.erase(nodeid);
  }
  /// The kernel forgot the node: nothing changed, so no epoch step.
  void evict(uint64_t nodeid) {
    std::lock_guard lk(m_mu);
    m_map.erase(nodeid);
  }
  /// A change whose victims we cannot name (unlink, rename): all go.
  void clear() {
    std::lock_guard lk(m_mu);
    m_epoch.fetch_add(1);
    m_map.clear();
  }
  size_t size() {
    std::lock_guard lk(m_mu);
    return m_map.size();
  }

 private:
  std::mutex m_mu;  // guards m_map
  std::unordered_map<uint64_t, proto::Attr> m_map;
  std::atomic<uint64_t> m_epoch{0};  // drops and clears so far
};

}  // namespace mrc::fusefs
