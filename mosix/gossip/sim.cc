// The simulated network and clock: one event loop merging the nodes' steps
// (sorted by phase, repeating every step) with packet arrivals (a FIFO,
// since every packet takes the same latency).
#include "mosix/gossip/sim.h"

#include <sys/mman.h>

#include <algorithm>
#include <cassert>
#include <limits>
#include <new>

namespace mosix::gossip {
namespace {
constexpr uint32_t k_sim_base_ip = 0x0A000000;  // 10.0.0.0
constexpr int64_t k_never = std::numeric_limits<int64_t>::max();
constexpr size_t k_chunk_bytes = size_t{1} << 30;  // address space, not memory, until touched
}  // namespace

HugePageArena::~HugePageArena() {
  for (const Chunk& c : m_chunks) ::munmap(c.base, c.size);
}

void* HugePageArena::do_allocate(size_t bytes, size_t align) {
  size_t at = m_chunks.empty() ? 0 : (m_used + align - 1) & ~(align - 1);
  if (m_chunks.empty() || at + bytes > m_chunks.back().size) {
    size_t size = std::max(k_chunk_bytes, bytes);
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    ::madvise(p, size, MADV_HUGEPAGE);  // a hint: without it, only slower
    m_chunks.push_back({static_cast<std::byte*>(p), size});
    at = 0;
  }
  m_used = at + bytes;
  return m_chunks.back().base + at;
}

/// A node's Network: hands its packets to the simulation.
class Simulation::Port final : public Network {
 public:
  Port(Simulation& sim, uint32_t index) : m_sim(sim), m_index(index) {}
  mrc::Result<void> send(const Address& to, std::span<const std::byte> bytes) override {
    m_sim.send(m_index, to, bytes);
    return {};  // like UDP: a lost packet is not an error
  }

