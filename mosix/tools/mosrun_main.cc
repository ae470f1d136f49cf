// mosrun: run a command as a migratable process, or recover one (mosrun.h).
#include <cstdio>

#include "common/result.h"
#include "mosix/tools/mosrun.h"

int main(int argc, char** argv) {
  try {
    return mosix::tools::run_mosrun(mosix::tools::parse_mosrun_cli(argc, argv));
  } catch (const mrc::Fatal& e) {
    std::fprintf(stderr, "mosrun: %s\n", e.what());
    return 255;
  }
}
