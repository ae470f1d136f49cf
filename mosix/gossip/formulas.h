// The expected ages of DESIGN §7 (Amar, Barak, Drezner, Okun, CCPE 21,
// 2009; the reference implementation's formulas), in gossip steps, for N
// nodes each sending a window of W entries per step. Used for the default
// age limit and by bench/gossip-ages and the tests to compare against.
#pragma once

namespace mosix::gossip {

/// The formulas' intermediate and final values, all in steps except X.
struct AgeFormulas {
  /// T: an entry stays in windows until about this age.
  double window_age = 0;
  /// X: nodes that have received one version of an entry by age T (= W).
  double holders = 0;
  /// A_w: mean age at which those X nodes received it.
  double window_mean_age = 0;
  /// A_v: mean age of an entry about another node in a node's table.
  double average = 0;
  /// Expected largest age among the N entries of one node's table.
  double maximum = 0;

  /// Not DESIGN's: `maximum` plus A_w, the age an entry already has when
  /// it arrives, which `average` counts and `maximum` leaves out; shown
  /// beside DESIGN's for comparison (docs/benchmarks.md, issue 4).
  double maximum_with_arrival() const { return maximum + window_mean_age; }
};

/// Evaluates DESIGN §7 for `nodes` = N > `window` = W >= 1 (the window is
/// smaller than the cluster); every field is NaN outside that range.
AgeFormulas age_formulas(double nodes, double window);

}  // namespace mosix::gossip
