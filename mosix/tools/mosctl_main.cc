// mosctl: control the local MOSIX daemon.
#include <cstdio>

#include "common/result.h"
#include "mosix/tools/mosctl.h"

int main(int argc, char** argv) {
  try {
    return mosix::tools::run_mosctl(mosix::tools::parse_mosctl_cli(argc, argv), stdout);
  } catch (const mrc::Fatal& e) {
    std::fprintf(stderr, "mosctl: %s\n", e.what());
    return mosix::tools::k_exit_fatal;
  }
}
