// mosps: the MOSIX processes of this node (mosrun.h).
#include <cstdio>

#include "common/result.h"
#include "mosix/tools/mosrun.h"

int main(int argc, char** argv) {
  try {
    return mosix::tools::run_mosps(mosix::tools::parse_mosps_cli(argc, argv));
  } catch (const mrc::Fatal& e) {
    std::fprintf(stderr, "mosps: %s\n", e.what());
    return 255;
  }
}
