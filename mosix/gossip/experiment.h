// The age experiment behind bench/gossip-ages and the simulated unit tests:
// N nodes with window W on the simulated network, started cold (each knows
// the others' addresses, no data), warmed up until nearly every node has
// heard of every other, then the ages in all tables are sampled and set
// next to DESIGN §7's formulas. Measures; never looks at the formulas.
#pragma once

#include <cstddef>
#include <cstdint>

#include "mosix/gossip/config.h"
#include "mosix/gossip/formulas.h"

namespace mosix::gossip {

struct AgeExperiment {
  size_t nodes = 256;
  uint16_t window = k_default_window;
  MacKind mac = MacKind::hmac_sha256;
  uint64_t seed = 1;
  int64_t latency_ms = 1;
  /// Warm-up ends when the (node, other node) pairs not heard of yet are at
  /// most this many per node: then at most this share of tables hold an
  /// entry from before the steady state (counted at its age since start).
  double missing_per_node = 0.01;
};

struct AgeResult {
  AgeFormulas formula;                ///< for N and W, to compare with
  double average_steps = 0;           ///< mean age of the entries about other nodes, all tables
  double maximum_steps = 0;           ///< mean over nodes of the oldest entry in the node's table
  double messages_per_node_step = 0;  ///< sent, during the sampling
  double bytes_per_node_step = 0;
  int64_t warmup_steps = 0;
  int64_t sampled_steps = 0;  ///< steps from the first sample to the last
  size_t samples = 0;         ///< moments at which every table was read
  double missing_pairs = 0;   ///< per sample, pairs still not heard of
  bool converged = false;     ///< warm-up ended by its rule, not by its cap
};

/// Runs one experiment (deterministic for `e.seed`). Memory: about
/// N * N * 110 bytes (10,000 nodes: ~11 GB).
AgeResult run_age_experiment(const AgeExperiment& e);

}  // namespace mosix::gossip
