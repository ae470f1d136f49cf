// What a node measures about itself each gossip step (DESIGN §7): the
// payload of its bulletin-board entry. Plain data shared by the measurer
// (mosix/mosixd/measure.h) and the gossip engine (mosix/gossip/); no logic.
#pragma once

#include <cstdint>

namespace mosix::gossip {

/// A node id, unique within the whole multi-cluster system; 0 means none.
using NodeId = uint32_t;
/// A cluster id; nodes of one cluster gossip mostly among themselves.
using ClusterId = uint32_t;

/// MOSIX's standard CPU speed: a CPU as fast as the reference scores this.
inline constexpr uint32_t k_standard_speed = 10000;

/// One node's resources at one moment. Units are in each field's comment.
struct Resources {
  uint16_t cpus = 0;         ///< online CPUs
  uint32_t speed = 0;        ///< per-CPU speed, k_standard_speed = the standard CPU
  uint32_t load = 0;         ///< smoothed run-queue length per CPU, normalised to a
                             ///< standard CPU, x100 (one busy standard CPU = 100)
  uint64_t mem_total = 0;    ///< bytes
  uint64_t mem_free = 0;     ///< bytes available to a new process (MemAvailable)
  uint64_t swap_total = 0;   ///< bytes
  uint64_t swap_free = 0;    ///< bytes
  uint16_t guests = 0;       ///< processes from other nodes running here
  bool accepting = true;     ///< accepts guests now

  bool operator==(const Resources&) const = default;
};

}  // namespace mosix::gossip
