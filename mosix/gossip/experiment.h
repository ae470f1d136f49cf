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

/// What the formulas' own model gives (run_reference_model).
struct ReferenceResult {
  AgeFormulas formula;
  double average_steps = 0;  ///< mean age of the entries about other nodes, all tables
  double maximum_steps = 0;  ///< mean over nodes of the oldest entry in the node's table
  int64_t warmup_rounds = 0;
};

/// The model behind DESIGN §7's formulas, without the Node, its clocks,
/// phases or codec: synchronous rounds in which every node at once makes
/// its entry anew (age 0) and sends its W youngest entries (its own among
/// them) to a uniformly random other node; all windows are merged (the
/// younger version kept), every table is sampled, then every age grows by
/// one step. Sampled at the end of a round, so ages are whole steps and as
/// low as they get between rounds. A check of the formulas themselves, not
/// of our gossip (run_age_experiment is that). Warm-up: until every node
/// has heard of every other, then 3 formula maxima more; `rounds` samples
/// follow. Deterministic for `seed`; memory N * N * 8 bytes; time about
/// N * N * (warm-up + rounds) operations. Requires N > W >= 1.
ReferenceResult run_reference_model(size_t nodes, uint16_t window, int64_t rounds, uint64_t seed);

}  // namespace mosix::gossip
