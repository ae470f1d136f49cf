// Local measurement with injected /proc contents (load smoothing and
// normalisation, meminfo parsing, malformed files), and speed calibration.
#include "mosix/mosixd/measure.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "mosix/mosixd/speed.h"

namespace mosix::mosixd {
namespace {

const std::string k_meminfo =
    "MemTotal:        8000000 kB\n"
    "MemFree:         1000000 kB\n"
    "MemAvailable:    5000000 kB\n"
    "Buffers:          100000 kB\n"
    "SwapTotal:       2000000 kB\n"
    "SwapFree:        1500000 kB\n"
    "HugePages_Total:       0\n";

std::string stat_with_running(int n) {
  return "cpu  1 2 3 4 5 6 7 0 0 0\ncpu0 1 2 3 4 5 6 7 0 0 0\nintr 1 2 3\nctxt 99\nprocs_running " + std::to_string(n) +
         "\nprocs_blocked 0\n";
}

// A fake /proc: tests set the files' text (or remove them) between steps.
struct FakeProc {
  std::map<std::string, std::string> files;
  int cpus = 4;
  MeasureSources sources() {
    return MeasureSources{[this](const std::string& p) -> mrc::Result<std::string> {
                            auto it = files.find(p);
                            if (it == files.end()) return mrc::fail(ENOENT, p + ": No such file or directory");
                            return it->second;
                          },
                          [this] { return cpus; }};
  }
};

TEST(Meminfo, ParsesKilobytesIntoBytes) {
  auto m = parse_meminfo(k_meminfo);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->mem_total, 8000000ull * 1024);
  EXPECT_EQ(m->mem_available, 5000000ull * 1024);
  EXPECT_EQ(m->swap_total, 2000000ull * 1024);
  EXPECT_EQ(m->swap_free, 1500000ull * 1024);
}

TEST(Meminfo, FallsBackToMemFreeWithoutMemAvailableAndSwapToZero) {
  auto m = parse_meminfo("MemTotal: 100 kB\nMemFree: 40 kB\n");
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->mem_available, 40u * 1024);
  EXPECT_EQ(m->swap_total, 0u);
  EXPECT_EQ(m->swap_free, 0u);
}

TEST(Meminfo, RejectsMissingOrMalformedRequiredFields) {
  auto no_total = parse_meminfo("MemFree: 40 kB\n");
  ASSERT_FALSE(no_total);
  EXPECT_EQ(no_total.error().message, "/proc/meminfo: no MemTotal line");
  auto bad = parse_meminfo("MemTotal: lots kB\nMemFree: 40 kB\n");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "/proc/meminfo: bad value for MemTotal: \"lots kB\"");
  auto overflow = parse_meminfo("MemTotal: 99999999999999999999 kB\nMemFree: 1 kB\n");
  EXPECT_FALSE(overflow);
  EXPECT_FALSE(parse_meminfo(""));
  EXPECT_FALSE(parse_meminfo("MemTotal: 100 kB\nMemFree: -1 kB\n"));
}

TEST(ProcStat, FindsProcsRunningAnywhereInTheFile) {
  EXPECT_EQ(parse_procs_running(stat_with_running(7)).value(), 7u);
  EXPECT_EQ(parse_procs_running("procs_running 2\n").value(), 2u);
  EXPECT_EQ(parse_procs_running("procs_running 3").value(), 3u);
}

TEST(ProcStat, RejectsMissingOrMalformedProcsRunning) {
  auto none = parse_procs_running("cpu 1 2 3\nprocs_blocked 0\n");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().message, "/proc/stat: no procs_running line");
  EXPECT_FALSE(parse_procs_running("procs_running x\n"));
  EXPECT_FALSE(parse_procs_running("procs_running \n"));
  EXPECT_FALSE(parse_procs_running("xprocs_running 3\n"));
}

TEST(Load, NormalisesByCpusAndSpeed) {
  EXPECT_EQ(normalised_load(1, 1, gossip::k_standard_speed), 100u);
  EXPECT_EQ(normalised_load(2, 4, 10000), 50u);  // half of four standard CPUs busy
  EXPECT_EQ(normalised_load(1, 1, 20000), 50u);  // a CPU twice as fast carries it at half the load
  EXPECT_EQ(normalised_load(1, 1, 5000), 200u);  // half as fast: twice the load
  EXPECT_EQ(normalised_load(0, 8, 10000), 0u);
  EXPECT_EQ(normalised_load(3, 0, 10000), 0u);  // no CPUs reported: no division by zero
}

TEST(Load, DecayFollowsTheTimeConstant) {
  EXPECT_NEAR(load_decay(std::chrono::milliseconds(1000)), std::exp(-0.25), 1e-12);
  EXPECT_NEAR(load_decay(std::chrono::milliseconds(4000)), std::exp(-1.0), 1e-12);
  EXPECT_GT(load_decay(std::chrono::milliseconds(100)), load_decay(std::chrono::milliseconds(1000)));
}

TEST(Measurer, FirstSampleSeedsLoadAndSubtractsItself) {
  FakeProc proc;
  proc.files = {{"/proc/stat", stat_with_running(5)}, {"/proc/meminfo", k_meminfo}};
  Measurer m(10000, std::chrono::milliseconds(1000), proc.sources());
  auto r = m.measure(2, Accepting::yes);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->cpus, 4);
  EXPECT_EQ(r->speed, 10000u);
  EXPECT_EQ(r->load, 100u);  // 5 running - us = 4 tasks on 4 standard CPUs
  EXPECT_EQ(r->mem_total, 8000000ull * 1024);
  EXPECT_EQ(r->mem_free, 5000000ull * 1024);
  EXPECT_EQ(r->swap_total, 2000000ull * 1024);
  EXPECT_EQ(r->swap_free, 1500000ull * 1024);
  EXPECT_EQ(r->guests, 2);
  EXPECT_TRUE(r->accepting);
}