 private:
  Simulation& m_sim;
  uint32_t m_index;
};

Simulation::Simulation(SimOptions options)
    : m_options(options), m_rng(options.seed), m_offset_rng(options.seed ^ 0x5DEECE66Dull) {
  assert(options.latency_ms >= 0 && options.latency_ms < options.step_ms);
}

Simulation::~Simulation() = default;

Address Simulation::address_of(size_t index) { return {k_sim_base_ip + static_cast<uint32_t>(index) + 1, k_sim_port}; }

mrc::Result<size_t> Simulation::add(Config config) {
  const auto index = static_cast<uint32_t>(m_nodes.size());
  assert(config.address == address_of(index) && config.step_ms == m_options.step_ms);
  if (config.seed == 0) config.seed = m_rng() | 1;
  if (config.boot_epoch == 0) config.boot_epoch = 1;
  SimNode sn;
  // From their own stream, so that offsets change nothing else (a test checks ages ignore them).
  uint64_t offset =
      m_options.max_clock_offset_ms > 0 ? m_offset_rng() % static_cast<uint64_t>(m_options.max_clock_offset_ms + 1) : 0;
  sn.clock = std::make_unique<SimClock>(m_now, static_cast<int64_t>(offset));
  sn.port = std::make_unique<Port>(*this, index);
  sn.phase_ms = static_cast<int64_t>(m_rng() % static_cast<uint64_t>(m_options.step_ms));
  auto node = Node::create(std::move(config), *sn.clock, *sn.port, &m_arena);
  if (!node) return tl::unexpected(node.error());
  sn.node = std::move(*node);
  m_nodes.push_back(std::move(sn));
  // Keep m_order sorted by phase; a node inserted before the cursor steps next round.
  auto pos = std::upper_bound(m_order.begin(), m_order.end(), index,
                              [&](uint32_t a, uint32_t b) { return m_nodes[a].phase_ms < m_nodes[b].phase_ms; });
  if (static_cast<size_t>(pos - m_order.begin()) < m_cursor) ++m_cursor;
  m_order.insert(pos, index);
  return static_cast<size_t>(index);
}

mrc::Result<void> Simulation::restart(size_t i, Config config) {
  assert(config.address == address_of(i));
  if (config.seed == 0) config.seed = m_rng() | 1;
  auto node = Node::create(std::move(config), *m_nodes[i].clock, *m_nodes[i].port, &m_arena);
  if (!node) return tl::unexpected(node.error());
  m_nodes[i].node = std::move(*node);
  m_nodes[i].up = true;
  return {};
}

void Simulation::set_up(size_t i, bool up) { m_nodes[i].up = up; }

void Simulation::send(uint32_t from, const Address& to, std::span<const std::byte> bytes) {
  uint32_t index = to.ip - k_sim_base_ip - 1;
  bool known = to.port == k_sim_port && to.ip > k_sim_base_ip && index < m_nodes.size();
  bool across = known && m_nodes[index].node->config().cluster != m_nodes[from].node->config().cluster;
  (across ? m_traffic.packets_across : m_traffic.packets_in_cluster) += 1;
  (across ? m_traffic.bytes_across : m_traffic.bytes_in_cluster) += bytes.size();
  if (!known) {
    ++m_traffic.undeliverable;
    return;
  }
  if (m_options.loss > 0 && std::uniform_real_distribution<double>(0, 1)(m_rng) < m_options.loss) {
    ++m_traffic.lost;
    return;
  }
  std::vector<std::byte> buf;
  if (!m_free.empty()) {
    buf = std::move(m_free.back());
    m_free.pop_back();
  }
  buf.assign(bytes.begin(), bytes.end());
  m_in_flight.push_back({m_now + m_options.latency_ms, index, from, std::move(buf)});
}

void Simulation::deliver() {
  Packet p = std::move(m_in_flight.front());
  m_in_flight.pop_front();
  SimNode& to = m_nodes[p.to];
  if (to.up) {
    to.node->receive(p.bytes, address_of(p.from));
  } else {
    ++m_traffic.undeliverable;
  }
  m_free.push_back(std::move(p.bytes));
}

void Simulation::prefetch_ahead() {
  // Three events ahead: the node object; two: what it points to (loaded by
  // then), e.g. index cells; one: what those point to. Hides the memory
  // latency that otherwise dominates a simulation of 10,000 nodes.
  auto hint = [&](uint32_t i, int depth, std::span<const std::byte> packet) {
    if (depth == 3) {
      __builtin_prefetch(m_nodes[i].node.get());
      __builtin_prefetch(reinterpret_cast<const char*>(m_nodes[i].node.get()) + 64);
    } else {
      m_nodes[i].node->prefetch(depth, packet);
    }
  };
  for (int d = 1; d <= 3; ++d) {
    if (m_order.size() > static_cast<size_t>(d)) hint(m_order[(m_cursor + d) % m_order.size()], d, {});
    if (m_in_flight.size() > static_cast<size_t>(d)) hint(m_in_flight[d].to, d, m_in_flight[d].bytes);
  }
}

void Simulation::run_for(int64_t ms) {
  const int64_t end = m_now + ms;
  for (;;) {
    int64_t next_step = m_order.empty() ? k_never : m_round_ms + m_nodes[m_order[m_cursor]].phase_ms;
    int64_t next_arrival = m_in_flight.empty() ? k_never : m_in_flight.front().at_ms;
    int64_t t = std::min(next_step, next_arrival);
    if (t >= end) break;
    m_now = t;
    prefetch_ahead();
    if (next_arrival <= next_step) {
      deliver();
      continue;
    }
    SimNode& n = m_nodes[m_order[m_cursor]];
    if (n.up) n.node->step();
    if (++m_cursor == m_order.size()) {
      m_cursor = 0;
      m_round_ms += m_options.step_ms;
    }
  }
  m_now = end;
}

Config mesh_config(size_t i, size_t n, uint16_t w, MacKind mac, ClusterId cluster) {
  Config c;
  c.self = static_cast<NodeId>(i + 1);
  c.cluster = cluster;
  c.address = Simulation::address_of(i);
  c.window = w;
  c.key = k_sim_key;
  c.mac = mac;
  c.max_packet_bytes = std::max(k_default_max_packet_bytes, packet_bytes(w));
  c.peers.reserve(n - 1);
  for (size_t j = 0; j < n; ++j)
    if (j != i) c.peers.push_back({static_cast<NodeId>(j + 1), Simulation::address_of(j), cluster});
  return c;
}

}  // namespace mosix::gossip
