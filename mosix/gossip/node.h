// One gossip node (DESIGN §7, docs/gossip-protocol.md §5): each step it
// refreshes its own entry, drops entries past the age limit and sends its
// window to one random target, preferring its own cluster; it merges what
// it receives, keeping an entry only if newer. Single-threaded: the owner
// (mosixd's loop, or sim.h) calls every method from one thread. Not the
// sockets (udp.h), the measurement of Resources (mosixd) or any timer.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <memory_resource>
#include <span>
#include <unordered_set>
#include <vector>

#include "common/result.h"
#include "mosix/gossip/clock.h"
#include "mosix/gossip/codec.h"
#include "mosix/gossip/config.h"
#include "mosix/gossip/mac.h"
#include "mosix/gossip/table.h"

namespace mosix::gossip {

/// Counters since the Node was created. Packets are datagrams.
struct Stats {
  uint64_t packets_sent = 0;
  uint64_t packets_sent_foreign = 0;  ///< of which to another cluster
  uint64_t bytes_sent = 0;
  uint64_t send_errors = 0;       ///< Network::send failed
  uint64_t packets_received = 0;  ///< every datagram handed to receive()
  uint64_t bytes_received = 0;
  uint64_t packets_accepted = 0;                   ///< passed every check and were merged
  std::array<uint64_t, k_drop_reasons> dropped{};  ///< by DropReason
  uint64_t entries_received = 0;                   ///< in accepted packets
  uint64_t entries_newer = 0;                      ///< stored: newer than the version held
  uint64_t entries_not_newer = 0;
  uint64_t entries_refused = 0;  ///< ours, too old, unconnected cluster, table full
  uint64_t nodes_learnt = 0;     ///< first data about a node (or again after a drop)
  uint64_t entries_expired = 0;  ///< data dropped past the age limit

  uint64_t drops(DropReason r) const { return dropped[static_cast<size_t>(r)]; }
  uint64_t drops_total() const;
};

/// One entry as snapshot() shows it.
struct EntryView {
  NodeId id = 0;
  ClusterId cluster = 0;
  Address address;
  Resources resources;
  int64_t age_ms = 0;  ///< on this node's clock, now
};

enum class Blocked : bool { no, yes };
enum class Active : bool { no, yes };

class Node {
 public:
  /// Checks `config` (validate(), then repeated peer ids) and sets up the
  /// MAC. `clock` and `network` must outlive the Node; so must `memory`,
  /// where the table's large arrays live (the simulation passes an arena).
  [[nodiscard]] static mrc::Result<std::unique_ptr<Node>> create(
      Config config, Clock& clock, Network& network,
      std::pmr::memory_resource* memory = std::pmr::get_default_resource());
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  /// The resources to advertise: in snapshot() at once, sent from the next step on.
  void set_local(const Resources& r);
  /// One gossip step; call every config().step_ms (the phase is the caller's).
  void step();
  /// Handles one datagram from `from` (used only in logs). Never throws;
  /// anything unusable is dropped and counted in stats().dropped.
  void receive(std::span<const std::byte> packet, const Address& from) noexcept;
  /// A cache hint, no effect otherwise: starts loading what the next step()
  /// or receive(`next_packet`) touches (the packet is not checked, only read
  /// within its bounds). Stage 2 loads the index cells of the packet's
  /// entries, stage 1 (an event later, with the cells loaded) the entries
  /// and what a step reads. The simulation calls them events ahead.
  void prefetch(int stage, std::span<const std::byte> next_packet = {}) const;

  /// Every entry with data, own first, then by id; none older than the limit.
  std::vector<EntryView> snapshot() const;
  /// Calls `f` for each entry snapshot() would return, unordered and
  /// without copying the table (for the simulation's measurements).
  void for_each_entry(const std::function<void(const EntryView&)>& f) const;
  /// Entries with data, own included (may count some past the limit).
  size_t entry_count() const { return m_table.with_data(); }

  const Stats& stats() const { return m_stats; }
  const Config& config() const { return m_config; }
  /// The age limits in force for our cluster's and for linked clusters'
  /// entries, ms (Config's, or the automatic ones for the nodes known now).
  int64_t age_limit_ms() const { return m_age_limit_ms; }
  int64_t foreign_age_limit_ms() const { return m_foreign_age_limit_ms; }

  /// Blocks a foreign cluster (its entries dropped, its packets ignored,
  /// no more sends to it) or unblocks it. Errors: EINVAL for our own.
  [[nodiscard]] mrc::Result<void> block_cluster(ClusterId cluster, Blocked b);
  /// Leaving (no) or rejoining (yes): an inactive node neither sends nor merges.
  void set_active(Active a) { m_active = a; }
  bool active() const { return m_active == Active::yes; }

 private:
  struct Seed {
    Address address;
    ClusterId cluster;
  };
  Node(Config config, Clock& clock, Network& network, Mac mac, std::pmr::memory_resource* memory);
  mrc::Result<void> load_peers(const std::vector<Peer>& peers);
  void receive_checked(std::span<const std::byte> packet, const Address& from);
  void merge(const WireEntry& e, uint32_t slot, int64_t now);
  bool allowed(ClusterId cluster) const;
  void expire_some(int64_t now);
  void update_age_limit();
  int64_t limit_for(ClusterId c) const { return c == m_config.cluster ? m_age_limit_ms : m_foreign_age_limit_ms; }
  /// The address to send this step's window to; false if nobody is known.
  bool pick_target(Address& to, bool& foreign);
  size_t candidates(ClusterId cluster) const;
  Address candidate(ClusterId cluster, size_t i) const;
  EntryView view(uint32_t slot, int64_t now) const;

  Config m_config;  // peers cleared after loading (they live in m_table)
  Clock& m_clock;
  Network& m_network;
  Mac m_mac;
  Table m_table;
  std::vector<Seed> m_seeds;  // address-only peers not learnt yet
  std::unordered_set<ClusterId> m_blocked;
  Active m_active = Active::yes;
  Resources m_local;
  uint64_t m_seq = 0;                  // last packet number sent this boot
  int64_t m_age_limit_ms = 0;          // entries of our cluster
  int64_t m_foreign_age_limit_ms = 0;  // entries of linked clusters
  size_t m_age_limit_for = 0;          // table size the automatic limit was computed for
  uint32_t m_sweep = 1;                // next slot the expiry sweep looks at
  uint64_t m_rng[4];                   // xoshiro256** state
  Stats m_stats;
};

}  // namespace mosix::gossip