TEST(Measurer, SmoothsRunQueueExponentially) {
  FakeProc proc;
  proc.cpus = 1;
  proc.files = {{"/proc/stat", stat_with_running(1)}, {"/proc/meminfo", k_meminfo}};
  Measurer m(10000, std::chrono::milliseconds(1000), proc.sources());
  ASSERT_EQ(m.measure(0, Accepting::yes)->load, 0u);  // only us running
  proc.files["/proc/stat"] = stat_with_running(3);    // two tasks appear
  const double a = load_decay(std::chrono::milliseconds(1000));
  double expect = 0;
  for (int step = 1; step <= 20; ++step) {
    auto r = m.measure(0, Accepting::yes);
    ASSERT_TRUE(r);
    expect = expect * a + 2 * (1 - a);
    EXPECT_NEAR(*m.smoothed_runnable(), expect, 1e-9) << "step " << step;
    EXPECT_EQ(r->load, static_cast<uint32_t>(std::round(100 * expect)));
  }
  EXPECT_GT(*m.smoothed_runnable(), 1.98);  // converged on the new queue
  proc.files["/proc/stat"] = stat_with_running(1);
  auto r = m.measure(0, Accepting::no);
  EXPECT_LT(r->load, 200u);  // decays, does not drop at once
  EXPECT_GT(r->load, 100u);
  EXPECT_FALSE(r->accepting);
}

TEST(Measurer, NormalisesSmoothedLoadBySpeed) {
  FakeProc proc;
  proc.cpus = 2;
  proc.files = {{"/proc/stat", stat_with_running(3)}, {"/proc/meminfo", k_meminfo}};
  Measurer fast(20000, std::chrono::milliseconds(1000), proc.sources());
  EXPECT_EQ(fast.measure(0, Accepting::yes)->load, 50u);  // 2 tasks / 2 CPUs at twice the standard speed
}

TEST(Measurer, ReportsUnreadableOrMalformedProcAndKeepsItsState) {
  FakeProc proc;
  proc.files = {{"/proc/stat", stat_with_running(5)}, {"/proc/meminfo", k_meminfo}};
  Measurer m(10000, std::chrono::milliseconds(1000), proc.sources());
  ASSERT_TRUE(m.measure(0, Accepting::yes));
  double before = *m.smoothed_runnable();

  proc.files.erase("/proc/meminfo");
  auto r = m.measure(0, Accepting::yes);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "/proc/meminfo: No such file or directory");
  proc.files["/proc/meminfo"] = "garbage\n";
  EXPECT_EQ(m.measure(0, Accepting::yes).error().message, "/proc/meminfo: no MemTotal line");
  proc.files["/proc/meminfo"] = k_meminfo;
  proc.files["/proc/stat"] = "cpu 1 2 3\n";
  EXPECT_EQ(m.measure(0, Accepting::yes).error().message, "/proc/stat: no procs_running line");
  EXPECT_EQ(*m.smoothed_runnable(), before);
}

TEST(Measurer, ClampsCpuCountToAtLeastOne) {
  FakeProc proc;
  proc.cpus = 0;
  proc.files = {{"/proc/stat", stat_with_running(2)}, {"/proc/meminfo", k_meminfo}};
  Measurer m(10000, std::chrono::milliseconds(1000), proc.sources());
  EXPECT_EQ(m.measure(0, Accepting::yes)->cpus, 1);
}

TEST(Measurer, ReadsTheRealSystem) {
  Measurer m(10000, std::chrono::milliseconds(1000));
  auto r = m.measure(0, Accepting::yes);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_GE(r->cpus, 1);
  EXPECT_GT(r->mem_total, 0u);
  EXPECT_LE(r->mem_free, r->mem_total);
}

TEST(Speed, AssemblyLoopMatchesPlainXorshift) {
  uint64_t x = 12345;
  for (int i = 0; i < 1000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x *= 0x2545F4914F6CDD1DULL;
  }
  EXPECT_EQ(calibration_loop(12345, 1000), x);
  EXPECT_EQ(calibration_loop(99, 0), 99u);
}

TEST(Speed, ReferenceTimeScoresStandardSpeed) {
  EXPECT_EQ(speed_from_loop_time(std::chrono::nanoseconds(k_standard_loop_ns)), gossip::k_standard_speed);
  EXPECT_EQ(speed_from_loop_time(std::chrono::nanoseconds(k_standard_loop_ns / 2)), 2 * gossip::k_standard_speed);
  EXPECT_EQ(speed_from_loop_time(std::chrono::nanoseconds(k_standard_loop_ns * 4)), gossip::k_standard_speed / 4);
  EXPECT_EQ(speed_from_loop_time(std::chrono::nanoseconds(1'000'000'000'000)), 1u);  // clamped, never 0
  EXPECT_EQ(speed_from_loop_time(std::chrono::nanoseconds(0)), UINT32_MAX);
}

TEST(Speed, CalibrationIsPositiveAndStableWithinAFactorOfTwo) {
  uint32_t a = calibrate_speed();
  uint32_t b = calibrate_speed();
  EXPECT_GT(a, 100u);  // any real CPU of this century is above 1% of the standard
  EXPECT_LT(a, 1'000'000u);
  EXPECT_LT(std::max(a, b), 2 * std::min(a, b)) << a << " vs " << b;
}

}  // namespace
}  // namespace mosix::mosixd
