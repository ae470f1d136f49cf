// DESIGN §7's age formulas, term by term with the design's names.
#include "mosix/gossip/formulas.h"

#include <cmath>
#include <limits>

namespace mosix::gossip {

AgeFormulas age_formulas(double nodes, double window) {
  AgeFormulas f;
  if (!(window >= 1 && nodes > window)) {
    double nan = std::numeric_limits<double>::quiet_NaN();
    return {nan, nan, nan, nan, nan};
  }
  const double n = nodes, w = window, n1 = nodes - 1;
  // Logistic spread of one version: holders(t) = N e^{Nt/(N-1)} / (N-1 + e^{Nt/(N-1)}).
  f.window_age = n1 / n * std::log(w * n1 / (n - w));
  const double e = std::exp(n * f.window_age / n1);
  f.holders = n * e / (n1 + e);
  f.window_mean_age = f.window_age - n1 / f.holders * (std::log(n1 + e) - std::log(n));
  // A version reaches a given other node with probability 1-(1-1/(N-1))^X.
  f.average = 1 / (1 - std::pow(1 - 1 / n1, f.holders)) + f.window_mean_age;
  // Largest of N waiting times of rate -X ln(1-1/(N-1)); 0.577 = Euler's gamma.
  f.maximum = -(std::log(n) + 0.577) / (f.holders * std::log(1 - 1 / n1));
  return f;
}

}  // namespace mosix::gossip
