// gossip-ages: for N in {64..10000} and W in {8, 16, 32}, the measured
// average and maximum entry ages of the gossip engine on the simulated
// network next to DESIGN §7's formulas, and the traffic per node per step.
// Exit status 1 if any ratio is outside 1 +- 10%, a warm-up did not end, or
// the traffic per node depends on N. Table on stdout, progress on stderr.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "mosix/gossip/experiment.h"

namespace {

using mosix::gossip::AgeExperiment;
using mosix::gossip::AgeResult;
using mosix::gossip::MacKind;

constexpr double k_tolerance = 0.10;      // DESIGN §10: within 10%
constexpr double k_bytes_per_pair = 115;  // run_age_experiment's memory per (node, entry): 10,000 nodes: 11.1 GB

struct Job {
  AgeExperiment e;
  AgeResult r;
  double seconds = 0;
  double memory_gb() const { return static_cast<double>(e.nodes * e.nodes) * k_bytes_per_pair / 1e9; }
};

/// Runs the jobs on `threads` threads, largest first, never starting one
/// that would take the estimated memory of those running past `budget_gb`
/// (unless nothing runs: then it must go alone).
void run_all(std::vector<Job>& jobs, unsigned threads, double budget_gb) {
  std::vector<size_t> queue(jobs.size());
  for (size_t i = 0; i < jobs.size(); ++i) queue[i] = i;
  std::sort(queue.begin(), queue.end(), [&](size_t a, size_t b) {
    return jobs[a].e.nodes * jobs[a].e.nodes / jobs[a].e.window > jobs[b].e.nodes * jobs[b].e.nodes / jobs[b].e.window;
  });
  std::mutex mu;
  std::condition_variable cv;
  double running_gb = 0;
  size_t running = 0;
  auto worker = [&] {
    std::unique_lock lk(mu);
    for (;;) {
      auto it = queue.end();
      cv.wait(lk, [&] {
        it = std::find_if(queue.begin(), queue.end(),
                          [&](size_t j) { return running == 0 || running_gb + jobs[j].memory_gb() <= budget_gb; });
        return queue.empty() || it != queue.end();
      });
      if (queue.empty()) return;
      Job& job = jobs[*it];
      queue.erase(it);
      running_gb += job.memory_gb();
      ++running;
      lk.unlock();
      auto t0 = std::chrono::steady_clock::now();
      job.r = mosix::gossip::run_age_experiment(job.e);
      job.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::fprintf(stderr, "gossip-ages: N=%zu W=%u done in %.1f s\n", job.e.nodes, unsigned{job.e.window},
                   job.seconds);
      lk.lock();
      running_gb -= job.memory_gb();
      --running;
      cv.notify_all();
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t) pool.emplace_back(worker);
  for (std::thread& t : pool) t.join();
}

/// One row's ages: "| avg formula ratio | max formula ratio | +A_w ratio ".
void print_ages(double average, double maximum, const mosix::gossip::AgeFormulas& f) {
  const double with_arrival = f.maximum_with_arrival();  // not the target (formulas.h)
  std::printf("| %8.2f %8.2f %6.3f | %8.2f %8.2f %6.3f | %8.2f %6.3f ", average, f.average, average / f.average,
              maximum, f.maximum, maximum / f.maximum, with_arrival, maximum / with_arrival);
}

/// --reference-model: the table of run_reference_model for every (N, W).
int print_reference_model(const std::vector<size_t>& ns, const std::vector<unsigned>& ws, int64_t rounds,
                          uint64_t seed) {
  std::printf("the formulas' own model (synchronous rounds, sampled at a round's end), ages in steps\n");
  std::printf("%6s %3s | %8s %8s %6s | %8s %8s %6s | %8s %6s | %7s %6s\n", "N", "W", "avg", "formula", "ratio", "max",
              "formula", "ratio", "+A_w", "ratio", "warm-up", "secs");
  for (size_t n : ns)
    for (unsigned w : ws) {
      auto t0 = std::chrono::steady_clock::now();
      auto r = mosix::gossip::run_reference_model(n, static_cast<uint16_t>(w), rounds, seed);
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("%6zu %3u ", n, w);
      print_ages(r.average_steps, r.maximum_steps, r.formula);
      std::printf("| %7lld %6.1f\n", static_cast<long long>(r.warmup_rounds), secs);
      std::fflush(stdout);
    }
  return 0;
}

bool within(double measured, double formula) { return std::fabs(measured / formula - 1) <= k_tolerance; }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Gossip ages on the simulated network vs DESIGN §7's formulas"};
  std::vector<size_t> ns{64, 256, 1024, 4096, 10000};
  std::vector<unsigned> ws{8, 16, 32};
  size_t hmac_up_to = 1024;
  uint64_t seed = 1;
  unsigned jobs_n = 2;
  double budget_gb = 14;  // one N=10000 run (11.5 GB) and the smaller ones beside it
  app.add_option("--nodes", ns, "cluster sizes N")->delimiter(',');
  app.add_option("--windows", ws, "window sizes W")->delimiter(',');
  app.add_option("--hmac-up-to", hmac_up_to,
                 "HMAC-SHA256 for N up to this; larger N use the simulation's key tag, which "
                 "sends the same bytes through the same code (see docs/gossip-protocol.md)");
  app.add_option("--seed", seed, "simulation seed");
  app.add_option("--jobs", jobs_n, "experiments run at once")->check(CLI::Range(1, 64));
  app.add_option("--memory-gb", budget_gb, "memory the experiments running at once may use");
  bool reference = false;
  int64_t rounds = 4000;
  app.add_flag("--reference-model", reference,
               "instead, run the formulas' own model (synchronous rounds, no Node: see experiment.h) and print "
               "its ages next to the formulas; a check of the formulas, exit status 0");
  app.add_option("--rounds", rounds, "rounds sampled by --reference-model")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  if (reference) return print_reference_model(ns, ws, rounds, seed);

  std::vector<Job> jobs;
  for (size_t n : ns)
    for (unsigned w : ws) {
      Job j;
      j.e.nodes = n;
      j.e.window = static_cast<uint16_t>(w);
      j.e.mac = n <= hmac_up_to ? MacKind::hmac_sha256 : MacKind::sim_key_tag;
      j.e.seed = seed;
      jobs.push_back(j);
    }
  auto t0 = std::chrono::steady_clock::now();
  run_all(jobs, jobs_n, budget_gb);
  double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  bool ok = true;
  std::printf("gossip ages in steps, measured vs DESIGN §7 (ratio = measured / formula, target 1 +- %.0f%%)\n",
              100 * k_tolerance);
  std::printf("%6s %3s %-4s | %8s %8s %6s | %8s %8s %6s | %8s %6s | %9s %10s | %7s %7s %7s %6s\n", "N", "W", "mac",
              "avg", "formula", "ratio", "max", "formula", "ratio", "+A_w", "ratio", "msg/node", "bytes/node",
              "warm-up", "sampled", "samples", "secs");
  for (const Job& j : jobs) {
    const AgeResult& r = j.r;
    bool row_ok =
        r.converged && within(r.average_steps, r.formula.average) && within(r.maximum_steps, r.formula.maximum);
    ok = ok && row_ok;
    std::printf("%6zu %3u %-4s ", j.e.nodes, unsigned{j.e.window}, j.e.mac == MacKind::hmac_sha256 ? "hmac" : "tag");
    print_ages(r.average_steps, r.maximum_steps, r.formula);
    std::printf("| %9.3f %10.1f | %7lld %7lld %7zu %6.1f%s\n", r.messages_per_node_step, r.bytes_per_node_step,
                static_cast<long long>(r.warmup_steps), static_cast<long long>(r.sampled_steps), r.samples, j.seconds,
                row_ok ? "" : (r.converged ? "  OUTSIDE 10%" : "  NO WARM-UP"));
  }
  // Per-node traffic must not grow with N: per W, the spread over N of bytes/node/step.
  for (unsigned w : ws) {
    double lo = 1e300, hi = 0;
    for (const Job& j : jobs)
      if (j.e.window == w) {
        lo = std::min(lo, j.r.bytes_per_node_step);
        hi = std::max(hi, j.r.bytes_per_node_step);
      }
    bool flat = hi <= lo * 1.01;
    ok = ok && flat;
    std::printf("W=%-3u bytes/node/step over N: %.1f .. %.1f (%s)\n", w, lo, hi,
                flat ? "independent of N" : "DEPENDS ON N");
  }
  std::printf("+A_w: DESIGN's maximum plus the formulas' mean arrival age A_w, for comparison only; the target\n"
              "      and this program's exit status use DESIGN's formulas as written\n");
  std::printf("total %.1f s; %s\n", total, ok ? "all within target" : "NOT ALL WITHIN TARGET");
  return ok ? 0 : 1;
}
