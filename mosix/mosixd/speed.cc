// The calibration loop (x86-64 assembly, so the instruction sequence and
// thus the score do not depend on the compiler or its flags) and its timing.
#include "mosix/mosixd/speed.h"

#include <algorithm>
#include <limits>

#include "mosix/gossip/resources.h"

namespace mosix::mosixd {
namespace {

constexpr uint64_t k_multiplier = 0x2545F4914F6CDD1DULL;  // xorshift64* (Vigna 2016)

}  // namespace

uint64_t calibration_loop(uint64_t seed, uint32_t iterations) {
  uint64_t x = seed;
  if (iterations == 0) return x;
#if defined(__x86_64__)
  uint64_t t = 0;
  uint64_t n = iterations;
  asm volatile(
      "1:\n\t"
      "mov %[x], %[t]\n\t"
      "shl $13, %[t]\n\t"
      "xor %[t], %[x]\n\t"
      "mov %[x], %[t]\n\t"
      "shr $7, %[t]\n\t"
      "xor %[t], %[x]\n\t"
      "mov %[x], %[t]\n\t"
      "shl $17, %[t]\n\t"
      "xor %[t], %[x]\n\t"
      "imul %[m], %[x]\n\t"
      "dec %[n]\n\t"
      "jnz 1b\n\t"
      : [x] "+r"(x), [t] "=&r"(t), [n] "+r"(n)
      : [m] "r"(k_multiplier)
      : "cc");
#else
  // Other architectures: the same chain in C++; scores are comparable only
  // roughly (the compiler picks the instructions).
  for (uint32_t i = 0; i < iterations; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x *= k_multiplier;
    asm volatile("" : "+r"(x));
  }
#endif
  return x;
}

uint32_t speed_from_loop_time(std::chrono::nanoseconds loop_time) {
  if (loop_time.count() <= 0) return std::numeric_limits<uint32_t>::max();
  double s = static_cast<double>(gossip::k_standard_speed) * static_cast<double>(k_standard_loop_ns) /
             static_cast<double>(loop_time.count());
  return static_cast<uint32_t>(std::clamp(s + 0.5, 1.0, static_cast<double>(std::numeric_limits<uint32_t>::max())));
}

uint32_t calibrate_speed(int runs) {
  using clock = std::chrono::steady_clock;
  auto best = clock::duration::max();
  uint64_t sink = calibration_loop(1, k_calibration_iterations);  // warm-up: caches, clock ramp-up
  for (int i = 0; i < std::max(runs, 1); ++i) {
    auto t0 = clock::now();
    sink += calibration_loop(sink | 1, k_calibration_iterations);
    best = std::min(best, clock::now() - t0);
  }
  asm volatile("" : : "r"(sink));  // the result is used: the loop cannot be dropped
  return speed_from_loop_time(std::chrono::duration_cast<std::chrono::nanoseconds>(best));
}

}  // namespace mosix::mosixd
