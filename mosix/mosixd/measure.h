// Local measurement, once per gossip step (DESIGN §7): CPUs, load (the run
// queue smoothed, normalised by CPUs and speed), memory and swap, into the
// gossip Resources record. The OS is reached through MeasureSources so
// tests inject /proc contents. Not the speed calibration (speed.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "mosix/gossip/resources.h"

namespace mosix::mosixd {

/// Time constant of the load smoothing: each step keeps exp(-step/τ) of the
/// old value (0.78 at the default 1 s step), so a new steady run queue shows
/// 90% of its weight after ~9 s: fast enough to balance within seconds, slow
/// enough that one sample of a bursty queue does not trigger a migration.
inline constexpr std::chrono::milliseconds k_load_time_constant{4000};

/// Reads a whole file; the measurer reads /proc/stat and /proc/meminfo.
using FileReader = std::function<mrc::Result<std::string>(const std::string& path)>;

/// Where a Measurer gets its numbers. system_sources() reads the real OS.
struct MeasureSources {
  FileReader read_file;              ///< whole-file read (default: read_text_file)
  std::function<int()> online_cpus;  ///< CPUs we may run on (default: sched_getaffinity)
};
MeasureSources system_sources();

/// /proc/meminfo's fields the gossip entry carries, bytes.
struct MemInfo {
  uint64_t mem_total = 0;
  uint64_t mem_available = 0;  ///< MemAvailable; MemFree on kernels without it
  uint64_t swap_total = 0;
  uint64_t swap_free = 0;
};

/// Parses /proc/meminfo ("Key:  N kB" lines). MemTotal and MemFree are
/// required, swap lines default to 0. Errors (EINVAL) name the field.
[[nodiscard]] mrc::Result<MemInfo> parse_meminfo(std::string_view text);
/// The runnable-task count of /proc/stat's "procs_running N" line (EINVAL if absent or malformed).
[[nodiscard]] mrc::Result<uint32_t> parse_procs_running(std::string_view text);

/// The fraction of the old smoothed load kept per step: exp(-step/τ).
double load_decay(std::chrono::milliseconds step);

/// Load x100 as gossiped: `runnable` tasks shared by `cpus` CPUs of `speed`,
/// expressed on standard CPUs (one busy standard CPU = 100), rounded.
uint32_t normalised_load(double runnable, uint16_t cpus, uint32_t speed);

/// Whether this node takes guests now (decided by the daemon's policy).
enum class Accepting { no, yes };

/// Measures this node each step; owned and called by the daemon's loop
/// thread only.
class Measurer {
 public:
  /// `speed` is the per-CPU speed to report (calibrate_speed() or the
  /// config's node.speed); `step` sets the smoothing (load_decay).
  Measurer(uint32_t speed, std::chrono::milliseconds step, MeasureSources sources = system_sources());

  /// One step's measurement. `guests` and `accepting` come from the caller.
  /// Errors name the /proc file that could not be read or parsed; the
  /// smoothed load is then left as it was.
  [[nodiscard]] mrc::Result<gossip::Resources> measure(uint16_t guests, Accepting accepting);

  uint32_t speed() const { return m_speed; }
  /// The smoothed run queue (tasks, not normalised); unset before the first measure.
  std::optional<double> smoothed_runnable() const { return m_runnable; }

 private:
  uint32_t m_speed;  // per-CPU, k_standard_speed = standard CPU
  double m_decay;    // fraction kept per step
  MeasureSources m_sources;
  std::optional<double> m_runnable;  // tasks; the first sample seeds it (no ramp from 0)
};

}  // namespace mosix::mosixd
