// The bulletin board's storage: id index, window upkeep, target lists.
#include "mosix/gossip/table.h"

#include <algorithm>
#include <bit>
#include <cassert>

namespace mosix::gossip {
namespace {

/// Window order: newer first, then smaller id.
bool ranks_before(const WindowSlot& a, const WindowSlot& b) {
  return a.produced_ms != b.produced_ms ? a.produced_ms > b.produced_ms : a.id < b.id;
}

}  // namespace

// --- IdIndex: linear probing, Fibonacci hashing, load <= 2/3 ---

size_t IdIndex::home(NodeId id) const { return static_cast<size_t>((uint64_t{id} * 0x9E3779B97F4A7C15ull) >> m_shift); }

uint32_t IdIndex::find(NodeId id) const {
  if (m_cells.empty()) return k_no_slot;
  size_t mask = m_cells.size() - 1;
  for (size_t i = home(id);; i = (i + 1) & mask) {
    uint64_t c = m_cells[i];
    if (c == 0) return k_no_slot;
    if (static_cast<NodeId>(c >> 32) == id) return static_cast<uint32_t>(c);
  }
}

void IdIndex::insert(NodeId id, uint32_t slot) {
  assert(id != 0 && find(id) == k_no_slot);
  if ((m_count + 1) * 3 > m_cells.size() * 2) reserve(std::max<size_t>(16, 2 * (m_count + 1)));
  size_t mask = m_cells.size() - 1;
  size_t i = home(id);
  while (m_cells[i] != 0) i = (i + 1) & mask;
  m_cells[i] = (uint64_t{id} << 32) | slot;
  ++m_count;
}

void IdIndex::reserve(size_t n) {
  size_t cap = std::bit_ceil(std::max<size_t>(16, n + n / 2 + 1));
  if (cap <= m_cells.size()) return;
  std::pmr::vector<uint64_t> old(cap, 0, m_cells.get_allocator());
  old.swap(m_cells);
  m_shift = 64 - static_cast<unsigned>(std::countr_zero(cap));
  for (uint64_t c : old) {
    if (c == 0) continue;
    size_t i = home(static_cast<NodeId>(c >> 32));
    while (m_cells[i] != 0) i = (i + 1) & (cap - 1);
    m_cells[i] = c;
  }
}

// --- Table ---

void Entry::set(ClusterId c, const Address& a, const Resources& r) {
  cluster = c;
  ip = a.ip;
  port = a.port;
  cpus = r.cpus;
  speed = r.speed;
  load = r.load;
  mem_total = r.mem_total;
  mem_free = r.mem_free;
  swap_total = r.swap_total;
  swap_free = r.swap_free;
  guests = r.guests;
  accepting = r.accepting;
}

Table::Table(NodeId self, ClusterId cluster, const Address& address, size_t window_others, size_t max_nodes,
             std::pmr::memory_resource* memory)
    : m_entries(memory),
      m_ids(memory),
      m_guards(memory),
      m_target_pos(memory),
      m_index(memory),
      m_window_cap(window_others),
      m_max_nodes(max_nodes) {
  add(self, cluster, address, false);
  m_window.reserve(window_others);
  m_copies.resize(window_others);
}

void Table::reserve(size_t n) {
  m_entries.reserve(n);
  m_ids.reserve(n);
  m_guards.reserve(n);
  m_target_pos.reserve(n);
  m_index.reserve(n);
}

uint32_t Table::add(NodeId id, ClusterId cluster, const Address& address, bool configured) {
  if (m_entries.size() >= m_max_nodes) return k_no_slot;
  // Grow every array first: if memory runs out (std::bad_alloc, which
  // Node::receive catches), nothing has changed and they stay parallel.
  if (m_entries.size() == m_entries.capacity())
    reserve(std::min(m_max_nodes, std::max<size_t>(16, 2 * m_entries.size())));
  auto slot = static_cast<uint32_t>(m_entries.size());
  Entry& e = m_entries.emplace_back();
  e.cluster = cluster;
  e.ip = address.ip;
  e.port = address.port;
  e.configured = configured;
  m_ids.push_back(id);
  m_guards.emplace_back();
  m_target_pos.push_back(k_no_slot);
  m_index.insert(id, slot);
  return slot;
}

void Table::store(uint32_t slot, NodeId id, ClusterId cluster, const Address& address, const Resources& r,
                  int64_t produced_ms) {
  Entry& e = m_entries[slot];
  assert(!e.has_data || produced_ms >= e.produced_ms);
  // The target list needs fixing only if the node moved (rare): only then
  // touch m_target_pos, another array.
  bool moved = slot != 0 && (e.cluster != cluster || !(e.address() == address));
  uint32_t pos = moved ? m_target_pos[slot] : k_no_slot;
  if (pos != k_no_slot && e.cluster != cluster) {
    set_target(slot, false);
    e.set(cluster, address, r);
    set_target(slot, true);
  } else {
    e.set(cluster, address, r);
    if (pos != k_no_slot) targets_of(cluster).list[pos].address = address;
  }
  e.produced_ms = produced_ms;
  if (!e.has_data) ++m_with_data;
  e.has_data = true;
  if (slot != 0) window_touch(slot, id);
}

void Table::drop_data(uint32_t slot) {
  Entry& e = m_entries[slot];
  if (!e.has_data) return;
  e.has_data = false;
  --m_with_data;
  if (size_t at = window_position(slot); at != m_window.size()) {
    auto gone = m_window.begin() + static_cast<ptrdiff_t>(at);
    uint32_t freed = gone->copy;
    m_window.erase(gone);
    // Keep copies 0..size-1 in use, as window_touch's filling assumes.
    for (WindowSlot& w : m_window)
      if (w.copy == m_window.size()) {
        m_copies[freed] = m_copies[w.copy];
        w.copy = freed;
      }
    window_refill();
  }
}

size_t Table::window_position(uint32_t slot) const {
  size_t i = 0;
  while (i < m_window.size() && m_window[i].slot != slot) ++i;
  return i;
}

void Table::window_touch(uint32_t slot, NodeId id) {
  const Entry& e = m_entries[slot];
  WindowSlot w{e.produced_ms, id, slot, 0};
  // Membership is looked up in the window itself, not flagged in entries:
  // evicting a member then touches no entry (a cache miss each time).
  size_t i = window_position(slot);
  if (i < m_window.size()) {
    w.copy = m_window[i].copy;
  } else if (m_window.size() < m_window_cap) {
    w.copy = static_cast<uint32_t>(i);  // copies 0..size-1 are in use while filling
    m_window.push_back(w);
  } else if (m_window_cap > 0 && ranks_before(w, m_window.back())) {
    i = m_window.size() - 1;
    w.copy = m_window[i].copy;  // the evicted member's copy is reused
  } else {
    return;
  }
  m_copies[w.copy] = e;
  // A version only gets newer, so the member moves towards the front.
  for (; i > 0 && ranks_before(w, m_window[i - 1]); --i) m_window[i] = m_window[i - 1];
  m_window[i] = w;
}

void Table::window_refill() {
  // Rare (an entry in the window lost its data): one pass for the best outsider.
  while (m_window.size() < m_window_cap) {
    uint32_t best = k_no_slot;
    for (uint32_t s = 1; s < m_entries.size(); ++s) {
      const Entry& e = m_entries[s];
      if (!e.has_data || window_position(s) != m_window.size()) continue;
      if (best == k_no_slot ||
          ranks_before({e.produced_ms, m_ids[s], s, 0}, {m_entries[best].produced_ms, m_ids[best], best, 0}))
        best = s;
    }
    if (best == k_no_slot) return;
    window_touch(best, m_ids[best]);
  }
}

Table::ClusterTargets& Table::targets_of(ClusterId cluster) {
  for (ClusterTargets& t : m_targets)
    if (t.cluster == cluster) return t;
  ClusterTargets& t =
      m_targets.emplace_back(ClusterTargets{cluster, std::pmr::vector<Target>(m_entries.get_allocator())});
  // One cluster usually holds nearly every node: no regrowth in a big arena.
  t.list.reserve(m_entries.capacity());
  return t;
}

void Table::set_target(uint32_t slot, bool on) {
  assert(slot != 0);
  uint32_t& pos = m_target_pos[slot];
  if (on == (pos != k_no_slot)) return;
  std::pmr::vector<Target>& list = targets_of(m_entries[slot].cluster).list;
  if (on) {
    list.push_back({slot, m_entries[slot].address()});  // first: it may throw
    pos = static_cast<uint32_t>(list.size() - 1);
    return;
  }
  Target moved = list.back();  // swap-remove, fixing the moved member's position
  list[pos] = moved;
  m_target_pos[moved.slot] = pos;
  list.pop_back();
  pos = k_no_slot;
}

std::span<const Target> Table::targets(ClusterId cluster) const {
  for (const ClusterTargets& t : m_targets)
    if (t.cluster == cluster) return t.list;
  return {};
}

void Table::prefetch_hot(uint32_t slot) const {
  for (size_t off = 0; off < m_window.size() * sizeof(WindowSlot); off += 64)
    __builtin_prefetch(reinterpret_cast<const char*>(m_window.data()) + off);
  for (const Entry& c : m_copies) __builtin_prefetch(&c);
  if (!m_targets.empty()) __builtin_prefetch(m_targets[0].list.data());
  if (slot < m_entries.size()) __builtin_prefetch(&m_entries[slot]);
}

}  // namespace mosix::gossip
