// One node's bulletin board: the entry of every node it knows (its own in
// slot 0), an index by id, the window (the W-1 most recently produced
// entries of others, kept sorted as entries are stored) and the gossip
// targets of each cluster. Storage and its invariants only: what to store,
// when to drop and whom to target is decided by node.cc. Slots are never
// freed (a node is forgotten by dropping its data), so indices stay valid.
// Laid out for memory: a simulation holds 10,000 of these tables.
#pragma once

#include <cstdint>
#include <memory_resource>
#include <span>
#include <vector>

#include "mosix/gossip/address.h"
#include "mosix/gossip/resources.h"

namespace mosix::gossip {

/// No such slot / not in a list.
inline constexpr uint32_t k_no_slot = UINT32_MAX;

/// One node's data as held here, packed into one cache line (Resources'
/// fields without its padding): merging an entry reads and writes only this.
struct alignas(64) Entry {
  /// When its node produced this version, on OUR clock (arrival time minus
  /// the age it carried), ms. Meaningful only with has_data.
  int64_t produced_ms = 0;
  uint64_t mem_total = 0, mem_free = 0, swap_total = 0, swap_free = 0;  // bytes
  uint32_t speed = 0, load = 0;
  ClusterId cluster = 0;
  uint32_t ip = 0;
  uint16_t port = 0, cpus = 0, guests = 0;
  bool accepting : 1 = true;
  bool has_data : 1 = false;    ///< false: a configured peer not heard of yet, or data dropped
  bool configured : 1 = false;  ///< from Config::peers: a target even without data

  Address address() const { return {ip, port}; }
  Resources resources() const {
    return {cpus, speed, load, mem_total, mem_free, swap_total, swap_free, guests, accepting};
  }
  void set(ClusterId c, const Address& a, const Resources& r);
};
static_assert(sizeof(Entry) == 64);

/// Replay guard: the last packet accepted from a node (node.cc's rule).
struct ReplayGuard {
  uint64_t epoch = 0;
  uint64_t seq = 0;
};

/// A window member's rank and where its copy of the data is.
struct WindowSlot {
  int64_t produced_ms;
  NodeId id;  ///< ties broken by smaller id, so the order is total
  uint32_t slot;
  uint32_t copy;  ///< index of its copy in the window's copies (fixed while a member)
};

/// A gossip target: its slot, and its address copied so that choosing a
/// target does not touch its entry.
struct Target {
  uint32_t slot;
  Address address;
};

/// Open-addressing map NodeId -> slot (ids are never 0; never shrinks).
class IdIndex {
 public:
  explicit IdIndex(std::pmr::memory_resource* memory) : m_cells(memory) {}
  uint32_t find(NodeId id) const;
  /// Starts loading the cell find(id) looks at first (a hint, no effect).
  void prefetch(NodeId id) const {
    if (!m_cells.empty()) __builtin_prefetch(&m_cells[home(id)]);
  }
  /// `id` must be absent.
  void insert(NodeId id, uint32_t slot);
  void reserve(size_t n);

 private:
  size_t home(NodeId id) const;
  std::pmr::vector<uint64_t> m_cells;  // (id << 32) | slot; 0 = empty
  unsigned m_shift = 64;
  size_t m_count = 0;
};

class Table {
 public:
  /// Slot 0 is `self`. `window_others` = W - 1; `max_nodes` bounds size().
  /// The large arrays come from `memory` (the simulation gives one backed
  /// by huge pages: 10,000 tables make TLB misses the bottleneck).
  Table(NodeId self, ClusterId cluster, const Address& address, size_t window_others, size_t max_nodes,
        std::pmr::memory_resource* memory);

  size_t size() const { return m_entries.size(); }
  size_t with_data() const { return m_with_data; }
  const Entry& at(uint32_t slot) const { return m_entries[slot]; }
  NodeId id(uint32_t slot) const { return m_ids[slot]; }
  ReplayGuard& guard(uint32_t slot) { return m_guards[slot]; }
  uint32_t find(NodeId id) const { return m_index.find(id); }
  void reserve(size_t n);

  /// Cache hints, so that the lookups of one packet's entries overlap
  /// instead of waiting for memory one after the other.
  void prefetch_index(NodeId id) const { m_index.prefetch(id); }
  void prefetch_entry(uint32_t slot) const { __builtin_prefetch(&m_entries[slot]); }
  void prefetch_guard(uint32_t slot) const { __builtin_prefetch(&m_guards[slot]); }
  /// Hints for what a step or a receive touches first: the window and its
  /// copies, the target list, the entry `slot` (the expiry sweep's next).
  void prefetch_hot(uint32_t slot) const;

  /// Adds a node without data, not a target. Returns its slot, or
  /// k_no_slot when max_nodes are known. `id` must be absent.
  uint32_t add(NodeId id, ClusterId cluster, const Address& address, bool configured);
  /// Stores a version of `slot`'s data produced at `produced_ms` (never
  /// older than a version held), moving it between target lists if its
  /// cluster changed and into the window if it now ranks there. `id` must
  /// be id(slot) (passed, as the caller has it: one memory access less).
  void store(uint32_t slot, NodeId id, ClusterId cluster, const Address& address, const Resources& r,
             int64_t produced_ms);
  /// Forgets `slot`'s data (kept: id, address, replay guard, target state).
  void drop_data(uint32_t slot);

  /// Newest first; at most W - 1; never slot 0.
  std::span<const WindowSlot> window() const { return m_window; }
  /// A member's data (its copy, as it was stored).
  const Entry& copy(const WindowSlot& w) const { return m_copies[w.copy]; }

  /// Makes `slot` a gossip target of its cluster, or stops it being one.
  void set_target(uint32_t slot, bool on);
  bool is_target(uint32_t slot) const { return m_target_pos[slot] != k_no_slot; }
  /// The targets of `cluster` (empty if none).
  std::span<const Target> targets(ClusterId cluster) const;

 private:
  struct ClusterTargets {
    ClusterId cluster;
    std::pmr::vector<Target> list;
  };
  ClusterTargets& targets_of(ClusterId cluster);
  size_t window_position(uint32_t slot) const;  // m_window.size() if not a member
  void window_touch(uint32_t slot, NodeId id);
  void window_refill();

  // Per slot, in parallel arrays: what merging touches (m_entries) apart
  // from what it does not (ids, replay guards, target positions).
  std::pmr::vector<Entry> m_entries;
  std::pmr::vector<NodeId> m_ids;
  std::pmr::vector<ReplayGuard> m_guards;
  std::pmr::vector<uint32_t> m_target_pos;  // index in its cluster's target list, or k_no_slot
  IdIndex m_index;
  std::vector<WindowSlot> m_window;       // invariant: the best window_others entries with data
  std::vector<Entry> m_copies;            // window_others of them; m_window[i].copy are distinct
  std::vector<ClusterTargets> m_targets;  // a few clusters
  size_t m_window_cap;
  size_t m_max_nodes;
  size_t m_with_data = 0;
};

}  // namespace mosix::gossip
