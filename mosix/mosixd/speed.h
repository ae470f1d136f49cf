// CPU speed calibration (DESIGN §7: MOSIX's standard CPU scores 10000): a
// fixed, deterministic integer loop timed with the steady clock. Per-CPU
// speed, single-threaded; not a benchmark of memory or floating point.
#pragma once

#include <chrono>
#include <cstdint>

namespace mosix::mosixd {

/// Iterations of the calibration loop (≈3 ms on a 3 GHz core).
inline constexpr uint32_t k_calibration_iterations = 1u << 20;
/// The standard CPU's time for one run of the loop, ns. The loop is a chain
/// of 9 dependent cycles per iteration (three shift+xor pairs and a 3-cycle
/// imul: xorshift64*), so the standard CPU is a 3 GHz x86-64 core with
/// 1-cycle ALU ops and a 3-cycle multiply: 2^20 × 9 / 3 GHz. For scale: the
/// project's development VM (KVM "Intel Xeon Processor", AVX-512 era) runs
/// it in ≈2.52 ms and scores ≈12500, i.e. 9 cycles at ≈3.75 GHz.
inline constexpr int64_t k_standard_loop_ns = 3'145'728;
/// Timed runs after one warm-up; the fastest counts (others were
/// interrupted, preempted or ran at a lower clock).
inline constexpr int k_calibration_runs = 7;

/// Runs the loop `iterations` times from `seed`; returns its final value
/// (the same on every machine: tests check it against a plain C++ copy).
uint64_t calibration_loop(uint64_t seed, uint32_t iterations);

/// The speed a CPU that runs the loop in `loop_time` scores:
/// 10000 × k_standard_loop_ns / loop_time, clamped to 1..UINT32_MAX.
uint32_t speed_from_loop_time(std::chrono::nanoseconds loop_time);

/// Times `runs` runs of the loop (after a warm-up) and returns the speed of
/// the fastest. Takes about (runs + 1) × 3 ms on a standard CPU.
uint32_t calibrate_speed(int runs = k_calibration_runs);

}  // namespace mosix::mosixd
