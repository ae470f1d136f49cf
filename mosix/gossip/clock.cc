// SystemClock: the real monotonic clock.
#include "mosix/gossip/clock.h"

#include <chrono>

namespace mosix::gossip {

int64_t SystemClock::now_ms() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace mosix::gossip
