// mosmon: the MOSIX cluster monitor (live bars, or one JSON snapshot).
#include <signal.h>

#include <cstdio>

#include "common/result.h"
#include "mosix/tools/mosmon.h"
#include "mosix/tools/mosmon_tty.h"

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);  // a closed pipe is a write error, not a silent death
  try {
    auto o = mosix::tools::parse_mosmon_cli(argc, argv);
    return o.json ? mosix::tools::print_json_snapshot(o, stdout) : mosix::tools::run_monitor(o);
  } catch (const mrc::Fatal& e) {
    std::fprintf(stderr, "mosmon: %s\n", e.what());
    return 255;
  }
}
