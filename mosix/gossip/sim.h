// A simulated clock and network that run many gossip Nodes - the very
// Node code mosixd runs - in one thread of one process: every node steps
// once per step at its own random phase, and a packet arrives a fixed
// latency after it was sent (so within the step, in sending order).
// Deterministic for a seed. Not a model of congestion or reordering.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <memory_resource>
#include <random>
#include <vector>

#include "common/result.h"
#include "mosix/gossip/clock.h"
#include "mosix/gossip/config.h"
#include "mosix/gossip/node.h"

namespace mosix::gossip {

/// The cluster key of simulated nodes (any >= 16 bytes would do).
inline constexpr char k_sim_key[] = "simulated cluster key";
/// UDP port of every simulated node.
inline constexpr uint16_t k_sim_port = 7000;

/// One node's clock: the shared simulated time plus its own offset, since
/// real nodes' clocks are not synchronised and nothing may depend on it.
class SimClock final : public Clock {
 public:
  SimClock(const int64_t& now, int64_t offset_ms) : m_now(now), m_offset(offset_ms) {}
  int64_t now_ms() const override { return m_now + m_offset; }

 private:
  const int64_t& m_now;
  int64_t m_offset;
};

/// Where the simulated nodes' tables live: a bump allocator over anonymous
/// mappings advised for transparent huge pages, freed all at once with
/// the simulation. With 4 KiB pages, 10,000 tables (~11 GB) make nearly
/// every access a TLB miss; huge pages make the simulation ~2x faster.
class HugePageArena final : public std::pmr::memory_resource {
 public:
  HugePageArena() = default;
  ~HugePageArena() override;
  HugePageArena(const HugePageArena&) = delete;
  HugePageArena& operator=(const HugePageArena&) = delete;

 private:
  void* do_allocate(size_t bytes, size_t align) override;
  void do_deallocate(void*, size_t, size_t) override {}  // all freed by the destructor
  bool do_is_equal(const std::pmr::memory_resource& o) const noexcept override { return this == &o; }

  struct Chunk {
    std::byte* base;
    size_t size;
  };
  std::vector<Chunk> m_chunks;
  size_t m_used = 0;  // in m_chunks.back()
};

struct SimOptions {
  int64_t step_ms = k_default_step_ms;  ///< the nodes' Config::step_ms must match
  int64_t latency_ms = 1;               ///< every packet, send to arrival; < step_ms
  double loss = 0;                      ///< probability that a packet is lost
  /// Each node's clock reads the simulated time plus a random offset up
  /// to this, ms (default ~11.6 days): nodes' clocks are not synchronised.
  int64_t max_clock_offset_ms = 1'000'000'000;
  uint64_t seed = 1;  ///< phases, clock offsets, losses, nodes' seeds
};

/// What the simulated network carried (sent packets, incl. lost ones).
struct SimTraffic {
  uint64_t packets_in_cluster = 0;  ///< sender and receiver in one cluster
  uint64_t packets_across = 0;
  uint64_t bytes_in_cluster = 0;
  uint64_t bytes_across = 0;
  uint64_t lost = 0;           ///< by SimOptions::loss
  uint64_t undeliverable = 0;  ///< to an address no node has, or to a crashed node
};

class Simulation {
 public:
  explicit Simulation(SimOptions options);
  ~Simulation();
  Simulation(const Simulation&) = delete;
  Simulation& operator=(const Simulation&) = delete;

  /// Simulated node `index`'s address: 10.0.0.0 + index + 1, port k_sim_port.
  static Address address_of(size_t index);

  /// Adds a node, stepping from the next round on at a random phase. Its
  /// address must be address_of(size()). A zero seed or boot epoch is
  /// filled in. Returns its index. Errors: Node::create's.
  [[nodiscard]] mrc::Result<size_t> add(Config config);
  /// Replaces node `i` by a new one (a restart: give it a larger boot
  /// epoch). Its phase stays. Errors: Node::create's.
  [[nodiscard]] mrc::Result<void> restart(size_t i, Config config);
  /// Crashes (false) or revives (true) node `i`: a crashed node neither
  /// steps nor receives; packets to it are lost.
  void set_up(size_t i, bool up);

  size_t size() const { return m_nodes.size(); }
  Node& node(size_t i) { return *m_nodes[i].node; }
  const Node& node(size_t i) const { return *m_nodes[i].node; }
  /// Simulated time, ms since the simulation began (not any node's clock).
  int64_t now_ms() const { return m_now; }
  /// Runs every step and delivery due before now_ms() + ms, in time order.
  void run_for(int64_t ms);
  const SimTraffic& traffic() const { return m_traffic; }
  int64_t step_ms() const { return m_options.step_ms; }

 private:
  class Port;
  struct SimNode {
    std::unique_ptr<SimClock> clock;
    std::unique_ptr<Port> port;
    std::unique_ptr<Node> node;
    int64_t phase_ms = 0;  // steps at round start + phase
    bool up = true;
  };
  struct Packet {
    int64_t at_ms;  // arrival
    uint32_t to;
    uint32_t from;
    std::vector<std::byte> bytes;
  };
  void send(uint32_t from, const Address& to, std::span<const std::byte> bytes);
  void deliver();

  void prefetch_ahead();

  SimOptions m_options;
  HugePageArena m_arena;  // declared before m_nodes: outlives them
  int64_t m_now = 0;
  std::mt19937_64 m_rng;         // phases, node seeds, losses
  std::mt19937_64 m_offset_rng;  // clock offsets only
  std::vector<SimNode> m_nodes;
  std::vector<uint32_t> m_order;               // node indices by phase
  size_t m_cursor = 0;                         // next in m_order to step this round
  int64_t m_round_ms = 0;                      // start of the current round
  std::deque<Packet> m_in_flight;              // arrival order = sending order (fixed latency)
  std::vector<std::vector<std::byte>> m_free;  // recycled packet buffers
  SimTraffic m_traffic;
};

/// Node `i` of an `n`-node cluster in which every node knows every other
/// from the start (ids i + 1, addresses address_of(i)); window `w`.
Config mesh_config(size_t i, size_t n, uint16_t w, MacKind mac, ClusterId cluster = 1);

}  // namespace mosix::gossip
