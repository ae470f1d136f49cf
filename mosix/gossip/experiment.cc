// run_age_experiment: cold start, warm-up by the missing-pairs rule, then
// samples of every table spaced a quarter of the measured mean age apart.
#include "mosix/gossip/experiment.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <random>
#include <utility>
#include <vector>

#include "mosix/gossip/sim.h"

namespace mosix::gossip {
namespace {

/// Plausible, distinct resources for simulated node `i`.
Resources resources_for(size_t i) {
  Resources r;
  r.cpus = static_cast<uint16_t>(1 + i % 16);
  r.speed = k_standard_speed + static_cast<uint32_t>(i % 7) * 1000;
  r.load = static_cast<uint32_t>(i % 400);
  r.mem_total = uint64_t{16} << 30;
  r.mem_free = (uint64_t{1} << 30) * (1 + i % 15);
  r.swap_total = uint64_t{4} << 30;
  r.swap_free = uint64_t{4} << 30;
  r.guests = static_cast<uint16_t>(i % 3);
  return r;
}

struct Sample {
  double sum_steps = 0;  // ages of all entries about others, all tables
  double max_steps = 0;  // sum over nodes of each table's oldest
  double missing = 0;
};

Sample sample(const Simulation& sim) {
  const size_t n = sim.size();
  const double step = static_cast<double>(sim.step_ms());
  // Not heard of since the start: as old as the simulation (a lower bound).
  const double since_start = static_cast<double>(sim.now_ms()) / step;
  Sample s;
  for (size_t i = 0; i < n; ++i) {
    const Node& node = sim.node(i);
    const NodeId self = node.config().self;
    size_t seen = 0;
    int64_t oldest = 0, sum = 0;
    node.for_each_entry([&](const EntryView& v) {
      if (v.id == self) return;
      ++seen;
      sum += v.age_ms;
      oldest = std::max(oldest, v.age_ms);
    });
    double missing = static_cast<double>(n - 1 - seen);
    s.sum_steps += static_cast<double>(sum) / step + missing * since_start;
    s.max_steps += missing > 0 ? since_start : static_cast<double>(oldest) / step;
    s.missing += missing;
  }
  return s;
}

}  // namespace

AgeResult run_age_experiment(const AgeExperiment& e) {
  assert(e.nodes >= 2);
  AgeResult out;
  out.formula = age_formulas(static_cast<double>(e.nodes), e.window);
  SimOptions so;
  so.latency_ms = e.latency_ms;
  so.seed = e.seed;
  Simulation sim(so);
  for (size_t i = 0; i < e.nodes; ++i) {
    auto index = sim.add(mesh_config(i, e.nodes, e.window, e.mac));
    assert(index);  // mesh_config is valid by construction
    sim.node(*index).set_local(resources_for(i));
  }
  const double n = static_cast<double>(e.nodes);
  auto missing = [&] {
    double heard = 0;
    for (size_t i = 0; i < sim.size(); ++i) heard += static_cast<double>(sim.node(i).entry_count() - 1);
    return n * (n - 1) - heard;
  };
  // Warm-up. The cap (far beyond any age of a working protocol) only stops
  // a broken one from running forever.
  const int64_t cap = static_cast<int64_t>(100 * n / e.window) + 1000;
  while (missing() > e.missing_per_node * n && out.warmup_steps < cap) {
    sim.run_for(sim.step_ms());
    ++out.warmup_steps;
  }
  out.converged = out.warmup_steps < cap;

  uint64_t packets0 = 0, bytes0 = 0;
  for (size_t i = 0; i < sim.size(); ++i) {
    packets0 += sim.node(i).stats().packets_sent;
    bytes0 += sim.node(i).stats().bytes_sent;
  }
  // Samples: many for small N (few tables per sample), at least 4.
  const size_t samples = std::clamp<size_t>(65536 / e.nodes, 4, 1024);
  Sample total;
  int64_t spacing = 1;
  for (size_t k = 0; k < samples; ++k) {
    if (k > 0) {
      sim.run_for(spacing * sim.step_ms());
      out.sampled_steps += spacing;
    }
    Sample s = sample(sim);
    if (k == 0) {  // a quarter of the mean age apart: later samples see mostly new versions
      double mean = s.sum_steps / (n * (n - 1));
      spacing = std::max<int64_t>(1, std::llround(mean / 4));
    }
    total.sum_steps += s.sum_steps;
    total.max_steps += s.max_steps;
    total.missing += s.missing;
  }
  out.samples = samples;
  const double k = static_cast<double>(samples);
  out.average_steps = total.sum_steps / (k * n * (n - 1));
  out.maximum_steps = total.max_steps / (k * n);
  out.missing_pairs = total.missing / k;

  uint64_t packets1 = 0, bytes1 = 0;
  for (size_t i = 0; i < sim.size(); ++i) {
    packets1 += sim.node(i).stats().packets_sent;
    bytes1 += sim.node(i).stats().bytes_sent;
  }
  const double node_steps = n * static_cast<double>(std::max<int64_t>(1, out.sampled_steps));
  out.messages_per_node_step = static_cast<double>(packets1 - packets0) / node_steps;
  out.bytes_per_node_step = static_cast<double>(bytes1 - bytes0) / node_steps;
  return out;
}

ReferenceResult run_reference_model(size_t nodes, uint16_t window, int64_t rounds, uint64_t seed) {
  assert(nodes > window && window >= 1);
  const size_t n = nodes, w = window;
  ReferenceResult out;
  out.formula = age_formulas(static_cast<double>(n), w);
  constexpr uint32_t k_unknown = std::numeric_limits<uint32_t>::max() / 2;  // never heard of
  std::vector<uint32_t> age(n * n, k_unknown);                              // age[i * n + j]: i's entry about j
  std::vector<std::pair<uint32_t, uint32_t>> windows(n * w);                // (id, age) as sent
  std::vector<uint32_t> to(n);
  // (age << 32 | random tie-break) and id: with whole-step ages many tie,
  // and a fixed order (say by id) would favour some nodes' entries.
  std::vector<std::pair<uint64_t, uint32_t>> rank(n);
  std::mt19937_64 rng(seed);
  const int64_t settle = static_cast<int64_t>(std::ceil(3 * out.formula.maximum));
  int64_t sampled = 0, since_known = -1;
  double sum = 0, max_sum = 0;
  while (sampled < rounds) {
    for (size_t i = 0; i < n; ++i) age[i * n + i] = 0;
    for (size_t i = 0; i < n; ++i) {  // the windows, all taken before any is merged
      for (size_t j = 0; j < n; ++j)
        rank[j] = {uint64_t{age[i * n + j]} << 32 | static_cast<uint32_t>(rng()), static_cast<uint32_t>(j)};
      std::nth_element(rank.begin(), rank.begin() + static_cast<std::ptrdiff_t>(w - 1), rank.end());
      for (size_t k = 0; k < w; ++k) windows[i * w + k] = {rank[k].second, static_cast<uint32_t>(rank[k].first >> 32)};
      size_t t = std::uniform_int_distribution<size_t>(0, n - 2)(rng);
      to[i] = static_cast<uint32_t>(t >= i ? t + 1 : t);
    }
    for (size_t i = 0; i < n; ++i)
      for (size_t k = 0; k < w; ++k) {
        const auto [j, sent] = windows[i * w + k];
        uint32_t& held = age[to[i] * n + j];
        held = std::min(held, sent);
      }
    if (since_known < 0 && std::none_of(age.begin(), age.end(), [](uint32_t a) { return a == k_unknown; }))
      since_known = 0;
    if (since_known < 0 || since_known++ < settle) {
      ++out.warmup_rounds;
    } else {
      for (size_t i = 0; i < n; ++i) {
        uint32_t oldest = 0;
        for (size_t j = 0; j < n; ++j) {
          if (j == i) continue;
          sum += age[i * n + j];
          oldest = std::max(oldest, age[i * n + j]);
        }
        max_sum += oldest;
      }
      ++sampled;
    }
    for (uint32_t& a : age) a += a < k_unknown ? 1 : 0;
  }
  const double samples = static_cast<double>(std::max<int64_t>(rounds, 1));
  out.average_steps = sum / (samples * static_cast<double>(n * (n - 1)));
  out.maximum_steps = max_sum / (samples * static_cast<double>(n));
  return out;
}

}  // namespace mosix::gossip
