// migrate: move or checkpoint a MOSIX process (mosrun.h).
#include <cstdio>

#include "common/result.h"
#include "mosix/tools/mosrun.h"

int main(int argc, char** argv) {
  try {
    return mosix::tools::run_migrate(mosix::tools::parse_migrate_cli(argc, argv));
  } catch (const mrc::Fatal& e) {
    std::fprintf(stderr, "migrate: %s\n", e.what());
    return 255;
  }
}
